//! The simulator's shared state: the venue behind its one lock, the harness, the
//! transaction feed and the REST limiter.
//!
//! Every task (REST handlers, stream connections, the market ticker) holds an
//! `Arc<Shared>`. The venue sits behind one `std::sync::Mutex` that no critical section
//! holds across an await (see the engine's module docs): a transaction is published on
//! the `broadcast` feed *while* the lock is held, so the transaction stream can never
//! show a transaction out of order, or after an answer that mentions a later one. The
//! limiter is its own tiny mutex so a 429 never waits on the venue lock.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rust_decimal::Decimal;
use serde_json::Value;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::SimConfig;
use super::venue::Venue;
use crate::engine::{BalanceLine, BookSnapshot, SimOrder};
use crate::harness::fault::deadline;
use crate::harness::{AdminControl, Fault, FaultHooks, Harness, MarketSwitch, SimClock, SimStats};

/// How many transactions the feed buffers for a slow stream before that stream is ended
/// (the client then catches up through `/changes`).
const FEED_CAPACITY: usize = 4096;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The REST limiter: fixed one-second windows plus an injected storm.
#[derive(Debug, Default)]
struct Limiter {
    window_s: i64,
    count: u32,
    storm_until: Option<Instant>,
}

/// State shared by every task of one simulator.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) cfg: SimConfig,
    venue: Mutex<Venue>,
    pub(crate) harness: Harness,
    pub(crate) feed: broadcast::Sender<Value>,
    limiter: Mutex<Limiter>,
    request_ids: std::sync::atomic::AtomicU64,
    /// The `sinceTransactionID` of every `/changes` request answered, oldest first.
    changes_since: Mutex<Vec<u64>>,
}

impl Shared {
    /// Fresh state for a validated config.
    pub(crate) fn new(cfg: &SimConfig, cancel: CancellationToken) -> Self {
        let harness = Harness::new(cancel);
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        let now = now_ns(&harness.clock);
        Self {
            venue: Mutex::new(Venue::new(cfg, now, feed.clone())),
            cfg: cfg.clone(),
            harness,
            feed,
            limiter: Mutex::new(Limiter::default()),
            request_ids: std::sync::atomic::AtomicU64::new(1),
            changes_since: Mutex::new(Vec::new()),
        }
    }

    /// The venue, locked.
    pub(crate) fn venue(&self) -> MutexGuard<'_, Venue> {
        lock(&self.venue)
    }

    /// Venue time in nanoseconds (wall clock plus the injected skew).
    pub(crate) fn now_ns(&self) -> i128 {
        now_ns(&self.harness.clock)
    }

    /// Records a `/changes?sinceTransactionID=since` request.
    pub(crate) fn saw_changes(&self, since: u64) {
        lock(&self.changes_since).push(since);
    }

    /// The `sinceTransactionID` of every `/changes` request answered so far.
    pub(crate) fn changes_requests(&self) -> Vec<u64> {
        lock(&self.changes_since).clone()
    }

    /// The next `RequestID` header value.
    pub(crate) fn request_id(&self) -> u64 {
        self.request_ids
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts a REST request against the limit; `false` means answer 429.
    pub(crate) fn admit(&self) -> bool {
        let mut l = lock(&self.limiter);
        if l.storm_until.is_some_and(|u| Instant::now() < u) {
            return false;
        }
        let window = self.harness.clock.now_ms().div_euclid(1000);
        if l.window_s != window {
            l.window_s = window;
            l.count = 0;
        }
        l.count += 1;
        l.count <= self.cfg.rest_rate_per_s
    }

    /// Applies a fault.
    pub(crate) fn inject(&self, fault: Fault) -> bool {
        tracing::info!(?fault, "sim-oanda: injecting fault");
        self.harness.faults.inject(fault, self)
    }

    /// One market tick now.
    pub(crate) fn tick_market(&self) {
        let now = self.now_ns();
        self.venue().tick(now);
    }

    /// A snapshot of all counters.
    pub(crate) fn stats(&self) -> SimStats {
        let v = self.venue();
        let mut s = self.harness.stats.snapshot(v.counters());
        s.orders_rejected += v.rejected();
        s
    }
}

/// `clock` in nanoseconds: wall-clock nanoseconds plus the skew (in ms).
fn now_ns(clock: &SimClock) -> i128 {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(0));
    wall + i128::from(clock.skew()) * 1_000_000
}

impl FaultHooks for Shared {
    fn rate_limit_storm(&self, duration: Duration) {
        let until = deadline(duration);
        let mut l = lock(&self.limiter);
        l.storm_until = Some(l.storm_until.map_or(until, |u| u.max(until)));
    }

    fn ban(&self, duration: Duration) {
        // OANDA documents no ban; the closest venue behaviour is a 429 storm.
        self.rate_limit_storm(duration);
    }

    fn depth_gap(&self, symbol: &str) -> bool {
        // OANDA prices are not sequenced: nothing to skip, but the name is checked.
        self.venue().instrument(symbol).is_some()
    }
}

impl AdminControl for Shared {
    fn inject(&self, fault: Fault) -> bool {
        Shared::inject(self, fault)
    }

    fn clock(&self) -> &SimClock {
        &self.harness.clock
    }

    fn market(&self) -> &MarketSwitch {
        &self.harness.market
    }

    fn trade_through(&self, symbol: &str, price: Decimal, qty: Decimal) -> Option<Decimal> {
        let now = self.now_ns();
        self.venue().trade_through(symbol, price, qty, now)
    }

    fn book(&self, symbol: &str) -> Option<BookSnapshot> {
        self.venue().book(symbol)
    }

    fn orders(&self) -> Vec<SimOrder> {
        self.venue().engine_orders()
    }

    fn balances(&self, _account: &str) -> Vec<BalanceLine> {
        // A margin account has one cash balance; the engine's spot ledger behind it is
        // an implementation detail, so the admin API shows the balance in the home
        // currency (free = balance, locked = margin used).
        let v = self.venue();
        let (_, used, _, _) = v.figures();
        let balance = v
            .summary()
            .get("balance")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .unwrap_or_default();
        vec![(self.cfg.currency.clone(), balance, used)]
    }

    fn stats(&self) -> SimStats {
        Shared::stats(self)
    }
}
