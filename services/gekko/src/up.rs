//! `gekko up`: every service in one process.
//!
//! Order of events, and why:
//! 1. Config was validated by `main` before we got here; nothing is bound yet.
//! 2. Telemetry, metrics recorder, shutdown tree and readiness latch.
//! 3. Both listeners (HTTP health/metrics, gRPC) are bound *before* any service starts,
//!    so a taken port fails the start (exit 69) instead of half a system running.
//! 4. The bus: Redis when `REDIS_URL` is set, else in-process. Its readiness feeds the
//!    latch, so `/readyz` turns 503 while Redis is away.
//! 5. Services plug in here as they are built (gateways, inference, ...).
//! 6. On SIGINT/SIGTERM the root token is cancelled, every tracked task winds down, and
//!    the process waits at most the configured grace period.

use std::sync::Arc;
use std::time::Duration;

use gekko_bus::{Bus, Topic, names};
use gekko_config::{GekkoConfig, Loaded, VenueId};
use gekko_runtime::{GrpcServer, Readiness, Shutdown, TelemetryConfig};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::exit::Exit;
use crate::status::SystemStatus;

/// An audit record of a controller life-cycle event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEvent {
    /// What happened: `started`, `stopping`, `stopped`.
    pub event: String,
    /// Free-form detail.
    pub detail: String,
}

/// Runs `gekko up` until a shutdown signal.
pub async fn run(loaded: Loaded) -> Exit {
    let Loaded { config, warnings } = loaded;
    let telemetry = TelemetryConfig::from_monitoring("gekko", &config.monitoring);
    let guard = match gekko_runtime::telemetry::init(&telemetry) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("gekko: cannot set up logging: {e}");
            return Exit::Internal;
        }
    };
    for w in &warnings {
        tracing::warn!(%w, "configuration warning");
    }
    let exit = serve(config).await;
    if let Err(e) = tokio::task::spawn_blocking(move || guard.shutdown()).await {
        eprintln!("gekko: telemetry shutdown: {e}");
    }
    exit
}

fn mode(config: &GekkoConfig) -> &'static str {
    if VenueId::ALL.iter().all(|v| config.paper_mode(*v)) {
        "paper"
    } else {
        "live"
    }
}

async fn serve(config: GekkoConfig) -> Exit {
    let metrics = match gekko_runtime::install_prometheus() {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "cannot install the metrics recorder");
            return Exit::Internal;
        }
    };
    gekko_runtime::describe_common();
    let mode = mode(&config);
    tracing::info!(mode, config = ?config, "starting gekko");
    // Settings that need more than the config crate checks are resolved before any port
    // is bound, so their problems exit 64 like every other config problem.
    let inference_settings = match inference_service::InferenceSettings::from_config(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gekko: invalid configuration: {e:#}");
            return Exit::Config;
        }
    };

    let http = match TcpListener::bind(config.monitoring.http_addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(addr = %config.monitoring.http_addr, error = %e, "cannot bind the HTTP health/metrics port");
            eprintln!(
                "gekko: cannot bind HTTP port {}: {e}",
                config.monitoring.http_addr
            );
            return Exit::Unavailable;
        }
    };
    let grpc = match TcpListener::bind(config.monitoring.grpc_addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(addr = %config.monitoring.grpc_addr, error = %e, "cannot bind the gRPC port");
            eprintln!(
                "gekko: cannot bind gRPC port {}: {e}",
                config.monitoring.grpc_addr
            );
            return Exit::Unavailable;
        }
    };
    let (http_addr, grpc_addr) = (
        http.local_addr().unwrap_or(config.monitoring.http_addr),
        grpc.local_addr().unwrap_or(config.monitoring.grpc_addr),
    );

    let shutdown = Shutdown::new();
    let readiness = Readiness::new();
    // Held not-ready until every service has started: services register their own
    // components as they start, and until then the latch must not read "all ready".
    let startup = readiness.component("startup");
    let bus_ready = readiness.component("bus");

    let bus: Arc<dyn Bus> = match gekko_bus::open(config.redis_url.as_deref()).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "cannot open the bus");
            return Exit::Unavailable;
        }
    };
    tracing::info!(bus = bus.kind(), "bus opened");

    // Mirror the bus's own readiness into the latch; Redis can come and go.
    {
        let bus = bus.clone();
        let token = shutdown.child_token();
        shutdown.spawn("bus-readiness", async move {
            loop {
                if bus.is_ready() {
                    bus_ready.set_ready();
                } else {
                    bus_ready.set_not_ready("redis unreachable; reconnecting");
                }
                tokio::select! {
                    () = token.cancelled() => return Ok::<(), String>(()),
                    () = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            }
        });
    }

    // HTTP: /metrics, /livez, /readyz.
    {
        let (readiness, metrics, token) =
            (readiness.clone(), metrics.clone(), shutdown.child_token());
        shutdown.spawn(
            "http",
            gekko_runtime::serve_http(http, readiness, metrics, token),
        );
    }
    // Gateways. Each registers its readiness components; in paper mode each runs its
    // venue simulator in-process.
    let venue_tasks = tokio_util::task::TaskTracker::new();
    let binanceus = match gateway_binanceus::start(
        &config,
        bus.clone(),
        &readiness,
        &venue_tasks,
        shutdown.child_token(),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "binanceus gateway failed to start");
            eprintln!("gekko: binanceus gateway failed to start: {e:#}");
            shutdown.trigger();
            let _ = shutdown.drain(Duration::from_secs(5)).await;
            return Exit::Unavailable;
        }
    };

    // Inference: consumes the quote streams, publishes signals, serves Predict.
    let inference = match inference_service::start(
        inference_settings,
        bus.clone(),
        &readiness,
        &venue_tasks,
        shutdown.child_token(),
    )
    .await
    {
        Ok(i) => i,
        Err(e) => {
            eprintln!("gekko: inference failed to start: {e:#}");
            tracing::error!(error = %format!("{e:#}"), "inference failed to start");
            shutdown.trigger();
            let _ = shutdown.drain(Duration::from_secs(5)).await;
            return Exit::Unavailable;
        }
    };

    // gRPC: SystemService + GatewayService + InferenceService + health + reflection.
    {
        let svc = SystemStatus {
            readiness: readiness.clone(),
            mode,
            bus: bus.kind(),
        };
        let server = GrpcServer::new(readiness.clone())
            .add_service(gekko_proto::v1::system_service_server::SystemServiceServer::new(svc))
            .add_service(
                gekko_gateway::service::GatewayGrpc::new(binanceus.gateway.clone()).into_server(),
            )
            .add_service(
                inference_service::grpc::InferenceGrpc::new(inference.clone()).into_server(),
            );
        shutdown.spawn("grpc", server.serve(grpc, shutdown.child_token()));
    }

    let audit: Topic<AuditEvent> = Topic::durable(names::AUDIT, 1);
    audit_event(
        &*bus,
        &audit,
        "started",
        format!("mode={mode} bus={}", bus.kind()),
    )
    .await;
    startup.set_ready();
    tracing::info!(%http_addr, %grpc_addr, mode, "gekko up: listening");
    println!(
        "gekko up: mode={mode} bus={} http=http://{http_addr} grpc={grpc_addr}",
        bus.kind()
    );

    shutdown.wait_for_signal().await;
    tracing::info!("shutdown requested; stopping services");
    audit_event(&*bus, &audit, "stopping", "signal received".to_owned()).await;
    let grace = config.system_performance.shutdown_grace;
    venue_tasks.close();
    let clean = shutdown.drain(grace).await
        && tokio::time::timeout(grace, venue_tasks.wait())
            .await
            .is_ok();
    drop(binanceus);
    audit_event(&*bus, &audit, "stopped", format!("clean={clean}")).await;
    if clean {
        tracing::info!("gekko stopped cleanly");
        Exit::Ok
    } else {
        tracing::error!(?grace, "some tasks did not stop within the grace period");
        Exit::Internal
    }
}

async fn audit_event(bus: &dyn Bus, topic: &Topic<AuditEvent>, event: &str, detail: String) {
    let ev = AuditEvent {
        event: event.to_owned(),
        detail,
    };
    if let Err(e) = topic.publish(bus, "gekko", &ev).await {
        tracing::warn!(error = %e, event, "audit event not written");
    }
    let _ = bus
        .notify(
            names::CONTROL_CHANNEL,
            bytes::Bytes::from(format!("{{\"event\":\"{event}\"}}")),
        )
        .await;
}
