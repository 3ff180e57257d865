//! Palo Alto Networks PAN-OS logs: the syslog CSV of every log type, and the JSON of cloud log
//! forwarding (Strata Logging Service / Cortex Data Lake).
//!
//! CSV: every record starts `FUTURE_USE, Receive Time, Serial, Type, Subtype, FUTURE_USE,
//! Generated Time` (PAN-OS 8.1 to 11.x; later versions only append columns, so columns are read
//! by position and missing trailing ones are absent). The record is found by its receive time
//! (`,yyyy/mm/dd hh:mm:ss,` or ISO 8601) whatever precedes it: a BSD or RFC 5424 header, a bare
//! timestamp without hostname, or nothing. [`TYPES`] gives, per log type, the positions of the
//! columns Pharos reads and the case it becomes; session-based types (TRAFFIC, THREAT,
//! DECRYPTION, SCTP, GTP, tunnel inspection START/END) share the session columns 7..=30
//! ([`SESSION`]). The AUDIT log (`Serial, Time, audit, ...`) has its own short layout.
//!
//! JSON: `LogType`, `Subtype`, `TimeGenerated`, `SourceAddress`, `DestinationAddress`, ...
//! ([`JSON_KEYS`]) fill the same record, which then goes through the same cases.
//!
//! Mapping: TRAFFIC and the other session logs -> firewall traffic log; THREAT by subtype
//! ([`THREAT_SUBTYPES`]): virus/wildfire -> virus, url -> DPI log (data filtering, URL kept), file
//! -> DPI log (file blocking), flood -> DDoS, vulnerability/spyware/scan/... -> intrusion (web
//! attack when the threat name is an HTTP attack); CORRELATION -> intrusion; AUTHENTICATION,
//! USERID, GLOBALPROTECT -> user activity; CONFIG -> configuration change; AUDIT -> system
//! access log; SYSTEM auth events -> user activity, other SYSTEM, HIP-MATCH and IP-TAG -> generic
//! logs that carry their fields. Every record keeps what its case has no leaf for (NAT
//! addresses, destination user, URL, domain, method, user agent, log type) in `envelope/fields`.
//! Rule names: the security rule, threat name or correlation object; placeholder
//! `panos-unknown-rule`.

use std::net::IpAddr;

use pharos_model::ident::{DdosType, DpiType, IntrusionAttackType, UserActivityType};
use pharos_model::{DpiLog, FirewallTrafficLog, Kind, LogFields, Severity, VirusEvent};

use crate::LogInput;
use crate::build::{self, Draft, Flow, Ids, Request, clip, ip, port, present};
use crate::fields::{Fields, split_csv};
use crate::vendors::{Probe, has, probe};

const RULE: &str = "panos-unknown-rule";

/// Column positions of the fields Pharos reads from one log type ([`NO`]: the type has none).
#[derive(Clone, Copy)]
struct Cols {
    src: u8,
    dst: u8,
    nat_src: u8,
    nat_dst: u8,
    rule: u8,
    src_user: u8,
    dst_user: u8,
    app: u8,
    in_if: u8,
    out_if: u8,
    session: u8,
    sport: u8,
    dport: u8,
    nat_sport: u8,
    nat_dport: u8,
    proto: u8,
    action: u8,
    sent: u8,
    rcvd: u8,
    pkts_sent: u8,
    pkts_rcvd: u8,
    /// Elapsed seconds of the session.
    elapsed: u8,
    /// URL or file name (THREAT "misc").
    misc: u8,
    /// Threat name, match name, correlation object or tag.
    name: u8,
    category: u8,
    severity: u8,
    user_agent: u8,
    method: u8,
    /// Event id (SYSTEM, GLOBALPROTECT, USERID, IP-TAG) or authentication event type.
    event: u8,
    /// Description, command or evidence.
    desc: u8,
    /// Outcome (GLOBALPROTECT status, CONFIG result).
    status: u8,
}

/// An absent column.
const NO: u8 = u8::MAX;

const NONE: Cols = Cols {
    src: NO,
    dst: NO,
    nat_src: NO,
    nat_dst: NO,
    rule: NO,
    src_user: NO,
    dst_user: NO,
    app: NO,
    in_if: NO,
    out_if: NO,
    session: NO,
    sport: NO,
    dport: NO,
    nat_sport: NO,
    nat_dport: NO,
    proto: NO,
    action: NO,
    sent: NO,
    rcvd: NO,
    pkts_sent: NO,
    pkts_rcvd: NO,
    elapsed: NO,
    misc: NO,
    name: NO,
    category: NO,
    severity: NO,
    user_agent: NO,
    method: NO,
    event: NO,
    desc: NO,
    status: NO,
};

/// The session columns shared by TRAFFIC, THREAT, DECRYPTION, SCTP, GTP and tunnel logs.
const SESSION: Cols = Cols {
    src: 7,
    dst: 8,
    nat_src: 9,
    nat_dst: 10,
    rule: 11,
    src_user: 12,
    dst_user: 13,
    app: 14,
    in_if: 18,
    out_if: 19,
    session: 22,
    sport: 24,
    dport: 25,
    nat_sport: 26,
    nat_dport: 27,
    proto: 29,
    action: 30,
    ..NONE
};

/// What a log type becomes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Case {
    /// Firewall traffic log.
    Session,
    /// By subtype ([`THREAT_SUBTYPES`]).
    Threat,
    /// Intrusion named after the correlation object.
    Correlation,
    /// User activity: login success or failure.
    Auth,
    /// User activity: User-ID login/logout mapping.
    UserId,
    /// User activity: GlobalProtect connection stages.
    GlobalProtect,
    /// SYSTEM events (auth events -> user activity, the rest generic with fields).
    System,
    /// Configuration change.
    Config,
    /// Administrator command (system access log).
    Audit,
    /// Generic log carrying its fields.
    Fields,
}

/// One log type: its `Type` column, the columns read, the case, and a sample line (PAN-OS
/// syslog field descriptions, 10.2/11.x order) checked by the tests.
struct LogType {
    ty: &'static str,
    cols: Cols,
    case: Case,
    #[cfg_attr(not(test), allow(dead_code))]
    sample: &'static str,
}

/// Every CSV log type.
static TYPES: &[LogType] = &[
    LogType {
        ty: "TRAFFIC",
        cols: Cols {
            sent: 32,
            rcvd: 33,
            elapsed: 36,
            category: 37,
            pkts_sent: 44,
            pkts_rcvd: 45,
            ..SESSION
        },
        case: Case::Session,
        sample: "<14>Mar  2 10:00:01 PA-3220 1,2023/03/02 10:00:01,013101000001,TRAFFIC,end,2561,2023/03/02 10:00:01,10.1.1.20,203.0.113.80,198.51.100.2,203.0.113.80,allow-web,corp\\alice,,web-browsing,vsys1,trust,untrust,ethernet1/2,ethernet1/1,fwd,2023/03/02 10:00:01,4711,1,51514,80,40123,80,0x400064,tcp,allow,5210,1200,4010,20,2023/03/02 09:59:50,10,computer-and-internet-info,0,7012,0x0,10.0.0.0-10.255.255.255,US,0,10,10,tcp-fin",
    },
    LogType {
        ty: "THREAT",
        cols: Cols {
            misc: 31,
            name: 32,
            category: 33,
            severity: 34,
            user_agent: 46,
            method: 63,
            ..SESSION
        },
        case: Case::Threat,
        sample: "1,2023/03/02 11:00:01,013101000001,THREAT,url,2561,2023/03/02 11:00:00,10.1.1.21,198.51.100.9,198.51.100.2,198.51.100.9,allow-web,bob,,web-browsing,vsys1,trust,untrust,ethernet1/2,ethernet1/1,fwd,2023/03/02 11:00:00,4712,1,51600,80,40200,80,0x8000,tcp,block-url,\"www.example.net/login.php?x=1\",(9999),phishing,informational,client-to-server,7013,0x0,10.0.0.0-10.255.255.255,US,0,text/html,0,,,1,\"Mozilla/5.0\",,,,,,,,0,0,0,0,vsys1,PA-3220,,,,get",
    },
    LogType {
        ty: "DECRYPTION",
        cols: SESSION,
        case: Case::Session,
        sample: "1,2023/03/02 12:00:01,013101000001,DECRYPTION,0,2561,2023/03/02 12:00:01,10.1.1.22,198.51.100.10,198.51.100.2,198.51.100.10,decrypt-all,,,ssl,vsys1,trust,untrust,ethernet1/2,ethernet1/1,fwd,2023/03/02 12:00:01,4713,1,50000,443,40300,443,0x400000,tcp,allow,N/A,,,,,c0ffee00-1111-2222-3333-444455556666,Server_Hello,Client_Hello,TLS1.3,ECDHE,AES_256_GCM,SHA384",
    },
    LogType {
        ty: "SCTP",
        cols: SESSION,
        case: Case::Session,
        sample: "1,2023/03/02 12:10:01,013101000001,SCTP,0,2561,2023/03/02 12:10:01,10.9.0.1,10.9.0.2,,,sctp-allow,,,,vsys1,core,ran,ethernet1/3,ethernet1/4,fwd,,4714,1,2905,2905,,,,sctp,allow,0,0,0,0,vsys1,PA-5220,7,,1,46,1",
    },
    LogType {
        ty: "GTP",
        cols: SESSION,
        case: Case::Session,
        sample: "1,2023/03/02 12:20:01,013101000001,GTP,start,2561,2023/03/02 12:20:01,10.9.1.1,10.9.1.2,,,gtp-allow,,,gtpv2-c,vsys1,s11,s5,ethernet1/5,ethernet1/6,fwd,,4715,1,2123,2123,,,,udp,allow,tunnel-create",
    },
    LogType {
        ty: "START",
        cols: SESSION,
        case: Case::Session,
        sample: "1,2023/03/02 12:30:01,013101000001,START,start,2561,2023/03/02 12:30:01,10.2.0.10,192.0.2.50,10.2.0.20,10.2.0.30,tunnel-rule,,,ipsec-esp,vsys1,inside,outside,ethernet1/1,ethernet1/2,fwd,,4716,1,4500,4500,4501,4501,0x0,udp,tunnel-inspect",
    },
    LogType {
        ty: "END",
        cols: SESSION,
        case: Case::Session,
        sample: "1,2023/03/02 12:31:01,013101000001,END,end,2561,2023/03/02 12:31:01,10.2.0.10,192.0.2.50,10.2.0.20,10.2.0.30,tunnel-rule,,,ipsec-esp,vsys1,inside,outside,ethernet1/1,ethernet1/2,fwd,,4716,1,4500,4500,4501,4501,0x0,udp,tunnel-inspect",
    },
    LogType {
        ty: "TUNNEL",
        cols: SESSION,
        case: Case::Session,
        sample: "1,2023/03/02 12:32:01,013101000001,TUNNEL,end,2561,2023/03/02 12:32:01,10.2.0.11,192.0.2.51,,,tunnel-rule,,,gre,vsys1,inside,outside,ethernet1/1,ethernet1/2,fwd,,4717,1,0,0,0,0,0x0,gre,allow",
    },
    LogType {
        ty: "CORRELATION",
        cols: Cols {
            src: 7,
            src_user: 8,
            category: 10,
            severity: 11,
            name: 19,
            desc: 21,
            ..NONE
        },
        case: Case::Correlation,
        sample: "1,2023/03/02 13:00:01,013101000001,CORRELATION,,2561,2023/03/02 13:00:01,10.1.1.23,carol,vsys1,compromised-host,critical,0,0,0,0,vsys1,PA-3220,1,beacon-detection,6005,Host visited known malware URL (100 times)",
    },
    LogType {
        ty: "AUTHENTICATION",
        cols: Cols {
            src: 8,
            src_user: 9,
            dst_user: 10,
            rule: 12,
            desc: 18,
            event: 20,
            ..NONE
        },
        case: Case::Auth,
        sample: "1,2023/03/02 13:10:01,013101000001,AUTHENTICATION,0,2561,2023/03/02 13:10:01,vsys1,10.1.1.24,dave,corp\\dave,captive-portal,auth-policy-1,1,4242,okta,fwd,okta-profile,Authentication succeeded,browser,auth-success,1,1,0x0,0,0,0,0,vsys1,PA-3220,1,SAML",
    },
    LogType {
        ty: "USERID",
        cols: Cols {
            src: 8,
            src_user: 9,
            event: 11,
            sport: 14,
            dport: 15,
            ..NONE
        },
        case: Case::UserId,
        sample: "1,2023/03/02 13:20:01,013101000001,USERID,login,2561,2023/03/02 13:20:01,vsys1,10.1.1.25,corp\\erin,dc01,0,1,2700,0,0,agent,active-directory,7020,0x0,0,0,0,0,vsys1,PA-3220,1",
    },
    LogType {
        ty: "GLOBALPROTECT",
        cols: Cols {
            event: 8,
            src_user: 12,
            nat_src: 15,
            src: 17,
            desc: 27,
            status: 28,
            ..NONE
        },
        case: Case::GlobalProtect,
        sample: "1,2023/03/02 13:30:01,013101000001,GLOBALPROTECT,0,2561,2023/03/02 13:30:01,vsys1,gateway-auth,login,LDAP,IPSec,frank,FR,LAPTOP-7,198.51.100.77,0.0.0.0,10.99.0.5,0.0.0.0,a1b2c3,C02XYZ,6.1.0,Windows,10.0,1,,,,failure,",
    },
    LogType {
        ty: "HIPMATCH",
        cols: Cols {
            src_user: 7,
            src: 11,
            name: 12,
            ..NONE
        },
        case: Case::Fields,
        sample: "1,2023/03/02 13:40:01,013101000001,HIPMATCH,0,2561,2023/03/02 13:40:01,grace,vsys1,LAPTOP-8,Windows 10,10.1.1.26,disk-encrypted,1,object,0,0,7030,0x0",
    },
    LogType {
        ty: "HIP-MATCH",
        cols: Cols {
            src_user: 7,
            src: 11,
            name: 12,
            ..NONE
        },
        case: Case::Fields,
        sample: "1,2023/03/02 13:41:01,013101000001,HIP-MATCH,0,2561,2023/03/02 13:41:01,heidi,vsys1,LAPTOP-9,Mac OS X,10.1.1.27,av-running,1,profile,0,0,7031,0x0",
    },
    LogType {
        ty: "IPTAG",
        cols: Cols {
            src: 8,
            name: 9,
            event: 10,
            ..NONE
        },
        case: Case::Fields,
        sample: "1,2023/03/02 13:50:01,013101000001,IPTAG,0,2561,2023/03/02 13:50:01,vsys1,10.1.1.28,quarantine,register,1,0,xml-api,api,,7040,0x0",
    },
    LogType {
        ty: "SYSTEM",
        cols: Cols {
            event: 8,
            name: 9,
            category: 12,
            severity: 13,
            desc: 14,
            ..NONE
        },
        case: Case::System,
        sample: "1,2023/03/02 14:00:01,013101000001,SYSTEM,auth,2561,2023/03/02 14:00:01,,auth-fail,,0,0,general,medium,\"failed authentication for user 'mallory'. Reason: Invalid username/password. From: 203.0.113.99.\",7050,0x0",
    },
    LogType {
        ty: "CONFIG",
        cols: Cols {
            src: 7,
            category: 9,
            src_user: 10,
            name: 11,
            status: 12,
            desc: 13,
            ..NONE
        },
        case: Case::Config,
        sample: "1,2023/03/02 14:10:01,013101000001,CONFIG,0,2561,2023/03/02 14:10:01,10.1.1.2,vsys1,edit,admin,Web,Succeeded, vsys  vsys1 rulebase security rules allow-web,7060,0x0",
    },
];

/// The AUDIT log: `Serial, Time, audit, FUTURE_USE, Action, Admin, Command, Result`.
#[cfg(test)]
const AUDIT_SAMPLE: &str = "Mar  2 14:20:01 PA-3220 013101000001,2023/03/02 14:20:01,audit,2561,cli-op,admin,\"<show><system><info/></system></show>\",success";

/// What a THREAT subtype becomes (other subtypes: intrusion).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ThreatCase {
    Virus,
    Url,
    File,
    Data,
    Flood,
    Intrusion,
}

/// THREAT subtypes; the misc column holds the URL (url, and vulnerability/virus when it has a
/// `/`) or the file name.
const THREAT_SUBTYPES: &[(&str, ThreatCase)] = &[
    ("virus", ThreatCase::Virus),
    ("wildfire-virus", ThreatCase::Virus),
    ("wildfire", ThreatCase::Virus),
    ("ml-virus", ThreatCase::Virus),
    ("url", ThreatCase::Url),
    ("file", ThreatCase::File),
    ("data", ThreatCase::Data),
    ("flood", ThreatCase::Flood),
    ("vulnerability", ThreatCase::Intrusion),
    ("spyware", ThreatCase::Intrusion),
    ("scan", ThreatCase::Intrusion),
    ("packet", ThreatCase::Intrusion),
];

/// One record, whichever encoding it came in: the fields the cases read.
#[derive(Default)]
struct Rec<'a> {
    ty: &'a str,
    sub: &'a str,
    serial: Option<&'a str>,
    time: Option<&'a str>,
    src: Option<&'a str>,
    dst: Option<&'a str>,
    nat_src: Option<&'a str>,
    nat_dst: Option<&'a str>,
    rule: Option<&'a str>,
    src_user: Option<&'a str>,
    dst_user: Option<&'a str>,
    app: Option<&'a str>,
    in_if: Option<&'a str>,
    out_if: Option<&'a str>,
    session: Option<&'a str>,
    sport: Option<&'a str>,
    dport: Option<&'a str>,
    nat_sport: Option<&'a str>,
    nat_dport: Option<&'a str>,
    proto: Option<&'a str>,
    action: Option<&'a str>,
    sent: Option<&'a str>,
    rcvd: Option<&'a str>,
    pkts_sent: Option<&'a str>,
    pkts_rcvd: Option<&'a str>,
    elapsed: Option<&'a str>,
    misc: Option<&'a str>,
    name: Option<&'a str>,
    category: Option<&'a str>,
    severity: Option<&'a str>,
    user_agent: Option<&'a str>,
    method: Option<&'a str>,
    event: Option<&'a str>,
    desc: Option<&'a str>,
    status: Option<&'a str>,
}

/// `,yyyy/mm/dd hh:mm:ss,` (or `yyyy-mm-ddThh:...`) at `sep` (the first date separator): the
/// byte offset of the comma before the date.
fn date_comma(b: &[u8], sep: usize) -> Option<usize> {
    let comma = sep.checked_sub(5)?;
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let ok = b.get(comma) == Some(&b',')
        && digits(comma + 1..sep)
        && digits(sep + 1..sep + 3)
        && b.get(sep + 3) == b.get(sep)
        && digits(sep + 4..sep + 6)
        && matches!(b.get(sep + 6), Some(b' ' | b'T'))
        && digits(sep + 7..sep + 9)
        && b.get(sep + 9) == Some(&b':');
    ok.then_some(comma)
}

/// Where the CSV record starts in `s` (the field before the receive time), if `s` has one.
fn record_start(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let comma = memchr::memchr2_iter(b'/', b'-', b)
        .take(24)
        .find_map(|sep| date_comma(b, sep))?;
    let before = b.get(..comma)?;
    Some(
        before
            .iter()
            .rposition(|&c| matches!(c, b' ' | b'>' | b'\t'))
            .map_or(0, |i| i + 1),
    )
}

/// The `n`th comma-separated field after `from` (no quotes in the header columns).
fn header_col(s: &str, n: usize) -> Option<&str> {
    s.split(',').nth(n)
}

/// True when the record at `start` is a known log type.
fn known_type(s: &str) -> bool {
    let Some(rec) = record_start(s).and_then(|i| s.get(i..)) else {
        return false;
    };
    header_col(rec, 3).is_some_and(|t| TYPES.iter().any(|l| l.ty == t))
        || header_col(rec, 2) == Some("audit")
}

/// A PAN-OS CSV record (in the text, or in the raw line when the header parser took part of
/// it), or cloud-forwarded JSON.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    if probe!(p, "\"LogType\"") {
        return true;
    }
    (probe!(p, "/") || probe!(p, "-"))
        && probe!(p, ",")
        && (known_type(p.input.text)
            // the header parser may have taken the first field for a hostname
            || p.input.raw.len() != p.input.text.len() && known_type(p.input.raw))
}

/// PAN-OS severity words (and correlation levels 1..5) on Pharos' scale.
fn severity(s: Option<&str>) -> Severity {
    let mut buf = [0u8; 16];
    let s = s.unwrap_or("");
    let Some(l) = buf.get_mut(..s.len()) else {
        return Severity::Info;
    };
    l.copy_from_slice(s.as_bytes());
    l.make_ascii_lowercase();
    match &*l {
        b"critical" | b"5" => Severity::Critical,
        b"high" | b"4" => Severity::High,
        b"medium" | b"3" => Severity::Middle,
        b"low" | b"2" => Severity::Low,
        _ => Severity::Info,
    }
}

/// Normalises one PAN-OS record.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    if has!(input.text, "\"LogType\"") {
        return json(input);
    }
    let t = [input.text, input.raw]
        .into_iter()
        .find(|s| known_type(s))?;
    let csv = t.get(record_start(t)?..)?;
    // PAN-OS 10 and 11 lines have more than 100 columns
    let mut f = Fields::with_capacity(128);
    split_csv(csv, &mut f);
    let col = |i: u8| {
        f.get(usize::from(i))
            .copied()
            .and_then(|v| present(Some(v)))
    };
    if col(2) == Some("audit") {
        let rec = Rec {
            ty: "AUDIT",
            serial: col(0),
            time: col(1),
            sub: col(4).unwrap_or(""),
            src_user: col(5),
            desc: col(6),
            status: col(7),
            ..Rec::default()
        };
        return Some(draft(&rec, Case::Audit));
    }
    let ty = col(3)?;
    let lt = TYPES.iter().find(|l| l.ty == ty)?;
    let c = &lt.cols;
    let rec = Rec {
        ty,
        sub: col(4).unwrap_or(""),
        serial: col(2),
        time: col(6).or(col(1)),
        src: col(c.src),
        dst: col(c.dst),
        nat_src: col(c.nat_src),
        nat_dst: col(c.nat_dst),
        rule: col(c.rule),
        src_user: col(c.src_user),
        dst_user: col(c.dst_user),
        app: col(c.app),
        in_if: col(c.in_if),
        out_if: col(c.out_if),
        session: col(c.session),
        sport: col(c.sport),
        dport: col(c.dport),
        nat_sport: col(c.nat_sport),
        nat_dport: col(c.nat_dport),
        proto: col(c.proto),
        action: col(c.action),
        sent: col(c.sent),
        rcvd: col(c.rcvd),
        pkts_sent: col(c.pkts_sent),
        pkts_rcvd: col(c.pkts_rcvd),
        elapsed: col(c.elapsed),
        misc: col(c.misc),
        name: col(c.name),
        category: col(c.category),
        severity: col(c.severity),
        user_agent: col(c.user_agent),
        method: col(c.method),
        event: col(c.event),
        desc: col(c.desc),
        status: col(c.status),
    };
    Some(draft(&rec, lt.case))
}

/// Cloud log forwarding JSON keys for each record field (first present key wins).
const JSON_KEYS: &[&[&str]] = &[
    &["LogType", "log_type"],
    &["Subtype", "SubType", "sub_type"],
    &["DeviceSN", "SerialNumber", "device_sn"],
    &[
        "TimeGenerated",
        "GeneratedTime",
        "TimeReceived",
        "time_generated",
    ],
    &["SourceAddress", "SourceIP", "source_ip"],
    &["DestinationAddress", "DestinationIP", "dest_ip"],
    &["NATSource", "NATSourceIP", "nat_source"],
    &["NATDestination", "NATDestinationIP", "nat_dest"],
    &["Rule", "RuleName", "rule_matched"],
    &["SourceUser", "source_user"],
    &["DestinationUser", "dest_user"],
    &["Application", "app"],
    &["InboundInterface", "inbound_if"],
    &["OutboundInterface", "outbound_if"],
    &["SessionID", "session_id"],
    &["SourcePort", "source_port"],
    &["DestinationPort", "dest_port"],
    &["NATSourcePort", "nat_source_port"],
    &["NATDestinationPort", "nat_dest_port"],
    &["Protocol", "protocol"],
    &["Action", "action"],
    &["BytesSent", "bytes_sent"],
    &["BytesReceived", "bytes_received"],
    &["URL", "URLFilename", "Filename", "FileName", "url", "Misc"],
    &[
        "ThreatName",
        "ThreatNameFirewall",
        "ThreatID",
        "threat_name",
    ],
    &["URLCategory", "ThreatCategory", "url_category"],
    &["Severity", "severity"],
    &["UserAgent", "user_agent"],
    &["HTTPMethod", "http_method"],
    &["EventID", "event_id"],
    &["EventDescription", "Description", "description"],
    &["URLDomain", "url_domain"],
    &["PacketsSent", "packets_sent"],
    &["PacketsReceived", "packets_received"],
    &["SessionDuration", "ElapsedTime", "elapsed"],
];

/// A scalar JSON value as text.
fn scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(clip(s)),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Cloud-forwarded JSON (one object per line, after an optional header).
fn json(input: &LogInput<'_>) -> Option<Draft> {
    let t = input.text;
    let body = t.get(t.find('{')?..)?;
    let obj: serde_json::Map<String, serde_json::Value> = serde_json::from_str(body).ok()?;
    let v: Vec<Option<String>> = JSON_KEYS
        .iter()
        .map(|keys| keys.iter().find_map(|k| obj.get(*k)).and_then(scalar))
        .collect();
    let g = |i: usize| v.get(i).and_then(|s| present(s.as_deref()));
    let ty = g(0)?;
    let mut upper = [0u8; 16];
    let ty_up = upper.get_mut(..ty.len())?;
    ty_up.copy_from_slice(ty.as_bytes());
    ty_up.make_ascii_uppercase();
    let ty_up = std::str::from_utf8(ty_up).ok()?;
    let lt = TYPES.iter().find(|l| l.ty == ty_up)?;
    let rec = Rec {
        ty: lt.ty,
        sub: g(1).unwrap_or(""),
        serial: g(2),
        time: g(3),
        src: g(4),
        dst: g(5),
        nat_src: g(6),
        nat_dst: g(7),
        rule: g(8),
        src_user: g(9),
        dst_user: g(10),
        app: g(11),
        in_if: g(12),
        out_if: g(13),
        session: g(14),
        sport: g(15),
        dport: g(16),
        nat_sport: g(17),
        nat_dport: g(18),
        proto: g(19),
        action: g(20),
        sent: g(21),
        rcvd: g(22),
        pkts_sent: g(32),
        pkts_rcvd: g(33),
        elapsed: g(34),
        misc: g(23).or(g(31)),
        name: g(24),
        category: g(25),
        severity: g(26),
        user_agent: g(27),
        method: g(28),
        event: g(29),
        desc: g(30),
        status: None,
    };
    Some(draft(&rec, lt.case))
}

/// The host of a PAN-OS URL (`www.example.com/path`, with or without a scheme).
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?']).next()?;
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
        _ => host,
    };
    (!host.is_empty() && !host.contains(' ')).then_some(host)
}

/// True when the THREAT misc column is a URL rather than a file name.
fn misc_is_url(sub: &str, misc: &str) -> bool {
    sub == "url" || misc.contains('/') && !misc.contains('\\')
}

/// The fields of a record, all of them (the case then drops what its leaves hold).
fn all_fields(r: &Rec<'_>) -> LogFields {
    let num = |s: Option<&str>| s.and_then(|v| v.parse::<u64>().ok());
    let url = r.misc.filter(|m| misc_is_url(r.sub, m));
    LogFields {
        src_ip: r.src.and_then(ip),
        src_port: r.sport.and_then(port),
        dst_ip: r.dst.and_then(ip),
        dst_port: r.dport.and_then(port),
        nat_src_ip: r.nat_src.and_then(ip).filter(|a| !a.is_unspecified()),
        nat_src_port: r.nat_sport.and_then(port).filter(|p| *p != 0),
        nat_dst_ip: r.nat_dst.and_then(ip).filter(|a| !a.is_unspecified()),
        nat_dst_port: r.nat_dport.and_then(port).filter(|p| *p != 0),
        protocol: r.proto.map(|p| clip(p).to_ascii_lowercase()),
        action: r.action.map(clip),
        rule_name: r.rule.or(r.name).map(clip),
        user: r.src_user.or(r.dst_user).map(clip),
        domain: url.and_then(url_host).map(clip),
        url: url.map(clip),
        http_method: r.method.map(|m| clip(m).to_ascii_uppercase()),
        user_agent: r.user_agent.map(clip),
        sent_bytes: num(r.sent),
        received_bytes: num(r.rcvd),
        session_id: r.session.filter(|s| *s != "0").map(clip),
        message_id: Some(clip(
            r.event.filter(|_| r.ty != "AUTHENTICATION").unwrap_or(r.ty),
        )),
        in_interface: r.in_if.map(clip),
        out_interface: r.out_if.map(clip),
        application: r.app.map(clip),
        file_name: r.misc.filter(|m| !misc_is_url(r.sub, m)).map(clip),
        ..LogFields::default()
    }
}

/// The draft of one record: its case, severity, time and fields.
fn draft(r: &Rec<'_>, case: Case) -> Draft {
    let flow = Flow {
        src_ip: r.src.and_then(ip),
        src_port: r.sport.and_then(port),
        dst_ip: r.dst.and_then(ip),
        dst_port: r.dport.and_then(port),
    };
    let (kind, sev) = match case {
        Case::Session => session(r, flow),
        Case::Threat => threat(r, flow),
        Case::Correlation => (
            Kind::Intrusion(build::intrusion(
                flow,
                build::rule_or(r.name, RULE),
                Ids::default(),
            )),
            severity(r.severity),
        ),
        Case::Auth => {
            let failed = [r.event, r.desc, Some(r.sub)]
                .into_iter()
                .flatten()
                .any(|s| build::contains_ci(s, "fail"));
            let ty = if failed {
                UserActivityType::FailedLogin
            } else {
                UserActivityType::SuccessfulLogin
            };
            let sev = if failed {
                Severity::Low
            } else {
                Severity::Info
            };
            (
                build::user_activity(r.src_user, None, flow.src_ip, None, ty, r.desc),
                sev,
            )
        }
        Case::UserId => {
            let ty = if r.sub == "logout" {
                UserActivityType::Logout
            } else {
                UserActivityType::SuccessfulLogin
            };
            (
                build::user_activity(r.src_user, None, flow.src_ip, flow.src_port, ty, r.event),
                Severity::Info,
            )
        }
        Case::GlobalProtect => global_protect(r, flow),
        Case::System => {
            let desc = r.desc.unwrap_or("");
            (system(r.event.unwrap_or(""), desc), severity(r.severity))
        }
        Case::Config => (
            build::config_change(r.src_user, flow.src_ip, None, r.desc),
            Severity::Low,
        ),
        Case::Audit => (
            build::access_log(
                r.src_user,
                None,
                None,
                pharos_model::ident::OperationType::Other,
                r.desc,
                r.status,
            ),
            Severity::Low,
        ),
        Case::Fields => (
            build::unmapped("panos log type kept as fields"),
            Severity::Info,
        ),
    };
    let all = all_fields(r);
    let method = all.http_method.clone();
    let mut fields = build::fields_beyond_case(&kind, all);
    if matches!(kind, Kind::WebAttack(_)) {
        // `req-method` is an identity of eight methods: the vendor's word is kept as well
        fields.http_method = method;
    }
    let what = r.name.or(r.misc).or(r.desc).or(r.action).unwrap_or("");
    Draft::new(kind, sev)
        .time(r.time.and_then(crate::time::iso))
        .vendor("Palo Alto Networks")
        .model(
            r.serial
                .filter(|s| s.bytes().all(|b| b.is_ascii_alphanumeric())),
        )
        .summary(format!("{} {} {what}", r.ty, r.sub))
        .fields(fields)
}

/// A session log: firewall traffic log.
fn session(r: &Rec<'_>, flow: Flow) -> (Kind, Severity) {
    let num = |s: Option<&str>| s.and_then(|v| v.parse::<u64>().ok());
    let action = r
        .action
        .and_then(build::action)
        .or_else(|| build::action(r.sub));
    let sev = match action {
        Some(pharos_model::ident::IngressAction::Pass) | None => Severity::Info,
        Some(_) => Severity::Low,
    };
    let k = Kind::FirewallTrafficLog(FirewallTrafficLog {
        src_ip: flow.src_ip,
        dst_ip: flow.dst_ip,
        src_port: flow.src_port,
        dst_port: flow.dst_port,
        protocol: r.proto.and_then(build::protocol),
        action,
        sent_bytes: num(r.sent),
        received_bytes: num(r.rcvd),
        sent_packets: num(r.pkts_sent),
        received_packets: num(r.pkts_rcvd),
        policy_name: r.rule.map(clip),
        rule_name: r.rule.map(clip),
        in_interface: r.in_if.map(clip),
        out_interface: r.out_if.map(clip),
        application: r.app.map(clip),
        user: r.src_user.map(clip),
        session_id: num(r.session),
        duration: r.elapsed.and_then(|v| v.parse().ok()),
    });
    (k, sev)
}

/// A THREAT log by subtype ([`THREAT_SUBTYPES`]).
fn threat(r: &Rec<'_>, flow: Flow) -> (Kind, Severity) {
    let sub = r.sub;
    let case = THREAT_SUBTYPES
        .iter()
        .find(|(s, _)| s.eq_ignore_ascii_case(sub))
        .map_or(ThreatCase::Intrusion, |(_, c)| *c);
    let name = r.name.unwrap_or("");
    let sev = severity(r.severity);
    let rule_name = build::rule_or(r.name, RULE);
    let actions = || r.action.and_then(build::action).into_iter().collect();
    let misc_url = r.misc.filter(|m| misc_is_url(sub, m));
    let kind = match case {
        ThreatCase::Virus => Kind::Virus(VirusEvent {
            src_ip: flow.src_ip,
            src_port: flow.src_port,
            dst_ip: flow.dst_ip,
            dst_port: flow.dst_port,
            rule_name,
            virus_name: r.name.map(clip),
            virus_type: build::virus_type(name),
            host: flow.dst_ip.map(|a: IpAddr| a.to_string()),
            file_type: None,
            file_name: r.misc.filter(|m| !misc_is_url(sub, m)).map(clip),
            os: None,
        }),
        ThreatCase::Url | ThreatCase::File | ThreatCase::Data => Kind::DpiLog(DpiLog {
            attack_type: Some(if case == ThreatCase::File {
                DpiType::FileBlocking
            } else {
                DpiType::DataFiltering
            }),
            src_ip: flow.src_ip,
            src_port: flow.src_port,
            dst_ip: flow.dst_ip,
            dst_port: flow.dst_port,
            rule_name: if case == ThreatCase::Url {
                build::rule_or(r.category.or(r.rule), RULE)
            } else {
                rule_name
            },
            action: actions(),
        }),
        ThreatCase::Flood => {
            let l = name.to_ascii_lowercase();
            const FLOODS: &[(&str, DdosType)] = &[
                ("syn", DdosType::SynFlood),
                ("udp", DdosType::UdpFlood),
                ("icmpv6", DdosType::Icmpv6Flood),
                ("icmp", DdosType::Icmpv4Flood),
            ];
            Kind::Ddos(build::ddos(
                flow,
                rule_name,
                build::first_keyword(&l, FLOODS),
            ))
        }
        ThreatCase::Intrusion => build::intrusion_or_web_attack(
            flow,
            rule_name,
            build::web_attack_type(name).or_else(|| {
                (r.app == Some("web-browsing") && has!(name, "HTTP"))
                    .then_some(pharos_model::ident::WebAttackType::OtherWebAttack)
            }),
            Request {
                method: r.method,
                target: misc_url,
                host: misc_url.and_then(url_host),
                response_code: None,
            },
            Ids {
                protocol: r.proto.and_then(build::transport),
                app: build::app_or_port(r.app, flow.dst_port),
                attack_type: build::intrusion_attack_type(name)
                    .or_else(|| (sub == "scan").then_some(IntrusionAttackType::PortScan)),
            },
        ),
    };
    (kind, sev)
}

/// GlobalProtect: the connection stage's result as user activity.
fn global_protect(r: &Rec<'_>, flow: Flow) -> (Kind, Severity) {
    let event = r.event.unwrap_or("");
    let failed = r.status.is_some_and(|s| s.eq_ignore_ascii_case("failure"))
        || build::contains_ci(event, "fail");
    let ty = if failed {
        UserActivityType::FailedLogin
    } else if build::contains_ci(event, "logout") || build::contains_ci(event, "disconnect") {
        UserActivityType::Logout
    } else {
        UserActivityType::SuccessfulLogin
    };
    let addr = flow
        .src_ip
        .filter(|a| !a.is_unspecified())
        .or(r.nat_src.and_then(ip));
    let sev = if failed {
        Severity::Low
    } else {
        Severity::Info
    };
    (
        build::user_activity(r.src_user, None, addr, None, ty, r.desc.or(r.event)),
        sev,
    )
}

/// SYSTEM event ids that are authentication results.
const SYSTEM_AUTH: &[(&str, UserActivityType)] = &[
    ("auth-fail", UserActivityType::FailedLogin),
    ("auth-failure", UserActivityType::FailedLogin),
    (
        "globalprotectportal-auth-fail",
        UserActivityType::FailedLogin,
    ),
    (
        "globalprotectgateway-auth-fail",
        UserActivityType::FailedLogin,
    ),
    ("auth-success", UserActivityType::SuccessfulLogin),
    (
        "globalprotectportal-auth-succ",
        UserActivityType::SuccessfulLogin,
    ),
    (
        "globalprotectgateway-auth-succ",
        UserActivityType::SuccessfulLogin,
    ),
    ("logout", UserActivityType::Logout),
    ("globalprotectgateway-logout-succ", UserActivityType::Logout),
];

/// SYSTEM events: authentication results become user activity, the rest generic logs.
fn system(event_id: &str, desc: &str) -> Kind {
    let ty = SYSTEM_AUTH
        .iter()
        .find(|(e, _)| *e == event_id)
        .map(|(_, t)| *t)
        .or_else(|| {
            (build::contains_ci(desc, "failed authentication")
                || build::contains_ci(desc, "login failed"))
            .then_some(UserActivityType::FailedLogin)
        });
    let Some(ty) = ty else {
        return build::unmapped("panos system event kept as fields");
    };
    // "... for user 'alice'. From: 10.0.0.1." / "User name: alice, ... Client IP: 10.0.0.1"
    let user = desc.split(['\'', '"']).nth(1).or_else(|| {
        desc.split("User name: ")
            .nth(1)
            .and_then(|r| r.split([',', ' ', '.']).next())
    });
    let from = desc
        .split("From: ")
        .nth(1)
        .or_else(|| desc.split("Client IP: ").nth(1))
        .and_then(|r| r.split([',', ' ']).next())
        .map(|r| r.trim_end_matches('.'))
        .and_then(ip);
    build::user_activity(user, None, from, None, ty, Some(desc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};

    fn fields(n: &crate::Normalized) -> LogFields {
        n.message
            .common
            .fields
            .as_deref()
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn every_log_type_sample_is_parsed_with_its_case() {
        for lt in TYPES {
            let n = auto(lt.sample, "panos");
            let k = &n.message.kind;
            let ok = match lt.case {
                Case::Session => matches!(k, Kind::FirewallTrafficLog(_)),
                Case::Threat => matches!(k, Kind::DpiLog(_)),
                Case::Correlation => matches!(k, Kind::Intrusion(_)),
                Case::Auth | Case::UserId | Case::GlobalProtect | Case::System => {
                    matches!(k, Kind::UserActivityLog(_))
                }
                Case::Config => matches!(k, Kind::SystemEvent(_)),
                Case::Audit => matches!(k, Kind::SystemAccessLog(_)),
                Case::Fields => matches!(k, Kind::GenericLog(_)),
            };
            assert!(ok, "{}: {k:?}", lt.ty);
            assert!(n.message.common.fields.is_some(), "{}", lt.ty);
        }
        let n = auto(AUDIT_SAMPLE, "panos");
        let Kind::SystemAccessLog(a) = &n.message.kind else {
            panic!("{:?}", n.message.kind)
        };
        assert_eq!(a.user, "admin");
    }

    #[test]
    fn traffic_keeps_nat_and_rule_and_user() {
        let n = auto(TYPES[0].sample, "panos");
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.src_ip, ip("10.1.1.20"));
        assert_eq!(f.dst_port, Some(80));
        assert_eq!(f.rule_name.as_deref(), Some("allow-web"));
        assert_eq!(f.user.as_deref(), Some("corp\\alice"));
        assert_eq!(f.sent_bytes, Some(1200));
        assert_eq!(f.sent_packets, Some(10));
        assert_eq!(f.duration, Some(10));
        let x = fields(&n);
        assert_eq!(x.nat_src_ip, ip("198.51.100.2"));
        assert_eq!(x.nat_src_port, Some(40123));
        assert_eq!(x.message_id.as_deref(), Some("TRAFFIC"));
        assert_eq!(
            n.message.common.event_time.to_rfc3339(),
            "2023-03-02T10:00:01+00:00"
        );
    }

    #[test]
    fn threat_url_keeps_url_domain_method_and_agent() {
        let n = auto(TYPES[1].sample, "panos");
        let Kind::DpiLog(d) = &n.message.kind else {
            panic!()
        };
        assert_eq!(d.rule_name, "phishing");
        let x = fields(&n);
        assert_eq!(x.url.as_deref(), Some("www.example.net/login.php?x=1"));
        assert_eq!(x.domain.as_deref(), Some("www.example.net"));
        assert_eq!(x.http_method.as_deref(), Some("GET"));
        assert_eq!(x.user_agent.as_deref(), Some("Mozilla/5.0"));
        assert_eq!(x.user.as_deref(), Some("bob"));
    }

    #[test]
    fn threat_subtypes_follow_the_table() {
        let base = "Mar  2 11:00:00 fw1 1,2023/03/02 11:00:01,013101000001,THREAT,SUB,2561,2023/03/02 11:00:00,203.0.113.165,10.30.250.61,0.0.0.0,0.0.0.0,web-in,,,web-browsing,vsys1,untrust,trust,ethernet1/1,ethernet1/2,Fwd,2023/03/02 11:00:00,51557,1,55094,80,0,0,0x502000,tcp,reset-both,\"MISC\",NAME,any,high,client-to-server";
        type Case4 = (&'static str, &'static str, &'static str, fn(&Kind) -> bool);
        let cases: &[Case4] = &[
            (
                "virus",
                "eicar.com",
                "Eicar Test File(100000)",
                |k| matches!(k, Kind::Virus(v) if v.file_name.as_deref() == Some("eicar.com")),
            ),
            (
                "wildfire",
                "setup.exe",
                "Windows Executable (EXE)(52020)",
                |k| matches!(k, Kind::Virus(_)),
            ),
            (
                "file",
                "report.pdf",
                "PDF File(52018)",
                |k| matches!(k, Kind::DpiLog(d) if d.attack_type == Some(DpiType::FileBlocking)),
            ),
            ("flood", "", "TCP Flood(8501)", |k| {
                matches!(k, Kind::Ddos(_))
            }),
            (
                "flood",
                "",
                "SYN Flood(8501)",
                |k| matches!(k, Kind::Ddos(d) if d.attack_type == Some(DdosType::SynFlood)),
            ),
            (
                "scan",
                "",
                "TCP Port Scan(8001)",
                |k| matches!(k, Kind::Intrusion(i) if i.attack_type == Some(IntrusionAttackType::PortScan)),
            ),
            ("spyware", "", "Cobalt Strike Beacon(86246)", |k| {
                matches!(k, Kind::Intrusion(_))
            }),
            (
                "vulnerability",
                "www.example.org/index.php?id=1'",
                "Generic SQL Injection Attempt(30000)",
                |k| matches!(k, Kind::WebAttack(w) if w.req_host.as_deref() == Some("www.example.org")),
            ),
        ];
        for (sub, misc, name, check) in cases {
            let line = base
                .replace("SUB", sub)
                .replace("MISC", misc)
                .replace("NAME", name);
            let n = auto(&line, "panos");
            assert!(check(&n.message.kind), "{sub}: {:?}", n.message.kind);
            assert_eq!(n.message.common.severity, Severity::High);
        }
    }

    #[test]
    fn header_variants_are_found() {
        let body = "1,2023/03/02 10:00:01,013101000001,TRAFFIC,drop,2561,2023/03/02 10:00:02,10.20.0.84,198.51.100.232,,,DENY-ALL,,,not-applicable,vsys1,INSIDE,OUTSIDE,ethernet1/1,,Log-Fwd,2023/03/02 10:00:02,0,1,500,500,0,0,0x0,udp,deny";
        for line in [
            body.to_string(),
            format!("<14>Mar  2 10:00:01 PA-3220 {body}"),
            format!("Mar  2 10:00:01 {body}"),
            format!("<134>1 2023-03-02T10:00:01+01:00 PA-3220 - - - - {body}"),
            format!("2023-03-02T10:00:01Z PA-3220 {body}"),
        ] {
            let n = auto(&line, "panos");
            let Kind::FirewallTrafficLog(f) = &n.message.kind else {
                panic!("{line}")
            };
            assert_eq!(f.src_ip, ip("10.20.0.84"), "{line}");
            assert_eq!(f.action, Some(pharos_model::ident::IngressAction::Drop));
        }
    }

    #[test]
    fn correlation_and_globalprotect_and_userid_keep_users() {
        let n = auto(TYPES[8].sample, "panos");
        let Kind::Intrusion(i) = &n.message.kind else {
            panic!()
        };
        assert_eq!(i.rule_name, "beacon-detection");
        assert_eq!(fields(&n).user.as_deref(), Some("carol"));
        assert_eq!(n.message.common.severity, Severity::Critical);
        let n = auto(TYPES[11].sample, "panos");
        let Kind::UserActivityLog(u) = &n.message.kind else {
            panic!()
        };
        assert_eq!(u.user, "frank");
        assert_eq!(u.ip_address, ip("10.99.0.5").unwrap());
        assert_eq!(
            u.additional_info.activity_type,
            Some(UserActivityType::FailedLogin)
        );
        let n = auto(TYPES[10].sample, "panos");
        let Kind::UserActivityLog(u) = &n.message.kind else {
            panic!()
        };
        assert_eq!(u.user, "corp\\erin");
        assert_eq!(u.ip_address, ip("10.1.1.25").unwrap());
    }

    #[test]
    fn cloud_json_traffic_and_threat() {
        let n = auto(
            r#"{"LogType":"TRAFFIC","Subtype":"end","TimeReceived":"2023-03-02T10:00:05.000000Z","TimeGenerated":"2023-03-02T10:00:01.000000Z","DeviceSN":"013101000001","SourceAddress":"10.1.1.30","DestinationAddress":"198.51.100.30","NATSource":"198.51.100.2","NATDestination":"198.51.100.30","Rule":"allow-dns","SourceUser":"ivan","Application":"dns","FromZone":"trust","ToZone":"untrust","SessionID":99,"SourcePort":53000,"DestinationPort":53,"NATSourcePort":41000,"NATDestinationPort":53,"Protocol":"udp","Action":"allow","BytesSent":80,"BytesReceived":160}"#,
            "panos",
        );
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!("{:?}", n.message.kind)
        };
        assert_eq!(f.src_ip, ip("10.1.1.30"));
        assert_eq!(f.dst_port, Some(53));
        assert_eq!(f.user.as_deref(), Some("ivan"));
        assert_eq!(fields(&n).nat_src_port, Some(41000));
        let n = auto(
            r#"{"LogType":"THREAT","Subtype":"url","TimeGenerated":"2023-03-02T11:00:00Z","SourceAddress":"10.1.1.31","DestinationAddress":"198.51.100.31","SourcePort":50000,"DestinationPort":443,"Protocol":"tcp","Action":"block-url","URL":"bad.example.com/payload","URLDomain":"bad.example.com","URLCategory":"malware","SourceUser":"judy","Severity":"Informational"}"#,
            "panos",
        );
        assert!(matches!(n.message.kind, Kind::DpiLog(_)));
        assert_eq!(fields(&n).domain.as_deref(), Some("bad.example.com"));
    }

    #[test]
    fn other_csv_lines_are_not_panos() {
        for line in [
            "a,2023/03/02 10:00:01,x,NOTATYPE,y",
            "date=2023/03/02,time=10:00:01,type=traffic",
            "1,2023/03/02 10:00:01",
        ] {
            assert!(!known_type(line), "{line}");
        }
    }
}
