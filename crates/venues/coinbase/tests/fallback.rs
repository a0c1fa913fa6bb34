//! `rest_fallback` (`TRADING_API_ENDPOINTS coinbase.fallback=URL`) end to end against two
//! real simulators over TLS, both knowing the key by its public half: a failing primary
//! (5xx) moves the family's requests to the secondary, whose JWT check (the `uri` claim
//! against the host the request was sent to) accepts them, so each token names the host
//! actually used; after the breaker cooldown the primary is probed and takes the traffic
//! back.

mod support;

use std::time::Duration;

use gekko_coinbase::CoinbaseHttpClient;
use gekko_coinbase::common::consts::Family;
use gekko_net::CircuitState;
use gekko_sim::coinbase::{Fault, SimApiKey};
use support::{Cb, KEY_NAME};

async fn wait_until_not_open(client: &CoinbaseHttpClient, family: Family) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while client.breaker(family).state() == CircuitState::Open {
        assert!(
            tokio::time::Instant::now() < deadline,
            "breaker never half-opened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_requests_move_to_the_fallback_host_and_back_after_the_cooldown() {
    let primary = Cb::start(|_| {}).await;
    let public_key_pem = primary.key.public_key_pem();
    let secondary = Cb::start(|c| {
        c.api_keys = vec![SimApiKey {
            name: KEY_NAME.to_owned(),
            public_key_pem: public_key_pem.clone(),
        }];
    })
    .await;
    let client = primary.client(|c| {
        c.rest_fallback = Some(secondary.sim.rest_url.clone());
        c.extra_roots_pem.extend(secondary.sim.cert_pem.clone());
        c.breaker_threshold = 3;
        c.breaker_cooldown = Duration::from_millis(300);
        c.retry.backoff.base = Duration::from_millis(5);
        c.retry.backoff.max = Duration::from_millis(20);
    });
    assert!(
        client
            .fallback_breaker(Family::Account)
            .is_some_and(|b| b.state() == CircuitState::Closed)
    );

    // One signed read and its retries meet three 5xx: the Account circuit opens.
    primary.sim.inject(Fault::ServerErrors { count: 3 });
    assert!(client.accounts_page(1, "").await.is_err());
    assert_eq!(client.breaker(Family::Account).state(), CircuitState::Open);
    let primary_before = primary.sim.stats().rest_requests;

    // While open: the secondary serves, and accepts every token (its uri names it).
    client.accounts_page(1, "").await.unwrap();
    client.accounts_page(1, "").await.unwrap();
    let s = secondary.sim.stats();
    assert_eq!(s.rest_requests, 2, "{s:?}");
    assert_eq!(s.auth_failures, 0, "tokens named the fallback host: {s:?}");
    assert_eq!(primary.sim.stats().rest_requests, primary_before);
    // Another family still goes to the primary.
    assert_eq!(client.breaker(Family::Market).state(), CircuitState::Closed);

    // After the cooldown the probe goes to the primary, succeeds, and closes the circuit.
    wait_until_not_open(&client, Family::Account).await;
    client.accounts_page(1, "").await.unwrap();
    client.accounts_page(1, "").await.unwrap();
    assert_eq!(primary.sim.stats().rest_requests, primary_before + 2);
    assert_eq!(primary.sim.stats().auth_failures, 0);
    assert_eq!(secondary.sim.stats().rest_requests, 2);
    assert_eq!(
        client.breaker(Family::Account).state(),
        CircuitState::Closed
    );
}

#[test]
fn an_invalid_or_identical_fallback_url_is_a_config_error() {
    let key = std::sync::Arc::new(
        gekko_coinbase::CdpKey::generate(KEY_NAME, gekko_coinbase::JwtAlgorithm::Es256)
            .expect("key"),
    );
    let mut cfg = gekko_coinbase::CoinbaseConfig::coinbase(key);
    for bad in [
        "ftp://nope",
        "http://api.example.com",
        "https://api.coinbase.com/",
    ] {
        cfg.rest_fallback = Some(bad.to_owned());
        let problems = cfg.validate().unwrap_err();
        assert!(
            problems.iter().any(|p| p.starts_with("rest_fallback")),
            "{bad}: {problems:?}"
        );
        assert!(CoinbaseHttpClient::new(&cfg).is_err(), "{bad}");
    }
    cfg.rest_fallback = Some("https://api2.example.com".to_owned());
    cfg.validate().unwrap();
}
