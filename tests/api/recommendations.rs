//! Recommendations through the server: popular (decayed, per category), frequently bought
//! together from real checkouts, related from co-views with a text fallback for cold
//! products, personalised lists for signed-in shoppers, serve-time filtering of unpublished
//! and out-of-stock products, CDN headers, and a behaviour log that survives a restart.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_with, Session, TestApp};

fn item(title: &str, sku: &str, category: Option<&str>) -> Value {
    json!({
        "title": title, "description": "for recommendations", "category": category,
        "variants": [{ "sku": sku, "price": { "amount": 500, "currency": "USD" }, "stock": 50 }]
    })
}

fn titles(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .map(|p| p["title"].as_str().unwrap().to_owned())
        .collect()
}

impl TestApp {
    async fn buy(&self, who: &Session, skus: &[&str], key: &str) {
        for sku in skus {
            self.user_add(&who.access, sku, 1).await;
        }
        let body = json!({ "shipping_address": crate::checkout::address(), "payment": { "provider": "test", "card": crate::checkout::CARD_OK } });
        let r = self.checkout(None, Some(&who.access), Some(key), &body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }

    async fn reco(&self, path: &str) -> Value {
        self.run_worker("recommendations").await;
        let (status, body) = self.get_json(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }
}

#[tokio::test]
async fn orders_drive_popular_and_frequently_bought_together_and_lists_hide_what_cannot_be_bought() {
    let app = spawn_app().await;
    let kitchen = app.create_category("Kitchen", None).await;
    let kitchen_id = kitchen["id"].as_str().unwrap().to_owned();
    let pan = app.create_product(item("Pan", "PAN", Some(&kitchen_id))).await;
    app.create_product(item("Lid", "LID", Some(&kitchen_id))).await;
    let spatula = app.create_product(item("Spatula", "SPAT", Some(&kitchen_id))).await;
    app.create_product(item("Novel", "BOOK", None)).await;
    app.run_worker("recommendations").await;

    let shoppers = [
        app.register("a@example.com").await,
        app.register("b@example.com").await,
        app.register("c@example.com").await,
    ];
    app.buy(&shoppers[0], &["PAN", "LID"], "o1").await;
    app.buy(&shoppers[1], &["PAN", "LID", "BOOK"], "o2").await;
    app.buy(&shoppers[2], &["PAN", "SPAT"], "o3").await;

    let popular = app.reco("/api/v1/recommendations?type=popular").await;
    assert_eq!(popular["type"], "popular");
    assert_eq!(titles(&popular)[..2], ["Pan", "Lid"], "{popular}");
    let r = app.get("/api/v1/recommendations").await;
    assert!(r.headers()["cache-control"].to_str().unwrap().contains("public"));
    assert!(r.headers()["surrogate-key"]
        .to_str()
        .unwrap()
        .contains("recommendations"));
    let in_kitchen = app
        .reco(&format!("/api/v1/recommendations?category={kitchen_id}"))
        .await;
    assert!(!titles(&in_kitchen).contains(&"Novel".to_string()), "{in_kitchen}");

    let pan_id = pan["id"].as_str().unwrap();
    let fbt = app
        .reco(&format!("/api/v1/products/{pan_id}/frequently-bought-together"))
        .await;
    assert_eq!(
        titles(&fbt),
        ["Lid"],
        "bought together twice; the spatula once is under the minimum support"
    );
    assert_eq!(fbt["product_id"], pan_id);

    // The lid runs out and the spatula is unpublished: neither is listed any more.
    let (status, _) = app
        .admin_json(Method::PUT, "/api/v1/inventory/LID", json!({ "on_hand": 0 }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let spatula_path = format!("/api/v1/products/{}", spatula["id"].as_str().unwrap());
    let (status, _) = app
        .admin_json(Method::PATCH, &spatula_path, json!({ "status": "draft" }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let fbt = app
        .reco(&format!("/api/v1/products/{pan_id}/frequently-bought-together"))
        .await;
    assert_eq!(titles(&fbt), Vec::<String>::new());
    let popular = app.reco("/api/v1/recommendations?limit=10").await;
    assert_eq!(titles(&popular), ["Pan", "Novel"], "{popular}");

    for (path, code) in [
        ("/api/v1/recommendations?type=best", StatusCode::UNPROCESSABLE_ENTITY),
        ("/api/v1/recommendations?limit=0", StatusCode::UNPROCESSABLE_ENTITY),
        ("/api/v1/recommendations?category=nope", StatusCode::NOT_FOUND),
        ("/api/v1/products/nope/related", StatusCode::NOT_FOUND),
    ] {
        assert_eq!(app.get(path).await.status(), code, "{path}");
    }
}

#[tokio::test]
async fn views_relate_products_cold_ones_fall_back_to_text_and_the_log_survives_a_restart() {
    let app = spawn_app().await;
    let tent = app.create_product(item("Dome tent", "TENT", None)).await;
    let bag = app.create_product(item("Sleeping bag", "BAG", None)).await;
    let stove = app.create_product(item("Camping stove", "STOVE", None)).await;
    let mug = app.create_product(item("Red ceramic mug", "MUG-R", None)).await;
    app.create_product(item("Blue ceramic mug", "MUG-B", None)).await;
    app.run_worker("recommendations").await;
    let id = |p: &Value| p["id"].as_str().unwrap().to_owned();
    // Three shoppers look at the tent and then the sleeping bag; one looks at the stove alone.
    for n in 0..3 {
        let who = app.register(&format!("camper{n}@example.com")).await;
        for p in [&tent, &bag] {
            let r = app
                .client
                .get(app.url(&format!("/api/v1/products/{}", id(p))))
                .bearer_auth(&who.access)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
    }
    app.get(&format!("/api/v1/products/{}", id(&stove))).await;
    let related = app
        .reco(&format!("/api/v1/products/{}/related?limit=1", id(&tent)))
        .await;
    assert_eq!(titles(&related), ["Sleeping bag"], "{related}");

    // A product nobody looked at gets the most similar ones by text.
    search_ready(&app).await;
    let cold = app
        .reco(&format!("/api/v1/products/{}/related?limit=1", id(&mug)))
        .await;
    assert_eq!(titles(&cold), ["Blue ceramic mug"], "{cold}");

    // The views are in the behaviour log: a restarted server relates the same products.
    let dir = app.stop().await;
    let app = spawn_with(Some(dir), |_| {}).await;
    let related = app
        .reco(&format!("/api/v1/products/{}/related?limit=1", id(&tent)))
        .await;
    assert_eq!(titles(&related), ["Sleeping bag"], "after a restart: {related}");
}

async fn search_ready(app: &TestApp) {
    crate::helpers::search_until(app, "/api/v1/search?q=mug", |b| b["total"] == 2).await;
}

#[tokio::test]
async fn personalised_lists_follow_the_shopper_and_are_private() {
    let app = spawn_app().await;
    for (title, sku) in [
        ("Yoga mat", "MAT"),
        ("Yoga block", "BLOCK"),
        ("Water bottle", "BOTTLE"),
        ("Desk", "DESK"),
    ] {
        app.create_product(item(title, sku, None)).await;
    }
    app.run_worker("recommendations").await;
    let (a, b) = (
        app.register("p1@example.com").await,
        app.register("p2@example.com").await,
    );
    app.buy(&a, &["MAT", "BLOCK"], "p1").await;
    app.buy(&b, &["MAT", "BLOCK"], "p2").await;
    app.buy(&b, &["DESK"], "p3").await;
    app.buy(&b, &["DESK"], "p4").await;
    let newcomer = app.register("new@example.com").await;
    app.buy(&newcomer, &["MAT"], "p5").await;

    app.run_worker("recommendations").await;
    let r = app
        .client
        .get(app.url("/api/v1/recommendations?type=personalized&limit=1"))
        .bearer_auth(&newcomer.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "private, no-store");
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["type"], "personalized");
    assert_eq!(
        titles(&list),
        ["Yoga block"],
        "what goes with the mat, not the mat just bought: {list}"
    );

    let anonymous = app.reco("/api/v1/recommendations?type=personalized&limit=1").await;
    assert_eq!(anonymous["type"], "popular");
    assert_eq!(titles(&anonymous), ["Yoga mat"], "{anonymous}");
}

#[tokio::test]
async fn anonymous_views_gathered_in_memory_are_written_at_shutdown() {
    let app = spawn_app().await;
    app.create_product(item("Kettle", "KETTLE", None)).await;
    app.create_product(item("Toaster", "TOASTER", None)).await;
    app.run_worker("recommendations").await;
    for _ in 0..3 {
        assert_eq!(app.get("/api/v1/products/kettle").await.status(), StatusCode::OK);
    }
    let popular = app.reco("/api/v1/recommendations?type=popular&limit=1").await;
    assert_eq!(titles(&popular), ["Kettle"], "{popular}");

    // The test clock stands still, so the tally's window has not passed: only the shutdown
    // writes the counts, and a restarted server still knows them.
    let dir = app.stop().await;
    let app = spawn_with(Some(dir), |_| {}).await;
    let popular = app.reco("/api/v1/recommendations?type=popular&limit=1").await;
    assert_eq!(titles(&popular), ["Kettle"], "after a restart: {popular}");
}
