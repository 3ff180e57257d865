//! The node registry: every node puts a [`NodeInfo`] under its name in the bucket
//! [`NODE_BUCKET`] every [`HEARTBEAT_PERIOD`]; entries not renewed expire after
//! [`NODE_TTL`](crate::connect::NODE_TTL), so the bucket lists the live nodes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{ClusterConfig, Role};
use crate::connect::{Cluster, ClusterError, NODE_BUCKET};

/// How often a node renews its entry.
pub const HEARTBEAT_PERIOD: Duration = Duration::from_secs(2);

/// What a node says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's name (`[cluster] node`), also its key in the bucket.
    pub node: String,
    /// Its roles.
    pub roles: Vec<Role>,
    /// The Pharos version it runs.
    pub version: String,
    /// When it started, Unix ms.
    pub started_ms: u64,
    /// When this entry was put, Unix ms.
    pub heartbeat_ms: u64,
    /// The partitions its analyser owns (empty for other roles).
    pub partitions: Vec<u16>,
    /// The URL of its API, if it serves one.
    pub api: Option<String>,
}

impl NodeInfo {
    /// This node's entry as of now, from `[cluster]` (no partitions, no API yet).
    pub fn new(cfg: &ClusterConfig) -> Self {
        let now = now_ms();
        Self {
            node: cfg.node.clone(),
            roles: cfg.roles.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_ms: now,
            heartbeat_ms: now,
            partitions: Vec::new(),
            api: None,
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The heartbeat task; [`Heartbeat::stop`] removes the node's entry.
pub struct Heartbeat {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    cluster: Cluster,
    node: String,
}

/// Starts putting `info` (its `heartbeat_ms` set at each put; the caller may update the rest,
/// e.g. the owned partitions) into [`NODE_BUCKET`] every [`HEARTBEAT_PERIOD`]. Call within a
/// Tokio runtime.
pub fn start_heartbeat(cluster: &Cluster, info: Arc<Mutex<NodeInfo>>) -> Heartbeat {
    let node = info
        .lock()
        .map(|i| i.node.clone())
        .unwrap_or_else(|e| e.into_inner().node.clone());
    let (stop, mut stop_rx) = watch::channel(false);
    let c = cluster.clone();
    let task = tokio::spawn(async move {
        let mut bucket = None;
        loop {
            if bucket.is_none() {
                match c.node_bucket().await {
                    Ok(b) => bucket = Some(b),
                    Err(e) => {
                        tracing::warn!(error = %e, "node bucket unavailable, heartbeat delayed")
                    }
                }
            }
            if let Some(b) = &bucket {
                let (key, value) = {
                    let mut i = info.lock().unwrap_or_else(|e| e.into_inner());
                    i.heartbeat_ms = now_ms();
                    (i.node.clone(), serde_json::to_vec(&*i).unwrap_or_default())
                };
                if let Err(e) = b.put(&key, value.into()).await {
                    metrics::counter!("pharos_cluster_heartbeat_failures_total").increment(1);
                    tracing::warn!(node = %key, error = %e, "heartbeat not stored");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(HEARTBEAT_PERIOD) => {}
                _ = stop_rx.changed() => return,
            }
        }
    });
    Heartbeat {
        stop,
        task: Some(task),
        cluster: cluster.clone(),
        node,
    }
}

impl Heartbeat {
    /// Stops the heartbeat and deletes the node's entry (so it leaves the list at once).
    pub async fn stop(mut self) {
        self.stop.send_replace(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        match self.cluster.node_bucket().await {
            Ok(b) => {
                if let Err(e) = b.delete(&self.node).await {
                    tracing::warn!(node = %self.node, error = %e, "node entry not deleted; it expires by itself");
                }
            }
            Err(e) => tracing::warn!(error = %e, "node entry not deleted; it expires by itself"),
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// The nodes with a live entry in [`NODE_BUCKET`], by name. Entries that do not parse are
/// skipped (and logged).
pub async fn list_nodes(cluster: &Cluster) -> Result<Vec<NodeInfo>, ClusterError> {
    let bucket = cluster.node_bucket().await?;
    let mut keys = bucket
        .keys()
        .await
        .map_err(|e| cluster.error(format!("keys of bucket {NODE_BUCKET}"), e))?;
    let mut names = Vec::new();
    while let Some(k) = keys.next().await {
        match k {
            Ok(k) => names.push(k),
            Err(e) => return Err(cluster.error(format!("keys of bucket {NODE_BUCKET}"), e)),
        }
    }
    names.sort();
    let mut nodes = Vec::with_capacity(names.len());
    for k in names {
        let v = bucket
            .get(&k)
            .await
            .map_err(|e| cluster.error(format!("get {k} from bucket {NODE_BUCKET}"), e))?;
        let Some(v) = v else { continue };
        match serde_json::from_slice::<NodeInfo>(&v) {
            Ok(n) => nodes.push(n),
            Err(e) => {
                tracing::warn!(key = %k.escape_debug(), error = %e, "unreadable node entry skipped")
            }
        }
    }
    Ok(nodes)
}
