//! Notices: which contacts want an event ([`wants`]) and the delivery table that makes each event
//! reach each recipient exactly once ([`NoticeStore`]).
//!
//! Contract:
//! - A recipient is one channel of one contact: `mail:ADDR` or `webhook:URL` ([`Recipient`]).
//! - [`NoticeStore::enqueue`] records the (event, recipient) pairs of a batch of the message
//!   store's change feed and the feed position after it in one transaction; a pair already queued
//!   is ignored. After a restart the reader resumes at [`NoticeStore::position`]: nothing is
//!   queued twice, nothing is skipped.
//! - [`NoticeStore::create_notice`] assigns queued pairs to one notice (with its rendered payload)
//!   in one transaction: a pair belongs to at most one notice. A notice is then sent until it
//!   succeeds or its attempts run out; its status, attempts and last error are kept.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use pharos_model::Severity;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::model::{Contact, Interval, Policy, Suppression};
use crate::store::db_err;

/// What a policy is asked about an event.
#[derive(Debug, Clone)]
pub struct EventFacts {
    /// The kind name (`ddos`, `intrusion`, ...).
    pub kind: String,
    /// The RSIT classification `taxonomy/type`, if any.
    pub taxonomy: Option<String>,
    /// Pharos severity.
    pub severity: Severity,
    /// Source-side addresses (attacker, client).
    pub sources: Vec<IpAddr>,
    /// Every address the event names.
    pub addresses: Vec<IpAddr>,
}

/// Whether a contact with `policy` wants the event: kind or taxonomy wanted (an empty list wants
/// all; a `kinds` entry also matches the RSIT type, e.g. `brute-force`), severity at least
/// `min_severity`, and no suppression rule matching.
pub fn wants(policy: &Policy, ev: &EventFacts) -> bool {
    if ev.severity < policy.min_severity {
        return false;
    }
    let rsit_type = ev
        .taxonomy
        .as_deref()
        .and_then(|t| t.split_once('/'))
        .map(|(_, k)| k);
    if !policy.kinds.is_empty()
        && !policy
            .kinds
            .iter()
            .any(|k| k.eq_ignore_ascii_case(&ev.kind) || Some(k.as_str()) == rsit_type)
    {
        return false;
    }
    if !policy.taxonomies.is_empty() {
        let Some(tax) = ev.taxonomy.as_deref() else {
            return false;
        };
        let top = tax.split('/').next().unwrap_or("");
        if !policy
            .taxonomies
            .iter()
            .any(|t| t.eq_ignore_ascii_case(tax) || t.eq_ignore_ascii_case(top))
        {
            return false;
        }
    }
    !policy.suppress.iter().any(|s| match s {
        Suppression::Kind(k) => k.eq_ignore_ascii_case(&ev.kind) || Some(k.as_str()) == rsit_type,
        Suppression::Source(n) => ev.sources.iter().any(|a| n.contains(a)),
        Suppression::Address(n) => ev.addresses.iter().any(|a| n.contains(a)),
    })
}

/// A delivery channel of a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// SMTP.
    Mail,
    /// HTTP POST of JSON.
    Webhook,
}

impl Channel {
    /// `mail` or `webhook`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mail => "mail",
            Self::Webhook => "webhook",
        }
    }

    fn parse(s: &str) -> Self {
        if s == "webhook" {
            Self::Webhook
        } else {
            Self::Mail
        }
    }
}

/// One channel of one contact: where a notice goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Recipient {
    /// Mail or webhook.
    pub channel: Channel,
    /// The mail address or the URL.
    pub address: String,
}

impl Recipient {
    /// The recipients of a contact: its mail, its webhook, or both.
    pub fn of(contact: &Contact) -> Vec<Recipient> {
        let mut v = Vec::new();
        if let Some(m) = contact.mail.as_deref().filter(|m| !m.is_empty()) {
            v.push(Recipient {
                channel: Channel::Mail,
                address: m.to_string(),
            });
        }
        if let Some(w) = contact.webhook.as_deref().filter(|w| !w.is_empty()) {
            v.push(Recipient {
                channel: Channel::Webhook,
                address: w.to_string(),
            });
        }
        v
    }

    /// The key in the delivery table: `mail:ADDR` or `webhook:URL`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.channel.as_str(), self.address)
    }
}

/// An (event, recipient) pair to queue.
#[derive(Debug, Clone)]
pub struct Queued {
    /// The event's id in the message store.
    pub event_id: u64,
    /// Where it goes.
    pub recipient: Recipient,
    /// The organisation whose holdings the event touched.
    pub org_id: String,
    /// The contact (with its policy) as it was when the event was routed.
    pub contact: Contact,
}

/// Pairs waiting for a notice, grouped for one recipient.
#[derive(Debug, Clone)]
pub struct DueGroup {
    /// Where it goes.
    pub recipient: Recipient,
    /// The organisation.
    pub org_id: String,
    /// The contact (policy as routed, of the newest pair).
    pub contact: Contact,
    /// The events, oldest first.
    pub event_ids: Vec<u64>,
}

/// Delivery status of a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not yet delivered; will be tried (again).
    Pending,
    /// Delivered.
    Sent,
    /// Given up after the last attempt.
    Failed,
}

impl Status {
    /// `pending`, `sent` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    /// Parses [`Status::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "sent" => Some(Self::Sent),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// A kept notice: to whom, which events, and how its delivery went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoticeRecord {
    /// Its id.
    pub id: u64,
    /// Mail or webhook.
    pub channel: Channel,
    /// The mail address or URL.
    pub recipient: String,
    /// The organisation.
    pub org_id: String,
    /// `immediate`, `hourly` or `daily`.
    pub interval: String,
    /// Subject line (mail) or summary.
    pub subject: String,
    /// The events it carries (message store ids).
    pub events: Vec<u64>,
    /// Delivery status.
    pub status: Status,
    /// Delivery attempts made.
    pub attempts: u32,
    /// The last delivery error, if any.
    pub last_error: Option<String>,
    /// When it was made (Unix milliseconds).
    pub created_ms: i64,
    /// When it was delivered (Unix milliseconds).
    pub sent_ms: Option<i64>,
}

/// A notice waiting for a delivery attempt, with its payload.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The kept record.
    pub record: NoticeRecord,
    /// The rendered payload (a MIME message or a JSON document), sent as is on every attempt.
    pub payload: Vec<u8>,
}

/// Filters of [`NoticeStore::list`].
#[derive(Debug, Clone, Default)]
pub struct NoticeFilter {
    /// Only this status.
    pub status: Option<Status>,
    /// Only recipients containing this text.
    pub recipient: Option<String>,
    /// Only this organisation.
    pub org_id: Option<String>,
    /// Only notices carrying this event.
    pub event_id: Option<u64>,
    /// At most this many, newest first.
    pub limit: usize,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS position (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS queue (
    event_id INTEGER NOT NULL,
    recipient TEXT NOT NULL,
    org_id TEXT NOT NULL,
    contact TEXT NOT NULL,
    interval TEXT NOT NULL,
    queued_ms INTEGER NOT NULL,
    notice_id INTEGER,
    PRIMARY KEY (event_id, recipient)
);
CREATE INDEX IF NOT EXISTS queue_waiting ON queue (recipient) WHERE notice_id IS NULL;
CREATE TABLE IF NOT EXISTS notices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    org_id TEXT NOT NULL,
    interval TEXT NOT NULL,
    subject TEXT NOT NULL,
    events TEXT NOT NULL,
    payload BLOB NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_ms INTEGER NOT NULL,
    sent_ms INTEGER,
    next_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS notices_pending ON notices (next_ms) WHERE status = 'pending';
";

/// The delivery table (`notices.db` in the data directory): queued (event, recipient) pairs, the
/// change-feed position, and every notice with its delivery status. See the module contract.
pub struct NoticeStore {
    conn: Connection,
    path: PathBuf,
}

impl NoticeStore {
    /// Opens (creating if needed) the delivery table at `path`, in WAL mode.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let conn = Connection::open(path).map_err(db_err(path))?;
        let s = Self {
            conn,
            path: path.to_path_buf(),
        };
        let e = db_err(path);
        s.conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
            .map_err(&e)?;
        s.conn
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(&e)?;
        s.conn
            .execute_batch("PRAGMA synchronous = FULL;")
            .map_err(&e)?;
        s.conn.execute_batch(SCHEMA).map_err(&e)?;
        Ok(s)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The change-feed position up to which events were routed (`None` on the first start).
    pub fn position(&self) -> Result<Option<u64>, Error> {
        self.conn
            .query_row("SELECT seq FROM position WHERE id = 1", [], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .map(|v| v.map(|v| v as u64))
            .map_err(db_err(&self.path))
    }

    /// Queues `items` (pairs already queued are ignored) and sets the position to `seq`, in one
    /// transaction; returns how many pairs were new.
    pub fn enqueue(&mut self, seq: u64, items: &[Queued], now_ms: i64) -> Result<usize, Error> {
        let e = db_err(&self.path);
        let tx = self.conn.transaction().map_err(&e)?;
        let mut new = 0;
        {
            let mut ins = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO queue (event_id, recipient, org_id, contact, interval, queued_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(&e)?;
            for q in items {
                let contact = serde_json::to_string(&q.contact).unwrap_or_default();
                new += ins
                    .execute(params![
                        q.event_id as i64,
                        q.recipient.key(),
                        q.org_id,
                        contact,
                        q.contact.policy.interval.as_str(),
                        now_ms
                    ])
                    .map_err(&e)?;
            }
        }
        tx.execute(
            "INSERT INTO position (id, seq) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET seq = ?1",
            params![seq as i64],
        )
        .map_err(&e)?;
        tx.commit().map_err(&e)?;
        Ok(new)
    }

    /// The queued pairs due for a notice at `now_ms`: each immediate pair alone; for a digest
    /// recipient, all its pairs once its oldest waiting pair has waited `digest_ms(interval)`.
    pub fn due(
        &self,
        now_ms: i64,
        digest_ms: impl Fn(Interval) -> i64,
    ) -> Result<Vec<DueGroup>, Error> {
        let e = db_err(&self.path);
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT event_id, recipient, org_id, contact, interval, queued_ms FROM queue
                 WHERE notice_id IS NULL ORDER BY recipient, queued_ms, event_id",
            )
            .map_err(&e)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })
            .map_err(&e)?;
        let mut out: Vec<DueGroup> = Vec::new();
        let mut digest: Option<(DueGroup, i64)> = None;
        let flush = |d: Option<(DueGroup, i64)>, out: &mut Vec<DueGroup>| {
            if let Some((g, oldest)) = d
                && oldest + digest_ms(g.contact.policy.interval) <= now_ms
            {
                out.push(g);
            }
        };
        for row in rows {
            let (event_id, key, org_id, contact, interval, queued) = row.map_err(&e)?;
            let Some(recipient) = parse_key(&key) else {
                continue;
            };
            let Ok(mut contact) = serde_json::from_str::<Contact>(&contact) else {
                continue;
            };
            if let Some(i) = Interval::parse(&interval) {
                contact.policy.interval = i;
            }
            if contact.policy.interval == Interval::Immediate {
                out.push(DueGroup {
                    recipient,
                    org_id,
                    contact,
                    event_ids: vec![event_id],
                });
                continue;
            }
            match &mut digest {
                Some((g, _)) if g.recipient == recipient => {
                    g.event_ids.push(event_id);
                    g.contact = contact;
                }
                _ => {
                    flush(digest.take(), &mut out);
                    digest = Some((
                        DueGroup {
                            recipient,
                            org_id,
                            contact,
                            event_ids: vec![event_id],
                        },
                        queued,
                    ));
                }
            }
        }
        flush(digest, &mut out);
        Ok(out)
    }

    /// Keeps a notice for `group` with its subject and payload, and assigns the group's pairs to
    /// it, in one transaction; returns its id.
    pub fn create_notice(
        &mut self,
        group: &DueGroup,
        subject: &str,
        payload: &[u8],
        now_ms: i64,
    ) -> Result<u64, Error> {
        let e = db_err(&self.path);
        let tx = self.conn.transaction().map_err(&e)?;
        tx.execute(
            "INSERT INTO notices (channel, recipient, org_id, interval, subject, events, payload, status, created_ms, next_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8)",
            params![
                group.recipient.channel.as_str(),
                group.recipient.address,
                group.org_id,
                group.contact.policy.interval.as_str(),
                subject,
                serde_json::to_string(&group.event_ids).unwrap_or_default(),
                payload,
                now_ms
            ],
        )
        .map_err(&e)?;
        let id = tx.last_insert_rowid();
        {
            let mut up = tx
                .prepare_cached(
                    "UPDATE queue SET notice_id = ?1 WHERE event_id = ?2 AND recipient = ?3 AND notice_id IS NULL",
                )
                .map_err(&e)?;
            let key = group.recipient.key();
            for ev in &group.event_ids {
                up.execute(params![id, *ev as i64, key]).map_err(&e)?;
            }
        }
        tx.commit().map_err(&e)?;
        Ok(id as u64)
    }

    /// Pending notices whose next attempt is due at `now_ms`, oldest first.
    pub fn outgoing(&self, now_ms: i64) -> Result<Vec<Outgoing>, Error> {
        let e = db_err(&self.path);
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLS}, payload FROM notices WHERE status = 'pending' AND next_ms <= ?1 ORDER BY id LIMIT 100"
            ))
            .map_err(&e)?;
        let rows = st
            .query_map(params![now_ms], |r| {
                Ok(Outgoing {
                    record: record(r)?,
                    payload: r.get(12)?,
                })
            })
            .map_err(&e)?;
        rows.collect::<Result<_, _>>().map_err(&e)
    }

    /// Records a successful delivery.
    pub fn mark_sent(&self, id: u64, now_ms: i64) -> Result<(), Error> {
        self.conn
            .execute(
                "UPDATE notices SET status = 'sent', attempts = attempts + 1, sent_ms = ?2 WHERE id = ?1",
                params![id as i64, now_ms],
            )
            .map(|_| ())
            .map_err(db_err(&self.path))
    }

    /// Records a failed attempt: tried again at `next_ms`, or given up (`None`).
    pub fn mark_failed(&self, id: u64, error: &str, next_ms: Option<i64>) -> Result<(), Error> {
        let (status, next) = match next_ms {
            Some(t) => ("pending", t),
            None => ("failed", i64::MAX),
        };
        self.conn
            .execute(
                "UPDATE notices SET status = ?2, attempts = attempts + 1, last_error = ?3, next_ms = ?4 WHERE id = ?1",
                params![id as i64, status, error, next],
            )
            .map(|_| ())
            .map_err(db_err(&self.path))
    }

    /// Kept notices matching `f`, newest first.
    pub fn list(&self, f: &NoticeFilter) -> Result<Vec<NoticeRecord>, Error> {
        let e = db_err(&self.path);
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {COLS} FROM notices
                 WHERE (?1 IS NULL OR status = ?1)
                   AND (?2 IS NULL OR instr(recipient, ?2) > 0)
                   AND (?3 IS NULL OR org_id = ?3)
                   AND (?4 IS NULL OR EXISTS (SELECT 1 FROM json_each(notices.events) WHERE value = ?4))
                 ORDER BY id DESC LIMIT ?5"
            ))
            .map_err(&e)?;
        let limit = if f.limit == 0 {
            100
        } else {
            f.limit.min(10_000)
        };
        let rows = st
            .query_map(
                params![
                    f.status.map(Status::as_str),
                    f.recipient,
                    f.org_id,
                    f.event_id.map(|v| v as i64),
                    limit as i64
                ],
                record,
            )
            .map_err(&e)?;
        rows.collect::<Result<_, _>>().map_err(&e)
    }
}

const COLS: &str = "id, channel, recipient, org_id, interval, subject, events, status, attempts, last_error, created_ms, sent_ms";

fn record(r: &rusqlite::Row<'_>) -> rusqlite::Result<NoticeRecord> {
    let events: String = r.get(6)?;
    let status: String = r.get(7)?;
    Ok(NoticeRecord {
        id: r.get::<_, i64>(0)? as u64,
        channel: Channel::parse(&r.get::<_, String>(1)?),
        recipient: r.get(2)?,
        org_id: r.get(3)?,
        interval: r.get(4)?,
        subject: r.get(5)?,
        events: serde_json::from_str(&events).unwrap_or_default(),
        status: Status::parse(&status).unwrap_or(Status::Pending),
        attempts: r.get::<_, i64>(8)? as u32,
        last_error: r.get(9)?,
        created_ms: r.get(10)?,
        sent_ms: r.get(11)?,
    })
}

fn parse_key(key: &str) -> Option<Recipient> {
    let (ch, addr) = key.split_once(':')?;
    let channel = match ch {
        "mail" => Channel::Mail,
        "webhook" => Channel::Webhook,
        _ => return None,
    };
    Some(Recipient {
        channel,
        address: addr.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(kind: &str, tax: &str, sev: Severity, src: &str) -> EventFacts {
        let s: IpAddr = src.parse().unwrap();
        EventFacts {
            kind: kind.into(),
            taxonomy: Some(tax.into()),
            severity: sev,
            sources: vec![s],
            addresses: vec![s, "198.51.100.7".parse().unwrap()],
        }
    }

    #[test]
    fn policy_filters_by_kind_taxonomy_severity_and_suppressions() {
        let ev = facts(
            "intrusion",
            "intrusion-attempts/brute-force",
            Severity::High,
            "203.0.113.9",
        );
        let mut p = Policy::default();
        assert!(wants(&p, &ev));
        p.kinds = vec!["ddos".into()];
        assert!(!wants(&p, &ev));
        p.kinds = vec!["brute-force".into()];
        assert!(wants(&p, &ev));
        p.kinds.clear();
        p.taxonomies = vec!["availability/ddos".into()];
        assert!(!wants(&p, &ev));
        p.taxonomies = vec!["intrusion-attempts".into()];
        assert!(wants(&p, &ev));
        p.min_severity = Severity::Critical;
        assert!(!wants(&p, &ev));
        p.min_severity = Severity::Low;
        p.suppress = vec![Suppression::Source("203.0.113.0/24".parse().unwrap())];
        assert!(!wants(&p, &ev));
        p.suppress = vec![Suppression::Address("198.51.100.7/32".parse().unwrap())];
        assert!(!wants(&p, &ev));
        p.suppress = vec![Suppression::Kind("intrusion".into())];
        assert!(!wants(&p, &ev));
    }

    #[test]
    fn pairs_are_queued_once_and_digests_wait_for_their_interval_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notices.db");
        let mut imm = Contact::abuse_mail("", "a@x.example");
        imm.policy.interval = Interval::Immediate;
        let daily = Contact::abuse_mail("", "d@x.example");
        let q = |ev: u64, c: &Contact| Queued {
            event_id: ev,
            recipient: Recipient::of(c)[0].clone(),
            org_id: "X".into(),
            contact: c.clone(),
        };
        {
            let mut s = NoticeStore::open(&path).unwrap();
            assert_eq!(s.position().unwrap(), None);
            assert_eq!(
                s.enqueue(5, &[q(1, &imm), q(1, &daily), q(2, &daily)], 1000)
                    .unwrap(),
                3
            );
        }
        let mut s = NoticeStore::open(&path).unwrap();
        assert_eq!(s.position().unwrap(), Some(5));
        assert_eq!(s.enqueue(6, &[q(1, &imm)], 1500).unwrap(), 0);
        let due = s.due(1500, |_| 1000).unwrap();
        assert_eq!(due.len(), 1);
        let id = s.create_notice(&due[0], "one", b"payload", 1500).unwrap();
        assert!(s.due(1600, |_| 1000).unwrap().is_empty());
        let due = s.due(2000, |_| 1000).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].event_ids, vec![1, 2]);
        let out = s.outgoing(1500).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].payload, b"payload");
        s.mark_failed(id, "refused", Some(3000)).unwrap();
        assert!(s.outgoing(2000).unwrap().is_empty());
        s.mark_sent(id, 3000).unwrap();
        let l = s.list(&NoticeFilter::default()).unwrap();
        assert_eq!(l[0].status, Status::Sent);
        assert_eq!(l[0].attempts, 2);
        assert_eq!(l[0].last_error.as_deref(), Some("refused"));
        let f = NoticeFilter {
            event_id: Some(1),
            ..NoticeFilter::default()
        };
        assert_eq!(s.list(&f).unwrap().len(), 1);
    }
}
