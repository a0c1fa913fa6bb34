//! Choosing where inference runs, and how much of the machine it may use.
//!
//! The service is built three ways (CPU only, `cuda`, `metal`) but configured one way
//! (`auto|cuda|metal|cpu`). [`select_device`] reconciles the two at start-up and
//! never fails: if the preferred accelerator is not compiled in, is absent, or
//! cannot run a kernel, it degrades to the CPU and says so in a [`DeviceReport`]
//! (`fallback: true` plus the reason) and in the `gekko_inference_fallback` gauge.
//! Whether a fallback is acceptable is policy, so it is left to the binary: it can
//! refuse to start when `cuda` was asked for explicitly and `fallback` is set.
//!
//! Creating a device is not enough to trust it: a CUDA context can open while the
//! PTX embedded in the binary is too new for the driver, which only shows at the
//! first kernel launch. So every accelerator is probed with a tiny matmul before it
//! is accepted.
//!
//! CPU work runs inside a dedicated rayon pool ([`cpu_pool`]) rather than rayon's
//! global one, so the configured thread count is honoured without touching
//! environment variables (setting them is `unsafe` in edition 2024, and this
//! workspace forbids `unsafe`). candle's matmul (the `gemm` crate) runs on the rayon
//! pool it is called from, so `pool.install(..)` bounds it. candle 0.11 also has a
//! private pool for very large element-wise ops (≥ 64 Ki elements), sized from
//! `CANDLE_NUM_THREADS`/`RAYON_NUM_THREADS`; the MLP here stays under that size up to
//! batches of 1024 rows, and above it the extra threads only do element-wise work.

use std::fmt;
use std::str::FromStr;

use candle_core::{DType, Device, Tensor};

use crate::error::InferenceError;

/// Where the operator would like inference to run (`INFERENCE_DEVICE`-style config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DevicePreference {
    /// The best compiled-in accelerator that works (CUDA, then Metal), else the CPU.
    #[default]
    Auto,
    /// An NVIDIA GPU through CUDA.
    Cuda,
    /// An Apple GPU through Metal.
    Metal,
    /// The CPU only.
    Cpu,
}

impl DevicePreference {
    /// The config spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Cuda => "cuda",
            Self::Metal => "metal",
            Self::Cpu => "cpu",
        }
    }
}

impl fmt::Display for DevicePreference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DevicePreference {
    type Err = InferenceError;

    /// Parses `auto`, `cuda`, `metal` or `cpu` (lower case, as in config).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "cuda" => Ok(Self::Cuda),
            "metal" => Ok(Self::Metal),
            "cpu" => Ok(Self::Cpu),
            other => Err(InferenceError::InvalidInput(format!(
                "device preference {other:?} is not one of auto, cuda, metal, cpu"
            ))),
        }
    }
}

/// What [`select_device`] chose and why; logged at start-up and exposed on `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceReport {
    /// `"cuda"`, `"metal"` or `"cpu"`.
    pub kind: &'static str,
    /// A human name: the GPU model, or the CPU model and thread count.
    pub name: String,
    /// Why this device was chosen, e.g. `"cuda feature not compiled in; using CPU"`.
    pub reason: String,
    /// CUDA compute capability such as `"9.0"`, where the driver tells.
    pub compute_capability: Option<String>,
    /// Total device memory in MiB, where the driver tells.
    pub memory_total_mb: Option<u64>,
    /// True when an accelerator was wanted (explicitly, or compiled in under `auto`)
    /// but the CPU is used instead.
    pub fallback: bool,
}

impl DeviceReport {
    /// Whether the chosen device is a GPU (and so subject to the memory budget).
    #[must_use]
    pub fn is_gpu(&self) -> bool {
        self.kind != "cpu"
    }
}

/// Picks the device for `pref` (GPU `ordinal` where one is used), degrading to the
/// CPU rather than failing. Also sets the `gekko_inference_fallback` gauge.
#[must_use]
pub fn select_device(pref: DevicePreference, ordinal: usize) -> (Device, DeviceReport) {
    let (device, report) = choose(pref, ordinal);
    metrics::gauge!("gekko_inference_fallback").set(if report.fallback { 1.0 } else { 0.0 });
    tracing::info!(
        kind = report.kind,
        name = %report.name,
        reason = %report.reason,
        compute_capability = ?report.compute_capability,
        memory_total_mb = ?report.memory_total_mb,
        fallback = report.fallback,
        "inference device selected"
    );
    (device, report)
}

fn choose(pref: DevicePreference, ordinal: usize) -> (Device, DeviceReport) {
    match pref {
        DevicePreference::Cpu => cpu("cpu requested".to_owned(), false),
        DevicePreference::Cuda => match try_cuda(ordinal) {
            Ok(found) => found,
            Err(why) => cpu(format!("{why}; using CPU"), true),
        },
        DevicePreference::Metal => match try_metal(ordinal) {
            Ok(found) => found,
            Err(why) => cpu(format!("{why}; using CPU"), true),
        },
        DevicePreference::Auto => {
            let mut problems = Vec::new();
            if cfg!(feature = "cuda") {
                match try_cuda(ordinal) {
                    Ok(found) => return found,
                    Err(why) => problems.push(why),
                }
            }
            if cfg!(feature = "metal") {
                match try_metal(ordinal) {
                    Ok(found) => return found,
                    Err(why) => problems.push(why),
                }
            }
            if problems.is_empty() {
                // Nothing was compiled in, so the CPU is exactly what `auto` means.
                cpu(
                    "auto: no GPU backend compiled in (features cuda/metal off); using CPU"
                        .to_owned(),
                    false,
                )
            } else {
                cpu(format!("auto: {}; using CPU", problems.join("; ")), true)
            }
        }
    }
}

fn cpu(reason: String, fallback: bool) -> (Device, DeviceReport) {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let name = format!("{} ({threads} threads)", cpu_model_name());
    (
        Device::Cpu,
        DeviceReport {
            kind: "cpu",
            name,
            reason,
            compute_capability: None,
            memory_total_mb: None,
            fallback,
        },
    )
}

/// The CPU model from `/proc/cpuinfo` on Linux, else a generic name.
fn cpu_model_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| format!("{} cpu", std::env::consts::ARCH))
}

/// Runs one small matmul so that a device that opens but cannot launch kernels is
/// rejected at start-up rather than on the first request.
#[cfg_attr(not(any(feature = "cuda", feature = "metal")), allow(dead_code))]
fn probe(device: &Device) -> Result<(), String> {
    let run = || -> candle_core::Result<()> {
        let a = Tensor::ones((4, 8), DType::F32, device)?;
        let b = Tensor::ones((8, 2), DType::F32, device)?;
        let c = a.matmul(&b)?.to_device(&Device::Cpu)?.to_vec2::<f32>()?;
        if c.iter().flatten().all(|v| (v - 8.0).abs() < 1e-4) {
            Ok(())
        } else {
            Err(candle_core::Error::Msg(
                "probe matmul returned wrong values".into(),
            ))
        }
    };
    run().map_err(|e| format!("probe kernel failed: {e}"))
}

#[cfg(feature = "cuda")]
fn try_cuda(ordinal: usize) -> Result<(Device, DeviceReport), String> {
    let device =
        Device::new_cuda(ordinal).map_err(|e| format!("CUDA device {ordinal} unavailable: {e}"))?;
    probe(&device).map_err(|e| format!("CUDA device {ordinal} unusable: {e}"))?;
    let (name, compute_capability, memory_total_mb) = match &device {
        Device::Cuda(cuda) => {
            let stream = cuda.cuda_stream();
            let ctx = stream.context();
            let name = ctx
                .name()
                .unwrap_or_else(|_| format!("CUDA device {ordinal}"));
            let cc = ctx
                .compute_capability()
                .ok()
                .map(|(major, minor)| format!("{major}.{minor}"));
            let mem = ctx
                .total_mem()
                .ok()
                .map(|bytes| (bytes as u64) / (1024 * 1024));
            (name, cc, mem)
        }
        _ => (format!("CUDA device {ordinal}"), None, None),
    };
    Ok((
        device,
        DeviceReport {
            kind: "cuda",
            name,
            reason: format!("CUDA device {ordinal} opened and passed a probe kernel"),
            compute_capability,
            memory_total_mb,
            fallback: false,
        },
    ))
}

#[cfg(not(feature = "cuda"))]
#[allow(clippy::unnecessary_wraps)] // same signature as the compiled-in variant
fn try_cuda(_ordinal: usize) -> Result<(Device, DeviceReport), String> {
    Err("cuda feature not compiled in".to_owned())
}

#[cfg(feature = "metal")]
fn try_metal(ordinal: usize) -> Result<(Device, DeviceReport), String> {
    let device = Device::new_metal(ordinal)
        .map_err(|e| format!("Metal device {ordinal} unavailable: {e}"))?;
    probe(&device).map_err(|e| format!("Metal device {ordinal} unusable: {e}"))?;
    Ok((
        device,
        DeviceReport {
            kind: "metal",
            name: format!("Metal device {ordinal}"),
            reason: format!("Metal device {ordinal} opened and passed a probe kernel"),
            compute_capability: None,
            memory_total_mb: None,
            fallback: false,
        },
    ))
}

#[cfg(not(feature = "metal"))]
#[allow(clippy::unnecessary_wraps)] // same signature as the compiled-in variant
fn try_metal(_ordinal: usize) -> Result<(Device, DeviceReport), String> {
    Err("metal feature not compiled in".to_owned())
}

/// A resolved CPU thread count: what config asked for and what will be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuThreads {
    /// The configured value; 0 means "one per core".
    pub requested: usize,
    /// The thread count actually used (at least 1).
    pub effective: usize,
}

impl CpuThreads {
    /// Resolves `requested` (0 = all available cores).
    #[must_use]
    pub fn resolve(requested: usize) -> Self {
        let effective = if requested == 0 {
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
        } else {
            requested
        };
        Self {
            requested,
            effective,
        }
    }
}

/// The environment variable candle reads for its CPU thread count.
pub const RAYON_NUM_THREADS: &str = "RAYON_NUM_THREADS";

/// A warning when `RAYON_NUM_THREADS` is unset, `None` when it is set.
///
/// candle 0.11.1 asks for its thread count on *every* CPU matmul, and when
/// neither `RAYON_NUM_THREADS` nor `CANDLE_NUM_THREADS` is set that means parsing
/// `/proc/cpuinfo` (through `num_cpus::get_physical`) each time: about 30 µs per
/// matmul, which made a one-row prediction 90 µs instead of 3.5 µs on the 2-core
/// CI machine. The process cannot fix this itself (setting environment variables
/// is `unsafe` in edition 2024), so the service environment should set
/// `RAYON_NUM_THREADS` to the configured CPU thread count.
#[must_use]
pub fn candle_thread_env_hint() -> Option<String> {
    if std::env::var_os(RAYON_NUM_THREADS).is_some()
        || std::env::var_os("CANDLE_NUM_THREADS").is_some()
    {
        None
    } else {
        Some(format!(
            "{RAYON_NUM_THREADS} is unset: candle re-reads /proc/cpuinfo on every CPU matmul \
             (~30 µs each); set {RAYON_NUM_THREADS} to the inference thread count in the \
             service environment"
        ))
    }
}

/// Builds the rayon pool that CPU inference and training run in
/// (`pool.install(|| model.predict(..))`); `threads == 0` means one per core.
///
/// # Errors
/// `Device` if the operating system refuses to start the threads.
pub fn cpu_pool(threads: usize) -> Result<rayon::ThreadPool, InferenceError> {
    static WARN_ONCE: std::sync::Once = std::sync::Once::new();
    if let Some(hint) = candle_thread_env_hint() {
        WARN_ONCE.call_once(|| tracing::warn!("{hint}"));
    }
    let resolved = CpuThreads::resolve(threads);
    rayon::ThreadPoolBuilder::new()
        .num_threads(resolved.effective)
        .thread_name(|i| format!("gekko-infer-{i}"))
        .build()
        .map_err(|e| {
            InferenceError::Device(format!(
                "cannot start {} inference threads: {e}",
                resolved.effective
            ))
        })
}

/// The largest batch whose activations fit in a GPU memory budget of `budget_mb`
/// MiB once the model's own `model_bytes` are resident, at `per_row_bytes` of
/// working memory per row. Returns 0 when even the model does not fit, and is
/// capped at 65 536 (the config's upper bound on batch size).
#[must_use]
pub fn max_batch_for_budget(budget_mb: u64, per_row_bytes: usize, model_bytes: usize) -> usize {
    const CAP: u64 = 65_536;
    let budget = budget_mb.saturating_mul(1024 * 1024);
    let free = budget.saturating_sub(model_bytes as u64);
    let per_row = (per_row_bytes as u64).max(1);
    usize::try_from((free / per_row).min(CAP)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preference_round_trips() {
        for p in [
            DevicePreference::Auto,
            DevicePreference::Cuda,
            DevicePreference::Metal,
            DevicePreference::Cpu,
        ] {
            assert_eq!(p.as_str().parse::<DevicePreference>().ok(), Some(p));
        }
        assert!(matches!(
            "gpu".parse::<DevicePreference>(),
            Err(InferenceError::InvalidInput(_))
        ));
    }

    #[test]
    fn cpu_is_always_available() {
        let (device, report) = select_device(DevicePreference::Cpu, 0);
        assert!(device.is_cpu());
        assert_eq!(report.kind, "cpu");
        assert!(!report.fallback);
        assert!(!report.is_gpu());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_falls_back_with_a_reason() {
        let (device, report) = select_device(DevicePreference::Cuda, 0);
        assert!(device.is_cpu());
        assert!(report.fallback);
        assert_eq!(report.reason, "cuda feature not compiled in; using CPU");
    }

    #[cfg(not(any(feature = "cuda", feature = "metal")))]
    #[test]
    fn auto_without_gpu_features_is_cpu_without_fallback() {
        let (device, report) = select_device(DevicePreference::Auto, 0);
        assert!(device.is_cpu());
        assert!(!report.fallback);
        assert!(report.reason.contains("no GPU backend compiled in"));
    }

    #[test]
    fn cpu_passes_the_probe() {
        assert_eq!(probe(&Device::Cpu), Ok(()));
    }

    #[test]
    fn budget_clamps_batch() {
        // 1 MiB budget, 1 KiB model, 1 KiB per row → 1023 rows.
        assert_eq!(max_batch_for_budget(1, 1024, 1024), 1023);
        // The model alone does not fit.
        assert_eq!(max_batch_for_budget(1, 1024, 2 * 1024 * 1024), 0);
        // Huge budgets are capped.
        assert_eq!(max_batch_for_budget(u64::MAX, 1, 0), 65_536);
    }

    #[test]
    fn pool_honours_thread_count() {
        let pool = cpu_pool(1).expect("pool");
        assert_eq!(pool.install(rayon::current_num_threads), 1);
        assert_eq!(CpuThreads::resolve(3).effective, 3);
        assert!(CpuThreads::resolve(0).effective >= 1);
    }
}
