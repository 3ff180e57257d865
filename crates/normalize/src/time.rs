//! Vendor time stamps to UTC.
//!
//! Contract: every function returns `None` for anything it cannot read exactly (never guesses a
//! field); local times without an offset are read as UTC.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

use pharos_model::Timestamp;

fn num(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 9 {
        return None;
    }
    // at most 9 digits: no overflow
    s.bytes().try_fold(0u32, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
    })
}

/// `s.split(|c| seps.contains(c))` for ASCII separators, a byte at a time.
fn split_ascii<'a>(s: &'a str, seps: &'a [u8]) -> impl Iterator<Item = &'a str> + 'a {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.bytes().position(|b| seps.contains(&b)) {
            Some(at) => {
                rest = r.get(at + 1..);
                r.get(..at)
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// `2016-06-15` or `2016/06/15`.
pub fn date(s: &str) -> Option<NaiveDate> {
    let s = crate::build::trim(s);
    let mut it = split_ascii(s, b"-/");
    let y = num(it.next()?)?;
    let m = num(it.next()?)?;
    let d = num(it.next()?)?;
    if it.next().is_some() {
        return None;
    }
    NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)
}

/// `10:42:31`, `10:42:31.123456` (also tolerates a space after a colon, seen in old FortiOS).
pub fn time_of_day(s: &str) -> Option<NaiveTime> {
    let s = crate::build::trim(s);
    let (hms, frac) = match s.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let mut it = split_ascii(hms, b":");
    let h = num(crate::build::trim(it.next()?))?;
    let m = num(crate::build::trim(it.next()?))?;
    let sec = num(crate::build::trim(it.next().unwrap_or("0")))?;
    let nanos = match frac {
        Some(f) if !f.is_empty() && f.len() <= 9 => num(f)? * 10u32.pow(9 - f.len() as u32),
        Some(_) => return None,
        None => 0,
    };
    NaiveTime::from_hms_nano_opt(h, m, sec, nanos)
}

/// A date and a time of day, with an optional `+0200` / `-03:00` offset.
pub fn date_time(d: &str, t: &str, offset: Option<&str>) -> Option<Timestamp> {
    let naive = NaiveDateTime::new(date(d)?, time_of_day(t)?);
    match offset.and_then(parse_offset) {
        Some(off) => off
            .from_local_datetime(&naive)
            .single()
            .map(|dt| dt.with_timezone(&Utc)),
        None => Some(Utc.from_utc_datetime(&naive)),
    }
}

/// `+0200`, `-03:00`, `+02`, `Z`.
pub fn parse_offset(s: &str) -> Option<FixedOffset> {
    let s = s.trim();
    if s == "Z" || s == "UTC" || s == "GMT" {
        return FixedOffset::east_opt(0);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, s.get(1..)?),
        b'-' => (-1, s.get(1..)?),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    let (h, m) = match digits.len() {
        2 => (num(&digits)?, 0),
        4 => (num(digits.get(..2)?)?, num(digits.get(2..)?)?),
        _ => return None,
    };
    FixedOffset::east_opt(sign * (h as i32 * 3600 + m as i32 * 60))
}

/// `2017-02-14T12:35:20.918367+0100`, RFC 3339, or `2021-07-12 09:46:23` (taken as UTC).
pub fn iso(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if s.len() > 64 {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(t.with_timezone(&Utc));
    }
    let (d, t) = s.split_once(['T', ' '])?;
    date_time(d, t.trim_end_matches('Z'), None)
}

/// Seconds, milliseconds, microseconds or nanoseconds since the epoch (by magnitude).
pub fn epoch(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i64 = s.parse().ok()?;
    let nanos: i64 = match s.len() {
        0..=11 => v.checked_mul(1_000_000_000)?,
        12..=14 => v.checked_mul(1_000_000)?,
        15..=17 => v.checked_mul(1_000)?,
        _ => v,
    };
    Some(DateTime::from_timestamp_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vendor_stamps() {
        let t = date_time("2016-06-15", "10:42:31", Some("+0200")).unwrap();
        assert_eq!(t.to_rfc3339(), "2016-06-15T08:42:31+00:00");
        assert_eq!(
            iso("2017-02-14T12:35:20.918367+0100").unwrap().to_rfc3339(),
            "2017-02-14T11:35:20.918367+00:00"
        );
        assert_eq!(
            epoch("1557937550").unwrap().to_rfc3339(),
            "2019-05-15T16:25:50+00:00"
        );
        assert_eq!(
            epoch("1557937550000000000").unwrap().to_rfc3339(),
            "2019-05-15T16:25:50+00:00"
        );
        assert!(date_time("2020/00/00", "00:00:00", None).is_none());
        assert!(time_of_day("10: 13:03").is_some());
    }
}
