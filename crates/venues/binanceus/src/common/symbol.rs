//! Symbol mapping: gekko `InstrumentId{base: BTC, quote: USD}` ↔ Binance.US `BTCUSD`.
//!
//! Binance symbols are plain concatenations, so going back needs to know where the base
//! ends. The authoritative answer is `exchangeInfo` (`baseAsset`/`quoteAsset`), which the
//! adapter caches; [`split_venue_symbol`] is the fallback for symbols seen before that, by
//! longest known quote suffix.

use gekko_core::{InstrumentId, VenueId};

/// Quote assets listed on Binance.US, longest first so `USDT` wins over `USD`.
const KNOWN_QUOTES: [&str; 10] = [
    "USDT", "USDC", "BUSD", "USD4", "USD", "DAI", "BTC", "ETH", "BNB", "EUR",
];

/// `BTCUSD` for BTC/USD.
#[must_use]
pub fn venue_symbol(id: &InstrumentId) -> String {
    let mut s = String::with_capacity(id.base.len() + id.quote.len());
    s.push_str(&id.base);
    s.push_str(&id.quote);
    s.make_ascii_uppercase();
    s
}

/// `btcusd`: stream names use lower case.
#[must_use]
pub fn stream_symbol(id: &InstrumentId) -> String {
    venue_symbol(id).to_ascii_lowercase()
}

/// Splits `BTCUSDT` into BTC/USDT by the longest known quote suffix; `None` when no known
/// quote matches or the base would be empty.
#[must_use]
pub fn split_venue_symbol(symbol: &str) -> Option<InstrumentId> {
    let upper = symbol.to_ascii_uppercase();
    if !upper.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    KNOWN_QUOTES.iter().find_map(|q| {
        let base = upper.strip_suffix(q)?;
        (!base.is_empty()).then(|| InstrumentId::new(VenueId::BinanceUs, base, q))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let id = InstrumentId::new(VenueId::BinanceUs, "btc", "usd");
        assert_eq!(venue_symbol(&id), "BTCUSD");
        assert_eq!(stream_symbol(&id), "btcusd");
        assert_eq!(split_venue_symbol("BTCUSD"), Some(id));
        assert_eq!(split_venue_symbol("ethusdt").unwrap().quote, "USDT");
        assert_eq!(split_venue_symbol("ETHBTC").unwrap().base, "ETH");
        assert_eq!(split_venue_symbol("USD"), None);
        assert_eq!(split_venue_symbol("XYZ"), None);
        assert_eq!(split_venue_symbol("BT C/USD"), None);
    }
}
