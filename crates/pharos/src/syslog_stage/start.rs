//! The syslog path of `pharos run`: the `[syslog]` listeners and the [`SyslogStage`] that
//! normalises what they receive.
//!
//! Contract: [`start`] writes `<data_dir>/syslog.addr` once the listeners are bound;
//! [`SyslogPath::stop`] stops accepting, drains what was received into the store and removes
//! `syslog.addr`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use pharos_store::writer::StoreWriter;

use super::{StageSettings, SyslogStage};
use crate::config::Config;

/// The running syslog listeners and the normalise stage that takes their records.
pub struct SyslogPath {
    listeners: pharos_sources::syslog::SyslogHandle,
    stage: SyslogStage,
}

impl SyslogPath {
    /// Stops accepting (the listeners end and the channel closes), lets the stage drain what was
    /// received, waits until it is stored and the NSF inventory is written.
    /// `syslog.addr` is removed once both ended.
    pub async fn stop(self, data_dir: &Path) {
        self.listeners.shutdown().await;
        self.stage.finish().await;
        let _ = std::fs::remove_file(data_dir.join("syslog.addr"));
    }
}

/// Starts the syslog listeners and their normalise stage (unless `[syslog] enabled = false`)
/// and writes `syslog.addr` (one `transport address` line per listener) for tests and scripts.
pub async fn start(
    cfg: &Config,
    data_dir: &Path,
    nsfs: Arc<pharos_store::inventory::Inventory>,
    writer: StoreWriter,
) -> anyhow::Result<Option<SyslogPath>> {
    if !cfg.syslog.enabled {
        return Ok(None);
    }
    let settings = cfg
        .syslog
        .settings()
        .map_err(|e| anyhow::anyhow!("config error: {e}"))?;
    let stage_settings = StageSettings::new(&cfg.syslog, &cfg.nsf)
        .map_err(|e| anyhow::anyhow!("config error: {e}"))?;
    let (listeners, rx) = pharos_sources::syslog::start(settings).await?;
    // On an error below, dropping the handle stops the listeners.
    let stage = SyslogStage::start(rx, stage_settings, nsfs, writer)
        .context("starting the syslog normalise thread")?;
    std::fs::write(data_dir.join("syslog.addr"), listeners.addr_lines())
        .context("writing syslog.addr in the data directory")?;
    Ok(Some(SyslogPath { listeners, stage }))
}
