//! [`MockVenue`]: a scriptable in-memory venue that honours the whole contract.
//!
//! It exists for two reasons. The gateway engine gets unit tests of its own, without a
//! simulator, sockets or timing: each test scripts exactly the venue behaviour it needs
//! (a lost submit answer, a gap, a duplicate fill, a venue without a book). And the
//! conformance suite is checked against it, so a scenario that cannot pass on a correct
//! venue is caught here rather than blamed on an adapter.
//!
//! The mock keeps a venue-side order book of its own orders (no matching engine: fills
//! happen when a test calls [`MockVenue::fill`]), counts every call, and fans stream
//! events out to every live subscriber. Streams run on the caller's [`StreamCtx`] like a
//! real adapter's.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use gekko_core::sync::lock;
use gekko_core::{
    Balance, BookLevel, BookSnapshot, ClientOrderId, InstrumentId, OrderRequest, OrderStatus,
    Position, Quote, VenueId, now_ms,
};
use rust_decimal::Decimal;
use tokio::sync::mpsc;

use crate::{
    AccountModel, BookDelta, BookFeed, BookUpdate, ClockReport, InstrumentInfo, LastFill,
    MarketEvent, OrderUpdate, RejectReason, StreamCtx, SubmitError, UserEvent, VenueAdapter,
    VenueCaps, VenueError,
};

/// What the next submit does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitScript {
    /// Accept and rest the order (the default when nothing is scripted).
    Accept,
    /// Refuse it with this reason.
    Reject(RejectReason),
    /// Refuse it unplaced as rate limited, for this pause.
    RateLimited(std::time::Duration),
    /// Place it, but lose the answer: the caller sees [`SubmitError::Ambiguous`].
    LoseAnswer,
    /// Never let it arrive, and report [`SubmitError::Ambiguous`].
    NeverArrives,
    /// Place it only after `n` more queries for it (a request stuck in a queue):
    /// [`SubmitError::Ambiguous`] now, the order appears later.
    ArrivesAfterQueries(u32),
}

/// How many times each call was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MockCalls {
    /// `submit_order`.
    pub submits: u32,
    /// `query_order`.
    pub queries: u32,
    /// `cancel_order` (including the default `cancel_all`'s).
    pub cancels: u32,
    /// `resync_book`.
    pub resyncs: u32,
    /// `close_position`.
    pub closes: u32,
    /// Market stream subscriptions (first connect and every reconnect).
    pub market_subscribes: u32,
}

#[derive(Debug)]
struct Delayed {
    order: OrderUpdate,
    queries_left: u32,
}

#[derive(Debug, Default)]
struct State {
    orders: HashMap<ClientOrderId, OrderUpdate>,
    delayed: HashMap<ClientOrderId, Delayed>,
    script: VecDeque<SubmitScript>,
    next_id: u64,
    next_trade: u64,
    balances: Vec<Balance>,
    positions: HashMap<InstrumentId, Decimal>,
    books: HashMap<InstrumentId, (u64, Vec<BookLevel>, Vec<BookLevel>)>,
    market: Vec<mpsc::Sender<MarketEvent>>,
    user: Vec<mpsc::Sender<UserEvent>>,
    calls: MockCalls,
}

/// A scriptable venue. Cheap to clone; clones share state.
#[derive(Debug, Clone)]
pub struct MockVenue {
    id: VenueId,
    caps: VenueCaps,
    instruments: Arc<Vec<InstrumentInfo>>,
    state: Arc<Mutex<State>>,
}

impl MockVenue {
    /// A venue listing `instruments` (tick 0.01, lot 0.001), with `caps`, a balance of
    /// 1 000 000 in every quote asset and a two-level book around 100.
    #[must_use]
    pub fn new(id: VenueId, caps: VenueCaps, instruments: &[InstrumentId]) -> Self {
        let infos: Vec<InstrumentInfo> = instruments
            .iter()
            .map(|i| InstrumentInfo {
                id: i.clone(),
                venue_symbol: format!("{}{}", i.base, i.quote),
                tick_size: Decimal::new(1, 2),
                lot_size: Decimal::new(1, 3),
                min_qty: Decimal::new(1, 3),
                max_qty: Decimal::from(1000),
                min_notional: Decimal::ZERO,
                trading: true,
            })
            .collect();
        let mut state = State::default();
        for i in instruments {
            if !state.balances.iter().any(|b| b.asset == i.quote) {
                state.balances.push(Balance {
                    venue: id,
                    asset: i.quote.clone(),
                    free: Decimal::from(1_000_000),
                    locked: Decimal::ZERO,
                });
            }
            let lvl = |p: i64, q: i64| BookLevel {
                price: Decimal::from(p),
                qty: Decimal::from(q),
            };
            state.books.insert(
                i.clone(),
                (
                    1,
                    vec![lvl(99, 1), lvl(98, 2)],
                    vec![lvl(101, 1), lvl(102, 2)],
                ),
            );
        }
        Self {
            id,
            caps,
            instruments: Arc::new(infos),
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// Queues what the next submits do, in order.
    pub fn script(&self, steps: impl IntoIterator<Item = SubmitScript>) {
        lock(&self.state).script.extend(steps);
    }

    /// Call counts so far.
    #[must_use]
    pub fn calls(&self) -> MockCalls {
        lock(&self.state).calls
    }

    /// The venue's view of one order.
    #[must_use]
    pub fn venue_order(&self, id: &ClientOrderId) -> Option<OrderUpdate> {
        lock(&self.state).orders.get(id).cloned()
    }

    /// Sets a balance.
    pub fn set_balance(&self, asset: &str, free: Decimal) {
        let mut st = lock(&self.state);
        let id = self.id;
        match st.balances.iter_mut().find(|b| b.asset == asset) {
            Some(b) => b.free = free,
            None => st.balances.push(Balance {
                venue: id,
                asset: asset.to_owned(),
                free,
                locked: Decimal::ZERO,
            }),
        }
    }

    /// Sets a native position (margin venues).
    pub fn set_position(&self, instrument: &InstrumentId, qty: Decimal) {
        lock(&self.state).positions.insert(instrument.clone(), qty);
    }

    /// Fills `qty` of an open order at its limit price (or 100 for a market order) and
    /// reports the order update and the fill on the user stream. Returns the trade id.
    ///
    /// # Panics
    /// When the order is unknown or not open: a test bug.
    pub fn fill(&self, id: &ClientOrderId, qty: Decimal) -> String {
        let mut st = lock(&self.state);
        st.next_trade += 1;
        let trade_id = format!("t{}", st.next_trade);
        let o = st.orders.get_mut(id).expect("fill of an unknown order");
        assert!(o.status.is_open(), "fill of a closed order");
        let price = o.price.unwrap_or(Decimal::from(100));
        let qty = qty.min(o.qty - o.filled_qty);
        o.filled_qty += qty;
        o.cum_quote += qty * price;
        o.status = if o.filled_qty >= o.qty {
            OrderStatus::Filled
        } else {
            OrderStatus::PartiallyFilled
        };
        o.ts_ms = now_ms();
        o.last_fill = Some(LastFill {
            trade_id: trade_id.clone(),
            price,
            qty,
            fee: Decimal::ZERO,
            fee_asset: o.instrument.quote.clone(),
        });
        let u = o.clone();
        let fill = u.fill();
        Self::fan_out(&mut st.user, UserEvent::Order(u));
        if let Some(f) = fill {
            Self::fan_out(&mut st.user, UserEvent::Fill(f));
        }
        trade_id
    }

    /// Sends a user-stream event to every subscriber (to replay a fill, say).
    pub fn push_user(&self, ev: UserEvent) {
        Self::fan_out(&mut lock(&self.state).user, ev);
    }

    /// Sends a market-stream event to every subscriber.
    pub fn push_market(&self, ev: MarketEvent) {
        Self::fan_out(&mut lock(&self.state).market, ev);
    }

    /// Publishes a book delta that connects to the current book.
    pub fn book_delta(&self, instrument: &InstrumentId, bids: Vec<BookLevel>) {
        let mut st = lock(&self.state);
        let Some(book) = st.books.get_mut(instrument) else {
            return;
        };
        book.0 += 1;
        let delta = BookDelta {
            instrument: instrument.clone(),
            sequence: book.0,
            bids,
            asks: Vec::new(),
            ts_ms: now_ms(),
        };
        Self::fan_out(&mut st.market, MarketEvent::Book(BookUpdate::Delta(delta)));
    }

    /// Skips sequence numbers on `instrument`'s feed: subscribers see a gap report.
    pub fn book_gap(&self, instrument: &InstrumentId) {
        let mut st = lock(&self.state);
        if let Some(book) = st.books.get_mut(instrument) {
            book.0 += 5;
            let detail = format!("expected {}, got {}", book.0 - 4, book.0);
            Self::fan_out(
                &mut st.market,
                MarketEvent::BookGap {
                    instrument: instrument.clone(),
                    detail,
                },
            );
        }
    }

    /// Drops and re-establishes every stream, as a network blip would: `Disconnected`,
    /// `Connected`, and fresh snapshots on the market stream.
    pub fn reconnect_streams(&self) {
        let mut st = lock(&self.state);
        let reason = "mock: connection reset".to_owned();
        Self::fan_out(
            &mut st.market,
            MarketEvent::Disconnected {
                reason: reason.clone(),
            },
        );
        Self::fan_out(&mut st.user, UserEvent::Disconnected { reason });
        Self::fan_out(&mut st.user, UserEvent::Connected);
        let subs = std::mem::take(&mut st.market);
        for tx in &subs {
            st.calls.market_subscribes += 1;
            self.greet(&st, tx);
        }
        st.market = subs;
    }

    fn snapshot(&self, st: &State, instrument: &InstrumentId) -> Option<BookSnapshot> {
        let (seq, bids, asks) = st.books.get(instrument)?;
        Some(BookSnapshot {
            instrument: instrument.clone(),
            sequence: *seq,
            bids: bids.clone(),
            asks: asks.clone(),
            ts_ms: now_ms(),
        })
    }

    fn quote(&self, st: &State, instrument: &InstrumentId) -> Option<Quote> {
        let (_, bids, asks) = st.books.get(instrument)?;
        Some(Quote {
            instrument: instrument.clone(),
            bid: bids.first()?.price,
            bid_size: bids.first()?.qty,
            ask: asks.first()?.price,
            ask_size: asks.first()?.qty,
            ts_ms: now_ms(),
        })
    }

    /// What a fresh subscription receives: `Connected`, then a snapshot per book (for
    /// book feeds) and a quote per instrument.
    fn greet(&self, st: &State, tx: &mpsc::Sender<MarketEvent>) {
        let _ = tx.try_send(MarketEvent::Connected);
        for info in self.instruments.iter() {
            if self.caps.book_feed != BookFeed::None
                && let Some(s) = self.snapshot(st, &info.id)
            {
                let _ = tx.try_send(MarketEvent::Book(BookUpdate::Snapshot(s)));
            }
            if let Some(q) = self.quote(st, &info.id) {
                let _ = tx.try_send(MarketEvent::Quote(q));
            }
        }
    }

    fn fan_out<T: Clone>(subs: &mut Vec<mpsc::Sender<T>>, ev: T) {
        subs.retain(|tx| tx.try_send(ev.clone()).is_ok() || !tx.is_closed());
    }

    fn new_order(&self, st: &mut State, req: &OrderRequest) -> OrderUpdate {
        st.next_id += 1;
        OrderUpdate {
            client_order_id: req.client_order_id.clone(),
            venue_order_id: st.next_id.to_string(),
            instrument: req.instrument.clone(),
            side: req.side,
            status: OrderStatus::New,
            qty: req.qty,
            price: req.price,
            filled_qty: Decimal::ZERO,
            cum_quote: Decimal::ZERO,
            last_fill: None,
            ts_ms: now_ms(),
            reject_reason: None,
        }
    }

    fn place(st: &mut State, u: &OrderUpdate) {
        st.orders.insert(u.client_order_id.clone(), u.clone());
        Self::fan_out(&mut st.user, UserEvent::Order(u.clone()));
    }

    fn unknown(&self) -> VenueError {
        VenueError::rejected("UNKNOWN_ORDER", RejectReason::UnknownOrder, "no such order")
    }
}

#[async_trait]
impl VenueAdapter for MockVenue {
    fn id(&self) -> VenueId {
        self.id
    }

    fn caps(&self) -> VenueCaps {
        self.caps
    }

    async fn verify_credentials(&self) -> Result<(), VenueError> {
        Ok(())
    }

    async fn sync_clock(&self) -> Result<ClockReport, VenueError> {
        Ok(ClockReport {
            offset_ms: 0,
            rtt: std::time::Duration::from_millis(1),
        })
    }

    async fn instruments(
        &self,
        wanted: &[InstrumentId],
    ) -> Result<Vec<InstrumentInfo>, VenueError> {
        Ok(self
            .instruments
            .iter()
            .filter(|i| wanted.is_empty() || wanted.contains(&i.id))
            .cloned()
            .collect())
    }

    async fn submit_order(&self, req: &OrderRequest) -> Result<OrderUpdate, SubmitError> {
        let mut st = lock(&self.state);
        st.calls.submits += 1;
        let step = st.script.pop_front().unwrap_or(SubmitScript::Accept);
        let known = st.orders.contains_key(&req.client_order_id)
            || st.delayed.contains_key(&req.client_order_id);
        if known {
            return Err(SubmitError::NotPlaced(VenueError::rejected(
                "DUPLICATE",
                RejectReason::Duplicate,
                "duplicate client order id",
            )));
        }
        if !self.instruments.iter().any(|i| i.id == req.instrument) {
            return Err(SubmitError::NotPlaced(VenueError::rejected(
                "UNKNOWN_INSTRUMENT",
                RejectReason::Other,
                "unknown instrument",
            )));
        }
        match step {
            SubmitScript::Accept => {
                let u = self.new_order(&mut st, req);
                Self::place(&mut st, &u);
                Ok(u)
            }
            SubmitScript::Reject(reason) => Err(SubmitError::NotPlaced(VenueError::rejected(
                "SCRIPTED",
                reason,
                "scripted rejection",
            ))),
            SubmitScript::RateLimited(retry_after) => {
                Err(SubmitError::NotPlaced(VenueError::RateLimited {
                    retry_after,
                }))
            }
            SubmitScript::LoseAnswer => {
                let u = self.new_order(&mut st, req);
                Self::place(&mut st, &u);
                Err(SubmitError::Ambiguous("mock: answer lost".to_owned()))
            }
            SubmitScript::NeverArrives => {
                Err(SubmitError::Ambiguous("mock: request lost".to_owned()))
            }
            SubmitScript::ArrivesAfterQueries(n) => {
                let order = self.new_order(&mut st, req);
                st.delayed.insert(
                    req.client_order_id.clone(),
                    Delayed {
                        order,
                        queries_left: n,
                    },
                );
                Err(SubmitError::Ambiguous("mock: request delayed".to_owned()))
            }
        }
    }

    async fn query_order(
        &self,
        _instrument: &InstrumentId,
        client_order_id: &ClientOrderId,
    ) -> Result<Option<OrderUpdate>, VenueError> {
        let mut st = lock(&self.state);
        st.calls.queries += 1;
        if let Some(d) = st.delayed.get_mut(client_order_id) {
            if d.queries_left == 0 {
                let d = st.delayed.remove(client_order_id).expect("present");
                Self::place(&mut st, &d.order);
            } else {
                d.queries_left -= 1;
            }
        }
        Ok(st.orders.get(client_order_id).cloned())
    }

    async fn cancel_order(
        &self,
        _instrument: &InstrumentId,
        client_order_id: &ClientOrderId,
    ) -> Result<OrderUpdate, VenueError> {
        let mut st = lock(&self.state);
        st.calls.cancels += 1;
        let Some(o) = st.orders.get_mut(client_order_id) else {
            return Err(self.unknown());
        };
        if !o.status.is_open() {
            return Err(self.unknown());
        }
        o.status = OrderStatus::Cancelled;
        o.last_fill = None;
        o.ts_ms = now_ms();
        let u = o.clone();
        Self::fan_out(&mut st.user, UserEvent::Order(u.clone()));
        Ok(u)
    }

    async fn open_orders(&self, instrument: &InstrumentId) -> Result<Vec<OrderUpdate>, VenueError> {
        Ok(lock(&self.state)
            .orders
            .values()
            .filter(|o| &o.instrument == instrument && o.status.is_open())
            .cloned()
            .collect())
    }

    async fn balances(&self) -> Result<Vec<Balance>, VenueError> {
        Ok(lock(&self.state).balances.clone())
    }

    async fn positions(&self, instruments: &[InstrumentId]) -> Result<Vec<Position>, VenueError> {
        if self.caps.account == AccountModel::Spot {
            return Ok(crate::spot_positions(&self.balances().await?, instruments));
        }
        let st = lock(&self.state);
        Ok(instruments
            .iter()
            .filter_map(|i| {
                Some(Position {
                    instrument: i.clone(),
                    qty: *st.positions.get(i)?,
                    avg_price: None,
                    unrealized_pnl: None,
                })
            })
            .collect())
    }

    async fn close_position(
        &self,
        instrument: &InstrumentId,
    ) -> Result<Vec<OrderUpdate>, VenueError> {
        if !self.caps.native_close_position {
            return Err(VenueError::Unsupported {
                venue: self.id.as_str(),
                what: "close_position",
            });
        }
        let mut st = lock(&self.state);
        st.calls.closes += 1;
        let qty = st.positions.remove(instrument).unwrap_or_default();
        if qty.is_zero() {
            return Ok(Vec::new());
        }
        st.next_id += 1;
        let id = ClientOrderId::derive("mock-close", instrument, st.next_id);
        let u = OrderUpdate {
            client_order_id: id,
            venue_order_id: st.next_id.to_string(),
            instrument: instrument.clone(),
            side: if qty > Decimal::ZERO {
                gekko_core::Side::Sell
            } else {
                gekko_core::Side::Buy
            },
            status: OrderStatus::Filled,
            qty: qty.abs(),
            price: None,
            filled_qty: qty.abs(),
            cum_quote: qty.abs() * Decimal::from(100),
            last_fill: None,
            ts_ms: now_ms(),
            reject_reason: None,
        };
        st.orders.insert(u.client_order_id.clone(), u.clone());
        Ok(vec![u])
    }

    async fn book_snapshot(&self, instrument: &InstrumentId) -> Result<BookSnapshot, VenueError> {
        let st = lock(&self.state);
        self.snapshot(&st, instrument)
            .ok_or_else(|| VenueError::Unsupported {
                venue: self.id.as_str(),
                what: "book_snapshot",
            })
    }

    async fn resync_book(&self, instrument: &InstrumentId) -> Result<(), VenueError> {
        let mut st = lock(&self.state);
        st.calls.resyncs += 1;
        if self.caps.book_feed == BookFeed::None {
            return Err(VenueError::Unsupported {
                venue: self.id.as_str(),
                what: "resync_book",
            });
        }
        if let Some(s) = self.snapshot(&st, instrument) {
            Self::fan_out(&mut st.market, MarketEvent::Book(BookUpdate::Snapshot(s)));
        }
        Ok(())
    }

    fn market_stream(
        &self,
        _instruments: &[InstrumentId],
        ctx: &StreamCtx,
    ) -> mpsc::Receiver<MarketEvent> {
        let (tx, rx) = mpsc::channel(4096);
        {
            let mut st = lock(&self.state);
            st.calls.market_subscribes += 1;
            self.greet(&st, &tx);
            st.market.push(tx.clone());
        }
        self.unsubscribe_on_cancel(ctx, tx, |st| &mut st.market);
        rx
    }

    fn user_stream(&self, ctx: &StreamCtx) -> mpsc::Receiver<UserEvent> {
        let (tx, rx) = mpsc::channel(4096);
        let _ = tx.try_send(UserEvent::Connected);
        lock(&self.state).user.push(tx.clone());
        self.unsubscribe_on_cancel(ctx, tx, |st| &mut st.user);
        rx
    }
}

impl MockVenue {
    /// Like a real stream task: lives on the caller's tracker, and when the token fires
    /// the subscription is removed, which closes the caller's receiver.
    fn unsubscribe_on_cancel<T: Send + 'static>(
        &self,
        ctx: &StreamCtx,
        tx: mpsc::Sender<T>,
        subs: fn(&mut State) -> &mut Vec<mpsc::Sender<T>>,
    ) {
        let state = self.state.clone();
        let cancel = ctx.cancel.clone();
        ctx.spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = tx.closed() => {}
            }
            subs(&mut lock(&state)).retain(|s| !s.same_channel(&tx));
        });
    }
}
