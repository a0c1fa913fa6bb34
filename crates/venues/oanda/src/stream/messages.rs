//! The lines of OANDA's two streams and their parsers: [`parse_pricing_line`] and
//! [`parse_transaction_line`].
//!
//! Both streams are chunked NDJSON (reference §3.7): one JSON object per line, told apart
//! by `type`. The pricing stream sends `PRICE` lines (a `ClientPrice`) and
//! `{"type":"HEARTBEAT","time":..}`; the transaction stream sends transactions (any v20
//! transaction type) and heartbeats that also carry `lastTransactionID`.
//!
//! Both parsers first offer the line to a byte scanner for its plain shape (the private
//! `scan` module: strings without escapes, decimal strings, no repeated fields), which
//! answers only when it is sure and otherwise leaves the line to serde, so serde decides
//! every unusual line and words every error.
//!
//! * **Prices** on the serde path are read in one pass by a hand-written visitor,
//!   whatever the key order (OANDA writes `type` first but `instrument` last): strings
//!   borrow from the line, decimals go straight from the borrowed string into
//!   [`Decimal`], and the fields gekko does not use (`status`,
//!   `quoteHomeConversionFactors`, `unitsAvailable`) are skipped without being
//!   materialised. Either way a `PRICE` line costs its two level vectors and nothing
//!   else.
//! * **Transactions** become the crate's one typed transaction, [`OandaTransaction`]
//!   (no `serde_json::Value` in between), because the mapping to orders and fills
//!   ([`crate::common::OrderTracker`]) is shared with REST and `/changes` and takes that
//!   type. On the serde path a heartbeat parses to a transaction of type `HEARTBEAT`
//!   with no id, and only then is the small line read a second time for its
//!   `lastTransactionID`.
//!
//! Parsers never panic: a line that is not JSON, not an object, has no `type`, or whose
//! fields do not have the documented shape (a price that is not a decimal, a `PRICE`
//! without `instrument`) is a [`ParseError`] that names the problem and keeps the
//! (truncated) line. A well-formed line of a type the stream does not use is
//! [`OandaPricingLine::Other`] / an ordinary transaction the tracker ignores.

use std::borrow::Cow;
use std::fmt;

use rust_decimal::Decimal;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::common::models::OandaTransaction;

/// The longest line kept in a [`ParseError`].
const MAX_PAYLOAD: usize = 1024;

/// A stream line could not be understood. Keeps the (truncated) line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed OANDA stream line ({reason}): {payload}")]
pub struct ParseError {
    /// What was wrong.
    pub reason: String,
    /// The offending line, truncated.
    pub payload: String,
}

impl ParseError {
    /// An error for `payload`, truncated to a bounded length.
    pub fn new(reason: impl fmt::Display, payload: &str) -> Self {
        Self {
            reason: reason.to_string(),
            payload: gekko_net::http::truncate(payload, MAX_PAYLOAD).to_owned(),
        }
    }
}

/// One level of a price: a price and the liquidity available at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceLevel {
    /// Price.
    pub price: Decimal,
    /// Liquidity in units (an integer on the wire).
    pub liquidity: Decimal,
}

/// A `PRICE` line: one instrument's current bids and asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OandaPrice<'a> {
    /// `EUR_USD`.
    pub instrument: Cow<'a, str>,
    /// Price time (RFC 3339 with nanoseconds, or UNIX seconds).
    pub time: Cow<'a, str>,
    /// Whether the instrument can be traded at this price (false outside market hours).
    pub tradeable: bool,
    /// Bids, best (highest) first as OANDA sends them.
    pub bids: Vec<PriceLevel>,
    /// Asks, best (lowest) first as OANDA sends them.
    pub asks: Vec<PriceLevel>,
    /// The price a long position would be closed out at.
    pub closeout_bid: Option<Decimal>,
    /// The price a short position would be closed out at.
    pub closeout_ask: Option<Decimal>,
}

/// One line of the pricing stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OandaPricingLine<'a> {
    /// A price.
    Price(OandaPrice<'a>),
    /// Proof of life (about every 5 s).
    Heartbeat {
        /// Server time.
        time: Cow<'a, str>,
    },
    /// A well-formed line of another type.
    Other {
        /// Its `type`.
        kind: Cow<'a, str>,
    },
}

/// One line of the transaction stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OandaTransactionLine {
    /// Proof of life, with the account's last transaction id.
    Heartbeat {
        /// The id of the account's newest transaction (empty when absent).
        last_transaction_id: String,
        /// Server time.
        time: String,
    },
    /// A transaction of any type (the tracker maps the order-related ones).
    Transaction(Box<OandaTransaction>),
}

/// Parses one pricing-stream line.
///
/// # Errors
/// [`ParseError`] when the line is not a JSON object, has no `type`, or is a `PRICE`
/// without `instrument` or with a price, liquidity or closeout that does not parse.
pub fn parse_pricing_line(line: &str) -> Result<OandaPricingLine<'_>, ParseError> {
    if let Some(parsed) = super::scan::price(line) {
        return Ok(parsed);
    }
    parse_pricing_serde(line)
}

/// The serde path of [`parse_pricing_line`]: every shape, and every error message.
pub(crate) fn parse_pricing_serde(line: &str) -> Result<OandaPricingLine<'_>, ParseError> {
    let raw: RawPricing<'_> = serde_json::from_str(line).map_err(|e| ParseError::new(e, line))?;
    let Some(kind) = raw.kind else {
        return Err(ParseError::new("no \"type\"", line));
    };
    match kind.as_ref() {
        "PRICE" => {
            let Some(instrument) = raw.instrument else {
                return Err(ParseError::new("PRICE without \"instrument\"", line));
            };
            Ok(OandaPricingLine::Price(OandaPrice {
                instrument,
                time: raw.time.unwrap_or_default(),
                tradeable: raw.tradeable.unwrap_or(true),
                bids: raw.bids,
                asks: raw.asks,
                closeout_bid: raw.closeout_bid,
                closeout_ask: raw.closeout_ask,
            }))
        }
        "HEARTBEAT" => Ok(OandaPricingLine::Heartbeat {
            time: raw.time.unwrap_or_default(),
        }),
        _ => Ok(OandaPricingLine::Other { kind }),
    }
}

/// Parses one transaction-stream line.
///
/// # Errors
/// [`ParseError`] when the line is not a JSON object, has no `type`, a transaction has no
/// `id`, or a field does not have the documented shape (units or a price that are not
/// decimals).
pub fn parse_transaction_line(line: &str) -> Result<OandaTransactionLine, ParseError> {
    if let Some(parsed) = super::scan::transaction(line) {
        return Ok(parsed);
    }
    parse_transaction_serde(line)
}

/// The serde path of [`parse_transaction_line`]: every shape, and every error message.
pub(crate) fn parse_transaction_serde(line: &str) -> Result<OandaTransactionLine, ParseError> {
    let tx: OandaTransaction = serde_json::from_str(line).map_err(|e| ParseError::new(e, line))?;
    if tx.kind.is_empty() {
        return Err(ParseError::new("no \"type\"", line));
    }
    if tx.kind == "HEARTBEAT" {
        // Heartbeats are short: a second look for the one field the transaction lacks.
        let hb: HeartbeatProbe =
            serde_json::from_str(line).map_err(|e| ParseError::new(e, line))?;
        return Ok(OandaTransactionLine::Heartbeat {
            last_transaction_id: hb.last_transaction_id.unwrap_or_default(),
            time: tx.time,
        });
    }
    if tx.id.is_empty() {
        return Err(ParseError::new(
            format_args!("{} transaction without \"id\"", tx.kind),
            line,
        ));
    }
    Ok(OandaTransactionLine::Transaction(Box::new(tx)))
}

/// A transaction id as a number, for ordering (`None` when it is not an integer).
#[must_use]
pub fn transaction_seq(id: &str) -> Option<u64> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok()
}

#[derive(Deserialize)]
struct HeartbeatProbe {
    #[serde(rename = "lastTransactionID", default)]
    last_transaction_id: Option<String>,
}

/// A string borrowed from the line when it has no escapes, copied when it has.
///
/// (`Cow<str>`'s own `Deserialize` always copies; this visitor takes the borrowed form
/// when serde_json offers it.)
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

/// The keys of a pricing line gekko reads; anything else is skipped.
#[derive(Deserialize)]
#[serde(field_identifier)]
enum Field {
    #[serde(rename = "type")]
    Type,
    #[serde(rename = "instrument")]
    Instrument,
    #[serde(rename = "time")]
    Time,
    #[serde(rename = "tradeable")]
    Tradeable,
    #[serde(rename = "bids")]
    Bids,
    #[serde(rename = "asks")]
    Asks,
    #[serde(rename = "closeoutBid")]
    CloseoutBid,
    #[serde(rename = "closeoutAsk")]
    CloseoutAsk,
    #[serde(other)]
    Other,
}

/// A pricing line as read, before `type` decides what it is.
#[derive(Default)]
struct RawPricing<'a> {
    kind: Option<Cow<'a, str>>,
    instrument: Option<Cow<'a, str>>,
    time: Option<Cow<'a, str>>,
    tradeable: Option<bool>,
    bids: Vec<PriceLevel>,
    asks: Vec<PriceLevel>,
    closeout_bid: Option<Decimal>,
    closeout_ask: Option<Decimal>,
}

impl<'de> Deserialize<'de> for RawPricing<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawPricing<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an OANDA pricing stream object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut r = RawPricing::default();
                let text = |v: Option<Text<'de>>| v.map(|t| t.0);
                while let Some(key) = map.next_key::<Field>()? {
                    match key {
                        Field::Type => r.kind = text(map.next_value()?),
                        Field::Instrument => r.instrument = text(map.next_value()?),
                        Field::Time => r.time = text(map.next_value()?),
                        Field::Tradeable => r.tradeable = map.next_value()?,
                        Field::Bids => r.bids = map.next_value::<Levels>()?.0,
                        Field::Asks => r.asks = map.next_value::<Levels>()?.0,
                        Field::CloseoutBid => r.closeout_bid = map.next_value::<OptDec>()?.0,
                        Field::CloseoutAsk => r.closeout_ask = map.next_value::<OptDec>()?.0,
                        Field::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(r)
            }
        }
        d.deserialize_map(V)
    }
}

/// `bids` / `asks`: an array of `{"price": "..", "liquidity": N}` (`null` is empty).
struct Levels(Vec<PriceLevel>);

impl<'de> Deserialize<'de> for Levels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Levels;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of price levels")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Levels(Vec::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                // A price carries a handful of levels; more are allowed, just not
                // pre-allocated on the sender's word.
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).clamp(2, 8));
                while let Some(l) = seq.next_element::<Level>()? {
                    out.push(l.0);
                }
                Ok(Levels(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// One level object.
struct Level(PriceLevel);

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(field_identifier, rename_all = "lowercase")]
        enum LevelField {
            Price,
            Liquidity,
            #[serde(other)]
            Other,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Level;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a price level object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut price, mut liquidity) = (None, None);
                while let Some(key) = map.next_key::<LevelField>()? {
                    match key {
                        LevelField::Price => price = Some(map.next_value::<Dec>()?.0),
                        LevelField::Liquidity => liquidity = Some(map.next_value::<Liq>()?.0),
                        LevelField::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                let price = price.ok_or_else(|| de::Error::missing_field("price"))?;
                Ok(Level(PriceLevel {
                    price,
                    liquidity: liquidity.unwrap_or_default(),
                }))
            }
        }
        d.deserialize_map(V)
    }
}

/// A decimal from a JSON string, borrowed while parsed.
struct Dec(Decimal);

impl<'de> Deserialize<'de> for Dec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Text(s) = Text::deserialize(d)?;
        parse_decimal(&s).map(Dec).map_err(de::Error::custom)
    }
}

/// An optional decimal: `null` and `""` are `None`.
struct OptDec(Option<Decimal>);

impl<'de> Deserialize<'de> for OptDec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Option::<Text<'de>>::deserialize(d)? {
            None => Ok(OptDec(None)),
            Some(Text(s)) if s.is_empty() => Ok(OptDec(None)),
            Some(Text(s)) => parse_decimal(&s)
                .map(|v| OptDec(Some(v)))
                .map_err(de::Error::custom),
        }
    }
}

/// Liquidity: an integer on the wire; a decimal string or a float is accepted too.
struct Liq(Decimal);

impl<'de> Deserialize<'de> for Liq {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Liq;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a liquidity number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Liq(Decimal::from(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Liq(Decimal::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                // A size, not money: a float on the wire is taken at its shortest decimal.
                Decimal::try_from(v)
                    .map(Liq)
                    .map_err(|_| E::custom(format_args!("liquidity {v} is not a decimal")))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                parse_decimal(s).map(Liq).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A decimal string: the plain `[-]digits[.digits]` form of up to 18 digits (every
/// OANDA price and size) is read directly, anything else by `rust_decimal`'s parser.
pub(crate) fn parse_decimal(s: &str) -> Result<Decimal, String> {
    if let Some(d) = plain_decimal(s) {
        return Ok(d);
    }
    s.parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(s))
        .map_err(|_| format!("not a decimal: {:?}", gekko_net::http::truncate(s, 64)))
}

/// `[-]digits[.digits]` with at most 18 digits, as `rust_decimal` would parse it (same
/// value, same scale); `None` for any other form. About ten times faster than the
/// general parser, which matters at eight numbers a price.
pub(crate) fn plain_decimal(s: &str) -> Option<Decimal> {
    let b = s.as_bytes();
    let (negative, digits) = match b.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut mantissa: i64 = 0;
    let mut count = 0_u32;
    let mut scale = None;
    for (i, &c) in digits.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + i64::from(c - b'0');
                count += 1;
            }
            // One point, with digits on both sides.
            b'.' if scale.is_none() && i > 0 && i + 1 < digits.len() => {
                scale = Some(u32::try_from(digits.len() - i - 1).ok()?);
            }
            _ => return None,
        }
        if count > 18 {
            return None;
        }
    }
    let mut d = Decimal::new(mantissa, scale.unwrap_or(0));
    d.set_sign_negative(negative && mantissa != 0);
    Some(d)
}

#[cfg(test)]
mod tests {
    use proptest::strategy::Strategy as _;
    use rust_decimal_macros::dec;

    use super::*;

    fn lines(name: &str) -> Vec<String> {
        let path = format!("{}/test_data/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn price_lines_parse_every_level_in_any_key_order() {
        let l = lines("stream_pricing.jsonl");
        for line in &l {
            // The venue's lines take the scanner's path, and it agrees with serde.
            let fast = super::super::scan::price(line).expect("plain shape");
            assert_eq!(fast, parse_pricing_serde(line).unwrap());
        }
        let OandaPricingLine::Price(p) = parse_pricing_line(&l[0]).unwrap() else {
            panic!("{}", l[0])
        };
        assert_eq!(p.instrument, "EUR_USD");
        assert_eq!(p.time, "2020-05-04T14:18:54.652572124Z");
        assert!(p.tradeable);
        assert_eq!(
            p.bids,
            [
                PriceLevel {
                    price: dec!(1.09144),
                    liquidity: dec!(1000000)
                },
                PriceLevel {
                    price: dec!(1.09143),
                    liquidity: dec!(2000000)
                }
            ]
        );
        assert_eq!(p.asks.len(), 1);
        assert_eq!(
            (p.closeout_bid, p.closeout_ask),
            (Some(dec!(1.09140)), Some(dec!(1.09159)))
        );
        assert!(
            matches!(p.instrument, Cow::Borrowed(_)),
            "borrowed, not copied"
        );
        assert_eq!(
            parse_pricing_line(&l[1]).unwrap(),
            OandaPricingLine::Heartbeat {
                time: "2020-05-04T14:18:55.000000000Z".into()
            }
        );
        let OandaPricingLine::Price(jpy) = parse_pricing_line(&l[2]).unwrap() else {
            panic!()
        };
        assert_eq!((jpy.bids.len(), jpy.asks.len()), (3, 3));
        assert_eq!(jpy.asks[2].price, dec!(106.729));
        let OandaPricingLine::Price(closed) = parse_pricing_line(&l[3]).unwrap() else {
            panic!()
        };
        assert!(!closed.tradeable);
        // Keys reordered, unknown fields, a string liquidity: the same price.
        let shuffled = r#"{"instrument":"EUR_USD","x":{"y":[1,2]},"asks":[{"liquidity":"1000000","price":"1.09155"}],"bids":[{"price":"1.09144","liquidity":1000000},{"price":"1.09143","liquidity":2000000}],"closeoutAsk":"1.09159","closeoutBid":"1.09140","tradeable":true,"time":"2020-05-04T14:18:54.652572124Z","type":"PRICE"}"#;
        assert_eq!(
            parse_pricing_line(shuffled).unwrap(),
            OandaPricingLine::Price(p)
        );
    }

    #[test]
    fn the_plain_decimal_path_agrees_with_rust_decimal() {
        for s in [
            "0",
            "1",
            "-1",
            "1.09144",
            "106.712",
            "-0.0123",
            "100000.0000",
            "0.00001",
            "123456789012345678",
            "1234567890.12345678",
            "00.10",
            "-0",
        ] {
            let fast = plain_decimal(s).unwrap_or_else(|| panic!("{s}"));
            let slow: Decimal = s.parse().unwrap();
            assert_eq!(
                (fast, fast.scale(), fast.to_string()),
                (slow, slow.scale(), slow.to_string()),
                "{s}"
            );
        }
        for s in [
            "",
            "-",
            ".5",
            "5.",
            "1.2.3",
            "1e5",
            "+1",
            " 1",
            "1 ",
            "12345678901234567890",
            "1234567890123456789",
            "0x10",
            "1_000",
        ] {
            assert_eq!(plain_decimal(s), None, "{s}");
        }
        assert_eq!(parse_decimal("1e-3").unwrap(), dec!(0.001));
        assert!(parse_decimal("1.2.3").is_err());
    }

    #[test]
    fn malformed_pricing_lines_name_the_problem() {
        for (bad, says) in [
            ("", "EOF"),
            ("[]", "invalid type"),
            ("{}", "no \"type\""),
            (r#"{"type":"PRICE"}"#, "without \"instrument\""),
            (
                r#"{"type":"PRICE","instrument":"EUR_USD","bids":[{"price":"x"}]}"#,
                "not a decimal",
            ),
            (
                r#"{"type":"PRICE","instrument":"EUR_USD","bids":[{"liquidity":1}]}"#,
                "missing field `price`",
            ),
            (
                r#"{"type":"PRICE","instrument":"EUR_USD","bids":{}}"#,
                "invalid type",
            ),
            (r#"{"type":"PRICE","instrument":"EUR_USD""#, "EOF"),
        ] {
            let e = parse_pricing_line(bad).unwrap_err();
            assert!(e.reason.contains(says), "{bad}: {}", e.reason);
        }
        assert_eq!(
            parse_pricing_line(r#"{"type":"NEWS","time":"t"}"#).unwrap(),
            OandaPricingLine::Other {
                kind: "NEWS".into()
            }
        );
    }

    #[test]
    fn transaction_lines_parse_to_the_common_transaction() {
        let l = lines("stream_transactions.jsonl");
        let OandaTransactionLine::Transaction(create) = parse_transaction_line(&l[0]).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (create.id.as_str(), create.kind.as_str()),
            ("6356", "MARKET_ORDER")
        );
        assert_eq!(
            create.client_extensions.as_ref().unwrap().id.as_deref(),
            Some("gk0123456789abcdef0123456789abcdef")
        );
        let OandaTransactionLine::Transaction(fill) = parse_transaction_line(&l[1]).unwrap() else {
            panic!()
        };
        assert_eq!(fill.kind, "ORDER_FILL");
        assert_eq!(fill.order_id.as_deref(), Some("6356"));
        assert_eq!(fill.price, Some(dec!(1.09155)));
        assert_eq!(fill.trade_opened.as_ref().unwrap().trade_id, "6357");
        assert_eq!(
            parse_transaction_line(&l[2]).unwrap(),
            OandaTransactionLine::Heartbeat {
                last_transaction_id: "6357".into(),
                time: "2020-05-04T14:19:00.000000000Z".into()
            }
        );
        let OandaTransactionLine::Transaction(reject) = parse_transaction_line(&l[5]).unwrap()
        else {
            panic!()
        };
        assert_eq!(reject.reject_reason.as_deref(), Some("INSUFFICIENT_MARGIN"));
        for line in &l {
            assert!(parse_transaction_line(line).is_ok(), "{line}");
        }
        for (bad, says) in [
            ("nope", "expected"),
            ("{}", "no \"type\""),
            (r#"{"type":"ORDER_FILL"}"#, "without \"id\""),
            (r#"{"id":"1","type":"ORDER_FILL","units":"x"}"#, ""),
            (r#"{"id":"1","type":"ORDER_FILL","units":[]}"#, ""),
        ] {
            let e = parse_transaction_line(bad).unwrap_err();
            assert!(
                !e.reason.is_empty() && e.reason.contains(says),
                "{bad}: {}",
                e.reason
            );
        }
        assert_eq!(transaction_seq("6357"), Some(6357));
        assert_eq!(transaction_seq(""), None);
        assert_eq!(transaction_seq("-1"), None);
        assert_eq!(transaction_seq("99999999999999999999999"), None);
    }

    fn level_json(p: (u32, u32, u32)) -> String {
        let price = Decimal::new(i64::from(p.0), p.1);
        format!(r#"{{"price":"{price}","liquidity":{}}}"#, p.2)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..Default::default() })]

        /// Whenever the scanner answers, it answers what serde does; and it does answer
        /// for plain PRICE lines whatever their key order, spacing and extra fields.
        #[test]
        fn the_scanner_agrees_with_serde(
            bids in proptest::collection::vec((1u32..2_000_000, 0u32..7, 0u32..50_000_000), 0..5),
            asks in proptest::collection::vec((1u32..2_000_000, 0u32..7, 0u32..50_000_000), 0..5),
            order in proptest::strategy::Just((0..9).collect::<Vec<usize>>()).prop_shuffle(),
            space in proptest::sample::select(vec!["", " ", "\t", " \r\n "]),
            tradeable in proptest::prelude::any::<bool>(),
            cut in proptest::prelude::any::<usize>(),
        ) {
            let levels = |l: &[(u32, u32, u32)]| {
                l.iter().map(|&p| level_json(p)).collect::<Vec<_>>().join(&format!(",{space}"))
            };
            let fields = [
                r#""type":"PRICE""#.to_owned(),
                r#""instrument":"EUR_USD""#.to_owned(),
                r#""time":"2020-05-04T14:18:54.652572124Z""#.to_owned(),
                format!(r#""tradeable":{tradeable}"#),
                format!(r#""bids":[{}]"#, levels(&bids)),
                format!(r#""asks":[{}]"#, levels(&asks)),
                r#""closeoutBid":"1.09140""#.to_owned(),
                r#""status":"tradeable""#.to_owned(),
                r#""unitsAvailable":7"#.to_owned(),
            ];
            let body: Vec<&str> = order.iter().map(|&i| fields[i].as_str()).collect();
            let line = format!("{space}{{{space}{}{space}}}{space}", body.join(&format!("{space},{space}")));
            let fast = super::super::scan::price(&line);
            proptest::prop_assert!(fast.is_some(), "{}", line);
            proptest::prop_assert_eq!(fast.unwrap(), parse_pricing_serde(&line).unwrap());
            // Damaged: cut at any byte. If the scanner still answers, serde agrees.
            let at = cut % line.len();
            for damaged in [&line[..at], &line[at..]] {
                if let Some(f) = super::super::scan::price(damaged) {
                    proptest::prop_assert_eq!(Ok(f), parse_pricing_serde(damaged));
                }
            }
        }
    }
}
