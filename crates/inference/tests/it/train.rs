//! Training is reproducible: the same config gives bit-identical weights.

use gekko_inference::{InferenceError, TrainConfig, train};

use crate::common::{TempDir, committed_dir};

fn tiny(root: &std::path::Path, threads: usize) -> TrainConfig {
    TrainConfig {
        name: "tiny".to_owned(),
        version: 1,
        out_root: root.to_path_buf(),
        seed: 11,
        quotes: 3_000,
        window: 8,
        horizon: 1,
        hidden: 8,
        epochs: 2,
        batch_size: 64,
        threads,
        ..TrainConfig::default()
    }
}

#[test]
fn same_config_same_weights() {
    let (a, b) = (TempDir::new("train-a"), TempDir::new("train-b"));
    let (meta_a, dir_a) = train(tiny(a.path(), 2)).expect("train a");
    // A different thread count must not change the result either.
    let (meta_b, dir_b) = train(tiny(b.path(), 1)).expect("train b");
    let wa = std::fs::read(dir_a.join("model.safetensors")).expect("read a");
    let wb = std::fs::read(dir_b.join("model.safetensors")).expect("read b");
    assert!(wa == wb, "weights differ between identical runs");
    assert_eq!(meta_a.train.steps, meta_b.train.steps);
    assert_eq!(
        meta_a.train.heldout_hit_rate.to_bits(),
        meta_b.train.heldout_hit_rate.to_bits()
    );
    // No temporary directory is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(a.path().join("tiny"))
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("1")]);
    // A different seed gives different weights.
    let c = TempDir::new("train-c");
    let (_, dir_c) = train(TrainConfig {
        seed: 12,
        ..tiny(c.path(), 2)
    })
    .expect("train c");
    let wc = std::fs::read(dir_c.join("model.safetensors")).expect("read c");
    assert!(wa != wc);
}

#[test]
fn existing_version_needs_overwrite() {
    let a = TempDir::new("train-exists");
    train(tiny(a.path(), 1)).expect("first");
    let Err(InferenceError::Train(msg)) = train(tiny(a.path(), 1)) else {
        panic!("second run without overwrite must fail");
    };
    assert!(msg.contains("already exists"), "{msg}");
    train(TrainConfig {
        overwrite: true,
        ..tiny(a.path(), 1)
    })
    .expect("overwrite");
}

/// The committed model is exactly what `TrainConfig::default()` produces. Slow in
/// a debug build; run with
/// `cargo test --release -p gekko-inference --test it -- --ignored default_config`.
#[test]
#[ignore = "trains the full default model (~5 s release, minutes in debug)"]
fn default_config_reproduces_committed_weights() {
    let out = TempDir::new("train-default");
    let (meta, dir) = train(TrainConfig {
        out_root: out.path().to_path_buf(),
        ..TrainConfig::default()
    })
    .expect("train default");
    let got = std::fs::read(dir.join("model.safetensors")).expect("read new");
    let want = std::fs::read(committed_dir().join("model.safetensors")).expect("read committed");
    assert!(
        got == want,
        "default config no longer reproduces models/direction/1"
    );
    let committed = gekko_inference::ModelMeta::read(&committed_dir()).expect("meta");
    assert_eq!(
        meta.train.heldout_hit_rate.to_bits(),
        committed.train.heldout_hit_rate.to_bits()
    );
}
