//! `sim-binanceus`: runs the Binance.US protocol simulator as a standalone process.
//!
//! A thin binary on purpose: all behaviour lives in `gekko_sim::binanceus`, so the
//! process `gekko up` starts and the simulator that tests embed are the same code. This
//! file only reads flags/env, installs logging and starts the simulator, injecting the
//! fault of each `--fault '<json>'` (the admin API's JSON, e.g.
//! `{"kind":"server_errors","count":3}`) before it serves;
//! [`run_until_signal`] waits for Ctrl-C or SIGTERM and shuts it down.
//!
//! Exit codes: 0 after a clean shutdown, 64 for an invalid configuration or `--fault`
//! (every problem printed, one per line), 1 when a listener cannot be bound.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use gekko_sim::binanceus::{SimApiKey, SimBinanceUs, SimConfig, SimHandle};
use gekko_sim::harness::process::parse_faults;
use gekko_sim::harness::{Failure, run_until_signal};

/// Binance.US simulator: REST + websocket, faults injectable under /sim/admin/.
#[derive(Debug, Parser)]
#[command(name = "sim-binanceus", version, about)]
struct Args {
    /// REST listener address.
    #[arg(long, env = "SIM_REST_ADDR", default_value = "127.0.0.1:9100")]
    rest_addr: SocketAddr,
    /// Websocket listener address.
    #[arg(long, env = "SIM_WS_ADDR", default_value = "127.0.0.1:9101")]
    ws_addr: SocketAddr,
    /// Seed of the market generator (same seed, same market).
    #[arg(long, env = "SIM_SEED", default_value_t = 42)]
    seed: u64,
    /// API key accepted by the simulator (X-MBX-APIKEY).
    #[arg(long, env = "SIM_API_KEY", default_value = "paper-key")]
    api_key: String,
    /// HMAC secret of that key.
    #[arg(
        long,
        env = "SIM_API_SECRET",
        default_value = "paper-secret",
        hide_env_values = true
    )]
    api_secret: String,
    /// Market generator tick in milliseconds.
    #[arg(long, env = "SIM_TICK_MS", default_value_t = 200)]
    tick_ms: u64,
    /// REQUEST_WEIGHT limit per minute.
    #[arg(long, env = "SIM_WEIGHT_LIMIT", default_value_t = 1200)]
    weight_limit: u32,
    /// A fault injected before serving, as the admin API's JSON (repeatable).
    #[arg(long = "fault")]
    faults: Vec<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    run_until_signal("sim-binanceus", start(args), SimHandle::shutdown).await
}

async fn start(args: Args) -> Result<SimHandle, Failure> {
    let faults = parse_faults(&args.faults)?;
    let cfg = SimConfig {
        rest_addr: args.rest_addr,
        ws_addr: args.ws_addr,
        seed: args.seed,
        api_keys: vec![SimApiKey::hmac(args.api_key, args.api_secret)],
        tick_interval: Duration::from_millis(args.tick_ms),
        weight_limit_per_minute: args.weight_limit,
        ..SimConfig::default()
    };
    cfg.validate().map_err(Failure::config)?;
    let handle = SimBinanceUs::start(cfg)
        .await
        .map_err(|e| Failure::start(&e))?;
    for f in faults {
        handle.inject(f);
    }
    tracing::info!(rest = %handle.rest_url, ws = %handle.ws_url, "sim-binanceus: ready");
    Ok(handle)
}
