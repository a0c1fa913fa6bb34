//! Hot-path costs: signing an order payload (HMAC-SHA256) and parsing market-data frames
//! into the typed structs, each next to `serde_json::Value` parsing of the same payload as a
//! baseline. Kept short (small samples, 1 s measurement) so a full run takes seconds.

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

fn sign(c: &mut Criterion) {
    let signer = BinanceUsSigner::hmac(SECRET).expect("valid secret");
    let mut g = c.benchmark_group("sign");
    g.bench_function("hmac_sha256_order", |b| {
        b.iter(|| signer.sign_query(black_box(ORDER)));
    });
    g.finish();
}

fn parse_market(c: &mut Criterion) {
    for (name, payload) in [
        ("book_ticker", BOOK_TICKER),
        ("trade", TRADE),
        ("depth_update", DEPTH),
    ] {
        let mut g = c.benchmark_group(format!("parse_{name}"));
        g.bench_function("typed", |b| b.iter(|| parse(black_box(payload))));
        g.bench_function("serde_json_value", |b| {
            b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(payload)));
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
    targets = sign, parse_market
}
criterion_main!(benches);
