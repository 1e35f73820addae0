//! Product CRUD, validation, conditional requests and cache invalidation.

use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{product, spawn_app, spawn_with, ADMIN_KEY};

#[tokio::test]
async fn a_created_product_is_readable_by_id_and_slug() {
    let app = spawn_app().await;
    let mut body = product("Trail Runner Shoe", "SHOE-1", 12999);
    body["external_id"] = json!("ext-77");
    body["variants"].as_array_mut().unwrap().push(json!({
        "sku": "SHOE-2", "title": "Wide", "price": { "amount": 13999, "currency": "USD" },
        "compare_at_price": { "amount": 15999, "currency": "USD" }, "attributes": { "width": "wide" }
    }));
    let created = app.create_product(body).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["slug"], "trail-runner-shoe");
    assert_eq!(created["version"], 1);

    for key in [id, "trail-runner-shoe"] {
        let (status, doc) = app.get_json(&format!("/api/v1/products/{key}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(doc["id"], id);
        assert_eq!(doc["external_id"], "ext-77");
        assert_eq!(doc["title"], "Trail Runner Shoe");
        assert_eq!(doc["price"], json!({ "amount": 12999, "currency": "USD" }));
        assert_eq!(
            doc["attributes"],
            json!({ "colour": "Black", "weight_g": 120.0, "recycled": false })
        );
        assert_eq!(doc["variants"][0]["available"], 5);
        assert_eq!(doc["variants"][1]["available"], 0);
        assert_eq!(doc["variants"][1]["in_stock"], false);
        assert_eq!(doc["variants"][1]["compare_at_price"]["amount"], 15999);
        assert_eq!(doc["variants"][1]["attributes"]["width"], "wide");
        assert_eq!(doc["in_stock"], true);
        assert_eq!(doc["images"][0]["url"], "https://img.example.com/a.jpg");
    }
}

#[tokio::test]
async fn writes_need_the_admin_key() {
    let app = spawn_app().await;
    let no_token = app
        .client
        .post(app.url("/api/v1/products"))
        .json(&product("x", "X-1", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(no_token.headers()[header::WWW_AUTHENTICATE], "Bearer");
    let wrong = app
        .client
        .post(app.url("/api/v1/products"))
        .bearer_auth("nope")
        .json(&product("x", "X-1", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "error": { "code": "invalid_token", "message": "the access token is invalid" } })
    );
    // Nothing was written.
    let (_, list) = app.get_json("/api/v1/products").await;
    assert_eq!(list["total"], 0);

    let disabled = spawn_with(None, |c| c.auth.admin_api_key.clear()).await;
    let res = disabled
        .client
        .post(disabled.url("/api/v1/products"))
        .bearer_auth(ADMIN_KEY)
        .json(&product("x", "X-1", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "without a configured key it is just an invalid token"
    );
}

#[tokio::test]
async fn every_invalid_field_is_reported_in_one_422() {
    let app = spawn_app().await;
    let (status, body) = app
        .admin_json(
            Method::POST,
            "/api/v1/products",
            json!({
                "title": "",
                "slug": "Not A Slug",
                "category": "no-such-category",
                "images": [{ "url": "javascript:alert(1)" }],
                "variants": [{ "sku": "", "price": { "amount": -5, "currency": "USD" } }]
            }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "validation_failed");
    assert_eq!(body["error"]["message"], "one or more fields are invalid");
    let details = body["error"]["details"].as_array().unwrap();
    let fields: Vec<&str> = details.iter().map(|d| d["field"].as_str().unwrap()).collect();
    assert_eq!(
        fields,
        vec![
            "title",
            "variants[0].sku",
            "variants[0].price.amount",
            "slug",
            "images[0].url",
            "category"
        ]
    );
    assert_eq!(
        details[0],
        json!({ "field": "title", "code": "required", "message": "must not be empty" })
    );
    let (_, list) = app.get_json("/api/v1/products").await;
    assert_eq!(list["total"], 0, "a rejected write changes nothing");
}

#[tokio::test]
async fn malformed_bodies_get_400_413_415_and_wrong_types_422() {
    let app = spawn_with(None, |c| c.server.body_limit_bytes = 4096).await;
    let res = app
        .client
        .post(app.url("/api/v1/products"))
        .bearer_auth(ADMIN_KEY)
        .header(header::CONTENT_TYPE, "application/json")
        .body("{\"title\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "malformed_json");

    let res = app
        .client
        .post(app.url("/api/v1/products"))
        .bearer_auth(ADMIN_KEY)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let big = json!({ "title": "x".repeat(10_000) });
    let res = app
        .client
        .post(app.url("/api/v1/products"))
        .bearer_auth(ADMIN_KEY)
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "payload_too_large");

    let (status, body) = app
        .admin_json(Method::POST, "/api/v1/products", json!({ "title": 5 }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["details"][0]["code"], "invalid_type");

    let (status, body) = app
        .admin_json(Method::POST, "/api/v1/products", json!({ "title": "x", "bogus": 1 }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test]
async fn unknown_products_are_404_with_the_error_shape() {
    let app = spawn_app().await;
    let (status, body) = app.get_json("/api/v1/products/does-not-exist").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({ "error": { "code": "not_found", "message": "product not found", "details": { "resource": "product" } } })
    );
    let (status, _) = app
        .get_json("/api/v1/products/0190b5a0-0000-7000-8000-000000000000")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn product_reads_carry_cdn_headers_and_answer_304() {
    let app = spawn_app().await;
    let created = app.create_product(product("Lamp", "LAMP-1", 4500)).await;
    let id = created["id"].as_str().unwrap();
    let res = app.get(&format!("/api/v1/products/{id}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers().clone();
    let etag = h[header::ETAG].to_str().unwrap().to_owned();
    assert!(etag.starts_with("\"v1-"), "{etag}");
    assert_eq!(
        h[header::CACHE_CONTROL],
        "public, max-age=60, s-maxage=300, stale-while-revalidate=60"
    );
    let keys = h["surrogate-key"].to_str().unwrap();
    assert!(keys.split(' ').any(|k| k == format!("product-{id}")), "{keys}");
    assert!(
        !keys.split(' ').any(|k| k.starts_with("brand-")),
        "a brand names no page: {keys}"
    );
    assert_eq!(h["xkey"], h["surrogate-key"]);

    let res = app.get_if_none_match(&format!("/api/v1/products/{id}"), &etag).await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(res.headers()[header::ETAG].to_str().unwrap(), etag);
    assert!(res.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_write_invalidates_the_cached_product_and_its_etag() {
    let app = spawn_app().await;
    let created = app.create_product(product("Old Title", "T-1", 1000)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/products/{id}");
    let first = app.get(&path).await;
    let old_etag = first.headers()[header::ETAG].to_str().unwrap().to_owned();
    // Warm the slug entry too.
    assert_eq!(app.get("/api/v1/products/old-title").await.status(), StatusCode::OK);

    let (status, doc) = app
        .admin_json(
            Method::PATCH,
            &path,
            json!({ "title": "New Title", "slug": "new-title" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(doc["version"], 2);

    let (_, fresh) = app.get_json(&path).await;
    assert_eq!(fresh["title"], "New Title");
    assert_eq!(
        app.get("/api/v1/products/old-title").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get("/api/v1/products/new-title").await.status(), StatusCode::OK);
    let res = app.get_if_none_match(&path, &old_etag).await;
    assert_eq!(res.status(), StatusCode::OK, "the old ETag no longer matches");
    assert!(res.headers()[header::ETAG].to_str().unwrap().starts_with("\"v2-"));
}

#[tokio::test]
async fn if_match_guards_against_lost_updates() {
    let app = spawn_app().await;
    let created = app.create_product(product("Guarded", "G-1", 1000)).await;
    let path = format!("/api/v1/products/{}", created["id"].as_str().unwrap());

    let stale = app
        .client
        .patch(app.url(&path))
        .bearer_auth(ADMIN_KEY)
        .header(header::IF_MATCH, "\"7\"")
        .json(&json!({ "title": "Lost" }))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let body: Value = stale.json().await.unwrap();
    assert_eq!(body["error"]["code"], "precondition_failed");
    assert_eq!(body["error"]["details"]["current_version"], 1);

    let ok = app
        .client
        .patch(app.url(&path))
        .bearer_auth(ADMIN_KEY)
        .header(header::IF_MATCH, "\"1\"")
        .json(&json!({ "title": "Kept" }))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let (_, doc) = app.get_json(&path).await;
    assert_eq!(doc["title"], "Kept");

    let bad = app
        .client
        .delete(app.url(&path))
        .bearer_auth(ADMIN_KEY)
        .header(header::IF_MATCH, "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn slugs_and_skus_are_unique() {
    let app = spawn_app().await;
    app.create_product(product("Same", "DUP-1", 100)).await;
    let mut clash = product("Other", "DUP-1", 100);
    let (status, body) = app.admin_json(Method::POST, "/api/v1/products", clash.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "sku_taken");
    assert_eq!(body["error"]["details"]["sku"], "DUP-1");

    clash["variants"][0]["sku"] = json!("DUP-2");
    clash["slug"] = json!("same");
    let (status, body) = app.admin_json(Method::POST, "/api/v1/products", clash).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "slug_taken");

    // A derived slug that is taken gets a unique suffix instead of failing.
    let second = app.create_product(product("Same", "DUP-3", 100)).await;
    assert!(second["slug"].as_str().unwrap().starts_with("same-"));
}

#[tokio::test]
async fn deleted_products_disappear_from_reads_and_listings() {
    let app = spawn_app().await;
    let created = app.create_product(product("Doomed", "DEL-1", 100)).await;
    let path = format!("/api/v1/products/{}", created["id"].as_str().unwrap());
    assert_eq!(app.get(&path).await.status(), StatusCode::OK);
    let (_, list) = app.get_json("/api/v1/products").await;
    assert_eq!(list["total"], 1);

    let res = app.admin(Method::DELETE, &path, None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path).await.status(), StatusCode::NOT_FOUND);
    let (_, list) = app.get_json("/api/v1/products").await;
    assert_eq!(list["total"], 0);
    assert_eq!(list["items"], json!([]));
    assert_eq!(app.get("/api/v1/inventory/DEL-1").await.status(), StatusCode::NOT_FOUND);
    // The SKU is free again.
    app.create_product(product("Reborn", "DEL-1", 100)).await;
}

#[tokio::test]
async fn variants_can_be_added_and_repriced() {
    let app = spawn_app().await;
    let created = app.create_product(product("Mug", "MUG-S", 1500)).await;
    let id = created["id"].as_str().unwrap();
    let (status, doc) = app
        .admin_json(
            Method::POST,
            &format!("/api/v1/products/{id}/variants"),
            json!({ "sku": "MUG-L", "title": "Large", "price": { "amount": 900, "currency": "USD" }, "stock": 3 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{doc}");
    assert_eq!(doc["variants"].as_array().unwrap().len(), 2);
    assert_eq!(doc["price"]["amount"], 900, "the product price is its cheapest variant");

    let (status, doc) = app
        .admin_json(
            Method::PATCH,
            "/api/v1/variants/MUG-L",
            json!({ "price": { "amount": 2500, "currency": "USD" } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(doc["price"]["amount"], 1500);
    let (_, list) = app.get_json("/api/v1/products?min_price=1000").await;
    assert_eq!(list["items"][0]["price"]["amount"], 1500);

    let (status, body) = app
        .admin_json(
            Method::PATCH,
            "/api/v1/variants/MUG-L",
            json!({ "price": { "amount": 1, "currency": "EUR" } }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["details"][0]["code"], "currency_mismatch");
    let (status, _) = app
        .admin_json(Method::PATCH, "/api/v1/variants/NOPE", json!({ "title": "x" }))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn drafts_are_hidden_from_shoppers() {
    let app = spawn_app().await;
    let mut body = product("Secret", "SEC-1", 100);
    body["status"] = json!("draft");
    let created = app.create_product(body).await;
    assert_eq!(created["status"], "draft");
    let path = format!("/api/v1/products/{}", created["id"].as_str().unwrap());
    assert_eq!(app.get(&path).await.status(), StatusCode::NOT_FOUND);
    let (_, list) = app.get_json("/api/v1/products").await;
    assert_eq!(list["total"], 0);

    let (status, _) = app
        .admin_json(Method::PATCH, &path, json!({ "status": "published" }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.get(&path).await.status(), StatusCode::OK);
    let (_, list) = app.get_json("/api/v1/products").await;
    assert_eq!(list["total"], 1);
}

/// Cached pages go out compressed as `Accept-Encoding` asks (br, zstd, gzip), from the router
/// on a miss and the fast path on a hit alike, each coding with its own ETag; bodies made per
/// request are compressed too.
#[tokio::test]
async fn responses_are_compressed_by_accept_encoding_with_an_etag_per_coding() {
    use std::io::Read;
    let app = spawn_app().await;
    let mut body = product("Compressed lamp", "GZ-1", 1000);
    body["description"] = json!("A lamp that lights the room evenly. ".repeat(40));
    app.create_product(body).await;
    let path = "/api/v1/products/compressed-lamp";
    let plain = app.get(path).await;
    assert_eq!(plain.headers()["vary"], "accept-encoding");
    assert!(plain.headers().get("content-encoding").is_none());
    let plain_etag = plain.headers()["etag"].to_str().unwrap().to_owned();
    let plain = plain.bytes().await.unwrap();
    let decode = |coding: &str, bytes: &[u8]| -> Vec<u8> {
        let mut out = Vec::new();
        match coding {
            "br" => brotli::BrotliDecompress(&mut &bytes[..], &mut out).unwrap(),
            "zstd" => out = zstd::decode_all(bytes).unwrap(),
            _ => {
                flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
            }
        }
        out
    };
    for (accept, coding) in [("gzip, deflate, br", "br"), ("zstd, gzip", "zstd"), ("gzip", "gzip")] {
        let mut etags = Vec::new();
        for _ in 0..2 {
            // The second read is a fast-path hit.
            let res = app
                .client
                .get(app.url(path))
                .header("accept-encoding", accept)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            assert_eq!(res.headers()["content-encoding"], coding, "{accept}");
            assert_eq!(res.headers()["vary"], "accept-encoding");
            let etag = res.headers()["etag"].to_str().unwrap().to_owned();
            assert_eq!(etag, format!("{}-{coding}\"", plain_etag.trim_end_matches('"')));
            let bytes = res.bytes().await.unwrap();
            assert!(
                bytes.len() < plain.len() / 2,
                "{coding}: {} of {}",
                bytes.len(),
                plain.len()
            );
            assert_eq!(decode(coding, &bytes), plain.as_ref(), "{coding}");
            etags.push(etag);
        }
        assert_eq!(etags[0], etags[1]);
        let res = app
            .client
            .get(app.url(path))
            .header("accept-encoding", accept)
            .header("if-none-match", &etags[0])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(res.headers()["etag"], etags[0].as_str());
    }
    // A body made per request: the API document.
    let res = app
        .client
        .get(app.url("/openapi.json"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-encoding"], "gzip");
    let doc: Value = serde_json::from_slice(&decode("gzip", &res.bytes().await.unwrap())).unwrap();
    assert!(doc["paths"].is_object());
}
