//! The service layer's error type: what went wrong in terms of the use case.

use crate::domain::FieldError;

/// Errors of the use cases (catalog, accounts).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The addressed entity does not exist (or is not visible).
    #[error("{kind} not found")]
    NotFound {
        /// Entity kind, e.g. `product`.
        kind: &'static str,
    },
    /// The addressed resource is gone or never existed, with a specific code (e.g. an
    /// expired cart token answers `cart_expired`).
    #[error("{message}")]
    Missing {
        /// Stable code.
        code: &'static str,
        /// Human explanation.
        message: &'static str,
    },
    /// Input fields are invalid; every invalid field is listed.
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    /// `If-Match` named a version other than the current one.
    #[error("version mismatch: the current version is {current}")]
    VersionMismatch {
        /// The entity's current version.
        current: u64,
    },
    /// The write conflicts with existing data (a taken slug or SKU...).
    #[error("{message}")]
    Conflict {
        /// Stable error code.
        code: &'static str,
        /// Human explanation.
        message: String,
        /// Machine-readable details.
        details: serde_json::Value,
    },
    /// The caller is not authenticated (or the credentials are invalid/expired).
    #[error("{message}")]
    Unauthorized {
        /// Stable code, e.g. `invalid_credentials`.
        code: &'static str,
        /// Human explanation.
        message: &'static str,
    },
    /// The caller is authenticated but may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Too much work is queued; retry shortly.
    #[error("the server is overloaded; retry shortly")]
    Overloaded,
    /// A pagination cursor was not produced by this listing.
    #[error("invalid pagination cursor")]
    InvalidCursor,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] storefront_storage::Error),
    /// An unexpected internal fault.
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    pub(crate) fn conflict(code: &'static str, message: String, details: serde_json::Value) -> Self {
        ServiceError::Conflict { code, message, details }
    }

    pub(crate) fn invalid(field: &str, code: &'static str, message: &str) -> Self {
        ServiceError::Validation(vec![FieldError {
            field: field.into(),
            code,
            message: message.into(),
        }])
    }
}
