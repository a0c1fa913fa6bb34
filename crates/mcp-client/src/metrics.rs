//! The metrics of the MCP client connections, one label set per configured server.

/// Gauge: 1 while the server's connection is up, else 0; label `server`.
pub const UP: &str = "gekko_mcp_client_up";
/// Gauge: how many tools the server listed at its last connect; label `server`.
pub const TOOLS: &str = "gekko_mcp_client_tools";
/// Counter: tool calls by outcome (`ok`, `tool_error`, `timeout`, `connection_lost`,
/// `not_connected`, `protocol_error`, `unknown`, `invalid_arguments`); labels `server`,
/// `outcome`.
pub const CALLS: &str = "gekko_mcp_client_calls_total";
/// Counter: connection attempts after a failure or a lost connection; label `server`.
pub const RECONNECTS: &str = "gekko_mcp_client_reconnects_total";
/// Histogram: seconds from sending `tools/call` to its answer (or failure); label
/// `server`.
pub const CALL_SECONDS: &str = "gekko_mcp_client_call_duration_seconds";
/// Gauge: 0 closed, 1 half-open, 2 open: the connect circuit breaker; label `server`.
pub const CIRCUIT: &str = "gekko_mcp_client_circuit_state";

/// Registers the descriptions with the global recorder (call once the recorder is
/// installed; calling it again is harmless).
pub fn describe() {
    metrics::describe_gauge!(UP, "1 while the MCP client connection to a server is up");
    metrics::describe_gauge!(TOOLS, "Tools an MCP server listed at its last connect");
    metrics::describe_counter!(CALLS, "MCP tool calls by server and outcome");
    metrics::describe_counter!(
        RECONNECTS,
        "MCP client connection attempts after a failure or a lost connection"
    );
    metrics::describe_histogram!(
        CALL_SECONDS,
        metrics::Unit::Seconds,
        "MCP tool call latency"
    );
    metrics::describe_gauge!(
        CIRCUIT,
        "MCP client connect circuit breaker: 0 closed, 1 half-open, 2 open"
    );
}
