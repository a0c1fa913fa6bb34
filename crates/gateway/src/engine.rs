//! The gateway engine: one venue, its orders, books, fills and streams.
//!
//! Concurrency model: state lives in components behind short std `Mutex`es that are
//! never held across an `.await` ([`OrderTracker`] for orders, [`MarketData`] for books
//! and quotes); venue calls and bus writes happen outside them. Background work is a
//! handful of tasks on the caller's [`TaskTracker`], each owning one concern and stopping
//! on the shutdown token: market data, user data (orders, fills, balances), the in-flight
//! resolver, the clock, the market-data watchdog, and the bus writer for market data. The
//! adapter's own stream tasks run on the same tracker, so shutdown waits for them too.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use gekko_audit::AuditLog;
use gekko_bus::{Bus, Topic, names};
use gekko_core::backoff::{Backoff, BackoffConfig};
use gekko_core::sync::lock;
use gekko_core::{
    Balance, BookSnapshot, ClientOrderId, Fill, InstrumentId, Order, OrderRequest, OrderStatus,
    OrderType, Position, Quote, Side, now_ms,
};
use gekko_runtime::{Readiness, ReadyHandle};
use gekko_venue::{
    AccountModel, InstrumentInfo, MarketEvent, OrderUpdate, StreamCtx, SubmitError, UserEvent,
    VenueAdapter, VenueCaps, VenueError,
};
use rust_decimal::Decimal;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::checks::{CheckError, LiveLimits, RiskLimits, check_order_in};
pub use crate::config::{GatewayConfig, ReconcileMode};
use crate::control::{Entry, KillSwitchRecord, kill_switch_stream};
pub use crate::error::{GatewayError, StartError};
pub use crate::market::BookEvent;
use crate::market::{Followup, MarketData, md_writer};
use crate::orders::OrderEvent;
use crate::tracker::{Admission, Begin, OrderTracker};

/// What start-up reconciliation found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Local orders whose venue state differed and were updated.
    pub updated: usize,
    /// Orders open at the venue that were unknown locally.
    pub unknown_at_venue: Vec<String>,
    /// Local pending/in-flight orders the venue never received.
    pub never_placed: usize,
    /// Fills made while the gateway was not listening, read back from the venue
    /// ([`gekko_venue::VenueAdapter::order_fills`]) and recorded.
    pub fills_recovered: usize,
}

pub(crate) struct Ready {
    credentials: ReadyHandle,
    clock: ReadyHandle,
    pub(crate) reconciliation: ReadyHandle,
}

/// Fill trade ids already recorded, bounded: the oldest are forgotten first.
#[derive(Debug, Default)]
struct FillDedup {
    seen: HashSet<String>,
    order: VecDeque<String>,
}

impl FillDedup {
    fn key(f: &Fill) -> String {
        format!("{}|{}", f.instrument.pair(), f.trade_id)
    }

    /// Records the fill; `false` when it was seen before.
    fn insert(&mut self, key: String, cap: usize) -> bool {
        if !self.seen.insert(key.clone()) {
            return false;
        }
        self.order.push_back(key);
        while self.order.len() > cap.max(1) {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }

    /// Forgets a key reserved by [`FillDedup::insert`] whose fill was then not recorded.
    fn release(&mut self, key: &str) {
        if self.seen.remove(key)
            && let Some(pos) = self.order.iter().rposition(|k| k == key)
        {
            self.order.remove(pos);
        }
    }
}

pub(crate) struct Inner {
    pub(crate) venue: Arc<dyn VenueAdapter>,
    pub(crate) caps: VenueCaps,
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) cfg: GatewayConfig,
    /// The risk limits in force: `cfg.limits` at start, then whatever
    /// [`Gateway::set_risk_limits`] put in force (hot config changes).
    pub(crate) limits: LiveLimits,
    pub(crate) venue_label: &'static str,
    /// Orders, and the admission lock: the limits that depend on every order are checked
    /// inside the tracker, in the critical section that inserts the new order.
    pub(crate) orders: OrderTracker,
    instruments: Mutex<BTreeMap<InstrumentId, InstrumentInfo>>,
    market: MarketData,
    balances: Mutex<Vec<Balance>>,
    /// Native positions (margin venues), by instrument.
    positions: Mutex<HashMap<InstrumentId, Decimal>>,
    fills_seen: Mutex<FillDedup>,
    order_topic: Topic<OrderEvent>,
    pub(crate) fill_topic: Topic<Fill>,
    /// The venue's resume cursor ([`UserEvent::Cursor`]), next to the order stream: the
    /// last entry is handed back to the venue before each user stream starts.
    cursor_topic: Topic<String>,
    /// The kill switch: `Some` while new orders are halted. Read on every submit, written
    /// by [`Gateway::halt_entries`] / [`Gateway::resume_entries`]; persisted on
    /// `kill_switch_topic` so a restart keeps it.
    pub(crate) halt: Mutex<Option<KillSwitchRecord>>,
    pub(crate) kill_switch_topic: Topic<KillSwitchRecord>,
    /// Pre-trade refusals by rule, for the final report.
    pub(crate) refusals: Mutex<BTreeMap<String, u64>>,
    /// The process's audit trail, once attached ([`Gateway::attach_audit`]).
    pub(crate) audit: OnceLock<AuditLog>,
    /// Leader election, when replicas share the venue account ([`GatewayConfig::lease`]);
    /// `None`: this process is the only one, and always leads.
    pub(crate) ha: Option<crate::ha::Ha>,
    pub(crate) ready: Ready,
    seq: AtomicI64,
    /// Fires when the gateway shuts down; long-lived RPC streams end on it so a graceful
    /// gRPC shutdown is not held open by subscribers.
    cancel: CancellationToken,
}

/// A running gateway. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("venue", &self.inner.venue.id())
            .field("source", &self.inner.cfg.source)
            .finish_non_exhaustive()
    }
}

/// Retries an idempotent start-up call while the venue is rate limiting or unreachable.
async fn patiently<T, F, Fut>(cancel: &CancellationToken, mut f: F) -> Result<T, VenueError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, VenueError>>,
{
    let mut backoff = Backoff::new(BackoffConfig::new(
        Duration::from_millis(100),
        Duration::from_secs(5),
    ));
    let mut attempts = 0;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && attempts < 30 && !cancel.is_cancelled() => {
                let delay = backoff.next_delay();
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
                attempts += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A money figure as a Prometheus gauge value: the one place gateway money becomes `f64`,
/// for display only; every computation stays in `Decimal`.
#[expect(
    clippy::disallowed_methods,
    reason = "Prometheus gauges are f64; this is a display boundary, not arithmetic"
)]
fn gauge_value(v: rust_decimal::Decimal) -> f64 {
    rust_decimal::prelude::ToPrimitive::to_f64(&v).unwrap_or(f64::NAN)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Gateway {
    /// Starts a gateway: verifies credentials, syncs the clock, loads instruments,
    /// replays its order and fill streams, reconciles with the venue, then starts its
    /// streams. Readiness components (`<venue>-credentials`, `-clock`, `-reconciliation`,
    /// `-market-data`) turn ready as each condition holds.
    ///
    /// Configured pairs the venue does not list are skipped with a warning. A venue that
    /// lists none of them still starts, with no instruments: accounts, orders'
    /// reconciliation and close-positions keep working, no market stream is opened, and
    /// `<venue>-market-data` is ready with a note saying there is nothing to stream.
    ///
    /// # Errors
    /// [`StartError`] when the venue refuses the credentials, stays unreachable, or
    /// strict reconciliation finds a mismatch.
    pub async fn start(
        venue: Arc<dyn VenueAdapter>,
        bus: Arc<dyn Bus>,
        cfg: GatewayConfig,
        readiness: &Readiness,
        tracker: &TaskTracker,
        cancel: CancellationToken,
    ) -> Result<(Self, ReconcileReport), StartError> {
        let label = venue.id().as_str();
        let caps = venue.caps();
        let ready = Ready {
            credentials: readiness.component(&format!("{label}-credentials")),
            clock: readiness.component(&format!("{label}-clock")),
            reconciliation: readiness.component(&format!("{label}-reconciliation")),
        };
        let market_ready = readiness.component(&format!("{label}-market-data"));
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
        // warning (SUPPORTED_TRADING_PAIRS spans venues); none at all leaves the gateway
        // without instruments (an empty request would mean "all" to some adapters).
        let mut cfg = cfg;
        let infos = if cfg.instruments.is_empty() {
            Vec::new()
        } else {
            patiently(&cancel, || venue.instruments(&cfg.instruments))
                .await
                .map_err(StartError::Venue)?
        };
        let (offered, missing): (Vec<InstrumentId>, Vec<InstrumentId>) = cfg
            .instruments
            .iter()
            .cloned()
            .partition(|want| infos.iter().any(|inf| &inf.id == want));
        for m in &missing {
            tracing::warn!(venue = label, instrument = %m.pair(), "pair not offered by the venue; skipped");
        }
        if offered.is_empty() {
            let skipped: Vec<String> = missing.iter().map(InstrumentId::pair).collect();
            tracing::warn!(
                venue = label,
                skipped = %skipped.join(", "),
                "the venue lists none of the configured pairs: the gateway runs with no instruments"
            );
        }
        cfg.instruments = offered;
        let (market, md_rx) = MarketData::new(
            label,
            cfg.source.clone(),
            caps.book_feed,
            cfg.instruments.clone(),
            cfg.market_data_max_len,
            market_ready,
        );
        let instruments = infos
            .into_iter()
            .filter(|inf| cfg.instruments.contains(&inf.id))
            .map(|inf| (inf.id.clone(), inf))
            .collect();
        let ha = match &cfg.lease {
            Some(lc) => Some(crate::ha::Ha::new(
                crate::lease::Lease::new(lc.clone()).map_err(|e| StartError::Bus(e.to_string()))?,
                readiness.component(&format!("{label}-role")),
                label,
            )),
            None => None,
        };
        let inner = Arc::new(Inner {
            order_topic: Topic::durable(names::orders(label), 1),
            fill_topic: Topic::durable(names::fills(label), 1),
            cursor_topic: Topic::capped(cursor_stream(label), 16, 1),
            venue,
            caps,
            bus,
            venue_label: label,
            limits: LiveLimits::new(cfg.limits.clone()),
            orders: OrderTracker::with_reset_hour(cfg.limits.daily_reset_hour),
            instruments: Mutex::new(instruments),
            market,
            balances: Mutex::new(Vec::new()),
            positions: Mutex::new(HashMap::new()),
            fills_seen: Mutex::new(FillDedup::default()),
            halt: Mutex::new(None),
            kill_switch_topic: Topic::durable(kill_switch_stream(label), 1),
            refusals: Mutex::new(BTreeMap::new()),
            audit: OnceLock::new(),
            ha,
            ready,
            seq: AtomicI64::new(0),
            cancel: cancel.clone(),
            cfg,
        });
        let gw = Self { inner };
        let i = &gw.inner;
        // 3. Clock.
        gw.sync_clock().await;
        // 4 + 5. The order side for this term: the user stream (opened before the replay,
        // so no user event after it is missed; events for orders not yet loaded are merged
        // when reconciliation queries them anyway), replay, reconciliation, the resolver.
        // Without a lease the term is the process's life; with one only the lease holder
        // runs it, and a standby takes over in `lease_loop`.
        let leading = match &i.ha {
            None => true,
            Some(ha) => match ha.lease.try_acquire().await {
                Ok(token) => token.is_some(),
                Err(e) => {
                    tracing::warn!(venue = label, error = %e, "lease store unreachable at start; standing by");
                    false
                }
            },
        };
        let report = if leading {
            let term = cancel.child_token();
            let report = gw.begin_term(tracker, term.clone()).await?;
            i.ready.reconciliation.set_ready();
            gw.lead(term);
            report
        } else {
            // Nothing to reconcile until it takes over; it serves by forwarding meanwhile.
            i.ready.reconciliation.set_ready();
            tracing::info!(
                venue = label,
                "another replica holds the lease: standing by"
            );
            ReconcileReport::default()
        };

        // 6. Background tasks.
        let streams = StreamCtx::new(tracker.clone(), cancel.child_token());
        // No instruments, no market stream (readiness is vacuous, see `MarketData`).
        if !i.market.instruments().is_empty() {
            let market_rx = i.venue.market_stream(i.market.instruments(), &streams);
            tracker.spawn(gw.clone().market_loop(market_rx, cancel.child_token()));
        }
        tracker.spawn(gw.clone().clock_loop(cancel.child_token()));
        tracker.spawn(gw.clone().watchdog_loop(cancel.child_token()));
        let md_rx = gw.standby_gate(tracker, md_rx, cancel.child_token());
        tracker.spawn(md_writer(gw.inner.bus.clone(), md_rx, cancel.child_token()));
        if gw.inner.ha.is_some() {
            tracker.spawn(gw.clone().lease_loop(tracker.clone(), cancel.child_token()));
        }
        Ok((gw, report))
    }

    pub(crate) fn label(&self) -> &'static str {
        self.inner.venue_label
    }

    /// Hands the venue the last resume cursor stored on [`cursor_stream`], if any, so the
    /// next user stream replays what the venue recorded after it.
    pub(crate) async fn resume_user_stream(&self) {
        let i = &self.inner;
        match i.bus.last_entry(i.cursor_topic.name()).await {
            Ok(Some(d)) => match i.cursor_topic.decode(&d) {
                Ok(env) => {
                    tracing::info!(venue = self.label(), cursor = %env.payload, "user stream resumes from the stored cursor");
                    i.venue.resume_user_stream(&env.payload);
                }
                Err(e) => {
                    tracing::warn!(venue = self.label(), error = %e, "stored resume cursor unreadable; ignored");
                }
            },
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(venue = self.label(), error = %e, "resume cursor not read; the user stream starts from now");
            }
        }
    }

    /// What the venue declared about itself.
    #[must_use]
    pub fn caps(&self) -> VenueCaps {
        self.inner.caps
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

    /// The restart recovery: the order, fill and kill-switch streams replayed, then
    /// reconciliation with the venue. At start, and when a standby takes over.
    pub(crate) async fn recover(
        &self,
        cancel: &CancellationToken,
    ) -> Result<ReconcileReport, StartError> {
        self.replay_order_stream().await?;
        self.replay_fill_stream().await?;
        self.replay_kill_switch().await?;
        self.reconcile(cancel).await
    }

    /// Rebuilds local order state from the order stream (last event per id wins).
    async fn replay_order_stream(&self) -> Result<(), StartError> {
        let i = &self.inner;
        let mut n = 0usize;
        replay(&*i.bus, &i.order_topic, |ev| {
            n += 1;
            i.orders.restore(ev);
        })
        .await?;
        tracing::info!(
            venue = self.label(),
            events = n,
            orders = i.orders.len(),
            "order stream replayed"
        );
        Ok(())
    }

    /// Loads the trade ids already on the fill stream, so a fill the venue reports again
    /// after a restart is not recorded twice.
    async fn replay_fill_stream(&self) -> Result<(), StartError> {
        let i = &self.inner;
        let cap = i.cfg.fill_dedup_window;
        let mut seen = FillDedup::default();
        replay(&*i.bus, &i.fill_topic, |f| {
            seen.insert(FillDedup::key(&f), cap);
        })
        .await?;
        *lock(&i.fills_seen) = seen;
        Ok(())
    }

    /// Start-up reconciliation: every local non-terminal order is checked against the
    /// venue, and venue open orders unknown locally are adopted or refused.
    async fn reconcile(&self, cancel: &CancellationToken) -> Result<ReconcileReport, StartError> {
        let i = &self.inner;
        let mut report = ReconcileReport::default();
        for open in i.orders.non_terminal() {
            let found = patiently(cancel, || i.venue.query_order(&open.instrument, &open.id))
                .await
                .map_err(StartError::Venue)?;
            match found {
                Some(update) => {
                    let (changed, recovered) = self.apply_queried(&update).await;
                    if changed {
                        report.updated += 1;
                    }
                    report.fills_recovered += recovered;
                }
                None => {
                    let old_enough = self
                        .unknown_order_horizon()
                        .is_some_and(|h| now_ms() - open.since_ms >= millis(h));
                    if matches!(open.status, OrderStatus::PendingNew | OrderStatus::InFlight)
                        && !old_enough
                    {
                        // Too recent (or no horizon) to conclude: let the resolver decide.
                        let ev = i.orders.mark_in_flight(&open.id, now_ms());
                        self.persist(ev).await;
                    } else {
                        report.never_placed += 1;
                        self.reject_local(&open.id, "not found at the venue during reconciliation")
                            .await;
                    }
                }
            }
        }
        for inst in self.inner.market.instruments() {
            let venue_open = patiently(cancel, || i.venue.open_orders(inst))
                .await
                .map_err(StartError::Venue)?;
            for u in venue_open {
                if i.orders.contains(&u.client_order_id) {
                    if self.apply_update(&u).await {
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
        if i.caps.account == AccountModel::Margin {
            let positions = patiently(cancel, || i.venue.positions(i.market.instruments()))
                .await
                .map_err(StartError::Venue)?;
            self.set_positions(&positions);
        }
        tracing::info!(venue = self.label(), ?report, "reconciliation complete");
        Ok(report)
    }

    /// The venue's horizon after which an unknown client id proves "never placed".
    fn unknown_order_horizon(&self) -> Option<Duration> {
        self.inner.caps.unknown_order_horizon
    }

    /// The one persist policy for order events after the submit: the venue is the source
    /// of truth and the transition has happened, so a failed write is logged and counted
    /// (`gekko_gateway_persist_failures_total`) and the in-memory state stands; the next
    /// event for the order carries the full order again, and start-up reconciliation
    /// repairs a stream that missed one. Only the `Submitting` record is different: it
    /// gates the send (see [`Gateway::place_order`]).
    async fn persist(&self, ev: Option<OrderEvent>) -> bool {
        let Some(ev) = ev else { return false };
        if let Err(e) = self.write_event(&ev).await {
            metrics::counter!("gekko_gateway_persist_failures_total", "venue" => self.label())
                .increment(1);
            tracing::error!(venue = self.label(), order = %ev.order.request.client_order_id, error = %e, "order event not persisted");
        }
        true
    }

    async fn write_event(&self, ev: &OrderEvent) -> Result<(), GatewayError> {
        self.durable_write(&self.inner.order_topic, ev)
            .await
            .map_err(GatewayError::Persist)
    }

    /// Merges a venue update into a tracked order and records the change on the bus.
    pub(crate) async fn apply_update(&self, u: &OrderUpdate) -> bool {
        let ev = self.inner.orders.apply(u);
        self.persist(ev).await
    }

    pub(crate) async fn adopt(&self, u: &OrderUpdate) {
        if let Some(ev) = self.inner.orders.adopt(u, now_ms()) {
            tracing::warn!(venue = self.label(), order = %u.client_order_id, "adopted an open venue order unknown locally");
            self.persist(Some(ev)).await;
        }
    }

    async fn reject_local(&self, id: &ClientOrderId, reason: &str) {
        let ev = self.inner.orders.reject(id, reason, now_ms());
        self.persist(ev).await;
    }

    /// Records a fill on the durable fill stream unless its trade id was seen before.
    /// Returns whether it was new.
    ///
    /// Only the user-stream task records fills, one at a time, so checking before the
    /// write and remembering the id after it cannot race; a fill whose write failed is
    /// not remembered, so its redelivery gets another chance.
    /// Applies the venue's view of a tracked order found by query (reconciliation, or a
    /// user stream that reconnected). When the order is more filled than the gateway
    /// knew, the executions happened while nobody listened: the venue's own record of
    /// them ([`VenueAdapter::order_fills`]) reaches the fills stream, de-duplicated by
    /// trade id. Returns whether the order changed and how many fills were recovered.
    async fn apply_queried(&self, update: &OrderUpdate) -> (bool, usize) {
        let i = &self.inner;
        let known = i
            .orders
            .get(&update.client_order_id)
            .map_or(Decimal::ZERO, |o| o.filled_qty);
        let changed = self.apply_update(update).await;
        let mut recovered = 0;
        if update.filled_qty > known {
            match i.venue.order_fills(update).await {
                Ok(fills) => {
                    for f in fills {
                        if self.record_fill(f).await {
                            recovered += 1;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(venue = self.label(), order = %update.client_order_id, error = %e, "fills of an order filled while nobody listened could not be read")
                }
            }
        }
        (changed, recovered)
    }

    async fn record_fill(&self, fill: Fill) -> bool {
        let i = &self.inner;
        let key = FillDedup::key(&fill);
        // Reserved before the publish, not after: the user stream and a reconciliation
        // query can report the same execution at the same moment, and a check that spans
        // the publish's await would let both through.
        if !lock(&i.fills_seen).insert(key.clone(), i.cfg.fill_dedup_window) {
            metrics::counter!("gekko_gateway_duplicate_fills_total", "venue" => self.label())
                .increment(1);
            return false;
        }
        if let Err(e) = self.durable_write(&i.fill_topic, &fill).await {
            lock(&i.fills_seen).release(&key);
            metrics::counter!("gekko_gateway_persist_failures_total", "venue" => self.label())
                .increment(1);
            tracing::error!(venue = self.label(), trade = %fill.trade_id, error = %e, "fill not persisted");
            return false;
        }
        metrics::counter!("gekko_gateway_fills_total", "venue" => self.label()).increment(1);
        true
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
    ///
    /// Audited as `order.place` with the actor `in-process` (see
    /// [`Gateway::place_order_as`]).
    pub async fn place_order(&self, req: OrderRequest) -> Result<Order, GatewayError> {
        self.place_order_as("in-process", req).await
    }

    /// [`Gateway::place_order`] on behalf of `actor` (a gRPC caller's token name, a
    /// strategy), which the audit record names.
    ///
    /// # Errors
    /// As [`Gateway::place_order`].
    pub async fn place_order_as(
        &self,
        actor: &str,
        req: OrderRequest,
    ) -> Result<Order, GatewayError> {
        self.place(req, Entry::Open, actor).await
    }

    /// Counts a pre-trade refusal by its rule, and logs it.
    fn refused(&self, id: &ClientOrderId, e: &CheckError) {
        metrics::counter!("gekko_gateway_pretrade_rejections_total", "venue" => self.label(), "rule" => e.rule())
            .increment(1);
        *lock(&self.inner.refusals)
            .entry(e.rule().to_owned())
            .or_default() += 1;
        tracing::info!(venue = self.label(), order = %id, reason = %e, "order refused by pre-trade checks");
    }

    /// The one submit path, audited as `order.place` with its outcome.
    pub(crate) async fn place(
        &self,
        req: OrderRequest,
        entry: Entry,
        actor: &str,
    ) -> Result<Order, GatewayError> {
        let detail = crate::control::order_request_detail(self.venue(), &req);
        let result = self.place_checked(req, entry).await;
        self.audit_result(actor, "order.place", detail, &result);
        result
    }

    async fn place_checked(&self, req: OrderRequest, entry: Entry) -> Result<Order, GatewayError> {
        let i = &self.inner;
        let checks_started = std::time::Instant::now();
        self.ensure_leader()?;
        if let Some(existing) = self.order(&req.client_order_id) {
            metrics::counter!("gekko_gateway_duplicate_submits_suppressed_total", "venue" => self.label()).increment(1);
            return Ok(existing);
        }
        // A gateway-generated closing order (flatten) only reduces exposure: the kill
        // switch and the notional limits, which exist to stop new risk, do not hold it.
        let closing = entry == Entry::Close;
        let halted = lock(&i.halt).as_ref().map(|h| h.reason.clone());
        if let (Some(reason), false) = (halted, closing) {
            let e = CheckError::KillSwitch { reason };
            self.refused(&req.client_order_id, &e);
            return Err(e.into());
        }
        let info = lock(&i.instruments).get(&req.instrument).cloned();
        let reference = i.market.reference_price(&req.instrument, req.side);
        let unlimited;
        let live = i.limits.load();
        let limits = if closing {
            unlimited = RiskLimits {
                max_order_notional: Decimal::ZERO,
                ..(*live).clone()
            };
            &unlimited
        } else {
            &*live
        };
        // The notional limits are in the account currency: the venue converts (OANDA's
        // USD_JPY counts in USD, not JPY). Closing orders are not held by them, but count
        // in the day's total.
        let account_notional = match req.price.or(reference) {
            Some(px) if px > Decimal::ZERO && req.qty > Decimal::ZERO => {
                match i.venue.account_notional(&req.instrument, req.qty, px).await {
                    Ok(n) => Some(n),
                    Err(e) if closing => {
                        tracing::warn!(venue = self.label(), error = %e, "closing order's notional counted in the quote currency");
                        None
                    }
                    Err(e) => {
                        let e = CheckError::Risk {
                            limit: "COMPLIANCE_SETTINGS.max_order_notional",
                            detail: format!(
                                "the notional of {} {} at {px} cannot be converted to the account currency: {e}",
                                req.qty,
                                req.instrument.pair()
                            ),
                        };
                        self.refused(&req.client_order_id, &e);
                        return Err(e.into());
                    }
                }
            }
            _ => None,
        };
        let price = match check_order_in(&req, info.as_ref(), limits, reference, account_notional) {
            Ok(p) => p,
            Err(e) => {
                self.refused(&req.client_order_id, &e);
                return Err(e.into());
            }
        };
        let id = req.client_order_id.clone();
        let admission = Admission {
            notional: account_notional.unwrap_or(price * req.qty),
            max_inflight: limits.max_inflight_orders,
            max_daily_notional: if closing {
                Decimal::ZERO
            } else {
                limits.max_daily_notional
            },
            position_limit: limits.position_limits.get(&req.instrument.pair()).copied(),
            position: self.position_qty(&req.instrument),
        };
        let submitting = match i.orders.admit(req.clone(), now_ms(), &admission) {
            Ok(Begin::New(ev)) => ev,
            Ok(Begin::Existing(existing)) => return Ok(existing),
            Err(e) => {
                self.refused(&id, &e);
                return Err(e.into());
            }
        };
        // Stage timings of the submit path (checks, persist, venue call, ack handling),
        // read by `gekko-bench signal-to-ack`.
        metrics::histogram!("gekko_gateway_pretrade_check_seconds", "venue" => self.label())
            .record(checks_started.elapsed().as_secs_f64());
        let persist_started = std::time::Instant::now();
        if let Err(e) = self.write_event(&submitting).await {
            i.orders.abort_submit(&id);
            return Err(e);
        }
        metrics::histogram!("gekko_gateway_submit_persist_seconds", "venue" => self.label())
            .record(persist_started.elapsed().as_secs_f64());
        let started = std::time::Instant::now();
        let outcome = i.venue.submit_order(&req).await;
        metrics::histogram!("gekko_gateway_submit_seconds", "venue" => self.label())
            .record(started.elapsed().as_secs_f64());
        match outcome {
            Ok(update) => {
                let ack_started = std::time::Instant::now();
                // The order is acknowledged: make sure the PendingNew record moves on even
                // when the venue's answer carries the same status as a stream event.
                if !self.apply_update(&update).await {
                    let ev = i.orders.acknowledge(&id, update.status, now_ms());
                    self.persist(ev).await;
                }
                metrics::histogram!("gekko_gateway_ack_persist_seconds", "venue" => self.label())
                    .record(ack_started.elapsed().as_secs_f64());
            }
            Err(SubmitError::NotPlaced(e)) => {
                let reason = e.reject_reason().map_or("not_sent", |r| r.as_str());
                metrics::counter!("gekko_gateway_venue_rejections_total", "venue" => self.label(), "reason" => reason)
                    .increment(1);
                self.reject_local(&id, &e.to_string()).await;
                // Refused for a pause (a rate limit, a ban, an open circuit) and provably
                // not placed: the record ends this attempt, and the id is forgotten so the
                // caller may submit the same order, with the same client id, once the
                // pause is over. The error says how long that is.
                if matches!(
                    e,
                    VenueError::RateLimited { .. } | VenueError::CircuitOpen { .. }
                ) {
                    i.orders.forget_unsent(&id);
                    return Err(GatewayError::Venue(e));
                }
            }
            Err(SubmitError::Ambiguous(reason)) => {
                // The user stream may already have reported the order while the REST
                // answer was lost; only an order we still know nothing about goes in flight.
                match i.orders.mark_in_flight(&id, now_ms()) {
                    Some(ev) => {
                        tracing::warn!(venue = self.label(), order = %id, %reason, "submit outcome unknown; order in flight, will reconcile by query");
                        self.persist(Some(ev)).await;
                    }
                    None => {
                        tracing::info!(venue = self.label(), order = %id, %reason, "submit answer lost, but the venue already reported the order");
                    }
                }
            }
        }
        self.order(&id)
            .ok_or_else(|| GatewayError::UnknownOrder(id.to_string()))
    }

    /// The tracked order with this id.
    #[must_use]
    pub fn order(&self, id: &ClientOrderId) -> Option<Order> {
        self.inner.orders.get(id)
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
        self.ensure_leader()?;
        if let Some(u) = self.inner.venue.query_order(instrument, id).await? {
            if self.inner.orders.contains(id) {
                self.apply_queried(&u).await;
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
        self.ensure_leader()?;
        let u = self.inner.venue.cancel_order(instrument, id).await?;
        self.apply_update(&u).await;
        self.order(id)
            .ok_or_else(|| GatewayError::UnknownOrder(id.to_string()))
    }

    /// `instruments`, or every configured instrument when it is empty.
    pub(crate) fn instruments_or_all(&self, instruments: &[InstrumentId]) -> Vec<InstrumentId> {
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
        self.ensure_leader()?;
        let list = self.instruments_or_all(instruments);
        let mut out = Vec::new();
        for inst in &list {
            for u in self.inner.venue.cancel_all(inst).await? {
                if !self.inner.orders.contains(&u.client_order_id) {
                    self.adopt(&u).await;
                }
                self.apply_update(&u).await;
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
        self.inner.orders.open(instrument)
    }

    /// Flattens positions. Opt-in: callers must ask for it explicitly.
    ///
    /// On a venue with a native close ([`VenueCaps::native_close_position`]) each
    /// instrument is closed through it. On a spot venue a long holding is sold at market,
    /// rounded down to the lot size, through the engine's one submit path (so it is
    /// persisted first and never sent twice). A closing order only reduces exposure, so
    /// the kill switch, `max_order_notional` and `max_daily_notional` do not stop it; the
    /// venue's filters, `trading_enabled=false`, restricted pairs and the need for a
    /// reference price still do.
    ///
    /// # Errors
    /// Venue and check failures of the individual orders are returned in the orders
    /// (status `Rejected`); bus failures abort.
    pub async fn close_positions(
        &self,
        instruments: &[InstrumentId],
    ) -> Result<Vec<Order>, GatewayError> {
        self.ensure_leader()?;
        let list = self.instruments_or_all(instruments);
        if self.inner.caps.native_close_position {
            let mut out = Vec::new();
            for inst in &list {
                for u in self.inner.venue.close_position(inst).await? {
                    if !self.inner.orders.contains(&u.client_order_id) {
                        self.adopt(&u).await;
                    }
                    self.apply_update(&u).await;
                    if let Some(o) = self.order(&u.client_order_id) {
                        out.push(o);
                    }
                }
            }
            return Ok(out);
        }
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
            match self.place(req, Entry::Close, "close-positions").await {
                Ok(o) => out.push(o),
                Err(GatewayError::Check(e)) => {
                    tracing::warn!(instrument = %inst, error = %e, "position not closed")
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Balances and positions as the venue reports them (refreshed by this call).
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
        if self.inner.caps.account == AccountModel::Margin {
            self.set_positions(&positions);
        }
        Ok((balances, positions))
    }

    /// The margin account's summary (margin venues; `None` for spot), also exported as
    /// gauges: `gekko_gateway_margin_nav`, `_balance`, `_unrealized_pl`, `_used`,
    /// `_available` and `gekko_gateway_margin_closeout_percent`, labelled `venue`.
    ///
    /// # Errors
    /// The venue's failure.
    pub async fn margin(&self) -> Result<Option<gekko_venue::MarginSummary>, GatewayError> {
        let summary = self.inner.venue.margin_summary().await?;
        if let Some(m) = &summary {
            let venue = self.venue().as_str();
            for (name, v) in [
                ("gekko_gateway_margin_nav", m.nav),
                ("gekko_gateway_margin_balance", m.balance),
                ("gekko_gateway_margin_unrealized_pl", m.unrealized_pl),
                ("gekko_gateway_margin_used", m.margin_used),
                ("gekko_gateway_margin_available", m.margin_available),
                (
                    "gekko_gateway_margin_closeout_percent",
                    m.margin_closeout_percent,
                ),
            ] {
                metrics::gauge!(name, "venue" => venue).set(gauge_value(v));
            }
        }
        Ok(summary)
    }

    /// Instrument rules.
    #[must_use]
    pub fn instruments(&self) -> Vec<InstrumentInfo> {
        lock(&self.inner.instruments).values().cloned().collect()
    }

    /// The configured instruments the venue lists.
    #[must_use]
    pub fn configured_instruments(&self) -> &[InstrumentId] {
        &self.inner.cfg.instruments
    }

    /// The risk limits in force now (`POSITION_LIMITS`, `COMPLIANCE_SETTINGS`, in-flight).
    #[must_use]
    pub fn risk_limits(&self) -> Arc<RiskLimits> {
        self.inner.limits.load()
    }

    /// Puts `limits` in force for every order checked from now on (a hot change of
    /// `POSITION_LIMITS` or `COMPLIANCE_SETTINGS`). The trading day's reset hour is fixed at
    /// start (the order tracker counts the day's notional from it), so its value here is
    /// ignored.
    pub fn set_risk_limits(&self, limits: RiskLimits) {
        self.inner.limits.store(limits);
    }

    /// The venue this gateway trades on.
    #[must_use]
    pub fn venue(&self) -> gekko_core::VenueId {
        self.inner.venue.id()
    }

    /// Live quotes.
    #[must_use]
    pub fn subscribe_quotes(&self) -> broadcast::Receiver<Quote> {
        self.inner.market.subscribe_quotes()
    }

    /// Cancelled when the gateway shuts down.
    #[must_use]
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.cancel.clone()
    }

    /// The local book of one instrument, or `None` while it is not synchronised (and
    /// always for a venue without a book).
    #[must_use]
    pub fn book(&self, instrument: &InstrumentId) -> Option<BookSnapshot> {
        self.inner.market.book(instrument)
    }

    /// The unfilled quantity of this gateway's working orders on one instrument and side:
    /// the figure `POSITION_LIMITS` counts besides the position.
    #[must_use]
    pub fn working_qty(&self, instrument: &InstrumentId, side: Side) -> Decimal {
        self.inner.orders.working_qty(instrument, side)
    }

    /// The position the risk checks see: the base balance on a spot venue, the venue's
    /// native signed position on a margin venue. From the gateway's own state (kept by
    /// the user stream), so it costs no venue call.
    #[must_use]
    pub fn position_qty(&self, instrument: &InstrumentId) -> Decimal {
        match self.inner.caps.account {
            AccountModel::Spot => lock(&self.inner.balances)
                .iter()
                .find(|b| b.asset == instrument.base)
                .map_or(Decimal::ZERO, Balance::total),
            AccountModel::Margin => lock(&self.inner.positions)
                .get(instrument)
                .copied()
                .unwrap_or_default(),
        }
    }

    /// Records native positions (a full or partial report: listed instruments change).
    pub(crate) fn set_positions(&self, positions: &[Position]) {
        let mut map = lock(&self.inner.positions);
        for p in positions {
            map.insert(p.instrument.clone(), p.qty);
        }
    }

    async fn market_loop(self, mut rx: mpsc::Receiver<MarketEvent>, cancel: CancellationToken) {
        loop {
            let ev = tokio::select! {
                () = cancel.cancelled() => return,
                ev = rx.recv() => match ev { Some(ev) => ev, None => return },
            };
            if let Followup::Resync(inst) = self.inner.market.on_event(ev)
                && let Err(e) = self.inner.venue.resync_book(&inst).await
            {
                tracing::warn!(venue = self.label(), instrument = %inst, error = %e, feed = ?self.inner.market.book_feed(), "book resync request failed");
            }
        }
    }

    pub(crate) async fn user_loop(
        self,
        mut rx: mpsc::Receiver<UserEvent>,
        cancel: CancellationToken,
    ) {
        loop {
            let ev = tokio::select! {
                () = cancel.cancelled() => return,
                ev = rx.recv() => match ev { Some(ev) => ev, None => return },
            };
            match ev {
                UserEvent::Order(u) => {
                    if self.inner.orders.contains(&u.client_order_id) {
                        self.apply_update(&u).await;
                    } else if !u.status.is_terminal() {
                        self.adopt(&u).await;
                    }
                }
                UserEvent::Fill(f) => {
                    self.record_fill(f).await;
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
                UserEvent::Positions(p) => self.set_positions(&p),
                UserEvent::Cursor(c) => {
                    // Every event before it was processed (fills persisted) above.
                    if let Err(e) = self.durable_write(&self.inner.cursor_topic, &c).await {
                        tracing::warn!(venue = self.label(), cursor = %c, error = %e, "resume cursor not stored");
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
                            self.apply_queried(&u).await;
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
    ///
    /// "Not found" proves "never placed" only after the venue's declared horizon
    /// ([`VenueCaps::unknown_order_horizon`]); a venue without one keeps the order in
    /// flight, and after [`GatewayConfig::in_flight_alert_after`] it is reported as overdue.
    pub(crate) async fn resolver_loop(self, cancel: CancellationToken) {
        let horizon = self.unknown_order_horizon().map(millis);
        let alert_after = millis(self.inner.cfg.in_flight_alert_after);
        let mut alerted: HashSet<ClientOrderId> = HashSet::new();
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            let inflight = self.inner.orders.in_flight();
            // The gauge is refreshed here, off the order hot path, from the scan the
            // resolver does anyway.
            metrics::gauge!("gekko_gateway_inflight_orders", "venue" => self.label())
                .set(inflight.len() as f64);
            alerted.retain(|id| inflight.iter().any(|e| &e.id == id));
            for e in inflight {
                let age = now_ms() - e.since_ms;
                match self.inner.venue.query_order(&e.instrument, &e.id).await {
                    Ok(Some(u)) => {
                        tracing::info!(venue = self.label(), order = %e.id, status = ?u.status, "in-flight order resolved at the venue");
                        if !self.apply_update(&u).await {
                            let ev = self.inner.orders.resolve(&e.id, u.status, now_ms());
                            self.persist(ev).await;
                        }
                    }
                    Ok(None) if horizon.is_some_and(|h| age >= h) => {
                        tracing::info!(venue = self.label(), order = %e.id, "in-flight order never reached the venue");
                        self.reject_local(
                            &e.id,
                            "never reached the venue (not found after the receive window)",
                        )
                        .await;
                    }
                    Ok(None) => {
                        if horizon.is_none() && age >= alert_after && alerted.insert(e.id.clone()) {
                            metrics::counter!("gekko_gateway_inflight_overdue_total", "venue" => self.label()).increment(1);
                            tracing::error!(venue = self.label(), order = %e.id, age_ms = age, "in-flight order still unknown at the venue; kept in flight (the venue gives no horizon)");
                        }
                    }
                    Err(err) => {
                        tracing::debug!(order = %e.id, error = %err, "in-flight query failed; will retry")
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
            // Margin venues: the account summary's gauges follow on the same beat, so NAV
            // and the closeout level are on the dashboard without anyone calling
            // GetAccount.
            if self.inner.caps.account == AccountModel::Margin
                && let Err(e) = self.margin().await
            {
                tracing::debug!(venue = self.label(), error = %e, "margin summary refresh failed");
            }
        }
    }

    async fn watchdog_loop(self, cancel: CancellationToken) {
        let stale_ms = millis(self.inner.cfg.stale_after);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            self.inner.market.evaluate(stale_ms);
        }
    }

    /// Whether market data is currently considered flowing.
    #[must_use]
    pub fn market_data_ready(&self) -> bool {
        self.inner.market.is_ready()
    }

    /// Quotes seen so far, per instrument.
    #[must_use]
    pub fn last_quotes(&self) -> BTreeMap<String, Quote> {
        self.inner.market.last_quotes()
    }
}

/// The stream holding a venue's resume cursor ([`UserEvent::Cursor`]):
/// `gekko:{orders:<venue>}:cursor`, in the order stream's hash slot.
#[must_use]
pub fn cursor_stream(venue: &str) -> String {
    format!("{}:cursor", names::orders(venue))
}

/// Reads a durable topic from the beginning, handing each decodable payload to `f`.
pub(crate) async fn replay<T>(
    bus: &dyn Bus,
    topic: &Topic<T>,
    mut f: impl FnMut(T),
) -> Result<(), StartError>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    topic
        .replay(bus, |env| f(env.payload))
        .await
        .map_err(|e| StartError::Bus(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::FillDedup;

    #[test]
    fn a_fill_key_is_reserved_once_released_on_failure_and_bounded() {
        let mut d = FillDedup {
            seen: std::collections::HashSet::new(),
            order: std::collections::VecDeque::new(),
        };
        assert!(
            d.insert("EUR-USD|6".into(), 2),
            "first report reserves the key"
        );
        assert!(
            !d.insert("EUR-USD|6".into(), 2),
            "a concurrent second report is refused"
        );
        d.release("EUR-USD|6");
        assert!(
            d.insert("EUR-USD|6".into(), 2),
            "after a failed publish it may be retried"
        );
        assert!(d.insert("EUR-USD|7".into(), 2));
        assert!(d.insert("EUR-USD|8".into(), 2));
        assert!(
            d.insert("EUR-USD|6".into(), 2),
            "the oldest key left the window"
        );
        assert_eq!(d.order.len(), 2);
        assert_eq!(d.seen.len(), 2);
    }
}
