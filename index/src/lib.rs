//! Tantivy search index for storefront.
//!
//! This crate knows nothing of RocksDB or HTTP: the server feeds it plain documents and gets
//! product ids back. The Foundation only fixes the schema; querying, facets, typo tolerance
//! and live updates arrive with the search work.
#![warn(missing_docs)]

pub mod error;
pub mod schema;

pub use error::{Error, Result};
