//! Trains the direction model on the seeded synthetic market and writes
//! `<out>/<name>/<version>/{model.safetensors,meta.json}`.
//!
//! With no flags it reproduces the committed `models/direction/1` (run it from the
//! workspace root with `--overwrite`); `meta.json` records the exact command used.
//! The `inference train` subcommand takes the same flags.

use clap::Parser;
use gekko_inference::cli::{TrainArgs, run_train};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    println!("{}", run_train(TrainArgs::parse())?);
    Ok(())
}
