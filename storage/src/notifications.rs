//! rkyv records of notifications: webhook endpoints, the deliveries of outbox events to their
//! sinks (live, and dead letters), and the single-use tokens emails carry.

use rkyv::{Archive, Deserialize, Serialize};

use crate::keys::Id;
use crate::records::StoredRecord;

/// A webhook endpoint an admin registered, keyed by its id in [`crate::cf::CF_WEBHOOKS`].
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct WebhookRecord {
    /// UUIDv7 bytes.
    pub id: Id,
    /// Where deliveries go.
    pub url: String,
    /// Event types it receives (`*`: all).
    pub events: Vec<String>,
    /// Standard Webhooks secret, `whsec_<base64>`.
    pub secret: String,
    /// Paused endpoints receive nothing.
    pub active: bool,
    /// Optimistic-concurrency version.
    pub version: u64,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: i64,
    /// Last change, Unix milliseconds.
    pub updated_at_ms: i64,
}

impl StoredRecord for WebhookRecord {
    const CF: &'static str = crate::cf::CF_WEBHOOKS;
}

/// Where a delivery stands.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug), compare(PartialEq))]
pub enum DeliveryStateRecord {
    /// Not tried yet.
    Pending,
    /// Tried and failed; retried at its due time.
    Failed,
    /// The sink took it.
    Delivered,
    /// Out of attempts (in the dead-letter column family).
    Dead,
    /// Dropped by an admin (kept in the dead-letter column family until retention).
    Discarded,
}

/// One attempt, or an admin's action, on a delivery.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct AttemptRecord {
    /// When, Unix milliseconds.
    pub at_ms: i64,
    /// The HTTP status the sink answered (0: no answer, or not HTTP).
    pub status: u16,
    /// What went wrong, or the admin action (`replayed by admin`...).
    pub note: Option<String>,
    /// How long it took, milliseconds.
    pub duration_ms: u32,
}

/// The delivery of one outbox event to one sink, keyed by its id in
/// [`crate::cf::CF_DELIVERIES`] (or [`crate::cf::CF_DEAD_LETTERS`] once dead).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct DeliveryRecord {
    /// UUIDv7 bytes.
    pub id: Id,
    /// The outbox event (receivers deduplicate on it).
    pub event_id: Id,
    /// The event type.
    pub topic: String,
    /// `webhook:<endpoint id>`, `email` or `log`.
    pub sink: String,
    /// The event as JSON `{id, type, created_at, data}`.
    pub payload: String,
    /// State.
    pub state: DeliveryStateRecord,
    /// Attempts made.
    pub attempts: u32,
    /// When it is due next, Unix milliseconds (its key in the due index).
    pub next_attempt_at_ms: i64,
    /// Attempts and admin actions, oldest first (the last 20).
    pub history: Vec<AttemptRecord>,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: i64,
    /// Last change, Unix milliseconds.
    pub updated_at_ms: i64,
}

impl StoredRecord for DeliveryRecord {
    const CF: &'static str = crate::cf::CF_DELIVERIES;
}

/// What a user token is for.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug), compare(PartialEq))]
pub enum TokenPurposeRecord {
    /// Sets a new password.
    PasswordReset,
    /// Proves the email address.
    EmailVerification,
}

/// A single-use token sent by email, keyed by the SHA-256 of its value in
/// [`crate::cf::CF_USER_TOKENS`] (the value itself is never stored).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct UserTokenRecord {
    /// The user.
    pub user_id: Id,
    /// What it does.
    pub purpose: TokenPurposeRecord,
    /// The email it was sent to (a token for an address the user since changed is void).
    pub email: String,
    /// Expiry, Unix milliseconds.
    pub expires_at_ms: i64,
    /// Used already.
    pub used: bool,
}

impl StoredRecord for UserTokenRecord {
    const CF: &'static str = crate::cf::CF_USER_TOKENS;
}
