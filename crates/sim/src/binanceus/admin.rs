//! The admin API under `/sim/admin/`: the in-process handle's controls over HTTP.
//!
//! `gekko up` and scripted scenarios drive a simulator running in another process, so
//! every control of [`super::SimHandle`] has an HTTP twin here. Admin routes bypass the
//! venue pipeline entirely (no weight, no signatures, no faults): a test must be able to
//! lift a ban it injected, and a fault must never block the way to clear it.
//!
//! Shapes (JSON; decimals are strings):
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
//! | `GET /sim/admin/stats` | | [`super::SimStats`] |
//!
//! Errors are HTTP 400/404 with `{"error":"..."}`.

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

use super::fault::Fault;
use super::params::Params;
use super::state::Shared;
use super::wire::{self, fmt8};

/// The admin routes, to be merged into the REST router.
pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/sim/admin/fault", post(fault))
        .route("/sim/admin/clock", post(clock))
        .route("/sim/admin/market", post(market))
        .route("/sim/admin/trade", post(trade))
        .route("/sim/admin/book", get(book))
        .route("/sim/admin/orders", get(orders))
        .route("/sim/admin/balances", get(balances))
        .route("/sim/admin/stats", get(stats))
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

async fn fault(State(app): State<Arc<Shared>>, body: Bytes) -> Response {
    let f: Fault = match parse(&body) {
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

async fn clock(State(app): State<Arc<Shared>>, body: Bytes) -> Response {
    match parse::<Clock>(&body) {
        Ok(c) => {
            app.set_skew(c.skew_ms);
            ok(&json!({"skew_ms": app.skew(), "server_time": app.now_ms()}))
        }
        Err(e) => bad(e),
    }
}

#[derive(Deserialize)]
struct Market {
    paused: bool,
}

async fn market(State(app): State<Arc<Shared>>, body: Bytes) -> Response {
    match parse::<Market>(&body) {
        Ok(m) => {
            app.set_paused(m.paused);
            ok(&json!({"paused": app.paused()}))
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

async fn trade(State(app): State<Arc<Shared>>, body: Bytes) -> Response {
    let t: Trade = match parse(&body) {
        Ok(t) => t,
        Err(e) => return bad(e),
    };
    let now = app.now_ms();
    let mut v = app.venue();
    match v.symbol_idx(&t.symbol) {
        Ok(idx) => ok(&json!({"filled_qty": fmt8(v.trade_through(idx, t.price, t.qty, now))})),
        Err(_) => err(StatusCode::NOT_FOUND, "unknown symbol"),
    }
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    Params::parse(uri.query().unwrap_or(""), "")
        .ok()?
        .non_empty(name)
        .map(str::to_owned)
}

async fn book(State(app): State<Arc<Shared>>, uri: Uri) -> Response {
    let Some(symbol) = query_param(&uri, "symbol") else {
        return err(StatusCode::BAD_REQUEST, "missing symbol");
    };
    let v = app.venue();
    match v.symbol_idx(&symbol) {
        Ok(idx) => {
            let (id, bids, asks) = v.depth(idx, usize::MAX);
            ok(
                &json!({"symbol": symbol, "lastUpdateId": id, "bids": wire::levels(&bids), "asks": wire::levels(&asks)}),
            )
        }
        Err(_) => err(StatusCode::NOT_FOUND, "unknown symbol"),
    }
}

async fn orders(State(app): State<Arc<Shared>>) -> Response {
    let all = app.venue().all_orders();
    match serde_json::to_value(&all) {
        Ok(v) => ok(&v),
        Err(e) => err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn balances(State(app): State<Arc<Shared>>, uri: Uri) -> Response {
    let Some(key) = query_param(&uri, "api_key") else {
        return err(StatusCode::BAD_REQUEST, "missing api_key");
    };
    let b: Vec<Value> = app
        .venue()
        .balances(&key)
        .into_iter()
        .map(|(a, f, l)| json!({"asset": a, "free": fmt8(f), "locked": fmt8(l)}))
        .collect();
    ok(&Value::Array(b))
}

async fn stats(State(app): State<Arc<Shared>>) -> Response {
    match serde_json::to_value(app.stats()) {
        Ok(v) => ok(&v),
        Err(e) => err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
