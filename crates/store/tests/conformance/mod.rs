//! The message store contract (`pharos_store::MessageStore`) as cases over `Arc<dyn
//! MessageStore>`, so one suite proves that every store answers alike: `conformance_sqlite.rs`
//! (beside this folder) runs it on `SqliteStore`, crates/store-pg's `conformance_pg.rs` on
//! `PgStore`. Each case gets a fresh,
//! empty store. What looks under a particular engine (row counts of internal tables,
//! corrupting rows, reopening files) stays with each engine's own tests
//! (crates/store/src/sqlite/tests.rs).
//!
//! `conformance_tests!(fresh)` expands to one `#[test]` per case; `fresh()` returns
//! `Option<Fixture>` (`None`: the engine is missing and the test skips, as the project's rule
//! allows outside CI).

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use ipnet::IpNet;
use pharos_model::ident::{AlarmSeverity, DdosType, SystemAlarmCategory};
use pharos_model::{
    DdosEvent, EventState, GenericLog, IntrusionEvent, Kind, Message, Severity, SystemAlarm,
};
use pharos_store::{ChangeKind, MessageQuery, MessageStore, StoreError, StoredMessage};
use proptest::prelude::*;

/// A store for one case, and what must outlive it (a server), dropped after the store.
pub struct Fixture {
    /// The store under test, empty.
    pub store: Arc<dyn MessageStore>,
    /// Kept alive until the store is gone.
    pub keep: Option<Box<dyn std::any::Any>>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // The store first (its connections), then what it needs (the server).
        let store = std::mem::replace(&mut self.store, Arc::new(NoStore) as Arc<dyn MessageStore>);
        drop(store);
        drop(self.keep.take());
    }
}

/// A placeholder swapped in while a fixture drops.
struct NoStore;

impl MessageStore for NoStore {
    fn insert_batch(&self, _: &mut [Message]) -> Result<Vec<u64>, StoreError> {
        unreachable!()
    }
    fn update(&self, _: &Message) -> Result<(), StoreError> {
        unreachable!()
    }
    fn get(&self, _: u64) -> Result<Option<StoredMessage>, StoreError> {
        unreachable!()
    }
    fn query(&self, _: &MessageQuery) -> Result<pharos_store::Page, StoreError> {
        unreachable!()
    }
    fn set_state(&self, _: u64, _: EventState) -> Result<StoredMessage, StoreError> {
        unreachable!()
    }
    fn acknowledge(
        &self,
        _: u64,
        _: &str,
        _: Option<&str>,
    ) -> Result<pharos_store::Acknowledged, StoreError> {
        unreachable!()
    }
    fn delete_before(&self, _: pharos_model::Timestamp) -> Result<u64, StoreError> {
        unreachable!()
    }
    fn count(&self) -> Result<u64, StoreError> {
        unreachable!()
    }
    fn count_by_kind(&self) -> Result<Vec<(String, u64)>, StoreError> {
        unreachable!()
    }
    fn changes(&self, _: u64, _: usize) -> Result<Vec<pharos_store::FeedEntry>, StoreError> {
        unreachable!()
    }
    fn last_change(&self) -> Result<u64, StoreError> {
        unreachable!()
    }
    fn watch_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        unreachable!()
    }
}

/// One `#[test]` per conformance case, each on a store from `$fresh()`.
#[allow(unused_macros)]
macro_rules! conformance_tests {
    ($fresh:path) => {
        conformance_tests!(@ $fresh;
            inserted_messages_read_back_equal_with_ids_and_open_state,
            messages_in_reads_a_window_across_pages_newest_first,
            empty_query_returns_all_newest_first,
            each_filter_alone,
            filters_combined,
            prefixes_match_by_family_including_zero_length_and_host_routes,
            address_space_edges_match,
            unknown_kind_and_bad_cursor_are_errors_naming_the_input,
            limit_defaults_to_100_and_is_capped,
            paging_returns_every_row_once_in_order_while_rows_are_inserted,
            set_state_on_events_and_not_on_logs,
            update_replaces_content_keeps_id_and_state,
            delete_before_removes_old_messages_in_chunks_and_ids_are_never_reused,
            count_by_kind_counts_each_kind,
            empty_batch_is_a_no_op,
            concurrent_writers_and_readers,
            query_equals_naive_filter,
            change_feed_records_inserts_updates_and_state_changes_in_order,
            change_feed_skips_messages_deleted_by_retention_and_never_reuses_seqs,
            watch_changes_is_told_the_newest_seq_after_each_commit,
            acknowledge_records_actor_and_comment_once_and_a_second_ack_changes_nothing,
            acknowledging_a_closed_event_keeps_it_closed_and_reopening_clears_the_ack,
            store_serves_async_code_through_spawn_blocking_and_the_watch,
        );
    };
    (@ $fresh:path; $($name:ident),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                if let Some(f) = $fresh() {
                    conformance::$name(f.store.clone());
                }
            }
        )+
    };
}

// ---- fixtures --------------------------------------------------------------------------------

pub fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_750_000_000_000 + ms).unwrap()
}

fn with_common(mut m: Message, t: i64, sev: Severity, text: Option<&str>) -> Message {
    m.common.event_time = at(t);
    m.common.receive_time = at(t + 5);
    m.common.severity = sev;
    m.common.message = text.map(str::to_string);
    m
}

pub fn alarm(nsf: &str, t: i64, sev: Severity, text: Option<&str>) -> Message {
    let kind = Kind::SystemAlarm(SystemAlarm {
        alarm_category: Some(SystemAlarmCategory::CpuAlarm),
        severity: Some(AlarmSeverity::High),
        usage: Some(97),
        threshold: Some(90),
        ..Default::default()
    });
    with_common(Message::new(nsf, kind), t, sev, text)
}

pub fn ddos(nsf: &str, t: i64, src: &[IpAddr], dst: &[IpAddr], rule: &str) -> Message {
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

pub fn intrusion(
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

pub fn log(nsf: &str, t: i64, text: &str) -> Message {
    let kind = Kind::GenericLog(GenericLog {
        format: Some("rfc5424".into()),
        reason: Some("no normaliser".into()),
        app_name: Some("sshd".into()),
    });
    let mut m = with_common(Message::new(nsf, kind), t, Severity::Info, Some(text));
    m.common.raw = Some(format!("<13>1 - {nsf} sshd - - - {text}"));
    m
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// Every page of `q`, concatenated.
pub fn all_pages(store: &dyn MessageStore, q: &MessageQuery) -> Vec<StoredMessage> {
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

pub fn query_ids(store: &dyn MessageStore, q: MessageQuery) -> Vec<u64> {
    all_pages(store, &q)
        .iter()
        .map(|s| s.message.common.id.unwrap())
        .collect()
}

/// Fills an empty store with a small mixed set: ids 1..=8.
pub fn fill_sample(store: &dyn MessageStore) {
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
}

fn feed(s: &dyn MessageStore, after: u64) -> Vec<(u64, ChangeKind, u64)> {
    s.changes(after, 10_000)
        .unwrap()
        .into_iter()
        .map(|(seq, c, m)| (seq, c, m.message.common.id.unwrap()))
        .collect()
}

// ---- cases -----------------------------------------------------------------------------------

pub fn inserted_messages_read_back_equal_with_ids_and_open_state(store: Arc<dyn MessageStore>) {
    let store = &*store;
    fill_sample(store);
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
    assert_eq!(got.ack, None);
    assert_eq!(
        store.get(3).unwrap().unwrap().state,
        None,
        "logs have no state"
    );
    assert!(store.get(99).unwrap().is_none());
    assert!(store.get(u64::MAX).unwrap().is_none());
    assert_eq!(store.count().unwrap(), 8);
}

pub fn messages_in_reads_a_window_across_pages_newest_first(store: Arc<dyn MessageStore>) {
    let n = pharos_store::MAX_LIMIT as i64 + 5;
    let mut msgs: Vec<Message> = (0..n)
        .map(|i| log("fw", 1_000 + i, "x"))
        .chain([log("fw", 999, "before"), log("fw", 1_000 + n, "at the end")])
        .collect();
    store.insert_batch(&mut msgs).unwrap();
    let got: Vec<i64> = pharos_store::messages_in(&*store, at(1_000), at(1_000 + n))
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

pub fn empty_query_returns_all_newest_first(store: Arc<dyn MessageStore>) {
    fill_sample(&*store);
    assert_eq!(
        query_ids(&*store, MessageQuery::default()),
        vec![8, 7, 6, 5, 4, 3, 2, 1]
    );
}

pub fn each_filter_alone(store: Arc<dyn MessageStore>) {
    let s = &*store;
    fill_sample(s);
    let q = MessageQuery::default;
    let cases: Vec<(MessageQuery, Vec<u64>, &str)> = vec![
        (
            MessageQuery {
                from: Some(at(300)),
                ..q()
            },
            vec![8, 7, 6, 5, 4, 3],
            "from is inclusive",
        ),
        (
            MessageQuery {
                to: Some(at(300)),
                ..q()
            },
            vec![2, 1],
            "to is exclusive",
        ),
        (
            MessageQuery {
                kinds: vec!["system-alarm".into()],
                ..q()
            },
            vec![8, 1],
            "one kind",
        ),
        (
            MessageQuery {
                kinds: vec!["generic-log".into(), "ddos".into(), "ddos".into()],
                ..q()
            },
            vec![6, 3, 2],
            "kinds, repeated",
        ),
        (
            MessageQuery {
                min_severity: Some(Severity::High),
                ..q()
            },
            vec![7, 2, 1],
            "severity",
        ),
        (
            MessageQuery {
                min_severity: Some(Severity::Info),
                ..q()
            },
            vec![8, 7, 6, 5, 4, 3, 2, 1],
            "lowest severity",
        ),
        (
            MessageQuery {
                nsf: Some("fw-1".into()),
                ..q()
            },
            vec![3, 1],
            "nsf",
        ),
        (
            MessageQuery {
                nsf: Some("fw".into()),
                ..q()
            },
            vec![],
            "nsf is exact",
        ),
        (
            MessageQuery {
                rule: Some("ssh-brute".into()),
                ..q()
            },
            vec![5, 4],
            "rule",
        ),
        (
            MessageQuery {
                text: Some("CLOSED BY".into()),
                ..q()
            },
            vec![6],
            "text, case-insensitive",
        ),
        (
            MessageQuery {
                text: Some("cpu usage".into()),
                ..q()
            },
            vec![1],
            "text",
        ),
        (
            MessageQuery {
                text: Some("%".into()),
                ..q()
            },
            vec![],
            "no LIKE wildcards",
        ),
        (
            MessageQuery {
                text: Some("_".into()),
                ..q()
            },
            vec![],
            "no LIKE wildcards",
        ),
        (
            MessageQuery {
                state: Some(EventState::Open),
                ..q()
            },
            vec![8, 7, 5, 4, 2, 1],
            "state",
        ),
        (
            MessageQuery {
                addr: Some(net("10.0.0.0/8")),
                ..q()
            },
            vec![5],
            "addr",
        ),
        (
            MessageQuery {
                src: Some(net("10.1.2.3/32")),
                ..q()
            },
            vec![5],
            "src",
        ),
        (
            MessageQuery {
                dst: Some(net("10.1.2.3/32")),
                ..q()
            },
            vec![],
            "dst is not src",
        ),
        (
            MessageQuery {
                dst: Some(net("192.0.2.0/24")),
                ..q()
            },
            vec![2],
            "dst",
        ),
        (
            MessageQuery {
                after_id: Some(6),
                ..q()
            },
            vec![8, 7],
            "after_id",
        ),
    ];
    for (query, want, what) in cases {
        assert_eq!(query_ids(s, query.clone()), want, "{what}: {query:?}");
    }
}

pub fn filters_combined(store: Arc<dyn MessageStore>) {
    let s = &*store;
    fill_sample(s);
    let q = MessageQuery {
        from: Some(at(150)),
        to: Some(at(700)),
        kinds: vec!["intrusion".into(), "ddos".into()],
        min_severity: Some(Severity::Low),
        addr: Some(net("0.0.0.0/0")),
        ..Default::default()
    };
    assert_eq!(query_ids(s, q.clone()), vec![5, 2]);
    let cases: Vec<(MessageQuery, Vec<u64>)> = vec![
        (
            MessageQuery {
                min_severity: Some(Severity::Middle),
                ..q.clone()
            },
            vec![2],
        ),
        (
            MessageQuery {
                rule: Some("ssh-brute".into()),
                ..q.clone()
            },
            vec![5],
        ),
        (
            MessageQuery {
                nsf: Some("ids-1".into()),
                text: Some("ATTEMPT".into()),
                ..q.clone()
            },
            vec![5],
        ),
        (
            MessageQuery {
                src: Some(net("10.1.0.0/16")),
                dst: Some(net("10.9.0.0/16")),
                ..q.clone()
            },
            vec![5],
        ),
        (
            MessageQuery {
                src: Some(net("10.9.0.0/16")),
                ..q.clone()
            },
            vec![],
        ),
    ];
    for (query, want) in cases {
        assert_eq!(query_ids(s, query.clone()), want, "{query:?}");
    }
}

pub fn prefixes_match_by_family_including_zero_length_and_host_routes(
    store: Arc<dyn MessageStore>,
) {
    let s = &*store;
    fill_sample(s);
    let addr = |n: &str| {
        query_ids(
            s,
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
    assert_eq!(addr("2001:db8:1::ffff/48"), vec![4]);
    // An IPv4 prefix does not match the IPv4-mapped IPv6 address of message 7, nor the reverse.
    assert_eq!(addr("10.1.2.3/32"), vec![5]);
    assert_eq!(addr("::ffff:10.1.2.3/128"), vec![7]);
    assert_eq!(addr("::ffff:0:0/96"), vec![7]);
}

pub fn address_space_edges_match(store: Arc<dyn MessageStore>) {
    let edge = &*store;
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
            edge,
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

pub fn unknown_kind_and_bad_cursor_are_errors_naming_the_input(store: Arc<dyn MessageStore>) {
    let s = &*store;
    fill_sample(s);
    match s.query(&MessageQuery {
        kinds: vec!["ddoss".into()],
        ..Default::default()
    }) {
        Err(StoreError::BadQuery(m)) => {
            assert!(m.contains("\"ddoss\"") && m.contains("ddos"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    for bad in ["not-a-cursor", "0000000000000000ffffffffffffffff"] {
        match s.query(&MessageQuery {
            cursor: Some(bad.into()),
            ..Default::default()
        }) {
            Err(StoreError::BadCursor(c)) => assert_eq!(c, bad),
            other => panic!("{other:?}"),
        }
    }
}

pub fn limit_defaults_to_100_and_is_capped(store: Arc<dyn MessageStore>) {
    let s = &*store;
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

pub fn paging_returns_every_row_once_in_order_while_rows_are_inserted(
    store: Arc<dyn MessageStore>,
) {
    let store = &*store;
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
        // Rows inserted between pages: newer than everything, older than everything, in the middle.
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

pub fn set_state_on_events_and_not_on_logs(store: Arc<dyn MessageStore>) {
    let s = &*store;
    fill_sample(s);
    let before = Utc::now() - chrono::Duration::seconds(1);
    let got = s.set_state(2, EventState::Acknowledged).unwrap();
    assert_eq!(got.state, Some(EventState::Acknowledged));
    assert_eq!(got.message.common.id, Some(2));
    assert!(got.state_changed_at.unwrap() >= before);
    assert_eq!(s.get(2).unwrap().unwrap(), got);
    assert_eq!(
        query_ids(
            s,
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

pub fn update_replaces_content_keeps_id_and_state(store: Arc<dyn MessageStore>) {
    let s = &*store;
    fill_sample(s);
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
    let q = |q: MessageQuery| query_ids(s, q);
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
    missing.common.id = Some(u64::MAX);
    assert!(matches!(s.update(&missing), Err(StoreError::NotFound(_))));
    missing.common.id = None;
    assert!(matches!(s.update(&missing), Err(StoreError::MissingId)));
}

pub fn delete_before_removes_old_messages_in_chunks_and_ids_are_never_reused(
    store: Arc<dyn MessageStore>,
) {
    let s = &*store;
    let n = 5_000 * 2 + 123;
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
    let remaining = all_pages(
        s,
        &MessageQuery {
            limit: 10_000,
            ..Default::default()
        },
    );
    assert_eq!(remaining.len(), 1000);
    assert!(
        remaining
            .iter()
            .all(|m| m.message.common.event_time >= at(cut))
    );
    // The address rows of deleted messages no longer match.
    assert_eq!(
        query_ids(
            s,
            MessageQuery {
                addr: Some(net("10.0.0.1/32")),
                to: Some(at(cut)),
                ..Default::default()
            }
        ),
        Vec::<u64>::new()
    );
    // Deleting the newest ids does not make their ids available again.
    assert_eq!(s.delete_before(at(n + 1)).unwrap(), 1000);
    let mut one = vec![log("fw", 0, "after")];
    assert_eq!(s.insert_batch(&mut one).unwrap(), vec![last + 1]);
}

pub fn count_by_kind_counts_each_kind(store: Arc<dyn MessageStore>) {
    fill_sample(&*store);
    assert_eq!(
        store.count_by_kind().unwrap(),
        vec![
            ("ddos".into(), 1),
            ("generic-log".into(), 2),
            ("intrusion".into(), 3),
            ("system-alarm".into(), 2)
        ]
    );
}

pub fn empty_batch_is_a_no_op(store: Arc<dyn MessageStore>) {
    assert_eq!(store.insert_batch(&mut []).unwrap(), Vec::<u64>::new());
    assert_eq!(store.count().unwrap(), 0);
    assert_eq!(store.last_change().unwrap(), 0);
}

pub fn concurrent_writers_and_readers(store: Arc<dyn MessageStore>) {
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
    let ids: HashSet<u64> = all.iter().map(|m| m.message.common.id.unwrap()).collect();
    assert_eq!(ids, (1..=800).collect(), "ids 1..=800, each once");
    let seqs: Vec<u64> = store
        .changes(0, 10_000)
        .unwrap()
        .iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(seqs, (1..=800).collect::<Vec<_>>(), "one feed entry each");
}

// ---- property: query == naive filter ---------------------------------------------------------

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

/// Step between generated event times (~17 minutes, not a divisor of an hour).
const SPREAD_MS: i64 = 1_000_003;

/// A message from small pools, so filters hit and miss.
pub fn arb_message() -> impl Strategy<Value = Message> {
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

/// A query over [`arb_message`]'s pools; `after_id` counts from 0 (the caller shifts it).
pub fn arb_query() -> impl Strategy<Value = MessageQuery> {
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
pub fn naive_matches(s: &StoredMessage, q: &MessageQuery) -> bool {
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

/// Every stored message matches exactly the queries [`naive_matches`] says, page by page in
/// order. One store for all generated cases (emptied by retention before each), so ids grow
/// across cases; `after_id` is shifted by the case's first id.
pub fn query_equals_naive_filter(store: Arc<dyn MessageStore>) {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        ..ProptestConfig::default()
    });
    let strategy = (
        proptest::collection::vec(arb_message(), 0..40),
        proptest::collection::vec((0usize..40, 0usize..3), 0..8),
        proptest::collection::vec(arb_query(), 1..6),
    );
    let far_future = at(100 * SPREAD_MS);
    runner
        .run(&strategy, |(msgs, acks, queries)| {
            store.delete_before(far_future).unwrap();
            let mut msgs = msgs;
            store.insert_batch(&mut msgs).unwrap();
            let base = msgs.first().and_then(|m| m.common.id).unwrap_or(1) - 1;
            for (i, st) in acks {
                if let Some(m) = msgs.get(i) {
                    let state = [
                        EventState::Open,
                        EventState::Acknowledged,
                        EventState::Closed,
                    ][st];
                    let r = store.set_state(m.common.id.unwrap(), state);
                    prop_assert_eq!(r.is_ok(), m.kind.is_event());
                }
            }
            let by_id: HashMap<u64, &Message> =
                msgs.iter().map(|m| (m.common.id.unwrap(), m)).collect();
            let mut stored: Vec<StoredMessage> = msgs
                .iter()
                .map(|m| store.get(m.common.id.unwrap()).unwrap().unwrap())
                .collect();
            for s in &stored {
                prop_assert_eq!(&s.message, by_id[&s.message.common.id.unwrap()]);
            }
            stored.sort_by_key(|s| {
                std::cmp::Reverse((s.message.common.event_time, s.message.common.id))
            });
            for mut q in queries {
                q.after_id = q.after_id.map(|a| a + base);
                let got: Vec<u64> = all_pages(&*store, &q)
                    .iter()
                    .map(|s| s.message.common.id.unwrap())
                    .collect();
                let want: Vec<u64> = stored
                    .iter()
                    .filter(|s| naive_matches(s, &q))
                    .map(|s| s.message.common.id.unwrap())
                    .collect();
                prop_assert_eq!(got, want, "query {:?}", q);
            }
            Ok(())
        })
        .unwrap();
}

// ---- change feed -----------------------------------------------------------------------------

pub fn change_feed_records_inserts_updates_and_state_changes_in_order(
    store: Arc<dyn MessageStore>,
) {
    let s = &*store;
    assert_eq!(s.last_change().unwrap(), 0);
    assert!(feed(s, 0).is_empty());
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
    assert!(s.update(&log("fw", 3, "no id")).is_err());
    assert_eq!(
        feed(s, 0),
        vec![
            (1, ChangeKind::Created, 1),
            (2, ChangeKind::Created, 2),
            (3, ChangeKind::Updated, 1),
            (4, ChangeKind::State, 1),
        ],
        "failed calls leave no entry and no gap"
    );
    assert_eq!(s.last_change().unwrap(), 4);
    assert_eq!(
        feed(s, 2),
        vec![(3, ChangeKind::Updated, 1), (4, ChangeKind::State, 1)]
    );
    assert_eq!(s.changes(0, 1).unwrap().len(), 1, "limit is honoured");
    assert_eq!(s.changes(0, 0).unwrap().len(), 1, "limit 0 reads one");
    assert!(s.changes(u64::MAX, 10).unwrap().is_empty());
    // The message is read as it is now: the created entry already shows the later update.
    let first = &s.changes(0, 1).unwrap()[0].2;
    assert_eq!(first.message.common.severity, Severity::Critical);
    assert_eq!(first.state, Some(EventState::Acknowledged));
}

pub fn change_feed_skips_messages_deleted_by_retention_and_never_reuses_seqs(
    store: Arc<dyn MessageStore>,
) {
    let s = &*store;
    let mut msgs: Vec<Message> = (0..10).map(|i| log("fw", i * 10, "x")).collect();
    s.insert_batch(&mut msgs).unwrap();
    assert_eq!(s.delete_before(at(50)).unwrap(), 5);
    let got = feed(s, 0);
    assert_eq!(
        got.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![6, 7, 8, 9, 10]
    );
    s.delete_before(at(1000)).unwrap();
    assert!(feed(s, 0).is_empty());
    assert_eq!(s.last_change().unwrap(), 10);
    s.insert_batch(&mut [log("fw", 0, "later")]).unwrap();
    assert_eq!(feed(s, 0), vec![(11, ChangeKind::Created, 11)]);
}

pub fn watch_changes_is_told_the_newest_seq_after_each_commit(s: Arc<dyn MessageStore>) {
    let mut rx = s.watch_changes();
    assert_eq!(*rx.borrow_and_update(), 0);
    assert!(!rx.has_changed().unwrap());
    s.insert_batch(&mut [alarm("fw", 1, Severity::High, None), log("fw", 2, "b")])
        .unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), 2);
    // What the watch announces is readable at once.
    assert_eq!(feed(&*s, 0).len(), 2);
    s.set_state(1, EventState::Closed).unwrap();
    assert_eq!(*rx.borrow_and_update(), 3);
    // A second acknowledgement changes nothing, so the watch stays quiet.
    s.acknowledge(1, "alice", None).unwrap();
    assert_eq!(*rx.borrow_and_update(), 4);
    assert!(!s.acknowledge(1, "bob", None).unwrap().first);
    assert!(!rx.has_changed().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let s2 = s.clone();
    let t = std::thread::spawn(move || s2.insert_batch(&mut [log("fw", 3, "c")]).unwrap());
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), rx.changed())
            .await
            .expect("watch fires")
            .unwrap();
    });
    t.join().unwrap();
    assert_eq!(*rx.borrow(), 5);
}

pub fn acknowledge_records_actor_and_comment_once_and_a_second_ack_changes_nothing(
    store: Arc<dyn MessageStore>,
) {
    let s = &*store;
    fill_sample(s);
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
        feed(s, seq),
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
    // An event acknowledged by set_state has no record yet, and is not acknowledged again.
    s.set_state(5, EventState::Acknowledged).unwrap();
    let by_state = s.acknowledge(5, "dave", None).unwrap();
    assert!(!by_state.first);
    assert_eq!(by_state.stored.ack, None);
}

pub fn acknowledging_a_closed_event_keeps_it_closed_and_reopening_clears_the_ack(
    store: Arc<dyn MessageStore>,
) {
    let s = &*store;
    fill_sample(s);
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

/// As the API and the stages use a store: blocking calls through `spawn_blocking`, the watch and
/// `last_change` straight from async tasks (which must not block or panic).
pub fn store_serves_async_code_through_spawn_blocking_and_the_watch(store: Arc<dyn MessageStore>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut rx = store.watch_changes();
        assert_eq!(store.last_change().unwrap(), 0);
        let s = store.clone();
        let follower = tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut after = s.last_change().unwrap();
            while seen.len() < 30 {
                if rx.changed().await.is_err() {
                    break;
                }
                let s2 = s.clone();
                let entries = tokio::task::spawn_blocking(move || s2.changes(after, 100))
                    .await
                    .unwrap()
                    .unwrap();
                for (seq, _, _) in entries {
                    seen.push(seq);
                    after = seq;
                }
            }
            seen
        });
        for i in 0..10 {
            let s = store.clone();
            tokio::task::spawn_blocking(move || {
                s.insert_batch(&mut [log("fw", i, "a"), log("fw", i, "b"), log("fw", i, "c")])
            })
            .await
            .unwrap()
            .unwrap();
        }
        let seen = tokio::time::timeout(Duration::from_secs(20), follower)
            .await
            .expect("the follower saw every change")
            .unwrap();
        assert_eq!(seen, (1..=30).collect::<Vec<_>>());
        let s = store.clone();
        let page = tokio::task::spawn_blocking(move || s.query(&MessageQuery::default()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(page.items.len(), 30);
        assert_eq!(store.last_change().unwrap(), 30);
    });
}
