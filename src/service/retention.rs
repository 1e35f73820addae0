//! Changelog retention. The changelog feeds the search indexer and the CDN purger, and every
//! write adds to it (each stock reservation too), so without retention it grows for as long as
//! the shop runs. Entries go once every consumer has applied them and they have left the
//! retained tail; a consumer that falls behind what was deleted resynchronises from the records
//! (the indexer rebuilds, the purger skips ahead).

use std::sync::Arc;
use std::time::Duration;

use storefront_storage::Store;
use tokio_util::sync::CancellationToken;

use super::search::Search;
use super::{blocking, purge, ServiceError};
use crate::config::StorageConfig;

/// Deletes what every consumer has applied, keeping the newest `retain` entries, and returns
/// the sequence the changelog is now truncated through.
pub fn truncate_applied(store: &Store, search: &Search, purger: bool, retain: u64) -> Result<u64, ServiceError> {
    let mut through = search.applied_seq();
    if purger {
        through = through.min(store.consumer_cursor(purge::CONSUMER)?);
    }
    through = through.min(store.last_changelog_seq().saturating_sub(retain));
    Ok(store.truncate_changelog(through)?)
}

/// Runs retention every `changelog_retention_interval_ms` until `cancel` fires.
pub async fn run(store: Store, search: Arc<Search>, purger: bool, config: StorageConfig, cancel: CancellationToken) {
    let every = Duration::from_millis(config.changelog_retention_interval_ms);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let (store, search) = (store.clone(), search.clone());
        let retain = config.changelog_retain_entries;
        match blocking(move || truncate_applied(&store, &search, purger, retain)).await {
            Ok(through) => tracing::debug!(through, "changelog truncated"),
            Err(e) => tracing::warn!(error = %e, "changelog retention failed; retrying later"),
        }
    }
}
