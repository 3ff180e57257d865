//! Real-time Inter-network Defense (RID, RFC 6545) messages carrying IODEF v1 (RFC 5070)
//! incident documents: a typed model, a safe XML codec, the RFC 6545 §6 content checks, and the
//! conversion between a Pharos DDoS event and an IODEF incident.
//!
//! The one design choice to know: untrusted bytes meet exactly one function, the bounded reader
//! behind [`Rid::parse`] and [`IodefDocument::parse`] (no DTDs, no entities beyond the five
//! predefined ones, limits on size, depth, element and attribute counts, see [`Limits`]); it
//! yields a namespace-resolved tree that is then mapped onto plain structs, so prefixes never
//! matter and every refusal names the element path. Emission ([`Rid::emit`]) writes what the
//! XSDs accept, and `Rid::parse(rid.emit())` gives back `rid`.
//!
//! ```
//! use pharos_rid::{Limits, MsgType, Node, Rid, RidPolicy};
//! let report = Rid::new(RidPolicy::new(MsgType::Report, Node::named("rid.example.net")));
//! let xml = report.emit();
//! assert_eq!(Rid::parse(xml.as_bytes(), &Limits::default()).unwrap(), report);
//! ```

#![forbid(unsafe_code)]

mod check;
/// `[rid]` of `pharos.toml`: the RID peer's settings, its peers and their policy.
pub mod config;
mod ddos;
/// XML signatures (RFC 6545 §9): exclusive C14N, enveloped and detached signatures, checked
/// against a peer's certificate.
pub mod dsig;
mod emit;
mod enums;
mod error;
mod iodef;
mod parse;
mod rid;
/// The persistent RID state table: every incident and message, in SQLite (see docs/rid.md,
/// "State table").
pub mod state;
/// RID over HTTPS (RFC 6546): the mutually authenticated server and client (see docs/rid.md,
/// "Transport (RFC 6546)").
pub mod transport;
mod xml;

pub use ddos::{
    DdosContext, RULE_NAME_MEANING, ddos_to_iodef, incident_to_ddos, iodef_severity, iodef_to_ddos,
    ip_protocol_of,
};
pub use enums::*;
pub use error::{CheckError, ConvertError, ParseError};
pub use iodef::*;
pub use rid::*;
pub use xml::{Limits, XmlAttribute, XmlContent, XmlElement};

impl Rid {
    /// Parses one RID message (the body of an RFC 6546 POST) under `limits`.
    pub fn parse(input: &[u8], limits: &Limits) -> Result<Rid, ParseError> {
        parse::rid(&xml::read_tree(input, limits)?)
    }

    /// The message as an XML document (UTF-8, with an XML declaration).
    pub fn emit(&self) -> String {
        let mut w = emit::Writer::new();
        emit::rid(&mut w, self);
        w.finish()
    }
}

impl IodefDocument {
    /// Parses a standalone `IODEF-Document` under `limits`.
    pub fn parse(input: &[u8], limits: &Limits) -> Result<IodefDocument, ParseError> {
        parse::iodef_root(&xml::read_tree(input, limits)?)
    }

    /// The document as a standalone XML document (UTF-8, with an XML declaration).
    pub fn emit(&self) -> String {
        let mut w = emit::Writer::new();
        emit::iodef_document(&mut w, self, true);
        w.finish()
    }
}
