//! Wiring of the Binance.US gateway, shared by the `gateway-binanceus` binary and
//! `gekko up`: both host the one [`BinanceUsGateway`] service.
//!
//! With `BINANCEUS_API_KEY`/`BINANCEUS_API_SECRET` set, the gateway talks to the venue
//! (`TRADING_API_ENDPOINTS` may point it elsewhere). Without them it is in paper mode: a
//! protocol-faithful simulator runs in-process and the same gateway code talks to it over
//! real sockets, with the simulator's paper key.
//!
//! The venue configuration (URLs, rate limit, key) is resolved and checked in
//! [`resolve`], which does no I/O, so the host rejects a bad one with exit 64 before any
//! port is bound; only the connection itself happens in [`start`].
//!
//! The service does not register gRPC itself: it [provides](Started::provide) its
//! [`Gateway`], and [`serve_gateways`] (in `gekko-gateway`) turns every provided gateway
//! into the process's `gekko.v1.GatewayService`. That keeps the registration in one place
//! for every gateway binary and for `gekko up`, however many gateways a process hosts.

use std::sync::Arc;
use std::time::Duration;

use gekko_binanceus::{BinanceUsAuth, BinanceUsConfig, BinanceUsSigner, BinanceUsVenue};
use gekko_config::GekkoConfig;
use gekko_core::VenueId;
use gekko_gateway::engine::GatewayConfig;
use gekko_gateway::service::start_hosted;
use gekko_runtime::{BoxError, Service, ServiceCtx, Started};
use gekko_sim::binanceus::{SimApiKey, SimBinanceUs, SimConfig, SimHandle, SimKeyAuth};
use secrecy::{ExposeSecret as _, SecretString};

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
    let cfg = paper_config(rest_url, ws_url, request_timeout, stale_after);
    BinanceUsVenue::new(cfg).expect("the paper configuration is valid")
}

/// The venue configuration of [`paper_venue`], for a caller that changes more of it
/// (`recv_window_ms`, say) before building the client.
#[must_use]
pub fn paper_config(
    rest_url: &str,
    ws_url: &str,
    request_timeout: Duration,
    stale_after: Duration,
) -> BinanceUsConfig {
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
    cfg
}

/// Gateway settings from gekko's config ([`GatewayConfig::from_gekko`] for Binance.US).
#[must_use]
pub fn gateway_config(cfg: &GekkoConfig) -> GatewayConfig {
    GatewayConfig::from_gekko(cfg, VenueId::BinanceUs, SOURCE)
}

/// Where the gateway's venue is.
#[derive(Debug, Clone)]
pub enum VenueSettings {
    /// The real venue (or what `TRADING_API_ENDPOINTS` points at), with credentials.
    Live(Box<BinanceUsConfig>),
    /// No credentials: an in-process simulator, started by [`start`].
    Paper,
}

/// Everything the gateway needs, resolved from gekko's config without I/O.
#[derive(Debug, Clone)]
pub struct BinanceUsSettings {
    /// Where the venue is.
    pub venue: VenueSettings,
    /// The venue request timeout (`SYSTEM_PERFORMANCE_PARAMS order_timeout`).
    pub request_timeout: Duration,
    /// `recvWindow` in milliseconds (`BINANCEUS_RECV_WINDOW`), live and paper.
    pub recv_window_ms: u64,
    /// The gateway engine's settings ([`gateway_config`]).
    pub gateway: GatewayConfig,
}

/// A `TRADING_RATE_LIMITS` entry as Binance.US's request weight per minute (at least 1).
#[must_use]
pub fn weight_per_minute(rl: gekko_config::RateLimit) -> u32 {
    let per_minute = u128::from(rl.max_requests) * 60_000 / rl.period.as_millis().max(1);
    u32::try_from(per_minute).unwrap_or(u32::MAX).max(1)
}

/// Resolves the gateway's settings from `cfg`: live with credentials, paper without.
///
/// Pure: builds and validates the venue configuration and checks that the key can sign,
/// but connects to nothing.
///
/// # Errors
/// Every problem with the venue configuration (an endpoint with the wrong scheme, an
/// unusable key, ...), one line each.
pub fn resolve(cfg: &GekkoConfig) -> Result<BinanceUsSettings, Vec<String>> {
    let request_timeout = cfg.system_performance.order_timeout;
    let recv_window_ms = u64::try_from(cfg.binanceus_recv_window.as_millis()).unwrap_or(u64::MAX);
    let venue = match &cfg.credentials.binanceus {
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
            vc.rest_fallback = cfg.fallback_endpoint(VenueId::BinanceUs).map(str::to_owned);
            vc.weight_limit_per_minute = weight_per_minute(cfg.rate_limit(VenueId::BinanceUs));
            vc.request_timeout = request_timeout;
            vc.recv_window_ms = recv_window_ms;
            let mut problems: Vec<String> = vc
                .validate()
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|p| format!("binanceus configuration: {p}"))
                .collect();
            let signer = match &vc.auth {
                BinanceUsAuth::Hmac(s) => BinanceUsSigner::hmac(s.expose_secret()),
                BinanceUsAuth::Ed25519(s) => BinanceUsSigner::ed25519(s.expose_secret()),
            };
            if let Err(e) = signer {
                problems.push(format!("BINANCEUS_API_SECRET: {e}"));
            }
            if !problems.is_empty() {
                return Err(problems);
            }
            VenueSettings::Live(Box::new(vc))
        }
        None => VenueSettings::Paper,
    };
    Ok(BinanceUsSettings {
        venue,
        request_timeout,
        recv_window_ms,
        gateway: gateway_config(cfg),
    })
}

/// The venue client the settings describe; in paper mode it first starts the simulator,
/// which the caller keeps alive as long as the client.
///
/// # Errors
/// A venue client that cannot be built or a simulator that cannot bind, with its reason.
pub async fn connect(
    settings: &BinanceUsSettings,
) -> anyhow::Result<(BinanceUsVenue, Option<SimHandle>)> {
    Ok(match &settings.venue {
        VenueSettings::Live(vc) => (BinanceUsVenue::new((**vc).clone())?, None),
        VenueSettings::Paper => {
            let sim = SimBinanceUs::start(SimConfig::default()).await?;
            tracing::info!(rest = %sim.rest_url, ws = %sim.ws_url, "paper mode: Binance.US simulator started");
            let mut vc = paper_config(
                &sim.rest_url,
                &sim.ws_url,
                settings.request_timeout,
                Duration::from_secs(30),
            );
            vc.recv_window_ms = settings.recv_window_ms;
            (BinanceUsVenue::new(vc)?, Some(sim))
        }
    })
}

/// The Binance.US gateway as a hosted service.
///
/// It provides its [`Gateway`](gekko_gateway::engine::Gateway) (served by
/// [`serve_gateways`]) and holds the simulator, in paper mode, until the process has
/// drained.
#[derive(Debug)]
pub struct BinanceUsGateway;

impl Service for BinanceUsGateway {
    const NAME: &'static str = SOURCE;
    type Settings = BinanceUsSettings;

    fn resolve(cfg: &GekkoConfig) -> Result<BinanceUsSettings, Vec<String>> {
        resolve(cfg)
    }

    async fn start(settings: BinanceUsSettings, ctx: &ServiceCtx) -> Result<Started, BoxError> {
        let (venue, sim) = connect(&settings).await?;
        let venue = Arc::new(venue);
        let gateway = start_hosted(venue.clone(), settings.gateway, ctx).await?;
        // Hot config: limits on the gateway, TRADING_RATE_LIMITS on the request-weight
        // limiter (in paper mode too, so the simulator sees what the venue would).
        gekko_gateway::checks::follow_hot_config(&gateway, ctx, move |rl, version| {
            let limit = weight_per_minute(rl);
            let old = venue.http().weight_limiter().set_limit(limit);
            tracing::info!(
                venue = "binanceus",
                version,
                variable = gekko_config::names::TRADING_RATE_LIMITS,
                old_limit = old,
                new_limit = limit,
                "config change applied: request-weight limit per minute"
            );
        });
        Ok(Started::new().provide(gateway).hold(sim))
    }
}

pub use gekko_gateway::service::serve_gateways;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rust_decimal_macros::dec;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn recv_window_reaches_the_venue_config_live_and_paper() {
        let paper = gekko_config::from_vars(&vars(&[])).unwrap().config;
        assert_eq!(resolve(&paper).unwrap().recv_window_ms, 5000, "the default");
        let cfg = gekko_config::from_vars(&vars(&[
            ("BINANCEUS_RECV_WINDOW", "20s"),
            ("BINANCEUS_API_KEY", "key"),
            ("BINANCEUS_API_SECRET", "secret"),
        ]))
        .unwrap()
        .config;
        let s = resolve(&cfg).unwrap();
        assert_eq!(s.recv_window_ms, 20_000);
        let VenueSettings::Live(vc) = s.venue else {
            panic!("credentials mean live");
        };
        assert_eq!(vc.recv_window_ms, 20_000);
        let venue = BinanceUsVenue::new(*vc).unwrap();
        assert_eq!(venue.unknown_order_horizon(), Duration::from_secs(22));
    }

    #[test]
    fn a_recv_window_binance_refuses_is_a_config_error() {
        for bad in ["61s", "0ms", "1500us", "soon"] {
            let err =
                gekko_config::from_vars(&vars(&[("BINANCEUS_RECV_WINDOW", bad)])).expect_err(bad);
            assert!(err.mentions("BINANCEUS_RECV_WINDOW"), "{bad}: {err}");
        }
        let ok = gekko_config::from_vars(&vars(&[("BINANCEUS_RECV_WINDOW", "60000ms")])).unwrap();
        assert_eq!(ok.config.binanceus_recv_window, Duration::from_mins(1));
    }

    #[test]
    fn gateway_config_carries_every_documented_limit() {
        let vars: BTreeMap<String, String> = [
            (
                "SUPPORTED_TRADING_PAIRS",
                "BTC-USD,oanda:EUR-USD,binanceus:ETH-USD",
            ),
            ("POSITION_LIMITS", "BTC-USD=2,binanceus:BTC-USD=1"),
            (
                "COMPLIANCE_SETTINGS",
                "max_order_notional=500,max_daily_notional=5000,daily_reset_hour=22,restricted_pairs=binanceus:ETH-USD",
            ),
            ("SYSTEM_PERFORMANCE_PARAMS", "max_inflight_orders=7"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let cfg = gekko_config::from_vars(&vars).unwrap().config;
        let g = gateway_config(&cfg);
        let pairs: Vec<String> = g
            .instruments
            .iter()
            .map(gekko_core::InstrumentId::pair)
            .collect();
        assert_eq!(pairs, ["BTC-USD", "ETH-USD"], "no oanda-only pair");
        assert_eq!(g.limits.position_limits["BTC-USD"], dec!(1));
        assert_eq!(g.limits.max_order_notional, dec!(500));
        assert_eq!(g.limits.max_daily_notional, dec!(5000));
        assert_eq!(g.limits.daily_reset_hour, 22);
        assert_eq!(g.limits.max_inflight_orders, 7);
        assert_eq!(g.limits.restricted_pairs, ["ETH-USD"]);
    }
}
