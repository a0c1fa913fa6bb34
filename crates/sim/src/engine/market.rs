//! The synthetic market: a seeded random walk that keeps a plausible order book moving.
//!
//! Gateways need a market that moves (so resting orders eventually fill and depth streams
//! carry diffs) but tests need it to be *reproducible*. Each symbol therefore owns a
//! `ChaCha8Rng` seeded from the config seed and the symbol's position (its own ChaCha
//! stream), and every tick draws the same number of values from it whatever the state of
//! the book. Two generators built from the same seed and symbols produce the same books
//! tick after tick, even if user orders consumed liquidity in between: consumption only
//! changes which drawn values are used, never how many.
//!
//! Prices live on an integer tick grid (`price = ticks * tick_size`) and quantities on the
//! step grid, so every generated level already passes the price and lot-size rules, and all
//! arithmetic is exact decimal.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::types::SimSymbol;

/// Levels per side of the synthetic book.
pub const LEVELS: i64 = 20;

/// A public trade the generator made up this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticTrade {
    /// Trade price (the best bid or best ask).
    pub price: Decimal,
    /// Trade quantity.
    pub qty: Decimal,
    /// `true` when the buyer was the resting side (a sell aggressor hit the bid).
    pub buyer_maker: bool,
}

/// One symbol's synthetic liquidity and random walk.
#[derive(Debug, Clone)]
pub struct SymbolMarket {
    /// The symbol definition.
    pub spec: SimSymbol,
    rng: ChaCha8Rng,
    /// Best bid in ticks.
    best_bid: i64,
    /// Distance between generated levels, in ticks.
    spacing: i64,
    /// Largest move of the walk per tick, in ticks.
    vol: i64,
    /// Narrowest spread, in ticks (1 unless a venue sets a typical spread).
    min_spread: i64,
    /// Lowest allowed best bid, in ticks, so the deepest bid stays positive.
    floor: i64,
    /// Level size range, in steps.
    level_units: (u64, u64),
    /// Trade size range, in steps.
    trade_units: (u64, u64),
    /// Synthetic bid levels (price -> qty).
    pub bids: BTreeMap<Decimal, Decimal>,
    /// Synthetic ask levels (price -> qty).
    pub asks: BTreeMap<Decimal, Decimal>,
}

/// `notional / price / step`, floored, as a count of steps; `None` when it does not fit.
fn units_for(notional: Decimal, price: Decimal, step: Decimal) -> Option<u64> {
    if price.is_zero() || step.is_zero() {
        return None;
    }
    notional
        .checked_div(price)?
        .checked_div(step)?
        .floor()
        .to_u64()
}

impl SymbolMarket {
    /// Builds the symbol's market and its first book. `stream` separates the random
    /// streams of different symbols under one seed.
    #[must_use]
    pub fn new(spec: SimSymbol, seed: u64, stream: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        let tick = spec.tick_size;
        let start = spec
            .start_price
            .checked_div(tick)
            .and_then(|t| t.round().to_i64())
            .unwrap_or(1_000_000);
        // Levels 0.005% of the price apart, so 20 levels span about 0.1%: dense like a
        // real top of book, wide enough that the walk does not empty it every tick.
        let spacing = (spec.start_price * Decimal::new(5, 5))
            .checked_div(tick)
            .and_then(|t| t.floor().to_i64())
            .unwrap_or(1)
            .max(1);
        let min_units = spec
            .min_qty
            .checked_div(spec.step_size)
            .and_then(|u| u.ceil().to_u64())
            .unwrap_or(1)
            .max(1);
        let max_units = spec
            .max_qty
            .checked_div(spec.step_size)
            .and_then(|u| u.floor().to_u64())
            .unwrap_or(u64::MAX)
            .max(min_units);
        let price = spec.start_price;
        let step = spec.step_size;
        // Levels worth roughly 500..50000 in quote currency, trades 1 step..2000.
        let lo = units_for(Decimal::from(500), price, step)
            .unwrap_or(min_units)
            .clamp(min_units, max_units);
        let hi = units_for(Decimal::from(50_000), price, step)
            .unwrap_or(lo)
            .clamp(lo, max_units);
        let thi = units_for(Decimal::from(2_000), price, step)
            .unwrap_or(min_units)
            .clamp(min_units, max_units);
        let floor = spacing * (LEVELS + 5) + 2;
        let mut m = Self {
            spec,
            rng,
            best_bid: start.max(floor),
            spacing,
            vol: spacing,
            min_spread: 1,
            floor,
            level_units: (lo, hi.max(lo)),
            trade_units: (min_units, thi),
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
        };
        m.regenerate(false);
        m
    }

    fn price(&self, ticks: i64) -> Decimal {
        self.spec.tick_size * Decimal::from(ticks)
    }

    fn qty(&self, units: u64) -> Decimal {
        self.spec.step_size * Decimal::from(units)
    }

    /// Moves the walk and rebuilds both sides. Always draws the same number of random
    /// values (see the module docs).
    fn regenerate(&mut self, walk: bool) -> (i64, i64) {
        let delta = self.rng.random_range(-self.vol..=self.vol);
        if walk {
            self.best_bid = (self.best_bid + delta).max(self.floor);
        }
        let extra = self.rng.random_range(0..=1i64);
        let best_ask = self.best_bid + self.min_spread + extra; // spread >= min_spread
        let (lo, hi) = self.level_units;
        let mut bids = BTreeMap::new();
        let mut asks = BTreeMap::new();
        for i in 0..LEVELS {
            for (side_bid, ticks) in [
                (true, self.best_bid - i * self.spacing),
                (false, best_ask + i * self.spacing),
            ] {
                let keep = self.rng.random_bool(0.7);
                let units = self.rng.random_range(lo..=hi);
                let fresh = self.qty(units);
                let price = self.price(ticks);
                let old = if side_bid {
                    self.bids.get(&price)
                } else {
                    self.asks.get(&price)
                };
                let qty = match old {
                    Some(q) if keep => *q,
                    _ => fresh,
                };
                if side_bid {
                    bids.insert(price, qty);
                } else {
                    asks.insert(price, qty);
                }
            }
        }
        self.bids = bids;
        self.asks = asks;
        (self.best_bid, best_ask)
    }

    /// Sets the narrowest spread to `ticks` (at least 1) and rebuilds the book around
    /// the same best bid. A venue whose quotes have a typical spread wider than a tick
    /// (OANDA: about a pip) uses it; the others keep the one-tick default, and their
    /// random streams are unchanged.
    pub fn set_min_spread(&mut self, ticks: i64) {
        self.min_spread = ticks.max(1);
        self.regenerate(false);
    }

    /// One generator step: moves the mid, refreshes the levels, and maybe makes up a
    /// public trade at the touch.
    pub fn tick(&mut self) -> Option<SyntheticTrade> {
        let (bid, ask) = self.regenerate(true);
        let happens = self.rng.random_bool(0.3);
        let buyer_maker = self.rng.random_bool(0.5);
        let (tlo, thi) = self.trade_units;
        let units = self.rng.random_range(tlo..=thi);
        let qty = self.qty(units);
        happens.then(|| SyntheticTrade {
            price: if buyer_maker {
                self.price(bid)
            } else {
                self.price(ask)
            },
            qty,
            buyer_maker,
        })
    }

    /// Mid of the synthetic touch, the reference price for MARKET order notional checks.
    #[must_use]
    pub fn reference_price(&self) -> Decimal {
        match (self.bids.keys().next_back(), self.asks.keys().next()) {
            (Some(b), Some(a)) => (*b + *a) / Decimal::TWO,
            (Some(p), None) | (None, Some(p)) => *p,
            (None, None) => self.spec.start_price,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn btc() -> SimSymbol {
        SimSymbol {
            symbol: "BTCUSD".into(),
            base: "BTC".into(),
            quote: "USD".into(),
            start_price: dec!(60000),
            tick_size: dec!(0.01),
            step_size: dec!(0.00001),
            min_qty: dec!(0.00001),
            max_qty: dec!(9000),
            min_notional: dec!(10),
        }
    }

    #[test]
    fn same_seed_same_books() {
        let mut a = SymbolMarket::new(btc(), 7, 0);
        let mut b = SymbolMarket::new(btc(), 7, 0);
        for _ in 0..200 {
            assert_eq!(a.tick(), b.tick());
            assert_eq!(a.bids, b.bids);
            assert_eq!(a.asks, b.asks);
        }
        let mut c = SymbolMarket::new(btc(), 8, 0);
        c.tick();
        a.tick();
        assert_ne!(a.bids, c.bids);
    }

    #[test]
    fn a_minimum_spread_holds_every_tick() {
        let mut m = SymbolMarket::new(btc(), 1, 0);
        m.set_min_spread(50);
        for _ in 0..100 {
            m.tick();
            let best_bid = *m.bids.keys().next_back().expect("bid");
            let best_ask = *m.asks.keys().next().expect("ask");
            let spread = best_ask - best_bid;
            assert!(spread >= dec!(0.50) && spread <= dec!(0.51), "{spread}");
        }
    }

    #[test]
    fn book_is_well_formed_every_tick() {
        let mut m = SymbolMarket::new(btc(), 1, 0);
        for _ in 0..500 {
            m.tick();
            assert_eq!(m.bids.len(), LEVELS as usize);
            assert_eq!(m.asks.len(), LEVELS as usize);
            let best_bid = *m.bids.keys().next_back().expect("bid");
            let best_ask = *m.asks.keys().next().expect("ask");
            assert!(best_ask - best_bid >= m.spec.tick_size, "spread >= 1 tick");
            for (p, q) in m.bids.iter().chain(m.asks.iter()) {
                assert!(*p > Decimal::ZERO && *q >= m.spec.min_qty);
                assert!((*p % m.spec.tick_size).is_zero());
                assert!((*q % m.spec.step_size).is_zero());
            }
        }
    }
}
