//! `gekko up --paper-trade`: the trading loop turns the inference service's signals into
//! orders on the simulated venue, and a restart on the same Redis never doubles one.
//! Also: `--paper-trade` refuses to run when a venue has live credentials.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Up, gekko, monitoring, wait_ready};
use gekko_testkit::{RedisServer, free_port};
use serde_json::Value;

/// Every order event on the Binance.US order stream, as `(kind, client order id)`.
fn order_events(redis: &RedisServer) -> Vec<(String, String)> {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg("gekko:{orders:binanceus}")
        .arg("-")
        .arg("+")
        .query(&mut conn)
        .unwrap();
    reply
        .ids
        .into_iter()
        .flat_map(|entry| entry.map.into_values())
        .filter_map(|v| match v {
            redis::Value::BulkString(b) => Some(b),
            _ => None,
        })
        .filter_map(|payload| serde_json::from_slice::<Value>(&payload).ok())
        .map(|env| {
            let p = &env["payload"];
            (
                p["kind"].as_str().unwrap_or_default().to_owned(),
                p["order"]["request"]["client_order_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

fn submitted(redis: &RedisServer) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (kind, id) in order_events(redis) {
        if kind == "submitting" {
            *out.entry(id).or_insert(0) += 1;
        }
    }
    out
}

fn run_until_orders(
    redis: &RedisServer,
    at_least: usize,
    reports: &std::path::Path,
) -> (i32, Vec<String>) {
    let (http, grpc) = (free_port().unwrap(), free_port().unwrap());
    let mut cmd = gekko(&["up", "--paper-trade"]);
    cmd.env("MONITORING_CONFIGURATIONS", monitoring(http, grpc, "json"))
        .env("REDIS_URL", redis.url())
        .env("STRATEGY_SETTINGS", "cooldown=1s,order_notional=50")
        .env(
            "CONTROLLER_SETTINGS",
            format!("reports_dir={}", reports.display()),
        )
        .env(
            "AUDIT_LOGGING_SETTINGS",
            format!("archive_dir={}", reports.join("audit").display()),
        );
    let mut up = Up::start(cmd);
    up.wait_for_line("gekko up: mode=paper", Duration::from_secs(60));
    wait_ready(&format!("127.0.0.1:{http}"));
    let deadline = Instant::now() + Duration::from_secs(90);
    while submitted(redis).len() < at_least {
        assert!(
            Instant::now() < deadline,
            "fewer than {at_least} orders from signals within 90 s: {:?}",
            submitted(redis)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    up.terminate()
}

#[test]
fn paper_trading_places_orders_from_signals_and_never_doubles_one_across_a_restart() {
    let redis = RedisServer::start();
    let reports = std::env::temp_dir().join(format!("gekko-paper-trade-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&reports);

    let (code, lines) = run_until_orders(&redis, 1, &reports);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let first = submitted(&redis);
    assert!(!first.is_empty());

    // Restarted on the same Redis: the loop resumes after the signals it finished, and
    // trades the new ones.
    let (code, lines) = run_until_orders(&redis, first.len() + 1, &reports);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let all = submitted(&redis);
    assert!(all.len() > first.len(), "{all:?}");
    for (id, n) in &all {
        assert_eq!(*n, 1, "order {id} was submitted {n} times: {all:?}");
    }
    for id in first.keys() {
        assert!(all.contains_key(id));
    }
}

#[test]
fn paper_trade_refuses_live_credentials() {
    let (http, grpc) = (free_port().unwrap(), free_port().unwrap());
    let out = gekko(&["up", "--paper-trade"])
        .env("MONITORING_CONFIGURATIONS", monitoring(http, grpc, "json"))
        .env("BINANCEUS_API_KEY", "live-key-0000")
        .env("BINANCEUS_API_SECRET", "live-secret-0000")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.contains("--paper-trade runs only in paper mode"),
        "{err}"
    );
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", grpc)).is_ok(),
        "nothing was bound"
    );
}

/// `STRATEGY_SETTINGS enabled=true` (the trading loop configured, not `--paper-trade`)
/// with live Binance.US credentials, pointed at a simulator that knows them: without
/// `allow_live` the start is refused with exit 64 naming `allow_live`, nothing bound; with
/// `allow_live=true` the same configuration starts and becomes ready.
#[test]
fn the_trading_loop_on_live_credentials_needs_allow_live() {
    use gekko_sim::binanceus::{SimApiKey, SimBinanceUs, SimConfig};
    const KEY: &str = "live-sim-key-0123456789";
    const SECRET: &str = "live-sim-secret-0123456789";
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt
        .block_on(SimBinanceUs::start(SimConfig {
            api_keys: vec![SimApiKey::hmac(KEY, SECRET)],
            ..SimConfig::default()
        }))
        .unwrap();
    let run = |strategy: &str| {
        let (http, grpc) = (free_port().unwrap(), free_port().unwrap());
        let mut cmd = gekko(&["up"]);
        cmd.env("MONITORING_CONFIGURATIONS", monitoring(http, grpc, "json"))
            .env(
                "TRADING_API_ENDPOINTS",
                format!("binanceus={},binanceus.stream={}", sim.rest_url, sim.ws_url),
            )
            .env("BINANCEUS_API_KEY", KEY)
            .env("BINANCEUS_API_SECRET", SECRET)
            .env("STRATEGY_SETTINGS", strategy);
        (cmd, http, grpc)
    };

    let (mut cmd, _, grpc) = run("enabled=true");
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.contains("STRATEGY_SETTINGS") && err.contains("allow_live=true"),
        "{err}"
    );
    assert!(err.contains("binanceus"), "the live venue is named: {err}");
    assert!(!err.contains(SECRET), "{err}");
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", grpc)).is_ok(),
        "nothing was bound"
    );

    let (cmd, http, _) = run("enabled=true,allow_live=true");
    let up = Up::start(cmd);
    let body = wait_ready(&format!("127.0.0.1:{http}"));
    assert!(body.contains("binanceus-market-data"), "{body}");
    let (code, lines) = up.terminate();
    assert_eq!(code, 0, "{}", lines.join("\n"));
    drop(sim);
}
