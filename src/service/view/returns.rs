//! The view of a return (or exchange) request.

use serde::Serialize;
use storefront_storage::orders::{ReturnRecord, ReturnStatusRecord};

use super::rfc3339;
use crate::domain::order::ReturnStatus;
use crate::domain::{Currency, Id, Money};

/// One line of a return.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReturnLineView {
    /// The SKU sent back.
    pub sku: String,
    /// Units.
    pub quantity: i64,
    /// Why.
    pub reason: String,
    /// The variant wanted instead, for an exchange.
    pub exchange_for: Option<String>,
    /// Its unit price when the exchange was asked for.
    pub exchange_unit_price: Option<Money>,
}

/// A return.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReturnView {
    /// Id (for `PATCH /returns/{id}`).
    pub id: Id,
    /// The order.
    pub order_id: Id,
    /// `requested`, `approved`, `rejected` or `received`.
    pub status: ReturnStatus,
    /// Lines.
    pub lines: Vec<ReturnLineView>,
    /// Whether receipt put the units back into stock.
    pub restocked: bool,
    /// Refunded on receipt (the returned goods, less what exchanges cost).
    pub refunded: Money,
    /// Charged on receipt (what exchanges cost beyond the returned goods).
    pub charged: Money,
    /// The reviewer's note.
    pub note: Option<String>,
    /// Asked for.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

/// The domain status of a stored return.
pub fn return_status(s: ReturnStatusRecord) -> ReturnStatus {
    match s {
        ReturnStatusRecord::Requested => ReturnStatus::Requested,
        ReturnStatusRecord::Approved => ReturnStatus::Approved,
        ReturnStatusRecord::Rejected => ReturnStatus::Rejected,
        ReturnStatusRecord::Received => ReturnStatus::Received,
    }
}

impl ReturnView {
    /// The view of `r`, a return of order `order`.
    pub fn new(order: [u8; 16], r: &ReturnRecord, currency: Currency) -> ReturnView {
        let money = |amount| Money::new(amount, currency);
        ReturnView {
            id: Id::from_bytes(r.id),
            order_id: Id::from_bytes(order),
            status: return_status(r.status),
            lines: r
                .lines
                .iter()
                .map(|l| ReturnLineView {
                    sku: l.sku.clone(),
                    quantity: l.quantity,
                    reason: l.reason.clone(),
                    exchange_for: l.exchange_sku.clone(),
                    exchange_unit_price: l.exchange_sku.as_ref().map(|_| money(l.exchange_unit_price_cents)),
                })
                .collect(),
            restocked: r.restocked,
            refunded: money(r.refunded_cents),
            charged: money(r.charged_cents),
            note: r.note.clone(),
            created_at: rfc3339(r.created_at_ms),
            updated_at: rfc3339(r.updated_at_ms),
        }
    }
}
