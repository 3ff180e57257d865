//! SonicWall SonicOS syslog, "default" key=value format (`id=firewall sn=... time="..." fw=...
//! pri=6 c=1024 m=537 msg="Connection Closed" src=10.0.0.5:51000:X0 dst=203.0.113.8:443:X1
//! proto=tcp/https sent=.. rcvd=.. rule="..." usr="..." fw_action="..."`), as described in the
//! SonicOS Log Event Reference Guide (tag table: `sn` serial, `m` message id, `c` category,
//! `src`/`dst` as `address:port:interface[:host]`, `srcV6`/`dstV6`, `natSrc`/`natDst`,
//! `proto` as `transport/service`, `arg` URL path, `dstname` host, `usr` user).
//!
//! Mapping: the message id through [`MESSAGES`] (connection and drop logs -> firewall traffic log;
//! IPS alerts -> intrusion; Gateway Anti-Virus -> virus; floods -> DDoS; administrator and user
//! logins -> system access / user activity logs; configuration -> system event); an id outside
//! the table through [`MSG_WORDS`] on its `msg`, then firewall traffic log when it has addresses,
//! else a generic log carrying its fields. Rule names: `rule`, the signature in `msg`;
//! placeholder `sonicwall-unknown-rule`.

use std::net::IpAddr;

use pharos_model::Severity;

use crate::LogInput;
use crate::build::{self, Draft, Flow, FwClass, FwParts, ip, port};
use crate::fields::Kv;
use crate::vendors::{Probe, probe};

/// `id=... sn=... m=...` or the `fw_action=` tag.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    probe!(p, "sn=") && probe!(p, " m=") && (probe!(p, "id=") || probe!(p, "fw="))
        || probe!(p, "fw_action=")
}

/// Message id -> class, with a sample line for the tests (SonicOS Log Event Reference).
const MESSAGES: &[(&str, FwClass, &str)] = &[
    (
        "36",
        FwClass::Traffic,
        r#"id=firewall sn=0017C5000001 time="2023-04-02 10:11:12 UTC" fw=198.51.100.1 pri=1 c=32 m=36 msg="TCP packet dropped" n=1200 src=203.0.113.50:41522:X1 dst=198.51.100.1:23:X1 proto=tcp/telnet fw_action="drop""#,
    ),
    (
        "37",
        FwClass::Traffic,
        r#"id=firewall sn=0017C5000001 time="2023-04-02 10:11:13 UTC" fw=198.51.100.1 pri=1 c=32 m=37 msg="UDP packet dropped" src=203.0.113.51:5060:X1 dst=198.51.100.1:5060:X1 proto=udp/5060 fw_action="drop""#,
    ),
    (
        "38",
        FwClass::Traffic,
        r#"id=firewall sn=0017C5000001 time="2023-04-02 10:11:14 UTC" fw=198.51.100.1 pri=1 c=32 m=38 msg="ICMP packet dropped due to Policy" src=203.0.113.52::X1 dst=198.51.100.1::X1 proto=icmp type=8 code=0 fw_action="drop""#,
    ),
    (
        "41",
        FwClass::Traffic,
        r#"id=firewall sn=0017C5000001 time="2023-04-02 10:11:15 UTC" fw=198.51.100.1 pri=1 c=32 m=41 msg="Unknown protocol dropped" src=203.0.113.53::X1 dst=198.51.100.1::X1 proto=47 fw_action="drop""#,
    ),
    (
        "97",
        FwClass::Traffic,
        r#"id=firewall sn=0017C5000001 time="2023-04-02 10:12:00 UTC" fw=198.51.100.1 pri=6 c=1024 m=97 app=48 n=9 src=192.168.1.20:52100:X0 dst=93.184.216.34:443:X1 proto=tcp/https op=1 sent=798 rcvd=12352 result=403 dstname=www.example.com arg=/favicon.ico code=20 Category="Online Banking""#,
    ),
    (
        "14",
        FwClass::Traffic,
        r#"id=firewall sn=0017C5000001 time="2023-04-02 10:12:01 UTC" fw=198.51.100.1 pri=5 c=1024 m=14 msg="Web site access denied" src=192.168.1.21:52101:X0 dst=203.0.113.80:80:X1 proto=tcp/http dstname=blocked.example.net arg=/index.html code=27 Category="Gambling" fw_action="drop""#,
    ),
    (
        "98",
        FwClass::Traffic,
        r#"id=firewall sn=C0EAE4000002 time="2023-04-02 10:13:00" fw=198.51.100.1 pri=6 c=262144 m=98 msg="Connection Opened" app=49169 appName="General DNS" n=1157 src=192.168.1.22:60000:X0 dst=8.8.8.8:53:X1 proto=udp/dns sent=120 dpi=1 rule="22 (LAN->WAN)" fw_action="NA""#,
    ),
    (
        "537",
        FwClass::Traffic,
        r#"id=firewall sn=C0EAE4000002 time="2023-04-02 10:13:05" fw=198.51.100.1 pri=6 c=1024 m=537 msg="Connection Closed" f=2 n=1158 src=192.168.1.22:60000:X0 dst=8.8.8.8:53:X1 proto=udp/dns sent=56 rcvd=146 usr="alice" rule="22 (LAN->WAN)""#,
    ),
    (
        "608",
        FwClass::Ips,
        r#"id=firewall sn=C0EAE4000002 time="2023-04-02 10:14:00" fw=198.51.100.1 pri=1 c=32 m=608 msg="IPS Detection Alert: WEB-ATTACKS SQL Injection Attempt" sid=3410 ipscat=WEB-ATTACKS ipspri=1 src=203.0.113.60:41000:X1 dst=192.168.1.80:80:X0 proto=tcp/http fw_action="NA""#,
    ),
    (
        "609",
        FwClass::Ips,
        r#"id=firewall sn=C0EAE4000002 time="2023-04-02 10:14:01" fw=198.51.100.1 pri=1 c=32 m=609 msg="IPS Prevention Alert: NETBIOS NT NULL Session" sid=1022 ipscat=NETBIOS ipspri=2 src=203.0.113.61:41001:X1 dst=192.168.1.81:445:X0 proto=tcp/445 fw_action="drop""#,
    ),
    (
        "82",
        FwClass::Ips,
        r#"id=firewall sn=C0EAE4000002 time="2023-04-02 10:14:02" fw=198.51.100.1 pri=1 c=32 m=82 msg="Possible port scan detected" src=203.0.113.62:40000:X1 dst=198.51.100.1:22:X1 note="TCP scanned port list, 22, 23, 25" fw_action="NA""#,
    ),
    (
        "809",
        FwClass::Virus,
        r#"id=firewall sn=C0EAE4000002 time="2023-04-02 10:15:00" fw=198.51.100.1 pri=1 c=32 m=809 msg="Gateway Anti-Virus Alert: Trojan.Agent.XYZ (Trojan) blocked." sid=1234 catid=1 src=203.0.113.70:80:X1 dst=192.168.1.30:52300:X0 proto=tcp/http fw_action="drop""#,
    ),
    (
        "25",
        FwClass::Ddos,
        r#"id=firewall sn=C0EAE4000002 time="2023-04-02 10:15:30" fw=198.51.100.1 pri=1 c=32 m=25 msg="Possible SYN Flood on IF X1" src=203.0.113.71:1024:X1 dst=198.51.100.1:80:X1 fw_action="drop""#,
    ),
    (
        "1080",
        FwClass::UserLogin,
        r#"id=firewall sn=C0EAE4000002 time="2023-04-02 10:16:00" fw=198.51.100.1 pri=6 c=2048 m=1080 msg="SSL VPN zone remote user login allowed" src=203.0.113.90:55000:X1 dst=198.51.100.1:4433:X1 proto=tcp/4433 usr="bob""#,
    ),
    (
        "29",
        FwClass::AdminLogin,
        r#"id=firewall sn=C0EAE4000002 time="2023-04-02 10:16:30" fw=198.51.100.1 pri=6 c=8 m=29 msg="Administrator login allowed" src=192.168.1.5:51111:X0 dst=192.168.1.1:443:X0 proto=tcp/https usr="admin""#,
    ),
    (
        "30",
        FwClass::LoginFailed,
        r#"id=firewall sn=C0EAE4000002 time="2023-04-02 10:16:40" fw=198.51.100.1 pri=1 c=8 m=30 msg="Administrator login denied due to bad credentials" src=203.0.113.91:51112:X1 dst=198.51.100.1:443:X1 usr="admin""#,
    ),
    (
        "31",
        FwClass::UserLogin,
        r#"id=firewall sn=C0EAE4000002 time="2023-04-02 10:16:50" fw=198.51.100.1 pri=6 c=2048 m=31 msg="User login successful" src=192.168.1.44:51113:X0 dst=192.168.1.1:443:X0 usr="carol""#,
    ),
    (
        "1030",
        FwClass::Config,
        r#"id=firewall sn=C0EAE4000002 time="2023-04-02 10:17:00" fw=198.51.100.1 pri=6 c=8 m=1030 msg="Configuration changed: Access rule modified" src=192.168.1.5:51114:X0 usr="admin""#,
    ),
];

/// Words of `msg` for ids outside [`MESSAGES`] (lower case), first match wins.
const MSG_WORDS: &[(&str, FwClass)] = &[
    ("anti-virus", FwClass::Virus),
    ("antivirus", FwClass::Virus),
    ("anti-spyware", FwClass::Virus),
    ("ips detection", FwClass::Ips),
    ("ips prevention", FwClass::Ips),
    ("port scan", FwClass::Ips),
    ("flood", FwClass::Ddos),
    ("login denied", FwClass::LoginFailed),
    ("login failed", FwClass::LoginFailed),
    ("logged out", FwClass::Logout),
    ("logout", FwClass::Logout),
    ("administrator login", FwClass::AdminLogin),
    ("login allowed", FwClass::UserLogin),
    ("login successful", FwClass::UserLogin),
    ("configuration", FwClass::Config),
];

/// Parts of an `address:port:interface[:host]` endpoint.
type Endpoint<'a> = (
    Option<IpAddr>,
    Option<u16>,
    Option<&'a str>,
    Option<&'a str>,
);

/// `address:port:interface[:host]` (IPv4) or an IPv6 address, `[v6]:port:interface`.
fn endpoint(v: &str) -> Endpoint<'_> {
    fn nonempty(s: Option<&str>) -> Option<&str> {
        s.filter(|s| !s.is_empty())
    }
    if let Some(a) = ip(v) {
        return (Some(a), None, None, None);
    }
    if let Some(rest) = v.strip_prefix('[')
        && let Some((a, more)) = rest.split_once(']')
    {
        let mut it = more.trim_start_matches(':').split(':');
        return (
            ip(a),
            it.next().and_then(port),
            nonempty(it.next()),
            nonempty(it.next()),
        );
    }
    let mut it = v.split(':');
    let a = it.next().and_then(ip);
    (
        a,
        it.next().and_then(port),
        nonempty(it.next()),
        nonempty(it.next()),
    )
}

/// `pri` (syslog 0..7) on Pharos' scale.
fn severity(kv: &Kv<'_>) -> Severity {
    build::syslog_severity(kv.get("pri").and_then(|p| p.parse().ok()))
}

/// Normalises one SonicWall line.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let kv = Kv::parse(input.text);
    let m = kv.get("m");
    kv.get("sn").or(kv.get("fw_action"))?;
    m.or(kv.get("fw_action"))?;
    let (src_ip, src_port, src_if, _) = kv.get("src").map(endpoint).unwrap_or_default();
    let (dst_ip, dst_port, dst_if, dst_host) = kv.get("dst").map(endpoint).unwrap_or_default();
    let src_ip = src_ip.or_else(|| kv.get("srcV6").and_then(ip));
    let dst_ip = dst_ip.or_else(|| kv.get("dstV6").and_then(ip));
    let (nat_src_ip, nat_src_port, _, _) = kv
        .any(&["natSrc", "natSrcV6"])
        .map(endpoint)
        .unwrap_or_default();
    let (nat_dst_ip, nat_dst_port, _, _) = kv
        .any(&["natDst", "natDstV6"])
        .map(endpoint)
        .unwrap_or_default();
    let (proto, service) = match kv.get("proto") {
        Some(p) => match p.split_once('/') {
            Some((t, s)) => (Some(t), Some(s)),
            None => (Some(p), None),
        },
        None => (None, None),
    };
    let msg = kv.get("msg");
    let flow = Flow {
        src_ip,
        src_port,
        dst_ip,
        dst_port,
    };
    let lower = msg.unwrap_or("").to_ascii_lowercase();
    let class = MESSAGES
        .iter()
        .find(|(id, _, _)| Some(*id) == m)
        .map(|(_, c, _)| *c)
        .or_else(|| build::first_keyword(&lower, MSG_WORDS))
        .unwrap_or(if src_ip.is_some() || dst_ip.is_some() {
            FwClass::Traffic
        } else {
            FwClass::Event
        });
    // `IPS Detection Alert: <signature>` / `Gateway Anti-Virus Alert: <name> blocked.`
    let signature = msg
        .filter(|_| matches!(class, FwClass::Ips | FwClass::Virus | FwClass::Ddos))
        .map(|s| s.split_once(": ").map_or(s, |(_, sig)| sig))
        .map(|s| s.trim_end_matches(" blocked.").trim_end_matches('.'));
    let domain = kv.any(&["dstname", "host"]).or(dst_host);
    let path = kv.get("arg");
    let url = match (domain, path) {
        (Some(d), Some(a)) if a.starts_with('/') => Some(format!("{d}{a}")),
        _ => None,
    };
    let parts = FwParts {
        flow,
        nat_src_ip,
        nat_src_port,
        nat_dst_ip,
        nat_dst_port,
        proto,
        app: kv.get("appName").or(service),
        action: kv.get("fw_action").filter(|a| *a != "NA").or_else(|| {
            (class == FwClass::Traffic && build::contains_ci(msg.unwrap_or(""), "dropped"))
                .then_some("drop")
        }),
        rule: kv.get("rule"),
        user: kv.any(&["usr", "user"]).map(|u| u.trim_matches('"')),
        url: url.as_deref().or(path),
        domain,
        method: kv.get("op").and_then(|o| match o {
            "1" => Some("GET"),
            "2" => Some("POST"),
            "3" => Some("HEAD"),
            _ => None,
        }),
        status: kv.get("result").and_then(|r| r.parse().ok()),
        sent: kv.get("sent").and_then(|v| v.parse().ok()),
        received: kv.get("rcvd").and_then(|v| v.parse().ok()),
        session: kv.get("n"),
        message_id: m,
        in_if: src_if.or(kv.get("srcZone")),
        out_if: dst_if.or(kv.get("dstZone")),
        signature,
        msg,
        ..Default::default()
    };
    let d = build::fw_draft(class, &parts, "sonicwall-unknown-rule", severity(&kv));
    let time = kv
        .get("time")
        .and_then(|t| crate::time::iso(t.trim_end_matches(" UTC")));
    Some(
        d.time(time)
            .vendor("SonicWall")
            .model(Some("SonicOS"))
            .summary(msg.unwrap_or(input.text)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};
    use pharos_model::Kind;

    fn class_of(k: &Kind) -> FwClass {
        match k {
            Kind::FirewallTrafficLog(_) => FwClass::Traffic,
            Kind::Intrusion(_) | Kind::WebAttack(_) => FwClass::Ips,
            Kind::Virus(_) => FwClass::Virus,
            Kind::Ddos(_) => FwClass::Ddos,
            Kind::SystemAccessLog(_) => FwClass::AdminLogin,
            Kind::UserActivityLog(u) => match u.additional_info.activity_type {
                Some(pharos_model::ident::UserActivityType::FailedLogin) => FwClass::LoginFailed,
                Some(pharos_model::ident::UserActivityType::Logout) => FwClass::Logout,
                _ => FwClass::UserLogin,
            },
            Kind::SystemEvent(_) => FwClass::Config,
            _ => FwClass::Event,
        }
    }

    #[test]
    fn every_message_row_sample_normalises_to_its_class() {
        for (id, class, sample) in MESSAGES {
            let n = auto(sample, "sonicwall");
            assert_eq!(class_of(&n.message.kind), *class, "m={id}: {sample}");
            let f = n.message.common.fields.as_deref();
            assert_eq!(
                f.and_then(|f| f.message_id.as_deref()),
                Some(*id),
                "{sample}"
            );
            let addrs = pharos_model::addresses_of(&n.message.kind);
            let src = sample
                .split("src=")
                .nth(1)
                .and_then(|s| s.split(':').next());
            assert!(
                addrs
                    .iter()
                    .any(|(_, a)| Some(a.to_string().as_str()) == src),
                "{sample}: {addrs:?}"
            );
        }
    }

    #[test]
    fn connection_closed_keeps_ports_user_and_nat() {
        let n = auto(
            r#"<134>  id=firewall sn=C0EAE4000777 time="2024-01-09 13:40:02" fw=198.51.100.4 pri=6 c=1024 m=537 msg="Connection Closed" src=172.16.5.9:61022:X1 natSrc=198.51.100.4:40000 dst=203.0.113.9:80:X0:www.example.org natDst=203.0.113.9:80 proto=tcp/http sent=412 rcvd=1800 usr="dave""#,
            "sonicwall",
        );
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!("{:?}", n.message.kind)
        };
        assert_eq!(f.src_ip, ip("172.16.5.9"));
        assert_eq!(f.src_port, Some(61022));
        assert_eq!(f.dst_port, Some(80));
        assert_eq!(f.user.as_deref(), Some("dave"));
        assert_eq!(f.in_interface.as_deref(), Some("X1"));
        let x = n.message.common.fields.as_deref().unwrap();
        assert_eq!(x.nat_src_ip, ip("198.51.100.4"));
        assert_eq!(x.nat_src_port, Some(40000));
        assert_eq!(x.domain.as_deref(), Some("www.example.org"));
    }

    #[test]
    fn an_id_outside_the_table_with_addresses_is_traffic() {
        let n = auto(
            r#"id=firewall sn=C0EAE4000002 time="2023-04-02 10:13:07" fw=198.51.100.1 pri=6 c=1024 m=4242 src=10.1.1.6:50002:X0 dst=10.1.1.1:443:X0 proto=tcp/https sent=60"#,
            "sonicwall",
        );
        assert!(matches!(n.message.kind, Kind::FirewallTrafficLog(_)));
    }

    #[test]
    fn web_site_hit_keeps_the_url() {
        let n = auto(MESSAGES[4].2, "sonicwall");
        let x = n.message.common.fields.as_deref().unwrap();
        assert_eq!(x.url.as_deref(), Some("www.example.com/favicon.ico"));
        assert_eq!(x.domain.as_deref(), Some("www.example.com"));
    }
}
