//! Operations endpoints and router-level behaviour.

use std::time::Duration;

use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{product, spawn_app, spawn_with};

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    let (status, body) = app.get_json("/healthz").await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "status": "ok" })));
    let (status, body) = app.get_json("/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ready");
    // The probes bypass the in-flight limit through a second router; they are still counted
    // under their own paths.
    let text = app.get("/metrics").await.text().await.unwrap();
    for probe in ["/healthz", "/readyz"] {
        let series = format!(r#"http_requests_total{{method="GET",route="{probe}",status="200"}} 1"#);
        assert!(text.contains(&series), "{series} in {text}");
    }
}

#[tokio::test]
async fn metrics_cover_routes_storage_and_caches() {
    let app = spawn_app().await;
    app.create_product(product("Metered", "M-1", 100)).await;
    app.get("/api/v1/products/metered").await;
    app.get("/api/v1/products/metered").await;
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/api/v1/products/{key}",status="200"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_request_duration_seconds_bucket{method="POST",route="/api/v1/products""#),
        "{text}"
    );
    assert!(text.contains("rocksdb_block_cache_capacity_bytes 67108864"), "{text}");
    assert!(text.contains(r#"rocksdb_estimated_keys{cf="products"}"#), "{text}");
    assert!(
        text.contains(r#"storefront_response_cache_hits_total{cache="product"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn the_openapi_document_and_docs_page_are_served() {
    let app = spawn_app().await;
    let (status, spec) = app.get_json("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/products",
        "/api/v1/products/{key}",
        "/api/v1/categories",
        "/api/v1/inventory/{sku}",
        "/healthz",
        "/metrics",
    ] {
        assert!(spec["paths"].get(path).is_some(), "{path} is documented");
    }
    // The schemas the operations name are in the document.
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    for name in [
        "ProductView",
        "ProductInput",
        "CartView",
        "Money",
        "ErrorBody",
        "UserView",
    ] {
        assert!(schemas.contains_key(name), "{name} is a schema");
    }
    let every = &spec["paths"]["/api/v1/cart/items"]["post"]["responses"];
    assert!(every.get("429").is_some() && every.get("503").is_some(), "{every}");
    assert!(spec["components"]["securitySchemes"].get("bearer").is_some());
    let codes = schemas["ErrorBody"]["description"].as_str().unwrap();
    assert!(codes.contains("`insufficient_stock`: 409") && codes.contains("`cart_expired`: 404"));
    let html = app.get("/docs").await.text().await.unwrap();
    assert!(html.contains("/api/v1/products/{key}"));
    assert!(html.contains("Add a SKU"), "summaries come from the handlers' docs");
}

/// Every documented operation is routed: each path and method of the document, with its path
/// parameters filled in, reaches a handler (never `route_not_found` or `method_not_allowed`).
/// The other direction holds by construction (routes are only registered through
/// `utoipa_axum::routes!`, which documents them), and `http::tests` checks that no route is
/// registered any other way.
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = spawn_app().await;
    let (_, spec) = app.get_json("/openapi.json").await;
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let concrete = path
                .split('/')
                .map(|seg| if seg.starts_with('{') { "x" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let res = app
                .client
                .request(method.clone(), app.url(&concrete))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = res.status();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            let code = body["error"]["code"].as_str().unwrap_or("");
            assert!(
                code != "route_not_found" && code != "method_not_allowed",
                "{method} {path} is documented but not routed ({status} {code})"
            );
            checked += 1;
        }
    }
    assert!(checked >= 43, "only {checked} operations documented");
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = spawn_app().await;
    let (status, body) = app.get_json("/api/v1/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({ "error": { "code": "route_not_found", "message": "no route matches this path" } })
    );
    let res = app.admin(Method::PUT, "/api/v1/products", Some(json!({}))).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "method_not_allowed"
    );
}

#[tokio::test]
async fn every_response_has_a_request_id() {
    let app = spawn_app().await;
    let a = app.get("/healthz").await;
    let b = app.get("/healthz").await;
    let (a, b) = (a.headers()["x-request-id"].clone(), b.headers()["x-request-id"].clone());
    assert_ne!(a, b);
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123", "a caller's id is kept");
    assert!(res.headers().contains_key(header::CACHE_CONTROL));
}

#[tokio::test]
async fn the_demo_catalog_loads_into_an_empty_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = storefront::config::Config::default();
    config.server.listen = "127.0.0.1:0".into();
    config.storage.data_dir = dir.path().to_path_buf();
    let app = storefront::demo::app(config).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let server = tokio::spawn(app.run_until(std::future::pending()));
    let page: Value = reqwest::get(format!("{base}/api/v1/products?limit=100"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(page["total"].as_u64().unwrap() >= 20, "{page}");
    let first = page["items"][0]["slug"].as_str().unwrap();
    let res = reqwest::get(format!("{base}/api/v1/products/{first}")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    server.abort();
}

/// Headers that differ between any two responses.
fn stable_headers(res: &reqwest::Response) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = res
        .headers()
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "date" | "x-request-id"))
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
        .collect();
    h.sort();
    h
}

/// Cached product pages and listings are answered before the router (`src/http/fast.rs`);
/// those answers must be the router's answers: same body and headers, 304s, request ids,
/// metrics, the rate limit, and the router's path for what the fast path does not handle.
#[tokio::test]
async fn cached_pages_from_the_fast_path_answer_as_the_router_does() {
    let app = crate::helpers::spawn_with(None, |c| {
        c.rate_limit.api_per_second = 1;
        c.rate_limit.api_burst = 12;
    })
    .await;
    app.create_product(product("Fast Mug", "FM-1", 900)).await;
    for path in ["/api/v1/products/fast-mug", "/api/v1/products?limit=5&sort=price_asc"] {
        let first = app.get(path).await; // a miss: rendered by the router, then cached
        let second = app.get(path).await; // a hit: the fast path
        assert_eq!(
            (first.status(), second.status()),
            (StatusCode::OK, StatusCode::OK),
            "{path}"
        );
        assert_eq!(stable_headers(&first), stable_headers(&second), "{path}");
        for name in [
            "x-content-type-options",
            "content-security-policy",
            "etag",
            "surrogate-key",
        ] {
            assert!(second.headers().contains_key(name), "{path}: {name}");
        }
        let ids = (
            first.headers()["x-request-id"].clone(),
            second.headers()["x-request-id"].clone(),
        );
        assert_ne!(ids.0, ids.1, "{path}: request ids are unique across both paths");
        let etag = second.headers()["etag"].to_str().unwrap().to_owned();
        assert_eq!(first.text().await.unwrap(), second.text().await.unwrap(), "{path}");
        let revalidated = app.get_if_none_match(path, &etag).await;
        assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert!(revalidated.headers().contains_key("x-content-type-options"));
    }
    // A caller's plain request id is kept; anything else is replaced.
    let client = reqwest::Client::new();
    for (sent, kept) in [
        ("trace-42", true),
        ("bad id\twith tab", false),
        (&"x".repeat(65)[..], false),
    ] {
        let res = client
            .get(app.url("/api/v1/products/fast-mug"))
            .header("x-request-id", sent)
            .send()
            .await
            .unwrap();
        let echoed = res.headers()["x-request-id"].to_str().unwrap();
        assert_eq!(echoed == sent, kept, "{sent:?} echoed as {echoed:?}");
    }
    let text = app.get("/metrics").await.text().await.unwrap();
    for line in [
        r#"http_requests_total{method="GET",route="/api/v1/products/{key}",status="200"} 5"#,
        r#"http_requests_total{method="GET",route="/api/v1/products/{key}",status="304"} 1"#,
        r#"http_requests_total{method="GET",route="/api/v1/products",status="200"} 2"#,
        r#"http_requests_total{method="GET",route="/api/v1/products",status="304"} 1"#,
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    // The per-IP limit holds on cached pages too: the burst runs out, and the answer is the
    // standard 429.
    let mut limited = None;
    for _ in 0..20 {
        let res = app.get("/api/v1/products/fast-mug").await;
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(res);
            break;
        }
    }
    let limited = limited.expect("the rate limit applies to cached pages");
    assert!(limited.headers().contains_key(header::RETRY_AFTER));
    assert!(limited.headers().contains_key("x-content-type-options"));
    assert_eq!(limited.json::<Value>().await.unwrap()["error"]["code"], "rate_limited");
}

/// Every response is counted: those of routes under their route, and those answered before
/// or without one (unknown paths, the rate limit, unread bodies) under `route="edge"`.
#[tokio::test]
async fn metrics_count_responses_no_route_answered() {
    let app = crate::helpers::spawn_with(None, |c| {
        c.rate_limit.api_per_second = 1;
        c.rate_limit.api_burst = 3;
    })
    .await;
    assert_eq!(app.get("/api/v1/no-such-thing").await.status(), StatusCode::NOT_FOUND);
    let mut limited = 0;
    for _ in 0..6 {
        if app.get("/api/v1/categories").await.status() == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert!(limited >= 2, "{limited}");
    // The operations endpoints are not limited with the API.
    for _ in 0..5 {
        assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    }
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    for line in [
        r#"http_requests_total{method="GET",route="edge",status="404"} 1"#.to_owned(),
        format!(r#"http_requests_total{{method="GET",route="edge",status="429"}} {limited}"#),
    ] {
        assert!(text.contains(&line), "{line}\n{text}");
    }
}

/// A product's ETag is accepted in `If-Match` on an edit, and a stale one is refused.
#[tokio::test]
async fn a_products_own_etag_is_accepted_in_if_match() {
    let app = spawn_app().await;
    let created = app.create_product(product("Etag Mug", "EM-1", 900)).await;
    let id = created["id"].as_str().unwrap();
    let etag = app.get(&format!("/api/v1/products/{id}")).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let client = reqwest::Client::new();
    let patch = |etag: String| {
        client
            .patch(app.url(&format!("/api/v1/products/{id}")))
            .bearer_auth(crate::helpers::ADMIN_KEY)
            .header(header::IF_MATCH, etag)
            .json(&json!({ "title": "Etag Mug 2" }))
            .send()
    };
    let res = patch(etag.clone()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    let res = patch(etag).await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::PRECONDITION_FAILED,
        "the old ETag is stale now"
    );
}

#[test]
fn the_version_names_the_commit_and_completions_come_from_the_cli() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_storefront"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let version = run(&["--version"]);
    let commit = version
        .trim()
        .strip_prefix(&format!("storefront {} (commit ", env!("CARGO_PKG_VERSION")))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{version}"));
    assert!(
        commit == "unknown" || (commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "{commit}"
    );
    for (shell, marker) in [
        ("bash", "_storefront()"),
        ("zsh", "#compdef storefront"),
        ("fish", "complete -c storefront"),
    ] {
        let script = run(&["completions", shell]);
        assert!(script.contains(marker), "{shell}");
        assert!(script.contains("verify-backup"), "{shell} completes the subcommands");
    }
}

/// `[log] access` logs each request, from the fast path and the router alike; at the default
/// level, dependencies' info lines (tantivy's commits) stay out.
#[tokio::test]
async fn the_access_log_has_a_line_per_request_and_dependencies_log_at_warn() {
    let dir = tempfile::tempdir().unwrap();
    let server = crate::durability::ServerProcess::start_with(dir.path(), &[("STOREFRONT__LOG__ACCESS", "true")]);
    let client = reqwest::Client::new();
    let created = crate::durability::post_product(&client, &server.base, &product("Logged lamp", "LOG-1", 100))
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    for _ in 0..2 {
        // The second read is answered by the fast path.
        let r = client
            .get(format!("{}/api/v1/products/logged-lamp", server.base))
            .header("x-request-id", "trace-me-1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let _ = client.get(format!("{}/nowhere", server.base)).send().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let access = loop {
        let logs: Vec<Value> = server
            .logs()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let access: Vec<Value> = logs
            .iter()
            .filter(|l| l["target"] == "storefront::access")
            .cloned()
            .collect();
        if access.len() >= 4 || std::time::Instant::now() > deadline {
            assert!(
                logs.iter()
                    .all(|l| !l["target"].as_str().unwrap_or("").starts_with("tantivy")),
                "tantivy logs at info: {logs:?}"
            );
            break access;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let reads: Vec<&Value> = access
        .iter()
        .filter(|l| l["path"] == "/api/v1/products/logged-lamp")
        .collect();
    assert_eq!(reads.len(), 2, "{access:?}");
    for read in reads {
        assert_eq!((&read["method"], &read["status"]), (&json!("GET"), &json!(200)));
        assert_eq!(read["request_id"], "trace-me-1");
        assert_eq!(read["peer"], "127.0.0.1");
        assert!(read["micros"].as_u64().is_some());
    }
    assert!(access.iter().any(|l| l["path"] == "/nowhere" && l["status"] == 404));
    assert!(access.iter().any(|l| l["method"] == "POST" && l["status"] == 201));
}

/// Bytes that are not UTF-8 in a path parameter get the standard JSON error, not plain text.
#[tokio::test]
async fn a_path_that_is_not_utf8_gets_a_json_400() {
    let app = spawn_app().await;
    for path in [
        "/api/v1/products/%FF%FE",
        "/api/v1/categories/%C3%28",
        "/api/v1/orders/%FF/timeline",
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bad_request", "{path}: {body}");
    }
}

/// Metric names in a PromQL expression (functions, keywords, labels and durations left out).
fn metric_names(expr: &str) -> Vec<String> {
    const NOT_METRICS: &[&str] = &[
        "sum",
        "by",
        "rate",
        "histogram_quantile",
        "topk",
        "clamp_min",
        "le",
        "route",
        "status",
        "up",
        "job",
        "irate",
        "increase",
        "avg",
        "max",
        "min",
        "without",
        "on",
        "and",
        "or",
        "unless",
        "result",
        "sink",
        "cache",
        "cf",
    ];
    let mut names = Vec::new();
    let mut rest = expr;
    // Label matchers and strings are not names.
    let mut cleaned = String::new();
    let mut depth = 0;
    for c in rest.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ if depth > 0 => {}
            '[' => depth += 100,
            _ => cleaned.push(c),
        }
        if c == ']' {
            depth -= 100;
        }
    }
    rest = &cleaned;
    for word in rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
        if word.is_empty() || word.chars().next().unwrap().is_ascii_digit() || NOT_METRICS.contains(&word) {
            continue;
        }
        names.push(word.to_owned());
    }
    names
}

/// The shipped Grafana dashboard and alert rules name only metrics the server exports.
#[tokio::test]
async fn the_dashboard_and_alert_rules_name_only_metrics_that_exist() {
    // With a CDN to purge (one that is not there: the purger's metrics exist all the same).
    let app = spawn_with(None, |c| c.cdn.purge_url = "http://127.0.0.1:9/purge".into()).await;
    app.create_product(product("Metered lamp", "MET-1", 100)).await;
    for _ in 0..2 {
        app.get("/api/v1/products/metered-lamp").await;
    }
    crate::helpers::search_until(&app, "/api/v1/search?q=metered", |page| page["total"] == 1).await;
    let text = app.get("/metrics").await.text().await.unwrap();
    // A family declared with `# TYPE` exists even with no series yet (no sinks, say).
    let exported: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| match l.strip_prefix("# TYPE ") {
            Some(declared) => declared.split(' ').next(),
            None if l.starts_with('#') || l.is_empty() => None,
            None => l.split(['{', ' ']).next(),
        })
        .collect();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("ops/grafana/storefront.json")).unwrap()).unwrap();
    let mut exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap().to_owned())
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");
    let rules = std::fs::read_to_string(root.join("ops/prometheus/alerts.yml")).unwrap();
    let alerts: Vec<String> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .map(|e| e.trim().to_owned())
        .collect();
    assert!(alerts.len() >= 8, "{alerts:?}");
    exprs.extend(alerts);
    let mut missing = Vec::new();
    for expr in &exprs {
        for name in metric_names(expr) {
            if !exported.contains(name.as_str()) {
                missing.push(format!("{name} (in {expr})"));
            }
        }
    }
    assert!(missing.is_empty(), "not on /metrics: {missing:#?}");
    // The new families carry real values.
    let value = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert!(value("process_resident_memory_bytes") > 1e6);
    assert!(value("process_open_fds") > 3.0);
    assert!(value("process_start_time_seconds") > 1.7e9);
    assert_eq!(value("storefront_search_documents"), 1.0);
    assert!(text.contains(&format!(
        "storefront_build_info{{version=\"{}\"",
        env!("CARGO_PKG_VERSION")
    )));
}

#[tokio::test]
async fn metrics_can_be_restricted_to_a_token() {
    let app = spawn_with(None, |c| c.server.metrics_token = "prometheus-scrape-token".into()).await;
    let get = |token: Option<&'static str>| {
        let mut req = app.client.get(app.url("/metrics"));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send()
    };
    let res = get(None).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(get(Some("wrong")).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let res = get(Some("prometheus-scrape-token")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("http_requests_total"));
    assert_eq!(
        get(Some(crate::helpers::ADMIN_KEY)).await.unwrap().status(),
        StatusCode::OK
    );
    // The probes stay open.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

/// The Dockerfile is clean under hadolint (pinned, from PyPI, installed by `scripts/setup.sh`);
/// any finding, down to the informational ones, fails.
#[test]
fn the_dockerfile_is_clean_under_hadolint() {
    let hadolint = crate::notifications::python().with_file_name("hadolint");
    let out = std::process::Command::new(&hadolint)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile"))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup.sh)", hadolint.display()));
    assert!(
        out.status.success(),
        "hadolint findings:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
