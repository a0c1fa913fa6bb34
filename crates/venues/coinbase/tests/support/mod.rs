//! Shared set-up of the Coinbase adapter tests: a simulator over TLS with one registered
//! CDP key, and an adapter configured to trust the simulator's certificate.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::sync::Arc;
use std::time::Duration;

use gekko_coinbase::{CdpKey, CoinbaseConfig, CoinbaseHttpClient, CoinbaseVenue, JwtAlgorithm};
use gekko_core::{
    ClientOrderId, InstrumentId, OrderRequest, OrderType, Side, TimeInForce, VenueId,
};
use gekko_sim::coinbase::{SimApiKey, SimCoinbase, SimConfig, SimHandle};
use rust_decimal::Decimal;

/// The key name registered with the simulator.
pub(crate) const KEY_NAME: &str = "organizations/gekko-test/apiKeys/adapter";

/// A simulator and the key it knows.
pub(crate) struct Cb {
    pub(crate) sim: SimHandle,
    pub(crate) key: Arc<CdpKey>,
}

impl Cb {
    /// Starts a simulator (defaults: BTC-USD and ETH-USD, USD 100000 / BTC 2 / ETH 20)
    /// with one ES256 key, after `tweak` adjusted its config.
    pub(crate) async fn start(tweak: impl FnOnce(&mut SimConfig)) -> Self {
        let key = Arc::new(CdpKey::generate(KEY_NAME, JwtAlgorithm::Es256).expect("key"));
        let mut cfg = SimConfig {
            api_keys: vec![SimApiKey {
                name: KEY_NAME.to_owned(),
                public_key_pem: key.public_key_pem(),
            }],
            ..SimConfig::default()
        };
        tweak(&mut cfg);
        let sim = SimCoinbase::start(cfg).await.expect("simulator starts");
        Self { sim, key }
    }

    /// The adapter's config for this simulator: its URLs, its certificate, a 1 s request
    /// timeout (shorter than the held-back answer of `Fault::OrderTimeout`).
    pub(crate) fn config(&self) -> CoinbaseConfig {
        let mut c = CoinbaseConfig::simulator(
            &self.sim.rest_url,
            &self.sim.ws_url,
            &self.sim.ws_user_url,
            Arc::clone(&self.key),
            self.sim.cert_pem.clone(),
        );
        c.request_timeout = Duration::from_secs(1);
        c
    }

    /// A raw client on [`Self::config`] after `tweak`.
    pub(crate) fn client(&self, tweak: impl FnOnce(&mut CoinbaseConfig)) -> CoinbaseHttpClient {
        let mut c = self.config();
        tweak(&mut c);
        CoinbaseHttpClient::new(&c).expect("client")
    }

    /// An adapter on [`Self::config`] after `tweak`.
    pub(crate) fn venue(&self, tweak: impl FnOnce(&mut CoinbaseConfig)) -> CoinbaseVenue {
        let mut c = self.config();
        tweak(&mut c);
        CoinbaseVenue::new(c).expect("venue")
    }

    /// How many orders the simulator holds under `client_order_id`.
    pub(crate) fn orders_named(&self, client_order_id: &ClientOrderId) -> usize {
        self.sim
            .orders()
            .iter()
            .filter(|o| o.client_order_id == client_order_id.as_str())
            .count()
    }
}

/// BTC-USD on Coinbase.
pub(crate) fn btc() -> InstrumentId {
    InstrumentId::new(VenueId::Coinbase, "BTC", "USD")
}

/// A fresh client order id.
pub(crate) fn coid(tag: &str) -> ClientOrderId {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ClientOrderId::derive(&format!("cb-test-{tag}"), &btc(), n)
}

/// A GTC limit buy of `qty` BTC at `price`.
pub(crate) fn limit_buy(id: ClientOrderId, qty: Decimal, price: Decimal) -> OrderRequest {
    OrderRequest {
        client_order_id: id,
        instrument: btc(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        qty,
        price: Some(price),
        time_in_force: Some(TimeInForce::Gtc),
    }
}

/// A market order of `qty` BTC.
pub(crate) fn market(id: ClientOrderId, side: Side, qty: Decimal) -> OrderRequest {
    OrderRequest {
        client_order_id: id,
        instrument: btc(),
        side,
        order_type: OrderType::Market,
        qty,
        price: None,
        time_in_force: None,
    }
}
