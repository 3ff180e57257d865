//! Linux netfilter / iptables / nftables `LOG` target lines (`[UFW BLOCK] IN=eth0 OUT= MAC=...
//! SRC=... DST=... PROTO=TCP SPT=... DPT=...`), including firewalld, UFW, SuSEfirewall and
//! Proxmox VE firewall prefixes.
//!
//! Mapping: every line -> firewall traffic log. The action comes from the log prefix (`DROP`,
//! `BLOCK`, `DENY` -> drop; `REJECT` -> reject; `ACCEPT`, `ALLOW` -> pass; none -> absent); the
//! prefix itself (e.g. `UFW BLOCK`, `IPTABLES-DROP`) is the rule name.

use pharos_model::ident::IngressAction;
use pharos_model::{FirewallTrafficLog, Kind, Severity};

use crate::LogInput;
use crate::build::{self, Draft, has_words, ip, port};
use crate::fields::Kv;
use crate::vendors::{Probe, probe};

/// `IN=` with `SRC=` and `DST=`.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    probe!(p, "IN=") && probe!(p, "SRC=") && probe!(p, "DST=")
}

/// Prefix words -> action, first match wins.
const ACTIONS: &[(&str, IngressAction)] = &[
    ("reject", IngressAction::Reject),
    ("drop", IngressAction::Drop),
    ("dropped", IngressAction::Drop),
    ("block", IngressAction::Drop),
    ("blocked", IngressAction::Drop),
    ("deny", IngressAction::Drop),
    ("denied", IngressAction::Drop),
    ("accept", IngressAction::Pass),
    ("accepted", IngressAction::Pass),
    ("allow", IngressAction::Pass),
    ("allowed", IngressAction::Pass),
];

/// Normalises one netfilter line.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let t = input.text;
    let in_at = t.find("IN=")?;
    let prefix = t.get(..in_at)?;
    // drop a kernel time stamp `[12345.678]` and syslog leftovers such as `kernel:`
    let prefix = match prefix.rfind("] ") {
        Some(i) if prefix.trim_start().starts_with('[') && !prefix.contains("[UFW") => {
            prefix.get(i + 2..)?
        }
        _ => prefix,
    };
    let prefix = prefix
        .rsplit("kernel:")
        .next()
        .unwrap_or(prefix)
        .trim()
        .trim_end_matches(':')
        .trim();
    let kv = Kv::parse(t.get(in_at..)?);
    let src_ip = kv.get("SRC").and_then(ip);
    let dst_ip = kv.get("DST").and_then(ip);
    src_ip.or(dst_ip)?;
    let action = ACTIONS
        .iter()
        .find(|(w, _)| has_words(prefix, w))
        .map(|(_, a)| *a);
    let rule = prefix.trim_matches(['[', ']', ' ', ':']);
    let proto = kv.get("PROTO");
    let kind = Kind::FirewallTrafficLog(FirewallTrafficLog {
        src_ip,
        dst_ip,
        src_port: kv.get("SPT").and_then(port),
        dst_port: kv.get("DPT").and_then(port),
        protocol: proto.and_then(build::protocol),
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
    use crate::vendors::testutil::{auto, ip};

    #[test]
    fn ufw_block() {
        let n = auto(
            "[UFW BLOCK] IN=eth0 OUT= MAC=00:16:3e:aa:bb:cc:00:16:3e:dd:ee:ff:08:00 SRC=203.0.113.7 DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=51 ID=0 DF PROTO=TCP SPT=44123 DPT=23 WINDOW=29200 RES=0x00 SYN URGP=0",
            "netfilter",
        );
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
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
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.action, None);
        let n = auto(
            "0 2 PVEFW-HOST-IN 02/Mar/2023:10:00:00 +0000 REJECT: IN=vmbr0 MAC=52:54:00:aa:bb:cc:52:54:00:dd:ee:ff:08:00 SRC=10.5.0.34 DST=10.5.0.12 LEN=60 PROTO=TCP SPT=41000 DPT=3306",
            "netfilter",
        );
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.action, Some(IngressAction::Reject));
        assert_eq!(f.dst_port, Some(3306));
    }
}
