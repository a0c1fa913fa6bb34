//! Conversions between the gRPC messages and gekko's core types.
//!
//! Decimals cross the wire as strings in both directions (never `f64`), enums as their
//! protobuf numbers, and every malformed input becomes a [`ConvertError`] naming the
//! field, which servers turn into `INVALID_ARGUMENT`.

use std::str::FromStr;

use gekko_core::{Balance, Order, OrderStatus, OrderType, Position, Quote, Side, TimeInForce};
use gekko_venue::InstrumentInfo;
use rust_decimal::Decimal;

use crate::v1 as pb;

/// A field that could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConvertError {
    /// The protobuf field name.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl ConvertError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Parses a decimal string field (surrounding whitespace allowed).
///
/// # Errors
/// When the text is not a decimal number.
pub fn decimal(field: &'static str, s: &str) -> Result<Decimal, ConvertError> {
    Decimal::from_str(s.trim())
        .map_err(|_| ConvertError::new(field, format!("{s:?} is not a decimal number")))
}

/// Parses an optional decimal: the empty string is `None`.
///
/// # Errors
/// When non-empty text is not a decimal number.
pub fn optional_decimal(field: &'static str, s: &str) -> Result<Option<Decimal>, ConvertError> {
    if s.trim().is_empty() {
        Ok(None)
    } else {
        decimal(field, s).map(Some)
    }
}

fn opt(d: Option<Decimal>) -> String {
    d.map(|x| x.to_string()).unwrap_or_default()
}

/// Side → protobuf.
#[must_use]
pub fn side_to_pb(s: Side) -> i32 {
    match s {
        Side::Buy => pb::Side::Buy as i32,
        Side::Sell => pb::Side::Sell as i32,
    }
}

/// Protobuf → side.
///
/// # Errors
/// For `SIDE_UNSPECIFIED` or an unknown number.
pub fn side_from_pb(v: i32) -> Result<Side, ConvertError> {
    match pb::Side::try_from(v) {
        Ok(pb::Side::Buy) => Ok(Side::Buy),
        Ok(pb::Side::Sell) => Ok(Side::Sell),
        _ => Err(ConvertError::new("side", "must be SIDE_BUY or SIDE_SELL")),
    }
}

/// Order type → protobuf.
#[must_use]
pub fn order_type_to_pb(t: OrderType) -> i32 {
    match t {
        OrderType::Market => pb::OrderType::Market as i32,
        OrderType::Limit => pb::OrderType::Limit as i32,
    }
}

/// Protobuf → order type.
///
/// # Errors
/// For `ORDER_TYPE_UNSPECIFIED` or an unknown number.
pub fn order_type_from_pb(v: i32) -> Result<OrderType, ConvertError> {
    match pb::OrderType::try_from(v) {
        Ok(pb::OrderType::Market) => Ok(OrderType::Market),
        Ok(pb::OrderType::Limit) => Ok(OrderType::Limit),
        _ => Err(ConvertError::new(
            "type",
            "must be ORDER_TYPE_MARKET or ORDER_TYPE_LIMIT",
        )),
    }
}

/// Protobuf → time in force. Unspecified means GTC for a limit order and none for a
/// market order. `expire_time_ms` is the expiry of a GTD order (Unix milliseconds, 0 when
/// unset), checked against `now_ms`.
///
/// # Errors
/// For an unknown number; GTD or GFD on a market order; GTD without an expiry in the
/// future; an expiry on any other time in force.
pub fn time_in_force_from_pb(
    v: i32,
    order_type: OrderType,
    expire_time_ms: i64,
    now_ms: i64,
) -> Result<Option<TimeInForce>, ConvertError> {
    let tif = match pb::TimeInForce::try_from(v) {
        Ok(pb::TimeInForce::Gtc) => Some(TimeInForce::Gtc),
        Ok(pb::TimeInForce::Ioc) => Some(TimeInForce::Ioc),
        Ok(pb::TimeInForce::Fok) => Some(TimeInForce::Fok),
        Ok(pb::TimeInForce::Gfd) => Some(TimeInForce::Gfd),
        Ok(pb::TimeInForce::Gtd) => {
            if expire_time_ms == 0 {
                return Err(ConvertError::new(
                    "expire_time_ms",
                    "TIME_IN_FORCE_GTD needs an expiry (Unix milliseconds)",
                ));
            }
            if expire_time_ms <= now_ms {
                return Err(ConvertError::new(
                    "expire_time_ms",
                    format!(
                        "a GTD expiry must be in the future: {} is not after now ({})",
                        gekko_core::order::rfc3339_ms(expire_time_ms),
                        gekko_core::order::rfc3339_ms(now_ms)
                    ),
                ));
            }
            Some(TimeInForce::Gtd {
                expire_at_ms: expire_time_ms,
            })
        }
        Ok(pb::TimeInForce::Unspecified) => {
            (order_type == OrderType::Limit).then_some(TimeInForce::Gtc)
        }
        Err(_) => return Err(ConvertError::new("time_in_force", "unknown value")),
    };
    if expire_time_ms != 0 && !matches!(tif, Some(TimeInForce::Gtd { .. })) {
        return Err(ConvertError::new(
            "expire_time_ms",
            "an expiry is only for TIME_IN_FORCE_GTD",
        ));
    }
    if order_type == OrderType::Market
        && let Some(t @ (TimeInForce::Gtd { .. } | TimeInForce::Gfd)) = tif
    {
        return Err(ConvertError::new(
            "time_in_force",
            format!("{} is for limit orders only", t.as_str()),
        ));
    }
    Ok(tif)
}

/// Time in force → protobuf, with the GTD expiry (0 for every other).
#[must_use]
pub fn time_in_force_to_pb(t: Option<TimeInForce>) -> (i32, i64) {
    let v = match t {
        None => pb::TimeInForce::Unspecified,
        Some(TimeInForce::Gtc) => pb::TimeInForce::Gtc,
        Some(TimeInForce::Ioc) => pb::TimeInForce::Ioc,
        Some(TimeInForce::Fok) => pb::TimeInForce::Fok,
        Some(TimeInForce::Gtd { .. }) => pb::TimeInForce::Gtd,
        Some(TimeInForce::Gfd) => pb::TimeInForce::Gfd,
    };
    (v as i32, t.and_then(TimeInForce::expire_at_ms).unwrap_or(0))
}

/// Order status → protobuf.
#[must_use]
pub fn status_to_pb(s: OrderStatus) -> i32 {
    (match s {
        OrderStatus::PendingNew => pb::OrderStatus::PendingNew,
        OrderStatus::InFlight => pb::OrderStatus::InFlight,
        OrderStatus::New => pb::OrderStatus::New,
        OrderStatus::PartiallyFilled => pb::OrderStatus::PartiallyFilled,
        OrderStatus::Filled => pb::OrderStatus::Filled,
        OrderStatus::Cancelled => pb::OrderStatus::Cancelled,
        OrderStatus::Rejected => pb::OrderStatus::Rejected,
        OrderStatus::Expired => pb::OrderStatus::Expired,
    }) as i32
}

/// Protobuf → order status.
///
/// # Errors
/// For `ORDER_STATUS_UNSPECIFIED` or an unknown number.
pub fn status_from_pb(v: i32) -> Result<OrderStatus, ConvertError> {
    Ok(match pb::OrderStatus::try_from(v) {
        Ok(pb::OrderStatus::PendingNew) => OrderStatus::PendingNew,
        Ok(pb::OrderStatus::InFlight) => OrderStatus::InFlight,
        Ok(pb::OrderStatus::New) => OrderStatus::New,
        Ok(pb::OrderStatus::PartiallyFilled) => OrderStatus::PartiallyFilled,
        Ok(pb::OrderStatus::Filled) => OrderStatus::Filled,
        Ok(pb::OrderStatus::Cancelled) => OrderStatus::Cancelled,
        Ok(pb::OrderStatus::Rejected) => OrderStatus::Rejected,
        Ok(pb::OrderStatus::Expired) => OrderStatus::Expired,
        _ => return Err(ConvertError::new("status", "unspecified or unknown")),
    })
}

/// An order → protobuf.
#[must_use]
pub fn order_to_pb(o: &Order) -> pb::OrderMsg {
    pb::OrderMsg {
        client_order_id: o.request.client_order_id.to_string(),
        venue_order_id: o.venue_order_id.clone().unwrap_or_default(),
        instrument: o.request.instrument.pair(),
        side: side_to_pb(o.request.side),
        r#type: order_type_to_pb(o.request.order_type),
        qty: o.request.qty.to_string(),
        price: opt(o.request.price),
        status: status_to_pb(o.status),
        filled_qty: o.filled_qty.to_string(),
        avg_fill_price: opt(o.avg_fill_price),
        updated_ms: o.updated_ms,
        reject_reason: o.reject_reason.clone().unwrap_or_default(),
    }
}

/// A balance → protobuf.
#[must_use]
pub fn balance_to_pb(b: &Balance) -> pb::BalanceMsg {
    pb::BalanceMsg {
        asset: b.asset.clone(),
        free: b.free.to_string(),
        locked: b.locked.to_string(),
    }
}

/// A position → protobuf.
#[must_use]
pub fn position_to_pb(p: &Position) -> pb::PositionMsg {
    pb::PositionMsg {
        instrument: p.instrument.pair(),
        qty: p.qty.to_string(),
        avg_price: opt(p.avg_price),
        unrealized_pnl: opt(p.unrealized_pnl),
    }
}

/// A margin summary → protobuf.
#[must_use]
pub fn margin_to_pb(m: &gekko_venue::MarginSummary) -> pb::MarginMsg {
    pb::MarginMsg {
        currency: m.currency.clone(),
        nav: m.nav.to_string(),
        balance: m.balance.to_string(),
        unrealized_pl: m.unrealized_pl.to_string(),
        margin_used: m.margin_used.to_string(),
        margin_available: m.margin_available.to_string(),
        margin_closeout_percent: m.margin_closeout_percent.to_string(),
    }
}

/// A quote → protobuf.
#[must_use]
pub fn quote_to_pb(q: &Quote) -> pb::QuoteUpdate {
    pb::QuoteUpdate {
        instrument: q.instrument.pair(),
        bid: q.bid.to_string(),
        bid_size: q.bid_size.to_string(),
        ask: q.ask.to_string(),
        ask_size: q.ask_size.to_string(),
        ts_ms: q.ts_ms,
    }
}

/// Protobuf → quote, on `venue`.
///
/// # Errors
/// A malformed pair or decimal.
pub fn quote_from_pb(
    venue: gekko_core::VenueId,
    q: &pb::QuoteUpdate,
) -> Result<Quote, ConvertError> {
    Ok(Quote {
        instrument: gekko_core::InstrumentId::parse_pair(venue, &q.instrument)
            .map_err(|e| ConvertError::new("instrument", e.to_string()))?,
        bid: decimal("bid", &q.bid)?,
        bid_size: decimal("bid_size", &q.bid_size)?,
        ask: decimal("ask", &q.ask)?,
        ask_size: decimal("ask_size", &q.ask_size)?,
        ts_ms: q.ts_ms,
    })
}

/// Instrument rules → protobuf.
#[must_use]
pub fn instrument_to_pb(i: &InstrumentInfo) -> pb::InstrumentMsg {
    pb::InstrumentMsg {
        instrument: i.id.pair(),
        venue_symbol: i.venue_symbol.clone(),
        base: i.id.base.clone(),
        quote: i.id.quote.clone(),
        tick_size: i.tick_size.to_string(),
        lot_size: i.lot_size.to_string(),
        min_qty: i.min_qty.to_string(),
        max_qty: i.max_qty.to_string(),
        min_notional: i.min_notional.to_string(),
        trading: i.trading,
    }
}

#[cfg(test)]
mod tests {
    use gekko_core::{InstrumentId, VenueId};
    use rust_decimal_macros::dec;

    use super::*;

    #[test]
    fn enums_round_trip() {
        for s in [Side::Buy, Side::Sell] {
            assert_eq!(side_from_pb(side_to_pb(s)), Ok(s));
        }
        for t in [OrderType::Market, OrderType::Limit] {
            assert_eq!(order_type_from_pb(order_type_to_pb(t)), Ok(t));
        }
        for st in [
            OrderStatus::PendingNew,
            OrderStatus::InFlight,
            OrderStatus::New,
            OrderStatus::PartiallyFilled,
            OrderStatus::Filled,
            OrderStatus::Cancelled,
            OrderStatus::Rejected,
            OrderStatus::Expired,
        ] {
            assert_eq!(status_from_pb(status_to_pb(st)), Ok(st));
        }
        assert_eq!(side_from_pb(0).unwrap_err().field, "side");
        assert_eq!(
            time_in_force_from_pb(0, OrderType::Limit, 0, NOW),
            Ok(Some(TimeInForce::Gtc))
        );
        assert_eq!(
            time_in_force_from_pb(0, OrderType::Market, 0, NOW),
            Ok(None)
        );
        assert!(time_in_force_from_pb(99, OrderType::Limit, 0, NOW).is_err());
    }

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn gtd_and_gfd_round_trip_and_are_validated() {
        let gtd = TimeInForce::Gtd {
            expire_at_ms: NOW + 60_000,
        };
        for t in [
            TimeInForce::Gtc,
            TimeInForce::Ioc,
            TimeInForce::Fok,
            TimeInForce::Gfd,
            gtd,
        ] {
            let (v, exp) = time_in_force_to_pb(Some(t));
            assert_eq!(
                time_in_force_from_pb(v, OrderType::Limit, exp, NOW),
                Ok(Some(t))
            );
        }
        assert_eq!(time_in_force_to_pb(None), (0, 0));
        assert_eq!(time_in_force_to_pb(Some(gtd)), (4, NOW + 60_000));
        assert_eq!(time_in_force_to_pb(Some(TimeInForce::Gfd)), (5, 0));
        let gtd_pb = pb::TimeInForce::Gtd as i32;
        let gfd_pb = pb::TimeInForce::Gfd as i32;
        // GTD needs an expiry, in the future.
        let e = time_in_force_from_pb(gtd_pb, OrderType::Limit, 0, NOW).unwrap_err();
        assert_eq!(e.field, "expire_time_ms");
        let e = time_in_force_from_pb(gtd_pb, OrderType::Limit, NOW, NOW).unwrap_err();
        assert_eq!(e.field, "expire_time_ms");
        assert!(e.message.contains("in the future"), "{e}");
        assert!(time_in_force_from_pb(gtd_pb, OrderType::Limit, NOW - 1, NOW).is_err());
        // Limit orders only.
        let e = time_in_force_from_pb(gtd_pb, OrderType::Market, NOW + 1, NOW).unwrap_err();
        assert_eq!(e.to_string(), "time_in_force: GTD is for limit orders only");
        let e = time_in_force_from_pb(gfd_pb, OrderType::Market, 0, NOW).unwrap_err();
        assert_eq!(e.to_string(), "time_in_force: GFD is for limit orders only");
        // An expiry on anything but GTD.
        for v in [0, 1, 2, 3, gfd_pb] {
            let e = time_in_force_from_pb(v, OrderType::Limit, NOW + 1, NOW).unwrap_err();
            assert_eq!(e.field, "expire_time_ms", "{v}");
        }
    }

    #[test]
    fn decimals_stay_strings() {
        assert_eq!(decimal("qty", " 0.10 "), Ok(dec!(0.10)));
        assert_eq!(
            decimal("qty", "1e400").unwrap_err().to_string(),
            "qty: \"1e400\" is not a decimal number"
        );
        assert_eq!(optional_decimal("price", ""), Ok(None));
        let q = Quote {
            instrument: InstrumentId::new(VenueId::BinanceUs, "BTC", "USD"),
            bid: dec!(30000.10),
            bid_size: dec!(1.5),
            ask: dec!(30000.20),
            ask_size: dec!(2),
            ts_ms: 7,
        };
        let wire = quote_to_pb(&q);
        assert_eq!(wire.bid, "30000.10", "trailing zeros are kept");
        assert_eq!(quote_from_pb(VenueId::BinanceUs, &wire), Ok(q));
    }
}
