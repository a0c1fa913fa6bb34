//! The two chunked NDJSON streams of the stream host: pricing and transactions.
//!
//! Both answer `200` with `Transfer-Encoding: chunked` and then write one JSON object per
//! `\n`-terminated line, flushed per line, for as long as the client stays (reference
//! 3.7). Each connection is a task on the simulator's tracker that feeds its response
//! body through a small channel, so a slow client only slows its own stream; it ends on
//! shutdown, when the client goes away, or abruptly on an injected drop.
//!
//! Pricing: a snapshot of every requested instrument first (unless `snapshot` is
//! false; the `v20` SDK sends `True`), then at most one PRICE per instrument per
//! [`SimConfig::price_window`] (250 ms: 4 prices/s), the newest of the window and only
//! when it changed, and a HEARTBEAT every [`SimConfig::heartbeat_interval`].
//! Transactions: every transaction as it is recorded (published under the venue lock,
//! so in id order), and heartbeats carrying `lastTransactionID`.
//!
//! Faults: `silent_streams` (nothing at all, heartbeats included), `drop_websockets`
//! (every stream ends abruptly: the body errors, so the chunked encoding is never
//! terminated), `malformed_next` (a line that is not JSON), `split_chunks` (a line
//! written as two chunks, split inside the object, 20 ms apart so they arrive in two
//! reads). More than [`SimConfig::max_streams`] open streams are refused with 429.
//!
//! [`SimConfig::price_window`]: super::SimConfig::price_window
//! [`SimConfig::heartbeat_interval`]: super::SimConfig::heartbeat_interval
//! [`SimConfig::max_streams`]: super::SimConfig::max_streams

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::time::{Instant, MissedTickBehavior, interval, interval_at};
use tokio_util::task::TaskTracker;

use super::rest::{error, gate, param, query, render};
use super::state::Shared;
use super::time::{DateFormat, rfc3339};
use crate::harness::bump;

/// Delay between the two halves of a split line.
const SPLIT_GAP: Duration = Duration::from_millis(20);

type Chunk = Result<Bytes, std::io::Error>;

/// Keeps the open-stream count right however a stream ends.
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.harness.stats.ws_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Writes lines to one stream, applying the line faults.
struct Writer {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Chunk>,
    fmt: DateFormat,
}

impl Writer {
    /// Sends one object as a line; `false` when the client is gone.
    async fn line(&self, mut v: Value) -> bool {
        let faults = &self.shared.harness.faults;
        if faults.is_silent() {
            return true;
        }
        render(&mut v, self.fmt);
        let mut bytes = if faults.take_malformed() {
            b"{\"type\":\"PRICE\",\"instrument\":".to_vec()
        } else {
            serde_json::to_vec(&v).unwrap_or_default()
        };
        bytes.push(b'\n');
        bump(&self.shared.harness.stats.ws_messages_sent);
        if faults.take_split() && bytes.len() > 2 {
            bump(&self.shared.harness.stats.lines_split);
            let tail = bytes.split_off(bytes.len() / 2);
            if self.tx.send(Ok(Bytes::from(bytes))).await.is_err() {
                return false;
            }
            tokio::time::sleep(SPLIT_GAP).await;
            return self.tx.send(Ok(Bytes::from(tail))).await.is_ok();
        }
        self.tx.send(Ok(Bytes::from(bytes))).await.is_ok()
    }

    /// Ends the stream abruptly.
    async fn abort(&self) {
        bump(&self.shared.harness.stats.streams_dropped);
        let _ = self
            .tx
            .send(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "stream dropped",
            )))
            .await;
    }
}

/// Which stream a request asked for.
enum Kind {
    Pricing(Vec<String>, bool),
    Transactions,
}

/// The stream host's handler (state: the shared state and the task tracker).
pub(crate) async fn serve(
    State((shared, tracker)): State<(Arc<Shared>, TaskTracker)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (fmt, sub) = match gate(&shared, &headers, uri.path(), false) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let parts: Vec<String> = sub.unwrap_or_default();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let q = query(&uri);
    let kind = match (method == Method::GET, parts.as_slice()) {
        (true, ["pricing", "stream"]) => {
            let v = shared.venue();
            let mut names = Vec::new();
            for n in param(&q, "instruments")
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                if v.instrument(n).is_none() {
                    drop(v);
                    return error(
                        &shared,
                        StatusCode::BAD_REQUEST,
                        None,
                        &format!("Invalid value specified for 'instruments': {n}"),
                    );
                }
                names.push(n.to_owned());
            }
            if names.is_empty() {
                drop(v);
                return error(
                    &shared,
                    StatusCode::BAD_REQUEST,
                    None,
                    "Invalid value specified for 'instruments'",
                );
            }
            let snapshot = !param(&q, "snapshot").is_some_and(|s| s.eq_ignore_ascii_case("false"));
            Kind::Pricing(names, snapshot)
        }
        (true, ["transactions", "stream"]) => Kind::Transactions,
        _ => {
            return error(
                &shared,
                StatusCode::NOT_FOUND,
                None,
                "The requested resource could not be found.",
            );
        }
    };
    let open = shared.harness.stats.ws_open.fetch_add(1, Ordering::Relaxed);
    let guard = OpenGuard(Arc::clone(&shared));
    if open >= u64::from(shared.cfg.max_streams) {
        drop(guard);
        return error(
            &shared,
            StatusCode::TOO_MANY_REQUESTS,
            None,
            "Too many active streams.",
        );
    }
    bump(&shared.harness.stats.ws_connections);
    let (tx, rx) = mpsc::channel::<Chunk>(64);
    let w = Writer {
        shared: Arc::clone(&shared),
        tx,
        fmt,
    };
    // Subscribe before answering, so nothing recorded after the 200 is missed.
    let feed = shared.feed.subscribe();
    match kind {
        Kind::Pricing(names, snapshot) => {
            tracker.spawn(async move {
                let _guard = guard;
                pricing(w, names, snapshot).await;
            });
        }
        Kind::Transactions => {
            tracker.spawn(async move {
                let _guard = guard;
                transactions(w, feed).await;
            });
        }
    }
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|c| (c, rx))
    }));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/octet-stream")],
        body,
    )
        .into_response()
}

async fn pricing(w: Writer, names: Vec<String>, snapshot: bool) {
    let shared = Arc::clone(&w.shared);
    let cfg = &shared.cfg;
    let mut drops = shared.harness.faults.ws_drops();
    let cancel = shared.harness.cancel.clone();
    let mut sent: Vec<i128> = vec![i128::MIN; names.len()];
    if !snapshot {
        let now = shared.venue().price_ns();
        sent.iter_mut().for_each(|s| *s = now);
    }
    let mut window = interval(cfg.price_window);
    window.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut hb = interval_at(
        Instant::now() + cfg.heartbeat_interval,
        cfg.heartbeat_interval,
    );
    hb.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = w.tx.closed() => return,
            r = drops.changed() => {
                if r.is_ok() {
                    w.abort().await;
                }
                return;
            }
            _ = window.tick() => {
                // One PRICE per instrument per window, only when it moved.
                let lines: Vec<(usize, i128, Value)> = {
                    let v = shared.venue();
                    let at = v.price_ns();
                    names
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| sent.get(*i).is_some_and(|s| *s != at))
                        .filter_map(|(i, n)| v.price(n).map(|p| (i, at, p)))
                        .collect()
                };
                for (i, at, line) in lines {
                    if shared.harness.faults.is_silent() {
                        break;
                    }
                    if !w.line(line).await {
                        return;
                    }
                    if let Some(s) = sent.get_mut(i) {
                        *s = at;
                    }
                }
            }
            _ = hb.tick() => {
                let line = json!({"type": "HEARTBEAT", "time": rfc3339(shared.now_ns())});
                if !w.line(line).await {
                    return;
                }
            }
        }
    }
}

async fn transactions(w: Writer, mut feed: broadcast::Receiver<Value>) {
    let shared = Arc::clone(&w.shared);
    let mut drops = shared.harness.faults.ws_drops();
    let cancel = shared.harness.cancel.clone();
    let period = shared.cfg.heartbeat_interval;
    let mut hb = interval_at(Instant::now() + period, period);
    hb.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = w.tx.closed() => return,
            r = drops.changed() => {
                if r.is_ok() {
                    w.abort().await;
                }
                return;
            }
            t = feed.recv() => match t {
                Ok(tx) => {
                    if !w.line(tx).await {
                        return;
                    }
                }
                // Too slow to keep up: end the stream; the client catches up through
                // `/changes` after it reconnects.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    w.abort().await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = hb.tick() => {
                let last = shared.venue().last_tx();
                let line = json!({"type": "HEARTBEAT", "lastTransactionID": last.to_string(), "time": rfc3339(shared.now_ns())});
                if !w.line(line).await {
                    return;
                }
            }
        }
    }
}
