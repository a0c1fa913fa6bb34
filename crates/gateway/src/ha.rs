//! Leader and standby: how one replica of a scaled gateway follows the [`Lease`].
//!
//! A gateway started with a lease ([`crate::config::GatewayConfig::lease`]) leads or
//! stands by:
//!
//! - **Leader**: holds the lease, runs the order side (user stream, in-flight resolver,
//!   order and fill writes, all fenced), publishes market data, and renews every
//!   `renew_interval`. It steps down when a renewal says the lease is gone, when it could
//!   not renew for a whole TTL, or when a fenced write is refused (a newer leader exists).
//! - **Standby**: runs the market-data streams (books and quotes stay warm, `GetQuote`
//!   and `GetOrderBook` are served locally) but publishes nothing on the bus, sends no
//!   order and opens no user stream. It forwards the order-side calls to the leader the
//!   lease names. Every `renew_interval` it tries to take the lease; when it does, it
//!   replays the order, fill and kill-switch streams and reconciles with the venue (the
//!   restart recovery) before it accepts an order.
//!
//! Role: the `<venue>-role` readiness component says `leader` or `standby` in `/readyz`.
//! A leader is ready; a standby is ready only while it sees another replica leading (it
//! serves through forwarding), so a replica left alone without the lease (Redis just came
//! back, the old lease not yet expired) is not ready until it leads; the gauge
//! `gekko_gateway_leader{venue}` is 1 or 0; `gekko_gateway_leader_changes_total{venue,
//! to}` counts transitions.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use gekko_core::sync::lock;
use gekko_runtime::ReadyHandle;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::engine::Gateway;
use crate::lease::{LeaderRecord, Lease};

/// The leadership state of one gateway with a lease.
#[derive(Debug)]
pub(crate) struct Ha {
    pub(crate) lease: Lease,
    /// Whether this replica leads now (orders may be accepted).
    leading: std::sync::atomic::AtomicBool,
    /// Cancels the current term's tasks (user stream, user loop, resolver).
    term: Mutex<Option<CancellationToken>>,
    /// Woken by a refused fenced write: step down now, not at the next renewal.
    fenced: Notify,
    role: ReadyHandle,
    /// The leader the lease named when last read, for forwarding.
    leader: Mutex<Option<LeaderRecord>>,
}

impl Ha {
    pub(crate) fn new(lease: Lease, role: ReadyHandle, venue: &'static str) -> Self {
        role.set_not_ready("standby: no leader known yet");
        metrics::gauge!("gekko_gateway_leader", "venue" => venue).set(0.0);
        Self {
            lease,
            leading: std::sync::atomic::AtomicBool::new(false),
            term: Mutex::new(None),
            fenced: Notify::new(),
            role,
            leader: Mutex::new(None),
        }
    }

    pub(crate) fn is_leading(&self) -> bool {
        self.leading.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The leader to forward to, as last read from the lease.
    pub(crate) fn leader(&self) -> Option<LeaderRecord> {
        lock(&self.leader).clone()
    }

    /// A fenced write was refused: the loop steps down at once.
    pub(crate) fn on_fenced(&self) {
        self.fenced.notify_one();
    }

    fn set_role(&self, venue: &'static str, leading: bool) {
        let was = self
            .leading
            .swap(leading, std::sync::atomic::Ordering::AcqRel);
        metrics::gauge!("gekko_gateway_leader", "venue" => venue).set(f64::from(u8::from(leading)));
        if leading {
            self.role.set_ready_noting("leader");
        } else {
            // Ready again once another replica is seen leading (the lease loop's next
            // round): a standby with no leader to forward to cannot serve an order.
            self.role.set_not_ready("standby: no leader known yet");
        }
        if was != leading {
            let to = if leading { "leader" } else { "standby" };
            metrics::counter!("gekko_gateway_leader_changes_total", "venue" => venue, "to" => to)
                .increment(1);
        }
    }
}

impl Gateway {
    /// Starts a term: the caller holds a fresh token. Opens the user stream, replays the
    /// durable streams and reconciles, then starts the order-side tasks under a term token
    /// that a step-down cancels. Without a lease this is the whole order side of
    /// [`Gateway::start`], with the process's token as the term.
    pub(crate) async fn begin_term(
        &self,
        tracker: &TaskTracker,
        term: CancellationToken,
    ) -> Result<crate::engine::ReconcileReport, crate::engine::StartError> {
        let streams = gekko_venue::StreamCtx::new(tracker.clone(), term.child_token());
        // The user stream opens before the replay so no event after it is missed, from
        // the stored resume cursor when the venue has one.
        self.resume_user_stream().await;
        let user_rx = self.inner.venue.user_stream(&streams);
        let report = self.recover(&term).await?;
        tracker.spawn(self.clone().user_loop(user_rx, term.child_token()));
        tracker.spawn(self.clone().resolver_loop(term.child_token()));
        Ok(report)
    }

    /// Marks this replica leader (after [`Gateway::begin_term`]) and keeps `term` to
    /// cancel on a step-down.
    pub(crate) fn lead(&self, term: CancellationToken) {
        if let Some(ha) = &self.inner.ha {
            *lock(&ha.term) = Some(term);
            *lock(&ha.leader) = None;
            ha.set_role(self.label(), true);
            tracing::info!(
                venue = self.label(),
                token = ha.lease.token(),
                "leading: orders accepted"
            );
        }
    }

    fn step_down(&self, why: &str) {
        let Some(ha) = &self.inner.ha else { return };
        if let Some(term) = lock(&ha.term).take() {
            term.cancel();
        }
        ha.lease.forget();
        ha.set_role(self.label(), false);
        tracing::warn!(
            venue = self.label(),
            reason = why,
            "stepped down: standby now, no orders sent"
        );
    }

    /// Follows the lease until `cancel`: renews while leading, tries to take over while
    /// standing by, steps down on a lost lease or a refused write, and releases the lease
    /// on a clean stop so a standby takes over at once.
    pub(crate) async fn lease_loop(self, tracker: TaskTracker, cancel: CancellationToken) {
        let Some(ha) = self.inner.ha.as_ref() else {
            return;
        };
        let cfg = ha.lease.config().clone();
        let mut last_renewed = Instant::now();
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                () = ha.fenced.notified() => {
                    if ha.is_leading() {
                        self.step_down("a write was fenced off: a newer leader holds the lease");
                    }
                    continue;
                }
                () = tokio::time::sleep(cfg.renew_interval) => {}
            }
            if ha.is_leading() {
                match ha.lease.renew().await {
                    Ok(true) => last_renewed = Instant::now(),
                    Ok(false) => self.step_down("the lease expired and is no longer ours"),
                    Err(e) if last_renewed.elapsed() >= cfg.ttl => {
                        self.step_down(&format!("could not renew the lease for a whole TTL: {e}"));
                    }
                    Err(e) => {
                        tracing::warn!(venue = self.label(), error = %e, "lease renewal failed; retrying");
                    }
                }
                continue;
            }
            match ha.lease.try_acquire().await {
                Ok(Some(token)) => {
                    let started = Instant::now();
                    tracing::info!(
                        venue = self.label(),
                        token,
                        "lease acquired; replaying and reconciling before taking orders"
                    );
                    self.inner
                        .ready
                        .reconciliation
                        .set_not_ready("taking over: replaying the order stream and reconciling");
                    let term = cancel.child_token();
                    match self.begin_term(&tracker, term.clone()).await {
                        Ok(report) => {
                            self.inner.ready.reconciliation.set_ready();
                            last_renewed = Instant::now();
                            self.lead(term);
                            let took = started.elapsed();
                            metrics::gauge!("gekko_gateway_takeover_seconds", "venue" => self.label())
                                .set(took.as_secs_f64());
                            tracing::info!(
                                venue = self.label(),
                                ?report,
                                takeover_ms = took.as_millis(),
                                "took over as leader"
                            );
                        }
                        Err(e) => {
                            term.cancel();
                            self.inner.ready.reconciliation.set_ready();
                            tracing::error!(venue = self.label(), error = %e, "takeover failed; releasing the lease and standing by");
                            if let Err(e) = ha.lease.release().await {
                                tracing::warn!(venue = self.label(), error = %e, "lease not released; it expires");
                            }
                        }
                    }
                }
                Ok(None) => match ha.lease.leader().await {
                    Ok(rec) => {
                        match &rec {
                            Some(r) if r.owner != cfg.owner => ha.role.set_ready_noting("standby"),
                            _ => ha.role.set_not_ready("standby: no leader known yet"),
                        }
                        *lock(&ha.leader) = rec;
                    }
                    Err(e) => {
                        tracing::debug!(venue = self.label(), error = %e, "leader record not read")
                    }
                },
                Err(e) => {
                    ha.role
                        .set_not_ready(format!("standby: the lease store is unreachable: {e}"));
                    tracing::warn!(venue = self.label(), error = %e, "lease store unreachable; standing by")
                }
            }
        }
        if ha.is_leading() {
            if let Some(term) = lock(&ha.term).take() {
                term.cancel();
            }
            match ha.lease.release().await {
                Ok(()) => tracing::info!(venue = self.label(), "lease released for a standby"),
                Err(e) => {
                    tracing::warn!(venue = self.label(), error = %e, "lease not released; it expires")
                }
            }
        }
    }

    /// Whether this replica may send orders: always without a lease, else while leading.
    #[must_use]
    pub fn is_leader(&self) -> bool {
        self.inner.ha.as_ref().is_none_or(|ha| ha.is_leading())
    }

    /// The leader's advertised gRPC address while this replica stands by (`None` while it
    /// leads, has no lease, or no leader is known yet).
    #[must_use]
    pub fn leader_address(&self) -> Option<String> {
        let ha = self.inner.ha.as_ref()?;
        if ha.is_leading() {
            return None;
        }
        ha.leader().map(|r| r.advertise)
    }

    /// Reads the leader record now (a standby that has none cached yet).
    pub async fn refresh_leader(&self) -> Option<String> {
        let ha = self.inner.ha.as_ref()?;
        if ha.is_leading() {
            return None;
        }
        match ha.lease.leader().await {
            Ok(rec) => {
                *lock(&ha.leader) = rec.clone();
                rec.map(|r| r.advertise)
            }
            Err(_) => None,
        }
    }

    /// Refuses an order-side operation on a standby.
    pub(crate) fn ensure_leader(&self) -> Result<(), crate::engine::GatewayError> {
        if self.is_leader() {
            return Ok(());
        }
        Err(crate::engine::GatewayError::Persist(format!(
            "this {} gateway replica is a standby (not the lease holder); send it to the leader{}",
            self.label(),
            self.leader_address()
                .map(|a| format!(" at {a}"))
                .unwrap_or_default()
        )))
    }

    /// How long a lease lives without renewal (`None` without a lease).
    #[must_use]
    pub fn lease_ttl(&self) -> Option<Duration> {
        self.inner.ha.as_ref().map(|ha| ha.lease.config().ttl)
    }
}

impl Gateway {
    /// Appends to a durable stream: through the bus without a lease, through the lease's
    /// fenced append with one (refused, and a step-down triggered, when a newer leader
    /// exists). Returns the failure as text for the caller's error.
    pub(crate) async fn durable_write<T>(
        &self,
        topic: &gekko_bus::Topic<T>,
        payload: &T,
    ) -> Result<(), String>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        let i = &self.inner;
        let Some(ha) = &i.ha else {
            return topic
                .publish(&*i.bus, &i.cfg.source, payload)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string());
        };
        let (_, bytes) = topic
            .encode(&i.cfg.source, payload)
            .map_err(|e| e.to_string())?;
        match ha.lease.fenced_append(&topic.spec(), &bytes).await {
            Ok(_) => Ok(()),
            Err(e @ crate::lease::LeaseError::Fenced { .. }) => {
                metrics::counter!("gekko_gateway_fenced_writes_total", "venue" => self.label())
                    .increment(1);
                tracing::error!(venue = self.label(), error = %e, stream = topic.name(), "write refused: a newer leader exists; stepping down");
                ha.on_fenced();
                Err(e.to_string())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Market data for the bus passes only while this replica leads: a standby keeps its
    /// books and quotes warm in memory but publishes nothing, so consumers see one copy.
    /// Without a lease, `rx` itself.
    pub(crate) fn standby_gate<M: Send + 'static>(
        &self,
        tracker: &TaskTracker,
        mut rx: tokio::sync::mpsc::Receiver<M>,
        cancel: CancellationToken,
    ) -> tokio::sync::mpsc::Receiver<M> {
        if self.inner.ha.is_none() {
            return rx;
        }
        let (tx, out) = tokio::sync::mpsc::channel(1024);
        let gw = self.clone();
        tracker.spawn(async move {
            loop {
                let m = tokio::select! {
                    () = cancel.cancelled() => return,
                    m = rx.recv() => match m { Some(m) => m, None => return },
                };
                if gw.is_leader() && tx.try_send(m).is_err() {
                    metrics::counter!("gekko_gateway_market_data_dropped_total", "venue" => gw.label())
                        .increment(1);
                }
            }
        });
        out
    }
}
