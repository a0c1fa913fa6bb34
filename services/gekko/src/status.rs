//! The controller's gRPC `SystemService`: readiness of everything `gekko up` hosts, and
//! `Shutdown`.
//!
//! It is a hosted service like the others, so it is served, and drained, exactly like
//! them. It creates the process's [`Controller`] and provides it, so the host's stopping
//! hook runs the same shutdown whether a signal or a `Shutdown` call asked for it.

use gekko_config::{ControllerSettings, GekkoConfig, ShutdownMode, VenueId};
use gekko_proto::v1::system_service_server::{SystemService, SystemServiceServer};
use gekko_proto::v1::{
    ComponentStatus, GetStatusRequest, GetStatusResponse, ShutdownRequest, ShutdownResponse,
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
    type Settings = (&'static str, ControllerSettings);

    fn resolve(cfg: &GekkoConfig) -> Result<Self::Settings, Vec<String>> {
        Ok((mode(cfg), cfg.controller.clone()))
    }

    async fn start(
        (mode, settings): Self::Settings,
        ctx: &ServiceCtx,
    ) -> Result<Started, BoxError> {
        let controller = Controller::new(settings, mode, ctx.readiness().clone());
        let svc = SystemStatus {
            readiness: ctx.readiness().clone(),
            mode,
            bus: ctx.bus().kind(),
            controller: controller.clone(),
            ctx: ctx.clone(),
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
        }))
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
