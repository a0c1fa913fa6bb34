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
//! Start it with [`SimBinanceUs::start`]; the returned [`SimHandle`] gives the URLs and
//! in-process control (faults, clock skew, market pause, synthetic trades, inspection).
//! The same controls are served over HTTP under `/sim/admin/` on the REST listener (see
//! the `admin` module docs for the JSON shapes), for simulators in another process.
//!
//! Deliberate simplifications, all documented where they are made: one shared "IP" for
//! all clients; rate-limit windows aligned to simulator start; only LIMIT and MARKET
//! orders; user orders trade only against synthetic liquidity and [`SimHandle::trade_through`],
//! never against each other; `@depth` and `@depth@100ms` both carry every diff at tick
//! granularity.

mod admin;
mod config;
mod error;
mod fault;
mod limits;
mod market;
mod orders;
mod params;
mod rest;
mod signing;
mod state;
mod types;
mod venue;
mod wire;
mod ws;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{SimApiKey, SimConfig, SimKeyAuth, SimSymbol};
pub use error::{ApiError, SimError};
pub use fault::Fault;
pub use market::SymbolMarket;
pub use signing::hmac_hex;
pub use types::{
    BookSnapshot, Level, SimFill, SimOrder, SimOrderStatus, SimOrderType, SimSide, SimStats,
    SimTimeInForce,
};

use state::Shared;

/// How long [`SimHandle::shutdown`] waits for tasks to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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
        let bind = |addr: SocketAddr, what: &'static str| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| SimError::Io {
                    what: format!("binding the {what} listener on {addr}"),
                    source,
                })
        };
        let rest_listener = bind(cfg.rest_addr, "REST").await?;
        let ws_listener = bind(cfg.ws_addr, "websocket").await?;
        let rest_addr = rest_listener.local_addr()?;
        let ws_addr = ws_listener.local_addr()?;

        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let shared = Arc::new(Shared::new(&cfg, cancel.clone()));

        let router = axum::Router::new()
            .merge(admin::router())
            .fallback(rest::api)
            .with_state(Arc::clone(&shared));
        let rest_cancel = cancel.clone();
        tracker.spawn(async move {
            let served = axum::serve(rest_listener, router)
                .with_graceful_shutdown(rest_cancel.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "sim-binanceus: REST server failed");
            }
        });
        tracker.spawn(ws::serve(ws_listener, Arc::clone(&shared), tracker.clone()));
        tracker.spawn(run_market(Arc::clone(&shared), cfg.tick_interval));

        tracing::info!(%rest_addr, %ws_addr, seed = cfg.seed, "sim-binanceus: started");
        Ok(SimHandle {
            rest_url: format!("http://{}", connectable(rest_addr)),
            ws_url: format!("ws://{}", connectable(ws_addr)),
            rest_addr,
            ws_addr,
            shared,
            cancel,
            tracker,
        })
    }
}

/// An address a client can connect to: unspecified binds are reached over loopback.
fn connectable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    }
}

/// The market generator: one venue tick per `tick` while not paused.
async fn run_market(app: Arc<Shared>, tick: Duration) {
    let mut iv = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
    iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = app.cancel.cancelled() => break,
            _ = iv.tick() => {
                if !app.paused() {
                    let now = app.now_ms();
                    app.venue().tick(now);
                }
            }
        }
    }
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
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl SimHandle {
    /// Stops the simulator and waits (at most 5 s) for its tasks to finish.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("sim-binanceus: tasks still running after the shutdown grace period");
        }
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
        self.shared.set_skew(skew_ms);
    }

    /// Venue time (ms since epoch), including the skew.
    #[must_use]
    pub fn server_time_ms(&self) -> i64 {
        self.shared.now_ms()
    }

    /// Pauses (no ticks at all) or resumes the market generator.
    pub fn set_market_paused(&self, paused: bool) {
        self.shared.set_paused(paused);
    }

    /// Runs one market tick now, paused or not (for deterministic tests).
    pub fn tick_market(&self) {
        let now = self.shared.now_ms();
        self.shared.venue().tick(now);
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

    /// Counters of what the simulator did.
    #[must_use]
    pub fn stats(&self) -> SimStats {
        self.shared.stats()
    }
}
