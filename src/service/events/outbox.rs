//! The durable outbox: events (such as `low_stock`) written in the same batch as the change
//! that caused them, so none is lost or invented by a crash. [`crate::service::notify`] hands
//! each to its sinks and moves it to the event log; this module lets operators see both.

use storefront_storage::cf::{CF_EVENT_LOG, CF_OUTBOX};
use storefront_storage::records::OutboxRecord;
use storefront_storage::{Owned, Store};

use crate::domain::Id;
use crate::service::auth::Actor;
use crate::service::view::{rfc3339, OutboxEventView};
use crate::service::{blocking, ServiceError};

/// A new outbox event of `topic` with `payload`, to be staged in the batch of its change.
pub fn new_event(topic: &str, payload: serde_json::Value, now_ms: i64) -> OutboxRecord {
    OutboxRecord {
        id: Id::new().to_bytes(),
        topic: topic.to_owned(),
        payload: payload.to_string(),
        created_at_ms: now_ms,
        attempts: 0,
        next_attempt_at_ms: now_ms,
    }
}

/// The outbox.
pub struct Outbox {
    store: Store,
}

impl Outbox {
    /// The outbox of `store`.
    pub fn new(store: Store) -> Outbox {
        Outbox { store }
    }

    /// Events waiting for their fan-out (counted up to `cap`) and when the oldest was made
    /// (Unix ms), for monitoring. Reads storage: call off the async workers.
    pub fn backlog(&self, cap: usize) -> Result<(usize, Option<i64>), ServiceError> {
        let mut count = 0;
        let mut oldest: Option<i64> = None;
        self.store.for_each_raw(CF_OUTBOX, &[], None, |key, value| {
            count += 1;
            if let Ok(record) = Owned::<OutboxRecord>::from_slice(key, value) {
                let at = record.archived().created_at_ms.to_native();
                oldest = Some(oldest.map_or(at, |o| o.min(at)));
            }
            count < cap
        })?;
        Ok((count, oldest))
    }

    /// Events, optionally of one topic (admin only): those waiting for their fan-out first,
    /// then those handed out (kept for `[notifications] retention_secs`), each oldest first.
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
            for cf in [CF_OUTBOX, CF_EVENT_LOG] {
                store.for_each_raw(cf, &[], None, |key, value| {
                    match Owned::<OutboxRecord>::from_slice(key, value) {
                        Ok(record) => {
                            let e = record.archived();
                            if topic.as_deref().is_none_or(|t| e.topic == t) {
                                events.push(OutboxEventView {
                                    id: Id::from_bytes(e.id).to_string(),
                                    topic: e.topic.to_string(),
                                    payload: serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null),
                                    created_at: rfc3339(e.created_at_ms.to_native()),
                                    attempts: e.attempts.to_native(),
                                    dispatched: cf == CF_EVENT_LOG,
                                });
                            }
                            events.len() < limit
                        }
                        Err(e) => {
                            failure = Some(e);
                            false
                        }
                    }
                })?;
            }
            match failure {
                Some(e) => Err(e.into()),
                None => Ok(events),
            }
        })
        .await
    }
}
