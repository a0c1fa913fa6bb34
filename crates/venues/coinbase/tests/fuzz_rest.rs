//! Fuzz-style property tests of every Coinbase REST parser: arbitrary bytes, arbitrary
//! strings, mutated copies of the reference payloads in `test_data/` and JSON-shaped
//! noise go through each typed response model, the one order parser
//! ([`order_update`]), the timestamp parser, the error-body classification and the
//! rate-limit header reading. Each must return without panicking (overflowing decimals,
//! huge integers and invalid UTF-8 included); the fixtures themselves must parse.

use std::sync::Arc;

use gekko_coinbase::common::{instrument, order_update, order_update_from_slice, parse_rfc3339_ms};
use gekko_coinbase::http::CoinbaseHooks;
use gekko_coinbase::http::models::{
    AccountsPage, ApiErrorBody, BatchCancelResponse, BestBidAsk, CreateOrderResponse, FillsPage,
    GetOrder, OrdersPage, Product, ProductBook, ProductsList, ServerTime, parse,
};
use gekko_net::{ClockOffset, VenueHooks};
use proptest::prelude::*;
use reqwest::header::{HeaderMap, HeaderValue};

const FIXTURES: &[&str] = &[
    include_str!("../test_data/rest_accounts.json"),
    include_str!("../test_data/rest_order.json"),
    include_str!("../test_data/rest_orders_batch.json"),
    include_str!("../test_data/rest_product.json"),
    include_str!("../test_data/rest_best_bid_ask.json"),
    include_str!("../test_data/rest_product_book.json"),
    include_str!("../test_data/rest_time.json"),
    include_str!("../test_data/rest_create_order_success.json"),
    include_str!("../test_data/rest_create_order_failure.json"),
    include_str!("../test_data/rest_batch_cancel.json"),
    include_str!("../test_data/rest_fills.json"),
    include_str!("../test_data/rest_error_403.json"),
];

fn hooks() -> CoinbaseHooks {
    CoinbaseHooks::new(Arc::new(ClockOffset::new("fuzz", 3)))
}

/// Runs every REST parser on `body`. Results are discarded; only panics matter.
fn all_parsers(body: &str) {
    let _ = parse::<AccountsPage>(body);
    let _ = parse::<ProductsList>(body);
    let _ = parse::<Product>(body);
    let _ = parse::<BestBidAsk>(body);
    let _ = parse::<ProductBook>(body);
    let _ = parse::<ServerTime>(body);
    if let Ok(r) = parse::<CreateOrderResponse>(body) {
        let _ = r.failure();
    }
    let _ = parse::<BatchCancelResponse>(body);
    let _ = parse::<FillsPage>(body);
    let _ = parse::<ApiErrorBody>(body);
    if let Ok(o) = parse::<GetOrder>(body) {
        let _ = order_update(&o.order);
    }
    if let Ok(p) = parse::<OrdersPage>(body) {
        for o in &p.orders {
            let _ = order_update(o);
        }
    }
    let _ = order_update_from_slice(body.as_bytes());
    let _ = parse_rfc3339_ms(body);
    let _ = instrument(body);
    let h = hooks();
    let headers = HeaderMap::new();
    for status in [400, 401, 403, 404, 429, 500, 503] {
        let _ = h.parse_error(status, &headers, body);
    }
    if let Ok(v) = HeaderValue::from_str(body) {
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-reset", v.clone());
        headers.insert("x-ratelimit-remaining", v.clone());
        headers.insert("x-ratelimit-limit", v);
        let _ = h.reset_wait(&headers);
    }
}

#[test]
fn the_fixtures_parse() {
    let [
        accounts,
        order,
        batch,
        product,
        bba,
        book,
        time,
        ok,
        failed,
        cancel,
        fills,
        e403,
    ] = FIXTURES
    else {
        panic!("fixture list changed");
    };
    assert_eq!(parse::<AccountsPage>(accounts).unwrap().accounts.len(), 4);
    let o = order_update(&parse::<GetOrder>(order).unwrap().order).unwrap();
    assert_eq!(o.status, gekko_core::OrderStatus::PartiallyFilled);
    assert_eq!(o.ts_ms, 1_775_572_260_500);
    let page = parse::<OrdersPage>(batch).unwrap();
    assert!(page.has_next);
    assert!(page.orders.iter().all(|o| order_update(o).is_ok()));
    assert_eq!(parse::<Product>(product).unwrap().status, "online");
    assert_eq!(parse::<BestBidAsk>(bba).unwrap().pricebooks.len(), 1);
    assert_eq!(parse::<ProductBook>(book).unwrap().pricebook.bids.len(), 2);
    assert_eq!(
        parse::<ServerTime>(time).unwrap().epoch_millis,
        1_775_572_200_123
    );
    assert!(parse::<CreateOrderResponse>(ok).unwrap().success);
    assert_eq!(
        parse::<CreateOrderResponse>(failed).unwrap().failure().0,
        "INSUFFICIENT_FUND"
    );
    assert_eq!(
        parse::<BatchCancelResponse>(cancel).unwrap().results.len(),
        2
    );
    assert_eq!(parse::<FillsPage>(fills).unwrap().fills.len(), 1);
    assert!(matches!(
        hooks().parse_error(403, &HeaderMap::new(), e403),
        Some(gekko_coinbase::CoinbaseError::Forbidden { .. })
    ));
}

/// A fixture with a few bytes overwritten, inserted or removed.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        0..FIXTURES.len(),
        prop::collection::vec((any::<u16>(), any::<u8>(), 0u8..3), 1..8),
    )
        .prop_map(|(i, edits)| {
            let mut b = FIXTURES[i].as_bytes().to_vec();
            for (pos, byte, op) in edits {
                if b.is_empty() {
                    break;
                }
                let at = usize::from(pos) % b.len();
                match op {
                    0 => b[at] = byte,
                    1 => b.insert(at, byte),
                    _ => {
                        b.remove(at);
                    }
                }
            }
            b
        })
}

/// JSON that has the right keys but values of any type and size.
fn shaped() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        Just("null".to_owned()),
        Just("\"\"".to_owned()),
        Just("\"79228162514264337593543950336\"".to_owned()),
        Just("\"-0.000000000000000000000000001\"".to_owned()),
        Just("\"1e400\"".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("true".to_owned()),
        "\"[0-9A-Z.:T+-]{0,24}\"",
        any::<i64>().prop_map(|n| n.to_string()),
    ];
    let key = prop_oneof![
        Just("order_id"),
        Just("client_order_id"),
        Just("product_id"),
        Just("side"),
        Just("status"),
        Just("filled_size"),
        Just("average_filled_price"),
        Just("filled_value"),
        Just("leaves_quantity"),
        Just("limit_price"),
        Just("created_time"),
        Just("last_fill_time"),
        Just("order_configuration"),
        Just("base_increment"),
        Just("quote_increment"),
        Just("epochMillis"),
        Just("success"),
        Just("error_response"),
        Just("accounts"),
        Just("cursor"),
        Just("has_next"),
        Just("orders"),
        Just("order"),
        Just("results"),
        Just("fills"),
        Just("price"),
        Just("size"),
        Just("pricebook"),
        Just("pricebooks"),
        Just("error"),
    ];
    prop::collection::vec((key, value), 0..12).prop_map(|kv| {
        let fields: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", fields.join(","))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = order_update_from_slice(&bytes);
        all_parsers(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,256}") {
        all_parsers(&s);
    }

    #[test]
    fn mutated_fixtures_never_panic(bytes in mutated()) {
        let _ = order_update_from_slice(&bytes);
        all_parsers(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn shaped_json_never_panics(body in shaped()) {
        all_parsers(&body);
        // The same fields as an order, nested where the parsers look.
        all_parsers(&format!("{{\"order\":{body}}}"));
        all_parsers(&format!("{{\"orders\":[{body},{body}],\"has_next\":false}}"));
        all_parsers(&format!("{{\"order_id\":\"o\",\"client_order_id\":\"gk1\",\"product_id\":\"BTC-USD\",\"side\":\"BUY\",\"status\":\"OPEN\",\"order_configuration\":{{\"limit_limit_gtc\":{body}}}}}"));
    }
}
