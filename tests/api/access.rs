//! The access-control matrix: every protected endpoint against anonymous, customer, other
//! customer, seller, other seller and admin callers, with exact statuses.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{product, spawn_app, Session, TestApp};

struct Cast {
    customer: Session,
    other_customer: Session,
    seller: Session,
    other_seller: Session,
    admin: Session,
}

async fn cast(app: &TestApp) -> Cast {
    for name in ["Shop A", "Shop B"] {
        let (status, _) = app
            .admin_json(Method::POST, "/api/v1/sellers", json!({ "name": name }))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let customer = app.register("cust@example.com").await;
    let other_customer = app.register("cust2@example.com").await;
    let seller = app.register("seller-a@example.com").await;
    let seller = app.promote(&seller, "seller", Some("shop-a")).await;
    let other_seller = app.register("seller-b@example.com").await;
    let other_seller = app.promote(&other_seller, "seller", Some("shop-b")).await;
    let admin = app.register("admin@example.com").await;
    let admin = app.promote(&admin, "admin", None).await;
    Cast {
        customer,
        other_customer,
        seller,
        other_seller,
        admin,
    }
}

/// Expected statuses for: anonymous, customer, other customer, seller (owner), other seller, admin.
type Row = [StatusCode; 6];

const U: StatusCode = StatusCode::UNAUTHORIZED;
const F: StatusCode = StatusCode::FORBIDDEN;
const OK: StatusCode = StatusCode::OK;
const C: StatusCode = StatusCode::CREATED;
const N: StatusCode = StatusCode::NOT_FOUND;

async fn check(
    app: &TestApp,
    cast: &Cast,
    method: Method,
    path: &str,
    body: impl Fn(usize) -> Option<Value>,
    expected: Row,
) {
    let callers: [Option<&str>; 6] = [
        None,
        Some(&cast.customer.access),
        Some(&cast.other_customer.access),
        Some(&cast.seller.access),
        Some(&cast.other_seller.access),
        Some(&cast.admin.access),
    ];
    let names = [
        "anonymous",
        "customer",
        "other customer",
        "seller",
        "other seller",
        "admin",
    ];
    for (i, token) in callers.iter().enumerate() {
        let (status, response) = app.call(method.clone(), path, *token, body(i)).await;
        assert_eq!(status, expected[i], "{method} {path} as {}: {response}", names[i]);
    }
}

#[tokio::test]
async fn catalog_writes_follow_roles_and_ownership() {
    let app = spawn_app().await;
    let cast = cast(&app).await;
    let mut owned = product("Owned by A", "A-1", 1000);
    owned["seller"] = json!("shop-a");
    let owned = app.create_product(owned).await;
    let pid = owned["id"].as_str().unwrap().to_owned();

    // Creating: sellers may create for their own shop only.
    let new_product = |i: usize| {
        let mut p = product(&format!("New {i}"), &format!("NEW-{i}"), 500);
        p["seller"] = json!("shop-a");
        Some(p)
    };
    check(
        &app,
        &cast,
        Method::POST,
        "/api/v1/products",
        new_product,
        [U, F, F, C, F, C],
    )
    .await;

    let patch = |i: usize| Some(json!({ "title": format!("Renamed {i}") }));
    check(
        &app,
        &cast,
        Method::PATCH,
        &format!("/api/v1/products/{pid}"),
        patch,
        [U, F, F, OK, F, OK],
    )
    .await;

    let variant = |i: usize| Some(json!({ "sku": format!("A-V{i}"), "price": { "amount": 100, "currency": "USD" } }));
    check(
        &app,
        &cast,
        Method::POST,
        &format!("/api/v1/products/{pid}/variants"),
        variant,
        [U, F, F, C, F, C],
    )
    .await;

    let reprice = |_| Some(json!({ "price": { "amount": 1200, "currency": "USD" } }));
    check(
        &app,
        &cast,
        Method::PATCH,
        "/api/v1/variants/A-1",
        reprice,
        [U, F, F, OK, F, OK],
    )
    .await;

    // Stock belongs to the product's seller and the admin; who holds stock and the event
    // outbox are for admins only.
    type Body = fn(usize) -> Option<Value>;
    let inventory: [(Method, &str, Body, Row); 4] = [
        (
            Method::PUT,
            "/api/v1/inventory/A-1",
            |_| Some(json!({ "on_hand": 7 })),
            [U, F, F, OK, F, OK],
        ),
        (
            Method::POST,
            "/api/v1/inventory/A-1/adjust",
            |_| Some(json!({ "delta": 1 })),
            [U, F, F, OK, F, OK],
        ),
        (
            Method::GET,
            "/api/v1/inventory/A-1/reservations",
            |_| None,
            [U, F, F, F, F, OK],
        ),
        (Method::GET, "/api/v1/admin/outbox", |_| None, [U, F, F, F, F, OK]),
    ];
    for (method, path, body, expected) in inventory {
        check(&app, &cast, method, path, body, expected).await;
    }

    // A seller cannot hand a product to another shop.
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/products/{pid}"),
            Some(&cast.seller.access),
            Some(json!({ "seller": "shop-b" })),
        )
        .await;
    assert_eq!(status, F);

    let category = |i: usize| Some(json!({ "name": format!("Cat {i}") }));
    check(
        &app,
        &cast,
        Method::POST,
        "/api/v1/categories",
        category,
        [U, F, F, F, F, C],
    )
    .await;
    check(
        &app,
        &cast,
        Method::PATCH,
        "/api/v1/categories/cat-5",
        |i| Some(json!({ "position": i })),
        [U, F, F, F, F, OK],
    )
    .await;
    let seller = |i: usize| Some(json!({ "name": format!("Shop {i}x") }));
    check(&app, &cast, Method::POST, "/api/v1/sellers", seller, [U, F, F, F, F, C]).await;

    // Refused writes changed nothing: the last accepted PATCH was the admin's.
    let (_, doc) = app.get_json(&format!("/api/v1/products/{pid}")).await;
    assert_eq!(doc["title"], "Renamed 5");
    assert_eq!(doc["seller"]["slug"], "shop-a");

    // Deleting: the other seller is refused while the product exists; then the owner deletes it.
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/products/{pid}"),
            Some(&cast.other_seller.access),
            None,
        )
        .await;
    assert_eq!(status, F);
    check(
        &app,
        &cast,
        Method::DELETE,
        &format!("/api/v1/products/{pid}"),
        |_| None,
        [U, F, F, StatusCode::NO_CONTENT, N, N],
    )
    .await;
}

#[tokio::test]
async fn personal_data_never_leaks_between_users() {
    let app = spawn_app().await;
    let cast = cast(&app).await;
    for s in [
        &cast.customer,
        &cast.other_customer,
        &cast.seller,
        &cast.other_seller,
        &cast.admin,
    ] {
        let (status, me) = app.call(Method::GET, "/api/v1/me", Some(&s.access), None).await;
        assert_eq!(status, OK);
        assert_eq!(me["email"], s.email.as_str());
    }
    let (status, _) = app.call(Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(status, U);
    let (status, _) = app.call(Method::GET, "/api/v1/me/addresses", None, None).await;
    assert_eq!(status, U);

    let (_, address) = app
        .call(
            Method::POST,
            "/api/v1/me/addresses",
            Some(&cast.customer.access),
            Some(json!({ "name": "C", "line1": "1 A St", "city": "X", "postal_code": "1", "country": "DE" })),
        )
        .await;
    let path = format!("/api/v1/me/addresses/{}", address["id"].as_str().unwrap());
    let body = |_| Some(json!({ "city": "Y" }));
    // /me paths are always the caller's own: another user's address id is simply not found.
    check(&app, &cast, Method::PATCH, &path, body, [U, OK, N, N, N, N]).await;
    check(
        &app,
        &cast,
        Method::DELETE,
        &path,
        |_| None,
        [U, StatusCode::NO_CONTENT, N, N, N, N],
    )
    .await;

    let role = |_| Some(json!({ "role": "customer" }));
    let target = format!("/api/v1/admin/users/{}/role", cast.other_customer.id);
    check(&app, &cast, Method::POST, &target, role, [U, F, F, F, F, OK]).await;
    let sessions = format!("/api/v1/admin/users/{}/sessions", cast.other_customer.id);
    check(&app, &cast, Method::DELETE, &sessions, |_| None, [U, F, F, F, F, OK]).await;
    let (status, _) = app
        .admin_json(
            Method::POST,
            "/api/v1/admin/users/0190b5a0-0000-7000-8000-000000000000/role",
            json!({ "role": "admin" }),
        )
        .await;
    assert_eq!(status, N);
}

/// The caller is checked before the body: a bad body from someone who may not call the
/// endpoint at all gets 401/403, never 422 with a list of the fields it expects.
#[tokio::test]
async fn callers_are_checked_before_their_bodies() {
    let app = spawn_app().await;
    let cast = cast(&app).await;
    let bad = || Some(json!({ "unexpected": [1, 2, 3] }));
    for (method, path, customer) in [
        (Method::POST, "/api/v1/products", F),
        (Method::PATCH, "/api/v1/products/whatever", F),
        (Method::PUT, "/api/v1/inventory/SKU-1", F),
        (Method::POST, "/api/v1/categories", F),
        (Method::POST, "/api/v1/sellers", F),
        (Method::POST, "/api/v1/admin/coupons", F), // sellers make their own
        (Method::POST, "/api/v1/admin/webhooks", F),
        (Method::POST, "/api/v1/admin/promotions", F),
        (Method::POST, "/api/v1/admin/shipping-zones", F),
        (Method::POST, "/api/v1/admin/backups", F),
        (Method::POST, "/api/v1/me/addresses", StatusCode::UNPROCESSABLE_ENTITY),
        (Method::POST, "/api/v1/me/wishlist", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let (status, body) = app.call(method.clone(), path, None, bad()).await;
        assert_eq!(status, U, "{method} {path} anonymous: {body}");
        assert!(body["error"]["details"].is_null(), "{method} {path}: {body}");
        let (status, body) = app.call(method.clone(), path, Some(&cast.customer.access), bad()).await;
        assert_eq!(status, customer, "{method} {path} as a customer: {body}");
    }
}
