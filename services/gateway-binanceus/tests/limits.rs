//! The enforced limits, the kill switch and the shutdown actions: the real Binance.US
//! gateway against the real simulator over sockets, gRPC over real TCP, and a real
//! `redis-server` as the bus wherever state must survive a restart.
//!
//! Each test proves one rule by what reaches (or does not reach) the simulator, which is
//! an independent oracle: it depends on no gekko crate.

use std::sync::Arc;
use std::time::Duration;

use gekko_bus::{Bus, RedisBus, RedisBusOptions, Topic, names};
use gekko_core::{
    ClientOrderId, InstrumentId, OrderRequest, OrderStatus, OrderType, Side, VenueId,
};
use gekko_gateway::engine::{Gateway, GatewayConfig};
use gekko_gateway::orders::{OrderEvent, OrderEventKind};
use gekko_gateway::tracker::trading_day_start;
use gekko_proto::v1 as pb;
use gekko_proto::v1::gateway_service_client::GatewayServiceClient;
use gekko_runtime::{GrpcServer, Readiness};
use gekko_sim::binanceus::{Fault, SimBinanceUs, SimConfig, SimHandle, SimOrderStatus};
use gekko_testkit::{RedisServer, eventually};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::Channel;

const WAIT: Duration = Duration::from_secs(15);
const PAPER_KEY: &str = "paper-key";

struct Env {
    _redis: RedisServer,
    sim: SimHandle,
    bus: Arc<dyn Bus>,
    gw: Option<Running>,
}

struct Running {
    gateway: Gateway,
    client: GatewayServiceClient<Channel>,
    readiness: Readiness,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

fn btc() -> InstrumentId {
    InstrumentId::new(VenueId::BinanceUs, "BTC", "USD")
}

async fn env() -> Env {
    let redis = RedisServer::start();
    let bus: Arc<dyn Bus> = Arc::new(
        RedisBus::connect(&redis.url(), RedisBusOptions::default())
            .await
            .expect("bus"),
    );
    let sim = SimBinanceUs::start(SimConfig {
        tick_interval: Duration::from_millis(50),
        ..SimConfig::default()
    })
    .await
    .expect("start simulator");
    Env {
        _redis: redis,
        sim,
        bus,
        gw: None,
    }
}

impl Env {
    /// Starts the gateway with `tweak` applied to its config, serving gRPC on a free port.
    async fn start(&mut self, tweak: impl FnOnce(&mut GatewayConfig)) {
        let venue = gateway_binanceus::paper_venue(
            &self.sim.rest_url,
            &self.sim.ws_url,
            Duration::from_millis(800),
            Duration::from_secs(5),
        );
        let mut cfg = GatewayConfig::new("gateway-binanceus", vec![btc()]);
        cfg.limits.max_order_notional = dec!(1000000);
        tweak(&mut cfg);
        let readiness = Readiness::new();
        let tracker = TaskTracker::new();
        let cancel = CancellationToken::new();
        let (gateway, _) = Gateway::start(
            Arc::new(venue),
            self.bus.clone(),
            cfg,
            &readiness,
            &tracker,
            cancel.clone(),
        )
        .await
        .expect("gateway starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = GrpcServer::new(readiness.clone())
            .add_service(gekko_gateway::service::GatewayGrpc::new(gateway.clone()).into_server());
        tracker.spawn(server.serve(listener, cancel.clone()));
        let client = GatewayServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        self.gw = Some(Running {
            gateway,
            client,
            readiness,
            cancel,
            tracker,
        });
    }

    async fn start_ready(&mut self, tweak: impl FnOnce(&mut GatewayConfig)) {
        self.start(tweak).await;
        let r = self.gw().readiness.clone();
        assert!(
            eventually(WAIT, || {
                let r = r.clone();
                async move { r.is_ready() }
            })
            .await,
            "gateway never became ready: {:?}",
            r.report()
        );
    }

    async fn stop(&mut self) {
        if let Some(r) = self.gw.take() {
            r.cancel.cancel();
            r.tracker.close();
            tokio::time::timeout(Duration::from_secs(10), r.tracker.wait())
                .await
                .expect("gateway tasks stop within 10 s");
        }
    }

    fn gw(&self) -> &Running {
        self.gw.as_ref().expect("gateway running")
    }

    fn gateway(&self) -> Gateway {
        self.gw().gateway.clone()
    }

    fn client(&self) -> GatewayServiceClient<Channel> {
        self.gw().client.clone()
    }

    /// Orders the simulator holds open for the paper account.
    fn open_at_venue(&self) -> Vec<String> {
        self.sim
            .orders()
            .into_iter()
            .filter(|o| o.api_key == PAPER_KEY && o.status.is_open())
            .map(|o| o.client_order_id)
            .collect()
    }

    fn at_venue(&self, client_order_id: &str) -> usize {
        self.sim
            .orders()
            .into_iter()
            .filter(|o| o.client_order_id == client_order_id)
            .count()
    }

    fn sim_balance(&self, asset: &str) -> (Decimal, Decimal) {
        self.sim
            .balances(PAPER_KEY)
            .into_iter()
            .find(|b| b.0 == asset)
            .map_or((Decimal::ZERO, Decimal::ZERO), |b| (b.1, b.2))
    }

    /// A price safely below the market, on the tick grid.
    fn passive_bid(&self) -> Decimal {
        let (_, bids, _) = self.sim.book("BTCUSD");
        (bids[0].0 * dec!(0.95)).round_dp(2)
    }
}

fn limit(id: &str, side: pb::Side, qty: Decimal, price: Decimal) -> pb::PlaceOrderRequest {
    pb::PlaceOrderRequest {
        venue: "binanceus".into(),
        instrument: "BTC-USD".into(),
        side: side as i32,
        r#type: pb::OrderType::Limit as i32,
        qty: qty.to_string(),
        price: price.to_string(),
        time_in_force: pb::TimeInForce::Gtc as i32,
        client_order_id: id.into(),
        ..Default::default()
    }
}

fn market(id: &str, side: pb::Side, qty: Decimal) -> pb::PlaceOrderRequest {
    pb::PlaceOrderRequest {
        venue: "binanceus".into(),
        instrument: "BTC-USD".into(),
        side: side as i32,
        r#type: pb::OrderType::Market as i32,
        qty: qty.to_string(),
        client_order_id: id.into(),
        ..Default::default()
    }
}

async fn place(
    c: &mut GatewayServiceClient<Channel>,
    req: pb::PlaceOrderRequest,
) -> Result<pb::OrderMsg, tonic::Status> {
    c.place_order(req)
        .await
        .map(|r| r.into_inner().order.expect("an order in the reply"))
}

fn refused(r: Result<pb::OrderMsg, tonic::Status>, needle: &str) -> tonic::Status {
    let err = r.expect_err("the order must be refused");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message().contains(needle),
        "{needle} not named: {err:?}"
    );
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_inflight_orders_refuses_while_the_venue_has_not_answered() {
    let mut env = env().await;
    env.start_ready(|c| c.limits.max_inflight_orders = 1).await;
    let mut c = env.client();
    let px = env.passive_bid();
    // The venue executes the first order but its answer times out and its user stream is
    // silent: the order stays in flight until the resolver finds it by query.
    env.sim.inject(Fault::SilentStreams {
        duration: Duration::from_secs(3),
    });
    env.sim.inject(Fault::OrderTimeout);
    // Its submit hangs until the client's 800 ms timeout: all that time the order is
    // pending, i.e. unacknowledged.
    let mut c1 = env.client();
    let first =
        tokio::spawn(
            async move { place(&mut c1, limit("if-1", pb::Side::Buy, dec!(0.01), px)).await },
        );
    let gw = env.gateway();
    let id = ClientOrderId::parse("if-1").unwrap();
    gekko_testkit::wait_until("if-1 is pending", WAIT, || {
        gw.order(&id)
            .is_some_and(|o| o.status == OrderStatus::PendingNew)
    })
    .await;
    // One order awaits the venue's answer: a second is refused before sending.
    let err = refused(
        place(&mut c, limit("if-2", pb::Side::Buy, dec!(0.01), px)).await,
        "max_inflight_orders",
    );
    assert!(err.message().contains("limit 1"), "{err:?}");
    first.await.unwrap().unwrap();
    // Once the venue's answer is known (by query), orders flow again.
    assert!(
        eventually(WAIT, || {
            let gw = gw.clone();
            let id = id.clone();
            async move { gw.order(&id).is_some_and(|o| o.status == OrderStatus::New) }
        })
        .await,
        "the in-flight order was resolved"
    );
    let second = place(&mut c, limit("if-3", pb::Side::Buy, dec!(0.01), px))
        .await
        .unwrap();
    assert_eq!(second.status, pb::OrderStatus::New as i32, "{second:?}");
    assert_eq!(
        env.at_venue("if-2"),
        0,
        "the refused order never reached the venue"
    );
    assert_eq!(env.at_venue("if-1"), 1);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_inflight_orders_holds_under_concurrent_submits() {
    let mut env = env().await;
    env.start_ready(|c| c.limits.max_inflight_orders = 2).await;
    let px = env.passive_bid();
    // Every answer is slow to come: the user stream is silent and each submit times out,
    // so the first two stay unacknowledged while the rest arrive.
    env.sim.inject(Fault::SilentStreams {
        duration: Duration::from_secs(3),
    });
    for _ in 0..8 {
        env.sim.inject(Fault::OrderTimeout);
    }
    let mut tasks = Vec::new();
    for n in 0..8 {
        let mut c = env.client();
        tasks.push(tokio::spawn(async move {
            place(
                &mut c,
                limit(&format!("cc-{n}"), pb::Side::Buy, dec!(0.01), px),
            )
            .await
        }));
    }
    let mut accepted = 0;
    let mut refusals = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(e) => {
                assert!(e.message().contains("max_inflight_orders"), "{e:?}");
                refusals += 1;
            }
        }
    }
    assert!(
        accepted >= 1 && refusals >= 1,
        "accepted {accepted}, refused {refusals}"
    );
    let at_venue: usize = (0..8).map(|n| env.at_venue(&format!("cc-{n}"))).sum();
    assert_eq!(at_venue, accepted, "every refused order stayed local");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_notional_honours_the_reset_hour_and_survives_a_restart() {
    let mut env = env().await;
    // The trading day starts at the current UTC hour, so it began less than an hour ago.
    let now = gekko_core::now_ms();
    let reset_hour = u8::try_from(now.rem_euclid(86_400_000) / 3_600_000).unwrap();
    let day_start = trading_day_start(now, reset_hour);
    // Two orders from an earlier life of this gateway, both cancelled: one sent a minute
    // before the day began (yesterday's allowance), one just after it (today's).
    let topic: Topic<OrderEvent> = Topic::durable(names::orders("binanceus"), 1);
    for (id, sent, notional) in [
        ("old-1", day_start - 60_000, dec!(100000)),
        ("old-2", day_start + 1, dec!(300)),
    ] {
        let mut order = gekko_gateway::orders::pending(
            OrderRequest {
                client_order_id: ClientOrderId::parse(id).unwrap(),
                instrument: btc(),
                side: Side::Buy,
                order_type: OrderType::Limit,
                qty: dec!(0.01),
                price: Some(notional / dec!(0.01)),
                time_in_force: None,
            },
            sent,
        );
        order.status = OrderStatus::Cancelled;
        let ev = OrderEvent {
            kind: OrderEventKind::Updated,
            order,
            sent_ms: Some(sent),
            notional: Some(notional),
        };
        topic.publish(&*env.bus, "test", &ev).await.unwrap();
    }
    let px = env.passive_bid();
    let q = dec!(0.01);
    let one = px * q;
    // Room for 300 (today's earlier order) plus two and a half orders of `one`.
    let max = dec!(300) + one * dec!(2.5);
    let tweak = move |c: &mut GatewayConfig| {
        c.limits.max_daily_notional = max;
        c.limits.daily_reset_hour = reset_hour;
    };
    env.start_ready(tweak).await;
    assert_eq!(
        env.gateway().orders_seen().len(),
        2,
        "both earlier orders were replayed"
    );
    let mut c = env.client();
    place(&mut c, limit("dn-1", pb::Side::Buy, q, px))
        .await
        .unwrap();
    place(&mut c, limit("dn-2", pb::Side::Buy, q, px))
        .await
        .unwrap();
    let err = refused(
        place(&mut c, limit("dn-3", pb::Side::Buy, q, px)).await,
        "max_daily_notional",
    );
    assert!(
        err.message().contains(&format!("{reset_hour:02}:00 UTC")),
        "{err:?}"
    );
    // A cancel does not give the allowance back: the notional was sent.
    c.cancel_all_orders(pb::CancelAllOrdersRequest::default())
        .await
        .unwrap();

    // A restart rebuilds the same sum from the order stream on Redis.
    env.stop().await;
    env.start_ready(tweak).await;
    let mut c = env.client();
    refused(
        place(&mut c, limit("dn-4", pb::Side::Buy, q, px)).await,
        "max_daily_notional",
    );
    // Half an order still fits.
    let half = place(&mut c, limit("dn-5", pb::Side::Buy, q / dec!(2), px))
        .await
        .unwrap();
    assert_eq!(half.status, pb::OrderStatus::New as i32, "{half:?}");
    for id in ["dn-3", "dn-4"] {
        assert_eq!(env.at_venue(id), 0, "{id} never reached the venue");
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resting_buys_count_towards_the_position_limit() {
    let mut env = env().await;
    let (free, locked) = env.sim_balance("BTC");
    let holding = free + locked;
    assert!(holding > Decimal::ZERO);
    // Room for a quarter BTC on top of the holding.
    let limit_qty = holding + dec!(0.25);
    env.start_ready(move |c| {
        c.limits.position_limits.insert("BTC-USD".into(), limit_qty);
    })
    .await;
    let mut c = env.client();
    let px = env.passive_bid();
    place(&mut c, limit("pl-1", pb::Side::Buy, dec!(0.1), px))
        .await
        .unwrap();
    place(&mut c, limit("pl-2", pb::Side::Buy, dec!(0.1), px))
        .await
        .unwrap();
    // Each of these alone fits under the limit; stacked on the two resting buys it does not.
    let err = refused(
        place(&mut c, limit("pl-3", pb::Side::Buy, dec!(0.1), px)).await,
        "POSITION_LIMITS",
    );
    assert!(err.message().contains("open buys 0.2"), "{err:?}");
    assert_eq!(env.at_venue("pl-3"), 0);
    // A sell reduces the exposure and is allowed.
    let (_, _, asks) = env.sim.book("BTCUSD");
    let high = (asks[0].0 * dec!(1.05)).round_dp(2);
    place(&mut c, limit("pl-s", pb::Side::Sell, dec!(0.1), high))
        .await
        .unwrap();
    // Cancelling a resting buy frees its room.
    c.cancel_order(pb::CancelOrderRequest {
        venue: "binanceus".into(),
        instrument: "BTC-USD".into(),
        client_order_id: "pl-1".into(),
    })
    .await
    .unwrap();
    let again = place(&mut c, limit("pl-4", pb::Side::Buy, dec!(0.1), px))
        .await
        .unwrap();
    assert_eq!(again.status, pb::OrderStatus::New as i32, "{again:?}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_market_order_without_a_reference_price_is_refused() {
    let mut env = env().await;
    // No market data reaches the gateway yet: no quote, no book snapshot.
    env.sim.inject(Fault::MarketDataOutage {
        duration: Duration::from_secs(4),
    });
    env.start(|_| {}).await;
    let mut c = env.client();
    let err = refused(
        place(&mut c, market("mk-1", pb::Side::Buy, dec!(0.01))).await,
        "no reference price",
    );
    assert!(err.message().contains("BTC-USD"), "{err:?}");
    assert_eq!(env.at_venue("mk-1"), 0, "nothing reached the venue");
    // Once market data flows again the same order is priced and placed.
    let gw = env.gateway();
    assert!(
        eventually(Duration::from_secs(30), || {
            let gw = gw.clone();
            async move { gw.book(&btc()).is_some() || !gw.last_quotes().is_empty() }
        })
        .await,
        "market data never came back: {:?}",
        env.gw().readiness.report()
    );
    let o = place(&mut c, market("mk-2", pb::Side::Buy, dec!(0.01)))
        .await
        .unwrap();
    assert_eq!(o.status, pb::OrderStatus::Filled as i32, "{o:?}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_switch_over_grpc_cancels_refuses_and_survives_a_restart() {
    let mut env = env().await;
    env.start_ready(|_| {}).await;
    let mut c = env.client();
    let px = env.passive_bid();
    for id in ["ks-1", "ks-2"] {
        place(&mut c, limit(id, pb::Side::Buy, dec!(0.01), px))
            .await
            .unwrap();
    }
    assert_eq!(env.open_at_venue().len(), 2);
    let err = c
        .set_trading_enabled(pb::SetTradingEnabledRequest {
            enabled: false,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        tonic::Code::InvalidArgument,
        "a reason is required"
    );

    // Every hosted venue (venue empty), cancelling working orders.
    let resp = c
        .set_trading_enabled(pb::SetTradingEnabledRequest {
            venue: String::new(),
            enabled: false,
            cancel_working: true,
            reason: "desk halt".into(),
            cancel_deadline_ms: 10_000,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.venues.len(), 1, "{resp:?}");
    let v = &resp.venues[0];
    assert_eq!(v.venue, "binanceus");
    assert!(v.halted && !v.trading_enabled && v.durable, "{v:?}");
    assert_eq!((v.cancelled, v.not_cancelled), (2, 0), "{v:?}");
    assert!(v.cancel_confirmed, "{v:?}");
    assert!(env.open_at_venue().is_empty(), "{:?}", env.open_at_venue());

    let err = refused(
        place(&mut c, limit("ks-3", pb::Side::Buy, dec!(0.01), px)).await,
        "kill switch",
    );
    assert!(err.message().contains("desk halt"), "{err:?}");
    assert_eq!(env.gateway().refusals().get("kill_switch"), Some(&1));

    // It holds across a restart (the record is on Redis).
    env.stop().await;
    env.start_ready(|_| {}).await;
    let mut c = env.client();
    refused(
        place(&mut c, limit("ks-4", pb::Side::Buy, dec!(0.01), px)).await,
        "desk halt",
    );
    // Released for this venue by name, orders flow again.
    let resp = c
        .set_trading_enabled(pb::SetTradingEnabledRequest {
            venue: "binanceus".into(),
            enabled: true,
            reason: "resume".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        resp.venues[0].trading_enabled && !resp.venues[0].halted,
        "{resp:?}"
    );
    let o = place(&mut c, limit("ks-5", pb::Side::Buy, dec!(0.01), px))
        .await
        .unwrap();
    assert_eq!(o.status, pb::OrderStatus::New as i32);
    for id in ["ks-3", "ks-4"] {
        assert_eq!(env.at_venue(id), 0, "{id} never reached the venue");
    }
    let err = c
        .set_trading_enabled(pb::SetTradingEnabledRequest {
            venue: "oanda".into(),
            enabled: false,
            reason: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_actions_cancel_everything_then_flatten_to_zero() {
    use gekko_gateway::VenueAdapter as _;
    let mut env = env().await;
    env.start_ready(|_| {}).await;
    let gw = env.gateway();
    let mut c = env.client();
    let px = env.passive_bid();
    let (_, _, asks) = env.sim.book("BTCUSD");
    let high = (asks[0].0 * dec!(1.05)).round_dp(2);
    place(&mut c, limit("sd-1", pb::Side::Buy, dec!(0.05), px))
        .await
        .unwrap();
    place(&mut c, limit("sd-2", pb::Side::Buy, dec!(0.05), px))
        .await
        .unwrap();
    // A resting sell locks part of the BTC a flatten must sell.
    place(&mut c, limit("sd-3", pb::Side::Sell, dec!(0.5), high))
        .await
        .unwrap();
    // Partly fill one buy, so there is a fill to report.
    env.sim.trade_through("BTCUSD", px, dec!(0.02));
    // An order placed behind the gateway's back is working at the venue too.
    let foreign = gateway_binanceus::paper_venue(
        &env.sim.rest_url,
        &env.sim.ws_url,
        Duration::from_secs(2),
        Duration::from_secs(5),
    );
    foreign
        .submit_order(&OrderRequest {
            client_order_id: ClientOrderId::parse("foreign-sd").unwrap(),
            instrument: btc(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            qty: dec!(0.01),
            price: Some(px),
            time_in_force: Some(gekko_core::TimeInForce::Gtc),
        })
        .await
        .unwrap();
    assert_eq!(env.open_at_venue().len(), 4);

    let before = gw.snapshot().await.unwrap();
    assert!(
        before.positions.iter().any(|p| p.qty > Decimal::ZERO),
        "{before:?}"
    );

    // stop-entries: new orders refused, working ones left alone.
    let state = gw.halt_entries("shutdown: stop-entries").await;
    assert!(!state.trading_enabled && state.durable);
    refused(
        place(&mut c, limit("sd-4", pb::Side::Buy, dec!(0.01), px)).await,
        "kill switch",
    );
    assert_eq!(env.open_at_venue().len(), 4);

    // cancel: zero open orders at the simulator, every one confirmed.
    let report = gw.cancel_working(Duration::from_secs(10)).await;
    assert!(report.confirmed, "{report:?}");
    assert!(report.not_cancelled.is_empty(), "{report:?}");
    let mut ids: Vec<String> = report
        .cancelled
        .iter()
        .map(|o| o.request.client_order_id.to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["foreign-sd", "sd-1", "sd-2", "sd-3"], "{report:?}");
    assert!(env.open_at_venue().is_empty(), "{:?}", env.open_at_venue());

    // flatten: the BTC holding is sold (despite the halt: a close only reduces risk),
    // leaving less than one lot at the simulator.
    let flat = gw.flatten(Duration::from_secs(15)).await;
    assert!(flat.flat, "{flat:?}");
    assert!(flat.left.is_empty(), "{flat:?}");
    assert_eq!(flat.orders.len(), 1, "{flat:?}");
    assert_eq!(flat.orders[0].status, OrderStatus::Filled, "{flat:?}");
    let (free, locked) = env.sim_balance("BTC");
    assert!(
        free + locked < dec!(0.00001),
        "BTC left at the simulator: {free} + {locked}"
    );
    assert!(env.open_at_venue().is_empty());
    let after = gw.snapshot().await.unwrap();
    assert!(
        after.positions.iter().all(|p| p.qty < dec!(0.00001)),
        "{after:?}"
    );

    // What the report reads: orders per instrument, and fills that agree with the
    // simulator's own record of each order's executions.
    let counts = gw.order_counts();
    let btc_counts = &counts["BTC-USD"];
    assert_eq!(btc_counts.orders, 5, "{counts:?}");
    assert_eq!(btc_counts.cancelled, 4, "{counts:?}");
    assert_eq!(btc_counts.filled, 1, "{counts:?}");
    assert_eq!(btc_counts.open, 0, "{counts:?}");
    let close_id = flat.orders[0].request.client_order_id.to_string();
    let fills = gw.fills().await.unwrap();
    for id in ["sd-1", "sd-2", close_id.as_str()] {
        let sim = env
            .sim
            .orders()
            .into_iter()
            .find(|o| o.client_order_id == id)
            .unwrap();
        let mine: Vec<_> = fills
            .iter()
            .filter(|f| f.client_order_id.as_str() == id)
            .collect();
        let qty: Decimal = mine.iter().map(|f| f.qty).sum();
        let quote: Decimal = mine.iter().map(|f| f.qty * f.price).sum();
        assert_eq!(qty, sim.executed_qty, "{id}: {mine:?}");
        assert_eq!(quote, sim.cummulative_quote_qty, "{id}: {mine:?}");
        assert!(mine.iter().all(|f| !f.fee_asset.is_empty()), "{mine:?}");
        if sim.status == SimOrderStatus::Filled {
            assert!(!mine.is_empty());
        }
    }
    assert_eq!(gw.refusals().get("kill_switch"), Some(&1));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_commands_are_audited_with_their_caller_and_outcome() {
    use gekko_audit::{AuditKey, AuditLog};
    use gekko_security::{Caller, Role};

    let mut env = env().await;
    let dir = std::env::temp_dir().join(format!("gekko-gw-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let secret = [7u8; 32];
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let settings = gekko_config::AuditLogging {
        stream: "gekko:audit:test".into(),
        key: Some(secrecy::SecretString::from(hex)),
        archive_dir: dir.clone(),
        ..gekko_config::AuditLogging::default()
    };
    let log = AuditLog::open(env.bus.clone(), &settings, "gateway-binanceus")
        .await
        .unwrap();
    env.start_ready(|_| {}).await;
    let gw = env.gateway();
    gw.attach_audit(log.clone());
    // The security layer names the caller in the request's extensions; stand in for it
    // with an interceptor that does the same, on a server of its own.
    let svc = gekko_proto::v1::gateway_service_server::GatewayServiceServer::with_interceptor(
        gekko_gateway::service::GatewayGrpc::new(gw.clone()),
        |mut req: tonic::Request<()>| {
            req.extensions_mut().insert(Caller {
                name: "desk-admin".into(),
                role: Role::Admin,
            });
            Ok(req)
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = env.gw().cancel.clone();
    env.gw().tracker.spawn(
        GrpcServer::new(Readiness::new())
            .add_service(svc)
            .serve(listener, cancel),
    );
    let mut c = GatewayServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let px = env.passive_bid();

    place(&mut c, limit("au-1", pb::Side::Buy, dec!(0.01), px))
        .await
        .unwrap();
    let bad = place(&mut c, limit("au-bad", pb::Side::Buy, dec!(0.000001), px)).await;
    assert_eq!(bad.unwrap_err().code(), tonic::Code::InvalidArgument);
    c.cancel_order(pb::CancelOrderRequest {
        venue: "binanceus".into(),
        instrument: "BTC-USD".into(),
        client_order_id: "au-1".into(),
    })
    .await
    .unwrap();
    c.cancel_all_orders(pb::CancelAllOrdersRequest::default())
        .await
        .unwrap();
    c.set_trading_enabled(pb::SetTradingEnabledRequest {
        enabled: false,
        reason: "audit test".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    refused(
        place(&mut c, limit("au-2", pb::Side::Buy, dec!(0.01), px)).await,
        "kill switch",
    );
    c.close_positions(pb::ClosePositionsRequest {
        venue: "binanceus".into(),
        confirm: true,
        instruments: vec![],
    })
    .await
    .unwrap();
    // An in-process caller (the controller) is audited too.
    gw.cancel_working(Duration::from_secs(5)).await;
    log.flush().await;

    let mut out = Vec::new();
    let (report, lines) = gekko_audit::export(
        &*env.bus,
        &AuditKey::from_secret(&secret),
        "gekko:audit:test",
        &dir,
        0,
        &mut out,
    )
    .await
    .unwrap();
    assert!(report.is_intact(), "{:?}", report.first_bad);
    let entries: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len() as u64, lines);
    let seen: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| {
            let f = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (f("actor"), f("action"), f("outcome"))
        })
        .collect();
    let want = [
        ("desk-admin", "order.place", "ok"),
        ("desk-admin", "order.place", "refused"),
        ("desk-admin", "order.cancel", "ok"),
        ("desk-admin", "order.cancel_all", "ok"),
        ("desk-admin", "kill_switch", "ok"),
        ("desk-admin", "order.place", "refused"),
        ("close-positions", "order.place", "ok"),
        ("desk-admin", "positions.close", "ok"),
        ("controller", "order.cancel_all", "ok"),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect();
    assert_eq!(seen, want, "{entries:#?}");
    // The details name what was done and why it was refused.
    assert_eq!(entries[0]["detail"]["client_order_id"], "au-1");
    assert_eq!(entries[0]["detail"]["status"], "NEW");
    assert_eq!(entries[1]["detail"]["rule"], "LOT_SIZE");
    assert_eq!(entries[4]["detail"]["reason"], "audit test");
    assert_eq!(entries[5]["detail"]["rule"], "kill_switch");
    let _ = std::fs::remove_dir_all(&dir);
    env.stop().await;
}

/// An order the venue refuses for a pause (here a 429 storm) before placing it comes back
/// as RESOURCE_EXHAUSTED, not as a final rejection: once the pause is over, the same
/// order with the same client id is accepted, and the venue holds exactly one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_refused_as_rate_limited_may_be_retried_with_its_client_id() {
    let mut env = env().await;
    env.start_ready(|_| {}).await;
    let mut c = env.client();
    let price = env.passive_bid();
    env.sim.inject(Fault::RateLimitStorm {
        duration: Duration::from_secs(2),
    });
    let err = place(
        &mut c,
        limit("rl-retry-1", pb::Side::Buy, dec!(0.001), price),
    )
    .await
    .expect_err("refused during the storm");
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
    assert_eq!(env.at_venue("rl-retry-1"), 0, "not placed");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let placed = eventually(WAIT, || {
        let mut c = c.clone();
        async move {
            place(
                &mut c,
                limit("rl-retry-1", pb::Side::Buy, dec!(0.001), price),
            )
            .await
            .is_ok_and(|o| o.status == pb::OrderStatus::New as i32)
        }
    })
    .await;
    assert!(placed, "the retry with the same client id is placed");
    assert_eq!(
        env.at_venue("rl-retry-1"),
        1,
        "exactly one order at the venue"
    );
    // The order stream tells the whole story: the refused attempt, then the placed one.
    let topic: Topic<OrderEvent> = Topic::durable(names::orders("binanceus"), 1);
    let mut kinds = Vec::new();
    let mut reader = env
        .bus
        .tail_reader(&names::orders("binanceus"), gekko_bus::StartFrom::Beginning)
        .await
        .unwrap();
    loop {
        let batch = reader.read(100, Duration::from_millis(50)).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for d in batch {
            let ev = topic.decode(&d).unwrap().payload;
            if ev.order.request.client_order_id.as_str() == "rl-retry-1" {
                kinds.push(ev.kind);
            }
        }
    }
    assert_eq!(
        kinds.first(),
        Some(&OrderEventKind::Submitting),
        "{kinds:?}"
    );
    assert!(kinds.contains(&OrderEventKind::Rejected), "{kinds:?}");
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == OrderEventKind::Submitting)
            .count(),
        2,
        "{kinds:?}"
    );
    env.stop().await;
}

/// Fail closed on the audit trail: the audit stream lives on a Redis of its own, which is
/// stopped. The gateway then refuses new orders (an in-memory kill switch by
/// `audit-guard`, nothing reaches the venue), and once that Redis is back the queued
/// records are written, the guard lifts itself and orders pass again. Every order the
/// venue holds has its `order.place` entry, and the chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_refused_while_the_audit_trail_cannot_be_written() {
    use gekko_audit::{AuditKey, AuditLog};
    use gekko_gateway::control::AUDIT_GUARD;

    let mut env = env().await;
    let mut audit_redis = RedisServer::start();
    let audit_bus: Arc<dyn Bus> = Arc::new(
        RedisBus::connect(
            &audit_redis.url(),
            RedisBusOptions {
                write_deadline: Duration::from_secs(1),
                ..RedisBusOptions::default()
            },
        )
        .await
        .expect("audit bus"),
    );
    let dir = std::env::temp_dir().join(format!("gekko-gw-audit-guard-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let secret = [9u8; 32];
    let settings = gekko_config::AuditLogging {
        stream: "gekko:audit:guard".into(),
        key: Some(secrecy::SecretString::from(hex::encode(secret))),
        archive_dir: dir.clone(),
        ..gekko_config::AuditLogging::default()
    };
    let log = AuditLog::open(audit_bus.clone(), &settings, "gateway-binanceus")
        .await
        .unwrap();
    env.start_ready(|_| {}).await;
    let gw = env.gateway();
    gw.attach_audit(log.clone());
    let mut c = env.client();
    let px = env.passive_bid();
    place(&mut c, limit("ag-1", pb::Side::Buy, dec!(0.01), px))
        .await
        .expect("the trail writes: accepted");

    // The audit Redis stops. The next order's record cannot be written; from then on new
    // orders are refused and never reach the venue.
    audit_redis.kill();
    let during = place(&mut c, limit("ag-2", pb::Side::Buy, dec!(0.01), px)).await;
    let halted = eventually(WAIT, || {
        let gw = gw.clone();
        async move {
            gw.trading_state()
                .halted
                .is_some_and(|h| h.actor == AUDIT_GUARD)
        }
    })
    .await;
    assert!(
        halted,
        "the audit guard never engaged: {:?}",
        gw.trading_state()
    );
    assert!(log.is_failing());
    refused(
        place(&mut c, limit("ag-3", pb::Side::Buy, dec!(0.01), px)).await,
        "audit trail",
    );
    assert_eq!(env.at_venue("ag-3"), 0, "a refused order reached the venue");
    // An operator releasing the kill switch does not release the audit guard.
    let state = gw
        .set_trading_enabled(true, "operator resumes", "test")
        .await;
    assert!(
        state
            .halted
            .as_ref()
            .is_some_and(|h| h.actor == AUDIT_GUARD),
        "releasing the kill switch lifted the audit guard: {state:?}"
    );
    refused(
        place(&mut c, limit("ag-3b", pb::Side::Buy, dec!(0.01), px)).await,
        "audit trail",
    );
    assert_eq!(
        env.at_venue("ag-3b"),
        0,
        "a refused order reached the venue"
    );

    // Back: the queued records land, the guard lifts, orders pass again.
    audit_redis.restart();
    let lifted = eventually(Duration::from_secs(30), || {
        let gw = gw.clone();
        async move { gw.trading_state().halted.is_none() }
    })
    .await;
    assert!(
        lifted,
        "the audit guard never lifted: {:?}",
        gw.trading_state()
    );
    place(&mut c, limit("ag-4", pb::Side::Buy, dec!(0.01), px))
        .await
        .expect("the trail writes again: accepted");
    log.flush().await;

    let mut out = Vec::new();
    let (report, _) = gekko_audit::export(
        &*audit_bus,
        &AuditKey::from_secret(&secret),
        "gekko:audit:guard",
        &dir,
        0,
        &mut out,
    )
    .await
    .unwrap();
    assert!(report.is_intact(), "{:?}", report.first_bad);
    let entries: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let placed = |id: &str, outcome: &str| {
        entries.iter().any(|e| {
            e["action"] == "order.place"
                && e["detail"]["client_order_id"] == id
                && e["outcome"] == outcome
        })
    };
    // Every order the venue holds has its entry (ag-2 too, if it was accepted while its
    // record waited for the writer).
    for o in env
        .sim
        .orders()
        .into_iter()
        .filter(|o| o.api_key == PAPER_KEY)
    {
        assert!(
            placed(&o.client_order_id, "ok"),
            "{} is at the venue without an order.place entry: {entries:#?}",
            o.client_order_id
        );
    }
    assert!(during.is_ok() == (env.at_venue("ag-2") == 1), "{during:?}");
    assert!(placed("ag-3", "refused"), "{entries:#?}");
    let _ = std::fs::remove_dir_all(&dir);
    env.stop().await;
}

/// `COMPLIANCE_SETTINGS restricted_pairs`: an order on a restricted pair is refused naming
/// the rule while another pair trades, and nothing restricted reaches the venue.
/// `trading_enabled=false` refuses every order, and the kill switch's release over gRPC
/// cannot override it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_pairs_are_refused_and_trading_disabled_refuses_everything() {
    let eth = InstrumentId::new(VenueId::BinanceUs, "ETH", "USD");
    let mut env = env().await;
    let both = vec![btc(), eth.clone()];
    env.start_ready(|cfg| {
        cfg.instruments = both.clone();
        cfg.limits.restricted_pairs = vec!["ETH-USD".to_owned()];
    })
    .await;
    let mut c = env.client();
    let px = env.passive_bid();
    let mut eth_order = limit("rp-eth", pb::Side::Buy, dec!(0.1), dec!(1000));
    eth_order.instrument = "ETH-USD".into();
    let err = refused(place(&mut c, eth_order).await, "ETH-USD");
    assert!(err.message().contains("restricted"), "{err:?}");
    assert_eq!(env.gateway().refusals().get("restricted_pairs"), Some(&1));
    let o = place(&mut c, limit("rp-btc", pb::Side::Buy, dec!(0.01), px))
        .await
        .expect("an unrestricted pair trades");
    assert_eq!(o.status, pb::OrderStatus::New as i32);
    assert_eq!(
        env.at_venue("rp-eth"),
        0,
        "a restricted order reached the venue"
    );
    assert_eq!(env.at_venue("rp-btc"), 1);
    env.stop().await;

    env.start_ready(|cfg| {
        cfg.instruments = both.clone();
        cfg.limits.trading_enabled = false;
    })
    .await;
    let mut c = env.client();
    refused(
        place(&mut c, limit("td-1", pb::Side::Buy, dec!(0.01), px)).await,
        "trading_enabled=false",
    );
    let mut eth_order = limit("td-2", pb::Side::Buy, dec!(0.1), dec!(1000));
    eth_order.instrument = "ETH-USD".into();
    refused(place(&mut c, eth_order).await, "trading_enabled=false");
    refused(
        place(&mut c, market("td-3", pb::Side::Sell, dec!(0.01))).await,
        "trading_enabled=false",
    );
    // Releasing the kill switch does not enable what configuration disables.
    let resp = c
        .set_trading_enabled(pb::SetTradingEnabledRequest {
            venue: "binanceus".into(),
            enabled: true,
            reason: "try to override".into(),
            ..Default::default()
        })
        .await
        .expect("the release itself is accepted")
        .into_inner();
    let v = &resp.venues[0];
    assert!(!v.trading_enabled, "{v:?}");
    refused(
        place(&mut c, limit("td-4", pb::Side::Buy, dec!(0.01), px)).await,
        "trading_enabled=false",
    );
    assert_eq!(env.gateway().refusals().get("trading_enabled"), Some(&4));
    for id in ["td-1", "td-2", "td-3", "td-4"] {
        assert_eq!(env.at_venue(id), 0, "{id} reached the venue");
    }
    env.stop().await;
}
