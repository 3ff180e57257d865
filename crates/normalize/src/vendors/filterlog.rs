//! pfSense / OPNsense `filterlog` CSV (pf packet filter), IPv4 and IPv6, TCP/UDP/ICMP.
//!
//! Columns (pfSense 2.2+ and OPNsense): `rule, subrule, anchor, tracker, interface, reason, action,
//! direction, ip version`, then IPv4 `tos, ecn, ttl, id, offset, flags, proto id, proto name,
//! length, src, dst` or IPv6 `class, flow label, hop limit, proto name, proto id, length, src,
//! dst`, then for TCP/UDP `src port, dst port, data length, ...`.
//!
//! Mapping: every line -> firewall traffic log (pass/block/reject); rule name: the tracker id when
//! non-zero, else the rule number; placeholder none (the leaf is optional here).
//!
//! The other pfSense / OPNsense programs that log addresses go through [`PROGRAMS`] (program,
//! marker text, class): webConfigurator logins (`php-fpm`: `Successful login for user 'admin'
//! from: 10.0.0.5`, `authentication error for user ...`), `sshguard` attacks and blocks, OpenVPN
//! user connects, logins and failures, and as generic logs with their address fields `dhcpd`
//! leases, `unbound` queries and `charon` (IPsec) messages.

use pharos_model::{FirewallTrafficLog, Kind, Severity};

use crate::LogInput;
use crate::build::{self, Draft, Flow, FwClass, FwParts, ip, port};
use crate::fields::{Fields, split_csv};
use crate::vendors::{Probe, app_is, probe};

/// `filterlog` app name or tag, or one of the [`PROGRAMS`].
pub fn detect(p: &Probe<'_, '_>) -> bool {
    let input = p.input;
    app_is(input, &["filterlog"]) || probe!(p, "filterlog") || app_is(input, PROGRAM_APPS)
}

/// The programs of [`PROGRAMS`].
const PROGRAM_APPS: &[&str] = &[
    "php-fpm", "php", "sshguard", "openvpn", "dhcpd", "unbound", "charon",
];

/// (program, marker text, class, sample): the first row whose program is the record's and whose
/// marker occurs in the text wins.
const PROGRAMS: &[(&str, &str, FwClass, &str)] = &[
    (
        "php-fpm",
        "Successful login for user",
        FwClass::AdminLogin,
        "/index.php: Successful login for user 'admin' from: 192.168.1.100 (Local Database)",
    ),
    (
        "php-fpm",
        "authentication error for user",
        FwClass::LoginFailed,
        "/index.php: webConfigurator authentication error for user 'root' from: 203.0.113.45",
    ),
    (
        "php",
        "Successful login for user",
        FwClass::AdminLogin,
        "/index.php: Successful login for user 'admin' from: 192.168.1.101 (Local Database)",
    ),
    (
        "sshguard",
        "Attack from",
        FwClass::Ips,
        "Attack from \"203.0.113.46\" on service SSH with danger 10.",
    ),
    (
        "sshguard",
        "Blocking",
        FwClass::Traffic,
        "Blocking \"203.0.113.46/32\" for 120 secs (3 attacks in 20 secs, after 1 abuses over 20 secs.)",
    ),
    (
        "openvpn",
        "- connected",
        FwClass::UserLogin,
        "openvpn server 'ovpns1' user 'bob' address '198.51.100.70:51000' - connected",
    ),
    (
        "openvpn",
        "- disconnected",
        FwClass::Logout,
        "openvpn server 'ovpns1' user 'bob' address '198.51.100.70:51000' - disconnected",
    ),
    (
        "openvpn",
        "could not authenticate",
        FwClass::LoginFailed,
        "user 'mallory' could not authenticate.",
    ),
    (
        "openvpn",
        "authenticated",
        FwClass::UserLogin,
        "user 'bob' authenticated",
    ),
    (
        "dhcpd",
        "DHCP",
        FwClass::Event,
        "DHCPACK on 192.168.1.50 to aa:bb:cc:dd:ee:ff (laptop) via em1",
    ),
    (
        "unbound",
        "info:",
        FwClass::Event,
        "[44112:0] info: 192.168.1.50 www.example.com. A IN",
    ),
    (
        "charon",
        "[",
        FwClass::Event,
        "09[IKE] <con1000|5> 203.0.113.80 is initiating a Main Mode IKE_SA",
    ),
];

/// The text between `open` and the next `close` after it.
fn between<'a>(t: &'a str, open: &str, close: char) -> Option<&'a str> {
    let rest = t.get(t.find(open)? + open.len()..)?;
    rest.get(..rest.find(close)?)
}

/// The first word of `t` that is an address (`1.2.3.4`, `"1.2.3.4/32"`, `'1.2.3.4:5'`).
fn first_address(t: &str) -> (Option<std::net::IpAddr>, Option<u16>) {
    t.split(' ')
        .take(16)
        .map(|w| w.trim_matches(['"', '\'', ',', '.', '(', ')']))
        .map(|w| w.split('/').next().unwrap_or(w))
        .map(build::addr_colon_port)
        .find(|(a, _)| a.is_some())
        .unwrap_or((None, None))
}

/// The text without a leading `program[pid]: ` tag (left in the text by some headers).
fn without_tag(t: &str) -> &str {
    match t.split_once(": ") {
        Some((w, rest)) if !w.contains(' ') => {
            let name = w.split('[').next().unwrap_or(w);
            if PROGRAM_APPS.iter().any(|a| a.eq_ignore_ascii_case(name)) {
                rest
            } else {
                t
            }
        }
        _ => t,
    }
}

/// A record of one of the [`PROGRAMS`].
fn program(input: &LogInput<'_>) -> Option<Draft> {
    let t = without_tag(input.text);
    let (app, _, class, _) = PROGRAMS
        .iter()
        .find(|(app, marker, _, _)| app_is(input, &[app]) && t.contains(marker))?;
    let (src_ip, src_port) = match t.find("from: ") {
        Some(at) => first_address(t.get(at + 6..)?),
        None => match between(t, "address '", '\'') {
            Some(a) => build::addr_colon_port(a),
            None => first_address(t),
        },
    };
    let user = between(t, "user '", '\'');
    let (domain, message_id) = match *app {
        "unbound" => (t.split(' ').nth(3).map(|d| d.trim_end_matches('.')), None),
        "dhcpd" | "charon" => (None, t.split(' ').next()),
        _ => (None, None),
    };
    let parts = FwParts {
        flow: Flow {
            src_ip,
            src_port,
            ..Default::default()
        },
        user,
        domain,
        action: (*class == FwClass::Traffic).then_some("block"),
        rule: (*app == "sshguard").then_some("sshguard"),
        signature: (*class == FwClass::Ips).then_some("sshguard attack"),
        message_id,
        msg: Some(t),
        app: Some(app),
        ..Default::default()
    };
    if src_ip.is_none() && user.is_none() {
        return None;
    }
    let sev = match class {
        FwClass::Ips | FwClass::LoginFailed => Severity::Middle,
        _ => Severity::Info,
    };
    Some(
        build::fw_draft(*class, &parts, "filterlog-unknown-rule", sev)
            .summary(t)
            .vendor("Netgate/Deciso")
            .model(Some("pfSense/OPNsense")),
    )
}

/// Normalises one filterlog line.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    if app_is(input, PROGRAM_APPS) {
        return program(input);
    }
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
    fn every_program_row_sample_normalises_to_its_class() {
        use pharos_model::ident::UserActivityType as U;
        for (app, _, class, sample) in PROGRAMS {
            let n = with_app(sample, app, "filterlog");
            let tagged = format!("{app}[42]: {sample}");
            let m = crate::vendors::testutil::auto(&tagged, "filterlog");
            assert_eq!(m.message.kind.name(), n.message.kind.name(), "{tagged}");
            let k = &n.message.kind;
            let ok = match class {
                FwClass::AdminLogin => matches!(k, Kind::SystemAccessLog(_)),
                FwClass::LoginFailed => {
                    matches!(k, Kind::UserActivityLog(u) if u.additional_info.activity_type == Some(U::FailedLogin))
                }
                FwClass::UserLogin => {
                    matches!(k, Kind::UserActivityLog(u) if u.additional_info.activity_type == Some(U::SuccessfulLogin))
                }
                FwClass::Logout => {
                    matches!(k, Kind::UserActivityLog(u) if u.additional_info.activity_type == Some(U::Logout))
                }
                FwClass::Ips => matches!(k, Kind::Intrusion(i) if i.src_ip.is_some()),
                FwClass::Traffic => matches!(k, Kind::FirewallTrafficLog(f) if f.src_ip.is_some()),
                _ => {
                    matches!(k, Kind::GenericLog(_))
                        && n.message
                            .common
                            .fields
                            .as_ref()
                            .is_some_and(|f| f.src_ip.is_some())
                }
            };
            assert!(ok, "{app}: {sample}: {k:?}");
        }
    }

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
