//! GTD and GFD limit orders through the real Coinbase gateway against the real Coinbase
//! simulator (TLS REST and websockets), with a real `redis-server` as the bus: a GTD order
//! reaches the venue as `limit_limit_gtd` with its `end_time` and expires onto the order
//! stream; GFD, which Coinbase does not have, is refused before sending.

use std::sync::Arc;
use std::time::Duration;

use gekko_bus::{Bus, RedisBus, RedisBusOptions, StartFrom, Topic, names};
use gekko_coinbase::{CdpKey, CoinbaseConfig, CoinbaseHttpClient, JwtAlgorithm};
use gekko_core::{ClientOrderId, OrderRequest, OrderStatus, OrderType, Side, TimeInForce};
use gekko_gateway::engine::{Gateway, GatewayConfig};
use gekko_gateway::orders::OrderEvent;
use gekko_proto::v1 as pb;
use gekko_proto::v1::gateway_service_client::GatewayServiceClient;
use gekko_runtime::{GrpcServer, Readiness};
use gekko_sim::coinbase::{SimCoinbase, SimConfig, SimHandle};
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
    /// A second REST client with the gateway's key: the venue's own view of an order.
    http: CoinbaseHttpClient,
    gateway: Gateway,
    client: GatewayServiceClient<Channel>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

fn btc() -> gekko_core::InstrumentId {
    gekko_core::InstrumentId::new(gekko_core::VenueId::Coinbase, "BTC", "USD")
}

/// Redis, the simulator, and a started gateway that reported ready, serving gRPC.
async fn ready_env() -> Env {
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
    let vc = CoinbaseConfig::simulator(
        &sim.rest_url,
        &sim.ws_url,
        &sim.ws_user_url,
        key.clone(),
        sim.cert_pem.clone(),
    );
    let http = CoinbaseHttpClient::new(&vc).expect("REST client");
    let venue = gekko_coinbase::CoinbaseVenue::new(vc).expect("venue client");
    let mut cfg = GatewayConfig::new(gateway_coinbase::SOURCE, vec![btc()]);
    cfg.limits.max_order_notional = dec!(1000000);
    let readiness = Readiness::new();
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let (gateway, _report) = Gateway::start(
        Arc::new(venue),
        bus.clone(),
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
    let r = readiness.clone();
    assert!(
        eventually(WAIT, || {
            let r = r.clone();
            async move { r.is_ready() }
        })
        .await,
        "gateway never became ready: {:?}",
        readiness.report()
    );
    Env {
        _redis: redis,
        sim,
        bus,
        http,
        gateway,
        client,
        cancel,
        tracker,
    }
}

impl Env {
    async fn stop(self) {
        self.cancel.cancel();
        self.tracker.close();
        tokio::time::timeout(Duration::from_secs(10), self.tracker.wait())
            .await
            .expect("gateway tasks stop within 10 s");
    }

    fn venue_orders(&self, client_order_id: &str) -> usize {
        self.sim
            .orders()
            .into_iter()
            .filter(|o| o.client_order_id == client_order_id)
            .count()
    }

    /// A price safely below the market, on the quote increment.
    fn passive_bid(&self) -> Decimal {
        let (_, bids, _) = self.sim.book("BTC-USD").expect("BTC-USD listed");
        (bids[0].0 * dec!(0.95)).round_dp(2)
    }

    async fn order_events(&self, client_order_id: &str) -> Vec<OrderEvent> {
        let topic: Topic<OrderEvent> = Topic::durable(names::orders("coinbase"), 1);
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
            out.extend(
                batch
                    .iter()
                    .map(|d| topic.decode(d).unwrap().payload)
                    .filter(|e| e.order.request.client_order_id.as_str() == client_order_id),
            );
        }
    }
}

fn limit_req(id: &str, price: Decimal, tif: TimeInForce) -> OrderRequest {
    OrderRequest {
        client_order_id: ClientOrderId::parse(id).unwrap(),
        instrument: btc(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        qty: dec!(0.001),
        price: Some(price),
        time_in_force: Some(tif),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gtd_limit_reaches_coinbase_as_limit_limit_gtd_and_expires_onto_the_order_stream() {
    let env = ready_env().await;
    let px = env.passive_bid();
    let expire_at_ms = gekko_core::now_ms() + 2_500;
    let o = env
        .gateway
        .place_order(limit_req("cb-gtd-1", px, TimeInForce::Gtd { expire_at_ms }))
        .await
        .expect("a GTD limit is accepted");
    assert_eq!(o.status, OrderStatus::New, "{o:?}");
    let venue_id = o.venue_order_id.clone().expect("venue order id");

    // The venue's view: limit_limit_gtd with the requested end_time.
    let v = env.http.order(&venue_id).await.expect("GET the order");
    let gtd = &v["order_configuration"]["limit_limit_gtd"];
    assert!(gtd.is_object(), "not limit_limit_gtd: {v}");
    let end = gtd["end_time"].as_str().expect("end_time");
    assert_eq!(
        gekko_coinbase::common::time::parse_rfc3339_ms(end),
        Some(expire_at_ms),
        "end_time {end}"
    );
    assert_eq!(gtd["post_only"], false, "{v}");

    // The venue expires it at end_time; the order stream and GetOrder say Expired.
    let expired = eventually(WAIT, || async {
        env.order_events("cb-gtd-1")
            .await
            .last()
            .is_some_and(|e| e.order.status == OrderStatus::Expired)
    })
    .await;
    assert!(
        expired,
        "GTD order never expired on the order stream: {:?}",
        env.order_events("cb-gtd-1").await
    );
    assert!(
        gekko_core::now_ms() >= expire_at_ms,
        "expired before its end_time"
    );
    let v = env.http.order(&venue_id).await.expect("GET the order");
    assert_eq!(v["status"], "EXPIRED", "{v}");
    let mut c = env.client.clone();
    let got = c
        .get_order(pb::GetOrderRequest {
            venue: "coinbase".into(),
            instrument: "BTC-USD".into(),
            client_order_id: "cb-gtd-1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(got.status, pb::OrderStatus::Expired as i32, "{got:?}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gfd_and_bad_expiries_are_refused_before_sending() {
    let env = ready_env().await;
    let mut c = env.client.clone();
    let px = env.passive_bid();
    let before = env.sim.orders().len();

    // GFD over gRPC: Coinbase has none, the adapter refuses it before sending.
    let o = c
        .place_order(pb::PlaceOrderRequest {
            venue: "coinbase".into(),
            instrument: "BTC-USD".into(),
            side: pb::Side::Buy as i32,
            r#type: pb::OrderType::Limit as i32,
            qty: "0.001".into(),
            price: px.to_string(),
            time_in_force: pb::TimeInForce::Gfd as i32,
            client_order_id: "cb-gfd-1".into(),
            ..Default::default()
        })
        .await
        .expect("answered with the refused order")
        .into_inner()
        .order
        .unwrap();
    assert_eq!(o.status, pb::OrderStatus::Rejected as i32, "{o:?}");
    assert!(
        o.reject_reason.contains("does not support GFD"),
        "{}",
        o.reject_reason
    );

    // A GTD expiry in the past: the gateway's pre-trade checks.
    let past = gekko_core::now_ms() - 1_000;
    let e = env
        .gateway
        .place_order(limit_req(
            "cb-gtd-2",
            px,
            TimeInForce::Gtd { expire_at_ms: past },
        ))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("must be in the future"), "{e}");

    assert_eq!(env.sim.orders().len(), before, "nothing reached the venue");
    for id in ["cb-gfd-1", "cb-gtd-2"] {
        assert_eq!(env.venue_orders(id), 0, "{id} reached the venue");
    }
    env.stop().await;
}
