//! Product search: keeping the tantivy index in step with the catalog, answering searches off
//! the async workers behind a bounded queue, caching results per index generation, and
//! autocomplete.
//!
//! - this module: queries (`GET /search`), suggestions and query intent;
//! - [`indexer`]: the changelog consumer that keeps the index in step, and rebuilds;
//! - [`suggest`]: the autocomplete dictionary.
//!
//! The indexer tails the storage changelog from the sequence recorded in the index's last
//! commit, applies changes in batches and commits once per batch, so after a crash it resumes
//! exactly there: re-applying a change is idempotent (documents are replaced by id), so nothing
//! is lost or duplicated.

pub mod indexer;
pub mod suggest;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use quick_cache::sync::Cache;
use storefront_index::{ProductIndex, SearchRequest, SortOrder, Spread};
use storefront_storage::listing::normalize_brand;
use storefront_storage::records::ProductRecord;
use storefront_storage::Store;
use tokio::sync::Semaphore;

use super::catalog::{tags, Catalog};
use super::inventory::StockLedger;
use super::representation::{ByteWeighter, Representation};
use super::view::search::{CategoryFacet, Facets, PriceBucket, RatingBucket, SearchPage, Suggestions, ValueCount};
use super::view::ListingItem;
use super::{blocking, ServiceError};
use crate::domain::{query, FieldErrors, Id, Money};
pub use indexer::Indexer;
use suggest::Suggester;

/// Settings of the search service.
#[derive(Debug, Clone)]
pub struct SearchSettings {
    /// Memory of the index writer.
    pub writer_memory_bytes: usize,
    /// How often the indexer polls the changelog when idle.
    pub poll_interval: Duration,
    /// Searches running or queued at once; beyond this a search gets 503 with Retry-After.
    pub max_pending: usize,
    /// Searches running at once.
    pub threads: usize,
    /// Index size from which a search runs over its segments on `threads` threads at once.
    pub spread_from_documents: u64,
    /// Memory for cached search and autocomplete responses.
    pub cache_bytes: u64,
    /// Attributes counted as facets and filterable with `attr.<name>=<value>`.
    pub facet_attributes: Vec<String>,
    /// Autocomplete suggestions returned.
    pub suggest_limit: usize,
}

/// What the search service reads: the store, the catalog's snapshots and the live counters.
#[derive(Clone)]
pub struct Sources {
    /// The store.
    pub store: Store,
    /// The catalog.
    pub catalog: Arc<Catalog>,
    /// Live stock counters.
    pub stock: Arc<StockLedger>,
}

/// The search service.
pub struct Search {
    store: Store,
    catalog: Arc<Catalog>,
    stock: Arc<StockLedger>,
    index: Arc<ProductIndex>,
    settings: SearchSettings,
    permits: Arc<Semaphore>,
    /// Turns to run: a search is CPU work, so more at once than cores only adds blocking
    /// threads (each with its own allocator heap) and switches between them.
    running: Arc<Semaphore>,
    cache: Cache<String, Arc<Representation>, ByteWeighter>,
    /// Bumped after every index commit; part of every cache key.
    generation: AtomicU64,
    suggestions: ArcSwap<Suggester>,
    /// Brand facet key (normalised) → the spelling shown: the most common one as of the last
    /// full scan, or the first one indexed for brands new since.
    brand_names: ArcSwap<HashMap<String, String>>,
    /// Bumped whenever the autocomplete dictionary is rebuilt; part of suggestion cache keys.
    suggest_version: AtomicU64,
    /// Sequences of applied changes that autocomplete does not show yet (it is rebuilt from a
    /// scan): what the CDN purger waits for besides the index.
    suggest_pending: std::sync::Mutex<std::collections::BTreeSet<u64>>,
    /// The index has caught up with storage since the start: until then search answers 503,
    /// never an empty (and cacheable) result.
    caught_up: std::sync::atomic::AtomicBool,
}

impl Search {
    /// Opens (or creates) the index in `dir`, rebuilding it when its schema changed.
    pub fn open(sources: Sources, dir: &Path, settings: SearchSettings) -> Result<Search, ServiceError> {
        let index = ProductIndex::open_with(
            Some(dir),
            settings.writer_memory_bytes,
            Spread {
                threads: settings.threads,
                from_documents: settings.spread_from_documents,
            },
        )
        .map_err(index_error)?;
        let recreated = index.recreated();
        let search = Search::with_index(sources, Arc::new(index), settings);
        if recreated {
            tracing::warn!(dir = %dir.display(), "search index schema changed; rebuilding from storage");
            let count = search.rebuild(|_| {})?;
            tracing::info!(count, "search index rebuilt");
        }
        Ok(search)
    }

    /// Wraps an already open index.
    pub fn with_index(sources: Sources, index: Arc<ProductIndex>, settings: SearchSettings) -> Search {
        Search {
            permits: Arc::new(Semaphore::new(settings.max_pending.max(1))),
            running: Arc::new(Semaphore::new(settings.threads.max(1))),
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
            suggest_pending: std::sync::Mutex::new(std::collections::BTreeSet::new()),
            caught_up: std::sync::atomic::AtomicBool::new(false),
            store: sources.store,
            catalog: sources.catalog,
            stock: sources.stock,
            index,
            settings,
        }
    }

    /// Returns the index.
    pub fn index(&self) -> &Arc<ProductIndex> {
        &self.index
    }

    // ------------------------------------------------------------ queries

    /// Whether the index has caught up with storage since the start.
    pub fn is_caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Acquire)
    }

    /// Marks the index (and autocomplete) caught up with storage.
    pub fn mark_caught_up(&self) {
        if !self.caught_up.swap(true, Ordering::AcqRel) {
            tracing::info!(documents = self.index.num_docs(), "search caught up with storage");
        }
    }

    fn require_caught_up(&self) -> Result<(), ServiceError> {
        if self.is_caught_up() {
            Ok(())
        } else {
            Err(ServiceError::NotReady)
        }
    }

    /// The changelog sequence every public page search renders has applied: the index's, held
    /// back while autocomplete still misses an applied change.
    pub fn published_seq(&self) -> u64 {
        let index = self.applied_seq();
        match self.suggest_pending.lock().unwrap_or_else(|p| p.into_inner()).first() {
            Some(first) => index.min(first - 1),
            None => index,
        }
    }

    /// Answers `GET /search`.
    pub async fn search(self: &Arc<Self>, params: &[(String, String)]) -> Result<Arc<Representation>, ServiceError> {
        self.require_caught_up()?;
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
        // The semaphore is never closed.
        let turn = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ServiceError::Overloaded)?;
        let this = self.clone();
        blocking(move || {
            let _permit = (permit, turn);
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
        let mut limit = query::DEFAULT_LIMIT;
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
                "min_price" => request.min_price = query::amount(name, Some(value), &mut errors),
                "max_price" => request.max_price = query::amount(name, Some(value), &mut errors),
                "min_rating" => match value.parse::<f64>() {
                    Ok(r) if (0.0..=5.0).contains(&r) => request.min_rating_x100 = Some((r * 100.0).round() as u64),
                    _ => errors.add("min_rating", "invalid", "must be a number from 0 to 5"),
                },
                "in_stock" => request.in_stock = query::flag(name, Some(value), &mut errors),
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
                "limit" => limit = query::limit(Some(value), &mut errors),
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
        let records = self.store.multi_get::<ProductRecord, _>(&ids)?;
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
        let body = SearchPage {
            next_page: (request.offset + items.len() < results.total && items.len() == limit).then_some(page + 1),
            items,
            total: results.total,
            page,
            limit,
            facets,
            took_ms: (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0,
        };
        let mut page_tags = String::from(tags::SEARCH);
        for id in &ids {
            page_tags.push(' ');
            page_tags.push_str(&tags::product_id(Id::from_bytes(*id)));
        }
        Representation::new(&body, None, &page_tags)
    }

    /// Answers `GET /search/suggest`, from the response cache when this prefix was asked since
    /// the dictionary was last rebuilt.
    pub fn suggest(&self, prefix: &str) -> Result<Arc<Representation>, ServiceError> {
        self.require_caught_up()?;
        let normalized = normalize_query(prefix);
        let key = format!("suggest|{}|{normalized}", self.suggest_version.load(Ordering::Acquire));
        if let Some(hit) = self.cache.get(key.as_str()) {
            return Ok(hit);
        }
        let started = Instant::now();
        let suggestions = self.suggestions.load();
        let items = suggestions.lookup(&normalized, self.settings.suggest_limit.max(1));
        let body = Suggestions {
            items,
            took_ms: (started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        };
        let repr = Arc::new(Representation::new(&body, None, tags::SUGGEST)?);
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
            let by_rules = crate::domain::category_rules::category_for(None, query).and_then(|names| {
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
}

fn index_error(e: storefront_index::Error) -> ServiceError {
    ServiceError::internal_from("search index", e)
}

/// Lowercases and collapses whitespace so equivalent queries share a cache entry.
pub fn normalize_query(q: &str) -> String {
    q.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the indexer until `cancel` fires: polls the changelog, applies batches, commits.
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
pub fn external_ids(search: &Search, hits: &[storefront_index::SearchHit]) -> Result<Vec<String>, ServiceError> {
    let ids: Vec<[u8; 16]> = hits
        .iter()
        .filter_map(|h| h.id.parse::<Id>().ok().map(Id::to_bytes))
        .collect();
    Ok(search
        .store
        .multi_get::<ProductRecord, _>(&ids)?
        .iter()
        .map(|r| {
            r.as_ref()
                .and_then(|r| r.archived().external_id.as_ref().map(|e| e.to_string()))
                .unwrap_or_default()
        })
        .collect())
}
