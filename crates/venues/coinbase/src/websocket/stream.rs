//! The Coinbase market-data and user streams: [`market_stream`] and [`user_stream`].
//!
//! Each stream is one reconnecting websocket from `gekko_net::ws` (reconnect with
//! backoff, silence watchdog, `Connected`/`Disconnected`) with Coinbase's rules plugged in
//! as hooks, and a [`gekko_net::relay()`] pump that maps frames to gekko events:
//!
//! * **Subscribe**: right after every connect (the venue drops a connection that has not
//!   subscribed within 5 s), one message per channel, each with a JWT minted for that
//!   message ([`CdpJwtSigner::ws_token`]): `heartbeats` always (most channels go quiet for
//!   minutes; the heartbeats are what the watchdog watches), then `level2`, `ticker`,
//!   `market_trades` on the market host, or `user` on the user host.
//! * **Sequencing**: `sequence_num` counts every message of a connection across all its
//!   channels. A [`SequenceGuard`] in the transport skips a number not above the last and
//!   drops the connection on a jump of more than one. The pump turns that drop into a
//!   [`MarketEvent::BookGap`] per book, then `Disconnected`; the reconnect subscribes
//!   `level2` again, which is the venue's way of rebuilding a book: an in-band snapshot.
//! * **Books**: an `l2_data` snapshot becomes [`BookUpdate::Snapshot`], each update a
//!   [`BookUpdate::Delta`] whose `sequence` is the message's `sequence_num` (strictly
//!   increasing per book). The venue sends a book's snapshot before its updates on every
//!   connection, so an update for a book still waiting for its snapshot means the snapshot
//!   was lost: that is a gap too (every book reported, one reconnect). Updates still queued
//!   from a connection that is being replaced are dropped: they describe nothing.
//! * **Resync** ([`CoinbaseMarketControl::resync`], behind `VenueAdapter::resync_book`):
//!   this venue has no REST snapshot aligned with the stream, so a resync is a reconnect
//!   (which resubscribes every channel and brings a snapshot of every book). A request for
//!   a book that is already waiting for its snapshot, or whose gap a snapshot has already
//!   answered, is satisfied without one, so a gap costs one reconnect, not two.
//! * **Malformed frames** are counted (`gekko_venue_malformed_messages_total`) and
//!   skipped; one that may have been book data (it names `l2_data`, or is not JSON at
//!   all) leaves the books unknowable, so it is reported as a gap of every book and the
//!   stream reconnects. Gaps (`gekko_venue_sequence_gaps_total`) and resubscribes
//!   (`gekko_venue_resubscribes_total`) are counted too; reconnects and staleness are
//!   counted by the supervisor.
//! * **Silent channels** ([`CoinbaseWsConfig::channel_silent_after`], off by default):
//!   heartbeats keep a connection fresh, so a `level2` or `ticker` that stops while they
//!   flow is watched separately. Past the threshold it is counted
//!   (`gekko_venue_silent_channels_total{channel}`) and the stream resubscribes (a
//!   reconnect); a silent `level2` is also a gap of every book.
//! * **Trades**: `market_trades` `side` is read as the aggressor's side (the reference
//!   does not say whose side it is); the `snapshot` event of recent trades is not
//!   re-reported after a reconnect, only `update`s are.
//! * **User**: a fill that happens while the user stream is reconnecting, on an order
//!   that is closed by the time the new subscription's snapshot is taken, never shows on
//!   the stream (the snapshot lists open orders only); the gateway's REST reconciliation
//!   on `Connected` is what catches it.
//!
//! Concurrency: per stream, one task owns the socket (the supervisor) and one runs the
//! pump; they share a child token of the caller's, so either stopping stops the other.
//! Both are spawned on the caller's [`StreamCtx`] tracker. The pump is the only owner of
//! the per-book state, so it needs no lock; resync requests reach it over a channel.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use gekko_core::{BookLevel, BookSnapshot, InstrumentId, Quote, Trade};
use gekko_net::retry::BackoffConfig;
use gekko_net::{
    SequenceGuard, StreamHooks, SubscribeWith, WsConfig, WsEvent, receiver_stream, relay,
    run_ws_with_hooks,
};
use gekko_venue::{BookDelta, BookUpdate, MarketEvent, StreamCtx, UserEvent};
use tokio::sync::{Notify, mpsc};

use super::messages::{
    CoinbaseWsMessage, EventKind, L2Event, L2Side, ParseError, TickerMsg, parse, sequence_num,
};
use super::user::{CoinbaseFillTracker, order_update};
use crate::auth::CdpJwtSigner;
use crate::common::consts::{VENUE, WS_MARKET_URL, WS_USER_URL};
use crate::common::{CoinbaseSide, product_id};

/// Counter: stream frames that could not be parsed; labels `venue`, `stream`.
pub const METRIC_MALFORMED: &str = "gekko_venue_malformed_messages_total";
/// Counter: per-connection sequence gaps; labels `venue`, `stream`.
pub const METRIC_GAPS: &str = "gekko_venue_sequence_gaps_total";
/// Counter: resubscribes for a book rebuild (a resync, a sequence gap, a silent channel,
/// a possibly-book malformed frame); labels `venue`, `stream`.
pub const METRIC_RESUBSCRIBES: &str = "gekko_venue_resubscribes_total";
/// Counter: a market channel found silent while the connection (its heartbeats) lived;
/// labels `venue`, `stream`, `channel` (`l2_data`, `ticker`).
pub const METRIC_SILENT_CHANNELS: &str = "gekko_venue_silent_channels_total";

/// The market channels watched for silence ([`CoinbaseWsConfig::channel_silent_after`]),
/// by the wire name their messages carry.
const WATCHED_CHANNELS: [&str; 2] = ["l2_data", "ticker"];

/// Capacity of the event channels handed to the caller.
const EVENT_CHANNEL: usize = 4096;
/// Capacity between the socket task and the pump.
const FRAME_CHANNEL: usize = 1024;

/// What the Coinbase streams need to know. The adapter builds it from the crate's
/// `CoinbaseConfig`.
#[derive(Debug, Clone)]
pub struct CoinbaseWsConfig {
    /// Market-data host (`wss://advanced-trade-ws.coinbase.com`).
    pub market_url: String,
    /// User-order-data host (`wss://advanced-trade-ws-user.coinbase.com`).
    pub user_url: String,
    /// Reconnect when nothing (heartbeats included) arrives for this long.
    pub stale_after: Duration,
    /// Resubscribe (and rebuild every book) when `level2` or `ticker` sends nothing for
    /// this long while the connection lives (its heartbeats flowing). `None`, the
    /// default, watches no channel: how long a quiet product's book may legitimately go
    /// without an update is the reference's \[U\], so the threshold is the operator's.
    pub channel_silent_after: Option<Duration>,
    /// PEM roots trusted besides the webpki roots (a simulator's certificate).
    pub extra_roots_pem: Vec<String>,
    /// Give up one connect attempt after this long.
    pub connect_timeout: Duration,
    /// Delays between reconnect attempts.
    pub backoff: BackoffConfig,
}

impl Default for CoinbaseWsConfig {
    /// The production hosts, stale after 10 s (heartbeats arrive every second), connect
    /// timeout 10 s, the workspace backoff.
    fn default() -> Self {
        Self {
            market_url: WS_MARKET_URL.to_owned(),
            user_url: WS_USER_URL.to_owned(),
            stale_after: Duration::from_secs(10),
            channel_silent_after: None,
            extra_roots_pem: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            backoff: BackoffConfig::default(),
        }
    }
}

impl CoinbaseWsConfig {
    /// Checks what [`market_stream`] and [`user_stream`] would otherwise only find out
    /// when they start: the URLs are `ws://` or `wss://`, and the extra roots parse.
    ///
    /// # Errors
    /// Every problem, one line each.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        for (name, url) in [
            ("market_url", &self.market_url),
            ("user_url", &self.user_url),
        ] {
            if !(url.starts_with("wss://") || url.starts_with("ws://")) {
                problems.push(format!("{name} {url:?} is not a ws:// or wss:// URL"));
            }
        }
        if self.stale_after.is_zero() {
            problems.push("stale_after must be above zero".to_owned());
        }
        if self.channel_silent_after.is_some_and(|d| d.is_zero()) {
            problems.push("channel_silent_after must be above zero when set".to_owned());
        }
        if let Err(e) = gekko_net::tls::client_config(&self.extra_roots_pem) {
            problems.push(e);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The supervisor's settings for one stream.
    fn stream_config(&self, stream: &str) -> Result<WsConfig, String> {
        let mut c = WsConfig::new(VENUE, stream);
        c.stale_after = self.stale_after;
        c.connect_timeout = self.connect_timeout;
        c.backoff = self.backoff;
        c.channel_capacity = FRAME_CHANNEL;
        c.tls = Some(gekko_net::tls::client_config(&self.extra_roots_pem)?);
        Ok(c)
    }
}

/// One subscribe message: `{"type":"subscribe","product_ids":[..],"channel":..,"jwt":..}`
/// (no `product_ids` when `products` is empty).
///
/// # Errors
/// The signer's reason when no JWT could be minted.
pub fn subscribe_message(
    signer: &CdpJwtSigner,
    channel: &str,
    products: &[String],
) -> Result<String, String> {
    let jwt = signer
        .ws_token()
        .map_err(|e| format!("{channel} JWT: {e}"))?;
    let mut msg = serde_json::json!({"type": "subscribe", "channel": channel, "jwt": jwt});
    if !products.is_empty() {
        msg["product_ids"] = serde_json::json!(products);
    }
    Ok(msg.to_string())
}

/// The hooks of one Coinbase connection: fresh subscribe messages on every connect,
/// behind the per-connection sequence guard.
fn hooks(
    signer: Arc<CdpJwtSigner>,
    channels: &'static [&'static str],
    products: Vec<String>,
) -> impl StreamHooks + 'static {
    let subscribe = SubscribeWith(move || {
        let mut out = Vec::with_capacity(channels.len() + 1);
        out.push(subscribe_message(&signer, "heartbeats", &[])?);
        for c in channels {
            out.push(subscribe_message(&signer, c, &products)?);
        }
        Ok(out)
    });
    SequenceGuard::new(subscribe, sequence_num)
}

/// Lets the adapter ask the running market stream to rebuild a book.
#[derive(Debug, Clone)]
pub struct CoinbaseMarketControl {
    tx: mpsc::Sender<InstrumentId>,
}

impl CoinbaseMarketControl {
    /// Asks for a fresh snapshot of `instrument`'s book (see the module docs: a reconnect,
    /// unless one is already coming). Returns once the request is queued.
    ///
    /// # Errors
    /// A reason when the stream has stopped.
    pub async fn resync(&self, instrument: &InstrumentId) -> Result<(), String> {
        self.tx
            .send(instrument.clone())
            .await
            .map_err(|_| "the Coinbase market stream is not running".to_owned())
    }
}

/// Starts the market-data stream (`heartbeats`, `level2`, `ticker`, `market_trades` for
/// `instruments`) on `ctx`; see the module docs. The stream stops when `ctx.cancel` fires
/// or the receiver is dropped.
///
/// With no instruments, or extra roots that do not parse (see
/// [`CoinbaseWsConfig::validate`]), the receiver gets at most one `Disconnected` naming
/// the problem and then closes.
pub fn market_stream(
    cfg: &CoinbaseWsConfig,
    signer: Arc<CdpJwtSigner>,
    instruments: &[InstrumentId],
    ctx: &StreamCtx,
) -> (mpsc::Receiver<MarketEvent>, CoinbaseMarketControl) {
    let (out, rx) = mpsc::channel(EVENT_CHANNEL);
    let (resync_tx, resync_rx) = mpsc::channel(64);
    let control = CoinbaseMarketControl { tx: resync_tx };
    if instruments.is_empty() {
        return (rx, control);
    }
    let mut ws_cfg = match cfg.stream_config("market") {
        Ok(c) => c,
        Err(reason) => {
            tracing::error!(%reason, "Coinbase market stream cannot start");
            let _ = out.try_send(MarketEvent::Disconnected { reason });
            return (rx, control);
        }
    };
    let reconnect = Arc::new(Notify::new());
    ws_cfg.reconnect = Some(reconnect.clone());
    let products: Vec<String> = instruments.iter().map(product_id).collect();
    let url = cfg.market_url.clone();
    let stop = ctx.cancel.child_token();
    let (ws_tx, ws_rx) = mpsc::channel(FRAME_CHANNEL);
    ctx.spawn(run_ws_with_hooks(
        ws_cfg,
        move || {
            let url = url.clone();
            async move { Ok(url) }
        },
        hooks(signer, &["level2", "ticker", "market_trades"], products),
        ws_tx,
        stop.clone(),
    ));
    let input = futures_util::stream::select(
        receiver_stream(ws_rx).map(MarketInput::Ws),
        receiver_stream(resync_rx).map(MarketInput::Resync),
    );
    let mut pump = MarketPump::new(instruments, reconnect).silent_after(cfg.channel_silent_after);
    ctx.spawn(relay(input, out, stop, move |input| pump.on_input(input)));
    (rx, control)
}

/// Starts the user stream (`heartbeats` and `user` on the user host) on `ctx`: order
/// updates, and fills derived from them (see [`super::user`]). Stops when `ctx.cancel`
/// fires or the receiver is dropped; an unusable TLS configuration is reported as one
/// `Disconnected` before the receiver closes.
pub fn user_stream(
    cfg: &CoinbaseWsConfig,
    signer: Arc<CdpJwtSigner>,
    ctx: &StreamCtx,
) -> mpsc::Receiver<UserEvent> {
    let (out, rx) = mpsc::channel(EVENT_CHANNEL);
    let ws_cfg = match cfg.stream_config("user") {
        Ok(c) => c,
        Err(reason) => {
            tracing::error!(%reason, "Coinbase user stream cannot start");
            let _ = out.try_send(UserEvent::Disconnected { reason });
            return rx;
        }
    };
    let url = cfg.user_url.clone();
    let stop = ctx.cancel.child_token();
    let (ws_tx, ws_rx) = mpsc::channel(FRAME_CHANNEL);
    ctx.spawn(run_ws_with_hooks(
        ws_cfg,
        move || {
            let url = url.clone();
            async move { Ok(url) }
        },
        hooks(signer, &["user"], Vec::new()),
        ws_tx,
        stop.clone(),
    ));
    let mut pump = UserPump::default();
    ctx.spawn(relay(receiver_stream(ws_rx), out, stop, move |ev| {
        pump.on_event(ev)
    }));
    rx
}

/// What the market pump reads.
#[derive(Debug)]
pub(crate) enum MarketInput {
    /// From the socket.
    Ws(WsEvent),
    /// A resync request from the adapter.
    Resync(InstrumentId),
}

/// One book's state on the current connection.
#[derive(Debug)]
struct BookState {
    instrument: InstrumentId,
    /// The last sequence reported for it; `None` until its snapshot on this connection.
    sequence: Option<u64>,
    /// A gap was reported for it and its snapshot has arrived since: the adapter's
    /// resync for that gap needs nothing more.
    gap_answered: bool,
}

/// The market stream's mapping from frames to events. Owns the per-book state.
#[derive(Debug)]
pub(crate) struct MarketPump {
    books: HashMap<String, BookState>,
    connected: bool,
    /// A reconnect was asked for on this connection.
    reconnect_requested: bool,
    reconnect: Arc<Notify>,
    /// [`CoinbaseWsConfig::channel_silent_after`].
    silent_after: Option<Duration>,
    /// When each of [`WATCHED_CHANNELS`] last sent something on this connection (its
    /// start, until then).
    last_seen: [tokio::time::Instant; WATCHED_CHANNELS.len()],
}

impl MarketPump {
    pub(crate) fn new(instruments: &[InstrumentId], reconnect: Arc<Notify>) -> Self {
        Self {
            books: instruments
                .iter()
                .map(|i| {
                    let state = BookState {
                        instrument: i.clone(),
                        sequence: None,
                        gap_answered: false,
                    };
                    (product_id(i), state)
                })
                .collect(),
            connected: false,
            reconnect_requested: false,
            reconnect,
            silent_after: None,
            last_seen: [tokio::time::Instant::now(); WATCHED_CHANNELS.len()],
        }
    }

    /// Watches `level2` and `ticker` for silences longer than `after` (`None`: not).
    pub(crate) fn silent_after(mut self, after: Option<Duration>) -> Self {
        self.silent_after = after;
        self
    }

    /// Notes that `channel` sent something.
    fn saw(&mut self, channel: &str) {
        if let Some(i) = WATCHED_CHANNELS.iter().position(|c| *c == channel) {
            self.last_seen[i] = tokio::time::Instant::now();
        }
    }

    /// Checks the watched channels (on every frame, heartbeats included, so a live
    /// connection is checked at least once a second). A silent one is counted
    /// ([`METRIC_SILENT_CHANNELS`]) and answered with a resubscribe: a reconnect, which
    /// brings every channel and an in-band snapshot of every book back. A silent
    /// `level2` also reports a gap of every book, which the engine treats like any gap
    /// (the book is not synced, so not ready, until its snapshot).
    fn check_silence(&mut self) -> Vec<MarketEvent> {
        let Some(after) = self.silent_after else {
            return Vec::new();
        };
        if !self.connected || self.reconnect_requested {
            return Vec::new();
        }
        let now = tokio::time::Instant::now();
        let mut silent = Vec::new();
        for (i, c) in WATCHED_CHANNELS.iter().enumerate() {
            let quiet = now.saturating_duration_since(self.last_seen[i]);
            if quiet > after {
                metrics::counter!(METRIC_SILENT_CHANNELS, "venue" => VENUE, "stream" => "market", "channel" => *c)
                    .increment(1);
                tracing::warn!(
                    channel = c,
                    quiet_ms = quiet.as_millis(),
                    "Coinbase channel silent while heartbeats flow; resubscribing"
                );
                silent.push(*c);
            }
        }
        if silent.is_empty() {
            return Vec::new();
        }
        let out = if silent.contains(&"l2_data") {
            self.gap_events(&format!(
                "level2 silent for more than {} ms while heartbeats flow",
                after.as_millis()
            ))
        } else {
            Vec::new()
        };
        self.request_reconnect();
        out
    }

    /// Maps one input to the events it yields.
    pub(crate) fn on_input(&mut self, input: MarketInput) -> Vec<MarketEvent> {
        match input {
            MarketInput::Ws(ev) => self.on_ws(ev),
            MarketInput::Resync(i) => {
                self.on_resync(&i);
                Vec::new()
            }
        }
    }

    fn on_resync(&mut self, instrument: &InstrumentId) {
        let Some(book) = self.books.get_mut(&product_id(instrument)) else {
            tracing::warn!(%instrument, "resync asked for a book this stream does not carry");
            return;
        };
        if !self.connected || book.sequence.is_none() {
            // A snapshot is coming with the (re)connect already under way.
            return;
        }
        if std::mem::take(&mut book.gap_answered) {
            return;
        }
        tracing::info!(%instrument, "resubscribing the Coinbase market stream for a fresh book");
        self.request_reconnect();
        self.forget_books(false);
    }

    /// Asks the socket task to reconnect (and so resubscribe), once per connection: the
    /// frames still queued from this connection must not each ask again.
    fn request_reconnect(&mut self) {
        if std::mem::replace(&mut self.reconnect_requested, true) {
            return;
        }
        metrics::counter!(METRIC_RESUBSCRIBES, "venue" => VENUE, "stream" => "market").increment(1);
        self.reconnect.notify_one();
    }

    /// A `BookGap` for every book (in instrument order), which then waits for its next
    /// snapshot.
    fn gap_events(&mut self, detail: &str) -> Vec<MarketEvent> {
        let mut books: Vec<_> = self.books.values().collect();
        books.sort_by_key(|b| b.instrument.pair());
        let out = books
            .into_iter()
            .map(|b| MarketEvent::BookGap {
                instrument: b.instrument.clone(),
                detail: detail.to_owned(),
            })
            .collect();
        self.forget_books(true);
        out
    }

    /// A frame that did not parse. If it may have been book data (it names `l2_data`, or
    /// no channel can be read from it at all), a book may now miss an update or wait for a
    /// snapshot that will never come: report a gap for every book and reconnect. Anything
    /// else (a broken ticker) is just skipped.
    fn on_malformed(&mut self, text: &str, e: &ParseError) -> Vec<MarketEvent> {
        count_malformed("market", e);
        #[derive(serde::Deserialize)]
        struct Probe<'a> {
            #[serde(borrow)]
            channel: Option<std::borrow::Cow<'a, str>>,
        }
        let channel = serde_json::from_str::<Probe<'_>>(text)
            .ok()
            .and_then(|p| p.channel);
        let maybe_book = channel.as_deref().is_none_or(|c| c == "l2_data");
        if !self.connected || !maybe_book || self.reconnect_requested {
            return Vec::new();
        }
        let detail = format!("malformed frame, possibly book data: {}", e.reason);
        let out = self.gap_events(&detail);
        self.request_reconnect();
        out
    }

    /// Marks every book as waiting for its snapshot; `gap` also arms `gap_answered`.
    fn forget_books(&mut self, gap: bool) {
        for b in self.books.values_mut() {
            b.sequence = None;
            b.gap_answered = gap;
        }
    }

    fn on_ws(&mut self, ev: WsEvent) -> Vec<MarketEvent> {
        match ev {
            WsEvent::Connected => {
                self.connected = true;
                self.reconnect_requested = false;
                self.last_seen = [tokio::time::Instant::now(); WATCHED_CHANNELS.len()];
                for b in self.books.values_mut() {
                    b.sequence = None;
                }
                vec![MarketEvent::Connected]
            }
            WsEvent::Disconnected { reason } => {
                self.connected = false;
                let mut out = Vec::new();
                if reason.starts_with("sequence gap") {
                    metrics::counter!(METRIC_GAPS, "venue" => VENUE, "stream" => "market")
                        .increment(1);
                    // The transport dropped the connection; its reconnect resubscribes
                    // every channel, which is the book's rebuild.
                    metrics::counter!(METRIC_RESUBSCRIBES, "venue" => VENUE, "stream" => "market")
                        .increment(1);
                    out = self.gap_events(&reason);
                } else {
                    self.forget_books(false);
                }
                out.push(MarketEvent::Disconnected { reason });
                out
            }
            WsEvent::Stale => {
                self.connected = false;
                self.forget_books(false);
                vec![MarketEvent::Disconnected {
                    reason: "stale: nothing, heartbeats included, within stale_after".to_owned(),
                }]
            }
            WsEvent::Heartbeat => {
                let mut out = vec![MarketEvent::Heartbeat];
                out.extend(self.check_silence());
                out
            }
            WsEvent::Text(text) => {
                let mut out = match parse(&text) {
                    Ok(msg) => self.on_message(msg),
                    Err(e) => self.on_malformed(&text, &e),
                };
                out.extend(self.check_silence());
                out
            }
        }
    }

    /// Maps one parsed message.
    pub(crate) fn on_message(&mut self, msg: CoinbaseWsMessage<'_>) -> Vec<MarketEvent> {
        match msg {
            CoinbaseWsMessage::L2Data { header, events } => {
                self.saw("l2_data");
                // The venue sends a book's snapshot before any update of it on a
                // connection. An update for a book still waiting for its snapshot means
                // the snapshot was lost (a connection made during a silent stretch whose
                // suppressed frames included it): waiting would wait forever, so rebuild.
                let snapshot_lost = events.iter().any(|e| {
                    e.kind == EventKind::Update
                        && self
                            .books
                            .get(e.product_id.as_ref())
                            .is_some_and(|b| b.sequence.is_none())
                });
                if snapshot_lost && self.connected && !self.reconnect_requested {
                    metrics::counter!(METRIC_GAPS, "venue" => VENUE, "stream" => "market")
                        .increment(1);
                    let out = self.gap_events("an l2_data update arrived before its snapshot");
                    self.request_reconnect();
                    return out;
                }
                let ts = header.ts_ms().unwrap_or_else(gekko_core::now_ms);
                events
                    .into_iter()
                    .filter_map(|e| self.on_l2(e, header.sequence_num, ts))
                    .collect()
            }
            CoinbaseWsMessage::Ticker { header, events } => {
                self.saw("ticker");
                let ts = header.ts_ms().unwrap_or_else(gekko_core::now_ms);
                events
                    .iter()
                    .flat_map(|e| e.tickers.iter())
                    .filter_map(|t| self.quote(t, ts).map(MarketEvent::Quote))
                    .collect()
            }
            CoinbaseWsMessage::MarketTrades { header, events } => {
                let ts = header.ts_ms().unwrap_or_else(gekko_core::now_ms);
                events
                    .iter()
                    // A snapshot repeats recent trades already reported before a
                    // reconnect; only new trades are events.
                    .filter(|e| e.kind == EventKind::Update)
                    .flat_map(|e| e.trades.iter())
                    .filter_map(|t| {
                        let instrument = self.books.get(t.product_id.as_ref())?.instrument.clone();
                        let taker_side = match CoinbaseSide::from_wire(&t.side) {
                            Some(s) => s.to_core(),
                            None => {
                                tracing::warn!(side = %t.side, "market trade with an unknown side; skipped");
                                return None;
                            }
                        };
                        Some(MarketEvent::Trade(Trade {
                            instrument,
                            trade_id: t.trade_id.to_string(),
                            price: t.price,
                            qty: t.size,
                            taker_side,
                            ts_ms: crate::common::parse_rfc3339_ms(&t.time).unwrap_or(ts),
                        }))
                    })
                    .collect()
            }
            CoinbaseWsMessage::Heartbeats { .. } => vec![MarketEvent::Heartbeat],
            CoinbaseWsMessage::Subscriptions { events, .. } => {
                tracing::debug!(?events, "Coinbase market subscriptions acknowledged");
                vec![MarketEvent::Heartbeat]
            }
            CoinbaseWsMessage::Error { message } => {
                tracing::warn!(%message, "Coinbase market stream error reply");
                Vec::new()
            }
            CoinbaseWsMessage::User { .. } | CoinbaseWsMessage::Other { .. } => Vec::new(),
        }
    }

    fn on_l2(&mut self, e: L2Event<'_>, seq: Option<u64>, ts_ms: i64) -> Option<MarketEvent> {
        let book = self.books.get_mut(e.product_id.as_ref())?;
        let (mut bids, mut asks) = (Vec::new(), Vec::new());
        for l in &e.updates {
            let level = BookLevel {
                price: l.price_level,
                qty: l.new_quantity,
            };
            match l.side {
                L2Side::Bid => bids.push(level),
                L2Side::Offer => asks.push(level),
            }
        }
        match e.kind {
            EventKind::Snapshot => {
                let sequence = seq.unwrap_or(0);
                book.sequence = Some(sequence);
                bids.retain(|l| !l.qty.is_zero());
                asks.retain(|l| !l.qty.is_zero());
                bids.sort_by_key(|l| std::cmp::Reverse(l.price));
                asks.sort_by_key(|l| l.price);
                Some(MarketEvent::Book(BookUpdate::Snapshot(BookSnapshot {
                    instrument: book.instrument.clone(),
                    sequence,
                    bids,
                    asks,
                    ts_ms,
                })))
            }
            EventKind::Update => {
                let last = book.sequence?;
                let next = last.saturating_add(1);
                let sequence = seq.map_or(next, |s| s.max(next));
                book.sequence = Some(sequence);
                Some(MarketEvent::Book(BookUpdate::Delta(BookDelta {
                    instrument: book.instrument.clone(),
                    sequence,
                    bids,
                    asks,
                    ts_ms,
                })))
            }
        }
    }

    fn quote(&self, t: &TickerMsg<'_>, ts_ms: i64) -> Option<Quote> {
        let instrument = self.books.get(t.product_id.as_ref())?.instrument.clone();
        Some(Quote {
            instrument,
            bid: t.best_bid?,
            bid_size: t.best_bid_quantity.unwrap_or_default(),
            ask: t.best_ask?,
            ask_size: t.best_ask_quantity.unwrap_or_default(),
            ts_ms,
        })
    }
}

/// The user stream's mapping from frames to events. Owns the fill tracker.
#[derive(Debug, Default)]
pub(crate) struct UserPump {
    fills: CoinbaseFillTracker,
}

impl UserPump {
    pub(crate) fn on_event(&mut self, ev: WsEvent) -> Vec<UserEvent> {
        match ev {
            WsEvent::Connected => vec![UserEvent::Connected],
            WsEvent::Disconnected { reason } => {
                if reason.starts_with("sequence gap") {
                    metrics::counter!(METRIC_GAPS, "venue" => VENUE, "stream" => "user")
                        .increment(1);
                }
                vec![UserEvent::Disconnected { reason }]
            }
            WsEvent::Stale => vec![UserEvent::Disconnected {
                reason: "stale: nothing, heartbeats included, within stale_after".to_owned(),
            }],
            WsEvent::Heartbeat => Vec::new(),
            WsEvent::Text(text) => match parse(&text) {
                Ok(msg) => self.on_message(&msg),
                Err(e) => {
                    count_malformed("user", &e);
                    Vec::new()
                }
            },
        }
    }

    /// Maps one parsed message: each order an `Order` event, followed by a `Fill` when
    /// the order filled more since its last state.
    pub(crate) fn on_message(&mut self, msg: &CoinbaseWsMessage<'_>) -> Vec<UserEvent> {
        match msg {
            CoinbaseWsMessage::User { header, events } => {
                let ts = header.ts_ms().unwrap_or_else(gekko_core::now_ms);
                let mut out = Vec::new();
                for e in events {
                    for o in &e.orders {
                        match order_update(o, ts) {
                            Ok(mut u) => {
                                let fill = self.fills.apply(e.kind, o, &mut u);
                                out.push(UserEvent::Order(u));
                                out.extend(fill.map(UserEvent::Fill));
                            }
                            // Not a gekko order (placed by hand), or a state gekko cannot act on.
                            Err(err) => {
                                tracing::warn!(error = %err, "user order not mapped; skipped")
                            }
                        }
                    }
                }
                out
            }
            CoinbaseWsMessage::Error { message } => {
                tracing::warn!(%message, "Coinbase user stream error reply");
                Vec::new()
            }
            _ => Vec::new(),
        }
    }
}

fn count_malformed(stream: &'static str, e: &ParseError) {
    metrics::counter!(METRIC_MALFORMED, "venue" => VENUE, "stream" => stream).increment(1);
    tracing::warn!(stream, error = %e, "malformed Coinbase stream message; skipped");
}

#[cfg(test)]
mod tests {
    use gekko_core::{OrderStatus, Side, VenueId};
    use rust_decimal_macros::dec;

    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/test_data/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn btc() -> InstrumentId {
        InstrumentId::new(VenueId::Coinbase, "BTC", "USD")
    }

    fn pump() -> (MarketPump, Arc<Notify>) {
        let n = Arc::new(Notify::new());
        (MarketPump::new(&[btc()], n.clone()), n)
    }

    fn text(p: &mut MarketPump, name: &str) -> Vec<MarketEvent> {
        p.on_input(MarketInput::Ws(WsEvent::Text(fixture(name))))
    }

    #[test]
    fn snapshot_then_update_become_a_sorted_snapshot_and_a_delta() {
        let (mut p, _) = pump();
        assert_eq!(
            p.on_input(MarketInput::Ws(WsEvent::Connected)),
            [MarketEvent::Connected]
        );
        // An update before the snapshot means the snapshot was lost: a gap, one reconnect.
        let ev = text(&mut p, "ws_l2_update.json");
        assert!(
            matches!(ev.as_slice(), [MarketEvent::BookGap { instrument, .. }] if *instrument == btc()),
            "{ev:?}"
        );
        assert!(p.reconnect_requested, "a reconnect brings the snapshot");
        // Further updates of the connection being replaced are dropped without asking again.
        assert!(text(&mut p, "ws_l2_update.json").is_empty());
        let ev = text(&mut p, "ws_l2_snapshot.json");
        let [MarketEvent::Book(BookUpdate::Snapshot(s))] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        assert_eq!(s.instrument, btc());
        assert_eq!(s.sequence, 1);
        assert_eq!(s.ts_ms, 1_775_572_203_123);
        let bids: Vec<_> = s.bids.iter().map(|l| l.price).collect();
        assert_eq!(bids, [dec!(68900.00), dec!(68899.50), dec!(68898.00)]);
        assert_eq!(
            s.asks[0],
            BookLevel {
                price: dec!(68901.00),
                qty: dec!(0.5)
            }
        );
        let ev = text(&mut p, "ws_l2_update.json");
        let [MarketEvent::Book(BookUpdate::Delta(d))] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        assert_eq!(d.sequence, 2);
        assert_eq!(
            d.bids[1],
            BookLevel {
                price: dec!(68899.50),
                qty: dec!(0)
            }
        );
        assert_eq!(
            d.asks,
            [BookLevel {
                price: dec!(68901.50),
                qty: dec!(0.8)
            }]
        );
        // The same update again (its sequence repeated) still moves the book's sequence on.
        let ev = text(&mut p, "ws_l2_update.json");
        let [MarketEvent::Book(BookUpdate::Delta(d))] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        assert_eq!(d.sequence, 3);
    }

    #[test]
    fn ticker_trades_heartbeats_and_errors() {
        let (mut p, _) = pump();
        let ev = text(&mut p, "ws_ticker.json");
        let [MarketEvent::Quote(q)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        assert_eq!(
            (q.bid, q.bid_size, q.ask, q.ask_size),
            (dec!(68900.00), dec!(1.5), dec!(68901.00), dec!(0.5))
        );
        let ev = text(&mut p, "ws_market_trades.json");
        let [MarketEvent::Trade(a), MarketEvent::Trade(b)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        assert_eq!(
            (a.trade_id.as_str(), a.taker_side, a.qty),
            ("812345678", Side::Buy, dec!(0.015))
        );
        assert_eq!((b.price, b.taker_side), (dec!(68900.00), Side::Sell));
        assert_eq!(b.ts_ms, 1_775_572_203_110);
        assert_eq!(text(&mut p, "ws_heartbeats.json"), [MarketEvent::Heartbeat]);
        assert_eq!(
            text(&mut p, "ws_subscriptions.json"),
            [MarketEvent::Heartbeat]
        );
        assert!(text(&mut p, "ws_error.json").is_empty());
        // A product this stream did not ask for is ignored.
        let eth = fixture("ws_ticker.json").replace("BTC-USD", "ETH-USD");
        assert!(p.on_input(MarketInput::Ws(WsEvent::Text(eth))).is_empty());
        // Malformed frames are skipped.
        assert!(
            p.on_input(MarketInput::Ws(WsEvent::Text("{nope".into())))
                .is_empty()
        );
    }

    #[test]
    fn a_gap_reports_every_book_and_its_resync_costs_no_second_reconnect() {
        let (mut p, notify) = pump();
        p.on_input(MarketInput::Ws(WsEvent::Connected));
        text(&mut p, "ws_l2_snapshot.json");
        let ev = p.on_input(MarketInput::Ws(WsEvent::Disconnected {
            reason: "sequence gap: 2 -> 5".into(),
        }));
        assert!(
            matches!(&ev[..], [MarketEvent::BookGap { instrument, detail }, MarketEvent::Disconnected { .. }]
                if *instrument == btc() && detail.contains("2 -> 5")),
            "{ev:?}"
        );
        // The engine's resync arrives while reconnecting: nothing to do.
        p.on_input(MarketInput::Resync(btc()));
        p.on_input(MarketInput::Ws(WsEvent::Connected));
        text(&mut p, "ws_l2_snapshot.json");
        // ... or after the new snapshot answered the gap: nothing either.
        p.on_input(MarketInput::Resync(btc()));
        let woke = futures_util::FutureExt::now_or_never(notify.notified());
        assert!(woke.is_none(), "no reconnect was requested");
        // A resync of a synced book with no gap behind it reconnects.
        p.on_input(MarketInput::Resync(btc()));
        let woke = futures_util::FutureExt::now_or_never(notify.notified());
        assert!(woke.is_some(), "a reconnect was requested");
        // A stale stream is a disconnect.
        assert!(matches!(
            &p.on_input(MarketInput::Ws(WsEvent::Stale))[..],
            [MarketEvent::Disconnected { reason }] if reason.contains("stale")
        ));
    }

    #[test]
    fn a_level2_silent_past_the_threshold_is_a_gap_and_one_resubscribe() {
        // Off by default: however long level2 is quiet, heartbeats alone change nothing.
        let (mut p, notify) = pump();
        p.on_input(MarketInput::Ws(WsEvent::Connected));
        text(&mut p, "ws_l2_snapshot.json");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(
            p.on_input(MarketInput::Ws(WsEvent::Heartbeat)),
            [MarketEvent::Heartbeat]
        );
        assert!(futures_util::FutureExt::now_or_never(notify.notified()).is_none());

        // Watched: after the threshold, the next heartbeat finds level2 (and ticker) silent.
        let counts = Counts::default();
        let _local = metrics::set_default_local_recorder(&counts);
        let n = Arc::new(Notify::new());
        let mut p =
            MarketPump::new(&[btc()], n.clone()).silent_after(Some(Duration::from_millis(40)));
        p.on_input(MarketInput::Ws(WsEvent::Connected));
        text(&mut p, "ws_l2_snapshot.json");
        std::thread::sleep(Duration::from_millis(60));
        let ev = p.on_input(MarketInput::Ws(WsEvent::Heartbeat));
        assert!(
            matches!(&ev[..], [MarketEvent::Heartbeat, MarketEvent::BookGap { instrument, detail }]
                if *instrument == btc() && detail.contains("level2 silent")),
            "{ev:?}"
        );
        assert!(
            futures_util::FutureExt::now_or_never(n.notified()).is_some(),
            "a resubscribe was requested"
        );
        assert_eq!(
            (
                counts.get(METRIC_SILENT_CHANNELS),
                counts.get(METRIC_RESUBSCRIBES)
            ),
            (2, 1),
            "level2 and ticker counted, one resubscribe"
        );
        // Asked once per connection: the next heartbeats before the reconnect add nothing.
        assert_eq!(
            p.on_input(MarketInput::Ws(WsEvent::Heartbeat)),
            [MarketEvent::Heartbeat]
        );
        // The reconnect starts the clocks again.
        p.on_input(MarketInput::Ws(WsEvent::Connected));
        assert_eq!(
            p.on_input(MarketInput::Ws(WsEvent::Heartbeat)),
            [MarketEvent::Heartbeat]
        );
    }

    #[test]
    fn a_zero_channel_threshold_is_a_config_error() {
        let cfg = CoinbaseWsConfig {
            channel_silent_after: Some(Duration::ZERO),
            ..CoinbaseWsConfig::default()
        };
        let problems = cfg.validate().unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("channel_silent_after")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_malformed_frame_that_may_be_book_data_rebuilds_the_books_once() {
        let (mut p, notify) = pump();
        p.on_input(MarketInput::Ws(WsEvent::Connected));
        text(&mut p, "ws_l2_snapshot.json");
        // A broken ticker is only skipped.
        let bad_ticker = r#"{"channel":"ticker","sequence_num":5,"events":[{"type":"update","tickers":[{"product_id":"BTC-USD","best_bid":"x"}]}]}"#;
        assert!(
            p.on_input(MarketInput::Ws(WsEvent::Text(bad_ticker.into())))
                .is_empty()
        );
        assert!(futures_util::FutureExt::now_or_never(notify.notified()).is_none());
        // Garbage could have been an l2 update: every book is reported, one reconnect.
        let ev = p.on_input(MarketInput::Ws(WsEvent::Text("{garbage".into())));
        assert!(
            matches!(&ev[..], [MarketEvent::BookGap { detail, .. }] if detail.contains("malformed")),
            "{ev:?}"
        );
        assert!(
            p.on_input(MarketInput::Ws(WsEvent::Text("not json".into())))
                .is_empty()
        );
        assert!(futures_util::FutureExt::now_or_never(notify.notified()).is_some());
        assert!(futures_util::FutureExt::now_or_never(notify.notified()).is_none());
        // Updates before the new snapshot are dropped.
        assert!(text(&mut p, "ws_l2_update.json").is_empty());
    }

    #[test]
    fn user_orders_become_order_updates_and_fills() {
        let mut p = UserPump::default();
        let snap = fixture("ws_user_snapshot.json");
        let ev = p.on_event(WsEvent::Text(snap));
        let [UserEvent::Order(u)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        assert_eq!(u.status, OrderStatus::New);
        assert_eq!((u.qty, u.price), (dec!(1), Some(dec!(68901.00))));
        let ev = p.on_event(WsEvent::Text(fixture("ws_user_order.json")));
        let [UserEvent::Order(u), UserEvent::Fill(f)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        assert_eq!(u.status, OrderStatus::PartiallyFilled);
        assert_eq!((u.filled_qty, u.cum_quote), (dec!(0.4), dec!(27560.1)));
        assert_eq!(u.ts_ms, 1_775_572_203_123);
        assert_eq!(f.trade_id, "11111111-2222-4333-8444-555555555555:0.4");
        assert_eq!(
            (f.qty, f.price, f.fee),
            (dec!(0.4), dec!(68900.25), dec!(16.536))
        );
        assert_eq!(f.fee_asset, "USD");
        assert_eq!(
            f.client_order_id.as_str(),
            "gk0123456789abcdef0123456789abcdef"
        );
        // Replayed: the order again, no second fill.
        let ev = p.on_event(WsEvent::Text(fixture("ws_user_order.json")));
        assert!(matches!(&ev[..], [UserEvent::Order(_)]), "{ev:?}");
        assert_eq!(p.on_event(WsEvent::Connected), [UserEvent::Connected]);
        assert!(p.on_event(WsEvent::Text("[1]".into())).is_empty());
    }

    /// The fast typed mapping agrees with the crate's one order parser on the same
    /// websocket order objects (the parser's `ts_ms` is the creation time; the stream uses
    /// the envelope's).
    #[test]
    fn the_typed_mapping_agrees_with_the_common_order_parser() {
        for name in ["ws_user_order.json", "ws_user_snapshot.json"] {
            let text = fixture(name);
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            let CoinbaseWsMessage::User { events, .. } = parse(&text).unwrap() else {
                panic!("{name}")
            };
            let o = &events[0].orders[0];
            let common = crate::common::order_update(&value["events"][0]["orders"][0]).unwrap();
            let ours = order_update(o, common.ts_ms).unwrap();
            assert_eq!(ours, common, "{name}");
        }
    }

    #[test]
    fn subscribe_messages_carry_one_channel_and_a_fresh_jwt_each() {
        let key = crate::CdpKey::generate("organizations/o/apiKeys/k", crate::JwtAlgorithm::EdDsa)
            .unwrap();
        let signer = Arc::new(CdpJwtSigner::new(key));
        let mut h = hooks(
            signer,
            &["level2", "ticker", "market_trades"],
            vec!["BTC-USD".into()],
        );
        let msgs = h.subscribe_messages().unwrap();
        let parsed: Vec<serde_json::Value> = msgs
            .iter()
            .map(|m| serde_json::from_str(m).unwrap())
            .collect();
        let channels: Vec<_> = parsed
            .iter()
            .map(|v| v["channel"].as_str().unwrap())
            .collect();
        assert_eq!(
            channels,
            ["heartbeats", "level2", "ticker", "market_trades"]
        );
        assert!(parsed[0].get("product_ids").is_none());
        assert_eq!(parsed[1]["product_ids"], serde_json::json!(["BTC-USD"]));
        let jwts: std::collections::HashSet<_> = parsed
            .iter()
            .map(|v| v["jwt"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(jwts.len(), 4, "a token per message");
        // The guard in front: a gap drops the connection.
        h.on_connect();
        assert_eq!(
            h.on_text(r#"{"sequence_num":0}"#),
            gekko_net::FrameVerdict::Deliver
        );
        assert!(matches!(
            h.on_text(r#"{"sequence_num":2}"#),
            gekko_net::FrameVerdict::Reconnect(_)
        ));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        /// The pumps' mapping (past the parser) on fixtures with bytes cut out and
        /// extreme sequence numbers: never a panic.
        #[test]
        fn the_pumps_never_panic(
            idx in 0usize..6,
            cut in proptest::prelude::any::<usize>(),
            len in 0usize..8,
            seq in proptest::prelude::any::<u64>(),
        ) {
            let names = ["ws_l2_snapshot.json", "ws_l2_update.json", "ws_ticker.json",
                "ws_market_trades.json", "ws_user_order.json", "ws_user_snapshot.json"];
            let mut bytes = fixture(names[idx])
                .replace("\"sequence_num\":", &format!("\"sequence_num\":{seq},\"x\":"))
                .into_bytes();
            let at = cut % bytes.len();
            bytes.drain(at..(at + len).min(bytes.len()));
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let (mut p, _) = pump();
            p.on_input(MarketInput::Ws(WsEvent::Connected));
            text_of(&mut p, &fixture("ws_l2_snapshot.json"));
            text_of(&mut p, &text);
            text_of(&mut p, &text);
            let mut u = UserPump::default();
            u.on_event(WsEvent::Text(text.clone()));
            u.on_event(WsEvent::Text(text));
        }
    }

    fn text_of(p: &mut MarketPump, text: &str) -> Vec<MarketEvent> {
        p.on_input(MarketInput::Ws(WsEvent::Text(text.to_owned())))
    }

    /// Counts counter increments by name (a test-only [`metrics::Recorder`]).
    #[derive(Debug, Default)]
    struct Counts(std::sync::Mutex<HashMap<String, Arc<std::sync::atomic::AtomicU64>>>);

    impl Counts {
        fn get(&self, name: &str) -> u64 {
            self.0
                .lock()
                .unwrap()
                .get(name)
                .map_or(0, |c| c.load(std::sync::atomic::Ordering::SeqCst))
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
        fn register_counter(
            &self,
            key: &metrics::Key,
            _: &metrics::Metadata<'_>,
        ) -> metrics::Counter {
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

    #[test]
    fn malformed_frames_gaps_and_resubscribes_are_counted() {
        let counts = Counts::default();
        metrics::with_local_recorder(&counts, || {
            let (mut p, _) = pump();
            p.on_input(MarketInput::Ws(WsEvent::Connected));
            text(&mut p, "ws_l2_snapshot.json");
            text_of(&mut p, r#"{"channel":"ticker","events":[{"type":"x"}]}"#);
            assert_eq!(
                (
                    counts.get(METRIC_MALFORMED),
                    counts.get(METRIC_RESUBSCRIBES)
                ),
                (1, 0)
            );
            text_of(&mut p, "{garbage");
            assert_eq!(
                (
                    counts.get(METRIC_MALFORMED),
                    counts.get(METRIC_RESUBSCRIBES)
                ),
                (2, 1)
            );
            p.on_input(MarketInput::Ws(WsEvent::Disconnected {
                reason: "sequence gap: 3 -> 9".into(),
            }));
            // The gap's reconnect is the book's resubscribe.
            assert_eq!(
                (counts.get(METRIC_GAPS), counts.get(METRIC_RESUBSCRIBES)),
                (1, 2)
            );
            p.on_input(MarketInput::Ws(WsEvent::Connected));
            text(&mut p, "ws_l2_snapshot.json");
            // The resync for that gap is answered by the snapshot; a later one resubscribes.
            p.on_input(MarketInput::Resync(btc()));
            assert_eq!(counts.get(METRIC_RESUBSCRIBES), 2);
            p.on_input(MarketInput::Resync(btc()));
            assert_eq!(counts.get(METRIC_RESUBSCRIBES), 3);
            let mut u = UserPump::default();
            u.on_event(WsEvent::Text("nope".into()));
            u.on_event(WsEvent::Disconnected {
                reason: "sequence gap: 1 -> 3".into(),
            });
            assert_eq!(
                (counts.get(METRIC_MALFORMED), counts.get(METRIC_GAPS)),
                (3, 2)
            );
        });
    }

    #[test]
    fn config_validation_names_every_problem() {
        assert!(CoinbaseWsConfig::default().validate().is_ok());
        let cfg = CoinbaseWsConfig {
            market_url: "https://x".into(),
            user_url: "ftp://y".into(),
            stale_after: Duration::ZERO,
            extra_roots_pem: vec!["junk".into()],
            ..CoinbaseWsConfig::default()
        };
        assert_eq!(cfg.validate().unwrap_err().len(), 4);
    }
}
