//! The service layer's error type: what went wrong in terms of the use case.
//!
//! Refusals carry a [`Code`] from the domain's one table; internal faults keep their source
//! error, so the log shows the whole cause chain while the client sees an opaque 500.

use crate::domain::error::{Code, DomainError};
use crate::domain::FieldError;

/// A boxed cause of an internal fault.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Errors of the use cases.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The domain refuses (a taken slug, too little stock...).
    #[error(transparent)]
    Domain(#[from] DomainError),
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
        /// Code from the table.
        code: Code,
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
    /// The caller is not authenticated (or the credentials are invalid/expired).
    #[error("{message}")]
    Unauthorized {
        /// Code from the table.
        code: Code,
        /// Human explanation.
        message: &'static str,
    },
    /// The caller is authenticated but may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Too much work is queued; retry shortly.
    #[error("the server is overloaded; retry shortly")]
    Overloaded,
    /// A read model (the search index) is still catching up after a start; retry shortly.
    #[error("search is starting: the index is catching up with the catalog; retry shortly")]
    NotReady,
    /// A pagination cursor was not produced by this listing.
    #[error("invalid pagination cursor")]
    InvalidCursor,
    /// Storage failed.
    #[error("storage failed")]
    Storage(#[from] storefront_storage::Error),
    /// An unexpected internal fault, with its cause when there is one.
    #[error("{context}")]
    Internal {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: Option<Cause>,
    },
}

impl ServiceError {
    /// An internal fault without an underlying error.
    pub fn internal(context: impl Into<String>) -> Self {
        ServiceError::Internal {
            context: context.into(),
            source: None,
        }
    }

    /// An internal fault caused by `source`.
    pub fn internal_from(context: impl Into<String>, source: impl Into<Cause>) -> Self {
        ServiceError::Internal {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// One invalid field.
    pub(crate) fn invalid(field: &str, code: &'static str, message: &str) -> Self {
        ServiceError::Validation(vec![FieldError {
            field: field.into(),
            code,
            message: message.into(),
        }])
    }
}
