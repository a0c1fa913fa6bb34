//! `sim-llm`: runs the OpenAI- and OpenRouter-compatible LLM simulator as a process.
//!
//! A thin binary on purpose: all behaviour lives in `gekko_sim::llm`, so the process the
//! LiteLLM proxy and system tests talk to and the simulator Rust tests embed are the same
//! code. One listener serves both path styles (`/api/v1/…` for OpenRouter clients, `/v1/…`
//! for OpenAI clients and LiteLLM) and the admin API (`POST /_sim/faults`,
//! `DELETE /_sim/faults`, `GET /_sim/stats`; shapes in the `gekko_sim::llm` docs).
//!
//! Once listening it prints its base URL (`http://127.0.0.1:P`) alone on one stdout line,
//! so a test that starts it with `--addr 127.0.0.1:0` learns the port from that line.
//!
//! Exit codes: 0 after a clean shutdown (Ctrl-C or SIGTERM), 64 for an invalid
//! configuration, 1 when the listener cannot be bound.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use gekko_sim::harness::{Failure, run_until_signal};
use gekko_sim::llm::{LlmSim, LlmSimConfig, PAPER_KEY};

/// OpenAI- and OpenRouter-compatible LLM simulator: models, key info, chat (plain and
/// streaming), faults injectable under /_sim/.
#[derive(Debug, Parser)]
#[command(name = "sim-llm", version, about)]
struct Args {
    /// Listen address (port 0 picks a free one; the base URL is printed on stdout).
    #[arg(long, env = "SIM_LLM_ADDR", default_value = "127.0.0.1:9480")]
    addr: SocketAddr,
    /// An accepted bearer key (repeat for several).
    #[arg(long = "key", env = "SIM_LLM_KEY", default_value = PAPER_KEY)]
    keys: Vec<String>,
    /// Gap between `: OPENROUTER PROCESSING` keep-alive comments, in milliseconds.
    #[arg(long, env = "SIM_LLM_KEEPALIVE_MS", default_value_t = 50)]
    keepalive_ms: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    run_until_signal("sim-llm", start(args), LlmSim::stop).await
}

async fn start(args: Args) -> Result<LlmSim, Failure> {
    let cfg = LlmSimConfig {
        addr: args.addr,
        api_keys: args.keys,
        keepalive_every: Duration::from_millis(args.keepalive_ms),
        ..LlmSimConfig::default()
    };
    let sim = LlmSim::start(cfg).await.map_err(|e| Failure::start(&e))?;
    // stdout carries only the base URL, so a parent process can read it as one line.
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{}", sim.base_url())
        .and_then(|()| out.flush())
        .is_err()
    {
        eprintln!("sim-llm: could not write the base URL to stdout");
    }
    drop(out);
    tracing::info!(base_url = %sim.base_url(), "sim-llm: ready");
    Ok(sim)
}
