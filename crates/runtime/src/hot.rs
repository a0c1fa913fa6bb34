//! Hot config: the versions configd announces, applied by a running service.
//!
//! configd records every accepted version on the durable stream [`CONFIG_STREAM`] and
//! announces it on the pub/sub channel [`CONFIG_CHANNEL`], as one JSON object:
//! `{"version", "cause", "changes": [{"variable", "hot", "restart_needed"}], "values"}`,
//! the values redacted for secrets. The variables that apply live ([`HOT_VARIABLES`], and
//! the `log_level` key of `MONITORING_CONFIGURATIONS`) carry no secrets, so their redacted
//! values are their values.
//!
//! The host runs one watcher per process ([`spawn`]):
//!
//! 1. it subscribes to the channel first, then reads the stream's newest entry, so a
//!    service (re)started between two versions applies the latest one and no announcement
//!    made in between is missed; the newest entry is read again every
//!    [`POLL_EVERY`], which catches an announcement lost while Redis was unreachable;
//! 2. versions only move forward: an older or repeated version is ignored;
//! 3. the hot variables are parsed again with the loader itself
//!    ([`gekko_config::from_vars`] on just those variables and the ones their validation
//!    reads), so a value means exactly what it means at start-up;
//! 4. the result is a [`HotConfig`]: the configuration the process started with, its hot
//!    fields replaced by the new version's, and the names of the variables that changed.
//!    Services follow it with [`ServiceCtx::hot_config`](crate::ServiceCtx::hot_config)
//!    and apply what concerns them (the gateways their limits, inference its threshold and
//!    model polling); the watcher applies `log_level` itself through the tracing reload
//!    handle ([`crate::telemetry::set_log_filter`]);
//! 5. a change configd marks `restart_needed` is not applied: it is logged (warn, naming
//!    the variable) and `gekko_config_restart_needed{service,variable}` turns 1, and the
//!    process keeps running with the value it started with.
//!
//! `gekko_config_version{service}` is the version in force (0 until a version from configd
//! was applied).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gekko_bus::Bus;
use gekko_config::{GekkoConfig, names};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::shutdown::Shutdown;

/// The durable stream configd records versions on.
pub const CONFIG_STREAM: &str = "gekko:config";
/// The pub/sub channel configd announces versions on.
pub const CONFIG_CHANNEL: &str = "gekko:config";

/// Variables whose changes a running service applies (with the `log_level` key of
/// `MONITORING_CONFIGURATIONS`).
pub const HOT_VARIABLES: &[&str] = &[
    names::TRADING_RATE_LIMITS,
    names::POSITION_LIMITS,
    names::COMPLIANCE_SETTINGS,
    names::CONFIDENCE_THRESHOLDS,
    names::MODEL_UPDATE_FREQUENCIES,
];

/// Variables the validation of the hot ones reads (`POSITION_LIMITS` pairs must be
/// supported; thresholds and frequencies name models), passed to the loader with them.
const CONTEXT_VARIABLES: &[&str] = &[names::SUPPORTED_TRADING_PAIRS, names::ML_MODEL_ENDPOINTS];

/// How often the stream's newest entry is read again, for announcements missed while the
/// bus was unreachable.
pub const POLL_EVERY: Duration = Duration::from_secs(10);

/// Gauge: the config version in force, by `service`.
pub const METRIC_VERSION: &str = "gekko_config_version";
/// Gauge: 1 for a variable whose change is waiting for a restart, by `service` and
/// `variable`.
pub const METRIC_RESTART_NEEDED: &str = "gekko_config_restart_needed";

/// One config version as the process applies it.
#[derive(Debug, Clone)]
pub struct HotConfig {
    /// configd's version number; 0 for the configuration the process started with.
    pub version: u64,
    /// The start-up configuration with this version's hot fields.
    pub config: Arc<GekkoConfig>,
    /// The hot variables whose values differ from the previous [`HotConfig`]
    /// (`MONITORING_CONFIGURATIONS` when `log_level` changed).
    pub changed: Vec<&'static str>,
    /// The configuration the process started with: what a service compares the first
    /// version it sees with (it may have missed intermediate ones; compare with
    /// [`hot_changes`]).
    pub started_with: Arc<GekkoConfig>,
}

impl HotConfig {
    /// Whether `variable` changed in this version.
    #[must_use]
    pub fn changed(&self, variable: &str) -> bool {
        self.changed.contains(&variable)
    }
}

/// A version's announcement, as configd writes it.
#[derive(Debug, serde::Deserialize)]
struct Announcement {
    version: u64,
    #[serde(default)]
    changes: Vec<AnnouncedChange>,
    #[serde(default)]
    values: BTreeMap<String, String>,
}

#[derive(Debug, serde::Deserialize)]
struct AnnouncedChange {
    variable: String,
    #[serde(default)]
    restart_needed: bool,
}

/// Records that `variable` changed in `version` and needs a restart of `service`: a warn
/// line naming it and `gekko_config_restart_needed{service,variable}` = 1. Services call
/// it for a part of a hot variable they cannot apply live.
pub fn report_restart_needed(service: &str, variable: &str, version: u64) {
    tracing::warn!(
        service,
        variable,
        version,
        "config change needs a restart; the old value stays in force"
    );
    metrics::gauge!(METRIC_RESTART_NEEDED, "service" => service.to_owned(), "variable" => variable.to_owned())
        .set(1.0);
}

/// Parses the hot variables of `values` with the loader.
///
/// # Errors
/// Every problem the loader finds, one line each.
fn parse_hot(values: &BTreeMap<String, String>) -> Result<GekkoConfig, Vec<String>> {
    let mut vars: BTreeMap<String, String> = values
        .iter()
        .filter(|(k, _)| {
            HOT_VARIABLES.contains(&k.as_str()) || CONTEXT_VARIABLES.contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // Only `log_level` of MONITORING_CONFIGURATIONS is hot; the addresses are not read.
    if let Some(level) = values.get(names::MONITORING_CONFIGURATIONS).and_then(|m| {
        m.split(',')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| k.trim() == "log_level")
            .map(|(_, v)| v.trim().to_owned())
    }) {
        vars.insert(
            names::MONITORING_CONFIGURATIONS.to_owned(),
            format!("log_level={level}"),
        );
    }
    gekko_config::from_vars(&vars)
        .map(|l| l.config)
        .map_err(|e| e.problems.iter().map(ToString::to_string).collect())
}

/// The hot variables whose values differ between `old` and `new`
/// (`MONITORING_CONFIGURATIONS` for its `log_level`). A service compares what it last
/// applied with a new [`HotConfig::config`] this way, so versions it did not look at in
/// between lose nothing.
#[must_use]
pub fn hot_changes(old: &GekkoConfig, new: &GekkoConfig) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if old.trading_rate_limits != new.trading_rate_limits {
        changed.push(names::TRADING_RATE_LIMITS);
    }
    if old.position_limits != new.position_limits {
        changed.push(names::POSITION_LIMITS);
    }
    if old.compliance != new.compliance {
        changed.push(names::COMPLIANCE_SETTINGS);
    }
    if old.confidence_thresholds != new.confidence_thresholds {
        changed.push(names::CONFIDENCE_THRESHOLDS);
    }
    if old.model_update_frequencies != new.model_update_frequencies {
        changed.push(names::MODEL_UPDATE_FREQUENCIES);
    }
    if old.monitoring.log_level != new.monitoring.log_level {
        changed.push(names::MONITORING_CONFIGURATIONS);
    }
    changed
}

/// `base` with the hot fields of `new`, and the hot variables that differ from `old`.
fn merge(
    base: &GekkoConfig,
    old: &GekkoConfig,
    new: &GekkoConfig,
) -> (GekkoConfig, Vec<&'static str>) {
    let changed = hot_changes(old, new);
    let mut cfg = base.clone();
    cfg.trading_rate_limits.clone_from(&new.trading_rate_limits);
    cfg.position_limits.clone_from(&new.position_limits);
    cfg.compliance.clone_from(&new.compliance);
    cfg.confidence_thresholds
        .clone_from(&new.confidence_thresholds);
    cfg.model_update_frequencies
        .clone_from(&new.model_update_frequencies);
    cfg.monitoring
        .log_level
        .clone_from(&new.monitoring.log_level);
    (cfg, changed)
}

/// The watcher's state: the version in force and how to announce the next.
#[derive(Debug)]
struct Applier {
    service: &'static str,
    base: GekkoConfig,
    tx: watch::Sender<HotConfig>,
}

impl Applier {
    /// Applies one announcement; `at_start` for the newest entry read at start-up, whose
    /// restart-needed changes predate this process (it started with them).
    fn handle(&self, payload: &[u8], at_start: bool) {
        let a: Announcement = match serde_json::from_slice(payload) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "config announcement is not valid JSON; ignored");
                return;
            }
        };
        let (in_force, old, started_with) = {
            let cur = self.tx.borrow();
            (cur.version, cur.config.clone(), cur.started_with.clone())
        };
        if a.version <= in_force {
            tracing::debug!(
                version = a.version,
                in_force,
                "config announcement not newer than the version in force; ignored"
            );
            return;
        }
        let parsed = match parse_hot(&a.values) {
            Ok(c) => c,
            Err(problems) => {
                for p in &problems {
                    tracing::warn!(version = a.version, problem = %p, "config version's hot values do not parse; the old values stay in force");
                }
                return;
            }
        };
        if !at_start {
            for c in a.changes.iter().filter(|c| c.restart_needed) {
                report_restart_needed(self.service, &c.variable, a.version);
            }
        }
        let (config, changed) = merge(&self.base, &old, &parsed);
        if changed.contains(&names::MONITORING_CONFIGURATIONS) {
            self.apply_log_level(&config.monitoring.log_level, a.version);
        }
        metrics::gauge!(METRIC_VERSION, "service" => self.service).set(u64_gauge(a.version));
        tracing::info!(
            service = self.service,
            version = a.version,
            changed = ?changed,
            "config version in force"
        );
        self.tx.send_replace(HotConfig {
            version: a.version,
            config: Arc::new(config),
            changed,
            started_with,
        });
    }

    fn apply_log_level(&self, level: &str, version: u64) {
        match crate::telemetry::set_log_filter(level) {
            Ok(crate::telemetry::FilterChange::Applied) => tracing::info!(
                service = self.service,
                version,
                variable = names::MONITORING_CONFIGURATIONS,
                log_level = level,
                "config change applied: log level"
            ),
            Ok(crate::telemetry::FilterChange::RustLogWins) => tracing::warn!(
                service = self.service,
                version,
                log_level = level,
                "log level change not applied: RUST_LOG chose the filter at start-up and keeps winning"
            ),
            Ok(crate::telemetry::FilterChange::NotInstalled) => tracing::debug!(
                version,
                "log level change not applied: this host did not install the subscriber"
            ),
            Err(e) => tracing::warn!(
                service = self.service,
                version,
                error = %e,
                "log level change not applied; the old filter stays"
            ),
        }
    }
}

#[allow(
    clippy::cast_precision_loss,
    reason = "a gauge is f64; versions stay far below 2^53"
)]
fn u64_gauge(v: u64) -> f64 {
    v as f64
}

/// Starts the process's hot-config watcher on `bus` (see the module docs) and returns the
/// receiver services follow. `base` is the configuration the process started with.
#[must_use]
pub fn spawn(
    service: &'static str,
    base: GekkoConfig,
    bus: Arc<dyn Bus>,
    shutdown: &Shutdown,
) -> watch::Receiver<HotConfig> {
    metrics::describe_gauge!(
        METRIC_VERSION,
        "The config version (configd's number) in force; 0 until one was applied."
    );
    metrics::describe_gauge!(
        METRIC_RESTART_NEEDED,
        "1 for a variable whose change is waiting for a restart of the service."
    );
    metrics::gauge!(METRIC_VERSION, "service" => service).set(0.0);
    let base_arc = Arc::new(base.clone());
    let (tx, rx) = watch::channel(HotConfig {
        version: 0,
        config: base_arc.clone(),
        changed: Vec::new(),
        started_with: base_arc,
    });
    let applier = Applier { service, base, tx };
    let token = shutdown.child_token();
    shutdown.spawn("config-hot", async move {
        watch_versions(&applier, &*bus, &token).await;
        Ok::<(), std::convert::Infallible>(())
    });
    rx
}

/// Subscribes (retrying while the bus is unreachable), reads the newest entry, then
/// follows announcements until `token` is cancelled.
async fn watch_versions(applier: &Applier, bus: &dyn Bus, token: &CancellationToken) {
    let mut first = true;
    loop {
        let mut sub = match bus.subscribe(CONFIG_CHANNEL).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe to config announcements yet; retrying");
                tokio::select! {
                    () = token.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        read_newest(applier, bus, first).await;
        first = false;
        let mut poll = tokio::time::interval(POLL_EVERY);
        poll.tick().await;
        loop {
            tokio::select! {
                () = token.cancelled() => return,
                msg = sub.recv() => match msg {
                    Some(payload) => applier.handle(&payload, false),
                    // The bus is gone; subscribe again.
                    None => break,
                },
                _ = poll.tick() => read_newest(applier, bus, false).await,
            }
        }
    }
}

async fn read_newest(applier: &Applier, bus: &dyn Bus, at_start: bool) {
    match bus.last_entry(CONFIG_STREAM).await {
        Ok(Some(entry)) => applier.handle(&entry.payload, at_start),
        Ok(None) => {}
        Err(e) => tracing::debug!(error = %e, "cannot read the newest config version yet"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applier() -> (Applier, watch::Receiver<HotConfig>) {
        let base = GekkoConfig::default();
        let (tx, rx) = watch::channel(HotConfig {
            version: 0,
            config: Arc::new(base.clone()),
            changed: Vec::new(),
            started_with: Arc::new(base.clone()),
        });
        (
            Applier {
                service: "test",
                base,
                tx,
            },
            rx,
        )
    }

    fn announcement(version: u64, values: &[(&str, &str)]) -> Vec<u8> {
        let values: BTreeMap<&str, &str> = values.iter().copied().collect();
        serde_json::json!({"version": version, "cause": "reload", "changes": [], "values": values})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn hot_values_are_parsed_by_the_loader_and_only_move_forward() {
        let (a, rx) = applier();
        a.handle(
            &announcement(
                3,
                &[
                    (names::POSITION_LIMITS, "BTC-USD=0.5"),
                    (names::REDIS_URL, "redis://elsewhere:1"),
                    (
                        names::MONITORING_CONFIGURATIONS,
                        "log_level=debug,http_addr=0.0.0.0:1",
                    ),
                ],
            ),
            false,
        );
        let h = rx.borrow().clone();
        assert_eq!(h.version, 3);
        assert!(h.changed(names::POSITION_LIMITS));
        assert!(h.changed(names::MONITORING_CONFIGURATIONS));
        assert!(!h.changed(names::TRADING_RATE_LIMITS));
        assert_eq!(h.config.position_limits.len(), 1);
        assert_eq!(h.config.monitoring.log_level, "debug");
        assert_eq!(
            h.config.redis_url, None,
            "a non-hot variable keeps its start-up value"
        );
        assert_eq!(
            h.config.monitoring.http_addr,
            GekkoConfig::default().monitoring.http_addr
        );
        // Older and repeated versions change nothing.
        a.handle(
            &announcement(2, &[(names::POSITION_LIMITS, "BTC-USD=9")]),
            false,
        );
        a.handle(
            &announcement(3, &[(names::POSITION_LIMITS, "BTC-USD=9")]),
            false,
        );
        assert_eq!(rx.borrow().version, 3);
        assert_eq!(
            rx.borrow()
                .config
                .position_limits
                .values()
                .next()
                .map(ToString::to_string),
            Some("0.5".to_owned())
        );
    }

    #[test]
    fn an_unparsable_version_changes_nothing() {
        let (a, rx) = applier();
        a.handle(
            &announcement(4, &[(names::POSITION_LIMITS, "BTC-USD=-1")]),
            false,
        );
        a.handle(b"not json", false);
        assert_eq!(rx.borrow().version, 0);
        assert!(rx.borrow().config.position_limits.is_empty());
    }
}
