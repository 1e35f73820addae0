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
