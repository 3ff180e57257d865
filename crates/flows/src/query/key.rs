//! Aggregation keys and metrics: what a top-N or a series groups by (`srcip4/24`, `dstport`...)
//! and orders by (flows, packets, bytes), and the totals of a group.
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use super::QueryError;
use crate::filter::Family;

/// What a top-N or series orders by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Number of flows.
    Flows,
    /// Sum of packets.
    Packets,
    /// Sum of bytes.
    Bytes,
}

impl FromStr for Metric {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, QueryError> {
        match s.to_ascii_lowercase().as_str() {
            "flows" | "flow" | "records" => Ok(Metric::Flows),
            "packets" | "pkts" | "packet" => Ok(Metric::Packets),
            "bytes" | "byte" | "octets" => Ok(Metric::Bytes),
            _ => Err(QueryError::Metric(s.to_string())),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Metric::Flows => "flows",
            Metric::Packets => "packets",
            Metric::Bytes => "bytes",
        })
    }
}

/// The field a key groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyField {
    /// Source address (or prefix).
    SrcAddr,
    /// Destination address (or prefix).
    DstAddr,
    /// Either address: a flow counts for its source and for its destination.
    Addr,
    /// Source port.
    SrcPort,
    /// Destination port.
    DstPort,
    /// Either port.
    Port,
    /// IP protocol.
    Proto,
    /// Source AS.
    SrcAs,
    /// Destination AS.
    DstAs,
    /// Either AS.
    As,
    /// Exporter address.
    Exporter,
    /// Input interface.
    InIf,
    /// Output interface.
    OutIf,
    /// Type of service.
    Tos,
}

/// An aggregation key: a field, for addresses optionally cut to a prefix of one family
/// (`srcip4/24` groups IPv4 sources by /24 and leaves IPv6 flows out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    /// The field.
    pub field: KeyField,
    /// For address keys: only this family, cut to this prefix length.
    pub prefix: Option<(Family, u8)>,
}

impl FromStr for Key {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, QueryError> {
        let err = || QueryError::Key(s.to_string());
        let lower = s.trim().to_ascii_lowercase();
        let (name, len) = match lower.split_once('/') {
            Some((n, l)) => (n, Some(l.parse::<u8>().map_err(|_| err())?)),
            None => (lower.as_str(), None),
        };
        let addr = |field: KeyField, fam: Option<Family>| -> Result<Key, QueryError> {
            let prefix = match (fam, len) {
                (None, None) => None,
                (Some(f), None) => Some((f, if f == Family::V4 { 32 } else { 128 })),
                (Some(f), Some(l)) if l <= if f == Family::V4 { 32 } else { 128 } => Some((f, l)),
                _ => return Err(err()),
            };
            Ok(Key { field, prefix })
        };
        let plain = |field: KeyField| match len {
            None => Ok(Key {
                field,
                prefix: None,
            }),
            Some(_) => Err(err()),
        };
        use KeyField::*;
        let fam_of = |n: &str, base: &str| -> Option<Option<Family>> {
            match n.strip_prefix(base)? {
                "" => Some(None),
                "4" => Some(Some(Family::V4)),
                "6" => Some(Some(Family::V6)),
                _ => None,
            }
        };
        for (base, field) in [("srcip", SrcAddr), ("dstip", DstAddr), ("ip", Addr)] {
            if let Some(fam) = fam_of(name, base) {
                return addr(field, fam);
            }
        }
        match name {
            "srcaddr" | "src" => addr(SrcAddr, None),
            "dstaddr" | "dst" => addr(DstAddr, None),
            "srcport" => plain(SrcPort),
            "dstport" => plain(DstPort),
            "port" => plain(Port),
            "proto" | "protocol" => plain(Proto),
            "srcas" => plain(SrcAs),
            "dstas" => plain(DstAs),
            "as" => plain(As),
            "exporter" | "router" => plain(Exporter),
            "inif" | "in" => plain(InIf),
            "outif" | "out" => plain(OutIf),
            "tos" => plain(Tos),
            _ => Err(err()),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use KeyField::*;
        let base = match self.field {
            SrcAddr => "srcip",
            DstAddr => "dstip",
            Addr => "ip",
            SrcPort => "srcport",
            DstPort => "dstport",
            Port => "port",
            Proto => "proto",
            SrcAs => "srcas",
            DstAs => "dstas",
            As => "as",
            Exporter => "exporter",
            InIf => "inif",
            OutIf => "outif",
            Tos => "tos",
        };
        match self.prefix {
            None => f.write_str(base),
            Some((fam, len)) => {
                let v = if fam == Family::V4 { 4 } else { 6 };
                write!(f, "{base}{v}/{len}")
            }
        }
    }
}

/// One value of a key, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyValue {
    /// An address.
    Addr(IpAddr),
    /// A prefix (keys such as `srcip4/24`).
    Net(IpNet),
    /// A port, protocol, AS number, interface index or TOS.
    Num(u32),
}

impl fmt::Display for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyValue::Addr(a) => a.fmt(f),
            KeyValue::Net(n) => n.fmt(f),
            KeyValue::Num(n) => n.fmt(f),
        }
    }
}

impl serde::Serialize for KeyValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            KeyValue::Num(n) => s.serialize_u32(*n),
            other => s.collect_str(other),
        }
    }
}

/// Flows, packets and bytes of a group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    /// Flows.
    pub flows: u64,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

impl Totals {
    #[inline]
    pub(super) fn add(&mut self, packets: u64, bytes: u64) {
        self.flows += 1;
        self.packets = self.packets.saturating_add(packets);
        self.bytes = self.bytes.saturating_add(bytes);
    }

    pub(super) fn merge(&mut self, o: &Totals) {
        self.flows += o.flows;
        self.packets = self.packets.saturating_add(o.packets);
        self.bytes = self.bytes.saturating_add(o.bytes);
    }

    /// The value of `m`.
    pub fn get(&self, m: Metric) -> u64 {
        match m {
            Metric::Flows => self.flows,
            Metric::Packets => self.packets,
            Metric::Bytes => self.bytes,
        }
    }
}
