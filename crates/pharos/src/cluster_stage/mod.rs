//! The roles of `pharos run` in a cluster (`[cluster]`, docs/scale-out.md): the same stages as
//! the single node, joined through NATS JetStream ([`pharos_cluster`]) and the shared stores
//! (PostgreSQL for messages, ClickHouse for flows) instead of the embedded ones.
//!
//! ```text
//! collector: [flow] UDP -> decode -> flow stage --publish lane--> PHAROS_FLOWS pharos.flows.<p>
//!            exporter templates <-> KV pharos_templates
//! analyser:  pharos-analyse-<p> (pinned; preferred partitions first) -> flow stage -> detection
//!            -> events into [postgres] (an attack a dead analyser began is continued, not doubled)
//! archiver:  pharos-archive (pinned) -> ClickHouse, batch id = stream sequence (exactly once)
//! api:       the REST API and console over [postgres] and [clickhouse]; subscriptions, notices
//! every node: heartbeat in KV pharos_nodes (`pharos cluster status`), its /metrics
//! ```
//!
//! Contract:
//! - A node connects to NATS and creates or checks the streams, consumers and buckets before any
//!   stage starts ([`Node::start`]); a wrong `[cluster]` (another partition count than the
//!   stream's) stops start-up with the fix in the message.
//! - The stop order is the single node's: sources first (collectors flush and wait for the
//!   stream's acknowledgements, analysers stop pulling so their partitions move at once), then
//!   detection (attacks ended and stored), then the archiver (its last insert acknowledged),
//!   then the heartbeat key is deleted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use pharos_cluster::{Cluster, ClusterConfig, Role};

use crate::shutdown::Topology;

/// How long a clean stop waits for the stream to acknowledge what a collector still holds.
const PUBLISH_STOP_PATIENCE: Duration = Duration::from_secs(10);
/// Batches the analyser's flow stage may hold before the partition tasks wait.
const ANALYSE_QUEUE: usize = 256;

/// This node in the cluster: its connection and its heartbeat.
pub struct Node {
    /// The connection to the JetStream cluster.
    pub cluster: Cluster,
    /// What the heartbeat publishes (the partitions owned change while it runs).
    pub info: Arc<Mutex<pharos_cluster::nodes::NodeInfo>>,
}

impl Node {
    /// Connects, creates or checks the cluster's streams, consumers and buckets, and starts the
    /// heartbeat (stopped, its key deleted, last of all at the stop).
    pub async fn start(cfg: &ClusterConfig, topology: &mut Topology) -> anyhow::Result<Node> {
        let cluster = Cluster::connect(cfg).await.with_context(|| {
            format!(
                "[cluster]: cannot connect to NATS at {}",
                cfg.nats.join(", ")
            )
        })?;
        cluster
            .ensure()
            .await
            .context("[cluster]: cannot create or check the streams, consumers and buckets")?;
        let info = Arc::new(Mutex::new(pharos_cluster::nodes::NodeInfo::new(cfg)));
        let heartbeat = pharos_cluster::nodes::start_heartbeat(&cluster, info.clone());
        topology.add("cluster heartbeat (node key deleted)", async move {
            heartbeat.stop().await;
        });
        let roles: Vec<&str> = cfg.roles.iter().map(|r| r.as_str()).collect();
        tracing::info!(
            node = %cfg.node,
            roles = %roles.join(", "),
            partitions = cfg.partitions,
            nats = %cfg.nats.join(", "),
            "cluster: joined"
        );
        Ok(Node { cluster, info })
    }

    /// Sets the API address shown by `pharos cluster status`.
    pub fn set_api(&self, addr: std::net::SocketAddr) {
        if let Ok(mut i) = self.info.lock() {
            i.api = Some(addr.to_string());
        }
    }
}

/// The collector's flow-stage lane that publishes every batch to the flow stream (it stands
/// where the single node's archive lane stands: what its full queue refuses is counted as flows
/// not archived, `pharos_flow_store_dropped_total{reason="backlog"}`).
pub struct Publish(pub pharos_cluster::publish::FlowPublisher);

impl crate::flow_stage::Consumer for Publish {
    fn take(&mut self, b: &pharos_model::flow::FlowBatch) {
        self.0.push(b);
    }

    fn tick(&mut self) {
        self.0.tick();
    }

    fn finish(&mut self) {
        self.0.finish(PUBLISH_STOP_PATIENCE);
    }

    fn own_losses(&self) -> u64 {
        self.0.dropped()
    }
}

/// How recently another analyser must have updated an ongoing attack for this one to continue
/// its event (see `detect_stage`): three of its updates (`[detect.ddos] update_interval`, 10 s by
/// default), at least 2 minutes, which also covers the failover time.
pub fn adopt_window(ddos: &pharos_detect::DdosConfig) -> Duration {
    Duration::from_secs(u64::from(ddos.update_interval_s) * 3).max(Duration::from_secs(120))
}

/// The collector's lane to the flow stream and its template share.
pub fn publishing(node: &Node) -> crate::flow_stage::Publishing {
    crate::flow_stage::Publishing {
        lane: Box::new(Publish(pharos_cluster::publish::FlowPublisher::new(
            &node.cluster,
            tokio::runtime::Handle::current(),
        ))),
        templates: Some(pharos_wire::TemplateShare::new()),
    }
}

/// The analyser: pulls its partitions into a flow stage whose only consumer is detection.
pub struct Analyser {
    partitions: pharos_cluster::consume::Partitions,
    stage: crate::flow_stage::FlowStage,
    detect: std::thread::JoinHandle<()>,
}

impl Analyser {
    /// Starts pulling the partitions (preferred ones at once, the others as standby) into the
    /// detection stage `detect`.
    pub fn start(
        node: &Node,
        cfg: &ClusterConfig,
        detect: crate::detect_stage::DetectStage,
    ) -> anyhow::Result<Analyser> {
        let (tx, rx) = std::sync::mpsc::sync_channel(ANALYSE_QUEUE);
        let stage = crate::flow_stage::FlowStage::start(
            rx,
            Vec::new(),
            Some(detect.tx),
            crate::loss_report::LossReport::new(None),
        )
        .context("starting the analyser's flow stage")?;
        let prefer = cfg.clone();
        let partitions = pharos_cluster::consume::start_partitions(
            &node.cluster,
            move |p| prefer.prefers(p),
            tx,
            standby_delay(cfg),
        );
        Ok(Analyser {
            partitions,
            stage,
            detect: detect.thread,
        })
    }

    /// The partitions this analyser owns now.
    pub fn owned(&self) -> Vec<u16> {
        self.partitions.owned()
    }

    /// Stops pulling (the partitions move to a standby analyser), lets detection end and
    /// store its attacks.
    pub async fn stop(self) {
        self.partitions.stop().await;
        let (stage, detect) = (self.stage, self.detect);
        let _ = tokio::task::spawn_blocking(move || {
            stage.join();
            let _ = detect.join();
        })
        .await;
    }
}

/// How long an analyser waits before it stands by for the partitions it does not prefer: long
/// enough for every analyser started with it (on a loaded machine, a few seconds apart) to pull
/// its own first. Only a partition whose preferred analyser never came waits this long; after
/// that, standing by (taking over when nobody pulls) follows `pin_timeout`.
fn standby_delay(cfg: &ClusterConfig) -> Duration {
    (cfg.pin_timeout.get() * 2).max(Duration::from_secs(10))
}

/// Starts the analyser role (`detect` built by the caller with the cluster's adopt window) and
/// publishes its partitions in the heartbeat.
pub fn start_analyser(
    node: &Node,
    cfg: &ClusterConfig,
    detect: crate::detect_stage::DetectStage,
    topology: &mut Topology,
) -> anyhow::Result<()> {
    let analyser = Arc::new(tokio::sync::Mutex::new(Some(Analyser::start(
        node, cfg, detect,
    )?)));
    {
        let (a, info) = (analyser.clone(), node.info.clone());
        topology.spawn("cluster partitions (heartbeat)", async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                let owned = match a.lock().await.as_ref() {
                    Some(a) => a.owned(),
                    None => return,
                };
                if let Ok(mut i) = info.lock() {
                    i.partitions = owned;
                }
            }
        });
    }
    topology.add(
        "analyser (partitions released, attacks stored)",
        async move {
            if let Some(a) = analyser.lock().await.take() {
                a.stop().await;
            }
        },
    );
    Ok(())
}

/// The archiver role: migrates the ClickHouse schema, then moves flows from the stream into it;
/// drops expired day partitions every hour.
pub async fn start_archiver(
    node: &Node,
    cfg: &ClusterConfig,
    ch: &pharos_clickhouse::ClickHouseConfig,
    topology: &mut Topology,
) -> anyhow::Result<()> {
    let archive = pharos_clickhouse::Archive::new(
        ch.client()
            .context("[clickhouse]: cannot build the client")?,
    );
    let applied = archive
        .migrate()
        .await
        .with_context(|| format!("[clickhouse]: cannot migrate the schema at {}", ch.url))?;
    if !applied.is_empty() {
        tracing::info!(versions = ?applied, "ClickHouse: schema migrated");
    }
    let consumer = node
        .cluster
        .archive_consumer()
        .await
        .context("[cluster]: cannot open the archive consumer")?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let run = pharos_cluster::archive::run_archiver(
        consumer,
        archive.clone(),
        pharos_cluster::archive::ArchiverOptions::from_config(cfg),
        stop_rx,
    );
    let task = tokio::spawn(async move {
        match run.await {
            Ok(stats) => tracing::info!(?stats, "archiver stopped"),
            Err(e) => tracing::error!(error = %e, "archiver failed; flows are no longer archived"),
        }
    });
    topology.add("archiver (last insert acknowledged)", async move {
        let _ = stop_tx.send(true);
        let _ = task.await;
    });
    let retention = ch.retention;
    topology.spawn("ClickHouse retention", async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            match archive
                .drop_expired(&retention, pharos_model::clock::now_ms())
                .await
            {
                Ok(d) => tracing::debug!(dropped = ?d, "ClickHouse retention pass"),
                Err(e) => {
                    tracing::warn!(error = %e, "ClickHouse retention pass failed; will retry")
                }
            }
        }
    });
    Ok(())
}

/// What `[cluster]` needs of the rest of the configuration, checked before anything starts.
pub fn check(cfg: &crate::config::Config) -> anyhow::Result<()> {
    let Some(c) = &cfg.cluster else {
        return Ok(());
    };
    let needs_pg = c.roles.iter().any(|r| *r != Role::Archiver);
    if needs_pg && cfg.postgres.is_none() {
        anyhow::bail!(
            "config error: [cluster] roles {:?} keep messages in the shared store: add a [postgres] section (docs/scale-out.md)",
            c.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>()
        );
    }
    if c.has(Role::Archiver) && cfg.clickhouse.is_none() {
        anyhow::bail!(
            "config error: the archiver role writes flows to ClickHouse: add a [clickhouse] section (docs/clickhouse.md)"
        );
    }
    if c.has(Role::Analyser) && cfg.detect.is_none() {
        anyhow::bail!(
            "config error: the analyser role runs detection: add a [detect] section (docs/detect.md)"
        );
    }
    Ok(())
}
