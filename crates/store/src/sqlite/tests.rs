use std::net::IpAddr;

use chrono::{DateTime, TimeZone, Utc};
use ipnet::IpNet;
use pharos_model::ident::{AlarmSeverity, DdosType, SystemAlarmCategory};
use pharos_model::{
    DdosEvent, EventState, GenericLog, IntrusionEvent, Kind, Message, Severity, SystemAlarm,
};

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

// ---- change feed ----

fn feed(s: &SqliteStore, after: u64) -> Vec<(u64, ChangeKind, u64)> {
    s.changes(after, 10_000)
        .unwrap()
        .into_iter()
        .map(|(seq, c, m)| (seq, c, m.message.common.id.unwrap()))
        .collect()
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
