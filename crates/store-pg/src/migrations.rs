//! Versioned schema migrations: SQL files embedded in the binary, applied in order, each recorded
//! in `pharos_schema_migrations` (version, name, checksum of its SQL, when).
//!
//! Contract: [`migrate`] brings a database (empty or at any older version) to [`VERSION`] in one
//! transaction under an advisory lock, so nodes starting together apply each migration once and
//! a failure leaves the database as it was; run again it applies nothing. A database with a
//! version this build does not know is refused ([`StoreError::UnsupportedSchema`]), and so is one
//! whose applied migration's SQL differs from the embedded one (an edited migration: add a new
//! one instead).
//!
//! The tables of the other shared stores (API tokens, subscriptions: version 3) are reached
//! through a [`TableConnection`]: one connection, migrated like the message store's, on a thread
//! of its own so that callers in async code never run the client's runtime on theirs.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use postgres::{Client, GenericClient};

use crate::{PgError, PostgresConfig, StoreError};

/// One embedded migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Version it brings the schema to (1, 2, ...; no gaps).
    pub version: i32,
    /// Short name, recorded beside the version.
    pub name: &'static str,
    /// The SQL, run as one batch.
    pub sql: &'static str,
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "messages",
        sql: include_str!("../migrations/0001_messages.sql"),
    },
    Migration {
        version: 2,
        name: "change_feed",
        sql: include_str!("../migrations/0002_change_feed.sql"),
    },
    Migration {
        version: 3,
        name: "tokens_subscriptions",
        sql: include_str!("../migrations/0003_tokens_subscriptions.sql"),
    },
];

/// Newest schema version this build writes and reads.
pub const VERSION: i32 = 3;

/// Advisory lock key held while migrating ("pharos" in ASCII, then 1).
const LOCK_KEY: i64 = 0x7068_6172_6f73_0001;

/// FNV-1a (64 bit) of a migration's SQL, stored to notice migrations edited after release.
fn checksum(sql: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in sql.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

/// Brings the database to [`VERSION`]; returns the versions applied now (empty if none was due).
pub fn migrate(client: &mut impl GenericClient) -> Result<Vec<i32>, PgError> {
    migrate_to(client, VERSION)
}

/// Brings the database to `target` (at most [`VERSION`]), for tests of upgrades and for tools;
/// returns the versions applied now.
pub fn migrate_to(client: &mut impl GenericClient, target: i32) -> Result<Vec<i32>, PgError> {
    let sql = |what: &'static str| move |source| PgError::Sql { what, source };
    let mut tx = client.transaction().map_err(sql("begin the migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .map_err(sql("take the migration lock"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS pharos_schema_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             checksum bigint NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .map_err(sql("create pharos_schema_migrations"))?;
    let rows = tx
        .query(
            "SELECT version, checksum FROM pharos_schema_migrations ORDER BY version",
            &[],
        )
        .map_err(sql("read pharos_schema_migrations"))?;
    let mut found = 0;
    for row in rows {
        let (version, sum): (i32, i64) = (row.get(0), row.get(1));
        found = found.max(version);
        if version > VERSION {
            return Err(PgError::Store(StoreError::UnsupportedSchema {
                found: version.into(),
                supported: VERSION.into(),
            }));
        }
        let known = MIGRATIONS.iter().find(|m| m.version == version);
        if let Some(m) = known.filter(|m| checksum(m.sql) != sum) {
            return Err(PgError::EditedMigration {
                version,
                name: m.name,
            });
        }
    }
    let mut applied = Vec::new();
    for m in MIGRATIONS
        .iter()
        .filter(|m| m.version > found && m.version <= target)
    {
        tx.batch_execute(m.sql)
            .map_err(|source| PgError::Migration {
                version: m.version,
                name: m.name,
                source,
            })?;
        tx.execute(
            "INSERT INTO pharos_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &checksum(m.sql)],
        )
        .map_err(sql("record a migration"))?;
        applied.push(m.version);
    }
    tx.commit().map_err(sql("commit the migration"))?;
    Ok(applied)
}

/// The versions recorded in `pharos_schema_migrations`, oldest first (empty for a new database).
pub fn applied(client: &mut impl GenericClient) -> Result<Vec<i32>, PgError> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('pharos_schema_migrations') IS NOT NULL",
            &[],
        )
        .map_err(|source| PgError::Sql {
            what: "look for pharos_schema_migrations",
            source,
        })?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            "SELECT version FROM pharos_schema_migrations ORDER BY version",
            &[],
        )
        .map_err(|source| PgError::Sql {
            what: "read pharos_schema_migrations",
            source,
        })?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

// ---- one connection for the other shared tables ---------------------------------------------

/// How long opening a connection may take, unless the connection string says otherwise.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle time before TCP keepalives probe a connection.
const KEEPALIVES_IDLE: Duration = Duration::from_secs(60);
/// After a failed connection attempt, calls fail at once with its error for this long instead of
/// each waiting for a new attempt (calls queue on one thread: during an outage they would pile up).
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

type Job = Box<dyn FnOnce(&mut Slot) + Send>;

/// What the connection thread owns.
struct Slot {
    config: postgres::Config,
    target: String,
    client: Option<Client>,
    /// Advisory locks held by the current session (lost with it).
    locks: HashSet<String>,
    /// When the last connection attempt failed, and why.
    failed: Option<(std::time::Instant, String)>,
}

impl Slot {
    /// The connection, opened again if it was dropped (its session's advisory locks are gone).
    fn client(&mut self) -> Result<&mut Client, PgError> {
        if self.client.is_none() {
            self.locks.clear();
            if let Some((at, why)) = &self.failed
                && at.elapsed() < RECONNECT_PAUSE
            {
                return Err(PgError::Connect {
                    target: self.target.clone(),
                    reason: format!("{why} (the next attempt is within a second)"),
                });
            }
            match crate::store::open_client(&self.config, &self.target) {
                Ok(c) => {
                    self.failed = None;
                    self.client = Some(c);
                }
                Err(e) => {
                    let why = match &e {
                        PgError::Connect { reason, .. } => reason.clone(),
                        other => other.to_string(),
                    };
                    self.failed = Some((std::time::Instant::now(), why));
                    return Err(e);
                }
            }
        }
        match self.client.as_mut() {
            Some(c) => Ok(c),
            None => Err(PgError::Connect {
                target: self.target.clone(),
                reason: "no connection".into(),
            }),
        }
    }

    /// Drops the connection if it is unusable (closed, or not answering); true if it was.
    fn drop_if_dead(&mut self) -> bool {
        let dead = self
            .client
            .as_mut()
            .is_some_and(|c| c.is_closed() || c.is_valid(Duration::from_secs(2)).is_err());
        if dead {
            self.client = None;
            self.locks.clear();
        }
        dead
    }
}

/// The client configuration of `[postgres]`: the string checked (no password in it), the
/// password read from `password_file`, the same timeouts as the message store's.
fn client_config(pc: &PostgresConfig) -> Result<postgres::Config, PgError> {
    let given = crate::store::redact(&pc.url);
    pc.validate().map_err(|e| PgError::Config {
        given: given.clone(),
        reason: e.to_string(),
    })?;
    let mut config: postgres::Config = pc.url.parse().map_err(|e| PgError::Config {
        given: given.clone(),
        reason: crate::describe(&e),
    })?;
    if let Some(p) = &pc.password_file {
        let password = std::fs::read_to_string(p).map_err(|e| PgError::Config {
            given: given.clone(),
            reason: format!(
                "[postgres] password_file = {:?}: cannot read it: {e}",
                p.display()
            ),
        })?;
        config.password(password.trim_end_matches(['\r', '\n']));
    }
    if config.get_application_name().is_none() {
        config.application_name("pharos");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
        config.keepalives_idle(KEEPALIVES_IDLE);
    }
    Ok(config)
}

/// One connection to the shared database for the tables beside the message store's (API tokens,
/// subscriptions): what `pharos_api::auth::TokenStore` and `pharos_emit::SubscriptionStore` use
/// on PostgreSQL.
///
/// Contract:
/// - [`TableConnection::open`] connects as `[postgres]` says and migrates the schema to
///   [`VERSION`] (as [`crate::PgStore`] does: either may be opened first).
/// - The connection lives on a thread of its own; [`TableConnection::run`] sends it a closure
///   and blocks until it returns. So every method may be called from any thread, async tasks
///   included (they block as on a SQLite connection, but never run the client's runtime inside
///   theirs, which would panic). Calls are served one at a time, in order.
/// - A connection found dead after a failure (server restarted, cut by an administrator) is
///   dropped and opened again: at once, running the closure once more, when the caller says
///   the closure may run twice ([`Retry::Yes`]), else at the next call. While the server cannot
///   be reached, at most one attempt a second is made; calls in between fail at once with the
///   last attempt's error (so calls do not queue behind connection timeouts).
/// - Errors name the server (host, port, database, user), never the password.
pub struct TableConnection {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    target: String,
}

impl std::fmt::Debug for TableConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableConnection")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// Whether [`TableConnection::run`] may run its closure a second time on a new connection when
/// the first attempt failed on a dead one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The closure is idempotent (reads, upserts, deletes): run it again.
    Yes,
    /// Running it twice could differ from once (an insert that may have committed): do not.
    No,
}

impl TableConnection {
    /// Connects as `config` says (password from its `password_file`), migrates, and starts the
    /// connection's thread. Blocks; may be called from async code.
    pub fn open(config: &PostgresConfig) -> Result<Self, PgError> {
        let config = client_config(config)?;
        let target = crate::store::target_of(&config);
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), PgError>>(1);
        let (jobs, rx) = mpsc::channel::<Job>();
        let mut slot = Slot {
            config,
            target: target.clone(),
            client: None,
            locks: HashSet::new(),
            failed: None,
        };
        let thread = std::thread::Builder::new()
            .name("pharos-pg-tables".into())
            .spawn(move || {
                let first = slot.client().and_then(|c| migrate(c).map(|_| ()));
                let ok = first.is_ok();
                let _ = ready_tx.send(first);
                if !ok {
                    return;
                }
                for job in rx {
                    job(&mut slot);
                }
                // The client (and its runtime) is dropped here, on this thread.
            })
            .map_err(|e| PgError::Connect {
                target: target.clone(),
                reason: format!("cannot start the connection thread: {e}"),
            })?;
        let ready = ready_rx.recv().unwrap_or_else(|_| {
            Err(PgError::Connect {
                target: target.clone(),
                reason: "the connection thread stopped".into(),
            })
        });
        let mut me = Self {
            jobs: Some(jobs),
            thread: Some(thread),
            target,
        };
        match ready {
            Ok(()) => Ok(me),
            Err(e) => {
                me.stop();
                Err(e)
            }
        }
    }

    /// Host, port, database and user (never the password), for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Runs `f` on the connection (opening it again first if it was lost) and returns what it
    /// returns. If `f` fails and the connection turns out dead, the connection is dropped and,
    /// with [`Retry::Yes`], `f` runs once more on a new one. A panic in `f` drops the connection
    /// (rolling back an open transaction) and is resumed in the caller.
    pub fn run<T, E, F>(&self, retry: Retry, mut f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<PgError> + Send + 'static,
        F: FnMut(&mut Client) -> Result<T, E> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |slot: &mut Slot| {
            let out = catch_unwind(AssertUnwindSafe(|| {
                let mut attempt = |slot: &mut Slot| -> Result<T, E> { f(slot.client()?) };
                match attempt(slot) {
                    Err(e) if slot.drop_if_dead() => match retry {
                        Retry::Yes => attempt(slot),
                        Retry::No => Err(e),
                    },
                    r => r,
                }
            }));
            if out.is_err() {
                slot.client = None;
                slot.locks.clear();
            }
            let _ = tx.send(out);
        });
        self.send(job)?;
        match rx.recv() {
            Ok(Ok(r)) => r,
            Ok(Err(panic)) => resume_unwind(panic),
            Err(_) => Err(self.stopped().into()),
        }
    }

    /// Takes the session-level advisory lock named `name` in this database and schema
    /// (`pg_try_advisory_lock` on a hash of the name and `current_schema()`), without waiting:
    /// true if this connection holds it (now or already), false if another session does. The
    /// lock is held until [`TableConnection::unlock`], until this value is dropped, or until the
    /// connection is lost (checked at each call: a lost lock is taken again if it is free).
    pub fn try_advisory_lock(&self, name: &str) -> Result<bool, PgError> {
        let name = name.to_string();
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |slot: &mut Slot| {
            let out = (|| -> Result<bool, PgError> {
                if slot.locks.contains(&name) && !slot.drop_if_dead() {
                    return Ok(true);
                }
                let take = |c: &mut Client| {
                    c.query_one(
                        "SELECT pg_try_advisory_lock(hashtextextended($1 || ' ' || current_schema(), 0))",
                        &[&name],
                    )
                    .and_then(|r| r.try_get::<_, bool>(0))
                    .map_err(|source| PgError::Sql {
                        what: "take an advisory lock",
                        source,
                    })
                };
                let got = match take(slot.client()?) {
                    Err(_) if slot.drop_if_dead() => take(slot.client()?)?,
                    r => r?,
                };
                if got {
                    slot.locks.insert(name.clone());
                }
                Ok(got)
            })();
            let _ = tx.send(out);
        });
        self.send(job)?;
        rx.recv().unwrap_or_else(|_| Err(self.stopped()))
    }

    /// Releases the advisory lock `name` if this connection holds it.
    pub fn unlock(&self, name: &str) -> Result<(), PgError> {
        let name = name.to_string();
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |slot: &mut Slot| {
            let out = (|| -> Result<(), PgError> {
                if !slot.locks.remove(&name) {
                    return Ok(());
                }
                let Some(c) = slot.client.as_mut() else {
                    return Ok(());
                };
                c.execute(
                    "SELECT pg_advisory_unlock(hashtextextended($1 || ' ' || current_schema(), 0))",
                    &[&name],
                )
                .map(|_| ())
                .map_err(|source| PgError::Sql {
                    what: "release an advisory lock",
                    source,
                })
            })();
            let _ = tx.send(out);
        });
        self.send(job)?;
        rx.recv().unwrap_or_else(|_| Err(self.stopped()))
    }

    fn stopped(&self) -> PgError {
        PgError::Connect {
            target: self.target.clone(),
            reason: "the connection thread stopped".into(),
        }
    }

    fn send(&self, job: Job) -> Result<(), PgError> {
        match &self.jobs {
            Some(jobs) if jobs.send(job).is_ok() => Ok(()),
            _ => Err(self.stopped()),
        }
    }

    /// Ends the thread (after the call it serves), closing the connection there.
    fn stop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TableConnection {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_from_one_without_gaps_and_version_is_the_last() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1, "{}", m.name);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(VERSION));
    }

    #[test]
    fn checksum_tells_edits_apart() {
        assert_eq!(checksum(""), 0xcbf2_9ce4_8422_2325_u64 as i64);
        assert_ne!(checksum(MIGRATIONS[0].sql), checksum(MIGRATIONS[1].sql));
        assert_ne!(checksum("SELECT 1;"), checksum("SELECT 1; "));
    }
}
