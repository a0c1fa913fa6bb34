//! Sealed archives: where entries older than `retention_days` go before the stream is
//! trimmed.
//!
//! One file holds a contiguous run of the chain (`first_seq..=last_seq`), named
//! `<stream>.<first_seq>-<last_seq>.sealed` (the stream name with every character other
//! than letters, digits, `-` and `_` replaced by `_`, seqs zero-padded so names sort in
//! chain order). The layout:
//!
//! ```text
//! "GKAUDIT1" | header length (u32 BE) | header (JSON) | nonce (24 bytes) | ciphertext
//! ```
//!
//! The header names the stream, the seq range, the chain head the file ends with
//! (`last_hash`) and the key id, readable without the key. The ciphertext is the entries
//! (one JSON line each: the former stream id and the stored entry, byte for byte) under
//! XChaCha20-Poly1305 with a key derived from the audit key, a random nonce, and the magic
//! plus header as associated data: a changed header, a changed byte of ciphertext, a
//! truncated file or the wrong key all fail authentication as a whole.
//!
//! Files are written to a temporary name, synced, renamed and the directory synced, then
//! read back and opened before the stream is trimmed: an entry leaves the stream only once
//! a readable sealed copy of it is on disk.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use gekko_bus::{Bus, StartFrom};
use serde::{Deserialize, Serialize};

use crate::AuditError;
use crate::entry::{Entry, hex32};
use crate::key::AuditKey;
use crate::verify::{Chain, Location};

const MAGIC: &[u8; 8] = b"GKAUDIT1";
const NONCE_LEN: usize = 24;
const SUFFIX: &str = ".sealed";
/// At most this many entries per file, so sealing a long backlog never holds it all in
/// memory at once.
const MAX_PER_FILE: usize = 50_000;
/// How many stream entries one read fetches.
const PAGE: usize = 1_000;

/// The plaintext header of an archive file (authenticated, not encrypted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveHeader {
    /// Format version.
    pub v: u32,
    /// The stream the entries came from.
    pub stream: String,
    /// The first entry's seq.
    pub first_seq: u64,
    /// The last entry's seq.
    pub last_seq: u64,
    /// The first entry's `prev` (the hash the file continues from), hex.
    pub first_prev: String,
    /// The last entry's hash: the chain head this file ends with, hex.
    pub last_hash: String,
    /// The first entry's former stream id.
    pub first_id: String,
    /// The last entry's former stream id.
    pub last_id: String,
    /// The id of the audit key the file is sealed under.
    pub key_id: String,
    /// When the file was sealed, ms since the epoch.
    pub sealed_at_ms: i64,
}

/// An opened archive: its header and its entries `(former stream id, stored entry)`.
#[derive(Debug)]
pub(crate) struct Sealed {
    pub(crate) header: ArchiveHeader,
    pub(crate) entries: Vec<(String, Vec<u8>)>,
}

#[derive(Serialize, Deserialize)]
struct Line {
    id: String,
    entry: String,
}

/// An archive file found in the directory.
#[derive(Debug, Clone)]
pub(crate) struct ArchiveFile {
    pub(crate) path: PathBuf,
    pub(crate) first_seq: u64,
    pub(crate) last_seq: u64,
}

fn prefix(stream: &str) -> String {
    stream
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The archive files of `stream` in `dir`, in chain order; none when `dir` does not exist.
///
/// # Errors
/// [`AuditError::Archive`] when the directory exists but cannot be listed.
pub(crate) fn list(dir: &Path, stream: &str) -> Result<Vec<ArchiveFile>, AuditError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(AuditError::Archive {
                path: dir.to_owned(),
                reason: format!("cannot list: {e}"),
            });
        }
    };
    let want = format!("{}.", prefix(stream));
    let mut out = Vec::new();
    for item in rd.flatten() {
        let name = item.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(range) = name
            .strip_prefix(&want)
            .and_then(|r| r.strip_suffix(SUFFIX))
        else {
            continue;
        };
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        if let (Ok(first_seq), Ok(last_seq)) = (a.parse(), b.parse()) {
            out.push(ArchiveFile {
                path: item.path(),
                first_seq,
                last_seq,
            });
        }
    }
    out.sort_by_key(|f| (f.first_seq, f.last_seq));
    Ok(out)
}

/// Opens an archive file. The error says what is wrong in words an operator can act on.
pub(crate) fn read(path: &Path, key: &AuditKey) -> Result<Sealed, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the archive: {e}"))?;
    let truncated = || "the archive is truncated (shorter than its header says)".to_owned();
    if bytes.len() < MAGIC.len() + 4 || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a gekko audit archive (bad magic), or truncated".to_owned());
    }
    let hlen_bytes: [u8; 4] = bytes[8..12].try_into().map_err(|_| truncated())?;
    let hlen = u32::from_be_bytes(hlen_bytes) as usize;
    let body = 12usize.checked_add(hlen).ok_or_else(truncated)?;
    if bytes.len() < body + NONCE_LEN {
        return Err(truncated());
    }
    let header: ArchiveHeader = serde_json::from_slice(&bytes[12..body])
        .map_err(|e| format!("the archive header is damaged: {e}"))?;
    if header.key_id != key.id() {
        return Err(format!(
            "the archive is sealed under key id {}, but the configured audit key has id {} (wrong key?)",
            header.key_id,
            key.id()
        ));
    }
    let cipher = XChaCha20Poly1305::new(key.seal_key().into());
    let nonce = XNonce::try_from(&bytes[body..body + NONCE_LEN]).map_err(|_| truncated())?;
    let plain = cipher
        .decrypt(
            &nonce,
            Payload {
                msg: &bytes[body + NONCE_LEN..],
                aad: &bytes[..body],
            },
        )
        .map_err(|_| {
            "the archive fails authentication: it was modified or truncated after sealing"
                .to_owned()
        })?;
    let text =
        String::from_utf8(plain).map_err(|_| "the archive content is not UTF-8".to_owned())?;
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l: Line = serde_json::from_str(line)
            .map_err(|e| format!("archive line {} is damaged: {e}", i + 1))?;
        entries.push((l.id, l.entry.into_bytes()));
    }
    let count = header.last_seq.saturating_sub(header.first_seq) + 1;
    if entries.len() as u64 != count {
        return Err(format!(
            "the archive header says {count} entries, the archive holds {}",
            entries.len()
        ));
    }
    Ok(Sealed { header, entries })
}

/// Seals `entries` (a verified contiguous run, oldest first) into a new file in `dir`
/// and reads it back; returns the path.
fn write(
    dir: &Path,
    key: &AuditKey,
    stream: &str,
    run: &[(String, Vec<u8>, Entry)],
) -> Result<PathBuf, AuditError> {
    let fail = |path: &Path, reason: String| AuditError::Archive {
        path: path.to_owned(),
        reason,
    };
    let (Some(first), Some(last)) = (run.first(), run.last()) else {
        return Err(fail(dir, "nothing to seal".to_owned()));
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, format!("cannot create: {e}")))?;
    let header = ArchiveHeader {
        v: 1,
        stream: stream.to_owned(),
        first_seq: first.2.seq,
        last_seq: last.2.seq,
        first_prev: first.2.prev.clone(),
        last_hash: last.2.hash.clone(),
        first_id: first.0.clone(),
        last_id: last.0.clone(),
        key_id: key.id().to_owned(),
        sealed_at_ms: gekko_core::now_ms(),
    };
    let header_json = serde_json::to_vec(&header).map_err(|e| fail(dir, e.to_string()))?;
    let mut plain = Vec::new();
    for (id, raw, _) in run {
        let line = Line {
            id: id.clone(),
            entry: String::from_utf8_lossy(raw).into_owned(),
        };
        serde_json::to_writer(&mut plain, &line).map_err(|e| fail(dir, e.to_string()))?;
        plain.push(b'\n');
    }
    let mut out = Vec::with_capacity(plain.len() + header_json.len() + 64);
    out.extend_from_slice(MAGIC);
    let hlen =
        u32::try_from(header_json.len()).map_err(|_| fail(dir, "header too large".into()))?;
    out.extend_from_slice(&hlen.to_be_bytes());
    out.extend_from_slice(&header_json);
    let mut nonce = [0u8; NONCE_LEN];
    rand::Rng::fill(&mut rand::rng(), &mut nonce[..]);
    let cipher = XChaCha20Poly1305::new(key.seal_key().into());
    let sealed = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &plain,
                aad: &out,
            },
        )
        .map_err(|_| fail(dir, "encryption failed".to_owned()))?;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);

    let name = format!(
        "{}.{:020}-{:020}{SUFFIX}",
        prefix(stream),
        header.first_seq,
        header.last_seq
    );
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let io = |e: std::io::Error| fail(&path, format!("cannot write: {e}"));
    {
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&out).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, &path).map_err(io)?;
    if let Ok(d) = std::fs::File::open(dir) {
        // Makes the rename durable; a failure here (some filesystems refuse) is not worth
        // refusing the archive for, since the read-back below still has to succeed.
        let _ = d.sync_all();
    }
    let back = read(&path, key).map_err(|why| fail(&path, format!("read-back failed: {why}")))?;
    if back.header != header || back.entries.len() != run.len() {
        return Err(fail(
            &path,
            "read-back differs from what was written".to_owned(),
        ));
    }
    Ok(path)
}

/// What one retention run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveOutcome {
    /// Entries sealed into new archive files.
    pub archived: u64,
    /// The files written.
    pub files: Vec<PathBuf>,
    /// Entries trimmed from the stream (archived now, or by an earlier run that stopped
    /// before trimming).
    pub trimmed: u64,
}

/// Moves the entries of `stream` older than `retention` into sealed archives in `dir`,
/// then trims them from the stream. The newest entry always stays on the stream: it is
/// the chain head the writer continues from after a restart.
///
/// The entries are verified first, continuing from the last archive's head; a chain that
/// does not verify is not archived (archiving must not launder a tampered stream).
///
/// # Errors
/// [`AuditError::Broken`] when the entries to archive do not verify,
/// [`AuditError::Archive`] when a file cannot be written or read back (nothing is trimmed
/// then), and bus failures.
pub(crate) async fn archive_expired(
    bus: &dyn Bus,
    key: &AuditKey,
    stream: &str,
    dir: &Path,
    retention: Duration,
    now_ms: i64,
) -> Result<ArchiveOutcome, AuditError> {
    let cutoff = now_ms.saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
    let Some(head) = bus.last_entry(stream).await? else {
        return Ok(ArchiveOutcome::default());
    };
    let files = list(dir, stream)?;
    let (mut chain, archived) = match files.last() {
        None => (Chain::new(key), HashMap::new()),
        Some(f) => {
            let s = read(&f.path, key).map_err(|reason| AuditError::Archive {
                path: f.path.clone(),
                reason,
            })?;
            let last =
                hex32(&s.header.last_hash, "last_hash").map_err(|reason| AuditError::Archive {
                    path: f.path.clone(),
                    reason,
                })?;
            let hashes: HashMap<u64, String> = s
                .entries
                .iter()
                .filter_map(|(_, p)| Entry::parse(p).ok())
                .map(|e| (e.seq, e.hash))
                .collect();
            (Chain::after(key, s.header.last_seq, last), hashes)
        }
    };
    let mut out = ArchiveOutcome::default();
    let mut run: Vec<(String, Vec<u8>, Entry)> = Vec::new();
    let mut first_kept: Option<String> = None;
    let mut reader = bus.tail_reader(stream, StartFrom::Beginning).await?;
    let mut page: std::collections::VecDeque<gekko_bus::Delivery> = Default::default();
    let mut exhausted = false;
    'read: loop {
        while !exhausted && page.len() < 2 {
            let got = reader.read(PAGE, Duration::ZERO).await?;
            exhausted = got.is_empty();
            page.extend(got);
        }
        let Some(d) = page.pop_front() else { break };
        if d.id == head.id || id_ms(&d.id).is_none_or(|ms| ms >= cutoff) {
            first_kept = Some(d.id);
            break 'read;
        }
        // Already in the last archive (a previous run stopped before trimming).
        if let Ok(e) = Entry::parse(&d.payload)
            && e.seq < chain.next_seq
            && archived.get(&e.seq) == Some(&e.hash)
        {
            out.trimmed += 1;
            continue;
        }
        let next = page
            .front()
            .and_then(|n| Entry::parse(&n.payload).ok().map(|e| e.seq));
        let location = Location::Stream {
            stream: stream.to_owned(),
            id: d.id.clone(),
        };
        let e = chain
            .check(&location, &d.payload, next)
            .map_err(|bad| AuditError::Broken {
                stream: stream.to_owned(),
                bad,
            })?;
        run.push((d.id, d.payload.to_vec(), e));
        if run.len() >= MAX_PER_FILE {
            out.files.push(write(dir, key, stream, &run)?);
            out.archived += run.len() as u64;
            run.clear();
        }
    }
    if !run.is_empty() {
        out.files.push(write(dir, key, stream, &run)?);
        out.archived += run.len() as u64;
    }
    if out.archived + out.trimmed > 0 {
        let keep = first_kept.unwrap_or(head.id);
        let trimmed = bus.trim_before(stream, &keep).await?;
        out.trimmed = trimmed;
        tracing::info!(stream, archived = out.archived, trimmed, files = ?out.files, "audit entries past retention sealed into the archive and trimmed from the stream");
        metrics::counter!("gekko_audit_archived_total").increment(out.archived);
    }
    Ok(out)
}

fn id_ms(id: &str) -> Option<i64> {
    id.split_once('-').map_or(id, |(ms, _)| ms).parse().ok()
}
