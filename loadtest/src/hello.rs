//! The ceiling reference: a plain hyper server answering every request with a fixed JSON body.
//! Performance claims are reported as ratios to this server measured in the same run, because
//! on a 2-core machine shared with the load generator absolute numbers drift while ratios hold.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{header, Response};
use hyper_util::rt::TokioIo;

/// Builds a JSON body of about `size` bytes.
pub fn body(size: usize) -> Bytes {
    let filler = "x".repeat(size.saturating_sub(40));
    Bytes::from(format!("{{\"hello\":\"world\",\"padding\":\"{filler}\"}}"))
}

/// Serves until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, body: Bytes) -> anyhow::Result<()> {
    loop {
        let (stream, _): (tokio::net::TcpStream, SocketAddr) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_req| {
                let body = body.clone();
                async move {
                    let mut response = Response::new(Full::new(body));
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        header::HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// What a [`serve_sink`] has received.
#[derive(Debug, Default)]
pub struct SinkCount {
    count: std::sync::atomic::AtomicU64,
    first_ms: std::sync::atomic::AtomicU64,
    last_ms: std::sync::atomic::AtomicU64,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A webhook sink for measuring deliveries: answers every `POST` with 204 and counts it;
/// `GET` answers `{"count", "first_ms", "last_ms"}` (wall-clock milliseconds of the first and
/// the latest delivery).
pub async fn serve_sink(listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    let seen = std::sync::Arc::new(SinkCount::default());
    loop {
        let (stream, _): (tokio::net::TcpStream, SocketAddr) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let seen = seen.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let seen = seen.clone();
                async move {
                    let response = if req.method() == hyper::Method::POST {
                        let now = now_ms();
                        let _ = seen.first_ms.compare_exchange(0, now, Relaxed, Relaxed);
                        seen.last_ms.fetch_max(now, Relaxed);
                        seen.count.fetch_add(1, Relaxed);
                        let mut r = Response::new(Full::new(Bytes::new()));
                        *r.status_mut() = hyper::StatusCode::NO_CONTENT;
                        r
                    } else {
                        Response::new(Full::new(Bytes::from(format!(
                            "{{\"count\":{},\"first_ms\":{},\"last_ms\":{}}}",
                            seen.count.load(Relaxed),
                            seen.first_ms.load(Relaxed),
                            seen.last_ms.load(Relaxed)
                        ))))
                    };
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
