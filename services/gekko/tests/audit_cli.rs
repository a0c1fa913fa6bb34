//! `gekko audit verify | export | archive` as an operator runs them, against a real
//! `redis-server`: exit 0 for an intact chain, 1 with the first bad entry named for a
//! tampered one, 64 for bad config or no `REDIS_URL`; `gekko up` leaves a chain that
//! verifies.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use gekko_audit::{AuditLog, AuditRecord, Entry};
use gekko_bus::{Bus, RedisBus, RedisBusOptions, StartFrom};
use gekko_config::AuditLogging;
use gekko_testkit::{RedisServer, free_port};
use secrecy::SecretString;

mod common;

use common::{Up, gekko, monitoring};

const KEY: &str = "8f3c1a9e0b7d4c2f6e5a1b3c9d7e0f2a4b6c8d0e1f3a5b7c9d2e4f6a8b0c1d3e";
const STREAM: &str = "gekko:audit";

fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!(
        "gekko-audit-cli-{tag}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn settings_var(dir: &Path) -> String {
    format!("key={KEY},archive_dir={}", dir.display())
}

fn run(args: &[&str], redis: Option<&RedisServer>, audit: &str) -> Output {
    let mut cmd = gekko(args);
    cmd.env("AUDIT_LOGGING_SETTINGS", audit);
    if let Some(r) = redis {
        cmd.env("REDIS_URL", r.url());
    }
    cmd.output().expect("run gekko")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Writes `n` entries to the stream through the library, as `gekko up` would.
async fn write_chain(redis: &RedisServer, dir: &Path, n: usize) -> Arc<dyn Bus> {
    write_chain_on(redis, dir, n, STREAM).await
}

async fn write_chain_on(redis: &RedisServer, dir: &Path, n: usize, stream: &str) -> Arc<dyn Bus> {
    let bus: Arc<dyn Bus> = Arc::new(
        RedisBus::connect(&redis.url(), RedisBusOptions::default())
            .await
            .unwrap(),
    );
    let settings = AuditLogging {
        key: Some(SecretString::from(KEY)),
        archive_dir: dir.to_owned(),
        ..AuditLogging::default()
    };
    let log = AuditLog::open_stream(bus.clone(), &settings, stream, "gekko")
        .await
        .unwrap();
    for i in 0..n {
        log.record(
            AuditRecord::new("ops", "order.place", "ok")
                .with_detail(serde_json::json!({"client_id": format!("c-{i}")})),
        )
        .await
        .unwrap();
    }
    bus
}

async fn stored(bus: &dyn Bus) -> Vec<(String, bytes::Bytes)> {
    let mut r = bus.tail_reader(STREAM, StartFrom::Beginning).await.unwrap();
    r.read(10_000, Duration::ZERO)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.id, d.payload))
        .collect()
}

/// Replaces the stream with `entries`, under the same ids (what `redis-cli` allows).
async fn replace_stream(redis: &RedisServer, entries: &[(String, bytes::Bytes)]) {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("DEL")
        .arg(STREAM)
        .query_async::<()>(&mut c)
        .await
        .unwrap();
    for (id, payload) in entries {
        redis::cmd("XADD")
            .arg(STREAM)
            .arg(id)
            .arg("d")
            .arg(payload.as_ref())
            .query_async::<String>(&mut c)
            .await
            .unwrap();
    }
}

/// A chain of `n` entries on the audit stream whose stream ids are from 1970, so every
/// entry is past any `retention_days`: written through the library to a staging stream,
/// then copied under old explicit ids.
async fn old_chain(redis: &RedisServer, dir: &Path, n: usize) {
    let bus = write_chain_on(redis, dir, n, "staging").await;
    let mut r = bus
        .tail_reader("staging", StartFrom::Beginning)
        .await
        .unwrap();
    let entries: Vec<(String, bytes::Bytes)> = r
        .read(10_000, Duration::ZERO)
        .await
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(i, d)| (format!("{}-0", 1_000 + i), d.payload))
        .collect();
    replace_stream(redis, &entries).await;
}

#[test]
fn verify_exit_codes_and_the_first_bad_entry() {
    let redis = RedisServer::start();
    let dir = temp_dir("verify");
    let audit = settings_var(&dir);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bus = rt.block_on(write_chain(&redis, &dir, 8));

    let out = run(&["audit", "verify"], Some(&redis), &audit);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("intact, 8 entries"), "{}", text(&out));

    // One entry edited in place: exit 1, the entry named by seq and stream id.
    let mut entries = rt.block_on(stored(&*bus));
    let original = entries.clone();
    let mut e = Entry::parse(&entries[5].1).unwrap();
    e.outcome = "rejected".into();
    entries[5].1 = e.to_bytes();
    rt.block_on(replace_stream(&redis, &entries));
    let out = run(&["audit", "verify"], Some(&redis), &audit);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("BROKEN")
            && t.contains("expected seq 6")
            && t.contains(&entries[5].0)
            && t.contains("edited"),
        "{t}"
    );

    // One entry deleted.
    let mut deleted = original.clone();
    deleted.remove(2);
    rt.block_on(replace_stream(&redis, &deleted));
    let out = run(&["audit", "verify"], Some(&redis), &audit);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("position 2") && t.contains("seq 3 is missing"),
        "{t}"
    );

    // A wrong key is a failed verification that says so.
    rt.block_on(replace_stream(&redis, &original));
    let other = format!("key={},archive_dir={}", "1".repeat(64), dir.display());
    let out = run(&["audit", "verify"], Some(&redis), &other);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("wrong key"), "{}", text(&out));

    // Restored: intact again. An unknown stream is empty, not an error.
    let out = run(&["audit", "verify"], Some(&redis), &audit);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run(
        &["audit", "verify", "--stream", "gekko:audit:none"],
        Some(&redis),
        &audit,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("empty"), "{}", text(&out));
}

#[test]
fn bad_config_and_no_redis_exit_64() {
    let dir = temp_dir("config");
    // No REDIS_URL: a clear word about the in-process bus.
    let out = run(&["audit", "verify"], None, &settings_var(&dir));
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(
        text(&out).contains("REDIS_URL is not set") && text(&out).contains("in-process"),
        "{}",
        text(&out)
    );

    let redis = RedisServer::start();
    // A malformed key: every problem listed, the key itself withheld.
    let out = run(
        &["audit", "verify"],
        Some(&redis),
        "key=abc,retention_days=0",
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(64), "{t}");
    assert!(
        t.contains("AUDIT_LOGGING_SETTINGS")
            && t.contains("retention_days")
            && !t.contains("key=abc"),
        "{t}"
    );

    // No key configured and none generated yet: verify does not invent one.
    let out = run(
        &["audit", "verify"],
        Some(&redis),
        &format!("archive_dir={}", dir.display()),
    );
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(text(&out).contains("audit.key"), "{}", text(&out));
    assert!(!dir.join("audit.key").exists());

    // A bad --since.
    let out = run(
        &["audit", "export", "--since", "yesterday"],
        Some(&redis),
        &settings_var(&dir),
    );
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
}

#[test]
fn export_and_archive() {
    let redis = RedisServer::start();
    let dir = temp_dir("export");
    let audit = settings_var(&dir);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _bus = rt.block_on(write_chain(&redis, &dir, 5));

    let file = dir.join("export.jsonl");
    let out = run(
        &[
            "audit",
            "export",
            "--since",
            "24h",
            "--out",
            file.to_str().unwrap(),
        ],
        Some(&redis),
        &audit,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["seq"], 1);
    assert_eq!(lines[0]["action"], "order.place");
    assert!(lines[0]["stream_id"].as_str().unwrap().contains('-'));
    // Since a moment in the future: nothing.
    let out = run(
        &["audit", "export", "--since", "2999-01-01T00:00:00Z"],
        Some(&redis),
        &audit,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(out.stdout.is_empty());

    // Nothing is older than retention_days: archive moves nothing, verify stays intact.
    let out = run(&["audit", "archive"], Some(&redis), &audit);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("0 entries sealed"), "{}", text(&out));
    let out = run(&["audit", "verify"], Some(&redis), &audit);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// `gekko up` on Redis writes `system.startup` (with the start-up report) and two
/// `system.shutdown` entries (requested, stopped) per run; `gekko audit verify` finds the chain intact, and a second
/// run continues it.
#[test]
fn gekko_up_leaves_a_chain_that_verifies() {
    let redis = RedisServer::start();
    let dir = temp_dir("up");
    let audit = settings_var(&dir);
    for run_no in 1..=2 {
        let (http, grpc) = (free_port().unwrap(), free_port().unwrap());
        let mut cmd = gekko(&["up"]);
        cmd.env("MONITORING_CONFIGURATIONS", monitoring(http, grpc, "json"))
            .env("REDIS_URL", redis.url())
            .env("AUDIT_LOGGING_SETTINGS", &audit);
        let mut up = Up::start(cmd);
        up.wait_for_line("gekko up: mode=", Duration::from_secs(60));
        let (code, lines) = up.terminate();
        assert_eq!(code, 0, "run {run_no}:\n{}", lines.join("\n"));
        assert!(
            !lines.join("\n").contains(KEY),
            "the audit key leaked into the logs"
        );
    }
    let out = run(&["audit", "verify"], Some(&redis), &audit);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("intact, "), "{t}");

    let out = run(&["audit", "export", "--since", "0"], Some(&redis), &audit);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let actions: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["action"].as_str().unwrap().to_owned(),
                v["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // Each run, in this order; between them the controller records its shutdown steps
    // (kill_switch, cancels, its own system.shutdown with the final report).
    let one_run = [
        ("system.startup", "ok"),
        ("system.shutdown", "requested"),
        ("system.shutdown", "stopped"),
    ];
    let mut want = one_run.iter().chain(one_run.iter()).peekable();
    for (action, outcome) in &actions {
        if want
            .peek()
            .is_some_and(|(a, o)| a == action && o == outcome)
        {
            want.next();
        }
    }
    assert!(
        want.next().is_none(),
        "not every life-cycle entry, in order: {actions:?}"
    );
    assert_eq!(
        actions.first().map(|(a, _)| a.as_str()),
        Some("system.startup")
    );
    assert_eq!(
        actions.last().map(|(a, o)| (a.as_str(), o.as_str())),
        Some(("system.shutdown", "stopped"))
    );
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert!(first["detail"]["startup"].is_array(), "{first}");
}

/// Entries past `retention_days`: `gekko audit archive` seals all but the head into one
/// file in `archive_dir` and trims them; the chain still verifies across file and stream,
/// and a flipped byte in the file is named.
#[test]
fn archive_seals_old_entries_and_verify_reads_them() {
    let redis = RedisServer::start();
    let dir = temp_dir("archive-old");
    let audit = settings_var(&dir);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(old_chain(&redis, &dir, 7));

    let out = run(&["audit", "archive"], Some(&redis), &audit);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("6 entries sealed into 1 file(s)") && t.contains("6 trimmed"),
        "{t}"
    );
    let sealed = dir.join("gekko_audit.00000000000000000001-00000000000000000006.sealed");
    assert!(sealed.exists(), "{t}");
    let out = run(&["audit", "verify"], Some(&redis), &audit);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("intact, 7 entries from 1 archive file(s) and the stream"),
        "{t}"
    );

    let mut bytes = std::fs::read(&sealed).unwrap();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x80;
    std::fs::write(&sealed, &bytes).unwrap();
    let out = run(&["audit", "verify"], Some(&redis), &audit);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains(sealed.to_str().unwrap()) && t.contains("fails authentication"),
        "{t}"
    );
}

/// `gekko up` runs retention at start-up: entries past `retention_days` are in a sealed
/// archive before it is asked to stop, and the chain it extends still verifies.
#[test]
fn gekko_up_archives_expired_entries_at_start_up() {
    let redis = RedisServer::start();
    let dir = temp_dir("up-retention");
    let audit = settings_var(&dir);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(old_chain(&redis, &dir, 5));

    let (http, grpc) = (free_port().unwrap(), free_port().unwrap());
    let mut cmd = gekko(&["up"]);
    cmd.env("MONITORING_CONFIGURATIONS", monitoring(http, grpc, "json"))
        .env("REDIS_URL", redis.url())
        .env("AUDIT_LOGGING_SETTINGS", &audit);
    let mut up = Up::start(cmd);
    up.wait_for_line("gekko up: mode=", Duration::from_secs(60));
    // All five old entries: the chain's head, which stays in the stream, is now this
    // run's own start-up entry, written before retention runs.
    let sealed = dir.join("gekko_audit.00000000000000000001-00000000000000000005.sealed");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !sealed.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no archive {} written",
            sealed.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, lines) = up.terminate();
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let out = run(&["audit", "verify"], Some(&redis), &audit);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("from 1 archive file(s) and the stream"), "{t}");
}
