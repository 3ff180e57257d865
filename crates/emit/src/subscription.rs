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
//! - A subscription that has no position yet starts at the feed's newest seq when it is first
//!   started: it gets the changes made after it was created, not the history.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::ConfigDuration;
use crate::filter::Filter;
pub use crate::sink::SinkSpec;

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

/// API-created specs and the positions of all subscriptions, in `<data_dir>/subscriptions.db`.
pub struct SubscriptionStore {
    conn: Mutex<Connection>,
    path: String,
}

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
            conn: Mutex::new(conn),
            path: name,
        })
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
            conn: Mutex::new(conn),
            path: ":memory:".into(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sq(&self, source: rusqlite::Error) -> SubscriptionStoreError {
        SubscriptionStoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// The API-created specs, oldest first.
    pub fn api_specs(&self) -> Result<Vec<SubscriptionSpec>, SubscriptionStoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT name, spec FROM specs ORDER BY created_at, name")
            .map_err(|e| self.sq(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.sq(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (name, json) = row.map_err(|e| self.sq(e))?;
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
        self.lock()
            .execute(
                "INSERT OR REPLACE INTO specs (name, spec, created_at) VALUES (?1, ?2, ?3)",
                params![spec.name, json, chrono::Utc::now().timestamp_millis()],
            )
            .map_err(|e| self.sq(e))?;
        Ok(())
    }

    /// Deletes a subscription's spec (if API-created) and its position.
    pub fn delete(&self, name: &str) -> Result<(), SubscriptionStoreError> {
        let conn = self.lock();
        conn.execute("DELETE FROM specs WHERE name = ?1", [name])
            .and_then(|_| conn.execute("DELETE FROM positions WHERE name = ?1", [name]))
            .map_err(|e| self.sq(e))?;
        Ok(())
    }

    /// The persisted position of `name`, if it has one.
    pub fn position(&self, name: &str) -> Result<Option<Position>, SubscriptionStoreError> {
        self.lock()
            .query_row(
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
            .map_err(|e| self.sq(e))
    }

    /// Persists the position and counters of `name` (durable when it returns).
    pub fn save_position(&self, name: &str, p: &Position) -> Result<(), SubscriptionStoreError> {
        self.lock()
            .execute(
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
            .map_err(|e| self.sq(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscriptions.db");
        {
            let st = SubscriptionStore::open(&path).unwrap();
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
            st.delete("b").unwrap();
        }
        let st = SubscriptionStore::open(&path).unwrap();
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
