//! The flow batch wire format: every field round-trips (IPv4/IPv6 mixes, IPv4-mapped IPv6,
//! absent optional fields), and hostile bytes give an error, never a panic or an unbounded
//! allocation.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pharos_cluster::wire::{self, MAX_FLOWS, WireBatch, WireError};
use pharos_model::flow::{FlowBatch, FlowRecord};
use proptest::prelude::*;

fn addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
        // IPv4-mapped IPv6 must stay IPv6.
        any::<u32>().prop_map(|a| IpAddr::V6(Ipv4Addr::from(a).to_ipv6_mapped())),
        // A few repeated addresses, so the const and dictionary encodings are exercised.
        (0u8..3).prop_map(|i| IpAddr::V4(Ipv4Addr::new(192, 0, 2, i))),
        (0u8..3).prop_map(|i| IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0,
            0,
            0,
            0,
            0,
            u16::from(i)
        ))),
    ]
}

/// Integers that are small, large, or one of a few repeated values.
fn num<T: Arbitrary + Copy + From<u8> + std::fmt::Debug + 'static>() -> impl Strategy<Value = T> {
    prop_oneof![
        any::<T>(),
        (0u8..4).prop_map(T::from),
        (0u8..=255).prop_map(T::from)
    ]
}

prop_compose! {
    fn record()(
        exporter in addr(), src_addr in addr(), dst_addr in addr(), next_hop in proptest::option::of(addr()),
        ids in (num::<u32>(), num::<u32>(), num::<u32>(), num::<u32>(), num::<u32>(), num::<u32>()),
        ports in (num::<u16>(), num::<u16>()),
        small in (num::<u8>(), num::<u8>(), num::<u8>(), num::<u8>(), num::<u8>(), num::<u8>(), num::<u8>()),
        counters in (num::<u64>(), num::<u64>()),
        start_ms in prop_oneof![any::<u64>(), 1_796_644_800_000u64..1_796_644_900_000],
        dur in prop_oneof![any::<u64>(), 0u64..100_000],
        vlan in proptest::option::of(num::<u16>()),
        direction in proptest::option::of(0u8..2),
        end_reason in proptest::option::of(num::<u8>()),
    ) -> FlowRecord {
        FlowRecord {
            exporter, src_addr, dst_addr, next_hop,
            domain: ids.0, in_if: ids.1, out_if: ids.2, src_as: ids.3, dst_as: ids.4, sampling_rate: ids.5,
            src_port: ports.0, dst_port: ports.1,
            proto: small.0, tcp_flags: small.1, tos: small.2, src_mask: small.3, dst_mask: small.4,
            icmp_type: small.5, icmp_code: small.6,
            packets: counters.0, bytes: counters.1,
            start_ms, end_ms: start_ms.wrapping_add(dur),
            vlan, direction, end_reason,
        }
    }
}

fn batch_of(recs: &[FlowRecord]) -> FlowBatch {
    let mut b = FlowBatch::new();
    b.extend_records(recs);
    b
}

fn encoded(b: &FlowBatch) -> Vec<u8> {
    let mut out = Vec::new();
    wire::encode(b, &mut out);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_field_of_every_flow_round_trips(
        recs in proptest::collection::vec(record(), 0..200),
        repeat in 1usize..4,
    ) {
        // Repeating one record makes whole columns constant.
        let recs: Vec<FlowRecord> = if repeat == 3 && !recs.is_empty() {
            vec![recs[0]; recs.len()]
        } else {
            recs
        };
        let b = batch_of(&recs);
        let buf = encoded(&b);
        let back = wire::decode(&buf).unwrap();
        prop_assert_eq!(&back, &b);
        prop_assert_eq!(back.iter().collect::<Vec<_>>(), recs);
        // decode_into appends after what a reused batch holds.
        let mut reused = batch_of(&[FlowRecord::default()]);
        prop_assert_eq!(wire::decode_into(&buf, &mut reused).unwrap(), b.len());
        prop_assert_eq!(reused.len(), b.len() + 1);
        prop_assert_eq!(reused.get(0), FlowRecord::default());
    }

    #[test]
    fn any_corruption_is_an_error_or_a_bounded_batch_never_a_panic(
        recs in proptest::collection::vec(record(), 1..50),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<usize>(),
    ) {
        let buf = encoded(&batch_of(&recs));
        let mut bad = buf.clone();
        for (at, x) in &flips {
            let i = at % bad.len();
            bad[i] ^= x | 1;
        }
        if let Ok(b) = wire::decode(&bad) {
            prop_assert!(b.len() <= MAX_FLOWS);
        }
        let cut = cut % buf.len();
        prop_assert!(wire::decode(&buf[..cut]).is_err(), "a prefix of {} of {} bytes decoded", cut, buf.len());
    }
}

fn sample(i: u32) -> FlowRecord {
    FlowRecord {
        exporter: "192.0.2.1".parse().unwrap(),
        src_addr: Ipv4Addr::from(0x0a00_0000 | i).into(),
        dst_addr: "198.51.100.7".parse().unwrap(),
        src_port: 1024 + (i % 60_000) as u16,
        dst_port: 53,
        proto: 17,
        packets: 1,
        bytes: 80 + u64::from(i % 1400),
        start_ms: 1_796_644_800_000 + u64::from(i),
        end_ms: 1_796_644_800_000 + u64::from(i) + 10,
        sampling_rate: 1,
        ..FlowRecord::default()
    }
}

#[test]
fn every_truncation_of_a_batch_is_refused() {
    let recs: Vec<FlowRecord> = (0..40).map(sample).collect();
    let buf = encoded(&batch_of(&recs));
    for cut in 0..buf.len() {
        assert!(wire::decode(&buf[..cut]).is_err(), "prefix of {cut} bytes");
    }
    let mut long = buf.clone();
    long.push(0);
    let e = wire::decode(&long).unwrap_err();
    assert!(e.to_string().contains("after the last column"), "{e}");
}

#[test]
fn header_errors_name_what_is_wrong() {
    let buf = encoded(&batch_of(&[sample(1)]));
    let mut other = buf.clone();
    other[..4].copy_from_slice(b"{\"a\"");
    let e = wire::decode(&other).unwrap_err();
    assert!(matches!(e, WireError::BadMagic { .. }), "{e}");
    assert!(e.to_string().contains("PHFB"), "{e}");
    let mut v2 = buf.clone();
    v2[4] = 2;
    let e = wire::decode(&v2).unwrap_err();
    assert_eq!(e, WireError::UnsupportedVersion(2));
    assert!(e.to_string().contains("same Pharos release"), "{e}");
    let e = wire::decode(&buf[..3]).unwrap_err();
    assert!(
        matches!(e, WireError::Truncated { what: "header", .. }),
        "{e}"
    );
}

/// A header announcing `count` flows followed by the smallest columns that claim to hold them
/// (everything const).
fn all_const(count: u64) -> Vec<u8> {
    let mut b = b"PHFB\x01\x00".to_vec();
    let mut c = count;
    while c >= 0x80 {
        b.push(c as u8 | 0x80);
        c >>= 7;
    }
    b.push(c as u8);
    let widths = [
        1, 16, 4, 4, 4, 16, 16, 2, 2, 1, 1, 1, 8, 8, 8, 8, 4, 4, 1, 1, 16, 2, 1, 4, 1, 1, 1,
    ];
    for (i, w) in widths.iter().enumerate() {
        b.push(1); // const
        b.push(*w as u8);
        if i == 0 {
            b.push(0b0000_0111); // flags: every address IPv4, no next hop
        } else {
            b.extend(std::iter::repeat_n(0, *w));
        }
    }
    b
}

#[test]
fn a_huge_flow_count_is_refused_before_anything_is_allocated() {
    for count in [MAX_FLOWS as u64 + 1, u32::MAX as u64, u64::MAX] {
        let e = wire::decode(&all_const(count)).unwrap_err();
        assert_eq!(e, WireError::TooManyFlows { count });
    }
    // The largest count allowed: at most MAX_FLOWS rows from a 200-byte message.
    let b = wire::decode(&all_const(MAX_FLOWS as u64)).unwrap();
    assert_eq!(b.len(), MAX_FLOWS);
    let v = WireBatch::new_checked(all_const(3)).unwrap();
    assert_eq!((v.len(), v.version()), (3, 1));
}

#[test]
fn a_column_whose_size_contradicts_its_encoding_is_refused() {
    let mut b = all_const(2);
    // The flags column claims raw (0) with 1 byte for 2 rows.
    b[7] = 0;
    let e = wire::decode(&b).unwrap_err();
    assert!(
        matches!(e, WireError::Malformed { what: "flags", .. }),
        "{e}"
    );
    // An unknown encoding of the domain column.
    let mut b = all_const(2);
    let domain_at = 7 + 3 + 18;
    b[domain_at] = 9;
    let e = wire::decode(&b).unwrap_err();
    assert!(
        matches!(e, WireError::Malformed { what: "domain", .. }),
        "{e}"
    );
}

#[test]
fn a_typical_batch_takes_a_fraction_of_its_memory_size() {
    let recs: Vec<FlowRecord> = (0..8192).map(sample).collect();
    let b = batch_of(&recs);
    let buf = encoded(&b);
    let per_flow = buf.len() as f64 / 8192.0;
    eprintln!(
        "{} bytes for 8192 flows: {per_flow:.1} bytes a flow",
        buf.len()
    );
    assert!(per_flow < 20.0, "{per_flow} bytes a flow");
    assert_eq!(wire::decode(&buf).unwrap(), b);
}

/// Writes the fuzz seeds (`fuzz/seeds/cluster_wire/`): encoded batches of each shape.
/// `cargo test -p pharos-cluster --test wire_roundtrip -- --ignored write_fuzz_seeds`
#[test]
#[ignore = "writes fuzz/seeds/cluster_wire; run by hand"]
fn write_fuzz_seeds() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/cluster_wire");
    std::fs::create_dir_all(&dir).unwrap();
    let mixed: Vec<FlowRecord> = (0..24u32)
        .map(|i| FlowRecord {
            dst_addr: if i.is_multiple_of(3) {
                Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i as u16).into()
            } else {
                Ipv4Addr::new(198, 51, 100, i as u8).to_ipv6_mapped().into()
            },
            next_hop: i.is_multiple_of(2).then(|| "192.0.2.254".parse().unwrap()),
            vlan: i.is_multiple_of(4).then_some(7),
            direction: i.is_multiple_of(5).then_some(1),
            end_reason: i.is_multiple_of(6).then_some(2),
            end_ms: u64::MAX - i as u64,
            ..sample(i)
        })
        .collect();
    let seeds: Vec<(&str, Vec<FlowRecord>)> = vec![
        ("empty", vec![]),
        ("one", vec![sample(1)]),
        ("collector", (0..64).map(sample).collect()),
        ("constant", vec![sample(5); 16]),
        ("mixed", mixed),
    ];
    for (name, recs) in seeds {
        std::fs::write(dir.join(name), encoded(&batch_of(&recs))).unwrap();
    }
}
