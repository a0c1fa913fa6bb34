//! Coinbase Advanced Trade websocket messages and [`parse`].
//!
//! Every server frame is one envelope (`channel`, `client_id`, `timestamp`,
//! `sequence_num`, `events`), except the error reply `{"type":"error","message":..}`.
//! Parsing is two passes over the same bytes: the envelope is read with `events` kept as
//! a borrowed [`RawValue`], then `events` is parsed into the typed events of the channel
//! the envelope named. Both passes borrow from the frame (`Cow<str>`: a plain string is a
//! slice of the input, only one with escapes is copied), and decimals go straight from the
//! borrowed string into [`Decimal`], so a `ticker` frame costs no allocation beyond its
//! event vectors. Fields gekko does not use are skipped without being materialised.
//!
//! [`parse`] never panics: malformed or unexpected input becomes a [`ParseError`] that
//! names the problem and keeps the (truncated) payload; a well-formed message on a channel
//! gekko does not consume (`candles`, `status`, `ticker_batch`, ...) becomes
//! [`CoinbaseWsMessage::Other`].
//!
//! [`sequence_num`] is the cheap scan the connection's sequence guard runs on every frame
//! before the full parse (see [`super::stream`]).

use std::borrow::Cow;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// The longest payload kept in a [`ParseError`].
const MAX_PAYLOAD: usize = 1024;

/// A frame could not be understood. Keeps the (truncated) payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Coinbase websocket message ({reason}): {payload}")]
pub struct ParseError {
    /// What was wrong.
    pub reason: String,
    /// The offending frame, truncated.
    pub payload: String,
}

impl ParseError {
    /// An error for `payload`, truncated to a bounded length.
    pub fn new(reason: impl std::fmt::Display, payload: &str) -> Self {
        Self {
            reason: reason.to_string(),
            payload: gekko_net::http::truncate(payload, MAX_PAYLOAD).to_owned(),
        }
    }
}

/// The envelope fields every channel message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    /// The channel the message is on (`l2_data` for a `level2` subscription).
    pub channel: Cow<'a, str>,
    /// The client id (empty unless the client set one).
    pub client_id: Cow<'a, str>,
    /// Server time, RFC 3339 (empty when absent).
    pub timestamp: Cow<'a, str>,
    /// Per-connection message number, one greater than the previous message's.
    pub sequence_num: Option<u64>,
}

impl Header<'_> {
    /// The envelope time in epoch milliseconds, if it parses.
    #[must_use]
    pub fn ts_ms(&self) -> Option<i64> {
        crate::common::parse_rfc3339_ms(&self.timestamp)
    }
}

/// One websocket message from Coinbase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoinbaseWsMessage<'a> {
    /// `level2` data (channel `l2_data`): a snapshot, then updates.
    L2Data {
        /// Envelope.
        header: Header<'a>,
        /// Events, in order.
        events: Vec<L2Event<'a>>,
    },
    /// `ticker`: last price and best bid/ask.
    Ticker {
        /// Envelope.
        header: Header<'a>,
        /// Events, in order.
        events: Vec<TickerEvent<'a>>,
    },
    /// `market_trades`: public trades.
    MarketTrades {
        /// Envelope.
        header: Header<'a>,
        /// Events, in order.
        events: Vec<TradesEvent<'a>>,
    },
    /// `heartbeats`: proof of life, about once a second.
    Heartbeats {
        /// Envelope.
        header: Header<'a>,
        /// Events, in order.
        events: Vec<HeartbeatEvent<'a>>,
    },
    /// The acknowledgement of a subscribe or unsubscribe: what is subscribed now.
    Subscriptions {
        /// Envelope.
        header: Header<'a>,
        /// Events, in order.
        events: Vec<SubscriptionsEvent<'a>>,
    },
    /// `user`: the account's orders.
    User {
        /// Envelope.
        header: Header<'a>,
        /// Events, in order.
        events: Vec<UserOrdersEvent<'a>>,
    },
    /// `{"type":"error","message":..}`: the server refused something (a subscribe).
    Error {
        /// What the server said.
        message: Cow<'a, str>,
    },
    /// A well-formed message on a channel gekko does not consume.
    Other {
        /// Envelope.
        header: Header<'a>,
    },
}

impl CoinbaseWsMessage<'_> {
    /// The envelope, for everything but an error reply.
    #[must_use]
    pub fn header(&self) -> Option<&Header<'_>> {
        match self {
            Self::L2Data { header, .. }
            | Self::Ticker { header, .. }
            | Self::MarketTrades { header, .. }
            | Self::Heartbeats { header, .. }
            | Self::Subscriptions { header, .. }
            | Self::User { header, .. }
            | Self::Other { header } => Some(header),
            Self::Error { .. } => None,
        }
    }
}

/// Whether an event is the first full picture or a change to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// The full state (a book, the open orders, the current ticker).
    Snapshot,
    /// A change.
    Update,
}

/// Side of a book level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum L2Side {
    /// A bid.
    #[serde(rename = "bid")]
    Bid,
    /// An ask (Coinbase says `offer`; `ask` is accepted too).
    #[serde(rename = "offer", alias = "ask")]
    Offer,
}

/// One `l2_data` event: a snapshot or an update of one product's book.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct L2Event<'a> {
    /// Snapshot or update.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The product, e.g. `BTC-USD`.
    #[serde(borrow)]
    pub product_id: Cow<'a, str>,
    /// Changed levels (every level, for a snapshot).
    #[serde(borrow, default)]
    pub updates: Vec<L2Level<'a>>,
}

/// One level of an `l2_data` event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct L2Level<'a> {
    /// Bid or offer.
    pub side: L2Side,
    /// When the level changed (RFC 3339).
    #[serde(borrow, default)]
    pub event_time: Cow<'a, str>,
    /// The price.
    #[serde(deserialize_with = "decimal")]
    pub price_level: Decimal,
    /// The **absolute** size now resting at the price; zero removes the level.
    #[serde(deserialize_with = "decimal")]
    pub new_quantity: Decimal,
}

/// One `ticker` event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TickerEvent<'a> {
    /// Snapshot (the first) or update.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The tickers it carries.
    #[serde(borrow, default)]
    pub tickers: Vec<TickerMsg<'a>>,
}

/// One product's ticker.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TickerMsg<'a> {
    /// The product.
    #[serde(borrow)]
    pub product_id: Cow<'a, str>,
    /// Last trade price.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub price: Option<Decimal>,
    /// Best bid.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub best_bid: Option<Decimal>,
    /// Size at the best bid.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub best_bid_quantity: Option<Decimal>,
    /// Best ask.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub best_ask: Option<Decimal>,
    /// Size at the best ask.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub best_ask_quantity: Option<Decimal>,
}

/// One `market_trades` event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TradesEvent<'a> {
    /// Snapshot (recent trades) or update.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The trades.
    #[serde(borrow, default)]
    pub trades: Vec<MarketTradeMsg<'a>>,
}

/// One public trade.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MarketTradeMsg<'a> {
    /// Venue trade id.
    #[serde(borrow)]
    pub trade_id: Cow<'a, str>,
    /// The product.
    #[serde(borrow)]
    pub product_id: Cow<'a, str>,
    /// Price.
    #[serde(deserialize_with = "decimal")]
    pub price: Decimal,
    /// Size.
    #[serde(deserialize_with = "decimal")]
    pub size: Decimal,
    /// `BUY` or `SELL`.
    #[serde(borrow)]
    pub side: Cow<'a, str>,
    /// Trade time (RFC 3339).
    #[serde(borrow, default)]
    pub time: Cow<'a, str>,
}

/// One `heartbeats` event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HeartbeatEvent<'a> {
    /// A Go-style time string; opaque.
    #[serde(borrow, default)]
    pub current_time: Cow<'a, str>,
    /// Counts up by one per heartbeat.
    #[serde(default)]
    pub heartbeat_counter: Option<u64>,
}

/// One `subscriptions` event: channel → products now subscribed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SubscriptionsEvent<'a> {
    /// Channel name → product ids (empty for channels without products).
    #[serde(borrow, default)]
    pub subscriptions: std::collections::BTreeMap<Cow<'a, str>, Vec<Cow<'a, str>>>,
}

/// One `user` event: orders (the open ones in a snapshot, changed ones in an update).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserOrdersEvent<'a> {
    /// Snapshot or update.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The orders.
    #[serde(borrow, default)]
    pub orders: Vec<UserOrderMsg<'a>>,
}

/// One order of a `user` event (the fields gekko uses; the rest are skipped).
///
/// Sizes are cumulative: a fill is the difference from the order's previous state
/// (see [`super::user::CoinbaseFillTracker`]). Empty strings mean "does not apply".
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserOrderMsg<'a> {
    /// Venue order id.
    #[serde(borrow)]
    pub order_id: Cow<'a, str>,
    /// gekko's client order id (empty for an order placed without one).
    #[serde(borrow, default)]
    pub client_order_id: Cow<'a, str>,
    /// The product.
    #[serde(borrow)]
    pub product_id: Cow<'a, str>,
    /// `BUY` or `SELL`.
    #[serde(borrow)]
    pub order_side: Cow<'a, str>,
    /// `PENDING`, `OPEN`, `FILLED`, `CANCELLED`, `EXPIRED`, `FAILED`, ...
    #[serde(borrow)]
    pub status: Cow<'a, str>,
    /// Filled so far.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub cumulative_quantity: Option<Decimal>,
    /// Still to fill.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub leaves_quantity: Option<Decimal>,
    /// Average fill price so far.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub avg_price: Option<Decimal>,
    /// Quote value filled so far.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub filled_value: Option<Decimal>,
    /// Fees charged so far (in the quote currency).
    #[serde(default, deserialize_with = "opt_decimal")]
    pub total_fees: Option<Decimal>,
    /// Limit price (empty for market orders).
    #[serde(default, deserialize_with = "opt_decimal")]
    pub limit_price: Option<Decimal>,
    /// Why the venue refused the order, when it did.
    #[serde(borrow, default)]
    pub reject_reason: Cow<'a, str>,
    /// Why the order was cancelled, when it was.
    #[serde(borrow, default)]
    pub cancel_reason: Cow<'a, str>,
    /// When the order was created (RFC 3339).
    #[serde(borrow, default)]
    pub creation_time: Cow<'a, str>,
}

/// The envelope, with `events` left unparsed until the channel is known.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    channel: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    client_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(default)]
    sequence_num: Option<u64>,
    #[serde(borrow, default)]
    events: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

/// Parses one text frame.
///
/// # Errors
/// [`ParseError`] when the frame is not a JSON object, has neither a `channel` nor
/// `"type":"error"`, or when the `events` of a channel gekko consumes do not have the
/// documented shape (a missing field, a decimal that does not parse, an unknown side or
/// event type).
pub fn parse(text: &str) -> Result<CoinbaseWsMessage<'_>, ParseError> {
    let env: Envelope<'_> =
        serde_json::from_str(text).map_err(|e| ParseError::new(format!("envelope: {e}"), text))?;
    let Some(channel) = env.channel else {
        if env.kind.as_deref() == Some("error") {
            return Ok(CoinbaseWsMessage::Error {
                message: env.message.unwrap_or_default(),
            });
        }
        return Err(ParseError::new(
            "neither a channel nor an error reply",
            text,
        ));
    };
    let header = Header {
        channel,
        client_id: env.client_id.unwrap_or_default(),
        timestamp: env.timestamp.unwrap_or_default(),
        sequence_num: env.sequence_num,
    };
    let events = env.events;
    macro_rules! events {
        ($variant:ident) => {{
            let raw = events.ok_or_else(|| {
                ParseError::new(format!("{} message without events", header.channel), text)
            })?;
            let events = serde_json::from_str(raw.get())
                .map_err(|e| ParseError::new(format!("{} events: {e}", header.channel), text))?;
            Ok(CoinbaseWsMessage::$variant { header, events })
        }};
    }
    match header.channel.as_ref() {
        "l2_data" => events!(L2Data),
        "ticker" => events!(Ticker),
        "market_trades" => events!(MarketTrades),
        "heartbeats" => events!(Heartbeats),
        "subscriptions" => events!(Subscriptions),
        "user" => events!(User),
        _ => Ok(CoinbaseWsMessage::Other { header }),
    }
}

/// The envelope's `sequence_num`, found by a scan rather than a parse (the guard runs on
/// every frame, before [`parse`]). `None` when the frame has none.
///
/// The key is looked up as `"sequence_num"` followed by optional whitespace and a colon,
/// so the word inside a string value does not match. No Coinbase event object has a key
/// of that name, so the first match is the envelope's.
#[must_use]
pub fn sequence_num(text: &str) -> Option<u64> {
    const KEY: &str = "\"sequence_num\"";
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        rest = &rest[at + KEY.len()..];
        let after = rest.trim_start();
        if let Some(value) = after.strip_prefix(':') {
            let value = value.trim_start();
            let digits = value.bytes().take_while(u8::is_ascii_digit).count();
            return value.get(..digits)?.parse().ok();
        }
    }
    None
}

/// A decimal from a JSON string (borrowed when it can be).
fn decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    let s = Cow::<'de, str>::deserialize(d)?;
    parse_decimal(&s).map_err(serde::de::Error::custom)
}

/// An optional decimal: absent, `null` and `""` are `None`.
fn opt_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    match Option::<Cow<'de, str>>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => parse_decimal(&s)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

fn parse_decimal(s: &str) -> Result<Decimal, String> {
    s.parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(s))
        .map_err(|_| format!("not a decimal: {:?}", gekko_net::http::truncate(s, 64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_scan_finds_the_key_not_the_word() {
        assert_eq!(
            sequence_num(r#"{"channel":"x","sequence_num": 42,"events":[]}"#),
            Some(42)
        );
        assert_eq!(
            sequence_num(r#"{"m":"\"sequence_num\" x","sequence_num":7}"#),
            Some(7)
        );
        assert_eq!(sequence_num(r#"{"channel":"x"}"#), None);
        assert_eq!(sequence_num(r#"{"sequence_num":"#), None);
        assert_eq!(sequence_num(r#"{"sequence_num":-1}"#), None);
    }

    #[test]
    fn error_replies_and_unknown_channels() {
        assert_eq!(
            parse(r#"{"type":"error","message":"authentication failure"}"#).unwrap(),
            CoinbaseWsMessage::Error {
                message: "authentication failure".into()
            }
        );
        let m = parse(r#"{"channel":"candles","sequence_num":3,"events":[{"x":1}]}"#).unwrap();
        assert!(
            matches!(m, CoinbaseWsMessage::Other { ref header } if header.sequence_num == Some(3))
        );
        for bad in [
            "",
            "[]",
            "{}",
            r#"{"type":"subscribe"}"#,
            r#"{"channel":"ticker"}"#,
            r#"{"channel":"ticker","events":{}}"#,
            r#"{"channel":"l2_data","events":[{"type":"snapshot","product_id":"BTC-USD","updates":[{"side":"middle","price_level":"1","new_quantity":"1"}]}]}"#,
            r#"{"channel":"l2_data","events":[{"type":"update","product_id":"BTC-USD","updates":[{"side":"bid","price_level":"x","new_quantity":"1"}]}]}"#,
        ] {
            let e = parse(bad).unwrap_err();
            assert!(!e.reason.is_empty(), "{bad}");
        }
    }

    #[test]
    fn escaped_strings_are_copied_not_refused() {
        let m = parse(
            r#"{"channel":"market_trades","sequence_num":1,"events":[{"type":"update","trades":[{"trade_id":"a\"b","product_id":"BTC-USD","price":"1.5","size":"2","side":"BUY","time":""}]}]}"#,
        )
        .unwrap();
        let CoinbaseWsMessage::MarketTrades { events, .. } = m else {
            panic!("{m:?}")
        };
        assert_eq!(events[0].trades[0].trade_id, "a\"b");
    }
}
