//! CDN-ready responses: strong ETags with 304s, Cache-Control and surrogate keys.
//!
//! Hot path: a cached representation is answered by cloning refcounted `Bytes`/`HeaderValue`s;
//! no allocation beyond the response itself.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;

use crate::service::representation::{Encoding, Representation};

/// `Surrogate-Key` (Fastly) header name.
pub static SURROGATE_KEY: HeaderName = HeaderName::from_static("surrogate-key");
/// `xkey` (Varnish) header name.
pub static XKEY: HeaderName = HeaderName::from_static("xkey");

/// Returns whether `If-None-Match` matches `etag` (weak comparison, as RFC 9110 requires).
pub fn not_modified(headers: &HeaderMap, etag: &[u8]) -> bool {
    let Some(inm) = headers.get(header::IF_NONE_MATCH) else {
        return false;
    };
    let Ok(inm) = inm.to_str() else { return false };
    inm.split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/").as_bytes() == etag)
}

/// A header value over bytes the representation already checked (no copy, no re-check).
fn header(bytes: &bytes::Bytes) -> HeaderValue {
    // SAFETY: `Representation` only holds validators made of visible ASCII and spaces (it
    // checks them when it is built), which is what a header value may contain.
    unsafe { HeaderValue::from_maybe_shared_unchecked(bytes.clone()) }
}

/// Headers a response ends with: its own, the security headers and the request id. Sized
/// once, so the map is not regrown (reallocated and rehashed) twice per request on its way out.
const RESPONSE_HEADERS: usize = 16;

fn response(status: StatusCode, body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    *r.headers_mut() = HeaderMap::with_capacity(RESPONSE_HEADERS);
    r
}

/// Answers a public, CDN-cacheable read: 304 when the client's copy is current, else 200,
/// compressed as `Accept-Encoding` allows (compressed once per cached body, each coding with
/// its own ETag; `Vary: Accept-Encoding` either way).
pub fn public(headers: &HeaderMap, repr: &Representation, cache_control: &HeaderValue) -> Response {
    let encoded = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .and_then(Encoding::choose)
        .and_then(|encoding| Some((encoding, repr.encoded(encoding)?)));
    let etag = encoded.map_or(repr.etag(), |(_, e)| &e.etag);
    // Either tag names the current content: a client revalidating what it got in another
    // coding is still up to date.
    let fresh = not_modified(headers, etag) || not_modified(headers, repr.etag());
    let mut response = if fresh {
        response(StatusCode::NOT_MODIFIED, Body::empty())
    } else {
        let body = encoded.map_or_else(|| repr.body().clone(), |(_, e)| e.body.clone());
        let mut r = response(StatusCode::OK, Body::from(body));
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some((encoding, _)) = encoded {
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding.token()));
        }
        r
    };
    let surrogate_key = header(repr.surrogate_key());
    let h = response.headers_mut();
    h.insert(header::ETAG, header(etag));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(header::CACHE_CONTROL, cache_control.clone());
    h.insert(SURROGATE_KEY.clone(), surrogate_key.clone());
    h.insert(XKEY.clone(), surrogate_key);
    response
}

/// Answers a write or a caller-specific read: never cached by shared caches.
pub fn private(status: StatusCode, repr: &Representation) -> Response {
    let mut response = response(status, Body::from(repr.body().clone()));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::ETAG, header(repr.etag()));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(inm: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(inm).unwrap());
        h
    }

    #[test]
    fn if_none_match_lists_and_weak_tags_match() {
        let etag = b"\"v2-abc\"";
        assert!(not_modified(&headers("\"x\", \"v2-abc\""), etag));
        assert!(not_modified(&headers("W/\"v2-abc\""), etag));
        assert!(not_modified(&headers("*"), etag));
        assert!(!not_modified(&headers("\"v1-abc\""), etag));
        assert!(!not_modified(&HeaderMap::new(), etag));
    }
}
