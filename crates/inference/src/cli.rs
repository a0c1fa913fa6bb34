//! Command-line front ends for training and benchmarking, shared by the crate's examples
//! and the `inference train` / `inference bench` subcommands, so the flags (and the
//! command recorded in `meta.json`) have one definition.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::{
    BenchConfig, BenchReport, DevicePreference, TrainConfig, run_bench, select_device, train,
};

/// Flags mirror [`TrainConfig`]; the defaults are `TrainConfig::default()`.
#[derive(Debug, Parser)]
#[command(about = "Train the gekko direction model on a synthetic market")]
pub struct TrainArgs {
    /// Root of the model tree.
    #[arg(long, default_value = "models")]
    pub out: PathBuf,
    /// Model name.
    #[arg(long)]
    pub name: Option<String>,
    /// Version to write.
    #[arg(long)]
    pub version: Option<u64>,
    /// Seed of market, initialisation and shuffling.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Quotes to simulate.
    #[arg(long)]
    pub quotes: Option<usize>,
    /// Steps per window.
    #[arg(long)]
    pub window: Option<usize>,
    /// Quotes ahead for the label.
    #[arg(long)]
    pub horizon: Option<usize>,
    /// Hidden width.
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Minibatch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Weight decay.
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Held-out share.
    #[arg(long)]
    pub holdout: Option<f64>,
    /// CPU threads (0 = all); does not change the result.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Replace an existing version directory.
    #[arg(long)]
    pub overwrite: bool,
}

impl TrainArgs {
    /// The training configuration these flags ask for.
    #[must_use]
    pub fn into_config(self) -> TrainConfig {
        let a = self;
        let d = TrainConfig::default();
        TrainConfig {
            name: a.name.unwrap_or(d.name),
            version: a.version.unwrap_or(d.version),
            out_root: a.out,
            seed: a.seed.unwrap_or(d.seed),
            quotes: a.quotes.unwrap_or(d.quotes),
            window: a.window.unwrap_or(d.window),
            horizon: a.horizon.unwrap_or(d.horizon),
            hidden: a.hidden.unwrap_or(d.hidden),
            epochs: a.epochs.unwrap_or(d.epochs),
            batch_size: a.batch_size.unwrap_or(d.batch_size),
            learning_rate: a.lr.unwrap_or(d.learning_rate),
            weight_decay: a.weight_decay.unwrap_or(d.weight_decay),
            holdout_fraction: a.holdout.unwrap_or(d.holdout_fraction),
            threads: a.threads,
            overwrite: a.overwrite,
        }
    }
}

/// Trains with `args` and returns a human-readable summary.
///
/// # Errors
/// Training failures (see [`crate::InferenceError`]).
pub fn run_train(args: TrainArgs) -> Result<String, crate::InferenceError> {
    let started = std::time::Instant::now();
    let (meta, dir) = train(args.into_config())?;
    let t = &meta.train;
    Ok(format!(
        "wrote {}\ntrain loss {:.4}  held-out loss {:.4}  held-out hit rate {:.4} (always-up {:.4})  \
         {} train / {} held-out samples, {} steps, {:.1}s\ncommand: {}",
        dir.display(),
        t.loss,
        t.heldout_loss,
        t.heldout_hit_rate,
        t.heldout_up_fraction,
        t.train_samples,
        t.heldout_samples,
        t.steps,
        started.elapsed().as_secs_f64(),
        t.command
    ))
}

#[derive(Debug, Parser)]
#[command(about = "Benchmark the gekko direction model")]
pub struct BenchArgs {
    /// Model version directory.
    #[arg(long, default_value = "models/direction/1")]
    pub model_dir: PathBuf,
    /// auto, cuda, metal or cpu.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// GPU ordinal.
    #[arg(long, default_value_t = 0)]
    pub ordinal: usize,
    /// CPU threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Seconds per case.
    #[arg(long, default_value_t = 1.5)]
    pub seconds: f64,
}

/// Runs the model benchmark with `args`; returns the report and the device line.
///
/// # Errors
/// An unknown device name.
pub fn run_bench_cli(args: BenchArgs) -> Result<(BenchReport, String), crate::InferenceError> {
    let a = args;
    let pref: DevicePreference = a
        .device
        .parse()
        .map_err(|e| crate::InferenceError::InvalidInput(format!("--device: {e}")))?;
    let (device, report) = select_device(pref, a.ordinal);
    let line = format!(
        "device: {} ({}) — {}",
        report.kind, report.name, report.reason
    );
    let bench = run_bench(BenchConfig {
        model_dir: a.model_dir,
        device,
        device_name: report.name,
        time_per_case: Duration::from_secs_f64(a.seconds.max(0.01)),
        cpu_threads: a.threads,
        ..BenchConfig::default()
    });
    Ok((bench, line))
}
