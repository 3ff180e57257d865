//! The RID envelope (RFC 6545 §4, namespace `urn:ietf:params:xml:ns:iodef-rid-2.0`).
//!
//! Contract: a [`Rid`] is one RID message exactly as RFC 6546 POSTs it: the `RID` root with
//! `RIDPolicy`, `RequestStatus` (Acknowledgement) and `IncidentSource` (Result), the IODEF
//! document travelling inside `RIDPolicy/ReportSchema/XMLDocument`. Fields mirror the schema one
//! to one; [`Rid::check`](crate::Rid::check) says whether a message carries what RFC 6545 §6
//! requires for its type.

use crate::enums::{
    AuthorizationStatus, DType, Justification, MsgDestination, MsgType, PolicyRegion, Restriction,
    SchemaVersion, TrafficType, XmlSchemaId,
};
use crate::iodef::{Extension, IncidentId, IodefDocument, Node};
use crate::xml::XmlContent;

/// The RID namespace (RFC 6545 §8).
pub const RID_NS: &str = "urn:ietf:params:xml:ns:iodef-rid-2.0";

/// One RID message: the `RID` root element.
#[derive(Debug, Clone, PartialEq)]
pub struct Rid {
    /// `lang` (required, an RFC 5646 tag such as `en`).
    pub lang: String,
    /// `RIDPolicy`: routing and policy information (present in every message Pharos sends).
    pub policy: Option<RidPolicy>,
    /// `RequestStatus`: the answer an Acknowledgement carries.
    pub request_status: Option<RequestStatus>,
    /// `IncidentSource`: what a Result found.
    pub incident_source: Option<IncidentSource>,
}

impl Rid {
    /// A message in English with `policy` and nothing else.
    pub fn new(policy: RidPolicy) -> Self {
        Self {
            lang: "en".into(),
            policy: Some(policy),
            request_status: None,
            incident_source: None,
        }
    }

    /// The message type, from `RIDPolicy/@MsgType` (`None` without a RIDPolicy).
    pub fn msg_type(&self) -> Option<&MsgType> {
        self.policy.as_ref().map(|p| &p.msg_type)
    }

    /// The RIDPolicy's `IncidentID`, if any.
    pub fn incident_id(&self) -> Option<&IncidentId> {
        self.policy.as_ref()?.incident_id.as_ref()
    }

    /// The IODEF document carried in `ReportSchema/XMLDocument`, if the payload is one.
    pub fn iodef(&self) -> Option<&IodefDocument> {
        match &self
            .policy
            .as_ref()?
            .report_schema
            .as_ref()?
            .document
            .payload
        {
            Payload::Iodef(d) => Some(d),
            Payload::Other(_) => None,
        }
    }

    /// The IODEF document, mutably (a relay appends itself to the path with it).
    pub fn iodef_mut(&mut self) -> Option<&mut IodefDocument> {
        match &mut self
            .policy
            .as_mut()?
            .report_schema
            .as_mut()?
            .document
            .payload
        {
            Payload::Iodef(d) => Some(d),
            Payload::Other(_) => None,
        }
    }
}

/// `RIDPolicy`: what a relay needs to route and apply policy without reading the incident.
#[derive(Debug, Clone, PartialEq)]
pub struct RidPolicy {
    /// `@MsgType`.
    pub msg_type: MsgType,
    /// `@MsgDestination`: whether `node` is the RID system addressed or the incident's source.
    pub msg_destination: MsgDestination,
    /// `@restriction`.
    pub restriction: Option<Restriction>,
    /// `PolicyRegion` (one or more).
    pub regions: Vec<PolicyRegion>,
    /// `iodef:Node` (exactly one): the RID system addressed, or the source of the incident.
    pub node: Node,
    /// `TrafficType` (one or more).
    pub traffic_types: Vec<TrafficType>,
    /// `iodef:IncidentID`: the incident number, with `instance` per divergent trace path.
    pub incident_id: Option<IncidentId>,
    /// `ReportSchema`: the enveloped IODEF (or other) document.
    pub report_schema: Option<ReportSchema>,
}

impl RidPolicy {
    /// A policy of `msg_type` addressed to the RID system `node`, peer to peer, about attack
    /// traffic, with no incident and no document.
    pub fn new(msg_type: MsgType, node: Node) -> Self {
        Self {
            msg_type,
            msg_destination: MsgDestination::RidSystem,
            restriction: None,
            regions: vec![PolicyRegion::PeerToPeer],
            node,
            traffic_types: vec![TrafficType::Attack],
            incident_id: None,
            report_schema: None,
        }
    }
}

/// `RequestStatus`: the status of a Request, in an Acknowledgement.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestStatus {
    /// `@AuthorizationStatus`.
    pub authorization: AuthorizationStatus,
    /// `@Justification`: why, when denied or not processed.
    pub justification: Option<Justification>,
    /// `@restriction`.
    pub restriction: Option<Restriction>,
}

/// `IncidentSource`: whether a Result found the source, and which hosts or networks.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentSource {
    /// `SourceFound`.
    pub source_found: bool,
    /// `iodef:Node` (any number): the source hosts or networks.
    pub nodes: Vec<Node>,
    /// `@restriction`.
    pub restriction: Option<Restriction>,
}

/// `ReportSchema`: an enveloped document with the schema it follows and its signatures.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSchema {
    /// `@Version`.
    pub version: Option<SchemaVersion>,
    /// `@XMLSchemaID` (absent means IODEF v1 by RFC 6545's default reading).
    pub xml_schema_id: Option<XmlSchemaId>,
    /// `XMLDocument`.
    pub document: XmlDocument,
    /// `URL`: where the embedded schema is specified.
    pub url: Option<String>,
    /// `Signature` (any number): XML signatures, kept as received (see docs/rid.md).
    pub signatures: Vec<Extension>,
}

impl ReportSchema {
    /// An IODEF v1 document, version 1.0, no URL, no signatures.
    pub fn iodef(doc: IodefDocument) -> Self {
        Self {
            version: Some(SchemaVersion::V1_0),
            xml_schema_id: Some(XmlSchemaId::Iodef1),
            document: XmlDocument {
                dtype: DType::Xml,
                meaning: Some("IODEF-Document".into()),
                formatid: None,
                restriction: None,
                payload: Payload::Iodef(Box::new(doc)),
            },
            url: None,
            signatures: Vec::new(),
        }
    }
}

/// `XMLDocument` (an IODEF `ExtensionType` with `dtype="xml"`).
#[derive(Debug, Clone, PartialEq)]
pub struct XmlDocument {
    /// `@dtype` (`xml` for every document Pharos sends).
    pub dtype: DType,
    /// `@meaning`.
    pub meaning: Option<String>,
    /// `@formatid`.
    pub formatid: Option<String>,
    /// `@restriction`.
    pub restriction: Option<Restriction>,
    /// The content.
    pub payload: Payload,
}

/// What an `XMLDocument` holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// One `iodef:IODEF-Document` (whitespace around it ignored).
    Iodef(Box<IodefDocument>),
    /// Anything else (another schema by bilateral agreement), kept as parsed XML.
    Other(Vec<XmlContent>),
}
