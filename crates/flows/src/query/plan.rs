//! Scan planning: the columns a query reads, and the segments and row groups that may hold
//! selected flows (pruned by segment name, footer and row-group statistics).
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::file::statistics::Statistics;

use super::key::{Key, KeyField};
use super::{Scan, ScanStats};
use crate::filter::{Expr, IfSide, Pred, Side};
use crate::schema::col;
use crate::segment::list_segments;

/// One row group to read.
pub(super) struct Unit {
    pub(super) path: Arc<PathBuf>,
    pub(super) meta: ArrowReaderMetadata,
    pub(super) row_group: usize,
}

/// Columns a filter reads.
pub(super) fn filter_columns(e: &Expr, out: &mut Vec<&'static str>) {
    match e {
        Expr::Any => {}
        Expr::Not(x) => filter_columns(x, out),
        Expr::And(v) | Expr::Or(v) => v.iter().for_each(|x| filter_columns(x, out)),
        Expr::Pred(p) => {
            let sides = |s: Side, a: &'static str, b: &'static str| match s {
                Side::Src => vec![a],
                Side::Dst => vec![b],
                Side::Either => vec![a, b],
            };
            let cols: Vec<&'static str> = match *p {
                Pred::Proto(_) => vec![col::PROTO],
                Pred::Host { side, .. } | Pred::Net { side, .. } => {
                    let mut v = sides(side, col::SRC_ADDR, col::DST_ADDR);
                    v.push(col::FAMILY);
                    v
                }
                Pred::Port { side, .. } => sides(side, col::SRC_PORT, col::DST_PORT),
                Pred::As { side, .. } => sides(side, col::SRC_AS, col::DST_AS),
                Pred::Interface { side, .. } => match side {
                    IfSide::In => vec![col::IN_IF],
                    IfSide::Out => vec![col::OUT_IF],
                    IfSide::Either => vec![col::IN_IF, col::OUT_IF],
                },
                Pred::Vlan(_) => vec![col::VLAN],
                Pred::Bytes { .. } => vec![col::BYTES],
                Pred::Packets { .. } => vec![col::PACKETS],
                Pred::Flags(_) => vec![col::PROTO, col::TCP_FLAGS],
                Pred::Tos { .. } => vec![col::TOS],
                Pred::IcmpType { .. } => vec![col::PROTO, col::ICMP_TYPE],
                Pred::IcmpCode { .. } => vec![col::PROTO, col::ICMP_CODE],
                Pred::Family(_) => vec![col::FAMILY],
            };
            out.extend(cols);
        }
    }
}

pub(super) fn key_columns(k: &Key) -> Vec<&'static str> {
    use KeyField::*;
    match k.field {
        SrcAddr => vec![col::SRC_ADDR, col::FAMILY],
        DstAddr => vec![col::DST_ADDR, col::FAMILY],
        Addr => vec![col::SRC_ADDR, col::DST_ADDR, col::FAMILY],
        SrcPort => vec![col::SRC_PORT],
        DstPort => vec![col::DST_PORT],
        Port => vec![col::SRC_PORT, col::DST_PORT],
        Proto => vec![col::PROTO],
        SrcAs => vec![col::SRC_AS],
        DstAs => vec![col::DST_AS],
        As => vec![col::SRC_AS, col::DST_AS],
        Exporter => vec![col::EXPORTER, col::FAMILY],
        InIf => vec![col::IN_IF],
        OutIf => vec![col::OUT_IF],
        Tos => vec![col::TOS],
    }
}

pub(super) fn i64_stat(s: Option<&Statistics>) -> (Option<i64>, Option<i64>) {
    match s {
        Some(Statistics::Int64(v)) => (v.min_opt().copied(), v.max_opt().copied()),
        _ => (None, None),
    }
}

pub(super) fn kv_u64(meta: &ArrowReaderMetadata, key: &str) -> Option<u64> {
    meta.metadata()
        .file_metadata()
        .key_value_metadata()?
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_deref()?
        .parse()
        .ok()
}

/// Allowed lead of an exporter's clock over ours: segments that finished more than this before a
/// window's start are skipped by name (docs/flows.md).
pub const MAX_CLOCK_SKEW_MS: u64 = 3_600_000;

/// The row groups of one segment that may hold selected flows.
pub(super) struct SegmentPlan {
    units: Vec<Unit>,
    /// The footer put every flow outside the window.
    pruned: bool,
    row_groups_pruned: u64,
}

/// `Ok(None)` when the segment vanished since it was listed.
pub(super) fn plan_segment(
    path: &Path,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Option<SegmentPlan>, String> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let meta =
        ArrowReaderMetadata::load(&f, ArrowReaderOptions::new()).map_err(|e| e.to_string())?;
    // Footer: every flow ended in [min_end, max_end]; a flow inside the window ends in
    // [from, to] (it starts at or after from, and ends after it starts).
    let (min_end, max_end) = (
        kv_u64(&meta, "pharos.min_end_ms"),
        kv_u64(&meta, "pharos.max_end_ms"),
    );
    if from.zip(max_end).is_some_and(|(f, m)| (m as i64) < f)
        || to.zip(min_end).is_some_and(|(t, m)| (m as i64) > t)
    {
        return Ok(Some(SegmentPlan {
            units: Vec::new(),
            pruned: true,
            row_groups_pruned: 0,
        }));
    }
    let schema = meta.schema().clone();
    let (si, ei) = (
        schema.index_of(col::START_TIME).ok(),
        schema.index_of(col::END_TIME).ok(),
    );
    let path = Arc::new(path.to_path_buf());
    let mut plan = SegmentPlan {
        units: Vec::new(),
        pruned: false,
        row_groups_pruned: 0,
    };
    for (i, rg) in meta.metadata().row_groups().iter().enumerate() {
        let (_, max_start) = i64_stat(si.and_then(|c| rg.column(c).statistics()));
        let (min_end, max_end) = i64_stat(ei.and_then(|c| rg.column(c).statistics()));
        let out = from
            .is_some_and(|f| max_start.is_some_and(|m| m < f) || max_end.is_some_and(|m| m < f))
            || to.zip(min_end).is_some_and(|(t, m)| m > t);
        if out || rg.num_rows() == 0 {
            plan.row_groups_pruned += 1;
            continue;
        }
        plan.units.push(Unit {
            path: path.clone(),
            meta: meta.clone(),
            row_group: i,
        });
    }
    Ok(Some(plan))
}

impl Scan {
    /// Row groups that may hold selected flows, and the planning counts.
    pub(super) fn plan(&self, stats: &mut ScanStats) -> Vec<Unit> {
        let (from, to) = (
            self.selection
                .from_ms
                .map(|t| t.min(i64::MAX as u64) as i64),
            self.selection.to_ms.map(|t| t.min(i64::MAX as u64) as i64),
        );
        let all = list_segments(&self.root);
        stats.segments = all.len() as u64;
        // By name, without opening: flows arrive after they end, so a segment whose last arrival
        // is more than MAX_CLOCK_SKEW_MS before `from` holds no flow ending at or after `from`.
        let segs: Vec<_> = all
            .into_iter()
            .filter(|s| from.is_none_or(|f| s.end_ms.saturating_add(MAX_CLOCK_SKEW_MS) >= f as u64))
            .collect();
        stats.segments_pruned = stats.segments - segs.len() as u64;
        // Footers, read in parallel (one open and one footer read per segment).
        let slots: Vec<std::sync::OnceLock<Result<Option<SegmentPlan>, String>>> =
            segs.iter().map(|_| std::sync::OnceLock::new()).collect();
        let next = AtomicUsize::new(0);
        let threads = self.threads.clamp(1, segs.len().max(1));
        std::thread::scope(|sc| {
            for _ in 0..threads {
                sc.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(seg) = segs.get(i) else { break };
                        let _ = slots[i].set(plan_segment(&seg.path, from, to));
                    }
                });
            }
        });
        let mut units = Vec::new();
        for (seg, slot) in segs.iter().zip(slots) {
            match slot.into_inner() {
                Some(Ok(None)) => stats.vanished += 1,
                Some(Ok(Some(p))) => {
                    stats.segments_pruned += u64::from(p.pruned);
                    stats.row_groups_pruned += p.row_groups_pruned;
                    units.extend(p.units);
                }
                Some(Err(e)) => stats.errors.push(format!("{}: {e}", seg.path.display())),
                None => stats
                    .errors
                    .push(format!("{}: not planned", seg.path.display())),
            }
        }
        units
    }
}
