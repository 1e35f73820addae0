//! The coupon view admins and sellers read.

use serde::Serialize;
use storefront_storage::coupons::{CouponKindRecord, CouponRecord};

use super::rfc3339;
use crate::domain::{Currency, Id, Money};

/// A coupon.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CouponView {
    /// The code (upper case; shoppers may type it in any case).
    pub code: String,
    /// `percent` or `fixed`.
    pub kind: &'static str,
    /// Percent (1–100), or minor units for `fixed`.
    pub value: i64,
    /// The cap on the discount.
    pub max_discount: Option<Money>,
    /// The eligible subtotal a cart must reach.
    pub min_subtotal: Money,
    /// Valid from.
    pub starts_at: Option<String>,
    /// Valid until (exclusive).
    pub ends_at: Option<String>,
    /// Redemptions allowed in all.
    pub max_uses: Option<i64>,
    /// Redemptions allowed per customer.
    pub max_uses_per_customer: Option<i64>,
    /// Redemptions held by orders: placed ones, and those waiting seconds for their payment
    /// (so the last use cannot go twice); a failed or cancelled order gives its use back.
    pub uses: i64,
    /// Only these products (empty: any).
    pub products: Vec<Id>,
    /// Only these categories and those below them (empty: any).
    pub categories: Vec<Id>,
    /// Only these sellers' products (empty: any).
    pub sellers: Vec<Id>,
    /// Only a signed-in customer's first order.
    pub first_order_only: bool,
    /// The seller who owns the coupon (it covers their products only); absent for the store's.
    pub seller_id: Option<Id>,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
}

impl CouponView {
    /// The view of `c`.
    pub fn new(c: &CouponRecord, currency: Currency) -> CouponView {
        let ids = |v: &[[u8; 16]]| v.iter().copied().map(Id::from_bytes).collect();
        CouponView {
            code: c.code.clone(),
            kind: match c.kind {
                CouponKindRecord::Percent => "percent",
                CouponKindRecord::Fixed => "fixed",
            },
            value: c.value,
            max_discount: c.max_discount_cents.map(|a| Money::new(a, currency)),
            min_subtotal: Money::new(c.min_subtotal_cents, currency),
            starts_at: c.starts_at_ms.map(rfc3339),
            ends_at: c.ends_at_ms.map(rfc3339),
            max_uses: c.max_uses,
            max_uses_per_customer: c.max_uses_per_customer,
            uses: c.uses,
            products: ids(&c.products),
            categories: ids(&c.categories),
            sellers: ids(&c.sellers),
            first_order_only: c.first_order_only,
            seller_id: c.owner_seller.map(Id::from_bytes),
            created_at: rfc3339(c.created_at_ms),
            updated_at: rfc3339(c.updated_at_ms),
        }
    }
}
