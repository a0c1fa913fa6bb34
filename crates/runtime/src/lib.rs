//! Process plumbing shared by every gekko service.
//!
//! Each binary in `services/` is meant to be a thin `main.rs` that wires crates together.
//! The parts that every such process needs, and that must behave the same everywhere so
//! that operators can rely on them, live here instead of being copied into each `main`:
//!
//! - [`telemetry`]: one tracing subscriber (JSON or pretty logs on stdout, optional OTLP
//!   trace export) installed once per process.
//! - [`metrics`]: the global Prometheus recorder and the process-level metrics.
//! - [`health`]: the readiness latch that components hold, feeding `/readyz`, gRPC health
//!   and the `gekko_ready` gauge from one source of truth.
//! - [`http`]: the operational HTTP endpoints (`/metrics`, `/livez`, `/readyz`).
//! - [`shutdown`]: the shutdown tree: one root cancellation token, tracked tasks and a
//!   bounded drain.
//! - [`grpc`]: a gRPC server builder that always adds `grpc.health.v1` and reflection.
//! - [`hot`]: the config versions configd announces, followed by every hosted process
//!   and handed to its services as typed hot values (limits, thresholds, log level).
//! - [`service`] and [`host`]: what a service declares (pure settings, a start function,
//!   its gRPC registrations) and the host that runs any list of them with all of the
//!   above, so each binary's `main` is a few lines and every process behaves alike.
//!
//! Library errors are one [`RuntimeError`] enum; nothing here panics on bad input.

pub mod error;
pub mod grpc;
pub mod health;
pub mod host;
pub mod hot;
pub mod http;
pub mod metrics;
pub mod served;
pub mod service;
pub mod shutdown;
pub mod telemetry;

pub use error::RuntimeError;
pub use grpc::GrpcServer;
pub use health::{ComponentReport, Readiness, ReadyHandle};
pub use host::{Exit, GrpcComposer, Host, HostInfo, Lifecycle, OpenedInfo, error_chain};
pub use http::{http_router, serve_http, serve_https};
pub use metrics::{describe_common, install_prometheus};
pub use service::{BoxError, Provided, Service, ServiceCtx, ServiceEntry, Started};
pub use shutdown::{Shutdown, StopRequest};
pub use telemetry::{LogFormat, TelemetryConfig, TelemetryGuard};
