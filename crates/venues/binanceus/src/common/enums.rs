//! Binance.US enumerations as they appear on the wire, each with a catch-all so an enum
//! value added by the venue is reported rather than failing the whole message.

use serde::{Deserialize, Serialize};

/// Order status (`status`, `X`). Note the venue spells `CANCELED` with one L.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BinanceUsOrderStatus {
    /// Accepted by the engine.
    New,
    /// Partly filled.
    PartiallyFilled,
    /// Fully filled.
    Filled,
    /// Cancelled by the user.
    Canceled,
    /// Currently unused by the venue.
    PendingCancel,
    /// Not accepted by the engine.
    Rejected,
    /// Cancelled by the engine (IOC/FOK, maintenance).
    Expired,
    /// Expired by self-trade prevention.
    ExpiredInMatch,
    /// A value this version does not know.
    #[serde(other)]
    Unknown,
}

impl BinanceUsOrderStatus {
    /// gekko's status; `None` for [`BinanceUsOrderStatus::Unknown`].
    #[must_use]
    pub fn to_core(self) -> Option<gekko_core::OrderStatus> {
        use gekko_core::OrderStatus as S;
        Some(match self {
            // PENDING_CANCEL is documented as unused; the order is still on the book.
            Self::New | Self::PendingCancel => S::New,
            Self::PartiallyFilled => S::PartiallyFilled,
            Self::Filled => S::Filled,
            Self::Canceled => S::Cancelled,
            Self::Rejected => S::Rejected,
            Self::Expired | Self::ExpiredInMatch => S::Expired,
            Self::Unknown => return None,
        })
    }
}

/// Order side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum BinanceUsSide {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
}

impl BinanceUsSide {
    /// gekko's side.
    #[must_use]
    pub const fn to_core(self) -> gekko_core::Side {
        match self {
            Self::Buy => gekko_core::Side::Buy,
            Self::Sell => gekko_core::Side::Sell,
        }
    }

    /// The wire value.
    #[must_use]
    pub const fn from_core(side: gekko_core::Side) -> &'static str {
        match side {
            gekko_core::Side::Buy => "BUY",
            gekko_core::Side::Sell => "SELL",
        }
    }
}

/// Order type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BinanceUsOrderType {
    /// Limit.
    Limit,
    /// Market.
    Market,
    /// Post-only limit.
    LimitMaker,
    /// Stop market.
    StopLoss,
    /// Stop limit.
    StopLossLimit,
    /// Take-profit market.
    TakeProfit,
    /// Take-profit limit.
    TakeProfitLimit,
    /// A value this version does not know.
    #[serde(other)]
    Unknown,
}

/// Time in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum BinanceUsTimeInForce {
    /// Good till cancelled.
    Gtc,
    /// Immediate or cancel.
    Ioc,
    /// Fill or kill.
    Fok,
    /// A value this version does not know.
    #[serde(other)]
    Unknown,
}

impl BinanceUsTimeInForce {
    /// The wire value for gekko's time in force. Binance.US has no GTD or GFD: the adapter
    /// refuses those before sending, and this names them as they are (never as GTC).
    #[must_use]
    pub const fn from_core(tif: gekko_core::TimeInForce) -> &'static str {
        tif.as_str()
    }
}

/// Execution type of an `executionReport` (`x`): what just happened to the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BinanceUsExecutionType {
    /// Accepted.
    New,
    /// Cancelled.
    Canceled,
    /// Replaced (cancel-replace).
    Replaced,
    /// Rejected.
    Rejected,
    /// A fill.
    Trade,
    /// Expired.
    Expired,
    /// Self-trade prevention acted.
    TradePrevention,
    /// A value this version does not know.
    #[serde(other)]
    Unknown,
}

#[cfg(test)]
mod tests {
    use gekko_core::OrderStatus;

    use super::*;

    #[test]
    fn statuses_map_to_core_and_unknown_values_are_caught() {
        let parse =
            |s: &str| serde_json::from_str::<BinanceUsOrderStatus>(&format!("\"{s}\"")).unwrap();
        assert_eq!(parse("CANCELED").to_core(), Some(OrderStatus::Cancelled));
        assert_eq!(
            parse("EXPIRED_IN_MATCH").to_core(),
            Some(OrderStatus::Expired)
        );
        assert_eq!(
            parse("PARTIALLY_FILLED").to_core(),
            Some(OrderStatus::PartiallyFilled)
        );
        assert_eq!(parse("PENDING_CANCEL").to_core(), Some(OrderStatus::New));
        assert_eq!(parse("SOMETHING_NEW"), BinanceUsOrderStatus::Unknown);
        assert_eq!(parse("SOMETHING_NEW").to_core(), None);
        let x: BinanceUsExecutionType = serde_json::from_str("\"TRADE_PREVENTION\"").unwrap();
        assert_eq!(x, BinanceUsExecutionType::TradePrevention);
    }
}
