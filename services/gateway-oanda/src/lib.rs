//! Wiring of the OANDA v20 gateway, shared by the `gateway-oanda` binary and `gekko up`:
//! both host the one [`OandaGateway`] service.
//!
//! With `OANDA_API_TOKEN`/`OANDA_ACCOUNT_ID` set, the gateway talks to OANDA: the
//! practice hosts by default, the live ones with `OANDA_ENVIRONMENT=live`;
//! `TRADING_API_ENDPOINTS` `oanda=` and `oanda.stream=` point it elsewhere, and
//! `TRADING_TLS_CA_FILE` adds trusted roots. The account id is checked against
//! `GET /v3/accounts` when the gateway starts. Without credentials it is in paper mode:
//! the protocol-faithful OANDA simulator runs in-process and the same gateway code trades
//! FX against it over real sockets (REST and both chunked line streams).
//!
//! The venue configuration is resolved and checked in [`resolve`] without I/O beyond
//! reading `TRADING_TLS_CA_FILE`, so the host rejects a bad one with exit 64 before any
//! port is bound. Like every gateway, the service [provides](Started::provide) its
//! [`Gateway`] and [`serve_gateways`](gekko_gateway::service::serve_gateways) serves it.

use std::sync::Arc;
use std::time::Duration;

use gekko_config::GekkoConfig;
use gekko_core::VenueId;
use gekko_gateway::engine::GatewayConfig;
use gekko_gateway::service::start_hosted;
use gekko_oanda::{OandaConfig, OandaEnvironment, OandaVenue};
use gekko_runtime::{BoxError, Service, ServiceCtx, Started};
use gekko_sim::oanda::{SimConfig, SimHandle, SimOanda};
use secrecy::SecretString;

/// The bus source name of this gateway.
pub const SOURCE: &str = "gateway-oanda";

/// Gateway settings from gekko's config ([`GatewayConfig::from_gekko`] for OANDA).
#[must_use]
pub fn gateway_config(cfg: &GekkoConfig) -> GatewayConfig {
    GatewayConfig::from_gekko(cfg, VenueId::Oanda, SOURCE)
}

/// Where the gateway's venue is.
#[derive(Debug, Clone)]
pub enum VenueSettings {
    /// OANDA (or what `TRADING_API_ENDPOINTS` points at), with credentials.
    Live(Box<OandaConfig>),
    /// No credentials: an in-process simulator, started by [`start`].
    Paper,
}

/// Everything the gateway needs, resolved from gekko's config.
#[derive(Debug, Clone)]
pub struct OandaSettings {
    /// Where the venue is.
    pub venue: VenueSettings,
    /// The venue request timeout (`SYSTEM_PERFORMANCE_PARAMS order_timeout`).
    pub request_timeout: Duration,
    /// The gateway engine's settings ([`gateway_config`]).
    pub gateway: GatewayConfig,
    /// `TRADING_RATE_LIMITS oanda` in requests per second: the live client's limit, and
    /// the paper client's, so a configured limit applies from the start in both modes.
    pub rate_per_s: u32,
}

/// Resolves the gateway's settings from `cfg`: live with credentials, paper without.
///
/// # Errors
/// Every problem with the venue configuration, one line each, never echoing the token.
pub fn resolve(cfg: &GekkoConfig) -> Result<OandaSettings, Vec<String>> {
    let request_timeout = cfg.system_performance.order_timeout;
    let venue = match &cfg.credentials.oanda {
        Some(creds) => {
            let env = match creds.environment {
                gekko_config::OandaEnvironment::Practice => OandaEnvironment::Practice,
                gekko_config::OandaEnvironment::Live => OandaEnvironment::Live,
            };
            let mut vc = OandaConfig::new(env, creds.token.clone(), &creds.account_id);
            if let Some(url) = cfg.api_endpoint(VenueId::Oanda) {
                url.clone_into(&mut vc.rest_base);
            }
            if let Some(url) = cfg.stream_endpoint(VenueId::Oanda) {
                url.clone_into(&mut vc.stream_base);
            }
            vc.rest_fallback = cfg.fallback_endpoint(VenueId::Oanda).map(str::to_owned);
            let mut problems = Vec::new();
            match cfg.trading_tls_roots() {
                Ok(roots) => vc.extra_roots_pem = roots,
                Err(e) => problems.push(e),
            }
            vc.rate_per_s = cfg.rate_limit(VenueId::Oanda).per_second();
            vc.request_timeout = request_timeout;
            vc.stale_after = cfg.monitoring.stale_after;
            if let Err(ps) = vc.validate() {
                problems.extend(ps.into_iter().map(|p| format!("oanda configuration: {p}")));
            }
            if !problems.is_empty() {
                return Err(problems);
            }
            VenueSettings::Live(Box::new(vc))
        }
        None => VenueSettings::Paper,
    };
    Ok(OandaSettings {
        venue,
        request_timeout,
        gateway: gateway_config(cfg),
        rate_per_s: cfg.rate_limit(VenueId::Oanda).per_second(),
    })
}

/// A venue client for a running simulator, with its token and account.
///
/// # Errors
/// A client that cannot be built.
pub fn sim_venue(
    sim: &SimHandle,
    request_timeout: Duration,
    stale_after: Duration,
) -> Result<OandaVenue, gekko_oanda::OandaError> {
    OandaVenue::new(sim_config(sim, request_timeout, stale_after))
}

/// The client configuration for a running simulator (the simulator's default rate limit).
fn sim_config(sim: &SimHandle, request_timeout: Duration, stale_after: Duration) -> OandaConfig {
    let mut cfg = OandaConfig::simulator(
        &sim.rest_url,
        &sim.stream_url,
        SecretString::from(sim.token.clone()),
        &sim.account_id,
    );
    cfg.request_timeout = request_timeout;
    cfg.stale_after = stale_after;
    cfg
}

/// The venue client the settings describe; in paper mode it first starts the simulator,
/// which the caller keeps alive as long as the client.
///
/// # Errors
/// A venue client that cannot be built or a simulator that cannot bind, with its reason.
pub async fn connect(settings: &OandaSettings) -> anyhow::Result<(OandaVenue, Option<SimHandle>)> {
    Ok(match &settings.venue {
        VenueSettings::Live(vc) => (OandaVenue::new((**vc).clone())?, None),
        VenueSettings::Paper => {
            let sim = SimOanda::start(SimConfig::default()).await?;
            tracing::info!(rest = %sim.rest_url, stream = %sim.stream_url, "paper mode: OANDA simulator started");
            let mut vc = sim_config(&sim, settings.request_timeout, settings.gateway.stale_after);
            vc.rate_per_s = settings.rate_per_s;
            (OandaVenue::new(vc)?, Some(sim))
        }
    })
}

/// The OANDA gateway as a hosted service.
///
/// It provides its [`Gateway`](gekko_gateway::engine::Gateway) and holds the simulator,
/// in paper mode, until the process has drained.
#[derive(Debug)]
pub struct OandaGateway;

impl Service for OandaGateway {
    const NAME: &'static str = SOURCE;
    type Settings = OandaSettings;

    fn resolve(cfg: &GekkoConfig) -> Result<OandaSettings, Vec<String>> {
        resolve(cfg)
    }

    async fn start(settings: OandaSettings, ctx: &ServiceCtx) -> Result<Started, BoxError> {
        let (venue, sim) = connect(&settings).await?;
        let venue = Arc::new(venue);
        let gateway = start_hosted(venue.clone(), settings.gateway, ctx).await?;
        // Hot config: limits on the gateway, TRADING_RATE_LIMITS on the request limiter.
        gekko_gateway::checks::follow_hot_config(&gateway, ctx, move |rl, version| {
            let limit = rl.per_second();
            let old = venue.http().limiter().set_limit(limit);
            tracing::info!(
                venue = "oanda",
                version,
                variable = gekko_config::names::TRADING_RATE_LIMITS,
                old_limit = old,
                new_limit = limit,
                "config change applied: requests per second"
            );
        });
        Ok(Started::new().provide(gateway).hold(sim))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use secrecy::ExposeSecret as _;

    use super::*;

    fn load(pairs: &[(&str, &str)]) -> GekkoConfig {
        let vars: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        gekko_config::from_vars(&vars).unwrap().config
    }

    #[test]
    fn no_credentials_means_paper_mode_with_the_fx_pairs() {
        let s = resolve(&load(&[])).unwrap();
        assert!(matches!(s.venue, VenueSettings::Paper));
        let pairs: Vec<String> = s
            .gateway
            .instruments
            .iter()
            .map(gekko_core::InstrumentId::pair)
            .collect();
        assert!(pairs.contains(&"EUR-USD".to_owned()), "{pairs:?}");
        assert!(pairs.contains(&"USD-JPY".to_owned()), "{pairs:?}");
    }

    #[tokio::test]
    async fn paper_mode_applies_the_configured_rate_limit_from_the_start() {
        let s = resolve(&load(&[("TRADING_RATE_LIMITS", "oanda=30/1s")])).unwrap();
        assert!(matches!(s.venue, VenueSettings::Paper));
        assert_eq!(s.rate_per_s, 30);
        let (venue, sim) = connect(&s).await.unwrap();
        assert_eq!(venue.http().limiter().limit(), 30);
        drop(venue);
        if let Some(sim) = sim {
            sim.shutdown().await;
        }
    }

    #[test]
    fn environment_endpoints_and_limits_reach_the_venue_config() {
        let cfg = load(&[
            ("OANDA_API_TOKEN", "token-SENTINEL"),
            ("OANDA_ACCOUNT_ID", "101-001-1234567-001"),
            ("OANDA_ENVIRONMENT", "live"),
            ("TRADING_RATE_LIMITS", "oanda=50/1s"),
        ]);
        let s = resolve(&cfg).unwrap();
        let VenueSettings::Live(vc) = s.venue else {
            panic!("credentials mean live");
        };
        assert!(vc.rest_base.contains("fxtrade"), "{}", vc.rest_base);
        assert!(
            vc.stream_base.contains("stream-fxtrade"),
            "{}",
            vc.stream_base
        );
        assert_eq!(vc.account_id, "101-001-1234567-001");
        assert_eq!(vc.token.expose_secret(), "token-SENTINEL");
        assert_eq!(vc.rate_per_s, 50);

        let cfg = load(&[
            ("OANDA_API_TOKEN", "t"),
            ("OANDA_ACCOUNT_ID", "101-001-1234567-001"),
            (
                "TRADING_API_ENDPOINTS",
                "oanda=http://127.0.0.1:9300,oanda.stream=http://127.0.0.1:9301",
            ),
        ]);
        let VenueSettings::Live(vc) = resolve(&cfg).unwrap().venue else {
            panic!("live");
        };
        assert_eq!(vc.rest_base, "http://127.0.0.1:9300");
        assert_eq!(vc.stream_base, "http://127.0.0.1:9301");
        assert_eq!(vc.rest_fallback, None);

        let cfg = load(&[
            ("OANDA_API_TOKEN", "t"),
            ("OANDA_ACCOUNT_ID", "101-001-1234567-001"),
            (
                "TRADING_API_ENDPOINTS",
                "oanda=http://127.0.0.1:9300,oanda.fallback=http://127.0.0.1:9310",
            ),
        ]);
        let VenueSettings::Live(vc) = resolve(&cfg).unwrap().venue else {
            panic!("live");
        };
        assert_eq!(vc.rest_fallback.as_deref(), Some("http://127.0.0.1:9310"));
        // The same host twice is no fallback: named.
        let cfg = load(&[
            ("OANDA_API_TOKEN", "t"),
            ("OANDA_ACCOUNT_ID", "101-001-1234567-001"),
            (
                "TRADING_API_ENDPOINTS",
                "oanda=http://127.0.0.1:9300,oanda.fallback=http://127.0.0.1:9300/",
            ),
        ]);
        let problems = resolve(&cfg).unwrap_err();
        assert!(
            problems.iter().any(|p| p.contains("rest_fallback")),
            "{problems:?}"
        );
        assert!(vc.rest_base != "https://api-fxtrade.oanda.com");
    }
}
