//! Audit errors.

use std::path::PathBuf;

use crate::verify::BadEntry;

/// What went wrong with the audit trail.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The audit key could not be read or created, or is malformed. Never contains the key.
    #[error("audit key: {0}")]
    Key(String),
    /// The bus failed (Redis unreachable for the whole write deadline, or an error reply).
    /// An append that failed this way may or may not have landed; the next record re-reads
    /// the chain head before it writes, so the chain stays one chain either way.
    #[error("audit bus: {0}")]
    Bus(#[from] gekko_bus::BusError),
    /// The newest entry of the stream does not verify, so the log will not extend it:
    /// run `gekko audit verify` to see what is wrong.
    #[error("audit chain head on {stream} does not verify: {problem}")]
    BadHead {
        /// The stream.
        stream: String,
        /// What is wrong with the head entry.
        problem: String,
    },
    /// The chain does not verify where an operation needs it to (archiving refuses to seal
    /// entries that do not verify).
    #[error("audit chain on {stream} is broken: {bad}")]
    Broken {
        /// The stream.
        stream: String,
        /// The first bad entry.
        bad: Box<BadEntry>,
    },
    /// A sealed archive file could not be written, or cannot be read back.
    #[error("audit archive {path}: {reason}")]
    Archive {
        /// The archive file (or directory).
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The log is disabled (`AUDIT_LOGGING_SETTINGS enabled=false`) or was shut down.
    #[error("audit log is closed")]
    Closed,
    /// An export could not be written.
    #[error("audit export: {0}")]
    Io(#[from] std::io::Error),
}

impl AuditError {
    /// Whether retrying the same call later may succeed (Redis came back).
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, AuditError::Bus(e) if e.is_retryable())
    }
}
