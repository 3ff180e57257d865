//! The token table on PostgreSQL (`pharos_tokens`, schema version 3 of `pharos-store-pg`): the
//! statements of [`super::TokenStore`] for a cluster's shared database, with the same columns
//! and meaning as `auth.db`'s `tokens` (only the SHA-256 of a secret is stored).

use chrono::Utc;
use pharos_store_pg::PgError;
use pharos_store_pg::migrations::{Retry, TableConnection};
use postgres::error::SqlState;

use super::{Found, Role, Row, TokenError, may_revoke};

/// Maps a client error of the step `what`.
fn sql(what: &'static str) -> impl Fn(postgres::Error) -> TokenError {
    move |source| TokenError::from(PgError::Sql { what, source })
}

/// Number of tokens in the table.
pub(super) fn count(c: &TableConnection) -> Result<i64, TokenError> {
    c.run(Retry::Yes, |c| {
        c.query_one("SELECT count(*) FROM pharos_tokens", &[])
            .and_then(|r| r.try_get(0))
            .map_err(sql("count the tokens"))
    })
}

/// Inserts a token; [`TokenError::Exists`] if the name (or, never in practice, the hash) is
/// taken. Not run twice: an insert that committed before its connection died would then be
/// reported as existing.
pub(super) fn insert(
    c: &TableConnection,
    name: &str,
    hash: [u8; 32],
    role: Role,
    now: i64,
    expires: Option<i64>,
    nsf: Option<&str>,
) -> Result<(), TokenError> {
    let (name, nsf) = (name.to_string(), nsf.map(str::to_string));
    c.run(Retry::No, move |c| {
        let r = c.execute(
            "INSERT INTO pharos_tokens (name, hash, role, created, expires, nsf)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&name, &&hash[..], &role.name(), &now, &expires, &nsf],
        );
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                Err(TokenError::Exists(name.clone()))
            }
            Err(e) => Err(sql("create a token")(e)),
        }
    })
}

/// Revokes `name` under the rule of [`may_revoke`]. The table is locked against other
/// revocations (`SHARE ROW EXCLUSIVE`, which lookups do not wait for) for the check and the
/// update, so two revocations on two nodes cannot both pass the last-admin check.
pub(super) fn revoke(
    c: &TableConnection,
    name: &str,
    configured_admin: bool,
    force: bool,
) -> Result<(), TokenError> {
    let name = name.to_string();
    c.run(Retry::Yes, move |c| {
        let mut tx = c.transaction().map_err(sql("begin a revocation"))?;
        tx.batch_execute("LOCK TABLE pharos_tokens IN SHARE ROW EXCLUSIVE MODE")
            .map_err(sql("lock the tokens"))?;
        let now = Utc::now().timestamp();
        let target = tx
            .query_opt(
                "SELECT role, revoked, expires FROM pharos_tokens WHERE name = $1",
                &[&name],
            )
            .map_err(sql("read a token"))?;
        let Some(row) = target else {
            return Err(TokenError::NotFound(name.clone()));
        };
        let read = sql("read a token");
        let role: String = row.try_get(0).map_err(&read)?;
        let revoked: bool = row.try_get(1).map_err(&read)?;
        let expires: Option<i64> = row.try_get(2).map_err(&read)?;
        let others: i64 = tx
            .query_one(
                "SELECT count(*) FROM pharos_tokens WHERE role = $1 AND NOT revoked
                     AND (expires IS NULL OR expires > $2) AND name <> $3",
                &[&Role::Admin.name(), &now, &name],
            )
            .and_then(|r| r.try_get(0))
            .map_err(sql("count the admin tokens"))?;
        may_revoke(
            &name,
            &role,
            revoked,
            expires,
            now,
            others,
            configured_admin,
            force,
        )?;
        tx.execute(
            "UPDATE pharos_tokens SET revoked = true WHERE name = $1",
            &[&name],
        )
        .map_err(sql("revoke a token"))?;
        tx.commit().map_err(sql("commit a revocation"))
    })
}

/// Every token row, by name (byte order, as SQLite's).
pub(super) fn list(c: &TableConnection) -> Result<Vec<Row>, TokenError> {
    c.run(Retry::Yes, |c| {
        let read = sql("list the tokens");
        let rows = c
            .query(
                "SELECT name, role, created, expires, revoked, last_used, nsf FROM pharos_tokens
                 ORDER BY name COLLATE \"C\"",
                &[],
            )
            .map_err(&read)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(&read)?,
                    r.try_get(1).map_err(&read)?,
                    r.try_get(2).map_err(&read)?,
                    r.try_get(3).map_err(&read)?,
                    r.try_get(4).map_err(&read)?,
                    r.try_get(5).map_err(&read)?,
                    r.try_get(6).map_err(&read)?,
                ))
            })
            .collect()
    })
}

/// The token whose secret has SHA-256 `h`.
pub(super) fn find(c: &TableConnection, h: [u8; 32]) -> Result<Option<Found>, TokenError> {
    c.run(Retry::Yes, move |c| {
        let read = sql("look up a token");
        let row = c
            .query_opt(
                "SELECT name, role, expires, revoked, nsf FROM pharos_tokens WHERE hash = $1",
                &[&&h[..]],
            )
            .map_err(&read)?;
        row.map(|r| {
            Ok((
                r.try_get(0).map_err(&read)?,
                r.try_get(1).map_err(&read)?,
                r.try_get(2).map_err(&read)?,
                r.try_get(3).map_err(&read)?,
                r.try_get(4).map_err(&read)?,
            ))
        })
        .transpose()
    })
}

/// Records a use of `name` (best effort: a failure is only logged).
pub(super) fn touch(c: &TableConnection, name: &str, now: i64) {
    let name = name.to_string();
    let r = c.run(Retry::Yes, move |c| {
        c.execute(
            "UPDATE pharos_tokens SET last_used = $1 WHERE name = $2",
            &[&now, &name],
        )
        .map_err(sql("record a token's use"))
    });
    if let Err(e) = r {
        tracing::debug!(error = %e, "the token's last use was not recorded");
    }
}

/// Moves expiries `secs` into the past (tests).
#[cfg(test)]
pub(super) fn backdate(c: &TableConnection, name: Option<&str>, secs: i64) {
    let name = name.map(str::to_string);
    c.run(Retry::No, move |c| {
        c.execute(
            "UPDATE pharos_tokens SET expires = expires - $1 WHERE $2::text IS NULL OR name = $2",
            &[&secs, &name],
        )
        .map_err(sql("backdate"))
    })
    .unwrap();
}
