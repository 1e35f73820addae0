//! Operations endpoints and router-level behaviour.

use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{product, spawn_app};

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    let (status, body) = app.get_json("/healthz").await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "status": "ok" })));
    let (status, body) = app.get_json("/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ready");
}

#[tokio::test]
async fn metrics_cover_routes_storage_and_caches() {
    let app = spawn_app().await;
    app.create_product(product("Metered", "M-1", 100)).await;
    app.get("/api/v1/products/metered").await;
    app.get("/api/v1/products/metered").await;
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/api/v1/products/{key}",status="200"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_request_duration_seconds_bucket{method="POST",route="/api/v1/products""#),
        "{text}"
    );
    assert!(text.contains("rocksdb_block_cache_capacity_bytes 134217728"), "{text}");
    assert!(text.contains(r#"rocksdb_estimated_keys{cf="products"}"#), "{text}");
    assert!(
        text.contains(r#"storefront_response_cache_hits_total{cache="product"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn the_openapi_document_and_docs_page_are_served() {
    let app = spawn_app().await;
    let (status, spec) = app.get_json("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/products",
        "/api/v1/products/{key}",
        "/api/v1/categories",
        "/api/v1/inventory/{sku}",
        "/healthz",
        "/metrics",
    ] {
        assert!(spec["paths"].get(path).is_some(), "{path} is documented");
    }
    let html = app.get("/docs").await.text().await.unwrap();
    assert!(html.contains("/api/v1/products/{key}"));
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = spawn_app().await;
    let (status, body) = app.get_json("/api/v1/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({ "error": { "code": "route_not_found", "message": "no route matches this path" } })
    );
    let res = app.admin(Method::PUT, "/api/v1/products", Some(json!({}))).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "method_not_allowed"
    );
}

#[tokio::test]
async fn every_response_has_a_request_id() {
    let app = spawn_app().await;
    let a = app.get("/healthz").await;
    let b = app.get("/healthz").await;
    let (a, b) = (a.headers()["x-request-id"].clone(), b.headers()["x-request-id"].clone());
    assert_ne!(a, b);
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123", "a caller's id is kept");
    assert!(res.headers().contains_key(header::CACHE_CONTROL));
}

#[tokio::test]
async fn the_demo_catalog_loads_into_an_empty_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = storefront::config::Config::default();
    config.server.listen = "127.0.0.1:0".into();
    config.storage.data_dir = dir.path().to_path_buf();
    let app = storefront::demo::app(config).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let server = tokio::spawn(app.run_until(std::future::pending()));
    let page: Value = reqwest::get(format!("{base}/api/v1/products?limit=100"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(page["total"].as_u64().unwrap() >= 20, "{page}");
    let first = page["items"][0]["slug"].as_str().unwrap();
    let res = reqwest::get(format!("{base}/api/v1/products/{first}")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    server.abort();
}
