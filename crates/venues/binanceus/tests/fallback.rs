//! `rest_fallback` end to end: a failing primary (5xx, or a closed port) moves requests to
//! the secondary base URL per endpoint family, and after the breaker cooldown the primary
//! is probed and takes the traffic back.

mod support;

use std::time::Duration;

use axum::http::Method;
use gekko_binanceus::BinanceUsHttpClient;
use gekko_binanceus::common::Family;
use gekko_net::CircuitState;
use support::{Canned, Mock, config, fixture, start};

const TICKER: &str = "/api/v3/ticker/bookTicker";

async fn wait_until_not_open(client: &BinanceUsHttpClient, family: Family) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while client.breaker(family).state() == CircuitState::Open {
        assert!(
            tokio::time::Instant::now() < deadline,
            "breaker never half-opened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn requests_move_to_the_fallback_and_back_to_the_primary_after_the_cooldown() {
    let primary = Mock::default();
    // Three 5xx (one call with its retries) trip the breaker; then the primary recovers.
    primary.queue(
        Method::GET,
        TICKER,
        (0..3).map(|_| Canned::status(502, "bad gateway")),
    );
    primary.default_answer(
        Method::GET,
        TICKER,
        Canned::ok(fixture("rest_book_ticker.json")),
    );
    let secondary = Mock::default();
    secondary.default_answer(
        Method::GET,
        TICKER,
        Canned::ok(fixture("rest_book_ticker.json")),
    );
    let (p, _ps) = start(primary.clone()).await;
    let (s, _ss) = start(secondary.clone()).await;
    let mut cfg = config(&p, "ws://127.0.0.1:1");
    cfg.rest_fallback = Some(format!("{s}/"));
    cfg.breaker_cooldown = Duration::from_millis(300);
    let client = BinanceUsHttpClient::new(&cfg).unwrap();

    assert!(client.book_ticker("LTCBTC").await.is_err());
    assert_eq!(client.breaker(Family::Market).state(), CircuitState::Open);
    // While open: the secondary serves.
    client.book_ticker("LTCBTC").await.unwrap();
    client.book_ticker("LTCBTC").await.unwrap();
    assert_eq!(secondary.count(&Method::GET, TICKER), 2);
    assert_eq!(primary.count(&Method::GET, TICKER), 3);
    assert_eq!(
        client
            .fallback_breaker(Family::Market)
            .map(gekko_net::CircuitBreaker::state),
        Some(CircuitState::Closed)
    );
    // After the cooldown the probe goes to the primary, succeeds and closes the breaker.
    wait_until_not_open(&client, Family::Market).await;
    client.book_ticker("LTCBTC").await.unwrap();
    client.book_ticker("LTCBTC").await.unwrap();
    assert_eq!(primary.count(&Method::GET, TICKER), 5);
    assert_eq!(secondary.count(&Method::GET, TICKER), 2);
    assert_eq!(client.breaker(Family::Market).state(), CircuitState::Closed);
}

#[tokio::test]
async fn a_closed_primary_port_fails_over_per_family() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let secondary = Mock::default();
    secondary.default_answer(
        Method::GET,
        TICKER,
        Canned::ok(fixture("rest_book_ticker.json")),
    );
    let (s, _ss) = start(secondary.clone()).await;
    let mut cfg = config(&format!("http://127.0.0.1:{port}"), "ws://127.0.0.1:1");
    cfg.rest_fallback = Some(s);
    let client = BinanceUsHttpClient::new(&cfg).unwrap();
    // Connect failures are retried (an idempotent read) and trip the breaker.
    assert!(client.book_ticker("LTCBTC").await.is_err());
    assert_eq!(client.breaker(Family::Market).state(), CircuitState::Open);
    client.book_ticker("LTCBTC").await.unwrap();
    assert_eq!(secondary.count(&Method::GET, TICKER), 1);
    // Other families still use the primary until their own breaker opens.
    assert_eq!(
        client.breaker(Family::Account).state(),
        CircuitState::Closed
    );
}

#[test]
fn an_invalid_fallback_url_is_a_config_error() {
    let mut cfg = config("http://127.0.0.1:1", "ws://127.0.0.1:1");
    cfg.rest_fallback = Some("ftp://nope".to_owned());
    let problems = cfg.validate().unwrap_err();
    assert!(
        problems.iter().any(|p| p.starts_with("rest_fallback")),
        "{problems:?}"
    );
    assert!(BinanceUsHttpClient::new(&cfg).is_err());
}
