//! [`OrderTracker`]: the order state machine, and the running counts the limits read.
//!
//! Every change to an order is an explicit transition that returns the [`OrderEvent`] to
//! persist, or `None` when nothing changed. The tracker never talks to the bus or the
//! venue itself: the engine decides when to call the venue and persists what the tracker
//! returns through its one persist policy. That split keeps the state machine testable
//! without I/O and keeps every lock here short (a std `Mutex`, never held across an
//! `.await`).
//!
//! The transitions:
//! - `admit` / `begin_submit`: absent → `PendingNew` (insert-if-absent, so two concurrent
//!   submits of one client id cannot both pass); `admit` also checks the limits that
//!   depend on every other order in the same critical section; `abort_submit` undoes it
//!   when it could not be persisted, so nothing unrecorded is ever sent.
//! - `apply`: merges a venue report monotonically (a terminal order never reopens, filled
//!   quantity never goes backwards).
//! - `mark_in_flight`: `PendingNew` → `InFlight` after an ambiguous submit, unless the
//!   user stream already reported the order.
//! - `acknowledge`: `PendingNew` → the venue's status when its answer repeats what a
//!   stream event already said.
//! - `reject`: → `Rejected` with a reason (refused, or proven never placed).
//! - `adopt`: a venue order unknown locally starts being tracked.
//!
//! The counts (orders awaiting the venue's answer, unfilled quantity of working orders
//! per instrument and side, notional sent this trading day) are kept incrementally: every
//! transition subtracts the order's old contribution and adds its new one, under the
//! same lock. A submit therefore checks its limits in O(1) instead of scanning every
//! order the gateway ever saw, and the counts can never drift from the orders they sum.
//! Only the start of a new trading day rescans, once.

use std::collections::HashMap;
use std::sync::Mutex;

use gekko_core::sync::lock;
use gekko_core::{ClientOrderId, InstrumentId, Order, OrderRequest, OrderStatus, OrderType, Side};
use gekko_venue::OrderUpdate;
use rust_decimal::Decimal;

use crate::checks::{CheckError, check_daily_notional, check_inflight, check_position};
use crate::orders::{self, OrderEvent, OrderEventKind};

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// The start (ms since epoch) of the trading day containing `now_ms`, for days that
/// begin at `reset_hour`:00 UTC.
#[must_use]
pub fn trading_day_start(now_ms: i64, reset_hour: u8) -> i64 {
    let offset = i64::from(reset_hour.min(23)) * HOUR_MS;
    (now_ms - offset).div_euclid(DAY_MS) * DAY_MS + offset
}

#[derive(Debug)]
struct Tracked {
    order: Order,
    sent_ms: Option<i64>,
    notional: Decimal,
}

impl Tracked {
    /// Unfilled quantity while the order may still execute.
    fn working(&self) -> Decimal {
        let o = &self.order;
        if o.status.is_terminal() {
            Decimal::ZERO
        } else {
            (o.request.qty - o.filled_qty).max(Decimal::ZERO)
        }
    }

    fn unacknowledged(&self) -> bool {
        matches!(
            self.order.status,
            OrderStatus::PendingNew | OrderStatus::InFlight
        )
    }

    /// What the order adds to the daily notional of the day starting at `day_start`:
    /// sent that day and not refused.
    fn daily(&self, day_start: i64) -> Decimal {
        if self.sent_ms.is_some_and(|s| s >= day_start)
            && self.order.status != OrderStatus::Rejected
        {
            self.notional
        } else {
            Decimal::ZERO
        }
    }
}

/// What one order contributes to the running counts.
#[derive(Debug, Clone, Copy)]
struct Contribution {
    unacked: bool,
    working: Decimal,
    daily: Decimal,
}

#[derive(Debug, Default)]
struct Counts {
    unacked: usize,
    working: HashMap<(InstrumentId, Side), Decimal>,
    day_start: i64,
    daily: Decimal,
}

impl Counts {
    fn of(&self, t: &Tracked) -> Contribution {
        Contribution {
            unacked: t.unacknowledged(),
            working: t.working(),
            daily: t.daily(self.day_start),
        }
    }

    /// Replaces `before` (absent for a new order) by `after` for an order of `key`.
    fn swap(
        &mut self,
        key: (&InstrumentId, Side),
        before: Option<Contribution>,
        after: Option<Contribution>,
    ) {
        let zero = Contribution {
            unacked: false,
            working: Decimal::ZERO,
            daily: Decimal::ZERO,
        };
        let (b, a) = (before.unwrap_or(zero), after.unwrap_or(zero));
        if b.unacked && !a.unacked {
            self.unacked = self.unacked.saturating_sub(1);
        } else if a.unacked && !b.unacked {
            self.unacked += 1;
        }
        if b.working != a.working {
            let slot = self
                .working
                .entry((key.0.clone(), key.1))
                .or_insert(Decimal::ZERO);
            *slot = (*slot - b.working + a.working).max(Decimal::ZERO);
        }
        self.daily = (self.daily - b.daily + a.daily).max(Decimal::ZERO);
    }
}

#[derive(Debug, Default)]
struct State {
    orders: HashMap<ClientOrderId, Tracked>,
    counts: Counts,
}

impl State {
    /// Runs `f` on a tracked order and keeps the counts in step with what it changed.
    fn update<R>(&mut self, id: &ClientOrderId, f: impl FnOnce(&mut Tracked) -> R) -> Option<R> {
        let Self { orders, counts } = self;
        let t = orders.get_mut(id)?;
        let before = counts.of(t);
        let r = f(t);
        let after = counts.of(t);
        counts.swap(
            (&t.order.request.instrument, t.order.request.side),
            Some(before),
            Some(after),
        );
        Some(r)
    }

    fn insert(&mut self, id: ClientOrderId, t: Tracked) {
        let after = self.counts.of(&t);
        let key = (t.order.request.instrument.clone(), t.order.request.side);
        let before = self.orders.insert(id, t).map(|old| self.counts.of(&old));
        self.counts.swap((&key.0, key.1), before, Some(after));
    }

    fn remove(&mut self, id: &ClientOrderId) {
        if let Some(old) = self.orders.remove(id) {
            let before = self.counts.of(&old);
            self.counts.swap(
                (&old.order.request.instrument, old.order.request.side),
                Some(before),
                None,
            );
        }
    }

    /// Moves the daily count to the trading day containing `now`: a rescan, once a day.
    fn roll(&mut self, now: i64, reset_hour: u8) {
        let start = trading_day_start(now, reset_hour);
        if start != self.counts.day_start {
            self.counts.day_start = start;
            self.counts.daily = self.orders.values().map(|t| t.daily(start)).sum();
        }
    }
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

/// The limits [`OrderTracker::admit`] checks against every other order, with what the
/// engine knows about the new one.
#[derive(Debug, Clone)]
pub struct Admission {
    /// The new order's notional (its price as checked, times quantity).
    pub notional: Decimal,
    /// `max_inflight_orders` (zero = unlimited).
    pub max_inflight: usize,
    /// `max_daily_notional` (zero = unlimited).
    pub max_daily_notional: Decimal,
    /// The `POSITION_LIMITS` entry of the instrument, if any.
    pub position_limit: Option<Decimal>,
    /// The signed position in the instrument now.
    pub position: Decimal,
}

/// The gateway's orders, by client order id.
#[derive(Debug, Default)]
pub struct OrderTracker {
    state: Mutex<State>,
    reset_hour: u8,
}

impl OrderTracker {
    /// An empty tracker whose trading day starts at 00:00 UTC.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty tracker whose trading day (for the daily notional) starts at
    /// `reset_hour`:00 UTC (clamped to 0..=23).
    #[must_use]
    pub fn with_reset_hour(reset_hour: u8) -> Self {
        Self {
            state: Mutex::default(),
            reset_hour: reset_hour.min(23),
        }
    }

    fn event(kind: OrderEventKind, t: &Tracked) -> OrderEvent {
        OrderEvent {
            kind,
            order: t.order.clone(),
            sent_ms: t.sent_ms,
            notional: Some(t.notional),
        }
    }

    /// The order with this id.
    #[must_use]
    pub fn get(&self, id: &ClientOrderId) -> Option<Order> {
        lock(&self.state).orders.get(id).map(|t| t.order.clone())
    }

    /// Whether this id is tracked.
    #[must_use]
    pub fn contains(&self, id: &ClientOrderId) -> bool {
        lock(&self.state).orders.contains_key(id)
    }

    /// Number of tracked orders.
    #[must_use]
    pub fn len(&self) -> usize {
        lock(&self.state).orders.len()
    }

    /// Whether nothing is tracked.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every tracked order, terminal ones included, oldest update first.
    #[must_use]
    pub fn all(&self) -> Vec<Order> {
        let mut v: Vec<Order> = lock(&self.state)
            .orders
            .values()
            .map(|t| t.order.clone())
            .collect();
        v.sort_by_key(|o| o.updated_ms);
        v
    }

    /// Restores an order from a replayed event (the last event per id wins). An event
    /// without a recorded notional (written before it was recorded) counts its limit
    /// price, else its average fill price, times its quantity.
    pub fn restore(&self, ev: OrderEvent) {
        let notional = ev.notional.unwrap_or_else(|| {
            let px = ev.order.request.price.or(ev.order.avg_fill_price);
            px.unwrap_or_default() * ev.order.request.qty
        });
        lock(&self.state).insert(
            orders::key(&ev.order),
            Tracked {
                order: ev.order,
                sent_ms: ev.sent_ms,
                notional,
            },
        );
    }

    /// absent → `PendingNew`, stamped as sent at `sent_ms`; [`Begin::Existing`] when the
    /// id is already tracked, which the caller returns instead of submitting again. No
    /// limits are checked (see [`OrderTracker::admit`]).
    pub fn begin_submit(&self, req: OrderRequest, sent_ms: i64) -> Begin {
        let mut st = lock(&self.state);
        if let Some(t) = st.orders.get(&req.client_order_id) {
            return Begin::Existing(t.order.clone());
        }
        Self::insert_new(&mut st, req, sent_ms, Decimal::ZERO)
    }

    fn insert_new(st: &mut State, req: OrderRequest, sent_ms: i64, notional: Decimal) -> Begin {
        let id = req.client_order_id.clone();
        let t = Tracked {
            order: orders::pending(req, sent_ms),
            sent_ms: Some(sent_ms),
            notional,
        };
        let ev = Self::event(OrderEventKind::Submitting, &t);
        st.insert(id, t);
        Begin::New(ev)
    }

    /// Like [`OrderTracker::begin_submit`], but first checks, in the same critical
    /// section as the insert, the limits that depend on every other order:
    /// `max_inflight_orders` (orders awaiting the venue's answer), `max_daily_notional`
    /// (notional sent this trading day, not refused) and `POSITION_LIMITS` (holding plus
    /// the unfilled quantity of working orders on the same side). An id already tracked
    /// is [`Begin::Existing`] whatever the limits say.
    ///
    /// # Errors
    /// The limit that refused the order; nothing was inserted.
    pub fn admit(
        &self,
        req: OrderRequest,
        sent_ms: i64,
        a: &Admission,
    ) -> Result<Begin, CheckError> {
        let mut st = lock(&self.state);
        if let Some(t) = st.orders.get(&req.client_order_id) {
            return Ok(Begin::Existing(t.order.clone()));
        }
        check_inflight(st.counts.unacked, a.max_inflight)?;
        st.roll(sent_ms, self.reset_hour);
        check_daily_notional(
            st.counts.daily,
            a.notional,
            a.max_daily_notional,
            self.reset_hour,
        )?;
        let working = st
            .counts
            .working
            .get(&(req.instrument.clone(), req.side))
            .copied()
            .unwrap_or_default();
        check_position(&req, a.position_limit, a.position, working)?;
        Ok(Self::insert_new(&mut st, req, sent_ms, a.notional))
    }

    /// Undoes [`OrderTracker::begin_submit`] when its event could not be persisted.
    pub fn abort_submit(&self, id: &ClientOrderId) {
        let mut st = lock(&self.state);
        if st
            .orders
            .get(id)
            .is_some_and(|t| t.order.status == OrderStatus::PendingNew)
        {
            st.remove(id);
        }
    }

    /// Forgets an order that was refused without being placed (rate limited, circuit
    /// open), so that the same client id may be admitted again once the pause is over.
    /// Only a rejected order is forgotten; anything else the venue may know stays.
    pub fn forget_unsent(&self, id: &ClientOrderId) {
        let mut st = lock(&self.state);
        if st
            .orders
            .get(id)
            .is_some_and(|t| t.order.status == OrderStatus::Rejected)
        {
            st.remove(id);
        }
    }

    /// Merges a venue report; the event when anything changed.
    pub fn apply(&self, u: &OrderUpdate) -> Option<OrderEvent> {
        lock(&self.state)
            .update(&u.client_order_id, |t| {
                orders::merge(&mut t.order, u).then(|| Self::event(OrderEventKind::Updated, t))
            })
            .flatten()
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
        lock(&self.state)
            .update(id, |t| {
                if t.order.status.is_terminal() {
                    return None;
                }
                orders::reject(&mut t.order, reason, now);
                Some(Self::event(OrderEventKind::Rejected, t))
            })
            .flatten()
    }

    fn transition(
        &self,
        id: &ClientOrderId,
        kind: OrderEventKind,
        now: i64,
        f: impl FnOnce(&mut Order) -> Option<()>,
    ) -> Option<OrderEvent> {
        lock(&self.state)
            .update(id, |t| {
                f(&mut t.order)?;
                t.order.updated_ms = now;
                Some(Self::event(kind, t))
            })
            .flatten()
    }

    /// Starts tracking a venue order unknown locally. `None` when it is already tracked
    /// (then [`OrderTracker::apply`] is the transition).
    pub fn adopt(&self, u: &OrderUpdate, now: i64) -> Option<OrderEvent> {
        let mut st = lock(&self.state);
        if st.orders.contains_key(&u.client_order_id) {
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
            notional: u.price.unwrap_or_default() * u.qty,
            order,
            sent_ms: None,
        };
        let ev = Self::event(OrderEventKind::Adopted, &t);
        st.insert(u.client_order_id.clone(), t);
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
        lock(&self.state)
            .orders
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
    /// A running count, O(1).
    #[must_use]
    pub fn unacknowledged(&self) -> usize {
        lock(&self.state).counts.unacked
    }

    /// The unfilled quantity of the working (non-terminal) orders on one instrument and
    /// side. A running count, O(1).
    #[must_use]
    pub fn working_qty(&self, instrument: &InstrumentId, side: Side) -> Decimal {
        lock(&self.state)
            .counts
            .working
            .get(&(instrument.clone(), side))
            .copied()
            .unwrap_or_default()
    }

    /// The notional sent during the trading day containing `now` that the venue did not
    /// refuse: each order's notional as fixed at admission.
    #[must_use]
    pub fn daily_notional(&self, now: i64) -> Decimal {
        let mut st = lock(&self.state);
        st.roll(now, self.reset_hour);
        st.counts.daily
    }

    /// Open (and pending) orders, optionally for one instrument, oldest update first.
    #[must_use]
    pub fn open(&self, instrument: Option<&InstrumentId>) -> Vec<Order> {
        let mut v: Vec<Order> = lock(&self.state)
            .orders
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

    fn limits(notional: Decimal) -> Admission {
        Admission {
            notional,
            max_inflight: 2,
            max_daily_notional: dec!(250),
            position_limit: Some(dec!(2)),
            position: dec!(0),
        }
    }

    #[test]
    fn counts_follow_every_transition() {
        let t = OrderTracker::new();
        let btc = InstrumentId::new(VenueId::BinanceUs, "BTC", "USD");
        let a = begin(&t, "a");
        let _b = begin(&t, "b");
        assert_eq!(t.unacknowledged(), 2);
        assert_eq!(t.working_qty(&btc, Side::Buy), dec!(2));
        assert_eq!(t.working_qty(&btc, Side::Sell), dec!(0));
        t.apply(&update("a", OrderStatus::PartiallyFilled, dec!(0.25)))
            .unwrap();
        assert_eq!(t.unacknowledged(), 1);
        assert_eq!(t.working_qty(&btc, Side::Buy), dec!(1.75));
        t.mark_in_flight(&id("b"), 2).unwrap();
        assert_eq!(t.unacknowledged(), 1, "in flight is still unacknowledged");
        t.reject(&id("b"), "never placed", 3).unwrap();
        assert_eq!(t.unacknowledged(), 0);
        assert_eq!(t.working_qty(&btc, Side::Buy), dec!(0.75));
        t.apply(&update("a", OrderStatus::Cancelled, dec!(0.25)))
            .unwrap();
        assert_eq!(t.working_qty(&btc, Side::Buy), dec!(0));
        assert!(t.get(&a).unwrap().status.is_terminal());
        // A submit that could not be persisted leaves the counts as they were.
        let c = begin(&t, "c");
        t.abort_submit(&c);
        assert_eq!(t.unacknowledged(), 0);
        assert_eq!(t.working_qty(&btc, Side::Buy), dec!(0));
    }

    fn id(s: &str) -> ClientOrderId {
        ClientOrderId::parse(s).unwrap()
    }

    #[test]
    fn admit_checks_the_limits_under_the_insert() {
        let t = OrderTracker::new();
        let now = 1_000;
        let ok = |r: Result<Begin, CheckError>| matches!(r, Ok(Begin::New(_)));
        assert!(ok(t.admit(req("a"), now, &limits(dec!(100)))));
        assert!(ok(t.admit(req("b"), now, &limits(dec!(100)))));
        // Two unacknowledged: the in-flight limit refuses a third.
        let err = t.admit(req("c"), now, &limits(dec!(10))).unwrap_err();
        assert!(err.to_string().contains("max_inflight_orders"), "{err}");
        // The same id is the existing order whatever the limits say.
        assert!(matches!(
            t.admit(req("a"), now, &limits(dec!(10))),
            Ok(Begin::Existing(_))
        ));
        t.apply(&update("a", OrderStatus::New, dec!(0))).unwrap();
        t.apply(&update("b", OrderStatus::New, dec!(0))).unwrap();
        // Two resting buys of 1 each, limit 2: a third stacked buy is refused.
        let err = t.admit(req("c"), now, &limits(dec!(10))).unwrap_err();
        assert!(err.to_string().contains("POSITION_LIMITS"), "{err}");
        t.apply(&update("b", OrderStatus::Cancelled, dec!(0)))
            .unwrap();
        // 200 sent today (cancelled orders were sent): 60 more exceeds 250.
        assert_eq!(t.daily_notional(now), dec!(200));
        let err = t.admit(req("c"), now, &limits(dec!(60))).unwrap_err();
        assert!(err.to_string().contains("max_daily_notional"), "{err}");
        assert!(ok(t.admit(req("c"), now, &limits(dec!(50)))));
        // A refused order gives its notional back.
        t.reject(&id("c"), "refused", 2).unwrap();
        assert_eq!(t.daily_notional(now), dec!(200));
    }

    #[test]
    fn the_trading_day_starts_at_the_reset_hour() {
        let h = 3_600_000;
        let day = 24 * h;
        // 2026-01-01 00:00 UTC is a whole number of days since the epoch.
        let midnight = 20_454 * day;
        assert_eq!(trading_day_start(midnight + 5 * h, 0), midnight);
        assert_eq!(
            trading_day_start(midnight + 5 * h, 6),
            midnight - day + 6 * h
        );
        assert_eq!(trading_day_start(midnight + 6 * h, 6), midnight + 6 * h);
        let t = OrderTracker::with_reset_hour(6);
        // Sent at 05:00 (the day that began yesterday 06:00) and at 07:00: from 06:00
        // only the second counts, until 06:00 the next morning.
        let l = limits(dec!(100));
        assert!(t.admit(req("a"), midnight + 5 * h, &l).is_ok());
        assert_eq!(t.daily_notional(midnight + 5 * h), dec!(100));
        assert!(t.admit(req("b"), midnight + 7 * h, &l).is_ok());
        assert_eq!(t.daily_notional(midnight + 8 * h), dec!(100));
        assert_eq!(t.daily_notional(midnight + day + 5 * h), dec!(100));
        assert_eq!(t.daily_notional(midnight + day + 6 * h), dec!(0));
    }

    #[test]
    fn restore_rebuilds_the_counts_exactly() {
        let t = OrderTracker::new();
        let Ok(Begin::New(ev)) = t.admit(req("a"), 5, &limits(dec!(123.45))) else {
            panic!("admitted")
        };
        assert_eq!(ev.notional, Some(dec!(123.45)));
        let restored = OrderTracker::new();
        restored.restore(ev.clone());
        assert_eq!(restored.daily_notional(6), dec!(123.45));
        assert_eq!(restored.unacknowledged(), 1);
        // The last event per id wins, and the counts follow it.
        let mut later = ev;
        later.order.status = OrderStatus::Rejected;
        restored.restore(later);
        assert_eq!(restored.daily_notional(6), dec!(0));
        assert_eq!(restored.unacknowledged(), 0);
    }
}
