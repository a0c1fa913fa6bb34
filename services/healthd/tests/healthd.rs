//! healthd as a process against real targets: a real `redis-server` (testkit), another
//! real gekko service process (a second healthd, which serves the runtime's `/readyz`,
//! `/metrics` and `grpc.health.v1` like every gekko service), and a real local HTTP
//! server as the alert webhook. Docker is pointed at a dead socket, so it must be a
//! warning and not a failure.
//!
//! Checks: the tree shows each target, Redis (role, AOF) and Docker; the aggregate
//! `/readyz` is 200, then 503 naming the reason when the required target is killed, then
//! 200 again when it is restarted; a `service_down` alert reaches `gekko:alerts` and the
//! webhook, is escalated after `HEALTHD_ESCALATE_AFTER_S`, is acknowledged over HTTP and
//! resolves; an Alertmanager payload is republished; malformed `HEALTHD_*` settings exit
//! 64 naming every problem.

use std::io::Read as _;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use gekko_proto::v1 as pb;
use gekko_proto::v1::health_aggregator_client::HealthAggregatorClient;
use gekko_testkit::{RedisServer, free_port, poll_some};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_healthd");
const DEAD_DOCKER: &str = "unix:///nonexistent/gekko-test/docker.sock";

struct Proc {
    child: Child,
    http: u16,
    grpc: u16,
    own: u16,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn stderr(&mut self) -> String {
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        err
    }
}

fn command(http: u16, grpc: u16, own: u16, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "MONITORING_CONFIGURATIONS",
            format!("http_addr=127.0.0.1:{http},grpc_addr=127.0.0.1:{grpc}"),
        )
        .env("AUDIT_LOGGING_SETTINGS", "enabled=false")
        .env("HEALTHD_HTTP_ADDR", format!("127.0.0.1:{own}"))
        .env("HEALTHD_INTERVAL_MS", "200")
        .env("HEALTHD_TIMEOUT_MS", "1000")
        .env("DOCKER_HOST", DEAD_DOCKER)
        .current_dir(std::env::temp_dir());
    for (k, v) in env {
        // An empty DOCKER_HOST means the real default socket.
        if *k == "DOCKER_HOST" && v.is_empty() {
            cmd.env_remove(k);
        } else {
            cmd.env(k, v);
        }
    }
    cmd
}

/// Starts healthd on the given (or fresh) ports and waits for its own `/readyz`.
async fn start_on(http: u16, grpc: u16, own: u16, env: &[(&str, String)]) -> Proc {
    let child = command(http, grpc, own, env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn healthd");
    let mut p = Proc {
        child,
        http,
        grpc,
        own,
    };
    let url = format!("http://127.0.0.1:{http}/readyz");
    let ready = gekko_testkit::eventually(Duration::from_secs(60), || {
        let url = url.clone();
        async move {
            reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    if !ready {
        let _ = p.child.kill();
        panic!("healthd did not become ready:\n{}", p.stderr());
    }
    p
}

async fn start(env: &[(&str, String)]) -> Proc {
    let ports = (
        free_port().expect("port"),
        free_port().expect("port"),
        free_port().expect("port"),
    );
    start_on(ports.0, ports.1, ports.2, env).await
}

async fn health(p: &Proc) -> pb::SystemHealth {
    let mut c = HealthAggregatorClient::connect(format!("http://127.0.0.1:{}", p.grpc))
        .await
        .expect("connect healthd gRPC");
    c.get_system_health(pb::GetSystemHealthRequest {})
        .await
        .expect("GetSystemHealth")
        .into_inner()
}

async fn aggregate_readyz(p: &Proc) -> (u16, Value) {
    let r = reqwest::get(format!("http://127.0.0.1:{}/readyz", p.own))
        .await
        .expect("aggregate /readyz");
    let code = r.status().as_u16();
    (code, r.json().await.expect("readyz body is JSON"))
}

/// Every event on `gekko:alerts`, decoded.
async fn alert_events(redis: &str) -> Vec<Value> {
    let client = redis::Client::open(redis).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(healthd::ALERTS_STREAM)
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .expect("XRANGE");
    entries
        .ids
        .iter()
        .filter_map(|e| {
            e.map.values().find_map(|v| match v {
                redis::Value::BulkString(b) => serde_json::from_slice::<Value>(b).ok(),
                _ => None,
            })
        })
        .collect()
}

fn find<'a>(events: &'a [Value], event: &str, kind: &str, subject: &str) -> Option<&'a Value> {
    events
        .iter()
        .find(|e| e["event"] == event && e["kind"] == kind && e["subject"] == subject)
}

/// A real HTTP server that records every JSON body POSTed to it.
async fn webhook() -> (SocketAddr, Arc<Mutex<Vec<Value>>>) {
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                    sink.lock().expect("lock").push(v);
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind webhook");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, got)
}

fn component<'a>(r: &'a pb::ReplicaHealth, name: &str) -> &'a pb::HealthComponent {
    r.components
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no component {name} in {r:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_target_going_down_and_coming_back() {
    let redis = RedisServer::start();
    let (hook, hooked) = webhook().await;
    // The target: a gekko service process of its own (no Redis, no Docker checks).
    let target_env = [
        ("HEALTHD_REDIS", "off".to_owned()),
        ("HEALTHD_DOCKER", "off".to_owned()),
    ];
    let mut target = start(&target_env).await;
    let (th, tg, to) = (target.http, target.grpc, target.own);
    let agg = start(&[
        ("REDIS_URL", redis.url()),
        (
            "HEALTHD_TARGETS",
            format!("svc=http://127.0.0.1:{th}|grpc://127.0.0.1:{tg}"),
        ),
        ("HEALTHD_REQUIRED", "svc".to_owned()),
        ("HEALTHD_WEBHOOK_URL", format!("http://{hook}/hook")),
        ("HEALTHD_ESCALATE_AFTER_S", "2".to_owned()),
    ])
    .await;

    // The tree: the target with its replica and components, Redis, Docker, the host.
    let tree = poll_some("a ready tree", Duration::from_secs(30), || async {
        let h = health(&agg).await;
        h.ready.then_some(h)
    })
    .await;
    let svc = tree
        .services
        .iter()
        .find(|s| s.name == "svc")
        .expect("svc in the tree");
    assert!(svc.required);
    assert_eq!(svc.replicas.len(), 1, "{svc:?}");
    let replica = &svc.replicas[0];
    assert_eq!(replica.address, format!("127.0.0.1:{th}"));
    assert_eq!(
        component(replica, "readyz").status,
        pb::HealthStatus::Ok as i32
    );
    assert_eq!(
        component(replica, "grpc").status,
        pb::HealthStatus::Ok as i32
    );
    // The target's own /readyz components are in the tree too.
    assert!(
        replica
            .components
            .iter()
            .any(|c| c.name == "readyz/first-poll"),
        "{replica:?}"
    );
    let redis_node = tree
        .services
        .iter()
        .find(|s| s.name == "redis")
        .expect("redis");
    let info = component(&redis_node.replicas[0], "info");
    assert_eq!(info.details["role"], "master", "{info:?}");
    let aof = component(&redis_node.replicas[0], "aof");
    assert!(aof.details.contains_key("aof_last_write_status"), "{aof:?}");
    assert!(aof.details.contains_key("aof_enabled"), "{aof:?}");
    let docker = tree
        .services
        .iter()
        .find(|s| s.name == "docker")
        .expect("docker");
    assert_eq!(
        docker.status,
        pb::HealthStatus::Warning as i32,
        "{docker:?}"
    );
    assert!(!docker.required);
    assert!(docker.reason.contains("no Docker daemon"), "{docker:?}");
    assert!(tree.services.iter().any(|s| s.name == "host"));
    let (code, body) = aggregate_readyz(&agg).await;
    assert_eq!(code, 200, "{body}");

    // Watch: the current tree first, then a new one when something changes.
    let mut wc = HealthAggregatorClient::connect(format!("http://127.0.0.1:{}", agg.grpc))
        .await
        .expect("connect");
    let mut watch = wc
        .watch(pb::WatchSystemHealthRequest {})
        .await
        .expect("Watch")
        .into_inner();
    let first = watch
        .message()
        .await
        .expect("Watch item")
        .expect("a first tree");
    assert!(first.ready, "{first:?}");

    // Kill the required target: 503 naming it, an alert on the stream and the webhook.
    let _ = target.child.kill();
    let _ = target.child.wait();
    let body = poll_some(
        "the aggregate /readyz to turn 503",
        Duration::from_secs(30),
        || async {
            let (code, body) = aggregate_readyz(&agg).await;
            (code == 503).then_some(body)
        },
    )
    .await;
    let reason = body["reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("svc is down"), "{body}");
    assert!(reason.contains("unreachable"), "{body}");
    let h = health(&agg).await;
    assert!(!h.ready && h.reason.contains("svc is down"), "{h:?}");
    let changed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let t = watch
                .message()
                .await
                .expect("Watch item")
                .expect("the stream goes on");
            if !t.ready {
                return t;
            }
        }
    })
    .await
    .expect("Watch sent the not-ready tree");
    assert!(changed.reason.contains("svc is down"), "{changed:?}");

    let url = redis.url();
    let fired = poll_some(
        "service_down firing on gekko:alerts",
        Duration::from_secs(30),
        || {
            let url = url.clone();
            async move { find(&alert_events(&url).await, "firing", "service_down", "svc").cloned() }
        },
    )
    .await;
    assert_eq!(fired["severity"], "critical");
    assert_eq!(fired["source"], "healthd");
    let id = fired["id"].as_str().expect("id").to_owned();
    poll_some(
        "service_down firing at the webhook",
        Duration::from_secs(30),
        || async {
            let got = hooked.lock().expect("lock").clone();
            find(&got, "firing", "service_down", "svc").cloned()
        },
    )
    .await;

    // Not acknowledged after 2 s: escalated, on both.
    let url = redis.url();
    let escalated = poll_some(
        "the escalation on gekko:alerts",
        Duration::from_secs(30),
        || {
            let url = url.clone();
            async move {
                find(
                    &alert_events(&url).await,
                    "escalated",
                    "service_down",
                    "svc",
                )
                .cloned()
            }
        },
    )
    .await;
    assert_eq!(escalated["id"], id.as_str());
    assert_eq!(escalated["escalated"], true);
    poll_some(
        "the escalation at the webhook",
        Duration::from_secs(30),
        || async {
            let got = hooked.lock().expect("lock").clone();
            find(&got, "escalated", "service_down", "svc").cloned()
        },
    )
    .await;
    let open = health(&agg).await.open_alerts;
    let mine = open.iter().find(|a| a.id == id).expect("the alert is open");
    assert!(mine.escalated && !mine.acknowledged);

    // Acknowledged over HTTP (and an unknown id over gRPC is not).
    let acked = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/alerts/{id}/ack", agg.own))
        .body(r#"{"by":"the test"}"#)
        .send()
        .await
        .expect("ack");
    assert_eq!(acked.status().as_u16(), 200);
    let mut c = HealthAggregatorClient::connect(format!("http://127.0.0.1:{}", agg.grpc))
        .await
        .expect("connect");
    let none = c
        .acknowledge(pb::AcknowledgeAlertRequest {
            id: "no-such-alert".to_owned(),
            by: "the test".to_owned(),
        })
        .await
        .expect("Acknowledge")
        .into_inner();
    assert!(!none.acknowledged);
    let url = redis.url();
    let ack = poll_some(
        "the acknowledgement on gekko:alerts",
        Duration::from_secs(30),
        || {
            let url = url.clone();
            async move {
                find(
                    &alert_events(&url).await,
                    "acknowledged",
                    "service_down",
                    "svc",
                )
                .cloned()
            }
        },
    )
    .await;
    assert_eq!(ack["acknowledged_by"], "the test");

    // Restarted on the same ports: ready again, and the alert resolves.
    let _target = start_on(th, tg, to, &target_env).await;
    poll_some(
        "the aggregate /readyz to recover",
        Duration::from_secs(30),
        || async {
            let (code, _) = aggregate_readyz(&agg).await;
            (code == 200).then_some(())
        },
    )
    .await;
    let url = redis.url();
    poll_some("service_down resolved on gekko:alerts", Duration::from_secs(30), || {
        let url = url.clone();
        async move { find(&alert_events(&url).await, "resolved", "service_down", "svc").cloned() }
    })
    .await;
    assert!(health(&agg).await.open_alerts.iter().all(|a| a.id != id));
}

/// healthd's own `/metrics` (on `HEALTHD_HTTP_ADDR`).
async fn metrics_text(p: &Proc) -> String {
    reqwest::get(format!("http://127.0.0.1:{}/metrics", p.own))
        .await
        .expect("healthd /metrics")
        .text()
        .await
        .expect("/metrics body")
}

/// The value of the first sample of `name` whose labels contain every `labels` pair.
fn sample(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
        let wanted = metric == name
            && labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        wanted.then(|| value.parse().ok()).flatten()
    })
}

/// Waits until `/metrics` has a sample of `name` (with `labels`) for which `ok` holds.
async fn wait_sample(
    p: &Proc,
    name: &str,
    labels: &[(&str, &str)],
    ok: impl Fn(f64) -> bool,
) -> (f64, String) {
    let mut last = String::new();
    for _ in 0..150 {
        last = metrics_text(p).await;
        if let Some(v) = sample(&last, name, labels)
            && ok(v)
        {
            return (v, last);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no fitting {name}{labels:?} in healthd /metrics within 30 s:\n{last}");
}

/// What healthd collects about Redis and the host is on its `/metrics`, with the
/// values a real `redis-server` (appendonly yes) and this host give; a real AOF failure
/// (the data directory removed under Redis, then `BGREWRITEAOF`) turns
/// `gekko_healthd_redis_aof_ok` to 0. Docker at a dead socket is `docker_up 0`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(
    clippy::float_cmp,
    reason = "0/1 gauges and small counts are exact in f64"
)]
async fn redis_and_host_figures_are_exported_as_metrics() {
    let redis = RedisServer::start();
    let agg = start(&[
        ("REDIS_URL", redis.url()),
        ("HEALTHD_DISK_PATHS", "/".to_owned()),
    ])
    .await;
    let (_, body) = wait_sample(&agg, "gekko_healthd_redis_up", &[], |v| v == 1.0).await;
    let get = |name: &str, labels: &[(&str, &str)]| {
        sample(&body, name, labels).unwrap_or_else(|| panic!("{name} missing:\n{body}"))
    };
    assert!(get("gekko_healthd_redis_connected_clients", &[]) >= 1.0);
    assert_eq!(get("gekko_healthd_redis_aof_enabled", &[]), 1.0);
    assert_eq!(get("gekko_healthd_redis_aof_ok", &[]), 1.0);
    assert!(get("gekko_healthd_redis_used_memory_bytes", &[]) > 100_000.0);
    let latency = get("gekko_healthd_redis_latency_seconds", &[]);
    assert!(latency > 0.0 && latency < 1.0, "PING took {latency} s");
    assert_eq!(get("gekko_healthd_redis_info", &[("role", "master")]), 1.0);
    let total = get("gekko_healthd_host_memory_total_bytes", &[]);
    let available = get("gekko_healthd_host_memory_available_bytes", &[]);
    assert!(
        total > 0.0 && available > 0.0 && available <= total,
        "{total} {available}"
    );
    let disk = get("gekko_healthd_host_disk_total_bytes", &[("path", "/")]);
    let free = get("gekko_healthd_host_disk_available_bytes", &[("path", "/")]);
    assert!(disk > 0.0 && free <= disk, "{disk} {free}");
    assert_eq!(
        get("gekko_healthd_docker_up", &[]),
        0.0,
        "the socket is dead"
    );
    for help in [
        "# HELP gekko_healthd_redis_aof_ok",
        "# HELP gekko_healthd_host_disk_available_bytes",
    ] {
        assert!(body.contains(help), "{help} missing");
    }

    // A real AOF failure: Redis's directory disappears, so the rewrite cannot write.
    let client = redis::Client::open(redis.url()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let dir: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("dir")
        .query_async(&mut conn)
        .await
        .expect("CONFIG GET dir");
    std::fs::remove_dir_all(&dir[1]).expect("remove the Redis directory");
    let rewrite: redis::RedisResult<String> =
        redis::cmd("BGREWRITEAOF").query_async(&mut conn).await;
    assert!(rewrite.is_err(), "the rewrite should fail: {rewrite:?}");
    wait_sample(&agg, "gekko_healthd_redis_aof_ok", &[], |v| v == 0.0).await;
    let url = redis.url();
    poll_some(
        "redis_aof_error on gekko:alerts",
        Duration::from_secs(30),
        || {
            let url = url.clone();
            async move {
                find(
                    &alert_events(&url).await,
                    "firing",
                    "redis_aof_error",
                    "redis",
                )
                .cloned()
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_alerts_are_republished() {
    let redis = RedisServer::start();
    let agg = start(&[
        ("REDIS_URL", redis.url()),
        ("HEALTHD_DOCKER", "off".to_owned()),
    ])
    .await;
    let payload = |status: &str| {
        serde_json::json!({
            "version": "4",
            "status": status,
            "receiver": "healthd",
            "groupKey": "{}:{alertname=\"GekkoVenueDisconnected\"}",
            "alerts": [{
                "status": status,
                "labels": {"alertname": "GekkoVenueDisconnected", "severity": "critical",
                           "venue": "binanceus", "instance": "gateway-binanceus:9464"},
                "annotations": {"summary": "binanceus market stream disconnected"},
                "startsAt": "2026-01-01T00:00:00Z",
                "fingerprint": "abc123"
            }]
        })
    };
    let http = reqwest::Client::new();
    // The path deploy/alertmanager/alertmanager.yml routes to.
    let r = http
        .post(format!("http://127.0.0.1:{}/alerts", agg.own))
        .json(&payload("firing"))
        .send()
        .await
        .expect("POST /alerts");
    assert_eq!(r.status().as_u16(), 200);
    let url = redis.url();
    let subject = "GekkoVenueDisconnected/instance=gateway-binanceus:9464,venue=binanceus";
    let fired = poll_some("the republished alert", Duration::from_secs(20), || {
        let url = url.clone();
        async move {
            find(
                &alert_events(&url).await,
                "firing",
                "GekkoVenueDisconnected",
                subject,
            )
            .cloned()
        }
    })
    .await;
    assert_eq!(fired["source"], "alertmanager");
    assert_eq!(fired["severity"], "critical");
    assert_eq!(fired["id"], "am-abc123");
    assert_eq!(fired["summary"], "binanceus market stream disconnected");
    assert!(
        health(&agg)
            .await
            .open_alerts
            .iter()
            .any(|a| a.id == "am-abc123")
    );
    let r = http
        .post(format!("http://127.0.0.1:{}/alertmanager", agg.own))
        .json(&payload("resolved"))
        .send()
        .await
        .expect("POST /alertmanager");
    assert_eq!(r.status().as_u16(), 200);
    let url = redis.url();
    poll_some("the resolved alert", Duration::from_secs(20), || {
        let url = url.clone();
        async move {
            find(
                &alert_events(&url).await,
                "resolved",
                "GekkoVenueDisconnected",
                subject,
            )
            .cloned()
        }
    })
    .await;
    assert!(
        health(&agg)
            .await
            .open_alerts
            .iter()
            .all(|a| a.id != "am-abc123")
    );
    // A body that is not Alertmanager's is refused, naming why.
    let r = http
        .post(format!("http://127.0.0.1:{}/alerts", agg.own))
        .body("not json")
        .send()
        .await
        .expect("POST garbage");
    assert_eq!(r.status().as_u16(), 400);
}

#[test]
fn malformed_settings_exit_64_naming_every_problem() {
    let out = command(
        1,
        2,
        3,
        &[
            ("HEALTHD_TARGETS", "svc=ftp://x:1,=http://y:2".to_owned()),
            ("HEALTHD_INTERVAL_MS", "often".to_owned()),
            ("HEALTHD_THRESHOLDS", "disk_pct=150".to_owned()),
            ("HEALTHD_WEBHOOK_URL", "not a url".to_owned()),
            ("MONITORING_CONFIGURATIONS", "log_level=loud".to_owned()),
        ],
    )
    .output()
    .expect("run healthd");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    for want in [
        "HEALTHD_TARGETS",
        "HEALTHD_INTERVAL_MS",
        "HEALTHD_THRESHOLDS: disk_pct",
        "HEALTHD_WEBHOOK_URL",
        "MONITORING_CONFIGURATIONS",
    ] {
        assert!(err.contains(want), "{want} not named in:\n{err}");
    }
}

/// Containers this test made, removed by name when it ends.
struct DockerScratch {
    image: String,
    containers: Vec<String>,
}

impl Drop for DockerScratch {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = Command::new("docker").args(["rm", "-f", c]).output();
        }
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.image])
            .output();
    }
}

fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// With a Docker daemon (else a loud SKIPPED line, as the compose e2e test does): a tiny
/// image imported from the host's own `sleep` and `false`, one running container and one
/// in a restart loop. The running one shows its state and stats; the loop raises
/// `container_restart_loop` on `gekko:alerts`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(
    clippy::float_cmp,
    reason = "0/1 gauges and small counts are exact in f64"
)]
async fn docker_containers_and_a_restart_loop() {
    if let Err(e) = docker(&["info", "--format", "{{.ServerVersion}}"]) {
        eprintln!("SKIPPED docker_containers_and_a_restart_loop: no Docker daemon answers ({e})");
        return;
    }
    let tag = format!("healthd-test-{}", std::process::id());
    let scratch = DockerScratch {
        image: format!("{tag}:scratch"),
        containers: vec![format!("{tag}-sleep"), format!("{tag}-loop")],
    };
    let dir = std::env::temp_dir().join(&tag);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let tar = dir.join("root.tar");
    let made = Command::new("tar")
        .arg("-chf")
        .arg(&tar)
        .args(["-C", "/", "bin/sleep", "bin/false"])
        .args(
            [
                "lib/x86_64-linux-gnu/libc.so.6",
                "lib64/ld-linux-x86-64.so.2",
            ]
            .iter()
            .filter(|p| std::path::Path::new("/").join(p).exists()),
        )
        .status()
        .expect("tar");
    assert!(made.success(), "cannot pack the scratch image");
    docker(&["import", tar.to_str().expect("path"), &scratch.image]).expect("docker import");
    let label = format!("com.docker.compose.project={tag}");
    docker(&[
        "run",
        "-d",
        "--name",
        &scratch.containers[0],
        "--label",
        &label,
        &scratch.image,
        "/bin/sleep",
        "300",
    ])
    .expect("run the sleeping container");
    docker(&[
        "run",
        "-d",
        "--name",
        &scratch.containers[1],
        "--label",
        &label,
        "--restart",
        "always",
        &scratch.image,
        "/bin/false",
    ])
    .expect("run the looping container");

    let redis = RedisServer::start();
    let agg = start(&[
        ("REDIS_URL", redis.url()),
        ("HEALTHD_DOCKER_PROJECT", tag.clone()),
        ("HEALTHD_THRESHOLDS", "restart_loop=2".to_owned()),
        ("HEALTHD_TIMEOUT_MS", "3000".to_owned()),
        ("DOCKER_HOST", String::new()),
    ])
    .await;
    let sleeping = scratch.containers[0].clone();
    let replica = poll_some(
        "the running container with its stats",
        Duration::from_secs(60),
        || {
            let sleeping = sleeping.clone();
            let agg = &agg;
            async move {
                let h = health(agg).await;
                let d = h.services.into_iter().find(|s| s.name == "docker")?;
                d.replicas.into_iter().find(|r| {
                    r.address == sleeping && r.components.iter().any(|c| c.name == "resources")
                })
            }
        },
    )
    .await;
    assert_eq!(
        component(&replica, "state").status,
        pb::HealthStatus::Ok as i32,
        "{replica:?}"
    );
    let res = component(&replica, "resources");
    for k in [
        "cpu_percent",
        "memory_bytes",
        "net_rx_bytes",
        "block_read_bytes",
    ] {
        assert!(res.details.contains_key(k), "{k} missing: {res:?}");
    }
    assert_eq!(component(&replica, "oom").details["oom_killed"], "false");
    let url = redis.url();
    let subject = format!("container/{}", scratch.containers[1]);
    let fired = poll_some(
        "container_restart_loop on gekko:alerts",
        Duration::from_secs(90),
        || {
            let (url, subject) = (url.clone(), subject.clone());
            async move {
                find(
                    &alert_events(&url).await,
                    "firing",
                    "container_restart_loop",
                    &subject,
                )
                .cloned()
            }
        },
    )
    .await;
    assert_eq!(fired["severity"], "critical");
    // The same, as metrics: Docker answered, the sleeping container runs, and the loop's
    // restarts are counted (Docker's count and the ones healthd saw since it started).
    let looping = scratch.containers[1].as_str();
    let (_, body) = wait_sample(
        &agg,
        "gekko_healthd_container_restarts_total",
        &[("container", looping)],
        |v| v >= 1.0,
    )
    .await;
    let get = |name: &str, container: &str| {
        sample(&body, name, &[("container", container)])
            .unwrap_or_else(|| panic!("{name} of {container} missing:\n{body}"))
    };
    assert_eq!(sample(&body, "gekko_healthd_docker_up", &[]), Some(1.0));
    assert_eq!(get("gekko_healthd_container_running", &sleeping), 1.0);
    assert_eq!(get("gekko_healthd_container_oom_killed", &sleeping), 0.0);
    assert_eq!(
        get("gekko_healthd_container_docker_restarts", &sleeping),
        0.0
    );
    assert!(get("gekko_healthd_container_docker_restarts", looping) >= 1.0);
    assert!(get("gekko_healthd_container_memory_bytes", &sleeping) > 0.0);
    assert!(get("gekko_healthd_container_cpu_ratio", &sleeping) >= 0.0);
    for name in [
        "gekko_healthd_container_memory_limit_bytes",
        "gekko_healthd_container_network_receive_bytes",
        "gekko_healthd_container_block_read_bytes",
    ] {
        get(name, &sleeping);
    }
    drop(scratch);
    let _ = std::fs::remove_dir_all(&dir);
}
