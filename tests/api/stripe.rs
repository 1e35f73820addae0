//! The `stripe` provider against a local server that answers like Stripe's documented
//! PaymentIntents API (test payment methods `pm_card_visa` and `pm_card_chargeDeclined`,
//! idempotent replays by `Idempotency-Key`, form-encoded bodies, bearer keys): nothing leaves
//! the machine. Webhooks are signed here with the `hmac` crate, as Stripe signs them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;
use storefront::config::{CaptureMode, Config};

use crate::checkout::address;
use crate::helpers::{product, spawn_with, TestApp, ADMIN_KEY};

const SECRET_KEY: &str = "sk_test_local";
const WEBHOOK_SECRET: &str = "whsec_local";

/// One request the mock received.
#[derive(Debug, Clone)]
struct Call {
    path: String,
    idempotency_key: Option<String>,
    form: HashMap<String, String>,
}

#[derive(Default)]
struct Ledger {
    calls: Vec<Call>,
    /// Stripe's idempotency: the first answer under a key, with the parameters it was for.
    answers: HashMap<String, (HashMap<String, String>, u16, Value)>,
    intents: HashMap<String, Value>,
    refunded: HashMap<String, i64>,
}

#[derive(Clone, Default)]
struct Mock {
    ledger: Arc<Mutex<Ledger>>,
    ids: Arc<AtomicU64>,
    /// While set, payment intents are created but the answer comes too late (a lost answer).
    stall: Arc<AtomicBool>,
}

fn stripe_error(status: u16, kind: &str, code: &str, extra: Value) -> (u16, Value) {
    let mut error = json!({ "type": kind, "code": code, "message": code });
    if let (Some(e), Some(x)) = (error.as_object_mut(), extra.as_object()) {
        e.extend(x.clone());
    }
    (status, json!({ "error": error }))
}

impl Mock {
    fn next_id(&self, prefix: &str) -> String {
        format!("{prefix}_{}", self.ids.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn calls(&self) -> Vec<Call> {
        self.ledger.lock().unwrap().calls.clone()
    }

    fn calls_to(&self, path_start: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.path.starts_with(path_start))
            .collect()
    }

    fn intent(&self, id: &str) -> Value {
        self.ledger.lock().unwrap().intents[id].clone()
    }

    /// Answers a POST like Stripe: checks the key, replays by `Idempotency-Key`.
    fn handle(&self, path: String, headers: &HeaderMap, form: HashMap<String, String>) -> (u16, Value) {
        let key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut ledger = self.ledger.lock().unwrap();
        ledger.calls.push(Call {
            path: path.clone(),
            idempotency_key: key.clone(),
            form: form.clone(),
        });
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {SECRET_KEY}")) {
            return stripe_error(401, "invalid_request_error", "api_key_invalid", json!({}));
        }
        if let Some(key) = &key {
            if let Some((params, status, body)) = ledger.answers.get(key) {
                if *params != form {
                    return stripe_error(400, "idempotency_error", "idempotency_key_in_use", json!({}));
                }
                return (*status, body.clone());
            }
        }
        let (status, body) = self.execute(&mut ledger, &path, &form);
        if let Some(key) = key {
            ledger.answers.insert(key, (form, status, body.clone()));
        }
        (status, body)
    }

    fn execute(&self, ledger: &mut Ledger, path: &str, form: &HashMap<String, String>) -> (u16, Value) {
        let parts: Vec<&str> = path.trim_start_matches("/v1/").split('/').collect();
        match parts.as_slice() {
            ["payment_intents"] => {
                let amount: i64 = form.get("amount").and_then(|a| a.parse().ok()).unwrap_or(0);
                if amount < 1 || form.get("currency").is_none() {
                    return stripe_error(400, "invalid_request_error", "parameter_missing", json!({}));
                }
                let id = self.next_id("pi");
                let manual = form.get("capture_method").map(String::as_str) == Some("manual");
                let mut intent = json!({
                    "id": id, "object": "payment_intent", "amount": amount,
                    "currency": form["currency"], "capture_method": form.get("capture_method"),
                    "metadata": { "order_id": form.get("metadata[order_id]") },
                    "status": if manual { "requires_capture" } else { "succeeded" },
                });
                match form.get("payment_method").map(String::as_str) {
                    Some("pm_card_visa") => {}
                    Some("pm_card_chargeDeclined") => {
                        intent["status"] = json!("requires_payment_method");
                        ledger.intents.insert(id, intent.clone());
                        return stripe_error(
                            402,
                            "card_error",
                            "card_declined",
                            json!({ "decline_code": "generic_decline", "payment_intent": intent }),
                        );
                    }
                    _ => return stripe_error(400, "invalid_request_error", "resource_missing", json!({})),
                }
                ledger.intents.insert(id, intent.clone());
                (200, intent)
            }
            ["payment_intents", id, action] => {
                let Some(intent) = ledger.intents.get_mut(*id) else {
                    return stripe_error(404, "invalid_request_error", "resource_missing", json!({}));
                };
                match (*action, intent["status"].as_str()) {
                    ("capture", Some("requires_capture")) => intent["status"] = json!("succeeded"),
                    ("cancel", Some("requires_capture" | "requires_payment_method")) => {
                        intent["status"] = json!("canceled")
                    }
                    _ => {
                        return stripe_error(
                            400,
                            "invalid_request_error",
                            "payment_intent_unexpected_state",
                            json!({}),
                        )
                    }
                }
                (200, intent.clone())
            }
            ["refunds"] => {
                let intent_id = form.get("payment_intent").cloned().unwrap_or_default();
                let Some(intent) = ledger.intents.get(&intent_id) else {
                    return stripe_error(404, "invalid_request_error", "resource_missing", json!({}));
                };
                let captured = if intent["status"] == "succeeded" {
                    intent["amount"].as_i64().unwrap()
                } else {
                    0
                };
                let amount: i64 = form.get("amount").and_then(|a| a.parse().ok()).unwrap_or(captured);
                let refunded = ledger.refunded.entry(intent_id.clone()).or_default();
                if amount < 1 || *refunded + amount > captured {
                    return stripe_error(400, "invalid_request_error", "charge_already_refunded", json!({}));
                }
                *refunded += amount;
                let id = self.next_id("re");
                (
                    200,
                    json!({ "id": id, "object": "refund", "amount": amount, "payment_intent": intent_id, "status": "succeeded" }),
                )
            }
            _ => stripe_error(404, "invalid_request_error", "resource_missing", json!({})),
        }
    }
}

async fn answer(mock: Mock, path: String, headers: HeaderMap, form: HashMap<String, String>) -> Response {
    let stalls = path == "/v1/payment_intents" && mock.stall.load(Ordering::Relaxed);
    let (status, body) = mock.handle(path, &headers, form);
    if stalls {
        // Done at Stripe, but the answer arrives after the client gave up.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    (AxumStatus::from_u16(status).unwrap(), Json(body)).into_response()
}

/// Starts the mock on an ephemeral port; returns it and its base URL.
async fn start_mock() -> (Mock, String) {
    let mock = Mock::default();
    let app = Router::new()
        .route(
            "/v1/payment_intents",
            post(
                |State(m): State<Mock>, h: HeaderMap, Form(f): Form<HashMap<String, String>>| async move {
                    answer(m, "/v1/payment_intents".into(), h, f).await
                },
            ),
        )
        .route(
            "/v1/payment_intents/{id}/{action}",
            post(
                |State(m): State<Mock>,
                 Path((id, action)): Path<(String, String)>,
                 h: HeaderMap,
                 Form(f): Form<HashMap<String, String>>| async move {
                    answer(m, format!("/v1/payment_intents/{id}/{action}"), h, f).await
                },
            ),
        )
        .route(
            "/v1/refunds",
            post(
                |State(m): State<Mock>, h: HeaderMap, Form(f): Form<HashMap<String, String>>| async move {
                    answer(m, "/v1/refunds".into(), h, f).await
                },
            ),
        )
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (mock, base)
}

async fn spawn_with_stripe(base: &str, capture: CaptureMode) -> TestApp {
    let base = base.to_owned();
    spawn_with(None, move |c: &mut Config| {
        c.payments.stripe_secret_key = SECRET_KEY.into();
        c.payments.stripe_webhook_secret = WEBHOOK_SECRET.into();
        c.payments.stripe_api_base = base;
        c.payments.stripe_timeout_ms = 300;
        c.checkout.capture = capture;
    })
    .await
}

fn stripe_body(payment_method: &str) -> Value {
    json!({
        "email": "grace@example.com",
        "shipping_address": address(),
        "payment": { "provider": "stripe", "payment_method": payment_method },
    })
}

/// A `Stripe-Signature` header for `payload` at `t`, as Stripe computes it.
fn sign(secret: &str, t: i64, payload: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{payload}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

impl TestApp {
    async fn stripe_webhook(&self, signature: Option<&str>, payload: &str) -> (StatusCode, Value) {
        let mut req = self
            .client
            .post(self.url("/api/v1/payments/stripe/webhook"))
            .header("content-type", "application/json")
            .body(payload.to_owned());
        if let Some(s) = signature {
            req = req.header("stripe-signature", s);
        }
        let res = req.send().await.unwrap();
        (res.status(), res.json().await.unwrap_or(Value::Null))
    }

    async fn order_as_admin(&self, id: &str) -> Value {
        let (status, order) = self
            .admin_json(Method::GET, &format!("/api/v1/orders/{id}"), Value::Null)
            .await;
        assert_eq!(status, StatusCode::OK, "{order}");
        order
    }
}

#[tokio::test]
async fn stripe_authorizes_with_idempotency_keys_captures_on_shipment_and_refunds() {
    let (mock, base) = start_mock().await;
    let app = spawn_with_stripe(&base, CaptureMode::OnShipment).await;
    app.create_product(product("Globe", "GLOBE-1", 4500)).await;
    let cart = app.guest_add(None, "GLOBE-1", 2).await;
    let r = app
        .checkout(Some(&cart), None, Some("globe"), &stripe_body("pm_card_visa"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let total = r.body["total"]["amount"].as_i64().unwrap();

    let creates = mock.calls_to("/v1/payment_intents");
    assert_eq!(creates.len(), 1);
    let create = &creates[0];
    assert_eq!(create.form["amount"], total.to_string());
    assert_eq!(
        create.form["currency"],
        r.body["total"]["currency"].as_str().unwrap().to_lowercase()
    );
    assert_eq!(create.form["capture_method"], "manual");
    assert_eq!(create.form["metadata[order_id]"], id);
    assert_eq!(create.form["payment_method"], "pm_card_visa");
    let intent = r.body["payment"]["reference"].as_str().unwrap().to_owned();
    assert_eq!(mock.intent(&intent)["status"], "requires_capture");

    // Shipping captures the authorized amount.
    let order = app.order_as_admin(&id).await;
    let fulfilment = order["fulfilments"][0]["id"].as_str().unwrap().to_owned();
    for status in ["processing", "shipped"] {
        let (code, body) = app
            .admin_json(
                Method::PATCH,
                &format!("/api/v1/orders/{id}/status"),
                json!({ "status": status, "fulfilment_id": fulfilment, "carrier": "DHL", "tracking_number": "JD0001" }),
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }
    assert_eq!(mock.intent(&intent)["status"], "succeeded");
    assert_eq!(mock.calls_to(&format!("/v1/payment_intents/{intent}/capture")).len(), 1);

    // A partial refund, repeated with its key, refunds once at Stripe too.
    for _ in 0..2 {
        let res = app
            .client
            .post(app.url(&format!("/api/v1/orders/{id}/refunds")))
            .bearer_auth(ADMIN_KEY)
            .header("idempotency-key", "refund-1")
            .json(&json!({ "amount": 1000 }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let refunds = mock.calls_to("/v1/refunds");
    assert_eq!(refunds.len(), 1, "the replay did not reach Stripe");
    assert_eq!(refunds[0].form["amount"], "1000");
    assert_eq!(refunds[0].form["payment_intent"], intent);

    // Every call carried a key, each money movement its own.
    let calls = mock.calls();
    assert!(calls
        .iter()
        .all(|c| c.idempotency_key.as_deref().is_some_and(|k| !k.is_empty())));
    let mut keys: Vec<_> = calls.iter().map(|c| c.idempotency_key.clone().unwrap()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), calls.len(), "{calls:?}");
}

#[tokio::test]
async fn a_stripe_decline_fails_the_order_with_stripes_reason() {
    let (mock, base) = start_mock().await;
    let app = spawn_with_stripe(&base, CaptureMode::Immediate).await;
    app.create_product(product("Lamp", "LAMP-1", 2000)).await;
    let cart = app.guest_add(None, "LAMP-1", 1).await;
    let r = app
        .checkout(Some(&cart), None, Some("lamp"), &stripe_body("pm_card_chargeDeclined"))
        .await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "payment_declined");
    assert_eq!(r.body["error"]["details"]["reason"], "generic_decline");
    assert_eq!(r.body["error"]["details"]["order"]["status"], "payment_failed");
    assert_eq!(app.stock_of("LAMP-1").await, (5, 0, 5));
    // A bad payment method never reaches Stripe.
    let r = app
        .checkout(Some(&cart), None, Some("lamp-2"), &stripe_body("tok_visa"))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(mock.calls_to("/v1/payment_intents").len(), 1);
    // Immediate capture: a good card is charged at checkout.
    let r = app
        .checkout(Some(&cart), None, Some("lamp-3"), &stripe_body("pm_card_visa"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        mock.calls_to("/v1/payment_intents").last().unwrap().form["capture_method"],
        "automatic"
    );
    assert_eq!(r.body["payment"]["status"], "captured");
}

#[tokio::test]
async fn a_lost_stripe_answer_keeps_the_order_waiting_until_a_verified_webhook_settles_it_once() {
    let (mock, base) = start_mock().await;
    let app = spawn_with_stripe(&base, CaptureMode::Immediate).await;
    app.create_product(product("Clock", "CLOCK-1", 3000)).await;
    let cart = app.guest_add(None, "CLOCK-1", 1).await;
    mock.stall.store(true, Ordering::Relaxed);
    let r = app
        .checkout(Some(&cart), None, Some("clock"), &stripe_body("pm_card_visa"))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert!(r.headers.contains_key("retry-after"));
    mock.stall.store(false, Ordering::Relaxed);
    // Stripe took the money: the order must not fail and give its stock away.
    let (intent_id, intent) = {
        let ledger = mock.ledger.lock().unwrap();
        let (id, intent) = ledger.intents.iter().next().unwrap();
        (id.clone(), intent.clone())
    };
    assert_eq!(intent["status"], "succeeded");
    let order_id = intent["metadata"]["order_id"].as_str().unwrap().to_owned();
    assert_eq!(app.order_as_admin(&order_id).await["status"], "pending_payment");
    assert_eq!(app.stock_of("CLOCK-1").await, (5, 1, 4), "still held");

    let event = json!({
        "id": "evt_1", "object": "event", "type": "payment_intent.succeeded",
        "data": { "object": intent },
    })
    .to_string();
    let now = app.clock_secs();
    // Unsigned, wrongly signed, stale or tampered events change nothing.
    assert_eq!(app.stripe_webhook(None, &event).await.0, StatusCode::UNAUTHORIZED);
    let wrong = sign("whsec_other", now, &event);
    assert_eq!(
        app.stripe_webhook(Some(&wrong), &event).await.0,
        StatusCode::UNAUTHORIZED
    );
    let stale = sign(WEBHOOK_SECRET, now - 3600, &event);
    assert_eq!(
        app.stripe_webhook(Some(&stale), &event).await.0,
        StatusCode::UNAUTHORIZED
    );
    let signed = sign(WEBHOOK_SECRET, now, &event);
    let tampered = event.replace("succeeded", "payment_failed");
    assert_eq!(
        app.stripe_webhook(Some(&signed), &tampered).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.order_as_admin(&order_id).await["status"], "pending_payment");

    let (status, body) = app.stripe_webhook(Some(&signed), &event).await;
    assert_eq!(
        (status, &body["result"]),
        (StatusCode::OK, &json!("confirmed")),
        "{body}"
    );
    let order = app.order_as_admin(&order_id).await;
    assert_eq!(order["status"], "confirmed");
    assert_eq!(order["payment"]["reference"], intent_id);
    assert_eq!(app.stock_of("CLOCK-1").await, (4, 0, 4), "sold once");
    // Stripe retries deliveries: a repeat is acknowledged and applied no second time.
    let (status, body) = app.stripe_webhook(Some(&signed), &event).await;
    assert_eq!(
        (status, &body["result"]),
        (StatusCode::OK, &json!("duplicate")),
        "{body}"
    );
    assert_eq!(app.stock_of("CLOCK-1").await, (4, 0, 4));
    assert_eq!(app.outbox("order_placed").await.len(), 1);

    // The shopper's retry with the same key answers the settled order, with no new charge.
    let r = app
        .checkout(Some(&cart), None, Some("clock"), &stripe_body("pm_card_visa"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["id"], order_id.as_str());
    let creates = mock.calls_to("/v1/payment_intents");
    assert_eq!(creates.len(), 1, "{creates:?}");
}

#[tokio::test]
async fn recovery_asks_stripe_again_under_the_same_key_and_confirms_without_a_second_charge() {
    let (mock, base) = start_mock().await;
    let app = spawn_with_stripe(&base, CaptureMode::Immediate).await;
    app.create_product(product("Kite", "KITE-1", 1500)).await;
    let cart = app.guest_add(None, "KITE-1", 1).await;
    mock.stall.store(true, Ordering::Relaxed);
    let r = app
        .checkout(Some(&cart), None, Some("kite"), &stripe_body("pm_card_visa"))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    mock.stall.store(false, Ordering::Relaxed);
    app.run_worker("order_recovery").await;
    assert_eq!(app.stock_of("KITE-1").await, (5, 1, 4), "too early: still waiting");
    app.advance(Duration::from_secs(301));
    app.run_worker("order_recovery").await;
    assert_eq!(app.stock_of("KITE-1").await, (4, 0, 4));
    let creates = mock.calls_to("/v1/payment_intents");
    assert_eq!(creates.len(), 2, "asked again");
    assert_eq!(creates[0].idempotency_key, creates[1].idempotency_key);
    assert_eq!(mock.ledger.lock().unwrap().intents.len(), 1, "charged once");
    let (_, orders) = app
        .admin_json(Method::GET, "/api/v1/orders?status=confirmed", Value::Null)
        .await;
    assert_eq!(orders["items"].as_array().unwrap().len(), 1);
}
