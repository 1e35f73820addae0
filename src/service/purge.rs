//! CDN purge hook: tails the changelog and POSTs the surrogate keys of each committed change to
//! a configured purge URL (Varnish xkey style), never inline in the request that made it.
//!
//! Delivery is at-least-once: the consumer cursor is persisted only after the purge endpoint
//! answered 2xx, so a crash or an unreachable CDN replays the same tags later. A purger that
//! never ran starts at the current end of the changelog: there is nothing cached to purge for
//! history that predates it.

use std::collections::BTreeSet;
use std::time::Duration;

use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use storefront_storage::Store;
use tokio_util::sync::CancellationToken;

use crate::config::CdnConfig;

/// Name of the purger's changelog cursor.
pub const CONSUMER: &str = "cdn_purge";
/// Longest `xkey-purge` header sent in one request; more tags are split across requests.
const MAX_HEADER_BYTES: usize = 8 * 1024;

/// Runs until `cancel` fires.
pub async fn run(store: Store, config: CdnConfig, cancel: CancellationToken) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let poll = Duration::from_millis(config.poll_interval_ms.max(10));
    let mut backoff = poll;
    let mut cursor = match store.consumer_cursor(CONSUMER) {
        Ok(0) => store.last_changelog_seq(),
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cdn purger cannot read its cursor; purging disabled");
            return;
        }
    };
    // Changes deleted by retention while the purger was off cannot be purged any more; the
    // CDN's own TTLs bound how stale those pages stay. While it runs, retention never deletes
    // past its persisted cursor, so this is checked once.
    if let Ok(truncated) = store.changelog_truncated_through() {
        if cursor < truncated {
            tracing::warn!(
                cursor,
                truncated,
                "cdn purger skips changes deleted by changelog retention"
            );
            cursor = truncated;
        }
    }
    loop {
        let batch = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.changes_after(cursor, 256)).await
        };
        let changes = match batch {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cdn purger failed to read the changelog");
                Vec::new()
            }
            Err(e) => {
                tracing::error!(error = %e, "cdn purger task failed");
                Vec::new()
            }
        };
        if let Some(last) = changes.last().map(|c| c.seq) {
            let tags: BTreeSet<&str> = changes.iter().flat_map(|c| c.tags.iter().map(String::as_str)).collect();
            match purge(&client, &config, &tags).await {
                Ok(()) => {
                    cursor = last;
                    backoff = poll;
                    let store = store.clone();
                    if let Err(e) = tokio::task::spawn_blocking(move || store.set_consumer_cursor(CONSUMER, last)).await
                    {
                        tracing::warn!(error = %e, "cdn purger could not persist its cursor");
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cdn purge failed");
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
        let wait = if changes.is_empty() { poll } else { backoff };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn purge(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<bytes::Bytes>>,
    config: &CdnConfig,
    tags: &BTreeSet<&str>,
) -> anyhow::Result<()> {
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
    for keys in chunks {
        let request = http::Request::post(&config.purge_url)
            .header("xkey-purge", &keys)
            .header("surrogate-key", &keys)
            .body(Empty::new())?;
        let response = tokio::time::timeout(Duration::from_millis(config.purge_timeout_ms), client.request(request))
            .await
            .map_err(|_| anyhow::anyhow!("purge request timed out"))??;
        if !response.status().is_success() {
            anyhow::bail!("purge endpoint answered {}", response.status());
        }
    }
    Ok(())
}
