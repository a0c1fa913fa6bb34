//! Market and user streams against local websocket servers: subscriptions in the URL,
//! mapping to gekko events, malformed frames skipped, reconnects announced with
//! `Connected`, listen keys created per connect and kept alive.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::Method;
use futures_util::{SinkExt, StreamExt};
use gekko_binanceus::BinanceUsVenue;
use gekko_core::{InstrumentId, OrderStatus, VenueId};
use gekko_venue::{BookUpdate, MarketEvent, StreamCtx, UserEvent, VenueAdapter};
use support::{Canned, Mock, config, fixture, start};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A websocket server that, on every connection, records the request path, sends `frames`
/// (plus a ping) and closes.
async fn ws_server(
    frames: Vec<String>,
) -> (String, Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let paths = Arc::new(Mutex::new(Vec::new()));
    let p = paths.clone();
    let task = tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let (p, frames) = (p.clone(), frames.clone());
            tokio::spawn(async move {
                #[allow(
                    clippy::result_large_err,
                    reason = "the callback type is tungstenite's"
                )]
                let cb = |req: &Request, resp: Response| {
                    p.lock().unwrap().push(req.uri().to_string());
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(sock, cb).await else {
                    return;
                };
                let _ = ws.send(Message::Ping(vec![9].into())).await;
                for f in frames {
                    let _ = ws.send(Message::text(f)).await;
                }
                // Let the client read everything (and fetch a book snapshot) before closing.
                tokio::time::sleep(Duration::from_millis(300)).await;
                let _ = ws.close(None).await;
                while ws.next().await.is_some() {}
            });
        }
    });
    (format!("ws://{addr}"), paths, task)
}

async fn recv<T>(rx: &mut mpsc::Receiver<T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("event within 5 s")
        .expect("stream open")
}

fn wrap(stream: &str, payload: &str) -> String {
    format!(r#"{{"stream":"{stream}","data":{}}}"#, payload.trim())
}

#[tokio::test]
async fn market_stream_maps_events_skips_garbage_and_reconnects() {
    let frames = vec![
        wrap(
            "btcusd@bookTicker",
            r#"{"u":1,"s":"BTCUSD","b":"30000.10","B":"1.5","a":"30000.20","A":"2"}"#,
        ),
        wrap(
            "btcusd@trade",
            r#"{"e":"trade","E":1,"s":"BTCUSD","t":9,"p":"30000.15","q":"0.1","b":1,"a":2,"T":5,"m":false,"M":true}"#,
        ),
        "this is not json".to_owned(),
        wrap(
            "btcusd@depth@100ms",
            r#"{"e":"depthUpdate","E":7,"s":"BTCUSD","U":157,"u":160,"b":[["30000.10","0"]],"a":[["30000.30","3"]]}"#,
        ),
        r#"{"result":null,"id":1}"#.to_owned(),
    ];
    let (ws, paths, _srv) = ws_server(frames).await;
    // The REST snapshot the diffs are sequenced against: lastUpdateId 156, so the diff
    // 157..=160 connects.
    let mock = Mock::default();
    mock.default_answer(
        Method::GET,
        "/api/v3/depth",
        Canned::ok(r#"{"lastUpdateId":156,"bids":[["30000.10","1"]],"asks":[["30000.30","1"]]}"#),
    );
    let (rest, _rs) = start(mock.clone()).await;
    let v = BinanceUsVenue::new(config(&rest, &ws)).unwrap();
    let btc = InstrumentId::new(VenueId::BinanceUs, "BTC", "USD");
    let cancel = CancellationToken::new();
    let ctx = StreamCtx::new(TaskTracker::new(), cancel.clone());
    let mut rx = v.market_stream(std::slice::from_ref(&btc), &ctx);

    assert_eq!(recv(&mut rx).await, MarketEvent::Connected);
    let mut got = Vec::new();
    loop {
        match recv(&mut rx).await {
            MarketEvent::Disconnected { .. } => break,
            e => got.push(e),
        }
    }
    assert!(got.contains(&MarketEvent::Heartbeat));
    let quote = got
        .iter()
        .find_map(|e| match e {
            MarketEvent::Quote(q) => Some(q),
            _ => None,
        })
        .unwrap();
    assert_eq!(quote.instrument, btc);
    assert_eq!(quote.bid, rust_decimal_macros::dec!(30000.10));
    let trade = got
        .iter()
        .find_map(|e| match e {
            MarketEvent::Trade(t) => Some(t),
            _ => None,
        })
        .unwrap();
    assert_eq!(trade.taker_side, gekko_core::Side::Buy);
    let snapshot = got
        .iter()
        .find_map(|e| match e {
            MarketEvent::Book(BookUpdate::Snapshot(s)) => Some(s),
            _ => None,
        })
        .expect("the REST snapshot is emitted after the connect");
    assert_eq!(snapshot.sequence, 156);
    let diff = got
        .iter()
        .find_map(|e| match e {
            MarketEvent::Book(BookUpdate::Delta(d)) => Some(d),
            _ => None,
        })
        .unwrap();
    // The diff 157..=160 connects to the snapshot and leaves the book at 160.
    assert_eq!(diff.sequence, 160);
    assert_eq!(diff.bids[0].qty, rust_decimal::Decimal::ZERO);
    // The order of data events is preserved.
    let kinds: Vec<&str> = got
        .iter()
        .filter_map(|e| match e {
            MarketEvent::Quote(_) => Some("q"),
            MarketEvent::Trade(_) => Some("t"),
            MarketEvent::Book(BookUpdate::Delta(_)) => Some("d"),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, ["q", "t", "d"]);

    // A reconnect follows, announced with Connected so books resync.
    assert_eq!(recv(&mut rx).await, MarketEvent::Connected);
    assert_eq!(
        paths.lock().unwrap()[0],
        "/stream?streams=btcusd@bookTicker/btcusd@trade/btcusd@depth@100ms"
    );
    cancel.cancel();
    ctx.tracker.close();
    tokio::time::timeout(Duration::from_secs(5), ctx.tracker.wait())
        .await
        .unwrap();
}

#[tokio::test]
async fn user_stream_creates_a_key_per_connect_keeps_it_alive_and_maps_events() {
    let frames = vec![
        fixture("ws_execution_report_trade.json"),
        fixture("ws_outbound_account_position.json"),
        "{\"e\":\"executionReport\",\"garbage\":true}".to_owned(),
    ];
    let (ws, paths, _srv) = ws_server(frames).await;
    let mock = Mock::default();
    mock.queue(
        Method::POST,
        "/api/v3/userDataStream",
        [
            Canned::ok(r#"{"listenKey":"key-one"}"#),
            Canned::ok(r#"{"listenKey":"key-two"}"#),
        ],
    );
    mock.default_answer(
        Method::POST,
        "/api/v3/userDataStream",
        Canned::ok(r#"{"listenKey":"key-n"}"#),
    );
    mock.default_answer(Method::PUT, "/api/v3/userDataStream", Canned::ok("{}"));
    mock.default_answer(Method::DELETE, "/api/v3/userDataStream", Canned::ok("{}"));
    let (rest, _rs) = start(mock.clone()).await;
    let mut cfg = config(&rest, &ws);
    cfg.listen_key_keepalive = Duration::from_millis(100);
    let v = BinanceUsVenue::new(cfg).unwrap();
    let cancel = CancellationToken::new();
    let ctx = StreamCtx::new(TaskTracker::new(), cancel.clone());
    let mut rx = v.user_stream(&ctx);

    assert_eq!(recv(&mut rx).await, UserEvent::Connected);
    let UserEvent::Order(o) = recv(&mut rx).await else {
        panic!("expected an order")
    };
    assert_eq!(o.status, OrderStatus::PartiallyFilled);
    assert_eq!(
        o.instrument,
        InstrumentId::new(VenueId::BinanceUs, "BTC", "USD")
    );
    assert!(o.last_fill.is_some());
    // The trade report also yields the fill itself.
    let UserEvent::Fill(f) = recv(&mut rx).await else {
        panic!("expected the fill")
    };
    assert_eq!(
        (f.trade_id.as_str(), f.client_order_id.as_str()),
        ("77", o.client_order_id.as_str())
    );
    assert_eq!(f.qty, rust_decimal_macros::dec!(0.4));
    let UserEvent::Balances(b) = recv(&mut rx).await else {
        panic!("expected balances")
    };
    assert_eq!(b[0].asset, "ETH");
    // The garbage frame is skipped; the server closes; we reconnect with a new key.
    assert!(matches!(
        recv(&mut rx).await,
        UserEvent::Disconnected { .. }
    ));
    assert_eq!(recv(&mut rx).await, UserEvent::Connected);
    {
        let p = paths.lock().unwrap();
        assert_eq!(p[0], "/ws/key-one");
        assert_eq!(p[1], "/ws/key-two");
    }
    // Keepalives go out with the current key.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while mock.count(&Method::PUT, "/api/v3/userDataStream") == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no keepalive sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let put = mock
        .log()
        .into_iter()
        .find(|r| r.method == Method::PUT)
        .unwrap();
    assert!(put.query.starts_with("listenKey=key-"), "{}", put.query);
    assert_eq!(put.api_key.as_deref(), Some(support::API_KEY));

    cancel.cancel();
    ctx.tracker.close();
    tokio::time::timeout(Duration::from_secs(5), ctx.tracker.wait())
        .await
        .unwrap();
    assert!(
        mock.count(&Method::DELETE, "/api/v3/userDataStream") >= 1,
        "key closed on shutdown"
    );
}

#[tokio::test]
async fn dropping_the_receiver_stops_the_stream_task() {
    let (ws, _paths, _srv) = ws_server(vec![]).await;
    let v = BinanceUsVenue::new(config("http://127.0.0.1:1", &ws)).unwrap();
    let btc = InstrumentId::new(VenueId::BinanceUs, "BTC", "USD");
    let ctx = StreamCtx::new(TaskTracker::new(), CancellationToken::new());
    let rx = v.market_stream(&[btc], &ctx);
    drop(rx);
    ctx.tracker.close();
    tokio::time::timeout(Duration::from_secs(5), ctx.tracker.wait())
        .await
        .unwrap();
}
