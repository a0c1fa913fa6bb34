//! The rate-controlled tick source: one symbol per tick, round robin, numbered, stamped
//! on the wall clock, and stopped when its receiver is dropped.

use std::num::NonZeroU32;
use std::time::Duration;

use gekko_sim::binanceus::{SimBinanceUs, SimConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_ticks_go_round_robin_with_increasing_stamps() {
    let sim = SimBinanceUs::start(SimConfig {
        tick_interval: Duration::from_secs(86_400),
        ..SimConfig::default()
    })
    .await
    .expect("start");
    let symbols = ["BTCUSD", "ETHUSD"];
    let before = sim.book("BTCUSD").0;
    let mut rx = sim.start_rate_ticks(NonZeroU32::new(2_000).expect("non-zero"));
    let mut stamps = Vec::new();
    while stamps.len() < 200 {
        let t = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a tick within 10 s")
            .expect("the source is running");
        stamps.push(t);
    }
    for (k, t) in stamps.iter().enumerate() {
        assert_eq!(t.seq, k as u64, "ticks are numbered from 0 without gaps");
        assert_eq!(t.symbol, symbols[k % 2], "round robin in config order");
    }
    assert!(
        stamps.windows(2).all(|w| w[0].unix_ns <= w[1].unix_ns),
        "stamps never go back"
    );
    assert!(
        sim.book("BTCUSD").0 > before,
        "the ticks moved the book (its update id grew)"
    );
    drop(rx);
    // The source ends at its next wake-up once nobody listens: the book stops moving.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let settled = sim.book("BTCUSD").0;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        sim.book("BTCUSD").0,
        settled,
        "no ticks after the receiver is dropped"
    );
    sim.shutdown().await;
}
