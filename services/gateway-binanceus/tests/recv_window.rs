//! `recvWindow` above the resolver's old fixed 7 s horizon, end to end: the real Binance.US
//! gateway against the real simulator, with a real `redis-server` as the bus.
//!
//! The simulator's `DelayedAccept` fault holds an order back from its matching engine for
//! 9 s: the order's answer is lost (the client times out after 1 s) and no query finds it
//! until then. The engine checks `recvWindow` again when the order reaches it, as Binance
//! does, so with `recvWindow` 20 s the order does appear at 9 s, and the gateway, whose
//! horizon is `recvWindow` + 2 s = 22 s, must keep it in flight past 7 s and then see it
//! accepted. With the default 5 s window the same delay means the venue refuses the late
//! order, and the gateway calls it "not placed" once the 7 s horizon has passed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gekko_bus::{Bus, RedisBus, RedisBusOptions};
use gekko_core::{
    ClientOrderId, InstrumentId, OrderRequest, OrderStatus, OrderType, Side, TimeInForce, VenueId,
};
use gekko_gateway::engine::{Gateway, GatewayConfig};
use gekko_runtime::Readiness;
use gekko_sim::binanceus::{Fault, SimBinanceUs, SimConfig, SimHandle};
use gekko_testkit::{RedisServer, wait_until};
use rust_decimal_macros::dec;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long the simulator holds the order back from its engine.
const DELAY: Duration = Duration::from_secs(9);
/// The horizon the resolver had before it followed `recvWindow`.
const OLD_HORIZON: Duration = Duration::from_secs(7);

fn btc() -> InstrumentId {
    InstrumentId::new(VenueId::BinanceUs, "BTC", "USD")
}

struct Env {
    _redis: RedisServer,
    sim: SimHandle,
    gateway: Gateway,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Env {
    /// A ready gateway whose venue client signs with `recv_window_ms` and gives up on a
    /// request after 1 s.
    async fn start(recv_window_ms: u64) -> Self {
        let redis = RedisServer::start();
        let bus: Arc<dyn Bus> = Arc::new(
            RedisBus::connect(&redis.url(), RedisBusOptions::default())
                .await
                .expect("bus"),
        );
        let sim = SimBinanceUs::start(SimConfig {
            tick_interval: Duration::from_millis(50),
            ..SimConfig::default()
        })
        .await
        .expect("start simulator");
        let mut vc = gateway_binanceus::paper_config(
            &sim.rest_url,
            &sim.ws_url,
            Duration::from_secs(1),
            Duration::from_secs(5),
        );
        vc.recv_window_ms = recv_window_ms;
        let venue = gekko_binanceus::BinanceUsVenue::new(vc).expect("venue config");
        let mut cfg = GatewayConfig::new("gateway-binanceus", vec![btc()]);
        cfg.limits.max_order_notional = dec!(1000000);
        let readiness = Readiness::new();
        let tracker = TaskTracker::new();
        let cancel = CancellationToken::new();
        let (gateway, _) = Gateway::start(
            Arc::new(venue),
            bus,
            cfg,
            &readiness,
            &tracker,
            cancel.clone(),
        )
        .await
        .expect("gateway starts");
        let r = readiness.clone();
        wait_until("gateway ready", Duration::from_secs(15), move || {
            r.is_ready()
        })
        .await;
        Self {
            _redis: redis,
            sim,
            gateway,
            cancel,
            tracker,
        }
    }

    /// Submits a resting buy whose answer is lost and which reaches the venue's engine
    /// after [`DELAY`]; returns the id and when it was sent.
    async fn submit_delayed(&self, id: &str) -> (ClientOrderId, Instant) {
        let (_, bids, _) = self.sim.book("BTCUSD");
        let price = (bids[0].0 * dec!(0.95)).round_dp(2);
        self.sim.inject(Fault::DelayedAccept { delay: DELAY });
        let id = ClientOrderId::parse(id).expect("client order id");
        let sent = Instant::now();
        let placed = self
            .gateway
            .place_order(OrderRequest {
                client_order_id: id.clone(),
                instrument: btc(),
                side: Side::Buy,
                order_type: OrderType::Limit,
                qty: dec!(0.1),
                price: Some(price),
                time_in_force: Some(TimeInForce::Gtc),
            })
            .await
            .expect("a lost answer is not an error");
        assert_eq!(
            placed.status,
            OrderStatus::InFlight,
            "the answer was lost: {placed:?}"
        );
        (id, sent)
    }

    /// Every status the gateway reports for `id`, sampled every 50 ms, until `done` holds
    /// or `limit` has passed since `sent`.
    async fn watch(
        &self,
        id: &ClientOrderId,
        sent: Instant,
        limit: Duration,
        done: impl Fn(OrderStatus) -> bool,
    ) -> Vec<(Duration, OrderStatus)> {
        let mut seen: Vec<(Duration, OrderStatus)> = Vec::new();
        loop {
            let status = self.gateway.order(id).expect("the order is tracked").status;
            let at = sent.elapsed();
            if seen.last().is_none_or(|(_, s)| *s != status) {
                seen.push((at, status));
            }
            if done(status) || at > limit {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.tracker.close();
        tokio::time::timeout(Duration::from_secs(10), self.tracker.wait())
            .await
            .expect("gateway tasks stop within 10 s");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_seen_after_the_old_horizon_stays_in_flight_and_ends_accepted() {
    let env = Env::start(20_000).await;
    let (id, sent) = env.submit_delayed("rw-late-1").await;
    let seen = env
        .watch(&id, sent, Duration::from_secs(20), |s| {
            s != OrderStatus::InFlight
        })
        .await;
    // In flight from the lost answer until the venue shows the order, which is after the
    // old 7 s horizon: a resolver capped at 7 s would have called it "not placed".
    let (resolved_at, status) = *seen.last().unwrap();
    assert_eq!(status, OrderStatus::New, "accepted in the end: {seen:?}");
    assert!(
        resolved_at > OLD_HORIZON,
        "the order became visible after the old horizon: {seen:?}"
    );
    assert!(
        seen[..seen.len() - 1]
            .iter()
            .all(|(_, s)| *s == OrderStatus::InFlight),
        "in flight until then, never \"not placed\": {seen:?}"
    );
    let order = env.gateway.order(&id).unwrap();
    assert!(order.venue_order_id.is_some(), "{order:?}");
    let at_venue = env
        .sim
        .orders()
        .into_iter()
        .filter(|o| o.client_order_id == "rw-late-1")
        .count();
    assert_eq!(at_venue, 1, "exactly one order at the venue");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_default_window_the_late_order_is_refused_and_declared_not_placed() {
    let env = Env::start(5_000).await;
    let (id, sent) = env.submit_delayed("rw-late-2").await;
    let seen = env
        .watch(&id, sent, Duration::from_secs(15), |s| {
            s != OrderStatus::InFlight
        })
        .await;
    let (resolved_at, status) = *seen.last().unwrap();
    assert_eq!(status, OrderStatus::Rejected, "not placed: {seen:?}");
    assert!(
        resolved_at >= OLD_HORIZON,
        "not before recvWindow + 2 s: {seen:?}"
    );
    // The venue's engine refused the order when it arrived there, past its window, so
    // "not placed" was true: it never appears.
    tokio::time::sleep(DELAY.saturating_sub(sent.elapsed()) + Duration::from_secs(1)).await;
    assert!(
        !env.sim
            .orders()
            .iter()
            .any(|o| o.client_order_id == "rw-late-2"),
        "the late order was refused by the venue"
    );
    assert_eq!(
        env.gateway.order(&id).unwrap().status,
        OrderStatus::Rejected
    );
    env.stop().await;
}
