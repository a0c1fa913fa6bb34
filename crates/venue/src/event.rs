//! Neutral stream events and the venue's view of one order.

use gekko_core::{
    Balance, BookLevel, BookSnapshot, ClientOrderId, Fill, InstrumentId, OrderStatus, Position,
    Quote, Side, Trade,
};
use rust_decimal::Decimal;

/// The venue's view of one order, from a REST answer or a user-stream event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderUpdate {
    /// gekko's client order id.
    pub client_order_id: ClientOrderId,
    /// The venue's order id.
    pub venue_order_id: String,
    /// The instrument.
    pub instrument: InstrumentId,
    /// Side.
    pub side: Side,
    /// Status at the venue.
    pub status: OrderStatus,
    /// Original quantity.
    pub qty: Decimal,
    /// Limit price, if any.
    pub price: Option<Decimal>,
    /// Cumulative filled quantity.
    pub filled_qty: Decimal,
    /// Cumulative quote quantity (for the average price).
    pub cum_quote: Decimal,
    /// The fill this update reports, for user-stream trade events.
    pub last_fill: Option<LastFill>,
    /// Venue event time.
    pub ts_ms: i64,
    /// Reject reason, when rejected.
    pub reject_reason: Option<String>,
}

impl OrderUpdate {
    /// The [`Fill`] this update carries, if any.
    #[must_use]
    pub fn fill(&self) -> Option<Fill> {
        let f = self.last_fill.as_ref()?;
        Some(Fill {
            client_order_id: self.client_order_id.clone(),
            venue_order_id: self.venue_order_id.clone(),
            trade_id: f.trade_id.clone(),
            instrument: self.instrument.clone(),
            side: self.side,
            price: f.price,
            qty: f.qty,
            fee: f.fee,
            fee_asset: f.fee_asset.clone(),
            ts_ms: self.ts_ms,
        })
    }
}

/// The fill carried by an execution report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastFill {
    /// Venue trade id.
    pub trade_id: String,
    /// Price.
    pub price: Decimal,
    /// Quantity.
    pub qty: Decimal,
    /// Fee.
    pub fee: Decimal,
    /// Fee asset.
    pub fee_asset: String,
}

/// An incremental book update, already checked by the adapter to follow the previous
/// update (or the snapshot) of its instrument without a gap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookDelta {
    /// The instrument.
    pub instrument: InstrumentId,
    /// The venue sequence the book reflects after this delta.
    pub sequence: u64,
    /// Changed bid levels; qty 0 removes the level.
    pub bids: Vec<BookLevel>,
    /// Changed ask levels; qty 0 removes the level.
    pub asks: Vec<BookLevel>,
    /// Event time.
    pub ts_ms: i64,
}

/// A book update: a full replacement, or a delta on top of the last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BookUpdate {
    /// Replace the whole book (REST snapshot aligned with the diffs, in-band snapshot, or
    /// a top-levels message).
    Snapshot(BookSnapshot),
    /// Apply on top of the current book.
    Delta(BookDelta),
}

impl BookUpdate {
    /// The instrument.
    #[must_use]
    pub fn instrument(&self) -> &InstrumentId {
        match self {
            BookUpdate::Snapshot(s) => &s.instrument,
            BookUpdate::Delta(d) => &d.instrument,
        }
    }
}

/// An event from a venue's market-data stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketEvent {
    /// The stream (re)connected and is subscribed. For book feeds the adapter follows up
    /// with a [`BookUpdate::Snapshot`] per instrument.
    Connected,
    /// The stream dropped; books are stale until the next snapshot.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// Best bid/ask.
    Quote(Quote),
    /// Public trade.
    Trade(Trade),
    /// A book update, in order.
    Book(BookUpdate),
    /// The adapter saw a sequence gap: this book is invalid until the next snapshot. The
    /// engine asks for one with [`crate::VenueAdapter::resync_book`].
    BookGap {
        /// The instrument.
        instrument: InstrumentId,
        /// What was expected and what arrived, in the venue's terms.
        detail: String,
    },
    /// A heartbeat or ping with no data: the stream is alive.
    Heartbeat,
}

/// An event from a venue's private (user-data) stream.
// Order updates dominate this stream; boxing them would add an allocation per event to
// spare the rare `Connected`/`Disconnected` a few hundred bytes of channel slot.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserEvent {
    /// The stream (re)connected; order state must be reconciled by REST.
    Connected,
    /// The stream dropped.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// An order changed.
    Order(OrderUpdate),
    /// An execution. The engine records it on the durable fills stream, de-duplicated by
    /// trade id, so a replayed event is never counted twice.
    Fill(Fill),
    /// Balances changed.
    Balances(Vec<Balance>),
    /// Positions changed (margin venues).
    Positions(Vec<Position>),
    /// The venue's resume cursor moved (OANDA: the last transaction id accounted for):
    /// every event before this one on the stream is accounted for. Opaque to the engine,
    /// which stores it durably once those events are processed and hands the stored one
    /// back through [`crate::VenueAdapter::resume_user_stream`] before the next
    /// [`crate::VenueAdapter::user_stream`], so a restart replays what happened while
    /// nobody listened (fills of orders the gateway never placed included). Venues
    /// whose streams cannot replay never send it.
    Cursor(String),
}
