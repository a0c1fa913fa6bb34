//! Why the engine refused a request, in venue-neutral terms.
//!
//! The engine decides *that* and *why* a request fails; how the failure is spelled on the
//! wire (Binance's `-2010 Account has insufficient balance...`, a Coinbase
//! `INSUFFICIENT_FUND`, an OANDA `rejectReason`) is the protocol module's business. Each
//! reason is therefore a plain enum variant, and every protocol maps every variant,
//! which the compiler checks for it.

use std::fmt;

/// Which of an instrument's trading rules an order broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterKind {
    /// The price is off the tick grid or outside the allowed range (Binance's
    /// `PRICE_FILTER`).
    Price,
    /// The quantity is off the step grid or outside the allowed range (`LOT_SIZE`).
    LotSize,
    /// Price times quantity is below the minimum notional (`MIN_NOTIONAL`).
    MinNotional,
}

/// A refused engine request. Nothing is changed when the engine answers with one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reject {
    /// The instrument name is not one the engine trades.
    UnknownInstrument,
    /// An instrument rule rejected the order.
    Filter(FilterKind),
    /// A MARKET order named neither a base nor a quote quantity.
    MissingQuantity,
    /// The client order id equals that of one of the account's open orders.
    DuplicateClientOrderId,
    /// The account cannot pay for the order.
    InsufficientBalance,
    /// No such order exists for this account and instrument (queries).
    UnknownOrder,
    /// The order exists but is no longer open (cancels).
    OrderNotOpen,
    /// An internal inconsistency (never a panic); a protocol answers "unknown error".
    Internal,
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::UnknownInstrument => "unknown instrument",
            Self::Filter(FilterKind::Price) => "price filter failure",
            Self::Filter(FilterKind::LotSize) => "lot size filter failure",
            Self::Filter(FilterKind::MinNotional) => "minimum notional filter failure",
            Self::MissingQuantity => "missing quantity",
            Self::DuplicateClientOrderId => "duplicate client order id",
            Self::InsufficientBalance => "insufficient balance",
            Self::UnknownOrder => "unknown order",
            Self::OrderNotOpen => "order not open",
            Self::Internal => "internal error",
        };
        f.write_str(s)
    }
}

impl std::error::Error for Reject {}
