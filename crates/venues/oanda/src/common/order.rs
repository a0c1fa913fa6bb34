//! The one mapping from OANDA orders and transactions to gekko's [`OrderUpdate`] and
//! [`Fill`], shared by the REST answers, `/changes` and the transaction stream.
//!
//! OANDA reports an order's life as separate transactions: a create (`MARKET_ORDER`,
//! `LIMIT_ORDER`), then an `ORDER_FILL` and/or an `ORDER_CANCEL`, or a `*_ORDER_REJECT`
//! instead. A cancel carries only the order id, not the instrument, side or size, so the
//! mapping needs memory of the creates it has seen: [`OrderTracker`] keeps the open
//! orders by venue id and folds each transaction into the order it is about. A REST
//! create answer runs its transactions through a fresh tracker; the stream keeps one for
//! its whole life, seeded from the open orders at (re)connect.
//!
//! Conventions (reference §3.2, §3.8):
//! * units are signed: positive is a buy, negative a sell; quantities here are absolute;
//! * `clientExtensions.id` (creates, rejects) and `clientOrderID` (fills, cancels) carry
//!   gekko's client order id; an order gekko did not name (placed elsewhere, a stop-loss)
//!   gets `oanda:<orderID>` so its fills are still recorded;
//! * a fill's trade id is the `ORDER_FILL` transaction id, unique per account, so a fill
//!   seen on REST, `/changes` and the stream is recorded once;
//! * a fill's fee is `commission + guaranteedExecutionFee − financing` (commission is
//!   positive and reduces the balance; financing is negative when paid), in the account
//!   currency.

use std::collections::HashMap;

use gekko_core::{ClientOrderId, Fill, InstrumentId, OrderStatus, Side};
use gekko_venue::{LastFill, OrderUpdate};
use rust_decimal::Decimal;

use super::instrument::instrument;
use super::models::{OandaOrder, OandaTransaction};
use super::time::parse_time_ms;

/// What one transaction did to one order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxOutcome {
    /// The order's new state, when the transaction is about an order gekko can describe.
    pub order: Option<OrderUpdate>,
    /// The execution, for an `ORDER_FILL`.
    pub fill: Option<Fill>,
}

/// The side of signed units: `None` for zero.
#[must_use]
pub fn side_of(units: Decimal) -> Option<Side> {
    if units.is_sign_positive() && !units.is_zero() {
        Some(Side::Buy)
    } else if units.is_sign_negative() && !units.is_zero() {
        Some(Side::Sell)
    } else {
        None
    }
}

/// Signed units of a side and an absolute quantity.
#[must_use]
pub fn signed_units(side: Side, qty: Decimal) -> Decimal {
    match side {
        Side::Buy => qty.abs(),
        Side::Sell => -qty.abs(),
    }
}

/// gekko's id for an order: `id` when it is a valid client order id, else
/// `oanda:<order id>`. `None` when neither gives one.
fn client_id(id: Option<&str>, order_id: &str) -> Option<ClientOrderId> {
    id.and_then(|s| ClientOrderId::parse(s).ok())
        .or_else(|| ClientOrderId::parse(&format!("oanda:{order_id}")).ok())
}

/// Whether a transaction type is an order create gekko maps.
fn is_create(kind: &str) -> bool {
    matches!(kind, "MARKET_ORDER" | "LIMIT_ORDER")
}

/// Whether a transaction type is an order reject.
fn is_reject(kind: &str) -> bool {
    kind.ends_with("_ORDER_REJECT")
}

/// The fee of a fill, in the account currency; `None` when it overflows.
#[must_use]
pub fn fill_fee(tx: &OandaTransaction) -> Option<Decimal> {
    tx.commission
        .unwrap_or_default()
        .checked_add(tx.guaranteed_execution_fee.unwrap_or_default())?
        .checked_sub(tx.financing.unwrap_or_default())
}

/// The order a create or reject transaction describes (status `New` or `Rejected`).
/// `None` when it is neither, or lacks an instrument or non-zero units.
#[must_use]
pub fn order_from_create(tx: &OandaTransaction) -> Option<OrderUpdate> {
    let reject = is_reject(&tx.kind);
    if !is_create(&tx.kind) && !reject {
        return None;
    }
    let units = tx.units?;
    let side = side_of(units)?;
    let instrument = instrument(tx.instrument.as_deref()?)?;
    let ext = tx.client_extensions.as_ref().and_then(|e| e.id.as_deref());
    Some(OrderUpdate {
        client_order_id: client_id(ext, &tx.id)?,
        venue_order_id: tx.id.clone(),
        instrument,
        side,
        status: if reject {
            OrderStatus::Rejected
        } else {
            OrderStatus::New
        },
        qty: units.abs(),
        price: if tx.kind.starts_with("LIMIT") {
            tx.price
        } else {
            None
        },
        filled_qty: Decimal::ZERO,
        cum_quote: Decimal::ZERO,
        last_fill: None,
        ts_ms: parse_time_ms(&tx.time).unwrap_or_default(),
        reject_reason: if reject {
            tx.reject_reason.clone()
        } else {
            None
        },
    })
}

/// The state of a v20 order object. `PENDING` is `New`, `FILLED` is `Filled` with its
/// whole size filled (the object has no fill price: `cum_quote` is zero unless the fill
/// transaction is folded in with [`OrderTracker`]), `CANCELLED` is `Cancelled`,
/// `TRIGGERED` is `Filled`. `None` for orders without instrument or units (dependent
/// take-profit and stop orders).
#[must_use]
pub fn order_update_from_order(o: &OandaOrder) -> Option<OrderUpdate> {
    let units = o.units?;
    let side = side_of(units)?;
    let instrument = instrument(o.instrument.as_deref()?)?;
    let ext = o.client_extensions.as_ref().and_then(|e| e.id.as_deref());
    let (status, filled, ts) = match o.state.as_str() {
        "PENDING" => (OrderStatus::New, Decimal::ZERO, &o.create_time),
        "FILLED" | "TRIGGERED" => (
            OrderStatus::Filled,
            units.abs(),
            o.filled_time.as_ref().unwrap_or(&o.create_time),
        ),
        "CANCELLED" => (
            OrderStatus::Cancelled,
            Decimal::ZERO,
            o.cancelled_time.as_ref().unwrap_or(&o.create_time),
        ),
        _ => return None,
    };
    Some(OrderUpdate {
        client_order_id: client_id(ext, &o.id)?,
        venue_order_id: o.id.clone(),
        instrument,
        side,
        status,
        qty: units.abs(),
        price: if o.kind == "LIMIT" { o.price } else { None },
        filled_qty: filled,
        cum_quote: Decimal::ZERO,
        last_fill: None,
        ts_ms: parse_time_ms(ts).unwrap_or_default(),
        reject_reason: None,
    })
}

/// The open orders gekko knows, by venue order id, and the fold of transactions into
/// them. See the module docs.
#[derive(Debug, Clone, Default)]
pub struct OrderTracker {
    home_currency: String,
    orders: HashMap<String, OrderUpdate>,
}

impl OrderTracker {
    /// A tracker whose fills are charged in `home_currency` (the account currency).
    #[must_use]
    pub fn new(home_currency: &str) -> Self {
        Self {
            home_currency: home_currency.to_owned(),
            orders: HashMap::new(),
        }
    }

    /// The account currency fees are charged in.
    #[must_use]
    pub fn home_currency(&self) -> &str {
        &self.home_currency
    }

    /// Remembers an order (an open order listed at reconnect). Terminal orders are not
    /// kept.
    pub fn seed(&mut self, update: OrderUpdate) {
        if !update.status.is_terminal() {
            self.orders.insert(update.venue_order_id.clone(), update);
        }
    }

    /// The open order with this venue id.
    #[must_use]
    pub fn get(&self, venue_order_id: &str) -> Option<&OrderUpdate> {
        self.orders.get(venue_order_id)
    }

    /// How many open orders are remembered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    /// Whether no open order is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    /// Folds one transaction in. Creates and rejects describe their order; a fill
    /// updates its order (or, for an order not seen before, describes it from the fill
    /// alone: its size is then the fill's) and yields a [`Fill`]; a cancel closes a known
    /// order (`Cancelled` on the client's request, `Expired` when the venue cancelled it:
    /// a FOK/IOC remainder, time in force run out, insufficient margin or liquidity, the
    /// reason then kept in `reject_reason`; a cancel of an order never seen yields
    /// nothing). Other types yield nothing. Orders that reach
    /// a terminal state are forgotten.
    pub fn apply(&mut self, tx: &OandaTransaction) -> TxOutcome {
        let out = match tx.kind.as_str() {
            k if is_create(k) || is_reject(k) => TxOutcome {
                order: order_from_create(tx),
                fill: None,
            },
            "ORDER_FILL" => self.fill(tx),
            "ORDER_CANCEL" => TxOutcome {
                order: self.cancel(tx),
                fill: None,
            },
            _ => TxOutcome::default(),
        };
        if let Some(o) = &out.order {
            if o.status.is_terminal() {
                self.orders.remove(&o.venue_order_id);
            } else {
                self.orders.insert(o.venue_order_id.clone(), o.clone());
            }
        }
        out
    }

    fn fill(&self, tx: &OandaTransaction) -> TxOutcome {
        let Some(order_id) = tx.order_id.as_deref() else {
            return TxOutcome::default();
        };
        let (Some(units), Some(price)) = (tx.units, tx.price.or(tx.full_vwap)) else {
            return TxOutcome::default();
        };
        let qty = units.abs();
        let ts_ms = parse_time_ms(&tx.time).unwrap_or_default();
        let mut order = match self.orders.get(order_id) {
            Some(o) => o.clone(),
            None => {
                let (Some(side), Some(instrument)) = (
                    side_of(units),
                    tx.instrument.as_deref().and_then(instrument),
                ) else {
                    return TxOutcome::default();
                };
                let Some(client_order_id) = client_id(tx.client_order_id.as_deref(), order_id)
                else {
                    return TxOutcome::default();
                };
                OrderUpdate {
                    client_order_id,
                    venue_order_id: order_id.to_owned(),
                    instrument,
                    side,
                    status: OrderStatus::New,
                    qty,
                    price: None,
                    filled_qty: Decimal::ZERO,
                    cum_quote: Decimal::ZERO,
                    last_fill: None,
                    ts_ms,
                    reject_reason: None,
                }
            }
        };
        let (Some(filled), Some(cum_quote), Some(fee)) = (
            order.filled_qty.checked_add(qty),
            qty.checked_mul(price)
                .and_then(|q| order.cum_quote.checked_add(q)),
            fill_fee(tx),
        ) else {
            return TxOutcome::default();
        };
        order.filled_qty = filled;
        order.cum_quote = cum_quote;
        order.status = if order.filled_qty >= order.qty {
            OrderStatus::Filled
        } else {
            OrderStatus::PartiallyFilled
        };
        order.ts_ms = ts_ms;
        order.last_fill = Some(LastFill {
            trade_id: tx.id.clone(),
            price,
            qty,
            fee,
            fee_asset: self.home_currency.clone(),
        });
        let fill = order.fill();
        TxOutcome {
            order: Some(order),
            fill,
        }
    }

    fn cancel(&self, tx: &OandaTransaction) -> Option<OrderUpdate> {
        let mut order = self.orders.get(tx.order_id.as_deref()?)?.clone();
        let client = tx
            .reason
            .as_deref()
            .is_none_or(|r| r.starts_with("CLIENT_REQUEST"));
        order.status = if client {
            OrderStatus::Cancelled
        } else {
            OrderStatus::Expired
        };
        if !client && tx.reason.as_deref() != Some("TIME_IN_FORCE_EXPIRED") {
            order.reject_reason.clone_from(&tx.reason);
        }
        order.last_fill = None;
        order.ts_ms = parse_time_ms(&tx.time).unwrap_or(order.ts_ms);
        Some(order)
    }
}

/// The instrument of a transaction, when it names one gekko can map.
#[must_use]
pub fn transaction_instrument(tx: &OandaTransaction) -> Option<InstrumentId> {
    instrument(tx.instrument.as_deref()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::models::{OrderTransactions, TransactionResponse};

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{}/test_data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn a_filled_market_order_yields_its_fill_with_fee_and_side() {
        let r: OrderTransactions =
            serde_json::from_str(&fixture("order_create_market_filled.json")).unwrap();
        let mut t = OrderTracker::new("USD");
        let outs: Vec<_> = r.order_chain().map(|tx| t.apply(tx)).collect();
        assert_eq!(outs.len(), 2);
        let created = outs[0].order.as_ref().unwrap();
        assert_eq!(created.status, OrderStatus::New);
        assert_eq!(created.client_order_id.as_str(), "gk-market-1");
        let last = outs[1].order.as_ref().unwrap();
        assert_eq!(last.status, OrderStatus::Filled);
        assert_eq!(last.side, Side::Sell);
        assert_eq!(last.qty, Decimal::from(100));
        let f = outs[1].fill.as_ref().unwrap();
        assert_eq!(f.trade_id, "6357");
        assert_eq!(f.venue_order_id, "6356");
        assert_eq!(f.price, "1.10000".parse().unwrap());
        assert_eq!(f.qty, Decimal::from(100));
        // commission 0.5 + guaranteed fee 0 - financing -0.25
        assert_eq!(f.fee, "0.75".parse().unwrap());
        assert_eq!(f.fee_asset, "USD");
        assert_eq!(f.ts_ms, 1_466_620_889_264);
        assert!(t.is_empty(), "a filled order is forgotten");
    }

    #[test]
    fn an_ioc_remainder_is_cancelled_after_a_partial_fill() {
        let r: OrderTransactions =
            serde_json::from_str(&fixture("order_create_ioc_partial.json")).unwrap();
        let mut t = OrderTracker::new("USD");
        let outs: Vec<_> = r.order_chain().map(|tx| t.apply(tx)).collect();
        assert_eq!(
            outs[1].order.as_ref().unwrap().status,
            OrderStatus::PartiallyFilled
        );
        let last = outs[2].order.as_ref().unwrap();
        assert_eq!(last.status, OrderStatus::Expired);
        assert_eq!(last.filled_qty, Decimal::from(40));
        assert_eq!(
            last.reject_reason.as_deref(),
            Some("INSUFFICIENT_LIQUIDITY")
        );
        assert!(outs[2].fill.is_none());
    }

    #[test]
    fn a_fill_of_an_unknown_order_still_yields_a_fill() {
        let r: TransactionResponse =
            serde_json::from_str(&fixture("transaction_order_fill.json")).unwrap();
        let mut t = OrderTracker::new("EUR");
        let out = t.apply(&r.transaction);
        let f = out.fill.unwrap();
        assert_eq!(f.client_order_id.as_str(), "oanda:900");
        assert_eq!(f.side, Side::Buy);
        assert_eq!(f.instrument.base, "USD");
        assert_eq!(out.order.unwrap().status, OrderStatus::Filled);
        // A cancel of an order never seen says nothing.
        let cancel = OandaTransaction {
            kind: "ORDER_CANCEL".into(),
            order_id: Some("77".into()),
            ..OandaTransaction::default()
        };
        assert_eq!(t.apply(&cancel), TxOutcome::default());
    }

    #[test]
    fn orders_map_by_state() {
        let o = OandaOrder {
            id: "12".into(),
            kind: "LIMIT".into(),
            state: "PENDING".into(),
            instrument: Some("EUR_USD".into()),
            units: Some("-250".parse().unwrap()),
            price: Some("1.2".parse().unwrap()),
            create_time: "2023-11-14T22:13:20.000000001Z".into(),
            ..OandaOrder::default()
        };
        let u = order_update_from_order(&o).unwrap();
        assert_eq!(
            (u.status, u.side, u.qty),
            (OrderStatus::New, Side::Sell, Decimal::from(250))
        );
        assert_eq!(u.client_order_id.as_str(), "oanda:12");
        assert_eq!(u.ts_ms, 1_700_000_000_000);
        let tp = OandaOrder {
            kind: "TAKE_PROFIT".into(),
            units: None,
            ..o
        };
        assert_eq!(order_update_from_order(&tp), None);
    }
}
