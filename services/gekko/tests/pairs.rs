//! `SUPPORTED_TRADING_PAIRS` across venues, end to end: a real `gekko up` in paper mode
//! (the three venue simulators in-process), driven over its one gRPC port.
//!
//! A venue that lists none of the configured pairs never stops `gekko up`: its gateway
//! starts with no instruments (accounts and orders' reconciliation still work), logs what
//! it skipped, and its market-data readiness is met vacuously with a note; the venues that
//! do list a pair trade it.

mod common;

use std::time::Duration;

use common::{Up, gekko, monitoring, wait_ready};
use gekko_proto::v1 as pb;
use gekko_testkit::free_port;

/// A `gekko up` that is killed if the test fails before stopping it.
struct Running(Option<Up>);

impl Running {
    fn stop(mut self) -> Vec<String> {
        let (code, lines) = self.0.take().expect("still running").terminate();
        assert_eq!(code, 0, "output:\n{}", lines.join("\n"));
        lines
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(up) = self.0.as_mut() {
            let _ = up.child.kill();
            let _ = up.child.wait();
        }
    }
}

/// Starts paper-mode `gekko up` with `pairs`, waits for `/readyz` 200 and returns the
/// process, its gRPC URL and the readiness body.
fn up_with_pairs(pairs: &str) -> (Running, String, String) {
    let (http, grpc) = (free_port().unwrap(), free_port().unwrap());
    let mut cmd = gekko(&["up"]);
    cmd.env("MONITORING_CONFIGURATIONS", monitoring(http, grpc, "json"))
        .env("SUPPORTED_TRADING_PAIRS", pairs);
    let mut up = Up::start(cmd);
    up.wait_for_line("gekko up: mode=paper", Duration::from_secs(60));
    let running = Running(Some(up));
    let body = wait_ready(&format!("127.0.0.1:{http}"));
    (running, format!("http://127.0.0.1:{grpc}"), body)
}

async fn instruments(
    gw: &mut pb::gateway_service_client::GatewayServiceClient<tonic::transport::Channel>,
    venue: &str,
) -> Vec<String> {
    gw.get_instruments(pb::GetInstrumentsRequest {
        venue: venue.into(),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("{venue}: GetInstruments: {e}"))
    .into_inner()
    .instruments
    .into_iter()
    .map(|i| i.instrument)
    .collect()
}

fn limit_buy(venue: &str, instrument: &str, qty: &str, price: &str) -> pb::PlaceOrderRequest {
    pb::PlaceOrderRequest {
        venue: venue.to_owned(),
        instrument: instrument.into(),
        side: pb::Side::Buy as i32,
        r#type: pb::OrderType::Limit as i32,
        qty: qty.into(),
        price: price.into(),
        strategy: "pairs-test".into(),
        sequence: 1,
        ..Default::default()
    }
}

async fn place_resting(
    gw: &mut pb::gateway_service_client::GatewayServiceClient<tonic::transport::Channel>,
    req: pb::PlaceOrderRequest,
) {
    let venue = req.venue.clone();
    let placed = gw
        .place_order(req)
        .await
        .unwrap_or_else(|e| panic!("{venue}: PlaceOrder: {e}"))
        .into_inner()
        .order
        .unwrap();
    assert_eq!(placed.status, pb::OrderStatus::New as i32, "{placed:?}");
    assert!(!placed.venue_order_id.is_empty(), "{venue}: {placed:?}");
}

/// The log says which venue was left with no pair and which pairs it skipped.
fn assert_logged_empty(lines: &[String], venue: &str, skipped: &str) {
    assert!(
        lines.iter().any(|l| {
            l.contains("lists none of the configured pairs")
                && l.contains(&format!("\"venue\":\"{venue}\""))
                && l.contains(skipped)
        }),
        "{venue}: the empty venue is logged with {skipped:?}:\n{}",
        lines.join("\n")
    );
}

#[test]
fn a_plain_pair_oanda_does_not_list_leaves_oanda_running_without_instruments() {
    let (up, url, body) = up_with_pairs("BTC-USD");
    assert!(
        body.contains("oanda-market-data") && body.contains("no instruments"),
        "oanda's market data is ready with a note: {body}"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut gw = pb::gateway_service_client::GatewayServiceClient::connect(url)
            .await
            .unwrap();
        assert!(instruments(&mut gw, "oanda").await.is_empty());
        for venue in ["binanceus", "coinbase"] {
            assert_eq!(instruments(&mut gw, venue).await, ["BTC-USD"], "{venue}");
            place_resting(&mut gw, limit_buy(venue, "BTC-USD", "0.01", "1000.00")).await;
        }
        // The gateway without instruments still serves its account.
        let account = gw
            .get_account(pb::GetAccountRequest {
                venue: "oanda".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(account.margin.is_some(), "{account:?}");
        // And refuses an order on a pair it does not trade, naming it, without stopping.
        let err = gw
            .place_order(limit_buy("oanda", "BTC-USD", "1", "1000.00"))
            .await
            .unwrap_err();
        assert!(err.message().contains("BTC-USD"), "{err:?}");
    });
    let lines = up.stop();
    assert_logged_empty(&lines, "oanda", "BTC-USD");
}

#[test]
fn an_oanda_only_pair_leaves_the_crypto_venues_running_without_instruments() {
    let (up, url, body) = up_with_pairs("oanda:EUR-USD");
    for venue in ["binanceus", "coinbase"] {
        assert!(
            body.contains(&format!("{venue}-market-data")),
            "{venue}: {body}"
        );
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut gw = pb::gateway_service_client::GatewayServiceClient::connect(url)
            .await
            .unwrap();
        for venue in ["binanceus", "coinbase"] {
            assert!(instruments(&mut gw, venue).await.is_empty(), "{venue}");
            let account = gw
                .get_account(pb::GetAccountRequest {
                    venue: venue.into(),
                })
                .await
                .unwrap_or_else(|e| panic!("{venue}: GetAccount: {e}"))
                .into_inner();
            assert!(!account.balances.is_empty(), "{venue}: {account:?}");
        }
        assert_eq!(instruments(&mut gw, "oanda").await, ["EUR-USD"]);
        place_resting(&mut gw, limit_buy("oanda", "EUR-USD", "1000", "0.50000")).await;
    });
    let lines = up.stop();
    assert_logged_empty(&lines, "binanceus", "");
    assert_logged_empty(&lines, "coinbase", "");
}
