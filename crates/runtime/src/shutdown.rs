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
    stop: Arc<StopLatch>,
}

/// Why and how a process was asked to stop, before anything is cancelled.
///
/// A trading process cannot just cancel its tokens on SIGTERM: the controller must first
/// stop entries, cancel working orders and perhaps flatten, while the gateways are still
/// running. So a stop is *requested* first ([`Shutdown::request_stop`], or a signal), the
/// host runs the shutdown steps, and only then triggers the cancellation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopRequest {
    /// The mode asked for; `None` means the configured default (a signal asks for none).
    pub mode: Option<gekko_config::ShutdownMode>,
    /// Who asked: `SIGTERM`, `SIGINT`, `grpc:<caller>`, or `cancelled` when the root token
    /// was cancelled directly (a service failure), in which case no step can run.
    pub origin: String,
}

/// The first stop request, and a notification for the waiter.
#[derive(Default)]
struct StopLatch {
    request: Mutex<Option<StopRequest>>,
    notify: tokio::sync::Notify,
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
            stop: Arc::default(),
        }
    }

    /// Asks the process to stop in `request.mode`, without cancelling anything yet: the
    /// host's [`wait_for_stop`](Self::wait_for_stop) returns the request, runs the
    /// shutdown steps, then triggers. The first request wins; later ones return `false`.
    pub fn request_stop(&self, request: StopRequest) -> bool {
        let mut slot = gekko_core::sync::lock(&self.stop.request);
        if slot.is_some() {
            return false;
        }
        tracing::info!(origin = %request.origin, mode = ?request.mode, "stop requested");
        *slot = Some(request);
        drop(slot);
        self.stop.notify.notify_one();
        true
    }

    /// Listens for SIGINT/SIGTERM from now on, in a task, and turns the first one into a
    /// stop request. Without it a signal that arrives while the process is still starting
    /// (before [`wait_for_stop`](Self::wait_for_stop) installs its handler, a window that
    /// includes the start-up banner) takes the default action and kills the process
    /// without its shutdown steps or final report.
    ///
    /// The handlers are installed before this returns (not when the task first runs), so
    /// a signal sent right after it is never missed.
    pub fn listen_for_signals(&self) {
        let this = self.clone();
        let stop = move |signal: &'static str| {
            tracing::info!(signal, "received shutdown signal");
            this.request_stop(StopRequest {
                mode: None,
                origin: signal.to_owned(),
            });
        };
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (term, int) = match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(term), Ok(int)) => (term, int),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(error = %e, "cannot listen for signals during start-up");
                    return;
                }
            };
            tokio::spawn(async move {
                let (mut term, mut int) = (term, int);
                tokio::select! {
                    _ = term.recv() => stop("SIGTERM"),
                    _ = int.recv() => stop("SIGINT"),
                }
            });
        }
        #[cfg(not(unix))]
        tokio::spawn(async move {
            stop(os_signal().await);
        });
    }

    /// The stop request made so far, if any.
    #[must_use]
    pub fn stop_request(&self) -> Option<StopRequest> {
        gekko_core::sync::lock(&self.stop.request).clone()
    }

    /// Waits for SIGINT/SIGTERM, a [`request_stop`](Self::request_stop), or the root token
    /// being cancelled, and returns the request without cancelling anything (call
    /// [`trigger`](Self::trigger) once the shutdown steps are done).
    pub async fn wait_for_stop(&self) -> StopRequest {
        loop {
            // Registered before the check, so a request made in between is not missed.
            let notified = self.stop.notify.notified();
            if let Some(request) = self.stop_request() {
                return request;
            }
            tokio::select! {
                signal = os_signal() => {
                    tracing::info!(signal, "received shutdown signal");
                    let request = StopRequest { mode: None, origin: signal.to_owned() };
                    self.request_stop(request);
                }
                () = notified => {}
                () = self.token.cancelled() => {
                    let request = StopRequest { mode: None, origin: "cancelled".to_owned() };
                    self.request_stop(request);
                }
            }
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
    async fn a_stop_request_is_returned_without_cancelling() {
        let shutdown = Shutdown::new();
        let other = shutdown.clone();
        let waiter = tokio::spawn(async move { other.wait_for_stop().await });
        tokio::task::yield_now().await;
        let asked = StopRequest {
            mode: Some(gekko_config::ShutdownMode::Flatten),
            origin: "grpc:ops".to_owned(),
        };
        assert!(shutdown.request_stop(asked.clone()));
        assert!(!shutdown.request_stop(StopRequest {
            mode: None,
            origin: "SIGTERM".to_owned(),
        }));
        let got = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("wait_for_stop did not return after a request")
            .expect("waiter panicked");
        assert_eq!(got, asked, "the first request wins");
        assert!(!shutdown.is_triggered(), "a request cancels nothing");
        // A request made before anybody waits is not lost either.
        assert_eq!(shutdown.wait_for_stop().await, asked);
    }

    #[tokio::test]
    async fn wait_for_stop_returns_when_cancelled_directly() {
        let shutdown = Shutdown::new();
        shutdown.trigger();
        let got = tokio::time::timeout(Duration::from_secs(5), shutdown.wait_for_stop())
            .await
            .expect("wait_for_stop did not return after cancellation");
        assert_eq!(got.origin, "cancelled");
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
