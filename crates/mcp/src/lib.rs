//! gekko as a Model Context Protocol server: trading tools over stdio and streamable HTTP,
//! behind a server-side risk guard.
//!
//! - [`server`]: the `ServerHandler` (tools, one call path, audit, metrics);
//! - [`guard`]: the `MCP_SETTINGS` rules every state-changing tool passes first;
//! - [`args`]: strict argument parsing (sizes, types, unknown fields, decimal strings);
//! - [`backend`]: gRPC clients of gekko, the caller's token on every call: one address
//!   (`gekko up`) or routed per venue (separate gateway processes, as in compose);
//! - [`audit`]: the `mcp.tool_call` audit record, for both writers;
//! - [`http`]: the `mcp` service of `gekko up` (`/mcp`, bearer tokens);
//! - [`serve_stdio`]: what `gekko mcp` runs.
//!
//! Both transports are gRPC clients of a running gekko, so the gRPC `AuthLayer` and the
//! gateway's pre-trade checks apply to an MCP agent exactly as to any other client; the
//! guard adds the MCP rules on top. See `docs/mcp.md`.

pub mod args;
pub mod audit;
pub mod backend;
pub mod guard;
pub mod http;
pub mod server;

pub use backend::{Backend, RouteError, Token};
pub use guard::{Guard, Refusal};
pub use http::{McpEndpoint, McpHttpService, McpRoutedService};
pub use server::{GekkoMcp, Transport, tools};

use rmcp::ServiceExt as _;

/// `gekko mcp` failed to serve.
#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    /// The initialize handshake (or discovery) did not complete.
    #[error("the MCP session did not start: {0}")]
    Start(String),
    /// The session ended with an error.
    #[error("the MCP session failed: {0}")]
    Session(String),
}

/// Serves MCP on this process's stdin/stdout until the client closes stdin.
///
/// Every call goes to gekko over `backend` with `token`; `settings` is the guard. Logs
/// must go to stderr: stdout carries only protocol messages.
///
/// # Errors
/// [`StdioError`] when the session cannot start or fails.
pub async fn serve_stdio(
    backend: Backend,
    settings: gekko_config::McpSettings,
    token: Token,
) -> Result<(), StdioError> {
    server::describe_metrics();
    let handler = GekkoMcp::stdio(backend, Guard::new(settings), token);
    let running = handler
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| StdioError::Start(e.to_string()))?;
    running
        .waiting()
        .await
        .map(|_| ())
        .map_err(|e| StdioError::Session(e.to_string()))
}
