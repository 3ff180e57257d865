//! The cluster transport against real nats-server processes (skipped without `nats-server`,
//! failing under `PHAROS_REQUIRE_ALL=1`):
//!
//! - one server: `ensure` is idempotent and refuses another partition count; publish, consume,
//!   an undecodable message terminated; heartbeats and `status`;
//! - three servers, R3: two publishers, two analysers with complementary preferences: each
//!   partition's flows reach exactly its preferred analyser, all of them; one analyser killed:
//!   its partitions move to the other within `pin_timeout` plus a pull cycle;
//! - three servers, R3: the stream leader killed mid-publish: no flow lost, each flow stored once
//!   in the stream (retries deduplicated by `Nats-Msg-Id`), redeliveries counted.

#[path = "support/nats.rs"]
mod nats;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nats::NatsCluster;
use pharos_cluster::connect::{FLOW_STREAM, analyse_consumer_name};
use pharos_cluster::consume::{Partitions, start_partitions};
use pharos_cluster::nodes::{NodeInfo, list_nodes, start_heartbeat};
use pharos_cluster::partition::Partitioner;
use pharos_cluster::publish::FlowPublisher;
use pharos_cluster::status::status;
use pharos_cluster::{Cluster, ClusterConfig, ClusterError, Role, wire};
use pharos_model::config::ConfigDuration;
use pharos_model::flow::{FlowBatch, FlowRecord};

const PIN_TIMEOUT: Duration = Duration::from_secs(2);

fn config(urls: Vec<String>, node: &str, partitions: u16, replicas: usize) -> ClusterConfig {
    ClusterConfig {
        roles: vec![Role::Collector, Role::Analyser],
        node: node.into(),
        nats: urls,
        partitions,
        replicas,
        batch_flows: 64,
        linger: ConfigDuration::from_millis(20),
        max_in_flight: 16,
        pin_timeout: ConfigDuration(PIN_TIMEOUT),
        ack_wait: ConfigDuration::from_secs(5),
        analysers: 2,
        analyser_index: 0,
        ..Default::default()
    }
}

/// Flow `id`: its destination spreads the ids over the /24s (hence the partitions); the id is
/// in `start_ms` so that each delivery can be traced.
fn flow(id: u64) -> FlowRecord {
    FlowRecord {
        src_addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        dst_addr: IpAddr::V4(Ipv4Addr::new(
            10,
            (id % 251) as u8,
            (id / 251 % 256) as u8,
            7,
        )),
        proto: 6,
        packets: 1,
        bytes: 60,
        start_ms: id,
        end_ms: id,
        sampling_rate: 1,
        ..Default::default()
    }
}

/// Every flow delivered to an analyser: (id, analyser, when).
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(u64, usize, Instant)>>>);

impl Seen {
    fn snapshot(&self) -> Vec<(u64, usize, Instant)> {
        self.0.lock().unwrap().clone()
    }
    fn distinct(&self) -> BTreeSet<u64> {
        self.0.lock().unwrap().iter().map(|s| s.0).collect()
    }
}

/// An analyser: the partition tasks and a thread recording what they hand over.
fn analyser(
    cluster: &Cluster,
    idx: usize,
    prefer: impl Fn(u16) -> bool,
    seen: &Seen,
    standby: Duration,
) -> Partitions {
    let (tx, rx) = sync_channel::<FlowBatch>(16);
    let seen = seen.clone();
    std::thread::spawn(move || {
        for b in rx {
            let now = Instant::now();
            let mut g = seen.0.lock().unwrap();
            for i in 0..b.len() {
                g.push((b.get(i).start_ms, idx, now));
            }
        }
    });
    start_partitions(cluster, prefer, tx, standby)
}

/// A collector thread publishing flows `base..`: `limit` of them as fast as it can, or (without
/// a limit) 20 every 10 ms until `stop`. Returns (flows pushed, flows dropped).
fn publisher(
    cluster: &Cluster,
    base: u64,
    limit: Option<u64>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(u64, u64)> {
    let cluster = cluster.clone();
    let handle = tokio::runtime::Handle::current();
    std::thread::spawn(move || {
        let mut p = FlowPublisher::new(&cluster, handle);
        let mut n = 0u64;
        let mut b = FlowBatch::new();
        loop {
            if limit.is_some_and(|l| n >= l) || (limit.is_none() && stop.load(Ordering::SeqCst)) {
                break;
            }
            b.clear();
            let k = if limit.is_some() { 100 } else { 20 };
            for _ in 0..k {
                if limit.is_some_and(|l| n >= l) {
                    break;
                }
                b.push(&flow(base + n));
                n += 1;
            }
            p.push(&b);
            p.tick();
            if limit.is_none() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        p.finish(Duration::from_secs(90));
        (n, p.dropped())
    })
}

/// Joins a publisher thread without blocking the runtime.
async fn join(h: std::thread::JoinHandle<(u64, u64)>) -> (u64, u64) {
    tokio::task::spawn_blocking(move || h.join().expect("publisher thread"))
        .await
        .unwrap()
}

/// Polls `cond` every 50 ms until it holds or `patience` passed; returns whether it held.
async fn wait_for(patience: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + patience;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ids(base: u64, n: u64) -> BTreeSet<u64> {
    (base..base + n).collect()
}

/// Every flow id stored in the stream, with how many times it is stored.
async fn stored_ids(cluster: &Cluster) -> BTreeMap<u64, usize> {
    let mut stream = cluster.jetstream().get_stream(FLOW_STREAM).await.unwrap();
    let info = stream.info().await.unwrap().clone();
    let mut out = BTreeMap::new();
    for seq in info.state.first_sequence..=info.state.last_sequence {
        let Ok(m) = stream.get_raw_message(seq).await else {
            continue;
        };
        let Ok(b) = wire::decode(&m.payload) else {
            continue;
        };
        for i in 0..b.len() {
            *out.entry(b.get(i).start_ms).or_default() += 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_server_ensure_publish_consume_status() {
    let Some(nc) = NatsCluster::start(1).await else {
        return;
    };
    let mut cfg = config(nc.urls(), "solo", 4, 1);
    cfg.analysers = 1;
    let cluster = Cluster::connect(&cfg).await.expect("connects");
    cluster.ensure().await.expect("ensure");
    cluster.ensure().await.expect("ensure again is a no-op");

    // Another partition count is refused, with the fix in the message.
    let other = Cluster::connect(&config(nc.urls(), "other", 8, 1))
        .await
        .unwrap();
    let err = other
        .ensure()
        .await
        .expect_err("8 partitions on a 4-partition stream");
    assert!(
        matches!(err, ClusterError::Partitions { want: 8, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("has 4 partitions") && msg.contains("set partitions = 4"),
        "{msg}"
    );

    // An unreachable server: the error names it and the fix.
    let started = Instant::now();
    let nowhere = Cluster::connect(&ClusterConfig {
        nats: vec!["nats://127.0.0.1:1".into()],
        ..cfg.clone()
    })
    .await
    .expect_err("nothing listens on port 1");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        nowhere.to_string().contains("nats://127.0.0.1:1"),
        "{nowhere}"
    );

    // An undecodable message first, then flows: the garbage is terminated, the flows arrive.
    cluster
        .jetstream()
        .publish("pharos.flows.0", bytes_of("not a flow batch"))
        .await
        .unwrap()
        .await
        .unwrap();
    let seen = Seen::default();
    let parts = analyser(&cluster, 0, |_| true, &seen, Duration::ZERO);
    let (n, dropped) = join(publisher(&cluster, 0, Some(1000), Arc::default())).await;
    assert_eq!((n, dropped), (1000, 0));
    assert!(
        wait_for(Duration::from_secs(30), || seen.distinct() == ids(0, 1000)).await,
        "all 1000 flows delivered; got {}",
        seen.distinct().len()
    );
    let stream = cluster.jetstream().get_stream(FLOW_STREAM).await.unwrap();
    let mut settled = false;
    for _ in 0..100 {
        let i = stream
            .consumer_info(&analyse_consumer_name(0))
            .await
            .unwrap();
        if i.num_pending == 0 && i.num_ack_pending == 0 {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        settled,
        "partition 0's consumer acknowledged or terminated everything"
    );
    assert!(wait_for(Duration::from_secs(10), || parts.owned().len() == 4).await);

    // Heartbeat, list, status.
    let mut info = NodeInfo::new(&cfg);
    info.partitions = parts.owned();
    let info = Arc::new(Mutex::new(info));
    let hb = start_heartbeat(&cluster, info);
    let mut listed = Vec::new();
    for _ in 0..100 {
        listed = list_nodes(&cluster).await.unwrap();
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].node, "solo");
    assert_eq!(listed[0].partitions, vec![0, 1, 2, 3]);
    let st = status(&cluster).await.unwrap();
    let text = st.render();
    eprintln!("{text}");
    let s = st.stream.as_ref().expect("stream");
    assert!(
        s.messages > 1000 / 64,
        "the garbage and the batches are stored"
    );
    assert_eq!(s.partitions.as_deref(), Some("4"));
    assert_eq!(st.consumers.len(), 5);
    assert!(st.consumers.iter().all(|c| c.error.is_none()));
    assert_eq!(st.consumers[0].owner.as_deref(), Some("solo"));
    assert!(text.contains("pharos-analyse-3") && text.contains("pharos-archive"));
    assert!(text.contains("solo") && text.contains("pharos_nodes"));
    hb.stop().await;
    assert!(
        list_nodes(&cluster).await.unwrap().is_empty(),
        "stop deletes the entry"
    );
    parts.stop().await;
}

fn bytes_of(s: &str) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(s.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysers_split_partitions_and_fail_over() {
    let Some(nc) = NatsCluster::start(3).await else {
        return;
    };
    let partitions = 8;
    let cfg = config(nc.urls(), "admin", partitions, 3);
    let admin = Cluster::connect(&cfg).await.expect("connects");
    admin.ensure().await.expect("ensure");
    let parts = Partitioner::from_config(&cfg);
    let part_of = |id: u64| parts.of_addr(flow(id).dst_addr);

    let seen = Seen::default();
    let standby = Duration::from_secs(4);
    let ca = Cluster::connect(&config(nc.urls(), "a0", partitions, 3))
        .await
        .unwrap();
    let cb = Cluster::connect(&config(nc.urls(), "a1", partitions, 3))
        .await
        .unwrap();
    let started = Instant::now();
    let pa = analyser(&ca, 0, |p| p % 2 == 0, &seen, standby);
    let pb = analyser(&cb, 1, |p| p % 2 == 1, &seen, standby);

    // Two collectors, 2000 flows each.
    let c1 = Cluster::connect(&config(nc.urls(), "c1", partitions, 3))
        .await
        .unwrap();
    let c2 = Cluster::connect(&config(nc.urls(), "c2", partitions, 3))
        .await
        .unwrap();
    let base2 = 1 << 32;
    let p1 = publisher(&c1, 0, Some(2000), Arc::default());
    let p2 = publisher(&c2, base2, Some(2000), Arc::default());
    assert_eq!(join(p1).await, (2000, 0));
    assert_eq!(join(p2).await, (2000, 0));
    let mut all: BTreeSet<u64> = ids(0, 2000);
    all.extend(ids(base2, 2000));
    assert!(
        wait_for(Duration::from_secs(60), || seen.distinct() == all).await,
        "all 4000 flows delivered; got {}",
        seen.distinct().len()
    );
    eprintln!("phase 1 delivered in {:?}", started.elapsed());
    let mut by_partition: HashMap<u16, BTreeSet<usize>> = HashMap::new();
    for (id, a, _) in seen.snapshot() {
        by_partition.entry(part_of(id)).or_default().insert(a);
    }
    assert_eq!(
        by_partition.len(),
        usize::from(partitions),
        "flows in every partition"
    );
    for (p, who) in &by_partition {
        assert_eq!(
            who,
            &BTreeSet::from([usize::from(p % 2)]),
            "partition {p} reached only its preferred analyser"
        );
    }
    let delivered = seen.snapshot().len();
    eprintln!("phase 1: {delivered} deliveries of 4000 flows");

    // Analyser 0 dies once analyser 1 stands by for its partitions (it watches them from
    // `standby` on, pulling only once nobody else does).
    let ready = standby + Duration::from_secs(1);
    if let Some(left) = ready.checked_sub(started.elapsed()) {
        tokio::time::sleep(left).await;
    }
    assert!(pa.owned().iter().all(|p| p % 2 == 0));
    drop(pa);
    let killed = Instant::now();
    let base3 = 2 << 32;
    let stop = Arc::new(AtomicBool::new(false));
    let p3 = publisher(&c1, base3, None, stop.clone());
    let mut failover = None;
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end && failover.is_none() {
        failover = seen
            .snapshot()
            .iter()
            .filter(|(id, a, _)| *id >= base3 && *a == 1 && part_of(*id) % 2 == 0)
            .map(|(_, _, t)| t.duration_since(killed))
            .min();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let (n3, dropped3) = join(p3).await;
    assert_eq!(dropped3, 0);
    let failover = failover.expect("analyser 1 took over the even partitions");
    eprintln!(
        "failover: analyser 1 received an even partition's flow {failover:?} after the kill (pin_timeout {PIN_TIMEOUT:?})"
    );
    assert!(
        failover <= PIN_TIMEOUT + Duration::from_secs(4),
        "failover within pin_timeout + a pull cycle and slack: {failover:?}"
    );
    all.extend(ids(base3, n3));
    assert!(
        wait_for(Duration::from_secs(60), || seen.distinct() == all).await,
        "every flow delivered after the failover; missing {}",
        all.difference(&seen.distinct()).count()
    );
    let after: BTreeSet<usize> = seen
        .snapshot()
        .iter()
        .filter(|(id, _, t)| *id >= base3 && t.duration_since(killed) > PIN_TIMEOUT * 3)
        .map(|s| s.1)
        .collect();
    assert!(after.iter().all(|a| *a == 1), "only analyser 1 is left");
    let snap = seen.snapshot();
    eprintln!(
        "after failover: {} flows published, {} deliveries in all for {} flows",
        n3,
        snap.len(),
        all.len()
    );
    let every: Vec<u16> = (0..partitions).collect();
    assert!(
        wait_for(Duration::from_secs(10), || pb.owned() == every).await,
        "analyser 1 owns every partition: {:?}",
        pb.owned()
    );
    pb.stop().await;
    drop(nc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_server_killed_mid_publish_loses_nothing() {
    let Some(mut nc) = NatsCluster::start(3).await else {
        return;
    };
    let partitions = 4;
    let cfg = config(nc.urls(), "admin", partitions, 3);
    let admin = Cluster::connect(&cfg).await.expect("connects");
    admin.ensure().await.expect("ensure");
    let seen = Seen::default();
    let ca = Cluster::connect(&config(nc.urls(), "a0", partitions, 3))
        .await
        .unwrap();
    let pa = analyser(&ca, 0, |_| true, &seen, Duration::ZERO);
    let c1 = Cluster::connect(&config(nc.urls(), "c1", partitions, 3))
        .await
        .unwrap();
    let c2 = Cluster::connect(&config(nc.urls(), "c2", partitions, 3))
        .await
        .unwrap();
    let base2 = 1 << 32;
    let stop = Arc::new(AtomicBool::new(false));
    let p1 = publisher(&c1, 0, None, stop.clone());
    let p2 = publisher(&c2, base2, None, stop.clone());
    assert!(
        wait_for(Duration::from_secs(30), || seen.distinct().len() >= 500).await,
        "flows flow before the kill"
    );
    let leader = status(&admin)
        .await
        .unwrap()
        .stream
        .and_then(|s| s.leader)
        .expect("the stream has a leader");
    let victim = nc.index_of(&leader).expect("a known server");
    nc.kill(victim);
    let killed = Instant::now();
    eprintln!("killed the stream leader {leader}");
    // Publishing goes on through the election and after it.
    let before = seen.distinct().len();
    assert!(
        wait_for(Duration::from_secs(60), || seen.distinct().len()
            >= before + 1000)
        .await,
        "flows flow again after the leader was killed"
    );
    eprintln!(
        "flows delivered again {:?} after the kill",
        killed.elapsed()
    );
    stop.store(true, Ordering::SeqCst);
    let (n1, d1) = join(p1).await;
    let (n2, d2) = join(p2).await;
    assert_eq!((d1, d2), (0, 0), "no publish given up");
    let mut all = ids(0, n1);
    all.extend(ids(base2, n2));
    assert!(
        wait_for(Duration::from_secs(90), || seen.distinct() == all).await,
        "every published flow delivered; missing {}",
        all.difference(&seen.distinct()).count()
    );
    let snap = seen.snapshot();
    eprintln!(
        "{} flows published, {} deliveries ({} redelivered)",
        all.len(),
        snap.len(),
        snap.len() - all.len()
    );
    // Each flow is stored once: retried publishes were deduplicated.
    let stored = stored_ids(&admin).await;
    assert_eq!(stored.keys().copied().collect::<BTreeSet<_>>(), all);
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "flows stored more than once: {}",
        twice.len()
    );
    pa.stop().await;

    // The killed server comes back and catches up.
    nc.restart(victim).await;
    let mut current = false;
    for _ in 0..300 {
        let st = status(&admin).await.unwrap();
        let s = st.stream.unwrap();
        if s.leader.is_some()
            && s.replicas.len() == 2
            && s.replicas.iter().all(|r| r.current && !r.offline)
        {
            current = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(current, "the restarted server's replica is current again");
    let st = status(&admin).await.unwrap();
    eprintln!("{}", st.render());
    let s = st.stream.unwrap();
    assert_eq!(s.num_replicas, 3);
    assert_eq!(s.replicas.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_analyser_hands_over_at_once() {
    let Some(nc) = NatsCluster::start(1).await else {
        return;
    };
    // A pin that would outlive the test: only the unpin at stop can move the partitions.
    let long = |node: &str| ClusterConfig {
        pin_timeout: ConfigDuration::from_secs(60),
        ack_wait: ConfigDuration::from_secs(120),
        ..config(nc.urls(), node, 2, 1)
    };
    let admin = Cluster::connect(&long("admin")).await.unwrap();
    admin.ensure().await.unwrap();
    let seen = Seen::default();
    let ca = Cluster::connect(&long("a0")).await.unwrap();
    let cb = Cluster::connect(&long("a1")).await.unwrap();
    let pa = analyser(&ca, 0, |_| true, &seen, Duration::ZERO);
    let started = Instant::now();
    let pb = analyser(&cb, 1, |_| false, &seen, Duration::from_secs(2));
    assert_eq!(
        join(publisher(&admin, 0, Some(500), Arc::default())).await,
        (500, 0)
    );
    assert!(wait_for(Duration::from_secs(30), || seen.distinct() == ids(0, 500)).await);
    assert!(
        seen.snapshot().iter().all(|s| s.1 == 0),
        "analyser 0 owns both partitions"
    );
    // Analyser 1 stands by (watching, not pulling) from 2 s on.
    if let Some(left) = Duration::from_secs(3).checked_sub(started.elapsed()) {
        tokio::time::sleep(left).await;
    }
    let t0 = Instant::now();
    pa.stop().await;
    let stopped = t0.elapsed();
    assert_eq!(
        join(publisher(&admin, 1000, Some(500), Arc::default())).await,
        (500, 0)
    );
    let mut all = ids(0, 500);
    all.extend(ids(1000, 500));
    assert!(
        wait_for(Duration::from_secs(45), || seen.distinct() == all).await,
        "analyser 1 took over long before the 60 s pin timeout; missing {}",
        all.difference(&seen.distinct()).count()
    );
    let handed = seen
        .snapshot()
        .iter()
        .filter(|s| s.0 >= 1000)
        .map(|s| s.2.duration_since(t0))
        .min()
        .unwrap();
    eprintln!(
        "stop took {stopped:?}; analyser 1 received its first flow {handed:?} after the stop began"
    );
    // Without the unpin the pin would last until 60 s after analyser 0's last pull request,
    // which was at most one pull expiry (10 s) before the stop.
    assert!(handed < Duration::from_secs(40), "{handed:?}");
    assert!(
        seen.snapshot()
            .iter()
            .filter(|s| s.0 >= 1000)
            .all(|s| s.1 == 1)
    );
    assert!(
        wait_for(Duration::from_secs(10), || pb.owned() == vec![0, 1]).await,
        "analyser 1 owns both partitions: {:?}",
        pb.owned()
    );
    pb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_batches_are_split_and_unreachable_publishes_counted() {
    let Some(mut nc) = NatsCluster::start(1).await else {
        return;
    };
    let cfg = ClusterConfig {
        batch_flows: 65_536,
        analysers: 1,
        ..config(nc.urls(), "big", 1, 1)
    };
    let cluster = Cluster::connect(&cfg).await.unwrap();
    cluster.ensure().await.unwrap();
    let seen = Seen::default();
    let parts = analyser(&cluster, 0, |_| true, &seen, Duration::ZERO);
    // 65 536 flows with scattered fields encode larger than the server's 1 MiB max_payload:
    // the publisher halves the batch until each message fits.
    let handle = tokio::runtime::Handle::current();
    let c = cluster.clone();
    let dropped = tokio::task::spawn_blocking(move || {
        let mut p = FlowPublisher::new(&c, handle);
        let mut b = FlowBatch::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for id in 0..65_536u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut r = flow(id);
            r.src_addr = IpAddr::V6((u128::from(x) << 64 | u128::from(x.rotate_left(7))).into());
            r.bytes = x >> 20;
            r.packets = x >> 40;
            r.src_port = x as u16;
            r.dst_port = (x >> 16) as u16;
            r.end_ms = id + (x >> 50);
            b.push(&r);
        }
        let mut bytes = Vec::new();
        wire::encode(&b, &mut bytes);
        assert!(
            bytes.len() > 1 << 20,
            "the test batch must exceed max_payload"
        );
        p.push(&b);
        p.finish(Duration::from_secs(60));
        p.dropped()
    })
    .await
    .unwrap();
    assert_eq!(dropped, 0);
    assert!(
        wait_for(Duration::from_secs(60), || seen.distinct()
            == ids(0, 65_536))
        .await,
        "every flow of the large batch delivered; got {}",
        seen.distinct().len()
    );
    let mut stream = cluster.jetstream().get_stream(FLOW_STREAM).await.unwrap();
    let messages = stream.info().await.unwrap().state.messages;
    assert!(messages >= 2, "split into {messages} messages");
    parts.stop().await;

    // The server gone: publishes are retried until `finish` runs out of patience, then counted.
    nc.kill(0);
    let handle = tokio::runtime::Handle::current();
    let c = cluster.clone();
    let (dropped, took) = tokio::task::spawn_blocking(move || {
        let mut p = FlowPublisher::new(&c, handle);
        let mut b = FlowBatch::new();
        for id in 0..1000 {
            b.push(&flow(id));
        }
        p.push(&b);
        let t = Instant::now();
        p.finish(Duration::from_secs(2));
        (p.dropped(), t.elapsed())
    })
    .await
    .unwrap();
    assert_eq!(dropped, 1000, "unacknowledged flows are counted as dropped");
    assert!(
        took < Duration::from_secs(10),
        "finish keeps to its patience: {took:?}"
    );
}
