//! The admin API under `/sim/admin/`: a simulator's in-process controls over HTTP.
//!
//! `gekko up` and scripted scenarios drive a simulator running in another process, so
//! every control of a simulator's handle has an HTTP twin here. The routes are the same
//! for every simulator (they speak the simulator's own JSON, not a venue's), so they are
//! written once against the [`AdminControl`] trait that each simulator's shared state
//! implements. Admin routes bypass the venue pipeline entirely (no weight, no signatures,
//! no faults): a test must be able to lift a ban it injected, and a fault must never block
//! the way to clear it.
//!
//! Shapes (JSON; decimals are strings with 8 decimals):
//!
//! | route | request | answer |
//! |---|---|---|
//! | `POST /sim/admin/fault` | a [`Fault`], e.g. `{"kind":"ban","duration_ms":5000}` | `{"ok":true}` |
//! | `POST /sim/admin/clock` | `{"skew_ms":-2500}` | `{"skew_ms":-2500,"server_time":..}` |
//! | `POST /sim/admin/market` | `{"paused":true}` | `{"paused":true}` |
//! | `POST /sim/admin/trade` | `{"symbol":"BTCUSD","price":"60000","qty":"0.5"}` | `{"filled_qty":"0.5"}` |
//! | `GET /sim/admin/book?symbol=BTCUSD` | | `{"symbol":..,"lastUpdateId":..,"bids":[["p","q"]..],"asks":[..]}` |
//! | `GET /sim/admin/orders` | | `[SimOrder..]` (snake_case fields) |
//! | `GET /sim/admin/balances?api_key=paper-key` | | `[{"asset":..,"free":..,"locked":..}]` |
//! | `GET /sim/admin/stats` | | [`SimStats`] |
//!
//! Errors are HTTP 400/404 with `{"error":"..."}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use super::clock::{MarketSwitch, SimClock};
use super::fault::Fault;
use super::stats::SimStats;
use crate::engine::{BalanceLine, BookSnapshot, Level, SimOrder};

/// What a simulator exposes to the admin API.
pub trait AdminControl: Send + Sync + 'static {
    /// Applies a fault; `false` when it names an unknown symbol.
    fn inject(&self, fault: Fault) -> bool;
    /// The simulator clock.
    fn clock(&self) -> &SimClock;
    /// The market-pause switch.
    fn market(&self) -> &MarketSwitch;
    /// A synthetic aggressor trade; the filled quantity, `None` for an unknown symbol.
    fn trade_through(&self, symbol: &str, price: Decimal, qty: Decimal) -> Option<Decimal>;
    /// The public book; `None` for an unknown symbol.
    fn book(&self, symbol: &str) -> Option<BookSnapshot>;
    /// Every order the engine accepted.
    fn orders(&self) -> Vec<SimOrder>;
    /// An account's balances.
    fn balances(&self, account: &str) -> Vec<BalanceLine>;
    /// Counters.
    fn stats(&self) -> SimStats;
}

/// A decimal as the admin API writes it: a string with exactly 8 decimals.
#[must_use]
pub fn fmt8(d: Decimal) -> String {
    let mut x = d.round_dp(8);
    x.rescale(8);
    x.to_string()
}

fn levels(levels: &[Level]) -> Value {
    Value::Array(
        levels
            .iter()
            .map(|(p, q)| json!([fmt8(*p), fmt8(*q)]))
            .collect(),
    )
}

/// The admin routes, to be merged into a simulator's REST router.
pub fn router<A: AdminControl>() -> Router<Arc<A>> {
    Router::new()
        .route("/sim/admin/fault", post(fault::<A>))
        .route("/sim/admin/clock", post(clock::<A>))
        .route("/sim/admin/market", post(market::<A>))
        .route("/sim/admin/trade", post(trade::<A>))
        .route("/sim/admin/book", get(book::<A>))
        .route("/sim/admin/orders", get(orders::<A>))
        .route("/sim/admin/balances", get(balances::<A>))
        .route("/sim/admin/stats", get(stats::<A>))
}

fn ok(v: &Value) -> Response {
    (StatusCode::OK, axum::Json(v.clone())).into_response()
}

fn err(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": msg.into() }))).into_response()
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))
}

fn bad(msg: String) -> Response {
    err(StatusCode::BAD_REQUEST, msg)
}

async fn fault<A: AdminControl>(State(app): State<Arc<A>>, body: Bytes) -> Response {
    let f = match Fault::from_json(&body) {
        Ok(f) => f,
        Err(e) => return bad(e),
    };
    if app.inject(f) {
        ok(&json!({"ok": true}))
    } else {
        err(StatusCode::BAD_REQUEST, "unknown symbol")
    }
}

#[derive(Deserialize)]
struct Clock {
    skew_ms: i64,
}

async fn clock<A: AdminControl>(State(app): State<Arc<A>>, body: Bytes) -> Response {
    match parse::<Clock>(&body) {
        Ok(c) => {
            let clock = app.clock();
            clock.set_skew(c.skew_ms);
            ok(&json!({"skew_ms": clock.skew(), "server_time": clock.now_ms()}))
        }
        Err(e) => bad(e),
    }
}

#[derive(Deserialize)]
struct Market {
    paused: bool,
}

async fn market<A: AdminControl>(State(app): State<Arc<A>>, body: Bytes) -> Response {
    match parse::<Market>(&body) {
        Ok(m) => {
            app.market().set_paused(m.paused);
            ok(&json!({"paused": app.market().paused()}))
        }
        Err(e) => bad(e),
    }
}

#[derive(Deserialize)]
struct Trade {
    symbol: String,
    price: Decimal,
    qty: Decimal,
}

async fn trade<A: AdminControl>(State(app): State<Arc<A>>, body: Bytes) -> Response {
    let t: Trade = match parse(&body) {
        Ok(t) => t,
        Err(e) => return bad(e),
    };
    match app.trade_through(&t.symbol, t.price, t.qty) {
        Some(filled) => ok(&json!({"filled_qty": fmt8(filled)})),
        None => err(StatusCode::NOT_FOUND, "unknown symbol"),
    }
}

/// A non-empty query parameter; `None` when missing, empty, or repeated (a repeated
/// name is ambiguous, so it counts as not given).
fn query_param(uri: &Uri, name: &str) -> Option<String> {
    let mut seen = HashMap::new();
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        if seen.insert(k.into_owned(), v.into_owned()).is_some() {
            return None;
        }
    }
    seen.remove(name).filter(|v| !v.is_empty())
}

async fn book<A: AdminControl>(State(app): State<Arc<A>>, uri: Uri) -> Response {
    let Some(symbol) = query_param(&uri, "symbol") else {
        return err(StatusCode::BAD_REQUEST, "missing symbol");
    };
    match app.book(&symbol) {
        Some((id, bids, asks)) => ok(
            &json!({"symbol": symbol, "lastUpdateId": id, "bids": levels(&bids), "asks": levels(&asks)}),
        ),
        None => err(StatusCode::NOT_FOUND, "unknown symbol"),
    }
}

async fn orders<A: AdminControl>(State(app): State<Arc<A>>) -> Response {
    match serde_json::to_value(app.orders()) {
        Ok(v) => ok(&v),
        Err(e) => err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn balances<A: AdminControl>(State(app): State<Arc<A>>, uri: Uri) -> Response {
    let Some(key) = query_param(&uri, "api_key") else {
        return err(StatusCode::BAD_REQUEST, "missing api_key");
    };
    let b: Vec<Value> = app
        .balances(&key)
        .into_iter()
        .map(|(a, f, l)| json!({"asset": a, "free": fmt8(f), "locked": fmt8(l)}))
        .collect();
    ok(&Value::Array(b))
}

async fn stats<A: AdminControl>(State(app): State<Arc<A>>) -> Response {
    match serde_json::to_value(app.stats()) {
        Ok(v) => ok(&v),
        Err(e) => err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_must_be_single_and_non_empty() {
        let uri = |s: &str| s.parse::<Uri>().expect("uri");
        assert_eq!(
            query_param(&uri("/x?symbol=BTCUSD"), "symbol").as_deref(),
            Some("BTCUSD")
        );
        assert_eq!(query_param(&uri("/x?symbol="), "symbol"), None);
        assert_eq!(query_param(&uri("/x?symbol=A&symbol=B"), "symbol"), None);
        assert_eq!(query_param(&uri("/x"), "symbol"), None);
        assert_eq!(fmt8(Decimal::new(5, 1)), "0.50000000");
    }
}
