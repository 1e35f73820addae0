//! The HTTP layer: routing, middleware and the mapping of service results to responses.
//!
//! Handlers stay thin: extract, call one service function, map the result. Each resource file
//! exposes a `router()`; [`router`] merges them and adds the middleware stack.

pub mod audit;
pub mod auth;
pub mod backups;
pub mod cart;
pub mod categories;
pub mod cdn;
pub mod coupons;
pub mod error;
pub mod extract;
pub mod fast;
pub mod inventory;
pub mod metrics;
pub mod notifications;
pub mod openapi;
pub mod ops;
pub mod orders;
pub mod products;
pub mod promotions;
pub mod rate_limit;
pub mod recommendations;
pub mod request_id;
pub mod reviews;
pub mod search;
pub mod security;
pub mod sellers;
pub mod server;
pub mod shipping;
pub mod tls;
pub mod wire_errors;
pub mod wishlist;

use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::{middleware, BoxError, Router};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::app::Services;
use crate::config::{Config, RateLimitConfig, ServerConfig};
use crate::service::auth::Accounts;
use crate::service::cart::Carts;
use crate::service::checkout::Checkout;
use crate::service::events::outbox::Outbox;
use crate::service::health::Health;
use crate::service::idempotency::Idempotency;
use crate::service::inventory::Inventory;
use crate::service::order::Orders;
use crate::service::search::Search;
use crate::service::Catalog;
use error::ApiError;
use metrics::Metrics;
use rate_limit::RateLimits;

/// The shortest admin API key accepted.
pub const MIN_ADMIN_KEY_CHARS: usize = 32;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Listen address.
    pub listen: String,
    /// Edge limits: body size, timeout, in-flight requests, CORS.
    pub server: ServerConfig,
    /// Rate limits.
    pub rate_limit: RateLimitConfig,
    /// Peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `Cache-Control` of public reads, rendered once.
    pub cache_control: HeaderValue,
    /// Admin bearer key; `None` disables it.
    pub admin_api_key: Option<Arc<str>>,
    /// Grace period for in-flight requests at shutdown.
    pub shutdown_grace: Duration,
    /// One log line per request.
    pub access_log: bool,
}

impl TryFrom<&Config> for HttpSettings {
    type Error = anyhow::Error;

    fn try_from(config: &Config) -> anyhow::Result<HttpSettings> {
        // Malformed rates and ranges are start-up errors.
        let trusted_proxies = rate_limit::parse_proxies(&config.rate_limit.trusted_proxies)?;
        RateLimits::new(&config.rate_limit, trusted_proxies.clone())?;
        let key = config.auth.admin_api_key.as_str();
        // A short key is guessable by brute force over the network.
        if !key.is_empty() && key.chars().count() < MIN_ADMIN_KEY_CHARS {
            anyhow::bail!(
                "[auth] admin_api_key is {} characters; use at least {MIN_ADMIN_KEY_CHARS} (for example `openssl rand -hex 24`)",
                key.chars().count()
            );
        }
        if config.server.tls_cert.is_some() != config.server.tls_key.is_some() {
            anyhow::bail!("[server] tls_cert and tls_key go together: set both, or neither for plain HTTP");
        }
        let admin_api_key = (!key.is_empty()).then(|| Arc::<str>::from(key));
        if admin_api_key.is_none() {
            tracing::warn!("[auth] admin_api_key is not set: admin automation with an API key is disabled (admin users still work)");
        }
        Ok(HttpSettings {
            listen: config.server.listen.clone(),
            server: config.server.clone(),
            rate_limit: config.rate_limit.clone(),
            trusted_proxies,
            cache_control: HeaderValue::from_str(&config.http_cache.header_value())
                .map_err(|e| anyhow::anyhow!("invalid [http_cache] settings: {e}"))?,
            admin_api_key,
            shutdown_grace: Duration::from_millis(config.server.shutdown_grace_ms),
            access_log: config.log.access,
        })
    }
}

/// State shared by all handlers: one `Arc`, so the per-request clones axum makes of it are a
/// single reference-count increment.
// PERF(http/cached_product_get): a struct of ~16 `Arc`s cloned and dropped per request cost
// about a tenth of a cached product GET.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct Shared {
    /// The catalog service.
    pub catalog: Arc<Catalog>,
    /// Stock.
    pub inventory: Arc<Inventory>,
    /// Accounts and sessions.
    pub accounts: Arc<Accounts>,
    /// Product search.
    pub search: Arc<Search>,
    /// Carts.
    pub carts: Arc<Carts>,
    /// The outbox.
    pub outbox: Arc<Outbox>,
    /// Orders.
    pub orders: Arc<Orders>,
    /// Coupons.
    pub coupons: Arc<crate::service::coupon::Coupons>,
    /// Automatic promotions.
    pub promotions: Arc<crate::service::promotion::Promotions>,
    /// Shipping zones.
    pub shipping: Arc<crate::service::shipping::Shipping>,
    /// What the CDN purger did, when it runs.
    pub purge_metrics: Option<Arc<crate::service::events::purge::PurgeMetrics>>,
    /// Recommendations and the behaviour log.
    pub recommendations: Arc<crate::service::reco::Recommendations>,
    /// Wishlists.
    pub wishlists: Arc<crate::service::wishlist::Wishlists>,
    /// Product reviews.
    pub reviews: Arc<crate::service::review::Reviews>,
    /// Webhooks and deliveries.
    pub notifications: Arc<crate::service::notify::Notifications>,
    /// Online backups.
    pub backups: Arc<crate::service::backup::Backups>,
    /// The audit log.
    pub audit: Arc<crate::service::audit::Audit>,
    /// Checkout.
    pub checkout: Arc<Checkout>,
    /// Idempotency keys.
    pub idempotency: Arc<Idempotency>,
    /// Readiness and statistics.
    pub health: Arc<Health>,
    /// The services' clock.
    pub clock: crate::clock::SharedClock,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Rate limiters.
    pub limits: Arc<RateLimits>,
    /// Admin bearer key; `None` disables it.
    pub admin_api_key: Option<Arc<str>>,
    /// The token `/metrics` asks for; `None`: open.
    pub metrics_token: Option<Arc<str>>,
    /// `Cache-Control` of public reads, rendered once.
    pub cache_control: HeaderValue,
    /// The API document and its page, set when the router is built.
    pub docs: std::sync::OnceLock<Arc<openapi::ApiDocs>>,
}

impl AppState {
    /// The state over `services`.
    pub fn new(services: &Services, settings: &HttpSettings) -> AppState {
        AppState(Arc::new(Shared {
            catalog: services.catalog.clone(),
            inventory: services.inventory.clone(),
            accounts: services.accounts.clone(),
            search: services.search.clone(),
            carts: services.carts.clone(),
            outbox: services.outbox.clone(),
            orders: services.orders.clone(),
            coupons: services.coupons.clone(),
            promotions: services.promotions.clone(),
            shipping: services.shipping.clone(),
            notifications: services.notifications.clone(),
            backups: services.backups.clone(),
            audit: services.audit.clone(),
            reviews: services.reviews.clone(),
            wishlists: services.wishlists.clone(),
            recommendations: services.recommendations.clone(),
            purge_metrics: services.purge_metrics.clone(),
            checkout: services.checkout.clone(),
            idempotency: services.idempotency.clone(),
            health: services.health.clone(),
            clock: services.clock.clone(),
            metrics: Arc::new(Metrics::new()),
            limits: Arc::new(
                RateLimits::new(&settings.rate_limit, settings.trusted_proxies.clone())
                    .expect("[rate_limit] was checked when the settings were read"),
            ),
            admin_api_key: settings.admin_api_key.clone(),
            metrics_token: (!settings.server.metrics_token.is_empty())
                .then(|| Arc::<str>::from(settings.server.metrics_token.as_str())),
            cache_control: settings.cache_control.clone(),
            docs: std::sync::OnceLock::new(),
        }))
    }
}

/// A JSON response about one user or cart: never stored by shared caches.
/// An id from a path, or 404 for `kind` (a malformed id names nothing).
pub(crate) fn parse_id(raw: &str, kind: &'static str) -> Result<crate::domain::Id, error::ApiError> {
    crate::domain::Id::parse(raw).ok_or(error::ApiError::NotFound(kind))
}

/// Router responses larger than this many bytes are compressed when the client accepts it.
pub(crate) const COMPRESS_ABOVE: usize = 1024;

pub(crate) fn private_json<T: serde::Serialize>(status: axum::http::StatusCode, body: &T) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

/// Every route with its documentation: the `/api/v1` resources and the operations endpoints.
pub fn routes() -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::new()
        .merge(products::router())
        .merge(categories::router())
        .merge(sellers::router())
        .merge(inventory::router())
        .merge(auth::router())
        .merge(cart::router())
        .merge(search::router())
        .merge(orders::router())
        .merge(coupons::router())
        .merge(promotions::router())
        .merge(shipping::router())
        .merge(notifications::router())
        .merge(reviews::router())
        .merge(wishlist::router())
        .merge(recommendations::router())
        .merge(backups::router())
        .merge(audit::router());
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .nest("/api/v1", api)
        .merge(ops::router())
}

/// What the connection layer serves: the fast path for cached public reads, and the full
/// router with its middleware for everything else (and for the fast path's misses).
#[derive(Clone)]
pub struct Edge {
    /// The routes behind the middleware stack.
    pub router: Router,
    /// Cached public reads answered before the router.
    pub fast: Arc<fast::FastPath>,
    /// Log one line per request (`[log] access`).
    pub access_log: bool,
}

/// `Edge` as one service (benches and in-process callers; the server calls the two parts
/// itself, with the peer address it already has).
impl tower::Service<axum::extract::Request> for Edge {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = futures_util::future::Either<
        std::future::Ready<Result<Response, std::convert::Infallible>>,
        axum::routing::future::RouteFuture<std::convert::Infallible>,
    >;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::extract::Request) -> Self::Future {
        let peer = request
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
        match self.fast.try_serve(&request, peer) {
            Some(response) => futures_util::future::Either::Left(std::future::ready(Ok(response))),
            None => futures_util::future::Either::Right(self.router.call(request)),
        }
    }
}

/// Builds the full router with middleware, the API document its routes describe, and the
/// fast path in front of them.
pub fn router(state: AppState, settings: &HttpSettings) -> Edge {
    let ids = Arc::new(request_id::RequestIds::default());
    let fast = Arc::new(fast::FastPath::new(state.clone(), ids.clone()));
    let metrics = state.metrics.clone();
    let (routes, mut doc) = routes().split_for_parts();
    openapi::finish(&mut doc);
    // PERF(http/cached_product_get): kept in the state, not an `Extension` layer, which would
    // insert into every request's extensions (an allocation per request).
    let _ = state.docs.set(openapi::ApiDocs::new(&doc));
    let routes = routes
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .route_layer(middleware::from_fn_with_state(state.metrics.clone(), metrics::track))
        .with_state(state.clone());
    let recorder = audit::Recorder {
        state: state.clone(),
        reader: routes.clone(),
    };
    let app = routes
        .layer(middleware::from_fn_with_state(recorder, audit::record))
        .layer(middleware::from_fn_with_state(
            state.limits.clone(),
            rate_limit::limit_api,
        ))
        .layer(middleware::from_fn(security::headers));
    // Responses made per request (carts, orders, admin lists) are compressed per request;
    // cached public bodies arrive compressed already (`cdn::public`) and pass untouched.
    let app = app.layer(tower_http::compression::CompressionLayer::new().compress_when(
        tower_http::compression::predicate::SizeAbove::new(COMPRESS_ABOVE as u16),
    ));
    let app = match security::cors(&settings.server.cors_allowed_origins) {
        Some(cors) => app.layer(cors),
        None => app,
    };
    Edge {
        router: with_edge_layers(app, &settings.server, ids, metrics),
        fast,
        access_log: settings.access_log,
    }
}

/// Adds the protective outer layers: panic capture, request ids, body limit, load shedding,
/// concurrency limit and request timeout, all answering with the standard error shape.
fn with_edge_layers(
    router: Router,
    config: &ServerConfig,
    ids: Arc<request_id::RequestIds>,
    metrics: Arc<Metrics>,
) -> Router {
    // Layered around the whole router as one service (not per route via `Router::layer`), so
    // `max_in_flight` is a process-wide limit rather than a per-route one.
    let limited = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(middleware_error))
        .load_shed()
        .concurrency_limit(config.max_in_flight.max(1))
        .timeout(Duration::from_millis(config.request_timeout_ms))
        .service(router.clone().layer(DefaultBodyLimit::max(config.body_limit_bytes)));
    // The body is read before the in-flight limit, within its own timeout: a client that
    // never finishes its body holds a connection (capped), never a request slot.
    let limited = ServiceBuilder::new()
        .layer(middleware::from_fn_with_state(
            BodyRead {
                limit: config.body_limit_bytes,
                timeout: Duration::from_millis(config.body_read_timeout_ms.max(1)),
            },
            read_body,
        ))
        .service(limited);
    // Health probes never wait behind requests that fill `max_in_flight` (slow bodies, a
    // storm): an orchestrator must see a live server as live. They are the same documented
    // routes, reached without the in-flight limit.
    // The outer match's path is dropped first: the inner router would append its own to it
    // and the metrics would count "/readyz/readyz".
    let probes = ServiceBuilder::new()
        .map_request(|mut request: axum::extract::Request| {
            request.extensions_mut().remove::<axum::extract::MatchedPath>();
            request
        })
        .service(router.into_service::<axum::body::Body>());
    let routes = Router::new()
        .route_service("/healthz", probes.clone())
        .route_service("/readyz", probes)
        .fallback_service(limited);
    let edge = ServiceBuilder::new()
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("handler panicked").into_response()
        }))
        .layer(middleware::from_fn_with_state(ids, request_id::tag))
        .layer(middleware::from_fn_with_state(metrics, metrics::count_the_rest))
        .service(routes);
    Router::new().fallback_service(edge)
}

#[derive(Clone, Copy)]
struct BodyRead {
    limit: usize,
    timeout: Duration,
}

/// Reads a request's whole body (when it has one) before it goes on; 408 when it does not
/// arrive within the timeout, 413 over the limit.
async fn read_body(
    axum::extract::State(read): axum::extract::State<BodyRead>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    use axum::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
    let h = request.headers();
    let has_body = h.contains_key(TRANSFER_ENCODING)
        || h.get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    if !has_body {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(read.timeout, axum::body::to_bytes(body, read.limit)).await {
        Err(_) => ApiError::BodyTimeout.into_response(),
        Ok(Err(_)) => ApiError::PayloadTooLarge.into_response(),
        Ok(Ok(bytes)) => {
            next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
    }
}

async fn middleware_error(error: BoxError) -> Response {
    if error.is::<tower::timeout::error::Elapsed>() {
        ApiError::Timeout.into_response()
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        ApiError::Overloaded.into_response()
    } else {
        ApiError::internal(format!("middleware: {error}")).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Routes registered with a plain `.route(...)` would be served but missing from the API
    /// document; every resource router registers through `routes!`, which documents them.
    #[test]
    fn every_route_is_registered_through_the_documented_router() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let (code, _tests) = text.split_once("#[cfg(test)]").unwrap_or((&text, ""));
            assert!(
                !code.contains(".route(\""),
                "{} registers a route outside utoipa_axum::routes!",
                path.display()
            );
        }
    }
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    fn slow_app(timeout_ms: u64, max_in_flight: usize) -> Router {
        let config = ServerConfig {
            request_timeout_ms: timeout_ms,
            max_in_flight,
            ..ServerConfig::default()
        };
        let slow = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    "late"
                }),
            )
            .route("/panic", get(|| async { panic!("boom") as &'static str }));
        with_edge_layers(slow, &config, Default::default(), Default::default())
    }

    async fn error_code(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        body["error"]["code"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn slow_requests_time_out_with_503_and_retry_after() {
        let response = slow_app(20, 16)
            .oneshot(axum::http::Request::get("/slow").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "1");
        assert_eq!(error_code(response).await, "timeout");
    }

    #[tokio::test]
    async fn requests_beyond_the_concurrency_limit_are_shed() {
        let app = slow_app(5_000, 1);
        let first = tokio::spawn(
            app.clone()
                .oneshot(axum::http::Request::get("/slow").body(Body::empty()).unwrap()),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = app
            .oneshot(axum::http::Request::get("/slow").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(second.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error_code(second).await, "overloaded");
        assert_eq!(first.await.unwrap().unwrap().status(), axum::http::StatusCode::OK);
    }

    #[tokio::test]
    async fn panics_become_opaque_500s() {
        let response = slow_app(5_000, 16)
            .oneshot(axum::http::Request::get("/panic").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error_code(response).await, "internal");
    }
}
