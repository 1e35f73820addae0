//! Wishlists, and the alerts they promise: `back_in_stock` when a wished-for product (or
//! variant) can be bought again after being out, and `price_drop` when its price falls below
//! what the shopper last saw.
//!
//! The alert worker tails the changelog. Each entry keeps what its shopper last saw, and an
//! alert is staged in the same batch as the entry's new state, so a change alerts once: a
//! step that runs again finds nothing new, and a stock tick that changes neither fact is
//! silent.

use std::collections::BTreeSet;
use std::sync::Arc;

use storefront_storage::cf::{CF_VARIANTS, CF_WISHLISTS, CF_WISHLIST_WATCHERS};
use storefront_storage::keys;
use storefront_storage::reco::{wishlist as entry_key, WishlistRecord};
use storefront_storage::records::{ArchivedProductRecord, EntityKind, ProductRecord, UserRecord};
use storefront_storage::{Owned, Store};

use crate::clock::SharedClock;
use crate::domain::{FieldErrors, Id, Money};
use crate::service::auth::Actor;
use crate::service::events::outbox::new_event;
use crate::service::events::PersistedCursor;
use crate::service::inventory::StockLedger;
use crate::service::representation::Representation;
use crate::service::view::product::ListingItem;
use crate::service::view::{product_status, rfc3339};
use crate::service::{blocking, Catalog, ServiceError};
use crate::worker::{Progress, Worker};

/// Most products on one wishlist.
pub const MAX_ITEMS: usize = 500;
/// Changelog entries one alert step reads.
const BATCH: usize = 500;
/// The alert worker's changelog cursor.
pub const CONSUMER: &str = "wishlist_alerts";

/// Body of `POST /me/wishlist`.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WishlistInput {
    /// Product id or slug.
    pub product_id: String,
    /// A variant of it; any variant when absent.
    pub sku: Option<String>,
}

/// One wishlisted product.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct WishlistItem<'a> {
    /// The variant wished for, if one.
    sku: Option<&'a str>,
    /// RFC 3339.
    added_at: String,
    /// The product as a listing shows it.
    product: ListingItem<'a>,
}

/// The wishlist service.
pub struct Wishlists {
    store: Store,
    clock: SharedClock,
    catalog: Arc<Catalog>,
    stock: Arc<StockLedger>,
}

/// What a shopper sees of a wished-for product: its price and whether it can be bought.
fn seen(p: &ArchivedProductRecord, sku: Option<&str>, stock: &StockLedger) -> Option<(i64, bool)> {
    if !crate::domain::product::is_visible(product_status(&p.status)) {
        return None;
    }
    match sku {
        Some(sku) => p
            .variants
            .iter()
            .find(|v| v.sku == sku)
            .map(|v| (v.price_cents.to_native(), stock.available(sku) > 0)),
        None => Some((
            crate::service::view::min_price(p),
            p.variants.iter().any(|v| stock.available(&v.sku) > 0),
        )),
    }
}

fn watcher_key(product: &[u8; 16], user: &[u8; 16]) -> [u8; 32] {
    entry_key(product, user)
}

impl Wishlists {
    /// The service over `store`.
    pub fn new(store: Store, clock: SharedClock, catalog: Arc<Catalog>, stock: Arc<StockLedger>) -> Wishlists {
        Wishlists {
            store,
            clock,
            catalog,
            stock,
        }
    }

    /// Adds (or re-targets) a product on the signed-in user's wishlist; `true` when new.
    pub async fn add(self: &Arc<Self>, actor: Actor, input: WishlistInput) -> Result<bool, ServiceError> {
        let user = actor.user_id()?;
        let this = self.clone();
        blocking(move || {
            let not_found = || ServiceError::NotFound { kind: "product" };
            let product = this
                .catalog
                .resolve_product_id(&input.product_id)?
                .ok_or_else(not_found)?;
            let record = this
                .store
                .get::<ProductRecord>(&product.to_bytes())?
                .ok_or_else(not_found)?;
            let p = record.archived();
            let mut errors = FieldErrors::default();
            if let Some(sku) = &input.sku {
                if !p.variants.iter().any(|v| v.sku == sku.as_str()) {
                    errors.add("sku", "unknown", "is not a variant of the product");
                }
            }
            errors.finish(()).map_err(ServiceError::Validation)?;
            let (price, in_stock) = seen(p, input.sku.as_deref(), &this.stock).ok_or_else(not_found)?;
            let key = entry_key(&user.to_bytes(), &product.to_bytes());
            let existing = this.store.get::<WishlistRecord>(&key)?;
            if existing.is_none() && this.count(user)? >= MAX_ITEMS {
                let mut errors = FieldErrors::default();
                errors.add(
                    "product_id",
                    "wishlist_full",
                    format!("a wishlist holds at most {MAX_ITEMS} products"),
                );
                return Err(ServiceError::Validation(errors.into_vec()));
            }
            let entry = WishlistRecord {
                user_id: user.to_bytes(),
                product_id: product.to_bytes(),
                sku: input.sku.clone(),
                seen_price_cents: price,
                seen_in_stock: in_stock,
                added_at_ms: existing
                    .as_ref()
                    .map(|e| e.archived().added_at_ms.to_native())
                    .unwrap_or_else(|| this.clock.now_ms()),
            };
            let mut batch = this.store.batch();
            batch.put(&key, &entry)?;
            batch.put_raw(
                CF_WISHLIST_WATCHERS,
                &watcher_key(&product.to_bytes(), &user.to_bytes()),
                &[],
            );
            batch.commit()?;
            Ok(existing.is_none())
        })
        .await
    }

    /// Removes a product from the signed-in user's wishlist (404 when it is not on it).
    pub async fn remove(self: &Arc<Self>, actor: Actor, product: String) -> Result<(), ServiceError> {
        let user = actor.user_id()?;
        let this = self.clone();
        blocking(move || {
            let not_found = || ServiceError::NotFound { kind: "wishlist item" };
            let product = this.catalog.resolve_product_id(&product)?.ok_or_else(not_found)?;
            let key = entry_key(&user.to_bytes(), &product.to_bytes());
            if this.store.get_raw(CF_WISHLISTS, &key)?.is_none() {
                return Err(not_found());
            }
            let mut batch = this.store.batch();
            batch.delete(CF_WISHLISTS, &key);
            batch.delete(
                CF_WISHLIST_WATCHERS,
                &watcher_key(&product.to_bytes(), &user.to_bytes()),
            );
            batch.commit()?;
            Ok(())
        })
        .await
    }

    /// The signed-in user's wishlist, newest first, as a private document.
    pub async fn list(self: &Arc<Self>, actor: Actor) -> Result<Representation, ServiceError> {
        let user = actor.user_id()?;
        let this = self.clone();
        blocking(move || {
            let entries = this.entries(user)?;
            let ids: Vec<[u8; 16]> = entries.iter().map(|e| e.product_id).collect();
            let products = this.store.multi_get::<ProductRecord, _>(&ids)?;
            let currency = this.catalog.currency();
            let mut items: Vec<WishlistItem<'_>> = entries
                .iter()
                .zip(products.iter())
                .filter_map(|(e, p)| {
                    let p = p.as_ref()?.archived();
                    let (_, in_stock) = seen(p, e.sku.as_deref(), &this.stock)?;
                    Some(WishlistItem {
                        sku: e.sku.as_deref(),
                        added_at: rfc3339(e.added_at_ms),
                        product: ListingItem::new(p, currency, in_stock),
                    })
                })
                .collect();
            items.reverse();
            Representation::new(&crate::service::view::Items { items }, None, "")
        })
        .await
    }

    fn entries(&self, user: Id) -> Result<Vec<WishlistRecord>, ServiceError> {
        let prefix = user.to_bytes();
        let upper = keys::prefix_successor(&prefix);
        let mut out = Vec::new();
        let mut failure = None;
        self.store
            .for_each_raw(CF_WISHLISTS, &prefix, upper.as_deref(), |key, value| {
                match Owned::<WishlistRecord>::from_slice(key, value) {
                    Ok(r) => out.push(r.to_native()),
                    Err(e) => failure = Some(e),
                }
                failure.is_none()
            })?;
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(out),
        }
    }

    fn count(&self, user: Id) -> Result<usize, ServiceError> {
        let prefix = user.to_bytes();
        let upper = keys::prefix_successor(&prefix);
        let mut n = 0;
        self.store
            .for_each_raw(CF_WISHLISTS, &prefix, upper.as_deref(), |_, _| {
                n += 1;
                true
            })?;
        Ok(n)
    }

    /// One alert step: the watchers of every product the next changelog entries touched.
    fn alert_step(&self, cursor: &PersistedCursor) -> Result<Progress, ServiceError> {
        let from = cursor.get()?;
        let store = &self.store;
        let changes = store.changes_after(from, BATCH)?;
        let Some(last) = changes.last().map(|c| c.seq) else {
            return Ok(Progress::Idle);
        };
        let mut products = BTreeSet::new();
        for change in &changes {
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
                EntityKind::Category | EntityKind::Seller | EntityKind::Review => {}
            }
        }
        let mut alerts = 0;
        for product in products {
            alerts += self.check(product)?;
        }
        if alerts > 0 {
            tracing::info!(alerts, "wishlist alerts");
        }
        cursor.set(last)?;
        Ok(Progress::Worked)
    }

    /// Compares every watcher of `product` with what they last saw and stages one alert per
    /// news, with the new state, in one batch. Returns the alerts sent.
    fn check(&self, product: [u8; 16]) -> Result<usize, ServiceError> {
        let prefix = product;
        let upper = keys::prefix_successor(&prefix);
        let mut users = Vec::new();
        self.store
            .for_each_raw(CF_WISHLIST_WATCHERS, &prefix, upper.as_deref(), |key, _| {
                if let Ok(user) = <[u8; 16]>::try_from(&key[16..]) {
                    users.push(user);
                }
                true
            })?;
        if users.is_empty() {
            return Ok(0);
        }
        let Some(record) = self.store.get::<ProductRecord>(&product)? else {
            return Ok(0);
        };
        let p = record.archived();
        let currency = self.catalog.currency();
        let now = self.clock.now_ms();
        let mut batch = self.store.batch();
        let mut alerts = 0;
        for user in users {
            let key = entry_key(&user, &product);
            let Some(entry) = self.store.get::<WishlistRecord>(&key)?.map(|e| e.to_native()) else {
                continue;
            };
            let Some((price, in_stock)) = seen(p, entry.sku.as_deref(), &self.stock) else {
                continue;
            };
            if price == entry.seen_price_cents && in_stock == entry.seen_in_stock {
                continue;
            }
            let mut news = Vec::new();
            if in_stock && !entry.seen_in_stock {
                news.push("back_in_stock");
            }
            if price < entry.seen_price_cents && in_stock {
                news.push("price_drop");
            }
            if !news.is_empty() {
                let (email, name) = match self.store.get::<UserRecord>(&user)? {
                    Some(u) => (u.archived().email.to_string(), u.archived().name.to_string()),
                    None => continue,
                };
                for topic in news {
                    let event = new_event(
                        topic,
                        serde_json::json!({
                            "email": email,
                            "name": name,
                            "user_id": Id::from_bytes(user).to_string(),
                            "product_id": Id::from_bytes(product).to_string(),
                            "sku": entry.sku,
                            "title": p.title.as_str(),
                            "slug": p.slug.as_str(),
                            "price": Money::new(price, currency),
                            "previous_price": Money::new(entry.seen_price_cents, currency),
                        }),
                        now,
                    );
                    batch.put(&event.id, &event)?;
                    alerts += 1;
                }
            }
            // A price that rose or stock that ran out is remembered silently, so the next drop
            // or restock is news again.
            let mut updated = entry;
            updated.seen_price_cents = price;
            updated.seen_in_stock = in_stock;
            batch.put(&key, &updated)?;
        }
        batch.commit()?;
        Ok(alerts)
    }
}

/// The alert worker: a changelog consumer.
pub struct WishlistAlerts {
    wishlists: Arc<Wishlists>,
    cursor: Arc<PersistedCursor>,
}

impl WishlistAlerts {
    /// The worker, resuming from `cursor`.
    pub fn new(wishlists: Arc<Wishlists>, cursor: Arc<PersistedCursor>) -> WishlistAlerts {
        WishlistAlerts { wishlists, cursor }
    }
}

#[async_trait::async_trait]
impl Worker for WishlistAlerts {
    async fn try_execute(&self) -> Result<Progress, ServiceError> {
        let wishlists = self.wishlists.clone();
        let cursor = self.cursor.clone();
        blocking(move || wishlists.alert_step(&cursor)).await
    }
}
