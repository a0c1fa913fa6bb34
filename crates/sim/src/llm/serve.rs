//! Serving the router: one task accepts, one task per connection.
//!
//! Not `axum::serve` with a graceful shutdown, because stopping must not wait for
//! anything: a hung request ([`super::Fault::Hang`]) or a slow stream would otherwise hold
//! the shutdown for its whole grace. Each connection task races its connection against
//! the simulator's cancellation token and simply drops it on cancel, which closes the
//! socket; the accept task drops the listener, so the port is free once every task has
//! finished, which [`crate::harness::Lifecycle::shutdown`] waits for.

use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::harness::Lifecycle;

pub(crate) fn serve(lifecycle: &Lifecycle, listener: TcpListener, router: axum::Router) {
    let cancel = lifecycle.token().clone();
    let tracker = lifecycle.tracker().clone();
    lifecycle.spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = cancel.cancelled() => break,
                a = listener.accept() => a,
            };
            let stream = match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "sim-llm: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let (router, cancel) = (router.clone(), cancel.clone());
            tracker.spawn(async move {
                let builder = Builder::new(TokioExecutor::new());
                let conn = builder
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(router));
                tokio::select! {
                    r = conn => if let Err(e) = r {
                        tracing::debug!(error = %e, "sim-llm: connection ended with an error");
                    },
                    () = cancel.cancelled() => {}
                }
            });
        }
    });
}
