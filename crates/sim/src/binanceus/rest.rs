//! The REST API (`/api/v3/...`), exactly as a Binance.US client sees it.
//!
//! One fallback handler serves every venue path instead of one axum route per endpoint,
//! because the venue's behaviour around the endpoint matters as much as the endpoint:
//! every request, even to an unknown path or with unparsable parameters, is charged
//! request weight, answered with `X-MBX-USED-WEIGHT-1M`, subject to bans, storms and
//! injected 5xx, and every failure is the venue's `{"code":..,"msg":..}` JSON rather than
//! an axum extractor rejection. The pipeline per request is:
//!
//! 1. route and weight (weight depends on parameters, e.g. `depth?limit=`),
//! 2. limiter: ban (418) / ignored `Retry-After` (429, escalating to 418) / storm (429) /
//!    weight over the limit (429),
//! 3. injected `ServerErrors` (503, nothing executed),
//! 4. security (`X-MBX-APIKEY`, `signature`, `timestamp`/`recvWindow`), then the endpoint.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::config::{SimKeyAuth, SimSymbol};
use super::error::ApiError;
use super::limits::{ORDERS_PER_DAY, OrderCount};
use super::orders::{OrderRequest, RespType, client_order_id_param};
use super::params::Params;
use super::signing;
use super::state::Shared;
use super::venue::Venue;
use super::wire::{self, fmt8};
use crate::engine::{OrderSel, SimOrderStatus, SimSide};
use crate::harness::{Fault, bump};

/// Default and maximum `recvWindow`.
const DEFAULT_RECV_WINDOW: u64 = 5000;
const MAX_RECV_WINDOW: u64 = 60_000;

/// A finished answer: status, JSON body, extra headers.
#[derive(Debug)]
pub(crate) struct Reply {
    status: StatusCode,
    body: String,
    headers: Vec<(HeaderName, String)>,
}

impl Reply {
    /// 200 with a JSON body.
    fn json(v: &Value) -> Self {
        Self {
            status: StatusCode::OK,
            body: v.to_string(),
            headers: Vec::new(),
        }
    }

    /// The venue's error answer, with `Retry-After` when the error carries one.
    fn error(e: &ApiError) -> Self {
        let mut headers = Vec::new();
        if let Some(s) = e.retry_after {
            headers.push((HeaderName::from_static("retry-after"), s.to_string()));
        }
        Self {
            status: e.status,
            body: e.body(),
            headers,
        }
    }

    fn with_order_counts(mut self, c: OrderCount) -> Self {
        self.headers.push((
            HeaderName::from_static("x-mbx-order-count-10s"),
            c.ten_seconds.to_string(),
        ));
        self.headers.push((
            HeaderName::from_static("x-mbx-order-count-1d"),
            c.day.to_string(),
        ));
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut r = (self.status, self.body).into_response();
        let h = r.headers_mut();
        h.insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=UTF-8"),
        );
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
        r
    }
}

/// The venue endpoints the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Ping,
    Time,
    ExchangeInfo,
    Depth,
    Trades,
    BookTicker,
    TickerPrice,
    AvgPrice,
    Account,
    OrderNew,
    OrderTest,
    OrderGet,
    OrderCancel,
    OpenOrders,
    OpenOrdersCancel,
    AllOrders,
    MyTrades,
    RateLimitOrder,
    ListenKeyNew,
    ListenKeyKeepalive,
    ListenKeyClose,
}

impl Endpoint {
    fn route(method: &Method, path: &str) -> Option<Self> {
        let m = method.as_str();
        Some(match (m, path) {
            ("GET", "/api/v3/ping") => Self::Ping,
            ("GET", "/api/v3/time") => Self::Time,
            ("GET", "/api/v3/exchangeInfo") => Self::ExchangeInfo,
            ("GET", "/api/v3/depth") => Self::Depth,
            ("GET", "/api/v3/trades") => Self::Trades,
            ("GET", "/api/v3/ticker/bookTicker") => Self::BookTicker,
            ("GET", "/api/v3/ticker/price") => Self::TickerPrice,
            ("GET", "/api/v3/avgPrice") => Self::AvgPrice,
            ("GET", "/api/v3/account") => Self::Account,
            ("POST", "/api/v3/order") => Self::OrderNew,
            ("POST", "/api/v3/order/test") => Self::OrderTest,
            ("GET", "/api/v3/order") => Self::OrderGet,
            ("DELETE", "/api/v3/order") => Self::OrderCancel,
            ("GET", "/api/v3/openOrders") => Self::OpenOrders,
            ("DELETE", "/api/v3/openOrders") => Self::OpenOrdersCancel,
            ("GET", "/api/v3/allOrders") => Self::AllOrders,
            ("GET", "/api/v3/myTrades") => Self::MyTrades,
            ("GET", "/api/v3/rateLimit/order") => Self::RateLimitOrder,
            ("POST", "/api/v3/userDataStream") => Self::ListenKeyNew,
            ("PUT", "/api/v3/userDataStream") => Self::ListenKeyKeepalive,
            ("DELETE", "/api/v3/userDataStream") => Self::ListenKeyClose,
            _ => return None,
        })
    }

    /// Request weight, as documented per endpoint.
    fn weight(self, p: &Params) -> u32 {
        let has = |k: &str| p.non_empty(k).is_some();
        match self {
            Self::ExchangeInfo | Self::Account | Self::AllOrders | Self::MyTrades => 10,
            Self::Depth => match p.u64("limit").ok().flatten().unwrap_or(100) {
                0..=100 => 1,
                101..=500 => 5,
                501..=1000 => 10,
                _ => 50,
            },
            Self::BookTicker | Self::TickerPrice => {
                if has("symbol") {
                    1
                } else {
                    2
                }
            }
            Self::OrderGet => 2,
            Self::OpenOrders => {
                if has("symbol") {
                    3
                } else {
                    40
                }
            }
            Self::RateLimitOrder => 20,
            _ => 1,
        }
    }
}

/// The fallback handler: every `/api/...` request (and every unknown path) lands here.
pub(crate) async fn api(
    State(app): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    bump(&app.harness.stats.rest_requests);
    let raw_query = uri.query().unwrap_or("");
    let raw_body = std::str::from_utf8(&body).ok();
    let endpoint = Endpoint::route(&method, uri.path());
    let weight_params = Params::parse(raw_query, raw_body.unwrap_or("")).unwrap_or_default();
    let weight = endpoint.map_or(1, |e| e.weight(&weight_params));
    let admission = app.limits().admit(weight, app.now_ms());
    let reply = match admission.verdict {
        Err(e) => Reply::error(&e),
        Ok(()) if app.harness.faults.take_server_error() => Reply::error(&ApiError::disconnected()),
        Ok(()) => match (endpoint, raw_body) {
            (None, _) => Reply::error(&ApiError::not_found()),
            (Some(_), None) => Reply::error(&ApiError::bad_request(
                -1100,
                "Illegal characters found in a parameter.",
            )),
            (Some(ep), Some(raw_body)) => {
                let req = Req {
                    app: &app,
                    headers: &headers,
                    raw_query,
                    raw_body,
                };
                match req.serve(ep).await {
                    Ok(r) => r,
                    Err(e) => {
                        if e.code == -1021 {
                            bump(&app.harness.stats.timestamp_errors);
                        }
                        Reply::error(&e)
                    }
                }
            }
        },
    };
    app.harness.stats.record_status(reply.status.as_u16());
    let mut reply = reply;
    reply.headers.push((
        HeaderName::from_static("x-mbx-used-weight-1m"),
        admission.used_weight.to_string(),
    ));
    reply.into_response()
}

/// One request being served.
struct Req<'a> {
    app: &'a Arc<Shared>,
    headers: &'a HeaderMap,
    raw_query: &'a str,
    raw_body: &'a str,
}

impl Req<'_> {
    /// `X-MBX-APIKEY` checks (USER_STREAM, MARKET_DATA and SIGNED endpoints).
    fn api_key(&self) -> Result<(&str, &SimKeyAuth), ApiError> {
        let raw = self
            .headers
            .get("x-mbx-apikey")
            .ok_or_else(ApiError::bad_api_key_format)?;
        let key = raw.to_str().map_err(|_| ApiError::bad_api_key_format())?;
        if key.is_empty() {
            return Err(ApiError::bad_api_key_format());
        }
        self.app
            .keys
            .get_key_value(key)
            .map(|(k, a)| (k.as_str(), a))
            .ok_or_else(ApiError::rejected_api_key)
    }

    /// SIGNED (TRADE / USER_DATA) checks; returns the account's API key.
    fn signed(&self, p: &Params) -> Result<String, ApiError> {
        let (key, auth) = self.api_key()?;
        let sp = signing::signed_payload(self.raw_query, self.raw_body);
        let signature = sp
            .signature
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::mandatory("signature"))?;
        let timestamp = p.required_u64("timestamp")?;
        let recv_window = p.u64("recvWindow")?.unwrap_or(DEFAULT_RECV_WINDOW);
        if recv_window > MAX_RECV_WINDOW {
            return Err(ApiError::recv_window_too_large());
        }
        signing::verify(auth, &sp.payload, &signature)?;
        let server = self.app.now_ms();
        let ts = i64::try_from(timestamp).unwrap_or(i64::MAX);
        let rw = i64::try_from(recv_window).unwrap_or(i64::MAX);
        if ts >= server.saturating_add(1000) {
            return Err(ApiError::ahead_of_server());
        }
        if server.saturating_sub(ts) > rw {
            return Err(ApiError::outside_recv_window());
        }
        Ok(key.to_owned())
    }

    async fn serve(&self, ep: Endpoint) -> Result<Reply, ApiError> {
        let p = Params::parse(self.raw_query, self.raw_body)?;
        let app = self.app;
        let now = app.now_ms();
        let v = match ep {
            Endpoint::Ping => json!({}),
            Endpoint::Time => json!({ "serverTime": now }),
            Endpoint::ExchangeInfo => self.exchange_info(&p, now)?,
            Endpoint::Depth => {
                if app.harness.faults.is_book_down() {
                    return Err(ApiError::disconnected());
                }
                let limit = p.u64("limit")?.unwrap_or(100);
                if !(1..=5000).contains(&limit) {
                    return Err(ApiError::invalid_parameter("limit"));
                }
                let v = app.venue();
                let idx = v.symbol_idx(p.required("symbol")?)?;
                let (id, bids, asks) = v.depth(idx, usize::try_from(limit).unwrap_or(5000));
                json!({"lastUpdateId": id, "bids": wire::levels(&bids), "asks": wire::levels(&asks)})
            }
            Endpoint::Trades => {
                let limit = bounded_limit(&p, 500, 1000)?;
                let v = app.venue();
                let idx = v.symbol_idx(p.required("symbol")?)?;
                Value::Array(v.recent_trades(idx, limit).iter().map(wire::trade_rest).collect())
            }
            Endpoint::BookTicker => self.per_symbol(&p, |v, idx, s| {
                let (bid, ask) = v.top(idx);
                let (b, bq) = bid.unwrap_or_default();
                let (a, aq) = ask.unwrap_or_default();
                json!({"symbol": s.symbol, "bidPrice": fmt8(b), "bidQty": fmt8(bq), "askPrice": fmt8(a), "askQty": fmt8(aq)})
            })?,
            Endpoint::TickerPrice => self.per_symbol(&p, |v, idx, s| {
                let last = v.recent_trades(idx, 1).first().map_or_else(|| v.reference_price(idx), |t| t.price);
                json!({"symbol": s.symbol, "price": fmt8(last)})
            })?,
            Endpoint::AvgPrice => {
                let v = app.venue();
                let idx = v.symbol_idx(p.required("symbol")?)?;
                json!({"mins": 5, "price": fmt8(v.reference_price(idx))})
            }
            Endpoint::Account => {
                let key = self.signed(&p)?;
                let v = app.venue();
                let balances: Vec<Value> = v
                    .balances(&key)
                    .into_iter()
                    .map(|(a, f, l)| json!({"asset": a, "free": fmt8(f), "locked": fmt8(l)}))
                    .collect();
                json!({
                    "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
                    "commissionRates": {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000", "seller": "0.00000000"},
                    "canTrade": true, "canWithdraw": true, "canDeposit": true, "brokered": false,
                    "requireSelfTradePrevention": false, "updateTime": v.account_update_time(&key),
                    "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"], "tradeGroupId": -1,
                })
            }
            Endpoint::OrderNew => return self.place_order(&p).await,
            Endpoint::OrderTest => {
                self.signed(&p)?;
                let req = OrderRequest::parse(&p)?;
                let v = app.venue();
                let idx = v.symbol_idx(&req.order.symbol)?;
                let spec = v.spec(idx).ok_or_else(ApiError::invalid_symbol)?;
                req.check_filters(spec, v.reference_price(idx))?;
                json!({})
            }
            Endpoint::OrderGet => {
                let key = self.signed(&p)?;
                let sel = order_sel(&p)?;
                let v = app.venue();
                let idx = v.symbol_idx(p.required("symbol")?)?;
                wire::order_query(&v.query(&key, idx, &sel)?)
            }
            Endpoint::OrderCancel => self.cancel_order(&p, now)?,
            Endpoint::OpenOrders => {
                let key = self.signed(&p)?;
                let v = app.venue();
                let idx = p.non_empty("symbol").map(|s| v.symbol_idx(s)).transpose()?;
                Value::Array(v.open_orders(&key, idx).iter().map(wire::order_query).collect())
            }
            Endpoint::OpenOrdersCancel => {
                let key = self.signed(&p)?;
                let mut v = app.venue();
                let idx = v.symbol_idx(p.required("symbol")?)?;
                let cancelled = v.cancel_all(&key, idx, now);
                Value::Array(cancelled.iter().map(|(o, cid)| wire::order_cancel(o, cid, now)).collect())
            }
            Endpoint::AllOrders => {
                let key = self.signed(&p)?;
                let limit = bounded_limit(&p, 500, 1000)?;
                let v = app.venue();
                let idx = v.symbol_idx(p.required("symbol")?)?;
                Value::Array(v.orders_of(&key, idx, limit).iter().map(wire::order_query).collect())
            }
            Endpoint::MyTrades => {
                let key = self.signed(&p)?;
                let limit = bounded_limit(&p, 500, 1000)?;
                let v = app.venue();
                let idx = v.symbol_idx(p.required("symbol")?)?;
                let mut trades: Vec<Value> = Vec::new();
                for o in v.orders_of(&key, idx, usize::MAX) {
                    for f in &o.fills {
                        trades.push(json!({
                            "symbol": o.symbol, "id": f.trade_id, "orderId": o.order_id, "orderListId": -1,
                            "price": fmt8(f.price), "qty": fmt8(f.qty), "quoteQty": fmt8(f.price * f.qty),
                            "commission": fmt8(f.commission), "commissionAsset": f.commission_asset,
                            "time": f.time, "isBuyer": o.side == SimSide::Buy,
                            "isMaker": f.maker, "isBestMatch": true,
                        }));
                    }
                }
                trades.sort_by_key(|t| t.get("id").and_then(Value::as_u64).unwrap_or(0));
                let skip = trades.len().saturating_sub(limit);
                Value::Array(trades.into_iter().skip(skip).collect())
            }
            Endpoint::RateLimitOrder => {
                let key = self.signed(&p)?;
                let l = app.limits();
                let c = l.order_counts(&key);
                json!([
                    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": l.orders_per_10s(), "count": c.ten_seconds},
                    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": ORDERS_PER_DAY, "count": c.day},
                ])
            }
            Endpoint::ListenKeyNew => {
                let (key, _) = self.api_key()?;
                json!({ "listenKey": app.venue().create_listen_key(key, now) })
            }
            Endpoint::ListenKeyKeepalive => {
                let (key, _) = self.api_key()?;
                app.venue().keepalive_listen_key(key, p.required("listenKey")?, now)?;
                json!({})
            }
            Endpoint::ListenKeyClose => {
                let (key, _) = self.api_key()?;
                app.venue().delete_listen_key(key, p.required("listenKey")?)?;
                json!({})
            }
        };
        Ok(Reply::json(&v))
    }

    /// `symbol` → one object, `symbols` → array, neither → array of all.
    fn per_symbol(
        &self,
        p: &Params,
        f: impl Fn(&Venue, usize, &SimSymbol) -> Value,
    ) -> Result<Value, ApiError> {
        let v = self.app.venue();
        match (p.non_empty("symbol"), p.non_empty("symbols")) {
            (Some(_), Some(_)) => Err(ApiError::bad_request(
                -1128,
                "Combination of optional parameters invalid.",
            )),
            (Some(s), None) => {
                let idx = v.symbol_idx(s)?;
                let spec = v.spec(idx).ok_or_else(ApiError::invalid_symbol)?;
                Ok(f(&v, idx, spec))
            }
            (None, Some(list)) => {
                let mut out = Vec::new();
                for s in parse_symbols(list)? {
                    let idx = v.symbol_idx(&s)?;
                    let spec = v.spec(idx).ok_or_else(ApiError::invalid_symbol)?;
                    out.push(f(&v, idx, spec));
                }
                Ok(Value::Array(out))
            }
            (None, None) => {
                let specs: Vec<SimSymbol> = v.specs().cloned().collect();
                Ok(Value::Array(
                    specs.iter().enumerate().map(|(i, s)| f(&v, i, s)).collect(),
                ))
            }
        }
    }

    fn exchange_info(&self, p: &Params, now: i64) -> Result<Value, ApiError> {
        let v = self.app.venue();
        let all: Vec<SimSymbol> = v.specs().cloned().collect();
        let selected: Vec<SimSymbol> = match (p.non_empty("symbol"), p.non_empty("symbols")) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    -1128,
                    "Combination of optional parameters invalid.",
                ));
            }
            (Some(s), None) => vec![
                all.iter()
                    .find(|x| x.symbol == s)
                    .cloned()
                    .ok_or_else(ApiError::invalid_symbol)?,
            ],
            (None, Some(list)) => parse_symbols(list)?
                .iter()
                .map(|s| {
                    all.iter()
                        .find(|x| x.symbol == *s)
                        .cloned()
                        .ok_or_else(ApiError::invalid_symbol)
                })
                .collect::<Result<_, _>>()?,
            (None, None) => all,
        };
        let (weight_limit, orders_limit) = {
            let l = self.app.limits();
            (l.weight_limit(), l.orders_per_10s())
        };
        Ok(json!({
            "timezone": "UTC",
            "serverTime": now,
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_limit},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": orders_limit},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": ORDERS_PER_DAY},
            ],
            "exchangeFilters": [],
            "symbols": selected.iter().map(symbol_info).collect::<Vec<_>>(),
            "permissions": ["SPOT"],
            "defaultSelfTradePreventionMode": "NONE",
            "allowedSelfTradePreventionModes": ["NONE"],
        }))
    }

    async fn place_order(&self, p: &Params) -> Result<Reply, ApiError> {
        let key = self.signed(p)?;
        if let Some(delay) = self.app.harness.faults.take_delayed_accept() {
            return Ok(Self::place_late(self.app, key, p.clone(), delay).await);
        }
        Ok(Self::place_now(self.app, &key, p).await)
    }

    /// [`Fault::DelayedAccept`]: the order reaches the engine `delay` after it arrived,
    /// on a task of its own so that a client giving up (the connection closing and this
    /// handler dropped) does not stop it, and only if it is still within `recvWindow` of
    /// its timestamp then: the engine checks the window again, as the venue does.
    async fn place_late(app: &Arc<Shared>, key: String, p: Params, delay: Duration) -> Reply {
        bump(&app.harness.stats.order_responses_delayed);
        tracing::info!(
            delay_ms = delay.as_millis(),
            "sim-binanceus: an order reaches the matching engine late"
        );
        let app = Arc::clone(app);
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = app.harness.cancel.cancelled() => return,
            }
            let ts = p
                .required_u64("timestamp")
                .map_or(i64::MAX, |t| i64::try_from(t).unwrap_or(i64::MAX));
            let rw = p
                .u64("recvWindow")
                .ok()
                .flatten()
                .unwrap_or(DEFAULT_RECV_WINDOW);
            let rw = i64::try_from(rw).unwrap_or(i64::MAX);
            let reply = if app.now_ms().saturating_sub(ts) > rw {
                bump(&app.harness.stats.orders_rejected);
                bump(&app.harness.stats.timestamp_errors);
                Reply::error(&ApiError::outside_recv_window())
            } else {
                Self::place_now(&app, &key, &p).await
            };
            let _ = tx.send(reply);
        });
        rx.await
            .unwrap_or_else(|_| Reply::error(&ApiError::disconnected()))
    }

    /// Places an order that passed the security checks, and answers it.
    async fn place_now(app: &Arc<Shared>, key: &str, p: &Params) -> Reply {
        let (counts, verdict) = app.limits().count_order(key);
        let result = verdict.and_then(|()| {
            let req = OrderRequest::parse(p)?;
            let order = app.venue().place(key, &req, app.now_ms())?;
            Ok((req.resp_type, order))
        });
        let (resp_type, order) = match result {
            Ok(x) => x,
            Err(e) => {
                bump(&app.harness.stats.orders_rejected);
                let reply = Reply::error(&e);
                // -1015 answers are not guaranteed to carry the counts; send them anyway.
                return reply.with_order_counts(counts);
            }
        };
        let body = match resp_type {
            RespType::Ack => wire::order_ack(&order),
            RespType::Result => wire::order_result(&order),
            RespType::Full => wire::order_full(&order),
        };
        if app.harness.faults.take_order_timeout() {
            // The order is live at the venue; only the answer is lost in transit.
            bump(&app.harness.stats.order_responses_delayed);
            tracing::info!(
                order_id = order.order_id,
                "sim-binanceus: holding back an order response"
            );
            tokio::select! {
                () = tokio::time::sleep(Fault::ORDER_TIMEOUT_DELAY) => {}
                () = app.harness.cancel.cancelled() => {}
            }
        }
        Reply::json(&body).with_order_counts(counts)
    }

    fn cancel_order(&self, p: &Params, now: i64) -> Result<Value, ApiError> {
        let key = self.signed(p)?;
        let sel = order_sel(p)?;
        let cancel_cid = client_order_id_param(p, "newClientOrderId")?;
        let restriction = match p.non_empty("cancelRestrictions") {
            None => None,
            Some(r @ ("ONLY_NEW" | "ONLY_PARTIALLY_FILLED")) => Some(r),
            Some(_) => return Err(ApiError::bad_request(-1145, "Invalid cancelRestrictions")),
        };
        let mut v = self.app.venue();
        let idx = v.symbol_idx(p.required("symbol")?)?;
        if let Some(r) = restriction {
            let o = v
                .query(&key, idx, &sel)
                .map_err(|_| ApiError::unknown_order())?;
            let allowed = match r {
                "ONLY_NEW" => o.status == SimOrderStatus::New,
                _ => o.status == SimOrderStatus::PartiallyFilled,
            };
            if o.is_open() && !allowed {
                return Err(ApiError::bad_request(
                    -2011,
                    "Order was not canceled due to cancel restrictions.",
                ));
            }
        }
        let (o, cid) = v.cancel(&key, idx, &sel, cancel_cid, now)?;
        Ok(wire::order_cancel(&o, &cid, now))
    }
}

fn order_sel(p: &Params) -> Result<OrderSel, ApiError> {
    let order_id = p.u64("orderId")?;
    let client_order_id = p.non_empty("origClientOrderId").map(str::to_owned);
    if order_id.is_none() && client_order_id.is_none() {
        return Err(ApiError::bad_request(
            -1102,
            "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
        ));
    }
    Ok(OrderSel {
        order_id,
        client_order_id,
    })
}

fn bounded_limit(p: &Params, default: u64, max: u64) -> Result<usize, ApiError> {
    let limit = p.u64("limit")?.unwrap_or(default);
    if limit == 0 || limit > max {
        return Err(ApiError::invalid_parameter("limit"));
    }
    Ok(usize::try_from(limit).unwrap_or(usize::MAX))
}

/// `symbols=["BTCUSD","ETHUSD"]` (already URL-decoded).
fn parse_symbols(raw: &str) -> Result<Vec<String>, ApiError> {
    serde_json::from_str::<Vec<String>>(raw).map_err(|_| {
        ApiError::illegal_chars(
            "symbols",
            r#"^\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\]$"#,
        )
    })
}

fn symbol_info(s: &SimSymbol) -> Value {
    json!({
        "symbol": s.symbol,
        "status": "TRADING",
        "baseAsset": s.base,
        "baseAssetPrecision": 8,
        "quoteAsset": s.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET"],
        "icebergAllowed": false,
        "ocoAllowed": false,
        "quoteOrderQtyMarketAllowed": true,
        "allowTrailingStop": false,
        "cancelReplaceAllowed": false,
        "isSpotTradingAllowed": true,
        "isMarginTradingAllowed": false,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": fmt8(s.tick_size), "maxPrice": fmt8(s.max_price()), "tickSize": fmt8(s.tick_size)},
            {"filterType": "LOT_SIZE", "minQty": fmt8(s.min_qty), "maxQty": fmt8(s.max_qty), "stepSize": fmt8(s.step_size)},
            {"filterType": "MIN_NOTIONAL", "minNotional": fmt8(s.min_notional), "applyToMarket": true, "avgPriceMins": 0},
        ],
        "permissions": ["SPOT"],
        "defaultSelfTradePreventionMode": "NONE",
        "allowedSelfTradePreventionModes": ["NONE"],
    })
}
