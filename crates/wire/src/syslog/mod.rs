//! Syslog: RFC 5424 and RFC 3164 header parsing, structured data, and RFC 6587 / RFC 5425 framing.
//!
//! Contract:
//! - [`parse`] takes any `&str` and never fails or panics: every field borrows from the input, what
//!   could not be read is `None`, and every deviation from the RFCs is recorded in
//!   [`SyslogMessage::anomalies`] (our strictness on top of a parser that never rejects).
//! - RFC 3164 parsing follows rsyslog's `pmrfc3164` (hostname and tag rules, `Mmm dd [yyyy]
//!   hh:mm:ss[:]` and RFC 3339 timestamps, the one-space-too-many of some devices, missing PRI = 13)
//!   plus Cisco IOS sequence numbers, `*`/`.` time-sync markers, millisecond fractions and zone names,
//!   and syslogd's bare `last message repeated N times`.
//! - A 3164 timestamp has no year and no zone: the zone is [`ParseOptions::tz`]; the year is the
//!   one of [`ParseOptions::received`] unless that puts the time more than
//!   [`ParseOptions::year_margin`] after it, then the year before (a line is received after it was
//!   written): a `Dec 31 23:59:59` received on 1 January belongs to the year before, a `Jan  1
//!   00:00:01` received on 31 December from a fast clock to the next, and a replayed old log is
//!   never dated more than the margin ahead.
//! - Structured data is validated while parsing; [`SyslogMessage::sd_elements`] then walks it
//!   without allocating (param values are unescaped lazily, see [`SdParam::value`]).

mod framing;
mod rfc3164;
mod rfc5424;
mod sd;
mod time;

#[cfg(test)]
mod tests;

pub use framing::{Frame, FramingError, FramingMode, OversizePolicy, SyslogCodec};
pub use sd::{SdElement, SdElements, SdParam, SdParams};
pub use time::TimeZone;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};

/// Which header grammar the message was read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// RFC 5424 (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`).
    Rfc5424,
    /// RFC 3164 and its real-world relatives (BSD syslog, Cisco IOS, no header at all).
    Rfc3164,
}

impl Protocol {
    /// `"rfc5424"` or `"rfc3164"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Rfc5424 => "rfc5424",
            Protocol::Rfc3164 => "rfc3164",
        }
    }
}

/// Deviations from the RFCs found while parsing (a small bit set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Anomalies(u16);

impl Anomalies {
    /// No `<PRI>`: facility user, severity notice assumed.
    pub const NO_PRI: Anomalies = Anomalies(1);
    /// A `<...>` that is not a PRI of 0..=191; read as text.
    pub const BAD_PRI: Anomalies = Anomalies(1 << 1);
    /// No timestamp (or NILVALUE): the receive time applies.
    pub const NO_TIMESTAMP: Anomalies = Anomalies(1 << 2);
    /// A timestamp field that is not a valid time.
    pub const BAD_TIMESTAMP: Anomalies = Anomalies(1 << 3);
    /// No hostname in the header: the sender's address applies.
    pub const NO_HOSTNAME: Anomalies = Anomalies(1 << 4);
    /// RFC 5424 structured data that does not follow the grammar; it is not used.
    pub const BAD_SD: Anomalies = Anomalies(1 << 5);
    /// Structured data accepted with a tolerated deviation (spaces around `=`).
    pub const LENIENT_SD: Anomalies = Anomalies(1 << 6);
    /// A header field longer than its RFC limit (kept anyway).
    pub const FIELD_TOO_LONG: Anomalies = Anomalies(1 << 7);
    /// An RFC 5424 header that ended before all its fields.
    pub const TRUNCATED_HEADER: Anomalies = Anomalies(1 << 8);
    /// A 3164 timestamp with an explicit year or fraction or zone (non-standard but common).
    pub const NONSTANDARD_TIMESTAMP: Anomalies = Anomalies(1 << 9);
    /// More than 6 fractional second digits in an RFC 5424 timestamp.
    pub const LONG_FRACTION: Anomalies = Anomalies(1 << 10);

    const NAMES: [(Anomalies, &'static str); 11] = [
        (Self::NO_PRI, "no-pri"),
        (Self::BAD_PRI, "bad-pri"),
        (Self::NO_TIMESTAMP, "no-timestamp"),
        (Self::BAD_TIMESTAMP, "bad-timestamp"),
        (Self::NO_HOSTNAME, "no-hostname"),
        (Self::BAD_SD, "bad-structured-data"),
        (Self::LENIENT_SD, "lenient-structured-data"),
        (Self::FIELD_TOO_LONG, "field-too-long"),
        (Self::TRUNCATED_HEADER, "truncated-header"),
        (Self::NONSTANDARD_TIMESTAMP, "nonstandard-timestamp"),
        (Self::LONG_FRACTION, "long-fraction"),
    ];

    /// True when every flag of `other` is set.
    pub fn contains(self, other: Anomalies) -> bool {
        self.0 & other.0 == other.0
    }
    /// True when no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: Anomalies) {
        self.0 |= other.0;
    }
    /// Names of the set flags (`no-pri`, `bad-timestamp`, ...).
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .into_iter()
            .filter(move |(a, _)| self.contains(*a))
            .map(|(_, n)| n)
    }
}

/// Default of [`ParseOptions::year_margin`]: one day, enough for a sender's clock running fast
/// or a zone set wrong by a few hours, small enough that a replayed log of last week stays last
/// week's.
pub const DEFAULT_YEAR_MARGIN: TimeDelta = TimeDelta::days(1);

/// How to read header times: the zone of 3164 timestamps and the receive time for year inference.
#[derive(Debug, Clone, Copy)]
pub struct ParseOptions {
    /// Zone of timestamps that carry none (RFC 3164).
    pub tz: TimeZone,
    /// When the message was received: a 3164 timestamp (no year) gets this year, or the year
    /// before when this year would put it more than [`ParseOptions::year_margin`] after it.
    pub received: DateTime<Utc>,
    /// How far after `received` a 3164 timestamp may be (a sender's clock running fast) and still
    /// be dated this year, or next year on 31 December; negative counts as zero.
    pub year_margin: TimeDelta,
}

impl ParseOptions {
    /// Options for a message received at `received`, 3164 times in UTC, a margin of
    /// [`DEFAULT_YEAR_MARGIN`].
    pub fn new(received: DateTime<Utc>) -> Self {
        Self {
            tz: TimeZone::Utc,
            received,
            year_margin: DEFAULT_YEAR_MARGIN,
        }
    }
}

/// A parsed syslog message; every string borrows from the input.
#[derive(Debug, Clone, PartialEq)]
pub struct SyslogMessage<'a> {
    /// The grammar the header was read with.
    pub protocol: Protocol,
    /// PRI value 0..=191 as sent; `None` when absent (then facility user, severity notice).
    pub pri: Option<u8>,
    /// Header time in the offset it was given in (3164: the configured zone); `None` if absent.
    pub timestamp: Option<DateTime<FixedOffset>>,
    /// HOSTNAME; `None` when absent or NILVALUE.
    pub hostname: Option<&'a str>,
    /// RFC 5424 APP-NAME, or the program name of a 3164 tag with a pid (`sshd` of `sshd[42]:`).
    /// A 3164 tag without a pid (`sshd:`, as util-linux `logger --rfc3164` sends) gives none: it
    /// cannot be told from text that starts with a word and a colon, so it stays in
    /// [`SyslogMessage::text`] (`sshd: Failed password ...`) where normalisers look for it.
    pub app_name: Option<&'a str>,
    /// RFC 5424 PROCID, or the pid of a 3164 tag (`42` of `sshd[42]:`).
    pub proc_id: Option<&'a str>,
    /// RFC 5424 MSGID.
    pub msg_id: Option<&'a str>,
    /// RFC 3164 TAG exactly as sent, with its colon (`sshd[42]:`); `Some("")` when empty.
    pub tag: Option<&'a str>,
    /// RFC 5424 STRUCTURED-DATA as sent (validated); `None` for NILVALUE or when invalid.
    pub structured_data: Option<&'a str>,
    /// The MSG part: 3164 text after the tag (with its leading space, as rsyslog's `%msg%`),
    /// 5424 text after the structured data (without the BOM).
    pub msg: &'a str,
    /// rsyslog's CONTENT: 3164 tag and text (`sshd[42]: Accepted ...`), 5424 MSG.
    pub content: &'a str,
    /// The text for normalisers: 5424 MSG; 3164 content after timestamp and hostname (leading
    /// spaces removed) when there was a timestamp, else everything after the PRI, because a
    /// header without a timestamp is most often no header at all (`date=... devname=...`).
    pub text: &'a str,
    /// True when the RFC 5424 MSG started with a UTF-8 byte-order mark.
    pub bom: bool,
    /// Cisco IOS sequence number (`000123` of `<189>000123: *Mar ...`).
    pub sequence: Option<&'a str>,
    /// Cisco time marker before the timestamp: `*` (clock not authoritative) or `.` (sync lost).
    pub time_marker: Option<char>,
    /// Deviations from the RFCs.
    pub anomalies: Anomalies,
}

impl<'a> SyslogMessage<'a> {
    /// A message of `protocol` with only its PRI and anomalies: the start of every parse.
    pub(super) fn empty(protocol: Protocol, pri: Option<u8>, anomalies: Anomalies) -> Self {
        SyslogMessage {
            protocol,
            pri,
            timestamp: None,
            hostname: None,
            app_name: None,
            proc_id: None,
            msg_id: None,
            tag: None,
            structured_data: None,
            msg: "",
            content: "",
            text: "",
            bom: false,
            sequence: None,
            time_marker: None,
            anomalies,
        }
    }

    /// Facility 0..=23 (user = 1 when there was no PRI).
    pub fn facility(&self) -> u8 {
        self.pri.unwrap_or(13) >> 3
    }
    /// Severity 0..=7 (notice = 5 when there was no PRI).
    pub fn severity(&self) -> u8 {
        self.pri.unwrap_or(13) & 7
    }
    /// The PRI value in effect (13 when absent).
    pub fn pri_or_default(&self) -> u8 {
        self.pri.unwrap_or(13)
    }
    /// HOSTNAME when the header really had one (RFC 5424, or 3164 with a timestamp before it).
    pub fn header_hostname(&self) -> Option<&'a str> {
        if self.anomalies.contains(Anomalies::NO_HOSTNAME) {
            None
        } else {
            self.hostname
        }
    }
    /// Header time in UTC, if the header had one.
    pub fn timestamp_utc(&self) -> Option<DateTime<Utc>> {
        self.timestamp.map(|t| t.with_timezone(&Utc))
    }
    /// The structured-data elements (empty when there is none).
    pub fn sd_elements(&self) -> SdElements<'a> {
        SdElements::new(self.structured_data.unwrap_or(""))
    }
    /// True for a syslogd `-- MARK --` keep-alive.
    pub fn is_mark(&self) -> bool {
        self.tag == Some("--") && self.msg.trim() == "MARK --"
    }
}

/// Name of a facility number (`kern`, `user`, ..., `local7`); `"invalid"` above 23.
pub fn facility_name(f: u8) -> &'static str {
    const N: [&str; 24] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2",
        "local3", "local4", "local5", "local6", "local7",
    ];
    N.get(f as usize).copied().unwrap_or("invalid")
}

/// Name of a severity number (`emerg`, `alert`, `crit`, `err`, `warning`, `notice`, `info`, `debug`).
pub fn severity_name(s: u8) -> &'static str {
    const N: [&str; 8] = [
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
    ];
    N.get(s as usize).copied().unwrap_or("invalid")
}

/// Parses one syslog message (without framing); never fails, never panics.
pub fn parse<'a>(input: &'a str, opts: &ParseOptions) -> SyslogMessage<'a> {
    let mut anomalies = Anomalies::default();
    let (pri, rest) = match parse_pri(input) {
        PriResult::Ok(p, rest) => (Some(p), rest),
        PriResult::Absent => {
            anomalies.insert(Anomalies::NO_PRI);
            (None, input)
        }
        PriResult::Bad => {
            anomalies.insert(Anomalies::NO_PRI);
            anomalies.insert(Anomalies::BAD_PRI);
            (None, input)
        }
    };
    if let Some(after) = rest.strip_prefix("1 ") {
        return rfc5424::parse(pri, after, anomalies, opts);
    }
    rfc3164::parse(pri, rest, anomalies, opts)
}

enum PriResult<'a> {
    Ok(u8, &'a str),
    Absent,
    Bad,
}

fn parse_pri(s: &str) -> PriResult<'_> {
    let b = s.as_bytes();
    if b.first() != Some(&b'<') {
        return PriResult::Absent;
    }
    let mut v: u16 = 0;
    let mut i = 1;
    while i < b.len() && i <= 4 && b[i].is_ascii_digit() {
        v = v * 10 + u16::from(b[i] - b'0');
        i += 1;
    }
    if i == 1 || i > 4 || b.get(i) != Some(&b'>') || v > 191 {
        return PriResult::Bad;
    }
    // `i + 1` is the byte after '>', an ASCII char boundary.
    PriResult::Ok(v as u8, &s[i + 1..])
}
