//! The v20 objects gekko reads, typed (reference §3.5–3.10).
//!
//! Parsed leniently: every field has a default and unknown fields are ignored, because
//! the live API is newer than its 2018 OpenAPI spec and adds fields (reference §3). Money,
//! prices and units are decimal strings on the wire and [`Decimal`] here.

use rust_decimal::Decimal;
use serde::Deserialize;

/// `clientExtensions` of an order or trade: gekko puts its client order id in `id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ClientExtensions {
    /// The client's id (gekko's client order id).
    pub id: Option<String>,
    /// A free tag.
    pub tag: Option<String>,
    /// A free comment.
    pub comment: Option<String>,
}

/// `tradeOpened` of an `ORDER_FILL`: the trade a fill opened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TradeOpen {
    /// The new trade's id.
    #[serde(rename = "tradeID")]
    pub trade_id: String,
    /// Signed units opened.
    pub units: Decimal,
    /// Its price.
    pub price: Option<Decimal>,
    /// Margin the trade requires.
    pub initial_margin_required: Option<Decimal>,
}

/// `tradesClosed[]` / `tradeReduced` of an `ORDER_FILL`: a trade the fill (partly) closed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TradeReduce {
    /// The trade's id.
    #[serde(rename = "tradeID")]
    pub trade_id: String,
    /// Signed units closed.
    pub units: Decimal,
    /// Closing price.
    pub price: Option<Decimal>,
    /// Realized P/L in the account currency.
    #[serde(rename = "realizedPL")]
    pub realized_pl: Option<Decimal>,
    /// Financing paid (negative) or received.
    pub financing: Option<Decimal>,
}

/// One v20 transaction: the order-related ones gekko maps (`MARKET_ORDER`,
/// `LIMIT_ORDER`, `ORDER_FILL`, `ORDER_CANCEL`, `*_ORDER_REJECT`), with every other type
/// parsed to its id, type and time only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OandaTransaction {
    /// Transaction id: an increasing integer string.
    pub id: String,
    /// `MARKET_ORDER`, `ORDER_FILL`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened (RFC 3339 or UNIX, per `Accept-Datetime-Format`).
    pub time: String,
    /// The account.
    #[serde(rename = "accountID")]
    pub account_id: Option<String>,
    /// The order a fill or cancel is about.
    #[serde(rename = "orderID")]
    pub order_id: Option<String>,
    /// The client id of the order a fill or cancel is about.
    #[serde(rename = "clientOrderID")]
    pub client_order_id: Option<String>,
    /// Instrument (creates, fills, rejects).
    pub instrument: Option<String>,
    /// Signed units (creates, fills, rejects).
    pub units: Option<Decimal>,
    /// Limit price of a create; the fill price (VWAP) of a fill.
    pub price: Option<Decimal>,
    /// VWAP of a fill, newer than `price`.
    #[serde(rename = "fullVWAP")]
    pub full_vwap: Option<Decimal>,
    /// `FOK`, `IOC`, `GTC`, `GTD`, `GFD`.
    pub time_in_force: Option<String>,
    /// Why it happened (`CLIENT_ORDER`, `TIME_IN_FORCE_EXPIRED`, ...).
    pub reason: Option<String>,
    /// Why a `*_REJECT` was refused (`INSUFFICIENT_MARGIN`, ...).
    pub reject_reason: Option<String>,
    /// Creates and rejects: the order's client extensions.
    pub client_extensions: Option<ClientExtensions>,
    /// Commission of a fill (positive, reduces the balance).
    pub commission: Option<Decimal>,
    /// Financing of a fill (negative = paid).
    pub financing: Option<Decimal>,
    /// Guaranteed-stop fee of a fill.
    pub guaranteed_execution_fee: Option<Decimal>,
    /// Realized P/L of a fill.
    pub pl: Option<Decimal>,
    /// Balance after a fill.
    pub account_balance: Option<Decimal>,
    /// The trade a fill opened.
    pub trade_opened: Option<TradeOpen>,
    /// The trades a fill closed.
    pub trades_closed: Vec<TradeReduce>,
    /// The trade a fill reduced.
    pub trade_reduced: Option<TradeReduce>,
}

/// One v20 order object (`GET …/orders/{spec}`, `pendingOrders`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OandaOrder {
    /// The venue's order id.
    pub id: String,
    /// `MARKET`, `LIMIT`, `TAKE_PROFIT`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// `PENDING`, `FILLED`, `TRIGGERED`, `CANCELLED`.
    pub state: String,
    /// Instrument (entry orders).
    pub instrument: Option<String>,
    /// Signed units (entry orders).
    pub units: Option<Decimal>,
    /// Limit price.
    pub price: Option<Decimal>,
    /// Time in force.
    pub time_in_force: Option<String>,
    /// gekko's client order id in `id`.
    pub client_extensions: Option<ClientExtensions>,
    /// When it was created.
    pub create_time: String,
    /// When it filled.
    pub filled_time: Option<String>,
    /// When it was cancelled.
    pub cancelled_time: Option<String>,
    /// The `ORDER_FILL` that filled it.
    #[serde(rename = "fillingTransactionID")]
    pub filling_transaction_id: Option<String>,
    /// The `ORDER_CANCEL` that cancelled it.
    #[serde(rename = "cancellingTransactionID")]
    pub cancelling_transaction_id: Option<String>,
    /// The trade its (first) fill opened.
    #[serde(rename = "tradeOpenedID")]
    pub trade_opened_id: Option<String>,
    /// The trade its fill reduced.
    #[serde(rename = "tradeReducedID")]
    pub trade_reduced_id: Option<String>,
    /// The trades its fills closed.
    #[serde(rename = "tradeClosedIDs")]
    pub trade_closed_ids: Vec<String>,
}

impl OandaOrder {
    /// Whether anything of the order has executed (a fill opened, reduced or closed a
    /// trade, or filled it).
    #[must_use]
    pub fn has_fills(&self) -> bool {
        self.trade_opened_id.is_some()
            || self.trade_reduced_id.is_some()
            || !self.trade_closed_ids.is_empty()
            || self.filling_transaction_id.is_some()
    }
}

/// `GET /v3/accounts`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AccountsResponse {
    /// The accounts the token may use.
    pub accounts: Vec<AccountProperties>,
}

/// One entry of [`AccountsResponse`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AccountProperties {
    /// `101-001-1234567-001`.
    pub id: String,
    /// Tags.
    pub tags: Vec<serde_json::Value>,
}

/// The money fields of `AccountSummary` gekko uses (reference §3.5).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AccountSummary {
    /// Account id.
    pub id: String,
    /// Account currency (ISO 4217).
    pub currency: String,
    /// Balance.
    pub balance: Decimal,
    /// Net asset value.
    #[serde(rename = "NAV")]
    pub nav: Decimal,
    /// Unrealized P/L.
    #[serde(rename = "unrealizedPL")]
    pub unrealized_pl: Decimal,
    /// Margin used.
    pub margin_used: Decimal,
    /// Margin available.
    pub margin_available: Decimal,
    /// Margin closeout percent, as a fraction.
    pub margin_closeout_percent: Decimal,
    /// Account-wide margin rate.
    pub margin_rate: Option<Decimal>,
    /// Open trades.
    pub open_trade_count: u32,
    /// Open positions.
    pub open_position_count: u32,
    /// Pending orders.
    pub pending_order_count: u32,
    /// Whether hedging is on.
    pub hedging_enabled: bool,
    /// Last transaction id.
    #[serde(rename = "lastTransactionID")]
    pub last_transaction_id: Option<String>,
}

/// `GET /v3/accounts/{id}/summary`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AccountSummaryResponse {
    /// The summary.
    pub account: AccountSummary,
    /// Last transaction id of the account.
    #[serde(rename = "lastTransactionID")]
    pub last_transaction_id: String,
}

/// One entry of `GET /v3/accounts/{id}/instruments`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OandaInstrument {
    /// `EUR_USD`.
    pub name: String,
    /// `CURRENCY`, `METAL`, `CFD`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Human name.
    pub display_name: String,
    /// Location of the pip (-4 for EUR_USD).
    pub pip_location: i32,
    /// Decimal places of prices.
    pub display_precision: u32,
    /// Decimal places of units (0 = whole units).
    pub trade_units_precision: u32,
    /// Smallest order size.
    pub minimum_trade_size: Decimal,
    /// Largest order size.
    pub maximum_order_units: Decimal,
    /// Largest position size (0 = none).
    pub maximum_position_size: Decimal,
    /// Margin rate (0.0333 = 30:1 leverage).
    pub margin_rate: Decimal,
}

/// `GET /v3/accounts/{id}/instruments`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct InstrumentsResponse {
    /// The instruments.
    pub instruments: Vec<OandaInstrument>,
}

/// One level of a price: `{"price": "1.09144", "liquidity": 1000000}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct PriceBucket {
    /// Price.
    pub price: Decimal,
    /// Liquidity (an integer on the wire).
    pub liquidity: Decimal,
}

/// A `ClientPrice` (`GET …/pricing`, and the streamed PRICE line).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ClientPrice {
    /// `PRICE`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `EUR_USD`.
    pub instrument: String,
    /// Price time.
    pub time: String,
    /// Whether it can be traded now.
    pub tradeable: bool,
    /// Bids, best first.
    pub bids: Vec<PriceBucket>,
    /// Asks, best first.
    pub asks: Vec<PriceBucket>,
    /// Closeout bid.
    pub closeout_bid: Option<Decimal>,
    /// Closeout ask.
    pub closeout_ask: Option<Decimal>,
}

/// `GET /v3/accounts/{id}/pricing`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PricingResponse {
    /// One price per instrument.
    pub prices: Vec<ClientPrice>,
    /// Response time.
    pub time: String,
}

/// One side of a position (`long` / `short`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PositionSide {
    /// Signed units (negative on the short side).
    pub units: Decimal,
    /// Average price of the side's open trades.
    pub average_price: Option<Decimal>,
    /// Open trades of the side.
    #[serde(rename = "tradeIDs")]
    pub trade_ids: Vec<String>,
    /// Unrealized P/L.
    #[serde(rename = "unrealizedPL")]
    pub unrealized_pl: Option<Decimal>,
}

/// A v20 `Position`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OandaPosition {
    /// `EUR_USD`.
    pub instrument: String,
    /// Realized P/L.
    pub pl: Option<Decimal>,
    /// Unrealized P/L of both sides.
    #[serde(rename = "unrealizedPL")]
    pub unrealized_pl: Option<Decimal>,
    /// Margin used.
    pub margin_used: Option<Decimal>,
    /// The long side.
    pub long: PositionSide,
    /// The short side.
    pub short: PositionSide,
}

/// `GET …/positions` / `openPositions`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PositionsResponse {
    /// The positions.
    pub positions: Vec<OandaPosition>,
    /// Last transaction id.
    #[serde(rename = "lastTransactionID")]
    pub last_transaction_id: String,
}

/// A v20 `Trade` (`openTrades`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OandaTrade {
    /// Trade id.
    pub id: String,
    /// `EUR_USD`.
    pub instrument: String,
    /// Opening price.
    pub price: Decimal,
    /// When it opened.
    pub open_time: String,
    /// `OPEN`, `CLOSED`.
    pub state: String,
    /// Signed units at opening.
    pub initial_units: Decimal,
    /// Signed units still open.
    pub current_units: Decimal,
    /// Unrealized P/L.
    #[serde(rename = "unrealizedPL")]
    pub unrealized_pl: Option<Decimal>,
    /// Margin used.
    pub margin_used: Option<Decimal>,
    /// The opening order's client extensions.
    pub client_extensions: Option<ClientExtensions>,
}

/// `GET …/openTrades`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TradesResponse {
    /// The trades.
    pub trades: Vec<OandaTrade>,
    /// Last transaction id.
    #[serde(rename = "lastTransactionID")]
    pub last_transaction_id: String,
}

/// `GET …/orders/{spec}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OrderResponse {
    /// The order.
    pub order: OandaOrder,
    /// Last transaction id.
    #[serde(rename = "lastTransactionID")]
    pub last_transaction_id: String,
}

/// `GET …/pendingOrders`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OrdersResponse {
    /// The orders.
    pub orders: Vec<OandaOrder>,
    /// Last transaction id.
    #[serde(rename = "lastTransactionID")]
    pub last_transaction_id: String,
}

/// `GET …/transactions/{id}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TransactionResponse {
    /// The transaction.
    pub transaction: OandaTransaction,
    /// Last transaction id.
    #[serde(rename = "lastTransactionID")]
    pub last_transaction_id: String,
}

/// The answer of `POST …/orders` (201 and 400/404 alike), `PUT …/orders/{spec}/cancel`
/// and, per side, `PUT …/positions/{instrument}/close`: the transactions it produced.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OrderTransactions {
    /// The order's creation.
    pub order_create_transaction: Option<OandaTransaction>,
    /// Its fill.
    pub order_fill_transaction: Option<OandaTransaction>,
    /// Its cancel (FOK not filled, IOC remainder, a cancel request).
    pub order_cancel_transaction: Option<OandaTransaction>,
    /// Its rejection (400).
    pub order_reject_transaction: Option<OandaTransaction>,
    /// Long side of a position close: creation.
    pub long_order_create_transaction: Option<OandaTransaction>,
    /// Long side of a position close: fill.
    pub long_order_fill_transaction: Option<OandaTransaction>,
    /// Long side of a position close: cancel.
    pub long_order_cancel_transaction: Option<OandaTransaction>,
    /// Long side of a position close: reject.
    pub long_order_reject_transaction: Option<OandaTransaction>,
    /// Short side of a position close: creation.
    pub short_order_create_transaction: Option<OandaTransaction>,
    /// Short side of a position close: fill.
    pub short_order_fill_transaction: Option<OandaTransaction>,
    /// Short side of a position close: cancel.
    pub short_order_cancel_transaction: Option<OandaTransaction>,
    /// Short side of a position close: reject.
    pub short_order_reject_transaction: Option<OandaTransaction>,
    /// Related transaction ids.
    #[serde(rename = "relatedTransactionIDs")]
    pub related_transaction_ids: Vec<String>,
    /// Last transaction id.
    #[serde(rename = "lastTransactionID")]
    pub last_transaction_id: Option<String>,
    /// Error code on a 400/404.
    pub error_code: Option<String>,
    /// Error message on a 400/404.
    pub error_message: Option<String>,
}

impl OrderTransactions {
    /// The transactions of the plain order endpoints, in the order they happened.
    pub fn order_chain(&self) -> impl Iterator<Item = &OandaTransaction> {
        [
            &self.order_create_transaction,
            &self.order_reject_transaction,
            &self.order_fill_transaction,
            &self.order_cancel_transaction,
        ]
        .into_iter()
        .flatten()
    }

    /// The transactions of a position close, long side then short side, each in order.
    pub fn close_chain(&self) -> impl Iterator<Item = &OandaTransaction> {
        [
            &self.long_order_create_transaction,
            &self.long_order_reject_transaction,
            &self.long_order_fill_transaction,
            &self.long_order_cancel_transaction,
            &self.short_order_create_transaction,
            &self.short_order_reject_transaction,
            &self.short_order_fill_transaction,
            &self.short_order_cancel_transaction,
        ]
        .into_iter()
        .flatten()
    }
}

/// `GET …/changes?sinceTransactionID=N`: what changed since a transaction id.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ChangesResponse {
    /// The changes.
    pub changes: AccountChanges,
    /// The last transaction id they include: the next `sinceTransactionID`.
    #[serde(rename = "lastTransactionID")]
    pub last_transaction_id: String,
}

/// The `changes` object of [`ChangesResponse`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AccountChanges {
    /// Orders created.
    pub orders_created: Vec<OandaOrder>,
    /// Orders cancelled.
    pub orders_cancelled: Vec<OandaOrder>,
    /// Orders filled.
    pub orders_filled: Vec<OandaOrder>,
    /// Orders triggered.
    pub orders_triggered: Vec<OandaOrder>,
    /// Positions changed.
    pub positions: Vec<OandaPosition>,
    /// Every transaction since the id, oldest first.
    pub transactions: Vec<OandaTransaction>,
}

/// An error body: `{"errorCode": "...", "errorMessage": "..."}` (reference §3.4), plus
/// the reject transaction order endpoints add.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ErrorBody {
    /// Optional machine code.
    pub error_code: Option<String>,
    /// Human text.
    pub error_message: Option<String>,
    /// The order's rejection, on `POST …/orders`.
    pub order_reject_transaction: Option<OandaTransaction>,
    /// Long side rejection of a position close.
    pub long_order_reject_transaction: Option<OandaTransaction>,
    /// Short side rejection of a position close.
    pub short_order_reject_transaction: Option<OandaTransaction>,
    /// The rejection of a cancel (`ORDER_DOESNT_EXIST`).
    pub order_cancel_reject_transaction: Option<OandaTransaction>,
    /// Last transaction id.
    #[serde(rename = "lastTransactionID")]
    pub last_transaction_id: Option<String>,
}

impl ErrorBody {
    /// The first reject transaction the body carries.
    #[must_use]
    pub fn reject(&self) -> Option<&OandaTransaction> {
        self.order_reject_transaction
            .as_ref()
            .or(self.order_cancel_reject_transaction.as_ref())
            .or(self.long_order_reject_transaction.as_ref())
            .or(self.short_order_reject_transaction.as_ref())
    }
}

/// `GET …/transactions/sinceid?id=N`: every transaction after `N`, oldest first.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TransactionsResponse {
    /// The transactions.
    pub transactions: Vec<OandaTransaction>,
    /// Last transaction id.
    #[serde(rename = "lastTransactionID")]
    pub last_transaction_id: String,
}
