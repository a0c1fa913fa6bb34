//! `gekko`: the controller CLI.
//!
//! - `gekko check` validates the environment and prints one row per check.
//! - `gekko up` validates config, then starts every service inside this process, and
//!   stops them cleanly on Ctrl-C / SIGTERM.
//!
//! Exit codes follow `sysexits.h`: 64 for invalid configuration (nothing was bound or
//! started), 69 when a required resource is unavailable (a port cannot be bound), 70 for
//! internal failures, 1 when `check` finds a failing check.

mod audit;
mod backup;
mod certs;
mod check;
mod controller;
mod down;
mod exit;
mod health_cli;
mod llm;
mod mcp;
mod probe;
mod report;
mod restore;
mod secrets;
mod status;
mod token;
mod up;

use clap::{Parser, Subcommand};

use crate::exit::Exit;

/// gekko: trading infrastructure. With no credentials it runs in paper mode.
#[derive(Debug, Parser)]
#[command(name = "gekko", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start every service in this process (paper mode without credentials).
    Up {
        /// Run the trading loop (signals become orders) in paper mode; refused when a
        /// venue has live credentials.
        #[arg(long)]
        paper_trade: bool,
    },
    /// Stop a running `gekko up` over gRPC, in a shutdown mode, and print its report.
    Down(down::DownArgs),
    /// Validate config and the machine, and print a table of checks.
    Check,
    /// Make an API token: printed once, with the `tokens=` entry that configures it.
    Token(token::TokenArgs),
    /// Make TLS certificates (`gekko certs dev`: a local CA, server and client).
    Certs(certs::CertsArgs),
    /// Verify, export or archive the tamper-evident audit trail (needs REDIS_URL).
    Audit(audit::AuditArgs),
    /// Serve gekko's MCP tools on stdio (for Claude Desktop and other MCP clients), as a
    /// gRPC client of a running gekko: `gekko mcp --grpc http://HOST:PORT --token TOKEN`.
    Mcp(mcp::McpArgs),
    /// Use the configured LLM roles directly: `gekko llm models`, `gekko llm ask "..."`.
    Llm(llm::LlmArgs),
    /// Snapshot the durable streams now: `gekko backup now` (needs REDIS_URL).
    Backup(backup::BackupArgs),
    /// Restore a snapshot into an empty Redis (REDIS_URL): `gekko restore FILE [--force]`.
    Restore(restore::RestoreArgs),
    /// Sealed env files: `gekko secrets keygen|seal|unseal --check|rotate`.
    Secrets(secrets::SecretsArgs),
    /// Print the health tree of a running healthd (`--healthd http://HOST:PORT`); exits
    /// 1 when the system is not ready.
    Status(health_cli::StatusArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // `down` is a client of a running gekko: it needs no config of its own.
    let command = match cli.command {
        Command::Down(args) => return run(|rt| rt.block_on(down::run(args))),
        // `mcp` is a client too; it reads only MCP_SETTINGS (and COMPLIANCE_SETTINGS).
        Command::Mcp(args) => return run(|rt| rt.block_on(mcp::run(args))),
        // Offline tools: no config, no runtime.
        Command::Token(args) => return token::run(&args).into(),
        Command::Certs(args) => return certs::run(&args).into(),
        Command::Secrets(args) => return secrets::run(&args).into(),
        // `status` is a client of healthd.
        Command::Status(args) => return run(|rt| rt.block_on(health_cli::run(args))),
        other => other,
    };
    inference_service::pin_cpu_threads();
    // Config first, before any runtime, port or log subscriber exists: a bad environment
    // must fail fast with every problem listed and nothing bound.
    let loaded = match gekko_config::load() {
        Ok(l) => l,
        Err(errors) => {
            if matches!(
                command,
                Command::Up { .. }
                    | Command::Audit(_)
                    | Command::Llm(_)
                    | Command::Backup(_)
                    | Command::Restore(_)
            ) {
                eprint!("{}", errors.render("gekko"));
                return Exit::Config.into();
            }
            // `check` reports the config problems in its table instead.
            return run(|rt| rt.block_on(check::run(Err(errors))));
        }
    };
    match command {
        Command::Up { paper_trade } => run(|rt| rt.block_on(up::run(loaded, paper_trade))),
        Command::Down(_)
        | Command::Token(_)
        | Command::Certs(_)
        | Command::Mcp(_)
        | Command::Secrets(_)
        | Command::Status(_) => Exit::Internal.into(),
        Command::Check => run(|rt| rt.block_on(check::run(Ok(loaded)))),
        Command::Audit(args) => run(|rt| rt.block_on(audit::run(loaded, args))),
        Command::Llm(args) => run(|rt| rt.block_on(llm::run(&loaded, args))),
        Command::Backup(args) => run(|rt| rt.block_on(backup::run(loaded, args))),
        Command::Restore(args) => run(|rt| rt.block_on(restore::run(loaded, args))),
    }
}

fn run(f: impl FnOnce(&tokio::runtime::Runtime) -> Exit) -> std::process::ExitCode {
    // rustls needs exactly one process-wide crypto provider; pick aws-lc-rs explicitly so
    // a second provider pulled in by some dependency can never make TLS set-up panic.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gekko: cannot start the async runtime: {e}");
            return Exit::Internal.into();
        }
    };
    f(&rt).into()
}

/// The authenticated caller's name (the token's name, or `anonymous` with auth off), for
/// audit records and stop origins.
pub(crate) fn caller_name<T>(request: &tonic::Request<T>) -> String {
    gekko_security::Caller::of(request)
        .map_or_else(|| gekko_security::ANONYMOUS.to_owned(), |c| c.name.clone())
}

/// TLS for a client endpoint: the server's CA and, under mTLS, a client identity.
pub(crate) fn tls_client(
    endpoint: tonic::transport::Endpoint,
    ca: Option<&std::path::Path>,
    identity: Option<(&std::path::Path, &std::path::Path)>,
) -> Result<tonic::transport::Endpoint, String> {
    let Some(ca) = ca else {
        return match identity {
            None => Ok(endpoint),
            Some(_) => Err("a client certificate needs --ca, the CA of the server".to_owned()),
        };
    };
    let tls = gekko_security::ClientTls::from_files(ca, identity).map_err(|e| e.to_string())?;
    endpoint
        .tls_config(tls.tonic_config())
        .map_err(|e| format!("TLS settings: {e}"))
}
