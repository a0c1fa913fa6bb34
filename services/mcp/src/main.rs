//! `mcp`: gekko's MCP server as its own process (the `mcp` service of the compose file),
//! configured only by env.
//!
//! Serves MCP over streamable HTTP at `MCP_SETTINGS http_addr` `/mcp` (bearer tokens from
//! `ACCESS_CONTROL_CONFIG`, required), as a gRPC client of each venue's gateway and of
//! inference at their `MCP_SETTINGS grpc.*` routes, which are required: with none it
//! exits 64 naming them. It writes the `mcp.tool_call` audit records itself. The runtime's
//! service host gives it `/metrics`, `/livez`, `/readyz` on `MONITORING_CONFIGURATIONS
//! http_addr` and gRPC health on `grpc_addr`, and the exit codes (64 invalid
//! configuration before binding anything, 69 unavailable, 70 internal).

use gekko_mcp::McpRoutedService;
use gekko_runtime::Host;

/// The program name: telemetry, the audit stream (`gekko:audit:mcp`), messages.
const SOURCE: &str = "mcp";

fn main() -> std::process::ExitCode {
    // rustls needs exactly one process-wide crypto provider; pick it before any TLS use.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    Host::new(SOURCE).service::<McpRoutedService>().main()
}
