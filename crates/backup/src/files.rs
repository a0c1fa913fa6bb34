//! Snapshot files in `BACKUP_SETTINGS dir`: atomic writes, listing and retention.
//!
//! A snapshot is named `gekko-backup-<ms since the epoch, 20 digits>.gkb`, so the names
//! sort in time order and retention needs no clock. Writing goes through
//! `.<name>.tmp` in the same directory: written, fsynced, renamed, then the directory is
//! fsynced, so a crash at any point leaves either the whole new file or none of it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::BackupError;

/// The start of every snapshot's file name.
pub const SNAPSHOT_PREFIX: &str = "gekko-backup-";
/// The end of every snapshot's file name.
pub const SNAPSHOT_SUFFIX: &str = ".gkb";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `bytes` as the snapshot taken at `created_ms` into `dir` (created if missing)
/// and returns its path. Two snapshots in one millisecond get successive names.
///
/// # Errors
/// [`BackupError::Io`] when the directory or the file cannot be written.
pub fn write_atomic(dir: &Path, created_ms: i64, bytes: &[u8]) -> Result<PathBuf, BackupError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut ms = created_ms.max(0);
    let (name, path) = loop {
        let name = format!("{SNAPSHOT_PREFIX}{ms:020}{SNAPSHOT_SUFFIX}");
        let path = dir.join(&name);
        if !path.exists() {
            break (name, path);
        }
        ms += 1;
    };
    let tmp = dir.join(format!(".{name}.tmp"));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        // The rename is durable only once the directory entry is.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(path.clone())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The snapshots in `dir`, oldest first. A missing directory has none.
///
/// # Errors
/// [`BackupError::Io`] when the directory exists but cannot be read.
pub fn list_snapshots(dir: &Path) -> Result<Vec<PathBuf>, BackupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with(SNAPSHOT_PREFIX) && n.ends_with(SNAPSHOT_SUFFIX)
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    Ok(out)
}

/// Deletes all but the newest `retention` snapshots in `dir`; returns what it deleted.
/// Other files in `dir` are never touched.
///
/// # Errors
/// [`BackupError::Io`] when the directory cannot be read or a file cannot be deleted.
pub fn prune(dir: &Path, retention: u32) -> Result<Vec<PathBuf>, BackupError> {
    let all = list_snapshots(dir)?;
    let keep = (retention as usize).max(1);
    let excess = all.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for p in all.into_iter().take(excess) {
        std::fs::remove_file(&p).map_err(io(&p))?;
        removed.push(p);
    }
    Ok(removed)
}
