//! A protocol-faithful OANDA v20 simulator: the REST API on one listener and the two
//! chunked NDJSON streams (pricing and transactions) on another, like the venue's
//! `api-fx*` and `stream-fx*` hosts.
//!
//! gekko's OANDA gateway and OANDA's official `v20` Python SDK must run against this
//! simulator *unmodified*, so paths, parameters, JSON shapes, decimal strings, statuses
//! and error bodies follow section 3 of the venue reference (`venues-and-services.md`),
//! and its fake-server checklist (3.11): the bearer token (401 `Insufficient
//! authorization to perform request.`), unknown accounts (403), `Accept-Datetime-Format`
//! (`RFC3339` nanosecond strings or `UNIX` seconds strings) on every DateTime, streams
//! flushed per line with heartbeats every 5 s and at most 4 prices/s/instrument, MARKET
//! orders FOK/IOC only answered 201 with create and fill transactions, increasing
//! integer transaction ids with a monotonic `lastTransactionID`, and 429 past 120
//! requests/s.
//!
//! Like the other simulators this is the *protocol* layer only: matching, books and the
//! seeded market are the neutral [`crate::engine`], and so is the margin account model
//! ([`crate::engine::margin`]: FIFO netting with hedging off, P/L, margin, NAV and
//! closeout); the OANDA records (trades, orders, the transaction log) live in the
//! `venue` module; faults, clock skew, market pause, stats, the admin API under
//! `/sim/admin/` (on the REST listener) and start/shutdown are the shared
//! [`crate::harness`].
//!
//! Faults: `rate_limit_storm` and `ban` (429 `{"errorMessage":..}`: OANDA documents no
//! ban and no rate-limit headers), `server_errors` (503), `order_timeout` (the order is
//! placed, its answer held back [`Fault::ORDER_TIMEOUT_DELAY`]), `margin_reject_next`
//! (`INSUFFICIENT_MARGIN`); on the streams `drop_websockets` (every stream ends
//! abruptly), `silent_streams`, `malformed_next` and `split_chunks` (see the `stream`
//! module). In [`SimStats`] the `ws_*` counters count streams: connections accepted,
//! open now, lines sent.
//!
//! Also served: candles from the price history since start, `/changes`, and
//! `transactions/sinceid`. Deviations from the venue are listed in the `venue` and
//! `rest` modules (one fill per order per operation, no financing, epoch-aligned
//! candles, no 2-new-connections-per-second limit).
//!
//! Plain HTTP by default (the SDK's `ssl=False`); [`SimConfig::tls`] serves both
//! listeners over TLS with the Coinbase simulator's certificate helper.

mod config;
mod rest;
mod state;
mod stream;
pub mod time;
mod venue;

use std::net::SocketAddr;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::Value;

pub use crate::engine::{BookSnapshot, SimOrder};
pub use crate::harness::{Fault, SimStats};
pub use config::{
    PAPER_ACCOUNT_ID, PAPER_TOKEN, SimConfig, SimInstrument, TlsSource, default_instruments,
    is_account_id,
};

use crate::coinbase::tls;
use crate::harness::admin;
use crate::harness::server::{self, Lifecycle, SHUTDOWN_GRACE};
use state::Shared;

/// The OANDA simulator (a namespace for [`SimOanda::start`]).
#[derive(Debug, Clone, Copy)]
pub struct SimOanda;

impl SimOanda {
    /// Validates `cfg`, binds the REST and stream listeners and starts the servers and
    /// the market generator.
    ///
    /// # Errors
    /// `InvalidInput` when the config is invalid (every problem listed) or the TLS
    /// material is unusable, or the bind error.
    pub async fn start(cfg: SimConfig) -> std::io::Result<SimHandle> {
        cfg.validate()?;
        let listener = server::bind(cfg.rest_addr, "REST").await?;
        let stream_listener = server::bind(cfg.stream_addr, "stream").await?;
        let cert = match &cfg.tls {
            Some(src) => Some(tls::server_cert(src)?),
            None => None,
        };
        let rest_addr = listener.local_addr()?;
        let stream_addr = stream_listener.local_addr()?;
        let lifecycle = Lifecycle::new("sim-oanda");
        let shared = Arc::new(Shared::new(&cfg, lifecycle.token().clone()));
        let router = axum::Router::new()
            .merge(admin::router::<Shared>())
            .fallback(rest::api)
            .with_state(Arc::clone(&shared));
        let stream_router = axum::Router::new()
            .fallback(stream::serve)
            .with_state((Arc::clone(&shared), lifecycle.tracker().clone()));
        let scheme = if cert.is_some() { "https" } else { "http" };
        let rest_url = format!("{scheme}://{}", server::connectable(rest_addr));
        let stream_url = format!("{scheme}://{}", server::connectable(stream_addr));
        let cert_pem = match cert {
            Some(c) => {
                tls::serve_tls(&lifecycle, listener, c.acceptor.clone(), router);
                tls::serve_tls(&lifecycle, stream_listener, c.ws_acceptor, stream_router);
                Some(c.cert_pem)
            }
            None => {
                lifecycle.serve_http(listener, router);
                lifecycle.serve_http(stream_listener, stream_router);
                None
            }
        };
        let (paused, ticked) = (Arc::clone(&shared), Arc::clone(&shared));
        lifecycle.ticker(
            cfg.tick_interval,
            move || paused.harness.market.paused(),
            move || ticked.tick_market(),
        );
        tracing::info!(%rest_addr, %stream_addr, seed = cfg.seed, tls = cert_pem.is_some(), "sim-oanda: started");
        Ok(SimHandle {
            rest_url,
            rest_addr,
            stream_url,
            stream_addr,
            cert_pem,
            token: cfg.token.clone(),
            account_id: cfg.account_id.clone(),
            shared,
            lifecycle,
        })
    }
}

/// A running simulator. Dropping it stops everything; [`SimHandle::shutdown`] also
/// waits for the tasks to end.
#[derive(Debug)]
pub struct SimHandle {
    /// Base URL of the REST API, e.g. `http://127.0.0.1:9300`.
    pub rest_url: String,
    /// Bound REST address.
    pub rest_addr: SocketAddr,
    /// Base URL of the stream host, e.g. `http://127.0.0.1:9301`.
    pub stream_url: String,
    /// Bound stream address.
    pub stream_addr: SocketAddr,
    /// PEM of the served certificate (`None` for plain HTTP).
    pub cert_pem: Option<String>,
    /// The accepted bearer token.
    pub token: String,
    /// The account id.
    pub account_id: String,
    shared: Arc<Shared>,
    lifecycle: Lifecycle,
}

impl SimHandle {
    /// Stops the simulator and waits (at most 5 s) for its tasks.
    pub async fn shutdown(self) {
        self.lifecycle.shutdown(SHUTDOWN_GRACE).await;
    }

    /// Injects a fault (same as `POST /sim/admin/fault`).
    pub fn inject(&self, fault: Fault) {
        if !self.shared.inject(fault) {
            tracing::warn!("sim-oanda: fault names an unknown instrument; ignored");
        }
    }

    /// Sets the venue clock to wall clock + `skew_ms`.
    pub fn set_clock_skew(&self, skew_ms: i64) {
        self.shared.harness.clock.set_skew(skew_ms);
    }

    /// Pauses or resumes the market generator.
    pub fn set_market_paused(&self, paused: bool) {
        self.shared.harness.market.set_paused(paused);
    }

    /// Runs one market tick now.
    pub fn tick_market(&self) {
        self.shared.tick_market();
    }

    /// A synthetic aggressor trade at `price` for up to `qty` units through resting
    /// LIMIT orders (buys priced at or above it, sells at or below), which fill at their
    /// own prices; the filled units, zero for an unknown instrument.
    pub fn trade_through(&self, instrument: &str, price: Decimal, qty: Decimal) -> Decimal {
        let now = self.shared.now_ns();
        self.shared
            .venue()
            .trade_through(instrument, price, qty, now)
            .unwrap_or_default()
    }

    /// `(bid, ask)` of an instrument now; `None` when unknown.
    #[must_use]
    pub fn touch(&self, instrument: &str) -> Option<(Decimal, Decimal)> {
        self.shared.venue().touch(instrument)
    }

    /// Every order the matching engine accepted (engine view; OANDA ids are in
    /// [`SimHandle::orders`]).
    #[must_use]
    pub fn engine_orders(&self) -> Vec<SimOrder> {
        self.shared.venue().engine_orders()
    }

    /// Every OANDA order, newest first, as `GET …/orders?state=ALL` shows it.
    #[must_use]
    pub fn orders(&self) -> Vec<Value> {
        let v = self.shared.venue();
        v.list_orders(None, None)
            .into_iter()
            .map(|o| v.order_json(o))
            .collect()
    }

    /// Every position ever opened, as `GET …/positions` shows it.
    #[must_use]
    pub fn positions(&self) -> Vec<Value> {
        self.shared.venue().positions(false)
    }

    /// `(long units, short units)` of an instrument (short is zero or negative).
    #[must_use]
    pub fn position_units(&self, instrument: &str) -> (Decimal, Decimal) {
        self.shared.venue().position_units(instrument)
    }

    /// The AccountSummary, as `GET …/summary` shows it (RFC 3339 times).
    #[must_use]
    pub fn account_summary(&self) -> Value {
        self.shared.venue().summary()
    }

    /// `(NAV, margin used, margin available, margin closeout percent)`.
    #[must_use]
    pub fn margin(&self) -> (Decimal, Decimal, Decimal, Decimal) {
        self.shared.venue().figures()
    }

    /// The newest transaction id.
    #[must_use]
    pub fn last_transaction_id(&self) -> u64 {
        self.shared.venue().last_tx()
    }

    /// The `sinceTransactionID` of every `/changes` request answered, oldest first (how
    /// a client caught up, and from where).
    #[must_use]
    pub fn changes_requests(&self) -> Vec<u64> {
        self.shared.changes_requests()
    }

    /// Counters of what the simulator did.
    #[must_use]
    pub fn stats(&self) -> SimStats {
        self.shared.stats()
    }
}
