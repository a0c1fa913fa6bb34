//! `gekko down`: asks a running `gekko up` to stop, in a shutdown mode, and prints what
//! the shutdown did.
//!
//! It is a gRPC client of `SystemService.Shutdown` (an admin method), so it needs what
//! any client needs: the address, an admin token, a TOTP code when the token requires
//! one, and the CA (plus a client certificate under mTLS) when the server speaks TLS.
//! By default it waits for the shutdown steps and the final report, and exits 0 when
//! everything was confirmed, 1 when something could not be done (the lines say what), 69
//! when the server cannot be reached and 77 when it refuses the credentials.

use std::path::PathBuf;
use std::time::Duration;

use gekko_config::ShutdownMode;
use gekko_proto::v1::ShutdownRequest;
use gekko_proto::v1::system_service_client::SystemServiceClient;
use tonic::metadata::MetadataValue;
use tonic::transport::Endpoint;

use crate::exit::Exit;

/// `gekko down` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct DownArgs {
    /// stop-entries, cancel or flatten; the server's CONTROLLER_SETTINGS shutdown_mode
    /// when omitted.
    #[arg(long, value_parser = clap::builder::ValueParser::new(parse_mode))]
    mode: Option<ShutdownMode>,
    /// The gRPC address of the running gekko (https:// when it serves TLS).
    #[arg(long, env = "GEKKO_GRPC", default_value = "http://127.0.0.1:50051")]
    grpc: String,
    /// An admin token.
    #[arg(long, env = "GEKKO_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The current TOTP code, when the token requires a second factor.
    #[arg(long, env = "GEKKO_TOTP", hide_env_values = true)]
    totp: Option<String>,
    /// The CA that signed the server's certificate (PEM), for https:// addresses.
    #[arg(long, env = "GEKKO_TLS_CA")]
    ca: Option<PathBuf>,
    /// A client certificate and key (PEM), when the server requires mTLS.
    #[arg(long, env = "GEKKO_TLS_CLIENT_CERT", requires = "client_key")]
    client_cert: Option<PathBuf>,
    #[arg(long, env = "GEKKO_TLS_CLIENT_KEY", requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// Return once the stop is accepted, without waiting for the report.
    #[arg(long)]
    no_wait: bool,
}

fn parse_mode(s: &str) -> Result<ShutdownMode, String> {
    s.parse()
}

/// Connects, asks for the stop, prints the outcome.
pub(crate) async fn run(args: DownArgs) -> Exit {
    let channel = match connect(&args).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gekko down: cannot reach {}: {e}", args.grpc);
            return Exit::Unavailable;
        }
    };
    let mut request = tonic::Request::new(ShutdownRequest {
        mode: args.mode.map(|m| m.to_string()).unwrap_or_default(),
        wait: !args.no_wait,
    });
    for (key, value) in [
        (
            "authorization",
            args.token.as_ref().map(|t| format!("Bearer {t}")),
        ),
        ("x-gekko-totp", args.totp.clone()),
    ] {
        if let Some(value) = value {
            match MetadataValue::try_from(value.as_str()) {
                Ok(v) => {
                    request.metadata_mut().insert(key, v);
                }
                Err(_) => {
                    eprintln!("gekko down: the {key} value has characters a header cannot carry");
                    return Exit::Config;
                }
            }
        }
    }
    let mut client = SystemServiceClient::new(channel);
    let resp = match client.shutdown(request).await {
        Ok(r) => r.into_inner(),
        Err(status) => {
            eprintln!(
                "gekko down: refused: {:?}: {}",
                status.code(),
                status.message()
            );
            return match status.code() {
                tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => Exit::NoPermission,
                tonic::Code::InvalidArgument => Exit::Config,
                _ => Exit::Unavailable,
            };
        }
    };
    if resp.accepted {
        println!("gekko down: shutdown accepted, mode {}", resp.mode);
    } else {
        println!(
            "gekko down: a shutdown was already under way, mode {}",
            resp.mode
        );
    }
    if args.no_wait {
        return Exit::Ok;
    }
    if !resp.report_markdown.is_empty() {
        println!(
            "gekko down: final report {} and {}",
            resp.report_markdown, resp.report_json
        );
    }
    if resp.not_done.is_empty() {
        println!("gekko down: every step was confirmed");
        Exit::Ok
    } else {
        for line in &resp.not_done {
            println!("gekko down: not done: {line}");
        }
        Exit::CheckFailed
    }
}

async fn connect(args: &DownArgs) -> Result<tonic::transport::Channel, String> {
    let endpoint = Endpoint::from_shared(args.grpc.clone())
        .map_err(|e| format!("not a URL: {e}"))?
        .connect_timeout(Duration::from_secs(5));
    let endpoint = crate::tls_client(
        endpoint,
        args.ca.as_deref(),
        args.client_cert.as_deref().zip(args.client_key.as_deref()),
    )?;
    endpoint
        .connect()
        .await
        .map_err(|e| gekko_runtime::error_chain(&e))
}
