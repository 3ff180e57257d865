//! Generic ArcSight CEF (`CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|ext`), and the
//! classifier that CEF and LEEF share.
//!
//! Mapping (first match, on the event name, category and signature fields): anti-virus words ->
//! virus; HTTP attack words -> web attack; DoS/flood words -> DDoS; IDS/IPS/threat/exploit words
//! -> intrusion; login/authentication words with a user -> user activity (failures, successes) or
//! system access log (administrator access); policy/configuration change words -> configuration
//! change; otherwise, addresses plus ports or an action -> firewall traffic log. Rule names: the
//! signature name (`UNIFIipsSignature`, `cs1` when labelled as a rule, the event name) or the
//! signature id; placeholder `cef-unknown-rule` / `leef-unknown-rule`.

use std::net::IpAddr;

use pharos_model::ident::{DdosType, OperationType, UserActivityType};
use pharos_model::{FirewallTrafficLog, Kind, LogFields, Severity, VirusEvent};

use crate::LogInput;
use crate::build::{self, Draft, Flow, Ids, Request, has_words, ip, port};
use crate::fields::{Kv, parse_cef};
use crate::vendors::{Probe, has, probe};

/// `CEF:` at the start or after a syslog header.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    let input = p.input;
    probe!(p, "CEF:") || (input.text.starts_with("0|") && input.text.matches('|').count() >= 7)
}

/// CEF severity (0-10 or a word) on Pharos' scale.
pub fn severity(s: &str) -> Severity {
    match s.trim().to_ascii_lowercase().as_str() {
        "0" | "unknown" => Severity::Info,
        "1" | "2" | "3" | "low" => Severity::Low,
        "4" | "5" | "6" | "medium" => Severity::Middle,
        "7" | "8" | "high" => Severity::High,
        "9" | "10" | "very-high" | "very high" | "critical" => Severity::Critical,
        _ => Severity::Info,
    }
}

/// Fields a CEF or LEEF record names, resolved from their vendor-specific keys.
pub struct Fields<'a> {
    pub name: &'a str,
    pub signature_id: &'a str,
    pub category: &'a str,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub spt: Option<u16>,
    pub dpt: Option<u16>,
    pub proto: Option<&'a str>,
    pub act: Option<&'a str>,
    pub user: Option<&'a str>,
    pub url: Option<&'a str>,
    pub method: Option<&'a str>,
    pub host: Option<&'a str>,
    pub file: Option<&'a str>,
    pub rule: Option<&'a str>,
    pub app: Option<&'a str>,
    pub bytes_out: Option<u64>,
    pub bytes_in: Option<u64>,
    /// What the record says beyond the classifier's inputs (NAT, interfaces, session, agent,
    /// status, destination user): kept in `envelope/fields`.
    pub extra: LogFields,
}

impl Fields<'_> {
    /// Every field as `envelope/fields` (the classifier's inputs plus [`Fields::extra`]).
    pub fn all(&self) -> LogFields {
        let s = |v: Option<&str>| build::present(v).map(build::clip);
        LogFields {
            src_ip: self.src,
            src_port: self.spt,
            dst_ip: self.dst,
            dst_port: self.dpt,
            protocol: build::present(self.proto).map(|p| build::clip(&p.to_ascii_lowercase())),
            action: s(self.act),
            rule_name: s(self.rule),
            user: s(self.user),
            domain: s(self.host),
            url: s(self.url),
            http_method: s(self.method),
            sent_bytes: self.bytes_out,
            received_bytes: self.bytes_in,
            message_id: s(Some(self.signature_id)),
            application: s(self.app),
            file_name: s(self.file),
            ..self.extra.clone()
        }
    }
}

/// The standard CEF keys (short and full names) the classifier does not read, as
/// `envelope/fields`.
fn cef_extra(e: &Kv<'_>) -> LogFields {
    let s = |keys: &[&str]| e.any(keys).map(build::clip);
    LogFields {
        nat_src_ip: e
            .any(&["sourceTranslatedAddress", "sourceTranslatedAddress6"])
            .and_then(ip),
        nat_src_port: e.any(&["sourceTranslatedPort"]).and_then(port),
        nat_dst_ip: e.any(&["destinationTranslatedAddress"]).and_then(ip),
        nat_dst_port: e.any(&["destinationTranslatedPort"]).and_then(port),
        in_interface: s(&["deviceInboundInterface"]),
        out_interface: s(&["deviceOutboundInterface"]),
        user_agent: s(&["requestClientApplication"]),
        http_status: e
            .any(&["outcome"])
            .and_then(|o| o.parse().ok())
            .filter(|c| (100..600).contains(c)),
        mail_from: s(&["suser"])
            .filter(|u| u.contains('@') && e.get("duser").is_some_and(|d| d.contains('@'))),
        mail_to: s(&["duser"])
            .filter(|u| u.contains('@') && e.get("suser").is_some_and(|d| d.contains('@'))),
        ..Default::default()
    }
}

/// Normalises one CEF record.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let owned;
    let text: &str = if has!(input.text, "CEF:") {
        input.text
    } else {
        owned = format!("CEF:{}", input.text);
        &owned
    };
    let c = parse_cef(text)?;
    let e = &c.ext;
    let category = e
        .any(&[
            "cat",
            "UNIFIsubCategory",
            "UNIFIcategory",
            "deviceEventCategory",
        ])
        .unwrap_or("");
    let f = Fields {
        name: c.name,
        signature_id: c.signature_id,
        category,
        src: e.any(&["src", "sourceAddress", "c6a2"]).and_then(ip),
        dst: e.any(&["dst", "destinationAddress", "c6a3"]).and_then(ip),
        spt: e.any(&["spt", "sourcePort"]).and_then(port),
        dpt: e.any(&["dpt", "destinationPort"]).and_then(port),
        proto: e.any(&["proto", "transportProtocol"]),
        act: e.any(&["act", "deviceAction", "outcome"]),
        user: e.any(&[
            "suser",
            "duser",
            "UNIFIadmin",
            "sourceUserName",
            "destinationUserName",
        ]),
        url: e.any(&["request", "requestUrl", "requestURL"]),
        method: e.any(&["requestMethod"]),
        host: e.any(&["dhost", "requestHost", "destinationHostName"]),
        file: e.any(&["fname", "fileName", "filePath"]),
        rule: e
            .any(&["UNIFIipsSignature", "UNIFIpolicyName"])
            .or_else(|| labelled(e, "rule")),
        app: e.any(&["app", "applicationProtocol"]),
        bytes_out: e
            .any(&["out", "bytesOut", "UNIFIbytesSent"])
            .and_then(|v| v.parse().ok()),
        bytes_in: e
            .any(&["in", "bytesIn", "UNIFIbytesReceived"])
            .and_then(|v| v.parse().ok()),
        extra: cef_extra(e),
    };
    let kind = classify(&f, "cef-unknown-rule");
    let fields = build::fields_beyond_case(&kind, f.all());
    let time = e
        .any(&["rt", "end", "start", "UNIFIutcTime", "deviceReceiptTime"])
        .and_then(|t| crate::time::epoch(t).or_else(|| crate::time::iso(t)));
    Some(
        Draft::new(kind, severity(c.severity))
            .fields(fields)
            .time(time)
            .vendor(c.vendor)
            .model(Some(c.product))
            .version(Some(c.version))
            .summary(e.get("msg").unwrap_or(c.name)),
    )
}

/// The value of `csN` whose `csNLabel` mentions `word`.
fn labelled<'a>(e: &Kv<'a>, word: &str) -> Option<&'a str> {
    const LABELS: [(&str, &str); 6] = [
        ("cs1Label", "cs1"),
        ("cs2Label", "cs2"),
        ("cs3Label", "cs3"),
        ("cs4Label", "cs4"),
        ("cs5Label", "cs5"),
        ("cs6Label", "cs6"),
    ];
    LABELS
        .iter()
        .find(|(l, _)| e.get(l).is_some_and(|v| build::contains_ci(v, word)))
        .and_then(|(_, k)| e.get(k))
}

/// Words that decide the kind of a CEF/LEEF event.
const VIRUS: &[&str] = &[
    "virus",
    "malware",
    "infected",
    "trojan",
    "worm",
    "ransomware",
    "eicar",
];
const DDOS: &[&str] = &["ddos", "dos attack", "flood", "denial of service"];
const IDS: &[&str] = &[
    "intrusion",
    "ids",
    "ips",
    "threat",
    "attack",
    "exploit",
    "signature",
    "scan",
    "botnet",
    "suspicious",
];
const LOGIN: &[&str] = &[
    "login",
    "logon",
    "log in",
    "log on",
    "authentication",
    "accessed",
    "sign in",
    "signin",
];
const CONFIG: &[&str] = &[
    "configuration",
    "config change",
    "policy change",
    "policy modified",
    "settings changed",
];

fn any_word(texts: &[&str], words: &[&str]) -> bool {
    texts.iter().any(|t| words.iter().any(|w| has_words(t, w)))
}

/// The kind of a CEF/LEEF event from its fields.
pub fn classify(f: &Fields<'_>, placeholder: &'static str) -> Kind {
    let texts = [f.name, f.category];
    let flow = Flow {
        src_ip: f.src,
        src_port: f.spt,
        dst_ip: f.dst,
        dst_port: f.dpt,
    };
    let rule_name = || {
        build::rule_or(
            f.rule.or(Some(f.name)).or(Some(f.signature_id)),
            placeholder,
        )
    };
    if any_word(&texts, VIRUS) {
        return Kind::Virus(VirusEvent {
            src_ip: f.src,
            src_port: f.spt,
            dst_ip: f.dst,
            dst_port: f.dpt,
            rule_name: rule_name(),
            virus_name: f.rule.map(build::clip),
            virus_type: build::virus_type(f.rule.unwrap_or(f.name)),
            host: f
                .host
                .map(build::clip)
                .or_else(|| f.dst.map(|a| a.to_string())),
            file_type: None,
            file_name: f.file.map(build::clip),
            os: None,
        });
    }
    let web = build::web_attack_type(f.name)
        .or_else(|| build::web_attack_type(f.category))
        .or_else(|| f.rule.and_then(build::web_attack_type));
    if let Some(t) = web {
        let req = Request {
            method: f.method,
            target: f.url,
            host: f.host,
            response_code: None,
        };
        return Kind::WebAttack(build::web_attack(flow, rule_name(), Some(t), req));
    }
    if any_word(&texts, DDOS) {
        /// Flood words in an event name (lower case); first match wins.
        const FLOODS: &[(&str, DdosType)] = &[
            ("syn", DdosType::SynFlood),
            ("udp", DdosType::UdpFlood),
            ("icmp", DdosType::Icmpv4Flood),
            ("http", DdosType::HttpFlood),
            ("dns", DdosType::DnsQueryFlood),
        ];
        let l = f.name.to_ascii_lowercase();
        let ddos = build::ddos(flow, rule_name(), build::first_keyword(&l, FLOODS));
        return Kind::Ddos(ddos);
    }
    // a named rule with a source is an IPS signature, unless the record is a login, a
    // configuration change or a whole flow with the firewall's action
    let whole_flow = f.act.is_some() && f.dst.is_some() && f.dpt.is_some();
    let signature_rule = f.rule.is_some()
        && f.src.is_some()
        && !whole_flow
        && !any_word(&texts, LOGIN)
        && !any_word(&texts, CONFIG);
    if any_word(&texts, IDS) || signature_rule {
        let ids = Ids {
            protocol: f.proto.and_then(build::transport),
            app: build::app_or_port(f.app, f.dpt),
            attack_type: build::intrusion_attack_type(f.name),
        };
        return Kind::Intrusion(build::intrusion(flow, rule_name(), ids));
    }
    if any_word(&texts, LOGIN) {
        let failed = any_word(
            &texts,
            &["fail", "failed", "failure", "denied", "rejected", "invalid"],
        ) || f.act.is_some_and(|a| build::contains_ci(a, "fail"));
        if failed {
            return build::user_activity(
                f.user,
                None,
                f.src,
                f.spt,
                UserActivityType::FailedLogin,
                Some(f.name),
            );
        }
        if any_word(&texts, &["admin", "administrator"]) {
            return build::access_log(
                f.user,
                f.src,
                f.spt,
                OperationType::Login,
                None,
                Some(f.name),
            );
        }
        if any_word(&texts, &["logout", "logoff", "log out"]) {
            return build::user_activity(
                f.user,
                None,
                f.src,
                f.spt,
                UserActivityType::Logout,
                Some(f.name),
            );
        }
        return build::user_activity(
            f.user,
            None,
            f.src,
            f.spt,
            UserActivityType::SuccessfulLogin,
            Some(f.name),
        );
    }
    if any_word(&texts, CONFIG) {
        return build::config_change(f.user, f.src, f.spt, f.rule);
    }
    if f.src.is_some() && f.dst.is_some() && (f.dpt.is_some() || f.act.is_some()) {
        return Kind::FirewallTrafficLog(FirewallTrafficLog {
            src_ip: f.src,
            dst_ip: f.dst,
            src_port: f.spt,
            dst_port: f.dpt,
            protocol: f.proto.and_then(build::protocol),
            action: f.act.and_then(build::action),
            sent_bytes: f.bytes_out,
            received_bytes: f.bytes_in,
            rule_name: f.rule.map(build::clip),
            policy_name: f.rule.map(build::clip),
            application: f.app.map(build::clip),
            user: f.user.map(build::clip),
            ..Default::default()
        });
    }
    build::unmapped("event class without a mapping")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};

    #[test]
    fn unifi_threat_is_an_intrusion() {
        let n = auto(
            "Oct 26 20:01:31 gw-1 CEF:0|Ubiquiti|UniFi Network|10.1.0|201|Threat Detected and Blocked|7|proto=TCP src=198.51.100.10 spt=46000 dpt=80 act=blocked app=HTTP UNIFIcategory=Security UNIFIsubCategory=Intrusion Prevention UNIFIipsSignature=ET DROP Dshield Block Listed Source group 1 UNIFIutcTime=2025-10-26T20:01:31.000Z",
            "cef",
        );
        let Kind::Intrusion(i) = &n.message.kind else {
            panic!("{:?}", n.message.kind)
        };
        assert_eq!(i.src_ip, ip("198.51.100.10"));
        assert_eq!(i.rule_name, "ET DROP Dshield Block Listed Source group 1");
        assert_eq!(n.message.common.vendor_name.as_deref(), Some("Ubiquiti"));
        assert_eq!(n.message.common.severity, Severity::High);
    }

    #[test]
    fn admin_access_and_web_attack() {
        let n = auto(
            "CEF:0|Ubiquiti|UniFi Network|9.5.0|544|Admin Accessed UniFi Network|1|UNIFIcategory=System UNIFIsubCategory=Admin UNIFIadmin=Site Admin src=10.70.1.22 msg=Site Admin accessed UniFi Network using the web.",
            "cef",
        );
        let Kind::SystemAccessLog(a) = &n.message.kind else {
            panic!("{:?}", n.message.kind)
        };
        assert_eq!(a.user, "Site Admin");
        let n = auto(
            "CEF:0|Imperva Inc.|SecureSphere|12.0|SQL Injection|SQL Injection|High|act=Block src=192.0.2.9 spt=5555 dst=10.0.0.80 dpt=443 requestMethod=POST request=/login.php dhost=shop.example",
            "cef",
        );
        let Kind::WebAttack(w) = &n.message.kind else {
            panic!()
        };
        assert_eq!(w.req_target.as_deref(), Some("/login.php"));
        assert_eq!(w.req_method, Some(pharos_model::ident::ReqMethod::Post));
    }
}
