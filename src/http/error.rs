//! `ApiError`: the one place where failures become HTTP statuses and the JSON error shape
//! `{"error":{"code","message","details"}}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::FieldError;
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
        /// Stable code.
        code: &'static str,
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
        /// Stable code.
        code: &'static str,
        /// Explanation.
        message: &'static str,
    },
    /// 404: no such route.
    #[error("no route matches this path")]
    RouteNotFound,
    /// 405: the route exists but not with this method.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// 409: the write conflicts with current data.
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// Explanation.
        message: String,
        /// Details.
        details: serde_json::Value,
    },
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
    /// 503: the request took longer than the configured timeout.
    #[error("the request timed out")]
    Timeout,
    /// 500: an internal fault; the cause is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

/// The cause of a 500, attached to the response for the logging middleware.
#[derive(Debug, Clone)]
pub struct InternalCause(pub String);

impl ApiError {
    /// Returns the HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::MalformedJson(_) | ApiError::InvalidCursor => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) | ApiError::InvalidCredentials { .. } => StatusCode::UNAUTHORIZED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::Missing { .. } | ApiError::RouteNotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Overloaded | ApiError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Returns the stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::InvalidCursor => "invalid_cursor",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::InvalidCredentials { code, .. } => code,
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Missing { code, .. } => code,
            ApiError::RouteNotFound => "route_not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict { code, .. } => code,
            ApiError::PreconditionFailed { .. } => "precondition_failed",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Validation(_) => "validation_failed",
            ApiError::Overloaded => "overloaded",
            ApiError::Timeout => "timeout",
            ApiError::Internal(_) => "internal",
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            ApiError::Validation(fields) => serde_json::to_value(fields).ok(),
            ApiError::Conflict { details, .. } => Some(details.clone()),
            ApiError::PreconditionFailed { current } => Some(serde_json::json!({ "current_version": current })),
            ApiError::NotFound(kind) => Some(serde_json::json!({ "resource": kind })),
            _ => None,
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<serde_json::Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = Body {
            error: Inner {
                code: self.code(),
                message: self.to_string(),
                details: self.details(),
            },
        };
        let bytes = serde_json::to_vec(&body)
            .unwrap_or_else(|_| br#"{"error":{"code":"internal","message":"internal error"}}"#.to_vec());
        let mut response = (status, bytes).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self {
            ApiError::Overloaded | ApiError::Timeout => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::Unauthorized(_) | ApiError::InvalidCredentials { .. } => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RateLimited { retry_after_secs } => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs.max(&1).to_owned()),
                );
            }
            ApiError::Internal(cause) => {
                response.extensions_mut().insert(InternalCause(cause.clone()));
            }
            _ => {}
        }
        response
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound { kind } => ApiError::NotFound(kind),
            ServiceError::Missing { code, message } => ApiError::Missing { code, message },
            ServiceError::Validation(fields) => ApiError::Validation(fields),
            ServiceError::VersionMismatch { current } => ApiError::PreconditionFailed { current },
            ServiceError::Conflict { code, message, details } => ApiError::Conflict { code, message, details },
            ServiceError::InvalidCursor => ApiError::InvalidCursor,
            ServiceError::Overloaded => ApiError::Overloaded,
            ServiceError::Unauthorized { code, message } => ApiError::InvalidCredentials { code, message },
            ServiceError::Forbidden(message) => ApiError::Forbidden(message),
            ServiceError::Storage(e) => ApiError::Internal(format!("storage: {e}")),
            ServiceError::Internal(e) => ApiError::Internal(e),
        }
    }
}
