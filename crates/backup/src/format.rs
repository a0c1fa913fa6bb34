//! The snapshot file format.
//!
//! ```text
//! GEKKO-BACKUP 1\n            the magic line
//! {manifest JSON}\n            the Manifest, one line
//! body                        plain: the body; sealed: 24-byte nonce || ciphertext+tag
//! ```
//!
//! The body is JSON lines, one per entry, stream after stream in manifest order, entries
//! oldest first: `{"i":<stream index>,"id":"<ms>-<seq>","f":[[field,value],...]}`. A field
//! or value that is UTF-8 is a JSON string (gekko's entries are JSON under field `d`);
//! other bytes are `{"hex":"…"}`. The manifest holds the body's length and SHA-256 (of the
//! plain body), each stream's entry count, last id and consumer groups.
//!
//! Sealed (`"encryption":"xchacha20poly1305"`): the body is encrypted with a random
//! 24-byte nonce, and the magic line plus the manifest line are the associated data, so
//! an edited manifest fails authentication just like an edited body. The manifest names
//! the key by its id, so a wrong key is told apart from a damaged file.
//!
//! Reading checks, in order: the magic, the manifest, the key, the length (a truncated
//! file), authentication, the hash, every line, and each stream's count against the
//! manifest. Nothing is returned unless all of them pass.

use std::collections::BTreeMap;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::{BackupError, BackupKey};

/// The first line of every snapshot.
pub const MAGIC: &[u8] = b"GEKKO-BACKUP 1\n";
/// The AEAD of sealed snapshots.
pub const SEALED: &str = "xchacha20poly1305";
/// The `encryption` of unencrypted snapshots.
pub const PLAIN: &str = "none";
const NONCE_LEN: usize = 24;

/// What a snapshot holds, readable without the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The format version (1).
    pub format: u32,
    /// When the snapshot was taken, ms since the epoch.
    pub created_ms: i64,
    /// `none` or `xchacha20poly1305`.
    pub encryption: String,
    /// The id of the key a sealed snapshot was sealed under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The streams, in body order.
    pub streams: Vec<StreamManifest>,
    /// Bytes in the plain body.
    pub body_len: u64,
    /// SHA-256 of the plain body, hex.
    pub body_sha256: String,
}

impl Manifest {
    /// Entries in all streams.
    #[must_use]
    pub fn total_entries(&self) -> u64 {
        self.streams.iter().map(|s| s.entries).sum()
    }
}

/// One stream in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamManifest {
    /// The stream's key.
    pub name: String,
    /// Entries in the snapshot.
    pub entries: u64,
    /// The stream's last generated id when it was read (restored with `XSETID`, so new
    /// entries after a restore never reuse an id).
    pub last_id: String,
    /// Its consumer groups.
    #[serde(default)]
    pub groups: Vec<GroupPosition>,
}

/// Where a consumer group stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupPosition {
    /// The group's name.
    pub name: String,
    /// The id the group resumes after once restored: its last-delivered id, or just before
    /// its oldest pending (delivered, unacknowledged) entry, so that entry is delivered
    /// again (at least once, as the bus promises) instead of lost with the pending list.
    pub resume_after: String,
    /// Entries pending when the snapshot was taken.
    pub pending: u64,
}

/// One stream entry: its id and its `(field, value)` pairs in stored order.
pub type StreamEntry = (String, Vec<(Vec<u8>, Vec<u8>)>);

/// One stream's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamData {
    /// The stream's manifest row.
    pub manifest: StreamManifest,
    /// `(id, [(field, value)])`, oldest first.
    pub entries: Vec<StreamEntry>,
}

/// A checked snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Its manifest.
    pub manifest: Manifest,
    /// Its streams, in manifest order.
    pub streams: Vec<StreamData>,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Bytes {
    Text(String),
    Hex { hex: String },
}

impl Bytes {
    fn of(b: &[u8]) -> Self {
        match std::str::from_utf8(b) {
            Ok(s) => Self::Text(s.to_owned()),
            Err(_) => Self::Hex {
                hex: hex::encode(b),
            },
        }
    }

    fn into_vec(self) -> Result<Vec<u8>, String> {
        match self {
            Self::Text(s) => Ok(s.into_bytes()),
            Self::Hex { hex } => hex::decode(hex).map_err(|e| e.to_string()),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Line {
    i: usize,
    id: String,
    f: Vec<(Bytes, Bytes)>,
}

/// Encodes `streams` into a snapshot file taken at `created_ms`, sealed when `key` is
/// given.
///
/// # Errors
/// [`BackupError::Invalid`] when encoding fails (it does not for well-formed input).
pub fn encode(
    streams: &[StreamData],
    created_ms: i64,
    key: Option<&BackupKey>,
) -> Result<Vec<u8>, BackupError> {
    let mut body = Vec::new();
    for (i, s) in streams.iter().enumerate() {
        for (id, fields) in &s.entries {
            let line = Line {
                i,
                id: id.clone(),
                f: fields
                    .iter()
                    .map(|(k, v)| (Bytes::of(k), Bytes::of(v)))
                    .collect(),
            };
            serde_json::to_writer(&mut body, &line)
                .map_err(|e| BackupError::Invalid(e.to_string()))?;
            body.push(b'\n');
        }
    }
    let manifest = Manifest {
        format: 1,
        created_ms,
        encryption: if key.is_some() { SEALED } else { PLAIN }.to_owned(),
        key_id: key.map(|k| k.id().to_owned()),
        streams: streams.iter().map(|s| s.manifest.clone()).collect(),
        body_len: body.len() as u64,
        body_sha256: hex::encode(Sha256::digest(&body)),
    };
    let mut out = Vec::with_capacity(body.len() + 1024);
    out.extend_from_slice(MAGIC);
    serde_json::to_writer(&mut out, &manifest).map_err(|e| BackupError::Invalid(e.to_string()))?;
    out.push(b'\n');
    match key {
        None => out.extend_from_slice(&body),
        Some(key) => {
            let mut nonce = [0u8; NONCE_LEN];
            rand::Rng::fill(&mut rand::rng(), &mut nonce[..]);
            let cipher = XChaCha20Poly1305::new(key.bytes().into());
            let sealed = cipher
                .encrypt(
                    &XNonce::from(nonce),
                    Payload {
                        msg: &body,
                        aad: &out,
                    },
                )
                .map_err(|_| BackupError::Key("encryption failed".to_owned()))?;
            out.extend_from_slice(&nonce);
            out.extend_from_slice(&sealed);
        }
    }
    Ok(out)
}

/// Reads only the manifest of a snapshot file (no key needed, nothing verified beyond
/// the manifest's own shape).
///
/// # Errors
/// [`BackupError::Invalid`] when the magic or the manifest line is missing or damaged.
pub fn manifest_of(bytes: &[u8]) -> Result<(Manifest, usize), BackupError> {
    let invalid = |m: &str| BackupError::Invalid(m.to_owned());
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(invalid("not a gekko snapshot (no `GEKKO-BACKUP 1` line)"));
    }
    let rest = &bytes[MAGIC.len()..];
    let nl = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| invalid("the manifest line is truncated"))?;
    let manifest: Manifest = serde_json::from_slice(&rest[..nl])
        .map_err(|e| BackupError::Invalid(format!("the manifest is damaged: {e}")))?;
    if manifest.format != 1 {
        return Err(BackupError::Invalid(format!(
            "format {} is not supported (this gekko reads format 1)",
            manifest.format
        )));
    }
    Ok((manifest, MAGIC.len() + nl + 1))
}

/// Checks and decodes a snapshot file (see the module documentation for what is
/// checked).
///
/// # Errors
/// [`BackupError::Invalid`] for a damaged, truncated or edited file (naming what does
/// not check); [`BackupError::Key`] for a sealed file without a key, with another key, or
/// failing authentication.
pub fn decode(bytes: &[u8], key: Option<&BackupKey>) -> Result<Snapshot, BackupError> {
    let (manifest, body_at) = manifest_of(bytes)?;
    let stored = &bytes[body_at..];
    let body: Vec<u8> = match manifest.encryption.as_str() {
        PLAIN => stored.to_vec(),
        SEALED => {
            let key = key.ok_or_else(|| {
                BackupError::Key(
                    "the snapshot is encrypted and no key is configured: set ENCRYPTION_SETTINGS key or key_file to the key it was taken with".to_owned(),
                )
            })?;
            if manifest.key_id.as_deref() != Some(key.id()) {
                return Err(BackupError::Key(format!(
                    "the snapshot was sealed under key id {}, the configured ENCRYPTION_SETTINGS key has id {} (wrong key)",
                    manifest.key_id.as_deref().unwrap_or("(none)"),
                    key.id()
                )));
            }
            if stored.len() < NONCE_LEN + 16 {
                return Err(BackupError::Invalid(
                    "the sealed body is truncated".to_owned(),
                ));
            }
            let nonce = XNonce::try_from(&stored[..NONCE_LEN])
                .map_err(|_| BackupError::Invalid("the sealed body is truncated".to_owned()))?;
            XChaCha20Poly1305::new(key.bytes().into())
                .decrypt(
                    &nonce,
                    Payload {
                        msg: &stored[NONCE_LEN..],
                        aad: &bytes[..body_at],
                    },
                )
                .map_err(|_| {
                    BackupError::Key(
                        "the snapshot fails authentication: it was modified or truncated after it was written".to_owned(),
                    )
                })?
        }
        other => {
            return Err(BackupError::Invalid(format!(
                "unknown encryption `{other}`"
            )));
        }
    };
    if body.len() as u64 != manifest.body_len {
        return Err(BackupError::Invalid(format!(
            "the body is {} bytes, the manifest says {} (truncated or extended)",
            body.len(),
            manifest.body_len
        )));
    }
    let hash = hex::encode(Sha256::digest(&body));
    if hash != manifest.body_sha256 {
        return Err(BackupError::Invalid(format!(
            "the body's SHA-256 is {hash}, the manifest says {} (the body was modified)",
            manifest.body_sha256
        )));
    }
    let mut streams: Vec<StreamData> = manifest
        .streams
        .iter()
        .map(|m| StreamData {
            manifest: m.clone(),
            entries: Vec::new(),
        })
        .collect();
    let mut last_index = 0usize;
    for (n, raw) in body.split(|&b| b == b'\n').enumerate() {
        if raw.is_empty() {
            continue;
        }
        let bad = |m: String| BackupError::Invalid(format!("body line {}: {m}", n + 1));
        let line: Line = serde_json::from_slice(raw).map_err(|e| bad(e.to_string()))?;
        if line.i < last_index {
            return Err(bad("streams out of order".to_owned()));
        }
        last_index = line.i;
        let stream = streams
            .get_mut(line.i)
            .ok_or_else(|| bad(format!("stream index {} is not in the manifest", line.i)))?;
        let mut fields = Vec::with_capacity(line.f.len());
        for (k, v) in line.f {
            fields.push((k.into_vec().map_err(&bad)?, v.into_vec().map_err(&bad)?));
        }
        stream.entries.push((line.id, fields));
    }
    let mut seen = BTreeMap::new();
    for s in &streams {
        if seen.insert(s.manifest.name.clone(), ()).is_some() {
            return Err(BackupError::Invalid(format!(
                "stream {} appears twice in the manifest",
                s.manifest.name
            )));
        }
        if s.entries.len() as u64 != s.manifest.entries {
            return Err(BackupError::Invalid(format!(
                "stream {} has {} entries, the manifest says {}",
                s.manifest.name,
                s.entries.len(),
                s.manifest.entries
            )));
        }
    }
    Ok(Snapshot { manifest, streams })
}
