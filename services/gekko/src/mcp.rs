//! `gekko mcp`: gekko's MCP server over stdio, for Claude Desktop, IDE agents and the
//! official SDKs, as a gRPC client of a running gekko.
//!
//! stdout is the protocol, so nothing else may be written there: logs go to stderr
//! (`GEKKO_MCP_LOG`, default `warn`). The risk guard's settings come from this process's
//! own `MCP_SETTINGS` (and `COMPLIANCE_SETTINGS` for the notional cross-check), read
//! alone: an MCP client's launch environment rarely holds a trading config, and none is
//! needed. The token is the caller's identity at the gRPC server, which stamps it on
//! every order and audit record.

use std::path::PathBuf;

use gekko_mcp::{Backend, Token};
use secrecy::SecretString;
use tonic::transport::Endpoint;

use crate::check::{Row, Status};
use crate::exit::Exit;

/// `gekko mcp` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct McpArgs {
    /// The gRPC address of the running gekko (https:// when it serves TLS).
    #[arg(long, env = "GEKKO_GRPC_URL", default_value = "http://127.0.0.1:50051")]
    grpc: String,
    /// The token every call is made with (its role decides what the gRPC server allows).
    #[arg(long, env = "GEKKO_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The CA that signed the server's certificate (PEM), for https:// addresses.
    #[arg(long, env = "GEKKO_TLS_CA")]
    ca: Option<PathBuf>,
    /// A client certificate and key (PEM), when the server requires mTLS.
    #[arg(long, env = "GEKKO_TLS_CLIENT_CERT", requires = "client_key")]
    client_cert: Option<PathBuf>,
    #[arg(long, env = "GEKKO_TLS_CLIENT_KEY", requires = "client_cert")]
    client_key: Option<PathBuf>,
}

/// Serves MCP on stdin/stdout until the client closes stdin.
pub(crate) async fn run(args: McpArgs) -> Exit {
    let filter = std::env::var("GEKKO_MCP_LOG").unwrap_or_else(|_| "warn".to_owned());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&filter)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let settings = match gekko_config::load_mcp_settings() {
        Ok(s) => s,
        Err(errors) => {
            eprint!("{}", errors.render("gekko mcp"));
            return Exit::Config;
        }
    };
    let endpoint = match Endpoint::from_shared(args.grpc.clone()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("gekko mcp: --grpc {}: not a URL: {e}", args.grpc);
            return Exit::Config;
        }
    };
    let identity = args.client_cert.as_deref().zip(args.client_key.as_deref());
    let endpoint = match crate::tls_client(endpoint, args.ca.as_deref(), identity) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("gekko mcp: {e}");
            return Exit::Config;
        }
    };
    if let Some(t) = &args.token
        && (t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()))
    {
        eprintln!("gekko mcp: --token: not visible ASCII");
        return Exit::Config;
    }
    // Lazy: an MCP client starts this process before the user's gekko may be up; each
    // tool call then reports an unreachable gekko as a tool error instead of the session
    // failing to start.
    let backend = Backend::new(endpoint.connect_lazy());
    let token = Token::new(args.token.map(SecretString::from));
    tracing::info!(grpc = %args.grpc, mode = %settings.mode, "gekko mcp: serving MCP on stdio");
    match gekko_mcp::serve_stdio(backend, settings, token).await {
        Ok(()) => Exit::Ok,
        Err(e) => {
            eprintln!("gekko mcp: {e}");
            Exit::Unavailable
        }
    }
}

/// The `gekko check` row of the MCP server (the HTTP transport `gekko up` serves).
pub(crate) fn check_row(cfg: &gekko_config::GekkoConfig) -> Row {
    let s = &cfg.mcp;
    let guard = format!(
        "mode={}, max_order_notional={}, max_orders_per_minute={}",
        s.mode, s.max_order_notional, s.max_orders_per_minute
    );
    let (status, detail) = match s.http_addr {
        None => (
            Status::Pass,
            format!("HTTP transport off (http_addr=off); stdio through `gekko mcp`; {guard}"),
        ),
        Some(_) if cfg.access_control.tls_cert.is_some() && s.grpc_ca.is_none() => (
            Status::Warn,
            "HTTP transport off: gRPC serves TLS and MCP_SETTINGS grpc_ca is not set".to_owned(),
        ),
        Some(_)
            if cfg.access_control.tls_client_ca.is_some() && s.grpc_client_cert.is_none() =>
        {
            (
                Status::Warn,
                "HTTP transport off: gRPC requires client certificates and MCP_SETTINGS grpc_client_cert/grpc_client_key are not set".to_owned(),
            )
        }
        Some(addr) if cfg.access_control.tokens.is_empty() && cfg.access_control.grpc_auth_token.is_none() => (
            Status::Warn,
            format!(
                "http://{addr}/mcp refuses every request (401) until ACCESS_CONTROL_CONFIG tokens= is set; {guard}"
            ),
        ),
        Some(addr) => (Status::Pass, format!("http://{addr}/mcp, bearer tokens required; {guard}")),
    };
    Row {
        check: "mcp server".to_owned(),
        family: "mcp",
        status,
        detail,
        required: false,
    }
}
