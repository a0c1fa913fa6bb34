//! The v20 REST API (reference 3.2–3.10) on the REST host.
//!
//! One fallback handler routes by path segments, because the venue's paths are a small
//! tree under `/v3/accounts/{accountID}` and matching them by hand keeps every refusal
//! (401, 403, 404, 405) in one place and in the venue's body shape
//! (`{"errorMessage": ...}`). Order of checks per request, as a client meets them: the
//! rate limit and injected storms (429), injected 5xx (503), the bearer token (401),
//! `Accept-Datetime-Format` (400), the account id (403), then the endpoint.
//!
//! Every DateTime of an answer is written in the format the request asked for: the
//! venue builds its JSON with RFC 3339 strings and [`render`] rewrites each `time` /
//! `…Time` field for a `UNIX` client. Order placement validates the request the way the
//! venue does and answers 400 with an `orderRejectTransaction` (which has a transaction
//! id, like every refusal OANDA records) naming the `rejectReason`.
//!
//! Candles (`/v3/instruments/{instrument}/candles` and the account-scoped twin) come
//! from the price history since the simulator started, in buckets aligned to the epoch
//! (`dailyAlignment`, `alignmentTimezone` and `weeklyAlignment` are accepted and not
//! applied; `W` and `M` are 7- and 30-day buckets).
//!
//! Not served: order replace, trade close, the configuration `PATCH`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::state::Shared;
use super::time::{self, DateFormat};
use super::venue::{OrdState, OrdType, OrderReq, Outcome, Refusal, Venue};
use crate::harness::{Fault, bump};

/// Query parameters as `(name, value)` pairs.
pub(crate) fn query(uri: &Uri) -> Vec<(String, String)> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub(crate) fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// A JSON answer with the venue's headers.
pub(crate) fn reply(
    shared: &Shared,
    status: StatusCode,
    body: &Value,
    fmt: DateFormat,
) -> Response {
    let mut body = body.clone();
    render(&mut body, fmt);
    let mut r = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&shared.request_id().to_string()) {
        r.headers_mut().insert("RequestID", v);
    }
    shared.harness.stats.record_status(status.as_u16());
    r
}

/// An error answer: `{"errorMessage": msg}` (plus `errorCode` when given).
pub(crate) fn error(
    shared: &Shared,
    status: StatusCode,
    code: Option<&str>,
    msg: &str,
) -> Response {
    let mut b = json!({ "errorMessage": msg });
    if let (Some(c), Some(o)) = (code, b.as_object_mut()) {
        o.insert("errorCode".into(), c.into());
    }
    reply(shared, status, &b, DateFormat::Rfc3339)
}

/// Rewrites every DateTime field (`time`, `…Time`) into `fmt`.
pub(crate) fn render(v: &mut Value, fmt: DateFormat) {
    if fmt == DateFormat::Rfc3339 {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if (k == "time" || k.ends_with("Time"))
                    && let Value::String(s) = x
                    && s.contains('T')
                    && let Some(ns) = time::parse(s)
                {
                    *s = fmt.format(ns);
                } else {
                    render(x, fmt);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| render(x, fmt)),
        _ => {}
    }
}

/// What every request goes through before its endpoint: limits, faults, auth, the
/// DateTime format and the account. `Ok` carries the format and the path after
/// `/v3/accounts/{id}` (or `None` for `/v3/accounts` itself).
pub(crate) fn gate(
    shared: &Shared,
    headers: &HeaderMap,
    path: &str,
    rest: bool,
) -> Result<(DateFormat, Option<Vec<String>>), Box<Response>> {
    if rest {
        bump(&shared.harness.stats.rest_requests);
        if !shared.admit() {
            return Err(Box::new(error(
                shared,
                StatusCode::TOO_MANY_REQUESTS,
                None,
                "Rate limit violation of allowed requests.",
            )));
        }
        if shared.harness.faults.take_server_error() {
            return Err(Box::new(error(
                shared,
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "Service unavailable, please try again later.",
            )));
        }
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let token_ok = auth
        .strip_prefix("Bearer ")
        .is_some_and(|t| t.trim() == shared.cfg.token);
    if !token_ok {
        return Err(Box::new(error(
            shared,
            StatusCode::UNAUTHORIZED,
            None,
            "Insufficient authorization to perform request.",
        )));
    }
    let fmt_header = headers
        .get("accept-datetime-format")
        .and_then(|v| v.to_str().ok());
    let Some(fmt) = DateFormat::from_header(fmt_header) else {
        return Err(Box::new(error(
            shared,
            StatusCode::BAD_REQUEST,
            None,
            "Invalid value specified for 'Accept-Datetime-Format'",
        )));
    };
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(str::to_owned)
        .collect();
    if segs.len() == 4 && segs[0] == "v3" && segs[1] == "instruments" {
        return Ok((
            fmt,
            Some(vec!["instruments".into(), segs[2].clone(), segs[3].clone()]),
        ));
    }
    if segs.len() < 2 || segs[0] != "v3" || segs[1] != "accounts" {
        return Err(Box::new(error(
            shared,
            StatusCode::NOT_FOUND,
            None,
            "The requested resource could not be found.",
        )));
    }
    if segs.len() == 2 {
        return Ok((fmt, None));
    }
    if segs[2] != shared.cfg.account_id {
        return Err(Box::new(error(
            shared,
            StatusCode::FORBIDDEN,
            None,
            "The provided request was forbidden.",
        )));
    }
    Ok((fmt, Some(segs[3..].to_vec())))
}

/// The REST fallback handler.
pub(crate) async fn api(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (fmt, sub) = match gate(&shared, &headers, uri.path(), true) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let q = query(&uri);
    let Some(sub) = sub else {
        if method != Method::GET {
            return error(
                &shared,
                StatusCode::METHOD_NOT_ALLOWED,
                None,
                "The requested method is not allowed.",
            );
        }
        let body = json!({"accounts": [{"id": shared.cfg.account_id, "tags": []}]});
        return reply(&shared, StatusCode::OK, &body, fmt);
    };
    let parts: Vec<&str> = sub
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    let now = shared.now_ns();
    if method == Method::POST && parts == ["orders"] {
        let delayed = shared.harness.faults.take_order_timeout();
        let (status, b) = create_order(&shared, &body, now);
        if delayed {
            bump(&shared.harness.stats.order_responses_delayed);
            tokio::select! {
                () = tokio::time::sleep(Fault::ORDER_TIMEOUT_DELAY) => {}
                () = shared.harness.cancel.cancelled() => {}
            }
        }
        let mut r = reply(&shared, status, &b, fmt);
        // 201 names the created order (reference 3.2).
        if status == StatusCode::CREATED
            && let Some(oid) = b["orderCreateTransaction"]["id"].as_str()
            && let Some(host) = headers
                .get(axum::http::header::HOST)
                .and_then(|h| h.to_str().ok())
        {
            let scheme = if shared.cfg.tls.is_some() {
                "https"
            } else {
                "http"
            };
            let loc = format!(
                "{scheme}://{host}/v3/accounts/{}/orders/{oid}",
                shared.cfg.account_id
            );
            if let Ok(v) = HeaderValue::from_str(&loc) {
                r.headers_mut().insert(axum::http::header::LOCATION, v);
            }
        }
        return r;
    }
    let v = shared.venue();
    let last = v.last_tx().to_string();
    let with_last = |mut b: Value| {
        if let Some(o) = b.as_object_mut() {
            o.insert("lastTransactionID".into(), last.clone().into());
        }
        b
    };
    let not_found = |what: &str| {
        (
            StatusCode::NOT_FOUND,
            json!({"errorMessage": format!("The {what} specified does not exist")}),
        )
    };
    let (status, b) = match (&method, parts.as_slice()) {
        (&Method::GET, []) => (StatusCode::OK, with_last(json!({"account": v.account()}))),
        (&Method::GET, ["summary"]) => (StatusCode::OK, with_last(json!({"account": v.summary()}))),
        (&Method::GET, ["instruments"]) => match instruments(&v, param(&q, "instruments")) {
            Ok(list) => (StatusCode::OK, with_last(json!({"instruments": list}))),
            Err(m) => (StatusCode::BAD_REQUEST, json!({"errorMessage": m})),
        },
        (&Method::GET, ["pricing"]) => match names(&v, param(&q, "instruments")) {
            Ok(list) => {
                let prices: Vec<Value> = list.iter().filter_map(|n| v.price(n)).collect();
                let mut b = json!({"prices": prices, "time": time::rfc3339(now)});
                if param(&q, "includeHomeConversions")
                    .is_some_and(|x| x.eq_ignore_ascii_case("true"))
                    && let Some(o) = b.as_object_mut()
                {
                    o.insert("homeConversions".into(), Value::Array(v.home_conversions()));
                }
                (StatusCode::OK, b)
            }
            Err(m) => (StatusCode::BAD_REQUEST, json!({"errorMessage": m})),
        },
        (&Method::GET, ["changes"]) => {
            match param(&q, "sinceTransactionID").and_then(|s| s.parse::<u64>().ok()) {
                Some(since) if since <= v.last_tx() => {
                    shared.saw_changes(since);
                    let (changes, state) = v.changes(since);
                    (
                        StatusCode::OK,
                        with_last(json!({"changes": changes, "state": state})),
                    )
                }
                _ => (
                    StatusCode::BAD_REQUEST,
                    json!({"errorMessage": "Invalid value specified for 'sinceTransactionID'"}),
                ),
            }
        }
        (&Method::GET, ["orders"]) => {
            let state = match param(&q, "state").unwrap_or("PENDING") {
                "PENDING" => Ok(Some(OrdState::Pending)),
                "FILLED" => Ok(Some(OrdState::Filled)),
                "CANCELLED" => Ok(Some(OrdState::Cancelled)),
                // No order type here is ever triggered: a valid state with no orders.
                "TRIGGERED" => Err(true),
                "ALL" => Ok(None),
                _ => Err(false),
            };
            match state {
                Ok(state) => {
                    let count = count(&q);
                    let ids: Option<Vec<&str>> = param(&q, "ids").map(|s| s.split(',').collect());
                    let list: Vec<Value> = v
                        .list_orders(state, param(&q, "instrument"))
                        .into_iter()
                        .filter(|o| {
                            ids.as_ref()
                                .is_none_or(|ids| ids.contains(&o.id.to_string().as_str()))
                        })
                        .filter(|o| {
                            param(&q, "beforeID")
                                .and_then(|b| b.parse::<u64>().ok())
                                .is_none_or(|b| o.id < b)
                        })
                        .take(count)
                        .map(|o| v.order_json(o))
                        .collect();
                    (StatusCode::OK, with_last(json!({"orders": list})))
                }
                Err(true) => (StatusCode::OK, with_last(json!({"orders": []}))),
                Err(false) => (
                    StatusCode::BAD_REQUEST,
                    json!({"errorMessage": "Invalid value specified for 'state'"}),
                ),
            }
        }
        (&Method::GET, ["pendingOrders"]) => (
            StatusCode::OK,
            with_last(json!({"orders": v.pending_orders()})),
        ),
        (&Method::GET, ["orders", spec]) => match v.find_order(spec) {
            Some(o) => (StatusCode::OK, with_last(json!({"order": v.order_json(o)}))),
            None => not_found("Order"),
        },
        (&Method::PUT, ["orders", spec, "cancel"]) => {
            drop(v);
            let mut v = shared.venue();
            let r = v.cancel(spec, now);
            let last = v.last_tx().to_string();
            match r {
                Ok(tx) => {
                    let id = tx.get("id").cloned().unwrap_or(Value::Null);
                    (
                        StatusCode::OK,
                        json!({"orderCancelTransaction": tx, "relatedTransactionIDs": [id], "lastTransactionID": last}),
                    )
                }
                Err(true) => (
                    StatusCode::NOT_FOUND,
                    json!({"errorCode": "ORDER_DOESNT_EXIST", "errorMessage": "The Order specified does not exist", "lastTransactionID": last}),
                ),
                Err(false) => (
                    StatusCode::NOT_FOUND,
                    json!({"errorCode": "ORDER_DOESNT_EXIST", "errorMessage": "The Order specified is not pending", "lastTransactionID": last}),
                ),
            }
        }
        (&Method::GET, [which @ ("trades" | "openTrades")]) => {
            let open = match (*which, param(&q, "state").unwrap_or("OPEN")) {
                ("openTrades", _) | (_, "OPEN") => Some(true),
                (_, "CLOSED") => Some(false),
                _ => None,
            };
            let list: Vec<Value> = v
                .list_trades(open, param(&q, "instrument"))
                .into_iter()
                .take(count(&q))
                .map(|t| v.trade_json(t))
                .collect();
            (StatusCode::OK, with_last(json!({"trades": list})))
        }
        (&Method::GET, ["trades", spec]) => match v.find_trade(spec) {
            Some(t) => (StatusCode::OK, with_last(json!({"trade": v.trade_json(t)}))),
            None => not_found("Trade"),
        },
        (&Method::GET, ["instruments", inst, "candles"]) => candles(&v, inst, &q, now),
        (&Method::GET, ["positions"]) => (
            StatusCode::OK,
            with_last(json!({"positions": v.positions(false)})),
        ),
        (&Method::GET, ["openPositions"]) => (
            StatusCode::OK,
            with_last(json!({"positions": v.positions(true)})),
        ),
        (&Method::GET, ["positions", inst]) => match v.instrument(inst) {
            Some(i) => (
                StatusCode::OK,
                with_last(json!({"position": v.position_json(i)})),
            ),
            None => (
                StatusCode::BAD_REQUEST,
                json!({"errorMessage": "Invalid value specified for 'instrument'"}),
            ),
        },
        (&Method::PUT, ["positions", inst, "close"]) => {
            drop(v);
            let mut v = shared.venue();
            close_position(&mut v, inst, &body, now)
        }
        (&Method::GET, ["transactions", "sinceid"]) => {
            match param(&q, "id").and_then(|s| s.parse::<u64>().ok()) {
                Some(since) => (
                    StatusCode::OK,
                    with_last(json!({"transactions": v.txns_since(since)})),
                ),
                None => (
                    StatusCode::BAD_REQUEST,
                    json!({"errorMessage": "Invalid value specified for 'id'"}),
                ),
            }
        }
        (&Method::GET, ["transactions", id]) => match id
            .parse::<u64>()
            .ok()
            .filter(|i| *i >= 1)
            .and_then(|i| v.txns_since(i - 1).first())
        {
            Some(tx) => (StatusCode::OK, with_last(json!({"transaction": tx}))),
            None => not_found("Transaction"),
        },
        _ => (
            StatusCode::NOT_FOUND,
            json!({"errorMessage": "The requested resource could not be found."}),
        ),
    };
    reply(&shared, status, &b, fmt)
}

/// Seconds of a candle granularity.
fn granularity(g: &str) -> Option<i64> {
    Some(match g {
        "S5" => 5,
        "S10" => 10,
        "S15" => 15,
        "S30" => 30,
        "M1" => 60,
        "M2" => 120,
        "M4" => 240,
        "M5" => 300,
        "M10" => 600,
        "M15" => 900,
        "M30" => 1800,
        "H1" => 3600,
        "H2" => 7200,
        "H3" => 10_800,
        "H4" => 14_400,
        "H6" => 21_600,
        "H8" => 28_800,
        "H12" => 43_200,
        "D" => 86_400,
        "W" => 604_800,
        "M" => 2_592_000,
        _ => return None,
    })
}

fn candles(v: &Venue, inst: &str, q: &[(String, String)], now: i128) -> (StatusCode, Value) {
    let bad = |what: &str| {
        (
            StatusCode::BAD_REQUEST,
            json!({"errorMessage": format!("Invalid value specified for '{what}'")}),
        )
    };
    let g = param(q, "granularity").unwrap_or("S5");
    let Some(secs) = granularity(g) else {
        return bad("granularity");
    };
    let price = param(q, "price").unwrap_or("M");
    if price.is_empty() || !price.chars().all(|c| matches!(c, 'M' | 'B' | 'A')) {
        return bad("price");
    }
    let mut range = (None, None);
    for (k, slot) in [("from", &mut range.0), ("to", &mut range.1)] {
        if let Some(t) = param(q, k) {
            match time::parse(t) {
                Some(ns) => *slot = Some(ns),
                None => return bad(k),
            }
        }
    }
    let count = match param(q, "count").map(str::parse::<usize>) {
        None if range.0.is_some() && range.1.is_some() => 5000,
        None => 500,
        Some(Ok(c)) if (1..=5000).contains(&c) && (range.0.is_none() || range.1.is_none()) => c,
        Some(_) => return bad("count"),
    };
    match v.candles(inst, secs, price, range, count, now) {
        Some(c) => (
            StatusCode::OK,
            json!({"instrument": inst, "granularity": g, "candles": c}),
        ),
        None => bad("instrument"),
    }
}

fn count(q: &[(String, String)]) -> usize {
    param(q, "count")
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(50)
        .clamp(1, 500)
}

/// The `instruments` list of a request, checked; `None` lists every instrument.
fn names(v: &Venue, list: Option<&str>) -> Result<Vec<String>, String> {
    let Some(list) = list else {
        return Err("Invalid value specified for 'instruments'".to_owned());
    };
    let mut out = Vec::new();
    for n in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if v.instrument(n).is_none() {
            return Err(format!("Invalid value specified for 'instruments': {n}"));
        }
        out.push(n.to_owned());
    }
    if out.is_empty() {
        return Err("Invalid value specified for 'instruments'".to_owned());
    }
    Ok(out)
}

fn instruments(v: &Venue, list: Option<&str>) -> Result<Vec<Value>, String> {
    let wanted = match list {
        Some(l) => Some(names(v, Some(l))?),
        None => None,
    };
    Ok(v
        .instruments()
        .iter()
        .filter(|i| wanted.as_ref().is_none_or(|w| w.contains(&i.name)))
        .map(|i| {
            json!({
                "name": i.name, "type": i.kind, "displayName": i.display_name,
                "pipLocation": i.pip_location, "displayPrecision": i.display_precision,
                "tradeUnitsPrecision": i.trade_units_precision,
                "minimumTradeSize": i.minimum_trade_size.normalize().to_string(),
                "maximumTrailingStopDistance": "1.00000", "minimumTrailingStopDistance": "0.00050",
                "maximumPositionSize": "0", "maximumOrderUnits": i.maximum_order_units.normalize().to_string(),
                "marginRate": i.margin_rate.normalize().to_string(),
                "guaranteedStopLossOrderMode": "DISABLED",
                "tags": [{"type": "ASSET_CLASS", "name": i.kind}],
                "financing": {"longRate": "0", "shortRate": "0", "financingDaysOfWeek": []},
            })
        })
        .collect())
}

/// A decimal field sent as a string (or, leniently, a JSON number).
fn dec_field(o: &Map<String, Value>, k: &str) -> Option<Result<Decimal, ()>> {
    let v = o.get(k)?;
    Some(match v {
        Value::String(s) => s.trim().parse::<Decimal>().map_err(|_| ()),
        Value::Number(n) => n.to_string().parse::<Decimal>().map_err(|_| ()),
        _ => Err(()),
    })
}

fn str_field<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    o.get(k).and_then(Value::as_str)
}

/// The next 21:00 UTC after `now` (when a GFD order expires).
fn end_of_day(now: i128) -> i128 {
    let day = 86_400 * 1_000_000_000_i128;
    let cut = 21 * 3_600 * 1_000_000_000_i128;
    let start = now.div_euclid(day) * day + cut;
    if start > now { start } else { start + day }
}

/// Parses and checks an order request as the venue does.
fn parse_order(v: &Venue, o: &Map<String, Value>, now: i128) -> Result<OrderReq, Refusal> {
    let kind = match str_field(o, "type") {
        Some("MARKET") => OrdType::Market,
        Some("LIMIT") => OrdType::Limit,
        Some(_) => {
            return Err(Refusal::new(
                "TYPE_INVALID",
                "Order type not supported by this simulator",
            ));
        }
        None => {
            return Err(Refusal::new(
                "TYPE_INVALID",
                "The request was missing required data",
            ));
        }
    };
    let Some(name) = str_field(o, "instrument") else {
        return Err(Refusal::new(
            "INSTRUMENT_MISSING",
            "The order instrument is missing",
        ));
    };
    let Some(inst) = v.instrument(name) else {
        return Err(Refusal::new(
            "INSTRUMENT_UNKNOWN",
            "Invalid value specified for 'instrument'",
        ));
    };
    let units = match dec_field(o, "units") {
        None => return Err(Refusal::new("UNITS_MISSING", "The order units are missing")),
        Some(Err(())) => {
            return Err(Refusal::new(
                "UNITS_INVALID",
                "Invalid value specified for 'units'",
            ));
        }
        Some(Ok(u)) if u.is_zero() => {
            return Err(Refusal::new(
                "UNITS_INVALID",
                "Invalid value specified for 'units'",
            ));
        }
        Some(Ok(u)) => u,
    };
    if units.normalize().scale() > inst.trade_units_precision {
        return Err(Refusal::new(
            "UNITS_PRECISION_EXCEEDED",
            "The order units specified exceed the instrument's precision",
        ));
    }
    if units.abs() < inst.minimum_trade_size {
        return Err(Refusal::new(
            "UNITS_MINIMUM_NOT_MET",
            "The order units specified are below the instrument's minimum",
        ));
    }
    if units.abs() > inst.maximum_order_units {
        return Err(Refusal::new(
            "UNITS_LIMIT_EXCEEDED",
            "The order units specified exceed the instrument's maximum",
        ));
    }
    let tif = str_field(o, "timeInForce").unwrap_or(match kind {
        OrdType::Market => "FOK",
        OrdType::Limit => "GTC",
    });
    let allowed: &[&str] = match kind {
        OrdType::Market => &["FOK", "IOC"],
        OrdType::Limit => &["GTC", "GTD", "GFD", "FOK", "IOC"],
    };
    if !allowed.contains(&tif) {
        return Err(Refusal::new(
            "TIME_IN_FORCE_INVALID",
            "Invalid value specified for 'timeInForce'",
        ));
    }
    let gtd_ns = match tif {
        "GTD" => match str_field(o, "gtdTime").map(time::parse) {
            None => {
                return Err(Refusal::new(
                    "TIME_IN_FORCE_GTD_TIMESTAMP_MISSING",
                    "The GTD time is missing",
                ));
            }
            Some(None) => {
                return Err(Refusal::new(
                    "TIME_IN_FORCE_GTD_TIMESTAMP_MISSING",
                    "Invalid value specified for 'gtdTime'",
                ));
            }
            Some(Some(t)) if t <= now => {
                return Err(Refusal::new(
                    "TIME_IN_FORCE_GTD_TIMESTAMP_IN_PAST",
                    "The GTD time is in the past",
                ));
            }
            Some(Some(t)) => Some(t),
        },
        "GFD" => Some(end_of_day(now)),
        _ => None,
    };
    let price = match (kind, dec_field(o, "price")) {
        (OrdType::Market, _) => None,
        (OrdType::Limit, None) => {
            return Err(Refusal::new("PRICE_MISSING", "The order price is missing"));
        }
        (OrdType::Limit, Some(Err(()))) => {
            return Err(Refusal::new(
                "PRICE_INVALID",
                "Invalid value specified for 'price'",
            ));
        }
        (OrdType::Limit, Some(Ok(p))) if p <= Decimal::ZERO => {
            return Err(Refusal::new(
                "PRICE_INVALID",
                "Invalid value specified for 'price'",
            ));
        }
        (OrdType::Limit, Some(Ok(p))) => {
            // The engine's price band (100 times the start price): beyond it no venue
            // would take the price as meant.
            if p > inst.start_price * Decimal::ONE_HUNDRED {
                return Err(Refusal::new(
                    "PRICE_INVALID",
                    "Invalid value specified for 'price'",
                ));
            }
            if p.normalize().scale() > inst.display_precision {
                return Err(Refusal::new(
                    "PRICE_PRECISION_EXCEEDED",
                    "The order price specified exceeds the instrument's precision",
                ));
            }
            Some(p)
        }
    };
    let position_fill = str_field(o, "positionFill").unwrap_or("DEFAULT");
    if !["DEFAULT", "OPEN_ONLY", "REDUCE_FIRST", "REDUCE_ONLY"].contains(&position_fill) {
        return Err(Refusal::new(
            "POSITION_FILL_INVALID",
            "Invalid value specified for 'positionFill'",
        ));
    }
    let ext = |k: &str| -> Result<Option<Value>, Refusal> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => {
                if m.get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| id.is_empty() || id.len() > 128)
                {
                    return Err(Refusal::new(
                        "CLIENT_ORDER_ID_INVALID",
                        "The client order ID is invalid",
                    ));
                }
                Ok(Some(Value::Object(m.clone())))
            }
            Some(_) => Err(Refusal::new(
                "CLIENT_EXTENSIONS_INVALID",
                "Invalid value specified for 'clientExtensions'",
            )),
        }
    };
    Ok(OrderReq {
        kind,
        instrument: inst.name.clone(),
        units,
        price,
        tif: tif.to_owned(),
        gtd_ns,
        position_fill: position_fill.to_owned(),
        client_ext: ext("clientExtensions")?,
        trade_client_ext: ext("tradeClientExtensions")?,
        reason: "CLIENT_ORDER",
        extra: None,
    })
}

/// Answers `{"orderCreateTransaction": .., "orderFillTransaction": .., ...}` (or the
/// reject) for an outcome, with `prefix` (`long`/`short`) for position closes.
fn outcome_body(o: &Outcome, prefix: &str, out: &mut Map<String, Value>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            format!("order{k}Transaction")
        } else {
            format!("{prefix}Order{k}Transaction")
        }
    };
    for (k, tx) in [
        ("Create", &o.create),
        ("Fill", &o.fill),
        ("Cancel", &o.cancel),
        ("Reject", &o.reject),
    ] {
        if let Some(tx) = tx {
            out.insert(key(k), tx.clone());
        }
    }
}

fn create_order(shared: &Shared, body: &Bytes, now: i128) -> (StatusCode, Value) {
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => {
            return (
                StatusCode::BAD_REQUEST,
                json!({"errorMessage": "The request was missing required data"}),
            );
        }
    };
    let Some(order) = parsed.get("order").and_then(Value::as_object) else {
        return (
            StatusCode::BAD_REQUEST,
            json!({"errorMessage": "The request was missing required data"}),
        );
    };
    let force_margin = shared.harness.faults.take_margin_reject();
    let mut v = shared.venue();
    let order_v = Value::Object(order.clone());
    let outcome = match parse_order(&v, order, now) {
        Ok(req) => v.place(req, &order_v, now, force_margin),
        Err(r) => v.reject(&order_v, &r, now),
    };
    let mut out = Map::new();
    outcome_body(&outcome, "", &mut out);
    let related: Vec<Value> = outcome
        .related
        .iter()
        .map(|i| i.to_string().into())
        .collect();
    out.insert("relatedTransactionIDs".into(), Value::Array(related));
    out.insert("lastTransactionID".into(), v.last_tx().to_string().into());
    if let Some(r) = &outcome.reject {
        let reason = r
            .get("rejectReason")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let msg = outcome.message.clone().unwrap_or_default();
        out.insert("errorMessage".into(), msg.into());
        out.insert("errorCode".into(), reason.into());
        return (StatusCode::BAD_REQUEST, Value::Object(out));
    }
    (StatusCode::CREATED, Value::Object(out))
}

/// `PUT …/positions/{instrument}/close`.
fn close_position(v: &mut Venue, inst: &str, body: &Bytes, now: i128) -> (StatusCode, Value) {
    if v.instrument(inst).is_none() {
        return (
            StatusCode::BAD_REQUEST,
            json!({"errorMessage": "Invalid value specified for 'instrument'"}),
        );
    }
    let req: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(_) => {
                return (
                    StatusCode::BAD_REQUEST,
                    json!({"errorMessage": "The request was missing required data"}),
                );
            }
        }
    };
    let (long_units, short_units) = v.position_units(inst);
    let mut out = Map::new();
    let mut related = Vec::new();
    let mut rejected = None;
    let mut asked = false;
    for (side, key, held) in [
        ("long", "longUnits", long_units),
        ("short", "shortUnits", -short_units),
    ] {
        let spelled = match req.get(key) {
            None | Some(Value::Null) => "NONE",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => {
                return (
                    StatusCode::BAD_REQUEST,
                    json!({"errorMessage": format!("Invalid value specified for '{key}'")}),
                );
            }
        };
        if spelled == "NONE" {
            continue;
        }
        asked = true;
        let units = if spelled == "ALL" {
            held
        } else {
            match spelled.parse::<Decimal>() {
                Ok(u) if u > Decimal::ZERO && u <= held => u,
                _ => Decimal::ZERO,
            }
        };
        if held.is_zero() || units.is_zero() {
            let reason = if held.is_zero() {
                "CLOSEOUT_POSITION_DOESNT_EXIST"
            } else {
                "CLOSEOUT_POSITION_UNITS_EXCEED_POSITION_SIZE"
            };
            let order = json!({"type": "MARKET", "instrument": inst, "units": spelled, "timeInForce": "FOK", "positionFill": "REDUCE_ONLY"});
            let msg = "The Position requested to be closed out does not exist";
            let o = v.reject(&order, &Refusal::new(reason, msg), now);
            related.extend(o.related.iter().copied());
            outcome_body(&o, side, &mut out);
            rejected = Some(reason);
            continue;
        }
        let ext = req
            .get(format!("{side}ClientExtensions"))
            .filter(|e| e.is_object())
            .cloned();
        let signed = if side == "long" { -units } else { units };
        let o = v.close_side(inst, signed, spelled, ext, "POSITION_CLOSEOUT", now);
        related.extend(o.related.iter().copied());
        outcome_body(&o, side, &mut out);
    }
    if !asked {
        return (
            StatusCode::BAD_REQUEST,
            json!({"errorMessage": "The request was missing required data"}),
        );
    }
    let related: Vec<Value> = related.iter().map(|i| i.to_string().into()).collect();
    out.insert("relatedTransactionIDs".into(), Value::Array(related));
    out.insert("lastTransactionID".into(), v.last_tx().to_string().into());
    if let Some(reason) = rejected {
        out.insert("errorCode".into(), reason.into());
        out.insert(
            "errorMessage".into(),
            "The Position requested to be closed out does not exist".into(),
        );
        return (StatusCode::BAD_REQUEST, Value::Object(out));
    }
    (StatusCode::OK, Value::Object(out))
}
