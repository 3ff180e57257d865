//! The connection to the NATS JetStream cluster, and the streams, consumers and buckets Pharos
//! keeps there ([`Cluster::ensure`]).
//!
//! - Stream [`FLOW_STREAM`] over `pharos.flows.*`, one subject per partition, with the partition
//!   count in its metadata ([`PARTITIONS_METADATA`]) so that a node configured with another count
//!   is refused instead of silently splitting victims differently.
//! - Durable pull consumers `pharos-analyse-<p>` (group [`ANALYSER_GROUP`]) and
//!   [`ARCHIVE_CONSUMER`] (group [`ARCHIVER_GROUP`]), both with the pinned-client priority policy:
//!   the server delivers a consumer's messages to one puller at a time and moves the pin to a
//!   standby puller when the pinned one stops pulling for `pin_timeout`.
//! - Key-value buckets [`TEMPLATE_BUCKET`] (exporter templates) and [`NODE_BUCKET`] (heartbeats,
//!   entries expire after [`NODE_TTL`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, kv, stream};

use crate::config::ClusterConfig;

/// The stream of flow batches.
pub const FLOW_STREAM: &str = "PHAROS_FLOWS";
/// Subjects of the flow stream: `pharos.flows.<partition>`.
pub const FLOW_SUBJECTS: &str = "pharos.flows.*";
/// The key of the flow stream's metadata that records its partition count.
pub const PARTITIONS_METADATA: &str = "pharos_partitions";
/// The bucket of exporter templates shared by the collectors.
pub const TEMPLATE_BUCKET: &str = "pharos_templates";
/// The bucket of node heartbeats.
pub const NODE_BUCKET: &str = "pharos_nodes";
/// How long an entry of the template bucket lives without being written again.
pub const TEMPLATE_TTL: Duration = Duration::from_secs(3600);
/// How long a node's heartbeat stays in [`NODE_BUCKET`] without being renewed.
pub const NODE_TTL: Duration = Duration::from_secs(10);
/// The priority group the analysers pull a partition's consumer in.
pub const ANALYSER_GROUP: &str = "analysers";
/// The priority group the archivers pull [`ARCHIVE_CONSUMER`] in.
pub const ARCHIVER_GROUP: &str = "archivers";
/// The durable consumer of every partition for the archivers.
pub const ARCHIVE_CONSUMER: &str = "pharos-archive";
/// How long [`Cluster::connect`] keeps trying the servers before it gives up.
pub const CONNECT_PATIENCE: Duration = Duration::from_secs(10);
/// Deduplication window of the flow stream: a publish retried within it with the same
/// `Nats-Msg-Id` is stored once.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// Timeout of a JetStream API request and of a publish acknowledgement.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The name of partition `p`'s analyser consumer: `pharos-analyse-<p>`.
pub fn analyse_consumer_name(p: u16) -> String {
    format!("pharos-analyse-{p}")
}

/// Errors of the cluster transport. Each message names the servers and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No server of `[cluster] nats` accepted a connection within [`CONNECT_PATIENCE`].
    #[error(
        "cannot connect to NATS at {urls} within {secs} s: {source}; start nats-server with JetStream (`nats-server -js`) there, or fix [cluster] nats"
    )]
    Connect {
        /// The configured URLs.
        urls: String,
        /// Seconds tried.
        secs: u64,
        /// The client's last error.
        #[source]
        source: async_nats::Error,
    },
    /// The credentials file could not be read.
    #[error(
        "cannot read the NATS credentials file {path}: {source}; fix [cluster] credentials_file"
    )]
    Credentials {
        /// The configured path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A JetStream request failed.
    #[error(
        "JetStream request `{what}` failed on {urls}: {source}; check that the servers run with JetStream enabled (`-js`) and that a majority of them is up (a cluster needs a meta leader)"
    )]
    JetStream {
        /// What was asked, e.g. `create stream PHAROS_FLOWS`.
        what: String,
        /// The configured URLs.
        urls: String,
        /// The server's or the client's error.
        #[source]
        source: async_nats::Error,
    },
    /// The flow stream exists with another partition count.
    #[error(
        "stream {FLOW_STREAM} on {urls} has {have} partitions but [cluster] partitions = {want}: set partitions = {have} on every node, or delete the stream (`nats stream rm {FLOW_STREAM}`; its unconsumed flows are lost) to repartition"
    )]
    Partitions {
        /// The configured URLs.
        urls: String,
        /// Partitions recorded in the stream.
        have: String,
        /// Partitions configured.
        want: u16,
    },
    /// A partition number outside `0..partitions`.
    #[error("partition {partition} does not exist: [cluster] partitions = {partitions}")]
    NoSuchPartition {
        /// The partition asked for.
        partition: u16,
        /// Partitions configured.
        partitions: u16,
    },
}

/// The connection to the NATS JetStream cluster: a client (it reconnects and fails over between
/// the servers on its own), its JetStream context and the `[cluster]` configuration. Cheap to
/// clone.
#[derive(Clone)]
pub struct Cluster {
    client: async_nats::Client,
    js: jetstream::Context,
    cfg: Arc<ClusterConfig>,
    urls: Arc<str>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("urls", &self.urls)
            .field("node", &self.cfg.node)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Connects to the servers of `cfg.nats` (any of them; the client learns the others),
    /// retrying for up to [`CONNECT_PATIENCE`] so that a node started with its servers comes up.
    /// Once connected the client reconnects forever.
    pub async fn connect(cfg: &ClusterConfig) -> Result<Self, ClusterError> {
        let urls = cfg.nats.join(",");
        let mut addrs = Vec::with_capacity(cfg.nats.len());
        for u in &cfg.nats {
            let addr: async_nats::ServerAddr = u.parse().map_err(|e| ClusterError::Connect {
                urls: urls.clone(),
                secs: 0,
                source: Box::new(e),
            })?;
            addrs.push(addr);
        }
        let start = Instant::now();
        let mut delay = Duration::from_millis(100);
        let client = loop {
            let mut opts = async_nats::ConnectOptions::new()
                .name(format!("pharos-{}", cfg.node))
                .connection_timeout(Duration::from_secs(2))
                .request_timeout(Some(REQUEST_TIMEOUT))
                .max_reconnects(None);
            if let Some(path) = &cfg.credentials_file {
                opts = opts.credentials_file(path).await.map_err(|source| {
                    ClusterError::Credentials {
                        path: path.display().to_string(),
                        source,
                    }
                })?;
            }
            match opts.connect(addrs.as_slice()).await {
                Ok(c) => break c,
                Err(e) if start.elapsed() + delay < CONNECT_PATIENCE => {
                    tracing::debug!(urls = %urls, error = %e, "NATS not reachable yet, retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
                Err(e) => {
                    return Err(ClusterError::Connect {
                        urls,
                        secs: start.elapsed().as_secs().max(1),
                        source: Box::new(e),
                    });
                }
            }
        };
        let js = jetstream::ContextBuilder::new()
            .timeout(REQUEST_TIMEOUT)
            .build(client.clone());
        Ok(Self {
            client,
            js,
            cfg: Arc::new(cfg.clone()),
            urls: urls.into(),
        })
    }

    /// The JetStream context.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// The NATS client.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The `[cluster]` configuration this connection was made with.
    pub fn config(&self) -> &ClusterConfig {
        &self.cfg
    }

    /// The configured server URLs, comma separated (for messages).
    pub fn urls(&self) -> &str {
        &self.urls
    }

    fn js_err(&self, what: impl Into<String>, e: impl Into<async_nats::Error>) -> ClusterError {
        ClusterError::JetStream {
            what: what.into(),
            urls: self.urls.to_string(),
            source: e.into(),
        }
    }

    /// The flow stream's configuration for this node's `[cluster]`.
    pub fn flow_stream_config(&self) -> stream::Config {
        let c = &self.cfg;
        stream::Config {
            name: FLOW_STREAM.into(),
            description: Some("Pharos flow batches by destination partition".into()),
            subjects: vec![FLOW_SUBJECTS.into()],
            num_replicas: c.replicas,
            max_age: c.stream_max_age.get(),
            max_bytes: if c.stream_max_bytes == 0 {
                -1
            } else {
                i64::try_from(c.stream_max_bytes).unwrap_or(i64::MAX)
            },
            discard: stream::DiscardPolicy::Old,
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            metadata: HashMap::from([(PARTITIONS_METADATA.into(), c.partitions.to_string())]),
            ..Default::default()
        }
    }

    fn consumer_config(&self, name: String, filter: String, group: &str) -> consumer::pull::Config {
        consumer::pull::Config {
            durable_name: Some(name.clone()),
            name: Some(name),
            filter_subject: filter,
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: self.cfg.ack_wait.get(),
            deliver_policy: consumer::DeliverPolicy::All,
            max_deliver: -1,
            priority_policy: consumer::PriorityPolicy::PinnedClient,
            priority_groups: vec![group.into()],
            priority_timeout: self.cfg.pin_timeout.get(),
            ..Default::default()
        }
    }

    /// The configuration of partition `p`'s analyser consumer.
    pub fn analyse_consumer_config(&self, p: u16) -> consumer::pull::Config {
        self.consumer_config(
            analyse_consumer_name(p),
            format!("pharos.flows.{p}"),
            ANALYSER_GROUP,
        )
    }

    /// The configuration of the archivers' consumer.
    pub fn archive_consumer_config(&self) -> consumer::pull::Config {
        self.consumer_config(
            ARCHIVE_CONSUMER.into(),
            "pharos.flows.>".into(),
            ARCHIVER_GROUP,
        )
    }

    /// Creates the flow stream, or checks its partitions and updates its limits.
    async fn ensure_stream(&self) -> Result<(), ClusterError> {
        let want = self.flow_stream_config();
        match self.js.get_stream(FLOW_STREAM).await {
            Ok(mut s) => {
                let info = s
                    .info()
                    .await
                    .map_err(|e| self.js_err(format!("info of stream {FLOW_STREAM}"), e))?;
                let have = info.config.metadata.get(PARTITIONS_METADATA).cloned();
                if have.as_deref() != Some(self.cfg.partitions.to_string().as_str()) {
                    return Err(ClusterError::Partitions {
                        urls: self.urls.to_string(),
                        have: have.unwrap_or_else(|| "unknown (no metadata)".into()),
                        want: self.cfg.partitions,
                    });
                }
                let same = info.config.subjects == want.subjects
                    && info.config.num_replicas == want.num_replicas
                    && info.config.max_age == want.max_age
                    && info.config.max_bytes == want.max_bytes
                    && info.config.duplicate_window == want.duplicate_window
                    && info.config.discard == want.discard;
                if !same {
                    self.js
                        .update_stream(want)
                        .await
                        .map_err(|e| self.js_err(format!("update stream {FLOW_STREAM}"), e))?;
                }
            }
            Err(e)
                if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(j)
                    if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
            {
                self.js
                    .create_stream(want)
                    .await
                    .map_err(|e| self.js_err(format!("create stream {FLOW_STREAM}"), e))?;
            }
            Err(e) => return Err(self.js_err(format!("get stream {FLOW_STREAM}"), e)),
        }
        Ok(())
    }

    /// Creates or updates (idempotently) the flow stream, the consumers of every partition and
    /// of the archivers, and the buckets. Refuses a flow stream made for another partition count.
    pub async fn ensure(&self) -> Result<(), ClusterError> {
        // Nodes starting together race to create the stream: the loser finds it made.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.ensure_stream().await {
                Err(ClusterError::JetStream { .. }) if attempt < 3 => {
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                r => break r?,
            }
        }
        let stream = self
            .js
            .get_stream_no_info(FLOW_STREAM)
            .await
            .map_err(|e| self.js_err(format!("get stream {FLOW_STREAM}"), e))?;
        for p in 0..self.cfg.partitions {
            let name = analyse_consumer_name(p);
            stream
                .create_consumer(self.analyse_consumer_config(p))
                .await
                .map_err(|e| self.js_err(format!("create consumer {name}"), e))?;
        }
        stream
            .create_consumer(self.archive_consumer_config())
            .await
            .map_err(|e| self.js_err(format!("create consumer {ARCHIVE_CONSUMER}"), e))?;
        self.js
            .create_or_update_key_value(kv::Config {
                bucket: TEMPLATE_BUCKET.into(),
                description: "Pharos exporter templates and sampling tables".into(),
                history: 1,
                // Live entries are written again every 10 minutes (pharos_wire::share): those
                // of exporters that are gone leave after twice the default template timeout.
                max_age: TEMPLATE_TTL,
                num_replicas: self.cfg.replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| self.js_err(format!("create bucket {TEMPLATE_BUCKET}"), e))?;
        self.js
            .create_or_update_key_value(kv::Config {
                bucket: NODE_BUCKET.into(),
                description: "Pharos node heartbeats".into(),
                history: 1,
                max_age: NODE_TTL,
                num_replicas: self.cfg.replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| self.js_err(format!("create bucket {NODE_BUCKET}"), e))?;
        Ok(())
    }

    /// Partition `p`'s analyser consumer (made by [`Cluster::ensure`]).
    pub async fn analyse_consumer(&self, p: u16) -> Result<consumer::PullConsumer, ClusterError> {
        if p >= self.cfg.partitions {
            return Err(ClusterError::NoSuchPartition {
                partition: p,
                partitions: self.cfg.partitions,
            });
        }
        let name = analyse_consumer_name(p);
        self.js
            .get_consumer_from_stream(&name, FLOW_STREAM)
            .await
            .map_err(|e| self.js_err(format!("get consumer {name}"), e))
    }

    /// The archivers' consumer (made by [`Cluster::ensure`]).
    pub async fn archive_consumer(&self) -> Result<consumer::PullConsumer, ClusterError> {
        self.js
            .get_consumer_from_stream(ARCHIVE_CONSUMER, FLOW_STREAM)
            .await
            .map_err(|e| self.js_err(format!("get consumer {ARCHIVE_CONSUMER}"), e))
    }

    /// The template bucket (made by [`Cluster::ensure`]).
    pub async fn template_bucket(&self) -> Result<kv::Store, ClusterError> {
        self.js
            .get_key_value(TEMPLATE_BUCKET)
            .await
            .map_err(|e| self.js_err(format!("get bucket {TEMPLATE_BUCKET}"), e))
    }

    /// The node bucket (made by [`Cluster::ensure`]).
    pub async fn node_bucket(&self) -> Result<kv::Store, ClusterError> {
        self.js
            .get_key_value(NODE_BUCKET)
            .await
            .map_err(|e| self.js_err(format!("get bucket {NODE_BUCKET}"), e))
    }

    /// Wraps a JetStream error for `what` with this cluster's URLs (for the other modules).
    pub(crate) fn error(
        &self,
        what: impl Into<String>,
        e: impl Into<async_nats::Error>,
    ) -> ClusterError {
        self.js_err(what, e)
    }
}
