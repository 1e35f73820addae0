//! The `manual` provider: cash on delivery or a bank transfer. Nothing is charged online; the
//! order is confirmed with its payment awaiting, and an admin records the payment when the money
//! arrives (`POST /orders/{id}/payment`). Refunds are paid out by hand and recorded.

use super::{Authorization, PaymentError, PaymentProvider, PaymentRequest, PaymentState};
use crate::domain::FieldErrors;

/// The manual provider.
#[derive(Debug, Default)]
pub struct Manual;

#[async_trait::async_trait]
impl PaymentProvider for Manual {
    fn check_method(&self, method: &serde_json::Value, errors: &mut FieldErrors) {
        if let Some(kind) = method.get("method") {
            if !matches!(kind.as_str(), Some("cash_on_delivery" | "bank_transfer")) {
                errors.add("payment.method", "invalid", "must be cash_on_delivery or bank_transfer");
            }
        }
    }

    async fn authorize(&self, request: &PaymentRequest) -> Result<Authorization, PaymentError> {
        Ok(Authorization::AwaitingManual {
            reference: format!("manual_{}", request.idempotency_key),
        })
    }

    async fn capture(&self, _reference: &str, _amount: i64, _key: &str) -> Result<(), PaymentError> {
        Ok(())
    }

    async fn void(&self, _reference: &str, _key: &str) -> Result<(), PaymentError> {
        Ok(())
    }

    async fn refund(&self, _reference: &str, _amount: i64, key: &str) -> Result<String, PaymentError> {
        Ok(format!("manual_refund_{key}"))
    }

    async fn status(&self, request: &PaymentRequest) -> Result<PaymentState, PaymentError> {
        Ok(PaymentState::Done(self.authorize(request).await?))
    }
}
