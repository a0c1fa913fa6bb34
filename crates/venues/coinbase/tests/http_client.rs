//! The Coinbase REST client and adapter against the Coinbase simulator over real TLS
//! sockets (the client trusts only what `extra_roots_pem` adds: the simulator's
//! generated certificate), for every endpoint, pagination, every error class, the
//! pre-trade checks and the ambiguous submit.

use std::time::{Duration, Instant};

use gekko_coinbase::http::{NewOrder, OrderConfiguration, OrderFilter};
use gekko_coinbase::{CoinbaseError, CoinbaseVenue};
use gekko_core::{OrderStatus, Side};
use gekko_net::NetError;
use gekko_sim::coinbase::Fault;
use gekko_venue::{RejectReason, SubmitError, VenueAdapter, VenueError};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

mod support;

use support::{Cb, btc, coid, limit_buy, market};

/// A raw limit order far below the market (BTC starts at 60000): it rests.
fn resting(id: &str, price: Decimal) -> NewOrder {
    NewOrder {
        client_order_id: id.to_owned(),
        product_id: "BTC-USD".to_owned(),
        side: Side::Buy,
        config: OrderConfiguration::LimitGtc {
            base_size: dec!(0.001),
            limit_price: price,
            post_only: false,
        },
    }
}

/// Loads the product rules, so a later fault hits the request under test.
async fn warm(venue: &CoinbaseVenue) {
    let infos = venue.instruments(&[btc()]).await.expect("instruments");
    assert_eq!(infos.len(), 1);
}

#[tokio::test]
async fn market_data_endpoints_over_tls() {
    let cb = Cb::start(|_| {}).await;
    let http = cb.client(|_| {});
    let t = http.server_time().await.expect("time");
    assert!(
        (t.epoch_millis - cb.sim.server_time_ms()).abs() < 5_000,
        "{t:?}"
    );
    assert!(t.iso.ends_with('Z'), "{t:?}");

    let all = http.products(&[]).await.expect("products");
    let ids: Vec<&str> = all.iter().map(|p| p.product_id.as_str()).collect();
    assert_eq!(ids, ["BTC-USD", "ETH-USD"]);
    let p = http.product("BTC-USD").await.expect("product");
    assert_eq!(
        (
            p.base_increment,
            p.quote_increment,
            p.base_min_size,
            p.base_max_size,
            p.quote_min_size
        ),
        (
            dec!(0.00000001),
            dec!(0.01),
            dec!(0.00000001),
            dec!(3400),
            dec!(1)
        )
    );
    assert_eq!(p.status, "online");
    assert!(!p.trading_disabled && !p.cancel_only && !p.limit_only && !p.post_only);

    let bba = http
        .best_bid_ask(&["BTC-USD".to_owned()])
        .await
        .expect("best_bid_ask");
    let book = &bba.pricebooks[0];
    assert_eq!(book.product_id, "BTC-USD");
    assert!(book.bids[0].price < book.asks[0].price, "{book:?}");

    let pb = http.product_book("BTC-USD", 5).await.expect("product_book");
    assert!(!pb.pricebook.bids.is_empty() && pb.pricebook.bids.len() <= 5);
    assert!(
        pb.pricebook
            .bids
            .windows(2)
            .all(|w| w[0].price > w[1].price),
        "bids best first"
    );
    assert!(
        pb.pricebook
            .asks
            .windows(2)
            .all(|w| w[0].price < w[1].price),
        "asks best first"
    );

    let venue = cb.venue(|_| {});
    let snap = venue.book_snapshot(&btc()).await.expect("book snapshot");
    assert_eq!(snap.instrument, btc());
    assert!(!snap.bids.is_empty() && !snap.asks.is_empty());
    assert!(snap.ts_ms > 0);
    let infos = venue.instruments(&[]).await.expect("instruments");
    assert_eq!(infos.len(), 2);
    let i = infos.iter().find(|i| i.id == btc()).expect("BTC-USD");
    assert_eq!(
        (i.venue_symbol.as_str(), i.tick_size, i.lot_size),
        ("BTC-USD", dec!(0.01), dec!(0.00000001))
    );
    assert_eq!(
        (i.min_qty, i.max_qty, i.min_notional, i.trading),
        (dec!(0.00000001), dec!(3400), dec!(1), true)
    );
    // A product the venue does not list is a 404 the adapter can tell apart.
    match http.product("DOGE-XYZ").await {
        Err(CoinbaseError::Api {
            status: 404, code, ..
        }) => assert_eq!(code, "NOT_FOUND"),
        other => panic!("unknown product: {other:?}"),
    }
    cb.sim.shutdown().await;
}

#[tokio::test]
async fn accounts_and_orders_follow_the_cursor_over_every_page() {
    let cb = Cb::start(|_| {}).await;
    let http = cb.client(|c| c.page_size = 1);
    let page = http.accounts_page(1, "").await.expect("first page");
    assert_eq!(page.accounts.len(), 1);
    assert!(page.has_next && !page.cursor.is_empty(), "{page:?}");
    let accounts = http.accounts().await.expect("every account");
    let mut currencies: Vec<&str> = accounts.iter().map(|a| a.currency.as_str()).collect();
    currencies.sort_unstable();
    assert_eq!(currencies, ["BTC", "ETH", "USD"]);

    for (i, price) in [dec!(40000), dec!(41000), dec!(42000)]
        .into_iter()
        .enumerate()
    {
        http.create_order(&resting(&format!("gk-page-{i}"), price))
            .await
            .expect("placed");
    }
    let filter = OrderFilter {
        product_ids: vec!["BTC-USD".to_owned()],
        order_status: vec!["OPEN".to_owned()],
        ..OrderFilter::default()
    };
    let first = http
        .orders_page(&filter, "")
        .await
        .expect("first page of orders");
    assert_eq!(first.orders.len(), 1);
    assert!(first.has_next);
    let all = http.list_orders(&filter).await.expect("every order");
    assert_eq!(all.len(), 3, "three pages of one order each");

    let venue = cb.venue(|c| c.page_size = 1);
    let balances = venue.balances().await.expect("balances");
    let usd = balances.iter().find(|b| b.asset == "USD").expect("USD");
    // Three resting buys of 0.001 hold 40 + 41 + 42 USD.
    assert_eq!(usd.locked, dec!(123));
    assert_eq!(usd.free + usd.locked, dec!(100000));
    let open = venue
        .open_orders(&btc())
        .await
        .expect("open orders over pages");
    assert_eq!(open.len(), 3);
    // An order this adapter never placed is found by client order id on a later page.
    let fresh = cb.venue(|c| c.page_size = 1);
    let id = gekko_core::ClientOrderId::parse("gk-page-2").expect("id");
    let q = fresh
        .query_order(&btc(), &id)
        .await
        .expect("query")
        .expect("found on the third page");
    assert_eq!(q.price, Some(dec!(42000)));
    let stats = cb.sim.stats().rest_requests;
    fresh
        .query_order(&btc(), &id)
        .await
        .unwrap()
        .expect("again");
    assert_eq!(
        cb.sim.stats().rest_requests,
        stats + 1,
        "then by its remembered order id"
    );
    cb.sim.shutdown().await;
}

#[tokio::test]
async fn orders_are_placed_fetched_listed_filled_and_cancelled() {
    let cb = Cb::start(|_| {}).await;
    let venue = cb.venue(|_| {});
    let http = venue.http().clone();

    // A resting limit order, through the adapter.
    let req = limit_buy(coid("rest"), dec!(0.002), dec!(50000));
    let u = venue.submit_order(&req).await.expect("submit");
    assert_eq!(
        (u.status, u.qty, u.price),
        (OrderStatus::New, dec!(0.002), Some(dec!(50000)))
    );
    assert_eq!(u.client_order_id, req.client_order_id);
    let raw = http.order(&u.venue_order_id).await.expect("get order");
    assert_eq!(raw["client_order_id"], req.client_order_id.as_str());
    assert_eq!(
        raw["order_configuration"]["limit_limit_gtc"]["limit_price"],
        "50000"
    );
    let q = venue
        .query_order(&btc(), &req.client_order_id)
        .await
        .expect("query")
        .expect("known");
    assert_eq!(q.venue_order_id, u.venue_order_id);

    // A partial fill shows in the order and the fills endpoint.
    let filled = cb.sim.trade_through("BTC-USD", dec!(50000), dec!(0.001));
    assert_eq!(filled, dec!(0.001));
    let q = venue
        .query_order(&btc(), &req.client_order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (q.status, q.filled_qty, q.cum_quote),
        (OrderStatus::PartiallyFilled, dec!(0.001), dec!(50))
    );
    let fills = http
        .fills(std::slice::from_ref(&u.venue_order_id), &[])
        .await
        .expect("fills");
    assert_eq!(fills.len(), 1);
    assert_eq!(
        (fills[0].price, fills[0].size, fills[0].order_id.as_str()),
        (dec!(50000), dec!(0.001), u.venue_order_id.as_str())
    );

    // Cancel: the venue's answer, and a second cancel reports the final state.
    let c = venue
        .cancel_order(&btc(), &req.client_order_id)
        .await
        .expect("cancel");
    assert_eq!(
        (c.status, c.filled_qty),
        (OrderStatus::Cancelled, dec!(0.001))
    );
    let again = venue
        .cancel_order(&btc(), &req.client_order_id)
        .await
        .expect("cancel again");
    assert_eq!(again.status, OrderStatus::Cancelled);

    // A market order fills at once and the submit reports it filled.
    let m = venue
        .submit_order(&market(coid("mkt"), Side::Buy, dec!(0.01)))
        .await
        .expect("market");
    assert_eq!((m.status, m.filled_qty), (OrderStatus::Filled, dec!(0.01)));
    assert!(m.cum_quote > dec!(500), "{m:?}");

    // IOC and FOK map to sor_limit_ioc and limit_limit_fok; far from the market they
    // end without a fill.
    let mut ioc = limit_buy(coid("ioc"), dec!(0.001), dec!(30000));
    ioc.time_in_force = Some(gekko_core::TimeInForce::Ioc);
    let u = venue.submit_order(&ioc).await.expect("ioc");
    assert!(u.status.is_terminal() && u.filled_qty.is_zero(), "{u:?}");
    let raw = http.order(&u.venue_order_id).await.unwrap();
    assert!(
        raw["order_configuration"].get("sor_limit_ioc").is_some(),
        "{raw}"
    );
    let mut fok = limit_buy(coid("fok"), dec!(0.001), dec!(30000));
    fok.time_in_force = Some(gekko_core::TimeInForce::Fok);
    let u = venue.submit_order(&fok).await.expect("fok");
    assert!(u.status.is_terminal() && u.filled_qty.is_zero(), "{u:?}");

    // GTD through the raw client.
    let end = gekko_net::clock::local_now_ms() / 1000 + 3600;
    let gtd = NewOrder {
        config: OrderConfiguration::LimitGtd {
            base_size: dec!(0.001),
            limit_price: dec!(45000),
            end_time: rfc3339(end),
            post_only: true,
        },
        ..resting("gk-gtd", dec!(0))
    };
    let ok = http.create_order(&gtd).await.expect("gtd");
    let raw = http.order(&ok.order_id).await.unwrap();
    assert_eq!(raw["time_in_force"], "GOOD_UNTIL_DATE_TIME");

    // cancel_all: every open BTC-USD order, in one batch.
    for p in [dec!(40000), dec!(41000)] {
        venue
            .submit_order(&limit_buy(coid("all"), dec!(0.001), p))
            .await
            .expect("rest");
    }
    let cancelled = venue.cancel_all(&btc()).await.expect("cancel all");
    assert_eq!(
        cancelled.len(),
        3,
        "two resting buys and the GTD: {cancelled:?}"
    );
    assert!(cancelled.iter().all(|u| u.status == OrderStatus::Cancelled));
    assert!(venue.open_orders(&btc()).await.unwrap().is_empty());
    assert!(
        venue.cancel_all(&btc()).await.unwrap().is_empty(),
        "nothing open: empty, not an error"
    );
    cb.sim.shutdown().await;
}

fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = gekko_core::calendar::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

#[tokio::test]
async fn unknown_orders_are_none_and_cancel_is_unknown_order() {
    let cb = Cb::start(|_| {}).await;
    let venue = cb.venue(|_| {});
    let id = coid("nobody");
    assert!(
        venue
            .query_order(&btc(), &id)
            .await
            .expect("query")
            .is_none()
    );
    match venue.cancel_order(&btc(), &id).await {
        Err(VenueError::Rejected {
            reason: RejectReason::UnknownOrder,
            ..
        }) => {}
        other => panic!("cancel of an unknown order: {other:?}"),
    }
    match venue
        .http()
        .order("00000000-0000-4000-8000-00000000ffff")
        .await
    {
        Err(CoinbaseError::Api { status: 404, .. }) => {}
        other => panic!("get of an unknown order id: {other:?}"),
    }
    let results = venue
        .http()
        .batch_cancel(&["nope".to_owned()])
        .await
        .expect("batch cancel");
    assert!(!results[0].success);
    assert_eq!(results[0].failure_reason, "UNKNOWN_CANCEL_ORDER");
    cb.sim.shutdown().await;
}

#[tokio::test]
async fn pre_trade_checks_refuse_locally_and_send_nothing() {
    let cb = Cb::start(|c| c.products[0].min_qty = dec!(0.0001)).await;
    let venue = cb.venue(|_| {});
    warm(&venue).await;
    let before = cb.sim.stats().rest_requests;
    let cases = [
        (
            "base_increment",
            limit_buy(coid("inc"), dec!(0.000100001), dec!(50000)),
        ),
        (
            "quote_increment",
            limit_buy(coid("tick"), dec!(0.001), dec!(50000.005)),
        ),
        (
            "base_min_size",
            limit_buy(coid("min"), dec!(0.00005), dec!(50000)),
        ),
        (
            "base_max_size",
            limit_buy(coid("max"), dec!(3401), dec!(50000)),
        ),
        (
            "quote_min_size",
            limit_buy(coid("notional"), dec!(0.0001), dec!(5)),
        ),
        ("base_size", limit_buy(coid("zero"), dec!(0), dec!(50000))),
    ];
    for (rule, req) in cases {
        match venue.submit_order(&req).await {
            Err(SubmitError::NotPlaced(VenueError::Rejected {
                code,
                reason,
                message,
            })) => {
                assert_eq!(code, format!("gekko:{rule}"), "{message}");
                assert_eq!(reason, RejectReason::Filter, "{rule}");
            }
            other => panic!("{rule}: {other:?}"),
        }
    }
    assert_eq!(
        cb.sim.stats().rest_requests,
        before,
        "nothing reached the venue"
    );
    assert!(cb.sim.orders().is_empty());
    // The same order on the increments is accepted.
    let ok = limit_buy(coid("fine"), dec!(0.0001), dec!(50000));
    venue.submit_order(&ok).await.expect("valid order");
    assert_eq!(cb.sim.orders().len(), 1);
    cb.sim.shutdown().await;
}

#[tokio::test]
async fn business_rejects_keep_the_venue_code() {
    let cb = Cb::start(|_| {}).await;
    let venue = cb.venue(|_| {});
    // 100 BTC at 59000 is 5.9M USD against 100000 held.
    let req = limit_buy(coid("poor"), dec!(100), dec!(59000));
    match venue.submit_order(&req).await {
        Err(SubmitError::NotPlaced(VenueError::Rejected { code, reason, .. })) => {
            assert_eq!(
                (code.as_str(), reason),
                ("INSUFFICIENT_FUND", RejectReason::InsufficientFunds)
            );
        }
        other => panic!("insufficient funds: {other:?}"),
    }
    // The refused id was not used: the same id may be sent again.
    let fixed = limit_buy(req.client_order_id.clone(), dec!(0.001), dec!(50000));
    venue
        .submit_order(&fixed)
        .await
        .expect("the id is free after a reject");
    // A raw post-only order that would cross is refused by the venue with its code.
    let crossing = NewOrder {
        config: OrderConfiguration::LimitGtc {
            base_size: dec!(0.001),
            limit_price: dec!(90000),
            post_only: true,
        },
        ..resting("gk-cross", dec!(0))
    };
    match venue.http().create_order(&crossing).await {
        Err(CoinbaseError::Rejected {
            code,
            reason,
            payload,
            ..
        }) => {
            assert_eq!(
                (code.as_str(), reason),
                ("INVALID_LIMIT_PRICE_POST_ONLY", RejectReason::Filter)
            );
            assert!(
                payload.contains("success"),
                "the payload is kept: {payload}"
            );
        }
        other => panic!("post-only crossing: {other:?}"),
    }
    cb.sim.shutdown().await;
}

#[tokio::test]
async fn a_rate_limit_storm_pauses_until_the_reset_and_submits_never_wait() {
    let cb = Cb::start(|_| {}).await;
    let http = cb.client(|c| c.retry.max_attempts = 5);
    cb.sim.inject(Fault::RateLimitStorm {
        duration: Duration::from_millis(1500),
    });
    // The submit meets the 429: refused, not executed, never retried.
    match http.create_order(&resting("gk-storm-1", dec!(50000))).await {
        Err(CoinbaseError::RateLimited { retry_after }) => assert!(retry_after > Duration::ZERO),
        other => panic!("a 429 on submit: {other:?}"),
    }
    let after_429 = cb.sim.stats();
    assert_eq!(after_429.http_429, 1);
    // Inside the reset window nothing is sent: a second submit is refused locally.
    match http.create_order(&resting("gk-storm-2", dec!(50000))).await {
        Err(CoinbaseError::RateLimited { .. }) => {}
        other => panic!("a submit inside the reset window: {other:?}"),
    }
    assert_eq!(
        cb.sim.stats().rest_requests,
        after_429.rest_requests,
        "nothing sent in the window"
    );
    // A read waits out the pause in the limiter and succeeds once the storm is over.
    let started = Instant::now();
    let accounts = http.accounts().await.expect("accounts after the storm");
    assert_eq!(accounts.len(), 3);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    let s = cb.sim.stats();
    assert!(
        s.http_429 <= 3,
        "a request per reset window at most, not a retry storm: {s:?}"
    );
    assert!(cb.sim.orders().is_empty());
    cb.sim.shutdown().await;
}

#[tokio::test]
async fn server_errors_are_retried_for_reads_and_ambiguous_for_submits() {
    let cb = Cb::start(|_| {}).await;
    let venue = cb.venue(|_| {});
    warm(&venue).await;
    cb.sim.inject(Fault::ServerErrors { count: 2 });
    let b = venue
        .balances()
        .await
        .expect("a GET is retried past the 503s");
    assert!(!b.is_empty());
    assert_eq!(cb.sim.stats().http_503, 2);
    cb.sim.inject(Fault::ServerErrors { count: 1 });
    let req = limit_buy(coid("503"), dec!(0.001), dec!(50000));
    match venue.submit_order(&req).await {
        Err(SubmitError::Ambiguous(reason)) => assert!(reason.contains("503"), "{reason}"),
        other => panic!("a 5xx on submit is ambiguous: {other:?}"),
    }
    assert_eq!(
        cb.sim.stats().http_503,
        3,
        "the submit was sent once, not retried"
    );
    // The simulator's 503 executed nothing: the lookup proves it.
    assert!(
        venue
            .query_order(&btc(), &req.client_order_id)
            .await
            .unwrap()
            .is_none()
    );
    cb.sim.shutdown().await;
}

#[tokio::test]
async fn a_lost_submit_answer_is_ambiguous_and_leaves_exactly_one_order() {
    let cb = Cb::start(|_| {}).await;
    let venue = cb.venue(|_| {});
    warm(&venue).await;
    cb.sim.inject(Fault::OrderTimeout);
    let req = limit_buy(coid("lost"), dec!(0.001), dec!(50000));
    match venue.submit_order(&req).await {
        Err(SubmitError::Ambiguous(reason)) => assert!(reason.contains("timed out"), "{reason}"),
        other => panic!("a timeout after sending is ambiguous: {other:?}"),
    }
    // Resolved by lookup: found by client order id without knowing its order id.
    let found = venue
        .query_order(&btc(), &req.client_order_id)
        .await
        .expect("query")
        .expect("the order whose answer was lost exists");
    assert_eq!((found.status, found.qty), (OrderStatus::New, dec!(0.001)));
    // Sending it again is refused locally as a duplicate and places nothing.
    match venue.submit_order(&req).await {
        Err(SubmitError::NotPlaced(VenueError::Rejected {
            reason: RejectReason::Duplicate,
            ..
        })) => {}
        other => panic!("a resubmit of an in-flight id: {other:?}"),
    }
    assert_eq!(
        cb.orders_named(&req.client_order_id),
        1,
        "exactly one order at the venue"
    );
    let open = venue.open_orders(&btc()).await.unwrap();
    assert_eq!(
        open.iter()
            .filter(|o| o.client_order_id == req.client_order_id)
            .count(),
        1
    );
    // A different adapter (a restarted gateway) finds it too, by listing.
    let fresh = cb.venue(|_| {});
    let again = fresh
        .query_order(&btc(), &req.client_order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.venue_order_id, found.venue_order_id);
    cb.sim.shutdown().await;
}

#[tokio::test]
async fn an_expired_jwt_resyncs_the_clock_once_and_is_sent_again() {
    let cb = Cb::start(|_| {}).await;
    let venue = cb.venue(|_| {});
    venue.verify_credentials().await.expect("valid key");
    assert_eq!(cb.sim.stats().auth_failures, 0);
    // The venue clock jumps 5 minutes ahead: every token signed on the old offset is
    // expired there. The 401 makes the client resync from /time and send once more.
    cb.sim.set_clock_skew(300_000);
    venue
        .verify_credentials()
        .await
        .expect("resynced after the 401 and accepted");
    assert_eq!(
        cb.sim.stats().auth_failures,
        1,
        "one refusal, then accepted"
    );
    assert!(
        (venue.clock_offset_ms() - 300_000).abs() < 2_000,
        "{}",
        venue.clock_offset_ms()
    );
    cb.sim.set_clock_skew(-300_000);
    // Within 30 s of the last resync a 401 is reported as it is (no resync storm)...
    match venue.http().accounts_page(1, "").await {
        Err(e @ CoinbaseError::Unauthorized { .. }) => assert!(!e.is_retryable()),
        other => panic!("401 is Unauthorized: {other:?}"),
    }
    match venue.verify_credentials().await {
        Err(VenueError::Auth(msg)) => assert!(msg.contains("401"), "{msg}"),
        other => panic!("an expired JWT: {other:?}"),
    }
    // ...and an explicit sync repairs it.
    let report = venue
        .sync_clock()
        .await
        .expect("clock sync over the public /time");
    assert!((report.offset_ms + 300_000).abs() < 2_000, "{report:?}");
    venue
        .verify_credentials()
        .await
        .expect("tokens on the venue clock are accepted");
    cb.sim.shutdown().await;
}

#[tokio::test]
async fn an_unknown_key_and_an_untrusted_certificate_are_refused() {
    let cb = Cb::start(|_| {}).await;
    let other = std::sync::Arc::new(
        gekko_coinbase::CdpKey::generate(
            "organizations/x/apiKeys/unknown",
            gekko_coinbase::JwtAlgorithm::EdDsa,
        )
        .unwrap(),
    );
    let stranger = cb.venue(|c| c.key = other);
    match stranger.verify_credentials().await {
        Err(VenueError::Auth(_)) => {}
        other => panic!("an unregistered key: {other:?}"),
    }
    // Without the simulator's certificate the TLS handshake fails: nothing was sent.
    let untrusting = cb.client(|c| c.extra_roots_pem.clear());
    match untrusting.server_time().await {
        Err(CoinbaseError::Net(NetError::Connect(_))) => {}
        other => panic!("an untrusted certificate: {other:?}"),
    }
    cb.sim.shutdown().await;
}

#[tokio::test]
async fn a_bad_config_names_every_problem() {
    let cb = Cb::start(|_| {}).await;
    let mut c = cb.config();
    c.rest_base = "http://api.example.com".into();
    c.extra_roots_pem =
        vec!["-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n".into()];
    c.public_rate_per_s = 0;
    match CoinbaseVenue::new(c) {
        Err(CoinbaseError::Config(problems)) => assert_eq!(problems.len(), 3, "{problems:#?}"),
        other => panic!("bad config: {other:?}"),
    }
    cb.sim.shutdown().await;
}

#[tokio::test]
async fn remaining_zero_pauses_until_the_reset_so_no_429_is_ever_met() {
    // The venue allows 5 private requests a second; the client believes 30. The
    // x-ratelimit-remaining header, not the local budget, must keep it inside the limit.
    let cb = Cb::start(|c| c.private_rate_per_s = 5).await;
    let http = cb.client(|c| c.retry.max_attempts = 1);
    let started = Instant::now();
    for _ in 0..12 {
        http.accounts_page(1, "")
            .await
            .expect("every request admitted");
    }
    let s = cb.sim.stats();
    assert_eq!(
        s.http_429, 0,
        "the client paused on remaining 0 instead of meeting a 429: {s:?}"
    );
    // 12 requests at 5 a (venue) second span at least two window boundaries.
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    cb.sim.shutdown().await;
}

/// Stops the mock server when dropped, so no task outlives its test.
struct Server(tokio::task::JoinHandle<std::io::Result<()>>);

impl Drop for Server {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A plain-HTTP mock on loopback (the config allows `http://` there) answering every
/// request with `status` and `body`, counting requests.
async fn mock(
    status: u16,
    body: &'static str,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicU32>, Server) {
    use std::sync::atomic::{AtomicU32, Ordering};
    let hits = std::sync::Arc::new(AtomicU32::new(0));
    let counter = std::sync::Arc::clone(&hits);
    let app = axum::Router::new().fallback(move || {
        let counter = std::sync::Arc::clone(&counter);
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            (
                axum::http::StatusCode::from_u16(status).expect("status"),
                [("content-type", "application/json")],
                body,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = Server(tokio::spawn(
        async move { axum::serve(listener, app).await },
    ));
    (format!("http://{addr}"), hits, server)
}

#[tokio::test]
async fn missing_scopes_are_auth_and_never_retried_while_5xx_reads_are() {
    use std::sync::atomic::Ordering;
    let cb = Cb::start(|_| {}).await;
    let (url, hits, _server) = mock(
        403,
        r#"{"error":"PERMISSION_DENIED","message":"Missing required scopes","error_details":"Missing required scopes"}"#,
    )
    .await;
    let venue = cb.venue(|c| {
        c.rest_base = url;
        c.extra_roots_pem.clear();
    });
    match venue.verify_credentials().await {
        Err(VenueError::Auth(msg)) => assert!(msg.contains("Missing required scopes"), "{msg}"),
        other => panic!("403: {other:?}"),
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1, "a 403 is not retried");

    let (url, hits, _server) = mock(502, "<html>bad gateway</html>").await;
    let http = cb.client(|c| {
        c.rest_base = url;
        c.extra_roots_pem.clear();
        c.retry.max_attempts = 3;
    });
    match http.accounts_page(1, "").await {
        Err(CoinbaseError::Net(NetError::Status {
            status: 502, body, ..
        })) => {
            assert!(body.contains("bad gateway"), "the payload is kept: {body}");
        }
        other => panic!("502: {other:?}"),
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        3,
        "a GET is retried up to the policy"
    );
    let before = hits.load(Ordering::SeqCst);
    match http.create_order(&resting("gk-502", dec!(50000))).await {
        Err(e) => assert!(e.outcome_unknown(), "a 5xx on submit is ambiguous: {e}"),
        Ok(ok) => panic!("a 502 accepted an order: {ok:?}"),
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        before + 1,
        "a submit is sent once"
    );
    cb.sim.shutdown().await;
}
