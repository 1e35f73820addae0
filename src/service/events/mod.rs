//! Events: what happens after a change is committed.
//!
//! Every write appends, in its own batch, a changelog entry (catalog changes, with their CDN
//! tags) or an outbox record (business events such as `low_stock`). Consumers tail them from
//! a durable cursor and are idempotent, so nothing is lost or applied twice by a crash:
//! - [`purge`]: the CDN purger, a changelog consumer;
//! - [`retention`]: deletes changelog entries every registered consumer has applied;
//! - [`outbox`]: what waits for delivery.
//!
//! A changelog consumer registers itself in [`Consumers`] when it is built; retention reads
//! that registry, so a new consumer can never have entries deleted under it. A consumer that
//! renders public pages (the search index, autocomplete) also registers in [`ReadModels`]: the
//! CDN purger purges a change only once every one of them shows it, so a page refetched
//! after the purge is never the old one.

pub mod outbox;
pub mod purge;
pub mod retention;

use std::sync::{Arc, RwLock};

use storefront_storage::Store;

use super::ServiceError;

/// A reader of the changelog that retention must wait for.
pub trait ChangelogConsumer: Send + Sync + 'static {
    /// A stable name, for logs.
    fn name(&self) -> &'static str;

    /// The highest changelog sequence the consumer has durably applied.
    fn applied_seq(&self) -> Result<u64, ServiceError>;
}

/// The registry of changelog consumers.
#[derive(Default)]
pub struct Consumers {
    // Written while the app is assembled, read by retention once per interval.
    list: RwLock<Vec<Arc<dyn ChangelogConsumer>>>,
}

impl Consumers {
    /// An empty registry.
    pub fn new() -> Consumers {
        Consumers::default()
    }

    /// Registers a consumer.
    pub fn register(&self, consumer: Arc<dyn ChangelogConsumer>) {
        self.list.write().unwrap_or_else(|p| p.into_inner()).push(consumer);
    }

    /// Names of the registered consumers.
    pub fn names(&self) -> Vec<&'static str> {
        self.list
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|c| c.name())
            .collect()
    }

    /// The lowest sequence every consumer has applied (`u64::MAX` with no consumers).
    pub fn min_applied(&self) -> Result<u64, ServiceError> {
        let list = self.list.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut min = u64::MAX;
        for consumer in list {
            min = min.min(consumer.applied_seq()?);
        }
        Ok(min)
    }
}

/// A read model public pages are rendered from.
pub trait ReadModel: Send + Sync + 'static {
    /// The highest changelog sequence whose change its pages show.
    fn published_seq(&self) -> u64;
}

/// The registry of read models.
#[derive(Default)]
pub struct ReadModels {
    list: RwLock<Vec<Arc<dyn ReadModel>>>,
}

impl ReadModels {
    /// An empty registry.
    pub fn new() -> ReadModels {
        ReadModels::default()
    }

    /// Registers a read model.
    pub fn register(&self, model: Arc<dyn ReadModel>) {
        self.list.write().unwrap_or_else(|p| p.into_inner()).push(model);
    }

    /// The highest sequence every read model shows (`u64::MAX` with none).
    pub fn published_seq(&self) -> u64 {
        self.list
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|m| m.published_seq())
            .min()
            .unwrap_or(u64::MAX)
    }
}

/// A consumer whose progress is a cursor persisted in the store's meta column family.
pub struct PersistedCursor {
    store: Store,
    name: &'static str,
}

impl PersistedCursor {
    /// The cursor named `name`.
    pub fn new(store: Store, name: &'static str) -> PersistedCursor {
        PersistedCursor { store, name }
    }

    /// Reads the cursor (0 when the consumer never ran).
    pub fn get(&self) -> Result<u64, ServiceError> {
        Ok(self.store.consumer_cursor(self.name)?)
    }

    /// Persists the cursor.
    pub fn set(&self, seq: u64) -> Result<(), ServiceError> {
        Ok(self.store.set_consumer_cursor(self.name, seq)?)
    }
}

impl ChangelogConsumer for PersistedCursor {
    fn name(&self) -> &'static str {
        self.name
    }

    fn applied_seq(&self) -> Result<u64, ServiceError> {
        self.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(&'static str, u64);

    impl ChangelogConsumer for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }
        fn applied_seq(&self) -> Result<u64, ServiceError> {
            Ok(self.1)
        }
    }

    #[test]
    fn retention_waits_for_the_slowest_registered_consumer() {
        let consumers = Consumers::new();
        assert_eq!(consumers.min_applied().unwrap(), u64::MAX);
        consumers.register(Arc::new(Fixed("indexer", 40)));
        consumers.register(Arc::new(Fixed("purger", 7)));
        assert_eq!(consumers.min_applied().unwrap(), 7);
        assert_eq!(consumers.names(), vec!["indexer", "purger"]);
    }
}
