//! The versions configd serves, and how a candidate becomes the next one.
//!
//! One [`ConfigStore`] holds the version in force behind a lock, and a broadcast channel
//! that `Watch` streams subscribe to. A reload reads the env file (unsealing it), layers it
//! under configd's own process environment, and validates the whole result with the
//! loader. Only a valid candidate replaces the version in force, so a half-edited file
//! never reaches anyone.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use gekko_audit::{AuditLog, AuditRecord};
use gekko_bus::{Bus, StreamSpec};
use gekko_config::{ConfigErrors, GekkoConfig, Key, names};
use gekko_proto::v1 as pb;
use tokio::sync::broadcast;

use crate::classify::{self, Change};

/// The durable stream of accepted versions (metadata and redacted values, never secrets).
pub const CONFIG_STREAM: &str = "gekko:config";
/// The pub/sub channel a new version is announced on.
pub const CONFIG_CHANNEL: &str = "gekko:config";

/// The version in force.
#[derive(Debug, Clone)]
pub struct Current {
    /// Its number: 1 for the first version ever recorded, then one more per accepted
    /// change.
    pub version: u64,
    /// Every variable, from the env file under the process environment.
    pub vars: BTreeMap<String, String>,
    /// The validated configuration.
    pub config: GekkoConfig,
}

/// What became of a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new version is in force.
    Accepted(u64),
    /// The candidate was invalid; the old version stays.
    Rejected(Vec<String>),
    /// Nothing changed.
    Unchanged,
}

/// The versions, shared by the gRPC service and the watcher.
#[derive(Debug, Clone)]
pub struct ConfigStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    current: RwLock<Current>,
    process_vars: BTreeMap<String, String>,
    env_file: PathBuf,
    key: Option<Key>,
    bus: Arc<dyn Bus>,
    tx: broadcast::Sender<pb::ConfigVersion>,
    restart_needed: std::sync::atomic::AtomicBool,
    /// Where each new version is recorded as `config.change` (docs/security.md).
    audit: AuditLog,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Reads the env file (opening it with `key` when sealed) and layers it under
/// `process_vars` (a variable set in the process environment wins, as in the loader).
///
/// # Errors
/// Every problem of the file and of the whole configuration.
pub fn read_candidate(
    env_file: &std::path::Path,
    key: Option<&Key>,
    process_vars: &BTreeMap<String, String>,
) -> Result<(BTreeMap<String, String>, GekkoConfig), ConfigErrors> {
    let file = gekko_config::read_env_file(env_file, "CONFIGD_ENV_FILE", key)?;
    validate_vars(file, process_vars)
}

/// Layers `file` under `process_vars` and validates the result.
///
/// # Errors
/// Every problem the loader finds.
pub fn validate_vars(
    file: BTreeMap<String, String>,
    process_vars: &BTreeMap<String, String>,
) -> Result<(BTreeMap<String, String>, GekkoConfig), ConfigErrors> {
    let mut vars: BTreeMap<String, String> = file
        .into_iter()
        .filter(|(k, _)| classify::is_gekko_variable(k))
        .collect();
    for (k, v) in process_vars {
        if classify::is_gekko_variable(k) && !v.trim().is_empty() {
            vars.insert(k.clone(), v.clone());
        }
    }
    // configd names its file with CONFIGD_ENV_FILE; a GEKKO_ENV_FILE would be a second
    // source, and the loader would not read it here anyway.
    vars.remove(names::GEKKO_ENV_FILE);
    let loaded = gekko_config::from_vars(&vars)?;
    Ok((vars, loaded.config))
}

/// A problem as the proto carries it.
#[must_use]
pub fn problem_pb(p: &gekko_config::ConfigProblem) -> pb::ConfigProblemInfo {
    pb::ConfigProblemInfo {
        variable: p.variable.clone(),
        problem: p.problem.clone(),
        expected: p.expected.clone(),
    }
}

fn change_pb(c: &Change) -> pb::ConfigChange {
    pb::ConfigChange {
        variable: c.variable.clone(),
        hot: c.hot,
        restart_needed: !c.hot,
    }
}

impl ConfigStore {
    /// [`ConfigStore::open_audited`] without an audit trail (no `config.change` records).
    ///
    /// # Errors
    /// As [`ConfigStore::open_audited`].
    pub async fn open(
        bus: Arc<dyn Bus>,
        env_file: PathBuf,
        key: Option<Key>,
        process_vars: BTreeMap<String, String>,
        vars: BTreeMap<String, String>,
        config: GekkoConfig,
    ) -> Result<Self, gekko_bus::BusError> {
        Self::open_audited(
            bus,
            env_file,
            key,
            process_vars,
            vars,
            config,
            AuditLog::disabled(),
        )
        .await
    }

    /// Starts from a validated configuration: records it as the next version on
    /// [`CONFIG_STREAM`] (numbering continues from the last recorded one) and on `audit`
    /// as `config.change`, with what differs from the last recorded version.
    ///
    /// # Errors
    /// The bus could not be read or written.
    pub async fn open_audited(
        bus: Arc<dyn Bus>,
        env_file: PathBuf,
        key: Option<Key>,
        process_vars: BTreeMap<String, String>,
        vars: BTreeMap<String, String>,
        config: GekkoConfig,
        audit: AuditLog,
    ) -> Result<Self, gekko_bus::BusError> {
        let previous = bus
            .last_entry(CONFIG_STREAM)
            .await?
            .and_then(|d| serde_json::from_slice::<serde_json::Value>(&d.payload).ok());
        let last = previous
            .as_ref()
            .and_then(|v| v.get("version").and_then(serde_json::Value::as_u64))
            .unwrap_or(0);
        // What changed while no configd ran, as far as the redacted record tells: the
        // previous version's values are stored redacted, so compare redacted with
        // redacted (a secret rotated while configd was down shows no difference here;
        // its reload would have).
        let before: BTreeMap<String, String> = previous
            .as_ref()
            .and_then(|v| v.get("values").and_then(serde_json::Value::as_object))
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let redacted_now: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.clone(), classify::redact(k, v)))
            .collect();
        let since_last = classify::diff(&before, &redacted_now);
        let (tx, _) = broadcast::channel(64);
        let store = Self {
            inner: Arc::new(Inner {
                current: RwLock::new(Current {
                    version: last + 1,
                    vars: vars.clone(),
                    config,
                }),
                process_vars,
                env_file,
                key,
                bus,
                tx,
                restart_needed: std::sync::atomic::AtomicBool::new(false),
                audit,
            }),
        };
        let changes: Vec<Change> = Vec::new();
        store.record(last + 1, &vars, &changes, "start").await?;
        store
            .audit_change(last + 1, "start", &since_last, &before, &vars)
            .await;
        crate::metrics::version(last + 1);
        crate::metrics::restart_needed(false);
        Ok(store)
    }

    /// A copy of the version in force.
    #[must_use]
    pub fn current(&self) -> Current {
        gekko_core::sync::read(&self.inner.current).clone()
    }

    /// Subscribes to new and rejected versions.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<pb::ConfigVersion> {
        self.inner.tx.subscribe()
    }

    /// The process environment's gekko variables, which win over the file.
    #[must_use]
    pub fn process_vars(&self) -> &BTreeMap<String, String> {
        &self.inner.process_vars
    }

    /// The version in force as a `Watch` message (no changes).
    #[must_use]
    pub fn current_message(&self) -> pb::ConfigVersion {
        pb::ConfigVersion {
            version: self.current().version,
            accepted: true,
            changes: Vec::new(),
            problems: Vec::new(),
            restart_needed: self
                .inner
                .restart_needed
                .load(std::sync::atomic::Ordering::Relaxed),
            at_unix_ms: now_ms(),
        }
    }

    async fn record(
        &self,
        version: u64,
        vars: &BTreeMap<String, String>,
        changes: &[Change],
        cause: &str,
    ) -> Result<(), gekko_bus::BusError> {
        let redacted: serde_json::Map<String, serde_json::Value> = vars
            .iter()
            .map(|(k, v)| (k.clone(), classify::redact(k, v).into()))
            .collect();
        let entry = serde_json::json!({
            "version": version,
            "at_unix_ms": now_ms(),
            "cause": cause,
            "changes": changes.iter().map(|c| serde_json::json!({
                "variable": c.variable, "hot": c.hot, "restart_needed": !c.hot,
            })).collect::<Vec<_>>(),
            "values": redacted,
        });
        let payload = bytes::Bytes::from(entry.to_string());
        self.inner
            .bus
            .append(&StreamSpec::durable(CONFIG_STREAM), payload.clone())
            .await?;
        self.inner.bus.notify(CONFIG_CHANNEL, payload).await
    }

    /// Records `config.change` for `version` on the audit trail: each changed variable with
    /// its old and new values redacted as `GetConfig` shows them (`old` is already
    /// redacted or raw; both are redacted again, which is idempotent). Awaited, so the
    /// entry is on the stream before the version is announced; a failure is logged and
    /// counted by the audit crate, and does not undo the version (it is already in force
    /// in memory).
    async fn audit_change(
        &self,
        version: u64,
        cause: &str,
        changes: &[Change],
        old: &BTreeMap<String, String>,
        new: &BTreeMap<String, String>,
    ) {
        let shown = |m: &BTreeMap<String, String>, k: &str| {
            m.get(k)
                .map_or(serde_json::Value::Null, |v| classify::redact(k, v).into())
        };
        let detail = serde_json::json!({
            "version": version,
            "cause": cause,
            "variables": changes.iter().map(|c| c.variable.as_str()).collect::<Vec<_>>(),
            "changes": changes.iter().map(|c| serde_json::json!({
                "variable": c.variable,
                "old": shown(old, &c.variable),
                "new": shown(new, &c.variable),
                "hot": c.hot,
            })).collect::<Vec<_>>(),
        });
        let rec = AuditRecord::new("configd", "config.change", "ok").with_detail(detail);
        if let Err(e) = self.inner.audit.record(rec).await {
            tracing::error!(version, error = %e, "config.change could not be written to the audit trail");
        }
    }

    /// Re-reads the env file and, if it is valid and differs, makes it the next version.
    pub async fn reload(&self) -> Outcome {
        let candidate = read_candidate(
            &self.inner.env_file,
            self.inner.key.as_ref(),
            &self.inner.process_vars,
        );
        let (vars, config) = match candidate {
            Ok(c) => c,
            Err(errors) => {
                let version = self.current().version;
                let lines: Vec<String> = errors.problems.iter().map(ToString::to_string).collect();
                for line in &lines {
                    tracing::warn!(version, problem = %line, "config reload rejected: the old version stays in force");
                }
                crate::metrics::reload("rejected");
                let _ = self.inner.tx.send(pb::ConfigVersion {
                    version,
                    accepted: false,
                    changes: Vec::new(),
                    problems: errors.problems.iter().map(problem_pb).collect(),
                    restart_needed: false,
                    at_unix_ms: now_ms(),
                });
                return Outcome::Rejected(lines);
            }
        };
        let (version, changes, old) = {
            let mut cur = gekko_core::sync::write(&self.inner.current);
            let changes = classify::diff(&cur.vars, &vars);
            if changes.is_empty() {
                drop(cur);
                crate::metrics::reload("unchanged");
                return Outcome::Unchanged;
            }
            cur.version += 1;
            let old = std::mem::replace(&mut cur.vars, vars.clone());
            cur.config = config;
            (cur.version, changes, old)
        };
        let restart = changes.iter().any(|c| !c.hot);
        if restart {
            self.inner
                .restart_needed
                .store(true, std::sync::atomic::Ordering::Relaxed);
            crate::metrics::restart_needed(true);
        }
        for c in &changes {
            tracing::info!(
                version,
                variable = %c.variable,
                applied = if c.hot { "live" } else { "after a restart" },
                "config version accepted"
            );
        }
        self.audit_change(version, "reload", &changes, &old, &vars)
            .await;
        if let Err(e) = self.record(version, &vars, &changes, "reload").await {
            tracing::error!(version, error = %e, "config version could not be recorded on the bus");
        }
        crate::metrics::version(version);
        crate::metrics::reload("accepted");
        let _ = self.inner.tx.send(pb::ConfigVersion {
            version,
            accepted: true,
            changes: changes.iter().map(change_pb).collect(),
            problems: Vec::new(),
            restart_needed: restart,
            at_unix_ms: now_ms(),
        });
        Outcome::Accepted(version)
    }
}
