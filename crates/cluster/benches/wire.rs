//! Flow batch wire format throughput (flows/s per core): `wire::encode` and `wire::decode_into`
//! (into a reused batch) of 8,192-flow batches, with the RowBinary encoding the archiver sends
//! to ClickHouse (`pharos_clickhouse::encode_rows`) on the same batch as the reference, and
//! `Partitioner::split_into` (what a collector does before encoding). Two mixes: a collector's
//! batch (one exporter, IPv4, many sources towards few victims) and a worst case (random IPv4 and
//! IPv6 addresses, random counters and times, every optional field present).
//!
//! Run: `cargo bench -p pharos-cluster --bench wire`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pharos_cluster::partition::Partitioner;
use pharos_cluster::wire;
use pharos_model::flow::{FlowBatch, FlowRecord};

const N: usize = 8192;
const T0: u64 = 1_796_644_800_000;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn collector_batch() -> FlowBatch {
    let mut r = Rng(7);
    let mut b = FlowBatch::with_capacity(N);
    for i in 0..N as u64 {
        let x = r.next();
        b.push(&FlowRecord {
            exporter: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            domain: 256,
            in_if: 3 + (x % 4) as u32,
            out_if: 1,
            src_addr: IpAddr::V4(Ipv4Addr::from((x >> 8) as u32)),
            dst_addr: IpAddr::V4(Ipv4Addr::new(198, 51, 100, (x % 16) as u8)),
            src_port: (x >> 40) as u16,
            dst_port: [53, 80, 443, 123][(x % 4) as usize],
            proto: if x.is_multiple_of(3) { 6 } else { 17 },
            tcp_flags: if x.is_multiple_of(3) { 0x1b } else { 0 },
            packets: 1 + x % 20,
            bytes: 60 + x % 30_000,
            start_ms: T0 + i * 2,
            end_ms: T0 + i * 2 + x % 5_000,
            src_as: 64_500 + (x % 8) as u32,
            dst_as: 64_496,
            src_mask: 24,
            dst_mask: 24,
            next_hop: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 254))),
            sampling_rate: 1,
            ..FlowRecord::default()
        });
    }
    b
}

fn worst_batch() -> FlowBatch {
    let mut r = Rng(11);
    let mut b = FlowBatch::with_capacity(N);
    for _ in 0..N {
        let addr = |r: &mut Rng| {
            let x = r.next();
            if x.is_multiple_of(2) {
                IpAddr::V4(Ipv4Addr::from(x as u32))
            } else {
                IpAddr::V6(Ipv6Addr::from(u128::from(x) << 64 | u128::from(r.next())))
            }
        };
        let (e, s, d, nh) = (addr(&mut r), addr(&mut r), addr(&mut r), addr(&mut r));
        let x = r.next();
        let y = r.next();
        b.push(&FlowRecord {
            exporter: e,
            domain: x as u32,
            in_if: (x >> 32) as u32,
            out_if: y as u32,
            src_addr: s,
            dst_addr: d,
            src_port: x as u16,
            dst_port: (x >> 16) as u16,
            proto: (x >> 24) as u8,
            tcp_flags: (x >> 32) as u8,
            tos: (x >> 40) as u8,
            packets: r.next(),
            bytes: r.next(),
            start_ms: r.next(),
            end_ms: r.next(),
            src_as: y as u32,
            dst_as: (y >> 32) as u32,
            src_mask: (y >> 8) as u8,
            dst_mask: (y >> 16) as u8,
            next_hop: Some(nh),
            vlan: Some((y >> 24) as u16),
            direction: Some((y >> 40) as u8 & 1),
            sampling_rate: (y >> 48) as u32,
            icmp_type: (y >> 56) as u8,
            icmp_code: y as u8,
            end_reason: Some((x >> 56) as u8),
        });
    }
    b
}

fn bench(c: &mut Criterion) {
    for (name, b) in [("collector", collector_batch()), ("worst", worst_batch())] {
        let mut buf = Vec::new();
        wire::encode(&b, &mut buf);
        let rowbinary = pharos_clickhouse::encode_rows(1, &b).len();
        eprintln!(
            "{name}: {} flows, wire {} bytes ({:.1} a flow), RowBinary {} bytes ({:.1} a flow)",
            b.len(),
            buf.len(),
            buf.len() as f64 / b.len() as f64,
            rowbinary,
            rowbinary as f64 / b.len() as f64
        );
        assert_eq!(wire::decode(&buf).unwrap(), b);
        let mut g = c.benchmark_group(format!("wire/{name}"));
        g.throughput(Throughput::Elements(b.len() as u64));
        g.measurement_time(Duration::from_secs(3));
        g.bench_function("encode", |bench| {
            let mut out = Vec::with_capacity(buf.len());
            bench.iter(|| {
                out.clear();
                wire::encode(black_box(&b), &mut out);
                out.len()
            })
        });
        g.bench_function("decode_into", |bench| {
            let mut out = FlowBatch::with_capacity(N);
            bench.iter(|| {
                out.clear();
                wire::decode_into(black_box(&buf), &mut out).unwrap()
            })
        });
        g.bench_function("rowbinary_encode_reference", |bench| {
            bench.iter(|| pharos_clickhouse::encode_rows(1, black_box(&b)).len())
        });
        let part = Partitioner::new(16, 24, 48);
        g.bench_function("split_into_16", |bench| {
            let mut out = vec![FlowBatch::with_capacity(N); 16];
            bench.iter(|| {
                out.iter_mut().for_each(FlowBatch::clear);
                part.split_into(black_box(&b), &mut out);
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
