//! rkyv records of coupons. A coupon's redemption count lives on its record, and each
//! redemption also leaves a key per customer and per order, written in the batch that places
//! the order: the counters are exact after a crash, and a failed or cancelled order finds the
//! use it gives back.

use rkyv::{Archive, Deserialize, Serialize};

use crate::keys::Id;
use crate::records::StoredRecord;

/// How a coupon takes money off.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug), compare(PartialEq))]
pub enum CouponKindRecord {
    /// `value` percent (1–100) of the eligible lines.
    Percent,
    /// `value` minor units off the eligible lines.
    Fixed,
}

/// A coupon, keyed by [`crate::keys::coupon`] of its normalized (upper-case) code.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct CouponRecord {
    /// The code as shown (upper case).
    pub code: String,
    /// Percent or fixed.
    pub kind: CouponKindRecord,
    /// Percent (1–100) or minor units.
    pub value: i64,
    /// A cap on the discount, minor units.
    pub max_discount_cents: Option<i64>,
    /// The eligible subtotal the cart must reach, minor units.
    pub min_subtotal_cents: i64,
    /// Valid from, Unix milliseconds.
    pub starts_at_ms: Option<i64>,
    /// Valid until (exclusive), Unix milliseconds.
    pub ends_at_ms: Option<i64>,
    /// Redemptions allowed in all.
    pub max_uses: Option<i64>,
    /// Redemptions allowed per customer.
    pub max_uses_per_customer: Option<i64>,
    /// Redemptions by orders that hold them (placed, or waiting for their payment).
    pub uses: i64,
    /// Only these products (empty: any).
    pub products: Vec<Id>,
    /// Only products in these categories or below (empty: any).
    pub categories: Vec<Id>,
    /// Only these sellers' products (empty: any).
    pub sellers: Vec<Id>,
    /// Only a customer's first order.
    pub first_order_only: bool,
    /// The seller who owns it (their products only); `None` for the store's own.
    pub owner_seller: Option<Id>,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: i64,
    /// Last change, Unix milliseconds.
    pub updated_at_ms: i64,
}

impl StoredRecord for CouponRecord {
    const CF: &'static str = crate::cf::CF_COUPONS;
}

pub use rule::PromotionRuleRecord;

mod rule {
    // The derive's resolver type has undocumented fields; the record itself is documented.
    #![allow(missing_docs)]
    use rkyv::{Archive, Deserialize, Serialize};

    /// What an automatic promotion takes off.
    #[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
    #[rkyv(derive(Debug), compare(PartialEq))]
    pub enum PromotionRuleRecord {
        /// A percentage of the line.
        Percent {
            /// 1–100.
            percent: i64,
        },
        /// Of every `buy + get` units, `get` free.
        BuyGet {
            /// Units paid.
            buy: i64,
            /// Units free.
            get: i64,
        },
    }
}

/// An automatic promotion (no code), keyed by [`crate::keys::promotion`] of its id.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct PromotionRecord {
    /// Id.
    pub id: Id,
    /// What shoppers see on a line.
    pub name: String,
    /// The rule.
    pub rule: PromotionRuleRecord,
    /// Only these products (empty: any).
    pub products: Vec<Id>,
    /// Only products in these categories or below (empty: any).
    pub categories: Vec<Id>,
    /// Only these sellers' products (empty: any).
    pub sellers: Vec<Id>,
    /// Valid from, Unix milliseconds.
    pub starts_at_ms: Option<i64>,
    /// Valid until (exclusive), Unix milliseconds.
    pub ends_at_ms: Option<i64>,
    /// Switched on.
    pub active: bool,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: i64,
    /// Last change, Unix milliseconds.
    pub updated_at_ms: i64,
}

impl StoredRecord for PromotionRecord {
    const CF: &'static str = crate::cf::CF_COUPONS;
}
