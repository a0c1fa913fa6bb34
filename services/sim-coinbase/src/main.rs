//! `sim-coinbase`: runs the Coinbase Advanced Trade protocol simulator as a process.
//!
//! A thin binary on purpose: all behaviour lives in `gekko_sim::coinbase`, so the
//! process a system test (or the official SDK) talks to and the simulator that Rust tests
//! embed are the same code. This file reads flags/env, loads the public keys and the TLS
//! files, starts the simulator and waits for Ctrl-C or SIGTERM. It serves three
//! listeners, like the venue's three hosts: REST (`--rest-addr`), the market-data
//! websocket (`--ws-addr`) and the user-order websocket (`--ws-user-addr`), all with the
//! same certificate (`https`/`wss`), or all plain with `--plain-http`.
//!
//! Keys are registered as pairs: the n-th `--key-name` goes with the n-th `--public-key`
//! (a PEM file holding an EC P-256 or Ed25519 public key). Without `--tls-cert` and
//! `--tls-key` a self-signed certificate is generated and written to `--cert-out`.
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
use gekko_sim::coinbase::{SimApiKey, SimCoinbase, SimConfig, SimHandle, TlsSource};
use gekko_sim::harness::process::parse_faults;
use gekko_sim::harness::{Failure, run_until_signal};

/// Coinbase Advanced Trade simulator: REST and the market-data and user websockets over
/// TLS, faults injectable under /sim/admin/.
#[derive(Debug, Parser)]
#[command(name = "sim-coinbase", version, about)]
struct Args {
    /// REST listener address.
    #[arg(long, env = "SIM_REST_ADDR", default_value = "127.0.0.1:9200")]
    rest_addr: SocketAddr,
    /// Market-data websocket listener address (the venue's advanced-trade-ws host).
    #[arg(long, env = "SIM_WS_ADDR", default_value = "127.0.0.1:9201")]
    ws_addr: SocketAddr,
    /// User-order websocket listener address (the venue's advanced-trade-ws-user host).
    #[arg(long, env = "SIM_WS_USER_ADDR", default_value = "127.0.0.1:9202")]
    ws_user_addr: SocketAddr,
    /// Seconds a websocket may stay open without subscribing.
    #[arg(long, env = "SIM_WS_SUBSCRIBE_TIMEOUT_S", default_value_t = 5)]
    ws_subscribe_timeout_s: u64,
    /// Seed of the market generator (same seed, same market).
    #[arg(long, env = "SIM_SEED", default_value_t = 42)]
    seed: u64,
    /// API key name (JWT `kid`/`sub`); repeat, paired with `--public-key`.
    #[arg(long = "key-name")]
    key_names: Vec<String>,
    /// PEM file with that key's public key (EC P-256 or Ed25519); repeat.
    #[arg(long = "public-key")]
    public_keys: Vec<PathBuf>,
    /// TLS certificate chain PEM (with `--tls-key`).
    #[arg(long, env = "SIM_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// TLS private key PEM (with `--tls-cert`).
    #[arg(long, env = "SIM_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Where to write the generated self-signed certificate's PEM.
    #[arg(long, env = "SIM_CERT_OUT")]
    cert_out: Option<PathBuf>,
    /// Serve plain HTTP and ws instead of TLS (debugging only).
    #[arg(long)]
    plain_http: bool,
    /// Market generator tick in milliseconds.
    #[arg(long, env = "SIM_TICK_MS", default_value_t = 200)]
    tick_ms: u64,
    /// Private requests per second per key.
    #[arg(long, env = "SIM_PRIVATE_RATE", default_value_t = 30)]
    private_rate: u32,
    /// Public requests per second.
    #[arg(long, env = "SIM_PUBLIC_RATE", default_value_t = 10)]
    public_rate: u32,
    /// A fault injected before serving, as the admin API's JSON (repeatable).
    #[arg(long = "fault")]
    faults: Vec<String>,
}

fn config(args: Args) -> Result<SimConfig, Vec<String>> {
    let mut problems = Vec::new();
    if args.key_names.len() != args.public_keys.len() {
        problems.push(format!(
            "{} --key-name but {} --public-key: give them in pairs",
            args.key_names.len(),
            args.public_keys.len()
        ));
    }
    let mut api_keys = Vec::new();
    for (name, path) in args.key_names.iter().zip(&args.public_keys) {
        match std::fs::read_to_string(path) {
            Ok(pem) => api_keys.push(SimApiKey {
                name: name.clone(),
                public_key_pem: pem,
            }),
            Err(e) => problems.push(format!("reading public key {}: {e}", path.display())),
        }
    }
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => TlsSource::Files { cert, key },
        (None, None) => TlsSource::SelfSigned {
            cert_out: args.cert_out,
        },
        _ => {
            problems.push("--tls-cert and --tls-key go together".to_owned());
            TlsSource::SelfSigned { cert_out: None }
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(SimConfig {
        rest_addr: args.rest_addr,
        ws_addr: args.ws_addr,
        ws_user_addr: args.ws_user_addr,
        ws_subscribe_timeout: Duration::from_secs(args.ws_subscribe_timeout_s),
        seed: args.seed,
        tls,
        plain_http: args.plain_http,
        api_keys,
        tick_interval: Duration::from_millis(args.tick_ms),
        private_rate_per_s: args.private_rate,
        public_rate_per_s: args.public_rate,
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
    run_until_signal("sim-coinbase", start(args), SimHandle::shutdown).await
}

async fn start(args: Args) -> Result<SimHandle, Failure> {
    let faults = parse_faults(&args.faults)?;
    let cfg = config(args).map_err(Failure::Config)?;
    cfg.validate().map_err(Failure::config)?;
    let handle = SimCoinbase::start(cfg)
        .await
        .map_err(|e| Failure::start(&e))?;
    for f in faults {
        handle.inject(f);
    }
    tracing::info!(
        rest = %handle.rest_url,
        ws = %handle.ws_url,
        ws_user = %handle.ws_user_url,
        "sim-coinbase: ready"
    );
    Ok(handle)
}
