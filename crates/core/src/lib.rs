//! Domain types shared by every gekko crate.
//!
//! Everything here is plain data: no I/O, no async. Prices and quantities are
//! [`rust_decimal::Decimal`] and serialise as JSON strings, so a venue decimal never passes
//! through binary floating point on its way from the wire to a decision and back.

pub mod account;
pub mod backoff;
pub mod calendar;
pub mod host;
pub mod ids;
pub mod market;
pub mod order;
pub mod sync;

pub use account::{Balance, Position};
pub use ids::{ClientOrderId, InstrumentId, ParseError, VenueId};
pub use market::{BookLevel, BookSnapshot, Direction, Quote, Signal, Trade};
pub use order::{Fill, Order, OrderRequest, OrderStatus, OrderType, Side, TimeInForce};

/// Prices and quantities. An alias so signatures say what they carry.
pub type Price = rust_decimal::Decimal;
/// Quantities in base units.
pub type Qty = rust_decimal::Decimal;

/// Milliseconds since the Unix epoch, the unit every venue gekko speaks uses on the wire.
pub type TimestampMs = i64;

/// The current wall-clock time in milliseconds since the Unix epoch.
#[must_use]
pub fn now_ms() -> TimestampMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
