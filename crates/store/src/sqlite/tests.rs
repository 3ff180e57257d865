use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use chrono::{DateTime, TimeZone, Utc};
use ipnet::IpNet;
use pharos_model::ident::{AlarmSeverity, DdosType, SystemAlarmCategory};
use pharos_model::{
    DdosEvent, EventState, GenericLog, IntrusionEvent, Kind, Message, Severity, SystemAlarm,
};
use proptest::prelude::*;

use super::*;
use crate::{ChangeKind, MessageQuery, MessageStore, StoreError, StoredMessage};

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_750_000_000_000 + ms).unwrap()
}

fn with_common(mut m: Message, t: i64, sev: Severity, text: Option<&str>) -> Message {
    m.common.event_time = at(t);
    m.common.receive_time = at(t + 5);
    m.common.severity = sev;
    m.common.message = text.map(str::to_string);
    m
}

fn alarm(nsf: &str, t: i64, sev: Severity, text: Option<&str>) -> Message {
    let kind = Kind::SystemAlarm(SystemAlarm {
        alarm_category: Some(SystemAlarmCategory::CpuAlarm),
        severity: Some(AlarmSeverity::High),
        usage: Some(97),
        threshold: Some(90),
        ..Default::default()
    });
    with_common(Message::new(nsf, kind), t, sev, text)
}

fn ddos(nsf: &str, t: i64, src: &[IpAddr], dst: &[IpAddr], rule: &str) -> Message {
    let kind = Kind::Ddos(DdosEvent {
        attack_type: Some(DdosType::SynFlood),
        start_time: at(t),
        end_time: None,
        attack_src_ip: src.to_vec(),
        attack_dst_ip: dst.to_vec(),
        attack_src_port: vec![],
        attack_dst_port: vec![80],
        rule_name: rule.to_string(),
        attack_rate: Some(100_000),
        attack_throughput: Some(60_000_000),
    });
    with_common(
        Message::new(nsf, kind),
        t,
        Severity::High,
        Some("SYN flood"),
    )
}

fn intrusion(
    nsf: &str,
    t: i64,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    rule: &str,
    sev: Severity,
) -> Message {
    let kind = Kind::Intrusion(IntrusionEvent {
        src_ip: src,
        src_port: Some(40000),
        dst_ip: dst,
        dst_port: Some(22),
        rule_name: rule.to_string(),
        protocol: None,
        app: None,
        attack_type: None,
    });
    with_common(Message::new(nsf, kind), t, sev, Some("intrusion attempt"))
}

fn log(nsf: &str, t: i64, text: &str) -> Message {
    let kind = Kind::GenericLog(GenericLog {
        format: Some("rfc5424".into()),
        reason: Some("no normaliser".into()),
        app_name: Some("sshd".into()),
    });
    let mut m = with_common(Message::new(nsf, kind), t, Severity::Info, Some(text));
    m.common.raw = Some(format!("<13>1 - {nsf} sshd - - - {text}"));
    m
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// Every page of `q`, concatenated.
fn all_pages(store: &dyn MessageStore, q: &MessageQuery) -> Vec<StoredMessage> {
    let mut q = q.clone();
    let mut out = Vec::new();
    loop {
        let page = store.query(&q).unwrap();
        assert!(page.items.len() <= q.effective_limit());
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return out,
        }
    }
}

fn query_ids(store: &dyn MessageStore, q: MessageQuery) -> Vec<u64> {
    all_pages(store, &q)
        .iter()
        .map(|s| s.message.common.id.unwrap())
        .collect()
}

/// A small mixed store: ids 1..=8.
fn sample_store() -> SqliteStore {
    let store = SqliteStore::open_in_memory().unwrap();
    let mut msgs = vec![
        alarm(
            "fw-1",
            100,
            Severity::Critical,
            Some("CPU usage above threshold"),
        ), // 1
        ddos(
            "router-1",
            200,
            &[ip("198.51.100.7"), ip("198.51.100.8")],
            &[ip("192.0.2.10")],
            "ddos-syn",
        ), // 2
        log("fw-1", 300, "Accepted password for root"), // 3
        intrusion(
            "ids-1",
            400,
            Some(ip("2001:db8::1")),
            Some(ip("2001:db8:1::2")),
            "ssh-brute",
            Severity::Middle,
        ), // 4
        intrusion(
            "ids-1",
            500,
            Some(ip("10.1.2.3")),
            Some(ip("10.9.9.9")),
            "ssh-brute",
            Severity::Low,
        ), // 5
        log("fw-2", 600, "Connection closed by 10.1.2.3"), // 6
        intrusion(
            "ids-2",
            700,
            Some(ip("::ffff:10.1.2.3")),
            None,
            "other",
            Severity::High,
        ), // 7
        alarm("fw-2", 800, Severity::Low, None),        // 8
    ];
    assert_eq!(
        store.insert_batch(&mut msgs).unwrap(),
        (1..=8).collect::<Vec<_>>()
    );
    assert!(msgs.iter().zip(1..).all(|(m, i)| m.common.id == Some(i)));
    store
}

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<SqliteStore>();
}

#[test]
fn inserted_messages_read_back_equal_with_ids_and_open_state() {
    let store = sample_store();
    let got = store.get(2).unwrap().unwrap();
    let mut want = ddos(
        "router-1",
        200,
        &[ip("198.51.100.7"), ip("198.51.100.8")],
        &[ip("192.0.2.10")],
        "ddos-syn",
    );
    want.common.id = Some(2);
    assert_eq!(got.message, want);
    assert_eq!(got.state, Some(EventState::Open));
    assert_eq!(got.state_changed_at, None);
    assert_eq!(
        store.get(3).unwrap().unwrap().state,
        None,
        "logs have no state"
    );
    assert!(store.get(99).unwrap().is_none());
    assert!(store.get(u64::MAX).unwrap().is_none());
    assert_eq!(store.count().unwrap(), 8);
}

#[test]
fn messages_in_reads_a_window_across_pages_newest_first() {
    let store = SqliteStore::open_in_memory().unwrap();
    let n = crate::MAX_LIMIT as i64 + 5;
    let mut msgs: Vec<Message> = (0..n)
        .map(|i| log("fw", 1_000 + i, "x"))
        .chain([log("fw", 999, "before"), log("fw", 1_000 + n, "at the end")])
        .collect();
    store.insert_batch(&mut msgs).unwrap();
    let got: Vec<i64> = crate::messages_in(&store, at(1_000), at(1_000 + n))
        .map(|m| m.unwrap().common.event_time.timestamp_millis() - at(0).timestamp_millis())
        .collect();
    assert_eq!(
        got.len() as i64,
        n,
        "one window, every page, nothing outside"
    );
    assert!(got.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert_eq!((got[0], got[got.len() - 1]), (1_000 + n - 1, 1_000));
}

#[test]
fn empty_query_returns_all_newest_first() {
    let store = sample_store();
    assert_eq!(
        query_ids(&store, MessageQuery::default()),
        vec![8, 7, 6, 5, 4, 3, 2, 1]
    );
}

#[test]
fn each_filter_alone() {
    let s = sample_store();
    let q = MessageQuery::default;
    assert_eq!(
        query_ids(
            &s,
            MessageQuery {
                from: Some(at(300)),
                ..q()
            }
        ),
        vec![8, 7, 6, 5, 4, 3]
    );
    assert_eq!(
        query_ids(
            &s,
            MessageQuery {
                to: Some(at(300)),
                ..q()
            }
        ),
        vec![2, 1],
        "to is exclusive"
    );
    assert_eq!(
        query_ids(
            &s,
            MessageQuery {
                kinds: vec!["system-alarm".into()],
                ..q()
            }
        ),
        vec![8, 1]
    );
    assert_eq!(
        query_ids(
            &s,
            MessageQuery {
                kinds: vec!["generic-log".into(), "ddos".into(), "ddos".into()],
                ..q()
            }
        ),
        vec![6, 3, 2]
    );
    assert_eq!(
        query_ids(
            &s,
            MessageQuery {
                min_severity: Some(Severity::High),
                ..q()
            }
        ),
        vec![7, 2, 1]
    );
    assert_eq!(
        query_ids(
            &s,
            MessageQuery {
                min_severity: Some(Severity::Info),
                ..q()
            }
        )
        .len(),
        8
    );
    assert_eq!(
        query_ids(
            &s,
            MessageQuery {
                nsf: Some("fw-1".into()),
                ..q()
            }
        ),
        vec![3, 1]
    );
    assert_eq!(
        query_ids(
            &s,
            MessageQuery {
                nsf: Some("fw".into()),
                ..q()
            }
        ),
        Vec::<u64>::new()
    );
    assert_eq!(
        query_ids(
            &s,
            MessageQuery {
                rule: Some("ssh-brute".into()),
                ..q()
            }
        ),
        vec![5, 4]
    );
    assert_eq!(
        query_ids(
            &s,
            MessageQuery {
                text: Some("CLOSED BY".into()),
                ..q()
            }
        ),
        vec![6]
    );
    assert_eq!(
        query_ids(
            &s,
            MessageQuery {
                text: Some("cpu usage".into()),
                ..q()
            }
        ),
        vec![1]
    );
    assert_eq!(
        query_ids(
            &s,
            MessageQuery {
                text: Some("%".into()),
                ..q()
            }
        ),
        Vec::<u64>::new(),
        "no LIKE wildcards"
    );
    assert_eq!(
        query_ids(
            &s,
            MessageQuery {
                state: Some(EventState::Open),
                ..q()
            }
        ),
        vec![8, 7, 5, 4, 2, 1]
    );
    assert_eq!(
        query_ids(
            &s,
            MessageQuery {
                addr: Some(net("10.0.0.0/8")),
                ..q()
            }
        ),
        vec![5]
    );
    assert_eq!(
        query_ids(
            &s,
            MessageQuery {
                src: Some(net("10.1.2.3/32")),
                ..q()
            }
        ),
        vec![5]
    );
    assert_eq!(
        query_ids(
            &s,
            MessageQuery {
                dst: Some(net("10.1.2.3/32")),
                ..q()
            }
        ),
        Vec::<u64>::new()
    );
    assert_eq!(
        query_ids(
            &s,
            MessageQuery {
                dst: Some(net("192.0.2.0/24")),
                ..q()
            }
        ),
        vec![2]
    );
}

#[test]
fn filters_combined() {
    let s = sample_store();
    let q = MessageQuery {
        from: Some(at(150)),
        to: Some(at(700)),
        kinds: vec!["intrusion".into(), "ddos".into()],
        min_severity: Some(Severity::Low),
        addr: Some(net("0.0.0.0/0")),
        ..Default::default()
    };
    assert_eq!(query_ids(&s, q.clone()), vec![5, 2]);
    assert_eq!(
        query_ids(
            &s,
            MessageQuery {
                min_severity: Some(Severity::Middle),
                ..q.clone()
            }
        ),
        vec![2]
    );
    assert_eq!(
        query_ids(
            &s,
            MessageQuery {
                rule: Some("ssh-brute".into()),
                ..q.clone()
            }
        ),
        vec![5]
    );
    assert_eq!(
        query_ids(
            &s,
            MessageQuery {
                nsf: Some("ids-1".into()),
                text: Some("ATTEMPT".into()),
                ..q.clone()
            }
        ),
        vec![5]
    );
    assert_eq!(
        query_ids(
            &s,
            MessageQuery {
                src: Some(net("10.1.0.0/16")),
                dst: Some(net("10.9.0.0/16")),
                ..q.clone()
            }
        ),
        vec![5]
    );
    assert_eq!(
        query_ids(
            &s,
            MessageQuery {
                src: Some(net("10.9.0.0/16")),
                ..q
            }
        ),
        Vec::<u64>::new()
    );
}

#[test]
fn prefixes_match_by_family_including_zero_length_and_host_routes() {
    let s = sample_store();
    let addr = |n: &str| {
        query_ids(
            &s,
            MessageQuery {
                addr: Some(net(n)),
                ..Default::default()
            },
        )
    };
    // /0 of one family matches every address of that family only.
    assert_eq!(addr("0.0.0.0/0"), vec![5, 2]);
    assert_eq!(addr("::/0"), vec![7, 4]);
    // Host routes.
    assert_eq!(addr("198.51.100.8/32"), vec![2]);
    assert_eq!(addr("198.51.100.9/32"), Vec::<u64>::new());
    assert_eq!(addr("2001:db8:1::2/128"), vec![4]);
    // Prefixes, with host bits set in the query.
    assert_eq!(addr("198.51.100.77/24"), vec![2]);
    assert_eq!(addr("2001:db8::/32"), vec![4]);
    assert_eq!(addr("2001:db8:1::/48"), vec![4]);
    // An IPv4 prefix does not match the IPv4-mapped IPv6 address of message 7, nor the reverse.
    assert_eq!(addr("10.1.2.3/32"), vec![5]);
    assert_eq!(addr("::ffff:10.1.2.3/128"), vec![7]);
    assert_eq!(addr("::ffff:0:0/96"), vec![7]);
    // Edges of the address space.
    let edge = SqliteStore::open_in_memory().unwrap();
    let mut m = vec![
        intrusion(
            "a",
            1,
            Some(ip("0.0.0.0")),
            Some(ip("255.255.255.255")),
            "r",
            Severity::Low,
        ),
        intrusion(
            "a",
            2,
            Some(ip("::")),
            Some(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
            "r",
            Severity::Low,
        ),
    ];
    edge.insert_batch(&mut m).unwrap();
    let e = |n: &str| {
        query_ids(
            &edge,
            MessageQuery {
                addr: Some(net(n)),
                ..Default::default()
            },
        )
    };
    assert_eq!(e("0.0.0.0/0"), vec![1]);
    assert_eq!(e("255.255.255.255/32"), vec![1]);
    assert_eq!(e("0.0.0.0/32"), vec![1]);
    assert_eq!(e("::/0"), vec![2]);
    assert_eq!(e("::/128"), vec![2]);
    assert_eq!(e("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"), vec![2]);
}

#[test]
fn unknown_kind_and_bad_cursor_are_errors_naming_the_input() {
    let s = sample_store();
    match s.query(&MessageQuery {
        kinds: vec!["ddoss".into()],
        ..Default::default()
    }) {
        Err(StoreError::BadQuery(m)) => {
            assert!(m.contains("\"ddoss\"") && m.contains("ddos"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    match s.query(&MessageQuery {
        cursor: Some("not-a-cursor".into()),
        ..Default::default()
    }) {
        Err(StoreError::BadCursor(c)) => assert_eq!(c, "not-a-cursor"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn limit_defaults_to_100_and_is_capped() {
    let s = SqliteStore::open_in_memory().unwrap();
    let mut msgs: Vec<Message> = (0..10_050).map(|i| log("fw", i, "x")).collect();
    s.insert_batch(&mut msgs).unwrap();
    let page = s.query(&MessageQuery::default()).unwrap();
    assert_eq!(page.items.len(), 100);
    assert!(page.next_cursor.is_some());
    let page = s
        .query(&MessageQuery {
            limit: 1_000_000,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.items.len(), 10_000);
    let rest = s
        .query(&MessageQuery {
            limit: 1_000_000,
            cursor: page.next_cursor,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(rest.items.len(), 50);
    assert_eq!(rest.next_cursor, None);
}

#[test]
fn paging_returns_every_row_once_in_order_while_rows_are_inserted() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("m.db")).unwrap();
    // Many ties on event time, so ordering by id matters.
    let mut msgs: Vec<Message> = (0..1000)
        .map(|i| log(&format!("fw-{}", i % 7), (i / 3) * 10, "line"))
        .collect();
    let original: HashSet<u64> = store.insert_batch(&mut msgs).unwrap().into_iter().collect();
    let mut q = MessageQuery {
        limit: 37,
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut keys: Vec<(DateTime<Utc>, u64)> = Vec::new();
    let mut round = 0;
    loop {
        let page = store.query(&q).unwrap();
        for s in &page.items {
            keys.push((s.message.common.event_time, s.message.common.id.unwrap()));
            seen.push(s.message.common.id.unwrap());
        }
        // Insert rows between pages: newer than everything, older than everything, and in the middle.
        round += 1;
        let mut more = vec![
            log("new", 100_000 + round, "late"),
            log("new", -1000 - round, "old"),
            log("new", 1500, "mid"),
        ];
        store.insert_batch(&mut more).unwrap();
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    assert!(
        keys.windows(2).all(|w| w[0] > w[1]),
        "strictly newest first, ties by id descending"
    );
    let unique: HashSet<u64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no row twice");
    assert!(original.is_subset(&unique), "every original row seen");
}

#[test]
fn set_state_on_events_and_not_on_logs() {
    let s = sample_store();
    let before = Utc::now();
    let got = s.set_state(2, EventState::Acknowledged).unwrap();
    assert_eq!(got.state, Some(EventState::Acknowledged));
    assert_eq!(got.message.common.id, Some(2));
    assert!(got.state_changed_at.unwrap() >= before - chrono::Duration::seconds(1));
    assert_eq!(s.get(2).unwrap().unwrap(), got);
    assert_eq!(
        query_ids(
            &s,
            MessageQuery {
                state: Some(EventState::Acknowledged),
                ..Default::default()
            }
        ),
        vec![2]
    );
    s.set_state(2, EventState::Closed).unwrap();
    assert_eq!(s.get(2).unwrap().unwrap().state, Some(EventState::Closed));
    assert!(matches!(
        s.set_state(3, EventState::Closed),
        Err(StoreError::NotAnEvent(3))
    ));
    assert!(matches!(
        s.set_state(42, EventState::Closed),
        Err(StoreError::NotFound(42))
    ));
    assert!(matches!(
        s.set_state(u64::MAX, EventState::Closed),
        Err(StoreError::NotFound(u64::MAX))
    ));
    assert_eq!(s.get(3).unwrap().unwrap().state, None);
}

#[test]
fn update_replaces_content_keeps_id_and_state() {
    let s = sample_store();
    s.set_state(2, EventState::Acknowledged).unwrap();
    let mut m = s.get(2).unwrap().unwrap().message;
    let Kind::Ddos(d) = &mut m.kind else { panic!() };
    d.end_time = Some(at(900));
    d.attack_src_ip = vec![ip("203.0.113.5")];
    m.common.severity = Severity::Critical;
    m.common.message = Some("SYN flood ended".into());
    s.update(&m).unwrap();
    let got = s.get(2).unwrap().unwrap();
    assert_eq!(got.message, m);
    assert_eq!(got.state, Some(EventState::Acknowledged));
    assert!(got.state_changed_at.is_some());
    assert_eq!(s.count().unwrap(), 8);
    // Indexed copies follow the new content.
    let q = |q: MessageQuery| query_ids(&s, q);
    assert_eq!(
        q(MessageQuery {
            src: Some(net("203.0.113.5/32")),
            ..Default::default()
        }),
        vec![2]
    );
    assert_eq!(
        q(MessageQuery {
            src: Some(net("198.51.100.0/24")),
            ..Default::default()
        }),
        Vec::<u64>::new()
    );
    assert_eq!(
        q(MessageQuery {
            min_severity: Some(Severity::Critical),
            ..Default::default()
        }),
        vec![2, 1]
    );
    assert_eq!(
        q(MessageQuery {
            text: Some("ended".into()),
            ..Default::default()
        }),
        vec![2]
    );

    let mut missing = m.clone();
    missing.common.id = Some(1234);
    assert!(matches!(
        s.update(&missing),
        Err(StoreError::NotFound(1234))
    ));
    missing.common.id = None;
    assert!(matches!(s.update(&missing), Err(StoreError::MissingId)));
}

#[test]
fn delete_before_removes_old_messages_in_chunks_and_ids_are_never_reused() {
    let s = SqliteStore::open_in_memory().unwrap();
    let n = DELETE_CHUNK as i64 * 2 + 123;
    let mut msgs: Vec<Message> = (0..n)
        .map(|i| {
            intrusion(
                "ids",
                i,
                Some(ip("10.0.0.1")),
                Some(ip("2001:db8::1")),
                "r",
                Severity::Low,
            )
        })
        .collect();
    let last = *s.insert_batch(&mut msgs).unwrap().last().unwrap();
    let cut = n - 1000;
    assert_eq!(s.delete_before(at(cut)).unwrap(), cut as u64);
    assert_eq!(s.count().unwrap(), 1000);
    assert_eq!(s.delete_before(at(cut)).unwrap(), 0);
    let addr_rows: i64 = lock(&s.writer)
        .query_row("SELECT count(*) FROM message_addrs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(addr_rows, 2000, "address rows of deleted messages are gone");
    let remaining = all_pages(
        &s,
        &MessageQuery {
            limit: 10_000,
            ..Default::default()
        },
    );
    assert!(
        remaining
            .iter()
            .all(|m| m.message.common.event_time >= at(cut))
    );
    // Deleting the newest ids does not make their ids available again.
    assert_eq!(s.delete_before(at(n + 1)).unwrap(), 1000);
    let mut one = vec![log("fw", 0, "after")];
    assert_eq!(s.insert_batch(&mut one).unwrap(), vec![last + 1]);
}

#[test]
fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("messages.db");
    let mut msgs = vec![
        alarm("fw-1", 1, Severity::High, Some("disk")),
        log("fw-1", 2, "hello"),
    ];
    {
        let s = SqliteStore::open(&path).unwrap();
        s.insert_batch(&mut msgs).unwrap();
        s.set_state(1, EventState::Closed).unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.count().unwrap(), 2);
    let got = s.get(1).unwrap().unwrap();
    assert_eq!(got.message, msgs[0]);
    assert_eq!(got.state, Some(EventState::Closed));
    assert_eq!(s.get(2).unwrap().unwrap().message, msgs[1]);
    let mut more = vec![log("fw-1", 3, "again")];
    assert_eq!(s.insert_batch(&mut more).unwrap(), vec![3]);
}

#[test]
fn version_1_database_is_migrated_and_address_queries_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("messages.db");
    let hour = 3_600_000;
    let mut msgs = vec![
        ddos("fw-1", 0, &[ip("198.51.100.7")], &[ip("192.0.2.3")], "r1"),
        ddos(
            "fw-1",
            5 * hour,
            &[ip("2001:db8::9")],
            &[ip("192.0.2.3")],
            "r2",
        ),
        log("fw-1", 6 * hour, "no address"),
    ];
    SqliteStore::open(&path)
        .unwrap()
        .insert_batch(&mut msgs)
        .unwrap();
    // Put the file back in the version 1 layout: no bucket, index on (addr, event_time), no feed.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE v1 (message_id INTEGER NOT NULL, role INTEGER NOT NULL, addr BLOB NOT NULL,
             event_time INTEGER NOT NULL, PRIMARY KEY (message_id, role, addr)) WITHOUT ROWID;
         INSERT INTO v1 SELECT message_id, role, addr, event_time FROM message_addrs;
         DROP TABLE message_addrs; DROP TABLE addr_buckets; DROP TABLE changes;
         ALTER TABLE v1 RENAME TO message_addrs;
         CREATE INDEX message_addrs_addr_time ON message_addrs(addr, event_time);
         PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);
    let s = SqliteStore::open(&path).unwrap();
    let conn = Connection::open(&path).unwrap();
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, schema::VERSION);
    let buckets: i64 = conn
        .query_row("SELECT count(*) FROM addr_buckets", [], |r| r.get(0))
        .unwrap();
    assert_eq!(buckets, 2, "one bucket per hour that has addresses");
    let victim = MessageQuery {
        dst: Some(net("192.0.2.3/32")),
        ..Default::default()
    };
    assert_eq!(query_ids(&s, victim.clone()), vec![2, 1]);
    let early = MessageQuery {
        to: Some(at(hour)),
        ..victim
    };
    assert_eq!(query_ids(&s, early), vec![1]);
    assert_eq!(
        query_ids(
            &s,
            MessageQuery {
                addr: Some(net("2001:db8::/32")),
                ..Default::default()
            }
        ),
        vec![2]
    );
    // Retention drops the buckets it emptied.
    s.delete_before(at(hour)).unwrap();
    let buckets: i64 = conn
        .query_row("SELECT count(*) FROM addr_buckets", [], |r| r.get(0))
        .unwrap();
    assert_eq!(buckets, 1);
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("messages.db");
    drop(SqliteStore::open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", schema::VERSION + 1)
        .unwrap();
    match SqliteStore::open(&path) {
        Err(StoreError::UnsupportedSchema { found, supported }) => {
            assert_eq!((found, supported), (schema::VERSION + 1, schema::VERSION))
        }
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn corrupt_rows_are_errors_naming_the_id() {
    let s = sample_store();
    {
        let c = lock(&s.writer);
        c.execute(
            "UPDATE messages SET json = '{\"not\": \"a message\"}' WHERE id = 3",
            [],
        )
        .unwrap();
        c.execute("UPDATE messages SET state = 9 WHERE id = 1", [])
            .unwrap();
        c.execute("UPDATE messages SET json = x'ff00' WHERE id = 5", [])
            .unwrap();
    }
    for id in [3, 1, 5] {
        match s.get(id) {
            Err(StoreError::Corrupt { id: got, reason }) => assert_eq!(got, id, "{reason}"),
            other => panic!("{id}: {other:?}"),
        }
    }
    assert!(matches!(
        s.query(&MessageQuery::default()),
        Err(StoreError::Corrupt { id: 5, .. })
    ));
    // Rows that are fine still read.
    assert!(s.get(2).unwrap().is_some());
}

#[test]
fn count_by_kind_counts_each_kind() {
    let s = sample_store();
    assert_eq!(
        s.count_by_kind().unwrap(),
        vec![
            ("ddos".into(), 1),
            ("generic-log".into(), 2),
            ("intrusion".into(), 3),
            ("system-alarm".into(), 2)
        ]
    );
}

#[test]
fn empty_batch_is_a_no_op_and_failed_batch_keeps_caller_ids() {
    let s = SqliteStore::open_in_memory().unwrap();
    assert_eq!(s.insert_batch(&mut []).unwrap(), Vec::<u64>::new());
    // Make the second insert of a batch fail: the batch rolls back and ids are restored.
    lock(&s.writer)
        .execute_batch(
            "CREATE TRIGGER no_fw2 BEFORE INSERT ON messages WHEN NEW.nsf = 'fw-2'
             BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
    let mut msgs = vec![log("fw-1", 1, "a"), log("fw-2", 2, "b")];
    assert!(s.insert_batch(&mut msgs).is_err());
    assert!(msgs.iter().all(|m| m.common.id.is_none()));
    assert_eq!(s.count().unwrap(), 0);
}

#[test]
fn concurrent_writers_and_readers() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SqliteStore::open(&dir.path().join("m.db")).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..20 {
                    let mut batch: Vec<Message> = (0..10)
                        .map(|j| log(&format!("fw-{t}"), i * 10 + j, "x"))
                        .collect();
                    store.insert_batch(&mut batch).unwrap();
                    let page = store
                        .query(&MessageQuery {
                            nsf: Some(format!("fw-{t}")),
                            ..Default::default()
                        })
                        .unwrap();
                    assert!(page.items.len() >= 10);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(store.count().unwrap(), 800);
    let all = all_pages(
        &*store,
        &MessageQuery {
            limit: 333,
            ..Default::default()
        },
    );
    assert_eq!(
        all.iter()
            .map(|m| m.message.common.id.unwrap())
            .collect::<HashSet<_>>()
            .len(),
        800
    );
}

// ---- property: query == naive filter -------------------------------------------------------

const NSFS: [&str; 3] = ["fw-1", "fw-2", "ids"];
const RULES: [&str; 3] = ["r1", "r2", "R1"];
const TEXTS: [&str; 6] = [
    "Port scan",
    "port SCAN detected",
    "ÄÖÜ straße",
    "login ok",
    "",
    "50% done",
];

fn addr_pool() -> Vec<IpAddr> {
    vec![
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1)),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 255)),
        IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0)),
        "2001:db8::1".parse().unwrap(),
        "2001:db8:0:1::1".parse().unwrap(),
        "::ffff:10.0.0.1".parse().unwrap(),
        IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    ]
}

fn net_pool() -> Vec<IpNet> {
    [
        "10.0.0.0/8",
        "10.0.0.0/24",
        "10.0.0.1/32",
        "0.0.0.0/0",
        "192.0.2.0/24",
        "::/0",
        "2001:db8::/32",
        "2001:db8::/64",
        "::ffff:0:0/96",
        "::/128",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect()
}

/// A message from small pools, so filters hit and miss.
/// Step between generated event times (~17 minutes, not a divisor of an hour), so random messages
/// and time bounds spread over several address-index buckets.
const SPREAD_MS: i64 = 1_000_003;

fn arb_message() -> impl Strategy<Value = Message> {
    (
        0usize..4,
        0usize..3,
        (0i64..20).prop_map(|t| t * SPREAD_MS),
        0usize..5,
        proptest::option::of(0usize..6),
        0usize..8,
        0usize..8,
        0usize..3,
    )
        .prop_map(|(kind, nsf, t, sev, text, a, b, rule)| {
            let pool = addr_pool();
            let mut m = match kind {
                0 => alarm(NSFS[nsf], t, Severity::Info, None),
                1 => ddos(NSFS[nsf], t, &[pool[a]], &[pool[b], pool[a]], RULES[rule]),
                2 => intrusion(
                    NSFS[nsf],
                    t,
                    Some(pool[a]),
                    (b % 3 != 0).then(|| pool[b]),
                    RULES[rule],
                    Severity::Info,
                ),
                _ => log(NSFS[nsf], t, ""),
            };
            m.common.severity = Severity::ALL[sev];
            m.common.message = text.map(|i| TEXTS[i].to_string());
            m
        })
}

fn arb_query() -> impl Strategy<Value = MessageQuery> {
    let opt_net = || proptest::option::weighted(0.2, 0usize..10);
    (
        (
            proptest::option::weighted(0.3, (0i64..20).prop_map(|t| t * SPREAD_MS)),
            proptest::option::weighted(0.3, (0i64..20).prop_map(|t| t * SPREAD_MS)),
        ),
        proptest::collection::vec(
            prop::sample::select(vec![
                "system-alarm",
                "ddos",
                "intrusion",
                "generic-log",
                "virus",
            ]),
            0..3,
        ),
        proptest::option::weighted(0.3, 0usize..5),
        proptest::option::weighted(0.2, 0usize..3),
        (opt_net(), opt_net(), opt_net()),
        proptest::option::weighted(0.2, 0usize..3),
        proptest::option::weighted(
            0.2,
            prop::sample::select(vec!["SCAN", "port", "ÖÜ", "STRASSE", "straße", "%", ""]),
        ),
        proptest::option::weighted(0.2, 0usize..3),
        1usize..8,
        proptest::option::weighted(0.2, 0u64..60),
    )
        .prop_map(
            |(
                (from, to),
                kinds,
                sev,
                nsf,
                (addr, src, dst),
                rule,
                text,
                state,
                limit,
                after_id,
            )| {
                let nets = net_pool();
                MessageQuery {
                    from: from.map(at),
                    to: to.map(at),
                    kinds: kinds.into_iter().map(String::from).collect(),
                    min_severity: sev.map(|i| Severity::ALL[i]),
                    nsf: nsf.map(|i| NSFS[i].to_string()),
                    addr: addr.map(|i| nets[i]),
                    src: src.map(|i| nets[i]),
                    dst: dst.map(|i| nets[i]),
                    rule: rule.map(|i| RULES[i].to_string()),
                    text: text.map(String::from),
                    state: state.map(|i| {
                        [
                            EventState::Open,
                            EventState::Acknowledged,
                            EventState::Closed,
                        ][i]
                    }),
                    limit,
                    cursor: None,
                    after_id,
                }
            },
        )
}

/// The reference semantics of [`MessageQuery`].
fn naive_matches(s: &StoredMessage, q: &MessageQuery) -> bool {
    let m = &s.message;
    let c = &m.common;
    let within = |net: &Option<IpNet>, role: Option<pharos_model::AddrRole>| {
        net.is_none_or(|n| {
            m.addresses()
                .iter()
                .any(|(r, a)| role.is_none_or(|want| want == *r) && n.contains(a))
        })
    };
    q.from.is_none_or(|f| c.event_time >= f)
        && q.to.is_none_or(|t| c.event_time < t)
        && (q.kinds.is_empty() || q.kinds.iter().any(|k| k == m.kind.name()))
        && q.min_severity.is_none_or(|s| c.severity >= s)
        && q.nsf.as_ref().is_none_or(|n| *n == c.nsf_name)
        && q.rule.as_deref().is_none_or(|r| m.rule_name() == Some(r))
        && q.text.as_ref().is_none_or(|t| {
            c.message
                .as_ref()
                .is_some_and(|msg| msg.to_lowercase().contains(&t.to_lowercase()))
        })
        && q.state.is_none_or(|st| s.state == Some(st))
        && q.after_id.is_none_or(|a| c.id.is_some_and(|id| id > a))
        && within(&q.addr, None)
        && within(&q.src, Some(pharos_model::AddrRole::Src))
        && within(&q.dst, Some(pharos_model::AddrRole::Dst))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn query_equals_naive_filter(
        msgs in proptest::collection::vec(arb_message(), 0..40),
        acks in proptest::collection::vec((0usize..40, 0usize..3), 0..8),
        queries in proptest::collection::vec(arb_query(), 1..6),
    ) {
        let store = SqliteStore::open_in_memory().unwrap();
        let mut msgs = msgs;
        store.insert_batch(&mut msgs).unwrap();
        for (i, st) in acks {
            if let Some(m) = msgs.get(i) {
                let state = [EventState::Open, EventState::Acknowledged, EventState::Closed][st];
                let r = store.set_state(m.common.id.unwrap(), state);
                prop_assert_eq!(r.is_ok(), m.kind.is_event());
            }
        }
        let mut stored: Vec<StoredMessage> =
            msgs.iter().map(|m| store.get(m.common.id.unwrap()).unwrap().unwrap()).collect();
        for s in &stored {
            prop_assert_eq!(&s.message, &msgs[(s.message.common.id.unwrap() - 1) as usize]);
        }
        stored.sort_by_key(|s| std::cmp::Reverse((s.message.common.event_time, s.message.common.id)));
        for q in queries {
            let got: Vec<u64> = all_pages(&store, &q).iter().map(|s| s.message.common.id.unwrap()).collect();
            let want: Vec<u64> =
                stored.iter().filter(|s| naive_matches(s, &q)).map(|s| s.message.common.id.unwrap()).collect();
            prop_assert_eq!(got, want, "query {:?}", q);
        }
    }
}

// ---- change feed ----

fn feed(s: &SqliteStore, after: u64) -> Vec<(u64, ChangeKind, u64)> {
    s.changes(after, 10_000)
        .unwrap()
        .into_iter()
        .map(|(seq, c, m)| (seq, c, m.message.common.id.unwrap()))
        .collect()
}

#[test]
fn change_feed_records_inserts_updates_and_state_changes_in_order() {
    let s = SqliteStore::open_in_memory().unwrap();
    assert_eq!(s.last_change().unwrap(), 0);
    assert!(feed(&s, 0).is_empty());
    let mut msgs = vec![
        ddos("fw", 1, &[ip("198.51.100.1")], &[ip("192.0.2.1")], "r"),
        log("fw", 2, "hello"),
    ];
    s.insert_batch(&mut msgs).unwrap();
    let mut m = s.get(1).unwrap().unwrap().message;
    m.common.severity = Severity::Critical;
    s.update(&m).unwrap();
    s.set_state(1, EventState::Acknowledged).unwrap();
    assert!(
        s.set_state(2, EventState::Closed).is_err(),
        "a log has no state"
    );
    assert_eq!(
        feed(&s, 0),
        vec![
            (1, ChangeKind::Created, 1),
            (2, ChangeKind::Created, 2),
            (3, ChangeKind::Updated, 1),
            (4, ChangeKind::State, 1),
        ]
    );
    assert_eq!(s.last_change().unwrap(), 4);
    assert_eq!(
        feed(&s, 2),
        vec![(3, ChangeKind::Updated, 1), (4, ChangeKind::State, 1)]
    );
    assert_eq!(s.changes(0, 1).unwrap().len(), 1, "limit is honoured");
    // The message is read as it is now: the created entry already shows the later update.
    let first = &s.changes(0, 1).unwrap()[0].2;
    assert_eq!(first.message.common.severity, Severity::Critical);
    assert_eq!(first.state, Some(EventState::Acknowledged));
}

#[test]
fn change_feed_skips_messages_deleted_by_retention_and_never_reuses_seqs() {
    let s = SqliteStore::open_in_memory().unwrap();
    let mut msgs: Vec<Message> = (0..10).map(|i| log("fw", i * 10, "x")).collect();
    s.insert_batch(&mut msgs).unwrap();
    assert_eq!(s.delete_before(at(50)).unwrap(), 5);
    let got = feed(&s, 0);
    assert_eq!(
        got.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![6, 7, 8, 9, 10]
    );
    let rows: i64 = lock(&s.writer)
        .query_row("SELECT count(*) FROM changes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 5, "feed rows of deleted messages are deleted");
    s.delete_before(at(1000)).unwrap();
    assert!(feed(&s, 0).is_empty());
    assert_eq!(s.last_change().unwrap(), 10);
    s.insert_batch(&mut [log("fw", 0, "later")]).unwrap();
    assert_eq!(feed(&s, 0), vec![(11, ChangeKind::Created, 11)]);
}

#[test]
fn change_feed_and_last_seq_survive_reopen_and_migration_from_version_2_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("messages.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        s.insert_batch(&mut [log("fw", 1, "a"), log("fw", 2, "b")])
            .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.last_change().unwrap(), 2);
    assert_eq!(feed(&s, 0).len(), 2);
    drop(s);
    // Back to version 2 (no feed table): migrating gives an empty feed, messages kept.
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch("DROP TABLE changes; PRAGMA user_version = 2;")
            .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.count().unwrap(), 2);
    assert_eq!(s.last_change().unwrap(), 0);
    s.insert_batch(&mut [log("fw", 3, "c")]).unwrap();
    assert_eq!(feed(&s, 0), vec![(1, ChangeKind::Created, 3)]);
}

#[test]
fn watch_changes_is_told_the_newest_seq_after_each_commit() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("m.db")).unwrap();
    let mut rx = s.watch_changes();
    assert_eq!(*rx.borrow_and_update(), 0);
    assert!(!rx.has_changed().unwrap());
    s.insert_batch(&mut [alarm("fw", 1, Severity::High, None), log("fw", 2, "b")])
        .unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), 2);
    // What the watch announces is readable at once from another connection.
    assert_eq!(feed(&s, 0).len(), 2);
    s.set_state(1, EventState::Closed).unwrap();
    assert_eq!(*rx.borrow_and_update(), 3);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let s = std::sync::Arc::new(s);
    let s2 = s.clone();
    let t = std::thread::spawn(move || s2.insert_batch(&mut [log("fw", 3, "c")]).unwrap());
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), rx.changed())
            .await
            .expect("watch fires")
            .unwrap();
    });
    t.join().unwrap();
    assert_eq!(*rx.borrow(), 4);
}

#[test]
fn acknowledge_records_actor_and_comment_once_and_a_second_ack_changes_nothing() {
    let s = sample_store();
    let before = Utc::now() - chrono::Duration::seconds(1);
    let seq = s.last_change().unwrap();
    let first = s.acknowledge(2, "alice", Some("looking at it")).unwrap();
    assert!(first.first);
    assert_eq!(first.stored.state, Some(EventState::Acknowledged));
    let ack = first.stored.ack.clone().unwrap();
    assert_eq!(ack.by.as_deref(), Some("alice"));
    assert_eq!(ack.comment.as_deref(), Some("looking at it"));
    assert!(ack.at >= before);
    assert_eq!(first.stored.state_changed_at, Some(ack.at));
    assert_eq!(s.get(2).unwrap().unwrap(), first.stored, "read back equal");

    let again = s.acknowledge(2, "bob", Some("me too")).unwrap();
    assert!(!again.first);
    assert_eq!(again.stored, first.stored, "the original record is kept");
    assert_eq!(
        feed(&s, seq),
        vec![(seq + 1, ChangeKind::State, 2)],
        "one feed entry for the two calls"
    );

    // Without a comment; errors as set_state's.
    let plain = s.acknowledge(4, "carol", None).unwrap();
    assert_eq!(plain.stored.ack.unwrap().comment, None);
    assert!(matches!(
        s.acknowledge(3, "alice", None),
        Err(StoreError::NotAnEvent(3))
    ));
    assert!(matches!(
        s.acknowledge(42, "alice", None),
        Err(StoreError::NotFound(42))
    ));
    assert_eq!(s.get(3).unwrap().unwrap().ack, None);
}

#[test]
fn acknowledging_a_closed_event_keeps_it_closed_and_reopening_clears_the_ack() {
    let s = sample_store();
    let closed = s.set_state(5, EventState::Closed).unwrap();
    let got = s.acknowledge(5, "alice", None).unwrap();
    assert!(got.first);
    assert_eq!(got.stored.state, Some(EventState::Closed));
    assert_eq!(got.stored.state_changed_at, closed.state_changed_at);
    assert_eq!(got.stored.ack.unwrap().by.as_deref(), Some("alice"));
    let open = s.set_state(5, EventState::Open).unwrap();
    assert_eq!(open.ack, None);
    assert!(s.acknowledge(5, "bob", None).unwrap().first);
}

#[test]
fn version_3_database_is_migrated_with_ack_columns_and_old_acks_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("messages.db");
    let old_ack = {
        let s = SqliteStore::open(&path).unwrap();
        s.insert_batch(&mut [
            alarm("fw-1", 1, Severity::High, Some("cpu")),
            alarm("fw-1", 2, Severity::High, Some("cpu again")),
        ])
        .unwrap();
        s.set_state(1, EventState::Acknowledged).unwrap()
    };
    // Back to the version 3 layout: no acknowledgement columns.
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "ALTER TABLE messages DROP COLUMN acked_by;
             ALTER TABLE messages DROP COLUMN acked_at;
             ALTER TABLE messages DROP COLUMN ack_comment;
             PRAGMA user_version = 3;",
        )
        .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    let v: i64 = Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, schema::VERSION);
    // The event acknowledged before version 4 is dated, without an actor, and stays acknowledged.
    let got = s.get(1).unwrap().unwrap();
    let ack = got.ack.clone().unwrap();
    assert_eq!((ack.by, ack.comment), (None, None));
    assert_eq!(Some(ack.at), old_ack.state_changed_at);
    assert!(!s.acknowledge(1, "alice", None).unwrap().first);
    assert_eq!(s.get(1).unwrap().unwrap(), got);
    let new = s.acknowledge(2, "alice", Some("ok")).unwrap();
    assert!(new.first);
    assert_eq!(new.stored.ack.unwrap().by.as_deref(), Some("alice"));
}
