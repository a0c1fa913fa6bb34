//! `gateway-oanda`: the OANDA v20 gateway as its own process, configured only by env.
//!
//! Serves `gekko.v1.GatewayService` (plus health and reflection) on
//! `MONITORING_CONFIGURATIONS grpc_addr`, and `/metrics`, `/livez`, `/readyz` on
//! `http_addr`. Everything around the gateway (config, telemetry, listeners, readiness,
//! drain and the exit codes: 64 invalid configuration before binding anything, 69
//! unavailable, 70 internal) is the runtime's service host.

use gateway_oanda::{OandaGateway, SOURCE};
use gekko_gateway::service::serve_gateways;
use gekko_runtime::Host;

fn main() -> std::process::ExitCode {
    // rustls needs exactly one process-wide crypto provider; pick it before any TLS use.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    Host::new(SOURCE)
        .credentials_from_configd(gekko_config::VenueId::Oanda)
        .service::<OandaGateway>()
        .grpc(serve_gateways)
        .main()
}
