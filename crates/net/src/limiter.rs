//! A weight-based request limiter, one per venue rate-limit bucket.
//!
//! Venues such as Binance.US meter requests by *weight* per fixed window (1200 per minute
//! per IP) and escalate: exceeding the limit gives 429 with `Retry-After`, and continuing to
//! send after a 429 gets the IP banned (418, from 2 minutes up to 3 days). freqtrade#7187
//! and BTCT#427 are bots that ignored this. So the limiter:
//!
//! * spends a *safety* fraction of the documented limit (e.g. 0.9), leaving headroom for
//!   other processes behind the same IP and for our estimate being behind;
//! * is corrected by the venue: [`WeightLimiter::observe_used`] takes the used-weight header
//!   of every response, and the local estimate never stays below what the venue says;
//! * honours [`WeightLimiter::pause_for`] (429 `Retry-After`) and
//!   [`WeightLimiter::ban_until`] (418): **no** request passes until the deadline, however
//!   light, which is what keeps a 429 storm from becoming a ban.
//!
//! Why not `governor`: GCRA smooths a rate, while the venue counts weight in a fixed window
//! and tells us its count. Syncing to that count and honouring externally imposed pauses is
//! simpler with the venue's own model than bolted onto a GCRA cell.
//!
//! Concurrency: the state is a few integers and deadlines behind a `std::sync::Mutex`.
//! Critical sections are a handful of instructions and never span an `.await`, so a sync
//! mutex is cheaper than an async one and cannot be held across a suspension point. Waiters
//! compute their deadline under the lock, release it, sleep, and re-check: there is no
//! queue, so fairness is best-effort, which is fine for a few dozen concurrent requests.
//!
//! The limit can change at run time ([`WeightLimiter::set_limit`], from a hot config
//! change): the limit and budget live in the same locked state as the window, so a reserve
//! sees either the old budget or the new one, never a mix, and every waiter is woken to
//! re-check against the new budget (a raised limit lets them through now, not at the end of
//! the window they were sleeping until).
//!
//! Time is `tokio::time::Instant`, so tests run on tokio's paused clock.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::lock;

/// Gauge: weight used in the current window, by the local estimate corrected from headers.
pub const METRIC_WEIGHT_USED: &str = "gekko_venue_request_weight_used";
/// Gauge: the weight budget the limiter spends per window (limit × safety).
pub const METRIC_WEIGHT_BUDGET: &str = "gekko_venue_request_weight_budget";
/// Counter: pauses imposed by the venue, `kind` = `pause` (429) or `ban` (418).
pub const METRIC_PAUSES: &str = "gekko_venue_rate_limit_pauses_total";
/// Histogram: seconds a request waited for budget or for a pause to end.
pub const METRIC_WAIT: &str = "gekko_venue_rate_limit_wait_seconds";

/// A fixed-window weight limiter with venue-imposed pauses. See the module docs.
#[derive(Debug)]
pub struct WeightLimiter {
    safety: f64,
    window: Duration,
    venue: String,
    name: String,
    state: Mutex<State>,
    /// Wakes every waiter when the limit changes, so it re-checks the new budget.
    changed: Notify,
}

#[derive(Debug)]
struct State {
    limit: u32,
    budget: u32,
    window_start: Instant,
    used: u32,
    paused_until: Option<Instant>,
}

impl WeightLimiter {
    /// A limiter for a venue limit of `limit` weight per `window`, spending at most
    /// `limit * safety` (clamped to `0.0..=1.0`, at least 1) of it.
    ///
    /// Metrics carry `venue="unknown"` and `limiter="weight"` until [`Self::with_labels`].
    #[must_use]
    pub fn new(limit: u32, window: Duration, safety: f64) -> Self {
        let safety = if safety.is_finite() {
            safety.clamp(0.0, 1.0)
        } else {
            1.0
        };
        Self {
            safety,
            window: window.max(Duration::from_millis(1)),
            venue: "unknown".to_owned(),
            name: "weight".to_owned(),
            state: Mutex::new(State {
                limit,
                budget: budget_of(limit, safety),
                window_start: Instant::now(),
                used: 0,
                paused_until: None,
            }),
            changed: Notify::new(),
        }
    }

    /// Changes the venue limit per window to `limit` (the budget becomes `limit × safety`,
    /// at least 1) and returns the previous limit. Atomic with respect to every reserve:
    /// weight already used in the current window still counts, and every waiter is woken
    /// to re-check against the new budget, so a raised limit lets waiters through at once
    /// and a lowered one holds new requests back within the current window.
    pub fn set_limit(&self, limit: u32) -> u32 {
        let (old, budget) = {
            let mut st = lock(&self.state);
            let old = st.limit;
            st.limit = limit;
            st.budget = budget_of(limit, self.safety);
            (old, st.budget)
        };
        metrics::gauge!(METRIC_WEIGHT_BUDGET, "venue" => self.venue.clone(), "limiter" => self.name.clone())
            .set(f64::from(budget));
        self.changed.notify_waiters();
        old
    }

    /// Sets the `venue` and `limiter` metric labels (e.g. `binanceus`, `weight`/`orders`).
    #[must_use]
    pub fn with_labels(mut self, venue: &str, limiter: &str) -> Self {
        venue.clone_into(&mut self.venue);
        limiter.clone_into(&mut self.name);
        metrics::gauge!(METRIC_WEIGHT_BUDGET, "venue" => self.venue.clone(), "limiter" => self.name.clone())
            .set(f64::from(self.budget()));
        self
    }

    /// The venue's documented limit per window (as last set).
    #[must_use]
    pub fn limit(&self) -> u32 {
        lock(&self.state).limit
    }

    /// The weight this limiter spends per window (limit × safety).
    #[must_use]
    pub fn budget(&self) -> u32 {
        lock(&self.state).budget
    }

    /// Waits until `weight` fits in the current window and no pause or ban is in force, then
    /// reserves it. Cancel-safe: nothing is reserved until it returns.
    ///
    /// A request heavier than the whole budget passes alone at the start of a fresh window
    /// rather than waiting forever.
    pub async fn acquire(&self, weight: u32) {
        let started = Instant::now();
        let mut waited = false;
        loop {
            // Registered before the check, so a limit change between the check and the
            // sleep still wakes this waiter.
            let changed = self.changed.notified();
            let next = {
                let mut st = lock(&self.state);
                self.reserve(&mut st, weight, Instant::now())
            };
            match next {
                Ok(()) => break,
                Err(until) => {
                    waited = true;
                    tokio::select! {
                        () = tokio::time::sleep_until(until) => {}
                        () = changed => {}
                    }
                }
            }
        }
        if waited {
            self.record_wait(started.elapsed());
        }
    }

    /// Like [`Self::acquire`], but gives up when the weight cannot be reserved within
    /// `max_wait`.
    ///
    /// # Errors
    /// Returns how long from now the caller would have had to wait (until the pause, ban or
    /// window ends). Nothing is reserved then.
    pub async fn acquire_within(&self, weight: u32, max_wait: Duration) -> Result<(), Duration> {
        let started = Instant::now();
        let deadline = started + max_wait;
        let mut waited = false;
        loop {
            let now = Instant::now();
            let changed = self.changed.notified();
            let next = {
                let mut st = lock(&self.state);
                self.reserve(&mut st, weight, now)
            };
            match next {
                Ok(()) => break,
                Err(until) if until > deadline => {
                    return Err(until.saturating_duration_since(now));
                }
                Err(until) => {
                    waited = true;
                    tokio::select! {
                        () = tokio::time::sleep_until(until) => {}
                        () = changed => {}
                    }
                }
            }
        }
        if waited {
            self.record_wait(started.elapsed());
        }
        Ok(())
    }

    /// Reserves `weight` now if possible.
    ///
    /// # Errors
    /// Returns how long until it could be reserved. Nothing is reserved then.
    pub fn try_acquire(&self, weight: u32) -> Result<(), Duration> {
        let now = Instant::now();
        let mut st = lock(&self.state);
        self.reserve(&mut st, weight, now)
            .map_err(|until| until.saturating_duration_since(now))
    }

    /// Syncs with the venue's used-weight header (e.g. `X-MBX-USED-WEIGHT-1M`): the local
    /// estimate becomes `max(local, used)`. A lower venue figure is ignored, because our
    /// window may have started later than the venue's and under-counting risks a 429.
    pub fn observe_used(&self, used: u32) {
        let now = Instant::now();
        let mut st = lock(&self.state);
        self.roll(&mut st, now);
        if used > st.used {
            st.used = used;
            self.set_used_gauge(st.used);
        }
    }

    /// The venue answered 429 with `Retry-After: d`: no request may be sent for `d`.
    /// Extends, never shortens, a pause already in force.
    pub fn pause_for(&self, d: Duration) {
        self.block_until(Instant::now() + d, "pause");
    }

    /// The venue banned us (418) until `until`: no request may be sent before then.
    /// Extends, never shortens, a pause already in force.
    pub fn ban_until(&self, until: Instant) {
        self.block_until(until, "ban");
    }

    /// Weight used in the current window (local estimate, corrected by headers).
    #[must_use]
    pub fn used(&self) -> u32 {
        let mut st = lock(&self.state);
        self.roll(&mut st, Instant::now());
        st.used
    }

    /// When the current pause or ban ends, if one is in force.
    #[must_use]
    pub fn paused_until(&self) -> Option<Instant> {
        let st = lock(&self.state);
        st.paused_until.filter(|&p| p > Instant::now())
    }

    fn block_until(&self, until: Instant, kind: &'static str) {
        {
            let mut st = lock(&self.state);
            st.paused_until = Some(st.paused_until.map_or(until, |p| p.max(until)));
        }
        metrics::counter!(METRIC_PAUSES, "venue" => self.venue.clone(), "limiter" => self.name.clone(), "kind" => kind)
            .increment(1);
        tracing::warn!(venue = %self.venue, limiter = %self.name, kind, in_ms = until.saturating_duration_since(Instant::now()).as_millis(), "venue imposed a pause on requests");
    }

    /// Starts a new window when the current one is over.
    fn roll(&self, st: &mut State, now: Instant) {
        if now >= st.window_start + self.window {
            st.window_start = now;
            st.used = 0;
            self.set_used_gauge(0);
        }
    }

    /// Reserves `weight` or says until when to wait.
    fn reserve(&self, st: &mut State, weight: u32, now: Instant) -> Result<(), Instant> {
        if let Some(p) = st.paused_until {
            if now < p {
                return Err(p);
            }
            st.paused_until = None;
        }
        self.roll(st, now);
        if st.used.saturating_add(weight) <= st.budget || st.used == 0 {
            st.used = st.used.saturating_add(weight);
            self.set_used_gauge(st.used);
            Ok(())
        } else {
            Err(st.window_start + self.window)
        }
    }

    fn set_used_gauge(&self, used: u32) {
        metrics::gauge!(METRIC_WEIGHT_USED, "venue" => self.venue.clone(), "limiter" => self.name.clone())
            .set(f64::from(used));
    }

    fn record_wait(&self, waited: Duration) {
        metrics::histogram!(METRIC_WAIT, "venue" => self.venue.clone(), "limiter" => self.name.clone())
            .record(waited.as_secs_f64());
    }
}

/// `limit × safety`, rounded down, at least 1.
fn budget_of(limit: u32, safety: f64) -> u32 {
    // `limit` is at most u32::MAX and safety is clamped to 0..=1, so the product fits.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "0 <= limit * safety <= u32::MAX after the clamp in `new`"
    )]
    let budget = (f64::from(limit) * safety).floor() as u32;
    budget.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn spends_only_the_safety_fraction_then_waits_for_the_next_window() {
        let l = WeightLimiter::new(100, MIN, 0.9);
        assert_eq!(l.budget(), 90);
        let t0 = Instant::now();
        for _ in 0..9 {
            l.acquire(10).await;
        }
        assert_eq!(l.used(), 90);
        assert_eq!(Instant::now(), t0, "no wait while within budget");
        assert!(l.try_acquire(1).is_err());
        l.acquire(10).await;
        assert_eq!(Instant::now() - t0, MIN, "waited for the window to roll");
        assert_eq!(l.used(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn venue_header_raises_but_never_lowers_the_estimate() {
        let l = WeightLimiter::new(1200, MIN, 0.9);
        l.acquire(5).await;
        l.observe_used(1000);
        assert_eq!(l.used(), 1000);
        l.observe_used(3);
        assert_eq!(l.used(), 1000, "a lower venue figure is ignored");
        // 1000 + 80 = 1080 = budget: fits; one more does not.
        assert!(l.try_acquire(80).is_ok());
        let wait = l.try_acquire(1).unwrap_err();
        assert!(wait <= MIN && wait > Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_pause_blocks_every_request_until_it_elapses() {
        let l = WeightLimiter::new(1200, MIN, 0.9);
        let t0 = Instant::now();
        l.pause_for(Duration::from_secs(7));
        assert_eq!(l.paused_until(), Some(t0 + Duration::from_secs(7)));
        // Even the lightest request, with the whole budget free, must wait.
        assert_eq!(l.try_acquire(1), Err(Duration::from_secs(7)));
        assert_eq!(
            l.acquire_within(1, Duration::from_secs(1)).await,
            Err(Duration::from_secs(7))
        );
        l.acquire(1).await;
        assert_eq!(Instant::now() - t0, Duration::from_secs(7));
        assert_eq!(l.paused_until(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_shorter_pause_never_shortens_a_ban() {
        let l = WeightLimiter::new(1200, MIN, 0.9);
        let t0 = Instant::now();
        l.ban_until(t0 + Duration::from_secs(120));
        l.pause_for(Duration::from_secs(1));
        assert_eq!(l.paused_until(), Some(t0 + Duration::from_secs(120)));
        // Many concurrent waiters all stay blocked until the ban ends.
        let l = std::sync::Arc::new(l);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let l = l.clone();
            set.spawn(async move {
                l.acquire(1).await;
                Instant::now()
            });
        }
        while let Some(t) = set.join_next().await {
            assert!(t.unwrap() >= t0 + Duration::from_secs(120));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_within_waits_when_the_window_rolls_in_time() {
        let l = WeightLimiter::new(10, Duration::from_secs(1), 1.0);
        l.acquire(10).await;
        assert!(
            l.acquire_within(5, Duration::from_millis(100))
                .await
                .is_err()
        );
        assert!(l.acquire_within(5, Duration::from_secs(2)).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn an_oversized_request_passes_alone_in_a_fresh_window() {
        let l = WeightLimiter::new(10, MIN, 0.9);
        l.acquire(50).await;
        assert_eq!(l.used(), 50);
    }

    #[tokio::test(start_paused = true)]
    async fn a_raised_limit_wakes_waiters_at_once_and_a_lowered_one_holds_requests() {
        let l = std::sync::Arc::new(WeightLimiter::new(10, MIN, 1.0));
        let t0 = Instant::now();
        l.acquire(10).await;
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..5 {
            let l = l.clone();
            set.spawn(async move {
                l.acquire(2).await;
                Instant::now()
            });
        }
        // Let every waiter reach its sleep until the end of the window.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(l.used(), 10, "nobody passed the full budget");
        assert_eq!(l.set_limit(20), 10);
        assert_eq!(l.budget(), 20);
        while let Some(t) = set.join_next().await {
            assert!(
                t.unwrap() < t0 + MIN,
                "woken by the raised limit, not the window"
            );
        }
        assert_eq!(l.used(), 20, "no waiter lost, none reserved twice");
        l.set_limit(5);
        assert_eq!(l.budget(), 5);
        assert!(
            l.try_acquire(1).is_err(),
            "used weight counts against the lower budget"
        );
    }

    #[test]
    fn odd_safety_values_are_clamped() {
        assert_eq!(WeightLimiter::new(100, MIN, 2.0).budget(), 100);
        assert_eq!(WeightLimiter::new(100, MIN, f64::NAN).budget(), 100);
        assert_eq!(WeightLimiter::new(100, MIN, -1.0).budget(), 1);
    }
}
