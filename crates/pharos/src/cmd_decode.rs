//! `pharos decode FILE.pcap|pcapng... [--json] [--stats]`: decodes every NetFlow v5/v9, IPFIX
//! and sFlow v5 datagram of captures, file after file, each in capture order, with template state
//! carried across the datagrams of a file (the capture timestamps are the receive times).
//!
//! Output: one flow per line on stdout, a table by default or JSON objects with `--json`. UDP
//! datagrams that are not flow exports are counted and skipped. `--stats` prints per-protocol
//! counts, drops per reason and sequence losses per exporter on **stderr** after the flows, so
//! stdout stays a clean stream of flows. Data that never met its template is always named on
//! stderr. Exit status 0 when every capture was read to its end; a capture that cannot be read
//! is named on stderr and the others are still decoded.
//!
//! The table (shared with `pharos flows query`) fits [`TABLE_WIDTH`] columns: a row whose
//! addresses are too long for their columns (long IPv6 addresses) wraps onto a second line.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use pharos_model::flow::{FlowBatch, FlowRecord};
use pharos_model::text::{printable, printable_bytes};
use pharos_wire::decoder::{TemplateRef, Undecoded};
use pharos_wire::{DecoderConfig, FlowDecoder};

/// Arguments of `pharos decode`.
#[derive(clap::Args, Debug)]
pub struct DecodeArgs {
    /// Capture files: pcap or pcapng, decoded one after the other.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
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

/// `path` as printed by a command itself: control characters and bytes that are not UTF-8
/// escaped. (Errors returned to `main` quote paths as they are: `main` escapes what it prints.)
pub(crate) fn shown(path: &Path) -> Cow<'_, str> {
    printable_bytes(path.as_os_str().as_encoded_bytes())
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
                damaged = Some(printable(&e.to_string()).into_owned());
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
    /// Data sets dropped because their template was unknown, per template.
    pub no_template: BTreeMap<TemplateRef, Undecoded>,
    /// The same, over all templates (some may not be named in `no_template`).
    pub no_template_sets: u64,
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

    /// Why data was not decoded, one line per template (see [`no_template_notes`]).
    pub fn no_template_notes(&self) -> Vec<String> {
        no_template_notes(&self.no_template, self.no_template_sets)
    }
}

/// Templates named one by one in [`no_template_notes`]; the rest are summed.
const NOTES_NAMED: usize = 5;

/// One line per template whose data arrived before it and was dropped, e.g. `1,234 data records
/// (12 data sets) arrived before their template (v9 template 256 from 10.0.0.1 domain 0) and
/// could not be decoded`, then what to do about it. Empty when nothing was dropped.
pub fn no_template_notes(map: &BTreeMap<TemplateRef, Undecoded>, total_sets: u64) -> Vec<String> {
    if total_sets == 0 {
        return Vec::new();
    }
    let mut rows: Vec<(&TemplateRef, &Undecoded)> = map.iter().collect();
    rows.sort_by(|a, b| b.1.sets.cmp(&a.1.sets).then(a.0.cmp(b.0)));
    let mut out: Vec<String> = rows
        .iter()
        .take(NOTES_NAMED)
        .map(|(t, u)| {
            let what = match u.records {
                Some(r) => format!(
                    "{} data records ({} data sets)",
                    crate::cmd_flows::group(r),
                    crate::cmd_flows::group(u.sets)
                ),
                None => format!(
                    "{} data sets ({} bytes; the template never came, so their records cannot be counted)",
                    crate::cmd_flows::group(u.sets),
                    crate::cmd_flows::group(u.bytes)
                ),
            };
            format!("{what} arrived before their template ({t}) and could not be decoded")
        })
        .collect();
    let named: u64 = rows.iter().take(NOTES_NAMED).map(|(_, u)| u.sets).sum();
    if total_sets > named {
        out.push(format!(
            "{} more data sets of other templates arrived before their template and could not be decoded",
            crate::cmd_flows::group(total_sets - named)
        ));
    }
    let hold = DecoderConfig::default().hold_timeout.as_secs_f64();
    out.push(format!(
        "an exporter's templates must precede its data: data waits at most {hold} s (capture \
         time) for its template; capture from before the exporter starts, or long enough to \
         include a template refresh before the data"
    ));
    out
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
    decoder.finish();
    counts.no_template = decoder.stats().no_template.clone();
    counts.no_template_sets = decoder.stats().no_template_sets;
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
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    // The header comes with the first flow: a file that is not a capture prints only its error.
    let mut header = !args.json;
    let mut failed = Vec::new();
    for file in &args.files {
        match decode_file(file, &args, &mut out, &mut header) {
            Ok(()) => {}
            Err(e) if is_broken_pipe(&e) => return Ok(()),
            Err(e) if args.files.len() == 1 => return Err(e),
            Err(e) => {
                let _ = out.flush();
                eprintln!("pharos decode: {}", printable(&format!("{e:#}")));
                failed.push(file.display().to_string());
            }
        }
    }
    match out.flush() {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        r => r.context("writing flows to stdout")?,
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {} captures could not be read to their end: {}; the flows of the others were printed",
            failed.len(),
            args.files.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Decodes one capture onto `out` (the table header first when `header` is still due).
fn decode_file(
    file: &Path,
    args: &DecodeArgs,
    out: &mut impl Write,
    header: &mut bool,
) -> anyhow::Result<()> {
    let mut decoder = FlowDecoder::new(DecoderConfig::default());
    let mut batch = FlowBatch::with_capacity(1024);
    let mut stats = Stats::default();
    let mut write_err: Option<std::io::Error> = None;
    let summary = read_udp_datagrams(file, |ts_ms, src, _dst, payload| {
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
        if *header && !batch.is_empty() {
            *header = false;
            if let Err(e) = write_header(out) {
                write_err = Some(e);
                return;
            }
        }
        if let Err(e) = write_batch(out, &batch, args.json) {
            write_err = Some(e);
        }
        batch.clear();
    })?;
    if let Some(e) = write_err {
        return Err(anyhow::Error::new(e).context("writing flows to stdout"));
    }
    decoder.finish();
    out.flush()?;
    if args.stats {
        print_stats(file, &stats, &summary, &decoder);
    }
    for note in no_template_notes(
        &decoder.stats().no_template,
        decoder.stats().no_template_sets,
    ) {
        eprintln!("pharos decode: {}: {note}", shown(file));
    }
    if let Some(e) = summary.damaged {
        anyhow::bail!(
            "{}: capture damaged after {} UDP datagrams: {e}; the flows before it were printed",
            file.display(),
            stats.udp
        );
    }
    Ok(())
}

/// Width the flow table fits in (with any address: rows whose addresses are too long for their
/// columns wrap onto a second line).
pub(crate) const TABLE_WIDTH: usize = 120;
/// Width of the address:port columns: an IPv4 address and port (`255.255.255.255:65535`).
const ENDPOINT: usize = 21;
/// Where the source column starts (after start, duration and protocol).
const SRC_COLUMN: usize = 23 + 1 + 8 + 1 + 5 + 1;
/// Where the flags column starts.
const FLAGS_COLUMN: usize = SRC_COLUMN + ENDPOINT + 4 + ENDPOINT + 1;

/// The flow table's header line.
pub(crate) fn write_header(out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<23} {:>8} {:<5} {:<ENDPOINT$}    {:<ENDPOINT$} {:<8} {:>7} {:>7}",
        "start (UTC)",
        "dur s",
        "proto",
        "src addr:port",
        "dst addr:port",
        "flags",
        "packets",
        "bytes",
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

/// The protocol as tables show it: its name upper-cased as nfdump prints it (`TCP`, `ICMP6`),
/// else its number. `--json` keeps the number.
pub(crate) fn proto_name(p: u8) -> Cow<'static, str> {
    match pharos_flows::filter::protocol_name(p) {
        Some(n) => Cow::Owned(n.to_ascii_uppercase()),
        None => Cow::Owned(p.to_string()),
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

/// `192.0.2.1:443`, `[2001:db8::1]:443`.
fn endpoint(a: IpAddr, port: u16) -> String {
    match a {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// A count in at most 7 characters, as nfdump scales them: exact below a million, else with
/// one decimal and M, G, T, P or E (powers of 1000). `--json` keeps the exact number.
pub(crate) fn scaled(n: u64) -> String {
    if n < 1_000_000 {
        return n.to_string();
    }
    let mut v = n as f64 / 1e6;
    for unit in ["M", "G", "T", "P"] {
        // 999.95 would print as "1000.0": move to the next unit instead.
        if v < 999.95 {
            return format!("{v:.1} {unit}");
        }
        v /= 1000.0;
    }
    format!("{v:.1} E")
}

/// `12.345`: a duration in seconds with milliseconds.
fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// One flow of the table: one line, or two when an address does not fit its column (the second
/// line carries the destination under the source, the rest in their columns).
pub(crate) fn write_row(out: &mut impl Write, r: &FlowRecord) -> std::io::Result<()> {
    let start = chrono::DateTime::from_timestamp_millis(r.start_ms as i64)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| r.start_ms.to_string());
    let src = endpoint(r.src_addr, r.src_port);
    let dst = endpoint(r.dst_addr, r.dst_port);
    let flags = if r.proto == 6 {
        tcp_flags(r.tcp_flags)
    } else {
        String::new()
    };
    let lead = format!(
        "{:<23} {:>8} {:<5}",
        start,
        seconds(r.end_ms.saturating_sub(r.start_ms)),
        proto_name(r.proto)
    );
    let tail = format!(
        "{:<8} {:>7} {:>7}",
        flags,
        scaled(r.packets),
        scaled(r.bytes)
    );
    if src.len() <= ENDPOINT && dst.len() <= ENDPOINT {
        return writeln!(out, "{lead} {src:<ENDPOINT$} -> {dst:<ENDPOINT$} {tail}");
    }
    let dst_width = FLAGS_COLUMN - 1 - SRC_COLUMN - 3;
    writeln!(out, "{lead} {src}")?;
    writeln!(out, "{:SRC_COLUMN$}-> {dst:<dst_width$} {tail}", "")
}

fn print_stats(file: &Path, s: &Stats, c: &CaptureSummary, decoder: &FlowDecoder) {
    let mut e = std::io::stderr().lock();
    let flows: u64 = s.per_protocol.values().map(|v| v.1).sum();
    let datagrams: u64 = s.per_protocol.values().map(|v| v.0).sum();
    let _ = writeln!(
        e,
        "# {}: {} packets, {} UDP datagrams, {datagrams} flow datagrams, {flows} flows",
        shown(file),
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

    #[test]
    fn protocols_print_by_name_upper_case_else_by_number() {
        assert_eq!(proto_name(6), "TCP");
        assert_eq!(proto_name(17), "UDP");
        assert_eq!(proto_name(58), "ICMP6");
        assert_eq!(proto_name(253), "253");
    }

    #[test]
    fn counts_scale_like_nfdump_within_seven_characters() {
        assert_eq!(scaled(999_999), "999999");
        assert_eq!(scaled(1_234_567), "1.2 M");
        assert_eq!(scaled(999_960_000), "1.0 G");
        assert_eq!(scaled(123_456_789_012), "123.5 G");
        assert_eq!(scaled(u64::MAX), "18.4 E");
        for n in [
            0,
            999_999,
            999_949_999,
            999_999_999_999_999,
            u64::MAX / 1000,
        ] {
            assert!(scaled(n).len() <= 7, "{n}: {}", scaled(n));
        }
    }

    fn table(r: &FlowRecord) -> String {
        let mut out = Vec::new();
        write_header(&mut out).unwrap();
        write_row(&mut out, r).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_widest_rows_fit_the_table_width_and_long_addresses_wrap() {
        let wide = FlowRecord {
            start_ms: 1_764_000_000_123,
            end_ms: 1_764_009_999_999,
            proto: 6,
            tcp_flags: 0xff,
            src_addr: "255.255.255.255".parse().unwrap(),
            dst_addr: "255.255.255.254".parse().unwrap(),
            src_port: 65535,
            dst_port: 65535,
            packets: u64::MAX,
            bytes: 999_999,
            ..FlowRecord::default()
        };
        let t = table(&wide);
        assert_eq!(t.lines().count(), 2, "IPv4 rows take one line:\n{t}");
        let v6 = FlowRecord {
            src_addr: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap(),
            dst_addr: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe".parse().unwrap(),
            ..wide
        };
        let t6 = table(&v6);
        assert_eq!(t6.lines().count(), 3, "a long IPv6 row wraps:\n{t6}");
        for line in t.lines().chain(t6.lines()) {
            assert!(
                line.chars().count() <= TABLE_WIDTH,
                "{} > {TABLE_WIDTH}: {line}",
                line.len()
            );
        }
        // The header's columns sit over the values.
        let header = t.lines().next().unwrap();
        let row = t.lines().nth(1).unwrap();
        assert_eq!(header.find("flags"), row.find("CEUAPRSF"));
        let wrapped = t6.lines().nth(2).unwrap();
        assert!(
            wrapped.contains("-> [ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:65535"),
            "{wrapped}"
        );
        assert!(
            t6.contains("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
            "{t6}"
        );
    }
}
