//! Flow records as columnar batches (`FlowBatch`): one struct of arrays per batch, never one heap
//! object per flow.
//!
//! Contract: [`FlowRecord`] is the plain, owned view of one flow; [`FlowBatch`] stores the same
//! fields column by column. `batch.push(&r); batch.get(batch.len() - 1) == r` holds for every
//! record, including the IPv4/IPv6 distinction of every address and the presence of every
//! optional field. Addresses are stored as 16 bytes (IPv4 as IPv4-mapped `::ffff:a.b.c.d`) with a
//! per-row bit in [`FlowBatch::flags`] saying which were IPv4, so a genuine IPv6 address in the
//! `::ffff:0:0/96` range still round-trips as IPv6. Packets and bytes are already renormalised by
//! the sampling rate (the raw rate is kept in `sampling_rate`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One flow: what an exporter said about one unidirectional conversation during one interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowRecord {
    /// Address of the device that exported the flow (UDP source of the datagram, or sFlow agent).
    pub exporter: IpAddr,
    /// Observation domain (IPFIX), source id (NetFlow v9), engine type/id (v5, `type << 8 | id`)
    /// or sub-agent id (sFlow).
    pub domain: u32,
    /// Input interface (SNMP ifIndex); 0 when unknown.
    pub in_if: u32,
    /// Output interface (SNMP ifIndex); 0 when unknown.
    pub out_if: u32,
    /// Source IP address (IPv4 or IPv6); unspecified IPv4 when the exporter did not say.
    pub src_addr: IpAddr,
    /// Destination IP address (IPv4 or IPv6); unspecified IPv4 when the exporter did not say.
    pub dst_addr: IpAddr,
    /// Transport source port; 0 for protocols without ports.
    pub src_port: u16,
    /// Transport destination port; 0 for protocols without ports.
    pub dst_port: u16,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6...).
    pub proto: u8,
    /// Cumulative OR of the TCP flags seen (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10...).
    pub tcp_flags: u8,
    /// IP type of service / traffic class byte (DSCP << 2 | ECN).
    pub tos: u8,
    /// Packets in the flow, multiplied by the sampling rate.
    pub packets: u64,
    /// Layer-3 octets in the flow (IP header included), multiplied by the sampling rate.
    pub bytes: u64,
    /// First packet of the flow, Unix time in milliseconds.
    pub start_ms: u64,
    /// Last packet of the flow, Unix time in milliseconds.
    pub end_ms: u64,
    /// Source autonomous system number; 0 when unknown.
    pub src_as: u32,
    /// Destination autonomous system number; 0 when unknown.
    pub dst_as: u32,
    /// Source prefix length in bits; 0 when unknown.
    pub src_mask: u8,
    /// Destination prefix length in bits; 0 when unknown.
    pub dst_mask: u8,
    /// IP next hop, when the exporter said.
    pub next_hop: Option<IpAddr>,
    /// VLAN id (12 bits), when the exporter said.
    pub vlan: Option<u16>,
    /// Direction of observation: 0 ingress, 1 egress, when the exporter said.
    pub direction: Option<u8>,
    /// Raw sampling rate (1 in N packets) used to renormalise; 1 = unsampled.
    pub sampling_rate: u32,
    /// ICMP / ICMPv6 type; 0 for other protocols.
    pub icmp_type: u8,
    /// ICMP / ICMPv6 code; 0 for other protocols.
    pub icmp_code: u8,
    /// IPFIX flowEndReason (1 idle timeout, 2 active timeout, 3 end detected, 4 forced end,
    /// 5 lack of resources), when the exporter said.
    pub end_reason: Option<u8>,
}

impl FlowRecord {
    /// The JSON object of one flow (`--json` output, API): documented names, absent fields omitted.
    pub fn to_json(&self) -> serde_json::Value {
        let r = self;
        let mut m = serde_json::Map::new();
        m.insert("exporter".into(), r.exporter.to_string().into());
        m.insert("domain".into(), r.domain.into());
        m.insert("src_addr".into(), r.src_addr.to_string().into());
        m.insert("dst_addr".into(), r.dst_addr.to_string().into());
        m.insert("src_port".into(), r.src_port.into());
        m.insert("dst_port".into(), r.dst_port.into());
        m.insert("proto".into(), r.proto.into());
        m.insert("tcp_flags".into(), r.tcp_flags.into());
        m.insert("packets".into(), r.packets.into());
        m.insert("bytes".into(), r.bytes.into());
        m.insert("start_ms".into(), r.start_ms.into());
        m.insert("end_ms".into(), r.end_ms.into());
        m.insert("in_if".into(), r.in_if.into());
        m.insert("out_if".into(), r.out_if.into());
        m.insert("src_as".into(), r.src_as.into());
        m.insert("dst_as".into(), r.dst_as.into());
        if let Some(nh) = r.next_hop {
            m.insert("next_hop".into(), nh.to_string().into());
        }
        m.insert("sampling_rate".into(), r.sampling_rate.into());
        if let Some(v) = r.vlan {
            m.insert("vlan".into(), v.into());
        }
        serde_json::Value::Object(m)
    }
}

impl Default for FlowRecord {
    fn default() -> Self {
        let zero = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        Self {
            exporter: zero,
            domain: 0,
            in_if: 0,
            out_if: 0,
            src_addr: zero,
            dst_addr: zero,
            src_port: 0,
            dst_port: 0,
            proto: 0,
            tcp_flags: 0,
            tos: 0,
            packets: 0,
            bytes: 0,
            start_ms: 0,
            end_ms: 0,
            src_as: 0,
            dst_as: 0,
            src_mask: 0,
            dst_mask: 0,
            next_hop: None,
            vlan: None,
            direction: None,
            sampling_rate: 1,
            icmp_type: 0,
            icmp_code: 0,
            end_reason: None,
        }
    }
}

/// Bits of [`FlowBatch::flags`], one byte per row.
pub mod flags {
    /// The exporter address is IPv4 (stored IPv4-mapped).
    pub const EXPORTER_V4: u8 = 1 << 0;
    /// The source address is IPv4 (stored IPv4-mapped).
    pub const SRC_V4: u8 = 1 << 1;
    /// The destination address is IPv4 (stored IPv4-mapped).
    pub const DST_V4: u8 = 1 << 2;
    /// A next hop is present.
    pub const NEXT_HOP: u8 = 1 << 3;
    /// The next hop is IPv4 (stored IPv4-mapped).
    pub const NEXT_HOP_V4: u8 = 1 << 4;
    /// A VLAN id is present.
    pub const VLAN: u8 = 1 << 5;
    /// A direction is present.
    pub const DIRECTION: u8 = 1 << 6;
    /// A flow end reason is present.
    pub const END_REASON: u8 = 1 << 7;
}

/// Encodes an address as 16 bytes (IPv4-mapped for IPv4); returns whether it was IPv4.
#[inline]
pub fn addr_to_bytes(a: &IpAddr) -> ([u8; 16], bool) {
    match a {
        IpAddr::V4(v4) => (v4.to_ipv6_mapped().octets(), true),
        IpAddr::V6(v6) => (v6.octets(), false),
    }
}

/// Decodes 16 stored bytes back into an address; `v4` says the row bit was set.
#[inline]
pub fn addr_from_bytes(b: [u8; 16], v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15]))
    } else {
        IpAddr::V6(Ipv6Addr::from(b))
    }
}

/// The [`flags`] byte of a record.
#[inline]
fn row_flags(r: &FlowRecord) -> u8 {
    let mut f = 0u8;
    if r.exporter.is_ipv4() {
        f |= flags::EXPORTER_V4;
    }
    if r.src_addr.is_ipv4() {
        f |= flags::SRC_V4;
    }
    if r.dst_addr.is_ipv4() {
        f |= flags::DST_V4;
    }
    if let Some(a) = &r.next_hop {
        f |= flags::NEXT_HOP;
        if a.is_ipv4() {
            f |= flags::NEXT_HOP_V4;
        }
    }
    if r.vlan.is_some() {
        f |= flags::VLAN;
    }
    if r.direction.is_some() {
        f |= flags::DIRECTION;
    }
    if r.end_reason.is_some() {
        f |= flags::END_REASON;
    }
    f
}

/// A batch of flows as a struct of arrays: every column has `len()` entries, row `i` of every
/// column belongs to flow `i`. Optional fields store 0 when absent (see [`flags`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FlowBatch {
    /// Per-row presence and address-family bits ([`flags`]).
    pub flags: Vec<u8>,
    /// Exporter address, 16 bytes, IPv4-mapped when [`flags::EXPORTER_V4`].
    pub exporter: Vec<[u8; 16]>,
    /// Observation domain / source id / engine / sub-agent ([`FlowRecord::domain`]).
    pub domain: Vec<u32>,
    /// Input ifIndex.
    pub in_if: Vec<u32>,
    /// Output ifIndex.
    pub out_if: Vec<u32>,
    /// Source address, 16 bytes, IPv4-mapped when [`flags::SRC_V4`].
    pub src_addr: Vec<[u8; 16]>,
    /// Destination address, 16 bytes, IPv4-mapped when [`flags::DST_V4`].
    pub dst_addr: Vec<[u8; 16]>,
    /// Transport source port.
    pub src_port: Vec<u16>,
    /// Transport destination port.
    pub dst_port: Vec<u16>,
    /// IP protocol number.
    pub proto: Vec<u8>,
    /// Cumulative TCP flags.
    pub tcp_flags: Vec<u8>,
    /// Type of service byte.
    pub tos: Vec<u8>,
    /// Packets, renormalised by sampling.
    pub packets: Vec<u64>,
    /// Layer-3 octets, renormalised by sampling.
    pub bytes: Vec<u64>,
    /// Flow start, Unix ms.
    pub start_ms: Vec<u64>,
    /// Flow end, Unix ms.
    pub end_ms: Vec<u64>,
    /// Source AS number.
    pub src_as: Vec<u32>,
    /// Destination AS number.
    pub dst_as: Vec<u32>,
    /// Source prefix length, bits.
    pub src_mask: Vec<u8>,
    /// Destination prefix length, bits.
    pub dst_mask: Vec<u8>,
    /// Next hop, 16 bytes (valid when [`flags::NEXT_HOP`]; IPv4-mapped when [`flags::NEXT_HOP_V4`]).
    pub next_hop: Vec<[u8; 16]>,
    /// VLAN id (valid when [`flags::VLAN`]).
    pub vlan: Vec<u16>,
    /// Direction 0 ingress / 1 egress (valid when [`flags::DIRECTION`]).
    pub direction: Vec<u8>,
    /// Raw sampling rate (1 = unsampled).
    pub sampling_rate: Vec<u32>,
    /// ICMP type.
    pub icmp_type: Vec<u8>,
    /// ICMP code.
    pub icmp_code: Vec<u8>,
    /// Flow end reason (valid when [`flags::END_REASON`]).
    pub end_reason: Vec<u8>,
}

macro_rules! each_column {
    ($self:ident, $c:ident => $body:expr) => {{
        {
            let $c = &mut $self.flags;
            $body;
        }
        {
            let $c = &mut $self.exporter;
            $body;
        }
        {
            let $c = &mut $self.domain;
            $body;
        }
        {
            let $c = &mut $self.in_if;
            $body;
        }
        {
            let $c = &mut $self.out_if;
            $body;
        }
        {
            let $c = &mut $self.src_addr;
            $body;
        }
        {
            let $c = &mut $self.dst_addr;
            $body;
        }
        {
            let $c = &mut $self.src_port;
            $body;
        }
        {
            let $c = &mut $self.dst_port;
            $body;
        }
        {
            let $c = &mut $self.proto;
            $body;
        }
        {
            let $c = &mut $self.tcp_flags;
            $body;
        }
        {
            let $c = &mut $self.tos;
            $body;
        }
        {
            let $c = &mut $self.packets;
            $body;
        }
        {
            let $c = &mut $self.bytes;
            $body;
        }
        {
            let $c = &mut $self.start_ms;
            $body;
        }
        {
            let $c = &mut $self.end_ms;
            $body;
        }
        {
            let $c = &mut $self.src_as;
            $body;
        }
        {
            let $c = &mut $self.dst_as;
            $body;
        }
        {
            let $c = &mut $self.src_mask;
            $body;
        }
        {
            let $c = &mut $self.dst_mask;
            $body;
        }
        {
            let $c = &mut $self.next_hop;
            $body;
        }
        {
            let $c = &mut $self.vlan;
            $body;
        }
        {
            let $c = &mut $self.direction;
            $body;
        }
        {
            let $c = &mut $self.sampling_rate;
            $body;
        }
        {
            let $c = &mut $self.icmp_type;
            $body;
        }
        {
            let $c = &mut $self.icmp_code;
            $body;
        }
        {
            let $c = &mut $self.end_reason;
            $body;
        }
    }};
}

impl FlowBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for `n` flows in every column.
    pub fn with_capacity(n: usize) -> Self {
        let mut b = Self::default();
        b.reserve(n);
        b
    }

    /// Reserves room for `n` more flows in every column.
    pub fn reserve(&mut self, n: usize) {
        each_column!(self, c => c.reserve(n));
    }

    /// Number of flows.
    #[inline]
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// Whether the batch holds no flow.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// Removes every flow, keeping the allocated capacity.
    pub fn clear(&mut self) {
        each_column!(self, c => c.clear());
    }

    /// Drops every flow from row `len` on (no-op when `len >= self.len()`).
    pub fn truncate(&mut self, len: usize) {
        each_column!(self, c => c.truncate(len));
    }

    /// Appends one flow.
    #[inline]
    pub fn push(&mut self, r: &FlowRecord) {
        let f = row_flags(r);
        let exporter = addr_to_bytes(&r.exporter).0;
        let src = addr_to_bytes(&r.src_addr).0;
        let dst = addr_to_bytes(&r.dst_addr).0;
        let nh = r.next_hop.map(|a| addr_to_bytes(&a).0).unwrap_or([0; 16]);
        self.flags.push(f);
        self.exporter.push(exporter);
        self.domain.push(r.domain);
        self.in_if.push(r.in_if);
        self.out_if.push(r.out_if);
        self.src_addr.push(src);
        self.dst_addr.push(dst);
        self.src_port.push(r.src_port);
        self.dst_port.push(r.dst_port);
        self.proto.push(r.proto);
        self.tcp_flags.push(r.tcp_flags);
        self.tos.push(r.tos);
        self.packets.push(r.packets);
        self.bytes.push(r.bytes);
        self.start_ms.push(r.start_ms);
        self.end_ms.push(r.end_ms);
        self.src_as.push(r.src_as);
        self.dst_as.push(r.dst_as);
        self.src_mask.push(r.src_mask);
        self.dst_mask.push(r.dst_mask);
        self.next_hop.push(nh);
        self.vlan.push(r.vlan.unwrap_or(0));
        self.direction.push(r.direction.unwrap_or(0));
        self.sampling_rate.push(r.sampling_rate);
        self.icmp_type.push(r.icmp_type);
        self.icmp_code.push(r.icmp_code);
        self.end_reason.push(r.end_reason.unwrap_or(0));
    }

    /// Appends many flows, column by column (one capacity check per column, then a tight loop:
    /// several times faster than `push` per row for more than a handful of rows).
    pub fn extend_records(&mut self, recs: &[FlowRecord]) {
        self.flags.extend(recs.iter().map(row_flags));
        self.exporter
            .extend(recs.iter().map(|r| addr_to_bytes(&r.exporter).0));
        self.domain.extend(recs.iter().map(|r| r.domain));
        self.in_if.extend(recs.iter().map(|r| r.in_if));
        self.out_if.extend(recs.iter().map(|r| r.out_if));
        self.src_addr
            .extend(recs.iter().map(|r| addr_to_bytes(&r.src_addr).0));
        self.dst_addr
            .extend(recs.iter().map(|r| addr_to_bytes(&r.dst_addr).0));
        self.src_port.extend(recs.iter().map(|r| r.src_port));
        self.dst_port.extend(recs.iter().map(|r| r.dst_port));
        self.proto.extend(recs.iter().map(|r| r.proto));
        self.tcp_flags.extend(recs.iter().map(|r| r.tcp_flags));
        self.tos.extend(recs.iter().map(|r| r.tos));
        self.packets.extend(recs.iter().map(|r| r.packets));
        self.bytes.extend(recs.iter().map(|r| r.bytes));
        self.start_ms.extend(recs.iter().map(|r| r.start_ms));
        self.end_ms.extend(recs.iter().map(|r| r.end_ms));
        self.src_as.extend(recs.iter().map(|r| r.src_as));
        self.dst_as.extend(recs.iter().map(|r| r.dst_as));
        self.src_mask.extend(recs.iter().map(|r| r.src_mask));
        self.dst_mask.extend(recs.iter().map(|r| r.dst_mask));
        self.next_hop.extend(
            recs.iter()
                .map(|r| r.next_hop.map(|a| addr_to_bytes(&a).0).unwrap_or([0; 16])),
        );
        self.vlan.extend(recs.iter().map(|r| r.vlan.unwrap_or(0)));
        self.direction
            .extend(recs.iter().map(|r| r.direction.unwrap_or(0)));
        self.sampling_rate
            .extend(recs.iter().map(|r| r.sampling_rate));
        self.icmp_type.extend(recs.iter().map(|r| r.icmp_type));
        self.icmp_code.extend(recs.iter().map(|r| r.icmp_code));
        self.end_reason
            .extend(recs.iter().map(|r| r.end_reason.unwrap_or(0)));
    }

    /// Row `i` as a plain record. Panics when `i >= len()`, like slice indexing.
    pub fn get(&self, i: usize) -> FlowRecord {
        let f = self.flags[i];
        FlowRecord {
            exporter: addr_from_bytes(self.exporter[i], f & flags::EXPORTER_V4 != 0),
            domain: self.domain[i],
            in_if: self.in_if[i],
            out_if: self.out_if[i],
            src_addr: addr_from_bytes(self.src_addr[i], f & flags::SRC_V4 != 0),
            dst_addr: addr_from_bytes(self.dst_addr[i], f & flags::DST_V4 != 0),
            src_port: self.src_port[i],
            dst_port: self.dst_port[i],
            proto: self.proto[i],
            tcp_flags: self.tcp_flags[i],
            tos: self.tos[i],
            packets: self.packets[i],
            bytes: self.bytes[i],
            start_ms: self.start_ms[i],
            end_ms: self.end_ms[i],
            src_as: self.src_as[i],
            dst_as: self.dst_as[i],
            src_mask: self.src_mask[i],
            dst_mask: self.dst_mask[i],
            next_hop: (f & flags::NEXT_HOP != 0)
                .then(|| addr_from_bytes(self.next_hop[i], f & flags::NEXT_HOP_V4 != 0)),
            vlan: (f & flags::VLAN != 0).then(|| self.vlan[i]),
            direction: (f & flags::DIRECTION != 0).then(|| self.direction[i]),
            sampling_rate: self.sampling_rate[i],
            icmp_type: self.icmp_type[i],
            icmp_code: self.icmp_code[i],
            end_reason: (f & flags::END_REASON != 0).then(|| self.end_reason[i]),
        }
    }

    /// Every row as a plain record, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = FlowRecord> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// Appends every row of `other`.
    pub fn extend_from(&mut self, other: &FlowBatch) {
        self.flags.extend_from_slice(&other.flags);
        self.exporter.extend_from_slice(&other.exporter);
        self.domain.extend_from_slice(&other.domain);
        self.in_if.extend_from_slice(&other.in_if);
        self.out_if.extend_from_slice(&other.out_if);
        self.src_addr.extend_from_slice(&other.src_addr);
        self.dst_addr.extend_from_slice(&other.dst_addr);
        self.src_port.extend_from_slice(&other.src_port);
        self.dst_port.extend_from_slice(&other.dst_port);
        self.proto.extend_from_slice(&other.proto);
        self.tcp_flags.extend_from_slice(&other.tcp_flags);
        self.tos.extend_from_slice(&other.tos);
        self.packets.extend_from_slice(&other.packets);
        self.bytes.extend_from_slice(&other.bytes);
        self.start_ms.extend_from_slice(&other.start_ms);
        self.end_ms.extend_from_slice(&other.end_ms);
        self.src_as.extend_from_slice(&other.src_as);
        self.dst_as.extend_from_slice(&other.dst_as);
        self.src_mask.extend_from_slice(&other.src_mask);
        self.dst_mask.extend_from_slice(&other.dst_mask);
        self.next_hop.extend_from_slice(&other.next_hop);
        self.vlan.extend_from_slice(&other.vlan);
        self.direction.extend_from_slice(&other.direction);
        self.sampling_rate.extend_from_slice(&other.sampling_rate);
        self.icmp_type.extend_from_slice(&other.icmp_type);
        self.icmp_code.extend_from_slice(&other.icmp_code);
        self.end_reason.extend_from_slice(&other.end_reason);
    }
}

/// What the collector knows of one exporter's clock, per exporter address and observation domain
/// (`pharos_flow_exporter_clock_offset_seconds`, the exporters of `GET /api/v1/nsfs`, the
/// `[state]` clock alarm).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExporterClock {
    /// The exporter (UDP source of its datagrams).
    pub exporter: IpAddr,
    /// Observation domain of its headers (as [`FlowRecord::domain`]).
    pub domain: u32,
    /// Estimated offset of its clock: export time in its headers minus our receive time, ms,
    /// the median over its recent datagrams. Negative: its clock is behind ours.
    pub offset_ms: i64,
    /// What was subtracted from the start and end times of its latest datagram's flows, ms (0:
    /// its clock is trusted as it is).
    pub correction_ms: i64,
    /// Datagrams the estimate is the median of.
    pub samples: u32,
    /// Datagrams with an export time received from it.
    pub datagrams: u64,
    /// When its latest datagram arrived, Unix ms (our clock).
    pub last_received_ms: u64,
    /// The export time of that datagram, Unix ms (its clock).
    pub last_export_ms: u64,
}

/// The exporter clocks of a running collector, shared between its socket threads (which write)
/// and the readers (API, inventory, `[state]` alarms). Cloning shares the table; at most
/// [`ExporterClocks::LIMIT`] exporters and domains are held.
#[derive(Clone, Default)]
pub struct ExporterClocks(
    std::sync::Arc<std::sync::RwLock<std::collections::BTreeMap<(IpAddr, u32), ExporterClock>>>,
);

impl ExporterClocks {
    /// Most exporters and domains held; an update for a further one is ignored.
    pub const LIMIT: usize = 10_000;

    /// Records what is known of one exporter's clock (replacing what was).
    pub fn update(&self, c: ExporterClock) {
        let mut m = self.0.write().unwrap_or_else(|e| e.into_inner());
        let key = (c.exporter, c.domain);
        if m.len() < Self::LIMIT || m.contains_key(&key) {
            m.insert(key, c);
        }
    }

    /// Forgets an exporter's domain (the collector stopped tracking it).
    pub fn remove(&self, exporter: IpAddr, domain: u32) {
        let mut m = self.0.write().unwrap_or_else(|e| e.into_inner());
        m.remove(&(exporter, domain));
    }

    /// Every exporter clock held, ordered by exporter and domain.
    pub fn snapshot(&self) -> Vec<ExporterClock> {
        let m = self.0.read().unwrap_or_else(|e| e.into_inner());
        m.values().copied().collect()
    }
}

impl std::fmt::Debug for ExporterClocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.read().map_or(0, |m| m.len());
        f.debug_struct("ExporterClocks")
            .field("exporters", &n)
            .finish()
    }
}

/// Two handles are equal when they share one table.
impl PartialEq for ExporterClocks {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_names_every_documented_field_and_omits_absent_ones() {
        let r = FlowRecord {
            exporter: "192.0.2.1".parse().unwrap(),
            src_addr: "10.0.0.1".parse().unwrap(),
            dst_addr: "2001:db8::1".parse().unwrap(),
            proto: 6,
            packets: 3,
            bytes: 180,
            ..FlowRecord::default()
        };
        let v = r.to_json();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        for k in [
            "exporter",
            "domain",
            "src_addr",
            "dst_addr",
            "src_port",
            "dst_port",
            "proto",
            "tcp_flags",
            "packets",
            "bytes",
            "start_ms",
            "end_ms",
            "in_if",
            "out_if",
            "src_as",
            "dst_as",
            "sampling_rate",
        ] {
            assert!(keys.contains(&k), "{k} missing in {v}");
        }
        assert!(v.get("next_hop").is_none() && v.get("vlan").is_none());
        assert_eq!(v["dst_addr"], "2001:db8::1");
        let v = (FlowRecord {
            next_hop: Some("10.0.0.254".parse().unwrap()),
            vlan: Some(7),
            ..r
        })
        .to_json();
        assert_eq!(v["next_hop"], "10.0.0.254");
        assert_eq!(v["vlan"], 7);
    }

    fn sample(i: u32) -> FlowRecord {
        FlowRecord {
            exporter: "192.0.2.1".parse().unwrap(),
            domain: i,
            src_addr: "::ffff:10.0.0.1".parse().unwrap(),
            dst_addr: "10.0.0.2".parse().unwrap(),
            src_port: 1234,
            dst_port: 80,
            proto: 6,
            packets: 10,
            bytes: 1500,
            next_hop: Some("2001:db8::1".parse().unwrap()),
            vlan: Some(0),
            direction: Some(1),
            end_reason: Some(2),
            ..FlowRecord::default()
        }
    }

    #[test]
    fn push_then_get_round_trips_every_field_including_mapped_v6() {
        let mut b = FlowBatch::with_capacity(4);
        let r0 = sample(0);
        let r1 = FlowRecord {
            next_hop: Some("10.1.1.1".parse().unwrap()),
            ..sample(1)
        };
        let r2 = FlowRecord::default();
        for r in [&r0, &r1, &r2] {
            b.push(r);
        }
        assert_eq!(b.len(), 3);
        assert_eq!(b.get(0), r0);
        assert!(
            b.get(0).src_addr.is_ipv6(),
            "a real ::ffff: IPv6 address stays IPv6"
        );
        assert_eq!(b.get(1), r1);
        assert_eq!(b.get(2), r2);
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![r0, r1, r2]);
    }

    #[test]
    fn extend_records_equals_pushing_each_record() {
        let recs: Vec<FlowRecord> = (0..5).map(sample).chain([FlowRecord::default()]).collect();
        let mut a = FlowBatch::new();
        let mut b = FlowBatch::new();
        for r in &recs {
            a.push(r);
        }
        b.extend_records(&recs);
        assert_eq!(a, b);
        assert_eq!(b.iter().collect::<Vec<_>>(), recs);
    }

    #[test]
    fn clear_keeps_capacity_and_extend_appends() {
        let mut a = FlowBatch::new();
        a.push(&sample(1));
        let mut b = FlowBatch::with_capacity(16);
        b.push(&sample(2));
        b.extend_from(&a);
        assert_eq!(b.len(), 2);
        assert_eq!(b.get(1), sample(1));
        let cap = b.packets.capacity();
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.packets.capacity(), cap);
    }
}
