//! Differential tests: our decoders against `netflow_parser` (NetFlow v5/v9, IPFIX) and
//! `sflow-parser` (sFlow v5), on the shared captures and on generated packets.

mod common;

use std::net::IpAddr;

use common::build::{self, Msg, flow_fields, flow_record};
use netflow_parser::{NetflowPacket, NetflowParser};
use pharos_wire::{DecoderConfig, FlowBatch, FlowDecoder, Protocol};
use proptest::prelude::*;

const T0: u64 = 1_700_000_000_000;

fn from() -> std::net::SocketAddr {
    "192.0.2.10:2055".parse().unwrap()
}

/// Compares one v5 datagram field by field; returns the number of records compared.
fn v5_agrees(p: &[u8]) -> usize {
    let mut d = FlowDecoder::new(DecoderConfig::default());
    let mut out = FlowBatch::new();
    let ours = d.decode(from(), T0, p, &mut out);
    let theirs = NetflowParser::default().parse_bytes(p);
    let Some(NetflowPacket::V5(v5)) = theirs.packets.first() else {
        assert!(
            ours.is_err(),
            "netflow_parser refused a v5 datagram we accepted"
        );
        return 0;
    };
    ours.expect("netflow_parser accepted a v5 datagram we refused");
    assert_eq!(out.len(), v5.flowsets.len());
    let rate = (v5.header.sampling_interval & 0x3fff).max(1) as u64;
    for (i, f) in v5.flowsets.iter().enumerate() {
        let r = out.get(i);
        assert_eq!(r.src_addr, IpAddr::V4(f.src_addr));
        assert_eq!(r.dst_addr, IpAddr::V4(f.dst_addr));
        assert_eq!(
            r.next_hop.unwrap_or(IpAddr::from([0, 0, 0, 0])),
            IpAddr::V4(f.next_hop)
        );
        assert_eq!((r.in_if, r.out_if), (f.input as u32, f.output as u32));
        assert_eq!(
            (r.packets, r.bytes),
            (f.d_pkts as u64 * rate, f.d_octets as u64 * rate)
        );
        assert_eq!(
            (r.src_port, r.dst_port, r.proto, r.tcp_flags, r.tos),
            (
                f.src_port,
                f.dst_port,
                f.protocol_number,
                f.tcp_flags,
                f.tos
            )
        );
        assert_eq!(
            (r.src_as, r.dst_as, r.src_mask, r.dst_mask),
            (f.src_as as u32, f.dst_as as u32, f.src_mask, f.dst_mask)
        );
        let export = v5.header.unix_secs as u64 * 1000 + v5.header.unix_nsecs as u64 / 1_000_000;
        let expect = |t: u32| (export as i64 - (v5.header.sys_up_time as i64 - t as i64)) as u64;
        // Times more than 2^31 ms (24.8 days) before the export are read as after a 32-bit
        // uptime wrap (see `uptime_to_unix_ms`); compare only the unambiguous ones.
        let near = |t: u32| v5.header.sys_up_time >= t && v5.header.sys_up_time - t < 1 << 31;
        if near(f.first) && near(f.last) {
            assert_eq!((r.start_ms, r.end_ms), (expect(f.first), expect(f.last)));
        }
    }
    out.len()
}

/// Compares the 5-tuples of every v9/IPFIX flow with an address, datagram by datagram, with
/// both decoders keeping their template state. Returns the number compared.
fn v9_ipfix_agree(datagrams: &[Vec<u8>]) -> usize {
    let mut d = FlowDecoder::new(DecoderConfig {
        max_held_bytes_per_exporter: 0,
        ..DecoderConfig::default()
    });
    let mut np = NetflowParser::default();
    let mut compared = 0;
    for p in datagrams {
        let mut out = FlowBatch::new();
        let ours = d.decode(from(), T0, p, &mut out);
        let (theirs, err) = np.parse_bytes_as_netflow_common_flowsets(p);
        if ours.is_err() || err.is_some() {
            continue;
        }
        let mine: Vec<_> = out
            .iter()
            .filter(|r| !r.src_addr.is_unspecified())
            .collect();
        let theirs: Vec<_> = theirs
            .iter()
            .filter(|f| f.src_addr.is_some_and(|a| !a.is_unspecified()))
            .collect();
        // Every flow netflow_parser finds must be ours, in order. We may have more: addresses
        // read from dataLinkFrameSection (IE 315), which netflow_parser leaves unparsed.
        let mut it = mine.iter();
        for f in &theirs {
            let found = it.any(|r| {
                Some(r.src_addr) == f.src_addr
                    && Some(r.dst_addr) == f.dst_addr
                    && r.src_port == f.src_port.unwrap_or(0)
                    && r.dst_port == f.dst_port.unwrap_or(0)
                    && r.proto == f.protocol_number.unwrap_or(0)
            });
            assert!(found, "netflow_parser flow {f:?} not among ours");
            compared += 1;
        }
    }
    compared
}

/// Compares flow samples (rate, interfaces, frame length) and generic counters.
fn sflow_agrees(p: &[u8]) -> usize {
    let mut d = FlowDecoder::new(DecoderConfig::default());
    let mut out = FlowBatch::new();
    let ours = d.decode(from(), T0, p, &mut out);
    let Ok(theirs) = sflow_parser::parse_datagram(p) else {
        return 0; // sflow-parser is stricter about record types it does not know
    };
    let o = ours.expect("sflow-parser accepted a datagram we refused");
    let mut flows = Vec::new();
    let mut counters = Vec::new();
    for s in &theirs.samples {
        use sflow_parser::SampleData::*;
        let (rate, input, output, records) = match &s.sample_data {
            FlowSample(f) => (
                f.sampling_rate,
                if f.input.is_single() {
                    f.input.value()
                } else {
                    0
                },
                if f.output.is_single() {
                    f.output.value()
                } else {
                    0
                },
                &f.flow_records,
            ),
            FlowSampleExpanded(f) => (
                f.sampling_rate,
                if f.input.format == 0 {
                    f.input.value
                } else {
                    0
                },
                if f.output.format == 0 {
                    f.output.value
                } else {
                    0
                },
                &f.flow_records,
            ),
            CountersSample(c) => {
                for r in &c.counters {
                    if let sflow_parser::models::CounterData::GenericInterface(g) = &r.counter_data
                    {
                        counters.push((g.if_index, g.if_speed, g.if_in_octets));
                    }
                }
                continue;
            }
            CountersSampleExpanded(c) => {
                for r in &c.counters {
                    if let sflow_parser::models::CounterData::GenericInterface(g) = &r.counter_data
                    {
                        counters.push((g.if_index, g.if_speed, g.if_in_octets));
                    }
                }
                continue;
            }
            _ => continue,
        };
        let frame = records.iter().find_map(|r| match &r.flow_data {
            sflow_parser::models::FlowData::SampledHeader(h) => Some(h.frame_length as u64),
            _ => None,
        });
        flows.push((rate, input, output, frame));
    }
    assert_eq!(out.len(), flows.len(), "flow samples");
    for (i, (rate, input, output, frame)) in flows.iter().enumerate() {
        let r = out.get(i);
        assert_eq!(
            (r.sampling_rate, r.in_if, r.out_if),
            (*rate, *input, *output)
        );
        if let Some(f) = frame {
            assert_eq!(r.bytes, f * *rate as u64);
        }
    }
    let mine: Vec<_> = o
        .counters
        .iter()
        .filter_map(|c| c.interface)
        .map(|g| (g.if_index, g.speed, g.in_octets))
        .collect();
    assert_eq!(mine, counters, "generic interface counters");
    flows.len() + counters.len()
}

#[test]
fn corpus_datagrams_agree_with_netflow_parser_and_sflow_parser() {
    let Some(dir) =
        common::flows_dir("corpus_datagrams_agree_with_netflow_parser_and_sflow_parser")
    else {
        return;
    };
    let (mut v5, mut nf, mut sf) = (0, 0, 0);
    for g in common::groups(&dir) {
        if !g.iter().all(|f| common::is_flow_capture(f)) {
            continue;
        }
        let (_, _, decoded, _) = common::decode_files(&g, DecoderConfig::default());
        let mut cflow = Vec::new();
        for f in &g {
            let bytes = std::fs::read(f).unwrap();
            for dg in pharos_wire::pcap::Capture::new(&bytes).unwrap().flatten() {
                let p = dg.payload;
                match decoded
                    .iter()
                    .find(|d| d.file == *f && d.timestamp_ms == dg.timestamp_ms)
                    .map(|d| d.result.as_ref().map(|o| o.protocol))
                {
                    Some(Ok(Protocol::NetflowV5)) => v5 += v5_agrees(p),
                    Some(Ok(Protocol::Sflow5)) => sf += sflow_agrees(p),
                    Some(Ok(_)) => cflow.push(p.to_vec()),
                    _ => {}
                }
            }
        }
        nf += v9_ipfix_agree(&cflow);
    }
    println!("compared with the oracles: {v5} v5 records, {nf} v9/IPFIX flows, {sf} sFlow samples");
    assert!(
        v5 >= 29 && nf >= 40 && sf >= 20,
        "too little compared: {v5} {nf} {sf}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    // (count 0: netflow_parser refuses an empty v5 datagram; we accept it with no flows.)
    #[test]
    fn generated_v5_agrees_with_netflow_parser(count in 1u16..=30, seq in any::<u32>(), uptime in 100_000u32..u32::MAX, rate in 0u16..1000, flip in any::<(usize, u8)>()) {
        let mut p = build::v5(count, seq, uptime, 1_700_000_000, rate);
        // vary the record bytes too (but not the header)
        if p.len() > 24 {
            let i = 24 + flip.0 % (p.len() - 24);
            p[i] = flip.1;
        }
        v5_agrees(&p);
    }

    #[test]
    fn generated_v9_and_ipfix_agree_with_netflow_parser(n in 1u32..25, ipfix in any::<bool>(), base in any::<u32>()) {
        let recs: Vec<Vec<u8>> = (0..n).map(|i| flow_record(base.wrapping_add(i) % 65000, 1000, 2000, ipfix)).collect();
        let m = if ipfix { Msg::ipfix(1, 0, 1_700_000_000) } else { Msg::v9(1, 0, 100_000, 1_700_000_000) };
        let p = m.template(300, &flow_fields(ipfix)).data(300, &recs).build();
        prop_assert_eq!(v9_ipfix_agree(&[p]), n as usize);
    }

    #[test]
    fn generated_sflow_agrees_with_sflow_parser(rate in 1u32..100_000, frame in 64u32..9000, sport in any::<u16>(), octets in any::<u64>()) {
        let hdr = build::eth_vlan_ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], sport, 443, 10);
        let dg = build::sflow_datagram([192, 0, 2, 1], 0, 1, 1, &[
            build::sflow_flow_sample(1, rate, 3, 4, &[build::sflow_raw_header(frame, &hdr)]),
            build::sflow_counter_sample(2, 3, octets, 1),
        ]);
        prop_assert_eq!(sflow_agrees(&dg), 2);
    }
}
