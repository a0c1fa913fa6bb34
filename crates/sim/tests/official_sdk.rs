//! The simulators checked by the venues' official Python SDKs: Binance's
//! `binance-connector`, Coinbase's `coinbase-advanced-py` and OANDA's `v20` (pinned in
//! `scripts/sdk-requirements.txt`, installed into `.venv-sdk` by `scripts/test.sh`).
//!
//! gekko's client and this simulator were written by the same team, so agreeing with
//! each other proves little on its own; the venue's SDK is an independent check of the
//! signatures, parameter encoding, JSON shapes and error codes. A missing venv fails the
//! test with instructions: it never skips.

use std::path::PathBuf;
use std::process::Command;

use gekko_sim::binanceus::{SimBinanceUs, SimConfig};
use gekko_sim::coinbase::{SimApiKey, SimCoinbase, SimConfig as CbConfig};
use gekko_sim::oanda::{SimConfig as OandaConfig, SimOanda};

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

/// A scratch directory for one test's files, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    fn write(&self, file: &str, contents: &str) -> String {
        let p = self.0.join(file);
        std::fs::write(&p, contents).expect("scratch file");
        p.to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coinbase_advanced_py_trades_against_the_simulator() {
    let python = sdk_python();
    assert!(
        python.exists(),
        "{} not found: run scripts/test.sh (it creates .venv-sdk with the pinned official \
         SDKs), or set GEKKO_SDK_PYTHON to a Python with coinbase-advanced-py==1.8.4",
        python.display()
    );
    // A fresh EC P-256 key: the simulator only ever learns its public half.
    let key = rcgen::KeyPair::generate().expect("EC P-256 key");
    let name = "organizations/sdk-check/apiKeys/sdk-check-key";
    let sim = SimCoinbase::start(CbConfig {
        api_keys: vec![SimApiKey {
            name: name.into(),
            public_key_pem: key.public_key_pem(),
        }],
        ..CbConfig::default()
    })
    .await
    .expect("simulator starts");
    let scratch = Scratch::new("gekko-coinbase-sdk");
    let key_file = scratch.write("key.pem", &key.serialize_pem());
    let cert_file = scratch.write("sim.crt", sim.cert_pem.as_deref().expect("TLS cert"));
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/sdk/coinbase_advanced_check.py"
    );
    let rest_host = sim.rest_url.trim_start_matches("https://").to_owned();
    let ws_url = sim.ws_url.clone();
    let ws_user_url = sim.ws_user_url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args([
                script,
                &rest_host,
                &ws_url,
                &ws_user_url,
                name,
                &key_file,
                &cert_file,
            ])
            .env_remove("REQUESTS_CA_BUNDLE")
            .env_remove("SSL_CERT_FILE")
            .output()
            .expect("the SDK check runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "coinbase-advanced-py check failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    println!("{stdout}");
    assert!(stdout.contains("all checks passed"), "{stdout}");
    let stats = sim.stats();
    assert!(
        stats.orders_accepted >= 2 && stats.ws_connections >= 1,
        "{stats:?}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v20_trades_against_the_simulator() {
    let python = sdk_python();
    assert!(
        python.exists(),
        "{} not found: run scripts/test.sh (it creates .venv-sdk with the pinned official \
         SDKs), or set GEKKO_SDK_PYTHON to a Python with v20==3.0.25.0 and pyyaml",
        python.display()
    );
    // Heartbeats every second so the stream check sees one without waiting 5 s.
    let sim = SimOanda::start(OandaConfig {
        heartbeat_interval: std::time::Duration::from_secs(1),
        ..OandaConfig::default()
    })
    .await
    .expect("simulator starts");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/oanda_v20_check.py");
    let args = [
        script.to_owned(),
        sim.rest_addr.port().to_string(),
        sim.stream_addr.port().to_string(),
        sim.token.clone(),
        sim.account_id.clone(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args(&args)
            .output()
            .expect("the SDK check runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "v20 check failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    let stats = sim.stats();
    assert!(
        stats.orders_accepted >= 3 && stats.ws_connections >= 1 && stats.auth_failures >= 1,
        "{stats:?}"
    );
    assert_eq!(sim.position_units("EUR_USD"), (0.into(), 0.into()));
    sim.shutdown().await;
}
