//! The load loop.
//!
//! Open loop: each of C connections owns 1/C of the request schedule (one request every
//! C/rate seconds, staggered across connections). When a response comes back after the next
//! request's intended send time, that request's latency is measured from its intended send
//! time, so when the server falls behind, queueing delay is counted rather than hidden. Closed loop: each connection sends its next request as soon as the previous one
//! returns; latency is measured from the actual send.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::catalog::CatalogSample;
use crate::client::{Connection, Headers, Target};
use crate::scenario::Scenario;
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
    /// Generator threads, each driving its share of the connections.
    pub threads: usize,
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

/// Statistics of one generator thread. Each thread owns its recorder (no lock on the hot
/// path); the threads' recorders are merged when the run ends. Per-connection copies would
/// cost gigabytes on long runs (connections × seconds × ~30 KB of per-second histograms).
struct Recorder {
    steps: Vec<StepStats>,
    timeline: Vec<Second>,
}

impl Recorder {
    fn new(steps: usize) -> Recorder {
        Recorder {
            steps: (0..steps).map(|_| StepStats::new()).collect(),
            timeline: Vec::new(),
        }
    }

    fn second(&mut self, index: usize) -> &mut Second {
        if self.timeline.len() <= index {
            self.timeline.resize_with(index + 1, || Second {
                latency_us: second_histogram(),
                errors: 0,
            });
        }
        &mut self.timeline[index]
    }

    fn merge(&mut self, other: Recorder) {
        for (mine, theirs) in self.steps.iter_mut().zip(other.steps) {
            let _ = mine.latency_us.add(&theirs.latency_us);
            for (status, n) in theirs.statuses {
                *mine.statuses.entry(status).or_default() += n;
            }
            mine.io_errors += theirs.io_errors;
        }
        for (index, theirs) in other.timeline.into_iter().enumerate() {
            let mine = self.second(index);
            let _ = mine.latency_us.add(&theirs.latency_us);
            mine.errors += theirs.errors;
        }
    }
}

fn second_histogram() -> Histogram<u64> {
    // Two significant digits are plenty for a per-second plot and keep each histogram small.
    Histogram::new_with_bounds(1, 120_000_000, 2).expect("valid bounds")
}

/// Runs a scenario against a target: `settings.threads` generator threads, each a
/// single-threaded runtime driving its share of the connections (as wrk does).
pub async fn run(
    target: &Target,
    scenario: &Scenario,
    sample: &CatalogSample,
    settings: &RunSettings,
) -> anyhow::Result<RunOutcome> {
    anyhow::ensure!(settings.connections > 0, "need at least one connection");
    anyhow::ensure!(settings.threads > 0, "need at least one thread");
    if let Mode::Open { rate } = settings.mode {
        anyhow::ensure!(rate > 0.0, "rate must be positive");
    }
    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + settings.warmup;
    let end = measure_from + settings.duration;
    let per_connection_cap = settings.max_requests.map(|m| m.div_ceil(settings.connections as u64));
    let window = Window {
        start,
        measure_from,
        end,
        cap: per_connection_cap,
    };
    let plan = Arc::new(Plan::new(scenario, sample)?);
    let threads = settings.threads.min(settings.connections);
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let (target, plan, settings) = (target.clone(), plan.clone(), settings.clone());
        handles.push(
            std::thread::Builder::new()
                .name(format!("loadgen-{t}"))
                .spawn(move || generator_thread(t, threads, &target, &plan, &settings, window))?,
        );
    }
    let joined = tokio::task::spawn_blocking(move || {
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow::anyhow!("a generator thread panicked"))?)
            .collect::<anyhow::Result<Vec<Recorder>>>()
    })
    .await??;
    let mut total = Recorder::new(scenario.steps.len());
    for recorder in joined {
        total.merge(recorder);
    }
    let elapsed = Instant::now()
        .saturating_duration_since(measure_from)
        .min(settings.duration);
    Ok(RunOutcome {
        steps: total.steps,
        timeline: total.timeline,
        elapsed,
    })
}

/// One generator thread: connections `t, t + threads, ...` on a current-thread runtime.
fn generator_thread(
    t: usize,
    threads: usize,
    target: &Target,
    plan: &Arc<Plan>,
    settings: &RunSettings,
    window: Window,
) -> anyhow::Result<Recorder> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let recorder = std::rc::Rc::new(std::cell::RefCell::new(Recorder::new(plan.steps.len())));
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let mut tasks = Vec::new();
        for c in (t..settings.connections).step_by(threads) {
            let (target, plan, settings, recorder) = (target.clone(), plan.clone(), settings.clone(), recorder.clone());
            tasks.push(tokio::task::spawn_local(async move {
                worker(c, &target, &plan, &settings, window, &recorder).await
            }));
        }
        for task in tasks {
            task.await??;
        }
        anyhow::Ok(())
    })?;
    drop(local);
    std::rc::Rc::try_unwrap(recorder)
        .map(|r| r.into_inner())
        .map_err(|_| anyhow::anyhow!("recorder still shared"))
}

/// A path or body with its placeholders found once, rendered per request into a reused buffer.
#[derive(Debug, Clone)]
struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Product,
    Word,
    Prefix,
    Category,
    Sku,
}

impl Template {
    fn parse(text: &str) -> Template {
        const NAMES: [(&str, Part); 5] = [
            ("{product}", Part::Product),
            ("{word}", Part::Word),
            ("{prefix}", Part::Prefix),
            ("{category}", Part::Category),
            ("{sku}", Part::Sku),
        ];
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let next = NAMES
                .iter()
                .filter_map(|(name, part)| rest.find(name).map(|at| (at, *name, part.clone())))
                .min_by_key(|(at, _, _)| *at);
            match next {
                Some((at, name, part)) => {
                    if at > 0 {
                        parts.push(Part::Literal(rest[..at].to_owned()));
                    }
                    parts.push(part);
                    rest = &rest[at + name.len()..];
                }
                None => {
                    parts.push(Part::Literal(rest.to_owned()));
                    rest = "";
                }
            }
        }
        Template { parts }
    }

    fn render(&self, sample: &CatalogSample, rng: &mut SmallRng, out: &mut String) {
        fn pick<'a>(items: &'a [String], rng: &mut SmallRng) -> &'a str {
            if items.is_empty() {
                ""
            } else {
                &items[rng.gen_range(0..items.len())]
            }
        }
        out.clear();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Product => out.push_str(pick(&sample.products, rng)),
                Part::Word => out.push_str(pick(&sample.words, rng)),
                Part::Prefix => {
                    let word = pick(&sample.words, rng);
                    out.push_str(&word[..3.min(word.len())]);
                }
                Part::Category => out.push_str(pick(&sample.categories, rng)),
                Part::Sku => out.push_str(pick(&sample.skus, rng)),
            }
        }
    }
}

/// The scenario prepared for sending: templates parsed and methods resolved once.
struct Plan {
    scenario: Scenario,
    sample: CatalogSample,
    steps: Vec<PreparedStep>,
    total_weight: u32,
}

struct PreparedStep {
    method: Method,
    path: Template,
    body: Option<Template>,
}

impl Plan {
    fn new(scenario: &Scenario, sample: &CatalogSample) -> anyhow::Result<Plan> {
        let steps = scenario
            .steps
            .iter()
            .map(|step| {
                Ok(PreparedStep {
                    method: Method::from_bytes(step.method.as_bytes())?,
                    path: Template::parse(&step.path),
                    body: step.body.as_deref().map(Template::parse),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Plan {
            scenario: scenario.clone(),
            sample: sample.clone(),
            steps,
            total_weight: scenario.steps.iter().map(|s| s.weight).sum(),
        })
    }
}

/// When a connection sends and what it records.
#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    measure_from: Instant,
    end: Instant,
    cap: Option<u64>,
}

async fn worker(
    index: usize,
    target: &Target,
    plan: &Plan,
    settings: &RunSettings,
    window: Window,
    recorder: &std::cell::RefCell<Recorder>,
) -> anyhow::Result<()> {
    let Window {
        start,
        measure_from,
        end,
        cap,
    } = window;
    let (scenario, sample) = (&plan.scenario, &plan.sample);
    let mut rng = SmallRng::seed_from_u64(settings.seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
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
    let mut journey: Vec<usize> = Vec::new();
    let mut path = String::with_capacity(256);
    let mut body = String::with_capacity(1024);
    let mut key = String::with_capacity(48);
    // Random, not seeded: a second run against the same server must not replay the first's keys.
    let key_prefix: u64 = rand::random();
    loop {
        let intended = match interval {
            Some(iv) => start + offset + iv.mul_f64(i as f64),
            None => Instant::now().max(start),
        };
        if intended >= end || cap.is_some_and(|c| measured >= c) {
            break;
        }
        i += 1;
        if intended > Instant::now() {
            tokio::time::sleep_until(intended.into()).await;
        }

        let step_index = if scenario.sequence {
            if journey.is_empty() {
                // A new shopper: a new cart and a fresh journey (reversed: popped from the end).
                cart_token = None;
                for (index, step) in scenario.steps.iter().enumerate().rev() {
                    let [min, max] = step.repeat.unwrap_or([1, 1]);
                    journey.extend(std::iter::repeat_n(index, rng.gen_range(min..=max) as usize));
                }
            }
            journey.pop().unwrap_or(0)
        } else if scenario.steps.len() == 1 {
            0
        } else {
            let mut pick = rng.gen_range(0..plan.total_weight);
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
        let prepared = &plan.steps[step_index];
        prepared.path.render(sample, &mut rng, &mut path);
        let etag = if step.conditional {
            sample.etags.get(path.as_str())
        } else {
            None
        };
        if let Some(template) = &prepared.body {
            template.render(sample, &mut rng, &mut body);
        }
        if !scenario.sequence && scenario.requests_per_shopper > 0 && i % scenario.requests_per_shopper as u64 == 1 {
            cart_token = None;
        }
        if step.idempotency_key {
            use std::fmt::Write as _;
            key.clear();
            let _ = write!(key, "lt-{key_prefix:016x}-{i}");
        }
        let headers = Headers {
            etag,
            cart_token: cart_token.as_ref(),
            idempotency_key: step.idempotency_key.then_some(key.as_str()),
            authorization: step.authorization.as_ref(),
            extra: &step.extra_headers,
        };

        let sent = Instant::now();
        let result = conn
            .send(
                &prepared.method,
                &path,
                headers,
                prepared.body.is_some().then_some(body.as_bytes()),
                false,
            )
            .await;
        if let Ok(reply) = &result {
            if reply.cart_token.is_some() && !scenario.new_cart_each_request {
                cart_token.clone_from(&reply.cart_token);
            }
        }
        let done = Instant::now();
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
        let latency_us = (done.saturating_duration_since(from).as_micros().max(1) as u64).min(120_000_000);
        if record {
            measured += 1;
            let failed = match &result {
                Ok(reply) => !(reply.status.is_success() || reply.status == hyper::StatusCode::NOT_MODIFIED),
                Err(_) => true,
            };
            let mut rec = recorder.borrow_mut();
            let stats = &mut rec.steps[step_index];
            match &result {
                Ok(reply) => *stats.statuses.entry(reply.status.as_u16()).or_default() += 1,
                Err(_) => stats.io_errors += 1,
            }
            let _ = stats.latency_us.record(latency_us);
            let second = rec.second(intended.saturating_duration_since(measure_from).as_secs() as usize);
            let _ = second.latency_us.record(latency_us);
            if failed {
                second.errors += 1;
            }
        }
        if result.is_err() || conn.is_closing() {
            // The connection is unusable: reconnect (backing off if the server is gone).
            match Connection::open(target).await {
                Ok(c) => conn = c,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
    Ok(())
}
