//! Juniper SRX (Junos) security logs: `RT_FLOW_SESSION_CREATE/CLOSE/DENY`, `RT_IDP_ATTACK_LOG_EVENT`,
//! `RT_SCREEN_*`, in structured-data form (`[junos@2636... source-address="..." ...]`, read from
//! the text or, when the syslog parser moved it to structured data, from the raw record) and the
//! legacy text form of session logs (`session created 10.0.0.1/1234->192.0.2.1/80 ...`).
//!
//! Mapping: session create/close -> firewall traffic log (pass), deny -> firewall traffic log
//! (drop); IDP attack -> intrusion (web attack when the attack name is an HTTP attack); screens:
//! floods -> DDoS, the rest (scans, spoofing, ...) -> intrusion. Rule names: `policy-name`,
//! `attack-name` or `rule-name`; placeholder `juniper-srx-unknown-rule`.

use pharos_model::ident::{DdosType, IngressAction, IntrusionAttackType};
use pharos_model::{FirewallTrafficLog, Kind, Severity};

use crate::LogInput;
use crate::build::{self, Draft, Flow, Ids, Request, ip, port};
use crate::fields::Kv;
use crate::vendors::{Probe, has, has_str, probe};

const RULE: &str = "juniper-srx-unknown-rule";

/// `RT_FLOW`, `RT_IDP` or `RT_SCREEN` tags.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    let input = p.input;
    probe!(p, "RT_FLOW")
        || probe!(p, "RT_IDP")
        || probe!(p, "RT_SCREEN")
        || input.app_name.is_some_and(|a| {
            a.starts_with("RT_FLOW") || a.starts_with("RT_IDP") || a.starts_with("RT_SCREEN")
        })
        || has!(input.raw, "RT_FLOW_SESSION")
        || has!(input.raw, "RT_IDP_ATTACK")
        || has!(input.raw, "RT_SCREEN_")
}

/// IDP `threat-severity` words on Pharos' scale.
fn severity(s: Option<&str>) -> Severity {
    match s.unwrap_or("").to_ascii_uppercase().as_str() {
        "CRITICAL" => Severity::Critical,
        "HIGH" | "MAJOR" => Severity::High,
        "MEDIUM" | "MINOR" => Severity::Middle,
        "LOW" => Severity::Low,
        _ => Severity::Info,
    }
}

/// Which event of the table a tag is.
fn tag_of(s: &str) -> Option<&'static str> {
    const TAGS: &[&str] = &[
        "RT_FLOW_SESSION_CREATE",
        "RT_FLOW_SESSION_CLOSE",
        "RT_FLOW_SESSION_DENY",
        "RT_IDP_ATTACK_LOG_EVENT",
        "RT_SCREEN_",
    ];
    TAGS.iter().copied().find(|t| has_str(s, t))
}

/// Normalises one SRX record.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let (tag, body) = match tag_of(input.text) {
        Some(t)
            if has!(input.text, "=\"") || has!(input.text, "->") || has!(input.text, "source:") =>
        {
            (t, input.text)
        }
        _ => match tag_of(input.raw) {
            Some(t) => (t, input.raw),
            None => {
                // a recognised Junos tag without a mapping (e.g. FLOW_MCAST_RPF_FAIL)
                let summary = input.text;
                return Some(
                    Draft::new(
                        build::unmapped("junos event without a mapping"),
                        Severity::Info,
                    )
                    .vendor("Juniper Networks")
                    .model(Some("SRX"))
                    .summary(summary),
                );
            }
        },
    };
    let sd_start = body.find("[junos@").map(|i| i + 1);
    let kv = match sd_start {
        Some(i) => Kv::parse(body.get(i..)?.trim_end_matches(']')),
        None => Kv::default(),
    };
    let (src_ip, src_port, dst_ip, dst_port) = legacy_session(body);
    let flow = Flow {
        src_ip: kv.get("source-address").and_then(ip).or(src_ip),
        src_port: kv.get("source-port").and_then(port).or(src_port),
        dst_ip: kv.get("destination-address").and_then(ip).or(dst_ip),
        dst_port: kv.get("destination-port").and_then(port).or(dst_port),
    };
    let (kind, sev) = match tag {
        "RT_FLOW_SESSION_CREATE" | "RT_FLOW_SESSION_CLOSE" => {
            (session(&kv, flow, IngressAction::Pass), Severity::Info)
        }
        "RT_FLOW_SESSION_DENY" => (session(&kv, flow, IngressAction::Drop), Severity::Low),
        "RT_IDP_ATTACK_LOG_EVENT" => (idp(&kv, flow), severity(kv.get("threat-severity"))),
        _ => screen(&kv, body, flow),
    };
    let time = body.split_whitespace().find_map(|w| {
        if w.len() >= 19 && w.as_bytes().get(4) == Some(&b'-') {
            crate::time::iso(w)
        } else {
            None
        }
    });
    Some(
        Draft::new(kind, sev)
            .time(time)
            .vendor("Juniper Networks")
            .model(Some("SRX"))
            .summary(format!(
                "{tag} {}",
                kv.any(&["attack-name", "reason", "policy-name"])
                    .unwrap_or("")
            )),
    )
}

/// The transport protocol, by number or name.
fn protocol<'a>(kv: &Kv<'a>) -> Option<&'a str> {
    kv.any(&["protocol-id", "protocol-name"])
}

/// Session create, close (pass) and deny (drop): a firewall traffic log.
fn session(kv: &Kv<'_>, flow: Flow, action: IngressAction) -> Kind {
    let num = |k: &str| kv.get(k).and_then(|v| v.parse::<u64>().ok());
    Kind::FirewallTrafficLog(FirewallTrafficLog {
        src_ip: flow.src_ip,
        dst_ip: flow.dst_ip,
        src_port: flow.src_port,
        dst_port: flow.dst_port,
        protocol: protocol(kv).and_then(build::protocol),
        action: Some(action),
        sent_bytes: num("bytes-from-client"),
        received_bytes: num("bytes-from-server"),
        sent_packets: num("packets-from-client"),
        received_packets: num("packets-from-server"),
        policy_name: kv.get("policy-name").map(build::clip),
        rule_name: kv.get("policy-name").map(build::clip),
        in_interface: kv
            .any(&["packet-incoming-interface", "source-zone-name"])
            .map(build::clip),
        out_interface: kv.get("destination-zone-name").map(build::clip),
        application: kv.any(&["application", "service-name"]).map(build::clip),
        user: kv.get("username").map(build::clip),
        session_id: num("session-id-32").or_else(|| num("session-id")),
        duration: kv.get("elapsed-time").and_then(|v| v.parse().ok()),
    })
}

/// An IDP attack: an intrusion, or a web attack when the attack name is an HTTP attack.
fn idp(kv: &Kv<'_>, flow: Flow) -> Kind {
    let attack = kv.get("attack-name").unwrap_or("");
    build::intrusion_or_web_attack(
        flow,
        build::rule_or(kv.get("attack-name").or(kv.get("rule-name")), RULE),
        build::web_attack_type(attack),
        Request::default(),
        Ids {
            protocol: protocol(kv).and_then(build::transport),
            app: build::app_or_port(kv.get("application-name"), flow.dst_port),
            attack_type: build::intrusion_attack_type(attack),
        },
    )
}

/// The DDoS type a flood screen names; first match wins.
const FLOOD_TYPES: &[(&str, DdosType)] = &[
    ("syn", DdosType::SynFlood),
    ("udp", DdosType::UdpFlood),
    ("icmp", DdosType::Icmpv4Flood),
];
/// The intrusion type any other screen names; first match wins.
const SCREEN_TYPES: &[(&str, IntrusionAttackType)] = &[
    ("scan", IntrusionAttackType::PortScan),
    ("sweep", IntrusionAttackType::HostSweep),
];

/// A screen: floods and session limits -> DDoS (high), the rest -> intrusion (middle).
fn screen(kv: &Kv<'_>, body: &str, flow: Flow) -> (Kind, Severity) {
    // legacy text: "RT_SCREEN_TCP: SYN flood! source: 1.2.3.4:1234, destination: 5.6.7.8:80, ..."
    let attack = kv.get("attack-name").or_else(|| {
        let after = body.split("RT_SCREEN_").nth(1)?;
        let after = after.split_once(": ")?.1;
        after.split(['!', ',']).next()
    });
    let legacy_ep = |key: &str| {
        body.split(key)
            .nth(1)
            .and_then(|r| r.split([',', ' ']).find(|w| !w.is_empty()))
            .map(build::addr_colon_port)
            .unwrap_or((None, None))
    };
    let mut flow = flow;
    if flow.src_ip.is_none() {
        (flow.src_ip, flow.src_port) = legacy_ep("source: ");
    }
    if flow.dst_ip.is_none() {
        (flow.dst_ip, flow.dst_port) = legacy_ep("destination: ");
    }
    let a = attack.unwrap_or("").to_ascii_lowercase();
    let rule_name = build::rule_or(attack, RULE);
    if a.contains("flood") || a.contains("session limit") {
        let ddos = build::ddos(flow, rule_name, build::first_keyword(&a, FLOOD_TYPES));
        return (Kind::Ddos(ddos), Severity::High);
    }
    let ids = Ids {
        protocol: protocol(kv).and_then(build::transport),
        app: None,
        attack_type: build::first_keyword(&a, SCREEN_TYPES),
    };
    (
        Kind::Intrusion(build::intrusion(flow, rule_name, ids)),
        Severity::Middle,
    )
}

/// `session created 10.0.0.1/1234->192.0.2.1/80 ...`: the first `a/p->b/p`.
fn legacy_session(
    body: &str,
) -> (
    Option<std::net::IpAddr>,
    Option<u16>,
    Option<std::net::IpAddr>,
    Option<u16>,
) {
    let Some(w) = body.split_whitespace().find(|w| w.contains("->")) else {
        return (None, None, None, None);
    };
    let Some((a, b)) = w.split_once("->") else {
        return (None, None, None, None);
    };
    let (sa, sp) = build::addr_slash_port(a);
    let (da, dp) = build::addr_slash_port(b);
    (sa, sp, da, dp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};

    #[test]
    fn session_deny_structured() {
        let n = auto(
            r#"2017-09-23T13:54:54.803Z srx-edge-1 RT_FLOW - RT_FLOW_SESSION_DENY [junos@2636.1.1.1.2.39 source-address="192.168.10.5" source-port="51080" destination-address="192.168.20.2" destination-port="8080" service-name="junos-dns-udp" protocol-id="17" icmp-type="0" policy-name="deny-all" source-zone-name="trust" destination-zone-name="untrust" application="UNKNOWN" username="N/A" packet-incoming-interface="ge-0/0/1.0" reason="policy deny"]"#,
            "juniper-srx",
        );
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.src_ip, ip("192.168.10.5"));
        assert_eq!(f.dst_port, Some(8080));
        assert_eq!(f.action, Some(IngressAction::Drop));
        assert_eq!(f.rule_name.as_deref(), Some("deny-all"));
    }

    #[test]
    fn idp_and_screen() {
        let n = auto(
            r#"RT_IDP: RT_IDP_ATTACK_LOG_EVENT [junos@2636.1.1.1.2.135 epoch-time="1507845354" message-type="SIG" source-address="198.51.100.27" source-port="45610" destination-address="192.0.2.20" destination-port="80" protocol-name="TCP" service-name="SERVICE_IDP" application-name="HTTP" rule-name="9" rulebase-name="IPS" policy-name="Recommended" export-id="15229" repeat-count="0" action="DROP" threat-severity="HIGH" attack-name="TROJAN:ZMEU-BOT-SCAN" nat-source-address="0.0.0.0"]"#,
            "juniper-srx",
        );
        let Kind::Intrusion(i) = &n.message.kind else {
            panic!("{:?}", n.message.kind)
        };
        assert_eq!(i.rule_name, "TROJAN:ZMEU-BOT-SCAN");
        assert_eq!(n.message.common.severity, Severity::High);
        let n = auto(
            r#"RT_IDS - RT_SCREEN_TCP [junos@2636.1.1.1.2.39 attack-name="TCP SYN flood!" source-address="1.1.1.1" source-port="1234" destination-address="2.2.2.2" destination-port="80" protocol-id="6" source-zone-name="untrust" interface-name="ge-0/0/0.0" action="drop"]"#,
            "juniper-srx",
        );
        let Kind::Ddos(d) = &n.message.kind else {
            panic!()
        };
        assert_eq!(d.attack_type, Some(DdosType::SynFlood));
    }

    #[test]
    fn legacy_session_create() {
        let n = auto(
            "RT_FLOW: RT_FLOW_SESSION_CREATE: session created 10.0.0.1/51000->192.0.2.1/80 junos-http 203.0.113.1/3333->192.0.2.1/80 None None 6 allow-web trust untrust 12345 N/A(N/A) ge-0/0/0.0",
            "juniper-srx",
        );
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.src_port, Some(51000));
        assert_eq!(f.dst_ip, ip("192.0.2.1"));
    }
}
