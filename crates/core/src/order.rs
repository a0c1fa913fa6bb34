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
