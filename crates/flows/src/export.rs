//! A Parquet file of selected flows, in the archive's schema and with its writer settings, for
//! `pharos flows export --format parquet`.

use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::arrow::ArrowWriter;
use pharos_model::flow::FlowBatch;

use super::schema::{flow_schema, to_record_batch};
use super::segment::{FlowStoreError, writer_properties};

/// Rows per row group of an export.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Writes flows into one Parquet file (written in place: an export is not part of the archive).
pub struct ParquetExport {
    path: PathBuf,
    writer: ArrowWriter<File>,
    rows: u64,
}

impl ParquetExport {
    /// Creates (or truncates) `path`.
    pub fn create(path: &Path) -> Result<Self, FlowStoreError> {
        let io = |source| FlowStoreError::Io {
            what: "cannot create",
            path: path.to_path_buf(),
            source,
        };
        let f = File::create(path).map_err(io)?;
        let writer = ArrowWriter::try_new(
            f,
            flow_schema(),
            Some(writer_properties(ROW_GROUP_ROWS, Vec::new())),
        )
        .map_err(|source| FlowStoreError::Parquet {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            writer,
            rows: 0,
        })
    }

    /// Appends a batch.
    pub fn write(&mut self, b: &FlowBatch) -> std::io::Result<()> {
        self.writer
            .write(&to_record_batch(b))
            .map_err(|e| std::io::Error::other(format!("{}: {e}", self.path.display())))?;
        self.rows += b.len() as u64;
        Ok(())
    }

    /// Writes the footer and fsyncs; returns the rows written.
    pub fn finish(self) -> Result<u64, FlowStoreError> {
        let path = self.path;
        let f = self
            .writer
            .into_inner()
            .map_err(|source| FlowStoreError::Parquet {
                path: path.clone(),
                source,
            })?;
        f.sync_all().map_err(|source| FlowStoreError::Io {
            what: "cannot fsync",
            path,
            source,
        })?;
        Ok(self.rows)
    }
}
