//! Header timestamps: RFC 3339 (RFC 5424 and ISO times in 3164 headers) and RFC 3164 `Mmm dd
//! hh:mm:ss` with rsyslog's and Cisco's variations; time zones and year inference.

use chrono::{
    DateTime, Datelike, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta,
    TimeZone as _, Utc,
};

/// Zone of timestamps that carry none (RFC 3164).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeZone {
    /// Coordinated universal time.
    #[default]
    Utc,
    /// A fixed offset from UTC.
    Fixed(FixedOffset),
    /// The zone of the machine Pharos runs on (TZ, /etc/localtime), daylight saving included.
    Local,
}

impl TimeZone {
    /// Parses `"UTC"`, `"local"`, `"+02:00"`, `"-0530"`, `"Z"`.
    pub fn parse(s: &str) -> Option<Self> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("utc") || t.eq_ignore_ascii_case("gmt") || t == "Z" {
            return Some(Self::Utc);
        }
        if t.eq_ignore_ascii_case("local") {
            return Some(Self::Local);
        }
        let b = t.as_bytes();
        let sign = match b.first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let digits: Vec<u8> = b[1..].iter().copied().filter(|c| *c != b':').collect();
        if digits.len() != 4
            || !digits.iter().all(u8::is_ascii_digit)
            || (b.len() == 6 && b[3] != b':')
        {
            return None;
        }
        let h = i32::from(digits[0] - b'0') * 10 + i32::from(digits[1] - b'0');
        let m = i32::from(digits[2] - b'0') * 10 + i32::from(digits[3] - b'0');
        if h > 23 || m > 59 {
            return None;
        }
        FixedOffset::east_opt(sign * (h * 3600 + m * 60)).map(Self::Fixed)
    }

    /// The local time `t` in this zone (the earlier one when a DST change makes it ambiguous).
    pub fn resolve(&self, t: NaiveDateTime) -> Option<DateTime<FixedOffset>> {
        match self {
            TimeZone::Utc => Some(Utc.from_utc_datetime(&t).fixed_offset()),
            TimeZone::Fixed(off) => off.from_local_datetime(&t).single(),
            TimeZone::Local => match chrono::Local.from_local_datetime(&t) {
                LocalResult::Single(x) | LocalResult::Ambiguous(x, _) => Some(x.fixed_offset()),
                // In the gap of a DST change: read it with the offset in force an hour later.
                LocalResult::None => chrono::Local
                    .from_local_datetime(&(t + chrono::TimeDelta::hours(1)))
                    .earliest()
                    .map(|x| x.fixed_offset() - chrono::TimeDelta::hours(1)),
            },
        }
    }

    /// Display form, as accepted by [`TimeZone::parse`].
    pub fn to_config_string(&self) -> String {
        match self {
            TimeZone::Utc => "UTC".into(),
            TimeZone::Local => "local".into(),
            TimeZone::Fixed(o) => o.to_string(),
        }
    }
}

/// How far back [`infer`] looks for a year that has the date (Feb 29 recurs at most every 8 years).
const YEARS_BACK: i32 = 8;

/// The year of a 3164 `month/day time` (in `tz`) received at `received`: a line is received after
/// it was written, so it is the latest year that does not put the time more than `margin` after
/// `received`. New-Year safe in both directions: a `Dec 31 23:59:59` line received on 1 January is
/// last year's; a `Jan  1 00:00:01` line received on 31 December from a fast clock is next year's
/// while within `margin`; a replayed old log is never dated more than `margin` ahead. `Feb 29` received in a
/// year without one is the most recent past leap year's (unless the next one is within `margin`).
pub(crate) fn infer(
    month: u32,
    day: u32,
    time: NaiveTime,
    tz: &TimeZone,
    received: DateTime<Utc>,
    margin: TimeDelta,
) -> Option<DateTime<FixedOffset>> {
    let latest = received.timestamp() + margin.num_seconds().max(0);
    let y = received.year();
    (y - YEARS_BACK..=y + 1).rev().find_map(|year| {
        let date = NaiveDate::from_ymd_opt(year, month, day)?;
        let t = tz.resolve(date.and_time(time))?;
        (t.timestamp() <= latest).then_some(t)
    })
}

/// Reads up to `max` ASCII digits at `b[*i..]`; `None` if there is none.
pub(crate) fn digits(b: &[u8], i: &mut usize, max: usize) -> Option<u32> {
    let start = *i;
    let mut v: u32 = 0;
    while *i < b.len() && *i - start < max && b[*i].is_ascii_digit() {
        v = v * 10 + u32::from(b[*i] - b'0');
        *i += 1;
    }
    (*i > start).then_some(v)
}

fn exactly(b: &[u8], i: &mut usize, n: usize) -> Option<u32> {
    let start = *i;
    let v = digits(b, i, n)?;
    (*i - start == n).then_some(v)
}

fn expect(b: &[u8], i: &mut usize, c: u8) -> Option<()> {
    if b.get(*i) == Some(&c) {
        *i += 1;
        Some(())
    } else {
        None
    }
}

/// An RFC 3339 timestamp at the start of `b`; returns the time, the bytes used and whether the
/// fraction was longer than 6 digits. Without an offset, `tz` applies.
pub(crate) fn rfc3339(b: &[u8], tz: &TimeZone) -> Option<(DateTime<FixedOffset>, usize, bool)> {
    let mut i = 0;
    let year = exactly(b, &mut i, 4)?;
    expect(b, &mut i, b'-')?;
    let month = exactly(b, &mut i, 2)?;
    expect(b, &mut i, b'-')?;
    let day = exactly(b, &mut i, 2)?;
    match b.get(i) {
        Some(b'T' | b't') => i += 1,
        _ => return None,
    }
    let h = exactly(b, &mut i, 2)?;
    expect(b, &mut i, b':')?;
    let m = exactly(b, &mut i, 2)?;
    expect(b, &mut i, b':')?;
    let s = exactly(b, &mut i, 2)?;
    let mut nanos = 0u32;
    let mut long_fraction = false;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        long_fraction = n > 6;
        for _ in n..9 {
            nanos *= 10;
        }
    }
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    let time = NaiveTime::from_hms_nano_opt(h, m, s, nanos)?;
    if s > 59 {
        return None;
    }
    let naive = date.and_time(time);
    let t = match b.get(i) {
        Some(b'Z' | b'z') => {
            i += 1;
            Utc.from_utc_datetime(&naive).fixed_offset()
        }
        Some(&c @ (b'+' | b'-')) => {
            i += 1;
            let oh = exactly(b, &mut i, 2)?;
            expect(b, &mut i, b':')?;
            let om = exactly(b, &mut i, 2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = (oh * 3600 + om * 60) as i32;
            let off = FixedOffset::east_opt(if c == b'-' { -secs } else { secs })?;
            off.from_local_datetime(&naive).single()?
        }
        _ => tz.resolve(naive)?,
    };
    Some((t, i, long_fraction))
}

/// What a 3164 timestamp gave.
pub(crate) struct Bsd {
    pub time: DateTime<FixedOffset>,
    /// Bytes used, including the separator after it (`:` and/or one space).
    pub len: usize,
    /// Year, fraction or zone name present.
    pub nonstandard: bool,
}

/// An RFC 3164 timestamp at the start of `b` as rsyslog reads it: month name (any case), one
/// space, an optional second space, a one- or two-digit day, a space, an optional year
/// (`1970 < y < 2100`) and space, `hh:mm:ss`; plus Cisco's `.mmm` fraction and zone name; then an
/// optional `:` and a space or the end. Without a year, [`infer`] picks it from `received` and
/// `margin`.
pub(crate) fn bsd(
    b: &[u8],
    tz: &TimeZone,
    received: DateTime<Utc>,
    margin: TimeDelta,
) -> Option<Bsd> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let name = b.get(..3)?;
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(name))? as u32 + 1;
    let mut i = 3;
    expect(b, &mut i, b' ')?;
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    let day = digits(b, &mut i, 2)?;
    if !(1..=31).contains(&day) {
        return None;
    }
    expect(b, &mut i, b' ')?;
    let mut nonstandard = false;
    let mut hour = digits(b, &mut i, 4)?;
    let mut year = None;
    if hour > 1970 && hour < 2100 {
        year = Some(hour as i32);
        nonstandard = true;
        expect(b, &mut i, b' ')?;
        hour = digits(b, &mut i, 2)?;
    }
    if hour > 23 {
        return None;
    }
    expect(b, &mut i, b':')?;
    let minute = digits(b, &mut i, 2)?;
    expect(b, &mut i, b':')?;
    let second = digits(b, &mut i, 2)?;
    if minute > 59 || second > 59 {
        return None;
    }
    let mut nanos = 0;
    if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + (b[i] - b'0') as u32;
            }
            i += 1;
        }
        for _ in (i - start).min(9)..9 {
            nanos *= 10;
        }
        nonstandard = true;
    }
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    // Cisco: `Mar  1 00:00:12.123 UTC:`: a zone name of 2 to 5 capitals before the colon.
    let mut zone = None;
    if b.get(i) == Some(&b' ') {
        let z0 = i + 1;
        let mut j = z0;
        while j < b.len() && j - z0 < 5 && b[j].is_ascii_uppercase() {
            j += 1;
        }
        if j - z0 >= 2 && b.get(j) == Some(&b':') {
            zone = Some(&b[z0..j]);
            i = j;
            nonstandard = true;
        }
    }
    if b.get(i) == Some(&b':') {
        i += 1;
    }
    match b.get(i) {
        None => {}
        Some(b' ') => i += 1,
        Some(_) => return None,
    }
    let zone_tz = match zone {
        Some(z) if z == b"UTC" || z == b"GMT" => TimeZone::Utc,
        _ => *tz,
    };
    let t = match year {
        Some(y) => zone_tz.resolve(NaiveDate::from_ymd_opt(y, month, day)?.and_time(time))?,
        None => infer(month, day, time, &zone_tz, received, margin)?,
    };
    Some(Bsd {
        time: t,
        len: i,
        nonstandard,
    })
}
