//! `[store]` of `pharos.toml`: where messages are kept and for how long.

use std::path::PathBuf;

use pharos_model::config::{ConfigDuration, ConfigError};
use serde::{Deserialize, Serialize};

/// `[store]` settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Directory for all stored data (created if missing).
    pub data_dir: PathBuf,
    /// Messages older than this (by event time) are deleted; "0s" keeps them forever.
    pub retention: ConfigDuration,
    /// Submissions that may wait for the store writer before pushes get 503.
    pub queue: usize,
    /// Most messages written in one transaction.
    pub max_batch: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./pharos-data"),
            retention: ConfigDuration::from_secs(30 * 86_400),
            queue: 1024,
            max_batch: 5000,
        }
    }
}

impl StoreConfig {
    /// Checks the keys; the error names the key, the value and what is expected.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.queue == 0 {
            return Err(ConfigError::new("store", "queue", 0, "must be at least 1"));
        }
        if self.max_batch == 0 {
            return Err(ConfigError::new(
                "store",
                "max_batch",
                0,
                "must be at least 1",
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::new(
                "store",
                "data_dir",
                "\"\"",
                "give a directory, e.g. \"./pharos-data\"",
            ));
        }
        Ok(())
    }
}
