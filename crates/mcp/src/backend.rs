//! The MCP server's way into gekko: gRPC, with the caller's token on every call.
//!
//! Both transports are gRPC clients of a running gekko, on purpose: the `AuthLayer` and
//! its method table (roles, `read_only`, TOTP) then apply to an MCP agent exactly as to
//! grpcurl, and every order still passes the gateway's own pre-trade checks. The MCP
//! server never holds a gateway itself, so it cannot reach around them.
//!
//! One [`Channel`] (HTTP/2, multiplexed, reconnecting) is shared by every session; the
//! token is per call, because over HTTP each request may come from a different client.

use gekko_proto::v1 as pb;
use gekko_proto::v1::gateway_service_client::GatewayServiceClient;
use gekko_proto::v1::inference_service_client::InferenceServiceClient;
use gekko_proto::v1::system_service_client::SystemServiceClient;
use secrecy::{ExposeSecret as _, SecretString};
use tonic::transport::Channel;

/// The token a call is made with: the stdio process's `--token`, or the bearer token an
/// HTTP request was authenticated with. `None` when gRPC auth is off.
#[derive(Clone, Default)]
pub struct Token(Option<SecretString>);

impl Token {
    /// A token (or none).
    #[must_use]
    pub fn new(token: Option<SecretString>) -> Self {
        Self(token)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Token(***)"
        } else {
            "Token(none)"
        })
    }
}

/// gRPC clients of gekko's GatewayService, SystemService and InferenceService.
#[derive(Debug, Clone)]
pub struct Backend {
    channel: Channel,
}

impl Backend {
    /// Clients over `channel` (connected lazily or eagerly by the caller).
    #[must_use]
    pub fn new(channel: Channel) -> Self {
        Self { channel }
    }

    fn req<T>(msg: T, token: &Token) -> Result<tonic::Request<T>, tonic::Status> {
        let mut r = tonic::Request::new(msg);
        r.set_timeout(std::time::Duration::from_secs(30));
        if let Some(t) = &token.0 {
            let mut v: tonic::metadata::MetadataValue<_> = format!("Bearer {}", t.expose_secret())
                .parse()
                .map_err(|_| tonic::Status::unauthenticated("the token is not visible ASCII"))?;
            v.set_sensitive(true);
            r.metadata_mut().insert("authorization", v);
        }
        Ok(r)
    }

    fn gateway(&self) -> GatewayServiceClient<Channel> {
        GatewayServiceClient::new(self.channel.clone())
    }

    fn system(&self) -> SystemServiceClient<Channel> {
        SystemServiceClient::new(self.channel.clone())
    }

    fn inference(&self) -> InferenceServiceClient<Channel> {
        InferenceServiceClient::new(self.channel.clone())
    }
}

/// One method per RPC the tools use: `$name(request, token) -> response`.
macro_rules! rpcs {
    ($($name:ident: $client:ident . $method:ident ($req:ty) -> $resp:ty;)*) => {
        impl Backend {
            $(
                #[doc = concat!("`", stringify!($method), "` with `token`.")]
                ///
                /// # Errors
                /// The gRPC status (refusals by the `AuthLayer`, the gateway's checks, an
                /// unreachable server).
                pub async fn $name(&self, msg: $req, token: &Token) -> Result<$resp, tonic::Status> {
                    let r = Self::req(msg, token)?;
                    self.$client().$method(r).await.map(tonic::Response::into_inner)
                }
            )*
        }
    };
}

rpcs! {
    status: system.get_status(pb::GetStatusRequest) -> pb::GetStatusResponse;
    explain_config: system.explain_config(pb::ExplainConfigRequest) -> pb::ExplainConfigResponse;
    record_tool_call: system.record_tool_call(pb::RecordToolCallRequest) -> pb::RecordToolCallResponse;
    instruments: gateway.get_instruments(pb::GetInstrumentsRequest) -> pb::GetInstrumentsResponse;
    quote: gateway.get_quote(pb::GetQuoteRequest) -> pb::QuoteUpdate;
    order_book: gateway.get_order_book(pb::GetOrderBookRequest) -> pb::GetOrderBookResponse;
    account: gateway.get_account(pb::GetAccountRequest) -> pb::GetAccountResponse;
    open_orders: gateway.list_open_orders(pb::ListOpenOrdersRequest) -> pb::ListOpenOrdersResponse;
    order: gateway.get_order(pb::GetOrderRequest) -> pb::OrderReply;
    place_order: gateway.place_order(pb::PlaceOrderRequest) -> pb::OrderReply;
    cancel_order: gateway.cancel_order(pb::CancelOrderRequest) -> pb::OrderReply;
    cancel_all: gateway.cancel_all_orders(pb::CancelAllOrdersRequest) -> pb::CancelAllOrdersResponse;
    close_positions: gateway.close_positions(pb::ClosePositionsRequest) -> pb::ClosePositionsResponse;
    latest_signals: inference.latest_signals(pb::LatestSignalsRequest) -> pb::LatestSignalsResponse;
}
