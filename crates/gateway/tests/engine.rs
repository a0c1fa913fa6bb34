//! The gateway engine against the scriptable [`MockVenue`], on the in-process bus: order
//! safety (persist before send, no second submit, in flight means reconcile), the
//! unknown-order horizon the venue declares, fills de-duplicated onto the durable fill
//! stream, book gaps resynced through the adapter, venues without a book, native close,
//! and reconciliation at start-up.
//!
//! The mock also passes the adapter conformance suite (`conformance_mock` module below),
//! which shows every scenario can pass on a correct venue.

use std::sync::Arc;
use std::time::Duration;

use gekko_bus::{Bus, MemoryBus, StartFrom, Topic, names};
use gekko_core::{
    BookLevel, ClientOrderId, Fill, InstrumentId, OrderRequest, OrderStatus, OrderType, Side,
    TimeInForce, VenueId,
};
use gekko_gateway::engine::{Gateway, GatewayConfig, ReconcileMode, StartError};
use gekko_gateway::orders::{OrderEvent, OrderEventKind};
use gekko_runtime::Readiness;
use gekko_venue::mock::{MockVenue, SubmitScript};
use gekko_venue::{
    AccountModel, BookFeed, RejectReason, StreamCtx, UserEvent, VenueAdapter, VenueCaps,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn btc() -> InstrumentId {
    InstrumentId::new(VenueId::Coinbase, "BTC", "USD")
}

fn caps(horizon: Option<Duration>) -> VenueCaps {
    VenueCaps {
        book_feed: BookFeed::InBandSnapshot,
        account: AccountModel::Spot,
        unknown_order_horizon: horizon,
        native_close_position: false,
        native_cancel_all: false,
    }
}

struct Env {
    venue: MockVenue,
    bus: Arc<MemoryBus>,
    gw: Gateway,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Env {
    async fn start(venue: MockVenue) -> Self {
        Self::start_with(venue, Arc::new(MemoryBus::new()), |_| {})
            .await
            .expect("gateway starts")
    }

    async fn start_with(
        venue: MockVenue,
        bus: Arc<MemoryBus>,
        tweak: impl FnOnce(&mut GatewayConfig),
    ) -> Result<Self, StartError> {
        let mut cfg = GatewayConfig::new("gateway-test", vec![btc()]);
        cfg.limits.max_order_notional = dec!(1000000);
        tweak(&mut cfg);
        let readiness = Readiness::new();
        let tracker = TaskTracker::new();
        let cancel = CancellationToken::new();
        let (gw, _) = Gateway::start(
            Arc::new(venue.clone()),
            bus.clone(),
            cfg,
            &readiness,
            &tracker,
            cancel.clone(),
        )
        .await?;
        Ok(Self {
            venue,
            bus,
            gw,
            cancel,
            tracker,
        })
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.tracker.close();
        tokio::time::timeout(Duration::from_secs(5), self.tracker.wait())
            .await
            .expect("every engine and stream task stops on the token");
    }

    async fn events<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        topic: &Topic<T>,
    ) -> Vec<T> {
        let mut r = self
            .bus
            .tail_reader(topic.name(), StartFrom::Beginning)
            .await
            .unwrap();
        let mut out = Vec::new();
        loop {
            let batch = r.read(1000, Duration::ZERO).await.unwrap();
            if batch.is_empty() {
                return out;
            }
            out.extend(batch.iter().map(|d| topic.decode(d).unwrap().payload));
        }
    }

    async fn order_events(&self, id: &ClientOrderId) -> Vec<OrderEvent> {
        let topic: Topic<OrderEvent> = Topic::durable(names::orders("coinbase"), 1);
        self.events(&topic)
            .await
            .into_iter()
            .filter(|e| &e.order.request.client_order_id == id)
            .collect()
    }

    async fn fills(&self) -> Vec<Fill> {
        let topic: Topic<Fill> = Topic::durable(names::fills("coinbase"), 1);
        self.events(&topic).await
    }
}

fn id(s: &str) -> ClientOrderId {
    ClientOrderId::parse(s).unwrap()
}

fn limit(client: &str, qty: Decimal) -> OrderRequest {
    OrderRequest {
        client_order_id: id(client),
        instrument: btc(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        qty,
        price: Some(dec!(95)),
        time_in_force: Some(TimeInForce::Gtc),
    }
}

async fn eventually(what: &str, f: impl FnMut() -> bool) {
    gekko_testkit::wait_until(what, Duration::from_secs(10), f).await;
}

#[tokio::test]
async fn an_order_is_persisted_before_it_is_sent_and_never_sent_twice() {
    let env = Env::start(MockVenue::new(VenueId::Coinbase, caps(None), &[btc()])).await;
    let o = env.gw.place_order(limit("a1", dec!(1))).await.unwrap();
    assert_eq!(o.status, OrderStatus::New);
    let again = env.gw.place_order(limit("a1", dec!(1))).await.unwrap();
    assert_eq!(again.request.client_order_id, id("a1"));
    assert_eq!(
        env.venue.calls().submits,
        1,
        "the same id is never submitted twice"
    );
    let kinds: Vec<OrderEventKind> = env
        .order_events(&id("a1"))
        .await
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds.first(),
        Some(&OrderEventKind::Submitting),
        "{kinds:?}"
    );
    assert!(kinds.contains(&OrderEventKind::Updated));
    env.stop().await;
}

#[tokio::test]
async fn a_venue_rejection_is_recorded_with_its_reason() {
    let env = Env::start(MockVenue::new(VenueId::Coinbase, caps(None), &[btc()])).await;
    env.venue
        .script([SubmitScript::Reject(RejectReason::InsufficientFunds)]);
    let o = env.gw.place_order(limit("r1", dec!(1))).await.unwrap();
    assert_eq!(o.status, OrderStatus::Rejected);
    assert!(o.reject_reason.unwrap().contains("scripted rejection"));
    env.stop().await;
}

#[tokio::test]
async fn a_lost_answer_goes_in_flight_and_is_resolved_by_query() {
    let env = Env::start(MockVenue::new(
        VenueId::Coinbase,
        caps(Some(Duration::from_secs(30))),
        &[btc()],
    ))
    .await;
    env.venue.script([SubmitScript::LoseAnswer]);
    let o = env.gw.place_order(limit("l1", dec!(1))).await.unwrap();
    // The mock reports the order on the user stream too, so New is also fine here.
    assert!(
        matches!(o.status, OrderStatus::InFlight | OrderStatus::New),
        "{o:?}"
    );
    eventually("resolved to New", || {
        env.gw.order(&id("l1")).unwrap().status == OrderStatus::New
    })
    .await;
    assert_eq!(env.venue.calls().submits, 1);
    env.stop().await;
}

#[tokio::test]
async fn past_the_venue_horizon_an_unknown_order_was_never_placed() {
    let env = Env::start(MockVenue::new(
        VenueId::Coinbase,
        caps(Some(Duration::from_millis(400))),
        &[btc()],
    ))
    .await;
    env.venue.script([SubmitScript::NeverArrives]);
    let o = env.gw.place_order(limit("n1", dec!(1))).await.unwrap();
    assert_eq!(o.status, OrderStatus::InFlight);
    eventually("rejected as never placed", || {
        env.gw.order(&id("n1")).unwrap().status == OrderStatus::Rejected
    })
    .await;
    let reason = env.gw.order(&id("n1")).unwrap().reject_reason.unwrap();
    assert!(reason.contains("never reached the venue"), "{reason}");
    env.stop().await;
}

/// The horizon follows the venue's receive window: raised above the time an order spends
/// in transit, a delayed order is never declared "not placed"; it resolves when it
/// appears.
#[tokio::test]
async fn a_delayed_order_inside_the_horizon_is_never_declared_not_placed() {
    let env = Env::start(MockVenue::new(
        VenueId::Coinbase,
        // As Binance with recvWindow raised to 20 s: horizon 22 s.
        caps(Some(Duration::from_secs(22))),
        &[btc()],
    ))
    .await;
    // The resolver queries every 200 ms: the order appears after 45 queries, about 9 s,
    // past the old fixed 7 s horizon (which would have declared it not placed) but well
    // inside 22 s.
    env.venue.script([SubmitScript::ArrivesAfterQueries(45)]);
    let sent = std::time::Instant::now();
    let o = env.gw.place_order(limit("d1", dec!(1))).await.unwrap();
    assert_eq!(o.status, OrderStatus::InFlight);
    gekko_testkit::wait_until(
        "the delayed order resolves to New",
        Duration::from_secs(20),
        || {
            let s = env.gw.order(&id("d1")).unwrap().status;
            assert_ne!(
                s,
                OrderStatus::Rejected,
                "declared not placed inside the horizon"
            );
            s == OrderStatus::New
        },
    )
    .await;
    assert!(
        sent.elapsed() > Duration::from_secs(7),
        "the order appeared after the old 7 s horizon: {:?}",
        sent.elapsed()
    );
    env.stop().await;
}

/// A venue that declares no horizon: the order stays in flight however long the venue
/// does not know it; only the venue's answer settles it.
#[tokio::test]
async fn without_a_horizon_an_order_stays_in_flight() {
    let env = Env::start_with(
        MockVenue::new(VenueId::Coinbase, caps(None), &[btc()]),
        Arc::new(MemoryBus::new()),
        |c| c.in_flight_alert_after = Duration::from_millis(100),
    )
    .await
    .unwrap();
    env.venue.script([SubmitScript::ArrivesAfterQueries(8)]);
    env.gw.place_order(limit("h1", dec!(1))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        env.gw.order(&id("h1")).unwrap().status,
        OrderStatus::InFlight,
        "no horizon, no conclusion"
    );
    eventually("resolves when it appears", || {
        env.gw.order(&id("h1")).unwrap().status == OrderStatus::New
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn fills_land_once_on_the_durable_fill_stream() {
    let env = Env::start(MockVenue::new(VenueId::Coinbase, caps(None), &[btc()])).await;
    env.gw.place_order(limit("f1", dec!(2))).await.unwrap();
    env.venue.fill(&id("f1"), dec!(0.5));
    env.venue.fill(&id("f1"), dec!(1.5));
    eventually("filled", || {
        env.gw.order(&id("f1")).unwrap().status == OrderStatus::Filled
    })
    .await;
    // The venue replays an old fill (a reconnect redelivery): it is not recorded again.
    let replay = env
        .venue
        .venue_order(&id("f1"))
        .and_then(|u| u.fill())
        .unwrap();
    env.venue.push_user(UserEvent::Fill(replay));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fills = env.fills().await;
    assert_eq!(fills.len(), 2, "{fills:?}");
    assert_eq!(fills.iter().map(|f| f.qty).sum::<Decimal>(), dec!(2));
    assert!(fills.iter().all(|f| f.client_order_id == id("f1")));
    // A restarted gateway remembers the trade ids from the stream.
    let (venue, bus) = (env.venue.clone(), env.bus.clone());
    env.stop().await;
    let env = Env::start_with(venue, bus, |_| {}).await.unwrap();
    let again = env
        .venue
        .venue_order(&id("f1"))
        .and_then(|u| u.fill())
        .unwrap();
    env.venue.push_user(UserEvent::Fill(again));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(env.fills().await.len(), 2, "no duplicate after a restart");
    env.stop().await;
}

#[tokio::test]
async fn a_book_gap_is_resynced_through_the_adapter() {
    let env = Env::start(MockVenue::new(VenueId::Coinbase, caps(None), &[btc()])).await;
    eventually("book synchronised", || env.gw.book(&btc()).is_some()).await;
    env.venue.book_delta(
        &btc(),
        vec![BookLevel {
            price: dec!(99.5),
            qty: dec!(3),
        }],
    );
    eventually("delta applied", || {
        env.gw
            .book(&btc())
            .is_some_and(|b| b.bids[0].price == dec!(99.5))
    })
    .await;
    env.venue.book_gap(&btc());
    eventually("resync requested", || env.venue.calls().resyncs == 1).await;
    eventually("book synchronised again", || {
        env.gw.book(&btc()).is_some_and(|b| b.sequence >= 7)
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn a_venue_without_a_book_is_ready_on_quotes_alone() {
    let mut c = caps(None);
    c.book_feed = BookFeed::None;
    let env = Env::start_with(
        MockVenue::new(VenueId::Oanda, c, &[btc_oanda()]),
        Arc::new(MemoryBus::new()),
        |cfg| cfg.instruments = vec![btc_oanda()],
    )
    .await
    .unwrap();
    eventually("market data ready", || env.gw.market_data_ready()).await;
    assert!(env.gw.book(&btc_oanda()).is_none(), "no book is kept");
    assert!(env.gw.last_quotes().contains_key("EUR-USD"));
    env.stop().await;
}

fn btc_oanda() -> InstrumentId {
    InstrumentId::new(VenueId::Oanda, "EUR", "USD")
}

#[tokio::test]
async fn a_native_close_goes_through_the_venue() {
    let mut c = caps(None);
    c.account = AccountModel::Margin;
    c.native_close_position = true;
    let venue = MockVenue::new(VenueId::Oanda, c, &[btc_oanda()]);
    venue.set_position(&btc_oanda(), dec!(-1000));
    let bus = Arc::new(MemoryBus::new());
    let env = Env::start_with(venue, bus, |cfg| cfg.instruments = vec![btc_oanda()])
        .await
        .unwrap();
    let closed = env.gw.close_positions(&[]).await.unwrap();
    assert_eq!(env.venue.calls().closes, 1);
    assert_eq!(closed.len(), 1);
    assert_eq!(
        closed[0].request.side,
        Side::Buy,
        "a short closes with a buy"
    );
    assert_eq!(closed[0].filled_qty, dec!(1000));
    assert_eq!(
        env.venue.calls().submits,
        0,
        "no market order of gekko's own"
    );
    env.stop().await;
}

#[tokio::test]
async fn reconciliation_adopts_or_refuses_unknown_venue_orders() {
    let venue = MockVenue::new(VenueId::Coinbase, caps(None), &[btc()]);
    venue.submit_order(&limit("x1", dec!(1))).await.unwrap();
    let strict = Env::start_with(venue.clone(), Arc::new(MemoryBus::new()), |c| {
        c.reconcile_mode = ReconcileMode::Strict;
    })
    .await;
    assert!(matches!(strict, Err(StartError::Mismatch(_))));
    let env = Env::start(venue).await;
    assert_eq!(env.gw.order(&id("x1")).unwrap().status, OrderStatus::New);
    let kinds: Vec<_> = env
        .order_events(&id("x1"))
        .await
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, vec![OrderEventKind::Adopted]);
    env.stop().await;
}

#[tokio::test]
async fn pairs_the_venue_does_not_list_are_skipped() {
    let venue = MockVenue::new(VenueId::Coinbase, caps(None), &[btc()]);
    let eur = InstrumentId::new(VenueId::Coinbase, "EUR", "USD");
    let env = Env::start_with(venue.clone(), Arc::new(MemoryBus::new()), |c| {
        c.instruments = vec![btc(), eur.clone()];
    })
    .await
    .unwrap();
    assert_eq!(env.gw.configured_instruments(), &[btc()]);
    env.stop().await;
    // A venue that lists none of the pairs still starts, with no instruments, and its
    // market data is ready with a note (there is nothing to stream).
    let none = Env::start_with(venue, Arc::new(MemoryBus::new()), |c| {
        c.instruments = vec![eur];
    })
    .await
    .unwrap();
    assert!(none.gw.configured_instruments().is_empty());
    assert!(none.gw.instruments().is_empty());
    eventually("vacuous market-data readiness", || {
        none.gw.market_data_ready()
    })
    .await;
    none.stop().await;
}

#[tokio::test]
async fn stream_tasks_stop_with_the_caller() {
    let venue = MockVenue::new(VenueId::Coinbase, caps(None), &[btc()]);
    let ctx = StreamCtx::new(TaskTracker::new(), CancellationToken::new());
    let mut rx = venue.user_stream(&ctx);
    assert_eq!(rx.recv().await, Some(UserEvent::Connected));
    ctx.cancel.cancel();
    ctx.tracker.close();
    tokio::time::timeout(Duration::from_secs(2), ctx.tracker.wait())
        .await
        .unwrap();
    assert_eq!(rx.recv().await, None, "the receiver closes");
}

mod conformance_mock {
    //! The conformance suite against the mock, with a ticker standing in for a live
    //! book feed (deltas every 20 ms).

    use std::sync::Arc;
    use std::time::Duration;

    use async_trait::async_trait;
    use gekko_core::{
        BookLevel, ClientOrderId, InstrumentId, OrderRequest, OrderType, Side, TimeInForce, VenueId,
    };
    use gekko_venue::VenueAdapter;
    use gekko_venue::conformance::ConformanceTarget;
    use gekko_venue::mock::{MockVenue, SubmitScript};
    use rust_decimal::Decimal;
    use rust_decimal_macros::dec;

    struct Target {
        venue: MockVenue,
        ticker: tokio::task::JoinHandle<()>,
    }

    impl Drop for Target {
        fn drop(&mut self) {
            self.ticker.abort();
        }
    }

    async fn target() -> Target {
        let venue = MockVenue::new(VenueId::Coinbase, super::caps(None), &[super::btc()]);
        let v = venue.clone();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                v.book_delta(
                    &super::btc(),
                    vec![BookLevel {
                        price: dec!(97),
                        qty: dec!(1),
                    }],
                );
            }
        });
        Target { venue, ticker }
    }

    #[async_trait]
    impl ConformanceTarget for Target {
        fn venue(&self) -> Arc<dyn VenueAdapter> {
            Arc::new(self.venue.clone())
        }
        fn instrument(&self) -> InstrumentId {
            super::btc()
        }
        async fn resting_buy(&self, id: ClientOrderId) -> OrderRequest {
            OrderRequest {
                client_order_id: id,
                instrument: super::btc(),
                side: Side::Buy,
                order_type: OrderType::Limit,
                qty: dec!(2),
                price: Some(dec!(90)),
                time_in_force: Some(TimeInForce::Gtc),
            }
        }
        async fn fill(&self, req: &OrderRequest, qty: Decimal) {
            self.venue.fill(&req.client_order_id, qty);
        }
        async fn lose_next_submit_answer(&self) {
            self.venue.script([SubmitScript::LoseAnswer]);
        }
        async fn drop_streams(&self) {
            self.venue.reconnect_streams();
        }
        async fn inject_book_gap(&self) {
            self.venue.book_gap(&super::btc());
        }
    }

    gekko_venue::conformance_suite!(target());
}

/// The mock has no native cancel-all, so the contract's default runs: list the open
/// orders, cancel each; an order already closed is not an error.
#[tokio::test]
async fn cancel_all_defaults_to_list_then_cancel() {
    let env = Env::start(MockVenue::new(VenueId::Coinbase, caps(None), &[btc()])).await;
    for c in ["c1", "c2", "c3"] {
        env.gw.place_order(limit(c, dec!(1))).await.unwrap();
    }
    env.venue.fill(&id("c3"), dec!(1));
    eventually("c3 filled", || {
        env.gw.order(&id("c3")).unwrap().status == OrderStatus::Filled
    })
    .await;
    let cancelled = env.gw.cancel_all(&[]).await.unwrap();
    let mut ids: Vec<String> = cancelled
        .iter()
        .map(|o| o.request.client_order_id.to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["c1", "c2"]);
    assert!(cancelled.iter().all(|o| o.status == OrderStatus::Cancelled));
    assert_eq!(env.venue.calls().cancels, 2, "one cancel per open order");
    assert!(env.gw.open_orders(None).is_empty());
    env.stop().await;
}

/// On a margin venue the position limit applies to the venue's native signed position,
/// not to a balance.
#[tokio::test]
async fn margin_position_limits_use_native_positions() {
    let mut c = caps(None);
    c.account = AccountModel::Margin;
    let venue = MockVenue::new(VenueId::Oanda, c, &[btc_oanda()]);
    venue.set_position(&btc_oanda(), dec!(900));
    let env = Env::start_with(venue, Arc::new(MemoryBus::new()), |cfg| {
        cfg.instruments = vec![btc_oanda()];
        cfg.limits.position_limits = [("EUR-USD".to_owned(), dec!(1000))].into();
    })
    .await
    .unwrap();
    let buy = |id: &str, qty| OrderRequest {
        instrument: btc_oanda(),
        ..limit(id, qty)
    };
    let refused = env.gw.place_order(buy("m1", dec!(200))).await.unwrap_err();
    assert!(refused.to_string().contains("position"), "{refused}");
    assert_eq!(
        env.gw
            .place_order(buy("m2", dec!(50)))
            .await
            .unwrap()
            .status,
        OrderStatus::New
    );
    // The venue reports the position closed: the same order now fits.
    env.venue
        .push_user(UserEvent::Positions(vec![gekko_core::Position {
            instrument: btc_oanda(),
            qty: dec!(0),
            avg_price: None,
            unrealized_pnl: None,
        }]));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        env.gw
            .place_order(buy("m3", dec!(200)))
            .await
            .unwrap()
            .status,
        OrderStatus::New
    );
    env.stop().await;
}

/// `max_inflight_orders`: orders the venue has not acknowledged count against it; the
/// next one is refused before anything is sent.
#[tokio::test]
async fn the_in_flight_limit_refuses_before_sending() {
    let env = Env::start_with(
        MockVenue::new(VenueId::Coinbase, caps(None), &[btc()]),
        Arc::new(MemoryBus::new()),
        |c| c.limits.max_inflight_orders = 1,
    )
    .await
    .unwrap();
    env.venue.script([SubmitScript::NeverArrives]);
    let first = env.gw.place_order(limit("i1", dec!(1))).await.unwrap();
    assert_eq!(first.status, OrderStatus::InFlight);
    let err = env.gw.place_order(limit("i2", dec!(1))).await.unwrap_err();
    assert!(err.to_string().contains("max_inflight_orders"), "{err}");
    assert_eq!(
        env.venue.calls().submits,
        1,
        "the refused order was not sent"
    );
    assert!(env.gw.order(&id("i2")).is_none(), "nor recorded");
    env.stop().await;
}

/// `max_daily_notional`: the notional sent today counts every order the venue did not
/// refuse, survives a restart, and a refused order gives its share back.
#[tokio::test]
async fn the_daily_notional_limit_counts_what_was_sent_today() {
    let bus = Arc::new(MemoryBus::new());
    let venue = MockVenue::new(VenueId::Coinbase, caps(None), &[btc()]);
    let limit_200 = |c: &mut GatewayConfig| c.limits.max_daily_notional = dec!(200);
    let env = Env::start_with(venue.clone(), bus.clone(), limit_200)
        .await
        .unwrap();
    env.venue
        .script([SubmitScript::Reject(RejectReason::InsufficientFunds)]);
    let refused = env.gw.place_order(limit("n0", dec!(1))).await.unwrap();
    assert_eq!(refused.status, OrderStatus::Rejected);
    // 95 + 95 = 190 fits under 200 because the rejected 95 was given back.
    for c in ["n1", "n2"] {
        assert_eq!(
            env.gw.place_order(limit(c, dec!(1))).await.unwrap().status,
            OrderStatus::New
        );
    }
    let err = env.gw.place_order(limit("n3", dec!(1))).await.unwrap_err();
    assert!(err.to_string().contains("max_daily_notional"), "{err}");
    env.stop().await;
    // A restarted gateway rebuilds today's sum from the order stream.
    let env = Env::start_with(venue, bus, limit_200).await.unwrap();
    let err = env.gw.place_order(limit("n4", dec!(1))).await.unwrap_err();
    assert!(err.to_string().contains("190"), "{err}");
    env.stop().await;
}

#[tokio::test]
async fn flatten_uses_the_native_close_on_a_margin_venue_and_reports_flat() {
    let mut c = caps(None);
    c.account = AccountModel::Margin;
    c.native_close_position = true;
    let venue = MockVenue::new(VenueId::Oanda, c, &[btc_oanda()]);
    venue.set_position(&btc_oanda(), dec!(-1000));
    let bus = Arc::new(MemoryBus::new());
    let env = Env::start_with(venue, bus, |cfg| cfg.instruments = vec![btc_oanda()])
        .await
        .unwrap();
    // Entries are halted first, as the controller's flatten mode does.
    env.gw.halt_entries("shutdown").await;
    let report = env.gw.flatten(Duration::from_secs(5)).await;
    assert!(report.flat, "{report:?}");
    assert!(report.cancel.confirmed, "{report:?}");
    assert_eq!(env.venue.calls().closes, 1);
    assert_eq!(
        env.venue.calls().submits,
        0,
        "no market order of gekko's own"
    );
    assert_eq!(report.before.len(), 1);
    assert_eq!(report.before[0].qty, dec!(-1000));
    assert!(report.after.iter().all(|p| p.qty.is_zero()), "{report:?}");
    assert_eq!(report.orders.len(), 1);
    assert_eq!(report.orders[0].status, OrderStatus::Filled);
    env.stop().await;
}

#[tokio::test]
async fn concurrent_buys_never_stack_beyond_the_position_limit() {
    let env = Env::start_with(
        MockVenue::new(VenueId::Coinbase, caps(None), &[btc()]),
        Arc::new(MemoryBus::new()),
        |cfg| {
            cfg.limits
                .position_limits
                .insert("BTC-USD".to_owned(), dec!(3));
        },
    )
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for n in 0..12 {
        let gw = env.gw.clone();
        tasks.push(tokio::spawn(async move {
            gw.place_order(limit(&format!("stack-{n}"), dec!(1))).await
        }));
    }
    let mut placed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(o) => {
                assert_eq!(o.status, OrderStatus::New, "{o:?}");
                placed += 1;
            }
            Err(e) => assert!(e.to_string().contains("POSITION_LIMITS"), "{e}"),
        }
    }
    assert_eq!(placed, 3, "exactly the limit's worth of resting buys");
    assert_eq!(env.venue.calls().submits, 3);
    env.stop().await;
}
