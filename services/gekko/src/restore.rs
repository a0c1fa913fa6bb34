//! `gekko restore FILE [--force]`: a snapshot back into Redis.
//!
//! 1. The whole file is checked before anything is written: format, manifest, key
//!    (`ENCRYPTION_SETTINGS`, for a sealed snapshot), authentication, the SHA-256 of the
//!    body, each stream's entry count.
//! 2. The target (`REDIS_URL`) must be empty; `--force` instead replaces the snapshot's
//!    streams and leaves every other key alone.
//! 3. Every entry is written with `XADD` and its original id, each stream's last id and
//!    consumer groups are restored, and each stream's length is checked.
//! 4. Each audit stream in the snapshot is verified as `gekko audit verify` would
//!    (`AUDIT_LOGGING_SETTINGS` key and `archive_dir`).
//!
//! Exit codes: 0 restored and verified; 1 the snapshot was refused (damaged, wrong or
//! missing key), the target is not empty, or the restored audit chain does not verify
//! (or could not be, for want of its key); 64 configuration; 69 Redis cannot be reached.

use std::path::PathBuf;

use clap::Args;
use gekko_audit::{AuditKey, KeyMode};
use gekko_backup::{BackupError, BackupKey, RestoreOptions};
use gekko_bus::{RedisBus, RedisBusOptions};
use gekko_config::Loaded;

use crate::exit::Exit;

/// `gekko restore`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// The snapshot file (`gekko-backup-<ms>.gkb` in BACKUP_SETTINGS dir).
    file: PathBuf,
    /// Restore into a Redis that holds data: the snapshot's streams are deleted and
    /// written anew, other keys are kept.
    #[arg(long)]
    force: bool,
}

/// Runs `gekko restore` with the validated config.
pub(crate) async fn run(loaded: Loaded, args: RestoreArgs) -> Exit {
    let cfg = &loaded.config;
    let Some(url) = cfg.redis_url.as_deref() else {
        eprintln!("gekko restore: {}", crate::backup::no_redis());
        return Exit::Config;
    };
    let key = match BackupKey::from_settings(&cfg.encryption) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("gekko restore: {e}");
            return Exit::Config;
        }
    };
    let snapshot = match gekko_backup::read_snapshot(&args.file, key.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "gekko restore: {}: refused, nothing written: {e}",
                args.file.display()
            );
            return Exit::CheckFailed;
        }
    };
    let mut conn = match gekko_backup::connect(url).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "gekko restore: cannot reach Redis at {}: {e}",
                gekko_bus::redis_bus_redact(url)
            );
            return Exit::Unavailable;
        }
    };
    let outcome =
        match gekko_backup::restore(&mut conn, &snapshot, RestoreOptions { force: args.force })
            .await
        {
            Ok(o) => o,
            Err(e @ BackupError::Redis(_)) => {
                eprintln!("gekko restore: {e}");
                return Exit::Unavailable;
            }
            Err(e) => {
                eprintln!("gekko restore: {e}");
                return Exit::CheckFailed;
            }
        };
    println!(
        "gekko restore: {} (taken {}): {} entries in {} streams, {} consumer group(s) restored",
        args.file.display(),
        gekko_audit::time::format_rfc3339(snapshot.manifest.created_ms),
        outcome.entries,
        outcome.streams,
        outcome.groups
    );
    for s in &snapshot.manifest.streams {
        println!("  {} {} entries", s.name, s.entries);
    }
    verify_audit(&loaded, url, &snapshot).await
}

/// Verifies every audit stream the snapshot held, on the target.
async fn verify_audit(loaded: &Loaded, url: &str, snapshot: &gekko_backup::Snapshot) -> Exit {
    let settings = &loaded.config.audit_logging;
    let prefix = format!("{}:", settings.stream);
    let streams: Vec<&str> = snapshot
        .manifest
        .streams
        .iter()
        .map(|s| s.name.as_str())
        .filter(|n| *n == settings.stream || n.starts_with(&prefix))
        .collect();
    if streams.is_empty() {
        println!("  no audit stream in the snapshot: nothing to verify");
        return Exit::Ok;
    }
    let key = match AuditKey::load(settings, KeyMode::MustExist) {
        Ok((k, _)) => k,
        Err(e) => {
            eprintln!(
                "gekko restore: restored, but the audit chain was NOT verified: AUDIT_LOGGING_SETTINGS: {e}; put the audit key in place and run gekko audit verify"
            );
            return Exit::CheckFailed;
        }
    };
    let bus = match RedisBus::connect(url, RedisBusOptions::default()).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("gekko restore: restored, but the audit chain was NOT verified: {e}");
            return Exit::Unavailable;
        }
    };
    let mut exit = Exit::Ok;
    for stream in streams {
        match gekko_audit::verify(&bus, &key, stream, &settings.archive_dir).await {
            Ok(r) if r.is_intact() => {
                println!("  audit chain {stream}: intact, {} entries", r.entries);
            }
            Ok(r) => {
                let why = r
                    .first_bad
                    .as_ref()
                    .map_or_else(String::new, ToString::to_string);
                eprintln!("gekko restore: audit chain {stream}: BROKEN after the restore: {why}");
                exit = Exit::CheckFailed;
            }
            Err(e) => {
                eprintln!("gekko restore: audit chain {stream}: not verified: {e}");
                exit = Exit::CheckFailed;
            }
        }
    }
    exit
}
