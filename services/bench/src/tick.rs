//! `tick-to-signal`: simulator websocket tick → gateway parse → book/quote → Redis →
//! inference features and batching → signal on Redis, timed from the simulator's stamp.
//!
//! Everything runs in this process on one clock, with the real parts: the Binance.US
//! simulator with its rate-controlled tick source (one symbol per tick, round robin), the
//! real `Gateway` over the Binance.US adapter on real sockets, a real `redis-server`, and
//! the inference service (`inference_service::start`, the same start `gekko up` uses)
//! with its confidence threshold at 0 so that every prediction becomes a signal.
//!
//! A signal carries its instrument and the quote's timestamp in ms (gekko's receive time
//! of the bookTicker). The bench matches it to the simulator's latest tick of that symbol
//! stamped before the end of that millisecond; with 50 symbols a symbol ticks every 5 ms
//! at 10k ticks/s, so the match is unambiguous (ticks of one symbol closer than 2 ms are
//! counted as ambiguous and left out). The latency is the signal's arrival at the bench's
//! own reader of `gekko:signals` minus the tick's stamp.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gekko_bus::{StartFrom, Topic, names};
use gekko_core::{InstrumentId, Signal, VenueId};
use gekko_gateway::engine::{Gateway, GatewayConfig};
use gekko_runtime::Readiness;
use gekko_sim::binanceus::{SimBinanceUs, SimConfig, SimSymbol};
use rust_decimal::Decimal;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::common::{Percentiles, Redis, Table, load1, unix_ns, wait_for};

/// One run's options.
#[derive(Debug, Clone)]
pub(crate) struct TickOpts {
    /// Ticks per second, across all symbols.
    pub(crate) rate: u32,
    /// Measured seconds (after the warm-up).
    pub(crate) secs: u64,
    /// Number of symbols.
    pub(crate) symbols: usize,
    /// Batcher deadlines to sweep.
    pub(crate) deadlines: Vec<Duration>,
    /// Seconds of ticks before measuring (feature windows fill, connections warm).
    pub(crate) warmup_secs: u64,
}

/// `n` synthetic symbols `SAAUSD`, `SABUSD`, ... priced 100 USD.
pub(crate) fn symbols(n: usize) -> Vec<SimSymbol> {
    (0..n)
        .map(|i| {
            let a = char::from(b'A' + u8::try_from((i / 26) % 26).unwrap_or(0));
            let b = char::from(b'A' + u8::try_from(i % 26).unwrap_or(0));
            let base = format!("S{a}{b}");
            SimSymbol {
                symbol: format!("{base}USD"),
                base,
                quote: "USD".into(),
                start_price: Decimal::new(100, 0),
                tick_size: Decimal::new(1, 2),
                step_size: Decimal::new(1, 3),
                min_qty: Decimal::new(1, 3),
                max_qty: Decimal::new(1_000_000, 0),
                min_notional: Decimal::new(1, 0),
            }
        })
        .collect()
}

/// A simulator config whose regular generator never fires (the rate source moves the
/// market), with `symbols`.
pub(crate) fn quiet_sim_config(symbols: Vec<SimSymbol>) -> SimConfig {
    SimConfig {
        symbols,
        tick_interval: Duration::from_secs(86_400),
        orders_per_10s: 1_000_000,
        weight_limit_per_minute: 10_000_000,
        ..SimConfig::default()
    }
}

/// A gateway config for the simulator's symbols.
pub(crate) fn gateway_config(syms: &[SimSymbol]) -> GatewayConfig {
    let instruments = syms
        .iter()
        .map(|s| InstrumentId::new(VenueId::BinanceUs, &s.base, &s.quote))
        .collect();
    GatewayConfig::new(gateway_binanceus::SOURCE, instruments)
}

/// The result of one deadline.
#[derive(Debug)]
struct RunResult {
    deadline: Duration,
    lat: Option<Percentiles>,
    ticks: u64,
    matched: u64,
    ambiguous: u64,
    unmatched: u64,
    /// Signals read during the measurement for ticks before it (a pipeline behind).
    before_window: u64,
    load: String,
}

/// Runs the sweep and returns the table.
///
/// # Errors
/// A part that does not start (Redis, simulator, gateway, inference).
pub(crate) async fn run(opts: &TickOpts, redis_url: Option<&str>) -> anyhow::Result<Table> {
    let redis = Redis::start_or(redis_url)?;
    let bus_ref = bus_hop_reference(&redis, 2_000).await?;
    let mut results = Vec::new();
    for &d in &opts.deadlines {
        results.push(run_one(opts, &redis, d).await?);
    }
    let mut t = Table::new(
        format!(
            "tick -> signal, {} ticks/s over {} symbols, {} s measured (Binance.US simulator, real Gateway, redis-server, inference on CPU)",
            opts.rate, opts.symbols, opts.secs
        ),
        &[
            "measurement",
            "p50 / p99 / p99.9 / max",
            "signals / ticks in window",
            "load (1 min)",
        ],
    );
    t.row(vec![
        "reference: one bus hop, XADD -> XREAD BLOCK (same redis-server, 1 msg/ms)".into(),
        bus_ref.map_or_else(|| "-".into(), |p| p.ms()),
        "-".into(),
        load1(),
    ]);
    t.figure(json!({"measurement": "bus_hop_reference", "latency": bus_ref}));
    for r in &results {
        t.row(vec![
            format!(
                "tick -> signal, batch_max_wait={}us",
                r.deadline.as_micros()
            ),
            r.lat.map_or_else(|| "no signal matched".into(), |p| p.ms()),
            format!(
                "{} / {} (ambiguous {}, unmatched {}, {} late signals of warm-up ticks)",
                r.matched, r.ticks, r.ambiguous, r.unmatched, r.before_window
            ),
            r.load.clone(),
        ]);
        t.figure(json!({
            "measurement": "tick_to_signal",
            "rate": opts.rate,
            "batch_max_wait_us": r.deadline.as_micros(),
            "latency": r.lat,
            "ticks": r.ticks,
            "matched": r.matched,
            "ambiguous": r.ambiguous,
            "unmatched": r.unmatched,
            "late_from_warmup": r.before_window,
            "load1": r.load,
        }));
    }
    Ok(t)
}

/// The latency of one bus hop on the same server: a capped stream written once per ms,
/// read by a blocking tail reader.
async fn bus_hop_reference(redis: &Redis, n: usize) -> anyhow::Result<Option<Percentiles>> {
    let bus = redis.bus().await?;
    let topic: Topic<i64> = Topic::capped("bench:hop", 10_000, 1);
    let mut reader = bus.tail_reader(topic.name(), StartFrom::Latest).await?;
    let writer = {
        let bus = bus.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            let mut iv = tokio::time::interval(Duration::from_millis(1));
            for _ in 0..n {
                iv.tick().await;
                if topic.publish(&*bus, "bench", &unix_ns()).await.is_err() {
                    break;
                }
            }
        })
    };
    let mut lat = Vec::with_capacity(n);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while lat.len() < n && tokio::time::Instant::now() < deadline {
        for d in reader.read(512, Duration::from_millis(200)).await? {
            let now = unix_ns();
            if let Ok(env) = topic.decode(&d) {
                lat.push(now - env.payload);
            }
        }
    }
    writer.abort();
    Ok(Percentiles::of(&mut lat))
}

/// Stamps per symbol, in order.
type Stamps = Arc<Mutex<HashMap<String, Vec<i64>>>>;

async fn run_one(opts: &TickOpts, redis: &Redis, deadline: Duration) -> anyhow::Result<RunResult> {
    let syms = symbols(opts.symbols);
    let sim = SimBinanceUs::start(quiet_sim_config(syms.clone())).await?;
    let bus = redis.bus().await?;
    let readiness = Readiness::new();
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let venue = gateway_binanceus::paper_venue(
        &sim.rest_url,
        &sim.ws_url,
        Duration::from_secs(5),
        Duration::from_secs(30),
    );
    let rate = NonZeroU32::new(opts.rate).ok_or_else(|| anyhow::anyhow!("--rate must be > 0"))?;
    // Ticks start before the gateway so that its books synchronise.
    let mut ticks = sim.start_rate_ticks(rate);
    let stamps: Stamps = Arc::default();
    let collector = {
        let stamps = stamps.clone();
        tokio::spawn(async move {
            loop {
                match ticks.recv().await {
                    Ok(t) => crate::lock(&stamps)
                        .entry(t.symbol)
                        .or_default()
                        .push(t.unix_ns),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(k)) => {
                        eprintln!("tick stamps lagged: {k} lost");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        })
    };
    let (gw, _) = Gateway::start(
        Arc::new(venue),
        bus.clone(),
        gateway_config(&syms),
        &readiness,
        &tracker,
        cancel.child_token(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("gateway start: {e}"))?;
    wait_for("the gateway's market data", Duration::from_secs(30), || {
        gw.market_data_ready()
    })
    .await?;
    let settings = inference_service::InferenceSettings {
        model: "direction".into(),
        model_root: std::env::temp_dir().join("gekko-bench-no-models"),
        device: gekko_inference::device::DevicePreference::Cpu,
        cpu_threads: 1,
        gpu_memory_budget_mb: 0,
        max_batch: 64,
        max_wait: deadline,
        update_every: Duration::from_secs(3600),
        confidence_threshold: 0.0,
        venues: vec![VenueId::BinanceUs],
        prediction: gekko_config::PredictionParams::default(),
    };
    let _inference = inference_service::start(
        settings,
        bus.clone(),
        &readiness,
        &tracker,
        cancel.child_token(),
    )
    .await?;
    let signals: Topic<Signal> = Topic::capped(names::SIGNALS, names::MARKET_DATA_MAX_LEN, 1);
    let mut reader = bus.tail_reader(signals.name(), StartFrom::Latest).await?;
    // Warm-up: reads and discards.
    let warm_end = unix_ns() + secs_ns(opts.warmup_secs);
    while unix_ns() < warm_end {
        let _ = reader.read(512, Duration::from_millis(100)).await?;
    }
    let window = (unix_ns(), unix_ns() + secs_ns(opts.secs));
    let mut received: Vec<(InstrumentId, i64, i64)> = Vec::new();
    // Read until the window has passed plus 3 s of drain.
    let stop_at = window.1 + secs_ns(3);
    while unix_ns() < stop_at {
        for d in reader.read(512, Duration::from_millis(100)).await? {
            let now = unix_ns();
            if let Ok(env) = signals.decode(&d) {
                received.push((env.payload.instrument, env.payload.quote_ts_ms, now));
            }
        }
    }
    let load = load1();
    cancel.cancel();
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
    sim.shutdown().await;
    let _ = collector.await;
    let stamps = crate::lock(&stamps).clone();
    let ticks = stamps
        .values()
        .flatten()
        .filter(|&&t| t >= window.0 && t < window.1)
        .count() as u64;
    let (mut lat, mut matched, mut ambiguous, mut unmatched) = (Vec::new(), 0, 0, 0);
    let mut before_window = 0;
    for (inst, quote_ms, at) in received {
        let symbol = inst.pair().replace('-', "");
        let Some(list) = stamps.get(&symbol) else {
            unmatched += 1;
            continue;
        };
        let end = (quote_ms + 1) * 1_000_000;
        let idx = list.partition_point(|&t| t < end);
        if idx == 0 {
            unmatched += 1;
            continue;
        }
        let tick = list[idx - 1];
        if tick < window.0 {
            before_window += 1;
            continue;
        }
        if tick >= window.1 {
            continue;
        }
        if tick < end - 50_000_000 {
            unmatched += 1;
            continue;
        }
        if idx >= 2 && list[idx - 2] > tick - 2_000_000 {
            ambiguous += 1;
            continue;
        }
        matched += 1;
        lat.push(at - tick);
    }
    Ok(RunResult {
        deadline,
        lat: Percentiles::of(&mut lat),
        ticks,
        matched,
        ambiguous,
        unmatched,
        before_window,
        load,
    })
}

fn secs_ns(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX / 2_000_000_000) * 1_000_000_000
}
