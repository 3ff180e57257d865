//! The capture reader: pcap in both byte orders and both time resolutions, pcapng, link types,
//! skipped packets counted, absurd lengths refused.

use pharos_wire::WireError;
use pharos_wire::pcap::{Capture, MAX_BLOCK};

fn ipv4_udp(payload: &[u8], frag: u16) -> Vec<u8> {
    let total = (28 + payload.len()) as u16;
    let mut b = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        (frag >> 8) as u8,
        frag as u8,
        64,
        17,
        0,
        0,
    ];
    b.extend_from_slice(&[192, 0, 2, 1, 192, 0, 2, 2]);
    b.extend_from_slice(&1234u16.to_be_bytes());
    b.extend_from_slice(&2055u16.to_be_bytes());
    b.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(payload);
    b
}

fn ipv6_udp(payload: &[u8]) -> Vec<u8> {
    let plen = (8 + payload.len()) as u16;
    let mut b = vec![0x60, 0, 0, 0, (plen >> 8) as u8, plen as u8, 17, 64];
    b.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    b.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    b.extend_from_slice(&4000u16.to_be_bytes());
    b.extend_from_slice(&6343u16.to_be_bytes());
    b.extend_from_slice(&plen.to_be_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(payload);
    b
}

fn eth(ethertype: u16, vlan: bool, ip: &[u8]) -> Vec<u8> {
    let mut b = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    if vlan {
        b.extend_from_slice(&[0x81, 0x00, 0, 7]);
    }
    b.extend_from_slice(&ethertype.to_be_bytes());
    b.extend_from_slice(ip);
    b.extend_from_slice(&[0; 6]); // Ethernet padding must not leak into the payload
    b
}

fn pcap(le: bool, nanos: bool, link: u32, frames: &[Vec<u8>]) -> Vec<u8> {
    let w32 = |b: &mut Vec<u8>, v: u32| {
        b.extend_from_slice(&if le { v.to_le_bytes() } else { v.to_be_bytes() })
    };
    let mut b = Vec::new();
    w32(&mut b, if nanos { 0xa1b23c4d } else { 0xa1b2c3d4 });
    let v = if le { [2u8, 0, 4, 0] } else { [0u8, 2, 0, 4] };
    b.extend_from_slice(&v);
    for x in [0, 0, 65535, link] {
        w32(&mut b, x);
    }
    for f in frames {
        w32(&mut b, 1_700_000_000);
        w32(&mut b, if nanos { 250_000_000 } else { 250_000 });
        w32(&mut b, f.len() as u32);
        w32(&mut b, f.len() as u32);
        b.extend_from_slice(f);
    }
    b
}

fn pcapng(le: bool, link: u16, tsresol: Option<u8>, frames: &[Vec<u8>], simple: bool) -> Vec<u8> {
    let w32 = |b: &mut Vec<u8>, v: u32| {
        b.extend_from_slice(&if le { v.to_le_bytes() } else { v.to_be_bytes() })
    };
    let w16 = |b: &mut Vec<u8>, v: u16| {
        b.extend_from_slice(&if le { v.to_le_bytes() } else { v.to_be_bytes() })
    };
    let mut b = Vec::new();
    w32(&mut b, 0x0a0d0d0a);
    w32(&mut b, 28);
    w32(&mut b, 0x1a2b3c4d);
    w16(&mut b, 1);
    w16(&mut b, 0);
    b.extend_from_slice(&[0xff; 8]);
    w32(&mut b, 28);
    let idb_len = if tsresol.is_some() { 32 } else { 20 };
    w32(&mut b, 1);
    w32(&mut b, idb_len);
    w16(&mut b, link);
    w16(&mut b, 0);
    w32(&mut b, 0);
    if let Some(r) = tsresol {
        w16(&mut b, 9);
        w16(&mut b, 1);
        b.extend_from_slice(&[r, 0, 0, 0]);
        w32(&mut b, 0);
    }
    w32(&mut b, idb_len);
    for f in frames {
        let pad = f.len().div_ceil(4) * 4;
        if simple {
            let len = (16 + pad) as u32;
            w32(&mut b, 3);
            w32(&mut b, len);
            w32(&mut b, f.len() as u32);
            b.extend_from_slice(f);
            b.resize(b.len() + pad - f.len(), 0);
            w32(&mut b, len);
        } else {
            let len = (32 + pad) as u32;
            let ts: u64 = match tsresol {
                Some(9) => 1_700_000_000_250_000_000,
                _ => 1_700_000_000_250_000,
            };
            w32(&mut b, 6);
            w32(&mut b, len);
            w32(&mut b, 0);
            w32(&mut b, (ts >> 32) as u32);
            w32(&mut b, ts as u32);
            w32(&mut b, f.len() as u32);
            w32(&mut b, f.len() as u32);
            b.extend_from_slice(f);
            b.resize(b.len() + pad - f.len(), 0);
            w32(&mut b, len);
        }
    }
    b
}

fn payloads(buf: &[u8]) -> (Vec<(u64, String, Vec<u8>)>, pharos_wire::pcap::PcapStats) {
    let mut c = Capture::new(buf).unwrap();
    let v = c
        .by_ref()
        .map(|d| d.unwrap())
        .map(|d| {
            (
                d.timestamp_ms,
                format!("{}>{}", d.src, d.dst),
                d.payload.to_vec(),
            )
        })
        .collect();
    (v, *c.stats())
}

#[test]
fn pcap_in_both_byte_orders_and_resolutions_yields_udp_payloads_with_ms_times() {
    let frames = vec![
        eth(0x0800, false, &ipv4_udp(b"hello", 0)),
        eth(0x86dd, true, &ipv6_udp(b"v6!")),
    ];
    for le in [true, false] {
        for nanos in [true, false] {
            let (v, s) = payloads(&pcap(le, nanos, 1, &frames));
            assert_eq!(v.len(), 2, "le={le} nanos={nanos}");
            assert_eq!(
                v[0],
                (
                    1_700_000_000_250,
                    "192.0.2.1:1234>192.0.2.2:2055".to_string(),
                    b"hello".to_vec()
                )
            );
            assert_eq!(v[1].1, "[2001:db8::1]:4000>[2001:db8::2]:6343");
            assert_eq!(v[1].2, b"v6!");
            assert_eq!((s.packets, s.udp), (2, 2));
        }
    }
}

#[test]
fn pcapng_enhanced_and_simple_blocks_in_both_byte_orders() {
    let frames = vec![eth(0x0800, false, &ipv4_udp(b"ng", 0))];
    for le in [true, false] {
        for res in [None, Some(9)] {
            let (v, _) = payloads(&pcapng(le, 1, res, &frames, false));
            assert_eq!(
                v,
                vec![(
                    1_700_000_000_250,
                    "192.0.2.1:1234>192.0.2.2:2055".to_string(),
                    b"ng".to_vec()
                )]
            );
        }
        let (v, _) = payloads(&pcapng(le, 1, None, &frames, true));
        assert_eq!((v[0].0, v[0].2.as_slice()), (0, &b"ng"[..]));
    }
}

#[test]
fn linux_cooked_raw_and_loopback_link_types_are_read_and_others_counted() {
    let ip = ipv4_udp(b"x", 0);
    let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ip);
    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0,
    ];
    sll2.extend_from_slice(&ip);
    let mut null = 2u32.to_le_bytes().to_vec();
    null.extend_from_slice(&ip);
    for (link, f) in [
        (113, sll),
        (276, sll2),
        (101, ip.clone()),
        (228, ip.clone()),
        (0, null),
    ] {
        let (v, _) = payloads(&pcap(true, false, link, &[f]));
        assert_eq!(v.len(), 1, "link type {link}");
        assert_eq!(v[0].2, b"x");
    }
    let (v, s) = payloads(&pcap(true, false, 239, &[ip]));
    assert!(v.is_empty());
    assert_eq!(s.unsupported_link, 1);
}

#[test]
fn fragments_and_non_udp_are_skipped_and_counted() {
    let mut tcp = ipv4_udp(b"tcp", 0);
    tcp[9] = 6;
    let frames = vec![
        eth(0x0800, false, &ipv4_udp(b"first fragment", 0x2000)),
        eth(0x0800, false, &ipv4_udp(b"later", 0x0010)),
        eth(0x0800, false, &tcp),
        eth(0x0806, false, &[0; 28]),
        eth(0x0800, false, &ipv4_udp(b"ok", 0x4000)),
    ];
    let (v, s) = payloads(&pcap(true, false, 1, &frames));
    assert_eq!(v.len(), 1, "only the unfragmented (DF) datagram");
    assert_eq!((s.fragments, s.non_udp, s.udp, s.packets), (2, 2, 1, 5));
}

#[test]
fn absurd_or_truncated_lengths_are_errors_not_panics() {
    let mut p = pcap(true, false, 1, &[eth(0x0800, false, &ipv4_udp(b"a", 0))]);
    // record length beyond the file
    let mut cut = p.clone();
    cut.truncate(p.len() - 3);
    let r: Vec<_> = Capture::new(&cut).unwrap().collect();
    assert!(matches!(
        r.last(),
        Some(Err(WireError::Truncated {
            what: "pcap record",
            ..
        }))
    ));
    // absurd record length
    p[24 + 8..24 + 12].copy_from_slice(&(MAX_BLOCK as u32 + 1).to_le_bytes());
    let r: Vec<_> = Capture::new(&p).unwrap().collect();
    assert!(matches!(
        r.as_slice(),
        [Err(WireError::Limit {
            what: "pcap record length",
            ..
        })]
    ));
    // absurd snap length
    let mut q = pcap(true, false, 1, &[]);
    q[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(Capture::new(&q), Err(WireError::Limit { .. })));
    // pcapng block length not a multiple of 4
    let mut n = pcapng(
        true,
        1,
        None,
        &[eth(0x0800, false, &ipv4_udp(b"a", 0))],
        false,
    );
    n[28 + 4..28 + 8].copy_from_slice(&21u32.to_le_bytes());
    let r: Vec<_> = Capture::new(&n).unwrap().collect();
    assert!(matches!(r.as_slice(), [Err(WireError::Malformed { .. })]));
    // not a capture
    assert!(Capture::new(b"GIF89a......").is_err());
    for k in 0..n.len() {
        for _ in Capture::new(&n[..k]).into_iter().flatten() {}
    }
}
