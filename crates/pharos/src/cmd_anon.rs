//! `pharos anon`: Crypto-PAn pseudonymisation offline (docs/sharing.md). `addr` maps plain
//! addresses, one per argument or stdin line, so anyone can check vectors or map a list; `json`
//! maps every address of JSON documents (I2NSF messages, exports), one per line; `pcap` a
//! capture; `flows` copies a flow archive. The key comes from `--key-file` or `--key-hex` (or
//! `PHAROS_ANON_KEY_HEX`), else from `[anon]` in the configuration (with rotation by date: each
//! record takes the key valid at its time); it is never printed.

use std::io::{BufRead, BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;
use pharos_anon::{CryptoPan, Key, KeyRing, anonymize_flows_dated, anonymize_json};

/// Where the key comes from: at most one of the two, else the configuration's `[anon]`.
#[derive(clap::Args)]
#[group(required = false, multiple = false)]
pub struct KeyArgs {
    /// The 32-byte key as 64 hex digits, optionally 0x-prefixed (nfanon's -K form). Prefer
    /// --key-file or the environment: command lines are visible to other local users.
    #[arg(long, env = "PHAROS_ANON_KEY_HEX", hide_env_values = true)]
    key_hex: Option<String>,
    /// A file holding the key: 32 raw bytes, or 64 hex digits.
    #[arg(long)]
    key_file: Option<PathBuf>,
}

/// The key arguments and the configuration they fall back to.
#[derive(clap::Args)]
pub struct Keys {
    #[command(flatten)]
    key: KeyArgs,
    /// The configuration whose [anon] keys are used when neither --key-hex nor --key-file is
    /// given (default ./pharos.toml when it exists).
    #[arg(long)]
    config: Option<PathBuf>,
}

impl Keys {
    /// The keys: the one given on the command line for every date, else the configuration's.
    fn ring(&self) -> anyhow::Result<KeyRing> {
        let key = match (&self.key.key_hex, &self.key.key_file) {
            (Some(hex), _) => Key::from_hex(hex).context("--key-hex")?,
            (None, Some(path)) => Key::from_file(path)?,
            (None, None) => {
                let (cfg, origin) = crate::config::Config::load(self.config.as_deref())?;
                return cfg
                    .anon
                    .key_ring()
                    .with_context(|| format!("keys from {origin}"));
            }
        };
        Ok(KeyRing::single(CryptoPan::new(&key)))
    }
}

/// The key of `ring` valid at `date` (`YYYY-MM-DD`, UTC midnight), else now.
fn key_on<'a>(ring: &'a KeyRing, date: Option<&str>) -> anyhow::Result<&'a CryptoPan> {
    let ms = match date {
        Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp_millis())
            .with_context(|| format!("--date {d:?}: expected a date like 2026-01-31"))?,
        None => chrono::Utc::now().timestamp_millis(),
    };
    ring.at(ms).with_context(|| {
        format!(
            "no [anon] key is valid on that date (the first [[anon.key]] starts {}): give --date, or a key_file in [anon]",
            ring.first_date().unwrap_or_default()
        )
    })
}

/// The first `event-time` (RFC 3339) anywhere in a document, Unix ms.
fn event_time(doc: &serde_json::Value) -> Option<i64> {
    match doc {
        serde_json::Value::Object(m) => {
            if let Some(t) = m.get("event-time").and_then(|v| v.as_str())
                && let Ok(t) = chrono::DateTime::parse_from_rfc3339(t)
            {
                return Some(t.timestamp_millis());
            }
            m.values().find_map(event_time)
        }
        serde_json::Value::Array(a) => a.iter().find_map(event_time),
        _ => None,
    }
}

/// `pharos anon` subcommands.
#[derive(Subcommand)]
pub enum AnonCommand {
    /// Maps addresses (or prefixes such as 192.0.2.0/24), given as arguments or one per line on
    /// stdin, one pseudonym per line out. IPv4 takes the 32-bit path, anything written in IPv6
    /// form (::ffff:a.b.c.d included) the 128-bit path.
    Addr {
        #[command(flatten)]
        key: Keys,
        /// Map pseudonyms back to the original addresses (needs the same key).
        #[arg(long)]
        reverse: bool,
        /// With rotated [anon] keys: the key valid on this day (YYYY-MM-DD, UTC); default today.
        #[arg(long)]
        date: Option<String>,
        /// Addresses; none reads standard input.
        addrs: Vec<String>,
    },
    /// Replaces every IP address and prefix string of JSON documents (one per line, e.g. the
    /// output of `pharos parse --json` or `pharos events list --json`) by its pseudonym. With
    /// rotated [anon] keys each document takes the key valid at its `event-time`.
    Json {
        #[command(flatten)]
        key: Keys,
        /// Input file; "-" or nothing reads standard input.
        file: Option<PathBuf>,
    },
    /// Writes a copy of a classic pcap capture with every IPv4/IPv6 address of IP headers, ARP
    /// and NetFlow v5 records replaced, checksums fixed (each packet with the key valid at its
    /// capture time).
    Pcap {
        #[command(flatten)]
        key: Keys,
        /// The capture to read (classic pcap; convert pcapng with `editcap -F pcap`).
        input: PathBuf,
        /// The anonymised capture to write (refused if it exists, unless --force).
        output: PathBuf,
        /// Overwrite the output file.
        #[arg(long)]
        force: bool,
    },
    /// Copies the Parquet flow archive of a data directory into another one with every address
    /// column (exporter, source, destination, next hop) anonymised by the family it carries
    /// (each flow with the key valid at its start time); `pharos flows` queries the copy.
    Flows {
        #[command(flatten)]
        key: Keys,
        /// The data directory to read (its flows/ archive).
        #[arg(long)]
        data_dir: PathBuf,
        /// The data directory to write (created; its flows/ must not hold segments yet).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs `pharos anon`.
pub fn anon(command: AnonCommand) -> anyhow::Result<()> {
    match command {
        AnonCommand::Addr {
            key,
            reverse,
            date,
            addrs,
        } => {
            let ring = key.ring()?;
            let cp = key_on(&ring, date.as_deref())?;
            let map = |s: &str| -> Option<String> {
                if reverse {
                    s.parse::<IpAddr>()
                        .ok()
                        .map(|a| cp.deanonymize(a).to_string())
                } else {
                    cp.anonymize_text(s)
                }
            };
            let what = if reverse {
                "an IP address"
            } else {
                "an IP address or prefix"
            };
            if addrs.is_empty() {
                each_line(None, |line| {
                    map(line).ok_or_else(|| format!("{line:?} is not {what}"))
                })
            } else {
                let mut out = BufWriter::new(std::io::stdout().lock());
                let mut bad = 0;
                for (i, a) in addrs.iter().enumerate() {
                    match map(a.trim()) {
                        Some(m) => writeln!(out, "{m}")?,
                        None => {
                            bad += 1;
                            eprintln!("argument {}: {a:?} is not {what}", i + 1);
                        }
                    }
                }
                out.flush()?;
                anyhow::ensure!(
                    bad == 0,
                    "{bad} of {} arguments were not mapped",
                    addrs.len()
                );
                Ok(())
            }
        }
        AnonCommand::Json { key, file } => {
            let ring = key.ring()?;
            let now = chrono::Utc::now().timestamp_millis();
            each_line(file, |line| {
                let mut doc: serde_json::Value =
                    serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
                let at = event_time(&doc).unwrap_or(now);
                let cp = ring.at(at).ok_or_else(|| {
                    format!(
                        "no [anon] key is valid at its event-time (the first [[anon.key]] starts {}); add a key_file to [anon]",
                        ring.first_date().unwrap_or_default()
                    )
                })?;
                anonymize_json(cp, &mut doc);
                Ok(doc.to_string())
            })
        }
        AnonCommand::Pcap {
            key,
            input,
            output,
            force,
        } => pcap(&key.ring()?, &input, &output, force),
        AnonCommand::Flows { key, data_dir, out } => flows(&key.ring()?, &data_dir, &out),
    }
}

/// `pharos anon pcap`.
fn pcap(ring: &KeyRing, input: &Path, output: &Path, force: bool) -> anyhow::Result<()> {
    if output.exists() && !force {
        bail!(
            "{} exists; choose another output file or pass --force",
            output.display()
        );
    }
    let reader = std::io::BufReader::new(
        std::fs::File::open(input).with_context(|| format!("cannot read {}", input.display()))?,
    );
    let tmp = temp_beside(output);
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    let mut writer = BufWriter::new(file);
    let result = pharos_anon::anonymize_pcap_stream(ring, reader, &mut writer)
        .with_context(|| input.display().to_string())
        .and_then(|st| {
            writer.flush()?;
            writer.get_ref().sync_all()?;
            std::fs::rename(&tmp, output)
                .with_context(|| format!("cannot write {}", output.display()))?;
            Ok(st)
        });
    let st = match result {
        Ok(st) => st,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    println!(
        "{}: {} packets: {} IPv4, {} IPv6, {} ARP anonymised, {} NetFlow v5 records, {} other packets copied as they are",
        output.display(),
        st.packets,
        st.ipv4,
        st.ipv6,
        st.arp,
        st.netflow_v5_records,
        st.other
    );
    if st.flow_payloads_kept > 0 {
        eprintln!(
            "warning: {} NetFlow v9/IPFIX/sFlow datagrams: the addresses in their records are NOT anonymised (only v5 is); do not share this capture as is, or export the flows with `pharos flows import` and `pharos anon flows`",
            st.flow_payloads_kept
        );
    }
    Ok(())
}

/// `.<name>.tmp` beside `path`: written first, renamed into place when complete.
fn temp_beside(path: &Path) -> PathBuf {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    dir.join(format!(".{}.tmp", name.unwrap_or_default()))
}

/// `pharos anon flows`: segment by segment, same receive-time names, so the copy partitions
/// and sorts like the original.
fn flows(ring: &KeyRing, src: &Path, dst: &Path) -> anyhow::Result<()> {
    use pharos_flows::segment::{SegmentConfig, SegmentWriter, list_segments, read_segment};
    let src_root = pharos_flows::archive_root(src);
    if !src_root.is_dir() {
        bail!(
            "no flow archive at {}: give the data directory of a Pharos that collects flows",
            src_root.display()
        );
    }
    let dst_root = pharos_flows::archive_root(dst);
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same(src, dst) {
        bail!("--out is the source data directory; give a new directory");
    }
    if !list_segments(&dst_root).is_empty() {
        bail!(
            "{} already holds flow segments; give a new or empty --out directory",
            dst_root.display()
        );
    }
    let mut cfg = SegmentConfig::new(&dst_root);
    cfg.segment = Duration::from_secs(365 * 86_400);
    cfg.retention = Duration::ZERO;
    cfg.memory_budget = u64::MAX / 4;
    cfg.max_held_flows = usize::MAX / 4;
    // one output segment per input segment, under the same name: nothing to merge
    cfg.compact = false;
    let mut writer = SegmentWriter::open(cfg)
        .with_context(|| format!("cannot open the flow archive {}", dst_root.display()))?;
    let started = Instant::now();
    let (mut flows, mut segments) = (0u64, 0u64);
    for s in list_segments(&src_root) {
        let mut batch =
            read_segment(&s.path).with_context(|| format!("reading {}", s.path.display()))?;
        let (missing, earliest) = anonymize_flows_dated(ring, &mut batch);
        if missing > 0 {
            let when = earliest
                .and_then(|t| chrono::DateTime::from_timestamp_millis(t as i64))
                .map(|t| t.to_rfc3339())
                .unwrap_or_default();
            bail!(
                "{}: {missing} flows start before every [[anon.key]] (first at {when}) and [anon] has no default key_file; add one, or a [[anon.key]] with an earlier from date (nothing more was written; delete {} before retrying)",
                s.path.display(),
                dst_root.display()
            );
        }
        writer.push(&batch, s.start_ms);
        writer
            .flush(s.end_ms)
            .with_context(|| format!("writing the copy of {}", s.path.display()))?;
        flows += batch.len() as u64;
        segments += 1;
    }
    writer.close(Duration::from_secs(5));
    println!(
        "anonymised {flows} flows in {segments} segments from {} into {} in {:.1} s",
        src_root.display(),
        dst_root.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Maps each non-blank line of `file` (stdin if none or "-") to one output line; a line that
/// fails is reported on stderr with its number and skipped, and the run fails at the end.
fn each_line(
    file: Option<PathBuf>,
    mut map: impl FnMut(&str) -> Result<String, String>,
) -> anyhow::Result<()> {
    let input: Box<dyn BufRead> = match file.as_deref() {
        None => Box::new(std::io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdin().lock()),
        Some(p) => Box::new(std::io::BufReader::new(
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        )),
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    let (mut bad, mut total) = (0usize, 0usize);
    for (n, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("reading line {}", n + 1))?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        total += 1;
        match map(line) {
            Ok(m) => writeln!(out, "{m}")?,
            Err(why) => {
                bad += 1;
                out.flush()?;
                eprintln!("line {}: {}", n + 1, pharos_model::text::printable(&why));
            }
        }
    }
    out.flush()?;
    anyhow::ensure!(bad == 0, "{bad} of {total} lines were not mapped");
    Ok(())
}
