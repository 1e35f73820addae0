//! rkyv record types stored in RocksDB, and the validated zero-copy wrapper [`Owned`].
//!
//! Records are validated once with bytecheck when they cross the storage boundary; after that
//! they are read in place through their archived form. Every record carries a `version` used
//! for optimistic concurrency (`If-Match`) and ETags.
//!
//! RocksDB's pinned slices carry no alignment guarantee. By default a value is copied into a
//! 16-byte aligned buffer before access; the `unaligned` feature switches rkyv to its unaligned
//! format so pinned slices can be read in place. `benches/records.rs` measures both
//! (PERF: `records/read_pinned`).

use std::marker::PhantomData;

use rkyv::api::high::{HighDeserializer, HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor;
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};

use crate::keys::Id;
use crate::{Error, Result};

/// A record type with a home column family.
pub trait StoredRecord:
    Archive + for<'a> Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>> + Sized
where
    Self::Archived:
        for<'a> CheckBytes<HighValidator<'a, rancor::Error>> + Deserialize<Self, HighDeserializer<rancor::Error>>,
{
    /// Column family the record lives in.
    const CF: &'static str;
}

/// Serialises a record into its archived bytes.
pub fn encode<R>(record: &R) -> Result<AlignedVec>
where
    R: StoredRecord,
    R::Archived: for<'a> CheckBytes<HighValidator<'a, rancor::Error>> + Deserialize<R, HighDeserializer<rancor::Error>>,
{
    rkyv::to_bytes::<rancor::Error>(record).map_err(|e| Error::Encode(e.to_string()))
}

/// Validates `bytes` as an archived `R` and returns a reference to it.
///
/// With the `unaligned` feature the slice is read in place; otherwise the caller must pass
/// 16-byte aligned bytes (see [`Owned::from_slice`]).
pub fn access<'b, R>(cf: &'static str, key: &[u8], bytes: &'b [u8]) -> Result<&'b R::Archived>
where
    R: StoredRecord,
    R::Archived: for<'a> CheckBytes<HighValidator<'a, rancor::Error>> + Deserialize<R, HighDeserializer<rancor::Error>>,
{
    rkyv::access::<R::Archived, rancor::Error>(bytes).map_err(|e| Error::corrupt(cf, key, e))
}

/// An owned, already validated archived record.
///
/// Holding one costs a single allocation; reading fields is zero-copy.
pub struct Owned<R> {
    bytes: AlignedVec<16>,
    _record: PhantomData<R>,
}

impl<R> Owned<R>
where
    R: StoredRecord,
    R::Archived: for<'a> CheckBytes<HighValidator<'a, rancor::Error>> + Deserialize<R, HighDeserializer<rancor::Error>>,
{
    /// Copies `bytes` into an aligned buffer and validates them once.
    pub fn from_slice(key: &[u8], bytes: &[u8]) -> Result<Self> {
        // PERF(records/read_pinned): one memcpy into an aligned buffer is cheaper than
        // validating twice, and it lets the record outlive the pinned slice.
        let mut aligned = AlignedVec::<16>::with_capacity(bytes.len());
        aligned.extend_from_slice(bytes);
        access::<R>(R::CF, key, &aligned)?;
        Ok(Owned {
            bytes: aligned,
            _record: PhantomData,
        })
    }

    /// Returns the archived record.
    pub fn archived(&self) -> &R::Archived {
        // SAFETY: `from_slice` validated exactly these bytes with bytecheck and they are
        // immutable since; AlignedVec keeps the 16-byte alignment the archive needs.
        unsafe { rkyv::access_unchecked::<R::Archived>(&self.bytes) }
    }

    /// Deserialises into the native record (allocates; use for read-modify-write).
    pub fn to_native(&self) -> R {
        rkyv::deserialize::<R, rancor::Error>(self.archived()).expect("deserialising a validated archive cannot fail")
    }
}

impl<R> std::fmt::Debug for Owned<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owned").field("len", &self.bytes.len()).finish()
    }
}

/// Publication state of a product.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug), compare(PartialEq))]
pub enum ProductStatus {
    /// Not visible to shoppers.
    Draft,
    /// Visible and purchasable.
    Published,
    /// Retired; kept for order history.
    Archived,
}

/// A typed attribute value.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub enum AttributeValue {
    /// Free text, e.g. a colour.
    Text(String),
    /// A number, e.g. a weight in grams.
    Number(f64),
    /// A yes/no feature.
    Bool(bool),
}

/// A named attribute of a product or variant.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct AttributeRecord {
    /// Attribute name, e.g. `colour`.
    pub name: String,
    /// Attribute value.
    pub value: AttributeValue,
}

/// A product image.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct ImageRecord {
    /// Absolute URL.
    pub url: String,
    /// Alternative text.
    pub alt: String,
}

/// A purchasable variant (SKU) of a product.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct VariantRecord {
    /// Stock keeping unit, unique across the catalog.
    pub sku: String,
    /// Variant title, e.g. `Black, 6 pack`.
    pub title: String,
    /// Price in minor units of the product currency.
    pub price_cents: i64,
    /// Optional "was" price in minor units.
    pub compare_at_cents: Option<i64>,
    /// Variant-specific attributes.
    pub attributes: Vec<AttributeRecord>,
    /// Shipping weight in grams (0: not given; weight-band rates count it as nothing).
    pub weight_grams: u32,
}

/// A catalog product with its variants embedded, so a product page is one point read.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct ProductRecord {
    /// UUIDv7 bytes.
    pub id: Id,
    /// Optimistic-concurrency version, starting at 1.
    pub version: u64,
    /// Id in the source catalog for imported products.
    pub external_id: Option<String>,
    /// Unique URL slug.
    pub slug: String,
    /// Title.
    pub title: String,
    /// Description (plain text).
    pub description: String,
    /// Brand name.
    pub brand: Option<String>,
    /// Leaf category.
    pub category_id: Option<Id>,
    /// Owning seller.
    pub seller_id: Option<Id>,
    /// Publication state.
    pub status: ProductStatus,
    /// ISO 4217 currency code of all variant prices.
    pub currency: String,
    /// Images, first is the primary one.
    pub images: Vec<ImageRecord>,
    /// Product-level attributes.
    pub attributes: Vec<AttributeRecord>,
    /// Variants; at least one.
    pub variants: Vec<VariantRecord>,
    /// Sum of review ratings (1–5).
    pub rating_sum: u64,
    /// Number of review ratings.
    pub rating_count: u32,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: i64,
    /// Last update time, Unix milliseconds.
    pub updated_at_ms: i64,
}

impl StoredRecord for ProductRecord {
    const CF: &'static str = crate::cf::CF_PRODUCTS;
}

/// A node of the category tree.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct CategoryRecord {
    /// UUIDv7 bytes.
    pub id: Id,
    /// Optimistic-concurrency version.
    pub version: u64,
    /// Unique slug.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Parent category, `None` for a root.
    pub parent_id: Option<Id>,
    /// Sort position among siblings.
    pub position: i32,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: i64,
    /// Last update time, Unix milliseconds.
    pub updated_at_ms: i64,
}

impl StoredRecord for CategoryRecord {
    const CF: &'static str = crate::cf::CF_CATEGORIES;
}

/// A seller (vendor) of a multi-vendor catalog.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct SellerRecord {
    /// UUIDv7 bytes.
    pub id: Id,
    /// Optimistic-concurrency version.
    pub version: u64,
    /// Unique slug.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: i64,
    /// Last update time, Unix milliseconds.
    pub updated_at_ms: i64,
}

impl StoredRecord for SellerRecord {
    const CF: &'static str = crate::cf::CF_SELLERS;
}

/// On-hand stock of one SKU. Holds live in [`crate::cf::CF_RESERVATIONS`], so this record is
/// written only by stock changes and never races with cart writes; available = on_hand − Σ holds.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct InventoryRecord {
    /// The SKU.
    pub sku: String,
    /// Owning product.
    pub product_id: Id,
    /// Optimistic-concurrency version.
    pub version: u64,
    /// Units physically in stock.
    pub on_hand: i64,
    /// Available count at or below which a low-stock event is emitted.
    pub low_stock_threshold: i64,
    /// Last update time, Unix milliseconds.
    pub updated_at_ms: i64,
}

impl StoredRecord for InventoryRecord {
    const CF: &'static str = crate::cf::CF_INVENTORY;
}

/// A hold on stock of one SKU by a cart or an order.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct ReservationRecord {
    /// Units held.
    pub quantity: i64,
    /// Last change, Unix milliseconds.
    pub updated_at_ms: i64,
}

impl StoredRecord for ReservationRecord {
    const CF: &'static str = crate::cf::CF_RESERVATIONS;
}

/// Lifecycle of a cart record.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug), compare(PartialEq))]
pub enum CartStatus {
    /// In use.
    Active,
    /// Removed by the sweeper after inactivity; kept briefly so its token answers `cart_expired`.
    Expired,
    /// Merged into a user's cart at login; kept briefly like an expired cart.
    Merged,
}

/// One line of a cart.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct CartLineRecord {
    /// UUIDv7 bytes; stable while the line exists.
    pub item_id: Id,
    /// The SKU.
    pub sku: String,
    /// Product of the SKU when the line was added.
    pub product_id: Id,
    /// Requested quantity.
    pub quantity: i64,
    /// Units currently held for this line (equal to its reservation record; 0 without a hold).
    pub held: i64,
    /// Unit price when the line was added (to flag price changes).
    pub unit_price_cents_at_add: i64,
    /// When the line was added, Unix milliseconds.
    pub added_at_ms: i64,
}

/// A shopping cart, keyed by [`crate::keys::CartKey`] (a guest token digest or a user id).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct CartRecord {
    /// Public UUIDv7 bytes.
    pub id: Id,
    /// Owner, for user carts.
    pub user_id: Option<Id>,
    /// Lifecycle state.
    pub status: CartStatus,
    /// Optimistic-concurrency version.
    pub version: u64,
    /// Lines in insertion order.
    pub lines: Vec<CartLineRecord>,
    /// Applied coupon code (evaluated by the discount hook).
    pub coupon: Option<String>,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: i64,
    /// Last write, Unix milliseconds.
    pub updated_at_ms: i64,
    /// When the cart expires for inactivity (its expiry-index entry).
    pub expires_at_ms: i64,
    /// When the cart's stock holds expire (its hold-index entry); 0 when it holds nothing.
    pub holds_expire_at_ms: i64,
}

impl StoredRecord for CartRecord {
    const CF: &'static str = crate::cf::CF_CARTS;
}

/// An event awaiting delivery (e.g. `low_stock`), written in the same batch as its cause.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct OutboxRecord {
    /// UUIDv7 bytes (the key; sorts by creation).
    pub id: Id,
    /// Event name, e.g. `low_stock`.
    pub topic: String,
    /// JSON payload.
    pub payload: String,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: i64,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Earliest next delivery attempt, Unix milliseconds.
    pub next_attempt_at_ms: i64,
}

impl StoredRecord for OutboxRecord {
    const CF: &'static str = crate::cf::CF_OUTBOX;
}

/// What kind of entity a changelog entry is about.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug), compare(PartialEq))]
pub enum EntityKind {
    /// A product (including its variants).
    Product,
    /// A category.
    Category,
    /// A seller.
    Seller,
    /// Stock of a SKU.
    Inventory,
    /// A product's public reviews (the key is the product id).
    Review,
}

/// Whether the entity was written or removed.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug), compare(PartialEq))]
pub enum ChangeOp {
    /// Created or updated.
    Upsert,
    /// Deleted.
    Delete,
}

/// A sequence-numbered catalog change, written in the same batch as the change itself.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct ChangeRecord {
    /// Gap-free, strictly increasing sequence number (assigned by the store).
    pub seq: u64,
    /// Commit time, Unix milliseconds.
    pub at_ms: i64,
    /// Entity kind.
    pub entity: EntityKind,
    /// Operation.
    pub op: ChangeOp,
    /// Entity key (id bytes, or the SKU for inventory).
    pub key: Vec<u8>,
    /// Surrogate keys (CDN cache tags) the change invalidates.
    pub tags: Vec<String>,
}

impl StoredRecord for ChangeRecord {
    const CF: &'static str = crate::cf::CF_CHANGELOG;
}

/// Role of a user account.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug), compare(PartialEq))]
pub enum RoleRecord {
    /// A shopper.
    Customer,
    /// Manages the products and stock of one seller.
    Seller,
    /// Manages everything.
    Admin,
}

/// A postal address of a user.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct AddressRecord {
    /// UUIDv7 bytes.
    pub id: Id,
    /// Recipient name.
    pub name: String,
    /// First address line.
    pub line1: String,
    /// Second address line.
    pub line2: String,
    /// City.
    pub city: String,
    /// Region, state or province.
    pub region: String,
    /// Postal code.
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
    /// Phone number.
    pub phone: String,
}

/// A user account.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct UserRecord {
    /// UUIDv7 bytes.
    pub id: Id,
    /// Optimistic-concurrency version.
    pub version: u64,
    /// Normalised email.
    pub email: String,
    /// Display name.
    pub name: String,
    /// PHC-format argon2id hash.
    pub password_hash: String,
    /// Role.
    pub role: RoleRecord,
    /// Seller managed by a `Seller` user.
    pub seller_id: Option<Id>,
    /// Saved addresses.
    pub addresses: Vec<AddressRecord>,
    /// Default address.
    pub default_address_id: Option<Id>,
    /// Whether the user proved the address theirs (a verification link).
    pub email_verified: bool,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: i64,
    /// Last update time, Unix milliseconds.
    pub updated_at_ms: i64,
}

impl StoredRecord for UserRecord {
    const CF: &'static str = crate::cf::CF_USERS;
}

/// A refresh token, stored under the SHA-256 of its value (the value itself is never stored).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct RefreshTokenRecord {
    /// Owner.
    pub user_id: Id,
    /// Rotation chain the token belongs to.
    pub family_id: Id,
    /// Expiry, Unix milliseconds.
    pub expires_at_ms: i64,
    /// Already exchanged for a newer token; presenting it again signals theft.
    pub rotated: bool,
    /// Issue time, Unix milliseconds.
    pub created_at_ms: i64,
}

impl StoredRecord for RefreshTokenRecord {
    const CF: &'static str = crate::cf::CF_REFRESH_TOKENS;
}

/// A refresh-token family: one login session and its rotations.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(derive(Debug))]
pub struct TokenFamilyRecord {
    /// Owner.
    pub user_id: Id,
    /// Family id.
    pub family_id: Id,
    /// Revoked by logout, reuse detection or an admin.
    pub revoked: bool,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: i64,
}

impl StoredRecord for TokenFamilyRecord {
    const CF: &'static str = crate::cf::CF_TOKEN_FAMILIES;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn attribute() -> impl Strategy<Value = AttributeRecord> {
        (
            "[a-z_]{1,12}",
            prop_oneof![
                ".{0,20}".prop_map(AttributeValue::Text),
                any::<i32>().prop_map(|n| AttributeValue::Number(n as f64 / 4.0)),
                any::<bool>().prop_map(AttributeValue::Bool),
            ],
        )
            .prop_map(|(name, value)| AttributeRecord { name, value })
    }

    fn product() -> impl Strategy<Value = ProductRecord> {
        (
            any::<[u8; 16]>(),
            1..u64::MAX,
            proptest::option::of(".{0,10}"),
            ".{0,30}",
            proptest::collection::vec(attribute(), 0..5),
            proptest::collection::vec(
                ("[A-Z0-9-]{1,12}", any::<i64>(), proptest::option::of(any::<i64>())),
                1..4,
            ),
            any::<Option<[u8; 16]>>(),
            any::<i64>(),
        )
            .prop_map(
                |(id, version, external_id, title, attributes, variants, category_id, created)| ProductRecord {
                    id,
                    version,
                    external_id,
                    slug: format!("p-{}", version),
                    title: title.clone(),
                    description: title,
                    brand: Some("Acme".into()),
                    category_id,
                    seller_id: None,
                    status: ProductStatus::Published,
                    currency: "USD".into(),
                    images: vec![ImageRecord {
                        url: "https://img.example/1.jpg".into(),
                        alt: String::new(),
                    }],
                    attributes: attributes.clone(),
                    variants: variants
                        .into_iter()
                        .map(|(sku, price_cents, compare_at_cents)| VariantRecord {
                            sku,
                            title: String::new(),
                            price_cents,
                            compare_at_cents,
                            attributes: attributes.clone(),
                            weight_grams: 250,
                        })
                        .collect(),
                    rating_sum: 0,
                    rating_count: 0,
                    created_at_ms: created,
                    updated_at_ms: created,
                },
            )
    }

    proptest! {
        #[test]
        fn product_records_round_trip_through_rkyv(record in product()) {
            let bytes = encode(&record).unwrap();
            let owned = Owned::<ProductRecord>::from_slice(b"k", &bytes).unwrap();
            prop_assert_eq!(owned.archived().title.as_str(), record.title.as_str());
            prop_assert_eq!(owned.archived().variants.len(), record.variants.len());
            let native = owned.to_native();
            // NaN never appears (numbers come from integers), so PartialEq is total here.
            prop_assert_eq!(native, record);
        }
    }

    #[test]
    fn garbage_bytes_are_reported_as_corrupt() {
        let err = Owned::<ProductRecord>::from_slice(b"key", &[0xff; 7]).unwrap_err();
        assert!(matches!(err, Error::Corrupt { cf: "products", .. }), "{err}");
    }
}
