//! Instrument rules and the pre-trade checks of a margin venue (issue 10, reference
//! §3.5): units precision (`tradeUnitsPrecision`), `minimumTradeSize`,
//! `maximumOrderUnits`, price precision (`displayPrecision`), and the margin an order
//! would require against the margin available.
//!
//! Required margin is `units × price × marginRate` in the instrument's quote currency,
//! converted to the account currency: unchanged when the quote is the account currency
//! (EUR_USD in a USD account), divided by the price when the base is (USD_JPY in a USD
//! account: `units × marginRate` dollars), and through a third price otherwise (the
//! caller supplies the quote → account conversion factor).

use gekko_core::InstrumentId;
use gekko_venue::{InstrumentInfo, RejectReason};
use rust_decimal::Decimal;

use super::instrument::instrument;
use super::models::OandaInstrument;
use crate::error::OandaError;

/// The rules of one instrument, from `GET …/instruments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstrumentRules {
    /// gekko's id.
    pub id: InstrumentId,
    /// `EUR_USD`.
    pub name: String,
    /// Decimal places of prices.
    pub display_precision: u32,
    /// Decimal places of units.
    pub trade_units_precision: u32,
    /// Smallest order size (0 = unchecked).
    pub minimum_trade_size: Decimal,
    /// Largest order size (0 = unchecked).
    pub maximum_order_units: Decimal,
    /// The instrument's margin rate.
    pub margin_rate: Decimal,
}

/// `10^-places`, the increment of a value with `places` decimals.
fn increment(places: u32) -> Decimal {
    Decimal::new(1, places.min(28))
}

/// The number of decimals `v` really uses (trailing zeros ignored).
fn places(v: Decimal) -> u32 {
    v.normalize().scale()
}

impl InstrumentRules {
    /// The rules of a venue instrument; `None` when its name does not map.
    #[must_use]
    pub fn from_venue(i: &OandaInstrument) -> Option<Self> {
        Some(Self {
            id: instrument(&i.name)?,
            name: i.name.clone(),
            display_precision: i.display_precision,
            trade_units_precision: i.trade_units_precision,
            minimum_trade_size: i.minimum_trade_size,
            maximum_order_units: i.maximum_order_units,
            margin_rate: i.margin_rate,
        })
    }

    /// The contract's view: tick `10^-displayPrecision`, lot `10^-tradeUnitsPrecision`,
    /// minimum and maximum size.
    #[must_use]
    pub fn info(&self) -> InstrumentInfo {
        InstrumentInfo {
            id: self.id.clone(),
            venue_symbol: self.name.clone(),
            tick_size: increment(self.display_precision),
            lot_size: increment(self.trade_units_precision),
            min_qty: self.minimum_trade_size,
            max_qty: self.maximum_order_units,
            min_notional: Decimal::ZERO,
            trading: true,
        }
    }

    /// Checks an order's size and price against the instrument's filters.
    ///
    /// # Errors
    /// [`OandaError::PreTrade`] (reason `Filter`) naming the rule and the numbers.
    pub fn check(&self, qty: Decimal, price: Option<Decimal>) -> Result<(), OandaError> {
        let refuse = |rule, message| {
            Err(OandaError::PreTrade {
                rule,
                reason: RejectReason::Filter,
                message,
            })
        };
        if qty <= Decimal::ZERO {
            return refuse("units", format!("units {qty} must be positive"));
        }
        if places(qty) > self.trade_units_precision {
            return refuse(
                "trade_units_precision",
                format!(
                    "units {qty} have more than {} decimals for {}",
                    self.trade_units_precision, self.name
                ),
            );
        }
        if !self.minimum_trade_size.is_zero() && qty < self.minimum_trade_size {
            return refuse(
                "minimum_trade_size",
                format!(
                    "units {qty} are below the minimum {} for {}",
                    self.minimum_trade_size, self.name
                ),
            );
        }
        if !self.maximum_order_units.is_zero() && qty > self.maximum_order_units {
            return refuse(
                "maximum_order_units",
                format!(
                    "units {qty} are above the maximum {} for {}",
                    self.maximum_order_units, self.name
                ),
            );
        }
        if let Some(p) = price {
            if p <= Decimal::ZERO {
                return refuse("price", format!("price {p} must be positive"));
            }
            if places(p) > self.display_precision {
                return refuse(
                    "display_precision",
                    format!(
                        "price {p} has more than {} decimals for {}",
                        self.display_precision, self.name
                    ),
                );
            }
        }
        Ok(())
    }

    /// Margin `qty` units at `price` require, in the account currency `home`.
    /// `quote_to_home` converts one unit of the quote currency into `home` when neither
    /// side of the pair is `home` (e.g. GBP_JPY in a USD account: the JPY → USD rate);
    /// `None` then when it is not given. Checked arithmetic: `None` on overflow or a
    /// zero price.
    #[must_use]
    pub fn required_margin(
        &self,
        qty: Decimal,
        price: Decimal,
        home: &str,
        quote_to_home: Option<Decimal>,
    ) -> Option<Decimal> {
        let quote_margin = qty
            .abs()
            .checked_mul(price)?
            .checked_mul(self.margin_rate)?;
        if self.id.quote.eq_ignore_ascii_case(home) {
            Some(quote_margin)
        } else if self.id.base.eq_ignore_ascii_case(home) {
            quote_margin.checked_div(price)
        } else {
            quote_margin.checked_mul(quote_to_home?)
        }
    }

    /// Refuses an order whose required margin exceeds `available`.
    ///
    /// # Errors
    /// [`OandaError::PreTrade`] with rule `margin` and reason `InsufficientFunds`.
    pub fn check_margin(
        &self,
        required: Decimal,
        available: Decimal,
        home: &str,
    ) -> Result<(), OandaError> {
        if required > available {
            return Err(OandaError::PreTrade {
                rule: "margin",
                reason: RejectReason::InsufficientFunds,
                message: format!(
                    "{} requires {} {home} of margin, {available} {home} available",
                    self.name,
                    required.round_dp(4)
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn rules(name: &str, dp: u32, rate: Decimal) -> InstrumentRules {
        InstrumentRules::from_venue(&OandaInstrument {
            name: name.into(),
            display_precision: dp,
            trade_units_precision: 0,
            minimum_trade_size: dec!(1),
            maximum_order_units: dec!(100000000),
            margin_rate: rate,
            ..OandaInstrument::default()
        })
        .unwrap()
    }

    #[test]
    fn filters_refuse_with_the_rule_named() {
        let r = rules("EUR_USD", 5, dec!(0.0333));
        r.check(dec!(100), Some(dec!(1.10001))).unwrap();
        r.check(dec!(100.000), Some(dec!(1.10000000))).unwrap();
        for (qty, price, rule) in [
            (dec!(100.5), None, "trade_units_precision"),
            (dec!(0), None, "units"),
            (dec!(200000000), None, "maximum_order_units"),
            (dec!(100), Some(dec!(1.100001)), "display_precision"),
        ] {
            match r.check(qty, price) {
                Err(OandaError::PreTrade {
                    rule: got, reason, ..
                }) => {
                    assert_eq!(got, rule);
                    assert_eq!(reason, RejectReason::Filter);
                }
                other => panic!("{qty} {price:?}: {other:?}"),
            }
        }
        let info = r.info();
        assert_eq!(info.tick_size, dec!(0.00001));
        assert_eq!(info.lot_size, dec!(1));
    }

    #[test]
    fn margin_is_converted_to_the_account_currency() {
        // EUR_USD in USD: 10 000 × 1.1 × 0.0333 = 366.3 USD.
        let eu = rules("EUR_USD", 5, dec!(0.0333));
        assert_eq!(
            eu.required_margin(dec!(10000), dec!(1.1), "USD", None),
            Some(dec!(366.3))
        );
        // USD_JPY in USD: 10 000 × 150 × 0.04 JPY = 60 000 JPY = 400 USD.
        let uj = rules("USD_JPY", 3, dec!(0.04));
        assert_eq!(
            uj.required_margin(dec!(-10000), dec!(150), "USD", None),
            Some(dec!(400))
        );
        // GBP_JPY in USD needs the JPY → USD factor.
        let gj = rules("GBP_JPY", 3, dec!(0.05));
        assert_eq!(gj.required_margin(dec!(1), dec!(190), "USD", None), None);
        assert_eq!(
            gj.required_margin(dec!(1000), dec!(190), "USD", Some(dec!(0.0066))),
            Some(dec!(62.7))
        );
        assert!(eu.check_margin(dec!(366.3), dec!(366.3), "USD").is_ok());
        match eu.check_margin(dec!(366.3), dec!(100), "USD") {
            Err(OandaError::PreTrade { rule, reason, .. }) => {
                assert_eq!(rule, "margin");
                assert_eq!(reason, RejectReason::InsufficientFunds);
            }
            other => panic!("{other:?}"),
        }
    }
}
