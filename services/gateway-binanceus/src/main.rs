//! `gateway-binanceus`: the Binance.US gateway as its own process, configured only by env.
//!
//! Serves `gekko.v1.GatewayService` (plus health and reflection) on
//! `MONITORING_CONFIGURATIONS grpc_addr`, and `/metrics`, `/livez`, `/readyz` on
//! `http_addr`. Exits 64 on invalid configuration before binding anything.

use std::process::ExitCode;

use gekko_runtime::{GrpcServer, Readiness, Shutdown, TelemetryConfig};

fn main() -> ExitCode {
    let loaded = match gekko_config::load() {
        Ok(l) => l,
        Err(errors) => {
            eprint!("{}", errors.render("gateway-binanceus"));
            return ExitCode::from(64);
        }
    };
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gateway-binanceus: cannot start the runtime: {e}");
            return ExitCode::from(70);
        }
    };
    match rt.block_on(run(loaded)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway-binanceus: {e:#}");
            ExitCode::from(69)
        }
    }
}

async fn run(loaded: gekko_config::Loaded) -> anyhow::Result<()> {
    let cfg = loaded.config;
    let _guard = gekko_runtime::telemetry::init(&TelemetryConfig::from_monitoring(
        gateway_binanceus::SOURCE,
        &cfg.monitoring,
    ))?;
    loaded
        .warnings
        .iter()
        .for_each(|w| tracing::warn!(%w, "configuration warning"));
    let metrics = gekko_runtime::install_prometheus()?;
    let http = tokio::net::TcpListener::bind(cfg.monitoring.http_addr).await?;
    let grpc = tokio::net::TcpListener::bind(cfg.monitoring.grpc_addr).await?;
    let shutdown = Shutdown::new();
    let readiness = Readiness::new();
    // Not ready until the service has started and registered its own components.
    let startup = readiness.component("startup");
    let bus = gekko_bus::open(cfg.redis_url.as_deref()).await?;
    shutdown.spawn(
        "http",
        gekko_runtime::serve_http(http, readiness.clone(), metrics, shutdown.child_token()),
    );
    let tracker = tokio_util::task::TaskTracker::new();
    let running =
        gateway_binanceus::start(&cfg, bus, &readiness, &tracker, shutdown.child_token()).await?;
    let server = GrpcServer::new(readiness.clone()).add_service(
        gekko_gateway::service::GatewayGrpc::new(running.gateway.clone()).into_server(),
    );
    shutdown.spawn("grpc", server.serve(grpc, shutdown.child_token()));
    startup.set_ready();
    tracing::info!(grpc = %cfg.monitoring.grpc_addr, http = %cfg.monitoring.http_addr, "gateway-binanceus serving");
    shutdown.wait_for_signal().await;
    tracker.close();
    let clean = shutdown.drain(cfg.system_performance.shutdown_grace).await;
    let _ = tokio::time::timeout(cfg.system_performance.shutdown_grace, tracker.wait()).await;
    drop(running);
    if clean {
        Ok(())
    } else {
        anyhow::bail!("tasks did not stop within the grace period")
    }
}
