//! Surrogate keys: the CDN cache tags a page carries and a change purges.
//!
//! A page is tagged with everything it shows (`product-<id>`, `category-<id>` for the whole
//! category path, `seller-<id>`, `brand-<slug>`); a change records the tags of what it
//! touched in its changelog entry, and the purger sends those. Every tag is built here, so a
//! page and the purge that must reach it cannot spell a tag differently.

use std::collections::HashSet;

use storefront_storage::listing;

use super::taxonomy::CategoryTree;
use crate::domain::{Id, Slug};

/// The tag every listing and search page carries: any product change may reorder them.
pub const PRODUCTS: &str = "products";
/// The tag of category tree documents.
pub const CATEGORIES: &str = "categories";

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

/// The tags of a product page: the product, its category path, its seller and its brand.
pub fn product(
    id: Id,
    category_id: Option<Id>,
    seller_id: Option<Id>,
    brand_name: Option<&str>,
    tree: &CategoryTree,
) -> Vec<String> {
    let mut tags = vec![product_id(id)];
    if let Some(c) = category_id {
        tags.extend(tree.path_up(c).into_iter().map(category));
    }
    if let Some(s) = seller_id {
        tags.push(seller(s));
    }
    if let Some(b) = brand_name {
        tags.push(brand(&listing::normalize_brand(b)));
    }
    tags
}

/// Removes repeated tags, keeping the first of each.
pub fn dedup(tags: &mut Vec<String>) {
    let mut seen = HashSet::new();
    tags.retain(|t| seen.insert(t.clone()));
}
