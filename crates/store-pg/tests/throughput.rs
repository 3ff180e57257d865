//! Throughput of the PostgreSQL store beside SQLite's on the same machine and data: messages/s
//! inserted in batches of 1,000 (fsynced: PostgreSQL with its durable defaults, SQLite with
//! `synchronous=FULL`), query latency for pages of 100 over the result (median of 15 runs),
//! retention. Ignored by default (minutes, and a figure, not a check).
//!
//! Run (figures in docs/postgresql.md):
//! `PHAROS_BENCH_ROWS=100000 cargo nextest run -p pharos-store-pg --release --run-ignored only --no-capture throughput`
//!
//! The messages are the SQLite bench's (crates/store/benches/message_store.rs, copied below):
//! 300 NSFs, firewall logs, syslog lines, intrusions, DDoS events and alarms, IPv4 and IPv6.

mod server;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use pharos_model::ident::{AlarmSeverity, DdosType, IngressAction, Protocol, SystemAlarmCategory};
use pharos_model::{
    DdosEvent, FirewallTrafficLog, GenericLog, IntrusionEvent, Kind, Message, Severity,
    SystemAlarm, Timestamp,
};
use pharos_store::{MessageQuery, MessageStore, SqliteStore};
use pharos_store_pg::PgStore;

// ---- the generator of crates/store/benches/message_store.rs (keep in step) -------------------

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

// ---- the measurement -------------------------------------------------------------------------

fn rows() -> u64 {
    std::env::var("PHAROS_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

const BATCH: u64 = 1000;
const RUNS: usize = 15;

/// Inserts `n` messages in batches of [`BATCH`]; returns messages/s (generation not counted).
fn insert(store: &dyn MessageStore, n: u64) -> f64 {
    let mut spent = Duration::ZERO;
    let mut i = 0;
    while i < n {
        let mut batch: Vec<Message> = (i..(i + BATCH).min(n)).map(message).collect();
        let start = Instant::now();
        store.insert_batch(&mut batch).unwrap();
        spent += start.elapsed();
        i += batch.len() as u64;
    }
    n as f64 / spent.as_secs_f64()
}

/// The queries of the SQLite bench, pages of 100.
fn queries(n: u64) -> Vec<(&'static str, MessageQuery)> {
    let mid = t0() + chrono::Duration::milliseconds(n as i64 * STEP_MS / 2);
    let base = MessageQuery {
        limit: 100,
        ..Default::default()
    };
    vec![
        ("newest page, no filter", base.clone()),
        (
            "time range 1 h",
            MessageQuery {
                from: Some(mid),
                to: Some(mid + chrono::Duration::hours(1)),
                ..base.clone()
            },
        ),
        (
            "kind ddos + min severity high",
            MessageQuery {
                kinds: vec!["ddos".into()],
                min_severity: Some(Severity::High),
                ..base.clone()
            },
        ),
        (
            "kinds alarm or ddos + critical",
            MessageQuery {
                kinds: vec!["system-alarm".into(), "ddos".into()],
                min_severity: Some(Severity::Critical),
                ..base.clone()
            },
        ),
        (
            "NSF exact",
            MessageQuery {
                nsf: Some("fw-250".into()),
                ..base.clone()
            },
        ),
        (
            "rule exact",
            MessageQuery {
                rule: Some("ips-sig-1500".into()),
                ..base.clone()
            },
        ),
        (
            "state open + critical",
            MessageQuery {
                state: Some(pharos_model::EventState::Open),
                min_severity: Some(Severity::Critical),
                ..base.clone()
            },
        ),
        (
            "address prefix v4 /16, both roles",
            MessageQuery {
                addr: Some("10.42.0.0/16".parse().unwrap()),
                ..base.clone()
            },
        ),
        (
            "destination host /32 (a DDoS victim)",
            MessageQuery {
                dst: Some("192.0.2.3/32".parse().unwrap()),
                ..base.clone()
            },
        ),
        (
            "address prefix v6 /48",
            MessageQuery {
                addr: Some("2001:db8:1234::/48".parse().unwrap()),
                ..base.clone()
            },
        ),
        (
            "text substring, common (DENIED)",
            MessageQuery {
                text: Some("DENIED".into()),
                ..base.clone()
            },
        ),
        (
            "text substring, rare, within 1 h",
            MessageQuery {
                text: Some("user4242".into()),
                from: Some(mid),
                to: Some(mid + chrono::Duration::hours(1)),
                ..base.clone()
            },
        ),
        (
            "text substring, rare, no other filter",
            MessageQuery {
                text: Some("user4242)".into()),
                ..base.clone()
            },
        ),
    ]
}

/// Median of [`RUNS`] runs of `q` after one warm-up, in ms; and the rows of its first page.
fn latency(store: &dyn MessageStore, q: &MessageQuery) -> (f64, usize) {
    let hits = store.query(q).unwrap().items.len();
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(store.query(q).unwrap());
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[RUNS / 2], hits)
}

#[test]
#[ignore = "a measurement of minutes; run it by name with --run-ignored only"]
fn throughput() {
    let Some(server) = server::PgServer::start_durable() else {
        return;
    };
    let n = rows();
    let dir = tempfile::tempdir().unwrap();
    let lite = SqliteStore::open(&dir.path().join("messages.db")).unwrap();
    let pg = PgStore::connect(&server.url()).unwrap();
    let stores: [(&str, &dyn MessageStore); 2] = [("SQLite", &lite), ("PostgreSQL", &pg)];
    let mut inserts = Vec::new();
    for (name, s) in stores {
        let rate = insert(s, n);
        eprintln!("{name}: {n} messages in batches of {BATCH}: {rate:.0} messages/s");
        inserts.push(rate);
    }
    // What autovacuum would do shortly after a load like this; planned on statistics.
    server.client("postgres").batch_execute("ANALYZE").unwrap();
    println!("\n| {n} messages | SQLite | PostgreSQL |\n|---|---|---|");
    println!(
        "| insert_batch of {BATCH}, fsynced | {:.0} messages/s | {:.0} messages/s |",
        inserts[0], inserts[1]
    );
    for (name, q) in queries(n) {
        let (a, ha) = latency(&lite, &q);
        let (b, hb) = latency(&pg, &q);
        assert_eq!(ha, hb, "{name}: both stores find the same rows");
        println!("| {name} ({ha} rows) | {a:.2} ms | {b:.2} ms |");
    }
    let range = &queries(n)[1].1;
    let (a, _) = latency(
        &lite,
        &MessageQuery {
            cursor: lite.query(range).unwrap().next_cursor,
            ..range.clone()
        },
    );
    let (b, _) = latency(
        &pg,
        &MessageQuery {
            cursor: pg.query(range).unwrap().next_cursor,
            ..range.clone()
        },
    );
    println!("| time range 1 h, next page via cursor | {a:.2} ms | {b:.2} ms |");
    let get = |s: &dyn MessageStore| {
        let start = Instant::now();
        for id in (1..=n).step_by((n / 1000).max(1) as usize).take(1000) {
            std::hint::black_box(s.get(id).unwrap());
        }
        start.elapsed().as_secs_f64() * 1000.0 / 1000.0
    };
    println!("| get by id | {:.3} ms | {:.3} ms |", get(&lite), get(&pg));
    let feed = |s: &dyn MessageStore| {
        let start = Instant::now();
        let mut after = 0;
        let mut read = 0;
        while read < 10_000 {
            let e = s.changes(after, 1000).unwrap();
            after = e.last().map(|x| x.0).unwrap_or(after);
            read += e.len();
        }
        read as f64 / start.elapsed().as_secs_f64()
    };
    println!(
        "| change feed read, 1000 per call | {:.0} entries/s | {:.0} entries/s |",
        feed(&lite),
        feed(&pg)
    );
    // Two writers at once: two threads on one SQLite store, two nodes (stores) on one PostgreSQL
    // database; both serialise writes (SQLite's writer lock, PostgreSQL's head row).
    let two = |a: &(dyn MessageStore + Sync), b: &(dyn MessageStore + Sync)| {
        let start = Instant::now();
        std::thread::scope(|sc| {
            for (k, s) in [a, b].into_iter().enumerate() {
                sc.spawn(move || {
                    let first = 10 * n + k as u64 * n / 2;
                    let mut i = first;
                    while i < first + n / 2 {
                        let mut batch: Vec<Message> = (i..i + BATCH).map(message).collect();
                        s.insert_batch(&mut batch).unwrap();
                        i += BATCH;
                    }
                });
            }
        });
        n as f64 / start.elapsed().as_secs_f64()
    };
    let dir2 = tempfile::tempdir().unwrap();
    let lite2 = SqliteStore::open(&dir2.path().join("messages.db")).unwrap();
    let db = server.create_database();
    let (pg_a, pg_b) = (
        PgStore::connect(&server.url_for(&db)).unwrap(),
        PgStore::connect(&server.url_for(&db)).unwrap(),
    );
    println!(
        "| two writers at once, {} messages each in batches of {BATCH} (generation included) | {:.0} messages/s | {:.0} messages/s |",
        n / 2,
        two(&lite2, &lite2),
        two(&pg_a, &pg_b)
    );
    let cut = t0() + chrono::Duration::milliseconds(n as i64 * STEP_MS / 2);
    let retention = |s: &dyn MessageStore| {
        let start = Instant::now();
        let gone = s.delete_before(cut).unwrap();
        (gone, start.elapsed().as_secs_f64())
    };
    let (ga, ta) = retention(&lite);
    let (gb, tb) = retention(&pg);
    assert_eq!(ga, gb);
    println!(
        "| delete_before, older half ({ga} messages) | {:.0} messages/s | {:.0} messages/s |",
        ga as f64 / ta,
        gb as f64 / tb
    );
}
