//! Pharos message store on PostgreSQL: [`PgStore`], the same [`MessageStore`] as
//! [`pharos_store::SqliteStore`] for deployments where several nodes share one store.
//!
//! The design choice a reader must know: **writers are ordered by one row lock.** Every writing
//! transaction first locks the single row of `pharos_store_head` (`SELECT ... FOR UPDATE`), takes
//! its message ids and change-feed seqs from that row, and commits before the next writer gets
//! the lock. So ids and seqs are assigned in commit order, without gaps, across every process
//! that writes the database: a reader that sees seq N sees every seq below N, and following the
//! change feed (SSE, subscriptions, notices) never skips a change that commits later with a lower
//! seq, as a `bigserial` would allow. Writes are serialised (one transaction at a time, batches
//! amortise the commit); reads run in parallel on a pool of connections.
//!
//! Contract, beyond [`MessageStore`]'s (tested against SQLite by the conformance suite in
//! `tests/`):
//! - Semantics equal to SQLite's: the message JSON is the same YANG-JSON text; times are indexed
//!   as ns since the epoch (clamped to years 1677..2262); paging cursors have the same form and
//!   meaning; the text filter is a substring after Rust's `str::to_lowercase` on both sides;
//!   address prefixes are `inet <<= cidr`, by family.
//! - Durable when a write returns: every connection runs with `synchronous_commit = on`.
//! - [`MessageStore::watch_changes`] and [`MessageStore::last_change`] never block (they are
//!   called from async tasks): the newest committed seq is kept in memory, raised after this
//!   store's own commits and by a listener thread that follows `LISTEN pharos_changes`, on which
//!   every writing transaction notifies its seq (delivered at commit, in commit order). Changes
//!   made by other nodes are seen within the notification delay; after a lost listening
//!   connection the listener reconnects and reads the head row, so nothing is missed.
//! - A dead connection (server restarted, cut by an administrator) is replaced: a write whose
//!   connection is found dead at `BEGIN`, or a read that failed on a dead pooled connection, runs
//!   again once on a new one. Other engine failures come back as [`StoreError::BadQuery`] with a
//!   message that starts with `postgresql:`, until `StoreError` has a variant for other engines.
//! - Every other method blocks on the network: call it from blocking threads
//!   (`tokio::task::spawn_blocking`), as for SQLite. [`PgStore::connect`] too.
//! - TLS: connections use `NoTls` (loopback and unix sockets); see docs/postgresql.md for adding
//!   it.

#![forbid(unsafe_code)]

mod config;
pub mod migrations;
mod store;

pub use config::PostgresConfig;
pub use pharos_store::{MessageStore, StoreError};
pub use store::{DELETE_CHUNK, NOTIFY_CHANNEL, PgStore};

/// Why the PostgreSQL store could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The connection string could not be read.
    #[error(
        "postgresql connection string {given:?} is invalid: {reason}; expected key=value pairs such as \"host=/run/postgresql dbname=pharos user=pharos\" or a URL such as \"postgresql://pharos@localhost:5432/pharos\""
    )]
    Config {
        /// The connection string, with any password replaced by `***`.
        given: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server could not be reached or refused the connection.
    #[error(
        "cannot connect to PostgreSQL at {target}: {reason}; is the server running, and does its pg_hba.conf let this user into this database?"
    )]
    Connect {
        /// Host, port, database and user (no password).
        target: String,
        /// What the client or the server said.
        reason: String,
    },
    /// A statement of the store's setup failed.
    #[error("postgresql: cannot {what}: {}", describe(source))]
    Sql {
        /// What the store was doing.
        what: &'static str,
        /// The client's error.
        source: postgres::Error,
    },
    /// A migration's SQL failed; the transaction was rolled back, the schema is unchanged.
    #[error(
        "postgresql: schema migration {version} ({name}) failed: {}; nothing was changed",
        describe(source)
    )]
    Migration {
        /// Version of the migration.
        version: i32,
        /// Its name.
        name: &'static str,
        /// The server's error.
        source: postgres::Error,
    },
    /// An applied migration differs from the one this build embeds.
    #[error(
        "postgresql: schema migration {version} ({name}) recorded in pharos_schema_migrations differs from this build's; migrations must never be edited once released (add a new one)"
    )]
    EditedMigration {
        /// Version of the migration.
        version: i32,
        /// Its name.
        name: &'static str,
    },
    /// The store refused the database (e.g. a newer schema).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PgError> for StoreError {
    fn from(e: PgError) -> Self {
        match e {
            PgError::Store(s) => s,
            other => store::engine_error(other.to_string()),
        }
    }
}

/// The client's error with its causes (the server's message, detail and hint; the I/O error),
/// which its `Display` alone leaves out.
pub(crate) fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{}: {}", db.severity(), db.message());
        if let Some(d) = db.detail() {
            s.push_str(&format!(" ({d})"));
        }
        if let Some(h) = db.hint() {
            s.push_str(&format!("; hint: {h}"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        s.push_str(&format!(": {c}"));
        cause = c.source();
    }
    s
}
