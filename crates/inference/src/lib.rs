//! gekko's ML core: candle models for short-horizon direction prediction.
//!
//! The crate owns everything that touches candle so that the rest of the workspace
//! (the gRPC service, the bus consumer, the binary) depends on a small, typed API
//! and never on tensors:
//!
//! * [`device`] — choose CUDA/Metal/CPU at start-up, degrading to CPU with a
//!   reason; the CPU thread pool; the GPU memory budget.
//! * [`features`] — the one feature pipeline, from quotes to a flat window vector.
//! * [`model`] — the MLP, its `meta.json` + `model.safetensors` format and strict
//!   loading.
//! * [`train`] — reproducible training on a seeded synthetic market.
//! * [`registry`] — versioned model directories with validated hot reload.
//! * [`batcher`] — dynamic batching of concurrent requests onto one model call.
//! * [`bench`] — throughput/latency and achieved-FLOP/s measurement.
//!
//! GPU support is opt-in (`cuda`, `metal` features); the default build is CPU-only
//! and is what CI tests. On the CPU, set `RAYON_NUM_THREADS` in the service
//! environment (see [`device::candle_thread_env_hint`]).
//!
//! Typical wiring in a service:
//!
//! ```no_run
//! use std::{path::Path, sync::Arc, time::Duration};
//! use gekko_inference::{
//!     Batcher, BatcherConfig, DType, DevicePreference, FeatureBuilder, ModelRegistry,
//!     select_device,
//! };
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn wire(quote: gekko_core::Quote) -> Result<(), gekko_inference::InferenceError> {
//! let cancel = CancellationToken::new();
//! let (device, report) = select_device(DevicePreference::Auto, 0);
//! let registry = Arc::new(ModelRegistry::open(Path::new("models"), "direction", device, DType::F32)?);
//! let watcher = Arc::clone(&registry).spawn_watcher(Duration::from_secs(300), cancel.child_token());
//! let batcher = Batcher::spawn(Arc::clone(&registry), BatcherConfig::default(), cancel.child_token());
//!
//! let mut features = FeatureBuilder::new(registry.current().meta().window);
//! if let Some(row) = features.push(&quote) {
//!     let scored = batcher.predict(row).await?;
//!     println!("{:?} p_up={} by v{}", scored.prediction.direction, scored.prediction.p_up, scored.version);
//! }
//! cancel.cancel();
//! batcher.stopped().await;
//! let _ = watcher.await;
//! # let _ = report;
//! # Ok(())
//! # }
//! ```

pub mod batcher;
pub mod bench;
pub mod cli;
pub mod device;
pub mod error;
pub mod features;
pub mod model;
pub mod registry;
pub mod train;

pub use batcher::{Batcher, BatcherConfig, BatcherHandle, ComputeBudget, Scored};
pub use bench::{BenchConfig, BenchReport, run_bench};
pub use device::{
    CpuThreads, DevicePreference, DeviceReport, cpu_pool, max_batch_for_budget, select_device,
};
pub use error::InferenceError;
pub use features::{FEATURES_PER_STEP, FeatureBuilder};
pub use model::{Direction, LoadedModel, ModelMeta, Prediction, TrainReport};
pub use registry::ModelRegistry;
pub use train::{TrainConfig, train};

/// Re-exported so callers can name devices and dtypes without depending on candle.
pub use candle_core::{DType, Device};

/// Registers help text and units for every metric this crate records, so the
/// Prometheus exporter prints `# HELP` lines. Call once after installing the
/// recorder; harmless to call again.
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        "gekko_inference_batch_size",
        Unit::Count,
        "Rows per model call"
    );
    describe_histogram!(
        "gekko_inference_queue_wait_seconds",
        Unit::Seconds,
        "Time from enqueue to the start of the request's model call"
    );
    describe_histogram!(
        "gekko_inference_latency_seconds",
        Unit::Seconds,
        "Time from enqueue to answer, as seen by the caller"
    );
    describe_counter!(
        "gekko_inference_predictions_total",
        Unit::Count,
        "Rows scored, by model"
    );
    describe_counter!(
        "gekko_inference_shed_total",
        Unit::Count,
        "Requests refused because the queue was full"
    );
    describe_counter!(
        "gekko_inference_batch_failures_total",
        Unit::Count,
        "Model calls that failed, by model"
    );
    describe_gauge!(
        "gekko_inference_device_memory_bytes",
        Unit::Bytes,
        "Estimated device memory for weights plus the latest batch's activations"
    );
    describe_gauge!(
        "gekko_inference_max_batch",
        Unit::Count,
        "Effective maximum batch size after the memory-budget clamp"
    );
    describe_gauge!(
        "gekko_inference_fallback",
        "1 when an accelerator was wanted but the CPU is used"
    );
    describe_gauge!(
        "gekko_inference_model_version",
        "Version of the model serving now, by model"
    );
    describe_counter!(
        "gekko_inference_reload_failures_total",
        Unit::Count,
        "Model versions that failed to load or validate, by model"
    );
    describe_counter!(
        "gekko_inference_quotes_rejected_total",
        Unit::Count,
        "Quotes skipped by the feature builder, by reason"
    );
}
