//! Longest-prefix lookups per second on the prefix table of a generated RIPE set (100 000
//! inetnum and 20 000 inet6num objects, nested prefixes included), for addresses that hit and
//! addresses that miss, IPv4 and IPv6.
//! `cargo bench -p pharos-constituency --bench lookup`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pharos_constituency::{GenSpec, Registry, generate_ripe};

const N: u64 = 4096;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let spec = GenSpec {
        inetnum: 100_000,
        inet6num: 20_000,
        autnum: 1_000,
        organisation: 10_000,
        role: 10_000,
        seed: 7,
    };
    let sum = generate_ripe(dir.path(), &spec).unwrap();
    let mut reg = Registry::open_in_memory().unwrap();
    reg.import_ripe(dir.path(), "ripe").unwrap();
    let table = reg.prefix_table().unwrap();
    // pseudo-random addresses over the generated space (2.0.0.0 upward; 2a02::/16)
    let mut x = 0x1234_5678_9abc_def1u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let v4: Vec<IpAddr> = (0..N)
        .map(|_| IpAddr::V4(Ipv4Addr::from(0x0200_0000 + (next() % 0x1000_0000) as u32)))
        .collect();
    let v6: Vec<IpAddr> = (0..N)
        .map(|_| {
            let block = next() % u64::from(spec.inet6num);
            IpAddr::V6(Ipv6Addr::from(
                (0x2a02u128 << 112) | (u128::from(block) << 80) | u128::from(next()),
            ))
        })
        .collect();
    let hits: Vec<IpAddr> = sum.addrs.iter().map(|(a, _)| *a).collect();
    let hit_rate = v4.iter().filter(|a| table.lookup(**a).is_some()).count();
    eprintln!(
        "table: {} prefixes; random IPv4 sample: {hit_rate} of {N} hit",
        table.len()
    );
    let mut g = c.benchmark_group("lookup");
    g.throughput(Throughput::Elements(N));
    for (name, addrs) in [("ipv4_random", &v4), ("ipv6_random", &v6)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut found = 0u32;
                for a in addrs {
                    found += u32::from(table.lookup(black_box(*a)).is_some());
                }
                found
            })
        });
    }
    g.throughput(Throughput::Elements(hits.len() as u64));
    g.bench_function("known_holders", |b| {
        b.iter(|| {
            let mut found = 0u32;
            for a in &hits {
                found += u32::from(table.lookup(black_box(*a)).is_some());
            }
            found
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
