//! `gekko secrets …`: sealed env files at rest (see `gekko_config::sealed`).
//!
//! - `keygen OUT`: a fresh key file (mode 0600, never overwritten);
//! - `seal IN OUT`: a plain env file becomes a sealed one;
//! - `unseal --check FILE`: verifies a sealed file and prints its variable names, never a
//!   value (gekko has no command that prints secrets);
//! - `rotate FILE --new-key-file K`: re-seals with a new key, atomically (the new file is
//!   written beside the old one, checked to open with the new key, then renamed over it).
//!
//! The key is `--key-file`, else `ENCRYPTION_SETTINGS key=`/`key_file=` from the
//! environment. Exit codes: 0 done; 1 the file cannot be opened (wrong key, tampered,
//! truncated, not sealed); 64 bad arguments, no key, or an unreadable key or input.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use gekko_config::sealed::{Key, is_sealed, seal, unseal};

use crate::exit::Exit;

/// `gekko secrets …`.
#[derive(Debug, Args)]
pub(crate) struct SecretsArgs {
    #[command(subcommand)]
    command: SecretsCommand,
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Write a fresh random key (64 hex characters) to a new file, mode 0600.
    Keygen {
        /// The key file to create; an existing file is never overwritten.
        out: PathBuf,
    },
    /// Seal a plain env file with the key.
    Seal {
        /// The plain env file.
        input: PathBuf,
        /// The sealed file to write.
        output: PathBuf,
        /// The key file (default: ENCRYPTION_SETTINGS key= or key_file=).
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
    /// Verify a sealed file: prints its key id and variable names, never values.
    Unseal {
        /// Only verify (required: gekko never prints secret values).
        #[arg(long)]
        check: bool,
        /// The sealed file.
        file: PathBuf,
        /// The key file (default: ENCRYPTION_SETTINGS key= or key_file=).
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
    /// Re-seal a sealed file with a new key, atomically.
    Rotate {
        /// The sealed file, replaced in place.
        file: PathBuf,
        /// The new key file.
        #[arg(long)]
        new_key_file: PathBuf,
        /// The current key file (default: ENCRYPTION_SETTINGS key= or key_file=).
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
}

/// Runs `gekko secrets …`.
pub(crate) fn run(args: &SecretsArgs) -> Exit {
    match run_inner(&args.command) {
        Ok(()) => Exit::Ok,
        Err((exit, message)) => {
            eprintln!("gekko secrets: {message}");
            exit
        }
    }
}

type Failure = (Exit, String);

fn usage(message: impl Into<String>) -> Failure {
    (Exit::Config, message.into())
}

/// The key from `--key-file`, else from `ENCRYPTION_SETTINGS` in the environment.
fn key(key_file: Option<&Path>) -> Result<Key, Failure> {
    if let Some(p) = key_file {
        return Key::from_file(p).map_err(|e| usage(e.to_string()));
    }
    let vars: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| k == "ENCRYPTION_SETTINGS")
        .collect();
    match gekko_config::sealing_key(&vars) {
        Some(Ok(k)) => Ok(k),
        Some(Err(why)) => Err(usage(why)),
        None => Err(usage(
            "no key: pass --key-file, or set ENCRYPTION_SETTINGS key_file=PATH (make one with `gekko secrets keygen PATH`)",
        )),
    }
}

fn read(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))
}

/// Writes `text` to `path` atomically: a private file beside it (mode 0600), synced, then
/// renamed over `path`, so a reader sees the old file or the new one, never half of one.
fn write_atomic(path: &Path, text: &str, create_new: bool) -> Result<(), Failure> {
    let fail = |e: std::io::Error| usage(format!("cannot write {}: {e}", path.display()));
    if create_new && path.exists() {
        return Err(usage(format!("{} exists; not overwritten", path.display())));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let written = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(fail)
}

/// The variable names of env file text; a line that does not parse is an error named by
/// its number.
fn names(plain: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (i, item) in dotenvy::from_read_iter(plain.as_bytes()).enumerate() {
        match item {
            Ok((k, _)) => out.push(k),
            Err(_) => return Err(format!("entry {} does not parse (not shown)", i + 1)),
        }
    }
    Ok(out)
}

fn run_inner(command: &SecretsCommand) -> Result<(), Failure> {
    match command {
        SecretsCommand::Keygen { out } => {
            let key = Key::generate();
            write_atomic(out, &format!("{}\n", key.to_hex().as_str()), true)?;
            println!("wrote key {} to {}", key.id(), out.display());
            Ok(())
        }
        SecretsCommand::Seal {
            input,
            output,
            key_file,
        } => {
            let key = key(key_file.as_deref())?;
            let plain = zeroize::Zeroizing::new(read(input)?);
            if is_sealed(&plain) {
                return Err(usage(format!("{} is already sealed", input.display())));
            }
            let vars = names(&plain).map_err(|e| usage(format!("{}: {e}", input.display())))?;
            write_atomic(output, &seal(&plain, &key), false)?;
            println!(
                "sealed {} variables into {} with key {}",
                vars.len(),
                output.display(),
                key.id()
            );
            Ok(())
        }
        SecretsCommand::Unseal {
            check,
            file,
            key_file,
        } => {
            if !*check {
                return Err(usage(
                    "only `unseal --check` exists: gekko never prints secret values",
                ));
            }
            let key = key(key_file.as_deref())?;
            let sealed = read(file)?;
            let plain = zeroize::Zeroizing::new(
                unseal(&sealed, &key)
                    .map_err(|e| (Exit::CheckFailed, format!("{}: {e}", file.display())))?,
            );
            let vars = names(&plain)
                .map_err(|e| (Exit::CheckFailed, format!("{}: {e}", file.display())))?;
            println!(
                "ok: {} opens with key {}; {} variables:",
                file.display(),
                key.id(),
                vars.len()
            );
            for v in vars {
                println!("  {v}");
            }
            Ok(())
        }
        SecretsCommand::Rotate {
            file,
            new_key_file,
            key_file,
        } => {
            let old = key(key_file.as_deref())?;
            let new = Key::from_file(new_key_file).map_err(|e| usage(e.to_string()))?;
            let sealed = read(file)?;
            let plain = zeroize::Zeroizing::new(
                unseal(&sealed, &old)
                    .map_err(|e| (Exit::CheckFailed, format!("{}: {e}", file.display())))?,
            );
            let resealed = seal(&plain, &new);
            // Never replace a file with one that does not open.
            match unseal(&resealed, &new) {
                Ok(p) if p == *plain => {}
                _ => {
                    return Err((
                        Exit::Internal,
                        "the re-sealed file did not verify; nothing changed".to_owned(),
                    ));
                }
            }
            write_atomic(file, &resealed, false)?;
            println!(
                "rotated {} from key {} to key {}",
                file.display(),
                old.id(),
                new.id()
            );
            Ok(())
        }
    }
}
