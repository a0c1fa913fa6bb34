//! healthd's own HTTP listener (`HEALTHD_HTTP_ADDR`, 9500 by default):
//!
//! - `GET /readyz`: the aggregate readiness, 200 when every required service is ready,
//!   else 503 naming each one that is not and why;
//! - `GET /health`: the whole tree and the open alerts as JSON;
//! - `GET /metrics`: Prometheus text (the same as the runtime's listener);
//! - `POST /alerts` (what `deploy/alertmanager/alertmanager.yml` routes to) and
//!   `POST /alertmanager`: Alertmanager's webhook; every alert is republished on
//!   `gekko:alerts`;
//! - `GET /alerts`: the open alerts; `POST /alerts/{id}/ack`: acknowledges one (body
//!   optional, `{"by": "..."}`).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::alerts::{Condition, Severity};
use crate::model::Snapshot;
use crate::poller::HealthState;

#[derive(Clone)]
struct Ctx {
    state: HealthState,
    metrics: PrometheusHandle,
}

/// The router.
pub fn router(state: HealthState, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/readyz", get(readyz))
        .route("/health", get(health))
        .route("/metrics", get(prometheus))
        .route("/alerts", post(alertmanager).get(open_alerts))
        .route("/alertmanager", post(alertmanager))
        .route("/alerts/{id}/ack", post(ack))
        .with_state(Ctx { state, metrics })
}

/// Serves `router` on `listener` until `cancel`.
///
/// # Errors
/// The server's I/O error.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
}

fn tree_json(snap: &Snapshot) -> Value {
    Value::Array(
        snap.services
            .iter()
            .map(|s| {
                json!({
                    "name": s.name,
                    "required": s.required,
                    "status": s.status().as_str(),
                    "reason": s.reason(),
                    "replicas": s.replicas.iter().map(|r| json!({
                        "address": r.address,
                        "status": r.status().as_str(),
                        "reason": r.reason(),
                        "components": r.components.iter().map(|c| json!({
                            "name": c.name,
                            "status": c.status.as_str(),
                            "reason": c.reason,
                            "details": c.details,
                        })).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

async fn readyz(State(ctx): State<Ctx>) -> Response {
    let snap = ctx.state.snapshot();
    let reason = snap.not_ready_reason();
    let services: Vec<Value> = snap
        .services
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "required": s.required,
                "status": s.status().as_str(),
                "reason": s.reason(),
            })
        })
        .collect();
    let code = if reason.is_none() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "ready": reason.is_none(),
        "reason": reason.unwrap_or_default(),
        "generation": snap.generation,
        "services": services,
    });
    (code, Json(body)).into_response()
}

async fn health(State(ctx): State<Ctx>) -> Response {
    let snap = ctx.state.snapshot();
    let reason = snap.not_ready_reason();
    Json(json!({
        "ready": reason.is_none(),
        "reason": reason.unwrap_or_default(),
        "generation": snap.generation,
        "checked_at_unix_ms": snap.checked_at_unix_ms,
        "services": tree_json(&snap),
        "open_alerts": ctx.state.alerts.open(),
    }))
    .into_response()
}

async fn prometheus(State(ctx): State<Ctx>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        ctx.metrics.render(),
    )
        .into_response()
}

async fn open_alerts(State(ctx): State<Ctx>) -> Response {
    Json(json!({ "open_alerts": ctx.state.alerts.open() })).into_response()
}

#[derive(Debug, Deserialize)]
struct AckBody {
    #[serde(default)]
    by: String,
}

async fn ack(State(ctx): State<Ctx>, Path(id): Path<String>, body: Bytes) -> Response {
    let by = if body.is_empty() {
        "http".to_owned()
    } else {
        match serde_json::from_slice::<AckBody>(&body) {
            Ok(b) => b.by,
            Err(e) => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": format!("the body is not {{\"by\": \"...\"}}: {e}")})),
                )
                    .into_response();
            }
        }
    };
    match ctx.state.alerts.acknowledge(&id, &by).await {
        Some(alert) => Json(json!({"acknowledged": true, "alert": alert})).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"acknowledged": false, "error": format!("no open alert has id {id}")})),
        )
            .into_response(),
    }
}

/// Alertmanager's webhook body (version 4), the parts healthd uses.
#[derive(Debug, Deserialize)]
struct AmPayload {
    #[serde(default)]
    alerts: Vec<AmAlert>,
}

#[derive(Debug, Deserialize)]
struct AmAlert {
    #[serde(default)]
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    fingerprint: String,
}

async fn alertmanager(State(ctx): State<Ctx>, body: Bytes) -> Response {
    let payload: AmPayload = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            metrics::counter!("gekko_healthd_alertmanager_rejected_total").increment(1);
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("not an Alertmanager webhook payload: {e}")})),
            )
                .into_response();
        }
    };
    let mut count = 0u64;
    for a in payload.alerts {
        let name = a
            .labels
            .get("alertname")
            .cloned()
            .unwrap_or_else(|| "alertmanager".to_owned());
        let severity = Severity::parse(a.labels.get("severity").map_or("", String::as_str));
        // The subject: what the alert is about, from its distinguishing labels.
        let subject = ["job", "instance", "venue", "service"]
            .iter()
            .filter_map(|k| a.labels.get(*k).map(|v| format!("{k}={v}")))
            .collect::<Vec<_>>()
            .join(",");
        let subject = if subject.is_empty() {
            name.clone()
        } else {
            format!("{name}/{subject}")
        };
        let summary = a
            .annotations
            .get("summary")
            .or_else(|| a.annotations.get("description"))
            .cloned()
            .unwrap_or_else(|| name.clone());
        let fingerprint = if a.fingerprint.is_empty() {
            subject.clone()
        } else {
            a.fingerprint.clone()
        };
        let c = Condition::new(&name, severity, subject, summary);
        ctx.state
            .alerts
            .received(a.status != "resolved", &fingerprint, &c, a.labels)
            .await;
        count += 1;
    }
    metrics::counter!("gekko_healthd_alertmanager_alerts_total").increment(count);
    Json(json!({"received": count})).into_response()
}
