//! The direction model: an MLP over a flattened feature window, its metadata and
//! its on-disk format.
//!
//! A model version is a directory holding two files:
//!
//! * `meta.json` — [`ModelMeta`]: name, version, window, horizon, layer sizes and
//!   the [`TrainReport`] (metrics plus the exact command that regenerates it);
//! * `model.safetensors` — the tensors named in [`TENSOR_NAMES`], in `f32`.
//!
//! The network is `input (window·4) → hidden → ReLU → hidden → ReLU → 2` logits
//! (down, up). Inputs are standardised with the training set's per-feature mean and
//! standard deviation, which are stored with the weights (`input.mean`,
//! `input.std`) so that a model carries its own preprocessing. At load time the
//! standardisation is folded into the first layer (`W' = W / std`,
//! `b' = b - W'·mean`), so serving is three matmuls and nothing else.
//!
//! Loading is strict because a model that loads but means something else (a
//! window of 16 fed 32 steps, say) fails silently in production: every tensor name,
//! shape and value is checked against `meta.json`, and every problem is reported
//! with the file it is in. A bf16 model on a device that cannot run bf16 matmuls
//! (candle 0.11's CPU backend) is refused at load with [`InferenceError::Unsupported`]
//! rather than on the first request.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::InferenceError;
use crate::features::FEATURES_PER_STEP;

pub use gekko_core::Direction;

/// File name of the metadata inside a version directory.
pub const META_FILE: &str = "meta.json";
/// File name of the weights inside a version directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The architecture tag written to `meta.json`.
pub const ARCH: &str = "mlp2-relu";

/// Names of the tensors in `model.safetensors`, in the order of the network.
pub const TENSOR_NAMES: [&str; 8] = [
    "input.mean",
    "input.std",
    "l1.weight",
    "l1.bias",
    "l2.weight",
    "l2.bias",
    "head.weight",
    "head.bias",
];

/// Hidden activations per forward pass on the CPU. candle 0.11 hands element-wise
/// ops of 64 Ki elements or more to a separate spinning thread pool, which on a
/// small machine fights the matmul threads; chunks of half that keep the bias/ReLU
/// work on the calling thread and the activations in cache. Measured on 2 cores:
/// batch 16 384 went from 16 ms to 5.6 ms.
const CPU_CHUNK_ACTIVATIONS: usize = 32 * 1024;

/// Largest window a model may declare (the config's bound).
const MAX_WINDOW: usize = 4096;
/// Largest hidden width a model may declare.
const MAX_HIDDEN: usize = 65_536;

/// One scored row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Probability that the mid is higher `horizon` quotes ahead.
    pub p_up: f32,
    /// `Up` when `p_up >= 0.5`.
    pub direction: Direction,
    /// `max(p_up, 1 - p_up)`.
    pub confidence: f32,
}

impl Prediction {
    /// The prediction for logits `(down, up)`: a two-class softmax, computed as the
    /// logistic of the logit difference (the same number, without overflow).
    #[must_use]
    pub fn from_logits(down: f32, up: f32) -> Self {
        let p_up = 1.0 / (1.0 + (down - up).exp());
        Self::from_p_up(p_up)
    }

    /// The prediction for a probability of an up move.
    #[must_use]
    pub fn from_p_up(p_up: f32) -> Self {
        let direction = if p_up >= 0.5 {
            Direction::Up
        } else {
            Direction::Down
        };
        Self {
            p_up,
            direction,
            confidence: p_up.max(1.0 - p_up),
        }
    }
}

/// How a model was trained and how well it did on held-out data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Mean cross-entropy over the last training epoch.
    pub loss: f32,
    /// Cross-entropy on the held-out (later in time) samples.
    pub heldout_loss: f32,
    /// Share of held-out samples whose direction was predicted correctly.
    pub heldout_hit_rate: f32,
    /// Share of held-out samples that moved up (the naive "always up" hit rate).
    pub heldout_up_fraction: f32,
    /// Training samples.
    pub train_samples: usize,
    /// Held-out samples.
    pub heldout_samples: usize,
    /// Seed of the synthetic market and of the initialisation and shuffling.
    pub seed: u64,
    /// Optimiser steps taken.
    pub steps: u64,
    /// Passes over the training set.
    pub epochs: usize,
    /// The exact command that regenerates this model directory.
    pub command: String,
}

/// The contents of `meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Model name (the directory above the version directories).
    pub name: String,
    /// Version (the version directory's name).
    pub version: u64,
    /// Architecture tag; must be [`ARCH`].
    pub arch: String,
    /// Steps per input window.
    pub window: usize,
    /// Quotes ahead that the label looks.
    pub horizon: usize,
    /// Values per step; must be [`FEATURES_PER_STEP`].
    pub features_per_step: usize,
    /// Width of both hidden layers.
    pub hidden: usize,
    /// Training metrics and provenance.
    pub train: TrainReport,
}

impl ModelMeta {
    /// `window * features_per_step`.
    #[must_use]
    pub fn input_len(&self) -> usize {
        self.window.saturating_mul(self.features_per_step)
    }

    /// The shape each tensor of [`TENSOR_NAMES`] must have.
    #[must_use]
    pub fn expected_shapes(&self) -> [(&'static str, Vec<usize>); 8] {
        let (i, h) = (self.input_len(), self.hidden);
        [
            ("input.mean", vec![i]),
            ("input.std", vec![i]),
            ("l1.weight", vec![h, i]),
            ("l1.bias", vec![h]),
            ("l2.weight", vec![h, h]),
            ("l2.bias", vec![h]),
            ("head.weight", vec![2, h]),
            ("head.bias", vec![2]),
        ]
    }

    /// Checks the fields that the network's shape depends on.
    fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.arch != ARCH {
            problems.push(format!("arch is {:?}, expected {ARCH:?}", self.arch));
        }
        if self.features_per_step != FEATURES_PER_STEP {
            problems.push(format!(
                "features_per_step is {}, this build computes {FEATURES_PER_STEP}",
                self.features_per_step
            ));
        }
        if !(1..=MAX_WINDOW).contains(&self.window) {
            problems.push(format!(
                "window is {}, expected 1..={MAX_WINDOW}",
                self.window
            ));
        }
        if !(1..=MAX_HIDDEN).contains(&self.hidden) {
            problems.push(format!(
                "hidden is {}, expected 1..={MAX_HIDDEN}",
                self.hidden
            ));
        }
        if self.horizon == 0 {
            problems.push("horizon is 0, expected at least 1".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Reads and validates `dir/meta.json`.
    ///
    /// # Errors
    /// `ModelLoad` naming `meta.json` when it is unreadable, not JSON of this shape,
    /// or inconsistent.
    pub fn read(dir: &Path) -> Result<Self, InferenceError> {
        let path = dir.join(META_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| InferenceError::model_load(&path, format!("cannot read: {e}")))?;
        let meta: Self = serde_json::from_str(&text)
            .map_err(|e| InferenceError::model_load(&path, format!("invalid meta.json: {e}")))?;
        meta.validate()
            .map_err(|reason| InferenceError::model_load(&path, reason))?;
        Ok(meta)
    }

    /// Writes `dir/meta.json` (pretty-printed, with a trailing newline).
    ///
    /// # Errors
    /// `Io` if the file cannot be written.
    pub fn write(&self, dir: &Path) -> Result<(), InferenceError> {
        let path = dir.join(META_FILE);
        let mut text = serde_json::to_string_pretty(self)
            .map_err(|e| InferenceError::Train(format!("cannot serialise meta.json: {e}")))?;
        text.push('\n');
        std::fs::write(&path, text).map_err(|e| InferenceError::io(path, e))
    }
}

/// Checks that `rows` holds `n` rows of `input_len` finite values.
///
/// # Errors
/// `InvalidInput` naming the expected and actual length, or the first row and
/// feature that is NaN or infinite.
pub fn validate_rows(rows: &[f32], n: usize, input_len: usize) -> Result<(), InferenceError> {
    let expected = n.checked_mul(input_len).ok_or_else(|| {
        InferenceError::InvalidInput(format!("{n} rows of {input_len} values overflow"))
    })?;
    if rows.len() != expected {
        return Err(InferenceError::InvalidInput(format!(
            "expected {n} rows × {input_len} features = {expected} values, got {}",
            rows.len()
        )));
    }
    if let Some(i) = rows.iter().position(|v| !v.is_finite()) {
        let (row, col) = (i / input_len.max(1), i % input_len.max(1));
        return Err(InferenceError::InvalidInput(format!(
            "row {row} feature {col} (step {}, value {} of {FEATURES_PER_STEP}) is {}",
            col / FEATURES_PER_STEP,
            col % FEATURES_PER_STEP,
            rows[i]
        )));
    }
    Ok(())
}

/// A model version loaded onto a device, ready to score.
#[derive(Debug)]
pub struct LoadedModel {
    meta: ModelMeta,
    dir: PathBuf,
    device: Device,
    dtype: DType,
    /// First layer with the input standardisation folded in, transposed: `[in, h]`.
    w1t: Tensor,
    b1: Tensor,
    /// `[h, h]`, transposed.
    w2t: Tensor,
    b2: Tensor,
    /// `[h, 2]`, transposed.
    w3t: Tensor,
    b3: Tensor,
}

impl LoadedModel {
    /// Loads the version in `dir` onto `device`, casting the weights to `dtype`
    /// (`F32` or `BF16`), and runs one probe prediction.
    ///
    /// # Errors
    /// * `ModelLoad` naming `meta.json` or `model.safetensors` and listing every
    ///   problem found (missing or unexpected tensors, wrong shapes, non-finite
    ///   values, a truncated or non-safetensors file);
    /// * `Unsupported` when `dtype` cannot run on `device`;
    /// * `Compute` when the device fails while uploading or probing.
    pub fn load(dir: &Path, device: &Device, dtype: DType) -> Result<Self, InferenceError> {
        if !matches!(dtype, DType::F32 | DType::BF16) {
            return Err(InferenceError::Unsupported {
                dtype: dtype.as_str().to_owned(),
                device: device_kind(device).to_owned(),
                reason: "only f32 and bf16 are supported".to_owned(),
            });
        }
        let meta = ModelMeta::read(dir)?;
        let path = dir.join(WEIGHTS_FILE);
        let bytes = std::fs::read(&path)
            .map_err(|e| InferenceError::model_load(&path, format!("cannot read: {e}")))?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|e| {
            InferenceError::model_load(
                &path,
                format!("not a valid safetensors file ({} bytes): {e}", bytes.len()),
            )
        })?;
        let params =
            check_tensors(&meta, tensors).map_err(|r| InferenceError::model_load(&path, r))?;
        let model = Self::from_params(meta, dir, device, dtype, &params)?;
        model.probe()?;
        Ok(model)
    }

    /// Builds the serving tensors from checked `f32` CPU tensors.
    fn from_params(
        meta: ModelMeta,
        dir: &Path,
        device: &Device,
        dtype: DType,
        p: &HashMap<String, Tensor>,
    ) -> Result<Self, InferenceError> {
        let build = || -> candle_core::Result<[Tensor; 6]> {
            let get = |name: &str| {
                p.get(name)
                    .ok_or_else(|| candle_core::Error::Msg(format!("tensor {name} missing")))?
                    .to_dtype(DType::F64)
            };
            let (mean, std) = (get("input.mean")?, get("input.std")?);
            // Fold the standardisation into layer 1, in f64 so folding adds no error
            // beyond the final cast.
            let w1 = get("l1.weight")?.broadcast_div(&std)?;
            let b1 = (get("l1.bias")? - w1.matmul(&mean.unsqueeze(1)?)?.squeeze(1)?)?;
            let finish = |t: Tensor| t.to_dtype(dtype)?.to_device(device);
            Ok([
                finish(w1.t()?.contiguous()?)?,
                finish(b1)?,
                finish(get("l2.weight")?.t()?.contiguous()?)?,
                finish(get("l2.bias")?)?,
                finish(get("head.weight")?.t()?.contiguous()?)?,
                finish(get("head.bias")?)?,
            ])
        };
        let [w1t, b1, w2t, b2, w3t, b3] =
            build().map_err(|e| InferenceError::compute("uploading model weights", e))?;
        Ok(Self {
            meta,
            dir: dir.to_path_buf(),
            device: device.clone(),
            dtype,
            w1t,
            b1,
            w2t,
            b2,
            w3t,
            b3,
        })
    }

    /// Scores one all-zero row so that a model that cannot run here fails at load.
    fn probe(&self) -> Result<(), InferenceError> {
        let row = vec![0.0_f32; self.input_len()];
        match self.forward(&row, 1) {
            Ok(p) if p.iter().all(|p| p.p_up.is_finite()) => Ok(()),
            Ok(_) => Err(InferenceError::model_load(
                self.dir.join(WEIGHTS_FILE),
                "probe prediction is not finite",
            )),
            Err(InferenceError::Compute { source, .. }) if self.dtype != DType::F32 => {
                Err(InferenceError::Unsupported {
                    dtype: self.dtype.as_str().to_owned(),
                    device: device_kind(&self.device).to_owned(),
                    reason: source.to_string(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The model's metadata.
    #[must_use]
    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    /// The version directory it was loaded from.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Values per row: `window * 4`.
    #[must_use]
    pub fn input_len(&self) -> usize {
        self.meta.input_len()
    }

    /// The dtype the weights and activations use.
    #[must_use]
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The device the weights live on.
    #[must_use]
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Floating-point operations per row, counting the three matmuls
    /// (`2·(in·h + h·h + h·2)`); biases and ReLUs add under 1 %.
    #[must_use]
    pub fn flops_per_row(&self) -> u64 {
        let (i, h) = (self.input_len() as u64, self.meta.hidden as u64);
        2 * (i * h + h * h + h * 2)
    }

    /// Bytes of weights on the device.
    #[must_use]
    pub fn model_bytes(&self) -> usize {
        let (i, h) = (self.input_len(), self.meta.hidden);
        (i * h + h + h * h + h + h * 2 + 2) * self.dtype.size_in_bytes()
    }

    /// Working memory one row needs on the device during `predict`: the `f32`
    /// input, its cast, two hidden layers before and after ReLU, and the logits.
    #[must_use]
    pub fn per_row_bytes(&self) -> usize {
        let (i, h, d) = (
            self.input_len(),
            self.meta.hidden,
            self.dtype.size_in_bytes(),
        );
        i * (4 + d) + 4 * h * d + 2 * (d + 4)
    }

    /// Scores `n` rows given flat (`rows.len() == n * input_len()`).
    ///
    /// # Errors
    /// `InvalidInput` for a wrong length or a NaN/infinite value (checked before
    /// any device work), `Compute` if the device fails.
    pub fn predict(&self, rows: &[f32], n: usize) -> Result<Vec<Prediction>, InferenceError> {
        validate_rows(rows, n, self.input_len())?;
        if n == 0 {
            return Ok(Vec::new());
        }
        let chunk_rows = (CPU_CHUNK_ACTIVATIONS / self.meta.hidden).max(1);
        if !self.device.is_cpu() || n <= chunk_rows {
            return self.forward(rows, n);
        }
        // On the CPU, large batches run as a sequence of cache-sized chunks; a GPU
        // gets the whole batch in one pass.
        let mut out = Vec::with_capacity(n);
        for chunk in rows.chunks(chunk_rows * self.input_len()) {
            out.extend(self.forward(chunk, chunk.len() / self.input_len())?);
        }
        Ok(out)
    }

    fn forward(&self, rows: &[f32], n: usize) -> Result<Vec<Prediction>, InferenceError> {
        let run = || -> candle_core::Result<Vec<f32>> {
            let x = Tensor::from_slice(rows, (n, self.input_len()), &self.device)?;
            let x = if self.dtype == DType::F32 {
                x
            } else {
                x.to_dtype(self.dtype)?
            };
            let h = x.matmul(&self.w1t)?.broadcast_add(&self.b1)?.relu()?;
            let h = h.matmul(&self.w2t)?.broadcast_add(&self.b2)?.relu()?;
            let logits = h.matmul(&self.w3t)?.broadcast_add(&self.b3)?;
            logits.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
        };
        let logits = run().map_err(|e| InferenceError::compute("running the forward pass", e))?;
        Ok(logits
            .chunks_exact(2)
            .map(|l| Prediction::from_logits(l[0], l[1]))
            .collect())
    }
}

/// `"cuda"`, `"metal"` or `"cpu"`.
pub(crate) fn device_kind(device: &Device) -> &'static str {
    match device {
        Device::Cpu => "cpu",
        Device::Cuda(_) => "cuda",
        Device::Metal(_) => "metal",
    }
}

/// Checks names, shapes and values against `meta`; returns the tensors as `f32`.
fn check_tensors(
    meta: &ModelMeta,
    mut tensors: HashMap<String, Tensor>,
) -> Result<HashMap<String, Tensor>, String> {
    let mut problems = Vec::new();
    let mut out = HashMap::new();
    for (name, shape) in meta.expected_shapes() {
        let Some(t) = tensors.remove(name) else {
            problems.push(format!("tensor {name} is missing"));
            continue;
        };
        if t.dims() != shape.as_slice() {
            problems.push(format!(
                "tensor {name} has shape {:?}, expected {shape:?} (window {}, hidden {} in meta.json)",
                t.dims(),
                meta.window,
                meta.hidden
            ));
            continue;
        }
        if !t.dtype().is_float() {
            problems.push(format!(
                "tensor {name} has dtype {}, expected a float",
                t.dtype().as_str()
            ));
            continue;
        }
        let values = match t
            .to_dtype(DType::F32)
            .and_then(|t| t.flatten_all()?.to_vec1::<f32>())
        {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("tensor {name} cannot be read: {e}"));
                continue;
            }
        };
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            problems.push(format!(
                "tensor {name} has a non-finite value at flat index {i}"
            ));
            continue;
        }
        if name == "input.std"
            && let Some(i) = values.iter().position(|v| *v <= 0.0)
        {
            problems.push(format!(
                "tensor input.std has a non-positive value at index {i}"
            ));
            continue;
        }
        match Tensor::from_vec(values, shape.as_slice(), &Device::Cpu) {
            Ok(t) => {
                out.insert(name.to_owned(), t);
            }
            Err(e) => problems.push(format!("tensor {name} cannot be rebuilt: {e}")),
        }
    }
    let mut unexpected: Vec<_> = tensors.into_keys().collect();
    unexpected.sort();
    for name in unexpected {
        problems.push(format!("unexpected tensor {name}"));
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_of_two_logits() {
        let p = Prediction::from_logits(0.0, 0.0);
        assert!((p.p_up - 0.5).abs() < 1e-7);
        assert_eq!(p.direction, Direction::Up);
        let p = Prediction::from_logits(1.0, -1.0);
        // 1 / (1 + e^2)
        assert!((p.p_up - 0.119_202_92).abs() < 1e-6);
        assert_eq!(p.direction, Direction::Down);
        assert!((p.confidence - 0.880_797_1).abs() < 1e-6);
        // No overflow for extreme logits.
        let p = Prediction::from_logits(-1e30, 1e30);
        assert!((p.p_up - 1.0).abs() < 1e-7);
    }

    #[test]
    fn validation_names_row_and_feature() {
        assert!(validate_rows(&[0.0; 8], 2, 4).is_ok());
        let Err(InferenceError::InvalidInput(msg)) = validate_rows(&[0.0; 7], 2, 4) else {
            panic!("wrong length must be InvalidInput");
        };
        assert!(
            msg.contains("expected 2 rows × 4 features = 8 values, got 7"),
            "{msg}"
        );
        let mut rows = [0.0; 8];
        rows[6] = f32::NAN;
        let Err(InferenceError::InvalidInput(msg)) = validate_rows(&rows, 2, 4) else {
            panic!("NaN must be InvalidInput");
        };
        assert!(msg.contains("row 1 feature 2"), "{msg}");
        rows[6] = f32::INFINITY;
        assert!(matches!(
            validate_rows(&rows, 2, 4),
            Err(InferenceError::InvalidInput(_))
        ));
    }
}
