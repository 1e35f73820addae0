//! Cart expiry: releasing the holds of carts idle past the hold lifetime, expiring carts idle
//! past theirs, deleting the tombstones they leave, and reminding owners of carts they left
//! (`cart_abandoned`), in deadline order from the expiry index. [`CartSweeper`] runs it as a worker; deadlines are read from the service's clock.

use std::sync::Arc;

use storefront_storage::cf::CF_CART_EXPIRY;
use storefront_storage::keys::{self, CartKey, ExpiryKind};
use storefront_storage::records::{CartStatus, UserRecord};

use super::commit::CartChange;
use super::Carts;
use crate::domain::Id;
use crate::service::events::outbox::new_event;
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
    /// Carts whose owner gets a `cart_abandoned` reminder.
    pub carts_abandoned: usize,
}

impl SweepReport {
    /// Carts handled in all.
    pub fn total(&self) -> usize {
        self.holds_released + self.carts_expired + self.tombstones_removed + self.carts_abandoned
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
        for (kind, key) in self.due(ExpiryKind::Abandon, now)? {
            let _guard = self.lock(&[key]);
            let cart = self.load(&key)?;
            let after = self.settings.abandon_after.map_or(i64::MAX, |d| d.as_millis() as i64);
            let Some((cart, user)) = cart
                .filter(|c| c.status == CartStatus::Active && !c.lines.is_empty())
                .filter(|c| c.updated_at_ms.saturating_add(after) <= now)
                .and_then(|c| c.user_id.map(|u| (c, u)))
            else {
                self.drop_index_entry(kind)?;
                continue;
            };
            let Some(owner) = self.store.get::<UserRecord>(&user)? else {
                self.drop_index_entry(kind)?;
                continue;
            };
            let owner = owner.archived();
            let lines = self.price_lines(&cart.lines)?;
            let event = new_event(
                "cart_abandoned",
                serde_json::json!({
                    "cart_id": Id::from_bytes(cart.id),
                    "user_id": Id::from_bytes(user),
                    "email": owner.email.as_str(),
                    "name": owner.name.as_str(),
                    "item_count": cart.lines.iter().map(|l| l.quantity).sum::<i64>(),
                    "items": lines.iter().map(|l| serde_json::json!({
                        "sku": l.sku, "title": l.title, "quantity": l.quantity,
                        "unit_price": { "amount": l.unit_price, "currency": self.settings.currency.to_string() },
                    })).collect::<Vec<_>>(),
                    "last_active_at": crate::service::view::rfc3339(cart.updated_at_ms),
                }),
                now,
            );
            let mut batch = self.store.batch();
            batch.delete(CF_CART_EXPIRY, &kind);
            batch.put(&event.id, &event)?;
            batch.commit()?;
            report.carts_abandoned += 1;
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
