//! Where the audit log is written and read. The middleware sees every API write once: when
//! the caller is an admin, a seller or the admin key, or the write moves money, it reads the
//! resource as it was (a GET of the same path, or of the resource the path acts on), runs
//! the write, and appends who, what, from where, the status and both documents to
//! [`crate::service::audit`].

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use tower::ServiceExt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::extract::{AdminCaller, Caller, Query};
use super::openapi::{AdminOnly, Invalid};
use super::rate_limit::ClientIp;
use super::{private_json, AppState};
use crate::service::audit::{AuditFilter, AuditPage, Observed};
use crate::service::auth::Actor;

/// Bodies larger than this are not kept in an entry.
const KEPT_BODY_BYTES: usize = 64 * 1024;

/// Routes under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

/// The audit log, newest first (admins): every write by an admin, a seller or the admin key,
/// and every money action (refunds, payments, cancellations, returns, provider webhooks), with
/// who, when, from where, the status, the request (secrets redacted) and the resource before
/// and after.
#[utoipa::path(get, path = "/admin/audit", tag = "operations", security(("bearer" = [])), params(AuditFilter),
    responses((status = 200, description = "A page of the log", body = AuditPage), AdminOnly, Invalid))]
async fn list_audit(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    Query(filter): Query<AuditFilter>,
) -> Result<Response, ApiError> {
    let page = state.audit.list(actor, filter).await?;
    Ok(private_json(StatusCode::OK, &page))
}

/// The middleware's state: the app, and the routes (without this layer) to read the
/// resource before a write.
#[derive(Clone)]
pub struct Recorder {
    /// The app state (the caller's identity, the log).
    pub state: AppState,
    /// The routes, for the read before a write.
    pub reader: Router,
}

/// Marks the read made before a write, so metrics do not count it as a client's.
#[derive(Debug, Clone, Copy)]
pub struct AuditRead;

/// Middleware: audits the writes that need it.
pub async fn record(State(recorder): State<Recorder>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || !request.uri().path().starts_with("/api/")
    {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let (mut parts, body) = request.into_parts();
    let actor = match Caller::from_request_parts(&mut parts, &recorder.state).await {
        Ok(Caller(actor)) => actor,
        // The handler rejects bad credentials the same way.
        Err(_) => return next.run(Request::from_parts(parts, body)).await,
    };
    if !audited(&actor, &method, &path) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    // The body limit layer outside has bounded it already.
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return axum::response::IntoResponse::into_response(ApiError::BadRequest(
                "the request body could not be read".into(),
            ))
        }
    };
    let ip = parts
        .extensions
        .get::<ClientIp>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let before = read_before(&recorder.reader, &parts, &method, &path).await;
    let request_json = json_of(&bytes);
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let status = response.status();
    let (response_parts, response_body) = response.into_parts();
    let body = axum::body::to_bytes(response_body, usize::MAX)
        .await
        .unwrap_or_default();
    let after = status.is_success().then(|| json_of(&body)).flatten();
    let seen = Observed {
        actor,
        ip,
        method: method.to_string(),
        path,
        status: status.as_u16(),
        request: request_json,
        before,
        after,
    };
    if let Err(e) = recorder.state.audit.append(seen).await {
        // The write itself stands; a missing entry is an operator's alarm, not the client's.
        tracing::error!(error = %e, "audit entry not written");
    }
    Response::from_parts(response_parts, Body::from(body))
}

/// Admin, seller and admin-key writes (not their own account, cart or sign-in), and money
/// actions by anyone.
fn audited(actor: &Actor, method: &Method, path: &str) -> bool {
    let api = path.trim_start_matches("/api/v1");
    let money = api == "/payments/stripe/webhook"
        || api.starts_with("/returns/")
        || (api.starts_with("/orders/")
            && ["/cancel", "/refunds", "/payment", "/returns"]
                .iter()
                .any(|action| api.ends_with(action)));
    let own = ["/auth/", "/me", "/cart", "/checkout"]
        .iter()
        .any(|p| api.starts_with(p));
    let privileged = match actor {
        Actor::System => true,
        Actor::User { role, .. } => matches!(
            role,
            crate::domain::user::Role::Admin | crate::domain::user::Role::Seller
        ),
        Actor::Anonymous => false,
    };
    *method != Method::GET && (money || (privileged && !own))
}

/// The resource before the write: the path's own document (not for a POST, which creates
/// under it), else the document of the resource the path acts on (`/orders/{id}` for
/// `/orders/{id}/refunds`).
async fn read_before(
    reader: &Router,
    parts: &axum::http::request::Parts,
    method: &Method,
    path: &str,
) -> Option<serde_json::Value> {
    if *method != Method::POST {
        if let Some(found) = read(reader, parts, path).await {
            return Some(found);
        }
    }
    let parent = path.rsplit_once('/').map(|(parent, _)| parent)?;
    if parent.matches('/').count() < 3 {
        // `/api/v1/products` is a collection, not a resource.
        return None;
    }
    read(reader, parts, parent).await
}

/// A GET of `path` as the same caller; its JSON body when it answers 200.
async fn read(reader: &Router, parts: &axum::http::request::Parts, path: &str) -> Option<serde_json::Value> {
    // The same query too: a guest's order token may be in it.
    let uri = match parts.uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let mut request = Request::get(uri).body(Body::empty()).ok()?;
    for name in [
        axum::http::header::AUTHORIZATION,
        axum::http::HeaderName::from_static("x-order-token"),
    ] {
        if let Some(value) = parts.headers.get(&name) {
            request.headers_mut().insert(name, value.clone());
        }
    }
    request.extensions_mut().insert(AuditRead);
    let response = reader.clone().oneshot(request).await.ok()?;
    if response.status() != StatusCode::OK {
        return None;
    }
    let body = axum::body::to_bytes(response.into_body(), KEPT_BODY_BYTES).await.ok()?;
    json_of(&body)
}

/// A JSON body, or `None` when there is none, it is not JSON, or it is too big to keep.
fn json_of(bytes: &[u8]) -> Option<serde_json::Value> {
    if bytes.is_empty() || bytes.len() > KEPT_BODY_BYTES {
        return None;
    }
    serde_json::from_slice(bytes).ok()
}
