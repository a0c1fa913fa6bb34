//! `user` channel orders → gekko [`OrderUpdate`]s and [`Fill`]s.
//!
//! Coinbase does not send executions on the `user` channel. Each order event carries the
//! order's *cumulative* state: filled quantity, filled value (or average price) and total
//! fees. A fill is therefore the difference between two states of the same order, which
//! [`CoinbaseFillTracker`] computes:
//!
//! * quantity = `cumulative_quantity` − the previous one;
//! * price = (filled value − the previous filled value) / quantity, the average price of
//!   just this step (several venue fills between two events come out as one fill);
//! * fee = `total_fees` − the previous total fees, in the product's quote currency;
//! * trade id = `<order_id>:<cumulative_quantity>`, stable across replays: a frame seen
//!   twice (a duplicate, or the snapshot after a reconnect repeating a known state) yields
//!   the same id, and the gateway's fill store de-duplicates by trade id.
//!
//! A `snapshot` event (sent after every subscribe) about an order the tracker has never
//! seen only records the order's state as the baseline and reports no fill: the fills
//! that built that state happened before this process watched the order, and the gateway
//! reconciles them over REST on `Connected`. An order first seen in an `update` starts
//! from zero, which is what a new order looks like.
//!
//! The mapping of the order fields (status, side, quantities, limit price) follows the
//! crate's one order parser, [`crate::common::order_update`]; this module reads the same
//! fields from the borrowed typed message instead of a `serde_json::Value`, which is what
//! keeps a user order event under a microsecond, and a test checks the two agree.

use std::collections::HashMap;

use gekko_core::{ClientOrderId, Fill, OrderStatus};
use gekko_venue::{LastFill, OrderUpdate};
use rust_decimal::Decimal;

use super::messages::{EventKind, UserOrderMsg};
use crate::common::{CoinbaseOrderStatus, CoinbaseSide, instrument};

/// Orders tracked at most; the oldest terminal ones are forgotten first.
const MAX_TRACKED: usize = 10_000;

/// An order event that could not be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("user order {order_id}: {reason}")]
pub struct OrderMapError {
    /// The venue order id (possibly empty).
    pub order_id: String,
    /// What was wrong.
    pub reason: String,
}

/// Maps one `user` order to an [`OrderUpdate`] (`last_fill: None`), with `ts_ms` the
/// envelope time.
///
/// # Errors
/// [`OrderMapError`] when the client order id is missing or not gekko-shaped, the product
/// is not `BASE-QUOTE`, the side is unknown, or the status is one gekko cannot act on
/// (`UNKNOWN_ORDER_STATUS` or a value this version does not know).
pub fn order_update(o: &UserOrderMsg<'_>, ts_ms: i64) -> Result<OrderUpdate, OrderMapError> {
    let err = |reason: String| OrderMapError {
        order_id: o.order_id.to_string(),
        reason,
    };
    if o.order_id.is_empty() {
        return Err(err("order_id is missing".to_owned()));
    }
    let client_order_id = ClientOrderId::parse(&o.client_order_id)
        .map_err(|e| err(format!("client_order_id: {e}")))?;
    let instrument = instrument(&o.product_id)
        .ok_or_else(|| err(format!("product_id {:?} is not BASE-QUOTE", o.product_id)))?;
    let side = CoinbaseSide::from_wire(&o.order_side)
        .ok_or_else(|| err(format!("unknown side {:?}", o.order_side)))?
        .to_core();
    let filled_qty = o.cumulative_quantity.unwrap_or_default();
    let leaves = o.leaves_quantity.unwrap_or_default();
    if filled_qty.is_sign_negative() || leaves.is_sign_negative() {
        return Err(err(format!(
            "negative quantity (cumulative {filled_qty}, leaves {leaves})"
        )));
    }
    let status = CoinbaseOrderStatus::from_wire(&o.status)
        .to_core(filled_qty > Decimal::ZERO)
        .ok_or_else(|| err(format!("order status {:?} is not actionable", o.status)))?;
    let qty = filled_qty
        .checked_add(leaves)
        .ok_or_else(|| err("quantity out of range".to_owned()))?;
    let price = o.limit_price.filter(|p| *p > Decimal::ZERO);
    let reject_reason = (status == OrderStatus::Rejected).then(|| {
        [&o.reject_reason, &o.cancel_reason]
            .into_iter()
            .find(|s| !s.is_empty())
            .unwrap_or(&o.status)
            .to_string()
    });
    Ok(OrderUpdate {
        client_order_id,
        venue_order_id: o.order_id.to_string(),
        instrument,
        side,
        status,
        qty,
        price,
        filled_qty,
        cum_quote: cum_quote(o, filled_qty),
        last_fill: None,
        ts_ms,
        reject_reason,
    })
}

/// The filled value: `filled_value` when given (and non-zero once something filled),
/// else `avg_price × cumulative_quantity`.
fn cum_quote(o: &UserOrderMsg<'_>, filled_qty: Decimal) -> Decimal {
    match o.filled_value {
        Some(fv) if fv > Decimal::ZERO || filled_qty.is_zero() => fv,
        _ => o
            .avg_price
            .and_then(|a| a.checked_mul(filled_qty))
            .unwrap_or_default(),
    }
}

/// An order's cumulative state as last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cumulative {
    qty: Decimal,
    value: Decimal,
    fees: Decimal,
    terminal: bool,
    /// Insertion order, for eviction.
    seen: u64,
}

/// Turns cumulative order states into fills. See the module docs.
#[derive(Debug, Default)]
pub struct CoinbaseFillTracker {
    orders: HashMap<String, Cumulative>,
    clock: u64,
}

impl CoinbaseFillTracker {
    /// An empty tracker.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// How many orders are tracked.
    #[must_use]
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    /// Whether no order is tracked.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    /// Records the order's new state and fills `update.last_fill` with the step since
    /// the previous one, if the order filled more. Returns the [`Fill`], if any.
    ///
    /// `kind` is the event's type: a snapshot of an unknown order sets the baseline
    /// without a fill. A state with less filled than before (a replayed old frame) changes
    /// nothing and yields no fill.
    pub fn apply(
        &mut self,
        kind: EventKind,
        msg: &UserOrderMsg<'_>,
        update: &mut OrderUpdate,
    ) -> Option<Fill> {
        let now = Cumulative {
            qty: update.filled_qty,
            value: update.cum_quote,
            fees: msg.total_fees.unwrap_or_default(),
            terminal: update.status.is_terminal(),
            seen: self.clock,
        };
        self.clock += 1;
        let prev = match self.orders.get(update.venue_order_id.as_str()) {
            Some(p) => *p,
            None if kind == EventKind::Snapshot => {
                self.insert(&update.venue_order_id, now);
                return None;
            }
            None => Cumulative {
                qty: Decimal::ZERO,
                value: Decimal::ZERO,
                fees: Decimal::ZERO,
                terminal: false,
                seen: now.seen,
            },
        };
        if now.qty < prev.qty {
            return None;
        }
        self.insert(&update.venue_order_id, now);
        // Checked: the inputs are the venue's numbers, and an overflow must not panic.
        let qty = now.qty.checked_sub(prev.qty)?;
        if qty.is_zero() {
            return None;
        }
        let price = now
            .value
            .checked_sub(prev.value)
            .and_then(|v| v.checked_div(qty))
            .unwrap_or_default();
        let fee = now
            .fees
            .checked_sub(prev.fees)
            .unwrap_or_default()
            .max(Decimal::ZERO);
        update.last_fill = Some(LastFill {
            trade_id: format!("{}:{}", update.venue_order_id, now.qty.normalize()),
            price: price.normalize(),
            qty,
            fee,
            fee_asset: update.instrument.quote.clone(),
        });
        update.fill()
    }

    fn insert(&mut self, order_id: &str, state: Cumulative) {
        if let Some(s) = self.orders.get_mut(order_id) {
            *s = state;
            return;
        }
        if self.orders.len() >= MAX_TRACKED {
            self.evict();
        }
        self.orders.insert(order_id.to_owned(), state);
    }

    /// Forgets the oldest terminal order (or the oldest of all when none is terminal):
    /// a bound on memory for a long-running process.
    fn evict(&mut self) {
        let victim = self
            .orders
            .iter()
            .min_by_key(|(_, s)| (!s.terminal, s.seen))
            .map(|(k, _)| k.clone());
        if let Some(k) = victim {
            self.orders.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    fn order<'a>(cum: &'a str, value: &'a str, fees: &'a str, status: &'a str) -> UserOrderMsg<'a> {
        let d = |s: &str| (!s.is_empty()).then(|| s.parse::<Decimal>().unwrap());
        UserOrderMsg {
            order_id: "ord-1".into(),
            client_order_id: "gk1".into(),
            product_id: "BTC-USD".into(),
            order_side: "BUY".into(),
            status: status.into(),
            cumulative_quantity: d(cum),
            leaves_quantity: d("1").map(|l| l - d(cum).unwrap_or_default()),
            avg_price: None,
            filled_value: d(value),
            total_fees: d(fees),
            limit_price: d("100"),
            reject_reason: "".into(),
            cancel_reason: "".into(),
            creation_time: "".into(),
        }
    }

    fn step(t: &mut CoinbaseFillTracker, kind: EventKind, o: &UserOrderMsg<'_>) -> Option<Fill> {
        let mut u = order_update(o, 7).unwrap();
        t.apply(kind, o, &mut u)
    }

    #[test]
    fn fills_are_differences_with_stable_ids() {
        let mut t = CoinbaseFillTracker::new();
        assert_eq!(
            step(&mut t, EventKind::Update, &order("0", "0", "0", "OPEN")),
            None
        );
        let f = step(
            &mut t,
            EventKind::Update,
            &order("0.4", "40", "0.1", "OPEN"),
        )
        .unwrap();
        assert_eq!((f.qty, f.price, f.fee), (dec!(0.4), dec!(100), dec!(0.1)));
        assert_eq!(f.trade_id, "ord-1:0.4");
        assert_eq!(f.fee_asset, "USD");
        // The same state again (a duplicate frame): nothing new.
        assert_eq!(
            step(
                &mut t,
                EventKind::Update,
                &order("0.4", "40", "0.1", "OPEN")
            ),
            None
        );
        let f = step(
            &mut t,
            EventKind::Update,
            &order("1", "103", "0.25", "FILLED"),
        )
        .unwrap();
        assert_eq!((f.qty, f.price, f.fee), (dec!(0.6), dec!(105), dec!(0.15)));
        assert_eq!(f.trade_id, "ord-1:1");
        // An older frame replayed out of order changes nothing.
        assert_eq!(
            step(
                &mut t,
                EventKind::Update,
                &order("0.4", "40", "0.1", "OPEN")
            ),
            None
        );
        assert_eq!(
            step(
                &mut t,
                EventKind::Update,
                &order("1", "103", "0.25", "FILLED")
            ),
            None
        );
    }

    #[test]
    fn a_snapshot_of_an_unknown_order_is_a_baseline_and_a_known_one_reports_the_step() {
        let mut t = CoinbaseFillTracker::new();
        assert_eq!(
            step(
                &mut t,
                EventKind::Snapshot,
                &order("0.4", "40", "0.1", "OPEN")
            ),
            None
        );
        let f = step(
            &mut t,
            EventKind::Snapshot,
            &order("0.5", "51", "0.1", "OPEN"),
        )
        .unwrap();
        assert_eq!((f.qty, f.price, f.fee), (dec!(0.1), dec!(110), dec!(0)));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn mapping_refuses_foreign_or_unknown_orders() {
        let mut o = order("0", "0", "0", "OPEN");
        assert_eq!(order_update(&o, 1).unwrap().status, OrderStatus::New);
        o.status = "UNKNOWN_ORDER_STATUS".into();
        assert!(
            order_update(&o, 1)
                .unwrap_err()
                .reason
                .contains("not actionable")
        );
        o.status = "FAILED".into();
        o.reject_reason = "INSUFFICIENT_FUND".into();
        let u = order_update(&o, 1).unwrap();
        assert_eq!(u.status, OrderStatus::Rejected);
        assert_eq!(u.reject_reason.as_deref(), Some("INSUFFICIENT_FUND"));
        o.client_order_id = "".into();
        assert!(order_update(&o, 1).is_err());
        let mut o = order("0", "0", "0", "OPEN");
        o.order_side = "HOLD".into();
        assert!(order_update(&o, 1).is_err());
        o.order_side = "sell".into();
        o.product_id = "BTCUSD".into();
        assert!(order_update(&o, 1).is_err());
    }

    #[test]
    fn the_tracker_is_bounded() {
        let mut t = CoinbaseFillTracker::new();
        for n in 0..(MAX_TRACKED + 5) {
            let mut o = order("0", "0", "0", "FILLED");
            let id = format!("ord-{n}");
            o.order_id = id.as_str().into();
            let mut u = order_update(&o, 1).unwrap();
            t.apply(EventKind::Update, &o, &mut u);
        }
        assert_eq!(t.len(), MAX_TRACKED);
    }
}
