//! Wishlists through the server: add, list, remove, validation, and the alerts they promise
//! (`back_in_stock` after being out, `price_drop` below what was seen), once per change.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{error_fields, spawn_app, TestApp};

fn lamp(stock: i64) -> Value {
    json!({
        "title": "Desk lamp", "description": "Warm light",
        "variants": [
            { "sku": "WL-1", "title": "Black", "price": { "amount": 4000, "currency": "USD" }, "stock": stock },
            { "sku": "WL-2", "title": "White", "price": { "amount": 4500, "currency": "USD" }, "stock": 2 }
        ]
    })
}

async fn alerts(app: &TestApp, topic: &str) -> Vec<Value> {
    app.run_worker("wishlist_alerts").await;
    let (status, events) = app
        .admin_json(Method::GET, &format!("/api/v1/admin/outbox?topic={topic}"), Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);
    events["items"].as_array().unwrap().clone()
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

async fn set_price(app: &TestApp, sku: &str, amount: i64) {
    let (status, body) = app
        .admin_json(
            Method::PATCH,
            &format!("/api/v1/variants/{sku}"),
            json!({ "price": { "amount": amount, "currency": "USD" } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_wishlist_adds_lists_and_removes_and_refuses_what_is_not_there() {
    let app = spawn_app().await;
    let p = app.create_product(lamp(3)).await;
    let id = p["id"].as_str().unwrap();
    let (status, _) = app.call(Method::GET, "/api/v1/me/wishlist", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let user = app.register("wish@example.com").await;
    let add = |body: Value| app.call(Method::POST, "/api/v1/me/wishlist", Some(&user.access), Some(body));
    let (status, list) = add(json!({ "product_id": id })).await;
    assert_eq!(status, StatusCode::CREATED, "{list}");
    assert_eq!(list["items"][0]["product"]["title"], "Desk lamp");
    assert_eq!(list["items"][0]["product"]["in_stock"], true);
    let (status, list) = add(json!({ "product_id": id, "sku": "WL-2" })).await;
    assert_eq!(
        (status, list["items"][0]["sku"].as_str()),
        (StatusCode::OK, Some("WL-2"))
    );
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "one entry per product");

    let (status, body) = add(json!({ "product_id": id, "sku": "NOPE" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_fields(&body), ["sku"]);
    let (status, _) = add(json!({ "product_id": "missing" })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = add(json!({ "sku": "WL-1" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "product_id is required");

    let r = app
        .client
        .get(app.url("/api/v1/me/wishlist"))
        .bearer_auth(&user.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "private, no-store");
    let path = format!("/api/v1/me/wishlist/{id}");
    assert_eq!(
        app.call(Method::DELETE, &path, Some(&user.access), None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call(Method::DELETE, &path, Some(&user.access), None).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, list) = app
        .call(Method::GET, "/api/v1/me/wishlist", Some(&user.access), None)
        .await;
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn back_in_stock_and_price_drop_alert_once_per_change() {
    let app = spawn_app().await;
    let p = app.create_product(lamp(0)).await;
    let id = p["id"].as_str().unwrap();
    let fan = app.register("fan@example.com").await;
    let other = app.register("other@example.com").await;
    for (who, sku) in [(&fan, Some("WL-1")), (&other, None)] {
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/me/wishlist",
                Some(&who.access),
                Some(json!({ "product_id": id, "sku": sku })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    assert!(alerts(&app, "back_in_stock").await.is_empty());

    // The black lamp comes back: the fan (who wants that variant) hears once; the other
    // shopper saw the white one in stock all along.
    set_stock(&app, "WL-1", 5).await;
    let back = alerts(&app, "back_in_stock").await;
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!(back[0]["payload"]["email"], "fan@example.com");
    assert_eq!(back[0]["payload"]["sku"], "WL-1");
    // Stock ticks that change nothing a shopper sees are silent.
    set_stock(&app, "WL-1", 4).await;
    set_stock(&app, "WL-1", 9).await;
    assert_eq!(alerts(&app, "back_in_stock").await.len(), 1);
    // Out and back again is news again.
    set_stock(&app, "WL-1", 0).await;
    assert_eq!(alerts(&app, "back_in_stock").await.len(), 1);
    set_stock(&app, "WL-1", 2).await;
    assert_eq!(alerts(&app, "back_in_stock").await.len(), 2);

    // A price drop of the black lamp reaches both: the fan's variant, and the other's
    // lowest price (40.00 → 35.00).
    set_price(&app, "WL-1", 3500).await;
    let drops = alerts(&app, "price_drop").await;
    assert_eq!(drops.len(), 2, "{drops:?}");
    assert!(drops
        .iter()
        .all(|d| d["payload"]["price"]["amount"] == 3500 && d["payload"]["previous_price"]["amount"] == 4000));
    // A rise is remembered silently; the next drop is measured from it.
    set_price(&app, "WL-1", 5000).await;
    assert_eq!(alerts(&app, "price_drop").await.len(), 2);
    set_price(&app, "WL-1", 4800).await;
    let drops = alerts(&app, "price_drop").await;
    assert_eq!(
        drops.len(),
        3,
        "only the fan: the other's lowest price is the white lamp's 45.00"
    );
    // (Events written in the same millisecond need not list in write order.)
    let to = |email: &str| drops.iter().filter(|d| d["payload"]["email"] == email).count();
    assert_eq!((to("fan@example.com"), to("other@example.com")), (2, 1), "{drops:?}");
    // Running the worker again finds nothing new.
    assert_eq!(alerts(&app, "price_drop").await.len(), 3);
}
