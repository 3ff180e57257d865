//! F5 BIG-IP: LTM/APM/system syslog lines with their `xxxxxxxx:L:` message ids, ASM (Advanced
//! WAF) remote-logging records (`ASM:key="value",...`, also as Telemetry Streaming JSON), and
//! Telemetry Streaming JSON of APM sessions and LTM requests.
//!
//! Syslog lines: table [`MSGS`] maps a message id (with a needle when one id carries several
//! messages) to the I2NSF case, each row with a sample; addresses, user and byte counts are read
//! from the text by small patterns (`client IP A`, `at VIP B`, `A:p -> B:q`, `Username 'u'`,
//! `user u`, `host=A`, `bytes in: N, bytes out: M`). Records with keys (ASM, JSON) are read
//! through table [`KEYS`]: an ASM record with an attack type, violations or signatures is a web
//! attack; an APM access policy result is a login (failed for `Logon_Deny`); anything else is a
//! generic log with its fields.

use std::borrow::Cow;

use pharos_model::Severity;
use serde_json::Value;

use crate::LogInput;
use crate::build::{self, Draft, Flow, FwClass, FwParts};
use crate::fields::Kv;
use crate::vendors::{Probe, app_is, probe};

const RULE: &str = "f5-bigip-unknown-rule";

/// BIG-IP daemons whose lines carry message ids.
const APPS: &[&str] = &[
    "tmm",
    "tmm1",
    "tmm2",
    "tmm3",
    "tmm4",
    "tmm5",
    "tmm6",
    "tmm7",
    "mcpd",
    "apmd",
    "apm",
    "asm",
    "bd",
    "dcc",
    "tmsh",
    "big3d",
    "gtmd",
    "sod",
    "chmand",
    "lacpd",
    "audit_forwarder",
    "icrd_child",
    "restjavad",
    "websso",
];

/// ASM remote logging, Telemetry Streaming JSON, or a BIG-IP daemon's tag.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    probe!(p, "ASM:")
        || probe!(p, "unit_hostname=")
        || probe!(p, "telemetryEventCategory")
        || probe!(p, "errdefs_msgno")
        || app_is(p.input, APPS)
        || id_after_tag(p.input.text)
}

/// True when a BIG-IP message id follows the text's tag (`httpd[1]: 01070417:5: ...`).
fn id_after_tag(t: &str) -> bool {
    let head = t.get(..t.len().min(48)).unwrap_or(t);
    head.find(": ")
        .and_then(|at| t.get(at + 2..))
        .is_some_and(|rest| msg_id(rest).is_some())
}

/// What a message id is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Fw(FwClass),
    /// APM access policy result: a login, failed when the result is a deny.
    PolicyResult,
}

/// One message family: id, a needle the text must hold (empty: any), the class, a sample.
struct Msg {
    id: &'static str,
    needle: &'static str,
    class: Class,
    #[cfg_attr(not(test), allow(dead_code))]
    sample: &'static str,
}

use Class::{Fw, PolicyResult};

const MSGS: &[Msg] = &[
    Msg {
        id: "01490500",
        needle: "",
        class: Fw(FwClass::Event),
        sample: "apmd[8123]: 01490500:5: /Common/ap_vpn:Common:3a1f0b2c: New session from client IP 198.51.100.23 (ST=/CC=/C=) at VIP 203.0.113.10 Listener /Common/vs_vpn_443 (Reputation=Unknown)",
    },
    Msg {
        id: "01490010",
        needle: "",
        class: Fw(FwClass::Event),
        sample: "apmd[8123]: 01490010:5: /Common/ap_vpn:Common:3a1f0b2c: Username 'jdoe'",
    },
    Msg {
        id: "01490102",
        needle: "",
        class: PolicyResult,
        sample: "apmd[8123]: 01490102:5: /Common/ap_vpn:Common:3a1f0b2c: Access policy result: Logon_Deny",
    },
    Msg {
        id: "01490106",
        needle: "",
        class: Fw(FwClass::LoginFailed),
        sample: "apmd[8123]: 01490106:3: /Common/ap_vpn:Common:3a1f0b2c: AD module: authentication with 'jdoe' failed: Preauthentication failed, principal name: jdoe@EXAMPLE.COM.",
    },
    Msg {
        id: "01490128",
        needle: "",
        class: Fw(FwClass::Logout),
        sample: "apmd[8123]: 01490128:5: /Common/ap_vpn:Common:3a1f0b2c: Session deleted due to user logout request.",
    },
    Msg {
        id: "01490521",
        needle: "",
        class: Fw(FwClass::Event),
        sample: "apmd[8123]: 01490521:5: /Common/ap_vpn:Common:3a1f0b2c: Session statistics - bytes in: 24567, bytes out: 1245",
    },
    Msg {
        id: "01490005",
        needle: "",
        class: Fw(FwClass::Event),
        sample: "apmd[8123]: 01490005:5: /Common/ap_vpn:Common:3a1f0b2c: Following rule 'fallback' from item 'Logon Page' to ending 'Deny'",
    },
    Msg {
        id: "01070417",
        needle: "pam_audit",
        class: Fw(FwClass::AdminLogin),
        sample: "httpd[4321]: 01070417:5: AUDIT - user admin - RAW: httpd(pam_audit): User=admin tty=(unknown) host=192.0.2.44 attempts=1 start=\"Mon Oct 16 22:55:48 2023\".",
    },
    Msg {
        id: "01070417",
        needle: "",
        class: Fw(FwClass::Config),
        sample: "mcpd[6789]: 01070417:5: AUDIT - client tmsh, tmsh-pid=1234, user admin - transaction #123-1 - object 0 - create { ltm pool /Common/web_pool { } } [Status=Command OK]",
    },
    Msg {
        id: "01070638",
        needle: "",
        class: Fw(FwClass::Event),
        sample: "mcpd[6789]: 01070638:5: Pool /Common/web_pool member /Common/10.1.20.11:80 monitor status down. [ /Common/http: down ]  [ was up for 2hrs:1min:3sec ]",
    },
    Msg {
        id: "01070727",
        needle: "",
        class: Fw(FwClass::Event),
        sample: "mcpd[6789]: 01070727:5: Pool /Common/web_pool member /Common/10.1.20.11:80 monitor status up. [ /Common/http: up ]  [ was down for 0hr:5mins:2sec ]",
    },
    Msg {
        id: "01071681",
        needle: "",
        class: Fw(FwClass::Event),
        sample: "mcpd[6789]: 01071681:5: SNMP_TRAP: Virtual /Common/vs_web has become unavailable",
    },
    Msg {
        id: "01010221",
        needle: "",
        class: Fw(FwClass::Event),
        sample: "tmm[13344]: 01010221:3: Pool /Common/web_pool now has available members",
    },
    Msg {
        id: "01260013",
        needle: "",
        class: Fw(FwClass::Event),
        sample: "tmm1[13344]: 01260013:4: SSL Handshake failed for TCP 198.51.100.7:51744 -> 203.0.113.10:443",
    },
    Msg {
        id: "01010028",
        needle: "",
        class: Fw(FwClass::Event),
        sample: "tmm[13344]: 01010028:3: No members available for pool /Common/web_pool",
    },
    Msg {
        id: "011e0001",
        needle: "",
        class: Fw(FwClass::Ddos),
        sample: "tmm[13344]: 011e0001:4: Limiting closed port RST response from 299 to 250 packets/sec",
    },
    Msg {
        id: "01220001",
        needle: "",
        class: Fw(FwClass::Event),
        sample: "tmm[13344]: 01220001:6: TCL error: /Common/irule_redirect <HTTP_REQUEST> - ERR_NOT_SUPPORTED (line 1) invoked from within \"HTTP::redirect\"",
    },
];

/// The message id and severity digit at the start of `s` (`01490102:5: rest`).
fn msg_id(s: &str) -> Option<(&str, u8, &str)> {
    let id = s.get(..8)?;
    if !id.bytes().all(|b| b.is_ascii_hexdigit()) || s.as_bytes().get(8) != Some(&b':') {
        return None;
    }
    let lvl = *s.as_bytes().get(9)?;
    if !lvl.is_ascii_digit() || s.as_bytes().get(10) != Some(&b':') {
        return None;
    }
    Some((id, lvl - b'0', s.get(11..)?.trim_start()))
}

/// The word after `key` (quotes and trailing punctuation removed).
fn after<'a>(t: &'a str, key: &str) -> Option<&'a str> {
    super::linux_auth::word_after(t, key)
}

/// `A:p -> B:q` / `A:p to B:q` in a text.
fn arrow(t: &str) -> Option<Flow> {
    let (l, r) = t.split_once(" -> ").or_else(|| t.split_once(" to "))?;
    let a = l.rsplit(' ').next()?;
    let b = r.split([' ', ',']).next()?;
    let (si, sp) = build::addr_colon_port(a);
    let (di, dp) = build::addr_colon_port(b);
    (si.is_some() && di.is_some()).then_some(Flow {
        src_ip: si,
        src_port: sp,
        dst_ip: di,
        dst_port: dp,
    })
}

/// Number after `key` (`bytes in: 24567,`).
fn num_after(t: &str, key: &str) -> Option<u64> {
    after(t, key)?.trim_end_matches(',').parse().ok()
}

/// A syslog line with a message id.
fn syslog_line(input: &LogInput<'_>) -> Option<Draft> {
    let mut body = super::linux_auth::after_tag(input, APPS);
    if msg_id(body).is_none() && id_after_tag(body) {
        body = body.split_once(": ").map_or(body, |(_, r)| r.trim_start());
    }
    let (id, lvl, text) = match msg_id(body) {
        Some(m) => m,
        None if body.starts_with("Rule ") || body.starts_with("TCL error") => ("", 6, body),
        None => return None,
    };
    let row = MSGS.iter().find(|m| {
        m.id.eq_ignore_ascii_case(id) && (m.needle.is_empty() || text.contains(m.needle))
    });
    let class = row.map_or(Fw(FwClass::Event), |r| r.class);
    // APM lines: `/Common/profile:Common:sessionid: message`
    let (session, msg) = match text.strip_prefix('/').and_then(|r| r.split_once(": ")) {
        Some((ctx, m)) if ctx.matches(':').count() == 2 => (ctx.rsplit(':').next(), m),
        _ => (None, text),
    };
    let mut flow = arrow(msg).unwrap_or(Flow {
        src_ip: after(msg, "client IP ")
            .or_else(|| after(msg, "host="))
            .or_else(|| after(msg, "from "))
            .and_then(build::ip),
        dst_ip: after(msg, "at VIP ").and_then(build::ip),
        ..Default::default()
    });
    // an iRule's own log text: its first `address[:port]` is the client it logs
    if id.is_empty() && flow.src_ip.is_none() {
        (flow.src_ip, flow.src_port) = msg
            .split([' ', ',', '(', ')', '='])
            .map(build::addr_colon_port)
            .find(|(a, _)| a.is_some())
            .unwrap_or((None, None));
    }
    let user = after(msg, "Username '")
        .or_else(|| after(msg, "authentication with '"))
        .or_else(|| after(msg, "User="))
        .or_else(|| after(msg, "user ").filter(|_| msg.starts_with("AUDIT")));
    let result = msg.strip_prefix("Access policy result: ").map(str::trim);
    let fw = match class {
        Fw(c) => c,
        PolicyResult if result.is_some_and(|r| r.contains("Deny")) => FwClass::LoginFailed,
        PolicyResult => FwClass::UserLogin,
    };
    let p = FwParts {
        flow,
        user,
        session,
        message_id: (!id.is_empty()).then_some(id),
        received: num_after(msg, "bytes in: "),
        sent: num_after(msg, "bytes out: "),
        rule: after(msg, "Rule ").or_else(|| after(msg, "pool ")),
        msg: Some(msg),
        ..Default::default()
    };
    let sev = build::syslog_severity(Some(lvl));
    let model = input
        .app_name
        .filter(|a| a.starts_with("apm"))
        .map_or("BIG-IP", |_| "BIG-IP APM");
    Some(
        build::fw_draft(fw, &p, RULE, sev)
            .vendor("F5")
            .model(Some(model))
            .summary(msg),
    )
}

/// A field read from keyed records, with the keys ASM, APM and LTM records give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum K {
    SrcIp,
    SrcPort,
    DstIp,
    DstPort,
    User,
    Method,
    Uri,
    Host,
    Status,
    Agent,
    Attack,
    Violations,
    Signatures,
    Policy,
    Session,
    MsgNo,
    Result,
    Sent,
    Received,
    Proto,
    Time,
}

const KEYS: &[(K, &[&str])] = &[
    (
        K::SrcIp,
        &["ip_client", "Client_IP", "client_ip", "clientip", "src_ip"],
    ),
    (K::SrcPort, &["src_port", "client_port", "Client_Port"]),
    (
        K::DstIp,
        &["dest_ip", "Virtual_IP", "server_ip", "virtual_ip", "dst_ip"],
    ),
    (
        K::DstPort,
        &["dest_port", "server_port", "Virtual_Port", "dst_port"],
    ),
    (K::User, &["username", "Username", "User_Name", "user"]),
    (K::Method, &["method", "http_method"]),
    (K::Uri, &["uri", "http_uri", "URI"]),
    (K::Host, &["http_host", "host", "Host"]),
    (K::Status, &["response_code", "http_status", "status_code"]),
    (K::Agent, &["User_Agent", "http_user_agent", "user_agent"]),
    (K::Attack, &["attack_type"]),
    (K::Violations, &["violations"]),
    (K::Signatures, &["sig_names"]),
    (
        K::Policy,
        &["policy_name", "Access_Profile", "virtual_name"],
    ),
    (
        K::Session,
        &["support_id", "Session_Id", "Session_ID", "session_id"],
    ),
    (K::MsgNo, &["errdefs_msgno"]),
    (K::Result, &["Access_Policy_Result", "request_status"]),
    (K::Sent, &["Bytes_Out"]),
    (K::Received, &["Bytes_In"]),
    (K::Proto, &["protocol"]),
    (K::Time, &["date_time", "f5telemetry_timestamp"]),
];

/// A keyed record: ASM `key="value",...` or a JSON object.
enum Rec<'a> {
    Kv(Kv<'a>),
    Json(serde_json::Map<String, Value>),
}

impl Rec<'_> {
    fn get(&self, k: K) -> Option<Cow<'_, str>> {
        let keys = KEYS
            .iter()
            .find(|(x, _)| *x == k)
            .map_or(&[][..], |(_, v)| *v);
        keys.iter().find_map(|key| {
            let v = match self {
                Rec::Kv(kv) => Cow::Borrowed(kv.get(key)?),
                Rec::Json(m) => match m.get(*key)? {
                    Value::String(s) => Cow::Borrowed(s.as_str()),
                    Value::Number(n) => Cow::Owned(n.to_string()),
                    _ => return None,
                },
            };
            build::present(Some(&v)).is_some().then_some(v)
        })
    }
}

/// An ASM record or a Telemetry Streaming JSON record.
fn keyed(input: &LogInput<'_>) -> Option<Draft> {
    let t = input.text;
    let rec = if let Some(at) = t.find("ASM:") {
        Rec::Kv(Kv::parse(t.get(at + 4..)?))
    } else if let Some(at) = t.find('{') {
        match serde_json::from_str::<Value>(t.get(at..)?.trim_end()).ok()? {
            Value::Object(m) => Rec::Json(m),
            _ => return None,
        }
    } else if t.contains("unit_hostname=") {
        Rec::Kv(Kv::parse(t))
    } else {
        return None;
    };
    let g = |k| rec.get(k);
    let (si, sp, di, dp) = (g(K::SrcIp), g(K::SrcPort), g(K::DstIp), g(K::DstPort));
    let (user, method, uri, host, status, agent) = (
        g(K::User),
        g(K::Method),
        g(K::Uri),
        g(K::Host),
        g(K::Status),
        g(K::Agent),
    );
    let (attack, violations, sigs) = (g(K::Attack), g(K::Violations), g(K::Signatures));
    let (policy, session, msgno, result) = (g(K::Policy), g(K::Session), g(K::MsgNo), g(K::Result));
    let (sent, received, proto) = (g(K::Sent), g(K::Received), g(K::Proto));
    let num = |v: &Option<Cow<'_, str>>| v.as_deref().and_then(|s| s.trim().parse::<u64>().ok());
    let msg_no = msgno.as_deref().map(|m| m.split(':').next().unwrap_or(m));
    let is_asm = matches!(rec, Rec::Kv(_)) || violations.is_some() || attack.is_some();
    let class = if attack.is_some() || violations.is_some() || sigs.is_some() {
        FwClass::WebAttack
    } else if (!is_asm && msg_no == Some("01490102"))
        || result.as_deref().is_some_and(|r| r.starts_with("Logon_"))
    {
        if result.as_deref().is_some_and(|r| r.contains("Deny")) {
            FwClass::LoginFailed
        } else {
            FwClass::UserLogin
        }
    } else {
        FwClass::Event
    };
    let ip = |v: &Option<Cow<'_, str>>| v.as_deref().and_then(build::ip);
    let port = |v: &Option<Cow<'_, str>>| v.as_deref().and_then(build::port);
    let p = FwParts {
        flow: Flow {
            src_ip: ip(&si),
            src_port: port(&sp),
            dst_ip: ip(&di),
            dst_port: port(&dp),
        },
        user: user.as_deref(),
        method: method.as_deref(),
        url: uri.as_deref(),
        domain: host.as_deref(),
        status: status
            .as_deref()
            .and_then(|s| s.trim().parse().ok())
            .filter(|s| *s > 0),
        user_agent: agent.as_deref(),
        signature: attack
            .as_deref()
            .or(sigs.as_deref())
            .or(violations.as_deref()),
        rule: policy.as_deref(),
        session: session.as_deref(),
        message_id: msg_no,
        action: result.as_deref(),
        sent: num(&sent),
        received: num(&received),
        app: proto.as_deref(),
        msg: violations.as_deref().or(result.as_deref()),
        ..Default::default()
    };
    let sev = match class {
        FwClass::WebAttack => Severity::High,
        FwClass::LoginFailed => Severity::Low,
        _ => Severity::Info,
    };
    let time = g(K::Time).and_then(|t| crate::time::iso(&t));
    let model = if is_asm { "BIG-IP ASM" } else { "BIG-IP" };
    Some(
        build::fw_draft(class, &p, RULE, sev)
            .time(time)
            .vendor("F5")
            .model(Some(model)),
    )
}

/// Normalises one BIG-IP record.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    keyed(input).or_else(|| syslog_line(input))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};
    use pharos_model::Kind;

    #[test]
    fn every_message_row_sample_maps_to_its_class() {
        for m in MSGS {
            let n = auto(m.sample, "f5-bigip");
            let want = match m.class {
                Fw(FwClass::Event) => "generic-log",
                Fw(FwClass::LoginFailed) | Fw(FwClass::Logout) | PolicyResult => {
                    "user-activity-log"
                }
                Fw(FwClass::AdminLogin) => "system-access-log",
                Fw(FwClass::Config) => "system-event",
                Fw(FwClass::Ddos) => "ddos",
                Fw(_) => "firewall-traffic-log",
            };
            assert_eq!(n.message.kind.name(), want, "{}", m.sample);
        }
    }

    #[test]
    fn apm_session_addresses_user_and_result() {
        let n = auto(MSGS[0].sample, "f5-bigip");
        let f = n.message.common.fields.as_deref().unwrap();
        assert_eq!(f.src_ip, ip("198.51.100.23"));
        assert_eq!(f.dst_ip, ip("203.0.113.10"));
        assert_eq!(f.session_id.as_deref(), Some("3a1f0b2c"));
        let n = auto(MSGS[1].sample, "f5-bigip");
        assert_eq!(
            n.message.common.fields.as_deref().unwrap().user.as_deref(),
            Some("jdoe")
        );
        let n = auto(MSGS[2].sample, "f5-bigip");
        let Kind::UserActivityLog(u) = &n.message.kind else {
            panic!()
        };
        assert_eq!(
            u.additional_info.activity_type,
            Some(pharos_model::ident::UserActivityType::FailedLogin)
        );
        let n = auto(
            "tmm1[13344]: Rule /Common/irule_log <HTTP_REQUEST>: client 198.51.100.31:40122 requested www.example.com/login",
            "f5-bigip",
        );
        let f = n.message.common.fields.as_deref().unwrap();
        assert_eq!(f.src_ip, ip("198.51.100.31"));
        assert_eq!(f.rule_name.as_deref(), Some("/Common/irule_log"));
        let n = auto(
            MSGS.iter().find(|m| m.id == "01260013").unwrap().sample,
            "f5-bigip",
        );
        let f = n.message.common.fields.as_deref().unwrap();
        assert_eq!(f.dst_port, Some(443));
    }

    #[test]
    fn asm_kv_and_json_are_web_attacks() {
        let n = auto(
            r#"<131>Oct 16 22:55:48 bigip1 ASM:unit_hostname="bigip1.example.com",management_ip_address="192.0.2.5",http_class_name="/Common/app",web_application_name="/Common/app",policy_name="/Common/app_policy",violations="Attack signature detected",support_id="1234567890",request_status="blocked",response_code="0",ip_client="198.51.100.66",route_domain="0",method="GET",protocol="HTTP",query_string="q=<script>",x_forwarded_for_header_value="N/A",sig_ids="200001475",sig_names="XSS script tag (Parameter)",date_time="2023-10-16 22:55:48",severity="Critical",attack_type="Cross Site Scripting (XSS)",username="N/A",session_id="a1b2c3",src_port="51234",dest_port="443",dest_ip="203.0.113.20",uri="/search",request="GET /search?q=<script> HTTP/1.1""#,
            "f5-bigip",
        );
        let Kind::WebAttack(w) = &n.message.kind else {
            panic!("{:?}", n.message.kind)
        };
        assert_eq!(w.src_ip, ip("198.51.100.66"));
        assert_eq!(w.req_target.as_deref(), Some("/search"));
        assert_eq!(w.dst_port, Some(443));
        let n = auto(
            r#"{"telemetryEventCategory":"APM","Access_Policy_Result":"Logon_Deny","Access_Profile":"/Common/ap_vpn","session_id":"c0ffee01","errdefs_msgno":"01490102:5:","hostname":"bigip1.example.com","f5telemetry_timestamp":"2023-10-16T22:55:48.000Z"}"#,
            "f5-bigip",
        );
        assert_eq!(n.message.kind.name(), "user-activity-log");
    }
}
