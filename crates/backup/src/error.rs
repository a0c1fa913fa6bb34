//! Backup and restore errors.

use std::path::PathBuf;

/// What went wrong taking, reading or restoring a snapshot. Never contains a key.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Redis failed or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a gekko snapshot, or is damaged or truncated: its format, its
    /// manifest, or the hash of its body does not check.
    #[error("not a valid snapshot: {0}")]
    Invalid(String),
    /// The snapshot is encrypted and no key is configured, the configured key is not the
    /// one it was sealed under, or it fails authentication.
    #[error("snapshot encryption: {0}")]
    Key(String),
    /// The restore target holds data and `force` was not given.
    #[error(
        "the target Redis is not empty ({keys} keys); restore only into an empty Redis, or pass --force to replace the snapshot's streams"
    )]
    NotEmpty {
        /// How many keys it holds.
        keys: u64,
    },
    /// Redis answered something a snapshot cannot represent (an unexpected reply shape).
    #[error("unexpected reply from redis: {0}")]
    Reply(String),
}
