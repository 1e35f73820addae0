//! Recommendations: what to show next to a product, on a home page and to one shopper.
//!
//! - [`events`]: the behaviour log (views, add-to-carts), recorded off the request path;
//! - [`models`]: the in-memory models those actions and the orders feed;
//! - [`serve`]: the service the HTTP layer asks, filtering at serve time;
//! - [`eval`]: the offline measure on a store's order history.

pub mod eval;
pub mod events;
pub mod models;
pub mod serve;

pub use serve::{RecoUpdater, Recommendations};

use storefront_storage::orders::{OrderPhaseRecord, OrderRecord};
use storefront_storage::Store;

use crate::domain::Id;
use crate::service::ServiceError;

/// Settings of recommendations (`[recommendations]`).
#[derive(Debug, Clone, Copy)]
pub struct RecoSettings {
    /// How the models weigh and rank.
    pub model: models::ModelSettings,
    /// Whether views and add-to-carts are recorded.
    pub record_behaviour: bool,
    /// How long views and add-to-carts are kept.
    pub behaviour_retention: std::time::Duration,
    /// Actions waiting to be written before new ones are dropped.
    pub queue_capacity: usize,
    /// How often the models take in new actions.
    pub interval: std::time::Duration,
}

/// A placed order as the models see it.
#[derive(Debug, Clone)]
pub struct PastOrder {
    /// Its number.
    pub number: u64,
    /// The buyer's account.
    pub user: Option<Id>,
    /// The buyer's email.
    pub email: String,
    /// The products, in line order, without repeats.
    pub products: Vec<Id>,
    /// When it was placed.
    pub at_ms: i64,
}

impl PastOrder {
    /// The order as the models see it, `None` unless it was placed.
    pub fn of(o: &OrderRecord) -> Option<PastOrder> {
        if o.phase != OrderPhaseRecord::Placed {
            return None;
        }
        let mut products: Vec<Id> = Vec::with_capacity(o.lines.len());
        for l in &o.lines {
            let id = Id::from_bytes(l.product_id);
            if !products.contains(&id) {
                products.push(id);
            }
        }
        Some(PastOrder {
            number: o.number,
            user: o.user_id.map(Id::from_bytes),
            email: o.email.clone(),
            products,
            at_ms: o.created_at_ms,
        })
    }
}

/// Every placed order of the store, oldest first.
pub fn past_orders(store: &Store) -> Result<Vec<PastOrder>, ServiceError> {
    let mut out = Vec::new();
    let mut failure = None;
    store.for_each_raw(storefront_storage::cf::CF_ORDERS, &[], None, |key, value| {
        match storefront_storage::Owned::<OrderRecord>::from_slice(key, value) {
            Ok(o) => out.extend(PastOrder::of(&o.to_native())),
            Err(e) => failure = Some(e),
        }
        failure.is_none()
    })?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    out.sort_by_key(|o| (o.at_ms, o.number));
    Ok(out)
}
