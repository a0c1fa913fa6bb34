//! The committed `models/direction/1`: strict loading, input validation and a
//! fixed, committed expected output (CPU inference is deterministic).

use candle_core::{DType, Device};
use gekko_inference::features::FeatureBuilder;
use gekko_inference::train::synthetic_quotes;
use gekko_inference::{Direction, InferenceError, LoadedModel, ModelMeta};

use crate::common::{TempDir, committed_dir, install_copy};

/// Four fixed rows: a real window from a synthetic market, all zeros, and a calm
/// market with the book leaning to the bid, then to the ask.
pub(crate) fn fixed_rows() -> Vec<f32> {
    let mut builder = FeatureBuilder::new(32);
    let market = synthetic_quotes(99, 40)
        .iter()
        .find_map(|q| builder.push(q))
        .expect("a full window within 40 quotes");
    let leaning = |imbalance: f32| -> Vec<f32> {
        (0..32)
            .flat_map(|_| [0.0, 3.0, imbalance, 1.0e-4])
            .collect()
    };
    let mut rows = market;
    rows.extend(vec![0.0; 128]);
    rows.extend(leaning(0.6));
    rows.extend(leaning(-0.6));
    rows
}

/// `p_up` for [`fixed_rows`], recorded from the committed weights on x86-64.
/// Regenerating the model (same command, same weights) must not change these.
const EXPECTED_P_UP: [f32; 4] = [0.548_809_47, 0.463_829_87, 0.582_041_8, 0.417_588_68];

#[test]
fn committed_weights_give_the_committed_predictions() {
    let model = LoadedModel::load(&committed_dir(), &Device::Cpu, DType::F32).expect("load");
    let rows = fixed_rows();
    let preds = model.predict(&rows, 4).expect("predict");
    for (i, (p, want)) in preds.iter().zip(EXPECTED_P_UP).enumerate() {
        assert!(
            (p.p_up - want).abs() < 1e-5,
            "row {i}: p_up {} != committed {want}",
            p.p_up
        );
        assert!((p.confidence - p.p_up.max(1.0 - p.p_up)).abs() < 1e-7);
    }
    // The model learned the synthetic market's lead-lag: a bid-heavy book means up.
    assert_eq!(preds[2].direction, Direction::Up);
    assert_eq!(preds[3].direction, Direction::Down);
    // Same rows again, one at a time: batching does not change a row's answer.
    for (i, want) in preds.iter().enumerate() {
        let one = model
            .predict(&rows[i * 128..(i + 1) * 128], 1)
            .expect("one row");
        assert!((one[0].p_up - want.p_up).abs() < 1e-6);
    }
}

#[test]
fn committed_meta_records_a_useful_model() {
    let meta = ModelMeta::read(&committed_dir()).expect("meta");
    assert_eq!(
        (meta.name.as_str(), meta.version, meta.window, meta.horizon),
        ("direction", 1, 32, 1)
    );
    assert!(meta.train.heldout_hit_rate > 0.55, "{:?}", meta.train);
    assert!(meta.train.heldout_samples > 10_000);
    assert!(meta.train.command.contains("--example train"));
    let size = std::fs::metadata(committed_dir().join("model.safetensors"))
        .expect("stat")
        .len();
    assert!(size <= 200 * 1024, "model.safetensors is {size} bytes");
}

#[test]
fn bf16_matches_f32_closely() {
    let rows = fixed_rows();
    let f32_model = LoadedModel::load(&committed_dir(), &Device::Cpu, DType::F32).expect("f32");
    let want = f32_model.predict(&rows, 4).expect("f32 predict");
    match LoadedModel::load(&committed_dir(), &Device::Cpu, DType::BF16) {
        Ok(bf16) => {
            assert_eq!(bf16.dtype(), DType::BF16);
            let got = bf16.predict(&rows, 4).expect("bf16 predict");
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g.p_up - w.p_up).abs() < 0.03,
                    "bf16 {} vs f32 {}",
                    g.p_up,
                    w.p_up
                );
            }
        }
        // Acceptable on a backend without bf16 matmul, but then it must say so.
        Err(InferenceError::Unsupported { dtype, .. }) => assert_eq!(dtype, "bf16"),
        Err(e) => panic!("unexpected bf16 error: {e}"),
    }
}

#[test]
fn bad_input_is_invalid_input() {
    let model = LoadedModel::load(&committed_dir(), &Device::Cpu, DType::F32).expect("load");
    let mut rows = fixed_rows();
    rows[128 + 5] = f32::NAN;
    let Err(InferenceError::InvalidInput(msg)) = model.predict(&rows, 4) else {
        panic!("NaN must be rejected");
    };
    assert!(msg.contains("row 1 feature 5"), "{msg}");
    rows[128 + 5] = f32::NEG_INFINITY;
    assert!(matches!(
        model.predict(&rows, 4),
        Err(InferenceError::InvalidInput(_))
    ));
    let rows = vec![0.0; 127];
    assert!(matches!(
        model.predict(&rows, 1),
        Err(InferenceError::InvalidInput(_))
    ));
    assert!(matches!(
        model.predict(&[0.0; 256], 1),
        Err(InferenceError::InvalidInput(_))
    ));
    assert_eq!(model.predict(&[], 0).expect("empty").len(), 0);
}

#[test]
fn meta_that_disagrees_with_the_weights_is_reported_precisely() {
    let tmp = TempDir::new("mismatch");
    let dir = install_copy(tmp.path(), "direction", 1);
    let mut meta = ModelMeta::read(&dir).expect("meta");
    meta.window = 16;
    meta.write(&dir).expect("write");
    let Err(InferenceError::ModelLoad { path, reason }) =
        LoadedModel::load(&dir, &Device::Cpu, DType::F32)
    else {
        panic!("a window mismatch must fail to load");
    };
    assert!(path.ends_with("1/model.safetensors"), "{}", path.display());
    assert!(
        reason.contains("tensor l1.weight has shape [64, 128], expected [64, 64]"),
        "{reason}"
    );
    assert!(
        reason.contains("tensor input.mean has shape [128], expected [64]"),
        "{reason}"
    );
}

#[test]
fn missing_and_garbage_files_name_the_file() {
    let tmp = TempDir::new("garbage");
    let dir = install_copy(tmp.path(), "direction", 1);
    std::fs::write(dir.join("meta.json"), "{ not json").expect("write");
    let Err(InferenceError::ModelLoad { path, .. }) =
        LoadedModel::load(&dir, &Device::Cpu, DType::F32)
    else {
        panic!("garbage meta.json must fail");
    };
    assert!(path.ends_with("meta.json"));
    let dir = install_copy(tmp.path(), "direction", 2);
    std::fs::remove_file(dir.join("model.safetensors")).expect("rm");
    let Err(InferenceError::ModelLoad { path, reason }) =
        LoadedModel::load(&dir, &Device::Cpu, DType::F32)
    else {
        panic!("missing weights must fail");
    };
    assert!(path.ends_with("2/model.safetensors"), "{}", path.display());
    assert!(reason.contains("cannot read"), "{reason}");
}
