//! [`BinanceUsDepthSync`]: Binance's rules for keeping a book from a REST snapshot and
//! the numbered `depthUpdate` diffs, turned into neutral [`BookUpdate`]s.
//!
//! The procedure is the one in Binance's "How to manage a local order book correctly":
//! 1. buffer diffs from the stream; 2. fetch a snapshot with `lastUpdateId`;
//! 3. drop buffered diffs with `u <= lastUpdateId`; 4. the first applied diff must satisfy
//!    `U <= lastUpdateId + 1 <= u`; 5. afterwards every diff must start at the previous
//!    `u + 1`, otherwise there is a gap and the book must be rebuilt from a new snapshot.
//!
//! These rules are Binance's, so they live in the Binance crate: the engine receives a
//! snapshot followed by deltas that are already known to connect, or a gap report.

use std::collections::VecDeque;

use gekko_core::{BookLevel, BookSnapshot, InstrumentId};
use gekko_venue::{BookDelta, BookUpdate};

/// One `depthUpdate`, reduced to what sequencing needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepthDiff {
    /// First update id in the event (`U`).
    pub first_update_id: u64,
    /// Last update id in the event (`u`).
    pub last_update_id: u64,
    /// Changed bids; qty 0 removes the level.
    pub bids: Vec<BookLevel>,
    /// Changed asks; qty 0 removes the level.
    pub asks: Vec<BookLevel>,
    /// Event time.
    pub ts_ms: i64,
}

/// What one diff did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepthStep {
    /// It connects: apply this delta.
    Delta(BookDelta),
    /// Older than the book; ignored.
    Stale,
    /// No snapshot yet; buffered.
    Buffered,
    /// A sequence gap: the book is invalid until a new snapshot.
    Gap {
        /// The update id expected next.
        expected: u64,
        /// The first id the diff carried.
        got: u64,
    },
}

/// One instrument's sequencer.
#[derive(Debug, Clone)]
pub struct BinanceUsDepthSync {
    instrument: InstrumentId,
    last: Option<u64>,
    buffer: VecDeque<DepthDiff>,
    /// Diffs buffered beyond this are dropped (oldest first); a snapshot that takes this
    /// long to arrive is older than the buffer and is refetched anyway.
    max_buffer: usize,
}

impl BinanceUsDepthSync {
    /// An unsynchronised sequencer.
    #[must_use]
    pub fn new(instrument: InstrumentId) -> Self {
        Self {
            instrument,
            last: None,
            buffer: VecDeque::new(),
            max_buffer: 10_000,
        }
    }

    /// Whether a snapshot is in place and no gap was seen since.
    #[must_use]
    pub fn is_synced(&self) -> bool {
        self.last.is_some()
    }

    /// The last update id applied.
    #[must_use]
    pub fn last_update_id(&self) -> Option<u64> {
        self.last
    }

    /// Forgets everything (a reconnect): diffs are buffered until the next snapshot.
    pub fn reset(&mut self) {
        self.last = None;
        self.buffer.clear();
    }

    fn delta(&self, d: DepthDiff) -> BookDelta {
        BookDelta {
            instrument: self.instrument.clone(),
            sequence: d.last_update_id,
            bids: d.bids,
            asks: d.asks,
            ts_ms: d.ts_ms,
        }
    }

    fn buffer(&mut self, d: DepthDiff) {
        if self.buffer.len() >= self.max_buffer {
            self.buffer.pop_front();
        }
        self.buffer.push_back(d);
    }

    /// Sequences one diff.
    pub fn on_diff(&mut self, d: DepthDiff) -> DepthStep {
        let Some(last) = self.last else {
            self.buffer(d);
            return DepthStep::Buffered;
        };
        if d.last_update_id <= last {
            return DepthStep::Stale;
        }
        if d.first_update_id > last + 1 {
            let gap = DepthStep::Gap {
                expected: last + 1,
                got: d.first_update_id,
            };
            // Unsynchronised from here; this diff may connect to the next snapshot.
            self.reset();
            self.buffer(d);
            return gap;
        }
        self.last = Some(d.last_update_id);
        DepthStep::Delta(self.delta(d))
    }

    /// Installs a snapshot: returns it followed by the buffered diffs that connect to it.
    ///
    /// # Errors
    /// [`DepthStep::Gap`] when the buffered diffs do not connect (the snapshot is older
    /// than the first buffered diff): fetch a newer snapshot. The buffer is kept.
    pub fn on_snapshot(&mut self, snap: BookSnapshot) -> Result<Vec<BookUpdate>, DepthStep> {
        let mut last = snap.sequence;
        let mut first = true;
        let mut connecting = Vec::new();
        for d in &self.buffer {
            if d.last_update_id <= last {
                continue;
            }
            let connects = if first {
                d.first_update_id <= last + 1
            } else {
                d.first_update_id == last + 1
            };
            if !connects {
                return Err(DepthStep::Gap {
                    expected: last + 1,
                    got: d.first_update_id,
                });
            }
            first = false;
            last = d.last_update_id;
            connecting.push(d.clone());
        }
        self.buffer.clear();
        self.last = Some(last);
        let mut out = Vec::with_capacity(connecting.len() + 1);
        out.push(BookUpdate::Snapshot(snap));
        out.extend(
            connecting
                .into_iter()
                .map(|d| BookUpdate::Delta(self.delta(d))),
        );
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use gekko_core::VenueId;
    use rust_decimal::Decimal;
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

    fn diff(
        first: u64,
        last: u64,
        bids: &[(Decimal, Decimal)],
        asks: &[(Decimal, Decimal)],
    ) -> DepthDiff {
        DepthDiff {
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
            bids: lv(&[(dec!(100), dec!(1)), (dec!(99), dec!(2))]),
            asks: lv(&[(dec!(101), dec!(1))]),
            ts_ms: 0,
        }
    }

    /// A minimal book that applies updates, to check what the sequencer emits.
    #[derive(Default)]
    struct Model {
        bids: BTreeMap<Decimal, Decimal>,
        asks: BTreeMap<Decimal, Decimal>,
    }

    impl Model {
        fn apply(&mut self, u: &BookUpdate) {
            let (bids, asks, replace) = match u {
                BookUpdate::Snapshot(s) => (&s.bids, &s.asks, true),
                BookUpdate::Delta(d) => (&d.bids, &d.asks, false),
            };
            if replace {
                self.bids.clear();
                self.asks.clear();
            }
            for (side, levels) in [(&mut self.bids, bids), (&mut self.asks, asks)] {
                for l in levels {
                    if l.qty.is_zero() {
                        side.remove(&l.price);
                    } else {
                        side.insert(l.price, l.qty);
                    }
                }
            }
        }
    }

    #[test]
    fn follows_the_documented_procedure() {
        let mut s = BinanceUsDepthSync::new(inst());
        // Buffered before the snapshot: one too old, one straddling, one after.
        assert_eq!(
            s.on_diff(diff(5, 9, &[(dec!(50), dec!(1))], &[])),
            DepthStep::Buffered
        );
        assert_eq!(
            s.on_diff(diff(10, 12, &[(dec!(100), dec!(0))], &[])),
            DepthStep::Buffered
        );
        assert_eq!(
            s.on_diff(diff(13, 13, &[], &[(dec!(102), dec!(3))])),
            DepthStep::Buffered
        );
        let updates = s.on_snapshot(snap(11)).unwrap();
        assert_eq!(updates.len(), 3, "snapshot + the two diffs that connect");
        assert_eq!(s.last_update_id(), Some(13));
        let mut m = Model::default();
        for u in &updates {
            m.apply(u);
        }
        assert_eq!(m.bids, BTreeMap::from([(dec!(99), dec!(2))]));
        assert_eq!(m.asks.len(), 2);
        assert_eq!(s.on_diff(diff(12, 13, &[], &[])), DepthStep::Stale);
        assert!(matches!(
            s.on_diff(diff(14, 14, &[(dec!(98), dec!(0))], &[])),
            DepthStep::Delta(BookDelta { sequence: 14, .. })
        ));
        assert_eq!(
            s.on_diff(diff(16, 17, &[], &[])),
            DepthStep::Gap {
                expected: 15,
                got: 16
            }
        );
        assert!(!s.is_synced());
    }

    #[test]
    fn snapshot_older_than_buffer_is_a_gap() {
        let mut s = BinanceUsDepthSync::new(inst());
        s.on_diff(diff(20, 25, &[], &[]));
        assert_eq!(
            s.on_snapshot(snap(11)),
            Err(DepthStep::Gap {
                expected: 12,
                got: 20
            })
        );
        assert!(!s.is_synced());
        // A newer snapshot then connects to the kept buffer.
        let updates = s.on_snapshot(snap(22)).unwrap();
        assert_eq!(updates.len(), 2);
        assert_eq!(s.last_update_id(), Some(25));
    }
}
