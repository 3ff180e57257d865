//! Imperva SecureSphere (WAF and database gateways) and Imperva Cloud WAF records in the
//! `key=value` forms their syslog action sets are configured with (space, tab or `|` separated,
//! values optionally quoted). Imperva's CEF output goes through the CEF normaliser.
//!
//! SecureSphere builds its syslog text from placeholders (`${Event.sourceInfo.sourceIp}`,
//! `${Alert.alertType}`, `${Rule.parent.displayName}` ...) under names the administrator picks;
//! table [`KEYS`] lists the names Imperva's integration guides and common SIEM templates give
//! them. Mapping: a record naming a violation, alert type or attack -> web attack (with the URL
//! and method) when it has an HTTP request or its name is a web attack, else intrusion; a
//! record without one -> generic log with its fields.

use pharos_model::Severity;

use crate::LogInput;
use crate::build::{self, Draft, Flow, FwClass, FwParts};
use crate::fields::Kv;
use crate::vendors::{Probe, probe};

const RULE: &str = "imperva-unknown-rule";

/// Imperva product names in the record (its CEF goes to the CEF normaliser first).
pub fn detect(p: &Probe<'_, '_>) -> bool {
    probe!(p, "Imperva")
        || probe!(p, "SecureSphere")
        || probe!(p, "Securesphere")
        || probe!(p, "Incapsula")
}

/// A field and the names the templates give it (first present wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum K {
    SrcIp,
    SrcPort,
    DstIp,
    DstPort,
    Proto,
    User,
    Url,
    Method,
    Host,
    Status,
    Agent,
    Attack,
    Policy,
    Action,
    Severity,
    Id,
    App,
}

const KEYS: &[(K, &[&str])] = &[
    (
        K::SrcIp,
        &[
            "SourceIP",
            "SourceIp",
            "sourceIp",
            "src-ip",
            "srcIP",
            "src",
            "sip",
            "ClientIP",
            "client_ip",
        ],
    ),
    (
        K::SrcPort,
        &[
            "SourcePort",
            "sourcePort",
            "src-port",
            "srcPort",
            "spt",
            "cport",
        ],
    ),
    (
        K::DstIp,
        &[
            "DestinationIP",
            "DestIP",
            "destIp",
            "ServerIP",
            "serverIp",
            "dst-ip",
            "dst",
            "dip",
        ],
    ),
    (
        K::DstPort,
        &[
            "DestinationPort",
            "DestPort",
            "destPort",
            "ServerPort",
            "serverPort",
            "dst-port",
            "dpt",
            "sport",
        ],
    ),
    (K::Proto, &["Protocol", "protocol", "ipProtocol", "proto"]),
    (
        K::User,
        &[
            "UserName", "Username", "userName", "user", "usrName", "dbUser", "DBUser",
        ],
    ),
    (
        K::Url,
        &[
            "URL",
            "Url",
            "url",
            "urlPath",
            "uri",
            "requestURL",
            "request",
        ],
    ),
    (
        K::Method,
        &["Method", "method", "httpMethod", "requestMethod"],
    ),
    (
        K::Host,
        &[
            "Host",
            "host",
            "HostName",
            "siteName",
            "ServerGroup",
            "serverGroup",
        ],
    ),
    (
        K::Status,
        &["ResponseCode", "responseCode", "status", "cn1"],
    ),
    (K::Agent, &["UserAgent", "userAgent", "user-agent"]),
    (
        K::Attack,
        &[
            "AlertType",
            "alertType",
            "Violation",
            "violation",
            "ViolationType",
            "AttackType",
            "attackType",
            "Signature",
            "signature",
            "AlertName",
            "alertName",
            "threatName",
        ],
    ),
    (
        K::Policy,
        &[
            "Policy",
            "PolicyName",
            "policy",
            "policyName",
            "Rule",
            "rule",
            "ruleName",
        ],
    ),
    (
        K::Action,
        &[
            "Action",
            "action",
            "ImmediateAction",
            "immediateAction",
            "act",
        ],
    ),
    (K::Severity, &["Severity", "severity", "AlertSeverity"]),
    (
        K::Id,
        &["AlertID", "alertId", "EventID", "eventId", "ViolationID"],
    ),
    (
        K::App,
        &[
            "ApplicationName",
            "Application",
            "ServiceName",
            "serviceName",
            "app",
        ],
    ),
];

fn get<'a>(kv: &Kv<'a>, k: K) -> Option<&'a str> {
    let keys = KEYS
        .iter()
        .find(|(x, _)| *x == k)
        .map_or(&[][..], |(_, v)| *v);
    kv.any(keys)
}

/// Imperva severity words on Pharos' scale.
fn severity(s: Option<&str>) -> Severity {
    match s.map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("high" | "critical") => Severity::High,
        Some("medium") => Severity::Middle,
        Some("low") => Severity::Low,
        _ => Severity::Info,
    }
}

/// Normalises one key=value record; `None` without an address or an alert.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let t = input.text;
    if t.contains("CEF:") || t.contains("LEEF:") {
        return None;
    }
    let kv = if t.matches('|').count() >= 3 {
        Kv::parse_with_separator(t, '|')
    } else if t.contains('\t') {
        Kv::parse_with_separator(t, '\t')
    } else {
        Kv::parse(t)
    };
    let g = |k| get(&kv, k);
    let attack = g(K::Attack);
    let src = g(K::SrcIp).and_then(build::ip);
    if src.is_none() && attack.is_none() {
        return None;
    }
    let url = g(K::Url);
    let method = g(K::Method);
    let class = match attack {
        Some(a) if url.is_some() || method.is_some() || build::web_attack_type(a).is_some() => {
            FwClass::WebAttack
        }
        Some(_) => FwClass::Ips,
        None => FwClass::Event,
    };
    let p = FwParts {
        flow: Flow {
            src_ip: src,
            src_port: g(K::SrcPort).and_then(build::port),
            dst_ip: g(K::DstIp).and_then(build::ip),
            dst_port: g(K::DstPort).and_then(build::port),
        },
        proto: g(K::Proto),
        user: g(K::User),
        url,
        method,
        domain: g(K::Host),
        status: g(K::Status).and_then(|s| s.parse().ok()),
        user_agent: g(K::Agent),
        signature: attack,
        rule: g(K::Policy),
        action: g(K::Action),
        message_id: g(K::Id),
        app: g(K::App),
        ..Default::default()
    };
    let sev = severity(g(K::Severity));
    Some(
        build::fw_draft(class, &p, RULE, sev)
            .vendor("Imperva")
            .model(Some("SecureSphere")),
    )
}

#[cfg(test)]
mod tests {
    use crate::vendors::testutil::{auto, ip};
    use pharos_model::Kind;

    /// Samples of the common templates: (line, kind).
    const SAMPLES: &[(&str, &str)] = &[
        (
            "DeviceType=ImpervaSecuresphere|AlertID=2234|EventID=88812|Severity=High|AlertType=SQL Injection|SourceIP=198.51.100.9|SourcePort=53122|DestinationIP=192.0.2.80|DestinationPort=443|Protocol=TCP|UserName=N/A|ServerGroup=shop|ServiceName=HTTPS|Policy=Web Worm Policy|Action=Block|Method=POST|URL=/cart/add.php",
            "web-attack",
        ),
        (
            "Imperva SecureSphere: AlertID=4410 Severity=Medium AlertType=\"Unauthorized SQL Table Access\" SourceIP=10.20.0.5 SourcePort=40444 DestinationIP=10.20.0.80 DestinationPort=1433 UserName=app_rw Policy=\"DB Access Policy\" Action=None",
            "intrusion",
        ),
        (
            "Imperva SecureSphere: EventID=5511 SourceIP=10.20.0.6 SourcePort=40445 DestinationIP=10.20.0.81 DestinationPort=3306 UserName=report Protocol=TCP",
            "generic-log",
        ),
    ];

    #[test]
    fn every_template_sample_is_read() {
        for (line, kind) in SAMPLES {
            let n = auto(line, "imperva");
            assert_eq!(n.message.kind.name(), *kind, "{line}");
        }
        let n = auto(SAMPLES[0].0, "imperva");
        let Kind::WebAttack(w) = &n.message.kind else {
            panic!()
        };
        assert_eq!(w.src_ip, ip("198.51.100.9"));
        assert_eq!(w.req_target.as_deref(), Some("/cart/add.php"));
        assert_eq!(w.rule_name, "SQL Injection");
        let n = auto(SAMPLES[1].0, "imperva");
        let Kind::Intrusion(i) = &n.message.kind else {
            panic!()
        };
        assert_eq!(i.dst_port, Some(1433));
    }
}
