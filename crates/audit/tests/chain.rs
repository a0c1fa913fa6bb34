//! The audit chain against both buses (the in-process bus and a real `redis-server`):
//! a fresh chain verifies; an edited, a deleted and a swapped entry are each caught at
//! the right position; the chain continues after a restart; concurrent records form one
//! chain; archives round-trip and a tampered or truncated archive, or a wrong key, is a
//! clear failure.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gekko_audit::{
    AuditError, AuditKey, AuditLog, AuditRecord, Entry, KeyMode, KeySource, Location, Problem,
    VerifyReport,
};
use gekko_bus::{Bus, MemoryBus, RedisBus, RedisBusOptions, StartFrom, StreamSpec};
use gekko_config::AuditLogging;
use gekko_testkit::RedisServer;
use secrecy::SecretString;

const SECRET: [u8; 32] = [0x42; 32];
const STREAM: &str = "t:audit";

type Fixture = (Arc<dyn Bus>, Option<RedisServer>);

fn memory() -> Fixture {
    (Arc::new(MemoryBus::new()), None)
}

async fn redis() -> Fixture {
    let server = RedisServer::start();
    let bus = RedisBus::connect(&server.url(), RedisBusOptions::default())
        .await
        .expect("connect to test redis");
    (Arc::new(bus), Some(server))
}

/// A fresh, empty directory under the system temp dir.
fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "gekko-audit-{tag}-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    nanos ^ (N.fetch_add(1, Ordering::Relaxed) << 40)
}

/// Lets the clock move past the last entry's id, so that "older than zero" covers it.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(5)).await;
}

fn settings(dir: &Path) -> AuditLogging {
    AuditLogging {
        stream: STREAM.to_owned(),
        key: Some(SecretString::from(hex::encode(SECRET))),
        archive_dir: dir.to_owned(),
        ..AuditLogging::default()
    }
}

fn key() -> AuditKey {
    AuditKey::from_secret(&SECRET)
}

fn rec(i: usize) -> AuditRecord {
    AuditRecord::new("tester", "order.place", "ok")
        .with_detail(serde_json::json!({"client_id": format!("c-{i}"), "qty": "0.5"}))
}

async fn record_n(log: &AuditLog, n: usize) {
    for i in 0..n {
        log.record(rec(i)).await.unwrap().expect("enabled");
    }
}

async fn entries(bus: &dyn Bus, stream: &str) -> Vec<(String, Bytes)> {
    let mut r = bus.tail_reader(stream, StartFrom::Beginning).await.unwrap();
    let mut out = Vec::new();
    loop {
        let page = r.read(1000, Duration::ZERO).await.unwrap();
        if page.is_empty() {
            return out;
        }
        out.extend(page.into_iter().map(|d| (d.id, d.payload)));
    }
}

/// Rewrites the stream the way someone with write access to Redis would: into a new
/// stream, entry by entry, with `f` applied to the list first. Returns the new stream's
/// ids.
async fn rewrite(bus: &dyn Bus, to: &str, f: impl FnOnce(&mut Vec<Bytes>)) -> Vec<String> {
    let mut payloads: Vec<Bytes> = entries(bus, STREAM)
        .await
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    f(&mut payloads);
    let spec = StreamSpec::durable(to);
    let mut ids = Vec::new();
    for p in payloads {
        ids.push(bus.append(&spec, p).await.unwrap());
    }
    ids
}

fn edit(payload: &Bytes, f: impl FnOnce(&mut Entry)) -> Bytes {
    let mut e = Entry::parse(payload).unwrap();
    f(&mut e);
    e.to_bytes()
}

async fn verify(bus: &dyn Bus, stream: &str, dir: &Path) -> VerifyReport {
    gekko_audit::verify(bus, &key(), stream, dir).await.unwrap()
}

fn stream_location(stream: &str, id: &str) -> Location {
    Location::Stream {
        stream: stream.to_owned(),
        id: id.to_owned(),
    }
}

mod scenarios {
    use super::*;

    pub(crate) async fn fresh_chain_verifies(bus: Arc<dyn Bus>) {
        let dir = temp_dir("fresh");
        let log = AuditLog::open(bus.clone(), &settings(&dir), "gekko")
            .await
            .unwrap();
        for i in 0..20 {
            let id = log.record(rec(i)).await.unwrap().unwrap();
            assert_eq!(id.seq, i as u64 + 1);
        }
        let report = log.verify().await.unwrap();
        assert!(report.is_intact(), "{:?}", report.first_bad);
        assert_eq!((report.entries, report.archives), (20, 0));
        let head = report.head.unwrap();
        assert_eq!(head.seq, 20);
        let stored = entries(&*bus, STREAM).await;
        assert_eq!(head.location, stream_location(STREAM, &stored[19].0));
        let e = Entry::parse(&stored[0].1).unwrap();
        assert_eq!(
            (
                e.seq,
                e.writer.as_str(),
                e.actor.as_str(),
                e.action.as_str(),
                e.prev.as_str()
            ),
            (1, "gekko", "tester", "order.place", &*"0".repeat(64))
        );
    }

    pub(crate) async fn edited_entry_is_caught(bus: Arc<dyn Bus>) {
        let dir = temp_dir("edit");
        let log = AuditLog::open(bus.clone(), &settings(&dir), "gekko")
            .await
            .unwrap();
        record_n(&log, 10).await;

        // Content changed, hash left alone.
        let ids = rewrite(&*bus, "t:edited", |p| {
            p[4] = edit(&p[4], |e| e.outcome = "rejected".into());
        })
        .await;
        let bad = verify(&*bus, "t:edited", &dir)
            .await
            .first_bad
            .expect("caught");
        assert_eq!((bad.position, bad.expected_seq, bad.seq), (4, 5, Some(5)));
        assert_eq!(bad.problem, Problem::HashMismatch);
        assert_eq!(bad.location, stream_location("t:edited", &ids[4]));
        let text = bad.to_string();
        assert!(
            text.contains("position 4")
                && text.contains("expected seq 5")
                && text.contains(&ids[4])
                && text.contains("edited"),
            "{text}"
        );

        // Content changed and re-hashed by someone without the key.
        rewrite(&*bus, "t:rehashed", |p| {
            p[4] = edit(&p[4], |e| {
                e.detail = serde_json::json!({"client_id": "c-4", "qty": "50"});
                let prev: [u8; 32] = hex::decode(&e.prev).unwrap().try_into().unwrap();
                e.hash = hex::encode(e.compute_hash(&prev));
            });
        })
        .await;
        let bad = verify(&*bus, "t:rehashed", &dir)
            .await
            .first_bad
            .expect("caught");
        assert_eq!((bad.position, bad.expected_seq), (4, 5));
        assert_eq!(bad.problem, Problem::MacMismatch);

        // The original is untouched and still verifies.
        assert!(verify(&*bus, STREAM, &dir).await.is_intact());
    }

    pub(crate) async fn deleted_entry_is_caught(bus: Arc<dyn Bus>) {
        let dir = temp_dir("delete");
        let log = AuditLog::open(bus.clone(), &settings(&dir), "gekko")
            .await
            .unwrap();
        record_n(&log, 10).await;
        let ids = rewrite(&*bus, "t:deleted", |p| {
            p.remove(4);
        })
        .await;
        let bad = verify(&*bus, "t:deleted", &dir)
            .await
            .first_bad
            .expect("caught");
        assert_eq!((bad.position, bad.expected_seq, bad.seq), (4, 5, Some(6)));
        assert_eq!(bad.problem, Problem::Missing { from: 5, to: 5 });
        assert_eq!(bad.location, stream_location("t:deleted", &ids[4]));
        assert!(bad.to_string().contains("seq 5 is missing"), "{bad}");

        // Deleting the oldest entries is caught too (no archive covers them).
        rewrite(&*bus, "t:head-cut", |p| {
            p.drain(..3);
        })
        .await;
        let bad = verify(&*bus, "t:head-cut", &dir)
            .await
            .first_bad
            .expect("caught");
        assert_eq!((bad.position, bad.expected_seq), (0, 1));
        assert_eq!(bad.problem, Problem::Missing { from: 1, to: 3 });
    }

    pub(crate) async fn swapped_pair_is_caught(bus: Arc<dyn Bus>) {
        let dir = temp_dir("swap");
        let log = AuditLog::open(bus.clone(), &settings(&dir), "gekko")
            .await
            .unwrap();
        record_n(&log, 10).await;
        let ids = rewrite(&*bus, "t:swapped", |p| p.swap(4, 5)).await;
        let bad = verify(&*bus, "t:swapped", &dir)
            .await
            .first_bad
            .expect("caught");
        assert_eq!((bad.position, bad.expected_seq, bad.seq), (4, 5, Some(6)));
        assert_eq!(bad.problem, Problem::OutOfOrder { found: 6 });
        assert_eq!(bad.location, stream_location("t:swapped", &ids[4]));
        assert!(bad.to_string().contains("swapped"), "{bad}");

        // The last two swapped: no look-ahead entry, still at the right position.
        rewrite(&*bus, "t:swapped-tail", |p| p.swap(8, 9)).await;
        let bad = verify(&*bus, "t:swapped-tail", &dir)
            .await
            .first_bad
            .expect("caught");
        assert_eq!((bad.position, bad.expected_seq, bad.seq), (8, 9, Some(10)));
        assert_eq!(bad.problem, Problem::OutOfOrder { found: 10 });
    }

    pub(crate) async fn restart_continues_the_chain(bus: Arc<dyn Bus>) {
        let dir = temp_dir("restart");
        let log = AuditLog::open(bus.clone(), &settings(&dir), "gekko")
            .await
            .unwrap();
        record_n(&log, 3).await;
        drop(log);
        let log = AuditLog::open(bus.clone(), &settings(&dir), "gekko")
            .await
            .unwrap();
        let id = log.record(rec(3)).await.unwrap().unwrap();
        assert_eq!(id.seq, 4, "continues after the head, not from 1");
        record_n(&log, 2).await;
        let report = log.verify().await.unwrap();
        assert!(report.is_intact(), "{:?}", report.first_bad);
        assert_eq!(report.entries, 6);
        let stored = entries(&*bus, STREAM).await;
        let third = Entry::parse(&stored[2].1).unwrap();
        let fourth = Entry::parse(&stored[3].1).unwrap();
        assert_eq!(fourth.prev, third.hash);
    }

    pub(crate) async fn concurrent_records_form_one_chain(bus: Arc<dyn Bus>) {
        let dir = temp_dir("concurrent");
        let log = AuditLog::open(bus.clone(), &settings(&dir), "gekko")
            .await
            .unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..16 {
            let log = log.clone();
            tasks.spawn(async move {
                for i in 0..25 {
                    log.record(rec(t * 100 + i)).await.unwrap();
                }
            });
        }
        // Detached records from a "sync" context join the same chain.
        for i in 0..50 {
            log.record_detached(rec(10_000 + i));
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        log.flush().await;
        let report = log.verify().await.unwrap();
        assert!(report.is_intact(), "{:?}", report.first_bad);
        assert_eq!(report.entries, 16 * 25 + 50);
    }

    pub(crate) async fn archive_round_trip(bus: Arc<dyn Bus>) {
        let dir = temp_dir("archive");
        let log = AuditLog::open(bus.clone(), &settings(&dir), "gekko")
            .await
            .unwrap();
        record_n(&log, 30).await;
        settle().await;
        let out = gekko_audit::archive_expired(&*bus, &key(), STREAM, &dir, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!((out.archived, out.trimmed, out.files.len()), (29, 29, 1));
        assert_eq!(bus.stream_len(STREAM).await.unwrap(), 1, "the head stays");
        let name = out.files[0]
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            name,
            "t_audit.00000000000000000001-00000000000000000029.sealed"
        );

        record_n(&log, 5).await;
        let report = log.verify().await.unwrap();
        assert!(report.is_intact(), "{:?}", report.first_bad);
        assert_eq!((report.entries, report.archives), (35, 1));
        assert_eq!(report.head.as_ref().map(|h| h.seq), Some(35));

        // A second run continues from the first archive's head.
        settle().await;
        let out = gekko_audit::archive_expired(&*bus, &key(), STREAM, &dir, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!((out.archived, out.trimmed), (5, 5));
        let report = log.verify().await.unwrap();
        assert!(report.is_intact(), "{:?}", report.first_bad);
        assert_eq!((report.entries, report.archives), (35, 2));

        // Nothing is older than a day: nothing moves.
        let out =
            gekko_audit::archive_expired(&*bus, &key(), STREAM, &dir, Duration::from_secs(86_400))
                .await
                .unwrap();
        assert_eq!(out, gekko_audit::ArchiveOutcome::default());

        // The chain keeps growing after archiving, and a restart still continues it.
        drop(log);
        let log = AuditLog::open(bus.clone(), &settings(&dir), "gekko")
            .await
            .unwrap();
        assert_eq!(log.record(rec(99)).await.unwrap().unwrap().seq, 36);
        assert!(log.verify().await.unwrap().is_intact());

        // An export spans archives and stream, in order.
        let mut out = Vec::new();
        let (report, lines) = gekko_audit::export(&*bus, &key(), STREAM, &dir, 0, &mut out)
            .await
            .unwrap();
        assert!(report.is_intact());
        assert_eq!(lines, 36);
        let text = String::from_utf8(out).unwrap();
        let seqs: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(seqs, (1..=36).collect::<Vec<_>>());
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["archived"], true);
        assert!(first["time"].as_str().unwrap().ends_with('Z'));
        // --since in the future exports nothing but still verifies everything.
        let mut none = Vec::new();
        let (report, lines) = gekko_audit::export(&*bus, &key(), STREAM, &dir, i64::MAX, &mut none)
            .await
            .unwrap();
        assert!(report.is_intact() && lines == 0 && none.is_empty());
    }

    pub(crate) async fn bad_archives_are_clear_errors(bus: Arc<dyn Bus>) {
        let dir = temp_dir("bad-archive");
        let log = AuditLog::open(bus.clone(), &settings(&dir), "gekko")
            .await
            .unwrap();
        record_n(&log, 12).await;
        settle().await;
        let out = gekko_audit::archive_expired(&*bus, &key(), STREAM, &dir, Duration::ZERO)
            .await
            .unwrap();
        let file = out.files[0].clone();
        let original = std::fs::read(&file).unwrap();

        let expect_archive_problem = |report: VerifyReport, want: &str| {
            let bad = report.first_bad.expect("an archive problem");
            assert_eq!(bad.position, 0);
            assert!(
                matches!(&bad.location, Location::Archive { file: f, .. } if *f == file),
                "{bad}"
            );
            match &bad.problem {
                Problem::Archive(why) => assert!(why.contains(want), "{why}"),
                other => panic!("expected an archive problem, got {other:?}"),
            }
        };

        // One flipped byte of ciphertext.
        let mut flipped = original.clone();
        let last = flipped.len() - 10;
        flipped[last] ^= 0x01;
        std::fs::write(&file, &flipped).unwrap();
        expect_archive_problem(verify(&*bus, STREAM, &dir).await, "fails authentication");

        // The header edited to claim fewer entries.
        let text = String::from_utf8_lossy(&original).into_owned();
        let mut edited = original.clone();
        let at = text.find("\"last_seq\":11").expect("header field");
        edited[at + 12] = b'0';
        std::fs::write(&file, &edited).unwrap();
        expect_archive_problem(verify(&*bus, STREAM, &dir).await, "fails authentication");

        // Truncated.
        std::fs::write(&file, &original[..original.len() / 2]).unwrap();
        expect_archive_problem(verify(&*bus, STREAM, &dir).await, "");
        std::fs::write(&file, &original[..20]).unwrap();
        expect_archive_problem(verify(&*bus, STREAM, &dir).await, "truncated");

        // A missing archive: the stream's first entry does not follow genesis.
        std::fs::remove_file(&file).unwrap();
        let bad = verify(&*bus, STREAM, &dir).await.first_bad.expect("caught");
        assert_eq!(bad.problem, Problem::Missing { from: 1, to: 11 });

        // Restored, it verifies again; under another key it is a clear error.
        std::fs::write(&file, &original).unwrap();
        assert!(verify(&*bus, STREAM, &dir).await.is_intact());
        let other = AuditKey::from_secret(&[7; 32]);
        let report = gekko_audit::verify(&*bus, &other, STREAM, &dir)
            .await
            .unwrap();
        let bad = report.first_bad.expect("wrong key");
        match &bad.problem {
            Problem::Archive(why) => assert!(
                why.contains("wrong key") && why.contains(other.id()),
                "{why}"
            ),
            p => panic!("{p:?}"),
        }
        // Archiving refuses to extend a chain whose archive it cannot open.
        settle().await;
        let err = gekko_audit::archive_expired(&*bus, &other, STREAM, &dir, Duration::ZERO)
            .await
            .unwrap_err();
        assert!(matches!(err, AuditError::Archive { .. }), "{err}");
    }

    pub(crate) async fn wrong_key_and_bad_head(bus: Arc<dyn Bus>) {
        let dir = temp_dir("wrong-key");
        let log = AuditLog::open(bus.clone(), &settings(&dir), "gekko")
            .await
            .unwrap();
        record_n(&log, 3).await;
        drop(log);
        let other = AuditKey::from_secret(&[9; 32]);
        let bad = gekko_audit::verify(&*bus, &other, STREAM, &dir)
            .await
            .unwrap()
            .first_bad
            .expect("wrong key");
        assert_eq!(bad.position, 0);
        assert!(matches!(bad.problem, Problem::WrongKey { .. }), "{bad}");
        assert!(bad.to_string().contains("wrong key"), "{bad}");

        // Opening under another key refuses to extend the chain.
        let mut s = settings(&dir);
        s.key = Some(SecretString::from(hex::encode([9u8; 32])));
        let err = AuditLog::open(bus.clone(), &s, "gekko").await.unwrap_err();
        assert!(matches!(err, AuditError::BadHead { .. }), "{err}");

        // So does a forged head.
        let spec = StreamSpec::durable(STREAM);
        bus.append(&spec, Bytes::from_static(b"{\"v\":1}"))
            .await
            .unwrap();
        let err = AuditLog::open(bus.clone(), &settings(&dir), "gekko")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("does not verify"), "{err}");
    }

    pub(crate) async fn generated_key_file(bus: Arc<dyn Bus>) {
        let dir = temp_dir("genkey");
        let mut s = settings(&dir.join("archive"));
        s.key = None;
        let path = s.archive_dir.join("audit.key");
        assert_eq!(
            gekko_audit::key_source(&s),
            KeySource::Generated(path.clone())
        );
        let err = AuditKey::load(&s, KeyMode::MustExist).unwrap_err();
        assert!(err.to_string().contains("audit.key"), "{err}");

        let log = AuditLog::open(bus.clone(), &s, "gekko").await.unwrap();
        record_n(&log, 2).await;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let warnings = gekko_audit::key_source(&s).warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("generated"), "{warnings:?}");

        // Reopened, the same key is read back: the chain continues and verifies.
        drop(log);
        let log = AuditLog::open(bus.clone(), &s, "gekko").await.unwrap();
        assert_eq!(log.record(rec(2)).await.unwrap().unwrap().seq, 3);
        let (key, _) = AuditKey::load(&s, KeyMode::MustExist).unwrap();
        let report = gekko_audit::verify(&*bus, &key, STREAM, &s.archive_dir)
            .await
            .unwrap();
        assert!(report.is_intact() && report.entries == 3, "{report:?}");

        // The key never appears in Debug.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!format!("{key:?}{log:?}").contains(text.trim()));

        // A key file that others can read is a posture finding.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let file = KeySource::File(path.clone());
            let w = file.warnings();
            assert!(w.len() == 1 && w[0].contains("644"), "{w:?}");
        }
    }

    pub(crate) async fn disabled_records_nothing(bus: Arc<dyn Bus>) {
        let dir = temp_dir("disabled");
        let s = AuditLogging {
            enabled: false,
            ..settings(&dir)
        };
        let log = AuditLog::open(bus.clone(), &s, "gekko").await.unwrap();
        assert!(!log.is_enabled());
        assert_eq!(log.record(rec(0)).await.unwrap(), None);
        log.record_detached(rec(1));
        log.flush().await;
        assert_eq!(bus.stream_len(STREAM).await.unwrap(), 0);
        assert!(
            std::fs::read_dir(&dir).unwrap().next().is_none(),
            "no key generated"
        );
    }
}

macro_rules! chain_suite {
    ($name:ident, $fixture:expr) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn fresh_chain_verifies() {
                let (bus, _server) = $fixture;
                scenarios::fresh_chain_verifies(bus).await;
            }
            #[tokio::test]
            async fn edited_entry_is_caught() {
                let (bus, _server) = $fixture;
                scenarios::edited_entry_is_caught(bus).await;
            }
            #[tokio::test]
            async fn deleted_entry_is_caught() {
                let (bus, _server) = $fixture;
                scenarios::deleted_entry_is_caught(bus).await;
            }
            #[tokio::test]
            async fn swapped_pair_is_caught() {
                let (bus, _server) = $fixture;
                scenarios::swapped_pair_is_caught(bus).await;
            }
            #[tokio::test]
            async fn restart_continues_the_chain() {
                let (bus, _server) = $fixture;
                scenarios::restart_continues_the_chain(bus).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_records_form_one_chain() {
                let (bus, _server) = $fixture;
                scenarios::concurrent_records_form_one_chain(bus).await;
            }
            #[tokio::test]
            async fn archive_round_trip() {
                let (bus, _server) = $fixture;
                scenarios::archive_round_trip(bus).await;
            }
            #[tokio::test]
            async fn bad_archives_are_clear_errors() {
                let (bus, _server) = $fixture;
                scenarios::bad_archives_are_clear_errors(bus).await;
            }
            #[tokio::test]
            async fn wrong_key_and_bad_head() {
                let (bus, _server) = $fixture;
                scenarios::wrong_key_and_bad_head(bus).await;
            }
            #[tokio::test]
            async fn generated_key_file() {
                let (bus, _server) = $fixture;
                scenarios::generated_key_file(bus).await;
            }
            #[tokio::test]
            async fn disabled_records_nothing() {
                let (bus, _server) = $fixture;
                scenarios::disabled_records_nothing(bus).await;
            }
        }
    };
}

chain_suite!(in_process, memory());
chain_suite!(on_redis, redis().await);

/// In place on Redis: the stream rebuilt under the *same* entry ids with one entry
/// edited (what `redis-cli` access allows). The report names the original id.
#[tokio::test]
async fn in_place_edit_on_redis_names_the_stream_id() {
    let (bus, server) = redis().await;
    let server = server.unwrap();
    let dir = temp_dir("inplace");
    let log = AuditLog::open(bus.clone(), &settings(&dir), "gekko")
        .await
        .unwrap();
    record_n(&log, 6).await;
    let stored = entries(&*bus, STREAM).await;
    let client = redis::Client::open(server.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("DEL")
        .arg(STREAM)
        .query_async::<()>(&mut c)
        .await
        .unwrap();
    for (i, (id, payload)) in stored.iter().enumerate() {
        let payload = if i == 2 {
            edit(payload, |e| e.actor = "someone-else".into())
        } else {
            payload.clone()
        };
        redis::cmd("XADD")
            .arg(STREAM)
            .arg(id)
            .arg("d")
            .arg(payload.as_ref())
            .query_async::<String>(&mut c)
            .await
            .unwrap();
    }
    let bad = log.verify().await.unwrap().first_bad.expect("caught");
    assert_eq!((bad.position, bad.expected_seq), (2, 3));
    assert_eq!(bad.location, stream_location(STREAM, &stored[2].0));
    assert_eq!(bad.problem, Problem::HashMismatch);
}

/// Redis goes away mid-run: the record fails (it may or may not have landed), and once
/// Redis is back the next record re-reads the head, so the chain has no fork or gap.
#[tokio::test]
async fn a_failed_append_does_not_fork_the_chain() {
    let mut server = RedisServer::start();
    let opts = RedisBusOptions {
        write_deadline: Duration::from_millis(500),
        ..RedisBusOptions::default()
    };
    let bus: Arc<dyn Bus> = Arc::new(RedisBus::connect(&server.url(), opts).await.unwrap());
    let dir = temp_dir("outage");
    let log = AuditLog::open(bus.clone(), &settings(&dir), "gekko")
        .await
        .unwrap();
    record_n(&log, 3).await;
    server.kill();
    let err = log.record(rec(3)).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    server.restart();
    let mut landed = None;
    for _ in 0..100 {
        match log.record(rec(4)).await {
            Ok(id) => {
                landed = id;
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(landed.map(|id| id.seq), Some(4));
    let report = log.verify().await.unwrap();
    assert!(report.is_intact(), "{:?}", report.first_bad);
    assert_eq!(report.entries, 4);
}
