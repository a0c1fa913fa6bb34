//! The `{"order": OrderRequest}` body of `POST …/orders` (reference §3.8).
//!
//! Units are signed decimal strings (positive buys, negative sells); prices are decimal
//! strings; `clientExtensions.id` carries gekko's deterministic client order id so the
//! order can be found again through `@<clientID>` whatever happens to the answer.

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

/// Order types gekko sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OandaOrderType {
    /// `MARKET`: FOK or IOC only.
    Market,
    /// `LIMIT`: GTC, GTD, GFD, FOK or IOC.
    Limit,
}

/// v20 time in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OandaTimeInForce {
    /// Good till cancelled.
    Gtc,
    /// Good till the date in [`OrderBody::gtd_time`].
    Gtd,
    /// Good for the trading day.
    Gfd,
    /// Fill or kill (the default for market orders).
    Fok,
    /// Immediate or cancel.
    Ioc,
}

impl OandaTimeInForce {
    /// The wire spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            OandaTimeInForce::Gtc => "GTC",
            OandaTimeInForce::Gtd => "GTD",
            OandaTimeInForce::Gfd => "GFD",
            OandaTimeInForce::Fok => "FOK",
            OandaTimeInForce::Ioc => "IOC",
        }
    }

    /// Whether the venue accepts it on `kind` (market orders: FOK and IOC only).
    #[must_use]
    pub const fn allowed_for(self, kind: OandaOrderType) -> bool {
        match kind {
            OandaOrderType::Market => matches!(self, OandaTimeInForce::Fok | OandaTimeInForce::Ioc),
            OandaOrderType::Limit => true,
        }
    }
}

/// One order to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBody {
    /// Market or limit.
    pub kind: OandaOrderType,
    /// `EUR_USD`.
    pub instrument: String,
    /// Signed units: positive buys, negative sells.
    pub units: Decimal,
    /// Limit price (limit orders).
    pub price: Option<Decimal>,
    /// Time in force.
    pub time_in_force: OandaTimeInForce,
    /// Expiry of a GTD order, a DateTime string in the requested format.
    pub gtd_time: Option<String>,
    /// gekko's client order id (`clientExtensions.id`).
    pub client_id: String,
}

impl OrderBody {
    /// The JSON body. `positionFill` is `DEFAULT` (net positions: an opposite order
    /// reduces first).
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        let kind = match self.kind {
            OandaOrderType::Market => "MARKET",
            OandaOrderType::Limit => "LIMIT",
        };
        o.insert("type".into(), kind.into());
        o.insert("instrument".into(), self.instrument.clone().into());
        o.insert("units".into(), self.units.normalize().to_string().into());
        if let Some(p) = self.price {
            o.insert("price".into(), p.normalize().to_string().into());
        }
        o.insert("timeInForce".into(), self.time_in_force.as_str().into());
        if let Some(t) = &self.gtd_time {
            o.insert("gtdTime".into(), t.clone().into());
        }
        o.insert("positionFill".into(), "DEFAULT".into());
        if self.kind == OandaOrderType::Limit {
            o.insert("triggerCondition".into(), "DEFAULT".into());
        }
        o.insert("clientExtensions".into(), json!({ "id": self.client_id }));
        json!({ "order": Value::Object(o) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_carry_signed_decimal_strings_and_the_client_id() {
        let b = OrderBody {
            kind: OandaOrderType::Limit,
            instrument: "EUR_USD".into(),
            units: "-100.0".parse().unwrap(),
            price: Some("1.20000".parse().unwrap()),
            time_in_force: OandaTimeInForce::Gtd,
            gtd_time: Some("2030-01-01T00:00:00.000000000Z".into()),
            client_id: "gk1".into(),
        };
        let v = b.to_json();
        assert_eq!(v["order"]["type"], "LIMIT");
        assert_eq!(v["order"]["units"], "-100");
        assert_eq!(v["order"]["price"], "1.2");
        assert_eq!(v["order"]["timeInForce"], "GTD");
        assert_eq!(v["order"]["clientExtensions"]["id"], "gk1");
        let m = OrderBody {
            kind: OandaOrderType::Market,
            price: None,
            time_in_force: OandaTimeInForce::Fok,
            gtd_time: None,
            ..b
        }
        .to_json();
        assert_eq!(m["order"]["type"], "MARKET");
        assert!(m["order"].get("price").is_none());
        assert!(m["order"].get("triggerCondition").is_none());
        assert!(!OandaTimeInForce::Gtc.allowed_for(OandaOrderType::Market));
        assert!(OandaTimeInForce::Ioc.allowed_for(OandaOrderType::Market));
    }
}
