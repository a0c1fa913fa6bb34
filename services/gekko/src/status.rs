//! The controller's gRPC `SystemService`: readiness of everything `gekko up` hosts.

use gekko_proto::v1::system_service_server::SystemService;
use gekko_proto::v1::{ComponentStatus, GetStatusRequest, GetStatusResponse};
use gekko_runtime::Readiness;
use tonic::{Request, Response, Status};

/// Answers `GetStatus` from the process's readiness latch.
#[derive(Debug, Clone)]
pub struct SystemStatus {
    pub readiness: Readiness,
    pub mode: &'static str,
    pub bus: &'static str,
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
