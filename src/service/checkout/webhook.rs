//! Stripe webhooks: verified by `Stripe-Signature` (HMAC-SHA256 over `timestamp.payload`,
//! within a tolerance), applied once per event id (a repeat answers 200 and changes nothing),
//! and settling the order a PaymentIntent pays for when its own answer was lost.

use std::sync::Arc;

use super::Checkout;
use crate::domain::Id;
use crate::service::idempotency::{Begin, Idempotency};
use crate::service::payment::Authorization;
use crate::service::{blocking, ServiceError};

impl Checkout {
    /// `POST /payments/stripe/webhook`. Returns what was done, for the answer.
    pub async fn stripe_webhook(
        self: &Arc<Self>,
        signature: Option<String>,
        payload: Vec<u8>,
    ) -> Result<&'static str, ServiceError> {
        let stripe = self
            .stripe
            .clone()
            .ok_or(ServiceError::NotFound { kind: "stripe webhook" })?;
        let signature = signature.ok_or(ServiceError::Unauthorized {
            code: crate::domain::error::Code::InvalidToken,
            message: "missing Stripe-Signature",
        })?;
        if let Err(reason) = stripe.verify_webhook(&signature, &payload, self.clock.now_ms() / 1000) {
            tracing::warn!(reason, "stripe webhook refused");
            return Err(ServiceError::Unauthorized {
                code: crate::domain::error::Code::InvalidToken,
                message: "the Stripe-Signature does not verify",
            });
        }
        let event: serde_json::Value = serde_json::from_slice(&payload)
            .map_err(|_| ServiceError::invalid("body", "invalid", "not a Stripe event"))?;
        let event_id = event["id"].as_str().unwrap_or_default().to_owned();
        let kind = event["type"].as_str().unwrap_or_default().to_owned();
        let object = &event["data"]["object"];
        let reference = object["id"].as_str().unwrap_or_default().to_owned();
        let order = object["metadata"]["order_id"].as_str().and_then(Id::parse);
        let idempotency = self.idempotency.clone();
        let hash = Idempotency::hash(&[&payload]);
        let running = match blocking(move || idempotency.begin(b"stripe-events", &event_id, hash)).await {
            Ok(Begin::Replay { .. }) => return Ok("duplicate"),
            Ok(Begin::Run(running) | Begin::Resume(running, _, _)) => running,
            // The same event id with another payload, or the same event still being applied.
            Err(e) => return Err(e),
        };
        let outcome = match (kind.as_str(), order) {
            ("payment_intent.succeeded", Some(id)) => {
                let auth = Authorization::Authorized {
                    reference,
                    captured: true,
                };
                let orders = self.orders.clone();
                blocking(move || orders.confirm(id, &auth, None))
                    .await
                    .map(|_| "confirmed")
            }
            ("payment_intent.amount_capturable_updated", Some(id)) => {
                let auth = Authorization::Authorized {
                    reference,
                    captured: false,
                };
                let orders = self.orders.clone();
                blocking(move || orders.confirm(id, &auth, None))
                    .await
                    .map(|_| "authorized")
            }
            ("payment_intent.payment_failed", Some(id)) => {
                let orders = self.orders.clone();
                blocking(move || orders.fail(id, "payment_failed", None))
                    .await
                    .map(|_| "failed")
            }
            _ => Ok("ignored"),
        };
        let (idempotency, store) = (self.idempotency.clone(), self.store.clone());
        match &outcome {
            Ok(done) => {
                let body = serde_json::json!({ "received": true, "result": done }).to_string();
                blocking(move || {
                    let mut batch = store.batch();
                    idempotency.stage_done(&mut batch, &running.slot, 200, body.as_bytes())?;
                    batch.commit()?;
                    Ok(())
                })
                .await?
            }
            Err(_) => blocking(move || idempotency.forget(&running.slot)).await?,
        }
        outcome
    }
}
