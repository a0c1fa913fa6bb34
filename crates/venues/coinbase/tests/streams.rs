//! gekko's Coinbase websocket client against the Coinbase simulator over real `wss`
//! (the simulator's self-signed certificate trusted as an extra root): the book built
//! from the in-band snapshot and the updates equals the simulator's own book, and is
//! rebuilt after a sequence gap, a dropped connection and malformed frames; a silent
//! stream is detected and recovered; an order placed over REST by hand shows up on the
//! user stream as order updates and fills, and a reconnect does not report a fill twice.
//!
//! Every wait polls with a deadline; nothing sleeps for a fixed time to let things happen.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gekko_coinbase::websocket::{
    CoinbaseMarketControl, CoinbaseWsConfig, market_stream, user_stream,
};
use gekko_coinbase::{CdpJwtSigner, CdpKey, JwtAlgorithm};
use gekko_core::{InstrumentId, OrderStatus, VenueId};
use gekko_net::retry::BackoffConfig;
use gekko_sim::coinbase::{Fault, SimApiKey, SimCoinbase, SimConfig, SimHandle};
use gekko_venue::{BookUpdate, MarketEvent, StreamCtx, UserEvent};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const KEY_NAME: &str = "organizations/org-ws/apiKeys/key-ws";
const WAIT: Duration = Duration::from_secs(15);

struct Venue {
    sim: SimHandle,
    signer: Arc<CdpJwtSigner>,
    cfg: CoinbaseWsConfig,
    ctx: StreamCtx,
}

impl Venue {
    async fn start(stale_after: Duration) -> Self {
        let key = CdpKey::generate(KEY_NAME, JwtAlgorithm::Es256).expect("key");
        let sim = SimCoinbase::start(SimConfig {
            api_keys: vec![SimApiKey {
                name: key.name().to_owned(),
                public_key_pem: key.public_key_pem(),
            }],
            tick_interval: Duration::from_millis(50),
            ..SimConfig::default()
        })
        .await
        .expect("simulator starts");
        assert!(sim.ws_url.starts_with("wss://"), "{}", sim.ws_url);
        let cfg = CoinbaseWsConfig {
            market_url: sim.ws_url.clone(),
            user_url: sim.ws_user_url.clone(),
            stale_after,
            channel_silent_after: None,
            extra_roots_pem: vec![sim.cert_pem.clone().expect("certificate")],
            connect_timeout: Duration::from_secs(5),
            backoff: BackoffConfig::new(Duration::from_millis(20), Duration::from_millis(200)),
        };
        cfg.validate().expect("config");
        Self {
            sim,
            signer: Arc::new(CdpJwtSigner::new(key)),
            cfg,
            ctx: StreamCtx::new(TaskTracker::new(), CancellationToken::new()),
        }
    }

    fn market(&self) -> (mpsc::Receiver<MarketEvent>, CoinbaseMarketControl) {
        market_stream(&self.cfg, self.signer.clone(), &[btc()], &self.ctx)
    }

    async fn stop(self) {
        self.ctx.cancel.cancel();
        self.ctx.tracker.close();
        tokio::time::timeout(Duration::from_secs(5), self.ctx.tracker.wait())
            .await
            .expect("every stream task stops");
        self.sim.shutdown().await;
    }

    /// The simulator's book of BTC-USD as price → qty maps.
    fn sim_book(&self) -> Book {
        let (_, bids, asks) = self.sim.book("BTC-USD").expect("product");
        Book {
            bids: bids.into_iter().collect(),
            asks: asks.into_iter().collect(),
            synced: true,
        }
    }
}

fn btc() -> InstrumentId {
    InstrumentId::new(VenueId::Coinbase, "BTC", "USD")
}

/// A local book built from the stream, the way the gateway builds one.
#[derive(Debug, Default, PartialEq, Eq)]
struct Book {
    bids: BTreeMap<Decimal, Decimal>,
    asks: BTreeMap<Decimal, Decimal>,
    synced: bool,
}

impl Book {
    /// Applies one event; returns what kind of book event it was, if any.
    fn apply(&mut self, ev: &MarketEvent) -> Option<&'static str> {
        match ev {
            MarketEvent::Book(BookUpdate::Snapshot(s)) => {
                assert_eq!(s.instrument, btc());
                self.bids = s.bids.iter().map(|l| (l.price, l.qty)).collect();
                self.asks = s.asks.iter().map(|l| (l.price, l.qty)).collect();
                self.synced = true;
                Some("snapshot")
            }
            MarketEvent::Book(BookUpdate::Delta(d)) => {
                assert!(self.synced, "a delta without a snapshot under it");
                for (side, levels) in [(&mut self.bids, &d.bids), (&mut self.asks, &d.asks)] {
                    for l in levels {
                        if l.qty.is_zero() {
                            side.remove(&l.price);
                        } else {
                            side.insert(l.price, l.qty);
                        }
                    }
                }
                Some("delta")
            }
            MarketEvent::BookGap { .. } | MarketEvent::Disconnected { .. } => {
                *self = Book::default();
                None
            }
            _ => None,
        }
    }
}

/// Reads events (applying them to `book`) until `until` says stop; panics at the deadline.
async fn read_until(
    rx: &mut mpsc::Receiver<MarketEvent>,
    book: &mut Book,
    what: &str,
    mut until: impl FnMut(&MarketEvent, &Book) -> bool,
) -> Vec<MarketEvent> {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}; saw {:?}", tail(&seen)))
            .expect("market stream open");
        book.apply(&ev);
        let done = until(&ev, book);
        seen.push(ev);
        if done {
            return seen;
        }
    }
}

fn tail(v: &[MarketEvent]) -> Vec<String> {
    v.iter()
        .rev()
        .take(8)
        .map(|e| format!("{e:?}").chars().take(160).collect())
        .collect()
}

/// Pauses the market and reads until the local book equals the simulator's.
async fn converge(v: &Venue, rx: &mut mpsc::Receiver<MarketEvent>, book: &mut Book) {
    v.sim.set_market_paused(true);
    let deadline = Instant::now() + WAIT;
    loop {
        if book.synced && *book == v.sim_book() {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            Ok(Some(ev)) => {
                book.apply(&ev);
            }
            Ok(None) => panic!("market stream closed"),
            Err(_) => {}
        }
        assert!(
            Instant::now() < deadline,
            "the local book never matched the simulator's:\nlocal {book:?}\nsim {:?}",
            v.sim_book()
        );
    }
    assert!(!book.bids.is_empty() && !book.asks.is_empty(), "{book:?}");
    v.sim.set_market_paused(false);
}

/// Waits for a fresh snapshot after a (re)connect, then for `n` deltas on top of it.
async fn snapshot_then_deltas(rx: &mut mpsc::Receiver<MarketEvent>, book: &mut Book, n: usize) {
    read_until(rx, book, "a snapshot", |e, _| {
        matches!(e, MarketEvent::Book(BookUpdate::Snapshot(_)))
    })
    .await;
    let mut deltas = 0;
    let mut last = None;
    read_until(rx, book, "deltas", |e, _| {
        if let MarketEvent::Book(BookUpdate::Delta(d)) = e {
            assert!(last.is_none_or(|l| d.sequence > l), "sequences increase");
            last = Some(d.sequence);
            deltas += 1;
        }
        deltas >= n
    })
    .await;
}

#[tokio::test]
async fn snapshot_and_deltas_rebuild_the_simulators_book() {
    let v = Venue::start(Duration::from_secs(5)).await;
    let (mut rx, _control) = v.market();
    let mut book = Book::default();
    let seen = read_until(&mut rx, &mut book, "connected", |e, _| {
        matches!(e, MarketEvent::Connected)
    })
    .await;
    assert_eq!(seen.len(), 1, "Connected comes first: {seen:?}");
    snapshot_then_deltas(&mut rx, &mut book, 5).await;
    // Quotes, trades and heartbeats flow too.
    let (mut quote, mut heartbeat) = (false, false);
    read_until(&mut rx, &mut book, "a quote and a heartbeat", |e, _| {
        match e {
            MarketEvent::Quote(q) => {
                assert_eq!(q.instrument, btc());
                assert!(q.bid < q.ask, "{q:?}");
                quote = true;
            }
            MarketEvent::Heartbeat => heartbeat = true,
            _ => {}
        }
        quote && heartbeat
    })
    .await;
    converge(&v, &mut rx, &mut book).await;
    v.stop().await;
}

#[tokio::test]
async fn a_gap_and_a_dropped_connection_each_rebuild_the_book() {
    let v = Venue::start(Duration::from_secs(5)).await;
    let (mut rx, control) = v.market();
    let mut book = Book::default();
    snapshot_then_deltas(&mut rx, &mut book, 3).await;

    // A gap: the book is reported, the stream reconnects, and a snapshot rebuilds it.
    v.sim.inject(Fault::DepthGap {
        symbol: "BTC-USD".into(),
    });
    let seen = read_until(&mut rx, &mut book, "a book gap", |e, _| {
        matches!(e, MarketEvent::BookGap { .. })
    })
    .await;
    let Some(MarketEvent::BookGap { instrument, detail }) = seen.last() else {
        unreachable!()
    };
    assert_eq!(*instrument, btc());
    assert!(detail.contains("sequence gap"), "{detail}");
    // What the engine does on a gap; the reconnect already under way answers it.
    control.resync(&btc()).await.expect("stream running");
    let seen = read_until(&mut rx, &mut book, "the reconnect", |e, _| {
        matches!(e, MarketEvent::Connected)
    })
    .await;
    assert!(
        seen.iter()
            .any(|e| matches!(e, MarketEvent::Disconnected { .. })),
        "{:?}",
        tail(&seen)
    );
    snapshot_then_deltas(&mut rx, &mut book, 2).await;
    converge(&v, &mut rx, &mut book).await;

    // Every socket dropped: Disconnected, Connected, a fresh snapshot.
    v.sim.inject(Fault::DropWebSockets);
    read_until(&mut rx, &mut book, "the drop", |e, _| {
        matches!(e, MarketEvent::Disconnected { .. })
    })
    .await;
    read_until(&mut rx, &mut book, "the reconnect", |e, _| {
        matches!(e, MarketEvent::Connected)
    })
    .await;
    snapshot_then_deltas(&mut rx, &mut book, 2).await;
    converge(&v, &mut rx, &mut book).await;

    // A resync of a healthy book reconnects and rebuilds it.
    control.resync(&btc()).await.expect("stream running");
    read_until(&mut rx, &mut book, "the resync reconnect", |e, _| {
        matches!(e, MarketEvent::Connected)
    })
    .await;
    snapshot_then_deltas(&mut rx, &mut book, 1).await;
    converge(&v, &mut rx, &mut book).await;
    v.stop().await;
}

#[tokio::test]
async fn a_silent_stream_is_detected_and_recovers() {
    let v = Venue::start(Duration::from_millis(1500)).await;
    let (mut rx, _control) = v.market();
    let mut book = Book::default();
    snapshot_then_deltas(&mut rx, &mut book, 1).await;
    v.sim.inject(Fault::SilentStreams {
        duration: Duration::from_secs(3),
    });
    read_until(
        &mut rx,
        &mut book,
        "staleness",
        |e, _| matches!(e, MarketEvent::Disconnected { reason } if reason.contains("stale")),
    )
    .await;
    // Once the silence ends the stream is back with a fresh book.
    snapshot_then_deltas(&mut rx, &mut book, 2).await;
    converge(&v, &mut rx, &mut book).await;
    v.stop().await;
}

#[tokio::test]
async fn malformed_frames_are_survived_and_the_book_still_matches() {
    let v = Venue::start(Duration::from_secs(5)).await;
    let (mut rx, _control) = v.market();
    let mut book = Book::default();
    snapshot_then_deltas(&mut rx, &mut book, 2).await;
    v.sim.inject(Fault::MalformedNext { count: 4 });
    // The stream goes on delivering: the book converges again whatever the malformed
    // frames replaced (a skipped ticker, or an l2 frame that forced a rebuild).
    let mut deltas = 0;
    read_until(
        &mut rx,
        &mut book,
        "deltas after the malformed frames",
        |e, b| {
            if matches!(e, MarketEvent::Book(BookUpdate::Delta(_))) && b.synced {
                deltas += 1;
            }
            deltas >= 10
        },
    )
    .await;
    converge(&v, &mut rx, &mut book).await;
    v.stop().await;
}

/// Places a limit buy over REST with a fresh JWT, by hand; the venue order id.
async fn place_limit_buy(v: &Venue, client_order_id: &str, price: &str, size: &str) -> String {
    let pem = v.sim.cert_pem.clone().expect("certificate");
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).expect("cert")])
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let host = v.sim.rest_url.trim_start_matches("https://");
    let path = "/api/v3/brokerage/orders";
    let token = v.signer.rest_token("POST", host, path).expect("token");
    let body = serde_json::json!({
        "client_order_id": client_order_id,
        "product_id": "BTC-USD",
        "side": "BUY",
        "order_configuration": {"limit_limit_gtc": {"base_size": size, "limit_price": price, "post_only": false}},
    });
    let resp: serde_json::Value = http
        .post(format!("{}{path}", v.sim.rest_url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(resp["success"], true, "{resp}");
    resp["success_response"]["order_id"]
        .as_str()
        .expect("order id")
        .to_owned()
}

async fn next_user(rx: &mut mpsc::Receiver<UserEvent>, what: &str) -> UserEvent {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .expect("user stream open")
}

/// The next order update of `order_id` in `status`, collecting the fills seen on the way.
async fn order_in(
    rx: &mut mpsc::Receiver<UserEvent>,
    order_id: &str,
    status: OrderStatus,
    fills: &mut Vec<gekko_core::Fill>,
) -> gekko_venue::OrderUpdate {
    loop {
        match next_user(rx, &format!("order {status:?}")).await {
            UserEvent::Order(u) if u.venue_order_id == order_id && u.status == status => return u,
            UserEvent::Fill(f) => fills.push(f),
            _ => {}
        }
    }
}

#[tokio::test]
async fn an_order_placed_over_rest_shows_up_as_updates_and_fills_once() {
    let v = Venue::start(Duration::from_secs(5)).await;
    // No market generator: only our trades move the order.
    v.sim.set_market_paused(true);
    let mut rx = user_stream(&v.cfg, v.signer.clone(), &v.ctx);
    assert_eq!(next_user(&mut rx, "connected").await, UserEvent::Connected);
    let mut fills = Vec::new();

    let id = place_limit_buy(&v, "gk-ws-user-1", "30000.00", "0.01").await;
    let u = order_in(&mut rx, &id, OrderStatus::New, &mut fills).await;
    assert_eq!(u.client_order_id.as_str(), "gk-ws-user-1");
    assert_eq!((u.qty, u.price), (dec!(0.01), Some(dec!(30000))));
    assert_eq!(u.instrument, btc());

    // A partial fill: one fill of the difference.
    assert_eq!(
        v.sim.trade_through("BTC-USD", dec!(30000), dec!(0.004)),
        dec!(0.004)
    );
    let u = order_in(&mut rx, &id, OrderStatus::PartiallyFilled, &mut fills).await;
    assert_eq!(u.filled_qty, dec!(0.004));
    // The update carries its fill, and the Fill event follows it.
    let fill = u.fill().expect("a partial fill carries its fill");
    assert_eq!(
        next_user(&mut rx, "the fill").await,
        UserEvent::Fill(fill.clone())
    );
    assert_eq!((fill.qty, fill.price), (dec!(0.004), dec!(30000)));
    assert_eq!(fill.trade_id, format!("{id}:0.004"));
    assert_eq!(fill.fee_asset, "USD");

    // A reconnect: the snapshot repeats the known state, no second fill.
    v.sim.inject(Fault::DropWebSockets);
    loop {
        match next_user(&mut rx, "the reconnect").await {
            UserEvent::Connected => break,
            UserEvent::Fill(f) => panic!("a fill while reconnecting: {f:?}"),
            _ => {}
        }
    }
    // The snapshot after the subscribe repeats the open order as it stands: an update,
    // and no fill (the tracker knows that state).
    let mut replayed = Vec::new();
    let u = order_in(&mut rx, &id, OrderStatus::PartiallyFilled, &mut replayed).await;
    assert_eq!((u.filled_qty, u.last_fill.clone()), (dec!(0.004), None));
    assert!(replayed.is_empty(), "{replayed:?}");
    // The rest fills: one fill of the rest, keyed by the new cumulative quantity.
    assert_eq!(
        v.sim.trade_through("BTC-USD", dec!(30000), dec!(0.006)),
        dec!(0.006)
    );
    let mut more = Vec::new();
    let u = order_in(&mut rx, &id, OrderStatus::Filled, &mut more).await;
    assert_eq!((u.filled_qty, u.cum_quote), (dec!(0.01), dec!(300)));
    let last = u.fill().expect("the final update carries its fill");
    assert_eq!(
        (last.qty, last.trade_id.clone()),
        (dec!(0.006), format!("{id}:0.01"))
    );
    assert!(
        more.iter().all(|f| f.trade_id != fill.trade_id),
        "the first fill was reported again: {more:?}"
    );
    v.stop().await;
}
