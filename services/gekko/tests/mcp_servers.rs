//! `MCP_SERVERS` in the real `gekko` process: the MCP client connections in `gekko check`
//! and in the readiness of `gekko up` (paper mode), against small MCP servers written
//! with the official Python SDK (`crates/mcp-client/tests/servers/tool_server.py` over
//! stdio and over streamable HTTP, and `silent_stdio.py`, which never answers
//! `initialize`).
//!
//! The `gekko up` run is the issue's "Done means" sentence in one process: paper mode, the
//! MCP server over HTTP, the LLM row and readiness from a real `sim-llm` process, and the
//! MCP client rows, `/readyz` components and `McpService/ListServers` over gRPC. A
//! required server that dies (SIGKILL) makes `/readyz` 503 naming it, and ready again
//! once it is back; an optional server that is down only warns.

mod common;
#[path = "mcp/processes.rs"]
mod processes;
#[path = "mcp/support.rs"]
mod support;

use std::process::Output;
use std::time::{Duration, Instant};

use gekko_proto::v1 as pb;
use gekko_proto::v1::mcp_service_client::McpServiceClient;
use gekko_sim::llm::PAPER_KEY;
use processes::{HttpToolServer, SimLlm, mcp_test_server};
use support::{TRADER, VIEWER, python};

/// `stdio:` + the SDK venv's Python running a test server script with `args`.
fn stdio(script: &str, args: &str) -> String {
    format!(
        "stdio:{} {} {args}",
        python().display(),
        mcp_test_server(script).display()
    )
}

fn tools_stdio() -> String {
    stdio("tool_server.py", "--transport stdio")
}

fn silent_stdio() -> String {
    stdio("silent_stdio.py", "")
}

fn run_check(env: &[(&str, String)]) -> Output {
    let mut cmd = common::gekko(&["check"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("gekko check runs")
}

/// The row of `check` in `gekko check`'s table (or `gekko up`'s start-up output).
fn row<'a>(out: &'a str, check: &str) -> &'a str {
    let prefix = format!("{check} ");
    out.lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no `{check}` row in:\n{out}"))
}

#[test]
fn check_shows_one_row_per_mcp_server_pass_warn_or_fail() {
    // A healthy required server and a silent optional one.
    let servers = format!(
        "tools={};required;init_timeout=60s,silent={};optional;init_timeout=1s",
        tools_stdio(),
        silent_stdio()
    );
    let out = run_check(&[("MCP_SERVERS", servers)]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let tools = row(&stdout, "mcp tools");
    assert!(
        tools.contains("PASS") && tools.contains("ok: 5 tools"),
        "{tools}"
    );
    let silent = row(&stdout, "mcp silent");
    assert!(
        silent.contains("WARN") && silent.contains("optional"),
        "{silent}"
    );
    assert!(
        silent.contains("initialize"),
        "says what timed out: {silent}"
    );
    assert!(!stdout.contains(" FAIL "), "nothing fails:\n{stdout}");

    // The same silent server, required: its row fails and so does the check.
    let servers = format!(
        "tools={};required;init_timeout=60s,silent={};required;init_timeout=1s",
        tools_stdio(),
        silent_stdio()
    );
    let out = run_check(&[("MCP_SERVERS", servers)]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let silent = row(&stdout, "mcp silent");
    assert!(
        silent.contains("FAIL") && silent.contains("required: gekko stays not ready"),
        "{silent}"
    );
    assert!(row(&stdout, "mcp tools").contains("PASS"), "{stdout}");

    // An HTTP server that is not there at all.
    let port = gekko_testkit::free_port().unwrap();
    let out = run_check(&[(
        "MCP_SERVERS",
        format!("gone=http://127.0.0.1:{port}/mcp;required;init_timeout=1s"),
    )]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(row(&stdout, "mcp gone").contains("FAIL"), "{stdout}");
}

/// `/readyz`: the status code and body, once.
fn readyz(addr: &str) -> (u16, String) {
    common::http_get(addr, "/readyz").unwrap_or((0, String::new()))
}

/// Polls `/readyz` until `pred(code, body)`, or panics with the last answer.
fn wait_readyz(addr: &str, what: &str, timeout: Duration, pred: impl Fn(u16, &str) -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        let (code, body) = readyz(addr);
        if pred(code, &body) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz not {what} within {timeout:?}; last: {code} {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn bearer<T>(token: &str, msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

#[test]
fn gekko_up_reports_mcp_and_llm_connections_in_check_readyz_and_grpc() {
    let llm = SimLlm::start("127.0.0.1:0");
    let mut web = HttpToolServer::start(gekko_testkit::free_port().unwrap());
    let (http, grpc, mcp) = (
        gekko_testkit::free_port().unwrap(),
        gekko_testkit::free_port().unwrap(),
        gekko_testkit::free_port().unwrap(),
    );
    let dir = std::env::temp_dir().join(format!("gekko-mcp-servers-{}", std::process::id()));
    let servers = format!(
        "tools={};required;init_timeout=60s,web={};required;init_timeout=30s,silent={};optional;init_timeout=1s",
        tools_stdio(),
        web.url(),
        silent_stdio()
    );
    let mut cmd = common::gekko(&["up"]);
    cmd.env(
        "MONITORING_CONFIGURATIONS",
        common::monitoring(http, grpc, "json"),
    )
    .env(
        "CONTROLLER_SETTINGS",
        format!("reports_dir={}", dir.join("reports").display()),
    )
    .env(
        "AUDIT_LOGGING_SETTINGS",
        format!("archive_dir={}", dir.join("audit").display()),
    )
    .env(
        "ACCESS_CONTROL_CONFIG",
        format!(
            "tokens=mcp-bot:trader:{};mcp-watcher:viewer:{}",
            gekko_security::sha256_hex(TRADER),
            gekko_security::sha256_hex(VIEWER)
        ),
    )
    .env("MCP_SETTINGS", format!("http_addr=127.0.0.1:{mcp}"))
    .env("MCP_SERVERS", &servers)
    .env("OPENROUTER_API_KEY", PAPER_KEY)
    .env("OPENROUTER_BASE_URL", format!("{}/api/v1", llm.base))
    .env("LLM_MODELS", "analyst=openrouter:openai/gpt-4o-mini")
    .env("LLM_SETTINGS", "probe_interval=200ms,connect_timeout=300ms");
    let mut up = common::Up::start(cmd);

    // The start-up check table: one row per MCP server, and the LLM provider.
    let tools = up.wait_for_line("mcp tools ", Duration::from_secs(60));
    assert!(
        tools.contains("PASS") && tools.contains("ok: 5 tools"),
        "{tools}"
    );
    let web_row = up.wait_for_line("mcp web ", Duration::from_secs(10));
    assert!(
        web_row.contains("PASS") && web_row.contains("ok: 5 tools"),
        "{web_row}"
    );
    let silent = up.wait_for_line("mcp silent ", Duration::from_secs(10));
    assert!(
        silent.contains("WARN") && silent.contains("optional"),
        "{silent}"
    );
    let llm_row = up.wait_for_line("llm openrouter", Duration::from_secs(10));
    assert!(llm_row.contains("PASS"), "{llm_row}");
    up.wait_for_line("gekko up: mode=paper", Duration::from_secs(60));
    up.wait_for_line(
        &format!("gekko up: mcp=http://127.0.0.1:{mcp}/mcp"),
        Duration::from_secs(10),
    );

    // Ready: both required servers are components, the optional one is not, the LLM is.
    let addr = format!("127.0.0.1:{http}");
    // The Python servers may take a while to start on a loaded machine.
    wait_readyz(&addr, "200", Duration::from_secs(90), |code, _| code == 200);
    let (_, body) = readyz(&addr);
    for needle in ["mcp-client:tools", "mcp-client:web", "llm"] {
        assert!(body.contains(needle), "{needle} not in /readyz: {body}");
    }
    assert!(
        !body.contains("mcp-client:silent"),
        "an optional server is no readiness component: {body}"
    );
    // The MCP HTTP transport answers (401 without a token, so it is gekko's).
    let (code, _) = common::http_get(&format!("127.0.0.1:{mcp}"), "/mcp").unwrap_or_default();
    assert_eq!(code, 401, "gekko's MCP server on its own address");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let grpc_url = format!("http://127.0.0.1:{grpc}");
    let list = || {
        rt.block_on(async {
            let mut c = McpServiceClient::connect(grpc_url.clone())
                .await
                .expect("gRPC connects");
            c.list_servers(bearer(VIEWER, pb::ListMcpServersRequest {}))
                .await
                .expect("a viewer lists the servers")
                .into_inner()
                .servers
        })
    };
    let servers = list();
    let state = |name: &str| {
        let s = servers
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} not listed: {servers:?}"));
        (s.state(), s.required, s.tool_count)
    };
    assert_eq!(
        state("tools"),
        (pb::McpConnectionState::Up, true, 5),
        "{servers:?}"
    );
    assert_eq!(
        state("web"),
        (pb::McpConnectionState::Up, true, 5),
        "{servers:?}"
    );
    let (silent_state, silent_required, _) = state("silent");
    assert_ne!(silent_state, pb::McpConnectionState::Up, "{servers:?}");
    assert!(!silent_required);
    // A tool call through the pool reaches the HTTP server.
    let sum = rt.block_on(async {
        let mut c = McpServiceClient::connect(grpc_url.clone()).await.unwrap();
        c.call_tool(bearer(
            TRADER,
            pb::CallMcpToolRequest {
                server: "web".into(),
                tool: "add".into(),
                arguments_json: r#"{"a": 2, "b": 3}"#.into(),
                timeout_ms: 0,
            },
        ))
        .await
        .expect("add over MCP")
        .into_inner()
    });
    assert!(!sum.is_error && sum.content_json.contains('5'), "{sum:?}");
    // Closes the gRPC connections: an idle client left unpolled would hold gekko's
    // graceful shutdown until its grace period.
    drop(rt);

    // The required HTTP server dies: gekko is not ready, and /readyz names it.
    web.kill();
    wait_readyz(
        &addr,
        "503 naming web",
        Duration::from_secs(40),
        |code, body| code == 503 && body.contains("required MCP server `web` is down"),
    );
    let (_, body) = readyz(&addr);
    assert!(body.contains("mcp-client:web"), "{body}");
    let (_, metrics) = common::http_get(&addr, "/metrics").expect("/metrics");
    for needle in [
        "gekko_mcp_client_up{server=\"web\"} 0",
        "gekko_mcp_client_up{server=\"tools\"} 1",
        "gekko_mcp_client_up{server=\"silent\"} 0",
    ] {
        assert!(metrics.contains(needle), "{needle} not in /metrics");
    }

    // It comes back on the same port: ready again (within the default breaker's 60 s
    // cooldown, should five reconnects have failed meanwhile).
    let _web = HttpToolServer::start(web.port);
    wait_readyz(&addr, "ready again", Duration::from_secs(120), |code, _| {
        code == 200
    });

    let (code, lines) = up.terminate();
    assert_eq!(code, 0, "{}", lines.join("\n"));
    llm.kill();
    let _ = std::fs::remove_dir_all(&dir);
}
