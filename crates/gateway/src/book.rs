//! A local order book kept in sync by snapshot + diff, with gap detection.
//!
//! The procedure is Binance's (and the shape most venues share):
//! 1. buffer diffs from the stream; 2. fetch a snapshot with `lastUpdateId`;
//! 3. drop buffered diffs with `u <= lastUpdateId`; 4. the first applied diff must satisfy
//!    `U <= lastUpdateId + 1 <= u`; 5. afterwards every diff must start at the previous
//!    `u + 1`, otherwise there is a gap and the book must be rebuilt from a new snapshot.
//!    Quantities are absolute; 0 removes a level; removing an unknown level is normal.

use std::collections::BTreeMap;

use gekko_core::{BookLevel, BookSnapshot, InstrumentId};
use rust_decimal::Decimal;

use crate::venue::BookDiff;

/// What applying a diff did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The diff was applied.
    Applied,
    /// The diff was older than the book and ignored.
    Stale,
    /// Still waiting for a snapshot; the diff was buffered.
    Buffered,
    /// A sequence gap: the book is no longer valid and needs a new snapshot.
    Gap {
        /// The update id we expected next.
        expected: u64,
        /// The first id the diff carried.
        got: u64,
    },
}

/// One instrument's book.
#[derive(Debug, Clone)]
pub struct LocalBook {
    instrument: InstrumentId,
    bids: BTreeMap<Decimal, Decimal>,
    asks: BTreeMap<Decimal, Decimal>,
    last_update_id: Option<u64>,
    buffer: Vec<BookDiff>,
    /// Diffs buffered beyond this are dropped and force a resync; a snapshot that takes
    /// this long to arrive is stale anyway.
    max_buffer: usize,
}

impl LocalBook {
    /// An empty, unsynchronised book.
    #[must_use]
    pub fn new(instrument: InstrumentId) -> Self {
        Self {
            instrument,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            last_update_id: None,
            buffer: Vec::new(),
            max_buffer: 10_000,
        }
    }

    /// Whether the book is synchronised (a snapshot was applied and no gap seen since).
    #[must_use]
    pub fn is_synced(&self) -> bool {
        self.last_update_id.is_some()
    }

    /// The venue sequence the book reflects.
    #[must_use]
    pub fn last_update_id(&self) -> Option<u64> {
        self.last_update_id
    }

    /// Forgets the book (e.g. after a disconnect); diffs are buffered until a snapshot.
    pub fn invalidate(&mut self) {
        self.last_update_id = None;
        self.bids.clear();
        self.asks.clear();
        self.buffer.clear();
    }

    /// Applies a diff, or buffers it while unsynchronised.
    pub fn apply_diff(&mut self, diff: BookDiff) -> Applied {
        let Some(last) = self.last_update_id else {
            if self.buffer.len() >= self.max_buffer {
                self.buffer.remove(0);
            }
            self.buffer.push(diff);
            return Applied::Buffered;
        };
        if diff.last_update_id <= last {
            return Applied::Stale;
        }
        if diff.first_update_id > last + 1 {
            let gap = Applied::Gap {
                expected: last + 1,
                got: diff.first_update_id,
            };
            self.invalidate();
            return gap;
        }
        self.apply_levels(&diff);
        self.last_update_id = Some(diff.last_update_id);
        Applied::Applied
    }

    /// Installs a snapshot and replays buffered diffs that follow it.
    ///
    /// Returns `Err(Applied::Gap)` if the buffered diffs do not connect to the snapshot
    /// (the snapshot is older than the first buffered diff): fetch a newer snapshot.
    ///
    /// # Errors
    /// [`Applied::Gap`] as described.
    pub fn apply_snapshot(&mut self, snap: &BookSnapshot) -> Result<(), Applied> {
        self.bids = snap
            .bids
            .iter()
            .map(|l| (l.price, l.qty))
            .filter(|(_, q)| !q.is_zero())
            .collect();
        self.asks = snap
            .asks
            .iter()
            .map(|l| (l.price, l.qty))
            .filter(|(_, q)| !q.is_zero())
            .collect();
        let mut last = snap.sequence;
        let buffered = std::mem::take(&mut self.buffer);
        let mut first = true;
        for diff in buffered {
            if diff.last_update_id <= last {
                continue;
            }
            let connects = if first {
                diff.first_update_id <= last + 1
            } else {
                diff.first_update_id == last + 1
            };
            if !connects {
                self.invalidate();
                return Err(Applied::Gap {
                    expected: last + 1,
                    got: diff.first_update_id,
                });
            }
            first = false;
            self.apply_levels(&diff);
            last = diff.last_update_id;
        }
        self.last_update_id = Some(last);
        Ok(())
    }

    fn apply_levels(&mut self, diff: &BookDiff) {
        for (side, levels) in [(&mut self.bids, &diff.bids), (&mut self.asks, &diff.asks)] {
            for l in levels {
                if l.qty.is_zero() {
                    side.remove(&l.price);
                } else {
                    side.insert(l.price, l.qty);
                }
            }
        }
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

    fn diff(
        first: u64,
        last: u64,
        bids: &[(Decimal, Decimal)],
        asks: &[(Decimal, Decimal)],
    ) -> BookDiff {
        let lv = |v: &[(Decimal, Decimal)]| {
            v.iter()
                .map(|(p, q)| BookLevel { price: *p, qty: *q })
                .collect()
        };
        BookDiff {
            instrument: inst(),
            first_update_id: first,
            last_update_id: last,
            bids: lv(bids),
            asks: lv(asks),
            ts_ms: 0,
        }
    }

    fn snap(seq: u64) -> BookSnapshot {
        BookSnapshot {
            instrument: inst(),
            sequence: seq,
            bids: vec![
                BookLevel {
                    price: dec!(100),
                    qty: dec!(1),
                },
                BookLevel {
                    price: dec!(99),
                    qty: dec!(2),
                },
            ],
            asks: vec![BookLevel {
                price: dec!(101),
                qty: dec!(1),
            }],
            ts_ms: 0,
        }
    }

    #[test]
    fn follows_the_documented_procedure() {
        let mut b = LocalBook::new(inst());
        // Buffered before the snapshot: one too old, one straddling, one after.
        assert_eq!(
            b.apply_diff(diff(5, 9, &[(dec!(50), dec!(1))], &[])),
            Applied::Buffered
        );
        assert_eq!(
            b.apply_diff(diff(10, 12, &[(dec!(100), dec!(0))], &[])),
            Applied::Buffered
        );
        assert_eq!(
            b.apply_diff(diff(13, 13, &[], &[(dec!(102), dec!(3))])),
            Applied::Buffered
        );
        b.apply_snapshot(&snap(11)).unwrap();
        assert_eq!(b.last_update_id(), Some(13));
        assert_eq!(
            b.bids(),
            vec![BookLevel {
                price: dec!(99),
                qty: dec!(2)
            }]
        );
        assert_eq!(b.asks().len(), 2);
        assert_eq!(b.apply_diff(diff(12, 13, &[], &[])), Applied::Stale);
        assert_eq!(
            b.apply_diff(diff(14, 14, &[(dec!(98), dec!(0))], &[])),
            Applied::Applied
        );
        assert_eq!(
            b.apply_diff(diff(16, 17, &[], &[])),
            Applied::Gap {
                expected: 15,
                got: 16
            }
        );
        assert!(!b.is_synced());
    }

    #[test]
    fn snapshot_older_than_buffer_is_a_gap() {
        let mut b = LocalBook::new(inst());
        b.apply_diff(diff(20, 25, &[], &[]));
        assert_eq!(
            b.apply_snapshot(&snap(11)),
            Err(Applied::Gap {
                expected: 12,
                got: 20
            })
        );
        assert!(!b.is_synced());
    }

    proptest::proptest! {
        /// Applying any contiguous diff sequence on top of a snapshot equals building the
        /// book directly from the final level map.
        #[test]
        fn contiguous_diffs_keep_the_book_exact(ops in proptest::collection::vec((0u8..2, 90u32..110, 0u32..5), 1..200)) {
            let mut b = LocalBook::new(inst());
            b.apply_snapshot(&snap(0)).unwrap();
            let mut model_b: BTreeMap<Decimal, Decimal> = [(dec!(100), dec!(1)), (dec!(99), dec!(2))].into();
            let mut model_a: BTreeMap<Decimal, Decimal> = [(dec!(101), dec!(1))].into();
            for (i, (side, px, qty)) in ops.into_iter().enumerate() {
                let (p, q) = (Decimal::from(px), Decimal::from(qty));
                let id = i as u64 + 1;
                let d = if side == 0 { diff(id, id, &[(p, q)], &[]) } else { diff(id, id, &[], &[(p, q)]) };
                proptest::prop_assert_eq!(b.apply_diff(d), Applied::Applied);
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
