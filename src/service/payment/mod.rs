//! Payments: the provider trait checkout and orders talk to, the providers, and a circuit
//! breaker in front of each.
//!
//! - [`test`]: an in-process gateway where the card number decides the outcome (Stripe's test
//!   cards), with configurable latency and failure rate;
//! - [`manual`]: cash on delivery or bank transfer, recorded by an admin;
//! - [`stripe`]: the PaymentIntents API;
//! - [`breaker`]: fail fast while a provider is down.
//!
//! Every call carries the payment's idempotency key, so a retried or recovered call never
//! charges twice, and no call is made while a lock is held or a batch is open.

pub mod breaker;
pub mod manual;
pub mod stripe;
pub mod test;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::{Currency, FieldErrors};
use breaker::{Breaker, BreakerSettings, BreakerState};

/// What a provider is asked to authorize.
#[derive(Debug, Clone)]
pub struct PaymentRequest {
    /// The key every call for this payment carries.
    pub idempotency_key: String,
    /// Amount, minor units.
    pub amount: i64,
    /// Currency.
    pub currency: Currency,
    /// The provider fields of the checkout body (a card, a payment method...).
    pub method: serde_json::Value,
    /// Capture at once (true) or authorize only, capturing at shipment.
    pub capture: bool,
    /// The order's number, for the provider's records.
    pub description: String,
    /// The order, for the provider's records and its webhooks.
    pub order_id: crate::domain::Id,
}

/// A successful authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// Authorized; `captured` when the amount was taken at once.
    Authorized {
        /// The provider's reference.
        reference: String,
        /// Whether the amount was captured too.
        captured: bool,
    },
    /// Nothing moves until an admin records the payment (manual payments).
    AwaitingManual {
        /// Our reference.
        reference: String,
    },
}

/// What a provider says of a payment it was asked for (recovery after a crash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentState {
    /// It went through.
    Done(Authorization),
    /// It was refused or failed.
    Failed,
    /// The provider never saw it.
    Unknown,
}

/// Why a provider call did not go through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The provider refused the payment (a declined card).
    #[error("the payment was declined: {reason}")]
    Declined {
        /// The provider's reason.
        reason: String,
    },
    /// The provider failed or could not be reached; retry later.
    #[error("the payment provider is unavailable: {message}")]
    Unavailable {
        /// What happened.
        message: String,
        /// When to retry, when known (an open breaker).
        retry_after: Option<Duration>,
    },
    /// The call reached the provider, or may have, and no answer says what it did (a timeout,
    /// a 5xx): the payment may have gone through. The order waits for recovery, which asks
    /// again with the same idempotency key, instead of being failed with its money taken.
    #[error("the payment provider did not say what became of the payment: {message}")]
    Indeterminate {
        /// What happened.
        message: String,
    },
}

impl PaymentError {
    fn unavailable(message: impl Into<String>) -> PaymentError {
        PaymentError::Unavailable {
            message: message.into(),
            retry_after: None,
        }
    }

    fn indeterminate(message: impl Into<String>) -> PaymentError {
        PaymentError::Indeterminate {
            message: message.into(),
        }
    }
}

/// A payment provider.
#[async_trait::async_trait]
pub trait PaymentProvider: Send + Sync + 'static {
    /// Checks the provider fields of a checkout body, before anything is reserved.
    fn check_method(&self, method: &serde_json::Value, errors: &mut FieldErrors);

    /// Authorizes (and, with `capture`, captures) a payment.
    async fn authorize(&self, request: &PaymentRequest) -> Result<Authorization, PaymentError>;

    /// Captures an authorized payment.
    async fn capture(&self, reference: &str, amount: i64, idempotency_key: &str) -> Result<(), PaymentError>;

    /// Voids an authorized, uncaptured payment.
    async fn void(&self, reference: &str, idempotency_key: &str) -> Result<(), PaymentError>;

    /// Refunds part or all of a captured payment; returns the refund's reference.
    async fn refund(&self, reference: &str, amount: i64, idempotency_key: &str) -> Result<String, PaymentError>;

    /// Asks what became of the payment with this request's key.
    async fn status(&self, request: &PaymentRequest) -> Result<PaymentState, PaymentError>;
}

struct Entry {
    provider: Arc<dyn PaymentProvider>,
    breaker: Breaker,
}

/// The providers, each behind its breaker.
pub struct Payments {
    providers: HashMap<&'static str, Entry>,
}

impl Payments {
    /// No providers.
    pub fn new() -> Payments {
        Payments {
            providers: HashMap::new(),
        }
    }

    /// Registers a provider under `name`.
    pub fn add(&mut self, name: &'static str, provider: Arc<dyn PaymentProvider>, breaker: BreakerSettings) {
        self.providers.insert(
            name,
            Entry {
                provider,
                breaker: Breaker::new(breaker),
            },
        );
    }

    /// The names of the configured providers.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.providers.keys().copied().collect();
        names.sort_unstable();
        names
    }

    /// Checks a checkout's payment fields: a known provider and its own fields.
    pub fn check(&self, provider: Option<&str>, method: &serde_json::Value, errors: &mut FieldErrors) {
        match provider {
            None => errors.add("payment.provider", "required", "must be given"),
            Some(name) => match self.providers.get(name) {
                Some(entry) => entry.provider.check_method(method, errors),
                None => errors.add(
                    "payment.provider",
                    "unknown",
                    format!("must be one of {}", self.names().join(", ")),
                ),
            },
        }
    }

    /// The breaker state of a provider.
    pub fn breaker_state(&self, name: &str) -> Option<BreakerState> {
        self.providers.get(name).map(|e| e.breaker.state())
    }

    /// Whether a provider would take a call now (its breaker is not open).
    pub fn available(&self, name: &str) -> Result<(), PaymentError> {
        let entry = self
            .providers
            .get(name)
            .ok_or_else(|| PaymentError::unavailable(format!("no payment provider {name}")))?;
        entry.breaker.permit().map_err(|retry_after| PaymentError::Unavailable {
            message: format!("the {name} provider is failing; retrying it later"),
            retry_after: Some(retry_after),
        })
    }

    /// Authorizes through the provider's breaker.
    pub async fn authorize(&self, name: &str, request: &PaymentRequest) -> Result<Authorization, PaymentError> {
        self.guarded(name, |p| async move { p.authorize(request).await }).await
    }

    /// Captures through the provider's breaker.
    pub async fn capture(&self, name: &str, reference: &str, amount: i64, key: &str) -> Result<(), PaymentError> {
        self.guarded(name, |p| async move { p.capture(reference, amount, key).await })
            .await
    }

    /// Voids through the provider's breaker.
    pub async fn void(&self, name: &str, reference: &str, key: &str) -> Result<(), PaymentError> {
        self.guarded(name, |p| async move { p.void(reference, key).await })
            .await
    }

    /// Refunds through the provider's breaker.
    pub async fn refund(&self, name: &str, reference: &str, amount: i64, key: &str) -> Result<String, PaymentError> {
        self.guarded(name, |p| async move { p.refund(reference, amount, key).await })
            .await
    }

    /// Asks the provider what became of a payment, through its breaker.
    pub async fn status(&self, name: &str, request: &PaymentRequest) -> Result<PaymentState, PaymentError> {
        self.guarded(name, |p| async move { p.status(request).await }).await
    }

    /// Calls a provider through its breaker: refused at once while it is open; a fault opens
    /// it after enough of them, a decline counts as the provider working.
    async fn guarded<T, Fut>(
        &self,
        name: &str,
        call: impl FnOnce(Arc<dyn PaymentProvider>) -> Fut,
    ) -> Result<T, PaymentError>
    where
        Fut: std::future::Future<Output = Result<T, PaymentError>>,
    {
        let entry = self
            .providers
            .get(name)
            .ok_or_else(|| PaymentError::unavailable(format!("no payment provider {name}")))?;
        if let Err(retry_after) = entry.breaker.permit() {
            return Err(PaymentError::Unavailable {
                message: format!("the {name} provider is failing; retrying it later"),
                retry_after: Some(retry_after),
            });
        }
        let outcome = call(entry.provider.clone()).await;
        match &outcome {
            Err(PaymentError::Unavailable { .. } | PaymentError::Indeterminate { .. }) => entry.breaker.failed(),
            _ => entry.breaker.succeeded(),
        }
        outcome
    }
}

impl Default for Payments {
    fn default() -> Self {
        Payments::new()
    }
}
