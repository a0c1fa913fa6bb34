//! configd hosts the `backup` service in a compose deployment (no `gekko up` runs there):
//! configd as a process with `BACKUP_SETTINGS enabled=true` on a real `redis-server`
//! writes an encrypted snapshot at start-up and exports the `gekko_backup_*` metrics, and
//! `gekko restore` (the real CLI) rebuilds an empty Redis from that file with configd's
//! version record and its audit chain.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use gekko_testkit::{RedisServer, eventually, free_port};

const AUDIT_KEY: &str = "7d2e4f6a8b0c1d3e8f3c1a9e0b7d4c2f6e5a1b3c9d7e0f2a4b6c8d0e1f3a5b7c";
const BACKUP_KEY: &str = "3333333333333333333333333333333333333333333333333333333333333333";

fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("configd-backup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// The `gekko` CLI, built next to configd (a no-op when it is fresh).
fn gekko_bin() -> PathBuf {
    let configd = PathBuf::from(env!("CARGO_BIN_EXE_configd"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args(["build", "-q", "-p", "gekko", "--bin", "gekko"])
        .status()
        .expect("run cargo build for the gekko CLI");
    assert!(status.success(), "cargo build -p gekko failed");
    configd.parent().expect("bin dir").join("gekko")
}

/// The variables configd and `gekko restore` share.
fn shared(cmd: &mut Command, dir: &Path, redis: &str) {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("REDIS_URL", redis)
        .env(
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
        .env("ENCRYPTION_SETTINGS", format!("key={BACKUP_KEY}"))
        .current_dir(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configd_with_backup_settings_writes_a_snapshot_that_gekko_restore_restores() {
    let gekko = gekko_bin();
    let dir = temp_dir();
    let source = RedisServer::start();
    let env_file = dir.join("gekko.env");
    std::fs::write(&env_file, "POSITION_LIMITS=BTC-USD=2\n").expect("env file");
    let (http, grpc) = (free_port().expect("port"), free_port().expect("port"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_configd"));
    shared(&mut cmd, &dir, &source.url());
    cmd.env("CONFIGD_ENV_FILE", &env_file).env(
        "MONITORING_CONFIGURATIONS",
        format!("http_addr=127.0.0.1:{http},grpc_addr=127.0.0.1:{grpc}"),
    );
    let log = dir.join("configd.log");
    let out = std::fs::File::create(&log).expect("log");
    let mut child = gekko_testkit::reaped(&cmd)
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .spawn()
        .expect("spawn configd");

    let backups = dir.join("backups");
    let written = eventually(Duration::from_secs(30), || {
        let backups = backups.clone();
        async move { gekko_backup::list_snapshots(&backups).is_ok_and(|s| !s.is_empty()) }
    })
    .await;
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(written, "no snapshot within 30 s:\n{}", text());
    let metrics = reqwest::get(format!("http://127.0.0.1:{http}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    for name in [
        "gekko_backup_last_success_timestamp_seconds",
        "gekko_backup_bytes",
        "gekko_backup_failures_total 0",
    ] {
        assert!(metrics.contains(name), "{name} in /metrics:\n{metrics}");
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(!text().contains(BACKUP_KEY), "the key leaked:\n{}", text());
    let snapshots = gekko_backup::list_snapshots(&backups).expect("list");
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    let file = snapshots[0].display().to_string();
    let raw = std::fs::read(&snapshots[0]).expect("read snapshot");
    assert!(
        !String::from_utf8_lossy(&raw).contains("POSITION_LIMITS"),
        "the snapshot is encrypted"
    );

    // Restore into an empty Redis with the real CLI.
    let target = RedisServer::start();
    let mut restore = Command::new(&gekko);
    shared(&mut restore, &dir, &target.url());
    let out = restore
        .args(["restore", &file])
        .output()
        .expect("run gekko restore");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("gekko:config"), "{said}");
    assert!(
        said.contains("audit chain gekko:audit:configd: intact"),
        "{said}"
    );

    // The restored streams hold what configd had recorded: its version and its audit
    // chain (configd wrote nothing after the snapshot but its shutdown, so compare the
    // snapshot's entries, which are a prefix of the source's).
    let dump = |url: String| async move {
        let mut c = gekko_backup::connect(&url).await.expect("connect");
        let names = gekko_backup::durable_streams(&mut c, "gekko:audit")
            .await
            .expect("streams");
        gekko_backup::read_streams(&mut c, &names)
            .await
            .expect("read")
    };
    let (a, b) = (dump(source.url()).await, dump(target.url()).await);
    let names = |d: &[gekko_backup::StreamData]| {
        d.iter()
            .map(|s| s.manifest.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&a), names(&b));
    assert!(
        names(&b).contains(&"gekko:config".to_owned()),
        "{:?}",
        names(&b)
    );
    for (src, dst) in a.iter().zip(&b) {
        assert!(
            !dst.entries.is_empty() && src.entries.starts_with(&dst.entries),
            "{}: the restored entries are the snapshot's",
            dst.manifest.name
        );
    }
    let config = b
        .iter()
        .find(|s| s.manifest.name == "gekko:config")
        .expect("gekko:config restored");
    assert_eq!(config.entries.len(), 1, "configd's first version");

    let mut verify = Command::new(&gekko);
    shared(&mut verify, &dir, &target.url());
    let out = verify
        .args(["audit", "verify", "--stream", "gekko:audit:configd"])
        .output()
        .expect("run gekko audit verify");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
