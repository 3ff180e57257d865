//! What every configuration section of `pharos.toml` shares: the one duration type
//! ([`ConfigDuration`]), the one error type of a section's `validate()` ([`ConfigError`]), and the
//! description of a deprecated key ([`RenamedKey`]) that the binary rewrites before the typed
//! sections read the file.
//!
//! Contract: a duration is always written as a string with units (`"500ms"`, `"90s"`, `"15m"`,
//! `"1h"`, `"7d"`, `"2w"`, or a sum such as `"1h30m"`); a bare number is refused with the hint of
//! how to write it. A [`ConfigDuration`] prints back in the largest unit that is exact, so what
//! `pharos check-config` prints reads back to the same value.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration of the configuration (or a command line): `"500ms"`, `"90s"`, `"15m"`, `"1h"`,
/// `"7d"`, `"2w"`, sums like `"1h30m"`; `"0s"` is zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ConfigDuration(pub Duration);

/// A duration that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// A number without a unit.
    #[error("write \"{0}s\" instead of {0}: a duration needs a unit (ms, s, m, h, d, w)")]
    BareNumber(String),
    /// Not a duration at all.
    #[error("{0:?}: expected a duration like \"500ms\", \"90s\", \"15m\", \"1h\" or \"7d\"")]
    Invalid(String),
    /// Too large to hold.
    #[error("{0:?}: too long a duration")]
    Overflow(String),
}

const UNITS: [(&str, u64); 6] = [
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

impl ConfigDuration {
    /// Zero: "never" or "off" for the keys that say so.
    pub const ZERO: Self = Self(Duration::ZERO);

    /// `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    /// `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }

    /// The [`Duration`].
    pub const fn get(self) -> Duration {
        self.0
    }

    /// Whole seconds (sub-second parts dropped).
    pub const fn as_secs(self) -> u64 {
        self.0.as_secs()
    }

    /// Milliseconds, saturating.
    pub fn as_millis(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether it is zero.
    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// Reads `"500ms"`, `"90s"`, `"15m"`, `"1h"`, `"7d"`, `"2w"` or a sum of them (`"1h30m"`).
    pub fn parse(s: &str) -> Result<Self, DurationError> {
        let t = s.trim();
        let invalid = || DurationError::Invalid(s.to_string());
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(DurationError::BareNumber(t.to_string()));
        }
        let mut rest = t;
        let mut total: u64 = 0;
        if rest.is_empty() {
            return Err(invalid());
        }
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .ok_or_else(invalid)?;
            if digits == 0 {
                return Err(invalid());
            }
            let n: u64 = rest[..digits]
                .parse()
                .map_err(|_| DurationError::Overflow(s.to_string()))?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let mult = UNITS
                .iter()
                .find(|(u, _)| *u == unit)
                .map(|(_, m)| *m)
                .ok_or_else(invalid)?;
            total = n
                .checked_mul(mult)
                .and_then(|ms| total.checked_add(ms))
                .ok_or_else(|| DurationError::Overflow(s.to_string()))?;
        }
        Ok(Self::from_millis(total))
    }
}

impl From<Duration> for ConfigDuration {
    fn from(d: Duration) -> Self {
        Self(d)
    }
}

impl From<ConfigDuration> for Duration {
    fn from(d: ConfigDuration) -> Self {
        d.0
    }
}

impl std::str::FromStr for ConfigDuration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ConfigDuration {
    /// The largest unit that is exact (`"90s"`, `"15m"`, `"7d"`, `"500ms"`); zero is `"0s"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        // weeks are left out: "14d" reads better than "2w"
        for (unit, len) in UNITS.iter().skip(1) {
            if ms.is_multiple_of(*len) {
                return write!(f, "{}{unit}", ms / len);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ConfigDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration like \"500ms\", \"90s\", \"15m\", \"1h\" or \"7d\"")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ConfigDuration, E> {
                ConfigDuration::parse(s).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<ConfigDuration, E> {
                Err(E::custom(DurationError::BareNumber(n.to_string())))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<ConfigDuration, E> {
                Err(E::custom(DurationError::BareNumber(n.to_string())))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<ConfigDuration, E> {
                Err(E::custom(DurationError::BareNumber(n.to_string())))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for ConfigDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `#[serde(with = "pharos_model::config::secs")]`: a duration key held as whole seconds (`u64`)
/// by code that counts in seconds; written and printed as a duration string.
pub mod secs {
    use super::*;

    /// Reads a duration string as whole seconds; a fraction of a second is refused.
    pub fn deserialize<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<T, D::Error> {
        let v = ConfigDuration::deserialize(d)?;
        if v.0.subsec_nanos() != 0 {
            return Err(serde::de::Error::custom(format!(
                "\"{v}\": expected whole seconds, e.g. \"{}s\"",
                v.as_secs().max(1)
            )));
        }
        T::try_from(v.as_secs())
            .map_err(|_| serde::de::Error::custom(format!("\"{v}\": too long a duration")))
    }

    /// Prints whole seconds as a duration string.
    pub fn serialize<S: Serializer, T: Copy + Into<u64>>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        ConfigDuration::from_secs((*v).into()).serialize(s)
    }
}

/// `#[serde(with = "pharos_model::config::millis")]`: a duration key held as milliseconds (`u64`).
pub mod millis {
    use super::*;

    /// Reads a duration string as milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        Ok(ConfigDuration::deserialize(d)?.as_millis())
    }

    /// Prints milliseconds as a duration string.
    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        ConfigDuration::from_millis(*v).serialize(s)
    }
}

/// `#[serde(with = "pharos_model::config::secs_map")]`: a table of durations held as whole
/// seconds per name.
pub mod secs_map {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Deserialize)]
    struct Secs(#[serde(with = "super::secs")] u64);

    /// Reads a table of duration strings as whole seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, u64>, D::Error> {
        let m = BTreeMap::<String, Secs>::deserialize(d)?;
        Ok(m.into_iter().map(|(k, v)| (k, v.0)).collect())
    }

    /// Prints a table of seconds as duration strings.
    pub fn serialize<S: Serializer>(v: &BTreeMap<String, u64>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(v.iter().map(|(k, v)| (k, ConfigDuration::from_secs(*v))))
    }
}

/// A configuration value a component cannot run with: which section and key, the value as
/// written, and what was expected (with the fix). Every section's `validate()` returns it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[{section}] {key} = {value}: {expected}")]
pub struct ConfigError {
    /// The table as written in the file, without brackets: `flow_store`, `detect.ddos`.
    pub section: String,
    /// The key, e.g. `memory_budget_bytes` (with an index or a map key where it helps:
    /// `groups[1].prefixes`).
    pub key: String,
    /// The offending value, as TOML would write it.
    pub value: String,
    /// What was expected and how to fix it.
    pub expected: String,
}

impl ConfigError {
    /// An error of `[section] key = value`.
    pub fn new(
        section: impl Into<String>,
        key: impl Into<String>,
        value: impl fmt::Display,
        expected: impl Into<String>,
    ) -> Self {
        Self {
            section: section.into(),
            key: key.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }
}

/// How the number of a deprecated key is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OldUnit {
    /// The old value is a number of milliseconds.
    Millis,
    /// The old value is a number of seconds.
    Secs,
    /// The old value is a number of minutes.
    Minutes,
}

impl OldUnit {
    /// The duration `n` of this unit stands for.
    pub fn duration(self, n: u64) -> Option<ConfigDuration> {
        let ms = match self {
            Self::Millis => Some(n),
            Self::Secs => n.checked_mul(1000),
            Self::Minutes => n.checked_mul(60_000),
        }?;
        Some(ConfigDuration::from_millis(ms))
    }
}

/// A key of an older release, still read (for one release) and rewritten to its new spelling
/// with a warning. A component lists its renamed keys next to its section's struct; the binary
/// applies every list to the file before the sections read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenamedKey {
    /// Dotted path of the table that holds the key (`"detect.ddos"`); an array of tables on the
    /// way (`"notify.correlate"`, `"subscription.sink"`) applies to each of its tables.
    pub table: &'static str,
    /// The old key (`"hold_s"`).
    pub old: &'static str,
    /// The new key (`"hold"`); the same as `old` where only the value's form changed.
    pub new: &'static str,
    /// What the old bare number meant; its table's numbers for a table of durations.
    pub unit: OldUnit,
}

impl RenamedKey {
    /// A duration key `old`, a number of `unit`, now `new` with a duration string.
    pub const fn duration(
        table: &'static str,
        old: &'static str,
        new: &'static str,
        unit: OldUnit,
    ) -> Self {
        Self {
            table,
            old,
            new,
            unit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit_and_print_in_the_largest_exact_one() {
        for (s, ms, back) in [
            ("500ms", 500, "500ms"),
            ("90s", 90_000, "90s"),
            ("15m", 900_000, "15m"),
            ("1h", 3_600_000, "1h"),
            ("7d", 7 * 86_400_000, "7d"),
            ("2w", 14 * 86_400_000, "14d"),
            ("1h30m", 5_400_000, "90m"),
            ("1m500ms", 60_500, "60500ms"),
            ("60s", 60_000, "1m"),
            ("0s", 0, "0s"),
            (" 30d ", 30 * 86_400_000, "30d"),
        ] {
            let d = ConfigDuration::parse(s).unwrap();
            assert_eq!(d.as_millis(), ms, "{s}");
            assert_eq!(d.to_string(), back, "{s}");
            assert_eq!(ConfigDuration::parse(back).unwrap(), d, "{back}");
        }
    }

    #[test]
    fn a_bare_number_is_refused_with_the_spelling_to_use() {
        let e = ConfigDuration::parse("30").unwrap_err();
        assert_eq!(e, DurationError::BareNumber("30".into()));
        assert!(e.to_string().contains("write \"30s\" instead of 30"), "{e}");
        #[derive(Debug, Deserialize)]
        struct T {
            #[allow(dead_code)]
            timeout: ConfigDuration,
        }
        let e = serde_json::from_str::<T>(r#"{"timeout": 30}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("write \"30s\" instead of 30"), "{e}");
    }

    #[test]
    fn garbage_is_refused_with_the_forms_expected() {
        for bad in [
            "",
            "s",
            "7x",
            "1y",
            "-5s",
            "5 s",
            "1.5h",
            "h1",
            "99999999999999999999d",
        ] {
            let e = ConfigDuration::parse(bad).unwrap_err().to_string();
            assert!(
                e.contains("expected a duration like") || e.contains("too long"),
                "{bad}: {e}"
            );
        }
        assert!(matches!(
            ConfigDuration::parse("99999999999999999d"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn seconds_adapters_read_and_print_duration_strings() {
        #[derive(Debug, Deserialize, Serialize, PartialEq)]
        struct T {
            #[serde(with = "secs")]
            hold: u32,
            #[serde(with = "millis")]
            leak: u64,
            #[serde(with = "secs_map")]
            per: std::collections::BTreeMap<String, u64>,
        }
        let t: T = serde_json::from_str(r#"{"hold":"2m","leak":"1s","per":{"a":"1h"}}"#).unwrap();
        assert_eq!((t.hold, t.leak, t.per["a"]), (120, 1000, 3600));
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"hold":"2m","leak":"1s","per":{"a":"1h"}}"#
        );
        let e = serde_json::from_str::<T>(r#"{"hold":"500ms","leak":"1s","per":{}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("whole seconds"), "{e}");
    }

    #[test]
    fn config_errors_name_section_key_value_and_fix() {
        let e = ConfigError::new("flow", "queue", 0, "must be at least 1");
        assert_eq!(e.to_string(), "[flow] queue = 0: must be at least 1");
    }
}
