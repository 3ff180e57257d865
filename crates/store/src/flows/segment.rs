//! The flow segment writer: [`FlowBatch`]es in, time-partitioned Parquet segments out.
//!
//! Contract:
//! - Segments live at `<root>/YYYY/MM/DD/HH/<start>-<end>.parquet`, partitioned by **receive
//!   time** (the writer's clock when the flows arrived, UTC): `<start>` and `<end>` are the Unix
//!   milliseconds of the first arrival and of the flush, and the hour directory is that of
//!   `<start>`. Names are unique and sort in time order (a segment's start is after the previous
//!   segment's end, also across restarts). The flows' own times are in `start_time`/`end_time`
//!   with min/max statistics, and in the footer keys `pharos.min_end_ms` / `pharos.max_end_ms`.
//! - A file under a final `*.parquet` name is always complete: it is written as
//!   `.<name>.tmp` in the same directory, fsynced, renamed, and the directory fsynced. Temp files
//!   left by a crash are deleted by [`SegmentWriter::open`].
//! - Crash safety by short segments: the open segment is flushed every
//!   [`SegmentConfig::segment`] (1 s by default) while flows arrive, so a SIGKILL loses at most
//!   that long of received flows. The cost is one file (and two fsyncs) per second of traffic:
//!   86 400 files a day; merging them into per-minute segments is the next step (docs/flows.md).
//! - Every segment is zstd-compressed, one row group per [`SegmentConfig::row_group_rows`] rows,
//!   with page statistics on every column and dictionary encoding except on the high-cardinality
//!   counters and times.
//! - Retention: segments whose end is older than [`SegmentConfig::retention`] are deleted, then
//!   the oldest until the total is within [`SegmentConfig::disk_budget`]; oldest first, always.
//! - A failed write (disk full, permissions, a file where a directory should be) is logged,
//!   counted in `pharos_flow_store_write_errors_total` and never stops the writer: the flows are
//!   held (up to [`SegmentConfig::max_held_flows`], beyond that new flows are dropped and counted
//!   in `pharos_flow_store_dropped_total{reason="write_error"}`) and the write is retried at every
//!   flush until it succeeds.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{Datelike, TimeZone, Timelike, Utc};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use pharos_model::flow::FlowBatch;

use super::schema::{col, flow_schema, from_record_batch, to_record_batch};

/// Settings of a [`SegmentWriter`].
#[derive(Debug, Clone)]
pub struct SegmentConfig {
    /// Directory holding the `YYYY/MM/DD/HH` tree (`<data_dir>/flows`).
    pub root: PathBuf,
    /// Longest time received flows stay in memory before they are written (crash-loss bound).
    pub segment: Duration,
    /// Segments older than this (by their end) are deleted; zero keeps them forever.
    pub retention: Duration,
    /// Most bytes all segments may take; 0 means no limit.
    pub disk_budget: u64,
    /// Most flows held in memory while writes fail; further flows are dropped and counted.
    pub max_held_flows: usize,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
}

impl SegmentConfig {
    /// Defaults for a store under `root`: 1 s segments, 30 days, no budget.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            segment: Duration::from_secs(1),
            retention: Duration::from_secs(30 * 86_400),
            disk_budget: 0,
            max_held_flows: 1_000_000,
            row_group_rows: 128 * 1024,
        }
    }
}

/// Errors of the flow store.
#[derive(Debug, thiserror::Error)]
pub enum FlowStoreError {
    /// A file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Parquet encoding or decoding failed.
    #[error("parquet {path}: {source}")]
    Parquet {
        /// The segment.
        path: PathBuf,
        /// The cause.
        source: parquet::errors::ParquetError,
    },
    /// A segment's columns are not the flow schema.
    #[error("segment {path}: {source}")]
    Schema {
        /// The segment.
        path: PathBuf,
        /// The cause.
        source: arrow_schema::ArrowError,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> FlowStoreError {
    let path = path.to_path_buf();
    move |source| FlowStoreError::Io { what, path, source }
}

/// One finished segment on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Full path.
    pub path: PathBuf,
    /// First arrival, Unix ms.
    pub start_ms: u64,
    /// Flush time, Unix ms.
    pub end_ms: u64,
    /// File size in bytes.
    pub bytes: u64,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Parses a final segment file name `<start>-<end>.parquet`.
fn parse_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".parquet")?;
    let (a, b) = stem.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Registers the descriptions of the flow store's metrics (for `/metrics`).
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!(
        "pharos_flow_store_flows_written_total",
        "Flows written durably into Parquet segments"
    );
    describe_counter!(
        "pharos_flow_store_segments_written_total",
        "Parquet flow segments written"
    );
    describe_counter!(
        "pharos_flow_store_bytes_written_total",
        "Bytes of Parquet flow segments written"
    );
    describe_counter!(
        "pharos_flow_store_write_errors_total",
        "Failed segment writes (disk full, permissions...); the flows are held and retried"
    );
    describe_counter!(
        "pharos_flow_store_dropped_total",
        "Flows dropped by the flow store, by reason (write_error: too many held while writes fail)"
    );
    describe_counter!(
        "pharos_flow_store_deleted_segments_total",
        "Segments deleted by retention, by reason (age, disk_budget)"
    );
    describe_counter!(
        "pharos_flow_store_delete_errors_total",
        "Segments retention could not delete"
    );
    describe_gauge!(
        "pharos_flow_store_pending_flows",
        "Flows received and not yet written"
    );
    describe_gauge!(
        "pharos_flow_store_failing",
        "1 while segment writes fail, 0 otherwise"
    );
    describe_gauge!(
        "pharos_flow_store_disk_bytes",
        "Bytes taken by the flow segments"
    );
    describe_gauge!("pharos_flow_store_segments", "Flow segments on disk");
}

/// Every finished segment under `root`, oldest first (by start, then end).
pub fn list_segments(root: &Path) -> Vec<SegmentInfo> {
    let mut out = Vec::new();
    for_each_file(root, |e| {
        if let Some((s, t)) = e.file_name().to_str().and_then(parse_name) {
            out.push(SegmentInfo {
                path: e.path(),
                start_ms: s,
                end_ms: t,
                bytes: e.metadata().map_or(0, |m| m.len()),
            });
        }
    });
    out.sort_by_key(|s| (s.start_ms, s.end_ms));
    out
}

/// Calls `f` on every file below `root` (directories that cannot be read are skipped).
fn for_each_file(root: &Path, mut f: impl FnMut(&fs::DirEntry)) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(_) => f(&e),
                Err(_) => {}
            }
        }
    }
}

/// Reads a whole segment back into one batch.
pub fn read_segment(path: &Path) -> Result<FlowBatch, FlowStoreError> {
    let f = File::open(path).map_err(io_err("cannot open", path))?;
    let pq = |source| FlowStoreError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .map_err(pq)?
        .build()
        .map_err(pq)?;
    let mut out = FlowBatch::new();
    for rb in reader {
        let rb = rb.map_err(|e| FlowStoreError::Schema {
            path: path.to_path_buf(),
            source: e,
        })?;
        let b = from_record_batch(&rb).map_err(|e| FlowStoreError::Schema {
            path: path.to_path_buf(),
            source: e,
        })?;
        out.extend_from(&b);
    }
    Ok(out)
}

/// Writer properties of every segment (see the module doc).
fn writer_properties(row_group_rows: usize, kv: Vec<KeyValue>) -> WriterProperties {
    let mut p = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("level 3")))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_dictionary_enabled(true)
        .set_max_row_group_row_count(Some(row_group_rows.max(1)))
        .set_key_value_metadata(Some(kv));
    for c in [col::PACKETS, col::BYTES, col::START_TIME, col::END_TIME] {
        p = p.set_column_dictionary_enabled(ColumnPath::from(c), false);
    }
    p.build()
}

/// Hook run with the temp file's path after it is fsynced and before it is renamed (tests).
type BeforeRename = Box<dyn FnMut(&Path) + Send>;

/// Writes flows into short Parquet segments (see the module doc). Not thread-safe by design: one
/// writer per store directory, driven by one thread.
pub struct SegmentWriter {
    cfg: SegmentConfig,
    /// Flows received and not yet written (held across failed writes).
    pending: FlowBatch,
    /// Arrival time of the first pending flow.
    pending_since: Option<u64>,
    /// End of the last written segment (names stay unique and ordered).
    last_end: u64,
    /// Finished segments, oldest first.
    segments: VecDeque<SegmentInfo>,
    total_bytes: u64,
    /// Whether the last write failed (logs once per failure streak).
    failing: bool,
    /// Failed writes since open (also in `pharos_flow_store_write_errors_total`).
    write_errors: u64,
    /// Flows dropped since open (also in `pharos_flow_store_dropped_total`).
    dropped: u64,
    before_rename: Option<BeforeRename>,
}

impl SegmentWriter {
    /// Opens the store under `cfg.root` (created if missing): deletes temp files a crash left
    /// and indexes the finished segments for retention.
    pub fn open(cfg: SegmentConfig) -> Result<Self, FlowStoreError> {
        fs::create_dir_all(&cfg.root).map_err(io_err("cannot create", &cfg.root))?;
        remove_temp_files(&cfg.root);
        let segments: VecDeque<SegmentInfo> = list_segments(&cfg.root).into();
        let total_bytes = segments.iter().map(|s| s.bytes).sum();
        let last_end = segments.iter().map(|s| s.end_ms).max().unwrap_or(0);
        metrics::gauge!("pharos_flow_store_disk_bytes").set(total_bytes as f64);
        metrics::gauge!("pharos_flow_store_segments").set(segments.len() as f64);
        Ok(Self {
            cfg,
            pending: FlowBatch::new(),
            pending_since: None,
            last_end,
            segments,
            total_bytes,
            failing: false,
            write_errors: 0,
            dropped: 0,
            before_rename: None,
        })
    }

    /// Installs a hook called with the fsynced temp file just before it is renamed (for tests of
    /// atomic appearance).
    pub fn set_before_rename(&mut self, f: impl FnMut(&Path) + Send + 'static) {
        self.before_rename = Some(Box::new(f));
    }

    /// Flows received and not yet written.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Failed segment writes since open.
    pub fn write_errors(&self) -> u64 {
        self.write_errors
    }

    /// Flows dropped since open because too many were held while writes failed.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Finished segments, oldest first.
    pub fn segments(&self) -> impl Iterator<Item = &SegmentInfo> {
        self.segments.iter()
    }

    /// Total size of the finished segments, bytes.
    pub fn disk_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Takes the flows of `batch`, received at `now` (Unix ms). Flows beyond
    /// [`SegmentConfig::max_held_flows`] pending are dropped and counted.
    pub fn push(&mut self, batch: &FlowBatch, now: u64) {
        if batch.is_empty() {
            return;
        }
        let room = self.cfg.max_held_flows.saturating_sub(self.pending.len());
        if room < batch.len() {
            let n = (batch.len() - room) as u64;
            self.dropped += n;
            metrics::counter!("pharos_flow_store_dropped_total", "reason" => "write_error")
                .increment(n);
        }
        if room == 0 {
            return;
        }
        if room < batch.len() {
            let mut part = batch.clone();
            part.truncate(room);
            self.pending.extend_from(&part);
        } else {
            self.pending.extend_from(batch);
        }
        self.pending_since.get_or_insert(now);
        metrics::gauge!("pharos_flow_store_pending_flows").set(self.pending.len() as f64);
    }

    /// Flushes when the open segment is [`SegmentConfig::segment`] old (or a failed write is due
    /// for a retry) and applies retention. Call at least every `segment`.
    pub fn tick(&mut self, now: u64) {
        if let Some(since) = self.pending_since
            && now.saturating_sub(since) >= self.cfg.segment.as_millis() as u64
        {
            let _ = self.flush(now);
        }
        self.apply_retention(now);
    }

    /// Writes every pending flow into one segment now. On failure the flows stay pending (the
    /// next flush retries) and the error is logged once per failure streak and counted.
    pub fn flush(&mut self, now: u64) -> Result<Option<SegmentInfo>, FlowStoreError> {
        let Some(since) = self.pending_since else {
            return Ok(None);
        };
        let start = since.max(self.last_end + 1);
        let end = now.max(start);
        match self.write_segment(start, end) {
            Ok(info) => {
                if self.failing {
                    tracing::info!(path = %info.path.display(), "flow store: writing again");
                    self.failing = false;
                    metrics::gauge!("pharos_flow_store_failing").set(0.0);
                }
                metrics::counter!("pharos_flow_store_segments_written_total").increment(1);
                metrics::counter!("pharos_flow_store_flows_written_total")
                    .increment(self.pending.len() as u64);
                metrics::counter!("pharos_flow_store_bytes_written_total").increment(info.bytes);
                self.pending.clear();
                self.pending_since = None;
                metrics::gauge!("pharos_flow_store_pending_flows").set(0.0);
                self.last_end = end;
                self.total_bytes += info.bytes;
                self.segments.push_back(info.clone());
                self.update_gauges();
                Ok(Some(info))
            }
            Err(e) => {
                self.write_errors += 1;
                metrics::counter!("pharos_flow_store_write_errors_total").increment(1);
                if !self.failing {
                    tracing::error!(error = %e, held = self.pending.len(),
                        "flow store: cannot write a segment; holding flows and retrying");
                    self.failing = true;
                    metrics::gauge!("pharos_flow_store_failing").set(1.0);
                }
                Err(e)
            }
        }
    }

    fn update_gauges(&self) {
        metrics::gauge!("pharos_flow_store_disk_bytes").set(self.total_bytes as f64);
        metrics::gauge!("pharos_flow_store_segments").set(self.segments.len() as f64);
    }

    fn write_segment(&mut self, start: u64, end: u64) -> Result<SegmentInfo, FlowStoreError> {
        let t = Utc
            .timestamp_millis_opt(start.min(i64::MAX as u64) as i64)
            .single()
            .unwrap_or_default();
        let dir = self.cfg.root.join(format!(
            "{:04}/{:02}/{:02}/{:02}",
            t.year(),
            t.month(),
            t.day(),
            t.hour()
        ));
        fs::create_dir_all(&dir).map_err(io_err("cannot create", &dir))?;
        let name = format!("{start}-{end}.parquet");
        let path = dir.join(&name);
        let tmp = dir.join(format!(".{name}.tmp"));
        let result = self.write_file(&tmp, start, end).and_then(|bytes| {
            if let Some(h) = self.before_rename.as_mut() {
                h(&tmp);
            }
            fs::rename(&tmp, &path).map_err(io_err("cannot rename into", &path))?;
            File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err("cannot fsync", &dir))?;
            Ok(bytes)
        });
        match result {
            Ok(bytes) => Ok(SegmentInfo {
                path,
                start_ms: start,
                end_ms: end,
                bytes,
            }),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Writes the pending flows to `tmp` and fsyncs it; returns its size.
    fn write_file(&self, tmp: &Path, start: u64, end: u64) -> Result<u64, FlowStoreError> {
        let f = File::create(tmp).map_err(io_err("cannot create", tmp))?;
        let (min_end, max_end) = self
            .pending
            .end_ms
            .iter()
            .fold((u64::MAX, 0), |(a, b), &x| (a.min(x), b.max(x)));
        let kv = vec![
            KeyValue::new("pharos.received_from_ms".into(), start.to_string()),
            KeyValue::new("pharos.received_to_ms".into(), end.to_string()),
            KeyValue::new("pharos.min_end_ms".into(), min_end.to_string()),
            KeyValue::new("pharos.max_end_ms".into(), max_end.to_string()),
        ];
        let pq = |source| FlowStoreError::Parquet {
            path: tmp.to_path_buf(),
            source,
        };
        let props = writer_properties(self.cfg.row_group_rows, kv);
        let mut w = ArrowWriter::try_new(f, flow_schema(), Some(props)).map_err(pq)?;
        let rb = to_record_batch(&self.pending);
        w.write(&rb).map_err(pq)?;
        let f = w.into_inner().map_err(pq)?;
        f.sync_all().map_err(io_err("cannot fsync", tmp))?;
        let bytes = f.metadata().map_err(io_err("cannot stat", tmp))?.len();
        Ok(bytes)
    }

    /// Deletes segments older than the retention, then the oldest beyond the disk budget.
    pub fn apply_retention(&mut self, now: u64) {
        let max_age = self.cfg.retention.as_millis() as u64;
        while let Some(s) = self.segments.front() {
            let too_old = max_age > 0 && s.end_ms < now.saturating_sub(max_age);
            let over = self.cfg.disk_budget > 0 && self.total_bytes > self.cfg.disk_budget;
            if !too_old && !over {
                break;
            }
            let s = self.segments.pop_front().expect("front exists");
            self.total_bytes -= s.bytes;
            match fs::remove_file(&s.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %s.path.display(), error = %e,
                        "flow store retention: cannot delete a segment");
                    metrics::counter!("pharos_flow_store_delete_errors_total").increment(1);
                }
            }
            let reason = if too_old { "age" } else { "disk_budget" };
            metrics::counter!("pharos_flow_store_deleted_segments_total", "reason" => reason)
                .increment(1);
            remove_empty_parents(&self.cfg.root, &s.path);
        }
        self.update_gauges();
    }
}

/// Removes the hour/day/month/year directories of `path` that became empty.
fn remove_empty_parents(root: &Path, path: &Path) {
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) || fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// Deletes `.*.parquet.tmp` files under `root` (segments a crash interrupted).
fn remove_temp_files(root: &Path) {
    for_each_file(root, |e| {
        if e.file_name()
            .to_str()
            .is_some_and(|n| n.starts_with('.') && n.ends_with(".parquet.tmp"))
        {
            let p = e.path();
            tracing::info!(path = %p.display(), "flow store: deleting an unfinished segment");
            let _ = fs::remove_file(&p);
        }
    });
}

#[cfg(test)]
mod tests;
