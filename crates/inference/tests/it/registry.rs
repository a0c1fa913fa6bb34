//! Version discovery and validated reload.

use candle_core::{DType, Device};
use gekko_inference::{InferenceError, ModelRegistry};

use crate::common::{TempDir, install_copy};

#[test]
fn opens_the_highest_version_and_ignores_other_names() {
    let tmp = TempDir::new("reg-open");
    install_copy(tmp.path(), "direction", 2);
    install_copy(tmp.path(), "direction", 10);
    std::fs::create_dir_all(tmp.path().join("direction/.11.tmp-1")).expect("tmp");
    std::fs::create_dir_all(tmp.path().join("direction/latest")).expect("other");
    let reg = ModelRegistry::open(tmp.path(), "direction", Device::Cpu, DType::F32).expect("open");
    assert_eq!(reg.current().meta().version, 10);
    assert_eq!(reg.reload_if_newer().expect("nothing newer"), None);
}

#[test]
fn empty_or_missing_model_dir_is_a_clear_error() {
    let tmp = TempDir::new("reg-empty");
    let Err(InferenceError::ModelLoad { path, .. }) =
        ModelRegistry::open(tmp.path(), "direction", Device::Cpu, DType::F32)
    else {
        panic!("missing dir must fail");
    };
    assert!(path.ends_with("direction"));
    std::fs::create_dir_all(tmp.path().join("direction")).expect("mkdir");
    let Err(InferenceError::ModelLoad { reason, .. }) =
        ModelRegistry::open(tmp.path(), "direction", Device::Cpu, DType::F32)
    else {
        panic!("empty dir must fail");
    };
    assert!(reason.contains("no version directories"), "{reason}");
}

#[test]
fn corrupt_newer_version_keeps_the_old_one_serving() {
    let tmp = TempDir::new("reg-corrupt");
    install_copy(tmp.path(), "direction", 1);
    let reg = ModelRegistry::open(tmp.path(), "direction", Device::Cpu, DType::F32).expect("open");
    // Version 2 arrives with its weights cut in half (an interrupted copy).
    let dir = install_copy(tmp.path(), "direction", 2);
    let weights = dir.join("model.safetensors");
    let bytes = std::fs::read(&weights).expect("read");
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).expect("truncate");

    let Err(InferenceError::ModelLoad { path, reason }) = reg.reload_if_newer() else {
        panic!("a truncated model must not load");
    };
    assert_eq!(path, weights);
    assert!(reason.contains("not a valid safetensors file"), "{reason}");
    let text = InferenceError::ModelLoad { path, reason }.to_string();
    assert!(text.contains("2/model.safetensors"), "{text}");

    let current = reg.current();
    assert_eq!(current.meta().version, 1);
    let p = current
        .predict(&vec![0.0; current.input_len()], 1)
        .expect("old model serves");
    assert!(p[0].p_up.is_finite());

    // Fixing the file lets the next poll succeed.
    std::fs::write(&weights, &bytes).expect("repair");
    assert_eq!(reg.reload_if_newer().expect("reload"), Some(2));
    assert_eq!(reg.current().meta().version, 2);
}

#[test]
fn stale_meta_in_a_copied_directory_is_rejected() {
    let tmp = TempDir::new("reg-stale");
    install_copy(tmp.path(), "direction", 1);
    let reg = ModelRegistry::open(tmp.path(), "direction", Device::Cpu, DType::F32).expect("open");
    // Someone copies 1/ to 3/ without editing meta.json.
    let src = tmp.path().join("direction/1");
    let dst = tmp.path().join("direction/3");
    std::fs::create_dir_all(&dst).expect("mkdir");
    for f in ["meta.json", "model.safetensors"] {
        std::fs::copy(src.join(f), dst.join(f)).expect("copy");
    }
    let Err(InferenceError::ModelLoad { path, reason }) = reg.reload_if_newer() else {
        panic!("stale meta must be rejected");
    };
    assert!(path.ends_with("3/meta.json"), "{}", path.display());
    assert!(
        reason.contains("version 1 but the directory is direction/3"),
        "{reason}"
    );
    assert_eq!(reg.current().meta().version, 1);
}

#[test]
fn a_broken_newest_version_does_not_block_start_up() {
    let tmp = TempDir::new("reg-startup");
    install_copy(tmp.path(), "direction", 1);
    let dir = install_copy(tmp.path(), "direction", 2);
    std::fs::write(dir.join("model.safetensors"), b"nope").expect("break");
    let reg = ModelRegistry::open(tmp.path(), "direction", Device::Cpu, DType::F32).expect("open");
    assert_eq!(reg.current().meta().version, 1);
}
