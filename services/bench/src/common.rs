//! What every subcommand shares: the Redis server, percentiles, the load average, the
//! wall clock in nanoseconds, and the table printer.

use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;

/// A Redis to run against: one this process started (stopped on drop), or `--redis-url`.
#[derive(Debug)]
pub(crate) struct Redis {
    /// The server, when this process started it (kept for its lifetime).
    _server: Option<gekko_testkit::RedisServer>,
    /// Its URL.
    pub(crate) url: String,
}

impl Redis {
    /// Starts a `redis-server` on a free port, unless `url` names one.
    ///
    /// # Errors
    /// `redis-server` is missing or does not start.
    pub(crate) fn start_or(url: Option<&str>) -> anyhow::Result<Self> {
        if let Some(u) = url {
            return Ok(Self {
                _server: None,
                url: u.to_owned(),
            });
        }
        let server = gekko_testkit::RedisServer::try_start().map_err(|e| {
            anyhow::anyhow!("cannot start redis-server (apt-get install redis-server): {e}")
        })?;
        Ok(Self {
            url: server.url(),
            _server: Some(server),
        })
    }

    /// Opens the bus on it.
    ///
    /// # Errors
    /// Redis does not answer.
    pub(crate) async fn bus(&self) -> anyhow::Result<std::sync::Arc<dyn gekko_bus::Bus>> {
        gekko_bus::open(Some(&self.url))
            .await
            .with_context(|| format!("open the bus on {}", gekko_bus::redis_bus_redact(&self.url)))
    }
}

/// The wall clock in nanoseconds since the Unix epoch: the clock the simulator stamps its
/// ticks with and gekko stamps quotes with.
pub(crate) fn unix_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The 1-minute load average, from `/proc/loadavg` ("?" when unreadable).
pub(crate) fn load1() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// Latency percentiles of a sample, in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Percentiles {
    /// Sample size.
    pub(crate) n: usize,
    /// Median.
    pub(crate) p50_us: f64,
    /// 99th percentile.
    pub(crate) p99_us: f64,
    /// 99.9th percentile.
    pub(crate) p999_us: f64,
    /// Largest.
    pub(crate) max_us: f64,
}

impl Percentiles {
    /// Percentiles (nearest rank) of `samples_ns`; `None` for an empty sample.
    pub(crate) fn of(samples_ns: &mut [i64]) -> Option<Self> {
        if samples_ns.is_empty() {
            return None;
        }
        samples_ns.sort_unstable();
        let n = samples_ns.len();
        let rank = |q_per_mille: usize| {
            let r = (q_per_mille * n).div_ceil(1000).max(1);
            us(samples_ns[r.min(n) - 1])
        };
        Some(Self {
            n,
            p50_us: rank(500),
            p99_us: rank(990),
            p999_us: rank(999),
            max_us: us(samples_ns[n - 1]),
        })
    }

    /// "p50 / p99 / p99.9 / max" in ms with three decimals.
    pub(crate) fn ms(&self) -> String {
        format!(
            "{:.3} / {:.3} / {:.3} / {:.3} ms",
            self.p50_us / 1000.0,
            self.p99_us / 1000.0,
            self.p999_us / 1000.0,
            self.max_us / 1000.0
        )
    }
}

/// Nanoseconds as microseconds, for display.
#[expect(
    clippy::cast_precision_loss,
    reason = "display of a latency; nanosecond precision beyond 2^52 is irrelevant"
)]
pub(crate) fn us(ns: i64) -> f64 {
    ns as f64 / 1000.0
}

/// Seconds as a `Duration`-free microsecond figure (for metrics histograms in seconds).
pub(crate) fn secs_to_ns(s: f64) -> i64 {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "a stage timing in seconds, far below i64::MAX ns"
    )]
    let ns = (s * 1e9).round() as i64;
    ns
}

/// A printed table: a title, a header and rows, also serializable for `--json`.
#[derive(Debug, Serialize)]
pub(crate) struct Table {
    /// What was measured.
    pub(crate) title: String,
    /// Column names.
    pub(crate) header: Vec<String>,
    /// Rows of cells.
    pub(crate) rows: Vec<Vec<String>>,
    /// Structured figures for `--json`.
    pub(crate) figures: serde_json::Value,
}

impl Table {
    /// A table with a title and header and no rows.
    pub(crate) fn new(title: impl Into<String>, header: &[&str]) -> Self {
        Self {
            title: title.into(),
            header: header.iter().map(|&h| h.to_owned()).collect(),
            rows: Vec::new(),
            figures: serde_json::Value::Array(Vec::new()),
        }
    }

    /// Appends a row.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Appends a structured figure.
    pub(crate) fn figure(&mut self, v: serde_json::Value) {
        if let serde_json::Value::Array(a) = &mut self.figures {
            a.push(v);
        }
    }

    /// Prints it as Markdown, or as one JSON object.
    pub(crate) fn print(&self, json: bool) {
        if json {
            match serde_json::to_string(self) {
                Ok(s) => println!("{s}"),
                Err(e) => eprintln!("cannot serialize the table: {e}"),
            }
            return;
        }
        println!("{}\n", self.title);
        println!("| {} |", self.header.join(" | "));
        println!("|{}", "---|".repeat(self.header.len()));
        for r in &self.rows {
            println!("| {} |", r.join(" | "));
        }
        println!();
    }
}

/// Waits until `cond` holds, polling every 20 ms, for at most `timeout`.
///
/// # Errors
/// It did not hold in time; the error names `what`.
pub(crate) async fn wait_for(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond() {
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
