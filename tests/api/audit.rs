//! The audit log: admin, seller and money actions with who, when, from where, and the
//! resource before and after; shoppers' own writes are not in it; it is for admins, newest
//! first, filtered, and survives a restart.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::checkout::{guest_body, CARD_OK};
use crate::helpers::{product, spawn_app, spawn_with, TestApp, ADMIN_KEY};

async fn audit(app: &TestApp, query: &str) -> Value {
    let (status, page) = app
        .call(
            Method::GET,
            &format!("/api/v1/admin/audit{query}"),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page
}

#[tokio::test]
async fn admin_seller_and_money_actions_are_audited_with_before_and_after() {
    let app = spawn_app().await;
    let created = app.create_product(product("Audited lamp", "AUD-1", 1000)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, _) = app
        .admin_json(
            Method::PATCH,
            &format!("/api/v1/products/{id}"),
            json!({ "title": "Audited lamp II" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .admin_json(Method::PATCH, &format!("/api/v1/products/{id}"), json!({ "title": 7 }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, hook) = app
        .admin_json(
            Method::POST,
            "/api/v1/admin/webhooks",
            json!({ "url": "https://hooks.example.com/x", "events": ["*"], "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    app.admin_json(Method::PUT, "/api/v1/inventory/AUD-1", json!({ "on_hand": 5 }))
        .await;

    // A shopper's own writes are not audited; the guest's cancellation (money) is.
    let shopper = app.register("shopper@example.com").await;
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/me/wishlist",
            Some(&shopper.access),
            Some(json!({ "product_id": id })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let cart = app.guest_add(None, "AUD-1", 1).await;
    let order = app
        .checkout(Some(&cart), None, Some("audit-1"), &guest_body(CARD_OK))
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
    let order_id = order.body["id"].as_str().unwrap();
    let token = order.body["order_token"].as_str().unwrap();
    let res = app
        .client
        .post(app.url(&format!("/api/v1/orders/{order_id}/cancel?token={token}")))
        .header("idempotency-key", "audit-cancel-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{:?}", res.text().await);

    let page = audit(&app, "").await;
    let items = page["items"].as_array().unwrap();
    let paths: Vec<(&str, &str, u64)> = items
        .iter()
        .map(|e| {
            (
                e["method"].as_str().unwrap(),
                e["path"].as_str().unwrap(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let product_path = format!("/api/v1/products/{id}");
    let cancel_path = format!("/api/v1/orders/{order_id}/cancel");
    assert_eq!(
        paths,
        [
            ("POST", cancel_path.as_str(), 200),
            ("PUT", "/api/v1/inventory/AUD-1", 200),
            ("POST", "/api/v1/admin/webhooks", 201),
            ("PATCH", product_path.as_str(), 422),
            ("PATCH", product_path.as_str(), 200),
            ("POST", "/api/v1/products", 201),
        ],
        "newest first; no shopper writes"
    );
    let cancel = &items[0];
    assert_eq!(
        (&cancel["actor"], &cancel["role"]),
        (&json!("anonymous"), &json!("anonymous"))
    );
    assert_eq!(cancel["before"]["status"], "confirmed", "{cancel}");
    assert_eq!(cancel["after"]["status"], "cancelled");
    let hook_entry = &items[2];
    assert_eq!(hook_entry["request"]["secret"], "[redacted]");
    assert_eq!(hook_entry["after"]["secret"], "[redacted]");
    assert_eq!(hook_entry["after"]["url"], "https://hooks.example.com/x");
    let rename = &items[4];
    assert_eq!(
        (&rename["actor"], &rename["role"]),
        (&json!("system"), &json!("system"))
    );
    assert_eq!(rename["ip"], "127.0.0.1");
    assert_eq!(rename["before"]["title"], "Audited lamp");
    assert_eq!(rename["after"]["title"], "Audited lamp II");
    assert_eq!(rename["request"], json!({ "title": "Audited lamp II" }));
    assert!(items[3]["after"].is_null(), "a refused write has no after");
    assert!(items[5]["before"].is_null() && items[5]["after"]["id"] == id.as_str());

    // Filters and pages.
    let page = audit(&app, &format!("?path={id}&method=patch")).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let first = audit(&app, "?limit=2").await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = audit(&app, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(second["items"][0]["path"], "/api/v1/admin/webhooks");
    assert!(audit(&app, "?actor=nobody").await["items"]
        .as_array()
        .unwrap()
        .is_empty());
    let (status, body) = app
        .call(
            Method::GET,
            "/api/v1/admin/audit?from=yesterday&cursor=x",
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = app
        .call(Method::GET, "/api/v1/admin/audit", Some(&shopper.access), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.call(Method::GET, "/api/v1/admin/audit", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Sellers' writes are audited under their id.
    let (status, _) = app
        .admin_json(Method::POST, "/api/v1/sellers", json!({ "name": "Shop A" }))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let seller = app.register("seller@example.com").await;
    let seller = app.promote(&seller, "seller", Some("shop-a")).await;
    let mut own = product("Seller lamp", "SEL-1", 500);
    own["seller"] = json!("shop-a");
    let (status, _) = app
        .call(Method::POST, "/api/v1/products", Some(&seller.access), Some(own))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let page = audit(&app, &format!("?actor={}", seller.id)).await;
    assert_eq!(page["items"][0]["role"], "seller");
    assert_eq!(page["items"][0]["path"], "/api/v1/products");

    // Append-only storage: the log is there after a restart.
    let before_restart = audit(&app, "?limit=100").await;
    let dir = app.stop().await;
    let app = spawn_with(Some(dir), |_| {}).await;
    assert_eq!(audit(&app, "?limit=100").await["items"], before_restart["items"]);
}
