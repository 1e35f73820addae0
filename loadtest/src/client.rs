//! A minimal keep-alive HTTP/1.1 client over one TCP connection, so the generator controls
//! exactly how many connections exist and when requests are sent.
//!
//! It writes each request straight into a reused buffer and parses responses in place with
//! `httparse` (the parser hyper uses), all in the calling task. hyper's client runs every
//! connection as a second task behind a channel, and that hand-off per request, not the
//! server, was what capped the generator at about a third of wrk's rate on two cores.

use std::net::SocketAddr;

use bytes::{Buf, Bytes, BytesMut};
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
    /// Any others.
    pub extra: &'a [(hyper::header::HeaderName, HeaderValue)],
}

/// One keep-alive connection.
pub struct Connection {
    stream: TcpStream,
    host: String,
    out: Vec<u8>,
    input: BytesMut,
    /// The server said `Connection: close`: the next request needs a new connection.
    closing: bool,
}

/// A response.
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// ETag header, if any.
    pub etag: Option<HeaderValue>,
    /// `X-Cart-Token` header, if any.
    pub cart_token: Option<HeaderValue>,
    /// Body (empty unless asked for: the load loop only counts bytes).
    pub body: Bytes,
}

/// Response headers kept when parsing.
const MAX_HEADERS: usize = 64;

impl Connection {
    /// Opens a connection.
    pub async fn open(target: &Target) -> anyhow::Result<Connection> {
        let stream = TcpStream::connect(target.addr).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            host: target.authority.clone(),
            out: Vec::with_capacity(1024),
            input: BytesMut::with_capacity(16 * 1024),
            closing: false,
        })
    }

    /// Returns whether the server asked to close this connection after the last response.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// Sends a GET and returns the response with its body.
    pub async fn get(&mut self, path: &str, etag: Option<&HeaderValue>) -> anyhow::Result<Reply> {
        let headers = Headers {
            etag,
            ..Headers::default()
        };
        self.send(&Method::GET, path, headers, None, true).await
    }

    /// Sends a request (a JSON body when given) and reads the whole response; the body is
    /// returned only when `keep_body`.
    pub async fn send(
        &mut self,
        method: &Method,
        path: &str,
        headers: Headers<'_>,
        body: Option<&[u8]>,
        keep_body: bool,
    ) -> anyhow::Result<Reply> {
        anyhow::ensure!(!self.closing, "the server closed the connection");
        self.write_request(method, path, headers, body);
        self.stream.write_all(&self.out).await?;
        self.read_response(method == Method::HEAD, keep_body).await
    }

    fn write_request(&mut self, method: &Method, path: &str, headers: Headers<'_>, body: Option<&[u8]>) {
        let out = &mut self.out;
        out.clear();
        for part in [method.as_str(), " ", path, " HTTP/1.1\r\nhost: ", &self.host, "\r\n"] {
            out.extend_from_slice(part.as_bytes());
        }
        let mut header = |name: &str, value: &[u8]| {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        };
        if let Some(etag) = headers.etag {
            header("if-none-match", etag.as_bytes());
        }
        if let Some(token) = headers.cart_token {
            header("x-cart-token", token.as_bytes());
        }
        if let Some(auth) = headers.authorization {
            header("authorization", auth.as_bytes());
        }
        if let Some(key) = headers.idempotency_key {
            header("idempotency-key", key.as_bytes());
        }
        for (name, value) in headers.extra {
            header(name.as_str(), value.as_bytes());
        }
        if body.is_some() {
            header("content-type", b"application/json");
        }
        if let Some(body) = body {
            use std::io::Write as _;
            let _ = write!(out, "content-length: {}\r\n\r\n", body.len());
            out.extend_from_slice(body);
        } else {
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Reads more input; a clean end of stream mid-response is an error.
    async fn fill(&mut self) -> anyhow::Result<()> {
        self.input.reserve(8 * 1024);
        let n = self.stream.read_buf(&mut self.input).await?;
        anyhow::ensure!(n > 0, "connection closed by the server");
        Ok(())
    }

    async fn read_response(&mut self, head_only: bool, keep_body: bool) -> anyhow::Result<Reply> {
        let (status, etag, cart_token, framing, head_len) = loop {
            if !self.input.is_empty() {
                let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut response = httparse::Response::new(&mut slots);
                if let httparse::Status::Complete(len) = response.parse(&self.input)? {
                    let status = StatusCode::from_u16(response.code.unwrap_or(0))?;
                    let mut etag = None;
                    let mut cart_token = None;
                    let mut framing = Framing::UntilClose;
                    for h in response.headers.iter() {
                        let name = h.name;
                        if name.eq_ignore_ascii_case("content-length") {
                            let n = std::str::from_utf8(h.value)?.trim().parse::<usize>()?;
                            framing = Framing::Length(n);
                        } else if name.eq_ignore_ascii_case("transfer-encoding") {
                            if h.value.eq_ignore_ascii_case(b"chunked") {
                                framing = Framing::Chunked;
                            }
                        } else if name.eq_ignore_ascii_case("etag") {
                            etag = Some(HeaderValue::from_bytes(h.value)?);
                        } else if name.eq_ignore_ascii_case("x-cart-token") {
                            cart_token = Some(HeaderValue::from_bytes(h.value)?);
                        } else if name.eq_ignore_ascii_case("connection") && h.value.eq_ignore_ascii_case(b"close") {
                            self.closing = true;
                        }
                    }
                    break (status, etag, cart_token, framing, len);
                }
            }
            self.fill().await?;
        };
        self.input.advance(head_len);
        let no_body = head_only
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        let body = if no_body {
            Bytes::new()
        } else {
            match framing {
                Framing::Length(n) => self.take(n, keep_body).await?,
                Framing::Chunked => self.take_chunked(keep_body).await?,
                Framing::UntilClose => {
                    self.closing = true;
                    loop {
                        self.input.reserve(8 * 1024);
                        if self.stream.read_buf(&mut self.input).await? == 0 {
                            break;
                        }
                    }
                    let n = self.input.len();
                    self.take(n, keep_body).await?
                }
            }
        };
        Ok(Reply {
            status,
            etag,
            cart_token,
            body,
        })
    }

    /// Consumes the next `n` bytes of input, reading as needed.
    async fn take(&mut self, n: usize, keep: bool) -> anyhow::Result<Bytes> {
        while self.input.len() < n {
            self.fill().await?;
        }
        Ok(if keep {
            self.input.split_to(n).freeze()
        } else {
            self.input.advance(n);
            Bytes::new()
        })
    }

    async fn take_chunked(&mut self, keep: bool) -> anyhow::Result<Bytes> {
        let mut body = BytesMut::new();
        loop {
            let (offset, size) = loop {
                match httparse::parse_chunk_size(&self.input) {
                    Ok(httparse::Status::Complete((offset, size))) => break (offset, size as usize),
                    Ok(httparse::Status::Partial) => self.fill().await?,
                    Err(_) => anyhow::bail!("invalid chunk size"),
                }
            };
            self.input.advance(offset);
            // The chunk and its trailing CRLF (for the last, zero-size chunk: the final CRLF,
            // as we send no TE header that would invite trailers).
            let chunk = self.take(size + 2, keep).await?;
            if keep && size > 0 {
                body.extend_from_slice(&chunk[..size]);
            }
            if size == 0 {
                return Ok(body.freeze());
            }
        }
    }
}

/// How the response body ends.
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}
