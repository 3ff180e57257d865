//! `[anon]` in pharos.toml: the Crypto-PAn keys, one default and dated ones for rotation.
//!
//! Contract: the section holds key *file paths* (or hex, redacted whenever the section is
//! printed); [`AnonConfig::key_ring`] reads them into a [`KeyRing`], which picks for a record
//! the key whose `from` date (UTC midnight) is the latest not after the record's time, else the
//! default key. Data of one period stays linkable, across periods it does not.

use std::fmt;
use std::path::PathBuf;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::{CryptoPan, Key, KeyError};

/// A key written as hex in the configuration: `Debug` and serialisation print `<redacted>`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct HexKey(String);

impl From<String> for HexKey {
    fn from(hex: String) -> Self {
        Self(hex)
    }
}

impl fmt::Debug for HexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for HexKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

/// `[anon]`: the keys `pharos anon` uses when no `--key-file`/`--key-hex` is given.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AnonConfig {
    /// The default key's file (32 raw bytes or 64 hex digits); used for records older than every
    /// `[[anon.key]]` and when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// The default key as 64 hex digits (prefer `key_file`: the configuration is often readable
    /// by more people than the key should be). Never printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_hex: Option<HexKey>,
    /// `[[anon.key]]`: keys valid from a date on (rotation).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<DatedKey>,
}

/// `[[anon.key]]`: a key valid from `from` (UTC, inclusive) until the next entry's `from`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DatedKey {
    /// First day of validity, `YYYY-MM-DD` (UTC).
    pub from: String,
    /// The key's file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// The key as hex (never printed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_hex: Option<HexKey>,
}

/// What is wrong with `[anon]`. Messages name the key and the fix, never key material.
#[derive(Debug, thiserror::Error)]
pub enum AnonConfigError {
    /// A key is given both as a file and as hex, or an entry has neither.
    #[error("[anon] {place}: give exactly one of key_file and key_hex")]
    KeySource {
        /// `[anon]` or `[[anon.key]] #n`.
        place: String,
    },
    /// `from` is not a date.
    #[error("[[anon.key]] #{index}: from = {value:?}: expected a date like \"2026-01-01\"")]
    BadDate {
        /// 1-based entry number.
        index: usize,
        /// The value found.
        value: String,
    },
    /// Two entries start on the same day.
    #[error("[[anon.key]]: two keys start on {date}; each entry needs its own from date")]
    DuplicateDate {
        /// The date.
        date: String,
    },
    /// A key could not be read.
    #[error("[anon] {place}: {source}")]
    Key {
        /// `[anon]` or `[[anon.key]] #n`.
        place: String,
        /// Why.
        source: KeyError,
    },
    /// No key at all.
    #[error(
        "no Crypto-PAn key: give --key-file or --key-hex, or set key_file (or [[anon.key]] entries) in the [anon] section of the configuration"
    )]
    NoKey,
}

fn parse_date(index: usize, value: &str) -> Result<i64, AnonConfigError> {
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
        .ok_or_else(|| AnonConfigError::BadDate {
            index,
            value: value.to_string(),
        })
}

fn read_key(
    place: String,
    file: &Option<PathBuf>,
    hex: &Option<HexKey>,
) -> Result<Key, AnonConfigError> {
    match (file, hex) {
        (Some(p), None) => Key::from_file(p),
        (None, Some(h)) => Key::from_hex(&h.0),
        _ => return Err(AnonConfigError::KeySource { place }),
    }
    .map_err(|source| AnonConfigError::Key { place, source })
}

impl AnonConfig {
    /// Checks the shape (one key source per entry, dates, no duplicate date) without reading
    /// key files (they may live on another machine than the one checking).
    pub fn validate(&self) -> Result<(), AnonConfigError> {
        if self.key_file.is_some() && self.key_hex.is_some() {
            return Err(AnonConfigError::KeySource {
                place: "[anon]".into(),
            });
        }
        let mut dates = Vec::new();
        for (i, k) in self.key.iter().enumerate() {
            if k.key_file.is_some() == k.key_hex.is_some() {
                return Err(AnonConfigError::KeySource {
                    place: format!("[[anon.key]] #{}", i + 1),
                });
            }
            let d = parse_date(i + 1, &k.from)?;
            if dates.contains(&d) {
                return Err(AnonConfigError::DuplicateDate {
                    date: k.from.clone(),
                });
            }
            dates.push(d);
        }
        Ok(())
    }

    /// Whether the section names any key.
    pub fn has_keys(&self) -> bool {
        self.key_file.is_some() || self.key_hex.is_some() || !self.key.is_empty()
    }

    /// Reads every key into a [`KeyRing`].
    pub fn key_ring(&self) -> Result<KeyRing, AnonConfigError> {
        self.validate()?;
        if !self.has_keys() {
            return Err(AnonConfigError::NoKey);
        }
        let default = if self.key_file.is_some() || self.key_hex.is_some() {
            Some(CryptoPan::new(&read_key(
                "[anon]".into(),
                &self.key_file,
                &self.key_hex,
            )?))
        } else {
            None
        };
        let mut dated = Vec::with_capacity(self.key.len());
        for (i, k) in self.key.iter().enumerate() {
            let from = parse_date(i + 1, &k.from)?;
            let key = read_key(format!("[[anon.key]] #{}", i + 1), &k.key_file, &k.key_hex)?;
            dated.push((from, CryptoPan::new(&key)));
        }
        dated.sort_by_key(|(f, _)| *f);
        Ok(KeyRing { default, dated })
    }
}

/// The keys of a configuration: a default and dated ones. `Debug` shows dates only.
pub struct KeyRing {
    default: Option<CryptoPan>,
    /// Sorted by start (Unix ms of UTC midnight).
    dated: Vec<(i64, CryptoPan)>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("default", &self.default.is_some())
            .field(
                "from_ms",
                &self.dated.iter().map(|(d, _)| *d).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl KeyRing {
    /// One key for every date (`--key-file`, `--key-hex`).
    pub fn single(cp: CryptoPan) -> Self {
        Self {
            default: Some(cp),
            dated: Vec::new(),
        }
    }

    /// The anonymiser for a record at `time_ms` (Unix ms, UTC): the dated key with the latest
    /// start not after it, else the default; `None` when the record is older than every dated
    /// key and there is no default.
    pub fn at(&self, time_ms: i64) -> Option<&CryptoPan> {
        let n = self.dated.partition_point(|(from, _)| *from <= time_ms);
        match n {
            0 => self.default.as_ref(),
            n => Some(&self.dated[n - 1].1),
        }
    }

    /// The first date a key is valid from, as text, for errors about records older than it.
    pub fn first_date(&self) -> Option<String> {
        let (ms, _) = self.dated.first()?;
        chrono::DateTime::from_timestamp_millis(*ms).map(|t| t.format("%Y-%m-%d").to_string())
    }

    /// Whether a key covers every date (a default key).
    pub fn has_default(&self) -> bool {
        self.default.is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const A: &str = "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202";
    const B: &str = "8009ab3a605435bea0c385bea18485d8b0a1103d6590bdf48c968be5de53836e";
    const C: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn hex(s: &str) -> Option<HexKey> {
        Some(HexKey(s.into()))
    }

    fn ms(date: &str) -> i64 {
        parse_date(1, date).unwrap()
    }

    fn pseudonym(ring: &KeyRing, at: i64) -> Option<Ipv4Addr> {
        ring.at(at)
            .map(|cp| cp.anonymize_v4(Ipv4Addr::new(128, 11, 68, 132)))
    }

    #[test]
    fn key_is_chosen_by_the_records_date() {
        let cfg = AnonConfig {
            key_hex: hex(A),
            key: vec![
                DatedKey {
                    from: "2026-07-01".into(),
                    key_hex: hex(C),
                    ..DatedKey::default()
                },
                DatedKey {
                    from: "2026-01-01".into(),
                    key_hex: hex(B),
                    ..DatedKey::default()
                },
            ],
            ..AnonConfig::default()
        };
        let ring = cfg.key_ring().unwrap();
        let a = CryptoPan::new(&Key::from_hex(A).unwrap());
        let b = CryptoPan::new(&Key::from_hex(B).unwrap());
        let c = CryptoPan::new(&Key::from_hex(C).unwrap());
        let x = Ipv4Addr::new(128, 11, 68, 132);
        let day = 86_400_000;
        assert_eq!(pseudonym(&ring, ms("2025-12-31")), Some(a.anonymize_v4(x)));
        assert_eq!(
            pseudonym(&ring, ms("2026-01-01") - 1),
            Some(a.anonymize_v4(x))
        );
        assert_eq!(pseudonym(&ring, ms("2026-01-01")), Some(b.anonymize_v4(x)));
        assert_eq!(
            pseudonym(&ring, ms("2026-06-30") + day - 1),
            Some(b.anonymize_v4(x))
        );
        assert_eq!(pseudonym(&ring, ms("2026-07-01")), Some(c.anonymize_v4(x)));
        assert_eq!(pseudonym(&ring, ms("2030-01-01")), Some(c.anonymize_v4(x)));
        assert_ne!(a.anonymize_v4(x), b.anonymize_v4(x));
        assert_eq!(ring.first_date().as_deref(), Some("2026-01-01"));
    }

    #[test]
    fn records_older_than_every_dated_key_have_none_without_a_default() {
        let cfg = AnonConfig {
            key: vec![DatedKey {
                from: "2026-01-01".into(),
                key_hex: hex(B),
                ..DatedKey::default()
            }],
            ..AnonConfig::default()
        };
        let ring = cfg.key_ring().unwrap();
        assert!(ring.at(ms("2025-12-31")).is_none());
        assert!(ring.at(ms("2026-01-01")).is_some());
        assert!(!ring.has_default());
    }

    #[test]
    fn bad_sections_are_refused_with_the_key_and_the_fix() {
        let two = AnonConfig {
            key_file: Some("k".into()),
            key_hex: hex(A),
            ..AnonConfig::default()
        };
        let e = two.validate().unwrap_err().to_string();
        assert!(e.contains("exactly one of key_file and key_hex"), "{e}");
        let bad_date = AnonConfig {
            key: vec![DatedKey {
                from: "2026-13-01".into(),
                key_hex: hex(A),
                ..DatedKey::default()
            }],
            ..AnonConfig::default()
        };
        let e = bad_date.validate().unwrap_err().to_string();
        assert!(e.contains("#1") && e.contains("2026-13-01"), "{e}");
        let e = AnonConfig::default().key_ring().unwrap_err().to_string();
        assert!(e.contains("--key-file") && e.contains("[anon]"), "{e}");
        let bad_hex = AnonConfig {
            key_hex: Some(HexKey(format!("{}zz", &A[..62]))),
            ..AnonConfig::default()
        };
        let e = bad_hex.key_ring().unwrap_err().to_string();
        assert!(e.contains("character 63") && !e.contains(&A[..16]), "{e}");
    }

    #[test]
    fn hex_keys_are_redacted_when_printed() {
        let cfg = AnonConfig {
            key_hex: hex(A),
            key: vec![DatedKey {
                from: "2026-01-01".into(),
                key_hex: hex(B),
                ..DatedKey::default()
            }],
            ..AnonConfig::default()
        };
        let json = serde_json::to_string(&cfg).unwrap();
        let debug = format!("{cfg:?} {:?}", cfg.key_ring().unwrap());
        for printed in [&json, &debug] {
            assert!(
                !printed.contains(&A[..16]) && !printed.contains(&B[..16]),
                "{printed}"
            );
            assert!(!printed.to_lowercase().contains("1522178d"), "{printed}");
        }
        assert!(json.contains("<redacted>"), "{json}");
    }
}
