//! [`OrderTracker`]: the order state machine.
//!
//! Every change to an order is an explicit transition that returns the [`OrderEvent`] to
//! persist, or `None` when nothing changed. The tracker never talks to the bus or the
//! venue itself: the engine decides when to call the venue and persists what the tracker
//! returns through its one persist policy. That split keeps the state machine testable
//! without I/O and keeps every lock here short (a std `Mutex`, never held across an
//! `.await`).
//!
//! The transitions:
//! - `begin_submit`: absent → `PendingNew` (insert-if-absent, so two concurrent submits of
//!   one client id cannot both pass); `abort_submit` undoes it when it could not be
//!   persisted, so nothing unrecorded is ever sent.
//! - `apply`: merges a venue report monotonically (a terminal order never reopens, filled
//!   quantity never goes backwards).
//! - `mark_in_flight`: `PendingNew` → `InFlight` after an ambiguous submit, unless the
//!   user stream already reported the order.
//! - `acknowledge`: `PendingNew` → the venue's status when its answer repeats what a
//!   stream event already said.
//! - `reject`: → `Rejected` with a reason (refused, or proven never placed).
//! - `adopt`: a venue order unknown locally starts being tracked.

use std::collections::HashMap;
use std::sync::Mutex;

use gekko_core::sync::lock;
use gekko_core::{ClientOrderId, InstrumentId, Order, OrderRequest, OrderStatus, OrderType};
use gekko_venue::OrderUpdate;

use crate::orders::{self, OrderEvent, OrderEventKind};

#[derive(Debug)]
struct Tracked {
    order: Order,
    sent_ms: Option<i64>,
}

/// A tracked order that is not terminal, as reconciliation needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenEntry {
    /// The client order id.
    pub id: ClientOrderId,
    /// The instrument.
    pub instrument: InstrumentId,
    /// Its status.
    pub status: OrderStatus,
    /// When its submit was sent, if it was; else its last update.
    pub since_ms: i64,
}

/// What [`OrderTracker::begin_submit`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// A new order: persist this `Submitting` event, then send.
    New(OrderEvent),
    /// The id is already tracked: return this order instead of submitting again.
    Existing(Order),
}

/// The gateway's orders, by client order id.
#[derive(Debug, Default)]
pub struct OrderTracker {
    orders: Mutex<HashMap<ClientOrderId, Tracked>>,
}

impl OrderTracker {
    /// An empty tracker.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn event(kind: OrderEventKind, t: &Tracked) -> OrderEvent {
        OrderEvent {
            kind,
            order: t.order.clone(),
            sent_ms: t.sent_ms,
        }
    }

    /// The order with this id.
    #[must_use]
    pub fn get(&self, id: &ClientOrderId) -> Option<Order> {
        lock(&self.orders).get(id).map(|t| t.order.clone())
    }

    /// Whether this id is tracked.
    #[must_use]
    pub fn contains(&self, id: &ClientOrderId) -> bool {
        lock(&self.orders).contains_key(id)
    }

    /// Number of tracked orders.
    #[must_use]
    pub fn len(&self) -> usize {
        lock(&self.orders).len()
    }

    /// Whether nothing is tracked.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Restores an order from a replayed event (the last event per id wins).
    pub fn restore(&self, ev: OrderEvent) {
        lock(&self.orders).insert(
            orders::key(&ev.order),
            Tracked {
                order: ev.order,
                sent_ms: ev.sent_ms,
            },
        );
    }

    /// absent → `PendingNew`, stamped as sent at `sent_ms`; [`Begin::Existing`] when the
    /// id is already tracked, which the caller returns instead of submitting again.
    pub fn begin_submit(&self, req: OrderRequest, sent_ms: i64) -> Begin {
        let mut map = lock(&self.orders);
        if let Some(t) = map.get(&req.client_order_id) {
            return Begin::Existing(t.order.clone());
        }
        let id = req.client_order_id.clone();
        let t = Tracked {
            order: orders::pending(req, sent_ms),
            sent_ms: Some(sent_ms),
        };
        let ev = Self::event(OrderEventKind::Submitting, &t);
        map.insert(id, t);
        Begin::New(ev)
    }

    /// Undoes [`OrderTracker::begin_submit`] when its event could not be persisted.
    pub fn abort_submit(&self, id: &ClientOrderId) {
        let mut map = lock(&self.orders);
        if map
            .get(id)
            .is_some_and(|t| t.order.status == OrderStatus::PendingNew)
        {
            map.remove(id);
        }
    }

    /// Merges a venue report; the event when anything changed.
    pub fn apply(&self, u: &OrderUpdate) -> Option<OrderEvent> {
        let mut map = lock(&self.orders);
        let t = map.get_mut(&u.client_order_id)?;
        orders::merge(&mut t.order, u).then(|| Self::event(OrderEventKind::Updated, t))
    }

    /// `PendingNew` → the venue's status, when the venue's answer to a submit merged as no
    /// change (a stream event said the same first) but the record still reads pending.
    pub fn acknowledge(
        &self,
        id: &ClientOrderId,
        status: OrderStatus,
        now: i64,
    ) -> Option<OrderEvent> {
        self.transition(id, OrderEventKind::Updated, now, |o| {
            (o.status == OrderStatus::PendingNew).then(|| o.status = status)
        })
    }

    /// `PendingNew` → `InFlight` after an ambiguous submit. `None` when the user stream
    /// already reported the order (it is no longer pending): nothing to resolve.
    pub fn mark_in_flight(&self, id: &ClientOrderId, now: i64) -> Option<OrderEvent> {
        self.transition(id, OrderEventKind::InFlight, now, |o| {
            matches!(o.status, OrderStatus::PendingNew | OrderStatus::InFlight)
                .then(|| o.status = OrderStatus::InFlight)
        })
    }

    /// An in-flight order the venue reported with a status that merged as no change:
    /// take the venue's status.
    pub fn resolve(&self, id: &ClientOrderId, status: OrderStatus, now: i64) -> Option<OrderEvent> {
        self.transition(id, OrderEventKind::Updated, now, |o| {
            (o.status == OrderStatus::InFlight).then(|| o.status = status)
        })
    }

    /// → `Rejected`: refused by the venue, or proven never placed. A terminal order is
    /// left alone.
    pub fn reject(&self, id: &ClientOrderId, reason: &str, now: i64) -> Option<OrderEvent> {
        let mut map = lock(&self.orders);
        let t = map.get_mut(id)?;
        if t.order.status.is_terminal() {
            return None;
        }
        orders::reject(&mut t.order, reason, now);
        Some(Self::event(OrderEventKind::Rejected, t))
    }

    fn transition(
        &self,
        id: &ClientOrderId,
        kind: OrderEventKind,
        now: i64,
        f: impl FnOnce(&mut Order) -> Option<()>,
    ) -> Option<OrderEvent> {
        let mut map = lock(&self.orders);
        let t = map.get_mut(id)?;
        f(&mut t.order)?;
        t.order.updated_ms = now;
        Some(Self::event(kind, t))
    }

    /// Starts tracking a venue order unknown locally. `None` when it is already tracked
    /// (then [`OrderTracker::apply`] is the transition).
    pub fn adopt(&self, u: &OrderUpdate, now: i64) -> Option<OrderEvent> {
        let mut map = lock(&self.orders);
        if map.contains_key(&u.client_order_id) {
            return None;
        }
        let mut order = orders::pending(
            OrderRequest {
                client_order_id: u.client_order_id.clone(),
                instrument: u.instrument.clone(),
                side: u.side,
                order_type: if u.price.is_some() {
                    OrderType::Limit
                } else {
                    OrderType::Market
                },
                qty: u.qty,
                price: u.price,
                time_in_force: None,
            },
            now,
        );
        orders::merge(&mut order, u);
        let t = Tracked {
            order,
            sent_ms: None,
        };
        let ev = Self::event(OrderEventKind::Adopted, &t);
        map.insert(u.client_order_id.clone(), t);
        Some(ev)
    }

    /// Every non-terminal order.
    #[must_use]
    pub fn non_terminal(&self) -> Vec<OpenEntry> {
        self.entries(|o| !o.status.is_terminal())
    }

    /// Orders whose submit outcome is unknown.
    #[must_use]
    pub fn in_flight(&self) -> Vec<OpenEntry> {
        self.entries(|o| o.status == OrderStatus::InFlight)
    }

    fn entries(&self, keep: impl Fn(&Order) -> bool) -> Vec<OpenEntry> {
        lock(&self.orders)
            .values()
            .filter(|t| keep(&t.order))
            .map(|t| OpenEntry {
                id: orders::key(&t.order),
                instrument: t.order.request.instrument.clone(),
                status: t.order.status,
                since_ms: t.sent_ms.unwrap_or(t.order.updated_ms),
            })
            .collect()
    }

    /// How many orders the venue has not acknowledged yet (`PendingNew` or `InFlight`).
    /// A scan: called once per order placed, over a map of the gateway's orders.
    #[must_use]
    pub fn unacknowledged(&self) -> usize {
        lock(&self.orders)
            .values()
            .filter(|t| {
                matches!(
                    t.order.status,
                    OrderStatus::PendingNew | OrderStatus::InFlight
                )
            })
            .count()
    }

    /// The notional of the orders sent at or after `since_ms` that were not refused:
    /// limit price (else average fill price) times quantity.
    #[must_use]
    pub fn notional_sent_since(&self, since_ms: i64) -> rust_decimal::Decimal {
        lock(&self.orders)
            .values()
            .filter(|t| t.sent_ms.is_some_and(|s| s >= since_ms))
            .filter(|t| t.order.status != OrderStatus::Rejected)
            .map(|t| {
                let px = t.order.request.price.or(t.order.avg_fill_price);
                px.unwrap_or_default() * t.order.request.qty
            })
            .sum()
    }

    /// Open (and pending) orders, optionally for one instrument, oldest update first.
    #[must_use]
    pub fn open(&self, instrument: Option<&InstrumentId>) -> Vec<Order> {
        let mut v: Vec<Order> = lock(&self.orders)
            .values()
            .map(|t| &t.order)
            .filter(|o| o.status.is_open() || o.status == OrderStatus::PendingNew)
            .filter(|o| instrument.is_none_or(|i| &o.request.instrument == i))
            .cloned()
            .collect();
        v.sort_by_key(|o| o.updated_ms);
        v
    }
}

#[cfg(test)]
mod tests {
    use gekko_core::{Side, VenueId};
    use rust_decimal::Decimal;
    use rust_decimal_macros::dec;

    use super::*;

    fn req(id: &str) -> OrderRequest {
        OrderRequest {
            client_order_id: ClientOrderId::parse(id).unwrap(),
            instrument: InstrumentId::new(VenueId::BinanceUs, "BTC", "USD"),
            side: Side::Buy,
            order_type: OrderType::Limit,
            qty: dec!(1),
            price: Some(dec!(100)),
            time_in_force: None,
        }
    }

    fn update(id: &str, status: OrderStatus, filled: Decimal) -> OrderUpdate {
        OrderUpdate {
            client_order_id: ClientOrderId::parse(id).unwrap(),
            venue_order_id: "v1".into(),
            instrument: InstrumentId::new(VenueId::BinanceUs, "BTC", "USD"),
            side: Side::Buy,
            status,
            qty: dec!(1),
            price: Some(dec!(100)),
            filled_qty: filled,
            cum_quote: filled * dec!(100),
            last_fill: None,
            ts_ms: 10,
            reject_reason: None,
        }
    }

    fn begin(t: &OrderTracker, id: &str) -> ClientOrderId {
        match t.begin_submit(req(id), 1) {
            Begin::New(ev) => ev.order.request.client_order_id,
            Begin::Existing(o) => panic!("already tracked: {o:?}"),
        }
    }

    #[test]
    fn a_second_submit_of_one_id_returns_the_first() {
        let t = OrderTracker::new();
        let Begin::New(ev) = t.begin_submit(req("a"), 1) else {
            panic!("a new id begins a submit")
        };
        assert_eq!(ev.kind, OrderEventKind::Submitting);
        assert_eq!(ev.sent_ms, Some(1));
        let Begin::Existing(existing) = t.begin_submit(req("a"), 2) else {
            panic!("a known id is not submitted twice")
        };
        assert_eq!(existing.status, OrderStatus::PendingNew);
        t.abort_submit(&existing.request.client_order_id);
        assert!(t.is_empty(), "an unpersisted submit leaves no trace");
    }

    #[test]
    fn ambiguous_then_resolved_by_query() {
        let t = OrderTracker::new();
        let id = begin(&t, "a");
        assert_eq!(
            t.mark_in_flight(&id, 2).unwrap().kind,
            OrderEventKind::InFlight
        );
        assert_eq!(t.in_flight().len(), 1);
        let ev = t.apply(&update("a", OrderStatus::New, dec!(0))).unwrap();
        assert_eq!(ev.order.status, OrderStatus::New);
        assert!(t.in_flight().is_empty());
        // Once the stream reported it, a late ambiguity does not send it back in flight.
        assert!(t.mark_in_flight(&id, 3).is_none());
    }

    #[test]
    fn terminal_orders_stay_terminal() {
        let t = OrderTracker::new();
        let id = begin(&t, "a");
        t.apply(&update("a", OrderStatus::Filled, dec!(1))).unwrap();
        assert!(t.reject(&id, "late", 5).is_none());
        assert!(t.apply(&update("a", OrderStatus::New, dec!(0))).is_none());
        assert_eq!(t.get(&id).unwrap().status, OrderStatus::Filled);
        assert!(t.open(None).is_empty());
    }

    #[test]
    fn adopt_only_unknown_orders() {
        let t = OrderTracker::new();
        let ev = t.adopt(&update("x", OrderStatus::New, dec!(0)), 1).unwrap();
        assert_eq!(ev.kind, OrderEventKind::Adopted);
        assert_eq!(ev.order.request.order_type, OrderType::Limit);
        assert!(
            t.adopt(&update("x", OrderStatus::New, dec!(0)), 1)
                .is_none()
        );
        assert_eq!(t.open(None).len(), 1);
    }
}
