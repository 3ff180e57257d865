//! Pharos flow archive in ClickHouse (issue 20, scale-out): the schema and its versioned
//! migrations ([`migrate`]), retention by day partitions per tier ([`drop_expired`]),
//! exactly-once RowBinary inserts of [`FlowBatch`](pharos_model::flow::FlowBatch)es
//! ([`Archive::insert`]), and the nfdump filter language with `top`, `series` and listings
//! answered from ClickHouse in the Parquet engine's result types ([`Archive::top`]).
//!
//! The one design choice to know: everything speaks the HTTP interface with SQL that runs on
//! Debian's ClickHouse 18.16 as well as on current releases, so no newer type or clause (no
//! `LowCardinality`, `TTL`, `IPv6`, `Nullable`) and no client library that checks server
//! versions. docs/clickhouse.md describes the tables, the migrations and exactly-once.

#![forbid(unsafe_code)]

mod client;
mod insert;
mod query;
mod schema;
mod sql;

use std::path::PathBuf;
use std::time::Duration;

pub use client::Client;
pub use insert::{Inserted, MAX_BATCH_ROWS, encode_rows};
pub use query::selection_sql;
pub use schema::{
    Dropped, MIGRATIONS, MIGRATIONS_TABLE, Migration, Retention, Tier, applied_steps,
    current_version, latest_version, partitions, yyyymmdd,
};
pub use sql::{CompileError, compile};

/// Errors of the ClickHouse archive. Each says what failed and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is wrong.
    #[error("{0}")]
    Config(String),
    /// The server could not be reached or the answer could not be read.
    #[error(
        "ClickHouse at {url} cannot be reached: {message}; is the server running and is [clickhouse] url right?"
    )]
    Http {
        /// The server's URL.
        url: String,
        /// What the HTTP client said.
        message: String,
    },
    /// The server refused a statement.
    #[error("ClickHouse refused the statement (HTTP {status}): {message}; statement: {sql}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
        /// The start of the statement.
        sql: String,
    },
    /// An answer did not have the expected layout (a server of another schema version?).
    #[error(
        "cannot read the answer of ClickHouse: {0}; run `migrate` and check the server version"
    )]
    Decode(String),
    /// A migration step failed; the steps before it are recorded and a rerun resumes here.
    #[error("schema migration {version} step {step} failed: {source}")]
    Migration {
        /// The version.
        version: u32,
        /// The step (0-based) within the version.
        step: u32,
        /// Why.
        source: Box<Error>,
    },
    /// An earlier attempt left part of a batch in `flows` (see docs/clickhouse.md).
    #[error(
        "batch {batch_id} is partly stored ({found} of {rows} flows) after an interrupted \
         insert: delete it with `ALTER TABLE flows DELETE WHERE batch_id = {batch_id}` and wait \
         for the mutation, then retry (the rollups keep the partial counts)"
    )]
    PartialBatch {
        /// The batch.
        batch_id: u64,
        /// Flows of it found.
        found: u64,
        /// Flows it has.
        rows: u64,
    },
    /// The filter cannot run against ClickHouse.
    #[error(transparent)]
    Filter(#[from] CompileError),
    /// Bad query arguments (the same errors as the Parquet engine's).
    #[error(transparent)]
    Query(#[from] pharos_flows::query::QueryError),
}

/// The `[clickhouse]` section: where the archive is and how long each tier keeps flows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// The HTTP interface (default `http://127.0.0.1:8123`).
    pub url: String,
    /// The database (default `pharos`), created by [`migrate`] when missing.
    pub database: String,
    /// The user (default `default`).
    pub user: String,
    /// A file holding the password (default: none, an empty password).
    pub password_file: Option<PathBuf>,
    /// Seconds one request may take (default 60; inserts of large batches need some).
    pub timeout_secs: u64,
    /// Days kept per tier.
    pub retention: Retention,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8123".into(),
            database: "pharos".into(),
            user: "default".into(),
            password_file: None,
            timeout_secs: 60,
            retention: Retention::default(),
        }
    }
}

impl ClickHouseConfig {
    /// Checks every key; the error names the key, the value and what was expected.
    pub fn validate(&self) -> Result<(), Error> {
        if self.timeout_secs == 0 {
            return Err(Error::Config(
                "[clickhouse] timeout_secs = 0: expected a number of seconds, at least 1".into(),
            ));
        }
        let r = &self.retention;
        if r.raw_days > 0
            && [r.minute_days, r.five_minutes_days, r.hour_days]
                .iter()
                .any(|d| *d > 0 && *d < r.raw_days)
        {
            tracing::warn!(
                "[clickhouse.retention]: a rollup keeps fewer days than the raw flows; it is \
                 usually the other way round"
            );
        }
        Ok(())
    }

    /// A client for this configuration (reads the password file).
    pub fn client(&self) -> Result<Client, Error> {
        self.validate()?;
        let password = match &self.password_file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .map_err(|e| {
                        Error::Config(format!(
                            "[clickhouse] password_file = {:?}: cannot read it: {e}",
                            p.display()
                        ))
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
            ),
            None => None,
        };
        Client::new(
            &self.url,
            &self.database,
            &self.user,
            password,
            Duration::from_secs(self.timeout_secs),
        )
    }
}

/// The flow archive in one ClickHouse database.
#[derive(Debug, Clone)]
pub struct Archive {
    client: Client,
}

impl Archive {
    /// The archive reached through `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The client (for statements of one's own).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Applies every missing migration ([`migrate`]).
    pub async fn migrate(&self) -> Result<Vec<u32>, Error> {
        schema::migrate(&self.client).await
    }

    /// Drops the day partitions past each tier's retention ([`drop_expired`]).
    pub async fn drop_expired(
        &self,
        retention: &Retention,
        now_ms: u64,
    ) -> Result<Vec<Dropped>, Error> {
        schema::drop_expired(&self.client, retention, now_ms).await
    }
}

pub use schema::{drop_expired, migrate, migrate_to};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_name_the_key_and_what_was_expected() {
        let t = Duration::from_secs(1);
        let e = Client::new("http://127.0.0.1:8123", "pharos; DROP", "default", None, t)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[clickhouse] database") && e.contains("letters"),
            "{e}"
        );
        let e = Client::new("127.0.0.1:8123", "pharos", "default", None, t)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[clickhouse] url") && e.contains("http://"),
            "{e}"
        );
        let e = Client::new("ftp://127.0.0.1", "pharos", "default", None, t)
            .unwrap_err()
            .to_string();
        assert!(e.contains("http:// or https://"), "{e}");
        let cfg = ClickHouseConfig {
            timeout_secs: 0,
            ..ClickHouseConfig::default()
        };
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("timeout_secs")
        );
        let cfg = ClickHouseConfig {
            password_file: Some("/nonexistent/pharos-ch-password".into()),
            ..ClickHouseConfig::default()
        };
        let e = cfg.client().unwrap_err().to_string();
        assert!(
            e.contains("password_file") && e.contains("cannot read"),
            "{e}"
        );
        assert!(ClickHouseConfig::default().client().is_ok());
    }

    #[test]
    fn the_config_section_reads_from_toml_with_defaults() {
        let cfg: ClickHouseConfig =
            toml::from_str("url = \"http://ch:8123\"\n[retention]\nraw_days = 3\n").unwrap();
        assert_eq!(cfg.url, "http://ch:8123");
        assert_eq!(cfg.retention.raw_days, 3);
        assert_eq!(cfg.retention.hour_days, 730);
        assert!(toml::from_str::<ClickHouseConfig>("urll = \"x\"").is_err());
    }
}
