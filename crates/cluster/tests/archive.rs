//! The archiver against a real nats-server (one node) and a real clickhouse-server (skipped
//! without them, failing under `PHAROS_REQUIRE_ALL=1`): every published flow ends up in
//! ClickHouse exactly once, also when the archiver is killed and restarted mid-way (a kill in
//! the middle of an insert included), and an undecodable message is terminated and counted.

#[path = "support/nats.rs"]
mod nats;
#[path = "../../clickhouse/tests/server/mod.rs"]
mod server;

use std::time::{Duration, Instant};

use pharos_clickhouse::Archive;
use pharos_cluster::archive::{ArchiverOptions, ArchiverStats, run_archiver};
use pharos_cluster::partition::{Partitioner, subject};
use pharos_cluster::{Cluster, ClusterConfig, Role, wire};
use pharos_model::config::ConfigDuration;
use pharos_model::flow::{FlowBatch, FlowRecord};

const T0: u64 = 1_796_644_800_000;

fn config(urls: Vec<String>) -> ClusterConfig {
    ClusterConfig {
        roles: vec![Role::Archiver],
        node: "archiver-test".into(),
        nats: urls,
        partitions: 4,
        replicas: 1,
        pin_timeout: ConfigDuration::from_secs(2),
        ack_wait: ConfigDuration::from_secs(4),
        ..Default::default()
    }
}

/// Flow `id`: unique `packets` (= id + 1) so that duplicates are visible in ClickHouse.
fn flow(id: u64) -> FlowRecord {
    FlowRecord {
        exporter: "192.0.2.1".parse().unwrap(),
        src_addr: std::net::Ipv4Addr::from(0x0a00_0000 | (id as u32 & 0xffff)).into(),
        dst_addr: if id.is_multiple_of(7) {
            std::net::Ipv6Addr::new(0x2001, 0xdb8, (id % 5) as u16, 0, 0, 0, 0, 1).into()
        } else {
            std::net::Ipv4Addr::new(198, 51, (id % 13) as u8, 7).into()
        },
        src_port: 1024 + (id % 50_000) as u16,
        dst_port: 443,
        proto: 6,
        packets: id + 1,
        bytes: 60 * (id + 1),
        start_ms: T0 + id * 3,
        end_ms: T0 + id * 3 + 100,
        sampling_rate: 1,
        ..FlowRecord::default()
    }
}

/// Publishes `batches` batches of `size(i)` flows (ids from `*next`), each split by partition
/// like a collector does; returns the flows published.
async fn publish(
    cluster: &Cluster,
    next: &mut u64,
    batches: usize,
    size: impl Fn(usize) -> u64,
) -> u64 {
    let part = Partitioner::from_config(cluster.config());
    let mut total = 0;
    for i in 0..batches {
        let mut b = FlowBatch::new();
        for _ in 0..size(i) {
            b.push(&flow(*next));
            *next += 1;
        }
        let mut parts = vec![FlowBatch::new(); usize::from(part.partitions())];
        part.split_into(&b, &mut parts);
        for (p, pb) in parts.iter().enumerate() {
            if pb.is_empty() {
                continue;
            }
            let mut buf = Vec::new();
            wire::encode(pb, &mut buf);
            cluster
                .jetstream()
                .publish(subject(p as u16), buf.into())
                .await
                .expect("publish")
                .await
                .expect("stream ack");
            total += pb.len() as u64;
        }
    }
    total
}

/// `(count(), uniqExact(packets))` of the flows table.
async fn counts(a: &Archive) -> (u64, u64) {
    let body = a
        .client()
        .query("SELECT count(), uniqExact(packets) FROM flows FORMAT TabSeparated")
        .await
        .expect("count flows");
    let s = String::from_utf8(body).unwrap();
    let mut it = s.split_whitespace().map(|v| v.parse::<u64>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

/// Polls until the table holds `want` flows and the consumer has nothing pending or awaiting
/// an ack; panics with the state after `patience`.
async fn wait_archived(cluster: &Cluster, a: &Archive, want: u64, patience: Duration) {
    let deadline = Instant::now() + patience;
    loop {
        let have = counts(a).await;
        let info = cluster
            .archive_consumer()
            .await
            .unwrap()
            .get_info()
            .await
            .unwrap();
        if have.0 >= want && info.num_pending == 0 && info.num_ack_pending == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after {patience:?}: {have:?} of {want} flows archived, consumer pending {} \
             awaiting ack {}",
            info.num_pending,
            info.num_ack_pending
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Setup {
    _nats: nats::NatsCluster,
    _ch: server::Server,
    cluster: Cluster,
    archive: Archive,
}

async fn setup(db: &str) -> Option<Setup> {
    let ch = server::Server::start()?;
    let nats = nats::NatsCluster::start(1).await?;
    let cluster = Cluster::connect(&config(nats.urls()))
        .await
        .expect("connect");
    cluster.ensure().await.expect("ensure");
    let archive = ch.archive(db).await;
    Some(Setup {
        _nats: nats,
        _ch: ch,
        cluster,
        archive,
    })
}

fn options(cluster: &Cluster, max_rows: usize) -> ArchiverOptions {
    ArchiverOptions {
        max_rows,
        linger: Duration::from_millis(200),
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(500),
        ..ArchiverOptions::from_config(cluster.config())
    }
}

/// Starts an archiver task; the sender stops it.
fn spawn(
    s: &Setup,
    opts: ArchiverOptions,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<ArchiverStats>,
) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let cluster = s.cluster.clone();
    let archive = s.archive.clone();
    let h = tokio::spawn(async move {
        let consumer = cluster.archive_consumer().await.expect("archive consumer");
        run_archiver(consumer, archive, opts, rx)
            .await
            .expect("archiver runs")
    });
    (tx, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_published_flow_is_archived_once_and_garbage_is_terminated() {
    let Some(s) = setup("archive_once").await else {
        return;
    };
    let mut next = 0;
    let mut total = publish(&s.cluster, &mut next, 20, |i| 50 + 37 * i as u64).await;
    // Not a flow batch: terminated and counted, the rest unaffected.
    s.cluster
        .jetstream()
        .publish(subject(1), "not a batch".into())
        .await
        .unwrap()
        .await
        .unwrap();
    total += publish(&s.cluster, &mut next, 10, |_| 400).await;
    let (stop, h) = spawn(&s, options(&s.cluster, 1_500));
    wait_archived(&s.cluster, &s.archive, total, Duration::from_secs(60)).await;
    // More while it runs.
    total += publish(&s.cluster, &mut next, 5, |_| 100).await;
    wait_archived(&s.cluster, &s.archive, total, Duration::from_secs(60)).await;
    stop.send(true).unwrap();
    let st = tokio::time::timeout(Duration::from_secs(10), h)
        .await
        .expect("the archiver stops when told")
        .unwrap();
    assert_eq!(counts(&s.archive).await, (total, total));
    assert_eq!(st.flows, total, "{st:?}");
    assert_eq!(st.undecodable, 1, "{st:?}");
    assert!(st.written >= 5, "groups of at most 1,500 flows: {st:?}");
    assert_eq!((st.duplicates, st.recovered), (0, 0), "{st:?}");
    let info = s.cluster.jetstream().get_stream("PHAROS_FLOWS").await;
    let last = info.unwrap().info().await.unwrap().state.last_sequence;
    assert_eq!(st.stored_upto, last, "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_archiver_leaves_every_flow_archived_exactly_once() {
    let Some(s) = setup("archive_killed").await else {
        return;
    };
    let mut next = 0;
    let mut total = publish(&s.cluster, &mut next, 60, |i| 100 + 13 * (i as u64 % 17)).await;
    // Killed (the task dropped at whatever await it is in: mid-insert, before or after the
    // ledger records, before the acks) after various delays, with more published in between.
    for (round, ms) in [150u64, 400, 90, 700, 250].into_iter().enumerate() {
        let before = counts(&s.archive).await.0;
        let (_stop, h) = spawn(&s, options(&s.cluster, 700));
        // Once it has the pin (the killed one's expires) and writes, it is killed in turn.
        let deadline = Instant::now() + Duration::from_secs(30);
        while counts(&s.archive).await.0 == before {
            assert!(
                Instant::now() < deadline,
                "round {round}: nothing archived in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(ms)).await;
        h.abort();
        let _ = h.await;
        total += publish(&s.cluster, &mut next, 10, |i| 50 + 20 * i as u64).await;
        let have = counts(&s.archive).await;
        eprintln!("round {round}: killed {ms} ms after its first insert, {have:?} archived");
        assert_eq!(have.0, have.1, "round {round}: a flow archived twice");
    }
    // The last one runs to the end (after the pin of the killed one expired and its
    // unacknowledged messages were redelivered).
    let (stop, h) = spawn(&s, options(&s.cluster, 700));
    wait_archived(&s.cluster, &s.archive, total, Duration::from_secs(90)).await;
    // Nothing more arrives for a while: no late duplicate.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.send(true).unwrap();
    let st = tokio::time::timeout(Duration::from_secs(10), h)
        .await
        .expect("the archiver stops when told")
        .unwrap();
    eprintln!("last archiver: {st:?}");
    assert_eq!(counts(&s.archive).await, (total, total), "exactly once");
    let ledger = s
        .archive
        .client()
        .query("SELECT count() FROM pharos_batches WHERE state = 1 FORMAT TabSeparated")
        .await
        .unwrap();
    eprintln!(
        "stored batches: {}",
        String::from_utf8_lossy(&ledger).trim()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_a_dead_archiver_held_are_written_before_the_ones_after_them() {
    let Some(s) = setup("archive_held").await else {
        return;
    };
    let mut next = 0;
    let mut total = publish(&s.cluster, &mut next, 8, |_| 200).await;
    // A "dead archiver": takes the pin and some messages, never acknowledges them.
    {
        let consumer = s.cluster.archive_consumer().await.unwrap();
        let mut msgs = consumer
            .stream()
            .group("archivers")
            .max_messages_per_batch(5)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .unwrap();
        use futures_util::StreamExt;
        for _ in 0..5 {
            tokio::time::timeout(Duration::from_secs(10), msgs.next())
                .await
                .expect("a delivery")
                .unwrap()
                .unwrap();
        }
    }
    // Newer messages reach the next archiver (once the pin expires) before the redelivery of
    // the dead one's (after the ack wait): they are held back, then written in order.
    total += publish(&s.cluster, &mut next, 8, |_| 150).await;
    let (stop, h) = spawn(&s, options(&s.cluster, 100_000));
    wait_archived(&s.cluster, &s.archive, total, Duration::from_secs(60)).await;
    stop.send(true).unwrap();
    let st = tokio::time::timeout(Duration::from_secs(10), h)
        .await
        .expect("the archiver stops when told")
        .unwrap();
    eprintln!("{st:?}");
    assert_eq!(counts(&s.archive).await, (total, total), "exactly once");
    assert!(
        st.held > 0,
        "nothing arrived ahead of the dead one's messages: {st:?}"
    );
    assert_eq!(st.flows, total, "{st:?}");
}
