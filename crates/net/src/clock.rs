//! The venue clock offset: how far the venue's clock is from ours.
//!
//! Signed venue requests carry a timestamp the venue checks against its own clock
//! (Binance `recvWindow`, Coinbase JWT `nbf`/`exp`). A local clock that drifts, or jumps
//! after a DST/NTP change (freqtrade#9925, hummingbot#1075), makes every signed call fail.
//! So each venue keeps a [`ClockOffset`]: each sample is `server_time - local_midpoint`,
//! where the local midpoint is halfway between sending the time request and receiving the
//! answer, and the offset used is the **median** of the last few samples (Hummingbot's time
//! synchroniser does the same), which shrugs off one sample delayed by a slow round trip.
//!
//! Concurrency: samples sit in a `std::sync::Mutex<VecDeque>`; the offset itself is cached
//! in an `AtomicI64` so the hot path ([`ClockOffset::now_ms`], called for every signed
//! request) takes no lock.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::lock;

/// Gauge: venue time minus local time, ms; label `venue`.
pub const METRIC_CLOCK_OFFSET: &str = "gekko_venue_clock_offset_ms";

/// One clock measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSample {
    /// `server_time - local_midpoint`, ms.
    pub offset_ms: i64,
    /// The round trip of the time request.
    pub rtt: Duration,
}

impl ClockSample {
    /// A sample from local send and receive wall-clock times (ms since epoch) and the
    /// server's time (ms since epoch).
    #[must_use]
    pub fn from_times(local_send_ms: i64, server_ms: i64, local_recv_ms: i64) -> Self {
        let (lo, hi) = if local_recv_ms >= local_send_ms {
            (local_send_ms, local_recv_ms)
        } else {
            (local_recv_ms, local_send_ms)
        };
        let midpoint = lo + (hi - lo) / 2;
        Self {
            offset_ms: server_ms.saturating_sub(midpoint),
            rtt: Duration::from_millis(u64::try_from(hi - lo).unwrap_or(0)),
        }
    }
}

/// The last `capacity` clock samples and their median offset. See the module docs.
#[derive(Debug)]
pub struct ClockOffset {
    capacity: usize,
    venue: String,
    samples: Mutex<VecDeque<ClockSample>>,
    offset_ms: AtomicI64,
}

impl Default for ClockOffset {
    fn default() -> Self {
        Self::new("unknown", 5)
    }
}

impl ClockOffset {
    /// An offset of zero that keeps the last `capacity` (at least 1; 5 is typical) samples.
    #[must_use]
    pub fn new(venue: &str, capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            venue: venue.to_owned(),
            samples: Mutex::new(VecDeque::with_capacity(capacity.max(1))),
            offset_ms: AtomicI64::new(0),
        }
    }

    /// Adds a sample (dropping the oldest beyond capacity) and recomputes the median.
    pub fn record(&self, sample: ClockSample) {
        let median = {
            let mut s = lock(&self.samples);
            if s.len() == self.capacity {
                s.pop_front();
            }
            s.push_back(sample);
            median(s.iter().map(|x| x.offset_ms))
        };
        self.offset_ms.store(median, Ordering::Relaxed);
        #[allow(clippy::cast_precision_loss, reason = "a gauge; offsets are small")]
        metrics::gauge!(METRIC_CLOCK_OFFSET, "venue" => self.venue.clone()).set(median as f64);
    }

    /// Forgets every sample (e.g. before a resync after `-1021`, when old samples are
    /// suspect). The offset keeps its last value until the next sample.
    pub fn clear(&self) {
        lock(&self.samples).clear();
    }

    /// The median offset of the retained samples, ms (0 before the first sample).
    #[must_use]
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// The venue's idea of now, ms since epoch: local wall clock plus the offset.
    #[must_use]
    pub fn now_ms(&self) -> i64 {
        local_now_ms().saturating_add(self.offset_ms())
    }

    /// The shortest round trip among retained samples.
    #[must_use]
    pub fn best_rtt(&self) -> Option<Duration> {
        lock(&self.samples).iter().map(|s| s.rtt).min()
    }

    /// How many samples are retained.
    #[must_use]
    pub fn len(&self) -> usize {
        lock(&self.samples).len()
    }

    /// Whether no sample has been recorded (or all were cleared).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The local wall clock in ms since the Unix epoch.
#[must_use]
pub fn local_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The median; for an even count, the mean of the two middle values (rounded down).
fn median(values: impl Iterator<Item = i64>) -> i64 {
    let mut v: Vec<i64> = values.collect();
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        let (a, b) = (v[mid - 1], v[mid]);
        a / 2 + b / 2 + (a % 2 + b % 2) / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(offset_ms: i64) -> ClockSample {
        ClockSample {
            offset_ms,
            rtt: Duration::from_millis(10),
        }
    }

    #[test]
    fn sample_uses_the_local_midpoint() {
        let x = ClockSample::from_times(1_000, 1_600, 1_200);
        assert_eq!(x.offset_ms, 500);
        assert_eq!(x.rtt, Duration::from_millis(200));
        // A local clock that stepped backwards mid-request does not produce a negative rtt.
        let y = ClockSample::from_times(1_200, 1_600, 1_000);
        assert_eq!(y.rtt, Duration::from_millis(200));
    }

    #[test]
    fn offset_is_the_median_of_the_last_n() {
        let c = ClockOffset::new("test", 5);
        assert_eq!(c.offset_ms(), 0);
        for o in [100, 105, 5_000, 95, 102] {
            c.record(s(o));
        }
        assert_eq!(c.offset_ms(), 102, "one outlier does not move the median");
        // The oldest samples fall out.
        for o in [-10, -12, -11] {
            c.record(s(o));
        }
        assert_eq!(c.len(), 5);
        assert_eq!(c.offset_ms(), -10);
    }

    #[test]
    fn even_counts_average_the_middle_pair() {
        assert_eq!(median([1, 2, 3, 4].into_iter()), 2);
        assert_eq!(median([-3, -1].into_iter()), -2);
        assert_eq!(median([i64::MAX, i64::MAX].into_iter()), i64::MAX);
        assert_eq!(median(std::iter::empty()), 0);
    }

    #[test]
    fn now_applies_the_offset() {
        let c = ClockOffset::new("test", 3);
        c.record(s(60_000));
        let diff = c.now_ms() - local_now_ms();
        assert!((59_000..=60_000).contains(&diff), "{diff}");
        c.clear();
        assert!(c.is_empty());
        assert_eq!(
            c.offset_ms(),
            60_000,
            "clear keeps the offset until the next sample"
        );
        assert_eq!(c.best_rtt(), None);
    }
}
