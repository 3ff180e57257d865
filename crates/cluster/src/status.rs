//! `pharos cluster status`: the nodes, the flow stream and its servers, the consumers (lag,
//! pins) and the buckets, as JSON ([`ClusterStatus`] is `Serialize`) or a plain text table
//! ([`ClusterStatus::render`]; every string that came from the network is escaped).

use std::fmt::Write as _;

use serde::Serialize;

use crate::connect::{
    ANALYSER_GROUP, ARCHIVE_CONSUMER, ARCHIVER_GROUP, Cluster, ClusterError, FLOW_STREAM,
    NODE_BUCKET, PARTITIONS_METADATA, TEMPLATE_BUCKET, analyse_consumer_name,
};
use crate::nodes::{NodeInfo, list_nodes};

/// The whole picture.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    /// The configured server URLs.
    pub servers: String,
    /// Live nodes (from their heartbeats).
    pub nodes: Vec<NodeInfo>,
    /// The flow stream, `None` when it does not exist (run a node with `ensure`).
    pub stream: Option<StreamStatus>,
    /// The analyser consumers by partition, then the archive consumer.
    pub consumers: Vec<ConsumerStatus>,
    /// The key-value buckets.
    pub buckets: Vec<BucketStatus>,
}

/// The flow stream.
#[derive(Debug, Clone, Serialize)]
pub struct StreamStatus {
    /// Its name.
    pub name: String,
    /// Partitions recorded in its metadata.
    pub partitions: Option<String>,
    /// The server leading it.
    pub leader: Option<String>,
    /// The other servers holding it.
    pub replicas: Vec<ReplicaStatus>,
    /// Configured replicas.
    pub num_replicas: usize,
    /// Messages (batches) held.
    pub messages: u64,
    /// Bytes held.
    pub bytes: u64,
    /// First sequence held.
    pub first_seq: u64,
    /// Last sequence stored.
    pub last_seq: u64,
    /// Age limit, seconds.
    pub max_age_s: u64,
    /// Byte limit (-1: none).
    pub max_bytes: i64,
}

/// A replica of the stream on a server that is not the leader.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaStatus {
    /// The server's name.
    pub name: String,
    /// Whether it is up to date.
    pub current: bool,
    /// Whether the group considers it offline.
    pub offline: bool,
    /// Milliseconds since it was last seen.
    pub active_ms: u64,
    /// Operations behind the leader.
    pub lag: Option<u64>,
}

/// A consumer of the flow stream.
#[derive(Debug, Clone, Serialize)]
pub struct ConsumerStatus {
    /// Its name.
    pub name: String,
    /// The partition (`None` for the archive consumer).
    pub partition: Option<u16>,
    /// Messages not yet delivered: the lag.
    pub num_pending: u64,
    /// Delivered, not yet acknowledged.
    pub num_ack_pending: usize,
    /// Delivered more than once.
    pub redelivered: usize,
    /// Pull requests waiting.
    pub waiting: usize,
    /// The pinned client's id, if a client is pinned.
    pub pinned_client_id: Option<String>,
    /// The node that says it owns the partition (from the heartbeats), if any.
    pub owner: Option<String>,
    /// The server leading the consumer.
    pub leader: Option<String>,
    /// Set when the consumer could not be read.
    pub error: Option<String>,
}

/// A key-value bucket.
#[derive(Debug, Clone, Serialize)]
pub struct BucketStatus {
    /// Its name.
    pub name: String,
    /// Values held.
    pub values: u64,
    /// Bytes held.
    pub bytes: u64,
    /// Set when the bucket could not be read.
    pub error: Option<String>,
}

/// Collects the status. Fails only when the servers cannot be asked at all; a missing stream,
/// consumer or bucket is reported in the result.
pub async fn status(cluster: &Cluster) -> Result<ClusterStatus, ClusterError> {
    let js = cluster.jetstream();
    let nodes = match list_nodes(cluster).await {
        Ok(n) => n,
        Err(e) => {
            tracing::debug!(error = %e, "no node list");
            Vec::new()
        }
    };
    let stream = match js.get_stream(FLOW_STREAM).await {
        Ok(s) => Some(s),
        Err(e) => match e.kind() {
            async_nats::jetstream::context::GetStreamErrorKind::JetStream(j)
                if j.error_code() == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND =>
            {
                None
            }
            _ => return Err(cluster.error(format!("info of stream {FLOW_STREAM}"), e)),
        },
    };
    let mut consumers = Vec::new();
    let stream_status = match stream {
        None => None,
        Some(s) => {
            let info = s.cached_info().clone();
            let (leader, replicas) = match &info.cluster {
                Some(c) => (
                    c.leader.clone(),
                    c.replicas
                        .iter()
                        .map(|r| ReplicaStatus {
                            name: r.name.clone(),
                            current: r.current,
                            offline: r.offline,
                            active_ms: u64::try_from(r.active.as_millis()).unwrap_or(u64::MAX),
                            lag: r.lag,
                        })
                        .collect(),
                ),
                None => (None, Vec::new()),
            };
            let partitions = info.config.metadata.get(PARTITIONS_METADATA).cloned();
            let n: u16 = partitions
                .as_deref()
                .and_then(|p| p.parse().ok())
                .unwrap_or(cluster.config().partitions);
            let names = (0..n)
                .map(|p| (analyse_consumer_name(p), Some(p), ANALYSER_GROUP))
                .chain(std::iter::once((
                    ARCHIVE_CONSUMER.to_string(),
                    None,
                    ARCHIVER_GROUP,
                )));
            for (name, partition, group) in names {
                let owner = partition.and_then(|p| {
                    nodes
                        .iter()
                        .find(|n| n.partitions.contains(&p))
                        .map(|n| n.node.clone())
                });
                let c = match s.consumer_info(&name).await {
                    Ok(i) => ConsumerStatus {
                        name,
                        partition,
                        num_pending: i.num_pending,
                        num_ack_pending: i.num_ack_pending,
                        redelivered: i.num_redelivered,
                        waiting: i.num_waiting,
                        pinned_client_id: i
                            .priority_groups
                            .iter()
                            .find(|g| g.group == group)
                            .and_then(|g| g.pinned_client_id.clone()),
                        owner,
                        leader: i.cluster.and_then(|c| c.leader),
                        error: None,
                    },
                    Err(e) => ConsumerStatus {
                        name,
                        partition,
                        num_pending: 0,
                        num_ack_pending: 0,
                        redelivered: 0,
                        waiting: 0,
                        pinned_client_id: None,
                        owner,
                        leader: None,
                        error: Some(e.to_string()),
                    },
                };
                consumers.push(c);
            }
            Some(StreamStatus {
                name: info.config.name.clone(),
                partitions,
                leader,
                replicas,
                num_replicas: info.config.num_replicas,
                messages: info.state.messages,
                bytes: info.state.bytes,
                first_seq: info.state.first_sequence,
                last_seq: info.state.last_sequence,
                max_age_s: info.config.max_age.as_secs(),
                max_bytes: info.config.max_bytes,
            })
        }
    };
    let mut buckets = Vec::new();
    for name in [TEMPLATE_BUCKET, NODE_BUCKET] {
        let b = match js.get_key_value(name).await {
            Ok(kv) => match kv.status().await {
                Ok(st) => BucketStatus {
                    name: name.into(),
                    values: st.values(),
                    bytes: st.info.state.bytes,
                    error: None,
                },
                Err(e) => BucketStatus {
                    name: name.into(),
                    values: 0,
                    bytes: 0,
                    error: Some(e.to_string()),
                },
            },
            Err(e) => BucketStatus {
                name: name.into(),
                values: 0,
                bytes: 0,
                error: Some(e.to_string()),
            },
        };
        buckets.push(b);
    }
    Ok(ClusterStatus {
        servers: cluster.urls().to_string(),
        nodes,
        stream: stream_status,
        consumers,
        buckets,
    })
}

/// `s` with every control character (and backslash) escaped, so that a hostile name cannot
/// move the cursor or forge lines in a terminal.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

fn opt(s: &Option<String>) -> String {
    s.as_deref().map(escape).unwrap_or_else(|| "-".into())
}

fn ms_to_utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Left-aligned columns separated by two spaces.
fn table(out: &mut String, head: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, c) in cells.enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            l.push_str(c);
            if i + 1 < w.len() {
                l.extend(std::iter::repeat_n(' ', w[i] - c.chars().count()));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(out, &mut head.iter().copied());
    for r in rows {
        line(out, &mut r.iter().map(String::as_str));
    }
}

impl ClusterStatus {
    /// A plain text report: nodes, stream, consumers, buckets (times in UTC).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "servers: {}", escape(&self.servers));
        let _ = writeln!(out, "\nnodes ({}):", self.nodes.len());
        let rows: Vec<Vec<String>> = self
            .nodes
            .iter()
            .map(|n| {
                vec![
                    escape(&n.node),
                    n.roles
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                    escape(&n.version),
                    ms_to_utc(n.started_ms),
                    ms_to_utc(n.heartbeat_ms),
                    if n.partitions.is_empty() {
                        "-".into()
                    } else {
                        n.partitions
                            .iter()
                            .map(u16::to_string)
                            .collect::<Vec<_>>()
                            .join(",")
                    },
                    opt(&n.api),
                ]
            })
            .collect();
        table(
            &mut out,
            &[
                "NODE",
                "ROLES",
                "VERSION",
                "STARTED",
                "HEARTBEAT",
                "PARTITIONS",
                "API",
            ],
            &rows,
        );
        match &self.stream {
            None => {
                let _ = writeln!(
                    out,
                    "\nstream {FLOW_STREAM}: missing (start a node of the cluster: it creates it)"
                );
            }
            Some(s) => {
                let _ = writeln!(
                    out,
                    "\nstream {}: partitions {}, {} messages, {} bytes, seq {}..{}, replicas {}, max_age {} s, max_bytes {}",
                    escape(&s.name),
                    opt(&s.partitions),
                    s.messages,
                    s.bytes,
                    s.first_seq,
                    s.last_seq,
                    s.num_replicas,
                    s.max_age_s,
                    if s.max_bytes < 0 {
                        "none".to_string()
                    } else {
                        s.max_bytes.to_string()
                    },
                );
                let mut rows = vec![vec![
                    opt(&s.leader),
                    "leader".into(),
                    "yes".into(),
                    "-".into(),
                    "-".into(),
                ]];
                for r in &s.replicas {
                    rows.push(vec![
                        escape(&r.name),
                        if r.offline { "offline" } else { "replica" }.into(),
                        if r.current { "yes" } else { "no" }.into(),
                        format!("{} ms", r.active_ms),
                        r.lag.map_or_else(|| "-".into(), |l| l.to_string()),
                    ]);
                }
                table(
                    &mut out,
                    &["SERVER", "ROLE", "CURRENT", "SEEN", "LAG"],
                    &rows,
                );
            }
        }
        if !self.consumers.is_empty() {
            let _ = writeln!(out, "\nconsumers:");
            let rows: Vec<Vec<String>> = self
                .consumers
                .iter()
                .map(|c| {
                    vec![
                        escape(&c.name),
                        c.partition.map_or_else(|| "all".into(), |p| p.to_string()),
                        c.num_pending.to_string(),
                        c.num_ack_pending.to_string(),
                        c.redelivered.to_string(),
                        opt(&c.owner),
                        opt(&c.pinned_client_id),
                        opt(&c.leader),
                        opt(&c.error),
                    ]
                })
                .collect();
            table(
                &mut out,
                &[
                    "CONSUMER",
                    "PARTITION",
                    "LAG",
                    "UNACKED",
                    "REDELIVERED",
                    "OWNER",
                    "PIN",
                    "LEADER",
                    "ERROR",
                ],
                &rows,
            );
        }
        let _ = writeln!(out, "\nbuckets:");
        let rows: Vec<Vec<String>> = self
            .buckets
            .iter()
            .map(|b| {
                vec![
                    escape(&b.name),
                    b.values.to_string(),
                    b.bytes.to_string(),
                    opt(&b.error),
                ]
            })
            .collect();
        table(&mut out, &["BUCKET", "VALUES", "BYTES", "ERROR"], &rows);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_control_characters() {
        assert_eq!(escape("a\x1b[2Jb\nc\\"), "a\\u{1b}[2Jb\\u{a}c\\\\");
        assert_eq!(escape("n\u{202e}x"), "n\\u{202e}x");
        assert_eq!(escape("plain-node_1"), "plain-node_1");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(ms_to_utc(0), "1970-01-01 00:00:00");
        assert_eq!(ms_to_utc(1_798_675_200_000), "2026-12-31 00:00:00");
    }

    #[test]
    fn render_escapes_network_strings() {
        let st = ClusterStatus {
            servers: "nats://127.0.0.1:4222".into(),
            nodes: vec![NodeInfo {
                node: "evil\x1b]0;owned\x07".into(),
                roles: vec![crate::Role::Analyser],
                version: "0.1.0".into(),
                started_ms: 0,
                heartbeat_ms: 0,
                partitions: vec![0, 2],
                api: Some("http://x\r\nFAKE".into()),
            }],
            stream: None,
            consumers: vec![],
            buckets: vec![],
        };
        let r = st.render();
        assert!(!r.chars().any(|c| c.is_control() && c != '\n'), "{r}");
        assert!(r.contains("0,2"));
        assert!(r.contains("missing"));
    }
}
