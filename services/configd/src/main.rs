//! `configd`: the config service as its own process.
//!
//! `CONFIGD_ENV_FILE` names the env file (plain, or sealed with `gekko secrets seal` and
//! opened with `ENCRYPTION_SETTINGS key=`/`key_file=` from the process environment).
//! Variables in configd's own environment win over the file and are fixed for its
//! lifetime. With `BACKUP_SETTINGS enabled=true` and `REDIS_URL` it also hosts the
//! `backup` service (a snapshot at start-up, then every `interval`). Exit codes are the
//! host's: 64 for invalid configuration (every problem printed, nothing bound), 69
//! unavailable, 70 internal.

use std::collections::BTreeMap;
use std::process::ExitCode;

use configd::{Bootstrap, ConfigdService, ConfigdSettings};
use gekko_backup::BackupService;
use gekko_runtime::{Exit, Host, ServiceEntry};

fn main() -> ExitCode {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut problems: Vec<String> = Vec::new();
    let settings = ConfigdSettings::from_env()
        .map_err(|p| problems.extend(p))
        .ok();
    let process_vars: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| configd::classify::is_gekko_variable(k))
        .collect();
    let key = match gekko_config::sealing_key(&process_vars) {
        None => None,
        Some(Ok(k)) => Some(k),
        Some(Err(why)) => {
            problems.push(format!("ENCRYPTION_SETTINGS: {why}"));
            None
        }
    };
    let first = settings
        .as_ref()
        .map(|s| configd::state::read_candidate(&s.env_file, key.as_ref(), &process_vars));
    match first {
        Some(Ok((vars, config))) if problems.is_empty() => {
            let settings = settings.expect("checked above");
            configd::set_bootstrap(Bootstrap {
                settings,
                key,
                process_vars,
                vars,
            });
            let loaded = gekko_config::Loaded {
                config,
                warnings: Vec::new(),
            };
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("configd: cannot start the async runtime: {e}");
                    return Exit::Internal.into();
                }
            };
            // Periodic snapshots of the durable streams (BACKUP_SETTINGS enabled=true with
            // REDIS_URL): configd hosts the backup service in a compose deployment, where
            // no `gekko up` runs it. One process per deployment should; configd is that one.
            let backups = (loaded.config.backup.enabled && loaded.config.redis_url.is_some())
                .then(ServiceEntry::of::<BackupService>);
            rt.block_on(
                Host::new("configd")
                    .service::<ConfigdService>()
                    .services(backups)
                    .run(loaded, &()),
            )
            .into()
        }
        other => {
            if let Some(Err(e)) = other {
                problems.extend(e.problems.iter().map(ToString::to_string));
            }
            eprintln!(
                "configd: invalid configuration ({} problems):",
                problems.len()
            );
            for p in &problems {
                eprintln!("  - {p}");
            }
            Exit::Config.into()
        }
    }
}
