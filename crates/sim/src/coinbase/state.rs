//! The state every Coinbase simulator task shares, and the rate limiter.
//!
//! Same shape as the Binance.US simulator: the venue, the JWT verifier and the limiter
//! are `std::sync::Mutex`es held only for synchronous work; clock, faults and counters
//! are the harness's atomics. [`FaultHooks`] routes the harness's rate-limit faults to
//! this limiter (Coinbase has no documented IP ban, so a `Ban` is a 429 storm here) and
//! gap faults to the websocket encoder (a mark on the product's next `l2_data` update);
//! [`AdminControl`] gives the generic `/sim/admin/` API its view. The websocket event
//! channel is a `broadcast`: every connection filters the same numbered stream for its
//! own subscriptions, and a send never blocks the engine lock it runs under.
//!
//! Rate limits (reference 1.5): about 30 private requests per second per key and 10 public
//! requests per second, counted in windows aligned to whole venue-clock seconds, so
//! `x-ratelimit-reset` is the epoch second at which the current window ends (the
//! reference leaves its exact semantics unconfirmed; a client that waits until then is
//! always right).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rust_decimal::Decimal;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::auth::{Rules, Verifier};
use super::config::SimConfig;
use super::encode::{CbEvent, Sinks};
use super::venue::Venue;
use crate::engine::{BalanceLine, BookSnapshot, SimOrder};
use crate::harness::{AdminControl, Fault, FaultHooks, Harness, MarketSwitch, SimClock, SimStats};

/// Capacity of the websocket event channel. A connection that falls this far behind is
/// closed, like a slow consumer on the real venue.
const EVENT_CAPACITY: usize = 8192;

/// What the limiter says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateInfo {
    /// The limit of the bucket.
    pub(crate) limit: u32,
    /// Requests left in the current window.
    pub(crate) remaining: u32,
    /// Epoch second at which the window resets.
    pub(crate) reset: i64,
    /// `false` when the request is refused (429).
    pub(crate) allowed: bool,
}

/// Per-second request windows and the storm deadline.
#[derive(Debug)]
pub(crate) struct Limits {
    private_limit: u32,
    public_limit: u32,
    /// bucket ("public" or a key name) -> (window second, count).
    windows: HashMap<String, (i64, u32)>,
    storm_until: Option<Instant>,
    /// The reset (epoch second) the last 429 announced, for public `[0]` and private
    /// `[1]` requests: a request of that class arriving before it is a violation
    /// ([`SimStats::rate_limit_violations`]). Per class rather than per key: a test
    /// registers one key per simulator.
    announced: [Option<i64>; 2],
}

/// How far before an announced reset a request may arrive without counting as a
/// violation: the client waits on its estimate of the venue clock.
const VIOLATION_TOLERANCE_MS: i64 = 100;

impl Limits {
    fn new(private_limit: u32, public_limit: u32) -> Self {
        Self {
            private_limit,
            public_limit,
            windows: HashMap::new(),
            storm_until: None,
            announced: [None, None],
        }
    }

    fn storm(&mut self, d: Duration) {
        let until = Instant::now() + d;
        self.storm_until = Some(self.storm_until.map_or(until, |u| u.max(until)));
    }

    /// Records that a 429 told `private` requests to wait until `reset` (epoch second).
    pub(crate) fn announce(&mut self, private: bool, reset: i64) {
        let slot = &mut self.announced[usize::from(private)];
        *slot = Some(slot.map_or(reset, |r| r.max(reset)));
    }

    /// Whether a `private` request arriving at `now_ms` is inside an announced window.
    pub(crate) fn arrived_early(&self, private: bool, now_ms: i64) -> bool {
        self.announced[usize::from(private)]
            .is_some_and(|reset| now_ms < reset * 1000 - VIOLATION_TOLERANCE_MS)
    }

    /// While a storm lasts, the refusal every request gets (whole bucket used up).
    pub(crate) fn storm_verdict(&self, now_ms: i64, private: bool) -> Option<RateInfo> {
        let until = self.storm_until?;
        let left = until.checked_duration_since(Instant::now())?;
        // The first whole second at or after the storm's end, so that a client that waits
        // for the announced reset is not refused again.
        let left_ms = i64::try_from(left.as_millis()).unwrap_or(i64::MAX / 4);
        Some(RateInfo {
            limit: if private {
                self.private_limit
            } else {
                self.public_limit
            },
            remaining: 0,
            reset: (now_ms + left_ms + 999)
                .div_euclid(1000)
                .max(now_ms.div_euclid(1000) + 1),
            allowed: false,
        })
    }

    /// Counts one request of `bucket` (a key name, or `None` for public).
    pub(crate) fn admit(&mut self, bucket: Option<&str>, now_ms: i64) -> RateInfo {
        let sec = now_ms.div_euclid(1000);
        let limit = if bucket.is_some() {
            self.private_limit
        } else {
            self.public_limit
        };
        let w = self
            .windows
            .entry(bucket.unwrap_or("").to_owned())
            .or_insert((sec, 0));
        if w.0 != sec {
            *w = (sec, 0);
        }
        let allowed = w.1 < limit;
        if allowed {
            w.1 += 1;
        }
        RateInfo {
            limit,
            remaining: limit - w.1,
            reset: sec + 1,
            allowed,
        }
    }
}

/// Everything the simulator's tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Clock, market switch, faults, counters, cancellation.
    pub(crate) harness: Harness,
    venue: Mutex<Venue>,
    verifier: Mutex<Verifier>,
    limits: Mutex<Limits>,
    /// JWT rules.
    pub(crate) rules: Rules,
    /// List page sizes (default, max).
    pub(crate) page: (usize, usize),
    /// Every engine change, numbered, for the websocket connections (fed under the venue
    /// lock by the engine's sink).
    pub(crate) events: broadcast::Sender<Arc<CbEvent>>,
    /// How long a websocket may go without a successful subscribe.
    pub(crate) ws_subscribe_timeout: Duration,
    /// Period of the `heartbeats` channel.
    pub(crate) ws_heartbeat_interval: Duration,
    /// Period of the `ticker_batch` channel.
    pub(crate) ws_ticker_batch_interval: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Builds the shared state from a validated config.
    ///
    /// # Errors
    /// A key that does not parse (validation already refused it).
    pub(crate) fn new(cfg: &SimConfig, cancel: CancellationToken) -> std::io::Result<Self> {
        let mut keys = Vec::new();
        for k in &cfg.api_keys {
            let pk = super::auth::PublicKey::from_pem(&k.public_key_pem)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            keys.push((k.name.clone(), pk));
        }
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let sinks = Sinks::new(events.clone(), &cfg.products);
        Ok(Self {
            harness: Harness::new(cancel),
            venue: Mutex::new(Venue::new(cfg, sinks)),
            verifier: Mutex::new(Verifier::new(keys)),
            limits: Mutex::new(Limits::new(cfg.private_rate_per_s, cfg.public_rate_per_s)),
            rules: Rules {
                nbf_leeway_s: cfg.nbf_leeway_s,
                accept_legacy_issuer: cfg.accept_legacy_issuer,
                reject_reused_nonces: cfg.reject_reused_nonces,
            },
            page: (cfg.default_page_size, cfg.max_page_size),
            events,
            ws_subscribe_timeout: cfg.ws_subscribe_timeout,
            ws_heartbeat_interval: cfg.ws_heartbeat_interval,
            ws_ticker_batch_interval: cfg.ws_ticker_batch_interval,
        })
    }

    /// The venue, locked (poisoning ignored: the simulator must keep answering).
    pub(crate) fn venue(&self) -> MutexGuard<'_, Venue> {
        lock(&self.venue)
    }

    /// The JWT verifier, locked.
    pub(crate) fn verifier(&self) -> MutexGuard<'_, Verifier> {
        lock(&self.verifier)
    }

    /// The limiter, locked.
    pub(crate) fn limits(&self) -> MutexGuard<'_, Limits> {
        lock(&self.limits)
    }

    /// Venue time in ms (wall clock plus the injected skew).
    pub(crate) fn now_ms(&self) -> i64 {
        self.harness.clock.now_ms()
    }

    /// Applies a fault; `false` when it names an unknown product.
    pub(crate) fn inject(&self, fault: Fault) -> bool {
        tracing::info!(?fault, "sim-coinbase: injecting fault");
        self.harness.faults.inject(fault, self)
    }

    /// One market tick now.
    pub(crate) fn tick_market(&self) {
        let now = self.now_ms();
        self.venue().tick(now);
    }

    /// A snapshot of all counters.
    pub(crate) fn stats(&self) -> SimStats {
        let c = self.venue().counters();
        self.harness.stats.snapshot(c)
    }
}

impl FaultHooks for Shared {
    fn rate_limit_storm(&self, duration: Duration) {
        self.limits().storm(duration);
    }

    fn ban(&self, duration: Duration) {
        // Coinbase documents no ban; the closest venue behaviour is a 429 storm.
        self.limits().storm(duration);
    }

    fn depth_gap(&self, symbol: &str) -> bool {
        let mut v = self.venue();
        if v.product_idx(symbol).is_none() {
            return false;
        }
        v.request_gap(symbol);
        true
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
        let now = self.now_ms();
        let mut v = self.venue();
        let idx = v.product_idx(symbol)?;
        Some(v.trade_through(idx, price, qty, now))
    }

    fn book(&self, symbol: &str) -> Option<BookSnapshot> {
        let v = self.venue();
        let idx = v.product_idx(symbol)?;
        Some(v.depth(idx, usize::MAX))
    }

    fn orders(&self) -> Vec<SimOrder> {
        self.venue().all_orders()
    }

    fn balances(&self, account: &str) -> Vec<BalanceLine> {
        self.venue().balances(account)
    }

    fn stats(&self) -> SimStats {
        Shared::stats(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn windows_count_per_bucket_and_second() {
        let mut l = Limits::new(2, 1);
        let t = 1_700_000_000_500;
        assert!(l.admit(Some("k"), t).allowed);
        let second = l.admit(Some("k"), t);
        assert_eq!(
            (second.allowed, second.remaining, second.reset),
            (true, 0, 1_700_000_001)
        );
        assert!(!l.admit(Some("k"), t).allowed);
        assert!(l.admit(Some("other"), t).allowed);
        assert!(l.admit(None, t).allowed);
        assert!(!l.admit(None, t).allowed);
        assert!(
            l.admit(Some("k"), t + 600).allowed,
            "a new second opens a new window"
        );
        assert!(l.storm_verdict(t, true).is_none());
        l.storm(Duration::from_secs(3));
        let s = l.storm_verdict(t, true).expect("storm");
        assert_eq!((s.allowed, s.remaining, s.limit), (false, 0, 2));
        assert!(s.reset >= 1_700_000_001);
    }
}
