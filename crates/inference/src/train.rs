//! Reproducible training of the direction model on a synthetic market.
//!
//! There is no market data in the repository and no network at build or test time,
//! so the committed model is trained on a *synthetic* market drawn from a seeded
//! `ChaCha8Rng`. The process has structure a model can learn, and that real books
//! show in weaker form:
//!
//! * a latent order flow (AR(1)) shows up in the displayed top-of-book imbalance,
//!   and the imbalance *leads* the next mid move;
//! * returns carry a little short-term momentum;
//! * volatility switches between a calm and a busy regime (a Markov chain), and
//!   spreads widen with volatility.
//!
//! Quotes are built as real [`Quote`]s (cent ticks, `Decimal`) and run through the
//! same [`FeatureBuilder`] the service uses, so training and serving cannot drift
//! apart. Labels are "mid higher `horizon` quotes ahead". The split is by time:
//! the held-out set is the last part of the series, separated from the training
//! set by `window + horizon` samples so that no held-out window or label overlaps a
//! training one.
//!
//! Everything random (market, initial weights, minibatch order) comes from the one
//! seed, weights are initialised on the host (not with candle's device RNG), and
//! candle's CPU kernels are deterministic for a given machine, so running the same
//! [`TrainConfig`] twice gives bit-identical `model.safetensors`. The output is
//! written to a hidden temporary directory and renamed into place, so the registry
//! (which ignores non-numeric names) never sees a half-written version.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use gekko_core::{InstrumentId, Quote, VenueId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

use crate::device::cpu_pool;
use crate::error::InferenceError;
use crate::features::{FEATURES_PER_STEP, FeatureBuilder};
use crate::model::{ARCH, LoadedModel, ModelMeta, TrainReport, WEIGHTS_FILE};

/// What to train and where to write it. `TrainConfig::default()` reproduces the
/// committed `models/direction/1` bit for bit (on an x86-64 CPU).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Model name; the output goes to `out_root/name/version/`.
    pub name: String,
    /// Version number to write.
    pub version: u64,
    /// Root of the model tree (`models` relative to the workspace root by default).
    pub out_root: PathBuf,
    /// Seed of the market, the initial weights and the minibatch order.
    pub seed: u64,
    /// Quotes to simulate.
    pub quotes: usize,
    /// Steps per window.
    pub window: usize,
    /// Quotes ahead that the label looks.
    pub horizon: usize,
    /// Width of both hidden layers.
    pub hidden: usize,
    /// Passes over the training set.
    pub epochs: usize,
    /// Minibatch size.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Share of samples (the latest ones) held out for evaluation.
    pub holdout_fraction: f64,
    /// CPU threads for training (0 = all cores). Does not change the result.
    pub threads: usize,
    /// Replace an existing version directory instead of failing.
    pub overwrite: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            name: "direction".to_owned(),
            version: 1,
            out_root: PathBuf::from("models"),
            seed: 20_260_101,
            quotes: 120_000,
            window: 32,
            horizon: 1,
            hidden: 64,
            epochs: 8,
            batch_size: 256,
            learning_rate: 1e-3,
            weight_decay: 1e-2,
            holdout_fraction: 0.2,
            threads: 0,
            overwrite: false,
        }
    }
}

impl TrainConfig {
    /// The command that regenerates this exact configuration's output, from the
    /// workspace root. It always carries `--overwrite` (regenerating means
    /// replacing) and never `--threads` (the thread count does not change the result).
    #[must_use]
    pub fn command_line(&self) -> String {
        format!(
            "cargo run --release -p gekko-inference --example train -- --out {} --name {} \
             --version {} --seed {} --quotes {} --window {} --horizon {} --hidden {} \
             --epochs {} --batch-size {} --lr {} --weight-decay {} --holdout {} --overwrite",
            self.out_root.display(),
            self.name,
            self.version,
            self.seed,
            self.quotes,
            self.window,
            self.horizon,
            self.hidden,
            self.epochs,
            self.batch_size,
            self.learning_rate,
            self.weight_decay,
            self.holdout_fraction,
        )
    }

    fn validate(&self) -> Result<(), InferenceError> {
        let mut problems = Vec::new();
        if self.name.is_empty() || self.name.contains(['/', '\\', '.']) {
            problems.push(format!(
                "name {:?} must be a plain directory name",
                self.name
            ));
        }
        if !(1..=4096).contains(&self.window) {
            problems.push(format!("window {} must be 1..=4096", self.window));
        }
        if self.horizon == 0 {
            problems.push("horizon must be at least 1".to_owned());
        }
        if self.hidden == 0 || self.batch_size == 0 || self.epochs == 0 {
            problems.push("hidden, batch_size and epochs must be at least 1".to_owned());
        }
        if !(self.holdout_fraction > 0.0 && self.holdout_fraction < 1.0) {
            problems.push(format!(
                "holdout_fraction {} must be in (0, 1)",
                self.holdout_fraction
            ));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            problems.push(format!(
                "learning_rate {} must be positive",
                self.learning_rate
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(InferenceError::Train(problems.join("; ")))
        }
    }
}

/// A reproducible synthetic quote stream for `binanceus:BTC-USD`, one quote per
/// second from 2026-01-01, starting at a mid of 30 000 USD.
///
/// The same seed always gives the same quotes. See the module docs for the process.
#[must_use]
pub fn synthetic_quotes(seed: u64, n: usize) -> Vec<Quote> {
    const CALM_VOL: f64 = 1.0e-4;
    const BUSY_VOL: f64 = 3.0e-4;
    const SWITCH_PROB: f64 = 0.004;
    const FLOW_PERSISTENCE: f64 = 0.8;
    const IMBALANCE_LEAD: f64 = 0.45;
    const MOMENTUM: f64 = 0.1;
    const START_MS: i64 = 1_767_225_600_000;

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let instrument = InstrumentId::new(VenueId::BinanceUs, "BTC", "USD");
    let mut quotes = Vec::with_capacity(n);
    let mut mid = 30_000.0_f64;
    let (mut busy, mut flow, mut z_prev) = (false, 0.0_f64, 0.0_f64);
    for t in 0..n {
        if rng.random::<f64>() < SWITCH_PROB {
            busy = !busy;
        }
        let vol = if busy { BUSY_VOL } else { CALM_VOL };
        flow = FLOW_PERSISTENCE * flow + 0.6 * normal(&mut rng);
        let imbalance = (0.8 * flow + 0.3 * normal(&mut rng)).tanh();
        let spread_bps = (1.0 + 2.0 * vol / CALM_VOL) * (0.8 + 0.4 * rng.random::<f64>());
        let size = (0.3 * normal(&mut rng)).exp();
        let half = mid * spread_bps / 20_000.0;
        let bid_cents = ((mid - half) * 100.0).floor();
        let ask_cents = ((mid + half) * 100.0).ceil().max(bid_cents + 1.0);
        let milli = |x: f64| Decimal::new((x * 1000.0).round().max(0.0) as i64, 3);
        quotes.push(Quote {
            instrument: instrument.clone(),
            bid: Decimal::new(bid_cents as i64, 2),
            bid_size: milli(size * (1.0 + imbalance)),
            ask: Decimal::new(ask_cents as i64, 2),
            ask_size: milli(size * (1.0 - imbalance)),
            ts_ms: START_MS + 1000 * t as i64,
        });
        // The move to the next quote: led by this quote's imbalance, with momentum.
        let z = IMBALANCE_LEAD * imbalance + MOMENTUM * z_prev + normal(&mut rng);
        mid *= (vol * z).exp();
        z_prev = z;
    }
    quotes
}

/// A standard normal draw (Box–Muller), so the stream depends only on ChaCha.
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Feature rows with their labels, in time order.
#[derive(Debug)]
struct Samples {
    /// `len * input_len` features.
    x: Vec<f32>,
    /// 1 = the mid was higher `horizon` quotes later.
    y: Vec<u32>,
    input_len: usize,
}

impl Samples {
    fn len(&self) -> usize {
        self.y.len()
    }

    fn slice(&self, from: usize, to: usize) -> Self {
        Self {
            x: self.x[from * self.input_len..to * self.input_len].to_vec(),
            y: self.y[from..to].to_vec(),
            input_len: self.input_len,
        }
    }
}

fn build_samples(quotes: &[Quote], window: usize, horizon: usize) -> Samples {
    let mut builder = FeatureBuilder::new(window);
    let mids: Vec<Decimal> = quotes.iter().map(Quote::mid).collect();
    let mut samples = Samples {
        x: Vec::new(),
        y: Vec::new(),
        input_len: window * FEATURES_PER_STEP,
    };
    for (t, q) in quotes.iter().enumerate() {
        let Some(features) = builder.push(q) else {
            continue;
        };
        let Some(future) = mids.get(t + horizon) else {
            break;
        };
        samples.x.extend_from_slice(&features);
        samples.y.push(u32::from(*future > mids[t]));
    }
    samples
}

/// Per-feature mean and standard deviation (constant features get std 1).
fn standardisation(s: &Samples) -> (Vec<f32>, Vec<f32>) {
    let (n, d) = (s.len() as f64, s.input_len);
    let mut sum = vec![0.0_f64; d];
    let mut sq = vec![0.0_f64; d];
    for row in s.x.chunks_exact(d) {
        for (j, v) in row.iter().enumerate() {
            sum[j] += f64::from(*v);
        }
    }
    let mean: Vec<f64> = sum.iter().map(|v| v / n).collect();
    for row in s.x.chunks_exact(d) {
        for (j, v) in row.iter().enumerate() {
            let dev = f64::from(*v) - mean[j];
            sq[j] += dev * dev;
        }
    }
    let std = sq.iter().map(|v| {
        let s = (v / n).sqrt();
        if s > 1e-12 { s } else { 1.0 }
    });
    #[allow(clippy::cast_possible_truncation)]
    (
        mean.iter().map(|m| *m as f32).collect(),
        std.map(|s| s as f32).collect(),
    )
}

fn standardise(s: &mut Samples, mean: &[f32], std: &[f32]) {
    for row in s.x.chunks_exact_mut(s.input_len) {
        for ((v, m), sd) in row.iter_mut().zip(mean).zip(std) {
            *v = (*v - m) / sd;
        }
    }
}

/// The trainable parameters, initialised like PyTorch's `nn.Linear`
/// (uniform in ±1/√fan_in) but from the ChaCha stream.
struct Params {
    l1w: Var,
    l1b: Var,
    l2w: Var,
    l2b: Var,
    hw: Var,
    hb: Var,
}

impl Params {
    fn init(rng: &mut ChaCha8Rng, input: usize, hidden: usize) -> candle_core::Result<Self> {
        let mut uniform = |shape: &[usize], fan_in: usize| -> candle_core::Result<Var> {
            let bound = 1.0 / (fan_in as f32).sqrt();
            let n: usize = shape.iter().product();
            let v: Vec<f32> = (0..n)
                .map(|_| (rng.random::<f32>() * 2.0 - 1.0) * bound)
                .collect();
            Var::from_tensor(&Tensor::from_vec(v, shape, &Device::Cpu)?)
        };
        Ok(Self {
            l1w: uniform(&[hidden, input], input)?,
            l1b: uniform(&[hidden], input)?,
            l2w: uniform(&[hidden, hidden], hidden)?,
            l2b: uniform(&[hidden], hidden)?,
            hw: uniform(&[2, hidden], hidden)?,
            hb: uniform(&[2], hidden)?,
        })
    }

    fn vars(&self) -> Vec<Var> {
        vec![
            self.l1w.clone(),
            self.l1b.clone(),
            self.l2w.clone(),
            self.l2b.clone(),
            self.hw.clone(),
            self.hb.clone(),
        ]
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = x.matmul(&self.l1w.t()?)?.broadcast_add(&self.l1b)?.relu()?;
        let h = h.matmul(&self.l2w.t()?)?.broadcast_add(&self.l2b)?.relu()?;
        h.matmul(&self.hw.t()?)?.broadcast_add(&self.hb)
    }
}

/// Mean cross-entropy and hit rate of `params` on `s` (evaluated in chunks).
fn evaluate(params: &Params, s: &Samples) -> candle_core::Result<(f32, f32)> {
    const CHUNK: usize = 4096;
    let (mut loss_sum, mut hits) = (0.0_f64, 0_usize);
    let mut from = 0;
    while from < s.len() {
        let to = (from + CHUNK).min(s.len());
        let n = to - from;
        let x = Tensor::from_slice(
            &s.x[from * s.input_len..to * s.input_len],
            (n, s.input_len),
            &Device::Cpu,
        )?;
        let y = Tensor::from_slice(&s.y[from..to], n, &Device::Cpu)?;
        let logits = params.forward(&x)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?.to_scalar::<f32>()?;
        loss_sum += f64::from(loss) * n as f64;
        let pred = logits.argmax(1)?.to_vec1::<u32>()?;
        hits += pred
            .iter()
            .zip(&s.y[from..to])
            .filter(|(p, y)| p == y)
            .count();
        from = to;
    }
    let n = s.len().max(1) as f64;
    #[allow(clippy::cast_possible_truncation)]
    Ok(((loss_sum / n) as f32, (hits as f64 / n) as f32))
}

/// Trains a model for `cfg` and writes `out_root/name/version/{model.safetensors,
/// meta.json}`. Returns the metadata written and the version directory.
///
/// # Errors
/// `Train` for an invalid config, too few samples, or an existing version
/// directory without `overwrite`; `Io` when the files cannot be written;
/// `Compute`/`Device` if candle fails.
pub fn train(cfg: TrainConfig) -> Result<(ModelMeta, PathBuf), InferenceError> {
    cfg.validate()?;
    let model_dir = cfg.out_root.join(&cfg.name);
    let final_dir = model_dir.join(cfg.version.to_string());
    if final_dir.exists() && !cfg.overwrite {
        return Err(InferenceError::Train(format!(
            "{} already exists (pass overwrite to replace it)",
            final_dir.display()
        )));
    }
    let pool = cpu_pool(cfg.threads)?;
    let started = std::time::Instant::now();
    let (tensors, report) = pool.install(|| fit(&cfg))?;
    let meta = ModelMeta {
        name: cfg.name.clone(),
        version: cfg.version,
        arch: ARCH.to_owned(),
        window: cfg.window,
        horizon: cfg.horizon,
        features_per_step: FEATURES_PER_STEP,
        hidden: cfg.hidden,
        train: report,
    };
    write_version(&model_dir, &final_dir, &meta, &tensors)?;
    // Load what was written, exactly as the registry will.
    LoadedModel::load(&final_dir, &Device::Cpu, DType::F32)?;
    tracing::info!(
        dir = %final_dir.display(),
        heldout_hit_rate = meta.train.heldout_hit_rate,
        heldout_loss = meta.train.heldout_loss,
        elapsed_ms = started.elapsed().as_millis(),
        "model trained"
    );
    Ok((meta, final_dir))
}

/// The training proper: data, fit, evaluation. Returns tensors to save and the report.
fn fit(cfg: &TrainConfig) -> Result<(HashMap<String, Tensor>, TrainReport), InferenceError> {
    let quotes = synthetic_quotes(cfg.seed, cfg.quotes);
    let all = build_samples(&quotes, cfg.window, cfg.horizon);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let n_train = ((all.len() as f64) * (1.0 - cfg.holdout_fraction)) as usize;
    let gap = cfg.window + cfg.horizon;
    if n_train < cfg.batch_size.min(64) || all.len() < n_train + gap + 16 {
        return Err(InferenceError::Train(format!(
            "{} quotes give {} samples; too few for window {} and a {} held-out share",
            cfg.quotes,
            all.len(),
            cfg.window,
            cfg.holdout_fraction
        )));
    }
    let mut train_set = all.slice(0, n_train);
    let mut heldout = all.slice(n_train + gap, all.len());
    let (mean, std) = standardisation(&train_set);
    standardise(&mut train_set, &mean, &std);
    standardise(&mut heldout, &mean, &std);

    let compute = |what: &'static str| move |e| InferenceError::compute(what, e);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x005e_ed0f_5eed);
    let params = Params::init(&mut rng, train_set.input_len, cfg.hidden)
        .map_err(compute("initialising weights"))?;
    let mut opt = AdamW::new(
        params.vars(),
        ParamsAdamW {
            lr: cfg.learning_rate,
            weight_decay: cfg.weight_decay,
            ..ParamsAdamW::default()
        },
    )
    .map_err(compute("creating the optimiser"))?;

    let d = train_set.input_len;
    let mut order: Vec<usize> = (0..train_set.len()).collect();
    let (mut steps, mut last_epoch_loss) = (0_u64, 0.0_f32);
    let mut xb = Vec::with_capacity(cfg.batch_size * d);
    let mut yb = Vec::with_capacity(cfg.batch_size);
    for _epoch in 0..cfg.epochs {
        // Fisher–Yates with the seeded stream: the same order on every run.
        for i in (1..order.len()).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        let (mut loss_sum, mut seen) = (0.0_f64, 0_usize);
        for batch in order.chunks(cfg.batch_size) {
            xb.clear();
            yb.clear();
            for &i in batch {
                xb.extend_from_slice(&train_set.x[i * d..(i + 1) * d]);
                yb.push(train_set.y[i]);
            }
            let mut step = || -> candle_core::Result<f32> {
                let x = Tensor::from_slice(&xb, (batch.len(), d), &Device::Cpu)?;
                let y = Tensor::from_slice(&yb, batch.len(), &Device::Cpu)?;
                let loss = candle_nn::loss::cross_entropy(&params.forward(&x)?, &y)?;
                opt.backward_step(&loss)?;
                loss.to_scalar::<f32>()
            };
            let loss = step().map_err(compute("taking a training step"))?;
            loss_sum += f64::from(loss) * batch.len() as f64;
            seen += batch.len();
            steps += 1;
        }
        #[allow(clippy::cast_possible_truncation)]
        {
            last_epoch_loss = (loss_sum / seen.max(1) as f64) as f32;
        }
    }
    let (heldout_loss, heldout_hit_rate) =
        evaluate(&params, &heldout).map_err(compute("evaluating the held-out set"))?;
    let ups = heldout.y.iter().filter(|y| **y == 1).count();
    #[allow(clippy::cast_possible_truncation)]
    let report = TrainReport {
        loss: last_epoch_loss,
        heldout_loss,
        heldout_hit_rate,
        heldout_up_fraction: (ups as f64 / heldout.len().max(1) as f64) as f32,
        train_samples: train_set.len(),
        heldout_samples: heldout.len(),
        seed: cfg.seed,
        steps,
        epochs: cfg.epochs,
        command: cfg.command_line(),
    };
    let input_len = train_set.input_len;
    let tensor = |v: Vec<f32>| Tensor::from_vec(v, input_len, &Device::Cpu);
    let tensors: HashMap<String, Tensor> = [
        ("input.mean", tensor(mean)),
        ("input.std", tensor(std)),
        ("l1.weight", Ok(params.l1w.as_tensor().clone())),
        ("l1.bias", Ok(params.l1b.as_tensor().clone())),
        ("l2.weight", Ok(params.l2w.as_tensor().clone())),
        ("l2.bias", Ok(params.l2b.as_tensor().clone())),
        ("head.weight", Ok(params.hw.as_tensor().clone())),
        ("head.bias", Ok(params.hb.as_tensor().clone())),
    ]
    .into_iter()
    .map(|(k, t)| t.map(|t| (k.to_owned(), t)))
    .collect::<candle_core::Result<_>>()
    .map_err(compute("collecting tensors"))?;
    Ok((tensors, report))
}

/// Writes into a hidden temporary directory, then renames it into place.
fn write_version(
    model_dir: &Path,
    final_dir: &Path,
    meta: &ModelMeta,
    tensors: &HashMap<String, Tensor>,
) -> Result<(), InferenceError> {
    std::fs::create_dir_all(model_dir).map_err(|e| InferenceError::io(model_dir, e))?;
    let tmp = model_dir.join(format!(".{}.tmp-{}", meta.version, std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| InferenceError::io(&tmp, e))?;
    }
    std::fs::create_dir(&tmp).map_err(|e| InferenceError::io(&tmp, e))?;
    let weights = tmp.join(WEIGHTS_FILE);
    candle_core::safetensors::save(tensors, &weights)
        .map_err(|e| InferenceError::compute(format!("writing {}", weights.display()), e))?;
    meta.write(&tmp)?;
    if final_dir.exists() {
        std::fs::remove_dir_all(final_dir).map_err(|e| InferenceError::io(final_dir, e))?;
    }
    std::fs::rename(&tmp, final_dir).map_err(|e| InferenceError::io(final_dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn market_is_reproducible_and_sane() {
        let a = synthetic_quotes(1, 500);
        let b = synthetic_quotes(1, 500);
        assert_eq!(a, b);
        assert_ne!(a, synthetic_quotes(2, 500));
        assert!(a.iter().all(|q| q.bid < q.ask && q.bid > Decimal::ZERO));
        assert!(
            a.iter()
                .all(|q| q.bid_size >= Decimal::ZERO && q.ask_size >= Decimal::ZERO)
        );
    }

    #[test]
    fn labels_look_ahead_by_horizon() {
        let quotes = synthetic_quotes(3, 200);
        let s = build_samples(&quotes, 4, 2);
        // First window completes at quote 4; the last usable sample is quote 197.
        assert_eq!(s.len(), 194);
        assert_eq!(s.y[0], u32::from(quotes[6].mid() > quotes[4].mid()));
        assert_eq!(s.x.len(), 194 * 16);
    }

    #[test]
    fn bad_config_is_rejected() {
        let cfg = TrainConfig {
            window: 0,
            holdout_fraction: 1.5,
            ..TrainConfig::default()
        };
        let Err(InferenceError::Train(msg)) = train(cfg) else {
            panic!("must fail");
        };
        assert!(
            msg.contains("window 0") && msg.contains("holdout_fraction 1.5"),
            "{msg}"
        );
    }
}
