//! The recommendation service: records actions, keeps the models current in a worker, and
//! answers from memory. Every list is filtered when it is served: unpublished and
//! out-of-stock products never show, whatever the models learnt.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use storefront_storage::reco::BehaviourKind;
use storefront_storage::records::ProductRecord;
use storefront_storage::{Owned, Store};

use super::events::{self, Action, Drain, Recorder};
use super::models::{Item, Model};
use super::{past_orders, PastOrder, RecoSettings};
use crate::clock::SharedClock;
use crate::domain::Id;
use crate::service::auth::Actor;
use crate::service::catalog::tags;
use crate::service::inventory::StockLedger;
use crate::service::representation::Representation;
use crate::service::search::{plain_request, Search};
use crate::service::view::product::ListingItem;
use crate::service::view::product_status;
use crate::service::{blocking, Catalog, ServiceError};
use crate::worker::{Progress, Worker};

/// Actions one worker step takes in.
const STEP: usize = 4096;
/// Most items a list may ask for.
pub const MAX_LIMIT: usize = 50;

/// A list of recommended products.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RecommendationList<'a> {
    /// `popular`, `personalized`, `frequently_bought_together` or `related`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// The product the list is about, for product lists.
    product_id: Option<Id>,
    /// The products, best first; published and in stock.
    items: Vec<ListingItem<'a>>,
}

/// The recommendation service.
pub struct Recommendations {
    store: Store,
    clock: SharedClock,
    catalog: Arc<Catalog>,
    stock: Arc<StockLedger>,
    search: Arc<Search>,
    settings: RecoSettings,
    recorder: Recorder,
    drain: Drain,
    model: RwLock<Model>,
    loaded: AtomicBool,
    /// The record counter and the anonymous counts waiting for their window.
    pending: Mutex<Pending>,
    last_expiry_ms: AtomicI64,
    /// Bumped whenever the models change.
    generation: AtomicU64,
    /// Public lists as last rendered, with the model generation and catalog epoch they
    /// were rendered at: any change to either retires them, so serve-time filtering holds.
    rendered: quick_cache::sync::Cache<ListKey, (u64, u64, Arc<Representation>)>,
}

/// Which public list: its kind, the product or category it is about, and its length.
type ListKey = (&'static str, Option<Id>, Option<Id>, usize);

/// What the worker has yet to write.
#[derive(Default)]
struct Pending {
    counter: u32,
    tally: events::Tally,
}

impl Recommendations {
    /// The service; the worker loads the models from storage on its first step.
    pub fn new(
        store: Store,
        clock: SharedClock,
        catalog: Arc<Catalog>,
        stock: Arc<StockLedger>,
        search: Arc<Search>,
        settings: RecoSettings,
    ) -> Recommendations {
        let (recorder, drain) = events::channel(settings.queue_capacity);
        Recommendations {
            store,
            clock,
            catalog,
            stock,
            search,
            model: RwLock::new(Model::new(settings.model)),
            settings,
            recorder,
            drain,
            loaded: AtomicBool::new(false),
            pending: Mutex::new(Pending::default()),
            last_expiry_ms: AtomicI64::new(0),
            generation: AtomicU64::new(0),
            rendered: quick_cache::sync::Cache::new(4096),
        }
    }

    /// Records a product view or an add-to-cart (never waits).
    pub fn record(&self, kind: BehaviourKind, product: Id, user: Option<Id>, session: u64) {
        if !self.settings.record_behaviour {
            return;
        }
        self.recorder.record(Action::Browse {
            kind,
            product,
            user,
            session,
            at_ms: self.clock.now_ms(),
        });
    }

    /// Records an add-to-cart of a SKU (never waits).
    pub fn record_cart(&self, sku: &str, user: Option<Id>, session: u64) {
        if let Some(product) = self.stock.product_of(sku) {
            self.record(BehaviourKind::Cart, Id::from_bytes(product), user, session);
        }
    }

    /// Records a placed order (never waits).
    pub fn record_order(&self, order: PastOrder) {
        self.recorder.record(Action::Order(order));
    }

    /// Actions dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.recorder.dropped()
    }

    /// Products the models know.
    pub fn products(&self) -> usize {
        self.read().len()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Model> {
        self.model.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The products in `candidates` shoppers may see and buy, in order, without `exclude`,
    /// optionally only within `category` (and below), at most `limit`.
    fn visible(
        &self,
        candidates: &[Id],
        exclude: &[Id],
        category: Option<Id>,
        limit: usize,
    ) -> Result<Vec<Owned<ProductRecord>>, ServiceError> {
        let tree = self.catalog.categories();
        let mut out: Vec<Owned<ProductRecord>> = Vec::with_capacity(limit);
        for chunk in candidates.chunks(limit.max(8) * 2) {
            let keys: Vec<[u8; 16]> = chunk
                .iter()
                .filter(|id| !exclude.contains(id))
                .map(|id| id.to_bytes())
                .collect();
            for record in self.store.multi_get::<ProductRecord, _>(&keys)?.into_iter().flatten() {
                let p = record.archived();
                let shown = crate::domain::product::is_visible(product_status(&p.status))
                    && p.variants.iter().any(|v| self.stock.available(&v.sku) > 0)
                    && category.is_none_or(|c| {
                        p.category_id
                            .as_ref()
                            .is_some_and(|own| tree.path_up(Id::from_bytes(*own)).contains(&c))
                    });
                if shown && !out.iter().any(|o| o.archived().id == p.id) {
                    out.push(record);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    fn render(
        &self,
        kind: &'static str,
        product: Option<Id>,
        products: &[Owned<ProductRecord>],
    ) -> Result<Representation, ServiceError> {
        let currency = self.catalog.currency();
        let mut tag_list: Vec<String> = vec!["recommendations".to_owned()];
        tag_list.extend(product.map(tags::product_id));
        let items: Vec<ListingItem<'_>> = products
            .iter()
            .map(|p| {
                tag_list.push(tags::product_id(Id::from_bytes(p.archived().id)));
                ListingItem::new(p.archived(), currency, true)
            })
            .collect();
        Representation::new(
            &RecommendationList {
                kind,
                product_id: product,
                items,
            },
            None,
            &tag_list.join(" "),
        )
    }

    /// A public list from the cache when neither the models nor the catalog changed since it
    /// was rendered, else rendered by `render` and kept.
    fn cached(
        &self,
        key: ListKey,
        render: impl FnOnce() -> Result<Representation, ServiceError>,
    ) -> Result<Arc<Representation>, ServiceError> {
        let (generation, epoch) = (self.generation.load(Ordering::Acquire), self.catalog.epoch());
        if let Some((g, e, repr)) = self.rendered.get(&key) {
            if g == generation && e == epoch {
                return Ok(repr);
            }
        }
        let repr = Arc::new(render()?);
        self.rendered.insert(key, (generation, epoch, repr.clone()));
        Ok(repr)
    }

    fn popular_ids(&self, model: &Model, n: usize) -> Vec<Id> {
        model.popular().iter().take(n).map(|(i, _)| model.id(*i)).collect()
    }

    fn resolve(&self, key: &str) -> Result<Id, ServiceError> {
        let not_found = || ServiceError::NotFound { kind: "product" };
        let id = self.catalog.resolve_product_id(key)?.ok_or_else(not_found)?;
        let product = self.store.get::<ProductRecord>(&id.to_bytes())?.ok_or_else(not_found)?;
        if !crate::domain::product::is_visible(product_status(&product.archived().status)) {
            return Err(not_found());
        }
        Ok(id)
    }

    /// What sells now (time-decayed purchases, add-to-carts and views), optionally within a
    /// category. Public.
    pub async fn popular(
        self: &Arc<Self>,
        category: Option<String>,
        limit: usize,
    ) -> Result<Arc<Representation>, ServiceError> {
        let this = self.clone();
        blocking(move || {
            let category = match category {
                Some(c) => Some(
                    this.catalog
                        .categories()
                        .resolve(&c)
                        .map(|n| n.id)
                        .ok_or(ServiceError::NotFound { kind: "category" })?,
                ),
                None => None,
            };
            this.cached(("popular", None, category, limit), || {
                let ids = {
                    let model = this.read();
                    this.popular_ids(&model, model.popular().len())
                };
                let shown = this.visible(&ids, &[], category, limit)?;
                this.render("popular", None, &shown)
            })
        })
        .await
    }

    /// Products most often bought with `key`'s. Public.
    pub async fn frequently_bought_together(
        self: &Arc<Self>,
        key: String,
        limit: usize,
    ) -> Result<Arc<Representation>, ServiceError> {
        let this = self.clone();
        blocking(move || {
            let id = this.resolve(&key)?;
            this.cached(("frequently_bought_together", Some(id), None, limit), || {
                let ids: Vec<Id> = {
                    let model = this.read();
                    model
                        .item(&id)
                        .map(|a| list_ids(&model, model.frequently_bought_together(a)))
                        .unwrap_or_default()
                };
                let shown = this.visible(&ids, &[id], None, limit)?;
                this.render("frequently_bought_together", Some(id), &shown)
            })
        })
        .await
    }

    /// Products related to `key`'s by co-views and co-purchases, filled for new or cold
    /// products with the most similar ones by the search index. Public.
    pub async fn related(self: &Arc<Self>, key: String, limit: usize) -> Result<Arc<Representation>, ServiceError> {
        let this = self.clone();
        blocking(move || {
            let id = this.resolve(&key)?;
            this.cached(("related", Some(id), None, limit), || {
                let mut ids: Vec<Id> = {
                    let model = this.read();
                    model
                        .item(&id)
                        .map(|a| list_ids(&model, model.related(a)))
                        .unwrap_or_default()
                };
                let mut shown = this.visible(&ids, &[id], None, limit)?;
                if shown.len() < limit {
                    ids.extend(this.similar(id, limit * 2)?);
                    shown = this.visible(&ids, &[id], None, limit)?;
                }
                this.render("related", Some(id), &shown)
            })
        })
        .await
    }

    /// Products like `id` by text, from the search index.
    fn similar(&self, id: Id, n: usize) -> Result<Vec<Id>, ServiceError> {
        let Some(p) = self.store.get::<ProductRecord>(&id.to_bytes())? else {
            return Ok(Vec::new());
        };
        let request = plain_request(&self.search, p.archived().title.as_str(), n + 1);
        let hits = self
            .search
            .index()
            .search(&request)
            .map_err(|e| ServiceError::internal_from("similar products", e))?;
        Ok(hits.hits.iter().filter_map(|h| h.id.parse::<Id>().ok()).collect())
    }

    /// The signed-in shopper's list (their recent views and purchases through the
    /// item-to-item model, without what they just bought), filled with popular products;
    /// anonymous callers get popular products. Returns whether the list is personal.
    pub async fn personalized(
        self: &Arc<Self>,
        actor: Actor,
        limit: usize,
    ) -> Result<(Representation, bool), ServiceError> {
        let user = match actor {
            Actor::User { id, .. } => Some(id),
            _ => None,
        };
        let this = self.clone();
        blocking(move || {
            let now = this.clock.now_ms();
            let (mut ids, known) = {
                let model = this.read();
                let known = user.is_some_and(|u| model.knows(&u));
                let ids: Vec<Id> = match user {
                    Some(u) => model
                        .personalized(&u, now, MAX_LIMIT * 2)
                        .into_iter()
                        .map(|(i, _)| model.id(i))
                        .collect(),
                    None => Vec::new(),
                };
                (ids, known)
            };
            let fill = {
                let model = this.read();
                this.popular_ids(&model, MAX_LIMIT * 4)
            };
            ids.extend(fill);
            let shown = this.visible(&ids, &[], None, limit)?;
            let repr = this.render(if known { "personalized" } else { "popular" }, None, &shown)?;
            Ok((repr, user.is_some()))
        })
        .await
    }

    /// Builds the models from every placed order and the retained behaviour log.
    fn load(&self) -> Result<(), ServiceError> {
        let mut model = Model::new(self.settings.model);
        let orders = past_orders(&self.store)?;
        for o in &orders {
            model.add_order(o.user, &o.products, o.at_ms);
        }
        let since = self.clock.now_ms() - self.settings.behaviour_retention.as_millis() as i64;
        let actions = events::replay(&self.store, &mut model, since)?;
        model.refresh();
        tracing::info!(
            orders = orders.len(),
            actions,
            products = model.len(),
            "recommendation models loaded"
        );
        *self.model.write().unwrap_or_else(|p| p.into_inner()) = model;
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.loaded.store(true, Ordering::Release);
        Ok(())
    }

    /// One worker step: load once, then take in waiting actions (and expire old ones).
    fn step(&self) -> Result<Progress, ServiceError> {
        if !self.loaded.load(Ordering::Acquire) {
            self.load()?;
            return Ok(Progress::Worked);
        }
        let actions = self.drain.take(STEP);
        let now = self.clock.now_ms();
        if actions.is_empty() {
            self.write_tally(&mut self.pending.lock().unwrap_or_else(|p| p.into_inner()), false)?;
            if now - self.last_expiry_ms.load(Ordering::Relaxed) > 60_000 {
                self.last_expiry_ms.store(now, Ordering::Relaxed);
                let before = now - self.settings.behaviour_retention.as_millis() as i64;
                events::expire(&self.store, before, 10_000)?;
                self.model
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .forget_idle_sessions(now);
            }
            return Ok(Progress::Idle);
        }
        let coalesced = events::coalesce(&actions);
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            events::persist(&self.store, &coalesced.linked, &mut pending.counter)?;
            for r in &coalesced.anonymous {
                pending.tally.add(r, now);
            }
            self.write_tally(&mut pending, false)?;
        }
        let mut model = self.model.write().unwrap_or_else(|p| p.into_inner());
        events::apply_orders(&mut model, &actions);
        for r in coalesced.linked.iter().chain(&coalesced.anonymous) {
            events::apply_record(&mut model, r);
        }
        model.refresh();
        drop(model);
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(if actions.len() == STEP {
            Progress::Worked
        } else {
            Progress::Idle
        })
    }

    /// Writes the gathered anonymous counts once their window has passed, or now when
    /// `force`d (at shutdown). The models already have them.
    fn write_tally(&self, pending: &mut Pending, force: bool) -> Result<(), ServiceError> {
        if !force && !pending.tally.due(self.clock.now_ms()) {
            return Ok(());
        }
        events::persist(&self.store, pending.tally.records(), &mut pending.counter)?;
        pending.tally.clear();
        Ok(())
    }

    /// Writes what the worker still holds in memory; called once the workers have stopped.
    pub fn flush(&self) -> Result<(), ServiceError> {
        self.write_tally(&mut self.pending.lock().unwrap_or_else(|p| p.into_inner()), true)
    }
}

fn list_ids(model: &Model, list: &[(Item, f32)]) -> Vec<Id> {
    list.iter().map(|(i, _)| model.id(*i)).collect()
}

/// The worker that keeps the models current.
pub struct RecoUpdater(pub Arc<Recommendations>);

#[async_trait::async_trait]
impl Worker for RecoUpdater {
    async fn try_execute(&self) -> Result<Progress, ServiceError> {
        let reco = self.0.clone();
        blocking(move || reco.step()).await
    }
}
