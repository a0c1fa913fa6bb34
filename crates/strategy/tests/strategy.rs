//! The trading loop over a real gateway engine (on the scriptable venue, so the test can
//! count what reached the venue) and the in-process bus: thresholds, deterministic client
//! ids that never double an order on a replay or a restart, the cool-down, sizing within
//! the position limit counting working orders, and the loop reading `gekko:{signals}`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gekko_bus::{Bus, MemoryBus, Topic, names};
use gekko_config::StrategySettings;
use gekko_core::{
    ClientOrderId, Direction, InstrumentId, OrderRequest, OrderType, Quote, Side, Signal,
    TimeInForce, VenueId,
};
use gekko_gateway::engine::{Gateway, GatewayConfig};
use gekko_runtime::Readiness;
use gekko_strategy::{Outcome, Strategy, StrategyPlan};
use gekko_venue::mock::MockVenue;
use gekko_venue::{AccountModel, BookFeed, MarketEvent, VenueCaps};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn btc() -> InstrumentId {
    InstrumentId::new(VenueId::BinanceUs, "BTC", "USD")
}

struct Env {
    venue: MockVenue,
    bus: Arc<MemoryBus>,
    gw: Gateway,
    cancel: CancellationToken,
}

async fn env() -> Env {
    let caps = VenueCaps {
        book_feed: BookFeed::TopLevels,
        account: AccountModel::Spot,
        unknown_order_horizon: Some(Duration::from_secs(5)),
        native_close_position: false,
        native_cancel_all: false,
    };
    let venue = MockVenue::new(VenueId::BinanceUs, caps, &[btc()]);
    let bus = Arc::new(MemoryBus::new());
    let mut cfg = GatewayConfig::new("strategy-test", vec![btc()]);
    cfg.limits.max_order_notional = dec!(1000000);
    let cancel = CancellationToken::new();
    let (gw, _) = Gateway::start(
        Arc::new(venue.clone()),
        bus.clone(),
        cfg,
        &Readiness::new(),
        &TaskTracker::new(),
        cancel.clone(),
    )
    .await
    .expect("gateway starts");
    venue.push_market(MarketEvent::Quote(Quote {
        instrument: btc(),
        bid: dec!(99),
        bid_size: dec!(1),
        ask: dec!(101),
        ask_size: dec!(1),
        ts_ms: gekko_core::now_ms(),
    }));
    for _ in 0..200 {
        if !gw.last_quotes().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !gw.last_quotes().is_empty(),
        "the quote reached the gateway"
    );
    Env {
        venue,
        bus,
        gw,
        cancel,
    }
}

fn plan(notional: Decimal, cooldown: Duration, limit: Option<Decimal>) -> StrategyPlan {
    let mut limits = BTreeMap::new();
    if let Some(l) = limit {
        limits.insert(
            VenueId::BinanceUs,
            BTreeMap::from([("BTC-USD".to_owned(), l)]),
        );
    }
    StrategyPlan {
        settings: StrategySettings {
            enabled: true,
            allow_live: false,
            name: "test-strategy".to_owned(),
            order_notional: notional,
            cooldown,
        },
        thresholds: BTreeMap::from([("direction".to_owned(), dec!(0.6))]),
        position_limits: limits,
    }
}

fn signal(direction: Direction, confidence: f32) -> Signal {
    Signal {
        instrument: btc(),
        model: "direction".to_owned(),
        version: 1,
        direction,
        p_up: confidence,
        confidence,
        horizon: 5,
        latency_us: 10,
        quote_ts_ms: gekko_core::now_ms(),
    }
}

#[tokio::test]
async fn a_signal_becomes_one_order_and_a_replay_or_restart_never_doubles_it() {
    let e = env().await;
    let mut s = Strategy::new(plan(dec!(1010), Duration::ZERO, None), [e.gw.clone()]);
    let id = uuid::Uuid::now_v7();
    let first = s.handle(id, &signal(Direction::Up, 0.7)).await;
    let Outcome::Placed {
        client_order_id,
        replayed: false,
        ..
    } = &first
    else {
        panic!("placed: {first:?}");
    };
    assert_eq!(client_order_id, &s.client_order_id(id, &btc()));
    assert_eq!(e.venue.calls().submits, 1);
    let order = e.gw.order(client_order_id).unwrap();
    // 1010 at the ask of 101, on a 0.001 lot.
    assert_eq!(
        (order.request.side, order.request.qty),
        (Side::Buy, dec!(10))
    );
    assert_eq!(order.request.order_type, OrderType::Market);

    // The same signal again (a replay after a crash before its ack)...
    let again = s.handle(id, &signal(Direction::Up, 0.7)).await;
    assert!(
        matches!(again, Outcome::Placed { replayed: true, .. }),
        "{again:?}"
    );
    // ...and from a restarted strategy, whose cool-downs are empty.
    let mut restarted = Strategy::new(plan(dec!(1010), Duration::ZERO, None), [e.gw.clone()]);
    let after = restarted.handle(id, &signal(Direction::Up, 0.7)).await;
    assert!(
        matches!(after, Outcome::Placed { replayed: true, .. }),
        "{after:?}"
    );
    assert_eq!(
        e.venue.calls().submits,
        1,
        "one order at the venue, whatever replays"
    );

    // A different strategy name is a different namespace.
    let mut other_plan = plan(dec!(1010), Duration::ZERO, None);
    other_plan.settings.name = "other".to_owned();
    let other = Strategy::new(other_plan, [e.gw.clone()]);
    assert_ne!(
        other.client_order_id(id, &btc()),
        s.client_order_id(id, &btc())
    );
    e.cancel.cancel();
}

#[tokio::test]
async fn thresholds_decide_which_signals_trade() {
    let e = env().await;
    let mut s = Strategy::new(plan(dec!(1010), Duration::ZERO, None), [e.gw.clone()]);
    let low = s
        .handle(uuid::Uuid::now_v7(), &signal(Direction::Up, 0.59))
        .await;
    assert_eq!(low, Outcome::Skipped("below_threshold"));
    let mut unknown = signal(Direction::Up, 0.99);
    unknown.model = "unconfigured".to_owned();
    assert_eq!(
        s.handle(uuid::Uuid::now_v7(), &unknown).await,
        Outcome::Skipped("no_threshold")
    );
    let mut elsewhere = signal(Direction::Up, 0.99);
    elsewhere.instrument = InstrumentId::new(VenueId::Oanda, "EUR", "USD");
    assert_eq!(
        s.handle(uuid::Uuid::now_v7(), &elsewhere).await,
        Outcome::Skipped("no_gateway")
    );
    assert_eq!(e.venue.calls().submits, 0);
    e.cancel.cancel();
}

#[tokio::test]
async fn cooldown_and_position_limit_with_working_orders_size_the_order() {
    let e = env().await;
    // A resting buy of 3 counts against the limit of 5 as if it filled.
    let resting =
        e.gw.place_order(OrderRequest {
            client_order_id: ClientOrderId::derive("manual", &btc(), 1),
            instrument: btc(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            qty: dec!(3),
            price: Some(dec!(90)),
            time_in_force: Some(TimeInForce::Gtc),
        })
        .await
        .unwrap();
    assert!(
        e.gw.open_orders(None)
            .iter()
            .any(|o| o.request.client_order_id == resting.request.client_order_id)
    );
    let mut s = Strategy::new(
        plan(dec!(1010), Duration::from_secs(3600), Some(dec!(5))),
        [e.gw.clone()],
    );
    let placed = s
        .handle(uuid::Uuid::now_v7(), &signal(Direction::Up, 0.9))
        .await;
    let Outcome::Placed {
        client_order_id, ..
    } = placed
    else {
        panic!("{placed:?}");
    };
    assert_eq!(
        e.gw.order(&client_order_id).unwrap().request.qty,
        dec!(2),
        "trimmed to 5 − 3"
    );
    // The next signal on the instrument waits for the cool-down.
    assert_eq!(
        s.handle(uuid::Uuid::now_v7(), &signal(Direction::Up, 0.9))
            .await,
        Outcome::Skipped("cooldown")
    );
    // A spot account holding no BTC has nothing to sell.
    let mut seller = Strategy::new(
        plan(dec!(1010), Duration::ZERO, Some(dec!(5))),
        [e.gw.clone()],
    );
    e.venue.set_balance("BTC", Decimal::ZERO);
    assert_eq!(
        seller
            .handle(uuid::Uuid::now_v7(), &signal(Direction::Down, 0.9))
            .await,
        Outcome::Skipped("position_limit")
    );
    // Too small to trade: less than one lot.
    let mut tiny = Strategy::new(plan(dec!(0.01), Duration::ZERO, None), [e.gw.clone()]);
    assert_eq!(
        tiny.handle(uuid::Uuid::now_v7(), &signal(Direction::Up, 0.9))
            .await,
        Outcome::Skipped("too_small")
    );
    e.cancel.cancel();
}

#[tokio::test]
async fn the_loop_reads_signals_from_the_bus_and_resumes_after_a_restart() {
    let e = env().await;
    let topic: Topic<Signal> = Topic::capped(names::SIGNALS, names::MARKET_DATA_MAX_LEN, 1);
    let bus: Arc<dyn Bus> = e.bus.clone();
    let run = |cancel: CancellationToken| {
        let s = Strategy::new(plan(dec!(1010), Duration::ZERO, None), [e.gw.clone()]);
        tokio::spawn(gekko_strategy::run(
            s,
            bus.clone(),
            "c-1".to_owned(),
            cancel,
        ))
    };
    let first = CancellationToken::new();
    let task = run(first.clone());
    for conf in [0.9_f32, 0.1, 0.8] {
        topic
            .publish(&*e.bus, "inference", &signal(Direction::Up, conf))
            .await
            .unwrap();
    }
    for _ in 0..300 {
        if e.venue.calls().submits >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        e.venue.calls().submits,
        2,
        "two signals above the threshold"
    );
    // Give the loop its ack round trip, then stop and start it again: nothing is re-sent.
    tokio::time::sleep(Duration::from_millis(700)).await;
    first.cancel();
    task.await.unwrap().unwrap();
    let second = CancellationToken::new();
    let task = run(second.clone());
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(e.venue.calls().submits, 2, "a restart re-sends nothing");
    topic
        .publish(&*e.bus, "inference", &signal(Direction::Up, 0.95))
        .await
        .unwrap();
    for _ in 0..300 {
        if e.venue.calls().submits >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(e.venue.calls().submits, 3, "new signals are still traded");
    second.cancel();
    task.await.unwrap().unwrap();
    e.cancel.cancel();
}

#[tokio::test]
async fn an_order_refused_as_rate_limited_is_retried_with_the_same_client_id() {
    let e = env().await;
    e.venue.script([
        gekko_venue::mock::SubmitScript::RateLimited(Duration::from_millis(50)),
        gekko_venue::mock::SubmitScript::Accept,
    ]);
    let mut s = Strategy::new(plan(dec!(1010), Duration::ZERO, None), [e.gw.clone()]);
    let id = uuid::Uuid::now_v7();
    let out = s.handle(id, &signal(Direction::Up, 0.9)).await;
    let Outcome::Placed {
        client_order_id,
        replayed: false,
        ..
    } = out
    else {
        panic!("{out:?}");
    };
    assert_eq!(client_order_id, s.client_order_id(id, &btc()));
    assert_eq!(e.venue.calls().submits, 2, "refused once, then placed");
    assert!(e.venue.venue_order(&client_order_id).is_some());
    e.cancel.cancel();
}
