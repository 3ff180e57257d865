//! Squid native `access.log` (`logformat squid`): `time elapsed client code/status bytes method
//! URL user hierarchy/peer type`.
//!
//! Layout (table [`COLUMNS`]): each line is a proxied request, a firewall traffic log: client ->
//! peer (the origin server or parent cache address when Squid logs one), action `deny` for the
//! `TCP_DENIED`/`NONE_*` result codes and `allow` otherwise (table [`DENIED`]); URL, method,
//! domain (host of the URL), HTTP status, user and result code (as message-id) in the fields;
//! bytes = the reply size delivered to the client. Lines with Cisco WSA decision tags
//! (`DEFAULT_CASE_...`, `<IW_...>`) are left to the `cisco-wsa` format.

use pharos_model::Severity;

use crate::LogInput;
use crate::build::{self, Draft, Flow, FwClass, FwParts};
use crate::vendors::{Probe, app_is, probe};

const RULE: &str = "squid-unknown-rule";

/// The columns of the native format, in order, with what Pharos reads from each.
#[cfg_attr(not(test), allow(dead_code))]
pub const COLUMNS: &[(&str, &str)] = &[
    ("time", "epoch seconds with milliseconds -> event time"),
    ("elapsed", "milliseconds"),
    ("client", "src-ip"),
    ("code/status", "message-id / http-status, action"),
    (
        "bytes",
        "received-bytes (reply size to the client: destination to source)",
    ),
    ("method", "http-method"),
    ("URL", "url, domain"),
    ("user", "user (`-`: none)"),
    ("hierarchy/peer", "dst-ip when an address"),
    ("type", "MIME type"),
];

/// Result-code prefixes that mean the request was refused.
const DENIED: &[&str] = &[
    "TCP_DENIED",
    "UDP_DENIED",
    "TCP_DENIED_REPLY",
    "NONE_NONE",
    "NONE/",
];

/// Sample lines, one per result family (the module test reads them).
#[cfg_attr(not(test), allow(dead_code))]
pub const SAMPLES: &[&str] = &[
    "1286536308.779    180 192.0.2.224 TCP_MISS/200 411 GET http://www.example.com/ alice DIRECT/203.0.113.34 text/html",
    "1286536309.101      0 192.0.2.225 TCP_DENIED/403 3944 CONNECT blocked.example.net:443 - HIER_NONE/- text/html",
    "1286536310.450     12 192.0.2.226 TCP_TUNNEL/200 5120 CONNECT www.example.org:443 bob HIER_DIRECT/198.51.100.7 -",
    "1286536311.002      3 2001:db8::15 TCP_MEM_HIT/200 1024 GET http://cdn.example.com/logo.png - HIER_NONE/- image/png",
];

/// `1286536308.779 ` at the start: epoch seconds, a dot, milliseconds.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    (app_is(p.input, &["squid"]) || starts_with_epoch(p.input.text))
        && !probe!(p, "_CASE_")
        && !probe!(p, "<IW_")
}

/// `1286536308.779 ` at the start of `t`.
fn starts_with_epoch(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() > 40
        && b.get(10) == Some(&b'.')
        && b.get(..10)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
}

/// Epoch seconds with a fraction.
fn epoch_ms(s: &str) -> Option<pharos_model::Timestamp> {
    let (sec, frac) = s.split_once('.').unwrap_or((s, "0"));
    let secs: i64 = sec.parse().ok()?;
    let frac = frac.get(..frac.len().min(9))?;
    let n: u32 = frac.parse().ok()?;
    let nanos = n * 10u32.pow(9 - frac.len() as u32);
    chrono::DateTime::from_timestamp(secs, nanos)
}

/// Normalises one access.log line; `None` when the columns do not fit.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let mut it = super::linux_auth::after_tag(input, &["squid"]).split_whitespace();
    let time = epoch_ms(it.next()?)?;
    let _elapsed: u64 = it.next()?.parse().ok()?;
    let client = build::ip(it.next()?)?;
    let code_status = it.next()?;
    let (code, status) = code_status.split_once('/')?;
    if !code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
        return None;
    }
    let status: Option<u16> = status.parse().ok().filter(|s| *s > 0);
    let bytes: Option<u64> = it.next()?.parse().ok();
    let method = it.next()?;
    let url = it.next()?;
    let user = it.next();
    let peer = it.next();
    let _mime = it.next();
    // an eleventh column in WSA's style (`ALLOW_CUSTOMCAT-...`) is Cisco WSA's format
    if it
        .next()
        .is_some_and(|w| w.contains('-') && w.split('-').next().is_some_and(|t| t.contains('_')))
    {
        return None;
    }
    let peer_ip = peer
        .and_then(|p| p.split_once('/'))
        .and_then(|(_, a)| build::ip(a));
    let denied = DENIED.iter().any(|d| code_status.starts_with(d));
    let p = FwParts {
        flow: Flow {
            src_ip: Some(client),
            dst_ip: peer_ip,
            dst_port: super::web_access::url_port(url),
            ..Default::default()
        },
        proto: Some("tcp"),
        action: Some(if denied { "deny" } else { "allow" }),
        user: user.and_then(|u| build::present(Some(u))),
        url: Some(url),
        domain: super::web_access::url_host(url),
        method: Some(method),
        status,
        received: bytes,
        message_id: Some(code),
        app: Some("http-proxy"),
        ..Default::default()
    };
    let sev = if denied {
        Severity::Low
    } else {
        Severity::Info
    };
    Some(
        build::fw_draft(FwClass::Traffic, &p, RULE, sev)
            .time(Some(time))
            .vendor("Squid")
            .model(Some("Squid")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};
    use pharos_model::Kind;
    use pharos_model::ident::IngressAction;

    #[test]
    fn every_sample_is_a_proxied_request() {
        for line in SAMPLES {
            let n = auto(line, "squid");
            let Kind::FirewallTrafficLog(f) = &n.message.kind else {
                panic!("{line}")
            };
            assert!(f.src_ip.is_some());
            let x = n.message.common.fields.as_deref().unwrap();
            assert!(x.url.is_some() && x.http_method.is_some(), "{line}");
        }
    }

    #[test]
    fn samples_have_the_native_columns() {
        for line in SAMPLES {
            assert_eq!(line.split_whitespace().count(), COLUMNS.len(), "{line}");
        }
    }

    #[test]
    fn miss_and_denied() {
        let n = auto(SAMPLES[0], "squid");
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.dst_ip, ip("203.0.113.34"));
        assert_eq!(f.user.as_deref(), Some("alice"));
        assert_eq!(f.action, Some(IngressAction::Pass));
        let x = n.message.common.fields.as_deref().unwrap();
        assert_eq!(x.domain.as_deref(), Some("www.example.com"));
        assert_eq!(x.http_status, Some(200));
        let n = auto(SAMPLES[1], "squid");
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.action, Some(IngressAction::Drop));
        assert_eq!(f.dst_port, Some(443));
    }

    #[test]
    fn wsa_lines_are_not_squid() {
        let line = "1286536308.779 180 192.0.2.224 TCP_MISS/200 411 GET http://www.example.com/ - DIRECT/www.example.com text/html ALLOW_CUSTOMCAT_11-Policy-ID-NONE-NONE-NONE-DefaultGroup <nc,-,\"-\",-> -";
        let n = crate::normalize(&LogInput::line(line), crate::Format::Named("squid"), "x");
        assert_ne!(n.format, "squid");
    }
}
