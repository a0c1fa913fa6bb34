//! `gekko check` with a live venue: without `REDIS_URL` the `redis` row warns that the
//! daily notional, the kill switch and the audit trail will not survive a restart; with a
//! real `redis-server` it passes, and paper mode without Redis passes too. Also: the MCP
//! HTTP transport bound off loopback draws the `security mcp-http-tls` warning.
//!
//! The live venue is Binance.US with credentials the simulator knows, so the venue probes
//! run against a real local server.

mod common;

use common::gekko;
use gekko_testkit::RedisServer;

const KEY: &str = "check-live-key-0123456789";
const SECRET: &str = "check-live-secret-0123456789";

/// `gekko check` with `env`; returns its stdout and the row whose check is `name`.
fn check(env: &[(&str, String)], name: &str) -> (String, String) {
    let mut cmd = gekko(&["check"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run gekko check");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // Rows are `CHECK  STATUS  REQUIRED  DETAIL`, the check padded to the widest one.
    let row = text
        .lines()
        .find(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with("  "))
        })
        .unwrap_or_else(|| {
            panic!(
                "no {name} row:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .to_owned();
    (text, row)
}

#[test]
fn live_without_redis_warns_that_limits_and_audit_do_not_survive_a_restart() {
    use gekko_sim::binanceus::{SimApiKey, SimBinanceUs, SimConfig};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt
        .block_on(SimBinanceUs::start(SimConfig {
            api_keys: vec![SimApiKey::hmac(KEY, SECRET)],
            ..SimConfig::default()
        }))
        .unwrap();
    let live = vec![
        (
            "TRADING_API_ENDPOINTS",
            format!("binanceus={},binanceus.stream={}", sim.rest_url, sim.ws_url),
        ),
        ("BINANCEUS_API_KEY", KEY.to_owned()),
        ("BINANCEUS_API_SECRET", SECRET.to_owned()),
    ];

    let (text, row) = check(&live, "redis");
    assert!(row.contains("WARN"), "{text}");
    for needle in [
        "binanceus",
        "daily notional",
        "kill switch",
        "audit trail",
        "restart",
    ] {
        assert!(row.contains(needle), "{needle} not in the row: {row}");
    }
    assert!(!text.contains(SECRET), "{text}");

    let redis = RedisServer::start();
    let mut with_redis = live.clone();
    with_redis.push(("REDIS_URL", redis.url()));
    let (text, row) = check(&with_redis, "redis");
    assert!(
        row.contains("PASS") && row.contains("appendonly on"),
        "{text}"
    );

    let (text, row) = check(&[], "redis");
    assert!(
        row.contains("PASS") && row.contains("in-process bus"),
        "{text}"
    );
    drop(sim);
}

#[test]
fn mcp_http_off_loopback_is_a_security_warning() {
    let (text, row) = check(
        &[("MCP_SETTINGS", "http_addr=0.0.0.0:9470".to_owned())],
        "security mcp-http-tls",
    );
    assert!(
        row.contains("WARN") && row.contains("PLAINTEXT MCP HTTP"),
        "{text}"
    );
    let (text, row) = check(&[], "security mcp-http-tls");
    assert!(row.contains("PASS") && row.contains("loopback"), "{text}");
}
