//! Carts through the real server: guest tokens, lines, holds, pricing, versions, merge at
//! login, expiry, and the oversell proof under 1,000 concurrent clients.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use storefront::config::{Config, MergeStrategy, ReserveOn};

use crate::helpers::{product, spawn_app, spawn_with, TestApp};

/// A cart request: optional guest token, bearer, If-Match and body. Returns status, the
/// X-Cart-Token answered, and the body.
async fn cart_call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    bearer: Option<&str>,
    if_match: Option<u64>,
    body: Option<Value>,
) -> (StatusCode, Option<String>, Value) {
    let mut req = app.client.request(method, app.url(path));
    if let Some(t) = token {
        req = req.header("x-cart-token", t);
    }
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    if let Some(v) = if_match {
        req = req.header("if-match", format!("\"{v}\""));
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    if status == StatusCode::OK {
        assert_eq!(res.headers()["cache-control"], "private, no-store");
    }
    let token = res
        .headers()
        .get("x-cart-token")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, token, res.json().await.unwrap_or(Value::Null))
}

async fn add(app: &TestApp, token: Option<&str>, sku: &str, quantity: i64) -> (StatusCode, Option<String>, Value) {
    cart_call(
        app,
        Method::POST,
        "/api/v1/cart/items",
        token,
        None,
        None,
        Some(json!({ "sku": sku, "quantity": quantity })),
    )
    .await
}

/// Adds to a signed-in user's cart.
async fn user_add(app: &TestApp, access: &str, sku: &str, quantity: i64) -> (StatusCode, Option<String>, Value) {
    cart_call(
        app,
        Method::POST,
        "/api/v1/cart/items",
        None,
        Some(access),
        None,
        Some(json!({ "sku": sku, "quantity": quantity })),
    )
    .await
}

async fn stock(app: &TestApp, sku: &str) -> (i64, i64, i64) {
    let (status, inv) = app.get_json(&format!("/api/v1/inventory/{sku}")).await;
    assert_eq!(status, StatusCode::OK, "{inv}");
    (
        inv["on_hand"].as_i64().unwrap(),
        inv["reserved"].as_i64().unwrap(),
        inv["available"].as_i64().unwrap(),
    )
}

async fn set_stock(app: &TestApp, sku: &str, on_hand: i64) {
    let (status, body) = app
        .admin_json(
            Method::PUT,
            &format!("/api/v1/inventory/{sku}"),
            json!({ "on_hand": on_hand }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Waits until `check` holds (background work: sweeper, stock signals).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_guest_cart_holds_stock_and_prices_lines() {
    let app = spawn_app().await;
    app.create_product(product("Lamp", "LAMP-1", 1500)).await;

    let (status, token, cart) = add(&app, None, "LAMP-1", 2).await;
    assert_eq!(status, StatusCode::OK, "{cart}");
    let token = token.expect("a new guest cart gets a token");
    assert_eq!(cart["version"], 1);
    assert_eq!(cart["items"][0]["quantity"], 2);
    assert_eq!(cart["items"][0]["held"], 2);
    assert_eq!(cart["items"][0]["title"], "Lamp");
    assert_eq!(cart["subtotal"], json!({ "amount": 3000, "currency": "USD" }));
    assert_eq!(cart["shipping"]["amount"], 599);
    assert_eq!(cart["discount"]["amount"], 0);
    assert_eq!(cart["total"]["amount"], 3599);
    assert_eq!(cart["reserve_on"], "cart");
    assert!(cart["expires_at"].is_string() && cart["holds_expire_at"].is_string());
    assert_eq!(stock(&app, "LAMP-1").await, (5, 2, 3));

    // Adding the same SKU grows the line.
    let (status, echoed, cart) = add(&app, Some(&token), "LAMP-1", 1).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(echoed.as_deref(), Some(token.as_str()));
    assert_eq!(cart["items"].as_array().unwrap().len(), 1);
    assert_eq!(cart["items"][0]["quantity"], 3);
    let item = cart["items"][0]["item_id"].as_str().unwrap().to_owned();

    // More than can be held: 409 with the available quantity, nothing changes.
    let path = format!("/api/v1/cart/items/{item}");
    let (status, _, err) = cart_call(
        &app,
        Method::PATCH,
        &path,
        Some(&token),
        None,
        None,
        Some(json!({ "quantity": 6 })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["error"]["code"], "insufficient_stock");
    assert_eq!(err["error"]["details"]["available"], 5);
    assert_eq!(stock(&app, "LAMP-1").await, (5, 3, 2));

    let (status, _, cart) = cart_call(
        &app,
        Method::PATCH,
        &path,
        Some(&token),
        None,
        None,
        Some(json!({ "quantity": 5 })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{cart}");
    assert_eq!(cart["subtotal"]["amount"], 7500);
    assert_eq!(cart["shipping"]["amount"], 0, "free shipping from 50.00");
    assert_eq!(stock(&app, "LAMP-1").await, (5, 5, 0));

    // Removing the line releases its hold.
    let (status, _, cart) = cart_call(&app, Method::DELETE, &path, Some(&token), None, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(cart["items"].as_array().unwrap().is_empty());
    assert_eq!(cart["total"]["amount"], 0);
    assert_eq!(stock(&app, "LAMP-1").await, (5, 0, 5));
    let (status, _, cart) = cart_call(&app, Method::GET, "/api/v1/cart", Some(&token), None, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cart["version"], 4);

    // On-hand cannot drop below what carts hold.
    add(&app, Some(&token), "LAMP-1", 4).await;
    let (status, err) = app
        .admin_json(Method::PUT, "/api/v1/inventory/LAMP-1", json!({ "on_hand": 3 }))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["error"]["code"], "below_reserved");
    let (status, inv) = app
        .admin_json(Method::POST, "/api/v1/inventory/LAMP-1/adjust", json!({ "delta": 3 }))
        .await;
    assert_eq!(status, StatusCode::OK, "{inv}");
    assert_eq!((inv["on_hand"].as_i64(), inv["available"].as_i64()), (Some(8), Some(4)));
    let (status, holds) = app
        .admin_json(Method::GET, "/api/v1/inventory/LAMP-1/reservations", Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(holds["items"][0]["quantity"], 4);
    assert_eq!(holds["items"][0]["cart_id"], cart["id"]);

    // Clearing releases everything.
    let (status, _, _) = cart_call(&app, Method::DELETE, "/api/v1/cart", Some(&token), None, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stock(&app, "LAMP-1").await, (8, 0, 8));
}

#[tokio::test]
async fn bad_cart_input_gets_clear_errors_and_changes_nothing() {
    let app = spawn_app().await;
    app.create_product(product("Mug", "MUG-1", 900)).await;
    let mut draft = product("Secret", "SECRET-1", 900);
    draft["status"] = json!("draft");
    app.create_product(draft).await;

    for (body, field, code) in [
        (json!({ "sku": "NOPE", "quantity": 1 }), "sku", "unknown_sku"),
        (json!({ "sku": "SECRET-1", "quantity": 1 }), "sku", "not_published"),
        (json!({ "sku": "MUG-1", "quantity": 0 }), "quantity", "out_of_range"),
        (json!({ "sku": "MUG-1", "quantity": -2 }), "quantity", "out_of_range"),
        (json!({ "sku": "MUG-1", "quantity": 100 }), "quantity", "out_of_range"),
        (json!({ "sku": "MUG-1" }), "quantity", "required"),
    ] {
        let (status, token, err) = cart_call(
            &app,
            Method::POST,
            "/api/v1/cart/items",
            None,
            None,
            None,
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {err}");
        assert!(token.is_none(), "no cart is created by a rejected write");
        let details = err["error"]["details"].as_array().unwrap();
        assert!(
            details.iter().any(|d| d["field"] == field && d["code"] == code),
            "{body} -> {err}"
        );
    }
    let (status, _, err) = cart_call(
        &app,
        Method::POST,
        "/api/v1/cart/items",
        None,
        None,
        None,
        Some(json!({ "sku": "MUG-1", "quantity": 1, "extra": true })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let res = app
        .client
        .post(app.url("/api/v1/cart/items"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    let (status, _, err) = add(&app, Some("not-a-real-token"), "MUG-1", 1).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["error"]["code"], "cart_not_found");
    let forged = "A".repeat(43);
    let (status, _, err) = cart_call(&app, Method::GET, "/api/v1/cart", Some(&forged), None, None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["error"]["code"], "cart_not_found");
    assert_eq!(stock(&app, "MUG-1").await, (5, 0, 5));

    // A guest without a token sees an empty cart.
    let (status, token, cart) = cart_call(&app, Method::GET, "/api/v1/cart", None, None, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(token.is_none());
    assert_eq!(cart["version"], 0);
    assert_eq!(cart["total"]["amount"], 0);
}

#[tokio::test]
async fn if_match_turns_lost_updates_into_412() {
    let app = spawn_app().await;
    app.create_product(product("Pen", "PEN-1", 200)).await;
    app.create_product(product("Ink", "INK-1", 300)).await;
    let (_, token, cart) = add(&app, None, "PEN-1", 1).await;
    let token = token.unwrap();
    assert_eq!(cart["version"], 1);
    let body = json!({ "sku": "INK-1", "quantity": 1 });
    let (status, _, cart) = cart_call(
        &app,
        Method::POST,
        "/api/v1/cart/items",
        Some(&token),
        None,
        Some(1),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{cart}");
    assert_eq!(cart["version"], 2);
    // A second writer that read version 1 loses cleanly.
    let (status, _, err) = cart_call(
        &app,
        Method::POST,
        "/api/v1/cart/items",
        Some(&token),
        None,
        Some(1),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{err}");
    assert_eq!(err["error"]["details"]["current_version"], 2);
    let (_, _, cart) = cart_call(&app, Method::GET, "/api/v1/cart", Some(&token), None, None, None).await;
    assert_eq!(cart["item_count"], 2);
    assert_eq!(stock(&app, "INK-1").await, (5, 1, 4));
}

/// Saves a default address in Berlin for a signed-in user.
async fn save_berlin_address(app: &TestApp, access: &str) {
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/me/addresses",
            Some(access),
            Some(json!({ "name": "T", "line1": "1 Strasse", "city": "Berlin", "postal_code": "10115", "country": "DE", "is_default": true })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn carts_reprice_from_the_catalog_and_tax_by_address() {
    let app = spawn_with(None, |c: &mut Config| {
        c.pricing.tax_bps = [("US-CA".to_string(), 725), ("DE".to_string(), 1900)].into();
    })
    .await;
    app.create_product(product("Chair", "CHAIR-1", 1234)).await;
    let (_, token, cart) = add(&app, None, "CHAIR-1", 1).await;
    let token = token.unwrap();
    assert_eq!(cart["tax"]["amount"], 0);

    let (status, body) = app
        .admin_json(
            Method::PATCH,
            "/api/v1/variants/CHAIR-1",
            json!({ "price": { "amount": 1500, "currency": "USD" } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, _, cart) = cart_call(
        &app,
        Method::GET,
        "/api/v1/cart?country=US&region=ca",
        Some(&token),
        None,
        None,
        None,
    )
    .await;
    let line = &cart["items"][0];
    assert_eq!(line["unit_price"]["amount"], 1500);
    assert_eq!(line["unit_price_at_add"]["amount"], 1234);
    assert_eq!(line["price_changed"], true);
    assert_eq!(cart["subtotal"]["amount"], 1500);
    assert_eq!(cart["tax_region"], "US-CA");
    // 7.25% of 15.00 = 1.0875 -> 109 (half up, once per order); shipping untaxed.
    assert_eq!(cart["tax"]["amount"], 109);
    assert_eq!(cart["total"]["amount"], 1500 + 599 + 109);

    // A signed-in user's default address decides the rate.
    let user = app.register("tax@example.com").await;
    save_berlin_address(&app, &user.access).await;
    let (status, _, cart) = user_add(&app, &user.access, "CHAIR-1", 2).await;
    assert_eq!(status, StatusCode::OK, "{cart}");
    assert_eq!(cart["tax_region"], "DE");
    assert_eq!(cart["tax"]["amount"], 570); // 19% of 30.00
    assert_eq!(cart["shipping"]["amount"], 599);

    // Unpublishing a product flags its line and drops it from the subtotal.
    let product_id = cart["items"][0]["product_id"].as_str().unwrap().to_owned();
    let (status, body) = app
        .admin_json(
            Method::PATCH,
            &format!("/api/v1/products/{product_id}"),
            json!({ "status": "archived" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, _, cart) = cart_call(&app, Method::GET, "/api/v1/cart", None, Some(&user.access), None, None).await;
    assert_eq!(cart["items"][0]["status"], "unavailable");
    assert_eq!(cart["subtotal"]["amount"], 0);
}

async fn login_with_cart(app: &TestApp, email: &str, token: &str) -> (String, Value) {
    let res = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("x-cart-token", token)
        .json(&json!({ "email": email, "password": "correct horse battery" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    (body["access_token"].as_str().unwrap().to_owned(), body)
}

#[tokio::test]
async fn login_merges_the_guest_cart_summing_quantities_and_moving_holds() {
    let app = spawn_app().await;
    app.create_product(product("Sock", "SOCK-1", 500)).await;
    app.create_product(product("Shoe", "SHOE-1", 5000)).await;
    let user = app.register("merge@example.com").await;
    let (status, _, _) = user_add(&app, &user.access, "SOCK-1", 2).await;
    assert_eq!(status, StatusCode::OK);
    let (_, token, _) = add(&app, None, "SOCK-1", 2).await;
    let token = token.unwrap();
    add(&app, Some(&token), "SHOE-1", 1).await;
    assert_eq!(stock(&app, "SOCK-1").await, (5, 4, 1));

    let (access, body) = login_with_cart(&app, &user.email, &token).await;
    assert_eq!(body["cart_merged"], true);
    let (_, _, cart) = cart_call(&app, Method::GET, "/api/v1/cart", None, Some(&access), None, None).await;
    let qty = |sku: &str| {
        cart["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["sku"] == sku)
            .map(|l| (l["quantity"].as_i64().unwrap(), l["held"].as_i64().unwrap()))
    };
    assert_eq!(qty("SOCK-1"), Some((4, 4)));
    assert_eq!(qty("SHOE-1"), Some((1, 1)));
    // Holds moved, not doubled.
    assert_eq!(stock(&app, "SOCK-1").await, (5, 4, 1));
    assert_eq!(stock(&app, "SHOE-1").await, (5, 1, 4));
    // The guest token is retired.
    let (status, _, err) = cart_call(&app, Method::GET, "/api/v1/cart", Some(&token), None, None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["error"]["code"], "cart_expired");
    // A second login with the same token merges nothing.
    let (_, body) = login_with_cart(&app, &user.email, &token).await;
    assert_eq!(body["cart_merged"], false);
}

#[tokio::test]
async fn merge_caps_at_available_stock_in_checkout_mode_and_honours_the_strategy() {
    for (strategy, expected) in [(MergeStrategy::Sum, 3), (MergeStrategy::Max, 2)] {
        let app = spawn_with(None, |c: &mut Config| {
            c.inventory.reserve_on = ReserveOn::Checkout;
            c.cart.merge = strategy;
        })
        .await;
        app.create_product(product("Cap", "CAP-1", 1000)).await;
        set_stock(&app, "CAP-1", 3).await;
        let user = app.register("cap@example.com").await;
        let (status, _, cart) = user_add(&app, &user.access, "CAP-1", 2).await;
        assert_eq!(status, StatusCode::OK, "{cart}");
        assert_eq!(cart["items"][0]["held"], 0, "checkout mode holds nothing in the cart");
        let (_, token, _) = add(&app, None, "CAP-1", 2).await;
        assert_eq!(stock(&app, "CAP-1").await, (3, 0, 3));
        let (access, _) = login_with_cart(&app, &user.email, &token.unwrap()).await;
        let (_, _, cart) = cart_call(&app, Method::GET, "/api/v1/cart", None, Some(&access), None, None).await;
        assert_eq!(cart["items"][0]["quantity"], expected, "{strategy:?}: {cart}");
    }
}

#[tokio::test]
async fn expired_holds_and_carts_are_swept() {
    // Default lifetimes (holds 15 min, guest carts 7 days); the server's clock is moved
    // instead of waiting, and the sweeper runs a step on demand.
    let app = spawn_app().await;
    app.create_product(product("Tea", "TEA-1", 400)).await;
    app.create_product(product("Pot", "POT-1", 400)).await;
    let (_, token, _) = add(&app, None, "TEA-1", 2).await;
    let token = token.unwrap();
    assert_eq!(stock(&app, "TEA-1").await, (5, 2, 3));

    // Nothing lapses before its time.
    app.advance(Duration::from_secs(14 * 60));
    app.run_worker("cart_sweeper").await;
    assert_eq!(stock(&app, "TEA-1").await, (5, 2, 3));

    // The hold lapses first; the line stays.
    app.advance(Duration::from_secs(2 * 60));
    app.run_worker("cart_sweeper").await;
    assert_eq!(stock(&app, "TEA-1").await, (5, 0, 5));
    let (status, _, cart) = cart_call(&app, Method::GET, "/api/v1/cart", Some(&token), None, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (cart["items"][0]["quantity"].as_i64(), cart["items"][0]["held"].as_i64()),
        (Some(2), Some(0))
    );
    // Cart activity holds the lapsed line again.
    let (status, _, cart) = add(&app, Some(&token), "POT-1", 1).await;
    assert_eq!(status, StatusCode::OK, "{cart}");
    assert_eq!(stock(&app, "TEA-1").await, (5, 2, 3));

    // A day short of a week, the cart lives (its holds lapsed again long ago).
    app.advance(Duration::from_secs(6 * 24 * 3600));
    app.run_worker("cart_sweeper").await;
    let (status, _, _) = cart_call(&app, Method::GET, "/api/v1/cart", Some(&token), None, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((stock(&app, "TEA-1").await.1, stock(&app, "POT-1").await.1), (0, 0));

    // Then the whole cart expires: the token answers cart_expired.
    app.advance(Duration::from_secs(24 * 3600 + 120));
    app.run_worker("cart_sweeper").await;
    let (status, _, err) = cart_call(&app, Method::GET, "/api/v1/cart", Some(&token), None, None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["error"]["code"], "cart_expired");
    let (_, _, err) = add(&app, Some(&token), "TEA-1", 1).await;
    assert_eq!(err["error"]["code"], "cart_expired");
    assert_eq!((stock(&app, "TEA-1").await.1, stock(&app, "POT-1").await.1), (0, 0));
}

#[tokio::test]
async fn holds_that_empty_a_sku_reach_listings_and_emit_low_stock() {
    let app = spawn_app().await;
    app.create_product(product("Kite", "KITE-1", 2000)).await;
    let (status, _) = app
        .admin_json(
            Method::PUT,
            "/api/v1/inventory/KITE-1",
            json!({ "on_hand": 4, "low_stock_threshold": 2 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let in_stock = || async {
        let (_, page) = app.get_json("/api/v1/products?in_stock=true").await;
        page["items"].as_array().unwrap().iter().any(|p| p["title"] == "Kite")
    };
    assert!(in_stock().await);

    let (_, token, _) = add(&app, None, "KITE-1", 3).await;
    let token = token.unwrap();
    let (status, events) = app
        .admin_json(Method::GET, "/api/v1/admin/outbox?topic=low_stock", Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);
    let event = &events["items"][0];
    assert_eq!(event["payload"]["sku"], "KITE-1");
    assert_eq!(event["payload"]["available"], 1);
    assert_eq!(events["items"].as_array().unwrap().len(), 1);

    add(&app, Some(&token), "KITE-1", 1).await;
    eventually("the listing to drop the sold-out product", || async {
        !in_stock().await
    })
    .await;
    let (_, page) = app.get_json("/api/v1/products/kite").await;
    assert_eq!(page["variants"][0]["available"], 0);

    cart_call(&app, Method::DELETE, "/api/v1/cart", Some(&token), None, None, None).await;
    eventually("the listing to show the product again", in_stock).await;
    // Outbox events are admin-only.
    let (status, _) = app.get_json("/api/v1/admin/outbox").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// 1,000 concurrent shoppers, 10 units: exactly 10 get a hold, the rest 409; the counters are
/// exact and stay exact after a restart. Each shopper's cart also holds a plentiful SKU, so an
/// all-or-nothing failure must give its other units back.
async fn oversell_run(reserve_on: ReserveOn) {
    let app = spawn_with(None, |c: &mut Config| c.inventory.reserve_on = reserve_on).await;
    app.create_product(product("Rare", "RARE-1", 1000)).await;
    app.create_product(product("Common", "COMMON-1", 100)).await;
    set_stock(&app, "RARE-1", 10).await;
    set_stock(&app, "COMMON-1", 5000).await;

    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let (client, base) = (app.client.clone(), app.base.clone());
        tasks.push(tokio::spawn(async move {
            let send = |token: Option<String>, path: &str, body: Option<Value>| {
                let mut req = client.post(format!("{base}{path}"));
                if let Some(t) = token {
                    req = req.header("x-cart-token", t);
                }
                if let Some(b) = body {
                    req = req.json(&b);
                }
                req.send()
            };
            let res = send(
                None,
                "/api/v1/cart/items",
                Some(json!({ "sku": "COMMON-1", "quantity": 1 })),
            )
            .await
            .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let token = res.headers()["x-cart-token"].to_str().unwrap().to_owned();
            let res = send(
                Some(token.clone()),
                "/api/v1/cart/items",
                Some(json!({ "sku": "RARE-1", "quantity": 1 })),
            )
            .await
            .unwrap();
            let status = match reserve_on {
                ReserveOn::Cart => res.status(),
                ReserveOn::Checkout if res.status() == StatusCode::OK => {
                    // The cart only checked availability; the hold happens at reserve time.
                    send(Some(token), "/api/v1/cart/reserve", None).await.unwrap().status()
                }
                ReserveOn::Checkout => res.status(),
            };
            status
        }));
    }
    let mut ok = 0;
    let mut conflict = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::OK => ok += 1,
            StatusCode::CONFLICT => conflict += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((ok, conflict), (10, 990), "{reserve_on:?}");
    let common_held = match reserve_on {
        ReserveOn::Cart => 1000,
        ReserveOn::Checkout => 10,
    };
    assert_eq!(stock(&app, "RARE-1").await, (10, 10, 0));
    assert_eq!(stock(&app, "COMMON-1").await, (5000, common_held, 5000 - common_held));

    let dir = app.stop().await;
    let app = spawn_with(Some(dir), |c: &mut Config| c.inventory.reserve_on = reserve_on).await;
    assert_eq!(stock(&app, "RARE-1").await, (10, 10, 0));
    assert_eq!(stock(&app, "COMMON-1").await, (5000, common_held, 5000 - common_held));
}

#[tokio::test]
async fn a_thousand_concurrent_shoppers_never_oversell_with_cart_holds() {
    oversell_run(ReserveOn::Cart).await;
}

#[tokio::test]
async fn a_thousand_concurrent_shoppers_never_oversell_with_checkout_holds() {
    oversell_run(ReserveOn::Checkout).await;
}

/// An `X-Cart-Token` that is there names a cart: garbage, an unknown token, an empty value or
/// bytes that are not text get 404 and never start a new cart.
#[tokio::test]
async fn a_bad_cart_token_is_a_404_and_never_makes_a_cart() {
    let app = spawn_app().await;
    app.create_product(product("Token lamp", "TOK-1", 100)).await;
    set_stock(&app, "TOK-1", 5).await;
    let unknown = "A".repeat(43);
    for token in ["garbage", unknown.as_str(), " "] {
        let (status, issued, body) = add(&app, Some(token), "TOK-1", 1).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{token:?}: {body}");
        assert_eq!(body["error"]["code"], "cart_not_found");
        assert!(issued.is_none(), "{token:?} got a new cart");
    }
    let res = app
        .client
        .post(app.url("/api/v1/cart/items"))
        .header(
            "x-cart-token",
            reqwest::header::HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        )
        .json(&json!({ "sku": "TOK-1", "quantity": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res.headers().get("x-cart-token").is_none());
    // Nothing was held: all five are still available.
    assert_eq!(stock(&app, "TOK-1").await, (5, 0, 5));
}

/// `(served from a kept page, rendered)` cart reads so far, from `/metrics`.
async fn cart_reads(app: &TestApp) -> (i64, i64) {
    let text = app.get("/metrics").await.text().await.unwrap();
    let series = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name}{{cache=\"cart\"}}")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} for carts in /metrics"))
    };
    (
        series("storefront_response_cache_hits_total"),
        series("storefront_response_cache_misses_total"),
    )
}

/// Tax in DE, and no sweeper run during the test: a sweep would be a change of its own.
fn pages_config(c: &mut Config) {
    c.pricing.tax_bps = [("DE".to_string(), 1900)].into();
    c.cart.sweep_interval_ms = 24 * 3600 * 1000;
}

#[tokio::test]
async fn a_kept_cart_page_is_served_only_while_everything_it_shows_is_unchanged() {
    let app = spawn_with(None, pages_config).await;
    app.create_product(product("Lamp", "LAMP-1", 1500)).await;
    let (_, token, _) = add(&app, None, "LAMP-1", 2).await;
    let token = token.unwrap();
    let read = || async {
        cart_call(&app, Method::GET, "/api/v1/cart", Some(&token), None, None, None)
            .await
            .2
    };
    // The write rendered the page its reads are served from.
    let before = cart_reads(&app).await;
    assert_eq!(read().await["subtotal"]["amount"], 3000);
    assert_eq!(cart_reads(&app).await.0, before.0 + 1);
    // Each step: the read after a change shows it (rendered anew); the read after that is the
    // same page, served without repricing.
    let mut last = cart_reads(&app).await;
    let mut step = async |what: &str, check: &dyn Fn(&Value)| {
        let changed = read().await;
        check(&changed);
        let again = read().await;
        assert_eq!(again, changed, "{what}: a repeated read answers the same");
        let now = cart_reads(&app).await;
        assert_eq!(
            (now.0 - last.0, now.1 - last.1),
            (1, 1),
            "{what}: one rendering, then one kept page"
        );
        last = now;
    };

    let (status, body) = app
        .admin_json(
            Method::PATCH,
            "/api/v1/variants/LAMP-1",
            json!({ "price": { "amount": 1700, "currency": "USD" } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    step("a new price", &|c| assert_eq!(c["subtotal"]["amount"], 3400)).await;

    let (status, body) = app
        .admin_json(Method::PUT, "/api/v1/inventory/LAMP-1", json!({ "on_hand": 40 }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    step("a stock change", &|c| assert_eq!(c["items"][0]["available"], 38)).await;

    // A promotion that starts in an hour changes nothing now, and everything then.
    let starts = std::time::UNIX_EPOCH + Duration::from_secs(app.clock_secs() as u64 + 3600);
    let (status, body) = app
        .admin_json(
            Method::POST,
            "/api/v1/admin/promotions",
            json!({ "name": "Later", "kind": "percent", "percent": 10,
                    "starts_at": humantime::format_rfc3339_seconds(starts).to_string() }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    step("a promotion not yet running", &|c| {
        assert_eq!(c["discount"]["amount"], 0)
    })
    .await;
    app.advance(Duration::from_secs(3601));
    step("the promotion's start", &|c| assert_eq!(c["discount"]["amount"], 340)).await;

    let (status, body) = app
        .admin_json(
            Method::POST,
            "/api/v1/admin/shipping-zones",
            json!({ "name": "Only DE", "areas": ["DE"], "methods": [
                { "code": "dhl", "name": "DHL", "rate": { "type": "flat", "amount": 900 } } ]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    step("a shipping zone", &|c| assert_eq!(c["shipping_method"], Value::Null)).await;

    // The shopper's own write renders the page that the reads after it are served from.
    let before = cart_reads(&app).await;
    let (status, _, written) = add(&app, Some(&token), "LAMP-1", 1).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(written["item_count"], 3);
    assert_eq!(read().await, written);
    let after = cart_reads(&app).await;
    assert_eq!((after.0 - before.0, after.1 - before.1), (1, 1));

    // A cart with a coupon is priced on every read.
    let (status, body) = app
        .admin_json(
            Method::POST,
            "/api/v1/admin/coupons",
            json!({ "code": "FIVE", "kind": "fixed", "value": 500 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _, _) = cart_call(
        &app,
        Method::POST,
        "/api/v1/cart/coupon",
        Some(&token),
        None,
        None,
        Some(json!({ "code": "FIVE" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let before = cart_reads(&app).await;
    for _ in 0..3 {
        assert_eq!(read().await["coupon"], "FIVE");
    }
    let after = cart_reads(&app).await;
    assert_eq!((after.0 - before.0, after.1 - before.1), (0, 3));

    // A kept page never outlives the cart.
    app.advance(Duration::from_secs(8 * 24 * 3600));
    let (status, _, body) = cart_call(&app, Method::GET, "/api/v1/cart", Some(&token), None, None, None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("cart_expired"))
    );
}

#[tokio::test]
async fn a_signed_in_shoppers_kept_cart_page_follows_their_default_address() {
    let app = spawn_with(None, pages_config).await;
    app.create_product(product("Chair", "CHAIR-1", 1000)).await;
    let user = app.register("pages@example.com").await;
    let (status, _, _) = user_add(&app, &user.access, "CHAIR-1", 1).await;
    assert_eq!(status, StatusCode::OK);
    let read = || async {
        cart_call(&app, Method::GET, "/api/v1/cart", None, Some(&user.access), None, None)
            .await
            .2
    };
    assert_eq!(read().await["tax"]["amount"], 0);
    let before = cart_reads(&app).await;
    assert_eq!(read().await["tax"]["amount"], 0);
    assert_eq!(
        cart_reads(&app).await.0,
        before.0 + 1,
        "the repeated read is a kept page"
    );

    save_berlin_address(&app, &user.access).await;
    let cart = read().await;
    assert_eq!(
        (&cart["tax_region"], &cart["tax"]["amount"]),
        (&json!("DE"), &json!(190))
    );
}
