//! The category tree and its writes.

use reqwest::{header, Method, StatusCode};
use serde_json::json;

use crate::helpers::{error_fields, product, spawn_app};

#[tokio::test]
async fn the_tree_nests_categories_at_any_depth() {
    let app = spawn_app().await;
    app.create_category("Home", None).await;
    app.create_category("Kitchen", Some("home")).await;
    app.create_category("Knives", Some("kitchen")).await;
    app.create_category("Chef Knives", Some("knives")).await;
    let res = app.get("/api/v1/categories").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().contains_key(header::ETAG));
    let tree: serde_json::Value = res.json().await.unwrap();
    let deepest = &tree["items"][0]["children"][0]["children"][0]["children"][0];
    assert_eq!(deepest["name"], "Chef Knives");

    let (status, doc) = app.get_json("/api/v1/categories/knives").await;
    assert_eq!(status, StatusCode::OK);
    let path: Vec<&str> = doc["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["slug"].as_str().unwrap())
        .collect();
    assert_eq!(path, vec!["home", "kitchen", "knives"]);
    assert_eq!(doc["category"]["children"][0]["slug"], "chef-knives");
    let (status, _) = app.get_json("/api/v1/categories/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn moving_a_category_moves_its_products_in_listings() {
    let app = spawn_app().await;
    app.create_category("Sale", None).await;
    app.create_category("Garden", None).await;
    app.create_category("Tools", Some("garden")).await;
    let mut body = product("Spade", "SPADE-1", 2000);
    body["category"] = json!("tools");
    let created = app.create_product(body).await;
    assert_eq!(created["category_path"][0]["slug"], "garden");
    let (_, page) = app.get_json("/api/v1/products?category=garden").await;
    assert_eq!(page["total"], 1);

    let (status, moved) = app
        .admin_json(Method::PATCH, "/api/v1/categories/tools", json!({ "parent": "sale" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    let (_, page) = app.get_json("/api/v1/products?category=garden").await;
    assert_eq!(page["total"], 0);
    let (_, page) = app.get_json("/api/v1/products?category=sale").await;
    assert_eq!(page["total"], 1);
    let (_, doc) = app
        .get_json(&format!("/api/v1/products/{}", created["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        doc["category_path"][0]["slug"], "sale",
        "product pages show the new path"
    );

    let (status, body) = app
        .admin_json(Method::PATCH, "/api/v1/categories/sale", json!({ "parent": "tools" }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["details"][0]["code"], "cycle");
}

#[tokio::test]
async fn category_slugs_are_unique_and_names_required() {
    let app = spawn_app().await;
    app.create_category("Toys", None).await;
    let (status, body) = app
        .admin_json(
            Method::POST,
            "/api/v1/categories",
            json!({ "name": "Games", "slug": "toys" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "slug_taken");
    let (status, body) = app
        .admin_json(Method::POST, "/api/v1/categories", json!({ "parent": "missing" }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields = error_fields(&body);
    assert_eq!(fields, vec!["name", "parent"]);
}

#[tokio::test]
async fn sellers_are_created_by_admins_and_readable_by_anyone() {
    let app = spawn_app().await;
    let (status, seller) = app
        .admin_json(Method::POST, "/api/v1/sellers", json!({ "name": "Ye Olde Shoppe" }))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(seller["slug"], "ye-olde-shoppe");
    let (status, doc) = app
        .get_json(&format!("/api/v1/sellers/{}", seller["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["name"], "Ye Olde Shoppe");
    let (status, _) = app.get_json("/api/v1/sellers/ye-olde-shoppe").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.get_json("/api/v1/sellers/nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
