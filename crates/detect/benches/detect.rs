//! Detector throughput on realistic batches: 30,000 monitored hosts (IPv4 and IPv6), mixed
//! background classes (web, DNS, NTP clients, ICMP, ssh), plus a SYN flood and an NTP reflection
//! under way, so the attack path (sketches) runs too. 20 s of traffic at 50,000 flows/s, in
//! batches of 5,000 flows (a tenth of a second each); the clock advances with the data, so the
//! once-a-second threshold evaluation over every host is included. Time is the thread's CPU
//! time (the machine is shared): the figures are flows per second per core.
//!
//! The `detect_1m_per_s` group runs both detectors over the same mix at 1,000,000 flows/s (4 s in
//! batches of 10,000 flows, a hundredth of a second each): the per-second work over every host is
//! then spread over 20 times more flows, as at the rates the throughput goal is about.
//!
//! `cargo bench -p pharos-detect`

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use pharos_detect::synth::mixed_traffic;
use pharos_detect::{DdosConfig, DdosDetector, DetectConfig, Detector, ScanConfig, ScanDetector};
use pharos_model::flow::FlowBatch;
use std::time::Duration;

const T0: u64 = 1_767_225_600_000;
const SECS: u64 = 20;
const PER_SEC: usize = 50_000;
const SLICES: u64 = 10;

fn ddos_config() -> DdosConfig {
    DdosConfig {
        networks: vec!["10.0.0.0/16".into(), "2001:db8::/64".into()],
        ..Default::default()
    }
}

/// CPU time of this thread: the machine is shared, and the goal is flows per second per core.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs `f` over every batch, `iters` times, timing only `f` (thread CPU time); timestamps move
/// on each round.
fn timed(
    batches: &mut [(u64, FlowBatch)],
    secs: u64,
    round: &mut u64,
    iters: u64,
    mut f: impl FnMut(&FlowBatch, u64),
) -> Duration {
    let mut spent = Duration::ZERO;
    let shift = secs * 1000;
    for _ in 0..iters {
        for (now, b) in batches.iter() {
            let t = thread_cpu();
            f(b, now + *round * shift);
            spent += thread_cpu().saturating_sub(t);
        }
        *round += 1;
        for (_, b) in batches.iter_mut() {
            b.start_ms.iter_mut().for_each(|x| *x += shift);
            b.end_ms.iter_mut().for_each(|x| *x += shift);
        }
    }
    spent
}

/// Benchmarks `f` over clones of `batches`.
fn bench_one(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    batches: &[(u64, FlowBatch)],
    secs: u64,
    mut f: impl FnMut(&FlowBatch, u64),
) {
    let mut batches = batches.to_vec();
    let mut round = 0;
    g.bench_function(name, |bch| {
        bch.iter_custom(|iters| timed(&mut batches, secs, &mut round, iters, &mut f))
    });
}

/// The DDoS detector alone, then both detectors (what `pharos run` does), over `batches`.
fn bench_ddos_and_both(
    g: &mut BenchmarkGroup<'_, WallTime>,
    batches: &[(u64, FlowBatch)],
    secs: u64,
) {
    let mut d = DdosDetector::new(ddos_config()).unwrap();
    let mut out = Vec::new();
    bench_one(g, "ddos_30k_hosts_mixed", batches, secs, |b, now| {
        d.process(b, now, &mut out);
        out.clear();
    });
    let cfg = DetectConfig {
        ddos: ddos_config(),
        scan: ScanConfig::default(),
    };
    let mut d = Detector::new(cfg).unwrap();
    let mut out = Vec::new();
    bench_one(g, "ddos_and_scan", batches, secs, |b, now| {
        d.process(b, now, &mut out);
        out.clear();
    });
}

fn bench(c: &mut Criterion) {
    let batches = mixed_traffic(T0, SECS, PER_SEC, SLICES);
    let flows: usize = batches.iter().map(|(_, b)| b.len()).sum();
    let mut g = c.benchmark_group("detect");
    g.throughput(Throughput::Elements(flows as u64));
    g.sample_size(10);
    bench_ddos_and_both(&mut g, &batches, SECS);
    let mut d = ScanDetector::new(ScanConfig::default()).unwrap();
    let mut out = Vec::new();
    bench_one(&mut g, "scan_mixed", &batches, SECS, |b, now| {
        d.process(b, now, &mut out);
        out.clear();
    });
    g.finish();
    drop(batches);

    const SECS_HI: u64 = 4;
    let batches = mixed_traffic(T0, SECS_HI, 1_000_000, 100);
    let flows: usize = batches.iter().map(|(_, b)| b.len()).sum();
    let mut g = c.benchmark_group("detect_1m_per_s");
    g.throughput(Throughput::Elements(flows as u64));
    g.sample_size(10);
    bench_ddos_and_both(&mut g, &batches, SECS_HI);
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
