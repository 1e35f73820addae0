//! The automatic promotion view admins read.

use serde::Serialize;
use storefront_storage::coupons::{PromotionRecord, PromotionRuleRecord};

use super::rfc3339;
use crate::domain::Id;

/// An automatic promotion.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PromotionView {
    /// Id.
    pub id: Id,
    /// What shoppers see on a line.
    pub name: String,
    /// `percent` or `buy_x_get_y`.
    pub kind: &'static str,
    /// For `percent`.
    pub percent: Option<i64>,
    /// For `buy_x_get_y`: units paid...
    pub buy: Option<i64>,
    /// ...and units free.
    pub get: Option<i64>,
    /// Only these products (empty: any).
    pub products: Vec<Id>,
    /// Only these categories and those below (empty: any).
    pub categories: Vec<Id>,
    /// Only these sellers' products (empty: any).
    pub sellers: Vec<Id>,
    /// Valid from.
    pub starts_at: Option<String>,
    /// Valid until (exclusive).
    pub ends_at: Option<String>,
    /// Switched on.
    pub active: bool,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
}

impl PromotionView {
    /// The view of `p`.
    pub fn new(p: &PromotionRecord) -> PromotionView {
        let ids = |v: &[[u8; 16]]| v.iter().copied().map(Id::from_bytes).collect();
        let (kind, percent, buy, get) = match p.rule {
            PromotionRuleRecord::Percent { percent } => ("percent", Some(percent), None, None),
            PromotionRuleRecord::BuyGet { buy, get } => ("buy_x_get_y", None, Some(buy), Some(get)),
        };
        PromotionView {
            id: Id::from_bytes(p.id),
            name: p.name.clone(),
            kind,
            percent,
            buy,
            get,
            products: ids(&p.products),
            categories: ids(&p.categories),
            sellers: ids(&p.sellers),
            starts_at: p.starts_at_ms.map(rfc3339),
            ends_at: p.ends_at_ms.map(rfc3339),
            active: p.active,
            created_at: rfc3339(p.created_at_ms),
            updated_at: rfc3339(p.updated_at_ms),
        }
    }
}
