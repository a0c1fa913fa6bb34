//! The one exponential backoff of the workspace, with jitter.
//!
//! Every reconnecting or retrying loop in gekko (Redis reconnects and write retries,
//! venue websockets and line streams, idempotent REST retries, the gateway's start-up
//! patience) uses this type, so the rules live in one place. The ceiling doubles from
//! `base` up to `max`; each delay is drawn below the ceiling so that many clients that
//! failed together do not retry in step (a thundering herd against a venue that just
//! came back). Full jitter (`random(0, ceiling)`, from the AWS architecture note on
//! backoff) spreads the most; equal jitter (`random(ceiling/2, ceiling)`) keeps a floor,
//! which suits a local dependency such as Redis where an immediate retry is pointless.

use std::time::Duration;

use rand::Rng;

/// How a delay is drawn below the ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// Uniform in `[0, ceiling]`.
    #[default]
    Full,
    /// Uniform in `[ceiling / 2, ceiling]`.
    Equal,
}

/// Backoff parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// The ceiling of the first delay.
    pub base: Duration,
    /// The largest ceiling any delay can have.
    pub max: Duration,
    /// How a delay is drawn below its ceiling.
    pub jitter: Jitter,
}

impl BackoffConfig {
    /// Full jitter from `base` doubling up to `max`.
    #[must_use]
    pub const fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            jitter: Jitter::Full,
        }
    }
}

impl Default for BackoffConfig {
    /// 250 ms doubling up to 30 s: quick recovery from blips, gentle on long outages.
    fn default() -> Self {
        Self::new(Duration::from_millis(250), Duration::from_secs(30))
    }
}

/// A backoff sequence: each [`Backoff::next_delay`] doubles the ceiling, up to `max`, and
/// returns a random delay below it.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    attempt: u32,
}

impl Backoff {
    /// A fresh sequence.
    #[must_use]
    pub fn new(config: BackoffConfig) -> Self {
        Self { config, attempt: 0 }
    }

    /// The ceiling for the current attempt, `min(max, base * 2^attempt)`.
    #[must_use]
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.config
            .base
            .checked_mul(factor)
            .unwrap_or(self.config.max)
            .min(self.config.max)
    }

    /// The next delay, drawn below the current ceiling; then the ceiling doubles.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let floor = match self.config.jitter {
            Jitter::Full => 0,
            Jitter::Equal => nanos / 2,
        };
        // ThreadRng is not Send; it is used and dropped here, never held across an await.
        Duration::from_nanos(rand::rng().random_range(floor..=nanos))
    }

    /// How many delays have been handed out since the last reset.
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Starts over (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_up_to_max_and_delays_stay_below_it() {
        let mut b = Backoff::new(BackoffConfig::new(
            Duration::from_millis(100),
            Duration::from_millis(700),
        ));
        let mut ceilings = Vec::new();
        for _ in 0..6 {
            let c = b.ceiling();
            let d = b.next_delay();
            assert!(d <= c, "{d:?} > {c:?}");
            ceilings.push(c.as_millis());
        }
        assert_eq!(ceilings, vec![100, 200, 400, 700, 700, 700]);
        b.reset();
        assert_eq!(b.attempt(), 0);
        assert_eq!(b.ceiling(), Duration::from_millis(100));
    }

    #[test]
    fn equal_jitter_keeps_a_floor() {
        let mut cfg = BackoffConfig::new(Duration::from_millis(100), Duration::from_millis(100));
        cfg.jitter = Jitter::Equal;
        let mut b = Backoff::new(cfg);
        for _ in 0..200 {
            let d = b.next_delay();
            assert!(
                d >= Duration::from_millis(50) && d <= Duration::from_millis(100),
                "{d:?}"
            );
        }
    }

    #[test]
    fn full_jitter_spreads_delays() {
        let mut b = Backoff::new(BackoffConfig::new(
            Duration::from_secs(1),
            Duration::from_secs(1),
        ));
        let delays: std::collections::HashSet<Duration> = (0..50).map(|_| b.next_delay()).collect();
        assert!(
            delays.len() > 40,
            "jitter must spread delays, got {}",
            delays.len()
        );
    }
}
