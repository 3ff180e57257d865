//! Anonymising a batch of flows in place, by the family each address carries: a flow column
//! stores IPv4 IPv4-mapped with a row flag, and those take the 32-bit path, as nfanon does, so
//! an archive anonymised here and one anonymised by nfanon agree.

use std::net::{Ipv4Addr, Ipv6Addr};

use pharos_model::flow::{FlowBatch, flags};

use crate::{CryptoPan, KeyRing};

/// The pseudonym of 16 stored bytes: IPv4-mapped IPv4 when `v4` (32-bit path), else IPv6.
fn stored(cp: &CryptoPan, b: [u8; 16], v4: bool) -> [u8; 16] {
    if v4 {
        let a = Ipv4Addr::new(b[12], b[13], b[14], b[15]);
        cp.anonymize_v4(a).to_ipv6_mapped().octets()
    } else {
        cp.anonymize_v6(Ipv6Addr::from(b)).octets()
    }
}

/// Replaces the exporter, source, destination and (when present) next-hop addresses of every
/// row of `batch` by their pseudonyms; every other column is left as it is.
pub fn anonymize_flows(cp: &CryptoPan, batch: &mut FlowBatch) {
    for i in 0..batch.len() {
        let f = batch.flags[i];
        batch.exporter[i] = stored(cp, batch.exporter[i], f & flags::EXPORTER_V4 != 0);
        batch.src_addr[i] = stored(cp, batch.src_addr[i], f & flags::SRC_V4 != 0);
        batch.dst_addr[i] = stored(cp, batch.dst_addr[i], f & flags::DST_V4 != 0);
        if f & flags::NEXT_HOP != 0 {
            batch.next_hop[i] = stored(cp, batch.next_hop[i], f & flags::NEXT_HOP_V4 != 0);
        }
    }
}

/// Like [`anonymize_flows`], each row with the key of `ring` valid at its start time (key
/// rotation). Rows with no valid key are left as they are and counted; the caller refuses the
/// output when the count is not zero. Returns that count and the earliest such start time.
pub fn anonymize_flows_dated(ring: &KeyRing, batch: &mut FlowBatch) -> (usize, Option<u64>) {
    let (mut missing, mut earliest) = (0usize, None::<u64>);
    for i in 0..batch.len() {
        let t = batch.start_ms[i];
        let Some(cp) = ring.at(i64::try_from(t).unwrap_or(i64::MAX)) else {
            missing += 1;
            earliest = Some(earliest.map_or(t, |e| e.min(t)));
            continue;
        };
        let f = batch.flags[i];
        batch.exporter[i] = stored(cp, batch.exporter[i], f & flags::EXPORTER_V4 != 0);
        batch.src_addr[i] = stored(cp, batch.src_addr[i], f & flags::SRC_V4 != 0);
        batch.dst_addr[i] = stored(cp, batch.dst_addr[i], f & flags::DST_V4 != 0);
        if f & flags::NEXT_HOP != 0 {
            batch.next_hop[i] = stored(cp, batch.next_hop[i], f & flags::NEXT_HOP_V4 != 0);
        }
    }
    (missing, earliest)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use pharos_model::flow::FlowRecord;

    use super::*;
    use crate::Key;

    #[test]
    fn flows_are_anonymised_by_the_family_they_carry() {
        let cp = CryptoPan::new(
            &Key::from_hex("1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202")
                .unwrap(),
        );
        let v4: IpAddr = "128.11.68.132".parse().unwrap();
        let mapped: IpAddr = "::ffff:128.11.68.132".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let mut batch = FlowBatch::default();
        batch.push(&FlowRecord {
            exporter: v4,
            src_addr: v4,
            dst_addr: mapped,
            next_hop: Some(v6),
            ..FlowRecord::default()
        });
        anonymize_flows(&cp, &mut batch);
        let r = batch.get(0);
        let want_v4: IpAddr = "135.242.180.132".parse().unwrap();
        assert_eq!(r.exporter, want_v4);
        assert_eq!(
            r.src_addr, want_v4,
            "IPv4 flows take the 32-bit path (nfanon)"
        );
        assert_eq!(
            r.dst_addr,
            cp.anonymize(mapped),
            "IPv6 rows take the 128-bit path"
        );
        assert_ne!(
            r.dst_addr,
            IpAddr::V6(Ipv4Addr::new(135, 242, 180, 132).to_ipv6_mapped())
        );
        assert_eq!(r.next_hop, Some(cp.anonymize(v6)));
    }
}
