//! A scaled gateway: two real `gateway-binanceus` processes against one simulator and one
//! `redis-server`, electing a leader through the Redis lease (`GATEWAY_HA_SETTINGS`).
//!
//! One scenario, in order (each process start costs seconds on a loaded machine):
//! exactly one leader; a PlaceOrder sent to the standby is forwarded and executed once;
//! the leader is killed with SIGKILL while a client keeps placing orders (each retried with
//! the same client id, alternating replicas as DNS round robin would) and the standby takes
//! over: the simulator holds exactly one order per client id; a leader paused with SIGSTOP
//! past the lease TTL is replaced, and after SIGCONT it cannot write and steps down.
//! The failover time is printed (`cargo test -p gateway-binanceus --test ha -- --nocapture`).

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gekko_gateway::lease::{Lease, LeaseConfig};
use gekko_proto::v1 as pb;
use gekko_proto::v1::gateway_service_client::GatewayServiceClient;
use gekko_sim::binanceus::{SimBinanceUs, SimConfig, SimHandle};
use gekko_testkit::{RedisServer, eventually, free_port};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tonic::transport::{Channel, Endpoint};

const TTL: Duration = Duration::from_secs(2);
const START: Duration = Duration::from_secs(90);

/// One gateway process. Killed (SIGCONT first, in case it is stopped) when dropped.
struct Replica {
    name: &'static str,
    child: Child,
    http: u16,
    grpc: u16,
    log: PathBuf,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = signal(self.child.id(), "CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .is_ok_and(|s| s.success())
}

struct Env {
    redis: RedisServer,
    sim: SimHandle,
    dir: PathBuf,
}

impl Env {
    fn spawn(&self, name: &'static str, http: u16, grpc: u16) -> Replica {
        let log = self.dir.join(format!("{name}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_gateway-binanceus"))
            .current_dir(&self.dir)
            .env("REDIS_URL", self.redis.url())
            .env("BINANCEUS_API_KEY", "paper-key")
            .env("BINANCEUS_API_SECRET", "paper-secret")
            .env(
                "TRADING_API_ENDPOINTS",
                format!(
                    "binanceus={},binanceus.stream={}",
                    self.sim.rest_url, self.sim.ws_url
                ),
            )
            .env("SUPPORTED_TRADING_PAIRS", "BTC-USD")
            .env(
                "MONITORING_CONFIGURATIONS",
                format!("http_addr=127.0.0.1:{http},grpc_addr=127.0.0.1:{grpc},log_level=info"),
            )
            .env(
                "GATEWAY_HA_SETTINGS",
                format!(
                    "enabled=true,lease_ttl={}ms,renew_interval=250ms",
                    TTL.as_millis()
                ),
            )
            .env_remove("GEKKO_ENV_FILE")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn gateway-binanceus");
        Replica {
            name,
            child,
            http,
            grpc,
            log,
        }
    }
}

/// `GET path` on the replica's HTTP port: the status code and body.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let code = raw.split_whitespace().nth(1)?.parse().ok()?;
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((code, body))
}

/// The replica's role as `/readyz` reports it, when it is ready.
fn role(r: &Replica) -> Option<String> {
    let (code, body) = http_get(r.http, "/readyz")?;
    // Chunked or not, the JSON object is the part between the outer braces.
    let json = &body[body.find('{')?..=body.rfind('}')?];
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    if code != 200 {
        return None;
    }
    v["components"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == "binanceus-role")
        .and_then(|c| c["detail"].as_str())
        .map(str::to_owned)
}

fn leader_gauge(r: &Replica) -> Option<u8> {
    let (_, body) = http_get(r.http, "/metrics")?;
    body.lines()
        .find(|l| l.starts_with("gekko_gateway_leader{") && l.contains("binanceus"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| u8::from(v > 0.5))
}

async fn wait_role(r: &Replica, want: &str, within: Duration) {
    let ok = eventually(within, || async { role(r).as_deref() == Some(want) }).await;
    assert!(
        ok,
        "{} did not report {want} within {within:?} (now {:?}); log:\n{}",
        r.name,
        role(r),
        tail(&r.log)
    );
}

fn tail(path: &PathBuf) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn client(grpc: u16) -> GatewayServiceClient<Channel> {
    let ch = Endpoint::from_shared(format!("http://127.0.0.1:{grpc}"))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(20))
        .connect_lazy();
    GatewayServiceClient::new(ch)
}

fn limit(id: &str, price: Decimal) -> pb::PlaceOrderRequest {
    pb::PlaceOrderRequest {
        venue: "binanceus".into(),
        instrument: "BTC-USD".into(),
        side: pb::Side::Buy as i32,
        r#type: pb::OrderType::Limit as i32,
        qty: "0.001".into(),
        price: price.to_string(),
        time_in_force: pb::TimeInForce::Gtc as i32,
        client_order_id: id.into(),
        ..Default::default()
    }
}

fn passive_bid(sim: &SimHandle) -> Decimal {
    let (_, bids, _) = sim.book("BTCUSD");
    (bids[0].0 * dec!(0.95)).round_dp(2)
}

/// Orders at the simulator per client id (only ids with the prefix).
fn sim_counts(sim: &SimHandle, prefix: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for o in sim.orders() {
        if o.client_order_id.starts_with(prefix) {
            *out.entry(o.client_order_id).or_insert(0) += 1;
        }
    }
    out
}

/// Places `id` until some replica accepts it, trying the replicas in turn (as DNS round
/// robin would) and always with the same client id. Returns when it was accepted.
async fn place_retrying(
    ports: &[u16],
    first: usize,
    id: &str,
    price: Decimal,
    deadline: Duration,
) -> Instant {
    let started = Instant::now();
    let mut attempt = first;
    loop {
        let port = ports[attempt % ports.len()];
        attempt += 1;
        match client(port).place_order(limit(id, price)).await {
            Ok(reply) => {
                let order = reply.into_inner().order.expect("an order");
                assert_eq!(order.client_order_id, id);
                assert_ne!(
                    order.status,
                    pb::OrderStatus::Rejected as i32,
                    "{id} was rejected: {order:?}"
                );
                return Instant::now();
            }
            Err(status) => {
                assert!(
                    started.elapsed() < deadline,
                    "{id} not accepted within {deadline:?}; last error: {status}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_elect_one_leader_forward_fail_over_and_fence_a_stale_leader() {
    let redis = RedisServer::start();
    let sim = SimBinanceUs::start(SimConfig {
        tick_interval: Duration::from_millis(50),
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let dir = std::env::temp_dir().join(format!("gekko-ha-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let env = Env { redis, sim, dir };
    let ports = |n| {
        (0..n)
            .map(|_| free_port().expect("port"))
            .collect::<Vec<_>>()
    };
    let p = ports(4);

    // 1. Exactly one leader: the first replica takes the lease, the second stands by.
    let a = env.spawn("a", p[0], p[1]);
    wait_role(&a, "leader", START).await;
    let b = env.spawn("b", p[2], p[3]);
    wait_role(&b, "standby", START).await;
    assert_eq!(role(&a).as_deref(), Some("leader"), "still one leader");
    assert_eq!(leader_gauge(&a), Some(1));
    assert_eq!(leader_gauge(&b), Some(0));

    // 2. A PlaceOrder sent to the standby is forwarded and executed once, and its retry
    // (same id, either replica) places nothing more.
    let px = passive_bid(&env.sim);
    let placed = client(b.grpc)
        .place_order(limit("ha-fwd-1", px))
        .await
        .expect("the standby forwards to the leader")
        .into_inner()
        .order
        .expect("order");
    assert_eq!(placed.client_order_id, "ha-fwd-1");
    client(b.grpc)
        .place_order(limit("ha-fwd-1", px))
        .await
        .expect("retry via standby");
    client(a.grpc)
        .place_order(limit("ha-fwd-1", px))
        .await
        .expect("retry via leader");
    assert_eq!(
        sim_counts(&env.sim, "ha-fwd-"),
        BTreeMap::from([("ha-fwd-1".to_owned(), 1)])
    );

    // 3. Kill the leader mid-run while a client keeps placing orders.
    let replicas = [a.grpc, b.grpc];
    let watcher = Lease::new(LeaseConfig {
        redis_url: env.redis.url(),
        key: LeaseConfig::default_key("binanceus"),
        ttl: TTL,
        renew_interval: TTL / 4,
        owner: "test-watcher".into(),
        advertise: "127.0.0.1:1".into(),
    })
    .expect("lease watcher");
    let a_owner = watcher
        .leader()
        .await
        .expect("lease read")
        .expect("a leads")
        .owner;
    let total = 24usize;
    let kill_after = 6usize;
    let mut a = Some(a);
    let mut killed_at = None;
    let mut expiry = None;
    let mut first_after = None;
    for n in 0..total {
        if n == kill_after {
            let mut dead = a.take().expect("a alive");
            dead.child.kill().expect("SIGKILL the leader");
            dead.child.wait().expect("reaped");
            killed_at = Some(Instant::now());
            // Watch the lease: the moment it stops naming a is the expiry.
            let watcher = watcher.clone();
            let a_owner = a_owner.clone();
            expiry = Some(tokio::spawn(async move {
                loop {
                    match watcher.leader().await {
                        Ok(Some(r)) if r.owner == a_owner => {}
                        Ok(_) => return Instant::now(),
                        Err(_) => {}
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }));
        }
        let accepted = place_retrying(
            &replicas,
            n,
            &format!("ha-run-{n}"),
            px,
            Duration::from_secs(60),
        )
        .await;
        if killed_at.is_some() && first_after.is_none() {
            first_after = Some(accepted);
        }
    }
    wait_role(&b, "leader", Duration::from_secs(5)).await;
    let killed_at = killed_at.expect("killed");
    let expired_at = expiry.expect("watcher").await.expect("watcher task");
    let first_after = first_after.expect("an order after the kill");
    println!(
        "failover: kill -> lease expiry {} ms (TTL {} ms); lease expiry -> first order accepted by the new leader {} ms; kill -> first order {} ms",
        expired_at.duration_since(killed_at).as_millis(),
        TTL.as_millis(),
        first_after
            .saturating_duration_since(expired_at)
            .as_millis(),
        first_after.duration_since(killed_at).as_millis(),
    );
    let counts = sim_counts(&env.sim, "ha-run-");
    assert_eq!(
        counts.len(),
        total,
        "every client id reached the venue: {counts:?}"
    );
    assert!(
        counts.values().all(|&c| c == 1),
        "exactly one venue order per client id: {counts:?}"
    );

    // 4. A stale leader: a (restarted, now the standby) takes over from b while b is
    // stopped past the TTL; b, resumed, cannot write and steps down.
    let a = env.spawn("a2", p[0], p[1]);
    wait_role(&a, "standby", START).await;
    assert!(signal(b.child.id(), "STOP"), "SIGSTOP b");
    wait_role(&a, "leader", TTL * 10).await;
    assert!(signal(b.child.id(), "CONT"), "SIGCONT b");
    // Straight away, before b's lease loop notices: an order sent to b either is refused
    // (b's fenced write fails, nothing is sent) or reaches a; never two.
    let stale = client(b.grpc).place_order(limit("ha-stale-1", px)).await;
    wait_role(&b, "standby", Duration::from_secs(10)).await;
    assert_eq!(leader_gauge(&b), Some(0));
    place_retrying(
        &[a.grpc, b.grpc],
        0,
        "ha-stale-1",
        px,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        sim_counts(&env.sim, "ha-stale-"),
        BTreeMap::from([("ha-stale-1".to_owned(), 1)]),
        "the stale leader's attempt ({stale:?}) made no second order"
    );
    // The whole run: still one venue order per client id.
    assert!(sim_counts(&env.sim, "ha-").values().all(|&c| c == 1));
    drop(a);
    drop(b);
    let _ = std::fs::remove_dir_all(&env.dir);
}
