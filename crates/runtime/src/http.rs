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

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tokio::net::TcpListener;
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
