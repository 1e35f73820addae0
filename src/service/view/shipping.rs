//! The shipping views: zones as admins read them, and the methods offered for a cart.

use serde::Serialize;
use storefront_storage::shipping::{RateRecord, ShippingMethodRecord, ShippingZoneRecord};

use super::rfc3339;
use crate::domain::{Id, Money};

/// How a method prices a parcel (the shape `rate` is given in).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RateView {
    /// The same for every parcel.
    Flat {
        /// Minor units.
        amount: i64,
    },
    /// By weight.
    Weight {
        /// Bands in increasing weight.
        bands: Vec<BandView>,
    },
    /// Free from a threshold.
    FreeOver {
        /// Minor units.
        threshold: i64,
        /// Minor units, below the threshold.
        amount: i64,
    },
}

/// A weight band.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BandView {
    /// Grams, inclusive.
    pub up_to_grams: u64,
    /// Minor units.
    pub amount: i64,
}

/// A method of a zone.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MethodView {
    /// Code within the zone.
    pub code: String,
    /// Display name.
    pub name: String,
    /// The price rule.
    pub rate: RateView,
    /// Delivery estimate, days.
    pub min_days: u16,
    /// Delivery estimate, days.
    pub max_days: u16,
}

/// A shipping zone.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ZoneView {
    /// Id.
    pub id: Id,
    /// Name.
    pub name: String,
    /// Countries (`US`), regions (`US-CA`), or `*`.
    pub areas: Vec<String>,
    /// Its methods.
    pub methods: Vec<MethodView>,
    /// Version, for `If-Match`.
    pub version: u64,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
}

fn method_view(m: &ShippingMethodRecord) -> MethodView {
    MethodView {
        code: m.code.clone(),
        name: m.name.clone(),
        rate: match &m.rate {
            RateRecord::Flat { amount_cents } => RateView::Flat { amount: *amount_cents },
            RateRecord::Weight { bands } => RateView::Weight {
                bands: bands
                    .iter()
                    .map(|b| BandView {
                        up_to_grams: b.up_to_grams,
                        amount: b.amount_cents,
                    })
                    .collect(),
            },
            RateRecord::FreeOver {
                threshold_cents,
                amount_cents,
            } => RateView::FreeOver {
                threshold: *threshold_cents,
                amount: *amount_cents,
            },
        },
        min_days: m.min_days,
        max_days: m.max_days,
    }
}

impl ZoneView {
    /// The view of `z`.
    pub fn new(z: &ShippingZoneRecord) -> ZoneView {
        ZoneView {
            id: Id::from_bytes(z.id),
            name: z.name.clone(),
            areas: z.areas.clone(),
            methods: z.methods.iter().map(method_view).collect(),
            version: z.version,
            created_at: rfc3339(z.created_at_ms),
            updated_at: rfc3339(z.updated_at_ms),
        }
    }
}

/// A method that ships the cart, with its price.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ShippingOfferView {
    /// Code (checkout's `shipping_method`).
    pub code: String,
    /// Display name.
    pub name: String,
    /// What it costs for the whole cart.
    pub price: Money,
    /// What it costs per seller's parcel, in the cart's seller order (each seller ships on
    /// their own).
    pub per_shipment: Vec<Money>,
    /// Delivery estimate, days.
    pub min_days: u16,
    /// Delivery estimate, days.
    pub max_days: u16,
}

/// `GET /cart/shipping-methods`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ShippingOffersView {
    /// Where to (the country and region priced; absent when none is known).
    pub country: Option<String>,
    /// The region, when given.
    pub region: Option<String>,
    /// Methods, cheapest first (empty: nothing ships there).
    pub items: Vec<ShippingOfferView>,
}
