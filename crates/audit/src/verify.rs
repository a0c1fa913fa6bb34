//! Walking the chain (sealed archives first, then the stream) and checking every link.
//!
//! At each position the checks run in this order, and the first failure is the answer:
//!
//! 1. the entry parses and was signed under the configured key (its key id);
//! 2. its hash matches its content: otherwise it was **edited**;
//! 3. its MAC matches its hash: otherwise it was edited and re-hashed by someone without
//!    the key;
//! 4. its `seq` is the one expected: a higher one means entries were **deleted** (or, when
//!    the expected one comes right after, that two entries were **swapped**), a lower one
//!    means entries were reordered or replayed;
//! 5. its `prev` is the previous entry's hash: otherwise it does not belong after it.
//!
//! What a chain alone cannot show: entries cut off the *end* (the newest ones). The report
//! carries the head (seq and hash) so an operator can compare it with one noted earlier.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gekko_bus::{Bus, StartFrom};

use crate::AuditError;
use crate::archive;
use crate::entry::{Entry, GENESIS};
use crate::key::AuditKey;

/// How many stream entries one read fetches.
const PAGE: usize = 1_000;

/// Where an entry was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// On the stream, at this entry id.
    Stream {
        /// The stream.
        stream: String,
        /// The entry id (`<ms>-<n>`).
        id: String,
    },
    /// In a sealed archive file; `id` is the stream id the entry had before archiving.
    Archive {
        /// The archive file.
        file: PathBuf,
        /// The entry's former stream id.
        id: String,
    },
}

impl Location {
    /// The stream entry id (the former one for archived entries).
    #[must_use]
    pub fn stream_id(&self) -> &str {
        match self {
            Location::Stream { id, .. } | Location::Archive { id, .. } => id,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Stream { stream, id } => write!(f, "stream {stream} id {id}"),
            Location::Archive { file, id } => {
                write!(f, "archive {} (former stream id {id})", file.display())
            }
        }
    }
}

/// What is wrong with an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Not an audit entry at all.
    Malformed(String),
    /// Signed under another key than the configured one.
    WrongKey {
        /// The key id in the entry.
        entry: String,
        /// The configured key's id.
        configured: String,
    },
    /// The content does not match the entry's hash: the entry was edited.
    HashMismatch,
    /// The hash does not match its MAC: edited and re-hashed without the key.
    MacMismatch,
    /// Entries `from..=to` are not there: deleted.
    Missing {
        /// The first missing seq.
        from: u64,
        /// The last missing seq.
        to: u64,
    },
    /// This entry belongs elsewhere in the chain: reordered (swapped) or replayed.
    OutOfOrder {
        /// The seq the entry carries.
        found: u64,
    },
    /// The entry's `prev` is not the previous entry's hash.
    PrevMismatch,
    /// A sealed archive cannot be opened: tampered, truncated, or sealed under another key.
    Archive(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Malformed(why) => write!(f, "malformed entry: {why}"),
            Problem::WrongKey { entry, configured } => write!(
                f,
                "signed under key id {entry}, but the configured audit key has id {configured} (wrong key?)"
            ),
            Problem::HashMismatch => {
                f.write_str("content does not match its hash: the entry was edited")
            }
            Problem::MacMismatch => f.write_str(
                "hash does not match its HMAC: the entry was edited and re-hashed without the audit key",
            ),
            Problem::Missing { from, to } if from == to => {
                write!(f, "entry seq {from} is missing: deleted")
            }
            Problem::Missing { from, to } => {
                write!(f, "entries seq {from} to {to} are missing: deleted")
            }
            Problem::OutOfOrder { found } => write!(
                f,
                "found seq {found} here: entries were reordered (swapped) or replayed"
            ),
            Problem::PrevMismatch => f.write_str(
                "its prev hash is not the previous entry's hash: it does not belong after it",
            ),
            Problem::Archive(why) => write!(f, "{why}"),
        }
    }
}

/// The first entry that fails verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEntry {
    /// Its position in the chain as read (0 = the first entry of the oldest archive or,
    /// without archives, of the stream).
    pub position: u64,
    /// The seq that was expected at this position.
    pub expected_seq: u64,
    /// The seq the entry carries, when it could be read.
    pub seq: Option<u64>,
    /// Where it is.
    pub location: Location,
    /// What is wrong.
    pub problem: Problem,
}

impl fmt::Display for BadEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "first bad entry at position {} (expected seq {}",
            self.position, self.expected_seq
        )?;
        if let Some(seq) = self.seq
            && seq != self.expected_seq
        {
            write!(f, ", found seq {seq}")?;
        }
        write!(f, ") in {}: {}", self.location, self.problem)
    }
}

/// The newest verified entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// Its seq.
    pub seq: u64,
    /// Its hash, hex.
    pub hash: String,
    /// Where it is.
    pub location: Location,
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The stream verified.
    pub stream: String,
    /// How many archive files were read.
    pub archives: usize,
    /// How many entries verified (before the first bad one).
    pub entries: u64,
    /// The newest verified entry.
    pub head: Option<ChainHead>,
    /// The first entry that failed, if any.
    pub first_bad: Option<BadEntry>,
}

impl VerifyReport {
    /// Whether every entry verified.
    #[must_use]
    pub fn is_intact(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// The running state of a verification: what the next entry must look like.
#[derive(Debug)]
pub(crate) struct Chain<'k> {
    key: &'k AuditKey,
    pub(crate) next_seq: u64,
    pub(crate) prev: [u8; 32],
    position: u64,
}

impl<'k> Chain<'k> {
    /// A chain from its genesis.
    pub(crate) fn new(key: &'k AuditKey) -> Self {
        Self::after(key, 0, GENESIS)
    }

    /// A chain that continues after entry `seq` with hash `prev`.
    pub(crate) fn after(key: &'k AuditKey, seq: u64, prev: [u8; 32]) -> Self {
        Self {
            key,
            next_seq: seq + 1,
            prev,
            position: 0,
        }
    }

    /// Checks the entry at the next position; `next_seq` is the seq of the entry after it
    /// (when there is one and it parses), which tells a swap from a deletion.
    pub(crate) fn check(
        &mut self,
        location: &Location,
        payload: &[u8],
        next_seq: Option<u64>,
    ) -> Result<Entry, Box<BadEntry>> {
        let bad = |seq: Option<u64>, problem: Problem| {
            Box::new(BadEntry {
                position: self.position,
                expected_seq: self.next_seq,
                seq,
                location: location.clone(),
                problem,
            })
        };
        let e = Entry::parse(payload).map_err(|why| bad(None, Problem::Malformed(why)))?;
        let seq = Some(e.seq);
        if e.key_id != self.key.id() {
            return Err(bad(
                seq,
                Problem::WrongKey {
                    entry: e.key_id.clone(),
                    configured: self.key.id().to_owned(),
                },
            ));
        }
        let (hash, prev) = e
            .hashes()
            .map_err(|why| bad(seq, Problem::Malformed(why)))?;
        if e.compute_hash(&prev) != hash {
            return Err(bad(seq, Problem::HashMismatch));
        }
        let mac = hex::decode(&e.mac).unwrap_or_default();
        if !self.key.mac_matches(&hash, &mac) {
            return Err(bad(seq, Problem::MacMismatch));
        }
        if e.seq > self.next_seq && next_seq != Some(self.next_seq) {
            return Err(bad(
                seq,
                Problem::Missing {
                    from: self.next_seq,
                    to: e.seq - 1,
                },
            ));
        }
        if e.seq != self.next_seq {
            return Err(bad(seq, Problem::OutOfOrder { found: e.seq }));
        }
        if prev != self.prev {
            return Err(bad(seq, Problem::PrevMismatch));
        }
        self.next_seq += 1;
        self.prev = hash;
        self.position += 1;
        Ok(e)
    }

    /// A failure that is about a whole archive file rather than one entry in it.
    pub(crate) fn archive_problem(&self, file: &Path, why: String) -> Box<BadEntry> {
        Box::new(BadEntry {
            position: self.position,
            expected_seq: self.next_seq,
            seq: None,
            location: Location::Archive {
                file: file.to_owned(),
                id: String::new(),
            },
            problem: Problem::Archive(why),
        })
    }
}

/// The seq an entry claims, for look-ahead; `None` when it does not parse.
fn peek_seq(payload: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Seq {
        seq: u64,
    }
    serde_json::from_slice::<Seq>(payload).ok().map(|s| s.seq)
}

/// Walks the whole chain of `stream`: the sealed archives in `archive_dir` in order, then
/// the stream. `visit` sees every entry that verified, in order. Stops at the first bad
/// entry, which the report names.
///
/// # Errors
/// Bus failures and an unreadable archive directory; a bad entry or a bad archive file is
/// not an error but the report's [`VerifyReport::first_bad`].
pub(crate) async fn walk(
    bus: &dyn Bus,
    key: &AuditKey,
    stream: &str,
    archive_dir: &Path,
    mut visit: impl FnMut(&Entry, &Location) -> Result<(), AuditError>,
) -> Result<VerifyReport, AuditError> {
    let mut chain = Chain::new(key);
    let mut report = VerifyReport {
        stream: stream.to_owned(),
        archives: 0,
        entries: 0,
        head: None,
        first_bad: None,
    };
    // The last archive's hashes by seq: a crash between sealing an archive and trimming
    // the stream leaves the same entries in both, which is not tampering.
    let mut archived: HashMap<u64, String> = HashMap::new();
    for file in archive::list(archive_dir, stream)? {
        report.archives += 1;
        let sealed = match archive::read(&file.path, key) {
            Ok(s) if s.header.stream == stream => s,
            Ok(s) => {
                report.first_bad = Some(*chain.archive_problem(
                    &file.path,
                    format!("the archive is of stream {}, not {stream}", s.header.stream),
                ));
                return Ok(report);
            }
            Err(why) => {
                report.first_bad = Some(*chain.archive_problem(&file.path, why));
                return Ok(report);
            }
        };
        archived.clear();
        let n = sealed.entries.len();
        for i in 0..n {
            let (id, payload) = &sealed.entries[i];
            let next = sealed.entries.get(i + 1).and_then(|(_, p)| peek_seq(p));
            let location = Location::Archive {
                file: file.path.clone(),
                id: id.clone(),
            };
            match chain.check(&location, payload, next) {
                Ok(e) => {
                    visit(&e, &location)?;
                    report.entries += 1;
                    archived.insert(e.seq, e.hash.clone());
                    report.head = Some(ChainHead {
                        seq: e.seq,
                        hash: e.hash,
                        location,
                    });
                }
                Err(bad) => {
                    report.first_bad = Some(*bad);
                    return Ok(report);
                }
            }
        }
        if chain.next_seq != sealed.header.last_seq + 1
            || hex::encode(chain.prev) != sealed.header.last_hash
        {
            report.first_bad = Some(*chain.archive_problem(
                &file.path,
                format!(
                    "the archive says it ends at seq {} with hash {}, its entries end at seq {}",
                    sealed.header.last_seq,
                    sealed.header.last_hash,
                    chain.next_seq - 1
                ),
            ));
            return Ok(report);
        }
    }

    let mut reader = bus.tail_reader(stream, StartFrom::Beginning).await?;
    let mut buf: VecDeque<gekko_bus::Delivery> = VecDeque::new();
    let mut exhausted = false;
    loop {
        // Keep one entry of look-ahead (see `Chain::check`).
        while !exhausted && buf.len() < 2 {
            let page = reader.read(PAGE, Duration::ZERO).await?;
            if page.is_empty() {
                exhausted = true;
            }
            buf.extend(page);
        }
        let Some(d) = buf.pop_front() else {
            return Ok(report);
        };
        let location = Location::Stream {
            stream: stream.to_owned(),
            id: d.id.clone(),
        };
        if let Some(seq) = peek_seq(&d.payload)
            && seq < chain.next_seq
            && let Ok(e) = Entry::parse(&d.payload)
            && archived.get(&seq) == Some(&e.hash)
        {
            continue;
        }
        let next = buf.front().and_then(|n| peek_seq(&n.payload));
        match chain.check(&location, &d.payload, next) {
            Ok(e) => {
                visit(&e, &location)?;
                report.entries += 1;
                report.head = Some(ChainHead {
                    seq: e.seq,
                    hash: e.hash,
                    location,
                });
            }
            Err(bad) => {
                report.first_bad = Some(*bad);
                return Ok(report);
            }
        }
    }
}

/// Verifies the whole chain of `stream` (archives in `archive_dir`, then the stream).
///
/// # Errors
/// Bus failures and an unreadable archive directory. A broken chain is reported in
/// [`VerifyReport::first_bad`], not as an error.
pub async fn verify(
    bus: &dyn Bus,
    key: &AuditKey,
    stream: &str,
    archive_dir: &Path,
) -> Result<VerifyReport, AuditError> {
    walk(bus, key, stream, archive_dir, |_, _| Ok(())).await
}

/// Writes every verified entry with `ts_ms >= since_ms` as one JSON object per line, in
/// chain order, and returns the verification report (the export stops at the first bad
/// entry, which the report names) and the number of lines written.
///
/// Each line is the stored entry plus `stream_id`, `archived` (whether it came from an
/// archive) and `time` (RFC 3339, UTC).
///
/// # Errors
/// As [`verify`], and write failures.
pub async fn export(
    bus: &dyn Bus,
    key: &AuditKey,
    stream: &str,
    archive_dir: &Path,
    since_ms: i64,
    out: &mut dyn std::io::Write,
) -> Result<(VerifyReport, u64), AuditError> {
    let mut written = 0u64;
    let report = walk(bus, key, stream, archive_dir, |e, loc| {
        if e.ts_ms < since_ms {
            return Ok(());
        }
        let mut v = serde_json::to_value(e).map_err(|err| AuditError::Io(err.into()))?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("stream_id".into(), loc.stream_id().into());
            obj.insert(
                "archived".into(),
                matches!(loc, Location::Archive { .. }).into(),
            );
            obj.insert("time".into(), crate::time::format_rfc3339(e.ts_ms).into());
        }
        serde_json::to_writer(&mut *out, &v).map_err(|err| AuditError::Io(err.into()))?;
        out.write_all(b"\n")?;
        written += 1;
        Ok(())
    })
    .await?;
    out.flush()?;
    Ok((report, written))
}
