//! The CDN purge hook, driven from the changelog.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use axum::routing::post;

use crate::helpers::{product, spawn_with};

#[tokio::test]
async fn catalog_changes_are_purged_by_surrogate_key() {
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = received.clone();
    let purge_server = axum::Router::new().route(
        "/purge",
        post(move |headers: HeaderMap| {
            let sink = sink.clone();
            async move {
                if let Some(keys) = headers.get("xkey-purge") {
                    sink.lock().unwrap().push(keys.to_str().unwrap().to_owned());
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let purge_url = format!("http://{}/purge", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, purge_server).await });

    let app = spawn_with(None, |c| {
        c.cdn.purge_url = purge_url;
        c.cdn.poll_interval_ms = 20;
    })
    .await;
    let created = app.create_product(product("Purged", "P-1", 100)).await;
    let tag = format!("product-{}", created["id"].as_str().unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let seen = received
            .lock()
            .unwrap()
            .iter()
            .any(|keys| keys.split(' ').any(|k| k == tag));
        if seen {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no purge for {tag}: {:?}",
            received.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all = received.lock().unwrap().join(" ");
    for tag in ["search", "suggest", "list-all", "list-brand-acme"] {
        assert!(all.split(' ').any(|k| k == tag), "a new product joins {tag}: {all}");
    }
}
