//! Stormshield Network Security (SNS) syslog, key=value (`id=firewall time="..." fw="..."
//! tz=+0000 startime="..." pri=5 srcif="Ethernet0" srcifname="out" ipproto=tcp proto=http
//! src=... srcport=... dst=... dstport=... user=... action=pass logtype="connection"`), as the
//! SNS "Description of audit logs" reference documents them (one `logtype` per log file).
//!
//! Mapping: `logtype` through [`TYPES`]: connection, filter, web, plugin, ssl, smtp, pop3, ftp ->
//! firewall traffic log (web: URL, host and method in `envelope/fields`); alarm -> intrusion (web
//! attack when the alarm names an HTTP attack, virus when it names a virus); auth -> user
//! activity (failed when `error` is not 0); sandboxing -> virus; system, server, monitor, count,
//! authstat, filterstat, vpn, xvpn -> generic log carrying its fields. Rule names: `rulename`,
//! `ruleid`, the alarm message; placeholder `stormshield-unknown-rule`.

use pharos_model::Severity;

use crate::LogInput;
use crate::build::{self, Draft, Flow, FwClass, FwParts, ip, port};
use crate::fields::Kv;
use crate::vendors::{Probe, probe};

/// `id=firewall` with `logtype=`, `startime=` or `tz=`.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    probe!(p, "id=firewall") && (probe!(p, "logtype=") || probe!(p, "startime="))
}

/// (logtype, class, sample).
const TYPES: &[(&str, FwClass, &str)] = &[
    (
        "connection",
        FwClass::Traffic,
        r#"id=firewall time="2024-05-02 10:00:01" fw="sns-gw1" tz=+0200 startime="2024-05-02 09:59:40" pri=5 confid=01 slotlevel=2 ruleid=4 rulename="lan_to_web" srcif="Ethernet1" srcifname="in" ipproto=tcp dstif="Ethernet0" dstifname="out" proto=https src=192.168.10.20 srcport=50122 srcportname=ephemeral_fw_tcp dst=93.184.216.34 dstport=443 dstportname=https modsrc=198.51.100.10 modsrcport=40020 origdst=93.184.216.34 origdstport=443 ipv=4 sent=2048 rcvd=18000 duration=21.05 action=pass user="alice" logtype="connection""#,
    ),
    (
        "filter",
        FwClass::Traffic,
        r#"id=firewall time="2024-05-02 10:00:02" fw="sns-gw1" tz=+0200 startime="2024-05-02 10:00:02" pri=5 confid=01 slotlevel=2 ruleid=9 srcif="Ethernet0" srcifname="out" ipproto=tcp dstif="Ethernet0" dstifname="out" proto=ssh src=203.0.113.40 srcport=41222 dst=198.51.100.10 dstport=22 dstportname=ssh ipv=4 action=block logtype="filter""#,
    ),
    (
        "web",
        FwClass::Traffic,
        r#"id=firewall time="2024-05-02 10:00:03" fw="sns-gw1" tz=+0200 startime="2024-05-02 10:00:03" pri=5 confid=01 slotlevel=2 ruleid=4 srcif="Ethernet1" srcifname="in" ipproto=tcp proto=http src=192.168.10.21 srcport=50200 dst=203.0.113.50 dstport=80 user="bob" op=GET result=200 arg="/news/index.html" dstname=news.example.com cat_site="News" action=pass sent=400 rcvd=9000 logtype="web""#,
    ),
    (
        "alarm",
        FwClass::Ips,
        r#"id=firewall time="2024-05-02 10:00:04" fw="sns-gw1" tz=+0200 startime="2024-05-02 10:00:04" pri=4 confid=01 slotlevel=2 ruleid=4 srcif="Ethernet0" srcifname="out" ipproto=tcp dstif="Ethernet1" dstifname="in" proto=http src=203.0.113.60 srcport=44000 dst=192.168.10.80 dstport=80 ipv=4 action=block msg="SQL injection attempt" class=protocol classification=0 alarmid=140 target=dst logtype="alarm""#,
    ),
    (
        "alarm",
        FwClass::Ips,
        r#"id=firewall time="2024-05-02 10:00:05" fw="sns-gw1" tz=+0200 startime="2024-05-02 10:00:05" pri=4 srcif="Ethernet0" srcifname="out" ipproto=tcp src=203.0.113.61 srcport=44001 dst=198.51.100.10 dstport=23 action=block msg="Port scan" class=protocol alarmid=1 logtype="alarm""#,
    ),
    (
        "auth",
        FwClass::UserLogin,
        r#"id=firewall time="2024-05-02 10:00:06" fw="sns-gw1" tz=+0200 startime="2024-05-02 10:00:06" pri=5 user="carol" src=192.168.10.30 method=LDAP error=0 msg="User authenticated" agentid=0 logtype="auth""#,
    ),
    (
        "auth",
        FwClass::LoginFailed,
        r#"id=firewall time="2024-05-02 10:00:07" fw="sns-gw1" tz=+0200 startime="2024-05-02 10:00:07" pri=4 user="mallory" src=203.0.113.70 method=PASSWORD error=2 msg="Bad password" logtype="auth""#,
    ),
    (
        "sandboxing",
        FwClass::Virus,
        r#"id=firewall time="2024-05-02 10:00:08" fw="sns-gw1" tz=+0200 startime="2024-05-02 10:00:08" pri=1 src=192.168.10.31 srcport=50400 dst=203.0.113.90 dstport=80 proto=http filename="setup.exe" hash=d41d8cd98f00b204e9800998ecf8427e sandboxing=malicious virus="Trojan.GenericKD" action=block logtype="sandboxing""#,
    ),
    (
        "system",
        FwClass::Event,
        r#"id=firewall time="2024-05-02 10:00:09" fw="sns-gw1" tz=+0200 startime="2024-05-02 10:00:09" pri=5 service=sysd msg="daemon configuration reloaded" logtype="system""#,
    ),
    (
        "server",
        FwClass::AdminLogin,
        r#"id=firewall time="2024-05-02 10:00:10" fw="sns-gw1" tz=+0200 startime="2024-05-02 10:00:10" pri=5 user="admin" address=192.168.10.5 sessionid=12 domain="local" msg="CONFIG FILTER ACTIVATE index=2" error=0 logtype="server""#,
    ),
    (
        "smtp",
        FwClass::Traffic,
        r#"id=firewall time="2024-05-02 10:00:11" fw="sns-gw1" tz=+0200 startime="2024-05-02 10:00:11" pri=5 ipproto=tcp proto=smtp src=203.0.113.91 srcport=40500 dst=192.168.10.25 dstport=25 action=pass sent=5000 rcvd=300 logtype="smtp""#,
    ),
    (
        "plugin",
        FwClass::Traffic,
        r#"id=firewall time="2024-05-02 10:00:12" fw="sns-gw1" tz=+0200 startime="2024-05-02 10:00:12" pri=5 ipproto=udp proto=dns src=192.168.10.40 srcport=53000 dst=9.9.9.9 dstport=53 action=pass logtype="plugin""#,
    ),
];

/// Words of an alarm message that make it a virus (lower case).
const VIRUS_WORDS: &[(&str, FwClass)] = &[
    ("virus", FwClass::Virus),
    ("malware", FwClass::Virus),
    ("flood", FwClass::Ddos),
];

/// `pri` (syslog 0..7) on Pharos' scale.
fn severity(kv: &Kv<'_>) -> Severity {
    build::syslog_severity(kv.get("pri").and_then(|p| p.parse().ok()))
}

/// Normalises one Stormshield line.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let kv = Kv::parse(input.text);
    if kv.get("id") != Some("firewall") {
        return None;
    }
    let logtype = kv.get("logtype").unwrap_or("");
    let mut class = TYPES
        .iter()
        .find(|(t, _, _)| t.eq_ignore_ascii_case(logtype))
        .map(|(_, c, _)| *c)
        .unwrap_or(FwClass::Event);
    let msg = kv.get("msg");
    let error = kv.get("error").is_some_and(|e| e != "0");
    match class {
        FwClass::UserLogin if error => class = FwClass::LoginFailed,
        FwClass::Ips => {
            let l = msg.unwrap_or("").to_ascii_lowercase();
            class = build::first_keyword(&l, VIRUS_WORDS).unwrap_or(class);
        }
        // the administration server logs commands: a login, else a configuration command
        FwClass::AdminLogin => {
            let l = msg.unwrap_or("").to_ascii_lowercase();
            class = if error {
                FwClass::LoginFailed
            } else if l.contains("config") || l.contains("modify") {
                FwClass::Config
            } else if kv.get("user").is_some() {
                FwClass::AdminLogin
            } else {
                FwClass::Event
            };
        }
        _ => {}
    }
    let flow = Flow {
        src_ip: kv.any(&["src", "address"]).and_then(ip),
        src_port: kv.get("srcport").and_then(port),
        dst_ip: kv.get("dst").and_then(ip),
        dst_port: kv.get("dstport").and_then(port),
    };
    let domain = kv.get("dstname");
    let path = kv.get("arg");
    let url = match (domain, path) {
        (Some(d), Some(a)) if logtype == "web" && a.starts_with('/') => Some(format!("{d}{a}")),
        _ => None,
    };
    let alarm = matches!(class, FwClass::Ips | FwClass::Virus | FwClass::Ddos);
    let parts = FwParts {
        flow,
        nat_src_ip: kv.get("modsrc").and_then(ip),
        nat_src_port: kv.get("modsrcport").and_then(port),
        nat_dst_ip: kv.get("moddst").and_then(ip),
        nat_dst_port: kv.get("moddstport").and_then(port),
        proto: kv.get("ipproto"),
        app: kv.get("proto"),
        action: kv.get("action"),
        rule: kv.any(&["rulename", "ruleid"]),
        user: kv.get("user"),
        url: url.as_deref().or(path.filter(|_| logtype == "web")),
        domain,
        method: kv.get("op").filter(|_| logtype == "web"),
        status: kv
            .get("result")
            .filter(|_| logtype == "web")
            .and_then(|r| r.parse().ok()),
        sent: kv.get("sent").and_then(|v| v.parse().ok()),
        received: kv.get("rcvd").and_then(|v| v.parse().ok()),
        session: kv.get("sessionid"),
        message_id: kv.get("alarmid").or(Some(logtype)),
        in_if: kv.any(&["srcifname", "srcif"]),
        out_if: kv.any(&["dstifname", "dstif"]),
        signature: if alarm {
            kv.any(&["virus", "msg"])
        } else {
            None
        },
        file: kv.get("filename"),
        msg,
        ..Default::default()
    };
    let d = build::fw_draft(class, &parts, "stormshield-unknown-rule", severity(&kv));
    let time = kv.get("time").and_then(|t| {
        let (d, tod) = t.split_once(' ')?;
        crate::time::date_time(d, tod, kv.get("tz"))
    });
    Some(
        d.time(time)
            .vendor("Stormshield")
            .model(Some("SNS"))
            .summary(msg.unwrap_or(input.text)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};
    use pharos_model::Kind;

    #[test]
    fn every_type_row_sample_normalises_to_its_class() {
        for (ty, class, sample) in TYPES {
            let n = auto(sample, "stormshield");
            let k = &n.message.kind;
            let ok = match class {
                FwClass::Traffic => matches!(k, Kind::FirewallTrafficLog(_)),
                FwClass::Ips => matches!(k, Kind::Intrusion(_) | Kind::WebAttack(_)),
                FwClass::Virus => matches!(k, Kind::Virus(_)),
                FwClass::UserLogin | FwClass::LoginFailed => matches!(k, Kind::UserActivityLog(_)),
                FwClass::AdminLogin => matches!(k, Kind::SystemEvent(_) | Kind::SystemAccessLog(_)),
                _ => matches!(k, Kind::GenericLog(_)),
            };
            assert!(ok, "{ty}: {k:?}");
            assert!(n.message.common.fields.is_some(), "{sample}");
        }
    }

    #[test]
    fn connection_keeps_flow_nat_and_time_offset() {
        let n = auto(TYPES[0].2, "stormshield");
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.src_ip, ip("192.168.10.20"));
        assert_eq!(f.dst_port, Some(443));
        assert_eq!(f.user.as_deref(), Some("alice"));
        let x = n.message.common.fields.as_deref().unwrap();
        assert_eq!(x.nat_src_ip, ip("198.51.100.10"));
        assert_eq!(
            n.message.common.event_time.to_rfc3339(),
            "2024-05-02T08:00:01+00:00"
        );
    }

    #[test]
    fn web_log_keeps_url_and_method() {
        let n = auto(TYPES[2].2, "stormshield");
        let x = n.message.common.fields.as_deref().unwrap();
        assert_eq!(x.url.as_deref(), Some("news.example.com/news/index.html"));
        assert_eq!(x.http_method.as_deref(), Some("GET"));
    }
}
