//! A circuit breaker per payment provider (the `failsafe` crate's state machine): closed, open
//! after consecutive failures or a failure rate over a window, half-open after a cool-down. An
//! open breaker makes checkout fail fast with 503 and `Retry-After` instead of waiting on a
//! provider that is down. Only the provider's own faults count; a declined card is the
//! provider working.

use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use failsafe::failure_policy::{self, ConsecutiveFailures, OrElse, SuccessRateOverTimeWindow};
use failsafe::{backoff, Config, FailurePolicy, Instrument, StateMachine};

/// Settings of a breaker.
#[derive(Debug, Clone, Copy)]
pub struct BreakerSettings {
    /// Consecutive failures that open it.
    pub consecutive_failures: u32,
    /// Success rate (0–1) under which, over the window, it opens.
    pub min_success_rate: f64,
    /// Calls in the window before the rate counts.
    pub min_calls: u32,
    /// The window of the rate.
    pub window: Duration,
    /// How long it stays open before letting a trial call through.
    pub cooldown: Duration,
}

/// The state a breaker is in, for metrics and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused.
    Open,
    /// A trial call may go through.
    HalfOpen,
}

#[derive(Clone, Default)]
struct Observed {
    state: Arc<AtomicU8>,
    /// When it last opened (process-relative ms), for `Retry-After`.
    opened_at_ms: Arc<AtomicI64>,
    started: Arc<OnceInstant>,
}

#[derive(Default)]
struct OnceInstant(std::sync::OnceLock<Instant>);

impl OnceInstant {
    fn elapsed_ms(&self) -> i64 {
        self.0.get_or_init(Instant::now).elapsed().as_millis() as i64
    }
}

impl Instrument for Observed {
    fn on_call_rejected(&self) {}

    fn on_open(&self) {
        // Relaxed: the values are independent observations read for reporting only.
        self.state.store(1, Ordering::Relaxed);
        self.opened_at_ms.store(self.started.elapsed_ms(), Ordering::Relaxed);
    }

    fn on_half_open(&self) {
        self.state.store(2, Ordering::Relaxed);
    }

    fn on_closed(&self) {
        self.state.store(0, Ordering::Relaxed);
    }
}

type Policy = OrElse<ConsecutiveFailures<backoff::Constant>, SuccessRateOverTimeWindow<backoff::Constant>>;

/// A circuit breaker.
pub struct Breaker {
    machine: StateMachine<Policy, Observed>,
    observed: Observed,
    cooldown: Duration,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(settings: BreakerSettings) -> Breaker {
        let cooldown = settings.cooldown.max(Duration::from_millis(1));
        let policy =
            failure_policy::consecutive_failures(settings.consecutive_failures.max(1), backoff::constant(cooldown))
                .or_else(failure_policy::success_rate_over_time_window(
                    settings.min_success_rate.clamp(0.0, 1.0),
                    settings.min_calls.max(1),
                    settings.window.max(Duration::from_secs(1)),
                    backoff::constant(cooldown),
                ));
        let observed = Observed::default();
        observed.started.elapsed_ms();
        Breaker {
            machine: Config::new()
                .failure_policy(policy)
                .instrument(observed.clone())
                .build(),
            observed,
            cooldown,
        }
    }

    /// Asks to call the provider; `Err` carries how long until a trial is allowed.
    pub fn permit(&self) -> Result<(), Duration> {
        if self.machine.is_call_permitted() {
            return Ok(());
        }
        let opened = self.observed.opened_at_ms.load(Ordering::Relaxed);
        let open_for = Duration::from_millis((self.observed.started.elapsed_ms() - opened).max(0) as u64);
        Err(self.cooldown.saturating_sub(open_for).max(Duration::from_secs(1)))
    }

    /// Records a call that worked (or that the provider answered, even with a decline).
    pub fn succeeded(&self) {
        self.machine.on_success();
    }

    /// Records a provider fault.
    pub fn failed(&self) {
        self.machine.on_error();
    }

    /// The state now.
    pub fn state(&self) -> BreakerState {
        match self.observed.state.load(Ordering::Relaxed) {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(cooldown_ms: u64) -> Breaker {
        Breaker::new(BreakerSettings {
            consecutive_failures: 3,
            min_success_rate: 0.5,
            min_calls: 10,
            window: Duration::from_secs(30),
            cooldown: Duration::from_millis(cooldown_ms),
        })
    }

    #[test]
    fn consecutive_failures_open_it_and_a_trial_after_the_cooldown_closes_it() {
        let b = breaker(50);
        for _ in 0..3 {
            assert!(b.permit().is_ok());
            b.failed();
        }
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.permit().is_err(), "open: fail fast");
        std::thread::sleep(Duration::from_millis(80));
        assert!(b.permit().is_ok(), "half-open: one trial");
        b.succeeded();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.permit().is_ok());
    }

    #[test]
    fn successes_in_between_keep_it_closed() {
        let b = breaker(50);
        for _ in 0..10 {
            b.failed();
            b.failed();
            b.succeeded();
            b.succeeded();
            b.succeeded();
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
