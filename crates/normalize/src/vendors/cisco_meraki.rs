//! Cisco Meraki MX/MR/MS syslog: `<134>1 <epoch.nanos> <device> <type> key=value ...`.
//!
//! The record is read from the whole line (`raw`): Meraki's header is RFC 5424-like with an epoch
//! timestamp and no structured data, so a generic header parser splits its body in the wrong
//! place. Without an epoch timestamp (a relay rewrote the header), the syslog app name is the
//! type and the text the body.
//!
//! Mapping: the table [`TYPES`] (log type, or `security_event` subtype -> [`Class`], with a
//! sample line per row, all checked by the tests): `flows`, `firewall`, `vpn_firewall`,
//! `cellular_firewall`, `ip_flow_start/end` -> firewall traffic log (action from the leading
//! `allow`/`deny` word or the `pattern:`; NAT from `translated_*`); `urls` -> firewall traffic
//! log with the request's method and URL in `envelope/fields`; `ids-alerts` and
//! `security_event ids_alerted` -> intrusion (web attack when the signature message names an
//! HTTP attack); `security_event security_filtering_*` (AMP) -> virus; `events` 802.1X/VPN
//! authentication failures -> user activity log, client VPN connections -> user activity log;
//! other `events` and `airmarshal_events` -> generic logs carrying their fields. The type is
//! `envelope/fields/message-id`.

use crate::LogInput;
use pharos_model::Severity;

use crate::build::{self, Draft, Flow, FwClass, FwParts};
use crate::fields::Kv;

use super::{Probe, app_is};

const RULE: &str = "cisco-meraki-unknown-rule";

/// What a log type means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Class {
    Flow,
    Url,
    Ids,
    Amp,
    Event,
}

use Class as C;

/// Log type (or `security_event` subtype) -> class, with a sample line written from Meraki's
/// syslog event types documentation.
#[rustfmt::skip]
pub(super) const TYPES: &[(&str, Class, &str)] = &[
    ("flows", C::Flow, "<134>1 1600000000.123456789 MX84 flows allow src=10.0.0.5 dst=192.0.2.9 mac=00:11:22:33:44:55 protocol=tcp sport=51000 dport=443"),
    ("firewall", C::Flow, "<134>1 1600000001.123456789 MX84 firewall src=10.0.0.5 dst=192.0.2.9 mac=00:11:22:33:44:55 protocol=udp sport=51001 dport=53 pattern: deny all"),
    ("vpn_firewall", C::Flow, "<134>1 1600000002.123456789 MX84 vpn_firewall src=10.0.0.5 dst=10.20.0.9 mac=00:11:22:33:44:55 protocol=icmp type=8 pattern: 1 all"),
    ("cellular_firewall", C::Flow, "<134>1 1600000003.123456789 MX84 cellular_firewall src=10.0.0.5 dst=192.0.2.9 mac=00:11:22:33:44:55 protocol=tcp sport=51002 dport=25 pattern: 0 dst port 25"),
    ("bridge_anyconnect_client_vpn_firewall", C::Flow, "<134>1 1600000004.123456789 MX84 bridge_anyconnect_client_vpn_firewall src=10.8.0.5 dst=10.0.0.9 protocol=tcp sport=51003 dport=445 pattern: deny all"),
    ("ip_flow_start", C::Flow, "<134>1 1600000005.123456789 MX84 ip_flow_start src=10.0.0.5 dst=192.0.2.9 protocol=tcp sport=51004 dport=80 translated_src_ip=203.0.113.5 translated_port=61004"),
    ("ip_flow_end", C::Flow, "<134>1 1600000006.123456789 MX84 ip_flow_end src=10.0.0.5 dst=192.0.2.9 protocol=tcp sport=51004 dport=80 translated_src_ip=203.0.113.5 translated_port=61004"),
    ("urls", C::Url, "<134>1 1600000007.123456789 MX84 urls src=10.0.0.5:51005 dst=192.0.2.9:80 mac=00:11:22:33:44:55 agent='Mozilla/5.0' request: GET http://www.example.com/index.html"),
    ("ids-alerts", C::Ids, "<134>1 1600000008.123456789 MX84 ids-alerts signature=1:28423:1 priority=1 timestamp=1600000008.1 direction=ingress protocol=tcp/ip src=192.0.2.66:80 dst=10.0.0.5:51006 message: EXPLOIT-KIT Multiple exploit kit single digit exe detection"),
    ("ids_alerted", C::Ids, "<134>1 1600000009.123456789 MX84 security_event ids_alerted signature=1:41978:2 priority=1 timestamp=1600000009.2 dhost=00:11:22:33:44:55 direction=ingress protocol=tcp/ip src=192.0.2.66:40000 dst=10.0.0.5:80 decision=blocked message: SERVER-WEBAPP SQL injection attempt"),
    ("security_filtering_file_scanned", C::Amp, "<134>1 1600000010.123456789 MX84 security_event security_filtering_file_scanned url=http://files.example.net/invoice.exe src=192.0.2.66:80 dst=10.0.0.5:51007 mac=00:11:22:33:44:55 name='W32.Trojan.Agent' sha256=0a1b2c disposition=malicious action=block"),
    ("security_filtering_disposition_change", C::Amp, "<134>1 1600000011.123456789 MX84 security_event security_filtering_disposition_change name=W32.Worm.Gen sha256=0a1b2d disposition=malicious action=allow"),
    ("events", C::Event, "<134>1 1600000012.123456789 MX84 events type=vpn_connectivity_change vpn_type='site-to-site' peer_contact='198.51.100.7:51856' peer_ident='abc' connectivity='false'"),
    ("airmarshal_events", C::Event, "<134>1 1600000013.123456789 MR42 airmarshal_events type=rogue_ssid_detected ssid='FreeWiFi' bssid='02:18:5A:AE:56:00' src='02:18:5A:AE:56:00' dst='FF:FF:FF:FF:FF:FF' wired_mac='00:18:0A:AE:56:00' vlan_id='0' channel='157' rssi='21' fc_type='0' fc_subtype='5'"),
];

/// `events` types that are authentication results: (type, class), checked before the table.
#[rustfmt::skip]
pub(super) const AUTH_EVENTS: &[(&str, FwClass, &str)] = &[
    ("8021x_eap_failure", FwClass::LoginFailed, "<134>1 1600000014.123456789 MR42 events type=8021x_eap_failure radio='1' vap='0' client_mac='00:11:22:33:44:66' client_ip='10.0.0.7' identity='bob' aid='1'"),
    ("8021x_auth", FwClass::UserLogin, "<134>1 1600000015.123456789 MR42 events type=8021x_auth radio='1' vap='0' client_mac='00:11:22:33:44:66' client_ip='10.0.0.7' identity='bob' aid='1'"),
    ("8021x_deauth", FwClass::Logout, "<134>1 1600000016.123456789 MR42 events type=8021x_deauth radio='1' vap='0' client_mac='00:11:22:33:44:66' client_ip='10.0.0.7' identity='bob' aid='1'"),
    ("client_vpn_connect", FwClass::UserLogin, "<134>1 1600000017.123456789 MX84 events client_vpn_connect user id 'alice' local ip 10.8.0.5 connected from 198.51.100.7"),
    ("anyconnect_vpn_auth_failure", FwClass::LoginFailed, "<134>1 1600000018.123456789 MX84 events anyconnect_vpn_auth_failure user id 'alice' peer ip 198.51.100.7"),
];

/// Meraki's epoch timestamp: `1600000000.123456789`.
fn is_epoch(t: &str) -> bool {
    let Some((s, frac)) = t.split_once('.') else {
        return false;
    };
    s.len() == 10
        && !frac.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// Device, log type and body of a Meraki line.
fn split_line<'a>(input: &LogInput<'a>) -> Option<(&'a str, &'a str, &'a str)> {
    let raw = input.raw;
    let mut rest = raw;
    for _ in 0..4 {
        let (tok, after) = rest.trim_start().split_once(' ')?;
        rest = after;
        if is_epoch(tok) {
            let (device, after) = rest.trim_start().split_once(' ')?;
            let after = after.trim_start();
            let (ty, body) = after.split_once(' ').unwrap_or((after, ""));
            return Some((device, ty, body.trim()));
        }
    }
    None
}

fn known_type(ty: &str) -> bool {
    TYPES.iter().any(|(t, _, _)| *t == ty) || ty == "security_event"
}

/// A Meraki epoch header followed by a known log type.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    const NAMES: &[&str] = &[
        "flows",
        "firewall",
        "vpn_firewall",
        "cellular_firewall",
        "ip_flow_start",
        "ip_flow_end",
        "urls",
        "ids-alerts",
        "security_event",
        "airmarshal_events",
    ];
    (epoch_header(p.input.raw) && split_line(p.input).is_some_and(|(_, ty, _)| known_type(ty)))
        || (p.input.app_name.is_some() && app_is(p.input, NAMES))
}

/// `<PRI>1 1600000000.` or `1600000000.` at the start of the line: a check of a few bytes.
fn epoch_header(raw: &str) -> bool {
    let b = raw.as_bytes();
    let mut at = 0;
    if b.first() == Some(&b'<') {
        at = match b.iter().take(6).position(|&c| c == b'>') {
            Some(i) => i + 1,
            None => return false,
        };
        if b.get(at..at + 2) == Some(b"1 ") {
            at += 2;
        }
    }
    b.get(at..at + 10)
        .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
        && b.get(at + 10) == Some(&b'.')
}

/// Normalises one Meraki record.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let (device, ty, body) = match split_line(input) {
        Some(x) if known_type(x.1) => x,
        _ => {
            let app = input.app_name?.split('[').next()?;
            // without Meraki's epoch header only a body with both ends is taken as Meraki's
            // (`firewall` and `urls` are common tags)
            if !known_type(app) || !input.text.contains("src=") || !input.text.contains("dst=") {
                return None;
            }
            ("", app, input.text)
        }
    };
    // `security_event <subtype> ...`
    let (ty, body) = if ty == "security_event" {
        body.split_once(' ').unwrap_or((body, ""))
    } else {
        (ty, body)
    };
    let class = TYPES
        .iter()
        .find(|(t, _, _)| *t == ty)
        .map_or(C::Event, |r| r.1);
    let kv = Kv::parse(body);
    let mut p = parts(ty, body, &kv);
    let sev = match class {
        C::Ids => match kv.get("priority") {
            Some("1") => Severity::High,
            Some("2") => Severity::Middle,
            _ => Severity::Low,
        },
        C::Amp => Severity::High,
        _ => Severity::Info,
    };
    let fw = match class {
        C::Flow => FwClass::Traffic,
        C::Url => {
            p.action = Some("allow");
            FwClass::Traffic
        }
        C::Ids => FwClass::Ips,
        C::Amp => FwClass::Virus,
        C::Event => {
            let sub = kv.get("type").unwrap_or(ty);
            let sub = if ty == "events" {
                kv.get("type")
                    .unwrap_or_else(|| body.split(' ').next().unwrap_or(""))
            } else {
                sub
            };
            AUTH_EVENTS
                .iter()
                .find(|(t, _, _)| *t == sub)
                .map_or(FwClass::Event, |r| r.1)
        }
    };
    let draft = build::fw_draft(fw, &p, RULE, sev)
        .vendor("Cisco Meraki")
        .model(Some(device).filter(|d| !d.is_empty()))
        .time(kv_time(input));
    Some(draft)
}

/// The epoch timestamp of the header.
fn kv_time(input: &LogInput<'_>) -> Option<crate::Timestamp> {
    input
        .raw
        .split(' ')
        .take(5)
        .find(|t| is_epoch(t))
        .and_then(crate::time::epoch)
}

/// The fields of a body.
fn parts<'a>(ty: &'a str, body: &'a str, kv: &Kv<'a>) -> FwParts<'a> {
    let (src_ip, mut src_port) = kv.get("src").map_or((None, None), build::addr_colon_port);
    let (dst_ip, mut dst_port) = kv.get("dst").map_or((None, None), build::addr_colon_port);
    src_port = src_port.or_else(|| kv.get("sport").and_then(build::port));
    dst_port = dst_port.or_else(|| kv.get("dport").and_then(build::port));
    let client = kv
        .any(&["client_ip", "ip"])
        .and_then(build::ip)
        .or_else(|| word_after(body, "connected from ").and_then(build::ip))
        .or_else(|| word_after(body, "peer ip ").and_then(build::ip));
    let first = body.split(' ').next().unwrap_or("");
    let pattern = body.split("pattern: ").nth(1).map(str::trim);
    let action = match first {
        "allow" | "deny" | "block" => Some(first),
        _ => pattern.and_then(|pat| match pat.split(' ').next() {
            Some("1" | "allow") => Some("allow"),
            Some("0" | "deny") => Some("deny"),
            _ => None,
        }),
    }
    .or_else(|| kv.any(&["action", "decision"]));
    let request = body.split("request: ").nth(1).map(str::trim);
    let (method, mut url) = match request.and_then(|r| r.split_once(' ')) {
        Some((m, u)) => (Some(m), Some(u.trim())),
        None => (None, request),
    };
    url = url.or_else(|| kv.get("url"));
    let message = body.split("message: ").nth(1).map(str::trim);
    let user = kv
        .any(&["identity", "user"])
        .or_else(|| quoted_after(body, "user id '"));
    let amp = ty.starts_with("security_filtering");
    FwParts {
        flow: Flow {
            src_ip: src_ip.or(client),
            src_port,
            dst_ip,
            dst_port,
        },
        nat_src_ip: kv.get("translated_src_ip").and_then(build::ip),
        nat_src_port: kv.get("translated_port").and_then(build::port),
        nat_dst_ip: kv.get("translated_dst_ip").and_then(build::ip),
        proto: kv.get("protocol").map(|p| p.split('/').next().unwrap_or(p)),
        action,
        // the IDS signature id, else the firewall pattern
        rule: kv.get("signature").or(pattern),
        user,
        url,
        domain: url.and_then(super::cisco_asa::url_host),
        method,
        user_agent: kv.get("agent"),
        message_id: Some(ty),
        // AMP names the threat in `name`; an IDS alert its signature in `message:`
        signature: if amp { kv.get("name") } else { message },
        file: if amp {
            url.and_then(|u| u.rsplit('/').next())
                .filter(|f| !f.is_empty())
        } else {
            None
        },
        msg: message,
        ..Default::default()
    }
}

fn word_after<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    s.split(key).nth(1)?.split(' ').next()
}

fn quoted_after<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    s.split(key).nth(1)?.split('\'').next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};
    use pharos_model::Kind;

    fn kind_name(k: &Kind) -> &'static str {
        match k {
            Kind::FirewallTrafficLog(_) => "fw",
            Kind::Intrusion(_) => "ids",
            Kind::WebAttack(_) => "web",
            Kind::Virus(_) => "virus",
            Kind::UserActivityLog(_) => "user",
            Kind::GenericLog(_) => "generic",
            _ => "other",
        }
    }

    #[test]
    fn every_table_row_sample_maps_to_its_kind() {
        for (ty, class, sample) in TYPES {
            let n = auto(sample, "cisco-meraki");
            let want = match class {
                C::Flow | C::Url => "fw",
                C::Ids if sample.contains("SQL injection") => "web",
                C::Ids => "ids",
                C::Amp => "virus",
                C::Event => "generic",
            };
            assert_eq!(
                kind_name(&n.message.kind),
                want,
                "{sample}\n{:?}",
                n.message.kind
            );
            let json = crate::vendors::cisco_asa::parsed_json(&n);
            assert!(json.contains(ty), "{sample}\n{json}");
            if let Some(src) = sample.split("src=").nth(1) {
                let a = src.split([':', ' ', '\'']).next().unwrap();
                if a.parse::<std::net::IpAddr>().is_ok() {
                    assert!(json.contains(a), "{a} lost: {sample}\n{json}");
                }
            }
        }
        for (_, class, sample) in AUTH_EVENTS {
            let n = auto(sample, "cisco-meraki");
            assert_eq!(kind_name(&n.message.kind), "user", "{sample}");
            let Kind::UserActivityLog(u) = &n.message.kind else {
                panic!()
            };
            assert_ne!(u.user, crate::UNKNOWN_USER, "{sample} {class:?}");
        }
    }

    #[test]
    fn flows_keep_ports_and_action() {
        let n = auto(TYPES[1].2, "cisco-meraki");
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.src_ip, ip("10.0.0.5"));
        assert_eq!(f.src_port, Some(51001));
        assert_eq!(f.dst_port, Some(53));
        assert_eq!(f.action, Some(pharos_model::ident::IngressAction::Drop));
    }

    #[test]
    fn urls_keep_method_and_url_after_a_parsed_header() {
        let mut input = LogInput::line(TYPES[7].2);
        // what an RFC 5424 header parser leaves: app name `urls`, the rest shifted
        input.app_name = Some("urls");
        input.text =
            "dst=192.0.2.9:80 mac=00:11:22:33:44:55 request: GET http://www.example.com/index.html";
        let n = crate::normalize(&input, crate::Format::Auto, "m");
        assert_eq!(n.format, "cisco-meraki");
        let f = n.message.common.fields.as_deref().unwrap();
        assert_eq!(f.http_method.as_deref(), Some("GET"));
        assert_eq!(f.url.as_deref(), Some("http://www.example.com/index.html"));
        assert_eq!(f.domain.as_deref(), Some("www.example.com"));
        let Kind::FirewallTrafficLog(t) = &n.message.kind else {
            panic!()
        };
        assert_eq!(t.src_port, Some(51005));
    }
}
