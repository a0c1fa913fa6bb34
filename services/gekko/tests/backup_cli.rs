//! `gekko backup now`, `gekko restore` and the `backup` service of `gekko up`, as an
//! operator runs them, against real `redis-server`s: `gekko up` with backups enabled
//! writes an encrypted snapshot at start-up and exports the backup metrics; `gekko backup
//! now` writes another; `gekko restore` rebuilds a second, empty Redis from it and the
//! audit chain verifies there; a non-empty target (1), a wrong key (1) and no `REDIS_URL`
//! (64) are refused; `gekko check` says backups do not run on the in-process bus.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use gekko_testkit::{RedisServer, free_port};

mod common;

use common::{Up, gekko, http_get, monitoring, wait_ready};

const AUDIT_KEY: &str = "8f3c1a9e0b7d4c2f6e5a1b3c9d7e0f2a4b6c8d0e1f3a5b7c9d2e4f6a8b0c1d3e";
const BACKUP_KEY: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const OTHER_KEY: &str = "2222222222222222222222222222222222222222222222222222222222222222";

fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!(
        "gekko-backup-cli-{tag}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The environment every command here shares.
fn env(cmd: &mut std::process::Command, dir: &Path, redis: Option<&RedisServer>, key: &str) {
    cmd.env(
        "AUDIT_LOGGING_SETTINGS",
        format!(
            "key={AUDIT_KEY},archive_dir={}",
            dir.join("audit").display()
        ),
    )
    .env(
        "BACKUP_SETTINGS",
        format!(
            "enabled=true,dir={},interval=1m,retention=3",
            dir.join("backups").display()
        ),
    )
    .env("ENCRYPTION_SETTINGS", format!("key={key}"));
    if let Some(r) = redis {
        cmd.env("REDIS_URL", r.url());
    }
}

fn run(args: &[&str], dir: &Path, redis: Option<&RedisServer>, key: &str) -> Output {
    let mut cmd = gekko(args);
    env(&mut cmd, dir, redis, key);
    cmd.output().expect("run gekko")
}

fn snapshots(dir: &Path) -> Vec<PathBuf> {
    gekko_backup::list_snapshots(&dir.join("backups")).unwrap()
}

#[test]
fn gekko_up_backs_up_and_gekko_restore_rebuilds_an_empty_redis() {
    let dir = temp_dir("up");
    let source = RedisServer::start();

    // gekko up with backups on: a snapshot at start-up, and the metrics.
    let (http, grpc) = (free_port().unwrap(), free_port().unwrap());
    let mut cmd = gekko(&["up"]);
    cmd.env("MONITORING_CONFIGURATIONS", monitoring(http, grpc, "json"));
    env(&mut cmd, &dir, Some(&source), BACKUP_KEY);
    let mut up = Up::start(cmd);
    up.wait_for_line("backup snapshot written", Duration::from_secs(60));
    let addr = format!("127.0.0.1:{http}");
    wait_ready(&addr);
    let (_, metrics) = http_get(&addr, "/metrics").expect("metrics");
    for name in [
        "gekko_backup_last_success_timestamp_seconds",
        "gekko_backup_bytes",
        "gekko_backup_failures_total 0",
    ] {
        assert!(metrics.contains(name), "{name} in /metrics:\n{metrics}");
    }
    let (code, lines) = up.terminate();
    assert_eq!(code, 0, "{}", lines.join("\n"));
    assert!(!lines.join("\n").contains(BACKUP_KEY), "the key leaked");
    assert_eq!(snapshots(&dir).len(), 1);

    // gekko backup now, after the run's shutdown entries.
    let out = run(&["backup", "now"], &dir, Some(&source), BACKUP_KEY);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("encrypted, key id"), "{t}");
    assert!(t.contains("gekko:audit"), "{t}");
    let all = snapshots(&dir);
    assert_eq!(all.len(), 2);
    let file = all.last().unwrap().display().to_string();

    // Restore into an empty Redis: every entry, and the audit chain verifies.
    let target = RedisServer::start();
    let out = run(&["restore", &file], &dir, Some(&target), BACKUP_KEY);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("audit chain gekko:audit: intact"), "{t}");
    let verify = run(&["audit", "verify"], &dir, Some(&target), BACKUP_KEY);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (a, b) = rt.block_on(async {
        let dump = |url: String| async move {
            let mut c = gekko_backup::connect(&url).await.unwrap();
            let names = gekko_backup::durable_streams(&mut c, "gekko:audit")
                .await
                .unwrap();
            gekko_backup::read_streams(&mut c, &names).await.unwrap()
        };
        (dump(source.url()).await, dump(target.url()).await)
    });
    assert!(!a.is_empty());
    assert_eq!(
        a.iter()
            .map(|s| (&s.manifest.name, &s.entries))
            .collect::<Vec<_>>(),
        b.iter()
            .map(|s| (&s.manifest.name, &s.entries))
            .collect::<Vec<_>>()
    );

    // Again into the now non-empty target: refused, then forced.
    let out = run(&["restore", &file], &dir, Some(&target), BACKUP_KEY);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("not empty"), "{}", text(&out));
    let out = run(
        &["restore", "--force", &file],
        &dir,
        Some(&target),
        BACKUP_KEY,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The wrong key, and no Redis at all.
    let empty = RedisServer::start();
    let out = run(&["restore", &file], &dir, Some(&empty), OTHER_KEY);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("wrong key") && t.contains("nothing written"),
        "{t}"
    );
    assert!(!t.contains(OTHER_KEY));
    let out = run(&["restore", &file], &dir, None, BACKUP_KEY);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    let out = run(&["backup", "now"], &dir, None, BACKUP_KEY);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gekko_check_says_backups_need_redis() {
    let dir = temp_dir("check");
    let out = run(&["check"], &dir, None, BACKUP_KEY);
    let t = text(&out);
    let row = t
        .lines()
        .find(|l| l.contains("backup"))
        .unwrap_or_else(|| panic!("a backup row:\n{t}"));
    assert!(row.contains("in-process bus"), "{row}");
    assert!(row.contains("no backups are taken"), "{row}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A snapshot that cannot be written is counted and logged; gekko keeps running and
/// stays ready.
#[test]
fn a_failing_backup_is_counted_and_gekko_stays_up() {
    let dir = temp_dir("fail");
    let redis = RedisServer::start();
    // `dir` under a regular file: it can never be created.
    let blocker = dir.join("a-file");
    std::fs::write(&blocker, "not a directory").unwrap();
    let (http, grpc) = (free_port().unwrap(), free_port().unwrap());
    let mut cmd = gekko(&["up"]);
    env(&mut cmd, &dir, Some(&redis), BACKUP_KEY);
    cmd.env("MONITORING_CONFIGURATIONS", monitoring(http, grpc, "json"))
        .env(
            "BACKUP_SETTINGS",
            format!(
                "enabled=true,dir={},interval=1m",
                blocker.join("backups").display()
            ),
        );
    let mut up = Up::start(cmd);
    up.wait_for_line("backup snapshot failed", Duration::from_secs(60));
    let addr = format!("127.0.0.1:{http}");
    wait_ready(&addr);
    let (_, metrics) = http_get(&addr, "/metrics").expect("metrics");
    assert!(
        metrics.contains("gekko_backup_failures_total 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("gekko_backup_last_success_timestamp_seconds "),
        "{metrics}"
    );
    let (code, lines) = up.terminate();
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let _ = std::fs::remove_dir_all(&dir);
}
