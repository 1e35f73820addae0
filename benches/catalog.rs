//! In-process HTTP benchmarks through the real router (no sockets): a cached product GET, a
//! conditional GET answered 304, a cached listing page, and a cart read from a kept page and
//! repriced; plus the stock counters' hold and release.
//!
//! `cargo bench --bench catalog`

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use criterion::{criterion_group, criterion_main, Criterion};
use std::sync::Arc;

use storefront::clock::SystemClock;
use storefront::config::Config;
use storefront::http::{self, AppState};
use storefront::service::catalog::ListingParams;
use storefront::{Services, Settings};
use tower::ServiceExt;

fn catalog(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (_dir, services, router) = demo_store(|_| {});
    let catalog = services.catalog.clone();
    let slug = runtime
        .block_on(catalog.list_products(&ListingParams::default()))
        .map(|r| {
            let page: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
            page["items"][0]["slug"].as_str().unwrap().to_owned()
        })
        .unwrap();
    let product_path = format!("/api/v1/products/{slug}");

    let get = |path: &str, etag: Option<&str>| {
        let mut req = Request::get(path);
        if let Some(etag) = etag {
            req = req.header(header::IF_NONE_MATCH, etag);
        }
        req.body(Body::empty()).unwrap()
    };
    let warm = runtime
        .block_on(router.clone().oneshot(get(&product_path, None)))
        .unwrap();
    assert_eq!(warm.status(), StatusCode::OK);
    let etag = warm.headers()[header::ETAG].to_str().unwrap().to_owned();
    runtime
        .block_on(
            router
                .clone()
                .oneshot(get("/api/v1/products?category=computers&limit=20", None)),
        )
        .unwrap();

    let mut group = c.benchmark_group("http");
    group.bench_function("cached_product_get", |b| {
        b.to_async(&runtime).iter(|| async {
            let res = router.clone().oneshot(get(&product_path, None)).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap()
        })
    });
    group.bench_function("conditional_get_304", |b| {
        b.to_async(&runtime).iter(|| async {
            let res = router.clone().oneshot(get(&product_path, Some(&etag))).await.unwrap();
            assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
        })
    });
    group.bench_function("cached_listing_page", |b| {
        b.to_async(&runtime).iter(|| async {
            let res = router
                .clone()
                .oneshot(get("/api/v1/products?category=computers&limit=20", None))
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap()
        })
    });
    group.finish();
}

/// A demo store on a temporary directory, with `tweak` applied to its config, and its router.
fn demo_store(tweak: impl FnOnce(&mut Config)) -> (tempfile::TempDir, Services, http::Edge) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config.storage.sync_writes = false;
    config.rate_limit.api_per_second = 0;
    tweak(&mut config);
    let settings = Settings::try_from(&config).unwrap();
    let services = Services::open(&settings, Arc::new(SystemClock)).unwrap();
    storefront::demo::load(&services.catalog).unwrap();
    let router = http::router(AppState::new(&services, &settings.http), &settings.http);
    (dir, services, router)
}

/// `GET /cart` of a three-line guest cart: served from its kept page, and repriced on every
/// read (the page cache off, as before it existed).
fn cart(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("cart");
    for (name, page_bytes) in [("get_cart_kept_page", 8 << 20), ("get_cart_repriced", 0)] {
        let (_dir, services, router) = demo_store(|c| c.cart.page_cache_bytes = page_bytes);
        let listing = runtime
            .block_on(services.catalog.list_products(&ListingParams::default()))
            .unwrap();
        let page: serde_json::Value = serde_json::from_slice(listing.body()).unwrap();
        let mut token = None::<String>;
        for item in page["items"].as_array().unwrap().iter().take(3) {
            let slug = item["slug"].as_str().unwrap();
            let product = runtime
                .block_on(router.clone().oneshot(plain_get(&format!("/api/v1/products/{slug}"))))
                .unwrap();
            let product: serde_json::Value = serde_json::from_slice(
                &runtime
                    .block_on(axum::body::to_bytes(product.into_body(), usize::MAX))
                    .unwrap(),
            )
            .unwrap();
            let sku = product["variants"][0]["sku"].as_str().unwrap();
            let mut add = Request::post("/api/v1/cart/items").header(header::CONTENT_TYPE, "application/json");
            if let Some(t) = &token {
                add = add.header("x-cart-token", t);
            }
            let body = Body::from(serde_json::json!({ "sku": sku, "quantity": 1 }).to_string());
            let res = runtime
                .block_on(router.clone().oneshot(add.body(body).unwrap()))
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            token = Some(res.headers()["x-cart-token"].to_str().unwrap().to_owned());
        }
        let token = token.unwrap();
        let read = || {
            Request::get("/api/v1/cart")
                .header("x-cart-token", &token)
                .body(Body::empty())
                .unwrap()
        };
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                let res = router.clone().oneshot(read()).await.unwrap();
                assert_eq!(res.status(), StatusCode::OK);
                axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap()
            })
        });
    }
    group.finish();
}

fn plain_get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

/// The stock counter's hot path: one hold and its release (two CAS loops), uncontended and
/// with two threads fighting over the same SKU.
fn stock(c: &mut Criterion) {
    use storefront::service::inventory::StockLedger;
    let ledger = Arc::new(StockLedger::new());
    ledger.insert("SKU-1", [0; 16], 1_000_000, 0);
    let mut group = c.benchmark_group("stock");
    group.bench_function("reserve_release", |b| {
        b.iter(|| {
            ledger.reserve("SKU-1", 1).unwrap();
            ledger.release("SKU-1", 1).unwrap();
        })
    });
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rival = {
        let (ledger, stop) = (ledger.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = ledger.reserve("SKU-1", 1).map(|_| ledger.release("SKU-1", 1));
            }
        })
    };
    group.bench_function("reserve_release_contended", |b| {
        b.iter(|| {
            ledger.reserve("SKU-1", 1).unwrap();
            ledger.release("SKU-1", 1).unwrap();
        })
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    rival.join().unwrap();
    group.finish();
}

criterion_group!(benches, catalog, cart, stock);
criterion_main!(benches);
