//! Benchmarks the direction model: predictions per second and latency per batch size
//! and dtype, next to a plain matmul of the model's dominant shape as the ceiling.
//! The `inference bench` subcommand takes the same flags and adds the gRPC path.

use clap::Parser;
use gekko_inference::cli::{BenchArgs, run_bench_cli};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = std::time::Instant::now();
    let (bench, device) = run_bench_cli(BenchArgs::parse())?;
    eprintln!("{device}");
    println!("{}", bench.to_markdown());
    eprintln!("bench took {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}
