//! `bus-bench`: the Redis bus measured against `redis-benchmark` on the same server.
//!
//! Starts its own `redis-server` (append-only, `appendfsync everysec`) on a free port and
//! prints one table:
//! - `redis-benchmark -P 64` and `-P 1` running `XADD` with the same ~200-byte payload:
//!   the server's ceiling for raw appends, pipelined and not;
//! - gekko end to end: publish (pipelined batches) -> consume through a consumer group
//!   -> ack, all concurrently, in messages per second;
//! - publish-to-consume latency p50/p99/max at a steady 10,000 msg/s, single appends;
//! - the in-process bus on the same end-to-end workload, for reference.
//!
//! Usage: `cargo run --release -p bus-bench -- [messages]` (default 500000).
//!
//! `--cluster [messages]` (default 200000 per shard) measures the bus on a local Redis
//! Cluster of 3 masters with 1 replica each, which it starts itself, beside a single
//! `redis-server` started in the same run:
//! - `redis-benchmark -P 64 XADD` on each master (a key of that master's slots) and on
//!   the single server;
//! - end to end (publish -> XREADGROUP -> XACK) on one stream per shard, all shards at
//!   once: each shard's rate and the aggregate, beside the single server running the
//!   same three streams at once, and one stream alone;
//! - the cost of `WAIT 1` on durable appends: the same run with and without it, and the
//!   round trip of one durable append at a time with and without it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use gekko_bus::{Bus, MemoryBus, RedisBus, RedisBusOptions, StreamSpec};
use gekko_testkit::{RedisCluster, RedisServer};

const PAYLOAD_LEN: usize = 200;
/// Messages per pipelined publish batch.
const BATCH: usize = 1024;

fn payload(i: u64, stamp_ns: u64) -> Bytes {
    // 16 bytes of header (sequence, send time) then filler to ~200 bytes.
    let mut v = Vec::with_capacity(PAYLOAD_LEN);
    v.extend_from_slice(&i.to_le_bytes());
    v.extend_from_slice(&stamp_ns.to_le_bytes());
    v.resize(PAYLOAD_LEN, b'x');
    Bytes::from(v)
}

fn stamp(p: &[u8]) -> u64 {
    p.get(8..16)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

fn redis_benchmark(port: u16, pipeline: u32, n: u64) -> anyhow::Result<f64> {
    redis_benchmark_key(port, pipeline, n, "bench:redis-benchmark")
}

/// `redis-benchmark -P pipeline XADD key * d <payload>` on one server; on a cluster node
/// `key` must hash to one of its slots.
fn redis_benchmark_key(port: u16, pipeline: u32, n: u64, key: &str) -> anyhow::Result<f64> {
    let filler = "x".repeat(PAYLOAD_LEN);
    let out = std::process::Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-P",
            &pipeline.to_string(),
        ])
        .args(["-n", &n.to_string(), "-c", "50", "-q"])
        .args(["XADD", key, "*", "d", &filler])
        .output()
        .context("run redis-benchmark (apt-get install redis-tools)")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    // The last carriage-return-separated fragment holds the summary:
    // "XADD ...: 123456.79 requests per second, p50=0.303 msec"
    let summary = text.rsplit('\r').next().unwrap_or(&text);
    let rps = summary
        .split(" requests per second")
        .next()
        .and_then(|s| s.rsplit(": ").next())
        .and_then(|s| s.trim().parse::<f64>().ok());
    match rps {
        Some(r) => Ok(r),
        None => bail!("cannot parse redis-benchmark output: {text:?}"),
    }
}

/// Publishes `n` messages in pipelined batches while `consumers` members of one consumer
/// group read and ack concurrently; returns messages per second from first publish to
/// last ack.
async fn end_to_end(
    bus: Arc<dyn Bus>,
    stream: &str,
    n: u64,
    consumers: usize,
) -> anyhow::Result<f64> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let spec = StreamSpec::durable(stream);
    bus.ensure_group(stream, "bench").await?;
    let consumed = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for c in 0..consumers {
        readers.push(bus.group_reader(stream, "bench", &format!("c{c}")).await?);
    }
    let started = Instant::now();
    let producer = {
        let bus = bus.clone();
        tokio::spawn(async move {
            use futures::StreamExt as _;
            // Up to 8 pipelined batches in flight on the writer connection; redis-rs sends
            // them in submission order, so the stream order is the publish order.
            let batches = (0..n).step_by(BATCH).map(move |start| {
                let batch: Vec<Bytes> = (start..(start + BATCH as u64).min(n))
                    .map(|j| payload(j, 0))
                    .collect();
                let (bus, spec) = (bus.clone(), spec.clone());
                async move { bus.append_batch(&spec, &batch).await.map(|_| ()) }
            });
            let mut inflight = futures::stream::iter(batches).buffered(8);
            while let Some(r) = inflight.next().await {
                r?;
            }
            Ok::<_, gekko_bus::BusError>(())
        })
    };
    let tasks: Vec<_> = readers
        .into_iter()
        .map(|mut reader| {
            let consumed = consumed.clone();
            tokio::spawn(async move {
                let mut to_ack: Vec<String> = Vec::new();
                while consumed.load(Ordering::Relaxed) < n {
                    // Ack the previous batch and read the next in one round trip.
                    let (_, batch) = reader
                        .ack_and_read(&to_ack, 4096, Duration::from_millis(200))
                        .await?;
                    to_ack = batch.into_iter().map(|d| d.id).collect();
                    consumed.fetch_add(to_ack.len() as u64, Ordering::Relaxed);
                }
                reader.ack(&to_ack).await?;
                Ok::<_, gekko_bus::BusError>(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed();
    producer.await??;
    let got = consumed.load(Ordering::Relaxed);
    if got != n {
        bail!("consumed {got} of {n}");
    }
    Ok(n as f64 / elapsed.as_secs_f64())
}

/// Publish-only and consume-only rates on separate streams, to show which side limits
/// the end-to-end figure.
async fn split_phases(bus: Arc<dyn Bus>, stream: &str, n: u64) -> anyhow::Result<(f64, f64)> {
    use futures::StreamExt as _;
    let spec = StreamSpec::durable(stream);
    bus.ensure_group(stream, "split").await?;
    let started = Instant::now();
    let batches = (0..n).step_by(BATCH).map(|start| {
        let batch: Vec<Bytes> = (start..(start + BATCH as u64).min(n))
            .map(|j| payload(j, 0))
            .collect();
        let (bus, spec) = (bus.clone(), spec.clone());
        async move { bus.append_batch(&spec, &batch).await.map(|_| ()) }
    });
    let mut inflight = futures::stream::iter(batches).buffered(8);
    while let Some(r) = inflight.next().await {
        r?;
    }
    let publish = n as f64 / started.elapsed().as_secs_f64();

    let mut reader = bus.group_reader(stream, "split", "c1").await?;
    let started = Instant::now();
    let (mut consumed, mut to_ack) = (0, Vec::new());
    while consumed < n {
        let (_, batch) = reader
            .ack_and_read(&to_ack, 4096, Duration::from_secs(5))
            .await?;
        if batch.is_empty() {
            bail!("consumer starved after {consumed} of {n}");
        }
        to_ack = batch.into_iter().map(|d| d.id).collect();
        consumed += to_ack.len() as u64;
    }
    reader.ack(&to_ack).await?;
    let consume = n as f64 / started.elapsed().as_secs_f64();
    Ok((publish, consume))
}

struct Latency {
    p50: Duration,
    p99: Duration,
    max: Duration,
    sent: u64,
    achieved_rate: f64,
}

/// Publishes single appends at a steady `rate` for `secs`, consuming concurrently;
/// returns publish-to-consume latency percentiles.
async fn latency_at_rate(
    bus: Arc<dyn Bus>,
    stream: &str,
    rate: u64,
    secs: u64,
) -> anyhow::Result<Latency> {
    let spec = StreamSpec::durable(stream);
    bus.ensure_group(stream, "lat").await?;
    let mut reader = bus.group_reader(stream, "lat", "c1").await?;
    let origin = Instant::now();
    let total = rate * secs;
    let per_tick = rate / 1000;
    let producer = {
        let bus = bus.clone();
        tokio::spawn(async move {
            // Tokio timers tick at 1 ms, so 10k msg/s is 10 concurrent single appends per
            // tick; each is stamped when it is handed to the bus.
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut i = 0;
            while i < total {
                tick.tick().await;
                let sends = (0..per_tick).map(|k| {
                    let now = u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    let p = payload(i + k, now);
                    let (bus, spec) = (bus.clone(), spec.clone());
                    async move { bus.append(&spec, p).await }
                });
                for r in futures::future::join_all(sends).await {
                    r?;
                }
                i += per_tick;
            }
            Ok::<_, gekko_bus::BusError>(())
        })
    };
    let mut lat = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let mut ids: Vec<String> = Vec::new();
    while (lat.len() as u64) < total {
        let (_, batch) = reader
            .ack_and_read(&ids, 1000, Duration::from_secs(5))
            .await?;
        if batch.is_empty() {
            bail!("latency consumer starved after {}", lat.len());
        }
        let now = u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        ids.clear();
        for d in batch {
            lat.push(Duration::from_nanos(now.saturating_sub(stamp(&d.payload))));
            ids.push(d.id);
        }
    }
    reader.ack(&ids).await?;
    let elapsed = origin.elapsed();
    producer.await??;
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    Ok(Latency {
        p50: pct(0.50),
        p99: pct(0.99),
        max: *lat.last().unwrap_or(&Duration::ZERO),
        sent: total,
        achieved_rate: total as f64 / elapsed.as_secs_f64(),
    })
}

fn fmt_rate(r: f64) -> String {
    format!("{:>10.0} msg/s", r)
}

/// One end-to-end run per stream, all at once; returns each stream's rate and the
/// aggregate (all messages over the wall time of the slowest).
async fn concurrent_end_to_end(
    bus: Arc<dyn Bus>,
    streams: &[String],
    n: u64,
) -> anyhow::Result<(Vec<f64>, f64)> {
    let started = Instant::now();
    let runs = streams.iter().map(|s| end_to_end(bus.clone(), s, n, 1));
    let rates = futures::future::try_join_all(runs).await?;
    let aggregate = (n * streams.len() as u64) as f64 / started.elapsed().as_secs_f64();
    Ok((rates, aggregate))
}

/// `n` durable appends one after another; each one's time from call to acknowledgement.
async fn append_round_trips(bus: &dyn Bus, stream: &str, n: u64) -> anyhow::Result<Vec<Duration>> {
    let spec = StreamSpec::durable(stream);
    let mut out = Vec::new();
    for i in 0..n {
        let p = payload(i, 0);
        let t = Instant::now();
        bus.append(&spec, p).await?;
        out.push(t.elapsed());
    }
    Ok(out)
}

async fn cluster_main(n: u64) -> anyhow::Result<()> {
    let server = RedisServer::try_start_with_fsync("everysec").map_err(anyhow::Error::msg)?;
    let cluster = RedisCluster::try_start(3, 1).map_err(anyhow::Error::msg)?;
    let masters = cluster.master_ports().map_err(anyhow::Error::msg)?;
    // A hash-tagged key on each master, in master order.
    let mut keys = Vec::new();
    for &m in &masters {
        let key = (0..10_000)
            .map(|i| format!("bench:{{shard-{i}}}"))
            .find(|k| cluster.master_of(k).is_ok_and(|p| p == m))
            .context("no key found for a master")?;
        keys.push(key);
    }
    eprintln!(
        "single redis-server on {}, cluster masters {masters:?}; {n} messages of {PAYLOAD_LEN} bytes per stream",
        server.port()
    );
    let rb_n = n.max(1_000_000);
    let rb_single = redis_benchmark_key(server.port(), 64, rb_n, "bench:rb")?;
    let mut rb_masters = Vec::new();
    for (&m, k) in masters.iter().zip(&keys) {
        rb_masters.push(redis_benchmark_key(m, 64, rb_n, k)?);
    }

    let single: Arc<dyn Bus> =
        Arc::new(RedisBus::connect(&server.url(), RedisBusOptions::default()).await?);
    let no_wait = RedisBusOptions {
        replicas_to_ack: 0,
        ..RedisBusOptions::default()
    };
    let on_cluster: Arc<dyn Bus> =
        Arc::new(RedisBus::connect(&cluster.redis_url(), no_wait).await?);
    let on_cluster_wait: Arc<dyn Bus> =
        Arc::new(RedisBus::connect(&cluster.redis_url(), RedisBusOptions::default()).await?);

    let single_one = end_to_end(single.clone(), "bench:{single-1}", n, 1).await?;
    let single_streams: Vec<String> = (0..keys.len())
        .map(|i| format!("bench:{{single-3-{i}}}"))
        .collect();
    let (_, single_three) = concurrent_end_to_end(single.clone(), &single_streams, n).await?;
    let streams: Vec<String> = keys.iter().map(|k| format!("{k}:e2e")).collect();
    let (per_shard, aggregate) = concurrent_end_to_end(on_cluster.clone(), &streams, n).await?;
    let streams_wait: Vec<String> = keys.iter().map(|k| format!("{k}:e2e-wait")).collect();
    let (per_shard_wait, aggregate_wait) =
        concurrent_end_to_end(on_cluster_wait.clone(), &streams_wait, n).await?;
    // What WAIT adds to an append as the writer sees it: one durable append at a time,
    // timed from the call to its acknowledgement; the two runs alternate in rounds so
    // that load from elsewhere on the machine hits both alike.
    let (mut rt, mut rt_wait) = (Vec::new(), Vec::new());
    for round in 0..4 {
        let k = &keys[0];
        rt.extend(append_round_trips(on_cluster.as_ref(), &format!("{k}:rt-{round}"), 500).await?);
        rt_wait.extend(
            append_round_trips(on_cluster_wait.as_ref(), &format!("{k}:rtw-{round}"), 500).await?,
        );
    }

    let rb_sum: f64 = rb_masters.iter().sum();
    println!(
        "| measurement (same run, {PAYLOAD_LEN}-byte payloads, {n} msgs per stream) | result | vs single node |"
    );
    println!("|---|---|---|");
    println!(
        "| redis-benchmark -P 64 XADD, single redis-server (reference) | {} | 100% |",
        fmt_rate(rb_single)
    );
    for (i, (r, m)) in rb_masters.iter().zip(&masters).enumerate() {
        println!(
            "| redis-benchmark -P 64 XADD, cluster master {i} (port {m}) | {} | {:.0}% |",
            fmt_rate(*r),
            100.0 * r / rb_single
        );
    }
    println!(
        "| redis-benchmark -P 64 XADD, sum of the 3 masters (run one after another) | {} | {:.0}% |",
        fmt_rate(rb_sum),
        100.0 * rb_sum / rb_single
    );
    println!(
        "| gekko end to end, single redis-server, 1 stream (reference) | {} | 100% |",
        fmt_rate(single_one)
    );
    println!(
        "| gekko end to end, single redis-server, 3 streams at once (aggregate) | {} | {:.0}% |",
        fmt_rate(single_three),
        100.0 * single_three / single_one
    );
    for (i, r) in per_shard.iter().enumerate() {
        println!(
            "| gekko end to end, cluster shard {i}, 3 shards at once, no WAIT | {} | {:.0}% |",
            fmt_rate(*r),
            100.0 * r / single_one
        );
    }
    println!(
        "| gekko end to end, cluster aggregate (3 shards), no WAIT | {} | {:.0}% (target >= 250% on 16 cores) |",
        fmt_rate(aggregate),
        100.0 * aggregate / single_one
    );
    for (i, r) in per_shard_wait.iter().enumerate() {
        println!(
            "| gekko end to end, cluster shard {i}, durable appends with WAIT 1 | {} | {:.0}% |",
            fmt_rate(*r),
            100.0 * r / single_one
        );
    }
    println!(
        "| gekko end to end, cluster aggregate, durable appends with WAIT 1 | {} | {:.0}% ({:.0}% of no WAIT) |",
        fmt_rate(aggregate_wait),
        100.0 * aggregate_wait / single_one,
        100.0 * aggregate_wait / aggregate
    );
    for (what, v) in [("no WAIT", &mut rt), ("WAIT 1", &mut rt_wait)] {
        v.sort();
        let pct = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
        println!(
            "| cluster durable append round trip, one at a time ({} appends), {what}: p50 / p99 | {:.3} / {:.3} ms | - |",
            v.len(),
            pct(0.50).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3
        );
    }
    println!(
        "\nmachine: {} cores; every redis-server, replica and the bench share them",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    drop(cluster);
    drop(server);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--cluster") {
        args.remove(i);
        let n: u64 = args.first().map_or(Ok(200_000), |s| s.parse())?;
        return cluster_main(n).await;
    }
    let n: u64 = args.first().map_or(Ok(500_000), |s| s.parse())?;
    let server = RedisServer::try_start_with_fsync("everysec").map_err(anyhow::Error::msg)?;
    let port = server.port();
    eprintln!("redis-server on port {port}; {n} messages of {PAYLOAD_LEN} bytes");

    let rb64 = redis_benchmark(port, 64, n.max(1_000_000))?;
    let rb1 = redis_benchmark(port, 1, n.min(200_000))?;
    let bus: Arc<dyn Bus> =
        Arc::new(RedisBus::connect(&server.url(), RedisBusOptions::default()).await?);
    let e2e = end_to_end(bus.clone(), "bench:e2e", n, 1).await?;
    let e2e2 = end_to_end(bus.clone(), "bench:e2e2", n, 2).await?;
    let (publish_only, consume_only) = split_phases(bus.clone(), "bench:split", n).await?;
    let lat = latency_at_rate(bus.clone(), "bench:latency", 10_000, 5).await?;
    let mem = end_to_end(Arc::new(MemoryBus::new()), "bench:mem", n, 1).await?;

    println!(
        "| measurement (same redis-server, {PAYLOAD_LEN}-byte payloads) | result | vs -P 64 XADD |"
    );
    println!("|---|---|---|");
    println!(
        "| redis-benchmark -P 64 XADD (reference) | {} | 100% |",
        fmt_rate(rb64)
    );
    println!(
        "| redis-benchmark -P 1 XADD (reference) | {} | {:.0}% |",
        fmt_rate(rb1),
        100.0 * rb1 / rb64
    );
    println!(
        "| gekko RedisBus: publish -> XREADGROUP -> XACK, end to end, 1 consumer | {} | {:.0}% (target >= 50%) |",
        fmt_rate(e2e),
        100.0 * e2e / rb64
    );
    println!(
        "| gekko RedisBus: same, 2 consumers in the group | {} | {:.0}% (target >= 50%) |",
        fmt_rate(e2e2),
        100.0 * e2e2 / rb64
    );
    println!(
        "| gekko RedisBus latency at {:.0} msg/s ({} msgs): p50 / p99 / max | {:.3} / {:.3} / {:.3} ms | p99 target < 1 ms |",
        lat.achieved_rate,
        lat.sent,
        lat.p50.as_secs_f64() * 1e3,
        lat.p99.as_secs_f64() * 1e3,
        lat.max.as_secs_f64() * 1e3
    );
    println!(
        "| diagnostic: gekko publish only (pipelined batches of {BATCH}) | {} | {:.0}% |",
        fmt_rate(publish_only),
        100.0 * publish_only / rb64
    );
    println!(
        "| diagnostic: gekko consume + ack only (pre-filled stream) | {} | {:.0}% |",
        fmt_rate(consume_only),
        100.0 * consume_only / rb64
    );
    println!(
        "| gekko MemoryBus: same end-to-end workload (in-process reference) | {} | - |",
        fmt_rate(mem)
    );
    drop(server);
    Ok(())
}
