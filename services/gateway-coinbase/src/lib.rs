//! Wiring of the Coinbase Advanced Trade gateway, shared by the `gateway-coinbase` binary
//! and `gekko up`: both host the one [`CoinbaseGateway`] service.
//!
//! With `COINBASE_API_KEY_NAME`/`COINBASE_API_SECRET` set, the gateway talks to the venue
//! (`TRADING_API_ENDPOINTS` `coinbase=`, `coinbase.stream=` and `coinbase.user_stream=`
//! may point it elsewhere, and `TRADING_TLS_CA_FILE` adds trusted roots, e.g. a
//! simulator's or a corporate proxy's CA). Without them it is in paper mode: the
//! protocol-faithful Coinbase simulator runs in-process over TLS with its own self-signed
//! certificate, an ephemeral CDP key is generated and registered with it by its public
//! key only (as the real venue knows keys), and the same gateway code talks to it over
//! real sockets, signing a fresh JWT per request exactly as it would live.
//!
//! The venue configuration (URLs, rate limits, the key) is resolved and checked in
//! [`resolve`], so the host rejects a bad one with exit 64 before any port is bound: a
//! secret that is neither an EC P-256 nor an Ed25519 key is named without being echoed.
//! Only the connection itself happens in [`start`]. Like every gateway, the service
//! [provides](Started::provide) its [`Gateway`] and
//! [`serve_gateways`](gekko_gateway::service::serve_gateways) serves it.

use std::sync::Arc;
use std::time::Duration;

use gekko_coinbase::{CdpKey, CoinbaseConfig, CoinbaseVenue, JwtAlgorithm};
use gekko_config::{GekkoConfig, names};
use gekko_core::VenueId;
use gekko_gateway::engine::GatewayConfig;
use gekko_gateway::service::start_hosted;
use gekko_runtime::{BoxError, Service, ServiceCtx, Started};
use gekko_sim::coinbase::{SimApiKey, SimCoinbase, SimConfig, SimHandle};
use secrecy::ExposeSecret as _;

/// The bus source name of this gateway.
pub const SOURCE: &str = "gateway-coinbase";

/// The key name of the ephemeral paper-mode key.
pub const PAPER_KEY_NAME: &str = "organizations/gekko-paper/apiKeys/paper";

/// Gateway settings from gekko's config ([`GatewayConfig::from_gekko`] for Coinbase).
#[must_use]
pub fn gateway_config(cfg: &GekkoConfig) -> GatewayConfig {
    GatewayConfig::from_gekko(cfg, VenueId::Coinbase, SOURCE)
}

/// Where the gateway's venue is.
#[derive(Debug, Clone)]
pub enum VenueSettings {
    /// The real venue (or what `TRADING_API_ENDPOINTS` points at), with credentials.
    Live(Box<CoinbaseConfig>),
    /// No credentials: an in-process simulator with an ephemeral key, started by [`start`].
    Paper,
}

/// Everything the gateway needs, resolved from gekko's config.
#[derive(Debug, Clone)]
pub struct CoinbaseSettings {
    /// Where the venue is.
    pub venue: VenueSettings,
    /// The venue request timeout (`SYSTEM_PERFORMANCE_PARAMS order_timeout`).
    pub request_timeout: Duration,
    /// Market data older than this triggers a resubscribe
    /// (`MONITORING_CONFIGURATIONS stale_after`).
    pub stale_after: Duration,
    /// The gateway engine's settings ([`gateway_config`]).
    pub gateway: GatewayConfig,
    /// `TRADING_RATE_LIMITS coinbase` in private requests per second: the live client's
    /// limit, and the paper client's, so a configured limit applies from the start in both.
    pub private_rate_per_s: u32,
}

/// Resolves the gateway's settings from `cfg`: live with credentials, paper without.
///
/// Connects to nothing. It parses the CDP key (so a bad one is refused before any port
/// binds), validates the venue configuration, and reads `TRADING_TLS_CA_FILE` (a local
/// file the config loader has already checked).
///
/// # Errors
/// Every problem with the venue configuration, one line each, naming the variable and
/// never echoing the secret.
pub fn resolve(cfg: &GekkoConfig) -> Result<CoinbaseSettings, Vec<String>> {
    let request_timeout = cfg.system_performance.order_timeout;
    let stale_after = cfg.monitoring.stale_after;
    let venue = match &cfg.credentials.coinbase {
        Some(creds) => {
            let mut problems = Vec::new();
            // The name and the secret are checked apart, so that each problem is named
            // under its own variable and a bad name does not hide a bad secret.
            let secret = creds.api_secret.expose_secret();
            if let Err(e) = CdpKey::check_name(&creds.key_name) {
                problems.push(format!("{}: {e}", names::COINBASE_API_KEY_NAME));
            }
            if let Err(e) = CdpKey::check_secret(secret) {
                problems.push(format!("{}: {e}", names::COINBASE_API_SECRET));
            }
            let key = if problems.is_empty() {
                match CdpKey::parse(&creds.key_name, secret) {
                    Ok(k) => Some(Arc::new(k)),
                    Err(e) => {
                        problems.push(format!("{}: {e}", names::COINBASE_API_SECRET));
                        None
                    }
                }
            } else {
                None
            };
            let roots = match cfg.trading_tls_roots() {
                Ok(r) => r,
                Err(e) => {
                    problems.push(e);
                    Vec::new()
                }
            };
            let Some(key) = key else {
                return Err(problems);
            };
            let mut vc = CoinbaseConfig::coinbase(key);
            if let Some(url) = cfg.api_endpoint(VenueId::Coinbase) {
                url.clone_into(&mut vc.rest_base);
            }
            vc.rest_fallback = cfg.fallback_endpoint(VenueId::Coinbase).map(str::to_owned);
            if let Some(url) = cfg.stream_endpoint(VenueId::Coinbase) {
                url.clone_into(&mut vc.ws_market_url);
                // One override for both hosts unless the user host has its own.
                url.clone_into(&mut vc.ws_user_url);
            }
            if let Some(url) = cfg.user_stream_endpoint(VenueId::Coinbase) {
                url.clone_into(&mut vc.ws_user_url);
            }
            vc.extra_roots_pem = roots;
            vc.private_rate_per_s = cfg.rate_limit(VenueId::Coinbase).per_second();
            vc.request_timeout = request_timeout;
            vc.stale_after = stale_after;
            if let Err(ps) = vc.validate() {
                problems.extend(
                    ps.into_iter()
                        .map(|p| format!("coinbase configuration: {p}")),
                );
            }
            if !problems.is_empty() {
                return Err(problems);
            }
            VenueSettings::Live(Box::new(vc))
        }
        None => VenueSettings::Paper,
    };
    Ok(CoinbaseSettings {
        venue,
        request_timeout,
        stale_after,
        gateway: gateway_config(cfg),
        private_rate_per_s: cfg.rate_limit(VenueId::Coinbase).per_second(),
    })
}

/// The simulator config of paper mode: the default market, with `key` registered by its
/// public key.
#[must_use]
pub fn paper_sim_config(key: &CdpKey) -> SimConfig {
    SimConfig {
        api_keys: vec![SimApiKey {
            name: key.name().to_owned(),
            public_key_pem: key.public_key_pem(),
        }],
        ..SimConfig::default()
    }
}

/// A venue client for a running simulator, signing with `key` and trusting the
/// simulator's certificate.
///
/// # Errors
/// A client that cannot be built (an unusable certificate).
pub fn sim_venue(
    sim: &SimHandle,
    key: Arc<CdpKey>,
    request_timeout: Duration,
    stale_after: Duration,
) -> Result<CoinbaseVenue, gekko_coinbase::CoinbaseError> {
    CoinbaseVenue::new(sim_config(sim, key, request_timeout, stale_after))
}

/// The client configuration for a running simulator (the default rate limits).
fn sim_config(
    sim: &SimHandle,
    key: Arc<CdpKey>,
    request_timeout: Duration,
    stale_after: Duration,
) -> CoinbaseConfig {
    let mut cfg = CoinbaseConfig::simulator(
        &sim.rest_url,
        &sim.ws_url,
        &sim.ws_user_url,
        key,
        sim.cert_pem.clone(),
    );
    cfg.request_timeout = request_timeout;
    cfg.stale_after = stale_after;
    cfg
}

/// The venue client the settings describe; in paper mode it first generates an
/// ephemeral key and starts the simulator with it, which the caller keeps alive as long as
/// the client.
///
/// # Errors
/// A venue client that cannot be built or a simulator that cannot bind, with its reason.
pub async fn connect(
    settings: &CoinbaseSettings,
) -> anyhow::Result<(CoinbaseVenue, Option<SimHandle>)> {
    Ok(match &settings.venue {
        VenueSettings::Live(vc) => (CoinbaseVenue::new((**vc).clone())?, None),
        VenueSettings::Paper => {
            let key = Arc::new(CdpKey::generate(PAPER_KEY_NAME, JwtAlgorithm::Es256)?);
            let sim = SimCoinbase::start(paper_sim_config(&key)).await?;
            tracing::info!(
                rest = %sim.rest_url,
                ws = %sim.ws_url,
                ws_user = %sim.ws_user_url,
                "paper mode: Coinbase simulator started"
            );
            let mut vc = sim_config(&sim, key, settings.request_timeout, settings.stale_after);
            vc.private_rate_per_s = settings.private_rate_per_s;
            (CoinbaseVenue::new(vc)?, Some(sim))
        }
    })
}

/// The Coinbase gateway as a hosted service.
///
/// It provides its [`Gateway`](gekko_gateway::engine::Gateway) and holds the simulator,
/// in paper mode, until the process has drained.
#[derive(Debug)]
pub struct CoinbaseGateway;

impl Service for CoinbaseGateway {
    const NAME: &'static str = SOURCE;
    type Settings = CoinbaseSettings;

    fn resolve(cfg: &GekkoConfig) -> Result<CoinbaseSettings, Vec<String>> {
        resolve(cfg)
    }

    async fn start(settings: CoinbaseSettings, ctx: &ServiceCtx) -> Result<Started, BoxError> {
        let (venue, sim) = connect(&settings).await?;
        let venue = Arc::new(venue);
        let gateway = start_hosted(venue.clone(), settings.gateway, ctx).await?;
        // Hot config: limits on the gateway, TRADING_RATE_LIMITS on the private
        // (authenticated) limiter, the budget it sets at start.
        gekko_gateway::checks::follow_hot_config(&gateway, ctx, move |rl, version| {
            let limit = rl.per_second();
            let old = venue.http().private_limiter().set_limit(limit);
            tracing::info!(
                venue = "coinbase",
                version,
                variable = gekko_config::names::TRADING_RATE_LIMITS,
                old_limit = old,
                new_limit = limit,
                "config change applied: private requests per second"
            );
        });
        Ok(Started::new().provide(gateway).hold(sim))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn load(pairs: &[(&str, &str)]) -> GekkoConfig {
        let vars: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        gekko_config::from_vars(&vars).unwrap().config
    }

    #[test]
    fn no_credentials_means_paper_mode() {
        let s = resolve(&load(&[])).unwrap();
        assert!(matches!(s.venue, VenueSettings::Paper));
        let pairs: Vec<String> = s
            .gateway
            .instruments
            .iter()
            .map(gekko_core::InstrumentId::pair)
            .collect();
        assert_eq!(pairs, ["BTC-USD", "ETH-USD"]);
        assert!(
            s.gateway
                .instruments
                .iter()
                .all(|i| i.venue == VenueId::Coinbase)
        );
    }

    #[test]
    fn a_key_that_is_neither_ec_nor_ed25519_is_named_without_the_secret() {
        let cfg = load(&[
            ("COINBASE_API_KEY_NAME", "organizations/o/apiKeys/k"),
            ("COINBASE_API_SECRET", "not-a-key-SENTINEL-9999"),
        ]);
        let problems = resolve(&cfg).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("COINBASE_API_SECRET: "),
            "{problems:?}"
        );
        assert!(!problems[0].contains("SENTINEL"), "{problems:?}");
    }

    #[test]
    fn a_bad_name_and_a_bad_secret_are_two_problems_each_under_its_variable() {
        let mut cfg = load(&[
            ("COINBASE_API_KEY_NAME", "organizations/o/apiKeys/k"),
            ("COINBASE_API_SECRET", "not-a-key-SENTINEL-9999"),
        ]);
        // A name the loader's shape check lets through but the key parser refuses (the
        // two agree today; the gateway must still name it under its own variable).
        if let Some(c) = cfg.credentials.coinbase.as_mut() {
            c.key_name = "organizations/o/apiKeys/k/extra".to_owned();
        }
        let problems = resolve(&cfg).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("COINBASE_API_KEY_NAME: "),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("COINBASE_API_SECRET: "),
            "{problems:?}"
        );
        assert!(
            problems.iter().all(|p| !p.contains("SENTINEL")),
            "{problems:?}"
        );

        // A good secret beside a bad name: only the name is a problem.
        let secret =
            include_str!("../../../crates/venues/coinbase/test_data/ed25519_64.b64").trim();
        let mut cfg = load(&[
            ("COINBASE_API_KEY_NAME", "organizations/o/apiKeys/k"),
            ("COINBASE_API_SECRET", secret),
        ]);
        if let Some(c) = cfg.credentials.coinbase.as_mut() {
            c.key_name = "organizations/o/apiKeys/k!".to_owned();
        }
        let problems = resolve(&cfg).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("COINBASE_API_KEY_NAME: "),
            "{problems:?}"
        );
    }

    #[test]
    fn the_loader_refuses_the_names_the_key_parser_refuses() {
        let vars: BTreeMap<String, String> = [
            ("COINBASE_API_KEY_NAME", "organizations/o!/apiKeys/k"),
            ("COINBASE_API_SECRET", "SECRET-SENTINEL"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let e = gekko_config::from_vars(&vars).unwrap_err();
        assert_eq!(e.problems.len(), 1, "{e}");
        assert_eq!(e.problems[0].variable, "COINBASE_API_KEY_NAME");
        assert!(!e.to_string().contains("SECRET-SENTINEL"), "{e}");
        assert!(CdpKey::check_name("organizations/o!/apiKeys/k").is_err());
    }

    #[tokio::test]
    async fn paper_mode_applies_the_configured_rate_limit_from_the_start() {
        let s = resolve(&load(&[("TRADING_RATE_LIMITS", "coinbase=12/1s")])).unwrap();
        assert!(matches!(s.venue, VenueSettings::Paper));
        assert_eq!(s.private_rate_per_s, 12);
        let (venue, sim) = connect(&s).await.unwrap();
        assert_eq!(venue.http().private_limiter().limit(), 12);
        drop(venue);
        if let Some(sim) = sim {
            sim.shutdown().await;
        }
    }

    #[test]
    fn endpoints_rate_limit_and_timeouts_reach_the_venue_config() {
        // The official SDK's Ed25519 test key (base64 of 64 bytes).
        let secret =
            include_str!("../../../crates/venues/coinbase/test_data/ed25519_64.b64").trim();
        let cfg = load(&[
            ("COINBASE_API_KEY_NAME", "organizations/o/apiKeys/k"),
            ("COINBASE_API_SECRET", secret),
            (
                "TRADING_API_ENDPOINTS",
                "coinbase=https://127.0.0.1:9200,coinbase.stream=wss://127.0.0.1:9201,coinbase.fallback=https://127.0.0.1:9300",
            ),
            ("TRADING_RATE_LIMITS", "coinbase=20/1s"),
            ("SYSTEM_PERFORMANCE_PARAMS", "order_timeout=4s"),
        ]);
        let s = resolve(&cfg).unwrap();
        let VenueSettings::Live(vc) = s.venue else {
            panic!("credentials mean live");
        };
        assert_eq!(vc.rest_base, "https://127.0.0.1:9200");
        assert_eq!(vc.rest_fallback.as_deref(), Some("https://127.0.0.1:9300"));
        assert_eq!(vc.ws_market_url, "wss://127.0.0.1:9201");
        assert_eq!(
            vc.ws_user_url, "wss://127.0.0.1:9201",
            "falls back to .stream"
        );
        assert_eq!(vc.private_rate_per_s, 20);
        assert_eq!(vc.request_timeout, Duration::from_secs(4));
        assert_eq!(vc.key.algorithm(), JwtAlgorithm::EdDsa);
    }
}
