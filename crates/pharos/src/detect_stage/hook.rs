//! The `[detect_hook]` runner: the operator's command (blackholing scripts and the like) run with
//! each attack event on its stdin, on its own thread, with a timeout.

use std::io::Write;

use pharos_detect::Detection;

use super::render::{envelope, phase};

/// Runs of the hook that may wait before further events skip it (counted as failures).
const HOOK_QUEUE: usize = 256;

/// The `[detect_hook]` command, run on its own thread so detection never waits for it: each
/// event's JSON envelope on stdin, `PHAROS_PHASE` (`started`, `updated`, `ended`) and
/// `PHAROS_ATTACK_ID` in the environment, killed after the timeout. Runs are sequential, in
/// event order.
pub struct Hook {
    tx: std::sync::mpsc::SyncSender<(&'static str, String, String)>,
    thread: std::thread::JoinHandle<()>,
}

impl Hook {
    /// Starts the hook thread.
    pub fn start(cfg: &crate::config::DetectHookConfig) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(&'static str, String, String)>(HOOK_QUEUE);
        let cfg = cfg.clone();
        let thread = std::thread::Builder::new()
            .name("pharos-detect-hook".into())
            .spawn(move || {
                for (phase, id, doc) in rx {
                    if let Err(reason) = run_hook(&cfg, phase, &id, &doc) {
                        metrics::counter!("pharos_detect_hook_failures_total", "reason" => reason)
                            .increment(1);
                    }
                }
            })?;
        Ok(Self { tx, thread })
    }

    /// Queues a run for `d` without waiting.
    pub fn offer(&self, d: &Detection) {
        let id = match d {
            Detection::Attack(u) => u.id().to_string(),
            Detection::Scan(_) => String::new(),
        };
        if self
            .tx
            .try_send((phase(d), id, envelope(d).to_string()))
            .is_err()
        {
            metrics::counter!("pharos_detect_hook_failures_total", "reason" => "queue_full")
                .increment(1);
            tracing::warn!("detect hook queue full: a run was skipped");
        }
    }

    /// Waits until the queued runs are done (each bounded by the timeout).
    pub fn finish(self) {
        drop(self.tx);
        let _ = self.thread.join();
    }
}

/// One run of the hook; the failure reason on error.
fn run_hook(
    cfg: &crate::config::DetectHookConfig,
    phase: &str,
    id: &str,
    doc: &str,
) -> Result<(), &'static str> {
    use std::process::{Command, Stdio};
    let mut child = Command::new(&cfg.command)
        .args(&cfg.args)
        .env("PHAROS_PHASE", phase)
        .env("PHAROS_ATTACK_ID", id)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| {
            tracing::warn!(command = %cfg.command, error = %e, "detect hook could not start");
            "spawn"
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its input is not a failure.
        let _ = stdin.write_all(doc.as_bytes());
        let _ = stdin.write_all(b"\n");
    }
    let deadline = std::time::Instant::now() + cfg.timeout.get();
    loop {
        match child.try_wait() {
            Ok(Some(s)) if s.success() => return Ok(()),
            Ok(Some(s)) => {
                tracing::warn!(command = %cfg.command, status = %s, phase, "detect hook failed");
                return Err("exit");
            }
            Ok(None) if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                tracing::warn!(command = %cfg.command, timeout = %cfg.timeout, phase,
                    "detect hook timed out and was killed");
                return Err("timeout");
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(_) => return Err("exit"),
        }
    }
}
