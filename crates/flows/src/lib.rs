//! The flow archive: the Parquet archive of flows ([`schema`], [`segment`]), the query language
//! over stored flows ([`filter`]), the query engine ([`query`]) and exports ([`export`]).
//! docs/flows.md describes the archive layout and columns. A crate of its own, so that what reads
//! messages (the store, emission) does not compile arrow and parquet.

#![forbid(unsafe_code)]

mod config;
pub mod export;
pub mod filter;
pub mod query;
pub mod schema;
pub mod segment;

pub use config::{FlowStoreConfig, RENAMED_KEYS};

/// The flow archive's root under a data directory: `<data_dir>/flows`.
pub fn archive_root(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("flows")
}
