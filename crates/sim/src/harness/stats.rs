//! Counters of what a simulator did, for assertions and the admin API.
//!
//! Two sources feed one snapshot: the request and connection counters here, bumped by
//! the protocol's REST and websocket code without any lock (relaxed atomics: each counter
//! is independent and only ever read as a whole snapshot), and the engine's own counters,
//! read under the engine lock when the snapshot is taken.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::engine::EngineCounters;

/// Adds one to a counter.
pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Counters that live outside the engine lock (see [`SimStats`] for their meaning).
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
    /// [`SimStats::auth_failures`].
    pub auth_failures: AtomicU64,
    /// [`SimStats::rate_limit_violations`].
    pub rate_limit_violations: AtomicU64,
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
    /// [`SimStats::lines_split`].
    pub lines_split: AtomicU64,
    /// [`SimStats::streams_dropped`].
    pub streams_dropped: AtomicU64,
}

impl Stats {
    /// Counts one REST answer by its HTTP status (2xx are not counted).
    pub fn record_status(&self, status: u16) {
        match status {
            200..=299 => {}
            429 => bump(&self.http_429),
            418 => bump(&self.http_418),
            401 => {
                bump(&self.auth_failures);
                bump(&self.rest_errors);
            }
            503 => bump(&self.http_503),
            _ => bump(&self.rest_errors),
        }
    }

    /// A snapshot of these counters and the engine's.
    #[must_use]
    pub fn snapshot(&self, c: EngineCounters) -> SimStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SimStats {
            rest_requests: get(&self.rest_requests),
            http_429: get(&self.http_429),
            http_418: get(&self.http_418),
            http_503: get(&self.http_503),
            rest_errors: get(&self.rest_errors),
            timestamp_errors: get(&self.timestamp_errors),
            auth_failures: get(&self.auth_failures),
            rate_limit_violations: get(&self.rate_limit_violations),
            orders_accepted: c.accepted,
            orders_rejected: get(&self.orders_rejected),
            orders_canceled: c.canceled,
            fills: c.fills,
            order_responses_delayed: get(&self.order_responses_delayed),
            ws_connections: get(&self.ws_connections),
            ws_open: get(&self.ws_open),
            ws_messages_sent: get(&self.ws_messages_sent),
            depth_updates: c.depth_updates,
            lines_split: get(&self.lines_split),
            streams_dropped: get(&self.streams_dropped),
        }
    }
}

/// Counters of what the simulator did, for assertions and the admin API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SimStats {
    /// REST requests to the venue API (on Binance.US `/api/...`; admin requests are not
    /// counted).
    pub rest_requests: u64,
    /// HTTP 429 answers sent (weight, storm and order-rate limits).
    pub http_429: u64,
    /// HTTP 418 answers sent (bans).
    pub http_418: u64,
    /// HTTP 503 answers sent by the `ServerErrors` fault.
    pub http_503: u64,
    /// Any other 4xx/5xx venue error answers.
    pub rest_errors: u64,
    /// Answers rejecting the request timestamp (Binance: -1021), a subset of
    /// `rest_errors`.
    pub timestamp_errors: u64,
    /// HTTP 401 answers (Coinbase: a JWT refused), a subset of `rest_errors`.
    pub auth_failures: u64,
    /// Requests that arrived while a rate-limit window a 429 had announced was still
    /// running (Coinbase: before the announced `x-ratelimit-reset`, less a 100 ms
    /// tolerance for the client's clock estimate): a client that honours the headers keeps
    /// this at 0. Only simulators that announce a reset count it.
    pub rate_limit_violations: u64,
    /// Orders accepted by the engine.
    pub orders_accepted: u64,
    /// Order placements answered with an error.
    pub orders_rejected: u64,
    /// Orders canceled.
    pub orders_canceled: u64,
    /// Fills of user orders.
    pub fills: u64,
    /// Order responses held back by the `OrderTimeout` fault.
    pub order_responses_delayed: u64,
    /// Websocket connections accepted (handshake completed).
    pub ws_connections: u64,
    /// Websocket connections open right now.
    pub ws_open: u64,
    /// Websocket data messages sent (market, user and control replies).
    pub ws_messages_sent: u64,
    /// Book diff events produced.
    pub depth_updates: u64,
    /// Stream lines written as two HTTP chunks by the `SplitChunks` fault (OANDA).
    pub lines_split: u64,
    /// Line streams ended abruptly by the `DropWebSockets` fault (OANDA: every stream).
    pub streams_dropped: u64,
}
