//! Pharos scale-out over NATS JetStream (issue 20, docs/scale-out.md): the same binary in the
//! roles `collector`, `analyser`, `archiver` and `api`, chosen by `[cluster] roles`.
//!
//! ```text
//! collectors --FlowBatch, split by destination prefix--> JetStream PHAROS_FLOWS
//!     subjects pharos.flows.<partition> (R = [cluster] replicas)
//!   --> durable consumer pharos-analyse-<p> per partition (pinned client: one analyser at a
//!       time owns a partition, a standby takes it over after pin_timeout)
//!   --> durable consumer pharos-archive (pinned client) --> ClickHouse, batch id = stream seq
//! exporter templates --> KV bucket pharos_templates --> every collector's decoders
//! node heartbeats --> KV bucket pharos_nodes (TTL) --> `pharos cluster status`
//! ```
//!
//! Messages (events, alarms, logs) go from the node that produces them straight into the shared
//! PostgreSQL store (`[postgres]`, pharos-store-pg), which assigns their ids in one transaction
//! and feeds the subscriptions; no stream carries them.

#![forbid(unsafe_code)]

pub mod archive;
pub mod config;
pub mod connect;
pub mod consume;
pub mod nodes;
pub mod partition;
pub mod publish;
pub mod status;
pub mod templates;
pub mod wire;

pub use config::{ClusterConfig, Role};
pub use connect::{Cluster, ClusterError};

/// Registers the descriptions (`# HELP`) of the cluster's metrics (docs/metrics.md, "Cluster").
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!(
        "pharos_cluster_published_flows_total",
        "Flows a collector published to the flow stream and the stream acknowledged"
    );
    describe_counter!(
        "pharos_cluster_published_batches_total",
        "Messages (flow batches of one partition) a collector published and the stream acknowledged"
    );
    describe_counter!(
        "pharos_cluster_publish_dropped_total",
        "Flows a collector could not get acknowledged by the flow stream, by reason"
    );
    describe_counter!(
        "pharos_cluster_publish_retries_total",
        "Publishes of a flow batch retried (same Nats-Msg-Id, stored once), by reason"
    );
    describe_counter!(
        "pharos_cluster_publish_duplicates_total",
        "Retried publishes the stream had stored already (acknowledged as duplicates)"
    );
    describe_gauge!(
        "pharos_cluster_publish_in_flight",
        "Publishes of this collector awaiting the stream's acknowledgement"
    );
    describe_counter!(
        "pharos_cluster_consumed_flows_total",
        "Flows an analyser took from its partitions and handed to detection"
    );
    describe_counter!(
        "pharos_cluster_consume_redelivered_total",
        "Flow batches an analyser received again (not acknowledged in time by it or another)"
    );
    describe_counter!(
        "pharos_cluster_consume_dropped_total",
        "Flow batches an analyser dropped, by reason (undecodable: terminated)"
    );
    describe_gauge!(
        "pharos_cluster_partitions_owned",
        "Partitions this analyser owns (received a batch of within pin_timeout, or pinned to it)"
    );
    describe_counter!(
        "pharos_cluster_archived_flows_total",
        "Flows the archiver wrote to ClickHouse"
    );
    describe_counter!(
        "pharos_cluster_archive_batches_total",
        "ClickHouse inserts of the archiver, by result (written, duplicate, recovered)"
    );
    describe_counter!(
        "pharos_cluster_archive_failures_total",
        "ClickHouse inserts or ledger reads of the archiver that failed and are retried, by reason"
    );
    describe_counter!(
        "pharos_cluster_archive_dropped_total",
        "Flow batches the archiver dropped, by reason (undecodable: terminated)"
    );
    describe_counter!(
        "pharos_cluster_archive_skipped_messages_total",
        "Redelivered messages the archiver acknowledged without writing (already in ClickHouse)"
    );
    describe_gauge!(
        "pharos_cluster_archive_lag_messages",
        "Messages of the flow stream not yet archived"
    );
    describe_counter!(
        "pharos_cluster_heartbeat_failures_total",
        "Heartbeats of this node that could not be written to the node bucket"
    );
    describe_counter!(
        "pharos_cluster_templates_put_total",
        "Exporter templates and sampling tables this collector wrote to the template bucket"
    );
    describe_counter!(
        "pharos_cluster_templates_received_total",
        "Exporter templates and sampling tables this collector took from the template bucket"
    );
    describe_counter!(
        "pharos_cluster_templates_dropped_total",
        "Template bucket entries not applied or not written, by reason"
    );
    describe_counter!(
        "pharos_cluster_template_errors_total",
        "Template bucket operations that failed, by operation"
    );
}
