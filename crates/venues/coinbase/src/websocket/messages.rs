//! Coinbase Advanced Trade websocket messages and [`parse`].
//!
//! Every server frame is one envelope (`channel`, `client_id`, `timestamp`,
//! `sequence_num`, `events`), except the error reply `{"type":"error","message":..}`.
//! Coinbase writes `channel` before `events`, so parsing is one pass: the envelope's
//! visitor reads the channel, then parses `events` straight into that channel's typed
//! events. A frame with `events` first still parses, in two passes (`events` kept as a
//! borrowed [`RawValue`] until the channel is known). Strings borrow from the frame
//! (`Cow<str>`: a plain string is a slice of the input, only one with escapes is
//! copied), and decimals go straight from the borrowed string into [`Decimal`], so a
//! `ticker` frame costs no allocation beyond its event vectors. Fields gekko does not use
//! are skipped without being materialised.
//!
//! [`parse`] never panics: malformed or unexpected input becomes a [`ParseError`] that
//! names the problem and keeps the (truncated) payload; a well-formed message on a channel
//! gekko does not consume (`candles`, `status`, `ticker_batch`, ...) becomes
//! [`CoinbaseWsMessage::Other`].
//!
//! [`sequence_num`] is the cheap scan the connection's sequence guard runs on every frame
//! before the full parse (see [`super::stream`]).

use std::borrow::Cow;
use std::fmt;

use rust_decimal::Decimal;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
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

/// A string borrowed from the frame when it has no escapes, copied when it has.
///
/// (`Cow<str>`'s own `Deserialize` always copies; only a direct `#[serde(borrow)]` field
/// borrows, and an `Option` of one does not.)
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The envelope keys; anything else is skipped.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Field {
    Channel,
    ClientId,
    Timestamp,
    SequenceNum,
    Events,
    Type,
    Message,
    #[serde(other)]
    Other,
}

/// `events`, typed by the channel named before it, or kept raw when it came first.
enum Events<'a> {
    L2(Vec<L2Event<'a>>),
    Ticker(Vec<TickerEvent<'a>>),
    Trades(Vec<TradesEvent<'a>>),
    Heartbeats(Vec<HeartbeatEvent<'a>>),
    Subscriptions(Vec<SubscriptionsEvent<'a>>),
    User(Vec<UserOrdersEvent<'a>>),
    /// `events` came before `channel`: parsed in a second pass.
    Raw(&'a RawValue),
    /// A channel gekko does not consume.
    Ignored,
}

/// One frame, read in a single pass when (as Coinbase writes it) `channel` precedes
/// `events`: the events are parsed straight into the channel's types.
#[derive(Default)]
struct Frame<'a> {
    channel: Option<Cow<'a, str>>,
    client_id: Option<Cow<'a, str>>,
    timestamp: Option<Cow<'a, str>>,
    sequence_num: Option<u64>,
    events: Option<Events<'a>>,
    kind: Option<Cow<'a, str>>,
    message: Option<Cow<'a, str>>,
}

impl<'de> Deserialize<'de> for Frame<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Frame<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Coinbase websocket message object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut f = Frame::default();
                let text = |v: Option<Text<'de>>| v.map(|t| t.0);
                while let Some(key) = map.next_key::<Field>()? {
                    match key {
                        Field::Channel => f.channel = text(map.next_value()?),
                        Field::ClientId => f.client_id = text(map.next_value()?),
                        Field::Timestamp => f.timestamp = text(map.next_value()?),
                        Field::SequenceNum => f.sequence_num = map.next_value()?,
                        Field::Type => f.kind = text(map.next_value()?),
                        Field::Message => f.message = text(map.next_value()?),
                        Field::Events => f.events = Some(events(&mut map, f.channel.as_deref())?),
                        Field::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(f)
            }
        }
        d.deserialize_map(V)
    }
}

/// Reads the `events` value for `channel` (raw when the channel is not known yet).
fn events<'de, A: MapAccess<'de>>(
    map: &mut A,
    channel: Option<&str>,
) -> Result<Events<'de>, A::Error> {
    let Some(channel) = channel else {
        return Ok(Events::Raw(map.next_value()?));
    };
    let ctx = |e: A::Error| de::Error::custom(format_args!("{channel} events: {e}"));
    Ok(match channel {
        "l2_data" => Events::L2(map.next_value().map_err(ctx)?),
        "ticker" => Events::Ticker(map.next_value().map_err(ctx)?),
        "market_trades" => Events::Trades(map.next_value().map_err(ctx)?),
        "heartbeats" => Events::Heartbeats(map.next_value().map_err(ctx)?),
        "subscriptions" => Events::Subscriptions(map.next_value().map_err(ctx)?),
        "user" => Events::User(map.next_value().map_err(ctx)?),
        _ => {
            map.next_value::<IgnoredAny>()?;
            Events::Ignored
        }
    })
}

/// The second pass, for a frame whose `events` preceded its `channel`.
fn raw_events<'a>(channel: &str, raw: &'a RawValue) -> Result<Events<'a>, String> {
    let json = raw.get();
    let ctx = |e: serde_json::Error| format!("{channel} events: {e}");
    Ok(match channel {
        "l2_data" => Events::L2(serde_json::from_str(json).map_err(ctx)?),
        "ticker" => Events::Ticker(serde_json::from_str(json).map_err(ctx)?),
        "market_trades" => Events::Trades(serde_json::from_str(json).map_err(ctx)?),
        "heartbeats" => Events::Heartbeats(serde_json::from_str(json).map_err(ctx)?),
        "subscriptions" => Events::Subscriptions(serde_json::from_str(json).map_err(ctx)?),
        "user" => Events::User(serde_json::from_str(json).map_err(ctx)?),
        _ => Events::Ignored,
    })
}

/// Parses one text frame.
///
/// # Errors
/// [`ParseError`] when the frame is not a JSON object, has neither a `channel` nor
/// `"type":"error"`, or when the `events` of a channel gekko consumes are missing or do
/// not have the documented shape (a missing field, a decimal that does not parse, an
/// unknown side or event type).
pub fn parse(text: &str) -> Result<CoinbaseWsMessage<'_>, ParseError> {
    let frame: Frame<'_> = serde_json::from_str(text).map_err(|e| ParseError::new(e, text))?;
    let Some(channel) = frame.channel else {
        if frame.kind.as_deref() == Some("error") {
            return Ok(CoinbaseWsMessage::Error {
                message: frame.message.unwrap_or_default(),
            });
        }
        return Err(ParseError::new(
            "neither a channel nor an error reply",
            text,
        ));
    };
    let events = match frame.events {
        Some(Events::Raw(raw)) => {
            raw_events(&channel, raw).map_err(|e| ParseError::new(e, text))?
        }
        Some(e) => e,
        None if matches!(
            channel.as_ref(),
            "l2_data" | "ticker" | "market_trades" | "heartbeats" | "subscriptions" | "user"
        ) =>
        {
            return Err(ParseError::new(
                format!("{channel} message without events"),
                text,
            ));
        }
        None => Events::Ignored,
    };
    let header = Header {
        channel,
        client_id: frame.client_id.unwrap_or_default(),
        timestamp: frame.timestamp.unwrap_or_default(),
        sequence_num: frame.sequence_num,
    };
    Ok(match events {
        Events::L2(events) => CoinbaseWsMessage::L2Data { header, events },
        Events::Ticker(events) => CoinbaseWsMessage::Ticker { header, events },
        Events::Trades(events) => CoinbaseWsMessage::MarketTrades { header, events },
        Events::Heartbeats(events) => CoinbaseWsMessage::Heartbeats { header, events },
        Events::Subscriptions(events) => CoinbaseWsMessage::Subscriptions { header, events },
        Events::User(events) => CoinbaseWsMessage::User { header, events },
        Events::Raw(_) | Events::Ignored => CoinbaseWsMessage::Other { header },
    })
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
    // `Text`, not `Cow<str>`: `Cow`'s own impl would allocate a `String` per number.
    let Text(s) = Text::deserialize(d)?;
    parse_decimal(&s).map_err(de::Error::custom)
}

/// An optional decimal: absent, `null` and `""` are `None`.
fn opt_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    match Option::<Text<'de>>::deserialize(d)? {
        None => Ok(None),
        Some(Text(s)) if s.is_empty() => Ok(None),
        Some(Text(s)) => parse_decimal(&s).map(Some).map_err(de::Error::custom),
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
    fn events_before_the_channel_parse_the_same() {
        let first = r#"{"channel":"ticker","sequence_num":4,"events":[{"type":"update","tickers":[{"product_id":"BTC-USD","best_bid":"1","best_ask":"2"}]}],"timestamp":"2026-01-01T00:00:00Z"}"#;
        let late = r#"{"events":[{"type":"update","tickers":[{"product_id":"BTC-USD","best_bid":"1","best_ask":"2"}]}],"timestamp":"2026-01-01T00:00:00Z","sequence_num":4,"channel":"ticker"}"#;
        assert_eq!(parse(first).unwrap(), parse(late).unwrap());
        assert!(
            matches!(parse(first).unwrap(), CoinbaseWsMessage::Ticker { ref events, .. } if events.len() == 1)
        );
        let bad_late = late.replace(r#""best_bid":"1""#, r#""best_bid":"one""#);
        assert!(
            parse(&bad_late)
                .unwrap_err()
                .reason
                .contains("ticker events")
        );
        let bad_first = first.replace(r#""best_bid":"1""#, r#""best_bid":"one""#);
        assert!(
            parse(&bad_first)
                .unwrap_err()
                .reason
                .contains("ticker events")
        );
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
