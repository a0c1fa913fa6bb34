//! Pre-trade checks: nothing leaves the gateway that the venue's filters or gekko's own
//! risk limits would refuse. Each failure names the rule, the value and the limit, so the
//! gRPC caller gets a precise reason.
//!
//! Two kinds of rule live here, as pure functions:
//! - [`check_order`] judges the request alone (switches, filters, one order's notional);
//!   the engine runs it before taking any lock.
//! - [`check_inflight`], [`check_daily_notional`] and [`check_position`] depend on every
//!   other order. The order tracker runs them under its lock, in the same critical
//!   section that inserts the new order, so two concurrent submits cannot both pass a
//!   limit that only one of them fits under.

use std::collections::BTreeMap;

use gekko_core::{OrderRequest, OrderType, Side, TimeInForce};
use rust_decimal::Decimal;

use gekko_venue::InstrumentInfo;

/// gekko's own limits for one gateway, from `POSITION_LIMITS` and `COMPLIANCE_SETTINGS`.
#[derive(Debug, Clone, Default)]
pub struct RiskLimits {
    /// Largest absolute position per canonical pair (`BTC-USD`); absent = unlimited.
    pub position_limits: BTreeMap<String, Decimal>,
    /// Largest notional of one order, in the account currency
    /// ([`gekko_venue::VenueAdapter::account_notional`]; the quote currency on spot venues
    /// quoted in it); zero = unlimited.
    pub max_order_notional: Decimal,
    /// Largest notional sent per trading day (account currency, summed across
    /// instruments), counting every order the
    /// venue did not refuse; zero = unlimited. `COMPLIANCE_SETTINGS.max_daily_notional`.
    pub max_daily_notional: Decimal,
    /// The UTC hour (0..=23) at which the trading day of `max_daily_notional` starts.
    /// `COMPLIANCE_SETTINGS.daily_reset_hour`.
    pub daily_reset_hour: u8,
    /// Most orders whose submit the venue has not yet acknowledged (pending or in
    /// flight); zero = unlimited. `SYSTEM_PERFORMANCE_PARAMS.max_inflight_orders`.
    pub max_inflight_orders: usize,
    /// Pairs that must not be traded.
    pub restricted_pairs: Vec<String>,
    /// Master switch.
    pub trading_enabled: bool,
}

/// The [`RiskLimits`] in force, swappable while orders are being checked (a hot config
/// change of `POSITION_LIMITS` or `COMPLIANCE_SETTINGS`).
///
/// Every check reads one whole snapshot ([`load`](Self::load)): an order is judged by the
/// old limits or the new ones, never a mix. Lock-free (`ArcSwap`), so the submit path never
/// waits for a writer.
#[derive(Debug)]
pub struct LiveLimits(arc_swap::ArcSwap<RiskLimits>);

impl LiveLimits {
    /// Starts with `limits`.
    #[must_use]
    pub fn new(limits: RiskLimits) -> Self {
        Self(arc_swap::ArcSwap::from_pointee(limits))
    }

    /// The limits in force now.
    #[must_use]
    pub fn load(&self) -> std::sync::Arc<RiskLimits> {
        self.0.load_full()
    }

    /// Puts `limits` in force for every order checked from now on.
    pub fn store(&self, limits: RiskLimits) {
        self.0.store(std::sync::Arc::new(limits));
    }
}

/// Follows the process's hot config versions
/// ([`ServiceCtx::hot_config`](gekko_runtime::ServiceCtx::hot_config)) and puts a changed
/// `POSITION_LIMITS` or `COMPLIANCE_SETTINGS` in force on `gateway`, with one info line
/// per applied variable naming the version. A changed `TRADING_RATE_LIMITS` entry of this
/// venue goes to `on_rate_limit` (the venue's limiter), with the version.
///
/// The trading day's reset hour (`COMPLIANCE_SETTINGS daily_reset_hour`) is fixed at
/// start; a change of it is reported as needing a restart and the old hour stays.
pub fn follow_hot_config(
    gateway: &crate::engine::Gateway,
    ctx: &gekko_runtime::ServiceCtx,
    on_rate_limit: impl Fn(gekko_config::RateLimit, u64) + Send + 'static,
) {
    use gekko_config::names;
    let Some(mut rx) = ctx.hot_config() else {
        return;
    };
    let gateway = gateway.clone();
    let venue = gateway.venue();
    let service = format!("gateway-{}", venue.as_str());
    let mut applied = rx.borrow().started_with.clone();
    let cancel = ctx.cancel();
    ctx.spawn("gateway-hot-config", async move {
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                r = rx.changed() => if r.is_err() { break },
            }
            let hot = rx.borrow_and_update().clone();
            let changed = gekko_runtime::hot::hot_changes(&applied, &hot.config);
            let limits_changed = changed
                .iter()
                .any(|v| *v == names::POSITION_LIMITS || *v == names::COMPLIANCE_SETTINGS);
            if limits_changed {
                let old = gateway.risk_limits();
                let new = crate::engine::GatewayConfig::from_gekko(&hot.config, venue, "").limits;
                if new.daily_reset_hour != old.daily_reset_hour {
                    gekko_runtime::hot::report_restart_needed(
                        &service,
                        "COMPLIANCE_SETTINGS daily_reset_hour",
                        hot.version,
                    );
                }
                gateway.set_risk_limits(RiskLimits {
                    daily_reset_hour: old.daily_reset_hour,
                    ..new
                });
                for v in changed
                    .iter()
                    .filter(|v| **v == names::POSITION_LIMITS || **v == names::COMPLIANCE_SETTINGS)
                {
                    tracing::info!(
                        venue = venue.as_str(),
                        version = hot.version,
                        variable = v,
                        "config change applied: pre-trade limits"
                    );
                }
            }
            if changed.contains(&names::TRADING_RATE_LIMITS)
                && applied.rate_limit(venue) != hot.config.rate_limit(venue)
            {
                on_rate_limit(hot.config.rate_limit(venue), hot.version);
            }
            applied = hot.config;
        }
        Ok::<(), std::convert::Infallible>(())
    });
}

/// Why an order was refused before sending.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// Trading is switched off by configuration (`COMPLIANCE_SETTINGS trading_enabled=false`).
    #[error("trading is disabled (COMPLIANCE_SETTINGS trading_enabled=false)")]
    TradingDisabled,
    /// New orders are halted by the kill switch (`SetTradingEnabled`, or a shutdown that
    /// stops entries).
    #[error("kill switch engaged: new orders are refused ({reason})")]
    KillSwitch {
        /// Why it was engaged, as given by whoever engaged it.
        reason: String,
    },
    /// A market order could not be priced: the gateway has no quote or book for the
    /// instrument yet, so its notional limits cannot be checked.
    #[error(
        "market order on {0} refused: no reference price yet (no quote or book from the venue); retry when market data flows, or send a limit order"
    )]
    NoReferencePrice(String),
    /// The instrument is unknown, not configured, or not trading.
    #[error("instrument {0} is not tradable here")]
    NotTradable(String),
    /// The instrument is restricted by compliance settings.
    #[error("instrument {0} is restricted by COMPLIANCE_SETTINGS")]
    Restricted(String),
    /// Malformed request (missing price for a limit order, non-positive quantity, ...).
    #[error("invalid order: {0}")]
    Invalid(String),
    /// A venue filter (tick size, lot size, min/max quantity, min notional).
    #[error("filter {filter}: {detail}")]
    Filter {
        /// `PRICE_FILTER`, `LOT_SIZE`, `MIN_NOTIONAL`.
        filter: &'static str,
        /// Value and limit.
        detail: String,
    },
    /// A gekko risk limit (`POSITION_LIMITS`, max order notional).
    #[error("risk limit {limit}: {detail}")]
    Risk {
        /// The setting that refused it (`POSITION_LIMITS`,
        /// `COMPLIANCE_SETTINGS.max_order_notional`, ...).
        limit: &'static str,
        /// Value and limit.
        detail: String,
    },
}

impl CheckError {
    /// The rule that refused the order, as a short stable name for counting refusals:
    /// `trading_enabled`, `kill_switch`, `no_reference_price`, `not_tradable`,
    /// `restricted_pairs`, `invalid`, a venue filter name (`LOT_SIZE`, ...) or a limit
    /// setting (`POSITION_LIMITS`, `COMPLIANCE_SETTINGS.max_daily_notional`, ...).
    #[must_use]
    pub fn rule(&self) -> &'static str {
        match self {
            Self::TradingDisabled => "trading_enabled",
            Self::KillSwitch { .. } => "kill_switch",
            Self::NoReferencePrice(_) => "no_reference_price",
            Self::NotTradable(_) => "not_tradable",
            Self::Restricted(_) => "restricted_pairs",
            Self::Invalid(_) => "invalid",
            Self::Filter { filter, .. } => filter,
            Self::Risk { limit, .. } => limit,
        }
    }
}

fn is_multiple(value: Decimal, step: Decimal) -> bool {
    step.is_zero() || (value % step).is_zero()
}

/// Runs every check on the request alone, and returns the price its notional is counted
/// at: the limit price, or for a market order `reference_price` (the best opposite quote).
///
/// # Errors
/// The first failing check, as a [`CheckError`]; a market order without a reference
/// price is [`CheckError::NoReferencePrice`].
pub fn check_order(
    req: &OrderRequest,
    info: Option<&InstrumentInfo>,
    limits: &RiskLimits,
    reference_price: Option<Decimal>,
) -> Result<Decimal, CheckError> {
    check_order_in(req, info, limits, reference_price, None)
}

/// [`check_order`], with `max_order_notional` judged against `account_notional` (the
/// order's notional in the account currency, from
/// [`gekko_venue::VenueAdapter::account_notional`]) when given, instead of price ×
/// quantity in the quote currency. The venue's `min_notional` filter stays in the quote
/// currency, as the venue states it.
///
/// # Errors
/// As [`check_order`].
pub fn check_order_in(
    req: &OrderRequest,
    info: Option<&InstrumentInfo>,
    limits: &RiskLimits,
    reference_price: Option<Decimal>,
    account_notional: Option<Decimal>,
) -> Result<Decimal, CheckError> {
    let pair = req.instrument.pair();
    if !limits.trading_enabled {
        return Err(CheckError::TradingDisabled);
    }
    if limits.restricted_pairs.contains(&pair) {
        return Err(CheckError::Restricted(pair));
    }
    let info = match info {
        Some(i) if i.trading => i,
        _ => return Err(CheckError::NotTradable(pair)),
    };
    if req.qty <= Decimal::ZERO {
        return Err(CheckError::Invalid(format!(
            "quantity {} must be positive",
            req.qty
        )));
    }
    let price = match (req.order_type, req.price) {
        (OrderType::Limit, Some(p)) if p > Decimal::ZERO => {
            if !is_multiple(p, info.tick_size) {
                return Err(CheckError::Filter {
                    filter: "PRICE_FILTER",
                    detail: format!(
                        "price {p} is not a multiple of tick size {}",
                        info.tick_size
                    ),
                });
            }
            p
        }
        (OrderType::Limit, _) => {
            return Err(CheckError::Invalid(
                "a limit order needs a positive price".to_owned(),
            ));
        }
        (OrderType::Market, Some(_)) => {
            return Err(CheckError::Invalid(
                "a market order takes no price".to_owned(),
            ));
        }
        (OrderType::Market, None) => match reference_price {
            Some(p) if p > Decimal::ZERO => p,
            _ => return Err(CheckError::NoReferencePrice(pair)),
        },
    };
    match (req.order_type, req.time_in_force) {
        (OrderType::Market, Some(t @ (TimeInForce::Gtd { .. } | TimeInForce::Gfd))) => {
            return Err(CheckError::Invalid(format!(
                "{} is for limit orders only",
                t.as_str()
            )));
        }
        (_, Some(TimeInForce::Gtd { expire_at_ms })) if expire_at_ms <= gekko_core::now_ms() => {
            return Err(CheckError::Invalid(format!(
                "a GTD expiry must be in the future: {} has passed",
                gekko_core::order::rfc3339_ms(expire_at_ms)
            )));
        }
        _ => {}
    }
    if !is_multiple(req.qty, info.lot_size) {
        return Err(CheckError::Filter {
            filter: "LOT_SIZE",
            detail: format!(
                "quantity {} is not a multiple of step size {}",
                req.qty, info.lot_size
            ),
        });
    }
    if !info.min_qty.is_zero() && req.qty < info.min_qty {
        return Err(CheckError::Filter {
            filter: "LOT_SIZE",
            detail: format!("quantity {} is below the minimum {}", req.qty, info.min_qty),
        });
    }
    if !info.max_qty.is_zero() && req.qty > info.max_qty {
        return Err(CheckError::Filter {
            filter: "LOT_SIZE",
            detail: format!("quantity {} is above the maximum {}", req.qty, info.max_qty),
        });
    }
    let notional = price * req.qty;
    if !info.min_notional.is_zero() && notional < info.min_notional {
        return Err(CheckError::Filter {
            filter: "MIN_NOTIONAL",
            detail: format!(
                "notional {notional} is below the minimum {}",
                info.min_notional
            ),
        });
    }
    let notional = account_notional.unwrap_or(notional);
    if !limits.max_order_notional.is_zero() && notional > limits.max_order_notional {
        return Err(CheckError::Risk {
            limit: "COMPLIANCE_SETTINGS.max_order_notional",
            detail: format!("notional {notional} exceeds {}", limits.max_order_notional),
        });
    }
    Ok(price)
}

/// `max_inflight_orders`: `pending` orders already await the venue's answer.
///
/// # Errors
/// [`CheckError::Risk`] when one more would exceed `max` (zero = unlimited).
pub fn check_inflight(pending: usize, max: usize) -> Result<(), CheckError> {
    if max > 0 && pending >= max {
        return Err(CheckError::Risk {
            limit: "SYSTEM_PERFORMANCE_PARAMS.max_inflight_orders",
            detail: format!("{pending} orders already await the venue's answer, limit {max}"),
        });
    }
    Ok(())
}

/// `max_daily_notional`: `used` was sent this trading day, `notional` is the new order's.
///
/// # Errors
/// [`CheckError::Risk`] when the sum would exceed `max` (zero = unlimited).
pub fn check_daily_notional(
    used: Decimal,
    notional: Decimal,
    max: Decimal,
    reset_hour: u8,
) -> Result<(), CheckError> {
    if !max.is_zero() && used + notional > max {
        return Err(CheckError::Risk {
            limit: "COMPLIANCE_SETTINGS.max_daily_notional",
            detail: format!(
                "notional {notional} on top of {used} sent since {reset_hour:02}:00 UTC exceeds {max}"
            ),
        });
    }
    Ok(())
}

/// `POSITION_LIMITS`, counting working orders as well as the holding: `position` is the
/// signed position now, `working_same_side` the unfilled quantity of the open orders on
/// the request's side (buys for a buy, sells for a sell). The exposure if they all fill
/// is `position ± working_same_side`, and the new order adds to it; so resting buys
/// stacked one on another cannot together exceed the limit, and sells are symmetric.
///
/// An order that brings that exposure closer to zero is always allowed, even beyond the
/// limit (closing a position must never be refused by its own limit).
///
/// # Errors
/// [`CheckError::Risk`] naming the pair, the exposure and the limit.
pub fn check_position(
    req: &OrderRequest,
    max: Option<Decimal>,
    position: Decimal,
    working_same_side: Decimal,
) -> Result<(), CheckError> {
    let Some(max) = max else { return Ok(()) };
    let sign = req.side.sign();
    let before = position + sign * working_same_side;
    let after = before + sign * req.qty;
    let reduces = after.abs() < before.abs();
    if after.abs() > max && !reduces {
        let (verb, open) = match req.side {
            Side::Buy => ("buying", "open buys"),
            Side::Sell => ("selling", "open sells"),
        };
        return Err(CheckError::Risk {
            limit: "POSITION_LIMITS",
            detail: format!(
                "{} position would be {after} if every working order fills (holding {position}, {open} {working_same_side}, {verb} {}), limit {max}",
                req.instrument.pair(),
                req.qty
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use gekko_core::{ClientOrderId, InstrumentId, TimeInForce, VenueId};
    use rust_decimal_macros::dec;

    use super::*;

    fn info() -> InstrumentInfo {
        InstrumentInfo {
            id: InstrumentId::new(VenueId::BinanceUs, "BTC", "USD"),
            venue_symbol: "BTCUSD".into(),
            tick_size: dec!(0.01),
            lot_size: dec!(0.0001),
            min_qty: dec!(0.0001),
            max_qty: dec!(100),
            min_notional: dec!(10),
            trading: true,
        }
    }

    fn req(side: Side, qty: Decimal, price: Option<Decimal>) -> OrderRequest {
        OrderRequest {
            client_order_id: ClientOrderId::parse("t1").unwrap(),
            instrument: info().id,
            side,
            order_type: if price.is_some() {
                OrderType::Limit
            } else {
                OrderType::Market
            },
            qty,
            price,
            time_in_force: price.map(|_| TimeInForce::Gtc),
        }
    }

    fn limits() -> RiskLimits {
        RiskLimits {
            position_limits: [("BTC-USD".to_owned(), dec!(2))].into(),
            max_order_notional: dec!(100000),
            restricted_pairs: vec![],
            trading_enabled: true,
            ..RiskLimits::default()
        }
    }

    #[test]
    fn gtd_needs_a_future_expiry_and_gtd_gfd_need_a_limit_order() {
        let mut r = req(Side::Buy, dec!(0.5), Some(dec!(100)));
        r.time_in_force = Some(TimeInForce::Gtd {
            expire_at_ms: gekko_core::now_ms() + 60_000,
        });
        assert_eq!(
            check_order(&r, Some(&info()), &limits(), None),
            Ok(dec!(100))
        );
        r.time_in_force = Some(TimeInForce::Gfd);
        assert_eq!(
            check_order(&r, Some(&info()), &limits(), None),
            Ok(dec!(100))
        );
        r.time_in_force = Some(TimeInForce::Gtd {
            expire_at_ms: gekko_core::now_ms() - 1,
        });
        let e = check_order(&r, Some(&info()), &limits(), None).unwrap_err();
        assert_eq!(e.rule(), "invalid");
        assert!(e.to_string().contains("must be in the future"), "{e}");
        let mut m = req(Side::Buy, dec!(0.5), None);
        m.time_in_force = Some(TimeInForce::Gfd);
        let e = check_order(&m, Some(&info()), &limits(), Some(dec!(100))).unwrap_err();
        assert_eq!(e.to_string(), "invalid order: GFD is for limit orders only");
    }

    #[test]
    fn accepts_a_valid_order_and_prices_it() {
        let px = check_order(
            &req(Side::Buy, dec!(0.5), Some(dec!(30000.01))),
            Some(&info()),
            &limits(),
            None,
        )
        .unwrap();
        assert_eq!(px, dec!(30000.01));
    }

    #[test]
    fn each_rule_rejects_with_its_name() {
        let i = info();
        let l = limits();
        let cases = [
            (
                req(Side::Buy, dec!(0.5), Some(dec!(30000.001))),
                "PRICE_FILTER",
            ),
            (req(Side::Buy, dec!(0.00005), Some(dec!(30000))), "LOT_SIZE"),
            (req(Side::Buy, dec!(0.0001), Some(dec!(1))), "MIN_NOTIONAL"),
            (req(Side::Buy, dec!(101), Some(dec!(1))), "LOT_SIZE"),
        ];
        for (r, rule) in cases {
            let err = check_order(&r, Some(&i), &l, None).unwrap_err();
            assert!(err.to_string().contains(rule), "{err} should name {rule}");
        }
        let err = check_order(
            &req(Side::Buy, dec!(2), Some(dec!(60000))),
            Some(&i),
            &l,
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("max_order_notional"), "{err}");
        let err = check_position(
            &req(Side::Buy, dec!(3), None),
            Some(dec!(2)),
            dec!(0),
            dec!(0),
        )
        .unwrap_err();
        assert!(err.to_string().contains("POSITION_LIMITS"), "{err}");
    }

    #[test]
    fn reducing_orders_pass_position_limits() {
        let sell = req(Side::Sell, dec!(1), Some(dec!(30000)));
        check_position(&sell, Some(dec!(2)), dec!(3), dec!(0)).unwrap();
        let buy = req(Side::Buy, dec!(1), Some(dec!(30000)));
        assert!(check_position(&buy, Some(dec!(2)), dec!(2), dec!(0)).is_err());
        // Short 3: a buy of 1 brings it to -2, allowed.
        check_position(&buy, Some(dec!(2)), dec!(-3), dec!(0)).unwrap();
        check_position(&buy, None, dec!(100), dec!(100)).unwrap();
    }

    #[test]
    fn working_orders_count_towards_position_limits() {
        let buy = req(Side::Buy, dec!(1), Some(dec!(30000)));
        // Flat, limit 2: 1 + 1 resting is fine, a third stacked buy is not.
        check_position(&buy, Some(dec!(2)), dec!(0), dec!(1)).unwrap();
        let err = check_position(&buy, Some(dec!(2)), dec!(0), dec!(2)).unwrap_err();
        assert!(err.to_string().contains("open buys 2"), "{err}");
        // Holding 1 with 1 resting: full.
        assert!(check_position(&buy, Some(dec!(2)), dec!(1), dec!(1)).is_err());
        // Sells are symmetric (margin venues: going short).
        let sell = req(Side::Sell, dec!(1), Some(dec!(30000)));
        check_position(&sell, Some(dec!(2)), dec!(0), dec!(1)).unwrap();
        let err = check_position(&sell, Some(dec!(2)), dec!(0), dec!(2)).unwrap_err();
        assert!(err.to_string().contains("open sells 2"), "{err}");
        // Selling a long holding while sells to close part of it rest: still reducing.
        check_position(&sell, Some(dec!(2)), dec!(3), dec!(1)).unwrap();
    }

    #[test]
    fn inflight_and_daily_limits() {
        check_inflight(2, 3).unwrap();
        check_inflight(100, 0).unwrap();
        let err = check_inflight(3, 3).unwrap_err();
        assert!(err.to_string().contains("max_inflight_orders"), "{err}");
        check_daily_notional(dec!(900), dec!(100), dec!(1000), 0).unwrap();
        check_daily_notional(dec!(900), dec!(10000), dec!(0), 0).unwrap();
        let err = check_daily_notional(dec!(900), dec!(101), dec!(1000), 7).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("max_daily_notional") && msg.contains("07:00 UTC"),
            "{msg}"
        );
    }

    #[test]
    fn market_orders_use_the_reference_price_for_notional() {
        let err = check_order(
            &req(Side::Buy, dec!(0.0001), None),
            Some(&info()),
            &limits(),
            Some(dec!(30000)),
        )
        .unwrap_err();
        assert!(err.to_string().contains("MIN_NOTIONAL"));
        let px = check_order(
            &req(Side::Buy, dec!(0.1), None),
            Some(&info()),
            &limits(),
            Some(dec!(30000)),
        )
        .unwrap();
        assert_eq!(px, dec!(30000));
    }

    #[test]
    fn a_market_order_without_a_reference_price_is_refused() {
        let err = check_order(
            &req(Side::Buy, dec!(0.1), None),
            Some(&info()),
            &limits(),
            None,
        )
        .unwrap_err();
        assert_eq!(err, CheckError::NoReferencePrice("BTC-USD".into()));
        assert!(err.to_string().contains("no reference price"), "{err}");
    }

    #[test]
    fn disabled_and_unknown() {
        let l = RiskLimits {
            trading_enabled: false,
            ..limits()
        };
        assert_eq!(
            check_order(
                &req(Side::Buy, dec!(1), Some(dec!(1))),
                Some(&info()),
                &l,
                None,
            ),
            Err(CheckError::TradingDisabled)
        );
        assert!(matches!(
            check_order(
                &req(Side::Buy, dec!(1), Some(dec!(1))),
                None,
                &limits(),
                None,
            ),
            Err(CheckError::NotTradable(_))
        ));
    }
}
