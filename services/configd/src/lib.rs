//! `configd`, the config service: the whole environment configuration, validated by
//! gekko's one loader, versioned, hot-reloaded from an env file (plain or sealed), and
//! served over the runtime's authenticated gRPC server as `gekko.v1.ConfigService`.
//!
//! - [`settings`]: configd's own `CONFIGD_*` settings (read with `envy`, validated here);
//! - [`state`]: the versions, reload (validate the whole candidate, then swap) and their
//!   record on the `gekko:config` stream and pub/sub channel;
//! - [`classify`]: hot or restart-needed per variable, diffs, redaction;
//! - [`watcher`]: the debounced `notify` watch on the file's directory;
//! - [`grpc`]: `GetConfig`, `GetSecrets`, `Validate`, `Watch`;
//! - [`service`]: the hosted service `main` runs on the runtime's `Host`.

pub mod classify;
pub mod grpc;
pub mod metrics;
pub mod service;
pub mod settings;
pub mod state;
pub mod watcher;

pub use service::{Bootstrap, ConfigdService, set_bootstrap};
pub use settings::ConfigdSettings;
pub use state::{CONFIG_CHANNEL, CONFIG_STREAM, ConfigStore, Outcome};
