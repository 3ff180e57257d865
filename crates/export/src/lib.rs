//! Exports of stored messages for sharing with other CSIRTs and tools: IODEF v2 (RFC 7970),
//! IntelMQ JSON, Elastic Common Schema NDJSON, Shadowserver-like CSV and a MISP feed directory,
//! each carrying the RSIT classification of every event.
//!
//! The one design choice a reader must know: every format is written from one flat
//! [`Record`](record::Record) per message, and the optional anonymisation
//! ([`ExportOptions::anon`], e.g. Crypto-PAn) is applied when that record is built, to every
//! address field and to every address written inside a text (raw line, message, URL), so no
//! format can leak an original address. Text from the network is escaped for the format it goes
//! into (XML escaping with invalid XML characters written as `\u{..}`, RFC 4180 CSV quoting with
//! formula-injection guard, JSON strings).
//!
//! Field names are checked against the published vocabularies: [`INTELMQ_FIELDS`] (IntelMQ's
//! harmonisation) and [`ECS_FIELDS`] (Elastic Common Schema).

#![forbid(unsafe_code)]

mod csv;
mod ecs;
mod fields;
mod ids;
mod intelmq;
mod iodef;
mod misp;
mod record;

use std::io::Write;
use std::net::IpAddr;

use pharos_model::{Message, Timestamp};

pub use fields::{ECS_FIELDS, ECS_VERSION, INTELMQ_FIELDS};
pub use ids::{md5_hex, uuid_for};
pub use misp::MispFeed;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// One IODEF v2 document (RFC 7970) with one `Incident` per message.
    Iodef2,
    /// IntelMQ events: one flat JSON object per line, dotted keys.
    IntelMq,
    /// Elastic Common Schema documents, one per line (NDJSON).
    Ecs,
    /// One CSV row per message, Shadowserver-like columns.
    Csv,
    /// A MISP feed directory (`manifest.json`, one `<uuid>.json` per event, `hashes.csv`).
    Misp,
}

impl Format {
    /// Every format, in documentation order.
    pub const ALL: [Format; 5] = [
        Format::Iodef2,
        Format::IntelMq,
        Format::Ecs,
        Format::Csv,
        Format::Misp,
    ];

    /// The name on the command line and in the API (`iodef2`, `intelmq`, `ecs`, `csv`, `misp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Iodef2 => "iodef2",
            Format::IntelMq => "intelmq",
            Format::Ecs => "ecs",
            Format::Csv => "csv",
            Format::Misp => "misp",
        }
    }

    /// Parses a name from [`Format::as_str`].
    pub fn parse(s: &str) -> Result<Self, ExportError> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == s.trim())
            .ok_or_else(|| ExportError::UnknownFormat(s.to_string()))
    }

    /// The media type of a single-file export (MISP is a directory: `None`).
    pub fn content_type(self) -> Option<&'static str> {
        match self {
            Format::Iodef2 => Some("application/xml; charset=utf-8"),
            Format::IntelMq | Format::Ecs => Some("application/x-ndjson"),
            Format::Csv => Some("text/csv; charset=utf-8; header=present"),
            Format::Misp => None,
        }
    }
}

/// Errors of an export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The format name is not one of [`Format::ALL`].
    #[error("unknown export format {0:?}; expected iodef2, intelmq, ecs, csv or misp")]
    UnknownFormat(String),
    /// A MISP feed is a directory: use [`write_misp_feed`] or [`MispFeed::build`].
    #[error("the misp format is a directory of files; export it to a directory")]
    NotAStream,
    /// Writing the output failed.
    #[error("cannot write the export to {what}: {source}")]
    Io {
        /// What was written (a file name or "the output").
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A TLP-like restriction written on IODEF incidents (`restriction`) and MISP tags (`tlp:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restriction {
    /// TLP:CLEAR / white: may be shared publicly.
    White,
    /// TLP:GREEN: the community.
    Green,
    /// TLP:AMBER: the recipients' organisations (the default).
    #[default]
    Amber,
    /// TLP:RED: the recipients only.
    Red,
}

impl Restriction {
    /// The IODEF `restriction-type` value and TLP colour (`white`, `green`, `amber`, `red`).
    pub fn as_str(self) -> &'static str {
        match self {
            Restriction::White => "white",
            Restriction::Green => "green",
            Restriction::Amber => "amber",
            Restriction::Red => "red",
        }
    }

    /// Parses a colour (`clear` is accepted for `white`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "white" | "clear" => Restriction::White,
            "green" => Restriction::Green,
            "amber" => Restriction::Amber,
            "red" => Restriction::Red,
            _ => return None,
        })
    }
}

/// Who exports and how: the same for every format.
pub struct ExportOptions<'a> {
    /// Our instance name, ideally the CSIRT's FQDN: IODEF `IncidentID/@name`, the namespace of
    /// the stable MISP UUIDs, `observer.name`-independent `feed.provider` fallback.
    pub instance: String,
    /// Our organisation's name: IODEF creator `Contact`, MISP `Orgc`, IntelMQ `feed.provider`.
    pub organisation: String,
    /// Our contact address, written in the IODEF creator `Contact` when set.
    pub contact_email: Option<String>,
    /// Restriction (TLP) written on every incident and MISP event.
    pub restriction: Restriction,
    /// When the export was made: IODEF `GenerationTime`. (MISP `publish_timestamp` is the
    /// message's receive time, like `timestamp`, so a re-export writes the same feed.)
    pub generated: Timestamp,
    /// Optional pseudonymisation of every address (e.g. Crypto-PAn's
    /// `|a| pan.anonymize(a)`); applied to address fields and to addresses inside texts.
    pub anon: Option<&'a dyn Fn(IpAddr) -> IpAddr>,
}

impl ExportOptions<'_> {
    /// Options for `instance`, organisation `Pharos`, TLP amber, generated now, no anonymisation.
    pub fn new(instance: impl Into<String>) -> Self {
        Self {
            instance: instance.into(),
            organisation: "Pharos".into(),
            contact_email: None,
            restriction: Restriction::Amber,
            generated: chrono::Utc::now(),
            anon: None,
        }
    }
}

impl std::fmt::Debug for ExportOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportOptions")
            .field("instance", &self.instance)
            .field("organisation", &self.organisation)
            .field("contact_email", &self.contact_email)
            .field("restriction", &self.restriction)
            .field("generated", &self.generated)
            .field("anon", &self.anon.is_some())
            .finish()
    }
}

fn records(messages: &[Message], opts: &ExportOptions<'_>) -> Vec<record::Record> {
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| record::Record::of(m, i, opts))
        .collect()
}

/// Writes `messages` in `format` (any format but [`Format::Misp`]) to `out`.
pub fn export(
    format: Format,
    messages: &[Message],
    opts: &ExportOptions<'_>,
    out: &mut dyn Write,
) -> Result<(), ExportError> {
    let recs = records(messages, opts);
    let text = match format {
        Format::Iodef2 => iodef::document(&recs, opts),
        Format::IntelMq => lines(recs.iter().map(|r| intelmq::event(r, opts))),
        Format::Ecs => lines(recs.iter().map(|r| ecs::document(r, opts))),
        Format::Csv => csv::table(&recs),
        Format::Misp => return Err(ExportError::NotAStream),
    };
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|source| ExportError::Io {
            what: "the output".into(),
            source,
        })
}

/// [`export`] into a string.
pub fn export_string(
    format: Format,
    messages: &[Message],
    opts: &ExportOptions<'_>,
) -> Result<String, ExportError> {
    let mut buf = Vec::new();
    export(format, messages, opts, &mut buf)?;
    Ok(String::from_utf8(buf).unwrap_or_default())
}

/// Writes the MISP feed of `messages` into `dir` (created if missing): `manifest.json`, one
/// `<uuid>.json` per message and `hashes.csv`. Files of the same events are overwritten with
/// the same names (stable UUIDs), so a re-export is idempotent.
pub fn write_misp_feed(
    dir: &std::path::Path,
    messages: &[Message],
    opts: &ExportOptions<'_>,
) -> Result<MispFeed, ExportError> {
    let feed = MispFeed::build(messages, opts);
    feed.write_to(dir)?;
    Ok(feed)
}

fn lines(values: impl Iterator<Item = serde_json::Value>) -> String {
    let mut s = String::new();
    for v in values {
        s.push_str(&pharos_model::text::json_safe(&v.to_string()));
        s.push('\n');
    }
    s
}
