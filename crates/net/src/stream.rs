//! The stream supervisor shared by the websocket ([`crate::ws`]) and the chunked line
//! stream ([`crate::line`]), and the hooks a venue plugs into every session.
//!
//! Both transports fail the same ways (the server closes, the network drops, the stream
//! stays "connected" while nothing flows) and must recover the same way, so one loop owns
//! that policy and each transport only knows how to open one session and read frames:
//!
//! * reconnect with exponential backoff and full jitter ([`Backoff`], the one in
//!   `gekko_core`) until the `CancellationToken` fires; every way a session ends leads back
//!   to a reconnect, never to a silent exit;
//! * the backoff resets only after a session delivered data, so a server that accepts and
//!   drops us at once is not hammered;
//! * a watchdog: no frame at all within `stale_after` reports [`StreamEvent::Stale`] and
//!   reconnects; a proactive reconnect after `max_connection_age`; a reconnect on demand
//!   through [`StreamConfig::reconnect`];
//! * the same events from both transports, so a venue's relay does not care which it reads,
//!   and the same metrics (`gekko_venue_ws_reconnects_total`,
//!   `gekko_venue_stream_staleness_seconds`, `gekko_venue_ws_connected`).
//!
//! [`StreamHooks`] is the per-session venue logic: subscribe messages built fresh on each
//! connect (so a short-lived token such as Coinbase's JWT goes in each time), a reset at
//! each connect, and a look at every inbound text frame that may ask for a reconnect (a
//! per-connection sequence gap, see [`SequenceGuard`]).
//!
//! Concurrency: one task owns the connection and does everything in one `select!` loop.
//! Events go out on a bounded `mpsc` channel: a consumer that falls behind slows reading
//! down rather than growing memory without bound. A dropped receiver stops the loop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::retry::{Backoff, BackoffConfig};

/// Counter: reconnect attempts after the first connect; labels `venue`, `stream`.
pub const METRIC_RECONNECTS: &str = "gekko_venue_ws_reconnects_total";
/// Gauge: seconds since the last frame; labels `venue`, `stream`.
pub const METRIC_STALENESS: &str = "gekko_venue_stream_staleness_seconds";
/// Gauge: 1 while connected, else 0; labels `venue`, `stream`.
pub const METRIC_CONNECTED: &str = "gekko_venue_ws_connected";

/// What a stream reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// Connected (and, for a websocket, subscriptions sent). Consumers resynchronise state.
    Connected,
    /// A text frame, or one line of a line stream.
    Text(String),
    /// Proof of life without data: a websocket ping or pong, or a line a hook called a
    /// heartbeat.
    Heartbeat,
    /// The connection ended or could not be made; a reconnect follows after a backoff.
    Disconnected {
        /// Why, for logs.
        reason: String,
    },
    /// No frame within `stale_after`; the connection is dropped and a reconnect follows.
    Stale,
}

/// Settings for one stream.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// `venue` metric label.
    pub venue: String,
    /// `stream` metric label (e.g. `market`, `user`, `pricing`).
    pub stream: String,
    /// Reconnect when no frame arrives for this long.
    pub stale_after: Duration,
    /// Give up a connect attempt (TCP + TLS + upgrade or response headers) after this long.
    pub connect_timeout: Duration,
    /// Delays between reconnect attempts; reset after the first data frame of a session.
    pub backoff: BackoffConfig,
    /// Reconnect proactively after this long (venues cut connections at 24 h anyway).
    pub max_connection_age: Option<Duration>,
    /// Capacity of the event channel made by the `spawn_*` helpers.
    pub channel_capacity: usize,
    /// Notified to force a reconnect (e.g. a credential embedded in the URL expired).
    pub reconnect: Option<Arc<Notify>>,
    /// The rustls client configuration for `wss://` URLs (websocket transport only; the
    /// line stream uses its `reqwest` client's TLS). `None`: tokio-tungstenite's default,
    /// the webpki roots. Build one with extra roots with [`crate::tls::client_config`].
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl StreamConfig {
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
            tls: None,
        }
    }
}

/// What a hook decides about one inbound text frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameVerdict {
    /// Deliver it as [`StreamEvent::Text`].
    Deliver,
    /// Deliver it as [`StreamEvent::Heartbeat`] (alive, but no data).
    Heartbeat,
    /// Drop it (a duplicate or out-of-order message).
    Skip,
    /// Drop it and the connection; reconnect (and resubscribe). The reason is reported in
    /// [`StreamEvent::Disconnected`].
    Reconnect(String),
}

/// Per-session venue logic. Every method has a do-nothing default.
pub trait StreamHooks: Send {
    /// The messages to send right after a websocket connects, built fresh for each
    /// connect (so a short-lived token in them is fresh). Unused by line streams.
    ///
    /// # Errors
    /// A reason; the attempt then counts as failed and is retried after a backoff.
    fn subscribe_messages(&mut self) -> Result<Vec<String>, String> {
        Ok(Vec::new())
    }

    /// A new session starts: reset per-connection state (sequence numbers).
    fn on_connect(&mut self) {}

    /// Sees every inbound text frame (or line) before it is delivered.
    fn on_text(&mut self, _text: &str) -> FrameVerdict {
        FrameVerdict::Deliver
    }
}

/// The same subscribe messages on every connect; no other logic.
#[derive(Debug, Clone, Default)]
pub struct StaticSubscriptions(pub Vec<String>);

impl StreamHooks for StaticSubscriptions {
    fn subscribe_messages(&mut self) -> Result<Vec<String>, String> {
        Ok(self.0.clone())
    }
}

/// Subscribe messages from a closure called on every connect (e.g. one message per channel,
/// each with a freshly built JWT).
pub struct SubscribeWith<F>(pub F);

impl<F> std::fmt::Debug for SubscribeWith<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubscribeWith(..)")
    }
}

impl<F> StreamHooks for SubscribeWith<F>
where
    F: FnMut() -> Result<Vec<String>, String> + Send,
{
    fn subscribe_messages(&mut self) -> Result<Vec<String>, String> {
        (self.0)()
    }
}

/// Detects per-connection sequence gaps and forces a reconnect (Coinbase's `sequence_num`:
/// each message one greater than the one before, counted per connection).
///
/// `extract` reads the sequence number from a frame (`None`: the frame has none and passes).
/// A jump of more than one reconnects; a number not above the last one is a duplicate or
/// out of order and is skipped. Wraps `inner`, which builds the subscribe messages and sees
/// the frames that pass.
pub struct SequenceGuard<H, F> {
    inner: H,
    extract: F,
    last: Option<u64>,
}

impl<H: std::fmt::Debug, F> std::fmt::Debug for SequenceGuard<H, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequenceGuard")
            .field("inner", &self.inner)
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

impl<H, F> SequenceGuard<H, F>
where
    H: StreamHooks,
    F: FnMut(&str) -> Option<u64> + Send,
{
    /// A guard in front of `inner`.
    pub fn new(inner: H, extract: F) -> Self {
        Self {
            inner,
            extract,
            last: None,
        }
    }
}

impl<H, F> StreamHooks for SequenceGuard<H, F>
where
    H: StreamHooks,
    F: FnMut(&str) -> Option<u64> + Send,
{
    fn subscribe_messages(&mut self) -> Result<Vec<String>, String> {
        self.inner.subscribe_messages()
    }

    fn on_connect(&mut self) {
        self.last = None;
        self.inner.on_connect();
    }

    fn on_text(&mut self, text: &str) -> FrameVerdict {
        if let Some(seq) = (self.extract)(text) {
            match self.last {
                Some(last) if seq > last.saturating_add(1) => {
                    return FrameVerdict::Reconnect(format!("sequence gap: {last} -> {seq}"));
                }
                Some(last) if seq <= last => return FrameVerdict::Skip,
                _ => self.last = Some(seq),
            }
        }
        self.inner.on_text(text)
    }
}

/// How one session ended.
pub(crate) enum SessionEnd {
    /// Stop for good.
    Stop,
    /// Dropped for staleness.
    Stale,
    /// Dropped or never made, with a reason.
    Closed(String),
}

/// One way of opening a session and pumping it; the supervisor does the rest.
pub(crate) trait Transport {
    /// Connects, calls [`SessionCtx::connected`], pumps frames through the context until
    /// the session ends. Must honour `ctx.cancel` while connecting.
    async fn session(&mut self, ctx: &mut SessionCtx<'_>) -> SessionEnd;
}

/// What a transport's session shares with the supervisor.
pub(crate) struct SessionCtx<'a> {
    pub(crate) config: &'a StreamConfig,
    pub(crate) cancel: &'a CancellationToken,
    tx: &'a mpsc::Sender<StreamEvent>,
    backoff: &'a mut Backoff,
    pub(crate) last_frame: Instant,
    got_data: bool,
}

impl SessionCtx<'_> {
    /// Reports [`StreamEvent::Connected`] and starts the watchdog. `false`: stop (the
    /// receiver is gone).
    pub(crate) async fn connected(&mut self) -> bool {
        if self.tx.send(StreamEvent::Connected).await.is_err() {
            return false;
        }
        connected_gauge(self.config, true);
        tracing::info!(venue = %self.config.venue, stream = %self.config.stream, "stream connected");
        self.last_frame = Instant::now();
        true
    }

    /// A frame of any kind arrived: the connection is alive.
    pub(crate) fn frame_seen(&mut self) {
        self.last_frame = Instant::now();
    }

    /// Passes a text frame through `hooks` and delivers it. `Err`: the session ends.
    pub(crate) async fn text(
        &mut self,
        hooks: &mut impl StreamHooks,
        text: String,
    ) -> Result<(), SessionEnd> {
        match hooks.on_text(&text) {
            FrameVerdict::Deliver => self.deliver(StreamEvent::Text(text)).await,
            FrameVerdict::Heartbeat => self.deliver(StreamEvent::Heartbeat).await,
            FrameVerdict::Skip => Ok(()),
            FrameVerdict::Reconnect(reason) => Err(SessionEnd::Closed(reason)),
        }
    }

    /// Sends an event. `Err(Stop)`: the receiver is gone.
    pub(crate) async fn deliver(&mut self, event: StreamEvent) -> Result<(), SessionEnd> {
        if matches!(event, StreamEvent::Text(_)) && !self.got_data {
            // Only a session that delivered data resets the backoff.
            self.got_data = true;
            self.backoff.reset();
        }
        self.tx.send(event).await.map_err(|_| SessionEnd::Stop)
    }
}

/// Why the watchdog interrupted a session.
pub(crate) enum Interrupt {
    /// The cancellation token fired.
    Cancelled,
    /// A reconnect was requested from outside.
    Reconnect,
    /// No frame within `stale_after`.
    Stale,
    /// The connection reached its maximum age.
    MaxAge,
}

/// The per-session timers: staleness, maximum age, reconnect requests, the gauge tick.
pub(crate) struct Watchdog {
    config: StreamConfig,
    age_deadline: Instant,
    gauge_tick: tokio::time::Interval,
}

impl Watchdog {
    /// Timers for a session that connected now.
    pub(crate) fn new(config: &StreamConfig) -> Self {
        let now = Instant::now();
        let mut gauge_tick = tokio::time::interval(Duration::from_secs(1));
        gauge_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            config: config.clone(),
            age_deadline: config
                .max_connection_age
                .map_or_else(far_future, |a| now + a),
            gauge_tick,
        }
    }

    /// Resolves when the session must end for a reason other than the transport. Keeps the
    /// staleness gauge current meanwhile. Cancel-safe: dropping it loses nothing.
    pub(crate) async fn wait(
        &mut self,
        last_frame: Instant,
        cancel: &CancellationToken,
    ) -> Interrupt {
        let stale_deadline = last_frame + self.config.stale_after;
        let notify = self.config.reconnect.as_deref();
        let requested = async {
            match notify {
                Some(n) => n.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(requested);
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Interrupt::Cancelled,
                () = &mut requested => return Interrupt::Reconnect,
                () = tokio::time::sleep_until(stale_deadline) => {
                    staleness_gauge(&self.config, last_frame);
                    return Interrupt::Stale;
                }
                () = tokio::time::sleep_until(self.age_deadline) => return Interrupt::MaxAge,
                _ = self.gauge_tick.tick() => staleness_gauge(&self.config, last_frame),
            }
        }
    }
}

/// Runs `transport` under the reconnect loop until `cancel` fires or `tx`'s receiver is
/// dropped. See the module docs.
pub(crate) async fn supervise<T: Transport>(
    config: StreamConfig,
    mut transport: T,
    tx: mpsc::Sender<StreamEvent>,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::new(config.backoff);
    let mut last_frame = Instant::now();
    let mut first = true;
    loop {
        if !first {
            metrics::counter!(METRIC_RECONNECTS, "venue" => config.venue.clone(), "stream" => config.stream.clone())
                .increment(1);
        }
        first = false;
        if cancel.is_cancelled() {
            return;
        }
        let end = {
            let mut ctx = SessionCtx {
                config: &config,
                cancel: &cancel,
                tx: &tx,
                backoff: &mut backoff,
                last_frame,
                got_data: false,
            };
            let end = transport.session(&mut ctx).await;
            last_frame = ctx.last_frame;
            end
        };
        connected_gauge(&config, false);
        let event = match end {
            SessionEnd::Stop => return,
            SessionEnd::Stale => {
                tracing::warn!(venue = %config.venue, stream = %config.stream, stale_after_ms = config.stale_after.as_millis(), "stream stale; reconnecting");
                StreamEvent::Stale
            }
            SessionEnd::Closed(reason) => {
                tracing::warn!(venue = %config.venue, stream = %config.stream, %reason, "stream disconnected; reconnecting");
                StreamEvent::Disconnected { reason }
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

/// Awaits `f` unless `cancel` fires first (`None`).
pub(crate) async fn or_cancel<F: Future>(cancel: &CancellationToken, f: F) -> Option<F::Output> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => None,
        v = f => Some(v),
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

fn connected_gauge(config: &StreamConfig, up: bool) {
    metrics::gauge!(METRIC_CONNECTED, "venue" => config.venue.clone(), "stream" => config.stream.clone())
        .set(if up { 1.0 } else { 0.0 });
}

fn staleness_gauge(config: &StreamConfig, last_frame: Instant) {
    metrics::gauge!(METRIC_STALENESS, "venue" => config.venue.clone(), "stream" => config.stream.clone())
        .set(last_frame.elapsed().as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(text: &str) -> Option<u64> {
        text.strip_prefix("seq=")?.parse().ok()
    }

    #[test]
    fn sequence_guard_passes_in_order_skips_duplicates_and_reconnects_on_a_gap() {
        let mut g = SequenceGuard::new(StaticSubscriptions(vec!["sub".into()]), seq);
        g.on_connect();
        assert_eq!(g.on_text("seq=0"), FrameVerdict::Deliver);
        assert_eq!(g.on_text("seq=1"), FrameVerdict::Deliver);
        assert_eq!(g.on_text("no number"), FrameVerdict::Deliver);
        assert_eq!(g.on_text("seq=1"), FrameVerdict::Skip);
        assert!(matches!(g.on_text("seq=3"), FrameVerdict::Reconnect(r) if r.contains("1 -> 3")));
        // A new connection starts its own count.
        g.on_connect();
        assert_eq!(g.on_text("seq=7"), FrameVerdict::Deliver);
        assert_eq!(g.subscribe_messages().unwrap(), ["sub"]);
    }

    #[test]
    fn subscribe_with_builds_fresh_messages() {
        let mut n = 0;
        let mut h = SubscribeWith(move || {
            n += 1;
            Ok(vec![format!("token-{n}")])
        });
        assert_eq!(h.subscribe_messages().unwrap(), ["token-1"]);
        assert_eq!(h.subscribe_messages().unwrap(), ["token-2"]);
        assert_eq!(h.on_text("x"), FrameVerdict::Deliver);
    }
}
