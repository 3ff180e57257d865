//! Times and durations as people and scripts write them on command lines and in query strings.

/// A time or duration that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Not one of the time forms.
    #[error(
        "cannot read the time {0:?}: use RFC 3339 (2026-12-02T14:00:00Z), a date (2026-12-02), `now`, a relative time such as -1h, -30m, -2d or `last 2 hours`, `3 days ago`, `today`, `yesterday`, or Unix seconds"
    )]
    Time(String),
    /// Not a duration (the grammar of [`pharos_model::config::ConfigDuration`]).
    #[error("cannot read the duration {0}")]
    Duration(pharos_model::config::DurationError),
}

/// Reads a time as Unix ms: RFC 3339, `YYYY-MM-DD[ T]HH:MM[:SS]` (UTC), `YYYY-MM-DD`, nfdump's
/// `YYYY/MM/DD.hh:mm:ss`, Unix seconds, `now`, or a time before `now_ms` (`-1h`, `now-30m`, and
/// in words as an analyst types them in the console: `last 2 hours`, `last hour`, `15 minutes
/// ago`, `today` and `yesterday` (midnight UTC)).
pub fn parse_time(s: &str, now_ms: u64) -> Result<u64, TimeError> {
    let t = s.trim();
    let err = || TimeError::Time(s.to_string());
    if t.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
    }
    if let Some(ms) = words(t, now_ms) {
        return Ok(ms);
    }
    let rel = t.strip_prefix("now").unwrap_or(t);
    if let Some(d) = rel.strip_prefix('-') {
        let ms = parse_duration_ms(d).map_err(|_| err())?;
        return Ok(now_ms.saturating_sub(ms));
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<u64>()
            .ok()
            .and_then(|secs| secs.checked_mul(1000))
            .ok_or_else(err);
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        return u64::try_from(dt.timestamp_millis()).map_err(|_| err());
    }
    let naive = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%Y/%m/%d.%H:%M:%S",
        "%Y/%m/%d.%H:%M",
    ]
    .iter()
    .find_map(|f| chrono::NaiveDateTime::parse_from_str(t, f).ok())
    .or_else(|| {
        chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    });
    let dt = naive.ok_or_else(err)?;
    u64::try_from(dt.and_utc().timestamp_millis()).map_err(|_| err())
}

/// A time in words: `last N <unit>`, `last <unit>`, `past N <unit>`, `N <unit> ago`, `today`,
/// `yesterday` (case-insensitive; units second, minute, hour, day, week with plurals and the
/// abbreviations s, sec, min, m, h, hr, d, w).
fn words(t: &str, now_ms: u64) -> Option<u64> {
    const DAY: u64 = 86_400_000;
    let lower = t.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split_whitespace().collect();
    match parts.as_slice() {
        ["today"] => return Some(now_ms - now_ms % DAY),
        ["yesterday"] => return Some((now_ms - now_ms % DAY).saturating_sub(DAY)),
        _ => {}
    }
    let (count, unit) = match parts.as_slice() {
        ["last" | "past", unit] => ("1", *unit),
        ["last" | "past", n, unit] => (*n, *unit),
        [n, unit, "ago"] => (*n, *unit),
        _ => return None,
    };
    let n: u64 = count.parse().ok()?;
    let unit_ms: u64 = match unit.trim_end_matches('s') {
        "" | "sec" | "second" => 1_000,
        "m" | "min" | "minute" => 60_000,
        "h" | "hr" | "hour" => 3_600_000,
        "d" | "day" => DAY,
        "w" | "wk" | "week" => 7 * DAY,
        _ => return None,
    };
    Some(now_ms.saturating_sub(n.checked_mul(unit_ms)?))
}

/// Reads a duration in ms with the configuration's grammar
/// ([`pharos_model::config::ConfigDuration`]): `500ms`, `90s`, `5m`, `1h`, `2d`, `1w`, `1h30m`;
/// a bare number is refused with the spelling to use.
pub fn parse_duration_ms(s: &str) -> Result<u64, TimeError> {
    pharos_model::config::ConfigDuration::parse(s)
        .map(|d| d.as_millis())
        .map_err(TimeError::Duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_documented_form() {
        let now = 1_764_684_000_000; // 2025-12-02T14:00:00Z
        let cases = [
            ("now", now),
            ("-1h", now - 3_600_000),
            ("now-30m", now - 1_800_000),
            ("-2d", now - 2 * 86_400_000),
            ("-90s", now - 90_000),
            ("2025-12-02T14:00:00Z", now),
            ("2025-12-02T15:00:00+01:00", now),
            ("2025-12-02 14:00:00", now),
            ("2025-12-02T14:00", now),
            ("2025/12/02.14:00:00", now),
            ("2025-12-02", now - 14 * 3_600_000),
            ("1764684000", now),
            ("last 2 hours", now - 7_200_000),
            ("Last hour", now - 3_600_000),
            ("past 15 minutes", now - 900_000),
            ("last 7 days", now - 7 * 86_400_000),
            ("3 days ago", now - 3 * 86_400_000),
            ("last 30 min", now - 1_800_000),
            ("today", now - 14 * 3_600_000),
            ("yesterday", now - 38 * 3_600_000),
        ];
        for (s, want) in cases {
            assert_eq!(parse_time(s, now).unwrap(), want, "{s}");
        }
        for bad in [
            "tomorrow",
            "last 2 fortnights",
            "last -2 hours",
            "last 99999999999999999 weeks",
            "-1y",
            "-h",
            "2025-13-01",
            "",
            "1969-01-01",
            "99999999999999999999",
        ] {
            let e = parse_time(bad, now).unwrap_err().to_string();
            assert!(e.contains("RFC 3339"), "{bad}: {e}");
        }
        assert_eq!(parse_duration_ms("5m"), Ok(300_000));
        assert!(parse_duration_ms("99999999999999999d").is_err());
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        let e = parse_duration_ms("m").unwrap_err().to_string();
        assert!(e.contains("\"15m\""), "{e}");
        let e = parse_duration_ms("30").unwrap_err().to_string();
        assert!(e.contains("write \"30s\" instead of 30"), "{e}");
    }
}
