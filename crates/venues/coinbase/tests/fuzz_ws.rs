//! Fuzz-style property tests of every Coinbase websocket parser: arbitrary strings,
//! arbitrary bytes, mutated copies of the recorded payloads and JSON-shaped noise go
//! through [`parse`], the [`sequence_num`] scan, and for whatever parses as a `user`
//! message on through [`order_update`] and the [`CoinbaseFillTracker`]. Each must return
//! without panicking (overflowing decimals included).

use gekko_coinbase::websocket::{
    CoinbaseFillTracker, CoinbaseWsMessage, order_update, parse, sequence_num,
};
use proptest::prelude::*;

const FIXTURES: &[&str] = &[
    include_str!("../test_data/ws_l2_snapshot.json"),
    include_str!("../test_data/ws_l2_update.json"),
    include_str!("../test_data/ws_ticker.json"),
    include_str!("../test_data/ws_market_trades.json"),
    include_str!("../test_data/ws_heartbeats.json"),
    include_str!("../test_data/ws_subscriptions.json"),
    include_str!("../test_data/ws_error.json"),
    include_str!("../test_data/ws_user_order.json"),
    include_str!("../test_data/ws_user_snapshot.json"),
];

/// Runs every parser on `s`, feeding user orders through one tracker so state carries
/// across frames. Results are discarded; only panics matter.
fn all_parsers(s: &str, tracker: &mut CoinbaseFillTracker) {
    let _ = sequence_num(s);
    let Ok(msg) = parse(s) else { return };
    let _ = msg.header().map(|h| h.ts_ms());
    if let CoinbaseWsMessage::User { events, .. } = msg {
        for e in &events {
            for o in &e.orders {
                if let Ok(mut u) = order_update(o, 0) {
                    let _ = tracker.apply(e.kind, o, &mut u);
                }
            }
        }
    }
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
                '"', '{', '}', '[', ']', ',', ':', '-', '0', '9', 'e', '.', '\\', 'n', '\u{0}', 'é'
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

/// Decimal-shaped strings, extremes included.
fn decimal_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("79228162514264337593543950335".to_owned()),
        Just("-79228162514264337593543950335".to_owned()),
        Just("1e28".to_owned()),
        Just("1e-28".to_owned()),
        Just("9e99999".to_owned()),
        Just("0.0000000000000000000000000001".to_owned()),
        Just(String::new()),
        "-?[0-9]{0,30}(\\.[0-9]{0,30})?",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,256}") {
        all_parsers(&s, &mut CoinbaseFillTracker::new());
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..256)) {
        // Frames arrive as text; invalid UTF-8 is replaced, the way a lossy reader would.
        all_parsers(&String::from_utf8_lossy(&b), &mut CoinbaseFillTracker::new());
    }

    #[test]
    fn mutated_reference_payloads_never_panic(
        idx in 0..FIXTURES.len(),
        muts in prop::collection::vec(mutation(), 1..6),
    ) {
        let bytes = apply(FIXTURES[idx], &muts);
        all_parsers(&String::from_utf8_lossy(&bytes), &mut CoinbaseFillTracker::new());
    }

    #[test]
    fn user_orders_with_extreme_numbers_never_panic(
        states in prop::collection::vec(
            (decimal_text(), decimal_text(), decimal_text(), decimal_text(), decimal_text(), any::<bool>()),
            1..6,
        ),
    ) {
        // One order through several states, so the tracker subtracts extreme values.
        let mut tracker = CoinbaseFillTracker::new();
        for (cum, leaves, value, avg, fees, snapshot) in states {
            let kind = if snapshot { "snapshot" } else { "update" };
            let frame = format!(
                r#"{{"channel":"user","sequence_num":1,"timestamp":"2026-04-07T14:30:03Z","events":[{{"type":"{kind}","orders":[{{"order_id":"o-1","client_order_id":"gk1","product_id":"BTC-USD","order_side":"BUY","status":"OPEN","cumulative_quantity":"{cum}","leaves_quantity":"{leaves}","filled_value":"{value}","avg_price":"{avg}","total_fees":"{fees}","limit_price":"{avg}"}}]}}]}}"#
            );
            all_parsers(&frame, &mut tracker);
        }
    }

    #[test]
    fn json_shaped_noise_never_panics(
        v in prop::collection::vec((prop::sample::select(vec!["channel", "client_id", "timestamp", "sequence_num", "events", "type", "message", "product_id", "updates", "tickers", "trades", "orders", "side", "price_level", "new_quantity"]),
            prop_oneof![
                Just("null".to_owned()),
                Just("\"l2_data\"".to_owned()),
                Just("\"ticker\"".to_owned()),
                Just("\"user\"".to_owned()),
                Just("\"error\"".to_owned()),
                Just("[{\"type\":\"snapshot\"}]".to_owned()),
                Just("[]".to_owned()),
                Just("{}".to_owned()),
                any::<i64>().prop_map(|n| n.to_string()),
                any::<u64>().prop_map(|n| n.to_string()),
                any::<f64>().prop_map(|n| format!("{n:?}")),
                "[a-z0-9.]{0,12}".prop_map(|s| format!("\"{s}\"")),
            ]), 0..10),
    ) {
        let body = v.iter().map(|(k, val)| format!("\"{k}\":{val}")).collect::<Vec<_>>().join(",");
        all_parsers(&format!("{{{body}}}"), &mut CoinbaseFillTracker::new());
    }
}

#[test]
fn every_reference_payload_parses() {
    for f in FIXTURES {
        assert!(parse(f).is_ok(), "{f}");
    }
}
