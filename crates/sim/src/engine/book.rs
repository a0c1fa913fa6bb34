//! One instrument's public book: synthetic liquidity plus what was last published.
//!
//! The engine publishes the *aggregated* book (synthetic levels plus the remainders of
//! resting user limit orders) as diffs with sequence numbers. To compute a diff it keeps
//! the book exactly as last published, which is also what a client that applied every
//! diff holds, and what a snapshot returns.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rust_decimal::Decimal;

use super::market::SymbolMarket;
use super::types::{Level, PublicTrade, Top};

/// Price-ordered levels: price -> qty.
pub(crate) type Levels = BTreeMap<Decimal, Decimal>;

/// First sequence number of every book (Binance's first `lastUpdateId`).
pub(crate) const FIRST_SEQ: u64 = 1000;

/// An instrument's market and published state.
#[derive(Debug)]
pub(crate) struct Book {
    /// Synthetic liquidity and its random walk.
    pub(crate) market: SymbolMarket,
    /// The aggregated book as last published (what clients can reconstruct).
    pub(crate) bids: Levels,
    pub(crate) asks: Levels,
    /// Sequence number of the last published diff.
    pub(crate) last_seq: u64,
    /// Touch as last published.
    pub(crate) top: Top,
    /// Recent public trades, oldest first.
    pub(crate) trades: VecDeque<PublicTrade>,
    pub(crate) next_trade_id: u64,
    /// The next diff skips sequence numbers (an injected gap).
    pub(crate) gap_pending: bool,
}

impl Book {
    /// A book whose published state is the market's first synthetic book.
    pub(crate) fn new(market: SymbolMarket) -> Self {
        let mut b = Self {
            bids: market.bids.clone(),
            asks: market.asks.clone(),
            top: (None, None),
            market,
            last_seq: FIRST_SEQ,
            trades: VecDeque::new(),
            next_trade_id: 1,
            gap_pending: false,
        };
        b.top = top_of(&b.bids, &b.asks);
        b
    }
}

/// Best bid and best ask of two sides.
pub(crate) fn top_of(bids: &Levels, asks: &Levels) -> Top {
    (
        bids.iter().next_back().map(|(p, q)| (*p, *q)),
        asks.iter().next().map(|(p, q)| (*p, *q)),
    )
}

/// Levels that differ between `old` and `new`, with qty 0 for removed ones.
pub(crate) fn diff(old: &Levels, new: &Levels, descending: bool) -> Vec<Level> {
    let keys: BTreeSet<&Decimal> = old.keys().chain(new.keys()).collect();
    let mut out: Vec<Level> = keys
        .into_iter()
        .filter_map(|p| {
            let n = new.get(p).copied().unwrap_or(Decimal::ZERO);
            let o = old.get(p).copied().unwrap_or(Decimal::ZERO);
            (n != o).then_some((*p, n))
        })
        .collect();
    if descending {
        out.reverse();
    }
    out
}
