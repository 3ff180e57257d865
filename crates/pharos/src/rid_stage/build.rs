//! The RID messages the stage sends: TraceRequests from our DDoS events, relayed requests,
//! Results and Acknowledgements.

use pharos_model::DdosEvent;
use pharos_model::flow::FlowRecord;
use pharos_model::ident::Identity;
use pharos_rid::{
    Action, AuthorizationStatus, Contact, ContactRole, DType, DdosContext, EventData, Expectation,
    Extension, History, HistoryItem, IncidentId, IncidentSource, IodefDocument, IodefSeverity,
    Justification, MlString, MsgType, Node, Purpose, Record, RecordData, ReportSchema,
    RequestStatus, Rid, RidPolicy, Spoofed, System, SystemCategory, XmlAttribute, XmlContent,
    XmlElement, ddos_to_iodef,
};

/// The namespace of the flow records we put in RecordItems (carries the signed `Id`).
pub const FLOW_NS: &str = "urn:pharos:flow-record:1";

/// Our hop of the SP path.
pub fn our_hop(name: &str) -> System {
    System::new(SystemCategory::Infrastructure, Node::named(name))
}

/// The IODEF document of a TraceRequest we originate for `ev`, with our hop and `examples` as
/// signed-able records (`Id`s `rec-1`...); returns it with the Ids.
pub fn trace_document(
    ev: &DdosEvent,
    iid: &IncidentId,
    name: &str,
    contact: &str,
    examples: &[FlowRecord],
) -> (IodefDocument, Vec<String>) {
    request_document(ev, iid, name, contact, examples, true)
}

/// The IODEF document of a TraceRequest (`trace`: with our hop as the SP path) or an
/// InvestigationRequest (no path) we originate for `ev`, with `examples` as signed-able records
/// (`Id`s `rec-1`...); returns it with the Ids.
pub fn request_document(
    ev: &DdosEvent,
    iid: &IncidentId,
    name: &str,
    contact: &str,
    examples: &[FlowRecord],
    trace: bool,
) -> (IodefDocument, Vec<String>) {
    let mut c = Contact::organization(ContactRole::Creator, contact);
    c.timezone = Some("Z".into());
    let mut ctx = DdosContext::new(iid.clone(), c, chrono::Utc::now());
    ctx.purpose = if trace {
        Purpose::Traceback
    } else {
        Purpose::Mitigation
    };
    ctx.detect_time = Some(chrono::Utc::now());
    ctx.spoofed = Some(Spoofed::Unknown);
    ctx.description = Some(format!(
        "{} toward {}: {} requested by {name}",
        ev.attack_type.map(|t| t.name()).unwrap_or("ddos"),
        ev.attack_dst_ip
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        if trace { "trace" } else { "investigation" }
    ));
    let mut x = Expectation::new(Action::RateLimitHost);
    x.severity = Some(IodefSeverity::High);
    x.descriptions.push(MlString::new(
        "find where this traffic enters your network and stop it near its source",
    ));
    ctx.expectations.push(x);
    let mut doc = ddos_to_iodef(ev, &ctx);
    let mut ids = Vec::new();
    if let Some(inc) = doc.incidents.first_mut() {
        if trace {
            inc.append_sp_hop(our_hop(name));
        }
        if !examples.is_empty() {
            let mut items = Vec::new();
            for (i, f) in examples.iter().enumerate() {
                let id = format!("rec-{}", i + 1);
                items.push(flow_item(f, &id));
                ids.push(id);
            }
            inc.event_data.push(EventData {
                record: Some(Record {
                    restriction: None,
                    data: vec![RecordData {
                        date_time: Some(chrono::Utc::now()),
                        descriptions: vec![MlString::new(format!(
                            "example flow records from {name}'s archive"
                        ))],
                        items,
                        ..RecordData::default()
                    }],
                }),
                ..EventData::default()
            });
        }
    }
    (doc, ids)
}

fn flow_item(f: &FlowRecord, id: &str) -> Extension {
    let attr = |name: &str, value: String| XmlAttribute {
        namespace: None,
        name: name.into(),
        value,
    };
    let mut item = Extension::text(DType::Xml, Some("flow record"), "");
    item.formatid = Some("pharos-flow-1".into());
    item.content.push(XmlContent::Element(XmlElement {
        namespace: Some(FLOW_NS.into()),
        name: "flow".into(),
        attributes: vec![
            attr("Id", id.to_string()),
            attr("src", format!("{}:{}", f.src_addr, f.src_port)),
            attr("dst", format!("{}:{}", f.dst_addr, f.dst_port)),
            attr("proto", f.proto.to_string()),
            attr("bytes", f.bytes.to_string()),
            attr("packets", f.packets.to_string()),
            attr("start_ms", f.start_ms.to_string()),
        ],
        children: Vec::new(),
    }));
    item
}

/// A policy of `msg_type` addressed to `node` with our incident and document.
pub fn policy(
    msg_type: MsgType,
    node: &str,
    iid: &IncidentId,
    peer: &pharos_rid::config::PeerPolicy,
    doc: Option<IodefDocument>,
) -> RidPolicy {
    let mut p = RidPolicy::new(msg_type, Node::named(node));
    p.regions = vec![peer.region.clone()];
    p.traffic_types = peer.traffic_types.clone();
    p.incident_id = Some(iid.clone());
    p.report_schema = doc.map(ReportSchema::iodef);
    p
}

/// An Acknowledgement of `status` (with `why` when denied) for the incident `iid`, carrying the
/// request's document (when it had one) so that it can be signed.
pub fn acknowledgement(
    iid: Option<&IncidentId>,
    node: &str,
    peer: &pharos_rid::config::PeerPolicy,
    doc: Option<IodefDocument>,
    status: AuthorizationStatus,
    why: Option<Justification>,
) -> Rid {
    let mut p = RidPolicy::new(MsgType::Acknowledgement, Node::named(node));
    p.regions = vec![peer.region.clone()];
    p.incident_id = iid.cloned();
    p.report_schema = doc.map(ReportSchema::iodef);
    let mut r = Rid::new(p);
    r.request_status = Some(RequestStatus {
        authorization: status,
        justification: why,
        restriction: None,
    });
    r
}

/// One History entry.
pub fn history_item(action: Action, text: impl Into<String>, name: &str) -> HistoryItem {
    HistoryItem {
        action,
        restriction: None,
        date_time: chrono::Utc::now(),
        incident_id: None,
        contact: Some(Contact::organization(ContactRole::Irt, name)),
        descriptions: vec![MlString::new(text.into())],
        additional_data: Vec::new(),
    }
}

/// A Result to `node` for the request document `doc`: our hop appended to the path, the
/// History of `actions`, and IncidentSource with `sources` (network prefixes) when found.
#[allow(clippy::too_many_arguments)]
pub fn result(
    iid: &IncidentId,
    node: &str,
    name: &str,
    peer: &pharos_rid::config::PeerPolicy,
    mut doc: IodefDocument,
    found: bool,
    sources: &[String],
    actions: Vec<HistoryItem>,
) -> Rid {
    if let Some(inc) = doc.incidents.first_mut() {
        inc.append_sp_hop(our_hop(name));
        // The example records stay with the request; a Result carries what was done.
        inc.event_data.retain(|e| e.record.is_none());
        inc.history = Some(History {
            restriction: None,
            items: actions,
        });
    }
    let mut r = Rid::new(policy(MsgType::Result, node, iid, peer, Some(doc)));
    r.incident_source = Some(IncidentSource {
        source_found: found,
        nodes: sources
            .iter()
            .map(|s| {
                let mut n = Node::default();
                n.addresses.push(pharos_rid::Address {
                    category: if s.contains(':') {
                        pharos_rid::AddressCategory::Ipv6Net
                    } else {
                        pharos_rid::AddressCategory::Ipv4Net
                    },
                    vlan_name: None,
                    vlan_num: None,
                    value: s.clone(),
                });
                n
            })
            .collect(),
        restriction: None,
    });
    r
}

/// The IODEF document of a Report of our event `ev` (no path, no records: a Report describes,
/// it asks nothing).
pub fn report_document(ev: &DdosEvent, iid: &IncidentId, contact: &str) -> IodefDocument {
    let mut c = Contact::organization(ContactRole::Creator, contact);
    c.timezone = Some("Z".into());
    let mut ctx = DdosContext::new(iid.clone(), c, chrono::Utc::now());
    ctx.purpose = Purpose::Reporting;
    ctx.detect_time = Some(chrono::Utc::now());
    ctx.spoofed = Some(Spoofed::Unknown);
    ctx.description = Some(format!(
        "{} toward {}: reported by {contact}",
        ev.attack_type.map(|t| t.name()).unwrap_or("ddos"),
        ev.attack_dst_ip
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    ddos_to_iodef(ev, &ctx)
}

/// The small IODEF document a Query carries (so that it can be signed): the incident asked
/// about (or `iid`, ours for the query), purpose `other`, impact unknown.
pub fn query_document(iid: &IncidentId, contact: &str) -> IodefDocument {
    let mut c = Contact::organization(ContactRole::Creator, contact);
    c.timezone = Some("Z".into());
    IodefDocument {
        lang: "en".into(),
        formatid: None,
        incidents: vec![pharos_rid::Incident {
            purpose: Purpose::Other,
            lang: None,
            restriction: None,
            incident_id: iid.clone(),
            detect_time: None,
            start_time: None,
            end_time: None,
            report_time: chrono::Utc::now(),
            descriptions: vec![MlString::new(format!(
                "query from {contact} about incident {}:{}",
                iid.name, iid.id
            ))],
            assessments: vec![pharos_rid::Assessment {
                impacts: vec![pharos_rid::Impact {
                    impact_type: pharos_rid::ImpactType::Unknown,
                    severity: None,
                    completion: None,
                    text: MlString::new("query"),
                }],
                ..pharos_rid::Assessment::default()
            }],
            contacts: vec![c],
            event_data: Vec::new(),
            history: None,
            additional_data: Vec::new(),
        }],
    }
}

/// What of an incident a Report shares: no SP path, no example records (RFC 6545 §6.5: a
/// Report carries no path information).
pub fn shareable(mut inc: pharos_rid::Incident) -> pharos_rid::Incident {
    inc.event_data
        .retain(|e| !e.is_sp_path() && e.record.is_none());
    inc
}
