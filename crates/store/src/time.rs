//! Times and durations as people and scripts write them on command lines and in query strings.

/// A time or duration that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Not one of the time forms.
    #[error(
        "cannot read the time {0:?}: use RFC 3339 (2026-12-02T14:00:00Z), a date (2026-12-02), `now`, a relative time such as -1h, -30m, -2d, or Unix seconds"
    )]
    Time(String),
    /// Not a duration (the grammar of [`pharos_model::config::ConfigDuration`]).
    #[error("cannot read the duration {0}")]
    Duration(pharos_model::config::DurationError),
}

/// Reads a time as Unix ms: RFC 3339, `YYYY-MM-DD[ T]HH:MM[:SS]` (UTC), `YYYY-MM-DD`, nfdump's
/// `YYYY/MM/DD.hh:mm:ss`, Unix seconds, `now`, or a time before `now_ms` (`-1h`, `now-30m`).
pub fn parse_time(s: &str, now_ms: u64) -> Result<u64, TimeError> {
    let t = s.trim();
    let err = || TimeError::Time(s.to_string());
    if t.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
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
        ];
        for (s, want) in cases {
            assert_eq!(parse_time(s, now).unwrap(), want, "{s}");
        }
        for bad in [
            "yesterday",
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
