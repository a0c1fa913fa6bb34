//! Coinbase enumerations as they appear on the wire, each with a catch-all so a value the
//! venue adds later is reported rather than failing the whole message.

use gekko_core::{OrderStatus, Side};
use serde::{Deserialize, Serialize};

/// Order `status` (REST `Order.status`, websocket `user` order `status`).
///
/// The reference (1.3) lists `PENDING`, `OPEN`, `FILLED`, `CANCELLED`, `EXPIRED`,
/// `FAILED`, `UNKNOWN_ORDER_STATUS`, `QUEUED` and `CANCEL_QUEUED`; Coinbase spells
/// `CANCELLED` with two Ls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CoinbaseOrderStatus {
    /// Accepted, not yet on the book.
    Pending,
    /// Waiting to be placed (e.g. during an auction).
    Queued,
    /// On the book (possibly partly filled).
    Open,
    /// A cancel was requested and has not yet taken effect: the order may still fill.
    CancelQueued,
    /// Completely filled.
    Filled,
    /// Cancelled (possibly after partial fills; also an IOC/market remainder).
    Cancelled,
    /// Ended by its time in force (GTD end time, FOK/IOC without a fill).
    Expired,
    /// Refused by the venue after acceptance.
    Failed,
    /// The venue's own "unknown" value.
    UnknownOrderStatus,
    /// A value this version does not know.
    #[serde(other)]
    Unknown,
}

impl CoinbaseOrderStatus {
    /// The status of a wire string; [`CoinbaseOrderStatus::Unknown`] for anything else.
    #[must_use]
    pub fn from_wire(s: &str) -> Self {
        match s {
            "PENDING" => Self::Pending,
            "QUEUED" => Self::Queued,
            "OPEN" => Self::Open,
            "CANCEL_QUEUED" => Self::CancelQueued,
            "FILLED" => Self::Filled,
            "CANCELLED" => Self::Cancelled,
            "EXPIRED" => Self::Expired,
            "FAILED" => Self::Failed,
            "UNKNOWN_ORDER_STATUS" => Self::UnknownOrderStatus,
            _ => Self::Unknown,
        }
    }

    /// gekko's status, given how much has filled; `None` when the venue itself does not
    /// know ([`Self::UnknownOrderStatus`], [`Self::Unknown`]).
    ///
    /// Coinbase has no "partially filled" status: a working order with a fill is `OPEN`,
    /// so the filled quantity decides between `New` and `PartiallyFilled`. A queued cancel
    /// is still working (it can fill until the cancel lands), so it maps the same way.
    #[must_use]
    pub fn to_core(self, partly_filled: bool) -> Option<OrderStatus> {
        Some(match self {
            Self::Pending | Self::Queued | Self::Open | Self::CancelQueued => {
                if partly_filled {
                    OrderStatus::PartiallyFilled
                } else {
                    OrderStatus::New
                }
            }
            Self::Filled => OrderStatus::Filled,
            Self::Cancelled => OrderStatus::Cancelled,
            Self::Expired => OrderStatus::Expired,
            Self::Failed => OrderStatus::Rejected,
            Self::UnknownOrderStatus | Self::Unknown => return None,
        })
    }

    /// The wire value (the order-status filter of `orders/historical/batch`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Queued => "QUEUED",
            Self::Open => "OPEN",
            Self::CancelQueued => "CANCEL_QUEUED",
            Self::Filled => "FILLED",
            Self::Cancelled => "CANCELLED",
            Self::Expired => "EXPIRED",
            Self::Failed => "FAILED",
            Self::UnknownOrderStatus | Self::Unknown => "UNKNOWN_ORDER_STATUS",
        }
    }
}

/// Order `side` (REST) / `order_side` (websocket `user`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CoinbaseSide {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
}

impl CoinbaseSide {
    /// The side of a wire string (`BUY`/`SELL`; the websocket has been seen in lower
    /// case, so the match ignores case); `None` for anything else.
    #[must_use]
    pub fn from_wire(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("BUY") {
            Some(Self::Buy)
        } else if s.eq_ignore_ascii_case("SELL") {
            Some(Self::Sell)
        } else {
            None
        }
    }

    /// gekko's side.
    #[must_use]
    pub const fn to_core(self) -> Side {
        match self {
            Self::Buy => Side::Buy,
            Self::Sell => Side::Sell,
        }
    }

    /// The wire value for gekko's side.
    #[must_use]
    pub const fn from_core(side: Side) -> &'static str {
        match side {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_core() {
        let core = |s: &str, filled| CoinbaseOrderStatus::from_wire(s).to_core(filled);
        assert_eq!(core("OPEN", false), Some(OrderStatus::New));
        assert_eq!(core("OPEN", true), Some(OrderStatus::PartiallyFilled));
        assert_eq!(core("PENDING", false), Some(OrderStatus::New));
        assert_eq!(core("QUEUED", false), Some(OrderStatus::New));
        assert_eq!(
            core("CANCEL_QUEUED", true),
            Some(OrderStatus::PartiallyFilled)
        );
        assert_eq!(core("FILLED", true), Some(OrderStatus::Filled));
        assert_eq!(core("CANCELLED", true), Some(OrderStatus::Cancelled));
        assert_eq!(core("EXPIRED", false), Some(OrderStatus::Expired));
        assert_eq!(core("FAILED", false), Some(OrderStatus::Rejected));
        assert_eq!(core("UNKNOWN_ORDER_STATUS", false), None);
        assert_eq!(core("CANCELED", false), None);
        let parsed: CoinbaseOrderStatus = serde_json::from_str("\"SOMETHING_NEW\"").unwrap();
        assert_eq!(parsed, CoinbaseOrderStatus::Unknown);
        let parsed: CoinbaseOrderStatus = serde_json::from_str("\"CANCEL_QUEUED\"").unwrap();
        assert_eq!(parsed.as_str(), "CANCEL_QUEUED");
    }

    #[test]
    fn sides() {
        assert_eq!(
            CoinbaseSide::from_wire("BUY").map(CoinbaseSide::to_core),
            Some(Side::Buy)
        );
        assert_eq!(
            CoinbaseSide::from_wire("sell").map(CoinbaseSide::to_core),
            Some(Side::Sell)
        );
        assert_eq!(CoinbaseSide::from_wire("HOLD"), None);
        assert_eq!(CoinbaseSide::from_core(Side::Sell), "SELL");
    }
}
