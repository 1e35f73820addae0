//! Binary key builders. Every key in the database is built here.
//!
//! Keys are big-endian so that RocksDB's bytewise order equals logical order: ids are UUIDv7
//! bytes (time-ordered), sequence numbers are `u64` big-endian, and signed numbers are
//! sign-flipped before encoding so negative values sort first.

/// A 16-byte entity id (UUIDv7 bytes).
pub type Id = [u8; 16];

/// Slug namespaces inside [`crate::cf::CF_SLUGS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SlugKind {
    /// Product slugs.
    Product = b'p',
    /// Category slugs.
    Category = b'c',
    /// Seller slugs.
    Seller = b's',
}

/// Meta key holding the schema version.
pub const META_SCHEMA_VERSION: &[u8] = b"schema_version";
/// Meta key prefix for listing counters (`count/` + scope).
pub const META_COUNT_PREFIX: &[u8] = b"count/";
/// Meta key holding the highest changelog sequence deleted by retention.
pub const META_CHANGELOG_TRUNCATED: &[u8] = b"changelog_truncated_through";
/// Meta key prefix for consumer cursors (`cursor/` + consumer name).
pub const META_CURSOR_PREFIX: &[u8] = b"cursor/";

/// Key of a product record.
pub fn product(id: &Id) -> Id {
    *id
}

/// Key of a category record.
pub fn category(id: &Id) -> Id {
    *id
}

/// Key of a seller record.
pub fn seller(id: &Id) -> Id {
    *id
}

/// Key of the SKU → product index entry and of the SKU's inventory record.
pub fn sku(sku: &str) -> &[u8] {
    sku.as_bytes()
}

/// Key of a slug in the unique slug index.
pub fn slug(kind: SlugKind, slug: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + slug.len());
    key.push(kind as u8);
    key.extend_from_slice(slug.as_bytes());
    key
}

/// Key of an imported product's source id (`source` names the feed, e.g. `chorus`).
pub fn external_id(source: &str, external_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(source.len() + 1 + external_id.len());
    key.extend_from_slice(source.as_bytes());
    key.push(0);
    key.extend_from_slice(external_id.as_bytes());
    key
}

/// Key of a user record.
pub fn user(id: &Id) -> Id {
    *id
}

/// Key of a refresh-token family: `user ‖ family`, so a user's families are one prefix.
pub fn token_family(user: &Id, family: &Id) -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(user);
    key[16..].copy_from_slice(family);
    key
}

/// Meta key prefix for SKUs whose availability crossed zero or the low-stock line without a
/// changelog entry yet (`stock_dirty/` + SKU); written in the cart batch, cleared by the catalog.
pub const META_STOCK_DIRTY_PREFIX: &[u8] = b"stock_dirty/";

/// Key of a cart: an owner tag and 16 bytes (a guest token digest or a user id).
pub type CartKey = [u8; 17];

/// Key of a guest cart, from the first 16 bytes of its token's SHA-256.
pub fn guest_cart(token_digest: &[u8; 16]) -> CartKey {
    let mut key = [0u8; 17];
    key[0] = b'g';
    key[1..].copy_from_slice(token_digest);
    key
}

/// Key of a user's cart (one active cart per user).
pub fn user_cart(user: &Id) -> CartKey {
    let mut key = [0u8; 17];
    key[0] = b'u';
    key[1..].copy_from_slice(user);
    key
}

/// Key of a stock hold: `sku ‖ 0 ‖ holder`, so one SKU's holds are one prefix. SKUs never
/// contain a zero byte (they are validated to `[A-Za-z0-9._-]`).
pub fn reservation(sku: &str, holder: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(sku.len() + 1 + holder.len());
    key.extend_from_slice(sku.as_bytes());
    key.push(0);
    key.extend_from_slice(holder);
    key
}

/// Splits a reservation key into its SKU and holder.
pub fn reservation_parts(key: &[u8]) -> Option<(&str, &[u8])> {
    let split = key.iter().position(|b| *b == 0)?;
    let sku = std::str::from_utf8(&key[..split]).ok()?;
    Some((sku, &key[split + 1..]))
}

/// The time indexes in [`crate::cf::CF_CART_EXPIRY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExpiryKind {
    /// The cart itself expires (inactivity).
    Cart = b'c',
    /// The cart's stock holds expire.
    Hold = b'h',
    /// A user cart with items has been left alone long enough to remind its owner.
    Abandon = b'a',
}

/// Key of a cart-expiry index entry: `kind ‖ time ‖ cart`, so a scan of one kind meets the
/// earliest deadlines first.
pub fn cart_expiry(kind: ExpiryKind, at_ms: i64, cart: &CartKey) -> [u8; 26] {
    let mut key = [0u8; 26];
    key[0] = kind as u8;
    key[1..9].copy_from_slice(&encode_i64(at_ms));
    key[9..].copy_from_slice(cart);
    key
}

/// Decodes a cart-expiry key into its deadline and cart key.
pub fn cart_expiry_parts(key: &[u8]) -> Option<(i64, CartKey)> {
    if key.len() != 26 {
        return None;
    }
    let at = decode_i64(key[1..9].try_into().ok()?);
    Some((at, key[9..].try_into().ok()?))
}

/// The indexes in [`crate::cf::CF_ORDER_INDEX`], each a key prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum OrderIndex {
    /// `u ‖ user id ‖ order id`: a customer's orders, oldest first.
    User = b'u',
    /// `s ‖ seller id ‖ order id`: the orders holding a seller's lines.
    Seller = b's',
    /// `n ‖ number (u64 BE)` → order id: lookup by number, and the highest number in use.
    Number = b'n',
    /// `p ‖ order id`: orders waiting for their payment to be settled (the recovery worker's
    /// queue).
    Pending = b'p',
    /// `v ‖ confirmed at (Unix ms, i64 BE) ‖ order id`: confirmed orders waiting for their
    /// invoice number (the numbering worker's queue), oldest confirmation first.
    Uninvoiced = b'v',
    /// `i ‖ order id` → invoice number (u64 BE).
    Invoice = b'i',
    /// `j` → the highest invoice number given (u64 BE), written with the numbers.
    InvoiceNumber = b'j',
    /// `r ‖ return id` → the order id of a return.
    Return = b'r',
}

/// Key of an order index entry: the index, an owner (empty for `Pending`), then the tail (the
/// order id, or the number).
pub fn order_index(index: OrderIndex, owner: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + owner.len() + tail.len());
    key.push(index as u8);
    key.extend_from_slice(owner);
    key.extend_from_slice(tail);
    key
}

/// Key of one timeline event of an order.
pub fn order_event(order: &Id, seq: u32) -> [u8; 20] {
    let mut key = [0u8; 20];
    key[..16].copy_from_slice(order);
    key[16..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// Key of an idempotency record: the caller's scope (a user id or a guest's cart digest,
/// 17 bytes) and the client's key.
pub fn idempotency(scope: &[u8], key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(scope.len() + 1 + key.len());
    out.extend_from_slice(scope);
    out.push(0);
    out.extend_from_slice(key.as_bytes());
    out
}

/// Key of an outbox event.
pub fn outbox(id: &Id) -> Id {
    *id
}

/// Meta key marking a SKU whose stock signal is pending.
pub fn meta_stock_dirty(sku: &str) -> Vec<u8> {
    [META_STOCK_DIRTY_PREFIX, sku.as_bytes()].concat()
}

/// Key of a changelog entry.
pub fn changelog(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Decodes a changelog key.
pub fn changelog_seq(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

/// Key of a consumer's cursor in the meta column family.
pub fn meta_cursor(consumer: &str) -> Vec<u8> {
    [META_CURSOR_PREFIX, consumer.as_bytes()].concat()
}

/// Encodes an `i64` so that bytewise order equals numeric order.
pub fn encode_i64(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

/// Inverse of [`encode_i64`].
pub fn decode_i64(bytes: [u8; 8]) -> i64 {
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as i64
}

/// Returns the smallest key greater than every key starting with `prefix`, or `None` when the
/// prefix is all `0xff` (no upper bound needed).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Key of a coupon (its code, upper case).
pub fn coupon(code: &str) -> Vec<u8> {
    [b"c/".as_slice(), code.as_bytes()].concat()
}

/// Prefix of every coupon's key.
pub const COUPON_PREFIX: &[u8] = b"c/";

/// Key of a customer's redemptions of a coupon (an `i64`, big-endian); `customer` is a user id
/// or a guest's normalized email.
pub fn coupon_use(code: &str, customer: &[u8]) -> Vec<u8> {
    [b"u/".as_slice(), code.as_bytes(), &[0], customer].concat()
}

/// Key of an automatic promotion.
pub fn promotion(id: &Id) -> Vec<u8> {
    [b"p/".as_slice(), id].concat()
}

/// Prefix of every promotion's key.
pub const PROMOTION_PREFIX: &[u8] = b"p/";

/// Key of an order's redemption: its value is the coupon's code and the customer key.
pub fn coupon_order(order: &Id) -> Vec<u8> {
    [b"o/".as_slice(), order].concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn i64_encoding_round_trips_and_preserves_order(a: i64, b: i64) {
            prop_assert_eq!(decode_i64(encode_i64(a)), a);
            prop_assert_eq!(a.cmp(&b), encode_i64(a).cmp(&encode_i64(b)));
        }

        #[test]
        fn changelog_keys_sort_by_sequence(a: u64, b: u64) {
            prop_assert_eq!(a.cmp(&b), changelog(a).cmp(&changelog(b)));
            prop_assert_eq!(changelog_seq(&changelog(a)), Some(a));
        }

        #[test]
        fn prefix_successor_bounds_every_extension(prefix in proptest::collection::vec(any::<u8>(), 1..8), tail in proptest::collection::vec(any::<u8>(), 0..8)) {
            let key = [prefix.clone(), tail].concat();
            if let Some(end) = prefix_successor(&prefix) {
                prop_assert!(key < end);
                prop_assert!(prefix < end);
            } else {
                prop_assert!(prefix.iter().all(|b| *b == 0xff));
            }
        }

        #[test]
        fn reservation_keys_split_back_and_group_by_sku(sku in "[A-Za-z0-9._-]{1,64}", holder in proptest::collection::vec(any::<u8>(), 17)) {
            let key = reservation(&sku, &holder);
            prop_assert_eq!(reservation_parts(&key), Some((sku.as_str(), holder.as_slice())));
            // A SKU's prefix never captures holds of a longer SKU that starts with it.
            let longer = reservation(&format!("{sku}x"), &holder);
            prop_assert!(!longer.starts_with(&reservation(&sku, &[])));
        }

        #[test]
        fn cart_expiry_keys_sort_by_deadline(a in 0i64..i64::MAX / 2, b in 0i64..i64::MAX / 2, user: [u8; 16]) {
            let cart = user_cart(&user);
            let (ka, kb) = (cart_expiry(ExpiryKind::Hold, a, &cart), cart_expiry(ExpiryKind::Hold, b, &cart));
            prop_assert_eq!(a.cmp(&b), ka.cmp(&kb));
            prop_assert_eq!(cart_expiry_parts(&ka), Some((a, cart)));
        }

        #[test]
        fn order_events_sort_by_sequence_within_an_order(a: u32, b: u32, order: [u8; 16]) {
            prop_assert_eq!(a.cmp(&b), order_event(&order, a).cmp(&order_event(&order, b)));
            prop_assert!(order_event(&order, a).starts_with(&order));
        }

        #[test]
        fn order_numbers_sort_numerically(a: u64, b: u64) {
            let (ka, kb) = (order_index(OrderIndex::Number, &[], &a.to_be_bytes()), order_index(OrderIndex::Number, &[], &b.to_be_bytes()));
            prop_assert_eq!(a.cmp(&b), ka.cmp(&kb));
        }

        #[test]
        fn slugs_of_different_kinds_never_collide(s: String) {
            prop_assert_ne!(slug(SlugKind::Product, &s), slug(SlugKind::Category, &s));
        }
    }
}
