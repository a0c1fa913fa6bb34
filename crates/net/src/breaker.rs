//! A circuit breaker per venue endpoint family (market data, account, orders, ...).
//!
//! When a venue host is failing (timeouts, 5xx, connection resets), hammering it makes
//! things worse: requests pile up behind timeouts, and for rate-limited venues each failed
//! call still costs weight. The breaker stops calls after `threshold` consecutive failures
//! (**Open**), lets them fail fast for `cooldown`, then lets exactly one probe through
//! (**HalfOpen**): success closes it, failure re-opens it for another cooldown.
//! [`CircuitBreaker::force_open_until`] holds it open for a known period, e.g. a 418 ban.
//!
//! What counts as a failure is the caller's decision: a venue *rejecting* a request (bad
//! parameters, insufficient balance) means the venue is healthy and must not trip it.
//!
//! A call takes a [`BreakerPermit`] and reports through it. A permit dropped without a
//! report (the caller's future was cancelled) frees the half-open probe slot without
//! changing state, so a cancelled probe can never wedge the breaker half-open.
//!
//! Concurrency: state lives behind a `std::sync::Mutex`, held for a few instructions and
//! never across an `.await`.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::lock;

/// Gauge: 0 closed, 1 half-open, 2 open; labels `venue`, `family`.
pub const METRIC_CIRCUIT_STATE: &str = "gekko_venue_circuit_state";

/// The externally visible state of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls pass.
    Closed,
    /// The cooldown is over; one probe call may pass.
    HalfOpen,
    /// Calls fail fast until the cooldown (or forced period) ends.
    Open,
}

impl CircuitState {
    /// The metric value: 0 closed, 1 half-open, 2 open.
    #[must_use]
    pub const fn as_metric(self) -> f64 {
        match self {
            CircuitState::Closed => 0.0,
            CircuitState::HalfOpen => 1.0,
            CircuitState::Open => 2.0,
        }
    }
}

/// The breaker refused a call; nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit open; retry in {retry_after:?}")]
pub struct BreakerOpen {
    /// How long until a call may be tried again.
    pub retry_after: Duration,
}

#[derive(Debug)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// A consecutive-failure circuit breaker. See the module docs.
#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    venue: String,
    family: String,
    inner: Mutex<Inner>,
}

impl CircuitBreaker {
    /// A closed breaker that opens after `threshold` (at least 1) consecutive failures and
    /// stays open for `cooldown`.
    #[must_use]
    pub fn new(venue: &str, family: &str, threshold: u32, cooldown: Duration) -> Self {
        let b = Self {
            threshold: threshold.max(1),
            cooldown,
            venue: venue.to_owned(),
            family: family.to_owned(),
            inner: Mutex::new(Inner::Closed { failures: 0 }),
        };
        b.publish(CircuitState::Closed);
        b
    }

    /// The endpoint family this breaker guards.
    #[must_use]
    pub fn family(&self) -> &str {
        &self.family
    }

    /// The current state. An open breaker whose period has ended reads as half-open.
    #[must_use]
    pub fn state(&self) -> CircuitState {
        let inner = lock(&self.inner);
        match *inner {
            Inner::Closed { .. } => CircuitState::Closed,
            Inner::Open { until } if Instant::now() < until => CircuitState::Open,
            Inner::Open { .. } | Inner::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    /// Asks to make a call.
    ///
    /// # Errors
    /// [`BreakerOpen`] while open, or while half-open with the probe already out.
    pub fn try_acquire(&self) -> Result<BreakerPermit<'_>, BreakerOpen> {
        let now = Instant::now();
        let mut inner = lock(&self.inner);
        let probe = match *inner {
            Inner::Closed { .. } => false,
            Inner::Open { until } if now < until => {
                return Err(BreakerOpen {
                    retry_after: until - now,
                });
            }
            Inner::Open { .. } | Inner::HalfOpen { probing: false } => {
                *inner = Inner::HalfOpen { probing: true };
                drop(inner);
                self.publish(CircuitState::HalfOpen);
                true
            }
            Inner::HalfOpen { probing: true } => {
                // The probe is out; others wait a short while rather than the whole cooldown.
                return Err(BreakerOpen {
                    retry_after: self.cooldown.min(Duration::from_secs(1)),
                });
            }
        };
        Ok(BreakerPermit {
            breaker: self,
            probe,
            done: false,
        })
    }

    /// Holds the breaker open until `until` (e.g. the end of a 418 ban), then half-open.
    /// Never shortens an open period already in force.
    pub fn force_open_until(&self, until: Instant) {
        let mut inner = lock(&self.inner);
        let until = match *inner {
            Inner::Open { until: u } => u.max(until),
            _ => until,
        };
        *inner = Inner::Open { until };
        drop(inner);
        self.publish(CircuitState::Open);
    }

    fn on_success(&self) {
        let mut inner = lock(&self.inner);
        let was_closed = matches!(*inner, Inner::Closed { .. });
        // A success while forced open (a call that started before the ban) changes nothing.
        if matches!(*inner, Inner::Open { .. }) {
            return;
        }
        *inner = Inner::Closed { failures: 0 };
        drop(inner);
        if !was_closed {
            tracing::info!(venue = %self.venue, family = %self.family, "circuit closed");
            self.publish(CircuitState::Closed);
        }
    }

    fn on_failure(&self) {
        let now = Instant::now();
        let mut inner = lock(&self.inner);
        let open = match *inner {
            Inner::Closed { failures } => {
                let failures = failures + 1;
                if failures >= self.threshold {
                    true
                } else {
                    *inner = Inner::Closed { failures };
                    false
                }
            }
            Inner::HalfOpen { .. } => true,
            Inner::Open { .. } => false,
        };
        if open {
            *inner = Inner::Open {
                until: now + self.cooldown,
            };
            drop(inner);
            tracing::warn!(venue = %self.venue, family = %self.family, cooldown_ms = self.cooldown.as_millis(), "circuit opened");
            self.publish(CircuitState::Open);
        }
    }

    fn on_abandoned_probe(&self) {
        let mut inner = lock(&self.inner);
        if matches!(*inner, Inner::HalfOpen { probing: true }) {
            *inner = Inner::HalfOpen { probing: false };
        }
    }

    fn publish(&self, s: CircuitState) {
        metrics::gauge!(METRIC_CIRCUIT_STATE, "venue" => self.venue.clone(), "family" => self.family.clone())
            .set(s.as_metric());
    }
}

/// Permission for one call through a [`CircuitBreaker`]; report the outcome with
/// [`BreakerPermit::success`] or [`BreakerPermit::failure`]. Dropping it unreported counts
/// as neither.
#[derive(Debug)]
#[must_use = "report the call's outcome through the permit"]
pub struct BreakerPermit<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    done: bool,
}

impl BreakerPermit<'_> {
    /// Whether this call is the half-open probe.
    #[must_use]
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// The call reached a healthy venue (including a venue-side rejection).
    pub fn success(mut self) {
        self.done = true;
        self.breaker.on_success();
    }

    /// The call failed in a way that suggests the venue or the path to it is unhealthy.
    pub fn failure(mut self) {
        self.done = true;
        self.breaker.on_failure();
    }
}

impl Drop for BreakerPermit<'_> {
    fn drop(&mut self) {
        if !self.done && self.probe {
            self.breaker.on_abandoned_probe();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new("test", "orders", 3, Duration::from_secs(10))
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_then_probes_once() {
        let b = breaker();
        b.try_acquire().unwrap().failure();
        b.try_acquire().unwrap().failure();
        b.try_acquire().unwrap().success(); // resets the count
        for _ in 0..3 {
            b.try_acquire().unwrap().failure();
        }
        assert_eq!(b.state(), CircuitState::Open);
        let err = b.try_acquire().unwrap_err();
        assert_eq!(err.retry_after, Duration::from_secs(10));

        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(b.state(), CircuitState::HalfOpen);
        let probe = b.try_acquire().unwrap();
        assert!(probe.is_probe());
        assert!(b.try_acquire().is_err(), "only one probe at a time");
        probe.success();
        assert_eq!(b.state(), CircuitState::Closed);
        assert!(!b.try_acquire().unwrap().is_probe());
    }

    #[tokio::test(start_paused = true)]
    async fn failed_probe_reopens_for_a_full_cooldown() {
        let b = CircuitBreaker::new("test", "market", 1, Duration::from_secs(5));
        b.try_acquire().unwrap().failure();
        tokio::time::advance(Duration::from_secs(5)).await;
        b.try_acquire().unwrap().failure();
        assert_eq!(b.state(), CircuitState::Open);
        assert_eq!(
            b.try_acquire().unwrap_err().retry_after,
            Duration::from_secs(5)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn abandoned_probe_frees_the_slot() {
        let b = CircuitBreaker::new("test", "market", 1, Duration::from_secs(5));
        b.try_acquire().unwrap().failure();
        tokio::time::advance(Duration::from_secs(5)).await;
        drop(b.try_acquire().unwrap());
        assert!(b.try_acquire().unwrap().is_probe());
    }

    #[tokio::test(start_paused = true)]
    async fn forced_open_holds_until_the_ban_ends_and_is_never_shortened() {
        let b = breaker();
        let t0 = Instant::now();
        let in_flight = b.try_acquire().unwrap();
        b.force_open_until(t0 + Duration::from_secs(120));
        b.force_open_until(t0 + Duration::from_secs(1));
        // A late success from a call that started before the ban changes nothing.
        in_flight.success();
        assert_eq!(b.state(), CircuitState::Open);
        tokio::time::advance(Duration::from_secs(119)).await;
        assert!(b.try_acquire().is_err());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(b.state(), CircuitState::HalfOpen);
        b.try_acquire().unwrap().success();
        assert_eq!(b.state(), CircuitState::Closed);
    }

    #[test]
    fn metric_values() {
        assert!(CircuitState::Closed.as_metric() < 0.5);
        assert!((CircuitState::HalfOpen.as_metric() - 1.0).abs() < f64::EPSILON);
        assert!((CircuitState::Open.as_metric() - 2.0).abs() < f64::EPSILON);
    }
}
