//! `gekko audit`: verify, export and archive the tamper-evident audit trail.
//!
//! - `gekko audit verify [--stream S]` reads the whole chain (the sealed archives in
//!   `archive_dir`, then the stream), checks every hash, prev link, HMAC and seq, and
//!   names the first bad entry: exit 0 when intact, 1 when not.
//! - `gekko audit export --since <RFC 3339 | unix ms | 24h> [--out FILE] [--stream S]`
//!   writes the verified entries since then as JSON lines (stdout by default).
//! - `gekko audit archive [--stream S]` moves the entries older than `retention_days`
//!   into a sealed archive and trims them from the stream, as `gekko up` does daily.
//!
//! All three read `REDIS_URL`: with the in-process bus the chain lives in the memory of
//! the `gekko up` process that wrote it and is gone when it exits, so there is nothing to
//! read afterwards. The key comes from `AUDIT_LOGGING_SETTINGS` exactly as for the writer,
//! except that a missing generated key is an error here, never created. Exit 64 for
//! configuration problems (no `REDIS_URL`, no key), 69 when Redis cannot be reached.

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use gekko_audit::{AuditKey, KeyMode, VerifyReport};
use gekko_bus::{Bus, RedisBus, RedisBusOptions};
use gekko_config::Loaded;

use crate::exit::Exit;

/// `gekko audit` and its subcommands.
#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the whole chain (archives, then the stream) and name the first bad entry;
    /// exit 0 when intact, 1 when not.
    Verify {
        /// The stream (default: AUDIT_LOGGING_SETTINGS stream; a service run alone
        /// writes `<stream>:<program>`).
        #[arg(long)]
        stream: Option<String>,
    },
    /// Write the entries since a time as JSON lines, after verifying them.
    Export {
        /// RFC 3339 (2026-12-01T00:00:00Z), milliseconds since the epoch, or a duration
        /// back from now (90s, 15m, 24h, 7d).
        #[arg(long)]
        since: String,
        /// The file to write (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The stream (default: AUDIT_LOGGING_SETTINGS stream).
        #[arg(long)]
        stream: Option<String>,
    },
    /// Seal the entries older than retention_days into archive_dir and trim them from
    /// the stream now (gekko up does this at start-up and daily).
    Archive {
        /// The stream (default: AUDIT_LOGGING_SETTINGS stream).
        #[arg(long)]
        stream: Option<String>,
    },
}

/// Runs `gekko audit …` with the validated config.
pub(crate) async fn run(loaded: Loaded, args: AuditArgs) -> Exit {
    let settings = &loaded.config.audit_logging;
    let Some(url) = loaded.config.redis_url.as_deref() else {
        eprintln!(
            "gekko audit: REDIS_URL is not set. Without Redis, gekko up keeps its audit chain \
             in its own memory (the in-process bus), and it is gone once that process exits: \
             there is no audit trail to read. Set REDIS_URL to the Redis gekko up writes to."
        );
        return Exit::Config;
    };
    let key = match AuditKey::load(settings, KeyMode::MustExist) {
        Ok((key, _)) => key,
        Err(e) => {
            eprintln!("gekko audit: AUDIT_LOGGING_SETTINGS: {e}");
            return Exit::Config;
        }
    };
    let opts = RedisBusOptions::default();
    let bus = match RedisBus::connect(url, opts).await {
        Ok(b) if b.is_ready() => b,
        Ok(_) => {
            eprintln!(
                "gekko audit: cannot reach Redis at {}",
                gekko_bus::redis_bus_redact(url)
            );
            return Exit::Unavailable;
        }
        Err(e) => {
            eprintln!("gekko audit: REDIS_URL: {e}");
            return Exit::Config;
        }
    };
    let stream_of = |s: &Option<String>| s.clone().unwrap_or_else(|| settings.stream.clone());
    match &args.command {
        AuditCommand::Verify { stream } => {
            let stream = stream_of(stream);
            match gekko_audit::verify(&bus, &key, &stream, &settings.archive_dir).await {
                Ok(report) => print_report(&report),
                Err(e) => fail(&e),
            }
        }
        AuditCommand::Export { since, out, stream } => {
            let stream = stream_of(stream);
            let since_ms = match gekko_audit::time::parse_since(since, gekko_core::now_ms()) {
                Ok(ms) => ms,
                Err(e) => {
                    eprintln!("gekko audit export: --since: {e}");
                    return Exit::Config;
                }
            };
            export(&bus, &key, &stream, settings, since_ms, out.as_ref()).await
        }
        AuditCommand::Archive { stream } => {
            let stream = stream_of(stream);
            let retention =
                std::time::Duration::from_secs(u64::from(settings.retention_days) * 86_400);
            match gekko_audit::archive_expired(
                &bus,
                &key,
                &stream,
                &settings.archive_dir,
                retention,
            )
            .await
            {
                Ok(out) => {
                    println!(
                        "gekko audit archive: {stream}: {} entries sealed into {} file(s) in {}, {} trimmed from the stream",
                        out.archived,
                        out.files.len(),
                        settings.archive_dir.display(),
                        out.trimmed
                    );
                    for f in &out.files {
                        println!("  {}", f.display());
                    }
                    Exit::Ok
                }
                Err(e) => fail(&e),
            }
        }
    }
}

fn fail(e: &gekko_audit::AuditError) -> Exit {
    eprintln!("gekko audit: {e}");
    match e {
        gekko_audit::AuditError::Broken { .. } => Exit::CheckFailed,
        gekko_audit::AuditError::Bus(_) => Exit::Unavailable,
        _ => Exit::Internal,
    }
}

/// Prints a verification report; exit 0 when intact, 1 when not.
fn print_report(r: &VerifyReport) -> Exit {
    let source = if r.archives == 0 {
        "the stream".to_owned()
    } else {
        format!("{} archive file(s) and the stream", r.archives)
    };
    match (&r.first_bad, &r.head) {
        (Some(bad), _) => {
            println!("audit chain {}: BROKEN", r.stream);
            println!("  {bad}");
            println!("  {} entries verified before it, from {source}", r.entries);
            Exit::CheckFailed
        }
        (None, None) => {
            println!(
                "audit chain {}: empty (no archive and no entries); an empty chain cannot show \
                 whether entries were removed from its end",
                r.stream
            );
            Exit::Ok
        }
        (None, Some(head)) => {
            println!(
                "audit chain {}: intact, {} entries from {source}",
                r.stream, r.entries
            );
            println!(
                "  head: seq {} hash {} at {} (note it down: removing the newest entries \
                 is visible only against a head recorded earlier)",
                head.seq, head.hash, head.location
            );
            Exit::Ok
        }
    }
}

async fn export(
    bus: &dyn Bus,
    key: &AuditKey,
    stream: &str,
    settings: &gekko_config::AuditLogging,
    since_ms: i64,
    out: Option<&PathBuf>,
) -> Exit {
    let mut sink: Box<dyn std::io::Write> = match out {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => Box::new(std::io::BufWriter::new(f)),
            Err(e) => {
                eprintln!("gekko audit export: cannot create {}: {e}", path.display());
                return Exit::Config;
            }
        },
        None => Box::new(std::io::stdout().lock()),
    };
    let result = gekko_audit::export(
        bus,
        key,
        stream,
        &settings.archive_dir,
        since_ms,
        &mut *sink,
    )
    .await;
    let _ = sink.flush();
    match result {
        Ok((report, lines)) => {
            let to = out.map_or_else(|| "stdout".to_owned(), |p| p.display().to_string());
            eprintln!(
                "gekko audit export: {lines} entries of {stream} since {} written to {to}",
                gekko_audit::time::format_rfc3339(since_ms)
            );
            match &report.first_bad {
                None => Exit::Ok,
                Some(bad) => {
                    eprintln!(
                        "gekko audit export: the chain is BROKEN, the export stops before it: {bad}"
                    );
                    Exit::CheckFailed
                }
            }
        }
        Err(e) => fail(&e),
    }
}
