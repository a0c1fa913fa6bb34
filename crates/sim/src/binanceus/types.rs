//! The engine's order and fill types as Binance.US spells them.
//!
//! The types themselves are the engine's (every simulator shares them) and are
//! re-exported from [`super`] under their historical paths; what is Binance's is the
//! *spelling*: `as_str` gives the exact wire strings (`BUY`, `LIMIT`, `GTC`, `CANCELED`
//! with one L), so an assertion like "the venue holds one FILLED order" reads the same as
//! the venue documentation.

pub use crate::engine::{
    BookSnapshot, Level, SimFill, SimOrder, SimOrderStatus, SimOrderType, SimSide, SimTimeInForce,
};
pub use crate::harness::SimStats;

impl SimSide {
    /// The wire string.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Buy => "BUY",
            Self::Sell => "SELL",
        }
    }
}

impl SimOrderType {
    /// The wire string.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Limit => "LIMIT",
            Self::Market => "MARKET",
        }
    }
}

impl SimTimeInForce {
    /// The wire string.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gtc => "GTC",
            Self::Ioc => "IOC",
            Self::Fok => "FOK",
        }
    }
}

impl SimOrderStatus {
    /// The wire string.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "NEW",
            Self::PartiallyFilled => "PARTIALLY_FILLED",
            Self::Filled => "FILLED",
            Self::Canceled => "CANCELED",
            Self::Expired => "EXPIRED",
            Self::Rejected => "REJECTED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_strings_match_serde() {
        for s in [
            SimOrderStatus::New,
            SimOrderStatus::PartiallyFilled,
            SimOrderStatus::Filled,
            SimOrderStatus::Canceled,
            SimOrderStatus::Expired,
            SimOrderStatus::Rejected,
        ] {
            let json = serde_json::to_string(&s).expect("ser");
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        assert_eq!(SimSide::Sell.as_str(), "SELL");
        assert_eq!(SimOrderType::Market.as_str(), "MARKET");
        assert_eq!(SimTimeInForce::Fok.as_str(), "FOK");
    }
}
