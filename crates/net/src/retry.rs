//! Exponential backoff with full jitter, and a retry loop for idempotent calls only.
//!
//! Full jitter (`sleep = random(0, min(cap, base * 2^attempt))`, from the AWS architecture
//! note on backoff) spreads reconnecting clients out, so a venue hiccup does not turn into a
//! synchronised thundering herd from every gekko process at once.
//!
//! [`retry_idempotent`] is **only** for calls that can be repeated without changing the
//! outcome: reads, and cancels by client order id. An order submit must never go through it
//! (nautilus#4215, catalyst#315): a timed-out submit may have been placed, and is reconciled
//! by querying the client order id instead.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

/// Backoff parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// The ceiling of the first delay.
    pub base: Duration,
    /// The largest ceiling any delay can have.
    pub max: Duration,
}

impl Default for BackoffConfig {
    /// 250 ms doubling up to 30 s: quick recovery from blips, gentle on long outages.
    fn default() -> Self {
        Self {
            base: Duration::from_millis(250),
            max: Duration::from_secs(30),
        }
    }
}

/// A backoff sequence: each [`Backoff::next_delay`] doubles the ceiling, up to `max`, and
/// returns a uniformly random delay below it.
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

    /// The next delay: random in `[0, ceiling]` (full jitter); then the ceiling doubles.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        // ThreadRng is not Send; it is used and dropped here, never held across an await.
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
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

/// How often and how patiently to retry an idempotent call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first (1 = no retry).
    pub max_attempts: u32,
    /// Delays between attempts.
    pub backoff: BackoffConfig,
}

impl Default for RetryPolicy {
    /// Three attempts, 200 ms doubling up to 2 s.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff: BackoffConfig {
                base: Duration::from_millis(200),
                max: Duration::from_secs(2),
            },
        }
    }
}

/// Runs `f` until it succeeds, fails with an error `is_retryable` rejects, or
/// `policy.max_attempts` attempts have been made; waits a jittered backoff between attempts.
///
/// **For idempotent calls only** (reads, cancels by client order id). Never wrap an order
/// submit or any other call whose repetition could change state twice.
///
/// # Errors
/// The last error from `f`.
pub async fn retry_idempotent<F, Fut, T, E>(
    policy: &RetryPolicy,
    is_retryable: impl Fn(&E) -> bool,
    mut f: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = Backoff::new(policy.backoff);
    let mut attempt = 1;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < policy.max_attempts && is_retryable(&e) => {
                attempt += 1;
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn ceiling_doubles_up_to_max_and_delays_stay_below_it() {
        let mut b = Backoff::new(BackoffConfig {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        });
        let expected = [100, 200, 400, 800, 1000, 1000];
        for ms in expected {
            let ceiling = b.ceiling();
            assert_eq!(ceiling, Duration::from_millis(ms));
            assert!(b.next_delay() <= ceiling);
        }
        for _ in 0..100 {
            b.next_delay();
        }
        assert_eq!(
            b.ceiling(),
            Duration::from_secs(1),
            "no overflow after many attempts"
        );
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(100));
    }

    #[test]
    fn delays_are_jittered() {
        let mut b = Backoff::new(BackoffConfig {
            base: Duration::from_secs(10),
            max: Duration::from_secs(10),
        });
        let delays: std::collections::HashSet<_> = (0..20).map(|_| b.next_delay()).collect();
        assert!(delays.len() > 1);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_retryable_errors_up_to_the_limit() {
        let calls = AtomicU32::new(0);
        let policy = RetryPolicy::default();
        let r: Result<(), &str> = retry_idempotent(
            &policy,
            |_| true,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("down")
            },
        )
        .await;
        assert_eq!(r, Err("down"));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn stops_at_a_non_retryable_error_and_returns_success() {
        let calls = AtomicU32::new(0);
        let policy = RetryPolicy::default();
        let r: Result<(), &str> = retry_idempotent(
            &policy,
            |e: &&str| *e == "transient",
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("rejected")
            },
        )
        .await;
        assert_eq!(r, Err("rejected"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let calls = AtomicU32::new(0);
        let r: Result<u32, &str> = retry_idempotent(
            &policy,
            |_| true,
            || async {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err("transient")
                } else {
                    Ok(7)
                }
            },
        )
        .await;
        assert_eq!(r, Ok(7));
    }
}
