//! Which partition (subject `pharos.flows.<p>`) a flow goes to: a hash of its destination
//! prefix, so that every flow towards one victim (one /24, one /48 by default) reaches the one
//! analyser that owns the partition.
//!
//! Contract: the mapping is FNV-1a 64 over the destination address masked to its prefix (the 4
//! bytes of an IPv4 address, the 16 of an IPv6 one), modulo the number of partitions. It depends
//! on nothing else, so it is the same on every machine, in every release (a unit test pins
//! values), and collectors of different versions agree while they share a stream.

use std::net::IpAddr;

use pharos_model::flow::{FlowBatch, flags};

use crate::config::ClusterConfig;

/// What every flow subject starts with; the partition number follows.
pub const SUBJECT_PREFIX: &str = "pharos.flows.";

/// The subject of partition `p`: `pharos.flows.<p>`.
pub fn subject(p: u16) -> String {
    format!("{SUBJECT_PREFIX}{p}")
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `bytes`.
#[inline]
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// Keeps the first `bits` bits of `a`, zeroing the rest.
#[inline]
fn mask<const N: usize>(mut a: [u8; N], bits: u8) -> [u8; N] {
    let bits = usize::from(bits).min(N * 8);
    for (i, b) in a.iter_mut().enumerate() {
        let keep = bits.saturating_sub(i * 8).min(8);
        *b &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
    }
    a
}

/// Maps destination addresses to partitions (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partitioner {
    partitions: u16,
    prefix_v4: u8,
    prefix_v6: u8,
}

impl Partitioner {
    /// `partitions` subjects (0 is taken as 1), destinations grouped by their first `prefix_v4`
    /// (at most 32) or `prefix_v6` (at most 128) bits.
    pub fn new(partitions: u16, prefix_v4: u8, prefix_v6: u8) -> Self {
        Self {
            partitions: partitions.max(1),
            prefix_v4: prefix_v4.min(32),
            prefix_v6: prefix_v6.min(128),
        }
    }

    /// The partitioner of `[cluster]` (`partitions`, `prefix_v4`, `prefix_v6`).
    pub fn from_config(cfg: &ClusterConfig) -> Self {
        Self::new(cfg.partitions, cfg.prefix_v4, cfg.prefix_v6)
    }

    /// Number of partitions.
    pub fn partitions(&self) -> u16 {
        self.partitions
    }

    /// The partition of a destination stored as in [`FlowBatch::dst_addr`]: 16 bytes, IPv4-mapped
    /// when `v4` (then only the last 4 bytes count).
    #[inline]
    pub fn of(&self, dst: &[u8; 16], v4: bool) -> u16 {
        let h = if v4 {
            let a = [dst[12], dst[13], dst[14], dst[15]];
            fnv1a(&mask(a, self.prefix_v4))
        } else {
            fnv1a(&mask(*dst, self.prefix_v6))
        };
        (h % u64::from(self.partitions)) as u16
    }

    /// The partition of a destination address.
    pub fn of_addr(&self, a: IpAddr) -> u16 {
        let (b, v4) = pharos_model::flow::addr_to_bytes(&a);
        self.of(&b, v4)
    }

    /// Appends each row of `b` to `out[partition of its destination]`.
    ///
    /// # Panics
    /// When `out` has fewer than [`Partitioner::partitions`] batches.
    pub fn split_into(&self, b: &FlowBatch, out: &mut [FlowBatch]) {
        assert!(
            out.len() >= usize::from(self.partitions),
            "split_into needs {} output batches, got {}",
            self.partitions,
            out.len()
        );
        for i in 0..b.len() {
            let p = self.of(&b.dst_addr[i], b.flags[i] & flags::DST_V4 != 0);
            push_row(&mut out[usize::from(p)], b, i);
        }
    }
}

/// Appends row `i` of `src` to `dst`, column by column.
#[inline]
fn push_row(dst: &mut FlowBatch, src: &FlowBatch, i: usize) {
    dst.flags.push(src.flags[i]);
    dst.exporter.push(src.exporter[i]);
    dst.domain.push(src.domain[i]);
    dst.in_if.push(src.in_if[i]);
    dst.out_if.push(src.out_if[i]);
    dst.src_addr.push(src.src_addr[i]);
    dst.dst_addr.push(src.dst_addr[i]);
    dst.src_port.push(src.src_port[i]);
    dst.dst_port.push(src.dst_port[i]);
    dst.proto.push(src.proto[i]);
    dst.tcp_flags.push(src.tcp_flags[i]);
    dst.tos.push(src.tos[i]);
    dst.packets.push(src.packets[i]);
    dst.bytes.push(src.bytes[i]);
    dst.start_ms.push(src.start_ms[i]);
    dst.end_ms.push(src.end_ms[i]);
    dst.src_as.push(src.src_as[i]);
    dst.dst_as.push(src.dst_as[i]);
    dst.src_mask.push(src.src_mask[i]);
    dst.dst_mask.push(src.dst_mask[i]);
    dst.next_hop.push(src.next_hop[i]);
    dst.vlan.push(src.vlan[i]);
    dst.direction.push(src.direction[i]);
    dst.sampling_rate.push(src.sampling_rate[i]);
    dst.icmp_type.push(src.icmp_type[i]);
    dst.icmp_code.push(src.icmp_code[i]);
    dst.end_reason.push(src.end_reason[i]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_model::flow::FlowRecord;

    fn p(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        // From the FNV reference (draft-eastlake-fnv): "" and "a".
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn partitions_are_pinned_across_releases() {
        // Changing these values moves victims between analysers of a running cluster: never.
        // (Checked against an independent FNV-1a 64 in Python.)
        let part = Partitioner::new(16, 24, 48);
        let got: Vec<u16> = [
            "198.51.100.7",
            "198.51.100.200",
            "203.0.113.9",
            "10.0.0.1",
            "2001:db8::1",
            "2001:db8:0:ffff::1",
            "2001:db8:1::1",
            "::ffff:198.51.100.7",
        ]
        .iter()
        .map(|a| part.of_addr(p(a)))
        .collect();
        assert_eq!(got, PINNED);
        assert_eq!(got[0], got[1], "one /24, one partition");
        assert_eq!(got[4], got[5], "one /48, one partition");
    }

    const PINNED: [u16; 8] = [10, 10, 7, 15, 7, 7, 12, 5];

    #[test]
    fn masking_keeps_exactly_the_prefix_bits() {
        assert_eq!(mask([0xff; 4], 0), [0; 4]);
        assert_eq!(mask([0xff; 4], 20), [0xff, 0xff, 0xf0, 0]);
        assert_eq!(mask([0xff; 4], 32), [0xff; 4]);
        assert_eq!(mask([0xff; 4], 99), [0xff; 4]);
        assert_eq!(mask([0xff; 16], 48)[5..7], [0xff, 0]);
    }

    #[test]
    fn a_mapped_ipv6_address_is_not_its_ipv4_address() {
        let part = Partitioner::new(1024, 24, 48);
        let v4 = part.of_addr(p("198.51.100.7"));
        let v6 = part.of_addr(p("::ffff:198.51.100.7"));
        // Different hashes inputs (4 vs 16 bytes); equality would be a coincidence of 1/1024.
        assert_ne!(v4, v6);
    }

    #[test]
    fn split_sends_every_row_to_its_destination_partition_once() {
        let part = Partitioner::new(8, 24, 48);
        let mut b = FlowBatch::new();
        for i in 0..500u32 {
            b.push(&FlowRecord {
                dst_addr: if i.is_multiple_of(5) {
                    std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i) << 80).into()
                } else {
                    std::net::Ipv4Addr::from(0xc633_0000 | (i << 8) | (i % 256)).into()
                },
                packets: u64::from(i),
                ..FlowRecord::default()
            });
        }
        let mut out = vec![FlowBatch::new(); 8];
        part.split_into(&b, &mut out);
        assert_eq!(out.iter().map(FlowBatch::len).sum::<usize>(), b.len());
        assert!(out.iter().filter(|o| !o.is_empty()).count() > 4, "spread");
        let mut seen: Vec<u64> = Vec::new();
        for (k, o) in out.iter().enumerate() {
            for r in o.iter() {
                assert_eq!(usize::from(part.of_addr(r.dst_addr)), k);
                seen.push(r.packets);
            }
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..500).collect::<Vec<u64>>());
    }
}
