//! Reviews through the server: verified purchases auto-approved, others moderated by an admin
//! or the product's seller, one review per user, helpful votes, sorts and cursors, the
//! seller's reply, and the live rating aggregates in product pages, listings and search.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::checkout::{address, CARD_OK};
use crate::helpers::{error_fields, search_until, spawn_app, Session, TestApp};

impl TestApp {
    /// `POST /products/{id}/reviews` as `who`.
    pub async fn write_review(&self, product: &str, who: &Session, rating: i64, title: &str) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            &format!("/api/v1/products/{product}/reviews"),
            Some(&who.access),
            Some(json!({ "rating": rating, "title": title, "body": "<b>as given</b>" })),
        )
        .await
    }

    /// `who` buys one unit of `sku` and the order is delivered.
    pub async fn buy_delivered(&self, who: &Session, sku: &str) -> Value {
        self.user_add(&who.access, sku, 1).await;
        let body = json!({ "shipping_address": address(), "payment": { "provider": "test", "card": CARD_OK } });
        let r = self
            .checkout(None, Some(&who.access), Some(&format!("buy-{sku}")), &body)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let id = r.body["id"].as_str().unwrap();
        for step in ["shipped", "delivered"] {
            let (status, body) = self
                .admin_json(
                    Method::PATCH,
                    &format!("/api/v1/orders/{id}/status"),
                    json!({ "status": step, "carrier": "UPS", "tracking_number": "1Z" }),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        r.body
    }
}

fn gadget(title: &str, sku: &str, seller: Option<&str>) -> Value {
    json!({
        "title": title, "description": "A reviewed gadget", "seller": seller,
        "variants": [{ "sku": sku, "price": { "amount": 1000, "currency": "USD" }, "stock": 20 }]
    })
}

#[tokio::test]
async fn verified_reviews_count_at_once_and_others_after_moderation_in_pages_listings_and_search() {
    let app = spawn_app().await;
    let lamp = app.create_product(gadget("Reading lamp", "LAMP-1", None)).await;
    let desk = app.create_product(gadget("Standing desk", "DESK-1", None)).await;
    let (lamp_id, desk_id) = (lamp["id"].as_str().unwrap(), desk["id"].as_str().unwrap());

    let buyer = app.register("buyer@example.com").await;
    // Before delivery the purchase is not verified.
    let (status, early) = app.write_review(desk_id, &buyer, 2, "Wobbly").await;
    assert_eq!(status, StatusCode::CREATED, "{early}");
    assert_eq!(
        (early["status"].as_str(), early["verified_purchase"].as_bool()),
        (Some("pending"), Some(false))
    );

    app.buy_delivered(&buyer, "LAMP-1").await;
    let (status, review) = app.write_review(lamp_id, &buyer, 5, "Bright").await;
    assert_eq!(status, StatusCode::CREATED, "{review}");
    assert_eq!(review["verified_purchase"], true);
    assert_eq!(review["status"], "approved", "verified purchases are auto-approved");
    assert_eq!(review["body"], "<b>as given</b>", "text is stored as given");

    let stranger = app.register("stranger@example.com").await;
    let (_, pending) = app.write_review(lamp_id, &stranger, 2, "Meh").await;
    assert_eq!(
        (pending["status"].as_str(), pending["verified_purchase"].as_bool()),
        (Some("pending"), Some(false))
    );

    // Pending reviews are not public and do not count.
    let (_, page) = app.get_json(&format!("/api/v1/products/{lamp_id}/reviews")).await;
    assert_eq!(page["total"], 1, "{page}");
    let (_, product) = app.get_json(&format!("/api/v1/products/{lamp_id}")).await;
    assert_eq!(
        product["rating"],
        json!({ "average": 5.0, "count": 1, "histogram": { "1": 0, "2": 0, "3": 0, "4": 0, "5": 1 } })
    );
    let (status, _) = app
        .get_json(&format!("/api/v1/reviews/{}", pending["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a pending review is not public");

    // The moderation queue, then approval.
    let (status, queue) = app.admin_json(Method::GET, "/api/v1/admin/reviews", Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(queue["items"].as_array().unwrap().len(), 2, "{queue}");
    let path = format!("/api/v1/reviews/{}", pending["id"].as_str().unwrap());
    let (status, body) = app
        .call(
            Method::PATCH,
            &path,
            Some(&buyer.access),
            Some(json!({ "status": "approved" })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a customer may not moderate: {body}");
    let (status, approved) = app
        .admin_json(Method::PATCH, &path, json!({ "status": "approved" }))
        .await;
    assert_eq!(
        (status, approved["status"].as_str()),
        (StatusCode::OK, Some("approved"))
    );
    let (_, product) = app.get_json(&format!("/api/v1/products/{lamp_id}")).await;
    assert_eq!(product["rating"]["count"], 2);
    assert_eq!(product["rating"]["average"], 3.5);
    assert_eq!(product["rating"]["histogram"]["2"], 1);

    // The desk's review is approved too: 2 stars. Listings sort by rating, search filters.
    let desk_path = format!("/api/v1/reviews/{}", early["id"].as_str().unwrap());
    app.admin_json(Method::PATCH, &desk_path, json!({ "status": "approved" }))
        .await;
    let (_, listing) = app.get_json("/api/v1/products?sort=rating").await;
    let titles: Vec<_> = listing["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Reading lamp", "Standing desk"], "{listing}");
    assert_eq!(listing["items"][1]["rating"]["average"], 2.0);
    let (found, _) = search_until(&app, "/api/v1/search?q=gadget&min_rating=3", |b| b["total"] == 1).await;
    assert_eq!(found["items"][0]["title"], "Reading lamp", "{found}");

    // Rejecting takes a review out of the aggregates again.
    app.admin_json(Method::PATCH, &path, json!({ "status": "rejected" }))
        .await;
    let (_, product) = app.get_json(&format!("/api/v1/products/{lamp_id}")).await;
    assert_eq!(product["rating"]["count"], 1);

    // Each review is an outbox event.
    let (_, events) = app
        .admin_json(Method::GET, "/api/v1/admin/outbox?topic=review_submitted", Value::Null)
        .await;
    assert_eq!(events["items"].as_array().map(Vec::len), Some(3), "{events}");
}

#[tokio::test]
async fn bad_reviews_are_refused_field_by_field_and_a_second_one_conflicts() {
    let app = spawn_app().await;
    let p = app.create_product(gadget("Kettle", "KETTLE-1", None)).await;
    let id = p["id"].as_str().unwrap();
    let path = format!("/api/v1/products/{id}/reviews");
    let (status, _) = app
        .call(Method::POST, &path, None, Some(json!({ "rating": 4, "title": "x" })))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let user = app.register("kim@example.com").await;
    let long = "y".repeat(5001);
    let (status, body) = app
        .call(
            Method::POST,
            &path,
            Some(&user.access),
            Some(json!({ "rating": 0, "title": " ", "body": long })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_fields(&body), ["rating", "title", "body"]);
    let (status, body) = app
        .call(
            Method::POST,
            &path,
            Some(&user.access),
            Some(json!({ "rating": 4, "title": "t", "stars": 3 })),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields are refused: {body}"
    );
    let (status, _) = app.write_review("no-such-product", &user, 4, "t").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _) = app.write_review(id, &user, 4, "Good").await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = app.write_review(id, &user, 1, "Changed my mind").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("review_exists"))
    );

    for query in ["sort=best", "rating=6", "limit=0"] {
        let (status, body) = app.get_json(&format!("{path}?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
    }
    let (status, _) = app.get_json(&format!("{path}?cursor=garbage")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn helpful_votes_are_once_per_user_never_your_own_and_order_the_pages() {
    let app = spawn_app().await;
    let p = app.create_product(gadget("Headphones", "HEAD-1", None)).await;
    let id = p["id"].as_str().unwrap();
    let mut users = Vec::new();
    let mut reviews = Vec::new();
    for (i, rating) in [3, 5, 1].into_iter().enumerate() {
        let user = app.register(&format!("u{i}@example.com")).await;
        app.buy_delivered(&user, "HEAD-1").await;
        let (status, review) = app.write_review(id, &user, rating, &format!("r{rating}")).await;
        assert_eq!(status, StatusCode::CREATED, "{review}");
        users.push(user);
        reviews.push(review["id"].as_str().unwrap().to_owned());
    }
    let vote = |who: usize, review: usize| {
        let app = &app;
        let token = users[who].access.clone();
        let path = format!("/api/v1/reviews/{}/helpful", reviews[review]);
        async move { app.call(Method::POST, &path, Some(&token), None).await }
    };
    // The 1-star review gets two votes, the 3-star one.
    assert_eq!(vote(0, 2).await.0, StatusCode::OK);
    assert_eq!(vote(1, 2).await.0, StatusCode::OK);
    let (status, body) = vote(0, 2).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_voted"))
    );
    assert_eq!(vote(2, 2).await.0, StatusCode::FORBIDDEN, "not on your own review");
    let (status, counted) = vote(2, 0).await;
    assert_eq!((status, counted["helpful"].as_u64()), (StatusCode::OK, Some(1)));

    let ratings = |page: &Value| -> Vec<u64> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["rating"].as_u64().unwrap())
            .collect()
    };
    let base = format!("/api/v1/products/{id}/reviews");
    let (_, helpful) = app.get_json(&base).await;
    assert_eq!(ratings(&helpful), [1, 3, 5], "most helpful first");
    let (_, highest) = app.get_json(&format!("{base}?sort=highest")).await;
    assert_eq!(ratings(&highest), [5, 3, 1]);
    let (_, lowest) = app.get_json(&format!("{base}?sort=lowest")).await;
    assert_eq!(ratings(&lowest), [1, 3, 5]);
    let (_, newest) = app.get_json(&format!("{base}?sort=newest")).await;
    assert_eq!(ratings(&newest), [1, 5, 3]);
    let (_, only) = app.get_json(&format!("{base}?rating=5")).await;
    assert_eq!((ratings(&only), only["total"].as_u64()), (vec![5], Some(1)));

    // Cursor pagination walks the sort without repeats.
    let (_, first) = app.get_json(&format!("{base}?sort=highest&limit=2")).await;
    assert_eq!(ratings(&first), [5, 3]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app
        .get_json(&format!("{base}?sort=highest&limit=2&cursor={cursor}"))
        .await;
    assert_eq!(ratings(&second), [1]);
    assert!(second["next_cursor"].is_null());
    let (status, _) = app.get_json(&format!("{base}?sort=lowest&cursor={cursor}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a cursor of another sort");

    // Review pages are CDN-cacheable with the product's review tag.
    let r = app.get(&base).await;
    let keys = r.headers()["surrogate-key"].to_str().unwrap().to_owned();
    assert!(keys.contains(&format!("reviews-{id}")), "{keys}");
    assert!(r.headers()["cache-control"].to_str().unwrap().contains("public"));
}

#[tokio::test]
async fn the_products_seller_moderates_and_replies_once_and_author_edits_are_moderated_again() {
    let app = spawn_app().await;
    let mut sellers = Vec::new();
    for slug in ["acme", "other"] {
        let (status, body) = app
            .admin_json(Method::POST, "/api/v1/sellers", json!({ "name": slug, "slug": slug }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let user = app.register(&format!("{slug}@example.com")).await;
        sellers.push(app.promote(&user, "seller", Some(slug)).await);
    }
    let p = app.create_product(gadget("Anvil", "ANVIL-1", Some("acme"))).await;
    let id = p["id"].as_str().unwrap();
    let author = app.register("wile@example.com").await;
    let (_, review) = app.write_review(id, &author, 4, "Heavy").await;
    assert_eq!(review["status"], "pending");
    let path = format!("/api/v1/reviews/{}", review["id"].as_str().unwrap());

    let decide = json!({ "status": "approved" });
    let (status, _) = app
        .call(Method::PATCH, &path, Some(&sellers[1].access), Some(decide.clone()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another seller may not moderate");
    let (status, body) = app
        .call(Method::PATCH, &path, Some(&sellers[0].access), Some(decide))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("approved")),
        "{body}"
    );
    let version = body["version"].as_u64().unwrap();

    let reply_path = format!("{path}/reply");
    let (status, _) = app
        .call(
            Method::POST,
            &reply_path,
            Some(&sellers[1].access),
            Some(json!({ "body": "Hi" })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app
        .call(
            Method::POST,
            &reply_path,
            Some(&sellers[0].access),
            Some(json!({ "body": "Thanks!" })),
        )
        .await;
    assert_eq!(
        (status, body["reply"]["body"].as_str()),
        (StatusCode::CREATED, Some("Thanks!"))
    );
    let (status, body) = app
        .call(
            Method::POST,
            &reply_path,
            Some(&sellers[0].access),
            Some(json!({ "body": "Again" })),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("reply_exists"))
    );

    // Only the author edits content; a stale If-Match is refused; the edit is moderated again.
    let (status, _) = app
        .call(
            Method::PATCH,
            &path,
            Some(&sellers[0].access),
            Some(json!({ "rating": 5 })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let stale = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&author.access)
        .header("If-Match", format!("\"{version}\""))
        .json(&json!({ "rating": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let (status, edited) = app
        .call(
            Method::PATCH,
            &path,
            Some(&author.access),
            Some(json!({ "rating": 1, "title": "Fell on me" })),
        )
        .await;
    assert_eq!(
        (status, edited["status"].as_str()),
        (StatusCode::OK, Some("pending")),
        "{edited}"
    );
    let (_, product) = app.get_json(&format!("/api/v1/products/{id}")).await;
    assert_eq!(product["rating"]["count"], 0, "the edited review waits for moderation");

    // The author deletes it; the product may be reviewed again.
    let (status, _) = app.call(Method::DELETE, &path, Some(&sellers[0].access), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "sellers reject, they do not delete");
    let (status, _) = app.call(Method::DELETE, &path, Some(&author.access), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.write_review(id, &author, 3, "Second try").await;
    assert_eq!(status, StatusCode::CREATED);
}
