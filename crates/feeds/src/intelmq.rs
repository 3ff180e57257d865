//! IntelMQ events: one JSON object per line (IntelMQ's file output), keys flat and dotted
//! (`classification.type`, `source.ip`, ...) or nested (`{"source": {"ip": ...}}`, flattened
//! here); a line holding a JSON array gives one event per element. The classification type
//! picks the case.

use std::collections::HashMap;
use std::io::BufRead;
use std::net::IpAddr;

use pharos_model::ident::{IntrusionAttackType, TransportProtocol};
use pharos_model::rsit::Classification;
use pharos_model::{
    BotnetEvent, Common, DdosEvent, GenericLog, IntrusionEvent, Kind, LogFields, Message, Severity,
    VulnerabilityScanLog,
};
use serde_json::Value;

use crate::read::{Record, Records};
use crate::{FeedError, Options, RowResult, clip, parse_time};

/// IntelMQ's classification types of before the RSIT alignment, by the RSIT pair they became.
const LEGACY: &[(&str, (&str, &str))] = &[
    ("botnet drone", ("malicious-code", "infected-system")),
    ("infected system", ("malicious-code", "infected-system")),
    ("c2server", ("malicious-code", "c2-server")),
    ("malware", ("malicious-code", "malware-distribution")),
    ("vulnerable service", ("vulnerable", "vulnerable-system")),
    ("vulnerable client", ("vulnerable", "vulnerable-system")),
    ("blacklist", ("other", "other")),
    ("unknown", ("other", "undetermined")),
];

/// Flattens nested objects into dotted keys (at most 8 levels).
fn flatten(prefix: &str, v: &Value, out: &mut HashMap<String, Value>, depth: usize) {
    match v {
        Value::Object(m) if depth < 8 => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out, depth + 1);
            }
        }
        _ => {
            out.insert(prefix.to_string(), v.clone());
        }
    }
}

struct Event(HashMap<String, Value>);

impl Event {
    /// A string or number value, trimmed, clipped to 512 bytes; empty is absent.
    fn text(&self, key: &str) -> Option<String> {
        let s = match self.0.get(key)? {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return None,
        };
        (!s.is_empty()).then(|| clip(&s, 512))
    }

    fn ip(&self, key: &str) -> Result<Option<IpAddr>, String> {
        match self.text(key) {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| format!("{key}: {:?} is not an IP address", clip(&s, 64))),
        }
    }

    fn port(&self, key: &str) -> Result<Option<u16>, String> {
        match self.text(key) {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| format!("{key}: {:?} is not a port (0 to 65535)", clip(&s, 64))),
        }
    }
}

pub(crate) fn import(
    input: impl BufRead,
    opts: &Options,
    each: &mut dyn FnMut(usize, RowResult),
) -> Result<(), FeedError> {
    let mut records = Records::lines(input);
    while let Some(rec) = records.next_record().map_err(|source| FeedError::Io {
        file: opts.file_name.clone(),
        source,
    })? {
        match rec {
            Record::Text { text, .. } if text.trim().is_empty() => {}
            Record::Text { line, text } => match serde_json::from_str::<Value>(&text) {
                Ok(Value::Array(items)) => {
                    for v in &items {
                        each(line, event(v, &text));
                    }
                }
                Ok(v) => each(line, event(&v, &text)),
                Err(e) => each(
                    line,
                    Err(format!(
                        "not JSON ({e}); IntelMQ events are one JSON object per line"
                    )),
                ),
            },
            Record::Bad { line, why } => each(line, Err(why)),
        }
    }
    Ok(())
}

fn classification(ev: &Event) -> Classification {
    let taxonomy = ev.text("classification.taxonomy").unwrap_or_default();
    let kind = ev.text("classification.type").unwrap_or_default();
    Classification::new(&taxonomy, &kind)
        .or_else(|| {
            let k = kind.to_ascii_lowercase().replace('_', " ");
            LEGACY
                .iter()
                .find(|(name, _)| *name == k)
                .and_then(|(_, (t, k))| Classification::new(t, k))
        })
        .or_else(|| {
            // a type RSIT has under another taxonomy than the one given
            pharos_model::rsit::TAXONOMY
                .iter()
                .find_map(|(t, _)| Classification::new(t, &kind))
        })
        .unwrap_or_else(|| Classification::new("other", "undetermined").expect("in RSIT"))
}

fn transport(s: Option<&str>) -> Option<TransportProtocol> {
    match s?.to_ascii_lowercase().as_str() {
        "tcp" => Some(TransportProtocol::Tcp),
        "udp" => Some(TransportProtocol::Udp),
        "sctp" => Some(TransportProtocol::Sctp),
        _ => None,
    }
}

fn event(v: &Value, line: &str) -> RowResult {
    if !v.is_object() {
        return Err("expected a JSON object (one IntelMQ event)".into());
    }
    let mut flat = HashMap::new();
    flatten("", v, &mut flat, 0);
    let ev = Event(flat);
    let t = ev
        .text("time.source")
        .or_else(|| ev.text("time.observation"))
        .ok_or("no time.source (nor time.observation); every event needs its time")?;
    let when = parse_time(&t).ok_or_else(|| {
        format!(
            "time.source: {:?} is not an RFC 3339 time like \"2026-12-01T04:12:33+00:00\"",
            clip(&t, 64)
        )
    })?;
    let src = ev.ip("source.ip")?;
    let dst = ev.ip("destination.ip")?;
    if src.is_none() && dst.is_none() {
        return Err(
            "neither source.ip nor destination.ip is set; the event names no address".into(),
        );
    }
    let src_port = ev.port("source.port")?;
    let dst_port = ev.port("destination.port")?;
    let proto_text = ev.text("protocol.transport");
    let protocol = transport(proto_text.as_deref());
    let class = classification(&ev);
    let identifier = ev.text("classification.identifier");
    let malware = ev.text("malware.name");
    let rule = identifier
        .clone()
        .or_else(|| malware.clone())
        .unwrap_or_else(|| class.kind.to_string());
    let fields = LogFields {
        src_ip: src,
        src_port,
        dst_ip: dst,
        dst_port,
        protocol: proto_text.map(|p| p.to_ascii_lowercase()),
        domain: ev
            .text("source.fqdn")
            .or_else(|| ev.text("destination.fqdn")),
        url: ev.text("source.url").or_else(|| ev.text("destination.url")),
        application: ev.text("protocol.application"),
        message_id: identifier.clone(),
        src_as: ev.text("source.asn").and_then(|a| asn(&a)),
        dst_as: ev.text("destination.asn").and_then(|a| asn(&a)),
        ..LogFields::default()
    };
    let (kind, severity) = match (class.taxonomy, class.kind) {
        (_, "infected-system" | "c2-server") => (
            Kind::Botnet(BotnetEvent {
                src_ip: src,
                src_port,
                dst_ip: dst,
                dst_port,
                rule_name: rule,
                botnet_name: malware.clone(),
                role: Some(
                    if class.kind == "c2-server" {
                        "c2-server"
                    } else {
                        "bot"
                    }
                    .into(),
                ),
                botnet_pkt_num: None,
                protocol,
            }),
            Severity::High,
        ),
        ("vulnerable", _) => (
            Kind::VulnerabilityScanLog(VulnerabilityScanLog {
                vulnerability_id: identifier
                    .clone()
                    .unwrap_or_else(|| format!("intelmq:{}", class.kind)),
                vulnerability_name: ev.text("event_description.text"),
                victim_ip: src.or(dst),
                protocol,
                port: if src.is_some() { src_port } else { dst_port },
                level: Some(Severity::Middle),
                os: None,
                fix_suggestion: None,
                rule_name: identifier.clone(),
            }),
            Severity::Middle,
        ),
        (_, "brute-force" | "scanner" | "exploit" | "ids-alert") => (
            Kind::Intrusion(IntrusionEvent {
                src_ip: src,
                src_port,
                dst_ip: dst,
                dst_port,
                rule_name: rule,
                protocol,
                app: None,
                attack_type: match class.kind {
                    "brute-force" => Some(IntrusionAttackType::BruteForce),
                    "scanner" => Some(IntrusionAttackType::PortScan),
                    _ => None,
                },
            }),
            Severity::Middle,
        ),
        ("availability", "ddos" | "dos") => (
            Kind::Ddos(DdosEvent {
                attack_type: None,
                start_time: when,
                end_time: None,
                attack_src_ip: src.into_iter().collect(),
                attack_dst_ip: dst.into_iter().collect(),
                attack_src_port: src_port.into_iter().collect(),
                attack_dst_port: dst_port.into_iter().collect(),
                rule_name: rule,
                attack_rate: None,
                attack_throughput: None,
            }),
            Severity::High,
        ),
        _ => (
            Kind::GenericLog(GenericLog {
                format: Some("intelmq-json".into()),
                reason: Some(format!("IntelMQ event {}", class.as_path())),
                app_name: None,
            }),
            Severity::Info,
        ),
    };
    let feed = ev
        .text("feed.name")
        .or_else(|| ev.text("feed.provider"))
        .unwrap_or_else(|| "unnamed feed".into());
    let mut text = format!("{} ({feed})", class.as_path());
    if let Some(d) = ev.text("event_description.text") {
        text = format!("{text}: {d}");
    }
    if let Some(m) = &malware {
        text = format!("{text}; malware {m}");
    }
    if let Some(a) = ev.text("source.asn") {
        text = format!("{text}; AS{}", clip(&a, 16));
    }
    if let Some(g) = ev.text("source.geolocation.cc") {
        text = format!("{text} {}", clip(&g, 8));
    }
    let mut common = Common::new("intelmq");
    common.vendor_name = ev.text("feed.provider").or(Some("IntelMQ".into()));
    common.event_time = when;
    common.severity = severity;
    common.message = Some(clip(&text, 1024));
    common.source = Some(format!(
        "feed:intelmq/{}",
        clip(
            &feed
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '-'
                })
                .collect::<String>(),
            128
        )
    ));
    common.raw = Some(clip(line, 4096));
    common.fields = Some(Box::new(fields));
    common.classification = Some(class);
    Ok(Message { common, kind })
}

/// An AS number as feeds write it: `64500`, `AS64500` (`None` for anything else, and for 0).
pub(crate) fn asn(s: &str) -> Option<u32> {
    let s = s.trim();
    let digits = s
        .strip_prefix("AS")
        .or_else(|| s.strip_prefix("as"))
        .unwrap_or(s);
    digits.parse::<u32>().ok().filter(|a| *a != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(json: &str) -> RowResult {
        let mut out = Vec::new();
        let opts = Options::default();
        import(json.as_bytes(), &opts, &mut |_, r| out.push(r)).unwrap();
        out.pop().unwrap()
    }

    #[test]
    fn infected_system_is_a_botnet_event() {
        let m = one(
            r#"{"time.source":"2026-12-01T04:00:00+00:00","classification.taxonomy":"malicious-code","classification.type":"infected-system","source.ip":"192.0.2.7","source.port":51234,"destination.ip":"198.51.100.1","destination.port":80,"malware.name":"mirai","feed.name":"Sinkhole","source.asn":64500}"#,
        )
        .unwrap();
        let Kind::Botnet(b) = &m.kind else {
            panic!("{:?}", m.kind)
        };
        assert_eq!(b.src_ip, Some("192.0.2.7".parse().unwrap()));
        assert_eq!(b.src_port, Some(51234));
        assert_eq!(m.common.fields.as_ref().and_then(|f| f.src_as), Some(64500));
        assert_eq!(b.botnet_name.as_deref(), Some("mirai"));
        assert_eq!(m.common.source.as_deref(), Some("feed:intelmq/Sinkhole"));
        assert!(m.common.message.as_deref().unwrap().contains("AS64500"));
    }

    #[test]
    fn nested_and_legacy_classifications_are_read() {
        let m = one(
            r#"{"time":{"source":"2026-12-01T04:00:00Z"},"classification":{"taxonomy":"vulnerable","type":"vulnerable service","identifier":"openresolver"},"source":{"ip":"2001:db8::53","port":"53"},"protocol":{"transport":"udp"}}"#,
        )
        .unwrap();
        let Kind::VulnerabilityScanLog(v) = &m.kind else {
            panic!("{:?}", m.kind)
        };
        assert_eq!(v.vulnerability_id, "openresolver");
        assert_eq!(v.port, Some(53));
        assert_eq!(
            m.common.classification.as_ref().unwrap().as_path(),
            "vulnerable/vulnerable-system"
        );
    }

    #[test]
    fn events_without_time_or_address_are_skipped_with_the_key() {
        let e = one(r#"{"source.ip":"192.0.2.1"}"#).unwrap_err();
        assert!(e.contains("time.source"), "{e}");
        let e = one(r#"{"time.source":"2026-12-01T04:00:00Z"}"#).unwrap_err();
        assert!(e.contains("source.ip"), "{e}");
        let e = one(r#"{"time.source":"2026-12-01T04:00:00Z","source.ip":"x"}"#).unwrap_err();
        assert!(e.contains("source.ip") && e.contains("not an IP"), "{e}");
        let e = one("{nope").unwrap_err();
        assert!(e.contains("not JSON"), "{e}");
    }

    #[test]
    fn ddos_and_scanner_types_pick_their_cases() {
        let m = one(r#"{"time.source":"2026-12-01T04:00:00Z","classification.taxonomy":"availability","classification.type":"ddos","destination.ip":"203.0.113.5"}"#).unwrap();
        assert!(matches!(m.kind, Kind::Ddos(_)), "{:?}", m.kind);
        let m = one(r#"{"time.source":"2026-12-01T04:00:00Z","classification.taxonomy":"information-gathering","classification.type":"scanner","source.ip":"203.0.113.9"}"#).unwrap();
        assert!(matches!(
            m.kind,
            Kind::Intrusion(IntrusionEvent {
                attack_type: Some(IntrusionAttackType::PortScan),
                ..
            })
        ));
        let m = one(r#"{"time.source":"2026-12-01T04:00:00Z","classification.taxonomy":"fraud","classification.type":"phishing","source.ip":"203.0.113.9"}"#).unwrap();
        assert!(matches!(m.kind, Kind::GenericLog(_)));
        assert_eq!(m.common.classification.unwrap().as_path(), "fraud/phishing");
    }
}
