//! The service layer's error type: what went wrong in terms of the use case.

use crate::domain::FieldError;

/// Errors of catalog use cases.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The addressed entity does not exist (or is not visible).
    #[error("{kind} not found")]
    NotFound {
        /// Entity kind, e.g. `product`.
        kind: &'static str,
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

impl CatalogError {
    pub(crate) fn conflict(
        code: &'static str,
        message: String,
        details: serde_json::Value,
    ) -> Self {
        CatalogError::Conflict {
            code,
            message,
            details,
        }
    }

    pub(crate) fn invalid(field: &str, code: &'static str, message: &str) -> Self {
        CatalogError::Validation(vec![FieldError {
            field: field.into(),
            code,
            message: message.into(),
        }])
    }
}
