//! What a pool call can fail with.
//!
//! The variants keep apart the cases a caller treats differently: a name that does not
//! exist (a caller's mistake, never worth retrying), a server that is not connected right
//! now (retry later; the pool is already reconnecting), a call whose fate is unknown (the
//! connection broke or the deadline passed while the tool ran: an external tool may have
//! acted, so it is *not* safe to resend blindly), and the server answering with a
//! JSON-RPC error (it is alive and refused the request).
//!
//! A tool that runs and reports a failure (`isError: true`) is not an error here: it is a
//! [`ToolOutcome`](crate::ToolOutcome) with `is_error` set, so the caller (often an LLM)
//! can read the message and correct itself, as the MCP specification intends.

use std::time::Duration;

use crate::pool::ConnectionState;

/// A failed [`McpPool`](crate::McpPool) call or [`probe`](crate::probe).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum McpClientError {
    /// No server of that name is configured in `MCP_SERVERS`.
    #[error("no MCP server `{server}` is configured (MCP_SERVERS)")]
    UnknownServer {
        /// The name asked for.
        server: String,
    },
    /// The server is configured but its connection is not up; nothing was sent.
    #[error("MCP server `{server}` is {state}{}", last_error.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    NotConnected {
        /// The server.
        server: String,
        /// Its connection's state.
        state: ConnectionState,
        /// Why it is down, when known.
        last_error: Option<String>,
    },
    /// The server does not list a tool of that name; nothing was sent.
    #[error("MCP server `{server}` has no tool `{tool}`")]
    UnknownTool {
        /// The server.
        server: String,
        /// The tool asked for.
        tool: String,
    },
    /// The arguments are not a JSON object; nothing was sent.
    #[error("invalid tool arguments: {reason}")]
    InvalidArguments {
        /// What is wrong.
        reason: String,
    },
    /// The call was sent and no answer came within the deadline. The tool may still have
    /// run (the server is told to cancel it).
    #[error(
        "MCP server `{server}`: tool `{tool}` did not answer within {after:?}; it may still have run"
    )]
    Timeout {
        /// The server.
        server: String,
        /// The tool.
        tool: String,
        /// The deadline that passed.
        after: Duration,
    },
    /// The connection broke while the request was out (the server exited, the socket
    /// closed). Whether a tool ran is unknown. The connection is marked down and
    /// reconnects.
    #[error("MCP server `{server}`: connection lost: {detail}")]
    ConnectionLost {
        /// The server.
        server: String,
        /// What the transport said.
        detail: String,
    },
    /// The server answered with a JSON-RPC error (unknown tool on its side, invalid
    /// parameters, an internal error).
    #[error("MCP server `{server}` refused the request: {message} (JSON-RPC error {code})")]
    Protocol {
        /// The server.
        server: String,
        /// The JSON-RPC error code (-32602 invalid params, -32601 method not found, ...).
        code: i32,
        /// The server's message.
        message: String,
    },
    /// Connecting, `initialize` or the first `tools/list` failed ([`probe`](crate::probe)
    /// and the connection's last error).
    #[error("MCP server `{server}`: {detail}")]
    Connect {
        /// The server.
        server: String,
        /// What went wrong, e.g. `initialize timed out after 10s` or `HTTP 401`.
        detail: String,
    },
}

impl McpClientError {
    /// Whether trying the same call again later may succeed without anyone changing
    /// anything: a server that is down or a connection that failed. A [`Timeout`] or
    /// [`ConnectionLost`] is retryable only for a tool known to be safe to repeat,
    /// which the caller must decide; this says `false` for them.
    ///
    /// [`Timeout`]: McpClientError::Timeout
    /// [`ConnectionLost`]: McpClientError::ConnectionLost
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::NotConnected { .. } | Self::Connect { .. })
    }

    /// The metric outcome label of a failed call.
    pub(crate) fn outcome(&self) -> &'static str {
        match self {
            Self::UnknownServer { .. } | Self::UnknownTool { .. } => "unknown",
            Self::InvalidArguments { .. } => "invalid_arguments",
            Self::NotConnected { .. } => "not_connected",
            Self::Timeout { .. } => "timeout",
            Self::ConnectionLost { .. } | Self::Connect { .. } => "connection_lost",
            Self::Protocol { .. } => "protocol_error",
        }
    }
}
