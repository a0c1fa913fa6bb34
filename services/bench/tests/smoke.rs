//! Every subcommand runs at a tiny size and prints a table of real, positive figures.
//! Not a timing test: nothing here compares a latency with a target.
//!
//! The footprint run spawns `gateway-binanceus` from the same target directory as this
//! package's binary; `cargo test --workspace` (scripts/test.sh) builds it. Alone, run
//! `cargo build -p gateway-binanceus` first.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn bench(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_gekko-bench"))
        .args(args)
        .arg("--json")
        .output()
        .expect("run gekko-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "gekko-bench {args:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let line = stdout
        .lines()
        .rfind(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON table in {stdout}\n{stderr}"));
    let v: Value = serde_json::from_str(line).expect("the table is JSON");
    assert!(
        !v["rows"].as_array().expect("rows").is_empty(),
        "an empty table: {v}"
    );
    v
}

fn figures(v: &Value) -> &Vec<Value> {
    v["figures"].as_array().expect("figures")
}

fn positive(v: &Value, what: &str) -> f64 {
    let x = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!(x > 0.0, "{what} is not positive: {x}");
    x
}

#[test]
fn tick_to_signal_measures_matched_signals() {
    let v = bench(&[
        "tick-to-signal",
        "--rate",
        "200",
        "--secs",
        "2",
        "--warmup-secs",
        "1",
        "--symbols",
        "10",
        "--deadlines-us",
        "0",
    ]);
    let f = figures(&v);
    positive(&f[0]["latency"]["p50_us"], "bus hop reference p50");
    let run = &f[1];
    assert_eq!(run["measurement"], "tick_to_signal", "{run}");
    positive(&run["ticks"], "ticks in the window");
    positive(&run["matched"], "matched signals");
    let p50 = positive(&run["latency"]["p50_us"], "tick -> signal p50");
    let p99 = positive(&run["latency"]["p99_us"], "tick -> signal p99");
    assert!(p99 >= p50, "{run}");
}

#[test]
fn signal_to_ack_measures_every_venue_and_its_stages() {
    let v = bench(&[
        "signal-to-ack",
        "--venue",
        "binanceus,coinbase,oanda",
        "--orders",
        "5",
    ]);
    let f = figures(&v);
    assert_eq!(f.len(), 3, "{v}");
    for venue in f {
        positive(&venue["place_order"]["p50_us"], "PlaceOrder p50");
        positive(
            &venue["grpc_health_reference"]["p50_us"],
            "gRPC reference p50",
        );
        let stages = venue["stages"].as_array().expect("stages");
        assert_eq!(stages.len(), 4, "{venue}");
        for s in stages {
            positive(&s["latency"]["p50_us"], "a stage's p50");
        }
        assert!(venue["slowest_stage"].is_string(), "{venue}");
    }
}

#[test]
fn md_capacity_counts_ticks_against_the_reference() {
    let v = bench(&[
        "md-capacity",
        "--start-rate",
        "500",
        "--max-rate",
        "500",
        "--secs",
        "1",
        "--symbols",
        "5",
        "--reference-requests",
        "20000",
    ]);
    let f = figures(&v);
    let step = &f[0];
    positive(&step["ticks"], "ticks offered");
    positive(&step["written"], "quotes written");
    let last = f.last().expect("a summary");
    positive(&last["reference_xadd_p64"], "redis-benchmark reference");
}

#[test]
fn footprint_reads_rss_and_readiness_of_a_gateway() {
    let dir = PathBuf::from(env!("CARGO_BIN_EXE_gekko-bench"))
        .parent()
        .expect("a target directory")
        .to_path_buf();
    assert!(
        dir.join("gateway-binanceus").is_file(),
        "{} has no gateway-binanceus: run `cargo build -p gateway-binanceus` (scripts/test.sh builds the workspace)",
        dir.display()
    );
    let v = bench(&[
        "footprint",
        "--only",
        "gateway-binanceus",
        "--idle-secs",
        "1",
        "--bin-dir",
        dir.to_str().expect("a UTF-8 path"),
    ]);
    let f = figures(&v);
    positive(&f[0]["rss_kib"], "redis-server reference RSS");
    let gw = &f[1];
    assert_eq!(gw["process"], "gateway-binanceus", "{gw}");
    positive(&gw["rss_kib"], "gateway RSS");
    positive(&gw["ready_ms"], "time to ready");
}
