//! The RID state table (RFC 6545 §4 "each RID system keeps the state of the requests it handles"):
//! every incident Pharos took part in and every message it sent or received, in one SQLite file.
//!
//! Contract:
//! - [`StateTable::open`] creates or opens the file (WAL journal, `synchronous = FULL`, schema
//!   version in `PRAGMA user_version`); a file written by a newer schema is refused, never
//!   rewritten. A recorded message is durable when the call returns, so the table survives a
//!   restart or a crash.
//! - An incident is keyed by its IODEF `IncidentID` (name, number, instance): the first message
//!   that names it creates it, with the direction of that message (`in`: a peer opened it, `out`:
//!   we did) and the peer as its origin; later messages attach to it and add their peer.
//!   A message without an `IncidentID` attaches to the incident of the earlier message that
//!   carried the same callback token, or to none.
//! - Open incidents are those in [`Status::is_open`]; [`StateTable::open_incidents_of`] counts
//!   the open incidents a peer opened (direction `in`), which the RID handler compares with its
//!   per-peer limit.
//! - The methods are synchronous and short (one transaction each); the table is `Sync`, share it
//!   behind an `Arc` and call it from `spawn_blocking` on busy servers.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chrono::{TimeZone, Utc};
use pharos_model::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use crate::enums::MsgType;
use crate::iodef::IncidentId;
use crate::rid::Rid;

/// The schema version this code writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 2;

/// Why the state table failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file could not be opened or its schema created.
    #[error(
        "RID state table {path:?}: cannot open: {source}; check that the directory exists and is writable"
    )]
    Open {
        /// The file.
        path: String,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The file was written by a newer Pharos.
    #[error(
        "RID state table {path:?}: schema version {found} is newer than this Pharos understands ({SCHEMA_VERSION}); run the Pharos that wrote it, or restore a backup"
    )]
    NewerSchema {
        /// The file.
        path: String,
        /// The version found.
        found: i64,
    },
    /// A query failed.
    #[error("RID state table {path:?}: {what} failed: {source}")]
    Query {
        /// The file.
        path: String,
        /// What was being done (`record an incoming message`, ...).
        what: &'static str,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// No incident has this id.
    #[error("RID state table: no incident {0}; list the incidents to find its id")]
    NoIncident(i64),
    /// No message has this id.
    #[error("RID state table: no message {0}")]
    NoMessage(i64),
}

/// Who sent a message, or who opened an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From a peer to us.
    In,
    /// From us to a peer.
    Out,
}

impl Direction {
    /// `in` or `out`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::Out => "out",
        }
    }

    fn parse(s: &str) -> Self {
        if s == "out" { Self::Out } else { Self::In }
    }
}

/// Where an incident stands in the RFC 6545 workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// A peer's message opened it; nothing decided yet.
    Received,
    /// Waiting for an operator's (or a policy's) approval.
    PendingApproval,
    /// Approved: we act on it (trace further, mitigate).
    Approved,
    /// Denied: we answered with a denying Acknowledgement.
    Denied,
    /// We opened it and sent the first message.
    Sent,
    /// We passed the request on to the next peer upstream.
    Relayed,
    /// We sent the final answer (Result, Report).
    Answered,
    /// Done; nothing more is expected.
    Closed,
}

impl Status {
    /// Every status, in workflow order.
    pub const ALL: [Status; 8] = [
        Status::Received,
        Status::PendingApproval,
        Status::Approved,
        Status::Denied,
        Status::Sent,
        Status::Relayed,
        Status::Answered,
        Status::Closed,
    ];

    /// The stored spelling (`pending-approval`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::PendingApproval => "pending-approval",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Sent => "sent",
            Self::Relayed => "relayed",
            Self::Answered => "answered",
            Self::Closed => "closed",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether the incident still waits on someone: every status but `denied`, `answered` and
    /// `closed`.
    pub fn is_open(self) -> bool {
        !matches!(self, Self::Denied | Self::Answered | Self::Closed)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One incident of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRecord {
    /// Our id (stable, increasing).
    pub id: i64,
    /// The IODEF `IncidentID` (name, number, instance; restriction not kept).
    pub incident_id: IncidentId,
    /// Who opened it: the peer that sent the first message (`in`) or the first peer we sent to
    /// (`out`).
    pub origin_peer: String,
    /// Every peer that sent or received a message of it, in order of appearance.
    pub peers: Vec<String>,
    /// Who opened it.
    pub direction: Direction,
    /// The type of the message that opened it.
    pub msg_type: String,
    /// Where it stands.
    pub status: Status,
    /// The SP path of the latest message that carried one: one label per hop (the system's
    /// first node name, else its first address), victim side first.
    pub sp_path: Vec<String>,
    /// When it was created.
    pub created: Timestamp,
    /// When it last changed (a message or a status).
    pub updated: Timestamp,
    /// Why it was closed, when the reason is not its last message (`expired`: no change for
    /// `[rid] incident_ttl`).
    pub reason: Option<String>,
}

/// One message of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRecord {
    /// Our id (stable, increasing).
    pub id: i64,
    /// The incident it belongs to, if it could be attached to one.
    pub incident: Option<i64>,
    /// Sent or received.
    pub direction: Direction,
    /// The peer it came from or went to.
    pub peer: String,
    /// Its `MsgType` (schema spelling; the `ext-MsgType` value for an extension).
    pub msg_type: String,
    /// The `RID-Callback-Token` it carried or was answered with.
    pub callback_token: Option<String>,
    /// The HTTP status of the exchange (answer we gave, or answer we got), once known.
    pub http_status: Option<u16>,
    /// The XML body exactly as sent or received.
    pub body: Vec<u8>,
    /// When it was recorded.
    pub at: Timestamp,
}

/// A message to record.
#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    /// The peer it came from or goes to (its allow-list name).
    pub peer: &'a str,
    /// The parsed message.
    pub rid: &'a Rid,
    /// Its bytes exactly as on the wire.
    pub body: &'a [u8],
    /// The `RID-Callback-Token` it carries (a callback) or was answered with (a deferral).
    pub callback_token: Option<&'a str>,
    /// The HTTP status of the exchange, if already known.
    pub http_status: Option<u16>,
}

/// What recording a message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The message's id.
    pub message: i64,
    /// The incident it was attached to.
    pub incident: Option<i64>,
    /// Whether this message created that incident.
    pub new_incident: bool,
}

/// Which incidents [`StateTable::list_incidents`] returns (all filters combine; newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentFilter {
    /// Only this status.
    pub status: Option<Status>,
    /// Only open (true) or only finished (false) incidents.
    pub open: Option<bool>,
    /// Only incidents this peer took part in.
    pub peer: Option<String>,
    /// Only incidents opened in this direction.
    pub direction: Option<Direction>,
    /// At most this many (default: all).
    pub limit: Option<usize>,
}

/// The persistent RID state table (see the module contract).
#[derive(Debug)]
pub struct StateTable {
    path: PathBuf,
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY,
    id_name TEXT NOT NULL,
    id_number TEXT NOT NULL,
    id_instance TEXT,
    origin_peer TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    msg_type TEXT NOT NULL,
    status TEXT NOT NULL,
    sp_path TEXT NOT NULL DEFAULT '',
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    reason TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS incidents_key
    ON incidents (id_name, id_number, coalesce(id_instance, ''));
CREATE INDEX IF NOT EXISTS incidents_origin ON incidents (origin_peer, direction, status);
CREATE TABLE IF NOT EXISTS incident_peers (
    incident INTEGER NOT NULL REFERENCES incidents (id),
    peer TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (incident, peer)
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    incident INTEGER REFERENCES incidents (id),
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    peer TEXT NOT NULL,
    msg_type TEXT NOT NULL,
    callback_token TEXT,
    http_status INTEGER,
    body BLOB NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_incident ON messages (incident, id);
CREATE INDEX IF NOT EXISTS messages_token ON messages (callback_token);
";

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn ts(ms: i64) -> Timestamp {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn msg_type_name(t: Option<&MsgType>) -> String {
    match t {
        Some(MsgType::Ext(e)) => e.clone(),
        Some(t) => t.as_str().to_string(),
        None => "RID".into(),
    }
}

/// The SP path of the message's first incident that carries one, one label per hop.
fn sp_path(rid: &Rid) -> Option<Vec<String>> {
    let doc = rid.iodef()?;
    let inc = doc.incidents.iter().find(|i| i.sp_path().is_some())?;
    Some(
        inc.sp_hops()
            .into_iter()
            .map(|s| {
                s.node
                    .names
                    .first()
                    .map(|n| n.text.clone())
                    .or_else(|| s.node.addresses.first().map(|a| a.value.clone()))
                    .unwrap_or_else(|| "?".into())
            })
            .collect(),
    )
}

/// Hop labels are joined with a newline (a label never holds one once trimmed).
fn join_path(p: &[String]) -> String {
    p.iter()
        .map(|s| s.replace(['\n', '\r'], " "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn split_path(s: &str) -> Vec<String> {
    if s.is_empty() {
        Vec::new()
    } else {
        s.split('\n').map(str::to_string).collect()
    }
}

impl StateTable {
    /// Opens (creating if needed) the table at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StateError> {
        let path = path.as_ref().to_path_buf();
        let shown = path.display().to_string();
        let open_err = |source| StateError::Open {
            path: shown.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(open_err)?;
        if version > SCHEMA_VERSION {
            return Err(StateError::NewerSchema {
                path: shown,
                found: version,
            });
        }
        if version == 1 {
            // Version 1 had no close reason.
            conn.execute_batch(&format!(
                "BEGIN; ALTER TABLE incidents ADD COLUMN reason TEXT; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))
            .map_err(open_err)?;
        } else if version < SCHEMA_VERSION {
            conn.execute_batch(&format!(
                "BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))
            .map_err(open_err)?;
        }
        Ok(Self {
            path,
            conn: Mutex::new(conn),
        })
    }

    /// The file this table lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (transactions roll
        // back), so a poisoned lock is safe to take over.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn err(&self, what: &'static str) -> impl Fn(rusqlite::Error) -> StateError + '_ {
        move |source| StateError::Query {
            path: self.path.display().to_string(),
            what,
            source,
        }
    }

    /// Records a message a peer sent us (see the module contract for how it finds its
    /// incident).
    pub fn record_incoming(&self, m: NewMessage<'_>) -> Result<Recorded, StateError> {
        self.record(Direction::In, m, "record an incoming message")
    }

    /// Records a message we send (or sent) to a peer.
    pub fn record_outgoing(&self, m: NewMessage<'_>) -> Result<Recorded, StateError> {
        self.record(Direction::Out, m, "record an outgoing message")
    }

    fn record(
        &self,
        dir: Direction,
        m: NewMessage<'_>,
        what: &'static str,
    ) -> Result<Recorded, StateError> {
        let e = self.err(what);
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(&e)?;
        let now = now_ms();
        let msg_type = msg_type_name(m.rid.msg_type());
        let path = sp_path(m.rid);
        let mut new_incident = false;
        let incident = match m.rid.incident_id() {
            Some(iid) => {
                let found: Option<i64> = tx
                    .query_row(
                        "SELECT id FROM incidents WHERE id_name = ?1 AND id_number = ?2 AND coalesce(id_instance, '') = ?3",
                        params![iid.name, iid.id, iid.instance.as_deref().unwrap_or("")],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(&e)?;
                match found {
                    Some(id) => Some(id),
                    None => {
                        let status = match dir {
                            Direction::In => Status::Received,
                            Direction::Out => Status::Sent,
                        };
                        tx.execute(
                            "INSERT INTO incidents (id_name, id_number, id_instance, origin_peer, direction, msg_type, status, sp_path, created_ms, updated_ms)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
                            params![
                                iid.name,
                                iid.id,
                                iid.instance,
                                m.peer,
                                dir.as_str(),
                                msg_type,
                                status.as_str(),
                                path.as_deref().map(join_path).unwrap_or_default(),
                                now
                            ],
                        )
                        .map_err(&e)?;
                        new_incident = true;
                        Some(tx.last_insert_rowid())
                    }
                }
            }
            None => match m.callback_token {
                Some(tok) => tx
                    .query_row(
                        "SELECT incident FROM messages WHERE callback_token = ?1 AND incident IS NOT NULL ORDER BY id LIMIT 1",
                        params![tok],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(&e)?,
                None => None,
            },
        };
        if let Some(inc) = incident {
            if !new_incident {
                tx.execute(
                    "UPDATE incidents SET updated_ms = ?2 WHERE id = ?1",
                    params![inc, now],
                )
                .map_err(&e)?;
                if let Some(p) = &path {
                    tx.execute(
                        "UPDATE incidents SET sp_path = ?2 WHERE id = ?1",
                        params![inc, join_path(p)],
                    )
                    .map_err(&e)?;
                }
            }
            tx.execute(
                "INSERT OR IGNORE INTO incident_peers (incident, peer, seq)
                 VALUES (?1, ?2, (SELECT count(*) FROM incident_peers WHERE incident = ?1))",
                params![inc, m.peer],
            )
            .map_err(&e)?;
        }
        tx.execute(
            "INSERT INTO messages (incident, direction, peer, msg_type, callback_token, http_status, body, at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                incident,
                dir.as_str(),
                m.peer,
                msg_type,
                m.callback_token,
                m.http_status,
                m.body,
                now
            ],
        )
        .map_err(&e)?;
        let message = tx.last_insert_rowid();
        tx.commit().map_err(&e)?;
        Ok(Recorded {
            message,
            incident,
            new_incident,
        })
    }

    /// Sets the HTTP status of message `id` once the exchange is over, and its callback token
    /// when the answer was a deferral (`None` leaves a recorded token as it is).
    pub fn set_message_result(
        &self,
        id: i64,
        http_status: u16,
        callback_token: Option<&str>,
    ) -> Result<(), StateError> {
        let n = self
            .conn()
            .execute(
                "UPDATE messages SET http_status = ?2, callback_token = coalesce(?3, callback_token) WHERE id = ?1",
                params![id, http_status, callback_token],
            )
            .map_err(self.err("set a message's result"))?;
        if n == 0 {
            return Err(StateError::NoMessage(id));
        }
        Ok(())
    }

    /// Sets the status of incident `id`.
    pub fn set_status(&self, id: i64, status: Status) -> Result<(), StateError> {
        let n = self
            .conn()
            .execute(
                "UPDATE incidents SET status = ?2, updated_ms = ?3 WHERE id = ?1",
                params![id, status.as_str(), now_ms()],
            )
            .map_err(self.err("set an incident's status"))?;
        if n == 0 {
            return Err(StateError::NoIncident(id));
        }
        Ok(())
    }

    /// Closes every open incident (see [`Status::is_open`]) that has not changed since
    /// `before` (status `closed`, reason `expired`), so that it stops counting against a
    /// peer's open incidents; gives the closed incidents.
    pub fn expire_open(&self, before: Timestamp) -> Result<Vec<IncidentRecord>, StateError> {
        let open: Vec<String> = Status::ALL
            .iter()
            .filter(|s| s.is_open())
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        let cutoff = before.timestamp_millis();
        let stale = self.incidents_where(
            &format!(
                "WHERE updated_ms < ?1 AND status IN ({}) ORDER BY id",
                open.join(", ")
            ),
            &[&cutoff],
            "find expired incidents",
        )?;
        if stale.is_empty() {
            return Ok(stale);
        }
        let e = self.err("close expired incidents");
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(&e)?;
        let now = now_ms();
        let mut closed = Vec::new();
        for mut inc in stale {
            // Only if untouched since it was read.
            let n = tx
                .execute(
                    &format!(
                        "UPDATE incidents SET status = 'closed', reason = 'expired', updated_ms = ?2 WHERE id = ?1 AND updated_ms < ?3 AND status IN ({})",
                        open.join(", ")
                    ),
                    params![inc.id, now, cutoff],
                )
                .map_err(&e)?;
            if n == 1 {
                inc.status = Status::Closed;
                inc.reason = Some("expired".into());
                inc.updated = ts(now);
                closed.push(inc);
            }
        }
        tx.commit().map_err(&e)?;
        Ok(closed)
    }

    fn incidents_where(
        &self,
        clause: &str,
        args: &[&dyn rusqlite::ToSql],
        what: &'static str,
    ) -> Result<Vec<IncidentRecord>, StateError> {
        let e = self.err(what);
        let conn = self.conn();
        let sql = format!(
            "SELECT id, id_name, id_number, id_instance, origin_peer, direction, msg_type, status, sp_path, created_ms, updated_ms, reason
             FROM incidents {clause}"
        );
        let mut stmt = conn.prepare(&sql).map_err(&e)?;
        let rows = stmt
            .query_map(args, |r| {
                let mut iid = IncidentId::new(r.get::<_, String>(1)?, r.get::<_, String>(2)?);
                iid.instance = r.get(3)?;
                Ok(IncidentRecord {
                    id: r.get(0)?,
                    incident_id: iid,
                    origin_peer: r.get(4)?,
                    peers: Vec::new(),
                    direction: Direction::parse(&r.get::<_, String>(5)?),
                    msg_type: r.get(6)?,
                    status: Status::parse(&r.get::<_, String>(7)?).unwrap_or(Status::Received),
                    sp_path: split_path(&r.get::<_, String>(8)?),
                    created: ts(r.get(9)?),
                    updated: ts(r.get(10)?),
                    reason: r.get(11)?,
                })
            })
            .map_err(&e)?;
        let mut out = rows.collect::<Result<Vec<_>, _>>().map_err(&e)?;
        let mut peers = conn
            .prepare("SELECT peer FROM incident_peers WHERE incident = ?1 ORDER BY seq")
            .map_err(&e)?;
        for inc in &mut out {
            inc.peers = peers
                .query_map(params![inc.id], |r| r.get(0))
                .map_err(&e)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(&e)?;
        }
        Ok(out)
    }

    /// The incident with our id `id`.
    pub fn incident(&self, id: i64) -> Result<Option<IncidentRecord>, StateError> {
        Ok(self
            .incidents_where("WHERE id = ?1", &[&id], "read an incident")?
            .pop())
    }

    /// The incident with this IODEF `IncidentID` (name, number and instance; restriction
    /// ignored).
    pub fn incident_by_incident_id(
        &self,
        iid: &IncidentId,
    ) -> Result<Option<IncidentRecord>, StateError> {
        let instance = iid.instance.as_deref().unwrap_or("");
        Ok(self
            .incidents_where(
                "WHERE id_name = ?1 AND id_number = ?2 AND coalesce(id_instance, '') = ?3",
                &[&iid.name, &iid.id, &instance],
                "find an incident by IncidentID",
            )?
            .pop())
    }

    /// The incidents `filter` selects, newest first.
    pub fn list_incidents(
        &self,
        filter: &IncidentFilter,
    ) -> Result<Vec<IncidentRecord>, StateError> {
        let mut clauses = Vec::new();
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        if let Some(s) = filter.status {
            args.push(Box::new(s.as_str()));
            clauses.push(format!("status = ?{}", args.len()));
        }
        if let Some(open) = filter.open {
            let finished: Vec<String> = Status::ALL
                .iter()
                .filter(|s| !s.is_open())
                .map(|s| format!("'{}'", s.as_str()))
                .collect();
            clauses.push(format!(
                "status {} IN ({})",
                if open { "NOT" } else { "" },
                finished.join(", ")
            ));
        }
        if let Some(p) = &filter.peer {
            args.push(Box::new(p.clone()));
            clauses.push(format!(
                "id IN (SELECT incident FROM incident_peers WHERE peer = ?{})",
                args.len()
            ));
        }
        if let Some(d) = filter.direction {
            args.push(Box::new(d.as_str()));
            clauses.push(format!("direction = ?{}", args.len()));
        }
        let mut sql = String::new();
        if !clauses.is_empty() {
            sql = format!("WHERE {}", clauses.join(" AND "));
        }
        sql.push_str(" ORDER BY id DESC");
        if let Some(l) = filter.limit {
            sql.push_str(&format!(" LIMIT {}", l.min(i64::MAX as usize)));
        }
        let refs: Vec<&dyn rusqlite::ToSql> = args.iter().map(|b| b.as_ref()).collect();
        self.incidents_where(&sql, &refs, "list incidents")
    }

    fn messages_where(
        &self,
        clause: &str,
        args: &[&dyn rusqlite::ToSql],
        what: &'static str,
    ) -> Result<Vec<MessageRecord>, StateError> {
        let e = self.err(what);
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT id, incident, direction, peer, msg_type, callback_token, http_status, body, at_ms FROM messages {clause}"
            ))
            .map_err(&e)?;
        let rows = stmt
            .query_map(args, |r| {
                Ok(MessageRecord {
                    id: r.get(0)?,
                    incident: r.get(1)?,
                    direction: Direction::parse(&r.get::<_, String>(2)?),
                    peer: r.get(3)?,
                    msg_type: r.get(4)?,
                    callback_token: r.get(5)?,
                    http_status: r.get(6)?,
                    body: r.get(7)?,
                    at: ts(r.get(8)?),
                })
            })
            .map_err(&e)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&e)
    }

    /// The messages of incident `id`, oldest first.
    pub fn messages(&self, incident: i64) -> Result<Vec<MessageRecord>, StateError> {
        self.messages_where(
            "WHERE incident = ?1 ORDER BY id",
            &[&incident],
            "list an incident's messages",
        )
    }

    /// The messages that carried or were answered with callback token `token`, oldest first:
    /// the deferral a callback answers, then the callbacks.
    pub fn messages_by_callback_token(
        &self,
        token: &str,
    ) -> Result<Vec<MessageRecord>, StateError> {
        self.messages_where(
            "WHERE callback_token = ?1 ORDER BY id",
            &[&token],
            "find messages by callback token",
        )
    }

    /// The incident of the first message that carried callback token `token`.
    pub fn incident_by_callback_token(
        &self,
        token: &str,
    ) -> Result<Option<IncidentRecord>, StateError> {
        match self
            .messages_by_callback_token(token)?
            .into_iter()
            .find_map(|m| m.incident)
        {
            Some(id) => self.incident(id),
            None => Ok(None),
        }
    }

    /// How many open incidents (see [`Status::is_open`]) `peer` opened.
    pub fn open_incidents_of(&self, peer: &str) -> Result<u64, StateError> {
        let finished: Vec<String> = Status::ALL
            .iter()
            .filter(|s| !s.is_open())
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        let n: i64 = self
            .conn()
            .query_row(
                &format!(
                    "SELECT count(*) FROM incidents WHERE origin_peer = ?1 AND direction = 'in' AND status NOT IN ({})",
                    finished.join(", ")
                ),
                params![peer],
                |r| r.get(0),
            )
            .map_err(self.err("count a peer's open incidents"))?;
        Ok(n.max(0) as u64)
    }
}
