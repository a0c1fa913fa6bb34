//! The transaction stream: [`transaction_stream`] on `/v3/accounts/{id}/transactions/stream`,
//! and the catch-up through `/changes` that keeps it from losing a fill.
//!
//! The stream sends every transaction of the account as it happens, and a heartbeat
//! carrying `lastTransactionID` every few seconds. It has no replay: what happens while
//! it is disconnected is never sent on it. So the pump keeps a **cursor**, the highest
//! transaction id it has accounted for (from transactions, heartbeats, and catch-ups),
//! and asks [`OandaCatchUp`] (the adapter's `GET …/changes?sinceTransactionID=<cursor>`)
//! for what it missed:
//!
//! * after every reconnect (`Connected` with a cursor known);
//! * when a heartbeat's `lastTransactionID` is above the cursor: a transaction was
//!   missed while connected (a line that did not parse, say), counted as a gap
//!   (`gekko_venue_sequence_gaps_total`);
//! * on the first connect, when the caller gave a starting id ([`TransactionStart::since`]);
//!   otherwise the first transaction or heartbeat sets the cursor.
//!
//! While a catch-up is in flight, transactions from the stream wait in a bounded buffer.
//! The catch-up's transactions are applied oldest first, then the buffered ones; any
//! transaction whose id is not above the cursor is a duplicate and is dropped, so an
//! overlap between `/changes` and the stream yields each order update and fill once. A
//! failed catch-up is counted (`gekko_venue_catch_ups_total{result="error"}`) and
//! retried with backoff; the buffer overflowing only means another catch-up after this
//! one, since the cursor never moves past a transaction that was not applied.
//!
//! Transactions become events through the crate's one mapping, [`OrderTracker`]: a
//! create is `UserEvent::Order` (`New`), a fill `Order` then `Fill` (trade id = the
//! `ORDER_FILL` id, so the gateway's fill store de-duplicates it against REST), a cancel
//! `Order` (`Cancelled`/`Expired`), a reject `Order` (`Rejected`, with the venue's
//! reason). Other types (financing, transfers) move the cursor and yield nothing.
//! Malformed lines are counted (`gekko_venue_malformed_messages_total`) and skipped; the
//! next heartbeat then shows the gap and a catch-up fetches the transaction.
//!
//! Concurrency: one task owns the connection (the supervisor) and one runs the pump; they
//! share a child token of the caller's. The pump task is the only owner of the tracker,
//! the cursor and the buffer, and awaits at most one catch-up at a time inside its own
//! `select!`, so stream lines keep being read (into the buffer) while `/changes` answers.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use gekko_net::retry::{Backoff, BackoffConfig};
use gekko_net::{StaticSubscriptions, StreamEvent, run_line_stream};
use gekko_venue::{StreamCtx, UserEvent};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::connect::{self, EVENT_CHANNEL, LINE_CHANNEL, STALE_REASON, VENUE};
use super::messages::{OandaTransactionLine, parse_transaction_line, transaction_seq};
use crate::common::OrderTracker;
use crate::common::models::{ChangesResponse, OandaTransaction};
use crate::config::OandaConfig;

/// The `stream` metric label.
const STREAM: &str = "transactions";

/// Counter: catch-ups through `/changes`; labels `venue`, `stream`, `result` (`ok`,
/// `error`).
pub const METRIC_CATCH_UPS: &str = "gekko_venue_catch_ups_total";
/// Counter: transactions applied from a catch-up that the stream had not delivered;
/// labels `venue`, `stream`.
pub const METRIC_CAUGHT_UP: &str = "gekko_venue_caught_up_transactions_total";
/// Counter: heartbeats whose `lastTransactionID` showed a missed transaction; labels
/// `venue`, `stream`.
pub const METRIC_GAPS: &str = "gekko_venue_sequence_gaps_total";

/// Stream transactions held while a catch-up is in flight.
const MAX_BUFFERED: usize = 10_000;

/// Fetches what happened after a transaction id: called with the id, it answers the raw
/// JSON body of `GET /v3/accounts/{id}/changes?sinceTransactionID=<id>` (a
/// `{"changes": {.., "transactions": [..]}, "lastTransactionID": ".."}` object), or why
/// it could not. The adapter builds it over its REST client, so the request goes through
/// the REST pipeline's rate limit, breaker and retries.
pub type OandaCatchUp =
    Arc<dyn Fn(String) -> BoxFuture<'static, Result<String, String>> + Send + Sync>;

/// Where the transaction stream starts.
#[derive(Debug, Clone)]
pub struct TransactionStart {
    /// The mapping's memory: built with the account currency (fees are charged in it)
    /// and seeded with the open orders the adapter knows, so a cancel or fill of an
    /// order created before the stream started is described in full.
    pub tracker: OrderTracker,
    /// The last transaction id the caller has already accounted for (e.g. the
    /// `lastTransactionID` of the REST reconciliation at start): the first connect
    /// catches up from it. `None`: the stream's first transaction or heartbeat sets the
    /// starting point.
    pub since: Option<String>,
}

impl TransactionStart {
    /// A fresh tracker charging fees in `home_currency`, no starting id.
    #[must_use]
    pub fn new(home_currency: &str) -> Self {
        Self {
            tracker: OrderTracker::new(home_currency),
            since: None,
        }
    }
}

/// Starts the transaction stream on `ctx`: order updates and fills, with the catch-up
/// of the module docs. Stops when `ctx.cancel` fires or the receiver is dropped; an
/// HTTP client that cannot be built (extra roots that do not parse) is reported as one
/// `Disconnected` before the receiver closes.
pub fn transaction_stream(
    cfg: &OandaConfig,
    catch_up: OandaCatchUp,
    start: TransactionStart,
    ctx: &StreamCtx,
) -> mpsc::Receiver<UserEvent> {
    let (out, rx) = mpsc::channel(EVENT_CHANNEL);
    let client = match connect::client(cfg) {
        Ok(c) => c,
        Err(reason) => {
            tracing::error!(%reason, "OANDA transaction stream cannot start");
            let _ = out.try_send(UserEvent::Disconnected { reason });
            return rx;
        }
    };
    let request = connect::request(
        cfg,
        client,
        connect::account_path(cfg, "transactions/stream"),
        String::new(),
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
    let pump = TransactionPump::new(start);
    ctx.spawn(drive(pump, line_rx, out, catch_up, stop));
    rx
}

/// The pump task: stream events and catch-up answers in, user events out.
async fn drive(
    mut pump: TransactionPump,
    mut lines: mpsc::Receiver<StreamEvent>,
    out: mpsc::Sender<UserEvent>,
    catch_up: OandaCatchUp,
    stop: CancellationToken,
) {
    let mut backoff = Backoff::new(BackoffConfig::new(
        Duration::from_millis(250),
        Duration::from_secs(10),
    ));
    let mut inflight: Option<BoxFuture<'static, Result<String, String>>> = None;
    let mut retry_at: Option<Instant> = None;
    'outer: loop {
        if inflight.is_none()
            && retry_at.is_none()
            && let Some(since) = pump.next_catch_up()
        {
            tracing::info!(since = %since, "OANDA transaction stream catching up through /changes");
            inflight = Some(catch_up(since));
        }
        let mut events = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            () = out.closed() => break,
            r = async { inflight.as_mut().expect("guarded by is_some").await }, if inflight.is_some() => {
                inflight = None;
                match pump.on_catch_up(r) {
                    Ok(events) => {
                        backoff.reset();
                        events
                    }
                    Err(()) => {
                        retry_at = Some(Instant::now() + backoff.next_delay());
                        Vec::new()
                    }
                }
            }
            () = sleep_until(retry_at), if retry_at.is_some() => {
                retry_at = None;
                Vec::new()
            }
            ev = lines.recv() => match ev {
                Some(ev) => pump.on_event(ev),
                None => break,
            },
        };
        // After the events it accounts for, so the engine stores it once they are processed.
        events.extend(pump.cursor_moved());
        for ev in events {
            if out.send(ev).await.is_err() {
                break 'outer;
            }
        }
    }
    stop.cancel();
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Where the catch-up stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CatchUp {
    /// Nothing to fetch.
    Idle,
    /// A fetch is due (the driver starts it).
    Wanted,
    /// A fetch is in flight; `again`: another is due after it.
    InFlight { again: bool },
}

/// The transaction stream's state: the tracker, the cursor, the catch-up and its
/// buffer. Pure: the driver does the I/O.
#[derive(Debug)]
pub(crate) struct TransactionPump {
    tracker: OrderTracker,
    /// The highest transaction id accounted for.
    cursor: Option<u64>,
    /// The cursor last reported as [`UserEvent::Cursor`] (or given at start).
    reported: Option<u64>,
    catch_up: CatchUp,
    buffer: VecDeque<Box<OandaTransaction>>,
}

impl TransactionPump {
    pub(crate) fn new(start: TransactionStart) -> Self {
        let cursor = start.since.as_deref().and_then(transaction_seq);
        Self {
            tracker: start.tracker,
            cursor,
            reported: cursor,
            // A starting id means: fetch what followed it once connected.
            catch_up: CatchUp::Idle,
            buffer: VecDeque::new(),
        }
    }

    /// A [`UserEvent::Cursor`] when the cursor moved since the last one: the resume point
    /// the gateway stores, to catch up from after a restart.
    pub(crate) fn cursor_moved(&mut self) -> Option<UserEvent> {
        if self.cursor == self.reported {
            return None;
        }
        self.reported = self.cursor;
        self.cursor.map(|c| UserEvent::Cursor(c.to_string()))
    }

    /// Maps one transport event.
    pub(crate) fn on_event(&mut self, ev: StreamEvent) -> Vec<UserEvent> {
        match ev {
            StreamEvent::Connected => {
                if self.cursor.is_some() {
                    self.want_catch_up();
                }
                vec![UserEvent::Connected]
            }
            StreamEvent::Disconnected { reason } => vec![UserEvent::Disconnected { reason }],
            StreamEvent::Stale => {
                connect::count_stale(STREAM);
                vec![UserEvent::Disconnected {
                    reason: STALE_REASON.to_owned(),
                }]
            }
            StreamEvent::Heartbeat => Vec::new(),
            StreamEvent::Text(line) => self.on_line(&line),
        }
    }

    /// Maps one line.
    pub(crate) fn on_line(&mut self, line: &str) -> Vec<UserEvent> {
        match parse_transaction_line(line) {
            Ok(OandaTransactionLine::Heartbeat {
                last_transaction_id,
                ..
            }) => {
                self.on_heartbeat(&last_transaction_id);
                Vec::new()
            }
            Ok(OandaTransactionLine::Transaction(tx)) => {
                if self.catch_up == CatchUp::Idle {
                    self.apply(&tx)
                } else {
                    self.hold(tx);
                    Vec::new()
                }
            }
            Err(e) => {
                connect::count_malformed(STREAM, &e);
                Vec::new()
            }
        }
    }

    fn on_heartbeat(&mut self, last: &str) {
        let Some(last) = transaction_seq(last) else {
            return;
        };
        match self.cursor {
            None => self.cursor = Some(last),
            Some(c) if last > c && self.catch_up == CatchUp::Idle => {
                metrics::counter!(METRIC_GAPS, "venue" => VENUE, "stream" => STREAM).increment(1);
                tracing::warn!(
                    cursor = c,
                    last,
                    "OANDA heartbeat shows missed transactions"
                );
                self.want_catch_up();
            }
            Some(_) => {}
        }
    }

    /// Keeps a stream transaction until the catch-up in flight is applied.
    fn hold(&mut self, tx: Box<OandaTransaction>) {
        if self.buffer.len() < MAX_BUFFERED {
            self.buffer.push_back(tx);
        } else {
            // Dropped, but the cursor stays below it: one more catch-up fetches it.
            tracing::warn!(id = %tx.id, "OANDA catch-up buffer full; fetching again after this catch-up");
            self.want_catch_up();
        }
    }

    fn want_catch_up(&mut self) {
        self.catch_up = match self.catch_up {
            CatchUp::Idle | CatchUp::Wanted => CatchUp::Wanted,
            CatchUp::InFlight { .. } => CatchUp::InFlight { again: true },
        };
    }

    /// The id to catch up from, when a catch-up is due now (it is then in flight).
    pub(crate) fn next_catch_up(&mut self) -> Option<String> {
        if self.catch_up != CatchUp::Wanted {
            return None;
        }
        match self.cursor {
            Some(c) => {
                self.catch_up = CatchUp::InFlight { again: false };
                Some(c.to_string())
            }
            None => {
                self.catch_up = CatchUp::Idle;
                None
            }
        }
    }

    /// Applies a catch-up's answer. `Err(())`: it failed (counted and logged); the
    /// driver retries after a backoff.
    pub(crate) fn on_catch_up(
        &mut self,
        answer: Result<String, String>,
    ) -> Result<Vec<UserEvent>, ()> {
        let again = matches!(self.catch_up, CatchUp::InFlight { again: true });
        let parsed = answer.and_then(|body| {
            serde_json::from_str::<ChangesResponse>(&body).map_err(|e| {
                format!(
                    "/changes answer does not parse ({e}): {}",
                    gekko_net::http::truncate(&body, 256)
                )
            })
        });
        let changes = match parsed {
            Ok(c) => c,
            Err(e) => {
                metrics::counter!(METRIC_CATCH_UPS, "venue" => VENUE, "stream" => STREAM, "result" => "error").increment(1);
                tracing::warn!(error = %e, "OANDA catch-up failed; retrying");
                self.catch_up = CatchUp::Wanted;
                return Err(());
            }
        };
        metrics::counter!(METRIC_CATCH_UPS, "venue" => VENUE, "stream" => STREAM, "result" => "ok")
            .increment(1);
        let mut txs = changes.changes.transactions;
        txs.sort_by_key(|t| transaction_seq(&t.id).unwrap_or(u64::MAX));
        let mut out = Vec::new();
        let mut recovered = 0_u64;
        for tx in &txs {
            let before = self.cursor;
            out.extend(self.apply(tx));
            if self.cursor != before {
                recovered += 1;
            }
        }
        if recovered > 0 {
            metrics::counter!(METRIC_CAUGHT_UP, "venue" => VENUE, "stream" => STREAM)
                .increment(recovered);
            tracing::info!(
                recovered,
                "OANDA catch-up applied transactions the stream had missed"
            );
        }
        if let Some(last) = transaction_seq(&changes.last_transaction_id) {
            self.cursor = Some(self.cursor.map_or(last, |c| c.max(last)));
        }
        if again {
            self.catch_up = CatchUp::Wanted;
        } else {
            self.catch_up = CatchUp::Idle;
            while let Some(tx) = self.buffer.pop_front() {
                out.extend(self.apply(&tx));
            }
        }
        Ok(out)
    }

    /// Folds one transaction in, unless it is not above the cursor (already applied).
    fn apply(&mut self, tx: &OandaTransaction) -> Vec<UserEvent> {
        if let Some(seq) = transaction_seq(&tx.id) {
            if self.cursor.is_some_and(|c| seq <= c) {
                return Vec::new();
            }
            self.cursor = Some(seq);
        }
        let outcome = self.tracker.apply(tx);
        let mut out = Vec::with_capacity(2);
        out.extend(outcome.order.map(UserEvent::Order));
        out.extend(outcome.fill.map(UserEvent::Fill));
        out
    }
}

#[cfg(test)]
mod tests {
    use gekko_core::OrderStatus;
    use rust_decimal_macros::dec;

    use super::*;

    fn lines() -> Vec<String> {
        let path = format!(
            "{}/test_data/stream_transactions.jsonl",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn pump() -> TransactionPump {
        TransactionPump::new(TransactionStart::new("USD"))
    }

    fn changes(lines: &[String], last: &str) -> String {
        format!(
            r#"{{"changes":{{"ordersCreated":[],"transactions":[{}]}},"state":{{}},"lastTransactionID":"{last}"}}"#,
            lines.join(",")
        )
    }

    #[test]
    fn creates_fills_cancels_and_rejects_become_orders_and_fills() {
        let l = lines();
        let mut p = pump();
        assert_eq!(p.on_event(StreamEvent::Connected), [UserEvent::Connected]);
        assert_eq!(p.next_catch_up(), None, "nothing to catch up from yet");
        let ev = p.on_line(&l[0]);
        let [UserEvent::Order(created)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        assert_eq!(created.status, OrderStatus::New);
        assert_eq!(
            created.client_order_id.as_str(),
            "gk0123456789abcdef0123456789abcdef"
        );
        let ev = p.on_line(&l[1]);
        let [UserEvent::Order(filled), UserEvent::Fill(f)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        assert_eq!(filled.status, OrderStatus::Filled);
        assert_eq!(
            (f.trade_id.as_str(), f.price, f.qty),
            ("6357", dec!(1.09155), dec!(100))
        );
        assert_eq!(f.fee_asset, "USD");
        // The same fill again (a replay) is dropped.
        assert!(p.on_line(&l[1]).is_empty());
        assert!(p.on_line(&l[2]).is_empty(), "heartbeat at the cursor");
        assert_eq!(p.next_catch_up(), None);
        let ev = p.on_line(&l[3]);
        assert!(matches!(&ev[..], [UserEvent::Order(o)] if o.price == Some(dec!(107.500))));
        let ev = p.on_line(&l[4]);
        assert!(
            matches!(&ev[..], [UserEvent::Order(o)] if o.status == OrderStatus::Cancelled && o.qty == dec!(2500)),
            "{ev:?}"
        );
        let ev = p.on_line(&l[5]);
        assert!(
            matches!(&ev[..], [UserEvent::Order(o)] if o.status == OrderStatus::Rejected
                && o.reject_reason.as_deref() == Some("INSUFFICIENT_MARGIN")),
            "{ev:?}"
        );
        assert!(
            p.on_line(&l[6]).is_empty(),
            "financing moves the cursor only"
        );
        assert!(p.on_line(&l[7]).is_empty());
        assert_eq!(p.cursor, Some(6361));
        assert!(
            p.on_line("{\"id\":").is_empty(),
            "malformed lines are skipped"
        );
    }

    #[test]
    fn a_reconnect_catches_up_in_order_without_duplicates() {
        let l = lines();
        let mut p = pump();
        p.on_event(StreamEvent::Connected);
        p.on_line(&l[0]); // create 6356
        p.on_event(StreamEvent::Disconnected {
            reason: "stream ended".into(),
        });
        // While disconnected the order filled (6357) and a limit order was placed (6358).
        assert_eq!(p.on_event(StreamEvent::Connected), [UserEvent::Connected]);
        assert_eq!(p.next_catch_up().as_deref(), Some("6356"));
        assert_eq!(p.next_catch_up(), None, "one at a time");
        // The new connection delivers 6358 and 6359 before /changes answers.
        assert!(p.on_line(&l[3]).is_empty());
        assert!(p.on_line(&l[4]).is_empty());
        let body = changes(&[l[3].clone(), l[1].clone()], "6358");
        let ev = p.on_catch_up(Ok(body)).unwrap();
        let kinds: Vec<_> = ev
            .iter()
            .map(|e| match e {
                UserEvent::Order(o) => format!("order {} {:?}", o.venue_order_id, o.status),
                UserEvent::Fill(f) => format!("fill {}", f.trade_id),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "order 6356 Filled",
                "fill 6357",
                "order 6358 New",
                // 6358 again from the buffer is a duplicate; 6359 is new.
                "order 6358 Cancelled",
            ]
        );
        assert_eq!(p.cursor, Some(6359));
        assert_eq!(p.catch_up, CatchUp::Idle);
    }

    #[test]
    fn a_heartbeat_ahead_of_the_cursor_catches_up_and_failures_retry() {
        let l = lines();
        let mut p = TransactionPump::new(TransactionStart {
            since: Some("6355".into()),
            ..TransactionStart::new("USD")
        });
        // A starting id: the first connect catches up from it.
        p.on_event(StreamEvent::Connected);
        assert_eq!(p.next_catch_up().as_deref(), Some("6355"));
        assert!(p.on_catch_up(Err("HTTP 503".into())).is_err());
        assert_eq!(p.next_catch_up().as_deref(), Some("6355"), "retried");
        assert!(p.on_catch_up(Ok("not json".into())).is_err());
        assert_eq!(p.next_catch_up().as_deref(), Some("6355"));
        let ev = p.on_catch_up(Ok(changes(&[l[0].clone()], "6356"))).unwrap();
        assert_eq!(ev.len(), 1);
        // The fill line is lost (malformed); the next heartbeat shows it.
        assert!(p.on_line(&l[1][..40]).is_empty());
        assert!(p.on_line(&l[2]).is_empty());
        assert_eq!(p.next_catch_up().as_deref(), Some("6356"));
        // A second reason to catch up while one is in flight runs another after it.
        p.on_event(StreamEvent::Connected);
        let ev = p.on_catch_up(Ok(changes(&[l[1].clone()], "6357"))).unwrap();
        assert!(
            matches!(&ev[..], [UserEvent::Order(_), UserEvent::Fill(f)] if f.trade_id == "6357")
        );
        assert_eq!(p.next_catch_up().as_deref(), Some("6357"));
        assert!(p.on_catch_up(Ok(changes(&[], "6357"))).unwrap().is_empty());
        assert_eq!(p.next_catch_up(), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        /// The pumps past the parser (ids, the tracker, the catch-up) on fixture lines
        /// with bytes cut out and extreme ids: never a panic.
        #[test]
        fn the_pumps_never_panic(
            idx in 0usize..8,
            cut in proptest::prelude::any::<usize>(),
            len in 0usize..8,
            id in proptest::prelude::any::<u64>(),
        ) {
            let l = lines();
            let line = l[idx].replace("\"6357\"", &format!("\"{id}\""));
            let mut bytes = line.into_bytes();
            let at = cut % bytes.len();
            bytes.drain(at..(at + len).min(bytes.len()));
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let mut p = pump();
            p.on_event(StreamEvent::Connected);
            for line in &l[..3] {
                p.on_line(line);
            }
            p.on_line(&text);
            p.on_event(StreamEvent::Connected);
            let _ = p.next_catch_up();
            let _ = p.on_catch_up(Ok(changes(std::slice::from_ref(&text), &id.to_string())));
            p.on_line(&text);
            let mut prices = crate::stream::pricing::PricingPump::new(&[
                gekko_core::InstrumentId::new(gekko_core::VenueId::Oanda, "EUR", "USD"),
            ]);
            prices.on_line(&text);
        }
    }
}
