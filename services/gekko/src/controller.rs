//! The controller's shutdown: the mode's steps on every hosted gateway, then the final
//! report.
//!
//! A stop request (SIGTERM/SIGINT with `CONTROLLER_SETTINGS shutdown_mode`, or
//! `SystemService.Shutdown` / `gekko down --mode …`) reaches [`Controller::stop`] while
//! every service still runs; only when it returns does the host cancel and drain. The
//! steps, each on every gateway at once and each bounded by `step_deadline`:
//!
//! 1. `stop-entries`: the kill switch, so nothing new goes out (the strategy's orders
//!    included) while the rest runs;
//! 2. `cancel`: cancel every working order and wait for the venue to list none;
//! 3. `flatten`: close every position (the venue's native close where it has one).
//!
//! A step that a venue cannot confirm (it is down, the deadline passed) is reported with
//! what is left, and the shutdown goes on: a stop must always end with a report. The
//! report is written on every shutdown, including one caused by a failure, in which case
//! no step can run and the report says so.

use std::sync::Arc;
use std::time::Duration;

use gekko_bus::{Bus, Envelope, Topic, names};
use gekko_config::{ControllerSettings, ShutdownMode};
use gekko_core::{Fill, now_ms};
use gekko_gateway::control::{AccountSnapshot, CancelReport};
use gekko_gateway::engine::Gateway;
use gekko_gateway::orders::OrderEvent;
use gekko_runtime::{HostInfo, Readiness, StopRequest};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::report::{self, BalanceLine, FinalReport, PositionLine, StepReport, VenueReport};

/// What a finished shutdown left: the report's files and what could not be done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub mode: String,
    pub report_json: String,
    pub report_markdown: String,
    pub not_done: Vec<String>,
}

/// The controller of one `gekko up` process; provided by the system service so that both
/// the gRPC `Shutdown` and the host's stopping hook find it.
#[derive(Debug, Clone)]
pub(crate) struct Controller {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: ControllerSettings,
    trading_mode: &'static str,
    started_ms: i64,
    readiness: Readiness,
    outcome: watch::Sender<Option<Outcome>>,
    /// Each gateway's account when the process became ready.
    at_start: std::sync::Mutex<Vec<(gekko_core::VenueId, Result<AccountSnapshot, String>)>>,
}

impl Controller {
    pub(crate) fn new(
        settings: ControllerSettings,
        trading_mode: &'static str,
        readiness: Readiness,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings,
                trading_mode,
                started_ms: now_ms(),
                readiness,
                outcome: watch::Sender::new(None),
                at_start: std::sync::Mutex::new(Vec::new()),
            }),
        }
    }

    /// The mode a request resolves to.
    pub(crate) fn mode_of(&self, request: Option<ShutdownMode>) -> ShutdownMode {
        request.unwrap_or(self.inner.settings.shutdown_mode)
    }

    /// Waits for the outcome of the shutdown (the report written).
    pub(crate) async fn outcome(&self) -> Outcome {
        let mut rx = self.inner.outcome.subscribe();
        loop {
            if let Some(o) = rx.borrow_and_update().clone() {
                return o;
            }
            if rx.changed().await.is_err() {
                return Outcome::default();
            }
        }
    }

    /// Records every gateway's account at start-up: the report's starting positions,
    /// against which this run's fills are accounted.
    pub(crate) async fn started(&self, info: &HostInfo<'_>) {
        let gateways = info.provided.all::<Gateway>();
        let snaps = snapshots(&gateways, self.inner.settings.step_deadline).await;
        let list = gateways.iter().map(Gateway::venue).zip(snaps).collect();
        *gekko_core::sync::lock(&self.inner.at_start) = list;
    }

    /// Runs the shutdown steps of `request`'s mode on every hosted gateway, writes the
    /// final report, and publishes the outcome.
    pub(crate) async fn stop(&self, info: &HostInfo<'_>, request: &StopRequest) -> Outcome {
        let mode = self.mode_of(request.mode);
        let deadline = self.inner.settings.step_deadline;
        let gateways = info.provided.all::<Gateway>();
        let alerts: Vec<String> = self
            .inner
            .readiness
            .report()
            .into_iter()
            .filter(|c| !c.ready && c.name != "startup")
            .map(|c| format!("{} not ready: {}", c.name, c.detail))
            .collect();
        let mut errors = Vec::new();
        let mut steps = Vec::new();
        // After a direct cancellation (a failing service), the gateways' tasks are gone:
        // nothing can be confirmed, so no step is attempted; the report says so.
        let can_act = request.origin != "cancelled";
        if !can_act {
            errors.push(
                "the process was stopped by a failure, not a request: no shutdown step ran"
                    .to_owned(),
            );
        }

        let before = snapshots(&gateways, deadline).await;
        if can_act {
            steps.extend(stop_entries(&gateways));
            if mode == ShutdownMode::Cancel {
                steps.extend(cancel_all(&gateways, deadline).await);
            }
            if mode == ShutdownMode::Flatten {
                steps.extend(flatten_all(&gateways, deadline).await);
            }
        }
        let after = snapshots(&gateways, deadline).await;

        let mut venues = Vec::new();
        for (gw, (b, a)) in gateways.iter().zip(before.into_iter().zip(after)) {
            let venue = gw.venue();
            let events = read_since::<OrderEvent>(
                info.bus,
                &names::orders(venue.as_str()),
                self.inner.started_ms,
            )
            .await;
            let fills = read_since::<Fill>(
                info.bus,
                &names::fills(venue.as_str()),
                self.inner.started_ms,
            )
            .await;
            let (events, fills) = match (events, fills) {
                (Ok(e), Ok(f)) => (e, f),
                (e, f) => {
                    for err in [e.err(), f.err()].into_iter().flatten() {
                        errors.push(format!("{venue}: cannot read its records: {err}"));
                    }
                    (Vec::new(), Vec::new())
                }
            };
            let at_start = gekko_core::sync::lock(&self.inner.at_start)
                .iter()
                .find(|(v, _)| *v == venue)
                .map(|(_, s)| s.clone());
            let start_qty: std::collections::BTreeMap<String, rust_decimal::Decimal> =
                match &at_start {
                    Some(Ok(s)) => s
                        .positions
                        .iter()
                        .map(|p| (p.instrument.pair(), p.qty))
                        .collect(),
                    Some(Err(e)) => {
                        errors.push(format!("{venue}: no account snapshot at start-up ({e}): P/L treats the start position as flat"));
                        Default::default()
                    }
                    None => Default::default(),
                };
            let (instruments, rejects) = report::summarize(&events, &fills, &start_qty);
            let mut v = VenueReport {
                venue: venue.to_string(),
                reachable: b.is_ok() && a.is_ok(),
                instruments,
                rejects,
                open_orders_after: gw.open_orders(None).len() as u64,
                ..VenueReport::default()
            };
            if let Some(Ok(s)) = &at_start {
                v.positions_at_start
                    .extend(s.positions.iter().map(PositionLine::from));
            }
            match b {
                Ok(s) => fill_lines(&s, &mut v.positions_before, &mut v.balances_before),
                Err(e) => errors.push(format!(
                    "{venue}: no account snapshot before the steps: {e}"
                )),
            }
            match a {
                Ok(s) => fill_lines(&s, &mut v.positions_after, &mut v.balances_after),
                Err(e) => errors.push(format!("{venue}: no account snapshot after the steps: {e}")),
            }
            venues.push(v);
        }

        let stopped_ms = now_ms();
        let complete =
            can_act && steps.iter().all(|s| s.done) && venues.iter().all(|v| v.reachable);
        let report = FinalReport {
            program: info.program.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            trading_mode: self.inner.trading_mode.to_owned(),
            shutdown_mode: mode.to_string(),
            origin: request.origin.clone(),
            started_ms: self.inner.started_ms,
            stopped_ms,
            uptime_s: (stopped_ms - self.inner.started_ms) / 1000,
            complete,
            steps,
            venues,
            errors,
            alerts,
        };
        let mut not_done: Vec<String> = report
            .steps
            .iter()
            .flat_map(|s| {
                s.not_done
                    .iter()
                    .map(move |n| format!("{} {}: {n}", s.step, s.venue))
            })
            .collect();
        not_done.extend(report.errors.iter().cloned());
        let (report_json, report_markdown) =
            match report::write(&report, &self.inner.settings.reports_dir) {
                Ok((j, m)) => (j.display().to_string(), m.display().to_string()),
                Err(e) => {
                    let dir = self.inner.settings.reports_dir.display();
                    tracing::error!(error = %e, %dir, "cannot write the final report");
                    eprintln!("gekko: cannot write the final report to {dir}: {e}");
                    not_done.push(format!(
                        "the final report could not be written to {dir}: {e}"
                    ));
                    (String::new(), String::new())
                }
            };
        if !report_json.is_empty() {
            tracing::info!(json = %report_json, markdown = %report_markdown, complete, "final report written");
            println!(
                "gekko: final report {report_markdown} ({})",
                if complete { "complete" } else { "INCOMPLETE" }
            );
        }
        let outcome = Outcome {
            mode: mode.to_string(),
            report_json,
            report_markdown,
            not_done,
        };
        self.inner.outcome.send_replace(Some(outcome.clone()));
        outcome
    }
}

fn fill_lines(
    s: &AccountSnapshot,
    positions: &mut Vec<PositionLine>,
    balances: &mut Vec<BalanceLine>,
) {
    positions.extend(s.positions.iter().map(PositionLine::from));
    balances.extend(s.balances.iter().map(BalanceLine::from));
}

/// Every gateway's account, concurrently, each bounded by `deadline`.
async fn snapshots(
    gateways: &[Gateway],
    deadline: Duration,
) -> Vec<Result<AccountSnapshot, String>> {
    futures::future::join_all(gateways.iter().map(|g| async move {
        match tokio::time::timeout(deadline, g.snapshot()).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {deadline:?}")),
        }
    }))
    .await
}

fn stop_entries(gateways: &[Gateway]) -> Vec<StepReport> {
    gateways
        .iter()
        .map(|g| {
            // For this process only: the next start must trade again.
            let state = g.halt_for_shutdown("shutdown");
            StepReport {
                step: ShutdownMode::StopEntries.to_string(),
                venue: g.venue().to_string(),
                done: !state.trading_enabled,
                detail: "new orders refused".to_owned(),
                not_done: Vec::new(),
            }
        })
        .collect()
}

/// The `cancel` step of one venue, from its cancel report (alone, or inside a flatten).
fn cancel_step(r: &CancelReport) -> StepReport {
    let mut not_done: Vec<String> = r
        .not_cancelled
        .iter()
        .map(|u| {
            format!(
                "order {} still working: {}",
                u.order.request.client_order_id, u.reason
            )
        })
        .collect();
    not_done.extend(r.errors.iter().cloned());
    StepReport {
        step: ShutdownMode::Cancel.to_string(),
        venue: r.venue.to_string(),
        done: r.confirmed && r.not_cancelled.is_empty(),
        detail: format!("{} orders cancelled", r.cancelled.len()),
        not_done,
    }
}

async fn cancel_all(gateways: &[Gateway], deadline: Duration) -> Vec<StepReport> {
    futures::future::join_all(
        gateways
            .iter()
            .map(|g| async move { cancel_step(&g.cancel_working(deadline).await) }),
    )
    .await
}

async fn flatten_all(gateways: &[Gateway], deadline: Duration) -> Vec<StepReport> {
    let reports = futures::future::join_all(gateways.iter().map(|g| g.flatten(deadline))).await;
    let mut out = Vec::new();
    for r in reports {
        out.push(cancel_step(&r.cancel));
        let mut left: Vec<String> = r
            .left
            .iter()
            .map(|l| {
                format!(
                    "{} {} still open: {}",
                    l.position.instrument, l.position.qty, l.reason
                )
            })
            .collect();
        left.extend(r.errors.iter().cloned());
        out.push(StepReport {
            step: ShutdownMode::Flatten.to_string(),
            venue: r.venue.to_string(),
            done: r.flat,
            detail: format!("{} closing orders", r.orders.len()),
            not_done: left,
        });
    }
    out
}

/// Every entry of a durable stream published at or after `since_ms`.
async fn read_since<T: serde::Serialize + DeserializeOwned>(
    bus: &dyn Bus,
    stream: &str,
    since_ms: i64,
) -> Result<Vec<T>, String> {
    let topic: Topic<T> = Topic::durable(stream.to_owned(), 1);
    let mut out = Vec::new();
    topic
        .replay(bus, |Envelope { ts_ms, payload, .. }| {
            if ts_ms >= since_ms {
                out.push(payload);
            }
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(out)
}
