//! Checkout and orders through the real server: guest and customer checkout, idempotency
//! (replays, reuse, a double click), the last units under 200 shoppers, declined cards, the
//! circuit breaker, the state machine with per-seller fulfilments, cancellation, refunds,
//! manual payments, and who may see what.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use storefront::config::{Config, ReserveOn};

use crate::helpers::{product, spawn_app, spawn_with, TestApp};

pub const CARD_OK: &str = "4242424242424242";
pub const CARD_DECLINED: &str = "4000000000000002";
pub const CARD_PROCESSOR_ERROR: &str = "4000000000000119";

/// A shipping address body.
pub fn address() -> Value {
    json!({ "name": "Ada Lovelace", "line1": "1 Analytical Way", "city": "London", "postal_code": "N1 1AA", "country": "GB" })
}

/// A guest checkout body paying with `card`.
pub fn guest_body(card: &str) -> Value {
    json!({ "email": "ada@example.com", "shipping_address": address(), "payment": { "provider": "test", "card": card } })
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl TestApp {
    /// Adds `quantity` of `sku` to a guest cart (a new one when `token` is `None`); returns the
    /// cart token.
    pub async fn guest_add(&self, token: Option<&str>, sku: &str, quantity: i64) -> String {
        let mut req = self
            .client
            .post(self.url("/api/v1/cart/items"))
            .json(&json!({ "sku": sku, "quantity": quantity }));
        if let Some(t) = token {
            req = req.header("x-cart-token", t);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.headers()["x-cart-token"].to_str().unwrap().to_owned()
    }

    /// Adds to a signed-in customer's cart.
    pub async fn user_add(&self, access: &str, sku: &str, quantity: i64) {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/cart/items",
                Some(access),
                Some(json!({ "sku": sku, "quantity": quantity })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// `POST /checkout`.
    pub async fn checkout(&self, cart: Option<&str>, access: Option<&str>, key: Option<&str>, body: &Value) -> Reply {
        let mut req = self.client.post(self.url("/api/v1/checkout")).json(body);
        if let Some(t) = cart {
            req = req.header("x-cart-token", t);
        }
        if let Some(a) = access {
            req = req.bearer_auth(a);
        }
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        let res = req.send().await.unwrap();
        Reply {
            status: res.status(),
            headers: res.headers().clone(),
            body: res.json().await.unwrap_or(Value::Null),
        }
    }

    /// `GET /inventory/{sku}` as (on_hand, reserved, available).
    pub async fn stock_of(&self, sku: &str) -> (i64, i64, i64) {
        let (_, inv) = self.get_json(&format!("/api/v1/inventory/{sku}")).await;
        (
            inv["on_hand"].as_i64().unwrap(),
            inv["reserved"].as_i64().unwrap(),
            inv["available"].as_i64().unwrap(),
        )
    }

    /// Events of a topic waiting in the outbox.
    pub async fn outbox(&self, topic: &str) -> Vec<Value> {
        let (_, body) = self
            .admin_json(
                Method::GET,
                &format!("/api/v1/admin/outbox?topic={topic}&limit=1000"),
                Value::Null,
            )
            .await;
        body["items"].as_array().cloned().unwrap_or_default()
    }
}

fn kinds(timeline: &Value) -> Vec<String> {
    timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_guest_checks_out_pays_and_follows_the_order_with_its_token() {
    let app = spawn_app().await;
    app.create_product(product("Lamp", "LAMP-1", 1500)).await;
    let cart = app.guest_add(None, "LAMP-1", 2).await;
    let (_, before) = app
        .client
        .get(app.url("/api/v1/cart?country=GB"))
        .header("x-cart-token", &cart)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .map(|v| (StatusCode::OK, v))
        .unwrap();
    let body = json!({ "email": "ada@example.com", "shipping_address": address(), "payment": { "provider": "test", "card": CARD_OK }, "expected_total": before["total"] });
    let r = app.checkout(Some(&cart), None, Some("k-1"), &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let order = &r.body;
    assert_eq!(order["status"], "confirmed");
    assert!(order["number"].as_str().unwrap().starts_with("SF-1000"), "{order}");
    assert_eq!(order["total"], before["total"], "the shopper pays the total shown");
    assert_eq!(order["items"][0]["quantity"], 2);
    assert_eq!(order["items"][0]["unit_price"]["amount"], 1500);
    assert_eq!(order["payment"]["status"], "captured");
    assert_eq!(order["payment"]["captured"], order["total"]);
    assert_eq!(r.headers["cache-control"], "private, no-store");
    let id = order["id"].as_str().unwrap();
    assert_eq!(r.headers["location"], format!("/api/v1/orders/{id}"));
    let token = order["order_token"].as_str().unwrap();

    // Stock moved from held to sold; the cart is empty.
    assert_eq!(app.stock_of("LAMP-1").await, (3, 0, 3));
    let (_, cart_now) = app
        .client
        .get(app.url("/api/v1/cart"))
        .header("x-cart-token", &cart)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .map(|v| ((), v))
        .unwrap();
    assert_eq!(cart_now["items"].as_array().unwrap().len(), 0);

    // The guest reads the order and its timeline with the token; without it, 404.
    let (status, read) = app.get_json(&format!("/api/v1/orders/{id}?token={token}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["number"], order["number"]);
    assert!(read.get("order_token").is_none(), "the token is shown once");
    let res = app
        .client
        .get(app.url(&format!("/api/v1/orders/{id}/timeline")))
        .header("x-order-token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let timeline: Value = res.json().await.unwrap();
    assert_eq!(
        kinds(&timeline),
        vec!["order_created", "payment_captured", "order_placed"]
    );
    assert_eq!(timeline["items"][2]["to_status"], "confirmed");
    let (status, err) = app.get_json(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, _) = app.get_json(&format!("/api/v1/orders/{id}?token=wrong")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The outbox has the events, written with the order.
    assert_eq!(app.outbox("order_placed").await.len(), 1);
    assert_eq!(app.outbox("payment_captured").await.len(), 1);
}

#[tokio::test]
async fn a_customer_checks_out_to_a_saved_address_and_lists_only_their_orders() {
    let app = spawn_app().await;
    app.create_product(product("Kettle", "KET-1", 3000)).await;
    let alice = app.register("alice@example.com").await;
    let (status, saved) = app
        .call(
            Method::POST,
            "/api/v1/me/addresses",
            Some(&alice.access),
            Some(address()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{saved}");
    app.user_add(&alice.access, "KET-1", 1).await;
    let body = json!({ "address_id": saved["id"], "payment": { "provider": "test", "card": CARD_OK } });
    let r = app.checkout(None, Some(&alice.access), Some("alice-1"), &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["email"], "alice@example.com", "the account's email");
    assert_eq!(r.body["shipping_address"]["city"], "London");
    assert!(r.body.get("order_token").is_none(), "customers need no token");
    let id = r.body["id"].as_str().unwrap().to_owned();

    let bob = app.register("bob@example.com").await;
    let (status, _) = app
        .call(Method::GET, &format!("/api/v1/orders/{id}"), Some(&bob.access), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no customer reads another's order");
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/orders/{id}/cancel"),
            Some(&bob.access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nor cancels it");
    let (_, mine) = app.call(Method::GET, "/api/v1/orders", Some(&alice.access), None).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let (_, theirs) = app.call(Method::GET, "/api/v1/orders", Some(&bob.access), None).await;
    assert_eq!(theirs["items"].as_array().unwrap().len(), 0);
    let (status, _) = app.get_json("/api/v1/orders").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, all) = app
        .admin_json(Method::GET, "/api/v1/orders?status=confirmed", Value::Null)
        .await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    let (_, none) = app
        .admin_json(Method::GET, "/api/v1/orders?status=shipped", Value::Null)
        .await;
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn idempotency_replays_refuses_reuse_and_requires_a_key() {
    let app = spawn_app().await;
    app.create_product(product("Mug", "MUG-1", 900)).await;
    let cart = app.guest_add(None, "MUG-1", 1).await;
    let body = guest_body(CARD_OK);

    let r = app.checkout(Some(&cart), None, None, &body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["code"], "idempotency_key_required");

    let first = app.checkout(Some(&cart), None, Some("same"), &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again = app.checkout(Some(&cart), None, Some("same"), &body).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.body, first.body, "the stored answer, byte for byte");

    let mut other = body.clone();
    other["email"] = json!("someone@example.com");
    let reused = app.checkout(Some(&cart), None, Some("same"), &other).await;
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reused.body["error"]["code"], "idempotency_key_reused");

    // Bad input changes nothing and uses no key.
    let bad = app
        .checkout(
            Some(&cart),
            None,
            Some("bad"),
            &json!({ "payment": { "provider": "cash" } }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields = crate::helpers::error_fields(&bad.body);
    assert_eq!(fields, vec!["shipping_address", "email", "payment.provider"]);
    assert_eq!(app.stock_of("MUG-1").await, (4, 0, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_click_places_one_order_and_charges_once() {
    let app = spawn_app().await;
    app.create_product(product("Clock", "CLK-1", 2500)).await;
    let cart = app.guest_add(None, "CLK-1", 1).await;
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (app, cart) = (app.clone(), cart.clone());
            tokio::spawn(async move {
                app.checkout(Some(&cart), None, Some("click"), &guest_body(CARD_OK))
                    .await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.unwrap());
    }
    let mut ids = std::collections::HashSet::new();
    for r in &replies {
        match r.status {
            StatusCode::CREATED => {
                ids.insert(r.body["id"].as_str().unwrap().to_owned());
            }
            StatusCode::CONFLICT => assert_eq!(r.body["error"]["code"], "idempotency_key_in_use", "{}", r.body),
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert_eq!(ids.len(), 1, "every answer is the same order");
    let (_, all) = app.admin_json(Method::GET, "/api/v1/orders", Value::Null).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1, "exactly one order");
    assert_eq!(app.outbox("payment_captured").await.len(), 1, "exactly one payment");
    assert_eq!(app.stock_of("CLK-1").await, (4, 0, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_five_units_go_to_exactly_five_of_200_shoppers() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(Some(dir), |c: &mut Config| c.inventory.reserve_on = ReserveOn::Checkout).await;
    app.create_product(product("Rare", "RARE-1", 4000)).await;
    let (status, _) = app
        .admin_json(Method::PUT, "/api/v1/inventory/RARE-1", json!({ "on_hand": 5 }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut carts = Vec::new();
    for _ in 0..200 {
        carts.push(app.guest_add(None, "RARE-1", 1).await);
    }
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for (i, cart) in carts.into_iter().enumerate() {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            app.checkout(Some(&cart), None, Some(&format!("shopper-{i}")), &guest_body(CARD_OK))
                .await
        }));
    }
    let mut placed = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            StatusCode::CREATED => placed += 1,
            StatusCode::CONFLICT => assert_eq!(r.body["error"]["code"], "insufficient_stock", "{}", r.body),
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert_eq!(placed, 5);
    assert_eq!(app.stock_of("RARE-1").await, (0, 0, 0));
    let app = std::sync::Arc::try_unwrap(app).ok().unwrap();
    let dir = app.stop().await;
    let app = spawn_with(Some(dir), |c: &mut Config| c.inventory.reserve_on = ReserveOn::Checkout).await;
    assert_eq!(app.stock_of("RARE-1").await, (0, 0, 0), "exact after a restart");
    let (_, all) = app
        .admin_json(Method::GET, "/api/v1/orders?limit=100", Value::Null)
        .await;
    assert_eq!(all["items"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn a_declined_card_fails_the_order_releases_the_stock_and_keeps_the_cart() {
    let app = spawn_app().await;
    app.create_product(product("Vase", "VASE-1", 5000)).await;
    let cart = app.guest_add(None, "VASE-1", 2).await;
    assert_eq!(app.stock_of("VASE-1").await, (5, 2, 3));
    let r = app
        .checkout(Some(&cart), None, Some("try-1"), &guest_body(CARD_DECLINED))
        .await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "payment_declined");
    let order = &r.body["error"]["details"]["order"];
    assert_eq!(order["status"], "payment_failed");
    assert_eq!(app.stock_of("VASE-1").await, (5, 0, 5), "holds released");
    let replay = app
        .checkout(Some(&cart), None, Some("try-1"), &guest_body(CARD_DECLINED))
        .await;
    assert_eq!(
        (replay.status, replay.headers["idempotent-replayed"].to_str().unwrap()),
        (StatusCode::PAYMENT_REQUIRED, "true")
    );
    assert_eq!(app.outbox("payment_failed").await.len(), 1);
    assert_eq!(app.outbox("order_placed").await.len(), 0, "no order is confirmed");

    // The cart is as it was: the shopper retries with another card.
    let retry = app
        .checkout(Some(&cart), None, Some("try-2"), &guest_body(CARD_OK))
        .await;
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.body);
    assert_eq!(retry.body["items"][0]["quantity"], 2);
    assert_eq!(app.stock_of("VASE-1").await, (3, 0, 3));
}

#[tokio::test]
async fn the_breaker_opens_on_provider_faults_fails_fast_and_recovers() {
    let app = spawn_with(None, |c: &mut Config| {
        c.payments.breaker_consecutive_failures = 2;
        c.payments.breaker_cooldown_ms = 400;
    })
    .await;
    app.create_product(product("Pen", "PEN-1", 300)).await;
    let cart = app.guest_add(None, "PEN-1", 1).await;
    for key in ["e1", "e2"] {
        let r = app
            .checkout(Some(&cart), None, Some(key), &guest_body(CARD_PROCESSOR_ERROR))
            .await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
        assert_eq!(r.body["error"]["code"], "payment_unavailable");
        assert!(r.headers.contains_key("retry-after"));
        assert_eq!(app.stock_of("PEN-1").await, (5, 0, 5), "holds released");
    }
    // Open: even a good card fails at once, before any order or hold.
    let (_, before) = app
        .admin_json(Method::GET, "/api/v1/orders?limit=100", Value::Null)
        .await;
    let r = app
        .checkout(Some(&cart), None, Some("fast"), &guest_body(CARD_OK))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    let (_, after) = app
        .admin_json(Method::GET, "/api/v1/orders?limit=100", Value::Null)
        .await;
    assert_eq!(
        before["items"].as_array().unwrap().len(),
        after["items"].as_array().unwrap().len()
    );
    // After the cool-down a trial goes through and closes it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = app
        .checkout(Some(&cart), None, Some("fast"), &guest_body(CARD_OK))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

/// Two sellers' products in one order, placed by a customer.
async fn two_seller_order(
    app: &TestApp,
) -> (
    Value,
    crate::helpers::Session,
    crate::helpers::Session,
    crate::helpers::Session,
) {
    let mut sessions = Vec::new();
    for (name, slug) in [("North", "north"), ("South", "south")] {
        let (status, seller) = app
            .admin_json(Method::POST, "/api/v1/sellers", json!({ "name": name, "slug": slug }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{seller}");
        let mut body = product(&format!("{name} Chair"), &format!("{}-1", name.to_uppercase()), 10000);
        body["seller"] = json!(slug);
        app.create_product(body).await;
        let user = app.register(&format!("{slug}@example.com")).await;
        sessions.push(app.promote(&user, "seller", Some(slug)).await);
    }
    let customer = app.register("carol@example.com").await;
    app.user_add(&customer.access, "NORTH-1", 1).await;
    app.user_add(&customer.access, "SOUTH-1", 2).await;
    let body = json!({ "shipping_address": address(), "payment": { "provider": "test", "card": CARD_OK } });
    let r = app.checkout(None, Some(&customer.access), Some("two"), &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let south = sessions.pop().unwrap();
    let north = sessions.pop().unwrap();
    (r.body, north, south, customer)
}

#[tokio::test]
async fn sellers_move_only_their_fulfilments_and_the_order_follows() {
    let app = spawn_app().await;
    let (order, north, south, customer) = two_seller_order(&app).await;
    let id = order["id"].as_str().unwrap();
    assert_eq!(order["fulfilments"].as_array().unwrap().len(), 2);
    let path = format!("/api/v1/orders/{id}/status");

    // A seller sees only their lines and fulfilment.
    let (status, seen) = app
        .call(Method::GET, &format!("/api/v1/orders/{id}"), Some(&north.access), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["items"].as_array().unwrap().len(), 1);
    assert_eq!(seen["items"][0]["sku"], "NORTH-1");
    let north_f = seen["fulfilments"][0]["id"].as_str().unwrap().to_owned();
    let (_, south_seen) = app
        .call(Method::GET, &format!("/api/v1/orders/{id}"), Some(&south.access), None)
        .await;
    let south_f = south_seen["fulfilments"][0]["id"].as_str().unwrap().to_owned();
    let (_, listed) = app.call(Method::GET, "/api/v1/orders", Some(&north.access), None).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    // Not another seller's fulfilment, and not a customer.
    let (status, err) = app
        .call(
            Method::PATCH,
            &path,
            Some(&north.access),
            Some(json!({ "status": "shipped", "fulfilment_id": south_f })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    let (status, _) = app
        .call(
            Method::PATCH,
            &path,
            Some(&customer.access),
            Some(json!({ "status": "shipped" })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // North ships: the order is processing (South has not started).
    let (status, after) = app
        .call(
            Method::PATCH,
            &path,
            Some(&north.access),
            Some(json!({ "status": "shipped", "carrier": "DHL", "tracking_number": "JD0001" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_eq!(after["fulfilments"][0]["status"], "shipped");
    assert_eq!(after["fulfilments"][0]["tracking_number"], "JD0001");
    let (_, full) = app
        .admin_json(Method::GET, &format!("/api/v1/orders/{id}"), Value::Null)
        .await;
    assert_eq!(full["status"], "processing");

    // Illegal steps are refused with the allowed ones.
    let (status, err) = app
        .call(
            Method::PATCH,
            &path,
            Some(&north.access),
            Some(json!({ "status": "processing" })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(err["error"]["code"], "invalid_transition");
    assert_eq!(err["error"]["details"]["allowed"], json!(["delivered"]));
    let (status, err) = app
        .call(
            Method::POST,
            &format!("/api/v1/orders/{id}/cancel"),
            Some(&customer.access),
            None,
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("invalid_transition")),
        "shipped: no cancel"
    );

    for (session, f) in [(&south, &south_f), (&north, &north_f)] {
        for step in ["shipped", "delivered"] {
            if session.email.starts_with("north") && step == "shipped" {
                continue;
            }
            let (status, body) = app
                .call(
                    Method::PATCH,
                    &path,
                    Some(&session.access),
                    Some(json!({ "status": step, "fulfilment_id": f })),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{step}: {body}");
        }
    }
    let (_, done) = app
        .admin_json(Method::GET, &format!("/api/v1/orders/{id}"), Value::Null)
        .await;
    assert_eq!(done["status"], "delivered");
    let (_, timeline) = app
        .call(
            Method::GET,
            &format!("/api/v1/orders/{id}/timeline"),
            Some(&customer.access),
            None,
        )
        .await;
    let k = kinds(&timeline);
    assert_eq!(k.iter().filter(|k| *k == "fulfilment_delivered").count(), 2);
    assert!(timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["actor"].as_str().unwrap().starts_with("seller:")));
    assert_eq!(app.outbox("order_shipped").await.len(), 2);
    assert_eq!(app.outbox("order_delivered").await.len(), 2);
    // A seller's timeline holds the order's own events and only their fulfilment's.
    let (_, theirs) = app
        .call(
            Method::GET,
            &format!("/api/v1/orders/{id}/timeline"),
            Some(&north.access),
            None,
        )
        .await;
    let fulfilment_events: Vec<&Value> = theirs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"].as_str().unwrap().starts_with("fulfilment_"))
        .collect();
    assert_eq!(fulfilment_events.len(), 2, "shipped and delivered: {theirs}");
    assert!(fulfilment_events
        .iter()
        .all(|e| e["data"]["fulfilment_id"] == json!(north_f)));
    assert!(kinds(&theirs).contains(&"order_placed".to_owned()));
}

#[tokio::test]
async fn cancelling_before_shipment_restocks_and_refunds() {
    let app = spawn_app().await;
    app.create_product(product("Desk", "DESK-1", 20000)).await;
    let alice = app.register("alice@example.com").await;
    app.user_add(&alice.access, "DESK-1", 2).await;
    let body = json!({ "shipping_address": address(), "payment": { "provider": "test", "card": CARD_OK } });
    let r = app.checkout(None, Some(&alice.access), Some("desk"), &body).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["id"].as_str().unwrap();
    assert_eq!(app.stock_of("DESK-1").await, (3, 0, 3));
    let (status, cancelled) = app
        .call(
            Method::POST,
            &format!("/api/v1/orders/{id}/cancel"),
            Some(&alice.access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["payment"]["refunded"], r.body["total"]);
    assert_eq!(cancelled["fulfilments"][0]["status"], "cancelled");
    assert_eq!(app.stock_of("DESK-1").await, (5, 0, 5), "restocked");
    let (status, err) = app
        .call(
            Method::POST,
            &format!("/api/v1/orders/{id}/cancel"),
            Some(&alice.access),
            None,
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("invalid_transition"))
    );
    assert_eq!(app.outbox("order_cancelled").await.len(), 1);
    assert_eq!(app.outbox("refund_issued").await.len(), 1);
}

#[tokio::test]
async fn refunds_are_idempotent_bounded_by_the_capture_and_can_restock() {
    let app = spawn_app().await;
    app.create_product(product("Book", "BOOK-1", 1000)).await;
    let cart = app.guest_add(None, "BOOK-1", 3).await;
    let r = app
        .checkout(Some(&cart), None, Some("books"), &guest_body(CARD_OK))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["id"].as_str().unwrap();
    let total = r.body["total"]["amount"].as_i64().unwrap();
    assert_eq!(app.stock_of("BOOK-1").await, (2, 0, 2));
    let path = format!("/api/v1/orders/{id}/refunds");
    let refund = |key: &'static str, body: Value| {
        let app = &app;
        let path = path.clone();
        async move {
            let res = app
                .client
                .post(app.url(&path))
                .bearer_auth(crate::helpers::ADMIN_KEY)
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let replayed = res.headers().contains_key("idempotent-replayed");
            (res.status(), replayed, res.json::<Value>().await.unwrap())
        }
    };
    // One book back, restocked.
    let (status, replayed, after) = refund(
        "r1",
        json!({ "lines": [{ "sku": "BOOK-1", "quantity": 1 }], "restock": true, "reason": "torn cover" }),
    )
    .await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false), "{after}");
    assert_eq!(after["refunds"][0]["reason"], "torn cover");
    assert_eq!(after["status"], "partially_refunded");
    assert_eq!(after["payment"]["refunded"]["amount"], 1000);
    assert_eq!(after["items"][0]["refunded_quantity"], 1);
    assert_eq!(app.stock_of("BOOK-1").await, (3, 0, 3));
    // The same request again refunds nothing more.
    let (status, replayed, again) = refund(
        "r1",
        json!({ "lines": [{ "sku": "BOOK-1", "quantity": 1 }], "restock": true, "reason": "torn cover" }),
    )
    .await;
    assert_eq!((status, replayed), (StatusCode::CREATED, true));
    assert_eq!(again["payment"]["refunded"]["amount"], 1000);
    assert_eq!(app.stock_of("BOOK-1").await, (3, 0, 3));
    // More than is left is refused and changes nothing.
    let (status, _, err) = refund("r2", json!({ "amount": total })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["error"]["code"], "refund_exceeds_captured");
    assert_eq!(err["error"]["details"]["refundable"], total - 1000);
    let (status, _, err) = refund("r3", json!({ "lines": [{ "sku": "BOOK-1", "quantity": 3 }] })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let (status, _, err) = refund("r5", json!({ "amount": 100, "reason": "x".repeat(501) })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(crate::helpers::error_fields(&err), ["reason"]);
    // The rest, without restocking.
    let (status, _, rest) = refund("r4", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{rest}");
    assert_eq!(rest["status"], "refunded");
    assert_eq!(rest["payment"]["refunded"]["amount"], total);
    assert_eq!(app.stock_of("BOOK-1").await, (3, 0, 3));
    let (_, timeline) = app
        .admin_json(Method::GET, &format!("/api/v1/orders/{id}/timeline"), Value::Null)
        .await;
    assert_eq!(kinds(&timeline).iter().filter(|k| *k == "refund_issued").count(), 2);
    assert_eq!(app.outbox("refund_issued").await.len(), 2);
    // Customers and sellers cannot refund.
    let bob = app.register("bob@example.com").await;
    let (status, _) = app.call(Method::POST, &path, Some(&bob.access), Some(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn manual_payments_wait_for_the_admin_to_record_them() {
    let app = spawn_app().await;
    app.create_product(product("Rug", "RUG-1", 7000)).await;
    let cart = app.guest_add(None, "RUG-1", 1).await;
    let body = json!({ "email": "cod@example.com", "shipping_address": address(), "payment": { "provider": "manual", "method": "cash_on_delivery" } });
    let r = app.checkout(Some(&cart), None, Some("cod"), &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "confirmed");
    assert_eq!(r.body["payment"]["status"], "awaiting_manual");
    assert_eq!(r.body["payment"]["captured"]["amount"], 0);
    let id = r.body["id"].as_str().unwrap();
    let (status, paid) = app
        .admin_json(Method::POST, &format!("/api/v1/orders/{id}/payment"), Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    assert_eq!(paid["payment"]["status"], "captured");
    let (status, err) = app
        .admin_json(Method::POST, &format!("/api/v1/orders/{id}/payment"), Value::Null)
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("invalid_transition"))
    );
}

#[tokio::test]
async fn a_changed_price_or_short_stock_stops_checkout_with_the_facts() {
    let app = spawn_with(None, |c: &mut Config| c.inventory.reserve_on = ReserveOn::Checkout).await;
    app.create_product(product("Fan", "FAN-1", 2000)).await;
    app.create_product(product("Heater", "HEAT-1", 3000)).await;
    let cart = app.guest_add(None, "FAN-1", 2).await;
    app.guest_add(Some(&cart), "HEAT-1", 4).await;
    let mut body = guest_body(CARD_OK);
    body["expected_total"] = json!({ "amount": 1, "currency": "USD" });
    let r = app.checkout(Some(&cart), None, Some("p1"), &body).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["error"]["code"], "price_changed");
    assert_eq!(r.body["error"]["details"]["breakdown"]["subtotal"]["amount"], 16000);
    // Someone else buys the heaters down to 1.
    let (status, _) = app
        .admin_json(Method::PUT, "/api/v1/inventory/HEAT-1", json!({ "on_hand": 1 }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .admin_json(Method::PUT, "/api/v1/inventory/FAN-1", json!({ "on_hand": 1 }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let r = app.checkout(Some(&cart), None, Some("p2"), &guest_body(CARD_OK)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "insufficient_stock");
    let short = r.body["error"]["details"]["lines"].as_array().unwrap();
    assert_eq!(short.len(), 2, "every short line is listed: {short:?}");
    assert_eq!(app.stock_of("HEAT-1").await, (1, 0, 1), "nothing held");
}

#[tokio::test]
async fn staff_and_sellers_write_notes_and_customers_see_only_theirs() {
    let app = spawn_app().await;
    let (order, north, south, customer) = two_seller_order(&app).await;
    let id = order["id"].as_str().unwrap();
    let path = format!("/api/v1/orders/{id}/notes");
    let (status, note) = app
        .admin_json(
            Method::POST,
            &path,
            json!({ "text": "Called the customer about the colour" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    assert_eq!((&note["kind"], &note["actor"]), (&json!("note"), &json!("admin")));
    let (status, note) = app
        .call(
            Method::POST,
            &path,
            Some(&north.access),
            Some(json!({ "text": "  Ships Monday from the north warehouse ", "customer_visible": true })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    assert_eq!(note["data"]["text"], "Ships Monday from the north warehouse");
    assert!(note["actor"].as_str().unwrap().starts_with("seller:"));

    // The customer reads their timeline but writes no notes; bad notes change nothing.
    let (status, _) = app
        .call(
            Method::POST,
            &path,
            Some(&customer.access),
            Some(json!({ "text": "hi" })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for bad in [json!({ "text": "   " }), json!({ "text": "x".repeat(2001) })] {
        let (status, err) = app.admin_json(Method::POST, &path, bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        assert_eq!(crate::helpers::error_fields(&err), ["text"]);
    }
    let timeline = format!("/api/v1/orders/{id}/timeline");
    let (_, staff) = app.admin_json(Method::GET, &timeline, Value::Null).await;
    assert_eq!(kinds(&staff).iter().filter(|k| *k == "note").count(), 2);
    let (_, theirs) = app.call(Method::GET, &timeline, Some(&customer.access), None).await;
    let notes: Vec<&Value> = theirs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "note")
        .collect();
    assert_eq!(notes.len(), 1, "{theirs}");
    assert_eq!(notes[0]["data"]["text"], "Ships Monday from the north warehouse");
    // Another seller of the order sees the note for the customer, not the staff's internal one.
    let (_, south_sees) = app.call(Method::GET, &timeline, Some(&south.access), None).await;
    let texts: Vec<&Value> = south_sees["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "note")
        .map(|e| &e["data"]["text"])
        .collect();
    assert_eq!(texts, [&json!("Ships Monday from the north warehouse")], "{south_sees}");
    // Unknown orders are 404 to everyone.
    let (status, _) = app
        .admin_json(
            Method::POST,
            "/api/v1/orders/01a2319b-937d-7766-99dd-016272492286/notes",
            json!({ "text": "x" }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_refund_dropped_mid_call_leaves_its_key_free_for_the_retry() {
    let app = spawn_with(None, |c: &mut Config| c.payments.test_latency_ms = 800).await;
    app.create_product(product("Lamp", "LAMP-1", 1500)).await;
    let cart = app.guest_add(None, "LAMP-1", 1).await;
    let r = app
        .checkout(Some(&cart), None, Some("lamp"), &guest_body(CARD_OK))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let send = |timeout: Duration| {
        app.client
            .post(app.url(&format!("/api/v1/orders/{id}/refunds")))
            .bearer_auth(crate::helpers::ADMIN_KEY)
            .header("idempotency-key", "lamp-refund")
            .timeout(timeout)
            .json(&json!({ "amount": 500 }))
            .send()
    };
    // The admin's client gives up while the provider is still answering; the server drops
    // the request with it.
    assert!(send(Duration::from_millis(200)).await.unwrap_err().is_timeout());
    // The retry with the same key runs (it is not refused as still in use) and refunds once.
    let res = send(Duration::from_secs(10)).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let after: Value = res.json().await.unwrap();
    assert_eq!(after["refunds"].as_array().unwrap().len(), 1, "{after}");
    assert_eq!(after["payment"]["refunded"]["amount"], 500);
}
