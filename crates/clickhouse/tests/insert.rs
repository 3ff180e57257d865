//! Exactly-once RowBinary inserts against a real ClickHouse server (tests/server).

mod server;

use pharos_clickhouse::{Archive, Inserted};
use pharos_flows::query::{Order, Selection};
use pharos_model::flow::{FlowBatch, FlowRecord};
use server::Server;

const T0: u64 = 1_796_644_800_000;

fn batch(n: usize, seed: u64) -> FlowBatch {
    let mut b = FlowBatch::new();
    for i in 0..n as u64 {
        let x = i.wrapping_mul(2_654_435_761).wrapping_add(seed);
        b.push(&FlowRecord {
            exporter: if x % 3 == 0 {
                "2001:db8::9".parse().unwrap()
            } else {
                "192.0.2.1".parse().unwrap()
            },
            src_addr: std::net::Ipv4Addr::from((x % 1000) as u32 | 0x0a00_0000).into(),
            dst_addr: if x % 5 == 0 {
                "2001:db8::1".parse().unwrap()
            } else {
                "198.51.100.7".parse().unwrap()
            },
            src_port: (x % 65536) as u16,
            dst_port: 53,
            proto: 17,
            packets: 1 + x % 10,
            bytes: 64 + x % 1500,
            start_ms: T0 + i * 7,
            end_ms: T0 + i * 7 + 100,
            next_hop: (x % 2 == 0).then(|| "192.0.2.254".parse().unwrap()),
            vlan: (x % 4 == 0).then_some(100),
            direction: (x % 7 == 0).then_some(1),
            end_reason: (x % 11 == 0).then_some(2),
            sampling_rate: 1,
            ..FlowRecord::default()
        });
    }
    b
}

async fn count_flows(a: &Archive) -> u64 {
    a.totals(&Selection::all()).await.unwrap().flows
}

#[tokio::test]
async fn a_retried_batch_is_counted_once() {
    let Some(srv) = Server::start() else { return };
    let a = srv.archive("retry").await;
    let b = batch(5_000, 1);
    assert_eq!(a.insert(42, &b).await.unwrap(), Inserted::Written(5_000));
    assert_eq!(a.insert(42, &b).await.unwrap(), Inserted::Duplicate);
    assert_eq!(a.insert(42, &b).await.unwrap(), Inserted::Duplicate);
    assert_eq!(count_flows(&a).await, 5_000);
    // The rollups counted it once too.
    let body = a
        .client()
        .query("SELECT sum(flows) FROM flows_1m FORMAT TSV")
        .await
        .unwrap();
    assert_eq!(String::from_utf8(body).unwrap().trim(), "5000");
    // Another id is another batch.
    assert_eq!(a.insert(43, &b).await.unwrap(), Inserted::Written(5_000));
    assert_eq!(count_flows(&a).await, 10_000);
    // Empty batches write nothing.
    assert_eq!(
        a.insert(44, &FlowBatch::new()).await.unwrap(),
        Inserted::Written(0)
    );
}

#[tokio::test]
async fn a_batch_interrupted_after_its_rows_is_recovered_not_written_twice() {
    let Some(srv) = Server::start() else { return };
    let a = srv.archive("interrupted").await;
    let b = batch(1_000, 2);
    // An attempt that died after writing the rows, before recording them.
    a.record_started(7, &b).await.unwrap();
    a.write_rows(7, &b).await.unwrap();
    assert_eq!(a.insert(7, &b).await.unwrap(), Inserted::Recovered);
    assert_eq!(a.insert(7, &b).await.unwrap(), Inserted::Duplicate);
    assert_eq!(count_flows(&a).await, 1_000);
    // An attempt that died before writing anything: written on retry.
    a.record_started(8, &b).await.unwrap();
    assert_eq!(a.insert(8, &b).await.unwrap(), Inserted::Written(1_000));
    assert_eq!(count_flows(&a).await, 2_000);
    // Part of a batch: an error naming the batch and the fix, nothing written.
    let mut half = FlowBatch::new();
    for r in b.iter().take(500) {
        half.push(&r);
    }
    a.record_started(9, &b).await.unwrap();
    a.write_rows(9, &half).await.unwrap();
    let e = a.insert(9, &b).await.unwrap_err().to_string();
    assert!(e.contains("batch 9") && e.contains("500 of 1000"), "{e}");
    assert!(
        e.contains("ALTER TABLE flows DELETE WHERE batch_id = 9"),
        "{e}"
    );
    assert_eq!(count_flows(&a).await, 2_500);
}

#[tokio::test]
async fn stored_flows_read_back_equal_with_every_optional_field() {
    let Some(srv) = Server::start() else { return };
    let a = srv.archive("roundtrip").await;
    let b = batch(300, 3);
    a.insert(1, &b).await.unwrap();
    let listing = a.list(&Selection::all(), 1_000, Order::Time).await.unwrap();
    let back: Vec<FlowRecord> = listing.flows;
    let want: Vec<FlowRecord> = b.iter().collect();
    assert_eq!(back, want);
}

/// Insert throughput and the four standard queries' times (run with `--run-ignored only
/// --no-capture`; figures in docs/clickhouse.md). `PHAROS_CLICKHOUSE_BENCH_FLOWS` sets the
/// number of flows (default 2 000 000).
#[tokio::test]
#[ignore]
async fn insert_and_query_throughput() {
    use pharos_flows::filter::parse;
    use pharos_flows::query::{Key, Metric};
    let Some(srv) = Server::start() else { return };
    let a = srv.archive("bench").await;
    let total: u64 = std::env::var("PHAROS_CLICKHOUSE_BENCH_FLOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let per = 100_000u64;
    let mut b = batch(per as usize, 4);
    let t = std::time::Instant::now();
    let mut id = 0;
    while id * per < total {
        // One hour of flows per 1 M, spread over protocols and flags.
        for i in 0..b.len() {
            let x = (id * per + i as u64).wrapping_mul(2_654_435_761);
            b.start_ms[i] = T0 + (id * per + i as u64) * 3_600;
            b.end_ms[i] = b.start_ms[i] + 1_000;
            b.proto[i] = [6, 6, 17, 1][(x % 4) as usize];
            b.tcp_flags[i] = if x.is_multiple_of(7) { 0x02 } else { 0x1b };
            b.dst_addr[i][15] = (x % 251) as u8;
        }
        a.insert(id, &b).await.unwrap();
        id += 1;
    }
    let secs = t.elapsed().as_secs_f64();
    let rows = id * per;
    assert_eq!(count_flows(&a).await, rows);
    println!(
        "inserted {rows} flows in {id} batches of {per} in {secs:.2} s: {:.0} flows/s",
        rows as f64 / secs
    );
    // (name, filter, key, metric, window)
    type Standard = (
        &'static str,
        &'static str,
        &'static str,
        Metric,
        Option<(u64, u64)>,
    );
    let queries: [Standard; 4] = [
        ("top dst by bytes", "any", "dstip", Metric::Bytes, None),
        ("UDP src ports", "proto udp", "srcport", Metric::Flows, None),
        (
            "SYN-only",
            "flags S and not flags A",
            "srcip",
            Metric::Flows,
            None,
        ),
        (
            "5-minute window",
            "any",
            "dstip",
            Metric::Bytes,
            Some((T0 + 600_000, T0 + 900_000)),
        ),
    ];
    for (name, filter, key, by, window) in queries {
        let sel = Selection {
            filter: parse(filter).unwrap(),
            from_ms: window.map(|w| w.0),
            to_ms: window.map(|w| w.1),
        };
        let key: Key = key.parse().unwrap();
        let t = std::time::Instant::now();
        let top = a.top(&sel, key, by, 10).await.unwrap();
        println!(
            "{name}: {:.3} s ({} flows selected, {} distinct {key})",
            t.elapsed().as_secs_f64(),
            top.total.flows,
            top.distinct
        );
    }
}
