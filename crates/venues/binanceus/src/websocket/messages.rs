//! Binance.US websocket messages and [`parse`].
//!
//! One text frame becomes one [`BinanceUsWsMessage`], borrowing from the frame: strings are
//! [`Cow<str>`] (a slice of the input; only a string with escapes is copied) and decimals
//! go straight from the borrowed string into [`Decimal`], so a `bookTicker` or `trade`
//! frame costs no allocation at all and a `depthUpdate` only its level vectors.
//!
//! Every usual frame is parsed in one pass. There are three tiers, each answering only what
//! it is sure of, and each leaving the rest to the next:
//!
//! 1. A byte scanner (the private `scan` module) reads the plain shape of the hot frames
//!    (`bookTicker`, `trade`, `depthUpdate`, `executionReport`, `outboundAccountPosition`,
//!    bare or wrapped) straight into these structs: no escapes, every field once, nothing
//!    unusual. That is every frame Binance normally sends on those streams.
//! 2. Otherwise serde, still in one pass, as below.
//! 3. Otherwise the general two-pass parser, as below.
//!
//! The serde one pass: Binance writes the key that identifies a message first (`e` for
//! every event, `u` for `bookTicker`, which has no `e`, `stream` for the combined-stream
//! wrapper), so the frame's visitor reads that first key, and hands the rest of the same
//! map straight to the typed struct of that message. The rest goes through a small
//! [`MapAccess`] adapter that notes the keys which would make the frame something else
//! (a second `e`, a `stream`/`data` pair, `result`, `code`) without slowing the others.
//!
//! Anything the one pass does not settle (another first key, such as a control reply's
//! `result`; one of those noted keys; an error of any kind) is parsed again by the general
//! two-pass parser: a probe that borrows the identifying keys wherever they are, then the
//! typed parse. All three tiers agree on every frame (unit tests check it on reordered,
//! extended and damaged frames), and every error comes from the general parser, so the
//! fast tiers change speed only. A malformed frame costs up to three attempts; it is rare
//! and is dropped anyway.
//!
//! [`parse`] never panics: malformed or unexpected input becomes a [`ParseError`] that
//! names the problem and keeps the payload; a well-formed event of a type gekko does not
//! use becomes [`BinanceUsWsMessage::Unknown`]. Decimals are read from strings only.

use std::borrow::Cow;
use std::fmt;

use rust_decimal::Decimal;
use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer, StringDeserializer};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
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

/// A borrowed string made `'static` by copying it.
fn owned(s: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(s.into_owned())
}

/// One websocket message from Binance.US, borrowing from the frame it was parsed from
/// ([`BinanceUsWsMessage::into_owned`] detaches it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinanceUsWsMessage<'a> {
    /// The combined-stream wrapper `{"stream": name, "data": payload}`.
    Combined {
        /// Stream name, e.g. `btcusd@depth@100ms`.
        stream: Cow<'a, str>,
        /// The wrapped message.
        data: Box<BinanceUsWsMessage<'a>>,
    },
    /// `<symbol>@bookTicker`.
    BookTicker(BookTickerMsg<'a>),
    /// `<symbol>@trade`.
    Trade(TradeMsg<'a>),
    /// `<symbol>@depth[@100ms]` diff.
    DepthUpdate(DepthUpdateMsg<'a>),
    /// User stream: an order changed.
    ExecutionReport(Box<ExecutionReportMsg<'a>>),
    /// User stream: balances after an account change.
    OutboundAccountPosition(OutboundAccountPositionMsg<'a>),
    /// User stream: a deposit, withdrawal or transfer.
    BalanceUpdate(BalanceUpdateMsg<'a>),
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
        msg: Cow<'a, str>,
        /// The request id, if given.
        id: Option<serde_json::Value>,
    },
    /// A well-formed message of a type gekko does not use (kline, ticker, listStatus, ...).
    Unknown {
        /// Its `e` field, if any.
        event: Option<Cow<'a, str>>,
    },
}

impl BinanceUsWsMessage<'_> {
    /// The same message, owning its strings, so that it can outlive the frame.
    #[must_use]
    pub fn into_owned(self) -> BinanceUsWsMessage<'static> {
        match self {
            Self::Combined { stream, data } => BinanceUsWsMessage::Combined {
                stream: owned(stream),
                data: Box::new(data.into_owned()),
            },
            Self::BookTicker(m) => BinanceUsWsMessage::BookTicker(m.into_owned()),
            Self::Trade(m) => BinanceUsWsMessage::Trade(m.into_owned()),
            Self::DepthUpdate(m) => BinanceUsWsMessage::DepthUpdate(m.into_owned()),
            Self::ExecutionReport(m) => {
                BinanceUsWsMessage::ExecutionReport(Box::new(m.into_owned()))
            }
            Self::OutboundAccountPosition(m) => {
                BinanceUsWsMessage::OutboundAccountPosition(m.into_owned())
            }
            Self::BalanceUpdate(m) => BinanceUsWsMessage::BalanceUpdate(m.into_owned()),
            Self::ListenKeyExpired { event_time } => {
                BinanceUsWsMessage::ListenKeyExpired { event_time }
            }
            Self::SubscriptionReply { id, result } => {
                BinanceUsWsMessage::SubscriptionReply { id, result }
            }
            Self::Error { code, msg, id } => BinanceUsWsMessage::Error {
                code,
                msg: owned(msg),
                id,
            },
            Self::Unknown { event } => BinanceUsWsMessage::Unknown {
                event: event.map(owned),
            },
        }
    }
}

/// `<symbol>@bookTicker`: `{"u":400900217,"s":"BNBUSDT","b":"25.35","B":"31.21","a":"25.36","A":"40.66"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BookTickerMsg<'a> {
    /// Order book update id.
    #[serde(rename = "u")]
    pub update_id: u64,
    /// Symbol.
    #[serde(rename = "s", borrow)]
    pub symbol: Cow<'a, str>,
    /// Best bid.
    #[serde(rename = "b", deserialize_with = "crate::common::decimal::deserialize")]
    pub bid_price: Decimal,
    /// Size at the best bid.
    #[serde(rename = "B", deserialize_with = "crate::common::decimal::deserialize")]
    pub bid_qty: Decimal,
    /// Best ask.
    #[serde(rename = "a", deserialize_with = "crate::common::decimal::deserialize")]
    pub ask_price: Decimal,
    /// Size at the best ask.
    #[serde(rename = "A", deserialize_with = "crate::common::decimal::deserialize")]
    pub ask_qty: Decimal,
}

impl BookTickerMsg<'_> {
    /// The same message, owning its strings.
    #[must_use]
    pub fn into_owned(self) -> BookTickerMsg<'static> {
        BookTickerMsg {
            update_id: self.update_id,
            symbol: owned(self.symbol),
            bid_price: self.bid_price,
            bid_qty: self.bid_qty,
            ask_price: self.ask_price,
            ask_qty: self.ask_qty,
        }
    }
}

/// A `bookTicker` after its first key (`u`), which the one-pass parse has already read.
#[derive(Deserialize)]
struct BookTickerRest<'a> {
    #[serde(rename = "s", borrow)]
    symbol: Cow<'a, str>,
    #[serde(rename = "b", deserialize_with = "crate::common::decimal::deserialize")]
    bid_price: Decimal,
    #[serde(rename = "B", deserialize_with = "crate::common::decimal::deserialize")]
    bid_qty: Decimal,
    #[serde(rename = "a", deserialize_with = "crate::common::decimal::deserialize")]
    ask_price: Decimal,
    #[serde(rename = "A", deserialize_with = "crate::common::decimal::deserialize")]
    ask_qty: Decimal,
}

/// `<symbol>@trade`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TradeMsg<'a> {
    /// Event time.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// Symbol.
    #[serde(rename = "s", borrow)]
    pub symbol: Cow<'a, str>,
    /// Trade id.
    #[serde(rename = "t")]
    pub trade_id: u64,
    /// Price.
    #[serde(rename = "p", deserialize_with = "crate::common::decimal::deserialize")]
    pub price: Decimal,
    /// Quantity.
    #[serde(rename = "q", deserialize_with = "crate::common::decimal::deserialize")]
    pub qty: Decimal,
    /// Trade time.
    #[serde(rename = "T")]
    pub trade_time: i64,
    /// Whether the buyer was the maker (so the taker sold).
    #[serde(rename = "m")]
    pub buyer_is_maker: bool,
}

impl TradeMsg<'_> {
    /// The same message, owning its strings.
    #[must_use]
    pub fn into_owned(self) -> TradeMsg<'static> {
        TradeMsg {
            event_time: self.event_time,
            symbol: owned(self.symbol),
            trade_id: self.trade_id,
            price: self.price,
            qty: self.qty,
            trade_time: self.trade_time,
            buyer_is_maker: self.buyer_is_maker,
        }
    }
}

/// `<symbol>@depth[@100ms]` diff.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DepthUpdateMsg<'a> {
    /// Event time.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// Symbol.
    #[serde(rename = "s", borrow)]
    pub symbol: Cow<'a, str>,
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

impl DepthUpdateMsg<'_> {
    /// The same message, owning its strings.
    #[must_use]
    pub fn into_owned(self) -> DepthUpdateMsg<'static> {
        DepthUpdateMsg {
            event_time: self.event_time,
            symbol: owned(self.symbol),
            first_update_id: self.first_update_id,
            last_update_id: self.last_update_id,
            bids: self.bids,
            asks: self.asks,
        }
    }
}

/// User stream `executionReport` (the fields gekko uses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ExecutionReportMsg<'a> {
    /// Event time.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// Symbol.
    #[serde(rename = "s", borrow)]
    pub symbol: Cow<'a, str>,
    /// Client order id (on cancels: the cancel request's id).
    #[serde(rename = "c", borrow)]
    pub client_order_id: Cow<'a, str>,
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
    #[serde(rename = "q", deserialize_with = "crate::common::decimal::deserialize")]
    pub qty: Decimal,
    /// Order price.
    #[serde(rename = "p", deserialize_with = "crate::common::decimal::deserialize")]
    pub price: Decimal,
    /// The original client order id, on cancels (empty otherwise).
    #[serde(rename = "C", borrow, default, deserialize_with = "opt_cow")]
    pub orig_client_order_id: Option<Cow<'a, str>>,
    /// What happened.
    #[serde(rename = "x")]
    pub execution_type: BinanceUsExecutionType,
    /// Order status after it.
    #[serde(rename = "X")]
    pub status: BinanceUsOrderStatus,
    /// Reject reason (`NONE` when not rejected).
    #[serde(rename = "r", borrow)]
    pub reject_reason: Cow<'a, str>,
    /// Venue order id.
    #[serde(rename = "i")]
    pub order_id: i64,
    /// Last filled quantity.
    #[serde(rename = "l", deserialize_with = "crate::common::decimal::deserialize")]
    pub last_qty: Decimal,
    /// Cumulative filled quantity.
    #[serde(rename = "z", deserialize_with = "crate::common::decimal::deserialize")]
    pub cum_qty: Decimal,
    /// Last fill price.
    #[serde(rename = "L", deserialize_with = "crate::common::decimal::deserialize")]
    pub last_price: Decimal,
    /// Commission of the last fill.
    #[serde(rename = "n", deserialize_with = "crate::common::decimal::deserialize")]
    pub commission: Decimal,
    /// Commission asset (`null` when no fill).
    #[serde(rename = "N", borrow, default, deserialize_with = "opt_cow")]
    pub commission_asset: Option<Cow<'a, str>>,
    /// Transaction time.
    #[serde(rename = "T")]
    pub transaction_time: i64,
    /// Trade id (-1 when no fill).
    #[serde(rename = "t")]
    pub trade_id: i64,
    /// Cumulative quote quantity.
    #[serde(rename = "Z", deserialize_with = "crate::common::decimal::deserialize")]
    pub cum_quote_qty: Decimal,
}

impl ExecutionReportMsg<'_> {
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

    /// The same message, owning its strings.
    #[must_use]
    pub fn into_owned(self) -> ExecutionReportMsg<'static> {
        ExecutionReportMsg {
            event_time: self.event_time,
            symbol: owned(self.symbol),
            client_order_id: owned(self.client_order_id),
            side: self.side,
            order_type: self.order_type,
            time_in_force: self.time_in_force,
            qty: self.qty,
            price: self.price,
            orig_client_order_id: self.orig_client_order_id.map(owned),
            execution_type: self.execution_type,
            status: self.status,
            reject_reason: owned(self.reject_reason),
            order_id: self.order_id,
            last_qty: self.last_qty,
            cum_qty: self.cum_qty,
            last_price: self.last_price,
            commission: self.commission,
            commission_asset: self.commission_asset.map(owned),
            transaction_time: self.transaction_time,
            trade_id: self.trade_id,
            cum_quote_qty: self.cum_quote_qty,
        }
    }
}

/// User stream `outboundAccountPosition`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OutboundAccountPositionMsg<'a> {
    /// Event time.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// Last account update time.
    #[serde(rename = "u")]
    pub update_time: i64,
    /// Changed balances.
    #[serde(rename = "B", borrow)]
    pub balances: Vec<WsBalance<'a>>,
}

impl OutboundAccountPositionMsg<'_> {
    /// The same message, owning its strings.
    #[must_use]
    pub fn into_owned(self) -> OutboundAccountPositionMsg<'static> {
        OutboundAccountPositionMsg {
            event_time: self.event_time,
            update_time: self.update_time,
            balances: self
                .balances
                .into_iter()
                .map(|b| WsBalance {
                    asset: owned(b.asset),
                    free: b.free,
                    locked: b.locked,
                })
                .collect(),
        }
    }
}

/// One balance of [`OutboundAccountPositionMsg`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WsBalance<'a> {
    /// Asset.
    #[serde(rename = "a", borrow)]
    pub asset: Cow<'a, str>,
    /// Free.
    #[serde(rename = "f", deserialize_with = "crate::common::decimal::deserialize")]
    pub free: Decimal,
    /// Locked.
    #[serde(rename = "l", deserialize_with = "crate::common::decimal::deserialize")]
    pub locked: Decimal,
}

/// User stream `balanceUpdate`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BalanceUpdateMsg<'a> {
    /// Event time.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// Asset.
    #[serde(rename = "a", borrow)]
    pub asset: Cow<'a, str>,
    /// Balance delta.
    #[serde(rename = "d", deserialize_with = "crate::common::decimal::deserialize")]
    pub delta: Decimal,
    /// Clear time.
    #[serde(rename = "T")]
    pub clear_time: i64,
}

impl BalanceUpdateMsg<'_> {
    /// The same message, owning its strings.
    #[must_use]
    pub fn into_owned(self) -> BalanceUpdateMsg<'static> {
        BalanceUpdateMsg {
            event_time: self.event_time,
            asset: owned(self.asset),
            delta: self.delta,
            clear_time: self.clear_time,
        }
    }
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
struct ErrorMsg<'a> {
    code: i64,
    #[serde(borrow, default)]
    msg: Cow<'a, str>,
    #[serde(default)]
    id: Option<serde_json::Value>,
}

// ---------------------------------------------------------------------------------------
// Borrowing helpers.
// ---------------------------------------------------------------------------------------

/// A string, borrowed from the input when it has no escapes. (`Cow<str>`'s own
/// `Deserialize` always copies; `#[serde(borrow)]` fixes that only for a bare `Cow<str>`
/// field, not inside an `Option` or a seed.)
struct CowStr;

impl<'de> Visitor<'de> for CowStr {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_owned()))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s))
    }
}

impl<'de> DeserializeSeed<'de> for CowStr {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

/// An optional string (`null` or absent is `None`), borrowed when it can be.
struct OptCowStr;

impl<'de> Visitor<'de> for OptCowStr {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or null")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(CowStr).map(Some)
    }
}

impl<'de> DeserializeSeed<'de> for OptCowStr {
    type Value = Option<Cow<'de, str>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

fn opt_cow<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    OptCowStr.deserialize(d)
}

/// Deserialises to `true` when the key is present, whatever its value (even `null`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}

// ---------------------------------------------------------------------------------------
// The one-pass parse.
// ---------------------------------------------------------------------------------------

/// The keys that decide what a frame is (the general parser's probe reads the same ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    E = 0,
    Stream,
    Data,
    Result,
    Code,
    U,
}

impl Marker {
    fn of(key: &str) -> Option<Self> {
        Some(match key {
            "e" => Self::E,
            "stream" => Self::Stream,
            "data" => Self::Data,
            "result" => Self::Result,
            "code" => Self::Code,
            "u" => Self::U,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::E => "e",
            Self::Stream => "stream",
            Self::Data => "data",
            Self::Result => "result",
            Self::Code => "code",
            Self::U => "u",
        }
    }
}

/// A map key: one of the markers, or any other key (borrowed when it can be).
enum Key<'de> {
    Marker(Marker),
    Other(Cow<'de, str>),
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let k = d.deserialize_str(CowStr)?;
        Ok(match Marker::of(&k) {
            Some(m) => Key::Marker(m),
            None => Key::Other(k),
        })
    }
}

/// What the markers seen so far say about a frame.
#[derive(Debug, Default)]
struct Seen {
    /// How often each [`Marker`] occurred, indexed by the marker.
    count: [u8; 6],
    /// `stream` with a non-null value (what the probe's `Option<Cow<str>>` keeps).
    stream: bool,
    /// `data` with a non-null value.
    data: bool,
}

impl Seen {
    fn note(&mut self, m: Marker) {
        let c = &mut self.count[m as usize];
        *c = c.saturating_add(1);
    }
    fn has(&self, m: Marker) -> bool {
        self.count[m as usize] > 0
    }
    /// A marker twice: the probe refuses the frame (duplicate field).
    fn duplicate(&self) -> bool {
        self.count.iter().any(|c| *c > 1)
    }
    /// A `stream`/`data` pair: the probe makes the frame a combined wrapper.
    fn wrapper(&self) -> bool {
        self.stream && self.data
    }
}

/// A [`MapAccess`] that passes every entry on to a typed struct's visitor and notes the
/// markers among the keys. `stream` and `data` are no field of any struct; their values
/// are checked the way the probe reads them (a string or null; any JSON, null or not).
struct Noting<'m, A> {
    map: &'m mut A,
    seen: Seen,
    pending: Option<Marker>,
}

impl<'m, A> Noting<'m, A> {
    fn new(map: &'m mut A, first: Marker) -> Self {
        let mut seen = Seen::default();
        seen.note(first);
        Self {
            map,
            seen,
            pending: None,
        }
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Noting<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let Some(key) = self.map.next_key_seed(KeySeed)? else {
            return Ok(None);
        };
        match key {
            Key::Marker(m) => {
                self.seen.note(m);
                self.pending = Some(m);
                seed.deserialize(BorrowedStrDeserializer::new(m.name()))
                    .map(Some)
            }
            Key::Other(k) => {
                self.pending = None;
                match k {
                    Cow::Borrowed(k) => seed.deserialize(BorrowedStrDeserializer::new(k)),
                    Cow::Owned(k) => seed.deserialize(StringDeserializer::new(k)),
                }
                .map(Some)
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        match self.pending.take() {
            Some(Marker::Stream) => {
                self.seen.stream |= self.map.next_value_seed(OptCowStr)?.is_some();
                seed.deserialize(serde::de::value::UnitDeserializer::new())
            }
            Some(Marker::Data) => {
                self.seen.data |= self.map.next_value::<Option<IgnoredAny>>()?.is_some();
                seed.deserialize(serde::de::value::UnitDeserializer::new())
            }
            _ => self.map.next_value_seed(seed),
        }
    }
}

/// Parses the rest of a map (after its first key) into `T`, noting the markers.
fn rest<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
    map: &mut A,
    first: Marker,
) -> Result<(T, Seen), A::Error> {
    let mut noting = Noting::new(map, first);
    let t = T::deserialize(MapAccessDeserializer::new(&mut noting))?;
    Ok((t, noting.seen))
}

/// The one-pass frame visitor. `None`: the frame is left to the general parser (and the
/// map may be left half read; the caller throws the deserializer away).
struct Frame {
    nested: bool,
}

impl<'de> DeserializeSeed<'de> for Frame {
    type Value = Option<BinanceUsWsMessage<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Frame {
    type Value = Option<BinanceUsWsMessage<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Binance.US message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        match map.next_key_seed(KeySeed)? {
            Some(Key::Marker(Marker::E)) => {
                let e = map.next_value_seed(CowStr)?;
                self.event(e, &mut map)
            }
            Some(Key::Marker(Marker::U)) => {
                let update_id: u64 = map.next_value()?;
                let (r, seen): (BookTickerRest<'de>, _) = rest(&mut map, Marker::U)?;
                let other = seen.duplicate()
                    || seen.wrapper()
                    || [Marker::E, Marker::Result, Marker::Code]
                        .iter()
                        .any(|m| seen.has(*m));
                Ok(
                    (!other).then_some(BinanceUsWsMessage::BookTicker(BookTickerMsg {
                        update_id,
                        symbol: r.symbol,
                        bid_price: r.bid_price,
                        bid_qty: r.bid_qty,
                        ask_price: r.ask_price,
                        ask_qty: r.ask_qty,
                    })),
                )
            }
            Some(Key::Marker(Marker::Stream)) if !self.nested => {
                let stream = map.next_value_seed(CowStr)?;
                let Some(Key::Marker(Marker::Data)) = map.next_key_seed(KeySeed)? else {
                    return Ok(None);
                };
                let Some(data) = map.next_value_seed(Frame { nested: true })? else {
                    return Ok(None);
                };
                let mut noting = Noting::new(&mut map, Marker::Stream);
                noting.seen.note(Marker::Data);
                IgnoredAny::deserialize(MapAccessDeserializer::new(&mut noting))?;
                Ok(
                    (!noting.seen.duplicate()).then(|| BinanceUsWsMessage::Combined {
                        stream,
                        data: Box::new(data),
                    }),
                )
            }
            _ => Ok(None),
        }
    }
}

impl Frame {
    /// The rest of an event whose first key, `e`, said `e`.
    fn event<'de, A: MapAccess<'de>>(
        &self,
        e: Cow<'de, str>,
        map: &mut A,
    ) -> Result<Option<BinanceUsWsMessage<'de>>, A::Error> {
        use BinanceUsWsMessage as M;
        let (msg, seen) = match &*e {
            "trade" => rest(map, Marker::E).map(|(m, s)| (M::Trade(m), s))?,
            "depthUpdate" => rest(map, Marker::E).map(|(m, s)| (M::DepthUpdate(m), s))?,
            "executionReport" => {
                rest(map, Marker::E).map(|(m, s)| (M::ExecutionReport(Box::new(m)), s))?
            }
            "outboundAccountPosition" => {
                rest(map, Marker::E).map(|(m, s)| (M::OutboundAccountPosition(m), s))?
            }
            "balanceUpdate" => rest(map, Marker::E).map(|(m, s)| (M::BalanceUpdate(m), s))?,
            "listenKeyExpired" => {
                rest(map, Marker::E).map(|(m, s): (ListenKeyExpiredMsg, Seen)| {
                    (
                        M::ListenKeyExpired {
                            event_time: m.event_time,
                        },
                        s,
                    )
                })?
            }
            _ => {
                let (IgnoredAny, s) = rest(map, Marker::E)?;
                (M::Unknown { event: Some(e) }, s)
            }
        };
        // A wrapper inside a wrapper is refused by the general parser; a wrapper outside
        // is a combined frame there. Either way, not this event.
        Ok((!seen.duplicate() && !seen.wrapper()).then_some(msg))
    }
}

/// The one-pass parse; `None` when the frame needs the general parser.
fn parse_one_pass(text: &str) -> Option<BinanceUsWsMessage<'_>> {
    let mut de = serde_json::Deserializer::from_str(text);
    let msg = Frame { nested: false }.deserialize(&mut de).ok()??;
    de.end().ok()?;
    Some(msg)
}

// ---------------------------------------------------------------------------------------
// The general parse.
// ---------------------------------------------------------------------------------------

/// The keys that identify a message; everything else is skipped in this pass.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    e: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    stream: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default, deserialize_with = "present")]
    result: bool,
    #[serde(default, deserialize_with = "present")]
    code: bool,
    #[serde(default, deserialize_with = "present")]
    u: bool,
}

/// Parses one text frame. Never panics.
///
/// # Errors
/// [`ParseError`] (with the payload) when the frame is not JSON, not an object, or a known
/// message with missing or mistyped fields.
pub fn parse(text: &str) -> Result<BinanceUsWsMessage<'_>, ParseError> {
    // serde accepts a JSON array for a struct (positionally); every Binance message is an
    // object, so anything else is refused up front.
    if !text.trim_start().starts_with('{') {
        return Err(ParseError::new("not a JSON object", text));
    }
    if let Some(msg) = super::scan::message(text) {
        return Ok(msg);
    }
    match parse_one_pass(text) {
        Some(msg) => Ok(msg),
        None => parse_general(text, 0),
    }
}

/// The two-pass parse (probe, then the typed struct), which settles every frame the one
/// pass leaves, and words every error.
fn parse_general<'a>(text: &'a str, depth: u8) -> Result<BinanceUsWsMessage<'a>, ParseError> {
    if !text.trim_start().starts_with('{') {
        return Err(ParseError::new("not a JSON object", text));
    }
    let probe: Probe<'_> = serde_json::from_str(text).map_err(|e| ParseError::new(e, text))?;
    if let (Some(stream), Some(data)) = (probe.stream, probe.data) {
        if depth > 0 {
            return Err(ParseError::new("nested combined-stream wrapper", text));
        }
        let inner = parse_general(data.get(), depth + 1).map_err(|mut e| {
            e.payload = gekko_net::http::truncate(text, MAX_PAYLOAD).to_owned();
            e
        })?;
        return Ok(BinanceUsWsMessage::Combined {
            stream,
            data: Box::new(inner),
        });
    }
    let typed = |r: Result<BinanceUsWsMessage<'a>, serde_json::Error>| {
        r.map_err(|e| ParseError::new(e, text))
    };
    match probe.e {
        Some(e) => match &*e {
            "trade" => typed(serde_json::from_str(text).map(BinanceUsWsMessage::Trade)),
            "depthUpdate" => typed(serde_json::from_str(text).map(BinanceUsWsMessage::DepthUpdate)),
            "executionReport" => typed(
                serde_json::from_str(text)
                    .map(|m| BinanceUsWsMessage::ExecutionReport(Box::new(m))),
            ),
            "outboundAccountPosition" => {
                typed(serde_json::from_str(text).map(BinanceUsWsMessage::OutboundAccountPosition))
            }
            "balanceUpdate" => {
                typed(serde_json::from_str(text).map(BinanceUsWsMessage::BalanceUpdate))
            }
            "listenKeyExpired" => {
                typed(serde_json::from_str(text).map(|m: ListenKeyExpiredMsg| {
                    BinanceUsWsMessage::ListenKeyExpired {
                        event_time: m.event_time,
                    }
                }))
            }
            _ => Ok(BinanceUsWsMessage::Unknown { event: Some(e) }),
        },
        None if probe.result => {
            let r: ReplyMsg = serde_json::from_str(text).map_err(|e| ParseError::new(e, text))?;
            Ok(BinanceUsWsMessage::SubscriptionReply {
                id: r.id,
                result: r.result,
            })
        }
        None if probe.code => {
            let r: ErrorMsg<'_> =
                serde_json::from_str(text).map_err(|e| ParseError::new(e, text))?;
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
    use proptest::prelude::{Strategy, prop};
    use rust_decimal_macros::dec;

    use super::*;

    /// A fixture frame; leaked, so that the messages borrowing from it can outlive the
    /// statement that parses them (a handful of small files per test run).
    fn fixture(name: &str) -> &'static str {
        let path = format!("{}/test_data/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        Box::leak(text.into_boxed_str())
    }

    #[test]
    fn book_ticker_without_event_field() {
        let BinanceUsWsMessage::BookTicker(m) = parse(fixture("ws_book_ticker.json")).unwrap()
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
        let BinanceUsWsMessage::Trade(t) = parse(fixture("ws_trade.json")).unwrap() else {
            panic!("not a trade");
        };
        assert_eq!(
            (t.trade_id, t.price, t.qty, t.buyer_is_maker),
            (12345, dec!(0.001), dec!(100), true)
        );
        let BinanceUsWsMessage::DepthUpdate(d) = parse(fixture("ws_depth_update.json")).unwrap()
        else {
            panic!("not a depthUpdate");
        };
        assert_eq!((d.first_update_id, d.last_update_id), (157, 160));
        assert_eq!(d.bids, vec![Level(dec!(0.0024), dec!(10))]);
        assert_eq!(d.asks, vec![Level(dec!(0.0026), dec!(100))]);
    }

    #[test]
    fn combined_wrapper() {
        let m = parse(fixture("ws_combined_depth.json")).unwrap();
        let BinanceUsWsMessage::Combined { stream, data } = m else {
            panic!("not combined");
        };
        assert_eq!(stream, "bnbbtc@depth@100ms");
        assert!(matches!(*data, BinanceUsWsMessage::DepthUpdate(_)));
    }

    #[test]
    fn user_stream_events() {
        let BinanceUsWsMessage::ExecutionReport(r) =
            parse(fixture("ws_execution_report.json")).unwrap()
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
            parse(fixture("ws_outbound_account_position.json")).unwrap()
        else {
            panic!("not an outboundAccountPosition");
        };
        assert_eq!(p.balances[0].asset, "ETH");
        assert_eq!(p.balances[0].free, dec!(10000.000000));
        let BinanceUsWsMessage::BalanceUpdate(b) =
            parse(fixture("ws_balance_update.json")).unwrap()
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
                event: Some("kline".into())
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
    fn strings_borrow_from_the_frame_unless_escaped() {
        let frame = fixture("ws_trade.json");
        let BinanceUsWsMessage::Trade(t) = parse(frame).unwrap() else {
            panic!("not a trade");
        };
        assert!(matches!(t.symbol, Cow::Borrowed(_)), "{:?}", t.symbol);
        // An escape in a borrowed field: decoded into an owned copy, same value.
        let escaped = frame.replace(r#""s":"BNBBTC""#, r#""s":"BNB\u0042TC""#);
        assert_ne!(escaped, frame);
        let BinanceUsWsMessage::Trade(e) = parse(&escaped).unwrap() else {
            panic!("not a trade");
        };
        assert!(matches!(e.symbol, Cow::Owned(_)), "{:?}", e.symbol);
        assert_eq!(e, t);
        // Quotes, backslashes and slashes in a client order id and a reject reason.
        let report = fixture("ws_execution_report_cancel.json")
            .replace(r#""c":"cancelReq123""#, r#""c":"can\"cel\\Req\/1""#)
            .replace(r#""r":"NONE""#, r#""r":"a \"quoted\" reason\n""#);
        let BinanceUsWsMessage::ExecutionReport(r) = parse(&report).unwrap() else {
            panic!("not an executionReport");
        };
        assert_eq!(r.client_order_id, "can\"cel\\Req/1");
        assert_eq!(r.reject_reason, "a \"quoted\" reason\n");
        assert_eq!(
            r.order_client_id(),
            "gk0123456789abcdef0123456789abcdef",
            "a non-empty C is the order's own id"
        );
        assert!(matches!(r.orig_client_order_id, Some(Cow::Borrowed(_))));
        let outer = fixture("ws_combined_depth.json").replace("bnbbtc@depth", r"bnbbtc\u0040depth");
        let BinanceUsWsMessage::Combined { stream, .. } = parse(&outer).unwrap() else {
            panic!("not combined");
        };
        assert_eq!(stream, "bnbbtc@depth@100ms");
    }

    #[test]
    fn every_reference_frame_takes_the_one_pass_path() {
        for name in [
            "ws_book_ticker.json",
            "ws_trade.json",
            "ws_depth_update.json",
            "ws_combined_depth.json",
            "ws_execution_report.json",
            "ws_execution_report_trade.json",
            "ws_execution_report_cancel.json",
            "ws_outbound_account_position.json",
            "ws_balance_update.json",
        ] {
            let f = fixture(name);
            let one = parse_one_pass(f).unwrap_or_else(|| panic!("{name}: left to the probe"));
            assert_eq!(Ok(one), parse_general(f, 0), "{name}");
            if name != "ws_balance_update.json" {
                let scanned =
                    super::super::scan::message(f).unwrap_or_else(|| panic!("{name}: not scanned"));
                assert_eq!(Ok(scanned), parse_general(f, 0), "{name}");
            }
        }
        // A frame whose identifying key is not first still parses, through the probe.
        let late =
            r#"{"E":1672515782136,"s":"BNBBTC","e":"depthUpdate","U":157,"u":160,"b":[],"a":[]}"#;
        assert_eq!(parse_one_pass(late), None);
        assert!(matches!(
            parse(late),
            Ok(BinanceUsWsMessage::DepthUpdate(_))
        ));
    }

    #[test]
    fn errors_name_the_problem() {
        let reason = |s: &str| parse(s).unwrap_err().reason;
        let r = reason(r#"{"e":"trade","E":1,"t":1,"p":"1","q":"1","T":1,"m":true}"#);
        assert!(r.contains("missing field `s`"), "{r}");
        let r = reason(r#"{"u":1,"s":"X","b":"1.2.3","B":"1","a":"1","A":"1"}"#);
        assert!(r.contains("1.2.3") && r.contains("Decimal"), "{r}");
        let r = reason(r#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1"]],"a":[]}"#);
        assert!(r.contains("invalid length"), "{r}");
        let r = reason(r#"{"e":"trade","E":1,"s":"X","t":-4,"p":"1","q":"1","T":1,"m":true}"#);
        assert!(r.contains("invalid value: integer `-4`"), "{r}");
        let r = reason(r#"{"e":"trade","E":1,"s":"X""#);
        assert!(r.contains("EOF"), "{r}");
        let r = reason(r#"{"e":"trade","e":"trade","E":1}"#);
        assert!(r.contains("duplicate field `e`"), "{r}");
        let r = reason(r#"{"e":"trade","E":1,"s":"X","t":1,"p":"1","q":"1","T":1,"m":true} x"#);
        assert!(r.contains("trailing characters"), "{r}");
        let r = reason(r#"{"stream":"a","data":[1]}"#);
        assert!(r.contains("not a JSON object"), "{r}");
    }

    /// The keys and values of a flat frame, in order, as raw JSON.
    fn entries(frame: &str) -> Vec<(String, String)> {
        let v: Vec<(String, Box<RawValue>)> = {
            struct Entries;
            impl<'de> Visitor<'de> for Entries {
                type Value = Vec<(String, Box<RawValue>)>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                    let mut v = Vec::new();
                    while let Some(e) = m.next_entry()? {
                        v.push(e);
                    }
                    Ok(v)
                }
            }
            let mut de = serde_json::Deserializer::from_str(frame);
            de.deserialize_map(Entries).unwrap()
        };
        v.into_iter()
            .map(|(k, r)| (k, r.get().to_owned()))
            .collect()
    }

    fn object(entries: &[(String, String)]) -> String {
        let body: Vec<String> = entries
            .iter()
            .map(|(k, v)| format!("{}:{v}", serde_json::to_string(k).unwrap()))
            .collect();
        format!("{{{}}}", body.join(","))
    }

    const FLAT: &[&str] = &[
        include_str!("../../test_data/ws_book_ticker.json"),
        include_str!("../../test_data/ws_trade.json"),
        include_str!("../../test_data/ws_depth_update.json"),
        include_str!("../../test_data/ws_execution_report.json"),
        include_str!("../../test_data/ws_execution_report_trade.json"),
        include_str!("../../test_data/ws_outbound_account_position.json"),
        include_str!("../../test_data/ws_balance_update.json"),
        r#"{"e":"listenKeyExpired","E":1576653824250}"#,
        r#"{"e":"kline","E":1,"s":"X","k":{}}"#,
        r#"{"result":null,"id":1}"#,
        r#"{"code":2,"msg":"Invalid request","id":7}"#,
    ];

    fn marker_entry() -> impl Strategy<Value = (String, String)> {
        let key = prop::sample::select(vec!["e", "stream", "data", "result", "code", "u", "id"]);
        let val = prop::sample::select(vec![
            "null",
            "\"trade\"",
            "\"depthUpdate\"",
            "\"kline\"",
            "\"btcusd@trade\"",
            "1",
            "{}",
            r#"{"e":"kline"}"#,
            "[]",
        ]);
        (key, val).prop_map(|(k, v)| (k.to_owned(), v.to_owned()))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 1024,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// The one pass and the probe agree on every frame: reference frames in any key
        /// order, with marker keys added anywhere, bare or in a combined wrapper.
        #[test]
        fn one_pass_and_probe_agree(
            idx in 0..FLAT.len(),
            order in proptest::prelude::any::<u64>(),
            shuffle in proptest::prelude::any::<bool>(),
            extra in prop::collection::vec((proptest::prelude::any::<usize>(), marker_entry()), 0..3),
            wrap in 0u8..4,
        ) {
            let mut e = entries(FLAT[idx]);
            if shuffle {
                // A deterministic permutation from `order`.
                let mut state = order | 1;
                for i in (1..e.len()).rev() {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let j = usize::try_from(state % (i as u64 + 1)).unwrap();
                    e.swap(i, j);
                }
            }
            for (at, kv) in extra {
                let at = at % (e.len() + 1);
                e.insert(at, kv);
            }
            let inner = object(&e);
            let frame = match wrap {
                0 => format!(r#"{{"stream":"x@trade","data":{inner}}}"#),
                1 => format!(r#"{{"data":{inner},"stream":"x@trade"}}"#),
                _ => inner,
            };
            proptest::prop_assert_eq!(parse(&frame), parse_general(&frame, 0), "{}", frame);
            if let Some(m) = parse_one_pass(&frame) {
                proptest::prop_assert_eq!(Ok(m), parse_general(&frame, 0), "{}", frame);
            }
            if let Some(m) = super::super::scan::message(&frame) {
                proptest::prop_assert_eq!(Ok(m), parse_general(&frame, 0), "{}", frame);
            }
        }

        /// Whatever the scanner (and the one pass) answer for a damaged reference frame is
        /// what the probe parser answers.
        #[test]
        fn damaged_frames_scan_as_serde_reads_them(
            idx in 0..FLAT.len(),
            edits in prop::collection::vec((proptest::prelude::any::<usize>(), 0u8..4, prop::sample::select(vec![
                "\"", "{", "}", "[", "]", ",", ":", "-", "0", "1", ".", "e", "\\", " ", "n", "null",
                "true", "\"u\":1", "\"e\":\"trade\"", "\"stream\":\"x\"", "\"data\":{}",
            ])), 1..4),
        ) {
            let mut f = FLAT[idx].as_bytes().to_vec();
            for (at, op, piece) in edits {
                let at = at % (f.len() + 1);
                match op {
                    0 | 1 => {
                        f.splice(at..at, piece.bytes());
                    }
                    2 => {
                        let end = (at + piece.len()).min(f.len());
                        f.drain(at..end);
                    }
                    _ => {
                        let end = (at + piece.len()).min(f.len());
                        f.splice(at..end, piece.bytes());
                    }
                }
            }
            let frame = String::from_utf8_lossy(&f).into_owned();
            let general = parse_general(&frame, 0);
            if let Some(m) = super::super::scan::message(&frame) {
                proptest::prop_assert_eq!(Ok(m), general.clone(), "{}", frame);
            }
            if let Some(m) = parse_one_pass(&frame) {
                proptest::prop_assert_eq!(Ok(m), general.clone(), "{}", frame);
            }
            proptest::prop_assert_eq!(parse(&frame), general, "{}", frame);
        }
    }

    #[test]
    fn numbers_never_go_through_f64() {
        // A price sent as a JSON number is refused rather than rounded.
        let e = parse(r#"{"u":1,"s":"X","b":0.1,"B":"1","a":"1","A":"1"}"#).unwrap_err();
        assert!(e.reason.contains("invalid type"), "{}", e.reason);
    }
}
