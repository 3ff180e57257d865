//! Test helpers: where the shared corpora are, and a minimal syslog header splitter (the real
//! parser lives in pharos-wire; this one only needs to cope with the corpus lines).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use pharos_normalize::LogInput;

/// `PHAROS_SHARED`, or `../shared` beside the repository.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("PHAROS_SHARED") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// The corpus directory, or `None` after printing `SKIPPED`.
pub fn corpus(sub: &str) -> Option<PathBuf> {
    let p = shared_dir().join("corpora/vendor-logs").join(sub);
    if p.is_dir() {
        Some(p)
    } else {
        pharos_model::conformance::skip(&format!("{} is absent (set PHAROS_SHARED)", p.display()));
        None
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn is_tag(w: &str) -> bool {
    w.ends_with(':')
        && w.len() > 1
        && !w.contains('=')
        && !w.starts_with('[')
        && !w.starts_with('%')
}

/// Splits `<PRI>`, an RFC 3164 (`Mmm dd hh:mm:ss [host] tag[pid]: msg`), ISO-stamped
/// (`2021-05-27T23:59:59Z host [tag:] msg`) or RFC 5424 (`1 TS HOST APP PROCID MSGID SD MSG`)
/// header off `line`; anything else is the whole text.
pub fn split(line: &str) -> LogInput<'_> {
    let mut input = LogInput::line(line);
    let mut rest = line.trim_start();
    if rest.starts_with('<')
        && let Some(i) = rest.find('>')
        && i <= 4
    {
        rest = &rest[i + 1..];
    }
    // RFC 5424
    if let Some(r) = rest.strip_prefix("1 ") {
        let parts: Vec<&str> = r.splitn(6, ' ').collect();
        if parts.len() == 6 && parts[0].len() >= 10 && parts[0].as_bytes()[4] == b'-' {
            input.host = Some(parts[1]);
            input.app_name = Some(parts[2]).filter(|a| *a != "-");
            let sd_msg = parts[5];
            let msg = if let Some(m) = sd_msg.strip_prefix("- ") {
                m
            } else {
                sd_msg
            };
            input.text = msg;
            return input;
        }
    }
    let words: Vec<&str> = rest.splitn(6, ' ').collect();
    let mut consumed: &str;
    if words.len() >= 3 && MONTHS.contains(&words[0]) {
        let r = rest.get(3..).unwrap_or("").trim_start();
        let Some((_, r)) = r.split_once(' ') else {
            return input;
        };
        let Some((time, r)) = r.trim_start().split_once(' ') else {
            return input;
        };
        if !time.contains(':') {
            return input;
        }
        consumed = r;
    } else if words
        .first()
        .is_some_and(|w| w.len() >= 19 && w.as_bytes().get(4) == Some(&b'-') && w.contains('T'))
    {
        consumed = rest.split_once(' ').map(|(_, t)| t).unwrap_or("");
    } else {
        return input;
    }
    // optional host, then optional tag
    let mut it = consumed.splitn(2, ' ');
    let first = it.next().unwrap_or("");
    let second_rest = it.next().unwrap_or("");
    if is_tag(first) {
        input.app_name = Some(
            first
                .trim_end_matches(':')
                .split('[')
                .next()
                .unwrap_or(first),
        );
        input.text = second_rest.trim_start();
        return input;
    }
    // first is the host
    input.host = Some(first);
    consumed = second_rest;
    let mut it = consumed.splitn(2, ' ');
    let tag = it.next().unwrap_or("");
    if is_tag(tag) {
        input.app_name = Some(tag.trim_end_matches(':').split('[').next().unwrap_or(tag));
        input.text = it.next().unwrap_or("").trim_start();
    } else {
        input.text = consumed;
    }
    input
}

/// `(name, lines)` of a Wazuh ruleset test file: the text after `log N pass|fail = `.
pub fn wazuh_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("log ")?;
            let (_, after) = rest.split_once(" = ")?;
            let head = rest.split(" = ").next()?;
            (head.ends_with("pass") || head.ends_with("fail")).then(|| after.to_string())
        })
        .collect()
}

#[test]
fn splitter_reads_the_header_shapes() {
    let i = split("Jun  8 14:34:33 sd-126005 kernel: [1.2] IN=eth0");
    assert_eq!(i.host, Some("sd-126005"));
    assert_eq!(i.app_name, Some("kernel"));
    assert_eq!(i.text, "[1.2] IN=eth0");
    let i = split("Jan 22 18:34:00 filterlog: 65,,,0");
    assert_eq!(i.app_name, Some("filterlog"));
    assert_eq!(i.text, "65,,,0");
    let i =
        split("Dec 10 01:02:03 host sshd[123]: Accepted password for a from 1.2.3.4 port 5 ssh2");
    assert_eq!(i.app_name, Some("sshd"));
    let i = split("<134>1 2019-05-15T16:25:50Z HOSTNAME CheckPoint 19710 - [action:\"Drop\"]");
    assert_eq!(i.app_name, Some("CheckPoint"));
    assert_eq!(i.text, "[action:\"Drop\"]");
}
