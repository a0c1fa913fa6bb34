//! `gekko.v1.HealthAggregator`: `GetSystemHealth`, `Watch` and `Acknowledge`.

use std::pin::Pin;

use gekko_proto::v1 as pb;
use gekko_proto::v1::health_aggregator_server::{HealthAggregator, HealthAggregatorServer};
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status};

use crate::poller::HealthState;

/// The gRPC service over the shared [`HealthState`].
#[derive(Debug, Clone)]
pub struct HealthGrpc {
    state: HealthState,
}

impl HealthGrpc {
    /// A service over `state`.
    #[must_use]
    pub fn new(state: HealthState) -> Self {
        Self { state }
    }

    /// The tonic server.
    #[must_use]
    pub fn into_server(self) -> HealthAggregatorServer<Self> {
        HealthAggregatorServer::new(self)
    }
}

type HealthStream = Pin<Box<dyn Stream<Item = Result<pb::SystemHealth, Status>> + Send>>;

#[tonic::async_trait]
impl HealthAggregator for HealthGrpc {
    async fn get_system_health(
        &self,
        _request: Request<pb::GetSystemHealthRequest>,
    ) -> Result<Response<pb::SystemHealth>, Status> {
        Ok(Response::new(self.state.system_health()))
    }

    type WatchStream = HealthStream;

    async fn watch(
        &self,
        _request: Request<pb::WatchSystemHealthRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let state = self.state.clone();
        // WatchStream yields the current tree first, then one per change.
        let stream = tokio_stream::wrappers::WatchStream::new(self.state.subscribe())
            .map(move |_| Ok(state.system_health()));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn acknowledge(
        &self,
        request: Request<pb::AcknowledgeAlertRequest>,
    ) -> Result<Response<pb::AcknowledgeAlertResponse>, Status> {
        let req = request.into_inner();
        if req.id.trim().is_empty() {
            return Err(Status::invalid_argument(
                "id is empty: name the alert to acknowledge",
            ));
        }
        let alert = self.state.alerts.acknowledge(req.id.trim(), &req.by).await;
        Ok(Response::new(pb::AcknowledgeAlertResponse {
            acknowledged: alert.is_some(),
            alert: alert.map(|a| a.to_pb()),
        }))
    }
}
