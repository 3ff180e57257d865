//! `pharos parse`: normalises log lines offline, one output line per input line (blank lines are
//! skipped). Lines no normaliser understands are printed as generic logs and counted on stderr;
//! `--stats` prints instead what each format made of the lines (typed, generic with fields,
//! unparsed) with a few unparsed examples, so an operator sees what falls through on their own
//! logs. The exit code is 0 unless the input cannot be read or the arguments are wrong.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use pharos_model::Message;
use pharos_normalize::{Format, normalize};
use pharos_wire::syslog::{ParseOptions, TimeZone, parse};

use crate::syslog_stage::log_input;

/// Arguments of `pharos parse`.
#[derive(clap::Args)]
pub struct ParseArgs {
    /// Log format: "auto" (detect per line) or a format name (fortigate, panos, cisco-asa, ...).
    #[arg(long, default_value = "auto")]
    format: String,
    /// Input file; "-" or nothing reads standard input.
    file: Option<PathBuf>,
    /// One JSON object per line: {"event-time", "format", "notification" (YANG-JSON), "raw"}.
    #[arg(long)]
    json: bool,
    /// Print, instead of the messages, a table of what each format made of the lines: typed (an
    /// I2NSF case), fields (a generic log that keeps the vendor's fields), unparsed (raw text
    /// only), with up to 3 unparsed examples per format. With --json, the messages go to
    /// standard output and the table to standard error.
    #[arg(long)]
    stats: bool,
    /// nsf-name for the messages (default: the syslog header hostname, else "local").
    #[arg(long)]
    nsf: Option<String>,
    /// Zone of RFC 3164 header timestamps: "UTC", "local" or an offset like "+01:00".
    #[arg(long, default_value = "UTC")]
    timezone: String,
    /// How far in the future an RFC 3164 timestamp (which has no year) may be and still get this
    /// year; beyond, last year (as `[syslog] year_margin`): "1d", "12h", "0s".
    #[arg(long, default_value = "1d")]
    year_margin: String,
}

/// Runs `pharos parse`.
pub fn parse_cmd(args: ParseArgs) -> anyhow::Result<()> {
    let format: Format = args
        .format
        .parse()
        .map_err(|e| anyhow::anyhow!("--format {}: {e}", args.format))?;
    let tz = TimeZone::parse(&args.timezone).ok_or_else(|| {
        anyhow::anyhow!(
            "--timezone {:?}: expected \"UTC\", \"local\" or an offset like \"+01:00\"",
            args.timezone
        )
    })?;
    let year_margin = pharos_model::config::ConfigDuration::parse(&args.year_margin)
        .ok()
        .and_then(|d| chrono::TimeDelta::from_std(d.get()).ok())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--year-margin {:?}: expected a duration like \"1d\", \"12h\" or \"0s\"",
                args.year_margin
            )
        })?;
    let input: Box<dyn BufRead> = match args.file.as_deref() {
        None => Box::new(std::io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdin().lock()),
        Some(p) => Box::new(std::io::BufReader::new(
            std::fs::File::open(p).with_context(|| {
                format!(
                    "cannot open {}; give a readable file or - for stdin",
                    p.display()
                )
            })?,
        )),
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    let (mut total, mut unparsed) = (0u64, 0u64);
    let mut stats = Stats::default();
    let mut buf = Vec::new();
    let mut reader = input;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .context("reading the input")?;
        if n == 0 {
            break;
        }
        while let [rest @ .., b'\n' | b'\r'] = buf.as_slice() {
            buf.truncate(rest.len());
        }
        if buf.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let line = String::from_utf8_lossy(&buf);
        let now = chrono::Utc::now();
        let opts = ParseOptions {
            tz,
            received: now,
            year_margin,
        };
        let header = parse(&line, &opts);
        let input = log_input(&header, &line, None);
        let nsf = args.nsf.as_deref().or(input.host).unwrap_or("local");
        let n = normalize(&input, format, nsf);
        total += 1;
        if !n.parsed {
            unparsed += 1;
        }
        if args.stats {
            stats.add(&n, &line);
        }
        let written = if args.stats && !args.json {
            Ok(())
        } else if args.json {
            let doc = serde_json::json!({
                "event-time": n.message.common.event_time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                "format": n.format,
                "notification": pharos_model::json::encode(&n.message),
                "raw": line,
            });
            writeln!(out, "{doc}")
        } else {
            writeln!(out, "{}", summary(&n.message, n.format, n.parsed))
        };
        if let Err(e) = written {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e).context("writing the output");
        }
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(e).context("writing the output");
        }
        _ => {}
    }
    if args.stats {
        let table = stats.table(total);
        if args.json {
            eprint!("{table}");
        } else {
            print!("{table}");
        }
    }
    eprintln!(
        "pharos parse: {total} lines, {} parsed, {unparsed} unparsed (kept as generic logs with their raw text)",
        total - unparsed
    );
    Ok(())
}

/// Unparsed examples kept per format by `--stats`.
const EXAMPLES: usize = 3;

/// What `--stats` counts: per format, lines by outcome and a few unparsed examples.
#[derive(Default)]
struct Stats {
    per: std::collections::BTreeMap<&'static str, FormatStats>,
}

#[derive(Default)]
struct FormatStats {
    typed: u64,
    fields: u64,
    unparsed: u64,
    examples: Vec<String>,
}

impl Stats {
    fn add(&mut self, n: &pharos_normalize::Normalized, line: &str) {
        let f = self.per.entry(n.format).or_default();
        match crate::syslog_stage::outcome(n) {
            "typed" => f.typed += 1,
            "fields" => f.fields += 1,
            _ => {
                f.unparsed += 1;
                if f.examples.len() < EXAMPLES {
                    // network text: escaped before it reaches a terminal
                    let cut: String = line.chars().take(160).collect();
                    f.examples
                        .push(pharos_model::text::printable(&cut).into_owned());
                }
            }
        }
    }

    /// The table, most lines first; `generic` is the lines no format recognised.
    fn table(&self, total: u64) -> String {
        let mut rows: Vec<(&&str, &FormatStats)> = self.per.iter().collect();
        rows.sort_by_key(|(name, f)| (std::cmp::Reverse(f.typed + f.fields + f.unparsed), **name));
        let pct = |n: u64| {
            if total == 0 {
                0.0
            } else {
                n as f64 * 100.0 / total as f64
            }
        };
        let mut s = format!(
            "{:<16} {:>9} {:>9} {:>9} {:>9} {:>7}\n",
            "format", "lines", "typed", "fields", "unparsed", "share"
        );
        for (name, f) in &rows {
            let lines = f.typed + f.fields + f.unparsed;
            s.push_str(&format!(
                "{:<16} {:>9} {:>9} {:>9} {:>9} {:>6.1}%\n",
                name,
                lines,
                f.typed,
                f.fields,
                f.unparsed,
                pct(lines)
            ));
        }
        let recognised: u64 = rows
            .iter()
            .filter(|(n, _)| **n != "generic")
            .map(|(_, f)| f.typed + f.fields + f.unparsed)
            .sum();
        let kept: u64 = rows.iter().map(|(_, f)| f.typed + f.fields).sum();
        s.push_str(&format!(
            "{:<16} {:>9}   recognised {:.1}%, with fields {:.1}%\n",
            "total",
            total,
            pct(recognised),
            pct(kept)
        ));
        for (name, f) in rows.iter().filter(|(_, f)| !f.examples.is_empty()) {
            s.push_str(&format!("unparsed {name}:\n"));
            for e in &f.examples {
                s.push_str(&format!("  {e}\n"));
            }
        }
        s
    }
}

/// One readable line: time, format, kind, severity, NSF, then the fields that matter.
fn summary(m: &Message, format: &str, parsed: bool) -> String {
    let c = &m.common;
    let mut s = format!(
        "{} {:<13} {:<24} {:<8} nsf={}",
        c.event_time
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        format,
        m.kind.name(),
        c.severity.as_str(),
        c.nsf_name
    );
    for (role, a) in m.addresses() {
        let r = match role {
            pharos_model::AddrRole::Src => "src",
            pharos_model::AddrRole::Dst => "dst",
        };
        s.push_str(&format!(" {r}={a}"));
    }
    if let Some(rule) = m.rule_name() {
        s.push_str(&format!(" rule={rule:?}"));
    }
    if let Some(text) = &c.message {
        s.push_str(&format!(" msg={text:?}"));
    }
    if let Some(f) = &c.fields {
        if let Some(u) = &f.user {
            s.push_str(&format!(" user={u:?}"));
        }
        if let Some(u) = &f.url {
            s.push_str(&format!(" url={u:?}"));
        }
    }
    if !parsed {
        let raw = c.raw.as_deref().unwrap_or("");
        let cut: String = raw.chars().take(120).collect();
        s.push_str(&format!(" unparsed raw={cut:?}"));
    }
    s
}
