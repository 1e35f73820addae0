//! The `test` provider: an in-process gateway for tests, demos and benchmarks.
//!
//! The card number decides the outcome, like Stripe's test cards:
//! - `4242424242424242` succeeds;
//! - `4000000000000002` is declined (`card_declined`);
//! - `4000000000000119` fails with a processor error (the provider is "unavailable").
//!
//! It behaves like an external gateway: it remembers every payment by its idempotency key, so
//! a repeated authorization answers the first result and recovery can ask what became of a
//! payment after a crash. It keeps that memory in its own records (`test_gateway/` in the meta
//! column family), written apart from the order's batches, as a remote gateway would keep its
//! own. Latency and a random failure rate are configurable, to exercise timeouts and the
//! circuit breaker.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use storefront_storage::cf::CF_META;
use storefront_storage::Store;

use super::{Authorization, PaymentError, PaymentProvider, PaymentRequest, PaymentState};
use crate::domain::FieldErrors;
use crate::service::blocking;

/// The card that succeeds.
pub const CARD_OK: &str = "4242424242424242";
/// The card that is declined.
pub const CARD_DECLINED: &str = "4000000000000002";
/// The card whose payment fails with a processor error.
pub const CARD_PROCESSOR_ERROR: &str = "4000000000000119";

/// Settings of the test gateway.
#[derive(Debug, Clone, Copy, Default)]
pub struct TestGatewaySettings {
    /// Delay of every call.
    pub latency: Duration,
    /// Share of calls (0–1) that fail with a processor error whatever the card.
    pub failure_rate: f64,
}

/// The gateway's record of one payment.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Charge {
    reference: String,
    amount: i64,
    approved: bool,
    captured: i64,
    refunded: i64,
    voided: bool,
}

/// The test gateway.
pub struct TestGateway {
    store: Store,
    settings: TestGatewaySettings,
}

impl TestGateway {
    /// A gateway keeping its records in `store`.
    pub fn new(store: Store, settings: TestGatewaySettings) -> TestGateway {
        TestGateway { store, settings }
    }

    fn key(idempotency_key: &str) -> Vec<u8> {
        [b"test_gateway/".as_slice(), idempotency_key.as_bytes()].concat()
    }

    fn load_sync(store: &Store, key: &str) -> Result<Option<Charge>, PaymentError> {
        store
            .get_raw(CF_META, &Self::key(key))
            .map_err(|e| PaymentError::unavailable(e.to_string()))?
            .map(|bytes| serde_json::from_slice(&bytes).map_err(|e| PaymentError::unavailable(e.to_string())))
            .transpose()
    }

    fn save_sync(store: &Store, key: &str, charge: &Charge) -> Result<(), PaymentError> {
        let bytes = serde_json::to_vec(charge).map_err(|e| PaymentError::unavailable(e.to_string()))?;
        let mut batch = store.batch();
        batch.put_raw(CF_META, &Self::key(key), &bytes);
        // Unsynced: the order's own synced batch follows every call and makes this durable;
        // a crash before it loses the charge and the order's settlement together, and
        // recovery then finds no payment (as with a gateway that never saw it).
        batch
            .commit_unsynced()
            .map_err(|e| PaymentError::unavailable(e.to_string()))
    }

    /// Runs `f` on the store in the blocking pool.
    async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, PaymentError> + Send + 'static,
    ) -> Result<T, PaymentError> {
        let store = self.store.clone();
        blocking(move || Ok(f(&store)))
            .await
            .map_err(|e| PaymentError::unavailable(e.to_string()))?
    }

    async fn load(&self, key: &str) -> Result<Option<Charge>, PaymentError> {
        let key = key.to_owned();
        self.with_store(move |store| Self::load_sync(store, &key)).await
    }

    async fn save(&self, key: &str, charge: &Charge) -> Result<(), PaymentError> {
        let (key, charge) = (key.to_owned(), charge.clone());
        self.with_store(move |store| Self::save_sync(store, &key, &charge))
            .await
    }

    /// Authorizes once per idempotency key: a repeat answers what the first call got.
    fn authorize_sync(store: &Store, request: &PaymentRequest) -> Result<Authorization, PaymentError> {
        let declined = || PaymentError::Declined {
            reason: "card_declined".into(),
        };
        if let Some(charge) = Self::load_sync(store, &request.idempotency_key)? {
            return if charge.approved {
                Ok(Authorization::Authorized {
                    reference: charge.reference,
                    captured: charge.captured > 0,
                })
            } else {
                Err(declined())
            };
        }
        let card = card(&request.method).unwrap_or("");
        if card == CARD_PROCESSOR_ERROR {
            return Err(PaymentError::unavailable("processing_error"));
        }
        let approved = card != CARD_DECLINED;
        let charge = Charge {
            reference: format!("tp_{}", request.idempotency_key),
            amount: request.amount,
            approved,
            captured: if approved && request.capture { request.amount } else { 0 },
            refunded: 0,
            voided: false,
        };
        Self::save_sync(store, &request.idempotency_key, &charge)?;
        if !approved {
            return Err(declined());
        }
        Ok(Authorization::Authorized {
            reference: charge.reference,
            captured: request.capture,
        })
    }

    /// Waits the configured latency and fails at the configured rate.
    async fn network(&self) -> Result<(), PaymentError> {
        if !self.settings.latency.is_zero() {
            tokio::time::sleep(self.settings.latency).await;
        }
        if self.settings.failure_rate > 0.0 && rand::thread_rng().gen_bool(self.settings.failure_rate.min(1.0)) {
            return Err(PaymentError::unavailable("simulated gateway failure"));
        }
        Ok(())
    }

    /// Finds the charge a reference names (references are `tp_` + the idempotency key).
    async fn by_reference(&self, reference: &str) -> Result<(String, Charge), PaymentError> {
        let key = reference
            .strip_prefix("tp_")
            .ok_or_else(|| PaymentError::unavailable(format!("unknown payment {reference}")))?;
        let charge = self
            .load(key)
            .await?
            .ok_or_else(|| PaymentError::unavailable(format!("unknown payment {reference}")))?;
        Ok((key.to_owned(), charge))
    }
}

fn card(method: &serde_json::Value) -> Option<&str> {
    method.get("card").and_then(|c| c.as_str())
}

#[async_trait::async_trait]
impl PaymentProvider for TestGateway {
    fn check_method(&self, method: &serde_json::Value, errors: &mut FieldErrors) {
        match card(method) {
            None => errors.add("payment.card", "required", "the test provider needs a card number"),
            Some(c) if c.len() != 16 || !c.bytes().all(|b| b.is_ascii_digit()) => {
                errors.add("payment.card", "invalid", "must be 16 digits")
            }
            Some(_) => {}
        }
    }

    async fn authorize(&self, request: &PaymentRequest) -> Result<Authorization, PaymentError> {
        self.network().await?;
        let request = request.clone();
        // One trip to the blocking pool for the lookup and the record.
        self.with_store(move |store| Self::authorize_sync(store, &request))
            .await
    }

    async fn capture(&self, reference: &str, amount: i64, _idempotency_key: &str) -> Result<(), PaymentError> {
        self.network().await?;
        let (key, mut charge) = self.by_reference(reference).await?;
        if charge.voided || amount > charge.amount {
            return Err(PaymentError::Declined {
                reason: "capture_refused".into(),
            });
        }
        charge.captured = amount;
        self.save(&key, &charge).await
    }

    async fn void(&self, reference: &str, _idempotency_key: &str) -> Result<(), PaymentError> {
        self.network().await?;
        let (key, mut charge) = self.by_reference(reference).await?;
        charge.voided = true;
        self.save(&key, &charge).await
    }

    async fn refund(&self, reference: &str, amount: i64, idempotency_key: &str) -> Result<String, PaymentError> {
        self.network().await?;
        let marker = format!("refund/{idempotency_key}");
        if self.load(&marker).await?.is_some() {
            return Ok(format!("tr_{idempotency_key}"));
        }
        let (key, mut charge) = self.by_reference(reference).await?;
        if charge.refunded + amount > charge.captured {
            return Err(PaymentError::Declined {
                reason: "refund_exceeds_capture".into(),
            });
        }
        charge.refunded += amount;
        self.save(&key, &charge).await?;
        self.save(&marker, &charge).await?;
        Ok(format!("tr_{idempotency_key}"))
    }

    async fn status(&self, request: &PaymentRequest) -> Result<PaymentState, PaymentError> {
        self.network().await?;
        Ok(match self.load(&request.idempotency_key).await? {
            None => PaymentState::Unknown,
            Some(charge) if !charge.approved || charge.voided => PaymentState::Failed,
            Some(charge) => PaymentState::Done(Authorization::Authorized {
                reference: charge.reference,
                captured: charge.captured > 0,
            }),
        })
    }
}
