//! The registry's errors: each names the input, the place and what to do.

use std::path::PathBuf;

/// What went wrong, where, and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read.
    #[error("{}: {source} (check the path and its permissions)", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The database refused an operation.
    #[error(
        "constituency database {}: {source} (is another process writing it, or the disk full?)",
        path.display()
    )]
    Db {
        /// The database file (`:memory:` for an in-memory registry).
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// The database was written by a newer Pharos.
    #[error(
        "constituency database {}: schema version {found}, this Pharos knows up to {known}: use a newer Pharos or another --db",
        path.display()
    )]
    Schema {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// An import file holds something invalid; nothing of it was imported.
    #[error("{file}:{line}:{column}: {message}")]
    Input {
        /// The file.
        file: String,
        /// Line (1-based).
        line: u64,
        /// Column (1-based, in characters).
        column: u64,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A value given by a caller (CLI flag, API field) is invalid.
    #[error("{what}: {message}")]
    Invalid {
        /// The field or flag.
        what: String,
        /// What is wrong and what is expected.
        message: String,
    },
}
