//! The real Binance.US gateway against the real simulator, over sockets, with a real
//! `redis-server` as the bus. Each test is one scenario from the gateway issue.

use std::sync::Arc;
use std::time::Duration;

use gekko_bus::{Bus, RedisBus, RedisBusOptions, StartFrom, Topic, names};
use gekko_gateway::engine::{Gateway, GatewayConfig, ReconcileMode, StartError};
use gekko_gateway::orders::OrderEvent;
use gekko_proto::v1 as pb;
use gekko_proto::v1::gateway_service_client::GatewayServiceClient;
use gekko_runtime::{GrpcServer, Readiness};
use gekko_sim::binanceus::{Fault, SimBinanceUs, SimConfig, SimHandle};
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
    addr: std::net::SocketAddr,
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
    position_limit: Option<Decimal>,
}

impl Default for Opts {
    fn default() -> Self {
        Self {
            stale_after: Duration::from_secs(5),
            request_timeout: Duration::from_secs(2),
            reconcile: ReconcileMode::Adopt,
            position_limit: None,
        }
    }
}

fn btc() -> gekko_core::InstrumentId {
    gekko_core::InstrumentId::new(gekko_core::VenueId::BinanceUs, "BTC", "USD")
}

async fn start_sim() -> SimHandle {
    let cfg = SimConfig {
        tick_interval: Duration::from_millis(50),
        ..SimConfig::default()
    };
    SimBinanceUs::start(cfg).await.expect("start simulator")
}

async fn env() -> Env {
    let redis = RedisServer::start();
    let bus: Arc<dyn Bus> = Arc::new(
        RedisBus::connect(&redis.url(), RedisBusOptions::default())
            .await
            .expect("bus"),
    );
    let sim = start_sim().await;
    Env {
        _redis: redis,
        sim,
        bus,
        gw: None,
    }
}

impl Env {
    async fn start_gateway(&mut self, opts: &Opts) -> Result<(), StartError> {
        let venue = gateway_binanceus::paper_venue(
            &self.sim.rest_url,
            &self.sim.ws_url,
            opts.request_timeout,
            opts.stale_after,
        );
        let mut cfg = GatewayConfig::new("gateway-binanceus", vec![btc()]);
        cfg.stale_after = opts.stale_after;
        cfg.reconcile_mode = opts.reconcile;
        cfg.limits.max_order_notional = dec!(1000000);
        if let Some(limit) = opts.position_limit {
            cfg.limits
                .position_limits
                .insert("BTC-USD".to_owned(), limit);
        }
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
            addr,
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

    async fn order_events(&self, client_order_id: &str) -> Vec<OrderEvent> {
        let topic: Topic<OrderEvent> = Topic::durable(names::orders("binanceus"), 1);
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
            for d in batch {
                let ev = topic.decode(&d).unwrap().payload;
                if ev.order.request.client_order_id.as_str() == client_order_id {
                    out.push(ev);
                }
            }
        }
    }
}

/// Redis, the simulator, and a started gateway that reported ready.
async fn ready_env(opts: &Opts) -> Env {
    let mut env = env().await;
    env.start_gateway(opts).await.unwrap();
    env.wait_ready().await;
    env
}

fn limit(id: &str, side: pb::Side, qty: &str, price: &str) -> pb::PlaceOrderRequest {
    pb::PlaceOrderRequest {
        venue: "binanceus".into(),
        instrument: "BTC-USD".into(),
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
        venue: "binanceus".into(),
        instrument: "BTC-USD".into(),
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

/// A price safely below the market, on the tick grid.
fn passive_bid(env: &Env) -> Decimal {
    let (_, bids, _) = env.sim.book("BTCUSD");
    (bids[0].0 * dec!(0.95)).round_dp(2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_lifecycle_place_partial_fill_fill_cancel() {
    let mut env = ready_env(&Opts::default()).await;
    let mut c = env.client();
    let px = passive_bid(&env);

    let placed = c
        .place_order(limit("life-1", pb::Side::Buy, "0.5", &px.to_string()))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(placed.status, pb::OrderStatus::New as i32, "{placed:?}");
    assert!(!placed.venue_order_id.is_empty());

    env.sim.trade_through("BTCUSD", px, dec!(0.2));
    let partial = wait_status(&env, "life-1", pb::OrderStatus::PartiallyFilled).await;
    assert_eq!(partial.filled_qty.parse::<Decimal>().unwrap(), dec!(0.2));
    env.sim.trade_through("BTCUSD", px, dec!(1));
    let filled = wait_status(&env, "life-1", pb::OrderStatus::Filled).await;
    assert_eq!(filled.filled_qty.parse::<Decimal>().unwrap(), dec!(0.5));
    assert_eq!(filled.avg_fill_price.parse::<Decimal>().unwrap(), px);

    c.place_order(limit("life-2", pb::Side::Buy, "0.1", &px.to_string()))
        .await
        .unwrap();
    let cancelled = c
        .cancel_order(pb::CancelOrderRequest {
            venue: "binanceus".into(),
            instrument: "BTC-USD".into(),
            client_order_id: "life-2".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(cancelled.status, pb::OrderStatus::Cancelled as i32);
    let open = c
        .list_open_orders(pb::ListOpenOrdersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .orders;
    assert!(open.is_empty(), "{open:?}");

    // The order stream on Redis tells the same story, persisted before the submit.
    let events = env.order_events("life-1").await;
    let statuses: Vec<_> = events.iter().map(|e| e.order.status).collect();
    use gekko_core::OrderStatus as S;
    assert_eq!(statuses.first(), Some(&S::PendingNew), "{statuses:?}");
    for s in [S::New, S::PartiallyFilled, S::Filled] {
        assert!(statuses.contains(&s), "{s:?} missing from {statuses:?}");
    }
    let events = env.order_events("life-2").await;
    assert_eq!(events.last().unwrap().order.status, S::Cancelled);
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_timeout_yields_exactly_one_order_at_the_venue() {
    let mut env = ready_env(&Opts {
        request_timeout: Duration::from_millis(800),
        ..Opts::default()
    })
    .await;
    let mut c = env.client();
    let px = passive_bid(&env);
    // The venue executes the order but its REST answer times out, and its user stream is
    // silent meanwhile, so only the resolver's query by client order id can find it.
    env.sim.inject(Fault::SilentStreams {
        duration: Duration::from_secs(3),
    });
    env.sim.inject(Fault::OrderTimeout);
    let first = c
        .place_order(limit("to-1", pb::Side::Buy, "0.1", &px.to_string()))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    // A timeout is "in flight", never "failed" (the resolver may already have found it by
    // the time the call returns, so NEW is fine too)...
    assert!(
        first.status == pb::OrderStatus::InFlight as i32
            || first.status == pb::OrderStatus::New as i32,
        "a timeout is in flight, not failed: {first:?}"
    );
    // ...and the order stream shows it went through the in-flight state.
    let kinds: Vec<_> = env
        .order_events("to-1")
        .await
        .iter()
        .map(|e| e.kind)
        .collect();
    assert!(
        kinds.contains(&gekko_gateway::orders::OrderEventKind::InFlight),
        "{kinds:?}"
    );
    // Asking again with the same id must not send a second order.
    let again = c
        .place_order(limit("to-1", pb::Side::Buy, "0.1", &px.to_string()))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(again.client_order_id, "to-1");
    // The resolver finds it at the venue by client order id.
    let resolved = wait_status(&env, "to-1", pb::OrderStatus::New).await;
    assert!(!resolved.venue_order_id.is_empty());
    let at_venue = env
        .sim
        .orders()
        .into_iter()
        .filter(|o| o.client_order_id == "to-1")
        .count();
    assert_eq!(at_venue, 1, "exactly one order at the venue");
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_order_reconciles() {
    let mut env = ready_env(&Opts::default()).await;
    let mut c = env.client();
    let px = passive_bid(&env);
    c.place_order(limit("rs-1", pb::Side::Buy, "0.3", &px.to_string()))
        .await
        .unwrap();
    c.place_order(limit("rs-2", pb::Side::Buy, "0.2", &px.to_string()))
        .await
        .unwrap();
    env.stop_gateway().await;

    // While the gateway is down: rs-1 fills at the venue.
    env.sim.trade_through("BTCUSD", px, dec!(0.3));

    env.start_gateway(&Opts::default()).await.unwrap();
    let gw = env.gw().gateway.clone();
    let rs1 = gw
        .order(&gekko_core::ClientOrderId::parse("rs-1").unwrap())
        .expect("rs-1 known after restart");
    assert_eq!(
        rs1.status,
        gekko_core::OrderStatus::Filled,
        "filled while down: {rs1:?}"
    );
    let rs2 = gw
        .order(&gekko_core::ClientOrderId::parse("rs-2").unwrap())
        .expect("rs-2 known after restart");
    assert_eq!(rs2.status, gekko_core::OrderStatus::New);
    let open = env
        .client()
        .list_open_orders(pb::ListOpenOrdersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .orders;
    assert_eq!(
        open.iter()
            .map(|o| o.client_order_id.as_str())
            .collect::<Vec<_>>(),
        vec!["rs-2"]
    );
    env.stop_gateway().await;

    // An order placed at the venue behind gekko's back: strict mode refuses to start...
    let foreign = gateway_binanceus::paper_venue(
        &env.sim.rest_url,
        &env.sim.ws_url,
        Duration::from_secs(2),
        Duration::from_secs(5),
    );
    use gekko_gateway::VenueAdapter as _;
    foreign
        .submit_order(&gekko_core::OrderRequest {
            client_order_id: gekko_core::ClientOrderId::parse("foreign-1").unwrap(),
            instrument: btc(),
            side: gekko_core::Side::Buy,
            order_type: gekko_core::OrderType::Limit,
            qty: dec!(0.1),
            price: Some(px),
            time_in_force: Some(gekko_core::TimeInForce::Gtc),
        })
        .await
        .unwrap();
    let err = env
        .start_gateway(&Opts {
            reconcile: ReconcileMode::Strict,
            ..Opts::default()
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("foreign-1"), "{err}");
    // ...and adopt mode tracks it.
    env.start_gateway(&Opts::default()).await.unwrap();
    let adopted = env
        .gw()
        .gateway
        .order(&gekko_core::ClientOrderId::parse("foreign-1").unwrap());
    assert!(adopted.is_some_and(|o| o.status == gekko_core::OrderStatus::New));
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_storm_never_escalates_to_a_ban() {
    let mut env = ready_env(&Opts::default()).await;
    let mut c = env.client();
    env.sim.inject(Fault::RateLimitStorm {
        duration: Duration::from_secs(2),
    });
    let until = tokio::time::Instant::now() + Duration::from_secs(4);
    let mut ok_after = 0;
    while tokio::time::Instant::now() < until {
        if c.get_account(pb::GetAccountRequest::default())
            .await
            .is_ok()
        {
            ok_after += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = env.sim.stats();
    assert!(stats.http_429 > 0, "the storm happened: {stats:?}");
    assert_eq!(
        stats.http_418, 0,
        "a 429 storm must never become a ban: {stats:?}"
    );
    assert!(ok_after > 0, "requests succeed again after the storm");
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_from_a_ban_after_it_expires() {
    let mut env = ready_env(&Opts::default()).await;
    let mut c = env.client();
    env.sim.inject(Fault::Ban {
        duration: Duration::from_secs(2),
    });
    let err = c
        .get_account(pb::GetAccountRequest::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.code(),
            tonic::Code::ResourceExhausted | tonic::Code::Unavailable
        ),
        "{err:?}"
    );
    let requests_during_ban = env.sim.stats().rest_requests;
    // Still banned: the gateway does not hammer the venue.
    let err = c
        .get_account(pb::GetAccountRequest::default())
        .await
        .unwrap_err();
    assert!(matches!(
        err.code(),
        tonic::Code::ResourceExhausted | tonic::Code::Unavailable
    ));
    assert_eq!(
        env.sim.stats().rest_requests,
        requests_during_ban,
        "no request sent while the circuit is open"
    );
    assert!(
        eventually(Duration::from_secs(10), || {
            let mut c = c.clone();
            async move {
                c.get_account(pb::GetAccountRequest::default())
                    .await
                    .is_ok()
            }
        })
        .await,
        "requests succeed after the ban expires"
    );
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew_resyncs_and_succeeds() {
    let mut env = ready_env(&Opts::default()).await;
    let mut c = env.client();
    let px = passive_bid(&env);
    // The venue clock falls 3 s behind ours: our timestamps are now "1000 ms ahead of the
    // server's time", so the next signed request gets -1021.
    env.sim.set_clock_skew(-3000);
    let o = c
        .place_order(limit("clk-1", pb::Side::Buy, "0.1", &px.to_string()))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(
        o.status,
        pb::OrderStatus::New as i32,
        "resynced and placed: {o:?}"
    );
    assert!(
        env.sim.stats().timestamp_errors > 0,
        "the skew was actually hit"
    );
    let at_venue = env
        .sim
        .orders()
        .into_iter()
        .filter(|o| o.client_order_id == "clk-1")
        .count();
    assert_eq!(at_venue, 1);
    env.stop_gateway().await;
}

async fn assert_book_matches_sim(env: &Env) {
    env.sim.set_market_paused(true);
    let gw = env.gw().gateway.clone();
    let ok = eventually(WAIT, || {
        let gw = gw.clone();
        let sim = &env.sim;
        async move {
            let (seq, bids, asks) = sim.book("BTCUSD");
            gw.book(&btc()).is_some_and(|b| {
                b.sequence == seq
                    && b.bids.iter().map(|l| (l.price, l.qty)).collect::<Vec<_>>() == bids
                    && b.asks.iter().map(|l| (l.price, l.qty)).collect::<Vec<_>>() == asks
            })
        }
    })
    .await;
    let (seq, _, _) = env.sim.book("BTCUSD");
    assert!(
        ok,
        "local book never matched the simulator's (sim seq {seq}, local {:?})",
        gw.book(&btc()).map(|b| b.sequence)
    );
    env.sim.set_market_paused(false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_drop_and_depth_gap_resync_the_book() {
    let mut env = ready_env(&Opts::default()).await;
    assert_book_matches_sim(&env).await;

    let before = env.sim.stats().ws_connections;
    env.sim.inject(Fault::DropWebSockets);
    assert!(
        eventually(WAIT, || async { env.sim.stats().ws_connections > before }).await,
        "gateway reconnected after the drop"
    );
    assert_book_matches_sim(&env).await;

    env.sim.inject(Fault::DepthGap {
        symbol: "BTCUSD".into(),
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_book_matches_sim(&env).await;
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_stream_is_detected() {
    let mut env = ready_env(&Opts {
        stale_after: Duration::from_millis(800),
        ..Opts::default()
    })
    .await;
    env.sim.inject(Fault::SilentStreams {
        duration: Duration::from_secs(4),
    });
    let r = env.gw().readiness.clone();
    assert!(
        eventually(Duration::from_secs(3), || {
            let r = r.clone();
            async move { !r.is_ready() }
        })
        .await,
        "a silent stream must make the gateway not ready"
    );
    let report = r.report();
    assert!(
        report
            .iter()
            .any(|c| c.name == "binanceus-market-data" && !c.ready),
        "{report:?}"
    );
    // And it recovers when data flows again.
    env.wait_ready().await;
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_orders_are_rejected_before_sending() {
    let mut env = ready_env(&Opts {
        position_limit: Some(dec!(1)),
        ..Opts::default()
    })
    .await;
    let mut c = env.client();
    let px = passive_bid(&env);
    let orders_before = env.sim.orders().len();
    let cases = [
        (
            limit("bad-lot", pb::Side::Buy, "0.123456789", &px.to_string()),
            tonic::Code::InvalidArgument,
            "LOT_SIZE",
        ),
        (
            limit(
                "bad-tick",
                pb::Side::Buy,
                "0.1",
                &format!("{}.001", px.trunc()),
            ),
            tonic::Code::InvalidArgument,
            "PRICE_FILTER",
        ),
        (
            limit("bad-limit", pb::Side::Buy, "5", &px.to_string()),
            tonic::Code::FailedPrecondition,
            "POSITION_LIMITS",
        ),
        (
            limit("bad-qty", pb::Side::Buy, "abc", &px.to_string()),
            tonic::Code::InvalidArgument,
            "qty",
        ),
    ];
    for (req, code, needle) in cases {
        let err = c.place_order(req).await.unwrap_err();
        assert_eq!(err.code(), code, "{err:?}");
        assert!(
            err.message().contains(needle),
            "{needle} not named: {err:?}"
        );
    }
    let mut bad_instrument = limit("bad-inst", pb::Side::Buy, "0.1", "1");
    bad_instrument.instrument = "BTCUSD".into();
    assert_eq!(
        c.place_order(bad_instrument).await.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
    assert_eq!(
        env.sim.orders().len(),
        orders_before,
        "nothing reached the venue"
    );
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_venue_messages_do_not_break_the_gateway() {
    let mut env = ready_env(&Opts::default()).await;
    env.sim.inject(Fault::MalformedNext { count: 20 });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Still serving, and the book still tracks the venue.
    let mut c = env.client();
    c.get_account(pb::GetAccountRequest::default())
        .await
        .unwrap();
    assert_book_matches_sim(&env).await;
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_gateway_service() {
    use tokio_stream::StreamExt as _;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let mut env = env().await;
    env.start_gateway(&Opts::default()).await.unwrap();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", env.gw().addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::once(req))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("unexpected reflection answer {resp:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in [
        "gekko.v1.GatewayService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} not listed: {names:?}"
        );
    }
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotes_stream_cancel_all_and_opt_in_close_positions() {
    use tokio_stream::StreamExt as _;
    let mut env = ready_env(&Opts::default()).await;
    let mut c = env.client();

    // StreamQuotes delivers live best bid/ask.
    let mut quotes = c
        .stream_quotes(pb::StreamQuotesRequest {
            venue: "binanceus".into(),
            instruments: vec!["BTC-USD".into()],
        })
        .await
        .unwrap()
        .into_inner();
    let q = tokio::time::timeout(WAIT, quotes.next())
        .await
        .expect("a quote within 15 s")
        .unwrap()
        .unwrap();
    let (bid, ask): (Decimal, Decimal) = (q.bid.parse().unwrap(), q.ask.parse().unwrap());
    assert!(bid < ask, "{q:?}");

    // CancelAllOrders cancels everything resting.
    let px = passive_bid(&env);
    for id in ["ca-1", "ca-2"] {
        c.place_order(limit(id, pb::Side::Buy, "0.1", &px.to_string()))
            .await
            .unwrap();
    }
    let cancelled = c
        .cancel_all_orders(pb::CancelAllOrdersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .cancelled;
    assert_eq!(cancelled.len(), 2, "{cancelled:?}");
    assert!(
        cancelled
            .iter()
            .all(|o| o.status == pb::OrderStatus::Cancelled as i32)
    );

    // ClosePositions is opt-in...
    let err = c
        .close_positions(pb::ClosePositionsRequest {
            venue: "binanceus".into(),
            confirm: false,
            instruments: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    let btc_before = env
        .sim
        .balances("paper-key")
        .into_iter()
        .find(|b| b.0 == "BTC")
        .unwrap();
    assert!(btc_before.1 > Decimal::ZERO);
    // ...and with confirm=true sells the BTC holding at market.
    let orders = c
        .close_positions(pb::ClosePositionsRequest {
            venue: "binanceus".into(),
            confirm: true,
            instruments: vec!["BTC-USD".into()],
        })
        .await
        .unwrap()
        .into_inner()
        .orders;
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(orders[0].side, pb::Side::Sell as i32);
    assert_eq!(
        orders[0].status,
        pb::OrderStatus::Filled as i32,
        "{orders:?}"
    );
    let btc_after = env
        .sim
        .balances("paper-key")
        .into_iter()
        .find(|b| b.0 == "BTC")
        .unwrap();
    assert!(
        btc_after.1 < dec!(0.00001),
        "flat after close: {btc_after:?}"
    );
    env.stop_gateway().await;
}
