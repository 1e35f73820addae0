//! Catalog use cases: product pages, listings, the category tree, sellers, inventory, and the
//! writes that change them.
//!
//! Hot path: product and listing reads are answered from in-process caches of pre-serialised
//! JSON (`Bytes`), so a hit is a hash lookup and a refcount clone: no storage access, no JSON
//! encoding, no global lock, no info-level log. Misses and writes run on the blocking pool.
//!
//! Invalidation is exact: a write removes the product entries it touched (by id and old/new
//! slug) and bumps the generation of every listing scope the product was or is in, which
//! makes exactly those listing pages unreachable. A write epoch stops a read that raced with a
//! write from caching what it read before the write.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use dashmap::DashMap;
use http::HeaderValue;
use quick_cache::sync::Cache;
use serde::Serialize;
use storefront_storage::cf::{CF_EXTERNAL_IDS, CF_INVENTORY, CF_META, CF_PRODUCTS, CF_SLUGS, CF_VARIANTS};
use storefront_storage::keys::{self, SlugKind};
use storefront_storage::listing::{self, EntryValue, ListingFacts, Scope, SortKey};
use storefront_storage::records::{
    AttributeRecord, AttributeValue as StoredValue, CategoryRecord, ChangeOp, EntityKind, ImageRecord, InventoryRecord,
    ProductRecord, ProductStatus, SellerRecord, VariantRecord,
};
use storefront_storage::{ListingScan, Store, Txn};

use super::auth::Actor;
use super::blocking;
use super::category_tree::{CategoryTree, SellerDirectory};
use super::error::ServiceError;
use super::stock::{low_stock_event, StockError, StockLedger, StockLevel};
use super::view::{CategoryTreeView, InventoryView, ListingItem, ProductView, SellerView};
use crate::domain::catalog::{
    self as rules, Attribute, AttributeValue, Image, NewProduct, NewVariant, ProductInput, ProductPatch, Status,
    VariantInput, VariantPatch,
};
use crate::domain::{Currency, FieldErrors, Id, Slug};

/// A pre-serialised response body with its validators and cache tags.
#[derive(Debug)]
pub struct Representation {
    /// JSON body.
    pub body: Bytes,
    /// Strong ETag (quoted).
    pub etag: HeaderValue,
    /// Space-separated surrogate keys for CDN purges.
    pub surrogate_key: HeaderValue,
}

impl Representation {
    pub(crate) fn new<T: Serialize>(
        value: &T,
        etag_prefix: Option<u64>,
        tags: &str,
    ) -> Result<Representation, ServiceError> {
        let mut buf = BytesMut::with_capacity(2048).writer();
        serde_json::to_writer(&mut buf, value)
            .map_err(|e| ServiceError::Internal(format!("serialising response: {e}")))?;
        let body = buf.into_inner().freeze();
        let hash = xxhash_rust::xxh3::xxh3_64(&body);
        let etag = match etag_prefix {
            Some(version) => format!("\"v{version}-{hash:016x}\""),
            None => format!("\"{hash:016x}\""),
        };
        Ok(Representation {
            body,
            etag: HeaderValue::from_str(&etag).map_err(|e| ServiceError::Internal(e.to_string()))?,
            surrogate_key: HeaderValue::from_str(tags).map_err(|e| ServiceError::Internal(e.to_string()))?,
        })
    }
}

/// Weighs cached representations by their size, for caches bounded in bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByteWeighter;

impl quick_cache::Weighter<String, Arc<Representation>> for ByteWeighter {
    fn weight(&self, key: &String, value: &Arc<Representation>) -> u64 {
        (key.len() + value.body.len() + value.surrogate_key.len() + 64) as u64
    }
}

/// Settings of the catalog service.
#[derive(Debug, Clone)]
pub struct CatalogSettings {
    /// Store currency.
    pub currency: Currency,
    /// Entries examined per listing page at most.
    pub listing_max_scan: usize,
    /// Product cache capacity.
    pub product_entries: usize,
    /// Listing cache capacity.
    pub listing_entries: usize,
}

/// Cache statistics for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheStats {
    /// Product cache hits.
    pub product_hits: u64,
    /// Product cache misses.
    pub product_misses: u64,
    /// Product cache entries.
    pub product_len: u64,
    /// Listing cache hits.
    pub listing_hits: u64,
    /// Listing cache misses.
    pub listing_misses: u64,
    /// Listing cache entries.
    pub listing_len: u64,
}

/// Raw listing query parameters, validated by [`Catalog::list_products`].
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ListingParams {
    /// Category id or slug (descendants included).
    pub category: Option<String>,
    /// Seller id or slug.
    pub seller: Option<String>,
    /// Brand name.
    pub brand: Option<String>,
    /// Lowest price, minor units.
    pub min_price: Option<String>,
    /// Highest price, minor units.
    pub max_price: Option<String>,
    /// Only products with available stock.
    pub in_stock: Option<String>,
    /// `newest|price_asc|price_desc|rating`.
    pub sort: Option<String>,
    /// Page size, 1–100.
    pub limit: Option<String>,
    /// Opaque cursor from a previous page.
    pub cursor: Option<String>,
}

/// Body of `POST /categories` and `PATCH /categories/{id}`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryInput {
    /// Name.
    pub name: Option<String>,
    /// Slug (derived from the name when absent on create).
    pub slug: Option<String>,
    /// Parent id or slug; `null` on PATCH makes it a root.
    #[serde(default, deserialize_with = "rules::double_option")]
    pub parent: Option<Option<String>>,
    /// Sort position among siblings.
    pub position: Option<i32>,
}

/// Body of `POST /sellers`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SellerInput {
    /// Name.
    pub name: Option<String>,
    /// Slug (derived from the name when absent).
    pub slug: Option<String>,
}

/// Body of `PUT /inventory/{sku}`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryInput {
    /// Units on hand.
    pub on_hand: Option<i64>,
    /// Low-stock threshold (0 turns low-stock events off).
    pub low_stock_threshold: Option<i64>,
}

/// Body of `POST /inventory/{sku}/adjust`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdjustInput {
    /// Units to add (negative to remove), e.g. a delivery or a stock count correction.
    pub delta: Option<i64>,
    /// Low-stock threshold (0 turns low-stock events off).
    pub low_stock_threshold: Option<i64>,
}

/// The on-hand change requested.
#[derive(Debug, Clone, Copy)]
pub enum StockTarget {
    /// An absolute count.
    Set(Option<i64>),
    /// A relative change.
    Adjust(Option<i64>),
}

/// A stock change: the target plus an optional new threshold.
#[derive(Debug, Clone, Copy)]
pub struct StockInput {
    /// New on-hand count or delta.
    pub target: StockTarget,
    /// New low-stock threshold.
    pub low_stock_threshold: Option<i64>,
}

impl From<InventoryInput> for StockInput {
    fn from(i: InventoryInput) -> Self {
        StockInput {
            target: StockTarget::Set(i.on_hand),
            low_stock_threshold: i.low_stock_threshold,
        }
    }
}

impl From<AdjustInput> for StockInput {
    fn from(i: AdjustInput) -> Self {
        StockInput {
            target: StockTarget::Adjust(i.delta),
            low_stock_threshold: i.low_stock_threshold,
        }
    }
}

/// What a committed write invalidates.
#[derive(Debug, Default)]
pub(crate) struct Invalidation {
    product_keys: Vec<String>,
    scopes: Vec<Vec<u8>>,
    categories: bool,
    sellers: bool,
    /// SKUs that got a stock record: (sku, product, on-hand, low-stock threshold).
    stock_added: Vec<(String, [u8; 16], i64, i64)>,
    /// SKUs whose stock record was removed.
    stock_removed: Vec<String>,
}

impl Invalidation {
    fn merge(&mut self, other: Invalidation) {
        self.product_keys.extend(other.product_keys);
        self.scopes.extend(other.scopes);
        self.categories |= other.categories;
        self.sellers |= other.sellers;
        self.stock_added.extend(other.stock_added);
        self.stock_removed.extend(other.stock_removed);
    }
}

/// Where an imported product comes from, for idempotent re-imports.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// Created through the API.
    Api,
    /// Imported from a named feed (`jsonl`, `chorus`); `external_id` identifies the product.
    Feed(&'a str),
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    /// A new product was created.
    Created,
    /// An existing product changed.
    Updated,
    /// The product already matched the input.
    Unchanged,
}

/// A product body whose references are resolved.
#[derive(Debug, Clone)]
pub struct ResolvedProduct {
    /// Validated fields.
    pub product: NewProduct,
    /// Category.
    pub category_id: Option<Id>,
    /// Seller.
    pub seller_id: Option<Id>,
}

/// The catalog service.
pub struct Catalog {
    store: Store,
    settings: CatalogSettings,
    categories: ArcSwap<CategoryTree>,
    sellers: ArcSwap<SellerDirectory>,
    products: Cache<String, Arc<Representation>>,
    listings: Cache<String, Arc<Representation>>,
    category_docs: Cache<String, Arc<Representation>>,
    /// Generation per listing scope; bumping one makes its cached pages unreachable.
    generations: DashMap<Vec<u8>, u64>,
    /// Incremented after every committed write (Release), read before and after a cache fill
    /// (Acquire) so a fill that overlapped a write is not cached.
    epoch: AtomicU64,
    /// Live stock counters, shared with carts.
    stock: Arc<StockLedger>,
    /// Slug under which a product's page was cached, so stock changes can evict it without a
    /// storage read.
    page_slugs: DashMap<[u8; 16], String>,
}

impl Catalog {
    /// Opens the catalog over a store, loading the category tree and sellers.
    pub fn new(store: Store, settings: CatalogSettings) -> Result<Catalog, ServiceError> {
        let catalog = Catalog {
            categories: ArcSwap::from_pointee(CategoryTree::build(&store.scan_all::<CategoryRecord>()?)),
            sellers: ArcSwap::from_pointee(SellerDirectory::build(&store.scan_all::<SellerRecord>()?)),
            products: Cache::new(settings.product_entries.max(16)),
            listings: Cache::new(settings.listing_entries.max(16)),
            category_docs: Cache::new(1024),
            generations: DashMap::new(),
            epoch: AtomicU64::new(0),
            stock: Arc::new(StockLedger::load(&store)?),
            page_slugs: DashMap::new(),
            store,
            settings,
        };
        Ok(catalog)
    }

    /// Returns the underlying store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Returns the live stock counters.
    pub fn stock(&self) -> &Arc<StockLedger> {
        &self.stock
    }

    /// Returns the current category tree snapshot.
    pub fn categories(&self) -> Arc<CategoryTree> {
        self.categories.load_full()
    }

    /// Returns the store currency.
    pub fn currency(&self) -> Currency {
        self.settings.currency
    }

    /// Returns cache statistics.
    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            product_hits: self.products.hits(),
            product_misses: self.products.misses(),
            product_len: self.products.len() as u64,
            listing_hits: self.listings.hits(),
            listing_misses: self.listings.misses(),
            listing_len: self.listings.len() as u64,
        }
    }

    /// Returns whether the catalog has no products.
    pub fn is_empty(&self) -> bool {
        self.store.listing_count(&Scope::All.encode()).unwrap_or(0) == 0
            && self
                .store
                .scan_all::<CategoryRecord>()
                .map(|c| c.is_empty())
                .unwrap_or(true)
    }

    fn apply(&self, inv: Invalidation) -> Result<(), ServiceError> {
        for sku in &inv.stock_removed {
            self.stock.remove(sku);
        }
        for (sku, product, on_hand, threshold) in &inv.stock_added {
            self.stock.insert(sku, *product, *on_hand, *threshold);
        }
        self.epoch.fetch_add(1, Ordering::Release);
        if inv.categories {
            self.categories
                .store(Arc::new(CategoryTree::build(&self.store.scan_all::<CategoryRecord>()?)));
            self.category_docs.clear();
        }
        if inv.sellers {
            self.sellers.store(Arc::new(SellerDirectory::build(
                &self.store.scan_all::<SellerRecord>()?,
            )));
        }
        if inv.categories || inv.sellers {
            // Product pages embed category paths and seller names.
            self.products.clear();
        } else {
            for key in &inv.product_keys {
                self.products.remove(key.as_str());
            }
        }
        for scope in inv.scopes {
            *self.generations.entry(scope).or_default() += 1;
        }
        Ok(())
    }

    fn fill<T>(&self, cache: &Cache<String, Arc<T>>, key: String, epoch: u64, value: T) -> Arc<T> {
        let value = Arc::new(value);
        if self.epoch.load(Ordering::Acquire) == epoch {
            cache.insert(key, value.clone());
        }
        value
    }

    // ---------------------------------------------------------------- reads

    /// Returns the public product page for an id or slug.
    pub async fn product_page(self: &Arc<Self>, key: &str) -> Result<Arc<Representation>, ServiceError> {
        let canonical = canonical_key(key);
        if let Some(hit) = self.products.get(canonical.as_ref()) {
            return Ok(hit);
        }
        let this = self.clone();
        let key = canonical.into_owned();
        blocking(move || {
            let epoch = this.epoch.load(Ordering::Acquire);
            let (repr, id) = this.render_product(&key, true)?;
            if key != id.to_string() {
                this.page_slugs.insert(id.to_bytes(), key.clone());
            }
            Ok(this.fill(&this.products, key, epoch, repr))
        })
        .await
    }

    /// Renders a product document, drafts included (for write responses).
    pub async fn product_document(self: &Arc<Self>, id: Id) -> Result<Arc<Representation>, ServiceError> {
        let this = self.clone();
        blocking(move || this.render_product(&id.to_string(), false).map(|(r, _)| Arc::new(r))).await
    }

    fn resolve_product_id(&self, key: &str) -> Result<Option<Id>, ServiceError> {
        if let Some(id) = Id::parse(key) {
            return Ok(Some(id));
        }
        Ok(self
            .store
            .get_raw(CF_SLUGS, &keys::slug(SlugKind::Product, key))?
            .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
            .map(Id::from_bytes))
    }

    fn render_product(&self, key: &str, public_only: bool) -> Result<(Representation, Id), ServiceError> {
        let not_found = || ServiceError::NotFound { kind: "product" };
        let id = self.resolve_product_id(key)?.ok_or_else(not_found)?;
        let product = self.store.get::<ProductRecord>(&id.to_bytes())?.ok_or_else(not_found)?;
        let p = product.archived();
        if public_only && p.status != ProductStatus::Published {
            return Err(not_found());
        }
        let available: Vec<i64> = p.variants.iter().map(|v| self.stock.available(&v.sku)).collect();
        let tree = self.categories.load();
        let sellers = self.sellers.load();
        let seller = p.seller_id.as_ref().and_then(|s| sellers.get(Id::from_bytes(*s)));
        let view = ProductView::new(p, self.settings.currency, &available, &tree, seller);
        let tags = product_tags_archived(p, &tree);
        Ok((Representation::new(&view, Some(p.version.to_native()), &tags)?, id))
    }

    /// Returns a listing page.
    pub async fn list_products(self: &Arc<Self>, params: &ListingParams) -> Result<Arc<Representation>, ServiceError> {
        let plan = self.plan_listing(params)?;
        let generation = self.generations.get(&plan.scope_key).map(|g| *g).unwrap_or(0);
        let cache_key = format!("{generation}|{}", plan.canonical);
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

    fn plan_listing(&self, params: &ListingParams) -> Result<ListingPlan, ServiceError> {
        let mut errors = FieldErrors::default();
        let limit = match params.limit.as_deref() {
            None => 20,
            Some(s) => match s.parse::<usize>() {
                Ok(n @ 1..=100) => n,
                _ => {
                    errors.add("limit", "out_of_range", "must be an integer from 1 to 100");
                    20
                }
            },
        };
        let mut price = |field: &str, value: Option<&str>| -> Option<i64> {
            let v = value?;
            match v.parse::<i64>() {
                Ok(n) if n >= 0 => Some(n),
                _ => {
                    errors.add(field, "invalid", "must be a non-negative integer amount in minor units");
                    None
                }
            }
        };
        let min_price = price("min_price", params.min_price.as_deref());
        let max_price = price("max_price", params.max_price.as_deref());
        if let (Some(lo), Some(hi)) = (min_price, max_price) {
            if lo > hi {
                errors.add("min_price", "invalid_range", "must not exceed max_price");
            }
        }
        let in_stock = match params.in_stock.as_deref() {
            None => false,
            Some("true" | "1") => true,
            Some("false" | "0") => false,
            Some(_) => {
                errors.add("in_stock", "invalid", "must be true or false");
                false
            }
        };
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
        let tree = self.categories.load();
        let category = params.category.as_deref().and_then(|c| {
            let found = tree.resolve(c).map(|n| n.id);
            if found.is_none() {
                errors.add("category", "unknown", "no such category");
            }
            found
        });
        let sellers = self.sellers.load();
        let seller = params.seller.as_deref().and_then(|s| {
            let found = sellers.resolve(s).map(|s| s.id);
            if found.is_none() {
                errors.add("seller", "unknown", "no such seller");
            }
            found
        });
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
        let scope_tag = match scope {
            Scope::All => "products".to_string(),
            Scope::Category(_) => format!("category-{}", category.expect("category scope")),
            Scope::Seller(_) => format!("seller-{}", seller.expect("seller scope")),
            Scope::Brand(b) => format!("brand-{}", brand_tag(b)),
        };
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
        let mut tags = String::with_capacity(32 + ids.len() * 45);
        tags.push_str(&plan.scope_tag);
        if plan.scope_tag != "products" {
            tags.push_str(" products");
        }
        for id in &ids {
            tags.push_str(" product-");
            tags.push_str(&Id::from_bytes(*id).to_string());
        }
        #[derive(Serialize)]
        struct Page<'a> {
            items: Vec<ListingItem<'a>>,
            next_cursor: Option<String>,
            total: Option<u64>,
            limit: usize,
        }
        let body = Page {
            items,
            next_cursor: page.next_cursor.map(|c| URL_SAFE_NO_PAD.encode(c)),
            total,
            limit: plan.limit,
        };
        Representation::new(&body, None, &tags)
    }

    /// Returns the whole category tree document.
    pub fn category_tree(&self) -> Result<Arc<Representation>, ServiceError> {
        self.category_doc(None)
    }

    /// Returns one category with its subtree and breadcrumb path.
    pub fn category(&self, key: &str) -> Result<Arc<Representation>, ServiceError> {
        let tree = self.categories.load();
        let node = tree.resolve(key).ok_or(ServiceError::NotFound { kind: "category" })?;
        self.category_doc(Some(node.id))
    }

    fn category_doc(&self, id: Option<Id>) -> Result<Arc<Representation>, ServiceError> {
        let key = id.map(|i| i.to_string()).unwrap_or_default();
        if let Some(hit) = self.category_docs.get(key.as_str()) {
            return Ok(hit);
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let tree = self.categories.load();
        let node = id.and_then(|i| tree.get(i));
        let tags = match node {
            Some(n) => format!("categories category-{}", n.id),
            None => "categories".to_string(),
        };
        let repr = Representation::new(&CategoryTreeView { tree: &tree, node }, None, &tags)?;
        Ok(self.fill(&self.category_docs, key, epoch, repr))
    }

    /// Returns a seller document.
    pub fn seller(&self, key: &str) -> Result<Representation, ServiceError> {
        let sellers = self.sellers.load();
        let seller = sellers.resolve(key).ok_or(ServiceError::NotFound { kind: "seller" })?;
        Representation::new(
            &SellerView::from(seller),
            Some(seller.version),
            &format!("seller-{}", seller.id),
        )
    }

    /// Returns stock of a SKU.
    pub async fn inventory(self: &Arc<Self>, sku: String) -> Result<InventoryView, ServiceError> {
        let this = self.clone();
        blocking(move || {
            let record = this
                .store
                .get::<InventoryRecord>(keys::sku(&sku))?
                .ok_or(ServiceError::NotFound { kind: "sku" })?;
            Ok(inventory_view(&record.to_native(), &this.stock))
        })
        .await
    }

    // ---------------------------------------------------------------- writes

    /// Resolves category and seller references of a product body, appending to `errors`.
    pub(crate) fn resolve_refs(
        &self,
        category: Option<&str>,
        seller: Option<&str>,
        errors: &mut FieldErrors,
    ) -> (Option<Id>, Option<Id>) {
        let category = category.and_then(|c| {
            let found = self.categories.load().resolve(c).map(|n| n.id);
            if found.is_none() {
                errors.add("category", "unknown", "no such category");
            }
            found
        });
        let seller = seller.and_then(|s| {
            let found = self.sellers.load().resolve(s).map(|s| s.id);
            if found.is_none() {
                errors.add("seller", "unknown", "no such seller");
            }
            found
        });
        (category, seller)
    }

    /// Validates a product body from the API (category by id/slug only).
    pub fn validate_product(&self, input: &ProductInput) -> Result<ResolvedProduct, ServiceError> {
        let mut errors = FieldErrors::default();
        let product = rules::check_product(input, self.settings.currency, &mut errors);
        if input.category_path.is_some() {
            errors.add(
                "category_path",
                "unsupported",
                "category_path is accepted by import only; use category",
            );
        }
        let (category_id, seller_id) =
            self.resolve_refs(input.category.as_deref(), input.seller.as_deref(), &mut errors);
        errors
            .finish(ResolvedProduct {
                product,
                category_id,
                seller_id,
            })
            .map_err(ServiceError::Validation)
    }

    /// Creates a product through the API.
    pub async fn create_product(self: &Arc<Self>, actor: Actor, input: ProductInput) -> Result<Id, ServiceError> {
        actor.require_catalog_writer()?;
        let mut resolved = self.validate_product(&input)?;
        if resolved.seller_id.is_none() {
            resolved.seller_id = actor.own_seller();
        }
        actor.may_manage_catalog(resolved.seller_id)?;
        let this = self.clone();
        blocking(move || {
            let (id, outcome, inv) = this.store.transact(|txn| this.upsert_in(txn, &resolved, Source::Api))?;
            debug_assert_eq!(outcome, UpsertOutcome::Created);
            this.apply(inv)?;
            Ok(id)
        })
        .await
    }

    /// Creates or updates many products in one atomic batch (imports).
    pub fn upsert_batch(
        &self,
        items: &[ResolvedProduct],
        source: Source<'_>,
    ) -> Result<Vec<Result<UpsertOutcome, ServiceError>>, ServiceError> {
        let (outcomes, inv) = self.store.transact(|txn| {
            let mut all = Invalidation::default();
            let mut outcomes = Vec::with_capacity(items.len());
            for item in items {
                match self.upsert_in(txn, item, source) {
                    Ok((_, outcome, inv)) => {
                        all.merge(inv);
                        outcomes.push(Ok(outcome));
                    }
                    // A conflicting row is reported and skipped; its checks ran before any write.
                    Err(e @ (ServiceError::Conflict { .. } | ServiceError::Validation(_))) => outcomes.push(Err(e)),
                    Err(e) => return Err(e),
                }
            }
            Ok((outcomes, all))
        })?;
        self.apply(inv)?;
        Ok(outcomes)
    }

    /// Creates a category (or returns the existing child with that name) for each name of a
    /// path from the root, returning the leaf. Used by imports.
    pub fn ensure_category_path(&self, names: &[String]) -> Result<Option<Id>, ServiceError> {
        let mut parent: Option<Id> = None;
        for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            let existing = self.categories.load().child_named(parent, name).map(|n| n.id);
            parent = Some(match existing {
                Some(id) => id,
                None => {
                    let input = CategoryInput {
                        name: Some(name.to_owned()),
                        slug: None,
                        parent: Some(parent.map(|p| p.to_string())),
                        position: None,
                    };
                    self.create_category_sync(&input)?
                }
            });
        }
        Ok(parent)
    }

    fn upsert_in(
        &self,
        txn: &mut Txn<'_>,
        item: &ResolvedProduct,
        source: Source<'_>,
    ) -> Result<(Id, UpsertOutcome, Invalidation), ServiceError> {
        let p = &item.product;
        let external_key = match (source, &p.external_id) {
            (Source::Feed(feed), Some(ext)) => Some(keys::external_id(feed, ext)),
            (Source::Api, Some(ext)) => Some(keys::external_id("api", ext)),
            (_, None) => None,
        };
        let existing_id = match &external_key {
            Some(k) => txn
                .get_raw(CF_EXTERNAL_IDS, k)?
                .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok()),
            None => None,
        };
        if let (Source::Api, Some(_)) = (source, existing_id) {
            return Err(ServiceError::conflict(
                "external_id_taken",
                "a product with this external_id already exists".into(),
                serde_json::json!({ "external_id": p.external_id }),
            ));
        }
        let old = match existing_id {
            Some(id) => txn.get::<ProductRecord>(&id)?.map(|o| o.to_native()),
            None => None,
        };
        let id = old.as_ref().map(|o| Id::from_bytes(o.id)).unwrap_or_else(Id::new);
        let now = txn.now_ms();

        // Slug: keep an existing product's slug unless one is given explicitly.
        let slug = match (&p.slug, &old) {
            (Some(s), _) => s.as_str().to_owned(),
            (None, Some(o)) => o.slug.clone(),
            (None, None) => {
                let base = Slug::derive(&p.title, 80).unwrap_or_else(|| Slug::parse("product").expect("valid"));
                let candidate = match (source, &p.external_id) {
                    (Source::Feed(_), Some(ext)) => Slug::derive(ext, 30)
                        .map(|e| base.with_suffix(e.as_str()))
                        .unwrap_or(base),
                    _ => base,
                };
                if slug_owner(txn, candidate.as_str())?.is_some_and(|owner| owner != id.to_bytes()) {
                    let hex = id.to_string().replace('-', "");
                    candidate.with_suffix(&hex[hex.len() - 10..]).as_str().to_owned()
                } else {
                    candidate.as_str().to_owned()
                }
            }
        };
        if slug_owner(txn, &slug)?.is_some_and(|owner| owner != id.to_bytes()) {
            return Err(ServiceError::conflict(
                "slug_taken",
                format!("slug {slug} is already used by another product"),
                serde_json::json!({ "slug": slug }),
            ));
        }
        for variant in &p.variants {
            if let Some(owner) = sku_owner(txn, &variant.sku)? {
                if owner != id.to_bytes() {
                    return Err(ServiceError::conflict(
                        "sku_taken",
                        format!("SKU {} belongs to another product", variant.sku),
                        serde_json::json!({ "sku": variant.sku }),
                    ));
                }
            }
        }

        let mut record = ProductRecord {
            id: id.to_bytes(),
            version: old.as_ref().map(|o| o.version + 1).unwrap_or(1),
            external_id: p.external_id.clone(),
            slug,
            title: p.title.clone(),
            description: p.description.clone(),
            brand: p.brand.clone(),
            category_id: item.category_id.map(Id::to_bytes),
            seller_id: item.seller_id.map(Id::to_bytes),
            status: stored_status(p.status),
            currency: self.settings.currency.to_string(),
            images: p.images.iter().map(image_record).collect(),
            attributes: p.attributes.iter().map(attribute_record).collect(),
            variants: p.variants.iter().map(variant_record).collect(),
            rating_sum: old.as_ref().map(|o| o.rating_sum).unwrap_or(0),
            rating_count: old.as_ref().map(|o| o.rating_count).unwrap_or(0),
            created_at_ms: old.as_ref().map(|o| o.created_at_ms).unwrap_or(now),
            updated_at_ms: now,
        };
        if let Some(old) = &old {
            let mut same = record.clone();
            same.version = old.version;
            same.updated_at_ms = old.updated_at_ms;
            if &same == old {
                return Ok((id, UpsertOutcome::Unchanged, Invalidation::default()));
            }
        }
        // New SKUs get their initial stock; existing SKUs keep theirs; dropped SKUs are freed.
        for variant in &p.variants {
            if txn.get::<InventoryRecord>(keys::sku(&variant.sku))?.is_none() {
                txn.put(
                    keys::sku(&variant.sku),
                    &new_inventory(&variant.sku, id, variant.stock, now),
                )?;
            }
            txn.put_raw(CF_VARIANTS, keys::sku(&variant.sku), &id.to_bytes());
        }
        if let Some(old) = &old {
            for gone in old
                .variants
                .iter()
                .filter(|v| !record.variants.iter().any(|n| n.sku == v.sku))
            {
                txn.delete(CF_VARIANTS, keys::sku(&gone.sku));
                txn.delete(CF_INVENTORY, keys::sku(&gone.sku));
            }
        }
        if let Some(k) = &external_key {
            txn.put_raw(CF_EXTERNAL_IDS, k, &id.to_bytes());
        }
        record.version = record.version.max(1);
        let outcome = if old.is_some() {
            UpsertOutcome::Updated
        } else {
            UpsertOutcome::Created
        };
        let inv = self.write_product(txn, old.as_ref(), Some(&record))?;
        Ok((id, outcome, inv))
    }

    /// Stages the product record, its slug, listing entries and changelog entry, and returns
    /// what the write invalidates. `old`/`new` of `None` mean created/deleted.
    fn write_product(
        &self,
        txn: &mut Txn<'_>,
        old: Option<&ProductRecord>,
        new: Option<&ProductRecord>,
    ) -> Result<Invalidation, ServiceError> {
        let tree = self.categories.load();
        let old_facts = match old {
            Some(o) => facts(txn, o, &tree, &self.stock)?,
            None => None,
        };
        let new_facts = match new {
            Some(n) => facts(txn, n, &tree, &self.stock)?,
            None => None,
        };
        if old_facts != new_facts {
            txn.update_listing(old_facts.as_ref(), new_facts.as_ref());
        }
        let mut inv = Invalidation::default();
        if let Some(n) = new {
            for v in n.variants.iter().filter(|v| self.stock.level(&v.sku).is_none()) {
                if let Some(r) = txn.get::<InventoryRecord>(keys::sku(&v.sku))? {
                    let r = r.archived();
                    inv.stock_added.push((
                        v.sku.clone(),
                        n.id,
                        r.on_hand.to_native(),
                        r.low_stock_threshold.to_native(),
                    ));
                }
            }
        }
        if let Some(o) = old {
            inv.stock_removed.extend(
                o.variants
                    .iter()
                    .filter(|v| new.is_none_or(|n| !n.variants.iter().any(|nv| nv.sku == v.sku)))
                    .map(|v| v.sku.clone()),
            );
        }
        let mut tags = Vec::new();
        for record in old.iter().chain(new.iter()) {
            inv.product_keys.push(Id::from_bytes(record.id).to_string());
            inv.product_keys.push(record.slug.clone());
            tags.extend(product_tags(record, &tree));
        }
        for f in old_facts.iter().chain(new_facts.iter()) {
            inv.scopes.extend(listing::scopes_of(f));
        }
        dedup(&mut tags);
        if let Some(o) = old {
            if new.is_none_or(|n| n.slug != o.slug) {
                txn.delete(CF_SLUGS, &keys::slug(SlugKind::Product, &o.slug));
            }
        }
        let (op, id) = match (old, new) {
            (_, Some(n)) => {
                txn.put(&n.id, n)?;
                txn.put_raw(CF_SLUGS, &keys::slug(SlugKind::Product, &n.slug), &n.id);
                (ChangeOp::Upsert, n.id)
            }
            (Some(o), None) => {
                txn.delete(CF_PRODUCTS, &o.id);
                (ChangeOp::Delete, o.id)
            }
            (None, None) => return Ok(inv),
        };
        txn.record_change(EntityKind::Product, op, &id, tags);
        Ok(inv)
    }

    /// Loads a product for modification, enforcing `If-Match`.
    fn load_for_write(
        txn: &Txn<'_>,
        actor: &Actor,
        key: &[u8],
        if_match: Option<u64>,
    ) -> Result<ProductRecord, ServiceError> {
        let product = txn
            .get::<ProductRecord>(key)?
            .ok_or(ServiceError::NotFound { kind: "product" })?
            .to_native();
        actor.may_manage_catalog(product.seller_id.map(Id::from_bytes))?;
        check_version(product.version, if_match)?;
        Ok(product)
    }

    /// Applies a partial update to a product.
    pub async fn update_product(
        self: &Arc<Self>,
        actor: Actor,
        key: String,
        patch: ProductPatch,
        if_match: Option<u64>,
    ) -> Result<Id, ServiceError> {
        actor.require_catalog_writer()?;
        let mut errors = FieldErrors::default();
        if let Some(title) = &patch.title {
            errors.text("title", title, true, rules::MAX_TITLE_LEN);
        }
        if let Some(description) = &patch.description {
            errors.text("description", description, false, rules::MAX_DESCRIPTION_LEN);
        }
        let slug = rules::check_slug(patch.slug.as_deref(), &mut errors);
        let brand = patch
            .brand
            .as_ref()
            .map(|b| rules::check_brand(b.as_deref(), &mut errors));
        let status = patch
            .status
            .as_deref()
            .map(|s| rules::check_status(Some(s), &mut errors));
        let images = patch
            .images
            .as_deref()
            .map(|i| rules::check_images(Some(i), &mut errors));
        let attributes = patch
            .attributes
            .as_ref()
            .map(|a| rules::check_attributes("attributes", Some(a), &mut errors));
        let category = patch
            .category
            .as_ref()
            .map(|c| self.resolve_refs(c.as_deref(), None, &mut errors).0);
        let seller = patch
            .seller
            .as_ref()
            .map(|s| self.resolve_refs(None, s.as_deref(), &mut errors).1);
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        let this = self.clone();
        blocking(move || {
            let id = this
                .resolve_product_id(&key)?
                .ok_or(ServiceError::NotFound { kind: "product" })?;
            let inv = this.store.transact(|txn| {
                let old = Self::load_for_write(txn, &actor, &id.to_bytes(), if_match)?;
                let mut new = old.clone();
                if let Some(t) = &patch.title {
                    new.title = t.trim().to_owned();
                }
                if let Some(d) = &patch.description {
                    new.description = d.trim().to_owned();
                }
                if let Some(s) = &slug {
                    if slug_owner(txn, s.as_str())?.is_some_and(|owner| owner != old.id) {
                        return Err(ServiceError::conflict(
                            "slug_taken",
                            format!("slug {s} is already used by another product"),
                            serde_json::json!({ "slug": s.as_str() }),
                        ));
                    }
                    new.slug = s.as_str().to_owned();
                }
                if let Some(b) = &brand {
                    new.brand = b.clone();
                }
                if let Some(s) = status {
                    new.status = stored_status(s);
                }
                if let Some(i) = &images {
                    new.images = i.iter().map(image_record).collect();
                }
                if let Some(a) = &attributes {
                    new.attributes = a.iter().map(attribute_record).collect();
                }
                if let Some(c) = category {
                    new.category_id = c.map(Id::to_bytes);
                }
                if let Some(s) = seller {
                    actor.may_manage_catalog(s)?;
                    new.seller_id = s.map(Id::to_bytes);
                }
                new.version += 1;
                new.updated_at_ms = txn.now_ms();
                this.write_product(txn, Some(&old), Some(&new))
            })?;
            this.apply(inv)?;
            Ok(id)
        })
        .await
    }

    /// Deletes a product, its slug, SKUs and stock records.
    pub async fn delete_product(
        self: &Arc<Self>,
        actor: Actor,
        key: String,
        if_match: Option<u64>,
    ) -> Result<(), ServiceError> {
        actor.require_catalog_writer()?;
        let this = self.clone();
        blocking(move || {
            let id = this
                .resolve_product_id(&key)?
                .ok_or(ServiceError::NotFound { kind: "product" })?;
            let inv = this.store.transact(|txn| {
                let old = Self::load_for_write(txn, &actor, &id.to_bytes(), if_match)?;
                // Listing facts are computed before the stock records go away.
                let inv = this.write_product(txn, Some(&old), None)?;
                for v in &old.variants {
                    txn.delete(CF_VARIANTS, keys::sku(&v.sku));
                    txn.delete(CF_INVENTORY, keys::sku(&v.sku));
                }
                if let Some(ext) = &old.external_id {
                    for feed in ["api", "jsonl", "chorus"] {
                        let k = keys::external_id(feed, ext);
                        if txn.get_raw(CF_EXTERNAL_IDS, &k)?.as_deref() == Some(&old.id[..]) {
                            txn.delete(CF_EXTERNAL_IDS, &k);
                        }
                    }
                }
                Ok::<_, ServiceError>(inv)
            })?;
            this.apply(inv)
        })
        .await
    }

    /// Adds a variant to a product.
    pub async fn add_variant(
        self: &Arc<Self>,
        actor: Actor,
        key: String,
        input: VariantInput,
        if_match: Option<u64>,
    ) -> Result<Id, ServiceError> {
        actor.require_catalog_writer()?;
        let mut errors = FieldErrors::default();
        let variant = rules::check_variant("", &input, self.settings.currency, &mut errors);
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        let this = self.clone();
        blocking(move || {
            let id = this
                .resolve_product_id(&key)?
                .ok_or(ServiceError::NotFound { kind: "product" })?;
            let inv = this.store.transact(|txn| {
                let old = Self::load_for_write(txn, &actor, &id.to_bytes(), if_match)?;
                if old.variants.len() >= rules::MAX_VARIANTS {
                    return Err(ServiceError::invalid(
                        "variants",
                        "too_many",
                        "the product already has the maximum number of variants",
                    ));
                }
                if sku_owner(txn, &variant.sku)?.is_some() {
                    return Err(ServiceError::conflict(
                        "sku_taken",
                        format!("SKU {} already exists", variant.sku),
                        serde_json::json!({ "sku": variant.sku }),
                    ));
                }
                let mut new = old.clone();
                new.variants.push(variant_record(&variant));
                new.version += 1;
                new.updated_at_ms = txn.now_ms();
                txn.put_raw(CF_VARIANTS, keys::sku(&variant.sku), &old.id);
                txn.put(
                    keys::sku(&variant.sku),
                    &new_inventory(&variant.sku, id, variant.stock, txn.now_ms()),
                )?;
                this.write_product(txn, Some(&old), Some(&new))
            })?;
            this.apply(inv)?;
            Ok(id)
        })
        .await
    }

    /// Updates a variant by SKU. `If-Match` refers to the owning product's version.
    pub async fn update_variant(
        self: &Arc<Self>,
        actor: Actor,
        sku: String,
        patch: VariantPatch,
        if_match: Option<u64>,
    ) -> Result<Id, ServiceError> {
        actor.require_catalog_writer()?;
        let mut errors = FieldErrors::default();
        let currency = self.settings.currency;
        if let Some(t) = &patch.title {
            errors.text("title", t, false, 200);
        }
        let price = rules::check_price("price", patch.price.as_ref(), false, currency, &mut errors);
        let compare_at = patch
            .compare_at_price
            .as_ref()
            .map(|c| rules::check_price("compare_at_price", c.as_ref(), false, currency, &mut errors));
        let attributes = patch
            .attributes
            .as_ref()
            .map(|a| rules::check_attributes("attributes", Some(a), &mut errors));
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        let this = self.clone();
        blocking(move || {
            let (id, inv) = this.store.transact(|txn| {
                let owner = sku_owner(txn, &sku)?.ok_or(ServiceError::NotFound { kind: "sku" })?;
                let old = Self::load_for_write(txn, &actor, &owner, if_match)?;
                let mut new = old.clone();
                let v = new
                    .variants
                    .iter_mut()
                    .find(|v| v.sku == sku)
                    .ok_or(ServiceError::NotFound { kind: "sku" })?;
                if let Some(t) = &patch.title {
                    v.title = t.trim().to_owned();
                }
                if let Some(p) = price {
                    v.price_cents = p;
                }
                if let Some(c) = compare_at {
                    v.compare_at_cents = c;
                }
                if let Some(a) = &attributes {
                    v.attributes = a.iter().map(attribute_record).collect();
                }
                if v.compare_at_cents.is_some_and(|c| c < v.price_cents) {
                    return Err(ServiceError::invalid(
                        "compare_at_price.amount",
                        "below_price",
                        "must not be lower than the price",
                    ));
                }
                new.version += 1;
                new.updated_at_ms = txn.now_ms();
                let inv = this.write_product(txn, Some(&old), Some(&new))?;
                Ok((Id::from_bytes(owner), inv))
            })?;
            this.apply(inv)?;
            Ok(id)
        })
        .await
    }

    /// Sets (`PUT /inventory/{sku}`) or adjusts (`POST /inventory/{sku}/adjust`) the on-hand
    /// stock of a SKU.
    ///
    /// Atomic with respect to concurrent reservations: a decrease is a compare-and-swap on the
    /// live counter that refuses to go below what carts and orders hold, applied before the
    /// durable write (and undone if it fails); an increase is applied after it. A change that
    /// flips the product in or out of stock updates its listing entries, and one that crosses
    /// the low-stock threshold emits a `low_stock` outbox event in the same batch.
    pub async fn change_stock(
        self: &Arc<Self>,
        actor: Actor,
        sku: String,
        change: StockInput,
        if_match: Option<u64>,
    ) -> Result<InventoryView, ServiceError> {
        actor.require_catalog_writer()?;
        let mut errors = FieldErrors::default();
        let in_range = |n: i64| (0..=rules::MAX_STOCK).contains(&n);
        let range_message = || format!("must be between 0 and {}", rules::MAX_STOCK);
        match change.target {
            StockTarget::Set(None) => errors.add("on_hand", "required", "must be given"),
            StockTarget::Set(Some(n)) if !in_range(n) => errors.add("on_hand", "out_of_range", range_message()),
            StockTarget::Adjust(None) => errors.add("delta", "required", "must be given"),
            StockTarget::Adjust(Some(d)) if d.abs() > rules::MAX_STOCK => errors.add(
                "delta",
                "out_of_range",
                format!("must be between -{0} and {0}", rules::MAX_STOCK),
            ),
            _ => {}
        }
        if change.low_stock_threshold.is_some_and(|t| !in_range(t)) {
            errors.add("low_stock_threshold", "out_of_range", range_message());
        }
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        let this = self.clone();
        blocking(move || {
            // Units taken off the live counter before the write; given back if it fails.
            let mut lowered = 0i64;
            let result = this.store.transact(|txn| {
                let old = txn
                    .get::<InventoryRecord>(keys::sku(&sku))?
                    .ok_or(ServiceError::NotFound { kind: "sku" })?
                    .to_native();
                let product = txn.get::<ProductRecord>(&old.product_id)?.map(|p| p.to_native());
                actor.may_manage_catalog(product.as_ref().and_then(|p| p.seller_id).map(Id::from_bytes))?;
                check_version(old.version, if_match)?;
                let on_hand = match change.target {
                    StockTarget::Set(n) => n.unwrap_or(0),
                    StockTarget::Adjust(d) => old.on_hand + d.unwrap_or(0),
                };
                if !in_range(on_hand) {
                    return Err(ServiceError::invalid(
                        "delta",
                        "out_of_range",
                        &format!("on_hand would become {on_hand}; {}", range_message()),
                    ));
                }
                let delta = on_hand - old.on_hand;
                let reserved = this.stock.level(&sku).map(|l| l.reserved).unwrap_or(0);
                if delta < 0 {
                    this.stock.adjust_on_hand(&sku, delta).map_err(|e| match e {
                        StockError::BelowReserved { reserved } => below_reserved(on_hand, reserved),
                        _ => ServiceError::NotFound { kind: "sku" },
                    })?;
                    lowered = -delta;
                }
                let tree = this.categories.load();
                let before = match &product {
                    Some(p) => facts(txn, p, &tree, &this.stock)?,
                    None => None,
                };
                let mut new = old.clone();
                new.on_hand = on_hand;
                if let Some(t) = change.low_stock_threshold {
                    new.low_stock_threshold = t;
                }
                new.version += 1;
                new.updated_at_ms = txn.now_ms();
                txn.put(keys::sku(&sku), &new)?;
                let (available_before, available_after) = (old.on_hand - reserved, on_hand - reserved);
                if new.low_stock_threshold > 0
                    && available_after <= new.low_stock_threshold
                    && available_before > new.low_stock_threshold
                {
                    let event = low_stock_event(&new, available_after, txn.now_ms());
                    txn.put(&event.id, &event)?;
                }
                let mut inv = Invalidation::default();
                let mut tags = vec![format!("sku-{sku}")];
                if let Some(p) = &product {
                    let after = facts(txn, p, &tree, &this.stock)?;
                    if before != after {
                        txn.update_listing(before.as_ref(), after.as_ref());
                        for f in before.iter().chain(after.iter()) {
                            inv.scopes.extend(listing::scopes_of(f));
                        }
                    }
                    inv.product_keys.push(Id::from_bytes(p.id).to_string());
                    inv.product_keys.push(p.slug.clone());
                    tags.push(format!("product-{}", Id::from_bytes(p.id)));
                }
                txn.record_change(EntityKind::Inventory, ChangeOp::Upsert, keys::sku(&sku), tags);
                Ok((new, delta, inv))
            });
            let (record, delta, inv) = match result {
                Ok(done) => done,
                Err(e) => {
                    if lowered > 0 {
                        let _ = this.stock.adjust_on_hand(&sku, lowered);
                    }
                    return Err(e);
                }
            };
            if delta > 0 {
                this.stock
                    .adjust_on_hand(&sku, delta)
                    .map_err(|e| ServiceError::Internal(format!("stock counter refused a raise: {e:?}")))?;
            }
            this.stock.set_low_stock_threshold(&sku, record.low_stock_threshold);
            this.apply(inv)?;
            Ok(inventory_view(&record, &this.stock))
        })
        .await
    }

    /// Brings listings, the changelog (and so search and the CDN) and product pages up to date
    /// for SKUs whose availability crossed zero through cart holds. Carts mark such SKUs in
    /// their own batch (`stock_dirty/`), so a crash before this runs is caught at startup.
    pub fn refresh_stock(&self, skus: &[String]) -> Result<(), ServiceError> {
        let inv = self.store.transact(|txn| {
            let tree = self.categories.load();
            let mut inv = Invalidation::default();
            for sku in skus {
                txn.delete(CF_META, &keys::meta_stock_dirty(sku));
                let Some(product_id) = self.stock.product_of(sku) else {
                    continue;
                };
                let mut tags = vec![format!("sku-{sku}")];
                if let Some(p) = txn.get::<ProductRecord>(&product_id)?.map(|p| p.to_native()) {
                    if let Some(now) = facts(txn, &p, &tree, &self.stock)? {
                        // The in-stock flag lives in the entry values; rewriting them in place
                        // leaves keys and counts unchanged.
                        txn.update_listing(Some(&now), Some(&now));
                        inv.scopes.extend(listing::scopes_of(&now));
                    }
                    inv.product_keys.push(Id::from_bytes(p.id).to_string());
                    inv.product_keys.push(p.slug.clone());
                    tags.push(format!("product-{}", Id::from_bytes(p.id)));
                }
                txn.record_change(EntityKind::Inventory, ChangeOp::Upsert, keys::sku(sku), tags);
            }
            Ok::<_, ServiceError>(inv)
        })?;
        self.apply(inv)
    }

    /// SKUs marked by carts whose stock signal has not been processed (after a crash).
    pub fn pending_stock_signals(&self) -> Result<Vec<String>, ServiceError> {
        let prefix = keys::META_STOCK_DIRTY_PREFIX;
        let upper = keys::prefix_successor(prefix);
        let mut skus = Vec::new();
        self.store.for_each_raw(CF_META, prefix, upper.as_deref(), |key, _| {
            skus.push(String::from_utf8_lossy(&key[prefix.len()..]).into_owned());
            true
        })?;
        Ok(skus)
    }

    /// Drops cached pages of products whose stock counts changed (exact counts on our own
    /// pages; CDN copies age out by `max-age`, or are purged when the product flips in or out
    /// of stock through [`Catalog::refresh_stock`]).
    pub fn forget_product_pages(&self, product_ids: &[[u8; 16]]) {
        for id in product_ids {
            self.products.remove(Id::from_bytes(*id).to_string().as_str());
            if let Some((_, slug)) = self.page_slugs.remove(id) {
                self.products.remove(slug.as_str());
            }
        }
        self.epoch.fetch_add(1, Ordering::Release);
    }

    /// Creates a category.
    pub async fn create_category(self: &Arc<Self>, actor: Actor, input: CategoryInput) -> Result<Id, ServiceError> {
        actor.require_admin()?;
        let this = self.clone();
        blocking(move || this.create_category_sync(&input)).await
    }

    fn create_category_sync(&self, input: &CategoryInput) -> Result<Id, ServiceError> {
        let mut errors = FieldErrors::default();
        let name = input.name.as_deref().unwrap_or("").trim().to_owned();
        errors.text("name", &name, true, 100);
        let slug = rules::check_slug(input.slug.as_deref(), &mut errors);
        let tree = self.categories.load();
        let parent = match input.parent.as_ref().and_then(|p| p.as_deref()) {
            Some(p) => match tree.resolve(p) {
                Some(n) => Some(n.id),
                None => {
                    errors.add("parent", "unknown", "no such category");
                    None
                }
            },
            None => None,
        };
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        let id = Id::new();
        let inv = self.store.transact(|txn| -> Result<_, ServiceError> {
            let slug = match &slug {
                Some(s) => {
                    ensure_slug_free(txn, SlugKind::Category, s.as_str())?;
                    s.as_str().to_owned()
                }
                None => unique_slug(txn, SlugKind::Category, &name, id)?,
            };
            let record = CategoryRecord {
                id: id.to_bytes(),
                version: 1,
                slug: slug.clone(),
                name: name.clone(),
                parent_id: parent.map(Id::to_bytes),
                position: input.position.unwrap_or(0),
                created_at_ms: txn.now_ms(),
                updated_at_ms: txn.now_ms(),
            };
            txn.put(&record.id, &record)?;
            txn.put_raw(CF_SLUGS, &keys::slug(SlugKind::Category, &slug), &record.id);
            txn.record_change(
                EntityKind::Category,
                ChangeOp::Upsert,
                &record.id,
                vec!["categories".into(), format!("category-{id}")],
            );
            Ok(Invalidation {
                categories: true,
                ..Invalidation::default()
            })
        })?;
        self.apply(inv)?;
        Ok(id)
    }

    /// Updates a category. Moving it re-indexes the listing entries of every product below it.
    pub async fn update_category(
        self: &Arc<Self>,
        actor: Actor,
        key: String,
        input: CategoryInput,
        if_match: Option<u64>,
    ) -> Result<Id, ServiceError> {
        actor.require_admin()?;
        let mut errors = FieldErrors::default();
        if let Some(name) = &input.name {
            errors.text("name", name, true, 100);
        }
        let slug = rules::check_slug(input.slug.as_deref(), &mut errors);
        let tree = self.categories.load_full();
        let node = tree
            .resolve(&key)
            .ok_or(ServiceError::NotFound { kind: "category" })?
            .clone();
        let parent = match &input.parent {
            None => None,
            Some(None) => Some(None),
            Some(Some(p)) => match tree.resolve(p) {
                Some(n) if tree.is_ancestor_or_self(node.id, n.id) => {
                    errors.add("parent", "cycle", "a category cannot move below itself");
                    None
                }
                Some(n) => Some(Some(n.id)),
                None => {
                    errors.add("parent", "unknown", "no such category");
                    None
                }
            },
        };
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        let this = self.clone();
        blocking(move || {
            let inv = this.store.transact(|txn| -> Result<_, ServiceError> {
                let old = txn
                    .get::<CategoryRecord>(&node.id.to_bytes())?
                    .ok_or(ServiceError::NotFound { kind: "category" })?
                    .to_native();
                check_version(old.version, if_match)?;
                let mut new = old.clone();
                if let Some(n) = &input.name {
                    new.name = n.trim().to_owned();
                }
                if let Some(s) = &slug {
                    if s.as_str() != old.slug {
                        ensure_slug_free(txn, SlugKind::Category, s.as_str())?;
                        txn.delete(CF_SLUGS, &keys::slug(SlugKind::Category, &old.slug));
                        txn.put_raw(CF_SLUGS, &keys::slug(SlugKind::Category, s.as_str()), &old.id);
                        new.slug = s.as_str().to_owned();
                    }
                }
                if let Some(p) = input.position {
                    new.position = p;
                }
                if let Some(p) = parent {
                    new.parent_id = p.map(Id::to_bytes);
                }
                new.version += 1;
                new.updated_at_ms = txn.now_ms();
                txn.put(&new.id, &new)?;
                let mut inv = Invalidation {
                    categories: true,
                    ..Invalidation::default()
                };
                if new.parent_id != old.parent_id {
                    inv.merge(this.reparent_products(txn, &tree, &old, &new)?);
                }
                txn.record_change(
                    EntityKind::Category,
                    ChangeOp::Upsert,
                    &new.id,
                    vec!["categories".into(), format!("category-{}", node.id)],
                );
                Ok(inv)
            })?;
            this.apply(inv)?;
            Ok(node.id)
        })
        .await
    }

    /// Rewrites listing entries of all products under a moved category.
    fn reparent_products(
        &self,
        txn: &mut Txn<'_>,
        tree: &CategoryTree,
        old: &CategoryRecord,
        new: &CategoryRecord,
    ) -> Result<Invalidation, ServiceError> {
        let old_parent_path: Vec<[u8; 16]> = old
            .parent_id
            .map(|p| tree.path_up(Id::from_bytes(p)).into_iter().map(Id::to_bytes).collect())
            .unwrap_or_default();
        let new_parent_path: Vec<[u8; 16]> = new
            .parent_id
            .map(|p| tree.path_up(Id::from_bytes(p)).into_iter().map(Id::to_bytes).collect())
            .unwrap_or_default();
        let mut inv = Invalidation::default();
        for pid in &self.store.listing_ids(Scope::Category(old.id))? {
            let Some(product) = txn.get::<ProductRecord>(pid)? else {
                continue;
            };
            let product = product.to_native();
            let Some(old_facts) = facts(txn, &product, tree, &self.stock)? else {
                continue;
            };
            let mut new_facts = old_facts.clone();
            // The path is [leaf .. moved category, old ancestors..]: swap the ancestor tail.
            let keep = old_facts.category_path.len() - old_parent_path.len();
            new_facts.category_path.truncate(keep);
            new_facts.category_path.extend_from_slice(&new_parent_path);
            txn.update_listing(Some(&old_facts), Some(&new_facts));
            inv.scopes.extend(listing::scopes_of(&old_facts));
            inv.scopes.extend(listing::scopes_of(&new_facts));
            txn.record_change(
                EntityKind::Product,
                ChangeOp::Upsert,
                pid,
                vec![format!("product-{}", Id::from_bytes(*pid))],
            );
        }
        Ok(inv)
    }

    /// Creates a seller.
    pub async fn create_seller(self: &Arc<Self>, actor: Actor, input: SellerInput) -> Result<Id, ServiceError> {
        actor.require_admin()?;
        let mut errors = FieldErrors::default();
        let name = input.name.as_deref().unwrap_or("").trim().to_owned();
        errors.text("name", &name, true, 100);
        let slug = rules::check_slug(input.slug.as_deref(), &mut errors);
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        let this = self.clone();
        blocking(move || {
            let id = Id::new();
            let inv = this.store.transact(|txn| -> Result<_, ServiceError> {
                let slug = match &slug {
                    Some(s) => {
                        ensure_slug_free(txn, SlugKind::Seller, s.as_str())?;
                        s.as_str().to_owned()
                    }
                    None => unique_slug(txn, SlugKind::Seller, &name, id)?,
                };
                let record = SellerRecord {
                    id: id.to_bytes(),
                    version: 1,
                    slug: slug.clone(),
                    name: name.clone(),
                    created_at_ms: txn.now_ms(),
                    updated_at_ms: txn.now_ms(),
                };
                txn.put(&record.id, &record)?;
                txn.put_raw(CF_SLUGS, &keys::slug(SlugKind::Seller, &slug), &record.id);
                txn.record_change(
                    EntityKind::Seller,
                    ChangeOp::Upsert,
                    &record.id,
                    vec![format!("seller-{id}")],
                );
                Ok(Invalidation {
                    sellers: true,
                    ..Invalidation::default()
                })
            })?;
            this.apply(inv)?;
            Ok(id)
        })
        .await
    }

    /// Resolves a seller reference (id or slug) to its id.
    pub fn seller_id(&self, key: &str) -> Option<Id> {
        self.sellers.load().resolve(key).map(|s| s.id)
    }
}

struct ListingPlan {
    scope_key: Vec<u8>,
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

/// Turns a path key into the product cache key: canonical UUID text, or the slug as given.
fn canonical_key(key: &str) -> std::borrow::Cow<'_, str> {
    match Id::parse(key) {
        Some(id) => std::borrow::Cow::Owned(id.to_string()),
        None => std::borrow::Cow::Borrowed(key),
    }
}

fn check_version(current: u64, if_match: Option<u64>) -> Result<(), ServiceError> {
    match if_match {
        Some(expected) if expected != current => Err(ServiceError::VersionMismatch { current }),
        _ => Ok(()),
    }
}

fn slug_owner(txn: &Txn<'_>, slug: &str) -> Result<Option<[u8; 16]>, ServiceError> {
    Ok(txn
        .get_raw(CF_SLUGS, &keys::slug(SlugKind::Product, slug))?
        .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok()))
}

fn sku_owner(txn: &Txn<'_>, sku: &str) -> Result<Option<[u8; 16]>, ServiceError> {
    Ok(txn
        .get_raw(CF_VARIANTS, keys::sku(sku))?
        .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok()))
}

/// Fails with 409 `slug_taken` when a category or seller slug is already used.
fn ensure_slug_free(txn: &Txn<'_>, kind: SlugKind, slug: &str) -> Result<(), ServiceError> {
    if txn.get_raw(CF_SLUGS, &keys::slug(kind, slug))?.is_some() {
        let what = if kind == SlugKind::Seller { "seller" } else { "category" };
        return Err(ServiceError::conflict(
            "slug_taken",
            format!("{what} slug {slug} is taken"),
            serde_json::json!({ "slug": slug }),
        ));
    }
    Ok(())
}

fn unique_slug(txn: &Txn<'_>, kind: SlugKind, name: &str, id: Id) -> Result<String, ServiceError> {
    let base = Slug::derive(name, 80).unwrap_or_else(|| Slug::parse("item").expect("valid"));
    if txn.get_raw(CF_SLUGS, &keys::slug(kind, base.as_str()))?.is_none() {
        return Ok(base.as_str().to_owned());
    }
    let hex = id.to_string().replace('-', "");
    Ok(base.with_suffix(&hex[hex.len() - 10..]).as_str().to_owned())
}

fn brand_tag(normalized: &str) -> String {
    Slug::derive(normalized, 60)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|| format!("{:x}", listing::brand_hash(normalized)))
}

fn product_tags(p: &ProductRecord, tree: &CategoryTree) -> Vec<String> {
    let mut tags = vec![format!("product-{}", Id::from_bytes(p.id)), "products".to_string()];
    if let Some(c) = p.category_id {
        tags.extend(
            tree.path_up(Id::from_bytes(c))
                .into_iter()
                .map(|c| format!("category-{c}")),
        );
    }
    if let Some(s) = p.seller_id {
        tags.push(format!("seller-{}", Id::from_bytes(s)));
    }
    if let Some(b) = &p.brand {
        tags.push(format!("brand-{}", brand_tag(&listing::normalize_brand(b))));
    }
    tags
}

fn product_tags_archived(p: &storefront_storage::records::ArchivedProductRecord, tree: &CategoryTree) -> String {
    let mut tags = format!("product-{}", Id::from_bytes(p.id));
    if let Some(c) = p.category_id.as_ref() {
        for c in tree.path_up(Id::from_bytes(*c)) {
            tags.push_str(" category-");
            tags.push_str(&c.to_string());
        }
    }
    if let Some(s) = p.seller_id.as_ref() {
        tags.push_str(" seller-");
        tags.push_str(&Id::from_bytes(*s).to_string());
    }
    if let Some(b) = p.brand.as_ref() {
        tags.push_str(" brand-");
        tags.push_str(&brand_tag(&listing::normalize_brand(b.as_str())));
    }
    tags
}

fn dedup(tags: &mut Vec<String>) {
    let mut seen = HashSet::new();
    tags.retain(|t| seen.insert(t.clone()));
}

/// Computes the listing facts of a product (`None` when it must not be listed).
fn facts(
    txn: &Txn<'_>,
    p: &ProductRecord,
    tree: &CategoryTree,
    stock: &StockLedger,
) -> Result<Option<ListingFacts>, ServiceError> {
    if p.status != ProductStatus::Published {
        return Ok(None);
    }
    let mut in_stock = false;
    for v in &p.variants {
        // On-hand as this transaction sees it, holds as the ledger sees them.
        if let Some(inv) = txn.get::<InventoryRecord>(keys::sku(&v.sku))? {
            let reserved = stock.level(&v.sku).map(|l| l.reserved).unwrap_or(0);
            if inv.archived().on_hand.to_native() - reserved > 0 {
                in_stock = true;
                break;
            }
        }
    }
    let rating_x100 = if p.rating_count == 0 {
        0
    } else {
        (p.rating_sum * 100 / p.rating_count as u64).min(u16::MAX as u64) as u16
    };
    Ok(Some(ListingFacts {
        id: p.id,
        min_price_cents: p.variants.iter().map(|v| v.price_cents).min().unwrap_or(0),
        rating_x100,
        seller_id: p.seller_id,
        brand: p.brand.as_deref().map(listing::normalize_brand),
        category_path: p
            .category_id
            .map(|c| tree.path_up(Id::from_bytes(c)).into_iter().map(Id::to_bytes).collect())
            .unwrap_or_default(),
        in_stock,
    }))
}

fn stored_status(s: Status) -> ProductStatus {
    match s {
        Status::Draft => ProductStatus::Draft,
        Status::Published => ProductStatus::Published,
        Status::Archived => ProductStatus::Archived,
    }
}

fn image_record(i: &Image) -> ImageRecord {
    ImageRecord {
        url: i.url.trim().to_owned(),
        alt: i.alt.trim().to_owned(),
    }
}

fn attribute_record(a: &Attribute) -> AttributeRecord {
    AttributeRecord {
        name: a.name.clone(),
        value: match &a.value {
            AttributeValue::Text(t) => StoredValue::Text(t.clone()),
            AttributeValue::Number(n) => StoredValue::Number(*n),
            AttributeValue::Bool(b) => StoredValue::Bool(*b),
        },
    }
}

fn variant_record(v: &NewVariant) -> VariantRecord {
    VariantRecord {
        sku: v.sku.clone(),
        title: v.title.clone(),
        price_cents: v.price_cents,
        compare_at_cents: v.compare_at_cents,
        attributes: v.attributes.iter().map(attribute_record).collect(),
    }
}

fn new_inventory(sku: &str, product: Id, on_hand: i64, now: i64) -> InventoryRecord {
    InventoryRecord {
        sku: sku.to_owned(),
        product_id: product.to_bytes(),
        version: 1,
        on_hand,
        low_stock_threshold: 0,
        updated_at_ms: now,
    }
}

fn below_reserved(on_hand: i64, reserved: i64) -> ServiceError {
    ServiceError::conflict(
        "below_reserved",
        format!("on_hand {on_hand} is below the {reserved} units currently reserved"),
        serde_json::json!({ "reserved": reserved }),
    )
}

/// The stock view: on-hand, reserved and available from the live counters (one atomic read,
/// so the three always agree), version and threshold from the record.
fn inventory_view(r: &InventoryRecord, stock: &StockLedger) -> InventoryView {
    let level = stock.level(&r.sku).unwrap_or(StockLevel {
        on_hand: r.on_hand,
        reserved: 0,
    });
    InventoryView {
        sku: r.sku.clone(),
        product_id: Id::from_bytes(r.product_id),
        on_hand: level.on_hand,
        reserved: level.reserved,
        available: level.available(),
        low_stock_threshold: r.low_stock_threshold,
        version: r.version,
    }
}
