//! JSON views: what responses show, in one home. Catalog views borrow from the rkyv archive
//! (no intermediate owned copies) and are serialised once into the response cache. Every view
//! derives its OpenAPI schema from its fields.
//!
//! - [`product`]: product pages, listing items, categories, sellers, listing pages;
//! - [`search`]: search result pages and suggestions;
//! - [`cart`](mod@cart): carts;
//! - [`account`]: users and addresses;
//! - [`inventory`]: stock, holds and outbox events;
//! - [`order`]: orders and their timelines.

pub mod account;
pub mod cart;
pub mod coupon;
pub mod inventory;
pub mod invoice;
pub mod notify;
pub mod order;
pub mod product;
pub mod promotion;
pub mod returns;
pub mod review;
pub mod search;
pub mod shipping;

use std::time::{Duration, UNIX_EPOCH};

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use storefront_storage::records::{
    ArchivedAttributeRecord, ArchivedAttributeValue, ArchivedImageRecord, ArchivedProductRecord, ArchivedProductStatus,
    ProductStatus,
};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;

use super::catalog::taxonomy::{CategoryNode, SellerSummary};
use crate::domain::catalog::{Image, Status};
use crate::domain::product::RatingSummary;
use crate::domain::Id;
pub use account::{AddressView, Registered, RevokedSessions, Session, Tokens, UserView};
pub use cart::{CartLineView, CartView};
pub use inventory::{HoldView, InventoryView, OutboxEventView};
pub use product::{CategoryTreeView, ListingItem, ListingPage, ProductView, SellerView};

/// Formats Unix milliseconds as RFC 3339.
pub fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// The domain status of an archived product record.
pub fn product_status(status: &ArchivedProductStatus) -> Status {
    match status {
        ArchivedProductStatus::Draft => Status::Draft,
        ArchivedProductStatus::Published => Status::Published,
        ArchivedProductStatus::Archived => Status::Archived,
    }
}

/// The domain status of a product record.
pub fn stored_status(status: ProductStatus) -> Status {
    match status {
        ProductStatus::Draft => Status::Draft,
        ProductStatus::Published => Status::Published,
        ProductStatus::Archived => Status::Archived,
    }
}

/// The rating summary of an archived product record.
pub fn rating_summary(p: &ArchivedProductRecord) -> RatingSummary {
    RatingSummary {
        sum: p.rating_sum.to_native(),
        count: p.rating_count.to_native(),
    }
}

/// Attributes as a JSON object of scalars.
pub struct Attributes<'a>(pub &'a [ArchivedAttributeRecord]);

impl Serialize for Attributes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for attr in self.0 {
            match &attr.value {
                ArchivedAttributeValue::Text(t) => map.serialize_entry(attr.name.as_str(), t.as_str())?,
                ArchivedAttributeValue::Number(n) => map.serialize_entry(attr.name.as_str(), &n.to_native())?,
                ArchivedAttributeValue::Bool(b) => map.serialize_entry(attr.name.as_str(), b)?,
            }
        }
        map.end()
    }
}

impl utoipa::PartialSchema for Attributes<'_> {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some("Attribute name → text, number or boolean"))
            .additional_properties(Some(ObjectBuilder::new().schema_type(SchemaType::from_iter([
                Type::String,
                Type::Number,
                Type::Boolean,
            ]))))
            .into()
    }
}

impl utoipa::ToSchema for Attributes<'_> {}

/// Images, the primary one first.
pub struct Images<'a>(pub &'a [ArchivedImageRecord]);

impl Serialize for Images<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Image<'a> {
            url: &'a str,
            alt: &'a str,
        }
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for image in self.0 {
            seq.serialize_element(&Image {
                url: image.url.as_str(),
                alt: image.alt.as_str(),
            })?;
        }
        seq.end()
    }
}

impl utoipa::PartialSchema for Images<'_> {
    fn schema() -> RefOr<Schema> {
        ArrayBuilder::new()
            .items(<Image as utoipa::PartialSchema>::schema())
            .into()
    }
}

impl utoipa::ToSchema for Images<'_> {}

/// A reference to a category or a seller: what a page shows of it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Ref<'a> {
    /// Id.
    pub id: Id,
    /// Slug.
    pub slug: &'a str,
    /// Name.
    pub name: &'a str,
}

impl<'a> From<&'a CategoryNode> for Ref<'a> {
    fn from(n: &'a CategoryNode) -> Self {
        Ref {
            id: n.id,
            slug: &n.slug,
            name: &n.name,
        }
    }
}

impl<'a> From<&'a SellerSummary> for Ref<'a> {
    fn from(s: &'a SellerSummary) -> Self {
        Ref {
            id: s.id,
            slug: &s.slug,
            name: &s.name,
        }
    }
}

/// A list answered whole: `{"items": [...]}`.
#[derive(Serialize, Debug, utoipa::ToSchema)]
pub struct Items<T> {
    /// The entries.
    pub items: Vec<T>,
}

/// Rating summary.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Rating {
    /// Mean rating, two decimals; `null` when unrated.
    pub average: Option<f64>,
    /// Number of ratings.
    pub count: u32,
}

impl Rating {
    /// Summarises a product's ratings.
    pub fn of(p: &ArchivedProductRecord) -> Rating {
        let summary = rating_summary(p);
        Rating {
            average: summary.average(),
            count: summary.count,
        }
    }
}

/// A product page's rating summary: the listing's, with the count of each star.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProductRating {
    /// Mean rating, two decimals; `null` when unrated.
    pub average: Option<f64>,
    /// Number of approved reviews.
    pub count: u32,
    /// Approved reviews by star, `"1"` to `"5"`.
    #[schema(value_type = std::collections::BTreeMap<String, u32>)]
    pub histogram: StarCounts,
}

impl ProductRating {
    /// The summary with its histogram.
    pub fn new(rating: Rating, histogram: crate::domain::review::Histogram) -> ProductRating {
        ProductRating {
            average: rating.average,
            count: rating.count,
            histogram: StarCounts(histogram.0),
        }
    }
}

/// Counts by star, serialised as `{"1": n, ..., "5": n}`.
pub struct StarCounts(pub [u32; 5]);

impl Serialize for StarCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        const STARS: [&str; 5] = ["1", "2", "3", "4", "5"];
        let mut map = s.serialize_map(Some(5))?;
        for (star, n) in STARS.iter().zip(self.0) {
            map.serialize_entry(star, &n)?;
        }
        map.end()
    }
}

/// Lowest variant price.
pub fn min_price(p: &ArchivedProductRecord) -> i64 {
    crate::domain::product::lowest_price(p.variants.iter().map(|v| v.price_cents.to_native()))
}
