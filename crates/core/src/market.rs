//! Market data: top of book, trades and order-book levels.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{InstrumentId, Side, TimestampMs};

/// Best bid and ask at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// The instrument quoted.
    pub instrument: InstrumentId,
    /// Best bid price.
    pub bid: Decimal,
    /// Size at the best bid.
    pub bid_size: Decimal,
    /// Best ask price.
    pub ask: Decimal,
    /// Size at the best ask.
    pub ask_size: Decimal,
    /// Venue event time, or receive time where the venue gives none.
    pub ts_ms: TimestampMs,
}

impl Quote {
    /// Mid price, `(bid + ask) / 2`.
    #[must_use]
    pub fn mid(&self) -> Decimal {
        (self.bid + self.ask) / Decimal::TWO
    }

    /// Spread, `ask - bid`.
    #[must_use]
    pub fn spread(&self) -> Decimal {
        self.ask - self.bid
    }
}

/// One public trade print.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    /// The instrument traded.
    pub instrument: InstrumentId,
    /// Venue trade id.
    pub trade_id: String,
    /// Trade price.
    pub price: Decimal,
    /// Trade size.
    pub qty: Decimal,
    /// The aggressor's side.
    pub taker_side: Side,
    /// Venue event time.
    pub ts_ms: TimestampMs,
}

/// One price level of a book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookLevel {
    /// Level price.
    pub price: Decimal,
    /// Total size resting at the price.
    pub qty: Decimal,
}

/// A full or partial order book at a venue sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookSnapshot {
    /// The instrument.
    pub instrument: InstrumentId,
    /// Venue sequence (Binance `lastUpdateId`).
    pub sequence: u64,
    /// Bids, best (highest) first.
    pub bids: Vec<BookLevel>,
    /// Asks, best (lowest) first.
    pub asks: Vec<BookLevel>,
    /// Time the snapshot was taken.
    pub ts_ms: TimestampMs,
}

/// Which way a model expects the mid price to move over its horizon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Up.
    Up,
    /// Down.
    Down,
}

/// A model's prediction for one instrument, as published on `gekko:{signals}`.
///
/// Probabilities are `f32`: they are model outputs, not money.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// The instrument predicted.
    pub instrument: InstrumentId,
    /// Model name.
    pub model: String,
    /// Model version that produced it.
    pub version: u64,
    /// Predicted direction.
    pub direction: Direction,
    /// Probability of an up move.
    pub p_up: f32,
    /// `max(p_up, 1 - p_up)`.
    pub confidence: f32,
    /// Prediction horizon in quotes.
    pub horizon: u32,
    /// From the quote's arrival to the prediction, in microseconds.
    pub latency_us: u64,
    /// Time of the quote that completed the feature window.
    pub quote_ts_ms: TimestampMs,
}
