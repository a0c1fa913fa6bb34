//! `healthd`: the health aggregator as its own process.
//!
//! `HEALTHD_*` configure it (docs/deploy.md#health-aggregator-healthd); the gekko
//! variables (`REDIS_URL`, `MONITORING_CONFIGURATIONS`, `ACCESS_CONTROL_CONFIG`) are read
//! by the one loader as in every service. Exit codes are the host's: 64 for invalid
//! configuration (every problem of both printed, nothing bound), 69 unavailable, 70
//! internal.

use std::process::ExitCode;

use gekko_runtime::{Exit, Host};
use healthd::{HealthdService, HealthdSettings};

fn main() -> ExitCode {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut problems: Vec<String> = Vec::new();
    let settings = HealthdSettings::from_env()
        .map_err(|p| problems.extend(p))
        .ok();
    let loaded = gekko_config::load()
        .map_err(|e| problems.extend(e.problems.iter().map(ToString::to_string)))
        .ok();
    match (settings, loaded) {
        (Some(settings), Some(loaded)) if problems.is_empty() => {
            healthd::set_settings(settings);
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("healthd: cannot start the async runtime: {e}");
                    return Exit::Internal.into();
                }
            };
            rt.block_on(
                Host::new("healthd")
                    .service::<HealthdService>()
                    .run(loaded, &()),
            )
            .into()
        }
        _ => {
            eprintln!(
                "healthd: invalid configuration ({} problems):",
                problems.len()
            );
            for p in &problems {
                eprintln!("  - {p}");
            }
            Exit::Config.into()
        }
    }
}
