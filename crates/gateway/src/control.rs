//! The operator's controls over one gateway: the kill switch, cancelling every working
//! order, flattening every position, and the snapshots and records a final report needs.
//!
//! These are what the controller's shutdown modes call (`stop-entries` is
//! [`Gateway::halt_entries`], `cancel` adds [`Gateway::cancel_working`], `flatten` adds
//! [`Gateway::flatten`]) and what `SetTradingEnabled` serves over gRPC. Each step that
//! needs the venue waits for the venue's own word (its cancel answers, then its list of
//! open orders; the closing orders' final states, then its balances or positions) up to a
//! deadline, and reports what could not be done instead of failing as a whole: a
//! shutdown must always come back with a report.
//!
//! The kill switch is a small durable record on `gekko:kill_switch:<venue>` (the last one
//! wins at start-up), so a gateway halted before a restart is still halted after it.
//!
//! Audit: once [`Gateway::attach_audit`] has given the gateway the process's audit trail,
//! every order command is recorded with its actor and outcome (`order.place`,
//! `order.cancel`, `order.cancel_all`, `positions.close`, `kill_switch`). Records are
//! queued ([`AuditLog::record_detached`]) rather than awaited, so the audit write never
//! sits on an order's path; the host flushes the queue at shutdown.
//!
//! Fail closed: while the audit writer is failing ([`AuditLog::is_failing`]: a write
//! failed, or a record was dropped, and none has landed since) the gateway refuses new
//! orders, through an in-memory kill switch whose actor is [`AUDIT_GUARD`]; it lifts
//! itself when a write lands again (the queued records, retried in order, are written
//! first). It is never persisted, so it cannot outlive the outage, and it never replaces
//! or lifts an operator's halt. Closing orders (flatten) still pass, as under any halt.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gekko_audit::{AuditLog, AuditRecord};
use gekko_bus::{Bus, Topic, names};
use gekko_core::sync::lock;
use gekko_core::{
    Balance, ClientOrderId, Fill, InstrumentId, Order, OrderRequest, OrderStatus, Position,
    VenueId, now_ms,
};
use gekko_venue::{OrderUpdate, RejectReason, VenueError};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::{Instant, timeout_at};

use crate::engine::{Gateway, GatewayError, replay};

/// The actor of the kill switch engaged while the audit trail cannot be written.
pub const AUDIT_GUARD: &str = "audit-guard";

/// How often the cancel and flatten loops look again while waiting for the venue.
const POLL: Duration = Duration::from_millis(150);

/// How long [`Gateway::flatten`] waits past its deadline for the venue's final positions.
const FINAL_LOOK: Duration = Duration::from_secs(5);

/// Who is placing an order, which decides the rules that apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A new order from a caller: every rule applies.
    Open,
    /// A closing order the gateway generates to flatten a position: it only reduces
    /// exposure, so the kill switch and the notional limits do not stop it.
    Close,
}

/// The durable stream of a venue's kill-switch records.
#[must_use]
pub fn kill_switch_stream(venue: &str) -> String {
    format!("gekko:kill_switch:{venue}")
}

/// One change of the kill switch, as written to `gekko:kill_switch:<venue>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillSwitchRecord {
    /// `true`: new orders are refused.
    pub halted: bool,
    /// Why, as given by whoever changed it.
    pub reason: String,
    /// Who changed it (the gRPC caller's name, `controller`, ...).
    pub actor: String,
    /// When (ms since epoch).
    pub ts_ms: i64,
}

/// Whether a gateway accepts new orders, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradingState {
    /// The venue.
    pub venue: VenueId,
    /// Whether new orders are accepted: configuration allows trading and the kill switch
    /// is not engaged.
    pub trading_enabled: bool,
    /// `COMPLIANCE_SETTINGS trading_enabled` (the kill switch cannot override it).
    pub config_enabled: bool,
    /// The kill switch record while engaged.
    pub halted: Option<KillSwitchRecord>,
    /// Whether the last change was written to the bus (a halt holds in memory anyway).
    pub durable: bool,
}

/// An order that was still working when a cancel or flatten gave up on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    /// The order.
    pub order: Order,
    /// Why it is still working: the venue's last refusal, or the deadline.
    pub reason: String,
}

/// What [`Gateway::cancel_working`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelReport {
    /// The venue.
    pub venue: VenueId,
    /// Orders this call cancelled, as the venue confirmed them.
    pub cancelled: Vec<Order>,
    /// Orders still working at the deadline (empty when `confirmed`).
    pub not_cancelled: Vec<Unfinished>,
    /// Whether the venue itself listed no open order at the end.
    pub confirmed: bool,
    /// Venue calls that failed along the way (each distinct message once).
    pub errors: Vec<String>,
}

/// A position [`Gateway::flatten`] could not close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftPosition {
    /// The position as the venue reported it at the end.
    pub position: Position,
    /// Why it is still open.
    pub reason: String,
}

/// What [`Gateway::flatten`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlattenReport {
    /// The venue.
    pub venue: VenueId,
    /// The cancel of working orders that came first (resting orders hold the balance).
    pub cancel: CancelReport,
    /// Positions before closing, as the venue reported them.
    pub before: Vec<Position>,
    /// The closing orders, in their final known state.
    pub orders: Vec<Order>,
    /// Positions as the venue reported them at the end.
    pub after: Vec<Position>,
    /// Positions still open (beyond one lot) at the end, with why.
    pub left: Vec<LeftPosition>,
    /// Whether every position is closed (within one lot size).
    pub flat: bool,
    /// Venue or check failures along the way (each distinct message once).
    pub errors: Vec<String>,
}

/// Balances and positions at one moment, for a report's before/after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSnapshot {
    /// The venue.
    pub venue: VenueId,
    /// When (ms since epoch).
    pub ts_ms: i64,
    /// Balances as the venue reports them.
    pub balances: Vec<Balance>,
    /// Positions (on a spot venue: the base holding of each configured instrument).
    pub positions: Vec<Position>,
    /// Orders the gateway knows to be working.
    pub open_orders: usize,
}

/// The orders a gateway has seen on one instrument, by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderCounts {
    /// Every order (placed here, or adopted from the venue).
    pub orders: u64,
    /// Still working (pending, in flight, resting).
    pub open: u64,
    /// Completely filled.
    pub filled: u64,
    /// Cancelled (possibly after a partial fill).
    pub cancelled: u64,
    /// Refused by the venue, or proven never placed.
    pub rejected: u64,
    /// Expired.
    pub expired: u64,
    /// Total filled quantity, in base units.
    pub filled_qty: Decimal,
}

/// Errors collected once each, in order.
#[derive(Debug, Default)]
struct Errors(Vec<String>);

impl Errors {
    fn push(&mut self, e: String) {
        if !self.0.contains(&e) {
            self.0.push(e);
        }
    }
}

/// The audit detail of an order request.
pub(crate) fn order_request_detail(venue: VenueId, req: &OrderRequest) -> Value {
    json!({
        "venue": venue.as_str(),
        "client_order_id": req.client_order_id.as_str(),
        "instrument": req.instrument.pair(),
        "side": req.side,
        "type": req.order_type,
        "qty": req.qty.to_string(),
        "price": req.price.map(|p| p.to_string()),
    })
}

/// Sets `key` in a JSON object (no-op on anything else).
fn put(detail: &mut Value, key: &str, v: Value) {
    if let Some(o) = detail.as_object_mut() {
        o.insert(key.to_owned(), v);
    }
}

/// Every fill recorded on a venue's durable fill stream `gekko:{fills:<venue>}`, in order.
/// Works without a running gateway (a report written while the venue is down).
///
/// # Errors
/// [`GatewayError::Bus`] when the stream cannot be read.
pub async fn read_fills(bus: &dyn Bus, venue: VenueId) -> Result<Vec<Fill>, GatewayError> {
    let topic: Topic<Fill> = Topic::durable(names::fills(venue.as_str()), 1);
    let mut out = Vec::new();
    replay(bus, &topic, |f| out.push(f))
        .await
        .map_err(|e| GatewayError::Bus(e.to_string()))?;
    Ok(out)
}

impl Gateway {
    /// Gives the gateway the process's audit trail (the host's
    /// [`gekko_runtime::ServiceCtx::audit`]). The first call wins; until then nothing is
    /// audited.
    ///
    /// Also starts the audit guard: new orders are refused while the trail's writer is
    /// failing (see the module docs). The guard task holds the gateway weakly and ends
    /// when the gateway or the audit log is gone.
    pub fn attach_audit(&self, audit: AuditLog) {
        let watch = audit.failing_watch();
        if self.inner.audit.set(audit).is_err() {
            tracing::warn!(
                venue = self.label(),
                "an audit trail is already attached; kept the first"
            );
            return;
        }
        if let Some(mut watch) = watch {
            let gateway = Arc::downgrade(&self.inner);
            // Not tracked by a JoinSet: it owns nothing that needs a clean stop, and it
            // ends by itself with the gateway (the weak handle) or the log (the watch).
            tokio::spawn(async move {
                loop {
                    let failing = *watch.borrow_and_update();
                    let Some(inner) = gateway.upgrade() else {
                        return;
                    };
                    Self { inner }.audit_guard(failing);
                    if watch.changed().await.is_err() {
                        return;
                    }
                }
            });
        }
    }

    /// Engages or lifts the audit guard's in-memory kill switch.
    fn audit_guard(&self, failing: bool) {
        let mut halt = lock(&self.inner.halt);
        match (&*halt, failing) {
            (None, true) => {
                *halt = Some(KillSwitchRecord {
                    halted: true,
                    reason: "the audit trail cannot be written: new orders are refused until \
                             it can"
                        .to_owned(),
                    actor: AUDIT_GUARD.to_owned(),
                    ts_ms: now_ms(),
                });
                drop(halt);
                metrics::gauge!("gekko_gateway_audit_guard", "venue" => self.label()).set(1.0);
                tracing::error!(
                    venue = self.label(),
                    "audit trail failing: new orders refused until it writes again"
                );
            }
            (Some(r), false) if r.actor == AUDIT_GUARD => {
                *halt = None;
                drop(halt);
                metrics::gauge!("gekko_gateway_audit_guard", "venue" => self.label()).set(0.0);
                tracing::warn!(
                    venue = self.label(),
                    "audit trail writes again: new orders accepted"
                );
            }
            _ => {}
        }
    }

    /// Queues one audit record (nothing when no trail is attached).
    pub(crate) fn audit(&self, rec: AuditRecord) {
        if let Some(a) = self.inner.audit.get() {
            a.record_detached(rec);
        }
    }

    /// Audits an order command by its result: `ok`, `in_flight`, `rejected` (by the
    /// venue), `refused` (by a pre-trade rule, named) or `error`.
    pub(crate) fn audit_result(
        &self,
        actor: &str,
        action: &str,
        mut detail: Value,
        result: &Result<Order, GatewayError>,
    ) {
        if self.inner.audit.get().is_none() {
            return;
        }
        let outcome = match result {
            Ok(o) => {
                put(&mut detail, "status", json!(o.status));
                put(&mut detail, "venue_order_id", json!(o.venue_order_id));
                put(&mut detail, "filled_qty", json!(o.filled_qty.to_string()));
                match o.status {
                    OrderStatus::Rejected => {
                        put(&mut detail, "reason", json!(o.reject_reason));
                        "rejected"
                    }
                    OrderStatus::InFlight => "in_flight",
                    _ => "ok",
                }
            }
            Err(GatewayError::Check(e)) => {
                put(&mut detail, "rule", json!(e.rule()));
                put(&mut detail, "reason", json!(e.to_string()));
                "refused"
            }
            Err(e) => {
                put(&mut detail, "error", json!(e.to_string()));
                "error"
            }
        };
        self.audit(AuditRecord::new(actor, action, outcome).with_detail(detail));
    }

    /// Audits a command over several orders (`order.cancel_all`, `positions.close`): `ok`
    /// with the orders' ids and statuses, or `error`.
    pub(crate) fn audit_orders(
        &self,
        actor: &str,
        action: &str,
        mut detail: Value,
        result: &Result<Vec<Order>, GatewayError>,
    ) {
        if self.inner.audit.get().is_none() {
            return;
        }
        let outcome = match result {
            Ok(orders) => {
                let list: Vec<Value> = orders
                    .iter()
                    .map(|o| {
                        json!({
                            "client_order_id": o.request.client_order_id.as_str(),
                            "instrument": o.request.instrument.pair(),
                            "status": o.status,
                        })
                    })
                    .collect();
                put(&mut detail, "orders", Value::Array(list));
                "ok"
            }
            Err(e) => {
                put(&mut detail, "error", json!(e.to_string()));
                "error"
            }
        };
        self.audit(AuditRecord::new(actor, action, outcome).with_detail(detail));
    }

    /// Engages or releases the kill switch and records the change durably. While engaged,
    /// new orders are refused with [`crate::checks::CheckError::KillSwitch`] naming
    /// `reason`; working orders are left alone (see [`Gateway::cancel_working`]).
    /// Releasing it cannot enable trading that `COMPLIANCE_SETTINGS trading_enabled=false`
    /// disables.
    ///
    /// The change takes effect in memory first, so a bus that cannot be written never
    /// keeps a halt from holding; [`TradingState::durable`] says whether it was recorded.
    pub async fn set_trading_enabled(
        &self,
        enabled: bool,
        reason: &str,
        actor: &str,
    ) -> TradingState {
        let i = &self.inner;
        let record = KillSwitchRecord {
            halted: !enabled,
            reason: reason.to_owned(),
            actor: actor.to_owned(),
            ts_ms: now_ms(),
        };
        *lock(&i.halt) = (!enabled).then(|| record.clone());
        // Releasing the kill switch does not release the audit guard: while the trail
        // cannot be written, new orders stay refused.
        if enabled && i.audit.get().is_some_and(AuditLog::is_failing) {
            self.audit_guard(true);
        }
        let durable = match i
            .kill_switch_topic
            .publish(&*i.bus, &i.cfg.source, &record)
            .await
        {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(venue = self.label(), error = %e, "kill switch change not persisted; it holds until restart only");
                false
            }
        };
        self.audit(
            AuditRecord::new(
                actor,
                "kill_switch",
                if durable { "ok" } else { "not_persisted" },
            )
            .with_detail(json!({
                "venue": self.label(),
                "enabled": enabled,
                "reason": reason,
            })),
        );
        if enabled {
            tracing::warn!(venue = self.label(), %reason, %actor, "kill switch released: new orders accepted");
        } else {
            tracing::warn!(venue = self.label(), %reason, %actor, "kill switch engaged: new orders refused");
        }
        TradingState {
            durable,
            ..self.trading_state()
        }
    }

    /// Refuses new orders from now on (the kill switch, without cancelling anything),
    /// durably: a restart stays halted until someone releases it.
    pub async fn halt_entries(&self, reason: &str) -> TradingState {
        self.set_trading_enabled(false, reason, "controller").await
    }

    /// The controller's `stop-entries` step of a shutdown: refuses new orders for the
    /// rest of this process's life, without recording a kill switch, so that the next
    /// start trades again (a durable halt is [`Gateway::halt_entries`] or
    /// `SetTradingEnabled`).
    pub fn halt_for_shutdown(&self, reason: &str) -> TradingState {
        let record = KillSwitchRecord {
            halted: true,
            reason: reason.to_owned(),
            actor: "controller".to_owned(),
            ts_ms: now_ms(),
        };
        *lock(&self.inner.halt) = Some(record);
        self.audit(
            AuditRecord::new("controller", "kill_switch", "shutdown").with_detail(json!({
                "venue": self.label(),
                "enabled": false,
                "reason": reason,
                "persisted": false,
            })),
        );
        tracing::info!(venue = self.label(), %reason, "new orders refused for the shutdown");
        TradingState {
            durable: false,
            ..self.trading_state()
        }
    }

    /// Accepts new orders again (releases the kill switch).
    pub async fn resume_entries(&self, reason: &str) -> TradingState {
        self.set_trading_enabled(true, reason, "controller").await
    }

    /// Whether new orders are accepted now.
    #[must_use]
    pub fn trading_state(&self) -> TradingState {
        let halted = lock(&self.inner.halt).clone();
        let config_enabled = self.inner.limits.load().trading_enabled;
        TradingState {
            venue: self.venue(),
            trading_enabled: config_enabled && halted.is_none(),
            config_enabled,
            halted,
            durable: true,
        }
    }

    /// Restores the kill switch from its stream at start-up (the last record wins).
    pub(crate) async fn replay_kill_switch(&self) -> Result<(), crate::engine::StartError> {
        let i = &self.inner;
        let mut last: Option<KillSwitchRecord> = None;
        replay(&*i.bus, &i.kill_switch_topic, |r| last = Some(r)).await?;
        if let Some(r) = last.filter(|r| r.halted) {
            tracing::warn!(venue = self.label(), reason = %r.reason, actor = %r.actor, since_ms = r.ts_ms, "kill switch engaged before the restart: new orders stay refused");
            *lock(&i.halt) = Some(r);
        }
        Ok(())
    }
}

/// Remembers an order the venue reported cancelled.
fn note(u: &OrderUpdate, cancelled: &mut BTreeMap<ClientOrderId, ()>) {
    if u.status == OrderStatus::Cancelled {
        cancelled.insert(u.client_order_id.clone(), ());
    }
}

impl Gateway {
    /// Starts tracking what the venue reported about an order (known or not).
    async fn track(&self, u: &OrderUpdate) {
        if !self.inner.orders.contains(&u.client_order_id) {
            self.adopt(u).await;
        }
        self.apply_update(u).await;
    }

    /// Cancels every working order at the venue and waits, up to `deadline`, until the
    /// venue confirms: each cancel's answer, then the venue's own list of open orders
    /// showing none. Orders unknown locally but open at the venue are adopted and
    /// cancelled too. Orders whose submit is still unanswered are resolved by query
    /// first. It does not stop new orders; call [`Gateway::halt_entries`] first.
    ///
    /// Never fails as a whole: what could not be cancelled is in
    /// [`CancelReport::not_cancelled`], with the venue's refusal or the deadline.
    ///
    /// Audited as `order.cancel_all` by `controller`.
    pub async fn cancel_working(&self, deadline: Duration) -> CancelReport {
        self.cancel_working_by("controller", deadline).await
    }

    /// [`Gateway::cancel_working`] on behalf of `actor`, audited as `order.cancel_all`.
    pub async fn cancel_working_by(&self, actor: &str, deadline: Duration) -> CancelReport {
        let report = self.cancel_working_inner(deadline).await;
        self.audit(
            AuditRecord::new(
                actor,
                "order.cancel_all",
                if report.confirmed { "ok" } else { "incomplete" },
            )
            .with_detail(json!({
                "venue": self.label(),
                "scope": "every working order",
                "cancelled": report.cancelled.iter().map(|o| o.request.client_order_id.as_str()).collect::<Vec<_>>(),
                "not_cancelled": report.not_cancelled.iter().map(|u| json!({"client_order_id": u.order.request.client_order_id.as_str(), "reason": u.reason})).collect::<Vec<_>>(),
                "errors": report.errors,
            })),
        );
        report
    }

    async fn cancel_working_inner(&self, deadline: Duration) -> CancelReport {
        let until = Instant::now() + deadline;
        let venue = &self.inner.venue;
        let instruments = self.configured_instruments().to_vec();
        let mut cancelled: BTreeMap<ClientOrderId, ()> = BTreeMap::new();
        let mut why: BTreeMap<ClientOrderId, String> = BTreeMap::new();
        let mut errors = Errors::default();
        // One venue-wide cancel per instrument (native where the venue has one).
        for inst in &instruments {
            match timeout_at(until, venue.cancel_all(inst)).await {
                Ok(Ok(updates)) => {
                    for u in updates {
                        self.track(&u).await;
                        note(&u, &mut cancelled);
                    }
                }
                Ok(Err(e)) => errors.push(format!("cancel all on {}: {e}", inst.pair())),
                Err(_) => break,
            }
        }
        let mut confirmed = false;
        loop {
            let left = self.inner.orders.non_terminal();
            if left.is_empty() {
                // Nothing working locally: confirm with the venue's own list.
                let mut clear = true;
                for inst in &instruments {
                    match timeout_at(until, venue.open_orders(inst)).await {
                        Ok(Ok(open)) => {
                            for u in open {
                                clear = false;
                                self.track(&u).await;
                            }
                        }
                        Ok(Err(e)) => {
                            clear = false;
                            errors.push(format!("list open orders on {}: {e}", inst.pair()));
                        }
                        Err(_) => clear = false,
                    }
                }
                if clear {
                    confirmed = true;
                    break;
                }
            }
            if Instant::now() >= until {
                break;
            }
            for e in left {
                let result = match e.status {
                    // The submit's answer is outstanding: ask, never guess.
                    OrderStatus::PendingNew | OrderStatus::InFlight => {
                        match timeout_at(until, venue.query_order(&e.instrument, &e.id)).await {
                            Ok(Ok(Some(u))) => {
                                self.apply_update(&u).await;
                                Ok(())
                            }
                            Ok(Ok(None)) => Err("the venue does not know it yet".to_owned()),
                            Ok(Err(err)) => Err(err.to_string()),
                            Err(_) => Err("deadline".to_owned()),
                        }
                    }
                    _ => match timeout_at(until, venue.cancel_order(&e.instrument, &e.id)).await {
                        Ok(Ok(u)) => {
                            self.apply_update(&u).await;
                            note(&u, &mut cancelled);
                            Ok(())
                        }
                        Ok(Err(VenueError::Rejected {
                            reason: RejectReason::UnknownOrder,
                            ..
                        })) => {
                            // Closed meanwhile (filled, or cancelled by the venue-wide
                            // call): learn its final state.
                            if let Ok(Ok(Some(u))) =
                                timeout_at(until, venue.query_order(&e.instrument, &e.id)).await
                            {
                                self.apply_update(&u).await;
                                note(&u, &mut cancelled);
                            }
                            Ok(())
                        }
                        Ok(Err(err)) => Err(err.to_string()),
                        Err(_) => Err("deadline".to_owned()),
                    },
                };
                match result {
                    Ok(()) => {
                        why.remove(&e.id);
                    }
                    Err(reason) => {
                        why.insert(e.id, reason);
                    }
                }
            }
            let now = Instant::now();
            if now >= until {
                continue;
            }
            tokio::time::sleep(POLL.min(until - now)).await;
        }
        let not_cancelled = if confirmed {
            Vec::new()
        } else {
            self.inner
                .orders
                .non_terminal()
                .into_iter()
                .filter_map(|e| {
                    let order = self.order(&e.id)?;
                    let reason = why
                        .get(&e.id)
                        .cloned()
                        .unwrap_or_else(|| "still working at the deadline".to_owned());
                    Some(Unfinished { order, reason })
                })
                .collect()
        };
        // Keep the final state of each cancelled order.
        let cancelled = cancelled
            .into_keys()
            .filter_map(|id| self.order(&id))
            .collect();
        let report = CancelReport {
            venue: self.venue(),
            cancelled,
            not_cancelled,
            confirmed,
            errors: errors.0,
        };
        tracing::info!(
            venue = self.label(),
            cancelled = report.cancelled.len(),
            not_cancelled = report.not_cancelled.len(),
            confirmed,
            "cancel of working orders finished"
        );
        report
    }

    /// Closes every position and waits, up to `deadline`, for the venue to confirm:
    /// first [`Gateway::cancel_working`] (resting orders hold the balance a close needs),
    /// then the venue's native close where [`gekko_venue::VenueCaps::native_close_position`],
    /// else a market sell of each spot holding rounded down to the lot size; then each
    /// closing order's final state, and the venue's positions at the end.
    ///
    /// A position is flat when less than one lot remains. Never fails as a whole: what
    /// is still open is in [`FlattenReport::left`], with why.
    ///
    /// Audited as `positions.close` by `controller` (and its cancel as
    /// `order.cancel_all`, each closing order as `order.place` by `close-positions`).
    pub async fn flatten(&self, deadline: Duration) -> FlattenReport {
        let report = self.flatten_inner(deadline).await;
        self.audit(
            AuditRecord::new("controller", "positions.close", if report.flat { "ok" } else { "incomplete" })
                .with_detail(json!({
                    "venue": self.label(),
                    "orders": report.orders.iter().map(|o| o.request.client_order_id.as_str()).collect::<Vec<_>>(),
                    "left": report.left.iter().map(|l| json!({"instrument": l.position.instrument.pair(), "qty": l.position.qty.to_string(), "reason": l.reason})).collect::<Vec<_>>(),
                    "errors": report.errors,
                })),
        );
        report
    }

    async fn flatten_inner(&self, deadline: Duration) -> FlattenReport {
        let until = Instant::now() + deadline;
        let mut errors = Errors::default();
        let cancel = self.cancel_working(deadline).await;
        let before = match timeout_at(until, self.account()).await {
            Ok(Ok((_, positions))) => positions,
            Ok(Err(e)) => {
                errors.push(format!("positions before closing: {e}"));
                Vec::new()
            }
            Err(_) => Vec::new(),
        };
        let mut orders = match timeout_at(until, self.close_positions(&[])).await {
            Ok(Ok(orders)) => orders,
            Ok(Err(e)) => {
                errors.push(format!("close positions: {e}"));
                Vec::new()
            }
            Err(_) => {
                errors.push("close positions: deadline".to_owned());
                Vec::new()
            }
        };
        // Wait for every closing order to finish, by the venue's word.
        loop {
            let open: Vec<&Order> = orders.iter().filter(|o| !o.status.is_terminal()).collect();
            if open.is_empty() || Instant::now() >= until {
                break;
            }
            let ids: Vec<(InstrumentId, ClientOrderId)> = open
                .iter()
                .map(|o| {
                    (
                        o.request.instrument.clone(),
                        o.request.client_order_id.clone(),
                    )
                })
                .collect();
            for (inst, id) in ids {
                if let Ok(Err(e)) = timeout_at(until, self.refresh_order(&inst, &id)).await {
                    errors.push(format!("query closing order {id}: {e}"));
                }
            }
            for o in &mut orders {
                if let Some(now) = self.order(&o.request.client_order_id) {
                    *o = now;
                }
            }
            let now = Instant::now();
            if now < until {
                tokio::time::sleep(POLL.min(until - now)).await;
            }
        }
        for o in &orders {
            if o.status == OrderStatus::Rejected {
                errors.push(format!(
                    "closing order {} on {} rejected: {}",
                    o.request.client_order_id,
                    o.request.instrument.pair(),
                    o.reject_reason.as_deref().unwrap_or("no reason given")
                ));
            }
        }
        // The venue's positions at the end, with one more (bounded) try past the
        // deadline: the report must say what is left.
        let after = match tokio::time::timeout(FINAL_LOOK, self.account()).await {
            Ok(Ok((_, positions))) => positions,
            Ok(Err(e)) => {
                errors.push(format!("positions after closing: {e}"));
                Vec::new()
            }
            Err(_) => {
                errors.push(format!(
                    "positions after closing: no answer within {FINAL_LOOK:?}"
                ));
                Vec::new()
            }
        };
        let infos: BTreeMap<InstrumentId, _> = self
            .instruments()
            .into_iter()
            .map(|i| (i.id.clone(), i))
            .collect();
        let left: Vec<LeftPosition> = after
            .iter()
            .filter_map(|p| {
                let info = infos.get(&p.instrument)?;
                let qty = p.qty.abs();
                let flat = if info.lot_size.is_zero() {
                    qty.is_zero()
                } else {
                    qty < info.lot_size
                };
                if flat {
                    return None;
                }
                let reason = if !info.min_qty.is_zero() && qty < info.min_qty {
                    format!(
                        "{qty} is below the venue's minimum order quantity {}",
                        info.min_qty
                    )
                } else if orders
                    .iter()
                    .any(|o| o.request.instrument == p.instrument && !o.status.is_terminal())
                {
                    "the closing order was still working at the deadline".to_owned()
                } else {
                    "not closed (see errors)".to_owned()
                };
                Some(LeftPosition {
                    position: p.clone(),
                    reason,
                })
            })
            .collect();
        let report = FlattenReport {
            venue: self.venue(),
            flat: left.is_empty() && errors.0.iter().all(|e| !e.starts_with("positions after")),
            cancel,
            before,
            orders,
            after,
            left,
            errors: errors.0,
        };
        tracing::info!(
            venue = self.label(),
            flat = report.flat,
            left = report.left.len(),
            "flatten finished"
        );
        report
    }

    /// Balances and positions now, as the venue reports them, for a report's before and
    /// after.
    ///
    /// # Errors
    /// Venue failures.
    pub async fn snapshot(&self) -> Result<AccountSnapshot, GatewayError> {
        let (balances, positions) = self.account().await?;
        Ok(AccountSnapshot {
            venue: self.venue(),
            ts_ms: now_ms(),
            balances,
            positions,
            open_orders: self.inner.orders.non_terminal().len(),
        })
    }

    /// Every order this gateway has seen (since its order stream began), terminal ones
    /// included, oldest update first.
    #[must_use]
    pub fn orders_seen(&self) -> Vec<Order> {
        self.inner.orders.all()
    }

    /// [`Gateway::orders_seen`] counted per canonical pair.
    #[must_use]
    pub fn order_counts(&self) -> BTreeMap<String, OrderCounts> {
        let mut out: BTreeMap<String, OrderCounts> = BTreeMap::new();
        for o in self.orders_seen() {
            let c = out.entry(o.request.instrument.pair()).or_default();
            c.orders += 1;
            c.filled_qty += o.filled_qty;
            match o.status {
                OrderStatus::Filled => c.filled += 1,
                OrderStatus::Cancelled => c.cancelled += 1,
                OrderStatus::Rejected => c.rejected += 1,
                OrderStatus::Expired => c.expired += 1,
                OrderStatus::PendingNew
                | OrderStatus::InFlight
                | OrderStatus::New
                | OrderStatus::PartiallyFilled => c.open += 1,
            }
        }
        out
    }

    /// Orders refused before sending since start-up, by rule (`POSITION_LIMITS`,
    /// `kill_switch`, `LOT_SIZE`, ...; see [`crate::checks::CheckError::rule`]).
    #[must_use]
    pub fn refusals(&self) -> BTreeMap<String, u64> {
        lock(&self.inner.refusals).clone()
    }

    /// Every fill on this venue's durable fill stream (see [`read_fills`]).
    ///
    /// # Errors
    /// [`GatewayError::Bus`] when the stream cannot be read.
    pub async fn fills(&self) -> Result<Vec<Fill>, GatewayError> {
        read_fills(&*self.inner.bus, self.venue()).await
    }
}
