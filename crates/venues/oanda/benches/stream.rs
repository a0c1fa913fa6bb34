//! Stream line parsing: a `PRICE` line (OANDA's ticker and top-of-book; it has no public
//! trade or depth feed), an `ORDER_FILL` transaction line and the order-state transactions
//! (`MARKET_ORDER`, `LIMIT_ORDER`, `ORDER_CANCEL`, `MARKET_ORDER_REJECT`) to typed values,
//! each beside `serde_json::from_slice::<serde_json::Value>` on the same bytes (the generic
//! tree a client without typed parsers would build). Target: every typed parse at least 2×
//! faster than `Value` (gekko issue 13). The fill is also measured through the crate's
//! order mapping (`OrderTracker::apply`), which is what the transaction stream does per
//! line.
//!
//! Run: `cargo bench -p gekko-oanda --bench stream`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use gekko_oanda::common::OrderTracker;
use gekko_oanda::stream::{OandaTransactionLine, parse_pricing_line, parse_transaction_line};

fn fixture_line(name: &str, kind: &str) -> String {
    let path = format!("{}/test_data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .find(|l| l.contains(kind))
        .unwrap_or_else(|| panic!("no {kind} line in {name}"))
        .to_owned()
}

fn bench(c: &mut Criterion) {
    let price = fixture_line("stream_pricing.jsonl", "\"USD_JPY\"");
    let fill = fixture_line("stream_transactions.jsonl", "\"ORDER_FILL\"");
    assert!(parse_pricing_line(&price).is_ok());
    assert!(parse_transaction_line(&fill).is_ok());

    let mut g = c.benchmark_group("oanda_stream");
    g.bench_function("price_line_typed", |b| {
        b.iter(|| parse_pricing_line(black_box(&price)).unwrap());
    });
    g.bench_function("price_line_value", |b| {
        b.iter(|| {
            serde_json::from_slice::<serde_json::Value>(black_box(price.as_bytes())).unwrap()
        });
    });
    g.bench_function("order_fill_line_typed", |b| {
        b.iter(|| parse_transaction_line(black_box(&fill)).unwrap());
    });
    g.bench_function("order_fill_line_value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(fill.as_bytes())).unwrap());
    });
    // The floor: serde_json only scanning the bytes, building nothing.
    g.bench_function("price_line_ignored_any", |b| {
        b.iter(|| serde_json::from_str::<serde::de::IgnoredAny>(black_box(&price)).unwrap());
    });
    g.bench_function("order_fill_line_ignored_any", |b| {
        b.iter(|| serde_json::from_str::<serde::de::IgnoredAny>(black_box(&fill)).unwrap());
    });
    let mut tracker = OrderTracker::new("USD");
    // The order-state transactions of the same stream, each beside its `Value` tree.
    for kind in [
        "MARKET_ORDER",
        "LIMIT_ORDER",
        "ORDER_CANCEL",
        "MARKET_ORDER_REJECT",
    ] {
        let line = fixture_line("stream_transactions.jsonl", &format!("\"type\":\"{kind}\""));
        assert!(parse_transaction_line(&line).is_ok(), "{kind}");
        let name = kind.to_ascii_lowercase();
        g.bench_function(format!("{name}_line_typed"), |b| {
            b.iter(|| parse_transaction_line(black_box(&line)).unwrap());
        });
        g.bench_function(format!("{name}_line_value"), |b| {
            b.iter(|| {
                serde_json::from_slice::<serde_json::Value>(black_box(line.as_bytes())).unwrap()
            });
        });
    }
    g.bench_function("order_fill_line_to_order_and_fill", |b| {
        b.iter(|| {
            let OandaTransactionLine::Transaction(tx) =
                parse_transaction_line(black_box(&fill)).unwrap()
            else {
                unreachable!()
            };
            // A fill of an order the tracker has not seen: described from the fill,
            // filled, forgotten; the same work every iteration.
            tracker.apply(&tx)
        });
    });
    g.finish();
}

/// Short samples (1 s measurement), as the other venues' benches, so a run takes seconds.
fn quick() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = quick();
    targets = bench
}
criterion_main!(benches);
