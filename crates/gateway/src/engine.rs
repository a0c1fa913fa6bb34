//! The gateway engine: one venue, its orders, books and streams.
//!
//! Concurrency model: state lives behind short `std::sync::Mutex`es that are never held
//! across an `.await`; venue calls and bus writes happen outside them. Background work is
//! a handful of tasks, each owning one concern and stopping on the shutdown token:
//! market data (books, quotes), user data (order and balance events), the in-flight
//! resolver, the clock, the market-data watchdog, and the bus writer for market data.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use gekko_bus::{Bus, Topic, names};
use gekko_core::{
    Balance, BookSnapshot, ClientOrderId, InstrumentId, Order, OrderRequest, OrderStatus,
    OrderType, Position, Quote, Side, Trade, now_ms,
};
use gekko_runtime::{Readiness, ReadyHandle};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::book::{Applied, LocalBook};
use crate::checks::{CheckError, RiskLimits, check_order};
use crate::orders::{self, OrderEvent, OrderEventKind};
use crate::venue::{
    InstrumentInfo, MarketEvent, OrderUpdate, SubmitError, UserEvent, VenueAdapter, VenueError,
};

/// What to do when start-up reconciliation finds open orders at the venue that this
/// gateway has no record of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconcileMode {
    /// Track them from now on (and report the difference in metrics and logs).
    Adopt,
    /// Refuse to start: a human should look first.
    Strict,
}

/// Gateway settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Name on bus envelopes, e.g. `gateway-binanceus`.
    pub source: String,
    /// Instruments to trade and stream.
    pub instruments: Vec<InstrumentId>,
    /// Risk limits applied before anything is sent.
    pub limits: RiskLimits,
    /// Start-up reconciliation policy.
    pub reconcile_mode: ReconcileMode,
    /// Readiness requires the clock offset to be within this.
    pub max_clock_offset: Duration,
    /// How often the venue clock is sampled.
    pub clock_sync_interval: Duration,
    /// After this long since sending, an order the venue does not know was never placed
    /// (for Binance: recvWindow plus margin — a later arrival would be refused with -1021).
    pub in_flight_resolve_after: Duration,
    /// Market data older than this makes the gateway not ready.
    pub stale_after: Duration,
    /// Cap of the market-data streams on the bus.
    pub market_data_max_len: usize,
}

impl GatewayConfig {
    /// Defaults for everything but the identity and the instruments.
    #[must_use]
    pub fn new(source: impl Into<String>, instruments: Vec<InstrumentId>) -> Self {
        Self {
            source: source.into(),
            instruments,
            limits: RiskLimits {
                trading_enabled: true,
                ..RiskLimits::default()
            },
            reconcile_mode: ReconcileMode::Adopt,
            max_clock_offset: Duration::from_millis(1000),
            clock_sync_interval: Duration::from_secs(60),
            in_flight_resolve_after: Duration::from_secs(7),
            stale_after: Duration::from_secs(10),
            market_data_max_len: names::MARKET_DATA_MAX_LEN,
        }
    }
}

/// Why the gateway refused an operation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    /// A pre-trade check failed; nothing was sent.
    #[error(transparent)]
    Check(#[from] CheckError),
    /// The venue refused or could not be reached.
    #[error(transparent)]
    Venue(#[from] VenueError),
    /// The order could not be persisted, so it was not sent.
    #[error("order not sent: cannot persist it on the bus: {0}")]
    Persist(String),
    /// Unknown order.
    #[error("unknown order {0}")]
    UnknownOrder(String),
    /// Bad request.
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The venue refused the credentials.
    #[error("credentials rejected: {0}")]
    Credentials(VenueError),
    /// None of the configured instruments exists at the venue.
    #[error("none of the configured instruments is offered by the venue: {0}")]
    UnknownInstrument(String),
    /// Strict reconciliation found differences.
    #[error("reconciliation mismatch (strict mode): {0}")]
    Mismatch(String),
    /// The venue stayed unreachable.
    #[error("venue unavailable during start-up: {0}")]
    Venue(VenueError),
    /// The order stream could not be read.
    #[error("cannot replay the order stream: {0}")]
    Bus(String),
}

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
    /// Changed bids.
    pub bids: Vec<gekko_core::BookLevel>,
    /// Changed asks.
    pub asks: Vec<gekko_core::BookLevel>,
}

/// What start-up reconciliation found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Local orders whose venue state differed and were updated.
    pub updated: usize,
    /// Orders open at the venue that were unknown locally.
    pub unknown_at_venue: Vec<String>,
    /// Local pending/in-flight orders the venue never received.
    pub never_placed: usize,
}

struct Tracked {
    order: Order,
    sent_ms: Option<i64>,
}

struct Ready {
    credentials: ReadyHandle,
    clock: ReadyHandle,
    reconciliation: ReadyHandle,
    market_data: ReadyHandle,
}

struct Inner {
    venue: Arc<dyn VenueAdapter>,
    bus: Arc<dyn Bus>,
    cfg: GatewayConfig,
    venue_label: &'static str,
    orders: Mutex<HashMap<ClientOrderId, Tracked>>,
    instruments: Mutex<HashMap<InstrumentId, InstrumentInfo>>,
    books: Mutex<HashMap<InstrumentId, LocalBook>>,
    last_quotes: Mutex<HashMap<InstrumentId, Quote>>,
    balances: Mutex<Vec<Balance>>,
    quotes_tx: broadcast::Sender<Quote>,
    md_tx: mpsc::Sender<(gekko_bus::StreamSpec, Bytes)>,
    last_market_data_ms: AtomicI64,
    order_topic: Topic<OrderEvent>,
    ready: Ready,
    seq: AtomicI64,
    /// Fires when the gateway shuts down; long-lived RPC streams end on it so a graceful
    /// gRPC shutdown is not held open by subscribers.
    cancel: CancellationToken,
}

/// A running gateway. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("venue", &self.inner.venue.id())
            .field("source", &self.inner.cfg.source)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Retries an idempotent start-up call while the venue is rate limiting or unreachable.
async fn patiently<T, F, Fut>(cancel: &CancellationToken, mut f: F) -> Result<T, VenueError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, VenueError>>,
{
    let mut delay = Duration::from_millis(100);
    let mut attempts = 0;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && attempts < 30 && !cancel.is_cancelled() => {
                let wait = match &e {
                    VenueError::RateLimited { retry_after }
                    | VenueError::CircuitOpen { retry_after, .. } => (*retry_after).max(delay),
                    _ => delay,
                };
                tracing::warn!(error = %e, ?wait, "venue call failed during start-up; retrying");
                tokio::select! {
                    () = cancel.cancelled() => return Err(e),
                    () = tokio::time::sleep(wait) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
                attempts += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

impl Gateway {
    /// Starts a gateway: verifies credentials, syncs the clock, loads instruments,
    /// replays its order stream, reconciles with the venue, then starts its streams.
    /// Readiness components (`<venue>-credentials`, `-clock`, `-reconciliation`,
    /// `-market-data`) turn ready as each condition holds.
    ///
    /// # Errors
    /// [`StartError`] when the venue refuses the credentials, lacks an instrument, stays
    /// unreachable, or strict reconciliation finds a mismatch.
    pub async fn start(
        venue: Arc<dyn VenueAdapter>,
        bus: Arc<dyn Bus>,
        cfg: GatewayConfig,
        readiness: &Readiness,
        tracker: &TaskTracker,
        cancel: CancellationToken,
    ) -> Result<(Self, ReconcileReport), StartError> {
        let label = venue.id().as_str();
        let ready = Ready {
            credentials: readiness.component(&format!("{label}-credentials")),
            clock: readiness.component(&format!("{label}-clock")),
            reconciliation: readiness.component(&format!("{label}-reconciliation")),
            market_data: readiness.component(&format!("{label}-market-data")),
        };
        // 1. Credentials.
        match patiently(&cancel, || venue.verify_credentials()).await {
            Ok(()) => ready.credentials.set_ready(),
            Err(e @ (VenueError::Auth(_) | VenueError::Rejected { .. })) => {
                ready.credentials.set_not_ready(e.to_string());
                return Err(StartError::Credentials(e));
            }
            Err(e) => return Err(StartError::Venue(e)),
        }
        // 2. Instruments: configured pairs the venue does not list are skipped with a
        // warning (SUPPORTED_TRADING_PAIRS spans venues); none at all is an error.
        let mut cfg = cfg;
        let infos = patiently(&cancel, || venue.instruments(&cfg.instruments))
            .await
            .map_err(StartError::Venue)?;
        let (offered, missing): (Vec<InstrumentId>, Vec<InstrumentId>) = cfg
            .instruments
            .iter()
            .cloned()
            .partition(|want| infos.iter().any(|inf| &inf.id == want));
        if offered.is_empty() {
            return Err(StartError::UnknownInstrument(
                missing
                    .iter()
                    .map(InstrumentId::pair)
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
        }
        for m in &missing {
            tracing::warn!(venue = label, instrument = %m.pair(), "pair not offered by the venue; skipped");
        }
        cfg.instruments = offered;
        let (md_tx, md_rx) = mpsc::channel(4096);
        let inner = Arc::new(Inner {
            order_topic: Topic::durable(names::orders(label), 1),
            venue,
            bus,
            venue_label: label,
            orders: Mutex::new(HashMap::new()),
            instruments: Mutex::new(HashMap::new()),
            books: Mutex::new(HashMap::new()),
            last_quotes: Mutex::new(HashMap::new()),
            balances: Mutex::new(Vec::new()),
            quotes_tx: broadcast::channel(1024).0,
            md_tx,
            last_market_data_ms: AtomicI64::new(0),
            ready,
            seq: AtomicI64::new(0),
            cancel: cancel.clone(),
            cfg,
        });
        let gw = Self { inner };
        let i = &gw.inner;
        {
            let mut map = lock(&i.instruments);
            let mut books = lock(&i.books);
            for info in infos
                .into_iter()
                .filter(|inf| i.cfg.instruments.contains(&inf.id))
            {
                books.insert(info.id.clone(), LocalBook::new(info.id.clone()));
                map.insert(info.id.clone(), info);
            }
        }
        // 3. Clock.
        gw.sync_clock().await;
        // Streams start before reconciliation so no user event after it is missed; events
        // for orders not yet loaded are merged when reconciliation queries them anyway.
        let user_rx = i.venue.user_stream(cancel.child_token());
        // 4 + 5. Replay and reconcile.
        gw.replay_order_stream().await?;
        let report = gw.reconcile(&cancel).await?;
        i.ready.reconciliation.set_ready();

        // 6. Background tasks.
        let market_rx = i
            .venue
            .market_stream(&i.cfg.instruments, cancel.child_token());
        tracker.spawn(gw.clone().market_loop(market_rx, cancel.child_token()));
        tracker.spawn(gw.clone().user_loop(user_rx, cancel.child_token()));
        tracker.spawn(gw.clone().resolver_loop(cancel.child_token()));
        tracker.spawn(gw.clone().clock_loop(cancel.child_token()));
        tracker.spawn(gw.clone().watchdog_loop(cancel.child_token()));
        tracker.spawn(md_writer(gw.inner.bus.clone(), md_rx, cancel.child_token()));
        Ok((gw, report))
    }

    fn label(&self) -> &'static str {
        self.inner.venue_label
    }

    async fn sync_clock(&self) {
        let i = &self.inner;
        match i.venue.sync_clock().await {
            Ok(r) => {
                let off = Duration::from_millis(r.offset_ms.unsigned_abs());
                metrics::gauge!("gekko_gateway_clock_offset_ms", "venue" => self.label())
                    .set(r.offset_ms as f64);
                if off <= i.cfg.max_clock_offset {
                    i.ready.clock.set_ready();
                } else {
                    i.ready.clock.set_not_ready(format!(
                        "clock offset {} ms exceeds {} ms",
                        r.offset_ms,
                        i.cfg.max_clock_offset.as_millis()
                    ));
                }
            }
            Err(e) => i
                .ready
                .clock
                .set_not_ready(format!("clock sync failed: {e}")),
        }
    }

    /// Rebuilds local order state from the order stream (last event per id wins).
    async fn replay_order_stream(&self) -> Result<(), StartError> {
        let i = &self.inner;
        let mut reader = i
            .bus
            .tail_reader(i.order_topic.name(), gekko_bus::StartFrom::Beginning)
            .await
            .map_err(|e| StartError::Bus(e.to_string()))?;
        let mut n = 0usize;
        loop {
            let batch = reader
                .read(1000, Duration::ZERO)
                .await
                .map_err(|e| StartError::Bus(e.to_string()))?;
            if batch.is_empty() {
                break;
            }
            let mut orders = lock(&i.orders);
            for d in batch {
                match i.order_topic.decode(&d) {
                    Ok(env) => {
                        n += 1;
                        let ev = env.payload;
                        orders.insert(
                            orders::key(&ev.order),
                            Tracked {
                                order: ev.order,
                                sent_ms: ev.sent_ms,
                            },
                        );
                    }
                    Err(e) => tracing::error!(error = %e, "skipping undecodable order event"),
                }
            }
        }
        tracing::info!(
            venue = self.label(),
            events = n,
            orders = lock(&i.orders).len(),
            "order stream replayed"
        );
        Ok(())
    }

    /// Start-up reconciliation: every local non-terminal order is checked against the
    /// venue, and venue open orders unknown locally are adopted or refused.
    async fn reconcile(&self, cancel: &CancellationToken) -> Result<ReconcileReport, StartError> {
        let i = &self.inner;
        let mut report = ReconcileReport::default();
        let open_local: Vec<(ClientOrderId, InstrumentId, OrderStatus, Option<i64>, i64)> =
            lock(&i.orders)
                .values()
                .filter(|t| !t.order.status.is_terminal())
                .map(|t| {
                    (
                        orders::key(&t.order),
                        t.order.request.instrument.clone(),
                        t.order.status,
                        t.sent_ms,
                        t.order.updated_ms,
                    )
                })
                .collect();
        for (id, instrument, status, sent_ms, updated_ms) in open_local {
            let found = patiently(cancel, || i.venue.query_order(&instrument, &id))
                .await
                .map_err(StartError::Venue)?;
            match found {
                Some(update) => {
                    if self.apply_update(&update, OrderEventKind::Updated).await {
                        report.updated += 1;
                    }
                }
                None => {
                    let since = now_ms() - sent_ms.unwrap_or(updated_ms);
                    let old_enough = u128::try_from(since.max(0)).unwrap_or(0)
                        >= i.cfg.in_flight_resolve_after.as_millis();
                    if matches!(status, OrderStatus::PendingNew | OrderStatus::InFlight)
                        && !old_enough
                    {
                        // Too recent to conclude: let the resolver decide.
                        self.set_status(&id, OrderStatus::InFlight, OrderEventKind::InFlight)
                            .await;
                    } else {
                        report.never_placed += 1;
                        self.reject_local(&id, "not found at the venue during reconciliation")
                            .await;
                    }
                }
            }
        }
        let instruments = i.cfg.instruments.clone();
        for inst in &instruments {
            let venue_open = patiently(cancel, || i.venue.open_orders(inst))
                .await
                .map_err(StartError::Venue)?;
            for u in venue_open {
                let known = lock(&i.orders).contains_key(&u.client_order_id);
                if known {
                    if self.apply_update(&u, OrderEventKind::Updated).await {
                        report.updated += 1;
                    }
                } else {
                    report.unknown_at_venue.push(u.client_order_id.to_string());
                    if i.cfg.reconcile_mode == ReconcileMode::Adopt {
                        self.adopt(&u).await;
                    }
                }
            }
        }
        let diffs = report.updated + report.unknown_at_venue.len() + report.never_placed;
        metrics::counter!("gekko_gateway_reconciliation_differences_total", "venue" => self.label())
            .increment(diffs as u64);
        if i.cfg.reconcile_mode == ReconcileMode::Strict && !report.unknown_at_venue.is_empty() {
            return Err(StartError::Mismatch(format!(
                "open at the venue but unknown locally: {}",
                report.unknown_at_venue.join(", ")
            )));
        }
        let balances = patiently(cancel, || i.venue.balances())
            .await
            .map_err(StartError::Venue)?;
        *lock(&i.balances) = balances;
        tracing::info!(venue = self.label(), ?report, "reconciliation complete");
        Ok(report)
    }

    async fn publish(
        &self,
        kind: OrderEventKind,
        order: Order,
        sent_ms: Option<i64>,
    ) -> Result<(), GatewayError> {
        let ev = OrderEvent {
            kind,
            order,
            sent_ms,
        };
        self.inner
            .order_topic
            .publish(&*self.inner.bus, &self.inner.cfg.source, &ev)
            .await
            .map(|_| ())
            .map_err(|e| GatewayError::Persist(e.to_string()))
    }

    /// Merges a venue update into a tracked order and records the change on the bus.
    async fn apply_update(&self, u: &OrderUpdate, kind: OrderEventKind) -> bool {
        let changed = {
            let mut orders = lock(&self.inner.orders);
            orders
                .get_mut(&u.client_order_id)
                .and_then(|t| orders::merge(&mut t.order, u).then(|| (t.order.clone(), t.sent_ms)))
        };
        if let Some((order, sent)) = changed {
            if let Err(e) = self.publish(kind, order, sent).await {
                tracing::error!(error = %e, "order event not persisted");
            }
            true
        } else {
            false
        }
    }

    async fn adopt(&self, u: &OrderUpdate) {
        let mut order = orders::pending(
            OrderRequest {
                client_order_id: u.client_order_id.clone(),
                instrument: u.instrument.clone(),
                side: u.side,
                order_type: if u.price.is_some() {
                    OrderType::Limit
                } else {
                    OrderType::Market
                },
                qty: u.qty,
                price: u.price,
                time_in_force: None,
            },
            now_ms(),
        );
        orders::merge(&mut order, u);
        lock(&self.inner.orders).insert(
            u.client_order_id.clone(),
            Tracked {
                order: order.clone(),
                sent_ms: None,
            },
        );
        tracing::warn!(venue = self.label(), order = %u.client_order_id, "adopted an open venue order unknown locally");
        let _ = self.publish(OrderEventKind::Adopted, order, None).await;
    }

    async fn set_status(&self, id: &ClientOrderId, status: OrderStatus, kind: OrderEventKind) {
        let snapshot = {
            let mut orders = lock(&self.inner.orders);
            orders.get_mut(id).map(|t| {
                t.order.status = status;
                t.order.updated_ms = now_ms();
                (t.order.clone(), t.sent_ms)
            })
        };
        if let Some((o, s)) = snapshot {
            let _ = self.publish(kind, o, s).await;
        }
    }

    async fn reject_local(&self, id: &ClientOrderId, reason: &str) {
        let snapshot = {
            let mut orders = lock(&self.inner.orders);
            orders.get_mut(id).map(|t| {
                orders::reject(&mut t.order, reason, now_ms());
                (t.order.clone(), t.sent_ms)
            })
        };
        if let Some((o, s)) = snapshot {
            let _ = self.publish(OrderEventKind::Rejected, o, s).await;
        }
    }

    /// Derives a deterministic client order id for a strategy's `sequence`-th order.
    #[must_use]
    pub fn derive_client_order_id(
        &self,
        strategy: &str,
        instrument: &InstrumentId,
        sequence: u64,
    ) -> ClientOrderId {
        ClientOrderId::derive(strategy, instrument, sequence)
    }

    /// Places an order, safely:
    /// - an id already known returns the existing order (no second submit);
    /// - pre-trade checks run before anything leaves;
    /// - the order is persisted on the order stream *before* the request is sent, and not
    ///   sent if that fails;
    /// - an ambiguous outcome leaves it `InFlight` for the resolver; it is never resent.
    ///
    /// # Errors
    /// [`GatewayError::Check`] (nothing sent), [`GatewayError::Persist`] (nothing sent).
    /// Venue rejections are returned as an order with status `Rejected`.
    pub async fn place_order(&self, req: OrderRequest) -> Result<Order, GatewayError> {
        let i = &self.inner;
        if let Some(existing) = self.order(&req.client_order_id) {
            metrics::counter!("gekko_gateway_duplicate_submits_suppressed_total", "venue" => self.label()).increment(1);
            return Ok(existing);
        }
        let info = lock(&i.instruments).get(&req.instrument).cloned();
        let reference = self.reference_price(&req.instrument, req.side);
        let position = self.position_qty(&req.instrument);
        if let Err(e) = check_order(&req, info.as_ref(), &i.cfg.limits, reference, position) {
            metrics::counter!("gekko_gateway_pretrade_rejections_total", "venue" => self.label())
                .increment(1);
            tracing::info!(venue = self.label(), order = %req.client_order_id, reason = %e, "order refused by pre-trade checks");
            return Err(e.into());
        }
        let id = req.client_order_id.clone();
        let order = orders::pending(req.clone(), now_ms());
        {
            // Insert-if-absent under the lock: two concurrent calls with the same id
            // cannot both get past this point.
            let mut orders = lock(&i.orders);
            if let Some(t) = orders.get(&id) {
                return Ok(t.order.clone());
            }
            orders.insert(
                id.clone(),
                Tracked {
                    order: order.clone(),
                    sent_ms: None,
                },
            );
        }
        let sent_ms = now_ms();
        if let Err(e) = self
            .publish(OrderEventKind::Submitting, order, Some(sent_ms))
            .await
        {
            lock(&i.orders).remove(&id);
            return Err(e);
        }
        if let Some(t) = lock(&i.orders).get_mut(&id) {
            t.sent_ms = Some(sent_ms);
        }
        let started = std::time::Instant::now();
        let outcome = i.venue.submit_order(&req).await;
        metrics::histogram!("gekko_gateway_submit_seconds", "venue" => self.label())
            .record(started.elapsed().as_secs_f64());
        match outcome {
            Ok(update) => {
                // The order is acknowledged: make sure the PendingNew record moves on even
                // when the venue's answer carries the same status as a stream event.
                if !self.apply_update(&update, OrderEventKind::Updated).await {
                    let still_pending = self
                        .order(&id)
                        .is_some_and(|o| o.status == OrderStatus::PendingNew);
                    if still_pending {
                        self.set_status(&id, update.status, OrderEventKind::Updated)
                            .await;
                    }
                }
            }
            Err(SubmitError::NotPlaced(e)) => {
                metrics::counter!("gekko_gateway_venue_rejections_total", "venue" => self.label())
                    .increment(1);
                self.reject_local(&id, &e.to_string()).await;
            }
            Err(SubmitError::Ambiguous(reason)) => {
                // The user stream may already have reported the order while the REST
                // answer was lost; only an order we still know nothing about goes in flight.
                let unknown = self
                    .order(&id)
                    .is_some_and(|o| o.status == OrderStatus::PendingNew);
                if unknown {
                    tracing::warn!(venue = self.label(), order = %id, %reason, "submit outcome unknown; order in flight, will reconcile by query");
                    self.set_status(&id, OrderStatus::InFlight, OrderEventKind::InFlight)
                        .await;
                } else {
                    tracing::info!(venue = self.label(), order = %id, %reason, "submit answer lost, but the venue already reported the order");
                }
            }
        }
        self.order(&id)
            .ok_or_else(|| GatewayError::UnknownOrder(id.to_string()))
    }

    /// The tracked order with this id.
    #[must_use]
    pub fn order(&self, id: &ClientOrderId) -> Option<Order> {
        lock(&self.inner.orders).get(id).map(|t| t.order.clone())
    }

    /// Refreshes one order from the venue (by client order id) and returns it.
    ///
    /// # Errors
    /// Unknown order, or venue failures.
    pub async fn refresh_order(
        &self,
        instrument: &InstrumentId,
        id: &ClientOrderId,
    ) -> Result<Order, GatewayError> {
        if let Some(u) = self.inner.venue.query_order(instrument, id).await? {
            if lock(&self.inner.orders).contains_key(id) {
                self.apply_update(&u, OrderEventKind::Updated).await;
            } else {
                self.adopt(&u).await;
            }
        }
        self.order(id)
            .ok_or_else(|| GatewayError::UnknownOrder(id.to_string()))
    }

    /// Cancels one order.
    ///
    /// # Errors
    /// Unknown order, or the venue's refusal (e.g. already filled).
    pub async fn cancel_order(
        &self,
        instrument: &InstrumentId,
        id: &ClientOrderId,
    ) -> Result<Order, GatewayError> {
        let u = self.inner.venue.cancel_order(instrument, id).await?;
        self.apply_update(&u, OrderEventKind::Updated).await;
        self.order(id)
            .ok_or_else(|| GatewayError::UnknownOrder(id.to_string()))
    }

    /// `instruments`, or every configured instrument when it is empty.
    fn instruments_or_all(&self, instruments: &[InstrumentId]) -> Vec<InstrumentId> {
        if instruments.is_empty() {
            self.inner.cfg.instruments.clone()
        } else {
            instruments.to_vec()
        }
    }

    /// Cancels all open orders on the given instruments (all configured when empty).
    ///
    /// # Errors
    /// The first venue failure.
    pub async fn cancel_all(
        &self,
        instruments: &[InstrumentId],
    ) -> Result<Vec<Order>, GatewayError> {
        let list = self.instruments_or_all(instruments);
        let mut out = Vec::new();
        for inst in &list {
            for u in self.inner.venue.cancel_all(inst).await? {
                if !lock(&self.inner.orders).contains_key(&u.client_order_id) {
                    self.adopt(&u).await;
                }
                self.apply_update(&u, OrderEventKind::Updated).await;
                if let Some(o) = self.order(&u.client_order_id) {
                    out.push(o);
                }
            }
        }
        Ok(out)
    }

    /// Open orders known to the gateway (optionally for one instrument).
    #[must_use]
    pub fn open_orders(&self, instrument: Option<&InstrumentId>) -> Vec<Order> {
        let mut v: Vec<Order> = lock(&self.inner.orders)
            .values()
            .map(|t| &t.order)
            .filter(|o| o.status.is_open() || o.status == OrderStatus::PendingNew)
            .filter(|o| instrument.is_none_or(|i| &o.request.instrument == i))
            .cloned()
            .collect();
        v.sort_by_key(|o| o.updated_ms);
        v
    }

    /// Flattens long spot positions by selling the base asset at market, rounded down to
    /// the lot size. Opt-in: callers must ask for it explicitly.
    ///
    /// # Errors
    /// Venue and check failures of the individual orders are returned in the orders
    /// (status `Rejected`); bus failures abort.
    pub async fn close_positions(
        &self,
        instruments: &[InstrumentId],
    ) -> Result<Vec<Order>, GatewayError> {
        let list = self.instruments_or_all(instruments);
        let balances = self.inner.venue.balances().await?;
        *lock(&self.inner.balances) = balances;
        let mut out = Vec::new();
        for inst in list {
            let qty = self.position_qty(&inst);
            let Some(info) = lock(&self.inner.instruments).get(&inst).cloned() else {
                continue;
            };
            let lot = if info.lot_size.is_zero() {
                Decimal::new(1, 8)
            } else {
                info.lot_size
            };
            let sell = (qty / lot).floor() * lot;
            if sell <= Decimal::ZERO || sell < info.min_qty {
                continue;
            }
            let seq = u64::try_from(now_ms()).unwrap_or(0) * 1000
                + u64::try_from(self.inner.seq.fetch_add(1, Ordering::Relaxed)).unwrap_or(0);
            let req = OrderRequest {
                client_order_id: ClientOrderId::derive("close-positions", &inst, seq),
                instrument: inst.clone(),
                side: Side::Sell,
                order_type: OrderType::Market,
                qty: sell,
                price: None,
                time_in_force: None,
            };
            match self.place_order(req).await {
                Ok(o) => out.push(o),
                Err(GatewayError::Check(e)) => {
                    tracing::warn!(instrument = %inst, error = %e, "position not closed")
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Balances as last reported by the venue (refreshed by this call).
    ///
    /// # Errors
    /// Venue failures.
    pub async fn account(&self) -> Result<(Vec<Balance>, Vec<Position>), GatewayError> {
        let balances = self.inner.venue.balances().await?;
        *lock(&self.inner.balances) = balances.clone();
        let positions = self
            .inner
            .venue
            .positions(&self.inner.cfg.instruments)
            .await?;
        Ok((balances, positions))
    }

    /// Instrument rules.
    #[must_use]
    pub fn instruments(&self) -> Vec<InstrumentInfo> {
        let mut v: Vec<InstrumentInfo> = lock(&self.inner.instruments).values().cloned().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// The configured instruments.
    #[must_use]
    pub fn configured_instruments(&self) -> &[InstrumentId] {
        &self.inner.cfg.instruments
    }

    /// The venue.
    #[must_use]
    pub fn venue(&self) -> gekko_core::VenueId {
        self.inner.venue.id()
    }

    /// Live quotes.
    #[must_use]
    pub fn subscribe_quotes(&self) -> broadcast::Receiver<Quote> {
        self.inner.quotes_tx.subscribe()
    }

    /// Cancelled when the gateway shuts down.
    #[must_use]
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.cancel.clone()
    }

    /// The local book of one instrument: (sequence, bids best first, asks best first),
    /// or `None` while it is not synchronised.
    #[must_use]
    pub fn book(&self, instrument: &InstrumentId) -> Option<BookSnapshot> {
        let books = lock(&self.inner.books);
        let b = books.get(instrument)?;
        Some(BookSnapshot {
            instrument: instrument.clone(),
            sequence: b.last_update_id()?,
            bids: b.bids(),
            asks: b.asks(),
            ts_ms: now_ms(),
        })
    }

    fn reference_price(&self, instrument: &InstrumentId, side: Side) -> Option<Decimal> {
        if let Some(q) = lock(&self.inner.last_quotes).get(instrument) {
            return Some(match side {
                Side::Buy => q.ask,
                Side::Sell => q.bid,
            });
        }
        let books = lock(&self.inner.books);
        let (bid, ask) = books.get(instrument)?.top()?;
        Some(match side {
            Side::Buy => ask.price,
            Side::Sell => bid.price,
        })
    }

    fn position_qty(&self, instrument: &InstrumentId) -> Decimal {
        lock(&self.inner.balances)
            .iter()
            .find(|b| b.asset == instrument.base)
            .map_or(Decimal::ZERO, Balance::total)
    }

    async fn resync_book(&self, instrument: &InstrumentId) {
        let i = &self.inner;
        for attempt in 0..5u32 {
            match i.venue.book_snapshot(instrument).await {
                Ok(snap) => {
                    let res = lock(&i.books)
                        .get_mut(instrument)
                        .map(|b| b.apply_snapshot(&snap));
                    match res {
                        Some(Ok(())) | None => {
                            tracing::info!(venue = self.label(), %instrument, sequence = snap.sequence, "book synchronised from snapshot");
                            return;
                        }
                        Some(Err(gap)) => {
                            tracing::warn!(venue = self.label(), %instrument, ?gap, attempt, "snapshot older than buffered diffs; refetching");
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(venue = self.label(), %instrument, error = %e, attempt, "book snapshot failed")
                }
            }
            tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(attempt))).await;
        }
    }

    fn mark_data(&self) {
        self.inner
            .last_market_data_ms
            .store(now_ms(), Ordering::Relaxed);
    }

    fn md_publish<T: Serialize + serde::de::DeserializeOwned>(
        &self,
        topic: &Topic<T>,
        payload: &T,
    ) {
        if let Ok((_, bytes)) = topic.encode(&self.inner.cfg.source, payload) {
            // Market data may drop: if the writer is behind, skip rather than block the
            // stream (and count it).
            if self.inner.md_tx.try_send((topic.spec(), bytes)).is_err() {
                metrics::counter!("gekko_gateway_market_data_dropped_total", "venue" => self.label()).increment(1);
            }
        }
    }

    async fn market_loop(self, mut rx: mpsc::Receiver<MarketEvent>, cancel: CancellationToken) {
        let label = self.label();
        let max_len = self.inner.cfg.market_data_max_len;
        let quotes: Topic<Quote> = Topic::capped(names::quotes(label), max_len, 1);
        let trades: Topic<Trade> = Topic::capped(names::trades(label), max_len, 1);
        let book_topic: Topic<BookEvent> = Topic::capped(names::book(label), max_len, 1);
        loop {
            let ev = tokio::select! {
                () = cancel.cancelled() => return,
                ev = rx.recv() => match ev { Some(ev) => ev, None => return },
            };
            match ev {
                MarketEvent::Connected => {
                    self.mark_data();
                    let instruments = self.inner.cfg.instruments.clone();
                    for inst in &instruments {
                        if let Some(b) = lock(&self.inner.books).get_mut(inst) {
                            b.invalidate();
                        }
                        self.resync_book(inst).await;
                    }
                }
                MarketEvent::Disconnected { reason } => {
                    tracing::warn!(venue = label, %reason, "market stream disconnected");
                    self.inner
                        .ready
                        .market_data
                        .set_not_ready(format!("market stream disconnected: {reason}"));
                    for b in lock(&self.inner.books).values_mut() {
                        b.invalidate();
                    }
                }
                MarketEvent::Heartbeat => self.mark_data(),
                MarketEvent::Quote(q) => {
                    self.mark_data();
                    lock(&self.inner.last_quotes).insert(q.instrument.clone(), q.clone());
                    let _ = self.inner.quotes_tx.send(q.clone());
                    self.md_publish(&quotes, &q);
                }
                MarketEvent::Trade(t) => {
                    self.mark_data();
                    self.md_publish(&trades, &t);
                }
                MarketEvent::BookDiff(d) => {
                    self.mark_data();
                    let inst = d.instrument.clone();
                    let (bids, asks) = (d.bids.clone(), d.asks.clone());
                    let outcome = lock(&self.inner.books)
                        .get_mut(&inst)
                        .map(|b| (b.apply_diff(d), b.top(), b.last_update_id()));
                    match outcome {
                        Some((Applied::Gap { expected, got }, _, _)) => {
                            metrics::counter!("gekko_gateway_book_gaps_total", "venue" => label)
                                .increment(1);
                            tracing::warn!(venue = label, instrument = %inst, expected, got, "depth sequence gap; resynchronising");
                            self.resync_book(&inst).await;
                        }
                        Some((Applied::Applied, top, Some(seq))) => {
                            self.md_publish(
                                &book_topic,
                                &BookEvent {
                                    instrument: inst,
                                    sequence: seq,
                                    best_bid: top.map(|(b, _)| b.price),
                                    best_ask: top.map(|(_, a)| a.price),
                                    bids,
                                    asks,
                                },
                            );
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    async fn user_loop(self, mut rx: mpsc::Receiver<UserEvent>, cancel: CancellationToken) {
        loop {
            let ev = tokio::select! {
                () = cancel.cancelled() => return,
                ev = rx.recv() => match ev { Some(ev) => ev, None => return },
            };
            match ev {
                UserEvent::Order(u) => {
                    if lock(&self.inner.orders).contains_key(&u.client_order_id) {
                        self.apply_update(&u, OrderEventKind::Updated).await;
                    } else if !u.status.is_terminal() {
                        self.adopt(&u).await;
                    }
                }
                UserEvent::Balances(changed) => {
                    let mut all = lock(&self.inner.balances);
                    for b in changed {
                        match all.iter_mut().find(|x| x.asset == b.asset) {
                            Some(x) => *x = b,
                            None => all.push(b),
                        }
                    }
                }
                UserEvent::Connected => {
                    // Events may have been missed while disconnected: refresh every open
                    // order by query.
                    let open: Vec<(InstrumentId, ClientOrderId)> = self
                        .open_orders(None)
                        .into_iter()
                        .map(|o| (o.request.instrument.clone(), o.request.client_order_id))
                        .collect();
                    for (inst, id) in open {
                        if let Ok(Some(u)) = self.inner.venue.query_order(&inst, &id).await {
                            self.apply_update(&u, OrderEventKind::Updated).await;
                        }
                    }
                }
                UserEvent::Disconnected { reason } => {
                    tracing::warn!(venue = self.label(), %reason, "user stream disconnected");
                }
            }
        }
    }

    /// Resolves in-flight orders by querying the venue by client order id. Never resends.
    async fn resolver_loop(self, cancel: CancellationToken) {
        let resolve_after =
            i64::try_from(self.inner.cfg.in_flight_resolve_after.as_millis()).unwrap_or(i64::MAX);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            let inflight: Vec<(InstrumentId, ClientOrderId, i64)> = lock(&self.inner.orders)
                .values()
                .filter(|t| t.order.status == OrderStatus::InFlight)
                .map(|t| {
                    (
                        t.order.request.instrument.clone(),
                        orders::key(&t.order),
                        t.sent_ms.unwrap_or(t.order.updated_ms),
                    )
                })
                .collect();
            // The gauge is refreshed here, off the order hot path, from the scan the
            // resolver does anyway.
            metrics::gauge!("gekko_gateway_inflight_orders", "venue" => self.label())
                .set(inflight.len() as f64);
            for (inst, id, sent) in inflight {
                match self.inner.venue.query_order(&inst, &id).await {
                    Ok(Some(u)) => {
                        tracing::info!(venue = self.label(), order = %id, status = ?u.status, "in-flight order resolved at the venue");
                        if !self.apply_update(&u, OrderEventKind::Updated).await {
                            self.set_status(&id, u.status, OrderEventKind::Updated)
                                .await;
                        }
                    }
                    Ok(None) if now_ms() - sent >= resolve_after => {
                        tracing::info!(venue = self.label(), order = %id, "in-flight order never reached the venue");
                        self.reject_local(
                            &id,
                            "never reached the venue (not found after the receive window)",
                        )
                        .await;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!(order = %id, error = %e, "in-flight query failed; will retry")
                    }
                }
            }
        }
    }

    async fn clock_loop(self, cancel: CancellationToken) {
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(self.inner.cfg.clock_sync_interval) => {}
            }
            self.sync_clock().await;
        }
    }

    /// Market data is "flowing" when every book is synchronised and something arrived
    /// within `stale_after`.
    async fn watchdog_loop(self, cancel: CancellationToken) {
        let stale_ms = i64::try_from(self.inner.cfg.stale_after.as_millis()).unwrap_or(i64::MAX);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            let last = self.inner.last_market_data_ms.load(Ordering::Relaxed);
            let age = now_ms() - last;
            metrics::gauge!("gekko_gateway_market_data_age_seconds", "venue" => self.label())
                .set(age as f64 / 1000.0);
            let unsynced: Vec<String> = lock(&self.inner.books)
                .values()
                .filter(|b| !b.is_synced())
                .map(|b| b.instrument().pair())
                .collect();
            if last == 0 {
                self.inner
                    .ready
                    .market_data
                    .set_not_ready("no market data yet");
            } else if age > stale_ms {
                self.inner
                    .ready
                    .market_data
                    .set_not_ready(format!("market data stale: nothing for {age} ms"));
            } else if !unsynced.is_empty() {
                self.inner
                    .ready
                    .market_data
                    .set_not_ready(format!("books not synchronised: {}", unsynced.join(", ")));
            } else {
                self.inner.ready.market_data.set_ready();
            }
        }
    }

    /// Whether market data is currently considered flowing.
    #[must_use]
    pub fn market_data_ready(&self) -> bool {
        self.inner.ready.market_data.is_ready()
    }

    /// Quotes seen so far, per instrument.
    #[must_use]
    pub fn last_quotes(&self) -> BTreeMap<String, Quote> {
        lock(&self.inner.last_quotes)
            .iter()
            .map(|(k, v)| (k.pair(), v.clone()))
            .collect()
    }
}

/// Writes market data to the bus from a bounded queue, so a slow bus never stalls the
/// websocket reader.
async fn md_writer(
    bus: Arc<dyn Bus>,
    mut rx: mpsc::Receiver<(gekko_bus::StreamSpec, Bytes)>,
    cancel: CancellationToken,
) {
    loop {
        let (spec, bytes) = tokio::select! {
            () = cancel.cancelled() => return,
            m = rx.recv() => match m { Some(m) => m, None => return },
        };
        if let Err(e) = bus.append(&spec, bytes).await {
            metrics::counter!("gekko_gateway_market_data_dropped_total", "venue" => "bus")
                .increment(1);
            tracing::debug!(error = %e, stream = %spec.name, "market data not written");
        }
    }
}
