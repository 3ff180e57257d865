//! The scan itself (row groups read in parallel, restarted when segments vanish) and the queries
//! built on it: top-N, series, listing and export.
use std::collections::BinaryHeap;
use std::fs::File;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow_array::RecordBatch;
use arrow_buffer::BooleanBuffer;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use pharos_model::flow::{FlowBatch, FlowRecord};

use super::eval::{Cols, eval, need};
use super::groups::{GroupKey, Groups, SeriesAcc, key_value, top_of};
use super::key::{Key, Metric, Totals};
use super::plan::{Unit, filter_columns, key_columns};
use super::result::{KeySeries, Listing, Series, TopN, TopRow, fill};
use super::*;
use crate::schema::{col, from_record_batch};

/// One decoded batch handed to an aggregation.
pub(super) struct Batch<'a> {
    rb: &'a RecordBatch,
    cols: &'a Cols<'a>,
    /// Archive position of the first row (unit index << 32 | row offset): orders ties.
    pos: u64,
}

impl Scan {
    /// Runs `consume` on every batch of selected rows, one accumulator per worker thread.
    /// `consume` gets the columns and the selection mask of a batch.
    /// A segment that vanishes during a scan (merged into a minute file, or expired) restarts
    /// it, up to [`MAX_RESTARTS`] times, so that no flow is missed or counted twice.
    fn run<S: Send>(
        &self,
        extra_columns: &[&'static str],
        init: impl Fn() -> S + Sync,
        consume: impl Fn(&mut S, &Batch, &BooleanBuffer) -> Result<(), String> + Sync,
    ) -> (Vec<S>, ScanStats) {
        let mut restarts = 0;
        loop {
            let (accs, mut stats) = self.run_once(extra_columns, &init, &consume);
            if self.cancelled() {
                stats.errors.push(
                    "the scan was cancelled before it finished: the answer is partial".into(),
                );
                return (accs, stats);
            }
            if stats.vanished == 0 || restarts == MAX_RESTARTS {
                if stats.vanished > 0 {
                    stats.errors.push(format!(
                        "{} segments vanished during the scan {} times in a row (merges or retention); the answer may miss their flows: run the query again",
                        stats.vanished,
                        restarts + 1
                    ));
                }
                stats.restarts = restarts;
                return (accs, stats);
            }
            restarts += 1;
            if let Some(p) = &self.progress {
                p.done.store(0, Ordering::Relaxed);
            }
        }
    }

    /// Whether the scan's [`super::Progress::cancel`] was set.
    fn cancelled(&self) -> bool {
        self.progress
            .as_ref()
            .is_some_and(|p| p.cancel.load(Ordering::Relaxed))
    }

    fn run_once<S: Send>(
        &self,
        extra_columns: &[&'static str],
        init: &(impl Fn() -> S + Sync),
        consume: &(impl Fn(&mut S, &Batch, &BooleanBuffer) -> Result<(), String> + Sync),
    ) -> (Vec<S>, ScanStats) {
        let mut stats = ScanStats::default();
        let units = self.plan(&mut stats);
        if let Some(p) = &self.progress {
            p.total.store(units.len() as u64, Ordering::Relaxed);
        }
        let mut names = Vec::new();
        filter_columns(&self.selection.filter, &mut names);
        names.extend_from_slice(extra_columns);
        if self.selection.from_ms.is_some() {
            names.push(col::START_TIME);
        }
        if self.selection.to_ms.is_some() {
            names.push(col::END_TIME);
        }
        names.sort_unstable();
        names.dedup();
        let next = AtomicUsize::new(0);
        let threads = self.threads.clamp(1, units.len().max(1));
        let results: Vec<(S, ScanStats)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut acc = init();
                        let mut st = ScanStats::default();
                        loop {
                            if self.cancelled() {
                                break;
                            }
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(u) = units.get(i) else { break };
                            let r = self.read_unit(i, u, &names, &mut acc, consume, &mut st);
                            if let Err(e) = r {
                                st.errors.push(format!("{}: {e}", u.path.display()));
                            }
                            st.row_groups += 1;
                            if let Some(p) = &self.progress {
                                p.done.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        (acc, st)
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let mut accs = Vec::with_capacity(results.len());
        for (a, st) in results {
            stats.merge(st);
            accs.push(a);
        }
        stats.errors.sort();
        stats.errors.dedup();
        (accs, stats)
    }

    fn read_unit<S>(
        &self,
        index: usize,
        u: &Unit,
        names: &[&'static str],
        acc: &mut S,
        consume: &impl Fn(&mut S, &Batch, &BooleanBuffer) -> Result<(), String>,
        st: &mut ScanStats,
    ) -> Result<(), String> {
        let file = match File::open(u.path.as_ref()) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                st.vanished += 1;
                return Ok(());
            }
            Err(e) => return Err(e.to_string()),
        };
        let schema = u.meta.schema().clone();
        let mut idx = Vec::with_capacity(names.len().max(1));
        for n in names {
            idx.push(schema.index_of(n).map_err(|e| e.to_string())?);
        }
        if idx.is_empty() {
            // Counting flows needs no column; read the smallest one to get row counts.
            idx.push(schema.index_of(col::PROTO).map_err(|e| e.to_string())?);
        }
        let mask = ProjectionMask::roots(u.meta.parquet_schema(), idx);
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, u.meta.clone())
            .with_projection(mask)
            .with_row_groups(vec![u.row_group])
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| e.to_string())?;
        let (from, to) = (self.selection.from_ms, self.selection.to_ms);
        let mut pos = (index as u64) << 32;
        for rb in reader {
            let rb = rb.map_err(|e| e.to_string())?;
            let c = Cols::new(&rb);
            let mut sel = eval(&self.selection.filter, &c)?;
            if let Some(f) = from {
                let f = f.min(i64::MAX as u64) as i64;
                let s = need(c.start, col::START_TIME)?;
                sel = &sel & &BooleanBuffer::collect_bool(c.n, |i| s[i] >= f);
            }
            if let Some(t) = to {
                let t = t.min(i64::MAX as u64) as i64;
                let e = need(c.end, col::END_TIME)?;
                sel = &sel & &BooleanBuffer::collect_bool(c.n, |i| e[i] <= t);
            }
            st.rows_scanned += c.n as u64;
            st.rows_matched += sel.count_set_bits() as u64;
            if let Some(p) = &self.progress {
                p.rows.fetch_add(c.n as u64, Ordering::Relaxed);
            }
            consume(
                acc,
                &Batch {
                    rb: &rb,
                    cols: &c,
                    pos,
                },
                &sel,
            )?;
            pos += c.n as u64;
        }
        Ok(())
    }

    /// Top `n` values of `key` by `by` (ties broken by key, ascending), with the totals of every
    /// selected flow.
    pub fn top(&self, key: Key, by: Metric, n: usize) -> Result<TopN, QueryError> {
        self.selection.check()?;
        let mut cols = key_columns(&key);
        cols.extend([col::PACKETS, col::BYTES]);
        let (accs, stats) = self.run(&cols, Groups::default, |g, b, sel| g.add(&key, b.cols, sel));
        let mut total = Totals::default();
        for g in &accs {
            total.merge(&g.total);
        }
        let (rows, distinct) = top_of(accs, by, n, self.threads).map_err(|()| {
            QueryError::TooBig(format!("more than {MAX_GROUPS} distinct values of {key}"))
        })?;
        Ok(TopN {
            key,
            by,
            rows: rows
                .into_iter()
                .map(|(k, t)| TopRow {
                    key: key_value(&key, k),
                    totals: t,
                })
                .collect(),
            total,
            distinct,
            stats,
        })
    }

    /// Flows, packets and bytes per `interval_ms` of flow start time; with `key`, also per value
    /// of the `top` values of the key over the whole selection.
    pub fn series(
        &self,
        interval_ms: u64,
        key: Option<(Key, usize)>,
        by: Metric,
    ) -> Result<Series, QueryError> {
        self.selection.check()?;
        if interval_ms == 0 {
            return Err(QueryError::Interval("0".into()));
        }
        let mut cols = vec![col::START_TIME, col::PACKETS, col::BYTES];
        if let Some((k, _)) = &key {
            cols.extend(key_columns(k));
        }
        let kref = key.map(|(k, _)| k);
        let (accs, stats) = self.run(&cols, SeriesAcc::default, |s, b, sel| {
            s.add(interval_ms, kref.as_ref(), b.cols, sel)
        });
        let mut all = SeriesAcc::default();
        for a in accs {
            all.merge(a);
        }
        if all.buckets.len() as u64 > MAX_BUCKETS || all.overflow {
            return Err(QueryError::TooBig(format!(
                "more than {MAX_BUCKETS} intervals or {MAX_GROUPS} groups"
            )));
        }
        let first = all.buckets.keys().min().copied();
        let last = all.buckets.keys().max().copied();
        let span = self.series_span(interval_ms, first, last)?;
        let mut per: Vec<(GroupKey, Totals)> = Vec::new();
        if let Some((_, n)) = key {
            per = all.key_totals.into_iter().collect();
            per.sort_unstable_by(|a, b| b.1.get(by).cmp(&a.1.get(by)).then(a.0.cmp(&b.0)));
            per.truncate(n);
        }
        let intervals = span.map_or(0, |(lo, hi)| ((hi - lo) / interval_ms).saturating_add(1));
        let points_total = intervals.saturating_mul(per.len() as u64 + 1);
        if points_total > MAX_POINTS {
            return Err(QueryError::TooBig(format!(
                "the series would have {intervals} intervals for each of {} series \
                 ({points_total} points, at most {MAX_POINTS}); ask fewer key values or a \
                 longer interval",
                per.len() + 1
            )));
        }
        let mut out = Series {
            interval_ms,
            by,
            key: kref,
            points: fill(span, interval_ms, |t| all.buckets.get(&t).copied()),
            keys: Vec::new(),
            stats,
        };
        if let Some((k, _)) = key {
            for (gk, totals) in per {
                out.keys.push(KeySeries {
                    key: key_value(&k, gk),
                    totals,
                    points: fill(span, interval_ms, |t| all.per_key.get(&(t, gk)).copied()),
                });
            }
        }
        Ok(out)
    }

    /// The first and last interval start of a series: those of the flows found, widened to the
    /// window when one was given and the widened series stays within [`MAX_BUCKETS`]; `None`
    /// when there is neither a flow nor a complete window.
    fn series_span(
        &self,
        interval_ms: u64,
        first: Option<u64>,
        last: Option<u64>,
    ) -> Result<Option<(u64, u64)>, QueryError> {
        let align = |t: u64| t - t % interval_ms;
        let count = |lo: u64, hi: u64| ((hi - lo) / interval_ms).saturating_add(1);
        let from = self.selection.from_ms.map(align);
        let to = self.selection.to_ms.map(align);
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

    /// Up to `limit` selected flows in `order`: earliest start first, or most packets or bytes
    /// first (ties by start time, then archive order).
    pub fn list(&self, limit: usize, order: Order) -> Result<Listing, QueryError> {
        self.selection.check()?;
        let limit = limit.min(MAX_LIMIT);
        let all: Vec<&'static str> = crate::schema::flow_schema()
            .fields()
            .iter()
            .filter_map(|f| ALL_COLUMNS.iter().copied().find(|c| *c == f.name()))
            .collect();
        let (accs, stats) = self.run(&all, BinaryHeap::<Ranked>::new, |heap, batch, sel| {
            let (rb, c) = (batch.rb, batch.cols);
            let s = need(c.start, col::START_TIME)?;
            let p = need(c.packets, col::PACKETS)?;
            let b = need(c.bytes, col::BYTES)?;
            for i in sel.set_indices() {
                let seq = batch.pos + i as u64;
                let rank = match order {
                    Order::Time => (0, s[i]),
                    Order::Packets => (p[i].min(i64::MAX as u64) as i64, s[i]),
                    Order::Bytes => (b[i].min(i64::MAX as u64) as i64, s[i]),
                };
                // Max-heap of "worst kept first": for time, the latest; for counts, the smallest.
                let r = Ranked {
                    sort: match order {
                        Order::Time => (rank.1, 0),
                        _ => (-rank.0, rank.1),
                    },
                    seq,
                    row: None,
                };
                if heap.len() < limit {
                    heap.push(Ranked {
                        row: Some(record_at(rb, i)?),
                        ..r
                    });
                } else if let Some(top) = heap.peek()
                    && (r.sort, r.seq) < (top.sort, top.seq)
                {
                    heap.pop();
                    heap.push(Ranked {
                        row: Some(record_at(rb, i)?),
                        ..r
                    });
                }
            }
            Ok(())
        });
        let mut rows: Vec<Ranked> = accs.into_iter().flat_map(|h| h.into_vec()).collect();
        rows.sort_unstable_by_key(|r| (r.sort, r.seq));
        rows.truncate(limit);
        Ok(Listing {
            flows: rows.into_iter().filter_map(|r| r.row).collect(),
            stats,
        })
    }

    /// Calls `f` with every selected flow, segment by segment in archive order, on this thread
    /// (export: nothing is held beyond one decoded batch).
    pub fn for_each(
        &self,
        mut f: impl FnMut(&FlowBatch) -> std::io::Result<()>,
    ) -> Result<ScanStats, ExportError> {
        self.selection.check()?;
        let mut stats = ScanStats::default();
        let units = self.plan(&mut stats);
        if stats.vanished > 0 {
            stats.errors.push(format!(
                "{} segments vanished between listing and reading (merged or expired); the export may miss their flows: run it again",
                stats.vanished
            ));
        }
        if let Some(p) = &self.progress {
            p.total.store(units.len() as u64, Ordering::Relaxed);
        }
        for u in &units {
            let file = match File::open(u.path.as_ref()) {
                Ok(f) => f,
                Err(e) => {
                    stats.errors.push(format!("{}: {e}", u.path.display()));
                    continue;
                }
            };
            let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, u.meta.clone())
                .with_row_groups(vec![u.row_group])
                .with_batch_size(BATCH_ROWS)
                .build();
            let reader = match reader {
                Ok(r) => r,
                Err(e) => {
                    stats.errors.push(format!("{}: {e}", u.path.display()));
                    continue;
                }
            };
            stats.row_groups += 1;
            for rb in reader {
                let batch = match rb
                    .map_err(|e| e.to_string())
                    .and_then(|rb| from_record_batch(&rb).map_err(|e| e.to_string()))
                {
                    Ok(b) => b,
                    Err(e) => {
                        stats.errors.push(format!("{}: {e}", u.path.display()));
                        break;
                    }
                };
                stats.rows_scanned += batch.len() as u64;
                let mut out = FlowBatch::new();
                for i in 0..batch.len() {
                    let r = batch.get(i);
                    if self.selection.matches(&r) {
                        out.push(&r);
                    }
                }
                stats.rows_matched += out.len() as u64;
                if !out.is_empty() {
                    f(&out)?;
                }
            }
            if let Some(p) = &self.progress {
                p.done.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(stats)
    }
}

/// Errors of [`Scan::for_each`].
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Bad query arguments.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The callback failed (the output could not be written).
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

pub(super) const ALL_COLUMNS: &[&str] = &[
    col::FAMILY,
    col::EXPORTER,
    col::DOMAIN,
    col::IN_IF,
    col::OUT_IF,
    col::SRC_ADDR,
    col::DST_ADDR,
    col::SRC_PORT,
    col::DST_PORT,
    col::PROTO,
    col::TCP_FLAGS,
    col::TOS,
    col::PACKETS,
    col::BYTES,
    col::START_TIME,
    col::END_TIME,
    col::SRC_AS,
    col::DST_AS,
    col::SRC_MASK,
    col::DST_MASK,
    col::NEXT_HOP,
    col::VLAN,
    col::DIRECTION,
    col::SAMPLING_RATE,
    col::ICMP_TYPE,
    col::ICMP_CODE,
    col::END_REASON,
];

/// Row `i` of a fully projected batch as a record (through the schema's own conversion).
pub(super) fn record_at(rb: &RecordBatch, i: usize) -> Result<FlowRecord, String> {
    let one = from_record_batch(&rb.slice(i, 1)).map_err(|e| e.to_string())?;
    if one.len() == 1 {
        Ok(one.get(0))
    } else {
        Err("internal: a one-row slice did not give one flow".into())
    }
}

/// Sort order of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Earliest start first.
    Time,
    /// Most packets first.
    Packets,
    /// Most bytes first.
    Bytes,
}

impl FromStr for Order {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, QueryError> {
        match s.to_ascii_lowercase().as_str() {
            "time" | "start" | "tstart" => Ok(Order::Time),
            other => match other.parse::<Metric>() {
                Ok(Metric::Packets) => Ok(Order::Packets),
                Ok(Metric::Bytes) => Ok(Order::Bytes),
                _ => Err(QueryError::Metric(s.to_string())),
            },
        }
    }
}

pub(super) struct Ranked {
    sort: (i64, i64),
    seq: u64,
    row: Option<FlowRecord>,
}

impl PartialEq for Ranked {
    fn eq(&self, o: &Self) -> bool {
        (self.sort, self.seq) == (o.sort, o.seq)
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ranked {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.sort, self.seq).cmp(&(o.sort, o.seq))
    }
}
