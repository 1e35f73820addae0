//! Listing filters, sorts and cursor pagination.

use std::collections::HashSet;

use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{error_fields, product, spawn_app, TestApp};

/// Builds: Electronics > Audio > Headphones, Electronics > Cameras; 12 products.
async fn seed(app: &TestApp) -> (Value, Value, Value) {
    let electronics = app.create_category("Electronics", None).await;
    app.create_category("Audio", Some("electronics")).await;
    let headphones = app.create_category("Headphones", Some("audio")).await;
    let cameras = app.create_category("Cameras", Some("electronics")).await;
    let (status, seller) = app
        .admin_json(Method::POST, "/api/v1/sellers", json!({ "name": "Sound Shop" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{seller}");
    for i in 0..12 {
        let mut body = product(&format!("Item {i:02}"), &format!("SKU-{i:02}"), 1000 + i * 100);
        body["category"] = json!(if i < 6 { "headphones" } else { "cameras" });
        body["brand"] = json!(if i % 2 == 0 { "Acme" } else { "Bolt" });
        if i % 3 == 0 {
            body["variants"][0]["stock"] = json!(0);
        }
        if i < 4 {
            body["seller"] = json!("sound-shop");
        }
        app.create_product(body).await;
    }
    (electronics, headphones, cameras)
}

fn titles(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn category_filters_include_descendants() {
    let app = spawn_app().await;
    let (electronics, headphones, _) = seed(&app).await;
    let (_, page) = app.get_json("/api/v1/products?category=electronics&limit=100").await;
    assert_eq!(page["total"], 12);
    let (_, page) = app
        .get_json(&format!(
            "/api/v1/products?category={}",
            electronics["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(page["total"], 12, "ids work like slugs");
    let (_, page) = app.get_json("/api/v1/products?category=audio").await;
    assert_eq!(page["total"], 6);
    let (_, page) = app
        .get_json(&format!(
            "/api/v1/products?category={}",
            headphones["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(page["total"], 6);
    let (_, page) = app.get_json("/api/v1/products?category=cameras&sort=price_asc").await;
    assert_eq!(
        titles(&page),
        vec!["Item 06", "Item 07", "Item 08", "Item 09", "Item 10", "Item 11"]
    );
}

#[tokio::test]
async fn filters_combine_and_sorts_order() {
    let app = spawn_app().await;
    seed(&app).await;
    let (_, page) = app.get_json("/api/v1/products?brand=ACME&sort=price_desc").await;
    assert_eq!(
        titles(&page),
        vec!["Item 10", "Item 08", "Item 06", "Item 04", "Item 02", "Item 00"]
    );
    let (_, page) = app
        .get_json("/api/v1/products?category=cameras&brand=bolt&sort=price_asc")
        .await;
    assert_eq!(titles(&page), vec!["Item 07", "Item 09", "Item 11"]);
    assert_eq!(
        page["total"],
        Value::Null,
        "totals are only exact for unfiltered scopes"
    );
    let (_, page) = app
        .get_json("/api/v1/products?min_price=1300&max_price=1600&sort=price_asc")
        .await;
    assert_eq!(titles(&page), vec!["Item 03", "Item 04", "Item 05", "Item 06"]);
    let (_, page) = app.get_json("/api/v1/products?min_price=1300&max_price=1600").await;
    assert_eq!(
        titles(&page),
        vec!["Item 06", "Item 05", "Item 04", "Item 03"],
        "newest first by default"
    );
    let (_, page) = app
        .get_json("/api/v1/products?in_stock=true&category=headphones&sort=price_asc")
        .await;
    assert_eq!(titles(&page), vec!["Item 01", "Item 02", "Item 04", "Item 05"]);
    let (_, page) = app.get_json("/api/v1/products?seller=sound-shop&sort=price_asc").await;
    assert_eq!(titles(&page), vec!["Item 00", "Item 01", "Item 02", "Item 03"]);
    assert_eq!(page["total"], 4);
    let (_, page) = app
        .get_json("/api/v1/products?seller=sound-shop&brand=bolt&sort=price_asc")
        .await;
    assert_eq!(titles(&page), vec!["Item 01", "Item 03"]);
    assert!(page["items"][0]["seller_id"].is_string());
}

#[tokio::test]
async fn cursors_walk_every_product_exactly_once() {
    let app = spawn_app().await;
    seed(&app).await;
    for sort in ["newest", "price_asc", "price_desc", "rating"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/products?limit=5&sort={sort}&cursor={c}"),
                None => format!("/api/v1/products?limit=5&sort={sort}"),
            };
            let (status, page) = app.get_json(&path).await;
            assert_eq!(status, StatusCode::OK);
            seen.extend(titles(&page));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 12, "{sort}: {seen:?}");
        assert_eq!(
            seen.iter().collect::<HashSet<_>>().len(),
            12,
            "{sort}: duplicates in {seen:?}"
        );
    }
}

#[tokio::test]
async fn bad_listing_parameters_are_rejected() {
    let app = spawn_app().await;
    seed(&app).await;
    let (status, body) = app
        .get_json("/api/v1/products?limit=500&sort=cheapest&min_price=9&max_price=1")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields = error_fields(&body);
    assert_eq!(fields, vec!["limit", "min_price", "sort"]);
    let (status, body) = app.get_json("/api/v1/products?category=nowhere").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["details"][0]["field"], "category");
    let (status, body) = app.get_json("/api/v1/products?cursor=!!!").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_cursor");
    // A cursor from another listing is refused rather than silently misread.
    let (_, page) = app.get_json("/api/v1/products?limit=2&category=cameras").await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let (status, _) = app
        .get_json(&format!("/api/v1/products?limit=2&category=audio&cursor={cursor}"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn listings_are_cdn_cacheable_and_invalidated_by_writes() {
    let app = spawn_app().await;
    seed(&app).await;
    let res = app.get("/api/v1/products?category=cameras").await;
    let etag = res.headers()[header::ETAG].to_str().unwrap().to_owned();
    let keys = res.headers()["surrogate-key"].to_str().unwrap().to_owned();
    assert!(
        keys.starts_with("list-category-"),
        "the scope's listing tag first: {keys}"
    );
    assert!(!keys.split(' ').any(|k| k == "products"), "no catch-all tag: {keys}");
    let res = app.get_if_none_match("/api/v1/products?category=cameras", &etag).await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);

    // A write in another scope leaves this page cached (same ETag)...
    let mut other = product("Item 99", "SKU-99", 5);
    other["category"] = json!("headphones");
    app.create_product(other).await;
    let (_, page) = app.get_json("/api/v1/products?category=cameras").await;
    assert_eq!(page["total"], 6);
    let res = app.get_if_none_match("/api/v1/products?category=cameras", &etag).await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);

    // ...while a write inside it is visible at once.
    let mut camera = product("Item 98", "SKU-98", 5);
    camera["category"] = json!("cameras");
    app.create_product(camera).await;
    let (_, page) = app.get_json("/api/v1/products?category=cameras").await;
    assert_eq!(page["total"], 7);
    assert_eq!(page["items"][0]["title"], "Item 98");
}
