//! Realistic messages of every type (an NTP reflection traced from AS64500 upstream) and the
//! xmllint validation helper.
#![allow(dead_code)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;

use chrono::TimeZone;
use pharos_model::ident::DdosType;
use pharos_model::{DdosEvent, Timestamp};
use pharos_rid::*;

pub fn t(h: u32, m: u32, s: u32) -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 1, 15, h, m, s).unwrap()
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The attack as Pharos' detection reports it.
pub fn ntp_event() -> DdosEvent {
    DdosEvent {
        attack_type: Some(DdosType::NtpAmpFlood),
        start_time: t(10, 0, 0),
        end_time: None,
        attack_src_ip: vec![ip("192.0.2.17"), ip("192.0.2.44"), ip("2001:db8::123")],
        attack_dst_ip: vec![ip("198.51.100.10")],
        attack_src_port: vec![123],
        attack_dst_port: vec![80, 443],
        rule_name: "customers/udp/pps".into(),
        attack_rate: Some(250_000),
        attack_throughput: Some(120_000_000),
    }
}

pub fn noc() -> Contact {
    let mut c = Contact::organization(ContactRole::Creator, "AS64500 NOC <&> \"Example\"");
    c.emails.push("noc@as64500.example".into());
    c.telephones.push("+1 555 0100".into());
    c.timezone = Some("Z".into());
    c
}

pub fn incident_id() -> IncidentId {
    IncidentId {
        instance: Some("1".into()),
        ..IncidentId::new("rid.as64500.example", "DDOS-2026-000123")
    }
}

pub fn context(purpose: Purpose) -> DdosContext {
    let mut ctx = DdosContext::new(incident_id(), noc(), t(10, 5, 0));
    ctx.purpose = purpose;
    ctx.detect_time = Some(t(10, 0, 20));
    ctx.description = Some("ntp-amp-flood on 198.51.100.10: 250000 pps".into());
    ctx.spoofed = Some(Spoofed::Yes);
    let mut x = Expectation::new(Action::RateLimitHost);
    x.severity = Some(IodefSeverity::High);
    x.descriptions.push(MlString::new(
        "rate-limit UDP source port 123 toward 198.51.100.10",
    ));
    ctx.expectations.push(x);
    ctx
}

fn hop(name: &str, addr: &str) -> System {
    let mut node = Node::named(name);
    node.addresses.push(Address::ip(ip(addr)));
    node.addresses.push(Address::asn(64500));
    System::new(SystemCategory::Infrastructure, node)
}

fn records() -> EventData {
    let mut xml_item = Extension::text(DType::Xml, Some("flow record"), "");
    xml_item.formatid = Some("pharos-flow-1".into());
    xml_item.content.push(XmlContent::Element(XmlElement {
        namespace: Some("urn:pharos:flow-record:1".into()),
        name: "flow".into(),
        attributes: vec![
            XmlAttribute {
                namespace: None,
                name: "src".into(),
                value: "192.0.2.17:123".into(),
            },
            XmlAttribute {
                namespace: None,
                name: "dst".into(),
                value: "198.51.100.10:80".into(),
            },
        ],
        children: vec![XmlContent::Text("468 bytes, 1 packet".into())],
    }));
    EventData {
        record: Some(Record {
            restriction: None,
            data: vec![RecordData {
                date_time: Some(t(10, 0, 5)),
                descriptions: vec![MlString::new(
                    "example flow records from exporter 203.0.113.1 ifIndex 7",
                )],
                items: vec![
                    Extension::text(
                        DType::Csv,
                        Some("flow record"),
                        "ts,src,sport,dst,dport,proto,bytes,packets\n2026-01-15T10:00:05Z,192.0.2.17,123,198.51.100.10,80,17,468,1\n",
                    ),
                    xml_item,
                ],
                ..RecordData::default()
            }],
        }),
        ..EventData::default()
    }
}

fn iodef(purpose: Purpose) -> IodefDocument {
    ddos_to_iodef(&ntp_event(), &context(purpose))
}

fn policy(msg_type: MsgType) -> RidPolicy {
    let mut p = RidPolicy::new(msg_type, Node::named("rid.as64501.example"));
    p.incident_id = Some(incident_id());
    p.restriction = Some(Restriction::NeedToKnow);
    p
}

pub fn trace_request() -> Rid {
    let mut doc = iodef(Purpose::Traceback);
    let inc = &mut doc.incidents[0];
    inc.append_sp_hop(hop("rid.as64500.example", "203.0.113.1"));
    inc.event_data.push(records());
    let mut p = policy(MsgType::TraceRequest);
    p.report_schema = Some(ReportSchema::iodef(doc));
    Rid::new(p)
}

pub fn investigation_request() -> Rid {
    let mut doc = iodef(Purpose::Mitigation);
    doc.incidents[0].event_data.push(records());
    let mut p = policy(MsgType::InvestigationRequest);
    p.msg_destination = MsgDestination::SourceOfIncident;
    p.node = Node::ip(ip("192.0.2.17"));
    p.regions = vec![PolicyRegion::PeerToPeer, PolicyRegion::IntraConsortium];
    p.report_schema = Some(ReportSchema::iodef(doc));
    Rid::new(p)
}

pub fn acknowledgement(status: AuthorizationStatus, why: Option<Justification>) -> Rid {
    let mut r = Rid::new(policy(MsgType::Acknowledgement));
    r.request_status = Some(RequestStatus {
        authorization: status,
        justification: why,
        restriction: None,
    });
    r
}

pub fn result() -> Rid {
    let mut doc = iodef(Purpose::Traceback);
    let inc = &mut doc.incidents[0];
    inc.append_sp_hop(hop("rid.as64500.example", "203.0.113.1"));
    inc.append_sp_hop(hop("rid.as64501.example", "203.0.113.129"));
    let mut who = Contact::organization(ContactRole::Irt, "AS64502 CSIRT");
    who.emails.push("csirt@as64502.example".into());
    inc.history = Some(History {
        restriction: None,
        items: vec![
            HistoryItem {
                action: Action::Investigate,
                restriction: None,
                date_time: t(10, 7, 0),
                incident_id: Some(IncidentId::new("rid.as64502.example", "7781")),
                contact: Some(who),
                descriptions: vec![MlString::new(
                    "matching flows found from customer 192.0.2.0/24",
                )],
                additional_data: Vec::new(),
            },
            HistoryItem {
                action: Action::RateLimitNetwork,
                restriction: None,
                date_time: t(10, 8, 30),
                incident_id: None,
                contact: None,
                descriptions: vec![MlString::new(
                    "detect_hook: rate-limit udp/123 from 192.0.2.0/24",
                )],
                additional_data: Vec::new(),
            },
        ],
    });
    let mut p = policy(MsgType::Result);
    p.report_schema = Some(ReportSchema::iodef(doc));
    let mut r = Rid::new(p);
    let mut net = Node::default();
    net.addresses.push(Address {
        category: AddressCategory::Ipv4Net,
        vlan_name: None,
        vlan_num: None,
        value: "192.0.2.0/24".into(),
    });
    r.incident_source = Some(IncidentSource {
        source_found: true,
        nodes: vec![net],
        restriction: Some(Restriction::NeedToKnow),
    });
    r
}

pub fn report() -> Rid {
    let mut doc = iodef(Purpose::Reporting);
    doc.incidents[0].event_data[0].expectations.clear();
    let mut p = policy(MsgType::Report);
    p.traffic_types = vec![TrafficType::Attack, TrafficType::Ext("ddos-summary".into())];
    p.report_schema = Some(ReportSchema::iodef(doc));
    Rid::new(p)
}

pub fn query() -> Rid {
    Rid::new(policy(MsgType::Query))
}

/// Every example, named.
pub fn all() -> Vec<(&'static str, Rid)> {
    vec![
        ("trace_request", trace_request()),
        ("investigation_request", investigation_request()),
        (
            "acknowledgement_pending",
            acknowledgement(AuthorizationStatus::Pending, None),
        ),
        (
            "acknowledgement_denied",
            acknowledgement(
                AuthorizationStatus::Denied,
                Some(Justification::Authentication),
            ),
        ),
        ("result", result()),
        ("report", report()),
        ("query", query()),
    ]
}

pub fn schemas() -> PathBuf {
    pharos_model::conformance::shared_dir().join("schemas")
}

/// Validates `xml` against `xsd` (a file in the shared schemas) with xmllint; `None` when the
/// tool or the schemas are missing (the test skips, or fails under PHAROS_REQUIRE_ALL=1).
pub fn xmllint(xml: &str, xsd: &str) -> Option<Result<(), String>> {
    let dir = schemas();
    if !dir.join(xsd).exists() || !dir.join("catalog.xml").exists() {
        pharos_model::conformance::skip(&format!("{} has no {xsd} or catalog.xml", dir.display()));
        return None;
    }
    if Command::new("xmllint").arg("--version").output().is_err() {
        pharos_model::conformance::skip("xmllint not found on PATH (Debian: libxml2-utils)");
        return None;
    }
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), xml).unwrap();
    let out = Command::new("xmllint")
        .env("XML_CATALOG_FILES", dir.join("catalog.xml"))
        .args(["--nonet", "--noout", "--schema"])
        .arg(dir.join(xsd))
        .arg(tmp.path())
        .output()
        .unwrap();
    if out.status.success() {
        Some(Ok(()))
    } else {
        Some(Err(String::from_utf8_lossy(&out.stderr).into_owned()))
    }
}
