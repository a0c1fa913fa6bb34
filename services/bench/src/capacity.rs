//! `md-capacity`: the most ticks per second one gateway carries from the simulator's
//! websocket to its Redis quote stream on one core without falling behind, beside
//! `redis-benchmark -P 64 XADD` on the same server in the same run.
//!
//! The gateway (the real `Gateway` over the Binance.US adapter, its websocket, parser,
//! books and market-data writer) runs on a current-thread tokio runtime on its own OS
//! thread: one core at most. The simulator runs on the bench's other runtime. Each step
//! offers a rate for a few seconds with the simulator's rate-controlled tick source (one
//! bookTicker, one depth diff and sometimes a trade per tick); the quote stream's
//! `entries-added` (XINFO STREAM) counts what reached Redis, and the gateway's
//! `gekko_gateway_market_data_dropped_total` counts what it dropped (market data is a
//! capped, lossy stream by design: a drop is counted, never silent). A step keeps up when
//! at least 99.9% of its ticks reached the stream and nothing was dropped (the gateway's
//! market-data queue is bounded, so a writer that falls behind drops and counts). The
//! time until the stream stopped growing after the last tick is reported beside it.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use gekko_bus::names;
use gekko_core::VenueId;
use gekko_gateway::engine::Gateway;
use gekko_runtime::Readiness;
use gekko_sim::binanceus::SimBinanceUs;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::common::{Redis, Table, load1, wait_for};
use crate::recorder;
use crate::tick::{gateway_config, quiet_sim_config, symbols};

/// Options.
#[derive(Debug, Clone)]
pub(crate) struct CapacityOpts {
    /// First offered rate, ticks/s; each next step doubles it.
    pub(crate) start_rate: u32,
    /// Highest rate to offer.
    pub(crate) max_rate: u32,
    /// Seconds per step.
    pub(crate) secs: u64,
    /// Symbols.
    pub(crate) symbols: usize,
    /// Requests for the redis-benchmark reference.
    pub(crate) reference_requests: u64,
}

/// `redis-benchmark -P 64 XADD` with a 200-byte field on the server at `url`.
fn redis_benchmark(url: &str, n: u64) -> anyhow::Result<f64> {
    let filler = "x".repeat(200);
    let out = std::process::Command::new("redis-benchmark")
        .args([
            "-u",
            url,
            "-P",
            "64",
            "-c",
            "50",
            "-q",
            "-n",
            &n.to_string(),
        ])
        .args(["XADD", "bench:redis-benchmark", "*", "d", &filler])
        .output()
        .context("run redis-benchmark (apt-get install redis-tools)")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let summary = text.rsplit('\r').next().unwrap_or(&text);
    summary
        .split(" requests per second")
        .next()
        .and_then(|s| s.rsplit(": ").next())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .ok_or_else(|| anyhow::anyhow!("cannot parse redis-benchmark output: {text:?}"))
}

/// `entries-added` of `stream` (0 when it does not exist yet).
fn entries_added(url: &str, stream: &str) -> anyhow::Result<u64> {
    let out = std::process::Command::new("redis-cli")
        .args(["-u", url, "XINFO", "STREAM", stream])
        .output()
        .context("run redis-cli (apt-get install redis-tools)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.trim() == "entries-added" {
            return lines
                .next()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| anyhow::anyhow!("XINFO STREAM {stream}: no entries-added value"));
        }
    }
    if text.contains("no such key") || text.trim().is_empty() {
        return Ok(0);
    }
    anyhow::bail!("XINFO STREAM {stream}: unexpected answer {text:?} (Redis 7 is needed)")
}

/// One step's result.
#[derive(Debug)]
struct Step {
    offered: u32,
    ticks: u64,
    written: u64,
    dropped: u64,
    drain_ms: u128,
    secs: f64,
    load: String,
}

impl Step {
    fn keeps_up(&self) -> bool {
        self.ticks > 0 && self.written * 1000 >= self.ticks * 999 && self.dropped == 0
    }

    #[expect(clippy::cast_precision_loss, reason = "a rate for display")]
    fn carried_rate(&self) -> f64 {
        self.written.min(self.ticks) as f64 / self.secs
    }

    #[expect(clippy::cast_precision_loss, reason = "a rate for display")]
    fn emitted_rate(&self) -> f64 {
        self.ticks as f64 / self.secs
    }
}

/// Runs the ladder and returns the table.
///
/// # Errors
/// A part that does not start, or the reference that cannot run.
pub(crate) async fn run(opts: &CapacityOpts, redis_url: Option<&str>) -> anyhow::Result<Table> {
    recorder::install();
    let redis = Redis::start_or(redis_url)?;
    let reference = redis_benchmark(&redis.url, opts.reference_requests)?;
    let ref_load = load1();
    let mut steps = Vec::new();
    let mut rate = opts.start_rate.max(1);
    loop {
        let s = step(opts, &redis, rate).await?;
        let ok = s.keeps_up();
        steps.push(s);
        if !ok || rate >= opts.max_rate {
            break;
        }
        rate = rate.saturating_mul(2).min(opts.max_rate);
    }
    let best = steps
        .iter()
        .filter(|s| s.keeps_up())
        .map(Step::carried_rate)
        .fold(0.0_f64, f64::max);
    let mut t = Table::new(
        format!(
            "market-data capacity: Binance.US simulator websocket -> one gateway on a current-thread runtime -> its Redis quote stream ({} symbols, {} s per step)",
            opts.symbols, opts.secs
        ),
        &[
            "measurement",
            "ticks/s",
            "vs -P 64 XADD",
            "detail",
            "load (1 min)",
        ],
    );
    t.row(vec![
        "reference: redis-benchmark -P 64 XADD, 200-byte field, same redis-server".into(),
        format!("{reference:.0}"),
        "100%".into(),
        "-".into(),
        ref_load,
    ]);
    for s in &steps {
        t.row(vec![
            format!(
                "offered {} ticks/s: {}",
                s.offered,
                if s.keeps_up() { "keeps up" } else { "falls behind" }
            ),
            format!("{:.0}", s.carried_rate()),
            format!("{:.1}%", 100.0 * s.carried_rate() / reference),
            format!(
                "simulator emitted {:.0}/s; {} ticks, {} quotes on the stream, {} dropped (counted), drained {} ms after the last tick",
                s.emitted_rate(),
                s.ticks,
                s.written,
                s.dropped,
                s.drain_ms
            ),
            s.load.clone(),
        ]);
        t.figure(json!({
            "offered": s.offered,
            "ticks": s.ticks,
            "written": s.written,
            "dropped": s.dropped,
            "drain_ms": s.drain_ms,
            "carried_per_s": s.carried_rate(),
            "keeps_up": s.keeps_up(),
            "load1": s.load,
        }));
    }
    t.row(vec![
        "**most ticks/s carried without falling behind**".into(),
        format!("{best:.0}"),
        format!("{:.1}% (target >= 50%)", 100.0 * best / reference),
        "-".into(),
        "-".into(),
    ]);
    t.figure(json!({"reference_xadd_p64": reference, "capacity": best}));
    Ok(t)
}

async fn step(opts: &CapacityOpts, redis: &Redis, rate: u32) -> anyhow::Result<Step> {
    let syms = symbols(opts.symbols);
    let sim = SimBinanceUs::start(quiet_sim_config(syms.clone())).await?;
    let venue = gateway_binanceus::paper_venue(
        &sim.rest_url,
        &sim.ws_url,
        Duration::from_secs(5),
        Duration::from_secs(30),
    );
    let cfg = gateway_config(&syms);
    let url = redis.url.clone();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<anyhow::Result<Gateway>>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("gateway".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.into()));
                    return;
                }
            };
            rt.block_on(async move {
                let readiness = Readiness::new();
                let tracker = TaskTracker::new();
                let cancel = CancellationToken::new();
                let started = async {
                    let bus = gekko_bus::open(Some(&url)).await?;
                    let (gw, _) = Gateway::start(
                        std::sync::Arc::new(venue),
                        bus,
                        cfg,
                        &readiness,
                        &tracker,
                        cancel.child_token(),
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("gateway start: {e}"))?;
                    anyhow::Ok(gw)
                }
                .await;
                let ok = started.is_ok();
                let _ = ready_tx.send(started);
                if ok {
                    let _ = stop_rx.await;
                }
                cancel.cancel();
                tracker.close();
                let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
            });
        })?;
    let gw = ready_rx.await.context("gateway thread ended")??;
    // Warm-up at a low rate until the books are synchronised.
    let warm = sim.start_rate_ticks(NonZeroU32::MIN.saturating_add(199));
    wait_for("the gateway's market data", Duration::from_secs(30), || {
        gw.market_data_ready()
    })
    .await?;
    drop(warm);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stream = names::quotes(VenueId::BinanceUs.as_str());
    let before = entries_added(&redis.url, &stream)?;
    let dropped_before = recorder::counter("gekko_gateway_market_data_dropped_total");
    let rate_nz = NonZeroU32::new(rate).ok_or_else(|| anyhow::anyhow!("rate must be > 0"))?;
    let mut rx = sim.start_rate_ticks(rate_nz);
    let started = Instant::now();
    let until = started + Duration::from_secs(opts.secs);
    let mut ticks = 0_u64;
    while Instant::now() < until {
        match tokio::time::timeout(Duration::from_millis(50), rx.recv()).await {
            Ok(Ok(_)) => ticks += 1,
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(k))) => ticks += k,
            Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => break,
            Err(_) => {}
        }
    }
    drop(rx);
    let stopped = Instant::now();
    let secs = stopped.duration_since(started).as_secs_f64();
    // Ticks that raced the stop: the source stops at its next 1 ms wake-up; give it that.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut last = entries_added(&redis.url, &stream)?;
    let mut last_change = Instant::now();
    while last_change.elapsed() < Duration::from_millis(500)
        && stopped.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let now = entries_added(&redis.url, &stream)?;
        if now != last {
            last = now;
            last_change = Instant::now();
        }
    }
    let drain_ms = last_change.saturating_duration_since(stopped).as_millis();
    let dropped = recorder::counter("gekko_gateway_market_data_dropped_total") - dropped_before;
    let load = load1();
    let _ = stop_tx.send(());
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    sim.shutdown().await;
    Ok(Step {
        offered: rate,
        ticks,
        written: last.saturating_sub(before),
        dropped,
        drain_ms,
        secs,
        load,
    })
}
