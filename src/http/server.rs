//! The connection layer under the router: accepting, HTTP/1.1 and HTTP/2, and the limits no
//! request-level layer can enforce because they act before a request exists: a header-read
//! timeout that also closes idle keep-alive connections, a cap on open connections, the
//! listen backlog and HTTP/2 stream limits. Slow or idle clients cost a socket for a bounded
//! time, never the server. With TLS on, the handshake shares the header-read timeout and
//! every response carries HSTS. hyper's own answers to unparsable requests get the JSON error
//! body ([`super::wire_errors`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Service;

use super::tls::Tls;
use super::wire_errors::JsonWireErrors;
use crate::config::ServerConfig;

/// Binds `addr` with the configured backlog.
pub async fn bind(addr: &str, config: &ServerConfig) -> std::io::Result<TcpListener> {
    let addr: SocketAddr = tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to listen on"))?;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(config.listen_backlog.max(1))
}

/// Serves `router` on `listener` (over TLS when `tls` is given) until `shutdown` completes,
/// then lets open connections finish for up to `grace`.
pub async fn serve(
    listener: TcpListener,
    edge: crate::http::Edge,
    config: &ServerConfig,
    tls: Option<Arc<Tls>>,
    shutdown: impl std::future::Future<Output = ()>,
    grace: Duration,
) {
    // RFC 6797: HSTS is only meaningful (and only sent) over a secure transport.
    let hsts = tls.as_ref().filter(|_| config.hsts_max_age_secs > 0).map(|_| {
        axum::http::HeaderValue::try_from(format!("max-age={}", config.hsts_max_age_secs))
            .expect("digits are a valid header value")
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(config.header_read_timeout_ms.max(1)))
        // hyper's read buffer holds the unparsed head; its cap is the head's limit.
        .max_buf_size(config.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(config.http2_max_concurrent_streams.max(1))
        .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20));
    let connections = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    // Every connection task, also those that have not sent a byte yet (which `graceful` does
    // not know of): serving returns only once none of them holds the router. (Notification
    // delivery attempts still in flight can hold the store a moment longer.)
    let tasks = TaskTracker::new();
    let stopping = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        // A connection waits in the backlog while the cap is reached.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors or a reset before accept: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let first_byte = Duration::from_millis(config.header_read_timeout_ms.max(1));
        let edge = edge.clone();
        let hsts = hsts.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            let answered = edge.fast.try_serve(&request, peer.ip());
            let mut router = edge.router.clone();
            let hsts = hsts.clone();
            let access = edge.access_log.then(|| {
                (
                    request.method().clone(),
                    request.uri().clone(),
                    std::time::Instant::now(),
                )
            });
            async move {
                let mut response = match answered {
                    Some(response) => response,
                    None => {
                        request.extensions_mut().insert(ConnectInfo(peer));
                        router.call(request.map(axum::body::Body::new)).await?
                    }
                };
                if let Some(hsts) = hsts {
                    response
                        .headers_mut()
                        .insert(axum::http::header::STRICT_TRANSPORT_SECURITY, hsts);
                }
                if let Some((method, uri, started)) = access {
                    let request_id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok());
                    tracing::info!(
                        target: "storefront::access",
                        %method,
                        path = uri.path(),
                        status = response.status().as_u16(),
                        micros = started.elapsed().as_micros() as u64,
                        peer = %peer.ip(),
                        request_id,
                        "request"
                    );
                }
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let acceptor = tls.as_ref().map(|tls| tls.acceptor());
        let stopping = stopping.clone();
        tasks.spawn(async move {
            // Telling HTTP/1 from HTTP/2 waits for the first bytes, with no timeout of its
            // own: a socket that sends nothing is closed here, or at shutdown.
            let mut probe = [0u8; 1];
            let first = tokio::select! {
                first = tokio::time::timeout(first_byte, stream.peek(&mut probe)) => first,
                _ = stopping.cancelled() => return,
            };
            if !matches!(first, Ok(Ok(1..))) {
                drop(permit);
                return;
            }
            // Timeouts and resets end connections all the time; nothing to report.
            match acceptor {
                None => {
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(JsonWireErrors::new(stream)), service)
                        .into_owned();
                    let _ = watcher.watch(connection).await;
                }
                Some(acceptor) => {
                    let accepted = tokio::select! {
                        accepted = tokio::time::timeout(first_byte, acceptor.accept(stream)) => accepted,
                        _ = stopping.cancelled() => return,
                    };
                    if let Ok(Ok(stream)) = accepted {
                        let connection = builder
                            .serve_connection_with_upgrades(TokioIo::new(JsonWireErrors::new(stream)), service)
                            .into_owned();
                        let _ = watcher.watch(connection).await;
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutdown requested: draining in-flight requests");
    stopping.cancel();
    tasks.close();
    let drained = async {
        graceful.shutdown().await;
        tasks.wait().await;
    };
    tokio::select! {
        _ = drained => {}
        _ = tokio::time::sleep(grace) => tracing::warn!("grace period elapsed; closing remaining connections"),
    }
}
