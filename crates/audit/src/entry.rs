//! One audit entry: its stored form, its canonical encoding, its hash and its MAC.
//!
//! The stored form is JSON (readable with `redis-cli XRANGE`, exportable as is). The hash
//! is *not* over those JSON bytes, because JSON has many spellings of one value (key
//! order, whitespace, escapes) and any tool that re-writes an entry would break it. The
//! hash is SHA-256 over a canonical binary encoding of every field:
//!
//! ```text
//! "gekko-audit/v1\0" | seq u64 BE | ts_ms i64 BE | writer | actor | action | outcome
//!                    | canonical JSON of detail | key_id | prev (32 bytes)
//! ```
//!
//! where each string is its length (u32 BE) followed by its UTF-8 bytes, and canonical
//! JSON sorts object keys at every level. Including `prev` is what makes it a chain: an
//! entry's hash commits to every entry before it. The MAC (HMAC-SHA256 of the hash under
//! the audit key) is what makes the chain unforgeable: anyone can recompute hashes after
//! an edit, only the key holder can recompute MACs.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::key::AuditKey;

/// The version of the entry format and hash encoding.
pub const ENTRY_VERSION: u32 = 1;

/// The `prev` of the first entry of a chain.
pub const GENESIS: [u8; 32] = [0; 32];

/// What a caller records: who did what, and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Who: a token name (`ops-admin`), a peer address, a service (`gateway-binanceus`),
    /// `system`.
    pub actor: String,
    /// What, as a dotted name: `order.place`, `order.cancel`, `order.cancel_all`,
    /// `positions.close`, `auth.denied`, `config.change`, `secret.access`, `mcp.tool_call`,
    /// `system.startup`, `system.shutdown`, `kill_switch`.
    pub action: String,
    /// How it ended: `ok`, `denied`, `rejected`, `error`, or something more specific.
    pub outcome: String,
    /// Anything else worth keeping (order ids, venue, reason). Never secrets.
    pub detail: Value,
}

impl AuditRecord {
    /// A record with an empty detail object.
    #[must_use]
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        outcome: impl Into<String>,
    ) -> Self {
        Self {
            actor: actor.into(),
            action: action.into(),
            outcome: outcome.into(),
            detail: Value::Object(serde_json::Map::new()),
        }
    }

    /// The same record with `detail`.
    #[must_use]
    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }
}

/// An entry as stored on the stream and in archives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Format version ([`ENTRY_VERSION`]).
    pub v: u32,
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// When it was written, in ms since the Unix epoch.
    pub ts_ms: i64,
    /// The process that wrote it (the program name: `gekko`, `gateway-binanceus`).
    pub writer: String,
    /// See [`AuditRecord::actor`].
    pub actor: String,
    /// See [`AuditRecord::action`].
    pub action: String,
    /// See [`AuditRecord::outcome`].
    pub outcome: String,
    /// See [`AuditRecord::detail`].
    pub detail: Value,
    /// The id of the key that signed it (see [`AuditKey::id`]).
    pub key_id: String,
    /// The previous entry's hash, hex; [`GENESIS`] for the first.
    pub prev: String,
    /// This entry's hash, hex.
    pub hash: String,
    /// HMAC-SHA256 of the hash under the audit key, hex.
    pub mac: String,
}

impl Entry {
    /// Builds and signs the entry that follows `prev` at position `seq`.
    pub(crate) fn seal(
        key: &AuditKey,
        seq: u64,
        ts_ms: i64,
        writer: &str,
        rec: AuditRecord,
        prev: &[u8; 32],
    ) -> Self {
        let mut e = Self {
            v: ENTRY_VERSION,
            seq,
            ts_ms,
            writer: writer.to_owned(),
            actor: rec.actor,
            action: rec.action,
            outcome: rec.outcome,
            detail: rec.detail,
            key_id: key.id().to_owned(),
            prev: hex::encode(prev),
            hash: String::new(),
            mac: String::new(),
        };
        let hash = e.compute_hash(prev);
        e.hash = hex::encode(hash);
        e.mac = hex::encode(key.mac(&hash));
        e
    }

    /// SHA-256 over the canonical encoding, with `prev` as given (see the module docs).
    /// Public because a hash is no secret: anyone can recompute one, which is why every
    /// entry also carries a MAC.
    #[must_use]
    pub fn compute_hash(&self, prev: &[u8; 32]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"gekko-audit/v1\0");
        h.update(self.seq.to_be_bytes());
        h.update(self.ts_ms.to_be_bytes());
        for s in [&self.writer, &self.actor, &self.action, &self.outcome] {
            field(&mut h, s.as_bytes());
        }
        let mut detail = String::new();
        canonical_json(&self.detail, &mut detail);
        field(&mut h, detail.as_bytes());
        field(&mut h, self.key_id.as_bytes());
        h.update(prev);
        h.finalize().into()
    }

    /// The JSON stored on the stream.
    #[must_use]
    pub fn to_bytes(&self) -> bytes::Bytes {
        // Serialising a struct of strings, integers and a `Value` cannot fail.
        bytes::Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Parses a stored entry.
    ///
    /// # Errors
    /// Why the payload is not an audit entry of this format version.
    pub fn parse(payload: &[u8]) -> Result<Self, String> {
        let e: Self =
            serde_json::from_slice(payload).map_err(|e| format!("not an audit entry: {e}"))?;
        if e.v != ENTRY_VERSION {
            return Err(format!("entry format v{} is not v{ENTRY_VERSION}", e.v));
        }
        Ok(e)
    }

    /// The entry's `hash` and `prev` as bytes.
    pub(crate) fn hashes(&self) -> Result<([u8; 32], [u8; 32]), String> {
        Ok((hex32(&self.hash, "hash")?, hex32(&self.prev, "prev")?))
    }
}

/// Parses 64 hex characters.
pub(crate) fn hex32(s: &str, what: &str) -> Result<[u8; 32], String> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|_| format!("{what} is not 64 hex characters"))?;
    Ok(out)
}

fn field(h: &mut Sha256, bytes: &[u8]) {
    // Audit fields are far below 4 GiB; a longer one saturates, which only makes its
    // hash differ from a correctly framed one.
    h.update(u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
    h.update(bytes);
}

/// JSON with object keys sorted at every level and no whitespace; strings and numbers
/// as serde_json writes them.
fn canonical_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(val) = map.get(k) {
                    canonical_json(val, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"d":2,"c":3}],"x":"é\n"}}"#).unwrap();
        let mut out = String::new();
        canonical_json(&a, &mut out);
        assert_eq!(out, r#"{"a":{"x":"é\n","y":[1,{"c":3,"d":2}]},"b":1}"#);
    }

    #[test]
    fn hash_covers_every_field() {
        let key = AuditKey::from_secret(&[7; 32]);
        let rec = AuditRecord::new("alice", "order.place", "ok")
            .with_detail(serde_json::json!({"qty": "1.5"}));
        let e = Entry::seal(&key, 3, 1_000, "gekko", rec, &[1; 32]);
        let (hash, prev) = e.hashes().unwrap();
        assert_eq!(prev, [1; 32]);
        assert_eq!(e.compute_hash(&prev), hash);
        assert!(key.mac_matches(&hash, &hex::decode(&e.mac).unwrap()));
        let variants: Vec<Entry> = vec![
            Entry {
                seq: 4,
                ..e.clone()
            },
            Entry {
                ts_ms: 1_001,
                ..e.clone()
            },
            Entry {
                writer: "x".into(),
                ..e.clone()
            },
            Entry {
                actor: "bob".into(),
                ..e.clone()
            },
            Entry {
                action: "order.cancel".into(),
                ..e.clone()
            },
            Entry {
                outcome: "denied".into(),
                ..e.clone()
            },
            Entry {
                detail: serde_json::json!({"qty": "15"}),
                ..e.clone()
            },
            Entry {
                key_id: "00".into(),
                ..e.clone()
            },
        ];
        for v in variants {
            assert_ne!(v.compute_hash(&prev), hash, "{v:?}");
        }
        assert_ne!(e.compute_hash(&[2; 32]), hash, "prev is covered");
        // Field framing: moving a character between two fields changes the hash.
        let shifted = Entry {
            writer: "gekk".into(),
            actor: "oalice".into(),
            ..e.clone()
        };
        assert_ne!(shifted.compute_hash(&prev), hash);
    }
}
