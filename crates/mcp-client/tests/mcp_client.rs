//! gekko's MCP client connections against real MCP servers written with the official
//! Python SDK (`mcp` 2.3.0, `tests/servers/tool_server.py`), over stdio (a real child
//! process) and streamable HTTP (a real uvicorn listener on a loopback port), plus two
//! servers that never answer `initialize` (a Python process that reads stdin and never
//! writes, and a TCP listener that accepts and never responds).
//!
//! Covered: connect, list tools and call over both transports; a bearer token checked by
//! the HTTP server (a wrong or missing one is refused); a server that dies mid-session
//! (the call fails cleanly, the state goes down, the stdio server is respawned and the
//! HTTP one reconnected once restarted); the silent servers time out and are reported
//! down; readiness (a required server that is down keeps gekko not ready and `/readyz`'s
//! report names it; an optional one does not); `McpService` over real TCP gRPC.
//!
//! The Python venv is `.venv-sdk` (built by `scripts/test.sh` from
//! `scripts/sdk-requirements.txt`); a missing venv fails the tests with that instruction.

use std::net::TcpListener as StdTcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gekko_config::{McpServer, McpTransport};
use gekko_core::backoff::BackoffConfig;
use gekko_mcp_client::{
    CircuitState, ConnectionState, McpClientError, McpClientsService, McpClientsSettings, McpGrpc,
    McpPool, PoolOptions, ServerStatus, probe, readiness_component,
};
use gekko_runtime::{Readiness, Service as _, ServiceCtx, Shutdown};
use secrecy::SecretString;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

// ---------------------------------------------------------------------------------------
// Harness

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The SDK venv's Python; panics with how to build it when missing.
fn python() -> String {
    let py = root().join("../../.venv-sdk/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run scripts/test.sh (it builds .venv-sdk from scripts/sdk-requirements.txt, \
         which pins mcp==2.3.0), or build it the same way: python3 -m venv .venv-sdk && \
         .venv-sdk/bin/pip install -r scripts/sdk-requirements.txt",
        py.display()
    );
    let ok = Command::new(&py)
        .args(["-c", "import mcp.server.mcpserver, uvicorn"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} cannot import the MCP SDK (mcp==2.3.0): rebuild .venv-sdk with scripts/test.sh",
        py.display()
    );
    py.to_string_lossy().into_owned()
}

fn script(name: &str) -> String {
    root()
        .join("tests/servers")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn server(name: &str, transport: McpTransport) -> McpServer {
    McpServer {
        name: name.to_owned(),
        transport,
        required: false,
        token: None,
        init_timeout: Duration::from_secs(15),
        call_timeout: Duration::from_secs(10),
    }
}

/// The healthy tool server over stdio, with extra arguments (`--die-after N`).
fn stdio_tools(name: &str, extra: &[&str]) -> McpServer {
    let mut args = vec![
        script("tool_server.py"),
        "--transport".into(),
        "stdio".into(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    server(
        name,
        McpTransport::Stdio {
            program: python(),
            args,
        },
    )
}

/// The process that never answers `initialize`.
fn stdio_silent(name: &str) -> McpServer {
    let mut s = server(
        name,
        McpTransport::Stdio {
            program: python(),
            args: vec![script("silent_stdio.py")],
        },
    );
    s.init_timeout = Duration::from_secs(1);
    s
}

fn http(name: &str, port: u16, token: Option<&str>) -> McpServer {
    let mut s = server(
        name,
        McpTransport::Http {
            url: format!("http://127.0.0.1:{port}/mcp"),
        },
    );
    s.token = token.map(SecretString::from);
    s
}

fn free_port() -> u16 {
    StdTcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The tool server over streamable HTTP, owned by one test and killed on drop.
struct HttpToolServer {
    port: u16,
    token: Option<String>,
    child: Option<Child>,
}

impl HttpToolServer {
    fn start(token: Option<&str>) -> Self {
        let mut s = Self {
            port: free_port(),
            token: token.map(str::to_owned),
            child: None,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(python());
        cmd.args([
            &script("tool_server.py"),
            "--transport",
            "http",
            "--port",
            &self.port.to_string(),
        ]);
        if let Some(t) = &self.token {
            cmd.args(["--token", t]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tool_server.py over HTTP");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the HTTP MCP server did not listen on port {} within 30s",
                self.port
            );
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("the HTTP MCP server exited at start: {status}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for the process to exit by itself (after the `die` tool).
    fn wait_exit(&mut self) {
        if let Some(mut c) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    panic!("the HTTP MCP server did not exit after `die`");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Drop for HttpToolServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reconnects quickly and pings often, so the tests run in seconds.
fn fast() -> PoolOptions {
    PoolOptions {
        backoff: BackoffConfig::new(Duration::from_millis(50), Duration::from_millis(500)),
        breaker_threshold: 1000,
        breaker_cooldown: Duration::from_secs(1),
        keepalive: Duration::from_millis(500),
        ping_timeout: Duration::from_secs(2),
    }
}

/// A pool whose tasks (and child processes) are stopped when it is dropped.
struct Pool {
    pool: McpPool,
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl Pool {
    fn start(servers: Vec<McpServer>, options: PoolOptions) -> Self {
        let tracker = TaskTracker::new();
        let cancel = CancellationToken::new();
        let pool = McpPool::start(servers, options, &tracker, &cancel);
        Self {
            pool,
            tracker,
            cancel,
        }
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.tracker.close();
        tokio::time::timeout(Duration::from_secs(10), self.tracker.wait())
            .await
            .expect("the pool's tasks stop within 10s of cancel");
    }
}

impl std::ops::Deref for Pool {
    type Target = McpPool;
    fn deref(&self) -> &McpPool {
        &self.pool
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Waits until `server`'s status satisfies `pred`, or panics with the last status.
async fn wait_for(
    pool: &McpPool,
    server: &str,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&ServerStatus) -> bool,
) -> ServerStatus {
    let mut rx = pool.subscribe(server).expect("a configured server");
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let s = rx.borrow_and_update().clone();
        if pred(&s) {
            return s;
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                panic!("{server}: status channel closed while waiting for {what}; last: {s:?}")
            }
            Err(_) => panic!("{server}: not {what} within {timeout:?}; last: {s:?}"),
        }
    }
}

async fn wait_up(pool: &McpPool, server: &str) -> ServerStatus {
    wait_for(pool, server, "up", Duration::from_secs(30), |s| {
        s.state == ConnectionState::Up
    })
    .await
}

const TOOLS: [&str; 5] = ["add", "die", "echo", "fail", "slow"];

fn tool_names(pool: &McpPool, server: &str) -> Vec<String> {
    let mut names: Vec<String> = pool
        .tools(server)
        .expect("tools of a connected server")
        .into_iter()
        .map(|t| t.name)
        .collect();
    names.sort();
    names
}

/// Calls `add(a, b)` and checks the sum, in text and structured content.
async fn assert_add(pool: &McpPool, server: &str, a: i64, b: i64) {
    let out = pool
        .call_tool(server, "add", json!({"a": a, "b": b}))
        .await
        .unwrap_or_else(|e| panic!("{server}: add failed: {e}"));
    assert!(!out.is_error, "{out:?}");
    assert_eq!(out.text(), (a + b).to_string(), "{out:?}");
    assert_eq!(out.structured, Some(json!({"result": a + b})), "{out:?}");
}

// ---------------------------------------------------------------------------------------
// Connect, list tools, call

#[tokio::test]
async fn stdio_server_connects_lists_tools_and_answers_calls() {
    let pool = Pool::start(vec![stdio_tools("tools", &[])], fast());
    let status = wait_up(&pool, "tools").await;
    assert_eq!(status.tool_count, TOOLS.len());
    assert_eq!(status.connects, 1);
    assert_eq!(status.reconnects, 0);
    assert_eq!(
        status.server_info.as_deref(),
        Some("gekko-test-tools 1.0.0")
    );
    assert!(status.transport.starts_with("stdio:"), "{status:?}");
    assert_eq!(tool_names(&pool, "tools"), TOOLS);
    let add = pool
        .tools("tools")
        .unwrap()
        .into_iter()
        .find(|t| t.name == "add")
        .unwrap();
    assert_eq!(add.description.as_deref(), Some("Adds two integers."));
    assert_eq!(add.input_schema["type"], "object");
    assert!(add.input_schema["properties"]["a"].is_object(), "{add:?}");

    assert_add(&pool, "tools", 2, 3).await;
    let echo = pool
        .call_tool("tools", "echo", json!({"text": "héllo, gekko"}))
        .await
        .unwrap();
    assert_eq!(echo.text(), "héllo, gekko");

    // A tool that fails is a result with isError, not an error.
    let failed = pool
        .call_tool("tools", "fail", json!({"reason": "venue closed"}))
        .await
        .unwrap();
    assert!(failed.is_error);
    assert!(failed.text().contains("venue closed"), "{failed:?}");

    // Refused before anything is sent.
    assert!(matches!(
        pool.call_tool("tools", "nope", json!({})).await,
        Err(McpClientError::UnknownTool { .. })
    ));
    assert!(matches!(
        pool.call_tool("nobody", "add", json!({})).await,
        Err(McpClientError::UnknownServer { .. })
    ));
    assert!(matches!(
        pool.call_tool("tools", "add", json!([1, 2])).await,
        Err(McpClientError::InvalidArguments { .. })
    ));

    // A call past its deadline fails as a timeout; the connection stays up.
    let started = Instant::now();
    let slow = pool
        .call_tool_with_timeout(
            "tools",
            "slow",
            json!({"seconds": 5}),
            Some(Duration::from_millis(300)),
        )
        .await;
    assert!(
        matches!(slow, Err(McpClientError::Timeout { .. })),
        "{slow:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_add(&pool, "tools", 40, 2).await;
    assert_eq!(pool.server("tools").unwrap().state, ConnectionState::Up);
    pool.stop().await;
}

#[tokio::test]
async fn http_server_with_a_bearer_token_connects_and_answers_calls() {
    let srv = HttpToolServer::start(Some("right-token-123"));
    let pool = Pool::start(vec![http("web", srv.port, Some("right-token-123"))], fast());
    let status = wait_up(&pool, "web").await;
    assert_eq!(status.tool_count, TOOLS.len());
    assert_eq!(
        status.transport,
        format!("http://127.0.0.1:{}/mcp", srv.port)
    );
    assert_eq!(tool_names(&pool, "web"), TOOLS);
    assert_add(&pool, "web", 20, 22).await;
    let echo = pool
        .call_tool("web", "echo", json!({"text": "over http"}))
        .await
        .unwrap();
    assert_eq!(echo.text(), "over http");
    // Several calls at once share the one session.
    let calls = (0..8).map(|i| pool.call_tool("web", "add", json!({"a": i, "b": 1})));
    for (i, r) in futures::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(r.unwrap().text(), (i + 1).to_string());
    }
    pool.stop().await;
}

#[tokio::test]
async fn http_server_refuses_a_wrong_or_missing_token() {
    let srv = HttpToolServer::start(Some("right-token-123"));
    let pool = Pool::start(
        vec![
            http("wrong", srv.port, Some("wrong-token-456")),
            http("missing", srv.port, None),
        ],
        fast(),
    );
    for name in ["wrong", "missing"] {
        let s = wait_for(&pool, name, "refused", Duration::from_secs(20), |s| {
            s.state == ConnectionState::Down && s.last_error.is_some()
        })
        .await;
        let err = s.last_error.unwrap();
        assert!(
            err.contains("401") || err.to_lowercase().contains("auth"),
            "{name}: {err}"
        );
        assert!(!err.contains("wrong-token-456"), "token echoed: {err}");
        assert_eq!(s.connects, 0, "{name} must never be up");
        assert!(matches!(
            pool.call_tool(name, "add", json!({"a": 1, "b": 2})).await,
            Err(McpClientError::NotConnected { .. })
        ));
    }
    let probed = probe(&http("wrong", srv.port, Some("wrong-token-456"))).await;
    assert!(
        matches!(probed, Err(McpClientError::Connect { .. })),
        "{probed:?}"
    );
    pool.stop().await;
}

// ---------------------------------------------------------------------------------------
// A server that dies mid-session

#[tokio::test]
async fn stdio_server_that_dies_fails_the_call_and_is_respawned() {
    let pool = Pool::start(
        vec![
            stdio_tools("dies", &[]),
            stdio_tools("dies-after-2", &["--die-after", "2"]),
        ],
        fast(),
    );
    wait_up(&pool, "dies").await;
    wait_up(&pool, "dies-after-2").await;

    // The `die` tool: the process exits without answering.
    let err = pool
        .call_tool("dies", "die", json!({}))
        .await
        .expect_err("a server that exits cannot answer");
    assert!(
        matches!(err, McpClientError::ConnectionLost { .. }),
        "{err:?}"
    );
    let back = wait_for(&pool, "dies", "respawned", Duration::from_secs(30), |s| {
        s.state == ConnectionState::Up && s.connects == 2
    })
    .await;
    assert!(back.reconnects >= 1, "{back:?}");
    let why = back.last_error.expect("the reason it went down is kept");
    assert!(why.contains("closed") || why.contains("failed"), "{why}");
    assert_add(&pool, "dies", 1, 1).await;

    // Dies on its second call, once per process.
    assert_add(&pool, "dies-after-2", 1, 2).await;
    let err = pool
        .call_tool("dies-after-2", "add", json!({"a": 1, "b": 2}))
        .await
        .expect_err("the second call kills the server");
    assert!(
        matches!(err, McpClientError::ConnectionLost { .. }),
        "{err:?}"
    );
    wait_for(
        &pool,
        "dies-after-2",
        "respawned",
        Duration::from_secs(30),
        |s| s.state == ConnectionState::Up && s.connects == 2,
    )
    .await;
    assert_add(&pool, "dies-after-2", 5, 5).await;
    pool.stop().await;
}

#[tokio::test]
async fn http_server_that_dies_goes_down_and_reconnects_once_restarted() {
    let mut srv = HttpToolServer::start(None);
    let pool = Pool::start(vec![http("web", srv.port, None)], fast());
    wait_up(&pool, "web").await;
    assert_add(&pool, "web", 1, 2).await;

    let err = pool
        .call_tool("web", "die", json!({}))
        .await
        .expect_err("a server that exits cannot answer");
    assert!(
        matches!(err, McpClientError::ConnectionLost { .. }),
        "{err:?}"
    );
    srv.wait_exit();

    // Down while the server is gone: calls fail at once, reconnects keep failing.
    let down = wait_for(&pool, "web", "down", Duration::from_secs(20), |s| {
        s.state == ConnectionState::Down
    })
    .await;
    assert!(down.last_error.is_some(), "{down:?}");
    assert!(matches!(
        pool.call_tool("web", "add", json!({"a": 1, "b": 2})).await,
        Err(McpClientError::NotConnected { .. })
    ));
    wait_for(&pool, "web", "retrying", Duration::from_secs(20), |s| {
        s.reconnects >= 2
    })
    .await;
    assert_eq!(pool.server("web").unwrap().connects, 1);

    // Back on the same port: the pool reconnects by itself.
    srv.spawn();
    let back = wait_for(&pool, "web", "reconnected", Duration::from_secs(30), |s| {
        s.state == ConnectionState::Up && s.connects == 2
    })
    .await;
    assert_eq!(back.tool_count, TOOLS.len());
    assert_add(&pool, "web", 3, 4).await;
    pool.stop().await;
}

#[tokio::test]
async fn a_killed_http_server_is_found_by_the_keepalive_without_a_call() {
    let mut srv = HttpToolServer::start(None);
    let pool = Pool::start(vec![http("web", srv.port, None)], fast());
    wait_up(&pool, "web").await;
    srv.kill();
    let down = wait_for(&pool, "web", "down", Duration::from_secs(20), |s| {
        s.state != ConnectionState::Up
    })
    .await;
    let why = pool.server("web").unwrap().last_error.unwrap_or_default();
    // Found by the keepalive ping, or by rmcp's worker giving up on the event stream.
    assert!(
        why.contains("ping") || why.contains("closed"),
        "{down:?} / {why}"
    );
    pool.stop().await;
}

// ---------------------------------------------------------------------------------------
// Servers that never answer initialize

#[tokio::test]
async fn a_silent_stdio_server_times_out_and_is_down() {
    let pool = Pool::start(vec![stdio_silent("silent")], fast());
    let s = wait_for(&pool, "silent", "timed out", Duration::from_secs(20), |s| {
        s.state == ConnectionState::Down && s.last_error.is_some()
    })
    .await;
    let why = s.last_error.unwrap();
    assert!(why.contains("did not answer within 1s"), "{why}");
    assert_eq!(s.connects, 0);
    // It keeps trying, and keeps timing out.
    wait_for(&pool, "silent", "retried", Duration::from_secs(20), |s| {
        s.reconnects >= 1 && s.state == ConnectionState::Down
    })
    .await;
    assert!(matches!(
        pool.tools("silent"),
        Err(McpClientError::NotConnected { .. })
    ));
    pool.stop().await;
}

/// A TCP listener that accepts connections and never sends a byte.
async fn silent_http_listener() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (port, task)
}

#[tokio::test]
async fn a_silent_http_listener_times_out_and_is_down() {
    let (port, listener) = silent_http_listener().await;
    let mut silent = http("silent-http", port, None);
    silent.init_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let probed = probe(&silent).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    match probed {
        Err(McpClientError::Connect { detail, .. }) => {
            assert!(detail.contains("did not answer within 1s"), "{detail}");
        }
        other => panic!("expected a connect timeout, got {other:?}"),
    }
    let pool = Pool::start(vec![silent], fast());
    let s = wait_for(
        &pool,
        "silent-http",
        "timed out",
        Duration::from_secs(20),
        |s| s.state == ConnectionState::Down && s.last_error.is_some(),
    )
    .await;
    assert!(
        s.last_error.unwrap().contains("did not answer within 1s"),
        "timeout expected"
    );
    pool.stop().await;
    listener.abort();
}

#[tokio::test]
async fn probe_lists_the_tools_of_a_healthy_server() {
    let tools = probe(&stdio_tools("tools", &[])).await.expect("probe");
    let mut names: Vec<_> = tools.into_iter().map(|t| t.name).collect();
    names.sort();
    assert_eq!(names, TOOLS);
    let missing = server(
        "missing",
        McpTransport::Stdio {
            program: "/nonexistent/mcp-server".to_owned(),
            args: vec![],
        },
    );
    match probe(&missing).await {
        Err(McpClientError::Connect { detail, .. }) => {
            assert!(detail.contains("cannot start"), "{detail}");
        }
        other => panic!("expected a start failure, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Readiness through the `mcp-clients` service

struct Hosted {
    readiness: Readiness,
    shutdown: Shutdown,
}

async fn host(servers: Vec<McpServer>) -> Hosted {
    let readiness = Readiness::new();
    // Another component that is ready, as in a real process: readiness then hangs on the
    // MCP components alone.
    let other = readiness.component("startup");
    other.set_ready();
    std::mem::forget(other);
    let shutdown = Shutdown::new();
    let bus: Arc<dyn gekko_bus::Bus> = Arc::new(gekko_bus::MemoryBus::new());
    let ctx = ServiceCtx::new(bus, readiness.clone(), &shutdown);
    let settings = McpClientsSettings {
        servers,
        options: fast(),
    };
    let started = McpClientsService::start(settings, &ctx)
        .await
        .expect("mcp-clients starts");
    // Its gRPC registration and provided pool are the host's business; readiness is
    // what these tests look at.
    drop(started);
    Hosted {
        readiness,
        shutdown,
    }
}

async fn wait_ready(readiness: &Readiness, want: bool, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while readiness.is_ready() != want {
        assert!(
            Instant::now() < deadline,
            "readiness is not {want} within {timeout:?}: {:?}",
            readiness.report()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_required_server_that_is_down_keeps_gekko_not_ready_and_an_optional_one_does_not() {
    // Optional and silent: ready as soon as nothing else is waiting.
    let mut required = stdio_tools("tools", &[]);
    required.required = true;
    let optional = stdio_silent("silent-optional");
    let hosted = host(vec![required, optional]).await;
    wait_ready(&hosted.readiness, true, Duration::from_secs(30)).await;
    let report = hosted.readiness.report();
    assert!(
        report
            .iter()
            .any(|c| c.name == readiness_component("tools") && c.ready),
        "{report:?}"
    );
    assert!(
        !report.iter().any(|c| c.name.contains("silent-optional")),
        "an optional server registers no readiness component: {report:?}"
    );
    // Still ready after the optional server's first timeout.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        hosted.readiness.is_ready(),
        "{:?}",
        hosted.readiness.report()
    );
    hosted.shutdown.trigger();

    // Required and silent: never ready, and the report names the server and why.
    let mut silent = stdio_silent("silent-required");
    silent.required = true;
    let hosted = host(vec![silent]).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            !hosted.readiness.is_ready(),
            "{:?}",
            hosted.readiness.report()
        );
        let report = hosted.readiness.report();
        let component = report
            .iter()
            .find(|c| c.name == readiness_component("silent-required"))
            .expect("a required server has a readiness component");
        if component.detail.contains("did not answer within 1s") {
            assert!(
                component.detail.contains("silent-required"),
                "{component:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{component:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hosted.shutdown.trigger();
}

#[tokio::test]
async fn a_required_http_server_that_dies_takes_readiness_down_until_it_is_back() {
    let mut srv = HttpToolServer::start(None);
    let mut web = http("web", srv.port, None);
    web.required = true;
    let hosted = host(vec![web]).await;
    wait_ready(&hosted.readiness, true, Duration::from_secs(30)).await;
    srv.kill();
    wait_ready(&hosted.readiness, false, Duration::from_secs(20)).await;
    let report = hosted.readiness.report();
    let c = report
        .iter()
        .find(|c| c.name == readiness_component("web"))
        .unwrap();
    assert!(c.detail.contains("required MCP server `web`"), "{c:?}");
    srv.spawn();
    wait_ready(&hosted.readiness, true, Duration::from_secs(30)).await;
    hosted.shutdown.trigger();
}

// ---------------------------------------------------------------------------------------
// McpService over real TCP gRPC

/// The status code of a call that must fail.
fn code<T: std::fmt::Debug>(r: Result<tonic::Response<T>, tonic::Status>) -> tonic::Code {
    match r {
        Ok(ok) => panic!("expected an error status, got {ok:?}"),
        Err(s) => s.code(),
    }
}

#[tokio::test]
async fn mcp_service_over_grpc_lists_servers_and_tools_and_calls_a_tool() {
    use gekko_proto::v1::mcp_service_client::McpServiceClient;
    use gekko_proto::v1::{
        CallMcpToolRequest, ListMcpServersRequest, ListMcpToolsRequest, McpConnectionState,
    };

    let pool = Pool::start(
        vec![stdio_tools("tools", &[]), stdio_silent("silent")],
        fast(),
    );
    wait_up(&pool, "tools").await;
    wait_for(&pool, "silent", "down", Duration::from_secs(20), |s| {
        s.state == ConnectionState::Down
    })
    .await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // A real audit trail on an in-process bus: every CallTool is recorded.
    let audit_dir =
        std::env::temp_dir().join(format!("gekko-mcp-client-audit-{}", std::process::id()));
    let bus: Arc<dyn gekko_bus::Bus> = Arc::new(gekko_bus::MemoryBus::new());
    let audit_settings = gekko_config::AuditLogging {
        stream: "test:audit".to_owned(),
        key: Some(SecretString::from("11".repeat(32))),
        archive_dir: audit_dir.clone(),
        ..gekko_config::AuditLogging::default()
    };
    let audit = gekko_audit::AuditLog::open(Arc::clone(&bus), &audit_settings, "test")
        .await
        .expect("audit trail opens");
    let svc = McpGrpc::new(pool.pool.clone(), audit.clone()).server();
    let stop = CancellationToken::new();
    let server = tokio::spawn({
        let stop = stop.clone();
        async move {
            tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    stop.cancelled_owned(),
                )
                .await
        }
    });
    let mut client = McpServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect over TCP");

    let servers = client
        .list_servers(ListMcpServersRequest {})
        .await
        .unwrap()
        .into_inner()
        .servers;
    assert_eq!(servers.len(), 2);
    assert_eq!(servers[0].name, "tools");
    assert_eq!(servers[0].state(), McpConnectionState::Up);
    assert_eq!(servers[0].tool_count, 5);
    assert_eq!(servers[0].circuit, "closed");
    assert_eq!(servers[1].name, "silent");
    // Down, or already connecting again after its 50 ms backoff: never up.
    assert!(
        matches!(
            servers[1].state(),
            McpConnectionState::Down | McpConnectionState::Connecting
        ),
        "{:?}",
        servers[1]
    );
    assert!(
        servers[1].last_error.contains("did not answer"),
        "{:?}",
        servers[1]
    );

    let tools = client
        .list_tools(ListMcpToolsRequest {
            server: "tools".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .tools;
    let add = tools.iter().find(|t| t.name == "add").expect("add listed");
    let schema: serde_json::Value = serde_json::from_str(&add.input_schema_json).unwrap();
    assert_eq!(schema["type"], "object");

    let answer = client
        .call_tool(CallMcpToolRequest {
            server: "tools".into(),
            tool: "add".into(),
            arguments_json: r#"{"a": 19, "b": 23}"#.into(),
            timeout_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!answer.is_error);
    assert_eq!(answer.text, "42");
    let structured: serde_json::Value =
        serde_json::from_str(&answer.structured_content_json).unwrap();
    assert_eq!(structured, json!({"result": 42}));
    let content: serde_json::Value = serde_json::from_str(&answer.content_json).unwrap();
    assert_eq!(content[0]["type"], "text");

    let echoed = client
        .call_tool(CallMcpToolRequest {
            server: "tools".into(),
            tool: "echo".into(),
            arguments_json: r#"{"text": "s3cr3t-argument-value"}"#.into(),
            timeout_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(echoed.text, "s3cr3t-argument-value");

    let failed = client
        .call_tool(CallMcpToolRequest {
            server: "tools".into(),
            tool: "fail".into(),
            arguments_json: r#"{"reason": "no"}"#.into(),
            timeout_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(failed.is_error);

    let call = |server: &str, tool: &str, args: &str| CallMcpToolRequest {
        server: server.into(),
        tool: tool.into(),
        arguments_json: args.into(),
        timeout_ms: 0,
    };
    assert_eq!(
        code(client.call_tool(call("nobody", "add", "{}")).await),
        tonic::Code::NotFound
    );
    assert_eq!(
        code(client.call_tool(call("tools", "nope", "{}")).await),
        tonic::Code::NotFound
    );
    assert_eq!(
        code(client.call_tool(call("tools", "add", "[1,2]")).await),
        tonic::Code::InvalidArgument
    );
    assert_eq!(
        code(client.call_tool(call("tools", "add", "{not json")).await),
        tonic::Code::InvalidArgument
    );
    assert_eq!(
        code(client.call_tool(call("silent", "add", "{}")).await),
        tonic::Code::Unavailable
    );
    assert_eq!(
        code(
            client
                .list_tools(ListMcpToolsRequest {
                    server: "silent".into()
                })
                .await
        ),
        tonic::Code::Unavailable
    );
    let mut slow = call("tools", "slow", r#"{"seconds": 5}"#);
    slow.timeout_ms = 200;
    assert_eq!(
        code(client.call_tool(slow).await),
        tonic::Code::DeadlineExceeded
    );

    // The audit trail: one verified entry per CallTool, with server, tool, caller and
    // outcome, and the argument names but never their values.
    audit.flush().await;
    let mut lines = Vec::new();
    let (report, _) = gekko_audit::export(
        &*bus,
        &gekko_audit::AuditKey::from_secret(&[0x11; 32]),
        "test:audit",
        &audit_dir,
        0,
        &mut lines,
    )
    .await
    .expect("export the audit trail");
    assert!(report.is_intact(), "{report:?}");
    let text = String::from_utf8(lines).unwrap();
    let calls: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["action"] == "mcp_client.call_tool")
        .collect();
    assert_eq!(calls.len(), 9, "{text}");
    let add = &calls[0];
    assert_eq!(add["outcome"], "ok");
    assert_eq!(add["detail"]["server"], "tools");
    assert_eq!(add["detail"]["tool"], "add");
    assert_eq!(add["detail"]["argument_names"], json!(["a", "b"]));
    assert!(add["detail"]["caller"].is_string());
    assert!(calls.iter().any(|e| e["outcome"] == "tool_error"));
    assert!(calls.iter().any(|e| e["outcome"] == "not_connected"));
    assert!(calls.iter().any(|e| e["outcome"] == "timeout"));
    assert!(
        !text.contains("s3cr3t-argument-value"),
        "argument value audited: {text}"
    );

    stop.cancel();
    let _ = server.await;
    pool.stop().await;
    let _ = std::fs::remove_dir_all(&audit_dir);
}

// ---------------------------------------------------------------------------------------
// Metrics

/// The value of one sample line of the Prometheus text, e.g. `name{server="x"}`, as a
/// whole number (every series checked here counts or flags).
fn sample(text: &str, series: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.trim().parse().ok())
    })
}

#[tokio::test]
async fn metrics_follow_the_connection_and_the_calls() {
    let prometheus = gekko_runtime::install_prometheus().expect("the recorder installs");
    gekko_mcp_client::metrics::describe();
    let pool = Pool::start(vec![stdio_tools("metered", &[])], fast());
    wait_up(&pool, "metered").await;
    assert_add(&pool, "metered", 1, 2).await;
    let failed = pool
        .call_tool("metered", "fail", json!({"reason": "x"}))
        .await
        .unwrap();
    assert!(failed.is_error);
    assert!(pool.call_tool("metered", "die", json!({})).await.is_err());
    wait_for(
        &pool,
        "metered",
        "respawned",
        Duration::from_secs(30),
        |s| s.state == ConnectionState::Up && s.connects == 2,
    )
    .await;
    let text = prometheus.render();
    let get = |series: &str| {
        sample(&text, series).unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
    };
    assert_eq!(get(r#"gekko_mcp_client_up{server="metered"}"#), 1);
    assert_eq!(get(r#"gekko_mcp_client_tools{server="metered"}"#), 5);
    assert!(get(r#"gekko_mcp_client_reconnects_total{server="metered"}"#) >= 1);
    for outcome in ["ok", "tool_error", "connection_lost"] {
        let series =
            format!(r#"gekko_mcp_client_calls_total{{server="metered",outcome="{outcome}"}}"#);
        assert_eq!(get(&series), 1, "{series}");
    }
    assert_eq!(
        get(r#"gekko_mcp_client_call_duration_seconds_count{server="metered"}"#),
        3
    );
    assert_eq!(
        get(r#"gekko_mcp_client_circuit_state{server="metered"}"#),
        0
    );
    pool.stop().await;
}

// ---------------------------------------------------------------------------------------
// McpService behind gekko's own gRPC server and access control

fn access_control(config: &str) -> gekko_config::AccessControl {
    let vars =
        std::collections::BTreeMap::from([("ACCESS_CONTROL_CONFIG".to_owned(), config.to_owned())]);
    match gekko_config::from_vars(&vars) {
        Ok(l) => l.config.access_control,
        Err(e) => panic!("bad test config: {e}"),
    }
}

fn bearer<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii token"),
    );
    r
}

#[tokio::test]
async fn mcp_service_roles_through_the_runtime_grpc_server() {
    use gekko_proto::v1::mcp_service_client::McpServiceClient;
    use gekko_proto::v1::{CallMcpToolRequest, ListMcpServersRequest};
    use gekko_security::{AuthLayer, AuthPolicy, Role, generate_token};
    use secrecy::ExposeSecret as _;

    let pool = Pool::start(vec![stdio_tools("tools", &[])], fast());
    wait_up(&pool, "tools").await;
    let viewer = generate_token("dash", Role::Viewer, false);
    let trader = generate_token("bot", Role::Trader, false);
    let tokens = format!("tokens={};{}", viewer.config_entry(), trader.config_entry());
    let viewer = viewer.token.expose_secret().to_owned();
    let trader = trader.token.expose_secret().to_owned();
    let add = || CallMcpToolRequest {
        server: "tools".into(),
        tool: "add".into(),
        arguments_json: r#"{"a": 1, "b": 1}"#.into(),
        timeout_ms: 0,
    };

    for read_only in [false, true] {
        let config = format!("{tokens},read_only={read_only}");
        let policy = AuthPolicy::from_config(&access_control(&config)).expect("policy");
        let readiness = Readiness::new();
        let ready = readiness.component("test");
        ready.set_ready();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let served = tokio::spawn(
            gekko_runtime::GrpcServer::new(readiness)
                .with_auth(AuthLayer::new(policy))
                .add_service(
                    McpGrpc::new(pool.pool.clone(), gekko_audit::AuditLog::disabled()).server(),
                )
                .serve(listener, stop.clone()),
        );
        let mut client = McpServiceClient::connect(format!("http://{addr}"))
            .await
            .expect("connect over TCP");

        assert_eq!(
            code(client.list_servers(ListMcpServersRequest {}).await),
            tonic::Code::Unauthenticated
        );
        let servers = client
            .list_servers(bearer(&viewer, ListMcpServersRequest {}))
            .await
            .expect("a viewer lists the servers")
            .into_inner()
            .servers;
        assert_eq!(servers.len(), 1);
        assert_eq!(
            code(client.call_tool(bearer(&viewer, add())).await),
            tonic::Code::PermissionDenied,
            "a viewer may not call a tool"
        );
        let by_trader = client.call_tool(bearer(&trader, add())).await;
        if read_only {
            assert_eq!(
                code(by_trader),
                tonic::Code::PermissionDenied,
                "read_only refuses CallTool"
            );
        } else {
            assert_eq!(
                by_trader.expect("a trader calls a tool").into_inner().text,
                "2"
            );
        }
        stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), served).await;
        drop(ready);
    }
    pool.stop().await;
}

// ---------------------------------------------------------------------------------------
// The connect circuit breaker against a real server that dies

/// A listener on `port` that accepts connections and never answers (so a connect attempt
/// lasts its whole `init_timeout`, long enough to see the half-open probe).
async fn silent_listener_on(port: u16) -> tokio::task::JoinHandle<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let listener = loop {
        match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => break l,
            Err(e) => {
                assert!(Instant::now() < deadline, "cannot bind {port} again: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_after_failed_reconnects_pauses_them_and_half_opens_after_its_cooldown() {
    let prometheus = gekko_runtime::install_prometheus().expect("the recorder installs");
    gekko_mcp_client::metrics::describe();
    let circuit_metric = || {
        sample(
            &prometheus.render(),
            r#"gekko_mcp_client_circuit_state{server="breaker"}"#,
        )
    };
    let mut web = HttpToolServer::start(None);
    let mut server = http("breaker", web.port, None);
    server.init_timeout = Duration::from_secs(1);
    let cooldown = Duration::from_secs(3);
    let options = PoolOptions {
        breaker_threshold: 2,
        breaker_cooldown: cooldown,
        ..fast()
    };
    let pool = Pool::start(vec![server], options);
    let up = wait_up(&pool, "breaker").await;
    assert_eq!(up.circuit, CircuitState::Closed);
    assert_eq!(circuit_metric(), Some(0));

    // The server dies; its port now answers nothing, so each reconnect times out.
    web.kill();
    let silent = silent_listener_on(web.port).await;
    let open = wait_for(&pool, "breaker", "open", Duration::from_secs(20), |s| {
        s.circuit == CircuitState::Open
    })
    .await;
    assert_eq!(open.state, ConnectionState::Down, "{open:?}");
    assert!(
        open.last_error
            .as_deref()
            .is_some_and(|e| e.contains("did not answer within 1s")),
        "{open:?}"
    );
    assert_eq!(circuit_metric(), Some(2), "open is 2");
    // No reconnect attempt while the breaker is open.
    let reconnects = open.reconnects;
    tokio::time::sleep(cooldown / 2).await;
    let paused = pool.server("breaker").unwrap();
    assert_eq!(paused.reconnects, reconnects, "{paused:?}");
    assert_eq!(paused.circuit, CircuitState::Open, "{paused:?}");

    // After the cooldown: one probe (half-open), which fails and opens it again.
    let probing = wait_for(
        &pool,
        "breaker",
        "half-open",
        cooldown + Duration::from_secs(5),
        |s| s.circuit == CircuitState::HalfOpen,
    )
    .await;
    assert_eq!(probing.reconnects, reconnects + 1, "exactly one probe");
    // The gauge follows the status update; the probe lasts its 1 s init_timeout.
    let deadline = Instant::now() + Duration::from_millis(900);
    while circuit_metric() != Some(1) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(circuit_metric(), Some(1), "half-open is 1");
    let reopened = wait_for(
        &pool,
        "breaker",
        "open again",
        Duration::from_secs(10),
        |s| s.circuit == CircuitState::Open,
    )
    .await;
    assert_eq!(reopened.reconnects, reconnects + 1, "{reopened:?}");

    // The server is back: the next probe connects and closes the breaker.
    silent.abort();
    let _ = silent.await;
    web.spawn();
    let back = wait_for(
        &pool,
        "breaker",
        "up again",
        cooldown + Duration::from_secs(20),
        |s| s.state == ConnectionState::Up,
    )
    .await;
    assert_eq!(back.circuit, CircuitState::Closed, "{back:?}");
    assert_eq!(back.connects, 2, "{back:?}");
    assert_eq!(circuit_metric(), Some(0));
    assert_add(&pool, "breaker", 20, 22).await;
    pool.stop().await;
}
