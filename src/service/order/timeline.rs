//! An order's timeline, and who sees which of its events. Admins see everything. A customer
//! or guest sees every event but the internal notes. A seller shares a multi-seller order
//! with other sellers, so they see the order's own events (placed, paid, cancelled,
//! refunded) but only their fulfilments' events and, of the notes, their own and the ones
//! written for the customer.

use std::sync::Arc;

use storefront_storage::cf::CF_ORDER_EVENTS;
use storefront_storage::keys;
use storefront_storage::orders::{OrderEventRecord, OrderRecord};
use storefront_storage::Owned;

use super::notes::NOTE;
use super::{Orders, Viewer};
use crate::domain::Id;
use crate::service::auth::Actor;
use crate::service::view::order::OrderEventView;
use crate::service::{blocking, ServiceError};

impl Orders {
    /// `GET /orders/{id}/timeline`: the events `actor` may see, oldest first.
    pub async fn timeline(
        self: &Arc<Self>,
        actor: Actor,
        id: Id,
        token: Option<String>,
    ) -> Result<Vec<OrderEventView>, ServiceError> {
        let this = self.clone();
        blocking(move || {
            let order = this.load_or_404(id)?;
            let viewer = this.viewer(&actor, token.as_deref(), &order)?;
            let prefix = id.to_bytes();
            let mut raw = Vec::new();
            this.store.for_each_raw(
                CF_ORDER_EVENTS,
                &prefix,
                keys::prefix_successor(&prefix).as_deref(),
                |key, value| {
                    raw.push((key.to_vec(), value.to_vec()));
                    true
                },
            )?;
            let mut events = Vec::with_capacity(raw.len());
            for (key, value) in raw {
                let record = Owned::<OrderEventRecord>::from_slice(&key, &value)?.to_native();
                let view = OrderEventView::from(&record);
                if shown_to(&view, &viewer, &order) {
                    events.push(view);
                }
            }
            Ok(events)
        })
        .await
    }
}

/// Whether `viewer` may see `event`, an event of `order`.
fn shown_to(event: &OrderEventView, viewer: &Viewer, order: &OrderRecord) -> bool {
    let for_customer = || event.data["customer_visible"] == serde_json::Value::Bool(true);
    match viewer {
        Viewer::Admin => true,
        Viewer::Customer | Viewer::Guest => event.kind != NOTE || for_customer(),
        Viewer::Seller(me) => {
            if event.kind == NOTE {
                return event.actor == viewer.actor() || for_customer();
            }
            if !event.kind.starts_with("fulfilment_") {
                return true;
            }
            let fulfilment = event.data["fulfilment_id"].as_str().and_then(Id::parse);
            order
                .fulfilments
                .iter()
                .any(|f| Some(Id::from_bytes(f.id)) == fulfilment && f.seller_id == Some(me.to_bytes()))
        }
    }
}
