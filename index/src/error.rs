//! The index layer's single error type.

/// Result alias for index operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong inside the search index.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Tantivy reported a failure.
    #[error("tantivy: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// The query text could not be parsed.
    #[error("invalid query: {0}")]
    Query(#[from] tantivy::query::QueryParserError),
    /// The index directory could not be opened.
    #[error("index directory: {0}")]
    Directory(#[from] tantivy::directory::error::OpenDirectoryError),
    /// Filesystem failure.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}
