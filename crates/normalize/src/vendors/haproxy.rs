//! HAProxy logs: the HTTP log format (`option httplog`), the TCP log format (`option tcplog`),
//! connection errors (`fnt/1: SSL handshake failure`), the default connect line (`Connect from A:p
//! to B:q (fe/MODE)`) and server state changes.
//!
//! Layouts (table [`LAYOUTS`], each with a sample the module test reads): every log line of a
//! connection starts `client:port [accept date] frontend`; the HTTP format goes on `backend/server
//! timers status bytes cookies termination-state conns queues {captures} "request"`, the TCP format
//! stops after `bytes`. A load balancer's log is a log, not an event: a generic log with its fields
//! (src-ip/src-port = the client, in-interface = frontend, out-interface = backend/server,
//! http-method, url, domain (host of an absolute URL), http-status, received-bytes = bytes sent to the
//! client, message-id = the termination state when it is not `----`).

use pharos_model::{GenericLog, Kind, LogFields, Severity};

use crate::LogInput;
use crate::build::{self, Draft};
use crate::vendors::{Probe, app_is, probe};

use super::web_access::{clf_time, quoted_end, request_line, url_host};

/// The layouts read, with a sample each.
#[cfg_attr(not(test), allow(dead_code))]
pub const LAYOUTS: &[(&str, &str)] = &[
    (
        "http",
        "haproxy[14389]: 192.0.2.12:33317 [06/Feb/2023:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {www.example.com} {} \"GET /index.html HTTP/1.1\"",
    ),
    (
        "https",
        "haproxy[14389]: 2001:db8::5:40112 [06/Feb/2023:12:14:15.001] https-in~ app/app2 0/0/1/20/21 503 212 - - SC-- 3/3/0/0/3 0/0 \"POST /api/v1/login HTTP/1.1\"",
    ),
    (
        "tcp",
        "haproxy[18989]: 192.0.2.13:33313 [06/Feb/2023:12:12:51.443] fnt bck/srv1 0/0/5007 212 -- 0/0/0/0/3 0/0",
    ),
    (
        "error",
        "haproxy[18989]: 192.0.2.14:33320 [06/Feb/2023:12:14:14.655] fnt/1: SSL handshake failure",
    ),
    (
        "connect",
        "haproxy[18989]: Connect from 192.0.2.15:33312 to 198.51.100.31:8012 (www/HTTP)",
    ),
    (
        "server state",
        "haproxy[18989]: Server bck/srv1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms. 0 active and 0 backup servers left.",
    ),
];

/// `haproxy` tag.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    app_is(p.input, &["haproxy"]) || probe!(p, "haproxy[")
}

/// `Connect from A:p to B:q (fe/MODE)`.
fn connect(m: &str) -> Option<LogFields> {
    let rest = m.strip_prefix("Connect from ")?;
    let (from, rest) = rest.split_once(" to ")?;
    let (to, fe) = rest.split_once(' ').unwrap_or((rest, ""));
    let (src_ip, src_port) = build::addr_colon_port(from);
    let (dst_ip, dst_port) = build::addr_colon_port(to);
    Some(LogFields {
        src_ip,
        src_port,
        dst_ip,
        dst_port,
        in_interface: fe
            .trim_matches(['(', ')'])
            .split('/')
            .next()
            .and_then(|f| build::present(Some(f)))
            .map(build::clip),
        ..Default::default()
    })
}

/// A connection's log line: `client:port [date] frontend rest`.
fn connection(m: &str) -> Option<(LogFields, Option<pharos_model::Timestamp>)> {
    let (client, rest) = m.split_once(" [")?;
    let (src_ip, src_port) = build::addr_colon_port(client);
    src_ip?;
    let (date, rest) = rest.split_once("] ")?;
    let time = clf_time(date);
    let mut words = rest.split(' ').filter(|w| !w.is_empty());
    let frontend = words.next()?;
    let mut f = LogFields {
        src_ip,
        src_port,
        in_interface: build::present(Some(frontend.trim_end_matches(':'))).map(build::clip),
        ..Default::default()
    };
    if frontend.ends_with(':') {
        // a connection error: `fnt/1: SSL handshake failure`
        return Some((f, time));
    }
    f.out_interface = words.next().map(build::clip);
    let _timers = words.next()?;
    let second = words.next()?;
    // HTTP: status then bytes; TCP: bytes then the termination state
    let third = words.next();
    let (status, bytes, state) = match third.and_then(|w| w.parse::<u64>().ok()) {
        Some(b) => (second.parse::<u16>().ok(), Some(b), {
            let _cookies = (words.next(), words.next());
            words.next()
        }),
        None => (None, second.parse().ok(), third),
    };
    f.http_status = status.filter(|s| (100..1000).contains(s));
    f.received_bytes = bytes;
    f.message_id = state
        .filter(|s| s.bytes().any(|b| b != b'-'))
        .map(build::clip);
    if let Some(q) = rest.find(" \"").and_then(|at| rest.get(at + 2..)) {
        let req = q.get(..quoted_end(q).unwrap_or(q.len())).unwrap_or("");
        let rl = request_line(req);
        f.http_method = rl.method.map(build::clip);
        f.url = rl.target.map(build::clip);
        f.domain = rl.target.and_then(url_host).map(build::clip);
    }
    f.protocol = Some(
        if f.http_status.is_some() {
            "http"
        } else {
            "tcp"
        }
        .to_string(),
    );
    Some((f, time))
}

/// Normalises one haproxy line; lines of no known layout are recognised, without fields.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let t = input.text;
    let m = match t.find("haproxy[").and_then(|at| t.get(at..)) {
        Some(r) => r.split_once("]: ").map_or(r, |(_, m)| m),
        None => super::linux_auth::after_tag(input, &["haproxy"]),
    }
    .trim();
    let (fields, time) = match connect(m) {
        Some(f) => (Some(f), None),
        None => match connection(m) {
            Some((f, t)) => (Some(f), t),
            None => (None, None),
        },
    };
    let sev = match fields.as_ref().and_then(|f| f.http_status) {
        Some(s) if s >= 500 => Severity::Low,
        _ if has_down(m) => Severity::Middle,
        _ => Severity::Info,
    };
    let reason = if fields.is_some() {
        "load balancer log"
    } else {
        "haproxy line without fields"
    };
    let kind = Kind::GenericLog(GenericLog {
        format: None,
        reason: Some(reason.to_string()),
        app_name: None,
    });
    let mut d = Draft::new(kind, sev)
        .time(time)
        .vendor("HAProxy")
        .model(Some("HAProxy"))
        .summary(m);
    if let Some(f) = fields {
        d = d.fields(f);
    } else if let Some(rest) = m.strip_prefix("Server ") {
        // `Server bck/srv1 is DOWN, ...`: the server as the out interface
        let server = rest.split(' ').next().unwrap_or("");
        d = d.fields(LogFields {
            out_interface: build::present(Some(server)).map(build::clip),
            ..Default::default()
        });
    }
    Some(d)
}

fn has_down(m: &str) -> bool {
    m.contains(" is DOWN")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};

    fn fields(line: &str) -> LogFields {
        let n = auto(line, "haproxy");
        *n.message.common.fields.expect("fields")
    }

    #[test]
    fn every_layout_sample_is_read() {
        for (name, line) in LAYOUTS {
            let f = fields(line);
            assert!(f.src_ip.is_some() || f.out_interface.is_some(), "{name}");
        }
    }

    #[test]
    fn http_and_tcp_fields() {
        let f = fields(LAYOUTS[0].1);
        assert_eq!(f.src_ip, ip("192.0.2.12"));
        assert_eq!(f.src_port, Some(33317));
        assert_eq!(f.http_status, Some(200));
        assert_eq!(f.received_bytes, Some(2750));
        assert_eq!(f.url.as_deref(), Some("/index.html"));
        assert_eq!(f.in_interface.as_deref(), Some("http-in"));
        assert_eq!(f.out_interface.as_deref(), Some("static/srv1"));
        let f = fields(LAYOUTS[1].1);
        assert_eq!(f.src_ip, ip("2001:db8::5"));
        assert_eq!(f.message_id.as_deref(), Some("SC--"));
        let f = fields(LAYOUTS[2].1);
        assert_eq!(f.received_bytes, Some(212));
        assert_eq!(f.http_status, None);
        let f = fields(LAYOUTS[4].1);
        assert_eq!(f.dst_port, Some(8012));
    }
}
