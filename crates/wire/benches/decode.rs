//! Decode throughput (flows/s per core) for NetFlow v5, v9, IPFIX and sFlow from in-memory
//! buffers into a reused `FlowBatch`, with `netflow_parser` (v5, v9, IPFIX) and `sflow-parser`
//! measured on the same buffers for a side-by-side ratio; every case first checks that both sides
//! decode the same number of flows.
//!
//! Run: `cargo bench -p pharos-wire --bench decode`

#[path = "../tests/common/build.rs"]
mod build;

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use build::{Msg, flow_fields, flow_record};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use netflow_parser::NetflowParser;
use pharos_wire::{DecoderConfig, FlowBatch, FlowDecoder};

const SECS: u32 = 1_700_000_000;
const T0: u64 = SECS as u64 * 1000;

fn from() -> SocketAddr {
    "192.0.2.10:2055".parse().unwrap()
}

fn sflow_datagram(samples: u32) -> Vec<u8> {
    let s: Vec<Vec<u8>> = (0..samples)
        .map(|i| {
            let mut hdr = build::eth_vlan_ipv4_tcp(
                [10, 0, (i >> 8) as u8, i as u8],
                [198, 51, 100, 7],
                40000 + i as u16,
                443,
                100,
            );
            hdr.resize(128, 0); // sFlow agents send the first 128 bytes
            let switch = {
                let mut r = Vec::new();
                r.extend_from_slice(&1001u32.to_be_bytes());
                r.extend_from_slice(&16u32.to_be_bytes());
                for v in [100u32, 0, 100, 0] {
                    r.extend_from_slice(&v.to_be_bytes());
                }
                r
            };
            build::sflow_flow_sample(
                i,
                1024,
                3,
                4,
                &[switch, build::sflow_raw_header(1518, &hdr)],
            )
        })
        .collect();
    build::sflow_datagram([192, 0, 2, 1], 0, 1, 1000, &s)
}

fn bench(c: &mut Criterion) {
    // the exporter address, parsed once (not inside the timed loops)
    let from = from();
    let mut g = c.benchmark_group("decode");
    g.measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(30);

    // NetFlow v5: 30 records.
    let v5 = build::v5(30, 0, 3_600_000, SECS, 0);
    g.throughput(Throughput::Elements(30));
    g.bench_function("netflow_v5/pharos", |b| {
        let mut d = FlowDecoder::new(DecoderConfig::default());
        let mut out = FlowBatch::with_capacity(64);
        assert_eq!(d.decode(from, T0, &v5, &mut out).unwrap().flows, 30);
        b.iter(|| {
            out.clear();
            black_box(d.decode(from, T0, black_box(&v5), &mut out).unwrap());
        })
    });
    g.bench_function("netflow_v5/netflow_parser", |b| {
        let mut p = NetflowParser::default();
        assert_eq!(
            p.parse_bytes_as_netflow_common_flowsets(&v5).0.len(),
            30,
            "netflow_parser decodes the same flows"
        );
        b.iter(|| black_box(p.parse_bytes(black_box(&v5))))
    });

    // NetFlow v9: 25 records of a 17-field template (58 bytes per record).
    let recs: Vec<Vec<u8>> = (0..25)
        .map(|i| flow_record(i, 3_000_000, 3_500_000, false))
        .collect();
    let v9_tmpl = Msg::v9(1, 0, 3_600_000, SECS)
        .template(300, &flow_fields(false))
        .build();
    let v9 = Msg::v9(1, 1, 3_600_000, SECS).data(300, &recs).build();
    g.throughput(Throughput::Elements(25));
    g.bench_function("netflow_v9/pharos", |b| {
        let mut d = FlowDecoder::new(DecoderConfig::default());
        let mut out = FlowBatch::with_capacity(64);
        d.decode(from, T0, &v9_tmpl, &mut out).unwrap();
        assert_eq!(d.decode(from, T0, &v9, &mut out).unwrap().flows, 25);
        b.iter(|| {
            out.clear();
            black_box(d.decode(from, T0, black_box(&v9), &mut out).unwrap());
        })
    });
    g.bench_function("netflow_v9/netflow_parser", |b| {
        let mut p = NetflowParser::default();
        assert!(p.parse_bytes(&v9_tmpl).error.is_none());
        assert_eq!(
            p.parse_bytes_as_netflow_common_flowsets(&v9).0.len(),
            25,
            "netflow_parser decodes the same flows"
        );
        b.iter(|| black_box(p.parse_bytes(black_box(&v9))))
    });

    // IPFIX: 25 records of a 17-field template (66 bytes per record).
    let recs: Vec<Vec<u8>> = (0..25)
        .map(|i| flow_record(i, T0 - 5000, T0 - 100, true))
        .collect();
    let ipfix_tmpl = Msg::ipfix(1, 0, SECS)
        .template(300, &flow_fields(true))
        .build();
    let ipfix = Msg::ipfix(1, 0, SECS).data(300, &recs).build();
    g.bench_function("ipfix/pharos", |b| {
        let mut d = FlowDecoder::new(DecoderConfig::default());
        let mut out = FlowBatch::with_capacity(64);
        d.decode(from, T0, &ipfix_tmpl, &mut out).unwrap();
        assert_eq!(d.decode(from, T0, &ipfix, &mut out).unwrap().flows, 25);
        b.iter(|| {
            out.clear();
            black_box(d.decode(from, T0, black_box(&ipfix), &mut out).unwrap());
        })
    });
    g.bench_function("ipfix/netflow_parser", |b| {
        let mut p = NetflowParser::default();
        assert!(p.parse_bytes(&ipfix_tmpl).error.is_none());
        assert_eq!(
            p.parse_bytes_as_netflow_common_flowsets(&ipfix).0.len(),
            25,
            "netflow_parser decodes the same flows"
        );
        b.iter(|| black_box(p.parse_bytes(black_box(&ipfix))))
    });

    // sFlow: 8 flow samples, each with a 128-byte raw Ethernet/802.1Q/IPv4/TCP header and
    // extended switch data.
    let sf = sflow_datagram(8);
    g.throughput(Throughput::Elements(8));
    g.bench_function("sflow/pharos", |b| {
        let mut d = FlowDecoder::new(DecoderConfig::default());
        let mut out = FlowBatch::with_capacity(64);
        assert_eq!(d.decode(from, T0, &sf, &mut out).unwrap().flows, 8);
        b.iter(|| {
            out.clear();
            black_box(d.decode(from, T0, black_box(&sf), &mut out).unwrap());
        })
    });
    g.bench_function("sflow/sflow_parser", |b| {
        b.iter(|| black_box(sflow_parser::parse_datagram(black_box(&sf)).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
