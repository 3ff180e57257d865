//! Pharos message store: alarms, events, logs and counters snapshots, with their life-cycle state.
//!
//! Contract (every [`MessageStore`] implementation):
//! - [`MessageStore::insert_batch`] stores a batch atomically (all or nothing), assigns fresh ids
//!   that are never reused (also after retention deleted messages), writes them into
//!   `common.id`, and the batch is durable (fsynced) when it returns `Ok`.
//! - Events ([`pharos_model::Kind::is_event`]) start [`EventState::Open`]; logs and counters have
//!   no state and [`MessageStore::set_state`] refuses them with [`StoreError::NotAnEvent`].
//! - [`MessageStore::acknowledge`] records who acknowledged an event, when and why, once: a second
//!   acknowledgement changes nothing (no change-feed entry) and says so, so it is counted once.
//! - [`MessageStore::query`] returns pages newest `event_time` first, ties by id descending. Paging
//!   is by key (event time, id), so following `next_cursor` returns every message that existed when
//!   the first page was read exactly once, in order, also while messages are inserted or deleted
//!   between pages.
//! - Address filters match by family: an IPv4 prefix matches only IPv4 addresses and an IPv6 prefix
//!   only IPv6 addresses (an IPv4-mapped IPv6 address in a message is an IPv6 address), as
//!   [`ipnet::IpNet::contains`] decides.
//! - Change feed: every insert, in-place update and state change appends one entry with a sequence
//!   number (`seq`, growing, never reused) in the transaction of the change.
//!   [`MessageStore::changes`] returns entries after a seq in seq order with the message as it is
//!   when read (a later update shows already in an earlier entry's message); entries of messages
//!   deleted by retention are gone. [`MessageStore::watch_changes`] is told the newest seq after
//!   each commit, so async code waits for changes without polling.
//! - Reading a stored row that cannot be decoded returns [`StoreError::Corrupt`] naming its id; no
//!   method panics on stored data.

#![forbid(unsafe_code)]

mod config;
pub mod cursor;
pub mod inventory;
pub mod sqlite;
pub mod time;
pub mod writer;

use pharos_model::{EventState, Message, Severity, Timestamp};

pub use config::StoreConfig;
pub use sqlite::SqliteStore;

/// Default page size when [`MessageQuery::limit`] is 0.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest page size; larger limits are capped to it.
pub const MAX_LIMIT: usize = 10_000;

/// Errors of the stores.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No stored message has this id.
    #[error("message {0} not found")]
    NotFound(u64),
    /// The message is a log or counters snapshot, which has no life-cycle state.
    #[error("message {0} is not an event (logs and counters have no state)")]
    NotAnEvent(u64),
    /// A paging cursor that this store did not produce.
    #[error("bad cursor {0:?}: expected a next_cursor value returned by a previous page")]
    BadCursor(String),
    /// A query the store cannot run (e.g. an unknown kind name); says what was expected.
    #[error("bad query: {0}")]
    BadQuery(String),
    /// [`MessageStore::update`] was given a message without `common.id`.
    #[error("cannot update a message without common.id (only stored messages can be updated)")]
    MissingId,
    /// The database was written by a newer Pharos with a schema this one does not know.
    #[error(
        "message store schema version {found} is newer than the supported {supported}; upgrade Pharos"
    )]
    UnsupportedSchema {
        /// Version found in the database.
        found: i64,
        /// Newest version this build supports.
        supported: i64,
    },
    /// The SQLite engine failed (I/O, disk full, locked beyond the busy timeout, ...).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Another engine behind the trait (PostgreSQL) failed: connection, statement, server.
    #[error("{engine}: {message}")]
    Engine {
        /// The engine, e.g. `postgresql`.
        engine: &'static str,
        /// What failed, naming the step and the server's answer (never a password).
        message: String,
    },
    /// A stored row could not be decoded.
    #[error("stored message {id} is corrupt: {reason}")]
    Corrupt {
        /// Id of the row.
        id: u64,
        /// What could not be decoded.
        reason: String,
    },
}

/// Query over stored messages; every filter optional, all ANDed.
#[derive(Debug, Clone, Default)]
pub struct MessageQuery {
    /// Earliest event time, inclusive.
    pub from: Option<Timestamp>,
    /// Latest event time, exclusive.
    pub to: Option<Timestamp>,
    /// Any of these [`pharos_model::Kind::name`]s; empty means every kind.
    pub kinds: Vec<String>,
    /// Lowest severity.
    pub min_severity: Option<Severity>,
    /// Exact nsf-name.
    pub nsf: Option<String>,
    /// Source or destination address within this prefix (a host is /32 or /128).
    pub addr: Option<ipnet::IpNet>,
    /// Source address within this prefix.
    pub src: Option<ipnet::IpNet>,
    /// Destination address within this prefix.
    pub dst: Option<ipnet::IpNet>,
    /// Exact policy rule name.
    pub rule: Option<String>,
    /// Case-insensitive substring of the message text (`common.message`).
    pub text: Option<String>,
    /// Life-cycle state (matches events only).
    pub state: Option<EventState>,
    /// Only messages stored after the one with this id (ids grow with every insert), for
    /// following new messages whatever their event time.
    pub after_id: Option<u64>,
    /// Page size: 0 means [`DEFAULT_LIMIT`]; capped at [`MAX_LIMIT`].
    pub limit: usize,
    /// Opaque cursor from [`Page::next_cursor`]: continue after that page.
    pub cursor: Option<String>,
}

impl MessageQuery {
    /// The page size this query asks for, after defaulting and capping.
    pub fn effective_limit(&self) -> usize {
        match self.limit {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        }
    }
}

/// One stored message with its life-cycle state.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    /// The message; `common.id` is `Some`.
    pub message: Message,
    /// State of an event; `None` for logs and counters.
    pub state: Option<EventState>,
    /// When the state was last set with [`MessageStore::set_state`]; `None` if never.
    pub state_changed_at: Option<Timestamp>,
    /// Who acknowledged the event, when and why; `None` until [`MessageStore::acknowledge`].
    pub ack: Option<Acknowledgement>,
}

/// The record of an event's acknowledgement, kept as first written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledgement {
    /// Who acknowledged it (an API token's name); `None` for events acknowledged before actors
    /// were recorded (databases older than schema version 4).
    pub by: Option<String>,
    /// When it was acknowledged.
    pub at: Timestamp,
    /// The acknowledger's comment, if any.
    pub comment: Option<String>,
}

/// What [`MessageStore::acknowledge`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Acknowledged {
    /// The event as stored after the call.
    pub stored: StoredMessage,
    /// True when this call acknowledged it; false when it was acknowledged already and nothing
    /// changed (so callers count each acknowledgement once).
    pub first: bool,
}

/// What a change-feed entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// The message was stored.
    Created,
    /// A stored message was updated in place (e.g. a DDoS attack's rates or end).
    Updated,
    /// An event's life-cycle state was set (acknowledged, closed).
    State,
}

impl ChangeKind {
    /// Every change kind, in code order.
    pub const ALL: [ChangeKind; 3] = [ChangeKind::Created, ChangeKind::Updated, ChangeKind::State];

    /// The name in documents and filters: `created`, `updated`, `state`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::State => "state",
        }
    }

    /// The change kind named `s` (as [`ChangeKind::as_str`] spells it).
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// One entry of the change feed: its seq, what happened, and the message as stored now.
pub type FeedEntry = (u64, ChangeKind, StoredMessage);

/// A page of results, newest event_time first (ties by id descending).
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The messages of this page.
    pub items: Vec<StoredMessage>,
    /// Cursor for the next page; `None` when this page is the last.
    pub next_cursor: Option<String>,
}

/// The messages of `[from, to)` in `store`, newest first, read page by page as the iterator is
/// consumed; the first error ends it.
pub fn messages_in(
    store: &dyn MessageStore,
    from: Timestamp,
    to: Timestamp,
) -> impl Iterator<Item = Result<Message, StoreError>> + '_ {
    let mut q = Some(MessageQuery {
        from: Some(from),
        to: Some(to),
        limit: MAX_LIMIT,
        ..MessageQuery::default()
    });
    let mut page = Vec::new().into_iter();
    std::iter::from_fn(move || {
        loop {
            if let Some(m) = page.next() {
                return Some(Ok(m));
            }
            let query = q.take()?;
            match store.query(&query) {
                Ok(p) => {
                    q = p.next_cursor.map(|c| MessageQuery {
                        cursor: Some(c),
                        ..query
                    });
                    page = p
                        .items
                        .into_iter()
                        .map(|s| s.message)
                        .collect::<Vec<_>>()
                        .into_iter();
                }
                Err(e) => return Some(Err(e)),
            }
        }
    })
}

/// What a store of messages does; SQLite now, PostgreSQL later behind the same trait.
pub trait MessageStore: Send + Sync {
    /// Stores messages atomically, assigns their ids (written into common.id too), durable (fsynced) when it returns.
    fn insert_batch(&self, msgs: &mut [Message]) -> Result<Vec<u64>, StoreError>;
    /// Replaces the content of a stored message (an event updated in place, e.g. a DDoS attack that goes on); keeps id and state.
    fn update(&self, msg: &Message) -> Result<(), StoreError>;
    /// The stored message with this id, if any.
    fn get(&self, id: u64) -> Result<Option<StoredMessage>, StoreError>;
    /// One page of the messages matching `q`, newest first.
    fn query(&self, q: &MessageQuery) -> Result<Page, StoreError>;
    /// Sets the state of an event; NotFound / NotAnEvent otherwise. Returns the updated message.
    /// Setting [`EventState::Open`] also clears the acknowledgement record.
    fn set_state(&self, id: u64, state: EventState) -> Result<StoredMessage, StoreError>;
    /// Acknowledges an event as `by` with an optional comment; NotFound / NotAnEvent otherwise.
    /// Idempotent: an event acknowledged already keeps its original record and state, and the
    /// answer says `first: false`. A closed event keeps its state and gains the record.
    fn acknowledge(
        &self,
        id: u64,
        by: &str,
        comment: Option<&str>,
    ) -> Result<Acknowledged, StoreError>;
    /// Deletes messages whose event_time is before `t`; returns how many.
    fn delete_before(&self, t: Timestamp) -> Result<u64, StoreError>;
    /// Number of stored messages.
    fn count(&self) -> Result<u64, StoreError>;
    /// Counts per kind name, for metrics at start-up.
    fn count_by_kind(&self) -> Result<Vec<(String, u64)>, StoreError>;
    /// Up to `limit` change-feed entries with seq > `after_seq`, in seq order (entries of deleted messages skipped).
    fn changes(&self, after_seq: u64, limit: usize) -> Result<Vec<FeedEntry>, StoreError>;
    /// The newest seq ever assigned in the change feed (0 if none).
    fn last_change(&self) -> Result<u64, StoreError>;
    /// A receiver that holds the newest seq and is notified after every committed change.
    fn watch_changes(&self) -> tokio::sync::watch::Receiver<u64>;
}

/// Registers the descriptions (`# HELP`) of the message store's metrics.
pub fn describe_metrics() {
    use metrics::describe_counter;
    describe_counter!(
        "pharos_store_stored_total",
        "Messages written durably to the message store, by kind"
    );
    describe_counter!(
        "pharos_store_write_errors_total",
        "Store transactions that failed (nothing of them was stored)"
    );
}
