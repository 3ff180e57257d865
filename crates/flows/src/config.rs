//! `[flow_store]` of `pharos.toml`: the Parquet archive under `<data_dir>/flows` (docs/flows.md),
//! read with its documented defaults and checked by [`FlowStoreConfig::validate`].

use std::path::Path;
use std::time::Duration;

use pharos_model::config::{ConfigDuration, ConfigError, OldUnit, RenamedKey};
use serde::{Deserialize, Serialize};

use crate::segment::{DEFAULT_MEMORY_BUDGET, SegmentConfig, default_encode_threads};

/// Keys of `[flow_store]` spelled otherwise by earlier releases, still read with a warning.
pub const RENAMED_KEYS: &[RenamedKey] = &[
    RenamedKey::duration("flow_store", "segment_seconds", "segment", OldUnit::Secs),
    RenamedKey::duration(
        "flow_store",
        "compact_after_seconds",
        "compact_after",
        OldUnit::Secs,
    ),
];

/// `[flow_store]` settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowStoreConfig {
    /// Whether collected flows are stored (`false`: counted and dropped).
    pub enabled: bool,
    /// Longest time received flows wait in memory before a segment is written: the most a crash
    /// loses (whole seconds, "1s" to "1h").
    pub segment: ConfigDuration,
    /// Segments older than this are deleted; "0s" keeps them forever.
    pub retention: ConfigDuration,
    /// Most bytes the segments may take (oldest deleted first); 0 means no limit.
    pub disk_budget_bytes: u64,
    /// Most bytes of flows the archive writer holds in memory (the open segment, segments being
    /// encoded, failed writes held for a retry); beyond it flows are spilled to
    /// `<data_dir>/flows/.spill` and written when the encoders catch up.
    pub memory_budget_bytes: u64,
    /// Threads encoding the one-second segments; 0: one per core, at most 4.
    pub encode_threads: usize,
    /// Older key, still accepted: most flows held in memory (in addition to
    /// `memory_budget_bytes`); beyond it flows are spilled, not dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_held_flows: Option<usize>,
    /// Whether the short segments of each finished minute are merged into one file.
    pub compact: bool,
    /// How long after a minute ends its segments are merged ("0s" to "1h").
    pub compact_after: ConfigDuration,
}

impl Default for FlowStoreConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            segment: ConfigDuration::from_secs(1),
            retention: ConfigDuration::from_secs(30 * 86_400),
            disk_budget_bytes: 0,
            memory_budget_bytes: DEFAULT_MEMORY_BUDGET,
            encode_threads: 0,
            max_held_flows: None,
            compact: true,
            compact_after: ConfigDuration::from_secs(10),
        }
    }
}

impl FlowStoreConfig {
    /// The writer settings these keys stand for, for a store under `data_dir`; the caller may set
    /// what runs at the start of each background thread.
    pub fn to_segment_config(&self, data_dir: &Path) -> SegmentConfig {
        SegmentConfig {
            segment: self.segment.get(),
            retention: self.retention.get(),
            disk_budget: self.disk_budget_bytes,
            max_held_flows: self.max_held_flows.unwrap_or(usize::MAX),
            memory_budget: self.memory_budget_bytes,
            encode_threads: match self.encode_threads {
                0 => default_encode_threads(),
                n => n,
            },
            compact: self.compact,
            compact_after: self.compact_after.get(),
            ..SegmentConfig::new(crate::archive_root(data_dir))
        }
    }

    /// Checks the keys; the error names the key, the value and what is expected.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, value: String, expected: String| {
            Err(ConfigError::new("flow_store", key, value, expected))
        };
        let seg = self.segment.get();
        if seg < Duration::from_secs(1)
            || seg > Duration::from_secs(3600)
            || seg.subsec_nanos() != 0
        {
            return bad(
                "segment",
                format!("\"{}\"", self.segment),
                "must be whole seconds from \"1s\" to \"1h\" (\"1s\" keeps a crash's loss to one second)".into(),
            );
        }
        if self.max_held_flows == Some(0) {
            return bad(
                "max_held_flows",
                "0".into(),
                "must be at least 1 (or leave it out: memory_budget_bytes is the limit)".into(),
            );
        }
        let min_budget = 1 << 20;
        if self.memory_budget_bytes < min_budget {
            return bad(
                "memory_budget_bytes",
                self.memory_budget_bytes.to_string(),
                format!(
                    "must be at least {min_budget} (1 MiB; the default {DEFAULT_MEMORY_BUDGET} holds about 2 s at 1 M flows/s)"
                ),
            );
        }
        if self.encode_threads > 64 {
            return bad(
                "encode_threads",
                self.encode_threads.to_string(),
                "must be at most 64 (0: one per core, at most 4)".into(),
            );
        }
        if self.compact_after.get() > Duration::from_secs(3600) {
            return bad(
                "compact_after",
                format!("\"{}\"", self.compact_after),
                "must be at most \"1h\" (the default \"10s\" merges a minute 10 s after it ends)"
                    .into(),
            );
        }
        Ok(())
    }
}
