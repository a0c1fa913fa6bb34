//! `sim-oanda`: runs the OANDA v20 protocol simulator as a process.
//!
//! A thin binary on purpose: all behaviour lives in `gekko_sim::oanda`, so the process a
//! system test (or OANDA's official `v20` SDK) talks to and the simulator that Rust tests
//! embed are the same code. It serves two listeners, like the venue's two hosts: REST
//! (`--rest-addr`, also the admin API under `/sim/admin/`) and streaming
//! (`--stream-addr`: the pricing and transaction streams). Plain HTTP by default; with
//! `--tls` both are served over TLS with `--tls-cert`/`--tls-key`, or with a generated
//! self-signed certificate written to `--cert-out`.
//!
//! Each `--fault '<json>'` (repeatable; the admin API's JSON, e.g.
//! `{"kind":"server_errors","count":3}`) is injected before the simulator serves.
//!
//! Exit codes: 0 after a clean shutdown, 64 for an invalid configuration or `--fault`
//! (every problem printed), 1 when a listener cannot be bound.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use gekko_sim::harness::process::parse_faults;
use gekko_sim::harness::{Failure, run_until_signal};
use gekko_sim::oanda::{PAPER_ACCOUNT_ID, PAPER_TOKEN, SimConfig, SimHandle, SimOanda, TlsSource};

/// OANDA v20 simulator: REST and the chunked pricing/transaction streams, faults
/// injectable under /sim/admin/.
#[derive(Debug, Parser)]
#[command(name = "sim-oanda", version, about)]
struct Args {
    /// REST listener address (the venue's api-fx* host).
    #[arg(long, env = "SIM_REST_ADDR", default_value = "127.0.0.1:9300")]
    rest_addr: SocketAddr,
    /// Streaming listener address (the venue's stream-fx* host).
    #[arg(long, env = "SIM_STREAM_ADDR", default_value = "127.0.0.1:9301")]
    stream_addr: SocketAddr,
    /// The accepted bearer token.
    #[arg(long, env = "SIM_OANDA_TOKEN", default_value = PAPER_TOKEN)]
    token: String,
    /// The account id (NNN-NNN-NNNNNNN-NNN).
    #[arg(long, env = "SIM_OANDA_ACCOUNT_ID", default_value = PAPER_ACCOUNT_ID)]
    account_id: String,
    /// Seed of the market generator (same seed, same market).
    #[arg(long, env = "SIM_SEED", default_value_t = 42)]
    seed: u64,
    /// Serve TLS (https) on both listeners.
    #[arg(long)]
    tls: bool,
    /// TLS certificate chain PEM (with `--tls-key`; implies `--tls`).
    #[arg(long, env = "SIM_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// TLS private key PEM (with `--tls-cert`).
    #[arg(long, env = "SIM_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Where to write the generated self-signed certificate's PEM (with `--tls`).
    #[arg(long, env = "SIM_CERT_OUT")]
    cert_out: Option<PathBuf>,
    /// Market generator tick in milliseconds.
    #[arg(long, env = "SIM_TICK_MS", default_value_t = 100)]
    tick_ms: u64,
    /// Stream heartbeat interval in milliseconds.
    #[arg(long, env = "SIM_HEARTBEAT_MS", default_value_t = 5000)]
    heartbeat_ms: u64,
    /// REST requests per second before 429.
    #[arg(long, env = "SIM_REST_RATE", default_value_t = 120)]
    rest_rate: u32,
    /// A fault injected before serving, as the admin API's JSON (repeatable).
    #[arg(long = "fault")]
    faults: Vec<String>,
}

fn config(args: Args) -> Result<SimConfig, String> {
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsSource::Files { cert, key }),
        (None, None) if args.tls => Some(TlsSource::SelfSigned {
            cert_out: args.cert_out,
        }),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".to_owned()),
    };
    Ok(SimConfig {
        rest_addr: args.rest_addr,
        stream_addr: args.stream_addr,
        token: args.token,
        account_id: args.account_id,
        seed: args.seed,
        tls,
        tick_interval: Duration::from_millis(args.tick_ms),
        heartbeat_interval: Duration::from_millis(args.heartbeat_ms),
        rest_rate_per_s: args.rest_rate,
        ..SimConfig::default()
    })
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
    run_until_signal("sim-oanda", start(args), SimHandle::shutdown).await
}

async fn start(args: Args) -> Result<SimHandle, Failure> {
    let faults = parse_faults(&args.faults)?;
    let cfg = config(args).map_err(Failure::config)?;
    cfg.validate().map_err(Failure::config)?;
    let handle = SimOanda::start(cfg).await.map_err(|e| Failure::start(&e))?;
    for f in faults {
        handle.inject(f);
    }
    tracing::info!(
        rest = %handle.rest_url,
        stream = %handle.stream_url,
        account = %handle.account_id,
        "sim-oanda: ready"
    );
    Ok(handle)
}
