//! Keeping the index in step with storage: the [`Indexer`] worker tails the changelog from the
//! sequence of the index's last commit and applies each batch as one commit; a full rebuild
//! reads every product. The index is a registered changelog consumer, so retention never
//! deletes entries it has not applied.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use storefront_index::ProductDoc;
use storefront_storage::cf::CF_VARIANTS;
use storefront_storage::listing::{normalize_brand, Scope};
use storefront_storage::records::{
    ArchivedAttributeValue, ArchivedProductRecord, ChangeRecord, EntityKind, ProductRecord,
};

use super::suggest::SuggesterBuilder;
use super::{index_error, Search};
use crate::domain::product;
use crate::domain::Id;
use crate::service::catalog::{tags, CategoryTree};
use crate::service::events::ChangelogConsumer;
use crate::service::view::{product_status, rating_summary};
use crate::service::{blocking, ServiceError};
use crate::worker::{Progress, Worker};

/// Autocomplete is rebuilt at most this often (it is a full scan), and only after a change it
/// shows (a title, brand, category or visibility): the CDN purger waits for it.
const SUGGEST_REBUILD_EVERY: Duration = Duration::from_millis(250);
/// Changes an empty index replays at its first start; beyond this it is rebuilt instead.
const REPLAY_AT_MOST: u64 = 2_000;

impl Search {
    fn product_doc(&self, p: &ArchivedProductRecord, tree: &CategoryTree) -> Result<ProductDoc, ServiceError> {
        let in_stock = product::in_stock(p.variants.iter().map(|v| self.stock.available(&v.sku)));
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
            price_cents: product::lowest_price(p.variants.iter().map(|v| v.price_cents.to_native())),
            rating_x100: rating_summary(p).x100(),
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
        for (key, record) in keys.iter().zip(self.store.multi_get::<ProductRecord, _>(&keys)?) {
            match record {
                Some(r) if product::is_visible(product_status(&r.archived().status)) => {
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
        let store = &self.store;
        let mut products = BTreeSet::new();
        // Flagged before the index commit, so the purger never sees a change as published
        // that autocomplete does not show yet.
        {
            let mut pending = self.suggest_pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.extend(
                changes
                    .iter()
                    .filter(|c| c.tags.iter().any(|t| t == tags::SUGGEST))
                    .map(|c| c.seq),
            );
        }
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
                EntityKind::Seller | EntityKind::Review => {}
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
        let seq = self.store.last_changelog_seq();
        let tree = self.catalog.categories();
        self.index.clear().map_err(index_error)?;
        let mut batch = Vec::with_capacity(1000);
        let mut count = 0u64;
        let mut failure = None;
        self.store.for_each::<ProductRecord>(&[], |_, p| {
            if product::is_visible(product_status(&p.status)) {
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
                if let Err(e) = self.index.add(&batch) {
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
        self.index.add(&batch).map_err(index_error)?;
        self.index.commit(seq).map_err(index_error)?;
        self.generation.fetch_add(1, Ordering::Release);
        on_progress(count);
        Ok(count)
    }

    /// Rebuilds the index from storage when replaying the changelog cannot or should not
    /// bring it up to date, which is only checked when the indexer starts (while it runs,
    /// retention never deletes past what the index applied):
    /// - it is behind what changelog retention has deleted (a lost or old index directory),
    ///   a gap that cannot be replayed;
    /// - it is empty and more than [`REPLAY_AT_MOST`] changes wait, as at the first start
    ///   after an import. A replay re-reads every product a change touches, a whole category
    ///   for a category change, and commits every 2,000 changes; a rebuild streams the
    ///   products once into one commit, at a fraction of the time and of the memory.
    pub fn rebuild_if_far_behind(&self) -> Result<(), ServiceError> {
        let applied = self.index.applied_seq().map_err(index_error)?;
        let truncated = self.store.changelog_truncated_through()?;
        let waiting = self.store.last_changelog_seq().saturating_sub(applied);
        let reason = if applied < truncated {
            "the search index is older than the retained changelog"
        } else if applied == 0 && waiting > REPLAY_AT_MOST {
            "the search index is empty and the changelog is long"
        } else {
            return Ok(());
        };
        tracing::warn!(truncated, waiting, "{reason}; rebuilding");
        let count = self.rebuild(|_| {})?;
        tracing::info!(count, "search index rebuilt");
        Ok(())
    }

    /// Catches up with the changelog once.
    pub fn catch_up(&self) -> Result<usize, ServiceError> {
        let mut applied = 0;
        loop {
            let from = self.index.applied_seq().map_err(index_error)?;
            let changes = self.store.changes_after(from, 2000)?;
            if changes.is_empty() {
                return Ok(applied);
            }
            applied += changes.len();
            self.apply_changes(&changes)?;
        }
    }

    /// Rebuilds the autocomplete dictionary from storage.
    pub fn rebuild_suggestions(&self) -> Result<(), ServiceError> {
        // Every change up to here is in storage before the scan reads it.
        let seen = self.store.last_changelog_seq();
        let tree = self.catalog.categories();
        let mut builder = SuggesterBuilder::default();
        self.store.for_each::<ProductRecord>(&[], |_, p| {
            if product::is_visible(product_status(&p.status)) {
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
        let mut pending = self.suggest_pending.lock().unwrap_or_else(|p| p.into_inner());
        *pending = pending.split_off(&(seen + 1));
        Ok(())
    }

    /// Whether autocomplete misses an applied change.
    pub fn suggestions_stale(&self) -> bool {
        !self
            .suggest_pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Returns the sequence the index has applied.
    pub fn applied_seq(&self) -> u64 {
        self.index.applied_seq().unwrap_or(0)
    }
}

impl crate::service::events::ReadModel for Search {
    fn published_seq(&self) -> u64 {
        Search::published_seq(self)
    }
}

impl ChangelogConsumer for Search {
    fn name(&self) -> &'static str {
        "search_indexer"
    }

    fn applied_seq(&self) -> Result<u64, ServiceError> {
        self.index.applied_seq().map_err(index_error)
    }
}

/// The indexer worker: applies what the changelog holds, then refreshes autocomplete when the
/// index changed and the last refresh is old enough.
pub struct Indexer {
    search: Arc<Search>,
    state: Mutex<IndexerState>,
}

struct IndexerState {
    /// The start-up check against retention succeeded.
    resynced: bool,
    /// Changes were applied since the last autocomplete rebuild.
    suggestions_dirty: bool,
    last_suggest_rebuild: Option<Instant>,
}

impl Indexer {
    /// The indexer of `search`.
    pub fn new(search: Arc<Search>) -> Indexer {
        Indexer {
            search,
            state: Mutex::new(IndexerState {
                resynced: false,
                suggestions_dirty: true,
                last_suggest_rebuild: None,
            }),
        }
    }
}

#[async_trait::async_trait]
impl Worker for Indexer {
    async fn try_execute(&self) -> Result<Progress, ServiceError> {
        let resynced = self.state.lock().unwrap_or_else(|p| p.into_inner()).resynced;
        let search = self.search.clone();
        let applied = blocking(move || {
            if !resynced {
                search.rebuild_if_far_behind()?;
            }
            search.catch_up()
        })
        .await?;
        let rebuild = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.resynced = true;
            state.suggestions_dirty |= self.search.suggestions_stale();
            let due = state
                .last_suggest_rebuild
                .is_none_or(|at| at.elapsed() >= SUGGEST_REBUILD_EVERY);
            state.suggestions_dirty && due
        };
        if rebuild {
            let search = self.search.clone();
            blocking(move || search.rebuild_suggestions()).await?;
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.suggestions_dirty = false;
            state.last_suggest_rebuild = Some(Instant::now());
        }
        // Caught up with storage and autocomplete built: search may answer.
        if applied == 0 && !self.state.lock().unwrap_or_else(|p| p.into_inner()).suggestions_dirty {
            self.search.mark_caught_up();
        }
        Ok(if applied > 0 { Progress::Worked } else { Progress::Idle })
    }
}
