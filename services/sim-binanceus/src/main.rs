//! `sim-binanceus`: runs the Binance.US protocol simulator as a standalone process.
//!
//! A thin binary on purpose: all behaviour lives in `gekko_sim::binanceus`, so the
//! process `gekko up` starts and the simulator that tests embed are the same code. This
//! file only reads flags/env, installs logging, starts the simulator and waits for
//! Ctrl-C or SIGTERM, then shuts it down with a bounded grace period.
//!
//! Exit codes: 0 after a clean shutdown, 64 for an invalid configuration (every problem
//! printed, one per line), 1 when a listener cannot be bound.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use gekko_sim::binanceus::{SimApiKey, SimBinanceUs, SimConfig};

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
}

/// EX_CONFIG-style exit code for an unusable configuration.
const EXIT_CONFIG: u8 = 64;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let cfg = SimConfig {
        rest_addr: args.rest_addr,
        ws_addr: args.ws_addr,
        seed: args.seed,
        api_keys: vec![SimApiKey::hmac(args.api_key, args.api_secret)],
        tick_interval: Duration::from_millis(args.tick_ms),
        weight_limit_per_minute: args.weight_limit,
        ..SimConfig::default()
    };
    if let Err(e) = cfg.validate() {
        eprintln!("{e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let handle = match SimBinanceUs::start(cfg).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("sim-binanceus: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(rest = %handle.rest_url, ws = %handle.ws_url, "sim-binanceus: ready");
    wait_for_signal().await;
    tracing::info!("sim-binanceus: shutting down");
    handle.shutdown().await;
    ExitCode::SUCCESS
}

/// Resolves on Ctrl-C, or on SIGTERM where there is one (containers stop with it).
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
