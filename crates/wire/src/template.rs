//! Templates shared by NetFlow v9 and IPFIX: field specifiers, the compiled offset plan that
//! decodes a data record with fixed offsets, and the per-record accumulator that turns field
//! values into a [`FlowRecord`].
//!
//! Contract: a compiled plan is built once per template; decoding a record never allocates, never
//! panics, and reads every field by the template's length (reduced-size integers, 4- or 16-byte
//! addresses; fields of an unexpected width are skipped). Enterprise-specific and unmapped
//! elements are walked over (so variable-length records stay aligned) and counted, never dropped
//! silently.

use std::net::IpAddr;

use pharos_model::flow::FlowRecord;

use crate::bytes::{ip_from, uint};
use crate::netflow_v5::uptime_to_unix_ms;
use crate::packet::{PacketSummary, parse_ethernet, parse_ip};

/// IPFIX variable-length marker in a template's field length.
pub const VARIABLE_LENGTH: u16 = 0xffff;

/// One field specifier of a template, as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    /// Information element id (enterprise bit cleared).
    pub id: u16,
    /// Length in bytes; [`VARIABLE_LENGTH`] for IPFIX variable-length fields.
    pub len: u16,
    /// Private enterprise number; 0 for IETF elements.
    pub enterprise: u32,
}

/// Where a field's value goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Skip,
    Bytes,
    BytesAlt,
    Packets,
    PacketsAlt,
    Proto,
    Tos,
    TcpFlags,
    SrcPort,
    DstPort,
    SrcAddr,
    DstAddr,
    SrcMask,
    DstMask,
    InIf,
    OutIf,
    NextHop,
    BgpNextHop,
    SrcAs,
    DstAs,
    LastUp,
    FirstUp,
    IcmpTypeCode,
    IcmpType,
    IcmpCode,
    Vlan,
    VlanAlt,
    Direction,
    SamplingInterval,
    SamplerId,
    /// An element read and understood that has no column and states no rate:
    /// `samplingAlgorithm` / `samplerMode` (35 / 49: deterministic or random, the interval is
    /// the rate either way), `samplingTimeInterval` / `samplingTimeSpace` (307 / 308:
    /// time-based selection), `samplerName` / `selectorName` (84 / 335). Not counted as
    /// unmapped.
    Understood,
    SelectorAlgorithm,
    EndReason,
    StartSec,
    EndSec,
    StartMs,
    EndMs,
    StartNtp,
    EndNtp,
    StartDeltaUs,
    EndDeltaUs,
    SysInitMs,
    DurationMs,
    PacketInterval,
    PacketSpace,
    SamplingSize,
    SamplingPopulation,
    SamplingProbability,
    DataLinkFrameSize,
    DataLinkSection,
    IpHeaderSection,
}

/// Maps an IETF element id (shared numbering v9/IPFIX) to its target.
pub(crate) fn target_of(id: u16) -> Target {
    use Target::*;
    match id {
        1 => Bytes,
        2 => Packets,
        4 => Proto,
        5 => Tos,
        6 => TcpFlags,
        7 => SrcPort,
        8 | 27 => SrcAddr,
        9 | 29 => SrcMask,
        10 => InIf,
        11 => DstPort,
        12 | 28 => DstAddr,
        13 | 30 => DstMask,
        14 => OutIf,
        15 | 62 => NextHop,
        16 => SrcAs,
        17 => DstAs,
        18 | 63 => BgpNextHop,
        21 => LastUp,
        22 => FirstUp,
        23 | 85 => BytesAlt,
        24 | 86 => PacketsAlt,
        32 | 139 => IcmpTypeCode,
        176 | 178 => IcmpType,
        177 | 179 => IcmpCode,
        34 | 50 => SamplingInterval,
        35 | 49 | 84 | 307 | 308 | 335 => Understood,
        48 | 302 => SamplerId,
        304 => SelectorAlgorithm,
        58 | 243 => Vlan,
        59 | 254 => VlanAlt,
        61 => Direction,
        136 => EndReason,
        150 => StartSec,
        151 => EndSec,
        152 => StartMs,
        153 => EndMs,
        154 | 156 => StartNtp,
        155 | 157 => EndNtp,
        158 => StartDeltaUs,
        159 => EndDeltaUs,
        160 => SysInitMs,
        161 => DurationMs,
        305 => PacketInterval,
        306 => PacketSpace,
        309 => SamplingSize,
        310 => SamplingPopulation,
        311 => SamplingProbability,
        312 => DataLinkFrameSize,
        313 => IpHeaderSection,
        315 => DataLinkSection,
        _ => Skip,
    }
}

/// One step of a plan: read `len` bytes at `off` into `target`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Op {
    off: u16,
    len: u16,
    target: Target,
}

/// A template compiled for decoding.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Fixed templates: only the mapped fields, with offsets. Variable: every field in order.
    ops: Box<[Op]>,
    /// Whether every field has a fixed length.
    fixed: bool,
    /// Fixed: the record length. Variable: the smallest possible record length.
    pub(crate) min_len: usize,
    /// Enterprise-specific fields per record.
    pub(crate) enterprise_fields: u32,
    /// IETF fields per record that Pharos does not map.
    pub(crate) unmapped_fields: u32,
    /// Whether a record carries sampling information or a system init time (options data).
    pub(crate) carries_options_info: bool,
}

impl Plan {
    /// Compiles `fields`; the first `skip_scope` fields are walked but not mapped (NetFlow v9
    /// scope fields use their own numbering). Returns `None` when a record would be empty or
    /// longer than 65535 bytes.
    pub(crate) fn compile(fields: &[FieldSpec], skip_scope: usize) -> Option<Plan> {
        let fixed = fields.iter().all(|f| f.len != VARIABLE_LENGTH);
        let mut ops = Vec::with_capacity(fields.len());
        let mut off = 0usize;
        let mut enterprise_fields = 0;
        let mut unmapped_fields = 0;
        let mut carries = false;
        for (i, f) in fields.iter().enumerate() {
            let target = if f.enterprise != 0 {
                enterprise_fields += 1;
                Target::Skip
            } else if i < skip_scope {
                Target::Skip
            } else {
                let t = target_of(f.id);
                if t == Target::Skip {
                    unmapped_fields += 1;
                }
                t
            };
            if matches!(
                target,
                Target::SamplingInterval
                    | Target::SelectorAlgorithm
                    | Target::PacketInterval
                    | Target::SamplingSize
                    | Target::SamplingPopulation
                    | Target::SamplingProbability
                    | Target::SysInitMs
            ) {
                carries = true;
            }
            if fixed {
                if !matches!(target, Target::Skip | Target::Understood) && f.len > 0 {
                    ops.push(Op {
                        off: off as u16,
                        len: f.len,
                        target,
                    });
                }
                off += f.len as usize;
            } else {
                ops.push(Op {
                    off: 0,
                    len: f.len,
                    target,
                });
                off += if f.len == VARIABLE_LENGTH {
                    1
                } else {
                    f.len as usize
                };
            }
            if off > u16::MAX as usize {
                return None;
            }
        }
        if off == 0 {
            return None;
        }
        Some(Plan {
            ops: ops.into_boxed_slice(),
            fixed,
            min_len: off,
            enterprise_fields,
            unmapped_fields,
            carries_options_info: carries,
        })
    }

    /// Reads one record from the front of `data` into `acc`; returns the bytes consumed, or
    /// `None` when `data` is too short for the record (padding or truncation).
    #[inline]
    pub(crate) fn read(&self, data: &[u8], acc: &mut Acc) -> Option<usize> {
        if data.len() < self.min_len {
            return None;
        }
        if self.fixed {
            for op in self.ops.iter() {
                let a = op.off as usize;
                if let Some(v) = data.get(a..a + op.len as usize) {
                    acc.apply(op.target, v);
                }
            }
            Some(self.min_len)
        } else {
            let mut pos = 0usize;
            for op in self.ops.iter() {
                let len = if op.len == VARIABLE_LENGTH {
                    let first = *data.get(pos)? as usize;
                    pos += 1;
                    if first == 255 {
                        let hi = *data.get(pos)? as usize;
                        let lo = *data.get(pos + 1)? as usize;
                        pos += 2;
                        hi << 8 | lo
                    } else {
                        first
                    }
                } else {
                    op.len as usize
                };
                let v = data.get(pos..pos.checked_add(len)?)?;
                if op.target != Target::Skip {
                    acc.apply(op.target, v);
                }
                pos += len;
            }
            Some(pos)
        }
    }
}

/// Converts an NTP 64-bit timestamp (seconds since 1900 + 2^-32 fraction) to Unix ms.
#[inline]
pub fn ntp_to_unix_ms(v: u64) -> u64 {
    let secs = v >> 32;
    let frac = v & 0xffff_ffff;
    secs.saturating_sub(2_208_988_800) * 1000 + ((frac * 1000) >> 32)
}

/// Field values of one data record, before they become a flow.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Acc {
    pub bytes: Option<u64>,
    pub bytes_alt: u64,
    pub packets: Option<u64>,
    pub packets_alt: u64,
    pub proto: u8,
    pub tos: u8,
    pub tcp_flags: u8,
    pub src_port: u16,
    pub dst_port: u16,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub src_mask: u8,
    pub dst_mask: u8,
    pub in_if: u32,
    pub out_if: u32,
    pub next_hop: Option<IpAddr>,
    pub bgp_next_hop: Option<IpAddr>,
    pub src_as: u32,
    pub dst_as: u32,
    pub first_up: Option<u32>,
    pub last_up: Option<u32>,
    pub icmp_type_code: Option<u16>,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    pub vlan: Option<u16>,
    pub vlan_alt: Option<u16>,
    pub direction: Option<u8>,
    pub sampling_interval: Option<u32>,
    pub sampler_id: Option<u64>,
    /// PSAMP selectorAlgorithm (304, RFC 5477 / IANA "PSAMP Selector Algorithm"): says which of
    /// the parameter families below is the selector's.
    pub selector_algorithm: Option<u16>,
    pub end_reason: Option<u8>,
    pub start_ms: Option<u64>,
    pub end_ms: Option<u64>,
    pub start_delta_us: Option<u64>,
    pub end_delta_us: Option<u64>,
    pub sys_init_ms: Option<u64>,
    pub duration_ms: Option<u64>,
    pub packet_interval: Option<u64>,
    pub packet_space: Option<u64>,
    pub sampling_size: Option<u64>,
    pub sampling_population: Option<u64>,
    pub sampling_probability: Option<f64>,
    pub frame_size: Option<u64>,
    /// What a dataLinkFrameSection (315) or ipHeaderPacketSection (313) says about the packet.
    pub section: Option<PacketSummary>,
}

#[inline(always)]
fn set_addr(slot: &mut Option<IpAddr>, v: &[u8]) {
    if let Some(a) = ip_from(v)
        && (slot.is_none() || !a.is_unspecified())
    {
        *slot = Some(a);
    }
}

impl Acc {
    #[inline(always)]
    fn apply(&mut self, t: Target, v: &[u8]) {
        use Target::*;
        match t {
            Skip => {}
            Bytes => self.bytes = Some(uint(v)),
            BytesAlt => self.bytes_alt = uint(v),
            Packets => self.packets = Some(uint(v)),
            PacketsAlt => self.packets_alt = uint(v),
            Proto => self.proto = uint(v) as u8,
            Tos => self.tos = uint(v) as u8,
            TcpFlags => self.tcp_flags = uint(v) as u8,
            SrcPort => self.src_port = uint(v) as u16,
            DstPort => self.dst_port = uint(v) as u16,
            SrcAddr => set_addr(&mut self.src, v),
            DstAddr => set_addr(&mut self.dst, v),
            SrcMask => self.src_mask = self.src_mask.max(uint(v) as u8),
            DstMask => self.dst_mask = self.dst_mask.max(uint(v) as u8),
            InIf => self.in_if = uint(v) as u32,
            OutIf => self.out_if = uint(v) as u32,
            NextHop => set_addr(&mut self.next_hop, v),
            BgpNextHop => set_addr(&mut self.bgp_next_hop, v),
            SrcAs => self.src_as = uint(v) as u32,
            DstAs => self.dst_as = uint(v) as u32,
            LastUp => self.last_up = Some(uint(v) as u32),
            FirstUp => self.first_up = Some(uint(v) as u32),
            IcmpTypeCode => self.icmp_type_code = Some(uint(v) as u16),
            IcmpType => self.icmp_type = Some(uint(v) as u8),
            IcmpCode => self.icmp_code = Some(uint(v) as u8),
            Vlan => self.vlan = Some(uint(v) as u16 & 0x0fff),
            VlanAlt => self.vlan_alt = Some(uint(v) as u16 & 0x0fff),
            Direction => self.direction = Some(uint(v) as u8),
            SamplingInterval => {
                let r = uint(v) as u32;
                if r > 0 {
                    self.sampling_interval = Some(r);
                }
            }
            SamplerId => self.sampler_id = Some(uint(v)),
            Understood => {}
            SelectorAlgorithm => self.selector_algorithm = Some(uint(v) as u16),
            EndReason => self.end_reason = Some(uint(v) as u8),
            StartSec => self.start_ms = Some(uint(v).saturating_mul(1000)),
            EndSec => self.end_ms = Some(uint(v).saturating_mul(1000)),
            StartMs => self.start_ms = Some(uint(v)),
            EndMs => self.end_ms = Some(uint(v)),
            StartNtp => self.start_ms = Some(ntp_to_unix_ms(uint(v))),
            EndNtp => self.end_ms = Some(ntp_to_unix_ms(uint(v))),
            StartDeltaUs => self.start_delta_us = Some(uint(v)),
            EndDeltaUs => self.end_delta_us = Some(uint(v)),
            SysInitMs => self.sys_init_ms = Some(uint(v)),
            DurationMs => self.duration_ms = Some(uint(v)),
            PacketInterval => self.packet_interval = Some(uint(v)),
            PacketSpace => self.packet_space = Some(uint(v)),
            SamplingSize => self.sampling_size = Some(uint(v)),
            SamplingPopulation => self.sampling_population = Some(uint(v)),
            DataLinkFrameSize => self.frame_size = Some(uint(v)),
            DataLinkSection => {
                let mut p = PacketSummary::default();
                parse_ethernet(v, &mut p);
                self.section = Some(p);
            }
            IpHeaderSection => {
                let mut p = PacketSummary::default();
                parse_ip(v, &mut p);
                self.section = Some(p);
            }
            SamplingProbability => {
                self.sampling_probability = match v.len() {
                    8 => Some(f64::from_bits(uint(v))),
                    4 => Some(f32::from_bits(uint(v) as u32) as f64),
                    _ => None,
                }
            }
        }
    }

    /// The sampling rate (1 in N packets) this record states, from any of the sampling element
    /// families, if any:
    ///
    /// - `samplingInterval` (34) / `samplerRandomInterval` (50), NetFlow v9 and legacy IPFIX:
    ///   the interval is N.
    /// - PSAMP (RFC 5476 §6.5.2, RFC 5477, RFC 7014): `selectorAlgorithm` (304) says which
    ///   parameters describe the selector: 1 systematic count-based, N = (`samplingPacketInterval`
    ///   305 + `samplingPacketSpace` 306) / interval; 3 random n-out-of-N, N =
    ///   `samplingPopulation` 310 / `samplingSize` 309; 4 uniform probabilistic, N = 1 /
    ///   `samplingProbability` 311. Each rounded to the nearest integer. Algorithm 2
    ///   (time-based) and the filtering algorithms (5 and up) select no fixed share of packets:
    ///   no rate. Without an algorithm (or with one not in the registry), the first complete
    ///   family in the order n-out-of-N, probability, interval and space.
    ///
    /// An IOS XR selector says algorithm 3 with `samplingPacketInterval` 1 next to size 1 and
    /// population 256: the algorithm is what makes that 256, not 1. Degenerate values (a zero
    /// interval or size, a population below the size, a probability outside (0, 1] or NaN)
    /// state nothing.
    pub(crate) fn stated_rate(&self) -> Option<u32> {
        if let Some(r) = self.sampling_interval {
            return Some(r);
        }
        let ratio = |num: u64, den: u64| {
            let n = num.saturating_add(den / 2) / den;
            n.clamp(1, u32::MAX as u64) as u32
        };
        let count = || match (self.packet_interval, self.packet_space) {
            (Some(i), Some(s)) if i > 0 => Some(ratio(i.saturating_add(s), i)),
            _ => None,
        };
        let n_of_n = || match (self.sampling_size, self.sampling_population) {
            (Some(n), Some(pop)) if n > 0 && pop >= n => Some(ratio(pop, n)),
            _ => None,
        };
        let probability = || match self.sampling_probability {
            Some(p) if p > 0.0 && p <= 1.0 => {
                Some((1.0 / p).round().clamp(1.0, u32::MAX as f64) as u32)
            }
            _ => None,
        };
        match self.selector_algorithm {
            Some(1) => count(),
            Some(3) => n_of_n(),
            Some(4) => probability(),
            Some(2) | Some(5..=9) => None,
            _ => n_of_n().or_else(probability).or_else(count),
        }
    }

    /// Builds the flow. `uptime` is the v9 header's sysUptime (None for IPFIX); `sys_init_ms`
    /// the exporter's system init time (IPFIX IE 160) when known.
    #[inline]
    pub(crate) fn finish(
        &self,
        exporter: IpAddr,
        domain: u32,
        export_ms: u64,
        uptime: Option<u32>,
        sys_init_ms: Option<u64>,
        rate: u32,
    ) -> FlowRecord {
        let rate = rate.max(1);
        let up = |t: u32| match (uptime, self.sys_init_ms.or(sys_init_ms)) {
            (Some(u), _) => Some(uptime_to_unix_ms(export_ms, u, t)),
            (None, Some(init)) => Some(init.saturating_add(t as u64)),
            (None, None) => None,
        };
        let mut start = self
            .start_ms
            .or_else(|| {
                self.start_delta_us
                    .map(|d| export_ms.saturating_sub(d / 1000))
            })
            .or_else(|| self.first_up.and_then(up));
        let mut end = self
            .end_ms
            .or_else(|| {
                self.end_delta_us
                    .map(|d| export_ms.saturating_sub(d / 1000))
            })
            .or_else(|| self.last_up.and_then(up));
        if let Some(d) = self.duration_ms {
            match (start, end) {
                (Some(s), None) => end = Some(s.saturating_add(d)),
                (None, Some(e)) => start = Some(e.saturating_sub(d)),
                _ => {}
            }
        }
        let end_ms = end.or(start).unwrap_or(export_ms);
        let start_ms = start.unwrap_or(end_ms);
        let mut packets = self.packets.unwrap_or(self.packets_alt);
        let mut bytes = self.bytes.unwrap_or(self.bytes_alt);
        if self.packets.is_none() && self.bytes.is_none() && packets == 0 && bytes == 0 {
            // A sampled packet (dataLinkFrameSection / ipHeaderPacketSection): one packet of
            // dataLinkFrameSize bytes (or the IP length from the header).
            if let Some(fs) = self.frame_size {
                packets = 1;
                bytes = fs;
            } else if let Some(p) = &self.section {
                packets = 1;
                bytes = p.ip_len as u64;
            }
        }
        let (icmp_type, icmp_code) = match (self.icmp_type, self.icmp_code, self.icmp_type_code) {
            (Some(t), c, _) => (t, c.unwrap_or(0)),
            (None, Some(c), _) => (0, c),
            (None, None, Some(tc)) => ((tc >> 8) as u8, tc as u8),
            // Many exporters put ICMP type << 8 | code in the destination port.
            _ if matches!(self.proto, 1 | 58) => ((self.dst_port >> 8) as u8, self.dst_port as u8),
            _ => (0, 0),
        };
        let zero = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
        let mut r = FlowRecord {
            exporter,
            domain,
            in_if: self.in_if,
            out_if: self.out_if,
            src_addr: self.src.unwrap_or(zero),
            dst_addr: self.dst.unwrap_or(zero),
            src_port: self.src_port,
            dst_port: self.dst_port,
            proto: self.proto,
            tcp_flags: self.tcp_flags,
            tos: self.tos,
            packets: packets.saturating_mul(rate as u64),
            bytes: bytes.saturating_mul(rate as u64),
            start_ms,
            end_ms,
            src_as: self.src_as,
            dst_as: self.dst_as,
            src_mask: self.src_mask,
            dst_mask: self.dst_mask,
            next_hop: self.next_hop.or(self.bgp_next_hop),
            vlan: self.vlan.or(self.vlan_alt),
            direction: self.direction,
            sampling_rate: rate,
            icmp_type,
            icmp_code,
            end_reason: self.end_reason,
        };
        if let Some(p) = &self.section {
            // Fields the record states explicitly win over the sampled header.
            if self.src.is_none() {
                p.apply_to(&mut r);
            }
            if r.vlan.is_none() {
                r.vlan = p.vlan;
            }
        }
        r
    }
}

/// One Set (IPFIX) / FlowSet (NetFlow v9): its id and its body (without the 4-byte header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Set<'a> {
    /// Set id: template, options template, or (>= 256) the template id of a data set.
    pub id: u16,
    /// Body bytes, padding included.
    pub body: &'a [u8],
}

/// Walks Sets by their `length` field (never by the header's count). Yields an error and stops
/// when a length is below 4 or runs past the message; a tail of fewer than 4 zero bytes is
/// accepted as padding.
#[derive(Debug, Clone)]
pub struct Sets<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Sets<'a> {
    /// Sets in `buf` (the message after its header); `what` names them in errors.
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { rest: buf, what }
    }
}

impl<'a> Iterator for Sets<'a> {
    type Item = Result<Set<'a>, WireError>;
    fn next(&mut self) -> Option<Self::Item> {
        let b = self.rest;
        if b.is_empty() || (b.len() < 4 && b.iter().all(|&x| x == 0)) {
            return None;
        }
        self.rest = &[];
        if b.len() < 4 {
            return Some(Err(WireError::Truncated {
                what: self.what,
                need: 4,
                have: b.len(),
            }));
        }
        let id = u16_at(b, 0);
        let len = u16_at(b, 2) as usize;
        if len < 4 {
            if id == 0 && len == 0 && b.iter().all(|&x| x == 0) {
                return None; // zero padding up to the end of the datagram
            }
            return Some(Err(WireError::malformed(
                self.what,
                format!("set {id} length {len} < 4"),
            )));
        }
        if len > b.len() {
            return Some(Err(WireError::Truncated {
                what: self.what,
                need: len,
                have: b.len(),
            }));
        }
        self.rest = &b[len..];
        Some(Ok(Set {
            id,
            body: &b[4..len],
        }))
    }
}

/// What a template set says, one record at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateEvent<'s> {
    /// A (re)definition: `scope` is the number of leading scope fields (options templates).
    Define {
        /// Template id (>= 256).
        id: u16,
        /// Leading scope fields (0 for data templates).
        scope: u16,
        /// Whether it came in an options template set.
        options: bool,
        /// Field specifiers in record order.
        fields: &'s [FieldSpec],
    },
    /// Withdrawal of one template (IPFIX field count 0).
    Withdraw {
        /// Template id.
        id: u16,
    },
    /// Withdrawal of every data (`options == false`) or options template of the domain.
    WithdrawAll {
        /// Which kind.
        options: bool,
    },
    /// A template refused because it has more fields than allowed.
    TooManyFields {
        /// Template id.
        id: u16,
    },
}

use crate::bytes::{u16_at, u32_at};
use crate::error::WireError;

/// One template record's header, as the v9 and IPFIX loops read it.
struct Head {
    id: u16,
    /// Field count.
    n: usize,
    /// Scope field count (options templates; 0 otherwise).
    scope: usize,
    options: bool,
    /// IPFIX field specifiers (which may carry an enterprise number).
    ipfix: bool,
}

/// Reads the field specifiers of the template `head` at `pos` and reports it to `f`, or that it
/// has more than `max_fields` fields (they are skipped, not kept); returns the position after them.
fn define(
    body: &[u8],
    pos: usize,
    head: Head,
    max_fields: usize,
    scratch: &mut Vec<FieldSpec>,
    what: &'static str,
    f: &mut impl FnMut(TemplateEvent<'_>),
) -> Result<usize, WireError> {
    let keep = head.n <= max_fields;
    let pos = read_fields(body, pos, head.n, head.ipfix, keep, scratch, what)?;
    if keep {
        f(TemplateEvent::Define {
            id: head.id,
            scope: head.scope as u16,
            options: head.options,
            fields: scratch,
        });
    } else {
        f(TemplateEvent::TooManyFields { id: head.id });
    }
    Ok(pos)
}

/// Reads `n` field specifiers at `pos` (IPFIX: with enterprise numbers) into `scratch`; returns
/// the new position.
fn read_fields(
    b: &[u8],
    mut pos: usize,
    n: usize,
    ipfix: bool,
    keep: bool,
    scratch: &mut Vec<FieldSpec>,
    what: &'static str,
) -> Result<usize, WireError> {
    scratch.clear();
    for _ in 0..n {
        if pos + 4 > b.len() {
            return Err(WireError::Truncated {
                what,
                need: pos + 4,
                have: b.len(),
            });
        }
        let raw = u16_at(b, pos);
        let len = u16_at(b, pos + 2);
        pos += 4;
        let mut enterprise = 0;
        if ipfix && raw & 0x8000 != 0 {
            if pos + 4 > b.len() {
                return Err(WireError::Truncated {
                    what,
                    need: pos + 4,
                    have: b.len(),
                });
            }
            enterprise = u32_at(b, pos);
            pos += 4;
        }
        if !ipfix && len == VARIABLE_LENGTH {
            return Err(WireError::malformed(
                what,
                "variable-length field in a NetFlow v9 template",
            ));
        }
        if keep {
            scratch.push(FieldSpec {
                id: if ipfix { raw & 0x7fff } else { raw },
                len,
                enterprise,
            });
        }
    }
    Ok(pos)
}

/// Parses the body of a NetFlow v9 template (`options == false`, FlowSet id 0) or options
/// template (FlowSet id 1) FlowSet, calling `f` per record. Templates with more than
/// `max_fields` fields are reported as [`TemplateEvent::TooManyFields`] and skipped.
pub fn v9_templates(
    body: &[u8],
    options: bool,
    max_fields: usize,
    scratch: &mut Vec<FieldSpec>,
    mut f: impl FnMut(TemplateEvent<'_>),
) -> Result<(), WireError> {
    let what = if options {
        "v9 options template"
    } else {
        "v9 template"
    };
    let mut pos = 0;
    let hdr = if options { 6 } else { 4 };
    while body.len() - pos >= hdr {
        let id = u16_at(body, pos);
        if id == 0 {
            break; // padding
        }
        if id < 256 {
            return Err(WireError::malformed(
                what,
                format!("template id {id} < 256"),
            ));
        }
        let (n, scope) = if options {
            let scope_len = u16_at(body, pos + 2) as usize;
            let opt_len = u16_at(body, pos + 4) as usize;
            if !scope_len.is_multiple_of(4) || !opt_len.is_multiple_of(4) {
                return Err(WireError::malformed(
                    what,
                    format!(
                        "template {id}: scope length {scope_len} / option length {opt_len} not multiples of 4"
                    ),
                ));
            }
            ((scope_len + opt_len) / 4, scope_len / 4)
        } else {
            (u16_at(body, pos + 2) as usize, 0)
        };
        pos += hdr;
        let head = Head {
            id,
            n,
            scope,
            options,
            ipfix: false,
        };
        pos = define(body, pos, head, max_fields, scratch, what, &mut f)?;
    }
    Ok(())
}

/// Parses the body of an IPFIX template (Set id 2) or options template (Set id 3) set, calling
/// `f` per record, including withdrawals (field count 0).
pub fn ipfix_templates(
    body: &[u8],
    options: bool,
    max_fields: usize,
    scratch: &mut Vec<FieldSpec>,
    mut f: impl FnMut(TemplateEvent<'_>),
) -> Result<(), WireError> {
    let what = if options {
        "ipfix options template"
    } else {
        "ipfix template"
    };
    let mut pos = 0;
    while body.len() - pos >= 4 {
        let id = u16_at(body, pos);
        let n = u16_at(body, pos + 2) as usize;
        if n == 0 {
            pos += 4;
            match id {
                0 => break, // padding
                2 => f(TemplateEvent::WithdrawAll { options: false }),
                3 => f(TemplateEvent::WithdrawAll { options: true }),
                id if id >= 256 => f(TemplateEvent::Withdraw { id }),
                id => {
                    return Err(WireError::malformed(
                        what,
                        format!("withdrawal of template id {id}"),
                    ));
                }
            }
            continue;
        }
        if id < 256 {
            return Err(WireError::malformed(
                what,
                format!("template id {id} < 256"),
            ));
        }
        pos += 4;
        let mut scope = 0;
        if options {
            if body.len() - pos < 2 {
                return Err(WireError::Truncated {
                    what,
                    need: pos + 2,
                    have: body.len(),
                });
            }
            scope = u16_at(body, pos) as usize;
            pos += 2;
            if scope == 0 || scope > n {
                return Err(WireError::malformed(
                    what,
                    format!("template {id}: scope field count {scope} not in 1..={n}"),
                ));
            }
        }
        let head = Head {
            id,
            n,
            scope,
            options,
            ipfix: true,
        };
        pos = define(body, pos, head, max_fields, scratch, what, &mut f)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduced_size_integers_and_ntp_times_decode() {
        assert_eq!(uint(&[1, 2, 3]), 0x010203);
        assert_eq!(uint(&[0xff; 9]), u64::MAX);
        assert_eq!(uint(&[]), 0);
        // 2023-11-14T22:13:20.500Z
        let ntp = ((1_700_000_000u64 + 2_208_988_800) << 32) | (1u64 << 31);
        assert_eq!(ntp_to_unix_ms(ntp), 1_700_000_000_500);
    }

    #[test]
    fn plans_refuse_empty_records_and_read_fixed_offsets() {
        assert!(
            Plan::compile(
                &[FieldSpec {
                    id: 8,
                    len: 0,
                    enterprise: 0
                }],
                0
            )
            .is_none()
        );
        let f = [
            FieldSpec {
                id: 7,
                len: 2,
                enterprise: 0,
            },
            FieldSpec {
                id: 11,
                len: 2,
                enterprise: 0,
            },
        ];
        let plan = Plan::compile(&f, 0).unwrap();
        let mut acc = Acc::default();
        assert_eq!(plan.read(&[0, 80, 1, 187, 9], &mut acc), Some(4));
        assert_eq!((acc.src_port, acc.dst_port), (80, 443));
        assert_eq!(
            plan.read(&[0, 80, 1], &mut acc),
            None,
            "a short tail is padding"
        );
    }

    #[test]
    fn v9_scope_fields_are_not_read_as_flow_fields() {
        // Scope type 1 (System) shares its number with IN_BYTES.
        let f = [
            FieldSpec {
                id: 1,
                len: 4,
                enterprise: 0,
            },
            FieldSpec {
                id: 34,
                len: 4,
                enterprise: 0,
            },
        ];
        let plan = Plan::compile(&f, 1).unwrap();
        let mut acc = Acc::default();
        plan.read(&[0, 0, 0, 9, 0, 0, 0, 100], &mut acc);
        assert_eq!((acc.bytes, acc.stated_rate()), (None, Some(100)));
    }
}
