//! Hot-path costs of the Coinbase websocket: parsing an `l2_data` update (book), a
//! `ticker`, a `market_trades` update (trades) and a `user` order event (order update) into
//! the typed messages (decimals included), and the user event on
//! to a gekko `OrderUpdate` plus its fill, each next to `serde_json::Value` parsing of the
//! same bytes as a baseline. Kept short (small samples, 1 s measurement) so a full run takes
//! seconds. Targets: under 1 µs per `ticker` and per user order event, and every typed
//! parse at least 2× faster than `Value` on the same bytes (gekko issue 13).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use gekko_coinbase::websocket::{CoinbaseFillTracker, CoinbaseWsMessage, order_update, parse};

const L2_UPDATE: &str = include_str!("../test_data/ws_l2_update.json");
const TICKER: &str = include_str!("../test_data/ws_ticker.json");
const MARKET_TRADES: &str = include_str!("../test_data/ws_market_trades.json");
const USER_ORDER: &str = include_str!("../test_data/ws_user_order.json");

fn parse_frames(c: &mut Criterion) {
    for (name, payload) in [
        ("l2_update", L2_UPDATE),
        ("ticker", TICKER),
        ("market_trades", MARKET_TRADES),
        ("user_order", USER_ORDER),
    ] {
        let mut g = c.benchmark_group(format!("coinbase_parse_{name}"));
        g.bench_function("typed", |b| b.iter(|| parse(black_box(payload))));
        g.bench_function("serde_json_value", |b| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(payload.as_bytes())));
        });
        // The floor of any serde_json parse: scanning the bytes while building nothing.
        g.bench_function("serde_json_ignored_any", |b| {
            b.iter(|| serde_json::from_str::<serde::de::IgnoredAny>(black_box(payload)));
        });
        g.finish();
    }
}

/// The whole user path: frame → typed message → `OrderUpdate` → fill step. A fresh tracker
/// each time, so every iteration reports the fill (the costly case).
fn user_to_gekko(c: &mut Criterion) {
    let mut g = c.benchmark_group("coinbase_user_order_to_gekko");
    g.bench_function("typed_order_update_and_fill", |b| {
        b.iter(|| {
            let msg = parse(black_box(USER_ORDER)).expect("fixture parses");
            let CoinbaseWsMessage::User { header, events } = msg else {
                unreachable!("a user fixture")
            };
            let mut tracker = CoinbaseFillTracker::new();
            let e = &events[0];
            let mut u = order_update(&e.orders[0], 0).expect("fixture maps");
            let fill = tracker.apply(e.kind, &e.orders[0], &mut u);
            black_box((header.sequence_num, u, fill))
        });
    });
    g.finish();
}

fn quick() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = quick();
    targets = parse_frames, user_to_gekko
}
criterion_main!(benches);
