//! Moving an order along: sellers (and admins) move fulfilments through processing, shipped and
//! delivered, capturing the payment at shipment when capture waits for it; customers, guests
//! and admins cancel an order before anything of it shipped.

use std::sync::Arc;

use storefront_storage::cf::CF_ORDER_INDEX;
use storefront_storage::keys::{self, OrderIndex};
use storefront_storage::orders::{OrderPhaseRecord, OrderRecord, PaymentStatusRecord, RefundRecord};

use super::{Event, Orders, Viewer};
use crate::domain::error::DomainError;
use crate::domain::order::{self, CaptureMode, FulfilmentStatus, OrderStatus, StatusChangeInput};
use crate::domain::{FieldErrors, Id};
use crate::service::auth::Actor;
use crate::service::catalog::check_version;
use crate::service::payment::PaymentError;
use crate::service::view::order::{fulfilment_record, fulfilment_status, status_of, OrderView};
use crate::service::{blocking, ServiceError};

/// What a payment provider must do before a change is written.
enum Money {
    None,
    Void,
    Refund(i64),
}

pub(crate) fn invalid_transition(from: &'static str, to: &str, allowed: Vec<&'static str>) -> ServiceError {
    DomainError::InvalidTransition {
        from,
        to: to.to_owned(),
        allowed,
    }
    .into()
}

pub(crate) fn payment_error(e: PaymentError) -> ServiceError {
    match e {
        PaymentError::Declined { reason } => ServiceError::Domain(DomainError::PaymentDeclined {
            reason,
            order: serde_json::Value::Null,
        }),
        PaymentError::Unavailable { retry_after, .. } => ServiceError::Domain(DomainError::PaymentUnavailable {
            retry_after_secs: retry_after.map(|d| d.as_secs().max(1)).unwrap_or(5),
        }),
        PaymentError::Indeterminate { .. } => {
            ServiceError::Domain(DomainError::PaymentUnavailable { retry_after_secs: 5 })
        }
    }
}

impl Orders {
    /// `PATCH /orders/{id}/status`: a fulfilment step, or `cancelled` (admins).
    pub async fn change_status(
        self: &Arc<Self>,
        actor: Actor,
        id: Id,
        input: StatusChangeInput,
        if_match: Option<u64>,
    ) -> Result<OrderView, ServiceError> {
        actor.require_signed_in()?;
        let mut errors = FieldErrors::default();
        let target = match input.status.as_deref().map(str::trim) {
            None => {
                errors.add("status", "required", "must be given");
                None
            }
            Some("cancelled") => {
                actor.require_admin()?;
                return self.cancel(actor, id, None, if_match).await;
            }
            Some("processing") => Some(FulfilmentStatus::Processing),
            Some("shipped") => Some(FulfilmentStatus::Shipped),
            Some("delivered") => Some(FulfilmentStatus::Delivered),
            Some(other) => {
                if OrderStatus::parse(other).is_some() {
                    // A real status, but one that payments and refunds set, not a person.
                    let this = self.clone();
                    let order = blocking(move || this.load_for(&actor, None, id).map(|(o, _)| o)).await?;
                    let from = status_of(&order);
                    return Err(invalid_transition(
                        from.as_str(),
                        other,
                        order::allowed_transitions(from).iter().map(|s| s.as_str()).collect(),
                    ));
                }
                errors.add(
                    "status",
                    "invalid",
                    "must be processing, shipped, delivered or cancelled",
                );
                None
            }
        };
        for (field, value) in [("carrier", &input.carrier), ("tracking_number", &input.tracking_number)] {
            if let Some(v) = value {
                errors.text(field, v, true, 100);
            }
        }
        let fulfilment = match input.fulfilment_id.as_deref() {
            None => None,
            Some(raw) => match Id::parse(raw) {
                Some(id) => Some(id),
                None => {
                    errors.add("fulfilment_id", "invalid", "must be a fulfilment id");
                    None
                }
            },
        };
        let Some(target) = target.filter(|_| errors.is_empty()) else {
            return Err(ServiceError::Validation(errors.into_vec()));
        };

        // First a look, to know whether the payment must be captured before the write.
        let this = self.clone();
        let order = blocking(move || {
            let (order, viewer) = this.load_for(&actor, None, id)?;
            this.check_step(&order, viewer, fulfilment, target)?;
            Ok(order)
        })
        .await?;
        let capture = target == FulfilmentStatus::Shipped
            && self.settings.capture == CaptureMode::OnShipment
            && order.payment.status == PaymentStatusRecord::Authorized;
        if capture {
            let reference = order.payment.reference.clone().unwrap_or_default();
            let key = format!("{}-capture", order.payment.idempotency_key);
            self.payments
                .capture(&order.payment.provider, &reference, order.total_cents, &key)
                .await
                .map_err(payment_error)?;
        }
        let this = self.clone();
        blocking(move || {
            let _guard = this.lock(id);
            let (mut order, viewer) = this.load_for(&actor, None, id)?;
            check_version(order.version, if_match)?;
            // Checked again under the lock: the order may have moved since the first look.
            let index = this.check_step(&order, viewer, fulfilment, target)?;
            let from = status_of(&order);
            let now = this.clock.now_ms();
            if capture && order.payment.status == PaymentStatusRecord::Authorized {
                order.payment.status = PaymentStatusRecord::Captured;
                order.payment.captured_cents = order.total_cents;
            }
            let f = &mut order.fulfilments[index];
            f.status = fulfilment_record(target);
            f.updated_at_ms = now;
            if target == FulfilmentStatus::Shipped {
                f.carrier = input.carrier.clone().or(f.carrier.take());
                f.tracking_number = input.tracking_number.clone().or(f.tracking_number.take());
            }
            let fulfilment_id = Id::from_bytes(f.id);
            let details = serde_json::json!({
                "fulfilment_id": fulfilment_id,
                "carrier": f.carrier,
                "tracking_number": f.tracking_number,
            });
            let mut batch = this.store.batch();
            let actor_name = viewer.actor();
            if capture {
                this.stage_event(
                    &mut batch,
                    &Event {
                        actor: &actor_name,
                        kind: "payment_captured",
                        from: None,
                        data: serde_json::json!({ "amount": order.total_cents }),
                    },
                    &mut order,
                )?;
            }
            let kind = format!("fulfilment_{}", target.as_str());
            this.stage_event(
                &mut batch,
                &Event {
                    actor: &actor_name,
                    kind: &kind,
                    from: Some(from),
                    data: details.clone(),
                },
                &mut order,
            )?;
            match target {
                FulfilmentStatus::Shipped => this.stage_outbox(&mut batch, "order_shipped", &order, details)?,
                FulfilmentStatus::Delivered => this.stage_outbox(&mut batch, "order_delivered", &order, details)?,
                _ => {}
            }
            this.stage_order(&mut batch, &mut order)?;
            batch.commit()?;
            Ok(this.view(&order, viewer))
        })
        .await
    }

    /// Finds the fulfilment a step applies to and checks the step; returns its index.
    fn check_step(
        &self,
        order: &OrderRecord,
        viewer: Viewer,
        fulfilment: Option<Id>,
        target: FulfilmentStatus,
    ) -> Result<usize, ServiceError> {
        let seller = match viewer {
            Viewer::Admin => None,
            Viewer::Seller(s) => Some(s),
            Viewer::Customer | Viewer::Guest => {
                return Err(ServiceError::Forbidden(
                    "only the order's sellers and admins move fulfilments",
                ))
            }
        };
        let index = match fulfilment {
            Some(f) => order
                .fulfilments
                .iter()
                .position(|x| x.id == f.to_bytes())
                .ok_or(ServiceError::NotFound { kind: "fulfilment" })?,
            None => {
                let candidates: Vec<usize> = order
                    .fulfilments
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| seller.is_none_or(|s| f.seller_id == Some(s.to_bytes())))
                    .map(|(i, _)| i)
                    .collect();
                match candidates.as_slice() {
                    [one] => *one,
                    [] => return Err(ServiceError::NotFound { kind: "fulfilment" }),
                    _ => {
                        return Err(ServiceError::invalid(
                            "fulfilment_id",
                            "required",
                            "the order has several fulfilments: name one",
                        ))
                    }
                }
            }
        };
        if let Some(s) = seller {
            if order.fulfilments[index].seller_id != Some(s.to_bytes()) {
                return Err(ServiceError::Forbidden("sellers may only move their own fulfilments"));
            }
        }
        let status = status_of(order);
        let current = fulfilment_status(order.fulfilments[index].status);
        if order.phase != OrderPhaseRecord::Placed || !current.next().contains(&target) {
            let allowed = if order.phase == OrderPhaseRecord::Placed {
                current.next().iter().map(|s| s.as_str()).collect()
            } else {
                order::allowed_transitions(status).iter().map(|s| s.as_str()).collect()
            };
            let from = if order.phase == OrderPhaseRecord::Placed {
                current.as_str()
            } else {
                status.as_str()
            };
            return Err(invalid_transition(from, target.as_str(), allowed));
        }
        Ok(index)
    }

    /// `POST /orders/{id}/cancel`: by its customer, its guest (with the token) or an admin,
    /// while nothing of it shipped. The held or sold stock comes back, the payment is voided
    /// (authorized) or refunded (captured).
    pub async fn cancel(
        self: &Arc<Self>,
        actor: Actor,
        id: Id,
        token: Option<String>,
        if_match: Option<u64>,
    ) -> Result<OrderView, ServiceError> {
        let this = self.clone();
        let check_token = token.clone();
        let order = blocking(move || {
            let (order, viewer) = this.load_for(&actor, check_token.as_deref(), id)?;
            Self::check_cancel(&order, viewer)?;
            check_version(order.version, if_match)?;
            Ok(order)
        })
        .await?;
        let money = match order.payment.status {
            _ if order.phase != OrderPhaseRecord::Placed => Money::None,
            PaymentStatusRecord::Authorized => Money::Void,
            PaymentStatusRecord::Captured => Money::Refund(order.payment.captured_cents - order.payment.refunded_cents),
            _ => Money::None,
        };
        let reference = order.payment.reference.clone().unwrap_or_default();
        let provider = order.payment.provider.clone();
        let key = format!("{}-cancel", order.payment.idempotency_key);
        let refund_reference = match money {
            Money::Void => {
                self.payments
                    .void(&provider, &reference, &key)
                    .await
                    .map_err(payment_error)?;
                None
            }
            Money::Refund(amount) if amount > 0 => Some(
                self.payments
                    .refund(&provider, &reference, amount, &key)
                    .await
                    .map_err(payment_error)?,
            ),
            _ => None,
        };
        let this = self.clone();
        blocking(move || {
            let _guard = this.lock(id);
            let (mut order, viewer) = this.load_for(&actor, token.as_deref(), id)?;
            Self::check_cancel(&order, viewer)?;
            let from = status_of(&order);
            let now = this.clock.now_ms();
            let was_placed = order.phase == OrderPhaseRecord::Placed;
            let mut refunded = 0;
            match money {
                Money::Void => order.payment.status = PaymentStatusRecord::Voided,
                Money::Refund(amount) if amount > 0 => {
                    refunded = amount;
                    order.payment.refunded_cents += amount;
                    order.refunds.push(RefundRecord {
                        id: Id::new().to_bytes(),
                        amount_cents: amount,
                        reference: refund_reference.clone().unwrap_or_default(),
                        lines: order
                            .lines
                            .iter()
                            .map(|l| (l.sku.clone(), l.quantity - l.refunded_quantity))
                            .collect(),
                        restocked: true,
                        reason: Some("cancelled".into()),
                        created_at_ms: now,
                    });
                    for line in &mut order.lines {
                        line.refunded_quantity = line.quantity;
                    }
                }
                _ if order.phase == OrderPhaseRecord::PendingPayment => {
                    order.payment.status = PaymentStatusRecord::Voided
                }
                _ => {}
            }
            order.phase = OrderPhaseRecord::Cancelled;
            for f in &mut order.fulfilments {
                f.status = fulfilment_record(FulfilmentStatus::Cancelled);
                f.updated_at_ms = now;
            }
            let actor_name = viewer.actor();
            let restock: Vec<(String, i64)> = if was_placed {
                order
                    .lines
                    .iter()
                    .map(|l| (l.sku.clone(), l.quantity - l.restocked_quantity))
                    .filter(|(_, q)| *q > 0)
                    .collect()
            } else {
                Vec::new()
            };
            let inventory = this.inventory.clone();
            let mut restocked = None;
            this.release_holds(&mut order, |this, batch, order| {
                for line in &mut order.lines {
                    if was_placed {
                        line.restocked_quantity = line.quantity;
                    }
                }
                restocked = Some(inventory.stage_restock(batch, &restock, now)?);
                this.stage_event(
                    batch,
                    &Event {
                        actor: &actor_name,
                        kind: "order_cancelled",
                        from: Some(from),
                        data: serde_json::json!({ "refunded": refunded, "restocked": restock.len() }),
                    },
                    order,
                )?;
                this.stage_outbox(
                    batch,
                    "order_cancelled",
                    order,
                    serde_json::json!({ "refunded": refunded }),
                )?;
                if refunded > 0 {
                    this.stage_outbox(batch, "refund_issued", order, serde_json::json!({ "amount": refunded }))?;
                }
                batch.delete(CF_ORDER_INDEX, &keys::order_index(OrderIndex::Pending, &[], &order.id));
                this.stage_order(batch, order)
            })?;
            if let Some(restocked) = restocked {
                restocked.commit()?;
            }
            Ok(this.view(&order, viewer))
        })
        .await
    }

    fn check_cancel(order: &OrderRecord, viewer: Viewer) -> Result<(), ServiceError> {
        if matches!(viewer, Viewer::Seller(_)) {
            return Err(ServiceError::Forbidden("sellers cannot cancel orders"));
        }
        let status = status_of(order);
        let fulfilments: Vec<FulfilmentStatus> =
            order.fulfilments.iter().map(|f| fulfilment_status(f.status)).collect();
        if !order::cancellable(status, &fulfilments) {
            return Err(invalid_transition(
                status.as_str(),
                "cancelled",
                order::allowed_transitions(status).iter().map(|s| s.as_str()).collect(),
            ));
        }
        Ok(())
    }
}
