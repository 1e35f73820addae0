//! The durable outbox: events (such as `low_stock`) written in the same batch as the change
//! that caused them, so none is lost or invented by a crash. Delivery with retries and a
//! dead-letter queue belongs to the notifications work; this module lets operators see what
//! is waiting.

use storefront_storage::cf::CF_OUTBOX;
use storefront_storage::records::OutboxRecord;
use storefront_storage::{Owned, Store};

use crate::domain::Id;
use crate::service::auth::Actor;
use crate::service::view::{rfc3339, OutboxEventView};
use crate::service::{blocking, ServiceError};

/// The outbox.
pub struct Outbox {
    store: Store,
}

impl Outbox {
    /// The outbox of `store`.
    pub fn new(store: Store) -> Outbox {
        Outbox { store }
    }

    /// Pending events, oldest first, optionally of one topic (admin only).
    pub async fn pending(
        &self,
        actor: Actor,
        topic: Option<String>,
        limit: usize,
    ) -> Result<Vec<OutboxEventView>, ServiceError> {
        actor.require_admin()?;
        let limit = limit.clamp(1, 1000);
        let store = self.store.clone();
        blocking(move || {
            let mut events = Vec::new();
            let mut failure = None;
            store.for_each_raw(
                CF_OUTBOX,
                &[],
                None,
                |key, value| match Owned::<OutboxRecord>::from_slice(key, value) {
                    Ok(record) => {
                        let e = record.archived();
                        if topic.as_deref().is_none_or(|t| e.topic == t) {
                            events.push(OutboxEventView {
                                id: Id::from_bytes(e.id).to_string(),
                                topic: e.topic.to_string(),
                                payload: serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null),
                                created_at: rfc3339(e.created_at_ms.to_native()),
                                attempts: e.attempts.to_native(),
                            });
                        }
                        events.len() < limit
                    }
                    Err(e) => {
                        failure = Some(e);
                        false
                    }
                },
            )?;
            match failure {
                Some(e) => Err(e.into()),
                None => Ok(events),
            }
        })
        .await
    }
}
