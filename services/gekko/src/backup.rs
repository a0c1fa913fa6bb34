//! `gekko backup now`: one snapshot of the durable streams, from the command line.
//!
//! It writes exactly what the periodic `backup` service of `gekko up` writes (see
//! `gekko_backup`): one file in `BACKUP_SETTINGS dir`, sealed with the
//! `ENCRYPTION_SETTINGS` key when one is configured, then keeps the newest `retention`.
//! It works whether or not `BACKUP_SETTINGS enabled` is set: `enabled` only turns the
//! periodic service on.
//!
//! Exit codes: 0 written; 64 configuration (no `REDIS_URL`, an unreadable key file);
//! 69 Redis cannot be reached; 70 the file cannot be written.

use clap::{Args, Subcommand};
use gekko_backup::{BackupError, BackupKey};
use gekko_config::Loaded;

use crate::exit::Exit;

/// `gekko backup` and its subcommands.
#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    #[command(subcommand)]
    command: BackupCommand,
}

#[derive(Debug, Subcommand)]
enum BackupCommand {
    /// Take one snapshot now into BACKUP_SETTINGS dir (needs REDIS_URL).
    Now,
}

/// Runs `gekko backup …` with the validated config.
pub(crate) async fn run(loaded: Loaded, args: BackupArgs) -> Exit {
    let BackupCommand::Now = args.command;
    let cfg = &loaded.config;
    let Some(url) = cfg.redis_url.as_deref() else {
        eprintln!("gekko backup: {}", no_redis());
        return Exit::Config;
    };
    let key = match BackupKey::from_settings(&cfg.encryption) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("gekko backup: {e}");
            return Exit::Config;
        }
    };
    let mut conn = match gekko_backup::connect(url).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "gekko backup: cannot reach Redis at {}: {e}",
                gekko_bus::redis_bus_redact(url)
            );
            return Exit::Unavailable;
        }
    };
    match gekko_backup::take_snapshot(
        &mut conn,
        &cfg.audit_logging.stream,
        &cfg.backup.dir,
        cfg.backup.retention,
        key.as_ref(),
    )
    .await
    {
        Ok(out) => {
            println!(
                "gekko backup: {} ({} bytes, {}): {} entries in {} streams",
                out.path.display(),
                out.bytes,
                match &key {
                    Some(k) => format!("encrypted, key id {}", k.id()),
                    None => "NOT encrypted: no ENCRYPTION_SETTINGS key".to_owned(),
                },
                out.manifest.total_entries(),
                out.manifest.streams.len()
            );
            for s in &out.manifest.streams {
                println!(
                    "  {} {} entries{}",
                    s.name,
                    s.entries,
                    if s.groups.is_empty() {
                        String::new()
                    } else {
                        format!(", {} consumer group(s)", s.groups.len())
                    }
                );
            }
            for p in &out.pruned {
                println!(
                    "  removed (retention {}): {}",
                    cfg.backup.retention,
                    p.display()
                );
            }
            Exit::Ok
        }
        Err(e @ BackupError::Redis(_)) => {
            eprintln!("gekko backup: {e}");
            Exit::Unavailable
        }
        Err(e) => {
            eprintln!("gekko backup: {e}");
            Exit::Internal
        }
    }
}

/// Why a backup command needs `REDIS_URL`.
pub(crate) fn no_redis() -> &'static str {
    "REDIS_URL is not set. Without Redis, gekko up keeps its streams in its own memory \
     (the in-process bus) and nothing durable exists to back up or restore into. Set \
     REDIS_URL to the Redis gekko up writes to."
}

/// `gekko check`'s `backup` row: what the periodic service will do, and why it will not
/// run with the in-process bus.
pub(crate) fn check_row(cfg: &gekko_config::GekkoConfig) -> crate::check::Row {
    use crate::check::Status;
    let b = &cfg.backup;
    let sealed = if cfg.encryption.key.is_some() || cfg.encryption.key_file.is_some() {
        "encrypted with the ENCRYPTION_SETTINGS key"
    } else {
        "NOT encrypted (no ENCRYPTION_SETTINGS key)"
    };
    let (status, detail) = match (b.enabled, cfg.redis_url.is_some()) {
        (true, true) => (
            Status::Pass,
            format!(
                "every {}s into {}, keeping {}, {sealed}",
                b.interval.as_secs(),
                b.dir.display(),
                b.retention
            ),
        ),
        (true, false) => (
            Status::Warn,
            "BACKUP_SETTINGS enabled=true, but REDIS_URL is not set: the in-process bus keeps \
             nothing durable, so no backups are taken"
                .to_owned(),
        ),
        (false, true) => (
            Status::Pass,
            "periodic backups off (BACKUP_SETTINGS enabled=false); `gekko backup now` takes one"
                .to_owned(),
        ),
        (false, false) => (
            Status::Pass,
            "off: the in-process bus (no REDIS_URL) keeps nothing durable to back up".to_owned(),
        ),
    };
    crate::check::Row {
        check: "backup".to_owned(),
        family: "backup",
        status,
        detail,
        required: false,
    }
}
