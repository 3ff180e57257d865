//! Spill files: where the segment writer puts flows while its encoders are behind and the
//! memory budget is used up, so that it catches up later instead of dropping.
//!
//! Contract:
//! - A spill file holds the flows of one stretch of receive time, in arrival order, as
//!   uncompressed Parquet of the flow schema (no dictionaries, no statistics), written in row
//!   groups of [`SPILL_CHUNK`] flows buffered in memory (beyond the writer's budget: at most
//!   9 MiB). It lives in `<root>/.spill/` (never listed as a segment: queries
//!   and retention ignore it) as `.<start>.spill.tmp` while open and `<start>-<end>.spill` once
//!   closed and fsynced; `<start>-<end>` is the receive range of the segment it becomes.
//! - At open, a closed spill file whose `<start>` is the start of a segment already on disk was
//!   written before a crash deleted it, and is deleted; the others are adopted, oldest first. An
//!   open (`.tmp`) file has no footer and cannot be read: it is deleted and its flows (at most
//!   one segment length of arrivals) are lost, as the open segment is on a crash.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use parquet::arrow::ArrowWriter;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use pharos_model::flow::FlowBatch;

use super::{FlowStoreError, io_err};
use crate::schema::{flow_schema, to_record_batch};

/// Flows buffered before they are written to the spill file as one row group: appending the
/// collectors' datagram-sized batches one by one would cost more than the encoding it avoids.
const SPILL_CHUNK: usize = 64 * 1024;

/// The spill directory of the archive under `root`.
pub(super) fn dir(root: &Path) -> PathBuf {
    root.join(".spill")
}

/// A spill file being appended to.
pub(super) struct OpenSpill {
    tmp: PathBuf,
    dir: PathBuf,
    start: u64,
    since: u64,
    /// Flows written to the file (the buffer not included).
    written: u64,
    buf: FlowBatch,
    w: ArrowWriter<File>,
}

impl OpenSpill {
    /// Creates `.<start>.spill.tmp` in `dir` (created if missing); `now` is when it opened.
    pub(super) fn create(dir: &Path, start: u64, now: u64) -> Result<Self, FlowStoreError> {
        fs::create_dir_all(dir).map_err(io_err("cannot create", dir))?;
        let tmp = dir.join(format!(".{start}.spill.tmp"));
        let f = File::create(&tmp).map_err(io_err("cannot create", &tmp))?;
        let props = WriterProperties::builder()
            .set_statistics_enabled(EnabledStatistics::None)
            .set_dictionary_enabled(false)
            .build();
        let w = ArrowWriter::try_new(f, flow_schema(), Some(props)).map_err(|source| {
            FlowStoreError::Parquet {
                path: tmp.clone(),
                source,
            }
        })?;
        Ok(Self {
            tmp,
            dir: dir.to_path_buf(),
            start,
            since: now,
            written: 0,
            buf: FlowBatch::new(),
            w,
        })
    }

    /// The file's path.
    pub(super) fn path(&self) -> &Path {
        &self.tmp
    }

    /// The start of its receive range.
    pub(super) fn start(&self) -> u64 {
        self.start
    }

    /// When it was opened (Unix ms).
    pub(super) fn since(&self) -> u64 {
        self.since
    }

    /// Flows appended (buffered or written).
    pub(super) fn flows(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    /// Appends `b` (buffered; written once [`SPILL_CHUNK`] flows are buffered).
    pub(super) fn append(&mut self, b: &FlowBatch) -> Result<(), FlowStoreError> {
        self.buf.extend_from(b);
        if self.buf.len() >= SPILL_CHUNK {
            self.write_buf()?;
        }
        Ok(())
    }

    fn write_buf(&mut self) -> Result<(), FlowStoreError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.w
            .write(&to_record_batch(&self.buf))
            .and_then(|()| self.w.flush())
            .map_err(|source| FlowStoreError::Parquet {
                path: self.tmp.clone(),
                source,
            })?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Finishes, fsyncs and renames the file to `<start>-<end>.spill` (`end` = `now`, at least
    /// `start`); returns its path and range. On error the file is deleted.
    pub(super) fn close(mut self, now: u64) -> Result<(PathBuf, u64, u64), FlowStoreError> {
        let (start, end) = (self.start, now.max(self.start));
        if let Err(e) = self.write_buf() {
            self.discard();
            return Err(e);
        }
        let tmp = self.tmp.clone();
        let path = self.dir.join(format!("{start}-{end}.spill"));
        let r = self
            .w
            .into_inner()
            .map_err(|source| FlowStoreError::Parquet {
                path: tmp.clone(),
                source,
            })
            .and_then(|f| f.sync_all().map_err(io_err("cannot fsync", &tmp)))
            .and_then(|()| fs::rename(&tmp, &path).map_err(io_err("cannot rename into", &path)));
        match r {
            Ok(()) => Ok((path, start, end)),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Deletes the file (after a failed append).
    pub(super) fn discard(self) {
        let tmp = self.tmp.clone();
        drop(self.w);
        let _ = fs::remove_file(tmp);
    }
}

/// A closed spill file found at open.
pub(super) struct Adopted {
    pub(super) path: PathBuf,
    pub(super) start: u64,
    pub(super) end: u64,
    pub(super) flows: u64,
}

/// The closed spill files in `dir` still to be written, oldest first; deletes open ones and those
/// whose segment (by its start) is in `written` (see the module doc).
pub(super) fn adopt(dir: &Path, written: &BTreeSet<u64>) -> Vec<Adopted> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let path = e.path();
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with('.') && name.ends_with(".spill.tmp") {
            tracing::warn!(path = %path.display(),
                "flow store: deleting a spill file a crash left open (its flows, at most one segment length, are lost)");
            let _ = fs::remove_file(&path);
            continue;
        }
        let Some((start, end)) = name
            .strip_suffix(".spill")
            .and_then(|s| s.split_once('-'))
            .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
        else {
            continue;
        };
        if written.contains(&start) {
            tracing::info!(path = %path.display(), "flow store: deleting a spill file already written");
            let _ = fs::remove_file(&path);
            continue;
        }
        let flows = File::open(&path)
            .ok()
            .and_then(|f| {
                parquet::file::reader::SerializedFileReader::new(f)
                    .ok()
                    .map(|r| {
                        use parquet::file::reader::FileReader;
                        r.metadata().file_metadata().num_rows().max(0) as u64
                    })
            })
            .unwrap_or(0);
        out.push(Adopted {
            path,
            start,
            end,
            flows,
        });
    }
    out.sort_by_key(|a| (a.start, a.end));
    out
}
