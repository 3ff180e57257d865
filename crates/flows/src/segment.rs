//! The flow segment writer: [`FlowBatch`]es in, time-partitioned Parquet segments out.
//!
//! Contract:
//! - Segments live at `<root>/YYYY/MM/DD/HH/<start>-<end>.parquet`, partitioned by **receive
//!   time** (the writer's clock when the flows arrived, UTC): `<start>` and `<end>` are the Unix
//!   milliseconds of the first arrival and of the cut (or flush), and the hour directory is that of
//!   `<start>`. Names are unique and sort in time order (a segment's start is after the previous
//!   segment's end, also across restarts). The flows' own times are in `start_time`/`end_time`
//!   with min/max statistics, and in the footer keys `pharos.min_end_ms` / `pharos.max_end_ms`.
//! - A file under a final `*.parquet` name is always complete: it is written as
//!   `.<name>.tmp` in the same directory, fsynced, renamed, and the directory fsynced. Temp files
//!   left by a crash are deleted by [`SegmentWriter::open`].
//! - Crash safety by short segments: while flows arrive, the open segment is cut every half
//!   [`SegmentConfig::segment`] (1 s by default) and handed to the encoder threads, so that it is
//!   durable within `segment` while they keep up: a SIGKILL loses at most about that long of
//!   received flows (plus what the encoders are behind, at most the memory budget's worth).
//!   When they fall behind beyond [`SegmentConfig::memory_budget`], flows are spilled to disk
//!   (module `spill`): closed spill files survive a crash and are written after the next open.
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
//! - Encoding: the one-second segments the encoder threads write ([`SegmentWriter::tick`]) are
//!   uncompressed, plain-encoded, with row-group statistics (`fast_properties`), so that
//!   encoding keeps up with the collectors; merged minutes and synchronous flushes
//!   ([`SegmentWriter::flush`], imports) are zstd-compressed with page statistics on every column
//!   and dictionary encoding except on the high-cardinality counters and times
//!   (`writer_properties`). One row group per [`SegmentConfig::row_group_rows`] rows.
//! - Memory: flows held in memory (the open segment, segments being encoded, failed writes held
//!   for a retry; [`FLOW_BYTES`] a flow) stay within [`SegmentConfig::memory_budget`]; beyond it
//!   they are spilled to `<root>/.spill` and written as segments when the encoders are idle.
//!   [`SegmentWriter::push`] and [`SegmentWriter::tick`] only copy and hand over: the caller's
//!   thread never encodes a segment.
//! - Retention: segments whose end is older than [`SegmentConfig::retention`] are deleted, then
//!   the oldest until the total is within [`SegmentConfig::disk_budget`]; oldest first, always.
//! - A failed write (disk full, permissions, a file where a directory should be) is logged,
//!   counted in `pharos_flow_store_write_errors_total` and never stops the writer: the flows are
//!   held (in memory or in their spill file) and the write is retried every segment length until
//!   it succeeds. Flows are dropped only when they can be neither held within the budget nor
//!   spilled, counted in `pharos_flow_store_dropped_total` by [`DropReason`] (`disk_full`,
//!   `write_error`) and logged at most every 10 s.

use std::collections::{BTreeSet, VecDeque};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

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
    /// Most flows held in memory (besides [`SegmentConfig::memory_budget`]); beyond it flows are
    /// spilled. `usize::MAX` by default: the budget in bytes is the limit.
    pub max_held_flows: usize,
    /// Most bytes of flows held in memory (open segment, segments being encoded, failed writes
    /// held for a retry; [`FLOW_BYTES`] a flow). Beyond it flows are spilled to disk and written
    /// when the encoders catch up.
    pub memory_budget: u64,
    /// Threads encoding the one-second segments (at least 1).
    pub encode_threads: usize,
    /// Run first on every encoder and merge thread: the daemon lowers their scheduling
    /// priority there, so that under load the receiving threads get the CPU and the encoders
    /// catch up afterwards (within the memory budget, else from the spill).
    pub background_thread_init: Option<fn()>,
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
            max_held_flows: usize::MAX,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            encode_threads: default_encode_threads(),
            background_thread_init: None,
            row_group_rows: 128 * 1024,
            compact: true,
            compact_after: Duration::from_secs(10),
        }
    }
}

/// Default [`SegmentConfig::memory_budget`]: 256 MiB, about 2 million flows (2 s at 1 M flows/s).
pub const DEFAULT_MEMORY_BUDGET: u64 = 256 << 20;

/// Default [`SegmentConfig::encode_threads`]: one per core, at most 4.
pub fn default_encode_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4))
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

/// The process clock, Unix ms (`pharos_model::clock::now_ms`; kept here for the callers of the
/// segment writer).
pub use pharos_model::clock::now_ms;

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
        "Flows not archived, by reason (disk_full / write_error: neither written nor spilled; backlog: the archive writer's queue was full)"
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
        "Flows held in memory and not yet written (open segment, being encoded, held for a retry)"
    );
    describe_counter!(
        "pharos_flow_store_spilled_flows_total",
        "Flows spilled to disk because the memory budget was used up (written later)"
    );
    describe_gauge!(
        "pharos_flow_store_spilled_flows",
        "Flows spilled to disk and not yet written as segments"
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

/// Bytes one flow takes in memory (one row of a [`FlowBatch`], 27 columns): the unit in which the
/// writer accounts its [`SegmentConfig::memory_budget`].
pub const FLOW_BYTES: u64 = 136;

/// Where the rows of a segment still to be written are.
enum Source {
    /// In memory.
    Memory(Box<FlowBatch>),
    /// In a closed spill file (`<root>/.spill/<start>-<end>.spill`, uncompressed Parquet).
    Spill(PathBuf),
}

/// A segment to write: its receive range (assigned when it was cut, so names stay unique and
/// ordered whatever order the encoders finish in) and its rows.
struct Job {
    start: u64,
    end: u64,
    flows: u64,
    source: Source,
}

impl Job {
    /// Flows of this job held in memory.
    fn memory_flows(&self) -> u64 {
        match self.source {
            Source::Memory(_) => self.flows,
            Source::Spill(_) => 0,
        }
    }
}

/// A job an encoder thread finished.
struct Done {
    job: Job,
    result: Result<SegmentInfo, FlowStoreError>,
}

/// Writes `job` as a segment (fast encoding); a spill file is deleted once its segment is
/// durable (should the deletion fail, [`SegmentWriter::open`] deletes it: its start names a
/// segment already written).
fn encode_job(
    root: &Path,
    row_group_rows: usize,
    job: &Job,
    encoding: Encoding,
) -> Result<SegmentInfo, FlowStoreError> {
    match &job.source {
        Source::Memory(b) => write_segment(
            root,
            job.start,
            job.end,
            row_group_rows,
            Rows::Flows(b.as_ref()),
            encoding,
            None,
        ),
        Source::Spill(path) => {
            let input = SegmentInfo {
                path: path.clone(),
                start_ms: job.start,
                end_ms: job.end,
                bytes: 0,
            };
            let info = write_segment(
                root,
                job.start,
                job.end,
                row_group_rows,
                Rows::Segments(std::slice::from_ref(&input)),
                encoding,
                None,
            )?;
            delete_segment(
                path,
                "flow store: cannot delete a spill file already written",
            );
            Ok(info)
        }
    }
}

/// The encoder threads: jobs in on one shared queue, results out on another.
struct Pool {
    tx: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<Done>,
    threads: usize,
}

impl Pool {
    fn start(
        root: &Path,
        row_group_rows: usize,
        threads: usize,
        init: Option<fn()>,
    ) -> Result<Self, FlowStoreError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel();
        let rx = Arc::new(Mutex::new(rx));
        let threads = threads.max(1);
        for i in 0..threads {
            let (rx, done_tx, dir) = (rx.clone(), done_tx.clone(), root.to_path_buf());
            std::thread::Builder::new()
                .name(format!("flow-encode-{i}"))
                .spawn(move || {
                    if let Some(init) = init {
                        init();
                    }
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        // A panic becomes a failed write (retried), so that the writer
                        // never waits for a result that cannot come.
                        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            encode_job(&dir, row_group_rows, &job, Encoding::Fast)
                        }))
                        .unwrap_or_else(|_| {
                            Err(FlowStoreError::Io {
                                what: "an encoder thread panicked writing under",
                                path: dir.clone(),
                                source: io::Error::other("panic"),
                            })
                        });
                        if done_tx.send(Done { job, result }).is_err() {
                            return;
                        }
                    }
                })
                .map_err(io_err("cannot start an encoder thread for", root))?;
        }
        Ok(Self {
            tx: Some(tx),
            done,
            threads,
        })
    }
}

/// Why flows were dropped (the `reason` label of `pharos_flow_store_dropped_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The disk (or the quota) is full: the flows could neither be written nor spilled.
    DiskFull,
    /// Another write error (I/O error, permissions) while neither writing nor spilling worked.
    WriteError,
    /// The writer's input queue was full (counted by the flow stage, not the writer).
    Backlog,
}

impl DropReason {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::DiskFull => "disk_full",
            DropReason::WriteError => "write_error",
            DropReason::Backlog => "backlog",
        }
    }

    /// `disk_full` when `e` (or a cause of it) is an out-of-space or quota error.
    fn of(e: &(dyn std::error::Error + 'static)) -> Self {
        let mut cur = Some(e);
        while let Some(e) = cur {
            if let Some(io) = e.downcast_ref::<io::Error>()
                && (matches!(
                    io.kind(),
                    io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
                ) || matches!(io.raw_os_error(), Some(28 | 122)))
            {
                return DropReason::DiskFull;
            }
            cur = e.source();
        }
        DropReason::WriteError
    }
}

/// How often a loss or the start of a spill is logged at most.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Writes flows into short Parquet segments (see the module doc). Not thread-safe by design: one
/// writer per store directory, driven by one thread ([`push`] and [`tick`] only copy and hand
/// over; the encoding runs on [`SegmentConfig::encode_threads`] threads of its own).
///
/// [`push`]: SegmentWriter::push
/// [`tick`]: SegmentWriter::tick
pub struct SegmentWriter {
    cfg: SegmentConfig,
    /// Flows received and not yet cut into a segment (the open segment).
    pending: FlowBatch,
    /// Arrival time of the first pending flow.
    pending_since: Option<u64>,
    /// End of the last segment cut (names stay unique and ordered).
    last_end: u64,
    /// Finished segments, oldest first.
    segments: VecDeque<SegmentInfo>,
    total_bytes: u64,
    /// Whether the last write failed (logs once per failure streak).
    failing: bool,
    /// Failed writes since open (also in `pharos_flow_store_write_errors_total`).
    write_errors: u64,
    /// Flows dropped since open (also in `pharos_flow_store_dropped_total`), in all and by
    /// reason (`disk_full`, `write_error`).
    dropped: u64,
    dropped_by: [u64; 2],
    /// Failed merges since open (also in `pharos_flow_store_compaction_errors_total`).
    compaction_errors: u64,
    before_rename: Option<BeforeRename>,
    /// The merge in progress, if any.
    compaction: Option<Compaction>,
    /// Minutes before this one (Unix ms / 60 000) need no merge.
    compacted_below: u64,
    /// No merge starts before this time (Unix ms): back-off after a failed merge.
    compact_retry_at: u64,
    /// The encoder threads.
    pool: Pool,
    /// Jobs handed to the encoders and not yet back; their flows held in memory.
    in_flight_jobs: usize,
    in_flight_flows: u64,
    /// Jobs whose write failed, retried at `retry_at`; their flows held in memory.
    retry: VecDeque<Job>,
    retry_flows: u64,
    retry_at: u64,
    /// Starts of the cut segments not yet written (in flight, retried, spilled): their minute is
    /// not merged yet.
    unwritten: BTreeSet<u64>,
    /// The spill file being appended to, if the writer is behind.
    spill: Option<spill::OpenSpill>,
    /// Closed spill files not yet written as segments, oldest first.
    spill_queue: VecDeque<Job>,
    spill_flows: u64,
    /// No spill is tried before this time after a failed one (Unix ms), and why it failed.
    spill_retry_at: u64,
    spill_failure: DropReason,
    /// Why the last segment write failed.
    write_failure: DropReason,
    /// Injected spill failure (tests).
    spill_fault: Option<io::ErrorKind>,
    /// Rate limit of the loss and spill logs: flows dropped since the last log line.
    drop_log: (Option<std::time::Instant>, u64),
    spill_log: Option<std::time::Instant>,
}

impl SegmentWriter {
    /// Opens the store under `cfg.root` (created if missing): deletes temp files and superseded
    /// merge inputs a crash left, indexes the finished segments for retention, adopts the spill
    /// files a stop or crash left (written as segments by the next ticks; one whose segment exists
    /// already is deleted) and starts the encoder threads.
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
        let mut last_end = segments.iter().map(|s| s.end_ms).max().unwrap_or(0);
        let written: BTreeSet<u64> = segments.iter().map(|s| s.start_ms).collect();
        let mut spill_queue = VecDeque::new();
        let mut unwritten = BTreeSet::new();
        let mut spill_flows = 0;
        for f in spill::adopt(&spill::dir(&cfg.root), &written) {
            last_end = last_end.max(f.end);
            unwritten.insert(f.start);
            spill_flows += f.flows;
            spill_queue.push_back(Job {
                start: f.start,
                end: f.end,
                flows: f.flows,
                source: Source::Spill(f.path),
            });
        }
        if !spill_queue.is_empty() {
            tracing::info!(
                files = spill_queue.len(),
                flows = spill_flows,
                "flow store: writing the flows spilled before the last stop"
            );
        }
        let pool = Pool::start(
            &cfg.root,
            cfg.row_group_rows,
            cfg.encode_threads,
            cfg.background_thread_init,
        )?;
        metrics::gauge!("pharos_flow_store_disk_bytes").set(total_bytes as f64);
        metrics::gauge!("pharos_flow_store_segments").set(segments.len() as f64);
        metrics::gauge!("pharos_flow_store_spilled_flows").set(spill_flows as f64);
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
            dropped_by: [0; 2],
            compaction_errors: 0,
            before_rename: None,
            compaction: None,
            compacted_below: 0,
            compact_retry_at: 0,
            pool,
            in_flight_jobs: 0,
            in_flight_flows: 0,
            retry: VecDeque::new(),
            retry_flows: 0,
            retry_at: 0,
            unwritten,
            spill: None,
            spill_queue,
            spill_flows,
            spill_retry_at: 0,
            spill_failure: DropReason::WriteError,
            write_failure: DropReason::WriteError,
            spill_fault: None,
            drop_log: (None, 0),
            spill_log: None,
        })
    }

    /// Installs a hook called with the fsynced temp file just before it is renamed (for tests of
    /// atomic appearance; only the synchronous [`flush`](SegmentWriter::flush) calls it).
    pub fn set_before_rename(&mut self, f: impl FnMut(&Path) + Send + 'static) {
        self.before_rename = Some(Box::new(f));
    }

    /// Makes every later spill write fail with `kind` (`None`: spill normally again). For tests
    /// of the loss path: a full disk cannot be made on demand.
    #[doc(hidden)]
    pub fn inject_spill_error(&mut self, kind: Option<io::ErrorKind>) {
        self.spill_fault = kind;
    }

    /// Flows received and held in memory, not yet durable: the open segment, segments being
    /// encoded and failed writes held for a retry.
    pub fn pending(&self) -> usize {
        self.pending.len() + (self.in_flight_flows + self.retry_flows) as usize
    }

    /// Flows spilled to disk and not yet written as segments.
    pub fn spilled(&self) -> u64 {
        self.spill_flows
    }

    /// Bytes of flows held in memory ([`pending`](SegmentWriter::pending) × [`FLOW_BYTES`]).
    pub fn memory_bytes(&self) -> u64 {
        self.pending() as u64 * FLOW_BYTES
    }

    /// Failed segment writes since open.
    pub fn write_errors(&self) -> u64 {
        self.write_errors
    }

    /// Flows dropped since open (disk full or failing: neither written nor spilled).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Flows dropped since open for `reason` (`Backlog` is counted by the flow stage: 0 here).
    pub fn dropped_for(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::DiskFull => self.dropped_by[0],
            DropReason::WriteError => self.dropped_by[1],
            DropReason::Backlog => 0,
        }
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

    /// Takes the flows of `batch`, received at `now` (Unix ms): into memory while the flows held
    /// there stay within [`SegmentConfig::memory_budget`] (and [`SegmentConfig::max_held_flows`]),
    /// else appended to a spill file (and, while a spill file is open, every flow goes there, so
    /// that receive ranges stay in order). Dropped, counted and logged only when spilling fails.
    pub fn push(&mut self, batch: &FlowBatch, now: u64) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len();
        if self.spill.is_none() {
            let held = self.pending() + n;
            let fits = held as u64 * FLOW_BYTES <= self.cfg.memory_budget
                && held <= self.cfg.max_held_flows;
            if fits {
                self.pending.extend_from(batch);
                self.pending_since.get_or_insert(now);
                metrics::gauge!("pharos_flow_store_pending_flows").set(self.pending() as f64);
                return;
            }
        }
        self.spill_push(batch, now);
    }

    /// Appends `batch` to the open spill file (opening one, with the pending flows first, when
    /// none is open); on failure drops the batch and the spill file's flows.
    fn spill_push(&mut self, batch: &FlowBatch, now: u64) {
        if now < self.spill_retry_at {
            self.drop_flows(batch.len() as u64, self.spill_failure);
            return;
        }
        if self.spill.is_none() {
            let start = self
                .pending_since
                .unwrap_or(now)
                .max(self.last_end.saturating_add(1));
            match spill::OpenSpill::create(&spill::dir(&self.cfg.root), start, now) {
                Ok(s) => self.spill = Some(s),
                Err(e) => {
                    self.spill_failed(&e, batch.len() as u64, now);
                    return;
                }
            }
            if self.spill_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
                self.spill_log = Some(std::time::Instant::now());
                tracing::warn!(held = self.pending(), budget_bytes = self.cfg.memory_budget,
                    dir = %spill::dir(&self.cfg.root).display(),
                    "flow store: the segment encoders are behind; spilling flows to disk (written when they catch up)");
            }
            if !self.pending.is_empty() {
                let p = std::mem::take(&mut self.pending);
                let since = self.pending_since.take();
                if !self.spill_append(&p, now) {
                    // Nothing was spilled: the pending flows stay in memory, the batch is lost.
                    self.pending = p;
                    self.pending_since = since;
                    self.drop_flows(batch.len() as u64, self.spill_failure);
                    return;
                }
            }
        }
        if !self.spill_append(batch, now) {
            self.drop_flows(batch.len() as u64, self.spill_failure);
        }
        metrics::gauge!("pharos_flow_store_pending_flows").set(self.pending() as f64);
    }

    /// Appends `b` to the open spill file. On failure the file is deleted, the flows already in
    /// it are counted as dropped, the failure is logged and false returned (`b` is the
    /// caller's to count).
    fn spill_append(&mut self, b: &FlowBatch, now: u64) -> bool {
        let Some(s) = self.spill.as_mut() else {
            return false;
        };
        let r = match self.spill_fault {
            Some(kind) => Err(FlowStoreError::Io {
                what: "cannot write (injected fault)",
                path: s.path().to_path_buf(),
                source: io::Error::from(kind),
            }),
            None => s.append(b),
        };
        match r {
            Ok(()) => {
                self.spill_flows += b.len() as u64;
                metrics::counter!("pharos_flow_store_spilled_flows_total")
                    .increment(b.len() as u64);
                metrics::gauge!("pharos_flow_store_spilled_flows").set(self.spill_flows as f64);
                true
            }
            Err(e) => {
                // The file is unusable: its flows are lost.
                let s = self.spill.take().expect("open spill");
                let in_file = s.flows();
                s.discard();
                self.spill_flows -= in_file;
                metrics::gauge!("pharos_flow_store_spilled_flows").set(self.spill_flows as f64);
                self.spill_failed(&e, in_file, now);
                false
            }
        }
    }

    /// Counts and logs a failed spill of `flows` flows; no spill is tried for a segment's time.
    fn spill_failed(&mut self, e: &FlowStoreError, flows: u64, now: u64) {
        let reason = DropReason::of(e);
        self.spill_failure = reason;
        self.spill_retry_at = now + self.cfg.segment.as_millis() as u64;
        tracing::error!(error = %e, reason = reason.label(),
            "flow store: cannot spill flows to disk while the segment writes are behind; dropping flows");
        self.drop_flows(flows, reason);
    }

    /// Counts `n` dropped flows; logs at most every [`LOG_EVERY`].
    fn drop_flows(&mut self, n: u64, reason: DropReason) {
        if n == 0 {
            return;
        }
        self.dropped += n;
        match reason {
            DropReason::DiskFull => self.dropped_by[0] += n,
            DropReason::WriteError | DropReason::Backlog => self.dropped_by[1] += n,
        }
        metrics::counter!("pharos_flow_store_dropped_total", "reason" => reason.label())
            .increment(n);
        self.drop_log.1 += n;
        if self.drop_log.0.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            tracing::error!(
                dropped = self.drop_log.1,
                reason = reason.label(),
                "flow store: flows dropped (neither written nor spilled: free disk space or fix the data directory)"
            );
            self.drop_log = (Some(std::time::Instant::now()), 0);
        }
    }

    /// Takes the encoders' results, cuts the open segment (or closes the spill file) when it is
    /// half [`SegmentConfig::segment`] old (the other half is for its encoding) and hands it to
    /// the encoders, retries failed writes every
    /// segment length, feeds spill files to idle encoders, takes the result of a finished merge,
    /// applies retention and starts merging the next finished minute on a background thread.
    /// Call at least every `segment`.
    pub fn tick(&mut self, now: u64) {
        self.collect(now, false);
        // Cut at half the segment length: the cut segment is then encoded and durable within
        // the length while the encoders keep up, so a crash loses at most about that long.
        let seg_ms = (self.cfg.segment.as_millis() as u64 / 2).max(1);
        if let Some(since) = self.pending_since
            && now.saturating_sub(since) >= seg_ms
        {
            self.cut_pending(now);
        }
        if self
            .spill
            .as_ref()
            .is_some_and(|s| now.saturating_sub(s.since()) >= seg_ms)
        {
            self.close_spill(now);
        }
        if !self.retry.is_empty() && now >= self.retry_at {
            while let Some(j) = self.retry.pop_front() {
                self.retry_flows -= j.memory_flows();
                self.submit(j);
            }
        }
        while self.in_flight_jobs < self.pool.threads
            && self.retry.is_empty()
            && let Some(j) = self.spill_queue.pop_front()
        {
            self.submit(j);
        }
        self.tick_compaction(now);
    }

    /// Hands `job` to the encoder threads.
    fn submit(&mut self, job: Job) {
        self.in_flight_jobs += 1;
        self.in_flight_flows += job.memory_flows();
        let Some(tx) = &self.pool.tx else {
            unreachable!("the pool lives as long as the writer");
        };
        if let Err(mpsc::SendError(job)) = tx.send(job) {
            // Every encoder thread is gone (a panic): write here instead.
            let result = encode_job(
                &self.cfg.root,
                self.cfg.row_group_rows,
                &job,
                Encoding::Fast,
            );
            self.finish_job(Done { job, result }, now_ms());
        }
    }

    /// Waits until the encoders have written every segment handed to them and records the
    /// outcomes (what [`tick`](SegmentWriter::tick) does without waiting). For tests and tools
    /// that need the segments on disk at a known point.
    pub fn wait_encoders(&mut self, now: u64) {
        self.collect(now, true);
    }

    /// Takes the encoders' results; with `wait`, until none is in flight.
    fn collect(&mut self, now: u64, wait: bool) {
        loop {
            let done = if wait && self.in_flight_jobs > 0 {
                match self.pool.done.recv() {
                    Ok(d) => d,
                    Err(_) => break,
                }
            } else {
                match self.pool.done.try_recv() {
                    Ok(d) => d,
                    Err(_) => break,
                }
            };
            self.finish_job(done, now);
        }
    }

    /// Records the outcome of one encoder job.
    fn finish_job(&mut self, done: Done, now: u64) {
        let Done { job, result } = done;
        self.in_flight_jobs = self.in_flight_jobs.saturating_sub(1);
        self.in_flight_flows -= job.memory_flows();
        match result {
            Ok(info) => {
                if let Source::Spill(_) = job.source {
                    self.spill_flows -= job.flows;
                    metrics::gauge!("pharos_flow_store_spilled_flows").set(self.spill_flows as f64);
                }
                self.unwritten.remove(&job.start);
                self.record_written(info, job.flows);
            }
            Err(e) => {
                self.record_write_error(&e, job.flows);
                self.retry_flows += job.memory_flows();
                self.retry_at = now + self.cfg.segment.as_millis() as u64;
                self.retry.push_back(job);
            }
        }
        metrics::gauge!("pharos_flow_store_pending_flows").set(self.pending() as f64);
    }

    /// Cuts the open segment into a job for the encoders.
    fn cut_pending(&mut self, now: u64) {
        let Some(since) = self.pending_since.take() else {
            return;
        };
        let start = since.max(self.last_end.saturating_add(1));
        let end = now.max(start);
        self.last_end = end;
        let b = std::mem::take(&mut self.pending);
        self.unwritten.insert(start);
        self.submit(Job {
            start,
            end,
            flows: b.len() as u64,
            source: Source::Memory(Box::new(b)),
        });
    }

    /// Closes the open spill file into the spill queue (its flows are lost if that fails).
    fn close_spill(&mut self, now: u64) {
        let Some(s) = self.spill.take() else {
            return;
        };
        let flows = s.flows();
        match s.close(now) {
            Ok((path, start, end)) => {
                self.last_end = self.last_end.max(end);
                self.unwritten.insert(start);
                self.spill_queue.push_back(Job {
                    start,
                    end,
                    flows,
                    source: Source::Spill(path),
                });
            }
            Err(e) => {
                self.spill_flows -= flows;
                self.spill_failed(&e, flows, now);
            }
        }
    }

    /// Takes a finished merge, applies retention, starts the next merge.
    fn tick_compaction(&mut self, now: u64) {
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
            let init = self.cfg.background_thread_init;
            let spawned = std::thread::Builder::new()
                .name("flow-compact".into())
                .spawn(move || {
                    if let Some(init) = init {
                        init();
                    }
                    merge_segments(&root, &job_inputs, rows)
                });
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
    /// the grace after it are over and none of its flows is still unwritten (pending, being
    /// encoded, held for a retry or spilled).
    fn due_minute(&mut self, now: u64) -> Option<(u64, Vec<SegmentInfo>)> {
        if !self.cfg.compact {
            return None;
        }
        let after = self.cfg.compact_after.as_millis() as u64;
        let first_unwritten = [
            self.pending_since,
            self.spill.as_ref().map(|s| s.start()),
            self.unwritten.first().copied(),
        ]
        .into_iter()
        .flatten()
        .min();
        let from = self
            .segments
            .partition_point(|s| s.start_ms / 60_000 < self.compacted_below);
        let mut i = from;
        while i < self.segments.len() {
            let minute = self.segments[i].start_ms / 60_000;
            let minute_end = (minute + 1).saturating_mul(60_000);
            let open = first_unwritten.is_some_and(|p| p < minute_end);
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

    /// Indexes a segment just written and counts it.
    fn record_written(&mut self, info: SegmentInfo, flows: u64) {
        if self.failing {
            tracing::info!(path = %info.path.display(), "flow store: writing again");
            self.failing = false;
            metrics::gauge!("pharos_flow_store_failing").set(0.0);
        }
        metrics::counter!("pharos_flow_store_segments_written_total").increment(1);
        metrics::counter!("pharos_flow_store_flows_written_total").increment(flows);
        metrics::counter!("pharos_flow_store_bytes_written_total").increment(info.bytes);
        // A write held by failures or spilled may land in a minute already passed over.
        self.compacted_below = self.compacted_below.min(info.start_ms / 60_000);
        self.total_bytes += info.bytes;
        let at = self.segments.partition_point(|s| s.range() < info.range());
        self.segments.insert(at, info);
        self.update_gauges();
    }

    /// Counts a failed write and logs the first of a failure streak.
    fn record_write_error(&mut self, e: &FlowStoreError, flows: u64) {
        self.write_errors += 1;
        self.write_failure = DropReason::of(e);
        metrics::counter!("pharos_flow_store_write_errors_total").increment(1);
        if !self.failing {
            tracing::error!(error = %e, flows,
                "flow store: cannot write a segment; holding its flows (in memory or spilled) and retrying");
            self.failing = true;
            metrics::gauge!("pharos_flow_store_failing").set(1.0);
        }
    }

    /// Writes every flow not yet written now, on this thread (compact encoding) after waiting
    /// for the encoders: failed writes held for a retry, spill files, then the pending flows as
    /// one segment, which is returned. On failure the flows stay where they were (the next
    /// flush or tick retries) and the error is logged once per failure streak and counted.
    pub fn flush(&mut self, now: u64) -> Result<Option<SegmentInfo>, FlowStoreError> {
        self.collect(now, true);
        self.close_spill(now);
        let mut queue: VecDeque<Job> = self.retry.drain(..).collect();
        self.retry_flows = 0;
        queue.extend(self.spill_queue.drain(..));
        while let Some(job) = queue.pop_front() {
            match encode_job(
                &self.cfg.root,
                self.cfg.row_group_rows,
                &job,
                Encoding::Compact,
            ) {
                Ok(info) => {
                    if let Source::Spill(_) = job.source {
                        self.spill_flows -= job.flows;
                    }
                    self.unwritten.remove(&job.start);
                    self.record_written(info, job.flows);
                }
                Err(e) => {
                    self.record_write_error(&e, job.flows);
                    for j in std::iter::once(job).chain(queue.drain(..)) {
                        match j.source {
                            Source::Memory(_) => {
                                self.retry_flows += j.flows;
                                self.retry.push_back(j);
                            }
                            Source::Spill(_) => self.spill_queue.push_back(j),
                        }
                    }
                    return Err(e);
                }
            }
        }
        metrics::gauge!("pharos_flow_store_spilled_flows").set(self.spill_flows as f64);
        let Some(since) = self.pending_since else {
            return Ok(None);
        };
        let start = since.max(self.last_end.saturating_add(1));
        let end = now.max(start);
        let written = write_segment(
            &self.cfg.root,
            start,
            end,
            self.cfg.row_group_rows,
            Rows::Flows(&self.pending),
            Encoding::Compact,
            self.before_rename.as_mut(),
        );
        match written {
            Ok(info) => {
                let flows = self.pending.len() as u64;
                self.pending.clear();
                self.pending_since = None;
                self.last_end = end;
                metrics::gauge!("pharos_flow_store_pending_flows").set(self.pending() as f64);
                self.record_written(info.clone(), flows);
                Ok(Some(info))
            }
            Err(e) => {
                self.record_write_error(&e, self.pending.len() as u64);
                Err(e)
            }
        }
    }

    /// At a clean stop: cuts the open segment, closes the spill file and writes every flow not
    /// yet written on the encoder threads (failed writes retried once a second, at most
    /// `patience` long), then waits for a merge in progress. Flows still unwritten after that
    /// are reported: spilled ones stay in the spill directory and are written after the next
    /// start; those in memory are counted as dropped (`write_error` or `disk_full`).
    pub fn close(&mut self, patience: Duration) {
        let deadline = std::time::Instant::now() + patience;
        loop {
            let now = now_ms();
            self.collect(now, false);
            self.cut_pending(now);
            self.close_spill(now);
            while let Some(j) = self.retry.pop_front() {
                self.retry_flows -= j.memory_flows();
                self.submit(j);
            }
            while let Some(j) = self.spill_queue.pop_front() {
                self.submit(j);
            }
            self.collect(now, true);
            if self.retry.is_empty() || std::time::Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        let lost = self.retry_flows;
        if lost > 0 {
            let reason = self.write_failure;
            tracing::error!(
                flows = lost,
                "flow store: flows in memory could not be written at shutdown"
            );
            self.drop_flows(lost, reason);
        }
        if self.spill_flows > 0 {
            tracing::warn!(flows = self.spill_flows, dir = %spill::dir(&self.cfg.root).display(),
                "flow store: spilled flows could not be written at shutdown; they are written after the next start");
        }
        self.wait_compaction(now_ms());
    }

    fn update_gauges(&self) {
        metrics::gauge!("pharos_flow_store_disk_bytes").set(self.total_bytes as f64);
        metrics::gauge!("pharos_flow_store_segments").set(self.segments.len() as f64);
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

mod spill;
#[cfg(test)]
mod tests;
