//! Product search: keeping the tantivy index in step with the catalog, answering searches off
//! the async workers behind a bounded queue, caching results per index generation, and
//! autocomplete.
//!
//! The indexer tails the storage changelog from the sequence recorded in the index's last
//! commit, applies changes in batches and commits once per batch, so after a crash it resumes
//! exactly there: re-applying a change is idempotent (documents are replaced by id), so nothing
//! is lost or duplicated.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use quick_cache::sync::Cache;
use serde::Serialize;
use storefront_index::{ProductDoc, ProductIndex, SearchRequest, SortOrder};
use storefront_storage::cf::CF_VARIANTS;
use storefront_storage::listing::{normalize_brand, Scope};
use storefront_storage::records::{
    ArchivedAttributeValue, ArchivedProductRecord, ChangeRecord, EntityKind, ProductRecord, ProductStatus,
};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::catalog::{ByteWeighter, Catalog, Representation};
use super::category_tree::CategoryTree;
use super::view::ListingItem;
use super::{blocking, ServiceError};
use crate::config::SearchConfig;
use crate::domain::{FieldErrors, Id, Money};

/// The search service.
pub struct Search {
    catalog: Arc<Catalog>,
    index: Arc<ProductIndex>,
    settings: SearchConfig,
    permits: Arc<Semaphore>,
    cache: Cache<String, Arc<Representation>, ByteWeighter>,
    /// Bumped after every index commit; part of every cache key.
    generation: AtomicU64,
    suggestions: ArcSwap<Suggester>,
    /// Brand facet key (normalised) → the spelling shown: the most common one as of the last
    /// full scan, or the first one indexed for brands new since.
    brand_names: ArcSwap<HashMap<String, String>>,
    /// Bumped whenever the autocomplete dictionary is rebuilt; part of suggestion cache keys.
    suggest_version: AtomicU64,
}

impl Search {
    /// Opens (or creates) the index under the data directory.
    pub fn open(catalog: Arc<Catalog>, data_dir: &Path, settings: SearchConfig) -> Result<Search, ServiceError> {
        let dir = data_dir.join(&settings.index_dir);
        let index = ProductIndex::open(Some(&dir), settings.writer_memory_bytes).map_err(index_error)?;
        let recreated = index.recreated();
        let search = Search::with_index(catalog, Arc::new(index), settings);
        if recreated {
            tracing::warn!(dir = %dir.display(), "search index schema changed; rebuilding from storage");
            let count = search.rebuild(|_| {})?;
            tracing::info!(count, "search index rebuilt");
        }
        Ok(search)
    }

    /// Wraps an already open index.
    pub fn with_index(catalog: Arc<Catalog>, index: Arc<ProductIndex>, settings: SearchConfig) -> Search {
        Search {
            permits: Arc::new(Semaphore::new(settings.max_pending.max(1))),
            // Bounded in bytes: search pages with facets vary a lot in size.
            cache: Cache::with_weighter(
                (settings.cache_bytes / 8192).max(16) as usize,
                settings.cache_bytes.max(1 << 16),
                ByteWeighter,
            ),
            generation: AtomicU64::new(0),
            suggestions: ArcSwap::from_pointee(Suggester::default()),
            brand_names: ArcSwap::from_pointee(HashMap::new()),
            suggest_version: AtomicU64::new(0),
            catalog,
            index,
            settings,
        }
    }

    /// Returns the index.
    pub fn index(&self) -> &Arc<ProductIndex> {
        &self.index
    }

    /// Returns the catalog the index mirrors.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    // ------------------------------------------------------------ indexing

    fn product_doc(&self, p: &ArchivedProductRecord, tree: &CategoryTree) -> Result<ProductDoc, ServiceError> {
        let stock = self.catalog.stock();
        let in_stock = p.variants.iter().any(|v| stock.available(&v.sku) > 0);
        let category_path = p
            .category_id
            .as_ref()
            .map(|c| {
                let mut ids = tree.path_up(Id::from_bytes(*c));
                ids.reverse();
                ids.into_iter()
                    .filter_map(|id| tree.get(id))
                    .map(|n| (n.slug.clone(), n.name.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let attributes = p
            .attributes
            .iter()
            .filter_map(|a| {
                let name = a.name.as_str();
                let value = match &a.value {
                    ArchivedAttributeValue::Text(t) => t.to_string(),
                    ArchivedAttributeValue::Number(n) => n.to_native().to_string(),
                    ArchivedAttributeValue::Bool(true) => name.replace('_', " "),
                    ArchivedAttributeValue::Bool(false) => return None,
                };
                let facetable = self.settings.facet_attributes.iter().any(|f| f == name) && value.len() <= 100;
                Some((name.to_owned(), value, facetable))
            })
            .collect();
        let count = p.rating_count.to_native() as u64;
        Ok(ProductDoc {
            id: Id::from_bytes(p.id).to_string(),
            title: p.title.to_string(),
            // The facet and filter key: "OtterBox" and "Otterbox" are one brand.
            brand: p.brand.as_ref().map(|b| self.brand_key(b)),
            category_path,
            description: p.description.to_string(),
            product_type: p
                .attributes
                .iter()
                .find(|a| a.name.as_str() == "product_type")
                .and_then(|a| match &a.value {
                    // Some Icecat rows declare the type "1": only words name a type.
                    ArchivedAttributeValue::Text(t) if t.chars().any(char::is_alphabetic) => Some(t.to_string()),
                    _ => None,
                }),
            attributes,
            price_cents: super::view::min_price(p),
            rating_x100: (p.rating_sum.to_native() * 100).checked_div(count).unwrap_or(0),
            in_stock,
            created_at_ms: p.created_at_ms.to_native(),
            seller: p.seller_id.as_ref().map(|s| Id::from_bytes(*s).to_string()),
        })
    }

    /// A brand's facet key, remembering how it is spelled when it is new.
    fn brand_key(&self, brand: &str) -> String {
        let key = normalize_brand(brand);
        if !self.brand_names.load().contains_key(&key) {
            self.brand_names.rcu(|names| {
                let mut names = HashMap::clone(names);
                names.entry(key.clone()).or_insert_with(|| brand.trim().to_owned());
                names
            });
        }
        key
    }

    /// Re-reads products from storage and replaces (or removes) their documents.
    fn refresh_products(&self, ids: &BTreeSet<[u8; 16]>) -> Result<(), ServiceError> {
        let tree = self.catalog.categories();
        let keys: Vec<[u8; 16]> = ids.iter().copied().collect();
        let mut docs = Vec::with_capacity(keys.len());
        for (key, record) in keys
            .iter()
            .zip(self.catalog.store().multi_get::<ProductRecord, _>(&keys)?)
        {
            match record {
                Some(r) if r.archived().status == ProductStatus::Published => {
                    docs.push(self.product_doc(r.archived(), &tree)?)
                }
                _ => self.index.delete(&Id::from_bytes(*key).to_string()),
            }
        }
        self.index.upsert(&docs).map_err(index_error)
    }

    /// Applies a batch of changelog entries and commits them as one generation.
    fn apply_changes(&self, changes: &[ChangeRecord]) -> Result<(), ServiceError> {
        let Some(last) = changes.last().map(|c| c.seq) else {
            return Ok(());
        };
        let store = self.catalog.store();
        let mut products = BTreeSet::new();
        for change in changes {
            match change.entity {
                EntityKind::Product => {
                    if let Ok(id) = <[u8; 16]>::try_from(change.key.as_slice()) {
                        products.insert(id);
                    }
                }
                EntityKind::Inventory => {
                    if let Some(owner) = store.get_raw(CF_VARIANTS, &change.key)? {
                        if let Ok(id) = <[u8; 16]>::try_from(owner.as_slice()) {
                            products.insert(id);
                        }
                    }
                }
                EntityKind::Category => {
                    // Names and paths of the category's products changed: re-read them all.
                    if let Ok(id) = <[u8; 16]>::try_from(change.key.as_slice()) {
                        products.extend(store.listing_ids(Scope::Category(id))?);
                    }
                }
                EntityKind::Seller => {}
            }
        }
        self.refresh_products(&products)?;
        self.index.commit(last).map_err(index_error)?;
        self.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Rebuilds the whole index from storage, reporting progress as products are read.
    pub fn rebuild(&self, mut on_progress: impl FnMut(u64)) -> Result<u64, ServiceError> {
        // Changes committed while the rebuild reads are replayed by the indexer afterwards
        // (re-applying is idempotent), so record the sequence seen before reading.
        let seq = self.catalog.store().last_changelog_seq();
        let tree = self.catalog.categories();
        self.index.clear().map_err(index_error)?;
        let mut batch = Vec::with_capacity(1000);
        let mut count = 0u64;
        let mut failure = None;
        self.catalog.store().for_each::<ProductRecord>(&[], |_, p| {
            if p.status == ProductStatus::Published {
                match self.product_doc(p, &tree) {
                    Ok(doc) => batch.push(doc),
                    Err(e) => {
                        failure = Some(e);
                        return false;
                    }
                }
            }
            count += 1;
            if batch.len() == 1000 {
                if let Err(e) = self.index.upsert(&batch) {
                    failure = Some(index_error(e));
                    return false;
                }
                batch.clear();
                on_progress(count);
            }
            true
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        self.index.upsert(&batch).map_err(index_error)?;
        self.index.commit(seq).map_err(index_error)?;
        self.generation.fetch_add(1, Ordering::Release);
        on_progress(count);
        Ok(count)
    }

    /// Rebuilds the index from storage when it is behind what changelog retention has deleted
    /// (a lost or old index directory): that gap cannot be replayed. Only needed when the
    /// indexer starts: while it runs, retention never deletes past what the index applied.
    pub fn rebuild_if_behind_retention(&self) -> Result<(), ServiceError> {
        let truncated = self.catalog.store().changelog_truncated_through()?;
        if self.index.applied_seq().map_err(index_error)? < truncated {
            tracing::warn!(
                truncated,
                "search index is older than the retained changelog; rebuilding"
            );
            let count = self.rebuild(|_| {})?;
            tracing::info!(count, "search index rebuilt");
        }
        Ok(())
    }

    /// Catches up with the changelog once.
    pub fn catch_up(&self) -> Result<usize, ServiceError> {
        let mut applied = 0;
        loop {
            let from = self.index.applied_seq().map_err(index_error)?;
            let changes = self.catalog.store().changes_after(from, 2000)?;
            if changes.is_empty() {
                return Ok(applied);
            }
            applied += changes.len();
            self.apply_changes(&changes)?;
        }
    }

    /// Rebuilds the autocomplete dictionary from storage.
    pub fn rebuild_suggestions(&self) -> Result<(), ServiceError> {
        let tree = self.catalog.categories();
        let mut builder = SuggesterBuilder::default();
        self.catalog.store().for_each::<ProductRecord>(&[], |_, p| {
            if p.status == ProductStatus::Published {
                builder.add_product(p, &tree);
            }
            true
        })?;
        let (suggester, brand_names) = builder.build(&tree);
        self.suggestions.store(Arc::new(suggester));
        if **self.brand_names.load() != brand_names {
            self.brand_names.store(Arc::new(brand_names));
            // Cached result pages name brands: a new spelling retires them.
            self.generation.fetch_add(1, Ordering::Release);
        }
        self.suggest_version.fetch_add(1, Ordering::Release);
        Ok(())
    }

    // ------------------------------------------------------------ queries

    /// Answers `GET /search`.
    pub async fn search(self: &Arc<Self>, params: &[(String, String)]) -> Result<Arc<Representation>, ServiceError> {
        let (mut request, canonical, page, limit) = self.parse(params)?;
        let key = format!("{}|{canonical}", self.generation.load(Ordering::Acquire));
        if let Some(hit) = self.cache.get(key.as_str()) {
            return Ok(hit);
        }
        // A full queue answers at once rather than piling up work: 503 + Retry-After.
        let permit = self
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| ServiceError::Overloaded)?;
        let this = self.clone();
        blocking(move || {
            let _permit = permit;
            let generation = this.generation.load(Ordering::Acquire);
            let started = Instant::now();
            // Read on a cache miss only: the intent follows from the query, which the key holds.
            request.boost_category = this.query_intent(&request.query);
            let results = this.index.search(&request).map_err(index_error)?;
            let repr = this.render(&request, results, page, limit, started)?;
            let repr = Arc::new(repr);
            if this.generation.load(Ordering::Acquire) == generation {
                this.cache.insert(key, repr.clone());
            }
            Ok(repr)
        })
        .await
    }

    fn parse(&self, params: &[(String, String)]) -> Result<(SearchRequest, String, usize, usize), ServiceError> {
        let mut errors = FieldErrors::default();
        let mut request = SearchRequest {
            facet_attributes: self.settings.facet_attributes.clone(),
            ..Default::default()
        };
        let mut page = 1usize;
        let mut limit = 20usize;
        let mut canonical: Vec<(String, String)> = Vec::new();
        let tree = self.catalog.categories();
        for (name, value) in params {
            let value = value.trim();
            match name.as_str() {
                "q" => request.query = value.chars().take(200).collect(),
                "category" => match tree.resolve(value) {
                    Some(node) => request.category = Some(tree.slug_path(node.id)),
                    None => errors.add("category", "unknown", "no such category"),
                },
                "brand" => request.brand = Some(normalize_brand(value)),
                "min_price" | "max_price" => match value.parse::<i64>() {
                    Ok(n) if n >= 0 => {
                        if name == "min_price" {
                            request.min_price = Some(n)
                        } else {
                            request.max_price = Some(n)
                        }
                    }
                    _ => errors.add(
                        name.clone(),
                        "invalid",
                        "must be a non-negative integer amount in minor units",
                    ),
                },
                "min_rating" => match value.parse::<f64>() {
                    Ok(r) if (0.0..=5.0).contains(&r) => request.min_rating_x100 = Some((r * 100.0).round() as u64),
                    _ => errors.add("min_rating", "invalid", "must be a number from 0 to 5"),
                },
                "in_stock" => match value {
                    "true" | "1" => request.in_stock = true,
                    "false" | "0" => request.in_stock = false,
                    _ => errors.add("in_stock", "invalid", "must be true or false"),
                },
                "sort" => {
                    request.sort = match value {
                        "relevance" => SortOrder::Relevance,
                        "price_asc" => SortOrder::PriceAsc,
                        "price_desc" => SortOrder::PriceDesc,
                        "rating" => SortOrder::Rating,
                        "newest" => SortOrder::Newest,
                        _ => {
                            errors.add(
                                "sort",
                                "invalid",
                                "must be one of relevance, price_asc, price_desc, rating, newest",
                            );
                            SortOrder::Relevance
                        }
                    }
                }
                "limit" => match value.parse::<usize>() {
                    Ok(n @ 1..=100) => limit = n,
                    _ => errors.add("limit", "out_of_range", "must be an integer from 1 to 100"),
                },
                "page" => match value.parse::<usize>() {
                    Ok(n @ 1..=500) => page = n,
                    _ => errors.add("page", "out_of_range", "must be an integer from 1 to 500"),
                },
                other => match other.strip_prefix("attr.") {
                    Some(attr) if !attr.is_empty() => request.attributes.push((attr.to_owned(), value.to_owned())),
                    _ => continue,
                },
            }
            canonical.push((name.clone(), value.to_owned()));
        }
        if let (Some(lo), Some(hi)) = (request.min_price, request.max_price) {
            if lo > hi {
                errors.add("min_price", "invalid_range", "must not exceed max_price");
            }
        }
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        request.limit = limit;
        request.offset = (page - 1) * limit;
        canonical.sort();
        let canonical = canonical
            .iter()
            .map(|(k, v)| format!("{k}={}", if k == "q" { normalize_query(v) } else { v.clone() }))
            .collect::<Vec<_>>()
            .join("&");
        Ok((request, canonical, page, limit))
    }

    fn render(
        &self,
        request: &SearchRequest,
        results: storefront_index::SearchResults,
        page: usize,
        limit: usize,
        started: Instant,
    ) -> Result<Representation, ServiceError> {
        let ids: Vec<[u8; 16]> = results
            .hits
            .iter()
            .filter_map(|h| h.id.parse::<Id>().ok().map(Id::to_bytes))
            .collect();
        let records = self.catalog.store().multi_get::<ProductRecord, _>(&ids)?;
        let currency = self.catalog.currency();
        let items: Vec<ListingItem<'_>> = records
            .iter()
            .zip(&results.hits)
            .filter_map(|(r, hit)| {
                r.as_ref()
                    .map(|r| ListingItem::new(r.archived(), currency, hit.in_stock))
            })
            .collect();
        let tree = self.catalog.categories();
        #[derive(Serialize)]
        struct CategoryFacet {
            value: String,
            id: Option<Id>,
            name: String,
            count: u64,
        }
        #[derive(Serialize)]
        struct ValueCount {
            value: String,
            count: u64,
        }
        #[derive(Serialize)]
        struct PriceBucket {
            from: Money,
            to: Option<Money>,
            count: usize,
        }
        #[derive(Serialize)]
        struct RatingBucket {
            min: f64,
            count: usize,
        }
        #[derive(Serialize)]
        struct Facets {
            category: Vec<CategoryFacet>,
            brand: Vec<ValueCount>,
            price: Vec<PriceBucket>,
            rating: Vec<RatingBucket>,
            attributes: HashMap<String, Vec<ValueCount>>,
        }
        #[derive(Serialize)]
        struct Page<'a> {
            items: Vec<ListingItem<'a>>,
            total: usize,
            page: usize,
            limit: usize,
            next_page: Option<usize>,
            facets: Facets,
            took_ms: f64,
        }
        let brand_names = self.brand_names.load();
        let facets = Facets {
            category: results
                .categories
                .iter()
                .map(|(path, count)| {
                    let slug = path.rsplit('/').next().unwrap_or("");
                    let node = tree.resolve(slug);
                    CategoryFacet {
                        value: slug.to_owned(),
                        id: node.map(|n| n.id),
                        name: node.map(|n| n.name.clone()).unwrap_or_else(|| slug.to_owned()),
                        count: *count,
                    }
                })
                .collect(),
            brand: results
                .brands
                .iter()
                .take(50)
                .map(|(path, count)| {
                    let key = path.trim_start_matches('/');
                    ValueCount {
                        value: brand_names.get(key).map_or(key, String::as_str).to_owned(),
                        count: *count,
                    }
                })
                .collect(),
            price: results
                .prices
                .iter()
                .map(|(from, to, count)| PriceBucket {
                    from: Money::new(*from, currency),
                    to: to.map(|t| Money::new(t, currency)),
                    count: *count,
                })
                .collect(),
            rating: results
                .ratings
                .iter()
                .map(|(min, count)| RatingBucket {
                    min: *min as f64 / 100.0,
                    count: *count,
                })
                .collect(),
            attributes: results
                .attributes
                .iter()
                .filter(|(_, values)| !values.is_empty())
                .map(|(name, values)| {
                    (
                        name.clone(),
                        values
                            .iter()
                            .take(30)
                            .map(|(v, c)| ValueCount {
                                value: v.clone(),
                                count: *c,
                            })
                            .collect(),
                    )
                })
                .collect(),
        };
        let body = Page {
            next_page: (request.offset + items.len() < results.total && items.len() == limit).then_some(page + 1),
            items,
            total: results.total,
            page,
            limit,
            facets,
            took_ms: (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0,
        };
        let mut tags = String::from("search products");
        for id in &ids {
            tags.push_str(" product-");
            tags.push_str(&Id::from_bytes(*id).to_string());
        }
        Representation::new(&body, None, &tags)
    }

    /// Answers `GET /search/suggest`, from the response cache when this prefix was asked since
    /// the dictionary was last rebuilt.
    pub fn suggest(&self, prefix: &str) -> Result<Arc<Representation>, ServiceError> {
        let normalized = normalize_query(prefix);
        let key = format!("suggest|{}|{normalized}", self.suggest_version.load(Ordering::Acquire));
        if let Some(hit) = self.cache.get(key.as_str()) {
            return Ok(hit);
        }
        let started = Instant::now();
        let suggestions = self.suggestions.load();
        let items = suggestions.lookup(&normalized, self.settings.suggest_limit.max(1));
        #[derive(Serialize)]
        struct Body<'a> {
            items: Vec<SuggestionView<'a>>,
            took_ms: f64,
        }
        let body = Body {
            items,
            took_ms: (started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        };
        let repr = Arc::new(Representation::new(&body, None, "search products categories")?);
        self.cache.insert(key, repr.clone());
        Ok(repr)
    }

    /// The category a query names, as an index facet path: the category the phrase rules read
    /// in it (see [`super::category_rules`]) when this catalog has that path, otherwise the one
    /// category whose name the query is ("cases" → Cases). A misspelled query is read as the
    /// index would correct it ("latpop" → laptop).
    pub fn query_intent(&self, query: &str) -> Option<String> {
        let tree = self.catalog.categories();
        let named = |query: &str| -> Option<Id> {
            let by_rules = super::category_rules::category_for(None, query).and_then(|names| {
                let mut parent = None;
                for name in names {
                    parent = Some(tree.child_named(parent, name)?.id);
                }
                parent
            });
            by_rules.or_else(|| Some(tree.named(query)?.id))
        };
        let id = named(query).or_else(|| named(&self.index.respelled(query)?))?;
        Some(tree.slug_path(id))
    }

    /// Returns the sequence the index has applied.
    pub fn applied_seq(&self) -> u64 {
        self.index.applied_seq().unwrap_or(0)
    }
}

fn index_error(e: storefront_index::Error) -> ServiceError {
    ServiceError::Internal(format!("search index: {e}"))
}

/// Lowercases and collapses whitespace so equivalent queries share a cache entry.
pub fn normalize_query(q: &str) -> String {
    q.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the indexer until `cancel` fires: polls the changelog, applies batches, commits.
pub async fn run_indexer(search: Arc<Search>, cancel: CancellationToken) {
    let poll = Duration::from_millis(search.settings.poll_interval_ms.max(10));
    let mut last_suggest_rebuild = Instant::now() - Duration::from_secs(3600);
    let mut dirty_suggestions = true;
    let mut resynced = false;
    loop {
        let s = search.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            if !resynced {
                s.rebuild_if_behind_retention()?;
            }
            s.catch_up()
        })
        .await;
        resynced |= matches!(outcome, Ok(Ok(_)));
        match outcome {
            Ok(Ok(n)) if n > 0 => dirty_suggestions = true,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "indexer failed to apply changes; retrying"),
            Err(e) => tracing::error!(error = %e, "indexer task failed"),
        }
        // Autocomplete is rebuilt at most every few seconds: it is a full scan.
        if dirty_suggestions && last_suggest_rebuild.elapsed() > Duration::from_secs(5) {
            let s = search.clone();
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || s.rebuild_suggestions()).await {
                tracing::error!(error = %e, "rebuilding suggestions failed");
            }
            last_suggest_rebuild = Instant::now();
            dirty_suggestions = false;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// One autocomplete suggestion.
#[derive(Serialize, Clone, Debug)]
pub struct SuggestionView<'a> {
    /// Text to show.
    pub text: &'a str,
    /// `product`, `brand` or `category`.
    pub kind: &'static str,
    /// Product or category slug (brands have none).
    pub slug: Option<&'a str>,
}

struct Entry {
    key: String,
    target: u32,
}

struct Target {
    text: String,
    kind: &'static str,
    slug: Option<String>,
    score: f32,
}

/// Prefix lookup over product titles (at every word), brands and categories, ranked by a
/// popularity/quality score rather than alphabetically.
#[derive(Default)]
pub struct Suggester {
    entries: Vec<Entry>,
    targets: Vec<Target>,
}

impl Suggester {
    /// Returns up to `limit` suggestions for `prefix`, best first.
    pub fn lookup(&self, prefix: &str, limit: usize) -> Vec<SuggestionView<'_>> {
        let prefix = normalize_query(prefix);
        if prefix.is_empty() {
            return Vec::new();
        }
        let start = self.entries.partition_point(|e| e.key.as_str() < prefix.as_str());
        // PERF: bounded scan; for one-letter prefixes the first 4096 keys are ranked.
        let mut best: Vec<u32> = self.entries[start..]
            .iter()
            .take_while(|e| e.key.starts_with(&prefix))
            .take(4096)
            .map(|e| e.target)
            .collect();
        best.sort_unstable();
        best.dedup();
        best.sort_by(|a, b| {
            self.targets[*b as usize]
                .score
                .total_cmp(&self.targets[*a as usize].score)
        });
        best.into_iter()
            .take(limit)
            .map(|t| {
                let t = &self.targets[t as usize];
                SuggestionView {
                    text: &t.text,
                    kind: t.kind,
                    slug: t.slug.as_deref(),
                }
            })
            .collect()
    }
}

#[derive(Default)]
struct SuggesterBuilder {
    titles: Vec<(String, String, f32)>,
    /// Per brand key, how often each spelling occurs.
    brands: HashMap<String, HashMap<String, u32>>,
    categories: HashMap<Id, u32>,
}

impl SuggesterBuilder {
    fn add_product(&mut self, p: &ArchivedProductRecord, tree: &CategoryTree) {
        // Quality: rated and shorter (more canonical) titles first; in-stock is not known here.
        let count = p.rating_count.to_native() as f32;
        let rating = if count > 0.0 {
            p.rating_sum.to_native() as f32 / count
        } else {
            0.0
        };
        let score = rating + (count + 1.0).ln() + 1.0 / (1.0 + p.title.len() as f32 / 40.0);
        self.titles.push((p.title.to_string(), p.slug.to_string(), score));
        if let Some(b) = p.brand.as_ref() {
            let spellings = self.brands.entry(normalize_brand(b)).or_default();
            *spellings.entry(b.trim().to_owned()).or_default() += 1;
        }
        if let Some(c) = p.category_id.as_ref() {
            for id in tree.path_up(Id::from_bytes(*c)) {
                *self.categories.entry(id).or_default() += 1;
            }
        }
    }

    /// Builds the suggester, and the spelling shown for each brand key (its most common one).
    fn build(self, tree: &CategoryTree) -> (Suggester, HashMap<String, String>) {
        let mut s = Suggester::default();
        let push = |s: &mut Suggester,
                    text: String,
                    kind: &'static str,
                    slug: Option<String>,
                    score: f32,
                    every_word: bool| {
            let target = s.targets.len() as u32;
            let normalized = normalize_query(&text);
            let words: Vec<usize> = std::iter::once(0)
                .chain(normalized.match_indices(' ').map(|(i, _)| i + 1))
                .take(if every_word { 12 } else { 3 })
                .collect();
            for start in words {
                let key: String = normalized[start..].chars().take(48).collect();
                s.entries.push(Entry { key, target });
            }
            s.targets.push(Target {
                text,
                kind,
                slug,
                score,
            });
        };
        // Brands and categories outrank titles: they narrow the search the shopper is typing.
        let mut brand_names = HashMap::with_capacity(self.brands.len());
        for (key, spellings) in self.brands {
            let count: u32 = spellings.values().sum();
            let Some((name, _)) = spellings
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
            else {
                continue;
            };
            push(&mut s, name.clone(), "brand", None, 100.0 + (count as f32).ln(), false);
            brand_names.insert(key, name);
        }
        for (id, count) in self.categories {
            if let Some(node) = tree.get(id) {
                push(
                    &mut s,
                    node.name.clone(),
                    "category",
                    Some(node.slug.clone()),
                    50.0 + (count as f32).ln(),
                    false,
                );
            }
        }
        for (title, slug, score) in self.titles {
            push(&mut s, title, "product", Some(slug), score, true);
        }
        s.entries.sort_by(|a, b| a.key.cmp(&b.key));
        (s, brand_names)
    }
}

/// Typical `SearchRequest` for the evaluation: relevance order, top 10, no facets.
pub fn plain_request(search: &Search, query: &str, limit: usize) -> SearchRequest {
    SearchRequest {
        query: query.to_owned(),
        boost_category: search.query_intent(query),
        limit,
        ..Default::default()
    }
}

/// Maps search hits to imported `external_id`s (evaluation against source-catalog judgments).
pub fn external_ids(catalog: &Catalog, hits: &[storefront_index::SearchHit]) -> Result<Vec<String>, ServiceError> {
    let ids: Vec<[u8; 16]> = hits
        .iter()
        .filter_map(|h| h.id.parse::<Id>().ok().map(Id::to_bytes))
        .collect();
    Ok(catalog
        .store()
        .multi_get::<ProductRecord, _>(&ids)?
        .iter()
        .map(|r| {
            r.as_ref()
                .and_then(|r| r.archived().external_id.as_ref().map(|e| e.to_string()))
                .unwrap_or_default()
        })
        .collect())
}
