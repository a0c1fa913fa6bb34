//! The writer: [`AuditLog`], the one handle every part of a process records through.
//!
//! Appends are serialised by one async mutex over the chain head: an entry's hash
//! commits to the previous entry's, so two entries cannot be built at once. The lock is
//! held across the bus round trip on purpose. That bounds the rate to one append per
//! round trip (thousands per second on a local Redis), which is plenty for an audit trail,
//! and in exchange no entry ever has to be re-signed.
//!
//! When an append fails, the entry may or may not have reached Redis (the bus cannot
//! tell). The head is then marked unknown and the next record re-reads the stream's newest
//! entry first and continues from whatever is really there, so a failed write never forks
//! the chain or leaves a gap.
//!
//! A detached record whose write fails is retried, in order (later records wait behind
//! it), for up to [`RETRY_FOR`], so a short Redis outage costs no entry; an append that
//! failed ambiguously and is retried may leave the entry twice, which is better than not
//! at all. The log says whether its writer is failing ([`AuditLog::is_failing`],
//! [`AuditLog::failing_watch`]): from a failed write or a dropped record until the next
//! write lands. The gateways refuse new orders while it is (docs/security.md).

use std::sync::Arc;
use std::time::Duration;

use gekko_bus::{Bus, StreamSpec};
use gekko_config::AuditLogging;
use gekko_core::backoff::{Backoff, BackoffConfig};
use tokio::sync::{Mutex, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::AuditError;
use crate::archive::{self, ArchiveOutcome};
use crate::entry::{AuditRecord, Entry, GENESIS};
use crate::key::{AuditKey, KeyMode, KeySource};
use crate::verify::{self, Chain, Location, VerifyReport};

/// How many detached records may wait for the writer before new ones are dropped (and
/// counted): a bound, so a dead Redis cannot grow memory without limit.
const DETACHED_QUEUE: usize = 4_096;

/// How long a detached record whose write fails is retried before it is dropped (and
/// counted). After one is dropped, later records get one attempt each until a write
/// lands again, so a dead Redis cannot hold the shutdown flush for minutes.
pub const RETRY_FOR: Duration = Duration::from_secs(10);

/// Where an entry landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntryId {
    /// Its position in the chain.
    pub seq: u64,
    /// Its stream entry id.
    pub stream_id: String,
}

/// The audit trail of one process. Cheap to clone; clones share one chain.
///
/// Built by the host after the bus ([`AuditLog::open`]), or [`AuditLog::disabled`] when
/// `AUDIT_LOGGING_SETTINGS enabled=false` (then every record is a no-op).
#[derive(Clone)]
pub struct AuditLog {
    inner: Option<Arc<Writer>>,
    detached: Option<mpsc::Sender<Detached>>,
}

impl AuditLog {
    /// Whether the writer is failing now: a write failed or a record was dropped, and no
    /// write has landed since. Always `false` when disabled.
    #[must_use]
    pub fn is_failing(&self) -> bool {
        self.inner.as_deref().is_some_and(|w| *w.failing.borrow())
    }

    /// A receiver that sees every change of [`AuditLog::is_failing`]; `None` when
    /// disabled. Its `changed()` ends with an error once every clone of the log is gone.
    #[must_use]
    pub fn failing_watch(&self) -> Option<watch::Receiver<bool>> {
        self.inner.as_deref().map(|w| w.failing.subscribe())
    }
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            None => f.write_str("AuditLog(disabled)"),
            Some(w) => f
                .debug_struct("AuditLog")
                .field("stream", &w.spec.name)
                .field("writer", &w.writer)
                .field("key_id", &w.key.id())
                .finish_non_exhaustive(),
        }
    }
}

enum Detached {
    Record(AuditRecord),
    Flush(oneshot::Sender<()>),
}

struct Writer {
    bus: Arc<dyn Bus>,
    spec: StreamSpec,
    writer: String,
    key: AuditKey,
    key_source: KeySource,
    archive_dir: std::path::PathBuf,
    retention: Duration,
    /// The chain head: `None` until read from the stream, and again after a failed append.
    head: Mutex<Option<Head>>,
    /// `true` from a failed write or a dropped record until the next write lands.
    failing: watch::Sender<bool>,
}

#[derive(Debug, Clone, Copy)]
struct Head {
    seq: u64,
    hash: [u8; 32],
}

/// The stream a program writes when it is not the one that owns the configured stream:
/// `<stream>:<program>`. One stream has one writer process (appends are serialised within
/// a process, not across processes), so a service binary run on its own writes here
/// while `gekko up` writes the configured stream.
#[must_use]
pub fn program_stream(settings: &AuditLogging, program: &str) -> String {
    format!("{}:{program}", settings.stream)
}

impl AuditLog {
    /// Opens the audit trail on `settings.stream`, as `writer` (the program name). See
    /// [`AuditLog::open_stream`].
    ///
    /// # Errors
    /// As [`AuditLog::open_stream`].
    pub async fn open(
        bus: Arc<dyn Bus>,
        settings: &AuditLogging,
        writer: &str,
    ) -> Result<Self, AuditError> {
        Self::open_stream(bus, settings, &settings.stream, writer).await
    }

    /// Opens the audit trail on `stream`: loads (or generates, with a warning) the key and
    /// reads the chain head, so appends continue the chain a previous run left. Returns
    /// [`AuditLog::disabled`] when `settings.enabled` is false.
    ///
    /// An unreachable bus is not an error: the head is read on the first record instead.
    /// Spawns the writer task behind [`AuditLog::record_detached`] on the current Tokio
    /// runtime; it ends when the last clone is dropped.
    ///
    /// # Errors
    /// [`AuditError::Key`] when the key cannot be loaded or created;
    /// [`AuditError::BadHead`] when the stream's newest entry does not verify under the key.
    pub async fn open_stream(
        bus: Arc<dyn Bus>,
        settings: &AuditLogging,
        stream: &str,
        writer: &str,
    ) -> Result<Self, AuditError> {
        if !settings.enabled {
            return Ok(Self::disabled());
        }
        let (key, key_source) = AuditKey::load(settings, KeyMode::CreateIfMissing)?;
        let w = Arc::new(Writer {
            bus,
            spec: StreamSpec::durable(stream),
            writer: writer.to_owned(),
            key,
            key_source,
            archive_dir: settings.archive_dir.clone(),
            retention: Duration::from_secs(u64::from(settings.retention_days) * 86_400),
            head: Mutex::new(None),
            failing: watch::Sender::new(false),
        });
        {
            let mut head = w.head.lock().await;
            match w.read_head().await {
                Ok(h) => *head = Some(h),
                Err(e @ AuditError::BadHead { .. }) => return Err(e),
                Err(e) => {
                    tracing::warn!(stream, error = %e, "cannot read the audit chain head yet; will retry on the first record");
                }
            }
        }
        let (tx, rx) = mpsc::channel(DETACHED_QUEUE);
        tokio::spawn(detached_writer(w.clone(), rx));
        tracing::info!(stream, writer, key_id = w.key.id(), key = %w.key_source, "audit trail open");
        Ok(Self {
            inner: Some(w),
            detached: Some(tx),
        })
    }

    /// A log that records nothing (`enabled=false`).
    #[must_use]
    pub fn disabled() -> Self {
        Self {
            inner: None,
            detached: None,
        }
    }

    /// Whether records are written.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The stream written, when enabled.
    #[must_use]
    pub fn stream(&self) -> Option<&str> {
        self.inner.as_deref().map(|w| w.spec.name.as_str())
    }

    /// Where the key came from, when enabled (for the posture check).
    #[must_use]
    pub fn key_source(&self) -> Option<&KeySource> {
        self.inner.as_deref().map(|w| &w.key_source)
    }

    /// Appends one entry and returns where it landed: durable once this returns `Ok`
    /// (Redis replied). `Ok(None)` when the log is disabled.
    ///
    /// # Errors
    /// [`AuditError::Bus`] when the bus stayed unavailable for its write deadline (the
    /// entry may or may not have landed; the chain stays consistent either way);
    /// [`AuditError::BadHead`] when the stream's newest entry does not verify, so the
    /// chain cannot be extended.
    pub async fn record(&self, rec: AuditRecord) -> Result<Option<AuditEntryId>, AuditError> {
        match &self.inner {
            None => Ok(None),
            Some(w) => w.record(rec).await.map(Some),
        }
    }

    /// Records from a context that cannot wait (a sync callback, a tonic interceptor).
    /// Never blocks: the record is queued for a writer task, in order. When the queue is
    /// full the record is dropped; write failures and drops are logged and counted
    /// (`gekko_audit_write_failures_total`, `gekko_audit_dropped_total`).
    pub fn record_detached(&self, rec: AuditRecord) {
        let Some(tx) = &self.detached else { return };
        if let Err(e) = tx.try_send(Detached::Record(rec)) {
            let action = match &e {
                mpsc::error::TrySendError::Full(Detached::Record(r))
                | mpsc::error::TrySendError::Closed(Detached::Record(r)) => r.action.clone(),
                _ => String::new(),
            };
            metrics::counter!("gekko_audit_dropped_total").increment(1);
            if let Some(w) = &self.inner {
                w.set_failing(true);
            }
            tracing::error!(
                action,
                "audit record dropped: the audit writer's queue is full or closed"
            );
        }
    }

    /// Waits until every record queued by [`AuditLog::record_detached`] before this call
    /// has been written (or has failed). The host calls it during shutdown.
    pub async fn flush(&self) {
        let Some(tx) = &self.detached else { return };
        let (done, wait) = oneshot::channel();
        if tx.send(Detached::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Verifies this log's whole chain (archives, then the stream). See [`crate::verify()`].
    ///
    /// # Errors
    /// [`AuditError::Closed`] when disabled; bus and archive-directory failures.
    pub async fn verify(&self) -> Result<VerifyReport, AuditError> {
        let w = self.inner.as_deref().ok_or(AuditError::Closed)?;
        verify::verify(&*w.bus, &w.key, &w.spec.name, &w.archive_dir).await
    }

    /// Seals the entries older than `retention_days` into `archive_dir` and trims them
    /// from the stream (see [`crate::archive`]). A no-op when disabled.
    ///
    /// # Errors
    /// As [`crate::archive_expired`].
    pub async fn archive_expired(&self) -> Result<ArchiveOutcome, AuditError> {
        let Some(w) = self.inner.as_deref() else {
            return Ok(ArchiveOutcome::default());
        };
        archive::archive_expired(
            &*w.bus,
            &w.key,
            &w.spec.name,
            &w.archive_dir,
            w.retention,
            gekko_core::now_ms(),
        )
        .await
    }

    /// Runs [`AuditLog::archive_expired`] now and then every `every` until `cancel` fires;
    /// failures are logged and counted, never fatal. The host runs this as a tracked task.
    pub async fn run_retention(&self, every: Duration, cancel: CancellationToken) {
        if !self.is_enabled() {
            return;
        }
        loop {
            if let Err(e) = self.archive_expired().await {
                metrics::counter!("gekko_audit_archive_failures_total").increment(1);
                tracing::error!(error = %e, "audit retention run failed; entries stay on the stream");
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}

impl Writer {
    /// Records whether the writer is failing; wakes watchers only on a change.
    fn set_failing(&self, failing: bool) {
        self.failing.send_if_modified(|f| {
            let changed = *f != failing;
            *f = failing;
            changed
        });
    }

    /// Reads and checks the stream's newest entry.
    async fn read_head(&self) -> Result<Head, AuditError> {
        let stream = &self.spec.name;
        let Some(d) = self.bus.last_entry(stream).await? else {
            return Ok(Head {
                seq: 0,
                hash: GENESIS,
            });
        };
        let e = Entry::parse(&d.payload).map_err(|problem| AuditError::BadHead {
            stream: stream.clone(),
            problem: format!("entry {}: {problem}", d.id),
        })?;
        // Check the entry on its own (hash, MAC, key), trusting its own seq and prev: the
        // full chain is `gekko audit verify`'s job, not every start's.
        let (_, prev) = e.hashes().map_err(|problem| AuditError::BadHead {
            stream: stream.clone(),
            problem,
        })?;
        let mut one = Chain::after(&self.key, e.seq.saturating_sub(1), prev);
        let location = Location::Stream {
            stream: stream.clone(),
            id: d.id.clone(),
        };
        let e = one
            .check(&location, &d.payload, None)
            .map_err(|bad| AuditError::BadHead {
                stream: stream.clone(),
                problem: bad.to_string(),
            })?;
        Ok(Head {
            seq: e.seq,
            hash: one.prev,
        })
    }

    async fn record(&self, rec: AuditRecord) -> Result<AuditEntryId, AuditError> {
        let result = self.append(rec).await;
        self.set_failing(result.is_err());
        result
    }

    async fn append(&self, rec: AuditRecord) -> Result<AuditEntryId, AuditError> {
        let mut head = self.head.lock().await;
        let h = match *head {
            Some(h) => h,
            None => self.read_head().await?,
        };
        let seq = h.seq + 1;
        let action = rec.action.clone();
        let entry = Entry::seal(
            &self.key,
            seq,
            gekko_core::now_ms(),
            &self.writer,
            rec,
            &h.hash,
        );
        match self.bus.append(&self.spec, entry.to_bytes()).await {
            Ok(stream_id) => {
                let (hash, _) = entry.hashes().map_err(|problem| AuditError::BadHead {
                    stream: self.spec.name.clone(),
                    problem,
                })?;
                *head = Some(Head { seq, hash });
                metrics::counter!("gekko_audit_records_total").increment(1);
                tracing::debug!(seq, %stream_id, action, "audit entry written");
                Ok(AuditEntryId { seq, stream_id })
            }
            Err(e) => {
                // It may have landed: re-read the head before the next append.
                *head = None;
                metrics::counter!("gekko_audit_write_failures_total").increment(1);
                Err(e.into())
            }
        }
    }
}

async fn detached_writer(w: Arc<Writer>, mut rx: mpsc::Receiver<Detached>) {
    // After a record was given up on, the next ones get one attempt each until a write
    // lands (see RETRY_FOR).
    let mut degraded = false;
    while let Some(item) = rx.recv().await {
        match item {
            Detached::Record(rec) => {
                let action = rec.action.clone();
                let give_up =
                    tokio::time::Instant::now() + if degraded { Duration::ZERO } else { RETRY_FOR };
                let mut backoff = Backoff::new(BackoffConfig::new(
                    Duration::from_millis(100),
                    Duration::from_secs(2),
                ));
                loop {
                    match w.record(rec.clone()).await {
                        Ok(_) => {
                            degraded = false;
                            break;
                        }
                        Err(e) => {
                            let wait = backoff.next_delay();
                            if tokio::time::Instant::now() + wait < give_up {
                                tracing::warn!(action, error = %e, ?wait, "audit record not written yet; retrying");
                                tokio::time::sleep(wait).await;
                                continue;
                            }
                            degraded = true;
                            metrics::counter!("gekko_audit_dropped_total").increment(1);
                            tracing::error!(action, error = %e, "audit record not written: dropped");
                            break;
                        }
                    }
                }
            }
            Detached::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}
