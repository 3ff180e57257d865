//! Check Point: Log Exporter syslog (`[action:"Drop"; src:"..."; ...]`, LEA-style
//! `key:"value";` lists) and OPSEC LEA key=value exports (`action=drop|orig=...|i/f_dir=...`).
//!
//! Mapping by blade (`product`) and fields: IPS / SmartDefense / `protection_name` or `attack`
//! -> intrusion (web attack when the protection is an HTTP attack); Anti-Virus / Threat Emulation
//! / Anti-Malware -> virus; Anti-Bot -> botnet; URL Filtering -> DPI log (data filtering),
//! Application Control -> DPI log (application behaviour control); SmartConsole audit logs: log in
//! -> system access log, object/policy changes -> configuration change; identity logins -> user
//! activity; firewall actions with addresses -> firewall traffic log. Rule names: `rule_name`,
//! `protection_name`, `attack` or `rule_uid`; placeholder `checkpoint-unknown-rule`. Every record
//! keeps what its case has no leaf for (NAT `xlate*` addresses, user, URL `resource`, method,
//! application, `logid`) in `envelope/fields`.

use pharos_model::ident::{DpiType, OperationType, TransportProtocol, UserActivityType};
use pharos_model::{
    BotnetEvent, DpiLog, FirewallTrafficLog, Kind, LogFields, Severity, VirusEvent,
};

use crate::LogInput;
use crate::build::{self, Draft, Flow, Ids, Request, ip, port};
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

/// The fields of a record: Log Exporter `key:"value";` pairs from the text, else from the whole
/// record (a header parser may have moved them), else LEA `k=v|k=v` or plain `k=v` pairs.
fn fields<'a>(input: &LogInput<'a>) -> Kv<'a> {
    let kv = colon_pairs(input.text);
    if kv.get("action").is_some() || kv.get("product").is_some() {
        return kv;
    }
    let alt = colon_pairs(input.raw);
    if alt.get("action").is_some() || alt.get("product").is_some() {
        alt
    } else if has!(input.text, "|") {
        pipe_pairs(input.text)
    } else {
        Kv::parse(input.text)
    }
}

/// Which mapping a record takes: the first row of [`BLADES`] that holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blade {
    Virus,
    AntiBot,
    Ips,
    Dpi,
    Audit,
    IdentityLogin,
    Traffic,
}

/// A test on a record: a word in its (lower-cased) `product`, a field present, its `action`
/// one of some words, or an address present.
enum When {
    Product(&'static str),
    Has(&'static str),
    ActionIn(&'static [&'static str]),
    Addresses,
}

/// Record tests in order, first match wins (a virus blade before Anti-Bot before a protection
/// name, ...); a record no row matches is unmapped.
const BLADES: &[(When, Blade)] = &[
    (When::Product("anti-virus"), Blade::Virus),
    (When::Product("threat emulation"), Blade::Virus),
    (When::Product("anti-malware"), Blade::Virus),
    (When::Product("anti-bot"), Blade::AntiBot),
    (When::Has("malware_action"), Blade::Virus),
    (When::Product("ips"), Blade::Ips),
    (When::Product("smartdefense"), Blade::Ips),
    (When::Has("protection_name"), Blade::Ips),
    (When::Has("attack"), Blade::Ips),
    (When::Has("attack_info"), Blade::Ips),
    (When::Product("url filtering"), Blade::Dpi),
    (When::Product("application control"), Blade::Dpi),
    (When::Has("operation"), Blade::Audit),
    (
        When::ActionIn(&["Log In", "Login", "Failed Log In", "Log Out", "Logout"]),
        Blade::IdentityLogin,
    ),
    (When::Addresses, Blade::Traffic),
];

/// One record's fields and the facts every mapping reads.
struct Rec<'k, 'a> {
    kv: &'k Kv<'a>,
    /// `product`, lower-cased.
    product: String,
    action: Option<&'a str>,
    flow: Flow,
}

impl Rec<'_, '_> {
    fn holds(&self, w: &When) -> bool {
        match w {
            When::Product(word) => self.product.contains(word),
            When::Has(key) => self.kv.get(key).is_some(),
            When::ActionIn(words) => self.action.is_some_and(|a| words.contains(&a)),
            When::Addresses => self.flow.src_ip.is_some() || self.flow.dst_ip.is_some(),
        }
    }

    fn rule_name(&self) -> String {
        build::rule_or(
            self.kv
                .any(&["rule_name", "protection_name", "attack", "rule_uid", "rule"]),
            RULE,
        )
    }

    fn protocol(&self) -> Option<TransportProtocol> {
        self.kv.get("proto").and_then(build::transport)
    }
}

/// Normalises one Check Point record.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let kv = fields(input);
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
    let rec = Rec {
        kv: &kv,
        product: product.to_ascii_lowercase(),
        action,
        flow: Flow {
            src_ip: kv.any(&["src", "orig_src", "client_ip"]).and_then(ip),
            src_port: kv.get("s_port").and_then(port),
            dst_ip: kv.any(&["dst"]).and_then(ip),
            dst_port: kv.any(&["service", "d_port", "dport"]).and_then(port),
        },
    };
    let blade = BLADES.iter().find(|(w, _)| rec.holds(w)).map(|(_, b)| *b);
    let kind = match blade {
        Some(Blade::Virus) => virus(&rec),
        Some(Blade::AntiBot) => botnet(&rec),
        Some(Blade::Ips) => ips(&rec),
        Some(Blade::Dpi) => dpi(&rec),
        Some(Blade::Audit) => audit(&kv),
        Some(Blade::IdentityLogin) => identity_login(&rec),
        Some(Blade::Traffic) => traffic(&rec),
        None => build::unmapped("checkpoint event without addresses or a mapping"),
    };
    let extra = build::fields_beyond_case(&kind, all_fields(&kv, rec.flow));
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
            .summary(summary)
            .fields(extra),
    )
}

/// Every field of a record (Log Exporter field names, LEA `orig`/`i/f_name`); the case then
/// drops what its leaves hold.
fn all_fields(kv: &Kv<'_>, flow: Flow) -> LogFields {
    let get = |k: &[&str]| kv.any(k).map(build::clip);
    let proto = kv.get("proto").map(|p| match build::protocol(p) {
        Some(pharos_model::ident::Protocol::Tcp) => "tcp".to_string(),
        Some(pharos_model::ident::Protocol::Udp) => "udp".to_string(),
        Some(pharos_model::ident::Protocol::Icmpv4) => "icmp".to_string(),
        _ => build::clip(p).to_ascii_lowercase(),
    });
    LogFields {
        src_ip: flow.src_ip,
        src_port: flow.src_port,
        dst_ip: flow.dst_ip,
        dst_port: flow.dst_port,
        nat_src_ip: kv
            .get("xlatesrc")
            .and_then(ip)
            .filter(|a| !a.is_unspecified()),
        nat_src_port: kv.get("xlatesport").and_then(port).filter(|p| *p != 0),
        nat_dst_ip: kv
            .get("xlatedst")
            .and_then(ip)
            .filter(|a| !a.is_unspecified()),
        nat_dst_port: kv.get("xlatedport").and_then(port).filter(|p| *p != 0),
        protocol: proto,
        action: get(&["action"]),
        rule_name: get(&["rule_name", "protection_name", "attack", "rule_uid", "rule"]),
        user: get(&[
            "src_user_name",
            "user",
            "administrator",
            "dst_user_name",
            "client_name",
        ]),
        domain: get(&[
            "web_client_type_host",
            "dst_domain_name",
            "resource_host",
            "domain_name",
        ]),
        url: get(&["resource", "url"]),
        http_method: kv
            .get("method")
            .filter(|m| build::req_method(m).is_some())
            .map(|m| build::clip(m).to_ascii_uppercase()),
        user_agent: get(&["web_client_type", "user_agent"]),
        sent_bytes: kv.get("client_outbound_bytes").and_then(|v| v.parse().ok()),
        received_bytes: kv.get("client_inbound_bytes").and_then(|v| v.parse().ok()),
        session_id: get(&["session_uid", "loguid"]),
        message_id: get(&["logid", "log_id"]),
        in_interface: get(&["ifname", "i/f_name", "inzone"]),
        out_interface: get(&["outzone"]),
        application: get(&["appi_name", "service_id"]),
        mail_from: get(&["from"]),
        mail_to: get(&["to"]),
        file_name: get(&["file_name"]),
        ..LogFields::default()
    }
}

/// Anti-Virus, Threat Emulation, Anti-Malware: a virus event.
fn virus(r: &Rec<'_, '_>) -> Kind {
    let (kv, f) = (r.kv, r.flow);
    let name = kv.any(&["malware_name", "protection_name", "virus_name"]);
    Kind::Virus(VirusEvent {
        src_ip: f.src_ip,
        src_port: f.src_port,
        dst_ip: f.dst_ip,
        dst_port: f.dst_port,
        rule_name: r.rule_name(),
        virus_name: name.map(build::clip),
        virus_type: name.and_then(build::virus_type),
        host: kv
            .any(&["src_machine_name", "resource"])
            .map(build::clip)
            .or_else(|| f.src_ip.map(|a| a.to_string())),
        file_type: kv.get("file_type").map(build::clip),
        file_name: kv.get("file_name").map(build::clip),
        os: None,
    })
}

/// Anti-Bot: a botnet event.
fn botnet(r: &Rec<'_, '_>) -> Kind {
    let f = r.flow;
    Kind::Botnet(BotnetEvent {
        src_ip: f.src_ip,
        src_port: f.src_port,
        dst_ip: f.dst_ip,
        dst_port: f.dst_port,
        rule_name: r.rule_name(),
        botnet_name: r
            .kv
            .any(&["malware_family", "protection_name"])
            .map(build::clip),
        role: None,
        botnet_pkt_num: None,
        protocol: r.protocol(),
    })
}

/// IPS / SmartDefense or a protection name: an intrusion, or a web attack for an HTTP one.
fn ips(r: &Rec<'_, '_>) -> Kind {
    let kv = r.kv;
    let sig = kv
        .any(&["protection_name", "attack", "attack_info"])
        .unwrap_or("");
    build::intrusion_or_web_attack(
        r.flow,
        r.rule_name(),
        build::web_attack_type(sig),
        Request {
            method: kv.get("method"),
            target: kv.any(&["resource", "url"]),
            host: kv.get("http_host"),
            response_code: None,
        },
        Ids {
            protocol: r.protocol(),
            app: build::app_or_port(kv.get("service_id"), r.flow.dst_port),
            attack_type: build::intrusion_attack_type(sig),
        },
    )
}

/// URL Filtering (data filtering) and Application Control: a DPI log.
fn dpi(r: &Rec<'_, '_>) -> Kind {
    let ty = if r.product.contains("url") {
        DpiType::DataFiltering
    } else {
        DpiType::ApplicationBehaviorControl
    };
    let f = r.flow;
    Kind::DpiLog(DpiLog {
        attack_type: Some(ty),
        src_ip: f.src_ip,
        src_port: f.src_port,
        dst_ip: f.dst_ip,
        dst_port: f.dst_port,
        rule_name: build::rule_or(
            r.kv.any(&["matched_category", "appi_name", "rule_name"]),
            RULE,
        ),
        action: r.action.and_then(build::action).into_iter().collect(),
    })
}

/// SmartConsole audit (`operation`): log in and out, else a configuration change.
fn audit(kv: &Kv<'_>) -> Kind {
    let op = kv.get("operation").unwrap_or("").to_ascii_lowercase();
    let admin = kv.any(&["administrator", "user"]);
    let from = kv.any(&["client_ip", "src"]).and_then(ip);
    let result = kv.get("operation_result");
    if op.contains("log in") || op.contains("login") {
        if result.is_some_and(|r| build::contains_ci(r, "fail")) {
            return build::user_activity(
                admin,
                None,
                from,
                None,
                UserActivityType::FailedLogin,
                result,
            );
        }
        return build::access_log(
            admin,
            from,
            None,
            OperationType::Login,
            kv.get("client_name"),
            result,
        );
    }
    if op.contains("log out") || op.contains("logout") {
        return build::access_log(admin, from, None, OperationType::Logout, None, None);
    }
    build::config_change(
        admin,
        from,
        None,
        kv.any(&["objectname", "policy_name", "subject"]),
    )
}

/// Identity logins and logouts (`action`): user activity.
fn identity_login(r: &Rec<'_, '_>) -> Kind {
    let user = r.kv.any(&["user", "src_user_name", "administrator"]);
    let ty = match r.action {
        Some("Failed Log In") => UserActivityType::FailedLogin,
        Some("Log Out" | "Logout") => UserActivityType::Logout,
        _ => UserActivityType::SuccessfulLogin,
    };
    build::user_activity(
        user,
        None,
        r.flow.src_ip,
        r.flow.src_port,
        ty,
        r.kv.get("reason"),
    )
}

/// Firewall actions with addresses: a firewall traffic log.
fn traffic(r: &Rec<'_, '_>) -> Kind {
    let (kv, f) = (r.kv, r.flow);
    let interface = |dir: &str| {
        kv.any(&["ifname", "i/f_name"])
            .filter(|_| kv.any(&["ifdir", "i/f_dir"]) == Some(dir))
            .map(build::clip)
    };
    Kind::FirewallTrafficLog(FirewallTrafficLog {
        src_ip: f.src_ip,
        dst_ip: f.dst_ip,
        src_port: f.src_port,
        dst_port: f.dst_port,
        protocol: kv.get("proto").and_then(build::protocol),
        action: r.action.and_then(build::action),
        sent_bytes: kv
            .any(&["client_outbound_bytes", "sent_bytes"])
            .and_then(|v| v.parse().ok()),
        received_bytes: kv
            .any(&["client_inbound_bytes", "received_bytes"])
            .and_then(|v| v.parse().ok()),
        policy_name: kv.any(&["layer_name", "policy_name"]).map(build::clip),
        rule_name: kv.any(&["rule_name", "rule", "rule_uid"]).map(build::clip),
        in_interface: interface("inbound"),
        out_interface: interface("outbound"),
        application: kv.any(&["appi_name", "service_id"]).map(build::clip),
        user: kv.any(&["src_user_name", "user"]).map(build::clip),
        ..Default::default()
    })
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
