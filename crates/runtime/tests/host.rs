//! The service host end to end: real listeners on free ports, the in-process bus, test
//! services that report what the host did to them.
//!
//! Services are unit types with static functions, so each test talks to its own through
//! its own statics. Every wait polls with a deadline.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use gekko_config::{GekkoConfig, Loaded};
use gekko_proto::v1::system_service_client::SystemServiceClient;
use gekko_proto::v1::{GetStatusRequest, GetStatusResponse};
use gekko_runtime::{
    BoxError, Exit, GrpcServer, Host, HostInfo, Lifecycle, Provided, Service, ServiceCtx,
    ServiceEntry, Started,
};
use tokio::sync::Notify;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

mod support;
use support::TestSystem;

const DEADLINE: Duration = Duration::from_secs(10);

/// Polls `check` until it yields `Some`, failing the test after [`DEADLINE`].
async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    gekko_testkit::poll_some(what, DEADLINE, check).await
}

fn free_port() -> u16 {
    gekko_testkit::free_port().expect("free port")
}

/// A validated config serving on `http` and `grpc`, with a short grace period.
fn config(http: u16, grpc: u16) -> Loaded {
    let vars = BTreeMap::from([
        (
            "MONITORING_CONFIGURATIONS".to_owned(),
            format!("http_addr=127.0.0.1:{http},grpc_addr=127.0.0.1:{grpc},log_format=json"),
        ),
        (
            "SYSTEM_PERFORMANCE_PARAMS".to_owned(),
            "shutdown_grace=5s".to_owned(),
        ),
    ]);
    gekko_config::from_vars(&vars).expect("valid config")
}

// ---- the happy path ---------------------------------------------------------------------

static ECHO_CTX: OnceLock<ServiceCtx> = OnceLock::new();
static ECHO_PROCEED: Notify = Notify::const_new();
static ECHO_TASK_DONE: AtomicBool = AtomicBool::new(false);
static ECHO_HELD_DROPPED_AFTER_TASK: AtomicBool = AtomicBool::new(false);
static ECHO_COMPOSED: AtomicU32 = AtomicU32::new(0);

/// Dropped by the host after the drain; records whether the tracked task had ended.
struct Held;

impl Drop for Held {
    fn drop(&mut self) {
        ECHO_HELD_DROPPED_AFTER_TASK.store(ECHO_TASK_DONE.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

/// Registers a component, waits for the test's go-ahead (so the test can see `/readyz`
/// held at 503 by `startup`), runs one tracked task, serves `SystemService`.
struct Echo;

impl Service for Echo {
    const NAME: &'static str = "echo";
    type Settings = Duration;

    fn resolve(cfg: &GekkoConfig) -> Result<Duration, Vec<String>> {
        Ok(cfg.system_performance.shutdown_grace)
    }

    async fn start(grace: Duration, ctx: &ServiceCtx) -> Result<Started, BoxError> {
        assert_eq!(grace, Duration::from_secs(5), "settings come from resolve");
        let ready = ctx.readiness().component("echo");
        ECHO_PROCEED.notified().await;
        ready.set_ready();
        let token = ctx.cancel();
        ctx.spawn("echo-task", async move {
            token.cancelled().await;
            drop(ready);
            ECHO_TASK_DONE.store(true, Ordering::SeqCst);
            Ok::<(), String>(())
        });
        let _ = ECHO_CTX.set(ctx.clone());
        Ok(Started::new()
            .grpc({
                let readiness = ctx.readiness().clone();
                TestSystem::new(move |_| GetStatusResponse {
                    ready: readiness.is_ready(),
                    mode: "test".to_owned(),
                    ..GetStatusResponse::default()
                })
                .into_server()
            })
            .provide(41_u32)
            .hold(Held))
    }
}

/// Sees what services provided; adds nothing.
fn compose(provided: &Provided, server: GrpcServer) -> GrpcServer {
    let sum: u32 = provided.all::<u32>().iter().sum();
    ECHO_COMPOSED.store(sum + 1, Ordering::SeqCst);
    server
}

/// Records the hooks in order.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Recorder {
    fn push(&self, event: String) {
        self.0.lock().unwrap().push(event);
    }
}

impl Lifecycle for Recorder {
    async fn opened(&self, info: &gekko_runtime::OpenedInfo<'_>) {
        // Before any service: the echo service has not started yet.
        self.push(format!(
            "opened {} services_started={}",
            info.program,
            ECHO_CTX.get().is_some()
        ));
    }
    async fn started(&self, info: &HostInfo<'_>) {
        self.push(format!("started {} bus={}", info.program, info.bus.kind()));
    }
    async fn stopping(&self, _info: &HostInfo<'_>, request: &gekko_runtime::StopRequest) {
        // Services are still running while the shutdown steps run.
        let cancelled = ECHO_CTX
            .get()
            .is_some_and(|ctx| ctx.cancel().is_cancelled());
        self.push(format!(
            "stopping origin={} cancelled={cancelled}",
            request.origin
        ));
    }
    async fn stopped(&self, _info: &HostInfo<'_>, clean: bool) {
        self.push(format!("stopped clean={clean}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_starts_serves_and_drains_in_order() {
    let (http, grpc) = (free_port(), free_port());
    let recorder = Recorder::default();
    let host = Host::new("host-test").service::<Echo>().grpc(compose);

    let probe = async {
        let client = reqwest::Client::new();
        let readyz = format!("http://127.0.0.1:{http}/readyz");
        // HTTP is served before services start; `startup` holds readiness back.
        let body: serde_json::Value = eventually("echo to register", || async {
            let body: serde_json::Value =
                client.get(&readyz).send().await.ok()?.json().await.ok()?;
            let names = body["components"].as_array()?.iter();
            let mut names = names.filter_map(|c| c["name"].as_str());
            names.any(|n| n == "echo").then_some(body)
        })
        .await;
        assert_eq!(body["ready"], false, "{body}");
        let startup = body["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "startup")
            .unwrap_or_else(|| panic!("no startup component: {body}"));
        assert_eq!(startup["detail"], "starting", "{body}");
        ECHO_PROCEED.notify_one();

        let body: serde_json::Value = eventually("/readyz to turn 200", || async {
            let resp = client.get(&readyz).send().await.ok()?;
            (resp.status() == 200).then_some(())?;
            resp.json().await.ok()
        })
        .await;
        assert_eq!(body["ready"], true, "{body}");

        let url = format!("http://127.0.0.1:{grpc}");
        let mut sys = SystemServiceClient::connect(url.clone()).await.unwrap();
        let status = sys
            .get_status(GetStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        assert!(status.ready && status.mode == "test", "{status:?}");
        let channel = tonic::transport::Channel::from_shared(url)
            .unwrap()
            .connect()
            .await
            .unwrap();
        // gRPC health follows the latch asynchronously, so it may lag /readyz briefly.
        eventually("gRPC health to report SERVING", || {
            let mut health = HealthClient::new(channel.clone());
            async move {
                let status = health
                    .check(HealthCheckRequest {
                        service: "gekko.v1.SystemService".to_owned(),
                    })
                    .await
                    .ok()?
                    .into_inner()
                    .status;
                (status == ServingStatus::Serving as i32).then_some(())
            }
        })
        .await;
        assert_eq!(ECHO_COMPOSED.load(Ordering::SeqCst), 42);

        let ctx = ECHO_CTX.get().expect("service started");
        assert!(ctx.request_stop(None, "test".to_owned()));
        assert!(
            !ctx.request_stop(None, "again".to_owned()),
            "the first request wins"
        );
    };
    let (exit, ()) = tokio::join!(host.run(config(http, grpc), &recorder), probe);

    assert_eq!(exit, Exit::Ok);
    assert_eq!(
        *recorder.0.lock().unwrap(),
        [
            "opened host-test services_started=false",
            "started host-test bus=in-process",
            "stopping origin=test cancelled=false",
            "stopped clean=true"
        ]
    );
    assert!(ECHO_TASK_DONE.load(Ordering::SeqCst));
    assert!(
        ECHO_HELD_DROPPED_AFTER_TASK.load(Ordering::SeqCst),
        "held values are dropped after the drain"
    );
    // Both listeners are closed again.
    std::net::TcpListener::bind(("127.0.0.1", http)).expect("HTTP port released");
    std::net::TcpListener::bind(("127.0.0.1", grpc)).expect("gRPC port released");
}

// ---- bad settings -----------------------------------------------------------------------

/// Always rejects its settings, with two problems.
struct Picky;

impl Service for Picky {
    const NAME: &'static str = "picky";
    type Settings = ();

    fn resolve(_cfg: &GekkoConfig) -> Result<(), Vec<String>> {
        Err(vec![
            "VENUE_URL: not a URL".to_owned(),
            "VENUE_KEY: empty".to_owned(),
        ])
    }

    async fn start((): (), _ctx: &ServiceCtx) -> Result<Started, BoxError> {
        panic!("a service whose settings failed must never start");
    }
}

/// Needs nothing, starts nothing.
struct Quiet;

impl Service for Quiet {
    const NAME: &'static str = "quiet";
    type Settings = ();

    fn resolve(_cfg: &GekkoConfig) -> Result<(), Vec<String>> {
        Ok(())
    }

    async fn start((): (), _ctx: &ServiceCtx) -> Result<Started, BoxError> {
        Ok(Started::new())
    }
}

#[tokio::test]
async fn bad_settings_exit_64_before_anything_binds() {
    let (http, grpc) = (free_port(), free_port());
    let host =
        Host::new("host-test").services([ServiceEntry::of::<Quiet>(), ServiceEntry::of::<Picky>()]);
    let loaded = config(http, grpc);
    let problems = host.resolve(&loaded.config).unwrap_err();
    assert_eq!(
        problems,
        ["picky: VENUE_URL: not a URL", "picky: VENUE_KEY: empty"]
    );
    assert_eq!(host.run(loaded, &()).await, Exit::Config);
    std::net::TcpListener::bind(("127.0.0.1", http)).expect("nothing was bound");
}

// ---- start failure and port taken -------------------------------------------------------

static FIRST_TASK_DONE: AtomicBool = AtomicBool::new(false);

/// Starts a tracked task that stops on cancellation.
struct First;

impl Service for First {
    const NAME: &'static str = "first";
    type Settings = ();

    fn resolve(_cfg: &GekkoConfig) -> Result<(), Vec<String>> {
        Ok(())
    }

    async fn start((): (), ctx: &ServiceCtx) -> Result<Started, BoxError> {
        let token = ctx.cancel();
        ctx.tracker().spawn(async move {
            token.cancelled().await;
            FIRST_TASK_DONE.store(true, Ordering::SeqCst);
        });
        Ok(Started::new())
    }
}

/// Fails to start, with a source chain.
struct Broken;

impl Service for Broken {
    const NAME: &'static str = "broken";
    type Settings = ();

    fn resolve(_cfg: &GekkoConfig) -> Result<(), Vec<String>> {
        Ok(())
    }

    async fn start((): (), _ctx: &ServiceCtx) -> Result<Started, BoxError> {
        Err(Box::new(std::io::Error::other("venue unreachable")))
    }
}

#[tokio::test]
async fn start_failure_stops_started_services_and_exits_69() {
    let (http, grpc) = (free_port(), free_port());
    let exit = Host::new("host-test")
        .service::<First>()
        .service::<Broken>()
        .run(config(http, grpc), &())
        .await;
    assert_eq!(exit, Exit::Unavailable);
    assert!(
        FIRST_TASK_DONE.load(Ordering::SeqCst),
        "the service started first was cancelled and drained"
    );
}

#[tokio::test]
async fn a_taken_port_exits_69() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http = taken.local_addr().unwrap().port();
    let exit = Host::new("host-test")
        .service::<Quiet>()
        .run(config(http, free_port()), &())
        .await;
    assert_eq!(exit, Exit::Unavailable);
}
