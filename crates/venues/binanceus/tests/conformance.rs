//! The venue conformance suite (`gekko_venue::conformance`) against the Binance.US
//! adapter and its protocol-faithful simulator, over real sockets.
//!
//! Each scenario gets its own simulator. The controls map onto simulator faults: a lost
//! submit answer is `Fault::OrderTimeout` (the order executes, its response is held back
//! past the client's request timeout), dropped streams are `Fault::DropWebSockets`, a
//! book gap is `Fault::DepthGap`, and fills come from trading through the resting price.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gekko_binanceus::{BinanceUsAuth, BinanceUsConfig, BinanceUsVenue};
use gekko_core::{
    ClientOrderId, InstrumentId, OrderRequest, OrderType, Side, TimeInForce, VenueId,
};
use gekko_sim::binanceus::{Fault, SimBinanceUs, SimConfig, SimHandle};
use gekko_venue::VenueAdapter;
use gekko_venue::conformance::ConformanceTarget;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use secrecy::SecretString;

struct Target {
    sim: SimHandle,
    venue: Arc<BinanceUsVenue>,
}

fn btcusd() -> InstrumentId {
    InstrumentId::new(VenueId::BinanceUs, "BTC", "USD")
}

async fn target() -> Target {
    let sim = SimBinanceUs::start(SimConfig::default())
        .await
        .expect("simulator starts");
    let mut cfg = BinanceUsConfig::simulator(
        &sim.rest_url,
        &sim.ws_url,
        SecretString::from("paper-key"),
        BinanceUsAuth::Hmac(SecretString::from("paper-secret")),
    );
    // Short enough that the held-back answer of Fault::OrderTimeout is a timeout.
    cfg.request_timeout = Duration::from_secs(1);
    let venue = Arc::new(BinanceUsVenue::new(cfg).expect("valid config"));
    venue
        .instruments(&[btcusd()])
        .await
        .expect("exchangeInfo lists BTCUSD");
    Target { sim, venue }
}

#[async_trait]
impl ConformanceTarget for Target {
    fn venue(&self) -> Arc<dyn VenueAdapter> {
        self.venue.clone()
    }

    fn instrument(&self) -> InstrumentId {
        btcusd()
    }

    async fn resting_buy(&self, id: ClientOrderId) -> OrderRequest {
        // Well below the best bid, on the tick: it rests until traded through.
        let (_, bids, _) = self.sim.book("BTCUSD");
        let best = bids.first().map_or(dec!(30000), |l| l.0);
        let price = ((best * dec!(0.98)) / dec!(0.01)).floor() * dec!(0.01);
        OrderRequest {
            client_order_id: id,
            instrument: btcusd(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            qty: dec!(0.02),
            price: Some(price),
            time_in_force: Some(TimeInForce::Gtc),
        }
    }

    async fn fill(&self, req: &OrderRequest, qty: Decimal) {
        let price = req.price.expect("a limit order");
        let filled = self.sim.trade_through("BTCUSD", price, qty);
        assert!(
            filled > Decimal::ZERO,
            "the simulator traded through the order"
        );
    }

    async fn lose_next_submit_answer(&self) {
        self.sim.inject(Fault::OrderTimeout);
    }

    async fn drop_streams(&self) {
        self.sim.inject(Fault::DropWebSockets);
    }

    async fn inject_book_gap(&self) {
        self.sim.inject(Fault::DepthGap {
            symbol: "BTCUSD".to_owned(),
        });
    }
}

gekko_venue::conformance_suite!(target());
