//! Throughput, latency and efficiency of [`LoadedModel::predict`] on this machine.
//!
//! Predictions per second alone do not say whether the code is good or the machine
//! is slow, so each case is paired with a *ceiling*: a plain candle matmul of the
//! model's dominant shape (`batch × input_len` by `input_len × hidden`), timed in the
//! same run, on the same device, dtype and threads. The model's achieved FLOP/s
//! (from [`LoadedModel::flops_per_row`]) as a fraction of that ceiling shows how much
//! is lost to per-call overhead, small layers and element-wise work.
//!
//! Iteration counts adapt to time: each case runs for about `time_per_case`
//! (at least a few iterations), so a full run of 4 batch sizes × 2 dtypes stays
//! around 20 s on two CPU cores. A dtype the device cannot run (bf16 on candle's
//! CPU backend) is reported as `n/a` with the reason instead of failing the run.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::device::{CpuThreads, RAYON_NUM_THREADS, cpu_pool};
use crate::error::InferenceError;
use crate::model::{LoadedModel, device_kind};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// A model version directory (`models/direction/1`).
    pub model_dir: PathBuf,
    /// Where to run.
    pub device: Device,
    /// A human name for the device, printed in the report.
    pub device_name: String,
    /// Rows per call to measure.
    pub batch_sizes: Vec<usize>,
    /// Dtypes to measure (`F32`, `BF16`).
    pub dtypes: Vec<DType>,
    /// Rough wall time per (dtype, batch) case for `predict`; the ceiling matmul
    /// gets half of it.
    pub time_per_case: Duration,
    /// CPU threads (0 = one per core).
    pub cpu_threads: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            model_dir: PathBuf::from("models/direction/1"),
            device: Device::Cpu,
            device_name: "cpu".to_owned(),
            batch_sizes: vec![1, 64, 1024, 16_384],
            dtypes: vec![DType::F32, DType::BF16],
            time_per_case: Duration::from_millis(1500),
            cpu_threads: 0,
        }
    }
}

/// Measurements for one (dtype, batch) case.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BenchStats {
    /// Timed `predict` calls.
    pub iterations: usize,
    /// Rows scored per second (batch × iterations / total time).
    pub predictions_per_sec: f64,
    /// Median latency of one `predict` call.
    pub p50: Duration,
    /// 99th-percentile latency of one `predict` call.
    pub p99: Duration,
    /// The model's FLOP/s at the median latency.
    pub achieved_flops: f64,
    /// The plain matmul's FLOP/s at its median latency.
    pub ceiling_flops: f64,
}

impl BenchStats {
    /// `achieved_flops / ceiling_flops`.
    #[must_use]
    pub fn fraction_of_ceiling(&self) -> f64 {
        if self.ceiling_flops > 0.0 {
            self.achieved_flops / self.ceiling_flops
        } else {
            0.0
        }
    }
}

/// One row of the report: stats, or why the case could not run.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchRow {
    /// `f32` or `bf16`.
    pub dtype: &'static str,
    /// Rows per call.
    pub batch: usize,
    /// The measurements, or `Err(reason)` for `n/a`.
    pub outcome: Result<BenchStats, String>,
}

/// The result of [`run_bench`].
#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    /// `cpu`, `cuda` or `metal`.
    pub device_kind: &'static str,
    /// The device's human name.
    pub device_name: String,
    /// CPU threads used.
    pub threads: usize,
    /// `name vN (window W, hidden H)`, or the load error.
    pub model: String,
    /// FLOPs per scored row.
    pub flops_per_row: u64,
    /// `RAYON_NUM_THREADS=<n>`, or a note that it was unset (see
    /// [`crate::device::candle_thread_env_hint`]).
    pub thread_env: String,
    /// One row per (dtype, batch).
    pub rows: Vec<BenchRow>,
}

impl BenchReport {
    /// The report as a Markdown table with a short header.
    #[must_use]
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Model {} on {} ({}), {} CPU thread(s), {} FLOP/row, {}.\n",
            self.model,
            self.device_kind,
            self.device_name,
            self.threads,
            self.flops_per_row,
            self.thread_env
        );
        s.push_str(
            "| dtype | batch | predictions/s | p50 | p99 | model GFLOP/s | matmul ceiling GFLOP/s | of ceiling |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for row in &self.rows {
            match &row.outcome {
                Ok(st) => {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {:.0} | {} | {} | {:.2} | {:.2} | {:.0}% |",
                        row.dtype,
                        row.batch,
                        st.predictions_per_sec,
                        fmt_duration(st.p50),
                        fmt_duration(st.p99),
                        st.achieved_flops / 1e9,
                        st.ceiling_flops / 1e9,
                        st.fraction_of_ceiling() * 100.0
                    );
                }
                Err(why) => {
                    let _ = writeln!(
                        s,
                        "| {} | {} | n/a | n/a | n/a | n/a | n/a | n/a ({}) |",
                        row.dtype, row.batch, why
                    );
                }
            }
        }
        s
    }
}

fn fmt_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

/// Runs every (dtype, batch) case of `cfg`. Never fails: a case that cannot run is
/// reported as `n/a` with its reason.
#[must_use]
pub fn run_bench(cfg: BenchConfig) -> BenchReport {
    let threads = CpuThreads::resolve(cfg.cpu_threads).effective;
    let pool = cpu_pool(cfg.cpu_threads).ok();
    let run = || bench_all(&cfg, threads);
    match pool {
        Some(pool) => pool.install(run),
        None => run(),
    }
}

fn bench_all(cfg: &BenchConfig, threads: usize) -> BenchReport {
    let mut report = BenchReport {
        device_kind: device_kind(&cfg.device),
        device_name: cfg.device_name.clone(),
        threads,
        model: cfg.model_dir.display().to_string(),
        flops_per_row: 0,
        thread_env: match std::env::var(RAYON_NUM_THREADS) {
            Ok(v) => format!("{RAYON_NUM_THREADS}={v}"),
            Err(_) => format!("{RAYON_NUM_THREADS} unset (slow CPU matmul set-up)"),
        },
        rows: Vec::new(),
    };
    for &dtype in &cfg.dtypes {
        let model = LoadedModel::load(&cfg.model_dir, &cfg.device, dtype);
        if let Ok(m) = &model {
            let meta = m.meta();
            report.model = format!(
                "{} v{} (window {}, hidden {})",
                meta.name, meta.version, meta.window, meta.hidden
            );
            report.flops_per_row = m.flops_per_row();
        }
        for &batch in &cfg.batch_sizes {
            let outcome = match &model {
                Ok(m) => bench_case(m, batch, cfg.time_per_case).map_err(|e| short_reason(&e)),
                Err(e) => Err(short_reason(e)),
            };
            report.rows.push(BenchRow {
                dtype: dtype.as_str(),
                batch,
                outcome,
            });
        }
    }
    report
}

fn short_reason(e: &InferenceError) -> String {
    let text = match e {
        InferenceError::Unsupported { dtype, device, .. } => {
            format!("{dtype} matmul unsupported on {device}")
        }
        other => other.to_string(),
    };
    text.chars().take(120).collect()
}

fn bench_case(
    model: &LoadedModel,
    batch: usize,
    budget: Duration,
) -> Result<BenchStats, InferenceError> {
    let batch = batch.max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(batch as u64);
    let rows: Vec<f32> = (0..batch * model.input_len())
        .map(|_| rng.random::<f32>() * 2.0 - 1.0)
        .collect();
    let lat = time_loop(budget, || model.predict(&rows, batch).map(drop))?;
    let total: Duration = lat.iter().sum();
    let p50 = percentile(&lat, 0.50);
    let p99 = percentile(&lat, 0.99);
    let flops = model.flops_per_row() as f64 * batch as f64;

    // The ceiling: the model's dominant matmul shape, alone.
    let (device, dtype) = (model.device(), model.dtype());
    let (i, h) = (model.input_len(), model.meta().hidden);
    let compute = |e| InferenceError::compute("running the ceiling matmul", e);
    let a = Tensor::from_slice(&rows, (batch, i), device)
        .and_then(|t| t.to_dtype(dtype))
        .map_err(compute)?;
    let w: Vec<f32> = (0..i * h).map(|_| rng.random::<f32>() - 0.5).collect();
    let b = Tensor::from_vec(w, (i, h), device)
        .and_then(|t| t.to_dtype(dtype))
        .map_err(compute)?;
    let mm = time_loop(budget / 2, || {
        a.matmul(&b)
            .and_then(|_| device.synchronize())
            .map_err(compute)
    })?;
    let mm_flops = 2.0 * (batch * i * h) as f64;
    Ok(BenchStats {
        iterations: lat.len(),
        predictions_per_sec: (batch * lat.len()) as f64 / total.as_secs_f64().max(1e-12),
        p50,
        p99,
        achieved_flops: flops / p50.as_secs_f64().max(1e-12),
        ceiling_flops: mm_flops / percentile(&mm, 0.50).as_secs_f64().max(1e-12),
    })
}

/// Calls `f` for about `budget` (at least 5 times, after 2 warm-up calls; at most
/// 200 000 times) and returns each call's latency, sorted.
fn time_loop(
    budget: Duration,
    mut f: impl FnMut() -> Result<(), InferenceError>,
) -> Result<Vec<Duration>, InferenceError> {
    const MIN_ITERS: usize = 5;
    const MAX_ITERS: usize = 200_000;
    for _ in 0..2 {
        f()?;
    }
    let begin = Instant::now();
    let mut lat = Vec::new();
    while lat.len() < MIN_ITERS || (begin.elapsed() < budget && lat.len() < MAX_ITERS) {
        let t = Instant::now();
        f()?;
        lat.push(t.elapsed());
    }
    lat.sort_unstable();
    Ok(lat)
}

/// The `q` quantile of sorted latencies (nearest rank).
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn na_rows_render() {
        let report = BenchReport {
            device_kind: "cpu",
            device_name: "test".into(),
            threads: 2,
            model: "m".into(),
            flops_per_row: 10,
            thread_env: "RAYON_NUM_THREADS=2".into(),
            rows: vec![BenchRow {
                dtype: "bf16",
                batch: 1,
                outcome: Err("bf16 matmul unsupported on cpu".into()),
            }],
        };
        let md = report.to_markdown();
        assert!(md.contains("| bf16 | 1 | n/a |"), "{md}");
    }
}
