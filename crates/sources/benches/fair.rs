//! Cost per message of the syslog listeners' fair-share check (`syslog::fair::SenderLimiter`):
//! one sender, and 10,000 senders in turn under pressure.
//!
//! `cargo bench -p pharos-sources --bench fair`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pharos_sources::syslog::fair::{MAX_SENDERS, SenderLimiter};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("fair_check");
    g.throughput(Throughput::Elements(1));
    let one = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let l = SenderLimiter::new(10_000, MAX_SENDERS);
    g.bench_function("one_sender", |b| {
        b.iter(|| black_box(l.check(black_box(one), false, Instant::now())))
    });
    let many: Vec<IpAddr> = (0..10_000u32)
        .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)))
        .collect();
    let l = SenderLimiter::new(10_000, MAX_SENDERS);
    let mut i = 0;
    g.bench_function("10k_senders_under_pressure", |b| {
        b.iter(|| {
            i = (i + 1) % many.len();
            black_box(l.check(black_box(many[i]), true, Instant::now()))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
