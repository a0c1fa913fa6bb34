//! The controller's gRPC `SystemService`: readiness of everything `gekko up` hosts,
//! `Shutdown`, the redacted configuration (`ExplainConfig`) and the MCP server's audit
//! entry point (`RecordToolCall`).
//!
//! It is a hosted service like the others, so it is served, and drained, exactly like
//! them. It creates the process's [`Controller`] and provides it, so the host's stopping
//! hook runs the same shutdown whether a signal or a `Shutdown` call asked for it.

use gekko_config::{ControllerSettings, GekkoConfig, ShutdownMode, VenueId};
use gekko_proto::v1::system_service_server::{SystemService, SystemServiceServer};
use gekko_proto::v1::{
    ComponentStatus, ExplainConfigRequest, ExplainConfigResponse, GetStatusRequest,
    GetStatusResponse, RecordToolCallRequest, RecordToolCallResponse, ShutdownRequest,
    ShutdownResponse, VenueMode,
};
use gekko_runtime::{BoxError, Readiness, Service, ServiceCtx, Started};
use tonic::{Request, Response, Status};

use crate::controller::Controller;

/// Answers `GetStatus` from the process's readiness latch, and `Shutdown` through the
/// controller.
#[derive(Debug, Clone)]
pub(crate) struct SystemStatus {
    pub readiness: Readiness,
    pub mode: &'static str,
    pub bus: &'static str,
    pub controller: Controller,
    pub ctx: ServiceCtx,
    /// Every hosted venue and whether it is simulated, in `GetStatus`.
    pub venues: Vec<VenueMode>,
    /// `ExplainConfig`'s answer, computed once from the validated config.
    pub config_json: String,
}

/// The settings of [`SystemStatusService`], all resolved from config.
#[derive(Debug)]
pub(crate) struct SystemSettings {
    mode: &'static str,
    controller: ControllerSettings,
    venues: Vec<VenueMode>,
    config_json: String,
}

/// Whether a secret is configured, as `ExplainConfig` shows it.
fn set(present: bool) -> &'static str {
    if present { "set" } else { "unset" }
}

/// The configuration as `ExplainConfig` shows it: every section, secrets as set/unset,
/// URLs through [`gekko_config::redact_url`].
pub(crate) fn explain(cfg: &GekkoConfig) -> serde_json::Value {
    use gekko_config::redact_url;
    let urls = |m: &std::collections::BTreeMap<VenueId, String>| -> serde_json::Value {
        m.iter()
            .map(|(v, u)| (v.to_string(), serde_json::Value::from(redact_url(u))))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let a = &cfg.access_control;
    serde_json::json!({
        "mode": mode(cfg),
        "venues": VenueId::ALL.iter().map(|v| serde_json::json!({
            "venue": v.as_str(),
            "simulated": cfg.paper_mode(*v),
            "credentials": set(!cfg.paper_mode(*v)),
            "instruments": cfg.instruments_for(*v).iter().map(gekko_core::InstrumentId::pair).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "redis_url": cfg.redis_url.as_deref().map(redact_url),
        "trading_api_endpoints": urls(&cfg.trading_api_endpoints),
        "trading_stream_endpoints": urls(&cfg.trading_stream_endpoints),
        "supported_trading_pairs": cfg.supported_trading_pairs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "position_limits": cfg.position_limits.iter().map(|(p, q)| (p.to_string(), serde_json::Value::from(q.to_string()))).collect::<serde_json::Map<_, _>>(),
        "ml_model_endpoints": cfg.ml_model_endpoints.iter().map(|(k, u)| (k.clone(), serde_json::Value::from(redact_url(u)))).collect::<serde_json::Map<_, _>>(),
        "confidence_thresholds": cfg.confidence_thresholds.iter().map(|(k, d)| (k.clone(), serde_json::Value::from(d.to_string()))).collect::<serde_json::Map<_, _>>(),
        "monitoring": {
            "http_addr": cfg.monitoring.http_addr.to_string(),
            "grpc_addr": cfg.monitoring.grpc_addr.to_string(),
            "log_level": cfg.monitoring.log_level,
        },
        "access_control": {
            "tokens": a.tokens.iter().map(|t| serde_json::json!({
                "name": t.name, "role": t.role.to_string(), "totp": set(t.totp_secret.is_some()),
            })).collect::<Vec<_>>(),
            "grpc_auth_token": set(a.grpc_auth_token.is_some()),
            "read_only": a.read_only,
            "allowed_clients": a.allowed_clients,
            "tls": a.tls_cert.is_some(),
            "mtls": a.tls_client_ca.is_some(),
        },
        "audit_logging": {
            "enabled": cfg.audit_logging.enabled,
            "stream": cfg.audit_logging.stream,
            "retention_days": cfg.audit_logging.retention_days,
            "key": set(cfg.audit_logging.key.is_some() || cfg.audit_logging.key_file.is_some()),
        },
        "encryption": { "key": set(cfg.encryption.key.is_some() || cfg.encryption.key_file.is_some()) },
        "compliance": {
            "max_order_notional": cfg.compliance.max_order_notional.to_string(),
            "max_daily_notional": cfg.compliance.max_daily_notional.to_string(),
            "daily_reset_hour": cfg.compliance.daily_reset_hour,
            "restricted_pairs": cfg.compliance.restricted_pairs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "trading_enabled": cfg.compliance.trading_enabled,
        },
        "controller": {
            "shutdown_mode": cfg.controller.shutdown_mode.to_string(),
            "required_checks": cfg.controller.required_checks,
        },
        "strategy": {
            "enabled": cfg.strategy.enabled,
            "allow_live": cfg.strategy.allow_live,
            "order_notional": cfg.strategy.order_notional.to_string(),
        },
        "mcp": {
            "mode": cfg.mcp.mode.to_string(),
            "max_order_notional": cfg.mcp.max_order_notional.to_string(),
            "allowed_instruments": cfg.mcp.allowed_instruments.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "max_orders_per_minute": cfg.mcp.max_orders_per_minute,
            "http_addr": cfg.mcp.http_addr.map_or_else(|| "off".to_owned(), |a| a.to_string()),
        },
    })
}

/// `paper` when no venue has credentials, else `live`.
pub(crate) fn mode(config: &GekkoConfig) -> &'static str {
    if VenueId::ALL.iter().all(|v| config.paper_mode(*v)) {
        "paper"
    } else {
        "live"
    }
}

/// [`SystemStatus`] as a hosted service; its settings are the trading mode.
#[derive(Debug)]
pub(crate) struct SystemStatusService;

impl Service for SystemStatusService {
    const NAME: &'static str = "system";
    type Settings = SystemSettings;

    fn resolve(cfg: &GekkoConfig) -> Result<Self::Settings, Vec<String>> {
        Ok(SystemSettings {
            mode: mode(cfg),
            controller: cfg.controller.clone(),
            venues: crate::up::HOSTED_VENUES
                .iter()
                .map(|v| VenueMode {
                    venue: v.to_string(),
                    simulated: cfg.paper_mode(*v),
                })
                .collect(),
            config_json: explain(cfg).to_string(),
        })
    }

    async fn start(settings: Self::Settings, ctx: &ServiceCtx) -> Result<Started, BoxError> {
        let SystemSettings {
            mode,
            controller: settings,
            venues,
            config_json,
        } = settings;
        let controller = Controller::new(settings, mode, ctx.readiness().clone());
        let svc = SystemStatus {
            readiness: ctx.readiness().clone(),
            mode,
            bus: ctx.bus().kind(),
            controller: controller.clone(),
            ctx: ctx.clone(),
            venues,
            config_json,
        };
        Ok(Started::new()
            .grpc(SystemServiceServer::new(svc))
            .provide(controller))
    }
}

#[tonic::async_trait]
impl SystemService for SystemStatus {
    async fn get_status(
        &self,
        _request: Request<GetStatusRequest>,
    ) -> Result<Response<GetStatusResponse>, Status> {
        let components = self
            .readiness
            .report()
            .into_iter()
            .map(|c| ComponentStatus {
                name: c.name,
                ready: c.ready,
                detail: c.detail,
            })
            .collect();
        Ok(Response::new(GetStatusResponse {
            ready: self.readiness.is_ready(),
            mode: self.mode.to_owned(),
            bus: self.bus.to_owned(),
            components,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            venues: self.venues.clone(),
        }))
    }

    async fn explain_config(
        &self,
        _request: Request<ExplainConfigRequest>,
    ) -> Result<Response<ExplainConfigResponse>, Status> {
        Ok(Response::new(ExplainConfigResponse {
            config_json: self.config_json.clone(),
        }))
    }

    async fn record_tool_call(
        &self,
        request: Request<RecordToolCallRequest>,
    ) -> Result<Response<RecordToolCallResponse>, Status> {
        // The actor is whoever the AuthLayer authenticated, never a field of the request.
        let actor = crate::caller_name(&request);
        let r = request.into_inner();
        let tool = r.tool.trim();
        let rec = gekko_mcp::audit::tool_call_record(actor.clone(), &r)?;
        let recorded = match self.ctx.audit().record(rec).await {
            Ok(id) => id.is_some(),
            Err(e) => {
                tracing::warn!(error = %e, tool, "mcp.tool_call not written to the audit trail");
                return Err(Status::unavailable(format!(
                    "the audit trail could not be written: {e}"
                )));
            }
        };
        Ok(Response::new(RecordToolCallResponse { recorded, actor }))
    }

    async fn shutdown(
        &self,
        request: Request<ShutdownRequest>,
    ) -> Result<Response<ShutdownResponse>, Status> {
        let caller = crate::caller_name(&request);
        let req = request.into_inner();
        let mode = if req.mode.is_empty() {
            None
        } else {
            Some(req.mode.parse::<ShutdownMode>().map_err(|e| {
                Status::invalid_argument(format!(
                    "mode: {e}; expected one of stop-entries, cancel, flatten, or empty for \
                     the configured default"
                ))
            })?)
        };
        let accepted = self.ctx.request_stop(mode, format!("grpc:{caller}"));
        // The first request decides the mode; a later one is told which it is.
        let first = self.ctx.stop_request().map_or(mode, |r| r.mode);
        let resolved = self.controller.mode_of(first);
        let mut resp = ShutdownResponse {
            accepted,
            mode: resolved.to_string(),
            ..ShutdownResponse::default()
        };
        if req.wait {
            let outcome = self.controller.outcome().await;
            resp.mode = outcome.mode;
            resp.report_json = outcome.report_json;
            resp.report_markdown = outcome.report_markdown;
            resp.not_done = outcome.not_done;
        }
        Ok(Response::new(resp))
    }
}
