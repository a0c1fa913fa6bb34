//! The streamable HTTP transport: the `mcp` service of `gekko up`, serving rmcp's
//! `StreamableHttpService` at `/mcp` on its own listener (`MCP_SETTINGS http_addr`).
//!
//! Every request needs `Authorization: Bearer <token>`, checked against the same token
//! table as gRPC (`ACCESS_CONTROL_CONFIG`, through [`AuthPolicy`]) before rmcp sees it: a
//! missing or unknown token is HTTP 401, and with no tokens configured at all every
//! request is 401 saying `tokens=` must be set (an unauthenticated trading endpoint over
//! HTTP is never served). The validated token is then forwarded on every gRPC call, so
//! the caller's role applies twice: in the guard (a viewer cannot reach a state-changing
//! tool) and in the gRPC `AuthLayer`.
//!
//! The in-process MCP server is a gRPC client of the host's own gRPC address (from
//! [`ServiceCtx::grpc_addr`]), connected lazily because the host serves gRPC only once
//! every service has started. With `MCP_SETTINGS grpc.*` routes set it is instead a
//! client of those addresses ([`Backend::routed`]) and needs no gRPC address of its own
//! host: that is the `mcp` binary of the compose deployment ([`McpRoutedService`], which
//! requires routes).
//!
//! When gRPC serves TLS the client verifies gekko's certificate with `MCP_SETTINGS
//! grpc_ca` and, under mTLS, presents `grpc_client_cert`/`grpc_client_key`.
//!
//! Two deliberate soft failures, both logged as errors and shown by `gekko check`: when
//! the port cannot be bound, and when gRPC serves TLS but `grpc_ca` is not set (or mTLS
//! without a client certificate), `gekko up` runs without the HTTP transport instead of
//! refusing to start its trading services. `gekko mcp` (stdio) has its own TLS flags.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gekko_config::{AccessControl, GekkoConfig, McpSettings};
use gekko_runtime::{BoxError, Service, ServiceCtx, Started};
use gekko_security::AuthPolicy;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use secrecy::SecretString;

use crate::backend::{Backend, Token};
use crate::guard::Guard;
use crate::server::{GekkoMcp, HttpCaller, Identity};

/// The gRPC path whose access rule decides who may use MCP over HTTP: the viewer-level,
/// non-state-changing method every tool call is audited through.
const MCP_ACCESS_METHOD: &str = "/gekko.v1.SystemService/RecordToolCall";

/// Where the HTTP transport listens, once bound: provided to the rest of the process
/// (`gekko up` prints it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McpEndpoint(pub SocketAddr);

impl McpEndpoint {
    /// `http://ADDR/mcp`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.0)
    }
}

/// The resolved settings of [`McpHttpService`].
#[derive(Debug, Clone)]
pub struct McpHttpSettings {
    addr: SocketAddr,
    guard: McpSettings,
    access: AccessControl,
    grpc_tls: bool,
    grpc_mtls: bool,
}

/// The `mcp` service: streamable HTTP at `/mcp`.
#[derive(Debug)]
pub struct McpHttpService;

impl Service for McpHttpService {
    const NAME: &'static str = "mcp";
    type Settings = Option<McpHttpSettings>;

    fn resolve(cfg: &GekkoConfig) -> Result<Self::Settings, Vec<String>> {
        // An explicitly configured transport must work: a TLS set-up it cannot join is a
        // config problem (exit 64) rather than a transport quietly left off. Routed, the
        // host's own TLS is not what the client joins (the routes' URLs say).
        if cfg.mcp.http_addr.is_some() && cfg.mcp.http_addr_explicit && !cfg.mcp.routed() {
            let mut problems = Vec::new();
            if cfg.access_control.tls_cert.is_some() && cfg.mcp.grpc_ca.is_none() {
                problems.push(
                    "MCP_SETTINGS http_addr is set and gRPC serves TLS (ACCESS_CONTROL_CONFIG tls_cert): set MCP_SETTINGS grpc_ca to the CA of gekko's certificate, or http_addr=off".to_owned(),
                );
            }
            if cfg.access_control.tls_client_ca.is_some() && cfg.mcp.grpc_client_cert.is_none() {
                problems.push(
                    "MCP_SETTINGS http_addr is set and gRPC requires client certificates (ACCESS_CONTROL_CONFIG tls_client_ca): set MCP_SETTINGS grpc_client_cert and grpc_client_key, or http_addr=off".to_owned(),
                );
            }
            if !problems.is_empty() {
                return Err(problems);
            }
        }
        Ok(cfg.mcp.http_addr.map(|addr| McpHttpSettings {
            addr,
            guard: cfg.mcp.clone(),
            access: cfg.access_control.clone(),
            grpc_tls: cfg.access_control.tls_cert.is_some(),
            grpc_mtls: cfg.access_control.tls_client_ca.is_some(),
        }))
    }

    async fn start(settings: Self::Settings, ctx: &ServiceCtx) -> Result<Started, BoxError> {
        let Some(s) = settings else {
            tracing::info!("MCP HTTP transport off (MCP_SETTINGS http_addr=off)");
            return Ok(Started::new());
        };
        crate::server::describe_metrics();
        if s.guard.routed() {
            return start_routed(&s, ctx).await;
        }
        let off = |msg: &str| {
            tracing::error!("{msg}");
            eprintln!("gekko: mcp: {msg}");
            Ok(Started::new())
        };
        let tls = if s.grpc_tls {
            let Some(ca) = &s.guard.grpc_ca else {
                return off(
                    "the MCP HTTP transport is off: gRPC serves TLS (ACCESS_CONTROL_CONFIG tls_cert) and MCP_SETTINGS grpc_ca (the CA of gekko's certificate) is not set",
                );
            };
            let identity = s
                .guard
                .grpc_client_cert
                .as_deref()
                .zip(s.guard.grpc_client_key.as_deref());
            if s.grpc_mtls && identity.is_none() {
                return off(
                    "the MCP HTTP transport is off: gRPC requires client certificates (ACCESS_CONTROL_CONFIG tls_client_ca) and MCP_SETTINGS grpc_client_cert/grpc_client_key are not set",
                );
            }
            // Configured explicitly, so an unreadable file stops the start (exit 69).
            Some(
                gekko_security::ClientTls::from_files(ca, identity)
                    .map_err(|e| format!("MCP_SETTINGS grpc_ca/grpc_client_cert: {e}"))?,
            )
        } else {
            None
        };
        let Some(grpc) = ctx.grpc_addr() else {
            return Err("the MCP HTTP transport needs the host's gRPC address".into());
        };
        let listener = match tokio::net::TcpListener::bind(s.addr).await {
            Ok(l) => l,
            Err(e) if s.guard.http_addr_explicit => {
                return Err(
                    format!("MCP_SETTINGS http_addr {} cannot be bound: {e}", s.addr).into(),
                );
            }
            Err(e) => {
                let msg = format!(
                    "the MCP HTTP transport is off: the default MCP_SETTINGS http_addr {} cannot be bound ({e}); set http_addr to a free address, or http_addr=off",
                    s.addr
                );
                tracing::error!("{msg}");
                eprintln!("gekko: mcp: {msg}");
                return Ok(Started::new());
            }
        };
        let local = listener.local_addr().unwrap_or(s.addr);
        let router = router(Backend::new(loopback_channel(grpc, tls.as_ref())?), &s, ctx)?;
        serve(listener, router, ctx);
        tracing::info!(addr = %local, mode = %s.guard.mode, "MCP HTTP transport listening at /mcp");
        Ok(Started::new().provide(McpEndpoint(local)))
    }
}

/// The requirement [`McpRoutedService`] adds.
const ROUTES_REQUIRED: &str = "the mcp binary needs its routes: set MCP_SETTINGS grpc.binanceus, grpc.coinbase, grpc.oanda (each venue's gateway gRPC URL, at least one) and grpc.inference (e.g. grpc.binanceus=http://gateway-binanceus:50051); it has no gekko up gRPC address to use instead";

/// The `mcp` service of the `mcp` binary (the compose deployment): [`McpHttpService`]
/// with `MCP_SETTINGS grpc.*` routes and `http_addr` required, so a container without
/// them stops with exit 64 instead of serving nothing.
#[derive(Debug)]
pub struct McpRoutedService;

impl Service for McpRoutedService {
    const NAME: &'static str = "mcp";
    type Settings = McpHttpSettings;

    fn resolve(cfg: &GekkoConfig) -> Result<Self::Settings, Vec<String>> {
        let mut problems = Vec::new();
        if cfg.mcp.grpc_routes.is_empty() {
            problems.push(ROUTES_REQUIRED.to_owned());
        }
        if cfg.mcp.http_addr.is_none() {
            problems.push(
                "the mcp binary serves MCP over HTTP only: MCP_SETTINGS http_addr must be an ip:port, not off".to_owned(),
            );
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        match McpHttpService::resolve(cfg)? {
            Some(s) => Ok(s),
            None => Err(vec![ROUTES_REQUIRED.to_owned()]),
        }
    }

    async fn start(settings: Self::Settings, ctx: &ServiceCtx) -> Result<Started, BoxError> {
        // Serving HTTP is all this binary does: an address it cannot bind stops it.
        let mut settings = settings;
        settings.guard.http_addr_explicit = true;
        McpHttpService::start(Some(settings), ctx).await
    }
}

/// Serves the routed transport: a client of the `grpc.*` routes, auditing locally.
async fn start_routed(s: &McpHttpSettings, ctx: &ServiceCtx) -> Result<Started, BoxError> {
    let g = &s.guard;
    let tls = match &g.grpc_ca {
        Some(ca) => {
            let identity = g
                .grpc_client_cert
                .as_deref()
                .zip(g.grpc_client_key.as_deref());
            Some(
                gekko_security::ClientTls::from_files(ca, identity)
                    .map_err(|e| format!("MCP_SETTINGS grpc_ca/grpc_client_cert: {e}"))?,
            )
        }
        None => None,
    };
    let backend = Backend::routed(
        &g.grpc_routes,
        g.grpc_inference.as_deref(),
        tls.as_ref(),
        ctx.audit().clone(),
    )?;
    let listener = match tokio::net::TcpListener::bind(s.addr).await {
        Ok(l) => l,
        Err(e) if g.http_addr_explicit => {
            return Err(format!("MCP_SETTINGS http_addr {} cannot be bound: {e}", s.addr).into());
        }
        Err(e) => {
            // As without routes: the default address only warns.
            let msg = format!(
                "the MCP HTTP transport is off: the default MCP_SETTINGS http_addr {} cannot be bound ({e}); set http_addr to a free address, or http_addr=off",
                s.addr
            );
            tracing::error!("{msg}");
            eprintln!("gekko: mcp: {msg}");
            return Ok(Started::new());
        }
    };
    let local = listener.local_addr().unwrap_or(s.addr);
    serve(listener, router(backend, s, ctx)?, ctx);
    let routed: Vec<String> = g
        .grpc_routes
        .iter()
        .map(|(v, u)| format!("{v}={u}"))
        .chain(g.grpc_inference.iter().map(|u| format!("inference={u}")))
        .collect();
    tracing::info!(addr = %local, mode = %g.mode, routes = %routed.join(" "), "MCP HTTP transport (routed) listening at /mcp");
    Ok(Started::new().provide(McpEndpoint(local)))
}

/// Serves `router` on `listener` until the host stops.
fn serve(listener: tokio::net::TcpListener, router: axum::Router, ctx: &ServiceCtx) {
    let cancel = ctx.cancel();
    ctx.spawn("mcp-http", async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
    });
}

/// A lazily connected channel to the host's gRPC listener (loopback when it is bound to
/// every interface), over TLS when `tls` is given.
fn loopback_channel(
    grpc: SocketAddr,
    tls: Option<&gekko_security::ClientTls>,
) -> Result<tonic::transport::Channel, BoxError> {
    let ip = match grpc.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", SocketAddr::new(ip, grpc.port()));
    let mut endpoint = tonic::transport::Endpoint::from_shared(url)?;
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls.tonic_config())?;
    }
    Ok(endpoint.connect_lazy())
}

/// The bearer-token check in front of rmcp.
struct HttpAuth {
    policy: AuthPolicy,
}

/// The axum router: `/mcp`, behind the bearer-token layer.
fn router(
    backend: Backend,
    s: &McpHttpSettings,
    ctx: &ServiceCtx,
) -> Result<axum::Router, BoxError> {
    let audit = ctx.audit().clone();
    let policy = AuthPolicy::from_config(&s.access)
        .map_err(|e| format!("ACCESS_CONTROL_CONFIG: {e:?}"))?
        .with_observer(move |d: &gekko_security::DeniedCall| {
            let actor = d
                .token_name
                .clone()
                .or_else(|| d.peer.map(|p| p.to_string()))
                .unwrap_or_else(|| "unknown".to_owned());
            audit.record_detached(
                gekko_audit::AuditRecord::new(actor, "auth.denied", "denied").with_detail(
                    serde_json::json!({
                        "transport": "mcp-http",
                        "reason": d.reason.as_str(),
                        "peer": d.peer.map(|ip| ip.to_string()),
                        "token": d.token_name,
                    }),
                ),
            );
        });
    let auth = Arc::new(HttpAuth { policy });
    let handler = GekkoMcp::http(backend, Arc::new(Guard::new(s.guard.clone())));
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(s.guard.allowed_hosts.clone())
        .with_cancellation_token(ctx.cancel().child_token());
    let service: StreamableHttpService<GekkoMcp, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(handler.clone()),
        LocalSessionManager::default().into(),
        config,
    );
    Ok(axum::Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(auth, bearer)))
}

/// A refusal before rmcp: an HTTP status with a JSON-RPC error body saying why.
fn refuse(status: http::StatusCode, message: &str) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32001, "message": message},
    });
    let mut resp = (status, axum::Json(body)).into_response();
    if status == http::StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer realm=\"gekko-mcp\""),
        );
    }
    resp
}

async fn bearer(
    State(auth): State<Arc<HttpAuth>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    if !auth.policy.auth_enabled() {
        return refuse(
            http::StatusCode::UNAUTHORIZED,
            "MCP over HTTP needs a bearer token and none is configured: ACCESS_CONTROL_CONFIG tokens= must be set (see `gekko token new`)",
        );
    }
    let caller = match auth
        .policy
        .check(MCP_ACCESS_METHOD, req.headers(), Some(peer.ip()))
    {
        Ok(c) => c,
        Err(status) => {
            let code = match status.code() {
                tonic::Code::PermissionDenied => http::StatusCode::FORBIDDEN,
                tonic::Code::ResourceExhausted => http::StatusCode::TOO_MANY_REQUESTS,
                _ => http::StatusCode::UNAUTHORIZED,
            };
            return refuse(code, &format!("MCP over HTTP: {}", status.message()));
        }
    };
    // The policy accepted the header, so it is a `Bearer <token>` of visible ASCII.
    let token = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(_, t)| SecretString::from(t.trim().to_owned()));
    req.extensions_mut().insert(HttpCaller(Identity {
        token: Token::new(token),
        name: caller.name,
        role: Some(caller.role),
    }));
    next.run(req).await
}
