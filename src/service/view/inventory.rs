//! Stock views: a SKU's stock, the holds on it, and outbox events.

use serde::Serialize;

use crate::domain::Id;

/// Inventory document.
#[derive(Serialize, Debug, Clone, PartialEq, utoipa::ToSchema)]
pub struct InventoryView {
    /// SKU.
    pub sku: String,
    /// Owning product.
    pub product_id: Id,
    /// Units in stock.
    pub on_hand: i64,
    /// Units held by reservations.
    pub reserved: i64,
    /// `on_hand - reserved`.
    pub available: i64,
    /// Low-stock threshold.
    pub low_stock_threshold: i64,
    /// Record version.
    pub version: u64,
}

/// One stock hold.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HoldView {
    /// The holding cart (absent if it no longer exists).
    pub cart_id: Option<String>,
    /// Units held.
    pub quantity: i64,
    /// Last change.
    pub updated_at: String,
}

/// One event waiting in the outbox.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OutboxEventView {
    /// Event id (UUIDv7).
    pub id: String,
    /// Event name.
    pub topic: String,
    /// Event data.
    pub payload: serde_json::Value,
    /// Creation time.
    pub created_at: String,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Handed to its sinks already (see `/admin/deliveries`).
    pub dispatched: bool,
}
