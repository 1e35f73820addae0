//! A minimal keep-alive HTTP/1.1 client over one TCP connection (hyper's low-level API), so
//! the generator controls exactly how many connections exist and when requests are sent.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST, IF_NONE_MATCH};
use hyper::Method;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;

/// A parsed `http://host:port` target.
#[derive(Debug, Clone)]
pub struct Target {
    /// Resolved socket address.
    pub addr: SocketAddr,
    /// Host header value.
    pub authority: String,
}

impl Target {
    /// Parses and resolves a base URL. Non-loopback addresses are refused unless allowed.
    pub async fn resolve(url: &str, allow_remote: bool) -> anyhow::Result<Target> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow::anyhow!("target must be an http:// URL (HTTPS arrives with TLS support)"))?;
        let authority = rest.trim_end_matches('/').to_owned();
        anyhow::ensure!(!authority.contains('/'), "target must be a base URL without a path");
        let with_port =
            if authority.rsplit(':').next().is_some_and(|p| p.parse::<u16>().is_ok()) && !authority.ends_with(']') {
                authority.clone()
            } else {
                format!("{authority}:80")
            };
        let addr = tokio::net::lookup_host(&with_port)
            .await?
            .next()
            .ok_or_else(|| anyhow::anyhow!("{authority} does not resolve"))?;
        anyhow::ensure!(
            allow_remote || addr.ip().is_loopback(),
            "refusing to load-test {addr}: not a loopback address (pass --allow-remote to override)"
        );
        Ok(Target { addr, authority })
    }
}

/// The optional headers of a request.
#[derive(Default, Clone, Copy)]
pub struct Headers<'a> {
    /// `If-None-Match`.
    pub etag: Option<&'a HeaderValue>,
    /// `X-Cart-Token`.
    pub cart_token: Option<&'a HeaderValue>,
    /// `Idempotency-Key`.
    pub idempotency_key: Option<&'a str>,
    /// `Authorization`.
    pub authorization: Option<&'a HeaderValue>,
}

/// One keep-alive connection.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
}

/// A response, body drained.
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// ETag header, if any.
    pub etag: Option<HeaderValue>,
    /// `X-Cart-Token` header, if any.
    pub cart_token: Option<HeaderValue>,
    /// Body.
    pub body: Bytes,
}

impl Connection {
    /// Opens a connection.
    pub async fn open(target: &Target) -> anyhow::Result<Connection> {
        let stream = tokio::net::TcpStream::connect(target.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Connection {
            sender,
            host: HeaderValue::from_str(&target.authority)?,
        })
    }

    /// Sends a GET and drains the body.
    pub async fn get(&mut self, path: &str, etag: Option<&HeaderValue>) -> anyhow::Result<Reply> {
        let headers = Headers {
            etag,
            ..Headers::default()
        };
        self.send(&Method::GET, path, headers, None).await
    }

    /// Sends a request (a JSON body when given) and drains the response body.
    pub async fn send(
        &mut self,
        method: &Method,
        path: &str,
        headers: Headers<'_>,
        body: Option<Bytes>,
    ) -> anyhow::Result<Reply> {
        self.sender.ready().await?;
        let mut request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(HOST, self.host.clone());
        if let Some(etag) = headers.etag {
            request = request.header(IF_NONE_MATCH, etag.clone());
        }
        if let Some(token) = headers.cart_token {
            request = request.header(CART_TOKEN.clone(), token.clone());
        }
        if let Some(auth) = headers.authorization {
            request = request.header(hyper::header::AUTHORIZATION, auth.clone());
        }
        if let Some(key) = headers.idempotency_key {
            request = request.header(IDEMPOTENCY_KEY.clone(), HeaderValue::from_str(key)?);
        }
        if body.is_some() {
            request = request.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let response = self
            .sender
            .send_request(request.body(Full::new(body.unwrap_or_default()))?)
            .await?;
        let status = response.status();
        let etag = response.headers().get(hyper::header::ETAG).cloned();
        let cart_token = response.headers().get(&CART_TOKEN).cloned();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Reply {
            status,
            etag,
            cart_token,
            body,
        })
    }
}

/// Header of a guest cart token.
pub static CART_TOKEN: HeaderName = HeaderName::from_static("x-cart-token");

/// Header of a money-moving request's key.
pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
