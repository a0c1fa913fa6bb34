//! GTD and GFD limit orders through the real OANDA gateway against the real OANDA
//! simulator (REST and line streams over sockets), with a real `redis-server` as the bus:
//! what reaches the venue (`timeInForce`, `gtdTime`), the venue expiring a GTD order onto
//! the order stream, and the refusals before sending.

use std::sync::Arc;
use std::time::Duration;

use gekko_bus::{Bus, RedisBus, RedisBusOptions, StartFrom, Topic, names};
use gekko_core::{ClientOrderId, OrderRequest, OrderStatus, OrderType, Side, TimeInForce};
use gekko_gateway::engine::{Gateway, GatewayConfig};
use gekko_gateway::orders::OrderEvent;
use gekko_proto::v1 as pb;
use gekko_proto::v1::gateway_service_client::GatewayServiceClient;
use gekko_runtime::{GrpcServer, Readiness};
use gekko_sim::oanda::{SimConfig, SimHandle, SimOanda};
use gekko_testkit::{RedisServer, eventually};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::Channel;

const WAIT: Duration = Duration::from_secs(15);

struct Env {
    _redis: RedisServer,
    sim: SimHandle,
    bus: Arc<dyn Bus>,
    gateway: Gateway,
    client: GatewayServiceClient<Channel>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

fn eur() -> gekko_core::InstrumentId {
    gekko_core::InstrumentId::new(gekko_core::VenueId::Oanda, "EUR", "USD")
}

/// Redis, the simulator, and a started gateway that reported ready, serving gRPC.
async fn ready_env() -> Env {
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
    let venue = gateway_oanda::sim_venue(&sim, Duration::from_secs(2), Duration::from_secs(5))
        .expect("venue client");
    let mut cfg = GatewayConfig::new(gateway_oanda::SOURCE, vec![eur()]);
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

    /// The venue's view of the order carrying this client id (`clientExtensions.id`).
    fn venue_order(&self, client_order_id: &str) -> Option<Value> {
        self.sim
            .orders()
            .into_iter()
            .find(|o| o["clientExtensions"]["id"] == client_order_id)
    }

    /// A EUR-USD bid safely below the market, on the 5-decimal price grid.
    fn passive_bid(&self) -> Decimal {
        let (bid, _) = self.sim.touch("EUR_USD").expect("EUR_USD listed");
        (bid * dec!(0.98)).round_dp(5)
    }

    async fn order_events(&self, client_order_id: &str) -> Vec<OrderEvent> {
        let topic: Topic<OrderEvent> = Topic::durable(names::orders("oanda"), 1);
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
        instrument: eur(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        qty: dec!(1000),
        price: Some(price),
        time_in_force: Some(tif),
    }
}

fn grpc_limit(id: &str, price: Decimal, tif: pb::TimeInForce) -> pb::PlaceOrderRequest {
    pb::PlaceOrderRequest {
        venue: "oanda".into(),
        instrument: "EUR-USD".into(),
        side: pb::Side::Buy as i32,
        r#type: pb::OrderType::Limit as i32,
        qty: "1000".into(),
        price: price.to_string(),
        time_in_force: tif as i32,
        client_order_id: id.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gtd_limit_reaches_oanda_with_its_gtd_time_and_expires_onto_the_order_stream() {
    let env = ready_env().await;
    let px = env.passive_bid();
    let expire_at_ms = gekko_core::now_ms() + 2_500;
    let o = env
        .gateway
        .place_order(limit_req("oa-gtd-1", px, TimeInForce::Gtd { expire_at_ms }))
        .await
        .expect("a GTD limit is accepted");
    assert_eq!(o.status, OrderStatus::New, "{o:?}");

    // The venue holds a GTD order expiring at the requested instant (to the millisecond).
    let v = env
        .venue_order("oa-gtd-1")
        .expect("the order is at the venue");
    assert_eq!(v["timeInForce"], "GTD", "{v}");
    let gtd = v["gtdTime"].as_str().expect("gtdTime is set");
    let want = gekko_core::order::rfc3339_ms(expire_at_ms);
    assert_eq!(&gtd[..23], &want[..23], "gtdTime {gtd} vs requested {want}");

    // The venue expires it; the order stream and GetOrder say Expired.
    let expired = eventually(WAIT, || async {
        env.order_events("oa-gtd-1")
            .await
            .last()
            .is_some_and(|e| e.order.status == OrderStatus::Expired)
    })
    .await;
    assert!(
        expired,
        "GTD order never expired on the order stream: {:?}",
        env.order_events("oa-gtd-1").await
    );
    assert!(
        gekko_core::now_ms() >= expire_at_ms,
        "expired before its gtdTime"
    );
    let mut c = env.client.clone();
    let got = c
        .get_order(pb::GetOrderRequest {
            venue: "oanda".into(),
            instrument: "EUR-USD".into(),
            client_order_id: "oa-gtd-1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(
        got.status,
        pb::OrderStatus::Expired as i32,
        "{got:?} after {:?}",
        env.order_events("oa-gtd-1")
            .await
            .iter()
            .map(|e| (e.order.status, e.order.updated_ms))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        env.venue_order("oa-gtd-1").unwrap()["state"],
        "CANCELLED",
        "the venue cancelled it"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gfd_is_accepted_over_grpc_and_bad_expiries_are_refused_before_sending() {
    let env = ready_env().await;
    let mut c = env.client.clone();
    let px = env.passive_bid();

    // GFD over gRPC: OANDA's own GFD, resting.
    let o = c
        .place_order(grpc_limit("oa-gfd-1", px, pb::TimeInForce::Gfd))
        .await
        .expect("GFD accepted")
        .into_inner()
        .order
        .unwrap();
    assert_eq!(o.status, pb::OrderStatus::New as i32, "{o:?}");
    let v = env
        .venue_order("oa-gfd-1")
        .expect("the order is at the venue");
    assert_eq!(v["timeInForce"], "GFD", "{v}");
    assert_eq!(v["state"], "PENDING", "{v}");
    // The venue itself expires a GFD order at its end of day (the simulator: 21:00 UTC).
    assert!(
        v["gtdTime"]
            .as_str()
            .is_some_and(|t| t.ends_with("T21:00:00.000000000Z")),
        "GFD expires at the venue's end of day: {v}"
    );

    // GTD over gRPC with its expiry: OANDA's GTD with that gtdTime, resting.
    let expire_at_ms = gekko_core::now_ms() + 3_600_000;
    let mut g = grpc_limit("oa-gtd-grpc", px, pb::TimeInForce::Gtd);
    g.expire_time_ms = expire_at_ms;
    let o = c
        .place_order(g)
        .await
        .expect("GTD with an expiry accepted")
        .into_inner()
        .order
        .unwrap();
    assert_eq!(o.status, pb::OrderStatus::New as i32, "{o:?}");
    let v = env
        .venue_order("oa-gtd-grpc")
        .expect("the order is at the venue");
    assert_eq!(v["timeInForce"], "GTD", "{v}");
    let want = gekko_core::order::rfc3339_ms(expire_at_ms);
    let got = v["gtdTime"].as_str().expect("gtdTime is set");
    assert_eq!(&got[..23], &want[..23], "gtdTime {got} vs requested {want}");
    let orders_before = env.sim.orders().len();

    // GTD over gRPC without an expiry, and GFD on a market order: INVALID_ARGUMENT.
    let e = c
        .place_order(grpc_limit("oa-gtd-2", px, pb::TimeInForce::Gtd))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("expire_time_ms"), "{}", e.message());
    let mut m = grpc_limit("oa-gfd-2", px, pb::TimeInForce::Gfd);
    m.r#type = pb::OrderType::Market as i32;
    m.price = String::new();
    let e = c.place_order(m).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    assert!(
        e.message().contains("GFD is for limit orders only"),
        "{}",
        e.message()
    );

    // A GTD expiry in the past is refused by the gateway's pre-trade checks.
    let past = gekko_core::now_ms() - 1_000;
    let e = env
        .gateway
        .place_order(limit_req(
            "oa-gtd-3",
            px,
            TimeInForce::Gtd { expire_at_ms: past },
        ))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("must be in the future"), "{e}");

    assert_eq!(
        env.sim.orders().len(),
        orders_before,
        "nothing refused reached the venue"
    );
    for id in ["oa-gtd-2", "oa-gfd-2", "oa-gtd-3"] {
        assert!(env.venue_order(id).is_none(), "{id} reached the venue");
    }
    env.stop().await;
}
