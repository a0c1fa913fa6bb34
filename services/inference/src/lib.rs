//! The inference service: quotes from the bus become signals on the bus, and the same
//! model answers `gekko.v1.InferenceService/Predict` over gRPC.
//!
//! Data flow: one tail reader per venue quote stream → a `FeatureBuilder` per instrument
//! → the dynamic batcher (shared with gRPC callers) → a `Signal` on `gekko:{signals}` when
//! the prediction's confidence clears the model's `CONFIDENCE_THRESHOLDS` entry.
//! Market data is capped and lossy, so the consumer follows the stream from "now" and
//! never acks: a restarted consumer should predict from fresh quotes, not replay old ones.

pub mod grpc;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gekko_bus::{Bus, StartFrom, Topic, names};
use gekko_config::GekkoConfig;
use gekko_core::{InstrumentId, Quote, Signal, VenueId};
use gekko_inference::batcher::{Batcher, BatcherConfig, BatcherHandle, ComputeBudget};
use gekko_inference::device::{DevicePreference, DeviceReport, select_device};
use gekko_inference::features::FeatureBuilder;
use gekko_inference::registry::ModelRegistry;
use gekko_runtime::{BoxError, Readiness, ReadyHandle, Service, ServiceCtx, Started};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The bus source name.
pub const SOURCE: &str = "inference";

/// The committed default model, compiled in so that `gekko up` works from any directory
/// (the "embedded default"): used when the configured model directory does not exist.
const EMBEDDED_MODEL: &str = "direction";
const EMBEDDED_VERSION: &str = "1";
const EMBEDDED_META: &[u8] = include_bytes!("../../../models/direction/1/meta.json");
const EMBEDDED_WEIGHTS: &[u8] = include_bytes!("../../../models/direction/1/model.safetensors");

/// Fixes candle's CPU thread count for the whole process.
///
/// candle 0.11 re-reads the CPU count on every CPU matmul unless `RAYON_NUM_THREADS` is
/// set (about 30 µs per call, measured: 90 µs instead of 3.5 µs for a one-row prediction).
/// Call this first thing in `main`, before any thread is started.
#[allow(unsafe_code)]
pub fn pin_cpu_threads() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        // SAFETY: called at the top of `main`, before the async runtime or any other thread
        // exists, so nothing can read the environment concurrently.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
}

/// The directory to load models from: the configured one when it holds the model, else,
/// for the default model, the embedded copy written to a private temp directory.
///
/// # Errors
/// Neither the configured directory nor an embedded model exists, or the embedded copy
/// cannot be written.
fn resolve_model_root(settings: &InferenceSettings) -> anyhow::Result<PathBuf> {
    if settings.model_root.join(&settings.model).is_dir() {
        return Ok(settings.model_root.clone());
    }
    if settings.model != EMBEDDED_MODEL {
        anyhow::bail!(
            "model directory {} does not exist (ML_MODEL_ENDPOINTS {}={})",
            settings.model_root.join(&settings.model).display(),
            settings.model,
            settings.model_root.display()
        );
    }
    let root = std::env::temp_dir().join(format!("gekko-embedded-models-{}", std::process::id()));
    let dir = root.join(EMBEDDED_MODEL).join(EMBEDDED_VERSION);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("meta.json"), EMBEDDED_META)?;
    std::fs::write(dir.join("model.safetensors"), EMBEDDED_WEIGHTS)?;
    tracing::info!(configured = %settings.model_root.display(), "model directory not found; using the embedded default model");
    Ok(root)
}

/// Everything the service needs, resolved from gekko's config.
#[derive(Debug, Clone)]
pub struct InferenceSettings {
    /// Model name (the `ML_MODEL_ENDPOINTS` key).
    pub model: String,
    /// Directory holding `<model>/<version>/`.
    pub model_root: PathBuf,
    /// Device preference.
    pub device: DevicePreference,
    /// CPU threads (0 = all cores).
    pub cpu_threads: usize,
    /// GPU memory budget.
    pub gpu_memory_budget_mb: u64,
    /// Batching.
    pub max_batch: usize,
    /// Batching deadline.
    pub max_wait: Duration,
    /// How often to look for a new model version.
    pub update_every: Duration,
    /// Signals below this confidence are suppressed.
    pub confidence_threshold: f32,
    /// Venues whose quote streams are consumed.
    pub venues: Vec<VenueId>,
    /// `PREDICTION_PARAMETERS`: the window and horizon the model must have been trained
    /// with (when set), and the sampling interval of each instrument's quotes.
    pub prediction: gekko_config::PredictionParams,
}

impl InferenceSettings {
    /// Settings from gekko's config: the first model of `ML_MODEL_ENDPOINTS`.
    ///
    /// # Errors
    /// No model configured, or a model location that is not a directory path.
    pub fn from_config(cfg: &GekkoConfig) -> anyhow::Result<Self> {
        let (model, location) = cfg
            .ml_model_endpoints
            .iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("ML_MODEL_ENDPOINTS names no model"))?;
        if location.starts_with("http://") || location.starts_with("https://") {
            anyhow::bail!(
                "ML_MODEL_ENDPOINTS {model}={location}: remote model stores are not supported yet; give a directory"
            );
        }
        let threshold = confidence_threshold(cfg, model);
        let device = match cfg.resource_allocation.device {
            gekko_config::DevicePreference::Auto => DevicePreference::Auto,
            gekko_config::DevicePreference::Cuda => DevicePreference::Cuda,
            gekko_config::DevicePreference::Metal => DevicePreference::Metal,
            gekko_config::DevicePreference::Cpu => DevicePreference::Cpu,
        };
        Ok(Self {
            model: model.clone(),
            model_root: PathBuf::from(location),
            device,
            cpu_threads: cfg.resource_allocation.cpu_threads,
            gpu_memory_budget_mb: cfg.resource_allocation.gpu_memory_budget_mb,
            max_batch: cfg.system_performance.batch_max_size,
            max_wait: cfg.system_performance.batch_max_wait,
            update_every: cfg.model_update_frequency(model),
            confidence_threshold: threshold,
            venues: VenueId::ALL.to_vec(),
            prediction: cfg.prediction_parameters,
        })
    }
}

/// Refuses a model trained with another `window` or `horizon` than `PREDICTION_PARAMETERS`
/// sets (an unset one accepts the model's own).
///
/// # Errors
/// Every mismatch, naming the configured and the trained value.
pub fn check_prediction_parameters(
    settings: &InferenceSettings,
    meta: &gekko_inference::ModelMeta,
) -> anyhow::Result<()> {
    let p = &settings.prediction;
    let mut problems = Vec::new();
    if p.window_set && usize::try_from(p.window).ok() != Some(meta.window) {
        problems.push(format!(
            "PREDICTION_PARAMETERS window={} but model {} v{} was trained with window {}",
            p.window, settings.model, meta.version, meta.window
        ));
    }
    if p.horizon_set && usize::try_from(p.horizon).ok() != Some(meta.horizon) {
        problems.push(format!(
            "PREDICTION_PARAMETERS horizon={} but model {} v{} was trained with horizon {}",
            p.horizon, settings.model, meta.version, meta.horizon
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "{}; set PREDICTION_PARAMETERS to the model's values or load a model trained with these",
            problems.join("; ")
        )
    }
}

/// Whether a quote at `ts_ms` of an instrument last observed at `last` is observed under
/// the sampling `interval` (and, if so, records it as the last observation).
fn sample(last: &mut Option<i64>, ts_ms: i64, interval: Duration) -> bool {
    if interval.is_zero() {
        return true;
    }
    let every = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
    match *last {
        Some(prev) if ts_ms < prev.saturating_add(every) => false,
        _ => {
            *last = Some(ts_ms);
            true
        }
    }
}

/// The `CONFIDENCE_THRESHOLDS` entry of `model` (the default when it has none), as the
/// f32 the model's confidence is compared with.
#[must_use]
pub fn confidence_threshold(cfg: &GekkoConfig, model: &str) -> f32 {
    let threshold = cfg
        .confidence_thresholds
        .get(model)
        .copied()
        .unwrap_or_else(gekko_config::default_confidence_threshold);
    threshold.to_string().parse().unwrap_or(0.55)
}

/// A running inference service.
#[derive(Debug, Clone)]
pub struct Inference {
    /// The batcher, shared by the bus consumer and gRPC.
    pub batcher: BatcherHandle,
    /// The model registry.
    pub registry: Arc<ModelRegistry>,
    /// Where the model runs, and why.
    pub device: Arc<DeviceReport>,
    /// The settings it started with.
    pub settings: Arc<InferenceSettings>,
    /// The confidence threshold in force (f32 bits): `settings.confidence_threshold` at
    /// start, then hot `CONFIDENCE_THRESHOLDS` changes ([`Inference::set_threshold`]).
    threshold: Arc<std::sync::atomic::AtomicU32>,
    /// The model update period in force, followed by the registry's watcher.
    update_every: Arc<tokio::sync::watch::Sender<Duration>>,
    /// The latest signal published per instrument since start, for
    /// `InferenceService/LatestSignals`. A mutex: one short insert per published signal
    /// and one copy per call, never held across an await.
    pub latest: Arc<std::sync::Mutex<HashMap<InstrumentId, Signal>>>,
    /// Held for the service's lifetime: dropping it marks the component not ready.
    _ready: Arc<ReadyHandle>,
}

/// Starts device selection, the registry (with its reload watcher), the batcher and the
/// bus consumer. Readiness component `inference` turns ready once a model is loaded.
///
/// # Errors
/// The model cannot be loaded (the error names the file and the problem).
pub async fn start(
    settings: InferenceSettings,
    bus: Arc<dyn Bus>,
    readiness: &Readiness,
    tracker: &TaskTracker,
    cancel: CancellationToken,
) -> anyhow::Result<Inference> {
    let ready = readiness.component("inference");
    let (device, report) = select_device(settings.device, 0);
    tracing::info!(device = report.kind, name = %report.name, reason = %report.reason, fallback = report.fallback, "inference device selected");
    let root = resolve_model_root(&settings)?;
    let registry = Arc::new(
        ModelRegistry::open(&root, &settings.model, device, gekko_inference::DType::F32)
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let current = registry.current();
    tracing::info!(model = %settings.model, version = current.meta().version, "model loaded");
    check_prediction_parameters(&settings, current.meta())?;
    let (update_every, every_rx) = tokio::sync::watch::channel(settings.update_every);
    registry
        .clone()
        .spawn_watcher_following(every_rx, cancel.child_token());
    let batcher = Batcher::spawn_with_budget(
        registry.clone(),
        BatcherConfig {
            max_batch: settings.max_batch,
            max_wait: settings.max_wait,
            queue_capacity: 65_536,
        },
        ComputeBudget {
            cpu_threads: settings.cpu_threads,
            gpu_memory_budget_mb: settings.gpu_memory_budget_mb,
        },
        cancel.child_token(),
    );
    ready.set_ready();
    let svc = Inference {
        batcher,
        registry,
        device: Arc::new(report),
        threshold: Arc::new(std::sync::atomic::AtomicU32::new(
            settings.confidence_threshold.to_bits(),
        )),
        update_every: Arc::new(update_every),
        settings: Arc::new(settings),
        latest: Arc::default(),
        _ready: Arc::new(ready),
    };
    for venue in svc.settings.venues.clone() {
        tracker.spawn(consume_quotes(
            svc.clone(),
            bus.clone(),
            venue,
            cancel.child_token(),
        ));
    }
    Ok(svc)
}

impl Inference {
    /// The confidence threshold in force: signals below it are suppressed.
    #[must_use]
    pub fn threshold(&self) -> f32 {
        f32::from_bits(self.threshold.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Puts `threshold` in force for every prediction from now on and returns the old one.
    pub fn set_threshold(&self, threshold: f32) -> f32 {
        metrics::gauge!("gekko_inference_confidence_threshold", "model" => self.settings.model.clone())
            .set(f64::from(threshold));
        f32::from_bits(
            self.threshold
                .swap(threshold.to_bits(), std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// How often the registry looks for a new model version now.
    #[must_use]
    pub fn update_every(&self) -> Duration {
        *self.update_every.borrow()
    }

    /// Changes how often the registry looks for a new model version; the new period
    /// starts now. Returns the old one.
    pub fn set_update_every(&self, every: Duration) -> Duration {
        metrics::gauge!("gekko_inference_model_update_seconds", "model" => self.settings.model.clone())
            .set(every.as_secs_f64());
        self.update_every.send_replace(every)
    }

    /// Follows the process's hot config versions: a changed `CONFIDENCE_THRESHOLDS` or
    /// `MODEL_UPDATE_FREQUENCIES` entry of this model is put in force, with one info line
    /// per applied variable naming the version.
    pub fn follow_hot_config(&self, ctx: &ServiceCtx) {
        use gekko_config::names;
        let Some(mut rx) = ctx.hot_config() else {
            return;
        };
        let svc = self.clone();
        let mut applied = rx.borrow().started_with.clone();
        let cancel = ctx.cancel();
        ctx.spawn("inference-hot-config", async move {
            let model = svc.settings.model.clone();
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    r = rx.changed() => if r.is_err() { break },
                }
                let hot = rx.borrow_and_update().clone();
                let changed = gekko_runtime::hot::hot_changes(&applied, &hot.config);
                if changed.contains(&names::CONFIDENCE_THRESHOLDS) {
                    let new = confidence_threshold(&hot.config, &model);
                    let old = svc.set_threshold(new);
                    if old.to_bits() != new.to_bits() {
                        tracing::info!(%model, version = hot.version, variable = names::CONFIDENCE_THRESHOLDS, old, new, "config change applied: confidence threshold");
                    }
                }
                if changed.contains(&names::MODEL_UPDATE_FREQUENCIES) {
                    let new = hot.config.model_update_frequency(&model);
                    let old = svc.set_update_every(new);
                    if old != new {
                        tracing::info!(%model, version = hot.version, variable = names::MODEL_UPDATE_FREQUENCIES, old_ms = u64::try_from(old.as_millis()).unwrap_or(u64::MAX), new_ms = u64::try_from(new.as_millis()).unwrap_or(u64::MAX), "config change applied: model update period");
                    }
                }
                applied = hot.config;
            }
            Ok::<(), std::convert::Infallible>(())
        });
    }
}

/// The inference service as a hosted service: serves `gekko.v1.InferenceService` and
/// holds the running service until the process has drained.
#[derive(Debug)]
pub struct InferenceService;

impl Service for InferenceService {
    const NAME: &'static str = SOURCE;
    type Settings = InferenceSettings;

    fn resolve(cfg: &GekkoConfig) -> Result<InferenceSettings, Vec<String>> {
        InferenceSettings::from_config(cfg).map_err(|e| vec![format!("{e:#}")])
    }

    async fn start(settings: InferenceSettings, ctx: &ServiceCtx) -> Result<Started, BoxError> {
        gekko_inference::describe_metrics();
        let svc = start(
            settings,
            ctx.bus().clone(),
            ctx.readiness(),
            ctx.tracker(),
            ctx.cancel(),
        )
        .await?;
        svc.follow_hot_config(ctx);
        Ok(Started::new()
            .grpc(grpc::InferenceGrpc::new(svc.clone()).into_server())
            .hold(svc))
    }
}

/// Follows one venue's quote stream and publishes signals.
async fn consume_quotes(
    svc: Inference,
    bus: Arc<dyn Bus>,
    venue: VenueId,
    cancel: CancellationToken,
) {
    let quotes: Topic<Quote> =
        Topic::capped(names::quotes(venue.as_str()), names::MARKET_DATA_MAX_LEN, 1);
    let signals: Topic<Signal> = Topic::capped(names::SIGNALS, names::MARKET_DATA_MAX_LEN, 1);
    let window = svc.registry.current().meta().window;
    let horizon = u32::try_from(svc.registry.current().meta().horizon).unwrap_or(1);
    let mut builders: HashMap<InstrumentId, FeatureBuilder> = HashMap::new();
    let interval = svc.settings.prediction.interval;
    let mut observed: HashMap<InstrumentId, Option<i64>> = HashMap::new();
    let mut reader = None;
    loop {
        if cancel.is_cancelled() {
            return;
        }
        let r = match reader.as_mut() {
            Some(r) => r,
            None => match bus.tail_reader(quotes.name(), StartFrom::Latest).await {
                Ok(r) => reader.insert(r),
                Err(e) => {
                    tracing::debug!(error = %e, %venue, "quote stream not readable yet");
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_millis(500)) => continue,
                    }
                }
            },
        };
        let batch = tokio::select! {
            () = cancel.cancelled() => return,
            b = r.read(512, Duration::from_millis(500)) => b,
        };
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, %venue, "quote read failed; reconnecting");
                reader = None;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        // Every quote of one read is predicted concurrently, so the batcher sees them
        // together and fills its batches (one at a time, each quote waited for its own
        // prediction and signal write, and the batcher's deadline became pure added
        // latency: 2 ms capped the path at 500 quotes/s). Features are still built in
        // stream order per instrument, and the signals are written in that order, in one
        // pipelined append.
        let arrived = Instant::now();
        let mut pending = Vec::with_capacity(batch.len());
        for d in batch {
            let q = match quotes.decode(&d) {
                Ok(env) => env.payload,
                Err(e) => {
                    metrics::counter!("gekko_inference_bad_quotes_total").increment(1);
                    tracing::warn!(error = %e, "undecodable quote skipped");
                    continue;
                }
            };
            if !interval.is_zero()
                && !sample(
                    observed.entry(q.instrument.clone()).or_default(),
                    q.ts_ms,
                    interval,
                )
            {
                metrics::counter!("gekko_inference_quotes_sampled_out_total").increment(1);
                continue;
            }
            let builder = builders
                .entry(q.instrument.clone())
                .or_insert_with(|| FeatureBuilder::new(window));
            if let Some(features) = builder.push(&q) {
                pending.push((q, features));
            }
        }
        if pending.is_empty() {
            continue;
        }
        let (quotes_in, features): (Vec<Quote>, Vec<_>) = pending.into_iter().unzip();
        let scored =
            futures::future::join_all(features.into_iter().map(|f| svc.batcher.predict(f))).await;
        let threshold = svc.threshold();
        let mut out: Vec<Signal> = Vec::with_capacity(scored.len());
        for (q, scored) in quotes_in.into_iter().zip(scored) {
            let scored = match scored {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "prediction failed");
                    continue;
                }
            };
            let p = scored.prediction;
            if p.confidence < threshold {
                metrics::counter!("gekko_inference_signals_suppressed_total").increment(1);
                continue;
            }
            out.push(Signal {
                instrument: q.instrument.clone(),
                model: scored.model.clone(),
                version: scored.version,
                direction: if p.p_up >= 0.5 {
                    gekko_core::Direction::Up
                } else {
                    gekko_core::Direction::Down
                },
                p_up: p.p_up,
                confidence: p.confidence,
                horizon,
                latency_us: u64::try_from(arrived.elapsed().as_micros()).unwrap_or(u64::MAX),
                quote_ts_ms: q.ts_ms,
            });
        }
        if out.is_empty() {
            continue;
        }
        let mut payloads = Vec::with_capacity(out.len());
        for sig in &out {
            match signals.encode(SOURCE, sig) {
                Ok((_, bytes)) => payloads.push(bytes),
                Err(e) => tracing::warn!(error = %e, "signal not encodable"),
            }
        }
        match bus.append_batch(&signals.spec(), &payloads).await {
            Ok(_) => {
                metrics::counter!("gekko_inference_signals_total").increment(out.len() as u64);
                let mut latest = gekko_core::sync::lock(&svc.latest);
                for sig in out {
                    latest.insert(sig.instrument.clone(), sig);
                }
            }
            Err(e) => tracing::warn!(error = %e, count = out.len(), "signals not published"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_observes_a_quote_once_interval_has_passed_by_its_timestamp() {
        let every = Duration::from_millis(100);
        let mut last = None;
        let seen: Vec<i64> = [0, 50, 99, 100, 150, 260, 259, 361]
            .into_iter()
            .filter(|ts| sample(&mut last, *ts, every))
            .collect();
        assert_eq!(seen, vec![0, 100, 260, 361]);
        let mut last = None;
        assert!((0..5).all(|ts| sample(&mut last, ts, Duration::ZERO)));
        assert_eq!(last, None, "zero observes every quote and keeps no state");
    }
}
