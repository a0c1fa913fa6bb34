//! The state every simulator task shares, and the one place faults are dispatched.
//!
//! REST handlers, websocket connections, the market ticker and the in-process handle all
//! hold an `Arc<Shared>`. Each piece of state has the cheapest synchronisation that keeps
//! it correct: the venue and the limiter are `std::sync::Mutex`es held only for
//! synchronous work (never across an `.await`), counters and one-shot faults are atomics,
//! the websocket "drop everything" signal is a `watch` generation counter (a `Notify`
//! would miss connections that are busy sending when it fires).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::config::{SimConfig, SimKeyAuth};
use super::fault::{Fault, FaultState};
use super::limits::Limits;
use super::types::SimStats;
use super::venue::{MarketEvent, Sinks, UserEvent, Venue};

/// Capacity of the event channels. A websocket that falls this far behind is closed,
/// like a slow consumer on the real venue.
const EVENT_CAPACITY: usize = 8192;

/// Counters that live outside the venue lock (see [`SimStats`] for their meaning).
#[derive(Debug, Default)]
pub struct Stats {
    /// [`SimStats::rest_requests`].
    pub rest_requests: AtomicU64,
    /// [`SimStats::http_429`].
    pub http_429: AtomicU64,
    /// [`SimStats::http_418`].
    pub http_418: AtomicU64,
    /// [`SimStats::http_503`].
    pub http_503: AtomicU64,
    /// [`SimStats::rest_errors`].
    pub rest_errors: AtomicU64,
    /// [`SimStats::timestamp_errors`].
    pub timestamp_errors: AtomicU64,
    /// [`SimStats::orders_rejected`].
    pub orders_rejected: AtomicU64,
    /// [`SimStats::order_responses_delayed`].
    pub order_responses_delayed: AtomicU64,
    /// [`SimStats::ws_connections`].
    pub ws_connections: AtomicU64,
    /// [`SimStats::ws_open`].
    pub ws_open: AtomicU64,
    /// [`SimStats::ws_messages_sent`].
    pub ws_messages_sent: AtomicU64,
}

/// Adds one to a counter.
pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Everything the simulator's tasks share.
#[derive(Debug)]
pub struct Shared {
    /// Known API keys and how to verify them.
    pub keys: HashMap<String, SimKeyAuth>,
    venue: Mutex<Venue>,
    limits: Mutex<Limits>,
    /// One-shot and timed faults.
    pub faults: FaultState,
    skew_ms: AtomicI64,
    paused: AtomicBool,
    /// Counters.
    pub stats: Stats,
    /// Generation counter; every change closes all websockets.
    pub ws_drop: watch::Sender<u64>,
    /// Market events.
    pub market_tx: broadcast::Sender<Arc<MarketEvent>>,
    /// User-data events.
    pub user_tx: broadcast::Sender<Arc<UserEvent>>,
    /// Root of the simulator's shutdown tree.
    pub cancel: CancellationToken,
    /// Websocket ping period.
    pub ping_interval: Duration,
}

impl Shared {
    /// Builds the shared state from a validated config.
    #[must_use]
    pub fn new(cfg: &SimConfig, cancel: CancellationToken) -> Self {
        let (market_tx, _) = broadcast::channel(EVENT_CAPACITY);
        let (user_tx, _) = broadcast::channel(EVENT_CAPACITY);
        let sinks = Sinks {
            market: market_tx.clone(),
            user: user_tx.clone(),
        };
        Self {
            keys: cfg
                .api_keys
                .iter()
                .map(|k| (k.api_key.clone(), k.auth.clone()))
                .collect(),
            venue: Mutex::new(Venue::new(cfg, sinks)),
            limits: Mutex::new(Limits::new(cfg.weight_limit_per_minute, cfg.orders_per_10s)),
            faults: FaultState::default(),
            skew_ms: AtomicI64::new(0),
            paused: AtomicBool::new(false),
            stats: Stats::default(),
            ws_drop: watch::Sender::new(0),
            market_tx,
            user_tx,
            cancel,
            ping_interval: cfg.ws_ping_interval,
        }
    }

    /// The venue, locked. Poisoning is ignored: no critical section can leave the venue
    /// half-updated in a way that a panic elsewhere would make worse, and the simulator
    /// must keep answering.
    pub fn venue(&self) -> MutexGuard<'_, Venue> {
        self.venue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The limiter, locked.
    pub fn limits(&self) -> MutexGuard<'_, Limits> {
        self.limits.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Venue time in ms: wall clock plus the injected skew.
    #[must_use]
    pub fn now_ms(&self) -> i64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2));
        wall + self.skew_ms.load(Ordering::Relaxed)
    }

    /// Sets the venue clock skew.
    pub fn set_skew(&self, ms: i64) {
        self.skew_ms.store(ms, Ordering::Relaxed);
    }

    /// The venue clock skew.
    #[must_use]
    pub fn skew(&self) -> i64 {
        self.skew_ms.load(Ordering::Relaxed)
    }

    /// Pauses or resumes the market generator.
    pub fn set_paused(&self, p: bool) {
        self.paused.store(p, Ordering::Relaxed);
    }

    /// `true` while the market generator is paused.
    #[must_use]
    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// Applies a fault. Returns `false` when it names an unknown symbol.
    pub fn inject(&self, fault: Fault) -> bool {
        tracing::info!(?fault, "sim-binanceus: injecting fault");
        match fault {
            Fault::RateLimitStorm { duration } => self.limits().storm(duration),
            Fault::Ban { duration } => self.limits().ban(duration),
            Fault::OrderTimeout => self.faults.add_order_timeout(),
            Fault::ServerErrors { count } => self.faults.add_server_errors(count),
            Fault::DropWebSockets => {
                self.ws_drop.send_modify(|g| *g = g.wrapping_add(1));
            }
            Fault::DepthGap { symbol } => {
                let mut v = self.venue();
                match v.symbol_idx(&symbol) {
                    Ok(idx) => v.request_gap(idx),
                    Err(_) => return false,
                }
            }
            Fault::SilentStreams { duration } => self.faults.silence_for(duration),
            Fault::MalformedNext { count } => self.faults.add_malformed(count),
        }
        true
    }

    /// A snapshot of all counters.
    #[must_use]
    pub fn stats(&self) -> SimStats {
        let c = self.venue().counters();
        let s = &self.stats;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SimStats {
            rest_requests: get(&s.rest_requests),
            http_429: get(&s.http_429),
            http_418: get(&s.http_418),
            http_503: get(&s.http_503),
            rest_errors: get(&s.rest_errors),
            timestamp_errors: get(&s.timestamp_errors),
            orders_accepted: c.accepted,
            orders_rejected: get(&s.orders_rejected),
            orders_canceled: c.canceled,
            fills: c.fills,
            order_responses_delayed: get(&s.order_responses_delayed),
            ws_connections: get(&s.ws_connections),
            ws_open: get(&s.ws_open),
            ws_messages_sent: get(&s.ws_messages_sent),
            depth_updates: c.depth_updates,
        }
    }
}
