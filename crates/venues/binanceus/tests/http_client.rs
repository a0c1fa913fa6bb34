//! The raw client and the domain layer against a scripted mock venue over real sockets:
//! signing, weight headers, 429/418, `-1021` resync, order-submit outcome classification,
//! retries of idempotent calls only, circuit breaking with a fallback base URL.

mod support;

use std::time::Duration;

use axum::http::Method;
use gekko_binanceus::common::Family;
use gekko_binanceus::{BinanceUsError, BinanceUsSigner, BinanceUsVenue};
use gekko_core::{
    ClientOrderId, InstrumentId, OrderRequest, OrderStatus, OrderType, Side, TimeInForce, VenueId,
};
use gekko_net::CircuitState;
use gekko_venue::{SubmitError, VenueAdapter, VenueError};
use rust_decimal_macros::dec;
use support::{Canned, Mock, config, fixture, start};

const ORDER: &str = "/api/v3/order";

fn btcusd() -> InstrumentId {
    InstrumentId::new(VenueId::BinanceUs, "BTC", "USD")
}

fn limit_buy() -> OrderRequest {
    let i = btcusd();
    OrderRequest {
        client_order_id: ClientOrderId::derive("test", &i, 1),
        instrument: i,
        side: Side::Buy,
        order_type: OrderType::Limit,
        qty: dec!(0.0100),
        price: Some(dec!(30000.50)),
        time_in_force: Some(TimeInForce::Gtc),
    }
}

fn order_ok(req: &OrderRequest) -> Canned {
    Canned::ok(format!(
        r#"{{"symbol":"BTCUSD","orderId":42,"orderListId":-1,"clientOrderId":"{}","transactTime":1507725176595,"price":"30000.50","origQty":"0.01","executedQty":"0","cummulativeQuoteQty":"0","status":"NEW","timeInForce":"GTC","type":"LIMIT","side":"BUY","workingTime":1507725176595,"selfTradePreventionMode":"NONE"}}"#,
        req.client_order_id
    ))
}

async fn venue(mock: &Mock) -> (BinanceUsVenue, tokio::task::JoinHandle<()>) {
    let (base, task) = start(mock.clone()).await;
    (
        BinanceUsVenue::new(config(&base, "ws://127.0.0.1:1")).unwrap(),
        task,
    )
}

#[tokio::test]
async fn signed_requests_carry_key_timestamp_window_and_a_valid_signature() {
    let mock = Mock::default();
    let req = limit_buy();
    mock.queue(Method::POST, ORDER, [order_ok(&req)]);
    let (v, _srv) = venue(&mock).await;
    let u = v.submit_order(&req).await.unwrap();
    assert_eq!(u.status, OrderStatus::New);
    assert_eq!(u.venue_order_id, "42");

    let log = mock.log();
    let sent = log.iter().find(|r| r.path == ORDER).unwrap();
    assert_eq!(sent.api_key.as_deref(), Some(support::API_KEY));
    let (signed_part, sig) = sent.query.rsplit_once("&signature=").unwrap();
    assert_eq!(
        BinanceUsSigner::hmac(support::SECRET)
            .unwrap()
            .sign_bytes(signed_part.as_bytes()),
        sig
    );
    assert!(
        signed_part.starts_with(&format!(
            "symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=30000.5&newClientOrderId={}&newOrderRespType=RESULT&recvWindow=5000&timestamp=",
            req.client_order_id
        )),
        "{signed_part}"
    );
}

#[tokio::test]
async fn used_weight_header_feeds_the_limiter() {
    let mock = Mock::default();
    mock.queue(
        Method::GET,
        "/api/v3/ping",
        [Canned::ok("{}").header("X-MBX-USED-WEIGHT-1M", "777")],
    );
    let (v, _srv) = venue(&mock).await;
    v.http().ping().await.unwrap();
    assert_eq!(v.http().weight_limiter().used(), 777);
}

#[tokio::test]
async fn a_429_pauses_every_request_until_retry_after_elapses() {
    let mock = Mock::default();
    mock.queue(
        Method::GET,
        "/api/v3/depth",
        [Canned::status(
            429,
            r#"{"code":-1003,"msg":"Too much request weight used"}"#,
        )
        .header("Retry-After", "3")],
    );
    let (v, _srv) = venue(&mock).await;
    let e = v.http().depth("BTCUSD", 100).await.unwrap_err();
    assert!(
        matches!(e, BinanceUsError::RateLimited { retry_after } if retry_after == Duration::from_secs(3))
    );
    // Nothing else leaves during the pause: reads give up after their bounded wait, order
    // submits at once, both without touching the network.
    let before = mock.log().len();
    assert!(matches!(
        v.http().server_time().await.unwrap_err(),
        BinanceUsError::RateLimited { .. }
    ));
    let err = v.submit_order(&limit_buy()).await.unwrap_err();
    assert!(
        matches!(err, SubmitError::NotPlaced(VenueError::RateLimited { .. })),
        "{err:?}"
    );
    assert_eq!(mock.log().len(), before, "no request sent while paused");
    assert!(v.http().weight_limiter().paused_until().is_some());
}

#[tokio::test]
async fn an_order_count_429_without_retry_after_pauses_only_orders() {
    let mock = Mock::default();
    mock.queue(
        Method::POST,
        ORDER,
        [Canned::status(
            429,
            r#"{"code":-1015,"msg":"Too many new orders"}"#,
        )],
    );
    let (v, _srv) = venue(&mock).await;
    let err = v.submit_order(&limit_buy()).await.unwrap_err();
    assert!(matches!(
        err,
        SubmitError::NotPlaced(VenueError::RateLimited { .. })
    ));
    assert!(v.http().order_limiter().paused_until().is_some());
    assert!(v.http().weight_limiter().paused_until().is_none());
    // Reads still work.
    v.http().server_time().await.unwrap();
    assert_eq!(mock.count(&Method::POST, ORDER), 1);
}

#[tokio::test]
async fn a_418_bans_everything_and_opens_every_circuit() {
    let mock = Mock::default();
    mock.queue(
        Method::GET,
        "/api/v3/account",
        [Canned::status(
            418,
            r#"{"code":-1003,"msg":"Way too much request weight used; IP banned"}"#,
        )
        .header("Retry-After", "120")],
    );
    let (v, _srv) = venue(&mock).await;
    let e = v.balances().await.unwrap_err();
    assert!(
        matches!(e, VenueError::RateLimited { retry_after } if retry_after == Duration::from_secs(120))
    );
    let before = mock.log().len();
    for f in Family::ALL {
        assert_eq!(v.http().breaker(f).state(), CircuitState::Open);
    }
    assert!(matches!(
        v.http().server_time().await.unwrap_err(),
        BinanceUsError::Banned { .. }
    ));
    assert!(matches!(
        v.submit_order(&limit_buy()).await.unwrap_err(),
        SubmitError::NotPlaced(VenueError::RateLimited { .. })
    ));
    assert_eq!(mock.log().len(), before, "nothing sent during the ban");
}

#[tokio::test]
async fn minus_1021_resyncs_the_clock_and_resends_an_order_exactly_once() {
    let mock = Mock::default();
    mock.set_skew_ms(-3_000);
    let req = limit_buy();
    mock.queue(
        Method::POST,
        ORDER,
        [
            Canned::status(400, r#"{"code":-1021,"msg":"Timestamp for this request was 1000ms ahead of the server's time."}"#),
            order_ok(&req),
        ],
    );
    let (v, _srv) = venue(&mock).await;
    let u = v.submit_order(&req).await.unwrap();
    assert_eq!(u.status, OrderStatus::New);
    assert_eq!(mock.count(&Method::POST, ORDER), 2);
    assert_eq!(mock.count(&Method::GET, "/api/v3/time"), 3, "clock_samples");
    let offset = v.clock_offset_ms();
    assert!((-3_100..=-2_900).contains(&offset), "{offset}");
}

#[tokio::test]
async fn a_second_minus_1021_is_a_definitive_rejection() {
    let mock = Mock::default();
    mock.default_answer(
        Method::POST,
        ORDER,
        Canned::status(
            400,
            r#"{"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}"#,
        ),
    );
    let (v, _srv) = venue(&mock).await;
    let e = v.submit_order(&limit_buy()).await.unwrap_err();
    assert!(
        matches!(
            e,
            SubmitError::NotPlaced(VenueError::Rejected { ref code, .. }) if code == "-1021"
        ),
        "{e:?}"
    );
    assert_eq!(mock.count(&Method::POST, ORDER), 2);
}

#[tokio::test]
async fn submit_outcomes_are_classified_and_never_retried() {
    struct Case {
        answer: Canned,
        ambiguous: bool,
    }
    let cases = [
        Case {
            answer: Canned::status(
                400,
                r#"{"code":-2010,"msg":"Account has insufficient balance for requested action."}"#,
            ),
            ambiguous: false,
        },
        Case {
            answer: Canned::status(400, r#"{"code":-1013,"msg":"Filter failure: LOT_SIZE"}"#),
            ambiguous: false,
        },
        Case {
            answer: Canned::status(
                401,
                r#"{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}"#,
            ),
            ambiguous: false,
        },
        Case {
            answer: Canned::status(403, "<html>WAF</html>"),
            ambiguous: false,
        },
        Case {
            answer: Canned::status(
                400,
                r#"{"code":-1006,"msg":"An unexpected response was received from the message bus. Execution status unknown."}"#,
            ),
            ambiguous: true,
        },
        Case {
            answer: Canned::status(
                400,
                r#"{"code":-1007,"msg":"Timeout waiting for response from backend server. Send status unknown; execution status unknown."}"#,
            ),
            ambiguous: true,
        },
        Case {
            answer: Canned::status(500, "internal"),
            ambiguous: true,
        },
        Case {
            answer: Canned::status(
                503,
                r#"{"code":-1001,"msg":"Internal error; unable to process your request. Please try again."}"#,
            ),
            ambiguous: true,
        },
        Case {
            answer: Canned::ok(r#"{"symbol":"BTCUSD","orderId":"#),
            ambiguous: true,
        },
        Case {
            answer: Canned::ok("{}").delay(Duration::from_secs(2)),
            ambiguous: true,
        },
    ];
    for (i, case) in cases.into_iter().enumerate() {
        let mock = Mock::default();
        mock.queue(Method::POST, ORDER, [case.answer.clone()]);
        let (v, srv) = venue(&mock).await;
        let e = v.submit_order(&limit_buy()).await.unwrap_err();
        match (&e, case.ambiguous) {
            (SubmitError::Ambiguous(_), true) | (SubmitError::NotPlaced(_), false) => {}
            _ => panic!("case {i} ({:?}): got {e:?}", case.answer.status),
        }
        assert_eq!(
            mock.count(&Method::POST, ORDER),
            1,
            "case {i}: an order submit is never retried"
        );
        srv.abort();
    }
}

#[tokio::test]
async fn a_submit_that_cannot_connect_was_not_placed() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let v = BinanceUsVenue::new(config(
        &format!("http://127.0.0.1:{port}"),
        "ws://127.0.0.1:1",
    ))
    .unwrap();
    let e = v.submit_order(&limit_buy()).await.unwrap_err();
    assert!(
        matches!(e, SubmitError::NotPlaced(VenueError::Transport(_))),
        "{e:?}"
    );
}

#[tokio::test]
async fn idempotent_reads_are_retried_on_5xx() {
    let mock = Mock::default();
    mock.queue(
        Method::GET,
        "/api/v3/openOrders",
        [
            Canned::status(503, "busy"),
            Canned::status(502, "bad gateway"),
            Canned::ok(fixture("rest_open_orders.json")),
        ],
    );
    let (v, _srv) = venue(&mock).await;
    let orders = v.http().open_orders("LTCBTC").await.unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(mock.count(&Method::GET, "/api/v3/openOrders"), 3);
}

#[tokio::test]
async fn malformed_bodies_are_errors_with_the_payload() {
    let mock = Mock::default();
    mock.queue(
        Method::GET,
        "/api/v3/depth",
        [Canned::ok(
            r#"{"lastUpdateId":1,"bids":[["x","1"]],"asks":[]}"#,
        )],
    );
    let (v, _srv) = venue(&mock).await;
    let e = v.book_snapshot(&btcusd()).await.unwrap_err();
    let VenueError::Malformed { payload, .. } = e else {
        panic!("{e:?}")
    };
    assert!(payload.contains("lastUpdateId"));
}

#[tokio::test]
async fn the_fallback_base_url_takes_over_while_the_primary_circuit_is_open() {
    let primary = Mock::default();
    primary.default_answer(
        Method::GET,
        "/api/v3/ticker/bookTicker",
        Canned::status(500, "down"),
    );
    let secondary = Mock::default();
    secondary.default_answer(
        Method::GET,
        "/api/v3/ticker/bookTicker",
        Canned::ok(fixture("rest_book_ticker.json")),
    );
    let (p, _ps) = start(primary.clone()).await;
    let (s, _ss) = start(secondary.clone()).await;
    let mut cfg = config(&p, "ws://127.0.0.1:1");
    cfg.rest_fallback = Some(s);
    let v = BinanceUsVenue::new(cfg).unwrap();
    // Three attempts (one call with retries) trip the primary's market breaker...
    assert!(v.http().book_ticker("LTCBTC").await.is_err());
    assert_eq!(v.http().breaker(Family::Market).state(), CircuitState::Open);
    assert_eq!(
        v.http().breaker(Family::Order).state(),
        CircuitState::Closed,
        "per family"
    );
    // ...and the next call goes to the secondary.
    let t = v.http().book_ticker("LTCBTC").await.unwrap();
    assert_eq!(t.bid_qty, dec!(431));
    assert_eq!(
        secondary.count(&Method::GET, "/api/v3/ticker/bookTicker"),
        1
    );
    assert_eq!(primary.count(&Method::GET, "/api/v3/ticker/bookTicker"), 3);
}

#[tokio::test]
async fn circuit_open_without_fallback_is_not_placed() {
    let mock = Mock::default();
    mock.default_answer(Method::GET, "/api/v3/order", Canned::status(500, "down"));
    let (v, _srv) = venue(&mock).await;
    let id = limit_buy().client_order_id;
    assert!(v.query_order(&btcusd(), &id).await.is_err());
    let e = v.submit_order(&limit_buy()).await.unwrap_err();
    assert!(
        matches!(e, SubmitError::NotPlaced(VenueError::CircuitOpen { .. })),
        "{e:?}"
    );
    assert_eq!(mock.count(&Method::POST, ORDER), 0);
}

#[tokio::test]
async fn query_of_an_unknown_order_is_none_and_lost_cancel_answers_reconcile() {
    let mock = Mock::default();
    mock.queue(
        Method::GET,
        ORDER,
        [Canned::status(
            400,
            r#"{"code":-2013,"msg":"Order does not exist."}"#,
        )],
    );
    let (v, _srv) = venue(&mock).await;
    let id = ClientOrderId::parse("myOrder1").unwrap();
    assert_eq!(v.query_order(&btcusd(), &id).await.unwrap(), None);

    // A cancel answered -2011 for an order that is in fact cancelled (an earlier attempt's
    // answer was lost): the adapter reports the final state instead of an error.
    mock.queue(
        Method::DELETE,
        ORDER,
        [Canned::status(
            400,
            r#"{"code":-2011,"msg":"Unknown order sent."}"#,
        )],
    );
    mock.queue(
        Method::GET,
        ORDER,
        [Canned::ok(fixture("rest_cancel_order.json"))],
    );
    let u = v.cancel_order(&btcusd(), &id).await.unwrap();
    assert_eq!(u.status, OrderStatus::Cancelled);

    // Cancel-all with nothing open is an empty list, not an error.
    mock.queue(
        Method::DELETE,
        "/api/v3/openOrders",
        [Canned::status(
            400,
            r#"{"code":-2011,"msg":"Unknown order sent."}"#,
        )],
    );
    assert!(v.cancel_all(&btcusd()).await.unwrap().is_empty());
    mock.queue(
        Method::DELETE,
        "/api/v3/openOrders",
        [Canned::ok(fixture("rest_cancel_open_orders.json"))],
    );
    let cancelled = v.cancel_all(&btcusd()).await.unwrap();
    assert_eq!(cancelled.len(), 1, "the OCO entry is skipped");
    assert_eq!(
        cancelled[0].client_order_id.as_str(),
        "E6APeyTJvkMvLMYMqu1KQ4"
    );
}

#[tokio::test]
async fn instruments_balances_and_credentials() {
    let mock = Mock::default();
    mock.default_answer(
        Method::GET,
        "/api/v3/exchangeInfo",
        Canned::ok(fixture("rest_exchange_info.json")),
    );
    mock.default_answer(
        Method::GET,
        "/api/v3/account",
        Canned::ok(fixture("rest_account.json")),
    );
    let (v, _srv) = venue(&mock).await;
    let infos = v.instruments(&[btcusd()]).await.unwrap();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].tick_size, dec!(0.01));
    let q = &mock.log()[0].query;
    assert_eq!(q, "symbol=BTCUSD");
    v.verify_credentials().await.unwrap();
    let b = v.balances().await.unwrap();
    assert_eq!(b[0].asset, "BTC");
    let pos = v.positions(&[btcusd()]).await.unwrap();
    assert_eq!(pos[0].qty, dec!(4723846.89208129));

    let bad = Mock::default();
    bad.default_answer(
        Method::GET,
        "/api/v3/account",
        Canned::status(
            401,
            r#"{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}"#,
        ),
    );
    let (v, _srv) = venue(&bad).await;
    assert!(matches!(
        v.verify_credentials().await.unwrap_err(),
        VenueError::Auth(_)
    ));
}
