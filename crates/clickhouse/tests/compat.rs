//! Compatibility with current ClickHouse releases (Debian packages only 18.16): this ignored
//! test runs every kind of statement the crate sends against 18.16 with queries logged, replays
//! the logged statements on a fixed data set, and writes them with 18.16's answers to
//! `$PHAROS_CLICKHOUSE_COMPAT_OUT` (default `target/clickhouse-compat.json`).
//! `tests/compat/check_current.py` then runs the same statements in chDB (the ClickHouse engine
//! of a current release, `pip install chdb-core`) and compares the answers:
//!
//! ```text
//! cargo nextest run -p pharos-clickhouse --run-ignored only -E 'test(compat)'
//! python3 crates/clickhouse/tests/compat/check_current.py target/clickhouse-compat.json
//! ```

mod server;

use pharos_flows::filter::parse;
use pharos_flows::query::{Key, Metric, Order, Selection};
use pharos_model::flow::{FlowBatch, FlowRecord};

const T0: u64 = 1_796_644_000_000;

/// 1000 flows over 1000 s with both families, several protocols, flags, ports, AS numbers and
/// interfaces, as SQL that runs on every version.
const SAMPLE: &str = "INSERT INTO flows (time, batch_id, row, flags, exporter, domain, in_if, \
    out_if, src_addr, dst_addr, src_port, dst_port, proto, tcp_flags, tos, packets, bytes, \
    start_ms, end_ms, src_as, dst_as, src_mask, dst_mask, next_hop, vlan, direction, \
    sampling_rate, icmp_type, icmp_code, end_reason) \
    SELECT toDateTime(intDiv(1796644000000 + number * 1000, 1000), 'UTC'), 1, number, \
    [7, 0, 39, 6][number % 4 + 1], \
    toFixedString(unhex('00000000000000000000FFFFC0000201'), 16), 0, number % 3, 2, \
    toFixedString(unhex(concat('00000000000000000000FFFF0A0000', hex(toUInt8(number % 200)))), 16), \
    toFixedString(unhex(concat('20010DB80000000000000000000000', hex(toUInt8(number % 7)))), 16), \
    number % 1000, 53, [6, 17, 1][number % 3 + 1], number % 32, 0, 1 + number % 10, \
    100 * number, 1796644000000 + number * 1000, 1796644000000 + number * 1000 + 10, \
    number % 5, 64496, 24, 48, toFixedString(unhex('00000000000000000000000000000000'), 16), \
    100, 0, 1, 8, 0, 0 FROM numbers(1000)";

#[tokio::test]
#[ignore]
async fn compat_dump_statements_and_answers_of_18_16() {
    let Some(srv) = server::Server::start_logging_queries() else {
        return;
    };
    let a = srv.archive("exercise").await;
    // Every kind of statement: inserts with the ledger, recovery, every key, series, listings,
    // retention.
    let mut b = FlowBatch::new();
    b.push(&FlowRecord {
        start_ms: T0 + 800_000,
        end_ms: T0 + 800_100,
        packets: 1,
        bytes: 2,
        ..FlowRecord::default()
    });
    a.insert(1, &b).await.unwrap();
    a.insert(1, &b).await.unwrap();
    a.record_started(2, &b).await.unwrap();
    a.insert(2, &b).await.unwrap();
    let filters = [
        "any",
        "proto udp and dst port 53",
        "src net 10.0.0.0/8 and bytes > 1k",
        "flags S and not flags A",
        "host 2001:db8::1 or in if 1 or vlan 100 or out if 2 or if 7",
        "as 3 and icmp-type 8 and icmp-code 0 and tos < 1 and ipv4 and packets < 3",
        "not any",
        "ipv6 or src as < 2 or dst as >= 7 or port != 4",
        "dst net 2001:db8::/120 and not src host 10.0.0.1",
    ];
    let keys = [
        "srcip",
        "dstip",
        "ip",
        "srcport",
        "dstport",
        "port",
        "proto",
        "srcas",
        "dstas",
        "as",
        "exporter",
        "inif",
        "outif",
        "tos",
        "srcip4/24",
        "dstip4/0",
        "ip4/16",
        "dstip6/48",
        "srcip6/0",
        "ip6/128",
    ];
    for (i, f) in filters.iter().enumerate() {
        let sel = Selection {
            filter: parse(f).unwrap(),
            from_ms: (i % 2 == 0).then_some(T0 + 100_000),
            to_ms: (i % 2 == 0).then_some(T0 + 900_000),
        };
        for k in keys {
            let key: Key = k.parse().unwrap();
            a.top(&sel, key, Metric::Bytes, 5).await.unwrap();
        }
        let key: Key = keys[i].parse().unwrap();
        a.series(&sel, 60_000, Some((key, 3)), Metric::Flows)
            .await
            .unwrap();
        a.list(&sel, 10, Order::Packets).await.unwrap();
    }
    let later = T0 + 100 * 86_400_000;
    a.drop_expired(&pharos_clickhouse::Retention::default(), later)
        .await
        .unwrap();
    let c = a.client();
    c.execute("SYSTEM FLUSH LOGS").await.unwrap();
    let body = c
        .query(
            "SELECT query FROM system.query_log WHERE type = 2 AND has(databases, 'exercise') \
             AND query NOT LIKE '%system.%' ORDER BY event_time FORMAT JSONEachRow",
        )
        .await;
    // 18.16 has no `databases` column in query_log: fall back to every query.
    let body = match body {
        Ok(b) => b,
        Err(_) => c
            .query(
                "SELECT query FROM system.query_log WHERE type = 2 AND query NOT LIKE \
                 '%system.%' AND query NOT LIKE '%FLUSH%' ORDER BY event_time FORMAT JSONEachRow",
            )
            .await
            .unwrap(),
    };
    let logged: Vec<String> = String::from_utf8(body)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["query"].as_str().unwrap().to_string()
        })
        .collect();
    let mut setup: Vec<String> = logged
        .iter()
        .filter(|q| q.starts_with("CREATE TABLE"))
        .cloned()
        .collect();
    setup.sort();
    setup.dedup();
    let mut views: Vec<String> = logged
        .iter()
        .filter(|q| q.starts_with("CREATE MATERIALIZED VIEW"))
        .cloned()
        .collect();
    views.sort();
    views.dedup();
    setup.extend(views);
    setup.push(SAMPLE.to_string());
    let mut selects: Vec<String> = logged
        .iter()
        .filter(|q| q.starts_with("SELECT"))
        .map(|q| q.replace("FORMAT RowBinary", "FORMAT TSV"))
        .collect();
    selects.sort();
    selects.dedup();
    assert!(selects.len() > 300, "{} selects logged", selects.len());

    // The answers of 18.16 on the sample data.
    let replay = srv.client("replay");
    // Version 0: the database and the migrations table, nothing else.
    pharos_clickhouse::migrate_to(&replay, 0).await.unwrap();
    for q in &setup {
        replay
            .execute(q)
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"));
    }
    let mut queries = Vec::new();
    for q in &selects {
        let answer = replay.query(q).await.unwrap_or_else(|e| panic!("{q}: {e}"));
        let hex: String = answer.iter().map(|b| format!("{b:02x}")).collect();
        queries.push(serde_json::json!({ "sql": q, "answer_hex": hex }));
    }
    let out = std::env::var("PHAROS_CLICKHOUSE_COMPAT_OUT").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/clickhouse-compat.json"
        )
        .into()
    });
    let doc = serde_json::json!({ "version": "18.16", "setup": setup, "queries": queries });
    std::fs::write(&out, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    println!(
        "{} statements and {} answers written to {out}",
        setup.len(),
        queries.len()
    );
}
