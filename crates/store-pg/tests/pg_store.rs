//! What only the PostgreSQL store has: migrations, several stores (nodes) on one database and
//! the change feed between them, lost connections, rows corrupted under the store, and answers
//! equal to SQLite's on the same random data.

#[path = "../../store/tests/conformance/mod.rs"]
mod conformance;
mod server;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use conformance::{alarm, all_pages, arb_message, arb_query, at, ddos, intrusion, ip, log, net};
use pharos_model::{EventState, Message, Severity};
use pharos_store::{MessageQuery, MessageStore, SqliteStore, StoreError};
use pharos_store_pg::{PgError, PgStore, migrations};
use proptest::prelude::*;
use server::PgServer;

/// Polls `f` until it holds (10 s at most).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "not within 10 s: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---- migrations ------------------------------------------------------------------------------

#[test]
fn migrations_apply_from_empty_and_a_second_run_is_a_no_op() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let db = server.create_database();
    let mut c = server.client(&db);
    assert_eq!(migrations::applied(&mut c).unwrap(), Vec::<i32>::new());
    assert_eq!(migrations::migrate(&mut c).unwrap(), vec![1, 2, 3]);
    assert_eq!(migrations::migrate(&mut c).unwrap(), Vec::<i32>::new());
    assert_eq!(migrations::applied(&mut c).unwrap(), vec![1, 2, 3]);
    // Opening a store on a migrated database applies nothing either.
    let s = PgStore::connect(&server.url_for(&db)).unwrap();
    assert_eq!(s.count().unwrap(), 0);
    let rows: i64 = c
        .query_one("SELECT count(*) FROM pharos_schema_migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 3);
}

#[test]
fn nodes_starting_together_apply_each_migration_once() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let db = server.create_database();
    let url = server.url_for(&db);
    let stores: Vec<PgStore> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| PgStore::connect(&url).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(stores.len(), 4);
    let mut c = server.client(&db);
    assert_eq!(migrations::applied(&mut c).unwrap(), vec![1, 2, 3]);
}

#[test]
fn version_1_database_is_upgraded_to_2_with_messages_kept_and_an_empty_feed() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let db = server.create_database();
    let url = server.url_for(&db);
    // A version 2 store writes the rows; then the database is put back to the version 1 layout.
    let mut msgs = vec![
        ddos("fw-1", 0, &[ip("198.51.100.7")], &[ip("192.0.2.3")], "r1"),
        log("fw-1", 10, "no address"),
    ];
    {
        let s = PgStore::connect(&url).unwrap();
        s.insert_batch(&mut msgs).unwrap();
        s.acknowledge(1, "alice", Some("seen")).unwrap();
    }
    let mut c = server.client(&db);
    c.batch_execute(
        "DROP TABLE pharos_tokens, pharos_subscription_specs, pharos_subscription_positions;
         DROP TABLE pharos_changes;
         ALTER TABLE pharos_store_head DROP COLUMN last_seq;
         DELETE FROM pharos_schema_migrations WHERE version >= 2;",
    )
    .unwrap();
    assert_eq!(migrations::applied(&mut c).unwrap(), vec![1]);

    let s = PgStore::connect(&url).unwrap();
    assert_eq!(migrations::applied(&mut c).unwrap(), vec![1, 2, 3]);
    assert_eq!(s.count().unwrap(), 2);
    let got = s.get(1).unwrap().unwrap();
    assert_eq!(got.message, msgs[0]);
    assert_eq!(got.ack.unwrap().by.as_deref(), Some("alice"));
    let victim = MessageQuery {
        dst: Some(net("192.0.2.3/32")),
        ..Default::default()
    };
    assert_eq!(all_pages(&s, &victim).len(), 1);
    // The feed starts empty; ids continue where they were.
    assert_eq!(s.last_change().unwrap(), 0);
    assert!(s.changes(0, 10).unwrap().is_empty());
    assert_eq!(s.insert_batch(&mut [log("fw", 20, "c")]).unwrap(), vec![3]);
    let feed: Vec<(u64, u64)> = s
        .changes(0, 10)
        .unwrap()
        .iter()
        .map(|(seq, _, m)| (*seq, m.message.common.id.unwrap()))
        .collect();
    assert_eq!(feed, vec![(1, 3)]);
}

#[test]
fn migrate_to_1_then_latest_equals_migrating_at_once() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let (a, b) = (server.create_database(), server.create_database());
    let (mut ca, mut cb) = (server.client(&a), server.client(&b));
    assert_eq!(migrations::migrate_to(&mut ca, 1).unwrap(), vec![1]);
    assert_eq!(migrations::migrate(&mut ca).unwrap(), vec![2, 3]);
    assert_eq!(migrations::migrate(&mut cb).unwrap(), vec![1, 2, 3]);
    let layout = |c: &mut postgres::Client| -> Vec<(String, String, String)> {
        c.query(
            "SELECT table_name::text, column_name::text, data_type::text
             FROM information_schema.columns WHERE table_schema = 'public'
             ORDER BY 1, 2",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
    };
    assert_eq!(layout(&mut ca), layout(&mut cb));
    let indexes = |c: &mut postgres::Client| -> Vec<String> {
        c.query(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
    };
    assert_eq!(indexes(&mut ca), indexes(&mut cb));
}

#[test]
fn version_2_database_is_upgraded_to_3_with_messages_and_feed_kept_and_empty_token_tables() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let (db, fresh) = (server.create_database(), server.create_database());
    let mut c = server.client(&db);
    assert_eq!(migrations::migrate_to(&mut c, 2).unwrap(), vec![1, 2]);
    let url = server.url_for(&db);
    // A version 2 database with messages and a feed (written by hand: a store migrates).
    c.batch_execute(
        "INSERT INTO pharos_changes (seq, message_id, change, at_ns) VALUES (1, 1, 0, 5);
         UPDATE pharos_store_head SET last_seq = 1;",
    )
    .unwrap();
    let s = PgStore::connect(&url).unwrap();
    assert_eq!(migrations::applied(&mut c).unwrap(), vec![1, 2, 3]);
    assert_eq!(s.last_change().unwrap(), 1);
    assert_eq!(
        s.insert_batch(&mut [log("fw", 20, "after")]).unwrap(),
        vec![1]
    );
    assert_eq!(s.last_change().unwrap(), 2);
    for t in [
        "pharos_tokens",
        "pharos_subscription_specs",
        "pharos_subscription_positions",
    ] {
        let n: i64 = c
            .query_one(&format!("SELECT count(*) FROM {t}"), &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "{t}");
    }
    // The same layout as a database migrated at once.
    let layout = |c: &mut postgres::Client| -> Vec<(String, String, String, String)> {
        c.query(
            "SELECT table_name::text, column_name::text, data_type::text,
                    coalesce(column_default, '')
             FROM information_schema.columns WHERE table_schema = 'public'
             ORDER BY 1, 2",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
    };
    let mut f = server.client(&fresh);
    assert_eq!(migrations::migrate(&mut f).unwrap(), vec![1, 2, 3]);
    assert_eq!(layout(&mut c), layout(&mut f));
    // A token hash must be 32 bytes, names are unique.
    let e = c
        .batch_execute(
            "INSERT INTO pharos_tokens (name, hash, role, created) VALUES ('x', '\\x00', 'viewer', 0)",
        )
        .unwrap_err();
    assert!(format!("{e:?}").contains("check"), "{e:?}");
}

#[test]
fn newer_or_edited_schema_is_refused_naming_the_versions() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let db = server.create_database();
    let url = server.url_for(&db);
    drop(PgStore::connect(&url).unwrap());
    let mut c = server.client(&db);
    c.batch_execute(
        "INSERT INTO pharos_schema_migrations (version, name, checksum) VALUES (4, 'future', 0)",
    )
    .unwrap();
    match PgStore::connect(&url) {
        Err(PgError::Store(StoreError::UnsupportedSchema { found, supported })) => {
            assert_eq!((found, supported), (4, 3))
        }
        other => panic!("{other:?}"),
    }
    c.batch_execute(
        "DELETE FROM pharos_schema_migrations WHERE version = 4;
         UPDATE pharos_schema_migrations SET checksum = 42 WHERE version = 2;",
    )
    .unwrap();
    let e = PgStore::connect(&url).unwrap_err();
    assert!(
        matches!(e, PgError::EditedMigration { version: 2, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("change_feed"), "{e}");
}

#[test]
fn a_failing_migration_changes_nothing() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let db = server.create_database();
    let mut c = server.client(&db);
    // A table in the way of version 1: its CREATE fails, and nothing of the run is kept.
    c.batch_execute("CREATE TABLE pharos_messages (x int)")
        .unwrap();
    let e = migrations::migrate(&mut c).unwrap_err();
    assert!(matches!(e, PgError::Migration { version: 1, .. }), "{e:?}");
    assert!(e.to_string().contains("already exists"), "{e}");
    assert_eq!(migrations::applied(&mut c).unwrap(), Vec::<i32>::new());
    let head: bool = c
        .query_one("SELECT to_regclass('pharos_store_head') IS NULL", &[])
        .unwrap()
        .get(0);
    assert!(head, "the transaction was rolled back");
}

// ---- connections ---------------------------------------------------------------------------

#[test]
fn unreachable_server_is_an_error_naming_the_target_and_what_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "host={} port=1 user=pharos dbname=pharos connect_timeout=2",
        dir.path().display()
    );
    let e = PgStore::connect(&url).unwrap_err().to_string();
    assert!(
        e.contains(&dir.path().display().to_string()) && e.contains("dbname=pharos"),
        "{e}"
    );
    assert!(e.contains("is the server running"), "{e}");
}

#[test]
fn store_works_over_loopback_tcp() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let s = PgStore::connect(&server.tcp_url_for("postgres")).unwrap();
    s.insert_batch(&mut [log("fw", 1, "over tcp")]).unwrap();
    assert_eq!(s.count().unwrap(), 1);
}

#[test]
fn data_and_feed_survive_reconnecting() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let mut msgs = vec![
        alarm("fw-1", 1, Severity::High, Some("disk")),
        log("fw-1", 2, "hello"),
    ];
    {
        let s = PgStore::connect(&server.url()).unwrap();
        s.insert_batch(&mut msgs).unwrap();
        s.set_state(1, EventState::Closed).unwrap();
    }
    let s = PgStore::connect(&server.url()).unwrap();
    assert_eq!(s.count().unwrap(), 2);
    let got = s.get(1).unwrap().unwrap();
    assert_eq!(got.message, msgs[0]);
    assert_eq!(got.state, Some(EventState::Closed));
    assert_eq!(s.last_change().unwrap(), 3);
    assert_eq!(
        s.insert_batch(&mut [log("fw-1", 3, "again")]).unwrap(),
        vec![3]
    );
    assert_eq!(s.last_change().unwrap(), 4);
}

#[test]
fn lost_connections_are_reopened_and_the_listener_catches_up() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let a = PgStore::connect(&server.url()).unwrap();
    let b = PgStore::connect(&server.url()).unwrap();
    a.insert_batch(&mut [log("fw", 1, "before")]).unwrap();
    assert_eq!(b.count().unwrap(), 1);
    eventually("b hears a's first change", || b.last_change().unwrap() == 1);
    // Cut every connection of both stores (writers, readers, listeners).
    let mut admin = server.client("postgres");
    let cut: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = 'pharos' AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(cut >= 4, "writers, readers and listeners: {cut}");
    // The next write finds its connection dead when it begins and opens a new one; the next
    // read finds its pooled connection dead and runs again on a new one: neither fails.
    assert_eq!(
        a.insert_batch(&mut [log("fw", 2, "after")]).unwrap(),
        vec![2]
    );
    assert_eq!(b.count().unwrap(), 2);
    assert_eq!(b.get(2).unwrap().unwrap().message.common.nsf_name, "fw");
    // b's listener reconnects and reads the head: the change made while it was away is seen.
    eventually("b's listener reconnects and catches up", || {
        b.last_change().unwrap() == 2
    });
    a.insert_batch(&mut [log("fw", 3, "later")]).unwrap();
    eventually("b hears a's next change", || b.last_change().unwrap() == 3);
}

#[test]
fn dropping_the_last_handle_inside_an_async_task_does_not_panic() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let store: Arc<dyn MessageStore> = Arc::new(PgStore::connect(&server.url()).unwrap());
    store.count().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        tokio::spawn(async move { drop(store) }).await.unwrap();
    });
}

// ---- several nodes on one database ---------------------------------------------------------

#[test]
fn another_node_sees_changes_through_notifications() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let a = PgStore::connect(&server.url()).unwrap();
    let b = PgStore::connect(&server.url()).unwrap();
    let mut rx = b.watch_changes();
    assert_eq!(*rx.borrow_and_update(), 0);
    a.insert_batch(&mut [alarm("fw", 1, Severity::High, None)])
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), rx.changed())
            .await
            .expect("b's watch fires for a's insert")
            .unwrap();
    });
    assert_eq!(*rx.borrow_and_update(), 1);
    // And the other way: b acknowledges, a hears it; both read the same feed.
    let ack = b.acknowledge(1, "alice", None).unwrap();
    assert!(ack.first);
    eventually("a hears b's acknowledgement", || {
        a.last_change().unwrap() == 2
    });
    assert_eq!(a.changes(0, 10).unwrap(), b.changes(0, 10).unwrap());
    assert!(
        !a.acknowledge(1, "bob", None).unwrap().first,
        "counted once"
    );
}

#[test]
fn stores_in_different_schemas_of_one_database_keep_their_own_feeds() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let mut admin = server.client("postgres");
    admin
        .batch_execute("CREATE SCHEMA site_a; CREATE SCHEMA site_b;")
        .unwrap();
    let url = |schema: &str| format!("{} options='-c search_path={schema}'", server.url());
    let a = PgStore::connect(&url("site_a")).unwrap();
    let b = PgStore::connect(&url("site_b")).unwrap();
    assert_eq!((a.schema(), b.schema()), ("site_a", "site_b"));
    a.insert_batch(&mut [log("fw", 1, "a1"), log("fw", 2, "a2")])
        .unwrap();
    b.insert_batch(&mut [log("fw", 1, "b1")]).unwrap();
    let a2 = PgStore::connect(&url("site_a")).unwrap();
    a.insert_batch(&mut [log("fw", 3, "a3")]).unwrap();
    eventually("a2 hears a", || a2.last_change().unwrap() == 3);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(b.last_change().unwrap(), 1, "b ignores a's notifications");
    assert_eq!((a.count().unwrap(), b.count().unwrap()), (3, 1));
}

/// The property the head-row lock exists for: writers on several nodes commit concurrently, and
/// a follower that reads the feed as the API's SSE stream does (up to `last_change`, treating
/// an empty read below it as "deleted by retention") sees every change exactly once, in order.
/// With seqs from a sequence, a transaction that took seq N and committed after N+1 would be
/// skipped by a follower that had already moved past N+1.
#[test]
fn feed_followers_see_every_change_once_in_order_under_concurrent_writers_on_several_nodes() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let nodes: Vec<Arc<PgStore>> = (0..3)
        .map(|_| Arc::new(PgStore::connect(&server.url()).unwrap()))
        .collect();
    let follower = Arc::new(PgStore::connect(&server.url()).unwrap());
    let done = Arc::new(AtomicBool::new(false));
    const WRITERS: usize = 6;
    const ROUNDS: usize = 40;
    let follow = {
        let (f, done) = (follower.clone(), done.clone());
        std::thread::spawn(move || {
            let mut after = 0u64;
            let mut seen: Vec<u64> = Vec::new();
            loop {
                let finished = done.load(Ordering::SeqCst);
                let last = f.last_change().unwrap();
                if after < last {
                    let entries = f.changes(after, 37).unwrap();
                    if entries.is_empty() {
                        // What Feed::read does: nothing below `last` means deleted by retention.
                        after = last;
                    }
                    for (seq, _, _) in entries {
                        seen.push(seq);
                        after = seq;
                    }
                } else if finished {
                    return seen;
                } else {
                    std::thread::yield_now();
                }
            }
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let node = nodes[w % nodes.len()].clone();
            std::thread::spawn(move || {
                for r in 0..ROUNDS {
                    let n = 1 + (w + r) % 5;
                    let mut batch: Vec<Message> = (0..n)
                        .map(|j| log(&format!("w{w}"), (r * 10 + j) as i64, "x"))
                        .collect();
                    let ids = node.insert_batch(&mut batch).unwrap();
                    if r % 3 == 0 {
                        let mut m = node.get(ids[0]).unwrap().unwrap().message;
                        m.common.message = Some("updated".into());
                        node.update(&m).unwrap();
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let total = nodes[0].changes(0, 10_000).unwrap().len() as u64;
    // The follower's node has heard every commit before it is told to stop.
    eventually("the follower hears the last commit", || {
        follower.last_change().unwrap() == total
    });
    done.store(true, Ordering::SeqCst);
    let seen = follow.join().unwrap();
    assert_eq!(
        seen,
        (1..=total).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    let ids: Vec<u64> = all_pages(
        &*nodes[1],
        &MessageQuery {
            limit: 10_000,
            ..Default::default()
        },
    )
    .iter()
    .map(|m| m.message.common.id.unwrap())
    .collect();
    let unique: HashSet<u64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len());
    assert_eq!(unique, (1..=ids.len() as u64).collect(), "ids without gaps");
}

/// Why seqs come from the head row and not from a sequence: with a sequence, a transaction that
/// took seq 1 can commit after one that took seq 2 (shown first, on the server itself), and a
/// follower that read up to 2 has moved past 1 for good. With the head row, a write waits while
/// another node's write holds the row, and takes the next seq after that one commits.
#[test]
fn a_write_waits_for_another_nodes_open_write_and_takes_the_next_seq() {
    let Some(server) = PgServer::start() else {
        return;
    };
    // The hazard, on a plain bigserial.
    let (mut c1, mut c2, mut reader) = (
        server.client("postgres"),
        server.client("postgres"),
        server.client("postgres"),
    );
    c1.batch_execute("CREATE TABLE demo (seq bigserial PRIMARY KEY)")
        .unwrap();
    let visible = |r: &mut postgres::Client| -> Vec<i64> {
        r.query("SELECT seq FROM demo ORDER BY seq", &[])
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    };
    let mut t1 = c1.transaction().unwrap();
    t1.execute("INSERT INTO demo DEFAULT VALUES", &[]).unwrap();
    c2.execute("INSERT INTO demo DEFAULT VALUES", &[]).unwrap();
    assert_eq!(
        visible(&mut reader),
        vec![2],
        "seq 2 committed before seq 1"
    );
    t1.commit().unwrap();
    assert_eq!(visible(&mut reader), vec![1, 2]);

    // The store: another node's write is open and holds the head row.
    let s = Arc::new(PgStore::connect(&server.url()).unwrap());
    let mut other = server.client("postgres");
    let mut tx = other.transaction().unwrap();
    tx.query("SELECT 1 FROM pharos_store_head FOR UPDATE", &[])
        .unwrap();
    let mut m = log("node-2", 1, "from the other node");
    m.common.id = Some(1);
    tx.execute(
        "INSERT INTO pharos_messages (id, event_ns, receive_ns, kind, severity, nsf, doc)
         VALUES (1, 0, 0, 'generic-log', 0, 'node-2', $1::text::json)",
        &[&pharos_model::json::encode_string(&m)],
    )
    .unwrap();
    tx.batch_execute(
        "INSERT INTO pharos_changes (seq, message_id, change, at_ns) VALUES (1, 1, 0, 0);
         UPDATE pharos_store_head SET last_id = 1, last_seq = 1;",
    )
    .unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let writer = {
        let s = s.clone();
        std::thread::spawn(move || {
            let ids = s.insert_batch(&mut [log("node-1", 2, "mine")]).unwrap();
            done_tx.send(()).unwrap();
            ids
        })
    };
    assert!(
        done_rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "the write waits while the other node's write is open"
    );
    tx.commit().unwrap();
    assert_eq!(writer.join().unwrap(), vec![2]);
    let feed: Vec<(u64, u64)> = s
        .changes(0, 10)
        .unwrap()
        .iter()
        .map(|(seq, _, m)| (*seq, m.message.common.id.unwrap()))
        .collect();
    assert_eq!(feed, vec![(1, 1), (2, 2)]);
    eventually("the other node's seq is heard too", || {
        s.last_change().unwrap() == 2
    });
}

// ---- under the store -------------------------------------------------------------------------

#[test]
fn corrupt_rows_are_errors_naming_the_id() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let s = PgStore::connect(&server.url()).unwrap();
    conformance::fill_sample(&s);
    let mut c = server.client("postgres");
    c.batch_execute(
        "UPDATE pharos_messages SET doc = '{\"not\": \"a message\"}' WHERE id = 3;
         UPDATE pharos_messages SET state = 9 WHERE id = 1;
         UPDATE pharos_changes SET change = 7 WHERE message_id = 2;",
    )
    .unwrap();
    for id in [3, 1] {
        match s.get(id) {
            Err(StoreError::Corrupt { id: got, reason }) => assert_eq!(got, id, "{reason}"),
            other => panic!("{id}: {other:?}"),
        }
    }
    assert!(matches!(
        s.query(&MessageQuery::default()),
        Err(StoreError::Corrupt { id: 3, .. })
    ));
    match s.changes(1, 1) {
        Err(StoreError::Corrupt { id: 2, reason }) => {
            assert!(reason.contains("code 7"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // Rows that are fine still read.
    assert!(s.get(2).unwrap().is_some());
}

#[test]
fn failed_batch_keeps_caller_ids_and_leaves_no_trace() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let s = PgStore::connect(&server.url()).unwrap();
    let mut c = server.client("postgres");
    c.batch_execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN RAISE EXCEPTION 'refused by test'; END $$;
         CREATE TRIGGER no_fw2 BEFORE INSERT ON pharos_messages
             FOR EACH ROW WHEN (NEW.nsf = 'fw-2') EXECUTE FUNCTION refuse();",
    )
    .unwrap();
    let mut msgs = vec![log("fw-1", 1, "a"), log("fw-2", 2, "b")];
    let e = s.insert_batch(&mut msgs).unwrap_err();
    assert!(e.to_string().contains("refused by test"), "{e}");
    assert!(msgs.iter().all(|m| m.common.id.is_none()));
    assert_eq!(s.count().unwrap(), 0);
    assert_eq!(s.last_change().unwrap(), 0);
    // The next batch gets the ids and seqs the failed one did not keep.
    assert_eq!(s.insert_batch(&mut [log("fw-1", 3, "c")]).unwrap(), vec![1]);
    assert_eq!(s.changes(0, 10).unwrap()[0].0, 1);
}

#[test]
fn address_filters_use_the_address_index() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let s = PgStore::connect(&server.url()).unwrap();
    let mut msgs: Vec<Message> = (0..3000)
        .map(|i| {
            intrusion(
                "ids",
                i,
                Some(ip(&format!("10.{}.{}.1", i / 250, i % 250))),
                Some(ip("192.0.2.1")),
                "r",
                Severity::Low,
            )
        })
        .collect();
    s.insert_batch(&mut msgs).unwrap();
    let mut c = server.client("postgres");
    c.batch_execute("ANALYZE").unwrap();
    let plan: Vec<String> = c
        .query(
            "EXPLAIN SELECT message_id FROM pharos_message_addrs
             WHERE addr <<= $1::text::cidr AND role = 0",
            &[&"10.3.0.0/16"],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(plan.contains("pharos_message_addrs_addr_time"), "{plan}");
    let got = all_pages(
        &s,
        &MessageQuery {
            src: Some(net("10.3.0.0/16")),
            ..Default::default()
        },
    );
    assert_eq!(got.len(), 250);
}

// ---- the same answers as SQLite --------------------------------------------------------------

/// The same random messages, state changes, updates, retention and queries on SQLite and on
/// PostgreSQL give equal stored messages, pages, cursors, feeds and counts.
#[test]
fn answers_equal_sqlites_on_random_data() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        ..ProptestConfig::default()
    });
    let strategy = (
        proptest::collection::vec(arb_message(), 0..40),
        proptest::collection::vec((0usize..40, 0usize..4), 0..10),
        proptest::collection::vec(arb_query(), 1..6),
        proptest::option::of(0i64..20),
    );
    runner
        .run(&strategy, |(msgs, ops, queries, cut)| {
            let db = server.create_database();
            let pg = PgStore::connect(&server.url_for(&db)).unwrap();
            let lite = SqliteStore::open_in_memory().unwrap();
            let stores: [&dyn MessageStore; 2] = [&lite, &pg];
            for s in stores {
                let mut batch = msgs.clone();
                s.insert_batch(&mut batch).unwrap();
                for &(i, op) in &ops {
                    let Some(m) = batch.get(i) else { continue };
                    let id = m.common.id.unwrap();
                    let _ = match op {
                        0 => s.set_state(id, EventState::Closed).map(|_| ()),
                        1 => s.acknowledge(id, "alice", Some("ok")).map(|_| ()),
                        2 => s.set_state(id, EventState::Open).map(|_| ()),
                        _ => {
                            let mut m = m.clone();
                            m.common.severity = Severity::Critical;
                            m.common.message = Some("Updated".into());
                            s.update(&m)
                        }
                    };
                }
                if let Some(c) = cut {
                    s.delete_before(at(c * 1_000_003)).unwrap();
                }
            }
            // Times of state changes and acknowledgements differ by when each store ran them.
            let strip = |mut v: Vec<pharos_store::StoredMessage>| {
                for s in &mut v {
                    s.state_changed_at = None;
                    if let Some(a) = &mut s.ack {
                        a.at = at(0);
                    }
                }
                v
            };
            for q in &queries {
                let (a, b) = (lite.query(q), pg.query(q));
                prop_assert_eq!(a.is_ok(), b.is_ok());
                let (a, b) = (a.unwrap(), b.unwrap());
                prop_assert_eq!(&a.next_cursor, &b.next_cursor, "cursor of {:?}", q);
                prop_assert_eq!(strip(a.items), strip(b.items), "page of {:?}", q);
                prop_assert_eq!(
                    strip(all_pages(&lite, q)),
                    strip(all_pages(&pg, q)),
                    "all pages of {:?}",
                    q
                );
            }
            let feed = |s: &dyn MessageStore| {
                s.changes(0, 10_000)
                    .unwrap()
                    .into_iter()
                    .map(|(seq, c, m)| (seq, c, strip(vec![m])))
                    .collect::<Vec<_>>()
            };
            prop_assert_eq!(feed(&lite), feed(&pg));
            prop_assert_eq!(lite.last_change().unwrap(), pg.last_change().unwrap());
            prop_assert_eq!(lite.count().unwrap(), pg.count().unwrap());
            prop_assert_eq!(lite.count_by_kind().unwrap(), pg.count_by_kind().unwrap());
            drop(pg);
            server
                .client("postgres")
                .batch_execute(&format!("DROP DATABASE {db}"))
                .unwrap();
            Ok(())
        })
        .unwrap();
}

// ---- the connection of the other shared tables -----------------------------------------------

#[test]
fn table_connection_migrates_retries_idempotent_calls_and_survives_a_panicking_call() {
    use pharos_store_pg::PostgresConfig;
    use pharos_store_pg::migrations::{Retry, TableConnection};
    let Some(server) = PgServer::start() else {
        return;
    };
    let db = server.create_database();
    let config = PostgresConfig {
        url: server.url_for(&db),
        password_file: None,
    };
    let t = TableConnection::open(&config).unwrap();
    assert!(
        t.target().contains(&format!("dbname={db}")),
        "{}",
        t.target()
    );
    let mut c = server.client(&db);
    assert_eq!(migrations::applied(&mut c).unwrap(), vec![1, 2, 3]);
    let count = |t: &TableConnection| -> i64 {
        t.run(Retry::Yes, |c| {
            c.query_one("SELECT count(*) FROM pharos_tokens", &[])
                .map(|r| r.get(0))
                .map_err(|source| PgError::Sql {
                    what: "count",
                    source,
                })
        })
        .unwrap()
    };
    assert_eq!(count(&t), 0);
    // A panic inside a transaction: the caller panics, the transaction is rolled back, the
    // next call gets a new connection.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _: Result<(), PgError> = t.run(Retry::No, |c| {
            let mut tx = c.transaction().unwrap();
            tx.execute(
                "INSERT INTO pharos_tokens (name, hash, role, created)
                 VALUES ('p', decode(repeat('00', 32), 'hex'), 'viewer', 0)",
                &[],
            )
            .unwrap();
            panic!("boom");
        });
    }));
    assert!(r.is_err());
    assert_eq!(count(&t), 0);
    // Cut: an idempotent call runs again on a new connection; the others fail once.
    let cut = || {
        server
            .client("postgres")
            .batch_execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
            )
            .unwrap();
    };
    cut();
    assert_eq!(count(&t), 0);
    cut();
    let once: Result<i64, PgError> = t.run(Retry::No, |c| {
        c.query_one("SELECT 1::bigint", &[])
            .map(|r| r.get(0))
            .map_err(|source| PgError::Sql {
                what: "select",
                source,
            })
    });
    assert!(once.is_err());
    assert_eq!(count(&t), 0);
    // Advisory locks: one holder per name and schema; released on unlock and on drop.
    let u = TableConnection::open(&config).unwrap();
    assert!(t.try_advisory_lock("x").unwrap());
    assert!(t.try_advisory_lock("x").unwrap());
    assert!(!u.try_advisory_lock("x").unwrap());
    assert!(u.try_advisory_lock("y").unwrap());
    t.unlock("x").unwrap();
    assert!(u.try_advisory_lock("x").unwrap());
    drop(u);
    eventually("the dropped connection's locks are released", || {
        t.try_advisory_lock("x").unwrap() && t.try_advisory_lock("y").unwrap()
    });
}
