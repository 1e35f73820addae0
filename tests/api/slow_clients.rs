//! Slow and idle clients (no login needed to be one): sockets that send nothing, headers
//! that never end, and bodies that never arrive cost a connection for a bounded time. Health
//! probes and product pages keep answering at once, and the idle sockets are closed.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{product, spawn_with};

#[tokio::test]
async fn slow_and_idle_sockets_neither_hold_request_slots_nor_stay_open() {
    let app = spawn_with(None, |c| {
        c.server.header_read_timeout_ms = 1_000;
        c.server.body_read_timeout_ms = 1_000;
        // Fewer slots than slow bodies: they must not take them.
        c.server.max_in_flight = 32;
    })
    .await;
    let created = app.create_product(product("Sturdy lamp", "SL-1", 1000)).await;
    let page = format!("/api/v1/products/{}", created["id"].as_str().unwrap());
    let addr = app
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();

    let mut sockets = Vec::new();
    for _ in 0..150 {
        sockets.push(TcpStream::connect(&addr).await.unwrap());
    }
    for _ in 0..50 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /api/v1/products HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        sockets.push(s);
    }
    for _ in 0..100 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"email\":",
        )
        .await
        .unwrap();
        sockets.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    for path in ["/healthz", "/readyz", page.as_str()] {
        for _ in 0..5 {
            let started = Instant::now();
            let r = app.get(path).await;
            let took = started.elapsed();
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert!(
                took < Duration::from_millis(100),
                "{path} took {took:?} beside 300 slow sockets"
            );
        }
    }

    // After the timeouts every slow socket is answered (408 for the bodies) or closed.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let mut closed = 0;
    let mut timed_out_bodies = 0;
    let mut open = Vec::new();
    for (n, mut s) in sockets.into_iter().enumerate() {
        let mut buf = vec![0u8; 4096];
        let mut seen = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    closed += 1;
                    break;
                }
                Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
                Err(_) => {
                    open.push(n);
                    break;
                }
            }
        }
        if String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 408") {
            timed_out_bodies += 1;
        }
    }
    assert_eq!(timed_out_bodies, 100, "each never-ending body gets 408 body_timeout");
    assert_eq!(closed, 300, "every slow socket is closed; still open: {open:?}");
}
