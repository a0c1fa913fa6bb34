//! Symbol mapping: gekko `InstrumentId{base: BTC, quote: USD}` ↔ Coinbase `BTC-USD`.
//!
//! Coinbase product ids are already `BASE-QUOTE`, so unlike Binance's concatenated
//! symbols the mapping needs no table of known quotes: it is gekko's canonical pair.

use gekko_core::{InstrumentId, VenueId};

/// `BTC-USD` for BTC/USD (upper case, whatever the id holds).
#[must_use]
pub fn product_id(i: &InstrumentId) -> String {
    let mut s = String::with_capacity(i.base.len() + i.quote.len() + 1);
    s.push_str(&i.base);
    s.push('-');
    s.push_str(&i.quote);
    s.make_ascii_uppercase();
    s
}

/// The Coinbase instrument of a product id (`BTC-USD`, case-insensitive); `None` unless
/// it is two non-empty alphanumeric parts around one `-` (futures ids such as
/// `BIT-28JUL23-CDE` are not spot instruments and are refused).
#[must_use]
pub fn instrument(product_id: &str) -> Option<InstrumentId> {
    InstrumentId::parse_pair(VenueId::Coinbase, product_id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let id = InstrumentId::new(VenueId::Coinbase, "btc", "usd");
        assert_eq!(product_id(&id), "BTC-USD");
        assert_eq!(instrument("BTC-USD"), Some(id.clone()));
        assert_eq!(instrument("btc-usd"), Some(id));
        assert_eq!(instrument("ETH-USDC").unwrap().quote, "USDC");
        for bad in [
            "BTCUSD",
            "-USD",
            "BTC-",
            "BTC-USD-X",
            "BIT-28JUL23-CDE",
            "",
            "B C-USD",
        ] {
            assert_eq!(instrument(bad), None, "{bad}");
        }
    }
}
