//! One gRPC surface for many venues: the router over two mock-venue gateways, served on
//! one real TCP port with health and reflection, called with the generated client.

use std::sync::Arc;
use std::time::Duration;

use gekko_bus::MemoryBus;
use gekko_core::{InstrumentId, VenueId};
use gekko_gateway::engine::{Gateway, GatewayConfig};
use gekko_gateway::service::GatewayGrpc;
use gekko_proto::v1 as pb;
use gekko_proto::v1::gateway_service_client::GatewayServiceClient;
use gekko_runtime::{GrpcServer, Readiness};
use gekko_venue::mock::MockVenue;
use gekko_venue::{AccountModel, BookFeed, VenueCaps};
use rust_decimal_macros::dec;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::Channel;

const CAPS: VenueCaps = VenueCaps {
    book_feed: BookFeed::InBandSnapshot,
    account: AccountModel::Spot,
    unknown_order_horizon: None,
    native_close_position: false,
    native_cancel_all: false,
};

struct Served {
    mocks: Vec<MockVenue>,
    client: GatewayServiceClient<Channel>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

async fn serve(venues: &[VenueId]) -> Served {
    let bus = Arc::new(MemoryBus::new());
    let readiness = Readiness::new();
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let mut gateways = Vec::new();
    let mut mocks = Vec::new();
    for &v in venues {
        let inst = InstrumentId::new(v, "BTC", "USD");
        let mock = MockVenue::new(v, CAPS, std::slice::from_ref(&inst));
        let mut cfg = GatewayConfig::new(format!("gateway-{v}"), vec![inst]);
        cfg.limits.max_order_notional = dec!(1000000);
        let (gw, _) = Gateway::start(
            Arc::new(mock.clone()),
            bus.clone(),
            cfg,
            &readiness,
            &tracker,
            cancel.clone(),
        )
        .await
        .unwrap();
        gateways.push(gw);
        mocks.push(mock);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = GatewayGrpc::hosting(gateways);
    tracker.spawn(
        GrpcServer::new(readiness)
            .add_service(router.into_server())
            .serve(listener, cancel.clone()),
    );
    let client = GatewayServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    Served {
        mocks,
        client,
        cancel,
        tracker,
    }
}

impl Served {
    async fn stop(self) {
        self.cancel.cancel();
        self.tracker.close();
        tokio::time::timeout(Duration::from_secs(5), self.tracker.wait())
            .await
            .unwrap();
    }
}

fn order(venue: &str, id: &str) -> pb::PlaceOrderRequest {
    pb::PlaceOrderRequest {
        venue: venue.to_owned(),
        instrument: "BTC-USD".into(),
        side: pb::Side::Buy as i32,
        r#type: pb::OrderType::Limit as i32,
        qty: "1".into(),
        price: "95".into(),
        client_order_id: id.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_reach_the_venue_they_name() {
    let mut s = serve(&[VenueId::BinanceUs, VenueId::Coinbase]).await;
    let placed = s
        .client
        .place_order(order("coinbase", "r1"))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(placed.status, pb::OrderStatus::New as i32);
    let (binance, coinbase) = (&s.mocks[0], &s.mocks[1]);
    assert_eq!(coinbase.calls().submits, 1);
    assert_eq!(binance.calls().submits, 0, "only the named venue is called");
    let acct = s
        .client
        .get_account(pb::GetAccountRequest {
            venue: "binanceus".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(acct.venue, "binanceus");
    let open = s
        .client
        .list_open_orders(pb::ListOpenOrdersRequest {
            venue: "coinbase".into(),
            instrument: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(open.orders.len(), 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_or_missing_venue_names_the_venues_hosted() {
    let mut s = serve(&[VenueId::BinanceUs, VenueId::Coinbase]).await;
    for venue in ["", "kraken", "oanda"] {
        let err = s.client.place_order(order(venue, "x1")).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{venue:?}");
        assert!(
            err.message().contains("binanceus, coinbase"),
            "{venue:?}: {}",
            err.message()
        );
    }
    assert_eq!(s.mocks[0].calls().submits + s.mocks[1].calls().submits, 0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_venue_hosted_the_venue_may_be_omitted() {
    let mut s = serve(&[VenueId::BinanceUs]).await;
    let placed = s
        .client
        .place_order(order("", "o1"))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(placed.client_order_id, "o1");
    let err = s
        .client
        .place_order(order("coinbase", "o2"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("binanceus"), "{}", err.message());
    s.stop().await;
}
