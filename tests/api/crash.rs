//! A crash at each step of the checkout saga (fail points abort the real server process, as a
//! kill -9 would), then a restart: recovery settles every order left waiting for its payment,
//! no hold leaks, no order is lost and no payment is taken twice; a repeat of the request with
//! its `Idempotency-Key` answers the settled order. Needs the `failpoints` feature, which the
//! test command turns on.
#![cfg(feature = "failpoints")]

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::checkout::{guest_body, CARD_OK};
use crate::durability::{get_json, post_product, ServerProcess};
use crate::helpers::{product, ADMIN_KEY};

/// Recovery settles an order as soon as it sees it.
const RECOVER_AT_ONCE: [(&str, &str); 2] = [
    ("STOREFRONT__CHECKOUT__RECOVERY_AFTER_SECS", "0"),
    ("STOREFRONT__CHECKOUT__RECOVERY_INTERVAL_MS", "50"),
];

struct Shop {
    client: reqwest::Client,
    base: String,
}

impl Shop {
    async fn stock(&self) -> (i64, i64) {
        let inv = get_json(&self.client, format!("{}/api/v1/inventory/CR-1", self.base)).await;
        (inv["on_hand"].as_i64().unwrap(), inv["reserved"].as_i64().unwrap())
    }

    async fn orders(&self) -> Vec<Value> {
        let page: Value = self
            .client
            .get(format!("{}/api/v1/orders?limit=100", self.base))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["items"].as_array().cloned().unwrap_or_default()
    }

    async fn outbox(&self, topic: &str) -> usize {
        let page: Value = self
            .client
            .get(format!("{}/api/v1/admin/outbox?topic={topic}", self.base))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["items"].as_array().map(|a| a.len()).unwrap_or(0)
    }

    async fn checkout(&self, cart: &str, key: &str) -> reqwest::Result<reqwest::Response> {
        self.client
            .post(format!("{}/api/v1/checkout", self.base))
            .header("x-cart-token", cart)
            .header("idempotency-key", key)
            .json(&guest_body(CARD_OK))
            .send()
            .await
    }

    async fn cart_lines(&self, cart: &str) -> usize {
        let body: Value = self
            .client
            .get(format!("{}/api/v1/cart", self.base))
            .header("x-cart-token", cart)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["items"].as_array().unwrap().len()
    }

    /// Waits until the only order is no longer pending.
    async fn settled(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let orders = self.orders().await;
            if orders.len() == 1 && orders[0]["status"] != "pending_payment" {
                return orders[0].clone();
            }
            assert!(Instant::now() < deadline, "recovery never settled: {orders:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A shop with 5 units of CR-1 and a guest cart holding 2 of them; returns the cart token.
async fn prepare(server: &ServerProcess, client: &reqwest::Client) -> String {
    let res = post_product(client, &server.base, &product("Crash lamp", "CR-1", 1200))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = client
        .post(format!("{}/api/v1/cart/items", server.base))
        .json(&json!({ "sku": "CR-1", "quantity": 2 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.headers()["x-cart-token"].to_str().unwrap().to_owned()
}

/// Starts a server that dies at `fail_point`, checks a prepared cart out with `key` until it
/// does, then starts the server again with `restart_env`. Returns the data directory and the
/// restarted server (both must outlive the test), the shop and the cart.
async fn crash_at(
    fail_point: &str,
    key: &str,
    restart_env: &[(&str, &str)],
) -> (tempfile::TempDir, ServerProcess, Shop, String) {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let server = ServerProcess::start_with(dir.path(), &[("FAILPOINTS", &format!("{fail_point}=return"))]);
    let cart = prepare(&server, &client).await;
    let shop = Shop {
        client: client.clone(),
        base: server.base.clone(),
    };
    assert!(shop.checkout(&cart, key).await.is_err(), "the server died mid-checkout");
    server.wait_exit();
    let server = ServerProcess::start_with(dir.path(), restart_env);
    let shop = Shop {
        client,
        base: server.base.clone(),
    };
    (dir, server, shop, cart)
}

#[tokio::test]
async fn a_crash_after_the_reservation_releases_the_stock_and_keeps_the_cart() {
    let (_dir, _server, shop, cart) = crash_at("checkout-after-reserve", "crash-1", &RECOVER_AT_ONCE).await;
    let order = shop.settled().await;
    assert_eq!(order["status"], "payment_failed", "the gateway never saw the payment");
    assert_eq!(shop.stock().await, (5, 0), "no hold leaks");
    assert_eq!(shop.cart_lines(&cart).await, 1, "the cart is kept");
    assert_eq!(shop.outbox("payment_captured").await, 0);
    // The repeat answers the settled order instead of starting another.
    let res = shop.checkout(&cart, "crash-1").await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYMENT_REQUIRED);
    assert_eq!(shop.orders().await.len(), 1);
}

#[tokio::test]
async fn a_crash_after_the_authorization_confirms_the_order_and_charges_once() {
    let (_dir, _server, shop, cart) = crash_at("checkout-after-authorize", "crash-2", &RECOVER_AT_ONCE).await;
    let order = shop.settled().await;
    assert_eq!(order["status"], "confirmed", "the gateway had taken the payment");
    assert_eq!(order["payment"]["status"], "captured");
    assert_eq!(shop.stock().await, (3, 0), "the held units were sold");
    assert_eq!(shop.cart_lines(&cart).await, 0, "the cart was emptied");
    assert_eq!(shop.outbox("payment_captured").await, 1, "one payment");
    let res = shop.checkout(&cart, "crash-2").await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["id"], order["id"], "the repeat answers the same order");
    assert!(body["order_token"].is_string(), "with the guest's token");
    assert_eq!(shop.orders().await.len(), 1);
    assert_eq!(shop.outbox("payment_captured").await, 1, "still one payment");
}

#[tokio::test]
async fn a_repeat_before_recovery_resumes_the_orphaned_order() {
    // Recovery would wait five minutes; the shopper's retry finishes the order first.
    let (_dir, _server, shop, cart) = crash_at("checkout-after-reserve", "crash-3", &[]).await;
    let res = shop.checkout(&cart, "crash-3").await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let orders = shop.orders().await;
    assert_eq!(orders.len(), 1, "no second order");
    assert_eq!(orders[0]["status"], "confirmed");
    assert_eq!(shop.stock().await, (3, 0));
}

/// A first `--demo` start that dies half-way through the seed leaves a partial catalog; the
/// next `--demo` start finishes it, and a later one adds nothing.
#[tokio::test]
async fn a_demo_seed_cut_short_is_finished_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_storefront"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("FAILPOINTS", "demo-seed-half=return")
        .env("STOREFRONT__LOG__LEVEL", "warn")
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the fail point aborts the first start");
    let expected = storefront::demo::CATALOG.lines().count() as u64;
    let client = reqwest::Client::new();
    let total = |base: String| {
        let client = client.clone();
        async move { get_json(&client, format!("{base}/api/v1/products?limit=1")).await["total"].as_u64() }
    };
    // Without --demo the partial seed shows as it is.
    let server = ServerProcess::start(dir.path());
    let partial = total(server.base.clone()).await.unwrap();
    assert!(partial > 0 && partial < expected, "{partial} of {expected}");
    server.kill9();
    for _ in 0..2 {
        let server = ServerProcess::start_args(dir.path(), &[], &["--demo"]);
        assert_eq!(total(server.base.clone()).await, Some(expected));
        server.kill9();
    }
}
