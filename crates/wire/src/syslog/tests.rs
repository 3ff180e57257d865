//! Header parsing against rsyslog's own parser tests, plus unit tests of the parser and framing.

use std::path::PathBuf;

use ::bytes::BytesMut;
use chrono::{Datelike, TimeZone as _, Timelike, Utc};
use tokio_util::codec::Decoder;

use super::*;

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .expect("valid test time")
}

fn opts() -> ParseOptions {
    ParseOptions::new(at(2026, 6, 15, 12, 0, 0))
}

// ---- the rsyslog corpus -----------------------------------------------------------------------

fn shared_dir() -> Option<PathBuf> {
    let p = std::env::var_os("PHAROS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    p.join("corpora").is_dir().then_some(p)
}

/// One `%property[:from:to:options]%` or literal piece of an rsyslog string template.
enum Piece {
    Lit(String),
    Prop {
        name: String,
        from: usize,
        to: usize,
        regex: Option<String>,
        options: Vec<String>,
    },
}

/// Parses the `string="..."` of an rsyslog `template(...)` statement.
fn template(stmt: &str) -> Option<Vec<Piece>> {
    let start = stmt.find("string=\"")? + "string=\"".len();
    let end = stmt.rfind('"')?;
    let body = stmt.get(start..end)?.replace("\\n", "\n");
    let body = body.strip_suffix('\n').unwrap_or(&body).to_string();
    let mut out = Vec::new();
    let mut rest = body.as_str();
    while let Some(p) = rest.find('%') {
        if p > 0 {
            out.push(Piece::Lit(rest[..p].to_string()));
        }
        let after = &rest[p + 1..];
        let q = after.find('%')?;
        let inner = &after[..q];
        let parts: Vec<&str> = inner.split(':').collect();
        let name = parts[0].to_string();
        let (mut from, mut to, mut regex, mut options) = (0, 0, None, Vec::new());
        if parts.len() > 1 && parts[1].starts_with('R') {
            regex = Some(parts.get(2)?.strip_suffix("--end")?.to_string());
            options = parts
                .get(3)
                .map(|o| o.split(',').map(String::from).collect())
                .unwrap_or_default();
        } else if parts.len() > 1 {
            from = parts[1].parse().unwrap_or(0);
            to = parts.get(2).and_then(|t| t.parse().ok()).unwrap_or(0);
            options = parts
                .get(3)
                .map(|o| o.split(',').map(String::from).collect())
                .unwrap_or_default();
        }
        out.push(Piece::Prop {
            name,
            from,
            to,
            regex,
            options,
        });
        rest = &after[q + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Lit(rest.to_string()));
    }
    Some(out)
}

/// rsyslog's `programname`: the tag up to the first `:`, `[` or `/` (or non-printable).
fn programname(tag: &str) -> &str {
    let end = tag
        .find(|c: char| c == ':' || c == '[' || c == '/' || c.is_control())
        .unwrap_or(tag.len());
    &tag[..end]
}

fn syslogtag(m: &SyslogMessage<'_>) -> String {
    match m.protocol {
        Protocol::Rfc3164 => m.tag.unwrap_or("").to_string(),
        Protocol::Rfc5424 => match (m.app_name, m.proc_id) {
            (Some(a), Some(p)) => format!("{a}[{p}]"),
            (Some(a), None) => a.to_string(),
            (None, _) => "-".to_string(),
        },
    }
}

struct Emulation {
    msg_first_space_removed: bool,
}

fn render(
    pieces: &[Piece],
    m: &SyslogMessage<'_>,
    raw: &str,
    received: chrono::DateTime<Utc>,
    emu: &Emulation,
) -> String {
    let mut out = String::new();
    let ts = m.timestamp.unwrap_or_else(|| received.fixed_offset());
    for piece in pieces {
        let (name, from, to, regex, options) = match piece {
            Piece::Lit(s) => {
                out.push_str(s);
                continue;
            }
            Piece::Prop {
                name,
                from,
                to,
                regex,
                options,
            } => (name, *from, *to, regex, options),
        };
        let has = |o: &str| options.iter().any(|x| x == o);
        let tag = syslogtag(m);
        let mut v = match name.as_str() {
            "PRI" => m.pri_or_default().to_string(),
            "syslogfacility-text" => facility_name(m.facility()).to_string(),
            "syslogseverity-text" => severity_name(m.severity()).to_string(),
            "syslogseverity" => m.severity().to_string(),
            "timestamp" | "timereported" => {
                if has("date-rfc3339") {
                    ts.format("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string()
                } else if has("date-rfc3164-buggyday") {
                    ts.format("%b %d %H:%M:%S").to_string()
                } else {
                    ts.format("%b %e %H:%M:%S").to_string()
                }
            }
            "hostname" => m.hostname.unwrap_or("$RS_HOSTNAME").to_string(),
            "programname" => programname(&tag).to_string(),
            "syslogtag" => tag.clone(),
            "msg" => {
                let msg = m.msg;
                let msg = if emu.msg_first_space_removed {
                    msg.strip_prefix(' ').unwrap_or(msg)
                } else {
                    msg
                };
                msg.to_string()
            }
            "rawmsg" => raw.to_string(),
            other => format!("**UNSUPPORTED PROPERTY {other}**"),
        };
        if let Some(re) = regex {
            match regex::Regex::new(re) {
                Err(_) => {
                    out.push_str("**NO MATCH** **BAD REGULAR EXPRESSION**");
                    continue;
                }
                Ok(re) => {
                    v = re
                        .find(&v)
                        .map(|x| x.as_str().to_string())
                        .unwrap_or_default()
                }
            }
        }
        if from > 0 {
            let chars: Vec<char> = v.chars().collect();
            let to = if to == 0 {
                chars.len()
            } else {
                to.min(chars.len())
            };
            v = chars
                .get(from - 1..to)
                .map(|c| c.iter().collect())
                .unwrap_or_default();
        }
        if has("drop-last-lf") {
            v = v.strip_suffix('\n').unwrap_or(&v).to_string();
        }
        if has("csv") {
            v = format!("\"{}\"", v.replace('"', "\"\""));
        }
        out.push_str(&v);
    }
    out
}

/// rsyslog's `$Escape8BitCharactersOnReceive on`: bytes >= 0x80 become `#ooo` (octal).
fn escape_8bit(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b >= 0x80 {
            out.push_str(&format!("#{b:03o}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

#[test]
fn rsyslog_parser_tests_render_like_rsyslog() {
    let Some(shared) = shared_dir() else {
        pharos_model::conformance::skip("../shared/corpora is absent (set PHAROS_SHARED)");
        return;
    };
    let path = shared.join("corpora/syslog/rsyslog/rsyslog-parser-tests.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else {
        pharos_model::conformance::skip(&format!("{} is absent", path.display()));
        return;
    };
    let received = at(2026, 6, 15, 12, 0, 0);
    let (mut pairs, mut exact, mut artefact) = (0, 0, 0);
    let mut failures = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: serde_json::Value = serde_json::from_str(line).expect("corpus line is JSON");
        let inputs: Vec<&str> = case["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        // Every input, paired or not, parses without panicking.
        for i in &inputs {
            let _ = parse(i, &ParseOptions::new(received));
        }
        if case["paired"] != serde_json::Value::Bool(true) {
            continue;
        }
        let conf = case["rsyslog_conf"].as_str().unwrap_or("");
        let emu = Emulation {
            msg_first_space_removed: conf.contains("remove.msgFirstSpace=\"on\""),
        };
        let escape = conf.contains("$Escape8BitCharactersOnReceive on");
        let stmt = case["template"][0].as_str().unwrap();
        let pieces = template(stmt).unwrap_or_else(|| panic!("cannot read template {stmt}"));
        let expected: Vec<&str> = case["expected_lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(
            inputs.len(),
            expected.len(),
            "paired case {}",
            case["source"]
        );
        for (input, want) in inputs.iter().zip(&expected) {
            pairs += 1;
            let input = if escape {
                escape_8bit(input)
            } else {
                input.to_string()
            };
            let m = parse(&input, &ParseOptions::new(received));
            let got = render(&pieces, &m, &input, received, &emu);
            if got == *want {
                exact += 1;
            } else if got == want.replace("\\\"", "\"") {
                // The corpus keeps the shell's `\"` of the test script in this expected line.
                artefact += 1;
            } else {
                failures.push(format!(
                    "{}\n  input:    {input:?}\n  expected: {want:?}\n  got:      {got:?}",
                    case["source"]
                ));
            }
        }
    }
    println!(
        "rsyslog paired cases: {pairs}; match: {} ({exact} exact, {artefact} after reading the corpus' shell-escaped \\\" as \"); differ: {}",
        exact + artefact,
        failures.len()
    );
    assert!(
        pairs >= 50,
        "expected at least 50 paired cases, found {pairs}"
    );
    assert!(
        failures.is_empty(),
        "{} cases differ from rsyslog:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---- RFC 5424 --------------------------------------------------------------------------------

#[test]
fn rfc5424_full_header_with_sd_and_bom() {
    let line = "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"] \u{feff}An application event";
    let m = parse(line, &opts());
    assert_eq!(m.protocol, Protocol::Rfc5424);
    assert_eq!((m.facility(), m.severity()), (20, 5));
    assert_eq!(
        m.timestamp.unwrap().to_rfc3339(),
        "2003-10-11T22:14:15.003+00:00"
    );
    assert_eq!(m.hostname, Some("mymachine.example.com"));
    assert_eq!(m.app_name, Some("evntslog"));
    assert_eq!(m.proc_id, None);
    assert_eq!(m.msg_id, Some("ID47"));
    assert!(m.bom);
    assert_eq!(m.msg, "An application event");
    let els: Vec<_> = m.sd_elements().collect();
    assert_eq!(els.len(), 2);
    assert_eq!(els[0].id, "exampleSDID@32473");
    assert_eq!(els[0].get("eventID").as_deref(), Some("1011"));
    assert_eq!(els[1].get("class").as_deref(), Some("high"));
    assert!(
        m.anomalies.is_empty(),
        "{:?}",
        m.anomalies.names().collect::<Vec<_>>()
    );
}

#[test]
fn rfc5424_sd_escapes_are_unescaped_and_brackets_inside_values_kept() {
    let line = r#"<14>1 - h a - - [x@1 v="a \"quoted\" \] and \\ back" w="C:\path"] text"#;
    let m = parse(line, &opts());
    let el = m.sd_elements().next().unwrap();
    assert_eq!(el.get("v").as_deref(), Some(r#"a "quoted" ] and \ back"#));
    assert_eq!(el.get("w").as_deref(), Some(r"C:\path"));
    assert_eq!(m.msg, "text");
    assert!(m.anomalies.contains(Anomalies::NO_TIMESTAMP));
}

#[test]
fn rfc5424_nilvalues_are_none() {
    let m = parse("<13>1 - - - - - -", &opts());
    assert_eq!(
        (m.timestamp, m.hostname, m.app_name, m.proc_id, m.msg_id),
        (None, None, None, None, None)
    );
    assert_eq!(m.msg, "");
    assert!(
        m.anomalies.contains(Anomalies::NO_TIMESTAMP)
            && m.anomalies.contains(Anomalies::NO_HOSTNAME)
    );
}

#[test]
fn rfc5424_fraction_and_offsets() {
    let m = parse(
        "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% Its time",
        &opts(),
    );
    let t = m.timestamp.unwrap();
    assert_eq!(t.offset().local_minus_utc(), -7 * 3600);
    assert_eq!(t.nanosecond(), 3000);
    assert_eq!(m.timestamp_utc().unwrap().hour(), 12);
    assert_eq!(m.proc_id, Some("8710"));
    assert_eq!(m.msg, "%% Its time");
    let m = parse(
        "<165>1 2003-08-24T05:14:15.123456789+05:30 h a p m - x",
        &opts(),
    );
    assert!(m.anomalies.contains(Anomalies::LONG_FRACTION));
    assert_eq!(m.timestamp.unwrap().nanosecond(), 123_456_789);
}

#[test]
fn rfc5424_bad_timestamp_and_bad_sd_are_flagged_not_fatal() {
    let m = parse("<13>1 2003-13-40T99:00:00Z h a p m [broken text", &opts());
    assert!(m.anomalies.contains(Anomalies::BAD_TIMESTAMP));
    assert!(m.anomalies.contains(Anomalies::BAD_SD));
    assert_eq!(m.hostname, Some("h"));
    assert_eq!(m.msg, "[broken text");
}

#[test]
fn rfc5424_truncated_header() {
    let m = parse("<13>1 2003-10-11T22:14:15Z host", &opts());
    assert_eq!(m.hostname, Some("host"));
    assert!(m.anomalies.contains(Anomalies::TRUNCATED_HEADER));
}

// ---- RFC 3164 --------------------------------------------------------------------------------

#[test]
fn rfc3164_classic_line() {
    let m = parse(
        "<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed for lonvick on /dev/pts/8",
        &opts(),
    );
    assert_eq!(m.protocol, Protocol::Rfc3164);
    assert_eq!((m.facility(), m.severity()), (4, 2));
    assert_eq!(m.hostname, Some("mymachine"));
    assert_eq!(m.tag, Some("su[123]:"));
    assert_eq!((m.app_name, m.proc_id), (Some("su"), Some("123")));
    assert_eq!(m.msg, " 'su root' failed for lonvick on /dev/pts/8");
    assert_eq!(
        m.text,
        "su[123]: 'su root' failed for lonvick on /dev/pts/8"
    );
    let t = m.timestamp.unwrap();
    // Received 2026-06-15: October 2026 would be 4 months ahead, so it was written in October 2025.
    assert_eq!((t.year(), t.month(), t.day(), t.hour()), (2025, 10, 11, 22));
}

/// The year a 3164 `line` gets when received at `received` with a margin of `margin_hours`.
fn year_of(line: &str, received: chrono::DateTime<Utc>, margin_hours: i64) -> i32 {
    let opts = ParseOptions {
        year_margin: chrono::TimeDelta::hours(margin_hours),
        ..ParseOptions::new(received)
    };
    parse(line, &opts)
        .timestamp
        .expect("a 3164 timestamp")
        .year()
}

#[test]
fn rfc3164_year_is_the_receive_year_unless_that_is_beyond_the_margin_in_the_future() {
    // The issue's case: received 2026-12-07, none of these may be dated 2027.
    let received = at(2026, 12, 7, 9, 0, 0);
    for line in [
        "<13>Feb  4 23:33:37 h t: x",
        "<13>Jun  6 10:00:00 h t: x",
        "<13>Jun  8 10:00:00 h t: x",
        "<13>Jan  2 10:00:00 h t: x",
        "<13>Dec  7 08:59:59 h t: x",
    ] {
        assert_eq!(year_of(line, received, 24), 2026, "{line}");
    }
    // A sender's clock a few hours fast: still this year within the margin ...
    assert_eq!(year_of("<13>Dec  7 20:00:00 h t: x", received, 24), 2026);
    // ... last year beyond it (written a year ago rather than tomorrow evening).
    assert_eq!(year_of("<13>Dec  8 20:00:00 h t: x", received, 24), 2025);
    // A margin of zero: one second ahead is already last year.
    assert_eq!(year_of("<13>Dec  7 09:00:01 h t: x", received, 0), 2025);
    assert_eq!(year_of("<13>Dec  7 09:00:00 h t: x", received, 0), 2026);
}

#[test]
fn rfc3164_year_across_new_year_both_ways() {
    // Written just before midnight, received just after: last year.
    let dec31 = "<13>Dec 31 23:59:59 h t: x";
    assert_eq!(year_of(dec31, at(2027, 1, 1, 0, 0, 5), 24), 2026);
    // Even with a month's margin: 31 December of this year is 12 months ahead.
    assert_eq!(year_of(dec31, at(2027, 1, 1, 0, 0, 5), 31 * 24), 2026);
    // A fast clock already in the new year, received on 31 December: next year, within the margin.
    let jan1 = "<13>Jan  1 00:00:01 h t: x";
    assert_eq!(year_of(jan1, at(2026, 12, 31, 23, 59, 58), 24), 2027);
    // Beyond the margin it is this year's 1 January (12 months old), never further ahead.
    assert_eq!(year_of(jan1, at(2026, 12, 30, 23, 0, 0), 24), 2026);
    // In a zone ahead of UTC the new year starts earlier: +02:00 `Jan 1 00:30` is 22:30 UTC.
    let opts = ParseOptions {
        tz: TimeZone::parse("+02:00").unwrap(),
        ..ParseOptions::new(at(2026, 12, 31, 22, 30, 0))
    };
    let m = parse("<13>Jan  1 00:30:00 h t: x", &opts);
    assert_eq!(m.timestamp_utc(), Some(at(2026, 12, 31, 22, 30, 0)));
}

#[test]
fn rfc3164_feb_29_is_the_latest_leap_year_not_beyond_the_margin() {
    let feb29 = "<13>Feb 29 10:00:00 h t: x";
    // Received in a year without 29 February: the most recent past leap year, not the next one.
    assert_eq!(year_of(feb29, at(2027, 3, 1, 0, 0, 0), 24), 2024);
    assert_eq!(year_of(feb29, at(2027, 12, 31, 0, 0, 0), 24), 2024);
    // In a leap year, before the day: that leap year only within the margin.
    assert_eq!(year_of(feb29, at(2028, 2, 29, 2, 0, 0), 24), 2028);
    assert_eq!(year_of(feb29, at(2028, 2, 27, 0, 0, 0), 24), 2024);
    // The next leap year is within the margin from a non-leap year's last day of February.
    assert_eq!(year_of(feb29, at(2028, 2, 28, 23, 0, 0), 24), 2028);
}

#[test]
fn replayed_old_logs_are_never_dated_in_the_future() {
    // A log of last spring and summer imported in December: every line keeps its past year, in
    // order, and none is after the receive time.
    let received = at(2026, 12, 7, 9, 0, 0);
    let opts = ParseOptions::new(received);
    let lines = [
        "<13>Jan  2 00:00:00 h t: a",
        "<13>Mar 15 12:00:00 h t: b",
        "<13>Jun  6 08:00:00 h t: c",
        "<13>Nov 30 23:59:59 h t: d",
        "<13>Dec  6 23:59:59 h t: e",
    ];
    let times: Vec<_> = lines
        .iter()
        .map(|l| parse(l, &opts).timestamp_utc().unwrap())
        .collect();
    assert!(times.iter().all(|t| *t <= received), "{times:?}");
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    // A log of the last weeks of last year replayed in January stays in last year.
    let opts = ParseOptions::new(at(2027, 1, 3, 9, 0, 0));
    let t = parse("<13>Dec 20 10:00:00 h t: x", &opts)
        .timestamp
        .unwrap();
    assert_eq!(t.year(), 2026);
}

#[test]
fn rfc3164_configured_zone_applies() {
    let tz = TimeZone::parse("+02:00").unwrap();
    let m = parse(
        "<13>Jun 15 14:00:00 h t: x",
        &ParseOptions {
            tz,
            ..ParseOptions::new(at(2026, 6, 15, 12, 0, 0))
        },
    );
    assert_eq!(m.timestamp_utc().unwrap(), at(2026, 6, 15, 12, 0, 0));
    assert_eq!(TimeZone::parse("local"), Some(TimeZone::Local));
    assert_eq!(
        TimeZone::parse("-0530").map(|t| t.to_config_string()),
        Some("-05:30".into())
    );
    assert!(TimeZone::parse("Europe/Paris").is_none());
    let m = parse(
        "<13>Jun 15 14:00:00 h t: x",
        &ParseOptions {
            tz: TimeZone::Local,
            ..ParseOptions::new(at(2026, 6, 15, 12, 0, 0))
        },
    );
    assert!(m.timestamp.is_some());
}

#[test]
fn rfc3164_without_pri_or_hostname() {
    let m = parse("Feb 18 16:01:59 serverX -- MARK --", &opts());
    assert_eq!(m.pri, None);
    assert_eq!(m.pri_or_default(), 13);
    assert!(m.is_mark());
    let m = parse("<27>xapi: [error|xen3] Connection died", &opts());
    assert_eq!(m.hostname, None);
    assert_eq!(m.app_name, None);
    assert_eq!(m.text, "xapi: [error|xen3] Connection died");
}

#[test]
fn rfc3164_tag_without_pid_stays_in_the_text() {
    // util-linux `logger --rfc3164 -t sshd`: the tag has no pid.
    let m = parse(
        "<36>Dec  7 08:28:41 vm sshd: Failed password for root from 192.0.2.9 port 22 ssh2",
        &opts(),
    );
    assert_eq!(m.header_hostname(), Some("vm"));
    assert_eq!(m.tag, Some("sshd:"));
    assert_eq!((m.app_name, m.proc_id), (None, None));
    assert_eq!(
        m.text,
        "sshd: Failed password for root from 192.0.2.9 port 22 ssh2"
    );
    // With a pid the tag is the app name (and stays in the text too).
    let m = parse(
        "<36>Dec  7 08:28:41 vm sshd[99]: Failed password for root",
        &opts(),
    );
    assert_eq!((m.app_name, m.proc_id), (Some("sshd"), Some("99")));
    assert_eq!(m.text, "sshd[99]: Failed password for root");
    // Text that merely starts with a word and a colon is not an app name either.
    let m = parse("<11>Dec  7 08:28:41 nas error: disk 3 failed", &opts());
    assert_eq!(m.app_name, None);
    assert_eq!(m.text, "error: disk 3 failed");
}

#[test]
fn headerless_vendor_lines_keep_their_whole_text() {
    let m = parse(
        "<189>date=2026-11-24 time=14:00:04 devname=\"fgt01\" type=\"traffic\"",
        &opts(),
    );
    assert_eq!(
        m.text,
        "date=2026-11-24 time=14:00:04 devname=\"fgt01\" type=\"traffic\""
    );
    assert_eq!(m.header_hostname(), None);
    assert_eq!(m.app_name, None);
}

#[test]
fn rfc3164_iso_timestamp_and_year_in_header() {
    let m = parse("<14>2010-08-30T23:00:05+02:00 X4711 app: msg", &opts());
    assert_eq!(
        m.timestamp.unwrap().to_rfc3339(),
        "2010-08-30T23:00:05+02:00"
    );
    assert_eq!(m.hostname, Some("X4711"));
    let m = parse(
        "<167>Mar 7 2008 19:06:53: example tag: testmessage",
        &opts(),
    );
    assert_eq!(m.timestamp.unwrap().year(), 2008);
    assert_eq!(m.hostname, Some("example"));
    assert!(m.anomalies.contains(Anomalies::NONSTANDARD_TIMESTAMP));
}

#[test]
fn cisco_sequence_numbers_markers_and_millis() {
    let m = parse(
        "<189>000123: *Mar  1 00:00:12.123 UTC: %SYS-5-CONFIG_I: Configured from console by vty0",
        &opts(),
    );
    assert_eq!(m.sequence, Some("000123"));
    assert_eq!(m.time_marker, Some('*'));
    assert_eq!(m.timestamp.unwrap().nanosecond(), 123_000_000);
    assert_eq!(m.hostname, None);
    assert_eq!(m.tag, Some("%SYS-5-CONFIG_I:"));
    assert_eq!(m.text, "%SYS-5-CONFIG_I: Configured from console by vty0");
    let m = parse(
        "<189>45: router1: .Mar  1 00:00:12: %LINK-3-UPDOWN: Interface Gi0/1, changed state to up",
        &opts(),
    );
    assert_eq!(
        (m.sequence, m.hostname, m.time_marker),
        (Some("45"), Some("router1"), Some('.'))
    );
    let m = parse(
        "<189>30: %LINK-3-UPDOWN: Interface Gi0/1, changed state to down",
        &opts(),
    );
    assert_eq!(m.sequence, Some("30"));
    assert_eq!(
        m.text,
        "%LINK-3-UPDOWN: Interface Gi0/1, changed state to down"
    );
    for s in ["<14>1: ", "<14>2: .", "<14>3: *", "<14>4: *Mar"] {
        let _ = parse(s, &opts());
    }
}

#[test]
fn bad_pri_is_text() {
    let m = parse("<999>Oct 11 22:14:15 h t: x", &opts());
    assert!(m.anomalies.contains(Anomalies::BAD_PRI));
    assert_eq!(m.pri, None);
    let m = parse("<>x", &opts());
    assert!(m.anomalies.contains(Anomalies::BAD_PRI));
}

#[test]
fn parser_never_panics_on_awkward_input() {
    let cases = [
        "",
        "<",
        "<1",
        "<1>",
        "<1>1",
        "<1>1 ",
        "<191>1 -",
        "<0>1 - - - - - [",
        "<0>1 - - - - - [a",
        "<0>1 - - - - - [a b=\"",
        "<0>1 - - - - - [a b=\"\\",
        "<0>1 - - - - - [a b=\"é\\é\"]",
        "<0>Feb",
        "<0>Feb 30 10:00:00 h t",
        "<0>Feb 29 25:00:00",
        "<0>Jan 1 2099 00:00:00",
        "ä<13>Jan",
        "<13>Jan  1 00:00:00 [",
        "<13>Jan  1 00:00:00 [::1] t: x",
        "\u{feff}",
        "<13>1 9999-12-31T23:59:59.9999999999+23:59 h",
        "<13>1 0000-01-01T00:00:00Z h",
        "<13>Jan  1 00:00:00.",
    ];
    for c in cases {
        let m = parse(c, &opts());
        let _ = m
            .sd_elements()
            .flat_map(|e| e.params().map(|p| p.value().len()).collect::<Vec<_>>())
            .count();
    }
    let long = format!("<13>Jan  1 00:00:00 h {}", "x".repeat(5000));
    assert_eq!(parse(&long, &opts()).tag.map(str::len), Some(510));
    let long_multibyte = format!("<13>Jan  1 00:00:00 h {}", "é".repeat(600));
    let m = parse(&long_multibyte, &opts());
    assert!(m.tag.unwrap().len() <= 510);
}

// ---- framing ---------------------------------------------------------------------------------

fn decode_all(codec: &mut SyslogCodec, chunks: &[&[u8]]) -> Vec<Frame> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for c in chunks {
        buf.extend_from_slice(c);
        while let Some(f) = codec.decode(&mut buf).unwrap() {
            out.push(f);
        }
    }
    while let Some(f) = codec.decode_eof(&mut buf).unwrap() {
        out.push(f);
    }
    out
}

fn msg(s: &str) -> Frame {
    Frame::Message(::bytes::Bytes::copy_from_slice(s.as_bytes()))
}

#[test]
fn octet_counting_frames_split_across_reads() {
    let mut c = SyslogCodec::new(1024, OversizePolicy::Truncate);
    let frames = decode_all(
        &mut c,
        &[b"11 <13>hel", b"lo w5", b" <13>x1", b"0 <13>a\nb cd"],
    );
    assert_eq!(
        frames,
        vec![msg("<13>hello w"), msg("<13>x"), msg("<13>a\nb cd")]
    );
    assert_eq!(c.mode(), Some(FramingMode::OctetCounting));
}

#[test]
fn octet_counting_exact_frames() {
    let mut c = SyslogCodec::new(1024, OversizePolicy::Truncate);
    let (a, b) = (
        "<13>1 - h a - - - hello you",
        "<13>1 - h a - - - second one",
    );
    let data = format!("{} {a}{} {b}", a.len(), b.len());
    let data = data.as_bytes();
    let frames = decode_all(&mut c, &[&data[..3], &data[3..40], &data[40..]]);
    assert_eq!(
        frames,
        vec![
            msg("<13>1 - h a - - - hello you"),
            msg("<13>1 - h a - - - second one")
        ]
    );
}

#[test]
fn trailer_framing_lf_nul_crlf_and_unterminated_last_frame() {
    let mut c = SyslogCodec::new(1024, OversizePolicy::Truncate);
    let frames = decode_all(
        &mut c,
        &[b"<13>one\n<13>tw", b"o\0<13>three\r\n\n\n<13>four"],
    );
    assert_eq!(
        frames,
        vec![
            msg("<13>one"),
            msg("<13>two"),
            msg("<13>three"),
            msg("<13>four")
        ]
    );
    assert_eq!(c.mode(), Some(FramingMode::NonTransparent));
}

#[test]
fn oversize_frames_are_truncated_and_the_connection_goes_on() {
    let mut c = SyslogCodec::new(8, OversizePolicy::Truncate);
    let frames = decode_all(
        &mut c,
        &[
            b"<13>0123456789\n<13>ok\n",
            b"<13>abcdefgh",
            b"ijkl\n<13>b\n",
        ],
    );
    assert_eq!(
        frames,
        vec![
            Frame::Truncated {
                data: "<13>0123".into(),
                length: Some(14)
            },
            msg("<13>ok"),
            Frame::Truncated {
                data: "<13>abcd".into(),
                length: None
            },
            msg("<13>b"),
        ]
    );
    let mut c = SyslogCodec::new(8, OversizePolicy::Truncate);
    let frames = decode_all(&mut c, &[b"14 <13>01", b"23456789", b"3 <1>"]);
    assert_eq!(
        frames,
        vec![
            Frame::Truncated {
                data: "<13>0123".into(),
                length: Some(14)
            },
            msg("<1>")
        ]
    );
}

#[test]
fn oversize_frames_can_be_skipped() {
    let mut c = SyslogCodec::new(8, OversizePolicy::Skip);
    let frames = decode_all(&mut c, &[b"14 <13>01", b"23456789", b"3 <1>"]);
    assert_eq!(frames, vec![Frame::Skipped { length: 14 }, msg("<1>")]);
    let mut c = SyslogCodec::new(4, OversizePolicy::Skip);
    let frames = decode_all(&mut c, &[b"<13>abcdef", b"gh\n<1>\n"]);
    assert_eq!(frames, vec![Frame::Skipped { length: 12 }, msg("<1>")]);
}

#[test]
fn octet_counting_falls_back_to_trailers_on_garbage_and_reports_incomplete_at_eof() {
    let mut c = SyslogCodec::new(64, OversizePolicy::Truncate);
    let frames = decode_all(&mut c, &[b"5 <13>a<13>junk\n3 <1>20 <13>short"]);
    assert_eq!(
        frames,
        vec![
            msg("<13>a"),
            msg("<13>junk"),
            msg("<1>"),
            Frame::Incomplete {
                length: 20,
                have: 9
            }
        ]
    );
}
