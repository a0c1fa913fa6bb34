//! Instrument names: gekko `InstrumentId{base: EUR, quote: USD}` ↔ OANDA `EUR_USD`.
//!
//! OANDA joins base and quote with an underscore (reference §3.2); gekko's canonical pair
//! is `EUR-USD`. Both parts are kept verbatim apart from upper-casing, so metals and CFDs
//! (`XAU_USD`, `SPX500_USD`) map the same way.

use gekko_core::{InstrumentId, VenueId};

/// `EUR_USD` for EUR/USD (upper case, whatever the id holds).
#[must_use]
pub fn instrument_name(i: &InstrumentId) -> String {
    let mut s = String::with_capacity(i.base.len() + i.quote.len() + 1);
    s.push_str(&i.base);
    s.push('_');
    s.push_str(&i.quote);
    s.make_ascii_uppercase();
    s
}

/// The OANDA instrument of a wire name (`EUR_USD`, case-insensitive); `None` unless it is
/// two non-empty alphanumeric parts around one `_`.
#[must_use]
pub fn instrument(name: &str) -> Option<InstrumentId> {
    let (base, quote) = name.split_once('_')?;
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric());
    (ok(base) && ok(quote)).then(|| InstrumentId::new(VenueId::Oanda, base, quote))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let id = InstrumentId::new(VenueId::Oanda, "eur", "usd");
        assert_eq!(instrument_name(&id), "EUR_USD");
        assert_eq!(instrument("EUR_USD"), Some(id.clone()));
        assert_eq!(instrument("eur_usd"), Some(id));
        assert_eq!(instrument("SPX500_USD").unwrap().base, "SPX500");
        for bad in [
            "EURUSD",
            "_USD",
            "EUR_",
            "EUR_USD_X",
            "EUR-USD",
            "",
            "E R_USD",
        ] {
            assert_eq!(instrument(bad), None, "{bad}");
        }
    }
}
