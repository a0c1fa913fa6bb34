//! Watches the env file and triggers a reload when it has been quiet for the debounce.
//!
//! The *directory* is watched, not the file: editors, `gekko secrets rotate` and
//! ConfigMaps replace a file by renaming another over it, which a watch on the old inode
//! would never see. Events for other files in the directory are ignored.

use std::path::PathBuf;
use std::time::Duration;

use notify_debouncer_full::notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, new_debouncer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::state::{ConfigStore, Outcome};

/// Starts the watcher; reloads run on the calling runtime until `cancel`.
///
/// # Errors
/// The directory cannot be watched.
pub fn spawn(
    store: ConfigStore,
    env_file: PathBuf,
    debounce: Duration,
    cancel: CancellationToken,
) -> Result<impl std::future::Future<Output = Result<(), String>> + Send, String> {
    let dir = env_file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), std::path::Path::to_path_buf);
    let name = env_file.file_name().map(std::ffi::OsStr::to_os_string);
    // The debouncer calls back on its own thread; an unbounded channel never blocks it,
    // and the reload task collapses a burst into one reload.
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let mut debouncer = new_debouncer(debounce, None, move |res: DebounceEventResult| {
        let ours = match res {
            Ok(events) => events.iter().any(|e| {
                e.paths
                    .iter()
                    .any(|p| p.file_name().map(std::ffi::OsStr::to_os_string) == name)
            }),
            Err(_) => true,
        };
        if ours {
            let _ = tx.send(());
        }
    })
    .map_err(|e| format!("cannot start the file watcher: {e}"))?;
    debouncer
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
    Ok(async move {
        // The debouncer stops when dropped: keep it for the life of the task.
        let _debouncer = debouncer;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                got = rx.recv() => {
                    if got.is_none() { return Ok(()); }
                    while rx.try_recv().is_ok() {}
                    match store.reload().await {
                        Outcome::Accepted(v) => tracing::info!(version = v, "config reloaded"),
                        Outcome::Rejected(p) => tracing::warn!(problems = p.len(), "config reload rejected"),
                        Outcome::Unchanged => tracing::debug!("env file touched, nothing changed"),
                    }
                }
            }
        }
    })
}
