//! hyper answers an HTTP/1 request it cannot parse (a malformed request line or header, a
//! URI over 64 KiB, more than 100 headers or a head over `max_header_bytes`) by itself, before any
//! service runs, with the bare status and an empty body. Every error of ours has the JSON
//! shape, so the connection's writer swaps exactly those automatic answers for the same
//! status with the standard body. They are recognisable: a 400, 414 or 431 head with
//! `content-length: 0` at the start of a write, which no handler of ours produces (our errors
//! always carry a body), and after which hyper closes the connection.
//!
//! The check is a prefix compare on the first buffer of each write, so the hot path pays a
//! few byte comparisons per response.

use std::io::IoSlice;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::domain::error::{envelope, Code};

/// hyper's automatic answers, by their status line, with what replaces each.
static REPLACEMENTS: LazyLock<[(&'static [u8], Vec<u8>); 3]> = LazyLock::new(|| {
    [
        (
            b"HTTP/1.1 400 Bad Request\r\n".as_slice(),
            response(
                "400 Bad Request",
                Code::BadRequest,
                "the request line or a header could not be parsed",
            ),
        ),
        (
            b"HTTP/1.1 414 URI Too Long\r\n".as_slice(),
            response("414 URI Too Long", Code::UriTooLong, "the request URI is too long"),
        ),
        (
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n".as_slice(),
            response(
                "431 Request Header Fields Too Large",
                Code::HeadersTooLarge,
                "the request has too many headers, or they are too large",
            ),
        ),
    ]
});

fn response(status_line: &str, code: Code, message: &str) -> Vec<u8> {
    let body = envelope(code, message, None);
    let mut bytes = format!(
        "HTTP/1.1 {status_line}\r\ncontent-type: application/json\r\ncache-control: no-store\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(&body);
    bytes
}

/// The JSON answer that replaces `head`, when `head` is one of hyper's automatic ones.
fn replacement(head: &[u8]) -> Option<&'static [u8]> {
    // Cheapest test first: every other response of ours is a 1xx, 2xx, 3xx or a 4xx with a body.
    if !head.starts_with(b"HTTP/1.1 4") {
        return None;
    }
    let (_, bytes) = REPLACEMENTS.iter().find(|(status, _)| head.starts_with(status))?;
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")?;
    head[..end]
        .split(|&b| b == b'\n')
        .any(|line| line.eq_ignore_ascii_case(b"content-length: 0\r"))
        .then_some(bytes.as_slice())
}

/// An answer being written in place of hyper's.
struct Swap {
    bytes: &'static [u8],
    written: usize,
    /// How many of hyper's bytes it stands for (reported as written once it is out).
    replaces: usize,
}

/// A connection's I/O whose writer swaps hyper's automatic error answers for JSON ones.
pub struct JsonWireErrors<S> {
    inner: S,
    swap: Option<Swap>,
}

impl<S> JsonWireErrors<S> {
    /// Wraps a connection.
    pub fn new(inner: S) -> JsonWireErrors<S> {
        JsonWireErrors { inner, swap: None }
    }
}

impl<S: AsyncWrite + Unpin> JsonWireErrors<S> {
    /// Starts swapping when `head` is one of hyper's automatic answers; false otherwise.
    fn begin_swap(&mut self, head: &[u8]) -> bool {
        let Some(bytes) = replacement(head) else {
            return false;
        };
        self.swap = Some(Swap {
            bytes,
            written: 0,
            replaces: head.len(),
        });
        true
    }

    /// Writes the swapped answer out; ready with the count of hyper's bytes it replaced.
    fn drive_swap(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        let swap = self.swap.as_mut().expect("called with a swap under way");
        while swap.written < swap.bytes.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &swap.bytes[swap.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            swap.written += n;
        }
        let replaces = swap.replaces;
        self.swap = None;
        Poll::Ready(Ok(replaces))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonWireErrors<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonWireErrors<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        if self.swap.is_none() && !self.begin_swap(buf) {
            return Pin::new(&mut self.inner).poll_write(cx, buf);
        }
        self.drive_swap(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        if self.swap.is_none() {
            // The head is always a buffer of its own, so the first non-empty one decides.
            let first = bufs.iter().find(|b| !b.is_empty()).map(|b| &**b).unwrap_or_default();
            if !self.begin_swap(first) {
                return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
            }
        }
        self.drive_swap(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.swap.is_some() {
            ready!(self.drive_swap(cx))?;
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.swap.is_some() {
            ready!(self.drive_swap(cx))?;
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bodiless_error_heads_are_replaced() {
        let automatic = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let swapped = replacement(automatic).expect("hyper's 431 is replaced");
        let text = std::str::from_utf8(swapped).unwrap();
        assert!(text.starts_with("HTTP/1.1 431 "));
        assert!(text.ends_with(r#"{"error":{"code":"headers_too_large","message":"the request has too many headers, or they are too large"}}"#));
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 61\r\n\r\n{}";
        assert!(replacement(ours).is_none(), "our own errors have bodies");
        assert!(replacement(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(replacement(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").is_none());
        // A body that happens to contain the words is not a head.
        assert!(replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 20\r\n\r\ncontent-length: 0\r\n").is_none());
    }
}
