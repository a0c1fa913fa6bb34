//! Parsing and validating `POST /api/v3/order` parameters.
//!
//! Parsing (this module) only needs the request and produces the engine's neutral
//! [`NewOrder`]; the exchange filters need the symbol definition and are the engine's
//! rules, applied by [`OrderRequest::check_filters`] with their failures named as
//! Binance names them. Both run for `POST /api/v3/order/test` too, which is why they are
//! separate from execution: the test endpoint must reject exactly what the real one
//! rejects, and accept exactly what it accepts, without touching the engine.

use rust_decimal::Decimal;

use super::config::SimSymbol;
use super::error::ApiError;
use super::params::Params;
use crate::engine::{NewOrder, OrderKind, SimOrderType, SimSide, SimTimeInForce};

/// What the client asked for in `newOrderRespType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RespType {
    /// Ids only.
    Ack,
    /// Ids and final state.
    Result,
    /// State and fills (the default for LIMIT and MARKET).
    Full,
}

/// A parsed, syntactically valid order request: the engine's order plus how the
/// client wants the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OrderRequest {
    /// The order, in engine terms.
    pub(crate) order: NewOrder,
    /// Response shape.
    pub(crate) resp_type: RespType,
}

const MAX_DECIMALS: u32 = 8;

fn precise(name: &str, d: Decimal) -> Result<Decimal, ApiError> {
    if d.normalize().scale() > MAX_DECIMALS {
        return Err(ApiError::bad_precision(name));
    }
    Ok(d)
}

/// The venue's pattern for client order ids: `^[\.A-Z\:/a-z0-9_-]{1,36}$`.
#[must_use]
pub(crate) fn valid_client_order_id(s: &str) -> bool {
    (1..=36).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'/' | b'_' | b'-'))
}

/// Checks `newClientOrderId`-like parameters.
///
/// # Errors
/// -1100 when the value is outside the venue's pattern.
pub(crate) fn client_order_id_param(p: &Params, name: &str) -> Result<Option<String>, ApiError> {
    match p.get(name) {
        None => Ok(None),
        Some(v) if valid_client_order_id(v) => Ok(Some(v.to_owned())),
        Some(_) => Err(ApiError::illegal_chars(name, r"^[\.A-Z\:/a-z0-9_-]{1,36}$")),
    }
}

impl OrderRequest {
    /// Parses the order parameters with the venue's precedence of errors: mandatory
    /// parameters first, then enum values, then per-type requirements.
    ///
    /// # Errors
    /// -1102 (missing), -1100 (malformed), -1115/-1116/-1117 (bad enums), -1106
    /// (parameter not allowed for this type), -1111 (too many decimals).
    pub(crate) fn parse(p: &Params) -> Result<Self, ApiError> {
        let symbol = p.required("symbol")?.to_owned();
        let side = match p.required("side")? {
            "BUY" => SimSide::Buy,
            "SELL" => SimSide::Sell,
            _ => return Err(ApiError::invalid_side()),
        };
        let order_type = match p.required("type")? {
            "LIMIT" => SimOrderType::Limit,
            "MARKET" => SimOrderType::Market,
            _ => return Err(ApiError::invalid_order_type()),
        };
        for unsupported in ["stopPrice", "trailingDelta", "icebergQty"] {
            if p.get(unsupported).is_some() {
                return Err(ApiError::not_required(unsupported));
            }
        }
        if let Some(mode) = p.get("selfTradePreventionMode")
            && !matches!(
                mode,
                "NONE" | "EXPIRE_TAKER" | "EXPIRE_MAKER" | "EXPIRE_BOTH"
            )
        {
            return Err(ApiError::illegal_chars(
                "selfTradePreventionMode",
                "^(NONE|EXPIRE_TAKER|EXPIRE_MAKER|EXPIRE_BOTH)$",
            ));
        }
        let client_order_id = client_order_id_param(p, "newClientOrderId")?;
        let resp_type = match p.get("newOrderRespType") {
            None | Some("FULL") => RespType::Full,
            Some("RESULT") => RespType::Result,
            Some("ACK") => RespType::Ack,
            Some(_) => {
                return Err(ApiError::illegal_chars(
                    "newOrderRespType",
                    "^(ACK|RESULT|FULL)$",
                ));
            }
        };
        let kind = match order_type {
            SimOrderType::Limit => {
                let tif = match p.required("timeInForce")? {
                    "GTC" => SimTimeInForce::Gtc,
                    "IOC" => SimTimeInForce::Ioc,
                    "FOK" => SimTimeInForce::Fok,
                    _ => return Err(ApiError::invalid_tif()),
                };
                let qty = precise("quantity", p.required_decimal("quantity")?)?;
                let price = precise("price", p.required_decimal("price")?)?;
                if p.get("quoteOrderQty").is_some() {
                    return Err(ApiError::not_required("quoteOrderQty"));
                }
                OrderKind::Limit { price, qty, tif }
            }
            SimOrderType::Market => {
                if p.get("price").is_some() {
                    return Err(ApiError::not_required("price"));
                }
                if p.get("timeInForce").is_some() {
                    return Err(ApiError::not_required("timeInForce"));
                }
                let qty = p.decimal("quantity")?;
                let quote_qty = p.decimal("quoteOrderQty")?;
                match (qty, quote_qty) {
                    (None, None) => {
                        return Err(ApiError::bad_request(
                            -1102,
                            "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
                        ));
                    }
                    (Some(_), Some(_)) => return Err(ApiError::not_required("quoteOrderQty")),
                    _ => {}
                }
                let qty = qty.map(|q| precise("quantity", q)).transpose()?;
                let quote_qty = quote_qty.map(|q| precise("quoteOrderQty", q)).transpose()?;
                OrderKind::Market { qty, quote_qty }
            }
        };
        Ok(Self {
            order: NewOrder {
                symbol,
                side,
                kind,
                client_order_id,
            },
            resp_type,
        })
    }

    /// Applies PRICE_FILTER, LOT_SIZE and MIN_NOTIONAL, in that order (the order of the
    /// filters in `exchangeInfo`). `reference_price` prices MARKET orders
    /// (`avgPriceMins` 0 = last price).
    ///
    /// # Errors
    /// -1013 `Filter failure: <FILTER>`.
    pub(crate) fn check_filters(
        &self,
        s: &SimSymbol,
        reference_price: Decimal,
    ) -> Result<(), ApiError> {
        Ok(self.order.check_filters(s, reference_price)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binanceus::SimConfig;

    fn parse(q: &str) -> Result<OrderRequest, ApiError> {
        OrderRequest::parse(&Params::parse(q, "").expect("params"))
    }

    #[test]
    fn limit_requires_tif_qty_price() {
        assert_eq!(
            parse("symbol=BTCUSD&side=BUY&type=LIMIT")
                .expect_err("tif")
                .code,
            -1102
        );
        let e =
            parse("symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1").expect_err("p");
        assert!(e.msg.contains("'price'"), "{}", e.msg);
        assert_eq!(
            parse("symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=DAY")
                .expect_err("tif")
                .code,
            -1115
        );
        assert_eq!(
            parse("symbol=BTCUSD&side=UP&type=LIMIT")
                .expect_err("side")
                .code,
            -1117
        );
        assert_eq!(
            parse("symbol=BTCUSD&side=BUY&type=STOP_LOSS")
                .expect_err("type")
                .code,
            -1116
        );
        let ok = parse(
            "symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price=50000.00",
        )
        .expect("valid");
        assert_eq!(ok.resp_type, RespType::Full);
    }

    #[test]
    fn filters_name_the_failing_filter() {
        let s = SimConfig::default().symbols[0].clone();
        let f = |q: &str| {
            parse(q)
                .expect("parse")
                .check_filters(&s, Decimal::from(60_000))
        };
        let base = "symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC";
        assert_eq!(
            f(&format!("{base}&quantity=0.001&price=50000.001"))
                .expect_err("tick")
                .msg,
            "Filter failure: PRICE_FILTER"
        );
        assert_eq!(
            f(&format!("{base}&quantity=0.000015&price=50000"))
                .expect_err("step")
                .msg,
            "Filter failure: LOT_SIZE"
        );
        assert_eq!(
            f(&format!("{base}&quantity=0.00001&price=50000"))
                .expect_err("notional")
                .msg,
            "Filter failure: MIN_NOTIONAL"
        );
        assert_eq!(f(&format!("{base}&quantity=0.001&price=50000")), Ok(()));
        assert_eq!(
            parse(&format!("{base}&quantity=0.000000001&price=1"))
                .expect_err("precision")
                .code,
            -1111
        );
    }

    #[test]
    fn market_takes_exactly_one_quantity() {
        assert_eq!(
            parse("symbol=BTCUSD&side=BUY&type=MARKET")
                .expect_err("none")
                .code,
            -1102
        );
        assert_eq!(
            parse("symbol=BTCUSD&side=BUY&type=MARKET&quantity=1&quoteOrderQty=1")
                .expect_err("both")
                .code,
            -1106
        );
        assert_eq!(
            parse("symbol=BTCUSD&side=BUY&type=MARKET&quantity=1&price=1")
                .expect_err("price")
                .code,
            -1106
        );
        assert!(parse("symbol=BTCUSD&side=BUY&type=MARKET&quoteOrderQty=100").is_ok());
    }

    #[test]
    fn client_order_ids_follow_the_venue_pattern() {
        assert!(valid_client_order_id("abc-123_x:y/z.w"));
        assert!(!valid_client_order_id(""));
        assert!(!valid_client_order_id("has space"));
        assert!(!valid_client_order_id(&"x".repeat(37)));
    }
}
