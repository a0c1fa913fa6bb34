//! Gateway settings: what one engine needs to know that the venue does not tell it.

use std::time::Duration;

use gekko_bus::names;
use gekko_core::InstrumentId;

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
        }
    }
}
