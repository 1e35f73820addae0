//! CDN purge hook: tails the changelog and sends the surrogate keys of each committed change to
//! a configured purge URL (Varnish xkey style: `POST` or `PURGE` with `xkey-purge`), never
//! inline in the request that made it, and only once every read model shows the change.
//!
//! Delivery is at-least-once: the consumer cursor is persisted only after the purge endpoint
//! answered 2xx, so a crash or an unreachable CDN replays the same tags later. A purger that
//! never ran starts at the current end of the changelog: there is nothing cached to purge for
//! history that predates it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Empty;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use storefront_storage::Store;

use super::{PersistedCursor, ReadModels};
use crate::clock::SharedClock;
use crate::service::{blocking, ServiceError};
use crate::worker::{Progress, Worker};

/// Name of the purger's changelog cursor.
pub const CONSUMER: &str = "cdn_purge";
/// Changelog entries purged per step.
const BATCH: usize = 256;

/// Settings of the purger.
#[derive(Debug, Clone)]
pub struct PurgeSettings {
    /// URL that receives the purge requests.
    pub url: String,
    /// `POST` or `PURGE`.
    pub method: http::Method,
    /// Longest `xkey-purge` header of one request.
    pub max_header_bytes: usize,
    /// Timeout of one purge request.
    pub timeout: Duration,
    /// Idle poll interval.
    pub poll_interval: Duration,
}

/// What the purger did, for `/metrics`.
#[derive(Debug, Default)]
pub struct PurgeMetrics {
    /// Purge requests the CDN accepted.
    pub sent: AtomicU64,
    /// Purge requests the CDN refused (4xx): dropped, never retried.
    pub rejected: AtomicU64,
    /// Purge requests that failed (5xx, timeout, network), retried.
    pub failed: AtomicU64,
    /// When a step last purged everything it read, Unix milliseconds (0: never).
    pub last_success_ms: AtomicI64,
    /// The last changelog sequence purged.
    pub cursor: AtomicU64,
}

/// The CDN purger.
pub struct Purger {
    store: Store,
    cursor: Arc<PersistedCursor>,
    read_models: Arc<ReadModels>,
    settings: PurgeSettings,
    metrics: Arc<PurgeMetrics>,
    clock: SharedClock,
    client: Client<HttpConnector, Empty<bytes::Bytes>>,
    /// Next sequence to purge from, minus one; `u64::MAX` until the first step set it.
    position: AtomicU64,
}

/// How one purge request ended.
enum Sent {
    Accepted,
    /// The CDN refused these tags (4xx): retrying cannot help.
    Refused(http::StatusCode),
}

impl Purger {
    /// A purger over `store`; `cursor` is the consumer registered for retention, and
    /// `read_models` what must show a change before it is purged.
    pub fn new(
        store: Store,
        cursor: Arc<PersistedCursor>,
        read_models: Arc<ReadModels>,
        settings: PurgeSettings,
        metrics: Arc<PurgeMetrics>,
        clock: SharedClock,
    ) -> Purger {
        Purger {
            store,
            cursor,
            read_models,
            settings,
            metrics,
            clock,
            client: Client::builder(TokioExecutor::new()).build_http(),
            position: AtomicU64::new(u64::MAX),
        }
    }

    /// Where the purger starts: its persisted cursor, or the end of the changelog when it never
    /// ran. Changes deleted by retention while it was off cannot be purged any more (the CDN's
    /// own TTLs bound how stale those pages stay); while it runs, retention never deletes past
    /// its cursor, so this is decided once.
    fn start(&self) -> Result<u64, ServiceError> {
        let mut cursor = match self.cursor.get()? {
            0 => {
                let end = self.store.last_changelog_seq();
                self.cursor.set(end)?;
                end
            }
            c => c,
        };
        let truncated = self.store.changelog_truncated_through()?;
        if cursor < truncated {
            tracing::warn!(
                cursor,
                truncated,
                "cdn purger skips changes deleted by changelog retention"
            );
            cursor = truncated;
        }
        Ok(cursor)
    }

    async fn send(&self, keys: &str) -> Result<Sent, ServiceError> {
        let request = http::Request::builder()
            .method(self.settings.method.clone())
            .uri(&self.settings.url)
            .header("xkey-purge", keys)
            .header("surrogate-key", keys)
            .body(Empty::new())
            .map_err(|e| ServiceError::internal_from("building the purge request", e))?;
        let failed = |e: ServiceError| {
            self.metrics.failed.fetch_add(1, Ordering::Relaxed);
            e
        };
        let response = tokio::time::timeout(self.settings.timeout, self.client.request(request))
            .await
            .map_err(|_| failed(ServiceError::internal("purge request timed out")))?
            .map_err(|e| failed(ServiceError::internal_from("purge request failed", e)))?;
        let status = response.status();
        if status.is_success() {
            self.metrics.sent.fetch_add(1, Ordering::Relaxed);
            Ok(Sent::Accepted)
        } else if status.is_client_error() {
            self.metrics.rejected.fetch_add(1, Ordering::Relaxed);
            Ok(Sent::Refused(status))
        } else {
            Err(failed(ServiceError::internal(format!(
                "purge endpoint answered {status}"
            ))))
        }
    }

    /// Purges `tags`. A refused request is split in halves and each half sent on its own, so
    /// one bad tag (or a limit lower than configured) costs only its own purge; a single
    /// refused tag is logged and dropped. 5xx and network errors fail the step, which the
    /// worker retries with backoff and jitter.
    async fn purge(&self, tags: &BTreeSet<&str>) -> Result<(), ServiceError> {
        let mut todo: Vec<Vec<&str>> = chunks(tags, self.settings.max_header_bytes);
        while let Some(chunk) = todo.pop() {
            match self.send(&chunk.join(" ")).await? {
                Sent::Accepted => {}
                Sent::Refused(status) if chunk.len() > 1 => {
                    tracing::warn!(%status, tags = chunk.len(), "cdn refused a purge; splitting it");
                    let (a, b) = chunk.split_at(chunk.len() / 2);
                    todo.push(b.to_vec());
                    todo.push(a.to_vec());
                }
                Sent::Refused(status) => {
                    tracing::error!(%status, tag = chunk[0], "cdn refused to purge a tag; dropped");
                }
            }
        }
        Ok(())
    }
}

/// Splits tags into groups whose space-separated header is at most `max_bytes` (a tag longer
/// than that goes alone).
fn chunks<'a>(tags: &BTreeSet<&'a str>, max_bytes: usize) -> Vec<Vec<&'a str>> {
    let mut out: Vec<Vec<&'a str>> = Vec::new();
    let mut len = 0;
    for tag in tags {
        match out.last_mut() {
            Some(chunk) if !chunk.is_empty() && len + 1 + tag.len() <= max_bytes => {
                chunk.push(tag);
                len += 1 + tag.len();
            }
            _ => {
                out.push(vec![tag]);
                len = tag.len();
            }
        }
    }
    out
}

#[async_trait::async_trait]
impl Worker for Purger {
    async fn try_execute(&self) -> Result<Progress, ServiceError> {
        let mut from = self.position.load(Ordering::Acquire);
        if from == u64::MAX {
            from = self.start()?;
            self.position.store(from, Ordering::Release);
            self.metrics.cursor.store(from, Ordering::Relaxed);
        }
        // Only what every read model shows: a page refetched after its purge is the new one.
        let published = self.read_models.published_seq();
        if published <= from {
            return Ok(Progress::Idle);
        }
        let store = self.store.clone();
        let mut changes = blocking(move || Ok(store.changes_after(from, BATCH)?)).await?;
        changes.retain(|c| c.seq <= published);
        let Some(last) = changes.last().map(|c| c.seq) else {
            return Ok(Progress::Idle);
        };
        let tags: BTreeSet<&str> = changes.iter().flat_map(|c| c.tags.iter().map(String::as_str)).collect();
        self.purge(&tags).await?;
        self.position.store(last, Ordering::Release);
        self.metrics.cursor.store(last, Ordering::Relaxed);
        self.metrics
            .last_success_ms
            .store(self.clock.now_ms(), Ordering::Relaxed);
        let cursor = self.cursor.clone();
        blocking(move || cursor.set(last)).await?;
        Ok(Progress::Worked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    proptest! {
        /// Every tag is sent once, and no header is over the limit unless a tag alone is.
        #[test]
        fn tags_are_split_into_header_sized_chunks(lens in proptest::collection::vec(1usize..300, 0..400), max in 64usize..9000) {
            let owned: Vec<String> = lens.iter().enumerate().map(|(i, n)| format!("{i}-{}", "x".repeat(*n))).collect();
            let tags: BTreeSet<&str> = owned.iter().map(String::as_str).collect();
            let chunks = chunks(&tags, max);
            for c in &chunks {
                let header = c.join(" ");
                prop_assert!(header.len() <= max || c.len() == 1);
            }
            prop_assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), tags.len());
        }
    }
}
