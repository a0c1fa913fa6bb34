//! A local order book built from the adapter's neutral [`BookUpdate`]s.
//!
//! Sequencing is the adapter's job (it knows its venue's rules: Binance `U`/`u` against a
//! REST snapshot, Coinbase per-connection `sequence_num`): by the time an update reaches
//! this book it is known to follow the previous one. The book therefore only replaces on
//! a snapshot and applies deltas, and forgets itself when the adapter reports a gap or
//! the stream drops. Quantities are absolute; 0 removes a level; removing an unknown level
//! is normal.

use std::collections::BTreeMap;

use gekko_core::{BookLevel, BookSnapshot, InstrumentId};
use gekko_venue::BookDelta;
use rust_decimal::Decimal;

/// One instrument's book.
#[derive(Debug, Clone)]
pub struct LocalBook {
    instrument: InstrumentId,
    bids: BTreeMap<Decimal, Decimal>,
    asks: BTreeMap<Decimal, Decimal>,
    sequence: Option<u64>,
}

impl LocalBook {
    /// An empty, unsynchronised book.
    #[must_use]
    pub fn new(instrument: InstrumentId) -> Self {
        Self {
            instrument,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            sequence: None,
        }
    }

    /// Whether the book is synchronised (a snapshot was applied and no gap seen since).
    #[must_use]
    pub fn is_synced(&self) -> bool {
        self.sequence.is_some()
    }

    /// The venue sequence the book reflects.
    #[must_use]
    pub fn sequence(&self) -> Option<u64> {
        self.sequence
    }

    /// Forgets the book (after a gap or a disconnect) until the next snapshot.
    pub fn invalidate(&mut self) {
        self.sequence = None;
        self.bids.clear();
        self.asks.clear();
    }

    /// Replaces the book.
    pub fn apply_snapshot(&mut self, snap: &BookSnapshot) {
        let side = |levels: &[BookLevel]| {
            levels
                .iter()
                .filter(|l| !l.qty.is_zero())
                .map(|l| (l.price, l.qty))
                .collect()
        };
        self.bids = side(&snap.bids);
        self.asks = side(&snap.asks);
        self.sequence = Some(snap.sequence);
    }

    /// Applies a delta. Returns `false` (and changes nothing) while unsynchronised: a delta
    /// without a snapshot under it describes nothing.
    pub fn apply_delta(&mut self, delta: &BookDelta) -> bool {
        if self.sequence.is_none() {
            return false;
        }
        for (side, levels) in [(&mut self.bids, &delta.bids), (&mut self.asks, &delta.asks)] {
            for l in levels {
                if l.qty.is_zero() {
                    side.remove(&l.price);
                } else {
                    side.insert(l.price, l.qty);
                }
            }
        }
        self.sequence = Some(delta.sequence);
        true
    }

    /// Bids, best (highest) first.
    #[must_use]
    pub fn bids(&self) -> Vec<BookLevel> {
        self.bids
            .iter()
            .rev()
            .map(|(p, q)| BookLevel { price: *p, qty: *q })
            .collect()
    }

    /// Asks, best (lowest) first.
    #[must_use]
    pub fn asks(&self) -> Vec<BookLevel> {
        self.asks
            .iter()
            .map(|(p, q)| BookLevel { price: *p, qty: *q })
            .collect()
    }

    /// Best bid and ask, when both sides exist.
    #[must_use]
    pub fn top(&self) -> Option<(BookLevel, BookLevel)> {
        let (bp, bq) = self.bids.iter().next_back()?;
        let (ap, aq) = self.asks.iter().next()?;
        Some((
            BookLevel {
                price: *bp,
                qty: *bq,
            },
            BookLevel {
                price: *ap,
                qty: *aq,
            },
        ))
    }

    /// The instrument.
    #[must_use]
    pub fn instrument(&self) -> &InstrumentId {
        &self.instrument
    }
}

#[cfg(test)]
mod tests {
    use gekko_core::VenueId;
    use rust_decimal_macros::dec;

    use super::*;

    fn inst() -> InstrumentId {
        InstrumentId::new(VenueId::BinanceUs, "BTC", "USD")
    }

    fn lv(v: &[(Decimal, Decimal)]) -> Vec<BookLevel> {
        v.iter()
            .map(|(p, q)| BookLevel { price: *p, qty: *q })
            .collect()
    }

    fn delta(seq: u64, bids: &[(Decimal, Decimal)], asks: &[(Decimal, Decimal)]) -> BookDelta {
        BookDelta {
            instrument: inst(),
            sequence: seq,
            bids: lv(bids),
            asks: lv(asks),
            ts_ms: 0,
        }
    }

    fn snap(seq: u64) -> BookSnapshot {
        BookSnapshot {
            instrument: inst(),
            sequence: seq,
            bids: lv(&[(dec!(100), dec!(1)), (dec!(99), dec!(2))]),
            asks: lv(&[(dec!(101), dec!(1))]),
            ts_ms: 0,
        }
    }

    #[test]
    fn deltas_need_a_snapshot_and_invalidate_forgets() {
        let mut b = LocalBook::new(inst());
        assert!(!b.apply_delta(&delta(1, &[(dec!(50), dec!(1))], &[])));
        assert!(!b.is_synced());
        b.apply_snapshot(&snap(11));
        assert!(b.apply_delta(&delta(12, &[(dec!(100), dec!(0))], &[(dec!(102), dec!(3))])));
        assert_eq!(b.sequence(), Some(12));
        assert_eq!(b.bids(), lv(&[(dec!(99), dec!(2))]));
        assert_eq!(b.asks().len(), 2);
        b.invalidate();
        assert!(!b.is_synced());
        assert!(b.top().is_none());
    }

    proptest::proptest! {
        /// Applying any delta sequence on top of a snapshot equals building the book
        /// directly from the final level map.
        #[test]
        fn deltas_keep_the_book_exact(ops in proptest::collection::vec((0u8..2, 90u32..110, 0u32..5), 1..200)) {
            let mut b = LocalBook::new(inst());
            b.apply_snapshot(&snap(0));
            let mut model_b: BTreeMap<Decimal, Decimal> = [(dec!(100), dec!(1)), (dec!(99), dec!(2))].into();
            let mut model_a: BTreeMap<Decimal, Decimal> = [(dec!(101), dec!(1))].into();
            for (i, (side, px, qty)) in ops.into_iter().enumerate() {
                let (p, q) = (Decimal::from(px), Decimal::from(qty));
                let id = i as u64 + 1;
                let d = if side == 0 { delta(id, &[(p, q)], &[]) } else { delta(id, &[], &[(p, q)]) };
                proptest::prop_assert!(b.apply_delta(&d));
                let m = if side == 0 { &mut model_b } else { &mut model_a };
                if q.is_zero() { m.remove(&p); } else { m.insert(p, q); }
            }
            let want_b: Vec<BookLevel> = model_b.iter().rev().map(|(p, q)| BookLevel { price: *p, qty: *q }).collect();
            let want_a: Vec<BookLevel> = model_a.iter().map(|(p, q)| BookLevel { price: *p, qty: *q }).collect();
            proptest::prop_assert_eq!(b.bids(), want_b);
            proptest::prop_assert_eq!(b.asks(), want_a);
        }
    }
}
