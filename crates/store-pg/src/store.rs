//! [`PgStore`]: the message store on PostgreSQL (see the crate docs for its contract).
//!
//! Layout: `migrations/*.sql`. Connections: one writer connection behind a mutex (writes of this
//! process queue there, writes of other processes queue on the head row's lock), a pool of reader
//! connections opened on demand, and one listening connection on its own thread.

// The SQLite store's cursor: the same text on both engines, so a page cursor means the same.
use pharos_store::cursor::Cursor;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use ipnet::IpNet;
use pharos_model::{AddrRole, EventState, Message, Severity, Timestamp};
use pharos_store::{
    Acknowledged, Acknowledgement, ChangeKind, FeedEntry, MessageQuery, MessageStore, Page,
    StoreError, StoredMessage,
};
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{ToSql, Type};
use postgres::{Client, GenericClient, NoTls, Row};
use tokio::sync::watch;

use crate::{PgError, describe, migrations};

/// Messages deleted per transaction by [`MessageStore::delete_before`], so writers wait at most
/// one chunk.
pub const DELETE_CHUNK: usize = 5_000;

/// The channel every writing transaction notifies with `"<seq> <schema>"` (delivered at commit).
pub const NOTIFY_CHANNEL: &str = "pharos_changes";

/// How long opening a connection may take, unless the connection string says otherwise.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle time before TCP keepalives probe a connection.
const KEEPALIVES_IDLE: Duration = Duration::from_secs(60);
/// Idle reader connections kept open.
const MAX_IDLE_READERS: usize = 4;
/// How often the listener looks up from waiting for notifications to see if it should stop.
const LISTEN_POLL: Duration = Duration::from_millis(200);
/// Pause between attempts to reconnect the listener.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// The columns a read selects, in the order [`read_row`] expects.
const SELECT_COLS: &str = "SELECT id, state, state_changed_ns, doc::text, event_ns, acked_by, acked_ns, ack_comment FROM pharos_messages";

/// A failure of the engine (connection lost, statement refused) as a [`StoreError`].
///
/// `StoreError` has no variant for engines other than SQLite yet; until it has one, engine
/// failures are reported as [`StoreError::BadQuery`] with a message that starts with
/// `postgresql:`. This function is the one place to change when the variant exists.
pub(crate) fn engine_error(message: String) -> StoreError {
    StoreError::Engine {
        engine: "postgresql",
        message,
    }
}

/// Maps a client error of the step `what` to a [`StoreError`].
fn sql(what: &'static str) -> impl FnOnce(postgres::Error) -> StoreError {
    move |e| engine_error(format!("cannot {what}: {}", describe(&e)))
}

/// Locks a mutex, recovering from poisoning: a panicking holder's open transaction was rolled
/// back when it was dropped, so the connection is consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How to open a connection, and how to name the server in errors.
struct Connector {
    config: postgres::Config,
    target: String,
}

impl Connector {
    fn open(&self) -> Result<Client, PgError> {
        open_client(&self.config, &self.target)
    }
}

/// A new connection of `config` (`target` names it in errors) with `synchronous_commit = on`:
/// the contract says a write is durable when it returns, whatever the server's default.
pub(crate) fn open_client(config: &postgres::Config, target: &str) -> Result<Client, PgError> {
    let mut client = config.connect(NoTls).map_err(|e| PgError::Connect {
        target: target.to_string(),
        reason: describe(&e),
    })?;
    client
        .batch_execute("SET synchronous_commit = on")
        .map_err(|source| PgError::Sql {
            what: "set synchronous_commit",
            source,
        })?;
    Ok(client)
}

/// Host, port, database and user of a configuration, for messages (never the password).
pub(crate) fn target_of(c: &postgres::Config) -> String {
    let hosts: Vec<String> = c
        .get_hosts()
        .iter()
        .map(|h| match h {
            postgres::config::Host::Tcp(s) => s.clone(),
            postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = c.get_ports().iter().map(u16::to_string).collect();
    format!(
        "host={} port={} dbname={} user={}",
        if hosts.is_empty() {
            "(default)".to_string()
        } else {
            hosts.join(",")
        },
        if ports.is_empty() {
            "5432".to_string()
        } else {
            ports.join(",")
        },
        c.get_dbname().unwrap_or("(the user's)"),
        c.get_user().unwrap_or("(this process's)"),
    )
}

/// A connection string with its password replaced by `***` (key=value and URL forms).
pub(crate) fn redact(s: &str) -> String {
    if let Some(scheme_end) = s.find("://") {
        let rest = &s[scheme_end + 3..];
        let authority_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            let userinfo = &rest[..at];
            if let Some(colon) = userinfo.find(':') {
                return format!(
                    "{}{}:***{}",
                    &s[..scheme_end + 3],
                    &userinfo[..colon],
                    &rest[at..]
                );
            }
        }
        return s.to_string();
    }
    s.split_whitespace()
        .map(|kv| {
            if kv.starts_with("password=") {
                "password=***"
            } else {
                kv
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Raises the newest known seq to `seq` (never lowers it), waking watchers when it grew.
fn raise(feed: &watch::Sender<u64>, seq: u64) {
    feed.send_if_modified(|v| {
        if seq > *v {
            *v = seq;
            true
        } else {
            false
        }
    });
}

/// PostgreSQL message store; see the crate docs for its contract.
pub struct PgStore {
    connector: Arc<Connector>,
    writer: Mutex<Option<Client>>,
    idle: Mutex<Vec<Client>>,
    schema: String,
    feed: Arc<watch::Sender<u64>>,
    listener: Listener,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.connector.target)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the database named by `params` (libpq key=value pairs or a
    /// `postgresql://` URL), migrates its schema to [`migrations::VERSION`] and starts following
    /// the change notifications. Blocking: call it off the async runtime.
    pub fn connect(params: &str) -> Result<Self, PgError> {
        let config: postgres::Config = params.parse().map_err(|e| PgError::Config {
            given: redact(params),
            reason: describe(&e),
        })?;
        Self::with_config(config)
    }

    /// As [`PgStore::connect`], from a parsed configuration.
    pub fn with_config(mut config: postgres::Config) -> Result<Self, PgError> {
        if config.get_application_name().is_none() {
            config.application_name("pharos");
        }
        // An unreachable host fails in seconds, not after the system's TCP timeout; a silently
        // dropped connection (a NAT, a failed-over server) is noticed within minutes.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
            // The client's default, two hours: the connection string did not choose.
            config.keepalives_idle(KEEPALIVES_IDLE);
        }
        let connector = Arc::new(Connector {
            target: target_of(&config),
            config,
        });
        let mut writer = connector.open()?;
        migrations::migrate(&mut writer)?;
        let schema: Option<String> = writer
            .query_one("SELECT current_schema()", &[])
            .and_then(|r| r.try_get(0))
            .map_err(|source| PgError::Sql {
                what: "read current_schema()",
                source,
            })?;
        let schema = schema.ok_or_else(|| PgError::Connect {
            target: connector.target.clone(),
            reason: "no schema of the search_path exists; create one or set search_path".into(),
        })?;
        let feed = Arc::new(watch::Sender::new(0));
        // Listen before reading the head: a change committed in between is in one or the other.
        let listener = Listener::start(connector.clone(), schema.clone(), feed.clone())?;
        let head = head_seq(&mut writer).map_err(PgError::Store)?;
        raise(&feed, head);
        Ok(Self {
            connector,
            writer: Mutex::new(Some(writer)),
            idle: Mutex::new(Vec::new()),
            schema,
            feed,
            listener,
        })
    }

    /// The schema the store's tables are in (the first of the connection's search_path).
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Runs one writing transaction: `f` runs after the head row is locked, with the head's
    /// `(last_id, last_seq)`, and returns its result and the new head if it changed anything. The
    /// new head is written, its seq notified, the transaction committed, and the watchers told, in
    /// that order, while this process's writer lock is held.
    ///
    /// A writer connection found dead when the transaction begins (the server restarted, an
    /// administrator cut it) is replaced and the transaction begun again, once: nothing was sent
    /// that could have been committed. A failure after that is the caller's error, and a dead
    /// connection is replaced on the next call. The connection is out of its slot while `f` runs,
    /// so a panic drops it (the server rolls the transaction back) instead of leaving it inside
    /// an open transaction.
    fn write<T>(
        &self,
        f: impl FnOnce(&mut Client, Head) -> Result<(T, Option<Head>), StoreError>,
    ) -> Result<T, StoreError> {
        let mut slot = lock(&self.writer);
        let mut client = None;
        for attempt in 0..2 {
            let mut c = match slot.take() {
                Some(c) if !c.is_closed() => c,
                _ => self.connector.open()?,
            };
            match c.batch_execute("BEGIN") {
                Ok(()) => {
                    client = Some(c);
                    break;
                }
                Err(_) if attempt == 0 && dead(&mut c) => continue,
                Err(e) => {
                    if !dead(&mut c) {
                        *slot = Some(c);
                    }
                    return Err(sql("begin a write transaction")(e));
                }
            }
        }
        let mut c = client.ok_or_else(|| engine_error("no writer connection".into()))?;
        match self.in_transaction(&mut c, f) {
            Ok((out, new_head)) => {
                *slot = Some(c);
                if let Some(h) = new_head {
                    raise(&self.feed, h.last_seq as u64);
                }
                Ok(out)
            }
            Err(e) => {
                if c.batch_execute("ROLLBACK").is_ok() {
                    *slot = Some(c);
                }
                Err(e)
            }
        }
    }

    /// The body of [`PgStore::write`] after `BEGIN`, through `COMMIT`.
    fn in_transaction<T>(
        &self,
        tx: &mut Client,
        f: impl FnOnce(&mut Client, Head) -> Result<(T, Option<Head>), StoreError>,
    ) -> Result<(T, Option<Head>), StoreError> {
        let row = tx
            .query_typed_one(
                "SELECT last_id, last_seq FROM pharos_store_head FOR UPDATE",
                &[],
            )
            .map_err(sql("lock pharos_store_head"))?;
        let head = Head {
            last_id: row.try_get(0).map_err(sql("read pharos_store_head"))?,
            last_seq: row.try_get(1).map_err(sql("read pharos_store_head"))?,
        };
        let (out, new_head) = f(tx, head)?;
        if let Some(h) = new_head {
            tx.execute_typed(
                "UPDATE pharos_store_head SET last_id = $1, last_seq = $2",
                &[(&h.last_id, Type::INT8), (&h.last_seq, Type::INT8)],
            )
            .map_err(sql("advance pharos_store_head"))?;
            let payload = format!("{} {}", h.last_seq, self.schema);
            tx.execute_typed(
                "SELECT pg_notify($1, $2)",
                &[(&NOTIFY_CHANNEL, Type::TEXT), (&payload, Type::TEXT)],
            )
            .map_err(sql("notify the change"))?;
        }
        tx.batch_execute("COMMIT").map_err(sql("commit"))?;
        Ok((out, new_head))
    }

    /// Runs `f` on a reader connection (from the pool, or a new one). When `f` fails on a pooled
    /// connection that turns out dead (cut while idle), it runs once more on a new connection if
    /// `retry` (for reads, which may run twice).
    fn read<T>(
        &self,
        retry: bool,
        f: impl Fn(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        for attempt in 0..2 {
            let pooled = {
                let mut idle = lock(&self.idle);
                let mut found = None;
                while let Some(c) = idle.pop() {
                    if !c.is_closed() {
                        found = Some(c);
                        break;
                    }
                }
                found
            };
            let was_pooled = pooled.is_some();
            let mut client = match pooled {
                Some(c) => c,
                None => self.connector.open()?,
            };
            let out = f(&mut client);
            let alive = !client.is_closed() && (out.is_ok() || !dead(&mut client));
            if alive {
                let mut idle = lock(&self.idle);
                if idle.len() < MAX_IDLE_READERS {
                    idle.push(client);
                }
            }
            if out.is_err() && !alive && was_pooled && retry && attempt == 0 {
                continue;
            }
            return out;
        }
        Err(engine_error("no reader connection".into()))
    }
}

/// Whether a connection that just failed is unusable (closed, or not answering an empty query).
fn dead(c: &mut Client) -> bool {
    c.is_closed() || c.is_valid(Duration::from_secs(2)).is_err()
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.stop();
        // A client owns a small tokio runtime, which must not be dropped inside an async context
        // (the last handle to a store may go away in an async task): drop them on a thread.
        let mut clients: Vec<Client> = std::mem::take(&mut *lock(&self.idle));
        clients.extend(lock(&self.writer).take());
        if !clients.is_empty() {
            let _ = std::thread::spawn(move || drop(clients)).join();
        }
    }
}

/// The head row: newest id and seq ever assigned.
#[derive(Debug, Clone, Copy)]
struct Head {
    last_id: i64,
    last_seq: i64,
}

/// The newest seq committed (0 if none).
fn head_seq(client: &mut impl GenericClient) -> Result<u64, StoreError> {
    let row = client
        .query_typed_one("SELECT last_seq FROM pharos_store_head", &[])
        .map_err(sql("read pharos_store_head"))?;
    let v: i64 = row.try_get(0).map_err(sql("read pharos_store_head"))?;
    Ok(v as u64)
}

/// The thread that follows `LISTEN pharos_changes` and raises the newest known seq.
struct Listener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// Starts the thread; returns once it listens (or the error of its first connection).
    fn start(
        connector: Arc<Connector>,
        schema: String,
        feed: Arc<watch::Sender<u64>>,
    ) -> Result<Self, PgError> {
        let client = listen(&connector)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("pharos-pg-listen".into())
            .spawn(move || follow(client, &connector, &schema, &feed, &flag))
            .map_err(|e| PgError::Connect {
                target: "(listener thread)".into(),
                reason: format!("cannot start the listener thread: {e}"),
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A new connection listening on [`NOTIFY_CHANNEL`].
fn listen(connector: &Connector) -> Result<Client, PgError> {
    let mut client = connector.open()?;
    client
        .batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))
        .map_err(|source| PgError::Sql {
            what: "LISTEN for changes",
            source,
        })?;
    Ok(client)
}

/// The listener thread: raises the feed on each notification of `schema`; reconnects (and
/// catches up from the head row) when the connection is lost; returns when `stop` is set.
fn follow(
    mut client: Client,
    connector: &Connector,
    schema: &str,
    feed: &watch::Sender<u64>,
    stop: &AtomicBool,
) {
    loop {
        while !stop.load(Ordering::Relaxed) && !client.is_closed() {
            let mut notes = client.notifications();
            let mut it = notes.timeout_iter(LISTEN_POLL);
            loop {
                match it.next() {
                    Ok(Some(n)) if n.channel() == NOTIFY_CHANNEL => {
                        if let Some((seq, s)) = n.payload().split_once(' ')
                            && s == schema
                            && let Ok(seq) = seq.parse::<u64>()
                        {
                            raise(feed, seq);
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %describe(&e), "postgresql: the change listener lost its connection; reconnecting");
                        break;
                    }
                }
            }
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
        // Reconnect, then catch up with what committed while nobody listened.
        loop {
            let mut waited = Duration::ZERO;
            while waited < RECONNECT_PAUSE {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(LISTEN_POLL);
                waited += LISTEN_POLL;
            }
            match listen(connector).and_then(|mut c| {
                let head = head_seq(&mut c).map_err(PgError::Store)?;
                Ok((c, head))
            }) {
                Ok((c, head)) => {
                    raise(feed, head);
                    client = c;
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "postgresql: the change listener cannot reconnect; retrying");
                }
            }
        }
    }
}

// ---- encoding --------------------------------------------------------------------------------

/// The integer codes the schema stores for an enum's values (a code is never reused):
/// `$to(value)`, and with `$from`, `$from(code)` (`None` for a code this version does not know).
macro_rules! codes {
    ($ty:ident: $to:ident { $($var:ident = $code:literal),+ $(,)? }) => {
        fn $to(v: $ty) -> i16 {
            match v { $($ty::$var => $code,)+ }
        }
    };
    ($ty:ident: $to:ident, $from:ident { $($var:ident = $code:literal),+ $(,)? }) => {
        codes!($ty: $to { $($var = $code),+ });
        fn $from(v: i16) -> Option<$ty> {
            match v { $($code => Some($ty::$var),)+ _ => None }
        }
    };
}

codes!(ChangeKind: change_code, change_from_code { Created = 0, Updated = 1, State = 2 });
codes!(Severity: severity_code { Info = 0, Low = 1, Middle = 2, High = 3, Critical = 4 });
codes!(EventState: state_code, state_from_code { Open = 0, Acknowledged = 1, Closed = 2 });
codes!(AddrRole: role_code { Src = 0, Dst = 1 });

/// Nanoseconds since the epoch, clamped to i64 (as the SQLite store indexes times).
fn ns(t: Timestamp) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

fn from_ns(v: i64) -> Timestamp {
    chrono::DateTime::from_timestamp_nanos(v)
}

/// A store id as PostgreSQL's bigint, or `None` when it cannot be one of ours.
fn sql_id(id: u64) -> Option<i64> {
    i64::try_from(id).ok()
}

/// The indexed copies of a batch of messages, column by column (for `UNNEST`).
#[derive(Default)]
struct Columns {
    id: Vec<i64>,
    event_ns: Vec<i64>,
    receive_ns: Vec<i64>,
    kind: Vec<String>,
    severity: Vec<i16>,
    nsf: Vec<String>,
    rule: Vec<Option<String>>,
    text_lc: Vec<Option<String>>,
    state: Vec<Option<i16>>,
    end_ns: Vec<Option<i64>>,
    doc: Vec<String>,
    addr_id: Vec<i64>,
    addr_role: Vec<i16>,
    addr: Vec<IpAddr>,
    addr_ns: Vec<i64>,
}

impl Columns {
    /// Adds message `id` (its `common.id` already set, so the stored JSON carries it as the
    /// SQLite store's does).
    fn push(&mut self, id: i64, msg: &Message) {
        let c = &msg.common;
        self.id.push(id);
        self.event_ns.push(ns(c.event_time));
        self.receive_ns.push(ns(c.receive_time));
        self.kind.push(msg.kind.name().to_string());
        self.severity.push(severity_code(c.severity));
        self.nsf.push(c.nsf_name.clone());
        self.rule.push(msg.rule_name().map(str::to_string));
        self.text_lc
            .push(c.message.as_deref().map(str::to_lowercase));
        self.state
            .push(msg.kind.is_event().then_some(state_code(EventState::Open)));
        self.end_ns.push(msg.end_time().map(ns));
        self.doc.push(pharos_model::json::encode_string(msg));
        self.push_addrs(id, msg);
    }

    fn push_addrs(&mut self, id: i64, msg: &Message) {
        let t = ns(msg.common.event_time);
        let mut seen: Vec<(AddrRole, IpAddr)> = Vec::new();
        for (role, a) in msg.addresses() {
            if seen.contains(&(role, a)) {
                continue;
            }
            seen.push((role, a));
            self.addr_id.push(id);
            self.addr_role.push(role_code(role));
            self.addr.push(a);
            self.addr_ns.push(t);
        }
    }

    fn insert_messages(&self, tx: &mut Client) -> Result<(), StoreError> {
        tx.execute_typed(
            "INSERT INTO pharos_messages (id, event_ns, receive_ns, kind, severity, nsf, rule,
                                          text_lc, state, end_ns, doc)
             SELECT id, ev, rc, k, sev, nsf, rule, t, st, en, doc::json
             FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::text[], $5::int2[], $6::text[],
                         $7::text[], $8::text[], $9::int2[], $10::int8[], $11::text[])
                  AS u(id, ev, rc, k, sev, nsf, rule, t, st, en, doc)",
            &[
                (&self.id, Type::INT8_ARRAY),
                (&self.event_ns, Type::INT8_ARRAY),
                (&self.receive_ns, Type::INT8_ARRAY),
                (&self.kind, Type::TEXT_ARRAY),
                (&self.severity, Type::INT2_ARRAY),
                (&self.nsf, Type::TEXT_ARRAY),
                (&self.rule, Type::TEXT_ARRAY),
                (&self.text_lc, Type::TEXT_ARRAY),
                (&self.state, Type::INT2_ARRAY),
                (&self.end_ns, Type::INT8_ARRAY),
                (&self.doc, Type::TEXT_ARRAY),
            ],
        )
        .map_err(sql("insert messages"))?;
        self.insert_addrs(tx)
    }

    fn insert_addrs(&self, tx: &mut Client) -> Result<(), StoreError> {
        if self.addr.is_empty() {
            return Ok(());
        }
        tx.execute_typed(
            "INSERT INTO pharos_message_addrs (message_id, role, addr, event_ns)
             SELECT * FROM UNNEST($1::int8[], $2::int2[], $3::inet[], $4::int8[])",
            &[
                (&self.addr_id, Type::INT8_ARRAY),
                (&self.addr_role, Type::INT2_ARRAY),
                (&self.addr, Type::INET_ARRAY),
                (&self.addr_ns, Type::INT8_ARRAY),
            ],
        )
        .map_err(sql("insert message addresses"))?;
        Ok(())
    }
}

/// Appends change-feed entries `first_seq..` for `ids`, one each.
fn record_changes(
    tx: &mut Client,
    first_seq: i64,
    ids: &[i64],
    change: ChangeKind,
) -> Result<(), StoreError> {
    let seqs: Vec<i64> = (0..ids.len() as i64).map(|i| first_seq + i).collect();
    tx.execute_typed(
        "INSERT INTO pharos_changes (seq, message_id, change, at_ns)
         SELECT s, m, $3, $4 FROM UNNEST($1::int8[], $2::int8[]) AS u(s, m)",
        &[
            (&seqs, Type::INT8_ARRAY),
            (&ids, Type::INT8_ARRAY),
            (&change_code(change), Type::INT2),
            (&ns(chrono::Utc::now()), Type::INT8),
        ],
    )
    .map_err(sql("record the change"))?;
    Ok(())
}

/// Decodes one row selected with [`SELECT_COLS`]; returns it and its paging key.
fn read_row(row: &Row) -> Result<(StoredMessage, Cursor), StoreError> {
    let id: i64 = row.try_get(0).map_err(|e| StoreError::Corrupt {
        id: 0,
        reason: format!("id: {e}"),
    })?;
    let uid = id as u64;
    let corrupt = |what: &str, e: postgres::Error| StoreError::Corrupt {
        id: uid,
        reason: format!("{what}: {}", describe(&e)),
    };
    let state: Option<i16> = row.try_get(1).map_err(|e| corrupt("state", e))?;
    let state = match state {
        None => None,
        Some(v) => Some(state_from_code(v).ok_or_else(|| StoreError::Corrupt {
            id: uid,
            reason: format!("state code {v} is not 0, 1 or 2"),
        })?),
    };
    let state_changed_at = row
        .try_get::<_, Option<i64>>(2)
        .map_err(|e| corrupt("state_changed_ns", e))?
        .map(from_ns);
    let doc: &str = row.try_get(3).map_err(|e| corrupt("doc", e))?;
    let event_time: i64 = row.try_get(4).map_err(|e| corrupt("event_ns", e))?;
    let acked_at: Option<i64> = row.try_get(6).map_err(|e| corrupt("acked_ns", e))?;
    let ack = match acked_at {
        None => None,
        Some(at) => Some(Acknowledgement {
            by: row.try_get(5).map_err(|e| corrupt("acked_by", e))?,
            at: from_ns(at),
            comment: row.try_get(7).map_err(|e| corrupt("ack_comment", e))?,
        }),
    };
    let mut message = pharos_model::json::decode_str(doc).map_err(|e| StoreError::Corrupt {
        id: uid,
        reason: format!("json: {e}"),
    })?;
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

/// Reads message `id`.
fn get_on(client: &mut impl GenericClient, id: i64) -> Result<Option<StoredMessage>, StoreError> {
    let row = client
        .query_typed_opt(
            &format!("{SELECT_COLS} WHERE id = $1"),
            &[(&id, Type::INT8)],
        )
        .map_err(sql("read a message"))?;
    row.map(|r| read_row(&r).map(|(m, _)| m)).transpose()
}

// ---- queries ---------------------------------------------------------------------------------

/// A statement's parameters with their types, numbered as they are added. Typed parameters let
/// the statement run unnamed in one round trip (`query_typed`), planned with its values: the
/// text of a prefix cast to `cidr` is then a constant, which the address index needs.
#[derive(Default)]
struct Statement {
    params: Vec<(Box<dyn ToSql + Sync + Send>, Type)>,
}

impl Statement {
    /// Adds a parameter of type `ty`; returns its placeholder (`$n`).
    fn typed(&mut self, v: impl ToSql + Sync + Send + 'static, ty: Type) -> String {
        self.params.push((Box::new(v), ty));
        format!("${}", self.params.len())
    }

    /// A bigint parameter.
    fn int8(&mut self, v: i64) -> String {
        self.typed(v, Type::INT8)
    }

    /// A smallint parameter.
    fn int2(&mut self, v: i16) -> String {
        self.typed(v, Type::INT2)
    }

    /// A text parameter.
    fn text(&mut self, v: String) -> String {
        self.typed(v, Type::TEXT)
    }

    fn refs(&self) -> Vec<(&(dyn ToSql + Sync), Type)> {
        self.params
            .iter()
            .map(|(p, ty)| (p.as_ref() as &(dyn ToSql + Sync), ty.clone()))
            .collect()
    }
}

/// Builds the SQL of `q` (fetching one row more than the page, to know if another page follows).
///
/// Every filter is a condition on `pharos_messages` and every index ends in `(event_ns, id)`, so
/// the planner may walk an index backwards and stop after a page, or collect the rows of a
/// selective one (addresses, rare NSFs or rules) and sort them. Kinds are one branch per (kind,
/// severity), merged. Address prefixes are `addr <<= cidr` on `pharos_message_addrs`, whose
/// B-tree the planner turns into the range [network, broadcast] of the prefix's family.
fn build_query(q: &MessageQuery) -> Result<(String, Statement), StoreError> {
    let mut st = Statement::default();
    let mut cond = String::new();
    let cursor = q.cursor.as_deref().map(Cursor::decode).transpose()?;
    let mut kinds: Vec<String> = Vec::with_capacity(q.kinds.len());
    for k in &q.kinds {
        if !pharos_model::KIND_NAMES.contains(&k.as_str()) {
            return Err(StoreError::BadQuery(format!(
                "unknown kind {k:?}: expected one of {}",
                pharos_model::KIND_NAMES.join(", ")
            )));
        }
        if !kinds.contains(k) {
            kinds.push(k.clone());
        }
    }
    let from = q.from.map(ns);
    let to = q.to.map(ns);
    if let Some(f) = from {
        cond.push_str(&format!(" AND event_ns >= {}", st.int8(f)));
    }
    if let Some(t) = to {
        cond.push_str(&format!(" AND event_ns < {}", st.int8(t)));
    }
    if let Some(n) = &q.nsf {
        cond.push_str(&format!(" AND nsf = {}", st.text(n.clone())));
    }
    if let Some(r) = &q.rule {
        cond.push_str(&format!(" AND rule = {}", st.text(r.clone())));
    }
    if let Some(t) = &q.text {
        cond.push_str(&format!(
            " AND strpos(text_lc, {}) > 0",
            st.text(t.to_lowercase())
        ));
    }
    if let Some(s) = q.state {
        cond.push_str(&format!(" AND state = {}", st.int2(state_code(s))));
    }
    if let Some(a) = q.after_id {
        let a = i64::try_from(a).unwrap_or(i64::MAX);
        cond.push_str(&format!(" AND id > {}", st.int8(a)));
    }
    for (net, role) in [
        (&q.addr, None),
        (&q.src, Some(AddrRole::Src)),
        (&q.dst, Some(AddrRole::Dst)),
    ] {
        let Some(net) = net else { continue };
        cond.push_str(&addr_condition(&mut st, net, role, from, to, cursor));
    }
    if let Some(c) = cursor {
        cond.push_str(&format!(
            " AND (event_ns, id) < ({}, {})",
            st.int8(c.event_time),
            st.int8(c.id)
        ));
    }
    const ORDER: &str = "ORDER BY event_ns DESC, id DESC LIMIT";
    let fetch = st.int8(q.effective_limit() as i64 + 1);
    let min_severity = q.min_severity.unwrap_or(Severity::Info);
    if kinds.is_empty() {
        if min_severity > Severity::Info {
            cond.push_str(&format!(
                " AND severity >= {}",
                st.int2(severity_code(min_severity))
            ));
        }
        let sql = format!("{SELECT_COLS} WHERE true{cond} {ORDER} {fetch}");
        return Ok((sql, st));
    }
    // With kinds: each (kind, severity) pair's newest rows come in order from the
    // (kind, severity, event_ns, id) index, and the union merges them, as on SQLite. One
    // `kind = ANY(..) AND severity >= ..` would collect and sort every matching row.
    let severities: Vec<String> = Severity::ALL
        .into_iter()
        .filter(|s| *s >= min_severity)
        .map(|s| st.int2(severity_code(s)))
        .collect();
    let mut branches = Vec::with_capacity(kinds.len() * severities.len());
    for kind in kinds {
        let kind = st.text(kind);
        for sev in &severities {
            branches.push(format!(
                "({SELECT_COLS} WHERE kind = {kind} AND severity = {sev}{cond} {ORDER} {fetch})"
            ));
        }
    }
    let sql = format!(
        "SELECT * FROM ({}) AS pages {ORDER} {fetch}",
        branches.join(" UNION ALL ")
    );
    Ok((sql, st))
}

/// `id IN (messages naming an address within net, in role)`, pruned by the time bounds (the
/// address rows carry the event time).
fn addr_condition(
    st: &mut Statement,
    net: &IpNet,
    role: Option<AddrRole>,
    from: Option<i64>,
    to: Option<i64>,
    cursor: Option<Cursor>,
) -> String {
    // A text parameter cast to cidr: a constant when the statement is planned with its values,
    // which is what lets the planner use the index for `<<=`.
    let mut c = format!(
        " AND id IN (SELECT message_id FROM pharos_message_addrs WHERE addr <<= {}::text::cidr",
        st.text(net.trunc().to_string())
    );
    if let Some(r) = role {
        c.push_str(&format!(" AND role = {}", st.int2(role_code(r))));
    }
    if let Some(f) = from {
        c.push_str(&format!(" AND event_ns >= {}", st.int8(f)));
    }
    if let Some(t) = to {
        c.push_str(&format!(" AND event_ns < {}", st.int8(t)));
    }
    if let Some(k) = cursor {
        c.push_str(&format!(" AND event_ns <= {}", st.int8(k.event_time)));
    }
    c.push(')');
    c
}

impl MessageStore for PgStore {
    fn insert_batch(&self, msgs: &mut [Message]) -> Result<Vec<u64>, StoreError> {
        if msgs.is_empty() {
            return Ok(Vec::new());
        }
        let old_ids: Vec<Option<u64>> = msgs.iter().map(|m| m.common.id).collect();
        let result = self.write(|tx, head| {
            let mut cols = Columns::default();
            for (i, msg) in msgs.iter_mut().enumerate() {
                let id = head.last_id + 1 + i as i64;
                msg.common.id = Some(id as u64);
                cols.push(id, msg);
            }
            cols.insert_messages(tx)?;
            record_changes(tx, head.last_seq + 1, &cols.id, ChangeKind::Created)?;
            let n = cols.id.len() as i64;
            let ids = cols.id.iter().map(|&i| i as u64).collect();
            Ok((
                ids,
                Some(Head {
                    last_id: head.last_id + n,
                    last_seq: head.last_seq + n,
                }),
            ))
        });
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
        self.write(|tx, head| {
            let old = tx
                .query_typed_opt(
                    "SELECT state, state_changed_ns FROM pharos_messages WHERE id = $1 FOR UPDATE",
                    &[(&sid, Type::INT8)],
                )
                .map_err(sql("read the message to update"))?;
            let Some(old) = old else {
                return Err(StoreError::NotFound(id));
            };
            let old_state: Option<i16> = old.try_get(0).map_err(sql("read state"))?;
            let old_changed: Option<i64> = old.try_get(1).map_err(sql("read state"))?;
            let (state, changed) = match (msg.kind.is_event(), old_state) {
                (true, Some(s)) => (Some(s), old_changed),
                (true, None) => (Some(state_code(EventState::Open)), None),
                (false, _) => (None, None),
            };
            let c = &msg.common;
            tx.execute_typed(
                "UPDATE pharos_messages SET event_ns = $2, receive_ns = $3, kind = $4, severity = $5,
                     nsf = $6, rule = $7, text_lc = $8, state = $9, state_changed_ns = $10,
                     end_ns = $11, doc = $12::text::json
                 WHERE id = $1",
                &[
                    (&sid, Type::INT8),
                    (&ns(c.event_time), Type::INT8),
                    (&ns(c.receive_time), Type::INT8),
                    (&msg.kind.name(), Type::TEXT),
                    (&severity_code(c.severity), Type::INT2),
                    (&c.nsf_name, Type::TEXT),
                    (&msg.rule_name(), Type::TEXT),
                    (&c.message.as_deref().map(str::to_lowercase), Type::TEXT),
                    (&state, Type::INT2),
                    (&changed, Type::INT8),
                    (&msg.end_time().map(ns), Type::INT8),
                    (&pharos_model::json::encode_string(msg), Type::TEXT),
                ],
            )
            .map_err(sql("update the message"))?;
            tx.execute_typed(
                "DELETE FROM pharos_message_addrs WHERE message_id = $1",
                &[(&sid, Type::INT8)],
            )
            .map_err(sql("replace the message's addresses"))?;
            let mut cols = Columns::default();
            cols.push_addrs(sid, msg);
            cols.insert_addrs(tx)?;
            let seq = head.last_seq + 1;
            record_changes(tx, seq, &[sid], ChangeKind::Updated)?;
            Ok((
                (),
                Some(Head {
                    last_seq: seq,
                    ..head
                }),
            ))
        })
    }

    fn get(&self, id: u64) -> Result<Option<StoredMessage>, StoreError> {
        let Some(sid) = sql_id(id) else {
            return Ok(None);
        };
        self.read(true, |c| get_on(c, sid))
    }

    fn query(&self, q: &MessageQuery) -> Result<Page, StoreError> {
        let (text, st) = build_query(q)?;
        let limit = q.effective_limit();
        self.read(true, |c| {
            let rows = c
                .query_typed(&text, &st.refs())
                .map_err(sql("query messages"))?;
            let mut items = Vec::with_capacity(rows.len().min(limit));
            let mut last = None;
            for row in &rows {
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
        self.write(|tx, head| {
            let old = tx
                .query_typed_opt(
                    "SELECT state FROM pharos_messages WHERE id = $1 FOR UPDATE",
                    &[(&sid, Type::INT8)],
                )
                .map_err(sql("read the event"))?;
            let old: Option<Option<i16>> = old
                .map(|r| r.try_get(0))
                .transpose()
                .map_err(sql("read state"))?;
            match old {
                None => return Err(StoreError::NotFound(id)),
                Some(None) => return Err(StoreError::NotAnEvent(id)),
                Some(Some(_)) => {}
            }
            tx.execute_typed(
                "UPDATE pharos_messages SET state = $2, state_changed_ns = $3 WHERE id = $1",
                &[
                    (&sid, Type::INT8),
                    (&state_code(state), Type::INT2),
                    (&ns(chrono::Utc::now()), Type::INT8),
                ],
            )
            .map_err(sql("set the state"))?;
            if state == EventState::Open {
                // A reopened event is acknowledged anew.
                tx.execute_typed(
                    "UPDATE pharos_messages SET acked_by = NULL, acked_ns = NULL, ack_comment = NULL
                     WHERE id = $1",
                    &[(&sid, Type::INT8)],
                )
                .map_err(sql("clear the acknowledgement"))?;
            }
            let stored = get_on(tx, sid)?.ok_or(StoreError::NotFound(id))?;
            let seq = head.last_seq + 1;
            record_changes(tx, seq, &[sid], ChangeKind::State)?;
            Ok((
                stored,
                Some(Head {
                    last_seq: seq,
                    ..head
                }),
            ))
        })
    }

    fn acknowledge(
        &self,
        id: u64,
        by: &str,
        comment: Option<&str>,
    ) -> Result<Acknowledged, StoreError> {
        let sid = sql_id(id).ok_or(StoreError::NotFound(id))?;
        self.write(|tx, head| {
            let old = tx
                .query_typed_opt(
                    "SELECT state, acked_ns FROM pharos_messages WHERE id = $1 FOR UPDATE",
                    &[(&sid, Type::INT8)],
                )
                .map_err(sql("read the event"))?;
            let Some(old) = old else {
                return Err(StoreError::NotFound(id));
            };
            let state: Option<i16> = old.try_get(0).map_err(sql("read state"))?;
            let acked_at: Option<i64> = old.try_get(1).map_err(sql("read acked_ns"))?;
            let Some(state) = state else {
                return Err(StoreError::NotAnEvent(id));
            };
            let acknowledged = state_code(EventState::Acknowledged);
            if acked_at.is_some() || state == acknowledged {
                let stored = get_on(tx, sid)?.ok_or(StoreError::NotFound(id))?;
                return Ok((
                    Acknowledged {
                        stored,
                        first: false,
                    },
                    None,
                ));
            }
            // An open event becomes acknowledged; a closed one stays closed.
            let new_state = if state == state_code(EventState::Open) {
                acknowledged
            } else {
                state
            };
            tx.execute_typed(
                "UPDATE pharos_messages SET state = $2,
                     state_changed_ns = CASE WHEN state = $2 THEN state_changed_ns ELSE $3 END,
                     acked_by = $4, acked_ns = $3, ack_comment = $5
                 WHERE id = $1",
                &[
                    (&sid, Type::INT8),
                    (&new_state, Type::INT2),
                    (&ns(chrono::Utc::now()), Type::INT8),
                    (&by, Type::TEXT),
                    (&comment, Type::TEXT),
                ],
            )
            .map_err(sql("acknowledge the event"))?;
            let stored = get_on(tx, sid)?.ok_or(StoreError::NotFound(id))?;
            let seq = head.last_seq + 1;
            record_changes(tx, seq, &[sid], ChangeKind::State)?;
            Ok((
                Acknowledged {
                    stored,
                    first: true,
                },
                Some(Head {
                    last_seq: seq,
                    ..head
                }),
            ))
        })
    }

    fn delete_before(&self, t: Timestamp) -> Result<u64, StoreError> {
        let t = ns(t);
        let chunk = DELETE_CHUNK as i64;
        let mut total = 0u64;
        loop {
            // Retention takes neither the head row nor this process's writer lock: it assigns no
            // id or seq, and deleting the rows of old messages does not reorder the feed.
            let n = self.read(false, |c| {
                c.execute_typed(
                    "WITH doomed AS (
                         SELECT id FROM pharos_messages WHERE event_ns < $1
                         ORDER BY event_ns, id LIMIT $2
                     ),
                     a AS (DELETE FROM pharos_message_addrs
                           WHERE message_id IN (SELECT id FROM doomed)),
                     c AS (DELETE FROM pharos_changes
                           WHERE message_id IN (SELECT id FROM doomed))
                     DELETE FROM pharos_messages WHERE id IN (SELECT id FROM doomed)",
                    &[(&t, Type::INT8), (&chunk, Type::INT8)],
                )
                .map_err(sql("delete old messages"))
            })?;
            total += n;
            if n < DELETE_CHUNK as u64 {
                return Ok(total);
            }
        }
    }

    fn count(&self) -> Result<u64, StoreError> {
        self.read(true, |c| {
            let row = c
                .query_typed_one("SELECT count(*) FROM pharos_messages", &[])
                .map_err(sql("count messages"))?;
            let n: i64 = row.try_get(0).map_err(sql("count messages"))?;
            Ok(n as u64)
        })
    }

    fn count_by_kind(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(true, |c| {
            let rows = c
                .query_typed(
                    "SELECT kind, count(*) FROM pharos_messages GROUP BY kind",
                    &[],
                )
                .map_err(sql("count messages by kind"))?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let kind: String = row.try_get(0).map_err(sql("count messages by kind"))?;
                let n: i64 = row.try_get(1).map_err(sql("count messages by kind"))?;
                out.push((kind, n as u64));
            }
            out.sort();
            Ok(out)
        })
    }

    fn changes(&self, after_seq: u64, limit: usize) -> Result<Vec<FeedEntry>, StoreError> {
        let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
        let limit = limit.clamp(1, pharos_store::MAX_LIMIT) as i64;
        self.read(true, |c| {
            let rows = c
                .query_typed(
                    "SELECT m.id, m.state, m.state_changed_ns, m.doc::text, m.event_ns,
                            m.acked_by, m.acked_ns, m.ack_comment, c.seq, c.change
                     FROM pharos_changes c JOIN pharos_messages m ON m.id = c.message_id
                     WHERE c.seq > $1 ORDER BY c.seq LIMIT $2",
                    &[(&after, Type::INT8), (&limit, Type::INT8)],
                )
                .map_err(sql("read the change feed"))?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let (stored, _) = read_row(row)?;
                let id = stored.message.common.id.unwrap_or(0);
                let bad = |reason: String| StoreError::Corrupt { id, reason };
                let seq: i64 = row
                    .try_get(8)
                    .map_err(|e| bad(format!("change feed seq: {}", describe(&e))))?;
                let code: i16 = row
                    .try_get(9)
                    .map_err(|e| bad(format!("change feed entry {seq}: {}", describe(&e))))?;
                let change = change_from_code(code).ok_or_else(|| {
                    bad(format!(
                        "change feed entry {seq} has change code {code}, not 0, 1 or 2"
                    ))
                })?;
                out.push((seq as u64, change, stored));
            }
            Ok(out)
        })
    }

    fn last_change(&self) -> Result<u64, StoreError> {
        Ok(*self.feed.borrow())
    }

    fn watch_changes(&self) -> watch::Receiver<u64> {
        self.feed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_text_is_the_sqlite_stores() {
        let c = Cursor {
            event_time: -5,
            id: 42,
        };
        assert_eq!(c.encode(), "fffffffffffffffb000000000000002a");
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        for bad in ["", "xyz", "0000000000000000ffffffffffffffff"] {
            assert!(matches!(Cursor::decode(bad), Err(StoreError::BadCursor(s)) if s == bad));
        }
    }

    #[test]
    fn passwords_are_redacted_from_connection_strings() {
        assert_eq!(
            redact("host=db user=pharos password=s3cret dbname=pharos"),
            "host=db user=pharos password=*** dbname=pharos"
        );
        assert_eq!(
            redact("postgresql://pharos:s3cret@db:5432/pharos?sslmode=disable"),
            "postgresql://pharos:***@db:5432/pharos?sslmode=disable"
        );
        assert_eq!(
            redact("postgresql://pharos@db/pharos"),
            "postgresql://pharos@db/pharos"
        );
    }

    #[test]
    fn a_bad_connection_string_is_an_error_naming_it_without_the_password() {
        let e = PgStore::connect("host=db password=s3cret bogus_key=1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("password=***") && !e.contains("s3cret"), "{e}");
        assert!(e.contains("bogus_key") && e.contains("expected"), "{e}");
    }

    #[test]
    fn prefixes_are_sent_as_their_network() {
        let mut st = Statement::default();
        let net: IpNet = "198.51.100.77/24".parse().unwrap();
        let c = addr_condition(&mut st, &net, Some(AddrRole::Dst), None, None, None);
        assert!(c.contains("addr <<= $1::text::cidr AND role = $2"), "{c}");
        assert_eq!(format!("{:?}", st.params[0].0), "\"198.51.100.0/24\"");
        assert_eq!(st.params[0].1, Type::TEXT);
    }
}
