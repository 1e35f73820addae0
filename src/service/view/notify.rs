//! The views of webhook endpoints and deliveries admins read.

use serde::Serialize;
use storefront_storage::notifications::{DeliveryRecord, DeliveryStateRecord, WebhookRecord};

use super::rfc3339;
use crate::domain::Id;

/// A webhook endpoint.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    /// Id.
    pub id: Id,
    /// Where deliveries go.
    pub url: String,
    /// Event types (`*`: all).
    pub events: Vec<String>,
    /// The Standard Webhooks secret receivers verify signatures with.
    pub secret: String,
    /// Receiving.
    pub active: bool,
    /// Version.
    pub version: u64,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
}

impl WebhookView {
    /// The view of `w`.
    pub fn new(w: &WebhookRecord) -> WebhookView {
        WebhookView {
            id: Id::from_bytes(w.id),
            url: w.url.clone(),
            events: w.events.clone(),
            secret: w.secret.clone(),
            active: w.active,
            version: w.version,
            created_at: rfc3339(w.created_at_ms),
            updated_at: rfc3339(w.updated_at_ms),
        }
    }
}

/// One attempt or admin action.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    /// When.
    pub at: String,
    /// The sink's HTTP status (0: none).
    pub status: u16,
    /// What went wrong, or what an admin did.
    pub note: Option<String>,
    /// Milliseconds.
    pub duration_ms: u32,
}

/// The delivery of an event to a sink.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    /// Id.
    pub id: Id,
    /// The event (the `webhook-id` receivers deduplicate on).
    pub event_id: Id,
    /// Event type.
    pub topic: String,
    /// `webhook:<id>` or `email`.
    pub sink: String,
    /// `pending`, `failed`, `delivered`, `dead` or `discarded`.
    pub status: &'static str,
    /// Attempts made.
    pub attempts: u32,
    /// When it is due next (pending and failed).
    pub next_attempt_at: Option<String>,
    /// The last error.
    pub last_error: Option<String>,
    /// Attempts and admin actions, oldest first.
    pub history: Vec<AttemptView>,
    /// The event as delivered.
    pub payload: serde_json::Value,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
}

/// The wire name of a delivery state.
pub fn delivery_status(s: DeliveryStateRecord) -> &'static str {
    match s {
        DeliveryStateRecord::Pending => "pending",
        DeliveryStateRecord::Failed => "failed",
        DeliveryStateRecord::Delivered => "delivered",
        DeliveryStateRecord::Dead => "dead",
        DeliveryStateRecord::Discarded => "discarded",
    }
}

impl DeliveryView {
    /// The view of `d`.
    pub fn new(d: &DeliveryRecord) -> DeliveryView {
        let waiting = matches!(d.state, DeliveryStateRecord::Pending | DeliveryStateRecord::Failed);
        DeliveryView {
            id: Id::from_bytes(d.id),
            event_id: Id::from_bytes(d.event_id),
            topic: d.topic.clone(),
            sink: d.sink.clone(),
            status: delivery_status(d.state),
            attempts: d.attempts,
            next_attempt_at: waiting.then(|| rfc3339(d.next_attempt_at_ms)),
            // The last attempt's error; admin actions are notes in the history too.
            last_error: d
                .history
                .iter()
                .rev()
                .find(|a| !a.note.as_deref().is_some_and(|n| n.ends_with("by admin")))
                .and_then(|a| a.note.clone()),
            history: d
                .history
                .iter()
                .map(|a| AttemptView {
                    at: rfc3339(a.at_ms),
                    status: a.status,
                    note: a.note.clone(),
                    duration_ms: a.duration_ms,
                })
                .collect(),
            payload: serde_json::from_str(&d.payload).unwrap_or(serde_json::Value::Null),
            created_at: rfc3339(d.created_at_ms),
            updated_at: rfc3339(d.updated_at_ms),
        }
    }
}
