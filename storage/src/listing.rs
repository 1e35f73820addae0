//! The product listing index: one key per (scope, sort order, product).
//!
//! A listing request is served by scanning one scope (everything, a category including its
//! descendants, a seller, or a brand) in one sort order, so page N costs the same as page 1:
//! the cursor is the last key returned. Each entry's value carries the fields other filters
//! need (price, seller, brand, stock), so secondary filters never load the product record.
//!
//! Key: `scope ‖ sort tag ‖ sort value ‖ product id`. A product appears under every ancestor of
//! its category, which is what makes "category including descendants" a single range scan.

use crate::keys::{encode_i64, Id};

/// The set of products a listing ranges over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Every published product.
    All,
    /// Products in a category or any of its descendants.
    Category(Id),
    /// Products of a seller.
    Seller(Id),
    /// Products of a brand (normalised with [`normalize_brand`]).
    Brand(&'a str),
}

impl Scope<'_> {
    /// Encodes the scope as a key prefix.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Scope::All => vec![0],
            Scope::Category(id) => [&[1u8][..], id].concat(),
            Scope::Seller(id) => [&[2u8][..], id].concat(),
            Scope::Brand(brand) => {
                let mut key = Vec::with_capacity(brand.len() + 2);
                key.push(3);
                key.extend(brand.bytes().filter(|b| *b != 0));
                key.push(0);
                key
            }
        }
    }
}

/// Sort orders materialised in the index. Descending orders scan backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// By product id (UUIDv7, so creation time).
    Newest,
    /// By lowest variant price.
    Price,
    /// By average rating.
    Rating,
}

impl SortKey {
    const ALL: [SortKey; 3] = [SortKey::Newest, SortKey::Price, SortKey::Rating];

    fn tag(self) -> u8 {
        match self {
            SortKey::Newest => b'n',
            SortKey::Price => b'p',
            SortKey::Rating => b'r',
        }
    }
}

/// Returns the brand in the form used for brand scopes and filters: trimmed and lowercased.
pub fn normalize_brand(brand: &str) -> String {
    brand.trim().to_lowercase()
}

/// A stable 64-bit FNV-1a hash of a normalised brand, stored in index entries.
pub fn brand_hash(normalized: &str) -> u64 {
    normalized.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What the listing index needs to know about a product.
#[derive(Debug, Clone, PartialEq)]
pub struct ListingFacts {
    /// Product id.
    pub id: Id,
    /// Lowest variant price in minor units.
    pub min_price_cents: i64,
    /// Average rating × 100 (0 when unrated).
    pub rating_x100: u16,
    /// Owning seller.
    pub seller_id: Option<Id>,
    /// Normalised brand.
    pub brand: Option<String>,
    /// The product's category followed by all its ancestors.
    pub category_path: Vec<Id>,
    /// Whether any variant has available stock.
    pub in_stock: bool,
}

/// The fixed-size value of an index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryValue {
    /// Lowest variant price in minor units.
    pub min_price_cents: i64,
    /// Owning seller (all zero when none).
    pub seller_id: Id,
    /// [`brand_hash`] of the brand (0 when none).
    pub brand_hash: u64,
    /// Whether any variant has available stock.
    pub in_stock: bool,
}

impl EntryValue {
    /// Encoded length in bytes.
    pub const LEN: usize = 8 + 16 + 8 + 1;

    /// Encodes the value.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..8].copy_from_slice(&self.min_price_cents.to_be_bytes());
        out[8..24].copy_from_slice(&self.seller_id);
        out[24..32].copy_from_slice(&self.brand_hash.to_be_bytes());
        out[32] = self.in_stock as u8;
        out
    }

    /// Decodes a value written by [`EntryValue::encode`].
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::LEN {
            return None;
        }
        Some(EntryValue {
            min_price_cents: i64::from_be_bytes(bytes[..8].try_into().ok()?),
            seller_id: bytes[8..24].try_into().ok()?,
            brand_hash: u64::from_be_bytes(bytes[24..32].try_into().ok()?),
            in_stock: bytes[32] != 0,
        })
    }
}

/// Returns the key prefix shared by all entries of `scope` in `sort` order.
pub fn prefix(scope: Scope<'_>, sort: SortKey) -> Vec<u8> {
    let mut key = scope.encode();
    key.push(sort.tag());
    key
}

/// Returns the encoded sort value of a price (for range bounds on price scans).
pub fn price_value(price_cents: i64) -> [u8; 8] {
    encode_i64(price_cents)
}

fn entry_key(scope: Scope<'_>, sort: SortKey, facts: &ListingFacts) -> Vec<u8> {
    let mut key = prefix(scope, sort);
    match sort {
        SortKey::Newest => {}
        SortKey::Price => key.extend_from_slice(&encode_i64(facts.min_price_cents)),
        SortKey::Rating => key.extend_from_slice(&facts.rating_x100.to_be_bytes()),
    }
    key.extend_from_slice(&facts.id);
    key
}

/// Returns the product id at the end of an index key.
pub fn product_id_of(key: &[u8]) -> Option<Id> {
    key.get(key.len().checked_sub(16)?..)?.try_into().ok()
}

/// Returns the encoded scopes a product belongs to (used for counters and cache tags).
pub fn scopes_of(facts: &ListingFacts) -> Vec<Vec<u8>> {
    let mut scopes = vec![Scope::All.encode()];
    scopes.extend(facts.category_path.iter().map(|c| Scope::Category(*c).encode()));
    if let Some(seller) = facts.seller_id {
        scopes.push(Scope::Seller(seller).encode());
    }
    if let Some(brand) = &facts.brand {
        scopes.push(Scope::Brand(brand).encode());
    }
    scopes
}

/// Returns every index entry of a product: each scope × each sort order.
pub fn entries(facts: &ListingFacts) -> Vec<(Vec<u8>, [u8; EntryValue::LEN])> {
    let value = EntryValue {
        min_price_cents: facts.min_price_cents,
        seller_id: facts.seller_id.unwrap_or([0; 16]),
        brand_hash: facts.brand.as_deref().map(brand_hash).unwrap_or(0),
        in_stock: facts.in_stock,
    }
    .encode();
    let mut scopes = vec![Scope::All];
    scopes.extend(facts.category_path.iter().map(|c| Scope::Category(*c)));
    if let Some(seller) = facts.seller_id {
        scopes.push(Scope::Seller(seller));
    }
    if let Some(brand) = &facts.brand {
        scopes.push(Scope::Brand(brand));
    }
    scopes
        .into_iter()
        .flat_map(|scope| SortKey::ALL.map(|sort| (entry_key(scope, sort, facts), value)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn facts(id: u8, price: i64) -> ListingFacts {
        ListingFacts {
            id: [id; 16],
            min_price_cents: price,
            rating_x100: 0,
            seller_id: None,
            brand: Some("acme".into()),
            category_path: vec![[9; 16], [8; 16]],
            in_stock: true,
        }
    }

    proptest! {
        #[test]
        fn price_keys_sort_by_price_then_id(a in any::<i64>(), b in any::<i64>(), ia: u8, ib: u8) {
            let ka = entry_key(Scope::All, SortKey::Price, &facts(ia, a));
            let kb = entry_key(Scope::All, SortKey::Price, &facts(ib, b));
            prop_assert_eq!(ka.cmp(&kb), (a, ia).cmp(&(b, ib)));
        }

        #[test]
        fn entry_values_round_trip(price: i64, seller: [u8; 16], hash: u64, in_stock: bool) {
            let v = EntryValue { min_price_cents: price, seller_id: seller, brand_hash: hash, in_stock };
            prop_assert_eq!(EntryValue::decode(&v.encode()), Some(v));
        }
    }

    #[test]
    fn a_product_is_indexed_under_every_ancestor_category() {
        let entries = entries(&facts(1, 100));
        // all + two categories + brand, three sort orders each
        assert_eq!(entries.len(), 4 * 3);
        let category_prefix = prefix(Scope::Category([8; 16]), SortKey::Newest);
        assert!(entries.iter().any(|(k, _)| k.starts_with(&category_prefix)));
        assert!(entries.iter().all(|(k, _)| product_id_of(k) == Some([1; 16])));
    }

    #[test]
    fn brand_scopes_do_not_prefix_each_other() {
        let short = prefix(Scope::Brand("hp"), SortKey::Newest);
        let long = prefix(Scope::Brand("hpe"), SortKey::Newest);
        assert!(!long.starts_with(&short));
    }
}
