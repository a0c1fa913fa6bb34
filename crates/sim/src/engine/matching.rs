//! Walking synthetic liquidity for a taker order, without changing anything.
//!
//! Placing an order first *plans* its immediate execution against the synthetic side it
//! would hit, so the engine can apply fill-or-kill, size the funds a MARKET order needs,
//! and reject for insufficient balance before any state changes. Only then are the
//! planned fills applied.

use rust_decimal::Decimal;

use super::market::SymbolMarket;
use super::types::SimSide;

/// Result of walking the synthetic book.
pub(crate) struct Plan {
    /// `(price, qty)` per level taken, best first.
    pub(crate) fills: Vec<(Decimal, Decimal)>,
    /// The walk ran out of liquidity before the order was satisfied.
    pub(crate) short: bool,
}

/// What the taker wants: a base quantity or a quote amount.
#[derive(Clone, Copy)]
pub(crate) enum Want {
    Base(Decimal),
    Quote(Decimal),
}

/// `x` rounded down to the `step` grid.
pub(crate) fn floor_step(x: Decimal, step: Decimal) -> Decimal {
    x.checked_div(step)
        .map_or(Decimal::ZERO, |u| u.floor() * step)
}

/// Walks the synthetic side a taker order would hit, without changing anything.
pub(crate) fn plan(m: &SymbolMarket, side: SimSide, limit: Option<Decimal>, want: Want) -> Plan {
    let step = m.spec.step_size;
    let levels: Vec<(Decimal, Decimal)> = match side {
        SimSide::Buy => m.asks.iter().map(|(p, q)| (*p, *q)).collect(),
        SimSide::Sell => m.bids.iter().rev().map(|(p, q)| (*p, *q)).collect(),
    };
    let mut fills = Vec::new();
    let mut rem = match want {
        Want::Base(q) | Want::Quote(q) => q,
    };
    let mut satisfied = false;
    for (p, q) in levels {
        let crosses = match (side, limit) {
            (_, None) => true,
            (SimSide::Buy, Some(l)) => p <= l,
            (SimSide::Sell, Some(l)) => p >= l,
        };
        if !crosses {
            // Not short: a limit order simply stops at its price.
            satisfied = true;
            break;
        }
        let take = match want {
            Want::Base(_) => rem.min(q),
            Want::Quote(_) => q.min(floor_step(rem.checked_div(p).unwrap_or_default(), step)),
        };
        if take <= Decimal::ZERO {
            satisfied = true;
            break;
        }
        fills.push((p, take));
        rem -= match want {
            Want::Base(_) => take,
            Want::Quote(_) => take * p,
        };
        if rem <= Decimal::ZERO {
            satisfied = true;
            break;
        }
    }
    Plan {
        fills,
        short: !satisfied && rem > Decimal::ZERO,
    }
}
