//! Apache httpd and NGINX access logs: Common and Combined Log Format, with the variants real
//! servers write: a virtual host (`vhost_combined`: `host:port` first), an `X-Forwarded-For`
//! address list before the client, IPv6 and `unix:` clients, `-` for absent values, absolute
//! request targets (forward proxies), extra fields after the user agent (request time, upstream).
//!
//! Layout read (table [`LAYOUT`]): `[vhost[:port]] client[, proxy...] ident user [time]
//! "request" status bytes ["referer" "user-agent" ...]`. An access line is a log, not an event:
//! it becomes a generic log with its fields (src-ip = client, dst-ip/dst-port = a vhost given as
//! an address, domain = a vhost given as a name or the host of an absolute URL, user,
//! http-method, url, http-status, received-bytes = response bytes (server to client), user-agent). Whether a request was
//! an attack is not guessed from an access line.

use pharos_model::{GenericLog, Kind, LogFields, Severity, Timestamp};

use crate::LogInput;
use crate::build::{self, Draft};
use crate::vendors::{Probe, probe};

/// The fields of the layout, in order; the sample line shows each (the module test reads it).
#[cfg_attr(not(test), allow(dead_code))]
pub const LAYOUT: &[(&str, &str)] = &[
    (
        "vhost",
        "www.example.com:443 192.0.2.10 - alice [10/Oct/2023:13:55:36 -0700] \"GET /index.html HTTP/1.1\" 200 2326 \"-\" \"curl/8.0\"",
    ),
    (
        "client list",
        "www.example.com 198.51.100.7, 10.0.0.1 - - [10/Oct/2023:13:55:36 +0000] \"GET / HTTP/1.1\" 200 12 \"-\" \"Mozilla/5.0\"",
    ),
    (
        "common",
        "192.0.2.10 - bob [10/Oct/2023:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326",
    ),
    (
        "combined",
        "192.0.2.10 - - [10/Oct/2023:13:55:36 -0700] \"POST /login HTTP/1.1\" 302 0 \"https://www.example.com/\" \"Mozilla/5.0 (X11; Linux x86_64)\"",
    ),
    (
        "absolute url",
        "192.0.2.10 - - [10/Oct/2023:13:55:36 -0700] \"GET http://www.example.org/a?b=1 HTTP/1.1\" 200 5 \"-\" \"Wget/1.21\"",
    ),
];

/// `] "` (end of the time, start of the request) is in every access line.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    probe!(p, "] \"")
}

/// An HTTP request line split into its three parts (any may be absent in a garbage request).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RequestLine<'a> {
    pub method: Option<&'a str>,
    pub target: Option<&'a str>,
    pub protocol: Option<&'a str>,
}

/// `GET /x HTTP/1.1` -> method, target, protocol; a request that is not a request line (`""`,
/// `hello`, binary) gives nothing.
pub(crate) fn request_line(r: &str) -> RequestLine<'_> {
    let mut it = r.split(' ').filter(|w| !w.is_empty());
    let (Some(m), Some(t)) = (it.next(), it.next()) else {
        return RequestLine::default();
    };
    if !m
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_')
        || m.len() > 16
    {
        return RequestLine::default();
    }
    RequestLine {
        method: Some(m),
        target: Some(t),
        protocol: it.next().filter(|p| p.starts_with("HTTP")),
    }
}

/// The host of an absolute URL (`http://h:80/x` -> `h`) or of a `CONNECT` authority
/// (`h:443` -> `h`); `None` for a path.
pub(crate) fn url_host(target: &str) -> Option<&str> {
    if target.starts_with('/') || target.is_empty() {
        return None;
    }
    let rest = target.split_once("://").map_or(target, |(_, r)| r);
    let auth = rest.split(['/', '?', '#']).next()?;
    let auth = auth.rsplit('@').next()?;
    let host = if let Some(v6) = auth.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        auth.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

/// The explicit port of an absolute URL or `CONNECT` authority (`h:443` -> 443).
pub(crate) fn url_port(target: &str) -> Option<u16> {
    if target.starts_with('/') {
        return None;
    }
    let rest = target.split_once("://").map_or(target, |(_, r)| r);
    let auth = rest.split(['/', '?', '#']).next()?;
    let (_, p) = auth.rsplit_once(':')?;
    if p.ends_with(']') {
        return None;
    }
    build::port(p)
}

/// Month number of an English month abbreviation (`Jan`..`Dec`, any case).
pub(crate) fn month(s: &str) -> Option<u32> {
    const M: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let s = s.get(..3)?;
    M.iter()
        .position(|m| m.eq_ignore_ascii_case(s))
        .and_then(|i| u32::try_from(i + 1).ok())
}

/// `10/Oct/2000:13:55:36 -0700` or `06/Feb/2009:12:14:14.655` (no offset: UTC).
pub(crate) fn clf_time(s: &str) -> Option<Timestamp> {
    let (stamp, offset) = match s.trim().split_once(' ') {
        Some((a, b)) => (a, Some(b)),
        None => (s.trim(), None),
    };
    let mut it = stamp.splitn(3, '/');
    let day: u32 = it.next()?.parse().ok()?;
    let mon = month(it.next()?)?;
    let (year, tod) = it.next()?.split_once(':')?;
    let date = chrono::NaiveDate::from_ymd_opt(year.parse().ok()?, mon, day)?;
    let tod = crate::time::time_of_day(tod)?;
    let naive = chrono::NaiveDateTime::new(date, tod);
    match offset.and_then(crate::time::parse_offset) {
        Some(off) => naive
            .and_local_timezone(off)
            .single()
            .map(|t| t.with_timezone(&chrono::Utc)),
        None => Some(naive.and_utc()),
    }
}

/// The end of a `"..."` value starting after its opening quote (a `\"` inside does not end it).
pub(crate) fn quoted_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// The quoted values after the status and size: referer, user agent, then extras.
fn quoted_values(mut s: &str) -> impl Iterator<Item = &str> {
    std::iter::from_fn(move || {
        let open = s.find('"')?;
        let rest = s.get(open + 1..)?;
        let end = quoted_end(rest)?;
        s = rest.get(end + 1..)?;
        rest.get(..end)
    })
}

/// The parts of an access line before its `[time]`.
struct Head<'a> {
    vhost: Option<&'a str>,
    client: Option<&'a str>,
    user: Option<&'a str>,
}

/// Splits `[vhost] client[, ...] ident user` (the text before `[`).
fn head(pre: &str) -> Option<Head<'_>> {
    let pre = pre.trim_end();
    let (rest, user) = pre.rsplit_once(' ')?;
    let (rest, _ident) = rest.trim_end().rsplit_once(' ')?;
    let rest = rest.trim();
    if rest.is_empty() {
        return None;
    }
    // a first word not ending a list item is the virtual host when more words follow
    let (vhost, clients) = match rest.split_once(' ') {
        Some((first, more)) if !first.ends_with(',') && !first.starts_with('"') => {
            (Some(first), more.trim_start())
        }
        _ => (None, rest),
    };
    let client = clients
        .split([' ', ','])
        .map(|w| w.trim_matches('"'))
        .find(|w| !w.is_empty());
    Some(Head {
        vhost,
        client,
        user: build::present(Some(user)),
    })
}

/// Normalises one access line; `None` when the line does not have the layout.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let t = input.text.trim();
    // a syslog tag left in the text (`nginx: `, `httpd[12]: `): a vhost never ends with `:`
    let t = match t.split_once(' ') {
        Some((tag, rest)) if tag.ends_with(':') && build::ip(tag).is_none() => rest.trim_start(),
        _ => t,
    };
    let open = t.find(" [")?;
    let after = t.get(open + 2..)?;
    let close = after.find("] \"")?;
    let time = clf_time(after.get(..close)?)?;
    let h = head(t.get(..open)?)?;
    let req_all = after.get(close + 3..)?;
    let req_end = quoted_end(req_all)?;
    let req = req_all.get(..req_end)?;
    let mut tail = req_all.get(req_end + 1..)?.split_whitespace();
    let status: Option<u16> = tail.next().and_then(|s| s.parse().ok());
    let status = status.filter(|s| (100..1000).contains(s))?;
    let bytes = tail.next().and_then(|b| b.parse::<u64>().ok());
    let mut quoted = quoted_values(req_all.get(req_end + 1..)?);
    let _referer = quoted.next();
    let ua = quoted.next().and_then(|u| build::present(Some(u)));
    let rl = request_line(req);
    let (vhost_ip, vhost_port, vhost_name) = match h.vhost {
        Some(v) => match build::addr_colon_port(v) {
            (Some(a), p) => (Some(a), p, None),
            (None, _) => {
                let (name, port) = match v.rsplit_once(':') {
                    Some((n, p)) => (n, build::port(p)),
                    None => (v, None),
                };
                (None, port, build::present(Some(name)))
            }
        },
        None => (None, None, None),
    };
    let domain = vhost_name.or_else(|| rl.target.and_then(url_host));
    let fields = LogFields {
        src_ip: h.client.and_then(build::ip),
        dst_ip: vhost_ip,
        dst_port: vhost_port,
        user: h.user.map(build::clip),
        domain: domain.map(build::clip),
        url: rl.target.map(build::clip),
        http_method: rl.method.map(build::clip),
        http_status: Some(status),
        user_agent: ua.map(build::clip),
        received_bytes: bytes,
        protocol: Some("http".to_string()),
        ..Default::default()
    };
    let sev = if status >= 500 {
        Severity::Low
    } else {
        Severity::Info
    };
    let kind = Kind::GenericLog(GenericLog {
        format: None,
        reason: Some("web server access log".to_string()),
        app_name: None,
    });
    Some(Draft::new(kind, sev).time(Some(time)).fields(fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};

    fn fields(line: &str) -> LogFields {
        let n = auto(line, "web-access");
        assert!(matches!(n.message.kind, Kind::GenericLog(_)));
        *n.message.common.fields.expect("fields")
    }

    #[test]
    fn every_layout_sample_is_read() {
        for (name, line) in LAYOUT {
            let f = fields(line);
            assert!(f.src_ip.is_some(), "{name}");
            assert!(f.http_method.is_some() && f.url.is_some(), "{name}");
            assert!(f.http_status.is_some(), "{name}");
        }
    }

    #[test]
    fn vhost_client_list_user_and_absolute_url() {
        let f = fields(LAYOUT[0].1);
        assert_eq!(f.domain.as_deref(), Some("www.example.com"));
        assert_eq!(f.dst_port, Some(443));
        assert_eq!(f.user.as_deref(), Some("alice"));
        assert_eq!(f.user_agent.as_deref(), Some("curl/8.0"));
        let f = fields(LAYOUT[1].1);
        assert_eq!(f.src_ip, ip("198.51.100.7"));
        let f = fields(LAYOUT[4].1);
        assert_eq!(f.domain.as_deref(), Some("www.example.org"));
        assert_eq!(f.url.as_deref(), Some("http://www.example.org/a?b=1"));
        let f = fields(
            "203.0.113.5:8080 2001:db8::7 - - [03/Jul/2024:21:07:15 -0300] \"\" 400 150 \"-\" \"-\"",
        );
        assert_eq!(f.dst_ip, ip("203.0.113.5"));
        assert_eq!(f.src_ip, ip("2001:db8::7"));
        assert_eq!(f.http_method, None);
    }

    #[test]
    fn times_are_read_with_their_offset() {
        let t = clf_time("10/Oct/2000:13:55:36 -0700").unwrap();
        assert_eq!(t.to_rfc3339(), "2000-10-10T20:55:36+00:00");
        assert!(clf_time("06/Feb/2009:12:14:14.655").is_some());
        assert!(clf_time("99/Foo/2009:12:14:14").is_none());
    }
}
