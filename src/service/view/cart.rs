//! Cart views: the cart with its lines and price breakdown.

use serde::Serialize;

use crate::domain::Money;

/// One cart line, repriced from the catalog.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CartLineView {
    /// Line id (for PATCH/DELETE).
    pub item_id: String,
    /// SKU.
    pub sku: String,
    /// Product id.
    pub product_id: String,
    /// Product slug (absent when the product is gone).
    pub slug: Option<String>,
    /// Product title.
    pub title: String,
    /// Variant title.
    pub variant_title: String,
    /// First product image.
    pub image: Option<String>,
    /// Units requested.
    pub quantity: i64,
    /// Current unit price.
    pub unit_price: Money,
    /// Unit price when the line was added.
    pub unit_price_at_add: Money,
    /// The price moved since the line was added.
    pub price_changed: bool,
    /// Unit price × quantity.
    pub line_total: Money,
    /// What comes off the line: its automatic promotion and its share of the coupon.
    pub discount: Money,
    /// The automatic promotion applied to the line, by name.
    pub promotion: Option<String>,
    /// Units held for this cart (`reserve_on = "cart"`).
    pub held: i64,
    /// Units anyone can still reserve.
    pub available: i64,
    /// `ok`, `insufficient_stock` (the hold lapsed and stock ran short) or `unavailable`
    /// (product unpublished or SKU removed; excluded from the subtotal).
    pub status: &'static str,
}

/// A cart with its price breakdown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CartView {
    /// Cart id (absent for a cart that does not exist yet).
    pub id: Option<String>,
    /// Version for `If-Match` (0 before the first write).
    pub version: u64,
    /// Lines.
    pub items: Vec<CartLineView>,
    /// Total units.
    pub item_count: i64,
    /// Σ line totals of purchasable lines.
    pub subtotal: Money,
    /// Discount.
    pub discount: Money,
    /// Shipping.
    pub shipping: Money,
    /// The shipping method priced: the one `?shipping_method=` names when it ships there,
    /// else the cheapest (null: no method ships to the address, or none is known yet and the
    /// store has shipping zones).
    pub shipping_method: Option<String>,
    /// Tax.
    pub tax: Money,
    /// Amount due.
    pub total: Money,
    /// Tax rate applied, basis points.
    pub tax_rate_bps: u32,
    /// `COUNTRY` or `COUNTRY-REGION` rate that matched (absent: the default rate).
    pub tax_region: Option<String>,
    /// The coupon code on the cart.
    pub coupon: Option<String>,
    /// Why the cart's coupon takes nothing off now (`coupon_expired`, `coupon_min_subtotal`,
    /// `coupon_not_applicable`...); absent when it applies.
    pub coupon_problem: Option<&'static str>,
    /// Reservation policy in force.
    pub reserve_on: &'static str,
    /// When the cart expires without further writes.
    pub expires_at: Option<String>,
    /// When its stock holds lapse without further writes.
    pub holds_expire_at: Option<String>,
}
