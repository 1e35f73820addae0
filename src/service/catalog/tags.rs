//! Surrogate keys: the CDN cache tags a page carries and a change purges.
//!
//! Tags describe what a page shows, so each change purges exactly the pages it affects:
//!
//! | page | tags |
//! |---|---|
//! | product | `product-<id>`, `category-<id>` for its category path (names shown), `seller-<id>` |
//! | listing | `list-<scope>` (`list-all`, `list-category-<id>`, `list-seller-<id>`, `list-brand-<slug>`), `product-<id>` per item |
//! | search | `search`, `product-<id>` per hit |
//! | suggest | `suggest` |
//! | category tree / category | `categories`, `category-<id>` |
//! | reviews | `reviews-<product id>`, `product-<id>` |
//!
//! | change | purges |
//! |---|---|
//! | product edit | `product-<id>`, `search`; `list-<scope>` of every scope it was or is in when its listing facts (visibility, price, stock state, rating, category, seller, brand) change; `suggest` when its title, brand, category or visibility change |
//! | stock | `sku-<sku>`, `product-<id>`; its scopes' `list-<scope>` and `search` when it comes in or goes out of stock |
//! | category rename | `categories`, `category-<id>`, `search`, `suggest` |
//! | category move | that, and `product-<id>` and the old and new scopes' `list-<scope>` of every product under it |
//! | seller rename | `seller-<id>` |
//! | review | `reviews-<product id>` (and the product's tags when its rating changes) |
//!
//! Every tag is built here, so a page and the purge that must reach it cannot spell a tag
//! differently. No listing depends on a catch-all tag; search pages share `search`, since any
//! text change may change which searches match.

use std::collections::HashSet;

use storefront_storage::listing::{self, ListingFacts, Scope};

use super::taxonomy::CategoryTree;
use crate::domain::{Id, Slug};

/// The tag of every search result page.
pub const SEARCH: &str = "search";
/// The tag of every autocomplete answer.
pub const SUGGEST: &str = "suggest";
/// The tag of category tree documents.
pub const CATEGORIES: &str = "categories";

/// `list-<scope>`: the listing pages of a scope.
pub fn list(scope: &Scope<'_>) -> String {
    match scope {
        Scope::All => "list-all".to_owned(),
        Scope::Category(id) => format!("list-{}", category(Id::from_bytes(*id))),
        Scope::Seller(id) => format!("list-{}", seller(Id::from_bytes(*id))),
        Scope::Brand(b) => format!("list-{}", brand(b)),
    }
}

/// The `list-<scope>` tags of every scope a product with `facts` is listed in.
pub fn lists(facts: &ListingFacts) -> Vec<String> {
    let mut out = vec![list(&Scope::All)];
    out.extend(facts.category_path.iter().map(|c| list(&Scope::Category(*c))));
    if let Some(s) = facts.seller_id {
        out.push(list(&Scope::Seller(s)));
    }
    if let Some(b) = &facts.brand {
        out.push(list(&Scope::Brand(b)));
    }
    out
}

/// `product-<id>`.
pub fn product_id(id: Id) -> String {
    format!("product-{id}")
}

/// `reviews-<product id>`: a product's public review pages.
pub fn reviews(product: Id) -> String {
    format!("reviews-{product}")
}

/// `category-<id>`.
pub fn category(id: Id) -> String {
    format!("category-{id}")
}

/// `seller-<id>`.
pub fn seller(id: Id) -> String {
    format!("seller-{id}")
}

/// `sku-<sku>`.
pub fn sku(sku: &str) -> String {
    format!("sku-{sku}")
}

/// `brand-<slug>` of a normalised brand name.
pub fn brand(normalized: &str) -> String {
    let slug = Slug::derive(normalized, 60)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|| format!("{:x}", listing::brand_hash(normalized)));
    format!("brand-{slug}")
}

/// The tags of a product page: the product, its category path and its seller (whose names
/// it shows).
pub fn product(id: Id, category_id: Option<Id>, seller_id: Option<Id>, tree: &CategoryTree) -> Vec<String> {
    let mut tags = vec![product_id(id)];
    if let Some(c) = category_id {
        tags.extend(tree.path_up(c).into_iter().map(category));
    }
    if let Some(s) = seller_id {
        tags.push(seller(s));
    }
    tags
}

/// Removes repeated tags, keeping the first of each.
pub fn dedup(tags: &mut Vec<String>) {
    let mut seen = HashSet::new();
    tags.retain(|t| seen.insert(t.clone()));
}
