//! The SQLite schema, its versions (`PRAGMA user_version`) and the migration between them.
//!
//! Layout (version 1):
//! - `messages`: one row per message. `json` (YANG-JSON from `pharos_model::json`) is the source of
//!   truth; the other columns are copies made for filtering and ordering. Times are ns since the
//!   Unix epoch (clamped to the i64 range, years 1677..2262); `kind` is a code from `kinds`;
//!   `severity` is 0 (info) ..= 4 (critical); `state` is 0 open, 1 acknowledged, 2 closed, NULL for
//!   logs and counters; `text_lc` is the message text lower-cased (Rust `str::to_lowercase`).
//!   `AUTOINCREMENT` keeps ids from ever being reused after retention.
//! - `message_addrs`: every (address, role) a message names, address as a family byte (4 or 6)
//!   followed by the address bytes big-endian, so a prefix is a BLOB range and families never mix.
//! - `kinds`: kind name to code, filled from `pharos_model::KIND_NAMES` at open (new names are
//!   appended; codes never change).
//!
//! Version 2 (time-bucketed address index): `message_addrs` gains `bucket` (event time in ns
//! divided by [`ADDR_BUCKET_NS`], one hour) and is indexed on `(bucket, addr, event_time)`
//! instead of `(addr, event_time)`; `addr_buckets` lists the buckets that have address rows. New
//! messages carry recent times, so their index entries land in the newest bucket's few pages
//! instead of pages spread over the whole index: at 10 million rows the v1 index made every batch
//! rewrite thousands of random pages (docs/PERFORMANCE.md). An address query seeks each bucket of
//! its time range (`bucket IN (SELECT bucket FROM addr_buckets ...) AND addr BETWEEN ...`).
//!
//! Version 3 (change feed): `changes` gets one row per insert, in-place update and state change
//! (`seq` AUTOINCREMENT, so never reused; `change` 0 created, 1 updated, 2 state; `at` ns), written
//! in the transaction of the change. Retention deletes the rows of the messages it deletes. A
//! database migrated from version 2 starts with an empty feed (older messages have no rows).
//!
//! Version 4 (acknowledgement record): `messages` gains `acked_by` (the actor's name), `acked_at`
//! (ns) and `ack_comment`, set once by the first acknowledgement. Events acknowledged before
//! version 4 get `acked_at` from `state_changed_at` and no actor.

use std::collections::HashMap;

use rusqlite::{Connection, TransactionBehavior};

use crate::StoreError;

/// Newest schema version this build writes and reads.
pub(super) const VERSION: i64 = 4;

/// Width of an address-index bucket: one hour of event time, in ns.
pub(super) const ADDR_BUCKET_NS: i64 = 3_600_000_000_000;

const V1: &str = "
CREATE TABLE kinds (
    code INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_time INTEGER NOT NULL,
    receive_time INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    severity INTEGER NOT NULL,
    nsf TEXT NOT NULL,
    rule TEXT,
    text_lc TEXT,
    state INTEGER,
    state_changed_at INTEGER,
    end_time INTEGER,
    json TEXT NOT NULL
);
CREATE INDEX messages_time ON messages(event_time);
CREATE INDEX messages_kind_severity_time ON messages(kind, severity, event_time);
CREATE INDEX messages_nsf_time ON messages(nsf, event_time);
CREATE INDEX messages_rule_time ON messages(rule, event_time) WHERE rule IS NOT NULL;
CREATE INDEX messages_state_time ON messages(state, event_time) WHERE state IS NOT NULL;
CREATE TABLE message_addrs (
    message_id INTEGER NOT NULL,
    role INTEGER NOT NULL,
    addr BLOB NOT NULL,
    event_time INTEGER NOT NULL,
    PRIMARY KEY (message_id, role, addr)
) WITHOUT ROWID;
CREATE INDEX message_addrs_addr_time ON message_addrs(addr, event_time);
";

/// Version 1 to 2: the address table is rebuilt with its bucket (in primary-key order, so the copy
/// writes sequentially) and indexed by (bucket, addr, event_time).
const V2: &str = "
CREATE TABLE message_addrs_v2 (
    message_id INTEGER NOT NULL,
    role INTEGER NOT NULL,
    addr BLOB NOT NULL,
    event_time INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    PRIMARY KEY (message_id, role, addr)
) WITHOUT ROWID;
INSERT INTO message_addrs_v2 (message_id, role, addr, event_time, bucket)
    SELECT message_id, role, addr, event_time, event_time / 3600000000000 FROM message_addrs;
DROP TABLE message_addrs;
ALTER TABLE message_addrs_v2 RENAME TO message_addrs;
CREATE INDEX message_addrs_bucket_addr_time ON message_addrs(bucket, addr, event_time);
CREATE TABLE addr_buckets (bucket INTEGER PRIMARY KEY);
INSERT INTO addr_buckets (bucket) SELECT DISTINCT bucket FROM message_addrs;
";

/// Version 2 to 3: the change feed.
const V3: &str = "
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id INTEGER NOT NULL,
    change INTEGER NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX changes_message ON changes(message_id);
";

/// Version 3 to 4: the acknowledgement columns (see the module docs), added by [`add_ack_columns`].
const V4_COLUMNS: [(&str, &str); 3] = [
    ("acked_by", "TEXT"),
    ("acked_at", "INTEGER"),
    ("ack_comment", "TEXT"),
];

/// Adds the columns of [`V4_COLUMNS`] that `messages` lacks (only those, so a file whose version
/// number was set back migrates too), then dates the acknowledgements made before actors were
/// recorded.
fn add_ack_columns(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    for (name, ty) in V4_COLUMNS {
        let has = tx
            .prepare("SELECT 1 FROM pragma_table_info('messages') WHERE name = ?1")?
            .exists([name])?;
        if !has {
            tx.execute_batch(&format!("ALTER TABLE messages ADD COLUMN {name} {ty};"))?;
        }
    }
    tx.execute(
        "UPDATE messages SET acked_at = state_changed_at WHERE state = 1 AND acked_at IS NULL",
        [],
    )?;
    Ok(())
}

/// Brings the database to [`VERSION`]; refuses a newer one.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > VERSION {
        return Err(StoreError::UnsupportedSchema {
            found,
            supported: VERSION,
        });
    }
    if found < 1 {
        tx.execute_batch(V1)?;
    }
    if found < 2 {
        tx.execute_batch(V2)?;
    }
    if found < 3 {
        tx.execute_batch(V3)?;
    }
    if found < 4 {
        add_ack_columns(&tx)?;
    }
    // Later versions: `if found < 5 { tx.execute_batch(V5)?; }` and so on, in order.
    if found != VERSION {
        tx.pragma_update(None, "user_version", VERSION)?;
    }
    for name in pharos_model::KIND_NAMES {
        tx.execute("INSERT OR IGNORE INTO kinds(name) VALUES (?1)", [name])?;
    }
    tx.commit()?;
    Ok(())
}

/// Kind names and their codes in this database.
#[derive(Debug, Clone, Default)]
pub(super) struct KindCodes {
    by_name: HashMap<String, i64>,
    by_code: HashMap<i64, String>,
}

impl KindCodes {
    /// Reads the `kinds` table.
    pub fn load(conn: &Connection) -> Result<Self, StoreError> {
        let mut k = Self::default();
        let mut stmt = conn.prepare("SELECT code, name FROM kinds")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (code, name) = row?;
            k.by_name.insert(name.clone(), code);
            k.by_code.insert(code, name);
        }
        Ok(k)
    }

    /// Code of a kind name, if the database knows it.
    pub fn code(&self, name: &str) -> Option<i64> {
        self.by_name.get(name).copied()
    }

    /// Name of a code, if the database knows it.
    pub fn name(&self, code: i64) -> Option<&str> {
        self.by_code.get(&code).map(String::as_str)
    }
}
