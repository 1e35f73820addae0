//! Requests the HTTP parser itself refuses (before any handler runs) still get the standard
//! JSON error body, and the server keeps serving everyone else.

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::spawn_app;

/// Sends `request` on a new connection and reads the answer until the server closes it.
async fn raw(addr: &str, request: &[u8]) -> (u16, String, Value) {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), socket.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection after a parse error")
        .unwrap();
    let text = String::from_utf8(answer).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    let status = head[9..12].parse().unwrap();
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: not JSON: {body:?}"));
    (status, head.to_ascii_lowercase(), body)
}

#[tokio::test]
async fn the_parsers_own_400_414_and_431_have_the_json_error_shape() {
    let app = spawn_app().await;
    let addr = app
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();

    let long_uri = format!(
        "GET /api/v1/products?q={} HTTP/1.1\r\nhost: x\r\n\r\n",
        "a".repeat(70_000)
    );
    let many_headers = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\n{}\r\n",
        (0..120).map(|i| format!("x-h{i}: v\r\n")).collect::<String>()
    );
    let huge_header = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "b".repeat(500_000)
    );
    let cases: [(&[u8], u16, &str); 5] = [
        (b"GET /\x01 HTTP/1.1\r\nhost: x\r\n\r\n", 400, "bad_request"),
        (b"GET / HTTP/1.1\r\nbad header line\r\n\r\n", 400, "bad_request"),
        (long_uri.as_bytes(), 414, "uri_too_long"),
        (many_headers.as_bytes(), 431, "headers_too_large"),
        (huge_header.as_bytes(), 431, "headers_too_large"),
    ];
    for (request, status, code) in cases {
        let (got, head, body) = raw(&addr, request).await;
        assert_eq!(got, status, "{code} ({} bytes): {head}", request.len());
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains("connection: close"), "{head}");
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }

    // Ordinary traffic is untouched, errors of our own included.
    let ok = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let missing = app.client.get(app.url("/api/v1/products/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}
