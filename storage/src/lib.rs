//! RocksDB storage engine for storefront.
//!
//! This crate owns everything that touches RocksDB: the column-family layout ([`cf`]), the
//! binary big-endian key encoding ([`keys`]), the rkyv record types ([`records`]) and the
//! [`Store`] handle with its atomic write transactions and the changelog.
//!
//! It must never depend on HTTP, tantivy or the server's domain types: the server converts
//! its domain values into these records at the service layer.
#![warn(missing_docs)]

pub mod cf;
pub mod coupons;
pub mod error;
pub mod keys;
pub mod listing;
mod migrate;
pub mod notifications;
pub mod orders;
pub mod reco;
pub mod records;
pub mod reviews;
pub mod shipping;
pub mod store;

pub use error::{Error, Result};
pub use records::{Owned, StoredRecord};
pub use store::{inspect, Batch, DirState, ListingPage, ListingScan, Store, StoreOptions, StoreStats, TimeSource, Txn};
