//! `[detect_hook]` of `pharos.toml`: the operator's command (e.g. a blackholing script) run with
//! the event JSON on stdin at each attack start, update and end (docs/detect.md); the binary's
//! detection stage runs it.

use std::path::PathBuf;
use std::time::Duration;

use pharos_model::config::{ConfigDuration, ConfigError, OldUnit, RenamedKey};
use serde::{Deserialize, Serialize};

/// Keys of `[detect_hook]` spelled otherwise by earlier releases, still read with a warning.
pub const RENAMED_KEYS: &[RenamedKey] = &[RenamedKey::duration(
    "detect_hook",
    "timeout_seconds",
    "timeout",
    OldUnit::Secs,
)];

/// `[detect_hook]` settings: an operator's command (e.g. a blackholing script) run with the event
/// JSON on stdin at each attack start, update and end (docs/detect.md).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectHookConfig {
    /// Program to run (a path; no shell); empty: no hook.
    pub command: String,
    /// Arguments given to it.
    pub args: Vec<String>,
    /// How long a run may take before it is killed and counted as failed.
    pub timeout: ConfigDuration,
}

impl Default for DetectHookConfig {
    fn default() -> Self {
        Self {
            command: String::new(),
            args: Vec::new(),
            timeout: ConfigDuration::from_secs(10),
        }
    }
}

impl DetectHookConfig {
    /// Checks the timeout, and that `command` names a program that exists and may be executed
    /// (a path, or a name found on `PATH`): a hook that cannot start would leave attacks
    /// unmitigated with nothing but a counter to say so.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let t = self.timeout.get();
        if t < Duration::from_secs(1) || t > Duration::from_secs(3600) {
            return Err(ConfigError::new(
                "detect_hook",
                "timeout",
                format!("\"{}\"", self.timeout),
                "must be from \"1s\" to \"1h\"",
            ));
        }
        if self.command.is_empty() {
            return Ok(());
        }
        let bad = |expected: String| {
            Err(ConfigError::new(
                "detect_hook",
                "command",
                format!("{:?}", self.command),
                expected,
            ))
        };
        let candidates: Vec<PathBuf> = if self.command.contains('/') {
            vec![PathBuf::from(&self.command)]
        } else {
            std::env::var_os("PATH")
                .map(|p| {
                    std::env::split_paths(&p)
                        .map(|d| d.join(&self.command))
                        .collect()
                })
                .unwrap_or_default()
        };
        let Some(found) = candidates.iter().find(|p| p.is_file()) else {
            return bad(if self.command.contains('/') {
                "no such file; give the path of the program to run".into()
            } else {
                "not found on PATH; give the program's full path".into()
            });
        };
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(found)
            .map(|m| m.permissions().mode())
            .unwrap_or(0);
        if mode & 0o111 == 0 {
            return bad(format!(
                "{} is not executable; make it so (chmod +x) or give another program",
                found.display()
            ));
        }
        Ok(())
    }
}
