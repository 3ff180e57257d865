//! ModSecurity WAF: Apache and nginx error-log lines (`ModSecurity: Access denied with code 403
//! (phase 2). ... [id "942100"] [msg "..."] [uri "..."] [hostname "..."]`) and JSON audit-log
//! records (`{"transaction":{...,"messages":[...]}}`, one per line).
//!
//! Mapping: a rule match -> web attack (attack type from the message and tags, request method
//! from nginx's `request:` or the audit record, target from `uri`, host from `hostname`, response
//! code from `code NNN`, filtering type deny-list: CRS is a deny-list rule set). Lines without a
//! rule id (audit log errors, engine notices) are recognised but stored as generic logs. Rule
//! names: the rule id; placeholder `modsecurity-unknown-rule`.

use pharos_model::ident::FilterType;
use pharos_model::{Kind, Severity, WebAttackEvent};

use crate::LogInput;
use crate::build::{self, Draft, Flow, Request};
use crate::vendors::{Lit, Probe, find, probe, second_piece};

const RULE: &str = "modsecurity-unknown-rule";

/// `ModSecurity:` in an error-log line, or a JSON audit record.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    probe!(p, "ModSecurity") || probe!(p, "{\"transaction\":")
}

/// ModSecurity `severity` (word or 0-7 number) on Pharos' scale.
fn severity(s: Option<&str>) -> Severity {
    match s.unwrap_or("").to_ascii_uppercase().as_str() {
        "EMERGENCY" | "ALERT" | "CRITICAL" | "0" | "1" | "2" => Severity::Critical,
        "ERROR" | "3" => Severity::High,
        "WARNING" | "4" => Severity::Middle,
        "NOTICE" | "5" => Severity::Low,
        _ => Severity::Info,
    }
}

/// Where the `[` of a line are: found once, then looked up by every `[name "` search.
struct Opens<'a> {
    t: &'a str,
    /// The first `[` positions, in order.
    pos: [usize; 32],
    n: usize,
}

impl<'a> Opens<'a> {
    fn of(t: &'a str) -> Self {
        let mut pos = [0; 32];
        let mut n = 0;
        for (slot, at) in pos.iter_mut().zip(memchr::memchr_iter(b'[', t.as_bytes())) {
            *slot = at;
            n += 1;
        }
        Self { t, pos, n }
    }

    /// Every `[` of the line, in order (the stored ones, then a search past them).
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        let stored = self.pos.get(..self.n).unwrap_or(&[]);
        let more = match self.n {
            n if n == self.pos.len() => self.pos[n - 1] + 1,
            _ => self.t.len(),
        };
        let rest = self.t.as_bytes().get(more..).unwrap_or(&[]);
        stored
            .iter()
            .copied()
            .chain(memchr::memchr_iter(b'[', rest).map(move |i| more + i))
    }

    /// Start of the leftmost `[name "` (like `t.find(&format!("[{name} \""))`).
    fn find(&self, name: &str) -> Option<usize> {
        let b = self.t.as_bytes();
        self.iter().find(|&i| {
            b.get(i + 1..).is_some_and(|r| {
                r.starts_with(name.as_bytes()) && r.get(name.len()..name.len() + 2) == Some(b" \"")
            })
        })
    }
}

/// The value of the first `[name "value"]` element.
fn bracket<'a>(opens: &Opens<'a>, name: &str) -> Option<&'a str> {
    let t = opens.t;
    let at = opens.find(name)? + name.len() + 3;
    let rest = t.get(at..)?;
    let end = find!(rest, "\"]")?;
    rest.get(..end)
}

/// Normalises one ModSecurity record.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let t = input.text;
    if let Some(at) = find!(t, "{\"transaction\":") {
        return audit_json(t.get(at..)?);
    }
    let at = find!(t, "ModSecurity:")?;
    let msg_part = t.get(at + "ModSecurity:".len()..)?.trim_start();
    // client: Apache `[client 1.2.3.4:5678]`, nginx `, client: 1.2.3.4,`
    let client = bracket_word(t).or_else(|| {
        second_piece(t, const { Lit::new(", client: ") }).and_then(|r| r.split(',').next())
    });
    let (src_ip, src_port) = client.map(build::addr_colon_port).unwrap_or((None, None));
    let opens = Opens::of(t);
    let id = bracket(&opens, "id");
    let rule_msg = bracket(&opens, "msg");
    // `[tag "` cannot overlap itself: its matches are its non-overlapping matches
    let tags: Vec<&str> = opens
        .iter()
        .filter(|&i| t.as_bytes().get(i..i + 6) == Some(b"[tag \""))
        .take(16)
        .filter_map(|i| {
            let rest = t.get(i + 6..)?;
            rest.get(..rest.find('"')?)
        })
        .collect();
    let sev = severity(bracket(&opens, "severity"));
    let Some(id) = id else {
        return Some(
            Draft::new(
                build::unmapped("modsecurity line without a rule id"),
                Severity::Low,
            )
            .vendor("ModSecurity")
            .summary(msg_part),
        );
    };
    let attack_type = rule_msg
        .and_then(build::web_attack_type)
        .or_else(|| tags.iter().find_map(|tag| build::web_attack_type(tag)))
        .or(Some(pharos_model::ident::WebAttackType::OtherWebAttack));
    let code = second_piece(msg_part, const { Lit::new("with code ") })
        .and_then(|r| r.split([' ', '(', '.']).next())
        .filter(|c| !c.is_empty());
    let method =
        second_piece(t, const { Lit::new("request: \"") }).and_then(|r| r.split(' ').next());
    let flow = Flow {
        src_ip,
        src_port,
        ..Flow::default()
    };
    let req = Request {
        method,
        target: bracket(&opens, "uri"),
        host: bracket(&opens, "hostname"),
        response_code: code.map(build::clip),
    };
    let kind = deny_list(build::web_attack(
        flow,
        build::rule_or(Some(id), RULE),
        attack_type,
        req,
    ));
    let summary = format!("ModSecurity [{id}] {}", rule_msg.unwrap_or(msg_part));
    Some(Draft::new(kind, sev).vendor("ModSecurity").summary(summary))
}

/// A rule match of ModSecurity: a web attack found by a deny list (the CRS rules).
fn deny_list(w: WebAttackEvent) -> Kind {
    Kind::WebAttack(WebAttackEvent {
        filtering_type: vec![FilterType::DenyList],
        ..w
    })
}

/// The word after `[client ` up to `]`.
fn bracket_word(t: &str) -> Option<&str> {
    let at = find!(t, "[client ")? + "[client ".len();
    let rest = t.get(at..)?;
    rest.get(..rest.find(']')?)
}

fn audit_json(json: &str) -> Option<Draft> {
    let v: serde_json::Value = serde_json::from_str(json.trim_end()).ok()?;
    let tr = v.get("transaction")?;
    let s = |p: &str| tr.pointer(p).and_then(|x| x.as_str());
    let src_ip = s("/client_ip").and_then(build::ip);
    let src_port = tr
        .pointer("/client_port")
        .and_then(|x| x.as_u64())
        .and_then(|p| u16::try_from(p).ok());
    let dst_ip = s("/host_ip").and_then(build::ip);
    let dst_port = tr
        .pointer("/host_port")
        .and_then(|x| x.as_u64())
        .and_then(|p| u16::try_from(p).ok());
    let first = tr.pointer("/messages/0");
    let id = first
        .and_then(|m| m.pointer("/details/ruleId"))
        .and_then(|x| x.as_str());
    let message = first
        .and_then(|m| m.get("message"))
        .and_then(|x| x.as_str())
        .unwrap_or("");
    let sev = severity(
        first
            .and_then(|m| m.pointer("/details/severity"))
            .and_then(|x| x.as_str()),
    );
    let headers = tr.pointer("/request/headers");
    let host = headers
        .and_then(|h| h.get("Host").or_else(|| h.get("host")))
        .and_then(|x| x.as_str());
    let code = tr.pointer("/response/http_code").map(|c| c.to_string());
    let kind = match id {
        Some(id) => deny_list(build::web_attack(
            Flow {
                src_ip,
                src_port,
                dst_ip,
                dst_port,
            },
            build::rule_or(Some(id), RULE),
            build::web_attack_type(message)
                .or(Some(pharos_model::ident::WebAttackType::OtherWebAttack)),
            Request {
                method: s("/request/method"),
                target: s("/request/uri"),
                host,
                response_code: code,
            },
        )),
        None => build::unmapped("modsecurity audit record without a rule match"),
    };
    let time = s("/time_stamp").and_then(crate::time::iso);
    Some(
        Draft::new(kind, sev)
            .time(time)
            .vendor("ModSecurity")
            .summary(format!("ModSecurity {message}")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};

    #[test]
    fn brackets_past_the_stored_positions_are_found() {
        let many = "[x] ".repeat(40);
        let t = format!(r#"{many}[tag "a"] [id "5"] [tag "b"]"#);
        let opens = Opens::of(&t);
        assert_eq!(bracket(&opens, "id"), Some("5"));
        assert_eq!(opens.iter().count(), 43);
        assert_eq!(opens.find("id"), t.find(r#"[id ""#));
        assert_eq!(bracket(&Opens::of("[id \"1"), "id"), None);
        assert_eq!(Opens::of("").find("id"), None);
    }

    #[test]
    fn apache_access_denied() {
        let n = auto(
            r#"[Thu Mar 02 10:00:00.000001 2023] [security2:error] [pid 4242] [client 192.0.2.91:51234] ModSecurity: Access denied with code 403 (phase 2). Pattern match "(?i)union.*select" at ARGS:id. [file "/etc/modsecurity/REQUEST-942-APPLICATION-ATTACK-SQLI.conf"] [line "45"] [id "942100"] [msg "SQL Injection Attack Detected via libinjection"] [severity "CRITICAL"] [tag "attack-sqli"] [hostname "shop.example"] [uri "/item.php"] [unique_id "ZAAAAAAAAAAAAAAAAAAAAAAA"]"#,
            "modsecurity",
        );
        let Kind::WebAttack(w) = &n.message.kind else {
            panic!()
        };
        assert_eq!(w.src_ip, ip("192.0.2.91"));
        assert_eq!(w.src_port, Some(51234));
        assert_eq!(w.rule_name, "942100");
        assert_eq!(w.response_code.as_deref(), Some("403"));
        assert_eq!(w.req_target.as_deref(), Some("/item.php"));
        assert_eq!(w.req_host.as_deref(), Some("shop.example"));
        assert_eq!(
            w.attack_type,
            Some(pharos_model::ident::WebAttackType::SqlInjection)
        );
        assert_eq!(n.message.common.severity, Severity::Critical);
    }

    #[test]
    fn nginx_warning_with_request() {
        let n = auto(
            r#"2021/11/18 08:34:27 [info] 1234#1234: *77 ModSecurity: Warning. Matched "Operator `Rx' with parameter `x' against variable `REQUEST_URI_RAW' [file "/usr/share/modsecurity-crs/rules/REQUEST-930-APPLICATION-ATTACK-LFI.conf"] [line "29"] [id "930100"] [rev ""] [msg "Path Traversal Attack (/../)"] [severity "2"] [hostname "10.0.0.1"] [uri "/"] [unique_id "163722446795.1"], client: 192.0.2.44, server: _, request: "GET /?foo=../../etc/passwd HTTP/1.1", host: "10.0.0.1""#,
            "modsecurity",
        );
        let Kind::WebAttack(w) = &n.message.kind else {
            panic!()
        };
        assert_eq!(w.src_ip, ip("192.0.2.44"));
        assert_eq!(w.req_method, Some(pharos_model::ident::ReqMethod::Get));
        assert_eq!(
            w.attack_type,
            Some(pharos_model::ident::WebAttackType::PathTraversal)
        );
    }

    #[test]
    fn json_audit_record() {
        let n = auto(
            r#"{"transaction":{"client_ip":"198.51.100.23","time_stamp":"2023-03-01T10:00:00Z","client_port":40000,"host_ip":"10.0.0.2","host_port":443,"request":{"method":"POST","uri":"/login","headers":{"Host":"app.example"}},"response":{"http_code":403},"messages":[{"message":"XSS Attack Detected via libinjection","details":{"ruleId":"941100","severity":"2"}}]}}"#,
            "modsecurity",
        );
        let Kind::WebAttack(w) = &n.message.kind else {
            panic!()
        };
        assert_eq!(w.rule_name, "941100");
        assert_eq!(w.attack_type, Some(pharos_model::ident::WebAttackType::Xss));
        assert_eq!(w.response_code.as_deref(), Some("403"));
    }
}
