//! [`InstrumentInfo`]: a venue's trading rules for one instrument.

use gekko_core::InstrumentId;
use rust_decimal::Decimal;

/// A venue's trading rules for one instrument (Binance `exchangeInfo` filters, Coinbase
/// product increments, OANDA instrument precision).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstrumentInfo {
    /// gekko's id.
    pub id: InstrumentId,
    /// The venue's symbol (`BTCUSD`, `BTC-USD`, `EUR_USD`).
    pub venue_symbol: String,
    /// Price increment; prices must be multiples of it (0 = unchecked).
    pub tick_size: Decimal,
    /// Quantity increment (0 = unchecked).
    pub lot_size: Decimal,
    /// Smallest quantity (0 = unchecked).
    pub min_qty: Decimal,
    /// Largest quantity (0 = unchecked).
    pub max_qty: Decimal,
    /// Smallest `price * qty` (0 = unchecked).
    pub min_notional: Decimal,
    /// Whether the venue currently accepts orders.
    pub trading: bool,
}
