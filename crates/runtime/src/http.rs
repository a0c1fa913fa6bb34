//! The operational HTTP endpoints every gekko process serves.
//!
//! - `GET /metrics`: the Prometheus text exposition of the global recorder.
//! - `GET /livez`: 200 `ok` while the process can answer at all. Orchestrators restart a
//!   process that fails this, so it deliberately checks nothing else.
//! - `GET /readyz`: 200 when the [`Readiness`] latch is ready, 503 otherwise, with a JSON
//!   body listing every component and why it is not ready. Load balancers and compose
//!   health checks use this one.
//!
//! These live on their own listener, apart from any gRPC or API port, so scraping and
//! probing keep working when the main port is saturated, and the port can be firewalled
//! separately.
//!
//! With TLS configured ([`serve_https`]) the same routes are served over rustls, with the
//! certificate (and, for mTLS, the client CA) of the gRPC listener. Handshakes run in their
//! own tasks with a deadline, so a client that opens a connection and never finishes its
//! handshake holds up nobody else.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use gekko_security::ServerTls;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::RuntimeError;
use crate::health::{ComponentReport, Readiness};

/// The content type of the Prometheus text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the route handlers share; cloned per request (two `Arc`s).
#[derive(Clone)]
struct OpsState {
    readiness: Readiness,
    metrics: PrometheusHandle,
}

/// The `/readyz` response body.
#[derive(Debug, Serialize)]
struct ReadyBody {
    ready: bool,
    components: Vec<ComponentReport>,
}

/// The `/metrics`, `/livez` and `/readyz` routes, for callers that want to add their own
/// routes before serving.
pub fn http_router(readiness: Readiness, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .with_state(OpsState { readiness, metrics })
}

/// Serves [`http_router`] on `listener` until `shutdown` is cancelled, then lets in-flight
/// requests finish.
///
/// # Errors
///
/// [`RuntimeError::Http`] if accepting or serving connections fails.
pub async fn serve_http(
    listener: TcpListener,
    readiness: Readiness,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> Result<(), RuntimeError> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /metrics, /livez and /readyz");
    }
    axum::serve(listener, http_router(readiness, metrics))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(RuntimeError::Http)
}

/// How long a TLS client has to finish its handshake.
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

/// Handshaken connections waiting for the HTTP server to take them.
const ACCEPT_BACKLOG: usize = 64;

/// Handshakes in progress at once; further connections wait in the kernel's backlog, so a
/// flood of half-open handshakes cannot grow the task set without bound.
const MAX_HANDSHAKES: usize = 256;

/// [`serve_http`] over TLS: the same routes, on rustls with `tls`'s certificate, and
/// client certificates required when `tls` has a client CA.
///
/// # Errors
///
/// [`RuntimeError::Http`] if accepting or serving connections fails.
pub async fn serve_https(
    listener: TcpListener,
    tls: &ServerTls,
    readiness: Readiness,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> Result<(), RuntimeError> {
    let local = listener.local_addr().map_err(RuntimeError::Http)?;
    tracing::info!(addr = %local, mtls = tls.mtls(), "serving /metrics, /livez and /readyz over TLS");
    let (tx, rx) = mpsc::channel(ACCEPT_BACKLOG);
    let handshakes = accept_tls(listener, tls.acceptor(), tx, shutdown.clone());
    let serve = axum::serve(TlsListener { rx, local }, http_router(readiness, metrics))
        .with_graceful_shutdown(shutdown.cancelled_owned());
    // Both run in this future: the accept loop ends on the same token, and nothing is
    // left behind to track.
    let ((), served) = tokio::join!(handshakes, serve);
    served.map_err(RuntimeError::Http)
}

/// Accepts TCP connections and hands each to its own handshake task (bounded by
/// [`HANDSHAKE_DEADLINE`]); finished handshakes go to the HTTP server. Ends on `shutdown`,
/// aborting handshakes still in progress.
async fn accept_tls(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    shutdown: CancellationToken,
) {
    let mut handshakes = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
            accepted = listener.accept(), if handshakes.len() < MAX_HANDSHAKES => match accepted {
                Ok((tcp, peer)) => {
                    let acceptor = acceptor.clone();
                    let tx = tx.clone();
                    handshakes.spawn(async move {
                        match tokio::time::timeout(HANDSHAKE_DEADLINE, acceptor.accept(tcp)).await {
                            Ok(Ok(stream)) => {
                                let _ = tx.send((stream, peer)).await;
                            }
                            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(error = %e, "accepting an HTTP connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// The HTTP server's view of the accept loop: connections whose handshake finished.
struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept loop ended (shutdown); the server's graceful shutdown stops
            // calling accept, so waiting here forever is the right answer.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

async fn metrics_handler(State(state): State<OpsState>) -> Response {
    // Gauges are set on every readiness change already; refreshing them here covers a
    // recorder that was installed after components registered.
    state.readiness.publish_metrics();
    (
        [(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}

async fn livez() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<OpsState>) -> Response {
    let components = state.readiness.report();
    // Computed from the same snapshot as the list, so the status and body agree.
    let ready = !components.is_empty() && components.iter().all(|c| c.ready);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(ReadyBody { ready, components })).into_response()
}
