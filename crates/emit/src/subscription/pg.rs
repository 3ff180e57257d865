//! The subscription tables on PostgreSQL (`pharos_subscription_specs`,
//! `pharos_subscription_positions`, schema version 3 of `pharos-store-pg`): the statements of
//! [`super::SubscriptionStore`] for a cluster's shared database, with the same columns and
//! meaning as `subscriptions.db`'s `specs` and `positions`.

use pharos_store_pg::PgError;
use pharos_store_pg::migrations::{Retry, TableConnection};

use super::{Position, SubscriptionStoreError};

/// Maps a client error of the step `what`.
fn sql(what: &'static str) -> impl Fn(postgres::Error) -> SubscriptionStoreError {
    move |source| SubscriptionStoreError::from(PgError::Sql { what, source })
}

/// `(name, spec JSON)` of the API-created specs, oldest first (then by name, in byte order).
pub(super) fn specs(c: &TableConnection) -> Result<Vec<(String, String)>, SubscriptionStoreError> {
    c.run(Retry::Yes, |c| {
        let read = sql("read the subscription specs");
        c.query(
            "SELECT name, spec FROM pharos_subscription_specs
             ORDER BY created_at, name COLLATE \"C\"",
            &[],
        )
        .map_err(&read)?
        .iter()
        .map(|r| Ok((r.try_get(0).map_err(&read)?, r.try_get(1).map_err(&read)?)))
        .collect()
    })
}

/// Stores a spec, replacing one of the same name (its creation time too, as SQLite's
/// `INSERT OR REPLACE`).
pub(super) fn save_spec(
    c: &TableConnection,
    name: &str,
    json: String,
    now_ms: i64,
) -> Result<(), SubscriptionStoreError> {
    let name = name.to_string();
    c.run(Retry::Yes, move |c| {
        c.execute(
            "INSERT INTO pharos_subscription_specs (name, spec, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, created_at = excluded.created_at",
            &[&name, &json, &now_ms],
        )
        .map(|_| ())
        .map_err(sql("store a subscription spec"))
    })
}

/// Deletes the spec and the position of `name`, in one transaction.
pub(super) fn delete(c: &TableConnection, name: &str) -> Result<(), SubscriptionStoreError> {
    let name = name.to_string();
    c.run(Retry::Yes, move |c| {
        let del = sql("delete a subscription");
        let mut tx = c.transaction().map_err(&del)?;
        tx.execute(
            "DELETE FROM pharos_subscription_specs WHERE name = $1",
            &[&name],
        )
        .map_err(&del)?;
        tx.execute(
            "DELETE FROM pharos_subscription_positions WHERE name = $1",
            &[&name],
        )
        .map_err(&del)?;
        tx.commit().map_err(&del)
    })
}

/// The position of `name`, if it has one.
pub(super) fn position(
    c: &TableConnection,
    name: &str,
) -> Result<Option<Position>, SubscriptionStoreError> {
    let name = name.to_string();
    c.run(Retry::Yes, move |c| {
        let read = sql("read a subscription position");
        let row = c
            .query_opt(
                "SELECT seq, delivered, failed, dropped, expired, expired_upto
                 FROM pharos_subscription_positions WHERE name = $1",
                &[&name],
            )
            .map_err(&read)?;
        row.map(|r| {
            let n = |i: usize| r.try_get::<_, i64>(i).map(|v| v as u64).map_err(&read);
            Ok(Position {
                seq: n(0)?,
                delivered: n(1)?,
                failed: n(2)?,
                dropped: n(3)?,
                expired: n(4)?,
                expired_upto: n(5)?,
            })
        })
        .transpose()
    })
}

/// Stores the position of `name` (durable when it returns: `synchronous_commit = on`).
pub(super) fn save_position(
    c: &TableConnection,
    name: &str,
    p: &Position,
) -> Result<(), SubscriptionStoreError> {
    let name = name.to_string();
    let v = [
        p.seq as i64,
        p.delivered as i64,
        p.failed as i64,
        p.dropped as i64,
        p.expired as i64,
        p.expired_upto as i64,
    ];
    c.run(Retry::Yes, move |c| {
        c.execute(
            "INSERT INTO pharos_subscription_positions
                 (name, seq, delivered, failed, dropped, expired, expired_upto)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, delivered = excluded.delivered,
                 failed = excluded.failed, dropped = excluded.dropped, expired = excluded.expired,
                 expired_upto = excluded.expired_upto",
            &[&name, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]],
        )
        .map(|_| ())
        .map_err(sql("store a subscription position"))
    })
}
