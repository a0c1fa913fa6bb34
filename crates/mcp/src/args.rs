//! The tools' arguments: one struct per tool, deserialized strictly.
//!
//! Each struct is `deny_unknown_fields`, so its JSON schema says
//! `additionalProperties: false` and an extra field is refused by name. Money and
//! quantities are decimal *strings* (an LLM that sends `0.1` as a float would otherwise
//! lose precision before gekko sees it), parsed into `rust_decimal::Decimal` here.
//!
//! [`parse`] is the one entry point: it bounds the size of what it is given (a 100 kB
//! string is refused before serde sees it), then deserializes with the path of the
//! offending field in the message, so every malformed call becomes one clean sentence
//! naming the field.

use std::str::FromStr;

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The longest string any argument may hold.
pub const MAX_STRING: usize = 256;
/// The most items any list argument may hold.
pub const MAX_ITEMS: usize = 64;

/// A malformed call: the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ArgError(pub String);

/// Checks sizes, then deserializes `args` (absent means `{}`) into `T`.
///
/// # Errors
/// [`ArgError`] naming the field: too long, too many items, unknown, missing, or of the
/// wrong type.
pub fn parse<T: DeserializeOwned>(
    args: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Result<T, ArgError> {
    let value = serde_json::Value::Object(args.cloned().unwrap_or_default());
    bounded("", &value)?;
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." || path.is_empty() {
            ArgError(inner)
        } else {
            ArgError(format!("{path}: {inner}"))
        }
    })
}

fn bounded(path: &str, v: &serde_json::Value) -> Result<(), ArgError> {
    let name = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match v {
        serde_json::Value::String(s) if s.len() > MAX_STRING => Err(ArgError(format!(
            "{}: a string of {} bytes; at most {MAX_STRING} are accepted",
            if path.is_empty() { "argument" } else { path },
            s.len()
        ))),
        serde_json::Value::Array(items) => {
            if items.len() > MAX_ITEMS {
                return Err(ArgError(format!(
                    "{path}: {} items; at most {MAX_ITEMS} are accepted",
                    items.len()
                )));
            }
            for (i, item) in items.iter().enumerate() {
                bounded(&format!("{path}[{i}]"), item)?;
            }
            Ok(())
        }
        serde_json::Value::Object(map) => {
            for (k, item) in map {
                if k.len() > MAX_STRING {
                    return Err(ArgError(format!(
                        "a field name of {} bytes; at most {MAX_STRING} are accepted",
                        k.len()
                    )));
                }
                bounded(&name(k), item)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A decimal string greater than zero.
///
/// # Errors
/// [`ArgError`] naming `field` when `s` is not a decimal or not above zero.
pub fn positive(field: &str, s: &str) -> Result<Decimal, ArgError> {
    let d = Decimal::from_str(s.trim()).map_err(|_| {
        ArgError(format!(
            "{field}: `{s}` is not a decimal number; send a decimal string such as \"0.01\""
        ))
    })?;
    if d <= Decimal::ZERO {
        return Err(ArgError(format!("{field}: {d} must be greater than zero")));
    }
    Ok(d)
}

/// No arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// A venue, optionally.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VenueArgs {
    /// The venue: binanceus, coinbase or oanda (see list_venues). Every hosted venue when
    /// omitted.
    #[serde(default)]
    pub venue: Option<String>,
}

/// A venue, required.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OneVenueArgs {
    /// The venue: binanceus, coinbase or oanda (see list_venues).
    pub venue: String,
}

/// One instrument on one venue.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstrumentArgs {
    /// The venue: binanceus, coinbase or oanda (see list_venues).
    pub venue: String,
    /// The instrument as BASE-QUOTE, e.g. BTC-USD or EUR-USD (see list_instruments).
    pub instrument: String,
}

/// One instrument's order book.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BookArgs {
    /// The venue: binanceus, coinbase or oanda (see list_venues).
    pub venue: String,
    /// The instrument as BASE-QUOTE, e.g. BTC-USD.
    pub instrument: String,
    /// Price levels per side, 1 to 100; 10 when omitted.
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub depth: Option<u32>,
}

/// A venue and, optionally, one instrument.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaybeInstrumentArgs {
    /// The venue: binanceus, coinbase or oanda (see list_venues).
    pub venue: String,
    /// The instrument as BASE-QUOTE; every configured instrument when omitted.
    #[serde(default)]
    pub instrument: Option<String>,
}

/// One order.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRefArgs {
    /// The venue: binanceus, coinbase or oanda.
    pub venue: String,
    /// The instrument as BASE-QUOTE.
    pub instrument: String,
    /// The order's client order id, as place_order or list_open_orders returned it.
    pub client_order_id: String,
}

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Buy the base asset.
    Buy,
    /// Sell the base asset.
    Sell,
}

/// Market or limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderType {
    /// Execute now at the best available price.
    Market,
    /// Execute at `price` or better.
    Limit,
}

/// How long a limit order works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TimeInForce {
    /// Good till cancelled.
    Gtc,
    /// Immediate or cancel.
    Ioc,
    /// Fill or kill.
    Fok,
}

/// A new order.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderArgs {
    /// The venue: binanceus, coinbase or oanda (see list_venues).
    pub venue: String,
    /// The instrument as BASE-QUOTE, e.g. BTC-USD.
    pub instrument: String,
    /// buy or sell.
    pub side: Side,
    /// market or limit.
    #[serde(rename = "type")]
    #[schemars(rename = "type")]
    pub order_type: OrderType,
    /// Quantity of the base asset as a decimal string greater than zero, e.g. "0.01".
    pub qty: String,
    /// Limit price in the quote currency as a decimal string, e.g. "64250.5". Required
    /// for limit orders, omitted for market orders.
    #[serde(default)]
    pub price: Option<String>,
    /// gtc, ioc or fok; gtc for limit orders and ioc for market orders when omitted.
    #[serde(default)]
    pub time_in_force: Option<TimeInForce>,
    /// Your own id for the order (1-36 of A-Z a-z 0-9 . _ : -). Sending the same id
    /// again returns the existing order instead of placing a second one. A fresh id is
    /// made when omitted.
    #[serde(default)]
    pub client_order_id: Option<String>,
}

/// A validated [`PlaceOrderArgs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderIntent {
    /// The venue.
    pub venue: String,
    /// BASE-QUOTE.
    pub instrument: String,
    /// Buy or sell.
    pub side: Side,
    /// Market or limit.
    pub order_type: OrderType,
    /// Above zero.
    pub qty: Decimal,
    /// Above zero; set exactly for limit orders.
    pub price: Option<Decimal>,
    /// As given.
    pub time_in_force: Option<TimeInForce>,
    /// As given.
    pub client_order_id: Option<String>,
}

impl PlaceOrderArgs {
    /// Checks the decimals and the price/type pairing.
    ///
    /// # Errors
    /// [`ArgError`] naming the field.
    pub fn validate(self) -> Result<OrderIntent, ArgError> {
        let qty = positive("qty", &self.qty)?;
        let price = self
            .price
            .as_deref()
            .map(|p| positive("price", p))
            .transpose()?;
        match (self.order_type, price) {
            (OrderType::Limit, None) => {
                return Err(ArgError(
                    "price: required for a limit order (a decimal string)".to_owned(),
                ));
            }
            (OrderType::Market, Some(_)) => {
                return Err(ArgError(
                    "price: a market order takes no price; omit it or use type=limit".to_owned(),
                ));
            }
            _ => {}
        }
        Ok(OrderIntent {
            venue: self.venue,
            instrument: self.instrument,
            side: self.side,
            order_type: self.order_type,
            qty,
            price,
            time_in_force: self.time_in_force,
            client_order_id: self.client_order_id,
        })
    }
}

/// Flatten positions.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClosePositionsArgs {
    /// The venue: binanceus, coinbase or oanda.
    pub venue: String,
    /// Instruments (BASE-QUOTE) to flatten; every configured instrument when omitted.
    #[serde(default)]
    pub instruments: Vec<String>,
    /// Must be true: closing sells holdings (or buys back shorts) at market, and is never
    /// implied.
    #[serde(default)]
    pub confirm: bool,
}

/// Which signals.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalsArgs {
    /// Instruments as BASE-QUOTE or venue:BASE-QUOTE; every instrument when omitted.
    #[serde(default)]
    pub instruments: Vec<String>,
    /// At most this many signals, newest first, 1 to 500; all when omitted.
    #[serde(default)]
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn wrong_types_name_the_field() {
        let e = parse::<PlaceOrderArgs>(Some(&obj(json!({
            "venue": "binanceus", "instrument": "BTC-USD", "side": "buy", "type": "market",
            "qty": 1
        }))))
        .unwrap_err();
        assert!(e.0.starts_with("qty: invalid type"), "{e}");
    }

    #[test]
    fn extra_fields_are_refused_by_name() {
        let e = parse::<InstrumentArgs>(Some(&obj(json!({
            "venue": "binanceus", "instrument": "BTC-USD", "leverage": "100"
        }))))
        .unwrap_err();
        assert!(e.0.contains("unknown field `leverage`"), "{e}");
    }

    #[test]
    fn long_strings_are_refused_before_parsing() {
        let e = parse::<InstrumentArgs>(Some(&obj(json!({
            "venue": "binanceus", "instrument": "X".repeat(100_000)
        }))))
        .unwrap_err();
        assert!(
            e.0.starts_with("instrument: a string of 100000 bytes"),
            "{e}"
        );
    }

    #[test]
    fn quantities_must_be_positive_decimals() {
        let args = |qty: &str| PlaceOrderArgs {
            venue: "binanceus".into(),
            instrument: "BTC-USD".into(),
            side: Side::Buy,
            order_type: OrderType::Market,
            qty: qty.into(),
            price: None,
            time_in_force: None,
            client_order_id: None,
        };
        assert!(
            args("-1")
                .validate()
                .unwrap_err()
                .0
                .contains("greater than zero")
        );
        assert!(
            args("0")
                .validate()
                .unwrap_err()
                .0
                .contains("greater than zero")
        );
        assert!(
            args("1e5x")
                .validate()
                .unwrap_err()
                .0
                .contains("not a decimal")
        );
        assert_eq!(args("0.5").validate().unwrap().qty, Decimal::new(5, 1));
    }

    #[test]
    fn schemas_forbid_additional_properties() {
        let schema = serde_json::to_value(schemars::schema_for!(PlaceOrderArgs)).unwrap();
        assert_eq!(schema["additionalProperties"], json!(false));
        assert!(schema["properties"]["type"].is_object(), "{schema}");
    }
}
