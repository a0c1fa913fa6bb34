//! Sealed env files: a `.env` file encrypted at rest with XChaCha20-Poly1305.
//!
//! A sealed file is three lines of text, so it survives copy-paste, `git diff` and
//! ConfigMaps:
//!
//! ```text
//! GEKKO-SEALED v1
//! key=<key id> len=<body bytes>
//! <base64 of nonce (24 bytes) || ciphertext || tag (16 bytes)>
//! ```
//!
//! Why these choices:
//! - **XChaCha20-Poly1305** with a fresh random 24-byte nonce per seal: random nonces of
//!   that size never collide in practice, so re-sealing (rotation, edits) needs no nonce
//!   bookkeeping, unlike AES-GCM's 12 bytes.
//! - **The key id** (the first 8 bytes of SHA-256 over the key, in hex) lets a wrong key
//!   be named as such before any decryption is tried, instead of looking like tampering.
//!   It reveals nothing useful about the key.
//! - **`len=`** is the body's length when sealed, so a file cut short is reported as
//!   truncated rather than as tampered.
//! - The two header lines are the AEAD's associated data: changing the version, the key
//!   id or the length breaks the tag just like changing a body byte does.
//!
//! [`unseal`] returns the whole plain text or an error: nothing is partially returned, so
//! nothing can start with half of its secrets.

use std::fmt;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use data_encoding::{BASE64, HEXLOWER_PERMISSIVE};
use secrecy::ExposeSecret as _;
use sha2::{Digest as _, Sha256};
use zeroize::{Zeroize as _, Zeroizing};

use crate::EncryptionSettings;

/// The first line of every sealed file.
pub const SEALED_MAGIC: &str = "GEKKO-SEALED";
/// The format version this build writes and reads.
pub const SEALED_VERSION: &str = "v1";

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// A 32-byte XChaCha20-Poly1305 key; zeroized on drop and never shown by `Debug`.
#[derive(Clone)]
pub struct Key {
    bytes: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(id={}, bytes withheld)", self.id())
    }
}

impl Key {
    /// A fresh random key from the operating system's generator.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::Rng::fill(&mut rand::rng(), &mut bytes[..]);
        Self { bytes }
    }

    /// A key from 64 hexadecimal characters (surrounding white space is ignored).
    ///
    /// # Errors
    /// [`SealError::BadKey`] naming the shape of the text (never the text).
    pub fn from_hex(text: &str) -> Result<Self, SealError> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(SealError::BadKey(format!(
                "the key is {} characters, want 64 hexadecimal characters",
                text.chars().count()
            )));
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        HEXLOWER_PERMISSIVE
            .decode_mut(text.as_bytes(), &mut bytes[..])
            .map_err(|_| SealError::BadKey("the key is not hexadecimal".to_owned()))?;
        Ok(Self { bytes })
    }

    /// A key read from a file holding 64 hexadecimal characters.
    ///
    /// # Errors
    /// [`SealError::BadKey`] when the file cannot be read or does not hold a key.
    pub fn from_file(path: &Path) -> Result<Self, SealError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            SealError::BadKey(format!("cannot read key file {}: {e}", path.display()))
        })?);
        Self::from_hex(&text).map_err(|e| match e {
            SealError::BadKey(m) => SealError::BadKey(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// The key `ENCRYPTION_SETTINGS` names (`key=` or `key_file=`), or `None` when it names
    /// none.
    ///
    /// # Errors
    /// [`SealError::BadKey`] when the key file cannot be read or holds no key.
    pub fn from_settings(settings: &EncryptionSettings) -> Result<Option<Self>, SealError> {
        if let Some(k) = &settings.key {
            return Self::from_hex(k.expose_secret()).map(Some);
        }
        settings
            .key_file
            .as_deref()
            .map(Self::from_file)
            .transpose()
    }

    /// The key as 64 lowercase hexadecimal characters, for writing a key file.
    #[must_use]
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(data_encoding::HEXLOWER.encode(&self.bytes[..]))
    }

    /// The key id written into sealed files: the first 8 bytes of SHA-256 over the key.
    #[must_use]
    pub fn id(&self) -> String {
        let digest = Sha256::digest(&self.bytes[..]);
        data_encoding::HEXLOWER.encode(&digest[..8])
    }
}

/// Why a sealed file could not be opened (or a key could not be used).
///
/// No variant carries any plain text or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The text does not start with the `GEKKO-SEALED` line: it is not a sealed file.
    #[error("not a sealed file (the first line is not `{SEALED_MAGIC} {SEALED_VERSION}`)")]
    NotSealed,
    /// A sealed file of a format version this build does not read.
    #[error("sealed with format {0}, this build reads only {SEALED_VERSION}")]
    UnsupportedVersion(String),
    /// The file was sealed with another key.
    #[error("wrong key: the file was sealed with key id {file}, the configured key has id {key}")]
    WrongKey {
        /// The key id in the file.
        file: String,
        /// The id of the key given.
        key: String,
    },
    /// The file ends early: header lines missing, or less body than its header says.
    #[error("truncated: {0}")]
    Truncated(String),
    /// The file was changed after sealing (the authentication tag does not match), or its
    /// header or body is malformed.
    #[error("tampered: {0}")]
    Tampered(String),
    /// The key could not be read or is malformed.
    #[error("bad key: {0}")]
    BadKey(String),
}

/// Whether `text` looks like a sealed file (its first line is the magic line). Cheap; used
/// by the loader to decide whether to unseal.
#[must_use]
pub fn is_sealed(text: &str) -> bool {
    text.trim_start_matches('\u{feff}')
        .lines()
        .next()
        .is_some_and(|l| l.trim().starts_with(SEALED_MAGIC))
}

fn header(key_id: &str, body_len: usize) -> String {
    format!("{SEALED_MAGIC} {SEALED_VERSION}\nkey={key_id} len={body_len}\n")
}

/// Seals `plain` with `key`: a fresh random nonce, the header as associated data.
#[must_use]
pub fn seal(plain: &str, key: &Key) -> String {
    let mut nonce = [0u8; NONCE_LEN];
    rand::Rng::fill(&mut rand::rng(), &mut nonce[..]);
    let body_len = NONCE_LEN + plain.len() + TAG_LEN;
    let head = header(&key.id(), body_len);
    let cipher = XChaCha20Poly1305::new((&*key.bytes).into());
    // Encryption of an in-memory buffer with a 32-byte key cannot fail (the only error is
    // a message longer than the cipher's 256 GiB limit).
    let ciphertext = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plain.as_bytes(),
                aad: head.as_bytes(),
            },
        )
        .unwrap_or_default();
    let mut body = Vec::with_capacity(body_len);
    body.extend_from_slice(&nonce);
    body.extend_from_slice(&ciphertext);
    format!("{head}{}\n", BASE64.encode(&body))
}

/// Opens a sealed file.
///
/// # Errors
/// - [`SealError::NotSealed`] / [`SealError::UnsupportedVersion`]: not this format;
/// - [`SealError::WrongKey`]: sealed with a key whose id differs from `key`'s;
/// - [`SealError::Truncated`]: a header line or part of the body is missing;
/// - [`SealError::Tampered`]: any byte changed (header or body), or a malformed line.
pub fn unseal(sealed: &str, key: &Key) -> Result<String, SealError> {
    let text = sealed.trim_start_matches('\u{feff}');
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default().trim();
    let version = first
        .strip_prefix(SEALED_MAGIC)
        .ok_or(SealError::NotSealed)?
        .trim();
    if version != SEALED_VERSION {
        return Err(SealError::UnsupportedVersion(
            version.chars().take(16).collect(),
        ));
    }
    // Both header lines end in a newline when written; fewer means the file was cut.
    if text.matches('\n').count() < 2 {
        return Err(SealError::Truncated("the header is incomplete".to_owned()));
    }
    let meta = lines.next().unwrap_or_default().trim();
    let (file_id, body_len) = parse_meta(meta)?;
    if file_id != key.id() {
        return Err(SealError::WrongKey {
            file: file_id,
            key: key.id(),
        });
    }
    let encoded: String = lines.map(str::trim).collect();
    if encoded.is_empty() {
        return Err(SealError::Truncated("the body is missing".to_owned()));
    }
    // A cut can land mid base64 quantum; only the complete quanta are decoded so that the
    // shortfall is reported as such.
    let complete = encoded.len() - encoded.len() % 4;
    let body = BASE64
        .decode(&encoded.as_bytes()[..complete])
        .map_err(|_| SealError::Tampered("the body is not valid base64".to_owned()))?;
    if body.len() < body_len {
        return Err(SealError::Truncated(format!(
            "the body has {} of its {body_len} bytes",
            body.len()
        )));
    }
    if complete != encoded.len() || body.len() != body_len {
        return Err(SealError::Tampered(format!(
            "the body has {} bytes, its header says {body_len}",
            body.len()
        )));
    }
    if body_len < NONCE_LEN + TAG_LEN {
        return Err(SealError::Tampered("the body is too short".to_owned()));
    }
    let head = header(&file_id, body_len);
    let (nonce, ciphertext) = body.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| SealError::Tampered("the nonce is short".to_owned()))?;
    let cipher = XChaCha20Poly1305::new((&*key.bytes).into());
    let mut plain = cipher
        .decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: ciphertext,
                aad: head.as_bytes(),
            },
        )
        .map_err(|_| {
            SealError::Tampered("the authentication tag does not match the content".to_owned())
        })?;
    match String::from_utf8(std::mem::take(&mut plain)) {
        Ok(s) => Ok(s),
        Err(e) => {
            e.into_bytes().zeroize();
            Err(SealError::Tampered(
                "the plain text is not UTF-8".to_owned(),
            ))
        }
    }
}

/// Parses `key=<16 hex> len=<n>`.
fn parse_meta(meta: &str) -> Result<(String, usize), SealError> {
    let bad = || SealError::Tampered("the key line is malformed".to_owned());
    let mut id = None;
    let mut len = None;
    for part in meta.split_whitespace() {
        match part.split_once('=') {
            Some(("key", v)) if v.len() == 16 && v.chars().all(|c| c.is_ascii_hexdigit()) => {
                id = Some(v.to_ascii_lowercase());
            }
            Some(("len", v)) => len = Some(v.parse::<usize>().map_err(|_| bad())?),
            _ => return Err(bad()),
        }
    }
    match (id, len) {
        (Some(id), Some(len)) => Ok((id, len)),
        _ => Err(bad()),
    }
}
