//! The simulators checked by the venues' official Python SDKs: Binance's
//! `binance-connector`, Coinbase's `coinbase-advanced-py` and OANDA's `v20` (pinned in
//! `scripts/sdk-requirements.txt`, installed into `.venv-sdk` by `scripts/test.sh`).
//!
//! gekko's client and this simulator were written by the same team, so agreeing with
//! each other proves little on its own; the venue's SDK is an independent check of the
//! signatures, parameter encoding, JSON shapes and error codes. A missing venv fails the
//! test with instructions: it never skips.
//!
//! The Coinbase and OANDA checks run against the simulator *binaries* (`sim-coinbase`
//! with a generated key and certificate, `sim-oanda`), spawned as child processes under
//! [`gekko_testkit::reaped`], exactly as an operator would run them; their counters are
//! read back over the admin API. The binaries live in other packages, so the test builds
//! them with `cargo build` (a no-op when fresh) into the target directory it runs from.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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

/// Builds `bin` of package `bin` (a no-op when it is fresh) and returns its path in the
/// target directory this test runs from.
fn service_binary(bin: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/official_sdk-<hash> → target/<profile>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory")
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut build = Command::new(cargo);
    build.args(["build", "-q", "-p", bin, "--bin", bin]);
    if dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "cargo build -p {bin} failed");
    let path = dir.join(bin);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// A spawned simulator process; stopped (SIGTERM through the reaper) when dropped.
struct SimProcess {
    child: Child,
    log: PathBuf,
}

impl SimProcess {
    fn spawn(program: &Path, args: &[String], log: PathBuf) -> Self {
        let mut cmd = Command::new(program);
        cmd.args(args).env_remove("RUST_LOG");
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = gekko_testkit::reaped(&cmd)
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn the simulator");
        Self { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `ready()` holds, failing with the process's log if it exits first or
    /// 20 s pass.
    fn wait_until(&mut self, what: &str, ready: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !ready() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the simulator exited ({status}) before {what}:\n{}",
                    self.log()
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the simulator never reached {what}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        // Closing the reaper's stdin stops the simulator; then collect the wrapper.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn port() -> u16 {
    gekko_testkit::free_port().expect("a free port")
}

/// `GET {base}/sim/admin/stats` as JSON, trusting `cert_pem` when given.
async fn admin_stats(base: &str, cert_pem: Option<&str>) -> serde_json::Value {
    let mut client = reqwest::Client::builder();
    if let Some(pem) = cert_pem {
        client = client
            .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).expect("cert"));
    }
    client
        .build()
        .expect("client")
        .get(format!("{base}/sim/admin/stats"))
        .send()
        .await
        .expect("admin stats")
        .json()
        .await
        .expect("stats JSON")
}

fn stat(stats: &serde_json::Value, name: &str) -> u64 {
    stats[name]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} in {stats}"))
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
    let bin = tokio::task::spawn_blocking(|| service_binary("sim-coinbase"))
        .await
        .unwrap();
    // A fresh EC P-256 key: the simulator only ever learns its public half, from a file.
    let key = rcgen::KeyPair::generate().expect("EC P-256 key");
    let name = "organizations/sdk-check/apiKeys/sdk-check-key";
    let scratch = Scratch::new("gekko-coinbase-sdk");
    let key_file = scratch.write("key.pem", &key.serialize_pem());
    let public_file = scratch.write("key.pub.pem", &key.public_key_pem());
    let cert_file = scratch.0.join("sim.crt").to_string_lossy().into_owned();
    let (rest, ws, ws_user) = (port(), port(), port());
    let args: Vec<String> = [
        "--rest-addr",
        &format!("127.0.0.1:{rest}"),
        "--ws-addr",
        &format!("127.0.0.1:{ws}"),
        "--ws-user-addr",
        &format!("127.0.0.1:{ws_user}"),
        "--key-name",
        name,
        "--public-key",
        &public_file,
        "--cert-out",
        &cert_file,
        "--seed",
        "7",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let mut sim = SimProcess::spawn(&bin, &args, scratch.0.join("sim.log"));
    let cert = cert_file.clone();
    sim.wait_until("serving with its certificate written", || {
        Path::new(&cert).is_file() && listening(rest) && listening(ws) && listening(ws_user)
    });
    let cert_pem = std::fs::read_to_string(&cert_file).expect("the written certificate");
    assert!(cert_pem.contains("BEGIN CERTIFICATE"), "{cert_pem}");

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/sdk/coinbase_advanced_check.py"
    );
    let rest_host = format!("127.0.0.1:{rest}");
    let ws_url = format!("wss://127.0.0.1:{ws}");
    let ws_user_url = format!("wss://127.0.0.1:{ws_user}");
    let cert_arg = cert_file.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args([
                script,
                &rest_host,
                &ws_url,
                &ws_user_url,
                name,
                &key_file,
                &cert_arg,
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
        "coinbase-advanced-py check failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}\nsimulator log:\n{}",
        out.status,
        sim.log()
    );
    println!("{stdout}");
    assert!(stdout.contains("all checks passed"), "{stdout}");
    let stats = admin_stats(&format!("https://127.0.0.1:{rest}"), Some(&cert_pem)).await;
    assert!(
        stat(&stats, "orders_accepted") >= 2 && stat(&stats, "ws_connections") >= 1,
        "{stats}"
    );
    drop(sim);
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
    let bin = tokio::task::spawn_blocking(|| service_binary("sim-oanda"))
        .await
        .unwrap();
    let scratch = Scratch::new("gekko-oanda-sdk");
    let (rest, stream) = (port(), port());
    let token = "sdk-check-token-0123456789abcdef";
    let account = "101-001-7654321-001";
    // Heartbeats every second so the stream check sees one without waiting 5 s.
    let args: Vec<String> = [
        "--rest-addr",
        &format!("127.0.0.1:{rest}"),
        "--stream-addr",
        &format!("127.0.0.1:{stream}"),
        "--token",
        token,
        "--account-id",
        account,
        "--seed",
        "7",
        "--heartbeat-ms",
        "1000",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let mut sim = SimProcess::spawn(&bin, &args, scratch.0.join("sim.log"));
    sim.wait_until("serving", || listening(rest) && listening(stream));

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/oanda_v20_check.py");
    let py_args = [
        script.to_owned(),
        rest.to_string(),
        stream.to_string(),
        token.to_owned(),
        account.to_owned(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args(&py_args)
            .output()
            .expect("the SDK check runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "v20 check failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}\nsimulator log:\n{}",
        out.status,
        sim.log()
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    let base = format!("http://127.0.0.1:{rest}");
    let stats = admin_stats(&base, None).await;
    assert!(
        stat(&stats, "orders_accepted") >= 3
            && stat(&stats, "ws_connections") >= 1
            && stat(&stats, "auth_failures") >= 1,
        "{stats}"
    );
    // The check closes what it opened: the venue's own record shows no EUR_USD units.
    let pos: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/v3/accounts/{account}/positions/EUR_USD"))
        .bearer_auth(token)
        .send()
        .await
        .expect("position")
        .json()
        .await
        .expect("position JSON");
    for side in ["long", "short"] {
        let units = pos["position"][side]["units"].as_str().unwrap_or_default();
        assert!(
            units
                .parse::<rust_decimal::Decimal>()
                .is_ok_and(|u| u.is_zero()),
            "{side} units {units:?}: {pos}"
        );
    }
    drop(sim);
}
