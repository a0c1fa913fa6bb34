//! The pricing stream: [`pricing_stream`] on `/v3/accounts/{id}/pricing/stream`.
//!
//! One chunked line stream from `gekko_net::line` (reconnect with backoff, lines joined
//! across chunks, the silence watchdog) and a [`gekko_net::relay()`] pump that maps each
//! line to gekko events:
//!
//! * a `PRICE` line of an instrument asked for becomes a [`Quote`] (the best bid and ask
//!   and their liquidity; none when a side is empty) and a [`BookUpdate::Snapshot`] of
//!   the levels it carries. OANDA sends a few levels per side and no deltas, so the
//!   book kind is "top levels only": every price replaces the book. Its `sequence`
//!   counts the prices of that instrument in this process, so it only ever increases;
//!   its time is the price's `time`. Non-tradeable prices (the market is closed) are
//!   reported like any other: they are the venue's current prices;
//! * a `HEARTBEAT` line is [`MarketEvent::Heartbeat`];
//! * the watchdog's reconnect (nothing, heartbeats included, within `stale_after`) is
//!   counted (`gekko_venue_stream_stale_total`) and reported as
//!   [`MarketEvent::Disconnected`]; the reconnect that follows as
//!   [`MarketEvent::Connected`], after which `snapshot=true` (the default) sends every
//!   instrument's current price again;
//! * a line that does not parse is counted (`gekko_venue_malformed_messages_total`) and
//!   skipped. No book state depends on it: the next price replaces the book anyway.
//!
//! Concurrency: one task owns the connection (the supervisor) and one runs the pump; they
//! share a child token of the caller's, so either stopping stops the other. Both are
//! spawned on the caller's [`StreamCtx`] tracker. The pump owns the per-instrument
//! sequence counters, so it needs no lock.

use std::collections::HashMap;

use gekko_core::{BookLevel, BookSnapshot, InstrumentId, Quote};
use gekko_net::{StaticSubscriptions, StreamEvent, receiver_stream, relay, run_line_stream};
use gekko_venue::{BookUpdate, MarketEvent, StreamCtx};
use tokio::sync::mpsc;

use super::connect::{self, EVENT_CHANNEL, LINE_CHANNEL, STALE_REASON};
use super::messages::{OandaPrice, OandaPricingLine, PriceLevel, parse_pricing_line};
use crate::common::{instrument_name, parse_time_ms};
use crate::config::OandaConfig;

/// The `stream` metric label.
const STREAM: &str = "pricing";

/// Starts the pricing stream for `instruments` on `ctx`; see the module docs. The stream
/// stops when `ctx.cancel` fires or the receiver is dropped.
///
/// With no instruments the receiver closes at once; when the HTTP client cannot be built
/// (extra roots that do not parse, see [`OandaConfig::validate`]) it gets one
/// `Disconnected` naming the problem and then closes.
pub fn pricing_stream(
    cfg: &OandaConfig,
    instruments: &[InstrumentId],
    ctx: &StreamCtx,
) -> mpsc::Receiver<MarketEvent> {
    let (out, rx) = mpsc::channel(EVENT_CHANNEL);
    if instruments.is_empty() {
        return rx;
    }
    let client = match connect::client(cfg) {
        Ok(c) => c,
        Err(reason) => {
            tracing::error!(%reason, "OANDA pricing stream cannot start");
            let _ = out.try_send(MarketEvent::Disconnected { reason });
            return rx;
        }
    };
    let mut pump = PricingPump::new(instruments);
    let mut names: Vec<&str> = pump.wanted.keys().map(String::as_str).collect();
    names.sort_unstable();
    let query = format!("instruments={}", names.join(","));
    let request = connect::request(
        cfg,
        client,
        connect::account_path(cfg, "pricing/stream"),
        query,
    );
    let stop = ctx.cancel.child_token();
    let (line_tx, line_rx) = mpsc::channel(LINE_CHANNEL);
    ctx.spawn(run_line_stream(
        connect::line_config(cfg, STREAM),
        request,
        StaticSubscriptions::default(),
        line_tx,
        stop.clone(),
    ));
    ctx.spawn(relay(receiver_stream(line_rx), out, stop, move |ev| {
        pump.on_event(ev)
    }));
    rx
}

/// One instrument the stream carries.
#[derive(Debug)]
struct Wanted {
    instrument: InstrumentId,
    /// Prices reported so far: the next snapshot's sequence.
    sequence: u64,
}

/// The pricing stream's mapping from lines to events.
#[derive(Debug)]
pub(crate) struct PricingPump {
    /// By wire name (`EUR_USD`).
    wanted: HashMap<String, Wanted>,
}

impl PricingPump {
    pub(crate) fn new(instruments: &[InstrumentId]) -> Self {
        Self {
            wanted: instruments
                .iter()
                .map(|i| {
                    let w = Wanted {
                        instrument: i.clone(),
                        sequence: 0,
                    };
                    (instrument_name(i), w)
                })
                .collect(),
        }
    }

    /// Maps one transport event to the events it yields.
    pub(crate) fn on_event(&mut self, ev: StreamEvent) -> Vec<MarketEvent> {
        match ev {
            StreamEvent::Connected => vec![MarketEvent::Connected],
            StreamEvent::Disconnected { reason } => vec![MarketEvent::Disconnected { reason }],
            StreamEvent::Stale => {
                connect::count_stale(STREAM);
                vec![MarketEvent::Disconnected {
                    reason: STALE_REASON.to_owned(),
                }]
            }
            StreamEvent::Heartbeat => vec![MarketEvent::Heartbeat],
            StreamEvent::Text(line) => self.on_line(&line),
        }
    }

    /// Maps one line.
    pub(crate) fn on_line(&mut self, line: &str) -> Vec<MarketEvent> {
        match parse_pricing_line(line) {
            Ok(OandaPricingLine::Price(p)) => self.on_price(p),
            Ok(OandaPricingLine::Heartbeat { .. }) => vec![MarketEvent::Heartbeat],
            Ok(OandaPricingLine::Other { kind }) => {
                tracing::debug!(%kind, "OANDA pricing line of another type; ignored");
                Vec::new()
            }
            Err(e) => {
                connect::count_malformed(STREAM, &e);
                Vec::new()
            }
        }
    }

    fn on_price(&mut self, p: OandaPrice<'_>) -> Vec<MarketEvent> {
        // Names are case-insensitive on the venue; the wire normally matches ours.
        let key = if p.instrument.bytes().any(|b| b.is_ascii_lowercase()) {
            std::borrow::Cow::Owned(p.instrument.to_ascii_uppercase())
        } else {
            std::borrow::Cow::Borrowed(p.instrument.as_ref())
        };
        let Some(w) = self.wanted.get_mut(key.as_ref()) else {
            tracing::debug!(instrument = %p.instrument, "price of an instrument not asked for; ignored");
            return Vec::new();
        };
        price_events(w, &p)
    }
}

/// The quote and the top-levels snapshot of one price.
fn price_events(w: &mut Wanted, p: &OandaPrice<'_>) -> Vec<MarketEvent> {
    let ts_ms = parse_time_ms(&p.time).unwrap_or_else(gekko_core::now_ms);
    w.sequence += 1;
    let mut out = Vec::with_capacity(2);
    if let (Some(bid), Some(ask)) = (p.bids.first(), p.asks.first()) {
        out.push(MarketEvent::Quote(Quote {
            instrument: w.instrument.clone(),
            bid: bid.price,
            bid_size: bid.liquidity,
            ask: ask.price,
            ask_size: ask.liquidity,
            ts_ms,
        }));
    }
    let mut bids = levels(&p.bids);
    let mut asks = levels(&p.asks);
    // OANDA lists the best level first; a feed that does not is put in book order.
    if !bids.is_sorted_by(|a, b| a.price >= b.price) {
        bids.sort_by_key(|l| std::cmp::Reverse(l.price));
    }
    if !asks.is_sorted_by(|a, b| a.price <= b.price) {
        asks.sort_by_key(|l| l.price);
    }
    out.push(MarketEvent::Book(BookUpdate::Snapshot(BookSnapshot {
        instrument: w.instrument.clone(),
        sequence: w.sequence,
        bids,
        asks,
        ts_ms,
    })));
    out
}

fn levels(l: &[PriceLevel]) -> Vec<BookLevel> {
    l.iter()
        // A level with nothing on it is no level of a snapshot.
        .filter(|l| !l.liquidity.is_zero())
        .map(|l| BookLevel {
            price: l.price,
            qty: l.liquidity,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use gekko_core::VenueId;
    use rust_decimal_macros::dec;

    use super::*;

    fn lines() -> Vec<String> {
        let path = format!(
            "{}/test_data/stream_pricing.jsonl",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn eur() -> InstrumentId {
        InstrumentId::new(VenueId::Oanda, "EUR", "USD")
    }

    #[test]
    fn a_price_becomes_a_quote_and_a_top_levels_snapshot() {
        let l = lines();
        let mut p = PricingPump::new(&[eur()]);
        assert_eq!(p.on_event(StreamEvent::Connected), [MarketEvent::Connected]);
        let ev = p.on_line(&l[0]);
        let [
            MarketEvent::Quote(q),
            MarketEvent::Book(BookUpdate::Snapshot(s)),
        ] = ev.as_slice()
        else {
            panic!("{ev:?}")
        };
        assert_eq!(q.instrument, eur());
        assert_eq!(
            (q.bid, q.bid_size, q.ask, q.ask_size),
            (dec!(1.09144), dec!(1000000), dec!(1.09155), dec!(1000000))
        );
        assert_eq!(q.ts_ms, 1_588_601_934_652);
        assert_eq!(s.sequence, 1);
        assert_eq!(
            s.bids,
            [
                BookLevel {
                    price: dec!(1.09144),
                    qty: dec!(1000000)
                },
                BookLevel {
                    price: dec!(1.09143),
                    qty: dec!(2000000)
                }
            ]
        );
        assert_eq!(s.asks.len(), 1);
        assert_eq!(p.on_line(&l[1]), [MarketEvent::Heartbeat]);
        // USD_JPY was not asked for.
        assert!(p.on_line(&l[2]).is_empty());
        // The next EUR_USD price (not tradeable) moves the sequence on.
        let ev = p.on_line(&l[3]);
        let [_, MarketEvent::Book(BookUpdate::Snapshot(s))] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        assert_eq!(s.sequence, 2);
    }

    #[test]
    fn one_sided_unsorted_and_malformed_prices() {
        let mut p = PricingPump::new(&[eur()]);
        let one_sided = r#"{"type":"PRICE","instrument":"EUR_USD","time":"2020-05-04T14:18:54Z","bids":[{"price":"1.1","liquidity":1},{"price":"1.2","liquidity":2}],"asks":[]}"#;
        let ev = p.on_line(one_sided);
        let [MarketEvent::Book(BookUpdate::Snapshot(s))] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        assert_eq!(s.bids[0].price, dec!(1.2), "best bid first");
        assert!(s.asks.is_empty());
        assert!(p.on_line("{\"type\":\"PRICE\"").is_empty());
        assert!(p.on_line("\u{0}garbage").is_empty());
        assert!(
            p.on_line(r#"{"type":"PRICE","instrument":"EUR_USD","bids":[{"price":"one"}]}"#)
                .is_empty()
        );
        assert_eq!(
            p.on_event(StreamEvent::Stale),
            [MarketEvent::Disconnected {
                reason: STALE_REASON.to_owned()
            }]
        );
        assert_eq!(p.on_event(StreamEvent::Heartbeat), [MarketEvent::Heartbeat]);
    }
}
