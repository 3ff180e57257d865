//! OpenBSD / FreeBSD pf: pflog records as printed by `tcpdump -n -e -ttt -i pflog0` (and piped
//! to syslog, e.g. `| logger -t pf`): `rule 2/(match) block in on em0: 10.0.0.1.1234 >
//! 10.0.0.2.80: S 1:1(0) win 512`, with anchors (`rule 1.anchor.2/(match)`, `rule
//! 2.web/1(match)`), the `[uid 0, pid 1234]` of `log (user)` rules, IPv6 (`2001:db8::1.1234 >
//! 2001:db8::2.80:`), ICMP (`10.0.0.1 > 10.0.0.2: ICMP echo request`), UDP and the other
//! `(reason)` words (fragment, short, normalize, bad-offset, state-mismatch, ...).
//!
//! Mapping: every record -> firewall traffic log; action pass/block/match (match -> absent),
//! direction `in` -> in-interface, `out` -> out-interface; the rule number (with its anchor) is
//! the rule name, the reason and uid/pid are kept in `envelope/fields` (message id). The protocol
//! comes from the payload (`ICMP`, `UDP,`, TCP flags, `Flags [..]`) or the well-known port.

use pharos_model::ident::IngressAction;
use pharos_model::{FirewallTrafficLog, Kind, LogFields, Severity};

use crate::LogInput;
use crate::build::{self, Draft, ip, port};
use crate::vendors::{Probe, app_is, find, probe};

/// `rule N/(reason) ... on IF: a > b`, or a `pf` / `pflog` program's packet line.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    probe!(p, " > ")
        && (probe!(p, "rule ") && probe!(p, "(") && probe!(p, " on ")
            || app_is(p.input, &["pf", "pflog", "pflogd"]))
}

/// pf action words -> action (`match` logs no decision).
const ACTIONS: &[(&str, Option<IngressAction>)] = &[
    ("pass", Some(IngressAction::Pass)),
    ("block", Some(IngressAction::Drop)),
    ("rdr", Some(IngressAction::Pass)),
    ("nat", Some(IngressAction::Pass)),
    ("binat", Some(IngressAction::Pass)),
    ("scrub", None),
    ("match", None),
];

/// `10.0.0.1.1234` -> address and port; `10.0.0.1` or `2001:db8::1` -> address only.
fn endpoint(s: &str) -> (Option<std::net::IpAddr>, Option<u16>) {
    let s = s.trim_end_matches(':');
    if let Some(a) = ip(s) {
        // `10.0.0.1.80` never parses as an address: a bare address has no port
        return (Some(a), None);
    }
    match s.rsplit_once('.') {
        Some((a, p)) => match ip(a) {
            Some(a) => (Some(a), port(p)),
            None => (None, None),
        },
        None => (None, None),
    }
}

/// The protocol a tcpdump payload shows.
fn payload_protocol(payload: &str, dst_port: Option<u16>) -> Option<&'static str> {
    let first = payload.split([' ', ',']).next().unwrap_or("");
    if first.starts_with("ICMP6") || first.starts_with("ICMPv6") {
        Some("icmpv6")
    } else if first.starts_with("ICMP") {
        Some("icmp")
    } else if first == "UDP" || first == "udp" {
        Some("udp")
    } else if first == "Flags"
        || !first.is_empty()
            && first
                .bytes()
                .all(|b| matches!(b, b'S' | b'F' | b'R' | b'P' | b'.' | b'E' | b'W' | b'U'))
    {
        Some("tcp")
    } else if first == "igmp" || first.starts_with("IGMP") {
        Some("igmp")
    } else if matches!(dst_port, Some(53 | 67 | 68 | 123 | 161 | 500 | 514 | 4500)) {
        Some("udp")
    } else {
        None
    }
}

/// The `-e` part of a record: `rule 2/(match) [uid 0, pid 1] block in on em0:`.
struct Head<'a> {
    rule: &'a str,
    reason: &'a str,
    owner: Option<&'a str>,
    action_word: &'a str,
    action: Option<IngressAction>,
    dir: Option<&'a str>,
    iface: Option<&'a str>,
}

/// The `-e` head after `rule `, and the text after it.
fn head(after: &str) -> Option<(Head<'_>, &str)> {
    let (rule, after_rule) = after.split_once('(')?;
    let rule = rule.trim_end_matches('/');
    let (reason, after_reason) = after_rule.split_once(')')?;
    let colon = after_reason.find(": ")?;
    let mut h = after_reason.get(..colon)?.trim();
    let body = after_reason.get(colon + 2..)?;
    let mut owner = None;
    if let Some(r) = h.strip_prefix('[') {
        let (o, rest) = r.split_once(']')?;
        owner = Some(o);
        h = rest.trim();
    }
    let mut words = h.split(' ').filter(|w| !w.is_empty());
    let action_word = words.next()?;
    let action = ACTIONS.iter().find(|(w, _)| *w == action_word)?.1;
    let dir = words.next();
    let iface = match (words.next(), words.next()) {
        (Some("on"), Some(i)) => Some(i),
        _ => None,
    };
    let head = Head {
        rule,
        reason,
        owner,
        action_word,
        action,
        dir,
        iface,
    };
    Some((head, body))
}

/// Normalises one pflog record: with the `-e` head, or without it when the record comes from a
/// `pf` / `pflog` program (`tcpdump -n -ttt -i pflog0` prints only the packet).
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let t = input.text;
    let (h, body) = match find!(t, "rule ") {
        Some(at) => {
            let (h, body) = head(t.get(at + 5..)?)?;
            (Some(h), body)
        }
        None if app_is(input, &["pf", "pflog", "pflogd", "tcpdump"]) => (None, t),
        None => return None,
    };
    let arrow = find!(body, " > ")?;
    let src = body.get(..arrow)?.rsplit(' ').next()?;
    let rest = body.get(arrow + 3..)?;
    let (dst, payload) = rest
        .split_once(": ")
        .unwrap_or((rest.trim_end_matches(':'), ""));
    let (src_ip, src_port) = endpoint(src.trim());
    let (dst_ip, dst_port) = endpoint(dst.trim());
    src_ip.or(dst_ip)?;
    let proto = payload_protocol(payload.trim(), dst_port);
    let message_id = h.as_ref().map(|h| match h.owner {
        Some(o) => format!("{} [{o}]", h.reason),
        None => h.reason.to_string(),
    });
    let action = h.as_ref().and_then(|h| h.action);
    let dir = h.as_ref().and_then(|h| h.dir);
    let iface = h.as_ref().and_then(|h| h.iface);
    let kind = Kind::FirewallTrafficLog(FirewallTrafficLog {
        src_ip,
        dst_ip,
        src_port,
        dst_port,
        protocol: proto.and_then(build::protocol),
        action,
        rule_name: h
            .as_ref()
            .and_then(|h| build::present(Some(h.rule)))
            .map(build::clip),
        in_interface: iface.filter(|_| dir == Some("in")).map(build::clip),
        out_interface: iface.filter(|_| dir != Some("in")).map(build::clip),
        ..Default::default()
    });
    let extra = LogFields {
        message_id: message_id.as_deref().map(build::clip),
        protocol: proto
            .filter(|p| build::protocol(p).is_none())
            .map(str::to_string),
        action: h.as_ref().map(|h| build::clip(h.action_word)),
        ..Default::default()
    };
    let sev = match action {
        Some(IngressAction::Drop) => Severity::Low,
        _ => Severity::Info,
    };
    Some(
        Draft::new(kind, sev)
            .vendor("OpenBSD pf")
            .model(Some("pf"))
            .fields(extra)
            .summary(t),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, fw, ip};

    #[test]
    fn tcp_block_with_e_and_ttt() {
        let n = auto(
            "Mar 01 10:00:00.123456 rule 2/(match) block in on em0: 198.51.100.7.51514 > 192.0.2.10.22: S 3811414373:3811414373(0) win 65535 <mss 1460,nop,nop,sackOK>",
            "pf",
        );
        let f = fw(&n);
        assert_eq!(f.src_ip, ip("198.51.100.7"));
        assert_eq!(f.src_port, Some(51514));
        assert_eq!(f.dst_ip, ip("192.0.2.10"));
        assert_eq!(f.dst_port, Some(22));
        assert_eq!(f.action, Some(IngressAction::Drop));
        assert_eq!(f.protocol, build::protocol("tcp"));
        assert_eq!(f.rule_name.as_deref(), Some("2"));
        assert_eq!(f.in_interface.as_deref(), Some("em0"));
    }

    #[test]
    fn without_e_from_a_pflog_program() {
        let n = crate::vendors::testutil::with_app(
            "00:00:00.000000 203.0.113.8.40000 > 192.0.2.10.25: S 1:1(0) win 1024",
            "pflog",
            "pf",
        );
        let f = fw(&n);
        assert_eq!(f.src_ip, ip("203.0.113.8"));
        assert_eq!(f.dst_port, Some(25));
        assert_eq!(f.rule_name, None);
    }

    #[test]
    fn anchors_uid_ipv6_icmp_and_udp() {
        let n = auto(
            "rule 1.web.3/(match) [uid 0, pid 4711] pass out on vio0: 2001:db8::5.40000 > 2001:db8::80.443: Flags [S], seq 1, win 64800, length 0",
            "pf",
        );
        let f = fw(&n);
        assert_eq!(f.src_ip, ip("2001:db8::5"));
        assert_eq!(f.dst_port, Some(443));
        assert_eq!(f.rule_name.as_deref(), Some("1.web.3"));
        assert_eq!(f.out_interface.as_deref(), Some("vio0"));
        let x = n.message.common.fields.as_deref().unwrap();
        assert_eq!(x.message_id.as_deref(), Some("match [uid 0, pid 4711]"));
        let n = auto(
            "rule 5/(match) block in on em1: 203.0.113.9 > 192.0.2.1: ICMP echo request, id 1, seq 1, length 64",
            "pf",
        );
        assert_eq!(fw(&n).protocol, build::protocol("icmp"));
        assert_eq!(fw(&n).dst_port, None);
        let n = auto(
            "rule 0/(match) pass in on em0: 192.0.2.50.5353 > 192.0.2.1.53: 4321+ A? example.com. (29)",
            "pf",
        );
        assert_eq!(fw(&n).protocol, build::protocol("udp"));
        assert_eq!(fw(&n).action, Some(IngressAction::Pass));
    }
}
