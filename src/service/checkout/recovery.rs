//! Recovery of orders a crash (or a lost answer) left waiting for their payment: once an
//! order has waited `recovery_after`, the provider is asked what became of the payment (by
//! its idempotency key) and the order is confirmed, or failed with its stock released. No
//! hold leaks, no order is lost, and no payment is taken twice.

use std::sync::Arc;

use storefront_storage::orders::OrderPhaseRecord;

use crate::service::order::Orders;
use crate::service::payment::{PaymentError, PaymentState};
use crate::service::{blocking, ServiceError};
use crate::worker::{Progress, Worker};

/// Orders looked at per step.
const BATCH: usize = 100;

/// The recovery worker.
pub struct Recovery {
    orders: Arc<Orders>,
}

impl Recovery {
    /// Recovery of `orders`.
    pub fn new(orders: Arc<Orders>) -> Recovery {
        Recovery { orders }
    }
}

#[async_trait::async_trait]
impl Worker for Recovery {
    async fn try_execute(&self) -> Result<Progress, ServiceError> {
        let orders = self.orders.clone();
        let pending = blocking(move || orders.pending(BATCH)).await?;
        let deadline = self.orders.clock.now_ms() - self.orders.settings.recovery_after.as_millis() as i64;
        let mut resolved = 0;
        let mut failure = None;
        for id in pending {
            let orders = self.orders.clone();
            let Some(order) = blocking(move || orders.load(id)).await? else {
                continue;
            };
            if order.phase != OrderPhaseRecord::PendingPayment || order.created_at_ms > deadline {
                continue;
            }
            let request = self.orders.payment_request(&order);
            let state = self.orders.payments.status(&order.payment.provider, &request).await;
            let orders = self.orders.clone();
            match state {
                Ok(PaymentState::Done(authorization)) => {
                    blocking(move || orders.confirm(id, &authorization, None)).await?;
                }
                Ok(PaymentState::Failed) => {
                    blocking(move || orders.fail(id, "payment_failed", None)).await?;
                }
                Ok(PaymentState::Unknown) => {
                    blocking(move || orders.fail(id, "payment_not_completed", None)).await?;
                }
                Err(
                    e @ (PaymentError::Unavailable { .. }
                    | PaymentError::Indeterminate { .. }
                    | PaymentError::Declined { .. }),
                ) => {
                    tracing::warn!(order = %id, error = %e, "recovery could not ask the payment provider; retrying");
                    failure = Some(e);
                    continue;
                }
            }
            tracing::info!(order = %id, "recovered an order left waiting for its payment");
            resolved += 1;
        }
        if let Some(e) = failure.filter(|_| resolved == 0) {
            return Err(ServiceError::internal_from("order recovery", e));
        }
        Ok(if resolved > 0 { Progress::Worked } else { Progress::Idle })
    }
}
