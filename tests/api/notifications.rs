//! Notifications through the server, against real receivers: a webhook receiver that checks
//! every signature with the reference `standardwebhooks` library (PyPI), and a real SMTP
//! server (`aiosmtpd`, PyPI), both installed by `scripts/setup.sh`. Retries, the dead-letter
//! queue and replay, one failing endpoint beside a healthy one, SSRF refusal, a kill -9 while
//! a delivery is in flight, and the email flows (welcome, verification, password reset).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use storefront::config::Config;

use crate::checkout::{guest_body, CARD_OK};
use crate::durability::ServerProcess;
use crate::helpers::{error_fields, product, spawn_app, spawn_with, TestApp, ADMIN_KEY};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The Python of the test tools (`scripts/setup.sh` makes it).
pub fn python() -> PathBuf {
    let env = std::env::var_os("STOREFRONT_PYENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/storefront-pyenv"));
    let python = env.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup.sh (make test does)",
        python.display()
    );
    python
}

/// A helper process from `tests/support` that prints its port first.
struct Helper {
    child: Child,
    port: u16,
}

impl Helper {
    fn start(script: &str, args: &[&str]) -> Helper {
        let mut child = Command::new(python())
            .arg(format!("{}/tests/support/{script}", env!("CARGO_MANIFEST_DIR")))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the helper");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the helper prints its port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{script} printed {line:?}"));
        Helper { child, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A webhook receiver verifying with `standardwebhooks`.
struct Receiver(Helper);

impl Receiver {
    fn start(args: &[&str]) -> Receiver {
        let mut all = vec![SECRET];
        all.extend_from_slice(args);
        Receiver(Helper::start("webhook_receiver.py", &all))
    }

    async fn received(&self) -> Vec<Value> {
        let v: Value = reqwest::get(self.0.url("/received"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v.as_array().cloned().unwrap_or_default()
    }

    async fn calls(&self) -> u64 {
        let v: Value = reqwest::get(self.0.url("/calls")).await.unwrap().json().await.unwrap();
        v.as_u64().unwrap_or(0)
    }

    async fn mode(&self, mode: Value) {
        reqwest::Client::new()
            .post(self.0.url("/mode"))
            .json(&mode)
            .send()
            .await
            .unwrap();
    }

    async fn verifies(&self, headers: Value, body: &str) -> bool {
        let v: Value = reqwest::Client::new()
            .post(self.0.url("/verify"))
            .json(&json!({ "headers": headers, "body": body }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["verified"].as_bool().unwrap()
    }
}

/// A real SMTP server writing what it receives to a file.
struct Smtp {
    helper: Helper,
    out: tempfile::TempDir,
}

impl Smtp {
    fn start() -> Smtp {
        let out = tempfile::tempdir().unwrap();
        let file = out.path().join("mail.jsonl");
        let helper = Helper::start("smtp_sink.py", &[file.to_str().unwrap()]);
        Smtp { helper, out }
    }

    fn messages(&self) -> Vec<Value> {
        std::fs::read_to_string(self.out.path().join("mail.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits for a message to `to` whose subject contains `subject`.
    async fn wait_for(&self, to: &str, subject: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(m) = self.messages().into_iter().find(|m| {
                m["to"].as_array().is_some_and(|t| t.iter().any(|x| x == to))
                    && m["subject"].as_str().is_some_and(|s| s.contains(subject))
            }) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no email {subject:?} to {to}: {:?}",
                self.messages()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn fast_delivery(c: &mut Config) {
    c.webhooks.allow_private_targets = true;
    c.notifications.interval_ms = 20;
    c.notifications.backoff_initial_ms = 100;
    c.notifications.backoff_max_ms = 1_000;
}

impl TestApp {
    async fn hook(&self, receiver: &Receiver, events: Value) -> Value {
        let (status, hook) = self
            .admin_json(
                Method::POST,
                "/api/v1/admin/webhooks",
                json!({ "url": receiver.0.url("/hook"), "events": events, "secret": SECRET }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{hook}");
        hook
    }

    /// Moves the clock on (retries come due) until `done`, or fails after 15 s.
    async fn until<F: std::future::Future<Output = bool>>(&self, what: &str, mut done: impl FnMut() -> F) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !done().await {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            self.advance(Duration::from_millis(500));
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }

    async fn deliveries(&self, query: &str) -> Vec<Value> {
        let (status, page) = self
            .admin_json(Method::GET, &format!("/api/v1/admin/deliveries?{query}"), Value::Null)
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["items"].as_array().cloned().unwrap_or_default()
    }
}

#[tokio::test]
async fn a_webhook_failing_twice_gets_each_event_once_signed_per_standard_webhooks() {
    let receiver = Receiver::start(&["--fail-first", "2"]);
    let app = spawn_with(None, fast_delivery).await;
    let hook = app.hook(&receiver, json!(["order_placed"])).await;
    assert_eq!(hook["secret"], SECRET);
    app.create_product(product("Lamp", "LAMP-1", 1500)).await;
    let cart = app.guest_add(None, "LAMP-1", 1).await;
    let r = app.checkout(Some(&cart), None, Some("k"), &guest_body(CARD_OK)).await;
    assert_eq!(r.status, StatusCode::CREATED);

    app.until("a successful delivery", || async {
        receiver.received().await.iter().any(|d| d["status"] == 204)
    })
    .await;
    let got = receiver.received().await;
    assert_eq!(
        got.iter().map(|d| d["status"].as_u64().unwrap()).collect::<Vec<_>>(),
        vec![500, 500, 204]
    );
    assert!(
        got.iter().all(|d| d["verified"] == true),
        "every attempt verifies: {got:?}"
    );
    let mut ids: Vec<&str> = got.iter().map(|d| d["id"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 1, "one event, retried under its id");
    let body: Value = serde_json::from_str(got[2]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        (body["id"].as_str(), body["type"].as_str()),
        (Some(ids[0]), Some("order_placed"))
    );
    assert_eq!(body["data"]["order_id"], r.body["id"]);
    assert_eq!(app.outbox("order_placed").await.len(), 1);

    // A payload changed on the way no longer verifies.
    let last = &got[2];
    let headers = json!({
        "webhook-id": last["id"], "webhook-timestamp": last["timestamp"], "webhook-signature": last["signature"],
    });
    assert!(receiver.verifies(headers.clone(), last["body"].as_str().unwrap()).await);
    let tampered = last["body"]
        .as_str()
        .unwrap()
        .replace("order_placed", "order_cancelled");
    assert!(!receiver.verifies(headers, &tampered).await);

    // The receiver saw the 204 before the server read it and recorded the delivery.
    let sink = format!("webhook:{}", hook["id"].as_str().unwrap());
    app.until("the delivery recorded as delivered", || async {
        app.deliveries(&format!("sink={sink}")).await[0]["status"] == "delivered"
    })
    .await;
    let d = app.deliveries(&format!("sink={sink}")).await;
    assert_eq!(d.len(), 1);
    assert_eq!(
        (d[0]["status"].as_str(), d[0]["attempts"].as_u64()),
        (Some("delivered"), Some(3))
    );
    let statuses: Vec<u64> = d[0]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![500, 500, 204]);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("storefront_notification_retries_total 2"), "{metrics}");
}

#[tokio::test]
async fn a_dead_endpoint_fills_the_dead_letters_without_delaying_a_healthy_one_and_replay_delivers() {
    let bad = Receiver::start(&["--always-fail"]);
    let good = Receiver::start(&[]);
    let app = spawn_with(None, |c| {
        fast_delivery(c);
        c.notifications.max_attempts = 3;
    })
    .await;
    let bad_hook = app.hook(&bad, json!(["user_registered"])).await;
    app.hook(&good, json!(["*"])).await;
    app.register("ada@example.com").await;

    // The healthy endpoint has it without the clock moving: no retry of the other is awaited.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !good
        .received()
        .await
        .iter()
        .any(|d| d["body"].as_str().unwrap().contains("user_registered"))
    {
        assert!(Instant::now() < deadline, "the healthy endpoint never got the event");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.until("a dead letter", || async {
        !app.deliveries("status=dead").await.is_empty()
    })
    .await;
    let dead = app.deliveries("status=dead").await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["attempts"], 3);
    assert_eq!(dead[0]["last_error"], "HTTP 500");
    assert_eq!(dead[0]["sink"], format!("webhook:{}", bad_hook["id"].as_str().unwrap()));
    assert_eq!(bad.received().await.len(), 3, "exactly max_attempts attempts");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("storefront_notification_dead_letters 1"), "{metrics}");

    // The endpoint is fixed; a replay delivers the same event, under the same id.
    bad.mode(json!({ "always_fail": false })).await;
    let id = dead[0]["id"].as_str().unwrap();
    let (status, replayed) = app
        .admin_json(
            Method::POST,
            &format!("/api/v1/admin/deliveries/{id}/replay"),
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    assert_eq!(replayed["status"], "pending");
    app.until("the replayed delivery", || async {
        bad.received().await.iter().any(|d| d["status"] == 204)
    })
    .await;
    let got = bad.received().await;
    assert!(got.iter().all(|d| d["id"] == got[0]["id"] && d["verified"] == true));
    app.until("the delivery to be recorded", || async {
        let (_, d) = app
            .admin_json(Method::GET, &format!("/api/v1/admin/deliveries/{id}"), Value::Null)
            .await;
        d["status"] == "delivered"
    })
    .await;
    let (_, d) = app
        .admin_json(Method::GET, &format!("/api/v1/admin/deliveries/{id}"), Value::Null)
        .await;
    let notes: Vec<&str> = d["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["note"].as_str())
        .collect();
    assert!(notes.contains(&"replayed by admin"), "{notes:?}");
    assert!(app.deliveries("status=dead").await.is_empty());
    let (_, all) = app
        .admin_json(Method::POST, "/api/v1/admin/deliveries/replay", Value::Null)
        .await;
    assert_eq!(all["replayed"], 0);

    // Discarding keeps the record, marked.
    let (status, d) = app
        .admin_json(Method::DELETE, &format!("/api/v1/admin/deliveries/{id}"), Value::Null)
        .await;
    assert_eq!((status, d["status"].as_str()), (StatusCode::OK, Some("discarded")));
    assert_eq!(app.deliveries("status=discarded").await.len(), 1);
}

#[tokio::test]
async fn webhook_endpoints_refuse_private_targets_and_bad_fields() {
    let app = spawn_app().await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost/x",
        "http://10.0.0.1/",
        "http://[::1]/",
    ] {
        let (status, e) = app
            .admin_json(
                Method::POST,
                "/api/v1/admin/webhooks",
                json!({ "url": url, "events": ["*"] }),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {e}");
        assert_eq!(error_fields(&e), vec!["url"]);
    }
    let (status, e) = app
        .admin_json(
            Method::POST,
            "/api/v1/admin/webhooks",
            json!({ "url": "https://hooks.example.com/in", "events": ["order_placed", "nope"], "secret": "plain" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_fields(&e), vec!["events[1]", "secret"]);
    let (status, hook) = app
        .admin_json(
            Method::POST,
            "/api/v1/admin/webhooks",
            json!({ "url": "https://hooks.example.com/in", "events": ["*"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(
        hook["secret"].as_str().unwrap().starts_with("whsec_"),
        "a secret is made"
    );
    let path = format!("/api/v1/admin/webhooks/{}", hook["id"].as_str().unwrap());
    let (status, changed) = app.admin_json(Method::PATCH, &path, json!({ "active": false })).await;
    assert_eq!((status, changed["active"].as_bool()), (StatusCode::OK, Some(false)));
    let user = app.register("eve@example.com").await;
    let (status, _) = app
        .call(Method::GET, "/api/v1/admin/webhooks", Some(&user.access), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.admin(Method::DELETE, &path, None).await.status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn a_delivery_cut_by_kill_9_is_redone_after_the_restart() {
    let receiver = Receiver::start(&["--hang-ms", "1500"]);
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("STOREFRONT__WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true"),
        ("STOREFRONT__NOTIFICATIONS__INTERVAL_MS", "20"),
    ];
    let server = ServerProcess::start_with(dir.path(), &env);
    let client = reqwest::Client::new();
    let res = client
        .post(format!("{}/api/v1/admin/webhooks", server.base))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({ "url": receiver.0.url("/hook"), "events": ["user_registered"], "secret": SECRET }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = client
        .post(format!("{}/api/v1/auth/register", server.base))
        .json(&json!({ "email": "kim@example.com", "password": "correct horse battery", "name": "Kim" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.calls().await == 0 {
        assert!(Instant::now() < deadline, "no delivery started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The attempt is in flight: the server dies before it hears the answer.
    server.kill9();
    receiver.mode(json!({ "hang_ms": 0 })).await;
    let server = ServerProcess::start_with(dir.path(), &env);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = receiver.received().await;
        if got.len() >= 2 {
            assert!(
                got.iter().all(|d| d["id"] == got[0]["id"] && d["verified"] == true),
                "{got:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the cut delivery was not redone: {got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page: Value = client
        .get(format!("{}/api/v1/admin/deliveries?topic=user_registered", server.base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hooks: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["sink"].as_str().unwrap().starts_with("webhook:"))
        .collect();
    assert_eq!(hooks.len(), 1, "one delivery, redone, not a second one: {page}");
}

#[tokio::test]
async fn emails_reach_a_real_smtp_server_and_carry_working_verification_and_reset_links() {
    let smtp = Smtp::start();
    let port = smtp.helper.port;
    let app = spawn_with(None, move |c| {
        c.notifications.interval_ms = 20;
        c.email.transport = "smtp".into();
        c.email.smtp_port = port;
        c.email.from = "Shop <shop@example.com>".into();
    })
    .await;
    let ada = app.register("ada@example.com").await;
    let welcome = smtp.wait_for("ada@example.com", "Welcome").await;
    assert_eq!(welcome["from"], "shop@example.com");
    assert!(welcome["html"].as_str().unwrap().contains("<h1>"), "{welcome}");
    let verification = smtp.wait_for("ada@example.com", "Confirm your email").await;
    let token = |m: &Value| {
        let text = m["text"].as_str().unwrap().to_owned();
        let at = text.find("token=").expect("a link with a token") + 6;
        text[at..].split_whitespace().next().unwrap().to_owned()
    };
    let (_, me) = app.call(Method::GET, "/api/v1/me", Some(&ada.access), None).await;
    assert_eq!(me["email_verified"], false);
    let v = token(&verification);
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/verify-email",
            None,
            Some(json!({ "token": v })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, me) = app.call(Method::GET, "/api/v1/me", Some(&ada.access), None).await;
    assert_eq!(me["email_verified"], true);
    let (status, e) = app
        .call(
            Method::POST,
            "/api/v1/auth/verify-email",
            None,
            Some(json!({ "token": v })),
        )
        .await;
    assert_eq!(
        (status, e["error"]["details"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("used"))
    );

    // A reset for an unknown address answers the same and mails nothing.
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/password-reset",
            None,
            Some(json!({ "email": "nobody@example.com" })),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/password-reset",
            None,
            Some(json!({ "email": "ada@example.com" })),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let reset = token(&smtp.wait_for("ada@example.com", "Reset your").await);
    let confirm = |token: String, password: &str| json!({ "token": token, "password": password });
    let (status, e) = app
        .call(
            Method::POST,
            "/api/v1/auth/password-reset/confirm",
            None,
            Some(confirm(reset.clone(), "short")),
        )
        .await;
    assert_eq!(
        (status, error_fields(&e)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["password"])
    );
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/password-reset/confirm",
            None,
            Some(confirm(reset.clone(), "a much better passphrase")),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.refresh_session(&ada.refresh).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "every session is signed out");
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({ "email": "ada@example.com", "password": "a much better passphrase" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, e) = app
        .call(
            Method::POST,
            "/api/v1/auth/password-reset/confirm",
            None,
            Some(confirm(reset, "yet another passphrase")),
        )
        .await;
    assert_eq!(
        (status, e["error"]["details"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("used"))
    );

    // A link older than 30 minutes is refused.
    app.call(
        Method::POST,
        "/api/v1/auth/password-reset",
        None,
        Some(json!({ "email": "ada@example.com" })),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let late = loop {
        let resets: Vec<Value> = smtp
            .messages()
            .into_iter()
            .filter(|m| m["subject"].as_str().unwrap().contains("Reset your"))
            .collect();
        if resets.len() == 2 {
            break token(&resets[1]);
        }
        assert!(Instant::now() < deadline, "no second reset email");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    app.advance(Duration::from_secs(31 * 60));
    let (status, e) = app
        .call(
            Method::POST,
            "/api/v1/auth/password-reset/confirm",
            None,
            Some(confirm(late, "a fresh passphrase here")),
        )
        .await;
    assert_eq!(
        (status, e["error"]["details"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("expired"))
    );

    // An order mails its customer, with the order's number and total.
    app.create_product(product("Lamp", "LAMP-1", 1500)).await;
    let cart = app.guest_add(None, "LAMP-1", 1).await;
    let r = app.checkout(Some(&cart), None, Some("k"), &guest_body(CARD_OK)).await;
    let number = r.body["number"].as_str().unwrap();
    let placed = smtp
        .wait_for("ada@example.com", &format!("Order {number} received"))
        .await;
    let total = r.body["total"]["amount"].as_i64().unwrap();
    assert!(
        placed["text"]
            .as_str()
            .unwrap()
            .contains(&format!("{}.{:02} USD", total / 100, total % 100)),
        "{placed}"
    );
}

#[tokio::test]
async fn a_cart_left_alone_for_a_day_emits_one_reminder_until_it_changes() {
    let app = spawn_app().await;
    app.create_product(product("Lamp", "LAMP-1", 1500)).await;
    let ada = app.register("ada@example.com").await;
    app.user_add(&ada.access, "LAMP-1", 2).await;
    let abandoned = || async { app.outbox("cart_abandoned").await };
    app.advance(Duration::from_secs(23 * 3600));
    app.run_worker("cart_sweeper").await;
    assert!(abandoned().await.is_empty(), "not yet a day");
    app.advance(Duration::from_secs(3600 + 120));
    app.run_worker("cart_sweeper").await;
    let events = abandoned().await;
    assert_eq!(events.len(), 1, "{events:?}");
    let data = &events[0]["payload"];
    assert_eq!(
        (data["email"].as_str(), data["item_count"].as_i64()),
        (Some("ada@example.com"), Some(2))
    );
    assert_eq!(data["items"][0]["title"], "Lamp");
    app.advance(Duration::from_secs(2 * 24 * 3600));
    app.run_worker("cart_sweeper").await;
    assert_eq!(abandoned().await.len(), 1, "once per spell of inactivity");

    // The shopper comes back and leaves again: one more reminder.
    let ada = app.login("ada@example.com").await;
    app.user_add(&ada.access, "LAMP-1", 1).await;
    app.advance(Duration::from_secs(24 * 3600 + 120));
    app.run_worker("cart_sweeper").await;
    assert_eq!(abandoned().await.len(), 2);
    // A guest cart has no address to remind.
    app.guest_add(None, "LAMP-1", 1).await;
    app.advance(Duration::from_secs(24 * 3600 + 120));
    app.run_worker("cart_sweeper").await;
    assert_eq!(abandoned().await.len(), 2);
}

#[tokio::test]
async fn a_store_can_ask_for_a_verified_email_before_checkout() {
    let smtp = Smtp::start();
    let port = smtp.helper.port;
    let app = spawn_with(None, move |c| {
        c.notifications.interval_ms = 20;
        c.email.transport = "smtp".into();
        c.email.smtp_port = port;
        c.email.require_verified_for_checkout = true;
    })
    .await;
    app.create_product(product("Lamp", "LAMP-1", 1500)).await;
    let ada = app.register("ada@example.com").await;
    app.user_add(&ada.access, "LAMP-1", 1).await;
    let body =
        json!({ "shipping_address": crate::checkout::address(), "payment": { "provider": "test", "card": CARD_OK } });
    let r = app.checkout(None, Some(&ada.access), Some("a"), &body).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("email_unverified"))
    );
    let text = smtp.wait_for("ada@example.com", "Confirm your email").await["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = text[text.find("token=").unwrap() + 6..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/verify-email",
            None,
            Some(json!({ "token": token })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let r = app.checkout(None, Some(&ada.access), Some("b"), &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Guests give an email per order and are not asked.
    let cart = app.guest_add(None, "LAMP-1", 1).await;
    let r = app.checkout(Some(&cart), None, Some("c"), &guest_body(CARD_OK)).await;
    assert_eq!(r.status, StatusCode::CREATED);
    // The token is not kept once mailed: not in the event log, not in the delivery.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let d = app.deliveries("topic=email_verification_requested").await;
        if d.first().is_some_and(|d| d["status"] == "delivered") {
            assert!(!d[0]["payload"].to_string().contains(&token), "{d:?}");
            break;
        }
        assert!(Instant::now() < deadline, "not delivered: {d:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let logged = app.outbox("email_verification_requested").await;
    assert!(logged.iter().all(|e| !e.to_string().contains(&token)), "{logged:?}");
}

#[tokio::test]
async fn a_ping_reaches_only_its_endpoint_whatever_it_subscribes_to() {
    let pinged = Receiver::start(&[]);
    let other = Receiver::start(&[]);
    let app = spawn_with(None, fast_delivery).await;
    let hook = app.hook(&pinged, json!(["refund_issued"])).await;
    app.hook(&other, json!(["*"])).await;
    let path = format!("/api/v1/admin/webhooks/{}/ping", hook["id"].as_str().unwrap());
    let (status, e) = app.admin_json(Method::POST, &path, json!({ "count": 0 })).await;
    assert_eq!(
        (status, error_fields(&e)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["count"])
    );
    let (status, queued) = app.admin_json(Method::POST, &path, json!({ "count": 3 })).await;
    assert_eq!((status, queued["queued"].as_u64()), (StatusCode::ACCEPTED, Some(3)));
    app.until("three pings", || async { pinged.received().await.len() == 3 })
        .await;
    let got = pinged.received().await;
    let mut ids: Vec<&str> = got.iter().map(|d| d["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "three events");
    assert!(got
        .iter()
        .all(|d| d["verified"] == true && d["body"].as_str().unwrap().contains("\"type\":\"ping\"")));
    assert!(other.received().await.is_empty(), "a ping is for its endpoint only");
}

#[tokio::test]
async fn delivered_events_and_deliveries_are_deleted_after_retention() {
    let receiver = Receiver::start(&[]);
    let app = spawn_with(None, fast_delivery).await;
    app.hook(&receiver, json!(["user_registered"])).await;
    app.register("ada@example.com").await;
    app.until("the delivery", || async {
        !app.deliveries("status=delivered").await.is_empty()
    })
    .await;
    assert!(!app.outbox("user_registered").await.is_empty());
    app.advance(Duration::from_secs(6 * 24 * 3600));
    app.run_worker("notification_retention").await;
    assert!(!app.deliveries("status=delivered").await.is_empty(), "kept for 7 days");
    app.advance(Duration::from_secs(2 * 24 * 3600));
    app.run_worker("notification_retention").await;
    assert!(app.deliveries("status=delivered").await.is_empty());
    assert!(
        app.outbox("user_registered").await.is_empty(),
        "the event log is emptied too"
    );
}
