//! Coupons through the server: admin and seller management, a cart's discount with its
//! reasons, a discounted order that gives its use back when it fails, and the race for a
//! coupon's last uses.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use storefront::config::{Config, ReserveOn};

use crate::checkout::{guest_body, CARD_DECLINED, CARD_OK};
use crate::helpers::{error_fields, product, spawn_app, spawn_with, TestApp};

impl TestApp {
    /// `POST /cart/coupon` on a guest cart.
    pub(crate) async fn apply_coupon(&self, cart: &str, code: &str) -> (StatusCode, Value) {
        let res = self
            .client
            .post(self.url("/api/v1/cart/coupon"))
            .header("x-cart-token", cart)
            .json(&json!({ "code": code }))
            .send()
            .await
            .unwrap();
        (res.status(), res.json().await.unwrap())
    }

    /// `DELETE /cart/coupon` on a guest cart.
    pub(crate) async fn remove_coupon(&self, cart: &str) -> (StatusCode, Value) {
        let res = self
            .client
            .delete(self.url("/api/v1/cart/coupon"))
            .header("x-cart-token", cart)
            .send()
            .await
            .unwrap();
        (res.status(), res.json().await.unwrap())
    }

    /// `GET /cart` of a guest cart.
    pub(crate) async fn guest_cart(&self, cart: &str) -> Value {
        let res = self
            .client
            .get(self.url("/api/v1/cart"))
            .header("x-cart-token", cart)
            .send()
            .await
            .unwrap();
        res.json().await.unwrap()
    }

    async fn coupon_uses(&self, code: &str) -> i64 {
        let (status, c) = self
            .admin_json(Method::GET, &format!("/api/v1/admin/coupons/{code}"), Value::Null)
            .await;
        assert_eq!(status, StatusCode::OK, "{c}");
        c["uses"].as_i64().unwrap()
    }
}

/// The field error code a 422 gives `field`.
fn reason<'a>(body: &'a Value, field: &str) -> &'a str {
    body["error"]["details"]
        .as_array()
        .and_then(|d| d.iter().find(|e| e["field"] == field))
        .and_then(|e| e["code"].as_str())
        .unwrap_or_else(|| panic!("no {field} error in {body}"))
}

#[tokio::test]
async fn admins_manage_coupons_and_sellers_only_their_own() {
    let app = spawn_app().await;
    let (status, c) = app
        .admin_json(
            Method::POST,
            "/api/v1/admin/coupons",
            json!({ "code": " summer-10 ", "kind": "percent", "value": 10, "max_uses": 5, "ends_at": "2030-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    assert_eq!(
        (&c["code"], &c["uses"], &c["max_uses"]),
        (&json!("SUMMER-10"), &json!(0), &json!(5))
    );
    assert_eq!(c["ends_at"], "2030-01-01T00:00:00.000Z");
    let (status, err) = app
        .admin_json(
            Method::POST,
            "/api/v1/admin/coupons",
            json!({ "code": "Summer-10", "kind": "fixed", "value": 100 }),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("coupon_taken"))
    );
    // Every bad field at once, and nothing is created.
    let (status, err) = app
        .admin_json(
            Method::POST,
            "/api/v1/admin/coupons",
            json!({ "code": "bad code", "kind": "percent", "value": 150, "products": ["no-such-product"] }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_fields(&err), ["code", "value", "products[0]"]);
    let (_, all) = app.admin_json(Method::GET, "/api/v1/admin/coupons", Value::Null).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);

    // A patch keeps what it does not name; the code cannot change.
    let (status, c) = app
        .admin_json(Method::PATCH, "/api/v1/admin/coupons/summer-10", json!({ "value": 15 }))
        .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(
        (&c["value"], &c["kind"], &c["max_uses"]),
        (&json!(15), &json!("percent"), &json!(5))
    );
    let (status, err) = app
        .admin_json(
            Method::PATCH,
            "/api/v1/admin/coupons/SUMMER-10",
            json!({ "code": "WINTER" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_fields(&err), ["code"]);

    // Customers are refused; a seller sees and changes only their own coupons.
    let customer = app.register("cora@example.com").await;
    let (status, _) = app
        .call(Method::GET, "/api/v1/admin/coupons", Some(&customer.access), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .admin_json(
            Method::POST,
            "/api/v1/sellers",
            json!({ "name": "North", "slug": "north" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let user = app.register("north@example.com").await;
    let seller = app.promote(&user, "seller", Some("north")).await;
    let (status, own) = app
        .call(
            Method::POST,
            "/api/v1/admin/coupons",
            Some(&seller.access),
            Some(json!({ "code": "NORTH5", "kind": "fixed", "value": 500 })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{own}");
    assert!(own["seller_id"].is_string());
    let (_, listed) = app
        .call(Method::GET, "/api/v1/admin/coupons", Some(&seller.access), None)
        .await;
    let codes: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["NORTH5"]);
    for method in [Method::GET, Method::DELETE] {
        let (status, _) = app
            .call(method, "/api/v1/admin/coupons/SUMMER-10", Some(&seller.access), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "not the seller's");
    }
    let (status, _) = app
        .admin_json(Method::DELETE, "/api/v1/admin/coupons/summer-10", Value::Null)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .admin_json(Method::GET, "/api/v1/admin/coupons/SUMMER-10", Value::Null)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_cart_shows_the_discount_per_line_or_why_there_is_none() {
    let app = spawn_app().await;
    let audio = app.create_category("Audio", None).await;
    let mut speaker = product("Speaker", "SPK-1", 3333);
    speaker["category"] = audio["id"].clone();
    app.create_product(speaker).await;
    app.create_product(product("Cable", "CBL-1", 1000)).await;
    for body in [
        json!({ "code": "AUDIO15", "kind": "percent", "value": 15, "categories": ["audio"] }),
        json!({ "code": "BIG", "kind": "fixed", "value": 500, "min_subtotal": 100000 }),
        json!({ "code": "OVER", "kind": "fixed", "value": 500, "ends_at": "2001-01-01T00:00:00Z" }),
    ] {
        let (status, c) = app.admin_json(Method::POST, "/api/v1/admin/coupons", body).await;
        assert_eq!(status, StatusCode::CREATED, "{c}");
    }
    let cart = app.guest_add(None, "SPK-1", 3).await;
    app.guest_add(Some(&cart), "CBL-1", 1).await;

    for (code, why) in [
        ("NOPE", "coupon_not_found"),
        ("big", "coupon_min_subtotal"),
        ("over", "coupon_expired"),
    ] {
        let (status, err) = app.apply_coupon(&cart, code).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        assert_eq!(reason(&err, "code"), why);
    }
    assert!(
        app.guest_cart(&cart).await["coupon"].is_null(),
        "a refused code is not kept"
    );

    // 15% of the speakers only (3 × 33.33 = 99.99 → 14.99, rounded down), none on the cable.
    let (status, c) = app.apply_coupon(&cart, "audio15").await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["coupon"], "AUDIO15");
    assert_eq!(c["discount"]["amount"], 1499);
    let discounts: Vec<i64> = c["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["discount"]["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(discounts, [1499, 0]);
    assert_eq!(
        c["total"]["amount"].as_i64().unwrap(),
        c["subtotal"]["amount"].as_i64().unwrap() - 1499
            + c["shipping"]["amount"].as_i64().unwrap()
            + c["tax"]["amount"].as_i64().unwrap()
    );

    // The coupon stays on the cart; without an eligible line it says why it takes nothing.
    let speaker_line = c["items"][0]["item_id"].as_str().unwrap().to_owned();
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/cart/items/{speaker_line}")))
        .header("x-cart-token", &cart)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let c = app.guest_cart(&cart).await;
    assert_eq!(
        (&c["coupon"], &c["coupon_problem"]),
        (&json!("AUDIO15"), &json!("coupon_not_applicable"))
    );
    assert_eq!(c["discount"]["amount"], 0);
    // And checkout refuses it with the reason, keeping the cart.
    let r = app.checkout(Some(&cart), None, Some("c1"), &guest_body(CARD_OK)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(reason(&r.body, "coupon"), "coupon_not_applicable");
    let (status, c) = app.remove_coupon(&cart).await;
    assert_eq!(status, StatusCode::OK);
    assert!(c["coupon"].is_null() && c["coupon_problem"].is_null(), "{c}");
}

#[tokio::test]
async fn a_discounted_order_takes_a_use_and_a_failed_one_gives_it_back() {
    let app = spawn_app().await;
    app.create_product(product("Kettle", "KET-1", 4000)).await;
    let (status, _) = app
        .admin_json(
            Method::POST,
            "/api/v1/admin/coupons",
            json!({ "code": "TENNER", "kind": "fixed", "value": 1000, "max_uses_per_customer": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let cart = app.guest_add(None, "KET-1", 1).await;
    let (status, priced) = app.apply_coupon(&cart, "TENNER").await;
    assert_eq!(status, StatusCode::OK);

    // A declined card: the order fails and the use comes back.
    let r = app
        .checkout(Some(&cart), None, Some("k1"), &guest_body(CARD_DECLINED))
        .await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(app.coupon_uses("TENNER").await, 0);

    let mut body = guest_body(CARD_OK);
    body["expected_total"] = priced["total"].clone();
    let r = app.checkout(Some(&cart), None, Some("k2"), &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["discount"]["amount"], 1000);
    assert_eq!(r.body["total"], priced["total"]);
    assert_eq!(app.coupon_uses("TENNER").await, 1);

    // The same guest (known by their email at checkout) cannot use it twice; another can.
    let again = app.guest_add(None, "KET-1", 1).await;
    let (status, _) = app.apply_coupon(&again, "tenner").await;
    assert_eq!(status, StatusCode::OK);
    let r = app.checkout(Some(&again), None, Some("k3"), &guest_body(CARD_OK)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "coupon_exhausted");
    let mut other = guest_body(CARD_OK);
    other["email"] = json!("grace@example.com");
    let r = app.checkout(Some(&again), None, Some("k4"), &other).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(app.coupon_uses("TENNER").await, 2);
    // Cancelling an order gives its use back too.
    let (status, cancelled) = app
        .admin_json(
            Method::POST,
            &format!("/api/v1/orders/{}/cancel", r.body["id"].as_str().unwrap()),
            Value::Null,
        )
        .await;
    assert_eq!(
        (status, &cancelled["status"]),
        (StatusCode::OK, &json!("cancelled")),
        "{cancelled}"
    );
    assert_eq!(app.coupon_uses("TENNER").await, 1);
}

#[tokio::test]
async fn a_hundred_shoppers_race_for_ten_uses_and_exactly_ten_get_the_discount() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(Some(dir), |c: &mut Config| c.inventory.reserve_on = ReserveOn::Checkout).await;
    app.create_product(product("Mug", "MUG-1", 1200)).await;
    let (status, _) = app
        .admin_json(Method::PUT, "/api/v1/inventory/MUG-1", json!({ "on_hand": 1000 }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .admin_json(
            Method::POST,
            "/api/v1/admin/coupons",
            json!({ "code": "LAST10", "kind": "percent", "value": 50, "max_uses": 10 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut carts = Vec::new();
    for _ in 0..100 {
        let cart = app.guest_add(None, "MUG-1", 1).await;
        let (status, body) = app.apply_coupon(&cart, "LAST10").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        carts.push(cart);
    }
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for (i, cart) in carts.iter().cloned().enumerate() {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut body = guest_body(CARD_OK);
            body["email"] = json!(format!("shopper{i}@example.com"));
            app.checkout(Some(&cart), None, Some(&format!("s{i}")), &body).await
        }));
    }
    let mut discounted = 0;
    let mut losers = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let r = t.await.unwrap();
        match r.status {
            StatusCode::CREATED => {
                assert_eq!(r.body["discount"]["amount"], 600, "{}", r.body);
                discounted += 1;
            }
            StatusCode::CONFLICT => {
                assert_eq!(r.body["error"]["code"], "coupon_exhausted", "{}", r.body);
                losers.push(i);
            }
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert_eq!(discounted, 10);
    assert_eq!(losers.len(), 90);
    let kept = app.guest_cart(&carts[losers[0]]).await;
    assert_eq!(kept["item_count"], 1, "a refused shopper keeps their cart: {kept}");
    assert_eq!(kept["coupon_problem"], "coupon_exhausted");
    assert_eq!(app.coupon_uses("LAST10").await, 10);
    let app = std::sync::Arc::try_unwrap(app).ok().unwrap();
    let dir = app.stop().await;
    let app = spawn_with(Some(dir), |c: &mut Config| c.inventory.reserve_on = ReserveOn::Checkout).await;
    assert_eq!(app.coupon_uses("LAST10").await, 10, "exact after a restart");
}
