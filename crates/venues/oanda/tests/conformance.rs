//! The venue conformance suite (`gekko_venue::conformance`) against the OANDA adapter
//! and the v20 simulator, over real loopback sockets (REST and both chunked streams).
//!
//! Each scenario gets its own simulator. The controls map onto simulator faults: a lost
//! submit answer is `Fault::OrderTimeout` (the order executes, its response is held back
//! past the adapter's 1 s request timeout), dropped streams are `Fault::DropWebSockets`
//! (which ends every chunked stream abruptly), and fills come from trading through the
//! resting price.
//!
//! `gap_and_resync` is not run from the suite: it expects deltas after a resync, and an
//! OANDA book is [`BookFeed::TopLevels`] (every price replaces the book, there are no
//! deltas and no sequence to gap). What the contract asks of such a feed is checked
//! here instead: a resync is accepted and the next price is a fresh snapshot.

use std::sync::Arc;

use async_trait::async_trait;
use gekko_core::{ClientOrderId, InstrumentId, OrderRequest, Side};
use gekko_oanda::OandaVenue;
use gekko_sim::oanda::Fault;
use gekko_venue::conformance::{ConformanceTarget, Streams, within};
use gekko_venue::{BookFeed, BookUpdate, MarketEvent, VenueAdapter};
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

gekko_venue::conformance_suite!(@each target();
    place, partial_fill, fill, cancel, unknown_order,
    ambiguous_submit_resolved_by_query, reconnect_resubscribes, duplicate_client_id);

/// The TopLevels counterpart of `gap_and_resync`: every price is a snapshot, a resync is
/// accepted, and snapshots keep coming with increasing sequences.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_levels_books_are_snapshots_and_a_resync_is_accepted() {
    let t = target().await;
    let venue = t.venue();
    assert_eq!(venue.caps().book_feed, BookFeed::TopLevels);
    let inst = eur_usd();
    let streams = Streams::new();
    let mut market = venue.market_stream(std::slice::from_ref(&inst), streams.ctx());
    let snap = |e: &MarketEvent| matches!(e, MarketEvent::Book(BookUpdate::Snapshot(s)) if s.instrument == eur_usd());
    let MarketEvent::Book(BookUpdate::Snapshot(first)) =
        within(&mut market, "a snapshot", snap).await
    else {
        unreachable!()
    };
    assert!(!first.bids.is_empty() && !first.asks.is_empty());
    venue
        .resync_book(&inst)
        .await
        .expect("a resync is accepted");
    let MarketEvent::Book(BookUpdate::Snapshot(next)) =
        within(&mut market, "a snapshot after the resync", snap).await
    else {
        unreachable!()
    };
    assert!(next.sequence > first.sequence);
    streams.stop().await;
    t.oa.sim.shutdown().await;
}
