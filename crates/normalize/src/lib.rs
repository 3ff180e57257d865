//! Vendor records to I2NSF messages: one module per vendor, plus auto-detection.
//!
//! Contract:
//! - [`normalize`] never fails and never panics, whatever the input: a record no normaliser
//!   understands becomes a [`Kind::GenericLog`] with the raw text kept in `common.raw` and
//!   `parsed: false`. It never allocates more than a small multiple of the input size.
//! - Every message carries `common.nsf_name` = the caller's `nsf_name`, `common.raw` = the whole
//!   record, `common.event_time` from the vendor line's own time when it has one (local times
//!   without an offset are taken as UTC), else the syslog header time, else now; and
//!   `common.severity` on Pharos' one scale (each vendor module maps its own levels with one
//!   table-like function).
//! - Mandatory YANG leaves are always filled. When the vendor gives none, stable placeholders are
//!   used: rule names `"<format>-unknown-rule"` (e.g. `fortigate-unknown-rule`), user
//!   [`UNKNOWN_USER`], group [`UNKNOWN_GROUP`], address `0.0.0.0` and port 0.
//! - Auto-detection ([`Format::Auto`]) walks a table of cheap, allocation-free checks (prefixes,
//!   substring probes, application names) from the most specific format to the least specific; the
//!   first normaliser that both matches and understands the record wins. No regular expressions.
//! - Every field a vendor line carries that its I2NSF case has no leaf for (addresses, ports, NAT,
//!   user, URL, method, domain, bytes, message id ...) is kept in `common.fields`
//!   (`envelope/fields`). A record that a normaliser recognises as its vendor's but that fits no
//!   I2NSF case (an access log, a DNS query, a message id outside the tables) is a generic log
//!   that carries those fields: it counts as parsed (`parsed: true`), nothing an analyst searches
//!   on is lost. Only when it has no field at all is it `parsed: false`, keeping the vendor's
//!   `format`, vendor name and severity.

#![forbid(unsafe_code)]

mod build;
mod fields;
mod time;
mod vendors;

use std::fmt;

use pharos_model::{GenericLog, Kind, Message};

pub use pharos_model::Timestamp;

/// Placeholder for the mandatory `user` leaf when the vendor names no user.
pub const UNKNOWN_USER: &str = "unknown";
/// Placeholder for the mandatory `group` leaf-list when the vendor names no group.
pub const UNKNOWN_GROUP: &str = "unknown";

/// One log record to normalise: the syslog header fields when there was a header, and the text.
#[derive(Debug, Clone, Copy)]
pub struct LogInput<'a> {
    /// The message part after the syslog header, or the whole line.
    pub text: &'a str,
    /// The whole record as received (kept in the envelope).
    pub raw: &'a str,
    /// Syslog HOSTNAME (or sender address when absent).
    pub host: Option<&'a str>,
    /// Syslog APP-NAME / tag.
    pub app_name: Option<&'a str>,
    /// Header timestamp (already resolved to UTC).
    pub time: Option<Timestamp>,
    /// Syslog facility.
    pub facility: Option<u8>,
    /// Syslog severity 0..7.
    pub severity: Option<u8>,
}

impl<'a> LogInput<'a> {
    /// A record without a syslog header: `text` and `raw` are both `line`.
    pub fn line(line: &'a str) -> Self {
        Self {
            text: line,
            raw: line,
            host: None,
            app_name: None,
            time: None,
            facility: None,
            severity: None,
        }
    }
}

/// A format name ("fortigate", "panos", "cisco-asa", ..., "generic").
pub type FormatName = &'static str;

/// Which format to use: detect, or a named one from [`FORMATS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Detect the format from the record.
    Auto,
    /// Use this format (one of [`FORMATS`]); `"generic"` stores every record as a generic log.
    Named(FormatName),
}

/// A format name that is neither `auto` nor one of [`FORMATS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct UnknownFormat {
    /// The name given.
    pub name: String,
}

impl fmt::Display for UnknownFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown log format {:?}: expected auto or one of {}",
            self.name,
            FORMATS.join(", ")
        )
    }
}

impl std::str::FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, UnknownFormat> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Format::Auto);
        }
        FORMATS
            .iter()
            .find(|f| f.eq_ignore_ascii_case(s))
            .map(|f| Format::Named(f))
            .ok_or_else(|| UnknownFormat {
                name: s.to_string(),
            })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::Auto => f.write_str("auto"),
            Format::Named(n) => f.write_str(n),
        }
    }
}

/// Every format name, in auto-detection order, then `"generic"`.
pub const FORMATS: &[FormatName] = &[
    "cef",
    "leef",
    "sonicwall",
    "watchguard",
    "stormshield",
    "cisco-asa",
    "cisco-ios",
    "cisco-meraki",
    "cisco-ise",
    "cisco-esa",
    "cisco-wsa",
    "fortiddos",
    "sophos",
    "fortimail",
    "fortiweb",
    "fortigate",
    "panos",
    "suricata-eve",
    "checkpoint",
    "juniper-srx",
    "filterlog",
    "pf",
    "netfilter",
    "barracuda",
    "f5-bigip",
    "imperva",
    "zscaler",
    "modsecurity",
    "suricata-fast",
    "snort",
    "clamav",
    "sshd",
    "sudo",
    "linux-auth",
    "squid",
    "haproxy",
    "web-access",
    "web-error",
    "arbor",
    GENERIC,
];

const GENERIC: FormatName = "generic";

/// The normalised message and what happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// The message, ready to store and emit.
    pub message: Message,
    /// The format that produced it (`"generic"` when nothing recognised the record).
    pub format: FormatName,
    /// False when the record became a generic log (not understood, or an unmapped event).
    pub parsed: bool,
}

/// Normalises one record; never fails: what no normaliser understands becomes a generic log with the raw text.
pub fn normalize(input: &LogInput<'_>, format: Format, nsf_name: &str) -> Normalized {
    let found = match format {
        Format::Auto => {
            let probe = vendors::Probe::new(input);
            vendors::TABLE
                .iter()
                .filter(|e| (e.detect)(&probe))
                .find_map(|e| (e.normalize)(input).map(|d| (e.name, d)))
        }
        Format::Named(name) => vendors::TABLE
            .iter()
            .find(|e| e.name == name)
            .and_then(|e| (e.normalize)(input).map(|d| (e.name, d))),
    };
    match found {
        Some((name, draft)) => {
            // a generic log that carries the record's fields counts as parsed: nothing an
            // analyst searches on was lost
            let parsed = !matches!(draft.kind, Kind::GenericLog(_)) || draft.fields.is_some();
            Normalized {
                message: draft.into_message(input, nsf_name, name),
                format: name,
                parsed,
            }
        }
        None => {
            let reason = match format {
                Format::Named(n) if n != GENERIC => format!("not understood by the {n} normaliser"),
                Format::Named(_) => "stored as a generic log by configuration".to_string(),
                Format::Auto => "no normaliser recognised the record".to_string(),
            };
            let kind = Kind::GenericLog(GenericLog {
                format: None,
                reason: Some(reason),
                app_name: input.app_name.map(build::clip),
            });
            let draft = build::Draft::new(kind, build::syslog_severity(input.severity));
            Normalized {
                message: draft.into_message(input, nsf_name, GENERIC),
                format: GENERIC,
                parsed: false,
            }
        }
    }
}

/// The format auto-detection would try first for this record, if any looks like it matches.
pub fn detect(input: &LogInput<'_>) -> Option<FormatName> {
    let probe = vendors::Probe::new(input);
    vendors::TABLE
        .iter()
        .find(|e| (e.detect)(&probe))
        .map(|e| e.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_list_matches_the_detection_table() {
        let names: Vec<&str> = vendors::TABLE.iter().map(|e| e.name).collect();
        assert_eq!(&FORMATS[..FORMATS.len() - 1], &names[..]);
        assert_eq!(FORMATS.last(), Some(&"generic"));
    }

    #[test]
    fn format_parses_auto_and_names_and_lists_names_on_error() {
        assert_eq!("auto".parse::<Format>(), Ok(Format::Auto));
        assert_eq!(
            "FortiGate".parse::<Format>(),
            Ok(Format::Named("fortigate"))
        );
        let e = "nope".parse::<Format>().unwrap_err().to_string();
        assert!(e.contains("cisco-asa") && e.contains("nope"), "{e}");
    }

    #[test]
    fn unknown_text_becomes_a_generic_log_with_raw_kept() {
        let input = LogInput::line("hello world, nothing to see");
        let n = normalize(&input, Format::Auto, "nsf1");
        assert!(!n.parsed);
        assert_eq!(n.format, "generic");
        assert_eq!(
            n.message.common.raw.as_deref(),
            Some("hello world, nothing to see")
        );
        assert_eq!(n.message.common.nsf_name, "nsf1");
        assert!(matches!(n.message.kind, Kind::GenericLog(_)));
    }

    #[test]
    fn named_generic_never_parses() {
        let line = "%ASA-2-106001: Inbound TCP connection denied from 1.2.3.4/5 to 5.6.7.8/80 flags SYN on interface outside";
        let n = normalize(&LogInput::line(line), Format::Named("generic"), "x");
        assert!(!n.parsed);
        let n = normalize(&LogInput::line(line), Format::Named("cisco-asa"), "x");
        assert!(n.parsed);
    }
}
