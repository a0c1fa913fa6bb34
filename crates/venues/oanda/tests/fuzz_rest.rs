//! Fuzz-style property tests of every OANDA REST parser: arbitrary bytes, arbitrary
//! strings, mutated copies of the reference payloads in `test_data/` and JSON-shaped
//! noise go through each typed response model, the one transaction and order mapping
//! ([`OrderTracker`], [`order_update_from_order`]), the instrument rules and margin
//! arithmetic, the adapter's position and summary mappings, the timestamp parser and
//! the error-body classification. Each must return without panicking (overflowing
//! decimals, huge integers and invalid UTF-8 included); the fixtures themselves must
//! parse to what they say.

use gekko_core::OrderStatus;
use gekko_net::VenueHooks;
use gekko_oanda::OandaError;
use gekko_oanda::adapter::{margin_summary, position};
use gekko_oanda::common::models::{
    AccountSummaryResponse, AccountsResponse, ChangesResponse, ErrorBody, InstrumentsResponse,
    OrderResponse, OrderTransactions, OrdersResponse, PositionsResponse, PricingResponse,
    TradesResponse, TransactionResponse, TransactionsResponse,
};
use gekko_oanda::common::{
    InstrumentRules, OrderTracker, instrument, order_update_from_order, parse_time_ns,
};
use gekko_oanda::http::OandaHooks;
use gekko_venue::RejectReason;
use proptest::prelude::*;
use reqwest::header::HeaderMap;
use rust_decimal::Decimal;

const FIXTURES: &[&str] = &[
    include_str!("../test_data/rest_accounts.json"),
    include_str!("../test_data/rest_account_summary.json"),
    include_str!("../test_data/rest_instruments.json"),
    include_str!("../test_data/rest_pricing.json"),
    include_str!("../test_data/rest_open_positions.json"),
    include_str!("../test_data/rest_pending_orders.json"),
    include_str!("../test_data/rest_changes.json"),
    include_str!("../test_data/order_create_market_filled.json"),
    include_str!("../test_data/order_create_ioc_partial.json"),
    include_str!("../test_data/order_reject_insufficient_margin.json"),
    include_str!("../test_data/transaction_order_fill.json"),
    include_str!("../test_data/rest_cancel_unknown.json"),
    include_str!("../test_data/rest_error_401.json"),
];

fn parse<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, serde_json::Error> {
    serde_json::from_str(body)
}

/// Runs every REST parser and mapping on `body`. Results are discarded; only panics
/// matter.
fn all_parsers(body: &str) {
    let _ = parse::<AccountsResponse>(body);
    if let Ok(s) = parse::<AccountSummaryResponse>(body) {
        let _ = margin_summary(&s.account);
    }
    if let Ok(r) = parse::<InstrumentsResponse>(body) {
        for i in &r.instruments {
            if let Some(rules) = InstrumentRules::from_venue(i) {
                let _ = rules.info();
                for (q, p) in [
                    (Decimal::MAX, Some(Decimal::MAX)),
                    (Decimal::ONE, Some(Decimal::MIN)),
                    (i.minimum_trade_size, Some(i.margin_rate)),
                ] {
                    let _ = rules.check(q, p);
                    let _ =
                        rules.required_margin(q, p.unwrap_or_default(), "USD", Some(Decimal::MAX));
                    let _ = rules.required_margin(q, Decimal::ZERO, &rules.id.base, None);
                }
            }
        }
    }
    let _ = parse::<PricingResponse>(body);
    if let Ok(r) = parse::<PositionsResponse>(body) {
        for p in &r.positions {
            let _ = position(p);
        }
    }
    let _ = parse::<TradesResponse>(body);
    let mut tracker = OrderTracker::new("USD");
    if let Ok(r) = parse::<OrderResponse>(body) {
        let _ = order_update_from_order(&r.order);
        let _ = r.order.has_fills();
    }
    if let Ok(r) = parse::<OrdersResponse>(body) {
        for o in &r.orders {
            if let Some(u) = order_update_from_order(o) {
                tracker.seed(u);
            }
        }
    }
    if let Ok(r) = parse::<OrderTransactions>(body) {
        for tx in r.order_chain().chain(r.close_chain()) {
            let _ = tracker.apply(tx);
        }
    }
    if let Ok(r) = parse::<ChangesResponse>(body) {
        for tx in &r.changes.transactions {
            let _ = tracker.apply(tx);
        }
    }
    if let Ok(r) = parse::<TransactionResponse>(body) {
        let _ = tracker.apply(&r.transaction);
        // The same fill twice on one order: cumulative sums must not overflow into a
        // panic either.
        let _ = tracker.apply(&r.transaction);
    }
    if let Ok(r) = parse::<TransactionsResponse>(body) {
        for tx in &r.transactions {
            let _ = tracker.apply(tx);
        }
    }
    let _ = parse::<ErrorBody>(body);
    let _ = parse_time_ns(body);
    let _ = instrument(body);
    let h = OandaHooks::new("101-001-1234567-001");
    let headers = HeaderMap::new();
    for status in [400, 401, 403, 404, 405, 429, 500, 503] {
        let _ = h.parse_error(status, &headers, body);
    }
}

#[test]
fn the_fixtures_parse() {
    let [
        accounts,
        summary,
        instruments,
        pricing,
        positions,
        pending,
        changes,
        market,
        ioc,
        reject,
        fill,
        cancel_unknown,
        e401,
    ] = FIXTURES
    else {
        panic!("fixture list changed");
    };
    assert_eq!(
        parse::<AccountsResponse>(accounts).unwrap().accounts.len(),
        2
    );
    let s = parse::<AccountSummaryResponse>(summary).unwrap();
    let m = margin_summary(&s.account);
    assert_eq!(
        (m.currency.as_str(), m.margin_available),
        ("USD", "97787.66".parse().unwrap())
    );
    assert_eq!(m.margin_closeout_percent, "0.011".parse().unwrap());
    let ins = parse::<InstrumentsResponse>(instruments).unwrap();
    let rules = InstrumentRules::from_venue(&ins.instruments[0]).unwrap();
    assert_eq!(rules.margin_rate, "0.0333".parse().unwrap());
    assert_eq!(
        parse::<PricingResponse>(pricing).unwrap().prices[0]
            .bids
            .len(),
        2
    );
    let p = position(&parse::<PositionsResponse>(positions).unwrap().positions[0]).unwrap();
    assert_eq!(p.qty, Decimal::from(-2500));
    let o = &parse::<OrdersResponse>(pending).unwrap().orders[0];
    assert!(o.has_fills());
    let mut t = OrderTracker::new("USD");
    t.seed(order_update_from_order(o).unwrap());
    let ch = parse::<ChangesResponse>(changes).unwrap();
    let out = t.apply(&ch.changes.transactions[0]);
    assert_eq!(out.order.unwrap().status, OrderStatus::PartiallyFilled);
    assert_eq!(out.fill.unwrap().trade_id, "6373");
    assert_eq!(t.apply(&ch.changes.transactions[1]), Default::default());
    assert_eq!(
        parse::<OrderTransactions>(market)
            .unwrap()
            .order_chain()
            .count(),
        2
    );
    assert_eq!(
        parse::<OrderTransactions>(ioc)
            .unwrap()
            .order_chain()
            .count(),
        3
    );
    let h = OandaHooks::new("101-001-1234567-001");
    let none = HeaderMap::new();
    assert!(matches!(
        h.parse_error(400, &none, reject),
        Some(OandaError::Rejected {
            reason: RejectReason::InsufficientFunds,
            ..
        })
    ));
    assert!(parse::<TransactionResponse>(fill).is_ok());
    assert!(matches!(
        h.parse_error(404, &none, cancel_unknown),
        Some(OandaError::Rejected {
            reason: RejectReason::UnknownOrder,
            ..
        })
    ));
    assert!(matches!(
        h.parse_error(401, &none, e401),
        Some(OandaError::Unauthorized { .. })
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
        Just("\"79228162514264337593543950335\"".to_owned()),
        Just("\"-79228162514264337593543950335\"".to_owned()),
        Just("\"-0.000000000000000000000000001\"".to_owned()),
        Just("\"1e400\"".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("true".to_owned()),
        Just("\"ORDER_FILL\"".to_owned()),
        Just("\"MARKET_ORDER\"".to_owned()),
        Just("\"LIMIT_ORDER\"".to_owned()),
        Just("\"ORDER_CANCEL\"".to_owned()),
        Just("\"EUR_USD\"".to_owned()),
        Just("\"1\"".to_owned()),
        "\"[0-9A-Z_.:T+-]{0,24}\"",
        any::<i64>().prop_map(|n| n.to_string()),
    ];
    let key = prop_oneof![
        Just("id"),
        Just("type"),
        Just("time"),
        Just("orderID"),
        Just("clientOrderID"),
        Just("instrument"),
        Just("units"),
        Just("price"),
        Just("commission"),
        Just("financing"),
        Just("guaranteedExecutionFee"),
        Just("reason"),
        Just("rejectReason"),
        Just("state"),
        Just("currentUnits"),
        Just("displayPrecision"),
        Just("tradeUnitsPrecision"),
        Just("minimumTradeSize"),
        Just("maximumOrderUnits"),
        Just("marginRate"),
        Just("errorMessage"),
        Just("errorCode"),
        Just("long"),
        Just("short"),
        Just("marginAvailable"),
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
        all_parsers(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,256}") {
        all_parsers(&s);
    }

    #[test]
    fn mutated_fixtures_never_panic(bytes in mutated()) {
        all_parsers(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn shaped_json_never_panics(body in shaped()) {
        all_parsers(&body);
        // The same fields nested where each parser looks.
        for wrap in [
            "order", "transaction", "account",
        ] {
            all_parsers(&format!("{{\"{wrap}\":{body}}}"));
        }
        for list in ["orders", "transactions", "positions", "instruments", "trades", "accounts"] {
            all_parsers(&format!("{{\"{list}\":[{body},{body}]}}"));
        }
        all_parsers(&format!("{{\"changes\":{{\"transactions\":[{body},{body}]}}}}"));
        for tx in ["orderCreateTransaction", "orderFillTransaction", "orderCancelTransaction", "orderRejectTransaction", "longOrderFillTransaction"] {
            all_parsers(&format!("{{\"{tx}\":{body}}}"));
        }
    }
}
