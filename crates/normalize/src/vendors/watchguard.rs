//! WatchGuard Fireware syslog: traffic logs (`msg_id="3000-0148" Allow 1-Trusted 0-External 60
//! tcp 20 64 10.0.1.2 203.0.113.5 51000 443 offset 10 S 123 win 64240 (Outgoing-00)`), proxy
//! logs (`msg_id="1AFF-0024" Allow ... msg="ProxyAllow: HTTP request" op="GET"
//! dstname="..." arg="/" (HTTP-proxy-00)`) and event logs (`msg_id="3E00-0002" Authentication
//! of Firebox user [bob@Firebox-DB] from 10.0.1.2 was accepted`), after an optional `FVE...`
//! serial header, as the Fireware log catalog describes them.
//!
//! Mapping: the message id and text through [`MESSAGES`] (first row whose id prefix matches and
//! whose words occur): packet filter and proxy traffic -> firewall traffic log (proxy URL, host,
//! method in `envelope/fields`); IPS -> intrusion; Gateway AntiVirus -> virus; management logins
//! -> system access log; user authentication -> user activity (accepted / rejected); anything
//! else -> firewall traffic log when it has addresses, else a generic log with its fields. Rule
//! names: the policy in the trailing parentheses; placeholder `watchguard-unknown-rule`.

use pharos_model::Severity;

use crate::LogInput;
use crate::build::{self, Draft, Flow, FwClass, FwParts, ip, port};
use crate::fields::{Fields, Kv};
use crate::vendors::{Probe, find, probe};

/// `msg_id="`.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    probe!(p, "msg_id=\"")
}

/// (message id prefix, word of the text (any case) or "", class, sample).
const MESSAGES: &[(&str, &str, FwClass, &str)] = &[
    (
        "",
        "signature_id=",
        FwClass::Ips,
        r#"msg_id="1AFF-0017" Deny 0-External 1-Trusted tcp 203.0.113.77 10.0.1.20 44000 80 msg="IPS detected" signature_name="WEB SQL injection attempt -1.a" signature_cat="Web Attack" signature_id="1054837" severity="4" (HTTP-proxy-00)"#,
    ),
    (
        "",
        "virus=",
        FwClass::Virus,
        r#"msg_id="1AFF-0020" Deny 0-External 1-Trusted tcp 203.0.113.78 10.0.1.21 80 51000 msg="ProxyDrop: HTTP Virus found" proxy_act="HTTP-Client.Standard.1" virus="EICAR_Test_File" host="malware.example.org" path="/eicar.com" (HTTP-proxy-00)"#,
    ),
    (
        "3000",
        "",
        FwClass::Traffic,
        r#"msg_id="3000-0148" Allow 1-Trusted 0-External 60 tcp 20 64 10.0.1.2 203.0.113.5 51000 443 offset 10 S 3581929103 win 64240 (Outgoing-00)"#,
    ),
    (
        "3000",
        "",
        FwClass::Traffic,
        r#"msg_id="3000-0148" Deny 0-External Firebox 40 udp 20 117 198.51.100.66 203.0.113.1 53211 161 (Unhandled External Packet-00)"#,
    ),
    (
        "1AFF",
        "",
        FwClass::Traffic,
        r#"msg_id="1AFF-0024" Allow 1-Trusted 0-External tcp 10.0.1.3 93.184.216.34 52100 80 msg="ProxyAllow: HTTP request categories" proxy_act="HTTP-Client.Standard.1" cats="News and Media" op="GET" dstname="www.example.com" arg="/index.html" (HTTP-proxy-00)"#,
    ),
    (
        "2CFF",
        "",
        FwClass::Traffic,
        r#"msg_id="2CFF-0000" Allow 1-Trusted 0-External tcp 10.0.1.4 93.184.216.34 52101 443 msg="HTTPS Request" proxy_act="HTTPS-Client.Standard" sni="www.example.com" cn="www.example.com" (HTTPS-proxy-00)"#,
    ),
    (
        "",
        "management user",
        FwClass::AdminLogin,
        r#"msg_id="3E00-0001" Management user admin@Firebox-DB from 10.0.1.5 logged in"#,
    ),
    (
        "",
        "rejected",
        FwClass::LoginFailed,
        r#"msg_id="3E00-0002" Authentication of Firebox user [mallory@Firebox-DB] from 203.0.113.90 was rejected, password is incorrect"#,
    ),
    (
        "",
        "logged out",
        FwClass::Logout,
        r#"msg_id="3E00-0004" Firebox user bob@Firebox-DB from 10.0.1.6 logged out"#,
    ),
    (
        "",
        "accepted",
        FwClass::UserLogin,
        r#"msg_id="3E00-0002" Authentication of Firebox user [bob@Firebox-DB] from 10.0.1.6 was accepted"#,
    ),
    (
        "",
        "",
        FwClass::Event,
        r#"msg_id="0101-0001" Device configuration saved successfully"#,
    ),
];

/// Protocol words of the traffic log.
const PROTOCOLS: &[&str] = &[
    "tcp", "udp", "icmp", "igmp", "gre", "esp", "ah", "icmpv6", "sctp",
];

/// `user@domain` / `[user@domain]` -> `user`.
fn user_of(s: &str) -> &str {
    let s = s.trim_matches(['[', ']']);
    s.split('@').next().unwrap_or(s)
}

/// Normalises one WatchGuard line.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let t = input.text;
    let at = find!(t, "msg_id=\"")?;
    let rest = t.get(at + 8..)?;
    let end = rest.find('"')?;
    let id = rest.get(..end)?;
    let body = rest.get(end + 1..)?.trim();
    let kv = Kv::parse(body);
    let mut class = MESSAGES
        .iter()
        .find(|(p, w, _, _)| id.starts_with(p) && (w.is_empty() || build::contains_ci(body, w)))
        .map_or(FwClass::Event, |r| r.2);
    if kv.get("signature_id").is_some() && class == FwClass::Traffic {
        class = FwClass::Ips;
    }
    // traffic part: `Action src-if dst-if [len] proto [hdr ttl] src dst [sport dport]`
    let mut w = Fields::with_capacity(24);
    w.extend(body.split(' ').filter(|s| !s.is_empty()).take(24));
    let proto_at = w
        .iter()
        .take(8)
        .position(|x| PROTOCOLS.iter().any(|p| x.eq_ignore_ascii_case(p)));
    let (mut flow, mut action, mut in_if, mut out_if, mut proto) =
        (Flow::default(), None, None, None, None);
    if let Some(pa) = proto_at {
        proto = w.get(pa).copied();
        action = w.first().copied();
        in_if = w.get(1).copied();
        out_if = w.get(2).copied().filter(|_| pa > 2);
        let mut ips =
            (pa + 1..w.len().min(pa + 6)).filter(|&i| w.get(i).and_then(|x| ip(x)).is_some());
        if let (Some(s), Some(d)) = (ips.next(), ips.next()) {
            flow.src_ip = w.get(s).and_then(|x| ip(x));
            flow.dst_ip = w.get(d).and_then(|x| ip(x));
            flow.src_port = w.get(d + 1).and_then(|x| port(x));
            flow.dst_port = w.get(d + 2).and_then(|x| port(x));
        }
    }
    // events: `from <address>` and the user
    let word_after = |key: &str| {
        let mut it = body.split(' ').take(32);
        it.position(|x| x == key)?;
        it.next()
    };
    if flow.src_ip.is_none() {
        flow.src_ip = word_after("from").and_then(ip);
    }
    let user = kv
        .any(&["src_user", "user"])
        .map(user_of)
        .or_else(|| word_after("user").map(user_of));
    if class == FwClass::Event && flow.src_ip.is_some() && proto.is_some() {
        class = FwClass::Traffic;
    }
    // the policy: the last `(...)`
    let policy = body
        .rfind('(')
        .and_then(|o| body.get(o + 1..))
        .and_then(|r| r.get(..r.find(')')?))
        .filter(|p| body.trim_end().ends_with(')') && !p.is_empty());
    let domain = kv.any(&["dstname", "host", "sni"]);
    let path = kv.any(&["arg", "path"]);
    let url = match (domain, path) {
        (Some(d), Some(a)) if a.starts_with('/') => Some(format!("{d}{a}")),
        _ => None,
    };
    let parts = FwParts {
        flow,
        proto,
        app: kv.get("app_name"),
        action,
        rule: policy,
        user,
        url: url.as_deref().or(path),
        domain,
        method: kv.get("op"),
        sent: kv.get("sent_bytes").and_then(|v| v.parse().ok()),
        received: kv.get("rcvd_bytes").and_then(|v| v.parse().ok()),
        message_id: Some(id),
        in_if,
        out_if,
        signature: match class {
            FwClass::Ips => kv.get("signature_name"),
            FwClass::Virus => kv.get("virus"),
            _ => None,
        },
        msg: kv.get("msg").or(Some(body)),
        ..Default::default()
    };
    let sev = match class {
        FwClass::Ips | FwClass::Virus => Severity::High,
        FwClass::LoginFailed => Severity::Middle,
        FwClass::Traffic if build::contains_ci(action.unwrap_or(""), "deny") => Severity::Low,
        _ => Severity::Info,
    };
    Some(
        build::fw_draft(class, &parts, "watchguard-unknown-rule", sev)
            .vendor("WatchGuard")
            .model(Some("Fireware"))
            .summary(body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip, with_app};
    use pharos_model::Kind;
    use pharos_model::ident::UserActivityType;

    #[test]
    fn every_message_row_sample_normalises_to_its_class() {
        for (id, _, class, sample) in MESSAGES {
            let n = auto(sample, "watchguard");
            let k = &n.message.kind;
            let ok = match class {
                FwClass::Traffic => matches!(k, Kind::FirewallTrafficLog(_)),
                FwClass::Ips => matches!(k, Kind::Intrusion(_) | Kind::WebAttack(_)),
                FwClass::Virus => matches!(k, Kind::Virus(_)),
                FwClass::AdminLogin => matches!(k, Kind::SystemAccessLog(_)),
                FwClass::LoginFailed => {
                    matches!(k, Kind::UserActivityLog(u) if u.additional_info.activity_type == Some(UserActivityType::FailedLogin))
                }
                FwClass::UserLogin => {
                    matches!(k, Kind::UserActivityLog(u) if u.additional_info.activity_type == Some(UserActivityType::SuccessfulLogin))
                }
                FwClass::Logout => {
                    matches!(k, Kind::UserActivityLog(u) if u.additional_info.activity_type == Some(UserActivityType::Logout))
                }
                _ => matches!(k, Kind::GenericLog(_)),
            };
            assert!(ok, "{id}: {k:?}");
        }
    }

    #[test]
    fn traffic_log_after_a_serial_header() {
        let n = with_app(MESSAGES[2].3, "firewall", "watchguard");
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!("{:?}", n.message.kind)
        };
        assert_eq!(f.src_ip, ip("10.0.1.2"));
        assert_eq!(f.dst_ip, ip("203.0.113.5"));
        assert_eq!(f.src_port, Some(51000));
        assert_eq!(f.dst_port, Some(443));
        assert_eq!(f.rule_name.as_deref(), Some("Outgoing-00"));
        assert_eq!(f.in_interface.as_deref(), Some("1-Trusted"));
        let n = auto(
            &format!(
                "FVE1234567890 (2024-03-01T10:00:00) firewall: {}",
                MESSAGES[4].3
            ),
            "watchguard",
        );
        let x = n.message.common.fields.as_deref().unwrap();
        assert_eq!(x.url.as_deref(), Some("www.example.com/index.html"));
        assert_eq!(x.http_method.as_deref(), Some("GET"));
    }

    #[test]
    fn a_policy_name_with_ips_in_it_is_still_traffic() {
        let n = auto(
            r#"msg_id="3000-0148" Allow 1-Trusted 0-External 60 tcp 20 64 10.0.1.9 203.0.113.5 51009 443 offset 10 S 1 win 64240 (Relationships-Out-00)"#,
            "watchguard",
        );
        assert!(matches!(n.message.kind, Kind::FirewallTrafficLog(_)));
    }

    #[test]
    fn authentication_event_keeps_user_and_address() {
        let n = auto(MESSAGES[9].3, "watchguard");
        let Kind::UserActivityLog(u) = &n.message.kind else {
            panic!()
        };
        assert_eq!(u.user, "bob");
        assert_eq!(Some(u.ip_address), ip("10.0.1.6"));
    }
}
