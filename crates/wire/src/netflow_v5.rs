//! NetFlow v5: a fixed 24-byte header and up to 30 fixed 48-byte records, big-endian.
//!
//! Contract: [`V5Packet::new_checked`] is the only length check; after it succeeds every accessor
//! and [`V5Packet::decode_into`] / [`V5Packet::decode_into_with`] run without panicking and
//! without allocating (beyond the growth of the caller's [`FlowBatch`]). Times are converted from sysUptime-relative milliseconds to Unix
//! milliseconds with 32-bit wrap handling ([`uptime_to_unix_ms`]).

use std::net::{IpAddr, Ipv4Addr};

use pharos_model::flow::{FlowBatch, flags};

use crate::bytes::{u8_at, u16_at, u32_at};
use crate::error::{WireError, need};

/// Header length in bytes.
pub const HEADER_LEN: usize = 24;
/// Record length in bytes.
pub const RECORD_LEN: usize = 48;
/// Most records a datagram may carry.
pub const MAX_RECORDS: usize = 30;

/// Converts a sysUptime-relative time to Unix ms, given the export time and the uptime at export.
/// The difference is taken modulo 2^32 and read as signed, so a flow that started before the
/// 49.7-day uptime wrap (or a clock a little ahead of the header) is placed correctly.
#[inline]
pub fn uptime_to_unix_ms(export_unix_ms: u64, uptime_at_export: u32, t: u32) -> u64 {
    let back = uptime_at_export.wrapping_sub(t) as i32 as i64;
    (export_unix_ms as i64).saturating_sub(back).max(0) as u64
}

/// A NetFlow v5 export datagram, borrowed. After `new_checked` succeeds, no accessor panics.
#[derive(Debug, Clone, Copy)]
pub struct V5Packet<T: AsRef<[u8]>> {
    buf: T,
}

/// The header as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct V5Header {
    /// Number of records.
    pub count: u16,
    /// Milliseconds since the exporter booted.
    pub sys_uptime: u32,
    /// Export time, Unix seconds.
    pub unix_secs: u32,
    /// Residual nanoseconds of the export time.
    pub unix_nsecs: u32,
    /// Flows exported before this datagram (sequence counts flows).
    pub flow_sequence: u32,
    /// Type of flow-switching engine.
    pub engine_type: u8,
    /// Slot number of the flow-switching engine.
    pub engine_id: u8,
    /// Sampling mode (top 2 bits of the sampling field).
    pub sampling_mode: u8,
    /// Sampling interval (low 14 bits); 0 means unsampled.
    pub sampling_interval: u16,
}

impl V5Header {
    /// Export time in Unix milliseconds.
    pub fn export_ms(&self) -> u64 {
        self.unix_secs as u64 * 1000 + (self.unix_nsecs as u64 / 1_000_000).min(999)
    }
}

impl<T: AsRef<[u8]>> V5Packet<T> {
    /// Wraps `buf` after checking the version, the record count (<= 30) and that every record is
    /// present. Trailing bytes after the last record are ignored.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        need("v5 header", b, HEADER_LEN)?;
        let version = u16_at(b, 0);
        if version != 5 {
            return Err(WireError::UnknownVersion(version));
        }
        let count = u16_at(b, 2) as usize;
        if count > MAX_RECORDS {
            return Err(WireError::malformed(
                "v5 header",
                format!("count {count} exceeds the maximum of {MAX_RECORDS} records"),
            ));
        }
        need("v5 records", b, HEADER_LEN + RECORD_LEN * count)?;
        Ok(Self { buf })
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Number of records.
    pub fn count(&self) -> u16 {
        u16_at(self.buf.as_ref(), 2)
    }

    /// The header as plain values.
    pub fn header(&self) -> V5Header {
        let b = self.buf.as_ref();
        let sampling = u16_at(b, 22);
        V5Header {
            count: u16_at(b, 2),
            sys_uptime: u32_at(b, 4),
            unix_secs: u32_at(b, 8),
            unix_nsecs: u32_at(b, 12),
            flow_sequence: u32_at(b, 16),
            engine_type: u8_at(b, 20),
            engine_id: u8_at(b, 21),
            sampling_mode: (sampling >> 14) as u8,
            sampling_interval: sampling & 0x3fff,
        }
    }

    /// Record `i` (`i < count()`); an empty view when out of range.
    pub fn record(&self, i: usize) -> V5Record<&[u8]> {
        let b = self.buf.as_ref();
        let start = HEADER_LEN + RECORD_LEN * i;
        V5Record {
            buf: b.get(start..start + RECORD_LEN).unwrap_or(&[]),
        }
    }

    /// Appends every record to `out` as flows; returns how many. `rate` is the sampling rate to
    /// apply (the caller resolves overrides; see [`V5Header::sampling_interval`]).
    pub fn decode_into(&self, exporter: IpAddr, rate: u32, out: &mut FlowBatch) -> usize {
        self.decode_cols(exporter, rate, out, &mut Cols::default(), &mut None)
    }

    /// [`Self::decode_into`] with caller-kept scratch columns (a decoder keeps one, which saves
    /// clearing them per datagram). One pass over the records fills the fixed-size scratch
    /// columns; each batch column then grows by one copy.
    pub fn decode_into_with(
        &self,
        exporter: IpAddr,
        rate: u32,
        out: &mut FlowBatch,
        scratch: &mut V5Scratch,
    ) -> usize {
        let V5Scratch { cols, constants } = scratch;
        self.decode_cols(exporter, rate, out, cols, constants)
    }

    /// The decoder behind both entry points: `c` holds the scratch columns, `constants` the
    /// exporter, domain and rate its constant columns were last filled with.
    fn decode_cols(
        &self,
        exporter: IpAddr,
        rate: u32,
        out: &mut FlowBatch,
        c: &mut Cols,
        constants: &mut Option<([u8; 16], u32, u32)>,
    ) -> usize {
        let h = self.header();
        let export_ms = h.export_ms();
        let up = h.sys_uptime;
        let rate = rate.max(1);
        let r64 = rate as u64;
        let domain = (h.engine_type as u32) << 8 | h.engine_id as u32;
        let n = (h.count as usize).min(MAX_RECORDS);
        let b = self.buf.as_ref();
        let recs = b
            .get(HEADER_LEN..HEADER_LEN + RECORD_LEN * n)
            .unwrap_or(&[]);
        let (exp, e4) = pharos_model::flow::addr_to_bytes(&exporter);
        let base = if e4 { flags::EXPORTER_V4 } else { 0 } | flags::SRC_V4 | flags::DST_V4;
        // below 2^43 (u32 seconds * 1000 + 999): exact as i64
        let k = fill_rows(recs, c, base, r64, export_ms as i64, up);
        // The constant columns, refreshed in the scratch when they change.
        if *constants != Some((exp, domain, rate)) {
            *constants = Some((exp, domain, rate));
            c.exporter = [exp; MAX_RECORDS];
            c.domain = [domain; MAX_RECORDS];
            c.sampling_rate = [rate; MAX_RECORDS];
        }
        // Every column grows by all MAX_RECORDS scratch rows (copies of one constant size: the
        // small ones compile to a few vector moves instead of a `memcpy` call), then the batch
        // is cut back to the real row count.
        let len = out.len() + k;
        out.flags.extend_from_slice(&c.flags);
        out.exporter.extend_from_slice(&c.exporter);
        out.domain.extend_from_slice(&c.domain);
        out.in_if.extend_from_slice(&c.in_if);
        out.out_if.extend_from_slice(&c.out_if);
        out.src_addr.extend_from_slice(&c.src_addr);
        out.dst_addr.extend_from_slice(&c.dst_addr);
        out.src_port.extend_from_slice(&c.src_port);
        out.dst_port.extend_from_slice(&c.dst_port);
        out.proto.extend_from_slice(&c.proto);
        out.tcp_flags.extend_from_slice(&c.tcp_flags);
        out.tos.extend_from_slice(&c.tos);
        out.packets.extend_from_slice(&c.packets);
        out.bytes.extend_from_slice(&c.bytes);
        out.start_ms.extend_from_slice(&c.start_ms);
        out.end_ms.extend_from_slice(&c.end_ms);
        out.src_as.extend_from_slice(&c.src_as);
        out.dst_as.extend_from_slice(&c.dst_as);
        out.src_mask.extend_from_slice(&c.src_mask);
        out.dst_mask.extend_from_slice(&c.dst_mask);
        out.next_hop.extend_from_slice(&c.next_hop);
        out.vlan.extend_from_slice(&[0; MAX_RECORDS]);
        out.direction.extend_from_slice(&[0; MAX_RECORDS]);
        out.sampling_rate.extend_from_slice(&c.sampling_rate);
        out.icmp_type.extend_from_slice(&c.icmp_type);
        out.icmp_code.extend_from_slice(&c.icmp_code);
        out.end_reason.extend_from_slice(&[0; MAX_RECORDS]);
        if k < MAX_RECORDS {
            out.truncate(len);
        }
        k
    }
}

/// Writes row `i` of every scratch column from record `i`; returns the number of records. Every
/// row up to the count is written in full (the scratch is not cleared between datagrams), except
/// the first 8 bytes of the address columns, which are zero in every row from the start. `c` is
/// a parameter of its own so that the compiler knows the writes never alias the records.
fn fill_rows(recs: &[u8], c: &mut Cols, base: u8, r64: u64, export_ms: i64, up: u32) -> usize {
    let mut k = 0;
    // `take` bounds the row index by the column size: no bounds check on the writes below
    for (i, r) in recs.chunks_exact(RECORD_LEN).take(MAX_RECORDS).enumerate() {
        let Ok(r) = <&[u8; RECORD_LEN]>::try_from(r) else {
            break;
        };
        let be32 = |o: usize| u32::from_be_bytes([r[o], r[o + 1], r[o + 2], r[o + 3]]);
        let be16 = |o: usize| u16::from_be_bytes([r[o], r[o + 1]]);
        // the last 8 bytes of `::ffff:a.b.c.d` (the first 8 are zero in every scratch row)
        let mapped = |ip: u32| (0xffff_u64 << 32 | ip as u64).to_be_bytes();
        // `uptime_to_unix_ms` for an export time below 2^62 ms (it is below 2^43 here), where
        // the signed difference cannot overflow
        let unix_ms = |t: u32| (export_ms - up.wrapping_sub(t) as i32 as i64).max(0) as u64;
        let next_hop = be32(8);
        let has_next_hop = next_hop != 0;
        let proto = r[38];
        let icmp = proto == 1;
        c.flags[i] = if has_next_hop {
            base | flags::NEXT_HOP | flags::NEXT_HOP_V4
        } else {
            base
        };
        c.src_addr[i][8..].copy_from_slice(&mapped(be32(0)));
        c.dst_addr[i][8..].copy_from_slice(&mapped(be32(4)));
        c.next_hop[i][8..].copy_from_slice(&if has_next_hop {
            mapped(next_hop)
        } else {
            [0; 8]
        });
        c.in_if[i] = be16(12) as u32;
        c.out_if[i] = be16(14) as u32;
        c.packets[i] = be32(16) as u64 * r64;
        c.bytes[i] = be32(20) as u64 * r64;
        c.start_ms[i] = unix_ms(be32(24));
        c.end_ms[i] = unix_ms(be32(28));
        c.src_port[i] = be16(32);
        c.dst_port[i] = be16(34);
        c.tcp_flags[i] = r[37];
        c.proto[i] = proto;
        c.tos[i] = r[39];
        c.src_as[i] = be16(40) as u32;
        c.dst_as[i] = be16(42) as u32;
        c.src_mask[i] = r[44];
        c.dst_mask[i] = r[45];
        c.icmp_type[i] = if icmp { r[34] } else { 0 };
        c.icmp_code[i] = if icmp { r[35] } else { 0 };
        k = i + 1;
    }
    k
}

/// Scratch columns for [`V5Packet::decode_into_with`], reused across datagrams.
#[derive(Default)]
pub struct V5Scratch {
    cols: Box<Cols>,
    /// The exporter, domain and rate the constant scratch columns hold.
    constants: Option<([u8; 16], u32, u32)>,
}

impl std::fmt::Debug for V5Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("V5Scratch")
    }
}

/// The columns of one datagram that vary per record ([`MAX_RECORDS`] rows).
struct Cols {
    flags: [u8; MAX_RECORDS],
    in_if: [u32; MAX_RECORDS],
    out_if: [u32; MAX_RECORDS],
    src_addr: [[u8; 16]; MAX_RECORDS],
    dst_addr: [[u8; 16]; MAX_RECORDS],
    src_port: [u16; MAX_RECORDS],
    dst_port: [u16; MAX_RECORDS],
    proto: [u8; MAX_RECORDS],
    tcp_flags: [u8; MAX_RECORDS],
    tos: [u8; MAX_RECORDS],
    packets: [u64; MAX_RECORDS],
    bytes: [u64; MAX_RECORDS],
    start_ms: [u64; MAX_RECORDS],
    end_ms: [u64; MAX_RECORDS],
    src_as: [u32; MAX_RECORDS],
    dst_as: [u32; MAX_RECORDS],
    src_mask: [u8; MAX_RECORDS],
    dst_mask: [u8; MAX_RECORDS],
    next_hop: [[u8; 16]; MAX_RECORDS],
    icmp_type: [u8; MAX_RECORDS],
    icmp_code: [u8; MAX_RECORDS],
    exporter: [[u8; 16]; MAX_RECORDS],
    domain: [u32; MAX_RECORDS],
    sampling_rate: [u32; MAX_RECORDS],
}

impl Default for Cols {
    fn default() -> Self {
        Self {
            flags: [0; MAX_RECORDS],
            in_if: [0; MAX_RECORDS],
            out_if: [0; MAX_RECORDS],
            src_addr: [[0; 16]; MAX_RECORDS],
            dst_addr: [[0; 16]; MAX_RECORDS],
            src_port: [0; MAX_RECORDS],
            dst_port: [0; MAX_RECORDS],
            proto: [0; MAX_RECORDS],
            tcp_flags: [0; MAX_RECORDS],
            tos: [0; MAX_RECORDS],
            packets: [0; MAX_RECORDS],
            bytes: [0; MAX_RECORDS],
            start_ms: [0; MAX_RECORDS],
            end_ms: [0; MAX_RECORDS],
            src_as: [0; MAX_RECORDS],
            dst_as: [0; MAX_RECORDS],
            src_mask: [0; MAX_RECORDS],
            dst_mask: [0; MAX_RECORDS],
            next_hop: [[0; 16]; MAX_RECORDS],
            icmp_type: [0; MAX_RECORDS],
            icmp_code: [0; MAX_RECORDS],
            exporter: [[0; 16]; MAX_RECORDS],
            domain: [0; MAX_RECORDS],
            sampling_rate: [0; MAX_RECORDS],
        }
    }
}

/// One 48-byte v5 record, borrowed. Accessors read fixed offsets (0 if the view is short).
#[derive(Debug, Clone, Copy)]
pub struct V5Record<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> V5Record<T> {
    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32_at(self.buf.as_ref(), 0))
    }
    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32_at(self.buf.as_ref(), 4))
    }
    /// Next hop router.
    pub fn next_hop(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32_at(self.buf.as_ref(), 8))
    }
    /// Input ifIndex.
    pub fn input(&self) -> u16 {
        u16_at(self.buf.as_ref(), 12)
    }
    /// Output ifIndex.
    pub fn output(&self) -> u16 {
        u16_at(self.buf.as_ref(), 14)
    }
    /// Packets (unsampled count as sent).
    pub fn packets(&self) -> u32 {
        u32_at(self.buf.as_ref(), 16)
    }
    /// Layer-3 octets (as sent).
    pub fn octets(&self) -> u32 {
        u32_at(self.buf.as_ref(), 20)
    }
    /// sysUptime at the first packet, ms.
    pub fn first(&self) -> u32 {
        u32_at(self.buf.as_ref(), 24)
    }
    /// sysUptime at the last packet, ms.
    pub fn last(&self) -> u32 {
        u32_at(self.buf.as_ref(), 28)
    }
    /// Source port (or 0).
    pub fn src_port(&self) -> u16 {
        u16_at(self.buf.as_ref(), 32)
    }
    /// Destination port (or ICMP type << 8 | code).
    pub fn dst_port(&self) -> u16 {
        u16_at(self.buf.as_ref(), 34)
    }
    /// Cumulative TCP flags.
    pub fn tcp_flags(&self) -> u8 {
        u8_at(self.buf.as_ref(), 37)
    }
    /// IP protocol.
    pub fn proto(&self) -> u8 {
        u8_at(self.buf.as_ref(), 38)
    }
    /// Type of service.
    pub fn tos(&self) -> u8 {
        u8_at(self.buf.as_ref(), 39)
    }
    /// Source AS.
    pub fn src_as(&self) -> u16 {
        u16_at(self.buf.as_ref(), 40)
    }
    /// Destination AS.
    pub fn dst_as(&self) -> u16 {
        u16_at(self.buf.as_ref(), 42)
    }
    /// Source prefix length.
    pub fn src_mask(&self) -> u8 {
        u8_at(self.buf.as_ref(), 44)
    }
    /// Destination prefix length.
    pub fn dst_mask(&self) -> u8 {
        u8_at(self.buf.as_ref(), 45)
    }
}

/// One v5 record as plain values: what [`V5RecordRepr::parse`] reads from a [`V5Record`] and
/// [`emit`] writes. Tests, benchmarks and tools build datagrams with it, never by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V5RecordRepr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Next hop router (0.0.0.0: none).
    pub next_hop: Ipv4Addr,
    /// Input ifIndex.
    pub input: u16,
    /// Output ifIndex.
    pub output: u16,
    /// Packets.
    pub packets: u32,
    /// Layer-3 octets.
    pub octets: u32,
    /// sysUptime at the first packet, ms.
    pub first: u32,
    /// sysUptime at the last packet, ms.
    pub last: u32,
    /// Source port.
    pub src_port: u16,
    /// Destination port (or ICMP type << 8 | code).
    pub dst_port: u16,
    /// Cumulative TCP flags.
    pub tcp_flags: u8,
    /// IP protocol.
    pub proto: u8,
    /// Type of service.
    pub tos: u8,
    /// Source AS.
    pub src_as: u16,
    /// Destination AS.
    pub dst_as: u16,
    /// Source prefix length.
    pub src_mask: u8,
    /// Destination prefix length.
    pub dst_mask: u8,
}

impl Default for V5RecordRepr {
    fn default() -> Self {
        Self {
            src_addr: Ipv4Addr::UNSPECIFIED,
            dst_addr: Ipv4Addr::UNSPECIFIED,
            next_hop: Ipv4Addr::UNSPECIFIED,
            input: 0,
            output: 0,
            packets: 1,
            octets: 0,
            first: 0,
            last: 0,
            src_port: 0,
            dst_port: 0,
            tcp_flags: 0,
            proto: 0,
            tos: 0,
            src_as: 0,
            dst_as: 0,
            src_mask: 0,
            dst_mask: 0,
        }
    }
}

impl V5RecordRepr {
    /// The plain values of a record view.
    pub fn parse<T: AsRef<[u8]>>(r: &V5Record<T>) -> Self {
        Self {
            src_addr: r.src_addr(),
            dst_addr: r.dst_addr(),
            next_hop: r.next_hop(),
            input: r.input(),
            output: r.output(),
            packets: r.packets(),
            octets: r.octets(),
            first: r.first(),
            last: r.last(),
            src_port: r.src_port(),
            dst_port: r.dst_port(),
            tcp_flags: r.tcp_flags(),
            proto: r.proto(),
            tos: r.tos(),
            src_as: r.src_as(),
            dst_as: r.dst_as(),
            src_mask: r.src_mask(),
            dst_mask: r.dst_mask(),
        }
    }

    fn emit_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.src_addr.octets());
        out.extend_from_slice(&self.dst_addr.octets());
        out.extend_from_slice(&self.next_hop.octets());
        out.extend_from_slice(&self.input.to_be_bytes());
        out.extend_from_slice(&self.output.to_be_bytes());
        out.extend_from_slice(&self.packets.to_be_bytes());
        out.extend_from_slice(&self.octets.to_be_bytes());
        out.extend_from_slice(&self.first.to_be_bytes());
        out.extend_from_slice(&self.last.to_be_bytes());
        out.extend_from_slice(&self.src_port.to_be_bytes());
        out.extend_from_slice(&self.dst_port.to_be_bytes());
        out.extend_from_slice(&[0, self.tcp_flags, self.proto, self.tos]);
        out.extend_from_slice(&self.src_as.to_be_bytes());
        out.extend_from_slice(&self.dst_as.to_be_bytes());
        out.extend_from_slice(&[self.src_mask, self.dst_mask, 0, 0]);
    }
}

/// A v5 datagram of `header` (its `count` is taken from `records`) and `records` (at most
/// [`MAX_RECORDS`]; more are an error naming the count), as [`V5Packet::new_checked`] reads it.
pub fn emit(header: &V5Header, records: &[V5RecordRepr]) -> Result<Vec<u8>, WireError> {
    if records.len() > MAX_RECORDS {
        return Err(WireError::malformed(
            "v5 emit",
            format!(
                "{} records; a datagram carries at most {MAX_RECORDS}",
                records.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(HEADER_LEN + RECORD_LEN * records.len());
    out.extend_from_slice(&5u16.to_be_bytes());
    out.extend_from_slice(&(records.len() as u16).to_be_bytes());
    out.extend_from_slice(&header.sys_uptime.to_be_bytes());
    out.extend_from_slice(&header.unix_secs.to_be_bytes());
    out.extend_from_slice(&header.unix_nsecs.to_be_bytes());
    out.extend_from_slice(&header.flow_sequence.to_be_bytes());
    out.extend_from_slice(&[header.engine_type, header.engine_id]);
    let sampling =
        (u16::from(header.sampling_mode) & 0x3) << 14 | (header.sampling_interval & 0x3fff);
    out.extend_from_slice(&sampling.to_be_bytes());
    for r in records {
        r.emit_into(&mut out);
    }
    Ok(out)
}

#[cfg(test)]
mod repr_tests {
    use super::*;

    proptest::proptest! {
        /// emit then parse gives back the header and every record.
        #[test]
        fn emit_and_parse_are_inverse(
            uptime in proptest::num::u32::ANY,
            secs in proptest::num::u32::ANY,
            seq in proptest::num::u32::ANY,
            interval in 0u16..0x4000,
            recs in proptest::collection::vec(
                (proptest::num::u32::ANY, proptest::num::u32::ANY, proptest::num::u16::ANY,
                 proptest::num::u8::ANY, proptest::num::u32::ANY), 0..=MAX_RECORDS),
        ) {
            let header = V5Header {
                count: recs.len() as u16,
                sys_uptime: uptime,
                unix_secs: secs,
                unix_nsecs: 5_000_000,
                flow_sequence: seq,
                engine_type: 1,
                engine_id: 2,
                sampling_mode: 1,
                sampling_interval: interval,
            };
            let records: Vec<V5RecordRepr> = recs
                .iter()
                .map(|&(a, b, p, f, n)| V5RecordRepr {
                    src_addr: a.into(),
                    dst_addr: b.into(),
                    dst_port: p,
                    tcp_flags: f,
                    packets: n,
                    proto: 6,
                    ..V5RecordRepr::default()
                })
                .collect();
            let bytes = emit(&header, &records).unwrap();
            let p = V5Packet::new_checked(&bytes[..]).unwrap();
            proptest::prop_assert_eq!(p.header(), header);
            let back: Vec<V5RecordRepr> =
                (0..p.count() as usize).map(|i| V5RecordRepr::parse(&p.record(i))).collect();
            proptest::prop_assert_eq!(back, records);
        }
    }

    #[test]
    fn more_than_thirty_records_is_an_error() {
        let e = emit(&V5Header::default(), &[V5RecordRepr::default(); 31]).unwrap_err();
        assert!(e.to_string().contains("31 records"), "{e}");
    }
}

#[cfg(test)]
impl<T: AsRef<[u8]>> V5Packet<T> {
    /// The column-by-column decoder `decode_into` replaced (the reference it must agree with).
    /// Appends every record to `out` as flows; returns how many. `rate` is the sampling rate to
    /// apply (the caller resolves overrides; see [`V5Header::sampling_interval`]). Columns are
    /// filled directly from the record bytes, one tight loop per column.
    pub(crate) fn decode_into_reference(
        &self,
        exporter: IpAddr,
        rate: u32,
        out: &mut FlowBatch,
    ) -> usize {
        let h = self.header();
        let export_ms = h.export_ms();
        let rate = rate.max(1);
        let r64 = rate as u64;
        let domain = (h.engine_type as u32) << 8 | h.engine_id as u32;
        let n = (h.count as usize).min(MAX_RECORDS);
        let b = self.buf.as_ref();
        let recs = b
            .get(HEADER_LEN..HEADER_LEN + RECORD_LEN * n)
            .unwrap_or(&[]);
        let rows = || recs.chunks_exact(RECORD_LEN);
        let (exp, e4) = pharos_model::flow::addr_to_bytes(&exporter);
        let v4 = |r: &[u8], off: usize| Ipv4Addr::from(u32_at(r, off)).to_ipv6_mapped().octets();
        let base = if e4 { flags::EXPORTER_V4 } else { 0 } | flags::SRC_V4 | flags::DST_V4;
        out.flags.extend(rows().map(|r| {
            if u32_at(r, 8) != 0 {
                base | flags::NEXT_HOP | flags::NEXT_HOP_V4
            } else {
                base
            }
        }));
        out.exporter.extend(rows().map(|_| exp));
        out.domain.extend(rows().map(|_| domain));
        out.in_if.extend(rows().map(|r| u16_at(r, 12) as u32));
        out.out_if.extend(rows().map(|r| u16_at(r, 14) as u32));
        out.src_addr.extend(rows().map(|r| v4(r, 0)));
        out.dst_addr.extend(rows().map(|r| v4(r, 4)));
        out.src_port.extend(rows().map(|r| u16_at(r, 32)));
        out.dst_port.extend(rows().map(|r| u16_at(r, 34)));
        out.proto.extend(rows().map(|r| u8_at(r, 38)));
        out.tcp_flags.extend(rows().map(|r| u8_at(r, 37)));
        out.tos.extend(rows().map(|r| u8_at(r, 39)));
        out.packets
            .extend(rows().map(|r| u32_at(r, 16) as u64 * r64));
        out.bytes.extend(rows().map(|r| u32_at(r, 20) as u64 * r64));
        out.start_ms
            .extend(rows().map(|r| uptime_to_unix_ms(export_ms, h.sys_uptime, u32_at(r, 24))));
        out.end_ms
            .extend(rows().map(|r| uptime_to_unix_ms(export_ms, h.sys_uptime, u32_at(r, 28))));
        out.src_as.extend(rows().map(|r| u16_at(r, 40) as u32));
        out.dst_as.extend(rows().map(|r| u16_at(r, 42) as u32));
        out.src_mask.extend(rows().map(|r| u8_at(r, 44)));
        out.dst_mask.extend(rows().map(|r| u8_at(r, 45)));
        out.next_hop
            .extend(rows().map(|r| if u32_at(r, 8) != 0 { v4(r, 8) } else { [0; 16] }));
        out.vlan.extend(rows().map(|_| 0));
        out.direction.extend(rows().map(|_| 0));
        out.sampling_rate.extend(rows().map(|_| rate));
        out.icmp_type
            .extend(rows().map(|r| if u8_at(r, 38) == 1 { u8_at(r, 34) } else { 0 }));
        out.icmp_code
            .extend(rows().map(|r| if u8_at(r, 38) == 1 { u8_at(r, 35) } else { 0 }));
        out.end_reason.extend(rows().map(|_| 0));
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v5 datagram of `count` records from random bytes, with some ICMP records and some
    /// without a next hop.
    fn datagram(count: u16, mut b: Vec<u8>, icmp: &[bool]) -> Vec<u8> {
        b[0] = 0;
        b[1] = 5;
        b[2..4].copy_from_slice(&count.to_be_bytes());
        for (i, icmp) in icmp.iter().enumerate().take(MAX_RECORDS) {
            let r = HEADER_LEN + RECORD_LEN * i;
            if *icmp {
                b[r + 38] = 1;
            }
            if i % 3 == 0 {
                b[r + 8..r + 12].fill(0); // no next hop
            }
        }
        b
    }

    proptest::proptest! {
        #[test]
        fn decode_into_agrees_with_the_column_by_column_decoder(
            count in 0u16..=30,
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 24 + 48 * 30),
            rate in 0u32..5,
            v6 in proptest::prelude::any::<bool>(),
            icmp in proptest::collection::vec(proptest::prelude::any::<bool>(), 30),
            before in 0u16..=30,
            before_body in proptest::collection::vec(proptest::prelude::any::<u8>(), 24 + 48 * 30),
            before_rate in 0u32..5,
        ) {
            let b = datagram(count, body, &icmp);
            let p = V5Packet::new_checked(&b[..]).unwrap();
            let exporter: IpAddr = if v6 { "2001:db8::1".parse().unwrap() } else { "192.0.2.1".parse().unwrap() };
            // the scratch first decodes another datagram (other count, rate and exporter): no
            // row of it may leak into the next one
            let mut scratch = V5Scratch::default();
            let prev = datagram(before, before_body, &icmp);
            let prev = V5Packet::new_checked(&prev[..]).unwrap();
            prev.decode_into_with("198.51.100.1".parse().unwrap(), before_rate, &mut FlowBatch::new(), &mut scratch);
            let mut new = FlowBatch::new();
            let mut reused = FlowBatch::new();
            let mut old = FlowBatch::new();
            // batches that already hold a row
            for batch in [&mut new, &mut reused, &mut old] {
                batch.push(&Default::default());
            }
            proptest::prop_assert_eq!(p.decode_into(exporter, rate, &mut new), count as usize);
            proptest::prop_assert_eq!(p.decode_into_with(exporter, rate, &mut reused, &mut scratch), count as usize);
            proptest::prop_assert_eq!(p.decode_into_reference(exporter, rate, &mut old), count as usize);
            proptest::prop_assert_eq!(&new, &old);
            proptest::prop_assert_eq!(&reused, &old);
        }
    }

    #[test]
    fn uptime_differences_wrap_at_32_bits() {
        let export = 1_700_000_000_000;
        assert_eq!(uptime_to_unix_ms(export, 10_000, 4_000), export - 6_000);
        assert_eq!(
            uptime_to_unix_ms(export, 500, u32::MAX - 499),
            export - 1_000
        );
        assert_eq!(
            uptime_to_unix_ms(export, 1_000, 1_500),
            export + 500,
            "a clock slightly ahead"
        );
    }

    #[test]
    fn count_above_30_or_missing_records_are_refused() {
        let mut b = [0u8; 24 + 48];
        b[1] = 5;
        b[3] = 2;
        assert_eq!(
            V5Packet::new_checked(&b[..]).unwrap_err(),
            WireError::Truncated {
                what: "v5 records",
                need: 24 + 96,
                have: 72
            }
        );
        b[3] = 31;
        assert!(matches!(
            V5Packet::new_checked(&b[..]),
            Err(WireError::Malformed { .. })
        ));
    }
}
