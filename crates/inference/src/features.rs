//! Market features over a sliding window of quotes.
//!
//! Training and serving must compute features the same way or the model silently
//! sees a different world in production; so there is exactly one implementation,
//! [`FeatureBuilder`], and [`crate::train`] feeds its synthetic quotes through it.
//!
//! Each quote after the first yields one *step* of [`FEATURES_PER_STEP`] values:
//!
//! 1. the log return of the mid against the previous accepted quote,
//! 2. the spread over the mid, in basis points,
//! 3. the top-of-book imbalance `(bid_size - ask_size) / (bid_size + ask_size)`
//!    (0 when both sizes are 0),
//! 4. the volatility: the population standard deviation of the log returns of the
//!    steps in the window up to and including this one (so the oldest step of a
//!    window always has 0, and a window's features depend on nothing outside it).
//!
//! Prices are `Decimal` because they are money; here they are only inputs to
//! statistics, so they are converted to `f64` for the arithmetic and to `f32` for
//! the model. Quotes that cannot be a real market (non-positive prices, a crossed or
//! locked book, negative sizes, another instrument) are skipped and counted, never
//! panicked on: one bad tick must not take the scorer down.

use std::collections::VecDeque;

use gekko_core::{InstrumentId, Quote};
use rust_decimal::prelude::ToPrimitive;

/// Values per window step: log return, spread (bps), imbalance, volatility.
pub const FEATURES_PER_STEP: usize = 4;

/// Why a quote was skipped by [`FeatureBuilder::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuoteRejection {
    /// Bid or ask is zero or negative.
    NonPositivePrice,
    /// `bid >= ask`: a crossed or locked book, usually a stale side.
    Crossed,
    /// A size is negative.
    NegativeSize,
    /// A value does not fit in an `f64` (cannot happen for real prices).
    NotRepresentable,
    /// The quote is for a different instrument than the builder's first quote.
    WrongInstrument,
}

impl QuoteRejection {
    /// A short label, used as the `reason` of `gekko_inference_quotes_rejected_total`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NonPositivePrice => "non_positive_price",
            Self::Crossed => "crossed",
            Self::NegativeSize => "negative_size",
            Self::NotRepresentable => "not_representable",
            Self::WrongInstrument => "wrong_instrument",
        }
    }
}

/// One quote's top of book as plain numbers, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BookTop {
    /// Best bid.
    pub bid: f64,
    /// Best ask.
    pub ask: f64,
    /// Size at the best bid.
    pub bid_size: f64,
    /// Size at the best ask.
    pub ask_size: f64,
}

impl BookTop {
    /// Converts and validates a quote's top of book.
    ///
    /// # Errors
    /// The [`QuoteRejection`] that makes the quote unusable.
    #[expect(
        clippy::disallowed_methods,
        reason = "the model computes in floating point; prices leave Decimal only here"
    )]
    pub fn from_quote(q: &Quote) -> Result<Self, QuoteRejection> {
        let conv = |d: &rust_decimal::Decimal| d.to_f64().ok_or(QuoteRejection::NotRepresentable);
        Self::new(
            conv(&q.bid)?,
            conv(&q.ask)?,
            conv(&q.bid_size)?,
            conv(&q.ask_size)?,
        )
    }

    /// Validates plain numbers (the same rules as [`BookTop::from_quote`]).
    ///
    /// # Errors
    /// The [`QuoteRejection`] that makes the values unusable.
    pub fn new(bid: f64, ask: f64, bid_size: f64, ask_size: f64) -> Result<Self, QuoteRejection> {
        if !(bid.is_finite() && ask.is_finite() && bid_size.is_finite() && ask_size.is_finite()) {
            return Err(QuoteRejection::NotRepresentable);
        }
        if bid <= 0.0 || ask <= 0.0 {
            return Err(QuoteRejection::NonPositivePrice);
        }
        if bid >= ask {
            return Err(QuoteRejection::Crossed);
        }
        if bid_size < 0.0 || ask_size < 0.0 {
            return Err(QuoteRejection::NegativeSize);
        }
        Ok(Self {
            bid,
            ask,
            bid_size,
            ask_size,
        })
    }

    /// `(bid + ask) / 2`.
    #[must_use]
    pub fn mid(&self) -> f64 {
        (self.bid + self.ask) / 2.0
    }

    /// Spread over mid in basis points.
    #[must_use]
    pub fn spread_bps(&self) -> f64 {
        (self.ask - self.bid) / self.mid() * 10_000.0
    }

    /// `(bid_size - ask_size) / (bid_size + ask_size)`, 0 for an empty book.
    #[must_use]
    pub fn imbalance(&self) -> f64 {
        let total = self.bid_size + self.ask_size;
        if total > 0.0 {
            (self.bid_size - self.ask_size) / total
        } else {
            0.0
        }
    }
}

/// The per-step values that do not depend on the rest of the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// `ln(mid / previous mid)`.
    pub log_return: f64,
    /// Spread over mid in basis points.
    pub spread_bps: f64,
    /// Top-of-book imbalance in `[-1, 1]`.
    pub imbalance: f64,
}

impl Step {
    /// The step for `top` following a quote whose mid was `prev_mid`.
    #[must_use]
    pub fn new(prev_mid: f64, top: &BookTop) -> Self {
        Self {
            log_return: (top.mid() / prev_mid).ln(),
            spread_bps: top.spread_bps(),
            imbalance: top.imbalance(),
        }
    }
}

/// Flattens a window of steps (oldest first) into `steps.len() * 4` model inputs,
/// adding the running volatility as the fourth value of each step.
///
/// This is the pure core of [`FeatureBuilder`], exposed so tests and offline tools
/// can compute features without quotes.
#[must_use]
pub fn window_features(steps: &[Step]) -> Vec<f32> {
    let mut out = Vec::with_capacity(steps.len() * FEATURES_PER_STEP);
    // Welford's running mean / sum of squared deviations: numerically stable and
    // O(window) per window.
    let (mut mean, mut m2) = (0.0_f64, 0.0_f64);
    for (i, s) in steps.iter().enumerate() {
        let n = (i + 1) as f64;
        let delta = s.log_return - mean;
        mean += delta / n;
        m2 += delta * (s.log_return - mean);
        let vol = (m2 / n).max(0.0).sqrt();
        #[allow(clippy::cast_possible_truncation)] // f32 is the model's precision
        out.extend_from_slice(&[
            s.log_return as f32,
            s.spread_bps as f32,
            s.imbalance as f32,
            vol as f32,
        ]);
    }
    out
}

/// Turns a stream of quotes for one instrument into model inputs.
///
/// Push every quote; once `window` steps (so `window + 1` accepted quotes) have been
/// seen, each push returns the latest window's features.
#[derive(Debug, Clone)]
pub struct FeatureBuilder {
    window: usize,
    instrument: Option<InstrumentId>,
    prev_mid: Option<f64>,
    steps: VecDeque<Step>,
    rejected: u64,
}

impl FeatureBuilder {
    /// A builder for windows of `window` steps (at least 1; 0 is treated as 1).
    #[must_use]
    pub fn new(window: usize) -> Self {
        let window = window.max(1);
        Self {
            window,
            instrument: None,
            prev_mid: None,
            steps: VecDeque::with_capacity(window + 1),
            rejected: 0,
        }
    }

    /// Steps per window.
    #[must_use]
    pub fn window(&self) -> usize {
        self.window
    }

    /// Length of the vectors [`FeatureBuilder::push`] returns: `window * 4`.
    #[must_use]
    pub fn input_len(&self) -> usize {
        self.window * FEATURES_PER_STEP
    }

    /// Quotes skipped so far.
    #[must_use]
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Forgets the history (after a feed gap, say); the rejection count is kept.
    pub fn reset(&mut self) {
        self.prev_mid = None;
        self.steps.clear();
    }

    /// Adds a quote. Returns the flattened `window * 4` features (oldest step first)
    /// once the window is full, `None` while it is filling or when the quote is
    /// rejected (rejections are counted in [`FeatureBuilder::rejected`] and in
    /// `gekko_inference_quotes_rejected_total{reason}`).
    pub fn push(&mut self, q: &Quote) -> Option<Vec<f32>> {
        if let Some(instrument) = &self.instrument
            && *instrument != q.instrument
        {
            self.reject(QuoteRejection::WrongInstrument);
            return None;
        }
        let top = match BookTop::from_quote(q) {
            Ok(top) => top,
            Err(why) => {
                self.reject(why);
                return None;
            }
        };
        if self.instrument.is_none() {
            self.instrument = Some(q.instrument.clone());
        }
        self.push_top(&top)
    }

    /// Adds an already validated top of book (the training path uses this too).
    pub fn push_top(&mut self, top: &BookTop) -> Option<Vec<f32>> {
        let mid = top.mid();
        let prev = self.prev_mid.replace(mid)?;
        if self.steps.len() == self.window {
            self.steps.pop_front();
        }
        self.steps.push_back(Step::new(prev, top));
        if self.steps.len() < self.window {
            return None;
        }
        Some(window_features(self.steps.make_contiguous()))
    }

    fn reject(&mut self, why: QuoteRejection) {
        self.rejected += 1;
        metrics::counter!("gekko_inference_quotes_rejected_total", "reason" => why.as_str())
            .increment(1);
        tracing::debug!(reason = why.as_str(), "quote skipped by feature builder");
    }
}

/// Features for every full window in `quotes` (one vector per quote from the
/// `window + 1`-th accepted quote on), using a fresh [`FeatureBuilder`].
#[must_use]
pub fn features_from_quotes(quotes: &[Quote], window: usize) -> Vec<Vec<f32>> {
    let mut builder = FeatureBuilder::new(window);
    quotes.iter().filter_map(|q| builder.push(q)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gekko_core::{InstrumentId, Quote, VenueId};
    use rust_decimal::Decimal;
    use std::str::FromStr;

    fn instrument() -> InstrumentId {
        InstrumentId::new(VenueId::BinanceUs, "BTC", "USD")
    }

    fn quote(bid: &str, ask: &str, bid_size: &str, ask_size: &str) -> Quote {
        let d = |s: &str| Decimal::from_str(s).expect("decimal");
        Quote {
            instrument: instrument(),
            bid: d(bid),
            bid_size: d(bid_size),
            ask: d(ask),
            ask_size: d(ask_size),
            ts_ms: 0,
        }
    }

    fn close(actual: f32, expected: f64, what: &str) {
        let tol = 1e-6 * expected.abs().max(1e-3);
        assert!(
            (f64::from(actual) - expected).abs() <= tol,
            "{what}: got {actual}, expected {expected}"
        );
    }

    /// Worked example, window = 3, four quotes (so three steps):
    ///
    /// | quote | bid   | ask   | bid size | ask size | mid    |
    /// |-------|-------|-------|----------|----------|--------|
    /// | q0    | 99.0  | 101.0 | 1        | 1        | 100.0  |
    /// | q1    | 100.0 | 102.0 | 3        | 1        | 101.0  |
    /// | q2    | 99.5  | 100.5 | 1        | 4        | 100.0  |
    /// | q3    | 100.9 | 101.1 | 2        | 2        | 101.0  |
    ///
    /// Returns: r1 = ln(101/100) = 0.00995033085316809,
    /// r2 = ln(100/101) = -0.00995033085316809, r3 = ln(101/100) = 0.00995033085316809.
    /// Spreads (bps): 2/101·1e4 = 198.01980198019803, 1/100·1e4 = 100,
    /// 0.2/101·1e4 = 19.801980198019802 (0.2 is 0.19999999999999574 in f64 after
    /// 101.1 - 100.9, which rounds to the same f32).
    /// Imbalance: (3-1)/4 = 0.5, (1-4)/5 = -0.6, 0.
    /// Volatility: std{r1} = 0; std{r1, r2} = |r1| = 0.00995033085316809
    /// (mean 0); std{r1, r2, r3}: mean = r/3, deviations (2r/3, -4r/3, 2r/3),
    /// variance = (4+16+4)/27·r² = 8r²/9, std = r·√8/3 = 0.009381261895099845.
    #[test]
    fn hand_computed_window() {
        let mut b = FeatureBuilder::new(3);
        assert_eq!(b.push(&quote("99.0", "101.0", "1", "1")), None);
        assert_eq!(b.push(&quote("100.0", "102.0", "3", "1")), None);
        assert_eq!(b.push(&quote("99.5", "100.5", "1", "4")), None);
        let f = b
            .push(&quote("100.9", "101.1", "2", "2"))
            .expect("full window");
        let expected = [
            0.009_950_330_853_168_09,
            198.019_801_980_198_03,
            0.5,
            0.0,
            -0.009_950_330_853_168_09,
            100.0,
            -0.6,
            0.009_950_330_853_168_09,
            0.009_950_330_853_168_09,
            19.801_980_198_019_8,
            0.0,
            0.009_381_261_895_099_845,
        ];
        assert_eq!(f.len(), 12);
        for (i, (a, e)) in f.iter().zip(expected).enumerate() {
            close(*a, e, &format!("feature {i}"));
        }
    }

    /// Sliding on by one quote drops the oldest step and recomputes volatility from
    /// the remaining window only: after q4 (bid 101.9, ask 102.1, sizes 1 and 3,
    /// mid 102) the window is r2, r3, r4 with r4 = ln(102/101) = 0.00985229644301164.
    /// Volatility of step 1 is 0 (window-local), of step 2 is |r3 - r2|/2 = r1, and
    /// of step 3 is the population std of (r2, r3, r4):
    /// mean = (-r1 + r1 + r4)/3 = r4/3 = 0.003284098814337213,
    /// deviations -0.013234429667505305, 0.006666232038830879, 0.006568197628674426,
    /// variance = (1.7515013e-4 + 4.4438650e-5 + 4.3141220e-5)/3 = 8.7576667e-5,
    /// std = 0.009358240545.
    #[test]
    fn window_slides() {
        let mut b = FeatureBuilder::new(3);
        for q in [
            quote("99.0", "101.0", "1", "1"),
            quote("100.0", "102.0", "3", "1"),
            quote("99.5", "100.5", "1", "4"),
            quote("100.9", "101.1", "2", "2"),
        ] {
            let _ = b.push(&q);
        }
        let f = b.push(&quote("101.9", "102.1", "1", "3")).expect("window");
        close(f[0], -0.009_950_330_853_168_09, "oldest return");
        close(f[3], 0.0, "oldest vol");
        close(f[7], 0.009_950_330_853_168_09, "second vol");
        close(f[8], 0.009_852_296_443_011_64, "newest return");
        close(f[9], 0.2 / 102.0 * 10_000.0, "newest spread");
        close(f[10], -0.5, "newest imbalance");
        close(f[11], 0.009_358_240_545, "newest vol");
    }

    #[test]
    fn bad_quotes_are_skipped_and_counted() {
        let mut b = FeatureBuilder::new(1);
        assert_eq!(b.push(&quote("100", "101", "1", "1")), None);
        // Crossed, locked, non-positive, negative size: all skipped.
        assert_eq!(b.push(&quote("101", "100", "1", "1")), None);
        assert_eq!(b.push(&quote("100", "100", "1", "1")), None);
        assert_eq!(b.push(&quote("0", "101", "1", "1")), None);
        assert_eq!(b.push(&quote("-1", "101", "1", "1")), None);
        assert_eq!(b.push(&quote("100", "101", "-1", "1")), None);
        assert_eq!(b.rejected(), 5);
        // The next good quote still pairs with the last good one.
        let f = b.push(&quote("100", "101", "0", "0")).expect("window of 1");
        close(f[0], 0.0, "flat return");
        close(f[2], 0.0, "empty book imbalance");
    }

    #[test]
    fn other_instruments_are_rejected() {
        let mut b = FeatureBuilder::new(1);
        let _ = b.push(&quote("100", "101", "1", "1"));
        let mut other = quote("100", "101", "1", "1");
        other.instrument = InstrumentId::new(VenueId::BinanceUs, "ETH", "USD");
        assert_eq!(b.push(&other), None);
        assert_eq!(b.rejected(), 1);
    }

    #[test]
    fn features_from_quotes_matches_builder() {
        let qs = [
            quote("99.0", "101.0", "1", "1"),
            quote("100.0", "102.0", "3", "1"),
            quote("99.5", "100.5", "1", "4"),
        ];
        let all = features_from_quotes(&qs, 2);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].len(), 8);
    }
}
