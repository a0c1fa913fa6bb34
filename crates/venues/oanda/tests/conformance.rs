//! The venue conformance suite (`gekko_venue::conformance`) against the OANDA adapter
//! and the v20 simulator, over real loopback sockets (REST and both chunked streams).
//!
//! Each scenario gets its own simulator. The controls map onto simulator faults: a lost
//! submit answer is `Fault::OrderTimeout` (the order executes, its response is held back
//! past the adapter's 1 s request timeout), dropped streams are `Fault::DropWebSockets`
//! (which ends every chunked stream abruptly), and fills come from trading through the
//! resting price.
//!
//! An OANDA book is `BookFeed::TopLevels` (every price replaces the book, no deltas and no
//! sequence to gap), so the suite's `gap_and_resync` checks the top-levels contract: a
//! resync is accepted and snapshots keep moving forward; `inject_book_gap` is not called.

use std::sync::Arc;

use async_trait::async_trait;
use gekko_core::{ClientOrderId, InstrumentId, OrderRequest, Side};
use gekko_oanda::OandaVenue;
use gekko_sim::oanda::Fault;
use gekko_venue::VenueAdapter;
use gekko_venue::conformance::ConformanceTarget;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

mod support;

use support::{Oa, eur_usd, limit};

struct Target {
    oa: Oa,
    venue: Arc<OandaVenue>,
}

async fn target() -> Target {
    let oa = Oa::start(|_| {}).await;
    let venue = Arc::new(oa.venue(|_| {}));
    venue
        .verify_credentials()
        .await
        .expect("the paper token and account");
    venue
        .instruments(&[eur_usd()])
        .await
        .expect("the simulator lists EUR_USD");
    Target { oa, venue }
}

#[async_trait]
impl ConformanceTarget for Target {
    fn venue(&self) -> Arc<dyn VenueAdapter> {
        self.venue.clone()
    }

    fn instrument(&self) -> InstrumentId {
        eur_usd()
    }

    async fn resting_buy(&self, id: ClientOrderId) -> OrderRequest {
        // 5 % below the bid, on the 0.00001 tick: it rests until traded through.
        let (bid, _) = self.oa.touch("EUR_USD");
        limit(
            id,
            eur_usd(),
            Side::Buy,
            dec!(1000),
            (bid * dec!(0.95)).round_dp(5),
        )
    }

    async fn fill(&self, req: &OrderRequest, qty: Decimal) {
        let price = req.price.expect("a limit order");
        let filled = self.oa.sim.trade_through("EUR_USD", price, qty);
        assert!(
            filled > Decimal::ZERO,
            "the simulator traded through the order"
        );
    }

    async fn lose_next_submit_answer(&self) {
        self.oa.sim.inject(Fault::OrderTimeout);
    }

    async fn drop_streams(&self) {
        self.oa.sim.inject(Fault::DropWebSockets);
    }

    async fn inject_book_gap(&self) {
        unreachable!("an OANDA book has no sequence to gap (TopLevels)");
    }
}

gekko_venue::conformance_suite!(target());
