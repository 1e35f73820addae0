//! Automatic promotions through the server: the best promotion per line, a coupon stacked on
//! what is left (or, `exclusive`, instead), paused and expired promotions, and validation.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use storefront::config::Config;
use storefront::domain::promotion::Stacking;

use crate::checkout::{guest_body, CARD_OK};
use crate::helpers::{error_fields, product, spawn_app, spawn_with, TestApp};

/// A speaker (33.33, in Audio), mugs (5.00) and three promotions: 10% off Audio, 3 for 2 on
/// mugs, 5% off everything; plus a 5.00 coupon. Returns a guest cart of 1 speaker and 3 mugs
/// with the coupon on it.
async fn shop(app: &TestApp) -> String {
    let audio = app.create_category("Audio", None).await;
    let mut speaker = product("Speaker", "SPK-1", 3333);
    speaker["category"] = audio["id"].clone();
    app.create_product(speaker).await;
    let mug = app.create_product(product("Mug", "MUG-1", 500)).await;
    for body in [
        json!({ "name": "10% off audio", "kind": "percent", "percent": 10, "categories": ["audio"] }),
        json!({ "name": "3 for 2 on mugs", "kind": "buy_x_get_y", "buy": 2, "get": 1, "products": [mug["id"]] }),
        json!({ "name": "5% off everything", "kind": "percent", "percent": 5 }),
    ] {
        let (status, p) = app.admin_json(Method::POST, "/api/v1/admin/promotions", body).await;
        assert_eq!(status, StatusCode::CREATED, "{p}");
    }
    let (status, _) = app
        .admin_json(
            Method::POST,
            "/api/v1/admin/coupons",
            json!({ "code": "FIVE", "kind": "fixed", "value": 500 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let cart = app.guest_add(None, "SPK-1", 1).await;
    app.guest_add(Some(&cart), "MUG-1", 3).await;
    let (status, _) = app.apply_coupon(&cart, "FIVE").await;
    assert_eq!(status, StatusCode::OK);
    cart
}

fn lines(cart: &Value) -> Vec<(i64, Value)> {
    cart["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["discount"]["amount"].as_i64().unwrap(), l["promotion"].clone()))
        .collect()
}

#[tokio::test]
async fn each_line_gets_its_best_promotion_and_the_coupon_applies_to_what_is_left() {
    let app = spawn_app().await;
    let cart = shop(&app).await;
    let c = app.guest_cart(&cart).await;
    // Speaker: 10% (333, beating 5%); mugs: one of three free (500, beating 5% = 75). The
    // coupon's 500 is then spread over what is left (3000 and 1000): 375 and 125.
    assert_eq!(
        lines(&c),
        [
            (333 + 375, json!("10% off audio")),
            (500 + 125, json!("3 for 2 on mugs"))
        ]
    );
    assert_eq!(c["discount"]["amount"], 1333);
    let r = app.checkout(Some(&cart), None, Some("p1"), &guest_body(CARD_OK)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["discount"]["amount"], 1333);
    assert_eq!(r.body["total"], c["total"]);
    let order_lines: Vec<i64> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["discount"]["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(order_lines, [708, 625]);
}

#[tokio::test]
async fn an_exclusive_coupon_replaces_the_promotions() {
    let app = spawn_with(None, |c: &mut Config| {
        c.pricing.promotion_stacking = Stacking::Exclusive
    })
    .await;
    let cart = shop(&app).await;
    let c = app.guest_cart(&cart).await;
    // The coupon alone, over the full prices: 500 × 3333/4833 = 344.8 and 500 × 1500/4833 =
    // 155.2, the cent left over going to the larger remainder.
    assert_eq!(lines(&c), [(345, Value::Null), (155, Value::Null)]);
    assert_eq!(c["discount"]["amount"], 500);
    // Without the coupon, the promotions are back.
    let (_, c) = app.remove_coupon(&cart).await;
    assert_eq!(c["discount"]["amount"], 833);
}

#[tokio::test]
async fn paused_and_expired_promotions_take_nothing_and_bad_ones_are_refused() {
    let app = spawn_app().await;
    app.create_product(product("Lamp", "LAMP-1", 2000)).await;
    let (_, p) = app
        .admin_json(
            Method::POST,
            "/api/v1/admin/promotions",
            json!({ "name": "Half off", "kind": "percent", "percent": 50 }),
        )
        .await;
    let (status, _) = app
        .admin_json(
            Method::POST,
            "/api/v1/admin/promotions",
            json!({ "name": "Old", "kind": "percent", "percent": 90, "ends_at": "2001-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let cart = app.guest_add(None, "LAMP-1", 1).await;
    assert_eq!(app.guest_cart(&cart).await["discount"]["amount"], 1000);
    let path = format!("/api/v1/admin/promotions/{}", p["id"].as_str().unwrap());
    let (status, paused) = app.admin_json(Method::PATCH, &path, json!({ "active": false })).await;
    assert_eq!(
        (status, &paused["active"], &paused["percent"]),
        (StatusCode::OK, &json!(false), &json!(50))
    );
    assert_eq!(app.guest_cart(&cart).await["discount"]["amount"], 0);

    let (status, err) = app
        .admin_json(
            Method::POST,
            "/api/v1/admin/promotions",
            json!({ "kind": "buy_x_get_y", "buy": 0, "categories": ["nowhere"] }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_fields(&err), ["name", "buy", "get", "categories[0]"]);
    let customer = app.register("pat@example.com").await;
    let (status, _) = app
        .call(Method::GET, "/api/v1/admin/promotions", Some(&customer.access), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.admin_json(Method::DELETE, &path, Value::Null).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, all) = app
        .admin_json(Method::GET, "/api/v1/admin/promotions", Value::Null)
        .await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
}
