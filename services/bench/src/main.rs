//! `gekko-bench`: end-to-end benchmarks of what a user feels, each printing one table
//! (Markdown, or JSON with `--json`) with a reference measured in the same run:
//!
//! - `tick-to-signal`: simulator websocket tick → gateway → Redis → inference → signal on
//!   Redis, p50/p99/p99.9, swept over the inference batcher's deadline;
//! - `signal-to-ack`: gRPC `PlaceOrder` → checks → persist → signed REST → venue ack →
//!   reply, per venue, with the gateway's stage histograms;
//! - `md-capacity`: the most ticks/s one gateway on one core carries to its Redis stream,
//!   beside `redis-benchmark -P 64 XADD`;
//! - `footprint`: idle RSS and time to `/readyz` of the service binaries and `gekko up`.
//!
//! Everything runs on this machine and one clock; see `docs/benchmarks.md`.

mod ack;
mod capacity;
mod common;
mod footprint;
mod recorder;
mod tick;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use gekko_core::VenueId;

/// Locks a mutex, ignoring poisoning (the bench's data stays usable after a panic
/// elsewhere): the workspace's one helper.
pub(crate) use gekko_core::sync::lock;

#[derive(Debug, Parser)]
#[command(
    name = "gekko-bench",
    about = "End-to-end latency, capacity and footprint benchmarks"
)]
struct Cli {
    /// Print the table as one JSON object instead of Markdown.
    #[arg(long, global = true)]
    json: bool,
    /// Run against this Redis instead of starting a redis-server on a free port.
    #[arg(long, global = true)]
    redis_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Tick → signal latency at a tick rate, for each batcher deadline.
    TickToSignal {
        /// Ticks per second across all symbols.
        #[arg(long, default_value_t = 1000)]
        rate: u32,
        /// Measured seconds per deadline.
        #[arg(long, default_value_t = 10)]
        secs: u64,
        /// Warm-up seconds before measuring.
        #[arg(long, default_value_t = 3)]
        warmup_secs: u64,
        /// Number of simulated symbols (ticks go round robin over them).
        #[arg(long, default_value_t = 50)]
        symbols: usize,
        /// Batcher deadlines (`batch_max_wait`) to sweep, in µs, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "0,250,1000,2000")]
        deadlines_us: Vec<u64>,
    },
    /// gRPC PlaceOrder → venue ack → reply latency per venue, with stages.
    SignalToAck {
        /// Venues, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "binanceus,coinbase,oanda"
        )]
        venue: Vec<String>,
        /// Orders per venue (after 10 warm-up orders).
        #[arg(long, default_value_t = 200)]
        orders: usize,
    },
    /// Most ticks/s one gateway carries to its Redis stream on one core.
    MdCapacity {
        /// Venue (only binanceus has the rate-controlled tick source).
        #[arg(long, default_value = "binanceus")]
        venue: String,
        /// First offered rate; each step doubles it.
        #[arg(long, default_value_t = 2000)]
        start_rate: u32,
        /// Highest offered rate.
        #[arg(long, default_value_t = 128_000)]
        max_rate: u32,
        /// Seconds per step.
        #[arg(long, default_value_t = 3)]
        secs: u64,
        /// Number of simulated symbols.
        #[arg(long, default_value_t = 50)]
        symbols: usize,
        /// Requests of the redis-benchmark reference.
        #[arg(long, default_value_t = 500_000)]
        reference_requests: u64,
    },
    /// Idle RSS and time to /readyz of the service binaries and `gekko up`.
    Footprint {
        /// Directory of the binaries (default: this executable's directory).
        #[arg(long)]
        bin_dir: Option<PathBuf>,
        /// Only these targets (gekko-up, gateway-binanceus, gateway-coinbase,
        /// gateway-oanda, inference), comma-separated.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Idle seconds before reading RSS.
        #[arg(long, default_value_t = 3)]
        idle_secs: u64,
    },
}

fn venue(name: &str) -> anyhow::Result<VenueId> {
    name.parse::<VenueId>()
        .map_err(|_| anyhow::anyhow!("unknown venue {name:?}: binanceus, coinbase or oanda"))
}

fn main() -> anyhow::Result<()> {
    inference_service::pin_cpu_threads();
    let cli = Cli::parse();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let redis = cli.redis_url.as_deref();
    let table = rt.block_on(async {
        match cli.command {
            Command::TickToSignal {
                rate,
                secs,
                warmup_secs,
                symbols,
                deadlines_us,
            } => {
                if symbols == 0 {
                    anyhow::bail!("--symbols must be at least 1");
                }
                let opts = tick::TickOpts {
                    rate,
                    secs,
                    symbols,
                    deadlines: deadlines_us.into_iter().map(Duration::from_micros).collect(),
                    warmup_secs,
                };
                tick::run(&opts, redis).await
            }
            Command::SignalToAck { venue: v, orders } => {
                let venues = v.iter().map(|n| venue(n)).collect::<anyhow::Result<Vec<_>>>()?;
                ack::run(&venues, orders, redis).await
            }
            Command::MdCapacity {
                venue: v,
                start_rate,
                max_rate,
                secs,
                symbols,
                reference_requests,
            } => {
                if venue(&v)? != VenueId::BinanceUs {
                    anyhow::bail!(
                        "md-capacity --venue {v}: only the Binance.US simulator has a rate-controlled tick source"
                    );
                }
                if symbols == 0 {
                    anyhow::bail!("--symbols must be at least 1");
                }
                let opts = capacity::CapacityOpts {
                    start_rate,
                    max_rate,
                    secs,
                    symbols,
                    reference_requests,
                };
                capacity::run(&opts, redis).await
            }
            Command::Footprint {
                bin_dir,
                only,
                idle_secs,
            } => {
                let bin_dir = match bin_dir {
                    Some(d) => d,
                    None => std::env::current_exe()?
                        .parent()
                        .map(PathBuf::from)
                        .ok_or_else(|| anyhow::anyhow!("this executable has no directory"))?,
                };
                footprint::run(&footprint::FootprintOpts {
                    bin_dir,
                    only,
                    idle_secs,
                })
                .await
            }
        }
    })?;
    table.print(cli.json);
    Ok(())
}
