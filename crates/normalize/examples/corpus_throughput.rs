//! Lines per second per core, header parse + normalisation, on real vendor lines: the labelled
//! dev set `../shared/corpora/vendor-logs/elastic-pipeline-tests` (every input line of every
//! package, read at run time, never copied into the repository) or our own samples
//! (`testdata/vendor-logs/*.jsonl`). Measured in thread CPU time (`/proc/thread-self/schedstat`)
//! so that other processes on a shared machine do not count. It uses only the crate's public API,
//! so the same file measures an older commit side by side (docs/PERFORMANCE.md).
//!
//! Run: `cargo run --release -p pharos-normalize --example corpus_throughput [-- corpus|samples]
//! [LINES]` (default: corpus, 1,000,000 lines: the set repeated).

use std::path::{Path, PathBuf};

use pharos_normalize::{Format, normalize};
use pharos_wire::syslog::ParseOptions;

/// Nanoseconds this thread has run on a CPU (Linux), if readable.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

include!("../benches/common/corpus.rs");
include!("../benches/common/header.rs");

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args
        .iter()
        .find(|a| a.parse::<u64>().is_err())
        .map_or("corpus", String::as_str);
    let want: usize = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let lines = match mode {
        "samples" => sample_lines(),
        _ => corpus_lines(),
    };
    let opts = ParseOptions::new(chrono::Utc::now());
    let rounds = want.div_ceil(lines.len()).max(1);
    let n = rounds * lines.len();
    let (cpu0, wall0) = (cpu_ns(), std::time::Instant::now());
    let mut parsed = 0usize;
    for _ in 0..rounds {
        for line in &lines {
            let input = parse_header(std::hint::black_box(line), &opts);
            let out = normalize(&input, Format::Auto, "fw1");
            parsed += usize::from(out.parsed);
            std::hint::black_box(out);
        }
    }
    let wall = wall0.elapsed().as_secs_f64();
    println!(
        "{mode}: {} distinct lines x {rounds} = {n} lines, {:.1} % parsed, {:.0} lines/s wall clock",
        lines.len(),
        parsed as f64 * 100.0 / n as f64,
        n as f64 / wall
    );
    if let (Some(a), Some(b)) = (cpu0, cpu_ns()) {
        let cpu = (b - a) as f64 / 1e9;
        println!(
            "{mode}: {:.0} lines/s per core ({:.2} µs per line, thread CPU time)",
            n as f64 / cpu,
            cpu * 1e6 / n as f64
        );
    }
}
