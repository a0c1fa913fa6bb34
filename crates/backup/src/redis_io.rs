//! Reading streams out of Redis into a snapshot, and writing a snapshot back.
//!
//! One multiplexed connection does everything: a snapshot is a sequence of reads, and a
//! restore a sequence of pipelined writes, so neither gains from a pool.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use redis::Value;
use redis::aio::MultiplexedConnection;

use crate::format::{self, GroupPosition, Manifest, Snapshot, StreamData, StreamManifest};
use crate::{BackupError, BackupKey, files};

/// Entries per `XRANGE` page and per restore pipeline.
const PAGE: usize = 1000;

/// The key prefixes of per-venue durable streams a snapshot covers.
const VENUE_PATTERNS: &[&str] = &["gekko:{orders:*}", "gekko:{fills:*}", "gekko:kill_switch:*"];
/// The config versions stream (written by configd).
const CONFIG_STREAM: &str = "gekko:config";

/// Opens a connection to `url` (the `REDIS_URL`).
///
/// # Errors
/// [`BackupError::Redis`] when the URL is invalid or Redis cannot be reached.
pub async fn connect(url: &str) -> Result<MultiplexedConnection, BackupError> {
    let client = redis::Client::open(url)?;
    Ok(client.get_multiplexed_async_connection().await?)
}

/// The durable streams present in Redis, sorted: `gekko:config`, every
/// `gekko:{orders:*}`, `gekko:{fills:*}` and `gekko:kill_switch:*`, and the audit stream
/// `audit_stream` with its per-program streams `<audit_stream>:*`. Only keys of type
/// stream count (`gekko:config` is also a pub/sub channel name, which is no key).
///
/// # Errors
/// Redis failures.
pub async fn durable_streams(
    conn: &mut MultiplexedConnection,
    audit_stream: &str,
) -> Result<Vec<String>, BackupError> {
    let mut out = BTreeSet::new();
    for exact in [CONFIG_STREAM, audit_stream] {
        let t: String = redis::cmd("TYPE").arg(exact).query_async(conn).await?;
        if t == "stream" {
            out.insert(exact.to_owned());
        }
    }
    let audit_pattern = format!("{audit_stream}:*");
    for pattern in VENUE_PATTERNS
        .iter()
        .copied()
        .chain(std::iter::once(audit_pattern.as_str()))
    {
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .arg("TYPE")
                .arg("stream")
                .query_async(conn)
                .await?;
            out.extend(keys);
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    Ok(out.into_iter().collect())
}

/// Reads `names` completely: each stream up to its last id at the moment it is read,
/// with its consumer groups' positions. A name that is no longer a stream is skipped.
///
/// Streams are read one after another, not at one instant: an entry appended to a
/// stream already read belongs to the next snapshot.
///
/// # Errors
/// Redis failures, [`BackupError::Reply`] for a reply of an unexpected shape.
pub async fn read_streams(
    conn: &mut MultiplexedConnection,
    names: &[String],
) -> Result<Vec<StreamData>, BackupError> {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let info: Value = match redis::cmd("XINFO")
            .arg("STREAM")
            .arg(name)
            .query_async(conn)
            .await
        {
            Ok(v) => v,
            // Deleted (or retyped) since it was listed.
            Err(e)
                if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError) =>
            {
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let info = pairs(info)?;
        let last_id = text(field(&info, "last-generated-id")?)?;
        let entries = read_entries(conn, name, &last_id).await?;
        let groups = read_groups(conn, name).await?;
        out.push(StreamData {
            manifest: StreamManifest {
                name: name.clone(),
                entries: entries.len() as u64,
                last_id,
                groups,
            },
            entries,
        });
    }
    Ok(out)
}

type Entries = Vec<format::StreamEntry>;

async fn read_entries(
    conn: &mut MultiplexedConnection,
    name: &str,
    end: &str,
) -> Result<Entries, BackupError> {
    let mut out = Vec::new();
    let mut start = "-".to_owned();
    loop {
        let page: Value = redis::cmd("XRANGE")
            .arg(name)
            .arg(&start)
            .arg(end)
            .arg("COUNT")
            .arg(PAGE)
            .query_async(conn)
            .await?;
        let Value::Array(items) = page else {
            return Err(BackupError::Reply(format!("XRANGE {name}: not an array")));
        };
        let n = items.len();
        for item in items {
            let Value::Array(mut parts) = item else {
                return Err(BackupError::Reply(format!("XRANGE {name}: bad entry")));
            };
            if parts.len() != 2 {
                return Err(BackupError::Reply(format!("XRANGE {name}: bad entry")));
            }
            let fields = parts.pop().unwrap_or(Value::Nil);
            let id = text(&parts[0])?;
            let flat = match fields {
                Value::Array(v) => v,
                Value::Nil => Vec::new(),
                _ => return Err(BackupError::Reply(format!("XRANGE {name}: bad fields"))),
            };
            let mut kv = Vec::with_capacity(flat.len() / 2);
            let mut it = flat.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                kv.push((bytes(k)?, bytes(v)?));
            }
            out.push((id, kv));
        }
        match out.last() {
            Some((last, _)) if n == PAGE => start = format!("({last}"),
            _ => break,
        }
    }
    Ok(out)
}

async fn read_groups(
    conn: &mut MultiplexedConnection,
    name: &str,
) -> Result<Vec<GroupPosition>, BackupError> {
    let groups: Value = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(name)
        .query_async(conn)
        .await?;
    let Value::Array(groups) = groups else {
        return Err(BackupError::Reply(format!(
            "XINFO GROUPS {name}: not an array"
        )));
    };
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let g = pairs(g)?;
        let group = text(field(&g, "name")?)?;
        let last = text(field(&g, "last-delivered-id")?)?;
        let pending = match field(&g, "pending")? {
            Value::Int(n) => u64::try_from(*n).unwrap_or(0),
            other => text(other)?.parse().unwrap_or(0),
        };
        let mut resume_after = last;
        if pending > 0 {
            // XPENDING's summary: [count, smallest id, greatest id, consumers].
            let summary: Value = redis::cmd("XPENDING")
                .arg(name)
                .arg(&group)
                .query_async(conn)
                .await?;
            if let Value::Array(s) = summary
                && let Some(min) = s.get(1)
                && !matches!(min, Value::Nil)
            {
                resume_after = id_before(&text(min)?);
            }
        }
        out.push(GroupPosition {
            name: group,
            resume_after,
            pending,
        });
    }
    Ok(out)
}

/// The stream id just before `id` (`5-0` → `4-18446744073709551615`, `5-3` → `5-2`).
fn id_before(id: &str) -> String {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    let (ms, seq): (u64, u64) = (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0));
    if seq > 0 {
        format!("{ms}-{}", seq - 1)
    } else if ms > 0 {
        format!("{}-{}", ms - 1, u64::MAX)
    } else {
        "0-0".to_owned()
    }
}

/// What [`take_snapshot`] did.
#[derive(Debug, Clone)]
pub struct SnapshotOutcome {
    /// The new file.
    pub path: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Its size in bytes.
    pub bytes: u64,
    /// Older snapshots deleted by retention.
    pub pruned: Vec<PathBuf>,
}

/// Takes a snapshot of every [durable stream](durable_streams) into `dir`, sealed under
/// `key` when given, then keeps the newest `retention`.
///
/// # Errors
/// Redis failures, and [`BackupError::Io`] when the file cannot be written or old ones
/// deleted (a snapshot written before a pruning failure stays written).
pub async fn take_snapshot(
    conn: &mut MultiplexedConnection,
    audit_stream: &str,
    dir: &Path,
    retention: u32,
    key: Option<&BackupKey>,
) -> Result<SnapshotOutcome, BackupError> {
    let names = durable_streams(conn, audit_stream).await?;
    let streams = read_streams(conn, &names).await?;
    let created_ms = now_ms();
    let bytes = format::encode(&streams, created_ms, key)?;
    let (manifest, _) = format::manifest_of(&bytes)?;
    // Encoding and writing are blocking work; a snapshot is small next to a tick of the
    // runtime, but a large one should not stall other tasks on this worker.
    let dir2 = dir.to_owned();
    let len = bytes.len() as u64;
    let (path, pruned) = tokio::task::spawn_blocking(move || {
        let path = files::write_atomic(&dir2, created_ms, &bytes)?;
        let pruned = files::prune(&dir2, retention)?;
        Ok::<_, BackupError>((path, pruned))
    })
    .await
    .map_err(|e| BackupError::Io {
        path: dir.to_owned(),
        source: std::io::Error::other(e.to_string()),
    })??;
    Ok(SnapshotOutcome {
        path,
        manifest,
        bytes: len,
        pruned,
    })
}

/// How [`restore`] treats a target that already holds data.
#[derive(Debug, Clone, Copy, Default)]
pub struct RestoreOptions {
    /// Restore into a non-empty Redis: each of the snapshot's streams is deleted and
    /// written anew; other keys are left alone.
    pub force: bool,
}

/// What [`restore`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreOutcome {
    /// Streams written.
    pub streams: usize,
    /// Entries written.
    pub entries: u64,
    /// Consumer groups created.
    pub groups: usize,
}

/// Writes a checked `snapshot` into the Redis behind `conn`: every entry with `XADD`
/// and its original id (so ids and order are those of the source), each stream's last
/// id with `XSETID`, each consumer group at its saved position; then checks each
/// stream's length.
///
/// # Errors
/// [`BackupError::NotEmpty`] when the target holds keys and `force` is not set (nothing
/// is written); Redis failures; [`BackupError::Reply`] when a stream's length afterwards
/// is not the snapshot's count (something else wrote to it meanwhile).
pub async fn restore(
    conn: &mut MultiplexedConnection,
    snapshot: &Snapshot,
    opts: RestoreOptions,
) -> Result<RestoreOutcome, BackupError> {
    let keys: u64 = redis::cmd("DBSIZE").query_async(conn).await?;
    if keys > 0 && !opts.force {
        return Err(BackupError::NotEmpty { keys });
    }
    let mut outcome = RestoreOutcome {
        streams: 0,
        entries: 0,
        groups: 0,
    };
    for s in &snapshot.streams {
        let name = &s.manifest.name;
        if opts.force {
            let _: i64 = redis::cmd("DEL").arg(name).query_async(conn).await?;
        }
        for chunk in s.entries.chunks(PAGE) {
            let mut pipe = redis::pipe();
            for (id, fields) in chunk {
                let cmd = pipe.cmd("XADD").arg(name).arg(id);
                for (k, v) in fields {
                    cmd.arg(k.as_slice()).arg(v.as_slice());
                }
                cmd.ignore();
            }
            let () = pipe.query_async(conn).await?;
        }
        if s.entries.is_empty() {
            // A stream whose entries were all trimmed still exists (and may carry groups
            // and a last id); make it exist empty.
            let () = redis::pipe()
                .cmd("XGROUP")
                .arg("CREATE")
                .arg(name)
                .arg("gekko-restore-tmp")
                .arg("$")
                .arg("MKSTREAM")
                .ignore()
                .cmd("XGROUP")
                .arg("DESTROY")
                .arg(name)
                .arg("gekko-restore-tmp")
                .ignore()
                .query_async(conn)
                .await?;
        }
        let () = redis::cmd("XSETID")
            .arg(name)
            .arg(&s.manifest.last_id)
            .query_async(conn)
            .await?;
        for g in &s.manifest.groups {
            let () = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(name)
                .arg(&g.name)
                .arg(&g.resume_after)
                .query_async(conn)
                .await?;
            outcome.groups += 1;
        }
        let len: u64 = redis::cmd("XLEN").arg(name).query_async(conn).await?;
        if len != s.manifest.entries {
            return Err(BackupError::Reply(format!(
                "{name} holds {len} entries after the restore, the snapshot {}",
                s.manifest.entries
            )));
        }
        outcome.streams += 1;
        outcome.entries += s.manifest.entries;
    }
    Ok(outcome)
}

fn pairs(v: Value) -> Result<Vec<(String, Value)>, BackupError> {
    match v {
        Value::Array(flat) => {
            let mut out = Vec::with_capacity(flat.len() / 2);
            let mut it = flat.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.push((text(&k)?, v));
            }
            Ok(out)
        }
        Value::Map(m) => m.into_iter().map(|(k, v)| Ok((text(&k)?, v))).collect(),
        _ => Err(BackupError::Reply("expected a key/value reply".to_owned())),
    }
}

fn field<'a>(kv: &'a [(String, Value)], name: &str) -> Result<&'a Value, BackupError> {
    kv.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .ok_or_else(|| BackupError::Reply(format!("no `{name}` in the reply")))
}

fn text(v: &Value) -> Result<String, BackupError> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone())
            .map_err(|_| BackupError::Reply("a non-UTF-8 id or name".to_owned())),
        Value::SimpleString(s) => Ok(s.clone()),
        Value::Int(n) => Ok(n.to_string()),
        _ => Err(BackupError::Reply(format!("expected a string, got {v:?}"))),
    }
}

fn bytes(v: Value) -> Result<Vec<u8>, BackupError> {
    match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        Value::Int(n) => Ok(n.to_string().into_bytes()),
        other => Err(BackupError::Reply(format!("expected bytes, got {other:?}"))),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::id_before;

    #[test]
    fn the_id_before() {
        assert_eq!(id_before("5-3"), "5-2");
        assert_eq!(id_before("5-0"), format!("4-{}", u64::MAX));
        assert_eq!(id_before("0-0"), "0-0");
    }
}
