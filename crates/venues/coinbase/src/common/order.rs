//! One parser from a Coinbase order object to gekko's [`OrderUpdate`], for both shapes
//! the venue sends:
//!
//! * the REST `Order` (`orders/historical/{id}`, `orders/historical/batch`):
//!   `side`, `filled_size`, `average_filled_price`, `filled_value`, sizes and the limit
//!   price inside `order_configuration.<kind>`, `created_time`, `last_fill_time`;
//! * the websocket `user` channel's order (`events[].orders[]`): `order_side`,
//!   `cumulative_quantity`, `leaves_quantity`, `avg_price`, `filled_value`, a top-level
//!   `limit_price`, `creation_time`.
//!
//! Fields are looked up by every name they go by, so the websocket client calls the same
//! [`order_update`] as the REST client and the two can never disagree on what an order
//! is. Money and sizes are decimal strings; an empty string means "absent" (the venue
//! sends `""` for fields that do not apply). Nothing here panics on bad input: a missing
//! or malformed field is an error that keeps the payload.

use gekko_core::ClientOrderId;
use gekko_venue::OrderUpdate;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::enums::{CoinbaseOrderStatus, CoinbaseSide};
use super::symbol::instrument;
use super::time::parse_rfc3339_ms;
use crate::error::CoinbaseError;

type Obj = Map<String, Value>;

/// A non-empty string field, under the first of `names` present.
fn text<'a>(o: &'a Obj, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| o.get(*n).and_then(Value::as_str).filter(|s| !s.is_empty()))
}

/// A decimal field (a string, or tolerated as a JSON number), under the first of `names`
/// present; `Ok(None)` when absent, null or `""`.
fn decimal(o: &Obj, names: &[&str]) -> Result<Option<Decimal>, String> {
    for n in names {
        match o.get(*n) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(Value::String(s)) => {
                return s
                    .parse::<Decimal>()
                    .map(Some)
                    .or_else(|_| Decimal::from_scientific(s).map(Some))
                    .map_err(|_| format!("{n} is not a decimal: {s:?}"));
            }
            Some(Value::Number(num)) => {
                return num
                    .to_string()
                    .parse::<Decimal>()
                    .map(Some)
                    .map_err(|_| format!("{n} is not a decimal: {num}"));
            }
            Some(_) => return Err(format!("{n} must be a decimal string")),
        }
    }
    Ok(None)
}

/// The parameters of the one configuration in `order_configuration`, if any.
fn configuration(o: &Obj) -> Option<&Obj> {
    o.get("order_configuration")?
        .as_object()?
        .values()
        .find_map(Value::as_object)
}

/// Parses a Coinbase order object (REST `Order` or websocket `user` order) into an
/// [`OrderUpdate`] with `last_fill: None` (fills come from the fills endpoint or the
/// stream's own events).
///
/// `ts_ms` is the last fill time, else the creation time, else 0: a caller with a better
/// event time (the websocket envelope's `timestamp`) overwrites it.
///
/// # Errors
/// [`CoinbaseError::Net`] (`Decode`, payload kept) when the value is not an object, a
/// required field (`order_id`, `client_order_id`, `product_id`, side, `status`) is
/// missing or malformed, the status is one gekko cannot act on
/// (`UNKNOWN_ORDER_STATUS`), or a decimal field does not parse.
pub fn order_update(order: &Value) -> Result<OrderUpdate, CoinbaseError> {
    parse(order).map_err(|reason| CoinbaseError::malformed(reason, &order.to_string()))
}

/// [`order_update`] over raw JSON bytes.
///
/// # Errors
/// As [`order_update`], and when the bytes are not JSON.
pub fn order_update_from_slice(bytes: &[u8]) -> Result<OrderUpdate, CoinbaseError> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| CoinbaseError::malformed(e, &String::from_utf8_lossy(bytes)))?;
    order_update(&v)
}

fn parse(v: &Value) -> Result<OrderUpdate, String> {
    let o = v.as_object().ok_or("an order must be a JSON object")?;
    let venue_order_id = text(o, &["order_id"]).ok_or("order_id is missing")?;
    let coid = text(o, &["client_order_id"]).ok_or("client_order_id is missing")?;
    let client_order_id =
        ClientOrderId::parse(coid).map_err(|e| format!("client_order_id: {e}"))?;
    let pid = text(o, &["product_id"]).ok_or("product_id is missing")?;
    let instrument =
        instrument(pid).ok_or_else(|| format!("product_id {pid:?} is not BASE-QUOTE"))?;
    let side_s = text(o, &["side", "order_side"]).ok_or("side is missing")?;
    let side = CoinbaseSide::from_wire(side_s)
        .ok_or_else(|| format!("unknown side {side_s:?}"))?
        .to_core();
    let status_s = text(o, &["status"]).ok_or("status is missing")?;

    let filled_qty = decimal(o, &["filled_size", "cumulative_quantity"])?.unwrap_or_default();
    let status = CoinbaseOrderStatus::from_wire(status_s)
        .to_core(filled_qty > Decimal::ZERO)
        .ok_or_else(|| format!("order status {status_s:?} is not actionable"))?;

    let cfg = configuration(o);
    let cfg_base = match cfg {
        Some(c) => decimal(c, &["base_size"])?,
        None => None,
    };
    let leaves = decimal(o, &["leaves_quantity"])?;
    let qty = match (cfg_base, leaves) {
        (Some(b), _) => b,
        (None, Some(l)) => filled_qty
            .checked_add(l)
            .ok_or_else(|| format!("filled {filled_qty} plus leaves {l} overflows"))?,
        (None, None) => filled_qty,
    };
    let cfg_price = match cfg {
        Some(c) => decimal(c, &["limit_price"])?,
        None => None,
    };
    let price = match cfg_price {
        Some(p) => Some(p),
        None => decimal(o, &["limit_price"])?,
    }
    .filter(|p| *p > Decimal::ZERO);

    let avg = decimal(o, &["average_filled_price", "avg_price"])?;
    let cum_quote = match decimal(o, &["filled_value"])? {
        Some(fv) if fv > Decimal::ZERO || filled_qty.is_zero() => fv,
        _ => avg
            .and_then(|a| a.checked_mul(filled_qty))
            .unwrap_or_default(),
    };
    let ts_ms = ["last_fill_time", "created_time", "creation_time"]
        .iter()
        .filter_map(|n| o.get(*n).and_then(Value::as_str))
        .find_map(parse_rfc3339_ms)
        .unwrap_or(0);
    let reject_reason = if status == gekko_core::OrderStatus::Rejected {
        Some(
            text(o, &["reject_message", "reject_reason", "cancel_reason"])
                .unwrap_or(status_s)
                .to_owned(),
        )
    } else {
        None
    };
    Ok(OrderUpdate {
        client_order_id,
        venue_order_id: venue_order_id.to_owned(),
        instrument,
        side,
        status,
        qty,
        price,
        filled_qty,
        cum_quote,
        last_fill: None,
        ts_ms,
        reject_reason,
    })
}

#[cfg(test)]
mod tests {
    use gekko_core::{OrderStatus, Side};
    use serde_json::json;

    use super::*;

    #[test]
    fn rest_order_shape() {
        let v = json!({
            "order_id": "00000000-0000-4000-8000-000000000001",
            "product_id": "BTC-USD",
            "side": "BUY",
            "client_order_id": "gk0123",
            "status": "OPEN",
            "order_configuration": {"limit_limit_gtc": {"base_size": "0.5", "limit_price": "60000.00", "post_only": false}},
            "filled_size": "0.2",
            "average_filled_price": "59990",
            "filled_value": "11998",
            "created_time": "2023-11-14T22:13:20.000000Z",
            "last_fill_time": null,
        });
        let u = order_update(&v).unwrap();
        assert_eq!(u.client_order_id.as_str(), "gk0123");
        assert_eq!(u.instrument.pair(), "BTC-USD");
        assert_eq!(u.side, Side::Buy);
        assert_eq!(u.status, OrderStatus::PartiallyFilled);
        assert_eq!(u.qty, Decimal::new(5, 1));
        assert_eq!(u.price, Some(Decimal::new(60_000, 0)));
        assert_eq!(u.filled_qty, Decimal::new(2, 1));
        assert_eq!(u.cum_quote, Decimal::new(11_998, 0));
        assert_eq!(u.ts_ms, 1_700_000_000_000);
        assert_eq!(u.reject_reason, None);
    }

    #[test]
    fn websocket_user_order_shape() {
        let v = json!({
            "avg_price": "3000", "cancel_reason": "", "client_order_id": "gk9",
            "cumulative_quantity": "1", "filled_value": "", "leaves_quantity": "0",
            "limit_price": "", "order_id": "x-1", "order_side": "SELL", "order_type": "MARKET",
            "product_id": "ETH-USD", "status": "FILLED",
            "creation_time": "2023-11-14T22:13:20.5Z",
        });
        let u = order_update(&v).unwrap();
        assert_eq!(u.side, Side::Sell);
        assert_eq!(u.status, OrderStatus::Filled);
        assert_eq!(u.qty, Decimal::ONE);
        assert_eq!(u.price, None);
        assert_eq!(u.cum_quote, Decimal::new(3000, 0));
        assert_eq!(u.ts_ms, 1_700_000_000_500);
    }

    #[test]
    fn failures_keep_the_reason_and_bad_input_is_an_error() {
        let v = json!({"order_id": "1", "client_order_id": "gk1", "product_id": "BTC-USD",
            "side": "BUY", "status": "FAILED", "reject_message": "insufficient funds"});
        let u = order_update(&v).unwrap();
        assert_eq!(u.status, OrderStatus::Rejected);
        assert_eq!(u.reject_reason.as_deref(), Some("insufficient funds"));
        for bad in [
            json!([]),
            json!({"order_id": "1"}),
            json!({"order_id": "1", "client_order_id": "gk1", "product_id": "BTCUSD", "side": "BUY", "status": "OPEN"}),
            json!({"order_id": "1", "client_order_id": "gk1", "product_id": "BTC-USD", "side": "UP", "status": "OPEN"}),
            json!({"order_id": "1", "client_order_id": "gk1", "product_id": "BTC-USD", "side": "BUY", "status": "UNKNOWN_ORDER_STATUS"}),
            json!({"order_id": "1", "client_order_id": "gk1", "product_id": "BTC-USD", "side": "BUY", "status": "OPEN", "filled_size": "abc"}),
            json!({"order_id": "1", "client_order_id": "gk1", "product_id": "BTC-USD", "side": "BUY", "status": "OPEN", "filled_size": {}}),
        ] {
            assert!(order_update(&bad).is_err(), "{bad}");
        }
        assert!(order_update_from_slice(b"{not json").is_err());
    }
}
