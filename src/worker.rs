//! One shape for background work.
//!
//! Every background loop (the search indexer, the CDN purger, changelog retention, the cart
//! sweeper, stock signals, rate-limit pruning, and the wave-2 consumers after them) is a
//! [`Worker`] with a [`Schedule`] (a name and an idle interval): one idempotent step,
//! [`Worker::try_execute`], that reports whether it found work. [`Workers`] supervises them all the same way:
//! - a step that worked is followed at once by the next (a backlog drains without waiting);
//! - an idle step waits for the interval, or until someone [`Wake`]s the worker;
//! - a failed step is logged with the worker's name and retried after an exponential backoff
//!   with jitter (`backon`), so many failing workers do not retry in lockstep;
//! - a panicking step is caught (each step runs as its own task) and treated as a failure;
//! - cancellation stops the loop between steps.
//!
//! Tests call [`Workers::run_once`] to run one step of any worker on demand, instead of
//! waiting for its interval.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use backon::BackoffBuilder;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::service::ServiceError;

/// A low-priority thread for background work that must not slow requests down (delivering
/// notifications): its own single-threaded runtime, at the lowest CPU priority, so the
/// kernel gives the request threads the cores first and the background work what is left.
/// Blocking storage calls may run on it directly; nothing else shares it. The thread stops
/// when dropped; [`Background::stop`] ends the tasks spawned on it first, because a task that
/// holds its owner (a delivery attempt holds the notifications service) would otherwise keep
/// the owner, and the store under it, alive after shutdown.
pub struct Background {
    handle: tokio::runtime::Handle,
    tasks: TaskTracker,
    cancel: CancellationToken,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Background {
    /// Starts the thread.
    pub fn start(name: &str) -> std::io::Result<Background> {
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            // SAFETY: setpriority on the calling thread (Linux applies nice per thread);
            // failing only leaves the thread at normal priority.
            #[cfg(target_os = "linux")]
            unsafe {
                libc::setpriority(libc::PRIO_PROCESS, 0, 19);
            }
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => {
                    let _ = handle_tx.send(Err(e));
                    return;
                }
            };
            let _ = handle_tx.send(Ok(runtime.handle().clone()));
            runtime.block_on(async move {
                let _ = stopped.await;
            });
        })?;
        let handle = handle_rx
            .recv()
            .map_err(|_| std::io::Error::other("the background thread died at start"))??;
        Ok(Background {
            handle,
            tasks: TaskTracker::new(),
            cancel: CancellationToken::new(),
            _stop: stop,
        })
    }

    /// Spawns a task on the background thread. [`Background::stop`] drops it at its next
    /// await, so it must leave nothing half done that a later run cannot pick up again.
    pub fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
        let cancel = self.cancel.clone();
        self.handle.spawn(self.tasks.track_future(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = task => {}
            }
        }));
    }

    /// Ends the spawned tasks still running, without waiting for them.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Ends the spawned tasks still running and waits until they have let go of what they
    /// hold. Tasks spawned afterwards end at once.
    pub async fn stop(&self) {
        self.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Runs blocking work on the background thread and waits for it.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        self.handle
            .spawn(async move { work() })
            .await
            .map_err(|e| ServiceError::internal_from("background work", e))?
    }
}

/// What one step found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// It did some work; more may be waiting, so the next step runs at once.
    Worked,
    /// Nothing to do; the next step runs after the interval (or a wake-up).
    Idle,
}

/// A unit of background work, run again and again by [`Workers`].
#[async_trait::async_trait]
pub trait Worker: Send + Sync + 'static {
    /// Runs one step. It must be idempotent: a step that fails half way runs again.
    async fn try_execute(&self) -> Result<Progress, ServiceError>;
}

/// When a worker runs: its name and the wait after an idle step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// A stable name, for logs and [`Workers::run_once`].
    pub name: &'static str,
    /// The wait after an idle step.
    pub interval: Duration,
}

/// A handle that wakes a worker before its interval is up (for example when a cart write
/// leaves a stock signal behind). Waking a busy worker makes its next idle wait end at once.
#[derive(Debug, Clone, Default)]
pub struct Wake(Arc<Notify>);

impl Wake {
    /// Wakes the worker.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

struct Entry {
    schedule: Schedule,
    worker: Arc<dyn Worker>,
    wake: Wake,
}

/// The registry and supervisor of every worker.
#[derive(Default)]
pub struct Workers {
    entries: Vec<Entry>,
}

/// Bounds of the retry backoff after failed steps.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

impl Workers {
    /// An empty registry.
    pub fn new() -> Workers {
        Workers::default()
    }

    /// Registers a worker; `wake` is the handle its producers hold.
    pub fn add(&mut self, schedule: Schedule, worker: Arc<dyn Worker>, wake: Wake) {
        debug_assert!(
            self.entries.iter().all(|e| e.schedule.name != schedule.name),
            "worker names are unique"
        );
        self.entries.push(Entry { schedule, worker, wake });
    }

    /// Names of the registered workers.
    pub fn names(&self) -> Vec<&'static str> {
        self.entries.iter().map(|e| e.schedule.name).collect()
    }

    /// Runs one step of the named worker now (the test hook); `None` when no such worker.
    pub async fn run_once(&self, name: &str) -> Option<Result<Progress, ServiceError>> {
        let entry = self.entries.iter().find(|e| e.schedule.name == name)?;
        Some(step(&entry.worker).await)
    }

    /// Starts a supervised loop per worker; each stops when `cancel` fires.
    pub fn spawn(&self, cancel: &CancellationToken) -> Vec<JoinHandle<()>> {
        self.entries
            .iter()
            .map(|e| tokio::spawn(supervise(e.schedule, e.worker.clone(), e.wake.clone(), cancel.clone())))
            .collect()
    }
}

/// One step as its own task, so a panic is reported as a failure instead of ending the loop.
async fn step(worker: &Arc<dyn Worker>) -> Result<Progress, ServiceError> {
    let worker = worker.clone();
    tokio::spawn(async move { worker.try_execute().await })
        .await
        .map_err(|e| ServiceError::internal_from("worker step panicked", e))?
}

async fn supervise(schedule: Schedule, worker: Arc<dyn Worker>, wake: Wake, cancel: CancellationToken) {
    let Schedule { name, interval } = schedule;
    let mut backoff: Option<backon::ExponentialBackoff> = None;
    loop {
        if cancel.is_cancelled() {
            return;
        }
        let wait = match step(&worker).await {
            Ok(Progress::Worked) => {
                backoff = None;
                tokio::task::yield_now().await;
                continue;
            }
            Ok(Progress::Idle) => {
                backoff = None;
                interval
            }
            Err(e) => {
                let delay = backoff
                    .get_or_insert_with(|| {
                        backon::ExponentialBuilder::new()
                            .with_min_delay(BACKOFF_MIN.max(interval.min(BACKOFF_MAX)))
                            .with_max_delay(BACKOFF_MAX)
                            .with_jitter()
                            .without_max_times()
                            .build()
                    })
                    .next()
                    .unwrap_or(BACKOFF_MAX);
                tracing::warn!(worker = name, error = %e, retry_in_ms = delay.as_millis() as u64, "worker step failed");
                // A failing worker waits out its backoff; a wake-up must not turn it into a
                // busy loop.
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                continue;
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
            _ = wake.0.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Works `backlog` times, then idles; fails on its first step when asked.
    struct Counter {
        steps: AtomicUsize,
        backlog: usize,
        fail_first: bool,
    }

    #[async_trait::async_trait]
    impl Worker for Counter {
        async fn try_execute(&self) -> Result<Progress, ServiceError> {
            let n = self.steps.fetch_add(1, Ordering::SeqCst);
            if self.fail_first && n == 0 {
                return Err(ServiceError::internal("first step fails"));
            }
            if n == usize::MAX {
                panic!("never");
            }
            Ok(if n < self.backlog {
                Progress::Worked
            } else {
                Progress::Idle
            })
        }
    }

    fn counter(backlog: usize, fail_first: bool) -> Arc<Counter> {
        Arc::new(Counter {
            steps: AtomicUsize::new(0),
            backlog,
            fail_first,
        })
    }

    fn every(interval: Duration) -> Schedule {
        Schedule {
            name: "counter",
            interval,
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    async fn until(what: impl Fn() -> bool) {
        for _ in 0..500 {
            if what() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("condition never held");
    }

    #[tokio::test]
    async fn a_backlog_drains_without_waiting_and_a_wake_ends_the_idle_wait() {
        let worker = counter(3, false);
        let wake = Wake::default();
        let mut workers = Workers::new();
        workers.add(every(HOUR), worker.clone(), wake.clone());
        let cancel = CancellationToken::new();
        let tasks = workers.spawn(&cancel);
        // Three working steps and one idle one, although the interval is an hour.
        until(|| worker.steps.load(Ordering::SeqCst) == 4).await;
        wake.wake();
        until(|| worker.steps.load(Ordering::SeqCst) == 5).await;
        cancel.cancel();
        for t in tasks {
            t.await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_failed_step_is_retried_after_a_backoff() {
        // The first retry waits between the interval (here below the 100 ms floor) and twice
        // that, with jitter.
        let worker = counter(0, true);
        let mut workers = Workers::new();
        workers.add(every(Duration::from_millis(10)), worker.clone(), Wake::default());
        let cancel = CancellationToken::new();
        let tasks = workers.spawn(&cancel);
        until(|| worker.steps.load(Ordering::SeqCst) == 2).await;
        cancel.cancel();
        for t in tasks {
            t.await.unwrap();
        }
    }

    #[tokio::test]
    async fn run_once_runs_one_step_of_the_named_worker() {
        let worker = counter(1, false);
        let mut workers = Workers::new();
        workers.add(every(HOUR), worker.clone(), Wake::default());
        assert_eq!(workers.run_once("counter").await.unwrap().unwrap(), Progress::Worked);
        assert_eq!(workers.run_once("counter").await.unwrap().unwrap(), Progress::Idle);
        assert!(workers.run_once("nobody").await.is_none());
        assert_eq!(workers.names(), vec!["counter"]);
    }
}
