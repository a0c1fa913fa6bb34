//! The market-data component: local books, last quotes, the quote broadcast, and the
//! market-data streams on the bus.
//!
//! It is its own component so that a venue without a book ([`BookFeed::None`], OANDA)
//! plugs in cleanly: such a venue simply gets no books, and readiness rests on quotes
//! flowing. Book sequencing is the adapter's job; this component applies what the adapter
//! vouches for and asks the engine to resync through the adapter on a reported gap.
//!
//! Concurrency: the state sits behind short std `Mutex`es (never held across an await).
//! Bus writes go through a bounded queue to one writer task so a slow bus never stalls the
//! websocket reader; when the queue is full, market data is dropped and counted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use gekko_bus::{Bus, StreamSpec, Topic, names};
use gekko_core::sync::lock;
use gekko_core::{BookSnapshot, InstrumentId, Quote, Side, Trade, now_ms};
use gekko_runtime::ReadyHandle;
use gekko_venue::{BookFeed, BookUpdate, MarketEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::book::LocalBook;

/// A book update as written to the book stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BookEvent {
    /// The instrument.
    pub instrument: InstrumentId,
    /// Venue sequence after the update.
    pub sequence: u64,
    /// Best bid and ask after the update, if both sides exist.
    pub best_bid: Option<Decimal>,
    /// Best ask.
    pub best_ask: Option<Decimal>,
    /// Changed bids (every level, for a snapshot).
    pub bids: Vec<gekko_core::BookLevel>,
    /// Changed asks (every level, for a snapshot).
    pub asks: Vec<gekko_core::BookLevel>,
    /// Whether this update replaced the whole book.
    #[serde(default)]
    pub snapshot: bool,
}

/// What the engine must do after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Followup {
    /// Nothing.
    None,
    /// The adapter reported a gap: ask it to resync this book.
    Resync(InstrumentId),
}

#[derive(Debug)]
pub(crate) struct MarketData {
    label: &'static str,
    source: String,
    feed: BookFeed,
    instruments: Vec<InstrumentId>,
    books: Mutex<HashMap<InstrumentId, LocalBook>>,
    last_quotes: Mutex<HashMap<InstrumentId, Quote>>,
    quotes_tx: broadcast::Sender<Quote>,
    md_tx: mpsc::Sender<(StreamSpec, Bytes)>,
    last_data_ms: AtomicI64,
    quotes: Topic<Quote>,
    trades: Topic<Trade>,
    book_topic: Topic<BookEvent>,
    ready: ReadyHandle,
}

impl MarketData {
    /// The component and the receiving end of its bus queue (for [`md_writer`]).
    pub(crate) fn new(
        label: &'static str,
        source: String,
        feed: BookFeed,
        instruments: Vec<InstrumentId>,
        max_len: usize,
        ready: ReadyHandle,
    ) -> (Self, mpsc::Receiver<(StreamSpec, Bytes)>) {
        let (md_tx, md_rx) = mpsc::channel(4096);
        let books = if feed == BookFeed::None {
            HashMap::new()
        } else {
            instruments
                .iter()
                .map(|i| (i.clone(), LocalBook::new(i.clone())))
                .collect()
        };
        let md = Self {
            label,
            source,
            feed,
            instruments,
            books: Mutex::new(books),
            last_quotes: Mutex::new(HashMap::new()),
            quotes_tx: broadcast::channel(1024).0,
            md_tx,
            last_data_ms: AtomicI64::new(0),
            quotes: Topic::capped(names::quotes(label), max_len, 1),
            trades: Topic::capped(names::trades(label), max_len, 1),
            book_topic: Topic::capped(names::book(label), max_len, 1),
            ready,
        };
        (md, md_rx)
    }

    fn mark(&self) {
        self.last_data_ms.store(now_ms(), Ordering::Relaxed);
    }

    fn publish<T: Serialize + serde::de::DeserializeOwned>(&self, topic: &Topic<T>, payload: &T) {
        if let Ok((_, bytes)) = topic.encode(&self.source, payload) {
            // Market data may drop: if the writer is behind, skip rather than block the
            // stream (and count it).
            if self.md_tx.try_send((topic.spec(), bytes)).is_err() {
                metrics::counter!("gekko_gateway_market_data_dropped_total", "venue" => self.label)
                    .increment(1);
            }
        }
    }

    fn invalidate_all(&self) {
        for b in lock(&self.books).values_mut() {
            b.invalidate();
        }
    }

    /// Applies one stream event.
    pub(crate) fn on_event(&self, ev: MarketEvent) -> Followup {
        let label = self.label;
        match ev {
            MarketEvent::Connected => {
                // The adapter follows a (re)connect with a snapshot per book; until then
                // the books describe a past connection.
                self.mark();
                self.invalidate_all();
            }
            MarketEvent::Disconnected { reason } => {
                tracing::warn!(venue = label, %reason, "market stream disconnected");
                self.ready
                    .set_not_ready(format!("market stream disconnected: {reason}"));
                self.invalidate_all();
            }
            MarketEvent::Heartbeat => self.mark(),
            MarketEvent::Quote(q) => {
                self.mark();
                lock(&self.last_quotes).insert(q.instrument.clone(), q.clone());
                let _ = self.quotes_tx.send(q.clone());
                self.publish(&self.quotes, &q);
            }
            MarketEvent::Trade(t) => {
                self.mark();
                self.publish(&self.trades, &t);
            }
            MarketEvent::BookGap { instrument, detail } => {
                self.mark();
                metrics::counter!("gekko_gateway_book_gaps_total", "venue" => label).increment(1);
                tracing::warn!(venue = label, %instrument, %detail, "book sequence gap; resynchronising");
                if let Some(b) = lock(&self.books).get_mut(&instrument) {
                    b.invalidate();
                }
                return Followup::Resync(instrument);
            }
            MarketEvent::Book(update) => {
                self.mark();
                let snapshot = matches!(update, BookUpdate::Snapshot(_));
                let applied = {
                    let mut books = lock(&self.books);
                    let Some(b) = books.get_mut(update.instrument()) else {
                        return Followup::None;
                    };
                    let ok = match &update {
                        BookUpdate::Snapshot(s) => {
                            b.apply_snapshot(s);
                            true
                        }
                        BookUpdate::Delta(d) => b.apply_delta(d),
                    };
                    ok.then(|| (b.top(), b.sequence()))
                };
                if let Some((top, Some(sequence))) = applied {
                    if snapshot {
                        tracing::info!(venue = label, instrument = %update.instrument(), sequence, "book synchronised from snapshot");
                    }
                    let (instrument, bids, asks) = match update {
                        BookUpdate::Snapshot(s) => (s.instrument, s.bids, s.asks),
                        BookUpdate::Delta(d) => (d.instrument, d.bids, d.asks),
                    };
                    self.publish(
                        &self.book_topic,
                        &BookEvent {
                            instrument,
                            sequence,
                            best_bid: top.as_ref().map(|(b, _)| b.price),
                            best_ask: top.as_ref().map(|(_, a)| a.price),
                            bids,
                            asks,
                            snapshot,
                        },
                    );
                }
            }
        }
        Followup::None
    }

    /// Market data is "flowing" when something arrived within `stale_ms` and, for venues
    /// with a book, every book is synchronised.
    pub(crate) fn evaluate(&self, stale_ms: i64) {
        let last = self.last_data_ms.load(Ordering::Relaxed);
        let age = now_ms() - last;
        metrics::gauge!("gekko_gateway_market_data_age_seconds", "venue" => self.label)
            .set(age as f64 / 1000.0);
        let mut unsynced: Vec<String> = lock(&self.books)
            .values()
            .filter(|b| !b.is_synced())
            .map(|b| b.instrument().pair())
            .collect();
        unsynced.sort();
        if self.instruments.is_empty() {
            self.ready
                .set_ready_noting("no instruments: the venue lists none of the configured pairs");
        } else if last == 0 {
            self.ready.set_not_ready("no market data yet");
        } else if age > stale_ms {
            self.ready
                .set_not_ready(format!("market data stale: nothing for {age} ms"));
        } else if !unsynced.is_empty() {
            self.ready
                .set_not_ready(format!("books not synchronised: {}", unsynced.join(", ")));
        } else {
            self.ready.set_ready();
        }
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.is_ready()
    }

    pub(crate) fn book_feed(&self) -> BookFeed {
        self.feed
    }

    pub(crate) fn instruments(&self) -> &[InstrumentId] {
        &self.instruments
    }

    pub(crate) fn book(&self, instrument: &InstrumentId) -> Option<BookSnapshot> {
        let books = lock(&self.books);
        let b = books.get(instrument)?;
        Some(BookSnapshot {
            instrument: instrument.clone(),
            sequence: b.sequence()?,
            bids: b.bids(),
            asks: b.asks(),
            ts_ms: now_ms(),
        })
    }

    /// The price a new order on `side` would meet: the last quote, else the book top.
    pub(crate) fn reference_price(&self, instrument: &InstrumentId, side: Side) -> Option<Decimal> {
        if let Some(q) = lock(&self.last_quotes).get(instrument) {
            return Some(match side {
                Side::Buy => q.ask,
                Side::Sell => q.bid,
            });
        }
        let books = lock(&self.books);
        let (bid, ask) = books.get(instrument)?.top()?;
        Some(match side {
            Side::Buy => ask.price,
            Side::Sell => bid.price,
        })
    }

    pub(crate) fn subscribe_quotes(&self) -> broadcast::Receiver<Quote> {
        self.quotes_tx.subscribe()
    }

    pub(crate) fn last_quotes(&self) -> BTreeMap<String, Quote> {
        lock(&self.last_quotes)
            .iter()
            .map(|(k, v)| (k.pair(), v.clone()))
            .collect()
    }
}

/// Writes market data to the bus from the component's bounded queue.
pub(crate) async fn md_writer(
    bus: Arc<dyn Bus>,
    mut rx: mpsc::Receiver<(StreamSpec, Bytes)>,
    cancel: CancellationToken,
) {
    // Whatever is queued is written together: one pipelined append per stream (in queue
    // order within each stream) instead of one round trip per entry, which capped a
    // gateway at a few hundred ticks per second.
    const MAX_BATCH: usize = 512;
    let mut queued: Vec<(StreamSpec, Bytes)> = Vec::with_capacity(MAX_BATCH);
    loop {
        let first = tokio::select! {
            () = cancel.cancelled() => return,
            m = rx.recv() => match m { Some(m) => m, None => return },
        };
        queued.push(first);
        while queued.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => queued.push(m),
                Err(_) => break,
            }
        }
        let mut by_stream: Vec<(StreamSpec, Vec<Bytes>)> = Vec::new();
        for (spec, bytes) in queued.drain(..) {
            match by_stream.iter_mut().find(|(s, _)| s.name == spec.name) {
                Some((_, v)) => v.push(bytes),
                None => by_stream.push((spec, vec![bytes])),
            }
        }
        for (spec, payloads) in by_stream {
            if let Err(e) = bus.append_batch(&spec, &payloads).await {
                metrics::counter!("gekko_gateway_market_data_dropped_total", "venue" => "bus")
                    .increment(payloads.len() as u64);
                tracing::debug!(error = %e, stream = %spec.name, count = payloads.len(), "market data not written");
            }
        }
    }
}
