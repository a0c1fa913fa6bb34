//! The tamper-evident audit trail (`AUDIT_LOGGING_SETTINGS`).
//!
//! Every audited action (order commands and their outcomes, cancels, close-positions,
//! auth failures, config changes, secret access, MCP tool calls, start-up and shutdown)
//! becomes one entry on one durable stream. Each entry carries its position (`seq`), the
//! previous entry's hash and its own, and an HMAC-SHA256 of its hash under the audit key
//! ([`entry`] describes the encoding). Together they detect an edited entry, a deleted
//! one and a reordered pair, and [`verify()`] names the first entry that fails.
//!
//! - [`AuditLog`] is the writer every service records through (`ServiceCtx::audit()` in
//!   the runtime). Appends are serialised within a process; on open it reads the chain
//!   head, so the chain continues across restarts.
//! - **One stream, one writer process.** Two processes appending to one stream would
//!   fork the chain. `gekko up` writes the configured stream; a service binary run alone
//!   writes [`program_stream`] (`<stream>:<program>`).
//! - [`archive`]: entries older than `retention_days` are sealed (XChaCha20-Poly1305)
//!   into files in `archive_dir` and only then trimmed from the stream; verification reads
//!   the archives and then the stream as one chain.
//! - [`key`]: where the key comes from; without one configured, a random key is generated
//!   into `<archive_dir>/audit.key` (mode 0600) with a warning, and [`key_source`] lets
//!   the security posture check report it.
//!
//! An in-process bus (no `REDIS_URL`) keeps the chain in memory only: it verifies while
//! the process runs and is gone when it exits. `gekko audit verify` needs Redis.

pub mod archive;
pub mod entry;
mod error;
pub mod key;
mod log;
pub mod time;
pub mod verify;

pub use archive::{ArchiveHeader, ArchiveOutcome};
pub use entry::{AuditRecord, Entry};
pub use error::AuditError;
pub use key::{AuditKey, KeyMode, KeySource, key_source};
pub use log::{AuditEntryId, AuditLog, RETRY_FOR, program_stream};
pub use verify::{BadEntry, ChainHead, Location, Problem, VerifyReport, export, verify};

/// Seals the entries of `stream` older than `retention` into `archive_dir` and trims them
/// from the stream; what `gekko audit archive` runs. See [`archive`].
///
/// # Errors
/// [`AuditError::Broken`] when the entries to archive do not verify (nothing is archived
/// or trimmed), [`AuditError::Archive`] when a file cannot be written or read back, and
/// bus failures.
pub async fn archive_expired(
    bus: &dyn gekko_bus::Bus,
    key: &AuditKey,
    stream: &str,
    archive_dir: &std::path::Path,
    retention: std::time::Duration,
) -> Result<ArchiveOutcome, AuditError> {
    archive::archive_expired(
        bus,
        key,
        stream,
        archive_dir,
        retention,
        gekko_core::now_ms(),
    )
    .await
}
