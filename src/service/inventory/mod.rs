//! Inventory: every change to stock, and the signals that keep listings, search and the CDN in
//! step with availability.
//!
//! - [`ledger`]: the live lock-free counters (on-hand and reserved per SKU) that never
//!   oversell;
//! - this module: setting and adjusting on-hand stock, the stock record of a new SKU, low-stock
//!   events, who holds a SKU, and the stock-signal worker.
//!
//! Carts and checkout take and give back units through the ledger and write their holds in
//! their own batches; when availability crosses zero they leave a `stock_dirty/<sku>` marker in
//! that same batch and wake the [`StockSignals`] worker, which rewrites the product's listing
//! entries and records a changelog entry (so search and the CDN follow). A crash between the
//! two is caught when the worker's first step finds the marker.

pub mod holds;
pub mod ledger;

use std::sync::{Arc, Mutex, MutexGuard};

use storefront_storage::cf::{CF_META, CF_RESERVATIONS};
use storefront_storage::keys;
use storefront_storage::listing;
use storefront_storage::records::{
    CartRecord, ChangeOp, EntityKind, InventoryRecord, OutboxRecord, ProductRecord, ReservationRecord,
};
use storefront_storage::{Owned, Store};

pub use holds::{HoldChanges, Restock, Sale, Taken};
pub use ledger::{StockChange, StockError, StockLedger, StockLevel};

use super::auth::Actor;
use super::catalog::{check_version, tags, Catalog, Invalidation};
use super::view::{rfc3339, HoldView, InventoryView};
use super::{blocking, ServiceError};
use crate::domain::catalog::{AdjustInput, InventoryInput, MAX_STOCK};
use crate::domain::error::DomainError;
use crate::domain::{FieldErrors, Id};
use crate::worker::{Progress, Wake, Worker};

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

/// The inventory service.
pub struct Inventory {
    store: Store,
    catalog: Arc<Catalog>,
    stock: Arc<StockLedger>,
    signals: Wake,
    /// Striped by SKU: every write of a stock record holds its SKU's stripe, so a sale and a
    /// stock change never interleave their read-modify-writes.
    stripes: Box<[Mutex<()>]>,
}

const STRIPES: usize = 256;

/// Stock signals handled per worker step.
const SIGNAL_BATCH: usize = 512;

impl Inventory {
    /// Builds the service; `signals` wakes the [`StockSignals`] worker.
    pub fn new(store: Store, catalog: Arc<Catalog>, stock: Arc<StockLedger>, signals: Wake) -> Inventory {
        Inventory {
            store,
            catalog,
            stock,
            signals,
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Locks the stripes of `skus`, in a fixed order so two lockers never deadlock.
    pub(crate) fn lock_skus(&self, skus: &[&str]) -> Vec<MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = skus
            .iter()
            .map(|s| (xxhash_rust::xxh3::xxh3_64(s.as_bytes()) % STRIPES as u64) as usize)
            .collect();
        stripes.sort_unstable();
        stripes.dedup();
        stripes
            .into_iter()
            .map(|i| self.stripes[i].lock().unwrap_or_else(|p| p.into_inner()))
            .collect()
    }

    /// Returns the live counters.
    pub fn ledger(&self) -> &Arc<StockLedger> {
        &self.stock
    }

    /// Says that a batch just left stock-signal markers behind.
    pub fn signal(&self) {
        self.signals.wake();
    }

    /// Drops the cached pages of products whose counts changed.
    pub fn forget_product_pages(&self, products: &[[u8; 16]]) {
        self.catalog.forget_product_pages(products);
    }

    /// Returns stock of a SKU.
    /// The stock of a SKU. A SKU of a product that is not published exists only for those who
    /// may manage it (admins, its seller): to anyone else it is 404, like the product.
    pub async fn get(self: &Arc<Self>, actor: Actor, sku: String) -> Result<InventoryView, ServiceError> {
        let this = self.clone();
        blocking(move || {
            let record = this
                .store
                .get::<InventoryRecord>(keys::sku(&sku))?
                .ok_or(ServiceError::NotFound { kind: "sku" })?
                .to_native();
            let product = this
                .store
                .get::<ProductRecord>(&record.product_id)?
                .map(|p| p.to_native());
            let public = product
                .as_ref()
                .is_some_and(|p| p.status == storefront_storage::records::ProductStatus::Published);
            if !public
                && actor
                    .may_manage_catalog(product.as_ref().and_then(|p| p.seller_id).map(Id::from_bytes))
                    .is_err()
            {
                return Err(ServiceError::NotFound { kind: "sku" });
            }
            Ok(inventory_view(&record, &this.stock))
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
        let in_range = |n: i64| (0..=MAX_STOCK).contains(&n);
        let range_message = || format!("must be between 0 and {MAX_STOCK}");
        match change.target {
            StockTarget::Set(None) => errors.add("on_hand", "required", "must be given"),
            StockTarget::Set(Some(n)) if !in_range(n) => errors.add("on_hand", "out_of_range", range_message()),
            StockTarget::Adjust(None) => errors.add("delta", "required", "must be given"),
            StockTarget::Adjust(Some(d)) if d.abs() > MAX_STOCK => errors.add(
                "delta",
                "out_of_range",
                format!("must be between -{MAX_STOCK} and {MAX_STOCK}"),
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
            let _stripe = this.lock_skus(&[&sku]);
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
                        StockError::BelowReserved { reserved } => {
                            DomainError::BelowReserved { on_hand, reserved }.into()
                        }
                        _ => ServiceError::NotFound { kind: "sku" },
                    })?;
                    lowered = -delta;
                }
                let before = match &product {
                    Some(p) => this.catalog.listing_facts(txn, p)?,
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
                let mut change_tags = vec![tags::sku(&sku)];
                if let Some(p) = &product {
                    let after = this.catalog.listing_facts(txn, p)?;
                    if before != after {
                        txn.update_listing(before.as_ref(), after.as_ref());
                        // In or out of stock: filtered listings and searches change.
                        change_tags.push(tags::SEARCH.to_owned());
                        for f in before.iter().chain(after.iter()) {
                            inv.scopes.extend(listing::scopes_of(f));
                            change_tags.extend(tags::lists(f));
                        }
                    }
                    inv.product(p);
                    change_tags.push(tags::product_id(Id::from_bytes(p.id)));
                }
                txn.record_change(EntityKind::Inventory, ChangeOp::Upsert, keys::sku(&sku), change_tags);
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
                    .map_err(|e| ServiceError::internal(format!("stock counter refused a raise: {e:?}")))?;
            }
            this.stock.set_low_stock_threshold(&sku, record.low_stock_threshold);
            this.catalog.apply(inv)?;
            Ok(inventory_view(&record, &this.stock))
        })
        .await
    }

    /// Brings listings, the changelog (and so search and the CDN) and product pages up to date
    /// for SKUs whose availability crossed zero through holds, and clears their markers.
    pub fn refresh_stock(&self, skus: &[String]) -> Result<(), ServiceError> {
        let inv = self.store.transact(|txn| {
            let mut inv = Invalidation::default();
            for sku in skus {
                txn.delete(CF_META, &keys::meta_stock_dirty(sku));
                let Some(product_id) = self.stock.product_of(sku) else {
                    continue;
                };
                let mut change_tags = vec![tags::sku(sku)];
                if let Some(p) = txn.get::<ProductRecord>(&product_id)?.map(|p| p.to_native()) {
                    if let Some(now) = self.catalog.listing_facts(txn, &p)? {
                        // The in-stock flag lives in the entry values; rewriting them in place
                        // leaves keys and counts unchanged.
                        txn.update_listing(Some(&now), Some(&now));
                        inv.scopes.extend(listing::scopes_of(&now));
                        change_tags.extend(tags::lists(&now));
                        change_tags.push(tags::SEARCH.to_owned());
                    }
                    inv.product(&p);
                    change_tags.push(tags::product_id(Id::from_bytes(p.id)));
                }
                txn.record_change(EntityKind::Inventory, ChangeOp::Upsert, keys::sku(sku), change_tags);
            }
            Ok::<_, ServiceError>(inv)
        })?;
        self.catalog.apply(inv)
    }

    /// SKUs with a stock-signal marker, at most `limit`.
    pub fn pending_stock_signals(&self, limit: usize) -> Result<Vec<String>, ServiceError> {
        let prefix = keys::META_STOCK_DIRTY_PREFIX;
        let upper = keys::prefix_successor(prefix);
        let mut skus = Vec::new();
        self.store.for_each_raw(CF_META, prefix, upper.as_deref(), |key, _| {
            skus.push(String::from_utf8_lossy(&key[prefix.len()..]).into_owned());
            skus.len() < limit
        })?;
        Ok(skus)
    }

    /// Every hold on a SKU with the cart that holds it (admin view of "who holds my stock").
    pub async fn holds_of(self: &Arc<Self>, actor: Actor, sku: String) -> Result<Vec<HoldView>, ServiceError> {
        actor.require_admin()?;
        let this = self.clone();
        blocking(move || {
            if this.stock.level(&sku).is_none() {
                return Err(ServiceError::NotFound { kind: "sku" });
            }
            let prefix = keys::reservation(&sku, &[]);
            let upper = keys::prefix_successor(&prefix);
            let mut raw = Vec::new();
            this.store
                .for_each_raw(CF_RESERVATIONS, &prefix, upper.as_deref(), |key, value| {
                    raw.push((key.to_vec(), value.to_vec()));
                    true
                })?;
            let mut holds = Vec::with_capacity(raw.len());
            for (key, value) in raw {
                let record = Owned::<ReservationRecord>::from_slice(&key, &value)?;
                let holder = keys::reservation_parts(&key).map(|(_, h)| h).unwrap_or_default();
                let cart = this.store.get::<CartRecord>(holder)?;
                holds.push(HoldView {
                    cart_id: cart.map(|c| Id::from_bytes(c.archived().id).to_string()),
                    quantity: record.archived().quantity.to_native(),
                    updated_at: rfc3339(record.archived().updated_at_ms.to_native()),
                });
            }
            Ok(holds)
        })
        .await
    }
}

/// The stock record of a new SKU.
pub fn new_record(sku: &str, product: Id, on_hand: i64, now_ms: i64) -> InventoryRecord {
    InventoryRecord {
        sku: sku.to_owned(),
        product_id: product.to_bytes(),
        version: 1,
        on_hand,
        low_stock_threshold: 0,
        updated_at_ms: now_ms,
    }
}

/// A `low_stock` outbox event for a SKU whose availability fell to `available`.
pub fn low_stock_event(inventory: &InventoryRecord, available: i64, now_ms: i64) -> OutboxRecord {
    OutboxRecord {
        id: Id::new().to_bytes(),
        topic: "low_stock".into(),
        payload: serde_json::json!({
            "sku": inventory.sku,
            "product_id": Id::from_bytes(inventory.product_id).to_string(),
            "available": available,
            "threshold": inventory.low_stock_threshold,
        })
        .to_string(),
        created_at_ms: now_ms,
        attempts: 0,
        next_attempt_at_ms: now_ms,
    }
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

/// Applies stock-signal markers: a batch per step, woken by the batches that leave them and
/// run once at start for the markers a crash left.
pub struct StockSignals {
    inventory: Arc<Inventory>,
}

impl StockSignals {
    /// The worker over `inventory`.
    pub fn new(inventory: Arc<Inventory>) -> StockSignals {
        StockSignals { inventory }
    }
}

#[async_trait::async_trait]
impl Worker for StockSignals {
    async fn try_execute(&self) -> Result<Progress, ServiceError> {
        let inventory = self.inventory.clone();
        blocking(move || {
            let skus = inventory.pending_stock_signals(SIGNAL_BATCH)?;
            if skus.is_empty() {
                return Ok(Progress::Idle);
            }
            inventory.refresh_stock(&skus)?;
            Ok(Progress::Worked)
        })
        .await
    }
}
