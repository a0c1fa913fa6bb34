//! `CONFIG_SERVICE`: the real `gateway-binanceus` binary, started with no credentials of its
//! own, takes them from a real configd (its store and gRPC service, behind the real
//! `AuthLayer`, on real TCP) and trades with them against the real simulator, which accepts
//! only that key. The refusals: a wrong token (64), a credential also in the gateway's own
//! environment (64), a configd that never answers (69 after `wait`), and a configd that
//! holds no credentials for the venue (64). Nothing starts with partial secrets.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use gekko_bus::{Bus, MemoryBus};
use gekko_proto::v1 as pb;
use gekko_proto::v1::gateway_service_client::GatewayServiceClient;
use gekko_runtime::{GrpcServer, Readiness};
use gekko_sim::binanceus::{SimApiKey, SimBinanceUs, SimConfig, SimHandle};
use gekko_testkit::{eventually, free_port};
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "gateway-service-token-0123456789";
const API_KEY: &str = "served-key-7f3a";
const API_SECRET: &str = "served-secret-c41d9e";

fn temp_dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "gw-configd-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// configd's store and gRPC service on a free port, with one admin token.
async fn start_configd(env_text: &str, cancel: &CancellationToken) -> SocketAddr {
    let dir = temp_dir();
    let file = dir.join("configd.env");
    std::fs::write(&file, env_text).expect("write env file");
    let process_vars = BTreeMap::from([(
        "ACCESS_CONTROL_CONFIG".to_owned(),
        format!(
            "tokens=gateways:admin:{}",
            hex::encode(Sha256::digest(TOKEN.as_bytes()))
        ),
    )]);
    let (vars, config) =
        configd::state::read_candidate(&file, None, &process_vars).expect("a valid env file");
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let store = configd::ConfigStore::open(bus, file, None, process_vars, vars, config.clone())
        .await
        .expect("store");
    let auth = gekko_security::AuthLayer::new(
        gekko_security::AuthPolicy::from_config(&config.access_control).expect("policy"),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = GrpcServer::new(Readiness::new())
        .with_auth(auth)
        .add_service(
            configd::grpc::ConfigGrpc::new(store, None, gekko_audit::AuditLog::disabled())
                .into_server(),
        );
    tokio::spawn(server.serve(listener, cancel.clone()));
    addr
}

async fn start_sim() -> SimHandle {
    let cfg = SimConfig {
        api_keys: vec![SimApiKey::hmac(API_KEY, API_SECRET)],
        tick_interval: Duration::from_millis(50),
        ..SimConfig::default()
    };
    SimBinanceUs::start(cfg).await.expect("simulator")
}

struct Gateway {
    child: Child,
    grpc: u16,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn gateway_cmd(dir: &Path, sim: &SimHandle, config_service: &str) -> (Command, u16) {
    let (http, grpc) = (free_port().expect("port"), free_port().expect("port"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gateway-binanceus"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "MONITORING_CONFIGURATIONS",
            format!("http_addr=127.0.0.1:{http},grpc_addr=127.0.0.1:{grpc}"),
        )
        .env(
            "TRADING_API_ENDPOINTS",
            format!("binanceus={},binanceus.stream={}", sim.rest_url, sim.ws_url),
        )
        .env("SUPPORTED_TRADING_PAIRS", "BTC-USD")
        .env("AUDIT_LOGGING_SETTINGS", "enabled=false")
        .env("CONFIG_SERVICE", config_service)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    (cmd, grpc)
}

/// Runs the gateway to its exit and returns the status code and stderr.
fn run_to_exit(mut cmd: Command) -> (i32, String) {
    let out = cmd.output().expect("run gateway");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn token_file(dir: &Path, token: &str) -> PathBuf {
    let p = dir.join("configd.token");
    std::fs::write(&p, format!("{token}\n")).expect("token file");
    p
}

fn creds_env() -> String {
    format!("BINANCEUS_API_KEY={API_KEY}\nBINANCEUS_API_SECRET={API_SECRET}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_served_by_configd_trade_against_the_venue() {
    let cancel = CancellationToken::new();
    let configd = start_configd(&creds_env(), &cancel).await;
    let sim = start_sim().await;
    let dir = temp_dir();
    let tf = token_file(&dir, TOKEN);
    let (mut cmd, grpc) = gateway_cmd(
        &dir,
        &sim,
        &format!("url=http://{configd},token_file={},wait=10s", tf.display()),
    );
    let mut gw = Gateway {
        child: cmd.spawn().expect("spawn gateway"),
        grpc,
    };
    let url = format!("http://127.0.0.1:{}", gw.grpc);
    let ready = eventually(Duration::from_secs(60), || {
        let url = url.clone();
        async move {
            let Ok(mut c) = GatewayServiceClient::connect(url).await else {
                return false;
            };
            c.get_account(pb::GetAccountRequest {
                venue: "binanceus".into(),
            })
            .await
            .is_ok()
        }
    })
    .await;
    if !ready {
        let _ = gw.child.kill();
        let out = gw.child.wait_with_output_stderr();
        panic!("the gateway never answered GetAccount:\n{out}");
    }
    let mut c = GatewayServiceClient::connect(url).await.expect("connect");
    let order = c
        .place_order(pb::PlaceOrderRequest {
            venue: "binanceus".into(),
            instrument: "BTC-USD".into(),
            side: pb::Side::Buy as i32,
            r#type: pb::OrderType::Market as i32,
            qty: "0.001".into(),
            client_order_id: "served-1".into(),
            ..Default::default()
        })
        .await
        .expect("a market order with the served key")
        .into_inner()
        .order
        .expect("an order");
    assert_eq!(order.client_order_id, "served-1");
    // The order reached the test's simulator under the key configd served: the gateway
    // is not in paper mode with an embedded simulator of its own.
    let at_venue: Vec<_> = sim
        .orders()
        .into_iter()
        .filter(|o| o.client_order_id == "served-1")
        .collect();
    assert_eq!(at_venue.len(), 1, "{at_venue:?}");
    assert_eq!(at_venue[0].api_key, API_KEY);
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_a_doubled_credential_and_no_credentials_exit_64() {
    let cancel = CancellationToken::new();
    let configd = start_configd(&creds_env(), &cancel).await;
    let empty = start_configd("SUPPORTED_TRADING_PAIRS=BTC-USD\n", &cancel).await;
    let sim = start_sim().await;
    let dir = temp_dir();

    let wrong = token_file(&dir, "not-the-token-at-all-0000");
    let (cmd, _) = gateway_cmd(
        &dir,
        &sim,
        &format!("url=http://{configd},token_file={}", wrong.display()),
    );
    let (code, err) = tokio::task::spawn_blocking(move || run_to_exit(cmd))
        .await
        .expect("join");
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("refused GetSecrets for binanceus"), "{err}");
    assert!(!err.contains(API_SECRET), "no secret in errors: {err}");

    let dir2 = temp_dir();
    let tf = token_file(&dir2, TOKEN);
    let (mut cmd, _) = gateway_cmd(&dir2, &sim, &format!("url=http://{configd},token={TOKEN}"));
    cmd.env("BINANCEUS_API_KEY", "my-own-key")
        .env("BINANCEUS_API_SECRET", "my-own-secret");
    let (code, err) = tokio::task::spawn_blocking(move || run_to_exit(cmd))
        .await
        .expect("join");
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("BINANCEUS_API_KEY") && err.contains("another value than configd serves"),
        "{err}"
    );
    assert!(!err.contains(API_SECRET), "no secret in errors: {err}");

    let (cmd, _) = gateway_cmd(
        &dir2,
        &sim,
        &format!("url=http://{empty},token_file={}", tf.display()),
    );
    let (code, err) = tokio::task::spawn_blocking(move || run_to_exit(cmd))
        .await
        .expect("join");
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("holds no credentials for binanceus"), "{err}");
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configd_that_never_answers_exits_69_after_wait_and_bad_settings_exit_64() {
    let sim = start_sim().await;
    let dir = temp_dir();
    let tf = token_file(&dir, TOKEN);
    let dead = free_port().expect("port");
    let (cmd, _) = gateway_cmd(
        &dir,
        &sim,
        &format!(
            "url=http://127.0.0.1:{dead},token_file={},wait=2s",
            tf.display()
        ),
    );
    let (code, err) = tokio::task::spawn_blocking(move || run_to_exit(cmd))
        .await
        .expect("join");
    assert_eq!(code, 69, "{err}");
    assert!(err.contains("did not answer GetSecrets"), "{err}");

    let (cmd, _) = gateway_cmd(
        &dir,
        &sim,
        "url=ftp://configd,token=a,token_file=/nonexistent/token,wait=0s",
    );
    let (code, err) = tokio::task::spawn_blocking(move || run_to_exit(cmd))
        .await
        .expect("join");
    assert_eq!(code, 64, "{err}");
    for needle in [
        "is not an http:// or https:// URL",
        "names both token and token_file",
        "/nonexistent/token does not exist",
        "wait:",
    ] {
        assert!(err.contains(needle), "`{needle}` missing in:\n{err}");
    }
}

trait StderrOf {
    fn wait_with_output_stderr(&mut self) -> String;
}

impl StderrOf for Child {
    fn wait_with_output_stderr(&mut self) -> String {
        use std::io::Read as _;
        let _ = self.wait();
        let mut s = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}
