//! `pharos detect FILE.pcap [--networks P,...] [--config F] [--json]`: runs the DDoS and scan
//! detectors (`pharos_detect`) over the flows of an export capture (NetFlow v5/v9, IPFIX, sFlow
//! datagrams), with the capture's timestamps as the clock, and prints what they raised.
//!
//! Output: one line per detection on stdout, readable by default or, with `--json`, the envelope
//! `pharos parse --json` prints: `{"event-time", "phase", "notification" (YANG-JSON)}` plus
//! `attack-id` for attacks. `phase` is `started`, `updated`, `ended` or `scan`. Attacks still going
//! on when the capture ends are ended at its last timestamp. A summary goes to stderr. Exit status
//! 0 when the capture was read (whatever was found).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use pharos_detect::{DetectConfig, Detection, Detector, ScanKind};
use pharos_model::flow::FlowBatch;
use pharos_model::ident::Identity;
use pharos_wire::{DecoderConfig, FlowDecoder};

/// Arguments of `pharos detect`.
#[derive(clap::Args, Debug)]
pub struct DetectArgs {
    /// Capture file (pcap or pcapng) of NetFlow/IPFIX/sFlow datagrams.
    pub file: PathBuf,
    /// Monitored networks, comma-separated (e.g. 198.51.100.0/24,2001:db8::/32); replaces
    /// `[detect.ddos] networks` and `[detect.scan] networks` of the configuration.
    #[arg(long, value_delimiter = ',')]
    pub networks: Vec<String>,
    /// Configuration file whose `[detect]` section is used (default: ./pharos.toml if present).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// One JSON object per detection and line instead of readable lines.
    #[arg(long)]
    pub json: bool,
}

/// Runs `pharos detect`.
pub fn detect(args: DetectArgs) -> anyhow::Result<()> {
    let (cfg, _) = crate::config::Config::load(args.config.as_deref())?;
    let mut dcfg: DetectConfig = cfg.detect.unwrap_or_default();
    if !args.networks.is_empty() {
        let nets: Vec<String> = args.networks.iter().map(|n| n.trim().to_string()).collect();
        dcfg.ddos.networks = nets.clone();
        dcfg.scan.networks = nets;
    }
    if dcfg.ddos.networks.is_empty() && dcfg.ddos.groups.is_empty() {
        eprintln!(
            "pharos detect: no monitored networks: the DDoS detector watches nothing; give --networks or [detect.ddos] networks"
        );
    }
    let mut detector =
        Detector::new(dcfg).map_err(|e| anyhow::anyhow!("--networks or [detect]: {e}"))?;
    let mut decoder = FlowDecoder::new(DecoderConfig::default());
    let mut batch = FlowBatch::with_capacity(1024);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut found = Vec::new();
    let mut tally = Tally::default();
    let mut write_err: Option<std::io::Error> = None;
    let (mut last_tick, mut last_ts) = (0u64, 0u64);
    let summary =
        crate::cmd_decode::read_udp_datagrams(&args.file, |ts_ms, src, _dst, payload| {
            tally.datagrams += 1;
            if write_err.is_some() {
                return;
            }
            last_ts = last_ts.max(ts_ms);
            if decoder.decode(src, ts_ms, payload, &mut batch).is_err() {
                tally.not_flows += 1;
            }
            if !batch.is_empty() {
                tally.flows += batch.len() as u64;
                detector.process(&batch, last_ts, &mut found);
                batch.clear();
            }
            if last_ts >= last_tick.saturating_add(1000) {
                detector.tick(last_ts, &mut found);
                last_tick = last_ts;
            }
            if let Err(e) = emit(&mut out, &mut found, &mut tally, args.json) {
                write_err = Some(e);
            }
        })?;
    detector.finish(last_ts, &mut found);
    let r = emit(&mut out, &mut found, &mut tally, args.json).and_then(|()| out.flush());
    match write_err.map_or(r, Err) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        Err(e) => return Err(e).context("writing detections to stdout"),
        Ok(()) => {}
    }
    eprintln!(
        "pharos detect: {} flows from {} datagrams ({} not flow exports or damaged); attacks started {}, updated {}, ended {}; scans {}{}",
        tally.flows,
        tally.datagrams,
        tally.not_flows,
        tally.started,
        tally.updated,
        tally.ended,
        tally.scans,
        summary
            .damaged
            .as_deref()
            .map(|d| format!("; the capture is damaged after that: {d}"))
            .unwrap_or_default()
    );
    Ok(())
}

#[derive(Debug, Default)]
struct Tally {
    datagrams: u64,
    not_flows: u64,
    flows: u64,
    started: u64,
    updated: u64,
    ended: u64,
    scans: u64,
}

fn emit(
    out: &mut impl Write,
    found: &mut Vec<Detection>,
    tally: &mut Tally,
    json: bool,
) -> std::io::Result<()> {
    for d in found.drain(..) {
        match phase(&d) {
            "started" => tally.started += 1,
            "updated" => tally.updated += 1,
            "ended" => tally.ended += 1,
            _ => tally.scans += 1,
        }
        if json {
            writeln!(out, "{}", envelope(&d))?;
        } else {
            writeln!(out, "{}", readable(&d))?;
        }
    }
    Ok(())
}

/// `started`, `updated`, `ended` (attacks) or `scan`.
pub fn phase(d: &Detection) -> &'static str {
    match d {
        Detection::Attack(u) => u.phase(),
        Detection::Scan(_) => "scan",
    }
}

/// The attack type as the event names it (`syn-flood`, ...), else the traffic class.
pub fn attack_type(d: &Detection) -> String {
    match d {
        Detection::Attack(u) => match u.report().summary.attack_type {
            Some(t) => t.name().to_string(),
            None => format!("{}-flood", u.id().class.name()),
        },
        Detection::Scan(s) => match s.kind {
            ScanKind::PortScan => "port-scan".into(),
            ScanKind::HostSweep => "host-sweep".into(),
        },
    }
}

/// The JSON envelope of one detection (stdout of `--json`, stdin of the hook).
pub fn envelope(d: &Detection) -> serde_json::Value {
    let m = d.message();
    let mut doc = serde_json::json!({
        "event-time": m.common.event_time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        "phase": phase(d),
        "notification": pharos_model::json::encode(m),
    });
    if let Detection::Attack(u) = d {
        doc["attack-id"] = u.id().to_string().into();
    }
    doc
}

/// One readable line: time, phase, kind, attack type, victim, rates, rule.
pub fn readable(d: &Detection) -> String {
    let m = d.message();
    let time = m
        .common
        .event_time
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    match d {
        Detection::Attack(u) => {
            let s = &u.report().summary;
            format!(
                "{time} {:<7} {} {:<18} victim={} avg={:.0} pps {} peak={:.0} pps {} rule={:?}",
                u.phase(),
                m.kind.name(),
                attack_type(d),
                u.id().victim,
                s.avg_pps,
                bits(s.avg_bytes_ps),
                s.peak_pps,
                bits(s.peak_bytes_ps),
                s.rule
            )
        }
        Detection::Scan(s) => {
            let target = match (s.dst, s.port) {
                (Some(h), _) => format!("host={h}"),
                (None, Some(p)) => format!("port={p}"),
                (None, None) => String::new(),
            };
            format!(
                "{time} scan    {} {:<18} src={} {target} distinct={}{}",
                m.kind.name(),
                attack_type(d),
                s.src,
                s.distinct,
                m.rule_name()
                    .map(|r| format!(" rule={r:?}"))
                    .unwrap_or_default()
            )
        }
    }
}

/// Bytes/s as bit/s with a unit.
fn bits(bytes_ps: f64) -> String {
    let b = bytes_ps * 8.0;
    match b {
        b if b >= 1e9 => format!("{:.2} Gbit/s", b / 1e9),
        b if b >= 1e6 => format!("{:.2} Mbit/s", b / 1e6),
        b if b >= 1e3 => format!("{:.1} kbit/s", b / 1e3),
        b => format!("{b:.0} bit/s"),
    }
}

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
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(cfg.timeout_seconds);
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
                tracing::warn!(command = %cfg.command, timeout_s = cfg.timeout_seconds, phase,
                    "detect hook timed out and was killed");
                return Err("timeout");
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(_) => return Err("exit"),
        }
    }
}
