//! The OANDA streams against the real OANDA simulator (`gekko_sim::oanda`) over real
//! sockets: prices flow; a silent stream is detected and reconnected; a dropped stream
//! reconnects; lines the simulator splits across chunks parse; malformed lines are
//! counted and survived; a fill that happens while the transaction stream is down is
//! caught up through `/changes`, once.
//!
//! Every wait polls the event receiver with a deadline; nothing sleeps for a fixed time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use gekko_core::{InstrumentId, VenueId};
use gekko_oanda::config::OandaConfig;
use gekko_oanda::stream::{
    METRIC_CAUGHT_UP, METRIC_MALFORMED, METRIC_STALE, OandaCatchUp, TransactionStart,
    pricing_stream, transaction_stream,
};
use gekko_sim::oanda::{Fault, SimConfig, SimHandle, SimOanda};
use gekko_venue::{BookUpdate, MarketEvent, StreamCtx, UserEvent};
use secrecy::SecretString;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const WAIT: Duration = Duration::from_secs(15);

async fn sim() -> SimHandle {
    SimOanda::start(SimConfig::default()).await.unwrap()
}

fn config(sim: &SimHandle) -> OandaConfig {
    let mut c = OandaConfig::simulator(
        &sim.rest_url,
        &sim.stream_url,
        SecretString::from(sim.token.clone()),
        &sim.account_id,
    );
    c.stale_after = Duration::from_millis(700);
    c
}

fn ctx() -> StreamCtx {
    StreamCtx::new(TaskTracker::new(), CancellationToken::new())
}

fn eur() -> InstrumentId {
    InstrumentId::new(VenueId::Oanda, "EUR", "USD")
}

fn jpy() -> InstrumentId {
    InstrumentId::new(VenueId::Oanda, "USD", "JPY")
}

/// Receives until `pred` matches, returning everything seen up to and including it.
async fn until<T: std::fmt::Debug>(
    rx: &mut mpsc::Receiver<T>,
    what: &str,
    mut pred: impl FnMut(&T) -> bool,
) -> Vec<T> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}; saw {seen:?}"))
            .unwrap_or_else(|| panic!("stream closed waiting for {what}; saw {seen:?}"));
        let hit = pred(&ev);
        seen.push(ev);
        if hit {
            return seen;
        }
    }
}

fn is_quote_of(ev: &MarketEvent, i: &InstrumentId) -> bool {
    matches!(ev, MarketEvent::Quote(q) if q.instrument == *i)
}

/// Counts counter increments by name across every task of this test binary. Only the
/// test that injects malformed lines may produce them, so the others can assert zero.
#[derive(Debug, Default)]
struct Counts(Mutex<HashMap<String, Arc<AtomicU64>>>);

impl Counts {
    fn get(&self, name: &str) -> u64 {
        self.0
            .lock()
            .unwrap()
            .get(name)
            .map_or(0, |c| c.load(Ordering::SeqCst))
    }
}

impl metrics::Recorder for Counts {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let c = self
            .0
            .lock()
            .unwrap()
            .entry(key.name().to_owned())
            .or_default()
            .clone();
        metrics::Counter::from_arc(c)
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

fn counts() -> &'static Counts {
    static COUNTS: OnceLock<&'static Counts> = OnceLock::new();
    COUNTS.get_or_init(|| {
        let c: &'static Counts = Box::leak(Box::default());
        metrics::set_global_recorder(c).expect("the only recorder of this binary");
        c
    })
}

#[tokio::test]
async fn prices_flow_as_quotes_and_top_level_books() {
    counts();
    let sim = sim().await;
    let ctx = ctx();
    let mut rx = pricing_stream(&config(&sim), &[eur(), jpy()], &ctx);
    until(&mut rx, "Connected", |e| {
        matches!(e, MarketEvent::Connected)
    })
    .await;
    let seen = until(&mut rx, "a USD/JPY quote", |e| is_quote_of(e, &jpy())).await;
    until(&mut rx, "a EUR/USD quote", |e| is_quote_of(e, &eur())).await;
    let books: Vec<_> = seen
        .iter()
        .filter_map(|e| match e {
            MarketEvent::Book(BookUpdate::Snapshot(s)) => Some(s),
            _ => None,
        })
        .collect();
    assert!(!books.is_empty(), "{seen:?}");
    for b in &books {
        assert!(!b.bids.is_empty() && !b.asks.is_empty(), "{b:?}");
        assert!(b.bids[0].price < b.asks[0].price, "{b:?}");
        assert!(b.bids.windows(2).all(|w| w[0].price > w[1].price), "{b:?}");
        assert!(b.ts_ms > 1_600_000_000_000, "venue time: {b:?}");
    }
    // Quotes are the books' tops.
    let MarketEvent::Quote(q) = seen.last().unwrap() else {
        unreachable!()
    };
    assert!(q.bid < q.ask && q.bid_size > rust_decimal::Decimal::ZERO);
    ctx.cancel.cancel();
    ctx.tracker.close();
    tokio::time::timeout(WAIT, ctx.tracker.wait())
        .await
        .unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn a_silent_stream_is_detected_and_reconnected_and_a_drop_reconnects() {
    counts();
    let sim = sim().await;
    let ctx = ctx();
    let mut rx = pricing_stream(&config(&sim), &[eur()], &ctx);
    until(&mut rx, "a quote", |e| is_quote_of(e, &eur())).await;
    let stale_before = counts().get(METRIC_STALE);
    sim.inject(Fault::SilentStreams {
        duration: Duration::from_secs(2),
    });
    until(
        &mut rx,
        "the watchdog",
        |e| matches!(e, MarketEvent::Disconnected { reason } if reason.contains("stale")),
    )
    .await;
    assert!(counts().get(METRIC_STALE) > stale_before, "stale counted");
    until(&mut rx, "the reconnect", |e| {
        matches!(e, MarketEvent::Connected)
    })
    .await;
    until(&mut rx, "prices again", |e| is_quote_of(e, &eur())).await;
    let connections = sim.stats().ws_connections;
    assert!(connections >= 2, "{connections}");

    sim.inject(Fault::DropWebSockets);
    until(&mut rx, "the drop", |e| {
        matches!(e, MarketEvent::Disconnected { .. })
    })
    .await;
    until(&mut rx, "the reconnect", |e| {
        matches!(e, MarketEvent::Connected)
    })
    .await;
    until(&mut rx, "prices again", |e| is_quote_of(e, &eur())).await;
    assert!(sim.stats().streams_dropped >= 1);
    assert!(sim.stats().ws_connections > connections);
    ctx.cancel.cancel();
    sim.shutdown().await;
}

#[tokio::test]
async fn split_chunks_parse_and_malformed_lines_are_counted_and_survived() {
    let counts = counts();
    let sim = sim().await;
    let ctx = ctx();
    let mut rx = pricing_stream(&config(&sim), &[eur(), jpy()], &ctx);
    until(&mut rx, "a quote", |e| is_quote_of(e, &eur())).await;
    sim.inject(Fault::SplitChunks { count: 12 });
    let mut quotes = 0;
    until(&mut rx, "a dozen quotes", |e| {
        quotes += usize::from(matches!(e, MarketEvent::Quote(_)));
        quotes >= 12
    })
    .await;
    let split = sim.stats().lines_split;
    assert!(split >= 8, "the simulator split {split} lines");
    assert_eq!(counts.get(METRIC_MALFORMED), 0, "every split line parsed");

    sim.inject(Fault::MalformedNext { count: 3 });
    let mut quotes = 0;
    until(&mut rx, "quotes after the malformed lines", |e| {
        quotes += usize::from(matches!(e, MarketEvent::Quote(_)));
        quotes >= 8
    })
    .await;
    assert!(
        counts.get(METRIC_MALFORMED) >= 1,
        "malformed lines counted: {}",
        counts.get(METRIC_MALFORMED)
    );
    ctx.cancel.cancel();
    sim.shutdown().await;
}

/// Places a market order over plain REST and returns the fill's transaction id.
async fn market_order(sim: &SimHandle, client_id: &str, units: &str) -> String {
    let body = serde_json::json!({"order": {
        "type": "MARKET", "instrument": "EUR_USD", "units": units, "timeInForce": "FOK",
        "clientExtensions": {"id": client_id}
    }});
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/v3/accounts/{}/orders",
            sim.rest_url, sim.account_id
        ))
        .bearer_auth(&sim.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let v: serde_json::Value = resp.json().await.unwrap();
    v["orderFillTransaction"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no fill: {v}"))
        .to_owned()
}

/// The adapter's closure, here over plain reqwest: the raw `/changes` body. Records the
/// ids it was called with.
fn catch_up(sim: &SimHandle, calls: Arc<Mutex<Vec<String>>>) -> OandaCatchUp {
    let url = format!("{}/v3/accounts/{}/changes", sim.rest_url, sim.account_id);
    let token = sim.token.clone();
    let client = reqwest::Client::new();
    Arc::new(move |since: String| {
        calls.lock().unwrap().push(since.clone());
        let req = client
            .get(&url)
            .query(&[("sinceTransactionID", since)])
            .bearer_auth(&token)
            .header("Accept-Datetime-Format", "RFC3339");
        Box::pin(async move {
            let resp = req.send().await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let body = resp.text().await.map_err(|e| e.to_string())?;
            if status.is_success() {
                Ok(body)
            } else {
                Err(format!("HTTP {status}: {body}"))
            }
        })
    })
}

fn fills(events: &[UserEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            UserEvent::Fill(f) => Some(f.trade_id.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_fill_during_a_disconnect_is_caught_up_through_changes_once() {
    counts();
    let sim = sim().await;
    let ctx = ctx();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let mut rx = transaction_stream(
        &config(&sim),
        catch_up(&sim, Arc::clone(&calls)),
        TransactionStart::new("USD"),
        &ctx,
    );
    until(&mut rx, "Connected", |e| matches!(e, UserEvent::Connected)).await;
    // Live: the create and the fill arrive on the stream.
    let first = market_order(&sim, "gk-stream-live-1", "100").await;
    let seen = until(
        &mut rx,
        "the live fill",
        |e| matches!(e, UserEvent::Fill(f) if f.trade_id == first),
    )
    .await;
    assert!(
        seen.iter().any(|e| matches!(e, UserEvent::Order(o)
            if o.client_order_id.as_str() == "gk-stream-live-1"
            && o.status == gekko_core::OrderStatus::Filled)),
        "{seen:?}"
    );
    // Silence: the watchdog drops the stream; the order fills while it is down.
    sim.inject(Fault::SilentStreams {
        duration: Duration::from_secs(3),
    });
    until(
        &mut rx,
        "the watchdog",
        |e| matches!(e, UserEvent::Disconnected { reason } if reason.contains("stale")),
    )
    .await;
    let missed = market_order(&sim, "gk-stream-missed-1", "-40").await;
    let seen = until(
        &mut rx,
        "the missed fill",
        |e| matches!(e, UserEvent::Fill(f) if f.trade_id == missed),
    )
    .await;
    let fill = seen
        .iter()
        .find_map(|e| match e {
            UserEvent::Fill(f) if f.trade_id == missed => Some(f.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(fill.side, gekko_core::Side::Sell);
    assert_eq!(fill.qty, rust_decimal::Decimal::from(40));
    assert_eq!(fill.client_order_id.as_str(), "gk-stream-missed-1");
    // The catch-up applied transactions the silent stream had not delivered.
    assert!(counts().get(METRIC_CAUGHT_UP) >= 1, "applied from /changes");
    let since_calls = calls.lock().unwrap().clone();
    assert!(
        since_calls
            .iter()
            .any(|s| s.parse::<u64>().unwrap() < missed.parse::<u64>().unwrap()),
        "caught up from before the missed fill: {since_calls:?}"
    );
    // Once: nothing repeats it afterwards, through another reconnect and catch-up.
    sim.inject(Fault::DropWebSockets);
    let after = until(&mut rx, "the reconnect", |e| {
        matches!(e, UserEvent::Connected)
    })
    .await;
    let third = market_order(&sim, "gk-stream-live-2", "10").await;
    let mut tail = until(
        &mut rx,
        "the next fill",
        |e| matches!(e, UserEvent::Fill(f) if f.trade_id == third),
    )
    .await;
    tail.extend(after);
    let all = [seen, tail].concat();
    let ids = fills(&all);
    assert_eq!(ids.iter().filter(|i| **i == missed).count(), 1, "{ids:?}");
    assert_eq!(ids.iter().filter(|i| **i == third).count(), 1, "{ids:?}");
    ctx.cancel.cancel();
    sim.shutdown().await;
}
