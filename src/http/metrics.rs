//! Prometheus metrics: per-route request counts and latency histograms, plus storage and
//! cache gauges sampled at scrape time.
//!
//! Hot path: one counter increment and one histogram observation per request, through
//! label handles cached by the prometheus crate; no allocation for known routes.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use super::error::InternalCause;
use crate::service::health::Health;

/// Gauges sampled from storage and the caches at scrape time.
struct Sampled {
    block_cache_usage: IntGauge,
    block_cache_capacity: IntGauge,
    live_sst: IntGauge,
    memtable: IntGauge,
    estimated_keys: IntGaugeVec,
    changelog_last_seq: IntGauge,
    changelog_truncated: IntGauge,
    cache_hits: IntGaugeVec,
    cache_misses: IntGaugeVec,
    cache_entries: IntGaugeVec,
}

/// Metric families of the HTTP layer.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    sampled: Sampled,
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    registry.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, label: &str) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), &[label]).expect("valid metric");
    registry.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
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
        let r = &registry;
        // Cache hit and miss counts are read from the caches' own counters at scrape time, so
        // they are gauges here even though they only grow.
        let sampled = Sampled {
            block_cache_usage: gauge(r, "rocksdb_block_cache_usage_bytes", "Bytes in the RocksDB block cache"),
            block_cache_capacity: gauge(r, "rocksdb_block_cache_capacity_bytes", "RocksDB block cache capacity"),
            live_sst: gauge(r, "rocksdb_live_sst_bytes", "Size of live SST files"),
            memtable: gauge(r, "rocksdb_memtable_bytes", "Memtable bytes"),
            estimated_keys: gauge_vec(r, "rocksdb_estimated_keys", "Estimated keys per column family", "cf"),
            changelog_last_seq: gauge(r, "storefront_changelog_last_seq", "Last committed changelog sequence"),
            changelog_truncated: gauge(
                r,
                "storefront_changelog_truncated_through",
                "Highest changelog sequence deleted by retention",
            ),
            cache_hits: gauge_vec(
                r,
                "storefront_response_cache_hits_total",
                "Response cache hits",
                "cache",
            ),
            cache_misses: gauge_vec(
                r,
                "storefront_response_cache_misses_total",
                "Response cache misses",
                "cache",
            ),
            cache_entries: gauge_vec(
                r,
                "storefront_response_cache_entries",
                "Response cache entries",
                "cache",
            ),
        };
        Metrics {
            registry,
            requests,
            latency,
            sampled,
        }
    }

    /// Samples storage and caches and renders all metrics in the Prometheus text format
    /// (reads RocksDB properties: call off the async workers).
    pub fn render(&self, health: &Health) -> String {
        let s = health.store_stats();
        let c = health.cache_stats();
        let (cart_hits, cart_misses, cart_len) = health.cart_page_stats();
        let m = &self.sampled;
        m.block_cache_usage.set(as_i64(s.block_cache_usage_bytes));
        m.block_cache_capacity.set(as_i64(s.block_cache_capacity_bytes));
        m.live_sst.set(as_i64(s.live_sst_bytes));
        m.memtable.set(as_i64(s.memtable_bytes));
        for (cf, n) in &s.estimated_keys {
            m.estimated_keys.with_label_values(&[cf]).set(as_i64(*n));
        }
        m.changelog_last_seq.set(as_i64(s.last_changelog_seq));
        m.changelog_truncated.set(as_i64(s.changelog_truncated_through));
        for (cache, hits, misses, len) in [
            ("product", c.product_hits, c.product_misses, c.product_len),
            ("listing", c.listing_hits, c.listing_misses, c.listing_len),
            ("cart", cart_hits, cart_misses, cart_len),
        ] {
            m.cache_hits.with_label_values(&[cache]).set(as_i64(hits));
            m.cache_misses.with_label_values(&[cache]).set(as_i64(misses));
            m.cache_entries.with_label_values(&[cache]).set(as_i64(len));
        }
        let mut buf = Vec::with_capacity(16 * 1024);
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// What an operator watches beside the requests: the build, the process (memory, CPU, file
/// descriptors, threads), the search index and how far it is behind storage, and the outbox.
pub fn render_operations(
    health: &Health,
    search: &crate::service::search::Search,
    outbox: &crate::service::events::outbox::Outbox,
    now_ms: i64,
) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(2048);
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
    };
    let process = Process::read();
    metric(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory (VmRSS).",
        process.rss as f64,
    );
    metric(
        "process_peak_resident_memory_bytes",
        "gauge",
        "Peak resident memory since start (VmHWM).",
        process.peak_rss as f64,
    );
    metric(
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory (VmSize).",
        process.vsize as f64,
    );
    metric("process_threads", "gauge", "OS threads.", process.threads as f64);
    metric(
        "process_open_fds",
        "gauge",
        "Open file descriptors.",
        process.open_fds as f64,
    );
    metric(
        "process_max_fds",
        "gauge",
        "The file descriptor limit.",
        process.max_fds as f64,
    );
    metric(
        "process_cpu_seconds_total",
        "counter",
        "User and system CPU time.",
        process.cpu_seconds,
    );
    metric(
        "process_start_time_seconds",
        "gauge",
        "When the process started (Unix seconds).",
        process.start_time_seconds,
    );
    let last = health.last_changelog_seq();
    let applied = search.published_seq();
    metric(
        "storefront_search_documents",
        "gauge",
        "Documents in the search index.",
        search.index().num_docs() as f64,
    );
    metric(
        "storefront_search_applied_seq",
        "gauge",
        "The changelog sequence search pages have applied.",
        applied as f64,
    );
    metric(
        "storefront_search_lag_entries",
        "gauge",
        "Changelog entries the search index has not applied yet.",
        last.saturating_sub(applied) as f64,
    );
    metric(
        "storefront_search_caught_up",
        "gauge",
        "1 once the index caught up with storage after the start (readiness).",
        if search.is_caught_up() { 1.0 } else { 0.0 },
    );
    let (waiting, oldest) = outbox.backlog(100_000).unwrap_or((0, None));
    metric(
        "storefront_outbox_waiting",
        "gauge",
        "Events waiting for their fan-out to sinks (counted up to 100,000).",
        waiting as f64,
    );
    metric(
        "storefront_outbox_oldest_age_seconds",
        "gauge",
        "Age of the oldest event waiting for its fan-out (0: none).",
        oldest.map_or(0.0, |at| (now_ms - at).max(0) as f64 / 1000.0),
    );
    let _ = write!(
        out,
        "# HELP storefront_build_info The running build (always 1).\n# TYPE storefront_build_info gauge\n\
         storefront_build_info{{version=\"{}\",commit=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION"),
        env!("STOREFRONT_COMMIT")
    );
    out
}

/// The process's own figures from `/proc/self` (zeros where it cannot be read).
#[derive(Debug, Default)]
struct Process {
    rss: u64,
    peak_rss: u64,
    vsize: u64,
    threads: u64,
    open_fds: u64,
    max_fds: u64,
    cpu_seconds: f64,
    start_time_seconds: f64,
}

impl Process {
    fn read() -> Process {
        let mut p = Process::default();
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            for line in status.lines() {
                let kib = |l: &str| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                match line.split(':').next() {
                    Some("VmRSS") => p.rss = kib(line) * 1024,
                    Some("VmHWM") => p.peak_rss = kib(line) * 1024,
                    Some("VmSize") => p.vsize = kib(line) * 1024,
                    Some("Threads") => p.threads = kib(line),
                    _ => {}
                }
            }
        }
        p.open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
        // SAFETY: getrlimit and sysconf only write into the struct we pass / return a value.
        unsafe {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
                p.max_fds = limit.rlim_cur;
            }
        }
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the command name, which is in parentheses and may hold spaces.
            if let Some((_, rest)) = stat.rsplit_once(')') {
                let fields: Vec<&str> = rest.split_whitespace().collect();
                let field = |n: usize| fields.get(n).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
                // utime is field 14 and stime 15 of stat(5); starttime is 22. `rest` starts at 3.
                p.cpu_seconds = (field(11) + field(12)) / ticks;
                let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<f64>().ok()))
                });
                p.start_time_seconds = boot.map_or(0.0, |b| b + field(19) / ticks);
            }
        }
        p
    }
}

/// The CDN purger's metrics: requests by result, how far it is behind the changelog, and
/// when it last purged everything it read.
pub fn render_purge(p: &crate::service::events::purge::PurgeMetrics, last_seq: u64) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let cursor = p.cursor.load(Relaxed);
    format!(
        "# HELP storefront_cdn_purge_requests_total Purge requests by result (rejected: 4xx, dropped; failed: retried).\n\
         # TYPE storefront_cdn_purge_requests_total counter\n\
         storefront_cdn_purge_requests_total{{result=\"accepted\"}} {}\n\
         storefront_cdn_purge_requests_total{{result=\"rejected\"}} {}\n\
         storefront_cdn_purge_requests_total{{result=\"failed\"}} {}\n\
         # HELP storefront_cdn_purge_lag_entries Changelog entries not purged yet.\n\
         # TYPE storefront_cdn_purge_lag_entries gauge\n\
         storefront_cdn_purge_lag_entries {}\n\
         # HELP storefront_cdn_purge_last_success_seconds When the purger last purged all it read (Unix seconds; 0: never).\n\
         # TYPE storefront_cdn_purge_last_success_seconds gauge\n\
         storefront_cdn_purge_last_success_seconds {:.3}\n",
        p.sent.load(Relaxed),
        p.rejected.load(Relaxed),
        p.failed.load(Relaxed),
        last_seq.saturating_sub(cursor),
        p.last_success_ms.load(Relaxed) as f64 / 1000.0
    )
}

/// The recommendation metrics: actions dropped because the queue was full, and the products
/// the models know.
pub fn render_recommendations(r: &crate::service::reco::Recommendations) -> String {
    format!(
        "# HELP storefront_behaviour_dropped_total Views and add-to-carts not recorded because the queue was full.\n\
         # TYPE storefront_behaviour_dropped_total counter\n\
         storefront_behaviour_dropped_total {}\n\
         # HELP storefront_recommendation_products Products the recommendation models know.\n\
         # TYPE storefront_recommendation_products gauge\n\
         storefront_recommendation_products {}\n",
        r.dropped(),
        r.products()
    )
}

/// The notification metrics in the Prometheus text format: deliveries by result, retries,
/// the dead letters, and per sink the deliveries waiting and the age of the oldest due one.
pub fn render_notifications(n: &crate::service::notify::Notifications) -> String {
    use std::fmt::Write;
    use std::sync::atomic::Ordering::Relaxed;
    let m = &n.metrics;
    let mut out = String::with_capacity(1024);
    let _ = writeln!(
        out,
        "# HELP storefront_notification_attempts_total Delivery attempts by result."
    );
    let _ = writeln!(out, "# TYPE storefront_notification_attempts_total counter");
    for (result, v) in [("delivered", &m.delivered), ("failed", &m.failed)] {
        let _ = writeln!(
            out,
            "storefront_notification_attempts_total{{result=\"{result}\"}} {}",
            v.load(Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP storefront_notification_retries_total Failed attempts scheduled again."
    );
    let _ = writeln!(out, "# TYPE storefront_notification_retries_total counter");
    let _ = writeln!(out, "storefront_notification_retries_total {}", m.retried.load(Relaxed));
    let _ = writeln!(
        out,
        "# HELP storefront_notification_died_total Deliveries that ran out of attempts."
    );
    let _ = writeln!(out, "# TYPE storefront_notification_died_total counter");
    let _ = writeln!(out, "storefront_notification_died_total {}", m.died.load(Relaxed));
    let _ = writeln!(
        out,
        "# HELP storefront_notification_dead_letters Deliveries in the dead-letter queue."
    );
    let _ = writeln!(out, "# TYPE storefront_notification_dead_letters gauge");
    let _ = writeln!(
        out,
        "storefront_notification_dead_letters {}",
        m.dead_letters.load(Relaxed).max(0)
    );
    let lag = n.lag_per_sink();
    let _ = writeln!(
        out,
        "# HELP storefront_notification_queued Deliveries waiting, per sink."
    );
    let _ = writeln!(out, "# TYPE storefront_notification_queued gauge");
    for (sink, queued, _) in &lag {
        let _ = writeln!(out, "storefront_notification_queued{{sink=\"{sink}\"}} {queued}");
    }
    let _ = writeln!(
        out,
        "# HELP storefront_notification_lag_seconds Age of the oldest due delivery, per sink."
    );
    let _ = writeln!(out, "# TYPE storefront_notification_lag_seconds gauge");
    for (sink, _, lag_ms) in &lag {
        let _ = writeln!(
            out,
            "storefront_notification_lag_seconds{{sink=\"{sink}\"}} {:.3}",
            *lag_ms as f64 / 1000.0
        );
    }
    out
}

impl Metrics {
    /// Counts a response of `route` and observes its latency since `started`.
    pub fn observe(&self, route: &str, method: &str, status: axum::http::StatusCode, started: Instant) {
        self.latency
            .with_label_values(&[route, method])
            .observe(started.elapsed().as_secs_f64());
        self.requests.with_label_values(&[route, method, status.as_str()]).inc();
    }

    /// The series of one route's `GET`s answered 200 or 304, resolved once (a fast path
    /// skips the label lookups).
    pub fn cached_get(&self, route: &str) -> CachedGetSeries {
        CachedGetSeries {
            latency: self.latency.with_label_values(&[route, "GET"]),
            ok: self.requests.with_label_values(&[route, "GET", "200"]),
            not_modified: self.requests.with_label_values(&[route, "GET", "304"]),
        }
    }
}

/// See [`Metrics::cached_get`].
pub struct CachedGetSeries {
    /// Latency of the route's GETs.
    pub latency: prometheus::Histogram,
    /// 200 answers.
    pub ok: prometheus::IntCounter,
    /// 304 answers.
    pub not_modified: prometheus::IntCounter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Records the request in the metrics and logs server errors with their cause.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    if request.extensions().get::<super::audit::AuditRead>().is_some() {
        return next.run(request).await;
    }
    let started = Instant::now();
    // PERF(http/cached_product_get): MatchedPath is an Arc<str>; cloning it avoids a String
    // allocation per request.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", |p| p.as_str());
    let method = request.method().clone();
    let request_id = request.headers().get("x-request-id").cloned();
    let mut response = next.run(request).await;
    let status = response.status();
    metrics.observe(route, method.as_str(), status, started);
    response.extensions_mut().insert(Counted);
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

/// Marks a response [`track`] counted under its route; [`count_the_rest`] counts the others.
#[derive(Debug, Clone, Copy)]
pub struct Counted;

/// The `route` label of responses no route answered: unknown paths, the rate limit's 429s,
/// timeouts, overload 503s, unread bodies (408, 413) and panics.
pub const EDGE_ROUTE: &str = "edge";

/// Middleware around everything: counts every response no route counted, so `/metrics` sees
/// all of them.
pub async fn count_the_rest(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // Only the standard methods become label values: a client must not mint series.
    use axum::http::Method;
    let method = match *request.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    };
    let mut response = next.run(request).await;
    if response.extensions_mut().remove::<Counted>().is_none() {
        metrics.observe(EDGE_ROUTE, method, response.status(), started);
    }
    response
}
