//! The `backup` service of `gekko up`: a snapshot at start-up, then one every
//! `BACKUP_SETTINGS interval`.
//!
//! `gekko up` hosts it only when `enabled=true` and `REDIS_URL` is set: with the
//! in-process bus the durable streams live in the process's memory, and there is nothing
//! a snapshot of Redis could hold (`gekko check` says so).
//!
//! It opens its own Redis connection rather than going through the `Bus` trait: a
//! snapshot needs raw stream reads (every field, every id, the consumer groups), which
//! the bus contract deliberately does not offer. A failed snapshot is logged and counted,
//! and the next tick tries again with a fresh connection; it never stops the process,
//! and readiness does not depend on it (trading does not stop because a disk is full;
//! the `gekko_backup_*` metrics and their alert say so).
//!
//! Metrics: `gekko_backup_last_success_timestamp_seconds` (gauge),
//! `gekko_backup_failures_total` (counter), `gekko_backup_bytes` (gauge, the size of the
//! newest snapshot).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use gekko_config::{EncryptionSettings, GekkoConfig};
use gekko_runtime::{BoxError, Service, ServiceCtx, Started};
use redis::aio::MultiplexedConnection;
use tokio_util::sync::CancellationToken;

use crate::{BackupError, BackupKey, SnapshotOutcome, connect, take_snapshot};

/// Gauge: when the last snapshot was written, seconds since the epoch.
pub const METRIC_LAST_SUCCESS: &str = "gekko_backup_last_success_timestamp_seconds";
/// Counter: snapshots that failed.
pub const METRIC_FAILURES: &str = "gekko_backup_failures_total";
/// Gauge: the size of the newest snapshot in bytes.
pub const METRIC_BYTES: &str = "gekko_backup_bytes";

/// The `backup` service (see the module documentation).
#[derive(Debug)]
pub struct BackupService;

/// What the backup service needs.
#[derive(Clone)]
pub struct BackupServiceSettings {
    /// `REDIS_URL`.
    pub redis_url: String,
    /// `AUDIT_LOGGING_SETTINGS stream`.
    pub audit_stream: String,
    /// `BACKUP_SETTINGS dir`.
    pub dir: PathBuf,
    /// `BACKUP_SETTINGS interval` (tests use shorter ones than config allows).
    pub interval: Duration,
    /// `BACKUP_SETTINGS retention`.
    pub retention: u32,
    /// `ENCRYPTION_SETTINGS`; the key (if any) is read when the service starts.
    pub encryption: EncryptionSettings,
}

impl fmt::Debug for BackupServiceSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password; the encryption settings keep their key redacted.
        f.debug_struct("BackupServiceSettings")
            .field("audit_stream", &self.audit_stream)
            .field("dir", &self.dir)
            .field("interval", &self.interval)
            .field("retention", &self.retention)
            .field(
                "encrypted",
                &(self.encryption.key.is_some() || self.encryption.key_file.is_some()),
            )
            .finish_non_exhaustive()
    }
}

impl BackupServiceSettings {
    /// The settings from config.
    ///
    /// # Errors
    /// One line when `REDIS_URL` is not set.
    pub fn from_config(cfg: &GekkoConfig) -> Result<Self, Vec<String>> {
        let Some(url) = &cfg.redis_url else {
            return Err(vec![
                "BACKUP_SETTINGS enabled=true needs REDIS_URL: with the in-process bus there are no streams to back up".to_owned(),
            ]);
        };
        Ok(Self {
            redis_url: url.clone(),
            audit_stream: cfg.audit_logging.stream.clone(),
            dir: cfg.backup.dir.clone(),
            interval: cfg.backup.interval,
            retention: cfg.backup.retention,
            encryption: cfg.encryption.clone(),
        })
    }
}

impl Service for BackupService {
    const NAME: &'static str = "backup";
    type Settings = BackupServiceSettings;

    fn resolve(cfg: &GekkoConfig) -> Result<Self::Settings, Vec<String>> {
        BackupServiceSettings::from_config(cfg)
    }

    async fn start(settings: Self::Settings, ctx: &ServiceCtx) -> Result<Started, BoxError> {
        // A key that cannot be read is a start failure, not a silent plain backup.
        let key = BackupKey::from_settings(&settings.encryption)?;
        metrics::describe_gauge!(
            METRIC_LAST_SUCCESS,
            "When the last backup snapshot was written (unix seconds)."
        );
        metrics::describe_counter!(METRIC_FAILURES, "Backup snapshots that failed.");
        metrics::describe_gauge!(METRIC_BYTES, "Size of the newest backup snapshot in bytes.");
        metrics::counter!(METRIC_FAILURES).absolute(0);
        let cancel = ctx.cancel();
        ctx.spawn("backup", async move {
            run_periodic(&settings, key.as_ref(), &cancel).await;
            Ok::<(), std::convert::Infallible>(())
        });
        Ok(Started::new())
    }
}

/// Takes a snapshot now and then every `settings.interval` until `cancel`; each
/// outcome is logged and recorded in the metrics.
pub(crate) async fn run_periodic(
    settings: &BackupServiceSettings,
    key: Option<&BackupKey>,
    cancel: &CancellationToken,
) {
    let mut conn: Option<MultiplexedConnection> = None;
    let mut tick = tokio::time::interval(settings.interval);
    // After a slow snapshot, wait a whole interval again rather than firing a burst.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        // A snapshot in progress is finished even when the stop comes meanwhile: it is
        // written through a temp file, and the drain's grace period bounds it.
        match once(settings, key, &mut conn).await {
            Ok(out) => {
                let secs = out.manifest.created_ms as f64 / 1000.0;
                metrics::gauge!(METRIC_LAST_SUCCESS).set(secs);
                metrics::gauge!(METRIC_BYTES).set(out.bytes as f64);
                tracing::info!(
                    path = %out.path.display(),
                    streams = out.manifest.streams.len(),
                    entries = out.manifest.total_entries(),
                    bytes = out.bytes,
                    pruned = out.pruned.len(),
                    encrypted = key.is_some(),
                    "backup snapshot written"
                );
            }
            Err(e) => {
                metrics::counter!(METRIC_FAILURES).increment(1);
                tracing::warn!(error = %e, "backup snapshot failed; retrying at the next interval");
                // Reconnect next time: the connection may be what failed.
                conn = None;
            }
        }
    }
}

async fn once(
    settings: &BackupServiceSettings,
    key: Option<&BackupKey>,
    conn: &mut Option<MultiplexedConnection>,
) -> Result<SnapshotOutcome, BackupError> {
    let c = match conn {
        Some(c) => c,
        None => conn.insert(connect(&settings.redis_url).await?),
    };
    take_snapshot(
        c,
        &settings.audit_stream,
        &settings.dir,
        settings.retention,
        key,
    )
    .await
}
