//! Prometheus metrics: per-route request counts and latency histograms, plus storage and
//! cache gauges sampled at scrape time.
//!
//! Hot path: one counter increment and one histogram observation per request, through
//! label handles cached by the prometheus crate; no allocation for known routes.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

use super::error::InternalCause;
use crate::service::Catalog;

/// Metric families of the HTTP layer.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl Metrics {
    /// Registers the metric families.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route, method and status"),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route and method",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route", "method"],
        )
        .expect("valid metric");
        registry.register(Box::new(requests.clone())).expect("unique metric");
        registry.register(Box::new(latency.clone())).expect("unique metric");
        Metrics {
            registry,
            requests,
            latency,
        }
    }

    /// Renders all metrics in the Prometheus text format.
    pub fn render(&self, catalog: &Catalog) -> String {
        let mut buf = Vec::with_capacity(16 * 1024);
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        let mut out = String::from_utf8(buf).unwrap_or_default();
        let s = catalog.store().stats();
        let c = catalog.cache_stats();
        let mut gauge = |name: &str, help: &str, kind: &str, samples: &[(String, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in samples {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        gauge(
            "rocksdb_block_cache_usage_bytes",
            "Bytes in the RocksDB block cache",
            "gauge",
            &[(String::new(), s.block_cache_usage_bytes)],
        );
        gauge(
            "rocksdb_block_cache_capacity_bytes",
            "RocksDB block cache capacity",
            "gauge",
            &[(String::new(), s.block_cache_capacity_bytes)],
        );
        gauge(
            "rocksdb_live_sst_bytes",
            "Size of live SST files",
            "gauge",
            &[(String::new(), s.live_sst_bytes)],
        );
        gauge(
            "rocksdb_memtable_bytes",
            "Memtable bytes",
            "gauge",
            &[(String::new(), s.memtable_bytes)],
        );
        let keys: Vec<(String, u64)> = s
            .estimated_keys
            .iter()
            .map(|(cf, n)| (format!("{{cf=\"{cf}\"}}"), *n))
            .collect();
        gauge(
            "rocksdb_estimated_keys",
            "Estimated keys per column family",
            "gauge",
            &keys,
        );
        gauge(
            "storefront_changelog_last_seq",
            "Last committed changelog sequence",
            "gauge",
            &[(String::new(), s.last_changelog_seq)],
        );
        gauge(
            "storefront_changelog_truncated_through",
            "Highest changelog sequence deleted by retention",
            "gauge",
            &[(String::new(), s.changelog_truncated_through)],
        );
        gauge(
            "storefront_response_cache_hits_total",
            "Response cache hits",
            "counter",
            &[
                ("{cache=\"product\"}".into(), c.product_hits),
                ("{cache=\"listing\"}".into(), c.listing_hits),
            ],
        );
        gauge(
            "storefront_response_cache_misses_total",
            "Response cache misses",
            "counter",
            &[
                ("{cache=\"product\"}".into(), c.product_misses),
                ("{cache=\"listing\"}".into(), c.listing_misses),
            ],
        );
        gauge(
            "storefront_response_cache_entries",
            "Response cache entries",
            "gauge",
            &[
                ("{cache=\"product\"}".into(), c.product_len),
                ("{cache=\"listing\"}".into(), c.listing_len),
            ],
        );
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Records the request in the metrics and logs server errors with their cause.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // PERF(http/cached_product_get): MatchedPath is an Arc<str>; cloning it avoids a String
    // allocation per request.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", |p| p.as_str());
    let method = request.method().clone();
    let request_id = request.headers().get("x-request-id").cloned();
    let response = next.run(request).await;
    let status = response.status();
    metrics
        .latency
        .with_label_values(&[route, method.as_str()])
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .with_label_values(&[route, method.as_str(), status.as_str()])
        .inc();
    if status.is_server_error() {
        let cause = response
            .extensions()
            .get::<InternalCause>()
            .map(|c| c.0.as_str())
            .unwrap_or("");
        tracing::error!(%route, %method, status = status.as_u16(), request_id = ?request_id, cause, "request failed");
    } else {
        tracing::debug!(%route, %method, status = status.as_u16(), request_id = ?request_id, "request");
    }
    response
}
