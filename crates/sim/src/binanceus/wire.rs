//! JSON shapes exactly as Binance.US puts them on the wire.
//!
//! Kept in one module so every field name (including the historical `cummulativeQuoteQty`
//! misspelling) and every decimal-as-string is written in one place and checked against
//! the reference once. Decimals are always formatted with 8 decimal places, the
//! precision the venue reports for every asset.

use rust_decimal::Decimal;
use serde_json::{Value, json};

pub(crate) use crate::engine::PublicTrade;
use crate::engine::{SimFill, SimOrder, SimOrderType};

/// A decimal as the venue formats it: a string with exactly 8 decimals.
#[must_use]
pub(crate) fn fmt8(d: Decimal) -> String {
    let mut x = d.round_dp(8);
    x.rescale(8);
    x.to_string()
}

/// `[["price","qty"],...]`.
#[must_use]
pub(crate) fn levels(levels: &[(Decimal, Decimal)]) -> Value {
    Value::Array(
        levels
            .iter()
            .map(|(p, q)| json!([fmt8(*p), fmt8(*q)]))
            .collect(),
    )
}

fn price_of(o: &SimOrder) -> Decimal {
    if o.order_type == SimOrderType::Market {
        Decimal::ZERO
    } else {
        o.price
    }
}

/// `newOrderRespType=ACK`.
#[must_use]
pub(crate) fn order_ack(o: &SimOrder) -> Value {
    json!({
        "symbol": o.symbol,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": o.client_order_id,
        "transactTime": o.time,
    })
}

/// `newOrderRespType=RESULT`.
#[must_use]
pub(crate) fn order_result(o: &SimOrder) -> Value {
    let mut v = order_ack(o);
    if let Value::Object(m) = &mut v {
        m.insert("price".into(), json!(fmt8(price_of(o))));
        m.insert("origQty".into(), json!(fmt8(o.orig_qty)));
        m.insert("executedQty".into(), json!(fmt8(o.executed_qty)));
        m.insert(
            "cummulativeQuoteQty".into(),
            json!(fmt8(o.cummulative_quote_qty)),
        );
        m.insert("status".into(), json!(o.status.as_str()));
        m.insert("timeInForce".into(), json!(o.time_in_force.as_str()));
        m.insert("type".into(), json!(o.order_type.as_str()));
        m.insert("side".into(), json!(o.side.as_str()));
        m.insert("workingTime".into(), json!(o.time));
        m.insert("selfTradePreventionMode".into(), json!("NONE"));
    }
    v
}

fn fill_json(f: &SimFill) -> Value {
    json!({
        "price": fmt8(f.price),
        "qty": fmt8(f.qty),
        "commission": fmt8(f.commission),
        "commissionAsset": f.commission_asset,
        "tradeId": f.trade_id,
    })
}

/// `newOrderRespType=FULL`; `fills` lists the fills of this request (taker fills).
#[must_use]
pub(crate) fn order_full(o: &SimOrder) -> Value {
    let mut v = order_result(o);
    if let Value::Object(m) = &mut v {
        m.insert(
            "fills".into(),
            Value::Array(o.fills.iter().map(fill_json).collect()),
        );
    }
    v
}

/// The order object of `GET /api/v3/order`, `openOrders` and `allOrders`.
#[must_use]
pub(crate) fn order_query(o: &SimOrder) -> Value {
    json!({
        "symbol": o.symbol,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": o.client_order_id,
        "price": fmt8(price_of(o)),
        "origQty": fmt8(o.orig_qty),
        "executedQty": fmt8(o.executed_qty),
        "cummulativeQuoteQty": fmt8(o.cummulative_quote_qty),
        "status": o.status.as_str(),
        "timeInForce": o.time_in_force.as_str(),
        "type": o.order_type.as_str(),
        "side": o.side.as_str(),
        "stopPrice": fmt8(Decimal::ZERO),
        "icebergQty": fmt8(Decimal::ZERO),
        "time": o.time,
        "updateTime": o.update_time,
        "isWorking": o.order_type == SimOrderType::Limit,
        "origQuoteOrderQty": fmt8(o.orig_quote_order_qty),
        "workingTime": o.time,
        "selfTradePreventionMode": "NONE",
    })
}

/// The answer of `DELETE /api/v3/order` (and each element of `DELETE openOrders`).
#[must_use]
pub(crate) fn order_cancel(o: &SimOrder, cancel_client_id: &str, transact_time: i64) -> Value {
    json!({
        "symbol": o.symbol,
        "origClientOrderId": o.client_order_id,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": cancel_client_id,
        "transactTime": transact_time,
        "price": fmt8(price_of(o)),
        "origQty": fmt8(o.orig_qty),
        "executedQty": fmt8(o.executed_qty),
        "cummulativeQuoteQty": fmt8(o.cummulative_quote_qty),
        "status": o.status.as_str(),
        "timeInForce": o.time_in_force.as_str(),
        "type": o.order_type.as_str(),
        "side": o.side.as_str(),
        "selfTradePreventionMode": "NONE",
    })
}

/// Execution type of an `executionReport` (`x`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExecType {
    /// `NEW`
    New,
    /// `TRADE`
    Trade,
    /// `CANCELED`
    Canceled,
    /// `EXPIRED`
    Expired,
}

impl ExecType {
    fn as_str(self) -> &'static str {
        match self {
            Self::New => "NEW",
            Self::Trade => "TRADE",
            Self::Canceled => "CANCELED",
            Self::Expired => "EXPIRED",
        }
    }
}

/// An `executionReport` user-data event. `fill` is the fill this report announces (for
/// `TRADE`); `cancel_client_id` is the cancel request's client id (for `CANCELED`, where
/// `c` carries it and `C` the order's own id).
#[must_use]
pub(crate) fn execution_report(
    o: &SimOrder,
    x: ExecType,
    event_time: i64,
    fill: Option<&SimFill>,
    cancel_client_id: Option<&str>,
) -> Value {
    let zero = fmt8(Decimal::ZERO);
    let (c, big_c) = match cancel_client_id {
        Some(cid) => (cid.to_owned(), o.client_order_id.clone()),
        None => (o.client_order_id.clone(), String::new()),
    };
    let (l, last_price, n, big_n, t, m, y) = match fill {
        Some(f) => (
            fmt8(f.qty),
            fmt8(f.price),
            fmt8(f.commission),
            json!(f.commission_asset),
            json!(f.trade_id),
            f.maker,
            fmt8(f.price * f.qty),
        ),
        None => (
            zero.clone(),
            zero.clone(),
            "0".to_owned(),
            Value::Null,
            json!(-1),
            false,
            zero.clone(),
        ),
    };
    let on_book = o.order_type == SimOrderType::Limit && o.is_open();
    json!({
        "e": "executionReport",
        "E": event_time,
        "s": o.symbol,
        "c": c,
        "S": o.side.as_str(),
        "o": o.order_type.as_str(),
        "f": o.time_in_force.as_str(),
        "q": fmt8(o.orig_qty),
        "p": fmt8(price_of(o)),
        "P": zero,
        "F": zero,
        "g": -1,
        "C": big_c,
        "x": x.as_str(),
        "X": o.status.as_str(),
        "r": "NONE",
        "i": o.order_id,
        "l": l,
        "z": fmt8(o.executed_qty),
        "L": last_price,
        "n": n,
        "N": big_n,
        "T": fill.map_or(event_time, |f| f.time),
        "t": t,
        "I": o.order_id * 2 + 1,
        "w": on_book,
        "m": m,
        "M": false,
        "O": o.time,
        "Z": fmt8(o.cummulative_quote_qty),
        "Y": y,
        "Q": fmt8(o.orig_quote_order_qty),
        "W": o.time,
        "V": "NONE",
    })
}

/// An `outboundAccountPosition` event for the assets that changed.
#[must_use]
pub(crate) fn account_position(event_time: i64, balances: &[(String, Decimal, Decimal)]) -> Value {
    let b: Vec<Value> = balances
        .iter()
        .map(|(a, f, l)| json!({"a": a, "f": fmt8(*f), "l": fmt8(*l)}))
        .collect();
    json!({"e": "outboundAccountPosition", "E": event_time, "u": event_time, "B": b})
}

/// A diff-depth `depthUpdate` event.
#[must_use]
pub(crate) fn depth_update(
    symbol: &str,
    event_time: i64,
    first: u64,
    last: u64,
    bids: &[(Decimal, Decimal)],
    asks: &[(Decimal, Decimal)],
) -> Value {
    json!({
        "e": "depthUpdate",
        "E": event_time,
        "s": symbol,
        "U": first,
        "u": last,
        "b": levels(bids),
        "a": levels(asks),
    })
}

/// A `bookTicker` event (no `e`/`E`, as on the venue). Missing sides are zeros.
#[must_use]
pub(crate) fn book_ticker(
    update_id: u64,
    symbol: &str,
    bid: Option<(Decimal, Decimal)>,
    ask: Option<(Decimal, Decimal)>,
) -> Value {
    let (b, bq) = bid.unwrap_or_default();
    let (a, aq) = ask.unwrap_or_default();
    json!({"u": update_id, "s": symbol, "b": fmt8(b), "B": fmt8(bq), "a": fmt8(a), "A": fmt8(aq)})
}

/// A `trade` stream event.
#[must_use]
pub(crate) fn trade_event(symbol: &str, event_time: i64, t: &PublicTrade) -> Value {
    json!({
        "e": "trade",
        "E": event_time,
        "s": symbol,
        "t": t.id,
        "p": fmt8(t.price),
        "q": fmt8(t.qty),
        "b": t.buyer_order,
        "a": t.seller_order,
        "T": t.time,
        "m": t.buyer_maker,
        "M": true,
    })
}

/// An element of `GET /api/v3/trades`.
#[must_use]
pub(crate) fn trade_rest(t: &PublicTrade) -> Value {
    json!({
        "id": t.id,
        "price": fmt8(t.price),
        "qty": fmt8(t.qty),
        "quoteQty": fmt8(t.price * t.qty),
        "time": t.time,
        "isBuyerMaker": t.buyer_maker,
        "isBestMatch": true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_have_eight_places() {
        assert_eq!(fmt8(Decimal::new(1, 1)), "0.10000000");
        assert_eq!(fmt8(Decimal::new(60_000, 0)), "60000.00000000");
        assert_eq!(fmt8(Decimal::new(123_456_789_123, 10)), "12.34567891");
        assert_eq!(fmt8(Decimal::ZERO), "0.00000000");
    }
}
