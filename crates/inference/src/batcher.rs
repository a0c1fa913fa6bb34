//! Dynamic batching: many concurrent single-row requests, one model call.
//!
//! A model call has a fixed cost (tensor set-up, kernel launches, a device round
//! trip) that dwarfs the per-row cost for this MLP, so scoring rows one at a time
//! wastes most of the machine. Requests therefore queue in a bounded channel; a
//! collector task takes the first, then keeps taking until the batch has
//! `max_batch` rows *or* `max_wait` has passed since that first request arrived,
//! whichever comes first, and hands the batch to the model.
//!
//! Concurrency choices:
//!
//! * **Bounded queue, shed on full.** `predict` uses `try_send`: when the queue is
//!   full the request fails at once with [`InferenceError::Overloaded`] (retryable)
//!   instead of queueing unboundedly and answering too late to matter.
//! * **Model calls off the runtime.** A batch runs on tokio's blocking pool, inside
//!   the configured rayon pool on CPU, so the async workers (gRPC, bus) keep
//!   serving while the cores do matrix work.
//! * **One batch in flight.** On the CPU one batch already uses every thread of the
//!   pool, and a GPU runs one stream; two batches at once would only contend. A
//!   semaphore of one permit enforces this, and while a batch runs the collector
//!   keeps filling the next one (up to `max_batch`), so collection overlaps compute.
//! * **One version per batch.** A batch takes `registry.current()` once; every
//!   row in it is scored and answered with that version. A reload between batches
//!   never fails a request.
//! * **Shutdown.** When the token is cancelled the collector finishes the batch it
//!   holds, answers everything still queued with [`InferenceError::Closed`], and
//!   waits for the batch in flight; [`BatcherHandle::stopped`] resolves after that.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::device::{cpu_pool, max_batch_for_budget};
use crate::error::InferenceError;
use crate::model::{Prediction, validate_rows};
use crate::registry::ModelRegistry;

/// Batching knobs (from `BATCH_MAX_SIZE`, `BATCH_MAX_WAIT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatcherConfig {
    /// Most rows per model call (at least 1). On a GPU it is further clamped to what
    /// the memory budget allows (see [`ComputeBudget`]).
    pub max_batch: usize,
    /// Longest the first request of a batch waits for others.
    pub max_wait: Duration,
    /// Requests that may wait in the queue before new ones are shed (at least 1).
    pub queue_capacity: usize,
}

impl Default for BatcherConfig {
    fn default() -> Self {
        Self {
            max_batch: 64,
            max_wait: Duration::from_millis(2),
            queue_capacity: 4096,
        }
    }
}

/// How much of the machine the batcher may use (from the resource-allocation config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComputeBudget {
    /// CPU threads for model calls; 0 = one per core.
    pub cpu_threads: usize,
    /// GPU memory the batcher may plan for, in MiB (ignored on the CPU).
    pub gpu_memory_budget_mb: u64,
}

impl Default for ComputeBudget {
    fn default() -> Self {
        Self {
            cpu_threads: 0,
            gpu_memory_budget_mb: 2048,
        }
    }
}

/// A prediction with where it came from and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The prediction.
    pub prediction: Prediction,
    /// Name of the model that scored it.
    pub model: String,
    /// Version of the model that scored it.
    pub version: u64,
    /// From enqueue to the start of its batch's model call.
    pub queue_wait: Duration,
    /// Rows in the model call that scored it.
    pub batch_size: usize,
}

/// One queued row.
#[derive(Debug)]
struct Request {
    features: Vec<f32>,
    enqueued: Instant,
    reply: oneshot::Sender<Result<Scored, InferenceError>>,
}

/// Starts batchers.
#[derive(Debug)]
pub struct Batcher;

impl Batcher {
    /// Starts a batcher with the default [`ComputeBudget`] (all cores, 2 GiB of
    /// GPU memory); see [`Batcher::spawn_with_budget`].
    #[must_use]
    pub fn spawn(
        registry: Arc<ModelRegistry>,
        cfg: BatcherConfig,
        cancel: CancellationToken,
    ) -> BatcherHandle {
        Self::spawn_with_budget(registry, cfg, ComputeBudget::default(), cancel)
    }

    /// Starts the collector task for `registry`'s model and returns the handle
    /// callers score through. Must be called inside a tokio runtime.
    ///
    /// Never fails: out-of-range knobs are clamped (`max_batch` and
    /// `queue_capacity` to at least 1, `max_batch` to the GPU memory budget; the
    /// result is [`BatcherHandle::max_batch`] and the `gekko_inference_max_batch`
    /// gauge), and if the CPU pool cannot be built model calls run on rayon's
    /// global pool.
    #[must_use]
    pub fn spawn_with_budget(
        registry: Arc<ModelRegistry>,
        cfg: BatcherConfig,
        budget: ComputeBudget,
        cancel: CancellationToken,
    ) -> BatcherHandle {
        let model = registry.current();
        let mut max_batch = cfg.max_batch.max(1);
        if !registry.device().is_cpu() {
            let fit = max_batch_for_budget(
                budget.gpu_memory_budget_mb,
                model.per_row_bytes(),
                model.model_bytes(),
            );
            if fit < max_batch {
                tracing::warn!(
                    configured = max_batch,
                    allowed = fit.max(1),
                    budget_mb = budget.gpu_memory_budget_mb,
                    "max batch clamped to the GPU memory budget"
                );
                max_batch = fit.max(1);
            }
        }
        metrics::gauge!("gekko_inference_max_batch").set(max_batch as f64);
        metrics::gauge!("gekko_inference_device_memory_bytes")
            .set((model.model_bytes() + model.per_row_bytes() * max_batch) as f64);
        let pool = match cpu_pool(budget.cpu_threads) {
            Ok(pool) => Some(Arc::new(pool)),
            Err(e) => {
                tracing::warn!(error = %e, "using rayon's global pool for inference");
                None
            }
        };
        let queue_capacity = cfg.queue_capacity.max(1);
        let (tx, rx) = mpsc::channel(queue_capacity);
        let tracker = TaskTracker::new();
        let collector = Collector {
            rx,
            registry: Arc::clone(&registry),
            max_batch,
            max_wait: cfg.max_wait,
            pool,
            in_flight: Arc::new(Semaphore::new(1)),
            tracker: tracker.clone(),
        };
        tracker.spawn(collector.run(cancel));
        tracker.close();
        BatcherHandle {
            tx,
            registry,
            max_batch,
            queue_capacity,
            tracker,
        }
    }
}

/// The cheap, cloneable front of a running batcher.
#[derive(Debug, Clone)]
pub struct BatcherHandle {
    tx: mpsc::Sender<Request>,
    registry: Arc<ModelRegistry>,
    max_batch: usize,
    queue_capacity: usize,
    tracker: TaskTracker,
}

impl BatcherHandle {
    /// Rows per model call after clamping (the effective `max_batch`).
    #[must_use]
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// The registry whose current model scores requests.
    #[must_use]
    pub fn registry(&self) -> &Arc<ModelRegistry> {
        &self.registry
    }

    /// Scores one feature row (`window * 4` values).
    ///
    /// # Errors
    /// `InvalidInput` (wrong length, NaN/inf) before queueing; `Overloaded` when the
    /// queue is full; `Closed` when the batcher is stopping; `Compute` if the model
    /// call fails.
    pub async fn predict(&self, features: Vec<f32>) -> Result<Scored, InferenceError> {
        validate_rows(&features, 1, self.registry.current().input_len())?;
        let start = Instant::now();
        let (reply, rx) = oneshot::channel();
        let request = Request {
            features,
            enqueued: start,
            reply,
        };
        self.tx.try_send(request).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => shed(),
            mpsc::error::TrySendError::Closed(_) => InferenceError::Closed,
        })?;
        let result = rx.await.unwrap_or(Err(InferenceError::Closed));
        metrics::histogram!("gekko_inference_latency_seconds")
            .record(start.elapsed().as_secs_f64());
        result
    }

    /// Scores several rows; they are admitted to the queue all at once or not at all,
    /// and may be split across batches. Answers are in the order of `rows`.
    ///
    /// # Errors
    /// `InvalidInput` naming the first bad row, or when `rows` is larger than the
    /// queue; `Overloaded` when the queue has no room for all of them; `Closed`;
    /// the first model-call error among the rows.
    pub async fn predict_many(&self, rows: Vec<Vec<f32>>) -> Result<Vec<Scored>, InferenceError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        if rows.len() > self.queue_capacity {
            return Err(InferenceError::InvalidInput(format!(
                "{} rows exceed the queue capacity of {}; split the request",
                rows.len(),
                self.queue_capacity
            )));
        }
        let input_len = self.registry.current().input_len();
        for (i, row) in rows.iter().enumerate() {
            validate_rows(row, 1, input_len).map_err(|e| match e {
                InferenceError::InvalidInput(msg) => {
                    InferenceError::InvalidInput(format!("request row {i}: {msg}"))
                }
                other => other,
            })?;
        }
        let start = Instant::now();
        let permits = self.tx.try_reserve_many(rows.len()).map_err(|e| match e {
            mpsc::error::TrySendError::Full(()) => shed(),
            mpsc::error::TrySendError::Closed(()) => InferenceError::Closed,
        })?;
        let mut receivers = Vec::with_capacity(rows.len());
        for (permit, features) in permits.zip(rows) {
            let (reply, rx) = oneshot::channel();
            permit.send(Request {
                features,
                enqueued: start,
                reply,
            });
            receivers.push(rx);
        }
        let mut out = Vec::with_capacity(receivers.len());
        let mut first_error = None;
        for rx in receivers {
            match rx.await.unwrap_or(Err(InferenceError::Closed)) {
                Ok(scored) => out.push(scored),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        metrics::histogram!("gekko_inference_latency_seconds")
            .record(start.elapsed().as_secs_f64());
        first_error.map_or(Ok(out), Err)
    }

    /// Resolves once the batcher has stopped after cancellation and every accepted
    /// request has been answered.
    pub async fn stopped(&self) {
        self.tracker.wait().await;
    }
}

fn shed() -> InferenceError {
    metrics::counter!("gekko_inference_shed_total").increment(1);
    InferenceError::Overloaded
}

/// Sleeps until `deadline` with sub-millisecond precision.
///
/// Tokio's timer wheel has 1 ms resolution, so `sleep_until` of a 50 µs deadline fires up
/// to a millisecond late, which would put a whole millisecond of idle waiting in front
/// of every lightly loaded batch. The coarse part of the wait goes to the timer; the last
/// millisecond yields to the scheduler until the deadline (a bounded spin, at most 1 ms
/// per batch, and only when the batch is not already full).
async fn sleep_until_precise(deadline: Instant) {
    const TIMER_RESOLUTION: Duration = Duration::from_millis(1);
    // A yield round trip costs a few hundred ns, so this bounds the spin at roughly the
    // timer resolution; past it (or under tokio's paused test clock, where time only
    // moves while every task is idle) the timer takes over.
    const MAX_YIELDS: u32 = 10_000;
    let now = Instant::now();
    if deadline > now + TIMER_RESOLUTION {
        tokio::time::sleep_until(deadline - TIMER_RESOLUTION).await;
    }
    for _ in 0..MAX_YIELDS {
        if Instant::now() >= deadline {
            return;
        }
        tokio::task::yield_now().await;
    }
    tokio::time::sleep_until(deadline).await;
}

/// The collector task's state.
struct Collector {
    rx: mpsc::Receiver<Request>,
    registry: Arc<ModelRegistry>,
    max_batch: usize,
    max_wait: Duration,
    pool: Option<Arc<rayon::ThreadPool>>,
    in_flight: Arc<Semaphore>,
    tracker: TaskTracker,
}

impl Collector {
    async fn run(mut self, cancel: CancellationToken) {
        let mut stopping = false;
        while !stopping {
            let first = tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                r = self.rx.recv() => match r {
                    Some(r) => r,
                    None => break,
                },
            };
            let deadline = first.enqueued + self.max_wait;
            let mut batch = Vec::with_capacity(self.max_batch);
            batch.push(first);
            // Fill until full or until max_wait after the first request.
            while batch.len() < self.max_batch {
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => { stopping = true; break; }
                    r = self.rx.recv() => match r {
                        Some(r) => batch.push(r),
                        None => { stopping = true; break; }
                    },
                    () = sleep_until_precise(deadline) => break,
                }
            }
            // Wait for the previous batch to finish, topping this one up meanwhile.
            let permit = loop {
                if batch.len() >= self.max_batch || stopping {
                    break Arc::clone(&self.in_flight).acquire_owned().await;
                }
                tokio::select! {
                    biased;
                    p = Arc::clone(&self.in_flight).acquire_owned() => break p,
                    r = self.rx.recv() => match r {
                        Some(r) => batch.push(r),
                        None => stopping = true,
                    },
                }
            };
            // The semaphore is never closed, so acquiring cannot fail.
            if let Ok(permit) = permit {
                self.dispatch(batch, permit);
            }
        }
        // Refuse what is still queued, then wait for the batch in flight.
        self.rx.close();
        while let Ok(r) = self.rx.try_recv() {
            let _ = r.reply.send(Err(InferenceError::Closed));
        }
        let _ = self.in_flight.acquire().await;
        tracing::debug!(model = %self.registry.name(), "batcher stopped");
    }

    /// Runs one batch on the blocking pool; the permit is released when it ends.
    fn dispatch(&self, batch: Vec<Request>, permit: OwnedSemaphorePermit) {
        let started = Instant::now();
        let model = self.registry.current();
        let pool = self.pool.clone();
        self.tracker.spawn_blocking(move || {
            let _permit = permit;
            let meta = model.meta();
            let input_len = model.input_len();
            // Rows are re-checked against the version that scores them: after a
            // reload that changes the window, old-length rows fail alone.
            let (good, bad): (Vec<_>, Vec<_>) = batch
                .into_iter()
                .partition(|r| validate_rows(&r.features, 1, input_len).is_ok());
            for r in bad {
                let err = validate_rows(&r.features, 1, input_len)
                    .err()
                    .unwrap_or_else(|| InferenceError::InvalidInput("row rejected".into()));
                let _ = r.reply.send(Err(err));
            }
            let n = good.len();
            if n == 0 {
                return;
            }
            let mut flat = Vec::with_capacity(n * input_len);
            for r in &good {
                flat.extend_from_slice(&r.features);
            }
            let result = match &pool {
                Some(pool) => pool.install(|| model.predict(&flat, n)),
                None => model.predict(&flat, n),
            };
            metrics::histogram!("gekko_inference_batch_size").record(n as f64);
            metrics::gauge!("gekko_inference_device_memory_bytes")
                .set((model.model_bytes() + model.per_row_bytes() * n) as f64);
            match result {
                Ok(predictions) => {
                    metrics::counter!("gekko_inference_predictions_total", "model" => meta.name.clone())
                        .increment(n as u64);
                    for (r, prediction) in good.into_iter().zip(predictions) {
                        let queue_wait = started.saturating_duration_since(r.enqueued);
                        metrics::histogram!("gekko_inference_queue_wait_seconds")
                            .record(queue_wait.as_secs_f64());
                        let _ = r.reply.send(Ok(Scored {
                            prediction,
                            model: meta.name.clone(),
                            version: meta.version,
                            queue_wait,
                            batch_size: n,
                        }));
                    }
                }
                Err(e) => {
                    tracing::error!(model = %meta.name, version = meta.version, rows = n, error = %e, "batch failed");
                    metrics::counter!("gekko_inference_batch_failures_total", "model" => meta.name.clone())
                        .increment(1);
                    for r in good {
                        let _ = r.reply.send(Err(e.clone()));
                    }
                }
            }
        });
    }
}
