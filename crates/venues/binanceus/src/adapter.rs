//! [`BinanceUsVenue`]: the domain layer, implementing [`VenueAdapter`] over the raw
//! [`BinanceUsHttpClient`] and the reconnecting websocket from `gekko_net::ws`.
//!
//! Responsibilities here are purely mapping: gekko instruments ↔ `BTCUSD`, Binance
//! statuses ↔ [`OrderStatus`](gekko_core::OrderStatus), `exchangeInfo` filters → [`InstrumentInfo`], stream
//! messages → [`MarketEvent`]/[`UserEvent`], and [`BinanceUsError`] → the gateway's error
//! types (with the submit outcome classified as rejected, not placed, or ambiguous). All
//! signing, rate limiting and retrying happens in the raw client.
//!
//! Streams run on the caller's [`StreamCtx`] (its tracker and token); each stops when the
//! token fires or its receiver is dropped. Inside one stream the websocket loop, the
//! [`gekko_net::relay()`] pump (and, for the user stream, the listen-key keepalive) share a
//! child token, so when one side stops the others follow.
//!
//! Book sequencing is done here, because the rules are Binance's: the market pump keeps a
//! [`BinanceUsDepthSync`] per instrument, fetches a REST snapshot after every connect (and
//! on [`VenueAdapter::resync_book`]), and emits a snapshot followed by deltas known to
//! connect, or a [`MarketEvent::BookGap`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt as _;
use gekko_core::backoff::{Backoff, BackoffConfig};
use gekko_core::sync::{lock, read, write};
use gekko_core::{
    Balance, BookSnapshot, ClientOrderId, InstrumentId, OrderRequest, OrderType, Quote, Side,
    TimeInForce, Trade, VenueId,
};
use gekko_net::{WsConfig, WsEvent, receiver_stream, relay, run_ws};
use gekko_venue::{
    AccountModel, BookFeed, BookUpdate, ClockReport, InstrumentInfo, LastFill, MarketEvent,
    OrderUpdate, RejectReason, StreamCtx, SubmitError, UserEvent, VenueAdapter, VenueCaps,
    VenueError,
};
use rust_decimal::Decimal;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::common::consts::{self, codes};
use crate::common::{BinanceUsExecutionType, split_venue_symbol, stream_symbol, venue_symbol};
use crate::config::BinanceUsConfig;
use crate::error::BinanceUsError;
use crate::http::models::{Account, OrderResponse, SymbolFilter, SymbolInfo};
use crate::http::{BinanceUsHttpClient, NewOrder, OrderRespType};
use crate::websocket::{
    BinanceUsDepthSync, BinanceUsWsMessage, DepthDiff, DepthStep, ExecutionReportMsg, parse,
};

/// Counter: stream frames that could not be parsed; labels `venue`, `stream`.
pub const METRIC_MALFORMED: &str = "gekko_venue_malformed_messages_total";

/// Capacity of the event channels handed to the gateway.
const EVENT_CHANNEL: usize = 4096;

/// Added to `recvWindow` for the unknown-order horizon: covers the clock offset gekko
/// tolerates (readiness requires it within 1 s) and the request's time on the wire.
const HORIZON_MARGIN: Duration = Duration::from_secs(2);

/// Binance.US as a gekko venue. Construct with [`BinanceUsVenue::new`].
#[derive(Debug)]
pub struct BinanceUsVenue {
    http: BinanceUsHttpClient,
    ws_base: String,
    stale_after: Duration,
    keepalive: Duration,
    /// `BTCUSD` → instrument, filled from `exchangeInfo` and from every request that names
    /// an instrument. A std `RwLock`: read per stream message, written rarely, never held
    /// across an await.
    symbols: Arc<RwLock<HashMap<String, InstrumentId>>>,
    recv_window: Duration,
    /// Resync requests for the running market stream's pump (set when it starts).
    resync: Mutex<Option<mpsc::Sender<InstrumentId>>>,
}

impl BinanceUsVenue {
    /// Builds the venue from a config (validated here).
    ///
    /// # Errors
    /// [`BinanceUsError::Config`] listing every config problem, or
    /// [`BinanceUsError::Signing`] for an unusable key.
    pub fn new(config: BinanceUsConfig) -> Result<Self, BinanceUsError> {
        let http = BinanceUsHttpClient::new(&config)?;
        Ok(Self {
            http,
            ws_base: config.ws_base.trim_end_matches('/').to_owned(),
            stale_after: config.stale_after,
            keepalive: config.listen_key_keepalive,
            symbols: Arc::new(RwLock::new(HashMap::new())),
            recv_window: Duration::from_millis(config.recv_window_ms),
            resync: Mutex::new(None),
        })
    }

    /// The raw client, for calls the gateway trait does not cover.
    #[must_use]
    pub fn http(&self) -> &BinanceUsHttpClient {
        &self.http
    }

    /// The horizon after which a client id the venue does not know was never placed:
    /// `recvWindow` plus a margin. A request older than `recvWindow` is refused with
    /// `-1021`, so a delayed submit cannot appear after it.
    #[must_use]
    pub fn unknown_order_horizon(&self) -> Duration {
        self.recv_window + HORIZON_MARGIN
    }

    /// Records the instrument and returns its venue symbol.
    fn remember(&self, id: &InstrumentId) -> String {
        let symbol = venue_symbol(id);
        remember(&self.symbols, &symbol, id);
        symbol
    }
}

fn remember(map: &RwLock<HashMap<String, InstrumentId>>, symbol: &str, id: &InstrumentId) {
    let known = read(map).contains_key(symbol);
    if !known {
        write(map).insert(symbol.to_owned(), id.clone());
    }
}

fn lookup(map: &RwLock<HashMap<String, InstrumentId>>, symbol: &str) -> Option<InstrumentId> {
    let hit = read(map).get(symbol).cloned();
    hit.or_else(|| split_venue_symbol(symbol))
}

fn malformed(reason: impl std::fmt::Display, payload: impl std::fmt::Debug) -> VenueError {
    VenueError::Malformed {
        reason: reason.to_string(),
        payload: gekko_net::http::truncate(&format!("{payload:?}"), 1024).to_owned(),
    }
}

/// Maps a REST order (submit, query, cancel, open orders) to an [`OrderUpdate`].
///
/// # Errors
/// [`VenueError::Malformed`] for a client id gekko cannot hold or an unknown status.
pub fn order_update_from_rest(
    o: &OrderResponse,
    instrument: &InstrumentId,
) -> Result<OrderUpdate, VenueError> {
    let client_order_id = ClientOrderId::parse(o.order_client_id()).map_err(|e| malformed(e, o))?;
    let status = o
        .status
        .to_core()
        .ok_or_else(|| malformed("unknown order status", o))?;
    Ok(OrderUpdate {
        client_order_id,
        venue_order_id: o.order_id.to_string(),
        instrument: instrument.clone(),
        side: o.side.to_core(),
        status,
        qty: o.orig_qty,
        price: (!o.price.is_zero()).then_some(o.price),
        filled_qty: o.executed_qty,
        cum_quote: o.cummulative_quote_qty,
        last_fill: None,
        ts_ms: o.ts_ms(),
        reject_reason: None,
    })
}

/// Maps an `executionReport` to an [`OrderUpdate`]; `last_fill` is set on `x=TRADE`.
/// The average fill price is `cum_quote / filled_qty` (`Z / z`).
///
/// # Errors
/// [`VenueError::Malformed`] for a client id gekko cannot hold or an unknown status.
pub fn order_update_from_report(
    r: &ExecutionReportMsg<'_>,
    instrument: &InstrumentId,
) -> Result<OrderUpdate, VenueError> {
    let client_order_id = ClientOrderId::parse(r.order_client_id()).map_err(|e| malformed(e, r))?;
    let status = r
        .status
        .to_core()
        .ok_or_else(|| malformed("unknown order status", r))?;
    let last_fill = (r.execution_type == BinanceUsExecutionType::Trade).then(|| LastFill {
        trade_id: r.trade_id.to_string(),
        price: r.last_price,
        qty: r.last_qty,
        fee: r.commission,
        fee_asset: r.commission_asset.as_deref().unwrap_or_default().to_owned(),
    });
    Ok(OrderUpdate {
        client_order_id,
        venue_order_id: r.order_id.to_string(),
        instrument: instrument.clone(),
        side: r.side.to_core(),
        status,
        qty: r.qty,
        price: (!r.price.is_zero()).then_some(r.price),
        filled_qty: r.cum_qty,
        cum_quote: r.cum_quote_qty,
        last_fill,
        ts_ms: r.event_time,
        reject_reason: (!r.reject_reason.is_empty() && r.reject_reason != "NONE")
            .then(|| r.reject_reason.to_string()),
    })
}

/// Maps an `exchangeInfo` symbol to [`InstrumentInfo`]: `PRICE_FILTER.tickSize`,
/// `LOT_SIZE.stepSize/minQty/maxQty`, and `MIN_NOTIONAL` or `NOTIONAL` `minNotional`.
#[must_use]
pub fn instrument_info(s: &SymbolInfo) -> InstrumentInfo {
    let mut info = InstrumentInfo {
        id: InstrumentId::new(VenueId::BinanceUs, &s.base_asset, &s.quote_asset),
        venue_symbol: s.symbol.clone(),
        tick_size: Decimal::ZERO,
        lot_size: Decimal::ZERO,
        min_qty: Decimal::ZERO,
        max_qty: Decimal::ZERO,
        min_notional: Decimal::ZERO,
        trading: s.status == "TRADING",
    };
    for f in &s.filters {
        match f {
            SymbolFilter::PriceFilter { tick_size, .. } => info.tick_size = *tick_size,
            SymbolFilter::LotSize {
                min_qty,
                max_qty,
                step_size,
            } => {
                info.lot_size = *step_size;
                info.min_qty = *min_qty;
                info.max_qty = *max_qty;
            }
            SymbolFilter::MinNotional { min_notional }
            | SymbolFilter::Notional { min_notional } => {
                info.min_notional = info.min_notional.max(*min_notional);
            }
            SymbolFilter::Other => {}
        }
    }
    info
}

/// Maps an account to balances.
#[must_use]
pub fn balances_from_account(a: &Account) -> Vec<Balance> {
    a.balances
        .iter()
        .map(|b| Balance {
            venue: VenueId::BinanceUs,
            asset: b.asset.to_ascii_uppercase(),
            free: b.free,
            locked: b.locked,
        })
        .collect()
}

/// A mapped market-stream message: an event as is, or a diff for the book sequencer.
#[derive(Debug, PartialEq, Eq)]
enum MarketMsg {
    Event(MarketEvent),
    Depth(InstrumentId, DepthDiff),
}

/// Maps one market-stream message, if it carries anything for gekko.
fn market_event(
    msg: BinanceUsWsMessage<'_>,
    symbols: &RwLock<HashMap<String, InstrumentId>>,
) -> Option<MarketMsg> {
    let instrument = |s: &str| {
        let id = lookup(symbols, s);
        if id.is_none() {
            tracing::debug!(symbol = s, "market message for an unknown symbol; skipped");
        }
        id
    };
    match msg {
        BinanceUsWsMessage::Combined { data, .. } => market_event(*data, symbols),
        BinanceUsWsMessage::BookTicker(m) => Some(MarketMsg::Event(MarketEvent::Quote(Quote {
            instrument: instrument(&m.symbol)?,
            bid: m.bid_price,
            bid_size: m.bid_qty,
            ask: m.ask_price,
            ask_size: m.ask_qty,
            // bookTicker carries no time; receive time stands in.
            ts_ms: gekko_core::now_ms(),
        }))),
        BinanceUsWsMessage::Trade(t) => Some(MarketMsg::Event(MarketEvent::Trade(Trade {
            instrument: instrument(&t.symbol)?,
            trade_id: t.trade_id.to_string(),
            price: t.price,
            qty: t.qty,
            // The buyer was the maker, so the aggressor sold.
            taker_side: if t.buyer_is_maker {
                Side::Sell
            } else {
                Side::Buy
            },
            ts_ms: t.trade_time,
        }))),
        BinanceUsWsMessage::DepthUpdate(d) => Some(MarketMsg::Depth(
            instrument(&d.symbol)?,
            DepthDiff {
                first_update_id: d.first_update_id,
                last_update_id: d.last_update_id,
                bids: d.bids.into_iter().map(Into::into).collect(),
                asks: d.asks.into_iter().map(Into::into).collect(),
                ts_ms: d.event_time,
            },
        )),
        BinanceUsWsMessage::Error { code, msg, .. } => {
            tracing::warn!(code, %msg, "Binance.US stream error reply");
            None
        }
        other => {
            tracing::trace!(?other, "market stream message without a gekko event");
            None
        }
    }
}

fn count_malformed(stream: &'static str, e: &crate::websocket::ParseError) {
    metrics::counter!(METRIC_MALFORMED, "venue" => consts::VENUE, "stream" => stream).increment(1);
    tracing::warn!(stream, error = %e, "malformed Binance.US stream message; skipped");
}

#[async_trait]
impl VenueAdapter for BinanceUsVenue {
    fn id(&self) -> VenueId {
        VenueId::BinanceUs
    }

    fn caps(&self) -> VenueCaps {
        VenueCaps {
            book_feed: BookFeed::SnapshotPlusDiffs,
            account: AccountModel::Spot,
            unknown_order_horizon: Some(self.unknown_order_horizon()),
            native_close_position: false,
            native_cancel_all: true,
        }
    }

    async fn verify_credentials(&self) -> Result<(), VenueError> {
        let account = self.http.account().await?;
        if account.can_trade {
            Ok(())
        } else {
            Err(VenueError::Auth(
                "the API key works but the account cannot trade (canTrade=false)".to_owned(),
            ))
        }
    }

    async fn sync_clock(&self) -> Result<ClockReport, VenueError> {
        Ok(self.http.sync_clock().await?)
    }

    fn clock_offset_ms(&self) -> i64 {
        self.http.clock().offset_ms()
    }

    async fn instruments(
        &self,
        wanted: &[InstrumentId],
    ) -> Result<Vec<InstrumentInfo>, VenueError> {
        let symbols: Vec<String> = wanted.iter().map(|i| self.remember(i)).collect();
        // `exchangeInfo?symbols=[...]` refuses the whole request (-1121) when one symbol
        // is not listed, and SUPPORTED_TRADING_PAIRS spans venues: then ask for every
        // symbol and keep the ones wanted, so an unlisted pair never stops the gateway.
        let info = match self.http.exchange_info(&symbols).await {
            Err(e) if e.code() == Some(codes::BAD_SYMBOL) && !symbols.is_empty() => {
                self.http.exchange_info(&[]).await?
            }
            other => other?,
        };
        let all: Vec<InstrumentInfo> = info.symbols.iter().map(instrument_info).collect();
        for i in &all {
            remember(&self.symbols, &i.venue_symbol, &i.id);
        }
        // The engine logs the wanted pairs missing from the answer, for every venue.
        Ok(if wanted.is_empty() {
            all
        } else {
            all.into_iter().filter(|i| wanted.contains(&i.id)).collect()
        })
    }

    async fn submit_order(&self, req: &OrderRequest) -> Result<OrderUpdate, SubmitError> {
        if req.order_type == OrderType::Limit && req.price.is_none() {
            return Err(SubmitError::NotPlaced(VenueError::rejected(
                "0",
                RejectReason::Other,
                "limit order without a price",
            )));
        }
        if let Some(t @ (TimeInForce::Gtd { .. } | TimeInForce::Gfd)) = req.time_in_force {
            return Err(SubmitError::NotPlaced(VenueError::rejected(
                "0",
                RejectReason::Other,
                format!(
                    "Binance.US does not support time in force {} (GTC, IOC and FOK only)",
                    t.as_str()
                ),
            )));
        }
        let order = NewOrder {
            symbol: self.remember(&req.instrument),
            side: req.side,
            order_type: req.order_type,
            qty: req.qty,
            price: req.price,
            time_in_force: req.time_in_force,
            client_order_id: req.client_order_id.as_str().to_owned(),
            resp_type: OrderRespType::Result,
        };
        match self.http.new_order(&order).await {
            // Accepted: a response we cannot map still means the order exists.
            Ok(resp) => order_update_from_rest(&resp, &req.instrument).map_err(|e| {
                SubmitError::Ambiguous(format!("accepted, but the answer is unreadable: {e}"))
            }),
            Err(e) => {
                let out = e.into_submit_error();
                tracing::warn!(client_order_id = %req.client_order_id, error = %out, "Binance.US order submit failed");
                Err(out)
            }
        }
    }

    async fn query_order(
        &self,
        instrument: &InstrumentId,
        client_order_id: &ClientOrderId,
    ) -> Result<Option<OrderUpdate>, VenueError> {
        let symbol = self.remember(instrument);
        match self
            .http
            .query_order(&symbol, client_order_id.as_str())
            .await
        {
            Ok(o) => order_update_from_rest(&o, instrument).map(Some),
            Err(e) if e.code() == Some(codes::NO_SUCH_ORDER) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn cancel_order(
        &self,
        instrument: &InstrumentId,
        client_order_id: &ClientOrderId,
    ) -> Result<OrderUpdate, VenueError> {
        let symbol = self.remember(instrument);
        match self
            .http
            .cancel_order(&symbol, client_order_id.as_str())
            .await
        {
            Ok(o) => order_update_from_rest(&o, instrument),
            Err(e) if e.code() == Some(codes::CANCEL_REJECTED) => {
                // Unknown or already closed, possibly by an earlier attempt of this very
                // cancel whose answer was lost: report the order's actual final state.
                if let Ok(Some(u)) = self.query_order(instrument, client_order_id).await
                    && u.status.is_terminal()
                {
                    return Ok(u);
                }
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn open_orders(&self, instrument: &InstrumentId) -> Result<Vec<OrderUpdate>, VenueError> {
        let symbol = self.remember(instrument);
        let orders = self.http.open_orders(&symbol).await?;
        orders
            .iter()
            .map(|o| order_update_from_rest(o, instrument))
            .collect()
    }

    async fn cancel_all(&self, instrument: &InstrumentId) -> Result<Vec<OrderUpdate>, VenueError> {
        let symbol = self.remember(instrument);
        match self.http.cancel_open_orders(&symbol).await {
            Ok(orders) => orders
                .iter()
                .map(|o| order_update_from_rest(o, instrument))
                .collect(),
            // Nothing was open (or an earlier attempt already cancelled it all).
            Err(e) if e.code() == Some(codes::CANCEL_REJECTED) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    async fn balances(&self) -> Result<Vec<Balance>, VenueError> {
        Ok(balances_from_account(&self.http.account().await?))
    }

    async fn book_snapshot(&self, instrument: &InstrumentId) -> Result<BookSnapshot, VenueError> {
        let symbol = self.remember(instrument);
        fetch_book(&self.http, &symbol, instrument).await
    }

    async fn resync_book(&self, instrument: &InstrumentId) -> Result<(), VenueError> {
        let tx = lock(&self.resync).clone();
        match tx {
            Some(tx) if tx.send(instrument.clone()).await.is_ok() => Ok(()),
            _ => Err(VenueError::Transport(
                "the market stream is not running".to_owned(),
            )),
        }
    }

    fn market_stream(
        &self,
        instruments: &[InstrumentId],
        ctx: &StreamCtx,
    ) -> mpsc::Receiver<MarketEvent> {
        let (out, rx) = mpsc::channel(EVENT_CHANNEL);
        if instruments.is_empty() {
            // Nothing to subscribe to: a closed stream.
            return rx;
        }
        let mut streams = Vec::with_capacity(instruments.len() * 3);
        for i in instruments {
            self.remember(i);
            let s = stream_symbol(i);
            streams.push(format!("{s}@bookTicker"));
            streams.push(format!("{s}@trade"));
            streams.push(format!("{s}@depth@100ms"));
        }
        let url = format!("{}/stream?streams={}", self.ws_base, streams.join("/"));
        let mut cfg = WsConfig::new(consts::VENUE, "market");
        cfg.stale_after = self.stale_after;
        let stop = ctx.cancel.child_token();
        let (ws_tx, ws_rx) = mpsc::channel(1024);
        let (snap_tx, snap_rx) = mpsc::channel(64);
        let (resync_tx, resync_rx) = mpsc::channel(64);
        *lock(&self.resync) = Some(resync_tx);
        ctx.spawn(run_ws(
            cfg,
            move || {
                let url = url.clone();
                async move { Ok(url) }
            },
            Vec::new(),
            ws_tx,
            stop.clone(),
        ));
        let input = futures_util::stream::select(
            receiver_stream(ws_rx).map(MarketInput::Ws),
            futures_util::stream::select(
                receiver_stream(snap_rx).map(|(i, r)| MarketInput::Snapshot(i, r)),
                receiver_stream(resync_rx).map(MarketInput::Resync),
            ),
        );
        let mut pump = MarketPump {
            syncs: instruments
                .iter()
                .map(|i| (i.clone(), BinanceUsDepthSync::new(i.clone())))
                .collect(),
            symbols: self.symbols.clone(),
            http: self.http.clone(),
            snap_tx,
            tracker: ctx.tracker.clone(),
            stop: stop.clone(),
            connected: false,
            pending: HashSet::new(),
            retries: HashMap::new(),
            stale_after: self.stale_after,
        };
        ctx.spawn(relay(input, out, stop, move |input| pump.on_input(input)));
        rx
    }

    fn user_stream(&self, ctx: &StreamCtx) -> mpsc::Receiver<UserEvent> {
        let (out, rx) = mpsc::channel(EVENT_CHANNEL);
        let http = self.http.clone();
        let ws_base = self.ws_base.clone();
        let keepalive_every = self.keepalive;
        let symbols = self.symbols.clone();
        let stop = ctx.cancel.child_token();
        let reconnect = Arc::new(Notify::new());
        let key: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let mut cfg = WsConfig::new(consts::VENUE, "user");
        // The user stream is quiet between orders; only the venue's 3-minute pings keep
        // it visibly alive, so its watchdog allows for a missed ping.
        cfg.stale_after = self.stale_after.max(Duration::from_secs(7 * 60));
        cfg.reconnect = Some(reconnect.clone());

        ctx.spawn(async move {
            let (tx, events) = mpsc::channel(1024);
            // A fresh (or extended) listen key for every connect.
            let url = {
                let (http, key) = (http.clone(), key.clone());
                move || {
                    let (http, key, ws_base) = (http.clone(), key.clone(), ws_base.clone());
                    async move {
                        let k = http.create_listen_key().await.map_err(|e| e.to_string())?;
                        let url = format!("{ws_base}/ws/{k}");
                        *lock(&key) = Some(k);
                        Ok(url)
                    }
                }
            };
            let ws = run_ws(cfg, url, Vec::new(), tx, stop.clone());
            let pump = {
                let reconnect = reconnect.clone();
                relay(receiver_stream(events), out, stop.clone(), move |ev| {
                    user_events(ev, &symbols, &reconnect)
                })
            };
            let keepalive = {
                let (http, key, stop, reconnect) = (http.clone(), key.clone(), stop.clone(), reconnect.clone());
                async move {
                    let mut tick = tokio::time::interval(keepalive_every);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    tick.tick().await; // the first tick is immediate; the key is fresh
                    loop {
                        tokio::select! {
                            () = stop.cancelled() => return,
                            _ = tick.tick() => {}
                        }
                        let Some(k) = lock(&key).clone() else { continue };
                        match http.keepalive_listen_key(&k).await {
                            Ok(()) => tracing::debug!("listen key extended"),
                            Err(e) if e.code() == Some(codes::INVALID_LISTEN_KEY) => {
                                tracing::warn!(error = %e, "listen key gone; reconnecting the user stream");
                                reconnect.notify_one();
                            }
                            Err(e) => tracing::warn!(error = %e, "listen key keepalive failed; will retry"),
                        }
                    }
                }
            };
            tokio::join!(ws, pump, keepalive);
            // Best effort: close the listen key so the venue stops buffering for it.
            let last = lock(&key).take();
            if let Some(k) = last {
                let _ = tokio::time::timeout(Duration::from_secs(2), http.close_listen_key(&k)).await;
            }
        });
        rx
    }
}

/// A REST depth snapshot as a neutral [`BookSnapshot`].
async fn fetch_book(
    http: &BinanceUsHttpClient,
    symbol: &str,
    instrument: &InstrumentId,
) -> Result<BookSnapshot, VenueError> {
    let d = http.depth(symbol, consts::DEFAULT_DEPTH_LIMIT).await?;
    Ok(BookSnapshot {
        instrument: instrument.clone(),
        sequence: d.last_update_id,
        bids: d.bids.into_iter().map(Into::into).collect(),
        asks: d.asks.into_iter().map(Into::into).collect(),
        ts_ms: gekko_core::now_ms(),
    })
}

/// One input of the market pump.
enum MarketInput {
    /// From the websocket.
    Ws(WsEvent),
    /// A REST snapshot fetch finished.
    Snapshot(InstrumentId, Result<BookSnapshot, VenueError>),
    /// The engine asked for a resync ([`VenueAdapter::resync_book`]).
    Resync(InstrumentId),
}

/// The market stream's state: one sequencer per instrument, and the snapshot fetches in
/// progress. Owned by the relay's mapping closure, so it needs no lock.
struct MarketPump {
    syncs: HashMap<InstrumentId, BinanceUsDepthSync>,
    symbols: Arc<RwLock<HashMap<String, InstrumentId>>>,
    http: BinanceUsHttpClient,
    snap_tx: mpsc::Sender<(InstrumentId, Result<BookSnapshot, VenueError>)>,
    tracker: TaskTracker,
    stop: CancellationToken,
    /// Snapshots that finish while disconnected describe nothing current: dropped.
    connected: bool,
    /// Instruments with a fetch in progress (one at a time each).
    pending: HashSet<InstrumentId>,
    /// Refetch backoff per instrument, reset when a snapshot connects.
    retries: HashMap<InstrumentId, Backoff>,
    stale_after: Duration,
}

impl MarketPump {
    fn on_input(&mut self, input: MarketInput) -> Vec<MarketEvent> {
        match input {
            MarketInput::Ws(WsEvent::Connected) => {
                self.connected = true;
                let all: Vec<InstrumentId> = self.syncs.keys().cloned().collect();
                for i in all {
                    self.reset(&i);
                    self.fetch(i, Duration::ZERO);
                }
                vec![MarketEvent::Connected]
            }
            MarketInput::Ws(WsEvent::Disconnected { reason }) => {
                self.disconnected();
                vec![MarketEvent::Disconnected { reason }]
            }
            MarketInput::Ws(WsEvent::Stale) => {
                self.disconnected();
                vec![MarketEvent::Disconnected {
                    reason: format!("stale: no frame within {:?}", self.stale_after),
                }]
            }
            MarketInput::Ws(WsEvent::Heartbeat) => vec![MarketEvent::Heartbeat],
            MarketInput::Ws(WsEvent::Text(t)) => match parse(&t) {
                Ok(m) => match market_event(m, &self.symbols) {
                    Some(MarketMsg::Event(e)) => vec![e],
                    Some(MarketMsg::Depth(i, d)) => self.on_diff(i, d),
                    None => Vec::new(),
                },
                Err(e) => {
                    count_malformed("market", &e);
                    Vec::new()
                }
            },
            MarketInput::Resync(i) => {
                if self.syncs.contains_key(&i) {
                    self.reset(&i);
                    self.fetch(i, Duration::ZERO);
                }
                Vec::new()
            }
            MarketInput::Snapshot(i, result) => {
                self.pending.remove(&i);
                if !self.connected {
                    return Vec::new();
                }
                let Some(sync) = self.syncs.get_mut(&i) else {
                    return Vec::new();
                };
                match result.map(|snap| sync.on_snapshot(snap)) {
                    Ok(Ok(updates)) => {
                        self.retries.remove(&i);
                        updates.into_iter().map(MarketEvent::Book).collect()
                    }
                    Ok(Err(gap)) => {
                        tracing::warn!(instrument = %i, ?gap, "snapshot older than buffered diffs; refetching");
                        let wait = self.retry_delay(&i);
                        self.fetch(i, wait);
                        Vec::new()
                    }
                    Err(e) => {
                        tracing::warn!(instrument = %i, error = %e, "book snapshot failed; retrying");
                        let wait = self.retry_delay(&i);
                        self.fetch(i, wait);
                        Vec::new()
                    }
                }
            }
        }
    }

    fn on_diff(&mut self, i: InstrumentId, d: DepthDiff) -> Vec<MarketEvent> {
        let Some(sync) = self.syncs.get_mut(&i) else {
            return Vec::new();
        };
        match sync.on_diff(d) {
            DepthStep::Delta(delta) => vec![MarketEvent::Book(BookUpdate::Delta(delta))],
            DepthStep::Gap { expected, got } => vec![MarketEvent::BookGap {
                instrument: i,
                detail: format!("expected update id {expected}, got {got}"),
            }],
            DepthStep::Stale | DepthStep::Buffered => Vec::new(),
        }
    }

    fn reset(&mut self, i: &InstrumentId) {
        if let Some(s) = self.syncs.get_mut(i) {
            s.reset();
        }
    }

    fn disconnected(&mut self) {
        self.connected = false;
        for s in self.syncs.values_mut() {
            s.reset();
        }
    }

    fn retry_delay(&mut self, i: &InstrumentId) -> Duration {
        self.retries
            .entry(i.clone())
            .or_insert_with(|| {
                Backoff::new(BackoffConfig::new(
                    Duration::from_millis(100),
                    Duration::from_secs(5),
                ))
            })
            .next_delay()
    }

    /// Starts a snapshot fetch for `i` after `wait`, unless one is in progress.
    fn fetch(&mut self, i: InstrumentId, wait: Duration) {
        if !self.pending.insert(i.clone()) {
            return;
        }
        let (http, tx, stop) = (self.http.clone(), self.snap_tx.clone(), self.stop.clone());
        let symbol = venue_symbol(&i);
        self.tracker.spawn(async move {
            let result = tokio::select! {
                () = stop.cancelled() => return,
                r = async {
                    tokio::time::sleep(wait).await;
                    fetch_book(&http, &symbol, &i).await
                } => r,
            };
            let _ = tx.send((i, result)).await;
        });
    }
}

/// Maps one user-stream transport event to gekko events: an execution report with a
/// trade yields the order update and the [`UserEvent::Fill`].
fn user_events(
    ev: WsEvent,
    symbols: &RwLock<HashMap<String, InstrumentId>>,
    reconnect: &Notify,
) -> Vec<UserEvent> {
    match ev {
        WsEvent::Connected => vec![UserEvent::Connected],
        WsEvent::Disconnected { reason } => vec![UserEvent::Disconnected { reason }],
        WsEvent::Stale => vec![UserEvent::Disconnected {
            reason: "stale: no frame or ping".to_owned(),
        }],
        WsEvent::Heartbeat => Vec::new(),
        WsEvent::Text(t) => match parse(&t) {
            Ok(m) => match user_event(m, symbols, reconnect) {
                Some(UserEvent::Order(u)) => {
                    let fill = u.fill();
                    let mut v = vec![UserEvent::Order(u)];
                    v.extend(fill.map(UserEvent::Fill));
                    v
                }
                Some(e) => vec![e],
                None => Vec::new(),
            },
            Err(e) => {
                count_malformed("user", &e);
                Vec::new()
            }
        },
    }
}

/// Maps one user-stream message to a [`UserEvent`], if it carries one.
fn user_event(
    msg: BinanceUsWsMessage<'_>,
    symbols: &RwLock<HashMap<String, InstrumentId>>,
    reconnect: &Notify,
) -> Option<UserEvent> {
    match msg {
        BinanceUsWsMessage::Combined { data, .. } => user_event(*data, symbols, reconnect),
        BinanceUsWsMessage::ExecutionReport(r) => {
            let Some(instrument) = lookup(symbols, &r.symbol) else {
                tracing::warn!(symbol = %r.symbol, "execution report for an unknown symbol; skipped");
                return None;
            };
            match order_update_from_report(&r, &instrument) {
                Ok(u) => Some(UserEvent::Order(u)),
                Err(e) => {
                    // Not a gekko order (e.g. placed by hand with a foreign client id).
                    tracing::warn!(error = %e, "execution report not mapped; skipped");
                    None
                }
            }
        }
        BinanceUsWsMessage::OutboundAccountPosition(p) => Some(UserEvent::Balances(
            p.balances
                .iter()
                .map(|b| Balance {
                    venue: VenueId::BinanceUs,
                    asset: b.asset.to_ascii_uppercase(),
                    free: b.free,
                    locked: b.locked,
                })
                .collect(),
        )),
        BinanceUsWsMessage::ListenKeyExpired { .. } => {
            tracing::warn!("listen key expired; reconnecting the user stream");
            reconnect.notify_one();
            None
        }
        other => {
            // balanceUpdate is followed by an outboundAccountPosition with the totals.
            tracing::debug!(?other, "user stream message without a gekko event");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use gekko_core::OrderStatus;
    use rust_decimal_macros::dec;

    use super::*;
    use crate::http::models::{self, ExchangeInfo};

    fn fixture(name: &str) -> String {
        let path = format!("{}/test_data/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn btcusd() -> InstrumentId {
        InstrumentId::new(VenueId::BinanceUs, "BTC", "USD")
    }

    fn report(name: &str) -> ExecutionReportMsg<'static> {
        match parse(&fixture(name)).unwrap() {
            BinanceUsWsMessage::ExecutionReport(r) => r.into_owned(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn filters_map_into_instrument_info() {
        let info: ExchangeInfo = models::parse(&fixture("rest_exchange_info.json")).unwrap();
        let btc = instrument_info(&info.symbols[0]);
        assert_eq!(btc.id, btcusd());
        assert_eq!(btc.venue_symbol, "BTCUSD");
        assert_eq!(btc.tick_size, dec!(0.01));
        assert_eq!(btc.lot_size, dec!(0.000001));
        assert_eq!(btc.min_qty, dec!(0.000001));
        assert_eq!(btc.max_qty, dec!(9000));
        assert_eq!(btc.min_notional, dec!(1));
        assert!(btc.trading);
        let eth = instrument_info(&info.symbols[1]);
        assert_eq!(eth.id.quote, "USDT");
        assert_eq!(eth.min_notional, dec!(10), "NOTIONAL is read too");
        assert!(!eth.trading, "HALT is not trading");
    }

    #[test]
    fn execution_report_trade_carries_the_fill() {
        let r = report("ws_execution_report_trade.json");
        let u = order_update_from_report(&r, &btcusd()).unwrap();
        assert_eq!(u.status, OrderStatus::PartiallyFilled);
        assert_eq!(
            u.client_order_id.as_str(),
            "gk0123456789abcdef0123456789abcdef"
        );
        assert_eq!(u.filled_qty, dec!(0.4));
        assert_eq!(u.price, Some(dec!(30000)));
        let fill = u.last_fill.unwrap();
        assert_eq!(fill.trade_id, "77");
        assert_eq!(
            (fill.price, fill.qty, fill.fee),
            (dec!(29999.50), dec!(0.4), dec!(0.0004))
        );
        assert_eq!(fill.fee_asset, "BTC");
        assert_eq!(r.avg_price(), Some(dec!(29999.5)));
        assert_eq!(u.reject_reason, None);
    }

    #[test]
    fn execution_report_cancel_uses_the_original_client_id() {
        let u = order_update_from_report(&report("ws_execution_report_cancel.json"), &btcusd())
            .unwrap();
        assert_eq!(u.status, OrderStatus::Cancelled);
        assert_eq!(
            u.client_order_id.as_str(),
            "gk0123456789abcdef0123456789abcdef"
        );
        assert_eq!(u.side, Side::Sell);
        assert!(u.last_fill.is_none());
    }

    #[test]
    fn rest_orders_map() {
        let o: OrderResponse = models::parse(&fixture("rest_cancel_order.json")).unwrap();
        let u = order_update_from_rest(&o, &btcusd()).unwrap();
        assert_eq!(
            u.client_order_id.as_str(),
            "myOrder1",
            "origClientOrderId, not the cancel's id"
        );
        assert_eq!(u.status, OrderStatus::Cancelled);
        let o: OrderResponse = models::parse(&fixture("rest_order_result.json")).unwrap();
        let u = order_update_from_rest(&o, &btcusd()).unwrap();
        assert_eq!(u.status, OrderStatus::Filled);
        assert_eq!(u.price, None, "market order price 0 is no price");
        assert_eq!(u.cum_quote, dec!(10));
        assert_eq!(u.ts_ms, 1_507_725_176_595);
    }

    #[test]
    fn market_messages_map_to_events() {
        let symbols = RwLock::new(HashMap::new());
        remember(
            &symbols,
            "BNBBTC",
            &InstrumentId::new(VenueId::BinanceUs, "BNB", "BTC"),
        );
        let Some(MarketMsg::Depth(instrument, d)) =
            market_event(parse(&fixture("ws_combined_depth.json")).unwrap(), &symbols)
        else {
            panic!("no diff");
        };
        assert_eq!((d.first_update_id, d.last_update_id), (157, 160));
        assert_eq!(instrument.base, "BNB");
        let Some(MarketMsg::Event(MarketEvent::Trade(t))) =
            market_event(parse(&fixture("ws_trade.json")).unwrap(), &symbols)
        else {
            panic!("no trade");
        };
        assert_eq!(t.taker_side, Side::Sell, "buyer was maker");
        // BNBUSDT is resolved by the quote-suffix fallback.
        let Some(MarketMsg::Event(MarketEvent::Quote(q))) =
            market_event(parse(&fixture("ws_book_ticker.json")).unwrap(), &symbols)
        else {
            panic!("no quote");
        };
        assert_eq!(q.instrument.quote, "USDT");
        assert_eq!(q.bid, dec!(25.3519));
    }

    #[test]
    fn user_messages_map_to_events() {
        let symbols = RwLock::new(HashMap::new());
        let notify = Notify::new();
        let Some(UserEvent::Balances(b)) = user_event(
            parse(&fixture("ws_outbound_account_position.json")).unwrap(),
            &symbols,
            &notify,
        ) else {
            panic!("no balances");
        };
        assert_eq!(b[0].asset, "ETH");
        assert_eq!(b[0].total(), dec!(10000));
        let ev = user_event(
            parse(&fixture("ws_execution_report_trade.json")).unwrap(),
            &symbols,
            &notify,
        );
        assert!(matches!(ev, Some(UserEvent::Order(_))));
        assert!(
            user_event(
                parse(&fixture("ws_balance_update.json")).unwrap(),
                &symbols,
                &notify
            )
            .is_none()
        );
    }

    #[test]
    fn the_unknown_order_horizon_follows_the_receive_window() {
        let cfg = |recv_window_ms| {
            let mut c = BinanceUsConfig::simulator(
                "http://127.0.0.1:1",
                "ws://127.0.0.1:1",
                secrecy::SecretString::from("k"),
                crate::BinanceUsAuth::Hmac(secrecy::SecretString::from("s")),
            );
            c.recv_window_ms = recv_window_ms;
            BinanceUsVenue::new(c).unwrap()
        };
        let default = cfg(5_000).caps();
        assert_eq!(default.unknown_order_horizon, Some(Duration::from_secs(7)));
        assert_eq!(default.book_feed, BookFeed::SnapshotPlusDiffs);
        assert!(default.native_cancel_all && !default.native_close_position);
        // Raised above the old fixed 7 s, the horizon moves with it: a request can still
        // arrive (and execute) up to recvWindow after it was signed.
        let raised = cfg(20_000).caps().unknown_order_horizon.unwrap();
        assert!(raised > Duration::from_secs(20), "{raised:?}");
    }

    #[test]
    fn a_trade_report_yields_the_order_update_and_the_fill() {
        let symbols = RwLock::new(HashMap::new());
        let events = user_events(
            WsEvent::Text(fixture("ws_execution_report_trade.json")),
            &symbols,
            &Notify::new(),
        );
        let [UserEvent::Order(u), UserEvent::Fill(f)] = events.as_slice() else {
            panic!("{events:?}");
        };
        assert_eq!(f.client_order_id, u.client_order_id);
        assert_eq!((f.trade_id.as_str(), f.qty), ("77", dec!(0.4)));
        assert_eq!(f.fee_asset, "BTC");
        let cancel = user_events(
            WsEvent::Text(fixture("ws_execution_report_cancel.json")),
            &symbols,
            &Notify::new(),
        );
        assert_eq!(cancel.len(), 1, "no fill without a trade");
    }

    #[test]
    fn account_maps_to_balances() {
        let a: Account = models::parse(&fixture("rest_account.json")).unwrap();
        let b = balances_from_account(&a);
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].locked, dec!(250.50));
    }
}
