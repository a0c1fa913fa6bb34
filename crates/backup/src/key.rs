//! The snapshot key, from `ENCRYPTION_SETTINGS` (`key=` 64 hex characters, or `key_file=`
//! a file holding them).

use std::fmt;

use gekko_config::EncryptionSettings;
use secrecy::ExposeSecret as _;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::BackupError;

/// A 32-byte XChaCha20-Poly1305 key. `Debug` shows only its id.
#[derive(Clone)]
pub struct BackupKey {
    bytes: Zeroizing<[u8; 32]>,
    id: String,
}

impl BackupKey {
    /// A key from its 32 bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        // The id is a hash of the key under a domain label, so it names the key in a
        // snapshot's manifest without revealing anything usable about it.
        let mut h = Sha256::new();
        h.update(b"gekko-backup key id\0");
        h.update(bytes);
        let id = hex::encode(&h.finalize()[..8]);
        Self {
            bytes: Zeroizing::new(bytes),
            id,
        }
    }

    /// The key `ENCRYPTION_SETTINGS` configures, or `None` when it configures none (then
    /// snapshots are written unencrypted).
    ///
    /// # Errors
    /// [`BackupError::Key`] when `key_file` cannot be read or does not hold 64 hex
    /// characters. The message never contains the key.
    pub fn from_settings(settings: &EncryptionSettings) -> Result<Option<Self>, BackupError> {
        if let Some(k) = &settings.key {
            return parse_hex(k.expose_secret())
                .map(|b| Some(Self::from_bytes(b)))
                .map_err(|e| BackupError::Key(format!("ENCRYPTION_SETTINGS key {e}")));
        }
        if let Some(path) = &settings.key_file {
            let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                BackupError::Key(format!(
                    "ENCRYPTION_SETTINGS key_file {}: cannot read: {e}",
                    path.display()
                ))
            })?);
            return parse_hex(&text)
                .map(|b| Some(Self::from_bytes(b)))
                .map_err(|e| {
                    BackupError::Key(format!(
                        "ENCRYPTION_SETTINGS key_file {} {e}",
                        path.display()
                    ))
                });
        }
        Ok(None)
    }

    /// The key's public id (16 hex characters), written into every sealed manifest.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }
}

impl fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackupKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn parse_hex(s: &str) -> Result<[u8; 32], String> {
    let s = s.trim();
    if s.len() != 64 {
        return Err(format!("is {} characters, want 64 hex characters", s.len()));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|_| "is not hexadecimal".to_owned())?;
    Ok(out)
}
