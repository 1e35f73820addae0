//! Tantivy search index for storefront.
//!
//! This crate knows nothing of RocksDB or HTTP: the server feeds it plain [`ProductDoc`]s and
//! gets product ids back. [`ProductIndex`] owns the schema, one writer and a reader; each
//! commit records the last applied changelog sequence as its payload, so a restarted indexer
//! resumes exactly where the last commit left off.
#![warn(missing_docs)]

pub mod error;
pub mod facets;
pub mod index;
pub mod relevance;
pub mod schema;
pub mod tier;

pub use error::{Error, Result};
pub use index::{ProductIndex, SearchHit, SearchRequest, SearchResults, SortOrder, Spread};
pub use schema::ProductDoc;
