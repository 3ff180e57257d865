//! A Pharos DDoS event (`i2nsf-nsf-detection-ddos`) as an IODEF incident, and back.
//!
//! Contract: [`ddos_to_iodef`] writes one `Incident` with the attack's times (StartTime,
//! EndTime; DetectTime and ReportTime from the context), an `Assessment` with
//! `Impact type="dos"` whose text is the attack type's identity name (`ntp-amp-flood`), the
//! packet and byte rates as per-second `Counter`s and the context's `Confidence`, the context's
//! `Contact`, and one `EventData` whose `Flow` holds one `source` System per sampled source
//! address (each with the source ports) and one `target` System per victim address (with the
//! destination ports), plus the context's `Expectation`s. Ports need a protocol: it comes from
//! the context or from the attack type (UDP for amplification, TCP for SYN floods, ...); without
//! one, ports are not carried. The rule name travels as `AdditionalData meaning="rule-name"`.
//! [`iodef_to_ddos`] reads the first incident back: for what [`ddos_to_iodef`] wrote it returns
//! the same event; for a peer's document it takes what it finds (addresses and ports
//! deduplicated in order, at most 1024 addresses and 256 ports a side, rule name
//! `rid:<name>:<number>` when none is given).

use std::collections::HashSet;
use std::net::IpAddr;

use pharos_model::ident::{DdosType, Identity};
use pharos_model::{DdosEvent, Severity, Timestamp};

use crate::ConvertError;
use crate::enums::{
    ConfidenceRating, CounterType, DType, Duration, ImpactType, IodefSeverity, Purpose, Spoofed,
    SystemCategory,
};
use crate::iodef::*;

/// The meaning of the AdditionalData that carries Pharos' rule name.
pub const RULE_NAME_MEANING: &str = "rule-name";
/// Most ports read back for each side (sources, targets).
const MAX_PORTS: usize = 256;
/// Most addresses read back for each side: a DDoS event carries a bounded sample.
const MAX_ADDRESSES: usize = 1024;

/// What an incident needs beyond the event itself: who reports it, when, how sure, and what
/// is wanted.
#[derive(Debug, Clone, PartialEq)]
pub struct DdosContext {
    /// The incident number (with `instance` per trace path).
    pub incident_id: IncidentId,
    /// `Incident/@purpose`: traceback for a TraceRequest, mitigation for an
    /// InvestigationRequest, reporting for a Report.
    pub purpose: Purpose,
    /// `ReportTime`.
    pub report_time: Timestamp,
    /// `DetectTime`, when detection came after the start.
    pub detect_time: Option<Timestamp>,
    /// The reporting organisation.
    pub contact: Contact,
    /// Pharos severity, mapped to the Impact severity.
    pub severity: Severity,
    /// `Confidence`.
    pub confidence: Confidence,
    /// An Incident `Description` (e.g. the detection's summary line).
    pub description: Option<String>,
    /// The attack's IP protocol, overriding the one implied by the attack type.
    pub ip_protocol: Option<u8>,
    /// Whether the source addresses are believed spoofed (`System/@spoofed`).
    pub spoofed: Option<Spoofed>,
    /// Actions wanted near the source.
    pub expectations: Vec<Expectation>,
}

impl DdosContext {
    /// A traceback context: high severity and confidence, no expectations yet.
    pub fn new(incident_id: IncidentId, contact: Contact, report_time: Timestamp) -> Self {
        Self {
            incident_id,
            purpose: Purpose::Traceback,
            report_time,
            detect_time: None,
            contact,
            severity: Severity::High,
            confidence: Confidence {
                rating: ConfidenceRating::High,
                value: None,
            },
            description: None,
            ip_protocol: None,
            spoofed: None,
            expectations: Vec::new(),
        }
    }
}

/// The IP protocol an attack type implies, if one does.
pub fn ip_protocol_of(t: DdosType) -> Option<u8> {
    use DdosType::*;
    match t {
        SynFlood | AckFlood | SynAckFlood | FinRstFlood | TcpConFlood | HttpFlood | HttpsFlood
        | TlsFlood => Some(6),
        Icmpv4Flood => Some(1),
        Icmpv6Flood => Some(58),
        UdpFlood | DnsQueryFlood | DnsReplyFlood | SipFlood | NtpAmpFlood | MemcachedAmpFlood
        | SsdpAmpFlood | CldapAmpFlood | ChargenAmpFlood | SnmpAmpFlood | DnsAmpFlood => Some(17),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Pharos severity on IODEF's three-step scale.
pub fn iodef_severity(s: Severity) -> IodefSeverity {
    match s {
        Severity::Critical | Severity::High => IodefSeverity::High,
        Severity::Middle => IodefSeverity::Medium,
        Severity::Low | Severity::Info => IodefSeverity::Low,
    }
}

fn rate(t: CounterType, v: Option<u64>) -> Option<Counter> {
    v.map(|v| Counter {
        counter_type: t,
        meaning: None,
        duration: Some(Duration::Second),
        value: v as f64,
    })
}

/// The IODEF document describing `ev` (see the module contract).
pub fn ddos_to_iodef(ev: &DdosEvent, ctx: &DdosContext) -> IodefDocument {
    let proto = ctx.ip_protocol.or(ev.attack_type.and_then(ip_protocol_of));
    let service = |ports: &[u16]| -> Vec<Service> {
        match proto {
            Some(p) if !ports.is_empty() => vec![Service {
                ip_protocol: p,
                ports: Ports::of(ports),
            }],
            _ => Vec::new(),
        }
    };
    let mut systems = Vec::new();
    for ip in &ev.attack_src_ip {
        let mut s = System::new(SystemCategory::Source, Node::ip(*ip));
        s.spoofed = ctx.spoofed;
        s.services = service(&ev.attack_src_port);
        systems.push(s);
    }
    for ip in &ev.attack_dst_ip {
        let mut s = System::new(SystemCategory::Target, Node::ip(*ip));
        s.services = match proto {
            Some(p) => vec![Service {
                ip_protocol: p,
                ports: Ports::of(&ev.attack_dst_port),
            }],
            None => Vec::new(),
        };
        systems.push(s);
    }
    let attack = EventData {
        flows: if systems.is_empty() {
            Vec::new()
        } else {
            vec![Flow { systems }]
        },
        expectations: ctx.expectations.clone(),
        ..EventData::default()
    };
    let assessment = Assessment {
        impacts: vec![Impact {
            impact_type: ImpactType::Dos,
            severity: Some(iodef_severity(ctx.severity)),
            completion: None,
            text: MlString::new(ev.attack_type.map(|t| t.name()).unwrap_or_default()),
        }],
        counters: [
            rate(CounterType::Packet, ev.attack_rate),
            rate(CounterType::Byte, ev.attack_throughput),
        ]
        .into_iter()
        .flatten()
        .collect(),
        confidence: Some(ctx.confidence.clone()),
        ..Assessment::default()
    };
    IodefDocument {
        lang: "en".into(),
        formatid: None,
        incidents: vec![Incident {
            purpose: ctx.purpose.clone(),
            lang: None,
            restriction: None,
            incident_id: ctx.incident_id.clone(),
            detect_time: ctx.detect_time,
            start_time: Some(ev.start_time),
            end_time: ev.end_time,
            report_time: ctx.report_time,
            descriptions: ctx.description.iter().map(MlString::new).collect(),
            assessments: vec![assessment],
            contacts: vec![ctx.contact.clone()],
            event_data: vec![attack],
            history: None,
            additional_data: vec![Extension::text(
                DType::String,
                Some(RULE_NAME_MEANING),
                ev.rule_name.clone(),
            )],
        }],
    }
}

fn addresses(systems: &[&System]) -> Vec<IpAddr> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for a in systems.iter().flat_map(|s| &s.node.addresses) {
        if out.len() == MAX_ADDRESSES {
            break;
        }
        if let Some(ip) = a.as_ip()
            && seen.insert(ip)
        {
            out.push(ip);
        }
    }
    out
}

fn ports(systems: &[&System]) -> Vec<u16> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let lists = systems
        .iter()
        .flat_map(|s| &s.services)
        .filter_map(|s| s.ports.as_ref());
    for ports in lists {
        for p in ports.expand(MAX_PORTS) {
            if out.len() == MAX_PORTS {
                return out;
            }
            if seen.insert(p) {
                out.push(p);
            }
        }
    }
    out
}

/// The DDoS event the document's first incident describes (see the module contract).
pub fn iodef_to_ddos(doc: &IodefDocument) -> Result<DdosEvent, ConvertError> {
    incident_to_ddos(doc.incidents.first().ok_or(ConvertError::NoIncident)?)
}

/// The DDoS event one incident describes.
pub fn incident_to_ddos(inc: &Incident) -> Result<DdosEvent, ConvertError> {
    let id = &inc.incident_id;
    let start_time = inc
        .start_time
        .or(inc.detect_time)
        .ok_or_else(|| ConvertError::NoStartTime(format!("{}:{}", id.name, id.id)))?;
    let sources = inc.systems(&SystemCategory::Source);
    let targets = inc.systems(&SystemCategory::Target);
    let mut attack_type = None;
    let (mut attack_rate, mut attack_throughput) = (None, None);
    for a in &inc.assessments {
        for i in a
            .impacts
            .iter()
            .filter(|i| i.impact_type == ImpactType::Dos)
        {
            let name = i.text.text.trim();
            let name = name.rsplit_once(':').map_or(name, |(_, n)| n);
            if attack_type.is_none() {
                attack_type = DdosType::ALL.iter().copied().find(|t| t.name() == name);
            }
        }
        for c in &a.counters {
            if c.duration != Some(Duration::Second) || !c.value.is_finite() || c.value < 0.0 {
                continue;
            }
            match c.counter_type {
                CounterType::Packet => attack_rate = attack_rate.or(Some(c.value.round() as u64)),
                CounterType::Byte => {
                    attack_throughput = attack_throughput.or(Some(c.value.round() as u64))
                }
                _ => {}
            }
        }
    }
    let rule_name = inc
        .additional_data
        .iter()
        .find(|a| a.meaning.as_deref() == Some(RULE_NAME_MEANING))
        .map(Extension::text_content)
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| format!("rid:{}:{}", id.name, id.id));
    Ok(DdosEvent {
        attack_type,
        start_time,
        end_time: inc.end_time,
        attack_src_ip: addresses(&sources),
        attack_dst_ip: addresses(&targets),
        attack_src_port: ports(&sources),
        attack_dst_port: ports(&targets),
        rule_name,
        attack_rate,
        attack_throughput,
    })
}
