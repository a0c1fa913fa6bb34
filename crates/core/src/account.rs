//! Account state: balances and positions.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{InstrumentId, VenueId};

/// Holdings of one asset at one venue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// The venue.
    pub venue: VenueId,
    /// Asset code, upper case.
    pub asset: String,
    /// Available to trade.
    pub free: Decimal,
    /// Held by open orders.
    pub locked: Decimal,
}

impl Balance {
    /// `free + locked`.
    #[must_use]
    pub fn total(&self) -> Decimal {
        self.free + self.locked
    }
}

/// A net position in one instrument. Positive is long, negative is short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The instrument.
    pub instrument: InstrumentId,
    /// Signed quantity.
    pub qty: Decimal,
    /// Average entry price, if known.
    pub avg_price: Option<Decimal>,
    /// Unrealised profit and loss in the quote currency, if known.
    pub unrealized_pnl: Option<Decimal>,
}
