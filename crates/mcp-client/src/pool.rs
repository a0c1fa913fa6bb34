//! [`McpPool`]: every configured MCP server's connection, and the calls other parts of
//! gekko make through them.
//!
//! The pool starts one supervisor task per server (see [`crate::connection`]) and never
//! blocks on a server: [`McpPool::start`] returns at once, each connection comes up on its
//! own, and a call to a server that is not up fails at once with
//! [`McpClientError::NotConnected`]. Callers see each connection's state (up, down,
//! connecting, the last error, the tool count) through [`McpPool::servers`] or, to follow
//! changes, [`McpPool::subscribe`].

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gekko_config::McpServer;
use gekko_core::backoff::BackoffConfig;
use rmcp::model::CallToolRequestParams;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::breaker::CircuitState;
use crate::connection::{self, Connection};
use crate::error::McpClientError;
use crate::metrics;

/// The state of one server's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// Starting the transport, `initialize` or the first `tools/list`.
    Connecting,
    /// Initialized, tools listed, answering pings.
    Up,
    /// Not connected; the supervisor retries after a backoff (or the breaker's cooldown).
    Down,
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectionState::Connecting => "connecting",
            ConnectionState::Up => "up",
            ConnectionState::Down => "down",
        })
    }
}

/// What the pool knows about one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerStatus {
    /// The configured name.
    pub name: String,
    /// `stdio:PROGRAM` or the URL, credentials redacted.
    pub transport: String,
    /// Whether gekko's readiness depends on it.
    pub required: bool,
    /// Up, down or connecting.
    pub state: ConnectionState,
    /// The last failure (of a connect, or what ended the last session); kept after a
    /// reconnect, so a connection that dropped and came back says why it dropped.
    pub last_error: Option<String>,
    /// Tools listed at the last successful connect.
    pub tool_count: usize,
    /// Successful connects so far.
    pub connects: u64,
    /// Connect attempts after a failure or a lost connection.
    pub reconnects: u64,
    /// The connect breaker.
    pub circuit: CircuitState,
    /// `name version` the server gave in `initialize`.
    pub server_info: Option<String>,
}

/// One tool a server lists.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolInfo {
    /// The tool's name, as `tools/call` takes it.
    pub name: String,
    /// A display title, if the server gives one.
    pub title: Option<String>,
    /// What the tool does.
    pub description: Option<String>,
    /// The JSON Schema of its arguments (an object schema).
    pub input_schema: serde_json::Value,
    /// The JSON Schema of its structured result, if declared.
    pub output_schema: Option<serde_json::Value>,
    /// The server's `readOnlyHint` (a hint from the server, not a guarantee).
    pub read_only: Option<bool>,
    /// The server's `destructiveHint` (a hint, not a guarantee).
    pub destructive: Option<bool>,
}

/// The answer of a tool call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolOutcome {
    /// The tool ran and reports a failure (`isError: true`); the content says why.
    pub is_error: bool,
    /// The content blocks as the server sent them (`{"type":"text","text":…}`, images,
    /// resource links, …).
    pub content: Vec<serde_json::Value>,
    /// The structured result, when the tool returns one.
    pub structured: Option<serde_json::Value>,
}

impl ToolOutcome {
    /// The text blocks of the content, joined with newlines.
    #[must_use]
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter(|b| b.get("type").and_then(serde_json::Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(serde_json::Value::as_str))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Tunables of the pool that are the same for every server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolOptions {
    /// Delays between reconnect attempts.
    pub backoff: BackoffConfig,
    /// Consecutive failed connects that open the breaker.
    pub breaker_threshold: u32,
    /// How long an open breaker waits before its probe.
    pub breaker_cooldown: Duration,
    /// How often an idle session is pinged to find a server that went away.
    pub keepalive: Duration,
    /// How long a ping may take before the session counts as lost.
    pub ping_timeout: Duration,
}

impl Default for PoolOptions {
    /// Backoff from 250 ms up to 30 s; the breaker opens after 5 failed connects for
    /// 60 s; a ping every 15 s, 5 s to answer.
    fn default() -> Self {
        Self {
            backoff: BackoffConfig::new(Duration::from_millis(250), Duration::from_secs(30)),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_mins(1),
            keepalive: Duration::from_secs(15),
            ping_timeout: Duration::from_secs(5),
        }
    }
}

/// Every configured MCP server's connection. Cheap to clone; clones share the
/// connections.
#[derive(Clone)]
pub struct McpPool {
    connections: Arc<[Arc<Connection>]>,
}

impl McpPool {
    /// Starts a connection per server, each kept open by a supervisor task on `tracker`
    /// until `cancel`. Returns at once; the connections come up on their own.
    #[must_use]
    pub fn start(
        servers: Vec<McpServer>,
        options: PoolOptions,
        tracker: &TaskTracker,
        cancel: &CancellationToken,
    ) -> Self {
        let connections: Arc<[Arc<Connection>]> = servers
            .into_iter()
            .map(|s| Arc::new(Connection::new(s)))
            .collect();
        for conn in connections.iter() {
            tracker.spawn(connection::supervise(
                Arc::clone(conn),
                options,
                tracker.clone(),
                cancel.clone(),
            ));
        }
        Self { connections }
    }

    /// Every server's state, in configuration order.
    #[must_use]
    pub fn servers(&self) -> Vec<ServerStatus> {
        self.connections.iter().map(|c| c.status()).collect()
    }

    /// One server's state.
    ///
    /// # Errors
    /// [`McpClientError::UnknownServer`] when no server has that name.
    pub fn server(&self, server: &str) -> Result<ServerStatus, McpClientError> {
        self.find(server).map(|c| c.status())
    }

    /// Follows one server's state: the receiver sees every change.
    ///
    /// # Errors
    /// [`McpClientError::UnknownServer`] when no server has that name.
    pub fn subscribe(&self, server: &str) -> Result<watch::Receiver<ServerStatus>, McpClientError> {
        self.find(server).map(|c| c.subscribe())
    }

    /// The tools of a connected server, as listed when its session opened.
    ///
    /// # Errors
    /// [`McpClientError::UnknownServer`], or [`McpClientError::NotConnected`] when the
    /// server is not up.
    pub fn tools(&self, server: &str) -> Result<Vec<ToolInfo>, McpClientError> {
        let conn = self.find(server)?;
        let live = conn.live().ok_or_else(|| not_connected(conn))?;
        Ok(live.tools.to_vec())
    }

    /// Calls `tool` on `server` with `arguments` (a JSON object, or `null` for none),
    /// waiting at most the server's `call_timeout`.
    ///
    /// # Errors
    /// See [`McpPool::call_tool_with_timeout`].
    pub async fn call_tool(
        &self,
        server: &str,
        tool: &str,
        arguments: serde_json::Value,
    ) -> Result<ToolOutcome, McpClientError> {
        self.call_tool_with_timeout(server, tool, arguments, None)
            .await
    }

    /// [`McpPool::call_tool`] with a deadline of `timeout` instead of the server's
    /// `call_timeout` (capped at it).
    ///
    /// A tool that runs and fails is `Ok` with [`ToolOutcome::is_error`] set.
    ///
    /// # Errors
    /// - nothing sent: [`UnknownServer`](McpClientError::UnknownServer),
    ///   [`InvalidArguments`](McpClientError::InvalidArguments) (not an object),
    ///   [`NotConnected`](McpClientError::NotConnected),
    ///   [`UnknownTool`](McpClientError::UnknownTool) (not in the server's list);
    /// - sent, outcome unknown: [`Timeout`](McpClientError::Timeout) (the server is told
    ///   to cancel), [`ConnectionLost`](McpClientError::ConnectionLost) (the connection
    ///   goes down and reconnects);
    /// - refused by the server: [`Protocol`](McpClientError::Protocol).
    pub async fn call_tool_with_timeout(
        &self,
        server: &str,
        tool: &str,
        arguments: serde_json::Value,
        timeout: Option<Duration>,
    ) -> Result<ToolOutcome, McpClientError> {
        let result = self.call(server, tool, arguments, timeout).await;
        if let Ok(conn) = self.find(server) {
            let outcome = match &result {
                Ok(o) if o.is_error => "tool_error",
                Ok(_) => "ok",
                Err(e) => e.outcome(),
            };
            ::metrics::counter!(metrics::CALLS, "server" => conn.server.name.clone(), "outcome" => outcome)
                .increment(1);
        }
        result
    }

    async fn call(
        &self,
        server: &str,
        tool: &str,
        arguments: serde_json::Value,
        timeout: Option<Duration>,
    ) -> Result<ToolOutcome, McpClientError> {
        let conn = self.find(server)?;
        let arguments = match arguments {
            serde_json::Value::Object(map) => Some(map),
            serde_json::Value::Null => None,
            other => {
                return Err(McpClientError::InvalidArguments {
                    reason: format!("expected a JSON object, got {}", json_kind(&other)),
                });
            }
        };
        let live = conn.live().ok_or_else(|| not_connected(conn))?;
        if !live.tools.iter().any(|t| t.name == tool) {
            return Err(McpClientError::UnknownTool {
                server: server.to_owned(),
                tool: tool.to_owned(),
            });
        }
        let deadline = timeout.map_or(conn.server.call_timeout, |t| {
            t.min(conn.server.call_timeout)
        });
        let mut params = CallToolRequestParams::new(tool.to_owned());
        params.arguments = arguments;
        let started = Instant::now();
        // Dropping the request on timeout makes rmcp send `notifications/cancelled`.
        let answer = tokio::time::timeout(deadline, live.peer.call_tool(params)).await;
        ::metrics::histogram!(metrics::CALL_SECONDS, "server" => conn.server.name.clone())
            .record(started.elapsed().as_secs_f64());
        let result = match answer {
            Err(_) => {
                return Err(McpClientError::Timeout {
                    server: server.to_owned(),
                    tool: tool.to_owned(),
                    after: deadline,
                });
            }
            Ok(result) => result,
        };
        match result {
            Ok(r) => Ok(ToolOutcome {
                is_error: r.is_error.unwrap_or(false),
                content: r
                    .content
                    .iter()
                    .map(|b| serde_json::to_value(b).unwrap_or(serde_json::Value::Null))
                    .collect(),
                structured: r.structured_content,
            }),
            Err(rmcp::ServiceError::McpError(e)) => Err(McpClientError::Protocol {
                server: server.to_owned(),
                code: e.code.0,
                message: connection::scrub(&conn.server, e.message.into_owned()),
            }),
            Err(rmcp::ServiceError::Timeout { timeout }) => Err(McpClientError::Timeout {
                server: server.to_owned(),
                tool: tool.to_owned(),
                after: timeout,
            }),
            Err(rmcp::ServiceError::UnexpectedResponse) => Err(McpClientError::Protocol {
                server: server.to_owned(),
                code: 0,
                message: "the answer to tools/call is not a tool result".to_owned(),
            }),
            Err(e) => {
                // The transport failed (closed, a POST that could not be sent): the
                // session is gone; the supervisor reconnects.
                let detail = connection::scrub(&conn.server, connection::service_error(&e));
                conn.report_lost(live.generation, format!("a tools/call failed: {detail}"));
                Err(McpClientError::ConnectionLost {
                    server: server.to_owned(),
                    detail,
                })
            }
        }
    }

    fn find(&self, server: &str) -> Result<&Connection, McpClientError> {
        self.connections
            .iter()
            .find(|c| c.server.name == server)
            .map(AsRef::as_ref)
            .ok_or_else(|| McpClientError::UnknownServer {
                server: server.to_owned(),
            })
    }
}

impl fmt::Debug for McpPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpPool")
            .field(
                "servers",
                &self
                    .connections
                    .iter()
                    .map(|c| (c.server.name.clone(), c.status().state))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn not_connected(conn: &Connection) -> McpClientError {
    let status = conn.status();
    McpClientError::NotConnected {
        server: status.name,
        // The slot is empty, so the connection is not usable even if the published state
        // has not caught up yet.
        state: if status.state == ConnectionState::Up {
            ConnectionState::Down
        } else {
            status.state
        },
        last_error: status.last_error,
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Connects to `server` once, initializes and lists its tools, then closes: what `gekko
/// check` reports for each server. Waits at most the server's `init_timeout`.
///
/// # Errors
/// [`McpClientError::Connect`] with what failed.
pub async fn probe(server: &McpServer) -> Result<Vec<ToolInfo>, McpClientError> {
    let tracker = TaskTracker::new();
    let session = connection::open(server, &tracker).await?;
    let tools = session.tools().to_vec();
    session.close().await;
    tracker.close();
    Ok(tools)
}
