//! Backups of gekko's durable state (`BACKUP_SETTINGS`), and restoring them.
//!
//! gekko's durable state lives in Redis streams: the config versions (`gekko:config`,
//! written by configd), the order and fill records of every venue
//! (`gekko:{orders:<venue>}`, `gekko:{fills:<venue>}`), the audit trail
//! (`AUDIT_LOGGING_SETTINGS stream`, plus `<stream>:<program>` of services run alone) and
//! the kill-switch records (`gekko:kill_switch:<venue>`). Redis's own AOF protects against
//! a crash; a snapshot protects against losing the Redis (disk, operator, a bad
//! `FLUSHALL`), and can be copied elsewhere.
//!
//! - [`take_snapshot`] reads every such stream (`XRANGE`, paged, up to the stream's last id
//!   at the moment it is read) with each entry's id and fields, and each consumer group's
//!   position, and writes one file with a [manifest](Manifest) (time, streams, entry
//!   counts, SHA-256 of the body), atomically (a temp file, fsync, rename): a crash leaves
//!   the previous snapshots and at most a `.tmp` file, never a half snapshot under a
//!   snapshot's name. With an `ENCRYPTION_SETTINGS` key the body is sealed with
//!   XChaCha20-Poly1305 and the manifest is authenticated with it.
//! - [`prune`] keeps the newest `retention` snapshots.
//! - [`read_snapshot`] checks a file completely (format, manifest, hash, decryption,
//!   counts) before anything is written anywhere; [`restore`] then writes it into a Redis
//!   that must be empty (or, forced, replaces the snapshot's streams), with `XADD` and the
//!   original ids, so ids and order are preserved.
//! - [`BackupService`] is the `backup` service of `gekko up`: one snapshot at start-up and
//!   one every `interval`, with metrics.
//!
//! The file format is in [`format`].

mod error;
pub mod files;
pub mod format;
mod key;
mod redis_io;
mod service;

pub use error::BackupError;
pub use files::{SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX, list_snapshots, prune};
pub use format::{GroupPosition, Manifest, Snapshot, StreamData, StreamEntry, StreamManifest};
pub use key::BackupKey;
pub use redis_io::{
    RestoreOptions, RestoreOutcome, SnapshotOutcome, connect, durable_streams, read_streams,
    restore, take_snapshot,
};
pub use service::{
    BackupService, BackupServiceSettings, METRIC_BYTES, METRIC_FAILURES, METRIC_LAST_SUCCESS,
};

/// Reads and checks the snapshot in `path` (see [`format::decode`]).
///
/// # Errors
/// [`BackupError::Io`] when the file cannot be read, and the errors of [`format::decode`].
pub fn read_snapshot(
    path: &std::path::Path,
    key: Option<&BackupKey>,
) -> Result<Snapshot, BackupError> {
    let bytes = std::fs::read(path).map_err(|e| BackupError::Io {
        path: path.to_owned(),
        source: e,
    })?;
    format::decode(&bytes, key)
}
