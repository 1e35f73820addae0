//! Listing pages (`GET /products`) over the listing index, and the listing facts of a product
//! that decide which index entries it has.
//!
//! A listing is planned from its parameters (scope, sort, key range, post-filters), answered
//! from the cache under the scope's generation, and rendered on a miss by one bounded index
//! scan plus one batched read of the products on the page.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use storefront_storage::keys;
use storefront_storage::listing::{self, EntryValue, ListingFacts, Scope, SortKey};
use storefront_storage::records::{InventoryRecord, ProductRecord};
use storefront_storage::{ListingScan, Txn};

use super::{tags, Catalog, CategoryTree};
use crate::domain::product::{self, RatingSummary};
use crate::domain::{query, FieldErrors, Id};
use crate::service::inventory::StockLedger;
use crate::service::representation::Representation;
use crate::service::view::{stored_status, ListingItem, ListingPage};
use crate::service::{blocking, ServiceError};

/// Raw listing query parameters, validated by [`Catalog::list_products`].
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListingParams {
    /// Category id or slug; descendants are included.
    pub category: Option<String>,
    /// Seller id or slug.
    pub seller: Option<String>,
    /// Brand name (case and spacing do not matter).
    pub brand: Option<String>,
    /// Lowest price, minor units.
    pub min_price: Option<String>,
    /// Highest price, minor units.
    pub max_price: Option<String>,
    /// `true` for products with available stock only.
    pub in_stock: Option<String>,
    /// `newest` (default), `price_asc`, `price_desc` or `rating`.
    pub sort: Option<String>,
    /// Page size, 1–100 (default 20).
    pub limit: Option<String>,
    /// Opaque cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

pub(super) struct ListingPlan {
    pub(super) scope_key: Vec<u8>,
    scope_tag: String,
    canonical: String,
    lower: Vec<u8>,
    upper: Vec<u8>,
    cursor: Option<Vec<u8>>,
    reverse: bool,
    limit: usize,
    filter: PostFilter,
    exact_total: bool,
}

/// Filters applied to index entries that the scanned scope does not already guarantee.
#[derive(Debug, Clone, Copy)]
struct PostFilter {
    seller: Option<[u8; 16]>,
    brand_hash: Option<u64>,
    min_price: Option<i64>,
    max_price: Option<i64>,
    in_stock: bool,
}

impl PostFilter {
    fn is_noop(&self) -> bool {
        self.seller.is_none()
            && self.brand_hash.is_none()
            && self.min_price.is_none()
            && self.max_price.is_none()
            && !self.in_stock
    }

    fn accepts(&self, e: &EntryValue) -> bool {
        self.seller.is_none_or(|s| s == e.seller_id)
            && self.brand_hash.is_none_or(|b| b == e.brand_hash)
            && self.min_price.is_none_or(|m| e.min_price_cents >= m)
            && self.max_price.is_none_or(|m| e.min_price_cents <= m)
            && (!self.in_stock || e.in_stock)
    }
}

impl Catalog {
    /// Returns a listing page.
    pub async fn list_products(self: &Arc<Self>, params: &ListingParams) -> Result<Arc<Representation>, ServiceError> {
        let plan = self.plan_listing(params)?;
        let cache_key = self.listing_cache_key(&plan);
        if let Some(hit) = self.listings.get(cache_key.as_str()) {
            return Ok(hit);
        }
        let this = self.clone();
        blocking(move || {
            let epoch = this.epoch.load(Ordering::Acquire);
            let repr = this.render_listing(&plan)?;
            Ok(this.fill(&this.listings, cache_key, epoch, repr))
        })
        .await
    }

    /// The listing page for `params` if it is already rendered and current, without touching
    /// storage (what the HTTP fast path serves). Invalid parameters are `None` too: the full
    /// path reports them.
    pub fn cached_listing(&self, params: &ListingParams) -> Option<Arc<Representation>> {
        let plan = self.plan_listing(params).ok()?;
        self.listings.get(self.listing_cache_key(&plan).as_str())
    }

    /// Pages of a scope are keyed under its generation, so a change to the scope retires them
    /// all at once.
    fn listing_cache_key(&self, plan: &ListingPlan) -> String {
        let generation = self.generations.get(&plan.scope_key).map(|g| *g).unwrap_or(0);
        format!("{generation}|{}", plan.canonical)
    }

    fn plan_listing(&self, params: &ListingParams) -> Result<ListingPlan, ServiceError> {
        let mut errors = FieldErrors::default();
        let limit = query::limit(params.limit.as_deref(), &mut errors);
        let (min_price, max_price) =
            query::price_range(params.min_price.as_deref(), params.max_price.as_deref(), &mut errors);
        let in_stock = query::flag("in_stock", params.in_stock.as_deref(), &mut errors);
        let (sort_name, sort, reverse) = match params.sort.as_deref().unwrap_or("newest") {
            "newest" => ("newest", SortKey::Newest, true),
            "price_asc" => ("price_asc", SortKey::Price, false),
            "price_desc" => ("price_desc", SortKey::Price, true),
            "rating" => ("rating", SortKey::Rating, true),
            _ => {
                errors.add(
                    "sort",
                    "invalid",
                    "must be one of newest, price_asc, price_desc, rating",
                );
                ("newest", SortKey::Newest, true)
            }
        };
        let (category, seller) = self.resolve_refs(params.category.as_deref(), params.seller.as_deref(), &mut errors);
        let brand = params.brand.as_deref().map(listing::normalize_brand);
        if brand.as_deref() == Some("") {
            errors.add("brand", "required", "must not be empty");
        }
        let cursor = match params.cursor.as_deref() {
            None => None,
            Some(c) => Some(URL_SAFE_NO_PAD.decode(c).map_err(|_| ServiceError::InvalidCursor)?),
        };
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }

        let scope = match (category, seller, brand.as_deref()) {
            (Some(c), _, _) => Scope::Category(c.to_bytes()),
            (None, Some(s), _) => Scope::Seller(s.to_bytes()),
            (None, None, Some(b)) => Scope::Brand(b),
            (None, None, None) => Scope::All,
        };
        let scope_tag = tags::list(&scope);
        let prefix = listing::prefix(scope, sort);
        let mut lower = prefix.clone();
        let mut upper = keys::prefix_successor(&prefix).expect("listing prefixes never end in 0xff");
        let price_in_key = sort == SortKey::Price && (min_price.is_some() || max_price.is_some());
        if price_in_key {
            if let Some(lo) = min_price {
                lower = [prefix.as_slice(), &listing::price_value(lo)].concat();
            }
            if let Some(hi) = max_price.filter(|hi| *hi < i64::MAX) {
                upper = [prefix.as_slice(), &listing::price_value(hi + 1)].concat();
            }
        }
        if let Some(c) = &cursor {
            if c.as_slice() < lower.as_slice() || c.as_slice() >= upper.as_slice() {
                return Err(ServiceError::InvalidCursor);
            }
        }
        let filter = PostFilter {
            seller: seller
                .filter(|_| !matches!(scope, Scope::Seller(_)))
                .map(|s| s.to_bytes()),
            brand_hash: brand
                .as_deref()
                .filter(|_| !matches!(scope, Scope::Brand(_)))
                .map(listing::brand_hash),
            min_price: min_price.filter(|_| !price_in_key),
            max_price: max_price.filter(|_| !price_in_key),
            in_stock,
        };
        let exact_total = filter.is_noop() && !price_in_key;
        let canonical = format!(
            "{}|{sort_name}|{limit}|{:?}|{:?}|{:?}|{:?}|{in_stock}|{}",
            scope_tag,
            category,
            seller,
            brand,
            (min_price, max_price),
            params.cursor.as_deref().unwrap_or("")
        );
        Ok(ListingPlan {
            scope_key: scope.encode(),
            scope_tag,
            canonical,
            lower,
            upper,
            cursor,
            reverse,
            limit,
            filter,
            exact_total,
        })
    }

    fn render_listing(&self, plan: &ListingPlan) -> Result<Representation, ServiceError> {
        let page = self.store.scan_listing(
            &ListingScan {
                lower: &plan.lower,
                upper: &plan.upper,
                cursor: plan.cursor.as_deref(),
                reverse: plan.reverse,
                limit: plan.limit,
                max_scanned: self.settings.listing_max_scan,
            },
            |entry| plan.filter.accepts(entry),
        )?;
        let ids: Vec<[u8; 16]> = page.items.iter().map(|(id, _)| *id).collect();
        let records = self.store.multi_get::<ProductRecord, _>(&ids)?;
        let items: Vec<ListingItem<'_>> = records
            .iter()
            .zip(&page.items)
            .filter_map(|(record, (_, entry))| {
                record
                    .as_ref()
                    .map(|r| ListingItem::new(r.archived(), self.settings.currency, entry.in_stock))
            })
            .collect();
        let total = if plan.exact_total {
            Some(self.store.listing_count(&plan.scope_key)?)
        } else {
            None
        };
        let mut page_tags = String::with_capacity(32 + ids.len() * 45);
        page_tags.push_str(&plan.scope_tag);
        for id in &ids {
            page_tags.push(' ');
            page_tags.push_str(&tags::product_id(Id::from_bytes(*id)));
        }
        let body = ListingPage {
            items,
            next_cursor: page.next_cursor.map(|c| URL_SAFE_NO_PAD.encode(c)),
            total,
            limit: plan.limit,
        };
        Representation::new(&body, None, &page_tags)
    }

    /// Computes the listing facts of a product as `txn` sees it (`None` when it must not be
    /// listed).
    pub(crate) fn listing_facts(&self, txn: &Txn<'_>, p: &ProductRecord) -> Result<Option<ListingFacts>, ServiceError> {
        facts(txn, p, &self.categories.load(), &self.stock)
    }
}

/// Listing facts of a product: on-hand as the transaction sees it, holds as the ledger sees
/// them.
pub(super) fn facts(
    txn: &Txn<'_>,
    p: &ProductRecord,
    tree: &CategoryTree,
    stock: &StockLedger,
) -> Result<Option<ListingFacts>, ServiceError> {
    if !product::is_visible(stored_status(p.status)) {
        return Ok(None);
    }
    let mut available = Vec::with_capacity(p.variants.len());
    for v in &p.variants {
        if let Some(inv) = txn.get::<InventoryRecord>(keys::sku(&v.sku))? {
            let reserved = stock.level(&v.sku).map(|l| l.reserved).unwrap_or(0);
            available.push(inv.archived().on_hand.to_native() - reserved);
        }
    }
    let rating = RatingSummary {
        sum: p.rating_sum,
        count: p.rating_count,
    };
    Ok(Some(ListingFacts {
        id: p.id,
        min_price_cents: product::lowest_price(p.variants.iter().map(|v| v.price_cents)),
        rating_x100: rating.x100().min(u16::MAX as u64) as u16,
        seller_id: p.seller_id,
        brand: p.brand.as_deref().map(listing::normalize_brand),
        category_path: p
            .category_id
            .map(|c| tree.path_up(Id::from_bytes(c)).into_iter().map(Id::to_bytes).collect())
            .unwrap_or_default(),
        in_stock: product::in_stock(available),
    }))
}
