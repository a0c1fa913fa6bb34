//! Shared by the runtime's integration tests: the one `SystemService` their test servers
//! register (`mod support;` in each test file). What `GetStatus` and `Shutdown` answer is
//! the test's choice; the other methods are never called by these tests and answer
//! `UNIMPLEMENTED`.
#![allow(dead_code, unreachable_pub)]

use gekko_proto::v1 as pb;
use gekko_proto::v1::system_service_server::{SystemService, SystemServiceServer};
use tonic::{Request, Response, Status};

/// How `GetStatus` answers: from the request (its caller, say) or from test state.
type StatusFn = dyn Fn(&Request<pb::GetStatusRequest>) -> pb::GetStatusResponse + Send + Sync;

/// A `SystemService` for test servers.
pub struct TestSystem {
    status: Box<StatusFn>,
    /// `None`: `Shutdown` is `UNIMPLEMENTED` (no controller in the test).
    shutdown: Option<pb::ShutdownResponse>,
}

impl TestSystem {
    /// `GetStatus` answers `status(request)`; `Shutdown` is unimplemented.
    pub fn new(
        status: impl Fn(&Request<pb::GetStatusRequest>) -> pb::GetStatusResponse + Send + Sync + 'static,
    ) -> Self {
        Self {
            status: Box::new(status),
            shutdown: None,
        }
    }

    /// Default answers to both `GetStatus` and `Shutdown`.
    pub fn plain() -> Self {
        Self::new(|_| pb::GetStatusResponse::default()).answering_shutdown(Default::default())
    }

    /// `Shutdown` answers `reply`.
    pub fn answering_shutdown(mut self, reply: pb::ShutdownResponse) -> Self {
        self.shutdown = Some(reply);
        self
    }

    /// The tonic service.
    pub fn into_server(self) -> SystemServiceServer<Self> {
        SystemServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl SystemService for TestSystem {
    async fn explain_config(
        &self,
        _: Request<pb::ExplainConfigRequest>,
    ) -> Result<Response<pb::ExplainConfigResponse>, Status> {
        Err(Status::unimplemented("not served by this test server"))
    }

    async fn record_tool_call(
        &self,
        _: Request<pb::RecordToolCallRequest>,
    ) -> Result<Response<pb::RecordToolCallResponse>, Status> {
        Err(Status::unimplemented("not served by this test server"))
    }

    async fn get_status(
        &self,
        req: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::GetStatusResponse>, Status> {
        Ok(Response::new((self.status)(&req)))
    }

    async fn shutdown(
        &self,
        _: Request<pb::ShutdownRequest>,
    ) -> Result<Response<pb::ShutdownResponse>, Status> {
        self.shutdown
            .clone()
            .map(Response::new)
            .ok_or_else(|| Status::unimplemented("no controller in this test"))
    }
}
