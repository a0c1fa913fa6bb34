//! The REST API (`/api/v3/brokerage/...`), as a Coinbase Advanced Trade client sees it.
//!
//! One fallback handler serves every venue path, because what surrounds an endpoint is
//! venue behaviour too: every request passes the same pipeline, and every failure is the
//! venue's answer rather than an axum extractor rejection:
//!
//! 1. route (unknown path: 404 JSON),
//! 2. an injected storm (429 with `x-ratelimit-*`), an injected 5xx (503, nothing runs),
//! 3. the JWT (private endpoints; any failure is 401 with the plain body `Unauthorized`),
//! 4. the per-key (or public) request window (429 with the headers),
//! 5. the endpoint. Malformed input is 400 `{"error":"INVALID_ARGUMENT",...}`; business
//!    rejects of an order are HTTP 200 with `success:false` (reference 1.3, 1.4).
//!
//! Money and sizes are decimal strings everywhere. Choices the reference marks as
//! unconfirmed: order statuses of IOC/FOK remainders (`CANCELLED` when something filled,
//! `EXPIRED` otherwise), the reject enum spellings, and fees, which the shared engine
//! charges in the asset received and this module reports in quote currency at the fill
//! price (Coinbase has no fee-asset field).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::auth::Target;
use super::state::{RateInfo, Shared};
use super::venue::{Placed, engine_id, order_uuid};
use crate::engine::{
    FilterKind, NewOrder, OrderKind, Reject, SimOrder, SimOrderStatus, SimOrderType, SimSide,
    SimSymbol, SimTimeInForce,
};
use crate::harness::{Fault, bump};

const PREFIX: &str = "/api/v3/brokerage";
/// Most ids one batch_cancel may name (reference: commonly 100, unconfirmed).
const MAX_BATCH_CANCEL: usize = 100;

/// The endpoints served.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    Time,
    Accounts,
    Products,
    Product(String),
    BestBidAsk,
    ProductBook,
    CreateOrder,
    BatchCancel,
    OrdersBatch,
    Fills,
    Order(String),
}

impl Endpoint {
    fn route(method: &Method, path: &str) -> Option<Self> {
        let rest = path.strip_prefix(PREFIX)?;
        let get = *method == Method::GET;
        let post = *method == Method::POST;
        Some(match rest {
            "/time" if get => Self::Time,
            "/accounts" if get => Self::Accounts,
            "/products" if get => Self::Products,
            "/best_bid_ask" if get => Self::BestBidAsk,
            "/product_book" if get => Self::ProductBook,
            "/orders" if post => Self::CreateOrder,
            "/orders/batch_cancel" if post => Self::BatchCancel,
            "/orders/historical/batch" if get => Self::OrdersBatch,
            "/orders/historical/fills" if get => Self::Fills,
            _ if get => {
                if let Some(id) = rest.strip_prefix("/products/")
                    && !id.is_empty()
                    && !id.contains('/')
                {
                    Self::Product(id.to_owned())
                } else if let Some(id) = rest.strip_prefix("/orders/historical/")
                    && !id.is_empty()
                    && !id.contains('/')
                {
                    Self::Order(id.to_owned())
                } else {
                    return None;
                }
            }
            _ => return None,
        })
    }

    fn private(&self) -> bool {
        !matches!(self, Self::Time)
    }
}

/// A venue error answer (4xx/5xx JSON).
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    error: &'static str,
    message: String,
}

impl ApiError {
    fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "INVALID_ARGUMENT",
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            error: "NOT_FOUND",
            message: message.into(),
        }
    }

    fn response(&self) -> Response {
        let body =
            json!({"error": self.error, "message": self.message, "error_details": self.message});
        (self.status, axum::Json(body)).into_response()
    }
}

fn with_rate(mut r: Response, info: RateInfo) -> Response {
    let h = r.headers_mut();
    for (name, v) in [
        ("x-ratelimit-limit", i64::from(info.limit)),
        ("x-ratelimit-remaining", i64::from(info.remaining)),
        ("x-ratelimit-reset", info.reset),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v.to_string()) {
            h.insert(HeaderName::from_static(name), v);
        }
    }
    r
}

fn too_many(info: RateInfo) -> Response {
    let body =
        json!({"error": "RESOURCE_EXHAUSTED", "message": "Too Many Requests", "error_details": ""});
    with_rate(
        (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response(),
        info,
    )
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [("content-type", "text/plain; charset=utf-8")],
        "Unauthorized",
    )
        .into_response()
}

/// The host a request was sent to: `Host` (HTTP/1.1) or the authority (HTTP/2).
fn request_host<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> &'a str {
    headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or("")
}

/// The fallback handler: every venue request lands here.
pub(crate) async fn api(
    State(app): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    bump(&app.harness.stats.rest_requests);
    let response = serve(&app, &method, &uri, &headers, &body).await;
    app.harness.stats.record_status(response.status().as_u16());
    response
}

async fn serve(
    app: &Arc<Shared>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let Some(ep) = Endpoint::route(method, uri.path()) else {
        return ApiError::not_found("Not Found").response();
    };
    let now = app.now_ms();
    if app.limits().arrived_early(ep.private(), now) {
        bump(&app.harness.stats.rate_limit_violations);
    }
    // Bound first: the guard of `limits()` must be gone before `announce` locks again.
    let storm = app.limits().storm_verdict(now, ep.private());
    if let Some(info) = storm {
        app.limits().announce(ep.private(), info.reset);
        return too_many(info);
    }
    if app.harness.faults.take_server_error() {
        let body =
            json!({"error": "UNAVAILABLE", "message": "service unavailable", "error_details": ""});
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    }
    let account = if ep.private() {
        let target = Target {
            method: method.as_str(),
            host: request_host(uri, headers),
            path: uri.path(),
        };
        let auth = headers.get("authorization").and_then(|h| h.to_str().ok());
        let verified = app
            .verifier()
            .verify(auth, &target, now.div_euclid(1000), app.rules);
        match verified {
            Ok(name) => Some(name),
            Err(e) => {
                tracing::debug!(reason = %e, "sim-coinbase: JWT refused");
                return unauthorized();
            }
        }
    } else {
        None
    };
    let info = app.limits().admit(account.as_deref(), now);
    if !info.allowed {
        app.limits().announce(ep.private(), info.reset);
        return too_many(info);
    }
    let query = Query::parse(uri.query().unwrap_or(""));
    let account = account.unwrap_or_default();
    let result = match ep {
        Endpoint::Time => Ok(time_body(now)),
        Endpoint::Accounts => accounts(app, &account, &query, now),
        Endpoint::Products => Ok(products(app, &query, now)),
        Endpoint::Product(id) => product(app, &id, now),
        Endpoint::BestBidAsk => best_bid_ask(app, &query, now),
        Endpoint::ProductBook => product_book(app, &query, now),
        Endpoint::CreateOrder => {
            return with_rate(create_order(app, &account, body, now).await, info);
        }
        Endpoint::BatchCancel => batch_cancel(app, &account, body, now),
        Endpoint::OrdersBatch => orders_batch(app, &account, &query),
        Endpoint::Fills => fills(app, &account, &query),
        Endpoint::Order(id) => get_order(app, &account, &id),
    };
    let r = match result {
        Ok(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Err(e) => e.response(),
    };
    with_rate(r, info)
}

/// Query parameters, repeated keys kept (`product_ids=A&product_ids=B`).
#[derive(Debug, Default)]
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: &str) -> Self {
        Self(
            form_urlencoded::parse(raw.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn one(&self, name: &str) -> Option<&str> {
        self.all(name).first().copied()
    }

    /// `(offset, limit)` from `cursor` and `limit`.
    fn page(&self, (default, max): (usize, usize)) -> Result<(usize, usize), ApiError> {
        let limit = match self.one("limit") {
            None => default,
            Some(l) => match l.parse::<usize>() {
                Ok(0) => default,
                Ok(n) => n.min(max),
                Err(_) => return Err(ApiError::invalid(format!("invalid limit {l:?}"))),
            },
        };
        let offset = match self.one("cursor") {
            None => 0,
            Some(c) => c
                .parse::<usize>()
                .map_err(|_| ApiError::invalid(format!("invalid cursor {c:?}")))?,
        };
        Ok((offset, limit))
    }
}

/// A page of `items` and the next cursor (`""` when there is none).
fn paginate<T>(items: Vec<T>, (offset, limit): (usize, usize)) -> (Vec<T>, bool, String) {
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(offset).take(limit).collect();
    let end = offset.saturating_add(page.len());
    let has_next = end < total;
    let cursor = if has_next {
        end.to_string()
    } else {
        String::new()
    };
    (page, has_next, cursor)
}

/// A decimal as the venue writes it: a string without trailing zeros.
pub(crate) fn dec(d: Decimal) -> String {
    d.normalize().to_string()
}

/// RFC 3339 UTC with microseconds, from epoch ms.
pub(crate) fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let micros = ms.rem_euclid(1000) * 1000;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses RFC 3339 (`2026-01-02T03:04:05[.fff]Z` or with `±hh:mm`) to epoch ms.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut ms = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let digits = &frac[..n];
        let first3: String = digits.chars().chain("000".chars()).take(3).collect();
        ms = first3.parse::<i64>().ok()?;
        rest = &frac[n..];
    }
    let offset_s = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            sign * (rest[1..3].parse::<i64>().ok()? * 3600 + rest[4..6].parse::<i64>().ok()? * 60)
        }
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset_s;
    Some(secs * 1000 + ms)
}

fn time_body(now: i64) -> Value {
    json!({
        "iso": rfc3339(now),
        "epochSeconds": now.div_euclid(1000).to_string(),
        "epochMillis": now.to_string(),
    })
}

fn fiat(currency: &str) -> bool {
    matches!(currency, "USD" | "EUR" | "GBP" | "CAD" | "SGD")
}

fn accounts(app: &Shared, account: &str, q: &Query, now: i64) -> Result<Value, ApiError> {
    let page = q.page(app.page)?;
    let v = app.venue();
    let pos = v.account_pos(account);
    let lines = v.balances(account);
    drop(v);
    let all: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, (cur, free, locked))| {
            json!({
                "uuid": format!("{:08x}-0000-4000-a000-{i:012x}", pos as u64),
                "name": format!("{cur} Wallet"),
                "currency": cur,
                "available_balance": {"value": dec(*free), "currency": cur},
                "default": true,
                "active": true,
                "created_at": "2024-01-01T00:00:00Z",
                "updated_at": rfc3339(now),
                "deleted_at": null,
                "type": if fiat(cur) { "ACCOUNT_TYPE_FIAT" } else { "ACCOUNT_TYPE_CRYPTO" },
                "ready": true,
                "hold": {"value": dec(*locked), "currency": cur},
                "retail_portfolio_id": format!("{:08x}-0000-4000-b000-000000000000", pos as u64),
                "platform": "ACCOUNT_PLATFORM_CONSUMER",
            })
        })
        .collect();
    let (page, has_next, cursor) = paginate(all, page);
    Ok(json!({"size": page.len(), "accounts": page, "has_next": has_next, "cursor": cursor}))
}

fn product_json(p: &SimSymbol, mid: Decimal) -> Value {
    let price = if p.tick_size.is_zero() {
        mid
    } else {
        (mid / p.tick_size).round() * p.tick_size
    };
    json!({
        "product_id": p.symbol,
        "price": dec(price),
        "price_percentage_change_24h": "0",
        "volume_24h": "0",
        "volume_percentage_change_24h": "0",
        "base_increment": dec(p.step_size),
        "quote_increment": dec(p.tick_size),
        "quote_min_size": dec(p.min_notional),
        "quote_max_size": dec(p.max_qty * p.max_price()),
        "base_min_size": dec(p.min_qty),
        "base_max_size": dec(p.max_qty),
        "base_name": p.base,
        "quote_name": p.quote,
        "watched": false,
        "is_disabled": false,
        "new": false,
        "status": "online",
        "cancel_only": false,
        "limit_only": false,
        "post_only": false,
        "trading_disabled": false,
        "auction_mode": false,
        "product_type": "SPOT",
        "quote_currency_id": p.quote,
        "base_currency_id": p.base,
        "fcm_trading_session_details": null,
        "mid_market_price": dec(mid),
        "alias": "",
        "alias_to": [],
        "base_display_symbol": p.base,
        "quote_display_symbol": p.quote,
        "view_only": false,
        "price_increment": dec(p.tick_size),
        "display_name": p.symbol,
        "product_venue": "CBE",
        "future_product_details": null,
    })
}

fn products(app: &Shared, q: &Query, _now: i64) -> Value {
    let wanted = q.all("product_ids");
    let v = app.venue();
    let list: Vec<Value> = v
        .products()
        .iter()
        .enumerate()
        .filter(|(_, p)| wanted.is_empty() || wanted.contains(&p.symbol.as_str()))
        .map(|(i, p)| product_json(p, v.reference_price(i)))
        .collect();
    json!({"num_products": list.len(), "products": list})
}

fn product(app: &Shared, id: &str, _now: i64) -> Result<Value, ApiError> {
    let v = app.venue();
    let idx = v
        .product_idx(id)
        .ok_or_else(|| ApiError::not_found("ProductID is invalid"))?;
    let spec = v
        .products()
        .into_iter()
        .nth(idx)
        .ok_or_else(|| ApiError::not_found("ProductID is invalid"))?;
    Ok(product_json(&spec, v.reference_price(idx)))
}

fn levels(levels: &[(Decimal, Decimal)]) -> Value {
    Value::Array(
        levels
            .iter()
            .map(|(p, q)| json!({"price": dec(*p), "size": dec(*q)}))
            .collect(),
    )
}

fn best_bid_ask(app: &Shared, q: &Query, now: i64) -> Result<Value, ApiError> {
    let v = app.venue();
    let mut ids: Vec<String> = q
        .all("product_ids")
        .into_iter()
        .map(str::to_owned)
        .collect();
    if ids.is_empty() {
        ids = v.products().into_iter().map(|p| p.symbol).collect();
    }
    let mut books = Vec::new();
    for id in &ids {
        let idx = v
            .product_idx(id)
            .ok_or_else(|| ApiError::invalid(format!("unknown product_id {id}")))?;
        let (bid, ask) = v.top(idx);
        books.push(json!({
            "product_id": id,
            "bids": levels(&bid.into_iter().collect::<Vec<_>>()),
            "asks": levels(&ask.into_iter().collect::<Vec<_>>()),
            "time": rfc3339(now),
        }));
    }
    Ok(json!({"pricebooks": books}))
}

fn product_book(app: &Shared, q: &Query, now: i64) -> Result<Value, ApiError> {
    let id = q
        .one("product_id")
        .ok_or_else(|| ApiError::invalid("product_id is required"))?;
    let limit = match q.one("limit") {
        None => usize::MAX,
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| ApiError::invalid(format!("invalid limit {l:?}")))?,
    };
    let limit = if limit == 0 { usize::MAX } else { limit };
    let v = app.venue();
    let idx = v
        .product_idx(id)
        .ok_or_else(|| ApiError::not_found("ProductID is invalid"))?;
    let (_, bids, asks) = v.depth(idx, limit);
    let mid = v.reference_price(idx);
    let (bb, ba) = (bids.first().map(|l| l.0), asks.first().map(|l| l.0));
    let (spread, bps) = match (bb, ba) {
        (Some(b), Some(a)) if !mid.is_zero() => {
            let s = a - b;
            (s, (s / mid * Decimal::from(10_000)).round_dp(8))
        }
        _ => (Decimal::ZERO, Decimal::ZERO),
    };
    Ok(json!({
        "pricebook": {"product_id": id, "bids": levels(&bids), "asks": levels(&asks), "time": rfc3339(now)},
        "last": dec(mid),
        "mid_market": dec(mid),
        "spread_bps": dec(bps),
        "spread_absolute": dec(spread),
    }))
}

/// The fee of one fill in quote currency.
pub(crate) fn fee_quote(fill: &crate::engine::SimFill, spec_quote: Option<&str>) -> Decimal {
    if Some(fill.commission_asset.as_str()) == spec_quote {
        fill.commission
    } else {
        (fill.commission * fill.price).round_dp(8)
    }
}

pub(crate) fn quote_of(order: &SimOrder) -> Option<String> {
    order.symbol.split_once('-').map(|(_, q)| q.to_owned())
}

pub(crate) fn side_str(s: SimSide) -> &'static str {
    match s {
        SimSide::Buy => "BUY",
        SimSide::Sell => "SELL",
    }
}

pub(crate) fn status_str(o: &SimOrder, expired_gtd: bool) -> &'static str {
    match o.status {
        SimOrderStatus::New | SimOrderStatus::PartiallyFilled => "OPEN",
        SimOrderStatus::Filled => "FILLED",
        SimOrderStatus::Canceled if expired_gtd => "EXPIRED",
        SimOrderStatus::Canceled => "CANCELLED",
        SimOrderStatus::Expired if o.executed_qty > Decimal::ZERO => "CANCELLED",
        SimOrderStatus::Expired => "EXPIRED",
        SimOrderStatus::Rejected => "FAILED",
    }
}

pub(crate) fn tif_of(config: &Value) -> &'static str {
    let key = config
        .as_object()
        .and_then(|m| m.keys().next())
        .map_or("", String::as_str);
    match key {
        "limit_limit_gtc" => "GOOD_UNTIL_CANCELLED",
        "limit_limit_gtd" => "GOOD_UNTIL_DATE_TIME",
        "limit_limit_fok" => "FILL_OR_KILL",
        "market_market_ioc" | "sor_limit_ioc" => "IMMEDIATE_OR_CANCEL",
        _ => "UNKNOWN_TIME_IN_FORCE",
    }
}

fn order_json(o: &SimOrder, config: &Value, expired_gtd: bool, user: &str) -> Value {
    let quote = quote_of(o);
    let fees: Decimal = o.fills.iter().map(|f| fee_quote(f, quote.as_deref())).sum();
    let filled_value = o.cummulative_quote_qty;
    let avg = if o.executed_qty.is_zero() {
        Decimal::ZERO
    } else {
        (filled_value / o.executed_qty).round_dp(8)
    };
    let pct = if o.orig_qty.is_zero() {
        if o.status == SimOrderStatus::Filled {
            Decimal::from(100)
        } else {
            Decimal::ZERO
        }
    } else {
        (o.executed_qty / o.orig_qty * Decimal::from(100)).round_dp(2)
    };
    let after_fees = match o.side {
        SimSide::Buy => filled_value + fees,
        SimSide::Sell => filled_value - fees,
    };
    json!({
        "order_id": order_uuid(o.order_id),
        "product_id": o.symbol,
        "user_id": user,
        "order_configuration": config,
        "side": side_str(o.side),
        "client_order_id": o.client_order_id,
        "status": status_str(o, expired_gtd),
        "time_in_force": tif_of(config),
        "created_time": rfc3339(o.time),
        "completion_percentage": dec(pct),
        "filled_size": dec(o.executed_qty),
        "average_filled_price": dec(avg),
        "fee": "",
        "number_of_fills": o.fills.len().to_string(),
        "filled_value": dec(filled_value),
        "pending_cancel": false,
        "size_in_quote": o.orig_quote_order_qty > Decimal::ZERO,
        "total_fees": dec(fees),
        "size_inclusive_of_fees": false,
        "total_value_after_fees": dec(after_fees),
        "trigger_status": "INVALID_ORDER_TYPE",
        "order_type": match o.order_type { SimOrderType::Limit => "LIMIT", SimOrderType::Market => "MARKET" },
        "reject_reason": "REJECT_REASON_UNSPECIFIED",
        "settled": !o.is_open(),
        "product_type": "SPOT",
        "reject_message": "",
        "cancel_message": "",
        "order_placement_source": "RETAIL_ADVANCED",
        "outstanding_hold_amount": dec(o.locked),
        "is_liquidation": false,
        "last_fill_time": o.fills.last().map(|f| rfc3339(f.time)),
        "edit_history": [],
        "leverage": "",
        "margin_type": "UNKNOWN_MARGIN_TYPE",
        "retail_portfolio_id": "",
        "originating_order_id": "",
        "attached_order_id": "",
    })
}

/// A business reject: HTTP 200, `success:false` (reference 1.3).
fn business_reject(error: &str, preview: &str, message: &str, config: &Value) -> Value {
    json!({
        "success": false,
        "failure_reason": "UNKNOWN_FAILURE_REASON",
        "order_id": "",
        "error_response": {
            "error": error,
            "message": message,
            "error_details": "",
            "preview_failure_reason": preview,
            "new_order_failure_reason": "UNKNOWN_FAILURE_REASON",
        },
        "order_configuration": config,
    })
}

fn reject_body(r: Reject, req: &NewOrder, spec: Option<&SimSymbol>, config: &Value) -> Value {
    let qty = match &req.kind {
        OrderKind::Limit { qty, .. } | OrderKind::Market { qty: Some(qty), .. } => Some(*qty),
        OrderKind::Market { .. } => None,
    };
    let (error, preview, msg) = match r {
        Reject::InsufficientBalance => (
            "INSUFFICIENT_FUND",
            "PREVIEW_INSUFFICIENT_FUND",
            "Insufficient balance in source account",
        ),
        Reject::Filter(FilterKind::LotSize) => match (spec, qty) {
            (Some(s), Some(q)) if q < s.min_qty => (
                "INVALID_BASE_SIZE_TOO_SMALL",
                "PREVIEW_INVALID_BASE_SIZE_TOO_SMALL",
                "base size is below the minimum",
            ),
            (Some(s), Some(q)) if q > s.max_qty => (
                "INVALID_BASE_SIZE_TOO_LARGE",
                "PREVIEW_INVALID_BASE_SIZE_TOO_LARGE",
                "base size is above the maximum",
            ),
            _ => (
                "INVALID_SIZE_PRECISION",
                "PREVIEW_INVALID_SIZE_PRECISION",
                "base size is not a multiple of the base increment",
            ),
        },
        Reject::Filter(FilterKind::Price) => (
            "INVALID_PRICE_PRECISION",
            "PREVIEW_INVALID_PRICE_PRECISION",
            "limit price is not a multiple of the quote increment",
        ),
        Reject::Filter(FilterKind::MinNotional) => (
            "INVALID_QUOTE_SIZE_TOO_SMALL",
            "PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL",
            "order value is below the quote minimum",
        ),
        Reject::UnknownInstrument => (
            "INVALID_PRODUCT_ID",
            "PREVIEW_INVALID_PRODUCT_ID",
            "ProductID is invalid",
        ),
        Reject::MissingQuantity => (
            "INVALID_SIZE",
            "PREVIEW_INVALID_ORDER_CONFIG",
            "no size given",
        ),
        Reject::DuplicateClientOrderId
        | Reject::UnknownOrder
        | Reject::OrderNotOpen
        | Reject::Internal => (
            "UNKNOWN_FAILURE_REASON",
            "UNKNOWN_PREVIEW_FAILURE_REASON",
            "order could not be placed",
        ),
    };
    business_reject(error, preview, msg, config)
}

fn dec_field(m: &Map<String, Value>, name: &str) -> Result<Option<Decimal>, ApiError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .parse::<Decimal>()
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("{name} is not a decimal: {s:?}"))),
        Some(_) => Err(ApiError::invalid(format!(
            "{name} must be a decimal string"
        ))),
    }
}

fn required(m: &Map<String, Value>, name: &str) -> Result<Decimal, ApiError> {
    dec_field(m, name)?.ok_or_else(|| ApiError::invalid(format!("{name} is required")))
}

/// What a create-order body asks for, before the engine sees it.
enum Parsed {
    Order(NewOrder, Option<i64>, bool),
    Unsupported(String),
}

fn parse_order(body: &Value) -> Result<Parsed, ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::invalid("body must be a JSON object"))?;
    let str_field = |name: &str| -> Result<String, ApiError> {
        match obj.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(ApiError::invalid(format!("{name} is required"))),
        }
    };
    let client_order_id = str_field("client_order_id")?;
    let product_id = str_field("product_id")?;
    let side = match str_field("side")?.as_str() {
        "BUY" => SimSide::Buy,
        "SELL" => SimSide::Sell,
        other => return Err(ApiError::invalid(format!("invalid side {other:?}"))),
    };
    let cfg = obj
        .get("order_configuration")
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::invalid("order_configuration is required"))?;
    if cfg.len() != 1 {
        return Err(ApiError::invalid(
            "order_configuration must hold exactly one configuration",
        ));
    }
    let Some((kind, params)) = cfg.iter().next() else {
        return Err(ApiError::invalid("order_configuration is empty"));
    };
    let p = params
        .as_object()
        .ok_or_else(|| ApiError::invalid(format!("{kind} must be an object")))?;
    let post_only = matches!(p.get("post_only"), Some(Value::Bool(true)));
    let limit = |tif| -> Result<OrderKind, ApiError> {
        let price = required(p, "limit_price")?;
        let qty = match (dec_field(p, "base_size")?, dec_field(p, "quote_size")?) {
            (Some(b), None) => b,
            (None, Some(q)) if price > Decimal::ZERO => (q / price).round_dp(8),
            (None, Some(_)) => return Err(ApiError::invalid("limit_price must be positive")),
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid("send base_size or quote_size, not both"));
            }
            (None, None) => return Err(ApiError::invalid("base_size is required")),
        };
        Ok(OrderKind::Limit { price, qty, tif })
    };
    let mut end = None;
    let kind_parsed = match kind.as_str() {
        "market_market_ioc" => {
            let (b, q) = (dec_field(p, "base_size")?, dec_field(p, "quote_size")?);
            if b.is_some() == q.is_some() {
                return Err(ApiError::invalid(
                    "market_market_ioc needs exactly one of base_size and quote_size",
                ));
            }
            OrderKind::Market {
                qty: b,
                quote_qty: q,
            }
        }
        "limit_limit_gtc" => limit(SimTimeInForce::Gtc)?,
        "limit_limit_gtd" => {
            let e = match p.get("end_time") {
                Some(Value::String(s)) => parse_rfc3339(s)
                    .ok_or_else(|| ApiError::invalid(format!("end_time is not RFC 3339: {s:?}")))?,
                _ => return Err(ApiError::invalid("end_time is required")),
            };
            end = Some(e);
            limit(SimTimeInForce::Gtc)?
        }
        "limit_limit_fok" => limit(SimTimeInForce::Fok)?,
        "sor_limit_ioc" => limit(SimTimeInForce::Ioc)?,
        other => return Ok(Parsed::Unsupported(other.to_owned())),
    };
    Ok(Parsed::Order(
        NewOrder {
            symbol: product_id,
            side,
            kind: kind_parsed,
            client_order_id: Some(client_order_id),
        },
        end,
        post_only,
    ))
}

async fn create_order(app: &Shared, account: &str, body: &Bytes, now: i64) -> Response {
    let ok = |v: Value| (StatusCode::OK, axum::Json(v)).into_response();
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return ApiError::invalid(format!("invalid JSON body: {e}")).response(),
    };
    let config = value
        .get("order_configuration")
        .cloned()
        .unwrap_or(Value::Null);
    let (req, end, post_only) = match parse_order(&value) {
        Ok(Parsed::Order(r, e, p)) => (r, e, p),
        Ok(Parsed::Unsupported(kind)) => {
            bump(&app.harness.stats.orders_rejected);
            return ok(business_reject(
                "UNSUPPORTED_ORDER_CONFIGURATION",
                "PREVIEW_INVALID_ORDER_CONFIG",
                &format!("order configuration {kind} is not supported by this simulator"),
                &config,
            ));
        }
        Err(e) => return e.response(),
    };
    if end.is_some_and(|e| e <= now) {
        return ApiError::invalid("end_time must be in the future").response();
    }
    let placed = {
        let mut v = app.venue();
        let idx = v.product_idx(&req.symbol);
        let spec = idx.and_then(|i| v.products().into_iter().nth(i));
        let repeated = req
            .client_order_id
            .as_deref()
            .is_some_and(|c| v.by_client_id(account, c).is_some());
        let crosses = match (&req.kind, idx) {
            _ if repeated => false,
            (OrderKind::Limit { price, .. }, Some(i)) if post_only => {
                let (bid, ask) = v.top(i);
                match req.side {
                    SimSide::Buy => ask.is_some_and(|a| *price >= a.0),
                    SimSide::Sell => bid.is_some_and(|b| *price <= b.0),
                }
            }
            _ => false,
        };
        if crosses {
            Err(business_reject(
                "INVALID_LIMIT_PRICE_POST_ONLY",
                "PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY",
                "post-only limit price would cross the book",
                &config,
            ))
        } else {
            v.place(account, &req, config.clone(), end, now)
                .map(|p| {
                    let o = match &p {
                        Placed::New(o) | Placed::Original(o) => o.clone(),
                    };
                    let cfg = v.config_of(o.order_id);
                    (o, cfg)
                })
                .map_err(|r| reject_body(r, &req, spec.as_ref(), &config))
        }
    };
    let (order, cfg) = match placed {
        Ok(x) => x,
        Err(body) => {
            bump(&app.harness.stats.orders_rejected);
            return ok(body);
        }
    };
    let id = order_uuid(order.order_id);
    let body = json!({
        "success": true,
        "failure_reason": "UNKNOWN_FAILURE_REASON",
        "order_id": id,
        "success_response": {
            "order_id": id,
            "product_id": order.symbol,
            "side": side_str(order.side),
            "client_order_id": order.client_order_id,
            "attached_order_id": "",
        },
        "order_configuration": cfg,
    });
    if app.harness.faults.take_order_timeout() {
        // The order is live at the venue; only the answer is late.
        bump(&app.harness.stats.order_responses_delayed);
        tracing::info!(order_id = %id, "sim-coinbase: holding back an order response");
        tokio::select! {
            () = tokio::time::sleep(Fault::ORDER_TIMEOUT_DELAY) => {}
            () = app.harness.cancel.cancelled() => {}
        }
    }
    ok(body)
}

fn batch_cancel(app: &Shared, account: &str, body: &Bytes, now: i64) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))?;
    let ids = v
        .get("order_ids")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::invalid("order_ids is required"))?;
    if ids.is_empty() || ids.len() > MAX_BATCH_CANCEL {
        return Err(ApiError::invalid(format!(
            "order_ids must name 1 to {MAX_BATCH_CANCEL} orders"
        )));
    }
    let mut venue = app.venue();
    let mut results = Vec::new();
    for id in ids {
        let Some(s) = id.as_str() else {
            return Err(ApiError::invalid("order_ids must be strings"));
        };
        let outcome = match engine_id(s) {
            None => Err(Reject::UnknownOrder),
            Some(eid) => venue.cancel(account, eid, now),
        };
        let reason = match outcome {
            Ok(_) => "UNKNOWN_CANCEL_FAILURE_REASON",
            Err(Reject::OrderNotOpen) => "INVALID_CANCEL_REQUEST",
            Err(_) => "UNKNOWN_CANCEL_ORDER",
        };
        results.push(json!({"success": outcome.is_ok(), "failure_reason": reason, "order_id": s}));
    }
    Ok(json!({"results": results}))
}

fn get_order(app: &Shared, account: &str, id: &str) -> Result<Value, ApiError> {
    let v = app.venue();
    let o = engine_id(id)
        .and_then(|eid| v.order(account, eid))
        .ok_or_else(|| ApiError::not_found("order with this orderID was not found"))?;
    Ok(
        json!({"order": order_json(&o, &v.config_of(o.order_id), v.is_expired(o.order_id), account)}),
    )
}

fn orders_batch(app: &Shared, account: &str, q: &Query) -> Result<Value, ApiError> {
    let page = q.page(app.page)?;
    let products = q.all("product_ids");
    let statuses = q.all("order_status");
    let ids = q.all("order_ids");
    let side = q.one("order_side");
    let v = app.venue();
    let all: Vec<Value> = v
        .orders_of(account)
        .iter()
        .filter(|o| products.is_empty() || products.contains(&o.symbol.as_str()))
        .filter(|o| ids.is_empty() || ids.contains(&order_uuid(o.order_id).as_str()))
        .filter(|o| side.is_none_or(|s| s == side_str(o.side)))
        .filter(|o| {
            statuses.is_empty() || statuses.contains(&status_str(o, v.is_expired(o.order_id)))
        })
        .map(|o| {
            order_json(
                o,
                &v.config_of(o.order_id),
                v.is_expired(o.order_id),
                account,
            )
        })
        .collect();
    let (page, has_next, cursor) = paginate(all, page);
    Ok(json!({"orders": page, "sequence": "0", "has_next": has_next, "cursor": cursor}))
}

fn fills(app: &Shared, account: &str, q: &Query) -> Result<Value, ApiError> {
    let page = q.page(app.page)?;
    let ids = q.all("order_ids");
    let products = q.all("product_ids");
    let v = app.venue();
    let mut all = Vec::new();
    for o in v.orders_of(account) {
        let oid = order_uuid(o.order_id);
        if !(ids.is_empty() || ids.contains(&oid.as_str()))
            || !(products.is_empty() || products.contains(&o.symbol.as_str()))
        {
            continue;
        }
        let quote = quote_of(&o);
        for f in o.fills.iter().rev() {
            all.push((
                f.time,
                json!({
                    "entry_id": format!("{oid}-{}", f.trade_id),
                    "trade_id": f.trade_id.to_string(),
                    "order_id": oid,
                    "trade_time": rfc3339(f.time),
                    "trade_type": "FILL",
                    "price": dec(f.price),
                    "size": dec(f.qty),
                    "commission": dec(fee_quote(f, quote.as_deref())),
                    "product_id": o.symbol,
                    "sequence_timestamp": rfc3339(f.time),
                    "liquidity_indicator": if f.maker { "MAKER" } else { "TAKER" },
                    "size_in_quote": false,
                    "user_id": account,
                    "side": side_str(o.side),
                    "retail_portfolio_id": "",
                }),
            ));
        }
    }
    all.sort_by_key(|f| std::cmp::Reverse(f.0));
    let (page, _, cursor) = paginate(all.into_iter().map(|(_, f)| f).collect(), page);
    Ok(json!({"fills": page, "cursor": cursor}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let g = Method::GET;
        assert_eq!(
            Endpoint::route(&g, "/api/v3/brokerage/orders/historical/batch"),
            Some(Endpoint::OrdersBatch)
        );
        assert_eq!(
            Endpoint::route(&g, "/api/v3/brokerage/orders/historical/fills"),
            Some(Endpoint::Fills)
        );
        assert_eq!(
            Endpoint::route(&g, "/api/v3/brokerage/orders/historical/abc"),
            Some(Endpoint::Order("abc".into()))
        );
        assert_eq!(
            Endpoint::route(&g, "/api/v3/brokerage/products/BTC-USD"),
            Some(Endpoint::Product("BTC-USD".into()))
        );
        assert_eq!(
            Endpoint::route(&Method::POST, "/api/v3/brokerage/accounts"),
            None
        );
        assert_eq!(Endpoint::route(&g, "/api/v3/brokerage/products/a/b"), None);
    }

    #[test]
    fn rfc3339_round_trips() {
        let ms = 1_700_000_000_123;
        let s = rfc3339(ms);
        assert_eq!(s, "2023-11-14T22:13:20.123000Z");
        assert_eq!(parse_rfc3339(&s), Some(ms));
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20+01:00"),
            Some(1_700_000_000_000)
        );
        assert_eq!(parse_rfc3339("2023-11-14 22:13:20Z"), None);
        assert_eq!(parse_rfc3339("2023-13-14T22:13:20Z"), None);
        assert_eq!(parse_rfc3339("x"), None);
    }

    #[test]
    fn pages_have_cursors() {
        let (p, more, c) = paginate(vec![1, 2, 3], (0, 2));
        assert_eq!((p, more, c.as_str()), (vec![1, 2], true, "2"));
        let (p, more, c) = paginate(vec![1, 2, 3], (2, 2));
        assert_eq!((p, more, c.as_str()), (vec![3], false, ""));
    }
}
