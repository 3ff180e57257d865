//! RFC 3164 and relatives, read the way rsyslog's `pmrfc3164` reads them (the caller has consumed
//! the PRI, if any), plus Cisco IOS sequence numbers and time markers.

use super::{Anomalies, ParseOptions, Protocol, SyslogMessage, time};

/// rsyslog's limit on a hostname (CONF_HOSTNAME_MAXSIZE - 1).
const MAX_HOSTNAME: usize = 255;
/// rsyslog's limit on a tag (CONF_TAG_MAXSIZE - 2).
const MAX_TAG: usize = 510;

/// syslogd's `last message repeated N times`, alone after the PRI (rsyslog's `pmlastmsg`).
fn last_message_repeated(s: &str) -> bool {
    const OPEN: &str = "last message repeated ";
    const CLOSE: &str = " times";
    let Some(head) = s.get(..OPEN.len()) else {
        return false;
    };
    if !head.eq_ignore_ascii_case(OPEN) {
        return false;
    }
    let rest = &s[OPEN.len()..];
    let n = rest.bytes().take_while(u8::is_ascii_digit).count();
    n > 0 && rest[n..].eq_ignore_ascii_case(CLOSE)
}

/// A timestamp at the start of `s`: RFC 3339 (followed by a space or the end) or BSD.
fn timestamp(
    s: &str,
    opts: &ParseOptions,
) -> Option<(chrono::DateTime<chrono::FixedOffset>, usize, bool)> {
    let b = s.as_bytes();
    if let Some((t, n, _)) = time::rfc3339(b, &opts.tz) {
        return match b.get(n) {
            None => Some((t, n, true)),
            Some(b' ') => Some((t, n + 1, true)),
            Some(_) => None,
        };
    }
    time::bsd(b, &opts.tz, opts.received, opts.year_margin).map(|x| (x.time, x.len, x.nonstandard))
}

/// Cisco IOS sequence number `digits: ` at the start of `s`; its length without `: `.
fn cisco_sequence(s: &str) -> Option<usize> {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    (n > 0 && n <= 10 && s.as_bytes().get(n..n + 2) == Some(b": ")).then_some(n)
}

fn hostname_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-')
}

/// rsyslog's hostname rule at the start of `s`: `(hostname, bytes to skip)`.
fn hostname(s: &str) -> Option<(&str, usize)> {
    let b = s.as_bytes();
    if b.first() == Some(&b'[') {
        let n = b[1..]
            .iter()
            .take_while(|c| hostname_byte(**c) || **c == b':')
            .count();
        if n > 0 && b.get(1 + n) == Some(&b']') {
            return match b.get(2 + n) {
                None => Some((&s[1..1 + n], 2 + n)),
                Some(b' ') => Some((&s[1..1 + n], 3 + n)),
                Some(_) => None,
            };
        }
        return None;
    }
    let n = b
        .iter()
        .take(MAX_HOSTNAME)
        .take_while(|c| hostname_byte(**c))
        .count();
    if n == b.len() && n > 0 {
        return Some((s, n));
    }
    if n > 0 && b[n - 1].is_ascii_alphanumeric() && b.get(n) == Some(&b' ') {
        return Some((&s[..n], n + 1));
    }
    None
}

/// Program name and pid of a tag carrying `[pid]` (`sshd[42]:`). `None` for a tag without one
/// (`sshd:`): a first word followed by a colon is as often text (`error: disk full`, `%ASA-...:`)
/// as a program name, so it is left in the text rather than guessed to be the app name.
fn split_tag(tag: &str) -> Option<(&str, &str)> {
    let body = tag.strip_suffix(':').unwrap_or(tag);
    let open = body.find('[').filter(|&o| o > 0)?;
    body.ends_with(']')
        .then(|| (&body[..open], &body[open + 1..body.len() - 1]))
}

pub(super) fn parse<'a>(
    pri: Option<u8>,
    input: &'a str,
    mut anomalies: Anomalies,
    opts: &ParseOptions,
) -> SyslogMessage<'a> {
    let trimmed = input.trim_start_matches(' ');
    if last_message_repeated(trimmed) {
        anomalies.insert(Anomalies::NO_TIMESTAMP);
        anomalies.insert(Anomalies::NO_HOSTNAME);
        let mut m = SyslogMessage::empty(Protocol::Rfc3164, pri, anomalies);
        m.tag = Some("");
        m.msg = trimmed;
        m.content = trimmed;
        m.text = trimmed;
        return m;
    }
    let mut m = SyslogMessage::empty(Protocol::Rfc3164, pri, anomalies);
    let mut s = input;

    // Cisco IOS: `123: ` sequence number, optional `origin: `, `*` or `.` marker, timestamp.
    let mut cisco = false;
    if let Some(n) = cisco_sequence(s) {
        let after = &s[n + 2..];
        let mut tries: [(Option<&str>, &str); 2] = [(None, after), (None, "")];
        let mut k = 1;
        let origin_len = after
            .bytes()
            .take(MAX_HOSTNAME)
            .take_while(|c| hostname_byte(*c))
            .count();
        if origin_len > 0 && after.get(origin_len..origin_len + 2) == Some(": ") {
            tries[1] = (Some(&after[..origin_len]), &after[origin_len + 2..]);
            k = 2;
        }
        for &(origin, rest) in &tries[..k] {
            let (mk, body) = marker(rest);
            if let Some((t, used, _)) = timestamp(body, opts) {
                m.sequence = Some(&s[..n]);
                m.time_marker = mk;
                m.timestamp = Some(t);
                m.hostname = origin;
                anomalies.insert(Anomalies::NONSTANDARD_TIMESTAMP);
                s = &body[used..];
                cisco = true;
                break;
            }
        }
        if !cisco && after.starts_with('%') {
            m.sequence = Some(&s[..n]);
            s = after;
            cisco = true;
            anomalies.insert(Anomalies::NO_TIMESTAMP);
        }
    }
    if !cisco {
        let (mk, body) = marker(s);
        if let Some((t, used, nonstd)) = timestamp(body, opts) {
            m.timestamp = Some(t);
            m.time_marker = mk;
            if nonstd {
                anomalies.insert(Anomalies::NONSTANDARD_TIMESTAMP);
            }
            s = &body[used..];
        } else if let Some(t1) = s.strip_prefix(' ')
            && let Some((t, used, nonstd)) = timestamp(t1, opts)
        {
            // HP ProCurve and others send one space too many after the PRI.
            m.timestamp = Some(t);
            if nonstd {
                anomalies.insert(Anomalies::NONSTANDARD_TIMESTAMP);
            }
            s = &t1[used..];
        } else {
            anomalies.insert(Anomalies::NO_TIMESTAMP);
        }
    }
    let had_timestamp = m.timestamp.is_some();
    // What normalisers get when there is no timestamp: everything after the PRI (and sequence).
    let body_without_header = s;

    if m.hostname.is_none()
        && !(cisco && s.starts_with('%'))
        && !s.is_empty()
        && let Some((h, used)) = hostname(s)
    {
        m.hostname = Some(h);
        s = &s[used..];
    }
    if m.hostname.is_none() || !had_timestamp {
        anomalies.insert(Anomalies::NO_HOSTNAME);
    }

    let content = s;
    let b = s.as_bytes();
    let mut n = 0;
    while n < b.len() && n < MAX_TAG && b[n] != b':' && b[n] != b' ' {
        n += 1;
    }
    // Tag bytes stop at ASCII ':' or ' ' or at MAX_TAG; back up to a char boundary for the latter.
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    if b.get(n) == Some(&b':') {
        n += 1;
    }
    let tag = &s[..n];
    m.tag = Some(tag);
    m.msg = &s[n..];
    m.content = content;
    if let Some((app, pid)) = split_tag(tag) {
        m.app_name = Some(app);
        m.proc_id = Some(pid);
    }
    m.text = if had_timestamp || cisco {
        content.trim_start_matches(' ')
    } else {
        body_without_header
    };
    m.anomalies = anomalies;
    m
}

/// `*` or `.` before a timestamp (Cisco: clock not authoritative / sync lost).
fn marker(s: &str) -> (Option<char>, &str) {
    match s.as_bytes() {
        [c @ (b'*' | b'.'), next, ..] if next.is_ascii_alphanumeric() => {
            (Some(*c as char), &s[1..])
        }
        _ => (None, s),
    }
}
