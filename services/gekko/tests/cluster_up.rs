//! `gekko up` on a Redis Cluster (`REDIS_URL` = the nodes' URLs, comma-separated):
//! it reaches ready, the inference service's signals land on the hash-tagged signal
//! stream in the slot's master, and market data reaches the venues' own shards.

mod common;

use std::time::{Duration, Instant};

use common::{Up, gekko, monitoring, wait_ready};
use gekko_testkit::{RedisCluster, free_port};

/// `XLEN key` on the master that owns `key`'s slot (0 while it does not exist).
fn xlen(cluster: &RedisCluster, key: &str) -> u64 {
    let Ok(port) = cluster.master_of(key) else {
        return 0;
    };
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else {
        return 0;
    };
    let Ok(mut conn) = client.get_connection() else {
        return 0;
    };
    redis::cmd("XLEN").arg(key).query(&mut conn).unwrap_or(0)
}

#[test]
fn gekko_up_on_a_cluster_is_ready_and_produces_signals() {
    let cluster = RedisCluster::start(3, 1);
    let dir = std::env::temp_dir().join(format!("gekko-cluster-up-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (http, grpc) = (free_port().unwrap(), free_port().unwrap());
    let mut cmd = gekko(&["up"]);
    cmd.env("MONITORING_CONFIGURATIONS", monitoring(http, grpc, "json"))
        .env("REDIS_URL", cluster.redis_url())
        .env(
            "CONTROLLER_SETTINGS",
            format!("reports_dir={}", dir.display()),
        )
        .env(
            "AUDIT_LOGGING_SETTINGS",
            format!("archive_dir={}", dir.join("audit").display()),
        );
    let mut up = Up::start(cmd);
    up.wait_for_line("gekko up: mode=paper", Duration::from_secs(60));
    wait_ready(&format!("127.0.0.1:{http}"));

    let deadline = Instant::now() + Duration::from_secs(90);
    while xlen(&cluster, "gekko:{signals}") == 0 {
        assert!(
            Instant::now() < deadline,
            "no signal on gekko:{{signals}} within 90 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        xlen(&cluster, "gekko:{md:quotes:binanceus}") > 0,
        "quotes reach the venue's stream on its shard"
    );
    let (code, lines) = up.terminate();
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let _ = std::fs::remove_dir_all(&dir);
}
