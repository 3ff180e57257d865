//! [`SqliteStore`]: the embedded message store, SQLite in WAL mode.
//!
//! Contract, beyond [`MessageStore`]'s:
//! - `synchronous=FULL`: a write that returned `Ok` survives a crash or power loss.
//! - One writer connection behind a mutex; reads run on a small pool of reader connections and
//!   proceed while the writer writes (WAL). The store is `Send + Sync`; call it from blocking
//!   threads (e.g. `tokio::task::spawn_blocking`), never from an async task directly.
//! - [`MessageStore::delete_before`] deletes in chunks of [`DELETE_CHUNK`] messages, one
//!   transaction each, so writers wait at most one chunk.
//! - Times are indexed as ns since the epoch, clamped to years 1677..2262: filters on times outside
//!   that range behave as if at its ends (the stored message keeps its exact time).
//! - The text filter is a substring of the message text after `str::to_lowercase` on both sides,
//!   evaluated with `instr` on a lower-cased copy without an index: quick when matches are common
//!   among recent messages, a scan of the (time-bounded) range when they are rare. FTS5 trigram was
//!   measured as the alternative (docs/PERFORMANCE.md): ~37x faster for rare strings, ~900x slower
//!   for common ones, so it is not used alone.
//! - Plans: every query walks an index in (event time, id) order and stops after one page, except
//!   address prefixes (the matching rows of `message_addrs` are collected, one index seek per hour
//!   bucket of the time range, then sorted) and the cases above. Kind filters run one ordered walk per (kind, severity) of the
//!   `(kind, severity, event_time)` index and merge them.
//! - The change feed's newest seq is kept in a `tokio::sync::watch` channel, updated after each
//!   commit while the writer lock is held, so receivers see seqs in increasing order.
//! - An in-memory store ([`SqliteStore::open_in_memory`]) has no reader pool: reads and writes share
//!   the one connection.

mod schema;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use pharos_model::{AddrRole, EventState, Message, Severity, Timestamp};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, Transaction, params};

use crate::cursor::Cursor;
use crate::{
    Acknowledged, Acknowledgement, ChangeKind, FeedEntry, MessageQuery, MessageStore, Page,
    StoreError, StoredMessage,
};
use schema::KindCodes;

/// Messages deleted per transaction by [`MessageStore::delete_before`].
pub const DELETE_CHUNK: usize = 5_000;

/// How long a connection waits for a lock held by another before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle reader connections kept open.
const MAX_IDLE_READERS: usize = 4;

/// The columns a read selects, in the order [`read_row`] expects.
const SELECT_COLS: &str = "SELECT id, state, state_changed_at, json, event_time, acked_by, acked_at, ack_comment FROM messages";

/// SQLite message store; see the module docs for its contract.
pub struct SqliteStore {
    writer: Mutex<Connection>,
    readers: Option<ReaderPool>,
    kinds: KindCodes,
    feed: tokio::sync::watch::Sender<u64>,
}

/// Reader connections to a database file, opened on demand.
struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReaderPool {
    fn take(&self) -> Result<Connection, StoreError> {
        if let Some(c) = lock(&self.idle).pop() {
            return Ok(c);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.execute_batch("PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY;")?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = lock(&self.idle);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
    }
}

/// Locks a mutex, recovering from poisoning: a panicking holder's open transaction was rolled back
/// when it was dropped, so the connection is consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SqliteStore {
    /// Opens (creating if needed) the store in the database file at `path`, migrating its schema.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::BadQuery(format!(
                "{}: cannot switch to WAL journal mode (got {mode}); is it on a network file system?",
                path.display()
            )));
        }
        Self::configure_writer(&conn)?;
        schema::migrate(&mut conn)?;
        let kinds = KindCodes::load(&conn)?;
        let feed = tokio::sync::watch::Sender::new(last_seq(&conn)?);
        Ok(Self {
            writer: Mutex::new(conn),
            readers: Some(ReaderPool {
                path: path.to_path_buf(),
                idle: Mutex::new(Vec::new()),
            }),
            kinds,
            feed,
        })
    }

    /// A store in memory, for tests and tools; gone when dropped.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let mut conn = Connection::open_in_memory()?;
        Self::configure_writer(&conn)?;
        schema::migrate(&mut conn)?;
        let kinds = KindCodes::load(&conn)?;
        let feed = tokio::sync::watch::Sender::new(last_seq(&conn)?);
        Ok(Self {
            writer: Mutex::new(conn),
            readers: None,
            kinds,
            feed,
        })
    }

    fn configure_writer(conn: &Connection) -> Result<(), StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;
             PRAGMA wal_autocheckpoint = 16000;",
        )?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(())
    }

    /// Copies the write-ahead log into the database file and empties it
    /// (`PRAGMA wal_checkpoint(TRUNCATE)`), so that `messages.db` alone holds every committed
    /// message: a file copy is then a complete database, and the log does not grow without bound
    /// between automatic checkpoints. Waits for the writer (it runs on the writer connection) and
    /// up to the busy timeout for readers of older snapshots; returns whether it completed (when
    /// it did not, the frames it could copy are copied and the next call catches up).
    pub fn checkpoint(&self) -> Result<bool, StoreError> {
        let conn = lock(&self.writer);
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        Ok(busy == 0)
    }

    /// Runs `f` on a reader connection (the writer's for an in-memory store).
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &self.readers {
            Some(pool) => {
                let conn = pool.take()?;
                let out = f(&conn);
                pool.give_back(conn);
                out
            }
            None => f(&lock(&self.writer)),
        }
    }

    fn kind_code(&self, msg: &Message) -> Result<i64, StoreError> {
        let name = msg.kind.name();
        self.kinds
            .code(name)
            .ok_or_else(|| StoreError::BadQuery(format!("kind {name} unknown to this database")))
    }

    /// Writes the indexed columns and addresses of `msg` (whose `common.id` is `id`) as a new row.
    fn insert_one(&self, tx: &Transaction<'_>, id: i64, msg: &Message) -> Result<(), StoreError> {
        let c = &msg.common;
        let json = pharos_model::json::encode_string(msg);
        let state = msg.kind.is_event().then_some(state_code(EventState::Open));
        tx.prepare_cached(
            "INSERT INTO messages (id, event_time, receive_time, kind, severity, nsf, rule, text_lc,
                                   state, state_changed_at, end_time, json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, ?10, ?11)",
        )?
        .execute(params![
            id,
            ns(c.event_time),
            ns(c.receive_time),
            self.kind_code(msg)?,
            severity_code(c.severity),
            c.nsf_name,
            msg.rule_name(),
            c.message.as_deref().map(str::to_lowercase),
            state,
            msg.end_time().map(ns),
            json,
        ])?;
        insert_addrs(tx, id, msg)?;
        Ok(())
    }
}

/// The newest seq the change feed ever assigned (0 if none).
fn last_seq(conn: &Connection) -> Result<u64, StoreError> {
    let v: i64 = conn.query_row(
        "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)",
        [],
        |r| r.get(0),
    )?;
    Ok(v as u64)
}

/// The integer codes the schema stores for an enum's values (a code is never reused):
/// `$to(value)`, and with `$from`, `$from(code)` (`None` for a code this version does not know).
macro_rules! codes {
    ($ty:ident: $to:ident { $($var:ident = $code:literal),+ $(,)? }) => {
        fn $to(v: $ty) -> i64 {
            match v { $($ty::$var => $code,)+ }
        }
    };
    ($ty:ident: $to:ident, $from:ident { $($var:ident = $code:literal),+ $(,)? }) => {
        codes!($ty: $to { $($var = $code),+ });
        fn $from(v: i64) -> Option<$ty> {
            match v { $($code => Some($ty::$var),)+ _ => None }
        }
    };
}

codes!(ChangeKind: change_code, change_from_code { Created = 0, Updated = 1, State = 2 });
codes!(Severity: severity_code { Info = 0, Low = 1, Middle = 2, High = 3, Critical = 4 });
codes!(EventState: state_code, state_from_code { Open = 0, Acknowledged = 1, Closed = 2 });
codes!(AddrRole: role_code { Src = 0, Dst = 1 });

/// Appends a change-feed entry for message `id`; returns its seq.
fn record_change(tx: &Transaction<'_>, id: i64, change: ChangeKind) -> Result<u64, StoreError> {
    tx.prepare_cached("INSERT INTO changes (message_id, change, at) VALUES (?1, ?2, ?3)")?
        .execute(params![id, change_code(change), ns(chrono::Utc::now())])?;
    Ok(tx.last_insert_rowid() as u64)
}

/// Inserts the address rows of message `id`.
fn insert_addrs(tx: &Transaction<'_>, id: i64, msg: &Message) -> Result<(), StoreError> {
    let addrs = msg.addresses();
    if addrs.is_empty() {
        return Ok(());
    }
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO message_addrs (message_id, role, addr, event_time, bucket)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let t = ns(msg.common.event_time);
    let bucket = addr_bucket(t);
    for (role, addr) in addrs {
        stmt.execute(params![id, role_code(role), addr_key(addr), t, bucket])?;
    }
    tx.prepare_cached("INSERT OR IGNORE INTO addr_buckets (bucket) VALUES (?1)")?
        .execute([bucket])?;
    Ok(())
}

/// The address-index bucket of an event time in ns (SQLite's integer division, toward zero;
/// monotonic in `t`, so time bounds map to bucket bounds).
fn addr_bucket(t: i64) -> i64 {
    t / schema::ADDR_BUCKET_NS
}

/// Nanoseconds since the epoch, clamped to i64.
pub(crate) fn ns(t: Timestamp) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

fn from_ns(v: i64) -> Timestamp {
    chrono::DateTime::from_timestamp_nanos(v)
}

/// Index key of an address: family byte, then the address bytes big-endian.
fn addr_key(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v4) => [&[4u8][..], &v4.octets()].concat(),
        IpAddr::V6(v6) => [&[6u8][..], &v6.octets()].concat(),
    }
}

/// Lowest and highest index key within a prefix.
fn net_range(n: &ipnet::IpNet) -> (Vec<u8>, Vec<u8>) {
    (addr_key(n.network()), addr_key(n.broadcast()))
}

/// Decodes one row selected with [`SELECT_COLS`]; returns it and its paging key.
fn read_row(row: &Row<'_>) -> Result<(StoredMessage, Cursor), StoreError> {
    let id: i64 = row.get(0)?;
    let uid = id as u64;
    let corrupt = |reason: String| StoreError::Corrupt { id: uid, reason };
    let int = |i: usize, what: &str| -> Result<Option<i64>, StoreError> {
        match row.get_ref(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(v) => Ok(Some(v)),
            other => Err(corrupt(format!(
                "{what} is {:?}, expected an integer",
                other.data_type()
            ))),
        }
    };
    let state = match int(1, "state")? {
        None => None,
        Some(v) => Some(
            state_from_code(v)
                .ok_or_else(|| corrupt(format!("state code {v} is not 0, 1 or 2")))?,
        ),
    };
    let state_changed_at = int(2, "state_changed_at")?.map(from_ns);
    let event_time = int(4, "event_time")?.ok_or_else(|| corrupt("event_time is NULL".into()))?;
    let json = match row.get_ref(3)? {
        ValueRef::Text(t) => {
            std::str::from_utf8(t).map_err(|e| corrupt(format!("json is not UTF-8: {e}")))?
        }
        other => {
            return Err(corrupt(format!(
                "json is {:?}, expected text",
                other.data_type()
            )));
        }
    };
    let text = |i: usize, what: &str| -> Result<Option<String>, StoreError> {
        match row.get_ref(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(t) => std::str::from_utf8(t)
                .map(|t| Some(t.to_string()))
                .map_err(|e| corrupt(format!("{what} is not UTF-8: {e}"))),
            other => Err(corrupt(format!(
                "{what} is {:?}, expected text",
                other.data_type()
            ))),
        }
    };
    let ack = int(6, "acked_at")?.map(from_ns);
    let ack = match ack {
        None => None,
        Some(at) => Some(Acknowledgement {
            by: text(5, "acked_by")?,
            at,
            comment: text(7, "ack_comment")?,
        }),
    };
    let mut message =
        pharos_model::json::decode_str(json).map_err(|e| corrupt(format!("json: {e}")))?;
    message.common.id = Some(uid);
    Ok((
        StoredMessage {
            message,
            state,
            state_changed_at,
            ack,
        },
        Cursor { event_time, id },
    ))
}

/// Reads message `id` on `conn`.
fn get_on(conn: &Connection, id: i64) -> Result<Option<StoredMessage>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT_COLS} WHERE id = ?1"))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(row) => Ok(Some(read_row(row)?.0)),
        None => Ok(None),
    }
}

/// A store id as SQLite's i64, or `None` when it cannot be one of ours.
fn sql_id(id: u64) -> Option<i64> {
    i64::try_from(id).ok()
}

/// Builds the SQL and parameters of `q` (fetching one row more than the page, to know if another
/// page follows).
fn build_query(kinds: &KindCodes, q: &MessageQuery) -> Result<(String, Vec<Value>), StoreError> {
    // Filters other than kind: `cond` with its `args`.
    let mut cond = String::new();
    let mut args: Vec<Value> = Vec::new();
    let cursor = q.cursor.as_deref().map(Cursor::decode).transpose()?;
    let from = q.from.map(ns);
    let to = q.to.map(ns);
    if let Some(f) = from {
        cond.push_str(" AND event_time >= ?");
        args.push(f.into());
    }
    if let Some(t) = to {
        cond.push_str(" AND event_time < ?");
        args.push(t.into());
    }
    if let Some(n) = &q.nsf {
        cond.push_str(" AND nsf = ?");
        args.push(n.clone().into());
    }
    if let Some(r) = &q.rule {
        cond.push_str(" AND rule = ?");
        args.push(r.clone().into());
    }
    if let Some(t) = &q.text {
        cond.push_str(" AND instr(text_lc, ?) > 0");
        args.push(t.to_lowercase().into());
    }
    if let Some(s) = q.state {
        cond.push_str(" AND state = ?");
        args.push(state_code(s).into());
    }
    if let Some(a) = q.after_id {
        cond.push_str(" AND id > ?");
        args.push(i64::try_from(a).unwrap_or(i64::MAX).into());
    }
    for (net, role) in [
        (&q.addr, None),
        (&q.src, Some(AddrRole::Src)),
        (&q.dst, Some(AddrRole::Dst)),
    ] {
        let Some(net) = net else { continue };
        let (lo, hi) = net_range(net);
        // One index seek per bucket of the time range, then the prefix range inside it.
        cond.push_str(
            " AND id IN (SELECT message_id FROM message_addrs WHERE bucket IN \
             (SELECT bucket FROM addr_buckets WHERE bucket BETWEEN ? AND ?) AND addr BETWEEN ? AND ?",
        );
        let upper = [to, cursor.map(|c| c.event_time)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(i64::MAX);
        args.push(addr_bucket(from.unwrap_or(i64::MIN)).into());
        args.push(addr_bucket(upper).into());
        args.push(lo.into());
        args.push(hi.into());
        if let Some(r) = role {
            cond.push_str(" AND role = ?");
            args.push(role_code(r).into());
        }
        // The address table carries the event time, so time bounds prune it too.
        if let Some(f) = from {
            cond.push_str(" AND event_time >= ?");
            args.push(f.into());
        }
        if let Some(t) = to {
            cond.push_str(" AND event_time < ?");
            args.push(t.into());
        }
        if let Some(c) = cursor {
            cond.push_str(" AND event_time <= ?");
            args.push(c.event_time.into());
        }
        cond.push(')');
    }
    if let Some(c) = cursor {
        cond.push_str(" AND (event_time, id) < (?, ?)");
        args.push(c.event_time.into());
        args.push(c.id.into());
    }
    let mut codes: Vec<i64> = Vec::with_capacity(q.kinds.len());
    for k in &q.kinds {
        let code = kinds.code(k).ok_or_else(|| {
            StoreError::BadQuery(format!(
                "unknown kind {k:?}: expected one of {}",
                pharos_model::KIND_NAMES.join(", ")
            ))
        })?;
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    let fetch: Value = (q.effective_limit() as i64 + 1).into();
    const ORDER: &str = " ORDER BY event_time DESC, id DESC LIMIT ?";
    let min_severity = q.min_severity.unwrap_or(Severity::Info);
    if codes.is_empty() {
        let mut sql = format!("{SELECT_COLS} WHERE 1{cond}");
        if min_severity > Severity::Info {
            sql.push_str(" AND severity >= ?");
            args.push(severity_code(min_severity).into());
        }
        sql.push_str(ORDER);
        args.push(fetch);
        return Ok((sql, args));
    }
    // With kinds: each (kind, severity) pair's newest rows come in order from the
    // (kind, severity, event_time) index, and the compound merges them. One `kind IN (...) AND
    // severity >= ?` would sort every matching row, or scan a whole kind for a rare severity.
    let severities: Vec<Severity> = Severity::ALL
        .into_iter()
        .filter(|s| *s >= min_severity)
        .collect();
    let mut sql = String::new();
    let mut all = Vec::with_capacity((args.len() + 3) * codes.len() * severities.len() + 1);
    for code in codes {
        for sev in &severities {
            if !sql.is_empty() {
                sql.push_str(" UNION ALL ");
            }
            sql.push_str(&format!(
                "SELECT * FROM ({SELECT_COLS} WHERE kind = ? AND severity = ?{cond}{ORDER})"
            ));
            all.push(code.into());
            all.push(severity_code(*sev).into());
            all.extend(args.iter().cloned());
            all.push(fetch.clone());
        }
    }
    sql.push_str(ORDER);
    all.push(fetch);
    Ok((sql, all))
}

impl MessageStore for SqliteStore {
    fn insert_batch(&self, msgs: &mut [Message]) -> Result<Vec<u64>, StoreError> {
        if msgs.is_empty() {
            return Ok(Vec::new());
        }
        let old_ids: Vec<Option<u64>> = msgs.iter().map(|m| m.common.id).collect();
        let mut conn = lock(&self.writer);
        let result = (|| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let last: i64 = tx.query_row(
                "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0)",
                [],
                |r| r.get(0),
            )?;
            let mut ids = Vec::with_capacity(msgs.len());
            let mut seq = 0;
            for (i, msg) in msgs.iter_mut().enumerate() {
                let id = last + 1 + i as i64;
                msg.common.id = Some(id as u64);
                self.insert_one(&tx, id, msg)?;
                seq = record_change(&tx, id, ChangeKind::Created)?;
                ids.push(id as u64);
            }
            tx.commit()?;
            self.feed.send_replace(seq);
            Ok(ids)
        })();
        if result.is_err() {
            for (m, old) in msgs.iter_mut().zip(old_ids) {
                m.common.id = old;
            }
        }
        result
    }

    fn update(&self, msg: &Message) -> Result<(), StoreError> {
        let id = msg.common.id.ok_or(StoreError::MissingId)?;
        let sid = sql_id(id).ok_or(StoreError::NotFound(id))?;
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let old: Option<(Option<i64>, Option<i64>)> = tx
            .query_row(
                "SELECT state, state_changed_at FROM messages WHERE id = ?1",
                [sid],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((old_state, old_changed)) = old else {
            return Err(StoreError::NotFound(id));
        };
        let (state, changed) = match (msg.kind.is_event(), old_state) {
            (true, Some(s)) => (Some(s), old_changed),
            (true, None) => (Some(state_code(EventState::Open)), None),
            (false, _) => (None, None),
        };
        let c = &msg.common;
        tx.prepare_cached(
            "UPDATE messages SET event_time = ?2, receive_time = ?3, kind = ?4, severity = ?5, nsf = ?6,
                 rule = ?7, text_lc = ?8, state = ?9, state_changed_at = ?10, end_time = ?11, json = ?12
             WHERE id = ?1",
        )?
        .execute(params![
            sid,
            ns(c.event_time),
            ns(c.receive_time),
            self.kind_code(msg)?,
            severity_code(c.severity),
            c.nsf_name,
            msg.rule_name(),
            c.message.as_deref().map(str::to_lowercase),
            state,
            changed,
            msg.end_time().map(ns),
            pharos_model::json::encode_string(msg),
        ])?;
        tx.prepare_cached("DELETE FROM message_addrs WHERE message_id = ?1")?
            .execute([sid])?;
        insert_addrs(&tx, sid, msg)?;
        let seq = record_change(&tx, sid, ChangeKind::Updated)?;
        tx.commit()?;
        self.feed.send_replace(seq);
        Ok(())
    }

    fn get(&self, id: u64) -> Result<Option<StoredMessage>, StoreError> {
        let Some(sid) = sql_id(id) else {
            return Ok(None);
        };
        self.read(|conn| get_on(conn, sid))
    }

    fn query(&self, q: &MessageQuery) -> Result<Page, StoreError> {
        let (sql, args) = build_query(&self.kinds, q)?;
        let limit = q.effective_limit();
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
            let mut items = Vec::new();
            let mut last = None;
            while let Some(row) = rows.next()? {
                if items.len() == limit {
                    return Ok(Page {
                        items,
                        next_cursor: last.map(Cursor::encode),
                    });
                }
                let (item, key) = read_row(row)?;
                items.push(item);
                last = Some(key);
            }
            Ok(Page {
                items,
                next_cursor: None,
            })
        })
    }

    fn set_state(&self, id: u64, state: EventState) -> Result<StoredMessage, StoreError> {
        let sid = sql_id(id).ok_or(StoreError::NotFound(id))?;
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let old: Option<Option<i64>> = tx
            .query_row("SELECT state FROM messages WHERE id = ?1", [sid], |r| {
                r.get(0)
            })
            .optional()?;
        match old {
            None => return Err(StoreError::NotFound(id)),
            Some(None) => return Err(StoreError::NotAnEvent(id)),
            Some(Some(_)) => {}
        }
        tx.prepare_cached("UPDATE messages SET state = ?2, state_changed_at = ?3 WHERE id = ?1")?
            .execute(params![sid, state_code(state), ns(chrono::Utc::now())])?;
        if state == EventState::Open {
            // A reopened event is acknowledged anew.
            tx.prepare_cached(
                "UPDATE messages SET acked_by = NULL, acked_at = NULL, ack_comment = NULL
                 WHERE id = ?1",
            )?
            .execute([sid])?;
        }
        let stored = get_on(&tx, sid)?.ok_or(StoreError::NotFound(id))?;
        let seq = record_change(&tx, sid, ChangeKind::State)?;
        tx.commit()?;
        self.feed.send_replace(seq);
        Ok(stored)
    }

    fn acknowledge(
        &self,
        id: u64,
        by: &str,
        comment: Option<&str>,
    ) -> Result<Acknowledged, StoreError> {
        let sid = sql_id(id).ok_or(StoreError::NotFound(id))?;
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let old: Option<(Option<i64>, Option<i64>)> = tx
            .query_row(
                "SELECT state, acked_at FROM messages WHERE id = ?1",
                [sid],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (state, acked_at) = match old {
            None => return Err(StoreError::NotFound(id)),
            Some((None, _)) => return Err(StoreError::NotAnEvent(id)),
            Some((Some(state), acked_at)) => (state, acked_at),
        };
        let acknowledged = state_code(EventState::Acknowledged);
        if acked_at.is_some() || state == acknowledged {
            let stored = get_on(&tx, sid)?.ok_or(StoreError::NotFound(id))?;
            return Ok(Acknowledged {
                stored,
                first: false,
            });
        }
        // An open event becomes acknowledged; a closed one stays closed.
        let new_state = if state == state_code(EventState::Open) {
            acknowledged
        } else {
            state
        };
        let now = ns(chrono::Utc::now());
        tx.prepare_cached(
            "UPDATE messages SET state = ?2,
                 state_changed_at = CASE WHEN state = ?2 THEN state_changed_at ELSE ?3 END,
                 acked_by = ?4, acked_at = ?3, ack_comment = ?5
             WHERE id = ?1",
        )?
        .execute(params![sid, new_state, now, by, comment])?;
        let stored = get_on(&tx, sid)?.ok_or(StoreError::NotFound(id))?;
        let seq = record_change(&tx, sid, ChangeKind::State)?;
        tx.commit()?;
        self.feed.send_replace(seq);
        Ok(Acknowledged {
            stored,
            first: true,
        })
    }

    fn delete_before(&self, t: Timestamp) -> Result<u64, StoreError> {
        let t = ns(t);
        let mut total = 0u64;
        loop {
            // The lock is taken per chunk, so other writers get in between chunks.
            let mut conn = lock(&self.writer);
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let chunk =
                "SELECT id FROM messages WHERE event_time < ?1 ORDER BY event_time, id LIMIT ?2";
            tx.prepare_cached(&format!(
                "DELETE FROM message_addrs WHERE message_id IN ({chunk})"
            ))?
            .execute(params![t, DELETE_CHUNK as i64])?;
            tx.prepare_cached(&format!(
                "DELETE FROM changes WHERE message_id IN ({chunk})"
            ))?
            .execute(params![t, DELETE_CHUNK as i64])?;
            let n = tx
                .prepare_cached(&format!("DELETE FROM messages WHERE id IN ({chunk})"))?
                .execute(params![t, DELETE_CHUNK as i64])?;
            if n < DELETE_CHUNK {
                // Buckets wholly before `t` that no address row uses any more.
                tx.prepare_cached(
                    "DELETE FROM addr_buckets WHERE bucket < ?1 AND NOT EXISTS \
                     (SELECT 1 FROM message_addrs a WHERE a.bucket = addr_buckets.bucket)",
                )?
                .execute([addr_bucket(t)])?;
            }
            tx.commit()?;
            total += n as u64;
            if n < DELETE_CHUNK {
                return Ok(total);
            }
        }
    }

    fn count(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            Ok(conn.query_row("SELECT count(*) FROM messages", [], |r| r.get::<_, i64>(0))? as u64)
        })
    }

    fn count_by_kind(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT kind, count(*) FROM messages GROUP BY kind")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (code, n) = row?;
                let name = self
                    .kinds
                    .name(code)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("unknown-kind-{code}"));
                out.push((name, n as u64));
            }
            out.sort();
            Ok(out)
        })
    }

    fn changes(&self, after_seq: u64, limit: usize) -> Result<Vec<FeedEntry>, StoreError> {
        let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
        let limit = limit.clamp(1, crate::MAX_LIMIT) as i64;
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT m.id, m.state, m.state_changed_at, m.json, m.event_time,
                        m.acked_by, m.acked_at, m.ack_comment, c.seq, c.change
                 FROM changes c JOIN messages m ON m.id = c.message_id
                 WHERE c.seq > ?1 ORDER BY c.seq LIMIT ?2",
            )?;
            let mut rows = stmt.query(params![after, limit])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let (stored, _) = read_row(row)?;
                let seq: i64 = row.get(8)?;
                let code: i64 = row.get(9)?;
                let change = change_from_code(code).ok_or_else(|| StoreError::Corrupt {
                    id: stored.message.common.id.unwrap_or(0),
                    reason: format!(
                        "change feed entry {seq} has change code {code}, not 0, 1 or 2"
                    ),
                })?;
                out.push((seq as u64, change, stored));
            }
            Ok(out)
        })
    }

    fn last_change(&self) -> Result<u64, StoreError> {
        Ok(*self.feed.borrow())
    }

    fn watch_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.feed.subscribe()
    }
}

#[cfg(test)]
mod checkpoint_tests {
    use super::*;

    fn messages(n: usize) -> Vec<Message> {
        (0..n)
            .map(|i| {
                let mut m =
                    Message::new("fw-1", pharos_model::Kind::GenericLog(Default::default()));
                m.common.message = Some(format!("line {i}"));
                m
            })
            .collect()
    }

    /// Opens a copy of the database file alone (no `-wal` beside it) and counts its messages.
    fn count_in_file_copy(db: &Path) -> u64 {
        let other = tempfile::tempdir().unwrap();
        let copy = other.path().join("messages.db");
        std::fs::copy(db, &copy).unwrap();
        SqliteStore::open(&copy).unwrap().count().unwrap()
    }

    #[test]
    fn checkpoint_moves_every_committed_message_into_the_database_file() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("messages.db");
        let store = SqliteStore::open(&db).unwrap();
        store.insert_batch(&mut messages(300)).unwrap();
        // Below the automatic checkpoint's threshold, the messages are only in the log.
        assert_eq!(count_in_file_copy(&db), 0);
        assert!(store.checkpoint().unwrap());
        assert_eq!(count_in_file_copy(&db), 300);
        let wal = tmp.path().join("messages.db-wal");
        assert_eq!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0), 0);
    }
}
