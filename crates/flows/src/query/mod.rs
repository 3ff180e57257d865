//! Queries over the flow archive: a filter ([`super::filter`]) and a time window select flows;
//! top-N by a key, time series and raw listings aggregate them.
//!
//! Contract:
//! - The answer is the one [`super::filter::matches`] gives row by row over every stored flow
//!   inside the window (a property test holds the engine to it).
//! - Window: like `nfdump -t`, a flow is inside `[from, to]` when it started at or after `from`
//!   and ended at or before `to` (both in Unix ms, both optional).
//! - Segments and row groups whose footer or statistics prove that no flow can be inside the
//!   window are not read; only the columns the filter, the key and the window use are read.
//!   Segments that finished more than [`MAX_CLOCK_SKEW_MS`] before the window's start are not
//!   even opened (flows are received after they end, unless the exporter's clock runs ahead).
//! - Work is spread over threads one row group at a time; results do not depend on the count.
//! - A segment that cannot be read (damaged, deleted by retention during the scan) is skipped,
//!   named in [`ScanStats::errors`] and does not fail the query.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use pharos_model::flow::FlowRecord;

use super::filter::Expr;

/// Rows decoded at a time.
const BATCH_ROWS: usize = 64 * 1024;
/// Most distinct groups one aggregation keeps (bounds memory on untrusted queries).
pub const MAX_GROUPS: usize = 20_000_000;
/// Most rows a listing returns.
pub const MAX_LIMIT: usize = 1_000_000;
/// Most times a scan restarts because segments vanished under it.
pub const MAX_RESTARTS: u64 = 3;
/// Most time-series buckets.
pub const MAX_BUCKETS: u64 = 100_000;
/// Most points of a series answer, counting every key value's series (they are zero-filled, so
/// their number is intervals times series).
pub const MAX_POINTS: u64 = 5_000_000;

/// Errors of a query (bad arguments; unreadable segments are not errors, see [`ScanStats`]).
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The aggregation key is not one of the known keys.
    #[error(
        "unknown key {0:?}: use srcip, dstip, ip, srcport, dstport, port, proto, srcas, dstas, as, exporter, inif, outif, tos, or a prefix such as srcip4/24 or dstip6/48"
    )]
    Key(String),
    /// The order is not flows, packets or bytes.
    #[error("unknown order {0:?}: use flows, packets or bytes")]
    Metric(String),
    /// An interval could not be read.
    #[error("cannot read the interval {0:?}: use a duration such as 10s, 1m, 5m, 1h, 1d")]
    Interval(String),
    /// The window ends before it starts.
    #[error("the time window ends ({to}) before it starts ({from}): swap from and to")]
    Window {
        /// Start, Unix ms.
        from: u64,
        /// End, Unix ms.
        to: u64,
    },
    /// The aggregation grew beyond [`MAX_GROUPS`] distinct keys or [`MAX_BUCKETS`] buckets.
    #[error("{0}: narrow the filter or the time window, or use a shorter prefix")]
    TooBig(String),
}

/// What a query selects: a filter and an optional window.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The filter.
    pub filter: Expr,
    /// Flows that started at or after this Unix ms.
    pub from_ms: Option<u64>,
    /// Flows that ended at or before this Unix ms.
    pub to_ms: Option<u64>,
}

impl Selection {
    /// Every flow.
    pub fn all() -> Self {
        Self {
            filter: Expr::Any,
            from_ms: None,
            to_ms: None,
        }
    }

    /// Whether one flow is selected: the reference semantics.
    pub fn matches(&self, f: &FlowRecord) -> bool {
        self.from_ms.is_none_or(|t| f.start_ms >= t)
            && self.to_ms.is_none_or(|t| f.end_ms <= t)
            && super::filter::matches(&self.filter, f)
    }

    fn check(&self) -> Result<(), QueryError> {
        match (self.from_ms, self.to_ms) {
            (Some(from), Some(to)) if to < from => Err(QueryError::Window { from, to }),
            _ => Ok(()),
        }
    }
}

/// Progress of a running scan, readable from another thread.
#[derive(Debug, Default)]
pub struct Progress {
    /// Row groups to read (known once planning is done).
    pub total: AtomicU64,
    /// Row groups read.
    pub done: AtomicU64,
    /// Rows read.
    pub rows: AtomicU64,
    /// Set from another thread to stop the scan (its asker went away): workers take no further
    /// row group, and the answer says it was cancelled (in `errors`).
    pub cancel: std::sync::atomic::AtomicBool,
}

/// What a scan did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ScanStats {
    /// Segments in the archive.
    pub segments: u64,
    /// Segments skipped because their footer puts every flow outside the window.
    pub segments_pruned: u64,
    /// Row groups read.
    pub row_groups: u64,
    /// Row groups skipped by their statistics.
    pub row_groups_pruned: u64,
    /// Rows read.
    pub rows_scanned: u64,
    /// Rows selected.
    pub rows_matched: u64,
    /// Segments that could not be read, with the reason.
    pub errors: Vec<String>,
    /// Scans restarted because a segment vanished under them (merged or expired meanwhile).
    pub restarts: u64,
    #[serde(skip)]
    vanished: u64,
}

impl ScanStats {
    fn merge(&mut self, o: ScanStats) {
        self.row_groups += o.row_groups;
        self.rows_scanned += o.rows_scanned;
        self.rows_matched += o.rows_matched;
        self.errors.extend(o.errors);
        self.vanished += o.vanished;
    }
}

/// A query over the archive under `root` (`<data_dir>/flows`).
#[derive(Debug, Clone)]
pub struct Scan {
    /// Archive root.
    pub root: PathBuf,
    /// What to select.
    pub selection: Selection,
    /// Worker threads (at least 1).
    pub threads: usize,
    /// Updated while the scan runs, when set.
    pub progress: Option<Arc<Progress>>,
}

impl Scan {
    /// A scan of `root` selecting `selection`, on every core.
    pub fn new(root: impl Into<PathBuf>, selection: Selection) -> Self {
        Self {
            root: root.into(),
            selection,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            progress: None,
        }
    }
}

mod eval;
mod groups;
mod key;
mod plan;
mod result;
mod scan;

pub use groups::KeyHasher;
pub use key::{Key, KeyField, KeyValue, Metric, Totals};
pub use plan::MAX_CLOCK_SKEW_MS;
pub use result::{KeySeries, Listing, Point, Series, TopN, TopRow};
pub use scan::{ExportError, Order};

#[cfg(test)]
mod tests;
