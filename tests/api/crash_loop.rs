//! The crash loop: N cycles of start, mixed concurrent writes (products, registrations, stock
//! deliveries, guest carts and checkouts), `kill -9` at a random moment, and restart. After
//! each restart every acknowledged write is present, the stock invariants hold for every SKU,
//! and no order is lost. `CRASH_LOOP_CYCLES` sets N (10 by default, as CI runs it):
//! `CRASH_LOOP_CYCLES=100 cargo test --features storefront/failpoints --test api crash_loop`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::checkout::{guest_body, CARD_OK};
use crate::durability::{get_json, post_product, ServerProcess};
use crate::helpers::{product, ADMIN_KEY};

/// Acknowledged writes, by kind.
#[derive(Default)]
struct Acked {
    products: Vec<String>,
    users: Vec<String>,
    deliveries: i64,
    deliveries_sent: i64,
    orders: Vec<String>,
    /// Refusals from a live server (not a dropped connection): each is a bug.
    refusals: Vec<String>,
}

const DELIVERED_SKU: &str = "LOOP-STOCK";
const SOLD_SKU: &str = "LOOP-SOLD";

async fn writer(w: usize, cycle: usize, client: reqwest::Client, base: String, acked: Arc<Mutex<Acked>>) {
    for i in 0.. {
        let tag = format!("{cycle}-{w}-{i}");
        let ok = match i % 4 {
            0 => match post_product(
                &client,
                &base,
                &product(&format!("Loop {tag}"), &format!("LOOP-{tag}"), 100),
            )
            .await
            {
                Ok(r) if r.status() == StatusCode::CREATED => {
                    let Ok(doc) = r.json::<Value>().await else { return };
                    acked
                        .lock()
                        .unwrap()
                        .products
                        .push(doc["id"].as_str().unwrap().to_owned());
                    true
                }
                Ok(r) => refused(&acked, cycle, "product", r.status()),
                Err(_) => false,
            },
            1 => {
                let email = format!("loop{tag}@example.com");
                let res = client
                    .post(format!("{base}/api/v1/auth/register"))
                    .json(&json!({ "email": email, "password": "correct horse battery", "name": "Loop" }))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        acked.lock().unwrap().users.push(email);
                        true
                    }
                    Ok(r) => refused(&acked, cycle, "registration", r.status()),
                    Err(_) => false,
                }
            }
            2 => {
                acked.lock().unwrap().deliveries_sent += 1;
                let res = client
                    .post(format!("{base}/api/v1/inventory/{DELIVERED_SKU}/adjust"))
                    .bearer_auth(ADMIN_KEY)
                    .json(&json!({ "delta": 1 }))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status() == StatusCode::OK => {
                        acked.lock().unwrap().deliveries += 1;
                        true
                    }
                    Ok(r) => refused(&acked, cycle, "delivery", r.status()),
                    Err(_) => false,
                }
            }
            _ => match checkout(&client, &base, &tag).await {
                Ok(Some(order)) => {
                    acked.lock().unwrap().orders.push(order);
                    true
                }
                Ok(None) => false,
                Err(refusal) => {
                    acked.lock().unwrap().refusals.push(format!("cycle {cycle}: {refusal}"));
                    false
                }
            },
        };
        if !ok {
            return; // the server is gone
        }
    }
}

/// Notes a live server's refusal (each is a bug) and stops the writer.
fn refused(acked: &Mutex<Acked>, cycle: usize, what: &str, status: StatusCode) -> bool {
    acked
        .lock()
        .unwrap()
        .refusals
        .push(format!("cycle {cycle}: {what}: {status}"));
    false
}

/// A guest buys one unit of the sold SKU: the order id once acknowledged, `Err` with the
/// answer when a live server refused, `Ok(None)` when the connection dropped.
async fn checkout(client: &reqwest::Client, base: &str, tag: &str) -> Result<Option<String>, String> {
    let Ok(res) = client
        .post(format!("{base}/api/v1/cart/items"))
        .json(&json!({ "sku": SOLD_SKU, "quantity": 1 }))
        .send()
        .await
    else {
        return Ok(None);
    };
    if res.status() != StatusCode::CREATED && res.status() != StatusCode::OK {
        return Err(format!(
            "add to cart: {} {}",
            res.status(),
            res.text().await.unwrap_or_default()
        ));
    }
    let token = res.headers()["x-cart-token"].to_str().unwrap().to_owned();
    let Ok(res) = client
        .post(format!("{base}/api/v1/checkout"))
        .header("x-cart-token", token)
        .header("idempotency-key", format!("loop-{tag}"))
        .json(&guest_body(CARD_OK))
        .send()
        .await
    else {
        return Ok(None);
    };
    if res.status() != StatusCode::CREATED {
        return Err(format!(
            "checkout: {} {}",
            res.status(),
            res.text().await.unwrap_or_default()
        ));
    }
    let Ok(order) = res.json::<Value>().await else {
        return Ok(None);
    };
    Ok(order["id"].as_str().map(str::to_owned))
}

async fn check(
    client: &reqwest::Client,
    base: &str,
    acked: &Acked,
    checked_before: usize,
    initial: (i64, i64),
    cycle: usize,
) {
    for id in &acked.products {
        let res = client.get(format!("{base}/api/v1/products/{id}")).send().await.unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "cycle {cycle}: acknowledged product {id} was lost"
        );
    }
    // A login costs an argon2 verification: check this cycle's accounts and a sample of the
    // earlier ones (which earlier cycles checked), or the loop grows quadratic.
    let checked_users: Vec<&String> = {
        let fresh = &acked.users[checked_before.min(acked.users.len())..];
        let mut rng = rand::thread_rng();
        let earlier = &acked.users[..checked_before.min(acked.users.len())];
        fresh
            .iter()
            .chain((0..earlier.len().min(5)).map(|_| &earlier[rng.gen_range(0..earlier.len())]))
            .collect()
    };
    for email in checked_users {
        let res = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({ "email": email, "password": "correct horse battery" }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "cycle {cycle}: acknowledged account {email} was lost"
        );
    }
    for id in &acked.orders {
        let res = client
            .get(format!("{base}/api/v1/orders/{id}"))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "cycle {cycle}: acknowledged order {id} was lost"
        );
    }
    let delivered = get_json(client, format!("{base}/api/v1/inventory/{DELIVERED_SKU}")).await;
    let on_hand = delivered["on_hand"].as_i64().unwrap();
    assert!(
        (initial.0 + acked.deliveries..=initial.0 + acked.deliveries_sent).contains(&on_hand),
        "cycle {cycle}: on hand {on_hand}, acknowledged deliveries {}, sent {}",
        acked.deliveries,
        acked.deliveries_sent
    );
    for sku in [DELIVERED_SKU, SOLD_SKU] {
        let inv = get_json(client, format!("{base}/api/v1/inventory/{sku}")).await;
        let (on_hand, reserved, available) = (
            inv["on_hand"].as_i64().unwrap(),
            inv["reserved"].as_i64().unwrap(),
            inv["available"].as_i64().unwrap(),
        );
        assert!(reserved >= 0 && available >= 0, "cycle {cycle}: {sku} {inv}");
        assert_eq!(available, on_hand - reserved, "cycle {cycle}: {sku} {inv}");
    }
    let sold = get_json(client, format!("{base}/api/v1/inventory/{SOLD_SKU}")).await;
    assert!(
        sold["on_hand"].as_i64().unwrap() <= initial.1 - acked.orders.len() as i64,
        "cycle {cycle}: every acknowledged order took its unit: {sold}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_and_stock_survive_a_crash_loop() {
    let cycles: usize = std::env::var("CRASH_LOOP_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let env = [
        ("STOREFRONT__CHECKOUT__RECOVERY_AFTER_SECS", "0"),
        // The loop's writes and checks are not an attack.
        ("STOREFRONT__RATE_LIMIT__AUTH_PER_MINUTE_PER_IP", "100000"),
        ("STOREFRONT__RATE_LIMIT__API_PER_SECOND", "0"),
    ];
    let server = ServerProcess::start_with(dir.path(), &env);
    for (title, sku) in [("Loop stock", DELIVERED_SKU), ("Loop sold", SOLD_SKU)] {
        let res = post_product(&client, &server.base, &product(title, sku, 500))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let res = client
        .put(format!("{}/api/v1/inventory/{SOLD_SKU}", server.base))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({ "on_hand": 1_000_000 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let stock = |inv: Value| inv["on_hand"].as_i64().unwrap();
    let initial = (
        stock(get_json(&client, format!("{}/api/v1/inventory/{DELIVERED_SKU}", server.base)).await),
        1_000_000,
    );
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut server = Some(server);
    let mut users_checked = 0;
    for cycle in 0..cycles {
        let running = server
            .take()
            .unwrap_or_else(|| ServerProcess::start_with(dir.path(), &env));
        let writers: Vec<_> = (0..4)
            .map(|w| tokio::spawn(writer(w, cycle, client.clone(), running.base.clone(), acked.clone())))
            .collect();
        let crash_after = rand::thread_rng().gen_range(150..700);
        tokio::time::sleep(Duration::from_millis(crash_after)).await;
        running.kill9();
        for w in writers {
            let _ = w.await;
        }
        let restarted = ServerProcess::start_with(dir.path(), &env);
        let snapshot = {
            let a = acked.lock().unwrap();
            Acked {
                products: a.products.clone(),
                users: a.users.clone(),
                deliveries: a.deliveries,
                deliveries_sent: a.deliveries_sent,
                orders: a.orders.clone(),
                refusals: a.refusals.clone(),
            }
        };
        assert!(snapshot.refusals.is_empty(), "{:?}", snapshot.refusals);
        check(&client, &restarted.base, &snapshot, users_checked, initial, cycle).await;
        users_checked = snapshot.users.len();
        server = Some(restarted);
    }
    let a = acked.lock().unwrap();
    assert!(
        a.products.len() >= cycles && a.orders.len() >= cycles / 2,
        "the loop wrote too little to test anything: {} products, {} orders",
        a.products.len(),
        a.orders.len()
    );
    eprintln!(
        "crash loop: {cycles} cycles, {} products, {} accounts, {} deliveries, {} orders acknowledged and kept",
        a.products.len(),
        a.users.len(),
        a.deliveries,
        a.orders.len()
    );
}
