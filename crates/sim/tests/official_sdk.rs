//! The Binance.US simulator checked by Binance's official Python SDK,
//! `binance-connector` (pinned in `scripts/sdk-requirements.txt`, installed into
//! `.venv-sdk` by `scripts/test.sh`).
//!
//! gekko's client and this simulator were written by the same team, so agreeing with
//! each other proves little on its own; the venue's SDK is an independent check of the
//! signatures, parameter encoding, JSON shapes and error codes. A missing venv fails the
//! test with instructions: it never skips.

use std::path::PathBuf;
use std::process::Command;

use gekko_sim::binanceus::{SimBinanceUs, SimConfig};

/// The venv's Python: `$GEKKO_SDK_PYTHON`, else `.venv-sdk/bin/python` at the workspace root.
fn sdk_python() -> PathBuf {
    if let Ok(p) = std::env::var("GEKKO_SDK_PYTHON") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-sdk/bin/python")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_connector_trades_against_the_simulator() {
    let python = sdk_python();
    assert!(
        python.exists(),
        "{} not found: run scripts/test.sh (it creates .venv-sdk with the pinned official \
         SDKs), or set GEKKO_SDK_PYTHON to a Python with binance-connector==3.13.0",
        python.display()
    );
    let sim = SimBinanceUs::start(SimConfig::default())
        .await
        .expect("simulator starts");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/sdk/binance_connector_check.py"
    );
    let rest = sim.rest_url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args([script, &rest, "paper-key", "paper-secret"])
            .output()
            .expect("the SDK check runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "binance-connector check failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    sim.shutdown().await;
}
