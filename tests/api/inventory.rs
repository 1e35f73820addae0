//! Stock records: reads, writes, conditional writes and their effect on listings.

use reqwest::{header, Method, StatusCode};
use serde_json::json;

use crate::helpers::{product, spawn_app, ADMIN_KEY};

#[tokio::test]
async fn stock_can_be_read_and_set() {
    let app = spawn_app().await;
    let created = app.create_product(product("Kettle", "KET-1", 3000)).await;
    let (status, inv) = app.get_json("/api/v1/inventory/KET-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        inv,
        json!({ "sku": "KET-1", "product_id": created["id"], "on_hand": 5, "reserved": 0, "available": 5, "low_stock_threshold": 0, "version": 1 })
    );

    let (status, inv) = app
        .admin_json(Method::PUT, "/api/v1/inventory/KET-1", json!({ "on_hand": 0 }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(inv["available"], 0);
    assert_eq!(inv["version"], 2);
    let (_, page) = app.get_json("/api/v1/products?in_stock=true").await;
    assert_eq!(
        page["items"],
        json!([]),
        "out-of-stock products leave in-stock listings"
    );
    let (_, doc) = app
        .get_json(&format!("/api/v1/products/{}", created["id"].as_str().unwrap()))
        .await;
    assert_eq!(doc["in_stock"], false, "the cached product page was invalidated");

    let (status, _) = app
        .admin_json(Method::PUT, "/api/v1/inventory/KET-1", json!({ "on_hand": 9 }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, page) = app.get_json("/api/v1/products?in_stock=true").await;
    assert_eq!(page["items"][0]["title"], "Kettle");
}

#[tokio::test]
async fn stock_writes_are_validated_and_conditional() {
    let app = spawn_app().await;
    app.create_product(product("Kettle", "KET-1", 3000)).await;
    let (status, body) = app
        .admin_json(Method::PUT, "/api/v1/inventory/KET-1", json!({ "on_hand": -1 }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["details"][0]["field"], "on_hand");
    let (status, _) = app
        .admin_json(Method::PUT, "/api/v1/inventory/NOPE", json!({ "on_hand": 1 }))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let res = app
        .client
        .put(app.url("/api/v1/inventory/KET-1"))
        .bearer_auth(ADMIN_KEY)
        .header(header::IF_MATCH, "\"4\"")
        .json(&json!({ "on_hand": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    let (_, inv) = app.get_json("/api/v1/inventory/KET-1").await;
    assert_eq!(inv["on_hand"], 5, "a rejected write changes nothing");
    let anonymous = app
        .client
        .put(app.url("/api/v1/inventory/KET-1"))
        .json(&json!({ "on_hand": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

/// The public stock of a SKU must not reveal a product that is not published.
#[tokio::test]
async fn the_stock_of_a_draft_is_only_for_those_who_manage_it() {
    let app = spawn_app().await;
    let mut draft = product("Secret Kettle", "SECRET-1", 900);
    draft["status"] = json!("draft");
    app.create_product(draft).await;
    assert_eq!(
        app.get("/api/v1/inventory/SECRET-1").await.status(),
        StatusCode::NOT_FOUND
    );
    let res = app.admin(Method::GET, "/api/v1/inventory/SECRET-1", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    app.create_product(product("Open Kettle", "OPEN-1", 900)).await;
    assert_eq!(app.get("/api/v1/inventory/OPEN-1").await.status(), StatusCode::OK);
}
