//! Apache httpd and NGINX error logs.
//!
//! Forms (table [`FORMS`], each with a sample the module test reads): Apache 2.2
//! `[Wed Jan 11 08:05:41 2023] [error] [client 192.0.2.1] text`, Apache 2.4
//! `[Sat Feb 04 19:30:12.004411 2023] [module:level] [pid P:tid T] [client A:P] AH01234: text[,
//! referer: URL]`, a bare startup message `AH00558: apache2: text`, and NGINX
//! `2023/01/01 00:00:00 [level] pid#tid: *conn text, client: A, server: S, request: "GET /x
//! HTTP/1.1", host: "h"`. An error line is a log: a generic log with its fields (src-ip/src-port
//! = the client, message-id = the `AHnnnnn` code, application = the Apache module, http-method,
//! url and domain from the NGINX request and host, file-name for missing files), its severity
//! from the line's level.

use pharos_model::ident::UserActivityType;
use pharos_model::{GenericLog, Kind, LogFields, Severity, Timestamp};

use crate::LogInput;
use crate::build::{self, Draft};
use crate::vendors::{Probe, probe};

use super::web_access::{month, quoted_end, request_line, url_host};

/// The forms read, with a sample line each.
#[cfg_attr(not(test), allow(dead_code))]
pub const FORMS: &[(&str, &str)] = &[
    (
        "apache 2.2",
        "[Wed Jan 11 08:05:41 2023] [error] [client 192.0.2.33] File does not exist: /srv/htdocs/robots.txt",
    ),
    (
        "apache 2.4",
        "[Sat Feb 04 19:30:12.004411 2023] [core:error] [pid 2214:tid 139911] [client 198.51.100.20:52114] AH00126: Invalid URI in request GET /../x HTTP/1.1",
    ),
    (
        "apache 2.4 referer",
        "[Sun Feb 05 07:14:55.771020 2023] [authz_core:error] [pid 2290] [client 198.51.100.21:40022] AH01630: client denied by server configuration: /srv/www/private, referer: http://www.example.com/",
    ),
    (
        "apache startup",
        "AH00558: httpd: Could not reliably determine the server's fully qualified domain name, using 10.8.0.2",
    ),
    (
        "nginx",
        "2023/03/01 10:20:30 [error] 1234#1234: *77 open() \"/usr/share/nginx/html/missing\" failed (2: No such file or directory), client: 203.0.113.9, server: www.example.com, request: \"GET /missing HTTP/1.1\", host: \"www.example.com\"",
    ),
];

/// `[... ] [` (Apache), `YYYY/MM/DD hh:mm:ss [` (NGINX), or a leading `AHnnnnn:` code.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    let t = p.input.text.as_bytes();
    match t.first() {
        Some(b'[') => probe!(p, "] ["),
        Some(b'A') => ah_code(p.input.text).is_some(),
        Some(b'0'..=b'9') => t.get(4) == Some(&b'/') && probe!(p, " ["),
        _ => probe!(p, "nginx") || probe!(p, "] [client "),
    }
}

/// `AH01234` at the start of `s` (followed by `:`).
fn ah_code(s: &str) -> Option<&str> {
    let code = s.get(..7)?;
    let ok = code.starts_with("AH") && code.bytes().skip(2).all(|b| b.is_ascii_digit());
    (ok && s.as_bytes().get(7) == Some(&b':')).then_some(code)
}

/// Level word (`error`, `core:error`, `warn`) on Pharos' scale.
fn level(l: &str) -> Severity {
    match l.rsplit(':').next().unwrap_or(l) {
        "emerg" | "alert" => Severity::High,
        "crit" => Severity::Middle,
        "error" | "warn" => Severity::Low,
        _ => Severity::Info,
    }
}

/// `Wed Jan 11 08:05:41 2023` / `Sat Feb 04 19:30:12.004411 2023`.
pub(crate) fn apache_time(s: &str) -> Option<Timestamp> {
    let mut it = s.split_whitespace();
    let _dow = it.next()?;
    let mon = month(it.next()?)?;
    let day: u32 = it.next()?.parse().ok()?;
    let tod = crate::time::time_of_day(it.next()?)?;
    let year: i32 = it.next()?.parse().ok()?;
    let date = chrono::NaiveDate::from_ymd_opt(year, mon, day)?;
    Some(chrono::NaiveDateTime::new(date, tod).and_utc())
}

/// What one error line holds.
#[derive(Default)]
struct Parsed<'a> {
    time: Option<Timestamp>,
    level: Option<&'a str>,
    module: Option<&'a str>,
    client: Option<&'a str>,
    code: Option<&'a str>,
    message: &'a str,
}

/// `[time] [module:level] [pid ...] [client a:p] AHnnnnn: message`.
fn apache(t: &str) -> Option<Parsed<'_>> {
    let mut p = Parsed::default();
    let mut rest = t;
    let mut first = true;
    while let Some(inner) = rest.strip_prefix('[') {
        let close = inner.find(']')?;
        let part = inner.get(..close)?;
        rest = inner.get(close + 1..)?.trim_start();
        if first {
            p.time = Some(apache_time(part)?);
            first = false;
        } else if let Some(c) = part.strip_prefix("client ") {
            p.client = Some(c);
        } else if part.starts_with("pid ") || part.starts_with("remote ") {
        } else if p.level.is_none() {
            match part.split_once(':') {
                Some((m, l)) => {
                    p.module = Some(m);
                    p.level = Some(l);
                }
                None => p.level = Some(part),
            }
        }
    }
    if first || p.level.is_none() {
        return None;
    }
    p.code = ah_code(rest);
    p.message = match p.code {
        Some(_) => rest.get(8..).unwrap_or("").trim_start(),
        None => rest,
    };
    Some(p)
}

/// `YYYY/MM/DD hh:mm:ss [level] pid#tid: *conn message`.
fn nginx(t: &str) -> Option<Parsed<'_>> {
    let (d, rest) = t.split_once(' ')?;
    let (tod, rest) = rest.split_once(" [")?;
    let time = crate::time::date_time(d, tod, None)?;
    let (lvl, rest) = rest.split_once("] ")?;
    let rest = rest
        .split_once(": ")
        .map_or(rest, |(pid, r)| if pid.contains('#') { r } else { rest });
    let rest = match rest.strip_prefix('*') {
        Some(r) => r.split_once(' ').map_or(r, |(_, m)| m),
        None => rest,
    };
    Some(Parsed {
        time: Some(time),
        level: Some(lvl),
        message: rest,
        ..Default::default()
    })
}

/// The value of `, key: value` in an NGINX message (quotes removed).
fn nginx_value<'a>(m: &'a str, key: &str) -> Option<&'a str> {
    let at = m.find(key)? + key.len();
    let v = m.get(at..)?;
    if let Some(q) = v.strip_prefix('"') {
        return q.get(..quoted_end(q)?);
    }
    v.split(',').next().map(str::trim)
}

/// Normalises one error line; `None` when it has none of the forms.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let t = super::linux_auth::after_tag(input, &["nginx", "httpd", "apache2", "apache"]).trim();
    let p = match t.as_bytes().first()? {
        b'[' => apache(t)?,
        b'A' => {
            let code = ah_code(t)?;
            Parsed {
                code: Some(code),
                message: t.get(8..).unwrap_or("").trim_start(),
                ..Default::default()
            }
        }
        b'0'..=b'9' => nginx(t)?,
        _ => return None,
    };
    let m = p.message;
    let (mut src_ip, mut src_port) = p.client.map_or((None, None), build::addr_colon_port);
    let (mut method, mut url, mut domain) = (None, None, None);
    if p.client.is_none() {
        if let Some(c) = nginx_value(m, ", client: ") {
            (src_ip, src_port) = build::addr_colon_port(c);
        }
        if let Some(r) = nginx_value(m, ", request: ") {
            let rl = request_line(r);
            method = rl.method;
            url = rl.target;
        }
        domain = nginx_value(m, ", host: ")
            .or_else(|| nginx_value(m, ", server: "))
            .or_else(|| url.and_then(url_host));
    }
    let file = m
        .strip_prefix("File does not exist: ")
        .or_else(|| {
            m.split("open() \"")
                .nth(1)
                .and_then(|r| r.split('"').next())
        })
        .map(|f| f.split(", referer").next().unwrap_or(f));
    let user = auth_user(m);
    let mut fields = LogFields {
        src_ip,
        src_port,
        message_id: p.code.map(build::clip),
        application: p.module.map(build::clip),
        http_method: method.map(build::clip),
        url: url.map(build::clip),
        domain: domain
            .and_then(|d| build::present(Some(d)))
            .map(build::clip),
        file_name: file.map(build::clip),
        user: user.map(build::clip),
        ..Default::default()
    };
    // a line with nothing but its text still says which server wrote it
    if fields.application.is_none() {
        let server = if t.starts_with('2') {
            "nginx"
        } else {
            "apache"
        };
        fields.application = Some(server.to_string());
    }
    let failed_auth = user.is_some() && AUTH_FAILURES.iter().any(|w| m.contains(w));
    let (kind, sev) = if failed_auth {
        let kind = build::user_activity(
            user,
            None,
            src_ip,
            src_port,
            UserActivityType::FailedLogin,
            Some(m),
        );
        (kind, Severity::Low)
    } else {
        let kind = Kind::GenericLog(GenericLog {
            format: None,
            reason: Some("web server error log".to_string()),
            app_name: None,
        });
        (kind, p.level.map_or(Severity::Info, level))
    };
    let fields = build::fields_beyond_case(&kind, fields);
    Some(Draft::new(kind, sev).time(p.time).summary(m).fields(fields))
}

/// Words of a failed HTTP authentication (Apache `AH01617`/`AH01618`, NGINX basic auth).
const AUTH_FAILURES: &[&str] = &[
    "password mismatch",
    "Password Mismatch",
    "authentication failure",
    "was not found in",
    "not found:",
];

/// The user an HTTP authentication message names: Apache `user bob: ...` / `user bob not found`,
/// NGINX `user "bob": password mismatch`.
fn auth_user(m: &str) -> Option<&str> {
    let rest = m.split_once("user ")?.1;
    let u = match rest.strip_prefix('"') {
        Some(q) => q.split('"').next()?,
        None => rest.split([' ', ':']).next()?,
    };
    (!u.is_empty() && m.find("user ").is_some_and(|at| at < 16)).then_some(u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};

    fn fields(line: &str) -> LogFields {
        let n = auto(line, "web-error");
        *n.message.common.fields.expect("fields")
    }

    #[test]
    fn every_form_sample_is_read() {
        for (name, line) in FORMS {
            let f = fields(line);
            assert!(f.application.is_some(), "{name}");
        }
    }

    #[test]
    fn failed_http_authentication_is_a_failed_login() {
        for (line, user) in [
            (
                "[Mon Mar 13 16:22:09.123456 2023] [auth_basic:error] [pid 3570] [client 192.0.2.40:51822] AH01617: user bob: authentication failure for \"/admin\": Password Mismatch",
                "bob",
            ),
            (
                "[Mon Mar 13 16:22:09.123456 2023] [auth_basic:error] [pid 3570] [client 192.0.2.41:51823] AH01618: user carol not found: /admin",
                "carol",
            ),
            (
                "2023/03/13 16:22:13 [error] 2201#2201: *18 user \"dave\": password mismatch, client: 192.0.2.42, server: www.example.com, request: \"GET /admin HTTP/1.1\", host: \"www.example.com\"",
                "dave",
            ),
            (
                "2023/03/13 16:22:13 [error] 2201#2201: *19 user \"erin\" was not found in \"/etc/nginx/.htpasswd\", client: 192.0.2.43, server: www.example.com, request: \"GET /admin HTTP/1.1\", host: \"www.example.com\"",
                "erin",
            ),
        ] {
            let n = auto(line, "web-error");
            let Kind::UserActivityLog(u) = &n.message.kind else {
                panic!("{line}")
            };
            assert_eq!(u.user, user);
            assert!(!u.ip_address.is_unspecified());
        }
    }

    #[test]
    fn clients_codes_and_requests() {
        let f = fields(FORMS[0].1);
        assert_eq!(f.src_ip, ip("192.0.2.33"));
        assert_eq!(f.file_name.as_deref(), Some("/srv/htdocs/robots.txt"));
        let f = fields(FORMS[1].1);
        assert_eq!(f.src_port, Some(52114));
        assert_eq!(f.message_id.as_deref(), Some("AH00126"));
        assert_eq!(f.application.as_deref(), Some("core"));
        let f = fields(FORMS[4].1);
        assert_eq!(f.src_ip, ip("203.0.113.9"));
        assert_eq!(f.http_method.as_deref(), Some("GET"));
        assert_eq!(f.url.as_deref(), Some("/missing"));
        assert_eq!(f.domain.as_deref(), Some("www.example.com"));
    }
}
