//! `ApiError`: the one place where failures become HTTP statuses and the JSON error shape
//! `{"error":{"code","message","details"}}`. Every code and its status come from the domain's
//! one table ([`Code`]); internal faults keep their cause chain for the log, which the
//! metrics middleware writes, and answer an opaque 500.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::error::{envelope, Code, DomainError};
use crate::domain::FieldError;
use crate::service::error::Cause;
use crate::service::ServiceError;

/// An error answered to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be understood.
    #[error("{0}")]
    BadRequest(String),
    /// 400: the body is not valid JSON.
    #[error("malformed JSON body: {0}")]
    MalformedJson(String),
    /// 400: a pagination cursor was tampered with or belongs to another listing.
    #[error("invalid pagination cursor")]
    InvalidCursor,
    /// 401: credentials are missing or wrong.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 401: credentials were presented but are invalid, expired or revoked.
    #[error("{message}")]
    InvalidCredentials {
        /// Code from the table.
        code: Code,
        /// Explanation.
        message: &'static str,
    },
    /// 429: a rate limit was hit.
    #[error("too many requests; retry after {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a retry can succeed.
        retry_after_secs: u64,
    },
    /// 403: the caller may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 404: no such entity.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 404 with a specific code.
    #[error("{message}")]
    Missing {
        /// Code from the table.
        code: Code,
        /// Explanation.
        message: &'static str,
    },
    /// 404: no such route.
    #[error("no route matches this path")]
    RouteNotFound,
    /// 405: the route exists but not with this method.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// 409 (mostly): the domain refuses.
    #[error(transparent)]
    Domain(DomainError),
    /// 412: `If-Match` does not match the current version.
    #[error("If-Match does not match the current version {current}")]
    PreconditionFailed {
        /// Current version.
        current: u64,
    },
    /// 413: the body exceeds the configured limit.
    #[error("request body is larger than the limit")]
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    /// 422: one or more fields are invalid.
    #[error("one or more fields are invalid")]
    Validation(Vec<FieldError>),
    /// 503: too many requests in flight.
    #[error("the server is overloaded; retry shortly")]
    Overloaded,
    /// 408: the body did not arrive in time.
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    /// 503: search is still catching up after a start.
    #[error("search is starting: the index is catching up with the catalog; retry shortly")]
    NotReady,
    /// 503: the request took longer than the configured timeout.
    #[error("the request timed out")]
    Timeout,
    /// 500: an internal fault; the cause is logged, never sent.
    #[error("internal error")]
    Internal(Cause),
}

/// The cause chain of a 500, attached to the response for the logging middleware.
#[derive(Debug, Clone)]
pub struct InternalCause(pub String);

impl ApiError {
    /// An internal fault described by `message`.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::Internal(message.into().into())
    }

    /// Returns the stable code.
    pub fn code(&self) -> Code {
        match self {
            ApiError::BadRequest(_) => Code::BadRequest,
            ApiError::MalformedJson(_) => Code::MalformedJson,
            ApiError::InvalidCursor => Code::InvalidCursor,
            ApiError::Unauthorized(_) => Code::Unauthorized,
            ApiError::InvalidCredentials { code, .. } | ApiError::Missing { code, .. } => *code,
            ApiError::RateLimited { .. } => Code::RateLimited,
            ApiError::Forbidden(_) => Code::Forbidden,
            ApiError::NotFound(_) => Code::NotFound,
            ApiError::RouteNotFound => Code::RouteNotFound,
            ApiError::MethodNotAllowed => Code::MethodNotAllowed,
            ApiError::Domain(e) => e.code(),
            ApiError::PreconditionFailed { .. } => Code::PreconditionFailed,
            ApiError::PayloadTooLarge => Code::PayloadTooLarge,
            ApiError::UnsupportedMediaType => Code::UnsupportedMediaType,
            ApiError::Validation(_) => Code::ValidationFailed,
            ApiError::Overloaded => Code::Overloaded,
            ApiError::NotReady => Code::NotReady,
            ApiError::BodyTimeout => Code::BodyTimeout,
            ApiError::Timeout => Code::Timeout,
            ApiError::Internal(_) => Code::Internal,
        }
    }

    /// Returns the HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code().status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            ApiError::Validation(fields) => serde_json::to_value(fields).ok(),
            ApiError::Domain(e) => Some(e.details()),
            ApiError::PreconditionFailed { current } => Some(serde_json::json!({ "current_version": current })),
            ApiError::NotFound(kind) => Some(serde_json::json!({ "resource": kind })),
            _ => None,
        }
    }
}

/// The body of every error response (documentation of what [`envelope`] writes).
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody<'a> {
    /// What went wrong.
    pub error: ErrorDetail<'a>,
}

/// What went wrong.
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail<'a> {
    /// Stable snake_case code (see the table above).
    pub code: &'a str,
    /// Human explanation; may change between versions.
    pub message: String,
    /// Machine-readable facts: each invalid field (422), the version (412), the shortfall of
    /// stock (409)...
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Value>)]
    pub details: Option<serde_json::Value>,
}

/// `error: cause: cause…`, the whole chain in one line for the log.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let bytes = envelope(self.code(), &self.to_string(), self.details().as_ref());
        let mut response = (status, bytes).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self {
            ApiError::Overloaded | ApiError::Timeout | ApiError::NotReady => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::Domain(DomainError::PaymentUnavailable { retry_after_secs }) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from((*retry_after_secs).max(1)));
            }
            ApiError::Unauthorized(_) | ApiError::InvalidCredentials { .. } => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from((*retry_after_secs).max(1)));
            }
            ApiError::Internal(cause) => {
                response.extensions_mut().insert(InternalCause(chain(cause.as_ref())));
            }
            _ => {}
        }
        response
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Domain(e) => ApiError::Domain(e),
            ServiceError::NotFound { kind } => ApiError::NotFound(kind),
            ServiceError::Missing { code, message } => ApiError::Missing { code, message },
            ServiceError::Validation(fields) => ApiError::Validation(fields),
            ServiceError::VersionMismatch { current } => ApiError::PreconditionFailed { current },
            ServiceError::InvalidCursor => ApiError::InvalidCursor,
            ServiceError::Overloaded => ApiError::Overloaded,
            ServiceError::NotReady => ApiError::NotReady,
            ServiceError::Unauthorized { code, message } => ApiError::InvalidCredentials { code, message },
            ServiceError::Forbidden(message) => ApiError::Forbidden(message),
            e @ (ServiceError::Storage(_) | ServiceError::Internal { .. }) => ApiError::Internal(Box::new(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_fault_keeps_its_cause_chain_for_the_log_and_shows_none() {
        let io = std::io::Error::other("disk on fire");
        let response = ApiError::from(ServiceError::internal_from("writing the cart", io)).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let cause = response.extensions().get::<InternalCause>().unwrap();
        assert_eq!(cause.0, "writing the cart: disk on fire");
    }

    #[test]
    fn domain_refusals_take_their_status_from_the_code_table() {
        let e = ApiError::Domain(DomainError::SkuTaken { sku: "A".into() });
        assert_eq!(e.status(), StatusCode::CONFLICT);
        assert_eq!(e.code().as_str(), "sku_taken");
    }
}
