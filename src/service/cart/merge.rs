//! Merging a guest cart into the user's cart at login: one batch moves the lines and their
//! holds and retires the guest cart, under both carts' locks.

use std::sync::Arc;

use storefront_storage::keys;
use storefront_storage::records::{CartRecord, CartStatus};

use super::commit::CartChange;
use super::{guest_key, is_live, new_cart, CartOwner, Carts};
use crate::domain::cart::{merged_quantity, MergeStrategy, ReserveOn};
use crate::domain::Id;
use crate::service::{blocking, ServiceError};

impl Carts {
    /// Merges a guest cart into the user's cart (at login), atomically: one batch moves the
    /// lines and their holds and retires the guest cart. Returns whether anything was merged;
    /// an unknown, expired or empty guest cart merges nothing.
    pub async fn merge_guest(self: &Arc<Self>, token: String, user: Id) -> Result<bool, ServiceError> {
        let this = self.clone();
        blocking(move || this.merge_sync(&token, user)).await
    }

    fn merge_sync(&self, token: &str, user: Id) -> Result<bool, ServiceError> {
        let Ok(guest_key) = guest_key(token) else {
            return Ok(false);
        };
        let user_key = keys::user_cart(&user.to_bytes());
        let _guard = self.lock(&[guest_key, user_key]);
        let now = self.clock.now_ms();
        let Some(guest) = self.load(&guest_key)?.filter(|g| is_live(g, now)) else {
            return Ok(false);
        };
        if guest.lines.is_empty() {
            return Ok(false);
        }
        let user_old = self.load(&user_key)?;
        let user_live = user_old.clone().filter(|c| is_live(c, now));
        let mut cart = user_live
            .as_deref()
            .cloned()
            .unwrap_or_else(|| new_cart(Some(user), now));
        // Held units of both carts count as available to the merged line.
        let held_in = |c: Option<&CartRecord>, sku: &str| {
            c.and_then(|c| c.lines.iter().find(|l| l.sku == sku))
                .map(|l| l.held)
                .unwrap_or(0)
        };
        let limit = |sku: &str| {
            let mut limit = self.stock.available(sku);
            if self.settings.reserve_on == ReserveOn::Cart {
                limit += held_in(user_live.as_deref(), sku) + held_in(Some(&guest), sku);
            }
            limit.min(self.settings.limits.max_line_quantity)
        };
        if self.settings.merge == MergeStrategy::Replace {
            cart.lines.clear();
        }
        for g in &guest.lines {
            let cap = limit(&g.sku);
            let room = cart.lines.len() < self.settings.limits.max_lines;
            let mine = cart.lines.iter_mut().find(|l| l.sku == g.sku);
            let merged = merged_quantity(self.settings.merge, mine.as_ref().map(|l| l.quantity), g.quantity, cap);
            match (mine, merged) {
                (Some(line), Some(quantity)) => line.quantity = quantity,
                (None, Some(quantity)) if room => {
                    let mut line = g.clone();
                    line.quantity = quantity;
                    cart.lines.push(line);
                }
                _ => {}
            }
        }
        for line in &mut cart.lines {
            line.held = match self.settings.reserve_on {
                ReserveOn::Cart => line.quantity.min(limit(&line.sku)),
                ReserveOn::Checkout => 0,
            };
        }
        self.record_activity(&mut cart, &CartOwner::User(user), now);
        let mut retired = self.retire(&guest, CartStatus::Merged, now);
        retired.version += 1;
        retired.updated_at_ms = now;
        self.commit(vec![
            CartChange {
                key: guest_key,
                old: Some(guest),
                new: Some(retired),
            },
            CartChange {
                key: user_key,
                old: user_old,
                new: Some(cart),
            },
        ])?;
        Ok(true)
    }
}
