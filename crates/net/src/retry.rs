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

pub use gekko_core::backoff::{Backoff, BackoffConfig, Jitter};

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
            backoff: BackoffConfig::new(Duration::from_millis(200), Duration::from_secs(2)),
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
