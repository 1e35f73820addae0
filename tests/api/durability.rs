//! Restart persistence and crash (kill -9) durability.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{product, spawn_with, ADMIN_KEY};

#[tokio::test]
async fn data_survives_a_graceful_restart() {
    let app = spawn_with(None, |_| {}).await;
    app.create_category("Garden", None).await;
    let mut body = product("Rake", "RAKE-1", 2500);
    body["category"] = serde_json::json!("garden");
    let created = app.create_product(body).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let dir = app.stop().await;

    let app = spawn_with(Some(dir), |_| {}).await;
    let (status, doc) = app.get_json(&format!("/api/v1/products/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["category"]["slug"], "garden");
    let (_, page) = app.get_json("/api/v1/products?category=garden").await;
    assert_eq!(page["total"], 1);
    // Slug and SKU indexes survived too.
    app.create_product(product("Rake", "RAKE-2", 2500)).await;
    let (status, _) = app
        .admin_json(reqwest::Method::POST, "/api/v1/products", product("Rake", "RAKE-1", 1))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

/// A server child process; killed with SIGKILL on drop.
/// A JSON GET from a server process.
pub async fn get_json(client: &reqwest::Client, url: String) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// Creates a product on a server process with the admin key.
pub async fn post_product(client: &reqwest::Client, base: &str, body: &Value) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{base}/api/v1/products"))
        .bearer_auth(ADMIN_KEY)
        .json(body)
        .send()
        .await
}

pub struct ServerProcess {
    child: Child,
    pub base: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    pub fn start(data_dir: &std::path::Path) -> ServerProcess {
        ServerProcess::start_with(data_dir, &[])
    }

    /// Starts the server with extra environment (config overrides, `FAILPOINTS`).
    pub fn start_with(data_dir: &std::path::Path, env: &[(&str, &str)]) -> ServerProcess {
        ServerProcess::start_args(data_dir, env, &[])
    }

    /// Starts the server with extra environment and `serve` arguments.
    pub fn start_args(data_dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_storefront"));
        child
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(args);
        for (k, v) in env {
            child.env(k, v);
        }
        let mut child = child
            .env("STOREFRONT__AUTH__ADMIN_API_KEY", ADMIN_KEY)
            .env("STOREFRONT__LOG__FORMAT", "json")
            .env("STOREFRONT__LOG__LEVEL", "info")
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn storefront");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen: Vec<String> = Vec::new();
        let base = loop {
            assert!(Instant::now() < deadline, "server did not start");
            let Some(line) = lines.next() else {
                panic!("server exited early; its last log lines:\n{}", seen.join("\n"));
            };
            let line = line.expect("read log");
            seen.push(line.clone());
            if seen.len() > 40 {
                seen.remove(0);
            }
            let Ok(log) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if let Some(addr) = log["addr"].as_str() {
                break format!("http://{addr}");
            }
        };
        // Keep draining logs so the child never blocks on a full pipe; the last ones are kept.
        let logs: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(seen));
        let kept = logs.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut kept = kept.lock().unwrap();
                if kept.len() >= 10_000 {
                    kept.drain(..5_000);
                }
                kept.push(line);
            }
        });
        ServerProcess { child, base, logs }
    }

    /// Waits for the process to end by itself (an armed fail point aborts it).
    #[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
    pub fn wait_exit(mut self) {
        self.child.wait().expect("reap");
    }

    /// The log lines so far (the latest 5,000 to 10,000).
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Sends `signal` (for example SIGHUP) to the process.
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits");
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill({pid}, {signal})");
    }

    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9_during_concurrent_writes() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path());
    let client = reqwest::Client::new();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();

    let mut writers = Vec::new();
    for w in 0..4 {
        let (client, base, acked) = (client.clone(), server.base.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..1000 {
                let body = product(&format!("Crash {w}-{i}"), &format!("CR-{w}-{i}"), 100 + i);
                let res = post_product(&client, &base, &body).await;
                match res {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        let doc: Value = match r.json().await {
                            Ok(d) => d,
                            Err(_) => return,
                        };
                        acked.lock().unwrap().push(doc["id"].as_str().unwrap().to_owned());
                    }
                    _ => return,
                }
            }
        }));
    }
    // Kill while writes are in flight, once a fair number have been acknowledged.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 60 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill9();
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 60, "only {} writes were acknowledged", acked.len());

    let server = ServerProcess::start(dir.path());
    for id in &acked {
        let res = client
            .get(format!("{}/api/v1/products/{id}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "acknowledged product {id} was lost");
    }
    // Listing index and counters are consistent with the records (same batch, same fate).
    let page = get_json(&client, format!("{}/api/v1/products?limit=1", server.base)).await;
    let total = page["total"].as_u64().unwrap() as usize;
    assert!(total >= acked.len(), "total {total} < acked {}", acked.len());
    let mut listed = 0usize;
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{}/api/v1/products?limit=100&cursor={c}", server.base),
            None => format!("{}/api/v1/products?limit=100", server.base),
        };
        let page: Value = client.get(url).send().await.unwrap().json().await.unwrap();
        listed += page["items"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(listed, total, "every counted product is listed exactly once");
}

#[tokio::test]
async fn the_search_index_is_consistent_with_storage_after_kill_9_during_indexing() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path());
    let client = reqwest::Client::new();
    let mut writers = Vec::new();
    for w in 0..4 {
        let (client, base) = (client.clone(), server.base.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..40 {
                let body = product(&format!("Indexed gadget {w}-{i}"), &format!("IX-{w}-{i}"), 100 + i);
                let res = post_product(&client, &base, &body).await;
                if !matches!(res, Ok(ref r) if r.status() == StatusCode::CREATED) {
                    return;
                }
            }
        }));
    }
    for w in writers {
        let _ = w.await;
    }
    // Kill while the indexer is (very likely) still applying the burst.
    server.kill9();

    let server = ServerProcess::start(dir.path());
    let listing = get_json(&client, format!("{}/api/v1/products?limit=1", server.base)).await;
    let stored = listing["total"].as_u64().unwrap();
    assert_eq!(stored, 160, "every acknowledged product is stored");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let body = get_json(&client, format!("{}/api/v1/search?q=gadget&limit=100", server.base)).await;
        if body["total"].as_u64() == Some(stored) {
            // No duplicates: every page holds distinct products.
            let mut ids = std::collections::HashSet::new();
            for page in 1..=2 {
                let body = get_json(
                    &client,
                    format!("{}/api/v1/search?q=gadget&limit=100&page={page}", server.base),
                )
                .await;
                for item in body["items"].as_array().unwrap() {
                    assert!(ids.insert(item["id"].as_str().unwrap().to_owned()), "duplicate {item}");
                }
            }
            assert_eq!(ids.len() as u64, stored);
            break;
        }
        assert!(Instant::now() < deadline, "index never caught up: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// kill -9 while many shoppers add and remove items: after restart, every SKU satisfies
/// `on_hand = available + Σ holds`, and every acknowledged cart's held lines match the hold
/// records exactly (same batch, same fate).
#[tokio::test]
async fn stock_holds_reconcile_exactly_after_kill_9_during_concurrent_cart_writes() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path());
    let client = reqwest::Client::new();
    let skus: Vec<String> = (0..4).map(|i| format!("HOLD-{i}")).collect();
    for sku in &skus {
        let mut body = product(&format!("Hold {sku}"), sku, 700);
        body["variants"][0]["stock"] = serde_json::json!(400);
        let res = client
            .post(format!("{}/api/v1/products", server.base))
            .bearer_auth(ADMIN_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    // Tokens of carts whose last write was acknowledged, with the response's held lines.
    let acked: Arc<Mutex<std::collections::HashMap<String, Value>>> = Arc::default();
    let writes = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..8usize {
        let (client, base, acked, skus) = (client.clone(), server.base.clone(), acked.clone(), skus.clone());
        let writes = writes.clone();
        writers.push(tokio::spawn(async move {
            let mut token: Option<String> = None;
            for i in 0..10_000usize {
                let sku = &skus[(w + i) % skus.len()];
                let mut req = client
                    .post(format!("{base}/api/v1/cart/items"))
                    .json(&serde_json::json!({ "sku": sku, "quantity": 1 + (i % 2) }));
                if i % 7 == 6 {
                    req = client.delete(format!("{base}/api/v1/cart"));
                }
                if let Some(t) = &token {
                    req = req.header("x-cart-token", t);
                }
                let Ok(res) = req.send().await else { return };
                if res.status() != StatusCode::OK {
                    // A full line (max quantity) or a closed server: start a new cart.
                    token = None;
                    continue;
                }
                let t = res.headers()["x-cart-token"].to_str().unwrap().to_owned();
                let Ok(cart) = res.json::<Value>().await else { return };
                acked.lock().unwrap().insert(t.clone(), cart);
                writes.fetch_add(1, Ordering::Relaxed);
                token = Some(t);
            }
        }));
    }
    // Kill mid-stream, once a fair number of cart writes have been acknowledged.
    let deadline = Instant::now() + Duration::from_secs(60);
    while writes.load(Ordering::Relaxed) < 400 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill9();
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        writes.load(Ordering::Relaxed) >= 400,
        "too few cart writes before the kill"
    );

    let server = ServerProcess::start(dir.path());
    let get = |path: String| {
        let client = client.clone();
        async move {
            let mut req = client.get(path).bearer_auth(ADMIN_KEY);
            req = req.header("accept", "application/json");
            req.send().await.unwrap().json::<Value>().await.unwrap()
        }
    };
    // cart id -> (sku -> held), from the hold records.
    let mut holds: std::collections::HashMap<String, std::collections::HashMap<String, i64>> = Default::default();
    for sku in &skus {
        let inv = get(format!("{}/api/v1/inventory/{sku}", server.base)).await;
        let records = get(format!("{}/api/v1/inventory/{sku}/reservations", server.base)).await;
        let sum: i64 = records["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["quantity"].as_i64().unwrap())
            .sum();
        let (on_hand, reserved, available) = (
            inv["on_hand"].as_i64().unwrap(),
            inv["reserved"].as_i64().unwrap(),
            inv["available"].as_i64().unwrap(),
        );
        assert_eq!(on_hand, 400);
        assert_eq!(reserved, sum, "{sku}: counter vs hold records");
        assert_eq!(on_hand, available + sum, "{sku}: on_hand = available + holds");
        assert!(available >= 0);
        for h in records["items"].as_array().unwrap() {
            let cart = h["cart_id"].as_str().expect("every hold belongs to a cart").to_owned();
            holds
                .entry(cart)
                .or_default()
                .insert(sku.clone(), h["quantity"].as_i64().unwrap());
        }
    }
    // Every acknowledged cart state is durable, and its holds are exactly its held lines.
    for token in acked.keys() {
        let res = client
            .get(format!("{}/api/v1/cart", server.base))
            .header("x-cart-token", token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let cart: Value = res.json().await.unwrap();
        let acked_version = acked[token]["version"].as_u64().unwrap();
        assert!(
            cart["version"].as_u64().unwrap() >= acked_version,
            "an acknowledged cart write was lost"
        );
        let id = cart["id"].as_str().unwrap();
        let mut lines: std::collections::HashMap<String, i64> = Default::default();
        for line in cart["items"].as_array().unwrap() {
            if line["held"].as_i64().unwrap() > 0 {
                lines.insert(line["sku"].as_str().unwrap().to_owned(), line["held"].as_i64().unwrap());
            }
        }
        assert_eq!(holds.get(id).cloned().unwrap_or_default(), lines, "cart {id}");
    }
}

/// `serve` only opens its own stores: a missing directory needs `--init`, a folder of other
/// files is refused untouched, and a store priced in another currency than the config's
/// refuses to start and says how to move.
#[tokio::test]
async fn serve_refuses_directories_and_currencies_that_are_not_its_own() {
    let serve = |dir: &std::path::Path, extra: &[&str], env: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_storefront"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(extra)
            .envs(env.iter().copied())
            .env("STOREFRONT__SERVER__SHUTDOWN_GRACE_MS", "0")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let root = tempfile::tempdir().unwrap();
    let typo = root.path().join("dat");
    let (ok, log) = serve(&typo, &[], &[]);
    assert!(!ok && log.contains("pass --init"), "{log}");
    assert!(!typo.exists(), "nothing was created");

    let foreign = root.path().join("photos");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("cat.jpg"), "meow").unwrap();
    let (ok, log) = serve(&foreign, &["--init"], &[]);
    assert!(!ok && log.contains("is not a storefront data directory"), "{log}");
    assert_eq!(std::fs::read_dir(&foreign).unwrap().count(), 1);

    // --init creates the store and logs it; then a product priced in USD.
    let fresh = root.path().join("shop");
    let server = ServerProcess::start_args(&fresh, &[], &["--init"]);
    assert!(server.logs().iter().any(|l| l.contains("creating a new store")));
    let client = reqwest::Client::new();
    let res = post_product(&client, &server.base, &product("Priced lamp", "USD-1", 100))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    server.kill9();
    let (ok, log) = serve(&fresh, &[], &[("STOREFRONT__CATALOG__CURRENCY", "EUR")]);
    assert!(!ok, "{log}");
    assert!(
        log.contains("prices are in USD, but [catalog] currency is EUR") && log.contains("storefront import"),
        "{log}"
    );
    // And the store still opens in its own currency.
    let server = ServerProcess::start(&fresh);
    let doc = get_json(&client, format!("{}/api/v1/products/priced-lamp", server.base)).await;
    assert_eq!(doc["price"]["currency"], "USD");
}
