//! Barracuda Web Application Firewall syslog (space-separated, `<date> <time> <tz> <unit>
//! <log type> ...`, as Barracuda's "Syslog and other logs" reference lists the fields of each
//! log type: WF web firewall, TR access, AUDIT, SYS system, NF network firewall), and Barracuda
//! CloudGen Firewall activity logs (`... Block: type=FWD|proto=TCP|srcIF=..|srcIP=..|srcPort=..|
//! dstIP=..|dstPort=..|rule=..|...`).
//!
//! Mapping: the WAF log type through [`LAYOUTS`] (field positions after the log type): WF -> web
//! attack; TR -> firewall traffic log with URL, host, method and status in `envelope/fields`;
//! AUDIT -> system access log (logins) or configuration change; NF -> firewall traffic log; SYS
//! -> generic log carrying its fields. CloudGen activity -> firewall traffic log, the word before
//! `: type=` being the action. Rule names: the WAF rule / ACL name, CloudGen `rule`; placeholder
//! `barracuda-unknown-rule`.

use pharos_model::Severity;

use crate::LogInput;
use crate::build::{self, Draft, Flow, FwClass, FwParts, ip, port};
use crate::fields::{Fields, Kv};
use crate::vendors::{Probe, find, probe};

/// A WAF log type word near the start, or a CloudGen activity record.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    let t = p.input.text.as_bytes();
    (t.first().is_some_and(u8::is_ascii_digit) || p.input.app_name.is_some())
        && (probe!(p, " WF ")
            || probe!(p, " TR ")
            || probe!(p, " NF ")
            || probe!(p, " AUDIT ")
            || probe!(p, " SYS "))
        || probe!(p, "srcIP=") && probe!(p, "dstIP=") && probe!(p, "|")
}

/// Positions of the parts of one WAF log type, counted from the first field after the type.
#[derive(Clone, Copy)]
struct Layout {
    class: FwClass,
    src_ip: usize,
    src_port: usize,
    dst_ip: usize,
    dst_port: usize,
    /// Rule, ACL or attack name.
    rule: Option<usize>,
    signature: Option<usize>,
    action: Option<usize>,
    method: Option<usize>,
    url: Option<usize>,
    domain: Option<usize>,
    status: Option<usize>,
    user: Option<usize>,
    user_agent: Option<usize>,
    proto: Option<usize>,
}

const NONE: Layout = Layout {
    class: FwClass::Event,
    src_ip: usize::MAX,
    src_port: usize::MAX,
    dst_ip: usize::MAX,
    dst_port: usize::MAX,
    rule: None,
    signature: None,
    action: None,
    method: None,
    url: None,
    domain: None,
    status: None,
    user: None,
    user_agent: None,
    proto: None,
};

/// (log type, layout, sample). WF: severity, attack name, client ip/port, service ip/port,
/// rule, rule type, action, follow-up action, attack details, method, url, protocol, session id,
/// user agent, proxy ip/port, user, referer, unique id. TR: service ip/port, client ip/port,
/// login, certificate user, method, protocol, host, version, status, bytes sent/received, cache
/// hit, time taken, server ip/port, server time, session id, response type, profile matched,
/// protected, wf matched, url, query, referer, cookie, user agent. AUDIT: admin, client type,
/// login ip/port, transaction type, id, command, change type, object type, object name,
/// variable, old value, new value. NF: severity, protocol, source ip/port, destination ip/port,
/// action, ACL name, message. SYS: module, level, event id, message.
const LAYOUTS: &[(&str, Layout, &str)] = &[
    (
        "WF",
        Layout {
            class: FwClass::WebAttack,
            src_ip: 2,
            src_port: 3,
            dst_ip: 4,
            dst_port: 5,
            rule: Some(6),
            signature: Some(1),
            action: Some(8),
            method: Some(11),
            url: Some(12),
            user_agent: Some(15),
            user: Some(18),
            ..NONE
        },
        r#"2024-03-01 10:20:30.123 +0000 waf01 WF ALER SQL_INJECTION_IN_URL 203.0.113.25 51000 10.2.0.10 443 global-policy GLOBAL DENY NONE [type="sql-injection-medium" pattern="sql-tautology" token="' or 1=1"] GET shop.example.com/item.php?id=1'+or+1=1 HTTPS "-" "Mozilla/5.0 (X11; Linux x86_64)" 203.0.113.25 51000 - "-" 18e4b0a1c2d-77fa2c91"#,
    ),
    (
        "TR",
        Layout {
            class: FwClass::Traffic,
            src_ip: 2,
            src_port: 3,
            dst_ip: 0,
            dst_port: 1,
            method: Some(6),
            domain: Some(8),
            status: Some(10),
            url: Some(23),
            user: Some(4),
            user_agent: Some(27),
            ..NONE
        },
        r#"2024-03-01 10:21:00.456 +0000 waf01 TR 10.2.0.10 443 198.51.100.30 52000 jdoe - GET HTTPS shop.example.com HTTP/1.1 200 5120 430 0 12 10.2.1.5 8080 10 18e4b0a1c2e-0001 INTERNAL profile-1 PROTECTED ALLOWED /cart.php id=7 "-" "-" "curl/8.0" 198.51.100.30 52000 - -"#,
    ),
    (
        "AUDIT",
        Layout {
            class: FwClass::Config,
            src_ip: 2,
            src_port: 3,
            dst_ip: usize::MAX,
            dst_port: usize::MAX,
            user: Some(0),
            action: Some(4),
            ..NONE
        },
        r#"2024-03-01 10:22:00.789 +0000 waf01 AUDIT admin GUI 192.168.0.5 50555 CONFIG 52 config SET service shop-https "ssl_enabled" "no" "yes" "-""#,
    ),
    (
        "AUDIT",
        Layout {
            class: FwClass::AdminLogin,
            src_ip: 2,
            src_port: 3,
            dst_ip: usize::MAX,
            dst_port: usize::MAX,
            user: Some(0),
            action: Some(4),
            ..NONE
        },
        r#"2024-03-01 10:22:10.000 +0000 waf01 AUDIT admin GUI 192.168.0.5 50556 LOGIN 53 - - - - - - - "-""#,
    ),
    (
        "NF",
        Layout {
            class: FwClass::Traffic,
            src_ip: 2,
            src_port: 3,
            dst_ip: 4,
            dst_port: 5,
            proto: Some(1),
            action: Some(6),
            rule: Some(7),
            ..NONE
        },
        r#"2024-03-01 10:23:00.000 +0100  waf01 NF ALER TCP 203.0.113.44 40100 10.2.0.10 22 DENY SSH_BLOCK denied by network ACL"#,
    ),
    (
        "SYS",
        Layout {
            src_ip: usize::MAX,
            ..NONE
        },
        r#"2024-03-01 10:24:00.000 +0000 waf01 SYS NOTICE ADMIN 10001 "Configuration backup completed""#,
    ),
];

/// Splits on spaces, keeping `"..."` and `[...]` (which may hold spaces) as one field each.
fn words<'a>(s: &'a str, out: &mut Vec<&'a str>) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && out.len() < crate::fields::MAX_FIELDS {
        while b.get(i) == Some(&b' ') {
            i += 1;
        }
        let Some(&c) = b.get(i) else { break };
        let close = match c {
            b'"' => Some(b'"'),
            b'[' => Some(b']'),
            _ => None,
        };
        let (start, end, next) = match close {
            Some(q) => {
                let e =
                    memchr::memchr(q, b.get(i + 1..).unwrap_or(&[])).map_or(b.len(), |e| i + 1 + e);
                (i + 1, e, e + 1)
            }
            None => {
                let e = memchr::memchr(b' ', b.get(i..).unwrap_or(&[])).map_or(b.len(), |e| i + e);
                (i, e, e)
            }
        };
        out.push(s.get(start..end).unwrap_or(""));
        i = next;
    }
}

/// WAF severity words on Pharos' scale.
fn severity(s: &str) -> Severity {
    match s {
        "EMER" | "ALER" | "CRIT" => Severity::Critical,
        "ERRO" | "ERR" => Severity::High,
        "WARN" => Severity::Middle,
        "NOTI" | "NOTICE" => Severity::Low,
        _ => Severity::Info,
    }
}

/// Normalises one Barracuda line.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    if let Some(at) = find!(input.text, ": type=") {
        return cloudgen(input, at);
    }
    let mut w = Fields::with_capacity(48);
    words(input.text, &mut w);
    // the log type is one of the first five words (after date, time, zone and unit)
    let (at, ty, layout) = w.iter().take(6).enumerate().find_map(|(i, word)| {
        LAYOUTS
            .iter()
            .find(|(t, _, _)| t == word)
            .map(|(t, l, _)| (i, *t, *l))
    })?;
    let unit = at.checked_sub(1).and_then(|u| w.get(u)).copied();
    let rest = w.get(at + 1..).unwrap_or(&[]);
    let col = |i: usize| rest.get(i).copied().and_then(|v| build::present(Some(v)));
    let opt = |i: Option<usize>| i.and_then(col);
    let mut layout = layout;
    if ty == "AUDIT" {
        let tx = col(4).unwrap_or("");
        layout.class = if build::contains_ci(tx, "logout") {
            FwClass::Logout
        } else if build::contains_ci(tx, "login") {
            if build::contains_ci(tx, "fail") {
                FwClass::LoginFailed
            } else {
                FwClass::AdminLogin
            }
        } else {
            FwClass::Config
        };
    }
    let flow = Flow {
        src_ip: col(layout.src_ip).and_then(ip),
        src_port: col(layout.src_port).and_then(port),
        dst_ip: col(layout.dst_ip).and_then(ip),
        dst_port: col(layout.dst_port).and_then(port),
    };
    if ty != "SYS" && flow.src_ip.is_none() && flow.dst_ip.is_none() {
        return None;
    }
    let sev_word = match ty {
        "WF" | "NF" => col(0),
        "SYS" => col(1),
        _ => None,
    };
    let msg = match ty {
        "SYS" => col(3),
        "NF" => None,
        _ => None,
    };
    let parts = FwParts {
        flow,
        proto: opt(layout.proto),
        action: opt(layout.action),
        rule: opt(layout.rule),
        user: opt(layout.user),
        url: opt(layout.url),
        domain: opt(layout.domain),
        method: opt(layout.method),
        status: opt(layout.status).and_then(|s| s.parse().ok()),
        user_agent: opt(layout.user_agent),
        message_id: Some(ty),
        signature: opt(layout.signature),
        msg: msg.or_else(|| (ty == "AUDIT").then(|| col(6)).flatten()),
        ..Default::default()
    };
    let sev = sev_word.map_or(Severity::Info, severity);
    let d = build::fw_draft(layout.class, &parts, "barracuda-unknown-rule", sev);
    let time = match (w.first(), w.get(1)) {
        (Some(d), Some(t)) if at >= 3 => crate::time::date_time(d, t, w.get(2).copied()),
        _ => None,
    };
    let summary = parts.signature.or(parts.rule).or(parts.msg).unwrap_or(ty);
    Some(
        d.time(time)
            .vendor("Barracuda")
            .model(Some("Web Application Firewall"))
            .summary(format!("{}: {summary}", unit.unwrap_or(ty))),
    )
}

/// CloudGen Firewall activity: `<action>: type=FWD|proto=..|srcIP=..|...`.
fn cloudgen(input: &LogInput<'_>, at: usize) -> Option<Draft> {
    let head = input.text.get(..at)?;
    let action = head.rsplit(' ').next().filter(|a| !a.is_empty());
    let kv = Kv::parse(input.text.get(at + 2..)?);
    let flow = Flow {
        src_ip: kv.get("srcIP").and_then(ip),
        src_port: kv.get("srcPort").and_then(port),
        dst_ip: kv.get("dstIP").and_then(ip),
        dst_port: kv.get("dstPort").and_then(port),
    };
    flow.src_ip.or(flow.dst_ip)?;
    let parts = FwParts {
        flow,
        nat_src_ip: kv.get("srcNAT").and_then(ip),
        nat_dst_ip: kv.get("dstNAT").and_then(ip),
        proto: kv.get("proto"),
        app: kv.any(&["application", "dstService"]),
        action,
        rule: kv.get("rule"),
        user: kv.get("user"),
        url: kv.get("target").filter(|t| t.contains('/')),
        domain: kv.get("target").filter(|t| !t.contains('/')),
        sent: kv.get("sentBytes").and_then(|v| v.parse().ok()),
        received: kv.get("receivedBytes").and_then(|v| v.parse().ok()),
        message_id: kv.get("type"),
        in_if: kv.get("srcIF"),
        out_if: kv.get("dstIF"),
        msg: kv.get("info"),
        ..Default::default()
    };
    let sev = match action.map(build::action) {
        Some(Some(pharos_model::ident::IngressAction::Pass)) | None => Severity::Info,
        _ => Severity::Low,
    };
    Some(
        build::fw_draft(FwClass::Traffic, &parts, "barracuda-unknown-rule", sev)
            .vendor("Barracuda")
            .model(Some("CloudGen Firewall")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};
    use pharos_model::Kind;

    #[test]
    fn every_layout_sample_normalises_to_its_class() {
        for (ty, layout, sample) in LAYOUTS {
            let n = auto(sample, "barracuda");
            let k = &n.message.kind;
            let ok = match layout.class {
                FwClass::Traffic => matches!(k, Kind::FirewallTrafficLog(_)),
                FwClass::WebAttack => matches!(k, Kind::WebAttack(_)),
                FwClass::Config => matches!(k, Kind::SystemEvent(_)),
                FwClass::AdminLogin => matches!(k, Kind::SystemAccessLog(_)),
                _ => matches!(k, Kind::GenericLog(_)),
            };
            assert!(ok, "{ty}: {k:?}");
            let f = n.message.common.fields.as_deref();
            assert_eq!(f.and_then(|f| f.message_id.as_deref()), Some(*ty));
        }
    }

    #[test]
    fn web_firewall_log_keeps_the_request() {
        let n = auto(LAYOUTS[0].2, "barracuda");
        let Kind::WebAttack(w) = &n.message.kind else {
            panic!()
        };
        assert_eq!(w.src_ip, ip("203.0.113.25"));
        assert_eq!(w.dst_port, Some(443));
        assert_eq!(w.rule_name, "SQL_INJECTION_IN_URL");
        assert_eq!(w.req_method, Some(pharos_model::ident::ReqMethod::Get));
        assert_eq!(
            w.req_target.as_deref(),
            Some("shop.example.com/item.php?id=1'+or+1=1")
        );
    }

    #[test]
    fn access_log_and_cloudgen_activity() {
        let n = auto(LAYOUTS[1].2, "barracuda");
        let x = n.message.common.fields.as_deref().unwrap();
        assert_eq!(x.url.as_deref(), Some("/cart.php"));
        assert_eq!(x.domain.as_deref(), Some("shop.example.com"));
        assert_eq!(x.http_status, Some(200));
        let n = auto(
            "Info     FW-1 Block: type=FWD|proto=TCP|srcIF=eth1|srcIP=10.0.8.15|srcPort=50123|srcMAC=00:50:56:aa:bb:cc|dstIP=203.0.113.200|dstPort=445|dstService=microsoft-ds|dstIF=eth0|rule=BLOCK-SMB|info=Block by rule|srcNAT=10.0.8.15|dstNAT=203.0.113.200|duration=0|count=1|receivedBytes=0|sentBytes=0|user=",
            "barracuda",
        );
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!("{:?}", n.message.kind)
        };
        assert_eq!(f.src_ip, ip("10.0.8.15"));
        assert_eq!(f.dst_port, Some(445));
        assert_eq!(f.action, Some(pharos_model::ident::IngressAction::Drop));
        assert_eq!(f.rule_name.as_deref(), Some("BLOCK-SMB"));
    }
}
