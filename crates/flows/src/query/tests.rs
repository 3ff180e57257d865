use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use proptest::prelude::*;

use super::eval::stored;
use super::*;
use crate::filter::tests::{arb_expr, arb_flow};
use crate::filter::{self, Family, parse};
use crate::segment::{SegmentConfig, SegmentWriter};
use ipnet::IpNet;
use pharos_model::flow::FlowBatch;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Writes `flows` into an archive under `dir`, `per_segment` flows a segment, row groups of
/// `rg` rows; returns the archive root.
fn archive(dir: &Path, flows: &[FlowRecord], per_segment: usize, rg: usize) -> PathBuf {
    let root = dir.join("flows");
    let mut cfg = SegmentConfig::new(&root);
    cfg.row_group_rows = rg;
    let mut w = SegmentWriter::open(cfg).unwrap();
    let mut now = 1_700_000_000_000;
    for chunk in flows.chunks(per_segment.max(1)) {
        let mut b = FlowBatch::new();
        for f in chunk {
            b.push(f);
        }
        w.push(&b, now);
        now += 1_000;
        w.flush(now).unwrap();
        now += 1;
    }
    root
}

/// The naive answer of a top-N: every flow through [`Selection::matches`], grouped row by row.
fn naive_top(flows: &[FlowRecord], sel: &Selection, key: Key, by: Metric, n: usize) -> TopN {
    let mut map: HashMap<KeyValue, Totals> = HashMap::new();
    let mut total = Totals::default();
    for f in flows.iter().filter(|f| sel.matches(f)) {
        total.add(f.packets, f.bytes);
        for v in naive_keys(&key, f) {
            map.entry(v).or_default().add(f.packets, f.bytes);
        }
    }
    let mut rows: Vec<(KeyValue, Totals)> = map.into_iter().collect();
    rows.sort_by(|a, b| {
        b.1.get(by)
            .cmp(&a.1.get(by))
            .then_with(|| naive_order(&a.0).cmp(&naive_order(&b.0)))
    });
    let distinct = rows.len() as u64;
    rows.truncate(n);
    TopN {
        key,
        by,
        rows: rows
            .into_iter()
            .map(|(key, totals)| TopRow { key, totals })
            .collect(),
        total,
        distinct,
        stats: ScanStats::default(),
    }
}

/// The engine's tie order of key values: stored form, then IPv6 before IPv4.
fn naive_order(v: &KeyValue) -> (u128, bool) {
    match v {
        KeyValue::Addr(a) => stored(a),
        KeyValue::Net(n) => stored(&n.network()),
        KeyValue::Num(n) => (u128::from(*n), false),
    }
}

fn naive_keys(key: &Key, f: &FlowRecord) -> Vec<KeyValue> {
    use KeyField::*;
    let addr = |a: IpAddr| -> Option<KeyValue> {
        match key.prefix {
            None => Some(KeyValue::Addr(a)),
            Some((fam, len)) => {
                if (fam == Family::V4) != a.is_ipv4() {
                    return None;
                }
                Some(KeyValue::Net(IpNet::new(a, len).unwrap().trunc()))
            }
        }
    };
    let num = |n: u32| vec![KeyValue::Num(n)];
    match key.field {
        SrcAddr => addr(f.src_addr).into_iter().collect(),
        DstAddr => addr(f.dst_addr).into_iter().collect(),
        Addr => addr(f.src_addr)
            .into_iter()
            .chain(addr(f.dst_addr))
            .collect(),
        Exporter => addr(f.exporter).into_iter().collect(),
        SrcPort => num(f.src_port.into()),
        DstPort => num(f.dst_port.into()),
        Port => vec![
            KeyValue::Num(f.src_port.into()),
            KeyValue::Num(f.dst_port.into()),
        ],
        Proto => num(f.proto.into()),
        Tos => num(f.tos.into()),
        SrcAs => num(f.src_as),
        DstAs => num(f.dst_as),
        As => vec![KeyValue::Num(f.src_as), KeyValue::Num(f.dst_as)],
        InIf => num(f.in_if),
        OutIf => num(f.out_if),
    }
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

fn arb_key() -> impl Strategy<Value = Key> {
    prop::sample::select(KEYS).prop_map(|k| k.parse().unwrap())
}

fn arb_metric() -> impl Strategy<Value = Metric> {
    prop_oneof![
        Just(Metric::Flows),
        Just(Metric::Packets),
        Just(Metric::Bytes)
    ]
}

/// Flows with times spread over a few minutes, some at the edges of the windows drawn below.
fn arb_timed_flows() -> impl Strategy<Value = Vec<FlowRecord>> {
    prop::collection::vec(
        (
            arb_flow(),
            0u64..600_000,
            prop_oneof![Just(0u64), 0u64..120_000],
            prop::sample::select(vec![ip("192.0.2.10"), ip("2001:db8::a"), ip("10.1.1.1")]),
        )
            .prop_map(|(mut f, start, dur, exporter)| {
                f.start_ms = 1_700_000_000_000 + start;
                f.end_ms = f.start_ms + dur;
                f.exporter = exporter;
                f
            }),
        0..200,
    )
}

fn arb_window() -> impl Strategy<Value = (Option<u64>, Option<u64>)> {
    let t = prop_oneof![
        (0u64..700_000).prop_map(|d| 1_700_000_000_000 + d),
        Just(1_700_000_000_000),
        Just(0),
        Just(u64::MAX),
    ];
    (prop::option::of(t.clone()), prop::option::of(t)).prop_map(|(a, b)| match (a, b) {
        (Some(a), Some(b)) if b < a => (Some(b), Some(a)),
        w => w,
    })
}

/// The first and last interval of a zero-filled series, as the contract of `Series::points`
/// says; `Err` when even the flows alone span more than `MAX_BUCKETS` intervals.
fn naive_span(
    buckets: &HashMap<u64, Totals>,
    interval: u64,
    from: Option<u64>,
    to: Option<u64>,
) -> Result<Option<(u64, u64)>, ()> {
    let count = |lo: u64, hi: u64| ((hi - lo) / interval).saturating_add(1);
    let from = from.map(|t| t - t % interval);
    let to = to.map(|t| t - t % interval);
    let data = buckets
        .keys()
        .min()
        .copied()
        .zip(buckets.keys().max().copied());
    let wide = match data {
        Some((f, l)) => Some((from.map_or(f, |w| w.min(f)), to.map_or(l, |w| w.max(l)))),
        None => from.zip(to),
    };
    match (wide, data) {
        (Some((lo, hi)), _) if count(lo, hi) <= MAX_BUCKETS => Ok(Some((lo, hi))),
        (_, Some((lo, hi))) if count(lo, hi) > MAX_BUCKETS => Err(()),
        (_, d) => Ok(d),
    }
}

fn strip(mut t: TopN) -> TopN {
    t.stats = ScanStats::default();
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Top-N, series and listing equal the row-by-row answer, for any filter, window, key,
    /// thread count and layout (segments and row groups small enough to cut anywhere).
    #[test]
    fn engine_equals_naive_evaluation(
        flows in arb_timed_flows(),
        expr in arb_expr(),
        (from_ms, to_ms) in arb_window(),
        key in arb_key(),
        by in arb_metric(),
        n in 0usize..8,
        per_segment in 1usize..80,
        rg in 1usize..40,
        threads in 1usize..4,
        interval in prop::sample::select(vec![1u64, 1_000, 60_000, 3_600_000]),
        order in prop_oneof![Just(Order::Time), Just(Order::Bytes), Just(Order::Packets)],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let root = archive(dir.path(), &flows, per_segment, rg);
        let selection = Selection { filter: expr, from_ms, to_ms };
        let mut scan = Scan::new(&root, selection.clone());
        scan.threads = threads;

        let got = scan.top(key, by, n).unwrap();
        prop_assert!(got.stats.errors.is_empty(), "{:?}", got.stats.errors);
        let want = naive_top(&flows, &selection, key, by, n);
        prop_assert_eq!(got.distinct, want.distinct);
        prop_assert_eq!(strip(got), strip(want));

        // Series: per interval of start time, zero-filled from the first to the last flow's
        // interval, widened to the window when that stays within MAX_BUCKETS.
        let mut buckets: HashMap<u64, Totals> = HashMap::new();
        for f in flows.iter().filter(|f| selection.matches(f)) {
            buckets.entry(f.start_ms - f.start_ms % interval).or_default().add(f.packets, f.bytes);
        }
        let span = naive_span(&buckets, interval, from_ms, to_ms);
        let s = match span {
            Err(()) => {
                let e = scan.series(interval, Some((key, n)), by);
                prop_assert!(matches!(e, Err(QueryError::TooBig(_))), "{:?}", e.map(|s| s.points.len()));
                return Ok(());
            }
            Ok(_) => scan.series(interval, Some((key, n)), by).unwrap(),
        };
        let want: Vec<Point> = match span {
            Ok(Some((lo, hi))) => (0..=(hi - lo) / interval)
                .map(|i| lo + i * interval)
                .map(|t_ms| Point { t_ms, totals: buckets.get(&t_ms).copied().unwrap_or_default() })
                .collect(),
            _ => Vec::new(),
        };
        prop_assert_eq!(&s.points, &want);
        let top = naive_top(&flows, &selection, key, by, n);
        prop_assert_eq!(s.keys.len(), top.rows.len());
        for (ks, row) in s.keys.iter().zip(&top.rows) {
            prop_assert_eq!(ks.key, row.key);
            prop_assert_eq!(ks.totals, row.totals);
            let sum = ks.points.iter().fold(Totals::default(), |mut a, p| { a.merge(&p.totals); a });
            prop_assert_eq!(sum, row.totals);
            let times: Vec<u64> = ks.points.iter().map(|p| p.t_ms).collect();
            let all: Vec<u64> = s.points.iter().map(|p| p.t_ms).collect();
            prop_assert_eq!(times, all, "every key value's series has the same intervals");
        }

        // Listing: order, then archive order.
        let limit = n * 3;
        let got = scan.list(limit, order).unwrap();
        let mut want: Vec<(usize, &FlowRecord)> =
            flows.iter().enumerate().filter(|(_, f)| selection.matches(f)).collect();
        want.sort_by_key(|(i, f)| match order {
            Order::Time => (f.start_ms.min(i64::MAX as u64) as i64, 0i64, *i),
            Order::Bytes => (-(f.bytes.min(i64::MAX as u64) as i64), f.start_ms as i64, *i),
            Order::Packets => (-(f.packets.min(i64::MAX as u64) as i64), f.start_ms as i64, *i),
        });
        want.truncate(limit);
        let want: Vec<FlowRecord> = want.into_iter().map(|(_, f)| *f).collect();
        prop_assert_eq!(got.flows, want);

        // Export: every selected flow, archive order.
        let mut all = Vec::new();
        scan.for_each(|b| { all.extend((0..b.len()).map(|i| b.get(i))); Ok(()) }).unwrap();
        let want: Vec<FlowRecord> = flows.iter().filter(|f| selection.matches(f)).copied().collect();
        prop_assert_eq!(all, want);
    }
}

fn flow(src: &str, dst: &str, proto: u8, sport: u16, dport: u16, bytes: u64) -> FlowRecord {
    FlowRecord {
        src_addr: ip(src),
        dst_addr: ip(dst),
        proto,
        src_port: sport,
        dst_port: dport,
        packets: 1 + bytes / 1000,
        bytes,
        start_ms: 1_700_000_000_000,
        end_ms: 1_700_000_000_500,
        ..FlowRecord::default()
    }
}

#[test]
fn top_destinations_by_bytes_with_a_filter_and_a_prefix_key() {
    let dir = tempfile::tempdir().unwrap();
    let flows = vec![
        flow("10.0.0.1", "198.51.100.10", 17, 53, 4000, 5000),
        flow("10.0.0.2", "198.51.100.10", 17, 123, 4001, 7000),
        flow("10.0.0.3", "198.51.100.20", 17, 53, 4002, 1000),
        flow("10.0.1.3", "198.51.100.20", 6, 443, 4003, 90000),
        flow("2001:db8::1", "2001:db8:1::2", 17, 53, 53, 300),
    ];
    let root = archive(dir.path(), &flows, 2, 2);
    let sel = Selection {
        filter: parse("proto udp").unwrap(),
        from_ms: None,
        to_ms: None,
    };
    let t = Scan::new(&root, sel.clone())
        .top("dstip".parse().unwrap(), Metric::Bytes, 2)
        .unwrap();
    let rows: Vec<(String, u64)> = t
        .rows
        .iter()
        .map(|r| (r.key.to_string(), r.totals.bytes))
        .collect();
    assert_eq!(
        rows,
        [
            ("198.51.100.10".to_string(), 12000),
            ("198.51.100.20".to_string(), 1000)
        ]
    );
    assert_eq!(t.total.flows, 4);
    assert_eq!(t.distinct, 3);
    assert_eq!(t.stats.rows_scanned, 5);
    assert_eq!(t.stats.rows_matched, 4);

    // A cancelled scan reads nothing more and says its answer is partial.
    let mut cancelled = Scan::new(&root, Selection::all());
    let p = std::sync::Arc::new(super::Progress::default());
    p.cancel.store(true, std::sync::atomic::Ordering::Relaxed);
    cancelled.progress = Some(p);
    let c = cancelled
        .top("srcip4/24".parse().unwrap(), Metric::Flows, 5)
        .unwrap();
    assert_eq!(c.stats.rows_scanned, 0);
    assert!(
        c.stats.errors.iter().any(|e| e.contains("cancelled")),
        "{:?}",
        c.stats.errors
    );

    let t = Scan::new(&root, Selection::all())
        .top("srcip4/24".parse().unwrap(), Metric::Flows, 5)
        .unwrap();
    let rows: Vec<(String, u64)> = t
        .rows
        .iter()
        .map(|r| (r.key.to_string(), r.totals.flows))
        .collect();
    assert_eq!(
        rows,
        [
            ("10.0.0.0/24".to_string(), 3),
            ("10.0.1.0/24".to_string(), 1)
        ]
    );
}

#[test]
fn a_window_prunes_segments_and_row_groups() {
    let dir = tempfile::tempdir().unwrap();
    let flows: Vec<FlowRecord> = (0..100u64)
        .map(|i| {
            let mut f = flow("10.0.0.1", "10.0.0.2", 6, 1000, 80, 100);
            f.start_ms = 1_700_000_000_000 + i * 60_000;
            f.end_ms = f.start_ms + 1000;
            f
        })
        .collect();
    let root = archive(dir.path(), &flows, 10, 5);
    let sel = Selection {
        filter: Expr::Any,
        from_ms: Some(1_700_000_000_000 + 20 * 60_000),
        to_ms: Some(1_700_000_000_000 + 25 * 60_000),
    };
    let t = Scan::new(&root, sel)
        .top("dstport".parse().unwrap(), Metric::Flows, 3)
        .unwrap();
    assert_eq!(
        t.total.flows, 5,
        "flows 20..24 end by minute 25 + 1 s: 24 is in, 25 is not"
    );
    assert_eq!(t.stats.segments, 10);
    assert_eq!(t.stats.segments_pruned, 9);
    assert_eq!(t.stats.row_groups, 1, "{:?}", t.stats);
    assert_eq!(t.stats.rows_scanned, 5);
}

#[test]
fn an_unreadable_segment_is_named_and_the_rest_answers() {
    let dir = tempfile::tempdir().unwrap();
    let flows = vec![flow("10.0.0.1", "10.0.0.2", 6, 1, 2, 10); 3];
    let root = archive(dir.path(), &flows, 3, 10);
    let bad = root.join("2023/11/14/22/1-2.parquet");
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    std::fs::write(&bad, b"PAR1 not really").unwrap();
    let t = Scan::new(&root, Selection::all())
        .top("proto".parse().unwrap(), Metric::Flows, 3)
        .unwrap();
    assert_eq!(t.total.flows, 3);
    assert_eq!(t.stats.errors.len(), 1);
    assert!(
        t.stats.errors[0].contains("1-2.parquet"),
        "{:?}",
        t.stats.errors
    );
    // A window that starts more than the clock-skew allowance after the bad segment was written
    // does not even open it.
    let sel = Selection {
        filter: Expr::Any,
        from_ms: Some(2 + MAX_CLOCK_SKEW_MS + 1),
        to_ms: None,
    };
    let t = Scan::new(&root, sel)
        .top("proto".parse().unwrap(), Metric::Flows, 3)
        .unwrap();
    assert!(t.stats.errors.is_empty(), "{:?}", t.stats.errors);
    assert_eq!(t.stats.segments_pruned, 1);
}

#[test]
fn an_empty_or_missing_archive_answers_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = Scan::new(dir.path().join("nope"), Selection::all())
        .top("dstip".parse().unwrap(), Metric::Bytes, 10)
        .unwrap();
    assert!(t.rows.is_empty());
    assert_eq!(t.total, Totals::default());
}

#[test]
fn reversed_window_and_zero_interval_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let sel = Selection {
        filter: Expr::Any,
        from_ms: Some(10),
        to_ms: Some(5),
    };
    let e = Scan::new(dir.path(), sel).top("dstip".parse().unwrap(), Metric::Bytes, 1);
    assert!(matches!(e, Err(QueryError::Window { from: 10, to: 5 })));
    let e = Scan::new(dir.path(), Selection::all()).series(0, None, Metric::Bytes);
    assert!(matches!(e, Err(QueryError::Interval(_))));
}

#[test]
fn keys_parse_and_print() {
    for k in KEYS {
        assert_eq!(k.parse::<Key>().unwrap().to_string(), *k);
    }
    assert_eq!("DstIP4".parse::<Key>().unwrap().to_string(), "dstip4/32");
    for bad in [
        "srcip4/33",
        "dstip6/129",
        "srcport/8",
        "srcip5",
        "nope",
        "ip/24",
        "",
    ] {
        let e = bad.parse::<Key>().unwrap_err().to_string();
        assert!(e.contains("srcip4/24"), "{bad}: {e}");
    }
    assert_eq!("Bytes".parse::<Metric>().unwrap(), Metric::Bytes);
    assert!("volume".parse::<Metric>().is_err());
}

#[test]
fn engine_and_reference_agree_on_v4_mapped_v6_addresses() {
    // A genuine IPv6 address inside ::ffff:0:0/96 is not the IPv4 address it looks like.
    let dir = tempfile::tempdir().unwrap();
    let flows = vec![
        flow("10.0.0.1", "10.0.0.2", 6, 1, 2, 10),
        flow("::ffff:10.0.0.1", "10.0.0.2", 6, 1, 2, 20),
    ];
    let root = archive(dir.path(), &flows, 10, 10);
    for (f, want) in [
        ("src host 10.0.0.1", 10),
        ("src host ::ffff:10.0.0.1", 20),
        ("src net 10.0.0.0/8", 10),
        ("src net ::ffff:0:0/96", 20),
        ("ipv4", 10),
        ("ipv6", 0),
    ] {
        let sel = Selection {
            filter: parse(f).unwrap(),
            from_ms: None,
            to_ms: None,
        };
        let t = Scan::new(&root, sel.clone())
            .top("srcip".parse().unwrap(), Metric::Bytes, 5)
            .unwrap();
        assert_eq!(t.total.bytes, want, "{f}");
        let naive: u64 = flows
            .iter()
            .filter(|x| sel.matches(x))
            .map(|x| x.bytes)
            .sum();
        assert_eq!(naive, want, "{f}");
        let _ = filter::matches;
    }
}

#[test]
fn series_fills_quiet_intervals_with_zeros_and_spans_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_699_999_980_000u64; // a whole minute
    let mut a = flow("10.0.0.1", "198.51.100.10", 17, 53, 4000, 5000);
    let mut b = flow("10.0.0.2", "198.51.100.20", 6, 443, 4001, 7000);
    (a.start_ms, a.end_ms) = (t0, t0 + 10);
    (b.start_ms, b.end_ms) = (t0 + 180_000, t0 + 180_010);
    let root = archive(dir.path(), &[a, b], 10, 10);
    let times = |s: &Series| s.points.iter().map(|p| p.t_ms - t0).collect::<Vec<_>>();
    let key = Some(("dstip".parse().unwrap(), 5));

    let s = Scan::new(&root, Selection::all())
        .series(60_000, key, Metric::Bytes)
        .unwrap();
    assert_eq!(times(&s), [0, 60_000, 120_000, 180_000]);
    let bytes: Vec<u64> = s.points.iter().map(|p| p.totals.bytes).collect();
    assert_eq!(bytes, [5000, 0, 0, 7000]);
    for k in &s.keys {
        assert_eq!(k.points.len(), 4, "{}", k.key);
    }
    assert_eq!(s.keys[0].points[3].totals.bytes, 7000);
    assert_eq!(s.keys[0].points[0].totals, Totals::default());

    // A window wider than the flows: the series covers the window.
    let sel = Selection {
        filter: Expr::Any,
        from_ms: Some(t0 - 60_000),
        to_ms: Some(t0 + 300_000),
    };
    let s = Scan::new(&root, sel)
        .series(60_000, None, Metric::Bytes)
        .unwrap();
    assert_eq!(s.points.first().map(|p| p.t_ms), Some(t0 - 60_000));
    assert_eq!(s.points.last().map(|p| p.t_ms), Some(t0 + 300_000));
    assert_eq!(s.points.len(), 7);

    // Flows too far apart for the interval: refused, naming what to change.
    let e = Scan::new(&root, Selection::all())
        .series(1, None, Metric::Bytes)
        .unwrap_err();
    assert!(e.to_string().contains("180001 intervals"), "{e}");
}
