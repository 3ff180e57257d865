//! The same queries against the Parquet archive (crates/flows) and ClickHouse give the same
//! answers: a property test over random flows and random filters of the whole grammar, and the
//! four standard queries on a fixed data set.

mod server;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use pharos_clickhouse::Archive;
use pharos_flows::filter::{CmpOp, Expr, Family, IfSide, Pred, Side, parse};
use pharos_flows::query::{Key, KeyValue, Metric, Order, Scan, Selection, Series, TopN};
use pharos_flows::segment::{SegmentConfig, SegmentWriter};
use pharos_model::flow::{FlowBatch, FlowRecord};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use server::Server;

/// 2026-12-07 12:00 UTC.
const T0: u64 = 1_796_644_800_000;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Writes `flows` into a Parquet archive under `dir`; returns its root.
fn parquet_archive(dir: &Path, flows: &[FlowRecord], chunk: usize) -> PathBuf {
    let root = dir.join("flows");
    let mut cfg = SegmentConfig::new(&root);
    cfg.retention = std::time::Duration::ZERO;
    cfg.row_group_rows = 64;
    let mut w = SegmentWriter::open(cfg).unwrap();
    let now = T0 + 86_400_000;
    for (i, chunk) in flows.chunks(chunk).enumerate() {
        let mut b = FlowBatch::new();
        b.extend_records(chunk);
        w.push(&b, now + i as u64 * 2_000);
        w.flush(now + i as u64 * 2_000 + 1_000).unwrap();
    }
    root
}

async fn clickhouse_archive(srv: &Server, db: &str, flows: &[FlowRecord], chunk: usize) -> Archive {
    let a = Archive::new(srv.client(db));
    pharos_clickhouse::migrate_to(a.client(), 1).await.unwrap();
    for (i, chunk) in flows.chunks(chunk).enumerate() {
        let mut b = FlowBatch::new();
        b.extend_records(chunk);
        a.insert(i as u64, &b).await.unwrap();
    }
    a
}

fn assert_same_top(what: &str, parquet: &TopN, ch: &TopN) {
    assert_eq!(parquet.total, ch.total, "{what}: totals");
    assert_eq!(parquet.distinct, ch.distinct, "{what}: distinct keys");
    assert_eq!(parquet.rows, ch.rows, "{what}: rows");
    assert_eq!((parquet.key, parquet.by), (ch.key, ch.by), "{what}");
}

fn assert_same_series(what: &str, parquet: &Series, ch: &Series) {
    assert_eq!(parquet.points, ch.points, "{what}: points");
    assert_eq!(parquet.keys, ch.keys, "{what}: per key");
    assert_eq!(parquet.interval_ms, ch.interval_ms, "{what}");
}

// ---------------------------------------------------------------------------------------------
// Generators over the grammar (values drawn partly from the flows' own, so filters select some)

const ADDRS: &[&str] = &[
    "10.0.0.1",
    "10.0.0.2",
    "10.1.2.3",
    "192.0.2.1",
    "0.0.0.0",
    "2001:db8::1",
    "2001:db8::2",
    "::ffff:10.0.0.1",
];

fn arb_addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        4 => prop::sample::select(ADDRS).prop_map(ip),
        1 => any::<u32>().prop_map(|a| IpAddr::V4(a.into())),
        1 => any::<u128>().prop_map(|a| IpAddr::V6(a.into())),
    ]
}

fn arb_side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Src), Just(Side::Dst), Just(Side::Either)]
}

fn arb_op() -> impl Strategy<Value = CmpOp> {
    prop_oneof![
        Just(CmpOp::Eq),
        Just(CmpOp::Ne),
        Just(CmpOp::Lt),
        Just(CmpOp::Le),
        Just(CmpOp::Gt),
        Just(CmpOp::Ge)
    ]
}

fn arb_net() -> impl Strategy<Value = IpNet> {
    (arb_addr(), 0u8..=128).prop_map(|(a, len)| {
        let max = if a.is_ipv4() { 32 } else { 128 };
        IpNet::new(a, len % (max + 1)).unwrap().trunc()
    })
}

fn small<T: std::fmt::Debug + Clone + 'static>(
    common: Vec<T>,
    any: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = T> {
    prop_oneof![3 => prop::sample::select(common), 1 => any]
}

fn arb_pred() -> impl Strategy<Value = Pred> {
    let port = || small(vec![0u16, 53, 80, 443, 1024], any::<u16>());
    let asn = || small(vec![0u32, 64496, 64497], any::<u32>());
    let count = || small(vec![0u64, 1, 10, 1000, 100_000], any::<u64>());
    let byte = || small(vec![0u8, 1, 3, 8, 46], any::<u8>());
    prop_oneof![
        small(vec![1u8, 6, 17, 58], any::<u8>()).prop_map(Pred::Proto),
        (arb_side(), arb_addr()).prop_map(|(side, addr)| Pred::Host { side, addr }),
        (arb_side(), arb_net()).prop_map(|(side, net)| Pred::Net { side, net }),
        (arb_side(), arb_op(), port()).prop_map(|(side, op, value)| Pred::Port { side, op, value }),
        (arb_side(), arb_op(), asn()).prop_map(|(side, op, value)| Pred::As { side, op, value }),
        (
            prop_oneof![Just(IfSide::In), Just(IfSide::Out), Just(IfSide::Either)],
            small(vec![0u32, 1, 2], any::<u32>())
        )
            .prop_map(|(side, index)| Pred::Interface { side, index }),
        small(vec![0u16, 100], 0u16..=4095).prop_map(Pred::Vlan),
        (arb_op(), count()).prop_map(|(op, value)| Pred::Bytes { op, value }),
        (arb_op(), count()).prop_map(|(op, value)| Pred::Packets { op, value }),
        small(vec![0x02u8, 0x12, 0x10, 0x01], 1u8..=255).prop_map(Pred::Flags),
        (arb_op(), byte()).prop_map(|(op, value)| Pred::Tos { op, value }),
        (arb_op(), byte()).prop_map(|(op, value)| Pred::IcmpType { op, value }),
        (arb_op(), byte()).prop_map(|(op, value)| Pred::IcmpCode { op, value }),
        prop_oneof![Just(Family::V4), Just(Family::V6)].prop_map(Pred::Family),
    ]
}

fn arb_expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![1 => Just(Expr::Any), 10 => arb_pred().prop_map(Expr::Pred)];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner, 2..4).prop_map(Expr::Or),
        ]
    })
}

fn arb_flow() -> impl Strategy<Value = FlowRecord> {
    let port = || small(vec![0u16, 53, 80, 443, 1024, 65535], any::<u16>());
    let asn = || small(vec![0u32, 64496, 64497], any::<u32>());
    let ifx = || small(vec![0u32, 1, 2], any::<u32>());
    let byte = || small(vec![0u8, 3, 8, 46], any::<u8>());
    (
        (arb_addr(), arb_addr(), arb_addr(), port(), port()),
        (
            small(vec![1u8, 6, 17, 58], any::<u8>()),
            small(vec![0x02u8, 0x12, 0x10, 0x11], any::<u8>()),
            byte(),
            byte(),
            byte(),
        ),
        (asn(), asn(), ifx(), ifx()),
        // Packets and bytes below 2^32, so that sums fit (ClickHouse wraps, Parquet saturates).
        (
            0u64..1_000,
            0u64..1_000_000,
            0u64..3 * 3_600_000,
            0u64..600_000,
        ),
        (
            prop::option::of(small(vec![0u16, 100], 0u16..=4095)),
            0u32..4,
        ),
    )
        .prop_map(
            |(
                (exporter, src_addr, dst_addr, src_port, dst_port),
                (proto, tcp_flags, tos, icmp_type, icmp_code),
                (src_as, dst_as, in_if, out_if),
                (packets, bytes, start, dur),
                (vlan, sampling_rate),
            )| FlowRecord {
                exporter,
                src_addr,
                dst_addr,
                src_port,
                dst_port,
                proto,
                tcp_flags,
                tos,
                icmp_type,
                icmp_code,
                src_as,
                dst_as,
                in_if,
                out_if,
                packets,
                bytes,
                start_ms: T0 + start,
                end_ms: T0 + start + dur,
                vlan,
                sampling_rate,
                ..FlowRecord::default()
            },
        )
}

/// Every key form, in its printed spelling.
const KEYS: &[&str] = &[
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
    "dstip4/32",
];

fn arb_window() -> impl Strategy<Value = (Option<u64>, Option<u64>)> {
    let t = || prop::option::of((0u64..4 * 3_600_000).prop_map(|x| T0 + x));
    (t(), t()).prop_map(|(a, b)| match (a, b) {
        (Some(a), Some(b)) if b < a => (Some(b), Some(a)),
        w => w,
    })
}

#[test]
fn top_series_and_totals_equal_the_parquet_engine_on_random_flows_and_filters() {
    let Some(srv) = Server::start() else { return };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cases: u32 = std::env::var("PHAROS_CLICKHOUSE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let counter = std::sync::atomic::AtomicU32::new(0);
    let strategy = (
        prop::collection::vec(arb_flow(), 0..300),
        prop::collection::vec(arb_expr(), 4),
        prop::collection::vec(prop::sample::select(KEYS), 3),
        prop_oneof![
            Just(Metric::Flows),
            Just(Metric::Packets),
            Just(Metric::Bytes)
        ],
        0usize..12,
        arb_window(),
        prop::sample::select(vec![60_000u64, 300_000, 3_600_000]),
    );
    runner
        .run(
            &strategy,
            |(flows, filters, keys, by, n, (from, to), interval)| {
                let case = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                let dir = tempfile::tempdir().unwrap();
                let root = parquet_archive(dir.path(), &flows, 100);
                let db = format!("prop{case}");
                let ch = rt.block_on(clickhouse_archive(&srv, &db, &flows, 100));
                for (i, filter) in filters.iter().enumerate() {
                    let sel = Selection {
                        filter: filter.clone(),
                        from_ms: if i % 2 == 0 { from } else { None },
                        to_ms: if i % 2 == 0 { to } else { None },
                    };
                    let scan = Scan::new(&root, sel.clone());
                    let key: Key = keys[i % keys.len()].parse().unwrap();
                    let what = format!("case {case}, filter `{filter}`, key {key}, by {by}, n {n}");
                    let p = scan.top(key, by, n).unwrap();
                    let c = rt
                        .block_on(ch.top(&sel, key, by, n))
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_same_top(&what, &p, &c);
                    let naive = flows.iter().filter(|f| sel.matches(f)).count() as u64;
                    assert_eq!(c.total.flows, naive, "{what}: against the reference");
                    if i == 0 {
                        let p = scan.series(interval, Some((key, n)), by).unwrap();
                        let c = rt
                            .block_on(ch.series(&sel, interval, Some((key, n)), by))
                            .unwrap_or_else(|e| panic!("{what}, interval {interval}: {e}"));
                        assert_same_series(&what, &p, &c);
                    }
                    if i == 1 {
                        let mut p = scan.list(1000, Order::Time).unwrap().flows;
                        let mut c = rt
                            .block_on(ch.list(&sel, 1000, Order::Time))
                            .unwrap_or_else(|e| panic!("{what}: {e}"))
                            .flows;
                        let starts =
                            |v: &[FlowRecord]| v.iter().map(|f| f.start_ms).collect::<Vec<_>>();
                        assert_eq!(starts(&p), starts(&c), "{what}: listing order");
                        let order = |f: &FlowRecord| format!("{f:?}");
                        p.sort_by_key(order);
                        c.sort_by_key(order);
                        assert_eq!(p, c, "{what}: listing");
                    }
                }
                rt.block_on(ch.client().execute(&format!("DROP DATABASE {db}")))
                    .unwrap();
                Ok(())
            },
        )
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// The four standard queries on a fixed data set

/// Background traffic plus a UDP flood on 198.51.100.7, a SYN scan from 203.0.113.9 and a burst
/// in the minute T0 + 30 min.
fn standard_flows() -> Vec<FlowRecord> {
    let mut v = Vec::new();
    for i in 0..2_000u64 {
        let x = i.wrapping_mul(2_654_435_761);
        v.push(FlowRecord {
            exporter: ip("192.0.2.1"),
            src_addr: std::net::Ipv4Addr::from(0x0a00_0000 | (x % 200) as u32).into(),
            dst_addr: std::net::Ipv4Addr::from(0xc000_0200 | (x % 50) as u32).into(),
            src_port: 1024 + (x % 5000) as u16,
            dst_port: [80, 443, 53][(x % 3) as usize],
            proto: if x % 3 == 2 { 17 } else { 6 },
            tcp_flags: if x % 3 == 2 { 0 } else { 0x1b },
            packets: 1 + x % 20,
            bytes: 100 + x % 20_000,
            start_ms: T0 + i * 1_800,
            end_ms: T0 + i * 1_800 + 5_000,
            in_if: 1,
            out_if: 2,
            ..FlowRecord::default()
        });
    }
    for i in 0..500u64 {
        v.push(FlowRecord {
            exporter: ip("192.0.2.1"),
            src_addr: std::net::Ipv4Addr::from(0x6400_0000 | i as u32).into(),
            dst_addr: ip("198.51.100.7"),
            src_port: [53, 123, 1900, 11211][(i % 4) as usize],
            dst_port: 4444,
            proto: 17,
            packets: 1_000,
            bytes: 1_400_000,
            start_ms: T0 + 1_800_000 + i * 100,
            end_ms: T0 + 1_800_000 + i * 100 + 60_000,
            ..FlowRecord::default()
        });
    }
    for i in 0..300u64 {
        v.push(FlowRecord {
            exporter: ip("192.0.2.1"),
            src_addr: ip("203.0.113.9"),
            dst_addr: std::net::Ipv4Addr::from(0xc000_0200 | (i % 250) as u32).into(),
            src_port: 40_000,
            dst_port: (i + 1) as u16,
            proto: 6,
            tcp_flags: 0x02,
            packets: 1,
            bytes: 60,
            start_ms: T0 + 600_000 + i * 1_000,
            end_ms: T0 + 600_000 + i * 1_000,
            ..FlowRecord::default()
        });
    }
    v
}

#[tokio::test]
async fn the_four_standard_queries_answer_as_the_parquet_engine() {
    let Some(srv) = Server::start() else { return };
    let flows = standard_flows();
    let dir = tempfile::tempdir().unwrap();
    let root = parquet_archive(dir.path(), &flows, 1000);
    let ch = clickhouse_archive(&srv, "standard", &flows, 1000).await;
    let sel = |f: &str, from: Option<u64>, to: Option<u64>| Selection {
        filter: parse(f).unwrap(),
        from_ms: from,
        to_ms: to,
    };

    // 1. Top destinations by bytes: the flood's victim first.
    let s = sel("any", None, None);
    let key: Key = "dstip".parse().unwrap();
    let p = Scan::new(&root, s.clone())
        .top(key, Metric::Bytes, 10)
        .unwrap();
    let c = ch.top(&s, key, Metric::Bytes, 10).await.unwrap();
    assert_same_top("top dst by bytes", &p, &c);
    assert_eq!(c.rows[0].key, KeyValue::Addr(ip("198.51.100.7")));
    assert_eq!(c.total.flows, 2_800);

    // 2. UDP source ports: the reflection ports of the flood.
    let s = sel("proto udp", None, None);
    let key: Key = "srcport".parse().unwrap();
    let p = Scan::new(&root, s.clone())
        .top(key, Metric::Flows, 10)
        .unwrap();
    let c = ch.top(&s, key, Metric::Flows, 10).await.unwrap();
    assert_same_top("udp src ports", &p, &c);
    let top4: Vec<KeyValue> = c.rows[..4].iter().map(|r| r.key).collect();
    for port in [53, 123, 1900, 11211] {
        assert!(top4.contains(&KeyValue::Num(port)), "{top4:?}");
    }

    // 3. SYN-only: the scan.
    let s = sel("flags S and not flags A", None, None);
    let key: Key = "srcip".parse().unwrap();
    let p = Scan::new(&root, s.clone())
        .top(key, Metric::Flows, 5)
        .unwrap();
    let c = ch.top(&s, key, Metric::Flows, 5).await.unwrap();
    assert_same_top("syn only", &p, &c);
    assert_eq!(c.rows.len(), 1);
    assert_eq!(c.rows[0].key, KeyValue::Addr(ip("203.0.113.9")));
    assert_eq!(c.total.flows, 300);
    let lp = Scan::new(&root, s.clone()).list(50, Order::Time).unwrap();
    let lc = ch.list(&s, 50, Order::Time).await.unwrap();
    assert_eq!(lp.flows, lc.flows, "syn-only listing");

    // 4. A 5-minute window: series per minute and top destinations inside it.
    let (from, to) = (T0 + 1_800_000, T0 + 2_100_000);
    let s = sel("any", Some(from), Some(to));
    let key: Key = "dstip".parse().unwrap();
    let p = Scan::new(&root, s.clone())
        .top(key, Metric::Packets, 5)
        .unwrap();
    let c = ch.top(&s, key, Metric::Packets, 5).await.unwrap();
    assert_same_top("5-minute window", &p, &c);
    let ps = Scan::new(&root, s.clone())
        .series(60_000, Some((key, 3)), Metric::Bytes)
        .unwrap();
    let cs = ch
        .series(&s, 60_000, Some((key, 3)), Metric::Bytes)
        .await
        .unwrap();
    assert_same_series("5-minute window series", &ps, &cs);
    assert_eq!(cs.points.len(), 6);
}

#[tokio::test]
async fn bad_query_arguments_are_errors_not_panics() {
    let Some(srv) = Server::start() else { return };
    let ch = clickhouse_archive(&srv, "hostile", &standard_flows()[..10], 100).await;
    let key: Key = "dstip".parse().unwrap();
    let backwards = Selection {
        filter: Expr::Any,
        from_ms: Some(T0 + 10),
        to_ms: Some(T0),
    };
    let e = ch.top(&backwards, key, Metric::Bytes, 5).await.unwrap_err();
    assert!(e.to_string().contains("swap from and to"), "{e}");
    let e = ch
        .series(&Selection::all(), 0, None, Metric::Bytes)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("interval"), "{e}");
    // Extreme values stay numbers in the SQL and give empty answers.
    let extreme = Selection {
        filter: parse("bytes > 18446744073709551615 or as 4294967295 or port 65535").unwrap(),
        from_ms: Some(u64::MAX - 1),
        to_ms: Some(u64::MAX),
    };
    let t = ch
        .top(&extreme, key, Metric::Bytes, usize::MAX)
        .await
        .unwrap();
    assert_eq!(t.total.flows, 0);
    let l = ch.list(&extreme, usize::MAX, Order::Bytes).await.unwrap();
    assert!(l.flows.is_empty());
}
