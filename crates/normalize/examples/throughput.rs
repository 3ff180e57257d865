//! Lines per second per core on the bench's vendor mix, measured in thread CPU time
//! (`/proc/thread-self/schedstat`), so that other processes on a shared machine do not count.
//! Run: `cargo run --release -p pharos-normalize --example throughput`.

use pharos_normalize::{Format, LogInput, normalize};

include!("../benches/common/mix.rs");

/// Nanoseconds this thread has run on a CPU (Linux), if readable.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn main() {
    let lines = mix();
    let rounds = 50_000u64;
    let (cpu0, wall0) = (cpu_ns(), std::time::Instant::now());
    let mut parsed = 0u64;
    for _ in 0..rounds {
        for (text, app) in &lines {
            let mut input = LogInput::line(text);
            input.app_name = *app;
            parsed +=
                u64::from(std::hint::black_box(normalize(&input, Format::Auto, "fw1")).parsed);
        }
    }
    let wall = wall0.elapsed().as_secs_f64();
    let n = rounds * lines.len() as u64;
    assert_eq!(parsed, n);
    println!(
        "{n} lines in {wall:.2} s wall: {:.0} lines/s (wall clock)",
        n as f64 / wall
    );
    if let (Some(a), Some(b)) = (cpu0, cpu_ns()) {
        let cpu = (b - a) as f64 / 1e9;
        println!(
            "{n} lines in {cpu:.2} s of CPU: {:.0} lines/s per core",
            n as f64 / cpu
        );
    }
}
