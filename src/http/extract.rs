//! Extractors that turn malformed input into [`ApiError`]s with the standard error shape.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::AppState;
use crate::domain::FieldError;
use crate::service::auth::Actor;

/// A JSON body; rejections become 400/413/415/422 with the standard error body.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::Validation(vec![FieldError {
                field: "body".into(),
                code: "invalid_type",
                message: e.body_text(),
            }])),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::MalformedJson(e.body_text())),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType),
            Err(JsonRejection::BytesRejection(e)) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge)
            }
            Err(other) if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::PayloadTooLarge),
            Err(other) => Err(ApiError::BadRequest(other.body_text())),
        }
    }
}

/// A JSON body with the bytes it was read from (money-moving requests hash them for their
/// `Idempotency-Key`); rejections as for [`Json`].
pub struct JsonBytes<T>(pub T, pub bytes::Bytes);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBytes<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = bytes::Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest(e.body_text())
            }
        })?;
        let value = axum::Json::<T>::from_bytes(&bytes).map_err(|e| match e {
            JsonRejection::JsonDataError(e) => ApiError::Validation(vec![FieldError {
                field: "body".into(),
                code: "invalid_type",
                message: e.body_text(),
            }]),
            other => ApiError::MalformedJson(other.body_text()),
        })?;
        Ok(JsonBytes(value.0, bytes))
    }
}

/// Query parameters; rejections become 400.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e: QueryRejection| ApiError::BadRequest(e.body_text()))
    }
}

/// Path parameters; rejections (invalid UTF-8 after percent-decoding, a wrong type) become
/// 400 in the standard error shape.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// The version named by `If-Match` (`"3"`, `W/"3"` or `3`); `None` when absent or `*`.
pub struct IfMatch(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let text = value.to_str().unwrap_or("").trim();
        if text == "*" {
            return Ok(IfMatch(None));
        }
        if_match_version(text).map(|v| IfMatch(Some(v))).ok_or_else(|| {
            ApiError::BadRequest(
                "If-Match must be the resource's ETag (\"v3-...\") or a quoted version number, e.g. \"3\"".into(),
            )
        })
    }
}

/// The version an `If-Match` value names: a version number (`"3"`, `W/"3"`, `3`) or a
/// versioned ETag as we send it (`"v3-<hash>"`: the version is what writes are checked
/// against; the hash also covers fields no write sets, such as the rating).
fn if_match_version(text: &str) -> Option<u64> {
    let bare = text.trim_start_matches("W/").trim_matches('"');
    if let Ok(version) = bare.parse::<u64>() {
        return Some(version);
    }
    let (version, hash) = bare.strip_prefix('v')?.split_once('-')?;
    (!hash.is_empty() && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| version.parse().ok())
        .flatten()
}

/// The authenticated caller: anonymous, the admin API key, or a user with a verified JWT.
/// Invalid credentials are rejected (401) rather than treated as anonymous.
pub struct Caller(pub Actor);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Ok(Caller(Actor::Anonymous));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError::Unauthorized("expected Authorization: Bearer <token>"))?;
        if let Some(key) = state.admin_api_key.as_deref() {
            // Constant-time comparison so response timing does not reveal key prefixes.
            if token.as_bytes().ct_eq(key.as_bytes()).into() {
                return Ok(Caller(Actor::System));
            }
        }
        let actor = state.accounts.verify_access_token(token)?;
        if let Actor::User { id, .. } = actor {
            state.limits.check_user(id)?;
        }
        Ok(Caller(actor))
    }
}

/// A caller who must be signed in. Checked as the request arrives, so an anonymous caller
/// gets 401 before the body is read or validated.
pub struct SignedInCaller(pub Actor);

impl FromRequestParts<AppState> for SignedInCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Caller(actor) = Caller::from_request_parts(parts, state).await?;
        actor.require_signed_in()?;
        Ok(SignedInCaller(actor))
    }
}

/// A caller with admin rights: 401 or 403 before the body is read or validated.
pub struct AdminCaller(pub Actor);

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Caller(actor) = Caller::from_request_parts(parts, state).await?;
        actor.require_admin()?;
        Ok(AdminCaller(actor))
    }
}

/// A caller who may write the catalog (an admin, or a seller user): 401 or 403 before the
/// body is read or validated. Which products a seller may change is the service's rule.
pub struct CatalogWriterCaller(pub Actor);

impl FromRequestParts<AppState> for CatalogWriterCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Caller(actor) = Caller::from_request_parts(parts, state).await?;
        actor.require_catalog_writer()?;
        Ok(CatalogWriterCaller(actor))
    }
}

/// The client IP resolved by the rate-limit middleware (loopback when absent, e.g. in tests
/// that call the router directly).
pub struct ClientAddr(pub std::net::IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<super::rate_limit::ClientIp>()
                .map(|c| c.0)
                .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1])),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_takes_a_version_or_our_etag() {
        for (text, version) in [
            ("\"3\"", Some(3)),
            ("W/\"3\"", Some(3)),
            ("3", Some(3)),
            ("\"v12-729de0267e8fe28c\"", Some(12)),
            ("W/\"v12-729de0267e8fe28c\"", Some(12)),
            ("\"v12-\"", None),
            ("\"v12-xyz\"", None),
            ("\"vx-abc\"", None),
            ("\"abc\"", None),
        ] {
            assert_eq!(if_match_version(text), version, "{text}");
        }
    }
}
