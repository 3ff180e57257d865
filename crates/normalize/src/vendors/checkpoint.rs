//! Check Point: Log Exporter syslog (`[action:"Drop"; src:"..."; ...]`, LEA-style
//! `key:"value";` lists) and OPSEC LEA key=value exports (`action=drop|orig=...|i/f_dir=...`).
//!
//! Mapping by blade (`product`) and fields: IPS / SmartDefense / `protection_name` or `attack`
//! -> intrusion (web attack when the protection is an HTTP attack); Anti-Virus / Threat Emulation
//! / Anti-Malware -> virus; Anti-Bot -> botnet; URL Filtering -> DPI log (data filtering),
//! Application Control -> DPI log (application behaviour control); SmartConsole audit logs: log in
//! -> system access log, object/policy changes -> configuration change; identity logins -> user
//! activity; firewall actions with addresses -> firewall traffic log. Rule names: `rule_name`,
//! `protection_name`, `attack` or `rule_uid`; placeholder `checkpoint-unknown-rule`.

use pharos_model::ident::{DpiType, OperationType, UserActivityType};
use pharos_model::{
    BotnetEvent, DpiLog, FirewallTrafficLog, IntrusionEvent, Kind, Severity, VirusEvent,
    WebAttackEvent,
};

use crate::LogInput;
use crate::build::{self, Draft, ip, port};
use crate::fields::{Kv, colon_pairs};
use crate::vendors::{Probe, app_is, has, probe};

const RULE: &str = "checkpoint-unknown-rule";

/// Log Exporter / LEA markers, or a `CheckPoint` app name.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    let input = p.input;
    app_is(input, &["CheckPoint", "Check Point", "checkpoint"])
        || probe!(p, "loguid:\"")
        || probe!(p, "originsicname")
        || probe!(p, "origin:\"")
        || probe!(p, "product:\"VPN-1")
        || probe!(p, "product=VPN-1")
        || probe!(p, "i/f_dir=")
        || probe!(p, "CheckPoint ") && probe!(p, "action:\"")
}

/// Check Point `severity` words on Pharos' scale.
fn severity(s: Option<&str>) -> Option<Severity> {
    Some(match s?.to_ascii_lowercase().as_str() {
        "critical" | "4" => Severity::Critical,
        "high" | "3" => Severity::High,
        "medium" | "2" => Severity::Middle,
        "low" | "1" => Severity::Low,
        "informational" | "info" | "0" => Severity::Info,
        _ => return None,
    })
}

fn pipe_pairs(s: &str) -> Kv<'_> {
    // `k=v|k=v` where values may hold spaces.
    Kv::parse_with_separator(s, '|')
}

/// Normalises one Check Point record.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let mut kv = colon_pairs(input.text);
    if kv.get("action").is_none() && kv.get("product").is_none() {
        let raw = input.raw;
        let alt = colon_pairs(raw);
        if alt.get("action").is_some() || alt.get("product").is_some() {
            kv = alt;
        } else if has!(input.text, "|") {
            kv = pipe_pairs(input.text);
        } else {
            kv = Kv::parse(input.text);
        }
    }
    let action = kv.get("action");
    let product = kv.get("product").unwrap_or("");
    if action.is_none() && kv.get("product").is_none() && kv.get("operation").is_none() {
        if !detect(&Probe::new(input)) {
            return None;
        }
        // a Check Point record without the fields we map (e.g. VPN routing notices)
        return Some(
            Draft::new(
                build::unmapped("checkpoint record without action or product"),
                Severity::Info,
            )
            .vendor("Check Point")
            .summary(input.text),
        );
    }
    let src_ip = kv.any(&["src", "orig_src", "client_ip"]).and_then(ip);
    let dst_ip = kv.any(&["dst"]).and_then(ip);
    let src_port = kv.get("s_port").and_then(port);
    let dst_port = kv.any(&["service", "d_port", "dport"]).and_then(port);
    let proto = kv.get("proto");
    let rule_name = || {
        build::rule_or(
            kv.any(&["rule_name", "protection_name", "attack", "rule_uid", "rule"]),
            RULE,
        )
    };
    let lp = product.to_ascii_lowercase();
    let protection = kv.any(&["protection_name", "attack", "attack_info"]);
    let kind = if lp.contains("anti-virus")
        || lp.contains("threat emulation")
        || lp.contains("anti-malware")
        || kv.get("malware_action").is_some() && !lp.contains("anti-bot")
    {
        let name = kv.any(&["malware_name", "protection_name", "virus_name"]);
        Kind::Virus(VirusEvent {
            src_ip,
            src_port,
            dst_ip,
            dst_port,
            rule_name: rule_name(),
            virus_name: name.map(build::clip),
            virus_type: name.and_then(build::virus_type),
            host: kv
                .any(&["src_machine_name", "resource"])
                .map(build::clip)
                .or_else(|| src_ip.map(|a| a.to_string())),
            file_type: kv.get("file_type").map(build::clip),
            file_name: kv.get("file_name").map(build::clip),
            os: None,
        })
    } else if lp.contains("anti-bot") {
        Kind::Botnet(BotnetEvent {
            src_ip,
            src_port,
            dst_ip,
            dst_port,
            rule_name: rule_name(),
            botnet_name: kv
                .any(&["malware_family", "protection_name"])
                .map(build::clip),
            role: None,
            botnet_pkt_num: None,
            protocol: proto.and_then(build::transport),
        })
    } else if lp.contains("ips") || lp.contains("smartdefense") || protection.is_some() {
        let sig = protection.unwrap_or("");
        match build::web_attack_type(sig) {
            Some(t) => Kind::WebAttack(WebAttackEvent {
                src_ip,
                src_port,
                dst_ip,
                dst_port,
                rule_name: rule_name(),
                attack_type: Some(t),
                req_method: kv.get("method").and_then(build::req_method),
                req_target: kv.any(&["resource", "url"]).map(build::clip),
                filtering_type: Vec::new(),
                cookies: None,
                req_host: kv.get("http_host").map(build::clip),
                response_code: None,
            }),
            None => Kind::Intrusion(IntrusionEvent {
                src_ip,
                src_port,
                dst_ip,
                dst_port,
                rule_name: rule_name(),
                protocol: proto.and_then(build::transport),
                app: kv
                    .get("service_id")
                    .and_then(build::app_protocol)
                    .or_else(|| build::app_by_port(dst_port)),
                attack_type: build::intrusion_attack_type(sig),
            }),
        }
    } else if lp.contains("url filtering") || lp.contains("application control") {
        let ty = if lp.contains("url") {
            DpiType::DataFiltering
        } else {
            DpiType::ApplicationBehaviorControl
        };
        Kind::DpiLog(DpiLog {
            attack_type: Some(ty),
            src_ip,
            src_port,
            dst_ip,
            dst_port,
            rule_name: build::rule_or(
                kv.any(&["matched_category", "appi_name", "rule_name"]),
                RULE,
            ),
            action: action.and_then(build::action).into_iter().collect(),
        })
    } else if let Some(op) = kv.get("operation") {
        let admin = kv.any(&["administrator", "user"]);
        let from = kv.any(&["client_ip", "src"]).and_then(ip);
        let lo = op.to_ascii_lowercase();
        if lo.contains("log in") || lo.contains("login") {
            if kv
                .get("operation_result")
                .is_some_and(|r| build::contains_ci(r, "fail"))
            {
                build::user_activity(
                    admin,
                    None,
                    from,
                    None,
                    UserActivityType::FailedLogin,
                    kv.get("operation_result"),
                )
            } else {
                build::access_log(
                    admin,
                    from,
                    None,
                    OperationType::Login,
                    kv.get("client_name"),
                    kv.get("operation_result"),
                )
            }
        } else if lo.contains("log out") || lo.contains("logout") {
            build::access_log(admin, from, None, OperationType::Logout, None, None)
        } else {
            build::config_change(
                admin,
                from,
                None,
                kv.any(&["objectname", "policy_name", "subject"]),
            )
        }
    } else if matches!(
        action,
        Some("Log In" | "Login" | "Failed Log In" | "Log Out" | "Logout")
    ) {
        let user = kv.any(&["user", "src_user_name", "administrator"]);
        let ty = match action {
            Some("Failed Log In") => UserActivityType::FailedLogin,
            Some("Log Out" | "Logout") => UserActivityType::Logout,
            _ => UserActivityType::SuccessfulLogin,
        };
        build::user_activity(user, None, src_ip, src_port, ty, kv.get("reason"))
    } else if src_ip.is_some() || dst_ip.is_some() {
        Kind::FirewallTrafficLog(FirewallTrafficLog {
            src_ip,
            dst_ip,
            src_port,
            dst_port,
            protocol: proto.and_then(build::protocol),
            action: action.and_then(build::action),
            sent_bytes: kv
                .any(&["client_outbound_bytes", "sent_bytes"])
                .and_then(|v| v.parse().ok()),
            received_bytes: kv
                .any(&["client_inbound_bytes", "received_bytes"])
                .and_then(|v| v.parse().ok()),
            policy_name: kv.any(&["layer_name", "policy_name"]).map(build::clip),
            rule_name: kv.any(&["rule_name", "rule", "rule_uid"]).map(build::clip),
            in_interface: kv
                .any(&["ifname", "i/f_name"])
                .filter(|_| kv.any(&["ifdir", "i/f_dir"]) == Some("inbound"))
                .map(build::clip),
            out_interface: kv
                .any(&["ifname", "i/f_name"])
                .filter(|_| kv.any(&["ifdir", "i/f_dir"]) == Some("outbound"))
                .map(build::clip),
            application: kv.any(&["appi_name", "service_id"]).map(build::clip),
            user: kv.any(&["src_user_name", "user"]).map(build::clip),
            ..Default::default()
        })
    } else {
        build::unmapped("checkpoint event without addresses or a mapping")
    };
    let sev = severity(kv.get("severity")).unwrap_or(match action {
        Some("Drop" | "Reject" | "Block" | "drop" | "reject") => Severity::Low,
        _ => Severity::Info,
    });
    let time = kv
        .get("time")
        .and_then(|t| crate::time::epoch(t).or_else(|| crate::time::iso(t)));
    let summary = format!(
        "{} {}",
        if product.is_empty() {
            "Check Point"
        } else {
            product
        },
        kv.any(&["msg", "protection_name", "attack"])
            .or(action)
            .unwrap_or("")
    );
    Some(
        Draft::new(kind, sev)
            .time(time)
            .vendor("Check Point")
            .model(kv.get("origin_sic_name").or(Some(product)))
            .summary(summary),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};

    #[test]
    fn log_exporter_drop_is_firewall_traffic() {
        let n = auto(
            r#"[action:"Drop"; ifdir:"inbound"; ifname:"eth2"; logid:"0"; loguid:"{0x0,0x0,0x0,0x0}"; origin:"192.0.2.1"; time:"1557937550"; version:"5"; dst:"203.0.113.55"; inzone:"Internal"; layer_name:"Network"; proto:"6"; rule_name:"Cleanup"; s_port:"51000"; service:"445"; src:"10.1.2.3"; product:"VPN-1 & FireWall-1"]"#,
            "checkpoint",
        );
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!("{:?}", n.message.kind)
        };
        assert_eq!(f.src_ip, ip("10.1.2.3"));
        assert_eq!(f.dst_port, Some(445));
        assert_eq!(f.rule_name.as_deref(), Some("Cleanup"));
        assert_eq!(f.in_interface.as_deref(), Some("eth2"));
        assert_eq!(n.message.common.event_time.timestamp(), 1557937550);
    }

    #[test]
    fn ips_protection_is_an_intrusion() {
        let n = auto(
            r#"[action:"Detect"; origin:"10.0.0.1"; product:"IPS"; protection_name:"Microsoft SMB Remote Code Execution"; severity:"Critical"; src:"198.51.100.3"; dst:"10.0.0.20"; service:"445"; proto:"6"]"#,
            "checkpoint",
        );
        assert!(
            matches!(n.message.kind, Kind::Intrusion(_) | Kind::WebAttack(_)),
            "{:?}",
            n.message.kind
        );
        assert_eq!(n.message.common.severity, Severity::Critical);
    }

    #[test]
    fn lea_pipe_export_is_read() {
        let n = auto(
            "time=1557937550|action=drop|orig=10.0.0.1|i/f_dir=inbound|i/f_name=eth0|product=VPN-1 & FireWall-1|src=192.0.2.1|s_port=4000|dst=10.0.0.5|service=22|proto=tcp|rule=7",
            "checkpoint",
        );
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!("{:?}", n.message.kind)
        };
        assert_eq!(f.dst_port, Some(22));
        assert_eq!(f.rule_name.as_deref(), Some("7"));
    }
}
