//! [`VenueCaps`]: what a venue is, declared once by its adapter.
//!
//! The engine never branches on a venue's name. Where venues differ in a way that
//! changes the engine's behaviour (how books arrive, whether positions are native, how
//! long an order can stay invisible after a lost submit answer) the adapter declares it
//! here and the engine follows the declaration.

use std::time::Duration;

/// How a venue publishes its order book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookFeed {
    /// No order book (OANDA: prices only). The engine keeps no local book and market data
    /// readiness rests on quotes alone.
    None,
    /// A REST snapshot plus numbered diffs on the stream (Binance `depth` + `depthUpdate`).
    /// The adapter aligns them and emits a [`crate::BookUpdate::Snapshot`] then deltas.
    SnapshotPlusDiffs,
    /// The stream itself opens with a snapshot, then updates (Coinbase `level2`).
    InBandSnapshot,
    /// Only the top levels are published, each message replacing the last (a snapshot
    /// every time, no deltas).
    TopLevels,
}

/// How a venue accounts for holdings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountModel {
    /// Spot: a position is the base-asset balance; flattening a long is a market sell.
    Spot,
    /// Margin with native, signed positions (OANDA units), closed through the venue.
    Margin,
}

/// What a venue is, as far as the engine cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VenueCaps {
    /// How the book arrives.
    pub book_feed: BookFeed,
    /// Spot or margin.
    pub account: AccountModel,
    /// After a lost submit answer, how long until "the venue does not know this client
    /// id" proves the order was never placed.
    ///
    /// `Some(d)` where the venue guarantees it: Binance refuses a request older than
    /// `recvWindow`, so after `recvWindow + margin` a late arrival is impossible.
    /// `None` where no such guarantee exists: the engine never concludes "not placed" by
    /// time alone and keeps the order in flight (querying it) under its own policy.
    pub unknown_order_horizon: Option<Duration>,
    /// The venue closes a position in one call ([`crate::VenueAdapter::close_position`]).
    pub native_close_position: bool,
    /// The venue cancels every open order of an instrument in one call.
    pub native_cancel_all: bool,
}

impl VenueCaps {
    /// A spot venue with REST snapshot plus diffs and no horizon: the conservative base
    /// an adapter adjusts.
    #[must_use]
    pub const fn spot() -> Self {
        Self {
            book_feed: BookFeed::SnapshotPlusDiffs,
            account: AccountModel::Spot,
            unknown_order_horizon: None,
            native_close_position: false,
            native_cancel_all: false,
        }
    }
}
