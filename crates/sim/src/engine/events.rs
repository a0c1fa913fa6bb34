//! The neutral events the engine emits, and the sink a protocol encodes them through.
//!
//! The engine never writes wire formats. Every state change it makes is announced as an
//! [`EngineEvent`] to an [`EventSink`] that the protocol module supplies, and the
//! protocol turns it into its own bytes (a Binance `executionReport`, a Coinbase `l2update`,
//! an OANDA transaction...). The sink is called *synchronously, while the engine's one
//! lock is held*, in the order the changes happen; that is what lets a protocol promise
//! that a book snapshot never falls between two diffs it should include, and that an
//! order event is published before any answer about the same order can be sent.
//!
//! Events borrow from the engine (the order, the levels) so announcing a change costs no
//! copy; a sink that needs to keep something clones it.

use rust_decimal::Decimal;

use super::margin::Position;
use super::reject::Reject;
use super::types::{Level, PublicTrade, SimFill, SimOrder};

/// One asset of an account after a change: `(asset, free, locked)`.
pub type BalanceLine = (String, Decimal, Decimal);

/// A change the engine made, in the order it made them.
#[derive(Debug, Clone, Copy)]
pub enum EngineEvent<'a> {
    /// An order was accepted (status `New`, its amount locked).
    OrderAccepted {
        /// The order as accepted.
        order: &'a SimOrder,
        /// Engine time (ms).
        time: i64,
    },
    /// An order was refused; nothing changed. (Binance answers these synchronously only;
    /// other venues announce them on their user streams.)
    OrderRejected {
        /// The account that asked.
        account: &'a str,
        /// The instrument name as sent.
        symbol: &'a str,
        /// The client order id, if one was sent.
        client_order_id: Option<&'a str>,
        /// Why.
        reason: Reject,
        /// Engine time (ms).
        time: i64,
    },
    /// An order filled partly and is still working.
    OrderPartiallyFilled {
        /// The order after the fill.
        order: &'a SimOrder,
        /// The fill.
        fill: &'a SimFill,
        /// Engine time (ms).
        time: i64,
    },
    /// An order filled completely.
    OrderFilled {
        /// The order after the fill.
        order: &'a SimOrder,
        /// The last fill.
        fill: &'a SimFill,
        /// Engine time (ms).
        time: i64,
    },
    /// An order was canceled by its owner.
    OrderCancelled {
        /// The order after the cancel.
        order: &'a SimOrder,
        /// The cancel request's client id (given or generated).
        cancel_client_id: &'a str,
        /// Engine time (ms).
        time: i64,
    },
    /// The unfilled remainder of an IOC/FOK/MARKET order expired.
    OrderExpired {
        /// The order after expiry.
        order: &'a SimOrder,
        /// Engine time (ms).
        time: i64,
    },
    /// Balances of an account changed (one event per account per engine operation,
    /// listing only the assets touched).
    BalanceChanged {
        /// The account.
        account: &'a str,
        /// The touched assets after the change, sorted by asset.
        balances: &'a [BalanceLine],
        /// Engine time (ms).
        time: i64,
    },
    /// A margin position changed.
    PositionChanged {
        /// The account.
        account: &'a str,
        /// The instrument.
        instrument: &'a str,
        /// The position after the change.
        position: &'a Position,
        /// Engine time (ms).
        time: i64,
    },
    /// The aggregated public book changed. Sequence numbers are contiguous across diffs
    /// of one instrument unless a gap was injected on purpose.
    BookDiff {
        /// The instrument.
        symbol: &'a str,
        /// First sequence number this diff covers.
        first_seq: u64,
        /// Last sequence number this diff covers (the book's new sequence).
        last_seq: u64,
        /// Changed bid levels, best first; quantity zero removes a level.
        bids: &'a [Level],
        /// Changed ask levels, best first; quantity zero removes a level.
        asks: &'a [Level],
        /// Engine time (ms).
        time: i64,
    },
    /// The best bid/ask changed (or a market tick republished it).
    Ticker {
        /// The instrument.
        symbol: &'a str,
        /// The book's sequence number at this touch.
        seq: u64,
        /// Best bid.
        bid: Option<Level>,
        /// Best ask.
        ask: Option<Level>,
    },
    /// A public trade printed.
    Trade {
        /// The instrument.
        symbol: &'a str,
        /// The trade.
        trade: &'a PublicTrade,
        /// Engine time (ms).
        time: i64,
    },
}

/// Where the engine announces its changes (see the module docs for when it is called).
pub trait EventSink {
    /// Receives one event. Must not block: it runs under the engine's lock.
    fn emit(&mut self, event: EngineEvent<'_>);
}

/// A sink that keeps nothing, for engines nobody listens to.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl EventSink for NullSink {
    fn emit(&mut self, _event: EngineEvent<'_>) {}
}
