//! Cached response bodies: JSON serialised once into a presized buffer and frozen to `Bytes`,
//! with a strong ETag and the surrogate keys (CDN cache tags) of what the body shows.
//!
//! A representation is built once per cache fill and then shared: serving it clones
//! refcounts, never bytes. The validators are kept as `Bytes` checked once, here, to be valid
//! header values, so the HTTP layer turns them into headers without copying or re-checking.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use super::ServiceError;

/// A pre-serialised response body with its validators and cache tags.
#[derive(Debug)]
pub struct Representation {
    body: Bytes,
    etag: Bytes,
    surrogate_key: Bytes,
    subject: Option<crate::domain::Id>,
}

impl Representation {
    /// Serialises `value`; the ETag is the body's hash, prefixed by `version` when given (so
    /// it also changes when only the version does).
    pub fn new<T: Serialize>(value: &T, version: Option<u64>, tags: &str) -> Result<Representation, ServiceError> {
        let mut buf = BytesMut::with_capacity(2048).writer();
        serde_json::to_writer(&mut buf, value).map_err(|e| ServiceError::internal_from("serialising response", e))?;
        let body = buf.into_inner().freeze();
        let hash = xxhash_rust::xxh3::xxh3_64(&body);
        let etag = match version {
            Some(version) => format!("\"v{version}-{hash:016x}\""),
            None => format!("\"{hash:016x}\""),
        };
        if !is_header_safe(tags) {
            return Err(ServiceError::internal(format!(
                "surrogate keys are not a valid header: {tags:?}"
            )));
        }
        Ok(Representation {
            body,
            etag: Bytes::from(etag),
            surrogate_key: Bytes::copy_from_slice(tags.as_bytes()),
            subject: None,
        })
    }

    /// The same representation, about one entity (a product page's product).
    pub fn about(mut self, id: crate::domain::Id) -> Representation {
        self.subject = Some(id);
        self
    }

    /// The entity the body is about, when it is one.
    pub fn subject(&self) -> Option<crate::domain::Id> {
        self.subject
    }

    /// Returns the JSON body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Returns the strong ETag, quoted. Always a valid header value.
    pub fn etag(&self) -> &Bytes {
        &self.etag
    }

    /// Returns the space-separated surrogate keys. Always a valid header value.
    pub fn surrogate_key(&self) -> &Bytes {
        &self.surrogate_key
    }
}

/// Visible ASCII and spaces only: what a header value may hold without quoting.
fn is_header_safe(s: &str) -> bool {
    s.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
}

/// Weighs cached representations by their size, for caches bounded in bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByteWeighter;

impl quick_cache::Weighter<String, Arc<Representation>> for ByteWeighter {
    fn weight(&self, key: &String, value: &Arc<Representation>) -> u64 {
        (key.len() + value.body.len() + value.surrogate_key.len() + 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_etag_follows_the_body_and_the_version() {
        let a = Representation::new(&serde_json::json!({"a": 1}), Some(3), "product-1").unwrap();
        let b = Representation::new(&serde_json::json!({"a": 1}), Some(4), "product-1").unwrap();
        let c = Representation::new(&serde_json::json!({"a": 2}), Some(3), "product-1").unwrap();
        assert!(a.etag().starts_with(b"\"v3-"));
        assert_ne!(a.etag(), b.etag());
        assert_ne!(a.etag(), c.etag());
        assert_eq!(a.body().as_ref(), br#"{"a":1}"#);
    }

    #[test]
    fn tags_that_cannot_be_a_header_are_refused() {
        assert!(Representation::new(&1, None, "bad\ntag").is_err());
    }
}
