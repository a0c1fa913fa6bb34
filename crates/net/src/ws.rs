//! A websocket client that reconnects forever, answers pings and detects silent streams.
//!
//! The most common complaint about trading bots is a stream that stops and never comes
//! back (hummingbot#7404, #8250, btoandav20#23, ccxt#7858), or one that stays "connected"
//! while no data flows (Lean#4045). So this client:
//!
//! * reconnects with exponential backoff and full jitter until its `CancellationToken`
//!   fires; every way a session can end (close frame, error, EOF, stale, max age) leads back
//!   to a reconnect, never to a silent exit;
//! * asks for a **fresh URL on every connect** (a closure), because some streams embed a
//!   short-lived credential (Binance.US user stream `listenKey`);
//! * sends the subscription messages after every connect;
//! * answers pings (tungstenite queues the pong; this loop flushes it at once);
//! * runs a watchdog: when no frame at all (data, ping or pong) arrives within
//!   `stale_after`, it reports [`WsEvent::Stale`] and reconnects;
//! * can be told to reconnect from outside (e.g. the listen key was reported expired);
//! * counts `gekko_venue_ws_reconnects_total{venue,stream}` and keeps
//!   `gekko_venue_stream_staleness_seconds{venue,stream}` current.
//!
//! Concurrency: one task owns the socket and does everything (read, pong, subscribe,
//! timers) in one `select!` loop, so there is no split sink/stream and no lock. Events go out
//! on a bounded `mpsc` channel: a consumer that falls behind slows reading down (the venue
//! buffers, and eventually disconnects us, which we survive) rather than growing memory
//! without bound. A dropped receiver stops the loop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::retry::{Backoff, BackoffConfig};

/// Counter: reconnect attempts after the first connect; labels `venue`, `stream`.
pub const METRIC_RECONNECTS: &str = "gekko_venue_ws_reconnects_total";
/// Gauge: seconds since the last frame; labels `venue`, `stream`.
pub const METRIC_STALENESS: &str = "gekko_venue_stream_staleness_seconds";
/// Gauge: 1 while connected, else 0; labels `venue`, `stream`.
pub const METRIC_CONNECTED: &str = "gekko_venue_ws_connected";

/// What the websocket client reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    /// Connected and subscriptions sent. Consumers resynchronise state (books, orders).
    Connected,
    /// A text frame (binary frames that are valid UTF-8 are reported as text too).
    Text(String),
    /// A ping or pong arrived: the connection is alive even if no data flows.
    Heartbeat,
    /// The connection ended or could not be made; a reconnect follows after a backoff.
    Disconnected {
        /// Why, for logs.
        reason: String,
    },
    /// No frame within `stale_after`; the connection is dropped and a reconnect follows.
    Stale,
}

/// Settings for one websocket stream.
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// `venue` metric label.
    pub venue: String,
    /// `stream` metric label (e.g. `market`, `user`).
    pub stream: String,
    /// Reconnect when no frame arrives for this long.
    pub stale_after: Duration,
    /// Give up a connect attempt (TCP + TLS + upgrade) after this long.
    pub connect_timeout: Duration,
    /// Delays between reconnect attempts; reset after the first data frame of a session.
    pub backoff: BackoffConfig,
    /// Reconnect proactively after this long (venues cut connections at 24 h anyway).
    pub max_connection_age: Option<Duration>,
    /// Capacity of the event channel made by [`spawn_ws`].
    pub channel_capacity: usize,
    /// Notified to force a reconnect (e.g. a credential embedded in the URL expired).
    pub reconnect: Option<Arc<Notify>>,
}

impl WsConfig {
    /// Defaults: stale after 30 s, connect timeout 10 s, backoff 250 ms → 30 s, proactive
    /// reconnect after 23 h 50 m, a channel of 4096 events.
    #[must_use]
    pub fn new(venue: &str, stream: &str) -> Self {
        Self {
            venue: venue.to_owned(),
            stream: stream.to_owned(),
            stale_after: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            backoff: BackoffConfig::default(),
            max_connection_age: Some(Duration::from_secs(23 * 3600 + 50 * 60)),
            channel_capacity: 4096,
            reconnect: None,
        }
    }
}

/// Spawns [`run_ws`] on a new task and returns its event receiver and join handle.
///
/// The task ends when `cancel` fires or the receiver is dropped; track the handle.
pub fn spawn_ws<U, UF>(
    config: WsConfig,
    url: U,
    subscriptions: Vec<String>,
    cancel: CancellationToken,
) -> (mpsc::Receiver<WsEvent>, tokio::task::JoinHandle<()>)
where
    U: FnMut() -> UF + Send + 'static,
    UF: Future<Output = Result<String, String>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(config.channel_capacity.max(1));
    let handle = tokio::spawn(run_ws(config, url, subscriptions, tx, cancel));
    (rx, handle)
}

/// How one connection ended.
enum SessionEnd {
    /// Stop for good.
    Stop,
    /// Dropped for staleness.
    Stale,
    /// Dropped or never made, with a reason.
    Closed(String),
}

/// Runs the reconnect loop, sending events to `tx`, until `cancel` fires or `tx`'s
/// receiver is dropped. See the module docs.
///
/// `url` is called before every connect; an `Err` counts as a failed attempt.
pub async fn run_ws<U, UF>(
    config: WsConfig,
    mut url: U,
    subscriptions: Vec<String>,
    tx: mpsc::Sender<WsEvent>,
    cancel: CancellationToken,
) where
    U: FnMut() -> UF,
    UF: Future<Output = Result<String, String>>,
{
    let mut backoff = Backoff::new(config.backoff);
    let mut last_frame = Instant::now();
    let mut first = true;
    loop {
        if !first {
            metrics::counter!(METRIC_RECONNECTS, "venue" => config.venue.clone(), "stream" => config.stream.clone())
                .increment(1);
        }
        first = false;
        let target = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            u = url() => u,
        };
        let end = match target {
            Err(e) => SessionEnd::Closed(format!("no url: {e}")),
            Ok(target) => {
                session(
                    &config,
                    &target,
                    &subscriptions,
                    &tx,
                    &cancel,
                    &mut backoff,
                    &mut last_frame,
                )
                .await
            }
        };
        connected_gauge(&config, false);
        let event = match end {
            SessionEnd::Stop => return,
            SessionEnd::Stale => {
                tracing::warn!(venue = %config.venue, stream = %config.stream, stale_after_ms = config.stale_after.as_millis(), "websocket stale; reconnecting");
                WsEvent::Stale
            }
            SessionEnd::Closed(reason) => {
                tracing::warn!(venue = %config.venue, stream = %config.stream, %reason, "websocket disconnected; reconnecting");
                WsEvent::Disconnected { reason }
            }
        };
        if tx.send(event).await.is_err() {
            return;
        }
        let delay = backoff.next_delay();
        staleness_gauge(&config, last_frame);
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// One connection: connect, subscribe, pump frames until it ends.
async fn session(
    config: &WsConfig,
    url: &str,
    subscriptions: &[String],
    tx: &mpsc::Sender<WsEvent>,
    cancel: &CancellationToken,
    backoff: &mut Backoff,
    last_frame: &mut Instant,
) -> SessionEnd {
    let connect = tokio::time::timeout(
        config.connect_timeout,
        tokio_tungstenite::connect_async(url),
    );
    let mut ws = tokio::select! {
        biased;
        () = cancel.cancelled() => return SessionEnd::Stop,
        r = connect => match r {
            Err(_) => return SessionEnd::Closed(format!("connect timed out after {:?}", config.connect_timeout)),
            Ok(Err(e)) => return SessionEnd::Closed(format!("connect failed: {e}")),
            Ok(Ok((ws, _response))) => ws,
        },
    };
    for s in subscriptions {
        if let Err(e) = ws.send(Message::text(s.clone())).await {
            return SessionEnd::Closed(format!("subscribe failed: {e}"));
        }
    }
    if tx.send(WsEvent::Connected).await.is_err() {
        return SessionEnd::Stop;
    }
    connected_gauge(config, true);
    tracing::info!(venue = %config.venue, stream = %config.stream, "websocket connected");

    let connected_at = Instant::now();
    *last_frame = connected_at;
    let mut got_data = false;
    let age_deadline = config
        .max_connection_age
        .map(|a| connected_at + a)
        .unwrap_or_else(far_future);
    let mut gauge_tick = tokio::time::interval(Duration::from_secs(1));
    gauge_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let reconnect = config.reconnect.clone();
    let reconnect_requested = async move {
        match reconnect {
            Some(n) => n.notified().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(reconnect_requested);

    loop {
        let stale_deadline = *last_frame + config.stale_after;
        let frame = tokio::select! {
            biased;
            () = cancel.cancelled() => {
                // Best effort: a polite close, bounded so shutdown is never held up.
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                return SessionEnd::Stop;
            }
            () = &mut reconnect_requested => {
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                return SessionEnd::Closed("reconnect requested".to_owned());
            }
            () = tokio::time::sleep_until(stale_deadline) => {
                staleness_gauge(config, *last_frame);
                return SessionEnd::Stale;
            }
            () = tokio::time::sleep_until(age_deadline) => {
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                return SessionEnd::Closed("maximum connection age reached".to_owned());
            }
            _ = gauge_tick.tick() => {
                staleness_gauge(config, *last_frame);
                continue;
            }
            f = ws.next() => f,
        };
        let msg = match frame {
            None => return SessionEnd::Closed("stream ended".to_owned()),
            Some(Err(e)) => return SessionEnd::Closed(format!("read failed: {e}")),
            Some(Ok(m)) => m,
        };
        *last_frame = Instant::now();
        let event = match msg {
            Message::Text(t) => Some(WsEvent::Text(t.as_str().to_owned())),
            Message::Binary(b) => match String::from_utf8(b.to_vec()) {
                Ok(t) => Some(WsEvent::Text(t)),
                Err(_) => {
                    tracing::debug!(venue = %config.venue, stream = %config.stream, len = b.len(), "ignoring non-UTF-8 binary frame");
                    None
                }
            },
            Message::Ping(_) => {
                // tungstenite queued the pong; flush it now rather than on the next read.
                if let Err(e) = ws.flush().await {
                    return SessionEnd::Closed(format!("pong failed: {e}"));
                }
                Some(WsEvent::Heartbeat)
            }
            Message::Pong(_) => Some(WsEvent::Heartbeat),
            Message::Close(frame) => {
                let why = frame.map_or_else(
                    || "no close frame".to_owned(),
                    |f| format!("code {} {}", u16::from(f.code), f.reason),
                );
                return SessionEnd::Closed(format!("closed by server: {why}"));
            }
            Message::Frame(_) => None,
        };
        if let Some(event) = event {
            if matches!(event, WsEvent::Text(_)) && !got_data {
                // Only a session that delivered data resets the backoff, so a server that
                // accepts and immediately drops us does not get hammered.
                got_data = true;
                backoff.reset();
            }
            if tx.send(event).await.is_err() {
                return SessionEnd::Stop;
            }
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

fn connected_gauge(config: &WsConfig, up: bool) {
    metrics::gauge!(METRIC_CONNECTED, "venue" => config.venue.clone(), "stream" => config.stream.clone())
        .set(if up { 1.0 } else { 0.0 });
}

fn staleness_gauge(config: &WsConfig, last_frame: Instant) {
    metrics::gauge!(METRIC_STALENESS, "venue" => config.venue.clone(), "stream" => config.stream.clone())
        .set(last_frame.elapsed().as_secs_f64());
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::net::TcpListener;

    use super::*;

    /// How the test server treats each accepted connection.
    #[derive(Clone, Copy)]
    enum Behaviour {
        /// Echo a greeting per subscription, then a ping, then hold the connection open.
        GreetThenPing,
        /// Send one text frame and close.
        SendOneAndClose,
        /// Accept and then say nothing at all.
        Silent,
    }

    struct Server {
        addr: std::net::SocketAddr,
        accepted: Arc<AtomicUsize>,
        pongs: Arc<AtomicUsize>,
        subs: Arc<std::sync::Mutex<Vec<String>>>,
        task: tokio::task::JoinHandle<()>,
    }

    async fn server(behaviour: Behaviour) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let pongs = Arc::new(AtomicUsize::new(0));
        let subs = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (a, p, s) = (accepted.clone(), pongs.clone(), subs.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                a.fetch_add(1, Ordering::SeqCst);
                let (p, s) = (p.clone(), s.clone());
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(sock).await else {
                        return;
                    };
                    match behaviour {
                        Behaviour::SendOneAndClose => {
                            let _ = ws.send(Message::text("hello")).await;
                            let _ = ws.close(None).await;
                        }
                        Behaviour::Silent => while ws.next().await.is_some() {},
                        Behaviour::GreetThenPing => {
                            let _ = ws.send(Message::Ping(vec![1, 2, 3].into())).await;
                            while let Some(Ok(m)) = ws.next().await {
                                match m {
                                    Message::Text(t) => {
                                        s.lock().unwrap().push(t.as_str().to_owned());
                                        let _ = ws.send(Message::text(format!("ack {t}"))).await;
                                    }
                                    Message::Pong(d) if d.as_ref() == [1, 2, 3] => {
                                        p.fetch_add(1, Ordering::SeqCst);
                                    }
                                    _ => {}
                                }
                            }
                        }
                    }
                });
            }
        });
        Server {
            addr,
            accepted,
            pongs,
            subs,
            task,
        }
    }

    fn config() -> WsConfig {
        let mut c = WsConfig::new("test", "market");
        c.stale_after = Duration::from_millis(400);
        c.backoff = BackoffConfig::new(Duration::from_millis(20), Duration::from_millis(50));
        c.connect_timeout = Duration::from_secs(2);
        c
    }

    async fn next(rx: &mut mpsc::Receiver<WsEvent>) -> WsEvent {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("event within 5 s")
            .expect("channel open")
    }

    #[tokio::test]
    async fn subscribes_answers_pings_and_delivers_text() {
        let srv = server(Behaviour::GreetThenPing).await;
        let cancel = CancellationToken::new();
        let url = format!("ws://{}/stream", srv.addr);
        let (mut rx, handle) = spawn_ws(
            config(),
            move || {
                let url = url.clone();
                async move { Ok(url) }
            },
            vec!["sub-1".to_owned(), "sub-2".to_owned()],
            cancel.clone(),
        );
        assert_eq!(next(&mut rx).await, WsEvent::Connected);
        let mut texts = Vec::new();
        let mut heartbeat = false;
        while texts.len() < 2 || !heartbeat {
            match next(&mut rx).await {
                WsEvent::Text(t) => texts.push(t),
                WsEvent::Heartbeat => heartbeat = true,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(texts, ["ack sub-1", "ack sub-2"]);
        // The pong reaches the server.
        let deadline = Instant::now() + Duration::from_secs(5);
        while srv.pongs.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "no pong received");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(*srv.subs.lock().unwrap(), ["sub-1", "sub-2"]);
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), handle)
            .await
            .unwrap()
            .unwrap();
        srv.task.abort();
    }

    #[tokio::test]
    async fn reconnects_after_server_close_with_a_fresh_url_each_time() {
        let srv = server(Behaviour::SendOneAndClose).await;
        let cancel = CancellationToken::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let addr = srv.addr;
        let (mut rx, handle) = spawn_ws(
            config(),
            move || {
                let n = c.fetch_add(1, Ordering::SeqCst);
                async move { Ok(format!("ws://{addr}/ws/key-{n}")) }
            },
            vec![],
            cancel.clone(),
        );
        let mut connects = 0;
        while connects < 3 {
            match next(&mut rx).await {
                WsEvent::Connected => connects += 1,
                WsEvent::Text(t) => assert_eq!(t, "hello"),
                WsEvent::Disconnected { .. } | WsEvent::Heartbeat => {}
                WsEvent::Stale => panic!("should not go stale"),
            }
        }
        assert!(calls.load(Ordering::SeqCst) >= 3, "a URL per connect");
        assert!(srv.accepted.load(Ordering::SeqCst) >= 3);
        cancel.cancel();
        handle.await.unwrap();
        srv.task.abort();
    }

    #[tokio::test]
    async fn watchdog_reports_stale_and_reconnects() {
        let srv = server(Behaviour::Silent).await;
        let cancel = CancellationToken::new();
        let url = format!("ws://{}/", srv.addr);
        let (mut rx, handle) = spawn_ws(
            config(),
            move || {
                let url = url.clone();
                async move { Ok(url) }
            },
            vec![],
            cancel.clone(),
        );
        assert_eq!(next(&mut rx).await, WsEvent::Connected);
        assert_eq!(next(&mut rx).await, WsEvent::Stale);
        assert_eq!(next(&mut rx).await, WsEvent::Connected);
        assert!(srv.accepted.load(Ordering::SeqCst) >= 2);
        cancel.cancel();
        handle.await.unwrap();
        srv.task.abort();
    }

    #[tokio::test]
    async fn keeps_retrying_when_nothing_listens_and_stops_on_cancel() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let cancel = CancellationToken::new();
        let (mut rx, handle) = spawn_ws(
            config(),
            move || async move { Ok(format!("ws://127.0.0.1:{port}/")) },
            vec![],
            cancel.clone(),
        );
        for _ in 0..3 {
            assert!(matches!(next(&mut rx).await, WsEvent::Disconnected { .. }));
        }
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), handle)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn url_errors_count_as_failed_attempts_and_forced_reconnects_work() {
        let srv = server(Behaviour::Silent).await;
        let cancel = CancellationToken::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let addr = srv.addr;
        let notify = Arc::new(Notify::new());
        let mut cfg = config();
        cfg.stale_after = Duration::from_secs(30);
        cfg.reconnect = Some(notify.clone());
        let (mut rx, handle) = spawn_ws(
            cfg,
            move || {
                let n = c.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n == 0 {
                        Err("listen key refused".to_owned())
                    } else {
                        Ok(format!("ws://{addr}/"))
                    }
                }
            },
            vec![],
            cancel.clone(),
        );
        assert!(
            matches!(next(&mut rx).await, WsEvent::Disconnected { reason } if reason.contains("listen key refused"))
        );
        assert_eq!(next(&mut rx).await, WsEvent::Connected);
        notify.notify_one();
        assert!(
            matches!(next(&mut rx).await, WsEvent::Disconnected { reason } if reason.contains("reconnect requested"))
        );
        assert_eq!(next(&mut rx).await, WsEvent::Connected);
        cancel.cancel();
        handle.await.unwrap();
        srv.task.abort();
    }

    #[tokio::test]
    async fn dropping_the_receiver_stops_the_task() {
        let srv = server(Behaviour::GreetThenPing).await;
        let url = format!("ws://{}/", srv.addr);
        let (rx, handle) = spawn_ws(
            config(),
            move || {
                let url = url.clone();
                async move { Ok(url) }
            },
            vec!["x".to_owned()],
            CancellationToken::new(),
        );
        drop(rx);
        tokio::time::timeout(Duration::from_secs(5), handle)
            .await
            .unwrap()
            .unwrap();
        srv.task.abort();
    }
}
