//! The answers of queries: top-N rows, series with their zero-filled points, listings.
use std::fmt;

use pharos_model::flow::FlowRecord;

use super::ScanStats;
use super::key::{Key, KeyValue, Metric, Totals};

/// One row of a top-N.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TopRow {
    /// The key's value.
    pub key: KeyValue,
    /// Its flows, packets and bytes.
    #[serde(flatten)]
    pub totals: Totals,
}

/// The answer of [`Scan::top`](super::Scan::top).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TopN {
    /// The key.
    #[serde(serialize_with = "display")]
    pub key: Key,
    /// The order.
    pub by: Metric,
    /// The top rows, largest first.
    pub rows: Vec<TopRow>,
    /// Every selected flow.
    pub total: Totals,
    /// Distinct values of the key among them.
    pub distinct: u64,
    /// What the scan did.
    pub stats: ScanStats,
}

pub(super) fn display<T: fmt::Display, S: serde::Serializer>(
    v: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

pub(super) fn display_opt<T: fmt::Display, S: serde::Serializer>(
    v: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

/// Every interval start from `lo` to `hi` (inclusive) with the totals `at` gives, zero where it
/// gives none: a series has no holes, so a plot or a script sees quiet intervals as 0.
pub(super) fn fill(
    span: Option<(u64, u64)>,
    interval_ms: u64,
    at: impl Fn(u64) -> Option<Totals>,
) -> Vec<Point> {
    let Some((lo, hi)) = span else {
        return Vec::new();
    };
    let mut points = Vec::with_capacity(((hi - lo) / interval_ms + 1) as usize);
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

/// One interval of a series.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Point {
    /// Interval start, Unix ms.
    pub t_ms: u64,
    /// Flows, packets and bytes of the flows that started in it.
    #[serde(flatten)]
    pub totals: Totals,
}

/// The series of one key value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeySeries {
    /// The value.
    pub key: KeyValue,
    /// Its totals over the whole selection.
    pub totals: Totals,
    /// Its intervals, in time order, the same as [`Series::points`] (zero where this value
    /// had no flow).
    pub points: Vec<Point>,
}

/// The answer of [`Scan::series`](super::Scan::series).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Series {
    /// Interval length, ms.
    pub interval_ms: u64,
    /// The order of [`Series::keys`].
    pub by: Metric,
    /// The key, when split by one.
    #[serde(serialize_with = "display_opt")]
    pub key: Option<Key>,
    /// Every interval from the first to the last flow found (widened to the window when one
    /// was given and the result stays within [`MAX_BUCKETS`](super::MAX_BUCKETS)), in time order; intervals without
    /// flows are zeros.
    pub points: Vec<Point>,
    /// Per key value (the top ones), when split by a key.
    pub keys: Vec<KeySeries>,
    /// What the scan did.
    pub stats: ScanStats,
}

/// The answer of [`Scan::list`](super::Scan::list).
#[derive(Debug, Clone)]
pub struct Listing {
    /// The flows, in the order asked.
    pub flows: Vec<FlowRecord>,
    /// What the scan did.
    pub stats: ScanStats,
}
