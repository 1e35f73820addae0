//! Security headers on every response, and CORS for browser storefronts.

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::cors::{AllowOrigin, CorsLayer};

static JSON_CSP: HeaderValue = HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'");
static DOCS_CSP: HeaderValue =
    HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");

/// Adds `X-Content-Type-Options`, a restrictive CSP and related headers.
pub async fn headers(request: Request, next: Next) -> Response {
    let docs = request.uri().path() == "/docs";
    let mut response = next.run(request).await;
    apply(response.headers_mut(), docs);
    response
}

/// Sets the security headers on a response (`docs`: the API documentation page, which needs
/// inline styles).
pub fn apply(h: &mut axum::http::HeaderMap, docs: bool) {
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        if docs { DOCS_CSP.clone() } else { JSON_CSP.clone() },
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

/// Returns the CORS layer for the configured origins (`None` when none are configured); `*`
/// allows any origin (without credentials, which no route uses).
pub fn cors(origins: &[String]) -> Option<CorsLayer> {
    let allow = if origins.iter().any(|o| o.trim() == "*") {
        AllowOrigin::any()
    } else {
        let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
        if origins.is_empty() {
            return None;
        }
        AllowOrigin::list(origins)
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::PUT, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
                header::IF_NONE_MATCH,
                HeaderName::from_static("x-cart-token"),
                HeaderName::from_static("idempotency-key"),
            ])
            .expose_headers([
                header::ETAG,
                HeaderName::from_static("x-cart-token"),
                HeaderName::from_static("x-request-id"),
            ]),
    )
}
