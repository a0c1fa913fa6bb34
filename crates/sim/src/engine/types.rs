//! The engine's vocabulary: instruments, sides, order types, orders, fills, book levels.
//!
//! These types are what every simulator shares, so they carry no protocol: an instrument
//! is named by an opaque string (a Binance symbol, a Coinbase product id or an OANDA
//! instrument are all just names here), and an order belongs to an opaque account id.
//! The enums serialize in `SCREAMING_SNAKE_CASE` because that is how the simulators'
//! admin API has always shown them; the protocol spellings of a venue (which may differ)
//! are written by that venue's module, never here. Internal bookkeeping that a test has
//! no business asserting on (the amount still locked for an order) stays crate-private.

use rust_decimal::Decimal;
use serde::Serialize;

/// One book level: `(price, qty)`.
pub type Level = (Decimal, Decimal);

/// A book as the engine reports it: the last sequence number (a venue's update id), bids
/// best first, asks best first.
pub type BookSnapshot = (u64, Vec<Level>, Vec<Level>);

/// Best bid and best ask.
pub type Top = (Option<Level>, Option<Level>);

/// Order side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SimSide {
    /// Buy the base asset.
    Buy,
    /// Sell the base asset.
    Sell,
}

impl SimSide {
    /// The other side (the side a taker order hits).
    #[must_use]
    pub fn opposite(self) -> Self {
        match self {
            Self::Buy => Self::Sell,
            Self::Sell => Self::Buy,
        }
    }
}

/// Order type. Only the two types the engine executes exist here; a protocol answers
/// other types with its own "unsupported" error before the engine sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SimOrderType {
    /// A priced order that may rest.
    Limit,
    /// An unpriced order that takes liquidity and never rests.
    Market,
}

/// Time in force (MARKET orders carry `Gtc`, as Binance reports them).
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

/// Order status (`Canceled` with one L, as the admin API has always spelled it).
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
    /// Rejected by the engine (unused: rejections are synchronous answers and such
    /// orders are never accepted).
    Rejected,
}

impl SimOrderStatus {
    /// `true` while the order can still fill or be canceled.
    #[must_use]
    pub fn is_open(self) -> bool {
        matches!(self, Self::New | Self::PartiallyFilled)
    }
}

/// One execution of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimFill {
    /// Trade id (per instrument).
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
    /// Execution time (engine ms).
    pub time: i64,
}

/// An order the engine accepted, with its current state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimOrder {
    /// Owning account (an opaque account id; on Binance.US, the API key).
    pub api_key: String,
    /// Instrument name, e.g. `BTCUSD`.
    pub symbol: String,
    /// Engine order id.
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
    /// Quote amount of quote-quantity MARKET orders, zero otherwise.
    pub orig_quote_order_qty: Decimal,
    /// Filled base quantity.
    pub executed_qty: Decimal,
    /// Filled quote quantity (Binance's `cummulativeQuoteQty`).
    pub cummulative_quote_qty: Decimal,
    /// Current status.
    pub status: SimOrderStatus,
    /// Creation time (engine ms).
    pub time: i64,
    /// Last change (engine ms).
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

/// One tradable instrument and its trading rules.
///
/// The name is opaque to the engine; the rules (price grid, quantity grid, minimum
/// notional) are the ones every venue has in some form, so the engine applies them and
/// reports a failure as a neutral [`super::FilterKind`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimSymbol {
    /// Instrument name, e.g. `"BTCUSD"`.
    pub symbol: String,
    /// Base asset, e.g. `"BTC"`.
    pub base: String,
    /// Quote asset, e.g. `"USD"`.
    pub quote: String,
    /// Mid price the random walk starts from.
    pub start_price: Decimal,
    /// Price grid (Binance's PRICE_FILTER `tickSize`, also the `minPrice`).
    pub tick_size: Decimal,
    /// Quantity grid (Binance's LOT_SIZE `stepSize`).
    pub step_size: Decimal,
    /// Smallest quantity (LOT_SIZE `minQty`).
    pub min_qty: Decimal,
    /// Largest quantity (LOT_SIZE `maxQty`).
    pub max_qty: Decimal,
    /// Smallest notional (MIN_NOTIONAL `minNotional`).
    pub min_notional: Decimal,
}

impl SimSymbol {
    /// Highest accepted price: 100 times the start price, on the tick grid.
    #[must_use]
    pub fn max_price(&self) -> Decimal {
        let raw = self.start_price * Decimal::from(100);
        if self.tick_size.is_zero() {
            raw
        } else {
            (raw / self.tick_size).floor() * self.tick_size
        }
    }
}

/// A public trade, as kept for recent-trades queries and trade streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicTrade {
    /// Trade id (per instrument).
    pub id: u64,
    /// Price.
    pub price: Decimal,
    /// Quantity.
    pub qty: Decimal,
    /// Time (engine ms).
    pub time: i64,
    /// `true` when the buyer was the maker.
    pub buyer_maker: bool,
    /// Buyer order id (0 for synthetic liquidity).
    pub buyer_order: u64,
    /// Seller order id (0 for synthetic liquidity).
    pub seller_order: u64,
}
