//! One MCP server's connection: how it is opened (a child process or streamable HTTP,
//! `initialize`, the first `tools/list`, all within `init_timeout`) and the supervisor
//! task that keeps it open.
//!
//! The supervisor is a loop of *connect, hold, back off*. While it holds a session it
//! watches for three things, whichever comes first: shutdown, the session's transport
//! closing (a stdio server that exited), and a report from a call or a keepalive `ping`
//! that the transport failed (an HTTP server that is gone: its POSTs fail, but the
//! client's worker itself stays alive, so only a request can tell). Then the session is
//! closed (a child process is killed), the state goes down with the reason, and the loop
//! reconnects with [`gekko_core::backoff`], paced by the connect
//! [breaker](crate::breaker).
//!
//! Concurrency: the supervisor is the only writer of the connection's state (a
//! `watch` channel, so readers and the readiness task see every change without a lock)
//! and of the live session slot (a `std::sync::Mutex` held for a clone, never across an
//! `.await`). Calls clone the session's `Peer` out of the slot and run concurrently on
//! it; rmcp multiplexes them over the one transport.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gekko_config::{McpServer, McpTransport};
use gekko_core::backoff::Backoff;
use rmcp::model::{
    ClientCapabilities, ClientConfig, ClientRequest, Implementation, PingRequest, Tool,
};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{Peer, ServiceExt as _};
use secrecy::ExposeSecret as _;
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::breaker::ConnectBreaker;
use crate::error::McpClientError;
use crate::metrics;
use crate::pool::{ConnectionState, PoolOptions, ServerStatus, ToolInfo};

/// How often the supervisor looks at whether a held session's transport has closed. A
/// closed channel is a field read, so a short period costs nothing and a stdio server
/// that exits is seen within it.
const CLOSED_POLL: Duration = Duration::from_millis(200);
/// How long closing a session (and killing its child) may take before it is abandoned.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The open session of a connection: what calls use.
#[derive(Clone)]
pub(crate) struct Live {
    /// The rmcp peer; cheap to clone, and every clone sends over the same transport.
    pub(crate) peer: Peer<RoleClient>,
    /// The tools listed when the session opened.
    pub(crate) tools: Arc<[ToolInfo]>,
    /// Which session this is, so a late failure report from an earlier one is ignored.
    pub(crate) generation: u64,
}

/// One configured server: its config, its published state and its live session.
pub(crate) struct Connection {
    pub(crate) server: McpServer,
    status: watch::Sender<ServerStatus>,
    live: Mutex<Option<Live>>,
    /// A call or ping saw the transport of session `generation` fail, and why.
    lost: Mutex<Option<(u64, String)>>,
    lost_notify: Notify,
}

impl Connection {
    pub(crate) fn new(server: McpServer) -> Self {
        let status = ServerStatus {
            name: server.name.clone(),
            transport: server.describe(),
            required: server.required,
            state: ConnectionState::Connecting,
            last_error: None,
            tool_count: 0,
            connects: 0,
            reconnects: 0,
            circuit: crate::CircuitState::Closed,
            server_info: None,
        };
        ::metrics::gauge!(metrics::UP, "server" => server.name.clone()).set(0.0);
        ::metrics::gauge!(metrics::TOOLS, "server" => server.name.clone()).set(0.0);
        ::metrics::counter!(metrics::RECONNECTS, "server" => server.name.clone()).absolute(0);
        Self {
            server,
            status: watch::channel(status).0,
            live: Mutex::new(None),
            lost: Mutex::new(None),
            lost_notify: Notify::new(),
        }
    }

    /// The current state.
    pub(crate) fn status(&self) -> ServerStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every state change.
    pub(crate) fn subscribe(&self) -> watch::Receiver<ServerStatus> {
        self.status.subscribe()
    }

    /// The live session, if the connection is up.
    pub(crate) fn live(&self) -> Option<Live> {
        gekko_core::sync::lock(&self.live).clone()
    }

    /// Reports that session `generation`'s transport failed; the supervisor drops it and
    /// reconnects. A report about an older session is ignored by the supervisor.
    pub(crate) fn report_lost(&self, generation: u64, detail: String) {
        *gekko_core::sync::lock(&self.lost) = Some((generation, detail));
        // `notify_one` keeps a permit when the supervisor is not waiting yet (it may be
        // in the middle of a ping), so the report is never missed.
        self.lost_notify.notify_one();
    }

    fn update(&self, change: impl FnOnce(&mut ServerStatus)) {
        self.status.send_modify(change);
    }
}

/// Runs the supervisor of `conn` until `cancel`: connect, hold, back off, repeat.
pub(crate) async fn supervise(
    conn: Arc<Connection>,
    options: PoolOptions,
    tracker: TaskTracker,
    cancel: CancellationToken,
) {
    let name = conn.server.name.clone();
    let mut backoff = Backoff::new(options.backoff);
    let mut breaker = ConnectBreaker::new(options.breaker_threshold, options.breaker_cooldown);
    let mut generation = 0u64;
    let mut first = true;
    loop {
        if !first {
            ::metrics::counter!(metrics::RECONNECTS, "server" => name.clone()).increment(1);
            conn.update(|s| s.reconnects += 1);
        }
        first = false;
        breaker.attempt();
        let circuit = breaker.state();
        conn.update(|s| {
            s.state = ConnectionState::Connecting;
            s.circuit = circuit;
        });
        publish_circuit(&name, circuit);
        let attempt = tokio::select! {
            r = open(&conn.server, &tracker) => r,
            () = cancel.cancelled() => break,
        };
        let pause = match attempt {
            Ok(session) => {
                generation += 1;
                backoff.reset();
                breaker.success();
                let circuit = breaker.state();
                conn.update(|s| s.circuit = circuit);
                publish_circuit(&name, circuit);
                let reason = hold(&conn, session, generation, &options, &cancel).await;
                let Some(reason) = reason else { break };
                tracing::warn!(server = %name, required = conn.server.required, error = %reason, "MCP server connection lost; reconnecting");
                conn.update(|s| {
                    s.state = ConnectionState::Down;
                    s.last_error = Some(reason);
                });
                backoff.next_delay()
            }
            Err(e) => {
                let opened = breaker.failure();
                let circuit = breaker.state();
                publish_circuit(&name, circuit);
                let detail = e.to_string();
                let delay = opened.unwrap_or_else(|| backoff.next_delay());
                if conn.server.required {
                    tracing::warn!(server = %name, error = %detail, retry_in = ?delay, "required MCP server is down");
                } else {
                    tracing::warn!(server = %name, error = %detail, retry_in = ?delay, "optional MCP server is down (gekko stays ready)");
                }
                conn.update(|s| {
                    s.state = ConnectionState::Down;
                    s.last_error = Some(detail);
                    s.circuit = circuit;
                });
                delay
            }
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = cancel.cancelled() => break,
        }
    }
    *gekko_core::sync::lock(&conn.live) = None;
    ::metrics::gauge!(metrics::UP, "server" => name).set(0.0);
    conn.update(|s| {
        s.state = ConnectionState::Down;
        s.last_error = Some("stopped".to_owned());
    });
}

fn publish_circuit(name: &str, state: crate::CircuitState) {
    ::metrics::gauge!(metrics::CIRCUIT, "server" => name.to_owned()).set(state.as_metric());
}

/// Holds an open session until shutdown (`None`) or until it is lost (`Some(why)`), then
/// closes it.
async fn hold(
    conn: &Connection,
    session: Session,
    generation: u64,
    options: &PoolOptions,
    cancel: &CancellationToken,
) -> Option<String> {
    let Session {
        mut running,
        tools,
        server_info,
    } = session;
    let name = conn.server.name.clone();
    let peer = running.peer().clone();
    let count = tools.len();
    *gekko_core::sync::lock(&conn.live) = Some(Live {
        peer: peer.clone(),
        tools: tools.into(),
        generation,
    });
    ::metrics::gauge!(metrics::UP, "server" => name.clone()).set(1.0);
    ::metrics::gauge!(metrics::TOOLS, "server" => name.clone())
        .set(f64::from(u32::try_from(count).unwrap_or(u32::MAX)));
    tracing::info!(server = %name, tools = count, peer = server_info.as_deref().unwrap_or("?"), "MCP server connected");
    conn.update(|s| {
        s.state = ConnectionState::Up;
        s.tool_count = count;
        s.connects += 1;
        s.server_info = server_info;
    });
    let mut keepalive = tokio::time::interval(options.keepalive);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    keepalive.reset();
    let mut closed = tokio::time::interval(CLOSED_POLL);
    let reason = loop {
        tokio::select! {
            () = cancel.cancelled() => break None,
            () = conn.lost_notify.notified() => {
                let report = gekko_core::sync::lock(&conn.lost).take();
                match report {
                    Some((g, detail)) if g == generation => break Some(detail),
                    _ => {}
                }
            }
            _ = closed.tick() => {
                if peer.is_transport_closed() {
                    break Some("the server closed the connection".to_owned());
                }
            }
            _ = keepalive.tick() => {
                if let Err(e) = ping(&peer, options.ping_timeout).await {
                    break Some(e);
                }
            }
        }
    };
    *gekko_core::sync::lock(&conn.live) = None;
    ::metrics::gauge!(metrics::UP, "server" => name).set(0.0);
    // Closing kills a child process; a server that hangs on close is abandoned after
    // the grace period (the child is killed when the transport drops anyway).
    let _closed = running.close_with_timeout(CLOSE_GRACE).await;
    reason
}

/// A `ping` with a deadline; the error says why the server is considered gone.
async fn ping(peer: &Peer<RoleClient>, timeout: Duration) -> Result<(), String> {
    let request = ClientRequest::PingRequest(PingRequest {
        method: Default::default(),
        extensions: Default::default(),
    });
    match tokio::time::timeout(timeout, peer.send_request(request)).await {
        Ok(Ok(_)) => Ok(()),
        // A JSON-RPC error answer still proves the server is there.
        Ok(Err(rmcp::ServiceError::McpError(_))) => Ok(()),
        Ok(Err(e)) => Err(format!("ping failed: {}", service_error(&e))),
        Err(_) => Err(format!(
            "ping did not answer within {}",
            gekko_config::parse::format_duration(timeout)
        )),
    }
}

/// An opened session: initialized and its tools listed.
pub(crate) struct Session {
    running: RunningService<RoleClient, ClientConfig>,
    tools: Vec<ToolInfo>,
    /// `name version` of the server, from its `initialize` answer.
    server_info: Option<String>,
}

impl Session {
    /// The tools the server listed.
    pub(crate) fn tools(&self) -> &[ToolInfo] {
        &self.tools
    }

    /// Closes the session (kills a child process).
    pub(crate) async fn close(mut self) {
        let _closed = self.running.close_with_timeout(CLOSE_GRACE).await;
    }
}

/// What gekko tells servers about itself in `initialize`.
fn client_info() -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("gekko", env!("CARGO_PKG_VERSION")),
    )
}

/// Opens a session to `server`: start the transport, `initialize`, list every tool, all
/// within the server's `init_timeout`. A stdio server's stderr lines are logged at debug
/// level by a task on `tracker`, which ends when the child does.
///
/// # Errors
/// [`McpClientError::Connect`] naming what failed: the program could not be started,
/// the transport failed (an HTTP error such as 401 for a refused token), `initialize` was
/// refused, or nothing answered within `init_timeout`.
pub(crate) async fn open(
    server: &McpServer,
    tracker: &TaskTracker,
) -> Result<Session, McpClientError> {
    let connect_error = |detail: String| McpClientError::Connect {
        server: server.name.clone(),
        detail: scrub(server, detail),
    };
    let work = async {
        let running =
            match &server.transport {
                McpTransport::Stdio { program, args } => {
                    let mut cmd = tokio::process::Command::new(program);
                    cmd.args(args);
                    // The child is an external program: it gets gekko's environment minus
                    // gekko's own variables, which hold venue keys and tokens.
                    for var in gekko_config::names::ALL {
                        cmd.env_remove(var);
                    }
                    for (old, _) in gekko_config::DEPRECATED_NAMES {
                        cmd.env_remove(old);
                    }
                    let (process, stderr) = TokioChildProcess::builder(cmd)
                        .stderr(Stdio::piped())
                        .spawn()
                        .map_err(|e| connect_error(format!("cannot start `{program}`: {e}")))?;
                    if let Some(stderr) = stderr {
                        let name = server.name.clone();
                        tracker.spawn(async move {
                            let mut lines = tokio::io::BufReader::new(stderr).lines();
                            while let Ok(Some(line)) = lines.next_line().await {
                                tracing::debug!(server = %name, "stderr: {line}");
                            }
                        });
                    }
                    client_info().serve(process).await.map_err(|e| {
                        connect_error(format!("initialize failed: {}", init_error(&e)))
                    })?
                }
                McpTransport::Http { url } => {
                    let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
                    if let Some(token) = &server.token {
                        config = config.auth_header(token.expose_secret());
                    }
                    let transport = StreamableHttpClientTransport::from_config(config);
                    client_info().serve(transport).await.map_err(|e| {
                        connect_error(format!("initialize failed: {}", init_error(&e)))
                    })?
                }
            };
        let server_info = running
            .peer_info()
            .and_then(|info| info.server_info.clone())
            .map(|i| format!("{} {}", i.name, i.version));
        let tools = running
            .list_all_tools()
            .await
            .map_err(|e| connect_error(format!("tools/list failed: {}", service_error(&e))))?;
        Ok(Session {
            running,
            tools: tools.into_iter().map(tool_info).collect(),
            server_info,
        })
    };
    match tokio::time::timeout(server.init_timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(connect_error(format!(
            "initialize did not answer within {} (init_timeout)",
            gekko_config::parse::format_duration(server.init_timeout)
        ))),
    }
}

/// An `initialize` failure in words: for a transport error, what was being done and the
/// transport's own error chain (not rmcp's generic type names).
fn init_error(e: &rmcp::service::ClientInitializeError) -> String {
    match e {
        rmcp::service::ClientInitializeError::TransportError { error, context } => {
            format!("{}: {context}", chain(error.error.as_ref()))
        }
        other => chain(other),
    }
}

/// A request failure in words: a transport error's own chain, else the error's.
pub(crate) fn service_error(e: &rmcp::ServiceError) -> String {
    match e {
        rmcp::ServiceError::TransportSend(dynamic) => chain(dynamic.error.as_ref()),
        other => chain(other),
    }
}

/// An error and its sources, `: `-joined.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Removes the server's token from a message, should a transport ever echo it.
pub(crate) fn scrub(server: &McpServer, message: String) -> String {
    match &server.token {
        Some(token) if !token.expose_secret().is_empty() => {
            message.replace(token.expose_secret(), gekko_config::REDACTED)
        }
        _ => message,
    }
}

fn tool_info(tool: Tool) -> ToolInfo {
    let annotations = tool.annotations.as_ref();
    ToolInfo {
        name: tool.name.to_string(),
        title: tool.title.clone(),
        description: tool.description.as_deref().map(str::to_owned),
        input_schema: serde_json::Value::Object((*tool.input_schema).clone()),
        output_schema: tool
            .output_schema
            .as_deref()
            .map(|s| serde_json::Value::Object(s.clone())),
        read_only: annotations.and_then(|a| a.read_only_hint),
        destructive: annotations.and_then(|a| a.destructive_hint),
    }
}
