//! The websocket hosts (reference 1.6): market data and user order data.
//!
//! Two listeners, like the venue's two hosts, serve the same protocol: the market host
//! (`advanced-trade-ws`) serves `heartbeats`, `ticker`, `ticker_batch` (the tickers
//! without best bid/ask, every [`SimConfig::ws_ticker_batch_interval`]), `level2` (sent
//! as channel `l2_data`), `market_trades`, `status` (a snapshot of the products, which
//! never change state here) and `user`; the user host (`advanced-trade-ws-user`)
//! serves `user` and `heartbeats` and answers any other channel with an error. Any path
//! is accepted (the official SDK connects to the bare host).
//!
//! Protocol, as the reference and its checklist (1.8 item 4) describe it:
//! - a connection that has not subscribed successfully within
//!   [`SimConfig::ws_subscribe_timeout`] (5 s) is closed;
//! - one channel per `subscribe`/`unsubscribe` message; both are answered with a
//!   `subscriptions` message listing what the connection is subscribed to now, then a
//!   subscribe gets its snapshot(s): `l2_data` `snapshot` (whole book, per product),
//!   `ticker`/`ticker_batch` `snapshot`, `market_trades` `snapshot` (recent trades,
//!   newest first), `status` `snapshot`, `user` `snapshot` (the account's open
//!   orders). Subscribing again to a product already subscribed sends a fresh
//!   snapshot: that is how a client resyncs after a gap;
//! - a `jwt` in a message is verified like a REST JWT but must carry no `uri`; a bad one
//!   is answered `{"type":"error","message":...}` and the subscription is refused, and
//!   `user` requires a valid one (its account is the key's);
//! - every message has the envelope `channel`, `client_id` `""`, `timestamp` (RFC 3339,
//!   microseconds) and `sequence_num`, which starts at 0 and grows by exactly one per
//!   message of this connection, across all channels. Error messages have no envelope
//!   and no number.
//!
//! Snapshots never miss or double an update: the connection's receiver of the numbered
//! event stream (see `encode.rs`) is created when the TCP connection is accepted, and a
//! snapshot is built under the venue lock together with the stream's current number;
//! later events numbered at or below it are skipped for that subscription.
//!
//! Faults: `SilentChannel` stops the messages of one channel (its wire name, `l2_data`)
//! while heartbeats and the other channels flow, without using sequence numbers;
//! `DropWebSockets` drops every socket without a close frame; `SilentStreams`
//! (and `MarketDataOutage`) suppress every outgoing frame, heartbeats included, and a
//! suppressed message still uses its sequence number, so a client sees the loss as a
//! gap when the stream comes back; `DepthGap` makes the product's next `l2_data` update
//! skip [`GAP_SKIP`] sequence numbers on every connection that gets it; `MalformedNext`
//! replaces the next market-data updates (`l2_data`, `ticker`, `ticker_batch`,
//! `market_trades`; never acknowledgements or snapshots) sent on any connection by
//! truncated JSON and by an envelope whose `events` is not a list, in turn, each using
//! the sequence number of the message it replaces.
//!
//! [`SimConfig::ws_subscribe_timeout`]: super::SimConfig::ws_subscribe_timeout
//! [`SimConfig::ws_ticker_batch_interval`]: super::SimConfig::ws_ticker_batch_interval

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep_until, timeout};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::encode::{CbEvent, Payload, l2_level, trade_json};
use super::rest::{dec, rfc3339};
use super::state::Shared;
use super::tls::HANDSHAKE_TIMEOUT;
use crate::harness::{Lifecycle, bump};

/// Sequence numbers an injected `DepthGap` skips.
pub(crate) const GAP_SKIP: u64 = 2;
/// Trades in a `market_trades` snapshot.
const SNAPSHOT_TRADES: usize = 50;

/// Which venue host a listener plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WsHost {
    /// `advanced-trade-ws.coinbase.com`: market data (and `user`).
    Market,
    /// `advanced-trade-ws-user.coinbase.com`: `user` and `heartbeats`.
    User,
}

/// The channels served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Channel {
    Heartbeats,
    Ticker,
    TickerBatch,
    Level2,
    MarketTrades,
    Status,
    User,
}

impl Channel {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "heartbeats" => Self::Heartbeats,
            "ticker" => Self::Ticker,
            "ticker_batch" => Self::TickerBatch,
            "level2" => Self::Level2,
            "status" => Self::Status,
            "market_trades" => Self::MarketTrades,
            "user" => Self::User,
            _ => return None,
        })
    }

    /// The name a client subscribes with (and the `subscriptions` message lists).
    fn name(self) -> &'static str {
        match self {
            Self::Heartbeats => "heartbeats",
            Self::Ticker => "ticker",
            Self::TickerBatch => "ticker_batch",
            Self::Level2 => "level2",
            Self::Status => "status",
            Self::MarketTrades => "market_trades",
            Self::User => "user",
        }
    }

    /// Market-data channels are about named products.
    fn needs_products(self) -> bool {
        matches!(
            self,
            Self::Ticker | Self::TickerBatch | Self::Level2 | Self::MarketTrades
        )
    }

    fn served_on(self, host: WsHost) -> bool {
        host == WsHost::Market || matches!(self, Self::User | Self::Heartbeats)
    }
}

/// Serves one websocket host on `listener` (TLS when `tls` is given) until shutdown.
pub(crate) fn serve(
    lifecycle: &Lifecycle,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Arc<Shared>,
    host: WsHost,
) {
    lifecycle.accept_loop(listener, move |tcp| {
        // Receivers are created at accept, before any handshake: see the module docs.
        let events = app.events.subscribe();
        let drops = app.harness.faults.ws_drops();
        let (app, tls) = (Arc::clone(&app), tls.clone());
        async move {
            match tls {
                Some(acceptor) => {
                    if let Ok(Ok(stream)) = timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        connection(stream, app, host, events, drops).await;
                    }
                }
                None => connection(tcp, app, host, events, drops).await,
            }
        }
    });
}

/// Decrements the open-connection gauge however the connection ends.
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.harness.stats.ws_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why a connection loop stops.
struct Closed;

/// Per-connection state.
struct Conn {
    app: Arc<Shared>,
    host: WsHost,
    /// `sequence_num` of the next message.
    next_seq: u64,
    /// A subscribe succeeded (the deadline no longer applies).
    subscribed: bool,
    /// channel -> product (`""` for channels without products) -> the event number its
    /// snapshot covers.
    subs: BTreeMap<Channel, BTreeMap<String, u64>>,
    /// The account of the `user` subscription.
    account: Option<String>,
    heartbeat_counter: u64,
    malformed_sent: u64,
    started: Instant,
}

impl Conn {
    /// The snapshot number of `product` on `channel`, if subscribed.
    fn since(&self, channel: Channel, product: &str) -> Option<u64> {
        let m = self.subs.get(&channel)?;
        m.get(product).or_else(|| m.get("")).copied()
    }

    /// Sends one enveloped message (using a sequence number even when silenced).
    async fn send<S>(
        &mut self,
        ws: &mut WebSocketStream<S>,
        channel: &str,
        events: Value,
        market: bool,
    ) -> Result<(), Closed>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let faults = &self.app.harness.faults;
        // A silent channel has nothing to send: no message, no sequence number.
        if faults.is_channel_silent(channel) {
            return Ok(());
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        if faults.is_silent() {
            return Ok(());
        }
        let timestamp = rfc3339(self.app.now_ms());
        let text = if market && faults.take_malformed() {
            self.malformed_sent += 1;
            let bad = json!({"channel": channel, "client_id": "", "timestamp": timestamp,
                "sequence_num": seq, "events": {"type": "update"}})
            .to_string();
            if self.malformed_sent % 2 == 1 {
                // Truncated JSON (cut on a character boundary).
                let mut cut = bad.len() / 2;
                while !bad.is_char_boundary(cut) {
                    cut -= 1;
                }
                bad[..cut].to_owned()
            } else {
                bad
            }
        } else {
            json!({"channel": channel, "client_id": "", "timestamp": timestamp,
                "sequence_num": seq, "events": events})
            .to_string()
        };
        ws.send(Message::text(text)).await.map_err(|_| Closed)?;
        bump(&self.app.harness.stats.ws_messages_sent);
        Ok(())
    }

    /// Sends `{"type":"error","message":..}` (no envelope, no sequence number).
    async fn error<S>(&self, ws: &mut WebSocketStream<S>, message: &str) -> Result<(), Closed>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        if self.app.harness.faults.is_silent() {
            return Ok(());
        }
        let text = json!({"type": "error", "message": message}).to_string();
        ws.send(Message::text(text)).await.map_err(|_| Closed)?;
        bump(&self.app.harness.stats.ws_messages_sent);
        Ok(())
    }

    async fn heartbeat<S>(&mut self, ws: &mut WebSocketStream<S>) -> Result<(), Closed>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        if !self.subs.contains_key(&Channel::Heartbeats) {
            return Ok(());
        }
        self.heartbeat_counter += 1;
        // Go's time.Time String(), as the venue sends it (clients treat it as opaque).
        let iso = rfc3339(self.app.now_ms());
        let up = self.started.elapsed();
        let current_time = format!(
            "{} {}000 +0000 UTC m=+{}.{:09}",
            &iso[..10],
            &iso[11..iso.len() - 1],
            up.as_secs(),
            up.subsec_nanos()
        );
        let events =
            json!([{"current_time": current_time, "heartbeat_counter": self.heartbeat_counter}]);
        self.send(ws, "heartbeats", events, false).await
    }

    /// One `ticker_batch` update of every product subscribed to it.
    async fn ticker_batch<S>(&mut self, ws: &mut WebSocketStream<S>) -> Result<(), Closed>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let Some(products) = self.subs.get(&Channel::TickerBatch) else {
            return Ok(());
        };
        let products: Vec<String> = products.keys().cloned().collect();
        let tickers = batch_tickers(&self.app, &products);
        let events = json!([{"type": "update", "tickers": tickers}]);
        self.send(ws, "ticker_batch", events, true).await
    }

    /// Whether `ev` goes out on this connection: it is about a subscription (and, for
    /// orders, this connection's account) and came after that subscription's snapshot.
    fn wanted(&self, ev: &CbEvent) -> bool {
        let since = match &ev.payload {
            Payload::L2 { product, .. } => self.since(Channel::Level2, product),
            Payload::Ticker { product, .. } => self.since(Channel::Ticker, product),
            Payload::Trade { product, .. } => self.since(Channel::MarketTrades, product),
            Payload::Order {
                account, product, ..
            } => {
                if self.account.as_deref() != Some(account.as_str()) {
                    return false;
                }
                self.since(Channel::User, product)
            }
        };
        since.is_some_and(|s| ev.seq > s)
    }

    async fn on_event<S>(&mut self, ws: &mut WebSocketStream<S>, ev: &CbEvent) -> Result<(), Closed>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        if !self.wanted(ev) {
            return Ok(());
        }
        match &ev.payload {
            Payload::L2 {
                product,
                updates,
                gap,
            } => {
                if *gap {
                    self.next_seq += GAP_SKIP;
                }
                let events = json!([{"type": "update", "product_id": product, "updates": updates}]);
                self.send(ws, "l2_data", events, true).await
            }
            Payload::Ticker { ticker, .. } => {
                let events = json!([{"type": "update", "tickers": [ticker]}]);
                self.send(ws, "ticker", events, true).await
            }
            Payload::Trade { trade, .. } => {
                let events = json!([{"type": "update", "trades": [trade]}]);
                self.send(ws, "market_trades", events, true).await
            }
            Payload::Order { order, .. } => {
                let events = json!([{"type": "update", "orders": [order]}]);
                self.send(ws, "user", events, false).await
            }
        }
    }

    /// The `subscriptions` message's event: what this connection is subscribed to.
    fn subscriptions(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (ch, products) in &self.subs {
            let list: Vec<&String> = products.keys().filter(|p| !p.is_empty()).collect();
            m.insert(ch.name().to_owned(), json!(list));
        }
        json!([{"subscriptions": m}])
    }

    /// Handles one client message.
    async fn on_client<S>(&mut self, ws: &mut WebSocketStream<S>, text: &str) -> Result<(), Closed>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        match self.parse(text) {
            Ok(req) => self.apply(ws, req).await,
            Err(message) => self.error(ws, &message).await,
        }
    }

    /// Parses and checks a subscribe/unsubscribe; `Err` is the error message to send.
    fn parse(&self, text: &str) -> Result<Request, String> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| format!("failed to parse message: {e}"))?;
        let subscribe = match v.get("type").and_then(Value::as_str) {
            Some("subscribe") => true,
            Some("unsubscribe") => false,
            _ => return Err("message type must be subscribe or unsubscribe".to_owned()),
        };
        let name = v.get("channel").and_then(Value::as_str).unwrap_or("");
        let channel =
            Channel::parse(name).ok_or_else(|| format!("channel {name:?} is not supported"))?;
        if !channel.served_on(self.host) {
            return Err(format!(
                "channel {name} is not served on this host (use the market data host)"
            ));
        }
        let products: Vec<String> = match v.get("product_ids") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|p| p.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or("product_ids must be a list of strings")?,
            Some(_) => return Err("product_ids must be a list of strings".to_owned()),
        };
        let account = match v.get("jwt").and_then(Value::as_str) {
            Some(jwt) => {
                let now_s = self.app.now_ms().div_euclid(1000);
                let verified = self.app.verifier().verify_ws(jwt, now_s, self.app.rules);
                match verified {
                    Ok(name) => Some(name),
                    Err(e) => {
                        tracing::debug!(reason = %e, "sim-coinbase: websocket JWT refused");
                        return Err("authentication failure".to_owned());
                    }
                }
            }
            None => None,
        };
        if channel == Channel::User && account.is_none() {
            return Err("authentication failure: the user channel requires a jwt".to_owned());
        }
        if subscribe && channel.needs_products() && products.is_empty() {
            return Err(format!("product_ids are required for channel {name}"));
        }
        {
            let v = self.app.venue();
            if let Some(p) = products.iter().find(|p| v.product_idx(p).is_none()) {
                return Err(format!("unknown product id {p}"));
            }
        }
        Ok(Request {
            subscribe,
            channel,
            products,
            account,
        })
    }

    /// Applies a checked request: the acknowledgement, then the snapshots.
    async fn apply<S>(&mut self, ws: &mut WebSocketStream<S>, req: Request) -> Result<(), Closed>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let ch = req.channel;
        if !req.subscribe {
            if req.products.is_empty() {
                self.subs.remove(&ch);
            } else if let Some(m) = self.subs.get_mut(&ch) {
                for p in &req.products {
                    m.remove(p);
                }
                if m.is_empty() {
                    self.subs.remove(&ch);
                }
            }
            if !self.subs.contains_key(&Channel::User) {
                self.account = None;
            }
            let ack = self.subscriptions();
            return self.send(ws, "subscriptions", ack, false).await;
        }
        let keys: Vec<String> = if req.products.is_empty() {
            vec![String::new()]
        } else {
            req.products.clone()
        };
        if ch == Channel::User {
            self.account.clone_from(&req.account);
        }
        let (since, snapshots) = self.snapshots(ch, &req);
        let m = self.subs.entry(ch).or_default();
        for k in keys {
            m.insert(k, since);
        }
        self.subscribed = true;
        let ack = self.subscriptions();
        self.send(ws, "subscriptions", ack, false).await?;
        for (channel, events) in snapshots {
            self.send(ws, channel, events, false).await?;
        }
        Ok(())
    }

    /// The snapshot messages of a subscribe and the event number they cover, built under
    /// one venue lock.
    fn snapshots(&self, ch: Channel, req: &Request) -> (u64, Vec<(&'static str, Value)>) {
        let now = self.app.now_ms();
        let v = self.app.venue();
        let since = v.sink().last_seq();
        let mut out = Vec::new();
        let idx_of = |p: &str| v.product_idx(p);
        match ch {
            Channel::Heartbeats => {}
            Channel::Level2 => {
                for p in &req.products {
                    let Some(idx) = idx_of(p) else { continue };
                    let (_, bids, asks) = v.depth(idx, usize::MAX);
                    let updates: Vec<Value> = bids
                        .iter()
                        .map(|l| l2_level("bid", now, *l))
                        .chain(asks.iter().map(|l| l2_level("offer", now, *l)))
                        .collect();
                    out.push((
                        "l2_data",
                        json!([{"type": "snapshot", "product_id": p, "updates": updates}]),
                    ));
                }
            }
            Channel::Ticker => {
                let tickers: Vec<Value> = req
                    .products
                    .iter()
                    .filter_map(|p| {
                        let (bid, ask) = v.top(idx_of(p)?);
                        Some(v.sink().ticker(p, bid, ask))
                    })
                    .collect();
                out.push(("ticker", json!([{"type": "snapshot", "tickers": tickers}])));
            }
            Channel::TickerBatch => {
                drop(v);
                let tickers = batch_tickers(&self.app, &req.products);
                out.push((
                    "ticker_batch",
                    json!([{"type": "snapshot", "tickers": tickers}]),
                ));
                return (since, out);
            }
            Channel::Status => {
                let products: Vec<Value> = v
                    .products()
                    .iter()
                    .filter(|p| req.products.is_empty() || req.products.contains(&p.symbol))
                    .map(status_product)
                    .collect();
                out.push((
                    "status",
                    json!([{"type": "snapshot", "products": products}]),
                ));
            }
            Channel::MarketTrades => {
                let mut trades = Vec::new();
                for p in &req.products {
                    let Some(idx) = idx_of(p) else { continue };
                    let recent = v.recent_trades(idx, SNAPSHOT_TRADES);
                    trades.extend(recent.iter().rev().map(|t| trade_json(p, t)));
                }
                out.push((
                    "market_trades",
                    json!([{"type": "snapshot", "trades": trades}]),
                ));
            }
            Channel::User => {
                let account = req.account.as_deref().unwrap_or("");
                let orders: Vec<Value> = v
                    .open_orders(account)
                    .iter()
                    .filter(|o| req.products.is_empty() || req.products.contains(&o.symbol))
                    .map(|o| v.sink().order(o, false))
                    .collect();
                out.push(("user", json!([{"type": "snapshot", "orders": orders}])));
            }
        }
        (since, out)
    }
}

/// The tickers of `products` without the best bid/ask fields (reference 1.6:
/// `ticker_batch` carries none), built under one venue lock.
fn batch_tickers(app: &Shared, products: &[String]) -> Vec<Value> {
    let v = app.venue();
    products
        .iter()
        .filter_map(|p| {
            let (bid, ask) = v.top(v.product_idx(p)?);
            let mut t = v.sink().ticker(p, bid, ask);
            if let Some(m) = t.as_object_mut() {
                m.retain(|k, _| !k.starts_with("best_"));
            }
            Some(t)
        })
        .collect()
}

/// A `status` channel product.
fn status_product(p: &crate::engine::SimSymbol) -> Value {
    json!({
        "product_type": "SPOT",
        "id": p.symbol,
        "base_currency": p.base,
        "quote_currency": p.quote,
        "base_increment": dec(p.step_size),
        "quote_increment": dec(p.tick_size),
        "display_name": format!("{}/{}", p.base, p.quote),
        "status": "online",
        "status_message": "",
        "min_market_funds": dec(p.min_notional),
    })
}

/// A checked subscribe or unsubscribe.
struct Request {
    subscribe: bool,
    channel: Channel,
    products: Vec<String>,
    /// The verified JWT's key name, if a JWT was sent.
    account: Option<String>,
}

/// Serves one connection until it closes, is dropped by a fault, falls behind, misses
/// its subscribe deadline, or the simulator shuts down.
async fn connection<S>(
    stream: S,
    app: Arc<Shared>,
    host: WsHost,
    mut events: broadcast::Receiver<Arc<CbEvent>>,
    mut drops: watch::Receiver<u64>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Ok(Ok(mut ws)) = timeout(HANDSHAKE_TIMEOUT, tokio_tungstenite::accept_async(stream)).await
    else {
        return;
    };
    bump(&app.harness.stats.ws_connections);
    app.harness.stats.ws_open.fetch_add(1, Ordering::Relaxed);
    let _open = OpenGuard(Arc::clone(&app));
    let started = Instant::now();
    let deadline = started + app.ws_subscribe_timeout;
    let period = app.ws_heartbeat_interval;
    let mut heartbeat = interval_at(started + period, period);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let batch_period = app.ws_ticker_batch_interval;
    let mut batch = interval_at(started + batch_period, batch_period);
    batch.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut conn = Conn {
        app: Arc::clone(&app),
        host,
        next_seq: 0,
        subscribed: false,
        subs: BTreeMap::new(),
        account: None,
        heartbeat_counter: 0,
        malformed_sent: 0,
        started,
    };
    loop {
        let step: Result<(), Closed> = tokio::select! {
            () = app.harness.cancel.cancelled() => Err(Closed),
            // Any change (or the sender going away) drops the socket without a close frame.
            _ = drops.changed() => Err(Closed),
            () = sleep_until(deadline), if !conn.subscribed => {
                tracing::debug!("sim-coinbase: closing a websocket that did not subscribe in time");
                let _ = ws.send(Message::Close(None)).await;
                Err(Closed)
            }
            _ = heartbeat.tick() => conn.heartbeat(&mut ws).await,
            _ = batch.tick() => conn.ticker_batch(&mut ws).await,
            ev = events.recv() => match ev {
                Ok(ev) => conn.on_event(&mut ws, &ev).await,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, "sim-coinbase: closing a websocket that fell behind");
                    Err(Closed)
                }
                Err(broadcast::error::RecvError::Closed) => Err(Closed),
            },
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => conn.on_client(&mut ws, t.as_str()).await,
                // tungstenite queues the pong itself; flushing sends it now.
                Some(Ok(Message::Ping(_))) if !app.harness.faults.is_silent() => {
                    ws.flush().await.map_err(|_| Closed)
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => Err(Closed),
                Some(Ok(_)) => Ok(()),
            },
        };
        if step.is_err() {
            break;
        }
    }
    // Dropping `ws` ends the connection (without a close frame unless one was sent).
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_util::sync::CancellationToken;

    fn conn() -> Conn {
        let cfg = super::super::SimConfig::default();
        let app = Arc::new(Shared::new(&cfg, CancellationToken::new()).expect("state"));
        Conn {
            app,
            host: WsHost::Market,
            next_seq: 0,
            subscribed: false,
            subs: BTreeMap::new(),
            account: None,
            heartbeat_counter: 0,
            malformed_sent: 0,
            started: Instant::now(),
        }
    }

    fn l2(seq: u64, product: &str) -> CbEvent {
        CbEvent {
            seq,
            payload: Payload::L2 {
                product: product.into(),
                updates: json!([]),
                gap: false,
            },
        }
    }

    fn order(seq: u64, account: &str) -> CbEvent {
        CbEvent {
            seq,
            payload: Payload::Order {
                account: account.into(),
                product: "BTC-USD".into(),
                order: json!({}),
            },
        }
    }

    #[test]
    fn events_a_snapshot_already_holds_are_skipped() {
        let mut c = conn();
        assert!(!c.wanted(&l2(1, "BTC-USD")), "not subscribed");
        // A level2 snapshot of BTC-USD taken when the stream was at event 10.
        c.subs
            .entry(Channel::Level2)
            .or_default()
            .insert("BTC-USD".into(), 10);
        assert!(!c.wanted(&l2(9, "BTC-USD")));
        assert!(!c.wanted(&l2(10, "BTC-USD")), "already in the snapshot");
        assert!(c.wanted(&l2(11, "BTC-USD")));
        assert!(!c.wanted(&l2(11, "ETH-USD")), "another product");
        // `user` without products covers every product, only for its own account.
        c.subs
            .entry(Channel::User)
            .or_default()
            .insert(String::new(), 20);
        c.account = Some("k1".into());
        assert!(!c.wanted(&order(20, "k1")));
        assert!(c.wanted(&order(21, "k1")));
        assert!(!c.wanted(&order(21, "k2")), "another account's order");
    }

    #[test]
    fn channels_and_hosts() {
        for name in [
            "heartbeats",
            "ticker",
            "ticker_batch",
            "level2",
            "market_trades",
            "status",
            "user",
        ] {
            let ch = Channel::parse(name).expect(name);
            assert_eq!(ch.name(), name);
            assert!(ch.served_on(WsHost::Market));
            assert_eq!(
                ch.served_on(WsHost::User),
                matches!(name, "user" | "heartbeats"),
                "{name}"
            );
        }
        assert!(Channel::parse("candles").is_none());
        assert!(Channel::parse("l2_data").is_none(), "subscribe as level2");
    }
}
