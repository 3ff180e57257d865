//! The flow store: the Parquet archive of flows ([`schema`], [`segment`]) and the query language
//! over stored flows ([`filter`]). docs/flows.md describes the archive layout and columns.

pub mod filter;
pub mod schema;
pub mod segment;
