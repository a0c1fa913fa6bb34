//! The connect circuit breaker of one MCP server.
//!
//! Backoff alone keeps retrying a dead server every few seconds (its ceiling), forever.
//! For an external server that is down for a long time (a laptop's local tool that was
//! closed, a remote service in maintenance) that is log noise and wasted process spawns.
//! After `threshold` consecutive failed connects the breaker **opens**: the supervisor
//! waits `cooldown` before the next attempt, which is the **half-open** probe. A probe
//! that connects closes it; one that fails opens it for another cooldown.
//!
//! Calls never wait on the breaker: a server that is not up fails a call at once with
//! [`McpClientError::NotConnected`](crate::McpClientError::NotConnected), whatever the
//! breaker's state, so the breaker only paces reconnects.
//!
//! gekko-net has a breaker for venue endpoint families, but it publishes its state under
//! venue labels and guards concurrent callers with a lock and permits. Here one
//! supervisor task owns the breaker and is its only user, so this is a plain struct
//! without a lock.

use std::time::Duration;

use serde::Serialize;

/// The state of a connect breaker, as reported in [`ServerStatus`](crate::ServerStatus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Reconnects follow the backoff.
    Closed,
    /// The cooldown is running; the next attempt is a probe.
    Open,
    /// The probe is being tried.
    HalfOpen,
}

impl CircuitState {
    /// The metric value: 0 closed, 1 half-open, 2 open.
    pub(crate) fn as_metric(self) -> f64 {
        match self {
            CircuitState::Closed => 0.0,
            CircuitState::HalfOpen => 1.0,
            CircuitState::Open => 2.0,
        }
    }
}

/// Consecutive-failure breaker over connect attempts (see the module docs).
#[derive(Debug)]
pub(crate) struct ConnectBreaker {
    threshold: u32,
    cooldown: Duration,
    failures: u32,
    state: CircuitState,
}

impl ConnectBreaker {
    /// A closed breaker that opens after `threshold` (at least 1) consecutive failures.
    pub(crate) fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            failures: 0,
            state: CircuitState::Closed,
        }
    }

    pub(crate) fn state(&self) -> CircuitState {
        self.state
    }

    /// An attempt is starting: after an open period, it is the half-open probe.
    pub(crate) fn attempt(&mut self) {
        if self.state == CircuitState::Open {
            self.state = CircuitState::HalfOpen;
        }
    }

    /// A connect succeeded: closed, the count starts over.
    pub(crate) fn success(&mut self) {
        self.failures = 0;
        self.state = CircuitState::Closed;
    }

    /// A connect failed. Returns the cooldown to wait when this failure opens the
    /// breaker (the threshold reached, or the half-open probe failed), else `None` (wait
    /// the backoff's delay).
    pub(crate) fn failure(&mut self) -> Option<Duration> {
        self.failures = self.failures.saturating_add(1);
        if self.state == CircuitState::HalfOpen || self.failures >= self.threshold {
            self.state = CircuitState::Open;
            Some(self.cooldown)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_a_failed_probe_reopens() {
        let cooldown = Duration::from_secs(30);
        let mut b = ConnectBreaker::new(3, cooldown);
        b.attempt();
        assert_eq!(b.failure(), None);
        b.attempt();
        assert_eq!(b.failure(), None);
        b.attempt();
        assert_eq!(b.failure(), Some(cooldown));
        assert_eq!(b.state(), CircuitState::Open);
        b.attempt();
        assert_eq!(b.state(), CircuitState::HalfOpen);
        assert_eq!(b.failure(), Some(cooldown));
        b.attempt();
        b.success();
        assert_eq!(b.state(), CircuitState::Closed);
        b.attempt();
        assert_eq!(b.failure(), None, "the count started over");
    }
}
