//! Lines per second for auto-detection + vendor parsing + building the I2NSF message, on a
//! realistic mix of vendors: `vendor_mix_auto` with the syslog header already split off (as the
//! syslog source hands it over), `vendor_mix_with_header` on the same records as full syslog
//! lines, header parse (`pharos_wire::syslog::parse`) included; `corpus_with_header` on every
//! input line of the labelled dev set in `../shared/corpora/vendor-logs/elastic-pipeline-tests`
//! (read at run time: put `../shared` beside the repository or set `PHAROS_SHARED`), and
//! `samples_with_header` on our own sample lines (`testdata/vendor-logs`).
//!
//! The mix, per 20 lines: 6 FortiGate traffic, 1 FortiGate IPS, 1 FortiGate virus, 2 PAN-OS
//! TRAFFIC, 1 PAN-OS THREAT, 3 Cisco ASA (built, teardown, deny), 1 Check Point, 1 netfilter, 1
//! pfSense filterlog, 1 Suricata EVE alert, 1 sshd, 1 ModSecurity.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pharos_normalize::{Format, LogInput, normalize};
use pharos_wire::syslog::ParseOptions;

include!("common/mix.rs");
include!("common/header.rs");
include!("common/corpus.rs");

use std::path::{Path, PathBuf};

fn bench(c: &mut Criterion) {
    let lines = mix();
    // every line of the mix must parse, or the figure would measure the fallback path
    for (text, app) in &lines {
        let mut input = LogInput::line(text);
        input.app_name = *app;
        assert!(normalize(&input, Format::Auto, "fw1").parsed, "{text}");
    }
    let mut g = c.benchmark_group("normalize");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("vendor_mix_auto", |b| {
        b.iter(|| {
            for (text, app) in &lines {
                let mut input = LogInput::line(text);
                input.app_name = *app;
                let n = normalize(std::hint::black_box(&input), Format::Auto, "fw1");
                std::hint::black_box(n);
            }
        })
    });
    let full = syslog_mix();
    let opts = ParseOptions::new(chrono::Utc::now());
    for line in &full {
        assert!(
            normalize(&parse_header(line, &opts), Format::Auto, "fw1").parsed,
            "{line}"
        );
    }
    g.bench_function("vendor_mix_with_header", |b| {
        b.iter(|| {
            for line in &full {
                let input = parse_header(std::hint::black_box(line), &opts);
                std::hint::black_box(normalize(&input, Format::Auto, "fw1"));
            }
        })
    });
    // the labelled dev set's real vendor lines (../shared; read at run time), header included
    let corpus = corpus_lines();
    g.throughput(Throughput::Elements(corpus.len() as u64));
    g.bench_function("corpus_with_header", |b| {
        b.iter(|| {
            for line in &corpus {
                let input = parse_header(std::hint::black_box(line), &opts);
                std::hint::black_box(normalize(&input, Format::Auto, "fw1"));
            }
        })
    });
    // our own sample lines (testdata/vendor-logs): every format, every table row family
    let samples = sample_lines();
    g.throughput(Throughput::Elements(samples.len() as u64));
    g.bench_function("samples_with_header", |b| {
        b.iter(|| {
            for line in &samples {
                let input = parse_header(std::hint::black_box(line), &opts);
                std::hint::black_box(normalize(&input, Format::Auto, "fw1"));
            }
        })
    });
    for (name, text, app) in [
        ("fortigate_traffic", FGT_TRAFFIC, None),
        ("panos_traffic", PAN_TRAFFIC, None),
        ("cisco_asa_teardown", ASA_TEARDOWN, None),
        ("suricata_eve_alert", EVE, Some("suricata")),
        ("sshd_failed", SSHD, Some("sshd")),
    ] {
        g.throughput(Throughput::Elements(1));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut input = LogInput::line(text);
                input.app_name = app;
                std::hint::black_box(normalize(std::hint::black_box(&input), Format::Auto, "fw1"))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
