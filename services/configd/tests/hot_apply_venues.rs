//! Hot config on the Coinbase and OANDA gateways, end to end (hot_apply.rs covers every
//! hot field on Binance.US): a real `redis-server`, the real `configd` binary watching an
//! env file, and the real `gateway-coinbase` and `gateway-oanda` binaries (paper mode:
//! their in-process simulators over real sockets). Each test rewrites the env file and
//! observes the effect through the gateways' own interfaces: `/metrics` for
//! `TRADING_RATE_LIMITS` (the limiter budget) and gRPC `PlaceOrder` for `POSITION_LIMITS`.
//!
//! One stack serves both tests (CI runs on 2 cores); they take turns through a lock, and
//! each writes the whole file (the baseline plus its own changes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use gekko_proto::v1 as pb;
use gekko_proto::v1::gateway_service_client::GatewayServiceClient;
use gekko_testkit::{RedisServer, eventually, free_port};
use rust_decimal::Decimal;
use tokio::sync::{Mutex, MutexGuard, OnceCell};

const WAIT: Duration = Duration::from_secs(60);

/// One gateway under test: its venue, the pair it trades here and an order size.
struct Venue {
    venue: &'static str,
    service: &'static str,
    instrument: &'static str,
    qty: &'static str,
    /// Decimal places of a limit price.
    price_dp: u32,
    http: u16,
    grpc: u16,
    log: PathBuf,
}

/// The processes, shared by both tests; reaped when the test binary exits.
struct Stack {
    _redis: RedisServer,
    env_file: PathBuf,
    configd_http: u16,
    configd_grpc: u16,
    coinbase: Venue,
    oanda: Venue,
    _children: Vec<Child>,
}

/// The baseline hot values (the gateways start with the same ones).
fn baseline() -> Vec<(&'static str, String)> {
    vec![
        (
            "POSITION_LIMITS",
            "BTC-USD=10,oanda:EUR-USD=1000000".to_owned(),
        ),
        (
            "TRADING_RATE_LIMITS",
            "coinbase=30/1s,oanda=100/1s".to_owned(),
        ),
    ]
}

fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("configd-hot-venues-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Builds the two gateway binaries (a no-op when they are fresh) and returns the
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
            "gateway-coinbase",
            "--bin",
            "gateway-coinbase",
            "-p",
            "gateway-oanda",
            "--bin",
            "gateway-oanda",
        ])
        .status()
        .expect("run cargo build for the gateway binaries");
    assert!(
        status.success(),
        "cargo build of gateway-coinbase and gateway-oanda failed"
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

async fn metrics(port: u16) -> String {
    get(&format!("http://127.0.0.1:{port}/metrics"))
        .await
        .map(|(_, t)| t)
        .unwrap_or_default()
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

impl Venue {
    fn new(venue: &'static str, instrument: &'static str, qty: &'static str, dir: &Path) -> Self {
        Self {
            venue,
            service: if venue == "coinbase" {
                "gateway-coinbase"
            } else {
                "gateway-oanda"
            },
            instrument,
            qty,
            price_dp: if venue == "coinbase" { 2 } else { 4 },
            http: free_port().expect("port"),
            grpc: free_port().expect("port"),
            log: dir.join(format!("{venue}.log")),
        }
    }

    fn command(&self, bins: &Path, redis: &str) -> Command {
        let mut cmd = Command::new(bins.join(self.service));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("REDIS_URL", redis)
            .env(
                "MONITORING_CONFIGURATIONS",
                format!(
                    "log_level=info,log_format=json,http_addr=127.0.0.1:{},grpc_addr=127.0.0.1:{}",
                    self.http, self.grpc
                ),
            )
            .env("AUDIT_LOGGING_SETTINGS", "enabled=false");
        for (k, v) in baseline() {
            cmd.env(k, v);
        }
        cmd
    }

    /// The request budget of the limiter `TRADING_RATE_LIMITS` sets on this venue.
    async fn budget(&self) -> Option<f64> {
        let limiter = if self.venue == "coinbase" {
            "private"
        } else {
            "rest"
        };
        metric(
            &metrics(self.http).await,
            "gekko_venue_request_weight_budget",
            &[("venue", self.venue), ("limiter", limiter)],
        )
    }

    /// A buy limit order 5 % under the best bid (it rests).
    async fn place(&self, id: &str) -> Result<pb::OrderReply, tonic::Status> {
        let mut c = GatewayServiceClient::connect(format!("http://127.0.0.1:{}", self.grpc))
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let q = c
            .get_quote(pb::GetQuoteRequest {
                instrument: self.instrument.into(),
                venue: self.venue.into(),
            })
            .await?
            .into_inner();
        let bid: Decimal = q.bid.parse().expect("a decimal bid");
        let price = (bid * Decimal::new(95, 2)).round_dp(self.price_dp);
        c.place_order(pb::PlaceOrderRequest {
            venue: self.venue.into(),
            instrument: self.instrument.into(),
            side: pb::Side::Buy as i32,
            r#type: pb::OrderType::Limit as i32,
            qty: self.qty.into(),
            price: price.to_string(),
            time_in_force: pb::TimeInForce::Gtc as i32,
            client_order_id: id.into(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
    }

    /// Places orders (ids `prefix-1`, ...) until one is accepted; a gateway applies a
    /// version a moment after reporting it in force.
    async fn place_until_accepted(&self, prefix: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        for n in 1.. {
            match self.place(&format!("{}-{prefix}-{n}", self.venue)).await {
                Ok(_) => return,
                Err(e) => assert!(
                    tokio::time::Instant::now() < deadline,
                    "{}: no order of {} accepted: {e:?}",
                    self.venue,
                    self.qty
                ),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Places orders until one is refused, and returns the refusal.
    async fn place_until_refused(&self, prefix: &str) -> tonic::Status {
        let deadline = tokio::time::Instant::now() + WAIT;
        for n in 1.. {
            match self.place(&format!("{}-{prefix}-{n}", self.venue)).await {
                Err(e) => return e,
                Ok(r) => assert!(
                    tokio::time::Instant::now() < deadline,
                    "{}: every order of {} was accepted: {r:?}",
                    self.venue,
                    self.qty
                ),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        unreachable!("the loop returns or fails")
    }
}

impl Stack {
    async fn start() -> Self {
        let bins = binaries();
        let redis = RedisServer::start();
        let dir = temp_dir();
        let stack = Self {
            env_file: dir.join("gekko.env"),
            configd_http: free_port().expect("port"),
            configd_grpc: free_port().expect("port"),
            coinbase: Venue::new("coinbase", "BTC-USD", "0.002", &dir),
            oanda: Venue::new("oanda", "EUR-USD", "1000", &dir),
            _redis: redis,
            _children: Vec::new(),
        };
        let mut stack = stack;
        stack.write(&stack.file_text(&[]));
        let mut configd = Command::new(bins.join("configd"));
        configd
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CONFIGD_ENV_FILE", &stack.env_file)
            .env("CONFIGD_DEBOUNCE_MS", "100")
            .env("REDIS_URL", stack._redis.url())
            .env("AUDIT_LOGGING_SETTINGS", "enabled=false")
            .current_dir(&dir);
        let log = dir.join("configd.log");
        stack._children.push(spawn(configd, &log));
        wait_ready(stack.configd_http, "configd", &log).await;
        let url = stack._redis.url();
        let children: Vec<Child> = [&stack.coinbase, &stack.oanda]
            .iter()
            .map(|v| spawn(v.command(&bins, &url), &v.log))
            .collect();
        stack._children.extend(children);
        for v in [&stack.coinbase, &stack.oanda] {
            wait_ready(v.http, v.service, &v.log).await;
        }
        stack
    }

    /// The env file: the baseline with `changes`, and configd's own listeners.
    fn file_text(&self, changes: &[(&str, &str)]) -> String {
        let mut vars: BTreeMap<String, String> = baseline()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        for (k, v) in changes {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        vars.insert(
            "MONITORING_CONFIGURATIONS".to_owned(),
            format!(
                "log_level=info,http_addr=127.0.0.1:{},grpc_addr=127.0.0.1:{}",
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

    /// configd's version in force and how many reloads it has finished.
    async fn configd_state(&self) -> (f64, f64) {
        let text = metrics(self.configd_http).await;
        let version = metric(&text, "gekko_config_version", &[]).unwrap_or(0.0);
        let reloads: f64 = text
            .lines()
            .filter(|l| l.starts_with("gekko_config_reloads_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        (version, reloads)
    }

    /// Writes the baseline with `changes`, waits until configd has judged it and both
    /// gateways have configd's version in force.
    async fn apply(&self, changes: &[(&str, &str)]) {
        let text = self.file_text(changes);
        if std::fs::read_to_string(&self.env_file).ok().as_deref() != Some(text.as_str()) {
            let (_, reloads) = self.configd_state().await;
            self.write(&text);
            let judged = eventually(
                WAIT,
                || async move { self.configd_state().await.1 > reloads },
            )
            .await;
            assert!(judged, "configd did not reload {}", self.env_file.display());
        }
        let (version, _) = self.configd_state().await;
        assert!(version >= 1.0, "configd has no version in force");
        for v in [&self.coinbase, &self.oanda] {
            let ok = eventually(WAIT, || async move {
                metric(
                    &metrics(v.http).await,
                    "gekko_config_version",
                    &[("service", v.service)],
                ) == Some(version)
            })
            .await;
            assert!(ok, "{} did not put version {version} in force", v.service);
        }
    }
}

static STACK: OnceCell<Stack> = OnceCell::const_new();
static TURN: Mutex<()> = Mutex::const_new(());

/// The shared stack, and this test's turn on it.
async fn stack() -> (&'static Stack, MutexGuard<'static, ()>) {
    let turn = TURN.lock().await;
    let stack = STACK.get_or_init(Stack::start).await;
    (stack, turn)
}

/// Waits until `v`'s limiter budget is `want`.
async fn budget_becomes(v: &Venue, want: f64, why: &str) {
    assert!(
        eventually(WAIT, || async move { v.budget().await == Some(want) }).await,
        "{}: {why}: the budget is {:?}, not {want}",
        v.venue,
        v.budget().await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trading_rate_limits_change_the_coinbase_and_oanda_budgets() {
    let (s, _turn) = stack().await;
    s.apply(&[]).await;
    // 90 % of the limit is spent.
    budget_becomes(&s.coinbase, 27.0, "30/1s × 0.9 at start").await;
    budget_becomes(&s.oanda, 90.0, "100/1s × 0.9 at start").await;
    s.apply(&[("TRADING_RATE_LIMITS", "coinbase=10/1s,oanda=50/1s")])
        .await;
    budget_becomes(&s.coinbase, 9.0, "the budget follows 10/1s").await;
    budget_becomes(&s.oanda, 45.0, "the budget follows 50/1s").await;
    // A per-minute figure is a per-second one to these venues: 1200/1m is 20/s.
    s.apply(&[("TRADING_RATE_LIMITS", "coinbase=1200/1m,oanda=1200/1m")])
        .await;
    budget_becomes(&s.coinbase, 18.0, "1200/1m is 20/s").await;
    budget_becomes(&s.oanda, 18.0, "1200/1m is 20/s").await;
    // Orders still go through under the new budgets.
    s.coinbase.place_until_accepted("rate-ok").await;
    s.oanda.place_until_accepted("rate-ok").await;
    s.apply(&[]).await;
    budget_becomes(&s.coinbase, 27.0, "back to 30/1s").await;
    budget_becomes(&s.oanda, 90.0, "back to 100/1s").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn position_limits_lowered_refuse_orders_on_coinbase_and_oanda() {
    let (s, _turn) = stack().await;
    s.apply(&[]).await;
    s.coinbase.place_until_accepted("pos-ok").await;
    s.oanda.place_until_accepted("pos-ok").await;
    // Below one order: BTC-USD under 0.002 on every venue, EUR-USD under 1000 on OANDA.
    s.apply(&[("POSITION_LIMITS", "BTC-USD=0.001,oanda:EUR-USD=500")])
        .await;
    for v in [&s.coinbase, &s.oanda] {
        let refusal = v.place_until_refused("pos-refused").await;
        assert!(
            refusal.message().contains("POSITION_LIMITS"),
            "{}: the refusal names the limit: {refusal:?}",
            v.venue
        );
    }
    // Raised again, the same orders pass.
    s.apply(&[]).await;
    s.coinbase.place_until_accepted("pos-again").await;
    s.oanda.place_until_accepted("pos-again").await;
}
