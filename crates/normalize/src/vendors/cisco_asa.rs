//! Cisco ASA, FTD and PIX `%ASA-<level>-<id>: text` messages.
//!
//! Mapping (table [`IDS`] by message id): connection built/teardown and ACL permits/denies ->
//! firewall traffic log; threat detection 733100/733101 -> DDoS (the scanning class -> intrusion);
//! IPS 4000xx and 420002 -> intrusion; dynamic filter 338xxx -> botnet; AAA/management logins ->
//! user activity (failures) or system access log (successes); executed commands -> system access
//! log (configuration); memory/CPU reports -> resource utilisation. Other ids are recognised
//! (`format` cisco-asa, severity from the tag) but stored as generic logs. Rule names: the ACL
//! (access-group) name or the IPS signature id; placeholder `cisco-asa-unknown-rule`.

use std::net::IpAddr;

use pharos_model::ident::{IngressAction, OperationType, UserActivityType};
use pharos_model::{
    BotnetEvent, DdosEvent, FirewallTrafficLog, IntrusionEvent, Kind, ResourceUtilizationLog,
    Severity,
};

use crate::LogInput;
use crate::build::{self, Draft};
use crate::vendors::{Lit, Probe, has, probe, second_piece};

const RULE: &str = "cisco-asa-unknown-rule";

/// `%ASA-`, `%FTD-`, `%PIX-` or `%FWSM-` tags.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    probe!(p, "%ASA-") || probe!(p, "%FTD-") || probe!(p, "%PIX-") || probe!(p, "%FWSM-")
}

/// What a message id means.
#[derive(Clone, Copy)]
enum Class {
    /// Firewall traffic with this action; `swap` when the first endpoint is the responder.
    Fw(IngressAction),
    /// 302013/302015/302020: direction word decides who initiated.
    Built,
    /// 106100: `permitted` / `denied` in the text.
    Acl,
    ThreatRate,
    ThreatHost,
    Ips,
    DynFilter,
    AuthOk,
    AuthFail,
    MgmtLoginOk,
    Command,
    Memory,
    Cpu,
    ConfigChange,
    Lock,
}

/// Message id -> class.
const IDS: &[(u32, Class)] = &[
    (106001, Class::Fw(IngressAction::Drop)),
    (106002, Class::Fw(IngressAction::Drop)),
    (106006, Class::Fw(IngressAction::Drop)),
    (106007, Class::Fw(IngressAction::Drop)),
    (106010, Class::Fw(IngressAction::Drop)),
    (106011, Class::Fw(IngressAction::Drop)),
    (106012, Class::Fw(IngressAction::Drop)),
    (106014, Class::Fw(IngressAction::Drop)),
    (106015, Class::Fw(IngressAction::Drop)),
    (106016, Class::Fw(IngressAction::Drop)),
    (106017, Class::Fw(IngressAction::Drop)),
    (106020, Class::Fw(IngressAction::Drop)),
    (106021, Class::Fw(IngressAction::Drop)),
    (106022, Class::Fw(IngressAction::Drop)),
    (106023, Class::Fw(IngressAction::Drop)),
    (106027, Class::Fw(IngressAction::Drop)),
    (106029, Class::Fw(IngressAction::Drop)),
    (106100, Class::Acl),
    (302013, Class::Built),
    (302014, Class::Fw(IngressAction::Pass)),
    (302015, Class::Built),
    (302016, Class::Fw(IngressAction::Pass)),
    (302020, Class::Built),
    (302021, Class::Fw(IngressAction::Pass)),
    (313001, Class::Fw(IngressAction::Drop)),
    (313004, Class::Fw(IngressAction::Drop)),
    (313005, Class::Fw(IngressAction::Drop)),
    (313009, Class::Fw(IngressAction::Drop)),
    (710003, Class::Fw(IngressAction::Drop)),
    (710005, Class::Fw(IngressAction::Drop)),
    (733100, Class::ThreatRate),
    (733101, Class::ThreatHost),
    (400000, Class::Ips),
    (420002, Class::Ips),
    (338001, Class::DynFilter),
    (338002, Class::DynFilter),
    (338003, Class::DynFilter),
    (338004, Class::DynFilter),
    (338005, Class::DynFilter),
    (338006, Class::DynFilter),
    (338007, Class::DynFilter),
    (338008, Class::DynFilter),
    (113004, Class::AuthOk),
    (113012, Class::AuthOk),
    (113005, Class::AuthFail),
    (113006, Class::Lock),
    (113015, Class::AuthFail),
    (611101, Class::MgmtLoginOk),
    (611102, Class::AuthFail),
    (605004, Class::AuthFail),
    (605005, Class::MgmtLoginOk),
    (111008, Class::Command),
    (111009, Class::Command),
    (111001, Class::ConfigChange),
    (111002, Class::ConfigChange),
    (111003, Class::ConfigChange),
    (111004, Class::ConfigChange),
    (111005, Class::ConfigChange),
    (111007, Class::ConfigChange),
    (502101, Class::ConfigChange),
    (502102, Class::ConfigChange),
    (502103, Class::ConfigChange),
    (710001, Class::Fw(IngressAction::Pass)),
    (710002, Class::Fw(IngressAction::Pass)),
    (111010, Class::Command),
    (321005, Class::Cpu),
    (321006, Class::Memory),
];

fn class_of(id: u32) -> Option<Class> {
    if (400000..=400099).contains(&id) {
        return Some(Class::Ips);
    }
    IDS.iter().find(|(i, _)| *i == id).map(|(_, c)| *c)
}

/// The syslog level digit of the tag on Pharos' scale.
fn severity(level: u8) -> Severity {
    match level {
        0 | 1 => Severity::Critical,
        2 | 3 => Severity::High,
        4 => Severity::Middle,
        5 => Severity::Low,
        _ => Severity::Info,
    }
}

/// Normalises one ASA/FTD/PIX message.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let t = input.text;
    let (product, rest) = memchr::memchr_iter(b'%', t.as_bytes())
        .take(16)
        .find_map(|at| {
            let (product, rest) = t.get(at + 1..)?.split_once('-')?;
            matches!(product, "ASA" | "FTD" | "PIX" | "FWSM").then_some((product, rest))
        })?;
    let (level, rest) = rest.split_once('-')?;
    let level: u8 = level.parse().ok()?;
    let id_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let id: u32 = rest.get(..id_end)?.parse().ok()?;
    let msg = rest.get(id_end..)?.trim_start_matches(':').trim();
    let kind = match class_of(id) {
        Some(c) => map(c, id, msg),
        None => build::unmapped("cisco-asa message id without a mapping"),
    };
    let model = match product {
        "FTD" => "FTD",
        "PIX" => "PIX",
        "FWSM" => "FWSM",
        _ => "ASA",
    };
    Some(
        Draft::new(kind, severity(level))
            .vendor("Cisco")
            .model(Some(model))
            .summary(msg),
    )
}

/// Words of the message (split on spaces and commas).
fn words(msg: &str) -> Words<'_> {
    Words { rest: Some(msg) }
}

/// The non-empty pieces of a string split on `' '` and `','` (like
/// `split([' ', ',']).filter(|w| !w.is_empty())`, a byte at a time instead of a char at a time).
struct Words<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        loop {
            let rest = self.rest?;
            let word = match rest.bytes().position(|c| c == b' ' || c == b',') {
                Some(end) => {
                    self.rest = rest.get(end + 1..);
                    rest.get(..end)
                }
                None => {
                    self.rest = None;
                    Some(rest)
                }
            };
            if let Some(w) = word.filter(|w| !w.is_empty()) {
                return Some(w);
            }
        }
    }
}

/// `iface:addr/port`, `addr/port`, `iface:addr`, `addr` -> address and port.
fn endpoint(tok: &str) -> (Option<IpAddr>, Option<u16>) {
    let tok = tok
        .trim_end_matches([',', ';', '.', ')'])
        .trim_start_matches('(');
    let (a, p) = build::addr_slash_port(tok);
    if a.is_some() {
        return (a, p);
    }
    match tok.split_once(':') {
        Some((_, rest)) => build::addr_slash_port(rest),
        None => (None, None),
    }
}

/// The endpoint after the first keyword of `keys` that is followed by one.
fn after(msg: &str, keys: &[&str]) -> (Option<IpAddr>, Option<u16>) {
    let mut prev: Option<&str> = None;
    for next in words(msg).take(64) {
        if prev.is_some_and(|word| keys.iter().any(|k| word.eq_ignore_ascii_case(k))) {
            let e = endpoint(next);
            if e.0.is_some() {
                return e;
            }
        }
        prev = Some(next);
    }
    (None, None)
}

fn proto_word(msg: &str) -> Option<pharos_model::ident::Protocol> {
    words(msg).take(12).find_map(|w| {
        ["tcp", "udp", "icmp", "icmp6", "sctp"]
            .iter()
            .any(|p| w.eq_ignore_ascii_case(p))
            .then(|| build::protocol(w))
            .flatten()
    })
}

/// Text between the first pair of `"` or `'` after `key`.
fn quoted_after<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    let at = Lit::new(key).find(msg.as_bytes())? + key.len();
    let rest = msg.get(at..)?;
    let open = rest.bytes().position(|c| c == b'"' || c == b'\'')?;
    let q = rest.get(open..open + 1)?;
    let inner = rest.get(open + 1..)?;
    let close = inner.find(q)?;
    inner.get(..close)
}

/// `key = value :` style fields of AAA messages (the first `key` followed by `=` or `:`).
fn eq_field<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    msg.match_indices(key).take(8).find_map(|(at, _)| {
        let rest = msg.get(at + key.len()..)?.trim_start();
        let rest = rest
            .strip_prefix('=')
            .or_else(|| rest.strip_prefix(':'))?
            .trim_start();
        let end = rest.find([' ', ',', ':']).unwrap_or(rest.len());
        rest.get(..end).map(|v| v.trim_matches(['"', '\'']))
    })
}

fn percent(msg: &str) -> Option<u8> {
    let at = msg.find('%')?;
    let head = msg.get(..at)?;
    let start = head
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    head.get(start..)?.parse().ok()
}

fn map(class: Class, id: u32, msg: &str) -> Kind {
    match class {
        Class::Fw(action) => firewall(msg, action, false),
        Class::Built => {
            let outbound = words(msg)
                .nth(1)
                .is_some_and(|w| w.eq_ignore_ascii_case("outbound"));
            firewall(msg, IngressAction::Pass, outbound)
        }
        Class::Acl => {
            let action = if has!(msg, " denied ") {
                IngressAction::Drop
            } else {
                IngressAction::Pass
            };
            acl_106100(msg, action)
        }
        Class::ThreatRate | Class::ThreatHost => threat(class, msg),
        Class::Ips => {
            let (src_ip, src_port) = after(msg, &["from"]);
            let (dst_ip, dst_port) = after(msg, &["to"]);
            let sig = if id == 420002 {
                None
            } else {
                msg.split_whitespace()
                    .next()
                    .filter(|w| w.starts_with("IPS:") || w.starts_with("IDS:"))
            };
            let flow = build::Flow {
                src_ip,
                src_port,
                dst_ip,
                dst_port,
            };
            let ids = build::Ids {
                protocol: proto_word(msg)
                    .and_then(|p| build::transport(pharos_model::ident::Identity::name(p))),
                app: build::app_by_port(dst_port),
                attack_type: build::intrusion_attack_type(msg),
            };
            Kind::Intrusion(build::intrusion(flow, build::rule_or(sig, RULE), ids))
        }
        Class::DynFilter => {
            let (src_ip, src_port) = after(msg, &["from"]);
            let (dst_ip, dst_port) = after(msg, &["to"]);
            Kind::Botnet(BotnetEvent {
                src_ip,
                src_port,
                dst_ip,
                dst_port,
                rule_name: "dynamic-filter".to_string(),
                botnet_name: msg.split("category:").nth(1).map(|c| build::clip(c.trim())),
                role: None,
                botnet_pkt_num: None,
                protocol: proto_word(msg)
                    .and_then(|p| build::transport(pharos_model::ident::Identity::name(p))),
            })
        }
        Class::AuthOk | Class::AuthFail | Class::MgmtLoginOk => login(class, msg),
        Class::Command => {
            let user = quoted_after(msg, "User");
            let cmd = match id {
                111010 => quoted_after(msg, "executed"),
                111009 => msg.split("executed cmd:").nth(1).map(str::trim),
                _ => quoted_after(msg, "executed the"),
            };
            let from = eq_field(msg, "from IP").and_then(build::ip).or_else(|| {
                msg.split("from IP ")
                    .nth(1)
                    .and_then(|r| r.split([',', ' ']).next())
                    .and_then(build::ip)
            });
            build::access_log(user, from, None, OperationType::Configuration, cmd, None)
        }
        Class::ConfigChange => {
            let user = eq_field(msg, "Uname").or_else(|| quoted_after(msg, "User"));
            let from = msg.split_whitespace().take(4).find_map(build::ip);
            build::config_change(user, from, None, None)
        }
        Class::Lock => {
            let user = quoted_after(msg, "User");
            build::user_activity(user, None, None, None, UserActivityType::Lock, Some(msg))
        }
        Class::Memory => Kind::ResourceUtilizationLog(ResourceUtilizationLog {
            memory_usage: percent(msg),
            ..Default::default()
        }),
        Class::Cpu => Kind::ResourceUtilizationLog(ResourceUtilizationLog {
            cpu_usage: percent(msg),
            ..Default::default()
        }),
    }
}

fn firewall(msg: &str, action: IngressAction, swap: bool) -> Kind {
    const DURATION: Lit<'static> = Lit::new("duration ");
    const BYTES: Lit<'static> = Lit::new(" bytes ");
    let (mut src, mut dst) = if has!(msg, "faddr") {
        (after(msg, &["faddr"]), after(msg, &["laddr"]))
    } else {
        (
            after(msg, &["from", "src", "for"]),
            after(msg, &["to", "dst"]),
        )
    };
    if swap {
        std::mem::swap(&mut src, &mut dst);
    }
    let acl = quoted_after(msg, "access-group");
    let duration = second_piece(msg, DURATION)
        .and_then(|d| d.split_whitespace().next())
        .and_then(hms);
    let bytes = second_piece(msg, BYTES)
        .and_then(|d| d.split_whitespace().next())
        .and_then(|b| b.parse().ok());
    Kind::FirewallTrafficLog(FirewallTrafficLog {
        src_ip: src.0,
        src_port: src.1,
        dst_ip: dst.0,
        dst_port: dst.1,
        protocol: proto_word(msg),
        action: Some(action),
        sent_bytes: bytes,
        rule_name: acl.map(build::clip),
        policy_name: acl.map(build::clip),
        in_interface: interface(msg, &["from", "src", "for"]).map(build::clip),
        out_interface: interface(msg, &["to", "dst"]).map(build::clip),
        session_id: words(msg)
            .skip_while(|w| !w.eq_ignore_ascii_case("connection"))
            .nth(1)
            .and_then(|w| w.parse().ok()),
        duration,
        ..Default::default()
    })
}

/// `iface:addr` after a keyword, or `on interface X`.
fn interface<'a>(msg: &'a str, keys: &[&str]) -> Option<&'a str> {
    let mut it = words(msg).take(64);
    while let Some(w) = it.next() {
        if keys.iter().any(|k| w.eq_ignore_ascii_case(k)) {
            let next = it.next()?;
            if let Some((iface, rest)) = next.split_once(':')
                && build::addr_slash_port(rest).0.is_some()
            {
                return Some(iface);
            }
            return None;
        }
    }
    None
}

fn hms(s: &str) -> Option<u32> {
    let mut total: u32 = 0;
    for part in s.split(':').take(4) {
        total = total.checked_mul(60)?.checked_add(part.parse().ok()?)?;
    }
    Some(total)
}

/// `access-list NAME permitted tcp inside/10.0.0.1(1234) -> outside/1.2.3.4(80) hit-cnt 1`.
fn acl_106100(msg: &str, action: IngressAction) -> Kind {
    let w: Vec<&str> = words(msg).take(32).collect();
    let name = w.get(1).copied();
    fn ep<'a>(tok: Option<&&'a str>) -> (Option<&'a str>, Option<IpAddr>, Option<u16>) {
        let Some(tok) = tok else {
            return (None, None, None);
        };
        let (iface, rest) = tok.split_once('/').unwrap_or(("", tok));
        let (addr, port) = match rest.split_once('(') {
            Some((a, p)) => (build::ip(a), build::port(p.trim_end_matches(')'))),
            None => (build::ip(rest), None),
        };
        (Some(iface).filter(|i| !i.is_empty()), addr, port)
    }
    let arrow = w.iter().position(|x| *x == "->");
    let (in_if, src_ip, src_port) = ep(arrow.and_then(|a| a.checked_sub(1)).and_then(|i| w.get(i)));
    let (out_if, dst_ip, dst_port) = ep(arrow.and_then(|a| w.get(a + 1)));
    Kind::FirewallTrafficLog(FirewallTrafficLog {
        src_ip,
        src_port,
        dst_ip,
        dst_port,
        protocol: w.get(3).and_then(|p| build::protocol(p)),
        action: Some(action),
        rule_name: name.map(build::clip),
        policy_name: name.map(build::clip),
        in_interface: in_if.map(build::clip),
        out_interface: out_if.map(build::clip),
        ..Default::default()
    })
}

fn threat(class: Class, msg: &str) -> Kind {
    use pharos_model::ident::DdosType as D;
    let object = msg.split(['[', ']']).nth(1).map(str::trim).unwrap_or("");
    let lower = msg.to_ascii_lowercase();
    let rate = lower
        .split("current average rate is ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.parse::<u64>().ok());
    let host = match class {
        Class::ThreatHost => msg.split_whitespace().nth(1).and_then(build::ip),
        _ => None,
    };
    let targeted = lower.contains("targeted");
    if object.eq_ignore_ascii_case("scanning") || lower.contains("scanning") {
        return Kind::Intrusion(IntrusionEvent {
            src_ip: if targeted { None } else { host },
            src_port: None,
            dst_ip: if targeted { host } else { None },
            dst_port: None,
            rule_name: "threat-detection-scanning".to_string(),
            protocol: None,
            app: None,
            attack_type: Some(pharos_model::ident::IntrusionAttackType::PortScan),
        });
    }
    let attack_type = if lower.contains("syn attack") {
        Some(D::SynFlood)
    } else if lower.contains("icmp") {
        Some(D::Icmpv4Flood)
    } else {
        None
    };
    Kind::Ddos(DdosEvent {
        attack_type,
        start_time: build::UNSET_START,
        end_time: None,
        attack_src_ip: if targeted {
            Vec::new()
        } else {
            host.into_iter().collect()
        },
        attack_dst_ip: if targeted {
            host.into_iter().collect()
        } else {
            Vec::new()
        },
        attack_src_port: Vec::new(),
        attack_dst_port: Vec::new(),
        rule_name: if object.is_empty() {
            "threat-detection".to_string()
        } else {
            build::clip(&format!("threat-detection {object}"))
        },
        attack_rate: rate,
        attack_throughput: None,
    })
}

fn login(class: Class, msg: &str) -> Kind {
    let user = eq_field(msg, "user")
        .or_else(|| eq_field(msg, "Uname"))
        .or_else(|| quoted_after(msg, "for user"))
        .or_else(|| quoted_after(msg, "user"));
    let (from, from_port) = match eq_field(msg, "user IP")
        .or_else(|| eq_field(msg, "IP address"))
        .and_then(build::ip)
    {
        Some(a) => (Some(a), None),
        None => after(msg, &["from"]),
    };
    match class {
        Class::AuthOk => build::user_activity(
            user,
            None,
            from,
            from_port,
            UserActivityType::SuccessfulLogin,
            None,
        ),
        Class::MgmtLoginOk => build::access_log(
            user,
            from,
            from_port,
            OperationType::Login,
            None,
            Some("permitted"),
        ),
        _ => {
            let reason = msg
                .split("reason =")
                .nth(1)
                .and_then(|r| r.split(':').next())
                .map(str::trim);
            build::user_activity(
                user,
                None,
                from,
                from_port,
                UserActivityType::FailedLogin,
                reason,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};

    #[test]
    fn deny_106023_keeps_acl_and_endpoints() {
        let n = auto(
            r#"%ASA-4-106023: Deny tcp src inside:10.11.11.1/2143 dst dmz:172.16.1.11/139 by access-group "inside_access_in" [0x0, 0x0]"#,
            "cisco-asa",
        );
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.src_ip, ip("10.11.11.1"));
        assert_eq!(f.src_port, Some(2143));
        assert_eq!(f.dst_ip, ip("172.16.1.11"));
        assert_eq!(f.dst_port, Some(139));
        assert_eq!(f.rule_name.as_deref(), Some("inside_access_in"));
        assert_eq!(f.in_interface.as_deref(), Some("inside"));
        assert_eq!(n.message.common.severity, Severity::Middle);
    }

    #[test]
    fn built_outbound_swaps_initiator() {
        let n = auto(
            "%ASA-6-302013: Built outbound TCP connection 1234 for outside:198.51.100.7/443 (198.51.100.7/443) to inside:10.0.0.5/51000 (203.0.113.9/51000)",
            "cisco-asa",
        );
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.src_ip, ip("10.0.0.5"));
        assert_eq!(f.dst_port, Some(443));
        assert_eq!(f.session_id, Some(1234));
    }

    #[test]
    fn teardown_has_duration_and_bytes() {
        let n = auto(
            "%ASA-6-302014: Teardown TCP connection 1234 for outside:198.51.100.7/443 to inside:10.0.0.5/51000 duration 0:01:05 bytes 6543 TCP FINs",
            "cisco-asa",
        );
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.duration, Some(65));
        assert_eq!(f.sent_bytes, Some(6543));
    }

    #[test]
    fn acl_106100_and_aaa_failure() {
        let n = auto(
            "%FTD-6-106100: access-list CSM_FW_ACL_ denied tcp inside/10.1.1.1(51234) -> outside/192.0.2.1(22) hit-cnt 1 first hit [0x0, 0x0]",
            "cisco-asa",
        );
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.dst_port, Some(22));
        assert_eq!(f.action, Some(IngressAction::Drop));
        let n = auto(
            "%ASA-6-113015: AAA user authentication Rejected : reason = Invalid password : local database : user = admin : user IP = 10.2.2.2",
            "cisco-asa",
        );
        let Kind::UserActivityLog(u) = &n.message.kind else {
            panic!()
        };
        assert_eq!(u.user, "admin");
        assert_eq!(u.ip_address, ip("10.2.2.2").unwrap());
    }

    #[test]
    fn threat_detection_and_memory() {
        let n = auto(
            "%ASA-4-733101: Host 192.0.2.66 is attacking. Current burst rate is 200 per second, max configured rate is 100; Current average rate is 150 per second, max configured rate is 80; Cumulative total count is 90000",
            "cisco-asa",
        );
        let Kind::Ddos(d) = &n.message.kind else {
            panic!()
        };
        assert_eq!(d.attack_src_ip, vec![ip("192.0.2.66").unwrap()]);
        assert_eq!(d.attack_rate, Some(150));
        let n = auto(
            "%ASA-2-321006: System Memory usage reached 91%",
            "cisco-asa",
        );
        let Kind::ResourceUtilizationLog(r) = &n.message.kind else {
            panic!()
        };
        assert_eq!(r.memory_usage, Some(91));
    }

    #[test]
    fn unknown_ids_are_recognised_but_generic() {
        let n = crate::normalize(
            &LogInput::line("%ASA-1-505015: Module Sensor, application up \"IPS\""),
            crate::Format::Auto,
            "fw",
        );
        assert_eq!(n.format, "cisco-asa");
        assert!(!n.parsed);
        assert_eq!(n.message.common.severity, Severity::Critical);
    }
}
