//! sFlow v5: datagram header, flow samples and expanded flow samples (raw packet headers parsed
//! with [`crate::packet`], sampled IPv4/IPv6 records, extended switch/router/gateway data),
//! counter samples and expanded counter samples (generic interface and Ethernet counters).
//!
//! Contract: [`SflowDatagram::new_checked`] checks the datagram header; samples and records are
//! walked by their own length fields, each checked against what remains, so a malformed sample
//! is skipped (and reported to the caller's drop counter) without losing the others. One flow
//! sample becomes one flow: packets = sampling rate, bytes = frame length × sampling rate, start
//! and end = receive time. Nothing allocates per sample except the returned counter structs.

use std::net::IpAddr;

use pharos_model::flow::{FlowBatch, FlowRecord};

use crate::bytes::{ipv4_at, ipv6_at, u32_at, u64_at};
use crate::error::{WireError, need};
use crate::packet::{PacketSummary, parse_ethernet, parse_ip};

/// The sFlow datagram header as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SflowHeader {
    /// Agent address.
    pub agent: IpAddr,
    /// Sub-agent id.
    pub sub_agent: u32,
    /// Datagram sequence number (per agent + sub-agent, +1 per datagram).
    pub sequence: u32,
    /// Agent uptime, ms.
    pub uptime_ms: u32,
    /// Samples announced.
    pub samples: u32,
}

/// An sFlow v5 datagram, borrowed. After `new_checked` succeeds, no accessor panics.
#[derive(Debug, Clone, Copy)]
pub struct SflowDatagram<T: AsRef<[u8]>> {
    buf: T,
    header: SflowHeader,
    samples_at: usize,
}

/// One sample: its `(enterprise, format)` tag and body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample<'a> {
    /// Enterprise (0 = sFlow.org standard).
    pub enterprise: u32,
    /// Format (1 flow, 2 counters, 3 expanded flow, 4 expanded counters).
    pub format: u32,
    /// Body bytes.
    pub body: &'a [u8],
}

/// Generic interface counters (sFlow counter record 0:1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InterfaceCounters {
    /// ifIndex.
    pub if_index: u32,
    /// ifType (IANA).
    pub if_type: u32,
    /// ifSpeed, bits per second.
    pub speed: u64,
    /// Direction: 0 unknown, 1 full duplex, 2 half duplex, 3 in, 4 out.
    pub direction: u32,
    /// ifAdminStatus (bit 0) and ifOperStatus (bit 1).
    pub status: u32,
    /// Octets received.
    pub in_octets: u64,
    /// Unicast packets received.
    pub in_unicast: u32,
    /// Multicast packets received.
    pub in_multicast: u32,
    /// Broadcast packets received.
    pub in_broadcast: u32,
    /// Inbound packets discarded.
    pub in_discards: u32,
    /// Inbound packets with errors.
    pub in_errors: u32,
    /// Inbound packets of unknown protocols.
    pub in_unknown_protos: u32,
    /// Octets sent.
    pub out_octets: u64,
    /// Unicast packets sent.
    pub out_unicast: u32,
    /// Multicast packets sent.
    pub out_multicast: u32,
    /// Broadcast packets sent.
    pub out_broadcast: u32,
    /// Outbound packets discarded.
    pub out_discards: u32,
    /// Outbound packets with errors.
    pub out_errors: u32,
    /// Promiscuous mode (1 true, 2 false).
    pub promiscuous: u32,
}

/// Ethernet interface counters (sFlow counter record 0:2, dot3 statistics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EthernetCounters {
    /// dot3StatsAlignmentErrors.
    pub alignment_errors: u32,
    /// dot3StatsFCSErrors.
    pub fcs_errors: u32,
    /// dot3StatsSingleCollisionFrames.
    pub single_collision_frames: u32,
    /// dot3StatsMultipleCollisionFrames.
    pub multiple_collision_frames: u32,
    /// dot3StatsSQETestErrors.
    pub sqe_test_errors: u32,
    /// dot3StatsDeferredTransmissions.
    pub deferred_transmissions: u32,
    /// dot3StatsLateCollisions.
    pub late_collisions: u32,
    /// dot3StatsExcessiveCollisions.
    pub excessive_collisions: u32,
    /// dot3StatsInternalMacTransmitErrors.
    pub internal_mac_transmit_errors: u32,
    /// dot3StatsCarrierSenseErrors.
    pub carrier_sense_errors: u32,
    /// dot3StatsFrameTooLongs.
    pub frame_too_longs: u32,
    /// dot3StatsInternalMacReceiveErrors.
    pub internal_mac_receive_errors: u32,
    /// dot3StatsSymbolErrors.
    pub symbol_errors: u32,
}

/// One sFlow counter sample as plain values (what becomes an I2NSF interface counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterSample {
    /// Agent address.
    pub agent: IpAddr,
    /// Sub-agent id.
    pub sub_agent: u32,
    /// Receive time, Unix ms.
    pub received_ms: u64,
    /// Counter sample sequence number.
    pub sequence: u32,
    /// Source id type (0 ifIndex, 1 smonVlanDataSource, 2 entPhysicalEntry).
    pub source_type: u8,
    /// Source id index (the ifIndex for interfaces).
    pub if_index: u32,
    /// Generic interface counters, when present.
    pub interface: Option<InterfaceCounters>,
    /// Ethernet counters, when present.
    pub ethernet: Option<EthernetCounters>,
}

impl<T: AsRef<[u8]>> SflowDatagram<T> {
    /// Wraps `buf` after checking the version (5), the agent address type (1 IPv4, 2 IPv6) and
    /// that the whole header is present.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        need("sflow header", b, 8)?;
        let version = u32_at(b, 0);
        if version != 5 {
            return Err(WireError::UnknownVersion(
                version.min(u16::MAX as u32) as u16
            ));
        }
        let (agent, pos) = match u32_at(b, 4) {
            1 => {
                need("sflow header", b, 8 + 4 + 16)?;
                (IpAddr::V4(ipv4_at(b, 8)), 12)
            }
            2 => {
                need("sflow header", b, 8 + 16 + 16)?;
                (IpAddr::V6(ipv6_at(b, 8)), 24)
            }
            t => {
                return Err(WireError::malformed(
                    "sflow header",
                    format!("agent address type {t}"),
                ));
            }
        };
        let header = SflowHeader {
            agent,
            sub_agent: u32_at(b, pos),
            sequence: u32_at(b, pos + 4),
            uptime_ms: u32_at(b, pos + 8),
            samples: u32_at(b, pos + 12),
        };
        Ok(Self {
            buf,
            header,
            samples_at: pos + 16,
        })
    }

    /// The header as plain values.
    pub fn header(&self) -> SflowHeader {
        self.header
    }

    /// The samples, walked by their lengths; stops with an error item at the first bad length.
    pub fn samples(&self) -> Tlvs<'_> {
        Tlvs {
            rest: self.buf.as_ref().get(self.samples_at..).unwrap_or(&[]),
            left: self.header.samples,
            what: "sflow sample",
        }
    }

    /// Appends one flow per flow sample to `out` and one [`CounterSample`] per counter sample to
    /// `counters`; returns the number of flows. `rate_override` replaces every sample's rate.
    /// Each skipped sample or record is reported to `drop` with a reason.
    pub fn decode_into(
        &self,
        received_ms: u64,
        rate_override: Option<u32>,
        out: &mut FlowBatch,
        counters: &mut Vec<CounterSample>,
        drop: &mut dyn FnMut(&'static str),
    ) -> usize {
        let h = self.header;
        let mut flows = 0;
        for s in self.samples() {
            let s = match s {
                Ok(s) => s,
                Err(e) => {
                    drop(e.reason());
                    break;
                }
            };
            if s.enterprise != 0 {
                drop("sflow sample of unknown enterprise");
                continue;
            }
            match s.format {
                1 | 3 => {
                    match flow_sample(&h, s.body, s.format == 3, received_ms, rate_override, drop) {
                        Ok(r) => {
                            out.push(&r);
                            flows += 1;
                        }
                        Err(e) => drop(e.reason()),
                    }
                }
                2 | 4 => match counter_sample(&h, s.body, s.format == 4, received_ms, drop) {
                    Ok(c) => counters.push(c),
                    Err(e) => drop(e.reason()),
                },
                _ => drop("sflow sample of unknown format"),
            }
        }
        flows
    }
}

/// `(enterprise << 12 | format, length, body)` items, as used by sFlow samples and records.
#[derive(Debug, Clone)]
pub struct Tlvs<'a> {
    rest: &'a [u8],
    left: u32,
    what: &'static str,
}

impl<'a> Iterator for Tlvs<'a> {
    type Item = Result<Sample<'a>, WireError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let b = self.rest;
        if b.len() < 8 {
            self.left = 0;
            return Some(Err(WireError::Truncated {
                what: self.what,
                need: 8,
                have: b.len(),
            }));
        }
        let tag = u32_at(b, 0);
        let len = u32_at(b, 4) as usize;
        if len > b.len() - 8 {
            self.left = 0;
            return Some(Err(WireError::Truncated {
                what: self.what,
                need: len.saturating_add(8),
                have: b.len(),
            }));
        }
        self.rest = &b[8 + len..];
        Some(Ok(Sample {
            enterprise: tag >> 12,
            format: tag & 0xfff,
            body: &b[8..8 + len],
        }))
    }
}

/// Reads an sFlow address (type + 4 or 16 bytes) at `pos`; returns it and the next position.
fn address(b: &[u8], pos: usize) -> Option<(Option<IpAddr>, usize)> {
    match u32_at(b, pos) {
        1 if b.len() >= pos + 8 => Some((Some(IpAddr::V4(ipv4_at(b, pos + 4))), pos + 8)),
        2 if b.len() >= pos + 20 => Some((Some(IpAddr::V6(ipv6_at(b, pos + 4))), pos + 20)),
        0 if b.len() >= pos + 4 => Some((None, pos + 4)),
        _ => None,
    }
}

fn flow_sample(
    h: &SflowHeader,
    b: &[u8],
    expanded: bool,
    received_ms: u64,
    rate_override: Option<u32>,
    drop: &mut dyn FnMut(&'static str),
) -> Result<FlowRecord, WireError> {
    let what = if expanded {
        "sflow expanded flow sample"
    } else {
        "sflow flow sample"
    };
    // Compact: seq, source_id, rate, pool, drops, input, output, n_records (32 bytes).
    // Expanded: seq, source type, source index, rate, pool, drops, input format, input value,
    // output format, output value, n_records (44 bytes).
    let (rate, input, output, nrec, rec_at) = if expanded {
        need(what, b, 44)?;
        let in_if = if u32_at(b, 24) == 0 { u32_at(b, 28) } else { 0 };
        let out_if = if u32_at(b, 32) == 0 { u32_at(b, 36) } else { 0 };
        (u32_at(b, 12), in_if, out_if, u32_at(b, 40), 44)
    } else {
        need(what, b, 32)?;
        let inp = u32_at(b, 20);
        let outp = u32_at(b, 24);
        let in_if = if inp >> 30 == 0 { inp & 0x3fff_ffff } else { 0 };
        let out_if = if outp >> 30 == 0 {
            outp & 0x3fff_ffff
        } else {
            0
        };
        (u32_at(b, 8), in_if, out_if, u32_at(b, 28), 32)
    };
    let rate = rate_override.unwrap_or(rate).max(1);
    let mut r = FlowRecord {
        exporter: h.agent,
        domain: h.sub_agent,
        in_if: input,
        out_if: output,
        start_ms: received_ms,
        end_ms: received_ms,
        sampling_rate: rate,
        packets: rate as u64,
        ..FlowRecord::default()
    };
    let mut frame_len: Option<u64> = None;
    let mut have_header = false;
    let records = Tlvs {
        rest: b.get(rec_at..).unwrap_or(&[]),
        left: nrec,
        what: "sflow flow record",
    };
    for rec in records {
        let rec = match rec {
            Ok(x) => x,
            Err(e) => {
                drop(e.reason());
                break;
            }
        };
        if rec.enterprise != 0 {
            continue;
        }
        let d = rec.body;
        match rec.format {
            1 => {
                if d.len() < 16 {
                    drop("sflow raw header record truncated");
                    continue;
                }
                let proto = u32_at(d, 0);
                let frame = u32_at(d, 4) as u64;
                let hlen = (u32_at(d, 12) as usize).min(d.len() - 16);
                let hdr = &d[16..16 + hlen];
                let mut p = PacketSummary::default();
                match proto {
                    1 => parse_ethernet(hdr, &mut p),
                    11 | 12 => parse_ip(hdr, &mut p),
                    _ => {}
                }
                frame_len = Some(frame);
                have_header = true;
                apply_summary(&mut r, &p);
            }
            3 if d.len() >= 32 && !have_header => {
                frame_len.get_or_insert(u32_at(d, 0) as u64);
                r.proto = u32_at(d, 4) as u8;
                r.src_addr = IpAddr::V4(ipv4_at(d, 8));
                r.dst_addr = IpAddr::V4(ipv4_at(d, 12));
                r.src_port = u32_at(d, 16) as u16;
                r.dst_port = u32_at(d, 20) as u16;
                r.tcp_flags = u32_at(d, 24) as u8;
                r.tos = u32_at(d, 28) as u8;
            }
            4 if d.len() >= 56 && !have_header => {
                frame_len.get_or_insert(u32_at(d, 0) as u64);
                r.proto = u32_at(d, 4) as u8;
                r.src_addr = IpAddr::V6(ipv6_at(d, 8));
                r.dst_addr = IpAddr::V6(ipv6_at(d, 24));
                r.src_port = u32_at(d, 40) as u16;
                r.dst_port = u32_at(d, 44) as u16;
                r.tcp_flags = u32_at(d, 48) as u8;
                r.tos = u32_at(d, 52) as u8;
            }
            1001 if d.len() >= 16 => {
                let v = u32_at(d, 0);
                if v != 0 && r.vlan.is_none() {
                    r.vlan = Some((v & 0x0fff) as u16);
                }
            }
            1002 => {
                if let Some((nh, pos)) = address(d, 0)
                    && d.len() >= pos + 8
                {
                    r.next_hop = nh.filter(|a| !a.is_unspecified()).or(r.next_hop);
                    r.src_mask = u32_at(d, pos) as u8;
                    r.dst_mask = u32_at(d, pos + 4) as u8;
                }
            }
            1003 => {
                if let Some((nh, pos)) = address(d, 0)
                    && d.len() >= pos + 16
                {
                    if r.next_hop.is_none() {
                        r.next_hop = nh.filter(|a| !a.is_unspecified());
                    }
                    r.src_as = u32_at(d, pos + 4);
                    // Destination AS: last AS of the last path segment.
                    let mut q = pos + 16;
                    let segments = u32_at(d, pos + 12);
                    let mut dst_as = 0;
                    for _ in 0..segments.min(64) {
                        if d.len() < q + 8 {
                            break;
                        }
                        let n = u32_at(d, q + 4) as usize;
                        q += 8;
                        if n == 0 || d.len() < q + 4 * n {
                            break;
                        }
                        dst_as = u32_at(d, q + 4 * (n - 1));
                        q += 4 * n;
                    }
                    r.dst_as = dst_as;
                }
            }
            _ => {}
        }
    }
    let frame = frame_len.unwrap_or(0);
    r.bytes = frame.saturating_mul(rate as u64);
    Ok(r)
}

fn apply_summary(r: &mut FlowRecord, p: &PacketSummary) {
    p.apply_to(r);
    if p.vlan.is_some() {
        r.vlan = p.vlan;
    }
}

fn counter_sample(
    h: &SflowHeader,
    b: &[u8],
    expanded: bool,
    received_ms: u64,
    drop: &mut dyn FnMut(&'static str),
) -> Result<CounterSample, WireError> {
    let what = if expanded {
        "sflow expanded counter sample"
    } else {
        "sflow counter sample"
    };
    let (source_type, index, nrec, at) = if expanded {
        need(what, b, 16)?;
        (u32_at(b, 4) as u8, u32_at(b, 8), u32_at(b, 12), 16)
    } else {
        need(what, b, 12)?;
        let sid = u32_at(b, 4);
        ((sid >> 24) as u8, sid & 0x00ff_ffff, u32_at(b, 8), 12)
    };
    let mut c = CounterSample {
        agent: h.agent,
        sub_agent: h.sub_agent,
        received_ms,
        sequence: u32_at(b, 0),
        source_type,
        if_index: index,
        interface: None,
        ethernet: None,
    };
    let records = Tlvs {
        rest: b.get(at..).unwrap_or(&[]),
        left: nrec,
        what: "sflow counter record",
    };
    for rec in records {
        let rec = match rec {
            Ok(x) => x,
            Err(e) => {
                drop(e.reason());
                break;
            }
        };
        let d = rec.body;
        match (rec.enterprise, rec.format) {
            (0, 1) if d.len() >= 88 => {
                c.interface = Some(InterfaceCounters {
                    if_index: u32_at(d, 0),
                    if_type: u32_at(d, 4),
                    speed: u64_at(d, 8),
                    direction: u32_at(d, 16),
                    status: u32_at(d, 20),
                    in_octets: u64_at(d, 24),
                    in_unicast: u32_at(d, 32),
                    in_multicast: u32_at(d, 36),
                    in_broadcast: u32_at(d, 40),
                    in_discards: u32_at(d, 44),
                    in_errors: u32_at(d, 48),
                    in_unknown_protos: u32_at(d, 52),
                    out_octets: u64_at(d, 56),
                    out_unicast: u32_at(d, 64),
                    out_multicast: u32_at(d, 68),
                    out_broadcast: u32_at(d, 72),
                    out_discards: u32_at(d, 76),
                    out_errors: u32_at(d, 80),
                    promiscuous: u32_at(d, 84),
                })
            }
            (0, 2) if d.len() >= 52 => {
                let f = |i: usize| u32_at(d, 4 * i);
                c.ethernet = Some(EthernetCounters {
                    alignment_errors: f(0),
                    fcs_errors: f(1),
                    single_collision_frames: f(2),
                    multiple_collision_frames: f(3),
                    sqe_test_errors: f(4),
                    deferred_transmissions: f(5),
                    late_collisions: f(6),
                    excessive_collisions: f(7),
                    internal_mac_transmit_errors: f(8),
                    carrier_sense_errors: f(9),
                    frame_too_longs: f(10),
                    internal_mac_receive_errors: f(11),
                    symbol_errors: f(12),
                })
            }
            (0, 1) | (0, 2) => drop("sflow counter record truncated"),
            _ => {}
        }
    }
    Ok(c)
}
