//! The catalog: product pages, listings, the category tree and sellers, and the writes that
//! change them.
//!
//! - [`listing`]: listing pages over the listing index, and the listing facts of a product;
//! - [`write`]: product and variant writes, all through one edit path;
//! - [`taxonomy`]: categories and sellers, and their in-memory snapshot;
//! - [`tags`]: the surrogate keys (CDN cache tags) of what a page shows.
//!
//! Stock belongs to [`super::inventory`]; the catalog only reads the live counters to show
//! availability.
//!
//! Hot path: product and listing reads are answered from in-process caches of pre-serialised
//! JSON (`Bytes`), so a hit is a hash lookup and a refcount clone: no storage access, no JSON
//! encoding, no global lock, no info-level log. Misses and writes run on the blocking pool.
//!
//! Invalidation is exact: a write removes the product entries it touched (by id and old/new
//! slug) and bumps the generation of every listing scope the product was or is in, which
//! makes exactly those listing pages unreachable. A write epoch stops a read that raced with a
//! write from caching what it read before the write.

pub mod listing;
pub mod tags;
pub mod taxonomy;
pub mod write;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::domain::review::Histogram;
use arc_swap::ArcSwap;
use dashmap::DashMap;
use quick_cache::sync::Cache;
use storefront_storage::cf::CF_SLUGS;
use storefront_storage::keys::{self, SlugKind};
use storefront_storage::listing::Scope;
use storefront_storage::records::{CategoryRecord, ProductRecord, SellerRecord};
use storefront_storage::reviews::RatingRecord;
use storefront_storage::Store;

use super::generation::Generation;
use super::inventory::StockLedger;
use super::representation::Representation;
use super::view::{product_status, CategoryTreeView, ProductView, SellerView};
use super::{blocking, ServiceError};
use crate::domain::{product, Currency, Id};
pub use listing::ListingParams;
pub use taxonomy::{CategoryTree, SellerDirectory};
pub use write::{ResolvedProduct, Source, UpsertOutcome};

/// Settings of the catalog service.
#[derive(Debug, Clone)]
pub struct CatalogSettings {
    /// Store currency.
    pub currency: Currency,
    /// Entries examined per listing page at most.
    pub listing_max_scan: usize,
    /// Product page cache capacity, in bytes.
    pub product_bytes: u64,
    /// Listing page cache capacity, in bytes.
    pub listing_bytes: u64,
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

/// What a committed write invalidates.
#[derive(Debug, Default)]
pub(crate) struct Invalidation {
    pub(crate) product_keys: Vec<String>,
    pub(crate) scopes: Vec<Vec<u8>>,
    pub(crate) categories: bool,
    pub(crate) sellers: bool,
    /// SKUs that got a stock record: (sku, product, on-hand, low-stock threshold).
    pub(crate) stock_added: Vec<(String, [u8; 16], i64, i64)>,
    /// SKUs whose stock record was removed.
    pub(crate) stock_removed: Vec<String>,
}

impl Invalidation {
    pub(crate) fn merge(&mut self, other: Invalidation) {
        self.product_keys.extend(other.product_keys);
        self.scopes.extend(other.scopes);
        self.categories |= other.categories;
        self.sellers |= other.sellers;
        self.stock_added.extend(other.stock_added);
        self.stock_removed.extend(other.stock_removed);
    }

    /// Drops the cached pages of a product (by id and slug).
    pub(crate) fn product(&mut self, p: &ProductRecord) {
        self.product_keys.push(Id::from_bytes(p.id).to_string());
        self.product_keys.push(p.slug.clone());
    }
}

/// The catalog service.
pub struct Catalog {
    store: Store,
    settings: CatalogSettings,
    categories: ArcSwap<CategoryTree>,
    sellers: ArcSwap<SellerDirectory>,
    products: PageCache,
    listings: PageCache,
    category_docs: PageCache,
    /// Generation per listing scope; bumping one makes its cached pages unreachable.
    generations: DashMap<Vec<u8>, u64>,
    /// Incremented after every committed write (Release), read before and after a cache fill
    /// (Acquire) so a fill that overlapped a write is not cached.
    epoch: AtomicU64,
    /// Advanced after every applied write of products, categories or sellers (not stock): what
    /// a cart's prices are read from.
    content: Generation,
    /// Live stock counters, owned by the inventory service; read here to show availability.
    stock: Arc<StockLedger>,
    /// Slug under which a product's page was cached, so stock changes can evict it without a
    /// storage read.
    page_slugs: DashMap<[u8; 16], String>,
}

impl Catalog {
    /// Opens the catalog over a store, loading the category tree and sellers.
    pub fn new(store: Store, stock: Arc<StockLedger>, settings: CatalogSettings) -> Result<Catalog, ServiceError> {
        Ok(Catalog {
            categories: ArcSwap::from_pointee(CategoryTree::build(&store.scan_all::<CategoryRecord>()?)),
            sellers: ArcSwap::from_pointee(SellerDirectory::build(&store.scan_all::<SellerRecord>()?)),
            // Bounded in bytes: a listing page weighs ten product pages, and a bound by
            // entries let a browse run fill hundreds of megabytes.
            products: page_cache(settings.product_bytes, 2_500),
            listings: page_cache(settings.listing_bytes, 16_000),
            category_docs: page_cache(4 << 20, 8_000),
            generations: DashMap::new(),
            epoch: AtomicU64::new(0),
            content: Generation::default(),
            page_slugs: DashMap::new(),
            stock,
            store,
            settings,
        })
    }

    /// Returns the current category tree snapshot.
    pub fn categories(&self) -> Arc<CategoryTree> {
        self.categories.load_full()
    }

    /// Returns the current seller directory snapshot.
    pub fn sellers(&self) -> Arc<SellerDirectory> {
        self.sellers.load_full()
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

    /// Returns whether the catalog has no products and no categories.
    pub fn is_empty(&self) -> bool {
        self.store.listing_count(&Scope::All.encode()).unwrap_or(0) == 0 && self.categories.load().is_empty()
    }

    /// Bumped by every write the catalog applies: a page rendered at one epoch may be stale at
    /// the next.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The generation of the catalog's records and snapshots (products, categories,
    /// sellers), which stock changes leave alone.
    pub fn content_generation(&self) -> u64 {
        self.content.current()
    }

    /// Applies what a committed write invalidates: stock counters of added or removed SKUs,
    /// the in-memory snapshots, cached pages and listing generations.
    pub(crate) fn apply(&self, inv: Invalidation) -> Result<(), ServiceError> {
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
        // Last, so a reader that sees it also sees the new snapshots.
        self.content.advance();
        Ok(())
    }

    fn fill(&self, cache: &PageCache, key: String, epoch: u64, value: Representation) -> Arc<Representation> {
        let value = Arc::new(value);
        if self.epoch.load(Ordering::Acquire) == epoch {
            cache.insert(key, value.clone());
        }
        value
    }

    /// Drops cached pages of products whose stock counts changed (exact counts on our own
    /// pages; CDN copies age out by `max-age`, or are purged when the product flips in or out
    /// of stock through the inventory's stock signals).
    pub fn forget_product_pages(&self, product_ids: &[[u8; 16]]) {
        for id in product_ids {
            self.products.remove(Id::from_bytes(*id).to_string().as_str());
            if let Some((_, slug)) = self.page_slugs.remove(id) {
                self.products.remove(slug.as_str());
            }
        }
        self.epoch.fetch_add(1, Ordering::Release);
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

    /// The product page by id or slug if it is already rendered, without touching storage
    /// (what the HTTP fast path serves; a miss goes through [`Catalog::product_page`]).
    pub fn cached_product_page(&self, key: &str) -> Option<Arc<Representation>> {
        self.products.get(canonical_key(key).as_ref())
    }

    /// Renders a product document, drafts included (for write responses).
    pub async fn product_document(self: &Arc<Self>, id: Id) -> Result<Arc<Representation>, ServiceError> {
        let this = self.clone();
        blocking(move || this.render_product(&id.to_string(), false).map(|(r, _)| Arc::new(r))).await
    }

    /// The product imported from `feed` under `external_id`.
    pub fn product_by_external_id(&self, feed: &str, external_id: &str) -> Result<Option<Id>, ServiceError> {
        Ok(self
            .store
            .get_raw(
                storefront_storage::cf::CF_EXTERNAL_IDS,
                &keys::external_id(feed, external_id),
            )?
            .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
            .map(Id::from_bytes))
    }

    /// Resolves a product id or slug.
    pub(crate) fn resolve_product_id(&self, key: &str) -> Result<Option<Id>, ServiceError> {
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
        if public_only && !product::is_visible(product_status(&p.status)) {
            return Err(not_found());
        }
        let available: Vec<i64> = p.variants.iter().map(|v| self.stock.available(&v.sku)).collect();
        let tree = self.categories.load();
        let sellers = self.sellers.load();
        let seller = p.seller_id.as_ref().and_then(|s| sellers.get(Id::from_bytes(*s)));
        let histogram = self
            .store
            .get::<RatingRecord>(&id.to_bytes())?
            .map(|r| Histogram(r.to_native().histogram))
            .unwrap_or_default();
        let view = ProductView::new(p, self.settings.currency, &available, &tree, seller, histogram);
        let tags = tags::product(
            Id::from_bytes(p.id),
            p.category_id.as_ref().map(|c| Id::from_bytes(*c)),
            p.seller_id.as_ref().map(|s| Id::from_bytes(*s)),
            &tree,
        )
        .join(" ");
        Ok((
            Representation::new(&view, Some(p.version.to_native()), &tags)?.about(id),
            id,
        ))
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
            Some(n) => format!("categories {}", tags::category(n.id)),
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
            &tags::seller(seller.id),
        )
    }

    /// Resolves a seller reference (id or slug) to its id.
    pub fn seller_id(&self, key: &str) -> Option<Id> {
        self.sellers.load().resolve(key).map(|s| s.id)
    }
}

/// Turns a path key into the product cache key: canonical UUID text, or the slug as given.
/// Rendered pages by key, bounded by their size.
type PageCache = Cache<String, Arc<Representation>, crate::service::representation::ByteWeighter>;

/// A page cache of `bytes`, sized for pages of about `typical_page` bytes.
fn page_cache(bytes: u64, typical_page: u64) -> PageCache {
    let bytes = bytes.max(1 << 16);
    Cache::with_weighter(
        (bytes / typical_page).max(16) as usize,
        bytes,
        crate::service::representation::ByteWeighter,
    )
}

fn canonical_key(key: &str) -> std::borrow::Cow<'_, str> {
    match Id::parse(key) {
        Some(id) => std::borrow::Cow::Owned(id.to_string()),
        None => std::borrow::Cow::Borrowed(key),
    }
}

/// Fails with 412 when `If-Match` named a version other than `current`.
pub(crate) fn check_version(current: u64, if_match: Option<u64>) -> Result<(), ServiceError> {
    match if_match {
        Some(expected) if expected != current => Err(ServiceError::VersionMismatch { current }),
        _ => Ok(()),
    }
}
