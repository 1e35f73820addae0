//! The fast path: cached public product pages, listings and guests' current cart pages
//! answered before the router.
//!
//! Product pages, listings and cart reads are the hottest reads of a shop and, once rendered,
//! cost a cache lookup. Sent through axum and the generic tower stack it paid for two routers, six boxed middleware
//! futures, a semaphore permit and a timer per request: about half the throughput of plain
//! hyper (`../shared/LIMITS.md`). Here the same answer is built directly, with what the stack
//! would have added: the rate limit, the security headers, the request id, the metrics and the
//! recorded view. It never waits (a hit is answered synchronously), so it needs no in-flight
//! slot or timeout. Anything it does not fully handle (a miss, a query string, a signed-in or
//! cross-origin caller, an escaped path) goes through the router unchanged.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};

use super::cart::cart_token;
use super::metrics::CachedGetSeries;
use super::request_id::{RequestIds, REQUEST_ID};
use super::{cdn, security, AppState, COMPRESS_ABOVE};
use crate::service::cart::{CartOwner, Destination};
use crate::service::representation::Encoding;

/// The routes' names in metrics (as the router's matched paths).
const PRODUCT_ROUTE: &str = "/api/v1/products/{key}";
const LISTING_ROUTE: &str = "/api/v1/products";
const PRODUCT_PREFIX: &str = "/api/v1/products/";
const CART_ROUTE: &str = "/api/v1/cart";

/// Answers cached product pages and listings.
pub struct FastPath {
    state: AppState,
    ids: Arc<RequestIds>,
    product: CachedGetSeries,
    listing: CachedGetSeries,
    cart: CachedGetSeries,
}

/// A request the fast path may answer.
#[derive(Debug, PartialEq)]
enum Page<'a> {
    /// `GET /api/v1/products/{key}`.
    Product(&'a str),
    /// `GET /api/v1/products?{query}`.
    Listing(&'a str),
    /// `GET /api/v1/cart` (no query): a guest's cart, when its kept page is current.
    Cart,
}

impl FastPath {
    /// The fast path over `state`, minting ids from the router's counter.
    pub fn new(state: AppState, ids: Arc<RequestIds>) -> FastPath {
        let product = state.metrics.cached_get(PRODUCT_ROUTE);
        let listing = state.metrics.cached_get(LISTING_ROUTE);
        let cart = state.metrics.cached_get(CART_ROUTE);
        FastPath {
            state,
            ids,
            product,
            listing,
            cart,
        }
    }

    /// The response when the request is a cached page this path can answer in full, else
    /// `None` (the router answers).
    pub fn try_serve<B>(&self, request: &Request<B>, peer: IpAddr) -> Option<Response> {
        let started = Instant::now();
        let page = page(request)?;
        let headers = request.headers();
        // CORS and signed-in viewers (whose views are recorded under their account) take the
        // router's path.
        if headers.contains_key(header::ORIGIN) || headers.contains_key(header::AUTHORIZATION) {
            return None;
        }
        let catalog = &self.state.catalog;
        let (repr, route, series) = match page {
            Page::Product(key) => (catalog.cached_product_page(key)?, PRODUCT_ROUTE, &self.product),
            Page::Listing(query) => {
                let params = serde_urlencoded::from_str(query).ok()?;
                (catalog.cached_listing(&params)?, LISTING_ROUTE, &self.listing)
            }
            Page::Cart => return self.serve_cart(headers, peer, started),
        };
        let limits = &self.state.limits;
        let response = match limits.check_api_ip(limits.client_ip(peer, headers)) {
            Ok(()) => {
                if let (Page::Product(_), Some(id)) = (&page, repr.subject()) {
                    let session = super::recommendations::session_of(headers);
                    self.state
                        .recommendations
                        .record(storefront_storage::reco::BehaviourKind::View, id, None, session);
                }
                cdn::public(headers, &repr, &self.state.cache_control)
            }
            Err(limited) => limited.into_response(),
        };
        Some(self.finish(response, headers, route, series, started))
    }

    /// A guest's `GET /cart` whose kept page is current (see [`crate::service::cart`]'s
    /// `page`). A response the router would compress takes the router's path.
    fn serve_cart(&self, headers: &HeaderMap, peer: IpAddr, started: Instant) -> Option<Response> {
        let token = cart_token(headers)?;
        let owner = CartOwner::Guest(token);
        let page = self.state.carts.current_page(&owner, &Destination::default())?;
        let compressible = page.body.len() > COMPRESS_ABOVE
            && headers
                .get(header::ACCEPT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .and_then(Encoding::choose)
                .is_some();
        if compressible {
            return None;
        }
        let limits = &self.state.limits;
        let response = match limits.check_api_ip(limits.client_ip(peer, headers)) {
            Ok(()) => {
                let mut response = super::cart::page_response(&page, super::cart::guest_token(&owner));
                // What the router's compression layer adds to every answer it could compress.
                response
                    .headers_mut()
                    .insert(header::VARY, axum::http::HeaderValue::from_static("accept-encoding"));
                response
            }
            Err(limited) => limited.into_response(),
        };
        Some(self.finish(response, headers, CART_ROUTE, &self.cart, started))
    }

    /// Adds what the stack would have (security headers, the request id) and counts the
    /// answer.
    fn finish(
        &self,
        mut response: Response,
        headers: &HeaderMap,
        route: &'static str,
        series: &CachedGetSeries,
        started: Instant,
    ) -> Response {
        let h = response.headers_mut();
        security::apply(h, false);
        h.insert(REQUEST_ID.clone(), self.ids.assign(headers));
        match response.status() {
            StatusCode::OK => series.ok.inc(),
            StatusCode::NOT_MODIFIED => series.not_modified.inc(),
            other => {
                self.state.metrics.observe(route, "GET", other, started);
                return response;
            }
        }
        series.latency.observe(started.elapsed().as_secs_f64());
        response
    }
}

/// What a `GET` asks for, when it is a page this path knows: a product by one unescaped path
/// segment (no query), or a listing.
fn page<B>(request: &Request<B>) -> Option<Page<'_>> {
    if request.method() != Method::GET {
        return None;
    }
    let (path, query) = (request.uri().path(), request.uri().query());
    if path == LISTING_ROUTE {
        return Some(Page::Listing(query.unwrap_or("")));
    }
    if path == CART_ROUTE {
        return query.is_none().then_some(Page::Cart);
    }
    let key = path.strip_prefix(PRODUCT_PREFIX)?;
    (query.is_none() && !key.is_empty() && !key.contains(['/', '%'])).then_some(Page::Product(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, uri: &str) -> Request<()> {
        Request::builder().method(method).uri(uri).body(()).unwrap()
    }

    #[test]
    fn only_plain_product_and_listing_gets_take_the_fast_path() {
        assert_eq!(
            page(&request(Method::GET, "/api/v1/products/blue-mug")),
            Some(Page::Product("blue-mug"))
        );
        assert_eq!(
            page(&request(Method::GET, "/api/v1/products?limit=20&sort=price_asc")),
            Some(Page::Listing("limit=20&sort=price_asc"))
        );
        assert_eq!(page(&request(Method::GET, "/api/v1/products")), Some(Page::Listing("")));
        assert_eq!(page(&request(Method::GET, "/api/v1/cart")), Some(Page::Cart));
        for (method, uri) in [
            (Method::GET, "/api/v1/products/blue-mug?x=1"),
            (Method::GET, "/api/v1/products/blue-mug/reviews"),
            (Method::GET, "/api/v1/products/blue%20mug"),
            (Method::GET, "/api/v1/products/"),
            (Method::GET, "/api/v1/productsx"),
            (Method::GET, "/api/v1/cart?country=US"),
            (Method::POST, "/api/v1/cart"),
            (Method::HEAD, "/api/v1/products/blue-mug"),
            (Method::PATCH, "/api/v1/products/blue-mug"),
            (Method::POST, "/api/v1/products"),
        ] {
            assert_eq!(page(&request(method.clone(), uri)), None, "{method} {uri}");
        }
    }
}
