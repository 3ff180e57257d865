//! The IODEF v1 (RFC 5070, namespace `urn:ietf:params:xml:ns:iodef-1.0`) classes RID uses.
//!
//! Contract: the structs mirror the schema's classes and keep the schema's element order when
//! emitted; a class the schema allows but RID does not need (AlternativeID, RelatedActivity,
//! Method, TimeImpact, MonetaryImpact, OperatingSystem, Location, NodeRole, RegistryHandle,
//! PostalAddress, Fax, Application, RecordPattern, ProtoType/ProtoCode/ProtoField) is skipped on
//! input and never emitted. Times are UTC (an input offset is applied, a missing one refused).
//! `ExtensionType` content (RecordItem, AdditionalData, Signature) is kept as generic XML.

use pharos_model::Timestamp;

use crate::enums::{
    Action, AddressCategory, Completion, ConfidenceRating, ContactRole, ContactType, CounterType,
    DType, Duration, ImpactType, IodefSeverity, Occurrence, Purpose, Restriction, Spoofed,
    SystemCategory,
};
use crate::xml::XmlContent;

/// The IODEF v1 namespace (RFC 5070 §8).
pub const IODEF_NS: &str = "urn:ietf:params:xml:ns:iodef-1.0";

/// `IODEF-Document`: one or more incidents (`version` is always `1.00`).
#[derive(Debug, Clone, PartialEq)]
pub struct IodefDocument {
    /// `@lang` (required).
    pub lang: String,
    /// `@formatid`.
    pub formatid: Option<String>,
    /// `Incident` (one or more).
    pub incidents: Vec<Incident>,
}

/// `Incident`.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// `@purpose` (required).
    pub purpose: Purpose,
    /// `@lang`.
    pub lang: Option<String>,
    /// `@restriction` (schema default `private`).
    pub restriction: Option<Restriction>,
    /// `IncidentID` (required).
    pub incident_id: IncidentId,
    /// `DetectTime`.
    pub detect_time: Option<Timestamp>,
    /// `StartTime`.
    pub start_time: Option<Timestamp>,
    /// `EndTime`.
    pub end_time: Option<Timestamp>,
    /// `ReportTime` (required).
    pub report_time: Timestamp,
    /// `Description`.
    pub descriptions: Vec<MlString>,
    /// `Assessment` (one or more).
    pub assessments: Vec<Assessment>,
    /// `Contact` (one or more).
    pub contacts: Vec<Contact>,
    /// `EventData`.
    pub event_data: Vec<EventData>,
    /// `History`: actions taken (a Result's outcome).
    pub history: Option<History>,
    /// `AdditionalData`.
    pub additional_data: Vec<Extension>,
}

impl Incident {
    /// The SP path of a trace: the first top-level `EventData` whose flows hold only
    /// `infrastructure` systems (RFC 6545 §6: each relay appends itself to it).
    pub fn sp_path(&self) -> Option<&EventData> {
        self.event_data.iter().find(|e| e.is_sp_path())
    }

    /// Appends `hop` (its category set to `infrastructure`) to the SP path, creating the path's
    /// `EventData` (one `Flow`) at the front when there is none yet.
    pub fn append_sp_hop(&mut self, mut hop: System) {
        hop.category = Some(SystemCategory::Infrastructure);
        if let Some(path) = self.event_data.iter_mut().find(|e| e.is_sp_path()) {
            match path.flows.last_mut() {
                Some(flow) => flow.systems.push(hop),
                None => path.flows.push(Flow { systems: vec![hop] }),
            }
            return;
        }
        let mut path = EventData::default();
        path.flows.push(Flow { systems: vec![hop] });
        self.event_data.insert(0, path);
    }

    /// The systems of the SP path in order (originator first), empty without a path.
    pub fn sp_hops(&self) -> Vec<&System> {
        self.sp_path()
            .map(|p| p.flows.iter().flat_map(|f| &f.systems).collect())
            .unwrap_or_default()
    }

    /// Every system of `category` in this incident's event data, nested event data included.
    pub fn systems(&self, category: &SystemCategory) -> Vec<&System> {
        fn walk<'a>(e: &'a EventData, c: &SystemCategory, out: &mut Vec<&'a System>) {
            for f in &e.flows {
                out.extend(f.systems.iter().filter(|s| s.category.as_ref() == Some(c)));
            }
            for sub in &e.event_data {
                walk(sub, c, out);
            }
        }
        let mut out = Vec::new();
        for e in &self.event_data {
            walk(e, category, &mut out);
        }
        out
    }
}

/// `IncidentID`: an incident number scoped by the CSIRT `name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IncidentId {
    /// `@name` (required): the CSIRT or RID system that assigned the number.
    pub name: String,
    /// `@instance`: distinguishes the trace paths of one incident.
    pub instance: Option<String>,
    /// `@restriction` (schema default `public`).
    pub restriction: Option<Restriction>,
    /// The number (element text).
    pub id: String,
}

impl IncidentId {
    /// `id` assigned by `name`, no instance.
    pub fn new(name: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            instance: None,
            restriction: None,
            id: id.into(),
        }
    }
}

/// A string with an optional `lang` (`MLStringType`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MlString {
    /// The text.
    pub text: String,
    /// `@lang`.
    pub lang: Option<String>,
}

impl MlString {
    /// `text` without a language tag.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            lang: None,
        }
    }
}

/// `Assessment`: the impact of the incident and how sure the sender is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Assessment {
    /// `@occurrence`.
    pub occurrence: Option<Occurrence>,
    /// `@restriction`.
    pub restriction: Option<Restriction>,
    /// `Impact` (the schema needs at least one Impact, TimeImpact or MonetaryImpact).
    pub impacts: Vec<Impact>,
    /// `Counter`: e.g. the attack's packet and byte rates.
    pub counters: Vec<Counter>,
    /// `Confidence`.
    pub confidence: Option<Confidence>,
    /// `AdditionalData`.
    pub additional_data: Vec<Extension>,
}

/// `Impact`.
#[derive(Debug, Clone, PartialEq)]
pub struct Impact {
    /// `@type` (schema default `unknown`; always emitted).
    pub impact_type: ImpactType,
    /// `@severity`.
    pub severity: Option<IodefSeverity>,
    /// `@completion`.
    pub completion: Option<Completion>,
    /// Free-form description (element text, may be empty).
    pub text: MlString,
}

/// `Confidence`: the sender's confidence in the assessment.
#[derive(Debug, Clone, PartialEq)]
pub struct Confidence {
    /// `@rating`.
    pub rating: ConfidenceRating,
    /// The value for a `numeric` rating (element text).
    pub value: Option<f64>,
}

/// `Counter`: a count or rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Counter {
    /// `@type`.
    pub counter_type: CounterType,
    /// `@meaning`.
    pub meaning: Option<String>,
    /// `@duration`: present for a rate (per second, ...).
    pub duration: Option<Duration>,
    /// The value.
    pub value: f64,
}

/// `Contact`.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    /// `@role`.
    pub role: ContactRole,
    /// `@type`.
    pub contact_type: ContactType,
    /// `@restriction`.
    pub restriction: Option<Restriction>,
    /// `ContactName`.
    pub name: Option<MlString>,
    /// `Description`.
    pub descriptions: Vec<MlString>,
    /// `Email`.
    pub emails: Vec<String>,
    /// `Telephone`.
    pub telephones: Vec<String>,
    /// `Timezone` (`Z` or `+hh:mm`).
    pub timezone: Option<String>,
    /// `Contact`: nested contacts.
    pub contacts: Vec<Contact>,
    /// `AdditionalData`.
    pub additional_data: Vec<Extension>,
}

impl Contact {
    /// An organisation contact of `role` named `name`.
    pub fn organization(role: ContactRole, name: impl Into<String>) -> Self {
        Self {
            role,
            contact_type: ContactType::Organization,
            restriction: None,
            name: Some(MlString::new(name)),
            descriptions: Vec::new(),
            emails: Vec::new(),
            telephones: Vec::new(),
            timezone: None,
            contacts: Vec::new(),
            additional_data: Vec::new(),
        }
    }
}

/// `EventData`: a part of the incident (the attack's flows, the SP path, example records).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventData {
    /// `@restriction`.
    pub restriction: Option<Restriction>,
    /// `Description`.
    pub descriptions: Vec<MlString>,
    /// `DetectTime`.
    pub detect_time: Option<Timestamp>,
    /// `StartTime`.
    pub start_time: Option<Timestamp>,
    /// `EndTime`.
    pub end_time: Option<Timestamp>,
    /// `Contact`.
    pub contacts: Vec<Contact>,
    /// `Assessment`.
    pub assessment: Option<Assessment>,
    /// `Flow`.
    pub flows: Vec<Flow>,
    /// `Expectation`: actions wanted.
    pub expectations: Vec<Expectation>,
    /// `Record`: example records (flows, packets).
    pub record: Option<Record>,
    /// `EventData`: nested parts.
    pub event_data: Vec<EventData>,
    /// `AdditionalData`.
    pub additional_data: Vec<Extension>,
}

impl EventData {
    /// True if this holds flows and every system in them is `infrastructure` (an SP path).
    pub fn is_sp_path(&self) -> bool {
        let mut systems = self.flows.iter().flat_map(|f| &f.systems).peekable();
        systems.peek().is_some()
            && systems.all(|s| s.category == Some(SystemCategory::Infrastructure))
    }
}

/// `Flow`: systems that share one flow.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Flow {
    /// `System` (one or more).
    pub systems: Vec<System>,
}

/// `System`: a host or network and its role.
#[derive(Debug, Clone, PartialEq)]
pub struct System {
    /// `@category`.
    pub category: Option<SystemCategory>,
    /// `@spoofed`.
    pub spoofed: Option<Spoofed>,
    /// `@interface`.
    pub interface: Option<String>,
    /// `@restriction`.
    pub restriction: Option<Restriction>,
    /// `Node`.
    pub node: Node,
    /// `Service`.
    pub services: Vec<Service>,
    /// `Counter`.
    pub counters: Vec<Counter>,
    /// `Description`.
    pub descriptions: Vec<MlString>,
    /// `AdditionalData`.
    pub additional_data: Vec<Extension>,
}

impl System {
    /// A system of `category` around `node`, nothing else.
    pub fn new(category: SystemCategory, node: Node) -> Self {
        Self {
            category: Some(category),
            spoofed: None,
            interface: None,
            restriction: None,
            node,
            services: Vec::new(),
            counters: Vec::new(),
            descriptions: Vec::new(),
            additional_data: Vec::new(),
        }
    }
}

/// `Node`: names and addresses of one host or network.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Node {
    /// `NodeName`.
    pub names: Vec<MlString>,
    /// `Address`.
    pub addresses: Vec<Address>,
    /// `DateTime`: when the addresses were valid.
    pub date_time: Option<Timestamp>,
    /// `Counter`.
    pub counters: Vec<Counter>,
}

impl Node {
    /// A node with one IP address (`ipv4-addr` or `ipv6-addr`).
    pub fn ip(addr: std::net::IpAddr) -> Self {
        Self {
            addresses: vec![Address::ip(addr)],
            ..Self::default()
        }
    }

    /// A node named `name` (e.g. a RID system's DNS name).
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            names: vec![MlString::new(name)],
            ..Self::default()
        }
    }
}

/// `Address`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// `@category` (schema default `ipv4-addr`; always emitted).
    pub category: AddressCategory,
    /// `@vlan-name`.
    pub vlan_name: Option<String>,
    /// `@vlan-num`.
    pub vlan_num: Option<i64>,
    /// The address (element text).
    pub value: String,
}

impl Address {
    /// An `ipv4-addr` or `ipv6-addr` address.
    pub fn ip(addr: std::net::IpAddr) -> Self {
        Self {
            category: match addr {
                std::net::IpAddr::V4(_) => AddressCategory::Ipv4Addr,
                std::net::IpAddr::V6(_) => AddressCategory::Ipv6Addr,
            },
            vlan_name: None,
            vlan_num: None,
            value: addr.to_string(),
        }
    }

    /// An autonomous system number (`asn`).
    pub fn asn(asn: u32) -> Self {
        Self {
            category: AddressCategory::Asn,
            vlan_name: None,
            vlan_num: None,
            value: asn.to_string(),
        }
    }

    /// The address as an IP address, for the `ipv4-addr` and `ipv6-addr` categories.
    pub fn as_ip(&self) -> Option<std::net::IpAddr> {
        match self.category {
            AddressCategory::Ipv4Addr | AddressCategory::Ipv6Addr => self.value.trim().parse().ok(),
            _ => None,
        }
    }
}

/// `Service`: a protocol and its ports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Service {
    /// `@ip_protocol` (IANA protocol number).
    pub ip_protocol: u8,
    /// `Port` or `Portlist`.
    pub ports: Option<Ports>,
}

/// The ports of a [`Service`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ports {
    /// `Port`: one port.
    Port(u16),
    /// `Portlist`: ports and inclusive ranges (`53,123,1000-2000`), at least one.
    List(Vec<(u16, u16)>),
}

impl Ports {
    /// `Port` for one port, `Portlist` for several (in the given order).
    pub fn of(ports: &[u16]) -> Option<Self> {
        match ports {
            [] => None,
            [p] => Some(Self::Port(*p)),
            ps => Some(Self::List(ps.iter().map(|p| (*p, *p)).collect())),
        }
    }

    /// The ports in order with ranges expanded, at most `max` of them.
    pub fn expand(&self, max: usize) -> Vec<u16> {
        match self {
            Self::Port(p) => vec![*p],
            Self::List(l) => l.iter().flat_map(|&(a, b)| a..=b).take(max).collect(),
        }
    }
}

/// `Expectation`: an action the sender wants taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    /// `@action` (schema default `other`; always emitted).
    pub action: Action,
    /// `@severity`.
    pub severity: Option<IodefSeverity>,
    /// `@restriction`.
    pub restriction: Option<Restriction>,
    /// `Description`.
    pub descriptions: Vec<MlString>,
    /// `StartTime`.
    pub start_time: Option<Timestamp>,
    /// `EndTime`.
    pub end_time: Option<Timestamp>,
    /// `Contact`: who should act.
    pub contact: Option<Contact>,
}

impl Expectation {
    /// An expectation of `action`, nothing else.
    pub fn new(action: Action) -> Self {
        Self {
            action,
            severity: None,
            restriction: None,
            descriptions: Vec::new(),
            start_time: None,
            end_time: None,
            contact: None,
        }
    }
}

/// `Record`: example records.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    /// `@restriction`.
    pub restriction: Option<Restriction>,
    /// `RecordData` (one or more).
    pub data: Vec<RecordData>,
}

/// `RecordData`: one group of records.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordData {
    /// `@restriction`.
    pub restriction: Option<Restriction>,
    /// `DateTime`: when the records were taken.
    pub date_time: Option<Timestamp>,
    /// `Description`.
    pub descriptions: Vec<MlString>,
    /// `RecordItem` (one or more): the records (the ones the originator signs).
    pub items: Vec<Extension>,
    /// `AdditionalData`.
    pub additional_data: Vec<Extension>,
}

/// `History`: actions taken on the incident.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct History {
    /// `@restriction`.
    pub restriction: Option<Restriction>,
    /// `HistoryItem` (one or more).
    pub items: Vec<HistoryItem>,
}

/// `HistoryItem`: one action taken, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryItem {
    /// `@action`.
    pub action: Action,
    /// `@restriction`.
    pub restriction: Option<Restriction>,
    /// `DateTime` (required).
    pub date_time: Timestamp,
    /// `IncidentID`: the incident number of whoever acted.
    pub incident_id: Option<IncidentId>,
    /// `Contact`: who acted.
    pub contact: Option<Contact>,
    /// `Description`.
    pub descriptions: Vec<MlString>,
    /// `AdditionalData`.
    pub additional_data: Vec<Extension>,
}

/// An `ExtensionType` element (RecordItem, AdditionalData, RID's Signature): typed attributes
/// around arbitrary mixed content.
#[derive(Debug, Clone, PartialEq)]
pub struct Extension {
    /// `@dtype` (required).
    pub dtype: DType,
    /// `@meaning`.
    pub meaning: Option<String>,
    /// `@formatid`.
    pub formatid: Option<String>,
    /// `@restriction`.
    pub restriction: Option<Restriction>,
    /// The content: text and elements of any namespace.
    pub content: Vec<XmlContent>,
}

impl Extension {
    /// An extension of `dtype` whose content is the text `text` (none when empty).
    pub fn text(dtype: DType, meaning: Option<&str>, text: impl Into<String>) -> Self {
        let text = text.into();
        Self {
            dtype,
            meaning: meaning.map(str::to_string),
            formatid: None,
            restriction: None,
            content: if text.is_empty() {
                Vec::new()
            } else {
                vec![XmlContent::Text(text)]
            },
        }
    }

    /// The text content (all text children concatenated, elements ignored).
    pub fn text_content(&self) -> String {
        self.content
            .iter()
            .filter_map(|c| match c {
                XmlContent::Text(t) => Some(t.as_str()),
                XmlContent::Element(_) => None,
            })
            .collect()
    }
}
