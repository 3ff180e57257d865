//! `pharos parse`: normalises log lines offline, one output line per input line (blank lines are
//! skipped). Lines no normaliser understands are printed as generic logs and counted on stderr;
//! the exit code is 0 unless the input cannot be read or the arguments are wrong.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use pharos_model::{Kind, Message};
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
        let written = if args.json {
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
    eprintln!(
        "pharos parse: {total} lines, {} parsed, {unparsed} unparsed (kept as generic logs with their raw text)",
        total - unparsed
    );
    Ok(())
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
    if !parsed || matches!(m.kind, Kind::GenericLog(_)) {
        let raw = c.raw.as_deref().unwrap_or("");
        let cut: String = raw.chars().take(120).collect();
        s.push_str(&format!(" unparsed raw={cut:?}"));
    }
    s
}
