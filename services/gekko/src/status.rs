//! The controller's gRPC `SystemService`: readiness of everything `gekko up` hosts.
//!
//! It is a hosted service like the others, so it is served, and drained, exactly like
//! them; it only needs the readiness latch and the bus kind from its context.

use gekko_config::{GekkoConfig, VenueId};
use gekko_proto::v1::system_service_server::{SystemService, SystemServiceServer};
use gekko_proto::v1::{ComponentStatus, GetStatusRequest, GetStatusResponse};
use gekko_runtime::{BoxError, Readiness, Service, ServiceCtx, Started};
use tonic::{Request, Response, Status};

/// Answers `GetStatus` from the process's readiness latch.
#[derive(Debug, Clone)]
pub(crate) struct SystemStatus {
    pub readiness: Readiness,
    pub mode: &'static str,
    pub bus: &'static str,
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
    type Settings = &'static str;

    fn resolve(cfg: &GekkoConfig) -> Result<&'static str, Vec<String>> {
        Ok(mode(cfg))
    }

    async fn start(mode: &'static str, ctx: &ServiceCtx) -> Result<Started, BoxError> {
        let svc = SystemStatus {
            readiness: ctx.readiness().clone(),
            mode,
            bus: ctx.bus().kind(),
        };
        Ok(Started::new().grpc(SystemServiceServer::new(svc)))
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
}
