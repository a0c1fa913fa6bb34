//! A protocol-faithful Binance.US simulator: REST API, market streams, user-data stream.
//!
//! The real Binance.US gateway must run against this simulator *unmodified*, so every
//! path, parameter name, JSON field, decimal-as-string, error code and HTTP status follows
//! the venue reference (§2 of `venues-and-services.md`): HMAC-SHA256 (and Ed25519)
//! signatures over `totalParams`, the `timestamp`/`recvWindow` rule, request weight with
//! `X-MBX-USED-WEIGHT-1M`, 429 → 418 escalation, order-count limits, exchange filters,
//! ACK/RESULT/FULL order responses, `executionReport`/`outboundAccountPosition` events,
//! and diff-depth streams whose `U`/`u` ids let a client rebuild the book from a REST
//! snapshot.
//!
//! This module is the *protocol* layer only: REST routes, signing, weights and limits,
//! wire JSON, websocket streams, listen keys and error codes. What the venue does (books,
//! accounts, matching, the market generator) is the neutral [`crate::engine`], whose
//! events the `encode` module puts on the wire; faults, clock skew, market pause,
//! stats, the admin API and start/shutdown are the shared [`crate::harness`].
//!
//! Start it with [`SimBinanceUs::start`]; the returned [`SimHandle`] gives the URLs and
//! in-process control (faults, clock skew, market pause, synthetic trades, inspection).
//! The same controls are served over HTTP under `/sim/admin/` on the REST listener (see
//! [`crate::harness::admin`] for the JSON shapes), for simulators in another process.
//!
//! Deliberate simplifications, all documented where they are made: one shared "IP" for
//! all clients; rate-limit windows aligned to simulator start; only LIMIT and MARKET
//! orders; user orders trade only against synthetic liquidity and [`SimHandle::trade_through`],
//! never against each other; `@depth` and `@depth@100ms` both carry every diff at tick
//! granularity.

mod admin;
mod config;
mod encode;
mod error;
mod limits;
mod listen_key;
mod orders;
mod params;
mod rest;
mod signing;
mod state;
mod types;
mod venue;
mod wire;
mod ws;

use std::net::SocketAddr;
use std::sync::Arc;

use rust_decimal::Decimal;

pub use crate::engine::SymbolMarket;
pub use crate::harness::Fault;
pub use config::{SimApiKey, SimConfig, SimKeyAuth, SimSymbol};
pub use error::{ApiError, SimError};
pub use signing::hmac_hex;
pub use types::{
    BookSnapshot, Level, SimFill, SimOrder, SimOrderStatus, SimOrderType, SimSide, SimStats,
    SimTimeInForce,
};

use crate::harness::server::{self, Lifecycle, SHUTDOWN_GRACE};
use state::Shared;

/// The Binance.US simulator (a namespace for [`SimBinanceUs::start`]).
#[derive(Debug, Clone, Copy)]
pub struct SimBinanceUs;

impl SimBinanceUs {
    /// Validates `cfg`, binds both listeners and starts the REST server, the websocket
    /// server and the market generator.
    ///
    /// # Errors
    /// `InvalidInput` when the config is invalid (the message lists every problem), or
    /// the bind error of a listener.
    pub async fn start(cfg: SimConfig) -> std::io::Result<SimHandle> {
        cfg.validate()?;
        let rest_listener = server::bind(cfg.rest_addr, "REST").await?;
        let ws_listener = server::bind(cfg.ws_addr, "websocket").await?;
        let rest_addr = rest_listener.local_addr()?;
        let ws_addr = ws_listener.local_addr()?;

        let lifecycle = Lifecycle::new("sim-binanceus");
        let shared = Arc::new(Shared::new(&cfg, lifecycle.token().clone()));

        let router = axum::Router::new()
            .merge(admin::router::<Shared>())
            .fallback(rest::api)
            .with_state(Arc::clone(&shared));
        lifecycle.serve_http(rest_listener, router);
        let app = Arc::clone(&shared);
        lifecycle.accept_loop(ws_listener, move |stream| {
            ws::connection(stream, Arc::clone(&app))
        });
        let (paused, ticked) = (Arc::clone(&shared), Arc::clone(&shared));
        lifecycle.ticker(
            cfg.tick_interval,
            move || paused.harness.market.paused(),
            move || ticked.tick_market(),
        );

        tracing::info!(%rest_addr, %ws_addr, seed = cfg.seed, "sim-binanceus: started");
        Ok(SimHandle {
            rest_url: format!("http://{}", server::connectable(rest_addr)),
            ws_url: format!("ws://{}", server::connectable(ws_addr)),
            rest_addr,
            ws_addr,
            shared,
            lifecycle,
        })
    }
}

/// One tick of the rate-controlled source ([`SimHandle::start_rate_ticks`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickStamp {
    /// The symbol the tick moved (e.g. `BTCUSD`).
    pub symbol: String,
    /// The tick's number since the source started, from 0.
    pub seq: u64,
    /// When the tick's events (depth diff, bookTicker, maybe a trade) had been handed to
    /// the websocket connections: wall clock, nanoseconds since the Unix epoch, without
    /// the injected clock skew.
    pub unix_ns: i64,
}

/// Wall clock in nanoseconds since the Unix epoch (0 before it).
fn unix_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// A running simulator. Dropping it stops everything (listeners, connections, the market
/// generator); [`SimHandle::shutdown`] does the same and waits for the tasks to end.
#[derive(Debug)]
pub struct SimHandle {
    /// Base URL of the REST API, e.g. `http://127.0.0.1:9100`.
    pub rest_url: String,
    /// Base URL of the websocket server, e.g. `ws://127.0.0.1:9101`.
    pub ws_url: String,
    /// Bound REST address.
    pub rest_addr: SocketAddr,
    /// Bound websocket address.
    pub ws_addr: SocketAddr,
    shared: Arc<Shared>,
    /// Cancels everything when dropped.
    lifecycle: Lifecycle,
}

impl SimHandle {
    /// Stops the simulator and waits (at most 5 s) for its tasks to finish.
    pub async fn shutdown(self) {
        self.lifecycle.shutdown(SHUTDOWN_GRACE).await;
    }

    /// Injects a fault (same effect as `POST /sim/admin/fault`). A `DepthGap` for an
    /// unknown symbol is ignored.
    pub fn inject(&self, fault: Fault) {
        if !self.shared.inject(fault) {
            tracing::warn!("sim-binanceus: fault names an unknown symbol; ignored");
        }
    }

    /// Sets the venue clock to wall clock + `skew_ms`.
    pub fn set_clock_skew(&self, skew_ms: i64) {
        self.shared.harness.clock.set_skew(skew_ms);
    }

    /// Venue time (ms since epoch), including the skew.
    #[must_use]
    pub fn server_time_ms(&self) -> i64 {
        self.shared.now_ms()
    }

    /// Pauses (no ticks at all) or resumes the market generator.
    pub fn set_market_paused(&self, paused: bool) {
        self.shared.harness.market.set_paused(paused);
    }

    /// Runs one market tick now, paused or not (for deterministic tests).
    pub fn tick_market(&self) {
        self.shared.tick_market();
    }

    /// The public (aggregated) book: `lastUpdateId`, bids best first, asks best first.
    /// Unknown symbols give `(0, [], [])`.
    #[must_use]
    pub fn book(&self, symbol: &str) -> BookSnapshot {
        let v = self.shared.venue();
        match v.symbol_idx(symbol) {
            Ok(idx) => v.depth(idx, usize::MAX),
            Err(_) => (0, Vec::new(), Vec::new()),
        }
    }

    /// Every order the venue ever accepted, by order id.
    #[must_use]
    pub fn orders(&self) -> Vec<SimOrder> {
        self.shared.venue().all_orders()
    }

    /// `(asset, free, locked)` of an account, sorted by asset.
    #[must_use]
    pub fn balances(&self, api_key: &str) -> Vec<(String, Decimal, Decimal)> {
        self.shared.venue().balances(api_key)
    }

    /// A synthetic aggressor trade at `price` for up to `qty`: fills resting user buys
    /// priced `>= price` and sells priced `<= price`, price-time priority, partial fills
    /// allowed, at the resting orders' prices; emits execution reports, account updates,
    /// public trades and the depth diff. Returns the quantity filled (zero for an
    /// unknown symbol).
    pub fn trade_through(&self, symbol: &str, price: Decimal, qty: Decimal) -> Decimal {
        let now = self.shared.now_ms();
        let mut v = self.shared.venue();
        match v.symbol_idx(symbol) {
            Ok(idx) => v.trade_through(idx, price, qty, now),
            Err(_) => Decimal::ZERO,
        }
    }

    /// Starts a rate-controlled tick source beside the regular generator: `ticks_per_sec`
    /// ticks a second, each moving one symbol, in turn (round robin in config order), and
    /// returns a receiver of one [`TickStamp`] per tick. For benchmarks: give the config a
    /// long `tick_interval` so that only this source moves the market.
    ///
    /// The source wakes on a 1 ms timer and runs every tick due by then, so above
    /// 1000 ticks/s ticks come in per-millisecond groups at the exact average rate. After
    /// a stall it runs at most 100 ms worth of ticks and skips the rest, and while the
    /// market is paused it skips ticks. Stamps are dropped for a receiver that lags
    /// more than 65536 behind (it sees `Lagged`). The source stops when every receiver
    /// has been dropped, or with the simulator.
    pub fn start_rate_ticks(
        &self,
        ticks_per_sec: std::num::NonZeroU32,
    ) -> tokio::sync::broadcast::Receiver<TickStamp> {
        let (tx, rx) = tokio::sync::broadcast::channel(1 << 16);
        let shared = Arc::clone(&self.shared);
        let cancel = self.lifecycle.token().clone();
        let symbols: Vec<String> = shared.venue().specs().map(|s| s.symbol.clone()).collect();
        let rate = u128::from(ticks_per_sec.get());
        let max_burst = u64::from(ticks_per_sec.get().div_ceil(10));
        self.lifecycle.spawn(async move {
            let n = symbols.len() as u64;
            if n == 0 {
                return;
            }
            let start = tokio::time::Instant::now();
            let mut iv = tokio::time::interval(std::time::Duration::from_millis(1));
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut sent: u64 = 0;
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    _ = iv.tick() => {}
                }
                let due = u64::try_from(start.elapsed().as_nanos() * rate / 1_000_000_000)
                    .unwrap_or(u64::MAX);
                if tx.receiver_count() == 0 {
                    break;
                }
                if shared.harness.market.paused() {
                    sent = due;
                    continue;
                }
                sent = sent.max(due.saturating_sub(max_burst));
                while sent < due {
                    let idx = usize::try_from(sent % n).unwrap_or(0);
                    let now = shared.now_ms();
                    shared.venue().tick_symbol(idx, now);
                    let _ = tx.send(TickStamp {
                        symbol: symbols[idx].clone(),
                        seq: sent,
                        unix_ns: unix_ns(),
                    });
                    sent += 1;
                }
            }
        });
        rx
    }

    /// Counters of what the simulator did.
    #[must_use]
    pub fn stats(&self) -> SimStats {
        self.shared.stats()
    }
}
