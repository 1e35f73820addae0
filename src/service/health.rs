//! Readiness and statistics for the operations endpoints, so the HTTP layer never reads
//! storage or the index itself.

use std::sync::Arc;

use storefront_storage::Store;
pub use storefront_storage::StoreStats;

use super::cart::Carts;
use super::catalog::{CacheStats, Catalog};
use super::search::Search;
use super::{blocking, ServiceError};

/// What `/readyz` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// Documents in the search index.
    pub documents: u64,
    /// Changelog entries the index has not applied yet.
    pub changelog_lag: u64,
    /// The index has caught up with storage since the start.
    pub caught_up: bool,
}

/// The health service.
pub struct Health {
    store: Store,
    catalog: Arc<Catalog>,
    carts: Arc<Carts>,
    search: Arc<Search>,
}

impl Health {
    /// Health over the store, the catalog and cart caches and the search index.
    pub fn new(store: Store, catalog: Arc<Catalog>, carts: Arc<Carts>, search: Arc<Search>) -> Health {
        Health {
            store,
            catalog,
            carts,
            search,
        }
    }

    /// Checks that storage answers and reports the index's state; an error means not ready.
    pub async fn readiness(&self) -> Result<Readiness, ServiceError> {
        let (store, search) = (self.store.clone(), self.search.clone());
        blocking(move || {
            store.consumer_cursor("readiness_probe")?;
            Ok(Readiness {
                documents: search.index().num_docs(),
                changelog_lag: store.last_changelog_seq().saturating_sub(search.applied_seq()),
                caught_up: search.is_caught_up(),
            })
        })
        .await
    }

    /// The newest changelog sequence.
    pub fn last_changelog_seq(&self) -> u64 {
        self.store.last_changelog_seq()
    }

    /// Storage statistics (reads RocksDB properties: call off the async workers).
    pub fn store_stats(&self) -> StoreStats {
        self.store.stats()
    }

    /// Response cache statistics.
    pub fn cache_stats(&self) -> CacheStats {
        self.catalog.cache_stats()
    }

    /// Kept cart pages: (served, rendered, kept now).
    pub fn cart_page_stats(&self) -> (u64, u64, u64) {
        self.carts.page_stats()
    }
}
