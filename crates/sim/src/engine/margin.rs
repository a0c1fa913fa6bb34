//! Margin accounts: one signed position per instrument, with its average price.
//!
//! Spot venues (Binance.US, Coinbase) move assets between free and locked balances; a
//! margin venue (OANDA) instead keeps a *net position* per instrument: positive units
//! long, negative short, and an average entry price. That is a different ledger, not a
//! special case of spot balances, so it lives in its own type that a future OANDA
//! simulator's engine accounts use, and that the engine announces through
//! [`super::EngineEvent::PositionChanged`].
//!
//! Position arithmetic, as OANDA documents it for netting accounts:
//! - adding to a position (same direction) moves the average price to the
//!   quantity-weighted mean of the old average and the fill price;
//! - reducing a position realizes `(fill - average) * closed units` (sign-adjusted for
//!   shorts) into the account balance and leaves the average unchanged;
//! - a fill larger than the position closes it and opens the remainder the other way at
//!   the fill price.

use std::collections::BTreeMap;

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

/// A margin account: a cash balance plus net positions per instrument.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarginAccount {
    /// Cash balance in the account currency (realized P/L is credited here).
    pub balance: Decimal,
    positions: BTreeMap<String, Position>,
}

impl MarginAccount {
    /// An account with `balance` and no positions.
    #[must_use]
    pub fn new(balance: Decimal) -> Self {
        Self {
            balance,
            positions: BTreeMap::new(),
        }
    }

    /// The position in `instrument` (flat when never traded).
    #[must_use]
    pub fn position(&self, instrument: &str) -> Position {
        self.positions.get(instrument).copied().unwrap_or_default()
    }

    /// Every instrument ever traded and its position, by instrument.
    pub fn positions(&self) -> impl Iterator<Item = (&str, &Position)> {
        self.positions.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Applies a fill to the instrument's position and credits realized P/L to the
    /// balance; returns the position after the fill.
    pub fn apply_fill(
        &mut self,
        instrument: &str,
        side: SimSide,
        qty: Decimal,
        price: Decimal,
    ) -> &Position {
        let p = self.positions.entry(instrument.to_owned()).or_default();
        self.balance += p.apply(side, qty, price);
        p
    }

    /// Net asset value at the given marks: balance plus every position's unrealized P/L.
    /// Instruments without a mark count at their average price (no P/L).
    #[must_use]
    pub fn nav(&self, marks: &BTreeMap<String, Decimal>) -> Decimal {
        self.balance
            + self
                .positions
                .iter()
                .map(|(k, p)| marks.get(k).map_or(Decimal::ZERO, |m| p.unrealized_pl(*m)))
                .sum::<Decimal>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn adding_averages_the_entry_price() {
        let mut a = MarginAccount::new(dec!(1000));
        a.apply_fill("EUR_USD", SimSide::Buy, dec!(100), dec!(1.10));
        let p = *a.apply_fill("EUR_USD", SimSide::Buy, dec!(300), dec!(1.20));
        assert_eq!(p.units, dec!(400));
        assert_eq!(p.avg_price, dec!(1.175));
        assert_eq!(p.realized_pl, Decimal::ZERO);
        assert_eq!(a.balance, dec!(1000));
    }

    #[test]
    fn reducing_realizes_pl_and_keeps_the_average() {
        let mut a = MarginAccount::new(dec!(1000));
        a.apply_fill("EUR_USD", SimSide::Buy, dec!(100), dec!(1.10));
        let p = *a.apply_fill("EUR_USD", SimSide::Sell, dec!(40), dec!(1.15));
        assert_eq!(p.units, dec!(60));
        assert_eq!(p.avg_price, dec!(1.10));
        assert_eq!(p.realized_pl, dec!(2.00));
        assert_eq!(a.balance, dec!(1002.00));
        let p = *a.apply_fill("EUR_USD", SimSide::Sell, dec!(60), dec!(1.05));
        assert!(p.is_flat());
        assert_eq!(p.avg_price, Decimal::ZERO);
        assert_eq!(a.balance, dec!(999.00));
    }

    #[test]
    fn shorts_are_negative_and_profit_when_price_falls() {
        let mut a = MarginAccount::new(Decimal::ZERO);
        a.apply_fill("USD_JPY", SimSide::Sell, dec!(10), dec!(150));
        a.apply_fill("USD_JPY", SimSide::Sell, dec!(10), dec!(152));
        let p = a.position("USD_JPY");
        assert_eq!((p.units, p.avg_price), (dec!(-20), dec!(151)));
        assert_eq!(p.unrealized_pl(dec!(149)), dec!(40));
        let p = *a.apply_fill("USD_JPY", SimSide::Buy, dec!(5), dec!(149));
        assert_eq!(
            (p.units, p.avg_price, p.realized_pl),
            (dec!(-15), dec!(151), dec!(10))
        );
    }

    #[test]
    fn a_fill_through_zero_flips_at_the_fill_price() {
        let mut a = MarginAccount::new(Decimal::ZERO);
        a.apply_fill("XAU_USD", SimSide::Buy, dec!(2), dec!(2000));
        let p = *a.apply_fill("XAU_USD", SimSide::Sell, dec!(5), dec!(2010));
        assert_eq!(p.units, dec!(-3));
        assert_eq!(p.avg_price, dec!(2010));
        assert_eq!(p.realized_pl, dec!(20));
        assert_eq!(a.balance, dec!(20));
        let marks = BTreeMap::from([("XAU_USD".to_owned(), dec!(2000))]);
        assert_eq!(a.nav(&marks), dec!(50));
        assert_eq!(a.positions().count(), 1);
    }
}
