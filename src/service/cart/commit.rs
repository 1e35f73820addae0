//! The one batch that writes carts: cart records, their stock holds, their expiry-index
//! entries, stock-signal markers and `low_stock` events, all or nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use storefront_storage::cf::{CF_CARTS, CF_CART_EXPIRY, CF_META, CF_RESERVATIONS};
use storefront_storage::keys::{self, CartKey, ExpiryKind};
use storefront_storage::records::{CartRecord, InventoryRecord, ReservationRecord};

use super::{CartSettings, Carts};
use crate::domain::error::DomainError;
use crate::service::inventory::{self, StockError};
use crate::service::ServiceError;

/// One cart record change inside a commit: the record before (if any) and after (`None`
/// deletes it).
pub(super) struct CartChange {
    pub(super) key: CartKey,
    pub(super) old: Option<Arc<CartRecord>>,
    pub(super) new: Option<CartRecord>,
}

impl Carts {
    /// Commits cart changes with their holds in one batch. Callers hold the carts' stripes.
    pub(super) fn commit(&self, changes: Vec<CartChange>) -> Result<(), ServiceError> {
        let now = self.clock.now_ms();
        // Old and new hold per (SKU, holder), and the net change per SKU.
        let mut holds: BTreeMap<(String, CartKey), (i64, i64)> = BTreeMap::new();
        for change in &changes {
            for line in change.old.iter().flat_map(|c| c.lines.iter()) {
                holds.entry((line.sku.clone(), change.key)).or_default().0 += line.held;
            }
            for line in change.new.iter().flat_map(|c| c.lines.iter()) {
                holds.entry((line.sku.clone(), change.key)).or_default().1 += line.held;
            }
        }
        let mut net: BTreeMap<&str, i64> = BTreeMap::new();
        for ((sku, _), (old, new)) in &holds {
            *net.entry(sku.as_str()).or_default() += new - old;
        }

        // Take units first: memory never promises more than storage will hold.
        let mut taken: Vec<(&str, i64)> = Vec::new();
        let mut signals: Vec<String> = Vec::new();
        let mut events = Vec::new();
        for (sku, delta) in net.iter().filter(|(_, d)| **d > 0) {
            match self.stock.reserve(sku, *delta) {
                Ok(change) => {
                    taken.push((sku, *delta));
                    if change.flipped() {
                        signals.push(sku.to_string());
                    }
                    let threshold = self.stock.low_stock_threshold(sku);
                    if change.crossed_low(threshold) {
                        events.push((sku.to_string(), change.after.available()));
                    }
                }
                Err(e) => {
                    self.give_back(&taken);
                    let available = match e {
                        StockError::Insufficient { available } => available,
                        _ => 0,
                    };
                    return Err(DomainError::InsufficientStock {
                        sku: sku.to_string(),
                        requested: *delta,
                        available: available.max(0),
                    }
                    .into());
                }
            }
        }
        // A release from zero brings the SKU back in stock.
        for (sku, _) in net.iter().filter(|(_, d)| **d < 0) {
            if self.stock.available(sku) <= 0 {
                signals.push(sku.to_string());
            }
        }

        let result = (|| -> Result<(), ServiceError> {
            let mut batch = self.store.batch();
            for change in &changes {
                let index = |c: &CartRecord| index_keys(&change.key, c, &self.buckets);
                let old_index = change.old.as_deref().map(index).unwrap_or_default();
                let new_index = change.new.as_ref().map(index).unwrap_or_default();
                for k in old_index.iter().filter(|k| !new_index.contains(k)) {
                    batch.delete(CF_CART_EXPIRY, k);
                }
                for k in new_index.iter().filter(|k| !old_index.contains(k)) {
                    batch.put_raw(CF_CART_EXPIRY, k, &[]);
                }
                match &change.new {
                    Some(record) => batch.put(&change.key, record)?,
                    None => batch.delete(CF_CARTS, &change.key),
                }
            }
            for ((sku, holder), (old, new)) in &holds {
                if old == new {
                    continue;
                }
                let key = keys::reservation(sku, holder);
                if *new > 0 {
                    batch.put(
                        &key,
                        &ReservationRecord {
                            quantity: *new,
                            updated_at_ms: now,
                        },
                    )?;
                } else {
                    batch.delete(CF_RESERVATIONS, &key);
                }
            }
            for sku in &signals {
                batch.put_raw(CF_META, &keys::meta_stock_dirty(sku), &[]);
            }
            for (sku, available) in &events {
                if let Some(inv) = self.store.get::<InventoryRecord>(keys::sku(sku))? {
                    let event = inventory::low_stock_event(&inv.to_native(), *available, now);
                    batch.put(&event.id, &event)?;
                }
            }
            batch.commit()?;
            Ok(())
        })();
        if let Err(e) = result {
            self.give_back(&taken);
            return Err(e);
        }

        // Durable: now return released units and refresh caches. A release that brings a SKU
        // back although the check above saw stock (a concurrent change in between) leaves its
        // marker in a batch of its own.
        let mut late = Vec::new();
        for (sku, delta) in net.iter().filter(|(_, d)| **d < 0) {
            if let Ok(change) = self.stock.release(sku, -delta) {
                if change.flipped() && !signals.iter().any(|s| s == sku) {
                    late.push(sku.to_string());
                }
            }
        }
        if !late.is_empty() {
            let mut batch = self.store.batch();
            for sku in &late {
                batch.put_raw(CF_META, &keys::meta_stock_dirty(sku), &[]);
            }
            batch.commit()?;
            signals.extend(late);
        }
        for change in changes {
            match change.new {
                Some(record) => self.cache.insert(change.key, Arc::new(record)),
                None => self.cache.invalidate(&change.key),
            }
        }
        let products: Vec<[u8; 16]> = net
            .iter()
            .filter(|(_, d)| **d != 0)
            .filter_map(|(sku, _)| self.stock.product_of(sku))
            .collect();
        if !products.is_empty() {
            self.inventory.forget_product_pages(&products);
        }
        if !signals.is_empty() {
            self.inventory.signal();
        }
        Ok(())
    }

    fn give_back(&self, taken: &[(&str, i64)]) {
        for (sku, delta) in taken {
            let _ = self.stock.release(sku, *delta);
        }
    }
}

/// The expiry-index entries a cart record needs.
///
/// PERF: deadlines are rounded *up* to a bucket (1/32 of the lifetime, 1 s to 60 s), so the
/// writes of an active shopper within one bucket leave the index untouched instead of deleting
/// and re-inserting two keys each time (memtable inserts were the largest cost of a cart
/// write). The sweeper reaches an entry no earlier than the exact deadline in the record, which
/// it re-checks; a cart lives at most one bucket longer than its lifetime.
fn index_keys(key: &CartKey, cart: &CartRecord, buckets: &ExpiryBuckets) -> Vec<[u8; 26]> {
    let mut entries = vec![keys::cart_expiry(
        ExpiryKind::Cart,
        round_up(cart.expires_at_ms, buckets.cart_ms),
        key,
    )];
    if cart.holds_expire_at_ms > 0 {
        entries.push(keys::cart_expiry(
            ExpiryKind::Hold,
            round_up(cart.holds_expire_at_ms, buckets.hold_ms),
            key,
        ));
    }
    entries
}

/// Index granularity of cart and hold deadlines.
#[derive(Debug, Clone, Copy)]
pub(super) struct ExpiryBuckets {
    cart_ms: i64,
    hold_ms: i64,
}

impl ExpiryBuckets {
    pub(super) fn new(settings: &CartSettings) -> ExpiryBuckets {
        let bucket = |ttl: Duration| (ttl.as_millis() as i64 / 32).clamp(1_000, 60_000);
        ExpiryBuckets {
            cart_ms: bucket(settings.guest_ttl.min(settings.user_ttl)),
            hold_ms: bucket(settings.hold_ttl),
        }
    }
}

fn round_up(at_ms: i64, bucket_ms: i64) -> i64 {
    at_ms.div_euclid(bucket_ms).saturating_add(1).saturating_mul(bucket_ms)
}
