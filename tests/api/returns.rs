//! Returns and exchanges through the server: asking within the window for delivered lines
//! only, review by the seller or an admin with validated states, receipt that restocks and
//! refunds through the provider, exchanges that hold, sell and ship the other variant and
//! charge or refund the difference, and returns racing each other and a cancel.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use storefront::config::Config;

use crate::checkout::{address, CARD_OK};
use crate::helpers::{error_fields, spawn_app, spawn_with, Session, TestApp};

/// A shirt in three sizes (S 15.00, M 20.00, L 25.00), 5 of each.
fn shirt() -> Value {
    let variant = |size: &str, price: i64| json!({ "sku": format!("SHIRT-{size}"), "title": size, "price": { "amount": price, "currency": "USD" }, "stock": 5 });
    json!({
        "title": "Shirt", "description": "Cotton", "brand": "Acme",
        "variants": [variant("S", 1500), variant("M", 2000), variant("L", 2500)]
    })
}

/// A customer's order of `quantity` M shirts, delivered. Returns (order, customer).
async fn delivered(app: &TestApp, quantity: i64) -> (Value, Session) {
    app.create_product(shirt()).await;
    let customer = app.register("carol@example.com").await;
    app.user_add(&customer.access, "SHIRT-M", quantity).await;
    let body = json!({ "shipping_address": address(), "payment": { "provider": "test", "card": CARD_OK } });
    let r = app.checkout(None, Some(&customer.access), Some("order"), &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    deliver(app, &id).await;
    (r.body, customer)
}

async fn deliver(app: &TestApp, id: &str) {
    for step in ["shipped", "delivered"] {
        let (status, body) = app
            .admin_json(
                Method::PATCH,
                &format!("/api/v1/orders/{id}/status"),
                json!({ "status": step, "carrier": "UPS", "tracking_number": "1Z" }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{step}: {body}");
    }
}

impl TestApp {
    async fn ask_return(&self, order: &Value, who: &Session, lines: Value) -> (StatusCode, Value) {
        let path = format!("/api/v1/orders/{}/returns", order["id"].as_str().unwrap());
        self.call(Method::POST, &path, Some(&who.access), Some(json!({ "lines": lines })))
            .await
    }

    async fn review(&self, ret: &Value, body: Value) -> (StatusCode, Value) {
        let path = format!("/api/v1/returns/{}", ret["id"].as_str().unwrap());
        self.admin_json(Method::PATCH, &path, body).await
    }

    async fn order(&self, order: &Value) -> Value {
        let path = format!("/api/v1/orders/{}", order["id"].as_str().unwrap());
        self.admin_json(Method::GET, &path, Value::Null).await.1
    }
}

fn kinds(timeline: &Value) -> Vec<&str> {
    timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_received_return_is_restocked_and_refunded_through_the_provider_once() {
    let app = spawn_app().await;
    let (order, customer) = delivered(&app, 2).await;
    assert_eq!(app.stock_of("SHIRT-M").await, (3, 0, 3));
    let (status, ret) = app
        .ask_return(
            &order,
            &customer,
            json!([{ "sku": "SHIRT-M", "quantity": 1, "reason": "too small" }]),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ret}");
    assert_eq!(ret["status"], "requested");
    let path = format!("/api/v1/orders/{}/returns", order["id"].as_str().unwrap());
    let (_, list) = app.call(Method::GET, &path, Some(&customer.access), None).await;
    assert_eq!(list["items"][0]["id"], ret["id"]);

    // The customer cannot review it; it cannot be received before it is approved.
    let rpath = format!("/api/v1/returns/{}", ret["id"].as_str().unwrap());
    let (status, _) = app
        .call(
            Method::PATCH,
            &rpath,
            Some(&customer.access),
            Some(json!({ "status": "approved" })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, e) = app.review(&ret, json!({ "status": "received" })).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("invalid_transition"))
    );
    assert_eq!(e["error"]["details"]["allowed"], json!(["approved", "rejected"]));

    let (status, approved) = app
        .review(&ret, json!({ "status": "approved", "note": "send it back" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["note"], "send it back");
    let (status, received) = app.review(&ret, json!({ "status": "received" })).await;
    assert_eq!(status, StatusCode::OK, "{received}");
    assert_eq!(received["status"], "received");
    assert_eq!(received["refunded"]["amount"], 2000);
    assert_eq!(received["restocked"], true);
    assert_eq!(app.stock_of("SHIRT-M").await, (4, 0, 4), "the unit is back on hand");

    let (status, e) = app.review(&ret, json!({ "status": "received" })).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("invalid_transition"))
    );
    let o = app.order(&order).await;
    assert_eq!(o["payment"]["refunded"]["amount"], 2000, "refunded once");
    assert_eq!(o["status"], "partially_refunded");
    let (_, timeline) = app
        .admin_json(
            Method::GET,
            &format!("/api/v1/orders/{}/timeline", order["id"].as_str().unwrap()),
            Value::Null,
        )
        .await;
    let k = kinds(&timeline);
    for kind in ["return_requested", "return_approved", "return_received"] {
        assert!(k.contains(&kind), "{kind} in {k:?}");
    }
    assert_eq!(app.outbox("return_requested").await.len(), 1);
    let refunds = app.outbox("refund_issued").await;
    assert_eq!(refunds.len(), 1);
    // The unit returned cannot be returned again; the other can.
    let (status, e) = app
        .ask_return(
            &order,
            &customer,
            json!([{ "sku": "SHIRT-M", "quantity": 2, "reason": "again" }]),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(error_fields(&e), vec!["lines[0].quantity"]);
}

#[tokio::test]
async fn returns_take_delivered_lines_within_the_window_with_a_reason() {
    let app = spawn_app().await;
    app.create_product(shirt()).await;
    let customer = app.register("dan@example.com").await;
    app.user_add(&customer.access, "SHIRT-S", 1).await;
    let body = json!({ "shipping_address": address(), "payment": { "provider": "test", "card": CARD_OK } });
    let r = app.checkout(None, Some(&customer.access), Some("o"), &body).await;
    let order = r.body;
    let (status, e) = app
        .ask_return(
            &order,
            &customer,
            json!([{ "sku": "SHIRT-S", "quantity": 1, "reason": "meh" }]),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "not delivered yet: {e}");
    assert_eq!(error_fields(&e), vec!["lines[0].sku"]);
    deliver(&app, order["id"].as_str().unwrap()).await;

    let (status, e) = app
        .ask_return(
            &order,
            &customer,
            json!([
                { "sku": "NOPE", "quantity": 1, "reason": "x" },
                { "sku": "SHIRT-S", "quantity": 2, "reason": "" },
                { "sku": "SHIRT-S", "quantity": 1, "reason": "ok", "exchange_for": "OTHER-1" }
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(
        error_fields(&e),
        vec![
            "lines[0].sku",
            "lines[1].quantity",
            "lines[1].reason",
            "lines[2].exchange_for"
        ]
    );
    let (status, e) = app.ask_return(&order, &customer, json!([])).await;
    assert_eq!(
        (status, error_fields(&e)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["lines"])
    );

    // Another customer cannot see the order; a seller-less order has no seller to ask.
    let eve = app.register("eve@example.com").await;
    let (status, _) = app
        .ask_return(
            &order,
            &eve,
            json!([{ "sku": "SHIRT-S", "quantity": 1, "reason": "mine" }]),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    app.advance(Duration::from_secs(31 * 24 * 3600));
    let customer = app.login(&customer.email).await;
    let (status, e) = app
        .ask_return(
            &order,
            &customer,
            json!([{ "sku": "SHIRT-S", "quantity": 1, "reason": "late" }]),
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("return_window_closed"))
    );
    let (_, list) = app
        .call(
            Method::GET,
            &format!("/api/v1/orders/{}/returns", order["id"].as_str().unwrap()),
            Some(&customer.access),
            None,
        )
        .await;
    assert_eq!(list["items"], json!([]), "nothing was recorded");
}

#[tokio::test]
async fn an_exchange_holds_the_other_variant_ships_it_and_charges_the_difference_with_tax() {
    let app = spawn_with(None, |c: &mut Config| c.pricing.default_tax_bps = 1_000).await;
    let (order, customer) = delivered(&app, 1).await;
    assert_eq!(order["total"]["amount"], 2000 + 200 + 599);
    let (status, ret) = app
        .ask_return(
            &order,
            &customer,
            json!([{ "sku": "SHIRT-M", "quantity": 1, "reason": "too small", "exchange_for": "SHIRT-L" }]),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ret}");
    assert_eq!(ret["lines"][0]["exchange_unit_price"]["amount"], 2500);
    let (status, _) = app.review(&ret, json!({ "status": "approved" })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.stock_of("SHIRT-L").await, (5, 1, 4), "approval holds the large one");

    let (status, received) = app.review(&ret, json!({ "status": "received" })).await;
    assert_eq!(status, StatusCode::OK, "{received}");
    // Paid for M: 20.00 + 2.00 tax. L costs 25.00 + 2.50 tax: 5.50 more.
    assert_eq!(
        (
            received["charged"]["amount"].as_i64(),
            received["refunded"]["amount"].as_i64()
        ),
        (Some(550), Some(0))
    );
    assert_eq!(app.stock_of("SHIRT-L").await, (4, 0, 4), "sold out of the hold");
    assert_eq!(app.stock_of("SHIRT-M").await, (5, 0, 5), "the returned M is back");
    let o = app.order(&order).await;
    let items = o["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        (items[1]["sku"].as_str(), items[1]["quantity"].as_i64()),
        (Some("SHIRT-L"), Some(1))
    );
    let shipments = o["fulfilments"].as_array().unwrap();
    assert_eq!(shipments.len(), 2);
    assert_eq!(shipments[1]["status"], "pending", "the exchange ships as a new parcel");
    assert_eq!(o["payment"]["captured"]["amount"], 2799 + 550);
    // The new parcel moves like any other.
    let (status, body) = app
        .admin_json(
            Method::PATCH,
            &format!("/api/v1/orders/{}/status", order["id"].as_str().unwrap()),
            json!({ "status": "shipped", "fulfilment_id": shipments[1]["id"], "carrier": "UPS", "tracking_number": "2Z" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_cheaper_exchange_refunds_the_difference_and_stock_decides_approval() {
    let app = spawn_app().await;
    let (order, customer) = delivered(&app, 2).await;
    let (_, ret) = app
        .ask_return(
            &order,
            &customer,
            json!([{ "sku": "SHIRT-M", "quantity": 1, "reason": "too big", "exchange_for": "SHIRT-S" }]),
        )
        .await;
    // The small ones sell out before the return is approved: approval is refused and holds
    // nothing, and the return can still be rejected.
    let (status, _) = app
        .admin_json(Method::PUT, "/api/v1/inventory/SHIRT-S", json!({ "on_hand": 0 }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, e) = app.review(&ret, json!({ "status": "approved" })).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("insufficient_stock"))
    );
    assert_eq!(app.stock_of("SHIRT-S").await, (0, 0, 0));
    app.admin_json(Method::PUT, "/api/v1/inventory/SHIRT-S", json!({ "on_hand": 2 }))
        .await;
    let (status, _) = app.review(&ret, json!({ "status": "approved" })).await;
    assert_eq!(status, StatusCode::OK);
    let (status, received) = app
        .review(&ret, json!({ "status": "received", "restock": false }))
        .await;
    assert_eq!(status, StatusCode::OK, "{received}");
    assert_eq!(
        (
            received["refunded"]["amount"].as_i64(),
            received["charged"]["amount"].as_i64()
        ),
        (Some(500), Some(0))
    );
    assert_eq!(
        app.stock_of("SHIRT-M").await,
        (3, 0, 3),
        "restock: false keeps the returned unit out"
    );
    assert_eq!(app.stock_of("SHIRT-S").await, (1, 0, 1));
    assert_eq!(app.order(&order).await["payment"]["refunded"]["amount"], 500);
}

#[tokio::test]
async fn returns_racing_each_other_and_a_cancel_never_take_more_than_was_bought() {
    let app = spawn_app().await;
    let (order, customer) = delivered(&app, 3).await;
    let id = order["id"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let client = app.client.clone();
        let url = app.url(&format!("/api/v1/orders/{id}/returns"));
        let access = customer.access.clone();
        tasks.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(access)
                .json(&json!({ "lines": [{ "sku": "SHIRT-M", "quantity": 1, "reason": format!("try {i}") }] }))
                .send()
                .await
                .unwrap();
            res.status()
        }));
    }
    let cancel = {
        let client = app.client.clone();
        let url = app.url(&format!("/api/v1/orders/{id}/cancel"));
        let access = customer.access.clone();
        tokio::spawn(async move { client.post(url).bearer_auth(access).send().await.unwrap().status() })
    };
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::UNPROCESSABLE_ENTITY => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 3, "exactly the three units bought");
    assert_eq!(
        cancel.await.unwrap(),
        StatusCode::CONFLICT,
        "a delivered order cannot be cancelled"
    );
    let (_, list) = app
        .call(
            Method::GET,
            &format!("/api/v1/orders/{id}/returns"),
            Some(&customer.access),
            None,
        )
        .await;
    let returns = list["items"].as_array().unwrap().clone();
    assert_eq!(returns.len(), 3);

    // Two receipts of one return at once refund it once.
    app.review(&returns[0], json!({ "status": "approved" })).await;
    let (a, b) = tokio::join!(
        app.review(&returns[0], json!({ "status": "received" })),
        app.review(&returns[0], json!({ "status": "received" }))
    );
    let ok = [a.0, b.0].iter().filter(|s| **s == StatusCode::OK).count();
    assert!(ok >= 1, "{a:?} {b:?}");
    assert!([a.0, b.0]
        .iter()
        .all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT));
    let o = app.order(&order).await;
    assert_eq!(o["payment"]["refunded"]["amount"], 2000);
    assert_eq!(o["status"], "partially_refunded");
    assert_eq!(app.stock_of("SHIRT-M").await, (3, 0, 3));
}

#[tokio::test]
async fn the_seller_of_the_lines_reviews_a_return_and_no_other_seller_can() {
    let app = spawn_app().await;
    let mut sellers = Vec::new();
    for slug in ["north", "south"] {
        let (status, s) = app
            .admin_json(Method::POST, "/api/v1/sellers", json!({ "name": slug, "slug": slug }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{s}");
        let user = app.register(&format!("{slug}@example.com")).await;
        sellers.push(app.promote(&user, "seller", Some(slug)).await);
    }
    let mut body = shirt();
    body["seller"] = json!("north");
    app.create_product(body).await;
    let customer = app.register("carol@example.com").await;
    app.user_add(&customer.access, "SHIRT-M", 1).await;
    let checkout = json!({ "shipping_address": address(), "payment": { "provider": "test", "card": CARD_OK } });
    let order = app
        .checkout(None, Some(&customer.access), Some("o"), &checkout)
        .await
        .body;
    deliver(&app, order["id"].as_str().unwrap()).await;
    let (_, ret) = app
        .ask_return(
            &order,
            &customer,
            json!([{ "sku": "SHIRT-M", "quantity": 1, "reason": "stained" }]),
        )
        .await;
    let path = format!("/api/v1/returns/{}", ret["id"].as_str().unwrap());
    let (status, _) = app
        .call(
            Method::PATCH,
            &path,
            Some(&sellers[1].access),
            Some(json!({ "status": "approved" })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another seller does not see the order");
    let (status, body) = app
        .call(
            Method::PATCH,
            &path,
            Some(&sellers[0].access),
            Some(json!({ "status": "rejected", "note": "worn" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "rejected");
    let (status, e) = app
        .call(
            Method::PATCH,
            &path,
            Some(&sellers[0].access),
            Some(json!({ "status": "approved" })),
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("invalid_transition"))
    );
    // A rejected return frees its units for another request.
    let (status, _) = app
        .ask_return(
            &order,
            &customer,
            json!([{ "sku": "SHIRT-M", "quantity": 1, "reason": "still stained" }]),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}
