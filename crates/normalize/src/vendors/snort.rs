//! Snort and Suricata one-line alerts: fast.log (`MM/DD[/YYYY]-hh:mm:ss.us [**] [1:2003:8] msg
//! [**] [Classification: ...] [Priority: n] {TCP} a:p -> b:p`) and Snort's syslog form
//! (`snort[123]: [1:2003:8] msg [Classification: ...] [Priority: n]: {TCP} a:p -> b:p`).
//!
//! Mapping: every alert -> intrusion, or web attack when the message or classification names an
//! HTTP attack. `suricata-fast` is the form with a four-digit year in its time stamp (Suricata's
//! fast.log); `snort` the rest. Rule names: the alert message; placeholder `snort-unknown-rule`.

use pharos_model::Severity;

use crate::LogInput;
use crate::build::{self, Draft, Flow, Ids, Request};
use crate::vendors::{Probe, app_is, probe};

/// fast.log with a `MM/DD/YYYY-` time stamp.
pub fn detect_suricata_fast(p: &Probe<'_, '_>) -> bool {
    let input = p.input;
    probe!(p, "[**]") && year_stamp(input.text)
}

/// fast.log without a year, Snort's syslog alert form, or a `snort` app name.
pub fn detect_snort(p: &Probe<'_, '_>) -> bool {
    let input = p.input;
    probe!(p, "[**]")
        || (probe!(p, "[Classification:") || probe!(p, "[Priority:")) && probe!(p, " -> ")
        || app_is(input, &["snort"]) && probe!(p, " -> ")
}

/// Normalises a Suricata fast.log line.
pub fn normalize_suricata_fast(input: &LogInput<'_>) -> Option<Draft> {
    let d = normalize(input, "suricata-unknown-rule")?;
    Some(d.vendor("OISF").model(Some("Suricata")))
}

/// Normalises a Snort alert line.
pub fn normalize_snort(input: &LogInput<'_>) -> Option<Draft> {
    let d = normalize(input, "snort-unknown-rule")?;
    Some(d.vendor("Cisco (Snort)").model(Some("Snort")))
}

fn year_stamp(t: &str) -> bool {
    let b = t.trim_start().as_bytes();
    b.len() > 11 && b.get(2) == Some(&b'/') && b.get(5) == Some(&b'/') && b.get(10) == Some(&b'-')
}

/// Priority 1 (highest) .. 4 on Pharos' scale.
fn severity(p: Option<u8>) -> Severity {
    match p {
        Some(1) => Severity::High,
        Some(2) => Severity::Middle,
        Some(3) => Severity::Low,
        _ => Severity::Info,
    }
}

/// `[gid:sid:rev]`: the position after it and the triple.
fn gid_sid_rev(t: &str) -> Option<(usize, &str)> {
    t.match_indices('[').take(8).find_map(|(i, _)| {
        let rest = t.get(i + 1..)?;
        let end = rest.find(']')?;
        let inner = rest.get(..end)?;
        let parts = inner.split(':').count();
        (parts == 3 && inner.bytes().all(|b| b.is_ascii_digit() || b == b':'))
            .then_some((i + end + 2, inner))
    })
}

fn between<'a>(t: &'a str, open: &str, close: char) -> Option<&'a str> {
    let at = t.find(open)? + open.len();
    let rest = t.get(at..)?;
    rest.get(..rest.find(close)?).map(str::trim)
}

fn normalize(input: &LogInput<'_>, placeholder: &'static str) -> Option<Draft> {
    let t = input.text;
    let (after, sid) = gid_sid_rev(t)?;
    let rest = t.get(after..)?;
    let msg_end = ["[**]", "[Classification:", "[Priority:", "{"]
        .iter()
        .filter_map(|m| rest.find(m))
        .min()
        .unwrap_or(rest.len());
    let msg = rest.get(..msg_end)?.trim().trim_end_matches(':').trim();
    let class = between(rest, "[Classification:", ']').unwrap_or("");
    let prio = between(rest, "[Priority:", ']').and_then(|p| p.parse().ok());
    let proto = between(rest, "{", '}');
    let flow = rest
        .rfind('}')
        .and_then(|i| rest.get(i + 1..))
        .unwrap_or("");
    let (src, dst) = flow.split_once(" -> ").unwrap_or(("", ""));
    let (src_ip, src_port) = build::addr_colon_port(src.trim());
    let (dst_ip, dst_port) = build::addr_colon_port(dst.trim());
    src_ip.or(dst_ip)?;
    let rule_name = build::rule_or(Some(msg), placeholder);
    let kind = build::intrusion_or_web_attack(
        Flow {
            src_ip,
            src_port,
            dst_ip,
            dst_port,
        },
        rule_name,
        build::web_attack_type(msg).or_else(|| build::web_attack_type(class)),
        Request::default(),
        Ids {
            protocol: proto.and_then(build::transport),
            app: build::app_by_port(dst_port),
            attack_type: build::intrusion_attack_type(msg),
        },
    );
    let time = fast_time(t);
    Some(
        Draft::new(kind, severity(prio))
            .time(time)
            .summary(format!("[{sid}] {msg} [{class}]")),
    )
}

/// `07/11/2022-10:29:01.860293` (Suricata); Snort's yearless stamps are left to the header time.
fn fast_time(t: &str) -> Option<pharos_model::Timestamp> {
    let first = t.split_whitespace().next()?;
    let (d, tm) = first.split_once('-')?;
    let mut it = d.split('/');
    let (m, day, y) = (it.next()?, it.next()?, it.next()?);
    crate::time::date_time(&format!("{y}-{m}-{day}"), tm, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip, with_app};
    use pharos_model::Kind;

    #[test]
    fn suricata_fast_log() {
        let n = auto(
            "03/02/2023-10:29:32.251216  [**] [1:2008578:4] ET SCAN Sipvicious Scan [**] [Classification: Attempted Information Leak] [Priority: 2] {UDP} 203.0.113.216:5116 -> 192.0.2.55:5060",
            "suricata-fast",
        );
        let Kind::Intrusion(i) = &n.message.kind else {
            panic!()
        };
        assert_eq!(i.src_ip, ip("203.0.113.216"));
        assert_eq!(i.dst_port, Some(5060));
        assert_eq!(i.rule_name, "ET SCAN Sipvicious Scan");
        assert_eq!(n.message.common.severity, Severity::Middle);
        assert_eq!(
            n.message.common.event_time.to_rfc3339(),
            "2023-03-02T10:29:32.251216+00:00"
        );
    }

    #[test]
    fn snort_fast_and_syslog_forms() {
        let n = auto(
            "02/14-12:35:20.918367  [**] [1:2003:8] MS-SQL Worm propagation attempt [**] [Classification: Misc Attack] [Priority: 2] {UDP} 10.0.0.1:1234 -> 10.0.0.2:1434",
            "snort",
        );
        assert!(matches!(n.message.kind, Kind::Intrusion(_)));
        let n = with_app(
            "[1:1002:7] WEB-IIS cmd.exe access [Classification: Web Application Attack] [Priority: 1]: {TCP} 198.51.100.4:4444 -> 10.0.0.80:80",
            "snort",
            "snort",
        );
        let Kind::WebAttack(w) = &n.message.kind else {
            panic!("{:?}", n.message.kind)
        };
        assert_eq!(w.dst_port, Some(80));
    }
}
