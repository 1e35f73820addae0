//! Changelog retention. The changelog feeds the search indexer and the CDN purger, and every
//! write adds to it (each stock signal too), so without retention it grows for as long as the
//! shop runs. Entries go once every registered consumer has applied them and they have left
//! the retained tail; a consumer that falls behind what was deleted resynchronises from the
//! records (the indexer rebuilds, the purger skips ahead).

use std::sync::Arc;
use std::time::Duration;

use storefront_storage::Store;

use super::Consumers;
use crate::service::{blocking, ServiceError};
use crate::worker::{Progress, Worker};

/// Settings of changelog retention.
#[derive(Debug, Clone, Copy)]
pub struct RetentionSettings {
    /// Newest entries kept even when every consumer applied them.
    pub retain_entries: u64,
    /// How often retention runs.
    pub interval: Duration,
}

/// Deletes what every consumer has applied, keeping the newest `retain` entries, and returns
/// the sequence the changelog is now truncated through.
pub fn truncate_applied(store: &Store, consumers: &Consumers, retain: u64) -> Result<u64, ServiceError> {
    let through = consumers
        .min_applied()?
        .min(store.last_changelog_seq().saturating_sub(retain));
    Ok(store.truncate_changelog(through)?)
}

/// The retention worker.
pub struct Retention {
    store: Store,
    consumers: Arc<Consumers>,
    settings: RetentionSettings,
}

impl Retention {
    /// Retention over `store`, waiting for every consumer in `consumers`.
    pub fn new(store: Store, consumers: Arc<Consumers>, settings: RetentionSettings) -> Retention {
        Retention {
            store,
            consumers,
            settings,
        }
    }
}

#[async_trait::async_trait]
impl Worker for Retention {
    async fn try_execute(&self) -> Result<Progress, ServiceError> {
        let (store, consumers, retain) = (self.store.clone(), self.consumers.clone(), self.settings.retain_entries);
        let through = blocking(move || truncate_applied(&store, &consumers, retain)).await?;
        tracing::debug!(through, "changelog truncated");
        Ok(Progress::Idle)
    }
}
