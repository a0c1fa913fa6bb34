//! Identifiers: venues, instruments and client order ids.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A string could not be parsed into one of the identifier types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: expected {expected}")]
pub struct ParseError {
    /// What was being parsed ("venue", "instrument", ...).
    pub kind: &'static str,
    /// The offending input.
    pub value: String,
    /// What would have been accepted.
    pub expected: &'static str,
}

/// The venues gekko can trade on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VenueId {
    /// Coinbase Advanced Trade.
    Coinbase,
    /// Binance.US spot.
    BinanceUs,
    /// OANDA v20.
    Oanda,
}

impl VenueId {
    /// Every venue, in a stable order.
    pub const ALL: [VenueId; 3] = [VenueId::Coinbase, VenueId::BinanceUs, VenueId::Oanda];

    /// The lower-case name used in config, stream names and metrics labels.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            VenueId::Coinbase => "coinbase",
            VenueId::BinanceUs => "binanceus",
            VenueId::Oanda => "oanda",
        }
    }
}

impl fmt::Display for VenueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VenueId {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "coinbase" => Ok(VenueId::Coinbase),
            "binanceus" => Ok(VenueId::BinanceUs),
            "oanda" => Ok(VenueId::Oanda),
            _ => Err(ParseError {
                kind: "venue",
                value: s.to_owned(),
                expected: "one of coinbase, binanceus, oanda",
            }),
        }
    }
}

/// A tradable instrument in gekko's canonical form: a venue plus `BASE-QUOTE`.
///
/// Venue crates map this to and from their own symbols (`BTCUSD`, `BTC-USD`, `EUR_USD`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InstrumentId {
    /// Where it trades.
    pub venue: VenueId,
    /// Base asset, upper case (`BTC`).
    pub base: String,
    /// Quote asset, upper case (`USD`).
    pub quote: String,
}

impl InstrumentId {
    /// Builds an instrument id; assets are upper-cased.
    #[must_use]
    pub fn new(venue: VenueId, base: &str, quote: &str) -> Self {
        Self {
            venue,
            base: base.to_ascii_uppercase(),
            quote: quote.to_ascii_uppercase(),
        }
    }

    /// The canonical pair, `BASE-QUOTE`.
    #[must_use]
    pub fn pair(&self) -> String {
        format!("{}-{}", self.base, self.quote)
    }

    /// Parses `BASE-QUOTE` for the given venue.
    ///
    /// # Errors
    /// Returns [`ParseError`] unless the input is two non-empty alphanumeric parts around one `-`.
    pub fn parse_pair(venue: VenueId, pair: &str) -> Result<Self, ParseError> {
        let err = || ParseError {
            kind: "instrument",
            value: pair.to_owned(),
            expected: "BASE-QUOTE, e.g. BTC-USD",
        };
        let (base, quote) = pair.split_once('-').ok_or_else(err)?;
        let ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric());
        if !ok(base) || !ok(quote) {
            return Err(err());
        }
        Ok(Self::new(venue, base, quote))
    }
}

impl fmt::Display for InstrumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}-{}", self.venue, self.base, self.quote)
    }
}

/// A client order id: gekko's own name for an order, sent to the venue.
///
/// It is *deterministic*: derived from the strategy's intent (who, what, and a
/// caller-chosen sequence number), so that a restarted process that re-derives the same
/// intent gets the same id, and the venue's duplicate-id check turns a would-be double
/// submit into a harmless rejection. It is persisted on the order stream before the
/// request leaves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientOrderId(String);

impl ClientOrderId {
    /// The longest id accepted: Binance.US allows 36 characters, the tightest of the venues.
    pub const MAX_LEN: usize = 36;

    /// Derives an id from a namespace (strategy or account), the instrument and a sequence.
    ///
    /// Format: `gk` + 32 hex chars of SHA-256 over the inputs. 34 characters, within every
    /// venue's limit and alphabet.
    #[must_use]
    pub fn derive(namespace: &str, instrument: &InstrumentId, seq: u64) -> Self {
        let mut h = Sha256::new();
        h.update(namespace.as_bytes());
        h.update([0]);
        h.update(instrument.to_string().as_bytes());
        h.update([0]);
        h.update(seq.to_be_bytes());
        let digest = h.finalize();
        Self(format!("gk{}", hex::encode(&digest[..16])))
    }

    /// Wraps an id that came from elsewhere (a venue report, a user request).
    ///
    /// # Errors
    /// Returns [`ParseError`] if the id is empty, longer than [`Self::MAX_LEN`], or holds
    /// characters outside `[A-Za-z0-9._:-]`.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let valid = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError {
                kind: "client order id",
                value: s.to_owned(),
                expected: "1-36 characters of [A-Za-z0-9._:-]",
            })
        }
    }

    /// The id as sent on the wire.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientOrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn venue_round_trips() {
        for v in VenueId::ALL {
            assert_eq!(v.as_str().parse::<VenueId>().unwrap(), v);
        }
        assert!("binance".parse::<VenueId>().is_err());
    }

    #[test]
    fn client_order_id_is_deterministic_and_valid() {
        let i = InstrumentId::new(VenueId::BinanceUs, "btc", "usd");
        let a = ClientOrderId::derive("strat-1", &i, 7);
        assert_eq!(a, ClientOrderId::derive("strat-1", &i, 7));
        assert_ne!(a, ClientOrderId::derive("strat-1", &i, 8));
        assert_ne!(a, ClientOrderId::derive("strat-2", &i, 7));
        assert_eq!(ClientOrderId::parse(a.as_str()).unwrap(), a);
        assert!(a.as_str().len() <= ClientOrderId::MAX_LEN);
    }

    #[test]
    fn client_order_id_rejects_bad_input() {
        assert!(ClientOrderId::parse("").is_err());
        assert!(ClientOrderId::parse("has space").is_err());
        assert!(ClientOrderId::parse(&"x".repeat(37)).is_err());
    }

    #[test]
    fn pairs_parse() {
        let i = InstrumentId::parse_pair(VenueId::Oanda, "EUR-USD").unwrap();
        assert_eq!(i.pair(), "EUR-USD");
        assert!(InstrumentId::parse_pair(VenueId::Oanda, "EURUSD").is_err());
        assert!(InstrumentId::parse_pair(VenueId::Oanda, "-USD").is_err());
    }
}
