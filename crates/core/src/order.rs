//! Orders, their life cycle, and fills.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{ClientOrderId, InstrumentId, ParseError, TimestampMs};

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Side {
    /// Buy the base asset.
    Buy,
    /// Sell the base asset.
    Sell,
}

impl Side {
    /// The opposite side.
    #[must_use]
    pub const fn opposite(self) -> Self {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// `+1` for buys, `-1` for sells, for signed position arithmetic.
    #[must_use]
    pub fn sign(self) -> Decimal {
        match self {
            Side::Buy => Decimal::ONE,
            Side::Sell => Decimal::NEGATIVE_ONE,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        })
    }
}

impl FromStr for Side {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "BUY" => Ok(Side::Buy),
            "SELL" => Ok(Side::Sell),
            _ => Err(ParseError {
                kind: "side",
                value: s.to_owned(),
                expected: "BUY or SELL",
            }),
        }
    }
}

/// How an order is priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderType {
    /// Execute immediately against the book.
    Market,
    /// Rest at a limit price.
    Limit,
}

/// How long an order may rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TimeInForce {
    /// Good till cancelled.
    Gtc,
    /// Immediate or cancel.
    Ioc,
    /// Fill or kill.
    Fok,
    /// Good till a date: the venue expires whatever rests at `expire_at_ms`. Limit orders
    /// only.
    Gtd {
        /// When the venue expires the order, Unix milliseconds UTC.
        expire_at_ms: TimestampMs,
    },
    /// Good for the day: the venue expires the order at the end of its trading day
    /// (OANDA: 17:00 New York). Limit orders only.
    Gfd,
}

impl TimeInForce {
    /// The short name: `GTC`, `IOC`, `FOK`, `GTD` or `GFD`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            TimeInForce::Gtc => "GTC",
            TimeInForce::Ioc => "IOC",
            TimeInForce::Fok => "FOK",
            TimeInForce::Gtd { .. } => "GTD",
            TimeInForce::Gfd => "GFD",
        }
    }

    /// The expiry of a GTD order.
    #[must_use]
    pub const fn expire_at_ms(self) -> Option<TimestampMs> {
        match self {
            TimeInForce::Gtd { expire_at_ms } => Some(expire_at_ms),
            _ => None,
        }
    }
}

/// Unix milliseconds as RFC 3339 UTC with millisecond precision
/// (`2030-01-01T00:00:00.000Z`), as venues take a GTD expiry. Instants before 1970 are
/// written as 1970-01-01.
#[must_use]
pub fn rfc3339_ms(ms: TimestampMs) -> String {
    let ms = ms.max(0);
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = crate::calendar::civil_from_days(days);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// Where an order is in its life.
///
/// `InFlight` is gekko's own state: the request left, but no definitive answer came back
/// (timeout, connection reset, 5xx). Such an order is reconciled by querying the venue by
/// client order id; it is never resubmitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Persisted locally, not yet sent.
    PendingNew,
    /// Sent; outcome unknown.
    InFlight,
    /// Accepted and resting.
    New,
    /// Some quantity filled.
    PartiallyFilled,
    /// Completely filled.
    Filled,
    /// Cancelled (possibly after partial fills).
    Cancelled,
    /// Refused by gekko's pre-trade checks or by the venue.
    Rejected,
    /// Expired by the venue (IOC/FOK remainder, GTD).
    Expired,
}

impl OrderStatus {
    /// Whether no further change can happen.
    #[must_use]
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderStatus::Filled
                | OrderStatus::Cancelled
                | OrderStatus::Rejected
                | OrderStatus::Expired
        )
    }

    /// Whether the order may still rest on the venue's book.
    #[must_use]
    pub const fn is_open(self) -> bool {
        matches!(
            self,
            OrderStatus::New | OrderStatus::PartiallyFilled | OrderStatus::InFlight
        )
    }
}

/// What a strategy asks for. Validated by the gateway's pre-trade checks before it leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    /// Deterministic client id; see [`ClientOrderId::derive`].
    pub client_order_id: ClientOrderId,
    /// What to trade.
    pub instrument: InstrumentId,
    /// Buy or sell.
    pub side: Side,
    /// Market or limit.
    pub order_type: OrderType,
    /// Base quantity.
    pub qty: Decimal,
    /// Limit price; required for limit orders, absent for market orders.
    pub price: Option<Decimal>,
    /// Time in force; limit orders only.
    pub time_in_force: Option<TimeInForce>,
}

/// gekko's view of one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The request as submitted.
    pub request: OrderRequest,
    /// The venue's id, once known.
    pub venue_order_id: Option<String>,
    /// Current status.
    pub status: OrderStatus,
    /// Quantity filled so far.
    pub filled_qty: Decimal,
    /// Volume-weighted average fill price, if anything filled.
    pub avg_fill_price: Option<Decimal>,
    /// Last update time.
    pub updated_ms: TimestampMs,
    /// Why the order was rejected, when it was.
    pub reject_reason: Option<String>,
}

impl Order {
    /// Quantity still open.
    #[must_use]
    pub fn remaining_qty(&self) -> Decimal {
        (self.request.qty - self.filled_qty).max(Decimal::ZERO)
    }
}

/// One execution against an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    /// The order filled.
    pub client_order_id: ClientOrderId,
    /// Venue order id.
    pub venue_order_id: String,
    /// Venue trade id; unique per venue and instrument, used to de-duplicate.
    pub trade_id: String,
    /// The instrument.
    pub instrument: InstrumentId,
    /// The order's side.
    pub side: Side,
    /// Execution price.
    pub price: Decimal,
    /// Executed quantity.
    pub qty: Decimal,
    /// Commission charged.
    pub fee: Decimal,
    /// Asset the commission is charged in.
    pub fee_asset: String,
    /// Execution time.
    pub ts_ms: TimestampMs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_ms_formats_utc_instants() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_893_456_000_000), "2030-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339_ms(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
        assert_eq!(rfc3339_ms(-5), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn gtd_carries_its_expiry_and_round_trips_through_serde() {
        let t = TimeInForce::Gtd {
            expire_at_ms: 1_893_456_000_000,
        };
        assert_eq!(t.as_str(), "GTD");
        assert_eq!(t.expire_at_ms(), Some(1_893_456_000_000));
        assert_eq!(TimeInForce::Gfd.expire_at_ms(), None);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<TimeInForce>(&json).unwrap(), t);
        assert_eq!(serde_json::to_string(&TimeInForce::Gfd).unwrap(), "\"GFD\"");
    }
}
