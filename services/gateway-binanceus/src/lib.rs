//! Wiring of the Binance.US gateway, shared by the `gateway-binanceus` binary and
//! `gekko up`.
//!
//! With `BINANCEUS_API_KEY`/`BINANCEUS_API_SECRET` set, the gateway talks to the venue
//! (`TRADING_API_ENDPOINTS` may point it elsewhere). Without them it is in paper mode: a
//! protocol-faithful simulator runs in-process and the same gateway code talks to it over
//! real sockets, with the simulator's paper key.

use std::sync::Arc;
use std::time::Duration;

use gekko_binanceus::{BinanceUsAuth, BinanceUsConfig, BinanceUsVenue};
use gekko_bus::Bus;
use gekko_config::GekkoConfig;
use gekko_core::VenueId;
use gekko_gateway::engine::{Gateway, GatewayConfig, ReconcileMode};
use gekko_runtime::Readiness;
use gekko_sim::binanceus::{SimApiKey, SimBinanceUs, SimConfig, SimHandle, SimKeyAuth};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The bus source name of this gateway.
pub const SOURCE: &str = "gateway-binanceus";

/// A venue client for a simulator at `rest_url`/`ws_url`, with the paper key.
///
/// # Panics
/// Never for the paper key; the constructor only fails on invalid configuration.
#[must_use]
pub fn paper_venue(
    rest_url: &str,
    ws_url: &str,
    request_timeout: Duration,
    stale_after: Duration,
) -> BinanceUsVenue {
    let key = SimApiKey::paper();
    let secret = match key.auth {
        SimKeyAuth::Hmac { secret } => secret,
        SimKeyAuth::Ed25519 { .. } => String::new(),
    };
    let mut cfg = BinanceUsConfig::simulator(
        rest_url,
        ws_url,
        SecretString::from(key.api_key),
        BinanceUsAuth::Hmac(SecretString::from(secret)),
    );
    cfg.request_timeout = request_timeout;
    cfg.stale_after = stale_after;
    BinanceUsVenue::new(cfg).expect("the paper configuration is valid")
}

/// Gateway settings from gekko's config.
#[must_use]
pub fn gateway_config(cfg: &GekkoConfig) -> GatewayConfig {
    let instruments = cfg
        .supported_trading_pairs
        .iter()
        .map(|p| p.instrument(VenueId::BinanceUs))
        .collect();
    let mut g = GatewayConfig::new(SOURCE, instruments);
    g.stale_after = cfg.monitoring.stale_after;
    g.reconcile_mode = ReconcileMode::Adopt;
    g.limits.position_limits = cfg
        .position_limits
        .iter()
        .map(|(p, q)| (p.to_string(), *q))
        .collect();
    g.limits.max_order_notional = cfg.compliance.max_order_notional;
    g.limits.restricted_pairs = cfg
        .compliance
        .restricted_pairs
        .iter()
        .map(ToString::to_string)
        .collect();
    g.limits.trading_enabled = cfg.compliance.trading_enabled;
    g
}

/// A started gateway, plus the simulator it talks to in paper mode.
#[derive(Debug)]
pub struct Running {
    /// The gateway.
    pub gateway: Gateway,
    /// The in-process simulator (paper mode only). Dropping it stops the simulator.
    pub sim: Option<SimHandle>,
}

/// Starts the Binance.US gateway for `cfg`: live with credentials, paper without.
///
/// # Errors
/// Invalid venue configuration, a simulator that cannot bind, or a gateway start-up
/// failure (credentials, reconciliation, ...), each with its reason.
pub async fn start(
    cfg: &GekkoConfig,
    bus: Arc<dyn Bus>,
    readiness: &Readiness,
    tracker: &TaskTracker,
    cancel: CancellationToken,
) -> anyhow::Result<Running> {
    let request_timeout = cfg.system_performance.order_timeout;
    let (venue, sim) = match &cfg.credentials.binanceus {
        Some(creds) => {
            let auth = match creds.key_type {
                gekko_config::BinanceUsKeyType::Hmac => {
                    BinanceUsAuth::Hmac(creds.api_secret.clone())
                }
                gekko_config::BinanceUsKeyType::Ed25519 => {
                    BinanceUsAuth::Ed25519(creds.api_secret.clone())
                }
            };
            let mut vc = BinanceUsConfig::binance_us(creds.api_key.clone(), auth);
            if let Some(url) = cfg.api_endpoint(VenueId::BinanceUs) {
                url.clone_into(&mut vc.rest_base);
            }
            if let Some(url) = cfg.stream_endpoint(VenueId::BinanceUs) {
                url.clone_into(&mut vc.ws_base);
            }
            let rl = cfg.rate_limit(VenueId::BinanceUs);
            let per_minute = u128::from(rl.max_requests) * 60_000 / rl.period.as_millis().max(1);
            vc.weight_limit_per_minute = u32::try_from(per_minute).unwrap_or(u32::MAX).max(1);
            vc.request_timeout = request_timeout;
            if let Err(problems) = vc.validate() {
                anyhow::bail!("binanceus configuration: {}", problems.join("; "));
            }
            (BinanceUsVenue::new(vc)?, None)
        }
        None => {
            let sim = SimBinanceUs::start(SimConfig::default()).await?;
            tracing::info!(rest = %sim.rest_url, ws = %sim.ws_url, "paper mode: Binance.US simulator started");
            let venue = paper_venue(
                &sim.rest_url,
                &sim.ws_url,
                request_timeout,
                Duration::from_secs(30),
            );
            (venue, Some(sim))
        }
    };
    let (gateway, report) = Gateway::start(
        Arc::new(venue),
        bus,
        gateway_config(cfg),
        readiness,
        tracker,
        cancel,
    )
    .await?;
    tracing::info!(?report, "binanceus gateway started");
    Ok(Running { gateway, sim })
}
