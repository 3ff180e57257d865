//! Juniper SRX (Junos) logs: security (`RT_FLOW`, `RT_IDP`, `RT_SCREEN`, `RT_UTM`, `RT_AAMW`,
//! `RT_SECINTEL`, AppTrack) and management (`UI_LOGIN_EVENT`, `UI_AUTH_EVENT`, `UI_LOGOUT_EVENT`,
//! `UI_CMDLINE_READ_LINE`, `UI_COMMIT`, `SSHD_LOGIN_FAILED`, `LOGIN_FAILED`) events, in
//! structured form (`TAG [junos@2636.1.1.1.2.x key="value" ...]`, read from the text or, when the
//! syslog parser moved it to structured data, from the raw record) and in the plain text form
//! (`RT_FLOW_SESSION_CREATE: session created 10.0.0.1/1234->192.0.2.1/80 ...`,
//! `WEBFILTER_URL_BLOCKED: WebFilter: ACTION="URL Blocked" 10.0.0.1(1234)->192.0.2.1(80) ...`,
//! `RT_SCREEN_TCP: SYN flood! source: 1.2.3.4:5, destination: 5.6.7.8:80, ...`).
//!
//! [`EVENTS`] maps each event tag to its case: sessions (create/close pass, deny drop, AppTrack) ->
//! firewall traffic log; IDP attack -> intrusion (web attack when the attack is an HTTP attack);
//! screens: floods and session limits -> DDoS, the rest -> intrusion; web filtering and
//! anti-spam -> DPI log; anti-virus and ATP (AAMW) malware -> virus; security intelligence ->
//! intrusion; logins and commands -> system access log (failures -> user activity); commits ->
//! configuration change. Every record keeps what its case has no leaf for (NAT addresses, URL,
//! host, user, application, zones, tag) in `envelope/fields`. Rule names: `policy-name`,
//! `attack-name`, screen name, URL category or feed; placeholder `juniper-srx-unknown-rule`.

use std::net::IpAddr;

use pharos_model::ident::{
    DdosType, DpiType, IngressAction, IntrusionAttackType, OperationType, UserActivityType,
};
use pharos_model::{DpiLog, FirewallTrafficLog, Kind, LogFields, Severity, VirusEvent};

use crate::LogInput;
use crate::build::{self, Draft, Flow, Ids, Request, clip, ip, port, present};
use crate::fields::Kv;
use crate::vendors::{Probe, has, has_str, probe};

const RULE: &str = "juniper-srx-unknown-rule";

/// What an event tag becomes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Case {
    /// Session logs: firewall traffic log with this action.
    Session(IngressAction),
    Idp,
    Screen,
    WebFilter,
    Antispam,
    Virus,
    SecIntel,
    Login,
    LoginFailed,
    Logout,
    Commit,
    /// An operator command (system access log).
    Command,
}

/// One event: its tag (found anywhere in the record), its case, and a sample line.
struct Event {
    tag: &'static str,
    case: Case,
    #[cfg_attr(not(test), allow(dead_code))]
    sample: &'static str,
}

/// Junos events, most specific tag first.
static EVENTS: &[Event] = &[
    Event {
        tag: "RT_FLOW_SESSION_CREATE",
        case: Case::Session(IngressAction::Pass),
        sample: r#"<14>1 2023-04-01T10:00:00.000Z srx-1 RT_FLOW - RT_FLOW_SESSION_CREATE [junos@2636.1.1.1.2.129 source-address="10.0.1.5" source-port="51000" destination-address="192.0.2.80" destination-port="443" connection-tag="0" service-name="junos-https" nat-source-address="203.0.113.5" nat-source-port="40001" nat-destination-address="192.0.2.80" nat-destination-port="443" nat-connection-tag="0" src-nat-rule-type="source rule" src-nat-rule-name="snat-1" dst-nat-rule-type="N/A" dst-nat-rule-name="N/A" protocol-id="6" policy-name="allow-web" source-zone-name="trust" destination-zone-name="untrust" session-id-32="1001" username="alice" roles="N/A" packet-incoming-interface="ge-0/0/1.0" application="SSL" nested-application="UNKNOWN" encrypted="No"]"#,
    },
    Event {
        tag: "RT_FLOW_SESSION_CLOSE",
        case: Case::Session(IngressAction::Pass),
        sample: "Apr  1 10:05:00 srx-1 RT_FLOW: RT_FLOW_SESSION_CLOSE: session closed TCP FIN: 10.0.1.5/51000->192.0.2.80/443 0x0 junos-https 203.0.113.5/40001->192.0.2.80/443 0x0 source rule snat-1 N/A N/A 6 allow-web trust untrust 1001 20(1500) 30(9000) 300 SSL UNKNOWN N/A ge-0/0/1.0 No",
    },
    Event {
        tag: "RT_FLOW_SESSION_DENY",
        case: Case::Session(IngressAction::Drop),
        sample: r#"RT_FLOW - RT_FLOW_SESSION_DENY [junos@2636.1.1.1.2.39 source-address="192.168.10.5" source-port="51080" destination-address="192.168.20.2" destination-port="8080" service-name="junos-http" protocol-id="6" icmp-type="0" policy-name="deny-all" source-zone-name="trust" destination-zone-name="untrust" application="UNKNOWN" nested-application="UNKNOWN" username="N/A" roles="N/A" packet-incoming-interface="ge-0/0/1.0" encrypted="No" reason="policy deny"]"#,
    },
    Event {
        tag: "APPTRACK_SESSION_",
        case: Case::Session(IngressAction::Pass),
        sample: r#"RT_FLOW - APPTRACK_SESSION_CLOSE [junos@2636.1.1.1.2.129 reason="TCP RST" source-address="10.0.1.6" source-port="52000" destination-address="198.51.100.7" destination-port="80" service-name="junos-http" application="HTTP" nested-application="FACEBOOK-ACCESS" nat-source-address="203.0.113.5" nat-source-port="40002" destination-nat-address="198.51.100.7" destination-nat-port="80" protocol-id="6" policy-name="allow-web" source-zone-name="trust" destination-zone-name="untrust" session-id-32="1002" packets-from-client="10" bytes-from-client="900" packets-from-server="12" bytes-from-server="12000" elapsed-time="4" username="bob" roles="N/A" encrypted="No"]"#,
    },
    Event {
        tag: "IDP_ATTACK_LOG_EVENT",
        case: Case::Idp,
        sample: "Apr  1 10:10:00 srx-1 RT_IDP: IDP_ATTACK_LOG_EVENT: IDP: at 1680343800, SIG Attack log <198.51.100.27/45610->192.0.2.20/80> for TCP protocol and service SERVICE_IDP application HTTP by rule 9 of rulebase IPS in policy Recommended. attack: id=1, repeat=0, action=DROP, threat-severity=HIGH, name=HTTP:SQL:INJ:GENERIC-SQL-INJECTION, NAT <0.0.0.0:0->0.0.0.0:0>, time-elapsed=0, inbytes=0, outbytes=0, inpackets=0, outpackets=0, intf:untrust:ge-0/0/0.0->trust:ge-0/0/1.0, packet-log-id: 0, alert=no, username=N/A, roles=N/A and misc-message -",
    },
    Event {
        tag: "IDP_APPDDOS_APP_ATTACK_EVENT",
        case: Case::Screen,
        sample: r#"RT_IDP - IDP_APPDDOS_APP_ATTACK_EVENT [junos@2636.1.1.1.2.135 epoch-time="1680343900" ddos-application-name="HTTP" destination-zone-name="dmz" destination-interface-name="ge-0/0/2.0" destination-address="192.0.2.21" destination-port="80" protocol-name="TCP" service-name="SERVICE_IDP" rule-name="1" rulebase-name="DDOS" policy-name="ddos-pol" repeat-count="0" message="HTTP flood connection rate exceeded" context-value="N/A"]"#,
    },
    Event {
        tag: "RT_SCREEN_",
        case: Case::Screen,
        sample: "Apr  1 10:15:00 srx-1 RT_IDS: RT_SCREEN_TCP: SYN flood! source: 198.51.100.40:4321, destination: 192.0.2.30:80, zone name: untrust, interface name: ge-0/0/0.0, action: drop",
    },
    Event {
        tag: "WEBFILTER_URL_",
        case: Case::WebFilter,
        sample: r#"Apr  1 10:20:00 srx-1 RT_UTM: WEBFILTER_URL_BLOCKED: WebFilter: ACTION="URL Blocked" 10.0.1.7(53000)->198.51.100.9(80) CATEGORY="Enhanced_Gambling" REASON="BY_PRE_DEFINED" PROFILE="wf-corp" URL=bet.example.net OBJ=/casino/index.html USERNAME=carol ROLES=N/A"#,
    },
    Event {
        tag: "AV_VIRUS_DETECTED",
        case: Case::Virus,
        sample: r#"RT_UTM - AV_VIRUS_DETECTED_MT [junos@2636.1.1.1.2.129 source-address="198.51.100.10" source-port="80" destination-address="10.0.1.8" destination-port="54000" profile-name="av-corp" interface-name="ge-0/0/1.0" filename="eicar.com" temporary-filename="/var/tmp/av1" name="EICAR-Test-File" error-code="0" error-message="N/A" action="BLOCKED" username="dave" roles="N/A" url="downloads.example.org/eicar.com"]"#,
    },
    Event {
        tag: "ANTISPAM_SPAM_DETECTED",
        case: Case::Antispam,
        sample: r#"RT_UTM - ANTISPAM_SPAM_DETECTED_MT [junos@2636.1.1.1.2.129 source-name="mx.spam.example" source-address="203.0.113.50" profile-name="as-corp" action="tag-subject" reason="SBL Server blacklisted" username="N/A" roles="N/A"]"#,
    },
    Event {
        tag: "CONTENT_FILTERING_BLOCKED",
        case: Case::WebFilter,
        sample: r#"RT_UTM - CONTENT_FILTERING_BLOCKED_MT [junos@2636.1.1.1.2.129 source-address="10.0.1.9" source-port="55000" destination-address="198.51.100.11" destination-port="80" application="http" filename="setup.exe" reason="blocked due to file extension block list" username="N/A" roles="N/A"]"#,
    },
    Event {
        tag: "AAMW_",
        case: Case::Virus,
        sample: r#"RT_AAMW - AAMW_ACTION_LOG [junos@2636.1.1.1.2.129 hostname="files.example.com" file-category="executable" verdict-number="9" malware-info="Trojan.Agent" action="BLOCK" list-hit="N/A" file-hash-lookup="FALSE" source-address="10.0.1.10" source-port="56000" destination-address="198.51.100.12" destination-port="80" protocol-id="6" application="HTTP" nested-application="N/A" policy-name="atp-pol" username="erin" roles="N/A" session-id-32="1003" source-zone-name="trust" destination-zone-name="untrust" sample-sha256="ab12" file-name="invoice.exe" url="files.example.com/invoice.exe"]"#,
    },
    Event {
        tag: "SECINTEL_",
        case: Case::SecIntel,
        sample: r#"<14>1 2023-04-01T10:30:00.000Z srx-1 RT_SECINTEL - SECINTEL_ACTION_LOG [junos@2636.1.1.1.2.129 category="secintel" sub-category="CC" action="BLOCK" action-detail="DROP" http-host="c2.example.net" threat-severity="8" source-address="10.0.1.11" source-port="57000" destination-address="198.51.100.13" destination-port="80" protocol-id="6" application="HTTP" nested-application="N/A" feed-name="cc_url_data" policy-name="sec-pol" profile-name="cc-profile" username="N/A" roles="N/A" session-id-32="1004" source-zone-name="trust" destination-zone-name="untrust"]"#,
    },
    Event {
        tag: "UI_LOGIN_EVENT",
        case: Case::Login,
        sample: "Apr  1 10:40:00 srx-1 mgd[4242]: UI_LOGIN_EVENT: User 'frank' login, class 'j-super-user' [4242], ssh-connection '192.0.2.99 50022 192.0.2.1 22', client-mode 'cli'",
    },
    Event {
        tag: "UI_AUTH_EVENT",
        case: Case::Login,
        sample: "Apr  1 10:39:59 srx-1 mgd[4242]: UI_AUTH_EVENT: Authenticated user 'frank' assigned to class 'j-super-user'",
    },
    Event {
        tag: "UI_CMDLINE_READ_LINE",
        case: Case::Command,
        sample: "Apr  1 10:41:00 srx-1 mgd[4242]: UI_CMDLINE_READ_LINE: User 'frank', command 'show security flow session '",
    },
    Event {
        tag: "UI_LOGOUT_EVENT",
        case: Case::Logout,
        sample: "Apr  1 10:45:00 srx-1 mgd[4242]: UI_LOGOUT_EVENT: User 'frank' logout",
    },
    Event {
        tag: "SSHD_LOGIN_FAILED",
        case: Case::LoginFailed,
        sample: "Apr  1 10:50:00 srx-1 sshd[5151]: SSHD_LOGIN_FAILED: Login failed for user 'root' from host '203.0.113.66'",
    },
    Event {
        tag: "LOGIN_FAILED:",
        case: Case::LoginFailed,
        sample: "Apr  1 10:51:00 srx-1 login[5152]: LOGIN_FAILED: Login failed for user 'admin' from host 'ttyu0'",
    },
    Event {
        tag: "UI_COMMIT",
        case: Case::Commit,
        sample: "Apr  1 10:55:00 srx-1 mgd[4242]: UI_COMMIT: User 'frank' requested 'commit' operation (comment: none)",
    },
];

/// Any Junos security or management tag, in the text or (structured data) the raw record.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    let input = p.input;
    probe!(p, "RT_FLOW")
        || probe!(p, "RT_IDP")
        || probe!(p, "IDP_")
        || probe!(p, "RT_SCREEN")
        || probe!(p, "RT_UTM")
        || probe!(p, "WEBFILTER_URL_")
        || probe!(p, "AAMW_")
        || probe!(p, "SECINTEL_")
        || probe!(p, "APPTRACK_SESSION")
        || probe!(p, "UI_LOGIN_EVENT")
        || probe!(p, "UI_LOGOUT_EVENT")
        || probe!(p, "UI_COMMIT")
        || probe!(p, "UI_AUTH_EVENT")
        || probe!(p, "UI_CMDLINE_READ_LINE")
        || probe!(p, "LOGIN_FAILED:")
        || probe!(p, "junos@")
        || input.app_name.is_some_and(|a| {
            [
                "RT_FLOW",
                "RT_IDP",
                "RT_SCREEN",
                "RT_UTM",
                "RT_AAMW",
                "RT_SECINTEL",
                "RT_IDS",
            ]
            .iter()
            .any(|t| a.starts_with(t))
        })
        || input.raw.len() != input.text.len() && has!(input.raw, "[junos@")
}

/// IDP `threat-severity` words (and SecIntel levels 0..10) on Pharos' scale.
fn severity(s: Option<&str>) -> Severity {
    let s = s.unwrap_or("");
    if let Ok(n) = s.parse::<u8>() {
        return match n {
            9.. => Severity::Critical,
            7..=8 => Severity::High,
            4..=6 => Severity::Middle,
            1..=3 => Severity::Low,
            0 => Severity::Info,
        };
    }
    match s {
        _ if s.eq_ignore_ascii_case("critical") => Severity::Critical,
        _ if s.eq_ignore_ascii_case("high") || s.eq_ignore_ascii_case("major") => Severity::High,
        _ if s.eq_ignore_ascii_case("medium") || s.eq_ignore_ascii_case("minor") => {
            Severity::Middle
        }
        _ if s.eq_ignore_ascii_case("low") => Severity::Low,
        _ => Severity::Info,
    }
}

/// The event of a record and the text that holds it.
fn find_event<'a>(input: &LogInput<'a>) -> Option<(&'static Event, &'a str)> {
    // structured data the syslog parser took out of the text is still in the raw record
    let order = if !has!(input.text, "[junos@") && has!(input.raw, "[junos@") {
        [input.raw, input.text]
    } else {
        [input.text, input.raw]
    };
    order.into_iter().find_map(|body| {
        EVENTS
            .iter()
            .find(|e| has_str(body, e.tag))
            .map(|e| (e, body))
    })
}

/// The record's flow: structured keys, else the plain `a/p->b/p`, `a(p)->b(p)` or `source:
/// a:p, destination: b:p` forms.
fn flow(kv: &Kv<'_>, body: &str) -> (Flow, Flow) {
    let (plain, nat) = arrows(body);
    let sd = Flow {
        src_ip: kv.get("source-address").and_then(ip),
        src_port: kv.get("source-port").and_then(port),
        dst_ip: kv.get("destination-address").and_then(ip),
        dst_port: kv.get("destination-port").and_then(port),
    };
    let mut f = Flow {
        src_ip: sd.src_ip.or(plain.src_ip),
        src_port: sd.src_port.or(plain.src_port),
        dst_ip: sd.dst_ip.or(plain.dst_ip),
        dst_port: sd.dst_port.or(plain.dst_port),
    };
    let ep = |key: &str| {
        body.split(key)
            .nth(1)
            .and_then(|r| r.split([',', ' ']).find(|w| !w.is_empty()))
            .map(build::addr_colon_port)
            .unwrap_or((None, None))
    };
    if f.src_ip.is_none() {
        (f.src_ip, f.src_port) = ep("source: ");
    }
    if f.dst_ip.is_none() {
        (f.dst_ip, f.dst_port) = ep("destination: ");
    }
    let nat = Flow {
        src_ip: kv.get("nat-source-address").and_then(ip).or(nat.src_ip),
        src_port: kv.get("nat-source-port").and_then(port).or(nat.src_port),
        dst_ip: kv
            .any(&["nat-destination-address", "destination-nat-address"])
            .and_then(ip)
            .or(nat.dst_ip),
        dst_port: kv
            .any(&["nat-destination-port", "destination-nat-port"])
            .and_then(port)
            .or(nat.dst_port),
    };
    (f, nat)
}

/// One end of a plain-text arrow: `a/p`, `a(p)` or `a:p`.
fn end(s: &str) -> (Option<IpAddr>, Option<u16>) {
    let s = s.trim_matches(['<', '>', ',']);
    if let Some((a, p)) = s.split_once('(') {
        return (ip(a), port(p.trim_end_matches(')')));
    }
    if s.contains('/') {
        return build::addr_slash_port(s);
    }
    build::addr_colon_port(s)
}

/// The first two `x->y` words of a plain-text record: the flow and its translation.
fn arrows(body: &str) -> (Flow, Flow) {
    let mut it = body
        .split_whitespace()
        .filter_map(|w| w.split_once("->"))
        .map(|(a, b)| {
            let ((src_ip, src_port), (dst_ip, dst_port)) = (end(a), end(b));
            Flow {
                src_ip,
                src_port,
                dst_ip,
                dst_port,
            }
        })
        .filter(|f| f.src_ip.is_some() || f.dst_ip.is_some());
    let first = it.next().unwrap_or_default();
    let second = it.next().unwrap_or_default();
    (first, second)
}

/// The value of `key` in structured data, or of its upper-case plain-text form.
fn val<'a>(kv: &Kv<'a>, keys: &[&str]) -> Option<&'a str> {
    kv.any(keys)
        .map(|v| v.trim_end_matches(','))
        .and_then(|v| present(Some(v)))
}

/// `'x'` after `marker` in plain text (`User 'alice'`, `for user 'root'`).
fn quoted_after<'a>(body: &'a str, marker: &str) -> Option<&'a str> {
    let rest = body.get(body.find(marker)? + marker.len()..)?;
    let rest = rest.strip_prefix('\'')?;
    rest.get(..rest.find('\'')?)
}

/// Normalises one Junos record.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let Some((ev, body)) = find_event(input) else {
        // a recognised Junos record without a mapping (e.g. FLOW_MCAST_RPF_FAIL)
        let junos =
            has!(input.raw, "junos@") || input.app_name.is_some_and(|a| a.starts_with("RT_"));
        if !junos {
            return None;
        }
        let kv = sd_pairs(input.raw);
        let (f, nat) = flow(&kv, input.text);
        let fields = all_fields(&kv, input.app_name.unwrap_or("junos"), f, nat, None);
        return Some(
            Draft::new(
                build::unmapped("junos event without a mapping"),
                build::syslog_severity(input.severity),
            )
            .vendor("Juniper Networks")
            .model(Some("SRX"))
            .summary(input.text)
            .fields(fields),
        );
    };
    let kv = sd_pairs(body);
    let (f, nat) = flow(&kv, body);
    let tag = tag_word(body, ev.tag);
    let url = url(&kv, ev.case);
    let (kind, sev) = case(ev.case, &kv, body, f, url.as_deref());
    let fields = build::fields_beyond_case(&kind, all_fields(&kv, tag, f, nat, url));
    let time = kv
        .get("epoch-time")
        .and_then(crate::time::epoch)
        .or_else(|| {
            body.split_whitespace().take(4).find_map(|w| {
                (w.len() >= 19 && w.as_bytes().get(4) == Some(&b'-'))
                    .then(|| crate::time::iso(w))
                    .flatten()
            })
        });
    let what = val(&kv, &["attack-name", "name", "reason", "policy-name"]).unwrap_or("");
    Some(
        Draft::new(kind, sev)
            .time(time)
            .vendor("Juniper Networks")
            .model(Some("SRX"))
            .summary(format!("{tag} {what}"))
            .fields(fields),
    )
}

/// The full tag word that starts with `prefix` (`RT_SCREEN_TCP`, `AV_VIRUS_DETECTED_MT`).
fn tag_word<'a>(body: &'a str, prefix: &'static str) -> &'a str {
    body.find(prefix)
        .and_then(|i| body.get(i..))
        .and_then(|r| r.split([' ', ':', '[']).next())
        .unwrap_or(prefix)
}

/// The pairs of the record: the structured data from `[junos@` on, or the whole plain text
/// (`ACTION="URL Blocked" ... URL=x`, `name=..., action=...`).
fn sd_pairs(body: &str) -> Kv<'_> {
    match body.find("[junos@") {
        Some(i) => Kv::parse(body.get(i + 1..).unwrap_or("").trim_end_matches(']')),
        None => Kv::parse(body),
    }
}

/// The URL of a web-filtering, anti-virus or ATP record (`url` + `obj` when split).
fn url(kv: &Kv<'_>, case: Case) -> Option<String> {
    let u = val(kv, &["url", "URL"])?;
    let obj = val(kv, &["obj", "OBJ"]).filter(|o| o.starts_with('/'));
    Some(match obj {
        Some(o) if case == Case::WebFilter && !u.contains('/') => clip(&format!("{u}{o}")),
        _ => clip(u),
    })
}

/// Every field of the record (the case then drops what its leaves hold).
fn all_fields(kv: &Kv<'_>, tag: &str, f: Flow, nat: Flow, url: Option<String>) -> LogFields {
    let num = |k: &str| kv.get(k).and_then(|v| v.parse::<u64>().ok());
    let get = |k: &[&str]| val(kv, k).map(clip);
    let host_of = |u: &str| {
        let h = u.split_once("://").map_or(u, |(_, r)| r);
        h.split(['/', ':']).next().map(clip)
    };
    LogFields {
        src_ip: f.src_ip,
        src_port: f.src_port,
        dst_ip: f.dst_ip,
        dst_port: f.dst_port,
        nat_src_ip: nat.src_ip.filter(|a| !a.is_unspecified()),
        nat_src_port: nat.src_port.filter(|p| *p != 0),
        nat_dst_ip: nat.dst_ip.filter(|a| !a.is_unspecified()),
        nat_dst_port: nat.dst_port.filter(|p| *p != 0),
        protocol: val(kv, &["protocol-id", "protocol-name", "protocol"]).map(|p| {
            match build::protocol(p) {
                Some(pharos_model::ident::Protocol::Tcp) => "tcp".to_string(),
                Some(pharos_model::ident::Protocol::Udp) => "udp".to_string(),
                Some(pharos_model::ident::Protocol::Icmpv4) => "icmp".to_string(),
                _ => clip(p).to_ascii_lowercase(),
            }
        }),
        action: get(&["action", "ACTION"]),
        rule_name: get(&["policy-name", "rule-name", "PROFILE", "profile-name"]),
        user: get(&["username", "USERNAME", "source-username", "user"]),
        domain: get(&["http-host", "hostname"]).or_else(|| url.as_deref().and_then(host_of)),
        url,
        sent_bytes: num("bytes-from-client"),
        received_bytes: num("bytes-from-server"),
        session_id: get(&["session-id-32", "session-id"]),
        message_id: Some(clip(tag)),
        in_interface: get(&[
            "packet-incoming-interface",
            "source-zone-name",
            "interface-name",
        ]),
        out_interface: get(&["destination-zone-name", "destination-interface-name"]),
        application: get(&["application", "application-name", "ddos-application-name"]),
        file_name: get(&["filename", "file-name"]),
        ..LogFields::default()
    }
}

/// The case's kind and severity.
fn case(c: Case, kv: &Kv<'_>, body: &str, f: Flow, url: Option<&str>) -> (Kind, Severity) {
    let proto = || val(kv, &["protocol-id", "protocol-name"]);
    match c {
        Case::Session(action) => {
            let num = |k: &str| kv.get(k).and_then(|v| v.parse::<u64>().ok());
            let policy = val(kv, &["policy-name"]).or_else(|| plain_policy(body));
            let k = Kind::FirewallTrafficLog(FirewallTrafficLog {
                src_ip: f.src_ip,
                dst_ip: f.dst_ip,
                src_port: f.src_port,
                dst_port: f.dst_port,
                protocol: proto().and_then(build::protocol),
                action: Some(action),
                sent_bytes: num("bytes-from-client"),
                received_bytes: num("bytes-from-server"),
                sent_packets: num("packets-from-client"),
                received_packets: num("packets-from-server"),
                policy_name: policy.map(clip),
                rule_name: policy.map(clip),
                in_interface: val(kv, &["packet-incoming-interface", "source-zone-name"]).map(clip),
                out_interface: val(kv, &["destination-zone-name"]).map(clip),
                application: val(kv, &["application", "service-name"]).map(clip),
                user: val(kv, &["username"]).map(clip),
                session_id: num("session-id-32").or_else(|| num("session-id")),
                duration: kv.get("elapsed-time").and_then(|v| v.parse().ok()),
            });
            let sev = if action == IngressAction::Pass {
                Severity::Info
            } else {
                Severity::Low
            };
            (k, sev)
        }
        Case::Idp => {
            let attack = val(kv, &["attack-name", "name"]).unwrap_or("");
            let k = build::intrusion_or_web_attack(
                f,
                build::rule_or(Some(attack).filter(|a| !a.is_empty()), RULE),
                build::web_attack_type(attack).or_else(|| {
                    attack
                        .starts_with("HTTP:")
                        .then_some(pharos_model::ident::WebAttackType::OtherWebAttack)
                }),
                Request::default(),
                Ids {
                    protocol: proto().and_then(build::transport),
                    app: build::app_or_port(val(kv, &["application-name"]), f.dst_port),
                    attack_type: build::intrusion_attack_type(attack),
                },
            );
            (k, severity(val(kv, &["threat-severity"])))
        }
        Case::Screen => screen(kv, body, f),
        Case::WebFilter | Case::Antispam => {
            let action = val(kv, &["action", "ACTION"]).unwrap_or("");
            let blocked = build::contains_ci(action, "block")
                || build::contains_ci(body, "_BLOCKED")
                || build::contains_ci(action, "drop");
            let k = Kind::DpiLog(DpiLog {
                attack_type: Some(DpiType::DataFiltering),
                src_ip: f.src_ip,
                src_port: f.src_port,
                dst_ip: f.dst_ip,
                dst_port: f.dst_port,
                rule_name: build::rule_or(
                    val(
                        kv,
                        &["category", "CATEGORY", "reason", "profile-name", "PROFILE"],
                    ),
                    RULE,
                ),
                action: vec![if blocked {
                    IngressAction::Drop
                } else {
                    IngressAction::Pass
                }],
            });
            (
                k,
                if blocked {
                    Severity::Low
                } else {
                    Severity::Info
                },
            )
        }
        Case::Virus => {
            let name = val(kv, &["name", "malware-info", "virus-name"]);
            let k = Kind::Virus(VirusEvent {
                src_ip: f.src_ip,
                src_port: f.src_port,
                dst_ip: f.dst_ip,
                dst_port: f.dst_port,
                rule_name: build::rule_or(name.or(val(kv, &["policy-name", "profile-name"])), RULE),
                virus_name: name.map(clip),
                virus_type: name.and_then(build::virus_type),
                host: val(kv, &["hostname"])
                    .map(clip)
                    .or_else(|| url.and_then(|u| u.split('/').next()).map(clip)),
                file_type: val(kv, &["file-category"]).map(clip),
                file_name: val(kv, &["filename", "file-name"]).map(clip),
                os: None,
            });
            (k, Severity::High)
        }
        Case::SecIntel => {
            let rule = val(kv, &["feed-name", "policy-name", "sub-category"]);
            let k = Kind::Intrusion(build::intrusion(
                f,
                build::rule_or(rule, RULE),
                Ids {
                    protocol: proto().and_then(build::transport),
                    app: build::app_or_port(val(kv, &["application"]), f.dst_port),
                    attack_type: None,
                },
            ));
            (
                k,
                severity(val(kv, &["threat-severity"])).max(Severity::Low),
            )
        }
        Case::Login | Case::Logout | Case::LoginFailed | Case::Commit | Case::Command => {
            management(c, kv, body)
        }
    }
}

/// The policy of a plain-text session record: the word before the two zones after the protocol
/// number (`... 6 allow-web trust untrust 1001 ...`).
fn plain_policy(body: &str) -> Option<&str> {
    let after = body.get(body.find("session ")?..)?;
    let mut words = after.split_whitespace().take(64);
    words.find(|w| {
        w.split('(')
            .next()
            .and_then(|n| n.parse::<u8>().ok())
            .is_some_and(|n| matches!(n, 1 | 6 | 17 | 58))
    })?;
    words.next().filter(|w| !w.contains('/'))
}

/// Logins, logouts, failed logins and commits of the management plane.
fn management(c: Case, kv: &Kv<'_>, body: &str) -> (Kind, Severity) {
    let user = val(kv, &["username"])
        .or_else(|| quoted_after(body, "User "))
        .or_else(|| quoted_after(body, "for user "))
        .or_else(|| quoted_after(body, "user "));
    let from = val(kv, &["source-address", "remote-address"])
        .and_then(ip)
        .or_else(|| {
            quoted_after(body, "ssh-connection ")
                .or_else(|| quoted_after(body, "from host "))
                .and_then(|s| s.split(' ').next())
                .and_then(ip)
        });
    match c {
        Case::LoginFailed => (
            build::user_activity(
                user,
                None,
                from,
                None,
                UserActivityType::FailedLogin,
                Some("login failed"),
            ),
            Severity::Low,
        ),
        Case::Commit => (
            build::config_change(user, from, None, quoted_after(body, "requested ")),
            Severity::Low,
        ),
        Case::Command => (
            build::access_log(
                user,
                from,
                None,
                OperationType::Other,
                quoted_after(body, "command "),
                None,
            ),
            Severity::Info,
        ),
        _ => {
            let op = if c == Case::Logout {
                OperationType::Logout
            } else {
                OperationType::Login
            };
            (
                build::access_log(
                    user,
                    from,
                    None,
                    op,
                    quoted_after(body, "client-mode "),
                    None,
                ),
                Severity::Info,
            )
        }
    }
}

/// The DDoS type a flood screen names; first match wins.
const FLOOD_TYPES: &[(&str, DdosType)] = &[
    ("syn", DdosType::SynFlood),
    ("udp", DdosType::UdpFlood),
    ("icmp", DdosType::Icmpv4Flood),
    ("http", DdosType::HttpFlood),
];
/// The intrusion type any other screen names; first match wins.
const SCREEN_TYPES: &[(&str, IntrusionAttackType)] = &[
    ("scan", IntrusionAttackType::PortScan),
    ("sweep", IntrusionAttackType::HostSweep),
];

/// A screen: floods and session limits -> DDoS (high), the rest -> intrusion (middle).
fn screen(kv: &Kv<'_>, body: &str, flow: Flow) -> (Kind, Severity) {
    // plain text: "RT_SCREEN_TCP: SYN flood! source: 1.2.3.4:1234, destination: ..."
    let attack = val(kv, &["attack-name", "message"]).or_else(|| {
        let after = body.split("RT_SCREEN_").nth(1)?;
        let after = after.split_once(": ")?.1;
        after.split(['!', ',']).next()
    });
    let a = attack.unwrap_or("").to_ascii_lowercase();
    let rule_name = build::rule_or(attack, RULE);
    if a.contains("flood") || a.contains("session limit") || a.contains("exceeded") {
        let ddos = build::ddos(flow, rule_name, build::first_keyword(&a, FLOOD_TYPES));
        return (Kind::Ddos(ddos), Severity::High);
    }
    let ids = Ids {
        protocol: val(kv, &["protocol-id", "protocol-name"]).and_then(build::transport),
        app: None,
        attack_type: build::first_keyword(&a, SCREEN_TYPES),
    };
    (
        Kind::Intrusion(build::intrusion(flow, rule_name, ids)),
        Severity::Middle,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};

    fn sample(tag: &str) -> &'static str {
        EVENTS
            .iter()
            .find(|e| e.tag == tag)
            .map(|e| e.sample)
            .unwrap()
    }

    fn fields(n: &crate::Normalized) -> LogFields {
        n.message
            .common
            .fields
            .as_deref()
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn every_event_sample_is_parsed_with_its_case() {
        for ev in EVENTS {
            let n = auto(ev.sample, "juniper-srx");
            let k = &n.message.kind;
            let ok = match ev.case {
                Case::Session(_) => matches!(k, Kind::FirewallTrafficLog(_)),
                Case::Idp => matches!(k, Kind::WebAttack(_) | Kind::Intrusion(_)),
                Case::Screen => matches!(k, Kind::Ddos(_) | Kind::Intrusion(_)),
                Case::WebFilter | Case::Antispam => matches!(k, Kind::DpiLog(_)),
                Case::Virus => matches!(k, Kind::Virus(_)),
                Case::SecIntel => matches!(k, Kind::Intrusion(_)),
                Case::Login | Case::Logout | Case::Command => {
                    matches!(k, Kind::SystemAccessLog(_))
                }
                Case::LoginFailed => matches!(k, Kind::UserActivityLog(_)),
                Case::Commit => matches!(k, Kind::SystemEvent(_)),
            };
            assert!(ok, "{}: {k:?}", ev.tag);
            assert!(fields(&n).message_id.is_some(), "{}", ev.tag);
        }
    }

    #[test]
    fn session_create_keeps_nat_user_and_zones() {
        let n = auto(EVENTS[0].sample, "juniper-srx");
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.src_ip, ip("10.0.1.5"));
        assert_eq!(f.dst_port, Some(443));
        assert_eq!(f.user.as_deref(), Some("alice"));
        assert_eq!(f.rule_name.as_deref(), Some("allow-web"));
        let x = fields(&n);
        assert_eq!(x.nat_src_ip, ip("203.0.113.5"));
        assert_eq!(x.nat_src_port, Some(40001));
        assert_eq!(x.message_id.as_deref(), Some("RT_FLOW_SESSION_CREATE"));
    }

    #[test]
    fn plain_session_close_and_deny() {
        let n = auto(EVENTS[1].sample, "juniper-srx");
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.src_port, Some(51000));
        assert_eq!(f.dst_ip, ip("192.0.2.80"));
        assert_eq!(f.rule_name.as_deref(), Some("allow-web"));
        assert_eq!(fields(&n).nat_src_ip, ip("203.0.113.5"));
        let n = auto(EVENTS[2].sample, "juniper-srx");
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.action, Some(IngressAction::Drop));
        assert_eq!(f.rule_name.as_deref(), Some("deny-all"));
    }

    #[test]
    fn plain_idp_and_screen() {
        let n = auto(EVENTS[4].sample, "juniper-srx");
        let Kind::WebAttack(w) = &n.message.kind else {
            panic!("{:?}", n.message.kind)
        };
        assert_eq!(w.rule_name, "HTTP:SQL:INJ:GENERIC-SQL-INJECTION");
        assert_eq!(w.src_ip, ip("198.51.100.27"));
        assert_eq!(w.dst_port, Some(80));
        assert_eq!(n.message.common.severity, Severity::High);
        let n = auto(EVENTS[6].sample, "juniper-srx");
        let Kind::Ddos(d) = &n.message.kind else {
            panic!()
        };
        assert_eq!(d.attack_type, Some(DdosType::SynFlood));
        assert_eq!(d.attack_src_ip, vec![ip("198.51.100.40").unwrap()]);
    }

    #[test]
    fn utm_web_filter_keeps_url_and_user() {
        let n = auto(EVENTS[7].sample, "juniper-srx");
        let Kind::DpiLog(d) = &n.message.kind else {
            panic!()
        };
        assert_eq!(d.src_ip, ip("10.0.1.7"));
        assert_eq!(d.dst_port, Some(80));
        assert_eq!(d.action, vec![IngressAction::Drop]);
        let x = fields(&n);
        assert_eq!(x.url.as_deref(), Some("bet.example.net/casino/index.html"));
        assert_eq!(x.domain.as_deref(), Some("bet.example.net"));
        assert_eq!(x.user.as_deref(), Some("carol"));
    }

    #[test]
    fn secintel_from_structured_data_and_logins() {
        let n = auto(EVENTS[12].sample, "juniper-srx");
        let Kind::Intrusion(i) = &n.message.kind else {
            panic!()
        };
        assert_eq!(i.rule_name, "cc_url_data");
        assert_eq!(fields(&n).domain.as_deref(), Some("c2.example.net"));
        let n = auto(EVENTS[13].sample, "juniper-srx");
        let Kind::SystemAccessLog(a) = &n.message.kind else {
            panic!()
        };
        assert_eq!(a.user, "frank");
        assert_eq!(a.ip_address, ip("192.0.2.99").unwrap());
        let n = auto(sample("SSHD_LOGIN_FAILED"), "juniper-srx");
        let Kind::UserActivityLog(u) = &n.message.kind else {
            panic!()
        };
        assert_eq!(u.user, "root");
        let n = auto(sample("UI_CMDLINE_READ_LINE"), "juniper-srx");
        let Kind::SystemAccessLog(a) = &n.message.kind else {
            panic!()
        };
        assert_eq!(a.user, "frank");
        assert_eq!(a.input.as_deref(), Some("show security flow session"));
        assert_eq!(u.ip_address, ip("203.0.113.66").unwrap());
    }
}
