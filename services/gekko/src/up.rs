//! `gekko up`: every service in one process.
//!
//! The process itself (resolving settings before anything binds, telemetry, both
//! listeners, the bus and its readiness, the `startup` readiness component, serving gRPC
//! with health and reflection, and the drain on SIGINT/SIGTERM) is the runtime's
//! [`Host`]; see `gekko_runtime::host` for the order of steps and why. What is particular
//! to `gekko up` is here:
//!
//! - [`catalog`]: which services this process hosts, each with the rule that says whether
//!   the config wants it: the Binance.US, Coinbase and OANDA gateways, inference, and the
//!   trading loop when asked for.
//! - [`serve_gateways`] (in `gekko-gateway`, shared with the gateway binaries): the one
//!   gRPC registration of the hosted gateways, one router over every venue.
//! - [`UpEvents`]: the audit trail (`system.startup` with the start-up report, then
//!   `system.shutdown` when asked to stop and once stopped, on the tamper-evident audit
//!   stream `gekko up` owns, plus a control-channel notification) and the one-line banner
//!   on stdout.

use gekko_audit::AuditRecord;
use gekko_bus::names;
use gekko_config::{GekkoConfig, Loaded};
use gekko_gateway::service::serve_gateways;
use gekko_runtime::{Host, HostInfo, Lifecycle, OpenedInfo, ServiceEntry, StopRequest};

use crate::check;
use crate::controller::Controller;
use crate::exit::Exit;
use crate::status::{self, SystemStatusService};

/// The program name: telemetry's service name and the prefix of messages.
const PROGRAM: &str = "gekko";

/// Runs `gekko up` until a shutdown signal. `paper_trade` turns the trading loop on, in
/// paper mode only.
pub(crate) async fn run(mut loaded: Loaded, paper_trade: bool) -> Exit {
    if paper_trade {
        if status::mode(&loaded.config) != "paper" {
            eprintln!(
                "gekko: --paper-trade runs only in paper mode, and a venue has live credentials; \
                 for live trading set STRATEGY_SETTINGS enabled=true,allow_live=true instead"
            );
            return Exit::Config;
        }
        loaded.config.strategy.enabled = true;
    }
    // The start-up report: every check in the design's order, before anything is bound.
    let (rows, notes) = check::collect(Ok(&loaded)).await;
    print!("{}", check::render(&rows));
    for n in &notes {
        println!("  {n}");
    }
    println!("{}", check::summary(&rows));
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r.required && r.status == check::Status::Fail)
        .map(|r| format!("{}: {}", r.check, r.detail))
        .collect();
    if !failed.is_empty() {
        eprintln!(
            "gekko: start-up stopped: {} required check{} failed (CONTROLLER_SETTINGS required_checks):",
            failed.len(),
            if failed.len() == 1 { "" } else { "s" }
        );
        for f in &failed {
            eprintln!("  - {f}");
        }
        return Exit::Unavailable;
    }
    let mut events = UpEvents::new(&loaded.config);
    events.startup = rows;
    Host::new(PROGRAM)
        .owns_audit_stream()
        .services(catalog(&loaded.config))
        .grpc(serve_gateways)
        .run(loaded, &events)
        .await
        .into()
}

/// The venues this build hosts a gateway for (see [`catalog`]); the start-up report
/// probes their endpoints.
pub(crate) const HOSTED_VENUES: &[gekko_config::VenueId] = &[
    gekko_config::VenueId::BinanceUs,
    gekko_config::VenueId::Coinbase,
    gekko_config::VenueId::Oanda,
];

/// A rule that says whether a config wants a service.
type Wanted = fn(&GekkoConfig) -> bool;

/// Every service `gekko up` can host, in start order, each with the rule that picks it.
///
/// Gateways run live with their venue's credentials and in paper mode (against an
/// in-process simulator) without, so today's rules are all "always".
fn catalog(config: &GekkoConfig) -> Vec<ServiceEntry> {
    let always: Wanted = |_| true;
    let strategy: Wanted = |cfg| cfg.strategy.enabled;
    let llm: Wanted = |cfg| cfg.llm.enabled();
    let entries: Vec<(ServiceEntry, Wanted)> = vec![
        (ServiceEntry::of::<SystemStatusService>(), always),
        (
            ServiceEntry::of::<gateway_binanceus::BinanceUsGateway>(),
            always,
        ),
        (
            ServiceEntry::of::<gateway_coinbase::CoinbaseGateway>(),
            always,
        ),
        (ServiceEntry::of::<gateway_oanda::OandaGateway>(), always),
        (
            ServiceEntry::of::<inference_service::InferenceService>(),
            always,
        ),
        // The MCP client connections, only when MCP_SERVERS names a server.
        (
            ServiceEntry::of::<gekko_mcp_client::McpClientsService>(),
            |cfg| !cfg.mcp_servers.is_empty(),
        ),
        // gekko's MCP server over streamable HTTP (`MCP_SETTINGS http_addr`; it serves
        // nothing with http_addr=off). A gRPC client of this process, like any other.
        (ServiceEntry::of::<gekko_mcp::McpHttpService>(), always),
        // LLM links: only when LLM_MODELS names a role.
        (ServiceEntry::of::<gekko_llm::LlmLinkService>(), llm),
        // After the gateways it trades through; off unless configured or --paper-trade.
        (
            ServiceEntry::of::<gekko_strategy::StrategyService>(),
            strategy,
        ),
        // Periodic snapshots of the durable streams: only with BACKUP_SETTINGS enabled=true
        // and a Redis bus (the in-process bus has nothing durable; gekko check says so).
        (ServiceEntry::of::<gekko_backup::BackupService>(), |cfg| {
            cfg.backup.enabled && cfg.redis_url.is_some()
        }),
    ];
    entries
        .into_iter()
        .filter(|(_, wanted)| wanted(config))
        .map(|(entry, _)| entry)
        .collect()
}

/// `gekko up`'s life-cycle hooks: audit entries and the banner.
#[derive(Debug)]
struct UpEvents {
    /// The start-up report's rows, recorded with the `system.startup` entry.
    startup: Vec<check::Row>,
}

impl UpEvents {
    fn new(_config: &GekkoConfig) -> Self {
        Self {
            startup: Vec::new(),
        }
    }
}

impl Lifecycle for UpEvents {
    /// The run's first audit entry: the start-up report, before any service starts.
    async fn opened(&self, info: &OpenedInfo<'_>) {
        let detail = serde_json::json!({
            "event": "opened",
            "mode": status::mode(info.config),
            "bus": info.bus.kind(),
            "version": env!("CARGO_PKG_VERSION"),
            "startup": self.startup,
        });
        let rec = AuditRecord::new(PROGRAM, "system.startup", "ok").with_detail(detail);
        if let Err(e) = info.audit.record(rec).await {
            tracing::warn!(error = %e, "start-up report not written to the audit trail");
        }
    }

    async fn started(&self, info: &HostInfo<'_>) {
        let mode = status::mode(info.config);
        let bus = info.bus.kind();
        let detail = serde_json::json!({
            "mode": mode,
            "bus": bus,
            "http_addr": info.http_addr.to_string(),
            "grpc_addr": info.grpc_addr.to_string(),
        });
        self.event(info, "started", "system.startup", "serving", detail)
            .await;
        for controller in info.provided.all::<Controller>() {
            controller.started(info).await;
        }
        tracing::info!(http_addr = %info.http_addr, grpc_addr = %info.grpc_addr, mode, "gekko up: listening");
        println!(
            "gekko up: mode={mode} bus={bus} http=http://{} grpc={}",
            info.http_addr, info.grpc_addr
        );
        for mcp in info.provided.all::<gekko_mcp::McpEndpoint>() {
            println!("gekko up: mcp={}", mcp.url());
        }
    }

    async fn stopping(&self, info: &HostInfo<'_>, request: &StopRequest) {
        let detail = serde_json::json!({
            "origin": request.origin,
            "mode": request.mode.map(|m| m.to_string()),
        });
        self.event(info, "stopping", "system.shutdown", "requested", detail)
            .await;
        // The shutdown steps and the final report, while every service still runs.
        for controller in info.provided.all::<Controller>() {
            let outcome = controller.stop(info, request).await;
            let detail = serde_json::json!({
                "mode": outcome.mode,
                "report_json": outcome.report_json,
                "report_markdown": outcome.report_markdown,
                "not_done": outcome.not_done,
            });
            let result = if outcome.not_done.is_empty() {
                "steps_done"
            } else {
                "incomplete"
            };
            self.event(info, "stopping", "system.shutdown", result, detail)
                .await;
        }
    }

    async fn stopped(&self, info: &HostInfo<'_>, clean: bool) {
        let outcome = if clean { "stopped" } else { "drain_timed_out" };
        let detail = serde_json::json!({ "clean": clean });
        self.event(info, "stopped", "system.shutdown", outcome, detail)
            .await;
    }
}

impl UpEvents {
    /// Writes one entry to the audit trail (`HostInfo::audit`, a no-op when disabled) and
    /// notifies the control channel; failures are logged, not fatal (the audit trail must
    /// not stop trading infrastructure from starting or stopping). `event` (`started`,
    /// `stopping`, `stopped`) is the life-cycle phase, in the detail and the notice.
    async fn event(
        &self,
        info: &HostInfo<'_>,
        event: &str,
        action: &str,
        outcome: &str,
        mut detail: serde_json::Value,
    ) {
        if let Some(obj) = detail.as_object_mut() {
            obj.insert("event".to_owned(), event.into());
        }
        let rec = AuditRecord::new(PROGRAM, action, outcome).with_detail(detail);
        if let Err(e) = info.audit.record(rec).await {
            tracing::warn!(error = %e, event, "audit entry not written");
        }
        let _ = info
            .bus
            .notify(
                names::CONTROL_CHANNEL,
                bytes::Bytes::from(format!("{{\"event\":\"{event}\"}}")),
            )
            .await;
    }
}
