//! FortiGate (FortiOS 3 to 7) `key=value` logs.
//!
//! Mapping: traffic -> firewall traffic log; utm/ips -> intrusion (web attack when the signature is
//! an HTTP attack); utm/virus -> virus; utm/webfilter, app-ctrl, dlp, file-filter -> DPI log;
//! anomaly (DoS policy) -> DDoS; event/system admin login -> system access log (failures -> user
//! activity); configuration edits -> configuration-change event; performance statistics ->
//! resource utilisation; VPN and user authentication logins -> user activity. Rule names: the
//! IPS signature, virus name, URL category or policy id; placeholder `fortigate-unknown-rule`.

use pharos_model::ident::{DpiType, OperationType, UserActivityType};
use pharos_model::{
    DpiLog, FirewallTrafficLog, Kind, ResourceUtilizationLog, Severity, VirusEvent,
};

use crate::LogInput;
use crate::build::{self, Draft, Flow, Ids, Request, ip, port};
use crate::fields::Kv;
use crate::vendors::{Probe, probe};

const RULE: &str = "fortigate-unknown-rule";

/// `devid=`/`device_id=` with `logid=`/`log_id=`, or `date=` with `devname=`/`eventtime=`.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    (probe!(p, "logid=") || probe!(p, "log_id=")) && (probe!(p, "type=") || probe!(p, "devid="))
        || probe!(p, "date=") && (probe!(p, "devname=") || probe!(p, "eventtime="))
}

/// FortiGate `level=` (and IPS `severity=`) on Pharos' scale.
fn severity(level: Option<&str>) -> Severity {
    match level.unwrap_or("") {
        "emergency" | "alert" | "critical" => Severity::Critical,
        "error" | "high" => Severity::High,
        "warning" | "medium" => Severity::Middle,
        "notice" | "low" => Severity::Low,
        _ => Severity::Info,
    }
}

/// Normalises one FortiGate line.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let kv = Kv::parse(input.text);
    let ty = kv.get("type")?;
    let sub = kv.get("subtype").unwrap_or("");
    let level = kv.any(&["level", "pri"]);
    let kind = match (ty, sub) {
        ("traffic", _) => traffic(&kv),
        ("utm" | "attack" | "ips", "ips" | "signature") | ("ips", _) => intrusion(&kv),
        ("utm" | "virus", "virus" | "infected") | ("virus", _) => virus(&kv),
        ("utm" | "webfilter", "webfilter") | ("webfilter", _) => dpi(&kv, DpiType::DataFiltering),
        ("utm", "app-ctrl") | ("app-ctrl", _) => dpi(&kv, DpiType::ApplicationBehaviorControl),
        ("utm", "dlp") | ("dlp", _) => dpi(&kv, DpiType::DataFiltering),
        ("utm", "file-filter") => dpi(&kv, DpiType::FileBlocking),
        ("utm" | "anomaly", "anomaly") | ("anomaly", _) => anomaly(&kv),
        ("event", "system") => system(&kv),
        ("event", "vpn") => vpn(&kv),
        ("event", "user") => user_auth(&kv),
        _ => build::unmapped("fortigate log type without a mapping"),
    };
    let sev = match &kind {
        Kind::Intrusion(_) | Kind::WebAttack(_) | Kind::Ddos(_) => {
            severity(kv.any(&["severity", "crlevel"])).max(severity(level))
        }
        _ => severity(level),
    };
    let time = kv
        .get("eventtime")
        .and_then(crate::time::epoch)
        .or_else(|| crate::time::date_time(kv.get("date")?, kv.get("time")?, kv.get("tz")));
    let summary = kv
        .any(&["msg", "logdesc", "attack", "virus", "catdesc"])
        .unwrap_or(ty);
    Some(
        Draft::new(kind, sev)
            .time(time)
            .vendor("Fortinet")
            .model(kv.any(&["devid", "device_id"]))
            .summary(summary),
    )
}

fn src_dst(
    kv: &Kv<'_>,
) -> (
    Option<std::net::IpAddr>,
    Option<u16>,
    Option<std::net::IpAddr>,
    Option<u16>,
) {
    (
        kv.any(&["srcip", "src"]).and_then(ip),
        kv.any(&["srcport", "src_port"]).and_then(port),
        kv.any(&["dstip", "dst"]).and_then(ip),
        kv.any(&["dstport", "dst_port"]).and_then(port),
    )
}

fn traffic(kv: &Kv<'_>) -> Kind {
    let (src_ip, src_port, dst_ip, dst_port) = src_dst(kv);
    let num = |k: &str| kv.get(k).and_then(|v| v.parse::<u64>().ok());
    Kind::FirewallTrafficLog(FirewallTrafficLog {
        src_ip,
        dst_ip,
        src_port,
        dst_port,
        protocol: kv.get("proto").and_then(build::protocol).or_else(|| {
            kv.get("service")
                .and_then(|s| s.rsplit('/').next())
                .and_then(build::protocol)
        }),
        action: kv.any(&["action", "status"]).and_then(build::action),
        sent_bytes: num("sentbyte").or_else(|| num("sent")),
        received_bytes: num("rcvdbyte").or_else(|| num("rcvd")),
        sent_packets: num("sentpkt"),
        received_packets: num("rcvdpkt"),
        policy_name: kv.any(&["policyname", "policyid"]).map(build::clip),
        rule_name: kv.any(&["policyid", "rule"]).map(build::clip),
        in_interface: kv.any(&["srcintf", "src_int"]).map(build::clip),
        out_interface: kv.any(&["dstintf", "dst_int"]).map(build::clip),
        application: kv.any(&["app", "service"]).map(build::clip),
        user: kv.any(&["user", "unauthuser"]).map(build::clip),
        session_id: kv.get("sessionid").and_then(|v| v.parse().ok()),
        duration: kv.get("duration").and_then(|v| v.parse().ok()),
    })
}

fn intrusion(kv: &Kv<'_>) -> Kind {
    let (src_ip, src_port, dst_ip, dst_port) = src_dst(kv);
    let sig = kv.any(&["attack", "attackname", "msg"]).unwrap_or("");
    let rule_name = build::rule_or(kv.any(&["attack", "attackid"]), RULE);
    let service = kv.get("service").unwrap_or("");
    build::intrusion_or_web_attack(
        Flow {
            src_ip,
            src_port,
            dst_ip,
            dst_port,
        },
        rule_name,
        build::web_attack_type(sig),
        Request {
            method: kv.get("method"),
            target: kv.get("url"),
            host: kv.get("hostname"),
            response_code: None,
        },
        Ids {
            protocol: kv
                .get("proto")
                .and_then(build::transport)
                .or_else(|| service.rsplit('/').next().and_then(build::transport)),
            app: build::app_or_port(Some(service), dst_port),
            attack_type: build::intrusion_attack_type(sig),
        },
    )
}

fn virus(kv: &Kv<'_>) -> Kind {
    let (src_ip, src_port, dst_ip, dst_port) = src_dst(kv);
    let name = kv.get("virus");
    Kind::Virus(VirusEvent {
        src_ip,
        src_port,
        dst_ip,
        dst_port,
        rule_name: build::rule_or(name.or(kv.get("virusid")), RULE),
        virus_name: name.map(build::clip),
        virus_type: name.and_then(build::virus_type),
        host: kv.any(&["hostname", "srcip"]).map(build::clip),
        file_type: kv.get("filetype").map(build::clip),
        file_name: kv.get("filename").map(build::clip),
        os: kv.get("osname").map(build::clip),
    })
}

fn dpi(kv: &Kv<'_>, ty: DpiType) -> Kind {
    let (src_ip, src_port, dst_ip, dst_port) = src_dst(kv);
    let action = match kv.get("action") {
        Some("passthrough" | "pass") => build::action("pass"),
        Some("blocked" | "block") => build::action("block"),
        Some(a) => build::action(a),
        None => None,
    };
    Kind::DpiLog(DpiLog {
        attack_type: Some(ty),
        src_ip,
        src_port,
        dst_ip,
        dst_port,
        rule_name: build::rule_or(kv.any(&["catdesc", "app", "filtername", "policyid"]), RULE),
        action: action.into_iter().collect(),
    })
}

fn anomaly(kv: &Kv<'_>) -> Kind {
    use pharos_model::ident::DdosType as D;
    /// DoS-policy anomaly names (lower case) to DDoS types; first match wins, scans have none.
    const ANOMALIES: &[(&str, Option<D>)] = &[
        ("syn_flood", Some(D::SynFlood)),
        ("syn-flood", Some(D::SynFlood)),
        ("udp_flood", Some(D::UdpFlood)),
        ("udp-flood", Some(D::UdpFlood)),
        ("icmp_flood", Some(D::Icmpv4Flood)),
        ("icmp-flood", Some(D::Icmpv4Flood)),
        ("tcp_port_scan", None),
        ("portscan", None),
        ("session", Some(D::TcpConFlood)),
    ];
    let (src_ip, src_port, dst_ip, dst_port) = src_dst(kv);
    let l = kv.get("attack").unwrap_or("").to_ascii_lowercase();
    let flow = Flow {
        src_ip,
        src_port,
        dst_ip,
        dst_port,
    };
    let rule_name = build::rule_or(kv.any(&["attack", "attackid"]), RULE);
    Kind::Ddos(build::ddos(
        flow,
        rule_name,
        build::first_keyword(&l, ANOMALIES).flatten(),
    ))
}

fn system(kv: &Kv<'_>) -> Kind {
    let desc = kv.get("logdesc").unwrap_or("");
    let action = kv.get("action").unwrap_or("");
    let user = kv.get("user");
    let ui = kv.get("ui").unwrap_or("");
    let from = build::ip_in_parens(ui).or_else(|| kv.any(&["srcip", "remip"]).and_then(ip));
    let status = kv.get("status").unwrap_or("");
    let lower_desc = desc.to_ascii_lowercase();
    if action == "login" || lower_desc.contains("login") {
        if status == "failed" || lower_desc.contains("fail") {
            return build::user_activity(
                user,
                kv.get("group"),
                from,
                None,
                UserActivityType::FailedLogin,
                kv.get("reason"),
            );
        }
        return build::access_log(
            user,
            from,
            None,
            OperationType::Login,
            Some(ui),
            Some(status),
        );
    }
    if action == "logout" || lower_desc.contains("logout") {
        return build::access_log(
            user,
            from,
            None,
            OperationType::Logout,
            Some(ui),
            kv.get("reason"),
        );
    }
    if kv.get("cfgpath").is_some()
        || lower_desc.contains("configur")
        || matches!(action, "Edit" | "Add" | "Delete")
    {
        let policy = match (kv.get("cfgpath"), kv.get("cfgobj")) {
            (Some(p), Some(o)) => Some(format!("{p} {o}")),
            (Some(p), None) => Some(p.to_string()),
            _ => None,
        };
        return build::config_change(user, from, None, policy.as_deref());
    }
    if action == "perf-stats" || kv.get("cpu").is_some() && kv.get("mem").is_some() {
        let pct = |k: &str| {
            kv.get(k)
                .and_then(|v| v.trim_end_matches('%').parse::<u8>().ok())
        };
        return Kind::ResourceUtilizationLog(ResourceUtilizationLog {
            cpu_usage: pct("cpu"),
            memory_usage: pct("mem"),
            session_num: kv
                .any(&["totalsession", "setuprate"])
                .and_then(|v| v.parse().ok()),
            ..Default::default()
        });
    }
    build::unmapped("fortigate system event without a mapping")
}

fn vpn(kv: &Kv<'_>) -> Kind {
    let action = kv.get("action").unwrap_or("");
    let from = kv.any(&["remip", "srcip"]).and_then(ip);
    let ty = match action {
        "ssl-login-fail" | "tunnel-down-fail" => UserActivityType::FailedLogin,
        "tunnel-up" | "ssl-login" | "ssl-new-con" if kv.get("user").is_some() => {
            UserActivityType::SuccessfulLogin
        }
        "tunnel-down" | "ssl-exit" => UserActivityType::Logout,
        _ => return build::unmapped("fortigate vpn event without a mapping"),
    };
    let reason = kv.any(&["reason", "msg"]);
    build::user_activity(
        kv.get("user"),
        kv.get("group"),
        from,
        kv.get("remport").and_then(port),
        ty,
        reason,
    )
}

fn user_auth(kv: &Kv<'_>) -> Kind {
    let action = kv.get("action").unwrap_or("");
    let status = kv.get("status").unwrap_or("");
    let from = kv.any(&["srcip", "remip"]).and_then(ip);
    let ty = match (action, status) {
        (_, "failure" | "failed") => UserActivityType::FailedLogin,
        ("auth-logon", _) | ("login", _) => UserActivityType::SuccessfulLogin,
        ("auth-logout", _) | ("logout", _) => UserActivityType::Logout,
        ("lockout", _) | (_, "locked") => UserActivityType::Lock,
        _ => return build::unmapped("fortigate user event without a mapping"),
    };
    build::user_activity(
        kv.get("user"),
        kv.get("group"),
        from,
        None,
        ty,
        kv.get("reason"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};

    #[test]
    fn traffic_deny_is_a_firewall_log() {
        let n = auto(
            r#"date=2019-05-10 time=11:50:48 logid="0000000013" type="traffic" subtype="forward" level="notice" vd="vdom1" eventtime=1557514248379911176 srcip=10.1.100.11 srcport=58012 srcintf="port12" dstip=23.59.154.35 dstport=80 dstintf="port11" sessionid=42 proto=6 action="deny" policyid=3 policyname="block-http" service="HTTP" sentbyte=100 rcvdbyte=0 devid="FG100D3G16800000""#,
            "fortigate",
        );
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.src_ip, ip("10.1.100.11"));
        assert_eq!(f.dst_port, Some(80));
        assert_eq!(f.action, Some(pharos_model::ident::IngressAction::Drop));
        assert_eq!(f.rule_name.as_deref(), Some("3"));
        assert_eq!(
            n.message.common.device_model.as_deref(),
            Some("FG100D3G16800000")
        );
        assert_eq!(n.message.common.event_time.timestamp(), 1557514248);
    }

    #[test]
    fn ips_http_attack_is_a_web_attack() {
        let n = auto(
            r#"date=2019-05-13 time=11:45:03 logid="0419016384" type="utm" subtype="ips" eventtype="signature" level="alert" vd="vdom1" severity="critical" srcip=10.1.100.22 srcport=44362 dstip=172.16.200.55 dstport=80 proto=6 service="HTTP" attack="WordPress.Plugin.SQL.Injection" attackid=44015 action="dropped""#,
            "fortigate",
        );
        let Kind::WebAttack(w) = &n.message.kind else {
            panic!("{:?}", n.message.kind)
        };
        assert_eq!(w.rule_name, "WordPress.Plugin.SQL.Injection");
        assert_eq!(n.message.common.severity, Severity::Critical);
    }

    #[test]
    fn virus_and_admin_login_failure() {
        let n = auto(
            r#"date=2019-05-13 time=11:32:51 logid="0211008192" type="utm" subtype="virus" eventtype="infected" level="warning" srcip=10.1.100.11 dstip=172.16.200.55 srcport=44356 dstport=80 action="blocked" filename="eicar.com" virus="EICAR_TEST_FILE" dtype="Virus""#,
            "fortigate",
        );
        let Kind::Virus(v) = &n.message.kind else {
            panic!()
        };
        assert_eq!(v.virus_name.as_deref(), Some("EICAR_TEST_FILE"));
        assert_eq!(v.file_name.as_deref(), Some("eicar.com"));
        let n = auto(
            r#"date=2016-06-17 time=02:37:41 devname=fw-branch1 devid=FGT60E0000000001 logid=0100032002 type=event subtype=system level=alert vd="root" logdesc="Admin login failed" sn=0 user="root" ui=ssh(198.51.100.77) action=login status=failed reason="name_invalid""#,
            "fortigate",
        );
        let Kind::UserActivityLog(u) = &n.message.kind else {
            panic!()
        };
        assert_eq!(u.user, "root");
        assert_eq!(u.ip_address, ip("198.51.100.77").unwrap());
    }

    #[test]
    fn ssl_vpn_login_failure_is_user_activity() {
        let n = auto(
            r#"date=2023-11-14 time=22:13:20 eventtime=1700000000000000000 tz="-0700" logid="1234567890" type="event" subtype="vpn" level="alert" vd="root" logdesc="SSL VPN login fail" action="ssl-login-fail" tunneltype="ssl-web" remip=192.168.0.1 user="bob" group="N/A" reason="sslvpn_login_no_matching_policy""#,
            "fortigate",
        );
        let Kind::UserActivityLog(u) = &n.message.kind else {
            panic!()
        };
        assert_eq!(u.user, "bob");
        assert_eq!(
            u.additional_info.activity_type,
            Some(UserActivityType::FailedLogin)
        );
    }

    #[test]
    fn configuration_edit_is_a_configuration_change() {
        let n = auto(
            r#"date=2016-06-16 time=09:03:03 devname=fw-branch2 devid=FGT60E0000000001 logid=9999999999 type=event subtype=system level=information vd="root" logdesc="Object attribute configured" user="admin" ui="GUI(192.0.2.8)" action=Edit cfgtid=1001 cfgpath="firewall.service.custom" cfgobj="Custom-TCP_8443""#,
            "fortigate",
        );
        let Kind::SystemEvent(e) = &n.message.kind else {
            panic!()
        };
        assert_eq!(
            e.changes,
            vec!["firewall.service.custom Custom-TCP_8443".to_string()]
        );
    }
}
