//! JSON views of catalog entities, serialised straight from archived records.
//!
//! Views borrow from the rkyv archive (no intermediate owned copies) and are serialised once
//! into the response cache.

use std::time::{Duration, UNIX_EPOCH};

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use storefront_storage::records::{
    ArchivedAttributeRecord, ArchivedAttributeValue, ArchivedImageRecord, ArchivedProductRecord, ArchivedProductStatus,
    ArchivedVariantRecord, ProductStatus,
};

use super::catalog::taxonomy::{CategoryNode, CategoryTree, SellerSummary};
use crate::domain::catalog::Status;
use crate::domain::product::{self, RatingSummary};
use crate::domain::{Currency, Id, Money};

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

/// Attributes as a JSON object.
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

struct Images<'a>(&'a [ArchivedImageRecord]);

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

/// A reference to a category.
#[derive(Serialize)]
pub struct CategoryRef<'a> {
    /// Id.
    pub id: Id,
    /// Slug.
    pub slug: &'a str,
    /// Name.
    pub name: &'a str,
}

impl<'a> From<&'a CategoryNode> for CategoryRef<'a> {
    fn from(n: &'a CategoryNode) -> Self {
        CategoryRef {
            id: n.id,
            slug: &n.slug,
            name: &n.name,
        }
    }
}

/// A reference to a seller.
#[derive(Serialize)]
pub struct SellerRef<'a> {
    /// Id.
    pub id: Id,
    /// Slug.
    pub slug: &'a str,
    /// Name.
    pub name: &'a str,
}

impl<'a> From<&'a SellerSummary> for SellerRef<'a> {
    fn from(s: &'a SellerSummary) -> Self {
        SellerRef {
            id: s.id,
            slug: &s.slug,
            name: &s.name,
        }
    }
}

/// Rating summary.
#[derive(Serialize)]
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

/// Lowest variant price.
pub fn min_price(p: &ArchivedProductRecord) -> i64 {
    product::lowest_price(p.variants.iter().map(|v| v.price_cents.to_native()))
}

#[derive(Serialize)]
struct VariantView<'a> {
    sku: &'a str,
    title: &'a str,
    price: Money,
    compare_at_price: Option<Money>,
    attributes: Attributes<'a>,
    available: i64,
    in_stock: bool,
}

/// The product detail document.
#[derive(Serialize)]
pub struct ProductView<'a> {
    id: Id,
    external_id: Option<&'a str>,
    slug: &'a str,
    title: &'a str,
    description: &'a str,
    brand: Option<&'a str>,
    status: &'static str,
    price: Money,
    in_stock: bool,
    category: Option<CategoryRef<'a>>,
    category_path: Vec<CategoryRef<'a>>,
    seller: Option<SellerRef<'a>>,
    images: Images<'a>,
    attributes: Attributes<'a>,
    variants: Vec<VariantView<'a>>,
    rating: Rating,
    version: u64,
    created_at: String,
    updated_at: String,
}

impl<'a> ProductView<'a> {
    /// Builds the view; `available[i]` is the available stock of variant `i`.
    pub fn new(
        p: &'a ArchivedProductRecord,
        currency: Currency,
        available: &[i64],
        tree: &'a CategoryTree,
        seller: Option<&'a SellerSummary>,
    ) -> ProductView<'a> {
        let path: Vec<CategoryRef<'a>> = p
            .category_id
            .as_ref()
            .map(|c| {
                let mut ids = tree.path_up(Id::from_bytes(*c));
                ids.reverse();
                ids.into_iter()
                    .filter_map(|id| tree.get(id))
                    .map(CategoryRef::from)
                    .collect()
            })
            .unwrap_or_default();
        let variants: Vec<VariantView<'a>> = p
            .variants
            .iter()
            .zip(available.iter().copied().chain(std::iter::repeat(0)))
            .map(|(v, available): (&'a ArchivedVariantRecord, i64)| VariantView {
                sku: v.sku.as_str(),
                title: v.title.as_str(),
                price: Money::new(v.price_cents.to_native(), currency),
                compare_at_price: v.compare_at_cents.as_ref().map(|c| Money::new(c.to_native(), currency)),
                attributes: Attributes(&v.attributes),
                available: available.max(0),
                in_stock: available > 0,
            })
            .collect();
        ProductView {
            id: Id::from_bytes(p.id),
            external_id: p.external_id.as_ref().map(|s| s.as_str()),
            slug: p.slug.as_str(),
            title: p.title.as_str(),
            description: p.description.as_str(),
            brand: p.brand.as_ref().map(|s| s.as_str()),
            status: product_status(&p.status).as_str(),
            price: Money::new(min_price(p), currency),
            in_stock: variants.iter().any(|v| v.in_stock),
            category: path.last().map(|c| CategoryRef {
                id: c.id,
                slug: c.slug,
                name: c.name,
            }),
            category_path: path,
            seller: seller.map(SellerRef::from),
            images: Images(&p.images),
            attributes: Attributes(&p.attributes),
            variants,
            rating: Rating::of(p),
            version: p.version.to_native(),
            created_at: rfc3339(p.created_at_ms.to_native()),
            updated_at: rfc3339(p.updated_at_ms.to_native()),
        }
    }
}

/// A product in a listing page.
#[derive(Serialize)]
pub struct ListingItem<'a> {
    id: Id,
    external_id: Option<&'a str>,
    slug: &'a str,
    title: &'a str,
    brand: Option<&'a str>,
    price: Money,
    image: Option<&'a str>,
    in_stock: bool,
    rating: Rating,
    category_id: Option<Id>,
    seller_id: Option<Id>,
    created_at: String,
}

impl<'a> ListingItem<'a> {
    /// Builds a listing item.
    pub fn new(p: &'a ArchivedProductRecord, currency: Currency, in_stock: bool) -> ListingItem<'a> {
        ListingItem {
            id: Id::from_bytes(p.id),
            external_id: p.external_id.as_ref().map(|s| s.as_str()),
            slug: p.slug.as_str(),
            title: p.title.as_str(),
            brand: p.brand.as_ref().map(|s| s.as_str()),
            price: Money::new(min_price(p), currency),
            image: p.images.first().map(|i| i.url.as_str()),
            in_stock,
            rating: Rating::of(p),
            category_id: p.category_id.as_ref().map(|c| Id::from_bytes(*c)),
            seller_id: p.seller_id.as_ref().map(|s| Id::from_bytes(*s)),
            created_at: rfc3339(p.created_at_ms.to_native()),
        }
    }
}

/// A category with its subtree.
pub struct CategoryTreeView<'a> {
    /// The tree.
    pub tree: &'a CategoryTree,
    /// The node, `None` for the whole forest.
    pub node: Option<&'a CategoryNode>,
}

impl Serialize for CategoryTreeView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Node<'a>(&'a CategoryTree, &'a CategoryNode);
        impl Serialize for Node<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let (tree, node) = (self.0, self.1);
                let mut map = s.serialize_map(None)?;
                map.serialize_entry("id", &node.id)?;
                map.serialize_entry("slug", &node.slug)?;
                map.serialize_entry("name", &node.name)?;
                map.serialize_entry("parent_id", &node.parent)?;
                map.serialize_entry("position", &node.position)?;
                map.serialize_entry("version", &node.version)?;
                let children: Vec<Node<'_>> = node
                    .children
                    .iter()
                    .filter_map(|c| tree.get(*c))
                    .map(|c| Node(tree, c))
                    .collect();
                map.serialize_entry("children", &children)?;
                map.end()
            }
        }
        match self.node {
            None => {
                let mut map = s.serialize_map(Some(1))?;
                let roots: Vec<Node<'_>> = self.tree.roots().map(|n| Node(self.tree, n)).collect();
                map.serialize_entry("items", &roots)?;
                map.end()
            }
            Some(node) => {
                let mut ids = self.tree.path_up(node.id);
                ids.reverse();
                let path: Vec<CategoryRef<'_>> = ids
                    .into_iter()
                    .filter_map(|id| self.tree.get(id))
                    .map(CategoryRef::from)
                    .collect();
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("category", &Node(self.tree, node))?;
                map.serialize_entry("path", &path)?;
                map.end()
            }
        }
    }
}

/// Seller document.
#[derive(Serialize)]
pub struct SellerView<'a> {
    /// Id.
    pub id: Id,
    /// Slug.
    pub slug: &'a str,
    /// Name.
    pub name: &'a str,
    /// Version.
    pub version: u64,
    /// Creation time.
    pub created_at: String,
}

impl<'a> From<&'a SellerSummary> for SellerView<'a> {
    fn from(s: &'a SellerSummary) -> Self {
        SellerView {
            id: s.id,
            slug: &s.slug,
            name: &s.name,
            version: s.version,
            created_at: rfc3339(s.created_at_ms),
        }
    }
}

/// Inventory document.
#[derive(Serialize, Debug, Clone, PartialEq)]
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

/// One cart line, repriced from the catalog.
#[derive(Debug, Serialize)]
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
    /// Units held for this cart (`reserve_on = "cart"`).
    pub held: i64,
    /// Units anyone can still reserve.
    pub available: i64,
    /// `ok`, `insufficient_stock` (the hold lapsed and stock ran short) or `unavailable`
    /// (product unpublished or SKU removed; excluded from the subtotal).
    pub status: &'static str,
}

/// A cart with its price breakdown.
#[derive(Debug, Serialize)]
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
    /// Tax.
    pub tax: Money,
    /// Amount due.
    pub total: Money,
    /// Tax rate applied, basis points.
    pub tax_rate_bps: u32,
    /// `COUNTRY` or `COUNTRY-REGION` rate that matched (absent: the default rate).
    pub tax_region: Option<String>,
    /// Applied coupon.
    pub coupon: Option<String>,
    /// Reservation policy in force.
    pub reserve_on: &'static str,
    /// When the cart expires without further writes.
    pub expires_at: Option<String>,
    /// When its stock holds lapse without further writes.
    pub holds_expire_at: Option<String>,
}

/// One stock hold.
#[derive(Debug, Serialize)]
pub struct HoldView {
    /// The holding cart (absent if it no longer exists).
    pub cart_id: Option<String>,
    /// Units held.
    pub quantity: i64,
    /// Last change.
    pub updated_at: String,
}

/// One event waiting in the outbox.
#[derive(Debug, Serialize)]
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
}
