//! Hot-path costs: signing an order payload (HMAC-SHA256) and parsing market-data and
//! user-stream frames (`bookTicker`, `trade`, `depthUpdate`, `executionReport`,
//! `outboundAccountPosition`) into the typed, borrowing structs, each next to
//! `serde_json::from_str::<Value>` on the same payload as the reference and
//! `serde::de::IgnoredAny` (serde_json scanning the bytes, building nothing) as the floor.
//! Target (gekko issue 13): every typed parse at least 2× faster than `Value` in the same
//! run. Kept short (small samples, 1 s measurement) so a full run takes seconds.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use gekko_binanceus::BinanceUsSigner;
use gekko_binanceus::websocket::parse;

const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
const ORDER: &str = "symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=30000.5&newClientOrderId=gk0123456789abcdef0123456789abcdef&newOrderRespType=RESULT&recvWindow=5000&timestamp=1499827319559";

const BOOK_TICKER: &str = include_str!("../test_data/ws_book_ticker.json");
const TRADE: &str = include_str!("../test_data/ws_trade.json");
const DEPTH: &str = include_str!("../test_data/ws_depth_update.json");
const EXECUTION_REPORT: &str = include_str!("../test_data/ws_execution_report_trade.json");
const ACCOUNT_POSITION: &str = include_str!("../test_data/ws_outbound_account_position.json");

fn sign(c: &mut Criterion) {
    let signer = BinanceUsSigner::hmac(SECRET).expect("valid secret");
    let mut g = c.benchmark_group("sign");
    g.bench_function("hmac_sha256_order", |b| {
        b.iter(|| signer.sign_query(black_box(ORDER)));
    });
    g.finish();
}

fn parse_frames(c: &mut Criterion) {
    for (name, payload) in [
        ("book_ticker", BOOK_TICKER),
        ("trade", TRADE),
        ("depth_update", DEPTH),
        ("execution_report", EXECUTION_REPORT),
        ("outbound_account_position", ACCOUNT_POSITION),
    ] {
        assert!(parse(payload).is_ok(), "{name}");
        let mut g = c.benchmark_group(format!("parse_{name}"));
        g.bench_function("typed", |b| b.iter(|| parse(black_box(payload))));
        g.bench_function("serde_json_value", |b| {
            b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(payload)));
        });
        g.bench_function("serde_json_ignored_any", |b| {
            b.iter(|| serde_json::from_str::<serde::de::IgnoredAny>(black_box(payload)));
        });
        g.finish();
    }
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
    targets = sign, parse_frames
}
criterion_main!(benches);
