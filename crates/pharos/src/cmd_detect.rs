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
use pharos_detect::{DetectConfig, Detection, Detector};

use crate::detect_stage::render::{envelope, phase, readable};

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
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut found = Vec::new();
    let mut tally = Tally::default();
    let (mut last_tick, mut last_ts) = (0u64, 0u64);
    let (capture, write_err) = crate::cmd_decode::decode_capture(&args.file, |ts_ms, batch| {
        last_ts = last_ts.max(ts_ms);
        if !batch.is_empty() {
            detector.process(batch, last_ts, &mut found);
        }
        if last_ts >= last_tick.saturating_add(1000) {
            detector.tick(last_ts, &mut found);
            last_tick = last_ts;
        }
        emit(&mut out, &mut found, &mut tally, args.json)
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
        capture.flows,
        capture.datagrams,
        capture.not_flows,
        tally.started,
        tally.updated,
        tally.ended,
        tally.scans,
        capture.damage_note()
    );
    Ok(())
}

#[derive(Debug, Default)]
struct Tally {
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
