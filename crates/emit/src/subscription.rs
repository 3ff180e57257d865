//! [`SubscriptionSpec`] (what a subscription is) and [`SubscriptionStore`] (where API-created
//! specs and every subscription's position and counters are kept).
//!
//! Contract:
//! - A name is 1 to 64 characters of `a-z`, `0-9`, `-` and `_`, unique among the config-defined
//!   and the API-created subscriptions.
//! - [`SubscriptionStore`] is a SQLite file (`<data_dir>/subscriptions.db`, WAL,
//!   `synchronous=FULL`): a position written with [`SubscriptionStore::save_position`] survives a
//!   crash. API-created specs are kept there too, with their sink secrets (the file is created
//!   readable by its owner only).
//! - On a cluster it is the shared PostgreSQL database instead
//!   ([`SubscriptionStore::open_postgres`]: tables `pharos_subscription_specs` and
//!   `pharos_subscription_positions`, `synchronous_commit = on`), with the same answers; the
//!   specs' sink secrets are then readable by whoever may read that table. Only one node
//!   dispatches at a time: the one for which [`SubscriptionStore::try_lead`] is true.
//! - A subscription that has no position yet starts at the feed's newest seq when it is first
//!   started: it gets the changes made after it was created, not the history.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use pharos_store_pg::migrations::TableConnection;
use pharos_store_pg::{PgError, PostgresConfig};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::ConfigDuration;
use crate::filter::Filter;
pub use crate::sink::SinkSpec;

mod pg;

/// Default bound of pending changes per subscription ([`SubscriptionSpec::max_queue`]).
pub const DEFAULT_MAX_QUEUE: u64 = 100_000;

/// When a subscription pushes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Emission {
    /// Push as soon as matching changes are in the feed (subject to the dampening period).
    #[default]
    OnChange,
    /// Push the matching changes gathered since the last push every `interval` (none: no push).
    Periodic {
        /// Time between pushes, e.g. `"30s"`.
        interval: ConfigDuration,
    },
}

fn default_max_queue() -> u64 {
    DEFAULT_MAX_QUEUE
}

/// A subscription: a filter, when to push, and where (`[[subscription]]` or `POST /api/v1/subscriptions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionSpec {
    /// Unique name: `a-z`, `0-9`, `-`, `_`, at most 64 characters.
    pub name: String,
    /// Which changes to push (default: every change).
    #[serde(default)]
    pub filter: Filter,
    /// `"on-change"` (default) or `{"periodic": {"interval": "30s"}}`.
    #[serde(default)]
    pub emission: Emission,
    /// At most one push per period; changes during the period go in the next push, as a batch (RFC 8641).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dampening_period: Option<ConfigDuration>,
    /// Where to deliver.
    pub sink: SinkSpec,
    /// Most pending changes kept: beyond, the oldest are skipped and counted as dropped.
    #[serde(default = "default_max_queue")]
    pub max_queue: u64,
}

/// A subscription spec that cannot be used; the message names the key and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("subscription {name:?}: {message}")]
pub struct SpecError {
    /// The subscription's name as given.
    pub name: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl SubscriptionSpec {
    /// The same spec with secrets replaced by `***`, to show it.
    pub fn redacted(&self) -> Self {
        Self {
            sink: self.sink.redacted(),
            ..self.clone()
        }
    }

    /// Checks the name, filter, emission and sink (building the sink, without network access).
    pub fn validate(&self) -> Result<(), SpecError> {
        let err = |message: String| SpecError {
            name: self.name.clone(),
            message,
        };
        validate_name(&self.name).map_err(err)?;
        self.filter.validate().map_err(|e| err(e.to_string()))?;
        if let Emission::Periodic { interval } = self.emission
            && interval.0.is_zero()
        {
            return Err(err(
                "emission.periodic.interval must be more than 0, e.g. \"30s\"".into(),
            ));
        }
        if self.max_queue == 0 {
            return Err(err(
                "max_queue must be at least 1 (default 100000 pending changes)".into(),
            ));
        }
        self.sink.validate().map_err(|e| err(format!("sink.{e}")))
    }
}

/// Checks a subscription name: 1..=64 of `a-z0-9-_`. A control or invisible character is named
/// with its position first ([`pharos_model::text::check_identifier`]), so the error says which.
pub fn validate_name(name: &str) -> Result<(), String> {
    if let Err(e) = pharos_model::text::check_identifier(name) {
        return Err(format!(
            "name {} {e}; use 1 to 64 characters of a-z, 0-9, - and _",
            pharos_model::text::printable(name)
        ));
    }
    if name.len() > 64 {
        return Err(format!(
            "name {name:?} must be 1 to 64 characters of a-z, 0-9, - and _"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "name {name:?} has {c:?}: use only a-z, 0-9, - and _"
        ));
    }
    Ok(())
}

/// A subscription's persisted delivery position and counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Position {
    /// Feed seq up to which every change was delivered, rejected, dropped or filtered out.
    pub seq: u64,
    /// Changes delivered (acknowledged by the sink).
    pub delivered: u64,
    /// Changes the sink rejected for good.
    pub failed: u64,
    /// Matching changes skipped because more than `max_queue` were pending.
    pub dropped: u64,
    /// Changes deleted from the store (retention) before this subscription read them.
    pub expired: u64,
    /// Feed seq up to which holes were counted in `expired` (none is counted twice).
    pub expired_upto: u64,
}

/// Errors of the subscription store.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionStoreError {
    /// The SQLite engine failed.
    #[error("subscription store {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// The engine's error.
        source: rusqlite::Error,
    },
    /// The PostgreSQL engine failed (the message names the server, never the password).
    #[error("subscription store: {0}")]
    Postgres(#[from] PgError),
    /// A stored spec could not be decoded.
    #[error(
        "subscription store: stored spec {name:?} is not readable ({reason}); delete it with DELETE /api/v1/subscriptions/{name}"
    )]
    Corrupt {
        /// The subscription's name.
        name: String,
        /// What could not be decoded.
        reason: String,
    },
}

/// API-created specs and the positions of all subscriptions, in `<data_dir>/subscriptions.db`
/// or in the shared PostgreSQL database of a cluster.
pub struct SubscriptionStore {
    db: Db,
}

/// Where the specs and positions are.
enum Db {
    /// One node's `subscriptions.db` (or memory); `path` names it in errors.
    Sqlite {
        conn: Mutex<Connection>,
        path: String,
    },
    /// The cluster's shared database.
    Postgres(TableConnection),
}

/// The advisory lock of the node that dispatches ([`SubscriptionStore::try_lead`]).
pub const DISPATCH_LOCK: &str = "pharos-dispatch";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS specs (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS positions (
    name TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    delivered INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    dropped INTEGER NOT NULL,
    expired INTEGER NOT NULL DEFAULT 0,
    expired_upto INTEGER NOT NULL DEFAULT 0
);
";

/// Adds the columns that stores made by older versions lack.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let has_expired = conn
        .prepare("SELECT 1 FROM pragma_table_info('positions') WHERE name = 'expired'")?
        .exists([])?;
    if !has_expired {
        conn.execute_batch(
            "ALTER TABLE positions ADD COLUMN expired INTEGER NOT NULL DEFAULT 0;
             ALTER TABLE positions ADD COLUMN expired_upto INTEGER NOT NULL DEFAULT 0;",
        )?;
    }
    Ok(())
}

impl SubscriptionStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, SubscriptionStoreError> {
        let name = path.display().to_string();
        let sq = |source| SubscriptionStoreError::Sqlite {
            path: name.clone(),
            source,
        };
        let existed = path.exists();
        let conn = Connection::open(path).map_err(sq)?;
        #[cfg(unix)]
        if !existed {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        #[cfg(not(unix))]
        let _ = existed;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sq)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sq)?;
        conn.execute_batch("PRAGMA synchronous = FULL;")
            .and_then(|_| conn.execute_batch(SCHEMA))
            .and_then(|_| migrate(&conn))
            .map_err(sq)?;
        Ok(Self {
            db: Db::Sqlite {
                conn: Mutex::new(conn),
                path: name,
            },
        })
    }

    /// Opens the specs and positions of a cluster in its shared PostgreSQL database (tables
    /// created by the schema migrations if missing). Blocks (it connects); may be called from
    /// async code, as every method: the connection runs on a thread of its own. A connection
    /// lost later is opened again by itself.
    pub fn open_postgres(config: &PostgresConfig) -> Result<Self, SubscriptionStoreError> {
        Ok(Self {
            db: Db::Postgres(TableConnection::open(config)?),
        })
    }

    /// `"sqlite"` or `"postgresql"`: where the specs and positions are.
    pub fn engine(&self) -> &'static str {
        match self.db {
            Db::Sqlite { .. } => "sqlite",
            Db::Postgres(_) => "postgresql",
        }
    }

    /// Whether this process may dispatch the subscriptions now. SQLite (one node, whose data
    /// directory is locked by one process): always true. PostgreSQL: true while this store's
    /// connection holds the session advisory lock [`DISPATCH_LOCK`] of its database and schema
    /// (`pg_try_advisory_lock`, taken here if free, never waited for). At most one node of a
    /// cluster gets true at a time. The lock goes with the connection: if that is lost (server
    /// restart, network), the next call says false when another node took the lock meanwhile, or
    /// takes it again. So call it periodically (every few seconds) and start dispatching on
    /// true, stop on false; the handover is at-least-once (a change delivered by the old leader
    /// after its last saved position is delivered again by the new one).
    pub fn try_lead(&self) -> Result<bool, SubscriptionStoreError> {
        match &self.db {
            Db::Sqlite { .. } => Ok(true),
            Db::Postgres(c) => Ok(c.try_advisory_lock(DISPATCH_LOCK)?),
        }
    }

    /// Gives up leadership (PostgreSQL: releases [`DISPATCH_LOCK`] if held; SQLite: nothing),
    /// e.g. at a clean stop, so another node takes over at once instead of at its next try.
    pub fn resign(&self) -> Result<(), SubscriptionStoreError> {
        match &self.db {
            Db::Sqlite { .. } => Ok(()),
            Db::Postgres(c) => Ok(c.unlock(DISPATCH_LOCK)?),
        }
    }

    /// A store in memory, for tests.
    pub fn open_in_memory() -> Result<Self, SubscriptionStoreError> {
        let sq = |source| SubscriptionStoreError::Sqlite {
            path: ":memory:".into(),
            source,
        };
        let conn = Connection::open_in_memory().map_err(sq)?;
        conn.execute_batch(SCHEMA).map_err(sq)?;
        Ok(Self {
            db: Db::Sqlite {
                conn: Mutex::new(conn),
                path: ":memory:".into(),
            },
        })
    }

    /// The SQLite connection locked and a mapper of its errors, or the PostgreSQL connection.
    #[allow(clippy::type_complexity)]
    fn sqlite(
        &self,
    ) -> Result<
        (
            MutexGuard<'_, Connection>,
            impl Fn(rusqlite::Error) -> SubscriptionStoreError + '_,
        ),
        &TableConnection,
    > {
        match &self.db {
            Db::Sqlite { conn, path } => Ok((
                conn.lock().unwrap_or_else(|e| e.into_inner()),
                move |source| SubscriptionStoreError::Sqlite {
                    path: path.clone(),
                    source,
                },
            )),
            Db::Postgres(c) => Err(c),
        }
    }

    /// The API-created specs, oldest first.
    pub fn api_specs(&self) -> Result<Vec<SubscriptionSpec>, SubscriptionStoreError> {
        let rows: Vec<(String, String)> = match self.sqlite() {
            Ok((conn, sq)) => {
                let mut stmt = conn
                    .prepare("SELECT name, spec FROM specs ORDER BY created_at, name")
                    .map_err(&sq)?;
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                    .map_err(&sq)?
                    .collect::<Result<_, _>>()
                    .map_err(&sq)?
            }
            Err(c) => pg::specs(c)?,
        };
        let mut out = Vec::new();
        for (name, json) in rows {
            let spec =
                serde_json::from_str(&json).map_err(|e| SubscriptionStoreError::Corrupt {
                    name: name.clone(),
                    reason: e.to_string(),
                })?;
            out.push(spec);
        }
        Ok(out)
    }

    /// Stores an API-created spec (replacing one of the same name).
    pub fn save_spec(&self, spec: &SubscriptionSpec) -> Result<(), SubscriptionStoreError> {
        let json = serde_json::to_string(spec).map_err(|e| SubscriptionStoreError::Corrupt {
            name: spec.name.clone(),
            reason: e.to_string(),
        })?;
        let now = chrono::Utc::now().timestamp_millis();
        let (conn, sq) = match self.sqlite() {
            Ok(s) => s,
            Err(c) => return pg::save_spec(c, &spec.name, json, now),
        };
        conn.execute(
            "INSERT OR REPLACE INTO specs (name, spec, created_at) VALUES (?1, ?2, ?3)",
            params![spec.name, json, now],
        )
        .map_err(sq)?;
        Ok(())
    }

    /// Deletes a subscription's spec (if API-created) and its position.
    pub fn delete(&self, name: &str) -> Result<(), SubscriptionStoreError> {
        let (conn, sq) = match self.sqlite() {
            Ok(s) => s,
            Err(c) => return pg::delete(c, name),
        };
        conn.execute("DELETE FROM specs WHERE name = ?1", [name])
            .and_then(|_| conn.execute("DELETE FROM positions WHERE name = ?1", [name]))
            .map_err(sq)?;
        Ok(())
    }

    /// The persisted position of `name`, if it has one.
    pub fn position(&self, name: &str) -> Result<Option<Position>, SubscriptionStoreError> {
        let (conn, sq) = match self.sqlite() {
            Ok(s) => s,
            Err(c) => return pg::position(c, name),
        };
        conn.query_row(
            "SELECT seq, delivered, failed, dropped, expired, expired_upto FROM positions
                 WHERE name = ?1",
            [name],
            |r| {
                Ok(Position {
                    seq: r.get::<_, i64>(0)? as u64,
                    delivered: r.get::<_, i64>(1)? as u64,
                    failed: r.get::<_, i64>(2)? as u64,
                    dropped: r.get::<_, i64>(3)? as u64,
                    expired: r.get::<_, i64>(4)? as u64,
                    expired_upto: r.get::<_, i64>(5)? as u64,
                })
            },
        )
        .optional()
        .map_err(sq)
    }

    /// Persists the position and counters of `name` (durable when it returns).
    pub fn save_position(&self, name: &str, p: &Position) -> Result<(), SubscriptionStoreError> {
        let (conn, sq) = match self.sqlite() {
            Ok(s) => s,
            Err(c) => return pg::save_position(c, name, p),
        };
        conn.execute(
            "INSERT OR REPLACE INTO positions
                 (name, seq, delivered, failed, dropped, expired, expired_upto)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                name,
                p.seq as i64,
                p.delivered as i64,
                p.failed as i64,
                p.dropped as i64,
                p.expired as i64,
                p.expired_upto as i64
            ],
        )
        .map_err(sq)?;
        Ok(())
    }
}

/// A throwaway PostgreSQL server for the tests (shared with `pharos-store-pg`'s tests).
#[cfg(test)]
#[path = "../../store-pg/tests/server/mod.rs"]
mod pg_server;

#[cfg(test)]
mod tests {
    use super::pg_server::PgServer;
    use super::*;
    use std::sync::Arc;

    /// One store's database on one engine; `open` gives a new handle on it (a restarted
    /// process, another node of a cluster).
    struct Engine {
        name: &'static str,
        open: Box<dyn Fn() -> SubscriptionStore>,
        server: Option<Arc<PgServer>>,
        /// The PostgreSQL database's name.
        db: String,
        _dir: tempfile::TempDir,
    }

    fn sqlite() -> Engine {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscriptions.db");
        Engine {
            name: "sqlite",
            open: Box::new(move || SubscriptionStore::open(&path).unwrap()),
            server: None,
            db: String::new(),
            _dir: dir,
        }
    }

    /// A PostgreSQL database (skipped, saying why, when PostgreSQL is not installed).
    fn postgres() -> Option<Engine> {
        let server = Arc::new(PgServer::start()?);
        let db = server.create_database();
        let config = PostgresConfig {
            url: server.url_for(&db),
            password_file: None,
        };
        Some(Engine {
            name: "postgresql",
            open: Box::new(move || SubscriptionStore::open_postgres(&config).unwrap()),
            server: Some(server),
            db,
            _dir: tempfile::tempdir().unwrap(),
        })
    }

    /// Runs `body` on SQLite, then on PostgreSQL.
    fn on_both(body: impl Fn(&Engine)) {
        for e in [Some(sqlite()), postgres()].into_iter().flatten() {
            eprintln!("engine: {}", e.name);
            body(&e);
        }
    }

    fn webhook_spec(name: &str) -> SubscriptionSpec {
        serde_json::from_value(serde_json::json!({
            "name": name,
            "filter": {"kinds": ["ddos"], "min_severity": "high"},
            "dampening_period": "5s",
            "sink": {"type": "webhook", "url": "https://hooks.example.net/x", "secret": "s3cret",
                     "allow": ["hooks.example.net"]}
        }))
        .unwrap()
    }

    #[test]
    fn spec_parses_with_defaults_and_validates() {
        let s = webhook_spec("soc-1");
        assert_eq!(s.emission, Emission::OnChange);
        assert_eq!(s.max_queue, DEFAULT_MAX_QUEUE);
        assert_eq!(
            s.dampening_period,
            Some(ConfigDuration(std::time::Duration::from_secs(5)))
        );
        s.validate().unwrap();
        let p: SubscriptionSpec = serde_json::from_value(serde_json::json!({
            "name": "p", "emission": {"periodic": {"interval": "30s"}},
            "sink": {"type": "webhook", "url": "https://h.example/x", "secret": "k", "allow": ["h.example"]}
        }))
        .unwrap();
        assert_eq!(
            p.emission,
            Emission::Periodic {
                interval: ConfigDuration(std::time::Duration::from_secs(30))
            }
        );
    }

    #[test]
    fn bad_names_filters_and_sinks_are_errors_naming_the_key() {
        for bad in [
            "",
            "Soc",
            "a b",
            "é",
            &"x".repeat(65),
            "a\u{7f}",
            "a\u{202e}b",
        ] {
            let mut s = webhook_spec("x");
            s.name = bad.to_string();
            let e = s.validate().unwrap_err().to_string();
            assert!(e.contains("name"), "{e}");
        }
        let mut s = webhook_spec("x");
        s.name = "soc\u{1b}[2J".into();
        let e = s.validate().unwrap_err().message;
        assert!(
            e.contains("\\x1b") && e.contains("byte 3") && !e.contains('\u{1b}'),
            "{e}"
        );
        let mut s = webhook_spec("x");
        s.filter.kinds = vec!["nope".into()];
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("filter.kinds")
        );
        let mut s = webhook_spec("x");
        if let Some(w) = s.sink.config_mut::<crate::webhook::WebhookConfig>() {
            w.url = "not a url".into();
        }
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("sink.webhook.url"), "{e}");
        let e = serde_json::from_value::<SubscriptionSpec>(serde_json::json!({
            "name": "x", "sink": {"type": "carrier-pigeon"}
        }))
        .unwrap_err()
        .to_string();
        assert!(e.contains("carrier-pigeon"), "{e}");
    }

    #[test]
    fn redacted_spec_hides_the_secret() {
        let s = webhook_spec("x").redacted();
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("s3cret") && json.contains("***"), "{json}");
        let n: SubscriptionSpec = serde_json::from_value(serde_json::json!({
            "name": "n", "sink": {"type": "nats", "url": "nats://127.0.0.1:4222", "token": "t0ken"}
        }))
        .unwrap();
        n.validate().unwrap();
        let json = serde_json::to_string(&n.redacted()).unwrap();
        assert!(!json.contains("t0ken") && json.contains("***"), "{json}");
    }

    #[test]
    fn store_keeps_specs_and_positions_across_reopen() {
        on_both(|e| {
            {
                let st = (e.open)();
                st.save_spec(&webhook_spec("a")).unwrap();
                st.save_spec(&webhook_spec("b")).unwrap();
                let p = Position {
                    seq: 42,
                    delivered: 40,
                    failed: 1,
                    dropped: 1,
                    expired: 3,
                    expired_upto: 30,
                };
                st.save_position("a", &p).unwrap();
                st.save_position("cfg", &p).unwrap();
                st.save_position("b", &p).unwrap();
                st.delete("b").unwrap();
            }
            let st = (e.open)();
            let names: Vec<String> = st
                .api_specs()
                .unwrap()
                .into_iter()
                .map(|s| s.name)
                .collect();
            assert_eq!(names, vec!["a"]);
            assert_eq!(st.api_specs().unwrap()[0], webhook_spec("a"));
            assert_eq!(st.position("a").unwrap().unwrap().seq, 42);
            assert_eq!(st.position("cfg").unwrap().unwrap().delivered, 40);
            assert_eq!(st.position("b").unwrap(), None);
            assert_eq!(st.position("a").unwrap().unwrap().expired, 3);
        });
    }

    #[test]
    fn specs_come_oldest_first_and_saving_replaces_both_engines_alike() {
        on_both(|e| {
            let st = (e.open)();
            for n in ["zz", "b-1", "a_2", "B"] {
                let mut s = webhook_spec(n);
                s.name = n.to_string();
                st.save_spec(&s).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            // Saving again replaces the spec and makes it the newest (INSERT OR REPLACE).
            let mut zz = webhook_spec("zz");
            zz.max_queue = 7;
            st.save_spec(&zz).unwrap();
            let specs = st.api_specs().unwrap();
            let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, vec!["b-1", "a_2", "B", "zz"]);
            assert_eq!(specs[3].max_queue, 7);
            // Every counter keeps its full range.
            let big = Position {
                seq: u64::MAX >> 1,
                delivered: 1 << 40,
                failed: 2,
                dropped: 3,
                expired: 4,
                expired_upto: 5,
            };
            st.save_position("zz", &big).unwrap();
            assert_eq!(st.position("zz").unwrap(), Some(big));
            st.save_position("zz", &Position::default()).unwrap();
            assert_eq!(st.position("zz").unwrap(), Some(Position::default()));
            // A second node sees the same at once.
            let other = (e.open)();
            assert_eq!(other.api_specs().unwrap(), specs);
            assert_eq!(other.position("zz").unwrap(), Some(Position::default()));
        });
    }

    #[test]
    fn only_one_node_leads_at_a_time() {
        on_both(|e| {
            let (a, b) = ((e.open)(), (e.open)());
            assert!(a.try_lead().unwrap());
            if e.server.is_none() {
                // One node per data directory: SQLite always leads.
                assert!(b.try_lead().unwrap());
                a.resign().unwrap();
                return;
            }
            assert!(!b.try_lead().unwrap(), "two leaders");
            assert!(a.try_lead().unwrap(), "asking again keeps the lead");
            a.resign().unwrap();
            assert!(b.try_lead().unwrap(), "a resigned: b takes over");
            assert!(!a.try_lead().unwrap());
            drop(b);
            // The lock goes with b's connection.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while !a.try_lead().unwrap() {
                assert!(std::time::Instant::now() < deadline, "b's lock outlived it");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            // Connections cut: a's lock is lost with its session; c may take it, and a is
            // told so instead of believing it still leads.
            let c = (e.open)();
            let server = e.server.as_ref().unwrap();
            server
                .client("postgres")
                .batch_execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
                )
                .unwrap();
            assert!(
                c.try_lead().unwrap(),
                "the lock was released with a's session"
            );
            assert!(!a.try_lead().unwrap(), "a must learn it lost the lead");
            // Another site's schema in the same database has its own tables and its own lock.
            server
                .client(&e.db)
                .batch_execute("CREATE SCHEMA site_b")
                .unwrap();
            let site_b = SubscriptionStore::open_postgres(&PostgresConfig {
                url: format!("{} options='-c search_path=site_b'", server.url_for(&e.db)),
                password_file: None,
            })
            .unwrap();
            assert!(
                site_b.try_lead().unwrap(),
                "site_b waits for the public schema's leader"
            );
            site_b.save_position("x", &Position::default()).unwrap();
            assert_eq!(
                c.position("x").unwrap(),
                None,
                "site_b wrote to its own table"
            );
        });
    }

    #[test]
    fn postgres_store_survives_lost_connections_and_works_from_async_code() {
        let Some(e) = postgres() else {
            return;
        };
        let st = Arc::new((e.open)());
        assert_eq!(st.engine(), "postgresql");
        let server = e.server.as_ref().unwrap();
        let cut = || {
            server
                .client("postgres")
                .batch_execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
                )
                .unwrap();
        };
        let p = Position {
            seq: 9,
            ..Default::default()
        };
        cut();
        st.save_position("s", &p).unwrap();
        cut();
        assert_eq!(st.position("s").unwrap(), Some(p));
        cut();
        st.save_spec(&webhook_spec("w")).unwrap();
        cut();
        assert_eq!(st.api_specs().unwrap().len(), 1);
        cut();
        st.delete("w").unwrap();
        assert!(st.api_specs().unwrap().is_empty());
        // An outage (the database refuses connections): calls fail naming the server, at once
        // while a reconnection was tried less than a second ago, and work again after it.
        let admin = || server.client("postgres");
        admin()
            .batch_execute(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", e.db))
            .unwrap();
        cut();
        let m = st.position("s").unwrap_err().to_string();
        assert!(m.contains(&format!("dbname={}", e.db)), "{m}");
        let t = std::time::Instant::now();
        let m = st.position("s").unwrap_err().to_string();
        assert!(m.contains("within a second"), "{m}");
        assert!(t.elapsed() < std::time::Duration::from_millis(500));
        admin()
            .batch_execute(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", e.db))
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(st.position("s").unwrap(), Some(p));
        // The dispatcher calls the store from tasks; the last handle may go in one.
        for rt in [
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .unwrap(),
        ] {
            let st = st.clone();
            rt.block_on(async move {
                st.save_position("t", &p).unwrap();
                assert_eq!(st.position("t").unwrap(), Some(p));
            });
        }
        let other = (e.open)();
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(async move {
                assert_eq!(other.position("t").unwrap(), Some(p));
                drop(other);
            });
    }

    #[test]
    fn postgres_errors_name_the_server_and_never_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let pass = dir.path().join("pg.pass");
        std::fs::write(&pass, "s3cret-pw\n").unwrap();
        let config = PostgresConfig {
            url: format!(
                "host={} port=1 user=pharos dbname=pharos connect_timeout=2",
                dir.path().display()
            ),
            password_file: Some(pass),
        };
        let m = SubscriptionStore::open_postgres(&config)
            .err()
            .unwrap()
            .to_string();
        assert!(
            m.contains("subscription store")
                && m.contains("dbname=pharos")
                && !m.contains("s3cret"),
            "{m}"
        );
    }

    #[test]
    fn a_store_without_the_expired_column_is_migrated_keeping_positions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscriptions.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE positions (name TEXT PRIMARY KEY, seq INTEGER NOT NULL,
                     delivered INTEGER NOT NULL, failed INTEGER NOT NULL, dropped INTEGER NOT NULL);
                 INSERT INTO positions VALUES ('old', 7, 5, 1, 1);",
            )
            .unwrap();
        }
        let st = SubscriptionStore::open(&path).unwrap();
        let p = st.position("old").unwrap().unwrap();
        assert_eq!((p.seq, p.delivered, p.expired), (7, 5, 0));
        st.save_position("old", &Position { expired: 2, ..p })
            .unwrap();
        assert_eq!(st.position("old").unwrap().unwrap().expired, 2);
    }
}
