//! `pharos decode FILE.pcap|pcapng [--json] [--stats]`: decodes every NetFlow v5/v9, IPFIX and
//! sFlow v5 datagram of a capture, in capture order, with template state carried across
//! datagrams (the capture timestamps are the receive times).
//!
//! Output: one flow per line on stdout, a table by default or JSON objects with `--json`. UDP
//! datagrams that are not flow exports are counted and skipped. `--stats` prints per-protocol
//! counts, drops per reason and sequence losses per exporter on **stderr** after the flows, so
//! stdout stays a clean stream of flows. Exit status 0 when the capture was read to its end.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use pharos_model::flow::{FlowBatch, FlowRecord};
use pharos_wire::{DecoderConfig, FlowDecoder};

/// Arguments of `pharos decode`.
#[derive(clap::Args, Debug)]
pub struct DecodeArgs {
    /// Capture file: pcap or pcapng.
    pub file: PathBuf,
    /// One JSON object per flow and line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// After the flows, print counts per protocol, drops per reason and sequence losses on stderr.
    #[arg(long)]
    pub stats: bool,
}

/// What reading a capture found besides the UDP datagrams.
#[derive(Debug, Default)]
pub struct CaptureSummary {
    /// Packet and skip counters of the capture reader.
    pub pcap: pharos_wire::pcap::PcapStats,
    /// Set when the capture ends in a damaged record (e.g. cut short): what the reader said.
    pub damaged: Option<String>,
}

/// Calls `f(timestamp_ms, source, destination, payload)` for every UDP datagram of a pcap or
/// pcapng file, in capture order. An unreadable file is an error; a capture damaged part-way is
/// read up to the damage, which the summary reports.
pub fn read_udp_datagrams(
    path: &Path,
    mut f: impl FnMut(u64, SocketAddr, SocketAddr, &[u8]),
) -> anyhow::Result<CaptureSummary> {
    let data = std::fs::read(path).with_context(|| {
        format!(
            "cannot read capture {}; check the path and permissions",
            path.display()
        )
    })?;
    let mut capture = pharos_wire::pcap::Capture::new(&data).map_err(|e| {
        anyhow::anyhow!(
            "{}: not a readable pcap or pcapng capture ({e}); give a file written by tcpdump, tshark or dumpcap",
            path.display()
        )
    })?;
    let mut damaged = None;
    for d in &mut capture {
        match d {
            Ok(d) => f(d.timestamp_ms, d.src, d.dst, d.payload),
            Err(e) => {
                damaged = Some(e.to_string());
                break;
            }
        }
    }
    Ok(CaptureSummary {
        pcap: *capture.stats(),
        damaged,
    })
}

/// What [`decode_capture`] read.
#[derive(Debug, Default)]
pub struct DecodedCapture {
    /// UDP datagrams in the capture.
    pub datagrams: u64,
    /// Datagrams that were not flow exports, or were damaged.
    pub not_flows: u64,
    /// Flows decoded.
    pub flows: u64,
    /// What the capture reader found besides the datagrams.
    pub summary: CaptureSummary,
}

impl DecodedCapture {
    /// `"; the capture is damaged after that: ..."`, or nothing.
    pub fn damage_note(&self) -> String {
        self.summary
            .damaged
            .as_deref()
            .map(|d| format!("; the capture is damaged after that: {d}"))
            .unwrap_or_default()
    }
}

/// Decodes the flow export datagrams of a capture in order, templates carried across datagrams,
/// and calls `f(timestamp_ms, flows)` after every datagram (`flows` empty when it held none).
/// After the first error of `f` the capture is still counted but `f` is not called again; that
/// error is returned beside the counts.
pub fn decode_capture<E>(
    path: &Path,
    mut f: impl FnMut(u64, &FlowBatch) -> Result<(), E>,
) -> anyhow::Result<(DecodedCapture, Option<E>)> {
    let mut decoder = FlowDecoder::new(DecoderConfig::default());
    let mut batch = FlowBatch::with_capacity(1024);
    let mut counts = DecodedCapture::default();
    let mut failed = None;
    counts.summary = read_udp_datagrams(path, |ts_ms, src, _dst, payload| {
        counts.datagrams += 1;
        if failed.is_some() {
            return;
        }
        if decoder.decode(src, ts_ms, payload, &mut batch).is_err() {
            counts.not_flows += 1;
        }
        counts.flows += batch.len() as u64;
        if let Err(e) = f(ts_ms, &batch) {
            failed = Some(e);
        }
        batch.clear();
    })?;
    Ok((counts, failed))
}

/// Counts for `--stats`.
#[derive(Debug, Default)]
struct Stats {
    udp: u64,
    per_protocol: BTreeMap<&'static str, (u64, u64)>,
    dropped: BTreeMap<&'static str, u64>,
    lost: BTreeMap<IpAddr, u64>,
}

/// Runs `pharos decode`.
pub fn decode(args: DecodeArgs) -> anyhow::Result<()> {
    let mut decoder = FlowDecoder::new(DecoderConfig::default());
    let mut batch = FlowBatch::with_capacity(1024);
    let mut stats = Stats::default();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut write_err: Option<std::io::Error> = None;
    if !args.json {
        write_header(&mut out)?;
    }
    let summary = read_udp_datagrams(&args.file, |ts_ms, src, _dst, payload| {
        stats.udp += 1;
        if write_err.is_some() {
            return;
        }
        match decoder.decode(src, ts_ms, payload, &mut batch) {
            Ok(o) => {
                let e = stats
                    .per_protocol
                    .entry(pharos_sources::flow::protocol_label(o.protocol))
                    .or_default();
                e.0 += 1;
                e.1 += o.flows as u64;
                if o.lost > 0 {
                    *stats.lost.entry(src.ip()).or_default() += o.lost;
                }
            }
            Err(e) => {
                *stats
                    .dropped
                    .entry(pharos_sources::flow::drop_reason(&e))
                    .or_default() += 1;
            }
        }
        if let Err(e) = write_batch(&mut out, &batch, args.json) {
            write_err = Some(e);
        }
        batch.clear();
    })?;
    if let Some(e) = write_err {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Ok(());
        }
        return Err(e).context("writing flows to stdout");
    }
    match out.flush() {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        r => r.context("writing flows to stdout")?,
    }
    if args.stats {
        print_stats(&args.file, &stats, &summary, &decoder);
    }
    if let Some(e) = summary.damaged {
        anyhow::bail!(
            "{}: capture damaged after {} UDP datagrams: {e}; the flows before it were printed",
            args.file.display(),
            stats.udp
        );
    }
    Ok(())
}

pub(crate) fn write_header(out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<23} {:>8} {:<5} {:>39} {:>5}    {:>39} {:>5} {:>6} {:>10} {:>12} {:<15}",
        "start (UTC)",
        "dur ms",
        "proto",
        "src addr",
        "port",
        "dst addr",
        "port",
        "flags",
        "packets",
        "bytes",
        "exporter"
    )
}

fn write_batch(out: &mut impl Write, batch: &FlowBatch, json: bool) -> std::io::Result<()> {
    for r in batch.iter() {
        if json {
            serde_json::to_writer(&mut *out, &r.to_json())?;
            out.write_all(b"\n")?;
        } else {
            write_row(out, &r)?;
        }
    }
    Ok(())
}

fn proto_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        47 => "gre".into(),
        50 => "esp".into(),
        58 => "icmp6".into(),
        132 => "sctp".into(),
        n => n.to_string(),
    }
}

fn tcp_flags(f: u8) -> String {
    // nfdump's order and letters: C E U A P R S F.
    const LETTERS: [(u8, char); 8] = [
        (0x80, 'C'),
        (0x40, 'E'),
        (0x20, 'U'),
        (0x10, 'A'),
        (0x08, 'P'),
        (0x04, 'R'),
        (0x02, 'S'),
        (0x01, 'F'),
    ];
    LETTERS
        .iter()
        .map(|&(bit, c)| if f & bit != 0 { c } else { '.' })
        .collect()
}

pub(crate) fn write_row(out: &mut impl Write, r: &FlowRecord) -> std::io::Result<()> {
    let start = chrono::DateTime::from_timestamp_millis(r.start_ms as i64)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| r.start_ms.to_string());
    writeln!(
        out,
        "{:<23} {:>8} {:<5} {:>39} {:>5} -> {:>39} {:>5} {:>6} {:>10} {:>12} {:<15}",
        start,
        r.end_ms.saturating_sub(r.start_ms),
        proto_name(r.proto),
        r.src_addr.to_string(),
        r.src_port,
        r.dst_addr.to_string(),
        r.dst_port,
        if r.proto == 6 {
            tcp_flags(r.tcp_flags)
        } else {
            String::new()
        },
        r.packets,
        r.bytes,
        r.exporter.to_string()
    )
}

fn print_stats(file: &Path, s: &Stats, c: &CaptureSummary, decoder: &FlowDecoder) {
    let mut e = std::io::stderr().lock();
    let flows: u64 = s.per_protocol.values().map(|v| v.1).sum();
    let datagrams: u64 = s.per_protocol.values().map(|v| v.0).sum();
    let _ = writeln!(
        e,
        "# {}: {} packets, {} UDP datagrams, {datagrams} flow datagrams, {flows} flows",
        file.display(),
        c.pcap.packets,
        s.udp
    );
    let skipped = c.pcap.non_udp + c.pcap.fragments + c.pcap.unsupported_link;
    if skipped > 0 || c.pcap.truncated > 0 {
        let _ = writeln!(
            e,
            "capture: skipped {} non-UDP, {} fragments, {} on unsupported links; {} UDP payloads cut by the snap length",
            c.pcap.non_udp, c.pcap.fragments, c.pcap.unsupported_link, c.pcap.truncated
        );
    }
    for (r, n) in &s.dropped {
        let _ = writeln!(e, "datagrams refused: {n} {r}");
    }
    for (x, n) in &s.lost {
        let _ = writeln!(e, "sequence loss: exporter {x}: {n}");
    }
    let _ = write!(e, "{}", decoder.stats());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_flags_print_like_nfdump() {
        assert_eq!(tcp_flags(0x12), "...A..S.");
        assert_eq!(tcp_flags(0x1b), "...AP.SF");
    }
}
