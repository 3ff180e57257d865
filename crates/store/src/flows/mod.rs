//! The flow store: the Parquet archive of flows ([`schema`], [`segment`]), the query language
//! over stored flows ([`filter`]) and the query engine ([`query`]). docs/flows.md describes the
//! archive layout and columns.

pub mod export;
pub mod filter;
pub mod query;
pub mod schema;
pub mod segment;

/// The flow archive's root under a data directory: `<data_dir>/flows`.
pub fn archive_root(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("flows")
}
