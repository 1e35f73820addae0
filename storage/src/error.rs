//! The storage layer's single error type.

/// Result alias for storage operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong inside the storage engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// RocksDB itself reported a failure (I/O, corruption, lock held by another process...).
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A stored value failed rkyv validation: the bytes under `key` in `cf` are not a valid record.
    #[error("corrupt record in column family {cf} at key {key}: {reason}")]
    Corrupt {
        /// Column family holding the bad value.
        cf: &'static str,
        /// Hex rendering of the key.
        key: String,
        /// What validation reported.
        reason: String,
    },
    /// A record could not be serialised.
    #[error("failed to encode record: {0}")]
    Encode(String),
    /// The database was written by a newer or unknown schema.
    #[error("unsupported schema version {found} (this build understands {expected})")]
    SchemaVersion {
        /// Version stored in the meta column family.
        found: u32,
        /// Version this build writes.
        expected: u32,
    },
    /// Another process holds the database lock (for example a running server during `import`).
    #[error("the data directory {path} is locked by another storefront process (stop the server first): {source}")]
    Locked {
        /// The data directory.
        path: String,
        /// The underlying RocksDB error.
        source: rocksdb::Error,
    },
    /// The data directory holds something that is not a storefront store.
    #[error("{path} is not a storefront data directory: {reason}; refusing to touch it (point --data-dir at an empty or new folder)")]
    NotOurs {
        /// The directory.
        path: String,
        /// What is there instead.
        reason: String,
    },
    /// A checkpoint/backup target is unusable.
    #[error("invalid path {0}")]
    InvalidPath(String),
}

impl Error {
    pub(crate) fn corrupt(cf: &'static str, key: &[u8], reason: impl std::fmt::Display) -> Self {
        Error::Corrupt {
            cf,
            key: hex(key),
            reason: reason.to_string(),
        }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
