//! Refunds (full or partial, of lines or of an amount, never more than was captured and not
//! refunded yet, optionally restocking) and manual payments recorded by an admin.

use std::sync::Arc;

use storefront_storage::orders::{OrderPhaseRecord, PaymentStatusRecord, RefundRecord};

use super::fulfilment::payment_error;
use super::{Event, Orders};
use crate::domain::error::DomainError;
use crate::domain::order::{units_value, RefundInput, MAX_REFUND_REASON_CHARS};
use crate::domain::{FieldErrors, Id};
use crate::service::auth::Actor;
use crate::service::idempotency::{Answer, Begin, Idempotency};
use crate::service::view::order::{status_of, OrderView};
use crate::service::{blocking, ServiceError};

/// What a refund request resolved to.
struct Plan {
    amount: i64,
    lines: Vec<(String, i64)>,
    restock: bool,
    reason: Option<String>,
}

impl Orders {
    /// `POST /orders/{id}/refunds` (admins). With an `Idempotency-Key`, a repeat answers the
    /// first refund instead of refunding twice.
    pub async fn refund(
        self: &Arc<Self>,
        actor: Actor,
        id: Id,
        input: RefundInput,
        key: Option<String>,
        raw_body: Vec<u8>,
    ) -> Result<Answer, ServiceError> {
        actor.require_admin()?;
        let scope = match actor {
            Actor::User { id, .. } => id.to_bytes().to_vec(),
            _ => b"admin-api-key".to_vec(),
        };
        let slot = match key.as_deref() {
            None => None,
            Some(k) => {
                let key = Idempotency::check_key(Some(k))?;
                let hash = Idempotency::hash(&[b"POST /orders/refunds", &id.to_bytes(), &raw_body]);
                let idempotency = self.idempotency.clone();
                match blocking(move || idempotency.begin(&scope, &key, hash)).await? {
                    Begin::Replay { status, body } => {
                        return Ok(Answer {
                            status,
                            body,
                            replayed: true,
                        })
                    }
                    // A refund never creates an order: a takeover simply runs again.
                    Begin::Run(running) | Begin::Resume(running, _, _) => Some(running),
                }
            }
        };
        let outcome = self
            .refund_run(actor, id, input, key.clone(), slot.as_ref().map(|r| &r.slot))
            .await;
        if let (Some(running), Err(_)) = (slot, &outcome) {
            // Nothing moved: a retry with the key starts afresh.
            let idempotency = self.idempotency.clone();
            blocking(move || idempotency.forget(&running.slot)).await?;
        }
        outcome
    }

    async fn refund_run(
        self: &Arc<Self>,
        actor: Actor,
        id: Id,
        input: RefundInput,
        key: Option<String>,
        slot: Option<&crate::service::idempotency::Slot>,
    ) -> Result<Answer, ServiceError> {
        let this = self.clone();
        let (order, plan) = blocking(move || {
            let (order, _) = this.load_for(&actor, None, id)?;
            let plan = Self::plan_refund(&order, &input)?;
            Ok((order, plan))
        })
        .await?;
        let reference = order.payment.reference.clone().unwrap_or_default();
        let refund_key =
            key.unwrap_or_else(|| format!("{}-refund-{}", order.payment.idempotency_key, order.refunds.len()));
        let provider_reference = self
            .payments
            .refund(&order.payment.provider, &reference, plan.amount, &refund_key)
            .await
            .map_err(payment_error)?;
        let this = self.clone();
        let slot = slot.cloned();
        blocking(move || {
            let _guard = this.lock(id);
            let mut order = this.load_for(&actor, None, id)?.0;
            let from = status_of(&order);
            let now = this.clock.now_ms();
            order.payment.refunded_cents += plan.amount;
            for (sku, quantity) in &plan.lines {
                if let Some(line) = order.lines.iter_mut().find(|l| &l.sku == sku) {
                    line.refunded_quantity += quantity;
                    if plan.restock {
                        line.restocked_quantity += quantity;
                    }
                }
            }
            let refund_id = Id::new();
            order.refunds.push(RefundRecord {
                id: refund_id.to_bytes(),
                amount_cents: plan.amount,
                reference: provider_reference.clone(),
                lines: plan.lines.clone(),
                restocked: plan.restock,
                reason: plan.reason.clone(),
                created_at_ms: now,
            });
            let restock_lines: Vec<(String, i64)> = if plan.restock { plan.lines.clone() } else { Vec::new() };
            let mut batch = this.store.batch();
            let restock = this.inventory.stage_restock(&mut batch, &restock_lines, now)?;
            let details = serde_json::json!({
                "refund_id": refund_id,
                "amount": plan.amount,
                "lines": plan.lines.iter().map(|(sku, q)| serde_json::json!({ "sku": sku, "quantity": q })).collect::<Vec<_>>(),
                "restocked": plan.restock,
                "reason": plan.reason,
                "reference": provider_reference,
            });
            this.stage_event(&mut batch, &Event {
                    actor: "admin",
                    kind: "refund_issued",
                    from: Some(from),
                    data: details.clone(),
                }, &mut order)?;
            this.stage_outbox(&mut batch, "refund_issued", &order, details)?;
            this.stage_order(&mut batch, &mut order)?;
            let body = serde_json::to_vec(&this.view(&order, super::Viewer::Admin))
                .map_err(|e| ServiceError::internal_from("order view", e))?;
            if let Some(slot) = &slot {
                this.idempotency.stage_done(&mut batch, slot, 201, &body)?;
            }
            batch.commit()?;
            restock.commit()?;
            Ok(Answer {
                status: 201,
                body,
                replayed: false,
            })
        })
        .await
    }

    /// Resolves what a refund request asks, or why it cannot be done.
    fn plan_refund(order: &storefront_storage::orders::OrderRecord, input: &RefundInput) -> Result<Plan, ServiceError> {
        let mut errors = FieldErrors::default();
        if order.phase != OrderPhaseRecord::Placed {
            return Err(DomainError::InvalidTransition {
                from: status_of(order).as_str(),
                to: "refunded".into(),
                allowed: Vec::new(),
            }
            .into());
        }
        let refundable = order.payment.captured_cents - order.payment.refunded_cents;
        let mut lines = Vec::new();
        let mut lines_value = 0i64;
        for (i, line) in input.lines.iter().flatten().enumerate() {
            let field = format!("lines[{i}].quantity");
            match order.lines.iter().find(|l| l.sku == line.sku) {
                None => errors.add(format!("lines[{i}].sku"), "unknown", "not a line of this order"),
                Some(l) if line.quantity <= 0 || line.quantity > l.quantity - l.refunded_quantity => errors.add(
                    field,
                    "out_of_range",
                    format!("must be 1 to {}", l.quantity - l.refunded_quantity),
                ),
                Some(l) => {
                    // What the units were paid: after the line's discount, with its tax.
                    lines_value += units_value(
                        l.line_total_cents,
                        l.discount_cents,
                        l.tax_cents,
                        l.quantity,
                        line.quantity,
                    );
                    lines.push((line.sku.clone(), line.quantity));
                }
            }
        }
        let amount = input
            .amount
            .unwrap_or(if lines.is_empty() { refundable } else { lines_value });
        if input.amount.is_some_and(|a| a <= 0) {
            errors.add("amount", "out_of_range", "must be positive");
        }
        let reason = input.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
        if reason.is_some_and(|r| r.chars().count() > MAX_REFUND_REASON_CHARS) {
            errors.add(
                "reason",
                "too_long",
                format!("at most {MAX_REFUND_REASON_CHARS} characters"),
            );
        }
        let reason = reason.map(str::to_owned);
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors.into_vec()));
        }
        if amount > refundable || amount <= 0 {
            return Err(DomainError::RefundTooLarge {
                refundable: refundable.max(0),
            }
            .into());
        }
        Ok(Plan {
            amount,
            lines,
            restock: input.restock.unwrap_or(false),
            reason,
        })
    }

    /// `POST /orders/{id}/payment` (admins): records the manual payment of an order that
    /// waits for it.
    pub async fn record_payment(self: &Arc<Self>, actor: Actor, id: Id) -> Result<OrderView, ServiceError> {
        actor.require_admin()?;
        let this = self.clone();
        blocking(move || {
            let _guard = this.lock(id);
            let (mut order, viewer) = this.load_for(&actor, None, id)?;
            if order.payment.status != PaymentStatusRecord::AwaitingManual || order.phase != OrderPhaseRecord::Placed {
                return Err(DomainError::InvalidTransition {
                    from: super::super::view::order::payment_status(order.payment.status),
                    to: "captured".into(),
                    allowed: Vec::new(),
                }
                .into());
            }
            order.payment.status = PaymentStatusRecord::Captured;
            order.payment.authorized_cents = order.total_cents;
            order.payment.captured_cents = order.total_cents;
            let mut batch = this.store.batch();
            this.stage_event(
                &mut batch,
                &Event {
                    actor: "admin",
                    kind: "payment_captured",
                    from: None,
                    data: serde_json::json!({ "amount": order.total_cents, "manual": true }),
                },
                &mut order,
            )?;
            this.stage_outbox(&mut batch, "payment_captured", &order, serde_json::Value::Null)?;
            this.stage_order(&mut batch, &mut order)?;
            batch.commit()?;
            Ok(this.view(&order, viewer))
        })
        .await
    }
}
