//! Typed REST responses.
//!
//! Every price and quantity is a `Decimal` read with `rust_decimal::serde::str`, which only
//! accepts JSON *strings*, so a venue number can never pass through `f64` on its way in.
//! Unknown fields are ignored; enum values added by the venue land in `Unknown` variants.
//! [`parse`] turns a body into one of these or into an error that keeps the payload; it
//! never panics, whatever the bytes.

use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use gekko_net::NetError;

use crate::common::{
    BinanceUsOrderStatus, BinanceUsOrderType, BinanceUsSide, BinanceUsTimeInForce,
};
use crate::error::BinanceUsError;

/// Parses a response body into `T`.
///
/// # Errors
/// [`BinanceUsError::Net`] with [`NetError::Decode`], carrying the (truncated) payload.
pub fn parse<T: DeserializeOwned>(body: &str) -> Result<T, BinanceUsError> {
    serde_json::from_str(body).map_err(|e| BinanceUsError::Net(NetError::decode(e, body)))
}

/// An error body: `{"code": -1121, "msg": "Invalid symbol."}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiErrorBody {
    /// Venue error code.
    pub code: i64,
    /// Venue message.
    #[serde(default)]
    pub msg: String,
}

/// `{}` (ping, order test, listen-key keepalive/close).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Empty {}

/// `GET /api/v3/time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerTime {
    /// Venue time, ms since epoch.
    pub server_time: i64,
}

/// `GET /api/v3/exchangeInfo` (the parts gekko uses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExchangeInfo {
    /// Venue time.
    #[serde(default)]
    pub server_time: i64,
    /// Limits the venue enforces.
    #[serde(default)]
    pub rate_limits: Vec<RateLimit>,
    /// Symbols.
    pub symbols: Vec<SymbolInfo>,
}

/// One entry of `rateLimits`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// `REQUEST_WEIGHT`, `ORDERS`, `RAW_REQUESTS`.
    pub rate_limit_type: String,
    /// `SECOND`, `MINUTE`, `DAY`.
    pub interval: String,
    /// Interval multiplier.
    pub interval_num: u32,
    /// The limit.
    pub limit: u64,
}

/// One symbol of `exchangeInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SymbolInfo {
    /// `BTCUSD`.
    pub symbol: String,
    /// `TRADING`, `HALT`, `BREAK`, ...
    pub status: String,
    /// `BTC`.
    pub base_asset: String,
    /// `USD`.
    pub quote_asset: String,
    /// Trading rules.
    #[serde(default)]
    pub filters: Vec<SymbolFilter>,
}

/// A symbol filter, by `filterType`. Filters gekko does not check are `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "filterType")]
pub enum SymbolFilter {
    /// Price bounds and tick.
    #[serde(rename = "PRICE_FILTER", rename_all = "camelCase")]
    PriceFilter {
        /// Minimum price (0 = unchecked).
        #[serde(with = "rust_decimal::serde::str")]
        min_price: Decimal,
        /// Maximum price (0 = unchecked).
        #[serde(with = "rust_decimal::serde::str")]
        max_price: Decimal,
        /// Tick (0 = unchecked).
        #[serde(with = "rust_decimal::serde::str")]
        tick_size: Decimal,
    },
    /// Quantity bounds and step.
    #[serde(rename = "LOT_SIZE", rename_all = "camelCase")]
    LotSize {
        /// Minimum quantity.
        #[serde(with = "rust_decimal::serde::str")]
        min_qty: Decimal,
        /// Maximum quantity.
        #[serde(with = "rust_decimal::serde::str")]
        max_qty: Decimal,
        /// Step.
        #[serde(with = "rust_decimal::serde::str")]
        step_size: Decimal,
    },
    /// Minimum notional (older filter).
    #[serde(rename = "MIN_NOTIONAL", rename_all = "camelCase")]
    MinNotional {
        /// Minimum `price * qty`.
        #[serde(with = "rust_decimal::serde::str")]
        min_notional: Decimal,
    },
    /// Notional bounds (newer filter).
    #[serde(rename = "NOTIONAL", rename_all = "camelCase")]
    Notional {
        /// Minimum `price * qty`.
        #[serde(with = "rust_decimal::serde::str")]
        min_notional: Decimal,
    },
    /// Any other filter.
    #[serde(other)]
    Other,
}

/// A book level `["price", "qty"]`. Shared with the `depthUpdate` stream, so read with the
/// hot-path decimal parser ([`crate::common::decimal`], same values as
/// `rust_decimal::serde::str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Level(
    /// Price.
    #[serde(deserialize_with = "crate::common::decimal::deserialize")]
    pub Decimal,
    /// Quantity.
    #[serde(deserialize_with = "crate::common::decimal::deserialize")]
    pub Decimal,
);

impl From<Level> for gekko_core::BookLevel {
    fn from(l: Level) -> Self {
        Self {
            price: l.0,
            qty: l.1,
        }
    }
}

/// `GET /api/v3/depth`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DepthSnapshot {
    /// The book's update id.
    pub last_update_id: u64,
    /// Bids, best first.
    pub bids: Vec<Level>,
    /// Asks, best first.
    pub asks: Vec<Level>,
}

/// `GET /api/v3/ticker/bookTicker?symbol=`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookTicker {
    /// Symbol.
    pub symbol: String,
    /// Best bid.
    #[serde(with = "rust_decimal::serde::str")]
    pub bid_price: Decimal,
    /// Size at the best bid.
    #[serde(with = "rust_decimal::serde::str")]
    pub bid_qty: Decimal,
    /// Best ask.
    #[serde(with = "rust_decimal::serde::str")]
    pub ask_price: Decimal,
    /// Size at the best ask.
    #[serde(with = "rust_decimal::serde::str")]
    pub ask_qty: Decimal,
}

/// `GET /api/v3/account` (the parts gekko uses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// Whether the account may trade.
    #[serde(default)]
    pub can_trade: bool,
    /// Last update.
    #[serde(default)]
    pub update_time: i64,
    /// Holdings.
    pub balances: Vec<AccountBalance>,
}

/// One asset of [`Account::balances`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccountBalance {
    /// Asset code.
    pub asset: String,
    /// Available.
    #[serde(with = "rust_decimal::serde::str")]
    pub free: Decimal,
    /// Held by orders.
    #[serde(with = "rust_decimal::serde::str")]
    pub locked: Decimal,
}

/// An order as returned by `POST /api/v3/order` (RESULT/FULL), `GET /api/v3/order`,
/// `GET /api/v3/openOrders`, and the cancel endpoints.
///
/// On a cancel, `client_order_id` is the *cancel request's* id and
/// `orig_client_order_id` the order's own; use [`OrderResponse::order_client_id`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderResponse {
    /// Symbol.
    pub symbol: String,
    /// Venue order id.
    pub order_id: i64,
    /// Client order id (on cancels: the cancel's own id).
    pub client_order_id: String,
    /// The order's client id, on cancel responses.
    #[serde(default)]
    pub orig_client_order_id: Option<String>,
    /// Limit price ("0.00000000" for market orders).
    #[serde(with = "rust_decimal::serde::str")]
    pub price: Decimal,
    /// Ordered quantity.
    #[serde(with = "rust_decimal::serde::str")]
    pub orig_qty: Decimal,
    /// Filled quantity.
    #[serde(with = "rust_decimal::serde::str")]
    pub executed_qty: Decimal,
    /// Filled quote quantity (the venue's spelling, double m).
    #[serde(with = "rust_decimal::serde::str")]
    pub cummulative_quote_qty: Decimal,
    /// Status.
    pub status: BinanceUsOrderStatus,
    /// Time in force.
    #[serde(default = "unknown_tif")]
    pub time_in_force: BinanceUsTimeInForce,
    /// Type.
    #[serde(rename = "type")]
    pub order_type: BinanceUsOrderType,
    /// Side.
    pub side: BinanceUsSide,
    /// Placement time (submit responses).
    #[serde(default)]
    pub transact_time: Option<i64>,
    /// Creation time (query responses).
    #[serde(default)]
    pub time: Option<i64>,
    /// Last update (query responses).
    #[serde(default)]
    pub update_time: Option<i64>,
    /// Fills (FULL responses only).
    #[serde(default)]
    pub fills: Vec<OrderFill>,
}

fn unknown_tif() -> BinanceUsTimeInForce {
    BinanceUsTimeInForce::Unknown
}

impl OrderResponse {
    /// The order's own client id: `origClientOrderId` on cancels, else `clientOrderId`.
    #[must_use]
    pub fn order_client_id(&self) -> &str {
        self.orig_client_order_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(&self.client_order_id)
    }

    /// The most recent timestamp the response carries, ms.
    #[must_use]
    pub fn ts_ms(&self) -> i64 {
        self.update_time
            .or(self.transact_time)
            .or(self.time)
            .unwrap_or(0)
    }
}

/// One fill of a FULL order response.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderFill {
    /// Price.
    #[serde(with = "rust_decimal::serde::str")]
    pub price: Decimal,
    /// Quantity.
    #[serde(with = "rust_decimal::serde::str")]
    pub qty: Decimal,
    /// Commission.
    #[serde(with = "rust_decimal::serde::str")]
    pub commission: Decimal,
    /// Commission asset.
    pub commission_asset: String,
    /// Trade id.
    #[serde(default)]
    pub trade_id: i64,
}

/// One entry of `DELETE /api/v3/openOrders`: a cancelled order, or an OCO order list
/// (which gekko does not place, kept opaque).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum CancelAllEntry {
    /// A cancelled order.
    Order(OrderResponse),
    /// An order list or anything else.
    Other(serde_json::Value),
}

/// `POST /api/v3/userDataStream`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenKey {
    /// The key to put in `/ws/<listenKey>`.
    pub listen_key: String,
}
