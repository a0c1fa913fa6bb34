//! Spot accounts: free and locked balances per asset.
//!
//! A spot venue reserves what an order may cost when it accepts the order (quote for a
//! buy, base for a sell) and settles fills out of that reservation, so "free" is always
//! what a new order can use. Margin accounts keep positions instead (see
//! [`super::margin`]).

use std::collections::BTreeMap;

use rust_decimal::Decimal;

/// One asset's balance.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Bal {
    pub(crate) free: Decimal,
    pub(crate) locked: Decimal,
}

/// A spot account.
#[derive(Debug, Default)]
pub(crate) struct SpotAccount {
    /// Balances by asset (sorted, so listings are stable).
    pub(crate) balances: BTreeMap<String, Bal>,
    /// Last balance change (engine ms).
    pub(crate) update_time: i64,
}

impl SpotAccount {
    /// The balance of `asset`, created at zero if missing.
    pub(crate) fn bal(&mut self, asset: &str) -> &mut Bal {
        self.balances.entry(asset.to_owned()).or_default()
    }

    /// Free amount of `asset`.
    pub(crate) fn free(&self, asset: &str) -> Decimal {
        self.balances.get(asset).map_or(Decimal::ZERO, |b| b.free)
    }

    /// Moves `amount` from free to locked.
    pub(crate) fn lock(&mut self, asset: &str, amount: Decimal) {
        let b = self.bal(asset);
        b.free -= amount;
        b.locked += amount;
    }

    /// Moves `amount` from locked back to free.
    pub(crate) fn release(&mut self, asset: &str, amount: Decimal) {
        let b = self.bal(asset);
        b.locked -= amount;
        b.free += amount;
    }
}
