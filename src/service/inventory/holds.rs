//! Holds and sales: how carts and orders take stock, give it back and sell it, all through
//! one protocol that keeps the live counters and storage in step.
//!
//! A change to holds is described as [`HoldChanges`] (old and new quantity per SKU and
//! holder). [`Inventory::take`] applies what it adds to the live counters before the batch
//! (all or nothing), [`Inventory::stage_holds`] writes the hold records, stock-signal markers
//! and low-stock events into the caller's batch, and after the batch is durable
//! [`Inventory::settle`] returns what it released; if the batch fails, [`Taken::give_back`].
//! A sale ([`Inventory::sell`]) lowers on-hand and reserved together, so availability does not
//! move, and stages the new on-hand counts; it runs under the SKUs' stripe locks, which every
//! on-hand write takes, so two writers of one SKU's stock record never interleave.

use std::collections::BTreeMap;
use std::sync::MutexGuard;

use storefront_storage::cf::{CF_META, CF_RESERVATIONS};
use storefront_storage::keys;
use storefront_storage::records::{InventoryRecord, ReservationRecord};
use storefront_storage::Batch;

use super::{low_stock_event, Inventory, StockError};
use crate::domain::error::DomainError;
use crate::service::ServiceError;

/// Old and new held quantity per (SKU, holder).
#[derive(Debug, Default, Clone)]
pub struct HoldChanges {
    holds: BTreeMap<(String, Vec<u8>), (i64, i64)>,
}

impl HoldChanges {
    /// No changes.
    pub fn new() -> HoldChanges {
        HoldChanges::default()
    }

    /// Adds `old → new` units held by `holder` on `sku` (summed with earlier calls).
    pub fn add(&mut self, sku: &str, holder: &[u8], old: i64, new: i64) {
        let entry = self.holds.entry((sku.to_owned(), holder.to_vec())).or_default();
        entry.0 += old;
        entry.1 += new;
    }

    /// The net change per SKU.
    fn net(&self) -> BTreeMap<&str, i64> {
        let mut net: BTreeMap<&str, i64> = BTreeMap::new();
        for ((sku, _), (old, new)) in &self.holds {
            *net.entry(sku.as_str()).or_default() += new - old;
        }
        net
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.holds.values().all(|(old, new)| old == new)
    }
}

/// What [`Inventory::take`] took from the live counters, and what the batch must record.
#[must_use = "give the units back if the batch fails"]
pub struct Taken<'a> {
    inventory: &'a Inventory,
    taken: Vec<(String, i64)>,
    signals: Vec<String>,
    low_stock: Vec<(String, i64)>,
}

impl Taken<'_> {
    /// The batch failed: returns the units taken.
    pub fn give_back(self) {
        for (sku, delta) in &self.taken {
            let _ = self.inventory.stock.release(sku, *delta);
        }
    }
}

/// A sale prepared by [`Inventory::sell`]: the counters are lowered, the stock records staged.
/// Dropped without [`Sale::done`] (the batch failed), it puts the units back.
#[must_use = "call done() once the batch is durable"]
pub struct Sale<'a> {
    inventory: &'a Inventory,
    sold: Vec<(String, i64)>,
    committed: bool,
    _stripes: Vec<MutexGuard<'a, ()>>,
}

impl Drop for Sale<'_> {
    fn drop(&mut self) {
        if !self.committed {
            for (sku, quantity) in &self.sold {
                let _ = self.inventory.stock.unsell(sku, *quantity);
            }
        }
    }
}

impl Sale<'_> {
    /// The batch is durable; drops the product pages that show the old counts.
    pub fn done(mut self) {
        self.committed = true;
        let products: Vec<[u8; 16]> = self
            .sold
            .iter()
            .filter_map(|(sku, _)| self.inventory.stock.product_of(sku))
            .collect();
        self.inventory.forget_product_pages(&products);
    }
}

impl Inventory {
    /// Takes the units `changes` adds from the live counters, all or nothing. Every SKU that
    /// falls short is reported (`InsufficientStock` for the first; `shortfalls` lists all).
    pub fn take(&self, changes: &HoldChanges) -> Result<Taken<'_>, ServiceError> {
        let net = changes.net();
        let mut taken = Taken {
            inventory: self,
            taken: Vec::new(),
            signals: Vec::new(),
            low_stock: Vec::new(),
        };
        for (sku, delta) in net.iter().filter(|(_, d)| **d > 0) {
            match self.stock.reserve(sku, *delta) {
                Ok(change) => {
                    taken.taken.push((sku.to_string(), *delta));
                    if change.flipped() {
                        taken.signals.push(sku.to_string());
                    }
                    if change.crossed_low(self.stock.low_stock_threshold(sku)) {
                        taken.low_stock.push((sku.to_string(), change.after.available()));
                    }
                }
                Err(e) => {
                    taken.give_back();
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
                taken.signals.push(sku.to_string());
            }
        }
        Ok(taken)
    }

    /// Stages the hold records, stock-signal markers and low-stock events of `changes`.
    pub fn stage_holds(
        &self,
        batch: &mut Batch<'_>,
        changes: &HoldChanges,
        taken: &Taken<'_>,
        now_ms: i64,
    ) -> Result<(), ServiceError> {
        for ((sku, holder), (old, new)) in &changes.holds {
            if old == new {
                continue;
            }
            let key = keys::reservation(sku, holder);
            if *new > 0 {
                batch.put(
                    &key,
                    &ReservationRecord {
                        quantity: *new,
                        updated_at_ms: now_ms,
                    },
                )?;
            } else {
                batch.delete(CF_RESERVATIONS, &key);
            }
        }
        for sku in &taken.signals {
            batch.put_raw(CF_META, &keys::meta_stock_dirty(sku), &[]);
        }
        for (sku, available) in &taken.low_stock {
            if let Some(inv) = self.store.get::<InventoryRecord>(keys::sku(sku))? {
                let event = low_stock_event(&inv.to_native(), *available, now_ms);
                batch.put(&event.id, &event)?;
            }
        }
        Ok(())
    }

    /// After the batch is durable: returns the released units to the counters, records the
    /// flips a concurrent change caused in between, drops stale product pages and wakes the
    /// stock-signal worker.
    pub fn settle(&self, changes: &HoldChanges, taken: Taken<'_>) -> Result<(), ServiceError> {
        let net = changes.net();
        let mut late = Vec::new();
        for (sku, delta) in net.iter().filter(|(_, d)| **d < 0) {
            if let Ok(change) = self.stock.release(sku, -delta) {
                if change.flipped() && !taken.signals.iter().any(|s| s == sku) {
                    late.push(sku.to_string());
                }
            }
        }
        if !late.is_empty() {
            // A release that brings a SKU back although `take` saw stock leaves its marker in a
            // batch of its own.
            let mut batch = self.store.batch();
            for sku in &late {
                batch.put_raw(CF_META, &keys::meta_stock_dirty(sku), &[]);
            }
            batch.commit()?;
        }
        let products: Vec<[u8; 16]> = net
            .iter()
            .filter(|(_, d)| **d != 0)
            .filter_map(|(sku, _)| self.stock.product_of(sku))
            .collect();
        if !products.is_empty() {
            self.forget_product_pages(&products);
        }
        if !taken.signals.is_empty() || !late.is_empty() {
            self.signal();
        }
        Ok(())
    }

    /// Sells `lines` (sku, quantity, holder) out of their holds: lowers on-hand and reserved
    /// by the quantity in one step per SKU, and stages the stock records with the new on-hand
    /// counts and the deletion of the holds. Holds the SKUs' stripes until the sale is done or
    /// undone.
    pub fn sell(
        &self,
        batch: &mut Batch<'_>,
        lines: &[(String, i64, Vec<u8>)],
        now_ms: i64,
    ) -> Result<Sale<'_>, ServiceError> {
        let skus: Vec<&str> = lines.iter().map(|(s, _, _)| s.as_str()).collect();
        let mut sale = Sale {
            inventory: self,
            sold: Vec::new(),
            committed: false,
            _stripes: self.lock_skus(&skus),
        };
        let mut per_sku: BTreeMap<&str, i64> = BTreeMap::new();
        for (sku, quantity, holder) in lines {
            *per_sku.entry(sku.as_str()).or_default() += quantity;
            batch.delete(CF_RESERVATIONS, &keys::reservation(sku, holder));
        }
        for (sku, quantity) in per_sku {
            let Some(record) = self.store.get::<InventoryRecord>(keys::sku(sku))? else {
                // The SKU was deleted since: its hold dies with the order's lines.
                continue;
            };
            if let Err(e) = self.stock.sell(sku, quantity) {
                return Err(ServiceError::internal(format!(
                    "stock counter refused a sale of {sku}: {e:?}"
                )));
            }
            sale.sold.push((sku.to_owned(), quantity));
            let mut record = record.to_native();
            record.on_hand = (record.on_hand - quantity).max(0);
            record.version += 1;
            record.updated_at_ms = now_ms;
            batch.put(keys::sku(sku), &record)?;
        }
        Ok(sale)
    }

    /// Puts `lines` (sku, quantity) back on hand (a refund or a cancellation that restocks),
    /// staging the stock records; the counters move once `commit` is called after the batch.
    pub fn stage_restock(
        &self,
        batch: &mut Batch<'_>,
        lines: &[(String, i64)],
        now_ms: i64,
    ) -> Result<Restock<'_>, ServiceError> {
        let skus: Vec<&str> = lines.iter().map(|(s, _)| s.as_str()).collect();
        let restock = Restock {
            inventory: self,
            lines: lines.to_vec(),
            _stripes: self.lock_skus(&skus),
        };
        for (sku, quantity) in lines {
            if let Some(record) = self.store.get::<InventoryRecord>(keys::sku(sku))? {
                let mut record = record.to_native();
                record.on_hand += quantity;
                record.version += 1;
                record.updated_at_ms = now_ms;
                batch.put(keys::sku(sku), &record)?;
            }
        }
        Ok(restock)
    }
}

/// A restock staged by [`Inventory::stage_restock`].
#[must_use = "commit the restock once the batch is durable"]
pub struct Restock<'a> {
    inventory: &'a Inventory,
    lines: Vec<(String, i64)>,
    _stripes: Vec<MutexGuard<'a, ()>>,
}

impl Restock<'_> {
    /// The batch is durable: raises the live counters (raising after the write keeps memory
    /// from promising more than storage holds) and signals SKUs back in stock.
    pub fn commit(self) -> Result<(), ServiceError> {
        let mut flipped = Vec::new();
        for (sku, quantity) in &self.lines {
            if let Ok(change) = self.inventory.stock.adjust_on_hand(sku, *quantity) {
                if change.flipped() {
                    flipped.push(sku.clone());
                }
            }
        }
        if !flipped.is_empty() {
            let mut batch = self.inventory.store.batch();
            for sku in &flipped {
                batch.put_raw(CF_META, &keys::meta_stock_dirty(sku), &[]);
            }
            batch.commit()?;
            self.inventory.signal();
        }
        let products: Vec<[u8; 16]> = self
            .lines
            .iter()
            .filter_map(|(sku, _)| self.inventory.stock.product_of(sku))
            .collect();
        self.inventory.forget_product_pages(&products);
        Ok(())
    }
}
