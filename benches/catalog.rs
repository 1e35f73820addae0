//! In-process HTTP benchmarks through the real router (no sockets): a cached product GET, a
//! conditional GET answered 304, and a cached listing page; plus the stock counters' hold and
//! release.
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
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config.storage.sync_writes = false;
    config.rate_limit.api_per_second = 0;
    let settings = Settings::try_from(&config).unwrap();
    let services = Services::open(&settings, Arc::new(SystemClock)).unwrap();
    storefront::demo::load(&services.catalog).unwrap();
    let catalog = services.catalog.clone();
    let router = http::router(AppState::new(&services, &settings.http), &settings.http);
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

criterion_group!(benches, catalog, stock);
criterion_main!(benches);
