//! The chunked line stream against a local axum server that streams `\n`-delimited JSON
//! in chunks (lines split across chunks), drops the connection, and goes silent: every
//! failure leads back to a reconnect under the shared supervisor.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gekko_net::{
    BackoffConfig, BearerToken, FrameVerdict, OutgoingRequest, RequestAuth, StreamConfig,
    StreamEvent, StreamHooks, spawn_line_stream,
};
use secrecy::SecretString;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Default)]
struct Srv {
    connects: Arc<AtomicUsize>,
    auth: Arc<std::sync::Mutex<Vec<String>>>,
}

/// Connection 1: a price split over two chunks, a heartbeat, then the server drops it.
/// Connection 2: one price, then silence with the connection held open.
/// Later connections: 401 without a token, else one price and an orderly end.
async fn stream(State(srv): State<Srv>, headers: HeaderMap) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    srv.auth.lock().unwrap().push(auth.clone());
    if auth != "Bearer tok" {
        return (StatusCode::UNAUTHORIZED, r#"{"errorMessage":"no"}"#).into_response();
    }
    let n = srv.connects.fetch_add(1, Ordering::SeqCst);
    let chunks: Vec<&'static str> = match n {
        0 => vec![
            r#"{"type":"PRICE","instrument":"EUR_"#,
            "USD\",\"bids\":[{\"price\":\"1.09144\"}]}\r\n\n",
            "{\"type\":\"HEARTBEAT\"}\n",
        ],
        1 => vec!["{\"type\":\"PRICE\",\"instrument\":\"USD_JPY\"}\n"],
        _ => vec!["{\"type\":\"PRICE\",\"instrument\":\"XAU_USD\"}\n"],
    };
    let silent = n == 1;
    let body = futures_util::stream::unfold(
        (chunks.into_iter(), silent),
        |(mut it, silent)| async move {
            match it.next() {
                Some(c) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Some((Ok::<_, Infallible>(Bytes::from(c)), (it, silent)))
                }
                None if silent => {
                    // Hold the connection open without a byte.
                    std::future::pending::<()>().await;
                    None
                }
                None => None,
            }
        },
    );
    Response::new(Body::from_stream(body))
}

async fn start(srv: Srv) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/v3/accounts/1/pricing/stream", get(stream))
        .with_state(srv);
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), task)
}

/// OANDA-style hooks: heartbeat lines are heartbeats.
struct Oanda;

impl StreamHooks for Oanda {
    fn on_text(&mut self, text: &str) -> FrameVerdict {
        if text.contains(r#""type":"HEARTBEAT""#) {
            FrameVerdict::Heartbeat
        } else {
            FrameVerdict::Deliver
        }
    }
}

fn config() -> StreamConfig {
    let mut c = StreamConfig::new("oanda", "pricing");
    c.stale_after = Duration::from_millis(500);
    c.connect_timeout = Duration::from_secs(2);
    c.backoff = BackoffConfig::new(Duration::from_millis(20), Duration::from_millis(50));
    c
}

async fn next(rx: &mut mpsc::Receiver<StreamEvent>) -> StreamEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("event within 5 s")
        .expect("channel open")
}

#[tokio::test]
async fn lines_survive_drops_and_silence_and_reconnect_with_the_token() {
    let srv = Srv::default();
    let (base, task) = start(srv.clone()).await;
    let cancel = CancellationToken::new();
    let client = reqwest::Client::new();
    let auth = Arc::new(BearerToken::new(SecretString::from("tok")));
    let attempts = Arc::new(AtomicUsize::new(0));
    let a = attempts.clone();
    let (mut rx, handle) = spawn_line_stream(
        config(),
        move || {
            let (client, auth, base) = (client.clone(), auth.clone(), base.clone());
            // The first attempt goes out without a token: a 401 is a failed attempt.
            let first = a.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                let mut req = OutgoingRequest::new(
                    reqwest::Method::GET,
                    &base,
                    "/v3/accounts/1/pricing/stream",
                );
                req.query = "instruments=EUR_USD%2CUSD_JPY".to_owned();
                if !first {
                    auth.authorize(&mut req).map_err(|e| e.to_string())?;
                }
                Ok(req.to_reqwest(&client))
            }
        },
        Oanda,
        cancel.clone(),
    );

    assert!(
        matches!(next(&mut rx).await, StreamEvent::Disconnected { reason } if reason.contains("HTTP 401")),
        "a refused stream is a failed attempt"
    );
    // Connection 1: the split line arrives whole, the blank line is skipped, the heartbeat
    // is a heartbeat, and the server's drop is a disconnect.
    assert_eq!(next(&mut rx).await, StreamEvent::Connected);
    assert_eq!(
        next(&mut rx).await,
        StreamEvent::Text(
            r#"{"type":"PRICE","instrument":"EUR_USD","bids":[{"price":"1.09144"}]}"#.to_owned()
        )
    );
    assert_eq!(next(&mut rx).await, StreamEvent::Heartbeat);
    assert!(matches!(
        next(&mut rx).await,
        StreamEvent::Disconnected { reason } if reason.contains("stream ended")
    ));
    // Connection 2: one line, then silence: the watchdog reports it stale.
    assert_eq!(next(&mut rx).await, StreamEvent::Connected);
    assert!(matches!(next(&mut rx).await, StreamEvent::Text(t) if t.contains("USD_JPY")));
    assert_eq!(next(&mut rx).await, StreamEvent::Stale);
    // Connection 3: back again.
    assert_eq!(next(&mut rx).await, StreamEvent::Connected);
    assert!(matches!(next(&mut rx).await, StreamEvent::Text(t) if t.contains("XAU_USD")));

    assert!(srv.connects.load(Ordering::SeqCst) >= 3);
    let seen = srv.auth.lock().unwrap().clone();
    assert_eq!(seen[0], "", "first attempt without a token");
    assert!(seen[1..].iter().all(|a| a == "Bearer tok"), "{seen:?}");
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .unwrap()
        .unwrap();
    task.abort();
}

#[tokio::test]
async fn nothing_listening_keeps_retrying_and_cancel_stops_it() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cancel = CancellationToken::new();
    let client = reqwest::Client::new();
    let (mut rx, handle) = spawn_line_stream(
        config(),
        move || {
            let client = client.clone();
            async move { Ok(client.get(format!("http://127.0.0.1:{port}/stream"))) }
        },
        Oanda,
        cancel.clone(),
    );
    for _ in 0..3 {
        assert!(matches!(
            next(&mut rx).await,
            StreamEvent::Disconnected { reason } if reason.contains("connect failed")
        ));
    }
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .unwrap()
        .unwrap();
}
