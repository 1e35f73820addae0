//! rkyv records of shipping: zones (the places a store ships to) with their methods and rates.

use rkyv::{Archive, Deserialize, Serialize};

use crate::keys::Id;
use crate::records::StoredRecord;

pub use rate::{RateRecord, WeightBandRecord};

mod rate {
    // The derive's resolver types have undocumented fields; the records are documented.
    #![allow(missing_docs)]
    use rkyv::{Archive, Deserialize, Serialize};

    /// One band of a weight-based rate: parcels up to `up_to_grams` cost `amount_cents`.
    #[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
    #[rkyv(derive(Debug))]
    pub struct WeightBandRecord {
        /// Upper bound, inclusive, grams.
        pub up_to_grams: u64,
        /// Price, minor units.
        pub amount_cents: i64,
    }

    /// How a method prices a parcel.
    #[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
    #[rkyv(derive(Debug))]
    pub enum RateRecord {
        /// The same price for every parcel.
        Flat { amount_cents: i64 },
        /// By the parcel's weight; heavier than the last band: not offered.
        Weight { bands: Vec<WeightBandRecord> },
        /// Free from `threshold_cents` (after discounts), `amount_cents` below it.
        FreeOver { threshold_cents: i64, amount_cents: i64 },
    }
}

/// A shipping method of a zone.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ShippingMethodRecord {
    /// Code, unique within the zone (what checkout's `shipping_method` names).
    pub code: String,
    /// What shoppers see.
    pub name: String,
    /// The price rule.
    pub rate: RateRecord,
    /// Delivery estimate, in days.
    pub min_days: u16,
    /// Delivery estimate, in days.
    pub max_days: u16,
}

/// A shipping zone, keyed by its id in [`crate::cf::CF_SHIPPING`].
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ShippingZoneRecord {
    /// UUIDv7 bytes.
    pub id: Id,
    /// Name, e.g. `Domestic`.
    pub name: String,
    /// Where it applies: `US` (a country), `US-CA` (a region of one), or `*` (anywhere else).
    pub areas: Vec<String>,
    /// Its methods.
    pub methods: Vec<ShippingMethodRecord>,
    /// Optimistic-concurrency version.
    pub version: u64,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: i64,
    /// Last change, Unix milliseconds.
    pub updated_at_ms: i64,
}

impl StoredRecord for ShippingZoneRecord {
    const CF: &'static str = crate::cf::CF_SHIPPING;
}
