//! The index layer's single error type.

/// Result alias for index operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong inside the search index.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Tantivy reported a failure.
    #[error("tantivy: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
}
