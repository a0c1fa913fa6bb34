//! The real OANDA gateway against the real OANDA simulator, over sockets (REST and both
//! chunked line streams), with a real `redis-server` as the bus. Each test is one scenario
//! of the OANDA issue's "done means" list.

use std::sync::Arc;
use std::time::Duration;

use gekko_bus::{Bus, RedisBus, RedisBusOptions, StartFrom, Topic, names};
use gekko_gateway::engine::{Gateway, GatewayConfig, ReconcileMode, StartError};
use gekko_gateway::orders::OrderEvent;
use gekko_proto::v1 as pb;
use gekko_proto::v1::gateway_service_client::GatewayServiceClient;
use gekko_runtime::{GrpcServer, Readiness};
use gekko_sim::oanda::{Fault, SimConfig, SimHandle, SimOanda};
use gekko_testkit::{RedisServer, eventually};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::Channel;

const WAIT: Duration = Duration::from_secs(15);

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

#[derive(Clone)]
struct Opts {
    stale_after: Duration,
    request_timeout: Duration,
    reconcile: ReconcileMode,
    max_order_notional: Decimal,
    max_daily_notional: Decimal,
}

impl Default for Opts {
    fn default() -> Self {
        Self {
            stale_after: Duration::from_secs(5),
            request_timeout: Duration::from_secs(2),
            reconcile: ReconcileMode::Adopt,
            max_order_notional: dec!(1000000),
            max_daily_notional: Decimal::ZERO,
        }
    }
}

fn eur() -> gekko_core::InstrumentId {
    gekko_core::InstrumentId::new(gekko_core::VenueId::Oanda, "EUR", "USD")
}

async fn env() -> Env {
    let redis = RedisServer::start();
    let bus: Arc<dyn Bus> = Arc::new(
        RedisBus::connect(&redis.url(), RedisBusOptions::default())
            .await
            .expect("bus"),
    );
    let sim = SimOanda::start(SimConfig {
        tick_interval: Duration::from_millis(50),
        heartbeat_interval: Duration::from_millis(500),
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
    async fn start_gateway(&mut self, opts: &Opts) -> Result<(), StartError> {
        let venue = gateway_oanda::sim_venue(&self.sim, opts.request_timeout, opts.stale_after)
            .expect("venue client");
        let mut cfg = GatewayConfig::new(gateway_oanda::SOURCE, vec![eur(), usdjpy()]);
        cfg.stale_after = opts.stale_after;
        cfg.reconcile_mode = opts.reconcile;
        cfg.limits.max_order_notional = opts.max_order_notional;
        cfg.limits.max_daily_notional = opts.max_daily_notional;
        let readiness = Readiness::new();
        let tracker = TaskTracker::new();
        let cancel = CancellationToken::new();
        let (gateway, _report) = Gateway::start(
            Arc::new(venue),
            self.bus.clone(),
            cfg,
            &readiness,
            &tracker,
            cancel.clone(),
        )
        .await?;
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
        Ok(())
    }

    async fn stop_gateway(&mut self) {
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

    fn client(&self) -> GatewayServiceClient<Channel> {
        self.gw().client.clone()
    }

    async fn wait_ready(&self) {
        let r = self.gw().readiness.clone();
        assert!(
            eventually(WAIT, || {
                let r = r.clone();
                async move { r.is_ready() }
            })
            .await,
            "gateway never became ready: {:?}",
            self.gw().readiness.report()
        );
    }

    /// Every entry of a durable stream, decoded.
    async fn read_all<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        stream: String,
    ) -> Vec<T> {
        let topic: Topic<T> = Topic::durable(stream, 1);
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

    async fn order_events(&self, client_order_id: &str) -> Vec<OrderEvent> {
        let all: Vec<OrderEvent> = self.read_all(names::orders("oanda")).await;
        all.into_iter()
            .filter(|e| e.order.request.client_order_id.as_str() == client_order_id)
            .collect()
    }

    async fn fills(&self, client_order_id: &str) -> Vec<gekko_core::Fill> {
        let all: Vec<gekko_core::Fill> = self.read_all(names::fills("oanda")).await;
        all.into_iter()
            .filter(|f| f.client_order_id.as_str() == client_order_id)
            .collect()
    }

    /// The resume cursor the gateway stored (`UserEvent::Cursor`), if any.
    async fn stored_cursor(&self) -> Option<u64> {
        let topic: Topic<String> = Topic::durable(gekko_gateway::engine::cursor_stream("oanda"), 1);
        let d = self.bus.last_entry(topic.name()).await.unwrap()?;
        Some(topic.decode(&d).unwrap().payload.parse().unwrap())
    }

    /// Each of `client_order_id`'s fills summed to `qty` on the fills stream, no trade id
    /// twice: waits for the sum, then checks again after the next heartbeats.
    async fn fills_once(&self, client_order_id: &str, qty: Decimal) {
        let ok = eventually(WAIT, || async {
            self.fills(client_order_id)
                .await
                .iter()
                .map(|f| f.qty)
                .sum::<Decimal>()
                == qty
        })
        .await;
        assert!(
            ok,
            "{client_order_id}: fills never summed to {qty}: {:?}",
            self.fills(client_order_id).await
        );
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let fills = self.fills(client_order_id).await;
        assert_eq!(
            fills.iter().map(|f| f.qty).sum::<Decimal>(),
            qty,
            "{client_order_id}: exactly once: {fills:?}"
        );
        let mut ids: Vec<_> = fills.iter().map(|f| f.trade_id.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), fills.len(), "no fill twice: {fills:?}");
    }

    /// Orders at the venue carrying this client id (`clientExtensions.id`).
    fn venue_orders(&self, client_order_id: &str) -> usize {
        self.sim
            .orders()
            .into_iter()
            .filter(|o| o["clientExtensions"]["id"] == client_order_id)
            .count()
    }
}

/// Redis, the simulator, and a started gateway that reported ready.
async fn ready_env(opts: &Opts) -> Env {
    let mut env = env().await;
    env.start_gateway(opts).await.unwrap();
    env.wait_ready().await;
    env
}

fn usdjpy() -> gekko_core::InstrumentId {
    gekko_core::InstrumentId::new(gekko_core::VenueId::Oanda, "USD", "JPY")
}

fn limit(id: &str, side: pb::Side, qty: &str, price: &str) -> pb::PlaceOrderRequest {
    pb::PlaceOrderRequest {
        venue: "oanda".into(),
        instrument: "EUR-USD".into(),
        side: side as i32,
        r#type: pb::OrderType::Limit as i32,
        qty: qty.into(),
        price: price.into(),
        time_in_force: pb::TimeInForce::Gtc as i32,
        client_order_id: id.into(),
        ..Default::default()
    }
}

async fn get_order(c: &mut GatewayServiceClient<Channel>, id: &str) -> pb::OrderMsg {
    c.get_order(pb::GetOrderRequest {
        venue: "oanda".into(),
        instrument: "EUR-USD".into(),
        client_order_id: id.into(),
    })
    .await
    .unwrap()
    .into_inner()
    .order
    .unwrap()
}

async fn wait_status(env: &Env, id: &str, status: pb::OrderStatus) -> pb::OrderMsg {
    let mut c = env.client();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let o = get_order(&mut c, id).await;
        if o.status == status as i32 {
            return o;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "order {id} never reached {status:?}; last {o:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn market(id: &str, side: pb::Side, qty: &str) -> pb::PlaceOrderRequest {
    pb::PlaceOrderRequest {
        r#type: pb::OrderType::Market as i32,
        price: String::new(),
        time_in_force: pb::TimeInForce::Ioc as i32,
        ..limit(id, side, qty, "")
    }
}

/// A EUR-USD bid safely below the market, on the 5-decimal price grid.
fn passive_bid(env: &Env) -> Decimal {
    let (bid, _) = env.sim.touch("EUR_USD").expect("EUR_USD listed");
    (bid * dec!(0.98)).round_dp(5)
}

fn cancel(id: &str) -> pb::CancelOrderRequest {
    pb::CancelOrderRequest {
        venue: "oanda".into(),
        instrument: "EUR-USD".into(),
        client_order_id: id.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_and_limit_lifecycles_on_grpc_the_order_stream_and_the_fills_stream() {
    let mut env = ready_env(&Opts::default()).await;
    let mut c = env.client();

    // A market buy fills at once; the position is native and signed.
    let m = c
        .place_order(market("oa-mkt-1", pb::Side::Buy, "10000"))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    let m = if m.status == pb::OrderStatus::Filled as i32 {
        m
    } else {
        wait_status(&env, "oa-mkt-1", pb::OrderStatus::Filled).await
    };
    assert_eq!(
        m.filled_qty.parse::<Decimal>().unwrap(),
        dec!(10000),
        "{m:?}"
    );
    assert_eq!(env.sim.position_units("EUR_USD").0, dec!(10000));

    // A resting limit buy: New, then partly and fully traded through by the venue.
    let px = passive_bid(&env);
    let placed = c
        .place_order(limit("oa-lim-1", pb::Side::Buy, "5000", &px.to_string()))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(placed.status, pb::OrderStatus::New as i32, "{placed:?}");
    env.sim.trade_through("EUR_USD", px, dec!(5000));
    let filled = wait_status(&env, "oa-lim-1", pb::OrderStatus::Filled).await;
    assert_eq!(filled.filled_qty.parse::<Decimal>().unwrap(), dec!(5000));
    assert_eq!(filled.avg_fill_price.parse::<Decimal>().unwrap(), px);
    assert_eq!(env.sim.position_units("EUR_USD").0, dec!(15000));

    // Another limit, cancelled.
    c.place_order(limit("oa-lim-2", pb::Side::Buy, "1000", &px.to_string()))
        .await
        .unwrap();
    let cancelled = c
        .cancel_order(cancel("oa-lim-2"))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(cancelled.status, pb::OrderStatus::Cancelled as i32);

    use gekko_core::OrderStatus as S;
    let statuses: Vec<_> = env
        .order_events("oa-lim-1")
        .await
        .iter()
        .map(|e| e.order.status)
        .collect();
    assert_eq!(statuses.first(), Some(&S::PendingNew), "{statuses:?}");
    assert!(
        statuses.contains(&S::New) && statuses.contains(&S::Filled),
        "{statuses:?}"
    );
    let statuses: Vec<_> = env
        .order_events("oa-lim-2")
        .await
        .iter()
        .map(|e| e.order.status)
        .collect();
    assert_eq!(statuses.last(), Some(&S::Cancelled), "{statuses:?}");

    // The fills stream holds each execution once.
    for (id, qty) in [("oa-mkt-1", dec!(10000)), ("oa-lim-1", dec!(5000))] {
        let ok = eventually(WAIT, || async {
            env.fills(id).await.iter().map(|f| f.qty).sum::<Decimal>() == qty
        })
        .await;
        let fills = env.fills(id).await;
        assert!(ok, "{id}: fills never summed to {qty}: {fills:?}");
        let mut ids: Vec<_> = fills.iter().map(|f| f.trade_id.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), fills.len(), "{id}: no fill twice: {fills:?}");
    }
    assert!(env.fills("oa-lim-2").await.is_empty());

    // GetAccount carries the native position and the margin summary. The
    // market is paused so the margin the venue reports and the one read
    // here are computed from the same prices.
    env.sim.set_market_paused(true);
    let account = c
        .get_account(pb::GetAccountRequest {
            venue: "oanda".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let pos = account
        .positions
        .iter()
        .find(|p| p.instrument == "EUR-USD")
        .expect("a EUR-USD position");
    assert_eq!(pos.qty.parse::<Decimal>().unwrap(), dec!(15000), "{pos:?}");
    let margin = account.margin.expect("margin summary");
    let (nav, used, available, _) = env.sim.margin();
    assert_eq!(
        margin.margin_used.parse::<Decimal>().unwrap(),
        used,
        "{margin:?}"
    );
    assert!(margin.nav.parse::<Decimal>().unwrap() > Decimal::ZERO && nav > Decimal::ZERO);
    assert!(margin.margin_available.parse::<Decimal>().unwrap() <= available + dec!(1));
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_submit_leaves_exactly_one_order_at_the_venue() {
    let mut env = ready_env(&Opts {
        request_timeout: Duration::from_millis(800),
        ..Opts::default()
    })
    .await;
    let mut c = env.client();
    let px = passive_bid(&env);
    env.sim.inject(Fault::SilentStreams {
        duration: Duration::from_secs(3),
    });
    env.sim.inject(Fault::OrderTimeout);
    let first = c
        .place_order(limit("oa-amb-1", pb::Side::Buy, "1000", &px.to_string()))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert!(
        first.status == pb::OrderStatus::InFlight as i32
            || first.status == pb::OrderStatus::New as i32,
        "a timeout is in flight, not failed: {first:?}"
    );
    let again = c
        .place_order(limit("oa-amb-1", pb::Side::Buy, "1000", &px.to_string()))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(again.client_order_id, "oa-amb-1");
    let resolved = wait_status(&env, "oa-amb-1", pb::OrderStatus::New).await;
    assert!(!resolved.venue_order_id.is_empty());
    assert_eq!(
        env.venue_orders("oa-amb-1"),
        1,
        "exactly one order at the venue"
    );
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_order_catches_up_with_no_fill_lost() {
    let mut env = ready_env(&Opts::default()).await;
    let mut c = env.client();
    let px = passive_bid(&env);
    for (id, qty) in [("oa-rs-1", "3000"), ("oa-rs-2", "2000")] {
        c.place_order(limit(id, pb::Side::Buy, qty, &px.to_string()))
            .await
            .unwrap();
    }
    env.stop_gateway().await;

    // While the gateway is down, oa-rs-1 fills at the venue.
    env.sim.trade_through("EUR_USD", px, dec!(3000));

    env.start_gateway(&Opts::default()).await.unwrap();
    let gw = env.gw().gateway.clone();
    let id = |s: &str| gekko_core::ClientOrderId::parse(s).unwrap();
    let rs1 = gw.order(&id("oa-rs-1")).expect("known after restart");
    assert_eq!(rs1.status, gekko_core::OrderStatus::Filled, "{rs1:?}");
    let rs2 = gw.order(&id("oa-rs-2")).expect("known after restart");
    assert_eq!(rs2.status, gekko_core::OrderStatus::New, "{rs2:?}");
    // The fill made while nobody watched reaches the fills stream, once.
    let ok = eventually(WAIT, || async {
        env.fills("oa-rs-1")
            .await
            .iter()
            .map(|f| f.qty)
            .sum::<Decimal>()
            == dec!(3000)
    })
    .await;
    assert!(
        ok,
        "fill lost across the restart: {:?}",
        env.fills("oa-rs-1").await
    );
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_stream_is_detected_and_reconnected() {
    let mut env = ready_env(&Opts {
        stale_after: Duration::from_millis(1500),
        ..Opts::default()
    })
    .await;
    let before = env.sim.stats().ws_connections;
    env.sim.inject(Fault::SilentStreams {
        duration: Duration::from_secs(5),
    });
    let r = env.gw().readiness.clone();
    assert!(
        eventually(Duration::from_secs(4), || {
            let r = r.clone();
            async move { !r.is_ready() }
        })
        .await,
        "a silent stream must make the gateway not ready"
    );
    assert!(
        r.report()
            .iter()
            .any(|c| c.name == "oanda-market-data" && !c.ready),
        "{:?}",
        r.report()
    );
    assert!(
        eventually(WAIT, || async { env.sim.stats().ws_connections > before }).await,
        "the watchdog reconnected"
    );
    env.wait_ready().await;
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_chunks_and_malformed_lines_parse_and_are_survived() {
    let mut env = ready_env(&Opts::default()).await;
    env.sim.inject(Fault::SplitChunks { count: 20 });
    env.sim.inject(Fault::MalformedNext { count: 5 });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(env.sim.stats().lines_split > 0, "{:?}", env.sim.stats());
    // Quotes still flow and track the venue.
    let gw = env.gw().gateway.clone();
    env.sim.set_market_paused(true);
    let ok = eventually(WAIT, || {
        let gw = gw.clone();
        let sim = &env.sim;
        async move {
            let (bid, ask) = sim.touch("EUR_USD").unwrap();
            gw.book(&eur()).is_some_and(|b| {
                b.bids.first().map(|l| l.price) == Some(bid)
                    && b.asks.first().map(|l| l.price) == Some(ask)
            })
        }
    })
    .await;
    assert!(ok, "top of book never matched the venue's");
    env.sim.set_market_paused(false);
    env.wait_ready().await;
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_burst_is_survived() {
    let mut env = ready_env(&Opts::default()).await;
    let mut c = env.client();
    env.sim.inject(Fault::RateLimitStorm {
        duration: Duration::from_secs(2),
    });
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut ok_after = 0;
    while tokio::time::Instant::now() < until {
        if c.get_account(pb::GetAccountRequest {
            venue: "oanda".into(),
        })
        .await
        .is_ok()
        {
            ok_after += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = env.sim.stats();
    assert!(stats.http_429 > 0, "the burst happened: {stats:?}");
    assert!(ok_after > 0, "requests succeed again after the burst");
    // And an order goes through afterwards, once.
    let px = passive_bid(&env);
    c.place_order(limit("oa-429-1", pb::Side::Buy, "1000", &px.to_string()))
        .await
        .unwrap();
    assert_eq!(env.venue_orders("oa-429-1"), 1);
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insufficient_margin_is_refused_before_sending_and_mapped_when_the_venue_says_it() {
    // A notional limit far above the account's margin, so the margin check is what refuses.
    let mut env = ready_env(&Opts {
        max_order_notional: dec!(10000000000),
        ..Opts::default()
    })
    .await;
    let mut c = env.client();
    let orders_before = env.sim.orders().len();
    // Far more than the account's margin can carry (100 000 USD at 50:1 is ~5M EUR): the
    // adapter's margin check refuses it locally and the order is Rejected, unsent.
    let o = c
        .place_order(market("oa-margin-1", pb::Side::Buy, "90000000"))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(o.status, pb::OrderStatus::Rejected as i32, "{o:?}");
    assert!(o.reject_reason.contains("gekko:margin"), "{o:?}");
    assert!(o.venue_order_id.is_empty(), "{o:?}");
    assert_eq!(env.sim.orders().len(), orders_before, "nothing sent");

    // The venue refuses for its own reasons: mapped precisely, keeping OANDA's code.
    env.sim.inject(Fault::MarginRejectNext { count: 1 });
    let o = c
        .place_order(market("oa-margin-2", pb::Side::Buy, "1000"))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(o.status, pb::OrderStatus::Rejected as i32, "{o:?}");
    assert!(o.reject_reason.contains("INSUFFICIENT_MARGIN"), "{o:?}");
    let events = env.order_events("oa-margin-2").await;
    assert_eq!(
        events.last().map(|e| e.order.status),
        Some(gekko_core::OrderStatus::Rejected),
        "{events:?}"
    );
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_opens_with_a_sell_and_closes_with_close_positions() {
    let mut env = ready_env(&Opts::default()).await;
    let mut c = env.client();
    c.place_order(market("oa-short-1", pb::Side::Sell, "7000"))
        .await
        .unwrap();
    assert!(
        eventually(WAIT, || async {
            env.sim.position_units("EUR_USD").1 == dec!(-7000)
        })
        .await,
        "short at the venue: {:?}",
        env.sim.position_units("EUR_USD")
    );
    let account = c
        .get_account(pb::GetAccountRequest {
            venue: "oanda".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let pos = account
        .positions
        .iter()
        .find(|p| p.instrument == "EUR-USD")
        .expect("position");
    assert_eq!(
        pos.qty.parse::<Decimal>().unwrap(),
        dec!(-7000),
        "signed: {pos:?}"
    );

    let err = c
        .close_positions(pb::ClosePositionsRequest {
            venue: "oanda".into(),
            confirm: false,
            instruments: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    let closed = c
        .close_positions(pb::ClosePositionsRequest {
            venue: "oanda".into(),
            confirm: true,
            instruments: vec!["EUR-USD".into()],
        })
        .await
        .unwrap()
        .into_inner()
        .orders;
    assert!(!closed.is_empty(), "the close reports its order");
    assert!(
        closed.iter().all(|o| o.side == pb::Side::Buy as i32),
        "a short closes with a buy: {closed:?}"
    );
    assert_eq!(
        env.sim.position_units("EUR_USD"),
        (Decimal::ZERO, Decimal::ZERO),
        "flat after the native close"
    );
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_catches_up_through_changes_from_the_stored_cursor() {
    let mut env = ready_env(&Opts::default()).await;
    let mut c = env.client();
    let px = passive_bid(&env);
    c.place_order(limit("oa-cur-1", pb::Side::Buy, "3000", &px.to_string()))
        .await
        .unwrap();
    // The gateway stores the venue's cursor as the transaction stream moves it.
    let last = env.sim.last_transaction_id();
    assert!(
        eventually(WAIT, || async { env.stored_cursor().await == Some(last) }).await,
        "the cursor {last} was never stored: {:?}",
        env.stored_cursor().await
    );
    env.stop_gateway().await;
    let stored = env.stored_cursor().await.expect("stored");

    // While the gateway is down: gekko's limit fills, and an order gekko never placed
    // (another client: the OANDA web platform, say) fills too.
    env.sim.trade_through("EUR_USD", px, dec!(3000));
    let other =
        gateway_oanda::sim_venue(&env.sim, Duration::from_secs(2), Duration::from_secs(5)).unwrap();
    let req = gekko_core::OrderRequest {
        client_order_id: gekko_core::ClientOrderId::parse("web-1").unwrap(),
        instrument: eur(),
        side: gekko_core::Side::Sell,
        order_type: gekko_core::OrderType::Market,
        qty: dec!(2000),
        price: None,
        time_in_force: None,
    };
    let u = gekko_venue::VenueAdapter::submit_order(&other, &req)
        .await
        .unwrap();
    assert_eq!(u.status, gekko_core::OrderStatus::Filled, "{u:?}");
    assert!(env.sim.last_transaction_id() > stored);
    let before = env.sim.changes_requests().len();

    env.start_gateway(&Opts::default()).await.unwrap();
    env.wait_ready().await;
    // Both fills reach the fills stream, once each: the unknown order's only through the
    // replay of /changes from the stored cursor.
    env.fills_once("oa-cur-1", dec!(3000)).await;
    env.fills_once("web-1", dec!(2000)).await;
    let calls = env.sim.changes_requests();
    assert!(
        calls[before..].contains(&stored),
        "/changes was asked from the stored cursor {stored}: {calls:?}"
    );
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_during_a_stream_drop_is_caught_up_once() {
    let mut env = ready_env(&Opts {
        stale_after: Duration::from_millis(1500),
        ..Opts::default()
    })
    .await;
    let mut c = env.client();
    let px = passive_bid(&env);
    c.place_order(limit("oa-drop-1", pb::Side::Buy, "4000", &px.to_string()))
        .await
        .unwrap();
    wait_status(&env, "oa-drop-1", pb::OrderStatus::New).await;
    let before = env.sim.changes_requests().len();
    // The streams go silent; the order fills while the gateway hears nothing.
    env.sim.inject(Fault::SilentStreams {
        duration: Duration::from_secs(3),
    });
    let r = env.gw().readiness.clone();
    assert!(
        eventually(Duration::from_secs(4), || {
            let r = r.clone();
            async move { !r.is_ready() }
        })
        .await,
        "the silence was detected"
    );
    let fill_tx = env.sim.last_transaction_id() + 1;
    assert_eq!(env.sim.trade_through("EUR_USD", px, dec!(4000)), dec!(4000));
    let filled = wait_status(&env, "oa-drop-1", pb::OrderStatus::Filled).await;
    assert_eq!(filled.filled_qty.parse::<Decimal>().unwrap(), dec!(4000));
    env.fills_once("oa-drop-1", dec!(4000)).await;
    let calls = env.sim.changes_requests();
    assert!(
        calls[before..].iter().any(|s| *s < fill_tx),
        "caught up through /changes from before the fill ({fill_tx}): {calls:?}"
    );
    env.wait_ready().await;
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notional_limits_count_in_the_account_currency() {
    // A USD account with limits written in USD. Resting limit buys: each is admitted (or
    // not) and counts its full notional, whatever the book's depth.
    let mut env = ready_env(&Opts {
        max_order_notional: dec!(20000),
        max_daily_notional: dec!(40000),
        ..Opts::default()
    })
    .await;
    let mut c = env.client();
    let (jpy_bid, _) = env.sim.touch("USD_JPY").unwrap();
    assert!(jpy_bid > dec!(50), "USD_JPY trades near 150: {jpy_bid}");
    let jpy_px = (jpy_bid * dec!(0.98)).round_dp(3).to_string();
    let jpy = |id: &str, qty: &str| pb::PlaceOrderRequest {
        instrument: "USD-JPY".into(),
        ..limit(id, pb::Side::Buy, qty, &jpy_px)
    };
    let eur_px = passive_bid(&env);
    assert!(eur_px > Decimal::ONE, "EUR is above 1 USD: {eur_px}");
    let eur = |id: &str, qty: &str| limit(id, pb::Side::Buy, qty, &eur_px.to_string());
    let placed = |o: pb::OrderMsg| {
        assert_eq!(o.status, pb::OrderStatus::New as i32, "{o:?}");
    };
    // 15 000 USD-JPY units are 15 000 USD (over 2M JPY): under the 20 000 USD limit.
    placed(
        c.place_order(jpy("oa-ntl-1", "15000"))
            .await
            .expect("15 000 USD is under the order limit")
            .into_inner()
            .order
            .unwrap(),
    );
    // 20 000 EUR-USD are over 20 000 USD: refused, unsent.
    let before = env.sim.orders().len();
    let err = c.place_order(eur("oa-ntl-2", "20000")).await.unwrap_err();
    assert!(err.message().contains("max_order_notional"), "{err:?}");
    assert_eq!(env.sim.orders().len(), before, "nothing sent");
    // 15 000 EUR-USD (over 15 000 USD) fit the order limit and, on top of the 15 000
    // USD of USD-JPY, the daily 40 000 USD.
    placed(
        c.place_order(eur("oa-ntl-3", "15000"))
            .await
            .expect("the day's total is about 31 000 USD")
            .into_inner()
            .order
            .unwrap(),
    );
    // 10 000 more USD-JPY (10 000 USD) take the day past 40 000 USD: refused.
    let err = c.place_order(jpy("oa-ntl-4", "10000")).await.unwrap_err();
    assert!(err.message().contains("max_daily_notional"), "{err:?}");
    // 5 000 USD-JPY (5 000 USD) still fit: counted in JPY they would not.
    placed(
        c.place_order(jpy("oa-ntl-5", "5000"))
            .await
            .expect("about 36 000 USD for the day")
            .into_inner()
            .order
            .unwrap(),
    );
    env.stop_gateway().await;
}

/// The value of `name{venue="oanda"}` in a Prometheus text rendering.
fn gauge(text: &str, name: &str) -> Option<Decimal> {
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains("venue=\"oanda\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .and_then(|v| Decimal::try_from(v).ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_summary_is_exported_as_margin_gauges() {
    let metrics = gekko_runtime::install_prometheus().expect("the recorder");
    let mut env = ready_env(&Opts::default()).await;
    let mut c = env.client();
    c.place_order(market("oa-gauge-1", pb::Side::Buy, "1000"))
        .await
        .unwrap();
    c.get_account(pb::GetAccountRequest {
        venue: "oanda".into(),
    })
    .await
    .unwrap();
    let text = metrics.render();
    for name in [
        "gekko_gateway_margin_nav",
        "gekko_gateway_margin_balance",
        "gekko_gateway_margin_unrealized_pl",
        "gekko_gateway_margin_used",
        "gekko_gateway_margin_available",
        "gekko_gateway_margin_closeout_percent",
    ] {
        assert!(gauge(&text, name).is_some(), "{name} is exported:\n{text}");
    }
    // Other scenarios of this binary run at the same time and set the same gauges from
    // their own simulators, all with a funded account: the figures are those of a live
    // margin account, not a fixed value.
    let nav = gauge(&text, "gekko_gateway_margin_nav").unwrap();
    assert!(nav > Decimal::ZERO, "NAV {nav}");
    let pct = gauge(&text, "gekko_gateway_margin_closeout_percent").unwrap();
    assert!(pct >= Decimal::ZERO && pct < Decimal::ONE, "closeout {pct}");
    env.stop_gateway().await;
}
