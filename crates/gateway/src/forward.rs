//! A standby's forwarding of order-side gRPC calls to the leader.
//!
//! The standby answers every `GatewayService` call a client sends it (compose's DNS round
//! robin reaches any replica): market-data calls from its own warm books and quotes, and
//! the order side (orders, cancels, account, open orders, closes, the kill switch) by
//! forwarding to the address the lease record advertises. The caller's metadata (its
//! `authorization` token included) travels with the call, so the leader authenticates and
//! authorises it again, and audits it under the same name. A call is forwarded at most
//! once: one marked `x-gekko-forwarded` that reaches a standby again (a leader change in
//! between) is answered `UNAVAILABLE`, and the client retries.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use gekko_core::sync::lock;
use gekko_proto::v1::gateway_service_client::GatewayServiceClient;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

/// The metadata key marking a forwarded call.
pub(crate) const FORWARDED: &str = "x-gekko-forwarded";

/// How long a forwarded call may take: above any venue request timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Channels to leaders, by advertised address (lazily connected, reused).
#[derive(Debug, Default)]
pub(crate) struct Forwarder {
    channels: Mutex<HashMap<String, Channel>>,
}

impl Forwarder {
    /// A client for the leader at `addr`.
    pub(crate) fn client(&self, addr: &str) -> Result<GatewayServiceClient<Channel>, Status> {
        let mut channels = lock(&self.channels);
        if let Some(ch) = channels.get(addr) {
            return Ok(GatewayServiceClient::new(ch.clone()));
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| {
                Status::internal(format!(
                    "the leader's advertised address {addr:?} is not usable: {e}"
                ))
            })?
            .connect_timeout(Duration::from_secs(2))
            .timeout(CALL_TIMEOUT);
        let ch = endpoint.connect_lazy();
        // A handful of leaders over a process's life; keep only the newest few.
        if channels.len() >= 8 {
            channels.clear();
        }
        channels.insert(addr.to_owned(), ch.clone());
        Ok(GatewayServiceClient::new(ch))
    }
}

/// Where a call goes.
#[derive(Debug)]
pub(crate) enum Forward<T> {
    /// Served here (this replica leads, or there is no election).
    Local(Request<T>),
    /// Sent to the leader through this client, as this request.
    Leader(GatewayServiceClient<Channel>, Request<T>),
}

/// The caller's request as the leader gets it: the same message and metadata (its token),
/// marked as forwarded; the standby's own extensions (its view of the caller) stay behind.
pub(crate) fn forwarded<T>(r: Request<T>) -> Request<T> {
    let (mut meta, _, msg) = r.into_parts();
    meta.insert(FORWARDED, tonic::metadata::MetadataValue::from_static("1"));
    Request::from_parts(meta, tonic::Extensions::default(), msg)
}

/// The leader's answer as the client gets it; a leader that cannot be reached says so.
pub(crate) fn from_leader(s: Status) -> Status {
    match s.code() {
        tonic::Code::Unavailable | tonic::Code::Unknown if s.metadata().is_empty() => {
            Status::unavailable(format!(
                "forwarded to the leader, which did not answer ({}); a standby takes over within the lease TTL: retry with the same client_order_id",
                s.message()
            ))
        }
        _ => s,
    }
}
