//! Operations endpoints (no `/api/v1` prefix): health, readiness, metrics and API docs.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::AppState;

/// The OpenAPI document served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

/// Routes at the root.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/docs", get(docs))
}

async fn healthz() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::Json(serde_json::json!({ "status": "ok" })),
    )
}

async fn readyz(State(state): State<AppState>) -> Response {
    let (status, body) = match state.health.readiness().await {
        Ok(r) => (
            StatusCode::OK,
            serde_json::json!({ "status": "ready", "storage": "ok", "index": { "documents": r.documents, "changelog_lag": r.changelog_lag } }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness probe failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({ "status": "unavailable", "storage": "error" }),
            )
        }
    };
    (
        status,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::Json(body),
    )
        .into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let (health, metrics) = (state.health.clone(), state.metrics.clone());
    let text = tokio::task::spawn_blocking(move || metrics.render(&health))
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

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        OPENAPI,
    )
        .into_response()
}

/// Renders a self-contained HTML reference from the OpenAPI document (no external assets).
fn docs_html() -> &'static str {
    static HTML: OnceLock<String> = OnceLock::new();
    HTML.get_or_init(|| {
        let spec: serde_json::Value = serde_json::from_str(OPENAPI).unwrap_or_default();
        let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        let mut html = String::from(
            "<!doctype html><html><head><meta charset=utf-8><title>storefront API</title>\
             <style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}\
             code{background:#f3f3f3;padding:0 .2rem}.m{display:inline-block;width:4.5rem;font-weight:bold}\
             li{margin:.3rem 0}</style></head><body>",
        );
        let title = spec["info"]["title"].as_str().unwrap_or("API");
        let description = spec["info"]["description"].as_str().unwrap_or("");
        html.push_str(&format!(
            "<h1>{}</h1><p>{}</p><p>Machine-readable: <a href=/openapi.json>/openapi.json</a></p><ul>",
            esc(title),
            esc(description)
        ));
        if let Some(paths) = spec["paths"].as_object() {
            for (path, ops) in paths {
                for (method, op) in ops.as_object().into_iter().flatten() {
                    let summary = op["summary"].as_str().unwrap_or("");
                    html.push_str(&format!(
                        "<li><span class=m>{}</span><code>{}</code> {}</li>",
                        method.to_uppercase(),
                        esc(path),
                        esc(summary)
                    ));
                }
            }
        }
        html.push_str("</ul></body></html>");
        html
    })
}

async fn docs() -> Html<&'static str> {
    Html(docs_html())
}
