//! pfSense / OPNsense `filterlog` CSV (pf packet filter), IPv4 and IPv6, TCP/UDP/ICMP.
//!
//! Columns (pfSense 2.2+ and OPNsense): `rule, subrule, anchor, tracker, interface, reason, action,
//! direction, ip version`, then IPv4 `tos, ecn, ttl, id, offset, flags, proto id, proto name,
//! length, src, dst` or IPv6 `class, flow label, hop limit, proto name, proto id, length, src,
//! dst`, then for TCP/UDP `src port, dst port, data length, ...`.
//!
//! Mapping: every line -> firewall traffic log (pass/block/reject); rule name: the tracker id when
//! non-zero, else the rule number; placeholder none (the leaf is optional here).

use pharos_model::{FirewallTrafficLog, Kind, Severity};

use crate::LogInput;
use crate::build::{self, Draft, ip, port};
use crate::fields::{Fields, split_csv};
use crate::vendors::{Probe, app_is, probe};

/// `filterlog` app name or tag.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    let input = p.input;
    app_is(input, &["filterlog"]) || probe!(p, "filterlog")
}

/// Normalises one filterlog line.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let t = input.text;
    let csv = match t.find("filterlog") {
        Some(at) => {
            let rest = t.get(at..)?;
            rest.get(rest.find(": ")? + 2..)?
        }
        None => t,
    };
    let mut f = Fields::with_capacity(32);
    split_csv(csv.trim(), &mut f);
    let col = |i: usize| f.get(i).copied().map(str::trim).filter(|v| !v.is_empty());
    let action = col(6)?;
    let act = build::action(action)?;
    let (proto_at, src_at) = match col(8)? {
        "4" => (16, 18),
        "6" => (12, 15),
        _ => return None,
    };
    let proto = col(proto_at);
    let src_ip = col(src_at).and_then(ip);
    let dst_ip = col(src_at + 1).and_then(ip);
    src_ip.or(dst_ip)?;
    let ported = matches!(
        proto.map(str::to_ascii_lowercase).as_deref(),
        Some("tcp" | "udp" | "sctp")
    );
    let (src_port, dst_port) = if ported {
        (
            col(src_at + 2).and_then(port),
            col(src_at + 3).and_then(port),
        )
    } else {
        (None, None)
    };
    let rule = col(3).filter(|t| *t != "0").or(col(0));
    let iface = col(4);
    let inbound = col(7) == Some("in");
    let kind = Kind::FirewallTrafficLog(FirewallTrafficLog {
        src_ip,
        dst_ip,
        src_port,
        dst_port,
        protocol: proto.and_then(build::protocol),
        action: Some(act),
        rule_name: rule.map(build::clip),
        in_interface: iface.filter(|_| inbound).map(build::clip),
        out_interface: iface.filter(|_| !inbound).map(build::clip),
        ..Default::default()
    });
    let sev = if act == pharos_model::ident::IngressAction::Pass {
        Severity::Info
    } else {
        Severity::Low
    };
    Some(
        Draft::new(kind, sev)
            .vendor("Netgate/Deciso (pf)")
            .model(Some("pfSense/OPNsense"))
            .summary(format!(
                "filterlog {action} {} {} -> {}",
                proto.unwrap_or(""),
                col(src_at).unwrap_or(""),
                col(src_at + 1).unwrap_or("")
            )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{ip, with_app};

    #[test]
    fn ipv4_udp_block() {
        let n = with_app(
            "7,,,1000103001,igb1,match,block,in,4,0x0,,64,31337,0,none,17,udp,120,10.8.0.23,10.8.0.255,17500,17500,100",
            "filterlog",
            "filterlog",
        );
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.src_ip, ip("10.8.0.23"));
        assert_eq!(f.dst_port, Some(17500));
        assert_eq!(f.rule_name.as_deref(), Some("1000103001"));
        assert_eq!(f.action, Some(pharos_model::ident::IngressAction::Drop));
    }

    #[test]
    fn ipv6_tcp_and_ipv4_icmp_in_text() {
        let n = with_app(
            "4,,,1000000103,igb0,match,block,in,6,0x00,0x00000,64,tcp,6,40,2001:db8::5,2001:db8::1,51234,22,0,S,12345,,64240,,mss",
            "filterlog",
            "filterlog",
        );
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.src_ip, ip("2001:db8::5"));
        assert_eq!(f.dst_port, Some(22));
        let n = crate::vendors::testutil::auto(
            "Mar  2 09:10:11 filterlog: 12,,,0,vtnet0,match,pass,out,4,0x0,,64,4242,0,none,1,icmp,84,192.168.50.11,192.168.50.1,datalength=64",
            "filterlog",
        );
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.rule_name.as_deref(), Some("12"));
        assert_eq!(f.dst_port, None);
    }
}
