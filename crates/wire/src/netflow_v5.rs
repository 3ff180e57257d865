//! NetFlow v5: a fixed 24-byte header and up to 30 fixed 48-byte records, big-endian.
//!
//! Contract: [`V5Packet::new_checked`] is the only length check; after it succeeds every accessor
//! and [`V5Packet::decode_into`] run without panicking and without allocating (beyond the growth
//! of the caller's [`FlowBatch`]). Times are converted from sysUptime-relative milliseconds to Unix
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
    /// apply (the caller resolves overrides; see [`V5Header::sampling_interval`]). Columns are
    /// filled directly from the record bytes, one tight loop per column.
    pub fn decode_into(&self, exporter: IpAddr, rate: u32, out: &mut FlowBatch) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;

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
