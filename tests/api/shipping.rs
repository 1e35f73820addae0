//! Shipping through the server: the `[pricing]` standard method of a store without zones,
//! zones by country, region and `*`, rates by weight band, flat and free over a threshold,
//! the methods a cart can ship with, the method checkout charges, one parcel per seller, and
//! the admin API's validation, conflicts and versions.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::checkout::CARD_OK;
use crate::helpers::{error_fields, product, spawn_app, TestApp, ADMIN_KEY};

fn body_to(country: &str, region: &str, method: Option<&str>) -> Value {
    let mut body = json!({
        "email": "ada@example.com",
        "shipping_address": { "name": "Ada", "line1": "1 Main St", "city": "Town", "postal_code": "12345",
                              "country": country, "region": region },
        "payment": { "provider": "test", "card": CARD_OK }
    });
    if let Some(m) = method {
        body["shipping_method"] = json!(m);
    }
    body
}

impl TestApp {
    async fn get_json_with_cart(&self, path: &str, cart: &str) -> (StatusCode, Value) {
        let res = self
            .client
            .get(self.url(path))
            .header("x-cart-token", cart)
            .send()
            .await
            .unwrap();
        (res.status(), res.json().await.unwrap())
    }

    async fn offers(&self, cart: &str, query: &str) -> (StatusCode, Value) {
        let res = self
            .client
            .get(self.url(&format!("/api/v1/cart/shipping-methods?{query}")))
            .header("x-cart-token", cart)
            .send()
            .await
            .unwrap();
        (res.status(), res.json().await.unwrap())
    }
}

/// `(code, price)` of each offer, in order.
fn priced(offers: &Value) -> Vec<(String, i64)> {
    offers["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["code"].as_str().unwrap().to_owned(),
                o["price"]["amount"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Three zones: the US by weight band (and express, flat), Hawaii on its own, and the rest of
/// the world free over 100.00.
async fn zones(app: &TestApp) -> Value {
    let mut made = Vec::new();
    for zone in [
        json!({ "name": "Domestic", "areas": ["US"], "methods": [
            { "code": "standard", "name": "Ground", "min_days": 3, "max_days": 6,
              "rate": { "type": "weight", "bands": [{ "up_to_grams": 1000, "amount": 500 }, { "up_to_grams": 5000, "amount": 900 }] } },
            { "code": "express", "name": "Express", "min_days": 1, "max_days": 2, "rate": { "type": "flat", "amount": 2500 } }
        ]}),
        json!({ "name": "Islands", "areas": ["us-hi", "US-AK"], "methods": [
            { "code": "island", "name": "Island freight", "min_days": 5, "rate": { "type": "flat", "amount": 1999 } }
        ]}),
        json!({ "name": "World", "areas": ["*"], "methods": [
            { "code": "intl", "name": "International", "min_days": 7, "max_days": 21,
              "rate": { "type": "free_over", "threshold": 10000, "amount": 1500 } }
        ]}),
    ] {
        let (status, z) = app.admin_json(Method::POST, "/api/v1/admin/shipping-zones", zone).await;
        assert_eq!(status, StatusCode::CREATED, "{z}");
        made.push(z);
    }
    made.remove(0)
}

#[tokio::test]
async fn a_store_without_zones_ships_its_standard_method_everywhere() {
    let app = spawn_app().await;
    app.create_product(product("Lamp", "LAMP-1", 1500)).await;
    let cart = app.guest_add(None, "LAMP-1", 1).await;
    let (status, offers) = app.offers(&cart, "country=JP").await;
    assert_eq!(status, StatusCode::OK, "{offers}");
    assert_eq!(priced(&offers), vec![("standard".to_owned(), 599)]);
    assert_eq!(offers["items"][0]["min_days"], 2);
    assert_eq!(offers["items"][0]["max_days"], 5);

    let r = app
        .checkout(Some(&cart), None, Some("k1"), &body_to("JP", "", Some("express")))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(error_fields(&r.body), vec!["shipping_method"]);
    let r = app
        .checkout(Some(&cart), None, Some("k2"), &body_to("JP", "", None))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["shipping"]["amount"], 599);
    assert_eq!(r.body["shipping_method"]["code"], "standard");
    assert_eq!(r.body["total"]["amount"], 1500 + 599);
}

#[tokio::test]
async fn the_most_specific_zone_decides_and_checkout_charges_the_chosen_method() {
    let app = spawn_app().await;
    zones(&app).await;
    let mut lamp = product("Lamp", "LAMP-1", 1500);
    lamp["variants"][0]["weight_grams"] = json!(600);
    app.create_product(lamp).await;
    let (_, page) = app.get_json("/api/v1/products/lamp").await;
    assert_eq!(page["variants"][0]["weight_grams"], 600);
    let cart = app.guest_add(None, "LAMP-1", 2).await;

    // 1 200 g: the second band. Express is dearer, so it comes second.
    let (_, us) = app.offers(&cart, "country=us&region=ca").await;
    assert_eq!(priced(&us), vec![("standard".into(), 900), ("express".into(), 2500)]);
    assert_eq!(
        (us["country"].as_str(), us["region"].as_str()),
        (Some("US"), Some("CA"))
    );
    let (_, hi) = app.offers(&cart, "country=US&region=HI").await;
    assert_eq!(priced(&hi), vec![("island".into(), 1999)]);
    let (_, de) = app.offers(&cart, "country=DE").await;
    assert_eq!(priced(&de), vec![("intl".into(), 1500)]);
    // The cart prices the method asked for, else the cheapest.
    let (_, c) = app
        .get_json_with_cart("/api/v1/cart?country=US&region=CA&shipping_method=express", &cart)
        .await;
    assert_eq!(
        (c["shipping"]["amount"].as_i64(), c["shipping_method"].as_str()),
        (Some(2500), Some("express"))
    );
    let (_, c) = app.get_json_with_cart("/api/v1/cart?country=US&region=CA", &cart).await;
    assert_eq!(
        (c["shipping"]["amount"].as_i64(), c["shipping_method"].as_str()),
        (Some(900), Some("standard"))
    );
    // With zones, a cart that names no destination has no shipping price yet.
    let (_, c) = app.get_json_with_cart("/api/v1/cart", &cart).await;
    assert!(c["shipping_method"].is_null(), "{c}");
    let (status, e) = app.offers(&cart, "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_fields(&e), vec!["country"]);

    // Hawaii's method does not ship to California: 422, and nothing is placed.
    let before = app.stock_of("LAMP-1").await;
    let r = app
        .checkout(Some(&cart), None, Some("a"), &body_to("US", "CA", Some("island")))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(error_fields(&r.body), vec!["shipping_method"]);
    assert!(r.body["error"]["details"][0]["message"]
        .as_str()
        .unwrap()
        .contains("standard, express"));
    assert_eq!(app.stock_of("LAMP-1").await, before, "a refused checkout takes nothing");

    let r = app
        .checkout(Some(&cart), None, Some("b"), &body_to("US", "CA", Some("express")))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let o = &r.body;
    assert_eq!(o["shipping"]["amount"], 2500);
    assert_eq!(o["shipping_method"]["name"], "Express");
    assert_eq!(
        (
            o["shipping_method"]["min_days"].as_u64(),
            o["shipping_method"]["max_days"].as_u64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(o["fulfilments"][0]["shipping"]["amount"], 2500);
    assert_eq!(o["total"]["amount"], 3000 + 2500 + o["tax"]["amount"].as_i64().unwrap());
}

#[tokio::test]
async fn a_parcel_heavier_than_the_last_band_is_not_offered_that_method() {
    let app = spawn_app().await;
    zones(&app).await;
    let mut anvil = product("Anvil", "ANVIL-1", 4000);
    anvil["variants"][0]["weight_grams"] = json!(4000);
    app.create_product(anvil).await;
    let cart = app.guest_add(None, "ANVIL-1", 1).await;
    let (_, us) = app.offers(&cart, "country=US").await;
    assert_eq!(priced(&us), vec![("standard".into(), 900), ("express".into(), 2500)]);
    // Two anvils weigh 8 kg, past the last 5 kg band: only express is left.
    app.guest_add(Some(&cart), "ANVIL-1", 1).await;
    let (_, us) = app.offers(&cart, "country=US").await;
    assert_eq!(priced(&us), vec![("express".into(), 2500)]);
    // A weight changed on the variant counts at once.
    let (status, _) = app
        .admin_json(
            Method::PATCH,
            "/api/v1/variants/ANVIL-1",
            json!({ "weight_grams": 2000 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, us) = app.offers(&cart, "country=US").await;
    assert_eq!(priced(&us), vec![("standard".into(), 900), ("express".into(), 2500)]);
}

#[tokio::test]
async fn each_sellers_parcel_is_charged_on_its_own() {
    let app = spawn_app().await;
    for (name, slug, price) in [("North", "north", 3000), ("South", "south", 6000)] {
        let (status, s) = app
            .admin_json(Method::POST, "/api/v1/sellers", json!({ "name": name, "slug": slug }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{s}");
        let mut body = product(&format!("{name} Chair"), &format!("{}-1", name.to_uppercase()), price);
        body["seller"] = json!(slug);
        app.create_product(body).await;
    }
    // North's 30.00 parcel pays the standard 5.99; South's 60.00 parcel ships free. One
    // order-wide threshold would have shipped both free.
    let cart = app.guest_add(None, "NORTH-1", 1).await;
    app.guest_add(Some(&cart), "SOUTH-1", 1).await;
    let (_, offers) = app.offers(&cart, "country=GB").await;
    let parts: Vec<i64> = offers["items"][0]["per_shipment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["amount"].as_i64().unwrap())
        .collect();
    let mut sorted = parts.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![0, 599]);
    let r = app
        .checkout(Some(&cart), None, Some("k"), &body_to("GB", "", None))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["shipping"]["amount"], 599);
    let per_fulfilment: Vec<i64> = r.body["fulfilments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["shipping"]["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(per_fulfilment, parts, "each shipment carries its own charge");
}

#[tokio::test]
async fn zone_administration_validates_refuses_overlaps_and_checks_versions() {
    let app = spawn_app().await;
    let domestic = zones(&app).await;
    let id = domestic["id"].as_str().unwrap();

    let (status, e) = app
        .admin_json(
            Method::POST,
            "/api/v1/admin/shipping-zones",
            json!({ "name": "", "areas": ["USA", "FR"], "methods": [
                { "code": "Fast!", "name": "Fast", "rate": { "type": "flat", "amount": -5 } },
                { "code": "slow", "name": "Slow", "min_days": 9, "max_days": 2,
                  "rate": { "type": "weight", "bands": [] } }
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let fields = error_fields(&e);
    for f in [
        "name",
        "areas[0]",
        "methods[0].code",
        "methods[0].rate.amount",
        "methods[1].max_days",
        "methods[1].rate.bands",
    ] {
        assert!(fields.contains(&f), "{f} in {fields:?}");
    }

    let (status, e) = app
        .admin_json(
            Method::POST,
            "/api/v1/admin/shipping-zones",
            json!({ "name": "Again", "areas": ["FR", "us"], "methods": [
                { "code": "std", "name": "Std", "rate": { "type": "flat", "amount": 100 } }
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "zone_overlap");
    let (_, all) = app
        .admin_json(Method::GET, "/api/v1/admin/shipping-zones", Value::Null)
        .await;
    assert_eq!(
        all["items"].as_array().unwrap().len(),
        3,
        "a refused zone is not stored"
    );

    // A stale version gets 412; the current one changes the zone.
    let path = format!("/api/v1/admin/shipping-zones/{id}");
    let res = app
        .client
        .patch(app.url(&path))
        .bearer_auth(ADMIN_KEY)
        .header("if-match", "\"7\"")
        .json(&json!({ "name": "Mainland" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    let res = app
        .client
        .patch(app.url(&path))
        .bearer_auth(ADMIN_KEY)
        .header("if-match", "\"1\"")
        .json(&json!({ "methods": [{ "code": "standard", "name": "Ground", "rate": { "type": "flat", "amount": 700 } }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let z: Value = res.json().await.unwrap();
    assert_eq!((z["version"].as_u64(), z["name"].as_str()), (Some(2), Some("Domestic")));

    app.create_product(product("Lamp", "LAMP-1", 1500)).await;
    let cart = app.guest_add(None, "LAMP-1", 1).await;
    let (_, us) = app.offers(&cart, "country=US").await;
    assert_eq!(priced(&us), vec![("standard".into(), 700)]);

    // Without the domestic zone, the US falls to the rest of the world.
    let res = app.admin(Method::DELETE, &path, None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (_, us) = app.offers(&cart, "country=US").await;
    assert_eq!(priced(&us), vec![("intl".into(), 1500)]);
    let res = app.admin(Method::DELETE, &path, None).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // Shoppers may not manage zones.
    let user = app.register("eve@example.com").await;
    let (status, _) = app
        .call(Method::GET, "/api/v1/admin/shipping-zones", Some(&user.access), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
