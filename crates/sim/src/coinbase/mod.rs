//! A protocol-faithful Coinbase Advanced Trade simulator: the REST API over TLS and the
//! two websocket hosts (market data and user orders) over `wss`.
//!
//! The real Coinbase gateway and Coinbase's official SDK must run against this simulator
//! *unmodified*, so every path, query parameter, JSON field, decimal-as-string, status
//! and error body follows section 1 of the venue reference (`venues-and-services.md`):
//! CDP JWT authentication verified like the venue (the 1.8 checklist, against registered
//! **public** keys only), cursor pagination, order configurations, idempotent
//! `client_order_id`, business rejects as HTTP 200 `success:false`, and 429 with the
//! `x-ratelimit-*` headers. The SDK only speaks `https`, so the API is served over TLS
//! with a given or a generated self-signed certificate; the websocket listeners present
//! the same certificate (`plain_http` makes all three plain).
//!
//! The websockets (reference 1.6, see the `ws` module): a subscribe within 5 s, one
//! channel per message, `subscriptions` acknowledgements, `heartbeats` every second,
//! `level2` as `l2_data` snapshot + absolute-quantity updates, `ticker`,
//! `market_trades`, and `user` (JWT without `uri`; the account's order snapshot and
//! every change). `sequence_num` counts every message of a connection from 0, across
//! channels. The engine's events are encoded under its lock (the `encode` module), so a
//! snapshot and the updates after it never overlap or leave a hole, and
//! [`SimHandle::book`] is exactly what a client that applied them holds.
//!
//! Like the Binance.US simulator this is the *protocol* layer only: what the venue does
//! (books, accounts, matching, the market generator) is the neutral [`crate::engine`];
//! faults, clock skew, market pause, stats, the admin API under `/sim/admin/` and
//! start/shutdown are the shared [`crate::harness`].
//!
//! Faults: `rate_limit_storm` (429 with headers; `ban` is a storm too, Coinbase documents
//! no ban), `server_errors` (503), `order_timeout` (the order is placed, its answer is
//! held back [`Fault::ORDER_TIMEOUT_DELAY`]); on the websockets `drop_websockets` (every
//! socket closed abruptly), `depth_gap` (the product's next `l2_data` update skips
//! sequence numbers on each connection), `silent_streams` (nothing sent, heartbeats
//! included; the suppressed messages still use their sequence numbers) and
//! `malformed_next` (invalid JSON / wrong shapes in place of market data). Clock skew
//! (`POST /sim/admin/clock`) moves the venue clock: a skew past 120 s makes every client
//! JWT expired (or not yet valid), which is how an expired-JWT rejection is produced.
//!
//! Also served: `ticker_batch` and `status`. Not here: `candles` and the futures
//! channels (a subscribe to them is answered with an error message).

mod admin;
mod auth;
mod config;
mod encode;
mod rest;
mod state;
pub(crate) mod tls;
mod venue;
mod ws;

use std::net::SocketAddr;
use std::sync::Arc;

use rust_decimal::Decimal;

pub use crate::engine::{BalanceLine, BookSnapshot, Level, SimOrder};
pub use crate::harness::{Fault, SimStats};
pub use config::{SimApiKey, SimConfig, SimSymbol, TlsSource};

use crate::harness::server::{self, Lifecycle, SHUTDOWN_GRACE};
use state::Shared;
pub use venue::order_uuid;

/// The Coinbase simulator (a namespace for [`SimCoinbase::start`]).
#[derive(Debug, Clone, Copy)]
pub struct SimCoinbase;

impl SimCoinbase {
    /// Validates `cfg`, prepares the certificate, binds the REST and both websocket
    /// listeners and starts the servers and the market generator.
    ///
    /// # Errors
    /// `InvalidInput` when the config is invalid (every problem listed) or the TLS
    /// material is unusable, or the bind error.
    pub async fn start(cfg: SimConfig) -> std::io::Result<SimHandle> {
        cfg.validate()?;
        // Bind first: a port conflict must not leave a certificate at `cert_out` that
        // no server of ours presents (or overwrite the one a running server presents).
        let listener = server::bind(cfg.rest_addr, "REST").await?;
        let ws_listener = server::bind(cfg.ws_addr, "market data websocket").await?;
        let ws_user_listener = server::bind(cfg.ws_user_addr, "user websocket").await?;
        let cert = if cfg.plain_http {
            None
        } else {
            Some(tls::server_cert(&cfg.tls)?)
        };
        let rest_addr = listener.local_addr()?;
        let ws_addr = ws_listener.local_addr()?;
        let ws_user_addr = ws_user_listener.local_addr()?;
        let lifecycle = Lifecycle::new("sim-coinbase");
        let shared = Arc::new(Shared::new(&cfg, lifecycle.token().clone())?);
        let router = axum::Router::new()
            .merge(admin::router::<Shared>())
            .fallback(rest::api)
            .with_state(Arc::clone(&shared));
        let addr = server::connectable(rest_addr);
        let (rest_url, cert_pem, ws_tls) = match cert {
            Some(c) => {
                tls::serve_tls(&lifecycle, listener, c.acceptor, router);
                (
                    format!("https://{addr}"),
                    Some(c.cert_pem),
                    Some(c.ws_acceptor),
                )
            }
            None => {
                lifecycle.serve_http(listener, router);
                (format!("http://{addr}"), None, None)
            }
        };
        let ws_scheme = if ws_tls.is_some() { "wss" } else { "ws" };
        let ws_url = format!("{ws_scheme}://{}", server::connectable(ws_addr));
        let ws_user_url = format!("{ws_scheme}://{}", server::connectable(ws_user_addr));
        for (l, host) in [
            (ws_listener, ws::WsHost::Market),
            (ws_user_listener, ws::WsHost::User),
        ] {
            ws::serve(&lifecycle, l, ws_tls.clone(), Arc::clone(&shared), host);
        }
        let (paused, ticked) = (Arc::clone(&shared), Arc::clone(&shared));
        lifecycle.ticker(
            cfg.tick_interval,
            move || paused.harness.market.paused(),
            move || ticked.tick_market(),
        );
        tracing::info!(
            %rest_addr,
            %ws_addr,
            %ws_user_addr,
            seed = cfg.seed,
            tls = cert_pem.is_some(),
            "sim-coinbase: started"
        );
        Ok(SimHandle {
            rest_url,
            rest_addr,
            ws_url,
            ws_addr,
            ws_user_url,
            ws_user_addr,
            cert_pem,
            shared,
            lifecycle,
        })
    }
}

/// A running simulator. Dropping it stops everything; [`SimHandle::shutdown`] also
/// waits for the tasks to end.
#[derive(Debug)]
pub struct SimHandle {
    /// Base URL of the REST API, e.g. `https://127.0.0.1:9200`.
    pub rest_url: String,
    /// Bound REST address.
    pub rest_addr: SocketAddr,
    /// URL of the market-data websocket host, e.g. `wss://127.0.0.1:9201`.
    pub ws_url: String,
    /// Bound market-data websocket address.
    pub ws_addr: SocketAddr,
    /// URL of the user-order websocket host, e.g. `wss://127.0.0.1:9202`.
    pub ws_user_url: String,
    /// Bound user websocket address.
    pub ws_user_addr: SocketAddr,
    /// PEM of the served certificate (`None` with `plain_http`): what a client trusts.
    pub cert_pem: Option<String>,
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
            tracing::warn!("sim-coinbase: fault names an unknown product; ignored");
        }
    }

    /// Sets the venue clock to wall clock + `skew_ms`.
    pub fn set_clock_skew(&self, skew_ms: i64) {
        self.shared.harness.clock.set_skew(skew_ms);
    }

    /// Venue time (ms since epoch), skew included.
    #[must_use]
    pub fn server_time_ms(&self) -> i64 {
        self.shared.now_ms()
    }

    /// Pauses or resumes the market generator.
    pub fn set_market_paused(&self, paused: bool) {
        self.shared.harness.market.set_paused(paused);
    }

    /// Runs one market tick now.
    pub fn tick_market(&self) {
        self.shared.tick_market();
    }

    /// The public (aggregated) book of `product` as the venue holds it now: the engine's
    /// last book sequence, bids best first, asks best first; `None` for an unknown
    /// product. A client that applied a `level2` snapshot and every update since holds
    /// exactly these levels.
    #[must_use]
    pub fn book(&self, product: &str) -> Option<BookSnapshot> {
        let v = self.shared.venue();
        let idx = v.product_idx(product)?;
        Some(v.depth(idx, usize::MAX))
    }

    /// Every order the venue accepted, by engine id (`api_key` is the key name).
    #[must_use]
    pub fn orders(&self) -> Vec<SimOrder> {
        self.shared.venue().all_orders()
    }

    /// `(currency, available, hold)` of the account of key `name`.
    #[must_use]
    pub fn balances(&self, name: &str) -> Vec<BalanceLine> {
        self.shared.venue().balances(name)
    }

    /// A synthetic aggressor trade through resting orders (see the engine); the filled
    /// quantity, zero for an unknown product.
    pub fn trade_through(&self, product: &str, price: Decimal, qty: Decimal) -> Decimal {
        let now = self.shared.now_ms();
        let mut v = self.shared.venue();
        match v.product_idx(product) {
            Some(idx) => v.trade_through(idx, price, qty, now),
            None => Decimal::ZERO,
        }
    }

    /// Counters of what the simulator did.
    #[must_use]
    pub fn stats(&self) -> SimStats {
        self.shared.stats()
    }
}
