//! Binance.US websocket messages and [`parse`].
//!
//! One text frame becomes one [`BinanceUsWsMessage`]. Parsing is two passes over the same
//! bytes: a cheap probe that borrows the few keys that identify the message (`e`, `stream`,
//! `data`, `result`, `id`, `code`, `u`), then a typed parse of the identified struct. That
//! keeps the typed structs plain (no untagged-enum guessing, which is slow and gives useless
//! errors) and makes the `bookTicker` case, which has no `e` field, unambiguous.
//!
//! [`parse`] never panics: malformed or unexpected input becomes a [`ParseError`] that
//! keeps the payload; a well-formed event of a type gekko does not use becomes
//! [`BinanceUsWsMessage::Unknown`]. Decimals are read from strings only.

use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use crate::common::{
    BinanceUsExecutionType, BinanceUsOrderStatus, BinanceUsOrderType, BinanceUsSide,
    BinanceUsTimeInForce,
};
use crate::http::models::Level;

/// The longest payload kept in a [`ParseError`].
const MAX_PAYLOAD: usize = 1024;

/// A frame could not be understood. Keeps the (truncated) payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Binance.US message ({reason}): {payload}")]
pub struct ParseError {
    /// What was wrong.
    pub reason: String,
    /// The offending frame, truncated.
    pub payload: String,
}

impl ParseError {
    fn new(reason: impl std::fmt::Display, payload: &str) -> Self {
        Self {
            reason: reason.to_string(),
            payload: gekko_net::http::truncate(payload, MAX_PAYLOAD).to_owned(),
        }
    }
}

/// One websocket message from Binance.US.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinanceUsWsMessage {
    /// The combined-stream wrapper `{"stream": name, "data": payload}`.
    Combined {
        /// Stream name, e.g. `btcusd@depth@100ms`.
        stream: String,
        /// The wrapped message.
        data: Box<BinanceUsWsMessage>,
    },
    /// `<symbol>@bookTicker`.
    BookTicker(BookTickerMsg),
    /// `<symbol>@trade`.
    Trade(TradeMsg),
    /// `<symbol>@depth[@100ms]` diff.
    DepthUpdate(DepthUpdateMsg),
    /// User stream: an order changed.
    ExecutionReport(Box<ExecutionReportMsg>),
    /// User stream: balances after an account change.
    OutboundAccountPosition(OutboundAccountPositionMsg),
    /// User stream: a deposit, withdrawal or transfer.
    BalanceUpdate(BalanceUpdateMsg),
    /// User stream: the listen key expired; the stream must be recreated.
    ListenKeyExpired {
        /// Event time.
        event_time: i64,
    },
    /// Reply to a `SUBSCRIBE`/`UNSUBSCRIBE`/... control message.
    SubscriptionReply {
        /// The request id, as sent (usually a number).
        id: Option<serde_json::Value>,
        /// The result (`null` on success).
        result: serde_json::Value,
    },
    /// An error reply to a control message.
    Error {
        /// Error code.
        code: i64,
        /// Message.
        msg: String,
        /// The request id, if given.
        id: Option<serde_json::Value>,
    },
    /// A well-formed message of a type gekko does not use (kline, ticker, listStatus, ...).
    Unknown {
        /// Its `e` field, if any.
        event: Option<String>,
    },
}

/// `<symbol>@bookTicker`: `{"u":400900217,"s":"BNBUSDT","b":"25.35","B":"31.21","a":"25.36","A":"40.66"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BookTickerMsg {
    /// Order book update id.
    #[serde(rename = "u")]
    pub update_id: u64,
    /// Symbol.
    #[serde(rename = "s")]
    pub symbol: String,
    /// Best bid.
    #[serde(rename = "b", with = "rust_decimal::serde::str")]
    pub bid_price: Decimal,
    /// Size at the best bid.
    #[serde(rename = "B", with = "rust_decimal::serde::str")]
    pub bid_qty: Decimal,
    /// Best ask.
    #[serde(rename = "a", with = "rust_decimal::serde::str")]
    pub ask_price: Decimal,
    /// Size at the best ask.
    #[serde(rename = "A", with = "rust_decimal::serde::str")]
    pub ask_qty: Decimal,
}

/// `<symbol>@trade`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TradeMsg {
    /// Event time.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// Symbol.
    #[serde(rename = "s")]
    pub symbol: String,
    /// Trade id.
    #[serde(rename = "t")]
    pub trade_id: u64,
    /// Price.
    #[serde(rename = "p", with = "rust_decimal::serde::str")]
    pub price: Decimal,
    /// Quantity.
    #[serde(rename = "q", with = "rust_decimal::serde::str")]
    pub qty: Decimal,
    /// Trade time.
    #[serde(rename = "T")]
    pub trade_time: i64,
    /// Whether the buyer was the maker (so the taker sold).
    #[serde(rename = "m")]
    pub buyer_is_maker: bool,
}

/// `<symbol>@depth[@100ms]` diff.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DepthUpdateMsg {
    /// Event time.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// Symbol.
    #[serde(rename = "s")]
    pub symbol: String,
    /// First update id in the event.
    #[serde(rename = "U")]
    pub first_update_id: u64,
    /// Last update id in the event.
    #[serde(rename = "u")]
    pub last_update_id: u64,
    /// Changed bids (absolute quantities; 0 removes).
    #[serde(rename = "b")]
    pub bids: Vec<Level>,
    /// Changed asks.
    #[serde(rename = "a")]
    pub asks: Vec<Level>,
}

/// User stream `executionReport` (the fields gekko uses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ExecutionReportMsg {
    /// Event time.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// Symbol.
    #[serde(rename = "s")]
    pub symbol: String,
    /// Client order id (on cancels: the cancel request's id).
    #[serde(rename = "c")]
    pub client_order_id: String,
    /// Side.
    #[serde(rename = "S")]
    pub side: BinanceUsSide,
    /// Order type.
    #[serde(rename = "o")]
    pub order_type: BinanceUsOrderType,
    /// Time in force.
    #[serde(rename = "f")]
    pub time_in_force: BinanceUsTimeInForce,
    /// Order quantity.
    #[serde(rename = "q", with = "rust_decimal::serde::str")]
    pub qty: Decimal,
    /// Order price.
    #[serde(rename = "p", with = "rust_decimal::serde::str")]
    pub price: Decimal,
    /// The original client order id, on cancels (empty otherwise).
    #[serde(rename = "C", default)]
    pub orig_client_order_id: Option<String>,
    /// What happened.
    #[serde(rename = "x")]
    pub execution_type: BinanceUsExecutionType,
    /// Order status after it.
    #[serde(rename = "X")]
    pub status: BinanceUsOrderStatus,
    /// Reject reason (`NONE` when not rejected).
    #[serde(rename = "r")]
    pub reject_reason: String,
    /// Venue order id.
    #[serde(rename = "i")]
    pub order_id: i64,
    /// Last filled quantity.
    #[serde(rename = "l", with = "rust_decimal::serde::str")]
    pub last_qty: Decimal,
    /// Cumulative filled quantity.
    #[serde(rename = "z", with = "rust_decimal::serde::str")]
    pub cum_qty: Decimal,
    /// Last fill price.
    #[serde(rename = "L", with = "rust_decimal::serde::str")]
    pub last_price: Decimal,
    /// Commission of the last fill.
    #[serde(rename = "n", with = "rust_decimal::serde::str")]
    pub commission: Decimal,
    /// Commission asset (`null` when no fill).
    #[serde(rename = "N", default)]
    pub commission_asset: Option<String>,
    /// Transaction time.
    #[serde(rename = "T")]
    pub transaction_time: i64,
    /// Trade id (-1 when no fill).
    #[serde(rename = "t")]
    pub trade_id: i64,
    /// Cumulative quote quantity.
    #[serde(rename = "Z", with = "rust_decimal::serde::str")]
    pub cum_quote_qty: Decimal,
}

impl ExecutionReportMsg {
    /// The order's own client id: `C` on cancels, else `c`.
    #[must_use]
    pub fn order_client_id(&self) -> &str {
        self.orig_client_order_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(&self.client_order_id)
    }

    /// Average fill price `Z / z`, if anything filled.
    #[must_use]
    pub fn avg_price(&self) -> Option<Decimal> {
        if self.cum_qty.is_zero() {
            None
        } else {
            self.cum_quote_qty.checked_div(self.cum_qty)
        }
    }
}

/// User stream `outboundAccountPosition`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OutboundAccountPositionMsg {
    /// Event time.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// Last account update time.
    #[serde(rename = "u")]
    pub update_time: i64,
    /// Changed balances.
    #[serde(rename = "B")]
    pub balances: Vec<WsBalance>,
}

/// One balance of [`OutboundAccountPositionMsg`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WsBalance {
    /// Asset.
    #[serde(rename = "a")]
    pub asset: String,
    /// Free.
    #[serde(rename = "f", with = "rust_decimal::serde::str")]
    pub free: Decimal,
    /// Locked.
    #[serde(rename = "l", with = "rust_decimal::serde::str")]
    pub locked: Decimal,
}

/// User stream `balanceUpdate`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BalanceUpdateMsg {
    /// Event time.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// Asset.
    #[serde(rename = "a")]
    pub asset: String,
    /// Balance delta.
    #[serde(rename = "d", with = "rust_decimal::serde::str")]
    pub delta: Decimal,
    /// Clear time.
    #[serde(rename = "T")]
    pub clear_time: i64,
}

/// Deserialises to `true` when the key is present, whatever its value (even `null`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}

/// The keys that identify a message; everything else is skipped in this pass.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow, default)]
    e: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    stream: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default, deserialize_with = "present")]
    result: bool,
    #[serde(default, deserialize_with = "present")]
    code: bool,
    #[serde(default, deserialize_with = "present")]
    u: bool,
}

#[derive(Deserialize)]
struct ListenKeyExpiredMsg {
    #[serde(rename = "E", default)]
    event_time: i64,
}

#[derive(Deserialize)]
struct ReplyMsg {
    #[serde(default)]
    result: serde_json::Value,
    #[serde(default)]
    id: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ErrorMsg {
    code: i64,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    id: Option<serde_json::Value>,
}

/// Parses one text frame. Never panics.
///
/// # Errors
/// [`ParseError`] (with the payload) when the frame is not JSON, not an object, or a known
/// message with missing or mistyped fields.
pub fn parse(text: &str) -> Result<BinanceUsWsMessage, ParseError> {
    parse_inner(text, 0)
}

fn parse_inner(text: &str, depth: u8) -> Result<BinanceUsWsMessage, ParseError> {
    // serde accepts a JSON array for a struct (positionally); every Binance message is an
    // object, so anything else is refused up front.
    if !text.trim_start().starts_with('{') {
        return Err(ParseError::new("not a JSON object", text));
    }
    let probe: Probe<'_> = serde_json::from_str(text).map_err(|e| ParseError::new(e, text))?;
    if let (Some(stream), Some(data)) = (&probe.stream, probe.data) {
        if depth > 0 {
            return Err(ParseError::new("nested combined-stream wrapper", text));
        }
        let inner = parse_inner(data.get(), depth + 1).map_err(|mut e| {
            e.payload = gekko_net::http::truncate(text, MAX_PAYLOAD).to_owned();
            e
        })?;
        return Ok(BinanceUsWsMessage::Combined {
            stream: stream.clone().into_owned(),
            data: Box::new(inner),
        });
    }
    let typed =
        |r: Result<BinanceUsWsMessage, serde_json::Error>| r.map_err(|e| ParseError::new(e, text));
    match probe.e.as_deref() {
        Some("trade") => typed(serde_json::from_str(text).map(BinanceUsWsMessage::Trade)),
        Some("depthUpdate") => {
            typed(serde_json::from_str(text).map(BinanceUsWsMessage::DepthUpdate))
        }
        Some("executionReport") => typed(
            serde_json::from_str(text).map(|m| BinanceUsWsMessage::ExecutionReport(Box::new(m))),
        ),
        Some("outboundAccountPosition") => {
            typed(serde_json::from_str(text).map(BinanceUsWsMessage::OutboundAccountPosition))
        }
        Some("balanceUpdate") => {
            typed(serde_json::from_str(text).map(BinanceUsWsMessage::BalanceUpdate))
        }
        Some("listenKeyExpired") => {
            typed(serde_json::from_str(text).map(|m: ListenKeyExpiredMsg| {
                BinanceUsWsMessage::ListenKeyExpired {
                    event_time: m.event_time,
                }
            }))
        }
        Some(other) => Ok(BinanceUsWsMessage::Unknown {
            event: Some(other.to_owned()),
        }),
        None if probe.result => {
            let r: ReplyMsg = serde_json::from_str(text).map_err(|e| ParseError::new(e, text))?;
            Ok(BinanceUsWsMessage::SubscriptionReply {
                id: r.id,
                result: r.result,
            })
        }
        None if probe.code => {
            let r: ErrorMsg = serde_json::from_str(text).map_err(|e| ParseError::new(e, text))?;
            Ok(BinanceUsWsMessage::Error {
                code: r.code,
                msg: r.msg,
                id: r.id,
            })
        }
        None if probe.u => typed(serde_json::from_str(text).map(BinanceUsWsMessage::BookTicker)),
        None => Ok(BinanceUsWsMessage::Unknown { event: None }),
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/test_data/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn book_ticker_without_event_field() {
        let BinanceUsWsMessage::BookTicker(m) = parse(&fixture("ws_book_ticker.json")).unwrap()
        else {
            panic!("not a bookTicker");
        };
        assert_eq!(m.update_id, 400_900_217);
        assert_eq!(m.symbol, "BNBUSDT");
        assert_eq!(m.bid_price, dec!(25.35190000));
        assert_eq!(m.ask_qty, dec!(40.66000000));
    }

    #[test]
    fn trade_and_depth_update() {
        let BinanceUsWsMessage::Trade(t) = parse(&fixture("ws_trade.json")).unwrap() else {
            panic!("not a trade");
        };
        assert_eq!(
            (t.trade_id, t.price, t.qty, t.buyer_is_maker),
            (12345, dec!(0.001), dec!(100), true)
        );
        let BinanceUsWsMessage::DepthUpdate(d) = parse(&fixture("ws_depth_update.json")).unwrap()
        else {
            panic!("not a depthUpdate");
        };
        assert_eq!((d.first_update_id, d.last_update_id), (157, 160));
        assert_eq!(d.bids, vec![Level(dec!(0.0024), dec!(10))]);
        assert_eq!(d.asks, vec![Level(dec!(0.0026), dec!(100))]);
    }

    #[test]
    fn combined_wrapper() {
        let m = parse(&fixture("ws_combined_depth.json")).unwrap();
        let BinanceUsWsMessage::Combined { stream, data } = m else {
            panic!("not combined");
        };
        assert_eq!(stream, "bnbbtc@depth@100ms");
        assert!(matches!(*data, BinanceUsWsMessage::DepthUpdate(_)));
    }

    #[test]
    fn user_stream_events() {
        let BinanceUsWsMessage::ExecutionReport(r) =
            parse(&fixture("ws_execution_report.json")).unwrap()
        else {
            panic!("not an executionReport");
        };
        assert_eq!(r.client_order_id, "mUvoqJxFIILMdfAW5iGSOW");
        assert_eq!(
            r.order_client_id(),
            "mUvoqJxFIILMdfAW5iGSOW",
            "empty C falls back to c"
        );
        assert_eq!(r.status, BinanceUsOrderStatus::New);
        assert_eq!(r.commission_asset, None);
        assert_eq!(r.avg_price(), None);
        let BinanceUsWsMessage::OutboundAccountPosition(p) =
            parse(&fixture("ws_outbound_account_position.json")).unwrap()
        else {
            panic!("not an outboundAccountPosition");
        };
        assert_eq!(p.balances[0].asset, "ETH");
        assert_eq!(p.balances[0].free, dec!(10000.000000));
        let BinanceUsWsMessage::BalanceUpdate(b) =
            parse(&fixture("ws_balance_update.json")).unwrap()
        else {
            panic!("not a balanceUpdate");
        };
        assert_eq!(b.delta, dec!(100.00000000));
    }

    #[test]
    fn control_replies() {
        assert_eq!(
            parse(r#"{"result":null,"id":1}"#).unwrap(),
            BinanceUsWsMessage::SubscriptionReply {
                id: Some(serde_json::json!(1)),
                result: serde_json::Value::Null
            }
        );
        assert!(matches!(
            parse(r#"{"code":2,"msg":"Invalid request: unknown","id":7}"#).unwrap(),
            BinanceUsWsMessage::Error { code: 2, .. }
        ));
        assert_eq!(
            parse(r#"{"e":"kline","E":1,"s":"X","k":{}}"#).unwrap(),
            BinanceUsWsMessage::Unknown {
                event: Some("kline".to_owned())
            }
        );
        assert!(matches!(
            parse(r#"{"e":"listenKeyExpired","E":1576653824250}"#).unwrap(),
            BinanceUsWsMessage::ListenKeyExpired {
                event_time: 1_576_653_824_250
            }
        ));
    }

    #[test]
    fn malformed_input_is_an_error_with_the_payload() {
        for bad in [
            "",
            "not json",
            "[]",
            "42",
            r#"{"e":"trade","p":"1"}"#,
            r#"{"e":"trade","E":1,"s":"X","t":1,"p":1.5,"q":"1","T":1,"m":true}"#,
            r#"{"u":1,"s":"X","b":"x","B":"1","a":"1","A":"1"}"#,
            r#"{"stream":"a","data":{"stream":"b","data":{}}}"#,
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.payload, bad);
        }
    }

    #[test]
    fn numbers_never_go_through_f64() {
        // A price sent as a JSON number is refused rather than rounded.
        let e = parse(r#"{"u":1,"s":"X","b":0.1,"B":"1","a":"1","A":"1"}"#).unwrap_err();
        assert!(e.reason.contains("invalid type"), "{}", e.reason);
    }
}
