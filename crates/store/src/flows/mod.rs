//! The flow store: the query language over stored flows (the Parquet archive and the query engine
//! come next).

pub mod filter;
