//! The state every Binance.US simulator task shares.
//!
//! REST handlers, websocket connections, the market ticker and the in-process handle all
//! hold an `Arc<Shared>`. Each piece of state has the cheapest synchronisation that keeps
//! it correct: the venue and the limiter are `std::sync::Mutex`es held only for
//! synchronous work (never across an `.await`); the clock, the market switch, the faults
//! and the counters are the harness's atomics (see [`crate::harness`]).
//!
//! This is also where the harness meets the protocol: [`FaultHooks`] sends rate-limit
//! faults to the Binance limiter and gap faults to the engine, and [`AdminControl`]
//! gives the generic admin API its view of this simulator.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rust_decimal::Decimal;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::config::{SimConfig, SimKeyAuth};
use super::encode::{MarketEvent, Sinks, UserEvent};
use super::limits::Limits;
use super::venue::Venue;
use crate::engine::{BalanceLine, BookSnapshot, SimOrder};
use crate::harness::{AdminControl, Fault, FaultHooks, Harness, MarketSwitch, SimClock, SimStats};

/// Capacity of the event channels. A websocket that falls this far behind is closed,
/// like a slow consumer on the real venue.
const EVENT_CAPACITY: usize = 8192;

/// Everything the simulator's tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Clock, market switch, faults, counters, cancellation.
    pub(crate) harness: Harness,
    /// Known API keys and how to verify them.
    pub(crate) keys: HashMap<String, SimKeyAuth>,
    venue: Mutex<Venue>,
    limits: Mutex<Limits>,
    /// Market events.
    pub(crate) market_tx: broadcast::Sender<Arc<MarketEvent>>,
    /// User-data events.
    pub(crate) user_tx: broadcast::Sender<Arc<UserEvent>>,
    /// Websocket ping period.
    pub(crate) ping_interval: Duration,
}

impl Shared {
    /// Builds the shared state from a validated config.
    pub(crate) fn new(cfg: &SimConfig, cancel: CancellationToken) -> Self {
        let (market_tx, _) = broadcast::channel(EVENT_CAPACITY);
        let (user_tx, _) = broadcast::channel(EVENT_CAPACITY);
        let sinks = Sinks {
            market: market_tx.clone(),
            user: user_tx.clone(),
        };
        Self {
            harness: Harness::new(cancel),
            keys: cfg
                .api_keys
                .iter()
                .map(|k| (k.api_key.clone(), k.auth.clone()))
                .collect(),
            venue: Mutex::new(Venue::new(cfg, sinks)),
            limits: Mutex::new(Limits::new(cfg.weight_limit_per_minute, cfg.orders_per_10s)),
            market_tx,
            user_tx,
            ping_interval: cfg.ws_ping_interval,
        }
    }

    /// The venue, locked. Poisoning is ignored: no critical section can leave the venue
    /// half-updated in a way that a panic elsewhere would make worse, and the simulator
    /// must keep answering.
    pub(crate) fn venue(&self) -> MutexGuard<'_, Venue> {
        self.venue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The limiter, locked.
    pub(crate) fn limits(&self) -> MutexGuard<'_, Limits> {
        self.limits.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Venue time in ms: wall clock plus the injected skew.
    pub(crate) fn now_ms(&self) -> i64 {
        self.harness.clock.now_ms()
    }

    /// Applies a fault. Returns `false` when it names an unknown symbol.
    pub(crate) fn inject(&self, fault: Fault) -> bool {
        tracing::info!(?fault, "sim-binanceus: injecting fault");
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
        self.limits().ban(duration);
    }

    fn depth_gap(&self, symbol: &str) -> bool {
        let mut v = self.venue();
        match v.symbol_idx(symbol) {
            Ok(idx) => {
                v.request_gap(idx);
                true
            }
            Err(_) => false,
        }
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
        let idx = v.symbol_idx(symbol).ok()?;
        Some(v.trade_through(idx, price, qty, now))
    }

    fn book(&self, symbol: &str) -> Option<BookSnapshot> {
        let v = self.venue();
        let idx = v.symbol_idx(symbol).ok()?;
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
