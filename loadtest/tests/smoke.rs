//! Keeps the tool from rotting: a few seconds of the browse scenario against a real server.

use std::path::Path;
use std::time::Duration;

use storefront_loadtest::client::Target;
use storefront_loadtest::scenario::Scenario;
use storefront_loadtest::{catalog, compare, plot, report, run, Mode, RunSettings};

/// A demo server on an ephemeral port: its data dir (kept while it runs), URL and handle.
async fn demo_server() -> (tempfile::TempDir, String, Server) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = storefront::config::Config::default();
    config.server.listen = "127.0.0.1:0".into();
    config.storage.data_dir = dir.path().join("data");
    let app = storefront::demo::app(config).await.unwrap();
    let url = format!("http://{}", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    (dir, url, Server { stop, task })
}

/// A running demo server.
struct Server {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Shuts it down and waits until the store is closed. Aborting the task instead left
    /// RocksDB open with its background threads running as the test process exited, and
    /// its C++ runtime aborted the process ("terminate called without an active exception").
    async fn shut_down(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_runs_against_a_demo_server_and_writes_reports() {
    let (dir, url, server) = demo_server().await;

    let scenario = Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/browse.toml")).unwrap();
    let target = Target::resolve(&url, false).await.unwrap();
    let sample = catalog::discover(&target, &scenario, 100).await.unwrap();
    assert!(sample.products.len() >= 20 && !sample.categories.is_empty());
    assert!(!sample.etags.is_empty(), "conditional steps were primed");
    let settings = RunSettings {
        mode: Mode::Open { rate: 200.0 },
        connections: 4,
        threads: 2,
        duration: Duration::from_secs(2),
        warmup: Duration::from_millis(300),
        max_requests: Some(10_000),
        seed: 7,
    };
    let outcome = run(&target, &scenario, &sample, &settings).await.unwrap();
    let rss = vec![report::RssSample {
        t_s: 0.0,
        rss_kb: report::rss_kb(std::process::id()).unwrap(),
    }];
    let report = report::build(
        "smoke",
        &url,
        &scenario,
        &settings,
        &outcome,
        sample.products.len(),
        rss,
        0,
    );
    assert!(report.total.count >= 300, "{}", report::summary(&report));
    assert_eq!(report.total.errors, 0, "{}", report::summary(&report));
    let conditional = report.steps.iter().find(|s| s.name == "product_304").unwrap();
    assert!(
        conditional.statuses.get("304").copied().unwrap_or(0) > 0,
        "{:?}",
        conditional.statuses
    );
    assert!(report.steps.iter().all(|s| s.latency.count > 0));
    assert!(report::summary(&report).contains("category_listing"));

    let svg = dir.path().join("r.svg");
    plot::write_svg(&report, &svg).unwrap();
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    let json = serde_json::to_string(&report).unwrap();
    let back: report::Report = serde_json::from_str(&json).unwrap();
    assert!(compare::compare(&report, &back).contains("1.00x"));
    server.shut_down().await;
}

#[tokio::test]
async fn remote_targets_are_refused_without_the_flag() {
    let err = Target::resolve("http://10.1.2.3:80", false).await.unwrap_err();
    assert!(err.to_string().contains("not a loopback address"), "{err}");
    assert!(Target::resolve("http://127.0.0.1:9", false).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_shoppers_add_lines_then_place_orders() {
    let (_dir, url, server) = demo_server().await;

    let scenario = Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/checkout.toml")).unwrap();
    assert!(scenario.sequence);
    let target = Target::resolve(&url, false).await.unwrap();
    let sample = catalog::discover(&target, &scenario, 100).await.unwrap();
    let settings = RunSettings {
        mode: Mode::Open { rate: 60.0 },
        connections: 2,
        threads: 1,
        duration: Duration::from_secs(2),
        warmup: Duration::from_millis(200),
        max_requests: Some(1_000),
        seed: 11,
    };
    let outcome = run(&target, &scenario, &sample, &settings).await.unwrap();
    let report = report::build(
        "smoke",
        &url,
        &scenario,
        &settings,
        &outcome,
        sample.products.len(),
        vec![],
        0,
    );
    let step = |name: &str| report.steps.iter().find(|s| s.name == name).unwrap().clone();
    let (adds, checkouts) = (step("add_to_cart"), step("checkout"));
    assert_eq!(
        checkouts.statuses.keys().collect::<Vec<_>>(),
        ["201"],
        "{}",
        report::summary(&report)
    );
    // Every shopper adds one to three lines before checking out.
    let ratio = adds.latency.count as f64 / checkouts.latency.count as f64;
    assert!((1.0..=3.0).contains(&ratio), "{ratio}: {}", report::summary(&report));
    assert!(checkouts.latency.count >= 10, "{}", report::summary(&report));
    server.shut_down().await;
}
