//! Test harness: `spawn_app` and typed helpers.

use std::path::PathBuf;
use std::sync::Once;
use std::time::{Duration, Instant};

use std::sync::Arc;

use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{json, Value};
use storefront::clock::ManualClock;
use storefront::config::Config;
use storefront::worker::Progress;
use storefront::{App, Services};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef0123";

static TRACING: Once = Once::new();

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub data_dir: TempDir,
    /// The server's clock: it moves only when a test advances it.
    pub clock: ManualClock,
    services: Arc<Services>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Starts a server with default settings.
pub async fn spawn_app() -> TestApp {
    spawn_with(None, |_| {}).await
}

/// Starts a server on `data_dir` (a fresh one when `None`), after `tweak` edits the config.
pub async fn spawn_with(data_dir: Option<TempDir>, tweak: impl FnOnce(&mut Config)) -> TestApp {
    TRACING.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            storefront::telemetry::init(&Default::default()).expect("default log level");
        }
    });
    let data_dir = data_dir.unwrap_or_else(|| tempfile::tempdir().expect("tempdir"));
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".into();
    config.storage.data_dir = data_dir.path().to_path_buf();
    config.auth.admin_api_key = ADMIN_KEY.into();
    // Cheap hashing and no general rate limit keep tests fast; the auth tests opt back in.
    config.auth.argon2_memory_kib = 1024;
    config.auth.argon2_iterations = 1;
    config.rate_limit.api_per_second = 0;
    config.search.writer_memory_bytes = 15_000_000;
    config.search.poll_interval_ms = 20;
    config.rate_limit.auth_per_minute_per_ip = 10_000;
    config.rate_limit.login_per_minute_per_account = 10_000;
    tweak(&mut config);
    let clock = ManualClock::new();
    let app = App::build_with(config.clone(), Arc::new(clock.clone()))
        .await
        .expect("app builds");
    let services = app.services();
    let base = format!("http://{}", app.local_addr());
    let (tx, rx) = oneshot::channel();
    let handle = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    TestApp {
        base,
        client: Client::new(),
        data_dir,
        clock,
        services,
        stop: Some(tx),
        handle: Some(handle),
    }
}

impl TestApp {
    /// Runs one step of a background worker now, instead of waiting for its interval.
    pub async fn run_worker(&self, name: &str) -> Progress {
        self.services
            .workers
            .run_once(name)
            .await
            .unwrap_or_else(|| panic!("no worker named {name}"))
            .unwrap_or_else(|e| panic!("worker {name} failed: {e}"))
    }

    /// The server's clock, in Unix seconds.
    pub fn clock_secs(&self) -> i64 {
        use storefront::clock::Clock;
        self.clock.now_ms() / 1000
    }

    /// Moves the server's clock forward.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Stops the server gracefully and hands back its data directory.
    pub async fn stop(mut self) -> TempDir {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.expect("server task").expect("server stopped cleanly");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.data_dir, dir)
    }

    pub fn data_path(&self) -> PathBuf {
        self.data_dir.path().to_path_buf()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("request")
    }

    /// A conditional GET.
    pub async fn get_if_none_match(&self, path: &str, etag: impl AsRef<str>) -> Response {
        self.client
            .get(self.url(path))
            .header(reqwest::header::IF_NONE_MATCH, etag.as_ref())
            .send()
            .await
            .expect("request")
    }

    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let res = self.get(path).await;
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Sends a JSON body with the admin key.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut req = self.client.request(method, self.url(path)).bearer_auth(ADMIN_KEY);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request")
    }

    pub async fn admin_json(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        let res = self.admin(method, path, Some(body)).await;
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Creates a product and returns its document, asserting 201.
    pub async fn create_product(&self, body: Value) -> Value {
        let (status, doc) = self.admin_json(Method::POST, "/api/v1/products", body).await;
        assert_eq!(status, StatusCode::CREATED, "{doc}");
        doc
    }

    pub async fn create_category(&self, name: &str, parent: Option<&str>) -> Value {
        let (status, doc) = self
            .admin_json(
                Method::POST,
                "/api/v1/categories",
                json!({ "name": name, "parent": parent }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{doc}");
        doc["category"].clone()
    }
}

/// A valid product body.
pub fn product(title: &str, sku: &str, price: i64) -> Value {
    json!({
        "title": title,
        "description": "A test product",
        "brand": "Acme",
        "images": [{ "url": "https://img.example.com/a.jpg", "alt": title }],
        "attributes": { "colour": "Black", "weight_g": 120, "recycled": false },
        "variants": [{ "sku": sku, "title": "Default", "price": { "amount": price, "currency": "USD" }, "stock": 5 }]
    })
}

/// A registered user with a fresh session.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub email: String,
    pub access: String,
    pub refresh: String,
}

impl TestApp {
    pub async fn register(&self, email: &str) -> Session {
        let res = self
            .client
            .post(self.url("/api/v1/auth/register"))
            .json(&json!({ "email": email, "password": "correct horse battery", "name": "Test User" }))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.unwrap();
        Session {
            id: body["user"]["id"].as_str().unwrap().to_owned(),
            email: email.to_owned(),
            access: body["tokens"]["access_token"].as_str().unwrap().to_owned(),
            refresh: body["tokens"]["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn login(&self, email: &str) -> Session {
        let res = self
            .client
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({ "email": email, "password": "correct horse battery" }))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        let me: Value = self
            .client
            .get(self.url("/api/v1/me"))
            .bearer_auth(body["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Session {
            id: me["id"].as_str().unwrap().to_owned(),
            email: email.to_owned(),
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Gives a user a role (through the admin key) and returns a session carrying it.
    pub async fn promote(&self, user: &Session, role: &str, seller: Option<&str>) -> Session {
        let (status, body) = self
            .admin_json(
                Method::POST,
                &format!("/api/v1/admin/users/{}/role", user.id),
                json!({ "role": role, "seller": seller }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        self.login(&user.email).await
    }
}

/// The fields a 422 response lists, in order.
pub fn error_fields(body: &Value) -> Vec<&str> {
    body["error"]["details"]
        .as_array()
        .expect("a 422 lists its fields")
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect()
}

impl TestApp {
    /// `POST /auth/refresh` with a refresh token.
    pub async fn refresh_session(&self, refresh_token: impl AsRef<str>) -> (StatusCode, Value) {
        let body = json!({ "refresh_token": refresh_token.as_ref() });
        self.call(Method::POST, "/api/v1/auth/refresh", None, Some(body)).await
    }

    /// `POST /auth/logout` with a refresh token.
    pub async fn logout_session(&self, refresh_token: impl AsRef<str>) -> (StatusCode, Value) {
        let body = json!({ "refresh_token": refresh_token.as_ref() });
        self.call(Method::POST, "/api/v1/auth/logout", None, Some(body)).await
    }
}

/// Polls a search until `done` accepts the response (the indexer is asynchronous).
pub async fn search_until(app: &TestApp, path: &str, done: impl Fn(&Value) -> bool) -> (Value, Duration) {
    let started = Instant::now();
    loop {
        let (status, body) = app.get_json(path).await;
        // Right after a start, search answers 503 until the index has caught up.
        let starting = status == StatusCode::SERVICE_UNAVAILABLE && body["error"]["code"] == "not_ready";
        assert!(status == StatusCode::OK || starting, "{status}: {body}");
        if !starting && done(&body) {
            return (body, started.elapsed());
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "search never converged for {path}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
