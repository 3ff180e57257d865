//! `[emit]` and `[[subscription]]` of `pharos.toml`: the subscriptions' common settings and the
//! SSE stream limits, and the checks of the subscriptions defined in the file.

use pharos_model::config::{ConfigDuration, ConfigError, OldUnit, RenamedKey};
use serde::{Deserialize, Serialize};

use crate::subscription::{SpecError, SubscriptionSpec};

/// Keys of `[[subscription]]` whose bare numbers (seconds) earlier releases accepted; read with a
/// warning.
pub const RENAMED_KEYS: &[RenamedKey] = &[
    RenamedKey::duration(
        "subscription",
        "dampening_period",
        "dampening_period",
        OldUnit::Secs,
    ),
    RenamedKey::duration(
        "subscription.emission.periodic",
        "interval",
        "interval",
        OldUnit::Secs,
    ),
    RenamedKey::duration("subscription.sink", "timeout", "timeout", OldUnit::Secs),
    RenamedKey::duration(
        "subscription.sink",
        "ack_timeout",
        "ack_timeout",
        OldUnit::Secs,
    ),
];

/// `[emit]` settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmitConfig {
    /// Whether subscriptions and the SSE stream run.
    pub enabled: bool,
    /// Most SSE streams (`GET /api/v1/stream`) open at once; beyond, 503.
    pub max_streams: usize,
    /// Interval of SSE keep-alive comments.
    pub keep_alive: ConfigDuration,
    /// Hosts (names, addresses, CIDRs) that subscriptions created through the API may send to;
    /// empty: API-created subscriptions are refused.
    pub allow_hosts: Vec<String>,
}

impl Default for EmitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_streams: 256,
            keep_alive: ConfigDuration::from_secs(15),
            allow_hosts: Vec::new(),
        }
    }
}

/// Why `[emit]` or a `[[subscription]]` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmitConfigError {
    /// A key of `[emit]` out of its range.
    #[error(transparent)]
    Key(#[from] ConfigError),
    /// The `index`-th (from 1) `[[subscription]]` is wrong.
    #[error("[[subscription]] #{index}: {source}")]
    Subscription {
        /// Its position in the file, from 1.
        index: usize,
        /// What is wrong.
        source: SpecError,
    },
    /// Two `[[subscription]]` share a name.
    #[error(
        "[[subscription]] #{index}: name {name:?} is used twice; give each subscription its own name"
    )]
    DuplicateName {
        /// Position of the second one, from 1.
        index: usize,
        /// The name.
        name: String,
    },
}

impl EmitConfig {
    /// Checks `[emit]` and the file's `[[subscription]]` tables (building each sink, without
    /// network access).
    pub fn validate(&self, subscriptions: &[SubscriptionSpec]) -> Result<(), EmitConfigError> {
        if self.max_streams == 0 {
            return Err(ConfigError::new("emit", "max_streams", 0, "must be at least 1").into());
        }
        if self.keep_alive.is_zero() {
            return Err(ConfigError::new(
                "emit",
                "keep_alive",
                "\"0s\"",
                "must be at least 1s, e.g. \"15s\"",
            )
            .into());
        }
        let mut names = std::collections::HashSet::new();
        for (i, sub) in subscriptions.iter().enumerate() {
            sub.validate()
                .map_err(|source| EmitConfigError::Subscription {
                    index: i + 1,
                    source,
                })?;
            if !names.insert(sub.name.as_str()) {
                return Err(EmitConfigError::DuplicateName {
                    index: i + 1,
                    name: sub.name.clone(),
                });
            }
        }
        Ok(())
    }
}
