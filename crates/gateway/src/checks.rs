//! Pre-trade checks: nothing leaves the gateway that the venue's filters or gekko's own
//! risk limits would refuse. Each failure names the rule, the value and the limit, so the
//! gRPC caller gets a precise reason.

use std::collections::BTreeMap;

use gekko_core::{OrderRequest, OrderType, Side};
use rust_decimal::Decimal;

use gekko_venue::InstrumentInfo;

/// gekko's own limits for one gateway, from `POSITION_LIMITS` and `COMPLIANCE_SETTINGS`.
#[derive(Debug, Clone, Default)]
pub struct RiskLimits {
    /// Largest absolute position per canonical pair (`BTC-USD`); absent = unlimited.
    pub position_limits: BTreeMap<String, Decimal>,
    /// Largest notional of one order (quote currency); zero = unlimited.
    pub max_order_notional: Decimal,
    /// Largest notional sent per UTC day (quote currency), counting every order the venue
    /// did not refuse; zero = unlimited. `COMPLIANCE_SETTINGS.max_daily_notional`.
    pub max_daily_notional: Decimal,
    /// Most orders whose submit the venue has not yet acknowledged (pending or in
    /// flight); zero = unlimited. `SYSTEM_PERFORMANCE_PARAMS.max_inflight_orders`.
    pub max_inflight_orders: usize,
    /// Pairs that must not be traded.
    pub restricted_pairs: Vec<String>,
    /// Master switch.
    pub trading_enabled: bool,
}

/// Why an order was refused before sending.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// Trading is switched off (`COMPLIANCE_SETTINGS trading_enabled=false`, or halted).
    #[error("trading is disabled")]
    TradingDisabled,
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

fn is_multiple(value: Decimal, step: Decimal) -> bool {
    step.is_zero() || (value % step).is_zero()
}

/// Runs every check. `reference_price` prices market orders (best opposite quote);
/// `position` is the current signed position in the instrument's base asset.
///
/// # Errors
/// The first failing check, as a [`CheckError`].
pub fn check_order(
    req: &OrderRequest,
    info: Option<&InstrumentInfo>,
    limits: &RiskLimits,
    reference_price: Option<Decimal>,
    position: Decimal,
) -> Result<(), CheckError> {
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
            Some(p)
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
        (OrderType::Market, None) => reference_price,
    };
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
    if let Some(p) = price {
        let notional = p * req.qty;
        if !info.min_notional.is_zero() && notional < info.min_notional {
            return Err(CheckError::Filter {
                filter: "MIN_NOTIONAL",
                detail: format!(
                    "notional {notional} is below the minimum {}",
                    info.min_notional
                ),
            });
        }
        if !limits.max_order_notional.is_zero() && notional > limits.max_order_notional {
            return Err(CheckError::Risk {
                limit: "COMPLIANCE_SETTINGS.max_order_notional",
                detail: format!("notional {notional} exceeds {}", limits.max_order_notional),
            });
        }
    }
    if let Some(max) = limits.position_limits.get(&pair) {
        let after = position + req.side.sign() * req.qty;
        // Orders that reduce exposure are always allowed, even beyond the limit.
        let reduces = after.abs() < position.abs();
        if after.abs() > *max && !reduces {
            return Err(CheckError::Risk {
                limit: "POSITION_LIMITS",
                detail: format!(
                    "{pair} position would be {after} (now {position}, {} {}), limit {max}",
                    match req.side {
                        Side::Buy => "buying",
                        Side::Sell => "selling",
                    },
                    req.qty
                ),
            });
        }
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
    fn accepts_a_valid_order() {
        check_order(
            &req(Side::Buy, dec!(0.5), Some(dec!(30000.01))),
            Some(&info()),
            &limits(),
            None,
            dec!(0),
        )
        .unwrap();
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
            (
                req(Side::Buy, dec!(3), Some(dec!(30000))),
                "POSITION_LIMITS",
            ),
            (req(Side::Buy, dec!(101), Some(dec!(1))), "LOT_SIZE"),
        ];
        for (r, rule) in cases {
            let err = check_order(&r, Some(&i), &l, None, dec!(0)).unwrap_err();
            assert!(err.to_string().contains(rule), "{err} should name {rule}");
        }
        let err = check_order(
            &req(Side::Buy, dec!(2), Some(dec!(60000))),
            Some(&i),
            &RiskLimits {
                max_order_notional: dec!(100000),
                ..l.clone()
            },
            None,
            dec!(0),
        )
        .unwrap_err();
        assert!(err.to_string().contains("max_order_notional"), "{err}");
    }

    #[test]
    fn reducing_orders_pass_position_limits() {
        check_order(
            &req(Side::Sell, dec!(1), Some(dec!(30000))),
            Some(&info()),
            &limits(),
            None,
            dec!(3),
        )
        .unwrap();
        assert!(
            check_order(
                &req(Side::Buy, dec!(1), Some(dec!(30000))),
                Some(&info()),
                &limits(),
                None,
                dec!(2)
            )
            .is_err()
        );
    }

    #[test]
    fn market_orders_use_the_reference_price_for_notional() {
        let err = check_order(
            &req(Side::Buy, dec!(0.0001), None),
            Some(&info()),
            &limits(),
            Some(dec!(30000)),
            dec!(0),
        )
        .unwrap_err();
        assert!(err.to_string().contains("MIN_NOTIONAL"));
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
                dec!(0)
            ),
            Err(CheckError::TradingDisabled)
        );
        assert!(matches!(
            check_order(
                &req(Side::Buy, dec!(1), Some(dec!(1))),
                None,
                &limits(),
                None,
                dec!(0)
            ),
            Err(CheckError::NotTradable(_))
        ));
    }
}
