//! The one batch that writes carts: cart records, their stock holds (through the inventory's
//! hold protocol), their expiry-index entries, and whatever the caller adds (checkout's order),
//! all or nothing.

use std::sync::Arc;
use std::time::Duration;

use storefront_storage::cf::{CF_CARTS, CF_CART_EXPIRY};
use storefront_storage::keys::{self, CartKey, ExpiryKind};
use storefront_storage::records::{CartRecord, CartStatus};
use storefront_storage::Batch;

use super::{CartSettings, Carts};
use crate::service::inventory::HoldChanges;
use crate::service::ServiceError;

/// One cart record change inside a commit: the record before (if any) and after (`None`
/// deletes it).
pub(crate) struct CartChange {
    pub(crate) key: CartKey,
    pub(crate) old: Option<Arc<CartRecord>>,
    pub(crate) new: Option<CartRecord>,
}

impl Carts {
    /// Commits cart changes with their holds in one batch. Callers hold the carts' stripes.
    pub(super) fn commit(&self, changes: Vec<CartChange>) -> Result<(), ServiceError> {
        self.commit_with(changes, HoldChanges::new(), |_| Ok(()))
    }

    /// Commits cart changes, their holds and `extra` holds of other holders (an order taking
    /// over the cart's holds) in one batch, with whatever `stage` adds to it. Callers hold the
    /// carts' stripes.
    pub(crate) fn commit_with<T>(
        &self,
        changes: Vec<CartChange>,
        mut holds: HoldChanges,
        stage: impl FnOnce(&mut Batch<'_>) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        let now = self.clock.now_ms();
        for change in &changes {
            for line in change.old.iter().flat_map(|c| c.lines.iter()) {
                holds.add(&line.sku, &change.key, line.held, 0);
            }
            for line in change.new.iter().flat_map(|c| c.lines.iter()) {
                holds.add(&line.sku, &change.key, 0, line.held);
            }
        }
        // Take units first: memory never promises more than storage will hold.
        let taken = self.inventory.take(&holds)?;
        let result = (|| -> Result<T, ServiceError> {
            let mut batch = self.store.batch();
            for change in &changes {
                self.stage_change(&mut batch, change)?;
            }
            self.inventory.stage_holds(&mut batch, &holds, &taken, now)?;
            let out = stage(&mut batch)?;
            batch.commit()?;
            Ok(out)
        })();
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                taken.give_back();
                return Err(e);
            }
        };
        for change in changes {
            self.forget_page(&change.key);
            match change.new {
                Some(record) => self.cache.insert(change.key, Arc::new(record)),
                None => self.cache.invalidate(&change.key),
            }
        }
        self.inventory.settle(&holds, taken)?;
        Ok(out)
    }

    /// Stages a cart record and its expiry-index entries.
    fn stage_change(&self, batch: &mut Batch<'_>, change: &CartChange) -> Result<(), ServiceError> {
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
        Ok(())
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
    // Only user carts have an email to remind; the entry moves with every change the shopper
    // makes, so a cart is reminded once per spell of inactivity.
    if let (Some(after), Some(_), CartStatus::Active, false) = (
        buckets.abandon_after_ms,
        cart.user_id,
        cart.status,
        cart.lines.is_empty(),
    ) {
        entries.push(keys::cart_expiry(
            ExpiryKind::Abandon,
            round_up(cart.updated_at_ms + after, buckets.cart_ms),
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
    abandon_after_ms: Option<i64>,
}

impl ExpiryBuckets {
    pub(super) fn new(settings: &CartSettings) -> ExpiryBuckets {
        let bucket = |ttl: Duration| (ttl.as_millis() as i64 / 32).clamp(1_000, 60_000);
        ExpiryBuckets {
            cart_ms: bucket(settings.guest_ttl.min(settings.user_ttl)),
            hold_ms: bucket(settings.hold_ttl),
            abandon_after_ms: settings.abandon_after.map(|d| d.as_millis() as i64),
        }
    }
}

fn round_up(at_ms: i64, bucket_ms: i64) -> i64 {
    at_ms.div_euclid(bucket_ms).saturating_add(1).saturating_mul(bucket_ms)
}
