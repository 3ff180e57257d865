//! `top`, `series` and listings against ClickHouse, answering with the Parquet engine's types
//! ([`TopN`], [`Series`], [`Listing`]) and values.
//!
//! Contract: for flows stored in both engines, the same [`Selection`] gives the same rows,
//! totals, distinct counts, tie order (metric descending, then the key's stored 16-byte form,
//! IPv6 before IPv4) and zero-filled series. Differences, by design:
//! - [`ScanStats`] only carries `rows_matched` (ClickHouse does not report segments or row
//!   groups).
//! - The window's end also bounds the flow's *start* second (so the sorting key prunes): a flow
//!   whose end precedes its start (a broken exporter clock) is outside a window it would be
//!   inside on Parquet when it started after the window's end.
//! - Packet and byte sums wrap at 2^64 in ClickHouse; Parquet saturates.
//! - Listings break ties by `(batch id, row)`, Parquet by archive position.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use pharos_flows::filter::Family;
use pharos_flows::query::{
    Key, KeyField, KeySeries, KeyValue, Listing, MAX_BUCKETS, MAX_GROUPS, MAX_LIMIT, MAX_POINTS,
    Metric, Order, Point, QueryError, ScanStats, Selection, Series, TopN, TopRow, Totals,
};
use pharos_model::flow::{FlowBatch, flags};

use crate::client::Reader;
use crate::insert::{INSERT_COLUMNS, decode_row};
use crate::{Archive, Error, sql};

/// The `WHERE` condition of a selection.
pub fn selection_sql(sel: &Selection) -> Result<String, Error> {
    if let (Some(from), Some(to)) = (sel.from_ms, sel.to_ms)
        && to < from
    {
        return Err(QueryError::Window { from, to }.into());
    }
    let mut w = sql::compile(&sel.filter)?;
    if let Some(from) = sel.from_ms {
        let secs = (from / 1000).min(u64::from(u32::MAX));
        w = format!("{w} AND start_ms >= {from} AND time >= toDateTime({secs})");
    }
    if let Some(to) = sel.to_ms {
        let secs = (to / 1000).min(u64::from(u32::MAX));
        w = format!("{w} AND end_ms <= {to} AND time <= toDateTime({secs})");
    }
    Ok(w)
}

/// How a key reads the table: one or two (hi, lo, v4) value expressions, and which address
/// family a prefix key keeps.
struct KeySql {
    sides: Vec<[String; 3]>,
    want_v4: Option<bool>,
}

fn key_sql(key: &Key) -> KeySql {
    use KeyField::*;
    let num = |c: &str| {
        [
            String::from("toUInt64(0)"),
            format!("toUInt64({c})"),
            "toUInt8(0)".into(),
        ]
    };
    // Masks over the stored form: an IPv4 prefix keeps the 96 bits of `::ffff:0:0/96`, then
    // its own `len` bits.
    let (mask, want_v4) = match key.prefix {
        None => (!0u128, None),
        Some((Family::V4, len)) => (!0u128 << (32 - u32::from(len.min(32))), Some(true)),
        Some((Family::V6, len)) => (
            if len == 0 {
                0
            } else {
                !0u128 << (128 - u32::from(len.min(128)))
            },
            Some(false),
        ),
    };
    let addr = |c: &str, bit: u8| {
        let half = |from: u32, m: u64| {
            let v = format!("reinterpretAsUInt64(reverse(substring({c}, {from}, 8)))");
            if m == u64::MAX {
                v
            } else {
                format!("bitAnd({v}, {m})")
            }
        };
        [
            half(1, (mask >> 64) as u64),
            half(9, mask as u64),
            format!("bitAnd(flags, {bit}) != 0"),
        ]
    };
    let sides = match key.field {
        SrcAddr => vec![addr("src_addr", flags::SRC_V4)],
        DstAddr => vec![addr("dst_addr", flags::DST_V4)],
        Addr => vec![
            addr("src_addr", flags::SRC_V4),
            addr("dst_addr", flags::DST_V4),
        ],
        Exporter => vec![addr("exporter", flags::EXPORTER_V4)],
        SrcPort => vec![num("src_port")],
        DstPort => vec![num("dst_port")],
        Port => vec![num("src_port"), num("dst_port")],
        Proto => vec![num("proto")],
        Tos => vec![num("tos")],
        SrcAs => vec![num("src_as")],
        DstAs => vec![num("dst_as")],
        As => vec![num("src_as"), num("dst_as")],
        InIf => vec![num("in_if")],
        OutIf => vec![num("out_if")],
    };
    KeySql { sides, want_v4 }
}

/// The rows of `key` per selected flow: `khi, klo, kv4` plus `extra` columns, family-filtered.
fn keyed_rows(key: &Key, where_sql: &str, extra: &str) -> String {
    let ks = key_sql(key);
    let inner = if ks.sides.len() == 1 {
        let [hi, lo, v4] = &ks.sides[0];
        format!("SELECT {hi} AS khi, {lo} AS klo, {v4} AS kv4{extra} FROM flows WHERE {where_sql}")
    } else {
        let tuples: Vec<String> = ks
            .sides
            .iter()
            .map(|[hi, lo, v4]| format!("({hi}, {lo}, toUInt8({v4}))"))
            .collect();
        format!(
            "SELECT arrayJoin([{}]) AS kk, tupleElement(kk, 1) AS khi, tupleElement(kk, 2) AS klo, \
             tupleElement(kk, 3) AS kv4{extra} FROM flows WHERE {where_sql}",
            tuples.join(", ")
        )
    };
    match ks.want_v4 {
        Some(v4) => format!("SELECT * FROM ({inner}) WHERE kv4 = {}", u8::from(v4)),
        None => inner,
    }
}

fn metric_col(m: Metric) -> &'static str {
    match m {
        Metric::Flows => "f",
        Metric::Packets => "p",
        Metric::Bytes => "b",
    }
}

fn key_value(key: &Key, hi: u64, lo: u64, v4: bool) -> KeyValue {
    use KeyField::*;
    let v = u128::from(hi) << 64 | u128::from(lo);
    match key.field {
        SrcAddr | DstAddr | Addr | Exporter => {
            let addr = if v4 {
                IpAddr::V4(Ipv4Addr::from(v as u32))
            } else {
                IpAddr::V6(Ipv6Addr::from(v))
            };
            match key.prefix {
                Some((_, len)) => IpNet::new(addr, len).map_or(KeyValue::Addr(addr), KeyValue::Net),
                None => KeyValue::Addr(addr),
            }
        }
        _ => KeyValue::Num(lo as u32),
    }
}

/// Settings that make ClickHouse refuse what the Parquet engine refuses.
const GROUP_LIMITS: &[(&str, &str)] = &[
    ("max_rows_to_group_by", "20000000"),
    ("group_by_overflow_mode", "throw"),
];

fn too_big(e: Error, what: &str) -> Error {
    match &e {
        Error::Server { message, .. } if message.contains("Limit for rows to GROUP BY") => {
            QueryError::TooBig(format!("more than {MAX_GROUPS} distinct values of {what}")).into()
        }
        _ => e,
    }
}

/// Scan statistics saying only how many flows matched.
#[allow(clippy::field_reassign_with_default)] // ScanStats has a private field
fn matched(n: u64) -> ScanStats {
    let mut s = ScanStats::default();
    s.rows_matched = n;
    s
}

/// A key value as ClickHouse returns it: the high and low 64 bits of its 16-byte (or numeric)
/// form, and whether it is an IPv4 address.
type GroupKey = (u64, u64, bool);
type Group = (GroupKey, Totals);
/// One interval of one key value's series.
type Cell = (u64, GroupKey, Totals);

impl Archive {
    /// Flows, packets and bytes of every selected flow.
    pub async fn totals(&self, sel: &Selection) -> Result<Totals, Error> {
        let w = selection_sql(sel)?;
        let body = self
            .client
            .query(&format!(
                "SELECT count(), sum(packets), sum(bytes) FROM flows WHERE {w} FORMAT RowBinary"
            ))
            .await?;
        let mut r = Reader::new(&body, "totals");
        Ok(Totals {
            flows: r.u64()?,
            packets: r.u64()?,
            bytes: r.u64()?,
        })
    }

    async fn groups(&self, key: &Key, w: &str, by: Metric, n: usize) -> Result<Vec<Group>, Error> {
        let rows = keyed_rows(key, w, ", packets, bytes");
        let n = n.min(MAX_GROUPS);
        let body = self
            .client
            .query_with(
                &format!(
                    "SELECT khi, klo, kv4, count() AS f, sum(packets) AS p, sum(bytes) AS b \
                     FROM ({rows}) GROUP BY khi, klo, kv4 ORDER BY {} DESC, khi, klo, kv4 \
                     LIMIT {n} FORMAT RowBinary",
                    metric_col(by)
                ),
                GROUP_LIMITS,
            )
            .await
            .map_err(|e| too_big(e, &key.to_string()))?;
        let mut r = Reader::new(&body, "top rows");
        let mut out = Vec::new();
        while !r.is_empty() {
            let k = (r.u64()?, r.u64()?, r.u8()? != 0);
            let t = Totals {
                flows: r.u64()?,
                packets: r.u64()?,
                bytes: r.u64()?,
            };
            out.push((k, t));
        }
        Ok(out)
    }

    /// Top `n` values of `key` by `by` (ties by key, ascending), with the totals of every
    /// selected flow: [`pharos_flows::query::Scan::top`] against ClickHouse.
    pub async fn top(
        &self,
        sel: &Selection,
        key: Key,
        by: Metric,
        n: usize,
    ) -> Result<TopN, Error> {
        let w = selection_sql(sel)?;
        let total = self.totals(sel).await?;
        let rows = self.groups(&key, &w, by, n).await?;
        let body = self
            .client
            .query_with(
                &format!(
                    "SELECT uniqExact(khi, klo, kv4) FROM ({}) FORMAT RowBinary",
                    keyed_rows(&key, &w, "")
                ),
                GROUP_LIMITS,
            )
            .await
            .map_err(|e| too_big(e, &key.to_string()))?;
        let distinct = Reader::new(&body, "distinct keys").u64()?;
        let stats = matched(total.flows);
        Ok(TopN {
            key,
            by,
            rows: rows
                .into_iter()
                .map(|((hi, lo, v4), totals)| TopRow {
                    key: key_value(&key, hi, lo, v4),
                    totals,
                })
                .collect(),
            total,
            distinct,
            stats,
        })
    }

    /// Flows, packets and bytes per `interval_ms` of flow start time; with `key`, also per value
    /// of its `top` values over the whole selection: [`pharos_flows::query::Scan::series`]
    /// against ClickHouse.
    pub async fn series(
        &self,
        sel: &Selection,
        interval_ms: u64,
        key: Option<(Key, usize)>,
        by: Metric,
    ) -> Result<Series, Error> {
        let w = selection_sql(sel)?;
        if interval_ms == 0 {
            return Err(QueryError::Interval("0".into()).into());
        }
        let body = self
            .client
            .query(&format!(
                "SELECT intDiv(start_ms, {interval_ms}) * {interval_ms} AS t, count(), \
                 sum(packets), sum(bytes) FROM flows WHERE {w} GROUP BY t ORDER BY t \
                 LIMIT {} FORMAT RowBinary",
                MAX_BUCKETS + 1
            ))
            .await?;
        let buckets = read_buckets(&body, false)?;
        if buckets.len() as u64 > MAX_BUCKETS {
            return Err(QueryError::TooBig(format!(
                "more than {MAX_BUCKETS} intervals or {MAX_GROUPS} groups"
            ))
            .into());
        }
        let first = buckets.first().map(|b| b.0);
        let last = buckets.last().map(|b| b.0);
        let span = series_span(sel, interval_ms, first, last)?;
        let mut per = Vec::new();
        if let Some((k, n)) = &key {
            per = self.groups(k, &w, by, *n).await?;
        }
        let intervals = span.map_or(0, |(lo, hi)| ((hi - lo) / interval_ms).saturating_add(1));
        let points_total = intervals.saturating_mul(per.len() as u64 + 1);
        if points_total > MAX_POINTS {
            return Err(QueryError::TooBig(format!(
                "the series would have {intervals} intervals for each of {} series \
                 ({points_total} points, at most {MAX_POINTS}); ask fewer key values or a \
                 longer interval",
                per.len() + 1
            ))
            .into());
        }
        let totals_at: std::collections::HashMap<u64, Totals> =
            buckets.iter().map(|(t, _, tot)| (*t, *tot)).collect();
        let stats = matched(buckets.iter().map(|b| b.2.flows).sum());
        let mut out = Series {
            interval_ms,
            by,
            key: key.map(|(k, _)| k),
            points: fill(span, interval_ms, |t| totals_at.get(&t).copied()),
            keys: Vec::new(),
            stats,
        };
        if let Some((k, _)) = key
            && !per.is_empty()
        {
            let list: Vec<String> = per
                .iter()
                .map(|((hi, lo, v4), _)| format!("({hi}, {lo}, {})", u8::from(*v4)))
                .collect();
            let rows = keyed_rows(
                &k,
                &w,
                &format!(", intDiv(start_ms, {interval_ms}) * {interval_ms} AS t, packets, bytes"),
            );
            let body = self
                .client
                .query_with(
                    &format!(
                        "SELECT t, khi, klo, kv4, count(), sum(packets), sum(bytes) FROM ({rows}) \
                         WHERE (khi, klo, kv4) IN ({}) GROUP BY t, khi, klo, kv4 \
                         FORMAT RowBinary",
                        list.join(", ")
                    ),
                    GROUP_LIMITS,
                )
                .await
                .map_err(|e| too_big(e, &k.to_string()))?;
            let cells = read_buckets(&body, true)?;
            let mut at: std::collections::HashMap<(u64, GroupKey), Totals> =
                std::collections::HashMap::new();
            for (t, gk, tot) in cells {
                at.insert((t, gk), tot);
            }
            for (gk, totals) in per {
                out.keys.push(KeySeries {
                    key: key_value(&k, gk.0, gk.1, gk.2),
                    totals,
                    points: fill(span, interval_ms, |t| at.get(&(t, gk)).copied()),
                });
            }
        }
        Ok(out)
    }

    /// Up to `limit` selected flows in `order` (earliest start first, or most packets or bytes
    /// first; ties by start, then batch id and row): [`pharos_flows::query::Scan::list`]
    /// against ClickHouse.
    pub async fn list(
        &self,
        sel: &Selection,
        limit: usize,
        order: Order,
    ) -> Result<Listing, Error> {
        let w = selection_sql(sel)?;
        let limit = limit.min(MAX_LIMIT);
        let order_by = match order {
            Order::Time => "start_ms, batch_id, row",
            Order::Packets => "packets DESC, start_ms, batch_id, row",
            Order::Bytes => "bytes DESC, start_ms, batch_id, row",
        };
        let body = self
            .client
            .query(&format!(
                "SELECT {INSERT_COLUMNS} FROM flows WHERE {w} ORDER BY {order_by} LIMIT {limit} \
                 FORMAT RowBinary"
            ))
            .await?;
        let mut r = Reader::new(&body, "listing");
        let mut b = FlowBatch::new();
        while !r.is_empty() {
            decode_row(&mut r, &mut b)?;
        }
        let stats = matched(b.len() as u64);
        Ok(Listing {
            flows: b.iter().collect(),
            stats,
        })
    }
}

/// `(t, key, totals)` rows of a series answer (`keyed`: with `khi, klo, kv4` after `t`).
fn read_buckets(body: &[u8], keyed: bool) -> Result<Vec<Cell>, Error> {
    let mut r = Reader::new(body, "series");
    let mut out = Vec::new();
    while !r.is_empty() {
        let t = r.u64()?;
        let k = if keyed {
            (r.u64()?, r.u64()?, r.u8()? != 0)
        } else {
            (0, 0, false)
        };
        let tot = Totals {
            flows: r.u64()?,
            packets: r.u64()?,
            bytes: r.u64()?,
        };
        out.push((t, k, tot));
    }
    Ok(out)
}

/// Every interval start from `lo` to `hi` with the totals `at` gives, zero where it gives none
/// (as the Parquet engine fills its series).
fn fill(
    span: Option<(u64, u64)>,
    interval_ms: u64,
    at: impl Fn(u64) -> Option<Totals>,
) -> Vec<Point> {
    let Some((lo, hi)) = span else {
        return Vec::new();
    };
    let mut points = Vec::new();
    let mut t = lo;
    loop {
        points.push(Point {
            t_ms: t,
            totals: at(t).unwrap_or_default(),
        });
        match t.checked_add(interval_ms) {
            Some(n) if n <= hi => t = n,
            _ => break,
        }
    }
    points
}

/// The first and last interval of a series: those of the flows found, widened to the window
/// when one was given and the result stays within [`MAX_BUCKETS`] (as the Parquet engine).
fn series_span(
    sel: &Selection,
    interval_ms: u64,
    first: Option<u64>,
    last: Option<u64>,
) -> Result<Option<(u64, u64)>, QueryError> {
    let align = |t: u64| t - t % interval_ms;
    let count = |lo: u64, hi: u64| ((hi - lo) / interval_ms).saturating_add(1);
    let from = sel.from_ms.map(align);
    let to = sel.to_ms.map(align);
    let data = first.zip(last);
    let wide = match data {
        Some((f, l)) => Some((from.map_or(f, |w| w.min(f)), to.map_or(l, |w| w.max(l)))),
        None => from.zip(to),
    };
    if let Some((lo, hi)) = wide
        && count(lo, hi) <= MAX_BUCKETS
    {
        return Ok(Some((lo, hi)));
    }
    match data {
        Some((lo, hi)) if count(lo, hi) > MAX_BUCKETS => Err(QueryError::TooBig(format!(
            "the flows found span {} intervals of {interval_ms} ms, more than {MAX_BUCKETS}; \
             use a longer interval",
            count(lo, hi)
        ))),
        d => Ok(d),
    }
}
