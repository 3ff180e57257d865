//! Lines per second per core on the bench's vendor mix, measured in thread CPU time
//! (`/proc/thread-self/schedstat`), so that other processes on a shared machine do not count.
//!
//! Run: `cargo run --release -p pharos-normalize --example throughput [-- MODE] [ROUNDS]` where
//! MODE is
//! - `normalize` (default): auto-detection + normalisation of the text after the syslog header;
//! - `header`: syslog header parse (`pharos_wire::syslog::parse`) + normalisation of full syslog
//!   lines (the same records with the header each vendor sends in front), end to end per core;
//! - `per-line [WORD]`: CPU time per line of each record of the mix (only those containing WORD
//!   when given), normalisation only.
//!
//! ROUNDS is the number of passes over the 20-line mix (default 50,000: 1,000,000 lines).

use pharos_normalize::{Format, LogInput, normalize};
use pharos_wire::syslog::ParseOptions;

include!("../benches/common/mix.rs");
include!("../benches/common/header.rs");

/// Nanoseconds this thread has run on a CPU (Linux), if readable.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Runs `f` and prints lines/s in wall-clock and thread CPU time; `f` returns the parsed count.
fn timed(label: &str, n: u64, f: impl FnOnce() -> u64) {
    let (cpu0, wall0) = (cpu_ns(), std::time::Instant::now());
    let parsed = f();
    let wall = wall0.elapsed().as_secs_f64();
    assert_eq!(parsed, n, "every line of the mix must parse");
    println!(
        "{label}: {n} lines in {wall:.2} s wall: {:.0} lines/s (wall clock)",
        n as f64 / wall
    );
    if let (Some(a), Some(b)) = (cpu0, cpu_ns()) {
        let cpu = (b - a) as f64 / 1e9;
        println!(
            "{label}: {n} lines in {cpu:.2} s of CPU: {:.0} lines/s per core ({:.2} µs per line)",
            n as f64 / cpu,
            cpu * 1e6 / n as f64
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut words = args.iter().filter(|a| a.parse::<u64>().is_err());
    let mode = words.next().map_or("normalize", String::as_str);
    // per-line: only the records whose text contains this word (for profiling one vendor)
    let only = words.next().map_or("", String::as_str);
    let rounds: u64 = args.iter().find_map(|a| a.parse().ok()).unwrap_or(50_000);
    let lines = mix();
    let n = rounds * lines.len() as u64;
    match mode {
        "normalize" => timed("normalize", n, || {
            let mut parsed = 0u64;
            for _ in 0..rounds {
                for (text, app) in &lines {
                    let mut input = LogInput::line(text);
                    input.app_name = *app;
                    let out = normalize(std::hint::black_box(&input), Format::Auto, "fw1");
                    parsed += u64::from(std::hint::black_box(out).parsed);
                }
            }
            parsed
        }),
        "header" => {
            let full = syslog_mix();
            let opts = ParseOptions::new(chrono::Utc::now());
            timed("header+normalize", n, || {
                let mut parsed = 0u64;
                for _ in 0..rounds {
                    for line in &full {
                        let input = parse_header(std::hint::black_box(line), &opts);
                        let out = normalize(&input, Format::Auto, "fw1");
                        parsed += u64::from(std::hint::black_box(out).parsed);
                    }
                }
                parsed
            });
        }
        "per-line" => {
            let mut seen = Vec::new();
            for (text, app) in &lines {
                if seen.contains(text) || !text.contains(only) {
                    continue;
                }
                seen.push(*text);
                let (cpu0, _) = (cpu_ns(), ());
                for _ in 0..rounds {
                    let mut input = LogInput::line(text);
                    input.app_name = *app;
                    let out = normalize(std::hint::black_box(&input), Format::Auto, "fw1");
                    assert!(std::hint::black_box(out).parsed);
                }
                if let (Some(a), Some(b)) = (cpu0, cpu_ns()) {
                    let mut input = LogInput::line(text);
                    input.app_name = *app;
                    let format = normalize(&input, Format::Auto, "x").format;
                    println!(
                        "{:>8.2} µs  {format:<14} {:>4} B  {}",
                        (b - a) as f64 / 1e3 / rounds as f64,
                        text.len(),
                        text.get(..48).unwrap_or(text)
                    );
                }
            }
        }
        other => {
            eprintln!("unknown mode {other:?}: expected normalize, header or per-line");
            std::process::exit(2);
        }
    }
}
