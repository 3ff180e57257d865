//! Notification dedup, dampening, thresholds (Suricata semantics) and correlation rules.
//!
//! Contract: [`Notifier`] is a plain synchronous state machine fed with [`Message`]s and an
//! explicit clock (`now_ms`, Unix milliseconds); it never reads the wall clock and never panics.
//! For each message, in this order:
//! 1. every [correlation rule](CorrelationRule) sees it (CrowdSec leaky-bucket semantics) and may
//!    raise an intrusion event (brute force, port scan, ...), output at once;
//! 2. the [threshold rules](ThresholdRule) decide whether it is notified (Suricata `threshold`,
//!    `limit`, `both`, `detection_filter`, `backoff`, `rate_filter` and `suppress` semantics);
//! 3. identical notifications (same kind, NSF, rule name and addresses) within `dedup_window_s`
//!    fold into one: the first is output at once, an update with the count and the first and last
//!    seen times when the window closes ([`Notifier::tick`]);
//! 4. per kind, RFC 8641 `dampening-period`: after an output for an object (the dedup key), later
//!    outputs for it wait until the period has passed; only the latest is output then.
//!
//! Every table is bounded by `max_keys`; what does not fit is passed through unfolded (never
//! lost) and counted in [`NotifyStats`].
//!
//! One module per part, one surface here: [`config`] (what `[notify]` in `pharos.toml` holds and
//! its checks), [`Fields`] (what rules match and count on), [`Thresholds`], [`Correlator`], and
//! [`Notifier`] (dedup and dampening, driving the other two). The output types ([`Notice`],
//! [`Phase`], [`NotifyStats`]) are defined here because every part produces them.

use pharos_model::Message;

mod config;
mod correlation;
mod dedup;
mod fields;
mod thresholds;

#[cfg(test)]
mod tests;

pub use config::{
    CorrelationRule, Distinct, Emit, GroupBy, NotifyConfig, RENAMED_KEYS, RateAction,
    ThresholdRule, ThresholdType, Track, UniqueOn,
};
pub use correlation::Correlator;
pub use dedup::{DedupKey, Notifier};
pub use fields::Fields;
pub use thresholds::{Thresholds, Verdict};

#[cfg(test)]
use crate::config::ConfigError;
#[cfg(test)]
use pharos_model::ident::DampeningType;

/// What happened to a notification; the output of [`Notifier`].
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// The message to store and emit (the latest of its fold).
    pub message: Message,
    /// Why it is output.
    pub phase: Phase,
    /// Notifications it stands for (events in the bucket, for correlation events).
    pub count: u64,
    /// First of them, Unix ms.
    pub first_seen_ms: u64,
    /// Last of them, Unix ms.
    pub last_seen_ms: u64,
    /// `rate_filter` action in force, if any.
    pub action: Option<RateAction>,
}

/// Why a [`Notice`] is output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The first of its fold (output at once).
    First,
    /// The final count of a fold, at the end of its window (update the first in place).
    Update,
    /// An event raised by a correlation rule.
    Correlated,
}

/// Counters of the notification stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NotifyStats {
    /// Messages fed.
    pub received: u64,
    /// Messages silenced by threshold rules.
    pub thresholded: u64,
    /// Messages folded into an earlier one.
    pub folded: u64,
    /// Outputs held back by dampening (and replaced or output later).
    pub dampened: u64,
    /// Events raised by correlation rules.
    pub correlated: u64,
    /// Notices output.
    pub output: u64,
    /// Keys not tracked because a table was full (the message passed through).
    pub dropped_full: u64,
}
