//! Operations endpoints (no `/api/v1` prefix): health, readiness, metrics and the API document.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::AppState;

/// Routes at the root.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi))
        .routes(routes!(docs))
}

fn no_store() -> [(header::HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

/// `/healthz` and `/readyz` answers.
#[derive(Serialize, utoipa::ToSchema)]
struct Health {
    /// `ok`, `ready` or `unavailable`.
    status: &'static str,
    /// `ok` or `error` (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    storage: Option<&'static str>,
    /// The search index (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<IndexHealth>,
}

/// The search index's state.
#[derive(Serialize, utoipa::ToSchema)]
struct IndexHealth {
    /// Searchable documents.
    documents: u64,
    /// Changelog entries not applied yet.
    changelog_lag: u64,
    /// The index has caught up with storage since the start (search answers).
    caught_up: bool,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
async fn healthz() -> impl IntoResponse {
    let body = Health {
        status: "ok",
        storage: None,
        index: None,
    };
    (no_store(), axum::Json(body))
}

/// Storage answers and the search index has caught up with it since the start (until then
/// 503 `starting` with `Retry-After`, as search itself answers).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready", body = Health),
               (status = 503, description = "Storage does not answer, or the index is catching up", body = Health)))]
async fn readyz(State(state): State<AppState>) -> Response {
    let (status, body) = match state.health.readiness().await {
        Ok(r) => (
            if r.caught_up {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            },
            Health {
                status: if r.caught_up { "ready" } else { "starting" },
                storage: Some("ok"),
                index: Some(IndexHealth {
                    documents: r.documents,
                    changelog_lag: r.changelog_lag,
                    caught_up: r.caught_up,
                }),
            },
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness probe failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Health {
                    status: "unavailable",
                    storage: Some("error"),
                    index: None,
                },
            )
        }
    };
    let mut response = (status, no_store(), axum::Json(body)).into_response();
    if status != StatusCode::OK {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
    }
    response
}

/// Prometheus metrics: per-route counts and latency, RocksDB and cache statistics. With
/// `[server] metrics_token` set, only for `Authorization: Bearer <token>` (or the admin key).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
               (status = 401, description = "`[server] metrics_token` is set and was not sent", body = super::error::ErrorBody)))]
async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(token) = state.metrics_token.as_deref() {
        use subtle::ConstantTimeEq;
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or("");
        let matches = |key: &str| bool::from(sent.as_bytes().ct_eq(key.as_bytes()));
        if !(matches(token) || state.admin_api_key.as_deref().is_some_and(matches)) {
            return ApiError::Unauthorized("/metrics needs Authorization: Bearer <[server] metrics_token>")
                .into_response();
        }
    }
    let (health, metrics, notifications) = (state.health.clone(), state.metrics.clone(), state.notifications.clone());
    let reco = state.recommendations.clone();
    let purge = state.purge_metrics.clone();
    let (search, outbox) = (state.search.clone(), state.outbox.clone());
    let now_ms = state.clock.now_ms();
    let text = tokio::task::spawn_blocking(move || {
        let mut text = metrics.render(&health)
            + &super::metrics::render_notifications(&notifications)
            + &super::metrics::render_recommendations(&reco)
            + &super::metrics::render_operations(&health, &search, &outbox, now_ms);
        if let Some(p) = purge {
            text += &super::metrics::render_purge(&p, health.last_changelog_seq());
        }
        text
    })
    .await
    .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        text,
    )
        .into_response()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
async fn openapi(State(state): State<AppState>) -> Response {
    let Some(docs) = state.docs.get() else {
        return ApiError::RouteNotFound.into_response();
    };
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        docs.json.clone(),
    )
        .into_response()
}

/// A human-readable page rendered from this document (self-contained).
#[utoipa::path(get, path = "/docs", tag = "operations",
    responses((status = 200, description = "HTML", content_type = "text/html")))]
async fn docs(State(state): State<AppState>) -> Response {
    let Some(docs) = state.docs.get() else {
        return ApiError::RouteNotFound.into_response();
    };
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        docs.html.clone(),
    )
        .into_response()
}
