//! The venue conformance suite (`gekko_venue::conformance`) against the Coinbase adapter
//! and the Coinbase simulator, over real TLS sockets (REST over https, both websocket
//! hosts over wss, trusting only the simulator's certificate).
//!
//! Each scenario gets its own simulator. The controls map onto simulator faults: a lost
//! submit answer is `Fault::OrderTimeout` (the order executes, its response is held back
//! past the adapter's 1 s request timeout), dropped streams are `Fault::DropWebSockets`,
//! a book gap is `Fault::DepthGap` on `BTC-USD`, and fills come from trading through the
//! resting price.

use std::sync::Arc;

use async_trait::async_trait;
use gekko_coinbase::CoinbaseVenue;
use gekko_core::{ClientOrderId, InstrumentId, OrderRequest};
use gekko_sim::coinbase::Fault;
use gekko_venue::VenueAdapter;
use gekko_venue::conformance::ConformanceTarget;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

mod support;

use support::{Cb, btc, limit_buy};

struct Target {
    cb: Cb,
    venue: Arc<CoinbaseVenue>,
}

async fn target() -> Target {
    let cb = Cb::start(|_| {}).await;
    let venue = Arc::new(cb.venue(|_| {}));
    venue
        .instruments(&[btc()])
        .await
        .expect("the simulator lists BTC-USD");
    Target { cb, venue }
}

#[async_trait]
impl ConformanceTarget for Target {
    fn venue(&self) -> Arc<dyn VenueAdapter> {
        self.venue.clone()
    }

    fn instrument(&self) -> InstrumentId {
        btc()
    }

    async fn resting_buy(&self, id: ClientOrderId) -> OrderRequest {
        // Well below the best bid, on the tick: it rests until traded through.
        let best = self
            .cb
            .sim
            .book("BTC-USD")
            .and_then(|(_, bids, _)| bids.first().map(|l| l.0))
            .unwrap_or(dec!(60000));
        let price = ((best * dec!(0.98)) / dec!(0.01)).floor() * dec!(0.01);
        limit_buy(id, dec!(0.02), price)
    }

    async fn fill(&self, req: &OrderRequest, qty: Decimal) {
        let price = req.price.expect("a limit order");
        let filled = self.cb.sim.trade_through("BTC-USD", price, qty);
        assert!(
            filled > Decimal::ZERO,
            "the simulator traded through the order"
        );
    }

    async fn lose_next_submit_answer(&self) {
        self.cb.sim.inject(Fault::OrderTimeout);
    }

    async fn drop_streams(&self) {
        self.cb.sim.inject(Fault::DropWebSockets);
    }

    async fn inject_book_gap(&self) {
        self.cb.sim.inject(Fault::DepthGap {
            symbol: "BTC-USD".to_owned(),
        });
    }
}

gekko_venue::conformance_suite!(target());
