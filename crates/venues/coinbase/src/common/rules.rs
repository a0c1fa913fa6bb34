//! Coinbase's trading rules for one product, and the pre-trade checks gekko runs before a
//! create-order request leaves: an order the venue would refuse for a rule it publishes is
//! refused here, with the numbers, and nothing is sent (no rate budget spent, no reject
//! counted at the venue, no ambiguity if the connection fails).
//!
//! The rules come from the product (`GET /products/{id}`): `base_increment`,
//! `quote_increment`, `base_min_size`, `base_max_size`, `quote_min_size`,
//! `quote_max_size`, `status` and the trading flags. A zero bound is "unchecked", as the
//! venue sends `""` for bounds that do not apply.

use gekko_core::{OrderRequest, OrderType};
use gekko_venue::InstrumentInfo;
use rust_decimal::Decimal;

use super::symbol::instrument;
use crate::error::CoinbaseError;
use crate::http::models::Product;

/// What gekko checks before sending an order for one product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRules {
    /// `BTC-USD`.
    pub product_id: String,
    /// Quantity increment (0: unchecked).
    pub base_increment: Decimal,
    /// Price increment (0: unchecked).
    pub quote_increment: Decimal,
    /// Smallest base size (0: unchecked).
    pub base_min_size: Decimal,
    /// Largest base size (0: unchecked).
    pub base_max_size: Decimal,
    /// Smallest order value (0: unchecked).
    pub quote_min_size: Decimal,
    /// Largest order value (0: unchecked).
    pub quote_max_size: Decimal,
    /// `online` when trading; anything else refuses orders.
    pub status: String,
    /// Orders refused (trading disabled, product disabled).
    pub trading_disabled: bool,
    /// Only cancels accepted.
    pub cancel_only: bool,
    /// Market orders refused.
    pub limit_only: bool,
    /// Only post-only limit orders accepted (gekko sends none).
    pub post_only: bool,
}

impl From<&Product> for ProductRules {
    fn from(p: &Product) -> Self {
        Self {
            product_id: p.product_id.clone(),
            base_increment: p.base_increment,
            quote_increment: p.quote_increment,
            base_min_size: p.base_min_size,
            base_max_size: p.base_max_size,
            quote_min_size: p.quote_min_size,
            quote_max_size: p.quote_max_size,
            status: p.status.clone(),
            trading_disabled: p.trading_disabled || p.is_disabled,
            cancel_only: p.cancel_only,
            limit_only: p.limit_only,
            post_only: p.post_only,
        }
    }
}

impl ProductRules {
    /// Whether the product takes new orders at all.
    #[must_use]
    pub fn trading(&self) -> bool {
        self.status_ok() && !self.trading_disabled && !self.cancel_only
    }

    fn status_ok(&self) -> bool {
        self.status.is_empty() || self.status.eq_ignore_ascii_case("online")
    }

    /// The contract's [`InstrumentInfo`]; `None` for a product id that is not a spot
    /// `BASE-QUOTE` pair.
    #[must_use]
    pub fn instrument_info(&self) -> Option<InstrumentInfo> {
        Some(InstrumentInfo {
            id: instrument(&self.product_id)?,
            venue_symbol: self.product_id.clone(),
            tick_size: self.quote_increment,
            lot_size: self.base_increment,
            min_qty: self.base_min_size,
            max_qty: self.base_max_size,
            min_notional: self.quote_min_size,
            trading: self.trading(),
        })
    }

    /// Checks `req` against the rules: trading flags, quantity on `base_increment` and
    /// within the base bounds, limit price present, positive and on `quote_increment`,
    /// and (for limit orders, whose value is known) `price * qty` within the quote
    /// bounds. A market order's value is unknown before it executes, so only the venue
    /// checks its quote bounds.
    ///
    /// # Errors
    /// [`CoinbaseError::PreTrade`] naming the first rule broken, with the numbers.
    pub fn check(&self, req: &OrderRequest) -> Result<(), CoinbaseError> {
        let refuse =
            |rule: &'static str, message: String| Err(CoinbaseError::PreTrade { rule, message });
        let pid = &self.product_id;
        if self.trading_disabled {
            return refuse("trading_disabled", format!("{pid}: trading is disabled"));
        }
        if !self.status_ok() {
            return refuse(
                "status",
                format!("{pid}: status is {:?}, not online", self.status),
            );
        }
        if self.cancel_only {
            return refuse("cancel_only", format!("{pid}: only cancels are accepted"));
        }
        if self.post_only {
            return refuse(
                "post_only",
                format!("{pid}: only post-only orders are accepted, and gekko sends none"),
            );
        }
        if self.limit_only && req.order_type == OrderType::Market {
            return refuse(
                "limit_only",
                format!("{pid}: market orders are not accepted"),
            );
        }
        let qty = req.qty;
        if qty <= Decimal::ZERO {
            return refuse(
                "base_size",
                format!("{pid}: quantity {qty} must be positive"),
            );
        }
        if !on_increment(qty, self.base_increment) {
            return refuse(
                "base_increment",
                format!(
                    "{pid}: quantity {qty} is not a multiple of {}",
                    self.base_increment
                ),
            );
        }
        if self.base_min_size > Decimal::ZERO && qty < self.base_min_size {
            return refuse(
                "base_min_size",
                format!(
                    "{pid}: quantity {qty} is below the minimum {}",
                    self.base_min_size
                ),
            );
        }
        if self.base_max_size > Decimal::ZERO && qty > self.base_max_size {
            return refuse(
                "base_max_size",
                format!(
                    "{pid}: quantity {qty} is above the maximum {}",
                    self.base_max_size
                ),
            );
        }
        if req.order_type == OrderType::Market {
            return Ok(());
        }
        let Some(price) = req.price else {
            return refuse("limit_price", format!("{pid}: a limit order needs a price"));
        };
        if price <= Decimal::ZERO {
            return refuse(
                "limit_price",
                format!("{pid}: price {price} must be positive"),
            );
        }
        if !on_increment(price, self.quote_increment) {
            return refuse(
                "quote_increment",
                format!(
                    "{pid}: price {price} is not a multiple of {}",
                    self.quote_increment
                ),
            );
        }
        let Some(notional) = price.checked_mul(qty) else {
            return refuse(
                "quote_max_size",
                format!("{pid}: price * quantity overflows"),
            );
        };
        if self.quote_min_size > Decimal::ZERO && notional < self.quote_min_size {
            return refuse(
                "quote_min_size",
                format!(
                    "{pid}: value {notional} is below the minimum {}",
                    self.quote_min_size
                ),
            );
        }
        if self.quote_max_size > Decimal::ZERO && notional > self.quote_max_size {
            return refuse(
                "quote_max_size",
                format!(
                    "{pid}: value {notional} is above the maximum {}",
                    self.quote_max_size
                ),
            );
        }
        Ok(())
    }
}

/// `v` is a whole multiple of `inc` (always true for a zero increment).
fn on_increment(v: Decimal, inc: Decimal) -> bool {
    inc <= Decimal::ZERO || v.checked_rem(inc).is_some_and(|r| r.is_zero())
}

#[cfg(test)]
mod tests {
    use gekko_core::{ClientOrderId, InstrumentId, Side, TimeInForce, VenueId};

    use super::*;

    fn rules() -> ProductRules {
        ProductRules {
            product_id: "BTC-USD".into(),
            base_increment: Decimal::new(1, 8),
            quote_increment: Decimal::new(1, 2),
            base_min_size: Decimal::new(1, 6),
            base_max_size: Decimal::new(3_400, 0),
            quote_min_size: Decimal::ONE,
            quote_max_size: Decimal::new(1_000_000, 0),
            status: "online".into(),
            trading_disabled: false,
            cancel_only: false,
            limit_only: false,
            post_only: false,
        }
    }

    fn limit(qty: Decimal, price: Decimal) -> OrderRequest {
        OrderRequest {
            client_order_id: ClientOrderId::parse("gk1").unwrap(),
            instrument: InstrumentId::new(VenueId::Coinbase, "BTC", "USD"),
            side: Side::Buy,
            order_type: OrderType::Limit,
            qty,
            price: Some(price),
            time_in_force: Some(TimeInForce::Gtc),
        }
    }

    fn rule_of(r: &ProductRules, req: &OrderRequest) -> Option<&'static str> {
        match r.check(req) {
            Ok(()) => None,
            Err(CoinbaseError::PreTrade { rule, .. }) => Some(rule),
            Err(e) => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn every_rule_is_checked() {
        let r = rules();
        let p = Decimal::new(6_000_000, 2);
        assert_eq!(rule_of(&r, &limit(Decimal::new(1, 3), p)), None);
        assert_eq!(
            rule_of(&r, &limit(Decimal::new(1, 9), p)),
            Some("base_increment")
        );
        assert_eq!(
            rule_of(&r, &limit(Decimal::new(1, 7), p)),
            Some("base_min_size")
        );
        assert_eq!(
            rule_of(&r, &limit(Decimal::new(3_401, 0), p)),
            Some("base_max_size")
        );
        assert_eq!(rule_of(&r, &limit(Decimal::ZERO, p)), Some("base_size"));
        assert_eq!(
            rule_of(&r, &limit(Decimal::new(1, 3), Decimal::new(6_000_001, 3))),
            Some("quote_increment")
        );
        assert_eq!(
            rule_of(&r, &limit(Decimal::new(1, 5), Decimal::new(1_000, 0))),
            Some("quote_min_size")
        );
        assert_eq!(
            rule_of(&r, &limit(Decimal::new(100, 0), p)),
            Some("quote_max_size")
        );
        let mut no_price = limit(Decimal::new(1, 3), p);
        no_price.price = None;
        assert_eq!(rule_of(&r, &no_price), Some("limit_price"));
        let mut market = limit(Decimal::new(1, 3), p);
        market.order_type = OrderType::Market;
        market.price = None;
        assert_eq!(rule_of(&r, &market), None);
        type Set = fn(&mut ProductRules);
        let flags: [(&str, Set); 5] = [
            ("trading_disabled", |r| r.trading_disabled = true),
            ("status", |r| r.status = "delisted".into()),
            ("cancel_only", |r| r.cancel_only = true),
            ("post_only", |r| r.post_only = true),
            ("limit_only", |r| r.limit_only = true),
        ];
        for (rule, set) in flags {
            let mut r = rules();
            set(&mut r);
            assert_eq!(rule_of(&r, &market), Some(rule));
        }
        let mut r = rules();
        r.limit_only = true;
        assert_eq!(rule_of(&r, &limit(Decimal::new(1, 3), p)), None);
    }

    #[test]
    fn zero_bounds_are_unchecked_and_info_maps() {
        let mut r = rules();
        r.base_increment = Decimal::ZERO;
        r.base_min_size = Decimal::ZERO;
        r.quote_min_size = Decimal::ZERO;
        assert_eq!(
            rule_of(&r, &limit(Decimal::new(1, 12), Decimal::new(1, 2))),
            None
        );
        let info = rules().instrument_info().unwrap();
        assert_eq!(info.venue_symbol, "BTC-USD");
        assert_eq!(info.tick_size, Decimal::new(1, 2));
        assert_eq!(info.lot_size, Decimal::new(1, 8));
        assert!(info.trading);
        let mut r = rules();
        r.cancel_only = true;
        assert!(!r.instrument_info().unwrap().trading);
    }
}
