//! Linux netfilter / iptables / nftables `LOG` target lines (`[UFW BLOCK] IN=eth0 OUT= MAC=...
//! SRC=... DST=... PROTO=TCP SPT=... DPT=...`), as the kernel prints them (with or without the
//! `kernel: [12345.678]` prefix), as ulogd's LOGEMU plugin writes them (same fields, no kernel
//! prefix), and as truncated kernel lines that only keep `PROTO= SPT= DPT=` (some routers split
//! long lines). The `--log-prefix` text before `IN=` is kept as the rule name: UFW (`[UFW
//! BLOCK]`), firewalld (`FINAL_REJECT:`, `filter_IN_public_REJECT:`), Shorewall
//! (`Shorewall:net2fw:DROP:`), Proxmox VE (`PVEFW-HOST-IN ... REJECT:`), EdgeOS/VyOS
//! (`[WAN_IN-10-D]`, `-A`/`-D`/`-R` = accept/drop/reject) or any custom text.
//!
//! ulogd2's JSON output (`{"timestamp": ..., "dvc": "Netfilter", "oob.prefix": "DROP: ",
//! "oob.in": "eth0", "src_ip": ..., "dest_ip": ..., "ip.protocol": 6, "src_port": ..,
//! "dest_port": ..}`, the NFLOG/ULOG path) is read the same way.
//!
//! Mapping: every line -> firewall traffic log; IPv6 (`SRC=2001:db8::1`), ICMP (`TYPE= CODE=`,
//! kept in `envelope/fields` as the message id `icmp-type/code`) and fragments (no ports) alike.
//! The action comes from [`ACTIONS`] (words of the prefix) or the EdgeOS suffix; none -> absent.

use std::borrow::Cow;

use pharos_model::ident::IngressAction;
use pharos_model::{FirewallTrafficLog, Kind, LogFields, Severity};

use crate::LogInput;
use crate::build::{self, Draft, has_words, ip, port};
use crate::fields::Kv;
use crate::vendors::{Probe, app_is, find, has, probe};

/// `IN=` with `SRC=` and `DST=`, a kernel line with `PROTO=` and a port, or ulogd JSON.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    probe!(p, "IN=") && probe!(p, "SRC=") && probe!(p, "DST=")
        || probe!(p, "\"oob.prefix\"")
        || probe!(p, "\"oob.in\"")
        || probe!(p, "PROTO=")
            && (probe!(p, "SPT=") || probe!(p, "DPT="))
            && (probe!(p, "kernel:") || app_is(p.input, &["kernel", "ulogd"]))
}

/// Prefix words -> action, first match wins (UFW, firewalld, Shorewall, Proxmox, custom).
const ACTIONS: &[(&str, IngressAction)] = &[
    ("reject", IngressAction::Reject),
    ("rejected", IngressAction::Reject),
    ("drop", IngressAction::Drop),
    ("dropped", IngressAction::Drop),
    ("block", IngressAction::Drop),
    ("blocked", IngressAction::Drop),
    ("deny", IngressAction::Drop),
    ("denied", IngressAction::Drop),
    ("invalid", IngressAction::Drop),
    ("accept", IngressAction::Pass),
    ("accepted", IngressAction::Pass),
    ("allow", IngressAction::Pass),
    ("allowed", IngressAction::Pass),
    ("audit", IngressAction::Pass),
];

/// EdgeOS / VyOS rule prefixes end in `-A`, `-D` or `-R` (`[WAN_LOCAL-default-D]`).
const EDGEOS_SUFFIX: &[(&str, IngressAction)] = &[
    ("-A", IngressAction::Pass),
    ("-D", IngressAction::Drop),
    ("-R", IngressAction::Reject),
];

/// Where the `key=value` part starts and whether a `--log-prefix` may precede it: `IN=` at a
/// word start, else (a truncated line) right after `kernel:`, else the first `SRC=`/`PROTO=`.
fn fields_start(t: &str) -> Option<(usize, bool)> {
    let b = t.as_bytes();
    let mut from = 0;
    while let Some(at) = t
        .get(from..)
        .and_then(|r| find!(r, "IN="))
        .map(|a| a + from)
    {
        // `IN=` right after `]`, `:` or a space is the field (`[WAN-A]IN=`), not `MIN=` etc.
        if at == 0 || matches!(b.get(at - 1), Some(b' ' | b']' | b':' | b'\t')) {
            return Some((at, true));
        }
        from = at + 3;
    }
    if let Some(k) = find!(t, "kernel:") {
        return Some((k + 7, false));
    }
    (has!(t, "SRC=") || has!(t, "PROTO=")).then_some((0, false))
}

/// The `--log-prefix` text: no syslog leftovers (`kernel:`), no kernel time stamp.
fn log_prefix(prefix: &str) -> &str {
    let p = match find!(prefix, "kernel:") {
        Some(at) => prefix.get(at + 7..).unwrap_or(""),
        None => prefix,
    };
    let mut p = p.trim_start();
    // `[12345.678901]`: the kernel time stamp
    if let Some(rest) = p.strip_prefix('[')
        && let Some(end) = rest.find(']')
        && rest.get(..end).is_some_and(|s| {
            s.bytes()
                .all(|c| c.is_ascii_digit() || c == b'.' || c == b' ')
        })
    {
        p = rest.get(end + 1..).unwrap_or("");
    }
    p.trim()
}

/// One ulogd2 JSON record (the keys of its `JSON` output plugin that say who talked to whom).
#[derive(serde::Deserialize)]
struct Ulogd<'a> {
    #[serde(borrow, rename = "oob.prefix")]
    prefix: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "oob.in")]
    in_if: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "oob.out")]
    out_if: Option<Cow<'a, str>>,
    #[serde(borrow)]
    src_ip: Option<Cow<'a, str>>,
    #[serde(borrow)]
    dest_ip: Option<Cow<'a, str>>,
    src_port: Option<u16>,
    dest_port: Option<u16>,
    #[serde(rename = "ip.protocol")]
    protocol: Option<u8>,
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
}

/// A ulogd2 JSON record as netfilter text (`PREFIX IN=.. OUT=.. SRC=.. ...`), normalised.
fn ulogd_json(input: &LogInput<'_>) -> Option<Draft> {
    let t = input.text.trim();
    let u: Ulogd<'_> = serde_json::from_str(t.get(t.find('{')?..)?).ok()?;
    let line = format!(
        "{} IN={} OUT={} SRC={} DST={} PROTO={} SPT={} DPT={}",
        u.prefix.as_deref().unwrap_or(""),
        u.in_if.as_deref().unwrap_or(""),
        u.out_if.as_deref().unwrap_or(""),
        u.src_ip.as_deref().unwrap_or(""),
        u.dest_ip.as_deref().unwrap_or(""),
        u.protocol.map(|p| p.to_string()).unwrap_or_default(),
        u.src_port.map(|p| p.to_string()).unwrap_or_default(),
        u.dest_port.map(|p| p.to_string()).unwrap_or_default(),
    );
    let text = LogInput {
        text: &line,
        ..*input
    };
    let d = from_text(&text)?;
    Some(d.time(u.timestamp.as_deref().and_then(crate::time::iso)))
}

/// Normalises one netfilter line.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    if input.text.trim_start().starts_with('{') {
        return ulogd_json(input);
    }
    from_text(input)
}

/// Normalises one netfilter text line.
fn from_text(input: &LogInput<'_>) -> Option<Draft> {
    let t = input.text;
    let (start, has_prefix) = fields_start(t)?;
    let prefix = if has_prefix {
        log_prefix(t.get(..start)?)
    } else {
        ""
    };
    let kv = Kv::parse(t.get(start..)?);
    let src_ip = kv.get("SRC").and_then(ip);
    let dst_ip = kv.get("DST").and_then(ip);
    let src_port = kv.get("SPT").and_then(port);
    let dst_port = kv.get("DPT").and_then(port);
    if src_ip.is_none() && dst_ip.is_none() && src_port.is_none() && dst_port.is_none() {
        return None;
    }
    let rule = prefix.trim_matches(['[', ']', ' ', ':']);
    let action = ACTIONS
        .iter()
        .find(|(w, _)| has_words(prefix, w))
        .or_else(|| EDGEOS_SUFFIX.iter().find(|(s, _)| rule.ends_with(s)))
        .map(|(_, a)| *a);
    let proto = kv.get("PROTO");
    let protocol = proto.and_then(build::protocol);
    let icmp = kv.get("TYPE").map(|ty| match kv.get("CODE") {
        Some(code) => build::clip(&format!("icmp-type {ty}/code {code}")),
        None => build::clip(&format!("icmp-type {ty}")),
    });
    let extra = LogFields {
        // a protocol the case's enumeration lacks (IGMP, GRE, ESP ...) is kept as named
        protocol: proto
            .filter(|_| protocol.is_none())
            .map(|p| p.to_ascii_lowercase()),
        message_id: icmp,
        ..Default::default()
    };
    let kind = Kind::FirewallTrafficLog(FirewallTrafficLog {
        src_ip,
        dst_ip,
        src_port,
        dst_port,
        protocol,
        action,
        rule_name: build::present(Some(rule)).map(build::clip),
        in_interface: kv.get("IN").map(build::clip),
        out_interface: kv.get("OUT").map(build::clip),
        ..Default::default()
    });
    let sev = match action {
        Some(IngressAction::Pass) | None => Severity::Info,
        _ => Severity::Low,
    };
    Some(
        Draft::new(kind, sev)
            .vendor("Linux")
            .model(Some("netfilter"))
            .fields(extra)
            .summary(format!(
                "{rule} {} {} -> {}:{}",
                proto.unwrap_or(""),
                kv.get("SRC").unwrap_or(""),
                kv.get("DST").unwrap_or(""),
                kv.get("DPT").unwrap_or("")
            )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, fw, ip, with_app};

    #[test]
    fn ufw_block() {
        let n = auto(
            "[UFW BLOCK] IN=eth0 OUT= MAC=00:16:3e:aa:bb:cc:00:16:3e:dd:ee:ff:08:00 SRC=203.0.113.7 DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=51 ID=0 DF PROTO=TCP SPT=44123 DPT=23 WINDOW=29200 RES=0x00 SYN URGP=0",
            "netfilter",
        );
        let f = fw(&n);
        assert_eq!(f.src_ip, ip("203.0.113.7"));
        assert_eq!(f.dst_port, Some(23));
        assert_eq!(f.action, Some(IngressAction::Drop));
        assert_eq!(f.rule_name.as_deref(), Some("UFW BLOCK"));
        assert_eq!(f.in_interface.as_deref(), Some("eth0"));
        assert_eq!(f.out_interface, None);
    }

    #[test]
    fn kernel_timestamp_and_proxmox_prefix() {
        let n = auto(
            "[1234567.000001] IN=eno1 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=198.51.100.107 DST=192.0.2.67 LEN=40 PROTO=TCP SPT=40000 DPT=8443",
            "netfilter",
        );
        assert_eq!(fw(&n).action, None);
        assert_eq!(fw(&n).rule_name, None);
        let n = auto(
            "0 2 PVEFW-HOST-IN 02/Mar/2023:10:00:00 +0000 REJECT: IN=vmbr0 MAC=52:54:00:aa:bb:cc:52:54:00:dd:ee:ff:08:00 SRC=10.5.0.34 DST=10.5.0.12 LEN=60 PROTO=TCP SPT=41000 DPT=3306",
            "netfilter",
        );
        assert_eq!(fw(&n).action, Some(IngressAction::Reject));
        assert_eq!(fw(&n).dst_port, Some(3306));
    }

    #[test]
    fn kernel_prefix_with_stamp_and_ufw() {
        let n = auto(
            "kernel: [ 8123.456789] [UFW ALLOW] IN=ens3 OUT= MAC=fa:16:3e:00:00:01:fa:16:3e:00:00:02:08:00 SRC=198.51.100.20 DST=10.0.0.5 LEN=60 TOS=0x00 PREC=0x00 TTL=57 ID=4242 DF PROTO=TCP SPT=50122 DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0",
            "netfilter",
        );
        assert_eq!(fw(&n).rule_name.as_deref(), Some("UFW ALLOW"));
        assert_eq!(fw(&n).action, Some(IngressAction::Pass));
    }

    #[test]
    fn ulogd_json_record() {
        let n = auto(
            r#"{"timestamp": "2024-03-03T10:00:00", "dvc": "Netfilter", "raw.pktlen": 60, "oob.prefix": "DROP: ", "oob.in": "eth0", "oob.out": "", "ip.protocol": 6, "src_ip": "203.0.113.30", "dest_ip": "192.0.2.10", "src_port": 52134, "dest_port": 22, "tcp.syn": 1}"#,
            "netfilter",
        );
        let f = fw(&n);
        assert_eq!(f.src_ip, ip("203.0.113.30"));
        assert_eq!(f.dst_port, Some(22));
        assert_eq!(f.action, Some(IngressAction::Drop));
        assert_eq!(f.rule_name.as_deref(), Some("DROP"));
        assert_eq!(f.in_interface.as_deref(), Some("eth0"));
    }

    #[test]
    fn edgeos_suffix_ipv6_icmp_and_truncated_lines() {
        let n = auto(
            "kernel: [WAN_LOCAL-default-D]IN=eth0 OUT= MAC=aa:bb:cc:dd:ee:ff:11:22:33:44:55:66:08:00 SRC=203.0.113.9 DST=198.51.100.1 LEN=44 TOS=0x00 PREC=0x00 TTL=240 ID=54321 PROTO=TCP SPT=45000 DPT=8080 WINDOW=1024 RES=0x00 SYN URGP=0",
            "netfilter",
        );
        assert_eq!(fw(&n).action, Some(IngressAction::Drop));
        assert_eq!(fw(&n).rule_name.as_deref(), Some("WAN_LOCAL-default-D"));
        let n = auto(
            "filter_IN_public_REJECT: IN=eth0 OUT= MAC=52:54:00:01:02:03:52:54:00:04:05:06:86:dd SRC=2001:db8::10 DST=2001:db8::1 LEN=104 TC=0 HOPLIMIT=64 FLOWLBL=0 PROTO=ICMPv6 TYPE=128 CODE=0 ID=7 SEQ=1",
            "netfilter",
        );
        assert_eq!(fw(&n).src_ip, ip("2001:db8::10"));
        assert_eq!(fw(&n).action, Some(IngressAction::Reject));
        let n = with_app(
            "TTL=117 ID=2201 DF PROTO=TCP SPT=61000 DPT=443 WINDOW=8192 RES=0x00 ACK URGP=0",
            "kernel",
            "netfilter",
        );
        assert_eq!(fw(&n).src_port, Some(61000));
        assert_eq!(fw(&n).rule_name, None);
        assert_eq!(fw(&n).dst_port, Some(443));
    }
}
