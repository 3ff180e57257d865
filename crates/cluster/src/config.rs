//! `[cluster]` of `pharos.toml`: the roles of this node and where the NATS JetStream cluster is.
//! Without the section `pharos run` is the single-node embedded default.

use std::path::PathBuf;

use pharos_model::config::{ConfigDuration, ConfigError};
use serde::{Deserialize, Serialize};

/// A role of a node; a node may have several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// UDP flow collectors (and syslog listeners): decode, publish flow batches by partition.
    Collector,
    /// Detection on the partitions this node owns.
    Analyser,
    /// Flows from the stream into ClickHouse.
    Archiver,
    /// The REST API and the console over the shared stores.
    Api,
}

impl Role {
    /// The name used in the configuration, metrics and status.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Collector => "collector",
            Role::Analyser => "analyser",
            Role::Archiver => "archiver",
            Role::Api => "api",
        }
    }
}

/// `[cluster]` settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// This node's roles (at least one).
    pub roles: Vec<Role>,
    /// This node's name, unique in the cluster (default: the host name).
    pub node: String,
    /// NATS server URLs (`nats://host:4222`); the client fails over between them.
    pub nats: Vec<String>,
    /// A NATS credentials file (`.creds`), if the servers require one.
    pub credentials_file: Option<PathBuf>,
    /// Partitions of the flow subjects (`pharos.flows.<0..partitions>`). Fixed for the life of
    /// the stream: changing it needs a new stream.
    pub partitions: u16,
    /// IPv4 destination prefix length that keeps a partition's victims together (default 24).
    pub prefix_v4: u8,
    /// IPv6 destination prefix length (default 48).
    pub prefix_v6: u8,
    /// Replicas of the streams and buckets (1 for a single NATS server, 3 for a 3-node cluster).
    pub replicas: usize,
    /// How long the flow stream keeps batches (a consumer down longer loses the oldest; the
    /// stream's limits are reported by `pharos cluster status`).
    pub stream_max_age: ConfigDuration,
    /// Bytes the flow stream may hold (0: no limit but max_age).
    pub stream_max_bytes: u64,
    /// Most flows in one published message.
    pub batch_flows: usize,
    /// Longest a flow waits in a collector before its partition's batch is published.
    pub linger: ConfigDuration,
    /// Publishes awaiting their acknowledgement per collector before it waits.
    pub max_in_flight: usize,
    /// How long a delivered batch may stay unacknowledged before it is redelivered.
    pub ack_wait: ConfigDuration,
    /// How long a partition stays with an analyser (or the flow stream with an archiver) that
    /// stopped pulling: the failover time.
    pub pin_timeout: ConfigDuration,
    /// This analyser's index among `analysers`: it prefers the partitions p with
    /// p % analysers == analyser_index, and stands by for the others.
    pub analyser_index: u16,
    /// How many analysers share the partitions (for the preference above).
    pub analysers: u16,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            roles: Vec::new(),
            node: std::env::var("HOSTNAME").unwrap_or_else(|_| "pharos".into()),
            nats: vec!["nats://127.0.0.1:4222".into()],
            credentials_file: None,
            partitions: 16,
            prefix_v4: 24,
            prefix_v6: 48,
            replicas: 1,
            stream_max_age: ConfigDuration::from_secs(3600),
            stream_max_bytes: 0,
            batch_flows: 8192,
            linger: ConfigDuration::from_millis(50),
            max_in_flight: 64,
            ack_wait: ConfigDuration::from_secs(30),
            pin_timeout: ConfigDuration::from_secs(5),
            analyser_index: 0,
            analysers: 1,
        }
    }
}

impl ClusterConfig {
    /// Whether this node has `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether this analyser prefers partition `p` (see `analyser_index`).
    pub fn prefers(&self, p: u16) -> bool {
        p % self.analysers.max(1) == self.analyser_index
    }

    /// Checks the keys; the error names the key, the value and what is expected.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key: &str, value: String, expected: &str| {
            Err(ConfigError::new("cluster", key, value, expected))
        };
        if self.roles.is_empty() {
            return err(
                "roles",
                "[]".into(),
                "at least one of \"collector\", \"analyser\", \"archiver\", \"api\" (or remove [cluster] for a single node)",
            );
        }
        if self.node.is_empty()
            || self.node.len() > 64
            || !self
                .node
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return err(
                "node",
                format!("{:?}", self.node),
                "1 to 64 letters, digits, '-' or '_' (it is a NATS key)",
            );
        }
        if self.nats.is_empty() {
            return err(
                "nats",
                "[]".into(),
                "at least one URL like \"nats://127.0.0.1:4222\"",
            );
        }
        for u in &self.nats {
            if !(u.starts_with("nats://") || u.starts_with("tls://")) {
                return err(
                    "nats",
                    format!("{u:?}"),
                    "URLs starting with nats:// or tls://",
                );
            }
        }
        if self.partitions == 0 || self.partitions > 1024 {
            return err("partitions", self.partitions.to_string(), "1 to 1024");
        }
        if self.prefix_v4 > 32 {
            return err("prefix_v4", self.prefix_v4.to_string(), "0 to 32");
        }
        if self.prefix_v6 > 128 {
            return err("prefix_v6", self.prefix_v6.to_string(), "0 to 128");
        }
        if !(1..=5).contains(&self.replicas) {
            return err(
                "replicas",
                self.replicas.to_string(),
                "1 to 5 (3 for a 3-node cluster)",
            );
        }
        if self.batch_flows == 0 || self.batch_flows > 65_536 {
            return err("batch_flows", self.batch_flows.to_string(), "1 to 65536");
        }
        if self.max_in_flight == 0 {
            return err("max_in_flight", "0".into(), "at least 1");
        }
        if self.pin_timeout.get() < std::time::Duration::from_secs(1) {
            return err(
                "pin_timeout",
                self.pin_timeout.to_string(),
                "at least \"1s\" (pulls are renewed at half of it)",
            );
        }
        if self.ack_wait.get() <= self.pin_timeout.get() {
            return err(
                "ack_wait",
                self.ack_wait.to_string(),
                "longer than pin_timeout, so that a batch in flight at a failover is redelivered to the new owner once",
            );
        }
        if self.analysers == 0 || self.analyser_index >= self.analysers {
            return err(
                "analyser_index",
                format!("{} of {}", self.analyser_index, self.analysers),
                "analysers >= 1 and analyser_index < analysers",
            );
        }
        Ok(())
    }
}
