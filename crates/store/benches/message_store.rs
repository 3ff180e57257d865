//! Message store benchmark: inserts/s in batches of 1000 into a new database and in batches of
//! 5000 into the big one, and queries at `PHAROS_BENCH_ROWS` rows (default 10 million).
//!
//! Run: `cargo bench -p pharos-store` (add `--bench message_store -- <filter>` to pick benches).
//!
//! The big database is built once, through the store's own `insert_batch` in batches of 5000 (the
//! store writer's default group commit), into `target/bench-data/messages-<rows>.db` and reused by
//! later runs when its row count matches (delete the file to rebuild it). Messages are
//! deterministic (a fixed-seed generator), varied like a real feed: 300 NSFs, firewall traffic
//! logs, generic syslog lines, intrusions, DDoS attacks and system alarms, IPv4 and IPv6
//! addresses, ~2000 rule names, ~4 messages per second of event time.
//! `PHAROS_BENCH_ROWS=200000` scales the database down for a quick run.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use pharos_model::ident::{AlarmSeverity, DdosType, IngressAction, Protocol, SystemAlarmCategory};
use pharos_model::{
    DdosEvent, FirewallTrafficLog, GenericLog, IntrusionEvent, Kind, Message, Severity,
    SystemAlarm, Timestamp,
};
use pharos_store::{MessageQuery, MessageStore, SqliteStore};

/// Event-time step between consecutive generated messages (~4 messages/s).
const STEP_MS: i64 = 250;

fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

/// SplitMix64: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Skewed towards small values (a few hot NSFs, rules and victims).
    fn skewed(&mut self, n: u64) -> u64 {
        let a = self.below(n);
        self.below(a + 1)
    }
}

fn internal(r: &mut Rng) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        10,
        r.below(256) as u8,
        r.below(256) as u8,
        r.below(254) as u8 + 1,
    ))
}

fn external(r: &mut Rng) -> IpAddr {
    if r.below(5) == 0 {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            r.below(65536) as u16,
            0,
            0,
            0,
            0,
            r.below(65536) as u16,
        ))
    } else {
        IpAddr::V4(Ipv4Addr::new(
            r.below(223) as u8 + 1,
            r.below(256) as u8,
            r.below(256) as u8,
            r.below(256) as u8,
        ))
    }
}

/// Message number `i` of the generated feed.
fn message(i: u64) -> Message {
    let r = &mut Rng(i.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xDEAD_BEEF);
    let t = t0() + chrono::Duration::milliseconds(i as i64 * STEP_MS + r.below(2000) as i64 - 1000);
    let nsf = format!("fw-{:03}", r.skewed(300));
    let user = r.below(100_000);
    let (kind, severity, text): (Kind, Severity, Option<String>) = match r.below(100) {
        0..45 => {
            let deny = r.below(4) == 0;
            let (src, dst) = if r.below(2) == 0 {
                (internal(r), external(r))
            } else {
                (external(r), internal(r))
            };
            let kind = Kind::FirewallTrafficLog(FirewallTrafficLog {
                src_ip: Some(src),
                dst_ip: Some(dst),
                src_port: Some(1024 + r.below(60000) as u16),
                dst_port: Some([443, 80, 53, 22, 25, 3389][r.below(6) as usize]),
                protocol: Some(if r.below(5) == 0 {
                    Protocol::Udp
                } else {
                    Protocol::Tcp
                }),
                action: Some(if deny {
                    IngressAction::Drop
                } else {
                    IngressAction::Pass
                }),
                sent_bytes: Some(r.below(1_000_000)),
                received_bytes: Some(r.below(10_000_000)),
                policy_name: Some(format!("policy-{}", r.skewed(50))),
                rule_name: Some(format!("fw-rule-{}", r.skewed(1000))),
                session_id: Some(r.next() >> 20),
                duration: Some(r.below(3600) as u32),
                ..Default::default()
            });
            let text = if deny {
                "connection denied by policy"
            } else {
                "session closed normally"
            };
            (kind, Severity::Info, Some(format!("{text} (user{user})")))
        }
        45..70 => {
            let kind = Kind::GenericLog(GenericLog {
                format: Some("rfc5424".into()),
                reason: Some("no normaliser for app".into()),
                app_name: Some("sshd".into()),
            });
            let text = match r.below(3) {
                0 => format!(
                    "Failed password for invalid user user{user} from {} port 22 ssh2",
                    external(r)
                ),
                1 => format!("Accepted publickey for user{user}"),
                _ => "pam_unix(sshd:session): session opened for user root".to_string(),
            };
            (kind, Severity::Info, Some(text))
        }
        70..85 => {
            let kind = Kind::Intrusion(IntrusionEvent {
                src_ip: Some(external(r)),
                src_port: Some(1024 + r.below(60000) as u16),
                dst_ip: Some(internal(r)),
                dst_port: Some(445),
                rule_name: format!("ips-sig-{}", r.skewed(2000)),
                protocol: None,
                app: None,
                attack_type: None,
            });
            let sev = [
                Severity::Low,
                Severity::Middle,
                Severity::High,
                Severity::Critical,
            ][r.below(4) as usize];
            (
                kind,
                sev,
                Some(format!(
                    "IPS signature match: exploit attempt {}",
                    r.below(500)
                )),
            )
        }
        85..90 => {
            let victim = IpAddr::V4(Ipv4Addr::new(192, 0, 2, r.skewed(256) as u8));
            let kind = Kind::Ddos(DdosEvent {
                attack_type: Some(
                    [
                        DdosType::SynFlood,
                        DdosType::UdpFlood,
                        DdosType::DnsAmpFlood,
                    ][r.below(3) as usize],
                ),
                start_time: t,
                end_time: (r.below(2) == 0).then(|| t + chrono::Duration::seconds(300)),
                attack_src_ip: (0..1 + r.below(5)).map(|_| external(r)).collect(),
                attack_dst_ip: vec![victim],
                attack_src_port: vec![],
                attack_dst_port: vec![80],
                rule_name: format!("ddos-{}", r.skewed(20)),
                attack_rate: Some(r.below(10_000_000)),
                attack_throughput: Some(r.below(10_000_000_000)),
            });
            let sev = [Severity::Middle, Severity::High, Severity::Critical][r.below(3) as usize];
            (kind, sev, Some(format!("DDoS attack on {victim}")))
        }
        _ => {
            let usage = 80 + r.below(21) as u8;
            let kind = Kind::SystemAlarm(SystemAlarm {
                alarm_category: Some(SystemAlarmCategory::CpuAlarm),
                severity: Some(AlarmSeverity::High),
                usage: Some(usage),
                threshold: Some(80),
                ..Default::default()
            });
            (
                kind,
                Severity::High,
                Some(format!("CPU usage {usage}% above threshold")),
            )
        }
    };
    let mut m = Message::new(nsf, kind);
    m.common.event_time = t;
    m.common.receive_time = t + chrono::Duration::milliseconds(r.below(500) as i64);
    m.common.severity = severity;
    m.common.message = text;
    m.common.source = Some(format!("syslog-udp:10.255.0.{}", r.below(200)));
    m
}

fn rows() -> u64 {
    std::env::var("PHAROS_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000)
}

fn data_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn file_bytes(path: &std::path::Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .map(|sfx| {
            std::fs::metadata(format!("{}{sfx}", path.display()))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum()
}

/// The big database, built on first use and reused after.
fn big_store() -> (SqliteStore, u64) {
    let n = rows();
    let path = data_dir().join(format!("messages-{n}.db"));
    if path.exists() {
        let start = Instant::now();
        let store = SqliteStore::open(&path).unwrap();
        // Long only when a schema migration ran.
        eprintln!(
            "opened {} in {:.1} s",
            path.display(),
            start.elapsed().as_secs_f64()
        );
        if store.count().unwrap() == n {
            eprintln!(
                "reusing {} ({n} rows, {} bytes)",
                path.display(),
                file_bytes(&path)
            );
            return (store, n);
        }
        drop(store);
        for sfx in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{sfx}", path.display()));
        }
    }
    eprintln!(
        "building {} with {n} rows in batches of {BUILD_BATCH} (the daemon writer's default max_batch; once; reused by later runs)",
        path.display()
    );
    let store = SqliteStore::open(&path).unwrap();
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        let mut batch: Vec<Message> = (i..(i + BUILD_BATCH).min(n)).map(message).collect();
        store.insert_batch(&mut batch).unwrap();
        i += batch.len() as u64;
        if i % 500_000 == 0 {
            let s = start.elapsed().as_secs_f64();
            eprintln!("  {i} rows, {s:.0} s, {:.0} rows/s", i as f64 / s);
        }
    }
    let s = start.elapsed().as_secs_f64();
    eprintln!(
        "built {n} rows in {s:.0} s: {:.0} inserts/s including generation and encoding",
        n as f64 / s
    );
    (store, n)
}

/// Messages per transaction when building the query database: the store writer's default
/// `max_batch` (group commit), which is what a loaded daemon does.
const BUILD_BATCH: u64 = 5000;

fn bench_insert(c: &mut Criterion) {
    let start = Instant::now();
    let msgs: Vec<Message> = (0..10_000).map(message).collect();
    let gen_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let jsons: Vec<String> = msgs.iter().map(pharos_model::json::encode_string).collect();
    let enc_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    for j in &jsons {
        black_box(pharos_model::json::decode_str(j).unwrap());
    }
    let dec_s = start.elapsed().as_secs_f64();
    let avg = jsons.iter().map(String::len).sum::<usize>() / jsons.len();
    eprintln!(
        "per message: generate {:.1} µs, json encode {:.1} µs, json decode {:.1} µs, json {avg} bytes",
        gen_s * 100.0,
        enc_s * 100.0,
        dec_s * 100.0
    );
    let path = data_dir().join("insert-bench.db");
    for sfx in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{sfx}", path.display()));
    }
    let store = SqliteStore::open(&path).unwrap();
    let mut g = c.benchmark_group("insert");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(1000));
    let mut next = 0u64;
    g.bench_function("batch_of_1000", |b| {
        b.iter_batched(
            || {
                let batch: Vec<Message> = (next..next + 1000).map(message).collect();
                next += 1000;
                batch
            },
            |mut batch| store.insert_batch(&mut batch).unwrap(),
            BatchSize::PerIteration,
        )
    });
    g.finish();
    let n = store.count().unwrap();
    eprintln!(
        "insert bench db: {n} rows, {} bytes/message",
        file_bytes(&path) / n.max(1)
    );
}

fn bench_queries(c: &mut Criterion) {
    let (store, n) = big_store();
    let path = data_dir().join(format!("messages-{n}.db"));
    eprintln!("db bytes per message: {}", file_bytes(&path) / n.max(1));
    let mid = t0() + chrono::Duration::milliseconds(n as i64 * STEP_MS / 2);
    let base = MessageQuery {
        limit: 100,
        ..Default::default()
    };
    let queries: Vec<(&str, MessageQuery)> = vec![
        ("newest_page", base.clone()),
        (
            "time_range_1h_page",
            MessageQuery {
                from: Some(mid),
                to: Some(mid + chrono::Duration::hours(1)),
                ..base.clone()
            },
        ),
        (
            "kind_ddos_min_severity_high",
            MessageQuery {
                kinds: vec!["ddos".into()],
                min_severity: Some(Severity::High),
                ..base.clone()
            },
        ),
        (
            "kind_alarm_or_ddos_critical",
            MessageQuery {
                kinds: vec!["system-alarm".into(), "ddos".into()],
                min_severity: Some(Severity::Critical),
                ..base.clone()
            },
        ),
        (
            "nsf_exact",
            MessageQuery {
                nsf: Some("fw-250".into()),
                ..base.clone()
            },
        ),
        (
            "addr_prefix_v4_16",
            MessageQuery {
                addr: Some("10.42.0.0/16".parse().unwrap()),
                ..base.clone()
            },
        ),
        (
            "addr_host_v4_victim",
            MessageQuery {
                dst: Some("192.0.2.3/32".parse().unwrap()),
                ..base.clone()
            },
        ),
        (
            "addr_prefix_v6_48",
            MessageQuery {
                addr: Some("2001:db8:1234::/48".parse().unwrap()),
                ..base.clone()
            },
        ),
        (
            "rule_exact",
            MessageQuery {
                rule: Some("ips-sig-1500".into()),
                ..base.clone()
            },
        ),
        (
            "text_common",
            MessageQuery {
                text: Some("DENIED".into()),
                ..base.clone()
            },
        ),
        (
            "text_rare_in_1h",
            MessageQuery {
                text: Some("user4242".into()),
                from: Some(mid),
                to: Some(mid + chrono::Duration::hours(1)),
                ..base.clone()
            },
        ),
        (
            "state_open_critical",
            MessageQuery {
                state: Some(pharos_model::EventState::Open),
                min_severity: Some(Severity::Critical),
                ..base.clone()
            },
        ),
    ];
    let mut g = c.benchmark_group(format!("query_{n}_rows"));
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (name, q) in &queries {
        let hits = store.query(q).unwrap().items.len();
        eprintln!("{name}: first page has {hits} rows");
        g.bench_function(*name, |b| {
            b.iter(|| black_box(store.query(black_box(q)).unwrap()))
        });
    }
    // Next page via cursor: page 2 of the time range, and a page 50 pages deep in the newest list.
    let range = &queries[1].1;
    let page2 = MessageQuery {
        cursor: store.query(range).unwrap().next_cursor,
        ..range.clone()
    };
    g.bench_function("time_range_1h_next_page", |b| {
        b.iter(|| black_box(store.query(black_box(&page2)).unwrap()))
    });
    let mut deep = base.clone();
    for _ in 0..50 {
        deep.cursor = store.query(&deep).unwrap().next_cursor;
    }
    g.bench_function("newest_page_51_via_cursor", |b| {
        b.iter(|| black_box(store.query(black_box(&deep)).unwrap()))
    });
    g.bench_function("get_by_id", |b| {
        let mut id = 0;
        b.iter(|| {
            id = id % n + 1;
            black_box(store.get(id).unwrap())
        })
    });
    g.finish();

    // A rare substring with no other filter reads every row (no text index): seconds at 10M
    // rows, too slow for criterion's ten samples, so it is timed here, twice (the second run
    // finds the database in the page cache).
    let rare = MessageQuery {
        text: Some("user4242)".into()),
        ..base.clone()
    };
    for run in 1..=2 {
        let start = Instant::now();
        let hits = store.query(&rare).unwrap().items.len();
        eprintln!(
            "text_rare (full scan, {n} rows), run {run}: {:.2} s, {hits} rows",
            start.elapsed().as_secs_f64()
        );
    }
}

/// Appends batches of [`BUILD_BATCH`] to the big database (inserts/s at its scale, where the
/// indexes no longer fit in the cache), then deletes them so the database keeps its row count.
fn bench_insert_at_scale(c: &mut Criterion) {
    let (store, n) = big_store();
    let mut g = c.benchmark_group(format!("insert_at_{n}_rows"));
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(BUILD_BATCH));
    let mut next = n;
    g.bench_function(format!("batch_of_{BUILD_BATCH}"), |b| {
        b.iter_batched(
            || {
                let batch: Vec<Message> = (next..next + BUILD_BATCH).map(message).collect();
                next += BUILD_BATCH;
                batch
            },
            |mut batch| store.insert_batch(&mut batch).unwrap(),
            BatchSize::PerIteration,
        )
    });
    g.finish();
    drop(store);
    let path = data_dir().join(format!("messages-{n}.db"));
    let conn = rusqlite::Connection::open(&path).unwrap();
    let added = conn
        .execute(
            "DELETE FROM message_addrs WHERE message_id > ?1",
            [n as i64],
        )
        .unwrap();
    let removed = conn
        .execute("DELETE FROM messages WHERE id > ?1", [n as i64])
        .unwrap();
    eprintln!(
        "removed the {removed} appended messages ({added} address rows); the database is back to {n} rows"
    );
}

criterion_group!(benches, bench_insert, bench_queries, bench_insert_at_scale);
criterion_main!(benches);
