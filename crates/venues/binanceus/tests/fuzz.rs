//! Fuzz-style property tests: every parser (websocket and REST) is fed arbitrary strings,
//! arbitrary bytes, and mutated copies of the reference payloads, and must return
//! `Ok`/`Err` without panicking.

use gekko_binanceus::http::models::{
    self, Account, ApiErrorBody, BookTicker, CancelAllEntry, DepthSnapshot, Empty, ExchangeInfo,
    ListenKey, OrderResponse, ServerTime,
};
use gekko_binanceus::websocket::parse;
use proptest::prelude::*;

const FIXTURES: &[&str] = &[
    include_str!("../test_data/ws_book_ticker.json"),
    include_str!("../test_data/ws_trade.json"),
    include_str!("../test_data/ws_depth_update.json"),
    include_str!("../test_data/ws_combined_depth.json"),
    include_str!("../test_data/ws_execution_report.json"),
    include_str!("../test_data/ws_execution_report_trade.json"),
    include_str!("../test_data/ws_execution_report_cancel.json"),
    include_str!("../test_data/ws_outbound_account_position.json"),
    include_str!("../test_data/ws_balance_update.json"),
    include_str!("../test_data/rest_time.json"),
    include_str!("../test_data/rest_depth.json"),
    include_str!("../test_data/rest_book_ticker.json"),
    include_str!("../test_data/rest_exchange_info.json"),
    include_str!("../test_data/rest_account.json"),
    include_str!("../test_data/rest_order_result.json"),
    include_str!("../test_data/rest_order_full.json"),
    include_str!("../test_data/rest_query_order.json"),
    include_str!("../test_data/rest_cancel_order.json"),
    include_str!("../test_data/rest_cancel_open_orders.json"),
    include_str!("../test_data/rest_open_orders.json"),
    include_str!("../test_data/rest_listen_key.json"),
    include_str!("../test_data/rest_error.json"),
];

/// Runs every parser on `s`. Results are discarded; only panics matter.
fn all_parsers(s: &str) {
    let _ = parse(s);
    let _ = models::parse::<ServerTime>(s);
    let _ = models::parse::<ExchangeInfo>(s);
    let _ = models::parse::<DepthSnapshot>(s);
    let _ = models::parse::<BookTicker>(s);
    let _ = models::parse::<Account>(s);
    let _ = models::parse::<OrderResponse>(s);
    let _ = models::parse::<Vec<OrderResponse>>(s);
    let _ = models::parse::<Vec<CancelAllEntry>>(s);
    let _ = models::parse::<ListenKey>(s);
    let _ = models::parse::<ApiErrorBody>(s);
    let _ = models::parse::<Empty>(s);
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    FlipByte(usize, u8),
    Insert(usize, char),
    Delete(usize, usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::FlipByte(i, b)),
        (
            any::<usize>(),
            prop::sample::select(vec![
                '"', '{', '}', '[', ']', ',', ':', '-', '0', 'e', '\\', 'n', '\u{0}', 'é'
            ])
        )
            .prop_map(|(i, c)| Mutation::Insert(i, c)),
        (any::<usize>(), 0usize..16).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<usize>(), 0usize..32).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn apply(base: &str, muts: &[Mutation]) -> Vec<u8> {
    let mut b = base.as_bytes().to_vec();
    for m in muts {
        let len = b.len().max(1);
        match *m {
            Mutation::Truncate(i) => b.truncate(i % len),
            Mutation::FlipByte(i, x) => {
                if !b.is_empty() {
                    let i = i % b.len();
                    b[i] ^= x;
                }
            }
            Mutation::Insert(i, c) => {
                let mut buf = [0; 4];
                let at = i % (b.len() + 1);
                b.splice(at..at, c.encode_utf8(&mut buf).bytes());
            }
            Mutation::Delete(i, n) => {
                if !b.is_empty() {
                    let at = i % b.len();
                    let end = (at + n).min(b.len());
                    b.drain(at..end);
                }
            }
            Mutation::Duplicate(i, n) => {
                if !b.is_empty() {
                    let at = i % b.len();
                    let end = (at + n).min(b.len());
                    let chunk = b[at..end].to_vec();
                    b.splice(at..at, chunk);
                }
            }
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,256}") {
        all_parsers(&s);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..256)) {
        // Frames arrive as text; invalid UTF-8 is replaced, the way a lossy reader would.
        all_parsers(&String::from_utf8_lossy(&b));
    }

    #[test]
    fn mutated_reference_payloads_never_panic(
        idx in 0..FIXTURES.len(),
        muts in prop::collection::vec(mutation(), 1..6),
    ) {
        let bytes = apply(FIXTURES[idx], &muts);
        all_parsers(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn json_shaped_noise_never_panics(
        v in prop::collection::vec((prop::sample::select(vec!["e", "E", "s", "u", "U", "b", "a", "B", "A", "stream", "data", "result", "id", "code", "msg", "x", "X", "c", "C", "z", "Z"]),
            prop_oneof![
                Just("null".to_owned()),
                Just("\"trade\"".to_owned()),
                Just("\"depthUpdate\"".to_owned()),
                Just("\"executionReport\"".to_owned()),
                Just("[[\"1\",\"2\"]]".to_owned()),
                Just("{}".to_owned()),
                any::<i64>().prop_map(|n| n.to_string()),
                any::<f64>().prop_map(|n| format!("{n:?}")),
                "[a-z0-9.]{0,12}".prop_map(|s| format!("\"{s}\"")),
            ]), 0..10),
    ) {
        let body = v.iter().map(|(k, val)| format!("\"{k}\":{val}")).collect::<Vec<_>>().join(",");
        all_parsers(&format!("{{{body}}}"));
        all_parsers(&format!("{{\"stream\":\"x\",\"data\":{{{body}}}}}"));
    }
}

#[test]
fn every_reference_payload_parses_somewhere() {
    for f in FIXTURES {
        let ws_ok = parse(f).is_ok();
        let rest_ok = models::parse::<serde_json::Value>(f).is_ok();
        assert!(ws_ok || rest_ok, "{f}");
    }
}
