//! CDN purge hook: tails the changelog and POSTs the surrogate keys of each committed change to
//! a configured purge URL (Varnish xkey style), never inline in the request that made it.
//!
//! Delivery is at-least-once: the consumer cursor is persisted only after the purge endpoint
//! answered 2xx, so a crash or an unreachable CDN replays the same tags later. A purger that
//! never ran starts at the current end of the changelog: there is nothing cached to purge for
//! history that predates it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Empty;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use storefront_storage::Store;

use super::PersistedCursor;
use crate::service::{blocking, ServiceError};
use crate::worker::{Progress, Worker};

/// Name of the purger's changelog cursor.
pub const CONSUMER: &str = "cdn_purge";
/// Longest `xkey-purge` header sent in one request; more tags are split across requests.
const MAX_HEADER_BYTES: usize = 8 * 1024;
/// Changelog entries purged per step.
const BATCH: usize = 256;

/// Settings of the purger.
#[derive(Debug, Clone)]
pub struct PurgeSettings {
    /// URL that receives the purge requests.
    pub url: String,
    /// Timeout of one purge request.
    pub timeout: Duration,
    /// Idle poll interval.
    pub poll_interval: Duration,
}

/// The CDN purger.
pub struct Purger {
    store: Store,
    cursor: Arc<PersistedCursor>,
    settings: PurgeSettings,
    client: Client<HttpConnector, Empty<bytes::Bytes>>,
    /// Next sequence to purge from, minus one; `u64::MAX` until the first step set it.
    position: AtomicU64,
}

impl Purger {
    /// A purger over `store`; `cursor` is the consumer registered for retention.
    pub fn new(store: Store, cursor: Arc<PersistedCursor>, settings: PurgeSettings) -> Purger {
        Purger {
            store,
            cursor,
            settings,
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

    async fn purge(&self, tags: &BTreeSet<&str>) -> Result<(), ServiceError> {
        for keys in chunks(tags) {
            let request = http::Request::post(&self.settings.url)
                .header("xkey-purge", &keys)
                .header("surrogate-key", &keys)
                .body(Empty::new())
                .map_err(|e| ServiceError::internal_from("building the purge request", e))?;
            let response = tokio::time::timeout(self.settings.timeout, self.client.request(request))
                .await
                .map_err(|_| ServiceError::internal("purge request timed out"))?
                .map_err(|e| ServiceError::internal_from("purge request failed", e))?;
            if !response.status().is_success() {
                return Err(ServiceError::internal(format!(
                    "purge endpoint answered {}",
                    response.status()
                )));
            }
        }
        Ok(())
    }
}

/// Splits tags into space-separated header values of at most [`MAX_HEADER_BYTES`].
fn chunks(tags: &BTreeSet<&str>) -> Vec<String> {
    let mut chunk = String::new();
    let mut chunks = Vec::new();
    for tag in tags {
        if !chunk.is_empty() && chunk.len() + tag.len() + 1 > MAX_HEADER_BYTES {
            chunks.push(std::mem::take(&mut chunk));
        }
        if !chunk.is_empty() {
            chunk.push(' ');
        }
        chunk.push_str(tag);
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    chunks
}

#[async_trait::async_trait]
impl Worker for Purger {
    async fn try_execute(&self) -> Result<Progress, ServiceError> {
        let mut from = self.position.load(Ordering::Acquire);
        if from == u64::MAX {
            from = self.start()?;
            self.position.store(from, Ordering::Release);
        }
        let store = self.store.clone();
        let changes = blocking(move || Ok(store.changes_after(from, BATCH)?)).await?;
        let Some(last) = changes.last().map(|c| c.seq) else {
            return Ok(Progress::Idle);
        };
        let tags: BTreeSet<&str> = changes.iter().flat_map(|c| c.tags.iter().map(String::as_str)).collect();
        self.purge(&tags).await?;
        self.position.store(last, Ordering::Release);
        let cursor = self.cursor.clone();
        blocking(move || cursor.set(last)).await?;
        Ok(Progress::Worked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_split_into_header_sized_chunks() {
        let owned: Vec<String> = (0..2000).map(|i| format!("product-{i:08}")).collect();
        let tags: BTreeSet<&str> = owned.iter().map(String::as_str).collect();
        let chunks = chunks(&tags);
        assert!(chunks.len() > 1);
        assert!(chunks.iter().all(|c| c.len() <= MAX_HEADER_BYTES));
        assert_eq!(chunks.iter().map(|c| c.split(' ').count()).sum::<usize>(), 2000);
    }
}
