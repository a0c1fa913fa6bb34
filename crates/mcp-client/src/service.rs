//! `mcp-clients`: the pool as a [`gekko_runtime::Service`], hosted by `gekko up` when
//! `MCP_SERVERS` is set.
//!
//! It starts the [`McpPool`], registers readiness and serves `McpService` on the
//! process's gRPC port. A **required** server gets a readiness component
//! `mcp-client:<name>` that is ready only while the connection is up, so `/readyz` and
//! gRPC health name the server that keeps gekko not ready. An **optional** server
//! registers nothing: when it is down the supervisor logs a warning and
//! `gekko_mcp_client_up{server}` reads 0, and gekko stays ready.
//!
//! The pool is also [provided](gekko_runtime::Started::provide) to the services started
//! after this one, which find it with `ctx.provided().all::<McpPool>()`.

use gekko_config::{GekkoConfig, McpServer};
use gekko_runtime::{BoxError, ReadyHandle, Service, ServiceCtx, Started};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::grpc::McpGrpc;
use crate::pool::{ConnectionState, McpPool, PoolOptions, ServerStatus};

/// The `mcp-clients` service (a unit type; see [`Service`]).
#[derive(Debug, Clone, Copy)]
pub struct McpClientsService;

/// What `mcp-clients` needs from config.
#[derive(Debug, Clone)]
pub struct McpClientsSettings {
    /// The servers of `MCP_SERVERS`, in order.
    pub servers: Vec<McpServer>,
    /// Backoff, breaker and keepalive.
    pub options: PoolOptions,
}

/// The readiness component of a required server.
#[must_use]
pub fn readiness_component(server: &str) -> String {
    format!("mcp-client:{server}")
}

impl Service for McpClientsService {
    const NAME: &'static str = "mcp-clients";
    type Settings = McpClientsSettings;

    fn resolve(cfg: &GekkoConfig) -> Result<Self::Settings, Vec<String>> {
        Ok(McpClientsSettings {
            servers: cfg.mcp_servers.clone(),
            options: PoolOptions::default(),
        })
    }

    async fn start(settings: Self::Settings, ctx: &ServiceCtx) -> Result<Started, BoxError> {
        crate::metrics::describe();
        let cancel = ctx.cancel();
        let pool = McpPool::start(settings.servers, settings.options, ctx.tracker(), &cancel);
        for status in pool.servers() {
            tracing::info!(server = %status.name, transport = %status.transport, required = status.required, "connecting to MCP server");
            if !status.required {
                continue;
            }
            let rx = pool.subscribe(&status.name)?;
            let handle = ctx
                .readiness()
                .component(&readiness_component(&status.name));
            handle.set_not_ready("connecting");
            ctx.tracker()
                .spawn(follow_required(rx, handle, cancel.clone()));
        }
        let grpc = McpGrpc::new(pool.clone(), ctx.audit().clone()).server();
        Ok(Started::new().grpc(grpc).provide(pool))
    }
}

/// Keeps a required server's readiness component in step with its connection until
/// shutdown (the handle is then dropped, which marks it not ready).
async fn follow_required(
    mut rx: watch::Receiver<ServerStatus>,
    handle: ReadyHandle,
    cancel: CancellationToken,
) {
    loop {
        let status = rx.borrow_and_update().clone();
        if status.state == ConnectionState::Up {
            handle.set_ready();
        } else {
            let why = status
                .last_error
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            handle.set_not_ready(format!(
                "required MCP server `{}` is {}{why}",
                status.name, status.state
            ));
        }
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { break },
            () = cancel.cancelled() => break,
        }
    }
}
