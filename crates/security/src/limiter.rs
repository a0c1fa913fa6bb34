//! Per-peer limit on failed authentications.
//!
//! A fixed window per peer IP, opened by its first failure: after `limit` failures within
//! the window, every further call from that IP is refused with `RESOURCE_EXHAUSTED`
//! *without* looking at its token, until the window ends. That caps online guessing (of
//! tokens or TOTP codes) at `limit` tries per window per address.
//!
//! One mutex over a map: the critical section is a lookup and an add, far cheaper than the
//! TLS and HTTP/2 work around each call, and failures are rare. The map is pruned of
//! ended windows when it grows, so a scan from many addresses cannot grow it without
//! bound.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Peers tracked before ended windows are pruned.
const PRUNE_AT: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    failures: u32,
}

/// Counts authentication failures per peer IP.
#[derive(Debug)]
pub struct FailureLimiter {
    limit: u32,
    window: Duration,
    peers: Mutex<HashMap<IpAddr, Window>>,
}

impl FailureLimiter {
    /// At most `limit` failures per `window` per peer.
    #[must_use]
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit.max(1),
            window,
            peers: Mutex::new(HashMap::new()),
        }
    }

    /// Failures allowed per window.
    #[must_use]
    pub const fn limit(&self) -> u32 {
        self.limit
    }

    /// Whether `peer` has used up its failures in the current window.
    #[must_use]
    pub fn is_blocked(&self, peer: IpAddr) -> bool {
        self.is_blocked_at(peer, Instant::now())
    }

    fn is_blocked_at(&self, peer: IpAddr, now: Instant) -> bool {
        let peers = self
            .peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        peers.get(&peer).is_some_and(|w| {
            now.saturating_duration_since(w.start) < self.window && w.failures >= self.limit
        })
    }

    /// Records one failure from `peer`.
    pub fn record_failure(&self, peer: IpAddr) {
        self.record_failure_at(peer, Instant::now());
    }

    fn record_failure_at(&self, peer: IpAddr, now: Instant) {
        let mut peers = self
            .peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if peers.len() >= PRUNE_AT {
            let window = self.window;
            peers.retain(|_, w| now.saturating_duration_since(w.start) < window);
        }
        let w = peers.entry(peer).or_insert(Window {
            start: now,
            failures: 0,
        });
        if now.saturating_duration_since(w.start) >= self.window {
            *w = Window {
                start: now,
                failures: 0,
            };
        }
        w.failures = w.failures.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_ends() {
        let l = FailureLimiter::new(3, Duration::from_secs(60));
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let t0 = Instant::now();
        for _ in 0..2 {
            l.record_failure_at(a, t0);
            assert!(!l.is_blocked_at(a, t0));
        }
        l.record_failure_at(a, t0);
        assert!(l.is_blocked_at(a, t0));
        assert!(!l.is_blocked_at(b, t0), "per peer");
        assert!(l.is_blocked_at(a, t0 + Duration::from_secs(59)));
        assert!(!l.is_blocked_at(a, t0 + Duration::from_secs(60)));
        l.record_failure_at(a, t0 + Duration::from_secs(61));
        assert!(
            !l.is_blocked_at(a, t0 + Duration::from_secs(61)),
            "a new window"
        );
    }

    #[test]
    fn the_map_is_pruned() {
        let l = FailureLimiter::new(1, Duration::from_secs(1));
        let t0 = Instant::now();
        for i in 0..u32::try_from(PRUNE_AT).unwrap() {
            l.record_failure_at(IpAddr::from(i.to_be_bytes()), t0);
        }
        l.record_failure_at([1, 1, 1, 1].into(), t0 + Duration::from_secs(2));
        assert_eq!(l.peers.lock().unwrap().len(), 1);
    }
}
