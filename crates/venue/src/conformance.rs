//! The adapter conformance suite: one set of scenarios every venue adapter passes against
//! its simulator, modelled on the bus contract suite.
//!
//! The engine relies on the contract, not on any one venue; this suite is how an adapter
//! proves it honours the contract. Each scenario drives the adapter over its real
//! transport (REST, websocket, line stream) against a simulator that can be told to
//! misbehave, through a [`ConformanceTarget`] the venue's test crate implements:
//!
//! | scenario | what must hold |
//! |---|---|
//! | [`place`] | a resting limit order is acknowledged `New`, reported on the user stream, found by query and among open orders |
//! | [`partial_fill`] | a partial execution is reported as `PartiallyFilled` with the filled quantity, plus a [`UserEvent::Fill`] with a trade id |
//! | [`fill`] | the rest fills: `Filled`, fills summing to the quantity, no longer open |
//! | [`cancel`] | cancel answers `Cancelled`, and query and the user stream agree |
//! | [`unknown_order`] | query of an unknown id is `Ok(None)`; cancel is a rejection with [`RejectReason::UnknownOrder`] |
//! | [`ambiguous_submit_resolved_by_query`] | a submit whose answer is lost is [`SubmitError::Ambiguous`], and the order is then found by query, exactly once |
//! | [`reconnect_resubscribes`] | after the venue drops the streams, both report `Disconnected` then `Connected`, and market data (a fresh book snapshot where there is a book) flows again |
//! | [`gap_and_resync`] | a sequence gap is reported as [`MarketEvent::BookGap`]; [`VenueAdapter::resync_book`] brings a snapshot and deltas that follow it (top-levels feeds: a resync is accepted and snapshots move forward; no book: the resync is refused) |
//! | [`duplicate_client_id`] | a second submit with a live order's client id is refused with [`RejectReason::Duplicate`] and places nothing |
//!
//! Use [`conformance_suite!`](crate::conformance_suite) to generate one `#[tokio::test]`
//! per scenario.
//!
//! Every scenario runs its streams on a fresh [`StreamCtx`] and ends by cancelling it and
//! waiting for the tracker: an adapter whose stream tasks do not stop fails here.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gekko_core::{ClientOrderId, InstrumentId, OrderRequest, OrderStatus};
use rust_decimal::Decimal;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::{
    BookFeed, BookUpdate, MarketEvent, RejectReason, StreamCtx, SubmitError, UserEvent,
    VenueAdapter, VenueError,
};

/// How long a scenario waits for any one event.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// One adapter wired to its simulator, with the controls the scenarios need.
#[async_trait]
pub trait ConformanceTarget: Send + Sync {
    /// The adapter under test.
    fn venue(&self) -> Arc<dyn VenueAdapter>;
    /// An instrument the simulator lists.
    fn instrument(&self) -> InstrumentId;
    /// A limit buy of `qty` that rests (priced below the market) under `id`.
    async fn resting_buy(&self, id: ClientOrderId) -> OrderRequest;
    /// Makes the venue execute `qty` of a resting order through its own matching.
    async fn fill(&self, req: &OrderRequest, qty: Decimal);
    /// Makes the venue place the next submitted order but lose its answer.
    async fn lose_next_submit_answer(&self);
    /// Makes the venue drop every stream connection.
    async fn drop_streams(&self);
    /// Makes the venue's book feed of [`ConformanceTarget::instrument`] skip sequence
    /// numbers. Not called for venues without a book or with a top-levels feed.
    async fn inject_book_gap(&self);
}

/// A unique client order id for one scenario.
#[must_use]
pub fn fresh_id(scenario: &str) -> ClientOrderId {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let inst = InstrumentId::new(gekko_core::VenueId::Coinbase, "CONF", "TEST");
    ClientOrderId::derive(
        &format!("conformance-{scenario}-{}", std::process::id()),
        &inst,
        u64::try_from(gekko_core::now_ms()).unwrap_or(0) * 1000 + n,
    )
}

/// Waits for the first event matching `pred`, skipping others.
///
/// # Panics
/// When none arrives within [`EVENT_TIMEOUT`] or the stream ends: the scenario fails.
pub async fn within<T: std::fmt::Debug>(
    rx: &mut mpsc::Receiver<T>,
    what: &str,
    mut pred: impl FnMut(&T) -> bool,
) -> T {
    let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) if pred(&ev) => return ev,
            Ok(Some(_)) => {}
            Ok(None) => panic!("stream ended while waiting for {what}"),
            Err(_) => panic!("no {what} within {EVENT_TIMEOUT:?}"),
        }
    }
}

/// Streams for one scenario, stopped and awaited by [`Streams::stop`].
#[derive(Debug)]
pub struct Streams {
    ctx: StreamCtx,
}

impl Streams {
    /// A fresh tracker and token.
    #[must_use]
    pub fn new() -> Self {
        Self {
            ctx: StreamCtx::new(TaskTracker::new(), CancellationToken::new()),
        }
    }

    /// The context to start streams on.
    #[must_use]
    pub fn ctx(&self) -> &StreamCtx {
        &self.ctx
    }

    /// Cancels every stream and waits for the adapter's tasks.
    ///
    /// # Panics
    /// When the adapter's stream tasks do not stop within 10 s.
    pub async fn stop(self) {
        self.ctx.cancel.cancel();
        self.ctx.tracker.close();
        tokio::time::timeout(Duration::from_secs(10), self.ctx.tracker.wait())
            .await
            .expect("the adapter's stream tasks stop when their token is cancelled");
    }
}

impl Default for Streams {
    fn default() -> Self {
        Self::new()
    }
}

async fn user_connected(venue: &dyn VenueAdapter, streams: &Streams) -> mpsc::Receiver<UserEvent> {
    let mut user = venue.user_stream(streams.ctx());
    within(&mut user, "user stream Connected", |e| {
        *e == UserEvent::Connected
    })
    .await;
    user
}

fn order_event<'a>(
    id: &'a ClientOrderId,
    status: OrderStatus,
) -> impl FnMut(&UserEvent) -> bool + 'a {
    move |e| matches!(e, UserEvent::Order(u) if &u.client_order_id == id && u.status == status)
}

/// The venue's view of an order the scenario placed.
async fn known(venue: &dyn VenueAdapter, req: &OrderRequest) -> crate::OrderUpdate {
    venue
        .query_order(&req.instrument, &req.client_order_id)
        .await
        .expect("query")
        .expect("the placed order is known")
}

/// Cancels an order a scenario left open, so the next scenario starts clean.
async fn cleanup(venue: &dyn VenueAdapter, req: &OrderRequest) {
    venue
        .cancel_order(&req.instrument, &req.client_order_id)
        .await
        .expect("cleanup cancel");
}

async fn placed(t: &dyn ConformanceTarget, scenario: &str) -> OrderRequest {
    let req = t.resting_buy(fresh_id(scenario)).await;
    let u = t
        .venue()
        .submit_order(&req)
        .await
        .unwrap_or_else(|e| panic!("{scenario}: submit of a resting buy failed: {e}"));
    assert_eq!(u.client_order_id, req.client_order_id);
    assert_eq!(
        u.status,
        OrderStatus::New,
        "{scenario}: a resting order is New"
    );
    req
}

/// A resting limit order is acknowledged `New`, reported on the user stream, found by
/// query and among the open orders.
pub async fn place(t: &dyn ConformanceTarget) {
    let venue = t.venue();
    let streams = Streams::new();
    let mut user = user_connected(&*venue, &streams).await;
    let req = placed(t, "place").await;
    let id = &req.client_order_id;
    within(
        &mut user,
        "New on the user stream",
        order_event(id, OrderStatus::New),
    )
    .await;
    let q = known(&*venue, &req).await;
    assert_eq!(
        (q.status, q.qty, q.side),
        (OrderStatus::New, req.qty, req.side)
    );
    assert_eq!(q.price, req.price);
    let open = venue
        .open_orders(&req.instrument)
        .await
        .expect("open orders");
    assert!(open.iter().any(|o| &o.client_order_id == id));
    cleanup(&*venue, &req).await;
    streams.stop().await;
}

/// A partial execution: `PartiallyFilled` with the filled quantity, and a fill with a
/// trade id on the user stream.
pub async fn partial_fill(t: &dyn ConformanceTarget) {
    let venue = t.venue();
    let streams = Streams::new();
    let mut user = user_connected(&*venue, &streams).await;
    let req = placed(t, "partial").await;
    let id = req.client_order_id.clone();
    let half = req.qty / Decimal::TWO;
    t.fill(&req, half).await;
    let UserEvent::Order(u) = within(
        &mut user,
        "PartiallyFilled",
        order_event(&id, OrderStatus::PartiallyFilled),
    )
    .await
    else {
        unreachable!()
    };
    assert_eq!(u.filled_qty, half);
    let UserEvent::Fill(f) = within(
        &mut user,
        "a Fill",
        |e| matches!(e, UserEvent::Fill(f) if f.client_order_id == id),
    )
    .await
    else {
        unreachable!()
    };
    assert!(!f.trade_id.is_empty(), "a fill carries the venue trade id");
    assert_eq!(f.qty, half);
    assert_eq!(f.instrument, req.instrument);
    let q = known(&*venue, &req).await;
    assert_eq!(
        (q.status, q.filled_qty),
        (OrderStatus::PartiallyFilled, half)
    );
    cleanup(&*venue, &req).await;
    streams.stop().await;
}

/// A full execution: `Filled`, fills summing to the quantity, no longer open.
pub async fn fill(t: &dyn ConformanceTarget) {
    let venue = t.venue();
    let streams = Streams::new();
    let mut user = user_connected(&*venue, &streams).await;
    let req = placed(t, "fill").await;
    let id = req.client_order_id.clone();
    t.fill(&req, req.qty).await;
    let mut filled = Decimal::ZERO;
    let mut trade_ids = std::collections::HashSet::new();
    let mut done = false;
    while !(done && filled == req.qty) {
        match within(&mut user, "Filled and its fills", |e| match e {
            UserEvent::Order(u) => u.client_order_id == id,
            UserEvent::Fill(f) => f.client_order_id == id,
            _ => false,
        })
        .await
        {
            UserEvent::Order(u) if u.status == OrderStatus::Filled => {
                assert_eq!(u.filled_qty, req.qty);
                done = true;
            }
            UserEvent::Fill(f) => {
                assert!(trade_ids.insert(f.trade_id.clone()), "trade ids are unique");
                filled += f.qty;
                assert!(filled <= req.qty, "fills exceed the order");
            }
            _ => {}
        }
    }
    let q = known(&*venue, &req).await;
    assert_eq!(q.status, OrderStatus::Filled);
    let open = venue
        .open_orders(&req.instrument)
        .await
        .expect("open orders");
    assert!(!open.iter().any(|o| o.client_order_id == id));
    streams.stop().await;
}

/// Cancel answers `Cancelled`; query and the user stream agree.
pub async fn cancel(t: &dyn ConformanceTarget) {
    let venue = t.venue();
    let streams = Streams::new();
    let mut user = user_connected(&*venue, &streams).await;
    let req = placed(t, "cancel").await;
    let id = req.client_order_id.clone();
    let u = venue
        .cancel_order(&req.instrument, &id)
        .await
        .expect("cancel");
    assert_eq!(u.status, OrderStatus::Cancelled);
    assert_eq!(u.client_order_id, id);
    within(
        &mut user,
        "Cancelled on the user stream",
        order_event(&id, OrderStatus::Cancelled),
    )
    .await;
    let q = known(&*venue, &req).await;
    assert_eq!(q.status, OrderStatus::Cancelled);
    streams.stop().await;
}

/// Query of an unknown id is `Ok(None)`; cancel of one is an `UnknownOrder` rejection.
pub async fn unknown_order(t: &dyn ConformanceTarget) {
    let venue = t.venue();
    let id = fresh_id("unknown");
    let inst = t.instrument();
    assert!(
        venue
            .query_order(&inst, &id)
            .await
            .expect("query")
            .is_none(),
        "an unknown client id is Ok(None), not an error"
    );
    match venue.cancel_order(&inst, &id).await {
        Err(VenueError::Rejected {
            reason: RejectReason::UnknownOrder,
            ..
        }) => {}
        other => panic!("cancel of an unknown order: {other:?}"),
    }
}

/// A submit whose answer is lost is ambiguous; the order is then found by query, and
/// exactly one exists.
pub async fn ambiguous_submit_resolved_by_query(t: &dyn ConformanceTarget) {
    let venue = t.venue();
    let req = t.resting_buy(fresh_id("ambiguous")).await;
    t.lose_next_submit_answer().await;
    match venue.submit_order(&req).await {
        Err(SubmitError::Ambiguous(_)) => {}
        other => panic!("a lost answer must be Ambiguous, got {other:?}"),
    }
    let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
    let found = loop {
        if let Some(u) = venue
            .query_order(&req.instrument, &req.client_order_id)
            .await
            .expect("query")
        {
            break u;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the order whose answer was lost is not found by query"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(found.status, OrderStatus::New);
    let open = venue
        .open_orders(&req.instrument)
        .await
        .expect("open orders");
    assert_eq!(
        open.iter()
            .filter(|o| o.client_order_id == req.client_order_id)
            .count(),
        1,
        "exactly one order"
    );
    cleanup(&*venue, &req).await;
}

fn is_data(feed: BookFeed) -> impl Fn(&MarketEvent) -> bool {
    move |e| match e {
        MarketEvent::Book(BookUpdate::Snapshot(_)) => true,
        MarketEvent::Quote(_) | MarketEvent::Trade(_) => feed == BookFeed::None,
        _ => false,
    }
}

/// After the venue drops the streams, both report `Disconnected` then `Connected`, and
/// market data flows again (a fresh snapshot where the venue has a book).
pub async fn reconnect_resubscribes(t: &dyn ConformanceTarget) {
    let venue = t.venue();
    let feed = venue.caps().book_feed;
    let streams = Streams::new();
    let mut user = user_connected(&*venue, &streams).await;
    let mut market = venue.market_stream(&[t.instrument()], streams.ctx());
    within(&mut market, "market Connected", |e| {
        *e == MarketEvent::Connected
    })
    .await;
    within(&mut market, "market data", is_data(feed)).await;
    t.drop_streams().await;
    within(&mut market, "market Disconnected", |e| {
        matches!(e, MarketEvent::Disconnected { .. })
    })
    .await;
    within(&mut market, "market Connected again", |e| {
        *e == MarketEvent::Connected
    })
    .await;
    within(
        &mut market,
        "market data after the reconnect",
        is_data(feed),
    )
    .await;
    within(&mut user, "user Disconnected", |e| {
        matches!(e, UserEvent::Disconnected { .. })
    })
    .await;
    within(&mut user, "user Connected again", |e| {
        *e == UserEvent::Connected
    })
    .await;
    streams.stop().await;
}

/// A sequence gap is reported; a resync brings a snapshot and deltas that follow it.
/// Venues without a book must refuse the resync instead. A top-levels feed has no
/// sequence to gap and no deltas: every message is a snapshot, so there a resync is
/// accepted and snapshots keep coming, each with a higher sequence.
pub async fn gap_and_resync(t: &dyn ConformanceTarget) {
    let venue = t.venue();
    let inst = t.instrument();
    match venue.caps().book_feed {
        BookFeed::None => {
            assert!(
                venue.resync_book(&inst).await.is_err(),
                "a venue without a book refuses a book resync"
            );
            return;
        }
        BookFeed::TopLevels => return top_levels_resync(venue.as_ref(), &inst).await,
        BookFeed::SnapshotPlusDiffs | BookFeed::InBandSnapshot => {}
    }
    let streams = Streams::new();
    let mut market = venue.market_stream(std::slice::from_ref(&inst), streams.ctx());
    within(
        &mut market,
        "a first snapshot",
        |e| matches!(e, MarketEvent::Book(BookUpdate::Snapshot(s)) if s.instrument == inst),
    )
    .await;
    t.inject_book_gap().await;
    within(
        &mut market,
        "a BookGap",
        |e| matches!(e, MarketEvent::BookGap { instrument, .. } if *instrument == inst),
    )
    .await;
    venue.resync_book(&inst).await.expect("resync request");
    let MarketEvent::Book(BookUpdate::Snapshot(snap)) = within(
        &mut market,
        "a snapshot after the resync",
        |e| matches!(e, MarketEvent::Book(BookUpdate::Snapshot(s)) if s.instrument == inst),
    )
    .await
    else {
        unreachable!()
    };
    let MarketEvent::Book(BookUpdate::Delta(d)) = within(
        &mut market,
        "a delta after it",
        |e| matches!(e, MarketEvent::Book(BookUpdate::Delta(d)) if d.instrument == inst),
    )
    .await
    else {
        unreachable!()
    };
    assert!(
        d.sequence > snap.sequence,
        "deltas follow the snapshot ({} after {})",
        d.sequence,
        snap.sequence
    );
    streams.stop().await;
}

/// [`gap_and_resync`] for a top-levels feed: snapshots, a resync accepted, and snapshots
/// after it with increasing sequences.
async fn top_levels_resync(venue: &dyn VenueAdapter, inst: &InstrumentId) {
    let streams = Streams::new();
    let mut market = venue.market_stream(std::slice::from_ref(inst), streams.ctx());
    let snapshot = |e: &MarketEvent| matches!(e, MarketEvent::Book(BookUpdate::Snapshot(s)) if s.instrument == *inst);
    let MarketEvent::Book(BookUpdate::Snapshot(first)) =
        within(&mut market, "a top-levels snapshot", snapshot).await
    else {
        unreachable!()
    };
    assert!(
        !first.bids.is_empty() && !first.asks.is_empty(),
        "a top-levels snapshot has both sides: {first:?}"
    );
    venue.resync_book(inst).await.expect("a resync is accepted");
    let MarketEvent::Book(BookUpdate::Snapshot(next)) =
        within(&mut market, "a snapshot after the resync", snapshot).await
    else {
        unreachable!()
    };
    assert!(
        next.sequence > first.sequence,
        "snapshots move forward ({} after {})",
        next.sequence,
        first.sequence
    );
    streams.stop().await;
}

/// A second submit with a live order's client id is refused as a duplicate.
pub async fn duplicate_client_id(t: &dyn ConformanceTarget) {
    let venue = t.venue();
    let req = placed(t, "duplicate").await;
    match venue.submit_order(&req).await {
        Err(SubmitError::NotPlaced(VenueError::Rejected {
            reason: RejectReason::Duplicate,
            ..
        })) => {}
        other => panic!("a duplicate client id must be refused as Duplicate, got {other:?}"),
    }
    let open = venue
        .open_orders(&req.instrument)
        .await
        .expect("open orders");
    assert_eq!(
        open.iter()
            .filter(|o| o.client_order_id == req.client_order_id)
            .count(),
        1
    );
    cleanup(&*venue, &req).await;
}

/// Generates one `#[tokio::test]` per conformance scenario.
///
/// `$make` is an async expression evaluating to a [`ConformanceTarget`]; it runs once per
/// test, so each scenario gets its own simulator.
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@each $make;
            place, partial_fill, fill, cancel, unknown_order,
            ambiguous_submit_resolved_by_query, reconnect_resubscribes, gap_and_resync,
            duplicate_client_id);
    };
    (@each $make:expr; $($scenario:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let target = $make.await;
                $crate::conformance::$scenario(&target).await;
            }
        )*
    };
}
