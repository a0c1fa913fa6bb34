//! `healthd`, the health aggregator: it polls every configured gekko service (each
//! replica DNS finds: `/readyz`, `grpc.health.v1`, the metrics alerts derive from), the
//! bus's Redis, Docker and the host, and serves the result as one tree.
//!
//! - [`settings`]: `HEALTHD_*` (read with `envy`, validated here, every problem at once);
//! - [`probe`]: discovery and the per-replica probes; [`promtext`] reads `/metrics`;
//! - [`infra`]: Redis `INFO` and latency, Docker through bollard, host memory and disk;
//! - [`model`]: the tree (service → replicas → components);
//! - [`alerts`]: open alerts, escalation, `gekko:alerts` and the webhook;
//! - [`poller`]: the loop and the shared state;
//! - [`grpc`]: `gekko.v1.HealthAggregator`; [`http`]: aggregate `/readyz`, `/health`,
//!   `/metrics`, the Alertmanager webhook and acknowledgements;
//! - [`service`]: the hosted service `main` runs on the runtime's `Host`.

pub mod alerts;
pub mod grpc;
pub mod http;
pub mod infra;
pub mod metrics;
pub mod model;
pub mod poller;
pub mod probe;
pub mod promtext;
pub mod service;
pub mod settings;

pub use alerts::ALERTS_STREAM;
pub use poller::HealthState;
pub use service::{HealthdService, set_settings};
pub use settings::HealthdSettings;
