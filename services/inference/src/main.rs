//! `inference`: the ML inference service, and its `train` and `bench` tools.
//!
//! - `inference serve` (the default): consumes quotes from the bus, publishes signals, and
//!   serves `gekko.v1.InferenceService` on `MONITORING_CONFIGURATIONS grpc_addr`. The
//!   runtime's service host does config, telemetry, listeners, readiness and the drain,
//!   with the usual exit codes (64 invalid configuration, 69 unavailable, 70 internal).
//! - `inference train ...`: trains the direction model (same flags as the crate example);
//!   with no flags it regenerates the committed `models/direction/1` exactly.
//! - `inference bench ...`: the model table (batch 1 to 16384, f32/bf16, matmul ceiling)
//!   followed by single-request latency through gRPC on loopback.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use gekko_inference::cli::{BenchArgs, TrainArgs, run_bench_cli, run_train};
use gekko_runtime::{GrpcServer, Host, Readiness};

#[derive(Debug, Parser)]
#[command(name = "inference", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve predictions from the bus and over gRPC (the default).
    Serve,
    /// Train the model on the seeded synthetic market.
    Train(TrainArgs),
    /// Benchmark the model and the gRPC path.
    Bench {
        #[command(flatten)]
        model: BenchArgs,
        /// Single-row gRPC requests to time.
        #[arg(long, default_value_t = 5000)]
        grpc_requests: usize,
        /// Batching deadline for the gRPC measurement, in microseconds.
        #[arg(long, default_value_t = 50)]
        grpc_max_wait_us: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    inference_service::pin_cpu_threads();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Train(args) => match run_train(args) {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("inference train: {e}");
                ExitCode::from(70)
            }
        },
        Command::Bench {
            model,
            grpc_requests,
            grpc_max_wait_us,
        } => {
            let model_dir = model.model_dir.clone();
            let (report, device) = match run_bench_cli(model) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("inference bench: {e}");
                    return ExitCode::from(64);
                }
            };
            eprintln!("{device}");
            println!("{}", report.to_markdown());
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("runtime");
            match rt.block_on(grpc_latency(
                model_dir,
                grpc_requests,
                Duration::from_micros(grpc_max_wait_us),
            )) {
                Ok(table) => {
                    println!("{table}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("inference bench (gRPC): {e:#}");
                    ExitCode::from(70)
                }
            }
        }
        Command::Serve => Host::new(inference_service::SOURCE)
            .service::<inference_service::InferenceService>()
            .main(),
    }
}

/// Single-row `Predict` calls through a real gRPC server on loopback, one at a time.
async fn grpc_latency(
    model_dir: std::path::PathBuf,
    n: usize,
    max_wait: Duration,
) -> anyhow::Result<String> {
    use gekko_proto::v1 as pb;
    let version_dir = model_dir.canonicalize()?;
    let name_dir = version_dir
        .parent()
        .ok_or_else(|| anyhow::anyhow!("model dir has no parent"))?;
    let root = name_dir
        .parent()
        .ok_or_else(|| anyhow::anyhow!("model dir has no root"))?;
    let name = name_dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let settings = inference_service::InferenceSettings {
        model: name,
        model_root: root.to_path_buf(),
        device: gekko_inference::device::DevicePreference::Auto,
        cpu_threads: 0,
        gpu_memory_budget_mb: 2048,
        max_batch: 64,
        max_wait,
        update_every: Duration::from_secs(3600),
        confidence_threshold: 0.5,
        venues: Vec::new(),
        prediction: gekko_config::PredictionParams::default(),
    };
    let bus: Arc<dyn gekko_bus::Bus> = Arc::new(gekko_bus::MemoryBus::new());
    let (readiness, tracker, cancel) = (
        Readiness::new(),
        tokio_util::task::TaskTracker::new(),
        tokio_util::sync::CancellationToken::new(),
    );
    let svc = inference_service::start(settings, bus, &readiness, &tracker, cancel.clone()).await?;
    let input_len = svc.registry.current().input_len();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = GrpcServer::new(readiness)
        .add_service(inference_service::grpc::InferenceGrpc::new(svc).into_server());
    tracker.spawn(server.serve(listener, cancel.clone()));
    let mut client =
        pb::inference_service_client::InferenceServiceClient::connect(format!("http://{addr}"))
            .await?;
    let row = pb::FeatureRow {
        values: (0..input_len)
            .map(|i| (i as f32 * 0.37).sin() * 0.01)
            .collect(),
    };
    let req = pb::PredictRequest { rows: vec![row] };
    for _ in 0..200 {
        client.predict(req.clone()).await?;
    }
    let mut lat = Vec::with_capacity(n);
    let started = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        client.predict(req.clone()).await?;
        lat.push(t.elapsed());
    }
    let total = started.elapsed();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    cancel.cancel();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    Ok(format!(
        "| gRPC Predict, 1 row, loopback, sequential (batcher max_wait {} µs) | value |\n|---|---|\n| requests | {n} |\n| requests/s | {:.0} |\n| p50 | {:.1} µs |\n| p99 | {:.1} µs (target < 1000 µs) |\n| max | {:.1} µs |",
        max_wait.as_micros(),
        n as f64 / total.as_secs_f64(),
        us(pct(0.50)),
        us(pct(0.99)),
        us(*lat.last().unwrap_or(&Duration::ZERO)),
    ))
}
