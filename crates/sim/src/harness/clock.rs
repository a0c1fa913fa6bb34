//! The simulator clock and the market-pause switch.
//!
//! Venue time is wall-clock time plus an injectable skew, because the clock failures a
//! gateway must handle (its requests rejected as too old or too far ahead) come from the
//! *difference* between its clock and the venue's, and skewing the venue reproduces them
//! without touching the host clock. Both are single atomics: read on every request, set
//! rarely, never part of a larger invariant, so `Relaxed` is enough.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall clock plus an adjustable skew, in ms since the Unix epoch.
#[derive(Debug, Default)]
pub struct SimClock {
    skew_ms: AtomicI64,
}

impl SimClock {
    /// Venue time in ms: wall clock plus the injected skew.
    #[must_use]
    pub fn now_ms(&self) -> i64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2));
        wall + self.skew_ms.load(Ordering::Relaxed)
    }

    /// Sets the skew.
    pub fn set_skew(&self, ms: i64) {
        self.skew_ms.store(ms, Ordering::Relaxed);
    }

    /// The skew.
    #[must_use]
    pub fn skew(&self) -> i64 {
        self.skew_ms.load(Ordering::Relaxed)
    }
}

/// Whether the market generator is paused (no ticks at all).
#[derive(Debug, Default)]
pub struct MarketSwitch {
    paused: AtomicBool,
}

impl MarketSwitch {
    /// Pauses or resumes the market generator.
    pub fn set_paused(&self, p: bool) {
        self.paused.store(p, Ordering::Relaxed);
    }

    /// `true` while the market generator is paused.
    #[must_use]
    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_moves_the_clock() {
        let c = SimClock::default();
        let before = c.now_ms();
        c.set_skew(-60_000);
        assert_eq!(c.skew(), -60_000);
        let after = c.now_ms();
        assert!(after <= before - 59_000, "{before} -> {after}");
        let m = MarketSwitch::default();
        assert!(!m.paused());
        m.set_paused(true);
        assert!(m.paused());
    }
}
