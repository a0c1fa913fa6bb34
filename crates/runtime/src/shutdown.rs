//! The shutdown tree: one root token, tracked tasks, a bounded drain.
//!
//! `main` turns SIGINT/SIGTERM into cancelling one root [`CancellationToken`]. Components
//! get child tokens and `select!` on them, so cancelling the root reaches every loop, while
//! a component can still cancel its own subtree without stopping the process. Tasks are
//! spawned through [`Shutdown::spawn`] onto a [`TaskTracker`], never detached, so `main`
//! can wait for them to finish, and that wait has a deadline: a task that ignores
//! cancellation must not keep a container from stopping.
//!
//! The usual shape of `main`:
//!
//! ```no_run
//! # async fn example() {
//! use std::time::Duration;
//! use gekko_runtime::Shutdown;
//!
//! let shutdown = Shutdown::new();
//! let token = shutdown.child_token();
//! shutdown.spawn("worker", async move {
//!     token.cancelled().await;
//!     Ok::<(), std::io::Error>(())
//! });
//! shutdown.wait_for_signal().await;
//! if !shutdown.drain(Duration::from_secs(10)).await {
//!     // some task ignored cancellation; exit anyway
//! }
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt::{self, Display};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The root of a process's shutdown tree. Cheap to clone; clones share the token and tracker.
#[derive(Clone)]
pub struct Shutdown {
    token: CancellationToken,
    tracker: TaskTracker,
    running: Arc<Running>,
}

/// Names of the tracked tasks still running, so a drain that times out can say which.
///
/// Concurrency: a `std::sync::Mutex` around a small map, touched once when a task starts
/// and once when it ends (from a drop guard, so aborted and panicked tasks are removed
/// too); no lock is held across an await.
#[derive(Default)]
struct Running {
    next_id: AtomicU64,
    tasks: Mutex<BTreeMap<u64, &'static str>>,
}

impl Running {
    fn insert(self: &Arc<Self>, name: &'static str) -> RunningGuard {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        gekko_core::sync::lock(&self.tasks).insert(id, name);
        RunningGuard {
            running: Arc::clone(self),
            id,
        }
    }

    fn names(&self) -> Vec<&'static str> {
        gekko_core::sync::lock(&self.tasks)
            .values()
            .copied()
            .collect()
    }
}

/// Removes a task from [`Running`] when the task's future is dropped, however it ends.
struct RunningGuard {
    running: Arc<Running>,
    id: u64,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        gekko_core::sync::lock(&self.running.tasks).remove(&self.id);
    }
}

impl Shutdown {
    /// A fresh tree: an uncancelled root token and an open tracker.
    #[must_use]
    pub fn new() -> Self {
        Self {
            token: CancellationToken::new(),
            tracker: TaskTracker::new(),
            running: Arc::default(),
        }
    }

    /// The root token. Cancelling it shuts down the whole process.
    #[must_use]
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// A child of the root token: cancelled with the root, but cancelling it affects only
    /// its own subtree.
    #[must_use]
    pub fn child_token(&self) -> CancellationToken {
        self.token.child_token()
    }

    /// The tracker behind [`spawn`](Self::spawn), for code that spawns onto a
    /// `TaskTracker` itself (the gateway engine, the inference batcher). Tasks spawned on it
    /// are waited for by [`drain`](Self::drain) like named ones, but a drain that times out
    /// cannot name them.
    #[must_use]
    pub fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// Whether shutdown has begun.
    #[must_use]
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Spawns a tracked task named `name` on the current Tokio runtime.
    ///
    /// The task should watch a token from this tree and return when it is cancelled. If it
    /// returns an `Err`, the error is logged with the task's name; the process is not
    /// stopped (call [`trigger`](Self::trigger) from the task for that). Returning before
    /// shutdown began is logged too, since a long-lived task ending early is usually a bug.
    ///
    /// # Panics
    ///
    /// Like [`tokio::spawn`], panics when called outside a Tokio runtime.
    pub fn spawn<F, E>(&self, name: &'static str, fut: F) -> JoinHandle<()>
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Display + Send + 'static,
    {
        let guard = self.running.insert(name);
        let token = self.token.clone();
        self.tracker.spawn(async move {
            let _guard = guard;
            tracing::debug!(task = name, "task started");
            match fut.await {
                Ok(()) if token.is_cancelled() => tracing::debug!(task = name, "task finished"),
                Ok(()) => tracing::info!(task = name, "task finished before shutdown"),
                Err(err) => tracing::error!(task = name, error = %err, "task failed"),
            }
        })
    }

    /// Starts shutdown: cancels the root token and so every child token.
    pub fn trigger(&self) {
        if !self.token.is_cancelled() {
            tracing::info!("shutdown triggered");
        }
        self.token.cancel();
    }

    /// Waits for SIGINT or SIGTERM (Ctrl-C where there are no Unix signals), then
    /// cancels the root token. Also returns, without waiting for a signal, once someone
    /// else cancels the token.
    ///
    /// If the SIGTERM handler cannot be installed the failure is logged and only SIGINT
    /// is awaited; if neither can be, only cancellation ends the wait.
    pub async fn wait_for_signal(&self) {
        tokio::select! {
            signal = os_signal() => {
                tracing::info!(signal, "received shutdown signal");
                self.trigger();
            }
            () = self.token.cancelled() => {}
        }
    }

    /// Closes the tracker and waits up to `grace` for every tracked task to finish.
    ///
    /// Returns `true` when all tasks finished, `false` when the grace period ran out; the
    /// names of the tasks still running are logged. It does not cancel anything itself:
    /// call [`trigger`](Self::trigger) (or [`wait_for_signal`](Self::wait_for_signal))
    /// first. After `drain`, [`spawn`](Self::spawn) still works but nothing waits for the
    /// new tasks.
    pub async fn drain(&self, grace: Duration) -> bool {
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
        {
            tracing::info!("all tasks finished");
            return true;
        }
        let stuck = self.running();
        tracing::warn!(
            count = stuck.len(),
            tasks = ?stuck,
            grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
            "tasks still running after the shutdown grace period"
        );
        false
    }

    /// Names of the tracked tasks that have not finished yet.
    #[must_use]
    pub fn running(&self) -> Vec<&'static str> {
        self.running.names()
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.token.is_cancelled())
            .field("running", &self.running())
            .finish_non_exhaustive()
    }
}

/// Resolves with the signal's name when SIGINT or SIGTERM arrives; never resolves if no
/// handler could be installed.
#[cfg(unix)]
async fn os_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};

    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => Some(term),
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGTERM; only SIGINT stops the process");
            None
        }
    };
    let sigterm = async {
        match term.as_mut() {
            Some(term) => {
                term.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = sigint() => "SIGINT",
        () = sigterm => "SIGTERM",
    }
}

/// Resolves when Ctrl-C arrives; never resolves if no handler could be installed.
#[cfg(not(unix))]
async fn os_signal() -> &'static str {
    sigint().await;
    "ctrl-c"
}

async fn sigint() {
    if let Err(err) = tokio::signal::ctrl_c().await {
        tracing::warn!(error = %err, "cannot listen for SIGINT");
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    #[tokio::test]
    async fn tasks_observe_cancellation_and_drain_completes() {
        let shutdown = Shutdown::new();
        let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
        for name in ["a", "b"] {
            let token = shutdown.child_token();
            let seen = seen_tx.clone();
            shutdown.spawn(name, async move {
                token.cancelled().await;
                let _ = seen.send(name);
                Ok::<(), Infallible>(())
            });
        }
        drop(seen_tx);
        assert_eq!(shutdown.running().len(), 2);

        shutdown.trigger();
        assert!(shutdown.drain(Duration::from_secs(5)).await);
        let mut seen = Vec::new();
        while let Some(name) = seen_rx.recv().await {
            seen.push(name);
        }
        seen.sort_unstable();
        assert_eq!(seen, ["a", "b"]);
        assert!(shutdown.running().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn drain_gives_up_on_a_task_that_ignores_cancellation() {
        let shutdown = Shutdown::new();
        shutdown.spawn("stubborn", async {
            tokio::time::sleep(Duration::from_hours(1)).await;
            Ok::<(), Infallible>(())
        });
        let token = shutdown.child_token();
        shutdown.spawn("polite", async move {
            token.cancelled().await;
            Ok::<(), Infallible>(())
        });

        shutdown.trigger();
        assert!(!shutdown.drain(Duration::from_millis(100)).await);
        assert_eq!(shutdown.running(), ["stubborn"]);
    }

    #[tokio::test]
    async fn failing_task_is_logged_not_propagated() {
        let shutdown = Shutdown::new();
        let handle = shutdown.spawn("fails", async { Err::<(), _>("boom") });
        handle.await.expect("task must not panic");
        assert!(shutdown.drain(Duration::from_secs(1)).await);
    }

    #[tokio::test]
    async fn wait_for_signal_returns_when_cancelled_elsewhere() {
        let shutdown = Shutdown::new();
        let other = shutdown.clone();
        let waiter = tokio::spawn(async move { other.wait_for_signal().await });
        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("wait_for_signal did not return after cancellation")
            .expect("waiter panicked");
        assert!(shutdown.is_triggered());
        assert!(shutdown.child_token().is_cancelled());
    }
}
