//! The real Coinbase gateway against the real Coinbase simulator, over TLS sockets (REST
//! and both websocket hosts), with a real `redis-server` as the bus. Each test is one
//! scenario of the Coinbase issue's "done means" list.
//!
//! The gateway signs with a freshly generated CDP key that the simulator knows only by its
//! public key, and trusts only the simulator's self-signed certificate, exactly as paper
//! mode does.

use std::sync::Arc;
use std::time::Duration;

use gekko_bus::{Bus, RedisBus, RedisBusOptions, StartFrom, Topic, names};
use gekko_coinbase::{CdpJwtSigner, CdpKey, JwtAlgorithm};
use gekko_gateway::engine::{Gateway, GatewayConfig, ReconcileMode, StartError};
use gekko_gateway::orders::OrderEvent;
use gekko_proto::v1 as pb;
use gekko_proto::v1::gateway_service_client::GatewayServiceClient;
use gekko_runtime::{GrpcServer, Readiness};
use gekko_sim::coinbase::{Fault, SimCoinbase, SimConfig, SimHandle};
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
    key: Arc<CdpKey>,
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
    channel_silent_after: Option<Duration>,
}

impl Default for Opts {
    fn default() -> Self {
        Self {
            stale_after: Duration::from_secs(5),
            request_timeout: Duration::from_secs(2),
            reconcile: ReconcileMode::Adopt,
            channel_silent_after: None,
        }
    }
}

fn btc() -> gekko_core::InstrumentId {
    gekko_core::InstrumentId::new(gekko_core::VenueId::Coinbase, "BTC", "USD")
}

async fn env() -> Env {
    let redis = RedisServer::start();
    let bus: Arc<dyn Bus> = Arc::new(
        RedisBus::connect(&redis.url(), RedisBusOptions::default())
            .await
            .expect("bus"),
    );
    let key = Arc::new(
        CdpKey::generate(gateway_coinbase::PAPER_KEY_NAME, JwtAlgorithm::Es256).expect("key"),
    );
    let sim = SimCoinbase::start(SimConfig {
        tick_interval: Duration::from_millis(50),
        ..gateway_coinbase::paper_sim_config(&key)
    })
    .await
    .expect("start simulator");
    Env {
        _redis: redis,
        sim,
        key,
        bus,
        gw: None,
    }
}

impl Env {
    async fn start_gateway(&mut self, opts: &Opts) -> Result<(), StartError> {
        let mut vc = gekko_coinbase::CoinbaseConfig::simulator(
            &self.sim.rest_url,
            &self.sim.ws_url,
            &self.sim.ws_user_url,
            self.key.clone(),
            self.sim.cert_pem.clone(),
        );
        vc.request_timeout = opts.request_timeout;
        vc.stale_after = opts.stale_after;
        vc.channel_silent_after = opts.channel_silent_after;
        let venue = gekko_coinbase::CoinbaseVenue::new(vc).expect("venue client");
        let mut cfg = GatewayConfig::new(gateway_coinbase::SOURCE, vec![btc()]);
        cfg.stale_after = opts.stale_after;
        cfg.reconcile_mode = opts.reconcile;
        cfg.limits.max_order_notional = dec!(1000000);
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
        let all: Vec<OrderEvent> = self.read_all(names::orders("coinbase")).await;
        all.into_iter()
            .filter(|e| e.order.request.client_order_id.as_str() == client_order_id)
            .collect()
    }

    async fn fills(&self, client_order_id: &str) -> Vec<gekko_core::Fill> {
        let all: Vec<gekko_core::Fill> = self.read_all(names::fills("coinbase")).await;
        all.into_iter()
            .filter(|f| f.client_order_id.as_str() == client_order_id)
            .collect()
    }

    fn venue_orders(&self, client_order_id: &str) -> usize {
        self.sim
            .orders()
            .into_iter()
            .filter(|o| o.client_order_id == client_order_id)
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

fn limit(id: &str, side: pb::Side, qty: &str, price: &str) -> pb::PlaceOrderRequest {
    pb::PlaceOrderRequest {
        venue: "coinbase".into(),
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
        venue: "coinbase".into(),
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

/// A price safely below the market, on the quote increment.
fn passive_bid(env: &Env) -> Decimal {
    let (_, bids, _) = env.sim.book("BTC-USD").expect("BTC-USD listed");
    (bids[0].0 * dec!(0.95)).round_dp(2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_lifecycle_on_grpc_the_order_stream_and_the_fills_stream() {
    let mut env = ready_env(&Opts::default()).await;
    let mut c = env.client();
    let px = passive_bid(&env);

    let placed = c
        .place_order(limit("cb-life-1", pb::Side::Buy, "0.5", &px.to_string()))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(placed.status, pb::OrderStatus::New as i32, "{placed:?}");
    assert!(!placed.venue_order_id.is_empty());

    env.sim.trade_through("BTC-USD", px, dec!(0.2));
    let partial = wait_status(&env, "cb-life-1", pb::OrderStatus::PartiallyFilled).await;
    assert_eq!(partial.filled_qty.parse::<Decimal>().unwrap(), dec!(0.2));
    env.sim.trade_through("BTC-USD", px, dec!(1));
    let filled = wait_status(&env, "cb-life-1", pb::OrderStatus::Filled).await;
    assert_eq!(filled.filled_qty.parse::<Decimal>().unwrap(), dec!(0.5));
    assert_eq!(filled.avg_fill_price.parse::<Decimal>().unwrap(), px);

    c.place_order(limit("cb-life-2", pb::Side::Buy, "0.1", &px.to_string()))
        .await
        .unwrap();
    let cancelled = c
        .cancel_order(pb::CancelOrderRequest {
            venue: "coinbase".into(),
            instrument: "BTC-USD".into(),
            client_order_id: "cb-life-2".into(),
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
    use gekko_core::OrderStatus as S;
    let events = env.order_events("cb-life-1").await;
    let statuses: Vec<_> = events.iter().map(|e| e.order.status).collect();
    assert_eq!(statuses.first(), Some(&S::PendingNew), "{statuses:?}");
    for s in [S::New, S::PartiallyFilled, S::Filled] {
        assert!(statuses.contains(&s), "{s:?} missing from {statuses:?}");
    }
    let events = env.order_events("cb-life-2").await;
    assert_eq!(events.last().unwrap().order.status, S::Cancelled);

    // The fills stream holds the two executions, once each, summing to the quantity.
    let ok = eventually(WAIT, || async {
        env.fills("cb-life-1")
            .await
            .iter()
            .map(|f| f.qty)
            .sum::<Decimal>()
            == dec!(0.5)
    })
    .await;
    let fills = env.fills("cb-life-1").await;
    assert!(ok, "fills never summed to 0.5: {fills:?}");
    assert_eq!(fills.len(), 2, "{fills:?}");
    assert!(fills.iter().all(|f| f.price == px), "{fills:?}");
    let mut ids: Vec<_> = fills.iter().map(|f| f.trade_id.clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 2, "distinct trade ids: {fills:?}");
    assert!(env.fills("cb-life-2").await.is_empty());
    assert_eq!(env.venue_orders("cb-life-1"), 1);
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
    // The venue places the order but answers late (past the client's timeout), and its
    // user stream is silent meanwhile: only a lookup by client order id can find it.
    env.sim.inject(Fault::SilentStreams {
        duration: Duration::from_secs(3),
    });
    env.sim.inject(Fault::OrderTimeout);
    let first = c
        .place_order(limit("cb-amb-1", pb::Side::Buy, "0.1", &px.to_string()))
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
    let kinds: Vec<_> = env
        .order_events("cb-amb-1")
        .await
        .iter()
        .map(|e| e.kind)
        .collect();
    assert!(
        kinds.contains(&gekko_gateway::orders::OrderEventKind::InFlight),
        "{kinds:?}"
    );
    // Asking again with the same id sends nothing new.
    let again = c
        .place_order(limit("cb-amb-1", pb::Side::Buy, "0.1", &px.to_string()))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(again.client_order_id, "cb-amb-1");
    let resolved = wait_status(&env, "cb-amb-1", pb::OrderStatus::New).await;
    assert!(!resolved.venue_order_id.is_empty());
    assert_eq!(
        env.venue_orders("cb-amb-1"),
        1,
        "exactly one order at the venue"
    );
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_order_reconciles() {
    let mut env = ready_env(&Opts::default()).await;
    let mut c = env.client();
    let px = passive_bid(&env);
    for (id, qty) in [("cb-rs-1", "0.3"), ("cb-rs-2", "0.2")] {
        c.place_order(limit(id, pb::Side::Buy, qty, &px.to_string()))
            .await
            .unwrap();
    }
    env.stop_gateway().await;

    // While the gateway is down, cb-rs-1 fills at the venue.
    env.sim.trade_through("BTC-USD", px, dec!(0.3));

    env.start_gateway(&Opts::default()).await.unwrap();
    let gw = env.gw().gateway.clone();
    let id = |s: &str| gekko_core::ClientOrderId::parse(s).unwrap();
    let rs1 = gw
        .order(&id("cb-rs-1"))
        .expect("cb-rs-1 known after restart");
    assert_eq!(rs1.status, gekko_core::OrderStatus::Filled, "{rs1:?}");
    let rs2 = gw
        .order(&id("cb-rs-2"))
        .expect("cb-rs-2 known after restart");
    assert_eq!(rs2.status, gekko_core::OrderStatus::New, "{rs2:?}");
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
        vec!["cb-rs-2"]
    );
    env.stop_gateway().await;

    // An order placed behind gekko's back: strict mode refuses to start, adopt tracks it.
    let foreign = gateway_coinbase::sim_venue(
        &env.sim,
        env.key.clone(),
        Duration::from_secs(2),
        Duration::from_secs(5),
    )
    .unwrap();
    use gekko_venue::VenueAdapter as _;
    foreign.instruments(&[btc()]).await.unwrap();
    foreign
        .submit_order(&gekko_core::OrderRequest {
            client_order_id: id("cb-foreign-1"),
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
    assert!(err.to_string().contains("cb-foreign-1"), "{err}");
    env.start_gateway(&Opts::default()).await.unwrap();
    let adopted = env.gw().gateway.order(&id("cb-foreign-1"));
    assert!(
        adopted.is_some_and(|o| o.status == gekko_core::OrderStatus::New),
        "adopted"
    );
    env.stop_gateway().await;
}

/// Fills made while the gateway is down reach the fills stream at the next start
/// (reconciliation reads them back with `order_fills`), exactly once, under the trade
/// ids the user stream gives the same executions; a further restart adds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_made_while_the_gateway_is_down_reach_the_fills_stream_once() {
    let mut env = ready_env(&Opts::default()).await;
    let mut c = env.client();
    let px = passive_bid(&env);
    c.place_order(limit("cb-nl-1", pb::Side::Buy, "0.3", &px.to_string()))
        .await
        .unwrap();
    // One execution while the gateway listens, reported by the user stream.
    env.sim.trade_through("BTC-USD", px, dec!(0.1));
    wait_status(&env, "cb-nl-1", pb::OrderStatus::PartiallyFilled).await;
    assert!(
        eventually(WAIT, || async { env.fills("cb-nl-1").await.len() == 1 }).await,
        "the stream's fill: {:?}",
        env.fills("cb-nl-1").await
    );
    env.stop_gateway().await;

    // Two more executions while nobody listens.
    env.sim.trade_through("BTC-USD", px, dec!(0.05));
    env.sim.trade_through("BTC-USD", px, dec!(1));

    env.start_gateway(&Opts::default()).await.unwrap();
    env.wait_ready().await;
    let gw = env.gw().gateway.clone();
    let o = gw
        .order(&gekko_core::ClientOrderId::parse("cb-nl-1").unwrap())
        .expect("known after restart");
    assert_eq!(o.status, gekko_core::OrderStatus::Filled, "{o:?}");
    let fills = env.fills("cb-nl-1").await;
    let venue: Vec<(Decimal, Decimal)> = env
        .sim
        .orders()
        .into_iter()
        .filter(|o| o.client_order_id == "cb-nl-1")
        .flat_map(|o| o.fills.iter().map(|f| (f.price, f.qty)).collect::<Vec<_>>())
        .collect();
    assert_eq!(venue.len(), 3, "three executions at the venue: {venue:?}");
    assert_eq!(
        fills.iter().map(|f| (f.price, f.qty)).collect::<Vec<_>>(),
        venue,
        "the fills stream holds each venue execution once, in order"
    );
    let mut ids: Vec<_> = fills.iter().map(|f| f.trade_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "distinct trade ids: {fills:?}");
    env.stop_gateway().await;

    // A second restart finds nothing new to record.
    env.start_gateway(&Opts::default()).await.unwrap();
    env.wait_ready().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = env.fills("cb-nl-1").await;
    assert_eq!(again.len(), 3, "{again:?}");
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_is_survived_without_a_request_inside_the_reset_window() {
    let mut env = ready_env(&Opts::default()).await;
    let mut c = env.client();
    env.sim.inject(Fault::RateLimitStorm {
        duration: Duration::from_secs(2),
    });
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
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
        stats.rate_limit_violations, 0,
        "no request arrived inside a window a 429 announced: {stats:?}"
    );
    assert!(ok_after > 0, "requests succeed again after the storm");
    env.stop_gateway().await;
}

/// The process's Prometheus text (the recorder the gateway binary installs), for the
/// venue counters. Counters only grow, and other tests of this binary may add to them,
/// so tests compare a value before and after their fault.
fn metrics_text() -> String {
    gekko_runtime::metrics::install_prometheus()
        .expect("recorder")
        .render()
}

/// The sum of the samples of `name` whose labels contain every one of `labels`.
fn counter(name: &str, labels: &[&str]) -> u64 {
    metrics_text()
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// Waits until the gateway's book of BTC-USD has exactly the simulator's levels (the
/// market paused so that both stand still).
async fn assert_book_matches_sim(env: &Env) {
    env.sim.set_market_paused(true);
    let gw = env.gw().gateway.clone();
    let ok = eventually(WAIT, || {
        let gw = gw.clone();
        let sim = &env.sim;
        async move {
            let (_, bids, asks) = sim.book("BTC-USD").unwrap();
            gw.book(&btc()).is_some_and(|b| {
                b.bids.iter().map(|l| (l.price, l.qty)).collect::<Vec<_>>() == bids
                    && b.asks.iter().map(|l| (l.price, l.qty)).collect::<Vec<_>>() == asks
            })
        }
    })
    .await;
    assert!(
        ok,
        "local book never matched the simulator's: local top {:?}, sim top {:?}",
        gw.book(&btc())
            .map(|b| (b.bids.first().cloned(), b.asks.first().cloned())),
        env.sim
            .book("BTC-USD")
            .map(|(_, b, a)| (b.first().cloned(), a.first().cloned()))
    );
    env.sim.set_market_paused(false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_gap_and_a_websocket_drop_each_rebuild_the_book() {
    metrics_text();
    let mut env = ready_env(&Opts::default()).await;
    assert_book_matches_sim(&env).await;
    let market = ["venue=\"coinbase\"", "stream=\"market\""];
    let gaps = counter("gekko_venue_sequence_gaps_total", &market);
    let resubscribes = counter("gekko_venue_resubscribes_total", &market);

    let before = env.sim.stats().ws_connections;
    env.sim.inject(Fault::DropWebSockets);
    assert!(
        eventually(WAIT, || async { env.sim.stats().ws_connections > before }).await,
        "gateway reconnected after the drop"
    );
    assert_book_matches_sim(&env).await;

    let before = env.sim.stats().ws_connections;
    env.sim.inject(Fault::DepthGap {
        symbol: "BTC-USD".into(),
    });
    // The market must move for the gap to show on the stream.
    assert!(
        eventually(WAIT, || async { env.sim.stats().ws_connections > before }).await,
        "the gap was detected and the market stream rebuilt"
    );
    assert_book_matches_sim(&env).await;
    assert!(
        counter("gekko_venue_sequence_gaps_total", &market) > gaps,
        "the gap is counted"
    );
    assert!(
        counter("gekko_venue_resubscribes_total", &market) > resubscribes,
        "the resubscribe for the book is counted"
    );
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_channel_is_detected() {
    let mut env = ready_env(&Opts {
        stale_after: Duration::from_millis(1500),
        ..Opts::default()
    })
    .await;
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
        "a silent channel must make the gateway not ready"
    );
    let report = r.report();
    assert!(
        report
            .iter()
            .any(|c| c.name == "coinbase-market-data" && !c.ready),
        "{report:?}"
    );
    env.wait_ready().await;
    assert_book_matches_sim(&env).await;
    env.stop_gateway().await;
}

/// `level2` stops while heartbeats and `ticker` keep flowing: the per-channel watch
/// sees it, the gateway is not ready meanwhile (its book is not synced), the silence is
/// counted, and once the channel is back the resubscribed book equals the simulator's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_silent_channel_while_heartbeats_flow_is_detected_and_the_book_rebuilt() {
    metrics_text();
    let mut env = ready_env(&Opts {
        channel_silent_after: Some(Duration::from_millis(1500)),
        ..Opts::default()
    })
    .await;
    assert_book_matches_sim(&env).await;
    let l2 = [
        "venue=\"coinbase\"",
        "stream=\"market\"",
        "channel=\"l2_data\"",
    ];
    let silent = counter("gekko_venue_silent_channels_total", &l2);
    let heartbeats = env.sim.stats().ws_messages_sent;
    env.sim.inject(Fault::SilentChannel {
        channel: "l2_data".into(),
        duration: Duration::from_secs(4),
    });
    let r = env.gw().readiness.clone();
    assert!(
        eventually(Duration::from_secs(4), || {
            let r = r.clone();
            async move { !r.is_ready() }
        })
        .await,
        "a silent level2 must make the gateway not ready"
    );
    let report = r.report();
    assert!(
        report
            .iter()
            .any(|c| c.name == "coinbase-market-data" && !c.ready),
        "{report:?}"
    );
    assert!(
        counter("gekko_venue_silent_channels_total", &l2) > silent,
        "the silence is counted"
    );
    assert!(
        env.sim.stats().ws_messages_sent > heartbeats,
        "the connection kept sending (heartbeats, ticker) during the silence"
    );
    env.wait_ready().await;
    assert_book_matches_sim(&env).await;
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_wrong_uri_jwts_are_refused_and_the_gateways_own_never_are() {
    let mut env = ready_env(&Opts::default()).await;
    let http = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(env.sim.cert_pem.as_deref().unwrap().as_bytes())
                .unwrap(),
        )
        .build()
        .unwrap();
    let host = env.sim.rest_url.trim_start_matches("https://").to_owned();
    let path = "/api/v3/brokerage/accounts";
    let url = format!("{}{path}", env.sim.rest_url);
    let signer = CdpJwtSigner::from_shared(env.key.clone());
    let send = |token: String| {
        let http = http.clone();
        let url = url.clone();
        async move {
            http.get(&url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // The right key, the right uri: accepted (the test's own baseline).
    assert_eq!(
        send(signer.rest_token("GET", &host, path).unwrap()).await,
        200
    );
    // The right key, another host in the uri claim.
    assert_eq!(
        send(signer.rest_token("GET", "api.coinbase.com", path).unwrap()).await,
        401
    );
    // The right key, a clock 10 minutes behind: expired long ago.
    let past = Arc::new(gekko_coinbase::auth::FixedClock::new(
        gekko_core::now_ms() / 1000 - 600,
    ));
    let expired = CdpJwtSigner::from_shared(env.key.clone()).with_clock(past);
    assert_eq!(
        send(expired.rest_token("GET", &host, path).unwrap()).await,
        401
    );
    let refused = env.sim.stats().auth_failures;
    assert_eq!(refused, 2, "{:?}", env.sim.stats());

    // A whole order life through the gateway: every one of its JWTs is accepted.
    let mut c = env.client();
    let px = passive_bid(&env);
    c.place_order(limit("cb-jwt-1", pb::Side::Buy, "0.1", &px.to_string()))
        .await
        .unwrap();
    get_order(&mut c, "cb-jwt-1").await;
    c.cancel_order(pb::CancelOrderRequest {
        venue: "coinbase".into(),
        instrument: "BTC-USD".into(),
        client_order_id: "cb-jwt-1".into(),
    })
    .await
    .unwrap();
    c.get_account(pb::GetAccountRequest::default())
        .await
        .unwrap();
    let stats = env.sim.stats();
    assert!(stats.rest_requests > 5, "{stats:?}");
    assert_eq!(
        stats.auth_failures, refused,
        "the gateway's own JWTs are never refused: {stats:?}"
    );
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_do_not_break_the_gateway() {
    let mut env = ready_env(&Opts::default()).await;
    env.sim.inject(Fault::MalformedNext { count: 20 });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut c = env.client();
    c.get_account(pb::GetAccountRequest::default())
        .await
        .unwrap();
    assert_book_matches_sim(&env).await;
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_orders_are_rejected_before_sending() {
    let mut env = ready_env(&Opts::default()).await;
    let mut c = env.client();
    let px = passive_bid(&env);
    let orders_before = env.sim.orders().len();
    let requests_before = env.sim.stats().rest_requests;
    let cases = [
        // base_increment is 0.00000001.
        limit("cb-bad-inc", pb::Side::Buy, "0.123456789", &px.to_string()),
        // quote_increment is 0.01.
        limit(
            "cb-bad-tick",
            pb::Side::Buy,
            "0.1",
            &format!("{}.001", px.trunc()),
        ),
        // below base_min_size... and quote_min_size (1 USD).
        limit("cb-bad-min", pb::Side::Buy, "0.00000001", &px.to_string()),
        limit("cb-bad-qty", pb::Side::Buy, "abc", &px.to_string()),
    ];
    for req in cases {
        let id = req.client_order_id.clone();
        let err = c.place_order(req).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{id}: {err:?}");
        assert!(!err.message().is_empty(), "{id}: a reason is given");
    }
    assert_eq!(
        env.sim.orders().len(),
        orders_before,
        "nothing reached the venue"
    );
    // Nor did any of them cost a venue request (the periodic clock sync may run).
    assert!(
        env.sim.stats().rest_requests <= requests_before + 1,
        "{:?}",
        env.sim.stats()
    );
    env.stop_gateway().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_venue_clock_jump_is_repaired_and_the_order_placed_once() {
    let mut env = ready_env(&Opts::default()).await;
    let mut c = env.client();
    let px = passive_bid(&env);
    // The venue clock jumps 5 minutes ahead: the gateway's next JWT is expired there. The
    // 401 (which proves nothing was executed) makes it resync from /time and send again.
    env.sim.set_clock_skew(300_000);
    let o = c
        .place_order(limit("cb-clk-1", pb::Side::Buy, "0.1", &px.to_string()))
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
    assert_eq!(env.sim.stats().auth_failures, 1, "{:?}", env.sim.stats());
    assert_eq!(env.venue_orders("cb-clk-1"), 1, "placed exactly once");
    env.stop_gateway().await;
}
