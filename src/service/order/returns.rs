//! Returns and exchanges: a customer asks to send delivered lines back within the return
//! window, a seller or admin approves or rejects, and receiving the goods restocks them and
//! settles the money through the payment provider.
//!
//! - **Asking** (`requested`): each line was delivered less than `[checkout]
//!   return_window_days` ago, and no more units than are left (bought, less refunded, less in
//!   other open returns). An exchange names another variant of the same product that is in
//!   stock, and keeps its price of that moment.
//! - **Approving** holds the exchange variants' units for the return (409 when they are gone);
//!   rejecting ends it.
//! - **Receiving** refunds the returned units' value (their share of the line after its
//!   discount, with its tax) less what the exchange variants cost (their price with the
//!   order's tax rate), or charges the difference when the exchange costs more. The provider
//!   call carries a key made from the return's id, so a retry never moves money twice. Then,
//!   in one batch: the units go back into stock (unless `restock: false`), the held exchange
//!   units are sold, each exchange variant becomes an order line of a new shipment of its
//!   seller, and the timeline and the outbox hear of it.

use std::sync::Arc;

use storefront_storage::cf::CF_ORDER_INDEX;
use storefront_storage::keys::{self, OrderIndex};
use storefront_storage::orders::{
    FulfilmentRecord, FulfilmentStatusRecord, OrderLineRecord, OrderPhaseRecord, OrderRecord, RefundRecord,
    ReturnLineRecord, ReturnRecord, ReturnStatusRecord,
};
use storefront_storage::records::ProductRecord;

use super::fulfilment::{invalid_transition, payment_error};
use super::{Event, Orders, Viewer};
use crate::domain::error::DomainError;
use crate::domain::order::{
    units_value, ReturnInput, ReturnLineInput, ReturnStatus, ReturnUpdateInput, MAX_RETURN_TEXT_CHARS,
};
use crate::domain::pricing::round_half_up_bps;
use crate::domain::{FieldErrors, Id};
use crate::service::auth::Actor;
use crate::service::inventory::HoldChanges;
use crate::service::payment::{Authorization, PaymentRequest};
use crate::service::view::order::status_of;
use crate::service::view::returns::{return_status, ReturnView};
use crate::service::view::rfc3339;
use crate::service::{blocking, ServiceError};

/// The holder bytes of an approved exchange's stock holds.
fn holder(return_id: [u8; 16]) -> [u8; 17] {
    let mut holder = [0u8; 17];
    holder[0] = b'r';
    holder[1..].copy_from_slice(&return_id);
    holder
}

fn record_status(s: ReturnStatus) -> ReturnStatusRecord {
    match s {
        ReturnStatus::Requested => ReturnStatusRecord::Requested,
        ReturnStatus::Approved => ReturnStatusRecord::Approved,
        ReturnStatus::Rejected => ReturnStatusRecord::Rejected,
        ReturnStatus::Received => ReturnStatusRecord::Received,
    }
}

/// The first line of `order` with `sku` (lines an exchange added cannot be returned again).
fn original_line<'o>(order: &'o OrderRecord, sku: &str) -> Option<&'o OrderLineRecord> {
    order.lines.iter().find(|l| l.sku == sku && l.replaces.is_none())
}

/// What receiving a return moves: refund (positive) or charge (negative), in minor units.
fn settlement(order: &OrderRecord, r: &ReturnRecord) -> i64 {
    r.lines
        .iter()
        .map(|rl| {
            let value = original_line(order, &rl.sku)
                .map(|l| {
                    units_value(
                        l.line_total_cents,
                        l.discount_cents,
                        l.tax_cents,
                        l.quantity,
                        rl.quantity,
                    )
                })
                .unwrap_or(0);
            let cost = rl.exchange_sku.as_ref().map_or(0, |_| {
                let goods = rl.exchange_unit_price_cents * rl.quantity;
                goods + round_half_up_bps(goods, order.tax_rate_bps)
            });
            value - cost
        })
        .sum()
}

impl Orders {
    fn return_view(&self, order: &OrderRecord, r: &ReturnRecord) -> ReturnView {
        ReturnView::new(order.id, r, self.settings.currency)
    }

    /// `POST /orders/{id}/returns`: the customer (or an admin) asks to send lines back.
    pub async fn request_return(
        self: &Arc<Self>,
        actor: Actor,
        token: Option<String>,
        id: Id,
        input: ReturnInput,
    ) -> Result<ReturnView, ServiceError> {
        let this = self.clone();
        blocking(move || {
            let _guard = this.lock(id);
            let (mut order, viewer) = this.load_for(&actor, token.as_deref(), id)?;
            if let Viewer::Seller(_) = viewer {
                return Err(ServiceError::Forbidden("the customer or an admin asks for a return"));
            }
            let now = this.clock.now_ms();
            let lines = this.check_return(&order, &input, now)?;
            let record = ReturnRecord {
                id: Id::new().to_bytes(),
                status: ReturnStatusRecord::Requested,
                lines,
                restocked: false,
                refunded_cents: 0,
                charged_cents: 0,
                note: None,
                created_at_ms: now,
                updated_at_ms: now,
            };
            order.returns.push(record.clone());
            let details = serde_json::json!({
                "return_id": Id::from_bytes(record.id),
                "lines": record.lines.iter().map(|l| serde_json::json!({
                    "sku": l.sku, "quantity": l.quantity, "reason": l.reason, "exchange_for": l.exchange_sku,
                })).collect::<Vec<_>>(),
            });
            let mut batch = this.store.batch();
            batch.put_raw(
                CF_ORDER_INDEX,
                &keys::order_index(OrderIndex::Return, &[], &record.id),
                &order.id,
            );
            let actor_name = viewer.actor();
            this.stage_event(
                &mut batch,
                &Event {
                    actor: &actor_name,
                    kind: "return_requested",
                    from: None,
                    data: details.clone(),
                },
                &mut order,
            )?;
            this.stage_outbox(&mut batch, "return_requested", &order, details)?;
            this.stage_order(&mut batch, &mut order)?;
            batch.commit()?;
            Ok(this.return_view(&order, &record))
        })
        .await
    }

    /// Checks a return request against the order as it is: every problem of every line.
    fn check_return(
        &self,
        order: &OrderRecord,
        input: &ReturnInput,
        now: i64,
    ) -> Result<Vec<ReturnLineRecord>, ServiceError> {
        let mut errors = FieldErrors::default();
        let asked = input.lines.as_deref().unwrap_or_default();
        if asked.is_empty() {
            errors.add("lines", "required", "name at least one line to send back");
        }
        let window = self.settings.return_window.as_millis() as i64;
        let mut closed_at = None;
        let mut lines: Vec<ReturnLineRecord> = Vec::new();
        for (i, a) in asked.iter().enumerate() {
            let mut e = FieldErrors::default();
            if let Some(line) = self.check_return_line(order, a, &lines, now, window, &mut closed_at, &mut e)? {
                if e.is_empty() {
                    lines.push(line);
                }
            }
            errors.nest(&format!("lines[{i}]"), e);
        }
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        if let Some(at) = closed_at {
            return Err(DomainError::ReturnWindowClosed { closed_at: rfc3339(at) }.into());
        }
        Ok(lines)
    }

    /// Checks one asked line against the order and the lines asked before it (`None`: no
    /// such returnable line).
    #[allow(clippy::too_many_arguments)]
    fn check_return_line(
        &self,
        order: &OrderRecord,
        a: &ReturnLineInput,
        earlier: &[ReturnLineRecord],
        now: i64,
        window: i64,
        closed_at: &mut Option<i64>,
        errors: &mut FieldErrors,
    ) -> Result<Option<ReturnLineRecord>, ServiceError> {
        let Some(line) = original_line(order, a.sku.trim()) else {
            errors.add("sku", "unknown", "not a line of this order");
            return Ok(None);
        };
        match order.fulfilments.iter().find(|f| f.seller_id == line.seller_id) {
            Some(f) if f.status == FulfilmentStatusRecord::Delivered && order.phase == OrderPhaseRecord::Placed => {
                if now > f.updated_at_ms + window {
                    *closed_at = Some(f.updated_at_ms + window);
                }
            }
            _ => {
                errors.add("sku", "not_delivered", "only delivered lines can be sent back");
                return Ok(None);
            }
        }
        let open: i64 = order
            .returns
            .iter()
            .filter(|r| matches!(r.status, ReturnStatusRecord::Requested | ReturnStatusRecord::Approved))
            .flat_map(|r| &r.lines)
            .chain(earlier)
            .filter(|l| l.sku == line.sku)
            .map(|l| l.quantity)
            .sum();
        let left = line.quantity - line.refunded_quantity - open;
        if a.quantity <= 0 || a.quantity > left {
            errors.add(
                "quantity",
                "out_of_range",
                format!("{} unit(s) of this line can be sent back", left.max(0)),
            );
        }
        let reason = a.reason.trim();
        errors.text("reason", reason, true, MAX_RETURN_TEXT_CHARS);
        let mut exchange = None;
        if let Some(wanted) = a.exchange_for.as_deref().map(str::trim) {
            let product = self.store.get::<ProductRecord>(&line.product_id)?;
            let price = product.as_ref().and_then(|p| {
                p.archived()
                    .variants
                    .iter()
                    .find(|v| v.sku == wanted && wanted != line.sku)
                    .map(|v| v.price_cents.to_native())
            });
            let available = self.inventory.ledger().available(wanted);
            match price {
                None => errors.add("exchange_for", "unknown", "must be another variant of the same product"),
                Some(_) if available < a.quantity => errors.add(
                    "exchange_for",
                    "insufficient_stock",
                    format!("{} unit(s) available", available.max(0)),
                ),
                Some(price) => exchange = Some((wanted.to_owned(), price)),
            }
        }
        Ok(Some(ReturnLineRecord {
            sku: line.sku.clone(),
            quantity: a.quantity,
            reason: reason.to_owned(),
            exchange_unit_price_cents: exchange.as_ref().map_or(0, |(_, p)| *p),
            exchange_sku: exchange.map(|(s, _)| s),
        }))
    }

    /// `GET /orders/{id}/returns`: the order's returns (a seller sees those with their lines).
    pub async fn list_returns(
        self: &Arc<Self>,
        actor: Actor,
        token: Option<String>,
        id: Id,
    ) -> Result<Vec<ReturnView>, ServiceError> {
        let this = self.clone();
        blocking(move || {
            let (order, viewer) = this.load_for(&actor, token.as_deref(), id)?;
            Ok(order
                .returns
                .iter()
                .filter(|r| match viewer {
                    Viewer::Seller(s) => r
                        .lines
                        .iter()
                        .any(|rl| original_line(&order, &rl.sku).is_some_and(|l| l.seller_id == Some(s.to_bytes()))),
                    _ => true,
                })
                .map(|r| this.return_view(&order, r))
                .collect())
        })
        .await
    }

    /// Finds a return's order and checks that `actor` may review it: an admin, or the seller
    /// of every line of it.
    fn load_return(&self, actor: &Actor, return_id: Id) -> Result<(OrderRecord, usize, Viewer), ServiceError> {
        let not_found = ServiceError::NotFound { kind: "return" };
        let order_id = self
            .store
            .get_raw(
                CF_ORDER_INDEX,
                &keys::order_index(OrderIndex::Return, &[], &return_id.to_bytes()),
            )?
            .and_then(|v| <[u8; 16]>::try_from(v.as_slice()).ok())
            .ok_or(ServiceError::NotFound { kind: "return" })?;
        let (order, viewer) = self
            .load_for(actor, None, Id::from_bytes(order_id))
            .map_err(|_| ServiceError::NotFound { kind: "return" })?;
        let index = order
            .returns
            .iter()
            .position(|r| r.id == return_id.to_bytes())
            .ok_or(not_found)?;
        let allowed = match viewer {
            Viewer::Admin => true,
            Viewer::Seller(s) => order.returns[index]
                .lines
                .iter()
                .all(|rl| original_line(&order, &rl.sku).is_some_and(|l| l.seller_id == Some(s.to_bytes()))),
            Viewer::Customer | Viewer::Guest => false,
        };
        if !allowed {
            return Err(ServiceError::Forbidden(
                "the seller of every line, or an admin, reviews a return",
            ));
        }
        Ok((order, index, viewer))
    }

    /// `PATCH /returns/{id}`: approve, reject or receive a return.
    pub async fn update_return(
        self: &Arc<Self>,
        actor: Actor,
        return_id: Id,
        input: ReturnUpdateInput,
    ) -> Result<ReturnView, ServiceError> {
        actor.require_signed_in()?;
        let mut errors = FieldErrors::default();
        let target = match input.status.as_deref() {
            None => {
                errors.add("status", "required", "must be given");
                None
            }
            Some(raw) => match ReturnStatus::parse(raw).filter(|s| *s != ReturnStatus::Requested) {
                Some(s) => Some(s),
                None => {
                    errors.add("status", "invalid", "must be approved, rejected or received");
                    None
                }
            },
        };
        let note = input
            .note
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        if let Some(n) = &note {
            errors.text("note", n, false, MAX_RETURN_TEXT_CHARS);
        }
        let Some(target) = target.filter(|_| errors.is_empty()) else {
            return Err(ServiceError::Validation(errors.into_vec()));
        };
        let restock = input.restock.unwrap_or(true);
        let check = move |order: &OrderRecord, index: usize| -> Result<(), ServiceError> {
            let current = return_status(order.returns[index].status);
            if !current.next().contains(&target) {
                return Err(invalid_transition(
                    current.as_str(),
                    target.as_str(),
                    current.next().iter().map(|s| s.as_str()).collect(),
                ));
            }
            Ok(())
        };
        if target != ReturnStatus::Received {
            let this = self.clone();
            return blocking(move || {
                let (order, _, _) = this.load_return(&actor, return_id)?;
                let _guard = this.lock(Id::from_bytes(order.id));
                let (order, index, viewer) = this.load_return(&actor, return_id)?;
                check(&order, index)?;
                this.review(order, index, viewer, target, note)
            })
            .await;
        }

        // Received: a first look for the money, the provider outside every lock, then the
        // batch under the order's lock after checking again.
        let this = self.clone();
        let (order, index) = blocking(move || {
            let (order, index, _) = this.load_return(&actor, return_id)?;
            check(&order, index)?;
            Ok((order, index))
        })
        .await?;
        let r = &order.returns[index];
        let net = settlement(&order, r);
        let mut moved = None;
        if net > 0 {
            let key = format!("{}-return-{}", order.payment.idempotency_key, Id::from_bytes(r.id));
            let reference = order.payment.reference.clone().unwrap_or_default();
            let provider_ref = self
                .payments
                .refund(&order.payment.provider, &reference, net, &key)
                .await
                .map_err(payment_error)?;
            moved = Some(provider_ref);
        } else if net < 0 {
            let mut request = self.payment_request(&order);
            request = PaymentRequest {
                idempotency_key: format!("{}-exchange-{}", order.payment.idempotency_key, Id::from_bytes(r.id)),
                amount: -net,
                capture: true,
                ..request
            };
            match self
                .payments
                .authorize(&order.payment.provider, &request)
                .await
                .map_err(payment_error)?
            {
                Authorization::Authorized { reference, .. } => moved = Some(reference),
                Authorization::AwaitingManual { .. } => {
                    return Err(ServiceError::Forbidden(
                        "an exchange that costs more cannot be charged to a manual payment",
                    ))
                }
            }
        }
        let this = self.clone();
        blocking(move || {
            let _guard = this.lock(Id::from_bytes(order.id));
            let (order, index, viewer) = this.load_return(&actor, return_id)?;
            if order.returns[index].status == ReturnStatusRecord::Received {
                // A concurrent receipt won; the provider saw one key, so nothing moved twice.
                return Ok(this.return_view(&order, &order.returns[index]));
            }
            check(&order, index)?;
            this.receive(order, index, viewer, net, moved, restock, note)
        })
        .await
    }

    /// Approves (holding the exchange units) or rejects a return, under the order's lock.
    fn review(
        &self,
        mut order: OrderRecord,
        index: usize,
        viewer: Viewer,
        target: ReturnStatus,
        note: Option<String>,
    ) -> Result<ReturnView, ServiceError> {
        let now = self.clock.now_ms();
        let r = &mut order.returns[index];
        let mut holds = HoldChanges::new();
        if target == ReturnStatus::Approved {
            for l in &r.lines {
                if let Some(sku) = &l.exchange_sku {
                    holds.add(sku, &holder(r.id), 0, l.quantity);
                }
            }
        }
        let taken = self.inventory.take(&holds)?;
        r.status = record_status(target);
        r.note = note.or(r.note.take());
        r.updated_at_ms = now;
        let r = r.clone();
        let mut batch = self.store.batch();
        let staged = self
            .inventory
            .stage_holds(&mut batch, &holds, &taken, now)
            .and_then(|()| {
                let actor = viewer.actor();
                self.stage_event(
                    &mut batch,
                    &Event {
                        actor: &actor,
                        kind: if target == ReturnStatus::Approved {
                            "return_approved"
                        } else {
                            "return_rejected"
                        },
                        from: None,
                        data: serde_json::json!({ "return_id": Id::from_bytes(r.id), "note": r.note }),
                    },
                    &mut order,
                )?;
                self.stage_order(&mut batch, &mut order)?;
                batch.commit().map_err(ServiceError::from)
            });
        match staged {
            Ok(()) => self.inventory.settle(&holds, taken)?,
            Err(e) => {
                taken.give_back();
                return Err(e);
            }
        }
        Ok(self.return_view(&order, &r))
    }

    /// Records a received return: the money the provider moved, restock, the exchange lines
    /// and their shipment, in one batch.
    #[allow(clippy::too_many_arguments)]
    fn receive(
        &self,
        mut order: OrderRecord,
        index: usize,
        viewer: Viewer,
        net: i64,
        provider_ref: Option<String>,
        restock: bool,
        note: Option<String>,
    ) -> Result<ReturnView, ServiceError> {
        let now = self.clock.now_ms();
        let from = status_of(&order);
        let r = order.returns[index].clone();
        let returned: Vec<(String, i64)> = r.lines.iter().map(|l| (l.sku.clone(), l.quantity)).collect();
        for (sku, q) in &returned {
            if let Some(line) = order.lines.iter_mut().find(|l| &l.sku == sku && l.replaces.is_none()) {
                line.refunded_quantity += q;
                if restock {
                    line.restocked_quantity += q;
                }
            }
        }
        let (refunded, charged) = (net.max(0), (-net).max(0));
        order.payment.refunded_cents += refunded;
        order.payment.captured_cents += charged;
        if refunded > 0 {
            order.refunds.push(RefundRecord {
                id: Id::new().to_bytes(),
                amount_cents: refunded,
                reference: provider_ref.clone().unwrap_or_default(),
                lines: returned.clone(),
                restocked: restock,
                reason: Some(format!("return {}", Id::from_bytes(r.id))),
                created_at_ms: now,
            });
        }
        // Each exchange variant becomes a line of a new shipment of its seller.
        let mut sold = Vec::new();
        let mut shipments: Vec<FulfilmentRecord> = Vec::new();
        for rl in r.lines.iter().filter(|l| l.exchange_sku.is_some()) {
            let sku = rl.exchange_sku.clone().unwrap_or_default();
            let Some(old) = original_line(&order, &rl.sku).cloned() else {
                continue;
            };
            let product = self.store.get::<ProductRecord>(&old.product_id)?;
            let variant_title = product
                .as_ref()
                .and_then(|p| {
                    p.archived()
                        .variants
                        .iter()
                        .find(|v| v.sku == sku.as_str())
                        .map(|v| v.title.to_string())
                })
                .unwrap_or_default();
            let goods = rl.exchange_unit_price_cents * rl.quantity;
            order.lines.push(OrderLineRecord {
                sku: sku.clone(),
                product_id: old.product_id,
                seller_id: old.seller_id,
                title: old.title.clone(),
                variant_title,
                unit_price_cents: rl.exchange_unit_price_cents,
                quantity: rl.quantity,
                line_total_cents: goods,
                discount_cents: 0,
                tax_cents: round_half_up_bps(goods, order.tax_rate_bps),
                refunded_quantity: 0,
                restocked_quantity: 0,
                replaces: Some(rl.sku.clone()),
            });
            if !shipments.iter().any(|f| f.seller_id == old.seller_id) {
                shipments.push(FulfilmentRecord {
                    id: Id::new().to_bytes(),
                    seller_id: old.seller_id,
                    status: FulfilmentStatusRecord::Pending,
                    carrier: None,
                    tracking_number: None,
                    shipping_cents: 0,
                    updated_at_ms: now,
                });
            }
            sold.push((sku, rl.quantity, holder(r.id).to_vec()));
        }
        order.fulfilments.extend(shipments.iter().cloned());
        {
            let stored = &mut order.returns[index];
            stored.status = ReturnStatusRecord::Received;
            stored.restocked = restock;
            stored.refunded_cents = refunded;
            stored.charged_cents = charged;
            stored.note = note.or(stored.note.take());
            stored.updated_at_ms = now;
        }
        let r = order.returns[index].clone();
        let mut batch = self.store.batch();
        let sale = self.inventory.sell(&mut batch, &sold, now)?;
        let restocked = self
            .inventory
            .stage_restock(&mut batch, if restock { &returned } else { &[] }, now)?;
        let details = serde_json::json!({
            "return_id": Id::from_bytes(r.id),
            "refunded": refunded,
            "charged": charged,
            "reference": provider_ref,
            "restocked": restock,
            "lines": returned.iter().map(|(sku, q)| serde_json::json!({ "sku": sku, "quantity": q })).collect::<Vec<_>>(),
            "exchanges": sold.iter().map(|(sku, q, _)| serde_json::json!({ "sku": sku, "quantity": q })).collect::<Vec<_>>(),
            "shipments": shipments.iter().map(|f| Id::from_bytes(f.id)).collect::<Vec<_>>(),
        });
        let actor = viewer.actor();
        self.stage_event(
            &mut batch,
            &Event {
                actor: &actor,
                kind: "return_received",
                from: Some(from),
                data: details.clone(),
            },
            &mut order,
        )?;
        if refunded > 0 {
            self.stage_outbox(&mut batch, "refund_issued", &order, details)?;
        }
        self.stage_order(&mut batch, &mut order)?;
        batch.commit()?;
        sale.done();
        restocked.commit()?;
        Ok(self.return_view(&order, &r))
    }
}
