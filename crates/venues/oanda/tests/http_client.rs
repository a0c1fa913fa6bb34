//! The OANDA REST client and adapter against the v20 simulator over real loopback
//! sockets: every endpoint, every error class, the pre-trade refusals (margin included)
//! that send nothing, and an ambiguous submit that leaves exactly one order.

use std::time::Duration;

use gekko_core::{OrderStatus, Side};
use gekko_oanda::OandaError;
use gekko_oanda::common::models::ChangesResponse;
use gekko_sim::oanda::Fault;
use gekko_venue::{RejectReason, SubmitError, VenueAdapter, VenueError};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use secrecy::SecretString;

mod support;

use support::{Oa, eur_usd, id, limit, market, usd_jpy};

/// A buy limit well below the market: it rests.
fn resting_price(oa: &Oa) -> Decimal {
    let (bid, _) = oa.touch("EUR_USD");
    (bid * dec!(0.95)).round_dp(5)
}

#[tokio::test]
async fn credentials_and_account_are_verified() {
    let oa = Oa::start(|_| {}).await;
    let venue = oa.venue(|_| {});
    venue
        .verify_credentials()
        .await
        .expect("the paper token and account");
    assert_eq!(venue.home_currency().as_deref(), Some("USD"));
    let accounts = oa.client(|_| {}).accounts().await.unwrap();
    assert!(accounts.iter().any(|a| a.id == oa.sim.account_id));

    let bad_token = oa.venue(|c| c.token = SecretString::from("not-the-token"));
    match bad_token.verify_credentials().await {
        Err(VenueError::Auth(m)) => assert!(m.contains("401"), "{m}"),
        other => panic!("a wrong token: {other:?}"),
    }
    match oa
        .client(|c| c.token = SecretString::from("nope"))
        .accounts()
        .await
    {
        Err(OandaError::Unauthorized { message }) => {
            assert_eq!(message, "Insufficient authorization to perform request.");
        }
        other => panic!("{other:?}"),
    }

    let other_account = oa.venue(|c| c.account_id = "101-001-9999999-001".into());
    match other_account.verify_credentials().await {
        Err(VenueError::Auth(m)) => assert!(m.contains("101-001-9999999-001"), "{m}"),
        other => panic!("an account the token does not list: {other:?}"),
    }
    match oa
        .client(|c| c.account_id = "101-001-9999999-001".into())
        .account_summary()
        .await
    {
        Err(OandaError::UnknownAccount { status, .. }) => assert!(matches!(status, 403 | 404)),
        other => panic!("{other:?}"),
    }
    oa.sim.shutdown().await;
}

#[tokio::test]
async fn instruments_summary_pricing_and_balances() {
    let oa = Oa::start(|_| {}).await;
    let venue = oa.venue(|_| {});
    let infos = venue.instruments(&[eur_usd(), usd_jpy()]).await.unwrap();
    let eu = infos
        .iter()
        .find(|i| i.id == eur_usd())
        .expect("EUR_USD listed");
    assert_eq!(eu.venue_symbol, "EUR_USD");
    assert_eq!(eu.tick_size, dec!(0.00001));
    assert_eq!(eu.lot_size, dec!(1));
    assert_eq!(eu.min_qty, dec!(1));
    assert_eq!(eu.max_qty, dec!(100000000));
    let uj = infos
        .iter()
        .find(|i| i.id == usd_jpy())
        .expect("USD_JPY listed");
    assert_eq!(uj.tick_size, dec!(0.001));
    assert_eq!(venue.instruments(&[]).await.unwrap().len(), 4);

    let raw = oa.client(|_| {});
    let ins = raw.instruments(&["EUR_USD".into()]).await.unwrap();
    assert!(ins[0].margin_rate > Decimal::ZERO, "marginRate is kept");
    let prices = raw
        .pricing(&["EUR_USD".into(), "USD_JPY".into()])
        .await
        .unwrap();
    assert_eq!(prices.prices.len(), 2);
    assert!(
        prices
            .prices
            .iter()
            .all(|p| p.bids[0].price < p.asks[0].price)
    );

    let m = venue
        .margin_summary()
        .await
        .unwrap()
        .expect("a margin account");
    assert_eq!(m.currency, "USD");
    assert_eq!(m.balance, dec!(100000));
    assert_eq!(m.nav, dec!(100000));
    assert_eq!(m.margin_used, Decimal::ZERO);
    assert_eq!(m.margin_available, dec!(100000));
    let b = venue.balances().await.unwrap();
    assert_eq!((b[0].asset.as_str(), b[0].total()), ("USD", dec!(100000)));
    oa.sim.shutdown().await;
}

#[tokio::test]
async fn limit_order_lifecycle_by_client_id() {
    let oa = Oa::start(|_| {}).await;
    let venue = oa.venue(|_| {});
    let inst = eur_usd();
    let req = limit(
        id("limit"),
        inst.clone(),
        Side::Buy,
        dec!(1000),
        resting_price(&oa),
    );
    let u = venue.submit_order(&req).await.expect("placed");
    assert_eq!(u.status, OrderStatus::New);
    assert_eq!(u.client_order_id, req.client_order_id);
    assert_eq!((u.qty, u.price, u.side), (dec!(1000), req.price, Side::Buy));

    let q = venue
        .query_order(&inst, &req.client_order_id)
        .await
        .unwrap()
        .expect("found through @clientID");
    assert_eq!(
        (q.status, q.venue_order_id.as_str()),
        (OrderStatus::New, u.venue_order_id.as_str())
    );
    let open = venue.open_orders(&inst).await.unwrap();
    assert!(
        open.iter()
            .any(|o| o.client_order_id == req.client_order_id)
    );
    assert!(venue.open_orders(&usd_jpy()).await.unwrap().is_empty());

    // The same client id again while it is pending: the venue's duplicate.
    match venue.submit_order(&req).await {
        Err(SubmitError::NotPlaced(VenueError::Rejected { reason, code, .. })) => {
            assert_eq!(reason, RejectReason::Duplicate, "{code}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(oa.orders_named(req.client_order_id.as_str()), 1);

    let c = venue
        .cancel_order(&inst, &req.client_order_id)
        .await
        .unwrap();
    assert_eq!(c.status, OrderStatus::Cancelled);
    // A second cancel reports the final state.
    let again = venue
        .cancel_order(&inst, &req.client_order_id)
        .await
        .unwrap();
    assert_eq!(again.status, OrderStatus::Cancelled);

    let unknown = id("never-sent");
    assert!(venue.query_order(&inst, &unknown).await.unwrap().is_none());
    match venue.cancel_order(&inst, &unknown).await {
        Err(VenueError::Rejected {
            reason: RejectReason::UnknownOrder,
            code,
            ..
        }) => {
            assert_eq!(code, "ORDER_DOESNT_EXIST");
        }
        other => panic!("{other:?}"),
    }
    oa.sim.shutdown().await;
}

#[tokio::test]
async fn partial_fills_are_read_back_from_the_transactions() {
    let oa = Oa::start(|c| c.tick_interval = Duration::from_secs(3600)).await;
    let venue = oa.venue(|_| {});
    let inst = eur_usd();
    let price = resting_price(&oa);
    let req = limit(id("partial"), inst.clone(), Side::Buy, dec!(1000), price);
    venue.submit_order(&req).await.unwrap();
    assert_eq!(oa.sim.trade_through("EUR_USD", price, dec!(400)), dec!(400));
    let q = venue
        .query_order(&inst, &req.client_order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (q.status, q.filled_qty),
        (OrderStatus::PartiallyFilled, dec!(400))
    );
    assert_eq!(q.cum_quote, dec!(400) * price);
    assert!(q.last_fill.is_some());
    assert_eq!(oa.sim.trade_through("EUR_USD", price, dec!(600)), dec!(600));
    let q = venue
        .query_order(&inst, &req.client_order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((q.status, q.filled_qty), (OrderStatus::Filled, dec!(1000)));
    oa.sim.shutdown().await;
}

#[tokio::test]
async fn market_orders_fill_and_a_short_closes_natively() {
    let oa = Oa::start(|_| {}).await;
    let venue = oa.venue(|_| {});
    let inst = usd_jpy();
    let sell = market(id("short"), inst.clone(), Side::Sell, dec!(2500));
    let u = venue.submit_order(&sell).await.expect("filled");
    assert_eq!(
        (u.status, u.filled_qty, u.side),
        (OrderStatus::Filled, dec!(2500), Side::Sell)
    );
    let f = u.fill().expect("the fill rides on the answer");
    assert_eq!((f.qty, f.fee_asset.as_str()), (dec!(2500), "USD"));
    assert!(!f.trade_id.is_empty());

    let ps = venue.positions(std::slice::from_ref(&inst)).await.unwrap();
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].qty, dec!(-2500), "a short is negative");
    let avg = ps[0].avg_price.expect("an average price");
    assert!((avg - f.price).abs() < dec!(0.001), "{avg} vs {}", f.price);
    assert!(ps[0].unrealized_pnl.is_some());
    let m = venue.margin_summary().await.unwrap().unwrap();
    assert!(m.margin_used > Decimal::ZERO);

    let trades = venue.http().open_trades().await.unwrap();
    assert_eq!(trades[0].current_units, dec!(-2500));

    let closed = venue.close_position(&inst).await.expect("closed");
    assert_eq!(closed.len(), 1);
    assert_eq!(
        (closed[0].status, closed[0].side, closed[0].filled_qty),
        (OrderStatus::Filled, Side::Buy, dec!(2500))
    );
    assert_eq!(
        oa.sim.position_units("USD_JPY"),
        (Decimal::ZERO, Decimal::ZERO)
    );
    assert!(
        venue
            .positions(std::slice::from_ref(&inst))
            .await
            .unwrap()
            .is_empty()
    );
    // Nothing held: nothing to close, nothing sent.
    assert!(venue.close_position(&inst).await.unwrap().is_empty());

    // A FOK market buy of EUR_USD, and the changes since before it.
    let before = oa.sim.last_transaction_id();
    let buy = market(id("long"), eur_usd(), Side::Buy, dec!(100));
    assert_eq!(
        venue.submit_order(&buy).await.unwrap().status,
        OrderStatus::Filled
    );
    let ch = venue.http().changes(&before.to_string()).await.unwrap();
    let kinds: Vec<&str> = ch
        .changes
        .transactions
        .iter()
        .map(|t| t.kind.as_str())
        .collect();
    assert!(
        kinds.contains(&"MARKET_ORDER") && kinds.contains(&"ORDER_FILL"),
        "{kinds:?}"
    );
    assert_eq!(
        ch.last_transaction_id,
        oa.sim.last_transaction_id().to_string()
    );
    // The stream's catch-up closure gets the same body, raw.
    let raw = (venue.catch_up())(before.to_string()).await.unwrap();
    let parsed: ChangesResponse = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        parsed.changes.transactions.len(),
        ch.changes.transactions.len()
    );
    oa.sim.shutdown().await;
}

#[tokio::test]
async fn pre_trade_refusals_send_nothing() {
    let oa = Oa::start(|_| {}).await;
    let venue = oa.venue(|_| {});
    venue.verify_credentials().await.unwrap();
    let inst = eur_usd();
    let price = resting_price(&oa);
    let before = (oa.sim.last_transaction_id(), oa.sim.orders().len());
    let cases = [
        (
            limit(id("frac"), inst.clone(), Side::Buy, dec!(10.5), price),
            "gekko:trade_units_precision",
            RejectReason::Filter,
        ),
        (
            limit(id("max"), inst.clone(), Side::Buy, dec!(100000001), price),
            "gekko:maximum_order_units",
            RejectReason::Filter,
        ),
        (
            limit(
                id("tick"),
                inst.clone(),
                Side::Buy,
                dec!(10),
                price + dec!(0.000001),
            ),
            "gekko:display_precision",
            RejectReason::Filter,
        ),
        // 50 M EUR at ~1.0 needs far more margin than the 100 000 USD account has.
        (
            limit(id("margin"), inst.clone(), Side::Buy, dec!(50000000), price),
            "gekko:margin",
            RejectReason::InsufficientFunds,
        ),
        (
            market(id("margin-mkt"), usd_jpy(), Side::Sell, dec!(90000000)),
            "gekko:margin",
            RejectReason::InsufficientFunds,
        ),
    ];
    for (req, want_code, want_reason) in cases {
        match venue.submit_order(&req).await {
            Err(SubmitError::NotPlaced(VenueError::Rejected {
                code,
                reason,
                message,
            })) => {
                assert_eq!(
                    (code.as_str(), reason),
                    (want_code, want_reason),
                    "{message}"
                );
            }
            other => panic!("{want_code}: {other:?}"),
        }
    }
    assert_eq!(
        (oa.sim.last_transaction_id(), oa.sim.orders().len()),
        before,
        "no order request reached the venue"
    );
    // With the local check off the venue refuses it, and says why precisely.
    let unchecked = oa.venue(|c| c.margin_check = false);
    let big = limit(
        id("venue-margin"),
        inst.clone(),
        Side::Buy,
        dec!(50000000),
        price,
    );
    match unchecked.submit_order(&big).await {
        Err(SubmitError::NotPlaced(VenueError::Rejected { code, reason, .. })) => {
            assert_eq!(
                (code.as_str(), reason),
                ("INSUFFICIENT_MARGIN", RejectReason::InsufficientFunds)
            );
        }
        other => panic!("{other:?}"),
    }
    // And when the venue alone knows it (an injected reject of a small order).
    oa.sim.inject(Fault::MarginRejectNext { count: 1 });
    let small = market(id("injected-margin"), inst, Side::Buy, dec!(10));
    match venue.submit_order(&small).await {
        Err(SubmitError::NotPlaced(VenueError::Rejected { code, reason, .. })) => {
            assert_eq!(
                (code.as_str(), reason),
                ("INSUFFICIENT_MARGIN", RejectReason::InsufficientFunds)
            );
        }
        other => panic!("{other:?}"),
    }
    oa.sim.shutdown().await;
}

#[tokio::test]
async fn a_lost_answer_is_ambiguous_and_leaves_exactly_one_order() {
    let oa = Oa::start(|_| {}).await;
    let venue = oa.venue(|_| {});
    let inst = eur_usd();
    let req = limit(
        id("ambiguous"),
        inst.clone(),
        Side::Buy,
        dec!(1000),
        resting_price(&oa),
    );
    // Fetch the rules and summary first, so the lost answer is the order's.
    venue
        .instruments(std::slice::from_ref(&inst))
        .await
        .unwrap();
    oa.sim.inject(Fault::OrderTimeout);
    match venue.submit_order(&req).await {
        Err(SubmitError::Ambiguous(m)) => assert!(m.contains("timed out"), "{m}"),
        other => panic!("a lost answer must be Ambiguous: {other:?}"),
    }
    let found = venue
        .query_order(&inst, &req.client_order_id)
        .await
        .unwrap()
        .expect("the order whose answer was lost is found by @clientID");
    assert_eq!(found.status, OrderStatus::New);
    assert_eq!(
        oa.orders_named(req.client_order_id.as_str()),
        1,
        "exactly one order"
    );
    oa.sim.shutdown().await;
}

#[tokio::test]
async fn server_errors_retry_reads_and_make_submits_ambiguous() {
    let oa = Oa::start(|_| {}).await;
    let venue = oa.venue(|_| {});
    let raw = venue.http();
    oa.sim.inject(Fault::ServerErrors { count: 2 });
    assert!(
        !raw.accounts().await.unwrap().is_empty(),
        "a GET is retried past two 503s"
    );

    let inst = eur_usd();
    venue
        .instruments(std::slice::from_ref(&inst))
        .await
        .unwrap();
    let req = limit(
        id("five"),
        inst.clone(),
        Side::Buy,
        dec!(10),
        resting_price(&oa),
    );
    // The margin check's reads go first; fail exactly the order request.
    let unchecked = oa.venue(|c| c.margin_check = false);
    unchecked
        .instruments(std::slice::from_ref(&inst))
        .await
        .unwrap();
    oa.sim.inject(Fault::ServerErrors { count: 1 });
    match unchecked.submit_order(&req).await {
        Err(SubmitError::Ambiguous(m)) => assert!(m.contains("503"), "{m}"),
        other => panic!("a 5xx submit is ambiguous: {other:?}"),
    }
    assert_eq!(
        oa.orders_named(req.client_order_id.as_str()),
        0,
        "sent once, never resent"
    );
    assert!(
        unchecked
            .query_order(&inst, &req.client_order_id)
            .await
            .unwrap()
            .is_none()
    );
    oa.sim.shutdown().await;
}

#[tokio::test]
async fn a_429_pauses_reads_and_refuses_submits_without_sending() {
    let oa = Oa::start(|_| {}).await;
    let venue = oa.venue(|_| {});
    let inst = eur_usd();
    venue
        .instruments(std::slice::from_ref(&inst))
        .await
        .unwrap();
    oa.sim.inject(Fault::RateLimitStorm {
        duration: Duration::from_millis(800),
    });
    // The first read meets the 429, waits out Retry-After in the limiter and succeeds.
    let started = tokio::time::Instant::now();
    venue.http().accounts().await.expect("survives the storm");
    assert!(started.elapsed() >= Duration::from_millis(500));
    // A 429 pauses the limiter; an order submit does not wait for it and sends nothing.
    let once = oa.venue(|c| {
        c.retry.max_attempts = 1;
        c.margin_check = false;
    });
    once.instruments(std::slice::from_ref(&inst)).await.unwrap();
    oa.sim.inject(Fault::RateLimitStorm {
        duration: Duration::from_millis(800),
    });
    match once.http().pending_orders().await {
        Err(OandaError::RateLimited { retry_after }) => {
            assert!(retry_after >= Duration::from_millis(500))
        }
        other => panic!("{other:?}"),
    }
    let sent = oa.sim.stats().rest_requests;
    let req = limit(
        id("paused"),
        inst.clone(),
        Side::Buy,
        dec!(10),
        resting_price(&oa),
    );
    match once.submit_order(&req).await {
        Err(SubmitError::NotPlaced(VenueError::RateLimited { .. })) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        oa.sim.stats().rest_requests,
        sent,
        "nothing sent while paused"
    );
    assert_eq!(
        oa.sim.stats().rate_limit_violations,
        0,
        "nothing sent inside a Retry-After"
    );
    oa.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_stays_under_the_venue_limit() {
    let oa = Oa::start(|_| {}).await;
    let raw = oa.client(|_| {});
    raw.accounts().await.unwrap();
    let started = tokio::time::Instant::now();
    let calls = (0..200).map(|_| {
        let raw = raw.clone();
        tokio::spawn(async move { raw.accounts().await })
    });
    for c in calls {
        c.await.unwrap().expect("every call of the burst succeeds");
    }
    // 90 % of 100/s is spent: 200 calls take about two seconds and the venue's 120/s
    // is never exceeded.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let stats = oa.sim.stats();
    assert_eq!(stats.http_429, 0, "{stats:?}");
    oa.sim.shutdown().await;
}

/// A loopback HTTP/1.1 server that answers every request with `body`, keeping the
/// connection alive, and records how many connections it accepted and what each
/// request's head said.
async fn keep_alive_server(
    body: &'static str,
) -> (
    String,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (a, h) = (accepted.clone(), heads.clone());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            let h = h.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0_u8; 4096];
                loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head: Vec<u8> = buf.drain(..end + 4).collect();
                        h.lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&head).into_owned());
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if sock.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, accepted, heads)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_reuse_one_keep_alive_connection_and_carry_the_headers() {
    let (url, accepted, heads) =
        keep_alive_server(r#"{"accounts":[{"id":"101-001-1234567-001","tags":[]}]}"#).await;
    let mut cfg = gekko_oanda::OandaConfig::simulator(
        &url,
        &url,
        SecretString::from("tok-123"),
        "101-001-1234567-001",
    );
    cfg.request_timeout = Duration::from_secs(1);
    cfg.retry.max_attempts = 1;
    let raw = gekko_oanda::OandaHttpClient::new(&cfg).unwrap();
    for _ in 0..20 {
        raw.verify_account().await.unwrap();
    }
    // hyper may open a second connection when a request starts before the previous
    // connection is back in the pool; what matters is that connections are reused, not
    // opened per request.
    let opened = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (1..=2).contains(&opened),
        "20 requests opened {opened} connections (OANDA refuses more than 2 new per second)"
    );
    // A copy: the server's tasks take the same lock for the next requests.
    let heads = heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 20);
    let h = heads[0].to_ascii_lowercase();
    assert!(h.starts_with("get /v3/accounts http/1.1"), "{h}");
    assert!(h.contains("authorization: bearer tok-123"), "{h}");
    assert!(h.contains("accept-datetime-format: rfc3339"), "{h}");
    // An account the token does not list is refused.
    let other = gekko_oanda::OandaHttpClient::new(&gekko_oanda::OandaConfig {
        account_id: "101-001-7654321-001".into(),
        ..cfg
    })
    .unwrap();
    let r = other.verify_account().await;
    assert!(matches!(r, Err(OandaError::UnknownAccount { .. })), "{r:?}");
}
