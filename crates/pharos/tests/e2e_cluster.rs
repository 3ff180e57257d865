//! Scale-out end to end (issue 20, docs/scale-out.md): a 3-node NATS JetStream cluster (R3
//! streams), ClickHouse and PostgreSQL started here, and eight `pharos run` processes of the same
//! binary in their roles: two collectors, two analysers, one archiver, one API node. Two exporters
//! replay background traffic and NTP floods on victims in partitions of different analysers.
//!
//! Checked: each attack is detected once, by the analyser that owns its partition; killing an
//! analyser mid-attack moves its partitions to the other, which continues the attack's event
//! instead of raising a second one and detects a new attack there; killing a NATS server loses
//! no flow; every flow decoded by the collectors is in ClickHouse exactly once; every event is in
//! PostgreSQL once, read back through the API node.

mod attack;
mod support;

#[path = "../../clickhouse/tests/server/mod.rs"]
mod clickhouse;
#[path = "../../cluster/tests/support/nats.rs"]
mod nats;
#[path = "../../store-pg/tests/server/mod.rs"]
mod pg;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use attack::{Flow, v5_datagram};
use support::Instance;

const PARTITIONS: u16 = 8;

/// The configuration every node shares, with this node's `[cluster]` keys.
struct Shared {
    nats: Vec<String>,
    pg_url: String,
    ch_url: String,
    networks: Vec<String>,
}

impl Shared {
    fn node(&self, name: &str, roles: &str, extra: &str) -> String {
        let nats: Vec<String> = self.nats.iter().map(|u| format!("{u:?}")).collect();
        let networks: Vec<String> = self.networks.iter().map(|n| format!("{n:?}")).collect();
        format!(
            "[cluster]\nnode = {name:?}\nroles = [{roles}]\nnats = [{}]\npartitions = {PARTITIONS}\n\
             replicas = 3\npin_timeout = \"2s\"\nack_wait = \"6s\"\nanalysers = 2\nlinger = \"20ms\"\n{extra}\n\
             [syslog]\nudp = \"\"\ntcp = \"\"\n\
             [postgres]\nurl = {:?}\n\
             [clickhouse]\nurl = {:?}\ndatabase = \"pharos_e2e\"\n\
             [detect.ddos]\nnetworks = [{}]\nwindow = \"2s\"\ndelay = \"2s\"\nhold = \"10m\"\n\
             thresholds.ntp = {{ pps = 2000 }}\n",
            nats.join(", "),
            self.pg_url,
            self.ch_url,
            networks.join(", "),
        )
    }
}

/// The first address of 198.18.0.0/15 whose partition `want` says yes to.
fn victim(
    p: &pharos_cluster::partition::Partitioner,
    skip: &[Ipv4Addr],
    want: impl Fn(u16) -> bool,
) -> Ipv4Addr {
    (0..=255u8)
        .map(|i| Ipv4Addr::new(198, 18, i, 10))
        .find(|a| !skip.contains(a) && want(p.of_addr((*a).into())))
        .expect("a victim in a wanted partition")
}

/// One exporter replaying, each second, 30 background flows and an NTP flood (30 reflectors, 400
/// packets a second each) on each victim it is given.
struct Exporter {
    socket: UdpSocket,
    to: SocketAddr,
    seq: u32,
    uptime: u32,
    id: u8,
    sent_flows: u64,
}

impl Exporter {
    fn new(to: SocketAddr, id: u8) -> Self {
        Self {
            socket: UdpSocket::bind("127.0.0.1:0").unwrap(),
            to,
            seq: 0,
            uptime: 3_600_000,
            id,
            sent_flows: 0,
        }
    }

    fn second(&mut self, s: u32, victims: &[Ipv4Addr]) {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as u32;
        self.uptime += 1000;
        let mut batches = vec![
            attack::background(s + 1000 * u32::from(self.id))
                .into_iter()
                .map(|mut f| {
                    // background to every partition: destinations spread over 198.18.x.y
                    f.dst = [
                        198,
                        18,
                        (s as u8).wrapping_mul(7).wrapping_add(f.dst[3]),
                        f.dst[3],
                    ];
                    f
                })
                .collect::<Vec<Flow>>(),
        ];
        for v in victims {
            batches.push(
                attack::ntp_flood(s)
                    .into_iter()
                    .map(|mut f| {
                        f.dst = v.octets();
                        f.src[2] = self.id;
                        f
                    })
                    .collect(),
            );
        }
        for flows in batches {
            let d = v5_datagram(self.seq, self.uptime, unix, &flows);
            self.seq += flows.len() as u32;
            self.sent_flows += flows.len() as u64;
            self.socket.send_to(&d, self.to).unwrap();
        }
    }
}

/// The DDoS events stored, by victim, read through the API node.
async fn ddos_by_victim(api: &Instance) -> BTreeMap<String, Vec<serde_json::Value>> {
    let mut by = BTreeMap::<String, Vec<serde_json::Value>>::new();
    for m in support::messages(api, "kind=ddos&limit=500").await {
        let Ok(msg) = pharos_model::json::decode(&m["notification"]) else {
            panic!("not an I2NSF message: {m}");
        };
        let pharos_model::Kind::Ddos(d) = msg.kind else {
            panic!("not a DDoS event: {m}");
        };
        let victim = d
            .attack_dst_ip
            .first()
            .map(|a| a.to_string())
            .unwrap_or_default();
        by.entry(victim).or_default().push(m);
    }
    by
}

/// Sends a second of traffic from each exporter every second while `until` is in the future.
fn replay(exporters: &mut [(&mut Exporter, Vec<Ipv4Addr>)], s: &mut u32, seconds: u32) {
    for _ in 0..seconds {
        let start = Instant::now();
        for (e, victims) in exporters.iter_mut() {
            e.second(*s, victims);
        }
        *s += 1;
        std::thread::sleep(Duration::from_secs(1).saturating_sub(start.elapsed()));
    }
}

/// `pharos cluster status --json` with the node's configuration.
fn cluster_status(node: &Instance) -> serde_json::Value {
    let out = std::process::Command::new(support::bin())
        .args(["cluster", "status", "--json", "--config"])
        .arg(node.dir.path().join("pharos.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Replays in steps of 2 s until `done` says yes of the stored DDoS events (or `limit_s`
/// seconds passed: a loaded machine is slow); returns the events of the last look.
async fn replay_until(
    api: &Instance,
    exporters: &mut [(&mut Exporter, Vec<Ipv4Addr>)],
    s: &mut u32,
    limit_s: u64,
    done: impl Fn(&BTreeMap<String, Vec<serde_json::Value>>) -> bool,
) -> BTreeMap<String, Vec<serde_json::Value>> {
    let deadline = Instant::now() + Duration::from_secs(limit_s);
    loop {
        tokio::task::block_in_place(|| replay(exporters, s, 2));
        let by = ddos_by_victim(api).await;
        if done(&by) || Instant::now() > deadline {
            return by;
        }
    }
}

/// Asserts that the attack on `victim` is stored as exactly one event (`what` and the
/// analyser's log say which step failed).
fn stored_once(
    by: &BTreeMap<String, Vec<serde_json::Value>>,
    victim: Ipv4Addr,
    what: &str,
    analyser: &Instance,
) {
    assert_eq!(
        by.get(&victim.to_string()).map(Vec::len),
        Some(1),
        "{what} ({victim}): {by:?}\n{}",
        analyser.log()
    );
}

fn kill9(inst: &mut Instance) {
    let mut c = inst.child.take().expect("running");
    c.kill().unwrap();
    let _ = c.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_detects_each_attack_once_archives_each_flow_once_and_survives_failures() {
    support::install_crypto();
    let Some(mut nats) = nats::NatsCluster::start(3).await else {
        return;
    };
    let Some(ch) = clickhouse::Server::start() else {
        return;
    };
    let Some(pg) = tokio::task::block_in_place(pg::PgServer::start) else {
        return;
    };
    let db = tokio::task::block_in_place(|| pg.create_database());
    let part = pharos_cluster::partition::Partitioner::new(PARTITIONS, 24, 48);
    let v0 = victim(&part, &[], |p| p % 2 == 0);
    let v1 = victim(&part, &[v0], |p| p % 2 == 1);
    let v2 = victim(&part, &[v0, v1], |p| {
        p % 2 == 0 && p != part.of_addr(v0.into())
    });
    let shared = Shared {
        nats: nats.urls(),
        pg_url: pg.url_for(&db),
        ch_url: ch.url(),
        networks: vec!["198.18.0.0/15".into()],
    };

    // The archiver and the API node first (they also create the streams), then the analysers
    // (each pins its preferred partitions), then the collectors.
    let archiver = Instance::start(&shared.node("archiver", "\"archiver\"", ""));
    let api = Instance::start(&shared.node("api", "\"api\"", ""));
    let mut an0 = Instance::start(&shared.node("analyser-0", "\"analyser\"", "analyser_index = 0"));
    let an1 = Instance::start(&shared.node("analyser-1", "\"analyser\"", "analyser_index = 1"));
    let flow = "[flow]\nlisten = [\"127.0.0.1:0\"]";
    let mut col0 = Instance::start(&format!(
        "{flow}\n{}",
        shared.node("collector-0", "\"collector\"", "")
    ));
    let mut col1 = Instance::start(&format!(
        "{flow}\n{}",
        shared.node("collector-1", "\"collector\"", "")
    ));
    // the analysers' standby delay passes before traffic comes
    tokio::time::sleep(Duration::from_secs(4)).await;

    let mut e0 = Exporter::new(col0.flow_addr(), 1);
    let mut e1 = Exporter::new(col1.flow_addr(), 2);
    let mut s = 0u32;

    // 1. An attack in each analyser's partitions: each detected once, by its owner.
    // (replayed in steps of 2 s until both are stored, 40 s at most: a loaded machine is slow)
    let by = replay_until(
        &api,
        &mut [(&mut e0, vec![v0]), (&mut e1, vec![v1])],
        &mut s,
        40,
        |by| [v0, v1].iter().all(|v| by.contains_key(&v.to_string())),
    )
    .await;
    stored_once(&by, v0, "attack on v0, analyser 0's partition", &an0);
    stored_once(&by, v1, "attack on v1, analyser 1's partition", &an1);
    assert!(
        an0.log().contains(&v0.to_string()),
        "analyser-0 did not detect {v0}: {}",
        an0.log()
    );
    assert!(
        !an0.log().contains(&v1.to_string()),
        "analyser-0 saw {v1}: {}",
        an0.log()
    );
    assert!(
        an1.log().contains(&v1.to_string()),
        "analyser-1 did not detect {v1}: {}",
        an1.log()
    );
    assert!(
        !an1.log().contains(&v0.to_string()),
        "analyser-1 saw {v0}: {}",
        an1.log()
    );

    // 2. Analyser 0 dies mid-attack: its partitions move to analyser 1, which continues the
    // attack on v0 (one event, not two) and detects a new attack on v2 (a partition of 0's).
    kill9(&mut an0);
    let killed = Instant::now();
    // (until v2 is stored and v0's attack was taken over, 60 s at most)
    let by = replay_until(
        &api,
        &mut [(&mut e0, vec![v0, v2]), (&mut e1, vec![v1])],
        &mut s,
        60,
        |by| {
            by.contains_key(&v2.to_string())
                && an1.log().contains("continuing the ongoing attack event")
        },
    )
    .await;
    stored_once(&by, v0, "v0's attack after the failover (doubled?)", &an1);
    stored_once(&by, v2, "new attack on v2 after the failover", &an1);
    assert!(
        an1.log().contains("continuing the ongoing attack event"),
        "analyser-1 did not take v0's attack over: {}",
        an1.log()
    );
    eprintln!(
        "failover: v2 detected within {:?} of the kill",
        killed.elapsed()
    );
    // `pharos cluster status`: the live nodes with their roles, every partition with analyser-1
    // (the heartbeats say what each node owns every 2 s: polled, 20 s at most)
    let (p0, p1) = (
        u64::from(part.of_addr(v0.into())),
        u64::from(part.of_addr(v1.into())),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let (status, owned) = loop {
        let status = tokio::task::block_in_place(|| cluster_status(&api));
        let owned: Vec<u64> = status["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node"] == "analyser-1")
            .map(|n| {
                n["partitions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|p| p.as_u64())
                    .collect()
            })
            .unwrap_or_default();
        if (owned.contains(&p0) && owned.contains(&p1)) || Instant::now() > deadline {
            break (status, owned);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let nodes: Vec<(String, Vec<String>)> = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let roles = n["roles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_string());
            (n["node"].as_str().unwrap().to_string(), roles.collect())
        })
        .collect();
    for (name, role) in [
        ("archiver", "archiver"),
        ("api", "api"),
        ("analyser-1", "analyser"),
        ("collector-0", "collector"),
        ("collector-1", "collector"),
    ] {
        assert!(
            nodes
                .iter()
                .any(|(n, r)| n == name && r.iter().any(|x| x == role)),
            "{name} ({role}) missing from the status: {status}"
        );
    }
    assert!(
        owned.contains(&p0) && owned.contains(&p1),
        "analyser-1 owns {owned:?}: {status}"
    );
    let text = std::process::Command::new(support::bin())
        .args(["cluster", "status", "--config"])
        .arg(api.dir.path().join("pharos.toml"))
        .output()
        .unwrap();
    assert!(
        text.status.success(),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("analyser-1"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );

    // 3. One NATS server dies while the collectors publish: nothing is lost.
    nats.kill(1);
    tokio::task::block_in_place(|| {
        replay(&mut [(&mut e0, vec![v0]), (&mut e1, vec![v1])], &mut s, 6)
    });
    // The collectors' decoded flows, once they are idle; then they stop (flushing to the stream).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let decoded = support::metric(&col0, "pharos_flow_records_total", &[]).await
        + support::metric(&col1, "pharos_flow_records_total", &[]).await;
    let sent = e0.sent_flows + e1.sent_flows;
    assert!(
        decoded > 0 && decoded <= sent,
        "decoded {decoded} of {sent}"
    );
    for c in [&mut col0, &mut col1] {
        let st = c.terminate();
        assert!(st.success(), "collector exit {st}: {}", c.log());
    }

    // 4. Every decoded flow in ClickHouse exactly once.
    let client = ch.client("pharos_e2e");
    let deadline = Instant::now() + Duration::from_secs(60);
    let stored = loop {
        let n: u64 = String::from_utf8(
            client
                .query("SELECT count() FROM flows FORMAT TSV")
                .await
                .unwrap(),
        )
        .unwrap()
        .trim()
        .parse()
        .unwrap();
        if n >= decoded || Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        stored,
        decoded,
        "flows in ClickHouse vs decoded ({sent} sent)\n{}",
        archiver.log()
    );
    // and no more arrive (a duplicate would come late)
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again: u64 = String::from_utf8(
        client
            .query("SELECT count() FROM flows FORMAT TSV")
            .await
            .unwrap(),
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    assert_eq!(again, decoded, "late duplicates in ClickHouse");
    eprintln!("flows: {sent} sent, {decoded} decoded, {stored} in ClickHouse");

    // The API node answers flow queries from ClickHouse: the same total.
    let top = support::get_json(&api, "/api/v1/flows/top?key=dstip&n=3&by=flows").await;
    assert_eq!(top["total"]["flows"].as_u64(), Some(decoded), "{top}");
    let first = top["rows"][0]["key"].as_str();
    assert!(
        [v0, v1, v2]
            .iter()
            .any(|v| first == Some(v.to_string().as_str())),
        "the busiest destination is a victim: {top}"
    );

    // 5. Each event in PostgreSQL once.
    let by = ddos_by_victim(&api).await;
    for v in [v0, v1, v2] {
        stored_once(&by, v, "each event in PostgreSQL once", &an1);
    }
    assert_eq!(by.len(), 3, "only the three victims: {:?}", by.keys());
}
