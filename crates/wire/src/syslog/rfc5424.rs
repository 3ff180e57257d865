//! RFC 5424: `VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]`
//! (the caller has consumed `<PRI>1 `).

use super::{Anomalies, ParseOptions, Protocol, SyslogMessage, sd, time};

const BOM: &str = "\u{feff}";

/// Splits the next space-terminated field; `None` at the end of input.
fn field<'a>(s: &mut &'a str) -> Option<&'a str> {
    if s.is_empty() {
        return None;
    }
    let (f, rest) = match s.find(' ') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (*s, ""),
    };
    *s = rest;
    Some(f)
}

fn nil_or<'a>(f: &'a str, max: usize, anomalies: &mut Anomalies) -> Option<&'a str> {
    if f == "-" || f.is_empty() {
        return None;
    }
    if f.len() > max {
        anomalies.insert(Anomalies::FIELD_TOO_LONG);
    }
    Some(f)
}

pub(super) fn parse<'a>(
    pri: Option<u8>,
    input: &'a str,
    mut anomalies: Anomalies,
    opts: &ParseOptions,
) -> SyslogMessage<'a> {
    let mut m = SyslogMessage::empty(Protocol::Rfc5424, pri, anomalies);
    let mut s = input;
    let Some(ts) = field(&mut s) else {
        anomalies.insert(Anomalies::TRUNCATED_HEADER);
        anomalies.insert(Anomalies::NO_TIMESTAMP);
        anomalies.insert(Anomalies::NO_HOSTNAME);
        m.anomalies = anomalies;
        return m;
    };
    if ts == "-" {
        anomalies.insert(Anomalies::NO_TIMESTAMP);
    } else {
        match time::rfc3339(ts.as_bytes(), &opts.tz) {
            Some((t, used, long)) if used == ts.len() => {
                m.timestamp = Some(t);
                if long {
                    anomalies.insert(Anomalies::LONG_FRACTION);
                }
            }
            _ => {
                anomalies.insert(Anomalies::BAD_TIMESTAMP);
                anomalies.insert(Anomalies::NO_TIMESTAMP);
            }
        }
    }
    let fields: [(usize, &mut Option<&'a str>); 4] = [
        (255, &mut m.hostname),
        (48, &mut m.app_name),
        (128, &mut m.proc_id),
        (32, &mut m.msg_id),
    ];
    for (max, slot) in fields {
        match field(&mut s) {
            Some(f) => *slot = nil_or(f, max, &mut anomalies),
            None => {
                anomalies.insert(Anomalies::TRUNCATED_HEADER);
                break;
            }
        }
    }
    if m.hostname.is_none() {
        anomalies.insert(Anomalies::NO_HOSTNAME);
    }
    // STRUCTURED-DATA: NILVALUE, valid elements, or (like rsyslog) nothing, MSG starting here.
    if let Some(rest) = s.strip_prefix('-') {
        if rest.is_empty() || rest.starts_with(' ') {
            s = rest;
        } else {
            anomalies.insert(Anomalies::BAD_SD);
        }
    } else if s.starts_with('[') {
        match sd::validate(s) {
            Ok((len, lenient)) => {
                m.structured_data = Some(&s[..len]);
                s = &s[len..];
                if lenient {
                    anomalies.insert(Anomalies::LENIENT_SD);
                }
            }
            Err(()) => anomalies.insert(Anomalies::BAD_SD),
        }
    } else if !s.is_empty() {
        anomalies.insert(Anomalies::BAD_SD);
    }
    let mut msg = s.strip_prefix(' ').unwrap_or(s);
    if let Some(rest) = msg.strip_prefix(BOM) {
        m.bom = true;
        msg = rest;
    }
    m.msg = msg;
    m.content = msg;
    m.text = msg;
    m.anomalies = anomalies;
    m
}
