//! The CDN contract against a real Varnish with the xkey vmod (Debian `varnish` and
//! `varnish-modules`, installed by `scripts/setup.sh`), running the shipped
//! `deploy/varnish/storefront.vcl` in front of the real server: public pages are cached and
//! per-caller ones never are; every kind of change shows through Varnish within a second on
//! every page kind it affects (search and suggest included); a 1,000-SKU stock sync purges
//! completely even through a small header limit, and later purges still arrive; an origin
//! outage is served stale, then recovers.

use std::net::TcpListener as StdListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use storefront::config::Config;

use crate::helpers::{search_until, spawn_with, TestApp};

/// A `varnishd` in the foreground, stopped when dropped.
struct Varnish {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Varnish {
    /// Starts Varnish on `port` with the shipped VCL pointed at `backend`, plus `params`
    /// (`-p name=value` runtime parameters).
    fn start(port: u16, backend: u16, params: &[&str]) -> Varnish {
        let dir = tempfile::tempdir().unwrap();
        // The worker process runs as Varnish's own user: it must read the work directory.
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let vcl = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/varnish/storefront.vcl"))
            .unwrap()
            .replace(".port = \"8080\"", &format!(".port = \"{backend}\""));
        let vcl_path = dir.path().join("storefront.vcl");
        std::fs::write(&vcl_path, vcl).unwrap();
        let mut cmd = Command::new("varnishd");
        cmd.arg("-F")
            .args(["-a", &format!("127.0.0.1:{port}")])
            .arg("-f")
            .arg(&vcl_path)
            .arg("-n")
            .arg(dir.path().join("work"))
            .args(["-s", "malloc,64m", "-T", "none"]);
        for p in params {
            cmd.args(["-p", p]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("varnishd (scripts/setup.sh installs varnish and varnish-modules)");
        let varnish = Varnish { child, port, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "varnishd did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        varnish
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Varnish {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server whose purger talks to Varnish on `varnish_port`.
async fn server(varnish_port: u16, data: Option<tempfile::TempDir>, tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_with(data, |c| {
        c.cdn.purge_url = format!("http://127.0.0.1:{varnish_port}/");
        c.cdn.poll_interval_ms = 20;
        tweak(c);
    })
    .await
}

fn origin_port(app: &TestApp) -> u16 {
    app.url("/")
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

/// GET through Varnish: status, `X-Cache`, body.
async fn through(client: &reqwest::Client, varnish: &Varnish, path: &str) -> (StatusCode, String, Value) {
    let r = client.get(varnish.url(path)).send().await.unwrap();
    let status = r.status();
    let cache = r
        .headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, cache, r.json().await.unwrap_or(Value::Null))
}

/// Polls `path` through Varnish until `fresh` accepts it; returns how long that took.
async fn until_fresh(
    client: &reqwest::Client,
    varnish: &Varnish,
    path: &str,
    fresh: impl Fn(StatusCode, &Value) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let (status, _, body) = through(client, varnish, path).await;
        if fresh(status, &body) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{path} never became fresh: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the CDN purger has purged every change so far.
async fn purged_up(app: &TestApp) {
    let started = std::time::Instant::now();
    loop {
        let text = app.get("/metrics").await.text().await.unwrap();
        if text.lines().any(|l| l == "storefront_cdn_purge_lag_entries 0") {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the purger never caught up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn titles(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["title"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn every_change_shows_through_varnish_within_a_second_on_every_page_it_affects() {
    let varnish_port = free_port();
    let app = server(varnish_port, None, |_| {}).await;
    let varnish = Varnish::start(varnish_port, origin_port(&app), &[]);
    let client = reqwest::Client::new();

    let outdoor = app.create_category("Outdoor", None).await;
    let tents = app
        .create_category("Tents", Some(outdoor["id"].as_str().unwrap()))
        .await;
    let kitchen = app.create_category("Kitchen", None).await;
    let tent = app
        .create_product(json!({
            "title": "Alpine tent", "description": "Four seasons", "brand": "Acme", "category": tents["id"],
            "variants": [{ "sku": "TENT-1", "price": { "amount": 30000, "currency": "USD" }, "stock": 3 }]
        }))
        .await;
    let id = tent["id"].as_str().unwrap().to_owned();
    app.create_product(json!({
        "title": "Alpine kettle", "description": "Boils", "category": kitchen["id"],
        "variants": [{ "sku": "KETTLE-1", "price": { "amount": 2000, "currency": "USD" }, "stock": 3 }]
    }))
    .await;
    search_until(&app, "/api/v1/search?q=alpine", |b| b["total"] == 2).await;
    search_until(&app, "/api/v1/search/suggest?q=alp", |b| {
        b["items"].as_array().is_some_and(|i| i.len() >= 2)
    })
    .await;
    // The setup's own purges must land before pages are first cached, or a late one empties
    // a page between its two reads below.
    purged_up(&app).await;

    let product = format!("/api/v1/products/{id}");
    let listing = format!("/api/v1/products?category={}", outdoor["id"].as_str().unwrap());
    let in_stock = "/api/v1/products?in_stock=true&sort=price_asc";
    let kitchen_listing = format!("/api/v1/products?category={}", kitchen["id"].as_str().unwrap());
    let search = "/api/v1/search?q=alpine";
    let search_in_stock = "/api/v1/search?q=alpine&in_stock=true";
    let suggest = "/api/v1/search/suggest?q=alp";
    // Facets name the children of the filtered category.
    let search_outdoor = format!("/api/v1/search?q=alpine&category={}", outdoor["id"].as_str().unwrap());
    let category = format!("/api/v1/categories/{}", tents["id"].as_str().unwrap());
    let pages = [
        &product,
        &listing,
        in_stock,
        &kitchen_listing,
        search,
        search_in_stock,
        suggest,
        &category,
        &search_outdoor,
    ];
    for page in pages {
        let (status, first, _) = through(&client, &varnish, page).await;
        let (_, second, _) = through(&client, &varnish, page).await;
        assert_eq!(
            (status, first.as_str(), second.as_str()),
            (StatusCode::OK, "MISS", "HIT"),
            "{page} is cached"
        );
    }
    // Per-caller answers are never cached.
    let user = app.register("cdn@example.com").await;
    for _ in 0..2 {
        let r = client
            .get(varnish.url("/api/v1/me"))
            .bearer_auth(&user.access)
            .send()
            .await
            .unwrap();
        assert_eq!(
            (r.status(), r.headers()["x-cache"].to_str().unwrap()),
            (StatusCode::OK, "MISS")
        );
        let r = client.get(varnish.url("/api/v1/cart")).send().await.unwrap();
        assert_eq!(r.headers()["x-cache"], "MISS");
    }

    let mut report: Vec<(&str, &str, Duration)> = Vec::new();
    let has =
        |name: &'static str| move |s: StatusCode, b: &Value| s == StatusCode::OK && titles(b).iter().any(|t| t == name);
    let lacks = |name: &'static str| {
        move |s: StatusCode, b: &Value| s == StatusCode::OK && !titles(b).iter().any(|t| t == name)
    };

    // Title.
    app.admin_json(Method::PATCH, &product, json!({ "title": "Alpine shelter" }))
        .await;
    report.push((
        "title",
        "product",
        until_fresh(&client, &varnish, &product, |_, b| b["title"] == "Alpine shelter").await,
    ));
    report.push((
        "title",
        "listing",
        until_fresh(&client, &varnish, &listing, has("Alpine shelter")).await,
    ));
    report.push((
        "title",
        "search",
        until_fresh(&client, &varnish, search, has("Alpine shelter")).await,
    ));
    report.push((
        "title",
        "suggest",
        until_fresh(&client, &varnish, suggest, |_, b| {
            b.to_string().to_lowercase().contains("alpine shelter")
        })
        .await,
    ));

    // Price.
    app.admin_json(
        Method::PATCH,
        "/api/v1/variants/TENT-1",
        json!({ "price": { "amount": 1000, "currency": "USD" } }),
    )
    .await;
    report.push((
        "price",
        "product",
        until_fresh(&client, &varnish, &product, |_, b| b["price"]["amount"] == 1000).await,
    ));
    report.push((
        "price",
        "listing",
        until_fresh(&client, &varnish, in_stock, |_, b| {
            titles(b).first().is_some_and(|t| t == "Alpine shelter")
        })
        .await,
    ));

    // Out of stock, and back.
    app.admin_json(Method::PUT, "/api/v1/inventory/TENT-1", json!({ "on_hand": 0 }))
        .await;
    report.push((
        "stock out",
        "product",
        until_fresh(&client, &varnish, &product, |_, b| b["in_stock"] == false).await,
    ));
    report.push((
        "stock out",
        "listing",
        until_fresh(&client, &varnish, in_stock, lacks("Alpine shelter")).await,
    ));
    report.push((
        "stock out",
        "search",
        until_fresh(&client, &varnish, search_in_stock, lacks("Alpine shelter")).await,
    ));
    app.admin_json(Method::PUT, "/api/v1/inventory/TENT-1", json!({ "on_hand": 4 }))
        .await;
    report.push((
        "stock in",
        "product",
        until_fresh(&client, &varnish, &product, |_, b| b["in_stock"] == true).await,
    ));
    report.push((
        "stock in",
        "listing",
        until_fresh(&client, &varnish, in_stock, has("Alpine shelter")).await,
    ));
    report.push((
        "stock in",
        "search",
        until_fresh(&client, &varnish, search_in_stock, has("Alpine shelter")).await,
    ));

    // Category rename: the category, the product's path, the search facets.
    app.admin_json(Method::PATCH, &category, json!({ "name": "Shelters" }))
        .await;
    let renamed = |_: StatusCode, b: &Value| b.to_string().contains("Shelters");
    report.push((
        "category rename",
        "category",
        until_fresh(&client, &varnish, &category, renamed).await,
    ));
    report.push((
        "category rename",
        "product",
        until_fresh(&client, &varnish, &product, renamed).await,
    ));
    report.push((
        "category rename",
        "search",
        until_fresh(&client, &varnish, &search_outdoor, renamed).await,
    ));

    // Category move: the new parent's listing gains the product, the old one loses it.
    app.admin_json(Method::PATCH, &category, json!({ "parent": kitchen["id"] }))
        .await;
    report.push((
        "category move",
        "new parent",
        until_fresh(&client, &varnish, &kitchen_listing, has("Alpine shelter")).await,
    ));
    report.push((
        "category move",
        "old parent",
        until_fresh(&client, &varnish, &listing, lacks("Alpine shelter")).await,
    ));

    // Delete.
    let (status, _) = app
        .call(Method::DELETE, &product, Some(crate::helpers::ADMIN_KEY), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    report.push((
        "delete",
        "product",
        until_fresh(&client, &varnish, &product, |s, _| s == StatusCode::NOT_FOUND).await,
    ));
    report.push((
        "delete",
        "listing",
        until_fresh(&client, &varnish, &kitchen_listing, lacks("Alpine shelter")).await,
    ));
    report.push((
        "delete",
        "search",
        until_fresh(&client, &varnish, search, lacks("Alpine shelter")).await,
    ));

    for (change, page, took) in &report {
        eprintln!(
            "purge latency: {change:<16} {page:<10} {:>6.0} ms",
            took.as_secs_f64() * 1000.0
        );
    }
    for (change, page, took) in &report {
        assert!(*took < Duration::from_secs(1), "{change}: {page} took {took:?}");
    }
}

#[tokio::test]
async fn a_thousand_sku_stock_sync_purges_completely_through_a_small_header_limit() {
    let varnish_port = free_port();
    // The purger's requests are larger than this Varnish takes: it must split, not loop.
    let app = server(varnish_port, None, |c| c.cdn.purge_max_header_bytes = 6000).await;
    let varnish = Varnish::start(varnish_port, origin_port(&app), &["http_req_hdr_len=2048"]);
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for p in 0..100 {
        let variants: Vec<Value> = (0..10)
            .map(|v| json!({ "sku": format!("SYNC-{p:03}-{v}"), "title": format!("v{v}"), "price": { "amount": 100, "currency": "USD" }, "stock": 1 }))
            .collect();
        let created = app
            .create_product(json!({ "title": format!("Synced {p}"), "variants": variants }))
            .await;
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        through(&client, &varnish, &format!("/api/v1/products/{id}")).await;
    }
    for p in 0..100 {
        for v in 0..10 {
            let (status, _) = app
                .admin_json(
                    Method::PUT,
                    &format!("/api/v1/inventory/SYNC-{p:03}-{v}"),
                    json!({ "on_hand": 7 }),
                )
                .await;
            assert_eq!(status, StatusCode::OK);
        }
    }
    for id in &ids {
        until_fresh(&client, &varnish, &format!("/api/v1/products/{id}"), |_, b| {
            b["variants"]
                .as_array()
                .is_some_and(|vs| vs.iter().all(|v| v["available"] == 7))
        })
        .await;
    }
    // Later purges still arrive.
    let path = format!("/api/v1/products/{}", ids[0]);
    app.admin_json(Method::PATCH, &path, json!({ "title": "Synced again" }))
        .await;
    let took = until_fresh(&client, &varnish, &path, |_, b| b["title"] == "Synced again").await;
    assert!(took < Duration::from_secs(1), "{took:?}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let line = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {metrics}"))
            .to_owned()
    };
    assert!(
        line("storefront_cdn_purge_requests_total{result=\"rejected\"}")
            != "storefront_cdn_purge_requests_total{result=\"rejected\"} 0",
        "the small limit was hit and split around"
    );
    assert!(line("storefront_cdn_purge_lag_entries").ends_with(" 0"), "{metrics}");
}

#[tokio::test]
async fn an_origin_outage_is_served_stale_and_then_recovers() {
    let varnish_port = free_port();
    let short = |c: &mut Config| {
        c.http_cache.s_maxage_secs = 1;
        c.http_cache.stale_while_revalidate_secs = 30;
    };
    let app = server(varnish_port, None, short).await;
    let port = origin_port(&app);
    let varnish = Varnish::start(varnish_port, port, &[]);
    let client = reqwest::Client::new();
    let created = app
        .create_product(crate::helpers::product("Lantern", "LANT-1", 900))
        .await;
    let path = format!("/api/v1/products/{}", created["id"].as_str().unwrap());
    assert_eq!(through(&client, &varnish, &path).await.0, StatusCode::OK);

    let data = app.stop().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, cache, body) = through(&client, &varnish, &path).await;
    assert_eq!(
        (status, cache.as_str(), body["title"].as_str()),
        (StatusCode::OK, "HIT", Some("Lantern")),
        "stale while the origin is down"
    );

    let app = server(varnish_port, Some(data), |c| {
        short(c);
        c.server.listen = format!("127.0.0.1:{port}");
    })
    .await;
    app.admin_json(Method::PATCH, &path, json!({ "title": "Lantern II" }))
        .await;
    let took = until_fresh(&client, &varnish, &path, |_, b| b["title"] == "Lantern II").await;
    assert!(took < Duration::from_secs(2), "{took:?}");
}
