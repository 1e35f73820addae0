//! The `stripe` provider: Stripe's PaymentIntents API over HTTPS (rustls), with an
//! `Idempotency-Key` on every call, and the verification of Stripe's webhook signatures.
//!
//! Stripe keeps the result of a request under its idempotency key for 24 hours and answers a
//! repeat with it, so asking what became of a payment after a crash is the same create
//! request sent again with the same key: it never charges twice.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::Sha256;

use super::{Authorization, PaymentError, PaymentProvider, PaymentRequest, PaymentState};
use crate::domain::FieldErrors;

/// Settings of the Stripe provider.
#[derive(Clone)]
pub struct StripeSettings {
    /// API base, `https://api.stripe.com` (tests point it at a local server).
    pub api_base: String,
    /// Secret API key (`sk_...`).
    pub secret_key: String,
    /// Webhook signing secret (`whsec_...`).
    pub webhook_secret: String,
    /// Timeout of one call.
    pub timeout: Duration,
    /// Accepted age of a webhook signature.
    pub webhook_tolerance: Duration,
}

impl std::fmt::Debug for StripeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeSettings")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// The Stripe provider.
pub struct Stripe {
    settings: StripeSettings,
    client: Client<Https, Full<Bytes>>,
}

/// What Stripe answered.
struct Answer {
    status: u16,
    body: serde_json::Value,
}

impl Stripe {
    /// A client for `settings`.
    pub fn new(settings: StripeSettings) -> Stripe {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        Stripe {
            settings,
            client: Client::builder(TokioExecutor::new()).build(https),
        }
    }

    /// POSTs a form. A call that may have reached Stripe without an answer (a timeout, a lost
    /// connection, a 5xx, which Stripe documents as indeterminate) is `Indeterminate`; one that
    /// surely did not (no connection, a 429) is `Unavailable`.
    async fn post(&self, path: &str, form: &BTreeMap<&str, String>, key: &str) -> Result<Answer, PaymentError> {
        let body = serde_urlencoded::to_string(form).map_err(|e| PaymentError::unavailable(e.to_string()))?;
        let request = http::Request::post(format!("{}{path}", self.settings.api_base.trim_end_matches('/')))
            .header("authorization", format!("Bearer {}", self.settings.secret_key))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("idempotency-key", key)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| PaymentError::unavailable(e.to_string()))?;
        let response = tokio::time::timeout(self.settings.timeout, self.client.request(request))
            .await
            .map_err(|_| PaymentError::indeterminate("stripe timed out"))?
            .map_err(|e| {
                if e.is_connect() {
                    PaymentError::unavailable(format!("stripe unreachable: {e}"))
                } else {
                    PaymentError::indeterminate(format!("stripe connection lost: {e}"))
                }
            })?;
        let status = response.status().as_u16();
        let bytes = tokio::time::timeout(self.settings.timeout, response.into_body().collect())
            .await
            .map_err(|_| PaymentError::indeterminate("stripe timed out"))?
            .map_err(|e| PaymentError::indeterminate(e.to_string()))?
            .to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        match status {
            429 => Err(PaymentError::unavailable("stripe is rate limiting")),
            500.. => Err(PaymentError::indeterminate(format!("stripe answered {status}"))),
            _ => Ok(Answer { status, body }),
        }
    }

    /// Turns a 4xx into a decline with Stripe's code.
    fn refusal(answer: &Answer) -> PaymentError {
        let error = &answer.body["error"];
        PaymentError::Declined {
            reason: error["decline_code"]
                .as_str()
                .or(error["code"].as_str())
                .unwrap_or("declined")
                .to_owned(),
        }
    }

    fn intent_form(request: &PaymentRequest) -> BTreeMap<&'static str, String> {
        let mut form = BTreeMap::new();
        form.insert("amount", request.amount.to_string());
        form.insert("currency", request.currency.as_str().to_ascii_lowercase());
        form.insert("confirm", "true".into());
        form.insert(
            "capture_method",
            if request.capture { "automatic" } else { "manual" }.into(),
        );
        form.insert("payment_method_types[]", "card".into());
        form.insert("description", request.description.clone());
        form.insert("metadata[order_id]", request.order_id.to_string());
        if let Some(pm) = request.method.get("payment_method").and_then(|v| v.as_str()) {
            form.insert("payment_method", pm.to_owned());
        }
        form
    }

    fn outcome(answer: Answer) -> Result<Authorization, PaymentError> {
        if answer.status >= 400 {
            return Err(Self::refusal(&answer));
        }
        let reference = answer.body["id"].as_str().unwrap_or_default().to_owned();
        match answer.body["status"].as_str() {
            Some("succeeded") => Ok(Authorization::Authorized {
                reference,
                captured: true,
            }),
            Some("requires_capture") => Ok(Authorization::Authorized {
                reference,
                captured: false,
            }),
            Some(other) => Err(PaymentError::Declined {
                reason: format!("payment_intent_{other}"),
            }),
            None => Err(PaymentError::indeterminate("stripe answered without a status")),
        }
    }

    /// Verifies a `Stripe-Signature` header (`t=<unix seconds>,v1=<hex HMAC-SHA256 of
    /// "t.payload">`) against the webhook secret, within the tolerance of `now_secs`.
    pub fn verify_webhook(&self, header: &str, payload: &[u8], now_secs: i64) -> Result<(), &'static str> {
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
                Some(("v1", v)) => signatures.push(v),
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or("the signature has no timestamp")?;
        if (now_secs - timestamp).abs() > self.settings.webhook_tolerance.as_secs() as i64 {
            return Err("the signature is outside the tolerance window");
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(self.settings.webhook_secret.as_bytes())
            .map_err(|_| "the webhook secret is unusable")?;
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        for signature in signatures {
            if let Ok(bytes) = hex::decode(signature) {
                // Constant-time comparison through the MAC.
                if mac.clone().verify_slice(&bytes).is_ok() {
                    return Ok(());
                }
            }
        }
        Err("no signature matches")
    }
}

#[async_trait::async_trait]
impl PaymentProvider for Stripe {
    fn check_method(&self, method: &serde_json::Value, errors: &mut FieldErrors) {
        match method.get("payment_method").and_then(|v| v.as_str()) {
            None => errors.add(
                "payment.payment_method",
                "required",
                "a Stripe PaymentMethod id (pm_...)",
            ),
            Some(pm) if !pm.starts_with("pm_") => {
                errors.add("payment.payment_method", "invalid", "must start with pm_")
            }
            Some(_) => {}
        }
    }

    async fn authorize(&self, request: &PaymentRequest) -> Result<Authorization, PaymentError> {
        let answer = self
            .post(
                "/v1/payment_intents",
                &Self::intent_form(request),
                &request.idempotency_key,
            )
            .await?;
        Self::outcome(answer)
    }

    async fn capture(&self, reference: &str, amount: i64, key: &str) -> Result<(), PaymentError> {
        let mut form = BTreeMap::new();
        form.insert("amount_to_capture", amount.to_string());
        let answer = self
            .post(
                &format!("/v1/payment_intents/{reference}/capture"),
                &form,
                &format!("{key}-capture"),
            )
            .await?;
        if answer.status >= 400 {
            return Err(Self::refusal(&answer));
        }
        Ok(())
    }

    async fn void(&self, reference: &str, key: &str) -> Result<(), PaymentError> {
        let answer = self
            .post(
                &format!("/v1/payment_intents/{reference}/cancel"),
                &BTreeMap::new(),
                &format!("{key}-cancel"),
            )
            .await?;
        if answer.status >= 400 {
            return Err(Self::refusal(&answer));
        }
        Ok(())
    }

    async fn refund(&self, reference: &str, amount: i64, key: &str) -> Result<String, PaymentError> {
        let mut form = BTreeMap::new();
        form.insert("payment_intent", reference.to_owned());
        form.insert("amount", amount.to_string());
        let answer = self.post("/v1/refunds", &form, key).await?;
        if answer.status >= 400 {
            return Err(Self::refusal(&answer));
        }
        Ok(answer.body["id"].as_str().unwrap_or_default().to_owned())
    }

    async fn status(&self, request: &PaymentRequest) -> Result<PaymentState, PaymentError> {
        match self.authorize(request).await {
            Ok(done) => Ok(PaymentState::Done(done)),
            Err(PaymentError::Declined { .. }) => Ok(PaymentState::Failed),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stripe() -> Stripe {
        Stripe::new(StripeSettings {
            api_base: "http://127.0.0.1:1".into(),
            secret_key: "sk_test".into(),
            webhook_secret: "whsec_test".into(),
            timeout: Duration::from_secs(1),
            webhook_tolerance: Duration::from_secs(300),
        })
    }

    fn sign(secret: &str, t: i64, payload: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(payload);
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn webhook_signatures_are_checked_with_a_tolerance() {
        let s = stripe();
        let body = br#"{"id":"evt_1"}"#;
        assert!(s.verify_webhook(&sign("whsec_test", 1000, body), body, 1100).is_ok());
        assert!(s.verify_webhook(&sign("whsec_other", 1000, body), body, 1100).is_err());
        assert!(
            s.verify_webhook(&sign("whsec_test", 1000, body), body, 2000).is_err(),
            "too old"
        );
        assert!(
            s.verify_webhook(&sign("whsec_test", 1000, body), b"{}", 1100).is_err(),
            "tampered"
        );
        assert!(s.verify_webhook("v1=00", body, 1100).is_err());
    }
}
