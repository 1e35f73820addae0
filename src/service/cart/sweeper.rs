//! Cart expiry: releasing the holds of carts idle past the hold lifetime, expiring carts idle
//! past theirs, and deleting the tombstones they leave, in deadline order from the expiry
//! index. [`CartSweeper`] runs it as a worker; deadlines are read from the service's clock.

use std::sync::Arc;

use storefront_storage::cf::CF_CART_EXPIRY;
use storefront_storage::keys::{self, CartKey, ExpiryKind};
use storefront_storage::records::CartStatus;

use super::commit::CartChange;
use super::Carts;
use crate::service::{blocking, ServiceError};
use crate::worker::{Progress, Worker};

/// What one sweeper pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Carts whose holds expired and were released.
    pub holds_released: usize,
    /// Carts expired for inactivity.
    pub carts_expired: usize,
    /// Expired/merged cart tombstones deleted.
    pub tombstones_removed: usize,
}

impl SweepReport {
    /// Carts handled in all.
    pub fn total(&self) -> usize {
        self.holds_released + self.carts_expired + self.tombstones_removed
    }
}

impl Carts {
    /// Releases expired holds and expires inactive carts, at most `sweep_batch` of each kind.
    pub fn sweep_once(&self, now: i64) -> Result<SweepReport, ServiceError> {
        let mut report = SweepReport::default();
        for (kind, key) in self.due(ExpiryKind::Hold, now)? {
            let _guard = self.lock(&[key]);
            let Some(old) = self.load(&key)? else {
                self.drop_index_entry(kind)?;
                continue;
            };
            if old.holds_expire_at_ms == 0 || old.holds_expire_at_ms > now {
                self.drop_index_entry(kind)?;
                continue;
            }
            let mut new = (*old).clone();
            for line in &mut new.lines {
                line.held = 0;
            }
            new.holds_expire_at_ms = 0;
            self.commit(vec![CartChange {
                key,
                old: Some(old),
                new: Some(new),
            }])?;
            report.holds_released += 1;
        }
        for (kind, key) in self.due(ExpiryKind::Cart, now)? {
            let _guard = self.lock(&[key]);
            let Some(old) = self.load(&key)? else {
                self.drop_index_entry(kind)?;
                continue;
            };
            if old.expires_at_ms > now {
                self.drop_index_entry(kind)?;
                continue;
            }
            let new = if old.status == CartStatus::Active {
                report.carts_expired += 1;
                Some(self.retire(&old, CartStatus::Expired, now))
            } else {
                report.tombstones_removed += 1;
                None
            };
            self.commit(vec![CartChange {
                key,
                old: Some(old),
                new,
            }])?;
        }
        Ok(report)
    }

    /// Index entries of one kind due by `now`, oldest first.
    fn due(&self, kind: ExpiryKind, now: i64) -> Result<Vec<(Vec<u8>, CartKey)>, ServiceError> {
        let lower = [kind as u8];
        let upper = keys::cart_expiry(kind, now.saturating_add(1), &[0; 17]);
        let mut due = Vec::new();
        self.store
            .for_each_raw(CF_CART_EXPIRY, &lower, Some(&upper), |key, _| {
                if let Some((_, cart)) = keys::cart_expiry_parts(key) {
                    due.push((key.to_vec(), cart));
                }
                due.len() < self.settings.sweep_batch.max(1)
            })?;
        Ok(due)
    }

    fn drop_index_entry(&self, key: Vec<u8>) -> Result<(), ServiceError> {
        let mut batch = self.store.batch();
        batch.delete(CF_CART_EXPIRY, &key);
        batch.commit()?;
        Ok(())
    }
}

/// The sweeper as a worker: one batch per step, the next at once while batches come back
/// full.
pub struct CartSweeper {
    carts: Arc<Carts>,
}

impl CartSweeper {
    /// The sweeper of `carts`.
    pub fn new(carts: Arc<Carts>) -> CartSweeper {
        CartSweeper { carts }
    }
}

#[async_trait::async_trait]
impl Worker for CartSweeper {
    async fn try_execute(&self) -> Result<Progress, ServiceError> {
        let carts = self.carts.clone();
        let report = blocking(move || carts.sweep_once(carts.clock.now_ms())).await?;
        if report.total() == 0 {
            return Ok(Progress::Idle);
        }
        tracing::info!(?report, "cart sweeper");
        Ok(if report.total() >= self.carts.settings.sweep_batch {
            Progress::Worked
        } else {
            Progress::Idle
        })
    }
}
