//! The MCP server's way into gekko: gRPC, with the caller's token on every call.
//!
//! Both transports are gRPC clients of a running gekko, on purpose: the `AuthLayer` and
//! its method table (roles, `read_only`, TOTP) then apply to an MCP agent exactly as to
//! grpcurl, and every order still passes the gateway's own pre-trade checks. The MCP
//! server never holds a gateway itself, so it cannot reach around them.
//!
//! One [`Channel`] (HTTP/2, multiplexed, reconnecting) is shared by every session; the
//! token is per call, because over HTTP each request may come from a different client.
//!
//! Two forms:
//! - [`Backend::new`]: one address, `gekko up`'s own port, which hosts every gateway, the
//!   inference service and the controller's `SystemService`;
//! - [`Backend::routed`]: the compose deployment, where each venue's gateway and the
//!   inference service are processes of their own. Gateway calls go to the channel of
//!   the venue their request names; there is no `SystemService`, so `status` is built
//!   here from each route's `grpc.health.v1` check (every routed venue reported live:
//!   nothing this process can see proves a remote gateway simulated), `explain_config`
//!   is refused naming configd, and the `mcp.tool_call` record is written through this
//!   process's own audit log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gekko_audit::AuditLog;
use gekko_core::VenueId;
use gekko_proto::v1 as pb;
use gekko_proto::v1::gateway_service_client::GatewayServiceClient;
use gekko_proto::v1::inference_service_client::InferenceServiceClient;
use gekko_proto::v1::system_service_client::SystemServiceClient;
use secrecy::{ExposeSecret as _, SecretString};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

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

/// How long one routed health check may take in `status`.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

/// gRPC clients of gekko's GatewayService, SystemService and InferenceService: one
/// address, or routed per venue (see the module docs). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Backend {
    kind: Arc<Kind>,
}

#[derive(Debug)]
enum Kind {
    /// `gekko up`: everything behind one channel.
    Single(Channel),
    /// Separate processes per venue and for inference.
    Routed(Routes),
}

/// One routed endpoint: its URL (shown in `status` and errors) and its channel.
#[derive(Debug)]
struct Route {
    url: String,
    channel: Channel,
}

#[derive(Debug)]
struct Routes {
    gateways: BTreeMap<VenueId, Route>,
    inference: Option<Route>,
    audit: AuditLog,
}

impl Routes {
    /// The routed gateways, alphabetically by venue name.
    fn sorted(&self) -> Vec<(VenueId, &Route)> {
        let mut all: Vec<(VenueId, &Route)> = self.gateways.iter().map(|(v, r)| (*v, r)).collect();
        all.sort_unstable_by_key(|(v, _)| v.as_str());
        all
    }

    /// The routed venue names, alphabetically, for error messages.
    fn routed(&self) -> String {
        let names: Vec<&str> = self.sorted().into_iter().map(|(v, _)| v.as_str()).collect();
        if names.is_empty() {
            "none (set MCP_SETTINGS grpc.<venue>)".to_owned()
        } else {
            names.join(", ")
        }
    }

    /// The channel of the gateway a request's `venue` field names; empty means the one
    /// routed venue when there is exactly one.
    fn pick(&self, venue: &str) -> Result<&Channel, tonic::Status> {
        let venue = venue.trim();
        if venue.is_empty() {
            return match self.gateways.values().next() {
                Some(r) if self.gateways.len() == 1 => Ok(&r.channel),
                _ => Err(tonic::Status::invalid_argument(format!(
                    "venue: required when several venues are routed; this MCP server routes: {}",
                    self.routed()
                ))),
            };
        }
        venue
            .parse::<VenueId>()
            .ok()
            .and_then(|v| self.gateways.get(&v))
            .map(|r| &r.channel)
            .ok_or_else(|| {
                tonic::Status::invalid_argument(format!(
                    "venue: {venue:?} is not routed here; this MCP server routes: {}",
                    self.routed()
                ))
            })
    }
}

/// A routed backend could not be built.
#[derive(Debug, thiserror::Error)]
#[error("MCP_SETTINGS grpc.{key}: {message}")]
pub struct RouteError {
    key: String,
    message: String,
}

/// A lazily connected channel to `url`, over TLS when `tls` is given and `url` is https.
fn lazy_channel(
    key: &str,
    url: &str,
    tls: Option<&gekko_security::ClientTls>,
) -> Result<Channel, RouteError> {
    let err = |message: String| RouteError {
        key: key.to_owned(),
        message,
    };
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| err(format!("{url:?} is not a valid URL: {e}")))?
        .connect_timeout(Duration::from_secs(5));
    if url.starts_with("https://") {
        let Some(tls) = tls else {
            return Err(err(
                "an https:// route needs MCP_SETTINGS grpc_ca (the CA of the routed services)"
                    .to_owned(),
            ));
        };
        endpoint = endpoint
            .tls_config(tls.tonic_config())
            .map_err(|e| err(format!("TLS: {e}")))?;
    }
    Ok(endpoint.connect_lazy())
}

impl Backend {
    /// Clients over `channel` (connected lazily or eagerly by the caller): `gekko up`.
    #[must_use]
    pub fn new(channel: Channel) -> Self {
        Self {
            kind: Arc::new(Kind::Single(channel)),
        }
    }

    /// Clients of separate processes: one lazily connected channel per venue gateway in
    /// `gateways`, one for `inference`. `audit` is where this process writes the
    /// `mcp.tool_call` records (there is no `SystemService` to write them).
    ///
    /// # Errors
    /// [`RouteError`] naming the `MCP_SETTINGS grpc.*` key whose URL cannot be used (an
    /// https route without `tls`).
    pub fn routed(
        gateways: &BTreeMap<VenueId, String>,
        inference: Option<&str>,
        tls: Option<&gekko_security::ClientTls>,
        audit: AuditLog,
    ) -> Result<Self, RouteError> {
        let mut routes = BTreeMap::new();
        for (venue, url) in gateways {
            let channel = lazy_channel(venue.as_str(), url, tls)?;
            routes.insert(
                *venue,
                Route {
                    url: url.clone(),
                    channel,
                },
            );
        }
        let inference = inference
            .map(|url| {
                lazy_channel("inference", url, tls).map(|channel| Route {
                    url: url.to_owned(),
                    channel,
                })
            })
            .transpose()?;
        Ok(Self {
            kind: Arc::new(Kind::Routed(Routes {
                gateways: routes,
                inference,
                audit,
            })),
        })
    }

    /// Whether this backend is routed ([`Backend::routed`]).
    #[must_use]
    pub fn is_routed(&self) -> bool {
        matches!(*self.kind, Kind::Routed(_))
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

    fn gateway(&self, venue: &str) -> Result<GatewayServiceClient<Channel>, tonic::Status> {
        match &*self.kind {
            Kind::Single(c) => Ok(GatewayServiceClient::new(c.clone())),
            Kind::Routed(r) => Ok(GatewayServiceClient::new(r.pick(venue)?.clone())),
        }
    }

    fn system(&self) -> Result<SystemServiceClient<Channel>, tonic::Status> {
        match &*self.kind {
            Kind::Single(c) => Ok(SystemServiceClient::new(c.clone())),
            // Callers answer these themselves in routed mode; reaching here is a mistake
            // reported as such, never a call to some other service.
            Kind::Routed(_) => Err(tonic::Status::failed_precondition(
                "a routed MCP server has no SystemService",
            )),
        }
    }

    fn inference(&self) -> Result<InferenceServiceClient<Channel>, tonic::Status> {
        match &*self.kind {
            Kind::Single(c) => Ok(InferenceServiceClient::new(c.clone())),
            Kind::Routed(Routes {
                inference: Some(r), ..
            }) => Ok(InferenceServiceClient::new(r.channel.clone())),
            Kind::Routed(_) => Err(tonic::Status::failed_precondition(
                "no inference service is routed: set MCP_SETTINGS grpc.inference to its gRPC URL",
            )),
        }
    }

    /// `GetStatus` with `token`; routed, built from each route's health check.
    ///
    /// # Errors
    /// The gRPC status of `GetStatus` (single address only; a routed status reports an
    /// unreachable route as a component that is not ready).
    pub async fn status(
        &self,
        msg: pb::GetStatusRequest,
        token: &Token,
    ) -> Result<pb::GetStatusResponse, tonic::Status> {
        let routes = match &*self.kind {
            Kind::Single(_) => {
                let r = Self::req(msg, token)?;
                return self
                    .system()?
                    .get_status(r)
                    .await
                    .map(tonic::Response::into_inner);
            }
            Kind::Routed(r) => r,
        };
        let named = routes
            .sorted()
            .into_iter()
            .map(|(v, r)| (format!("gateway-{v}"), r))
            .chain(routes.inference.iter().map(|r| ("inference".to_owned(), r)));
        let checks = named.map(|(name, route)| async move {
            let (ready, detail) = health(route, token).await;
            pb::ComponentStatus {
                name,
                ready,
                detail,
            }
        });
        let components: Vec<pb::ComponentStatus> = futures::future::join_all(checks).await;
        Ok(pb::GetStatusResponse {
            ready: !components.is_empty() && components.iter().all(|c| c.ready),
            // Every routed gateway holds its credentials (from configd) and its venue URL
            // in its own process: as far as this process can know, each is live.
            mode: "live".to_owned(),
            bus: "remote".to_owned(),
            components,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            venues: Self::routed_venues(routes),
        })
    }

    /// Every venue this backend reaches and whether it is simulated: `GetStatus`'s
    /// venues, or routed, every routed venue with `simulated: false` (never inferred from
    /// this process's environment).
    ///
    /// # Errors
    /// As [`Backend::status`].
    pub async fn venues(&self, token: &Token) -> Result<Vec<pb::VenueMode>, tonic::Status> {
        match &*self.kind {
            Kind::Single(_) => Ok(self.status(pb::GetStatusRequest {}, token).await?.venues),
            Kind::Routed(r) => Ok(Self::routed_venues(r)),
        }
    }

    fn routed_venues(routes: &Routes) -> Vec<pb::VenueMode> {
        routes
            .sorted()
            .into_iter()
            .map(|(v, _)| pb::VenueMode {
                venue: v.to_string(),
                simulated: false,
            })
            .collect()
    }

    /// `ExplainConfig` with `token`.
    ///
    /// # Errors
    /// The gRPC status; routed, `FAILED_PRECONDITION` saying where the configuration is.
    pub async fn explain_config(
        &self,
        msg: pb::ExplainConfigRequest,
        token: &Token,
    ) -> Result<pb::ExplainConfigResponse, tonic::Status> {
        if self.is_routed() {
            return Err(tonic::Status::failed_precondition(
                "explain_config: this MCP server is routed to separate gateway processes and no \
                 gekko up hosts a SystemService; the running configuration is served by configd \
                 (ConfigService/GetConfig, in compose at configd:50051 with configd's token), \
                 which this MCP server does not call",
            ));
        }
        let r = Self::req(msg, token)?;
        self.system()?
            .explain_config(r)
            .await
            .map(tonic::Response::into_inner)
    }

    /// Writes the `mcp.tool_call` record: through `SystemService/RecordToolCall` with
    /// `token` (the gRPC server stamps the actor), or routed, through this process's own
    /// audit log with `actor` (the name of the token the HTTP layer authenticated).
    ///
    /// # Errors
    /// The gRPC status, or routed, `INVALID_ARGUMENT` for a malformed record and
    /// `UNAVAILABLE` when the audit trail cannot be written.
    pub async fn record_tool_call(
        &self,
        msg: pb::RecordToolCallRequest,
        token: &Token,
        actor: &str,
    ) -> Result<pb::RecordToolCallResponse, tonic::Status> {
        let routes = match &*self.kind {
            Kind::Single(_) => {
                let r = Self::req(msg, token)?;
                return self
                    .system()?
                    .record_tool_call(r)
                    .await
                    .map(tonic::Response::into_inner);
            }
            Kind::Routed(r) => r,
        };
        let rec = crate::audit::tool_call_record(actor, &msg)?;
        let recorded = routes.audit.record(rec).await.map_err(|e| {
            tonic::Status::unavailable(format!("the audit trail could not be written: {e}"))
        })?;
        Ok(pb::RecordToolCallResponse {
            recorded: recorded.is_some(),
            actor: actor.to_owned(),
        })
    }
}

/// One route's `grpc.health.v1.Health/Check` of the whole server: ready, and a detail
/// with the URL or the error.
async fn health(route: &Route, token: &Token) -> (bool, String) {
    let mut req = match Backend::req(HealthCheckRequest::default(), token) {
        Ok(r) => r,
        Err(e) => return (false, format!("{}: {}", route.url, e.message())),
    };
    req.set_timeout(HEALTH_TIMEOUT);
    let answer = tokio::time::timeout(
        HEALTH_TIMEOUT,
        HealthClient::new(route.channel.clone()).check(req),
    )
    .await;
    match answer {
        Ok(Ok(r)) => {
            let status = r.into_inner().status();
            if status == ServingStatus::Serving {
                (true, format!("serving at {}", route.url))
            } else {
                (
                    false,
                    format!(
                        "{}: health check answered {}",
                        route.url,
                        status.as_str_name()
                    ),
                )
            }
        }
        Ok(Err(e)) => (
            false,
            format!(
                "{}: health check failed: {:?}: {}",
                route.url,
                e.code(),
                e.message()
            ),
        ),
        Err(_) => (
            false,
            format!("{}: no health answer within {HEALTH_TIMEOUT:?}", route.url),
        ),
    }
}

/// One method per RPC the tools use: `$name(request, token) -> response`.
macro_rules! rpcs {
    ($($name:ident: $client:ident $(($venue:ident))? . $method:ident ($req:ty) -> $resp:ty;)*) => {
        impl Backend {
            $(
                #[doc = concat!("`", stringify!($method), "` with `token`.")]
                ///
                /// # Errors
                /// The gRPC status (refusals by the `AuthLayer`, the gateway's checks, an
                /// unreachable server; routed, a venue that is not routed).
                pub async fn $name(&self, msg: $req, token: &Token) -> Result<$resp, tonic::Status> {
                    let mut client = self.$client($(&msg.$venue)?)?;
                    let r = Self::req(msg, token)?;
                    client.$method(r).await.map(tonic::Response::into_inner)
                }
            )*
        }
    };
}

rpcs! {
    instruments: gateway(venue).get_instruments(pb::GetInstrumentsRequest) -> pb::GetInstrumentsResponse;
    quote: gateway(venue).get_quote(pb::GetQuoteRequest) -> pb::QuoteUpdate;
    order_book: gateway(venue).get_order_book(pb::GetOrderBookRequest) -> pb::GetOrderBookResponse;
    account: gateway(venue).get_account(pb::GetAccountRequest) -> pb::GetAccountResponse;
    open_orders: gateway(venue).list_open_orders(pb::ListOpenOrdersRequest) -> pb::ListOpenOrdersResponse;
    order: gateway(venue).get_order(pb::GetOrderRequest) -> pb::OrderReply;
    place_order: gateway(venue).place_order(pb::PlaceOrderRequest) -> pb::OrderReply;
    cancel_order: gateway(venue).cancel_order(pb::CancelOrderRequest) -> pb::OrderReply;
    cancel_all: gateway(venue).cancel_all_orders(pb::CancelAllOrdersRequest) -> pb::CancelAllOrdersResponse;
    close_positions: gateway(venue).close_positions(pb::ClosePositionsRequest) -> pb::ClosePositionsResponse;
    latest_signals: inference.latest_signals(pb::LatestSignalsRequest) -> pb::LatestSignalsResponse;
}
