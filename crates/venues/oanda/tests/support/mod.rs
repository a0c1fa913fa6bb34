//! Shared set-up of the OANDA adapter tests: the v20 simulator on loopback (plain HTTP,
//! as the official SDK's `ssl=False`) with its paper token and account, and an adapter
//! pointed at it.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::time::Duration;

use gekko_core::{
    ClientOrderId, InstrumentId, OrderRequest, OrderType, Side, TimeInForce, VenueId,
};
use gekko_oanda::{OandaConfig, OandaHttpClient, OandaVenue};
use gekko_sim::oanda::{SimConfig, SimHandle, SimOanda};
use rust_decimal::Decimal;
use secrecy::SecretString;

/// A running simulator.
pub(crate) struct Oa {
    pub(crate) sim: SimHandle,
}

impl Oa {
    /// Starts a simulator (defaults: EUR_USD, USD_JPY, GBP_USD, XAU_USD; a USD account)
    /// after `tweak` adjusted its config.
    pub(crate) async fn start(tweak: impl FnOnce(&mut SimConfig)) -> Self {
        let mut cfg = SimConfig::default();
        tweak(&mut cfg);
        let sim = SimOanda::start(cfg).await.expect("simulator starts");
        Self { sim }
    }

    /// The adapter's config for this simulator, with a 1 s request timeout (shorter than
    /// the held-back answer of `Fault::OrderTimeout`).
    pub(crate) fn config(&self) -> OandaConfig {
        let mut c = OandaConfig::simulator(
            &self.sim.rest_url,
            &self.sim.stream_url,
            SecretString::from(self.sim.token.clone()),
            &self.sim.account_id,
        );
        c.request_timeout = Duration::from_secs(1);
        c
    }

    /// A raw client on [`Self::config`] after `tweak`.
    pub(crate) fn client(&self, tweak: impl FnOnce(&mut OandaConfig)) -> OandaHttpClient {
        let mut c = self.config();
        tweak(&mut c);
        OandaHttpClient::new(&c).expect("client")
    }

    /// An adapter on [`Self::config`] after `tweak`.
    pub(crate) fn venue(&self, tweak: impl FnOnce(&mut OandaConfig)) -> OandaVenue {
        let mut c = self.config();
        tweak(&mut c);
        OandaVenue::new(c).expect("venue")
    }

    /// `(bid, ask)` of an instrument now.
    pub(crate) fn touch(&self, name: &str) -> (Decimal, Decimal) {
        self.sim.touch(name).expect("a known instrument")
    }

    /// How many orders of the simulator carry `client_id`.
    pub(crate) fn orders_named(&self, client_id: &str) -> usize {
        self.sim
            .orders()
            .iter()
            .filter(|o| o["clientExtensions"]["id"] == client_id)
            .count()
    }
}

/// EUR-USD on OANDA.
pub(crate) fn eur_usd() -> InstrumentId {
    InstrumentId::new(VenueId::Oanda, "EUR", "USD")
}

/// USD-JPY on OANDA.
pub(crate) fn usd_jpy() -> InstrumentId {
    InstrumentId::new(VenueId::Oanda, "USD", "JPY")
}

/// A fresh client order id.
pub(crate) fn id(tag: &str) -> ClientOrderId {
    gekko_venue::conformance::fresh_id(tag)
}

/// A GTC limit order.
pub(crate) fn limit(
    id: ClientOrderId,
    instrument: InstrumentId,
    side: Side,
    qty: Decimal,
    price: Decimal,
) -> OrderRequest {
    OrderRequest {
        client_order_id: id,
        instrument,
        side,
        order_type: OrderType::Limit,
        qty,
        price: Some(price),
        time_in_force: Some(TimeInForce::Gtc),
    }
}

/// A FOK market order.
pub(crate) fn market(
    id: ClientOrderId,
    instrument: InstrumentId,
    side: Side,
    qty: Decimal,
) -> OrderRequest {
    OrderRequest {
        client_order_id: id,
        instrument,
        side,
        order_type: OrderType::Market,
        qty,
        price: None,
        time_in_force: None,
    }
}
