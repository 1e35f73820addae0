//! The HTTP layer: routing, middleware and the mapping of service results to responses.
//!
//! Handlers stay thin: extract, call one service function, map the result. Each resource file
//! exposes a `router()`; [`router`] merges them and adds the middleware stack.

pub mod categories;
pub mod cdn;
pub mod error;
pub mod extract;
pub mod inventory;
pub mod metrics;
pub mod ops;
pub mod products;
pub mod sellers;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Request};
use axum::response::{IntoResponse, Response};
use axum::{middleware, BoxError, Router};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};

use crate::config::Config;
use crate::service::Catalog;
use error::ApiError;
use metrics::Metrics;

/// State shared by all handlers.
#[derive(Clone)]
pub struct AppState {
    /// The catalog service.
    pub catalog: Arc<Catalog>,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Admin bearer key; `None` disables admin writes.
    pub admin_api_key: Option<Arc<str>>,
    /// `Cache-Control` of public reads, rendered once.
    pub cache_control: HeaderValue,
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Request ids from a process-wide counter: unique per process and far cheaper than UUIDs.
#[derive(Clone, Default)]
struct CounterRequestId(Arc<AtomicU64>);

impl MakeRequestId for CounterRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        // Relaxed: uniqueness needs atomicity only, not ordering with other memory.
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{n:x}")).ok().map(RequestId::new)
    }
}

/// Builds the full router with middleware.
pub fn router(state: AppState, config: &Config) -> Router {
    let api = Router::new()
        .merge(products::router())
        .merge(categories::router())
        .merge(sellers::router())
        .merge(inventory::router());
    let timeout = Duration::from_millis(config.server.request_timeout_ms);
    Router::new()
        .nest("/api/v1", api)
        .merge(ops::router())
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .route_layer(middleware::from_fn_with_state(state.metrics.clone(), metrics::track))
        .with_state(state)
        .layer(DefaultBodyLimit::max(config.server.body_limit_bytes))
        .layer(
            ServiceBuilder::new()
                .layer(CatchPanicLayer::custom(|_| ApiError::Internal("handler panicked".into()).into_response()))
                .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), CounterRequestId::default()))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
                .layer(HandleErrorLayer::new(middleware_error))
                .load_shed()
                .concurrency_limit(config.server.max_in_flight.max(1))
                .timeout(timeout),
        )
}

async fn middleware_error(error: BoxError) -> Response {
    if error.is::<tower::timeout::error::Elapsed>() {
        ApiError::Timeout.into_response()
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        ApiError::Overloaded.into_response()
    } else {
        ApiError::Internal(format!("middleware: {error}")).into_response()
    }
}
