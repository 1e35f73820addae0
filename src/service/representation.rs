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
    /// The body compressed in each encoding, made the first time one is asked for (`None`:
    /// not worth it).
    encoded: [std::sync::OnceLock<Option<Encoded>>; 3],
}

/// A content coding of a cached body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Brotli.
    Br,
    /// Zstandard.
    Zstd,
    /// gzip.
    Gzip,
}

impl Encoding {
    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Br => "br",
            Encoding::Zstd => "zstd",
            Encoding::Gzip => "gzip",
        }
    }

    /// Our pick from an `Accept-Encoding` value: the highest q, br before zstd before gzip
    /// at equal q; `None` for identity.
    pub fn choose(accept: &str) -> Option<Encoding> {
        let mut best: Option<(f32, Encoding)> = None;
        let mut star = None;
        let mut refused = [false; 3];
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let token = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|v| v.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let encoding = match token.as_str() {
                "br" => Encoding::Br,
                "zstd" => Encoding::Zstd,
                "gzip" | "x-gzip" => Encoding::Gzip,
                "*" => {
                    star = Some(q);
                    continue;
                }
                _ => continue,
            };
            if q <= 0.0 {
                refused[encoding as usize] = true;
                continue;
            }
            if best.is_none_or(|(bq, be)| q > bq || (q == bq && (encoding as usize) < (be as usize))) {
                best = Some((q, encoding));
            }
        }
        best.map(|(_, e)| e).or_else(|| {
            // `*` stands for every coding not named.
            star.filter(|q| *q > 0.0).and_then(|_| {
                [Encoding::Br, Encoding::Zstd, Encoding::Gzip]
                    .into_iter()
                    .find(|e| !refused[*e as usize])
            })
        })
    }
}

/// A body in one content coding, with the ETag of that coding.
#[derive(Debug)]
pub struct Encoded {
    /// The compressed body.
    pub body: Bytes,
    /// The ETag of this coding (the identity ETag with `-br`, `-zstd` or `-gzip`).
    pub etag: Bytes,
}

/// Bodies below this are sent as they are: compression would not pay for its header.
const MIN_COMPRESSED_BYTES: usize = 512;

impl Representation {
    /// Serialises `value`; the ETag is the body's hash, prefixed by `version` when given (so
    /// it also changes when only the version does).
    pub fn new<T: Serialize>(value: &T, version: Option<u64>, tags: &str) -> Result<Representation, ServiceError> {
        let mut buf = BytesMut::with_capacity(2048).writer();
        serde_json::to_writer(&mut buf, value).map_err(|e| ServiceError::internal_from("serialising response", e))?;
        let buf = buf.into_inner();
        // MEM: the buffer grew by doubling, and a frozen buffer keeps all of its capacity for
        // as long as the page is cached: up to twice what the cache weighs (18.6 MB of a
        // 107 MB heap peak in a heaptrack profile of the browse mix). A page that overshot
        // is copied to its size once, when rendered.
        let body = if buf.capacity() - buf.len() > buf.len() / 8 + 256 {
            Bytes::copy_from_slice(&buf)
        } else {
            buf.freeze()
        };
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
            encoded: Default::default(),
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

    /// The body in `encoding`, compressed on first use and kept with the representation (so
    /// a cached page is compressed once, not per request); `None` when compression does not
    /// make it smaller.
    pub fn encoded(&self, encoding: Encoding) -> Option<&Encoded> {
        self.encoded[encoding as usize]
            .get_or_init(|| {
                if self.body.len() < MIN_COMPRESSED_BYTES {
                    return None;
                }
                let body = compress(&self.body, encoding)?;
                if body.len() >= self.body.len() {
                    return None;
                }
                let bare = &self.etag[..self.etag.len() - 1];
                let etag = [bare, b"-", encoding.token().as_bytes(), b"\""].concat();
                Some(Encoded {
                    body: Bytes::from(body),
                    etag: Bytes::from(etag),
                })
            })
            .as_ref()
    }

    /// Returns the space-separated surrogate keys. Always a valid header value.
    pub fn surrogate_key(&self) -> &Bytes {
        &self.surrogate_key
    }
}

/// `body` in `encoding` (levels chosen for bodies compressed once and served many times).
fn compress(body: &[u8], encoding: Encoding) -> Option<Vec<u8>> {
    use std::io::Write;
    match encoding {
        Encoding::Br => {
            let mut out = Vec::with_capacity(body.len() / 3);
            let params = brotli::enc::BrotliEncoderParams {
                quality: 9,
                lgwin: 20,
                ..Default::default()
            };
            brotli::BrotliCompress(&mut &body[..], &mut out, &params).ok()?;
            Some(out)
        }
        Encoding::Zstd => zstd::bulk::compress(body, 9).ok(),
        Encoding::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 3), flate2::Compression::new(6));
            gz.write_all(body).ok()?;
            gz.finish().ok()
        }
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
        // MEM: the compressed codings are made after the entry is weighed, so they are
        // charged up front: JSON compresses to about a quarter, and a CDN asks for up to three.
        let body = value.body.len();
        (key.len() + body + body * 3 / 4 + value.surrogate_key.len() + 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_picks_the_best_coding_we_have() {
        for (accept, expected) in [
            ("gzip, deflate, br", Some(Encoding::Br)),
            ("gzip, zstd", Some(Encoding::Zstd)),
            ("gzip;q=1, br;q=0.5", Some(Encoding::Gzip)),
            ("br;q=0, gzip", Some(Encoding::Gzip)),
            ("identity", None),
            ("", None),
            ("*", Some(Encoding::Br)),
            ("br;q=0, *;q=0.1", Some(Encoding::Zstd)),
            ("deflate", None),
            ("GZIP", Some(Encoding::Gzip)),
        ] {
            assert_eq!(Encoding::choose(accept), expected, "{accept:?}");
        }
    }

    #[test]
    fn each_coding_is_made_once_round_trips_and_has_its_own_etag() {
        let value: Vec<String> = (0..200).map(|i| format!("item number {i}")).collect();
        let repr = Representation::new(&value, Some(3), "p-1").unwrap();
        for encoding in [Encoding::Br, Encoding::Zstd, Encoding::Gzip] {
            let first = repr.encoded(encoding).unwrap();
            assert!(std::ptr::eq(first, repr.encoded(encoding).unwrap()), "made once");
            assert!(first.body.len() < repr.body().len() / 2);
            let tag = std::str::from_utf8(&first.etag).unwrap();
            assert!(
                tag.starts_with("\"v3-") && tag.ends_with(&format!("-{}\"", encoding.token())),
                "{tag}"
            );
            let plain = match encoding {
                Encoding::Br => {
                    let mut out = Vec::new();
                    brotli::BrotliDecompress(&mut &first.body[..], &mut out).unwrap();
                    out
                }
                Encoding::Zstd => zstd::decode_all(&first.body[..]).unwrap(),
                Encoding::Gzip => {
                    use std::io::Read;
                    let mut out = Vec::new();
                    flate2::read::GzDecoder::new(&first.body[..])
                        .read_to_end(&mut out)
                        .unwrap();
                    out
                }
            };
            assert_eq!(plain, repr.body().as_ref());
        }
        let tiny = Representation::new(&"x", None, "t").unwrap();
        assert!(tiny.encoded(Encoding::Br).is_none(), "small bodies go as they are");
    }

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
