//! `footprint`: idle RSS of each service binary and of `gekko up` with all three venues,
//! the MCP HTTP server and the LLM links, all in paper mode, and the time from spawn to
//! `/readyz` 200.
//!
//! Each binary is spawned from `--bin-dir` (by default the directory of this executable,
//! i.e. `target/release` after `cargo build --release`) with health and gRPC on free
//! loopback ports and no `REDIS_URL` (the in-process bus). `/readyz` and `/livez` are
//! polled every 2 ms over plain HTTP/1.1. Once ready, the process idles for
//! `--idle-secs`, then `VmRSS` and `VmHWM` are read from `/proc/<pid>/status`, and it is
//! stopped with SIGTERM. The LLM links talk to an OpenRouter-compatible simulator in this
//! process. The reference in the same run is the idle `redis-server` this bench starts.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::json;

use crate::common::{Table, load1};

/// Options.
#[derive(Debug, Clone)]
pub(crate) struct FootprintOpts {
    /// Where the binaries are.
    pub(crate) bin_dir: PathBuf,
    /// Which to measure (all when empty): `gekko-up`, `gateway-binanceus`,
    /// `gateway-coinbase`, `gateway-oanda`, `inference`.
    pub(crate) only: Vec<String>,
    /// Idle seconds before reading RSS.
    pub(crate) idle_secs: u64,
}

/// Every measured target: name, binary, arguments.
const TARGETS: &[(&str, &str, &[&str])] = &[
    ("gekko-up", "gekko", &["up"]),
    ("gateway-binanceus", "gateway-binanceus", &[]),
    ("gateway-coinbase", "gateway-coinbase", &[]),
    ("gateway-oanda", "gateway-oanda", &[]),
    ("inference", "inference", &["serve"]),
];

/// `(VmRSS, VmHWM)` of `pid` in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| anyhow::anyhow!("/proc/{pid}/status has no {name}"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// The HTTP status of `GET path` on `127.0.0.1:port`, if it answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = [0_u8; 32];
    let n = s.read(&mut buf).ok()?;
    let head = std::str::from_utf8(&buf[..n]).ok()?;
    head.split_whitespace().nth(1)?.parse().ok()
}

fn free_port() -> anyhow::Result<u16> {
    gekko_testkit::free_port().context("find a free port")
}

/// Stops `child` with SIGTERM, then SIGKILL after 15 s.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// One measurement.
#[derive(Debug)]
struct Measured {
    name: String,
    live_ms: Option<u128>,
    ready_ms: u128,
    rss_kib: u64,
    hwm_kib: u64,
}

fn measure(
    name: &str,
    bin: &Path,
    args: &[&str],
    env: &[(String, String)],
    idle: Duration,
) -> anyhow::Result<Measured> {
    let http = free_port()?;
    let grpc = free_port()?;
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env_remove("REDIS_URL")
        .env(
            "MONITORING_CONFIGURATIONS",
            format!("http_addr=127.0.0.1:{http},grpc_addr=127.0.0.1:{grpc},log_format=json,log_level=warn"),
        )
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // A private working directory: services write files there (the generated audit key).
    let dir = std::env::temp_dir().join(format!(
        "gekko-bench-footprint-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    cmd.current_dir(&dir);
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("spawn {}", bin.display()))?;
    let mut live_ms = None;
    let ready_ms = loop {
        if let Ok(Some(status)) = child.try_wait() {
            let _ = std::fs::remove_dir_all(&dir);
            anyhow::bail!("{name} exited before it was ready ({status})");
        }
        if live_ms.is_none() && http_status(http, "/livez") == Some(200) {
            live_ms = Some(started.elapsed().as_millis());
        }
        if http_status(http, "/readyz") == Some(200) {
            break started.elapsed().as_millis();
        }
        if started.elapsed() > Duration::from_secs(60) {
            stop(&mut child);
            let _ = std::fs::remove_dir_all(&dir);
            anyhow::bail!("{name} not ready after 60 s");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    std::thread::sleep(idle);
    let rss = rss_kib(child.id());
    stop(&mut child);
    let _ = std::fs::remove_dir_all(&dir);
    let (rss_kib, hwm_kib) = rss?;
    Ok(Measured {
        name: name.to_owned(),
        live_ms,
        ready_ms,
        rss_kib,
        hwm_kib,
    })
}

#[expect(clippy::cast_precision_loss, reason = "a size for display")]
fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Runs every selected target and returns the table.
///
/// # Errors
/// A binary that is missing, exits early or never becomes ready.
pub(crate) async fn run(opts: &FootprintOpts) -> anyhow::Result<Table> {
    let selected: Vec<_> = TARGETS
        .iter()
        .filter(|(n, _, _)| opts.only.is_empty() || opts.only.iter().any(|o| o == n))
        .collect();
    if selected.is_empty() {
        anyhow::bail!(
            "--only names nothing known; known: {}",
            TARGETS.iter().map(|t| t.0).collect::<Vec<_>>().join(", ")
        );
    }
    for (_, bin, _) in &selected {
        let p = opts.bin_dir.join(bin);
        if !p.is_file() {
            anyhow::bail!(
                "{} is missing: build the services first (cargo build --release -p gekko -p gateway-binanceus -p gateway-coinbase -p gateway-oanda -p inference) or pass --bin-dir",
                p.display()
            );
        }
    }
    // The reference: an idle redis-server, started and measured the same way.
    let redis = gekko_testkit::RedisServer::try_start()
        .map_err(|e| anyhow::anyhow!("cannot start redis-server: {e}"))?;
    let redis_pid = redis_pid(redis.port())?;
    tokio::time::sleep(Duration::from_secs(opts.idle_secs)).await;
    let (redis_rss, redis_hwm) = rss_kib(redis_pid)?;
    drop(redis);

    let llm = gekko_sim::llm::LlmSim::start(gekko_sim::llm::LlmSimConfig::default()).await?;
    let mcp_port = free_port()?;
    let up_env = vec![
        (
            "OPENROUTER_API_KEY".to_owned(),
            gekko_sim::llm::PAPER_KEY.to_owned(),
        ),
        (
            "OPENROUTER_BASE_URL".to_owned(),
            format!("{}/api/v1", llm.base_url()),
        ),
        (
            "LLM_MODELS".to_owned(),
            "analyst=openrouter:openai/gpt-4o-mini".to_owned(),
        ),
        (
            "MCP_SETTINGS".to_owned(),
            format!("http_addr=127.0.0.1:{mcp_port}"),
        ),
        (
            "SUPPORTED_TRADING_PAIRS".to_owned(),
            "BTC-USD,ETH-USD,EUR-USD".to_owned(),
        ),
    ];
    let idle = Duration::from_secs(opts.idle_secs);
    let mut results = Vec::new();
    for (name, bin, args) in selected {
        let env: &[(String, String)] = if *name == "gekko-up" { &up_env } else { &[] };
        let bin = opts.bin_dir.join(bin);
        let args = args.to_vec();
        let name = (*name).to_owned();
        let env = env.to_vec();
        let m =
            tokio::task::spawn_blocking(move || measure(&name, &bin, &args, &env, idle)).await??;
        results.push((m, load1()));
    }
    drop(llm);

    let mut t = Table::new(
        format!(
            "footprint: idle RSS after {} s and time from spawn to /readyz 200, paper mode, in-process bus",
            opts.idle_secs
        ),
        &[
            "process",
            "idle RSS (VmRSS)",
            "peak RSS (VmHWM)",
            "spawn -> /livez 200",
            "spawn -> /readyz 200",
            "load (1 min)",
        ],
    );
    t.row(vec![
        "reference: redis-server, idle, empty".into(),
        mib(redis_rss),
        mib(redis_hwm),
        "-".into(),
        "-".into(),
        load1(),
    ]);
    t.figure(json!({"process": "redis-server", "rss_kib": redis_rss, "hwm_kib": redis_hwm}));
    for (m, load) in &results {
        let label = if m.name == "gekko-up" {
            "gekko up: 3 venues + inference + MCP HTTP + LLM links".to_owned()
        } else {
            m.name.clone()
        };
        t.row(vec![
            label,
            mib(m.rss_kib),
            mib(m.hwm_kib),
            m.live_ms.map_or_else(|| "-".into(), |v| format!("{v} ms")),
            format!("{} ms", m.ready_ms),
            load.clone(),
        ]);
        t.figure(json!({
            "process": m.name,
            "rss_kib": m.rss_kib,
            "hwm_kib": m.hwm_kib,
            "live_ms": m.live_ms,
            "ready_ms": m.ready_ms,
            "load1": load,
        }));
    }
    Ok(t)
}

/// The pid of the redis-server listening on `port`, from `redis-cli INFO server`.
fn redis_pid(port: u16) -> anyhow::Result<u32> {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "INFO", "server"])
        .output()
        .context("run redis-cli (apt-get install redis-tools)")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("redis-cli INFO server gave no process_id"))
}
