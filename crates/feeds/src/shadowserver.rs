//! Shadowserver CSV reports: a header row of their column names, one event per row
//! (<https://www.shadowserver.org/what-we-do/network-reporting/>). The report type (from the
//! file name Shadowserver gives, `2026-12-01-scan_ntp-...csv`, or `--report`) picks the
//! shape; columns are found by name, so added or reordered columns are fine.

use std::collections::HashMap;
use std::io::BufRead;
use std::net::IpAddr;

use pharos_model::ident::{IntrusionAttackType, TransportProtocol};
use pharos_model::rsit::Classification;
use pharos_model::{
    BotnetEvent, Common, GenericLog, IntrusionEvent, Kind, LogFields, Message, Severity,
    VulnerabilityScanLog,
};

use crate::read::{Record, Records, split_csv};
use crate::{FeedError, Options, RowResult, clip, parse_time};

/// What a report's rows become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// An open service or amplifier found by a scan: a vulnerability-scan log of the host.
    OpenService,
    /// A device that connected to a sinkhole: a botnet event (the device is the bot).
    Sinkhole,
    /// An address on a blocklist: a generic log.
    Blocklist,
    /// An address that tried passwords on a honeypot: an intrusion event (brute force).
    BruteForce,
    /// An address that scanned a darknet or honeypot: an intrusion event (port scan).
    Scanner,
    /// Any other report: a generic log with the addresses and ports in `envelope/fields`.
    Generic,
}

/// A Shadowserver report type Pharos knows.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    /// The report's name as in Shadowserver's file names (`scan6_*` files are read as the
    /// matching `scan_*`, `event6_*` as `event4_*`).
    pub name: &'static str,
    /// What a row says, in words (the message text).
    pub what: &'static str,
    shape: Shape,
    /// RSIT taxonomy and type.
    taxonomy: (&'static str, &'static str),
}

const fn r(
    name: &'static str,
    what: &'static str,
    shape: Shape,
    taxonomy: (&'static str, &'static str),
) -> Report {
    Report {
        name,
        what,
        shape,
        taxonomy,
    }
}

const AMP: (&str, &str) = ("vulnerable", "ddos-amplifier");
const OPEN: (&str, &str) = ("vulnerable", "potentially-unwanted-accessible");
use Shape::*;

/// Every report type read, with its shape and classification (docs/feeds.md has the table).
pub const REPORTS: &[Report] = &[
    r(
        "scan_ntp",
        "open NTP server (mode 6/7 queries answered: amplifier)",
        OpenService,
        AMP,
    ),
    r(
        "scan_ntpmonitor",
        "NTP server answering monlist (amplifier)",
        OpenService,
        AMP,
    ),
    r(
        "scan_dns",
        "open DNS resolver (amplifier)",
        OpenService,
        AMP,
    ),
    r(
        "scan_ssdp",
        "open SSDP/UPnP service (amplifier)",
        OpenService,
        AMP,
    ),
    r(
        "scan_memcached",
        "open memcached server (amplifier)",
        OpenService,
        AMP,
    ),
    r(
        "scan_chargen",
        "open chargen service (amplifier)",
        OpenService,
        AMP,
    ),
    r(
        "scan_qotd",
        "open QOTD service (amplifier)",
        OpenService,
        AMP,
    ),
    r(
        "scan_snmp",
        "open SNMP service (amplifier)",
        OpenService,
        AMP,
    ),
    r(
        "scan_cldap",
        "open CLDAP service (amplifier)",
        OpenService,
        AMP,
    ),
    r(
        "scan_mdns",
        "open mDNS service (amplifier)",
        OpenService,
        AMP,
    ),
    r(
        "scan_portmapper",
        "open portmapper (amplifier)",
        OpenService,
        AMP,
    ),
    r(
        "scan_netbios",
        "open NetBIOS name service (amplifier)",
        OpenService,
        AMP,
    ),
    r(
        "scan_ard",
        "open Apple Remote Desktop service (amplifier)",
        OpenService,
        AMP,
    ),
    r(
        "scan_ws_discovery",
        "open WS-Discovery service (amplifier)",
        OpenService,
        AMP,
    ),
    r(
        "scan_coap",
        "open CoAP service (amplifier)",
        OpenService,
        AMP,
    ),
    r(
        "scan_ubiquiti",
        "open Ubiquiti discovery service (amplifier)",
        OpenService,
        AMP,
    ),
    r(
        "scan_rdp",
        "RDP accessible from the Internet",
        OpenService,
        OPEN,
    ),
    r(
        "scan_telnet",
        "telnet accessible from the Internet",
        OpenService,
        OPEN,
    ),
    r(
        "scan_vnc",
        "VNC accessible from the Internet",
        OpenService,
        OPEN,
    ),
    r(
        "scan_smb",
        "SMB accessible from the Internet",
        OpenService,
        OPEN,
    ),
    r(
        "scan_redis",
        "Redis accessible from the Internet",
        OpenService,
        OPEN,
    ),
    r(
        "scan_mongodb",
        "MongoDB accessible from the Internet",
        OpenService,
        OPEN,
    ),
    r(
        "scan_elasticsearch",
        "Elasticsearch accessible from the Internet",
        OpenService,
        OPEN,
    ),
    r(
        "event4_sinkhole_http",
        "device connected to an HTTP sinkhole (infected)",
        Sinkhole,
        ("malicious-code", "infected-system"),
    ),
    r(
        "event4_sinkhole",
        "device connected to a sinkhole (infected)",
        Sinkhole,
        ("malicious-code", "infected-system"),
    ),
    r(
        "botnet_drone",
        "botnet drone seen by a sinkhole (infected)",
        Sinkhole,
        ("malicious-code", "infected-system"),
    ),
    r(
        "sinkhole_http_drone",
        "device connected to an HTTP sinkhole (infected)",
        Sinkhole,
        ("malicious-code", "infected-system"),
    ),
    r(
        "blocklist",
        "address on a blocklist",
        Blocklist,
        ("other", "other"),
    ),
    r(
        "event4_honeypot_brute_force",
        "brute-force attempts on a honeypot",
        BruteForce,
        ("intrusion-attempts", "brute-force"),
    ),
    r(
        "event4_honeypot_darknet",
        "scanning seen by a darknet sensor",
        Scanner,
        ("information-gathering", "scanner"),
    ),
    r(
        "generic",
        "Shadowserver report row",
        Generic,
        ("other", "undetermined"),
    ),
];

/// The report named `name` (`scan6_x` as `scan_x`, `event6_x` as `event4_x`).
fn find(name: &str) -> Option<&'static Report> {
    let name = name.trim().to_ascii_lowercase();
    let canon = if let Some(rest) = name.strip_prefix("scan6_") {
        format!("scan_{rest}")
    } else if let Some(rest) = name.strip_prefix("event6_") {
        format!("event4_{rest}")
    } else {
        name
    };
    REPORTS.iter().find(|r| r.name == canon)
}

/// The report of a Shadowserver file name: a `-`-separated part naming a report.
fn from_file_name(file: &str) -> Option<&'static Report> {
    let base = file.rsplit(['/', '\\']).next().unwrap_or(file);
    let stem = base.split('.').next().unwrap_or(base);
    stem.split('-').find_map(find)
}

/// The columns of the header row, by lowercase name.
struct Columns(HashMap<String, usize>);

impl Columns {
    fn get<'a>(&self, row: &'a [String], names: &[&str]) -> Option<&'a str> {
        names.iter().find_map(|n| {
            self.0
                .get(*n)
                .and_then(|&i| row.get(i))
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
        })
    }
}

pub(crate) fn import(
    input: impl BufRead,
    opts: &Options,
    each: &mut dyn FnMut(usize, RowResult),
) -> Result<(), FeedError> {
    let file = opts.file_name.clone();
    let report = match &opts.report {
        Some(name) => find(name).ok_or_else(|| FeedError::Report {
            file: file.clone(),
            why: format!("unknown report type {name:?}"),
        })?,
        None => from_file_name(&file).ok_or_else(|| FeedError::Report {
            file: file.clone(),
            why: "the file name does not name a known report type".into(),
        })?,
    };
    let io = |source| FeedError::Io {
        file: file.clone(),
        source,
    };
    let mut records = Records::csv(input);
    let header = loop {
        match records.next_record().map_err(io)? {
            None => return Ok(()),
            Some(Record::Text { text, .. }) if text.trim().is_empty() => continue,
            Some(Record::Text { text, .. }) => break text,
            Some(Record::Bad { why, .. }) => {
                return Err(FeedError::Header {
                    file,
                    column: format!("timestamp (the header line is unreadable: {why})"),
                });
            }
        }
    };
    let cols = Columns(
        split_csv(&header)
            .into_iter()
            .enumerate()
            .map(|(i, n)| (n.trim().to_ascii_lowercase(), i))
            .collect(),
    );
    if !cols.0.contains_key("timestamp") {
        return Err(FeedError::Header {
            file,
            column: "timestamp".into(),
        });
    }
    if report.shape != Generic && !cols.0.contains_key("ip") && !cols.0.contains_key("src_ip") {
        return Err(FeedError::Header {
            file,
            column: "ip".into(),
        });
    }
    while let Some(rec) = records.next_record().map_err(io)? {
        match rec {
            Record::Text { text, .. } if text.trim().is_empty() => {}
            Record::Text { line, text } => each(line, row(report, &cols, &text)),
            Record::Bad { line, why } => each(line, Err(why)),
        }
    }
    Ok(())
}

fn ip(cols: &Columns, row: &[String], names: &[&str]) -> Result<Option<IpAddr>, String> {
    match cols.get(row, names) {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| {
            format!(
                "column {}: {:?} is not an IP address",
                names[0],
                clip(s, 64)
            )
        }),
    }
}

fn port(cols: &Columns, row: &[String], names: &[&str]) -> Result<Option<u16>, String> {
    match cols.get(row, names) {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| {
            format!(
                "column {}: {:?} is not a port (0 to 65535)",
                names[0],
                clip(s, 64)
            )
        }),
    }
}

fn transport(s: Option<&str>) -> Option<TransportProtocol> {
    match s?.to_ascii_lowercase().as_str() {
        "tcp" => Some(TransportProtocol::Tcp),
        "udp" => Some(TransportProtocol::Udp),
        "sctp" => Some(TransportProtocol::Sctp),
        _ => None,
    }
}

/// Shadowserver's `severity` column (critical, high, medium, low, info).
fn severity(s: Option<&str>) -> Option<Severity> {
    match s?.to_ascii_lowercase().as_str() {
        "critical" => Some(Severity::Critical),
        "high" => Some(Severity::High),
        "medium" => Some(Severity::Middle),
        "low" => Some(Severity::Low),
        "info" => Some(Severity::Info),
        _ => None,
    }
}

fn text(cols: &Columns, row: &[String], names: &[&str]) -> Option<String> {
    cols.get(row, names).map(|s| clip(s, 512))
}

fn row(report: &Report, cols: &Columns, line: &str) -> RowResult {
    let row = split_csv(line);
    let ts = cols
        .get(&row, &["timestamp"])
        .ok_or("column timestamp is empty; every row needs the time it was seen")?;
    let when = parse_time(ts).ok_or_else(|| {
        format!(
            "column timestamp: {:?} is not a time like \"2026-12-01 04:12:33\" (UTC)",
            clip(ts, 64)
        )
    })?;
    let src = ip(cols, &row, &["ip", "src_ip"])?;
    if src.is_none() && report.shape != Generic {
        return Err("column ip is empty; the row names no address".into());
    }
    let src_port = port(cols, &row, &["port", "src_port"])?;
    let dst = ip(cols, &row, &["dst_ip", "cc_ip", "cc"])?;
    let dst_port = port(cols, &row, &["dst_port", "cc_port"])?;
    let proto_text = text(cols, &row, &["protocol", "transport"]);
    let protocol = transport(proto_text.as_deref());
    let tag = text(cols, &row, &["tag"]);
    let hostname = text(cols, &row, &["hostname", "src_hostname"]);
    let infection = text(cols, &row, &["infection", "family", "malware"]);
    let fields = LogFields {
        src_ip: src,
        src_port,
        dst_ip: dst,
        dst_port,
        protocol: proto_text.map(|p| p.to_ascii_lowercase()),
        domain: text(cols, &row, &["http_host", "hostname", "src_hostname"]),
        url: text(cols, &row, &["http_url", "url"]),
        user_agent: text(cols, &row, &["http_agent", "agent"]),
        application: text(cols, &row, &["application"]),
        message_id: tag.clone(),
        src_as: text(cols, &row, &["asn", "src_asn"]).and_then(|a| crate::intelmq::asn(&a)),
        dst_as: text(cols, &row, &["dst_asn"]).and_then(|a| crate::intelmq::asn(&a)),
        ..LogFields::default()
    };
    let default_severity = match report.shape {
        OpenService | Blocklist => Severity::Middle,
        Sinkhole | BruteForce => Severity::High,
        Scanner => Severity::Low,
        Generic => Severity::Info,
    };
    let sev = severity(cols.get(&row, &["severity"])).unwrap_or(default_severity);
    let rule = tag
        .clone()
        .or_else(|| infection.clone())
        .unwrap_or_else(|| report.name.to_string());
    let kind = match report.shape {
        OpenService => Kind::VulnerabilityScanLog(VulnerabilityScanLog {
            vulnerability_id: format!("shadowserver:{}", report.name),
            vulnerability_name: Some(report.what.to_string()),
            victim_ip: src,
            protocol,
            port: src_port,
            level: Some(sev),
            os: None,
            fix_suggestion: Some(
                "close the service to the Internet or restrict it to the clients it serves".into(),
            ),
            rule_name: tag.clone(),
        }),
        Sinkhole => Kind::Botnet(BotnetEvent {
            src_ip: src,
            src_port,
            dst_ip: dst,
            dst_port,
            rule_name: rule,
            botnet_name: infection.clone(),
            role: Some("bot".into()),
            botnet_pkt_num: cols.get(&row, &["count"]).and_then(|c| c.parse().ok()),
            protocol,
        }),
        BruteForce | Scanner => Kind::Intrusion(IntrusionEvent {
            src_ip: src,
            src_port,
            dst_ip: dst,
            dst_port,
            rule_name: rule,
            protocol,
            app: None,
            attack_type: Some(if report.shape == BruteForce {
                IntrusionAttackType::BruteForce
            } else {
                IntrusionAttackType::PortScan
            }),
        }),
        Blocklist | Generic => Kind::GenericLog(GenericLog {
            format: Some("shadowserver-csv".into()),
            reason: Some(format!("Shadowserver {} report", report.name)),
            app_name: None,
        }),
    };
    let mut what = report.what.to_string();
    if report.shape == Blocklist
        && let Some(s) = text(cols, &row, &["source"])
    {
        what = format!("{what} ({s}");
        if let Some(r) = text(cols, &row, &["reason"]) {
            what = format!("{what}: {r}");
        }
        what.push(')');
    }
    if let Some(i) = &infection {
        what = format!("{what}: {i}");
    }
    if let Some(h) = &hostname {
        what = format!("{what}; host {h}");
    }
    if let Some(a) = cols.get(&row, &["asn", "src_asn"]) {
        what = format!("{what}; AS{}", clip(a, 16));
    }
    if let Some(g) = cols.get(&row, &["geo", "src_geo"]) {
        what = format!("{what} {}", clip(g, 8));
    }
    let mut common = Common::new("shadowserver");
    common.vendor_name = Some("Shadowserver".into());
    common.event_time = when;
    common.severity = sev;
    common.message = Some(clip(&what, 1024));
    common.source = Some(format!("feed:shadowserver/{}", report.name));
    common.raw = Some(clip(line, 4096));
    common.fields = Some(Box::new(fields));
    common.classification = Classification::new(report.taxonomy.0, report.taxonomy.1);
    Ok(Message { common, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(report: Option<&str>, file: &str, csv: &str) -> Vec<(usize, RowResult)> {
        let mut out = Vec::new();
        let opts = Options {
            report: report.map(str::to_string),
            file_name: file.into(),
        };
        import(csv.as_bytes(), &opts, &mut |l, r| out.push((l, r))).unwrap();
        out
    }

    #[test]
    fn every_report_has_an_rsit_classification() {
        for r in REPORTS {
            assert!(
                Classification::new(r.taxonomy.0, r.taxonomy.1).is_some(),
                "{}",
                r.name
            );
        }
    }

    #[test]
    fn scan_ntp_row_is_an_amplifier_vulnerability_of_the_host() {
        let out = rows(
            None,
            "2026-12-01-scan_ntp-example-asn64500.csv",
            "\"timestamp\",\"ip\",\"protocol\",\"port\",\"hostname\",\"tag\",\"asn\",\"geo\"\n\
             \"2026-12-01 04:12:33\",\"192.0.2.10\",\"udp\",123,\"ntp.example.net\",\"ntp\",64500,\"DE\"\n",
        );
        let (line, m) = &out[0];
        assert_eq!(*line, 2);
        let m = m.as_ref().unwrap();
        let Kind::VulnerabilityScanLog(v) = &m.kind else {
            panic!("{:?}", m.kind)
        };
        assert_eq!(v.victim_ip, Some("192.0.2.10".parse().unwrap()));
        assert_eq!(v.port, Some(123));
        assert_eq!(v.protocol, Some(TransportProtocol::Udp));
        assert_eq!(v.vulnerability_id, "shadowserver:scan_ntp");
        let c = m.common.classification.as_ref().unwrap();
        assert_eq!(c.as_path(), "vulnerable/ddos-amplifier");
        assert_eq!(
            m.common.event_time.to_rfc3339(),
            "2026-12-01T04:12:33+00:00"
        );
        let msg = m.common.message.as_deref().unwrap();
        assert!(
            msg.contains("AS64500 DE") && msg.contains("ntp.example.net"),
            "{msg}"
        );
    }

    #[test]
    fn sinkhole_row_is_a_botnet_event_with_the_bot_as_source() {
        let out = rows(
            Some("event6_sinkhole_http"),
            "x.csv",
            "timestamp,protocol,src_ip,src_port,dst_ip,dst_port,infection,tag,severity,http_url\n\
             2026-12-01T10:00:00Z,tcp,2001:db8::5,49152,198.51.100.80,80,andromeda,andromeda,critical,/in.php\n",
        );
        let m = out[0].1.as_ref().unwrap();
        let Kind::Botnet(b) = &m.kind else {
            panic!("{:?}", m.kind)
        };
        assert_eq!(b.src_ip, Some("2001:db8::5".parse().unwrap()));
        assert_eq!(b.dst_port, Some(80));
        assert_eq!(b.botnet_name.as_deref(), Some("andromeda"));
        assert_eq!(m.common.severity, Severity::Critical);
        assert_eq!(
            m.common.fields.as_ref().unwrap().url.as_deref(),
            Some("/in.php")
        );
    }

    #[test]
    fn bad_rows_are_skipped_with_the_column_and_the_expected_form() {
        let out = rows(
            Some("scan_dns"),
            "x.csv",
            "timestamp,ip,port\nsoon,192.0.2.1,53\n2026-12-01 00:00:00,not-an-ip,53\n2026-12-01 00:00:00,192.0.2.1,99999\n2026-12-01 00:00:00,192.0.2.1,53\n",
        );
        let e: Vec<_> = out.iter().map(|(l, r)| (l, r.as_ref().err())).collect();
        assert!(e[0].1.unwrap().contains("column timestamp"), "{e:?}");
        assert!(e[1].1.unwrap().contains("not an IP address"), "{e:?}");
        assert!(e[2].1.unwrap().contains("not a port"), "{e:?}");
        assert_eq!(*e[2].0, 4);
        assert!(out[3].1.is_ok());
    }

    #[test]
    fn unknown_report_and_missing_columns_name_the_fix() {
        let opts = Options {
            report: None,
            file_name: "report.csv".into(),
        };
        let e = import(&b"timestamp,ip\n"[..], &opts, &mut |_, _| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("--report") && e.contains("scan_ntp"), "{e}");
        let opts = Options {
            report: Some("scan_ntp".into()),
            file_name: "r.csv".into(),
        };
        let e = import(&b"time,addr\n"[..], &opts, &mut |_, _| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("r.csv:1") && e.contains("timestamp"), "{e}");
    }
}
