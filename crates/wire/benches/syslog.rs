//! Syslog header parsing throughput on a realistic mix of RFC 5424 and RFC 3164 lines.
//!
//! `cargo bench -p pharos-wire --bench syslog`; figures in docs/PERFORMANCE.md. The peer,
//! `syslog_loose`, is measured on the same lines in the same run.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pharos_wire::syslog::{ParseOptions, TimeZone, parse};
use std::hint::black_box;

/// The mix: 5424 with and without structured data, BSD lines from Linux, firewalls (FortiGate,
/// ASA, PAN-OS, iptables), Cisco IOS with sequence numbers, and headerless lines.
const LINES: &[&str] = &[
    "<34>1 2026-11-24T14:00:00.123456Z fw1.example.net sshd 4242 AUTH - Failed password for root from 203.0.113.7 port 51022 ssh2",
    "<165>1 2026-11-24T14:00:01.003+01:00 mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"] \u{feff}An application event log entry",
    "<14>1 2026-11-24T14:00:02Z suricata01 suricata 1234 - [meta sequenceId=\"77\"] {\"event_type\":\"alert\",\"src_ip\":\"198.51.100.4\",\"dest_ip\":\"192.0.2.10\",\"alert\":{\"signature_id\":2010935}}",
    "<38>Nov 24 14:00:03 bastion sshd[31738]: Accepted publickey for deploy from 192.0.2.33 port 40112 ssh2: ED25519 SHA256:abcdef",
    "<189>Nov 24 14:00:04 fgt01 date=2026-11-24 time=14:00:04 devname=\"fgt01\" devid=\"FG100E\" logid=\"0000000013\" type=\"traffic\" subtype=\"forward\" level=\"notice\" srcip=10.0.0.5 srcport=51515 dstip=93.184.216.34 dstport=443 action=\"close\"",
    "<166>Nov 24 2026 14:00:05 asa-edge : %ASA-6-302013: Built inbound TCP connection 4711 for outside:203.0.113.9/51000 (203.0.113.9/51000) to inside:10.1.1.5/443 (10.1.1.5/443)",
    "<14>Nov 24 14:00:06 pa-fw1 1,2026/11/24 14:00:06,012801096514,TRAFFIC,end,2561,2026/11/24 14:00:06,10.0.0.10,8.8.8.8,0.0.0.0,0.0.0.0,allow-dns,,,dns,vsys1,trust,untrust",
    "<4>Nov 24 14:00:07 gw kernel: [12345.678901] IN=eth0 OUT= MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 SRC=198.51.100.23 DST=192.0.2.1 LEN=60 PROTO=TCP SPT=44321 DPT=22 SYN",
    "<189>000123: *Nov 24 14:00:08.123 UTC: %SEC-6-IPACCESSLOGP: list 101 denied tcp 192.0.2.77(1234) -> 10.0.0.1(23), 1 packet",
    "<13>Nov 24 14:00:09 host1 CRON[2213]: (root) CMD (run-parts /etc/cron.hourly)",
];

fn bench(c: &mut Criterion) {
    let opts = ParseOptions {
        tz: TimeZone::Utc,
        received: chrono::Utc::now(),
        year_margin: pharos_wire::syslog::DEFAULT_YEAR_MARGIN,
    };
    let bytes: usize = LINES.iter().map(|l| l.len()).sum();
    let mut g = c.benchmark_group("syslog_header");
    g.throughput(Throughput::Elements(LINES.len() as u64));
    g.bench_function("mix_10_lines", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for l in LINES {
                let m = parse(black_box(l), &opts);
                n += m.msg.len() + usize::from(m.timestamp.is_some());
            }
            black_box(n)
        })
    });
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("mix_10_lines_bytes", |b| {
        b.iter(|| {
            for l in LINES {
                black_box(parse(black_box(l), &opts));
            }
        })
    });
    g.finish();

    // The peer, measured in the same run: syslog_loose 0.23 (Vector's parser), year and zone given.
    let utc = chrono::FixedOffset::east_opt(0).expect("zero offset");
    let mut g = c.benchmark_group("syslog_loose");
    g.throughput(Throughput::Elements(LINES.len() as u64));
    g.bench_function("mix_10_lines", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for l in LINES {
                let m = syslog_loose::parse_message_with_year_tz(
                    black_box(l),
                    |_| 2026,
                    Some(utc),
                    syslog_loose::Variant::Either,
                );
                n += m.msg.len() + usize::from(m.timestamp.is_some());
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
