//! Pharos emission: subscriptions (a filter, an emission type, a dampening period and a sink) that
//! follow the message store's change feed and push what matches to webhooks, syslog receivers and
//! NATS JetStream.
//!
//! Contract: the message store is the log. A subscription's position in the change feed is
//! persisted after its sink acknowledged delivery, so what was delivered is not delivered again
//! after a restart, and what was not yet delivered is delivered in feed order when the sink is back.

pub mod nats;
pub mod syslog_out;
pub mod webhook;

use pharos_store::StoredMessage;

/// What happened to a stored message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// The message was stored.
    Created,
    /// A stored event was updated in place (e.g. a DDoS attack's rates or end).
    Updated,
    /// An event's life-cycle state changed (acknowledged, closed).
    State,
}

impl Change {
    /// The change's name in emitted documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::State => "state",
        }
    }
}

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
