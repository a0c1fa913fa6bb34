//! A new-order request in the engine's terms, and the instrument rules it must pass.
//!
//! Protocols parse their own wire parameters (and reject malformed ones with their own
//! errors) into a [`NewOrder`]; from there on every venue shares one definition of what
//! an order is and one implementation of the price/quantity/notional rules, so a test
//! endpoint (Binance's `POST /api/v3/order/test`) can reject exactly what the real one
//! rejects without touching the engine state.

use rust_decimal::Decimal;

use super::reject::{FilterKind, Reject};
use super::types::{SimOrderType, SimSide, SimSymbol, SimTimeInForce};

/// The execution-relevant part of an order request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderKind {
    /// A priced order.
    Limit {
        /// Limit price.
        price: Decimal,
        /// Base quantity.
        qty: Decimal,
        /// Time in force.
        tif: SimTimeInForce,
    },
    /// An unpriced order with a base quantity or a quote amount (exactly one, which the
    /// protocol enforces; neither is answered with [`Reject::MissingQuantity`]).
    Market {
        /// Base quantity.
        qty: Option<Decimal>,
        /// Quote amount to spend (BUY) or receive (SELL).
        quote_qty: Option<Decimal>,
    },
}

/// A syntactically valid order request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    /// Instrument name as sent (checked against the engine's instruments).
    pub symbol: String,
    /// Side.
    pub side: SimSide,
    /// Type and its parameters.
    pub kind: OrderKind,
    /// Client order id, if sent (the engine generates one otherwise).
    pub client_order_id: Option<String>,
}

impl NewOrder {
    /// The order's type.
    #[must_use]
    pub fn order_type(&self) -> SimOrderType {
        match self.kind {
            OrderKind::Limit { .. } => SimOrderType::Limit,
            OrderKind::Market { .. } => SimOrderType::Market,
        }
    }

    /// Applies the price, lot-size and minimum-notional rules, in that order (the order
    /// of the filters in Binance's `exchangeInfo`). `reference_price` prices MARKET
    /// orders.
    ///
    /// # Errors
    /// [`Reject::Filter`] naming the first rule broken, or [`Reject::MissingQuantity`]
    /// for a MARKET order without any quantity.
    pub fn check_filters(&self, s: &SimSymbol, reference_price: Decimal) -> Result<(), Reject> {
        let lot_ok = |q: Decimal| {
            q >= s.min_qty && q <= s.max_qty && ((q - s.min_qty) % s.step_size).is_zero()
        };
        let fail = |f| Err(Reject::Filter(f));
        match &self.kind {
            OrderKind::Limit { price, qty, .. } => {
                let min_price = s.tick_size;
                if *price < min_price
                    || *price > s.max_price()
                    || !((*price - min_price) % s.tick_size).is_zero()
                {
                    return fail(FilterKind::Price);
                }
                if !lot_ok(*qty) {
                    return fail(FilterKind::LotSize);
                }
                if *price * *qty < s.min_notional {
                    return fail(FilterKind::MinNotional);
                }
            }
            OrderKind::Market { qty: Some(qty), .. } => {
                if !lot_ok(*qty) {
                    return fail(FilterKind::LotSize);
                }
                if reference_price * *qty < s.min_notional {
                    return fail(FilterKind::MinNotional);
                }
            }
            OrderKind::Market {
                quote_qty: Some(quote),
                ..
            } => {
                if *quote < s.min_notional {
                    return fail(FilterKind::MinNotional);
                }
            }
            OrderKind::Market { .. } => return Err(Reject::MissingQuantity),
        }
        Ok(())
    }
}

/// How a request names an existing order.
#[derive(Debug, Clone, Default)]
pub struct OrderSel {
    /// Engine order id (wins when both are given).
    pub order_id: Option<u64>,
    /// Client order id.
    pub client_order_id: Option<String>,
}
