//! rkyv records of what shoppers want and do: wishlists, and the behaviour log (views and
//! add-to-carts) that recommendations learn from. Purchases are the orders themselves.

use rkyv::{Archive, Deserialize, Serialize};

use crate::keys::Id;
use crate::records::StoredRecord;

/// One wishlisted product of a user, keyed by `user id ‖ product id` in
/// [`crate::cf::CF_WISHLISTS`]. It keeps what the shopper last saw, so an alert fires once per
/// change: when stock comes back after being out, or the price drops below what they saw.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct WishlistRecord {
    /// The user.
    pub user_id: Id,
    /// The product.
    pub product_id: Id,
    /// A variant the shopper wants, or any.
    pub sku: Option<String>,
    /// Price last seen (the variant's, or the lowest), minor units.
    pub seen_price_cents: i64,
    /// Whether it was in stock when last seen.
    pub seen_in_stock: bool,
    /// When it was added, Unix milliseconds.
    pub added_at_ms: i64,
}

impl StoredRecord for WishlistRecord {
    const CF: &'static str = crate::cf::CF_WISHLISTS;
}

/// Key of a wishlist entry, and (with the halves swapped and a `w` prefix) of its reverse
/// index entry in [`crate::cf::CF_WISHLIST_WATCHERS`].
pub fn wishlist(user: &Id, product: &Id) -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(user);
    key[16..].copy_from_slice(product);
    key
}

/// What a shopper did.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug), compare(PartialEq))]
pub enum BehaviourKind {
    /// Opened a product page.
    View,
    /// Put the product in a cart.
    Cart,
}

/// One recorded action, keyed by a sequence number (u64 BE) in [`crate::cf::CF_BEHAVIOUR`].
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct BehaviourRecord {
    /// What.
    pub kind: BehaviourKind,
    /// The product.
    pub product_id: Id,
    /// The signed-in user, if any.
    pub user_id: Option<Id>,
    /// A pseudonymous session (a hash of the cart token) linking a guest's actions.
    pub session: u64,
    /// When, Unix milliseconds (the latest, for a coalesced record).
    pub at_ms: i64,
    /// How many such actions: a step's anonymous views of one product are one record.
    pub count: u32,
}

impl StoredRecord for BehaviourRecord {
    const CF: &'static str = crate::cf::CF_BEHAVIOUR;
}
