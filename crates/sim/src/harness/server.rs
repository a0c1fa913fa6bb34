//! Starting and stopping a simulator: listeners, tracked tasks, cancellation, grace.
//!
//! Every simulator runs the same shape: bind its listeners *before* anything else (so a
//! port conflict fails `start` instead of a background task), serve HTTP and websockets
//! and tick its market on tasks tracked by one [`TaskTracker`], and stop them all through
//! one [`CancellationToken`]. [`Lifecycle`] owns that pair; dropping it cancels
//! everything, and [`Lifecycle::shutdown`] also waits, for a bounded grace period, so a
//! stuck connection can delay shutdown but never hang it.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::error::SimError;

/// How long [`Lifecycle::shutdown`] waits for tasks to finish by default.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Binds a listener; `what` names it in the error ("REST", "websocket").
///
/// # Errors
/// [`SimError::Io`] with the address and the bind error.
pub async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, SimError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| SimError::Io {
            what: format!("binding the {what} listener on {addr}"),
            source,
        })
}

/// An address a client can connect to: unspecified binds are reached over loopback.
#[must_use]
pub fn connectable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    }
}

/// The root of a simulator's shutdown tree and the tracker of all its tasks.
#[derive(Debug)]
pub struct Lifecycle {
    name: &'static str,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Drop for Lifecycle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Lifecycle {
    /// A fresh tree; `name` prefixes log lines (e.g. `"sim-binanceus"`).
    #[must_use]
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
        }
    }

    /// The root token: cancelled on shutdown or drop.
    #[must_use]
    pub fn token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// The task tracker (connection tasks spawn on it too).
    #[must_use]
    pub fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// Runs `task` on the tracker.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task);
    }

    /// Serves `router` on `listener` until cancellation (graceful: in-flight requests
    /// finish, within the shutdown grace).
    pub fn serve_http(&self, listener: TcpListener, router: axum::Router) {
        let cancel = self.cancel.clone();
        let name = self.name;
        self.tracker.spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(cancel.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "{name}: REST server failed");
            }
        });
    }

    /// Accepts TCP connections until cancellation; each accepted stream (with
    /// `TCP_NODELAY`) is handed to `on_conn`, whose future runs on the tracker.
    pub fn accept_loop<F, Fut>(&self, listener: TcpListener, on_conn: F)
    where
        F: Fn(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let cancel = self.cancel.clone();
        let tracker = self.tracker.clone();
        let name = self.name;
        self.tracker.spawn(async move {
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            tracker.spawn(on_conn(stream));
                        }
                        Err(e) => {
                            // E.g. out of file descriptors: back off instead of spinning.
                            tracing::warn!(error = %e, "{name}: websocket accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
        });
    }

    /// Calls `on_tick` once per `tick` while `paused()` is false, until cancellation.
    /// Missed ticks are skipped, not burst: a stalled runtime must not replay a backlog
    /// of market moves.
    pub fn ticker<P, T>(&self, tick: Duration, paused: P, mut on_tick: T)
    where
        P: Fn() -> bool + Send + 'static,
        T: FnMut() + Send + 'static,
    {
        let cancel = self.cancel.clone();
        self.tracker.spawn(async move {
            let mut iv = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    _ = iv.tick() => {
                        if !paused() {
                            on_tick();
                        }
                    }
                }
            }
        });
    }

    /// Cancels everything and waits at most `grace` for the tasks to finish.
    pub async fn shutdown(&self, grace: Duration) {
        self.cancel.cancel();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "{}: tasks still running after the shutdown grace period",
                self.name
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_binds_connect_over_loopback() {
        let any: SocketAddr = "0.0.0.0:9100".parse().expect("addr");
        assert_eq!(connectable(any), "127.0.0.1:9100".parse().expect("addr"));
        let lo: SocketAddr = "127.0.0.2:1".parse().expect("addr");
        assert_eq!(connectable(lo), lo);
    }

    #[tokio::test]
    async fn shutdown_cancels_and_waits_boundedly() {
        let l = Lifecycle::new("test");
        let token = l.token().clone();
        l.spawn(async move { token.cancelled().await });
        l.spawn(std::future::pending());
        let started = tokio::time::Instant::now();
        l.shutdown(Duration::from_millis(50)).await;
        assert!(l.token().is_cancelled());
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
