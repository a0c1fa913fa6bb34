//! The REST pipeline with a toy venue (default hooks, a static bearer token) against two
//! local axum servers: auth on every request, the fallback base URL while the primary's
//! breaker is open and the primary again after the cooldown, a 429 pausing the limiter.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use gekko_net::{
    BearerToken, Charge, CircuitState, LimiterId, RestConfig, RestError, RestPipeline, RestRequest,
    VenueHooks, Wait, WeightLimiter,
};
use secrecy::SecretString;

#[derive(Clone)]
struct Srv {
    status: Arc<AtomicU16>,
    hits: Arc<AtomicUsize>,
    auth: Arc<std::sync::Mutex<Vec<String>>>,
}

async fn handle(State(s): State<Srv>, headers: HeaderMap) -> impl IntoResponse {
    s.hits.fetch_add(1, Ordering::SeqCst);
    s.auth.lock().unwrap().push(
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    );
    let status = StatusCode::from_u16(s.status.load(Ordering::SeqCst)).unwrap();
    (status, [("retry-after", "2")], r#"{"errorMessage":"x"}"#)
}

async fn start(status: u16) -> (String, Srv) {
    let srv = Srv {
        status: Arc::new(AtomicU16::new(status)),
        hits: Arc::default(),
        auth: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(handle).with_state(srv.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), srv)
}

/// A venue with the default hooks and a JSON error body it does not parse.
#[derive(Debug)]
struct Toy;

impl VenueHooks for Toy {
    type Error = String;

    fn parse_error(&self, _status: u16, _headers: &HeaderMap, body: &str) -> Option<String> {
        body.contains("errorMessage").then(|| body.to_owned())
    }
}

const CHARGE: [Charge; 1] = [Charge {
    limiter: LimiterId(0),
    weight: 1,
    wait: Wait::Never,
}];

fn pipeline(primary: &str, fallback: Option<&str>, cooldown: Duration) -> RestPipeline<Toy> {
    RestPipeline::new(
        reqwest::Client::new(),
        RestConfig {
            venue: "toy",
            families: vec!["market"],
            limiters: vec![WeightLimiter::new(100, Duration::from_secs(1), 1.0)],
            base_url: primary.to_owned(),
            fallback_base_url: fallback.map(str::to_owned),
            breaker_threshold: 2,
            breaker_cooldown: cooldown,
            max_rate_limit_wait: Duration::from_millis(10),
        },
        Toy,
    )
}

fn request<'a>(auth: &'a BearerToken) -> RestRequest<'a> {
    RestRequest {
        name: "pricing",
        method: reqwest::Method::GET,
        path: "/v3/pricing",
        query: "instruments=EUR_USD",
        body: "",
        headers: HeaderMap::new(),
        family: 0,
        charges: &CHARGE,
        auth: Some(auth),
    }
}

#[tokio::test]
async fn fallback_takes_over_and_the_primary_returns_after_the_cooldown() {
    let (p, primary) = start(503).await;
    let (s, secondary) = start(200).await;
    let cooldown = Duration::from_millis(300);
    let rest = pipeline(&p, Some(&s), cooldown);
    let auth = BearerToken::new(SecretString::from("tok"));
    for _ in 0..2 {
        let e = rest.send(&request(&auth)).await.unwrap_err();
        assert!(
            matches!(e, RestError::Venue(ref b) if b.contains("errorMessage")),
            "{e:?}"
        );
    }
    assert_eq!(rest.breaker(0).unwrap().state(), CircuitState::Open);
    // The secondary serves while the primary is open.
    rest.send(&request(&auth)).await.unwrap();
    assert_eq!(secondary.hits.load(Ordering::SeqCst), 1);
    assert_eq!(primary.hits.load(Ordering::SeqCst), 2);
    // The primary recovers; after the cooldown the probe goes to it and closes the breaker.
    primary.status.store(200, Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while rest.breaker(0).unwrap().state() == CircuitState::Open {
        assert!(
            tokio::time::Instant::now() < deadline,
            "breaker never half-opened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rest.send(&request(&auth)).await.unwrap();
    assert_eq!(primary.hits.load(Ordering::SeqCst), 3);
    assert_eq!(secondary.hits.load(Ordering::SeqCst), 1);
    assert_eq!(rest.breaker(0).unwrap().state(), CircuitState::Closed);
    // Every request carried the token, whichever host it went to.
    for srv in [&primary, &secondary] {
        assert!(srv.auth.lock().unwrap().iter().all(|a| a == "Bearer tok"));
    }
}

#[tokio::test]
async fn a_429_pauses_the_charged_limiter_and_nothing_is_sent_meanwhile() {
    let (p, primary) = start(429).await;
    let rest = pipeline(&p, None, Duration::from_secs(30));
    let auth = BearerToken::new(SecretString::from("tok"));
    let e = rest.send(&request(&auth)).await.unwrap_err();
    assert!(
        matches!(e, RestError::RateLimited { retry_after } if retry_after == Duration::from_secs(2)),
        "{e:?}"
    );
    assert!(rest.limiter(LimiterId(0)).paused_until().is_some());
    assert!(matches!(
        rest.send(&request(&auth)).await.unwrap_err(),
        RestError::RateLimited { .. }
    ));
    assert_eq!(primary.hits.load(Ordering::SeqCst), 1);
    // A rate limit says nothing about health.
    assert_eq!(rest.breaker(0).unwrap().state(), CircuitState::Closed);
}

#[tokio::test]
async fn a_ban_holds_everything_and_a_closed_port_moves_to_the_fallback() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (s, secondary) = start(200).await;
    let rest = pipeline(
        &format!("http://127.0.0.1:{port}"),
        Some(&s),
        Duration::from_secs(30),
    );
    let auth = BearerToken::new(SecretString::from("tok"));
    for _ in 0..2 {
        assert!(matches!(
            rest.send(&request(&auth)).await.unwrap_err(),
            RestError::Net(ref e) if !e.may_have_been_sent()
        ));
    }
    rest.send(&request(&auth)).await.unwrap();
    assert_eq!(secondary.hits.load(Ordering::SeqCst), 1);
    rest.ban_for(Duration::from_secs(60));
    assert!(matches!(
        rest.send(&request(&auth)).await.unwrap_err(),
        RestError::Banned { .. }
    ));
    assert_eq!(
        secondary.hits.load(Ordering::SeqCst),
        1,
        "nothing sent during a ban"
    );
    assert_eq!(
        rest.fallback_breaker(0).unwrap().state(),
        CircuitState::Open
    );
}
