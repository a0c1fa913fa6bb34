//! Typed REST responses, as the reference (1.3) and the official SDK name their fields.
//!
//! Money and sizes are decimal **strings** on the wire and [`Decimal`] here; the venue
//! sends `""` for fields that do not apply, which reads as zero (a `0` increment or bound
//! means "unchecked" to the pre-trade checks). Unknown fields are ignored so additions by
//! the venue do not break parsing; fields gekko relies on are required. Orders are kept as
//! JSON values: [`crate::common::order_update`] is the one place that reads them.

use rust_decimal::Decimal;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::CoinbaseError;

/// Parses a response body, keeping (a truncated copy of) the payload on failure.
///
/// # Errors
/// [`CoinbaseError::Net`] (`Decode`) when the body does not match `T`.
pub fn parse<T: for<'de> Deserialize<'de>>(body: &str) -> Result<T, CoinbaseError> {
    serde_json::from_str(body).map_err(|e| CoinbaseError::malformed(e, body))
}

/// A decimal from a string (`""` is zero) or, tolerated, a JSON number.
fn dec<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Decimal::ZERO),
        Value::String(s) if s.is_empty() => Ok(Decimal::ZERO),
        Value::String(s) => s
            .parse::<Decimal>()
            .or_else(|_| Decimal::from_scientific(&s))
            .map_err(|_| de::Error::custom(format!("not a decimal: {s:?}"))),
        Value::Number(n) => n
            .to_string()
            .parse::<Decimal>()
            .map_err(|_| de::Error::custom(format!("not a decimal: {n}"))),
        other => Err(de::Error::custom(format!("not a decimal: {other}"))),
    }
}

/// An integer sent as a string (`"1700000000000"`) or a number.
fn int_str<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => s
            .parse::<i64>()
            .map_err(|_| de::Error::custom(format!("not an integer: {s:?}"))),
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| de::Error::custom(format!("not an integer: {n}"))),
        other => Err(de::Error::custom(format!("not an integer: {other}"))),
    }
}

/// A string that may be null.
fn str_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// `GET /time`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServerTime {
    /// RFC 3339.
    #[serde(default)]
    pub iso: String,
    /// Epoch milliseconds (a string on the wire).
    #[serde(rename = "epochMillis", deserialize_with = "int_str")]
    pub epoch_millis: i64,
}

/// `{value, currency}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Amount {
    /// The amount.
    #[serde(deserialize_with = "dec")]
    pub value: Decimal,
    /// Its currency.
    #[serde(default)]
    pub currency: String,
}

/// One account (one currency wallet) of `GET /accounts`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Account {
    /// Account uuid.
    pub uuid: String,
    /// Currency code (`BTC`).
    pub currency: String,
    /// Available to trade.
    pub available_balance: Amount,
    /// Held by open orders.
    #[serde(default)]
    pub hold: Option<Amount>,
    /// Whether the account is active.
    #[serde(default = "yes")]
    pub active: bool,
    /// `ACCOUNT_TYPE_CRYPTO`, `ACCOUNT_TYPE_FIAT`, `ACCOUNT_TYPE_VAULT`.
    #[serde(default, rename = "type", deserialize_with = "str_or_null")]
    pub account_type: String,
}

fn yes() -> bool {
    true
}

/// One page of `GET /accounts`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccountsPage {
    /// The accounts.
    pub accounts: Vec<Account>,
    /// Whether another page follows.
    #[serde(default)]
    pub has_next: bool,
    /// Cursor of the next page (`""` at the end).
    #[serde(default, deserialize_with = "str_or_null")]
    pub cursor: String,
}

/// A product (`GET /products`, `GET /products/{id}`): the trading rules gekko checks.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Product {
    /// `BTC-USD`.
    pub product_id: String,
    /// Quantity increment.
    #[serde(default, deserialize_with = "dec")]
    pub base_increment: Decimal,
    /// Price increment.
    #[serde(default, deserialize_with = "dec")]
    pub quote_increment: Decimal,
    /// Smallest base size.
    #[serde(default, deserialize_with = "dec")]
    pub base_min_size: Decimal,
    /// Largest base size.
    #[serde(default, deserialize_with = "dec")]
    pub base_max_size: Decimal,
    /// Smallest order value in quote currency.
    #[serde(default, deserialize_with = "dec")]
    pub quote_min_size: Decimal,
    /// Largest order value in quote currency.
    #[serde(default, deserialize_with = "dec")]
    pub quote_max_size: Decimal,
    /// `online`, `offline`, `delisted`, ...
    #[serde(default, deserialize_with = "str_or_null")]
    pub status: String,
    /// Trading is off.
    #[serde(default)]
    pub trading_disabled: bool,
    /// The product is disabled.
    #[serde(default)]
    pub is_disabled: bool,
    /// Only cancels are accepted.
    #[serde(default)]
    pub cancel_only: bool,
    /// Only limit orders are accepted.
    #[serde(default)]
    pub limit_only: bool,
    /// Only post-only limit orders are accepted.
    #[serde(default)]
    pub post_only: bool,
    /// Auction mode (orders queue).
    #[serde(default)]
    pub auction_mode: bool,
    /// `SPOT` or `FUTURE`.
    #[serde(default, deserialize_with = "str_or_null")]
    pub product_type: String,
}

/// `GET /products`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProductsList {
    /// The products.
    pub products: Vec<Product>,
}

/// One price level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct L2Level {
    /// Price.
    #[serde(deserialize_with = "dec")]
    pub price: Decimal,
    /// Size.
    #[serde(deserialize_with = "dec")]
    pub size: Decimal,
}

/// A price book (`best_bid_ask` entries, `product_book.pricebook`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PriceBook {
    /// `BTC-USD`.
    pub product_id: String,
    /// Bids, best first.
    #[serde(default)]
    pub bids: Vec<L2Level>,
    /// Asks, best first.
    #[serde(default)]
    pub asks: Vec<L2Level>,
    /// RFC 3339.
    #[serde(default, deserialize_with = "str_or_null")]
    pub time: String,
}

/// `GET /best_bid_ask`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BestBidAsk {
    /// One book per product.
    pub pricebooks: Vec<PriceBook>,
}

/// `GET /product_book`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProductBook {
    /// The book.
    pub pricebook: PriceBook,
}

/// `success_response` of a create order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CreateOrderSuccess {
    /// The venue's order id.
    pub order_id: String,
    /// The product.
    #[serde(default)]
    pub product_id: String,
    /// The side.
    #[serde(default)]
    pub side: String,
    /// The client order id (the original one when it was repeated).
    #[serde(default)]
    pub client_order_id: String,
}

/// `error_response` of a create order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CreateOrderError {
    /// The error code (`INSUFFICIENT_FUND`).
    #[serde(default, deserialize_with = "str_or_null")]
    pub error: String,
    /// Message.
    #[serde(default, deserialize_with = "str_or_null")]
    pub message: String,
    /// Details.
    #[serde(default, deserialize_with = "str_or_null")]
    pub error_details: String,
    /// Preview failure reason (`PREVIEW_INSUFFICIENT_FUND`).
    #[serde(default, deserialize_with = "str_or_null")]
    pub preview_failure_reason: String,
    /// New-order failure reason.
    #[serde(default, deserialize_with = "str_or_null")]
    pub new_order_failure_reason: String,
}

/// `POST /orders` (HTTP 200 for success and business failure alike).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CreateOrderResponse {
    /// Whether the order was accepted.
    pub success: bool,
    /// Top-level failure reason.
    #[serde(default, deserialize_with = "str_or_null")]
    pub failure_reason: String,
    /// Set on success.
    #[serde(default)]
    pub success_response: Option<CreateOrderSuccess>,
    /// Set on failure.
    #[serde(default)]
    pub error_response: Option<CreateOrderError>,
}

/// A venue code that carries no information (`UNKNOWN_FAILURE_REASON`, ...).
fn uninformative(code: &str) -> bool {
    code.is_empty() || code.starts_with("UNKNOWN_") || code.ends_with("_UNSPECIFIED")
}

impl CreateOrderResponse {
    /// The most specific failure code and the message: `error_response.error`, then
    /// `preview_failure_reason`, `new_order_failure_reason`, `failure_reason`.
    #[must_use]
    pub fn failure(&self) -> (String, String) {
        let e = self.error_response.clone().unwrap_or_default();
        let code = [
            e.error.as_str(),
            e.preview_failure_reason.as_str(),
            e.new_order_failure_reason.as_str(),
            self.failure_reason.as_str(),
        ]
        .into_iter()
        .find(|c| !uninformative(c))
        .or(Some(self.failure_reason.as_str()).filter(|c| !c.is_empty()))
        .unwrap_or("UNKNOWN_FAILURE_REASON")
        .to_owned();
        let message = if e.message.is_empty() {
            e.error_details
        } else {
            e.message
        };
        (code, message)
    }
}

/// One result of `POST /orders/batch_cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CancelResult {
    /// Whether the cancel was accepted.
    pub success: bool,
    /// Why not (`UNKNOWN_CANCEL_ORDER`, `INVALID_CANCEL_REQUEST`).
    #[serde(default, deserialize_with = "str_or_null")]
    pub failure_reason: String,
    /// The order.
    pub order_id: String,
}

/// `POST /orders/batch_cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BatchCancelResponse {
    /// One result per id.
    pub results: Vec<CancelResult>,
}

/// One page of `GET /orders/historical/batch`; orders stay JSON for
/// [`crate::common::order_update`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OrdersPage {
    /// The orders.
    pub orders: Vec<Value>,
    /// Whether another page follows.
    #[serde(default)]
    pub has_next: bool,
    /// Cursor of the next page.
    #[serde(default, deserialize_with = "str_or_null")]
    pub cursor: String,
}

/// `GET /orders/historical/{id}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct GetOrder {
    /// The order.
    pub order: Value,
}

/// One fill of `GET /orders/historical/fills`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CoinbaseFill {
    /// Unique entry id.
    #[serde(default)]
    pub entry_id: String,
    /// Trade id.
    pub trade_id: String,
    /// The order.
    pub order_id: String,
    /// RFC 3339.
    #[serde(default, deserialize_with = "str_or_null")]
    pub trade_time: String,
    /// Price.
    #[serde(deserialize_with = "dec")]
    pub price: Decimal,
    /// Size (base, unless `size_in_quote`).
    #[serde(deserialize_with = "dec")]
    pub size: Decimal,
    /// Fee, in quote currency.
    #[serde(default, deserialize_with = "dec")]
    pub commission: Decimal,
    /// The product.
    pub product_id: String,
    /// `BUY`/`SELL`.
    #[serde(default)]
    pub side: String,
    /// `MAKER`/`TAKER`.
    #[serde(default, deserialize_with = "str_or_null")]
    pub liquidity_indicator: String,
    /// Whether `size` is in quote currency.
    #[serde(default)]
    pub size_in_quote: bool,
}

/// One page of `GET /orders/historical/fills`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FillsPage {
    /// The fills, newest first.
    pub fills: Vec<CoinbaseFill>,
    /// Cursor of the next page (`""` at the end).
    #[serde(default, deserialize_with = "str_or_null")]
    pub cursor: String,
}

/// A JSON error answer (`{error, message, error_details}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// Code (`INVALID_ARGUMENT`, `NOT_FOUND`).
    #[serde(default, deserialize_with = "str_or_null")]
    pub error: String,
    /// Message.
    #[serde(default, deserialize_with = "str_or_null")]
    pub message: String,
    /// Details (`Missing required scopes`).
    #[serde(default, deserialize_with = "str_or_null")]
    pub error_details: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_strings_are_zero_and_bad_decimals_fail() {
        let p: Product = parse(r#"{"product_id":"BTC-USD","base_increment":"0.00000001","quote_increment":"0.01","base_min_size":"","base_max_size":null,"quote_min_size":"1"}"#).unwrap();
        assert_eq!(p.base_increment, Decimal::new(1, 8));
        assert_eq!(p.base_min_size, Decimal::ZERO);
        assert_eq!(p.base_max_size, Decimal::ZERO);
        assert!(parse::<Product>(r#"{"product_id":"X","base_increment":"abc"}"#).is_err());
        let t: ServerTime =
            parse(r#"{"iso":"x","epochSeconds":"1","epochMillis":"1700000000123"}"#).unwrap();
        assert_eq!(t.epoch_millis, 1_700_000_000_123);
    }

    #[test]
    fn the_most_specific_failure_code_wins() {
        let r: CreateOrderResponse = parse(r#"{"success":false,"failure_reason":"UNKNOWN_FAILURE_REASON","error_response":{"error":"INSUFFICIENT_FUND","message":"Insufficient balance","preview_failure_reason":"PREVIEW_INSUFFICIENT_FUND"}}"#).unwrap();
        assert_eq!(
            r.failure(),
            ("INSUFFICIENT_FUND".into(), "Insufficient balance".into())
        );
        let r: CreateOrderResponse = parse(r#"{"success":false,"failure_reason":"UNKNOWN_FAILURE_REASON","error_response":{"error":"UNKNOWN_FAILURE_REASON","preview_failure_reason":"PREVIEW_INVALID_SIZE_PRECISION"}}"#).unwrap();
        assert_eq!(r.failure().0, "PREVIEW_INVALID_SIZE_PRECISION");
        let r: CreateOrderResponse =
            parse(r#"{"success":false,"failure_reason":"INVALID_ORDER"}"#).unwrap();
        assert_eq!(r.failure().0, "INVALID_ORDER");
        let r: CreateOrderResponse = parse(r#"{"success":false}"#).unwrap();
        assert_eq!(r.failure().0, "UNKNOWN_FAILURE_REASON");
    }
}
