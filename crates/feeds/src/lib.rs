//! Incoming early-warning feeds normalised into I2NSF messages, so that what other teams report
//! about a constituency's addresses is stored, queried and routed like Pharos's own events:
//! Shadowserver CSV reports ([`Format::Shadowserver`]) and IntelMQ JSON events
//! ([`Format::Intelmq`]). docs/feeds.md has the column mapping tables.
//!
//! The one design choice a reader must know: a feed row becomes the I2NSF case that says the
//! most (a botnet event for sinkhole hits, a vulnerability-scan log for open services and
//! amplifiers, an intrusion event for scanners and brute force, a generic log otherwise), with
//! the feed's RSIT classification in the envelope (`Common::classification`, which wins over the
//! case's own mapping), the addresses and ports in the case *and* in `envelope/fields`, and the
//! row itself in `envelope/raw`. A row that cannot be read is skipped with its line number and
//! the reason, never guessed at; nothing is lost silently.
//!
//! Hostile input: records are read with a bounded length ([`MAX_RECORD`]), any bytes are
//! accepted (invalid UTF-8 is replaced), and nothing panics.

#![forbid(unsafe_code)]

mod intelmq;
mod read;
mod shadowserver;

use std::io::BufRead;

use pharos_model::Message;

pub use shadowserver::REPORTS;

/// Longest record (CSV row, possibly over several lines, or JSON line) read; a longer one is
/// skipped.
pub const MAX_RECORD: usize = 64 * 1024;

/// The feed formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A Shadowserver CSV report (header row with their column names).
    Shadowserver,
    /// IntelMQ events: one JSON object per line (flat dotted keys), or one JSON array.
    Intelmq,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "shadowserver" => Ok(Self::Shadowserver),
            "intelmq" => Ok(Self::Intelmq),
            _ => Err(format!(
                "unknown feed format {s:?}: expected shadowserver or intelmq"
            )),
        }
    }
}

/// What a file is read with.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The Shadowserver report type (`scan_ntp`, `event4_sinkhole_http`, ...); when `None` it is
    /// taken from the file name (Shadowserver names files `2026-12-01-scan_ntp-...csv`).
    pub report: Option<String>,
    /// The file's name, for the report type and for errors.
    pub file_name: String,
}

/// Why a file could not be read at all (a row that cannot be read is skipped instead).
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// Reading failed.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The error.
        source: std::io::Error,
    },
    /// The Shadowserver report type is unknown or could not be found.
    #[error(
        "{file}: {why}; give the report type with --report (one of {})",
        REPORTS.iter().map(|r| r.name).collect::<Vec<_>>().join(", ")
    )]
    Report {
        /// The file.
        file: String,
        /// What went wrong.
        why: String,
    },
    /// The CSV header lacks a column every row needs.
    #[error(
        "{file}:1: the header has no {column:?} column; is this a Shadowserver CSV report (first line: column names)?"
    )]
    Header {
        /// The file.
        file: String,
        /// The column.
        column: String,
    },
}

/// Counts of one import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Rows turned into messages.
    pub imported: u64,
    /// Rows skipped (each reported to the caller with its line and reason).
    pub skipped: u64,
}

/// One row's outcome: the message, or why the row was skipped (the reason names the column and
/// the value expected, not the whole row).
pub type RowResult = Result<Message, String>;

/// Reads a whole feed file and calls `each(line, outcome)` for every row, in order (`line` is
/// the 1-based line the row starts on).
pub fn import(
    format: Format,
    input: impl BufRead,
    opts: &Options,
    mut each: impl FnMut(usize, RowResult),
) -> Result<Summary, FeedError> {
    let mut summary = Summary::default();
    let mut count = |line: usize, r: RowResult| {
        match r {
            Ok(_) => summary.imported += 1,
            Err(_) => summary.skipped += 1,
        }
        each(line, r);
    };
    match format {
        Format::Shadowserver => shadowserver::import(input, opts, &mut count)?,
        Format::Intelmq => intelmq::import(input, opts, &mut count)?,
    }
    Ok(summary)
}

/// Clips `s` to at most `max` bytes on a character boundary.
fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Parses a feed time: RFC 3339, or `YYYY-MM-DD HH:MM:SS` (UTC, Shadowserver's form, with an
/// optional `Z` or offset).
fn parse_time(s: &str) -> Option<pharos_model::Timestamp> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&chrono::Utc));
    }
    let t = s.replacen(' ', "T", 1);
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&t) {
        return Some(t.with_timezone(&chrono::Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.fZ"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(&t, f) {
            return Some(t.and_utc());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_both_feed_forms_are_read_as_utc() {
        let a = parse_time("2026-12-01 04:12:33").unwrap();
        let b = parse_time("2026-12-01T04:12:33Z").unwrap();
        let c = parse_time("2026-12-01T05:12:33+01:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert!(parse_time("yesterday").is_none());
        assert_eq!(clip("héllo", 2), "h");
    }
}
