//! The load loop.
//!
//! Open loop: each of C connections owns 1/C of the request schedule (one request every
//! C/rate seconds, staggered across connections). When a response comes back after the next
//! request's intended send time, that request's latency is measured from its intended send
//! time, so when the server falls behind, queueing delay is counted rather than hidden. Closed loop: each connection sends its next request as soon as the previous one
//! returns; latency is measured from the actual send.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant as TokioInstant;

use crate::catalog::CatalogSample;
use crate::client::{Connection, Headers, Target};
use crate::scenario::Scenario;
use bytes::Bytes;
use hyper::Method;

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Constant rate (requests per second), latency from intended send time.
    Open {
        /// Target requests per second.
        rate: f64,
    },
    /// As fast as the connections allow.
    Closed,
}

/// Run settings.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Pacing.
    pub mode: Mode,
    /// Connections.
    pub connections: usize,
    /// Measured duration (after warm-up).
    pub duration: Duration,
    /// Warm-up, not recorded.
    pub warmup: Duration,
    /// Stop after this many measured requests.
    pub max_requests: Option<u64>,
    /// RNG seed for step and URL choice.
    pub seed: u64,
}

/// Statistics of one step.
#[derive(Debug, Clone)]
pub struct StepStats {
    /// Latency in microseconds.
    pub latency_us: Histogram<u64>,
    /// Responses by status.
    pub statuses: std::collections::BTreeMap<u16, u64>,
    /// Connection or protocol failures.
    pub io_errors: u64,
}

impl StepStats {
    fn new() -> StepStats {
        StepStats {
            latency_us: Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid bounds"),
            statuses: Default::default(),
            io_errors: 0,
        }
    }

    /// Returns failures: I/O errors plus responses other than 2xx/304.
    pub fn errors(&self) -> u64 {
        self.io_errors
            + self
                .statuses
                .iter()
                .filter(|(s, _)| !(200..300).contains(*s) && **s != 304)
                .map(|(_, n)| n)
                .sum::<u64>()
    }
}

/// Per-second totals for the latency-over-time plot.
#[derive(Debug, Clone)]
pub struct Second {
    /// Latency of requests whose intended send fell in this second.
    pub latency_us: Histogram<u64>,
    /// Failures.
    pub errors: u64,
}

/// Raw outcome of a run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Per step, in scenario order.
    pub steps: Vec<StepStats>,
    /// Per measured second.
    pub timeline: Vec<Second>,
    /// Measured wall time.
    pub elapsed: Duration,
}

/// Statistics shared by all connections. One short lock per request: per-connection copies
/// of the per-second histograms cost gigabytes on long runs (connections × seconds × ~30 KB).
struct Recorder {
    steps: Vec<StepStats>,
    timeline: Vec<Second>,
}

fn second_histogram() -> Histogram<u64> {
    // Two significant digits are plenty for a per-second plot and keep each histogram small.
    Histogram::new_with_bounds(1, 120_000_000, 2).expect("valid bounds")
}

/// Runs a scenario against a target.
pub async fn run(
    target: &Target,
    scenario: &Scenario,
    sample: &CatalogSample,
    settings: &RunSettings,
) -> anyhow::Result<RunOutcome> {
    anyhow::ensure!(settings.connections > 0, "need at least one connection");
    if let Mode::Open { rate } = settings.mode {
        anyhow::ensure!(rate > 0.0, "rate must be positive");
    }
    let start = TokioInstant::now() + Duration::from_millis(50);
    let measure_from = start + settings.warmup;
    let end = measure_from + settings.duration;
    let per_connection_cap = settings.max_requests.map(|m| m.div_ceil(settings.connections as u64));
    let recorder = Arc::new(Mutex::new(Recorder {
        steps: scenario.steps.iter().map(|_| StepStats::new()).collect(),
        timeline: Vec::new(),
    }));
    let mut tasks = Vec::with_capacity(settings.connections);
    for c in 0..settings.connections {
        let (target, scenario, sample, settings, recorder) = (
            target.clone(),
            scenario.clone(),
            sample.clone(),
            settings.clone(),
            recorder.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let window = Window {
                start,
                measure_from,
                end,
                cap: per_connection_cap,
            };
            worker(c, &target, &scenario, &sample, &settings, window, &recorder).await
        }));
    }
    for task in tasks {
        task.await??;
    }
    let Recorder { steps, timeline } = std::mem::replace(
        &mut *recorder.lock().unwrap_or_else(|p| p.into_inner()),
        Recorder {
            steps: Vec::new(),
            timeline: Vec::new(),
        },
    );
    let elapsed = Instant::now()
        .saturating_duration_since(measure_from.into_std())
        .min(settings.duration);
    Ok(RunOutcome {
        steps,
        timeline,
        elapsed,
    })
}

/// When a connection sends and what it records.
#[derive(Clone, Copy)]
struct Window {
    start: TokioInstant,
    measure_from: TokioInstant,
    end: TokioInstant,
    cap: Option<u64>,
}

async fn worker(
    index: usize,
    target: &Target,
    scenario: &Scenario,
    sample: &CatalogSample,
    settings: &RunSettings,
    window: Window,
    recorder: &Mutex<Recorder>,
) -> anyhow::Result<()> {
    let Window {
        start,
        measure_from,
        end,
        cap,
    } = window;
    let mut rng = SmallRng::seed_from_u64(settings.seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let total_weight: u32 = scenario.steps.iter().map(|s| s.weight).sum();
    let mut conn = Connection::open(target).await?;
    let interval = match settings.mode {
        Mode::Open { rate } => Some(Duration::from_secs_f64(settings.connections as f64 / rate)),
        Mode::Closed => None,
    };
    let offset = interval
        .map(|i| i.mul_f64(index as f64 / settings.connections as f64))
        .unwrap_or_default();
    let mut measured = 0u64;
    let mut i = 0u64;
    let mut previous_done = start;
    let mut cart_token: Option<hyper::header::HeaderValue> = None;
    let mut plan: Vec<usize> = Vec::new();
    // Random, not seeded: a second run against the same server must not replay the first's keys.
    let key_prefix: u64 = rand::random();
    loop {
        let intended = match interval {
            Some(iv) => start + offset + iv.mul_f64(i as f64),
            None => TokioInstant::now().max(start),
        };
        if intended >= end || cap.is_some_and(|c| measured >= c) {
            break;
        }
        i += 1;
        tokio::time::sleep_until(intended).await;

        let step_index = if scenario.sequence {
            if plan.is_empty() {
                // A new shopper: a new cart and a fresh journey (reversed: popped from the end).
                cart_token = None;
                for (index, step) in scenario.steps.iter().enumerate().rev() {
                    let [min, max] = step.repeat.unwrap_or([1, 1]);
                    plan.extend(std::iter::repeat_n(index, rng.gen_range(min..=max) as usize));
                }
            }
            plan.pop().unwrap_or(0)
        } else {
            let mut pick = rng.gen_range(0..total_weight);
            scenario
                .steps
                .iter()
                .position(|s| {
                    if pick < s.weight {
                        true
                    } else {
                        pick -= s.weight;
                        false
                    }
                })
                .unwrap_or(0)
        };
        let step = &scenario.steps[step_index];
        let mut path = step.path.clone();
        if path.contains("{product}") {
            path = path.replace("{product}", &sample.products[rng.gen_range(0..sample.products.len())]);
        }
        if path.contains("{word}") {
            path = path.replace("{word}", &sample.words[rng.gen_range(0..sample.words.len())]);
        }
        if path.contains("{prefix}") {
            let word = &sample.words[rng.gen_range(0..sample.words.len())];
            path = path.replace("{prefix}", &word[..3.min(word.len())]);
        }
        if path.contains("{category}") {
            path = path.replace(
                "{category}",
                &sample.categories[rng.gen_range(0..sample.categories.len())],
            );
        }
        let etag = if step.conditional {
            sample.etags.get(&path)
        } else {
            None
        };
        let body = step.body.as_ref().map(|b| {
            let b = if b.contains("{sku}") {
                b.replace("{sku}", &sample.skus[rng.gen_range(0..sample.skus.len())])
            } else {
                b.clone()
            };
            Bytes::from(b)
        });
        let method = Method::from_bytes(step.method.as_bytes())?;
        if !scenario.sequence && scenario.requests_per_shopper > 0 && i % scenario.requests_per_shopper as u64 == 1 {
            cart_token = None;
        }
        let key = step.idempotency_key.then(|| format!("lt-{key_prefix:016x}-{i}"));
        let headers = Headers {
            etag,
            cart_token: cart_token.as_ref(),
            idempotency_key: key.as_deref(),
            authorization: step.authorization.as_ref(),
        };

        let sent = TokioInstant::now();
        let result = conn.send(&method, &path, headers, body).await;
        if let Ok(reply) = &result {
            if reply.cart_token.is_some() {
                cart_token.clone_from(&reply.cart_token);
            }
        }
        let done = TokioInstant::now();
        let record = intended >= measure_from;
        // Open loop charges the wait since the intended send when the connection was still busy
        // with the previous (late) response: that queueing is the server's doing (no coordinated
        // omission). When the connection was idle at the intended time, any gap before `sent` is
        // timer wake-up slop (tokio timers tick in 1 ms) and is not charged. Closed loop charges
        // the round trip.
        let from = if interval.is_some() && previous_done > intended {
            intended
        } else {
            sent
        };
        previous_done = done;
        let latency_us = done.saturating_duration_since(from).as_micros().max(1) as u64;
        let failed = match &result {
            Ok(reply) => !(reply.status.is_success() || reply.status == hyper::StatusCode::NOT_MODIFIED),
            Err(_) => true,
        };
        if record {
            measured += 1;
            let mut rec = recorder.lock().unwrap_or_else(|p| p.into_inner());
            let stats = &mut rec.steps[step_index];
            match &result {
                Ok(reply) => *stats.statuses.entry(reply.status.as_u16()).or_default() += 1,
                Err(_) => stats.io_errors += 1,
            }
            let _ = stats.latency_us.record(latency_us.min(120_000_000));
            let second = intended.saturating_duration_since(measure_from).as_secs() as usize;
            if rec.timeline.len() <= second {
                rec.timeline.resize_with(second + 1, || Second {
                    latency_us: second_histogram(),
                    errors: 0,
                });
            }
            let _ = rec.timeline[second].latency_us.record(latency_us.min(120_000_000));
            if failed {
                rec.timeline[second].errors += 1;
            }
        }
        if result.is_err() {
            // The connection is unusable: reconnect (backing off if the server is gone).
            match Connection::open(target).await {
                Ok(c) => conn = c,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
    Ok(())
}
