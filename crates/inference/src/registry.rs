//! Versioned model directories with validated, atomic hot reload.
//!
//! Layout: `root/<name>/<version>/{meta.json,model.safetensors}` where `<version>`
//! is a plain decimal number. Anything else in `root/<name>/` (such as the hidden
//! `.<version>.tmp-<pid>` directories [`crate::train`] writes before renaming) is
//! ignored, so a version appears only once it is complete.
//!
//! Readers call [`ModelRegistry::current`] on every batch. It is an `ArcSwap` load:
//! lock-free and wait-free, so a reload never stalls scoring, and a batch keeps the
//! `Arc` it took, so the version that started a batch finishes it even if a newer
//! one is swapped in meanwhile (the old model is freed when its last batch ends).
//!
//! A new version is only swapped in after it has loaded completely and answered a
//! probe prediction. If it fails, the old model keeps serving, the failure is
//! counted in `gekko_inference_reload_failures_total` and the error names the file
//! and the problem. Reloads are serialised by a mutex so that two triggers (the
//! watcher and an admin call, say) never load the same version twice.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use candle_core::{DType, Device};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::InferenceError;
use crate::model::{LoadedModel, META_FILE};

/// The serving model for one name, plus what is needed to load newer versions.
#[derive(Debug)]
pub struct ModelRegistry {
    root: PathBuf,
    name: String,
    device: Device,
    dtype: DType,
    current: ArcSwap<LoadedModel>,
    reload_lock: Mutex<()>,
}

impl ModelRegistry {
    /// Opens `root/name/` and loads its highest version that loads cleanly.
    ///
    /// Versions are tried newest first; a broken newest version is logged, counted
    /// as a reload failure and skipped, so that one bad upload cannot keep the
    /// service from starting while an older good version exists.
    ///
    /// # Errors
    /// `ModelLoad` when the directory has no version directories, or when none of
    /// them loads (the error is the newest version's).
    pub fn open(
        root: &Path,
        name: &str,
        device: Device,
        dtype: DType,
    ) -> Result<Self, InferenceError> {
        let dir = root.join(name);
        let versions = list_versions(&dir)?;
        if versions.is_empty() {
            return Err(InferenceError::model_load(
                &dir,
                "no version directories (decimal names such as 1, 2, …) found",
            ));
        }
        let mut first_error = None;
        for &version in &versions {
            match load_version(root, name, version, &device, dtype) {
                Ok(model) => {
                    metrics::gauge!("gekko_inference_model_version", "model" => name.to_owned())
                        .set(version as f64);
                    tracing::info!(
                        model = name,
                        version,
                        dtype = dtype.as_str(),
                        "model loaded"
                    );
                    return Ok(Self {
                        root: root.to_path_buf(),
                        name: name.to_owned(),
                        device,
                        dtype,
                        current: ArcSwap::from_pointee(model),
                        reload_lock: Mutex::new(()),
                    });
                }
                Err(e) => {
                    metrics::counter!("gekko_inference_reload_failures_total", "model" => name.to_owned())
                        .increment(1);
                    tracing::warn!(model = name, version, error = %e, "model version unusable; trying an older one");
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or_else(|| InferenceError::model_load(&dir, "no loadable version")))
    }

    /// The model serving now. Cheap and lock-free; hold the `Arc` for one batch.
    #[must_use]
    pub fn current(&self) -> Arc<LoadedModel> {
        self.current.load_full()
    }

    /// The model name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The root of the model tree.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The device models are loaded onto.
    #[must_use]
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The dtype models are cast to.
    #[must_use]
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Loads and swaps in the newest version above the current one, if any.
    ///
    /// Returns `Ok(Some(version))` after a swap and `Ok(None)` when nothing newer
    /// exists. If several newer versions exist they are tried newest first and the
    /// first that loads wins. This call blocks (file I/O and device uploads): from
    /// async code run it under `spawn_blocking`, as [`ModelRegistry::spawn_watcher`]
    /// does.
    ///
    /// # Errors
    /// When every newer version fails: the newest one's `ModelLoad` (naming
    /// `meta.json` or `model.safetensors` and the problem), `Unsupported` or
    /// `Compute`. The current model keeps serving in every error case.
    pub fn reload_if_newer(&self) -> Result<Option<u64>, InferenceError> {
        let _serialised = gekko_core::sync::lock(&self.reload_lock);
        let current = self.current().meta().version;
        let dir = self.root.join(&self.name);
        let newer: Vec<u64> = list_versions(&dir)?
            .into_iter()
            .filter(|v| *v > current)
            .collect();
        let mut first_error = None;
        for version in newer {
            match load_version(&self.root, &self.name, version, &self.device, self.dtype) {
                Ok(model) => {
                    let old_len = self.current().input_len();
                    if model.input_len() != old_len {
                        tracing::warn!(
                            model = %self.name,
                            version,
                            old_input_len = old_len,
                            new_input_len = model.input_len(),
                            "new model version changes the input length; callers must follow"
                        );
                    }
                    self.current.store(Arc::new(model));
                    metrics::gauge!("gekko_inference_model_version", "model" => self.name.clone())
                        .set(version as f64);
                    tracing::info!(model = %self.name, from = current, to = version, "model reloaded");
                    if let Some(e) = first_error {
                        tracing::warn!(model = %self.name, error = %e, "a newer version was skipped");
                    }
                    return Ok(Some(version));
                }
                Err(e) => {
                    metrics::counter!("gekko_inference_reload_failures_total", "model" => self.name.clone())
                        .increment(1);
                    tracing::warn!(model = %self.name, version, error = %e, "model reload failed; keeping the current version");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(None), Err)
    }

    /// Polls for newer versions every `every` (the model's entry in
    /// `MODEL_UPDATE_FREQUENCIES`) until `cancel` fires. Loads run on the blocking
    /// pool so the runtime's workers never wait on disk or device uploads; a failed
    /// reload is logged and retried at the next tick.
    pub fn spawn_watcher(
        self: Arc<Self>,
        every: Duration,
        cancel: CancellationToken,
    ) -> JoinHandle<()> {
        let (_fixed, every) = tokio::sync::watch::channel(every);
        self.spawn_watcher_following(every, cancel)
    }

    /// Like [`spawn_watcher`](Self::spawn_watcher), with a period that can change while it
    /// runs (a hot `MODEL_UPDATE_FREQUENCIES` change): a new value on `every` restarts the
    /// period from now, so a shorter one takes effect at once rather than after the old,
    /// longer wait.
    pub fn spawn_watcher_following(
        self: Arc<Self>,
        mut every: tokio::sync::watch::Receiver<Duration>,
        cancel: CancellationToken,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let period = |d: Duration| d.max(Duration::from_millis(10));
            let new_tick = |d: Duration| {
                let mut tick =
                    tokio::time::interval_at(tokio::time::Instant::now() + period(d), period(d));
                // A slow load must not cause a burst of catch-up polls.
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick
            };
            // The first poll is one period away; `open` just loaded.
            let mut tick = new_tick(*every.borrow_and_update());
            let mut following = true;
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    _ = tick.tick() => {}
                    r = every.changed(), if following => {
                        match r {
                            Ok(()) => {
                                let d = *every.borrow_and_update();
                                tracing::info!(model = %self.name, every_ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX), "model update period changed");
                                tick = new_tick(d);
                            }
                            // Nobody changes it any more; keep the period in force.
                            Err(_) => following = false,
                        }
                        continue;
                    }
                }
                let registry = Arc::clone(&self);
                match tokio::task::spawn_blocking(move || registry.reload_if_newer()).await {
                    Ok(Ok(_)) | Ok(Err(_)) => {} // logged and counted inside
                    Err(e) => {
                        tracing::error!(model = %self.name, error = %e, "model reload task panicked")
                    }
                }
            }
            tracing::debug!(model = %self.name, "model watcher stopped");
        })
    }
}

/// Decimal-named subdirectories of `dir`, newest first.
fn list_versions(dir: &Path) -> Result<Vec<u64>, InferenceError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| InferenceError::model_load(dir, format!("cannot list model versions: {e}")))?;
    let mut versions: Vec<u64> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let name = e.file_name();
            let name = name.to_str()?;
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            name.parse().ok()
        })
        .collect();
    versions.sort_unstable_by(|a, b| b.cmp(a));
    versions.dedup();
    Ok(versions)
}

/// Loads `root/name/version` and checks that its `meta.json` agrees with where it
/// lives (a copied directory with a stale `meta.json` is a classic mistake).
fn load_version(
    root: &Path,
    name: &str,
    version: u64,
    device: &Device,
    dtype: DType,
) -> Result<LoadedModel, InferenceError> {
    let dir = root.join(name).join(version.to_string());
    let model = LoadedModel::load(&dir, device, dtype)?;
    let meta = model.meta();
    if meta.name != name || meta.version != version {
        return Err(InferenceError::model_load(
            dir.join(META_FILE),
            format!(
                "meta.json says model {:?} version {} but the directory is {name}/{version}",
                meta.name, meta.version
            ),
        ));
    }
    Ok(model)
}
