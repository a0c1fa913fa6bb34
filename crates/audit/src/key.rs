//! The audit key: where it comes from, and the sub-keys derived from it.
//!
//! One 32-byte secret protects the trail. It is never used directly: HMAC-SHA256 under
//! the secret with a fixed label derives one key per purpose (entry MACs, archive sealing,
//! a public key id), so a key id printed in an error or written into every entry says
//! which key signed something without revealing anything about the key itself.
//!
//! The key comes from `AUDIT_LOGGING_SETTINGS key=` (64 hex characters), from `key_file=`,
//! or, when neither is set, from `<archive_dir>/audit.key`, generated on first use with
//! mode 0600. The generated key keeps the chain verifiable on this machine, but it lives
//! next to the archives it protects and anyone who can read it can re-sign a forged
//! chain, so it is logged as a warning and reported by [`KeySource::warnings`] for the
//! security posture check.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use gekko_config::AuditLogging;
use hmac::{KeyInit, Mac};
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::AuditError;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Where the audit key comes from, as the settings say (no I/O).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `key=` in `AUDIT_LOGGING_SETTINGS`.
    Inline,
    /// `key_file=`: a file the operator provides.
    File(PathBuf),
    /// Neither: `<archive_dir>/audit.key`, generated on first use.
    Generated(PathBuf),
}

impl KeySource {
    /// Whether the key is one gekko generated itself (a posture warning).
    #[must_use]
    pub fn is_generated(&self) -> bool {
        matches!(self, KeySource::Generated(_))
    }

    /// Security-posture findings about the key, one line each (empty when there are none):
    /// a generated key, or a key file that group or others can read. Reads file metadata
    /// only, never the key.
    #[must_use]
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let path = match self {
            KeySource::Inline => return out,
            KeySource::File(p) => p,
            KeySource::Generated(p) => {
                out.push(format!(
                    "the audit key is generated in {} next to the archives it protects; set AUDIT_LOGGING_SETTINGS key_file= to a key kept elsewhere",
                    p.display()
                ));
                p
            }
        };
        if let Some(mode) = file_mode(path)
            && mode & 0o077 != 0
        {
            out.push(format!(
                "the audit key file {} has mode {mode:o}: group or others can read it (want 600)",
                path.display()
            ));
        }
        out
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Inline => f.write_str("AUDIT_LOGGING_SETTINGS key"),
            KeySource::File(p) => write!(f, "key file {}", p.display()),
            KeySource::Generated(p) => write!(f, "generated key file {}", p.display()),
        }
    }
}

/// Where the settings say the audit key comes from. Pure: the lead's posture check calls
/// this and then [`KeySource::warnings`].
#[must_use]
pub fn key_source(settings: &AuditLogging) -> KeySource {
    if settings.key.is_some() {
        KeySource::Inline
    } else if let Some(p) = &settings.key_file {
        KeySource::File(p.clone())
    } else {
        KeySource::Generated(settings.archive_dir.join(AuditLogging::GENERATED_KEY_FILE))
    }
}

/// Whether [`AuditKey::load`] may create the generated key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    /// Create `<archive_dir>/audit.key` when it does not exist (the writer).
    CreateIfMissing,
    /// The key must exist already (`gekko audit verify`: a fresh random key would only
    /// make every entry fail).
    MustExist,
}

/// The keys derived from the audit secret. `Debug` shows the key id only.
#[derive(Clone)]
pub struct AuditKey {
    mac: Zeroizing<[u8; 32]>,
    seal: Zeroizing<[u8; 32]>,
    id: String,
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl AuditKey {
    /// The keys derived from a 32-byte secret.
    #[must_use]
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        let id = derive(secret, b"gekko-audit/v1 key-id");
        Self {
            mac: Zeroizing::new(derive(secret, b"gekko-audit/v1 entry-mac")),
            seal: Zeroizing::new(derive(secret, b"gekko-audit/v1 archive-seal")),
            id: hex::encode(&id[..8]),
        }
    }

    /// Loads the key the settings name (see [`key_source`]), creating the generated key
    /// file when `mode` allows and it is missing (with a warning in the log).
    ///
    /// # Errors
    /// [`AuditError::Key`] when a key file cannot be read or created, or does not hold
    /// 64 hex characters. The message names the file and the problem, never the key.
    pub fn load(settings: &AuditLogging, mode: KeyMode) -> Result<(Self, KeySource), AuditError> {
        let source = key_source(settings);
        let secret = match (&source, &settings.key) {
            (KeySource::Inline, Some(k)) => parse_hex(k.expose_secret())
                .map_err(|e| AuditError::Key(format!("AUDIT_LOGGING_SETTINGS key {e}")))?,
            (KeySource::File(p), _) => read_key_file(p)?,
            (KeySource::Generated(p), _) => match read_key_file(p) {
                Ok(k) => {
                    tracing::warn!(file = %p.display(), "audit key comes from the generated key file; configure AUDIT_LOGGING_SETTINGS key_file for production");
                    k
                }
                Err(_) if mode == KeyMode::CreateIfMissing && !p.exists() => generate(p)?,
                Err(e) => return Err(e),
            },
            (KeySource::Inline, None) => {
                return Err(AuditError::Key("no key configured".to_owned()));
            }
        };
        Ok((Self::from_secret(&secret), source))
    }

    /// The public key id (16 hex characters) written into every entry and archive.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// HMAC-SHA256 of an entry hash.
    pub(crate) fn mac(&self, hash: &[u8; 32]) -> [u8; 32] {
        let mut m = <HmacSha256 as KeyInit>::new_from_slice(&*self.mac)
            .unwrap_or_else(|_| unreachable_hmac());
        m.update(hash);
        m.finalize().into_bytes().into()
    }

    /// Whether `mac` is the MAC of `hash`, compared in constant time.
    pub(crate) fn mac_matches(&self, hash: &[u8; 32], mac: &[u8]) -> bool {
        let mut m = <HmacSha256 as KeyInit>::new_from_slice(&*self.mac)
            .unwrap_or_else(|_| unreachable_hmac());
        m.update(hash);
        m.verify_slice(mac).is_ok()
    }

    /// The archive sealing key.
    pub(crate) fn seal_key(&self) -> &[u8; 32] {
        &self.seal
    }
}

/// HMAC accepts keys of any length, so `new_from_slice` cannot fail; this keeps the
/// impossible branch free of a panic message that suggests otherwise.
fn unreachable_hmac() -> HmacSha256 {
    <HmacSha256 as KeyInit>::new(&Default::default())
}

fn derive(secret: &[u8; 32], label: &[u8]) -> [u8; 32] {
    let mut m =
        <HmacSha256 as KeyInit>::new_from_slice(secret).unwrap_or_else(|_| unreachable_hmac());
    m.update(label);
    m.finalize().into_bytes().into()
}

fn parse_hex(s: &str) -> Result<[u8; 32], String> {
    let s = s.trim();
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return Err(format!("is {} characters, want 64 hex characters", s.len()));
    }
    hex::decode_to_slice(s, &mut out).map_err(|_| "is not hexadecimal".to_owned())?;
    Ok(out)
}

fn read_key_file(path: &Path) -> Result<[u8; 32], AuditError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| AuditError::Key(format!("cannot read {}: {e}", path.display())))?,
    );
    if let Some(mode) = file_mode(path)
        && mode & 0o077 != 0
    {
        tracing::warn!(file = %path.display(), mode = format!("{mode:o}"), "the audit key file is readable by group or others");
    }
    parse_hex(&text).map_err(|e| AuditError::Key(format!("{} {e}", path.display())))
}

/// Creates a fresh random key in `path` (mode 0600, never overwriting: a concurrent
/// creator wins and its key is read instead).
fn generate(path: &Path) -> Result<[u8; 32], AuditError> {
    let fail =
        |e: std::io::Error| AuditError::Key(format!("cannot create {}: {e}", path.display()));
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    rand::Rng::fill(&mut rand::rng(), &mut secret[..]);
    // Written whole under a private name, then linked into place: the link is atomic and
    // fails if the file exists, so a concurrent start (another process, or another host
    // in the same directory) reads either no key file or a complete one, never a
    // half-written one, and both end up with the same key.
    let tmp = path.with_extension(format!(
        "tmp-{}-{}",
        std::process::id(),
        hex::encode(&secret[..4])
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let written = (|| {
        let mut f = opts.open(&tmp)?;
        let text = Zeroizing::new(format!("{}\n", hex::encode(*secret)));
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => {
            tracing::warn!(file = %path.display(), "generated a new audit key; configure AUDIT_LOGGING_SETTINGS key_file (or key) for production and keep the key away from the archives");
            Ok(*secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key_file(path),
        Err(e) => Err(fail(e)),
    }
}

#[cfg(unix)]
fn file_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn file_mode(_path: &Path) -> Option<u32> {
    None
}
