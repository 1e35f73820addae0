//! API fuzzing with schemathesis (from PyPI, installed by `scripts/setup.sh`) against our
//! own `/openapi.json`, as an anonymous caller and as an admin: no server errors, and every
//! status, content type and body as the spec says. Each pass is bounded in time
//! (`FUZZ_SECS`, default 45). Real keys for the path parameters let the fuzzer past the 404s
//! to the documents themselves.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{product, spawn_app, TestApp, ADMIN_KEY};
use crate::notifications::python;

const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";

/// A catalog with one of everything the path parameters name.
async fn seed(app: &TestApp) -> String {
    app.create_category("Fuzz lamps", None).await;
    let (status, _) = app
        .admin_json(Method::POST, "/api/v1/sellers", json!({ "name": "Fuzz shop" }))
        .await;
    assert_eq!(status, 201);
    for i in 0..3 {
        let mut body = product(&format!("Fuzz lamp {i}"), &format!("FUZZ-{i}"), 1000 + i);
        body["category"] = json!("fuzz-lamps");
        body["seller"] = json!("fuzz-shop");
        body["variants"][0]["compare_at_price"] = json!({ "amount": 5000, "currency": "USD" });
        app.create_product(body).await;
    }
    // A product with no seller, category or compare-at price: the nulls must match the spec.
    app.create_product(product("Plain lamp", "PLAIN-1", 700)).await;
    let (status, _) = app
        .admin_json(Method::PUT, "/api/v1/inventory/FUZZ-0", json!({ "on_hand": 50 }))
        .await;
    assert_eq!(status, 200);
    let shopper = app.register("fuzz@example.com").await;
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/products/fuzz-lamp-0/reviews",
            Some(&shopper.access),
            Some(json!({ "rating": 4, "title": "Bright", "body": "Lights the room." })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    format!(
        r#"
[[operations]]
include-path-regex = "^/api/v1/(products|variants)/\\{{key\\}}|^/api/v1/products/\\{{key\\}}/"
parameters = {{ "path.key" = "fuzz-lamp-0" }}

[[operations]]
include-path-regex = "^/api/v1/(inventory|variants)/\\{{sku\\}}"
parameters = {{ "path.sku" = "FUZZ-0" }}

[[operations]]
include-path = "/api/v1/categories/{{key}}"
parameters = {{ "path.key" = "fuzz-lamps" }}

[[operations]]
include-path = "/api/v1/sellers/{{key}}"
parameters = {{ "path.key" = "fuzz-shop" }}

[[operations]]
include-path = "/api/v1/reviews/{{id}}"
parameters = {{ "path.id" = "{review}" }}
"#,
        review = body["id"].as_str().unwrap()
    )
}

async fn fuzz(app: &TestApp, config: &std::path::Path, bearer: Option<&str>) {
    let secs: u64 = std::env::var("FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(45);
    let mut command = tokio::process::Command::new(python());
    command
        .args(["-m", "schemathesis.cli", "--config-file"])
        .arg(config)
        .arg("run")
        .arg(app.url("/openapi.json"))
        .args(["--checks", CHECKS, "--workers", "2", "--no-color", "--seed", "20261202"])
        .args(["--max-time", &secs.to_string(), "--request-timeout", "10"])
        .env("SCHEMATHESIS_HOOKS", "")
        .kill_on_drop(true);
    if let Some(token) = bearer {
        command.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let out = tokio::time::timeout(Duration::from_secs(secs + 120), command.output())
        .await
        .expect("schemathesis ran past its time budget")
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&out.stdout);
    let summary = report
        .lines()
        .find(|l| l.contains(" generated, "))
        .unwrap_or("no summary");
    eprintln!(
        "schemathesis as {}: {}",
        bearer.map_or("anonymous", |_| "admin"),
        summary.trim()
    );
    assert!(
        out.status.success(),
        "schemathesis found failures as {}:\n{report}\n{}",
        bearer.map_or("anonymous", |_| "admin"),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_as_its_spec_says_under_fuzzing() {
    let app = spawn_app().await;
    let config = seed(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schemathesis.toml");
    std::fs::write(&path, config).unwrap();
    fuzz(&app, &path, None).await;
    fuzz(&app, &path, Some(ADMIN_KEY)).await;
    // The server is still whole: it answers, and the seeded product is there unless the
    // admin pass deleted it.
    assert_eq!(app.get("/healthz").await.status(), 200);
}
