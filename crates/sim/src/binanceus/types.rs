//! Public order and fill types of the simulator, as tests and `gekko up` see them.
//!
//! They mirror the venue's own vocabulary (the enums serialize to the exact wire strings)
//! so an assertion like "the venue holds one FILLED order" reads the same as the venue
//! documentation. Internal bookkeeping that a test has no business asserting on (the
//! amount still locked for an order) stays crate-private.

use rust_decimal::Decimal;
use serde::Serialize;

/// One book level: `(price, qty)`.
pub type Level = (Decimal, Decimal);

/// A book as [`super::SimHandle::book`] returns it: `lastUpdateId`, bids best first,
/// asks best first.
pub type BookSnapshot = (u64, Vec<Level>, Vec<Level>);

/// Order side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SimSide {
    /// `BUY`
    Buy,
    /// `SELL`
    Sell,
}

impl SimSide {
    /// The wire string.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Buy => "BUY",
            Self::Sell => "SELL",
        }
    }
}

/// Order type. Only the two types the simulator executes exist here; the venue's other
/// types are answered with -1116.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SimOrderType {
    /// `LIMIT`
    Limit,
    /// `MARKET`
    Market,
}

impl SimOrderType {
    /// The wire string.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Limit => "LIMIT",
            Self::Market => "MARKET",
        }
    }
}

/// Time in force (MARKET orders report `GTC`, as the venue does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SimTimeInForce {
    /// Good till canceled: the remainder rests.
    Gtc,
    /// Immediate or cancel: the remainder expires.
    Ioc,
    /// Fill or kill: all or nothing, immediately.
    Fok,
}

impl SimTimeInForce {
    /// The wire string.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gtc => "GTC",
            Self::Ioc => "IOC",
            Self::Fok => "FOK",
        }
    }
}

/// Order status, spelled as on the wire (`CANCELED` with one L).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SimOrderStatus {
    /// Accepted, nothing filled, working.
    New,
    /// Partly filled, still working.
    PartiallyFilled,
    /// Completely filled.
    Filled,
    /// Canceled by the user.
    Canceled,
    /// Expired (IOC/FOK/MARKET remainder).
    Expired,
    /// Rejected by the engine (unused by the simulator: rejections are synchronous
    /// -2010 answers and such orders are never accepted).
    Rejected,
}

impl SimOrderStatus {
    /// The wire string.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "NEW",
            Self::PartiallyFilled => "PARTIALLY_FILLED",
            Self::Filled => "FILLED",
            Self::Canceled => "CANCELED",
            Self::Expired => "EXPIRED",
            Self::Rejected => "REJECTED",
        }
    }

    /// `true` while the order can still fill or be canceled.
    #[must_use]
    pub fn is_open(self) -> bool {
        matches!(self, Self::New | Self::PartiallyFilled)
    }
}

/// One execution of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimFill {
    /// Venue trade id (per symbol).
    pub trade_id: u64,
    /// Execution price.
    pub price: Decimal,
    /// Executed quantity.
    pub qty: Decimal,
    /// Commission charged (0.1% of the asset received).
    pub commission: Decimal,
    /// Asset the commission was charged in (base for buys, quote for sells).
    pub commission_asset: String,
    /// `true` when the order was resting (maker).
    pub maker: bool,
    /// Execution time (server ms).
    pub time: i64,
}

/// An order the venue accepted, with its current state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimOrder {
    /// Owning account.
    pub api_key: String,
    /// Symbol, e.g. `BTCUSD`.
    pub symbol: String,
    /// Venue order id.
    pub order_id: u64,
    /// Client order id (given or generated).
    pub client_order_id: String,
    /// Side.
    pub side: SimSide,
    /// Type.
    pub order_type: SimOrderType,
    /// Time in force.
    pub time_in_force: SimTimeInForce,
    /// Limit price (zero for MARKET).
    pub price: Decimal,
    /// Ordered base quantity (for quote-quantity MARKET orders: the executed quantity).
    pub orig_qty: Decimal,
    /// `quoteOrderQty` of MARKET orders, zero otherwise.
    pub orig_quote_order_qty: Decimal,
    /// Filled base quantity.
    pub executed_qty: Decimal,
    /// Filled quote quantity (the venue's `cummulativeQuoteQty`).
    pub cummulative_quote_qty: Decimal,
    /// Current status.
    pub status: SimOrderStatus,
    /// Creation time (server ms).
    pub time: i64,
    /// Last change (server ms).
    pub update_time: i64,
    /// Every fill, oldest first.
    pub fills: Vec<SimFill>,
    /// Amount still locked for this order (quote for buys, base for sells).
    #[serde(skip)]
    pub(crate) locked: Decimal,
}

impl SimOrder {
    /// Quantity not yet filled.
    #[must_use]
    pub fn remaining(&self) -> Decimal {
        (self.orig_qty - self.executed_qty).max(Decimal::ZERO)
    }

    /// `true` while the order rests on the book.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.status.is_open()
    }
}

/// Counters of what the simulator did, for assertions and the admin API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SimStats {
    /// REST requests to `/api/...` (admin requests are not counted).
    pub rest_requests: u64,
    /// HTTP 429 answers sent (weight, storm and order-rate limits).
    pub http_429: u64,
    /// HTTP 418 answers sent (bans).
    pub http_418: u64,
    /// HTTP 503 answers sent by the `ServerErrors` fault.
    pub http_503: u64,
    /// Any other 4xx/5xx venue error answers.
    pub rest_errors: u64,
    /// -1021 answers (timestamp outside the receive window), a subset of `rest_errors`.
    pub timestamp_errors: u64,
    /// Orders accepted by the engine.
    pub orders_accepted: u64,
    /// `POST /api/v3/order` requests answered with an error.
    pub orders_rejected: u64,
    /// Orders canceled.
    pub orders_canceled: u64,
    /// Fills of user orders.
    pub fills: u64,
    /// Order responses held back by the `OrderTimeout` fault.
    pub order_responses_delayed: u64,
    /// Websocket connections accepted (handshake completed).
    pub ws_connections: u64,
    /// Websocket connections open right now.
    pub ws_open: u64,
    /// Websocket data messages sent (market, user and control replies).
    pub ws_messages_sent: u64,
    /// Depth diff events produced.
    pub depth_updates: u64,
}
