//! Hot config, end to end: a real `redis-server`, the real `configd` binary watching an env
//! file in a temp dir, and the real `gateway-binanceus` (paper mode: its in-process
//! simulator over real sockets) and `inference` binaries. Each test rewrites the env file
//! and observes the effect through the service's own interfaces: gRPC `PlaceOrder`,
//! `/metrics`, the signals stream and the service's log.
//!
//! One stack serves every test in this file (CI runs on 2 cores); the tests take turns
//! through a lock, and each writes the whole file (the baseline plus its own changes), so
//! their order does not matter.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use gekko_proto::v1 as pb;
use gekko_proto::v1::gateway_service_client::GatewayServiceClient;
use gekko_testkit::{RedisServer, eventually, free_port};
use rust_decimal::Decimal;
use tokio::sync::{Mutex, MutexGuard, OnceCell};
use tonic::transport::Channel;

const WAIT: Duration = Duration::from_secs(60);

/// The processes, shared by every test; reaped when the test binary exits.
struct Stack {
    redis: RedisServer,
    dir: PathBuf,
    env_file: PathBuf,
    configd_http: u16,
    configd_grpc: u16,
    gateway_http: u16,
    gateway_grpc: u16,
    inference_http: u16,
    gateway_log: PathBuf,
    _children: Vec<Child>,
}

/// The baseline hot values (the services start with the same ones).
fn baseline(models: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("POSITION_LIMITS", "BTC-USD=10".to_owned()),
        (
            "COMPLIANCE_SETTINGS",
            "max_order_notional=100000,max_daily_notional=10000000,daily_reset_hour=0,trading_enabled=true".to_owned(),
        ),
        ("TRADING_RATE_LIMITS", "binanceus=1200/1m".to_owned()),
        ("CONFIDENCE_THRESHOLDS", "direction=0".to_owned()),
        ("MODEL_UPDATE_FREQUENCIES", "direction=1h".to_owned()),
        ("ML_MODEL_ENDPOINTS", format!("direction={}", models.display())),
    ]
}

fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("configd-hot-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Builds the sibling service binaries (a no-op when they are fresh) and returns the
/// directory they are in: the one `configd` was built into.
fn binaries() -> PathBuf {
    let configd = PathBuf::from(env!("CARGO_BIN_EXE_configd"));
    let dir = configd.parent().expect("bin dir").to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args([
            "build",
            "-q",
            "-p",
            "gateway-binanceus",
            "--bin",
            "gateway-binanceus",
            "-p",
            "inference",
            "--bin",
            "inference",
        ])
        .status()
        .expect("run cargo build for the service binaries");
    assert!(
        status.success(),
        "cargo build of gateway-binanceus and inference failed"
    );
    dir
}

fn spawn(mut cmd: Command, log: &Path) -> Child {
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    gekko_testkit::reaped(cmd.env_remove("RUST_LOG"))
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn")
}

fn service_cmd(bin: &Path, redis: &str, http: u16, grpc: u16, hot: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("REDIS_URL", redis)
        .env(
            "MONITORING_CONFIGURATIONS",
            format!(
                "log_level=info,log_format=json,http_addr=127.0.0.1:{http},grpc_addr=127.0.0.1:{grpc}"
            ),
        )
        .env("AUDIT_LOGGING_SETTINGS", "enabled=false")
        .env("RESOURCE_ALLOCATION", "device=cpu");
    for (k, v) in hot {
        cmd.env(k, v);
    }
    cmd
}

async fn get(url: &str) -> Option<(u16, String)> {
    let r = reqwest::get(url).await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().await.ok()?))
}

async fn wait_ready(port: u16, what: &str, log: &Path) {
    let url = format!("http://127.0.0.1:{port}/readyz");
    let ok = eventually(Duration::from_secs(120), || {
        let url = url.clone();
        async move { matches!(get(&url).await, Some((200, _))) }
    })
    .await;
    assert!(
        ok,
        "{what} not ready within 120 s; its log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

impl Stack {
    async fn start() -> Self {
        let bins = binaries();
        let redis = RedisServer::start();
        let dir = temp_dir();
        let models = dir.join("models");
        let v1 = models.join("direction").join("1");
        std::fs::create_dir_all(&v1).expect("model dir");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/direction/1");
        for f in ["meta.json", "model.safetensors"] {
            std::fs::copy(src.join(f), v1.join(f)).expect("copy the model");
        }
        let hot = baseline(&models);
        let (configd_http, configd_grpc) = (free_port().expect("port"), free_port().expect("port"));
        let (gateway_http, gateway_grpc) = (free_port().expect("port"), free_port().expect("port"));
        let (inference_http, inference_grpc) =
            (free_port().expect("port"), free_port().expect("port"));
        let mut stack = Self {
            env_file: dir.join("gekko.env"),
            gateway_log: dir.join("gateway.log"),
            redis,
            dir,
            configd_http,
            configd_grpc,
            gateway_http,
            gateway_grpc,
            inference_http,
            _children: Vec::new(),
        };
        stack.write(&stack.file_text(&[]));

        let mut configd = Command::new(bins.join("configd"));
        configd
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CONFIGD_ENV_FILE", &stack.env_file)
            .env("CONFIGD_DEBOUNCE_MS", "100")
            .env("REDIS_URL", stack.redis.url())
            .env("AUDIT_LOGGING_SETTINGS", "enabled=false")
            .current_dir(&stack.dir);
        let log = stack.dir.join("configd.log");
        stack._children.push(spawn(configd, &log));
        wait_ready(configd_http, "configd", &log).await;

        let gw = service_cmd(
            &bins.join("gateway-binanceus"),
            &stack.redis.url(),
            gateway_http,
            gateway_grpc,
            &hot,
        );
        stack._children.push(spawn(gw, &stack.gateway_log));
        let inf_log = stack.dir.join("inference.log");
        let inf = service_cmd(
            &bins.join("inference"),
            &stack.redis.url(),
            inference_http,
            inference_grpc,
            &hot,
        );
        stack._children.push(spawn(inf, &inf_log));
        wait_ready(gateway_http, "gateway-binanceus", &stack.gateway_log).await;
        wait_ready(inference_http, "inference", &inf_log).await;
        stack
    }

    /// The env file: the baseline with `changes` (a change of a baseline variable replaces
    /// it; others are added), and configd's own listeners at `log_level`.
    fn file_text(&self, changes: &[(&str, &str)]) -> String {
        let mut vars: BTreeMap<String, String> = baseline(&self.dir.join("models"))
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let mut level = "info".to_owned();
        for (k, v) in changes {
            if *k == "log_level" {
                (*v).clone_into(&mut level);
            } else {
                vars.insert((*k).to_owned(), (*v).to_owned());
            }
        }
        vars.insert(
            "MONITORING_CONFIGURATIONS".to_owned(),
            format!(
                "log_level={level},http_addr=127.0.0.1:{},grpc_addr=127.0.0.1:{}",
                self.configd_http, self.configd_grpc
            ),
        );
        vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
    }

    /// Replaces the env file by renaming a sibling over it, as editors do.
    fn write(&self, text: &str) {
        let tmp = self.env_file.with_extension("tmp");
        std::fs::write(&tmp, text).expect("write");
        std::fs::rename(&tmp, &self.env_file).expect("rename");
    }

    async fn metrics(&self, port: u16) -> String {
        get(&format!("http://127.0.0.1:{port}/metrics"))
            .await
            .map(|(_, t)| t)
            .unwrap_or_default()
    }

    /// configd's version in force and how many reloads it has finished.
    async fn configd_state(&self) -> (u64, u64) {
        let text = self.metrics(self.configd_http).await;
        let version = text
            .lines()
            .find_map(|l| l.strip_prefix("gekko_config_version "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        let reloads: f64 = text
            .lines()
            .filter(|l| l.starts_with("gekko_config_reloads_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        (as_u64(version), as_u64(reloads))
    }

    /// Writes the baseline with `changes` and waits until configd has judged it; then,
    /// when a new version resulted, until both services have it in force. Returns
    /// configd's version in force afterwards.
    async fn apply(&self, changes: &[(&str, &str)]) -> u64 {
        let text = self.file_text(changes);
        let (_, reloads) = self.configd_state().await;
        if std::fs::read_to_string(&self.env_file).ok().as_deref() == Some(text.as_str()) {
            return self.configd_state().await.0;
        }
        self.write(&text);
        let judged = eventually(
            WAIT,
            || async move { self.configd_state().await.1 > reloads },
        )
        .await;
        assert!(judged, "configd did not reload {}", self.env_file.display());
        let (version, _) = self.configd_state().await;
        self.wait_version(version).await;
        version
    }

    /// Waits until both services have `version` in force.
    async fn wait_version(&self, version: u64) {
        for (port, service) in [
            (self.gateway_http, "gateway-binanceus"),
            (self.inference_http, "inference"),
        ] {
            let ok = eventually(WAIT, || async move {
                metric(
                    &self.metrics(port).await,
                    "gekko_config_version",
                    &[("service", service)],
                ) == Some(as_f64(version))
            })
            .await;
            assert!(ok, "{service} did not put version {version} in force");
        }
    }

    async fn gateway(&self) -> GatewayServiceClient<Channel> {
        GatewayServiceClient::connect(format!("http://127.0.0.1:{}", self.gateway_grpc))
            .await
            .expect("gateway gRPC")
    }

    /// A buy limit order 5 % under the best bid (it rests), of `qty` BTC.
    async fn place(&self, id: &str, qty: &str) -> Result<pb::OrderReply, tonic::Status> {
        let mut c = self.gateway().await;
        let q = c
            .get_quote(pb::GetQuoteRequest {
                instrument: "BTC-USD".into(),
                venue: "binanceus".into(),
            })
            .await?
            .into_inner();
        let bid: Decimal = q.bid.parse().expect("a decimal bid");
        let price = (bid * Decimal::new(95, 2)).round_dp(2);
        c.place_order(pb::PlaceOrderRequest {
            venue: "binanceus".into(),
            instrument: "BTC-USD".into(),
            side: pb::Side::Buy as i32,
            r#type: pb::OrderType::Limit as i32,
            qty: qty.into(),
            price: price.to_string(),
            time_in_force: pb::TimeInForce::Gtc as i32,
            client_order_id: id.into(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
    }

    /// Places orders (ids `prefix-1`, `prefix-2`, ...) until one is accepted; a service
    /// applies a version a moment after reporting it in force.
    async fn place_until_accepted(&self, prefix: &str, qty: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        for n in 1.. {
            match self.place(&format!("{prefix}-{n}"), qty).await {
                Ok(_) => return,
                Err(e) => assert!(
                    tokio::time::Instant::now() < deadline,
                    "no order of {qty} accepted: {e:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Places orders until one is refused, and returns the refusal.
    async fn place_until_refused(&self, prefix: &str, qty: &str) -> tonic::Status {
        let deadline = tokio::time::Instant::now() + WAIT;
        for n in 1.. {
            match self.place(&format!("{prefix}-{n}"), qty).await {
                Err(e) => return e,
                Ok(r) => assert!(
                    tokio::time::Instant::now() < deadline,
                    "every order of {qty} was accepted: {r:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        unreachable!("the loop returns or fails")
    }

    fn gateway_log_len(&self) -> usize {
        std::fs::read(&self.gateway_log).map_or(0, |b| b.len())
    }

    fn gateway_log_since(&self, offset: usize) -> String {
        let bytes = std::fs::read(&self.gateway_log).unwrap_or_default();
        String::from_utf8_lossy(bytes.get(offset..).unwrap_or_default()).into_owned()
    }

    /// Publishes `payload` on the `gekko:config` channel, as configd would.
    async fn publish(&self, payload: &serde_json::Value) {
        let client = redis::Client::open(self.redis.url()).expect("redis url");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("redis");
        redis::cmd("PUBLISH")
            .arg("gekko:config")
            .arg(payload.to_string())
            .query_async::<()>(&mut conn)
            .await
            .expect("PUBLISH");
    }

    async fn signals_len(&self) -> u64 {
        let client = redis::Client::open(self.redis.url()).expect("redis url");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("redis");
        redis::cmd("XLEN")
            .arg(gekko_bus::names::SIGNALS)
            .query_async::<u64>(&mut conn)
            .await
            .expect("XLEN")
    }
}

#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "metric values here are small non-negative integers"
)]
fn as_u64(v: f64) -> u64 {
    v as u64
}

#[allow(clippy::cast_precision_loss, reason = "small integers")]
fn as_f64(v: u64) -> f64 {
    v as f64
}

/// The value of `name` with (at least) `labels` in Prometheus text.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

static STACK: OnceCell<Stack> = OnceCell::const_new();
static TURN: Mutex<()> = Mutex::const_new(());

/// The shared stack, and this test's turn on it.
async fn stack() -> (&'static Stack, MutexGuard<'static, ()>) {
    let turn = TURN.lock().await;
    let stack = STACK.get_or_init(Stack::start).await;
    (stack, turn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn position_limits_lowered_refuses_an_order_that_passed() {
    let (s, _turn) = stack().await;
    s.apply(&[]).await;
    s.place_until_accepted("pos-ok", "0.002").await;
    s.apply(&[("POSITION_LIMITS", "BTC-USD=1")]).await;
    let refusal = s.place_until_refused("pos-refused", "0.002").await;
    assert!(
        refusal.message().contains("POSITION_LIMITS"),
        "the refusal names the limit: {refusal:?}"
    );
    // Raised again, the same order passes.
    s.apply(&[]).await;
    s.place_until_accepted("pos-again", "0.002").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compliance_settings_lowered_refuses_an_order_that_passed() {
    let (s, _turn) = stack().await;
    s.apply(&[]).await;
    s.place_until_accepted("cmp-ok", "0.002").await;
    s.apply(&[(
        "COMPLIANCE_SETTINGS",
        "max_order_notional=1,max_daily_notional=10000000,daily_reset_hour=0,trading_enabled=true",
    )])
    .await;
    let refusal = s.place_until_refused("cmp-refused", "0.002").await;
    assert!(
        refusal.message().contains("max_order_notional"),
        "the refusal names the limit: {refusal:?}"
    );
    s.apply(&[(
        "COMPLIANCE_SETTINGS",
        "max_order_notional=100000,max_daily_notional=10000000,daily_reset_hour=0,trading_enabled=false",
    )])
    .await;
    let refusal = s.place_until_refused("cmp-off", "0.002").await;
    assert!(
        refusal.message().contains("trading is disabled"),
        "trading_enabled=false applies live: {refusal:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trading_rate_limits_change_the_limiter_budget() {
    let (s, _turn) = stack().await;
    s.apply(&[]).await;
    let budget = || async move {
        metric(
            &s.metrics(s.gateway_http).await,
            "gekko_venue_request_weight_budget",
            &[("venue", "binanceus"), ("limiter", "weight")],
        )
    };
    assert_eq!(budget().await, Some(1080.0), "1200/1m × 0.9 at start");
    s.apply(&[("TRADING_RATE_LIMITS", "binanceus=600/1m")])
        .await;
    assert!(
        eventually(WAIT, || async move { budget().await == Some(540.0) }).await,
        "the budget follows the new limit: {:?}",
        budget().await
    );
    // 10 per second is 600 per minute too; a per-minute figure the venue's window uses.
    s.apply(&[("TRADING_RATE_LIMITS", "binanceus=20/1s")]).await;
    assert!(
        eventually(WAIT, || async move { budget().await == Some(1080.0) }).await,
        "20/1s is 1200 weight per minute: {:?}",
        budget().await
    );
    s.place_until_accepted("rate-ok", "0.002").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_level_debug_shows_debug_lines() {
    let (s, _turn) = stack().await;
    let version = s.apply(&[]).await;
    let stale = serde_json::json!({"version": 1, "changes": [], "values": {}});
    // At info, a stale announcement is ignored silently.
    let from = s.gateway_log_len();
    s.publish(&stale).await;
    let sync = s
        .apply(&[("TRADING_RATE_LIMITS", "binanceus=1100/1m")])
        .await;
    assert!(sync > version);
    let text = s.gateway_log_since(from);
    assert!(
        !text.contains("\"level\":\"DEBUG\""),
        "no debug line at info:\n{text}"
    );
    // At debug, the same announcement is logged as ignored.
    s.apply(&[("log_level", "debug")]).await;
    let from = s.gateway_log_len();
    s.publish(&stale).await;
    assert!(
        eventually(WAIT, || async move {
            let text = s.gateway_log_since(from);
            text.contains("\"level\":\"DEBUG\"")
                && text.contains("not newer than the version in force")
        })
        .await,
        "debug lines on the gateway's log after log_level=debug:\n{}",
        s.gateway_log_since(from)
    );
    let applied = s.gateway_log_since(0);
    assert!(
        applied.contains("config change applied: log level"),
        "the change is logged with its version"
    );
    s.apply(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_or_repeated_announcement_is_ignored() {
    let (s, _turn) = stack().await;
    let version = s.apply(&[]).await;
    let tight = |v: u64| {
        serde_json::json!({"version": v, "cause": "reload", "changes": [],
            "values": {"POSITION_LIMITS": "BTC-USD=0.00001"}})
    };
    s.publish(&tight(version)).await;
    s.publish(&tight(version.saturating_sub(1).max(1))).await;
    // Announcements are handled in order: once a real newer version is in force, the
    // stale ones have been seen.
    let sync = s
        .apply(&[("TRADING_RATE_LIMITS", "binanceus=1150/1m")])
        .await;
    assert!(sync > version);
    s.place_until_accepted("stale", "0.002").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confidence_threshold_raised_stops_signals() {
    let (s, _turn) = stack().await;
    s.apply(&[]).await;
    let n0 = s.signals_len().await;
    assert!(
        eventually(Duration::from_secs(120), || async move {
            s.signals_len().await > n0 + 3
        })
        .await,
        "signals flow at threshold 0"
    );
    s.apply(&[("CONFIDENCE_THRESHOLDS", "direction=1")]).await;
    let suppressed = || async move {
        metric(
            &s.metrics(s.inference_http).await,
            "gekko_inference_signals_suppressed_total",
            &[],
        )
        .unwrap_or(0.0)
    };
    let threshold = || async move {
        metric(
            &s.metrics(s.inference_http).await,
            "gekko_inference_confidence_threshold",
            &[("model", "direction")],
        )
    };
    assert!(
        eventually(WAIT, || async move { threshold().await == Some(1.0) }).await,
        "the threshold in force is 1"
    );
    // One suppression after the change: every later prediction sees the new threshold.
    let s0 = suppressed().await;
    assert!(eventually(WAIT, || async move { suppressed().await > s0 }).await);
    let n1 = s.signals_len().await;
    let s1 = suppressed().await;
    assert!(
        eventually(WAIT, || async move { suppressed().await >= s1 + 5.0 }).await,
        "predictions go on, suppressed"
    );
    assert_eq!(
        s.signals_len().await,
        n1,
        "no signal below the new threshold"
    );
    s.apply(&[]).await;
    let n2 = s.signals_len().await;
    assert!(
        eventually(WAIT, || async move { s.signals_len().await > n2 }).await,
        "signals flow again at threshold 0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_update_frequency_shortened_loads_a_new_version() {
    let (s, _turn) = stack().await;
    s.apply(&[]).await;
    let version = || async move {
        metric(
            &s.metrics(s.inference_http).await,
            "gekko_inference_model_version",
            &[("model", "direction")],
        )
    };
    // A version 2 appears; polled hourly, it is not loaded.
    let v1 = s.dir.join("models/direction/1");
    let v2 = s.dir.join("models/direction/2");
    std::fs::create_dir_all(&v2).expect("v2 dir");
    std::fs::copy(v1.join("model.safetensors"), v2.join("model.safetensors")).expect("weights");
    let meta = std::fs::read_to_string(v1.join("meta.json")).expect("meta");
    let meta = meta.replacen("\"version\": 1", "\"version\": 2", 1);
    assert!(
        meta.contains("\"version\": 2"),
        "meta.json names its version"
    );
    std::fs::write(v2.join("meta.json"), meta).expect("meta v2");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(version().await, Some(1.0), "not polled yet");
    s.apply(&[("MODEL_UPDATE_FREQUENCIES", "direction=1s")])
        .await;
    assert!(
        eventually(WAIT, || async move { version().await == Some(2.0) }).await,
        "polled every second, version 2 is loaded: {:?}",
        version().await
    );
    s.apply(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_candidate_changes_nothing_in_the_services() {
    let (s, _turn) = stack().await;
    let version = s.apply(&[]).await;
    let (_, reloads) = s.configd_state().await;
    // A valid rate limit next to an invalid position limit: the whole candidate is refused.
    let text = s.file_text(&[
        ("TRADING_RATE_LIMITS", "binanceus=600/1m"),
        ("POSITION_LIMITS", "BTC-USD=-1"),
    ]);
    s.write(&text);
    assert!(eventually(WAIT, || async move { s.configd_state().await.1 > reloads }).await);
    assert_eq!(
        s.configd_state().await.0,
        version,
        "configd keeps its version"
    );
    let gw = s.metrics(s.gateway_http).await;
    assert_eq!(
        metric(
            &gw,
            "gekko_config_version",
            &[("service", "gateway-binanceus")]
        ),
        Some(as_f64(version))
    );
    assert_eq!(
        metric(
            &gw,
            "gekko_venue_request_weight_budget",
            &[("venue", "binanceus"), ("limiter", "weight")]
        ),
        Some(1080.0),
        "the valid part of a refused candidate is not applied"
    );
    s.place_until_accepted("invalid", "0.002").await;
    s.apply(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_needed_change_is_reported_not_applied() {
    let (s, _turn) = stack().await;
    s.apply(&[]).await;
    let from = s.gateway_log_len();
    // Pointing the venue elsewhere needs a restart; the running gateway keeps its
    // simulator.
    s.apply(&[("TRADING_API_ENDPOINTS", "binanceus=http://127.0.0.1:9")])
        .await;
    let reported = || async move {
        metric(
            &s.metrics(s.gateway_http).await,
            "gekko_config_restart_needed",
            &[
                ("service", "gateway-binanceus"),
                ("variable", "TRADING_API_ENDPOINTS"),
            ],
        )
    };
    assert!(
        eventually(WAIT, || async move { reported().await == Some(1.0) }).await,
        "gekko_config_restart_needed names the variable"
    );
    let text = s.gateway_log_since(from);
    assert!(
        text.lines().any(|l| l.contains("\"level\":\"WARN\"")
            && l.contains("TRADING_API_ENDPOINTS")
            && l.contains("needs a restart")),
        "a warn line names the variable:\n{text}"
    );
    s.place_until_accepted("restart", "0.002").await;
    s.apply(&[]).await;
}
