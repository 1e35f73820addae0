//! Online backup and the restore drill: back up a server under write load, keep writing,
//! restore with the real CLI, and check that the restored store is the store at the
//! snapshot point.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{product, search_until, spawn_app, spawn_with, TestApp};

/// POSTs `body` anonymously; the status.
async fn post(app: &TestApp, path: &str, body: Value) -> StatusCode {
    reqwest::Client::new()
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .expect("request")
        .status()
}

/// One write and when it happened relative to the backup.
struct Write {
    kind: &'static str,
    key: String,
    sent: Instant,
    acked: Instant,
}

/// Writes products, registrations and stock deliveries until `stop`; returns what was
/// acknowledged.
async fn write_load(app: Arc<TestApp>, stop: Arc<AtomicBool>) -> Vec<Write> {
    let mut done = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let sent = Instant::now();
        let (kind, key, ok) = match i % 3 {
            0 => {
                let res = app
                    .admin(
                        Method::POST,
                        "/api/v1/products",
                        Some(product(&format!("Drill {i}"), &format!("DRILL-{i}"), 100 + i)),
                    )
                    .await;
                ("product", format!("drill-{i}"), res.status() == StatusCode::CREATED)
            }
            1 => {
                let res = post(
                    &app,
                    "/api/v1/auth/register",
                    json!({ "email": format!("drill{i}@example.com"), "password": "correct horse battery", "name": "Drill" }),
                )
                .await;
                ("user", format!("drill{i}@example.com"), res == StatusCode::CREATED)
            }
            _ => {
                let res = app
                    .admin(
                        Method::POST,
                        "/api/v1/inventory/STOCK-1/adjust",
                        Some(json!({ "delta": 1 })),
                    )
                    .await;
                ("delivery", String::new(), res.status() == StatusCode::OK)
            }
        };
        assert!(ok, "{kind} {key} was refused");
        done.push(Write {
            kind,
            key,
            sent,
            acked: Instant::now(),
        });
    }
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_restore_drill_brings_back_the_store_at_the_snapshot() {
    let app = Arc::new(spawn_app().await);
    app.create_product(product("Stock Holder", "STOCK-1", 500)).await;
    let initial = app.get_json("/api/v1/inventory/STOCK-1").await.1["on_hand"]
        .as_i64()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write_load(app.clone(), stop.clone()));
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;

    let backup_sent = Instant::now();
    let (status, manifest) = app
        .admin_json(Method::POST, "/api/v1/admin/backups", json!({ "name": "drill" }))
        .await;
    let backup_done = Instant::now();
    assert_eq!(status, StatusCode::CREATED, "{manifest}");
    assert_eq!(manifest["search"], "rebuild");
    assert!(manifest["files"].as_array().unwrap().len() > 2, "{manifest}");
    let (status, again) = app
        .admin_json(Method::POST, "/api/v1/admin/backups", json!({ "name": "drill" }))
        .await;
    assert_eq!(
        (status, &again["error"]["code"]),
        (StatusCode::CONFLICT, &json!("backup_exists"))
    );
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    stop.store(true, Ordering::Relaxed);
    let writes = writer.await.unwrap();
    let before: Vec<&Write> = writes.iter().filter(|w| w.acked < backup_sent).collect();
    let after: Vec<&Write> = writes.iter().filter(|w| w.sent > backup_done).collect();
    assert!(
        before.len() >= 5 && after.len() >= 5,
        "{} before, {} after",
        before.len(),
        after.len()
    );

    let res = app.admin(Method::GET, "/api/v1/admin/backups", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let list: Value = res.json().await.unwrap();
    assert_eq!(list["items"][0]["name"], "drill");
    assert_eq!(list["items"][0]["state"], "complete");
    let live_on_hand = app.get_json("/api/v1/inventory/STOCK-1").await.1["on_hand"]
        .as_i64()
        .unwrap();
    let backup_dir = app.data_path().join("backups/drill");
    let app = Arc::into_inner(app).expect("the writer is done");
    let _live = app.stop().await;

    let bin = env!("CARGO_BIN_EXE_storefront");
    let verify = std::process::Command::new(bin)
        .args(["verify-backup"])
        .arg(&backup_dir)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
    let restored = tempfile::tempdir().unwrap();
    let restore = std::process::Command::new(bin)
        .args(["restore", "--from"])
        .arg(&backup_dir)
        .arg("--data-dir")
        .arg(restored.path())
        .output()
        .unwrap();
    assert!(restore.status.success(), "{}", String::from_utf8_lossy(&restore.stderr));
    let again = std::process::Command::new(bin)
        .args(["restore", "--from"])
        .arg(&backup_dir)
        .arg("--data-dir")
        .arg(restored.path())
        .output()
        .unwrap();
    assert!(!again.status.success(), "a non-empty data directory is refused");

    let app = spawn_with(Some(restored), |_| {}).await;
    for w in &before {
        match w.kind {
            "product" => assert_eq!(
                app.get(&format!("/api/v1/products/{}", w.key)).await.status(),
                StatusCode::OK,
                "{}",
                w.key
            ),
            "user" => assert_eq!(
                post(
                    &app,
                    "/api/v1/auth/login",
                    json!({ "email": w.key, "password": "correct horse battery" })
                )
                .await,
                StatusCode::OK,
                "{}",
                w.key
            ),
            _ => {}
        }
    }
    for w in &after {
        match w.kind {
            "product" => assert_eq!(
                app.get(&format!("/api/v1/products/{}", w.key)).await.status(),
                StatusCode::NOT_FOUND,
                "{}",
                w.key
            ),
            "user" => assert_eq!(
                post(
                    &app,
                    "/api/v1/auth/login",
                    json!({ "email": w.key, "password": "correct horse battery" })
                )
                .await,
                StatusCode::UNAUTHORIZED,
                "{}",
                w.key
            ),
            _ => {}
        }
    }
    // The stock counter is the snapshot's: every delivery acknowledged before it, none sent
    // after it, and the counters agree with the stored record.
    let deliveries = |f: &dyn Fn(&Write) -> bool| writes.iter().filter(|w| w.kind == "delivery" && f(w)).count() as i64;
    let (_, stock) = app.get_json("/api/v1/inventory/STOCK-1").await;
    let on_hand = stock["on_hand"].as_i64().unwrap();
    let lowest = initial + deliveries(&|w| w.acked < backup_sent);
    let highest = initial + deliveries(&|w| w.sent < backup_done);
    assert!(
        (lowest..=highest).contains(&on_hand),
        "{on_hand} not in {lowest}..={highest}"
    );
    assert!(on_hand < live_on_hand, "later deliveries are not in the backup");
    assert_eq!(stock["reserved"], 0);
    assert_eq!(stock["available"], stock["on_hand"]);
    // The search index was not in the backup: it is rebuilt from the restored store.
    let first = before.iter().find(|w| w.kind == "product").unwrap();
    let (page, _) = search_until(&app, "/api/v1/search?q=drill&limit=100", |page: &Value| {
        page["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|p| p["slug"] == first.key.as_str()))
    })
    .await;
    assert!(page["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| after.iter().all(|w| p["slug"] != w.key.as_str())));
}

#[tokio::test]
async fn backups_are_for_admins_and_names_are_plain() {
    let app = spawn_app().await;
    let res = post(&app, "/api/v1/admin/backups", json!({})).await;
    assert_eq!(res, StatusCode::UNAUTHORIZED);
    let (status, body) = app
        .admin_json(Method::POST, "/api/v1/admin/backups", json!({ "name": "../escape" }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["details"][0]["field"], "name");
    let (status, manifest) = app.admin_json(Method::POST, "/api/v1/admin/backups", json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let name = manifest["name"].as_str().unwrap().to_owned();
    assert!(name.ends_with('Z'), "{manifest}");
    let (status, one) = app
        .admin_json(Method::GET, &format!("/api/v1/admin/backups/{name}"), json!(null))
        .await;
    assert_eq!((status, &one["state"]), (StatusCode::OK, &json!("complete")), "{one}");
    assert_eq!(one["manifest"], manifest);
    let (status, _) = app
        .admin_json(Method::GET, "/api/v1/admin/backups/nope", json!(null))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // `to`: a folder elsewhere on the server, new or empty, absolute; named after it.
    let elsewhere = tempfile::tempdir().unwrap();
    let to = elsewhere.path().join("offsite-1");
    let (status, body) = app
        .admin_json(Method::POST, "/api/v1/admin/backups", json!({ "to": "relative/dir" }))
        .await;
    assert_eq!(
        (status, &body["error"]["details"][0]["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("to"))
    );
    let (status, body) = app
        .admin_json(Method::POST, "/api/v1/admin/backups", json!({ "to": app.data_path() }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a non-empty folder: {body}");
    let (status, manifest) = app
        .admin_json(Method::POST, "/api/v1/admin/backups", json!({ "to": to }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{manifest}");
    assert_eq!(manifest["name"], "offsite-1");
    assert_eq!(storefront::service::backup::verify(&to).unwrap().name, "offsite-1");
    let (status, one) = app
        .admin_json(Method::GET, "/api/v1/admin/backups/offsite-1", json!(null))
        .await;
    assert_eq!((status, one["path"].as_str()), (StatusCode::OK, to.to_str()), "{one}");
}

/// `storefront backup --to` asks the running server, then copies the backup off its disk and
/// verifies the copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_command_asks_the_running_server_and_copies_the_result() {
    let app = spawn_app().await;
    app.create_product(product("Copied", "COPY-1", 100)).await;
    let off_box = tempfile::tempdir().unwrap();
    let copy = off_box.path().join("nightly");
    let (base, data_dir, copy_arg) = (app.url(""), app.data_path(), copy.clone());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_storefront"))
            .env("STOREFRONT__AUTH__ADMIN_API_KEY", crate::helpers::ADMIN_KEY)
            .args(["backup", "--name", "nightly", "--server", &base, "--data-dir"])
            .arg(&data_dir)
            .arg("--to")
            .arg(&copy_arg)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        copy.display().to_string()
    );
    assert!(copy.join("backup.json").is_file() && app.data_path().join("backups/nightly/backup.json").is_file());
    let restored = tempfile::tempdir().unwrap();
    storefront::service::backup::restore(&copy, restored.path()).unwrap();
    let _live = app.stop().await;
    let app = spawn_with(Some(restored), |_| {}).await;
    assert_eq!(app.get("/api/v1/products/copied").await.status(), StatusCode::OK);
}
