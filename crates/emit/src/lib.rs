//! Pharos emission: subscriptions (a filter, an emission type, a dampening period and a sink) that
//! follow the message store's change feed and push what matches to webhooks, syslog receivers and
//! NATS JetStream.
//!
//! Contract: the message store is the log. A subscription's position in the change feed is
//! persisted after its sink acknowledged delivery, so what was delivered is not delivered again
//! after a restart, and what was not yet delivered is delivered in feed order when the sink is back.

#![forbid(unsafe_code)]

mod config;
pub mod dispatch;
pub mod feed;
pub mod filter;
pub mod nats;
pub mod sink;
pub mod sinks;
pub mod subscription;
pub mod syslog_out;
pub mod webhook;

pub use config::{EmitConfig, EmitConfigError, RENAMED_KEYS};
pub use dispatch::{Dispatcher, DispatcherConfig, EmitError, Origin, SubscriptionInfo};
pub use filter::Filter;
pub use sink::{Sink, SinkConfig, SinkSpec};
pub use subscription::{SubscriptionSpec, SubscriptionStore};

use pharos_store::StoredMessage;

/// What happened to a stored message: the store's change kind (`created`, `updated`, `state`).
pub use pharos_store::ChangeKind as Change;

/// One change of the feed, to deliver.
#[derive(Debug, Clone)]
pub struct Item {
    /// Position in the change feed; grows with every change, never reused.
    pub seq: u64,
    /// What happened.
    pub change: Change,
    /// The message as stored after the change.
    pub stored: StoredMessage,
}

/// Why a sink could not deliver.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The receiver is unreachable or refused for now; the same items are offered again later.
    #[error("{0} (will retry)")]
    Retry(String),
    /// The receiver refuses these items for good (e.g. HTTP 400); they are counted as failed and
    /// skipped.
    #[error("{0} (rejected)")]
    Rejected(String),
}

// ---- Shared by the sinks (webhook, syslog_out, nats): configuration errors, durations, TLS ----

/// A sink configuration that cannot be used; the message names the key, what is wrong and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SinkConfigError {
    /// The key at fault, e.g. `webhook.url`.
    pub key: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl SinkConfigError {
    pub(crate) fn new(key: &'static str, message: impl Into<String>) -> Self {
        Self {
            key,
            message: message.into(),
        }
    }
}

/// The workspace's one duration type: `"10s"`, `"500ms"`, `"2m"` (a bare number is refused
/// with the spelling to use).
pub use pharos_model::config::ConfigDuration;

pub use pharos_tls::https_client_config;

/// [`pharos_tls::client_config`] with its error as a sink configuration error naming `key`.
pub(crate) fn client_tls_config(
    ca_file: Option<&std::path::Path>,
    key: &'static str,
) -> Result<rustls::ClientConfig, SinkConfigError> {
    pharos_tls::client_config(ca_file).map_err(|e| SinkConfigError::new(key, e))
}

/// Registers the descriptions (`# HELP`) of emission's metrics: per subscription (the
/// dispatcher) and per sink type (the sinks).
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!(
        "pharos_emit_delivered_total",
        "Changes delivered by subscriptions (acknowledged by the sink), by subscription"
    );
    describe_counter!(
        "pharos_emit_failed_total",
        "Changes a subscription's sink rejected for good, by subscription"
    );
    describe_counter!(
        "pharos_emit_dropped_total",
        "Matching changes skipped because more than max_queue were pending, by subscription"
    );
    describe_counter!(
        "pharos_emit_expired_total",
        "Changes deleted by retention before a subscription read them, by subscription"
    );
    describe_counter!(
        "pharos_emit_retries_total",
        "Deliveries retried after a temporary failure, by subscription"
    );
    describe_gauge!(
        "pharos_emit_pending",
        "Changes pending per subscription (matching read plus unread feed lag: an upper bound)"
    );
    describe_counter!(
        "pharos_emit_sent_total",
        "Items a sink sent and its receiver acknowledged, by sink type"
    );
    describe_counter!(
        "pharos_emit_sink_errors_total",
        "Items of sink delivery attempts that failed (retried or rejected), by sink type and reason"
    );
    describe_counter!(
        "pharos_emit_truncated_total",
        "Syslog messages cut to the datagram size, by sink type"
    );
}
