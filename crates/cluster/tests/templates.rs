//! Exporter templates and sampling tables shared through the `pharos_templates` bucket, against
//! a real nats-server (skipped without `nats-server`, failing under `PHAROS_REQUIRE_ALL=1`) and
//! real UDP flow collectors:
//!
//! - NetFlow v9: an exporter sends its template only to the first collector; the second then
//!   decodes its data-only datagrams, the same flows;
//! - IPFIX with an options template and a selector table (sampling rate 256): the same, with
//!   the rate applied by the second collector; a third collector started afterwards gets the
//!   templates from the bucket's current values;
//! - hostile bucket entries (garbage, a value under another key, a template record over the
//!   field limit) are refused and counted; the collectors keep decoding.

#[path = "support/nats.rs"]
mod nats;

#[path = "../../wire/tests/common/build.rs"]
mod build;

use std::net::UdpSocket;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use build::{Msg, flow_fields, flow_record};
use nats::NatsCluster;
use pharos_cluster::connect::TEMPLATE_BUCKET;
use pharos_cluster::templates::{TemplateSync, start_sync};
use pharos_cluster::{Cluster, ClusterConfig, Role};
use pharos_model::clock::now_ms;
use pharos_model::flow::FlowBatch;
use pharos_sources::flow::{FlowCollector, FlowUdpConfig, build};
use pharos_wire::TemplateShare;

/// One collector node: its cluster connection, share, sync task and UDP listener.
struct Node {
    share: TemplateShare,
    sync: TemplateSync,
    collector: FlowCollector,
    rx: Receiver<FlowBatch>,
}

impl Node {
    async fn start(nats: &NatsCluster, name: &str) -> Node {
        let cfg = ClusterConfig {
            roles: vec![Role::Collector],
            node: name.into(),
            nats: nats.urls(),
            partitions: 4,
            ..ClusterConfig::default()
        };
        let cluster = Cluster::connect(&cfg).await.expect("connect");
        cluster.ensure().await.expect("ensure");
        let share = TemplateShare::new();
        let sync = start_sync(&cluster, share.clone());
        let mut collector = build(&FlowUdpConfig {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            receive_buffer_bytes: 1 << 20,
            templates: Some(share.clone()),
            ..FlowUdpConfig::default()
        })
        .expect("collector");
        let rx = collector.take_receiver().unwrap();
        Node {
            share,
            sync,
            collector,
            rx,
        }
    }

    fn send(&self, tx: &UdpSocket, datagram: &[u8]) {
        tx.send_to(datagram, self.collector.local_addrs()[0])
            .unwrap();
    }

    /// The next `n` flows this collector hands on.
    fn flows(&self, n: usize) -> FlowBatch {
        let mut all = FlowBatch::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while all.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "only {} of {n} flows came", all.len());
            if let Ok(b) = self.rx.recv_timeout(left.min(Duration::from_millis(100))) {
                all.extend_from(&b);
            }
        }
        all
    }

    /// Waits until the share holds at least `n` entries from the bucket.
    async fn wait_entries(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.share.stats().entries < n {
            assert!(
                Instant::now() < deadline,
                "the share holds {:?}, expected {n} entries",
                self.share.stats()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        self.collector.stop();
        self.sync.stop().await;
    }
}

fn secs() -> u32 {
    (now_ms() / 1000) as u32
}

/// Compares what two collectors made of the same records (the exporter is the same socket).
fn same_flows(a: &FlowBatch, b: &FlowBatch) {
    assert_eq!(a.len(), b.len());
    for i in 0..a.len() {
        let (x, y) = (a.get(i), b.get(i));
        assert_eq!(
            (
                x.src_addr,
                x.dst_addr,
                x.src_port,
                x.dst_port,
                x.bytes,
                x.packets,
                x.sampling_rate,
                x.exporter,
                x.domain
            ),
            (
                y.src_addr,
                y.dst_addr,
                y.src_port,
                y.dst_port,
                y.bytes,
                y.packets,
                y.sampling_rate,
                y.exporter,
                y.domain
            ),
            "flow {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collectors_decode_exporters_whose_templates_went_to_another_collector() {
    let Some(nats) = NatsCluster::start(1).await else {
        return;
    };
    let a = Node::start(&nats, "c1").await;
    let b = Node::start(&nats, "c2").await;
    let exporter = UdpSocket::bind("127.0.0.1:0").unwrap();

    // NetFlow v9: template and data to a only.
    let v9_records: Vec<Vec<u8>> = (0..5)
        .map(|i| flow_record(i, 90_000, 99_000, false))
        .collect();
    a.send(
        &exporter,
        &Msg::v9(3, 1, 100_000, secs())
            .template(260, &flow_fields(false))
            .data(260, &v9_records)
            .build(),
    );
    let from_a = a.flows(5);
    b.wait_entries(1).await;
    // After the failover the exporter's data goes to b, which never saw the template.
    b.send(
        &exporter,
        &Msg::v9(3, 2, 100_000, secs())
            .data(260, &v9_records)
            .build(),
    );
    let from_b = b.flows(5);
    same_flows(&from_a, &from_b);

    // IPFIX with a selector table: options template, options data and flow template to a.
    let opts = Msg::ipfix(1, 0, secs())
        .options_template(
            512,
            &[(302, 8, 0)],
            &[(305, 4, 0), (304, 2, 0), (309, 4, 0), (310, 4, 0)],
        )
        .data(
            512,
            &[[
                1u64.to_be_bytes().to_vec(),
                1u32.to_be_bytes().to_vec(),
                3u16.to_be_bytes().to_vec(),
                1u32.to_be_bytes().to_vec(),
                256u32.to_be_bytes().to_vec(),
            ]
            .concat()],
        )
        .build();
    let mut fields = flow_fields(true);
    fields.push((302, 8, 0));
    let now = now_ms();
    let records: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            let mut r = flow_record(i, now - 2000, now - 1000, true);
            r.extend_from_slice(&1u64.to_be_bytes());
            r
        })
        .collect();
    a.send(&exporter, &opts);
    std::thread::sleep(Duration::from_millis(50));
    a.send(
        &exporter,
        &Msg::ipfix(1, 0, secs())
            .template(256, &fields)
            .data(256, &records)
            .build(),
    );
    let from_a = a.flows(3);
    assert_eq!(from_a.sampling_rate, [256, 256, 256]);
    // v9 template + IPFIX options template, flow template and sampling table.
    b.wait_entries(4).await;
    let data_only = Msg::ipfix(1, 3, secs()).data(256, &records).build();
    b.send(&exporter, &data_only);
    let from_b = b.flows(3);
    same_flows(&from_a, &from_b);

    // A collector started now gets every template from the bucket's current values.
    let c = Node::start(&nats, "c3").await;
    c.wait_entries(4).await;
    c.send(&exporter, &data_only);
    same_flows(&from_a, &c.flows(3));
    let s = c.sync.stats();
    assert_eq!((s.put, s.refused), (0, 0), "{s:?}");
    assert!(s.received >= 4, "{s:?}");

    let (sa, sb) = (a.sync.stats(), b.sync.stats());
    assert_eq!(sa.put, 4, "{sa:?}");
    assert_eq!(sb.put, 0, "b learned nothing from datagrams: {sb:?}");
    a.stop().await;
    b.stop().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bucket_entries_are_refused_and_counted() {
    let Some(nats) = NatsCluster::start(1).await else {
        return;
    };
    let a = Node::start(&nats, "h1").await;
    let exporter = UdpSocket::bind("127.0.0.1:0").unwrap();
    // A genuine template learned by a, to forge variants of.
    a.send(
        &exporter,
        &Msg::v9(3, 1, 100_000, secs())
            .template(260, &flow_fields(false))
            .build(),
    );
    a.wait_entries(1).await;
    let client = async_nats::connect(nats.url(0)).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let store = js.get_key_value(TEMPLATE_BUCKET).await.unwrap();
    let genuine = store.get("127_0_0_1.v9.3.260").await.unwrap().unwrap();

    store
        .put(
            "127_0_0_1.v9.3.261",
            b"definitely not a template".to_vec().into(),
        )
        .await
        .unwrap();
    // The genuine value under another template's key.
    store
        .put("127_0_0_1.v9.3.262", genuine.clone())
        .await
        .unwrap();
    // A well-framed entry whose record announces 300 fields (over the decoder's 256): the share
    // accepts it (the header is sound), the decoders refuse it.
    let mut wide = genuine.to_vec();
    wide.truncate(35);
    wide.extend_from_slice(&263u16.to_be_bytes());
    wide.extend_from_slice(&300u16.to_be_bytes());
    for _ in 0..300 {
        wide.extend_from_slice(&[0, 8, 0, 4]);
    }
    // The key derives from the id in the record.
    store.put("127_0_0_1.v9.3.263", wide.into()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.sync.stats().refused < 2 || a.share.stats().entries < 2 {
        assert!(Instant::now() < deadline, "{:?}", a.sync.stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The collector still decodes, and refused the wide template.
    let records: Vec<Vec<u8>> = (0..2)
        .map(|i| flow_record(i, 90_000, 99_000, false))
        .collect();
    a.send(
        &exporter,
        &Msg::v9(3, 2, 100_000, secs())
            .data(260, &records)
            .data(263, &[vec![0; 32]])
            .build(),
    );
    assert_eq!(a.flows(2).len(), 2);
    let s = a.sync.stats();
    assert_eq!(s.refused, 2, "{s:?}");
    // A deleted key is forgotten by the share.
    store.delete("127_0_0_1.v9.3.263").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.share.stats().entries > 1 {
        assert!(Instant::now() < deadline, "{:?}", a.share.stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.stop().await;
}
