//! `rest_fallback` (`TRADING_API_ENDPOINTS oanda.fallback=URL`) end to end: a primary
//! answering 5xx opens the family's circuit, the fallback host serves while it is open,
//! and after the cooldown the primary is probed and takes the traffic back. Two real v20
//! simulators, the same account on both.

mod support;

use std::time::Duration;

use gekko_net::CircuitState;
use gekko_oanda::http::Family;
use gekko_sim::oanda::Fault;
use support::Oa;

#[tokio::test]
async fn requests_move_to_the_fallback_and_back_to_the_primary_after_the_cooldown() {
    let primary = Oa::start(|_| {}).await;
    let fallback = Oa::start(|_| {}).await;
    let client = primary.client(|c| {
        c.rest_fallback = Some(format!("{}/", fallback.sim.rest_url));
        c.breaker_threshold = 3;
        c.breaker_cooldown = Duration::from_millis(400);
    });
    // Three 503s (one read with its retries) open the account family's circuit.
    primary.sim.inject(Fault::ServerErrors { count: 3 });
    let first = client.account_summary().await;
    assert!(first.is_err(), "{first:?}");
    assert_eq!(client.breaker(Family::Account).state(), CircuitState::Open);

    // While open: the fallback answers.
    let (p0, f0) = (
        primary.sim.stats().rest_requests,
        fallback.sim.stats().rest_requests,
    );
    client
        .account_summary()
        .await
        .expect("served by the fallback");
    client
        .account_summary()
        .await
        .expect("served by the fallback");
    assert_eq!(
        primary.sim.stats().rest_requests,
        p0,
        "nothing to the primary"
    );
    assert_eq!(fallback.sim.stats().rest_requests, f0 + 2);

    // After the cooldown the primary is probed, answers, and serves again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    client.account_summary().await.expect("the primary is back");
    assert!(primary.sim.stats().rest_requests > p0);
    assert_eq!(
        client.breaker(Family::Account).state(),
        CircuitState::Closed
    );
    let f1 = fallback.sim.stats().rest_requests;
    client.account_summary().await.unwrap();
    assert_eq!(
        fallback.sim.stats().rest_requests,
        f1,
        "back on the primary"
    );
}

#[test]
fn a_fallback_is_a_url_of_another_host() {
    let mut c = gekko_oanda::OandaConfig::simulator(
        "http://127.0.0.1:9300",
        "http://127.0.0.1:9301",
        secrecy::SecretString::from("t".to_owned()),
        "101-001-1234567-001",
    );
    c.validate().unwrap();
    c.rest_fallback = Some("http://127.0.0.1:9300/".to_owned());
    let p = c.validate().unwrap_err();
    assert!(
        p[0].starts_with("rest_fallback") && p[0].contains("same"),
        "{p:?}"
    );
    c.rest_fallback = Some("api2.example".to_owned());
    assert!(c.validate().unwrap_err()[0].starts_with("rest_fallback"));
    c.rest_fallback = Some("http://127.0.0.1:9310".to_owned());
    c.validate().unwrap();
}
