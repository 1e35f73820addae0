//! Results: the JSON document (machine, commit, scenario, settings, percentiles, timeline) and
//! the human summary table.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::runner::{Mode, RunOutcome, RunSettings, StepStats};
use crate::scenario::Scenario;

/// Latency percentiles of one histogram, in microseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    /// Requests.
    pub count: u64,
    /// Requests per second over the measured duration.
    pub rps: f64,
    /// Failures (I/O errors and statuses other than 2xx/304).
    pub errors: u64,
    /// Mean.
    pub mean_us: f64,
    /// p50.
    pub p50_us: u64,
    /// p90.
    pub p90_us: u64,
    /// p99.
    pub p99_us: u64,
    /// p99.9.
    pub p999_us: u64,
    /// Max.
    pub max_us: u64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>, errors: u64, seconds: f64) -> Percentiles {
        Percentiles {
            count: h.len(),
            rps: if seconds > 0.0 { h.len() as f64 / seconds } else { 0.0 },
            errors,
            mean_us: (h.mean() * 10.0).round() / 10.0,
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

/// One step's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepReport {
    /// Step name.
    pub name: String,
    /// Latency and throughput.
    #[serde(flatten)]
    pub latency: Percentiles,
    /// Responses by status code.
    pub statuses: BTreeMap<String, u64>,
    /// Percentile curve for plots: (quantile, latency µs).
    pub curve: Vec<(f64, u64)>,
}

/// One second of the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecondReport {
    /// Seconds since the measured start.
    pub t_s: usize,
    /// Requests.
    pub count: u64,
    /// p50 latency.
    pub p50_us: u64,
    /// p99 latency.
    pub p99_us: u64,
    /// Failures.
    pub errors: u64,
}

/// The machine the run was made on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// Host name.
    pub hostname: String,
    /// Logical CPUs.
    pub cpus: usize,
    /// CPU model.
    pub cpu_model: String,
    /// Total memory.
    pub memory_kb: u64,
    /// Kernel release.
    pub kernel: String,
}

impl Machine {
    /// Describes this machine.
    pub fn current() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        Machine {
            hostname: read("/proc/sys/kernel/hostname").trim().to_owned(),
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            cpu_model: cpuinfo
                .lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .unwrap_or("")
                .trim()
                .to_owned(),
            memory_kb: read("/proc/meminfo")
                .lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        }
    }
}

/// The settings as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SettingsReport {
    /// Target base URL.
    pub target: String,
    /// `open` or `closed`.
    pub mode: String,
    /// Open-loop target rate.
    pub rate: Option<f64>,
    /// Connections.
    pub connections: usize,
    /// Generator threads (absent in results from before threads existed).
    #[serde(default)]
    pub threads: usize,
    /// Measured seconds.
    pub duration_s: f64,
    /// Warm-up seconds.
    pub warmup_s: f64,
    /// Request cap.
    pub max_requests: Option<u64>,
    /// Products sampled from the catalog.
    pub sampled_products: usize,
}

/// A server RSS sample.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RssSample {
    /// Seconds since the run started (warm-up included).
    pub t_s: f64,
    /// Resident set size.
    pub rss_kb: u64,
}

/// The full results document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Free-form label.
    pub label: String,
    /// Unix time the run started.
    pub started_at_unix: u64,
    /// `git rev-parse HEAD` of the working tree, when available.
    pub git_commit: Option<String>,
    /// Machine.
    pub machine: Machine,
    /// Scenario as run.
    pub scenario: Scenario,
    /// Settings.
    pub settings: SettingsReport,
    /// All steps together.
    pub total: Percentiles,
    /// Per step.
    pub steps: Vec<StepReport>,
    /// Per second.
    pub timeline: Vec<SecondReport>,
    /// Server memory over time (when `--server-pid` was given).
    pub server_rss: Vec<RssSample>,
}

/// Returns the current commit, if this runs inside a git checkout.
pub fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Reads the resident set size of a process.
pub fn rss_kb(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn curve(h: &Histogram<u64>) -> Vec<(f64, u64)> {
    [0.0, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 1.0]
        .iter()
        .map(|q| (*q, h.value_at_quantile(*q)))
        .collect()
}

/// Builds the report of a run.
#[allow(clippy::too_many_arguments)]
pub fn build(
    label: &str,
    target: &str,
    scenario: &Scenario,
    settings: &RunSettings,
    outcome: &RunOutcome,
    sampled_products: usize,
    server_rss: Vec<RssSample>,
    started_at_unix: u64,
) -> Report {
    let seconds = outcome.elapsed.as_secs_f64().max(1e-9);
    let mut all = StepStats {
        latency_us: Histogram::new_with_bounds(1, 120_000_000, 3).expect("bounds"),
        statuses: BTreeMap::new(),
        io_errors: 0,
    };
    let mut total_errors = 0;
    for s in &outcome.steps {
        let _ = all.latency_us.add(&s.latency_us);
        total_errors += s.errors();
    }
    Report {
        label: label.to_owned(),
        started_at_unix,
        git_commit: git_commit(),
        machine: Machine::current(),
        scenario: scenario.clone(),
        settings: SettingsReport {
            target: target.to_owned(),
            mode: match settings.mode {
                Mode::Open { .. } => "open".into(),
                Mode::Closed => "closed".into(),
            },
            rate: match settings.mode {
                Mode::Open { rate } => Some(rate),
                Mode::Closed => None,
            },
            connections: settings.connections,
            threads: settings.threads,
            duration_s: settings.duration.as_secs_f64(),
            warmup_s: settings.warmup.as_secs_f64(),
            max_requests: settings.max_requests,
            sampled_products,
        },
        total: Percentiles::of(&all.latency_us, total_errors, seconds),
        steps: scenario
            .steps
            .iter()
            .zip(&outcome.steps)
            .map(|(step, stats)| StepReport {
                name: step.name.clone(),
                latency: Percentiles::of(&stats.latency_us, stats.errors(), seconds),
                statuses: stats
                    .statuses
                    .iter()
                    .map(|(s, n)| (s.to_string(), *n))
                    .chain((stats.io_errors > 0).then(|| ("io_error".to_string(), stats.io_errors)))
                    .collect(),
                curve: curve(&stats.latency_us),
            })
            .collect(),
        timeline: outcome
            .timeline
            .iter()
            .enumerate()
            .map(|(t, s)| SecondReport {
                t_s: t,
                count: s.latency_us.len(),
                p50_us: s.latency_us.value_at_quantile(0.5),
                p99_us: s.latency_us.value_at_quantile(0.99),
                errors: s.errors,
            })
            .collect(),
        server_rss,
    }
}

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

/// Renders the human summary table.
pub fn summary(report: &Report) -> String {
    let mut out = format!(
        "scenario {} · {} · {} connections · {} threads · {:.0}s measured{}\n",
        report.scenario.name,
        report.settings.mode,
        report.settings.connections,
        report.settings.threads,
        report.settings.duration_s,
        report
            .settings
            .rate
            .map(|r| format!(" · target {r:.0} rps"))
            .unwrap_or_default()
    );
    out.push_str(&format!(
        "{:<20} {:>9} {:>10} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}  statuses\n",
        "step", "count", "rps", "errors", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
    ));
    let row = |name: &str, p: &Percentiles, statuses: &str| {
        format!(
            "{:<20} {:>9} {:>10.1} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}  {}\n",
            name,
            p.count,
            p.rps,
            p.errors,
            ms(p.p50_us),
            ms(p.p90_us),
            ms(p.p99_us),
            ms(p.p999_us),
            ms(p.max_us),
            statuses
        )
    };
    for step in &report.steps {
        let statuses = step
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}:{n}"))
            .collect::<Vec<_>>()
            .join(" ");
        out.push_str(&row(&step.name, &step.latency, &statuses));
    }
    out.push_str(&row("TOTAL", &report.total, ""));
    if let (Some(first), Some(last)) = (report.server_rss.first(), report.server_rss.last()) {
        let peak = report.server_rss.iter().map(|s| s.rss_kb).max().unwrap_or(0);
        out.push_str(&format!(
            "server RSS: start {} MB, end {} MB, peak {} MB\n",
            first.rss_kb / 1024,
            last.rss_kb / 1024,
            peak / 1024
        ));
    }
    out
}

/// Samples a process's RSS every second until `stop` fires.
pub async fn sample_rss(pid: u32, stop: tokio::sync::watch::Receiver<bool>) -> Vec<RssSample> {
    let started = std::time::Instant::now();
    let mut samples = Vec::new();
    let mut stop = stop;
    loop {
        if let Some(rss) = rss_kb(pid) {
            samples.push(RssSample {
                t_s: started.elapsed().as_secs_f64(),
                rss_kb: rss,
            });
        }
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    if let Some(rss) = rss_kb(pid) {
        samples.push(RssSample {
            t_s: started.elapsed().as_secs_f64(),
            rss_kb: rss,
        });
    }
    samples
}
