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
//!   that long of received flows.
//! - Compaction (when [`SegmentConfig::compact`]): once a receive-time minute is over (plus
//!   [`SegmentConfig::compact_after`]) and none of its flows is still pending, its segments are
//!   merged on a background thread into one segment named `<first start>-<last end>.parquet`,
//!   written like every segment (same properties, temp file, fsync, rename, directory fsync);
//!   only then are the inputs deleted. A segment whose receive range lies inside another's is
//!   *superseded*: [`list_segments`] never returns it (no reader counts a flow twice while the
//!   inputs still exist) and [`SegmentWriter::open`] deletes it (a crash between the rename and the
//!   deletion). A reader that finds a listed segment gone (merged or deleted by retention since it
//!   listed) lists again. A failed merge (disk full) is logged, counted in
//!   `pharos_flow_store_compaction_errors_total`, leaves the inputs as they are and is retried a
//!   minute later.
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

use arrow_array::{Array, RecordBatch, TimestampMillisecondArray};
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
    /// Whether the segments of each finished minute are merged into one.
    pub compact: bool,
    /// How long after a minute ends its segments are merged (late writes settle first).
    pub compact_after: Duration,
}

impl SegmentConfig {
    /// Defaults for a store under `root`: 1 s segments merged per minute 10 s after the minute,
    /// 30 days, no budget.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            segment: Duration::from_secs(1),
            retention: Duration::from_secs(30 * 86_400),
            disk_budget: 0,
            max_held_flows: 1_000_000,
            row_group_rows: 128 * 1024,
            compact: true,
            compact_after: Duration::from_secs(10),
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

impl SegmentInfo {
    /// The receive range `(start_ms, end_ms)`: unique among live segments.
    fn range(&self) -> (u64, u64) {
        (self.start_ms, self.end_ms)
    }
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
    describe_counter!(
        "pharos_flow_store_compactions_total",
        "Finished minutes whose segments were merged into one"
    );
    describe_counter!(
        "pharos_flow_store_compaction_errors_total",
        "Failed merges (disk full, unreadable input...); the inputs are kept and the merge retried"
    );
}

/// Every finished segment under `root` that no merged segment supersedes, oldest first (by
/// start, then end): each stored flow is in exactly one of them.
pub fn list_segments(root: &Path) -> Vec<SegmentInfo> {
    scan_segments(root).0
}

/// The finished segments under `root`, oldest first, split into (live, superseded): a segment is
/// superseded when another one in the same directory has a receive range containing its own (the
/// inputs of a merge whose deletion a crash interrupted; a merge never spans directories).
fn scan_segments(root: &Path) -> (Vec<SegmentInfo>, Vec<SegmentInfo>) {
    let mut all = Vec::new();
    for_each_file(root, |e| {
        if let Some((s, t)) = e.file_name().to_str().and_then(parse_name) {
            all.push(SegmentInfo {
                path: e.path(),
                start_ms: s,
                end_ms: t,
                bytes: e.metadata().map_or(0, |m| m.len()),
            });
        }
    });
    // Widest first among equal starts: a segment is contained in an earlier one of its directory
    // iff its end is at most the largest end seen so far there. A directory (the hour of the
    // start) is a run in start order; should one not be, less is superseded, never more.
    all.sort_by_key(|s| (s.start_ms, std::cmp::Reverse(s.end_ms)));
    let (mut live, mut superseded) = (Vec::with_capacity(all.len()), Vec::new());
    let mut max_end: Option<u64> = None;
    let mut dir: Option<PathBuf> = None;
    for s in all {
        if dir.as_deref() != s.path.parent() {
            dir = s.path.parent().map(Path::to_path_buf);
            max_end = None;
        }
        if max_end.is_some_and(|m| s.end_ms <= m) {
            superseded.push(s);
        } else {
            max_end = Some(s.end_ms);
            live.push(s);
        }
    }
    live.sort_by_key(SegmentInfo::range);
    (live, superseded)
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
    let mut out = FlowBatch::new();
    for rb in segment_batches(path)? {
        let b = from_record_batch(&rb?).map_err(|e| FlowStoreError::Schema {
            path: path.to_path_buf(),
            source: e,
        })?;
        out.extend_from(&b);
    }
    Ok(out)
}

/// Writer properties of every segment (see the module doc).
pub(crate) fn writer_properties(row_group_rows: usize, kv: Vec<KeyValue>) -> WriterProperties {
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

/// Writer properties of a fresh one-second segment written by the encoder threads: uncompressed,
/// plain encoding, row-group (chunk) statistics only, so that encoding keeps up with the
/// collectors; the minute's merge rewrites it with [`writer_properties`].
pub(crate) fn fast_properties(row_group_rows: usize, kv: Vec<KeyValue>) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_dictionary_enabled(false)
        .set_max_row_group_row_count(Some(row_group_rows.max(1)))
        .set_key_value_metadata(Some(kv))
        .build()
}

/// How a segment is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// [`writer_properties`]: merged minutes, synchronous flushes, imports.
    Compact,
    /// [`fast_properties`]: one-second segments of the encoder threads.
    Fast,
}

/// Hook run with the temp file's path after it is fsynced and before it is renamed (tests).
type BeforeRename = Box<dyn FnMut(&Path) + Send>;

/// The rows of a segment to write: flows from memory, or the rows of finished segments in order.
enum Rows<'a> {
    Flows(&'a FlowBatch),
    Segments(&'a [SegmentInfo]),
}

/// Writes `rows` as the segment `<start>-<end>.parquet` under `root` (hour directory of `start`):
/// temp file, fsync, rename, directory fsync. The one code path of every segment, flushed or
/// merged. On failure nothing is left under either name.
fn write_segment(
    root: &Path,
    start: u64,
    end: u64,
    row_group_rows: usize,
    rows: Rows<'_>,
    encoding: Encoding,
    before_rename: Option<&mut BeforeRename>,
) -> Result<SegmentInfo, FlowStoreError> {
    let t = Utc
        .timestamp_millis_opt(start.min(i64::MAX as u64) as i64)
        .single()
        .unwrap_or_default();
    let dir = root.join(format!(
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
    let result = write_file(&tmp, start, end, row_group_rows, rows, encoding).and_then(|bytes| {
        if let Some(h) = before_rename {
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

/// Writes `rows` to `tmp` with the footer keys of the module doc and fsyncs it; returns its size.
fn write_file(
    tmp: &Path,
    start: u64,
    end: u64,
    row_group_rows: usize,
    rows: Rows<'_>,
    encoding: Encoding,
) -> Result<u64, FlowStoreError> {
    let f = File::create(tmp).map_err(io_err("cannot create", tmp))?;
    let kv = vec![
        KeyValue::new("pharos.received_from_ms".into(), start.to_string()),
        KeyValue::new("pharos.received_to_ms".into(), end.to_string()),
    ];
    let pq = |source| FlowStoreError::Parquet {
        path: tmp.to_path_buf(),
        source,
    };
    let props = match encoding {
        Encoding::Compact => writer_properties(row_group_rows, kv),
        Encoding::Fast => fast_properties(row_group_rows, kv),
    };
    let mut w = ArrowWriter::try_new(f, flow_schema(), Some(props)).map_err(pq)?;
    let (mut min_end, mut max_end) = (u64::MAX, 0);
    let mut put = |rb: &RecordBatch| -> Result<(), FlowStoreError> {
        if let Some(ends) = rb
            .column_by_name(col::END_TIME)
            .and_then(|c| c.as_any().downcast_ref::<TimestampMillisecondArray>())
        {
            for &x in ends.values() {
                min_end = min_end.min(x as u64);
                max_end = max_end.max(x as u64);
            }
        }
        w.write(rb).map_err(pq)
    };
    match rows {
        Rows::Flows(b) => put(&to_record_batch(b))?,
        Rows::Segments(inputs) => {
            for s in inputs {
                for rb in segment_batches(&s.path)? {
                    put(&rb?)?;
                }
            }
        }
    }
    w.append_key_value_metadata(KeyValue::new(
        "pharos.min_end_ms".into(),
        min_end.to_string(),
    ));
    w.append_key_value_metadata(KeyValue::new(
        "pharos.max_end_ms".into(),
        max_end.to_string(),
    ));
    let f = w.into_inner().map_err(pq)?;
    f.sync_all().map_err(io_err("cannot fsync", tmp))?;
    let bytes = f.metadata().map_err(io_err("cannot stat", tmp))?.len();
    Ok(bytes)
}

/// The record batches of a finished segment, checked against the flow schema.
fn segment_batches(
    path: &Path,
) -> Result<impl Iterator<Item = Result<RecordBatch, FlowStoreError>>, FlowStoreError> {
    let f = File::open(path).map_err(io_err("cannot open", path))?;
    let pq = |source| FlowStoreError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .map_err(pq)?
        .with_batch_size(64 * 1024)
        .build()
        .map_err(pq)?;
    let path = path.to_path_buf();
    Ok(reader.map(move |rb| {
        let schema_err = |source| FlowStoreError::Schema {
            path: path.clone(),
            source,
        };
        let rb = rb.map_err(schema_err)?;
        RecordBatch::try_new(flow_schema(), rb.columns().to_vec()).map_err(schema_err)
    }))
}

/// Merges `inputs` (finished segments of one hour directory, oldest first) into one segment
/// named for their whole receive range, written by the same code path as every segment; once it
/// is durable, deletes the inputs (a failed deletion is logged: the merged segment supersedes
/// the input, and the next [`SegmentWriter::open`] deletes it). On error the inputs are intact.
pub fn merge_segments(
    root: &Path,
    inputs: &[SegmentInfo],
    row_group_rows: usize,
) -> Result<SegmentInfo, FlowStoreError> {
    let start = inputs.iter().map(|s| s.start_ms).min().unwrap_or(0);
    let end = inputs.iter().map(|s| s.end_ms).max().unwrap_or(start);
    let merged = write_segment(
        root,
        start,
        end,
        row_group_rows,
        Rows::Segments(inputs),
        Encoding::Compact,
        None,
    )?;
    for s in inputs {
        delete_segment(
            &s.path,
            "flow store compaction: cannot delete a merged input",
        );
    }
    Ok(merged)
}

/// Deletes a segment file; a missing file is fine, another error is logged and counted.
fn delete_segment(path: &Path, what: &'static str) {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "{what}");
            metrics::counter!("pharos_flow_store_delete_errors_total").increment(1);
        }
    }
}

/// A merge running on its own thread.
struct Compaction {
    /// The minute (Unix ms / 60 000) whose segments are merged.
    minute: u64,
    inputs: Vec<SegmentInfo>,
    started: std::time::Instant,
    job: std::thread::JoinHandle<Result<SegmentInfo, FlowStoreError>>,
}

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
    /// Failed merges since open (also in `pharos_flow_store_compaction_errors_total`).
    compaction_errors: u64,
    before_rename: Option<BeforeRename>,
    /// The merge in progress, if any.
    compaction: Option<Compaction>,
    /// Minutes before this one (Unix ms / 60 000) need no merge.
    compacted_below: u64,
    /// No merge starts before this time (Unix ms): back-off after a failed merge.
    compact_retry_at: u64,
}

impl SegmentWriter {
    /// Opens the store under `cfg.root` (created if missing): deletes temp files and superseded
    /// merge inputs a crash left, and indexes the finished segments for retention.
    pub fn open(cfg: SegmentConfig) -> Result<Self, FlowStoreError> {
        fs::create_dir_all(&cfg.root).map_err(io_err("cannot create", &cfg.root))?;
        remove_temp_files(&cfg.root);
        let (live, superseded) = scan_segments(&cfg.root);
        for s in &superseded {
            tracing::info!(path = %s.path.display(),
                "flow store: deleting a segment already merged into another");
            delete_segment(&s.path, "flow store: cannot delete a merged segment");
        }
        let segments: VecDeque<SegmentInfo> = live.into();
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
            compaction_errors: 0,
            before_rename: None,
            compaction: None,
            compacted_below: 0,
            compact_retry_at: 0,
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

    /// Failed merges since open.
    pub fn compaction_errors(&self) -> u64 {
        self.compaction_errors
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
    /// for a retry), takes the result of a finished merge, applies retention and starts merging
    /// the next finished minute on a background thread. Call at least every `segment`.
    pub fn tick(&mut self, now: u64) {
        if let Some(since) = self.pending_since
            && now.saturating_sub(since) >= self.cfg.segment.as_millis() as u64
        {
            let _ = self.flush(now);
        }
        if self
            .compaction
            .as_ref()
            .is_some_and(|c| c.job.is_finished())
        {
            self.finish_compaction(now);
        }
        self.apply_retention(now);
        if self.compaction.is_none()
            && now >= self.compact_retry_at
            && let Some((minute, inputs)) = self.due_minute(now)
        {
            let root = self.cfg.root.clone();
            let rows = self.cfg.row_group_rows;
            let job_inputs = inputs.clone();
            let started = std::time::Instant::now();
            let spawned = std::thread::Builder::new()
                .name("flow-compact".into())
                .spawn(move || merge_segments(&root, &job_inputs, rows));
            match spawned {
                Ok(job) => {
                    self.compaction = Some(Compaction {
                        minute,
                        inputs,
                        started,
                        job,
                    })
                }
                Err(e) => {
                    let e = FlowStoreError::Io {
                        what: "cannot start a merge thread for",
                        path: self.cfg.root.clone(),
                        source: e,
                    };
                    self.record_compaction(minute, &inputs, started, Err(e), now);
                }
            }
        }
    }

    /// Merges every finished minute now, on this thread (after waiting for a merge in
    /// progress); returns the merged segments. Errors are counted and logged as in [`tick`].
    ///
    /// [`tick`]: SegmentWriter::tick
    pub fn compact(&mut self, now: u64) -> Vec<SegmentInfo> {
        let mut out = Vec::new();
        self.wait_compaction(now);
        while let Some((minute, inputs)) = self.due_minute(now) {
            let started = std::time::Instant::now();
            let result = merge_segments(&self.cfg.root, &inputs, self.cfg.row_group_rows);
            let ok = result.as_ref().ok().cloned();
            self.record_compaction(minute, &inputs, started, result, now);
            match ok {
                Some(m) => out.push(m),
                None => break,
            }
        }
        out
    }

    /// Waits for the merge in progress, if any, and takes its result (at shutdown).
    pub fn wait_compaction(&mut self, now: u64) {
        if self.compaction.is_some() {
            self.finish_compaction(now);
        }
    }

    /// The oldest finished minute with two or more segments and its segments: the minute and
    /// the grace after it are over and no pending flow arrived in it.
    fn due_minute(&mut self, now: u64) -> Option<(u64, Vec<SegmentInfo>)> {
        if !self.cfg.compact {
            return None;
        }
        let after = self.cfg.compact_after.as_millis() as u64;
        let from = self
            .segments
            .partition_point(|s| s.start_ms / 60_000 < self.compacted_below);
        let mut i = from;
        while i < self.segments.len() {
            let minute = self.segments[i].start_ms / 60_000;
            let minute_end = (minute + 1).saturating_mul(60_000);
            let open = self.pending_since.is_some_and(|p| p < minute_end);
            if now < minute_end.saturating_add(after) || open {
                return None;
            }
            let n = self
                .segments
                .range(i..)
                .take_while(|s| s.start_ms < minute_end)
                .count();
            if n >= 2 {
                return Some((minute, self.segments.range(i..i + n).cloned().collect()));
            }
            self.compacted_below = minute + 1;
            i += n;
        }
        None
    }

    /// Joins the merge in progress and records its outcome.
    fn finish_compaction(&mut self, now: u64) {
        let Some(c) = self.compaction.take() else {
            return;
        };
        let result = c.job.join().unwrap_or_else(|_| {
            Err(FlowStoreError::Io {
                what: "merge thread panicked merging into",
                path: self.cfg.root.clone(),
                source: io::Error::other("panic"),
            })
        });
        self.record_compaction(c.minute, &c.inputs, c.started, result, now);
    }

    /// Replaces the inputs of a successful merge by the merged segment in the index; counts and
    /// logs a failed one and defers the next attempt by a minute.
    fn record_compaction(
        &mut self,
        minute: u64,
        inputs: &[SegmentInfo],
        started: std::time::Instant,
        result: Result<SegmentInfo, FlowStoreError>,
        now: u64,
    ) {
        match result {
            Ok(merged) => {
                metrics::counter!("pharos_flow_store_compactions_total").increment(1);
                tracing::debug!(path = %merged.path.display(), inputs = inputs.len(),
                    ms = started.elapsed().as_millis() as u64, "flow store: minute merged");
                // Inputs are sorted and unique by receive range.
                self.segments.retain(|s| {
                    inputs
                        .binary_search_by_key(&s.range(), |i| i.range())
                        .is_err()
                });
                let gone = inputs.iter().map(|s| s.bytes).sum::<u64>();
                self.total_bytes = self.total_bytes.saturating_sub(gone);
                self.total_bytes += merged.bytes;
                let at = self
                    .segments
                    .partition_point(|s| s.range() < merged.range());
                self.segments.insert(at, merged);
                if self.compacted_below == minute {
                    self.compacted_below = minute + 1;
                }
                self.update_gauges();
            }
            Err(e) => {
                self.compaction_errors += 1;
                metrics::counter!("pharos_flow_store_compaction_errors_total").increment(1);
                tracing::warn!(error = %e, inputs = inputs.len(),
                    "flow store: cannot merge a minute's segments; keeping them, retrying in a minute");
                self.compact_retry_at = now + 60_000;
            }
        }
    }

    /// Writes every pending flow into one segment now. On failure the flows stay pending (the
    /// next flush retries) and the error is logged once per failure streak and counted.
    pub fn flush(&mut self, now: u64) -> Result<Option<SegmentInfo>, FlowStoreError> {
        let Some(since) = self.pending_since else {
            return Ok(None);
        };
        let start = since.max(self.last_end.saturating_add(1));
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
                // A write held by failures may land in a minute already passed over.
                self.compacted_below = self.compacted_below.min(start / 60_000);
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
        write_segment(
            &self.cfg.root,
            start,
            end,
            self.cfg.row_group_rows,
            Rows::Flows(&self.pending),
            self.before_rename.as_mut(),
        )
    }

    /// Deletes segments older than the retention, then the oldest beyond the disk budget.
    pub fn apply_retention(&mut self, now: u64) {
        let max_age = self.cfg.retention.as_millis() as u64;
        while let Some(s) = self.segments.front() {
            let too_old = max_age > 0 && s.end_ms < now.saturating_sub(max_age);
            let over = self.cfg.disk_budget > 0 && self.total_bytes > self.cfg.disk_budget;
            // An input of the merge in progress waits for it (its rows move to the merged one).
            let merging = self
                .compaction
                .as_ref()
                .is_some_and(|c| c.inputs.iter().any(|i| i.range() == s.range()));
            if (!too_old && !over) || merging {
                break;
            }
            let s = self.segments.pop_front().expect("front exists");
            self.total_bytes -= s.bytes;
            delete_segment(&s.path, "flow store retention: cannot delete a segment");
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
