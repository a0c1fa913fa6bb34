//! Gateway settings: what one engine needs to know that the venue does not tell it.

use std::time::Duration;

use gekko_bus::names;
use gekko_config::GekkoConfig;
use gekko_core::{InstrumentId, VenueId};

use crate::checks::RiskLimits;

/// What to do when start-up reconciliation finds open orders at the venue that this
/// gateway has no record of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconcileMode {
    /// Track them from now on (and report the difference in metrics and logs).
    Adopt,
    /// Refuse to start: a human should look first.
    Strict,
}

/// Gateway settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Name on bus envelopes, e.g. `gateway-binanceus`.
    pub source: String,
    /// Instruments to trade and stream. Pairs the venue does not list are skipped at
    /// start with a warning.
    pub instruments: Vec<InstrumentId>,
    /// Risk limits applied before anything is sent.
    pub limits: RiskLimits,
    /// Start-up reconciliation policy.
    pub reconcile_mode: ReconcileMode,
    /// Readiness requires the clock offset to be within this.
    pub max_clock_offset: Duration,
    /// How often the venue clock is sampled.
    pub clock_sync_interval: Duration,
    /// For venues that declare no unknown-order horizon
    /// ([`gekko_venue::VenueCaps::unknown_order_horizon`] is `None`): an in-flight order
    /// the venue still does not know after this long is reported (log, metric
    /// `gekko_gateway_inflight_overdue_total`) but stays in flight and keeps being queried.
    /// gekko never concludes "not placed" from time alone where the venue gives no
    /// guarantee.
    pub in_flight_alert_after: Duration,
    /// Market data older than this makes the gateway not ready.
    pub stale_after: Duration,
    /// Cap of the market-data streams on the bus.
    pub market_data_max_len: usize,
    /// How many fill trade ids are remembered for de-duplication.
    pub fill_dedup_window: usize,
    /// Leader election between replicas of this venue account (`GATEWAY_HA_SETTINGS`);
    /// `None`: this process is the only one and always leads (the memory bus, `gekko up`).
    /// An empty `advertise` or `owner` is filled in by [`crate::service::start_hosted`]
    /// from the bound gRPC address.
    pub lease: Option<crate::lease::LeaseConfig>,
}

impl GatewayConfig {
    /// Defaults for everything but the identity and the instruments.
    #[must_use]
    pub fn new(source: impl Into<String>, instruments: Vec<InstrumentId>) -> Self {
        Self {
            source: source.into(),
            instruments,
            limits: RiskLimits {
                trading_enabled: true,
                ..RiskLimits::default()
            },
            reconcile_mode: ReconcileMode::Adopt,
            max_clock_offset: Duration::from_millis(1000),
            clock_sync_interval: Duration::from_secs(60),
            in_flight_alert_after: Duration::from_secs(60),
            stale_after: Duration::from_secs(10),
            market_data_max_len: names::MARKET_DATA_MAX_LEN,
            fill_dedup_window: 100_000,
            lease: None,
        }
    }
}

impl GatewayConfig {
    /// The settings of `venue`'s gateway from gekko's config: the pairs that apply to the
    /// venue (plain and venue-qualified; the engine keeps the ones the venue lists and
    /// logs the rest), its position limits and restricted pairs, the compliance and
    /// in-flight limits, and the staleness bound. One place for every venue's gateway.
    #[must_use]
    pub fn from_gekko(cfg: &GekkoConfig, venue: VenueId, source: impl Into<String>) -> Self {
        let mut g = Self::new(source, cfg.instruments_for(venue));
        g.stale_after = cfg.monitoring.stale_after;
        g.reconcile_mode = ReconcileMode::Adopt;
        g.limits.position_limits = cfg.position_limits_for(venue);
        g.limits.max_order_notional = cfg.compliance.max_order_notional;
        g.limits.max_daily_notional = cfg.compliance.max_daily_notional;
        g.limits.daily_reset_hour = cfg.compliance.daily_reset_hour;
        g.limits.max_inflight_orders =
            usize::try_from(cfg.system_performance.max_inflight_orders).unwrap_or(usize::MAX);
        g.limits.restricted_pairs = cfg.restricted_pairs_for(venue);
        g.limits.trading_enabled = cfg.compliance.trading_enabled;
        g.lease = lease_config(cfg, venue);
        g
    }
}

/// The lease settings of `venue`'s gateway, when `GATEWAY_HA_SETTINGS enabled=true` and
/// Redis is configured (the loader refuses the first without the second).
fn lease_config(cfg: &GekkoConfig, venue: VenueId) -> Option<crate::lease::LeaseConfig> {
    let ha = &cfg.gateway_ha;
    let redis_url = cfg.redis_url.as_ref().filter(|_| ha.enabled)?;
    Some(crate::lease::LeaseConfig {
        redis_url: redis_url.clone(),
        key: ha
            .lease_key
            .clone()
            .unwrap_or_else(|| crate::lease::LeaseConfig::default_key(venue.as_str())),
        ttl: ha.lease_ttl,
        renew_interval: ha.renew_interval,
        owner: ha.replica_id.clone().unwrap_or_default(),
        advertise: ha.advertise_addr.clone().unwrap_or_default(),
    })
}
