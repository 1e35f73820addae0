//! Request ids: every response carries `X-Request-Id`, the caller's when it is a short, plain
//! token, otherwise one we mint. A caller's id is echoed and logged, so anything longer than
//! [`MAX_LEN`] or outside `[A-Za-z0-9._:-]` is replaced rather than trusted.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The header.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest caller id kept.
pub const MAX_LEN: usize = 64;

/// Mints ids from a process-wide counter (shared by the router and the fast path).
#[derive(Debug, Default)]
pub struct RequestIds(AtomicU64);

impl RequestIds {
    /// The id of a request with `headers`: the caller's if acceptable, else a fresh one.
    pub fn assign(&self, headers: &HeaderMap) -> HeaderValue {
        match headers.get(&REQUEST_ID) {
            Some(id) if acceptable(id.as_bytes()) => id.clone(),
            _ => self.mint(),
        }
    }

    fn mint(&self) -> HeaderValue {
        // Relaxed: uniqueness needs atomicity only, not ordering with other memory.
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; 16];
        let mut i = buf.len();
        let mut rest = n;
        loop {
            i -= 1;
            buf[i] = b"0123456789abcdef"[(rest & 0xf) as usize];
            rest >>= 4;
            if rest == 0 {
                break;
            }
        }
        HeaderValue::from_bytes(&buf[i..]).expect("hex digits are a valid header value")
    }
}

fn acceptable(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Middleware: sets the request's id (on the request, for handlers and logs, and on the
/// response).
pub async fn tag(State(ids): State<std::sync::Arc<RequestIds>>, mut request: Request, next: Next) -> Response {
    let id = ids.assign(request.headers());
    request.headers_mut().insert(REQUEST_ID.clone(), id.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(REQUEST_ID.clone(), id);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn minted_ids_are_hex_and_distinct() {
        let ids = RequestIds::default();
        let (a, b) = (ids.assign(&HeaderMap::new()), ids.assign(&HeaderMap::new()));
        assert_eq!((a.to_str().unwrap(), b.to_str().unwrap()), ("0", "1"));
    }

    proptest! {
        /// Whatever a caller sends, the id we echo is short and plain.
        #[test]
        fn echoed_ids_are_short_and_plain(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_bytes(&raw) {
                headers.insert(REQUEST_ID.clone(), v);
            }
            let id = RequestIds::default().assign(&headers);
            prop_assert!(acceptable(id.as_bytes()));
            if acceptable(&raw) {
                prop_assert_eq!(id.as_bytes(), &raw[..]);
            }
        }
    }
}
