//! The poll loop: every interval, probe every target (concurrently), Redis, Docker and
//! the host; publish the new tree; reconcile the alerts with what was found.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gekko_proto::v1 as pb;
use gekko_runtime::ReadyHandle;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::alerts::{Alerts, Condition, Severity, now_unix_ms};
use crate::infra::{self, RestartMemory};
use crate::model::{ServiceNode, Snapshot, Status};
use crate::probe::{CounterMemory, Prober};
use crate::settings::{DockerMode, HealthdSettings};

/// The latest tree and the open alerts, shared by the poller, gRPC and HTTP. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct HealthState {
    snapshot: Arc<watch::Sender<Arc<Snapshot>>>,
    /// The open alerts.
    pub alerts: Alerts,
}

impl HealthState {
    /// A state with no poll yet.
    #[must_use]
    pub fn new(alerts: Alerts) -> Self {
        let (tx, _rx) = watch::channel(Arc::new(Snapshot::empty()));
        Self {
            snapshot: Arc::new(tx),
            alerts,
        }
    }

    /// The latest tree.
    #[must_use]
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    /// Woken whenever a status or a reason changes.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshot.subscribe()
    }

    /// The latest tree with the open alerts, as protobuf.
    #[must_use]
    pub fn system_health(&self) -> pb::SystemHealth {
        let mut out = self.snapshot().to_pb();
        out.open_alerts = self
            .alerts
            .open()
            .iter()
            .map(crate::alerts::Alert::to_pb)
            .collect();
        out
    }

    fn store(&self, snap: Snapshot) {
        let snap = Arc::new(snap);
        self.snapshot.send_if_modified(|current| {
            let changed = current.generation == 0 || current.shape() != snap.shape();
            *current = snap;
            changed
        });
    }
}

/// What the poller owns between rounds.
#[derive(Debug)]
pub struct Poller {
    settings: HealthdSettings,
    redis_url: Option<String>,
    prober: Prober,
    counters: BTreeMap<String, CounterMemory>,
    restarts: RestartMemory,
    generation: u64,
}

impl Poller {
    /// A poller for `settings`; `redis_url` is the bus's Redis (checked unless
    /// `HEALTHD_REDIS=off`).
    #[must_use]
    pub fn new(settings: HealthdSettings, redis_url: Option<String>) -> Self {
        let prober = Prober::new(settings.timeout);
        Self {
            redis_url: redis_url.filter(|_| settings.redis),
            settings,
            prober,
            counters: BTreeMap::new(),
            restarts: RestartMemory::default(),
            generation: 0,
        }
    }

    /// One round: the new tree and every condition found.
    pub async fn poll(&mut self) -> (Snapshot, Vec<Condition>) {
        let started = Instant::now();
        let s = &self.settings;
        let mut memories: Vec<CounterMemory> = s
            .targets
            .iter()
            .map(|t| self.counters.remove(&t.name).unwrap_or_default())
            .collect();
        let targets = s
            .targets
            .iter()
            .zip(memories.iter_mut())
            .map(|(t, mem)| self.prober.target(t, &s.thresholds, mem));
        let redis = async {
            match &self.redis_url {
                Some(url) => Some(infra::redis(url, s.timeout, &s.thresholds).await),
                None => None,
            }
        };
        let docker = async {
            match s.docker {
                DockerMode::Auto => Some(
                    infra::docker(
                        s.docker_project.as_deref(),
                        s.timeout,
                        &s.thresholds,
                        &mut self.restarts,
                    )
                    .await,
                ),
                DockerMode::Off => None,
            }
        };
        let (targets, redis, docker) =
            tokio::join!(futures_util::future::join_all(targets), redis, docker);
        for (t, mem) in s.targets.iter().zip(memories) {
            self.counters.insert(t.name.clone(), mem);
        }
        let mut services = Vec::new();
        let mut conditions = Vec::new();
        for (node, found) in targets {
            conditions.extend(down_conditions(&node));
            conditions.extend(found);
            services.push(node);
        }
        let host = infra::host(&s.disk_paths, &s.thresholds);
        for (node, found) in [redis, docker, Some(host)].into_iter().flatten() {
            conditions.extend(found);
            services.push(node);
        }
        self.generation += 1;
        metrics::histogram!("gekko_healthd_poll_seconds").record(started.elapsed().as_secs_f64());
        for svc in &services {
            let v = match svc.status() {
                Status::Ok => 0.0,
                Status::Warning => 1.0,
                Status::Down => 2.0,
            };
            metrics::gauge!("gekko_healthd_service_status", "service" => svc.name.clone()).set(v);
            #[allow(clippy::cast_precision_loss)] // replica counts are tiny
            metrics::gauge!("gekko_healthd_replicas", "service" => svc.name.clone())
                .set(svc.replicas.len() as f64);
        }
        (
            Snapshot {
                generation: self.generation,
                checked_at_unix_ms: now_unix_ms(),
                services,
            },
            conditions,
        )
    }

    /// Polls until `cancel`: stores every tree, reconciles the alerts, and marks
    /// `first_poll` ready once the first round is done.
    pub async fn run(
        mut self,
        state: HealthState,
        first_poll: ReadyHandle,
        cancel: CancellationToken,
    ) {
        let interval = self.settings.interval;
        loop {
            let (snap, conditions) = tokio::select! {
                r = self.poll() => r,
                () = cancel.cancelled() => return,
            };
            let ready = snap.not_ready_reason().is_none();
            metrics::gauge!("gekko_healthd_ready").set(if ready { 1.0 } else { 0.0 });
            if let Some(why) = snap.not_ready_reason() {
                tracing::debug!(%why, "the system is not ready");
            }
            state.store(snap);
            state.alerts.reconcile(&conditions).await;
            first_poll.set_ready();
            let next = tokio::time::sleep(interval);
            tokio::pin!(next);
            // Escalations do not wait for a slow poll interval.
            loop {
                tokio::select! {
                    () = &mut next => break,
                    () = tokio::time::sleep(Duration::from_secs(1).min(interval)) => state.alerts.escalate().await,
                    () = cancel.cancelled() => return,
                }
            }
        }
    }
}

/// `service_down` for a target with no working replica (critical when required),
/// `replica_down` for each down replica of a service that still has others.
fn down_conditions(node: &ServiceNode) -> Vec<Condition> {
    let severity = if node.required {
        Severity::Critical
    } else {
        Severity::Warning
    };
    if node.status() == Status::Down {
        return vec![Condition::new(
            "service_down",
            severity,
            node.name.clone(),
            format!("{} is down: {}", node.name, node.reason()),
        )];
    }
    node.replicas
        .iter()
        .filter(|r| r.status() == Status::Down)
        .map(|r| {
            Condition::new(
                "replica_down",
                Severity::Warning,
                format!("{}/{}", node.name, r.address),
                format!(
                    "{} replica {} is down: {}",
                    node.name,
                    r.address,
                    r.reason()
                ),
            )
        })
        .collect()
}
