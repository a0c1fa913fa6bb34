//! The margin account model: netted positions, FIFO trades, margin, unrealized P/L and
//! the closeout rule, in one venue-neutral place.
//!
//! Spot venues (Binance.US, Coinbase) move assets between free and locked balances; a
//! margin venue (OANDA) instead keeps open *trades* per instrument whose sum is a net
//! position (positive units long, negative short), and limits orders by *margin*. That is
//! a different ledger, not a special case of spot balances. The OANDA simulator keeps its
//! trade records (ids, client extensions, transactions) and does its accounting through
//! this module:
//!
//! - **Netting, hedging off** ([`net_fifo`]): a fill first reduces the open trades of the
//!   other direction, oldest first, and only the remainder opens a new trade.
//! - **P/L**: a reduction realizes `(fill - entry) × closed units` ([`realized_pl`]); an
//!   open trade's unrealized P/L is valued at the price it would close at, the bid for a
//!   long and the ask for a short ([`unrealized_pl`]).
//! - **Margin**: `|units| × mid × marginRate` per instrument ([`position_margin`]).
//! - **Account figures** ([`MarginFigures`]): NAV is the balance plus unrealized P/L,
//!   margin available what the NAV leaves above the margin used, and the closeout percent
//!   half the margin used over the NAV. An order that raises the margin used above the
//!   NAV is refused ([`MarginFigures::admits`]); at a closeout percent of 1 every position
//!   is closed out ([`MarginFigures::closeout_due`]).
//!
//! Amounts here are in the instrument's quote currency, or in whatever currency the
//! caller converted them to (the simulator converts into the account's home currency
//! before it builds [`MarginFigures`]). [`Position`] is the net view of one instrument
//! that [`super::EngineEvent::PositionChanged`] carries.
//!
//! Position arithmetic, as OANDA documents it for netting accounts:
//! - adding to a position (same direction) moves the average price to the
//!   quantity-weighted mean of the old average and the fill price;
//! - reducing a position realizes `(fill - average) * closed units` (sign-adjusted for
//!   shorts) and leaves the average unchanged;
//! - a fill larger than the position closes it and opens the remainder the other way at
//!   the fill price.

use rust_decimal::Decimal;

use super::types::SimSide;

/// A net position in one instrument.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    /// Signed units: positive long, negative short, zero flat.
    pub units: Decimal,
    /// Average entry price of the open units (zero when flat).
    pub avg_price: Decimal,
    /// Profit or loss realized by reductions so far, in the account currency.
    pub realized_pl: Decimal,
}

impl Position {
    /// `true` when no units are open.
    #[must_use]
    pub fn is_flat(&self) -> bool {
        self.units.is_zero()
    }

    /// Unrealized profit or loss of the open units at `price`.
    #[must_use]
    pub fn unrealized_pl(&self, price: Decimal) -> Decimal {
        (price - self.avg_price) * self.units
    }

    /// Applies a fill of `qty` (positive) at `price`; returns the profit or loss it
    /// realized.
    pub fn apply(&mut self, side: SimSide, qty: Decimal, price: Decimal) -> Decimal {
        let qty = qty.max(Decimal::ZERO);
        let signed = match side {
            SimSide::Buy => qty,
            SimSide::Sell => -qty,
        };
        if self.units.is_zero() || self.units.is_sign_positive() == signed.is_sign_positive() {
            // Opening or adding: weighted average of entry prices.
            let total = self.units + signed;
            if !total.is_zero() {
                self.avg_price = (self.avg_price * self.units.abs() + price * qty) / total.abs();
            }
            self.units = total;
            return Decimal::ZERO;
        }
        // Reducing, closing or flipping.
        let closed = qty.min(self.units.abs());
        let direction = if self.units.is_sign_positive() {
            Decimal::ONE
        } else {
            -Decimal::ONE
        };
        let pl = (price - self.avg_price) * closed * direction;
        self.realized_pl += pl;
        self.units += signed;
        if self.units.is_zero() {
            self.avg_price = Decimal::ZERO;
        } else if self.units.is_sign_positive() != direction.is_sign_positive() {
            // Flipped: the remainder is a new position opened at the fill price.
            self.avg_price = price;
        }
        pl
    }
}

/// How a fill meets the open trades of its instrument ([`net_fifo`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Netting {
    /// `(trade id, units closed)`, oldest trade first; the units carry the sign of the
    /// trade they close (a long reduced by 5 is `5`, a short reduced by 5 is `-5`).
    pub reduced: Vec<(u64, Decimal)>,
    /// Signed units left over, which open a new trade (zero: none).
    pub remainder: Decimal,
}

/// Netting with hedging off: a fill of `signed` units (positive buys) against the open
/// trades `open` of one instrument, `(trade id, signed current units)` oldest first.
/// Trades of the fill's own direction are left alone; the other direction's are reduced
/// oldest first, and what the fill has left opens a new trade.
#[must_use]
pub fn net_fifo(open: &[(u64, Decimal)], signed: Decimal) -> Netting {
    let mut remaining = signed.abs();
    let mut reduced = Vec::new();
    for &(id, units) in open {
        if remaining.is_zero() {
            break;
        }
        if units.is_zero() || units.is_sign_positive() == signed.is_sign_positive() {
            continue;
        }
        let take = remaining.min(units.abs());
        reduced.push((
            id,
            if units.is_sign_positive() {
                take
            } else {
                -take
            },
        ));
        remaining -= take;
    }
    Netting {
        reduced,
        remainder: if signed.is_sign_negative() {
            -remaining
        } else {
            remaining
        },
    }
}

/// P/L realized by closing `closed` units (signed as the trade) entered at `entry`, at
/// `price`.
#[must_use]
pub fn realized_pl(closed: Decimal, entry: Decimal, price: Decimal) -> Decimal {
    (price - entry) * closed
}

/// The price `units` close at: the bid for a long, the ask for a short.
#[must_use]
pub fn closeout_price(units: Decimal, bid: Decimal, ask: Decimal) -> Decimal {
    if units.is_sign_positive() { bid } else { ask }
}

/// Unrealized P/L of `units` (signed) entered at `entry`, valued at the closeout side
/// of `bid`/`ask`.
#[must_use]
pub fn unrealized_pl(units: Decimal, entry: Decimal, bid: Decimal, ask: Decimal) -> Decimal {
    (closeout_price(units, bid, ask) - entry) * units
}

/// The margin `units` (either sign) need at `mid` with `margin_rate` (`0.02`: 50:1).
#[must_use]
pub fn position_margin(units: Decimal, mid: Decimal, margin_rate: Decimal) -> Decimal {
    units.abs() * mid * margin_rate
}

/// A margin account's figures, in one currency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MarginFigures {
    /// Net asset value: balance plus unrealized P/L.
    pub nav: Decimal,
    /// Margin held by the open positions.
    pub used: Decimal,
    /// What the NAV leaves above the margin used (never negative).
    pub available: Decimal,
    /// Half the margin used over the NAV, to 5 decimals: at 1 the account is closed out.
    /// A NAV at or below zero is 1 while anything is open, 0 otherwise.
    pub closeout_percent: Decimal,
}

impl MarginFigures {
    /// The figures of a `balance`, the `unrealized` P/L of the open trades and the
    /// margin `used` by the open positions.
    #[must_use]
    pub fn new(balance: Decimal, unrealized: Decimal, used: Decimal) -> Self {
        let nav = balance + unrealized;
        let available = (nav - used).max(Decimal::ZERO);
        let closeout_percent = if nav <= Decimal::ZERO {
            if used.is_zero() {
                Decimal::ZERO
            } else {
                Decimal::ONE
            }
        } else {
            (used / Decimal::TWO / nav).round_dp(5)
        };
        Self {
            nav,
            used,
            available,
            closeout_percent,
        }
    }

    /// Whether an order after which the margin used would be `used_after` may go ahead:
    /// refused only when it raises the margin used and that exceeds the NAV (an order
    /// that reduces exposure always may).
    #[must_use]
    pub fn admits(&self, used_after: Decimal) -> bool {
        !(used_after > self.used && used_after > self.nav)
    }

    /// Whether every position must be closed out now.
    #[must_use]
    pub fn closeout_due(&self) -> bool {
        !self.used.is_zero() && self.closeout_percent >= Decimal::ONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn adding_averages_the_entry_price_and_reducing_realizes() {
        let mut p = Position::default();
        p.apply(SimSide::Buy, dec!(100), dec!(1.10));
        assert_eq!(p.apply(SimSide::Buy, dec!(300), dec!(1.20)), Decimal::ZERO);
        assert_eq!((p.units, p.avg_price), (dec!(400), dec!(1.175)));
        assert_eq!(p.apply(SimSide::Sell, dec!(40), dec!(1.185)), dec!(0.400));
        assert_eq!((p.units, p.avg_price), (dec!(360), dec!(1.175)));
        // Through zero: the remainder opens the other way at the fill price.
        p.apply(SimSide::Sell, dec!(400), dec!(1.2));
        assert_eq!((p.units, p.avg_price), (dec!(-40), dec!(1.2)));
        assert_eq!(p.unrealized_pl(dec!(1.1)), dec!(4.0));
    }

    #[test]
    fn netting_reduces_the_opposite_trades_oldest_first() {
        let open = [(3, dec!(100)), (5, dec!(-20)), (7, dec!(50))];
        // A sell of 120: trade 3 closes, 20 of trade 7; the short (5) is left alone.
        let n = net_fifo(&open, dec!(-120));
        assert_eq!(n.reduced, vec![(3, dec!(100)), (7, dec!(20))]);
        assert_eq!(n.remainder, Decimal::ZERO);
        // A sell of 200 closes both longs and opens a 50 short.
        let n = net_fifo(&open, dec!(-200));
        assert_eq!(n.reduced, vec![(3, dec!(100)), (7, dec!(50))]);
        assert_eq!(n.remainder, dec!(-50));
        // A buy of 30 reduces the short by 20 and opens 10 long.
        let n = net_fifo(&open, dec!(30));
        assert_eq!(n.reduced, vec![(5, dec!(-20))]);
        assert_eq!(n.remainder, dec!(10));
        // Nothing opposite: it all opens.
        assert_eq!(
            net_fifo(&[], dec!(-5)),
            Netting {
                reduced: vec![],
                remainder: dec!(-5)
            }
        );
    }

    #[test]
    fn pl_is_valued_at_the_closeout_side() {
        // A long closes at the bid, a short at the ask.
        assert_eq!(
            unrealized_pl(dec!(1000), dec!(1.1), dec!(1.2), dec!(1.3)),
            dec!(100.0)
        );
        assert_eq!(
            unrealized_pl(dec!(-1000), dec!(1.4), dec!(1.2), dec!(1.3)),
            dec!(100.0)
        );
        assert_eq!(realized_pl(dec!(-10), dec!(150), dec!(149)), dec!(10));
        assert_eq!(realized_pl(dec!(10), dec!(150), dec!(149)), dec!(-10));
        assert_eq!(
            position_margin(dec!(-10000), dec!(1.1), dec!(0.02)),
            dec!(220.000)
        );
    }

    #[test]
    fn figures_admission_and_closeout() {
        let f = MarginFigures::new(dec!(1000), dec!(-100), dec!(300));
        assert_eq!(f.nav, dec!(900));
        assert_eq!(f.available, dec!(600));
        assert_eq!(f.closeout_percent, dec!(0.16667));
        assert!(!f.closeout_due());
        assert!(f.admits(dec!(900)), "up to the NAV");
        assert!(!f.admits(dec!(901)), "beyond the NAV");
        // An order that lowers the margin used goes ahead even when it stays above.
        let deep = MarginFigures::new(dec!(100), Decimal::ZERO, dec!(150));
        assert_eq!(deep.available, Decimal::ZERO);
        assert!(deep.admits(dec!(120)));
        assert!(!deep.admits(dec!(151)));
        // Half the margin used reaching the NAV closes out; so does a NAV at zero.
        assert!(MarginFigures::new(dec!(100), dec!(0), dec!(200)).closeout_due());
        let broke = MarginFigures::new(dec!(100), dec!(-100), dec!(10));
        assert_eq!(broke.closeout_percent, Decimal::ONE);
        assert!(broke.closeout_due());
        let flat = MarginFigures::new(Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
        assert_eq!(flat.closeout_percent, Decimal::ZERO);
        assert!(!flat.closeout_due());
    }
}
